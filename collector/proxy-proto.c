/* SPDX-License-Identifier: MIT */
/*
 * proxy-proto.c - PROXY protocol v1/v2 header parser (see proxy-proto.h for the choices made
 * where the spec leaves room).
 *
 * Every decision is taken on the first octet that settles it, and only on octets already
 * received: v1 is scanned octet by octet through small address/port state machines that
 * reject a field as soon as no continuation could make it valid (the complete field is then
 * checked again with inet_pton()), and v2 checks the signature, version, command, family,
 * length cap and each TLV header as soon as they arrive. The output is written only on
 * success.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "proxy-proto.h"
#include "wire.h"

static const char v1_prefix[] = "PROXY ";
static const uint8_t v2_signature[12] = { '\r', '\n', '\r', '\n', 0, '\r', '\n',
                                          'Q',  'U',  'I',  'T',  '\n' };

#define V2_VERSION 2
#define V2_CMD_LOCAL 0
#define V2_CMD_PROXY 1
#define V2_ADDR_INET 12u        /* 2 x 4 address octets, 2 x 2 port octets */
#define V2_ADDR_INET6 36u       /* 2 x 16, 2 x 2 */
#define V2_ADDR_UNIX 216u       /* 2 x 108 */
#define V2_TLV_HEADER 3u        /* type, 16-bit length */

/* Longest text address v1 can carry: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255". */
#define V1_ADDR_MAX 45u

static bool is_digit(uint8_t c) {
        return c >= '0' && c <= '9';
}

static bool is_hex(uint8_t c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Dotted-quad state machine as glibc's inet_pton(AF_INET) accepts it: exactly 4 decimal
 * octets, each 0..255 without leading zeros. Also used for the IPv4 tail of an IPv6 address.
 */
typedef struct V4Scan {
        unsigned dots;
        unsigned digits;        /* in the current octet */
        unsigned value;         /* of the current octet */
} V4Scan;

static bool v4_feed(V4Scan *s, uint8_t c) {
        if (is_digit(c)) {
                if (s->digits > 0 && s->value == 0)
                        return false;                   /* leading zero */
                s->value = s->value * 10 + (unsigned) (c - '0');
                if (s->value > 255)
                        return false;
                s->digits++;
                return true;
        }
        if (c == '.') {
                if (s->digits == 0 || s->dots == 3)
                        return false;
                s->dots++;
                s->digits = 0;
                s->value = 0;
                return true;
        }
        return false;
}

static bool v4_complete(const V4Scan *s) {
        return s->dots == 3 && s->digits > 0;
}

/*
 * IPv6 text form as glibc's inet_pton(AF_INET6) accepts it: up to 8 groups of 1..4 hex
 * digits, at most one "::" standing for at least one zero group, optionally a dotted-quad
 * tail in place of the last two groups. v6_feed() fails on the first character no
 * continuation can make valid, counting group budgets ahead (e.g. a '.' after five groups
 * without "::" fails at once, since the IPv4 tail must end the address).
 */
typedef struct V6Scan {
        unsigned groups;        /* completed groups */
        unsigned hex;           /* digits in the current group */
        unsigned dec;           /* the current group read as a decimal octet, if all digits */
        bool all_dec;           /* ... and whether it is one so far (no hex letters) */
        bool dcolon;            /* "::" seen */
        unsigned colons;        /* trailing ':' run: 0, 1, or 2 right after "::" */
        bool lead;              /* a single leading ':' waiting for its pair */
        bool in_v4;             /* in the dotted-quad tail */
        size_t n;               /* characters fed */
        V4Scan v4;
} V6Scan;

static bool v6_feed(V6Scan *s, uint8_t c) {
        bool first = s->n++ == 0;

        if (s->in_v4)
                return v4_feed(&s->v4, c);
        if (c == ':') {
                if (first) {
                        s->lead = true;
                        s->colons = 1;
                        return true;
                }
                if (s->colons > 0) {
                        /* A second colon: "::", once, with room for its zero group. */
                        if (s->dcolon || s->groups > 7)
                                return false;
                        s->dcolon = true;
                        s->lead = false;
                        s->colons = 2;
                        return true;
                }
                /* A group ends and another one (or "::") must follow. */
                s->groups++;
                s->hex = 0;
                s->colons = 1;
                return s->groups <= (s->dcolon ? 6u : 7u);
        }
        if (is_hex(c)) {
                if (s->lead || s->hex == 4)
                        return false;
                if (s->hex == 0) {
                        /* A new group, counted against the budget; "::" takes one. */
                        if (s->groups + 1 > (s->dcolon ? 7u : 8u))
                                return false;
                        s->all_dec = true;
                        s->dec = 0;
                } else if (s->all_dec && s->dec == 0)
                        s->all_dec = false;             /* leading zero: not an IPv4 octet */
                if (!is_digit(c))
                        s->all_dec = false;
                else if (s->all_dec)
                        s->dec = s->dec * 10 + (unsigned) (c - '0');
                s->hex++;
                s->colons = 0;
                return true;
        }
        if (c == '.') {
                /* The current group was the first IPv4 octet; the tail takes two groups and
                 * ends the address. */
                if (s->hex == 0 || !s->all_dec || s->dec > 255)
                        return false;
                if (s->dcolon ? s->groups > 5 : s->groups != 6)
                        return false;
                s->in_v4 = true;
                s->v4 = (V4Scan) { .dots = 1 };
                return true;
        }
        return false;
}

static bool v6_complete(const V6Scan *s) {
        unsigned total;

        if (s->in_v4)
                return v4_complete(&s->v4);
        if (s->n == 0 || s->lead)
                return false;
        if (s->colons == 1)
                return false;           /* a single trailing ':' still needs a group */
        total = s->groups + (s->hex > 0);
        return s->dcolon ? total <= 7 : total == 8;
}

typedef enum V1Field {
        V1_SRC,
        V1_DST,
        V1_SPORT,
        V1_DPORT,
        _V1_FIELD_MAX,
} V1Field;

/*
 * Matches the literal @lit at @p[*i...]: 1 (consumed), 0 (buffer ends inside a match) or
 * -EBADMSG.
 */
static int match_literal(const uint8_t *p, size_t n, size_t *i, const char *lit) {
        size_t l = strlen(lit);

        for (size_t k = 0; k < l; k++) {
                if (*i + k >= n)
                        return 0;
                if (p[*i + k] != (uint8_t) lit[k])
                        return -EBADMSG;
        }
        *i += l;
        return 1;
}

/* Sets @sa from the text address @s of @family (already validated by the scanners). */
static int v1_set_addr(int family, const uint8_t *s, size_t l, struct sockaddr_storage *sa) {
        char buf[V1_ADDR_MAX + 1];

        if (l == 0 || l > V1_ADDR_MAX)
                return -EBADMSG;
        memcpy(buf, s, l);
        buf[l] = 0;
        if (family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) sa;
                in->sin_family = AF_INET;
                if (inet_pton(AF_INET, buf, &in->sin_addr) != 1)
                        return -EBADMSG;
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) sa;
                in6->sin6_family = AF_INET6;
                if (inet_pton(AF_INET6, buf, &in6->sin6_addr) != 1)
                        return -EBADMSG;
        }
        return 0;
}

static void set_port(int family, struct sockaddr_storage *sa, uint16_t port) {
        if (family == AF_INET)
                ((struct sockaddr_in *) sa)->sin_port = htons(port);
        else
                ((struct sockaddr_in6 *) sa)->sin6_port = htons(port);
}

/* "UNKNOWN" then CRLF, or a space and anything but CR/LF, then CRLF. */
static int v1_parse_unknown(const uint8_t *p, size_t n, size_t i, ProxyInfo *ret) {
        if (i >= n)
                return 0;
        if (p[i] == ' ') {
                for (i++; i < n && p[i] != '\r'; i++)
                        if (p[i] == '\n')
                                return -EBADMSG;
        }
        if (i >= n)
                return 0;
        if (p[i] != '\r')
                return -EBADMSG;
        if (++i >= n)
                return 0;
        if (p[i] != '\n')
                return -EBADMSG;
        *ret = (ProxyInfo) { .family = AF_UNSPEC };
        return (int) (i + 1);
}

/* The four fields after "TCP4 " / "TCP6 ", then LF. */
static int v1_parse_tcp(const uint8_t *p, size_t n, size_t i, int family, ProxyInfo *ret) {
        ProxyInfo info = { .family = family };

        for (V1Field f = V1_SRC; f < _V1_FIELD_MAX; f++) {
                uint8_t end = f == V1_DPORT ? '\r' : ' ';
                size_t start = i;

                if (f == V1_SRC || f == V1_DST) {
                        V4Scan s4 = { 0 };
                        V6Scan s6 = { 0 };
                        bool ok;
                        int r;

                        for (; i < n && p[i] != end; i++)
                                if (!(family == AF_INET ? v4_feed(&s4, p[i]) : v6_feed(&s6, p[i])))
                                        return -EBADMSG;
                        if (i >= n)
                                return 0;
                        ok = family == AF_INET ? v4_complete(&s4) : v6_complete(&s6);
                        if (!ok)
                                return -EBADMSG;
                        r = v1_set_addr(family, p + start, i - start,
                                        f == V1_SRC ? &info.src : &info.dst);
                        if (r < 0)
                                return r;
                } else {
                        /* Decimal 0..65535: no sign, no leading zero, at most 5 digits. */
                        uint32_t v = 0;

                        for (; i < n && p[i] != end; i++) {
                                if (!is_digit(p[i]) || (i > start && v == 0))
                                        return -EBADMSG;
                                v = v * 10 + (uint32_t) (p[i] - '0');
                                if (v > 65535)
                                        return -EBADMSG;
                        }
                        if (i >= n)
                                return 0;
                        if (i == start)
                                return -EBADMSG;
                        set_port(family, f == V1_SPORT ? &info.src : &info.dst, (uint16_t) v);
                }
                i++;    /* the separator */
        }
        if (i >= n)
                return 0;
        if (p[i] != '\n')
                return -EBADMSG;
        *ret = info;
        return (int) (i + 1);
}

/* The v1 line in @p[0..n): as proxy_parse(), except that "need more" is 0 at any @n. */
static int v1_parse_line(const uint8_t *p, size_t n, ProxyInfo *ret) {
        size_t i = 0;
        int family, r;

        r = match_literal(p, n, &i, v1_prefix);
        if (r <= 0)
                return r;
        /* "TCP4 ", "TCP6 " or "UNKNOWN": the first octet decides between the last and
         * the others, the one after "TCP" between those. */
        if (i < n && p[i] == 'U') {
                r = match_literal(p, n, &i, "UNKNOWN");
                return r <= 0 ? r : v1_parse_unknown(p, n, i, ret);
        }
        r = match_literal(p, n, &i, "TCP");
        if (r <= 0)
                return r;
        if (i >= n)
                return 0;
        if (p[i] == '4')
                family = AF_INET;
        else if (p[i] == '6')
                family = AF_INET6;
        else
                return -EBADMSG;
        i++;
        r = match_literal(p, n, &i, " ");
        return r <= 0 ? r : v1_parse_tcp(p, n, i, family, ret);
}

static int v1_parse(const uint8_t *p, size_t len, ProxyInfo *ret) {
        /* The line is judged on its first 107 octets only; still "need more" there means it
         * cannot end in time. */
        size_t n = len < PROXY_V1_MAX_HEADER ? len : PROXY_V1_MAX_HEADER;
        int r = v1_parse_line(p, n, ret);

        if (r == 0 && n == PROXY_V1_MAX_HEADER)
                return -EBADMSG;
        return r;
}

static int v2_parse(const uint8_t *p, size_t len, ProxyInfo *ret) {
        ProxyInfo info = { .family = AF_UNSPEC };
        size_t n = len < sizeof(v2_signature) ? len : sizeof(v2_signature);
        size_t total, addr_len = 0;
        unsigned cmd;
        uint8_t fam;

        if (memcmp(p, v2_signature, n) != 0)
                return -EBADMSG;
        if (len < 13)
                return 0;
        if (p[12] >> 4 != V2_VERSION)
                return -EBADMSG;
        cmd = p[12] & 0x0f;
        if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
                return -EBADMSG;

        if (len < 14)
                return 0;
        fam = p[13];
        switch (fam) {
        case 0x00:                      /* UNSPEC */
                break;
        case 0x11:                      /* INET, STREAM */
        case 0x12:                      /* INET, DGRAM */
                info.family = AF_INET;
                addr_len = V2_ADDR_INET;
                break;
        case 0x21:                      /* INET6, STREAM */
        case 0x22:                      /* INET6, DGRAM */
                info.family = AF_INET6;
                addr_len = V2_ADDR_INET6;
                break;
        case 0x31:                      /* UNIX, STREAM */
        case 0x32:                      /* UNIX, DGRAM */
                if (cmd == V2_CMD_PROXY)
                        return -EPROTONOSUPPORT;
                break;
        default:
                return -EBADMSG;
        }

        /* Reject an over-long header on the length's high octet already. */
        if (len < 15)
                return 0;
        if (PROXY_V2_FIXED_HEADER + ((size_t) p[14] << 8) > PROXY_MAX_HEADER)
                return -EBADMSG;
        if (len < PROXY_V2_FIXED_HEADER)
                return 0;
        total = PROXY_V2_FIXED_HEADER + wire_read_u16(p + 14);
        if (total > PROXY_MAX_HEADER)
                return -EBADMSG;

        if (cmd == V2_CMD_LOCAL || info.family == AF_UNSPEC) {
                /* Spec 2.2: for LOCAL the receiver discards the whole protocol block,
                 * family included, and uses the real connection endpoints; for UNSPEC it
                 * ignores the address information, whose length is unknown, so where TLVs
                 * would start is unknown too. */
                if (len < total)
                        return 0;
                *ret = (ProxyInfo) { .family = AF_UNSPEC, .local = cmd == V2_CMD_LOCAL };
                return (int) total;
        }

        if (total - PROXY_V2_FIXED_HEADER < addr_len)
                return -EBADMSG;
        /* TLVs: each header and value inside the block, the list filling it exactly. */
        for (size_t off = PROXY_V2_FIXED_HEADER + addr_len; off < total;) {
                size_t tlen;

                if (total - off < V2_TLV_HEADER)
                        return -EBADMSG;
                if (len < off + V2_TLV_HEADER)
                        return 0;
                tlen = wire_read_u16(p + off + 1);
                if (tlen > total - off - V2_TLV_HEADER)
                        return -EBADMSG;
                off += V2_TLV_HEADER + tlen;
        }
        if (len < total)
                return 0;

        if (info.family == AF_INET) {
                struct sockaddr_in *src = (struct sockaddr_in *) &info.src;
                struct sockaddr_in *dst = (struct sockaddr_in *) &info.dst;
                const uint8_t *a = p + PROXY_V2_FIXED_HEADER;

                src->sin_family = dst->sin_family = AF_INET;
                memcpy(&src->sin_addr, a, 4);
                memcpy(&dst->sin_addr, a + 4, 4);
                memcpy(&src->sin_port, a + 8, 2);       /* network order stays */
                memcpy(&dst->sin_port, a + 10, 2);
        } else if (info.family == AF_INET6) {
                struct sockaddr_in6 *src = (struct sockaddr_in6 *) &info.src;
                struct sockaddr_in6 *dst = (struct sockaddr_in6 *) &info.dst;
                const uint8_t *a = p + PROXY_V2_FIXED_HEADER;

                src->sin6_family = dst->sin6_family = AF_INET6;
                memcpy(&src->sin6_addr, a, 16);
                memcpy(&dst->sin6_addr, a + 16, 16);
                memcpy(&src->sin6_port, a + 32, 2);
                memcpy(&dst->sin6_port, a + 34, 2);
        }
        *ret = info;
        return (int) total;
}

int proxy_parse(const uint8_t *p, size_t len, ProxyInfo *ret) {
        assert(p || len == 0);
        assert(ret);

        if (len == 0)
                return 0;
        if (p[0] == (uint8_t) v1_prefix[0])
                return v1_parse(p, len, ret);
        if (p[0] == v2_signature[0])
                return v2_parse(p, len, ret);
        return -EBADMSG;
}
