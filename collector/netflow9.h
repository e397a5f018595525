/* SPDX-License-Identifier: MIT */
/*
 * netflow9.h - NetFlow v9 (RFC 3954) to IPFIX message translation.
 *
 * libfixbuf 2.4.1's v9 translator is attached to an fbCollector_t and is not reachable in
 * buffer mode (fBufSetBuffer), which is the only mode the collector uses. This translator
 * rewrites the packet into one IPFIX message that the normal pre-scan and decoder handle:
 * header 20 -> 16 octets, flowset 0 -> set 2, flowset 1 -> set 3 (options template record
 * layout converted), data flowsets copied. sysUpTime-relative times are resolved by the
 * decoder from the init time returned here.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define NETFLOW9_HEADER_SIZE 20u

/**
 * netflow9_to_ipfix() - translates one v9 packet.
 * @in, @len:    the datagram
 * @out, @cap:   output buffer (cap >= len suffices: the result is never longer)
 * @ret_len:     IPFIX message length
 * @ret_init_ms: exporter system init time, ms since the epoch (unix_secs*1000 - sysUpTime)
 *
 * Return: 0, or -EBADMSG for a truncated header, a flowset that overruns the packet or a
 * malformed template (v9 field types >= 32768 cannot be expressed in IPFIX without an
 * enterprise number: such templates are dropped and counted as malformed by returning
 * the number of dropped templates in @ret_dropped).
 */
int netflow9_to_ipfix(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *ret_len,
                      uint64_t *ret_init_ms, unsigned *ret_dropped);
