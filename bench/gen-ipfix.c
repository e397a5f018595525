/* SPDX-License-Identifier: MIT */
/*
 * gen-ipfix.c - writes IPFIX messages for ipfixd-gen. Owns no memory: every message goes
 * into the caller's buffer. Field values come from the session's PRNG only (plus the clock
 * value the caller passes), which keeps runs reproducible; all multi-octet fields are
 * written in network byte order through the put_*() helpers, never through struct casts.
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "gen-ipfix.h"

/* Information element ids (IANA IPFIX registry). */
enum {
        IE_OCTET_DELTA_COUNT = 1,
        IE_PACKET_DELTA_COUNT = 2,
        IE_PROTOCOL_IDENTIFIER = 4,
        IE_IP_CLASS_OF_SERVICE = 5,
        IE_TCP_CONTROL_BITS = 6,
        IE_SOURCE_TRANSPORT_PORT = 7,
        IE_SOURCE_IPV4_ADDRESS = 8,
        IE_INGRESS_INTERFACE = 10,
        IE_DESTINATION_TRANSPORT_PORT = 11,
        IE_DESTINATION_IPV4_ADDRESS = 12,
        IE_SOURCE_IPV6_ADDRESS = 27,
        IE_DESTINATION_IPV6_ADDRESS = 28,
        IE_FLOW_START_MILLISECONDS = 152,
        IE_FLOW_END_MILLISECONDS = 153,
};

typedef struct GenField {
        uint16_t id;
        uint16_t len;
} GenField;

/* Field order is the record layout; gen_record_write() must follow it exactly. */
static const GenField template_v4[GEN_TEMPLATE_FIELDS] = {
        { IE_FLOW_START_MILLISECONDS, 8 },
        { IE_FLOW_END_MILLISECONDS, 8 },
        { IE_OCTET_DELTA_COUNT, 8 },
        { IE_PACKET_DELTA_COUNT, 4 },           /* reduced-size encoding on purpose */
        { IE_SOURCE_IPV4_ADDRESS, 4 },
        { IE_DESTINATION_IPV4_ADDRESS, 4 },
        { IE_SOURCE_TRANSPORT_PORT, 2 },
        { IE_DESTINATION_TRANSPORT_PORT, 2 },
        { IE_PROTOCOL_IDENTIFIER, 1 },
        { IE_TCP_CONTROL_BITS, 1 },             /* reduced from 2 */
        { IE_INGRESS_INTERFACE, 2 },            /* reduced from 4 */
        { IE_IP_CLASS_OF_SERVICE, 1 },
};

static const GenField template_v6[GEN_TEMPLATE_FIELDS] = {
        { IE_FLOW_START_MILLISECONDS, 8 },
        { IE_FLOW_END_MILLISECONDS, 8 },
        { IE_OCTET_DELTA_COUNT, 8 },
        { IE_PACKET_DELTA_COUNT, 4 },
        { IE_SOURCE_IPV6_ADDRESS, 16 },
        { IE_DESTINATION_IPV6_ADDRESS, 16 },
        { IE_SOURCE_TRANSPORT_PORT, 2 },
        { IE_DESTINATION_TRANSPORT_PORT, 2 },
        { IE_PROTOCOL_IDENTIFIER, 1 },
        { IE_TCP_CONTROL_BITS, 1 },
        { IE_INGRESS_INTERFACE, 2 },
        { IE_IP_CLASS_OF_SERVICE, 1 },
};

static inline uint8_t *put_u8(uint8_t *p, uint8_t v) {
        *p = v;
        return p + 1;
}

static inline uint8_t *put_u16(uint8_t *p, uint16_t v) {
        v = htobe16(v);
        memcpy(p, &v, sizeof(v));
        return p + sizeof(v);
}

static inline uint8_t *put_u32(uint8_t *p, uint32_t v) {
        v = htobe32(v);
        memcpy(p, &v, sizeof(v));
        return p + sizeof(v);
}

static inline uint8_t *put_u64(uint8_t *p, uint64_t v) {
        v = htobe64(v);
        memcpy(p, &v, sizeof(v));
        return p + sizeof(v);
}

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

void gen_prng_init(GenPrng *p, uint64_t seed, uint64_t stream) {
        uint64_t x = seed;

        assert(p);
        p->state = splitmix64(&x);
        x ^= stream * UINT64_C(0xd1342543de82ef95);
        p->state ^= splitmix64(&x);
        if (p->state == 0)
                p->state = UINT64_C(0x9e3779b97f4a7c15);
}

static inline uint64_t prng_next(GenPrng *p) {
        uint64_t x = p->state;

        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p->state = x;
        return x * UINT64_C(0x2545f4914f6cdd1d);
}

/* Uniform in [0, bound) from the high half of one output (multiply-shift, no division). */
static inline uint32_t prng_below(GenPrng *p, uint32_t bound) {
        return (uint32_t) (((prng_next(p) >> 32) * (uint64_t) bound) >> 32);
}

int gen_message_config_check(const GenMessageConfig *cfg) {
        size_t need;

        assert(cfg);
        if (cfg->template_id < 256)
                return -EINVAL;
        if (cfg->mode < 0 || cfg->mode >= _GEN_TEMPLATE_MODE_MAX)
                return -EINVAL;
        if (cfg->mode == GEN_TEMPLATE_EVERY && cfg->every == 0)
                return -EINVAL;
        if (cfg->spread_ms > GEN_SPREAD_MS_MAX)
                return -EINVAL;

        need = GEN_IPFIX_HEADER_SIZE + GEN_TEMPLATE_SET_SIZE + GEN_IPFIX_SET_HEADER_SIZE +
               gen_record_size(cfg->ipv6);
        if (cfg->max_size < need || cfg->max_size > GEN_IPFIX_MESSAGE_MAX)
                return -EMSGSIZE;
        return 0;
}

void gen_session_init(GenSession *s, const GenMessageConfig *cfg, uint64_t records,
                      uint64_t seed, uint64_t stream) {
        assert(s);
        assert(cfg);

        *s = (GenSession) {
                .remaining = cfg->mode == GEN_TEMPLATE_ONLY ? 0 : records,
        };
        gen_prng_init(&s->prng, seed, stream);
}

bool gen_session_done(const GenSession *s, const GenMessageConfig *cfg) {
        assert(s);
        assert(cfg);

        if (s->remaining > 0)
                return false;
        /* Every mode but "none" announces the template at least once, even without data. */
        return cfg->mode == GEN_TEMPLATE_NONE || s->messages > 0;
}

static bool message_has_template(const GenMessageConfig *cfg, const GenSession *s) {
        switch (cfg->mode) {
        case GEN_TEMPLATE_FIRST:
        case GEN_TEMPLATE_ONLY:
                return s->messages == 0;
        case GEN_TEMPLATE_EVERY:
                return s->messages % cfg->every == 0;
        default:
                return false;
        }
}

static uint8_t *template_set_write(uint8_t *p, const GenMessageConfig *cfg) {
        const GenField *fields = cfg->ipv6 ? template_v6 : template_v4;

        p = put_u16(p, GEN_IPFIX_SET_TEMPLATE);
        p = put_u16(p, GEN_TEMPLATE_SET_SIZE);
        p = put_u16(p, cfg->template_id);
        p = put_u16(p, GEN_TEMPLATE_FIELDS);
        for (size_t i = 0; i < GEN_TEMPLATE_FIELDS; i++) {
                p = put_u16(p, fields[i].id);
                p = put_u16(p, fields[i].len);
        }
        return p;
}

/* @base_ms: the record starts 0..60 s before it. */
static uint8_t *record_write(uint8_t *p, bool ipv6, GenPrng *g, uint64_t base_ms,
                             GenStats *stats) {
        static const uint8_t protos[3] = { 6, 17, 1 };
        uint64_t start, end, packets, octets;
        uint8_t proto;

        start = base_ms - prng_below(g, 60001);
        end = start + prng_below(g, 60001);
        packets = 1 + prng_below(g, 1000);
        octets = packets * (40 + prng_below(g, 1461));

        p = put_u64(p, start);
        p = put_u64(p, end);
        p = put_u64(p, octets);
        p = put_u32(p, (uint32_t) packets);
        if (ipv6) {
                for (int i = 0; i < 2; i++) {
                        /* 2001:db8::/32 followed by 96 random bits */
                        p = put_u32(p, UINT32_C(0x20010db8));
                        p = put_u64(p, prng_next(g));
                        p = put_u32(p, (uint32_t) (prng_next(g) >> 32));
                }
        } else {
                /* 10.0.0.0/8 */
                p = put_u32(p, UINT32_C(0x0a000000) | (uint32_t) (prng_next(g) >> 40));
                p = put_u32(p, UINT32_C(0x0a000000) | (uint32_t) (prng_next(g) >> 40));
        }
        p = put_u16(p, (uint16_t) (1 + prng_below(g, 65535)));
        p = put_u16(p, (uint16_t) (1 + prng_below(g, 65535)));
        proto = protos[prng_below(g, 3)];
        p = put_u8(p, proto);
        p = put_u8(p, proto == 6 ? (uint8_t) prng_below(g, 256) : 0);
        p = put_u16(p, (uint16_t) (1 + prng_below(g, 1000)));
        p = put_u8(p, (uint8_t) prng_below(g, 256));

        stats->octets += octets;
        stats->packets += packets;
        return p;
}

size_t gen_message_build(const GenMessageConfig *cfg, GenSession *s, uint64_t now_ms,
                         uint8_t *buf, GenStats *stats) {
        size_t reclen = gen_record_size(cfg->ipv6), room, n = 0, len;
        uint8_t *p = buf + GEN_IPFIX_HEADER_SIZE;

        assert(cfg);
        assert(s);
        assert(buf);
        assert(stats);

        if (gen_session_done(s, cfg))
                return 0;

        if (message_has_template(cfg, s))
                p = template_set_write(p, cfg);

        room = cfg->max_size - (size_t) (p - buf);
        if (s->remaining > 0 && room >= GEN_IPFIX_SET_HEADER_SIZE + reclen) {
                uint8_t *set = p;

                n = (room - GEN_IPFIX_SET_HEADER_SIZE) / reclen;
                if (n > s->remaining)
                        n = (size_t) s->remaining;

                p += GEN_IPFIX_SET_HEADER_SIZE;
                for (size_t i = 0; i < n; i++) {
                        uint64_t base = now_ms;

                        if (cfg->spread_ms > 0) {
                                /* The share of the session still to come, as time before now. */
                                double left = (double) (s->remaining - i) /
                                              (double) (s->records + s->remaining);
                                base -= (uint64_t) (left * cfg->spread_ms);
                        }
                        p = record_write(p, cfg->ipv6, &s->prng, base, stats);
                }

                (void) put_u16(set, cfg->template_id);
                (void) put_u16(set + 2, (uint16_t) (p - set));
        }

        len = (size_t) (p - buf);
        assert(len <= cfg->max_size);

        p = put_u16(buf, GEN_IPFIX_VERSION);
        p = put_u16(p, (uint16_t) len);
        p = put_u32(p, (uint32_t) (now_ms / 1000));
        p = put_u32(p, (uint32_t) s->records);          /* wraps mod 2^32 per RFC 7011 */
        (void) put_u32(p, cfg->odid);

        s->remaining -= n;
        s->records += n;
        s->messages++;
        stats->records += n;
        stats->messages++;
        return len;
}
