/* SPDX-License-Identifier: MIT */
/*
 * gen-ipfix.h - the IPFIX (RFC 7011) message encoder of ipfixd-gen: a deterministic PRNG,
 * the two fixed record templates and one function that writes the next message of a
 * transport session into a caller-owned buffer. No I/O and no allocation, so the encoder
 * is testable without sockets.
 *
 * Invariants kept per session: the header sequence number is the number of data records
 * the session emitted before the message (mod 2^32), messages never exceed the configured
 * size, and the same seed yields the same record values (timestamps are relative to the
 * clock value passed in).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_IPFIX_VERSION 10u
#define GEN_IPFIX_HEADER_SIZE 16u
#define GEN_IPFIX_SET_HEADER_SIZE 4u
#define GEN_IPFIX_SET_TEMPLATE 2u
#define GEN_IPFIX_MESSAGE_MAX 65535u

#define GEN_TEMPLATE_FIELDS 12u
/* Set header + template record header + one (id, length) pair per field. */
#define GEN_TEMPLATE_SET_SIZE (GEN_IPFIX_SET_HEADER_SIZE + 4u + 4u * GEN_TEMPLATE_FIELDS)
#define GEN_RECORD_SIZE_V4 45u
#define GEN_RECORD_SIZE_V6 69u

#define GEN_SPREAD_MS_MAX (7u * 86400u * 1000u)

#define GEN_TEMPLATE_ID_V4 256u
#define GEN_TEMPLATE_ID_V6 257u

typedef enum GenTemplateMode {
        GEN_TEMPLATE_FIRST,     /* template set in a session's first message only */
        GEN_TEMPLATE_EVERY,     /* template set in messages 0, K, 2K, ... */
        GEN_TEMPLATE_NONE,      /* data sets only */
        GEN_TEMPLATE_ONLY,      /* one template-only message, no data */
        _GEN_TEMPLATE_MODE_MAX,
        _GEN_TEMPLATE_MODE_INVALID = -EINVAL,
} GenTemplateMode;

/* xorshift64* seeded through splitmix64; never zero. */
typedef struct GenPrng {
        uint64_t state;
} GenPrng;

typedef struct GenMessageConfig {
        uint32_t odid;
        uint16_t template_id;
        bool ipv6;
        size_t max_size;                /* maximum IPFIX message size in octets */
        GenTemplateMode mode;
        uint64_t every;                 /* K for GEN_TEMPLATE_EVERY, >= 1 */
        uint32_t spread_ms;             /* 0..GEN_SPREAD_MS_MAX: a session's flows start from
                                         * spread_ms ago to now, in record order */
} GenMessageConfig;

/* One transport session: a TCP connection or a UDP socket. */
typedef struct GenSession {
        GenPrng prng;
        uint64_t remaining;             /* data records still to emit */
        uint64_t records;               /* data records emitted so far (sequence number) */
        uint64_t messages;              /* messages emitted so far */
} GenSession;

typedef struct GenStats {
        uint64_t records;
        uint64_t octets;
        uint64_t packets;
        uint64_t messages;
} GenStats;

/**
 * gen_prng_init() - seeds @p from @seed and @stream (e.g. the connection index), so that
 * every session of a run gets its own reproducible sequence.
 */
void gen_prng_init(GenPrng *p, uint64_t seed, uint64_t stream);

/**
 * gen_record_size() - octets per data record of the IPv4 or IPv6 template.
 */
static inline size_t gen_record_size(bool ipv6) {
        return ipv6 ? GEN_RECORD_SIZE_V6 : GEN_RECORD_SIZE_V4;
}

/**
 * gen_message_config_check() - validates @cfg.
 *
 * Return: 0 if a message of @cfg->max_size octets can carry the template set plus one data
 * record; -EINVAL for a bad template id, mode or K; -EMSGSIZE for a size out of range.
 */
int gen_message_config_check(const GenMessageConfig *cfg);

/**
 * gen_session_init() - prepares a session that will emit @records data records.
 * In GEN_TEMPLATE_ONLY mode @records is ignored and the session emits none.
 */
void gen_session_init(GenSession *s, const GenMessageConfig *cfg, uint64_t records,
                      uint64_t seed, uint64_t stream);

/**
 * gen_session_done() - true once gen_message_build() has nothing more to emit.
 */
bool gen_session_done(const GenSession *s, const GenMessageConfig *cfg);

/**
 * gen_message_build() - writes the session's next message.
 * @cfg:    a configuration that passed gen_message_config_check()
 * @s:      the session, advanced past the message
 * @now_ms: wall clock in ms since the Unix epoch (export time and record timestamps)
 * @buf:    output, at least @cfg->max_size octets
 * @stats:  incremented by the message's data records, octets, packets and by one message
 *
 * A template set is included according to @cfg->mode; data records fill the rest of the
 * message up to @cfg->max_size. A record starts 0..60 s before a base time and lasts
 * 0..60 s; the base is @now_ms, or with @cfg->spread_ms, @now_ms minus the part of
 * spread_ms the session has still to emit (its first record spread_ms ago, its last now), so
 * a fast run stores like that much traffic arriving in time order.
 *
 * Return: the message length, or 0 if the session is done (nothing written).
 */
size_t gen_message_build(const GenMessageConfig *cfg, GenSession *s, uint64_t now_ms,
                         uint8_t *buf, GenStats *stats);
