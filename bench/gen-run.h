/* SPDX-License-Identifier: MIT */
/*
 * gen-run.h - the transport side of ipfixd-gen: opens C TCP connections or C UDP sockets
 * (each one IPFIX transport session), drives them from one thread with non-blocking
 * sockets and ppoll(), and paces the total record rate. Messages come from gen-ipfix.
 */
#pragma once

#include <netdb.h>
#include <stdint.h>

#include "gen-ipfix.h"

typedef enum GenProto {
        GEN_PROTO_TCP,
        GEN_PROTO_UDP,
        _GEN_PROTO_MAX,
        _GEN_PROTO_INVALID = -EINVAL,
} GenProto;

typedef struct GenRunConfig {
        GenProto proto;
        const char *dest_name;                  /* HOST:PORT as given, for messages */
        const struct addrinfo *dest;            /* candidates, tried in order (borrowed) */
        const struct addrinfo *bind;            /* local address to bind, or NULL (borrowed) */
        unsigned connections;                   /* >= 1 */
        uint64_t records;                       /* total, split evenly over connections */
        double rate;                            /* records per second in total, 0 = unpaced */
        uint64_t seed;
        GenMessageConfig msg;
} GenRunConfig;

/**
 * gen_run() - connects, sends every session's messages and closes (TCP: shutdown(SHUT_WR)
 * then close). Failures are reported on stderr with context.
 * @cfg:       run configuration; @cfg->msg must pass gen_message_config_check()
 * @ret_stats: totals of what was sent, set on success
 *
 * Return: 0 on success, or a negative errno (connect, bind or send failure, -ENOMEM).
 */
int gen_run(const GenRunConfig *cfg, GenStats *ret_stats);
