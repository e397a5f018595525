/* SPDX-License-Identifier: MIT */
/*
 * datagram.h - one UDP datagram to IPFIX messages: NetFlow v9 is translated (netflow9.h),
 * IPFIX is framed (one message per datagram per RFC 7011 10.3.3, several back to back
 * tolerated). Shared by the worker, the capture replay test and the fuzz target so they all
 * exercise the same dispatch.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "counters.h"

/* Called once per IPFIX message; @msg is valid during the call only. */
typedef void (*DatagramMessageFn)(void *userdata, const uint8_t *msg, size_t len,
                                  uint64_t init_ms);

/**
 * datagram_dispatch() - frames or translates @p and calls @fn per message.
 * @max_msg: largest IPFIX message accepted
 * @nf9buf:  scratch of NETFLOW9_MAX_OUTPUT octets for the v9 translation
 * @c:       counts netflow9_messages and the errors below
 *
 * Return: 0; -EPROTO for a version other than 9 or 10 (err_version); -EBADMSG for a short
 * datagram or a bad IPFIX length (err_length) or a bad v9 packet (err_netflow9, also for
 * -EMSGSIZE). Messages framed before an error were already dispatched.
 */
int datagram_dispatch(const uint8_t *p, size_t len, size_t max_msg, uint8_t *nf9buf,
                      CollectorCounters *c, DatagramMessageFn fn, void *userdata);
