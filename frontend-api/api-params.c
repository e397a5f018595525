/* SPDX-License-Identifier: MIT */
/*
 * api-params.c - query-string validation for the public API (see api-params.h for the rules).
 * Owns the per-route parameter tables, the translation of filter parameters into one
 * flow-filter expression and the query-protocol requests built from a validated query.
 * Invariants: every error names exactly one parameter and quotes client text only as
 * printable ASCII (so the message is always valid JSON-able UTF-8); a successful parse yields
 * an expression that flow_filter_compile() accepts and that is at most max_expr_len bytes.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api-params.h"
#include "flow-filter.h"
#include "macro.h"

#define DURATION_MAX_S (100ull * 365 * 86400)
#define INTERVAL_MAX_S (7u * 86400) /* the pods' step_s cap */

typedef enum Route {
        ROUTE_FLOWS,
        ROUTE_TOP,
        ROUTE_TIMESERIES,
        ROUTE_STREAM,
        ROUTE_TEMPLATES,
        _ROUTE_MAX,
} Route;

/* ---- parameter tables ----------------------------------------------------------------- */

#define P_SRC { "src", API_PARAM_ADDRESSES, NULL, \
        "Source address or CIDR prefix (IPv4 or IPv6, host bits zero); comma list for any " \
        "of several" }
#define P_DST { "dst", API_PARAM_ADDRESSES, NULL, \
        "Destination address or CIDR prefix; comma list for any of several" }
#define P_ADDR { "addr", API_PARAM_ADDRESSES, NULL, \
        "Source or destination address or CIDR prefix; comma list for any of several" }
#define P_SRC_PORT { "src_port", API_PARAM_PORTS, NULL, "Source port 0..65535; comma list" }
#define P_DST_PORT { "dst_port", API_PARAM_PORTS, NULL, "Destination port 0..65535; comma list" }
#define P_PORT { "port", API_PARAM_PORTS, NULL, "Source or destination port; comma list" }
#define P_PROTO { "proto", API_PARAM_PROTOCOLS, NULL, \
        "IP protocol: a number 0..255 or a name (tcp, udp, icmp, icmp6, gre, esp, sctp, " \
        "...); comma list" }
#define P_EXPORTER { "exporter", API_PARAM_ADDRESSES, NULL, \
        "Exporter address or CIDR prefix; comma list" }
#define P_ODID { "odid", API_PARAM_INTEGERS, NULL, \
        "Observation domain ID 0..4294967295; comma list" }
#define P_FILTER { "filter", API_PARAM_EXPRESSION, NULL, \
        "Advanced filter expression (the pipeline filter language), AND-ed with the other " \
        "filters" }
#define P_FROM(def) { "from", API_PARAM_TIME, def, \
        "Start of the window (inclusive): epoch ms, RFC 3339 (2026-11-25T10:00:00Z) or now-15m" }
#define P_TO(def) { "to", API_PARAM_TIME, def, \
        "End of the window (exclusive): epoch ms, RFC 3339 or now-5m" }
#define P_WINDOW { "window", API_PARAM_DURATION, "1h", \
        "Length of the window (15m, 1h, 24h or seconds) ending at to (or now), or starting " \
        "at from" }

static const ApiParamSpec flows_params[] = {
        P_SRC, P_DST, P_ADDR, P_SRC_PORT, P_DST_PORT, P_PORT, P_PROTO, P_EXPORTER, P_ODID,
        P_FROM(NULL), P_TO(NULL),
        { "limit", API_PARAM_INTEGER, "100", "Flows per page, 1..max_limit (1000)" },
        { "cursor", API_PARAM_STRING, NULL,
          "next_cursor of the previous page (at most 256 of A-Z a-z 0-9 . _ ~ : -)" },
        P_FILTER,
};

static const ApiParamSpec top_params[] = {
        { "by", API_PARAM_ENUM, "src",
          "Key to rank by: src, dst, src_port, dst_port, port (= dst_port), proto, exporter, "
          "pair" },
        { "metric", API_PARAM_ENUM, "octets", "Ranking metric: octets, packets or flows" },
        { "n", API_PARAM_INTEGER, "10", "Number of entries, 1..100" },
        P_WINDOW, P_FROM("to - window"), P_TO("now"),
};

static const ApiParamSpec timeseries_params[] = {
        { "interval", API_PARAM_DURATION, "1m",
          "Bucket length, a multiple of 60 s (1m, 5m, 1h), at most 7d" },
        P_WINDOW, P_FROM("to - window"), P_TO("now"),
};

static const ApiParamSpec stream_params[] = {
        P_SRC, P_DST, P_ADDR, P_SRC_PORT, P_DST_PORT, P_PORT, P_PROTO, P_EXPORTER, P_ODID,
        P_FILTER,
};

static const ApiParamSpec templates_params[] = {
        { "exporter", API_PARAM_ADDRESSES, NULL,
          "Only this exporter's templates: one IPv4 or IPv6 address (no prefix)" },
        { "odid", API_PARAM_INTEGER, NULL, "Only this observation domain ID, 0..4294967295" },
        { "limit", API_PARAM_INTEGER, "1000", "Templates at most, 1..10000" },
};

static const struct {
        const char *path;
        const ApiParamSpec *params;
        size_t n;
} routes[_ROUTE_MAX] = {
        [ROUTE_FLOWS] = { "/flows", flows_params, ELEMENTSOF(flows_params) },
        [ROUTE_TOP] = { "/flows/top", top_params, ELEMENTSOF(top_params) },
        [ROUTE_TIMESERIES] = { "/flows/timeseries", timeseries_params,
                               ELEMENTSOF(timeseries_params) },
        [ROUTE_STREAM] = { "/flows/stream", stream_params, ELEMENTSOF(stream_params) },
        [ROUTE_TEMPLATES] = { "/templates", templates_params, ELEMENTSOF(templates_params) },
};

#define MAX_ROUTE_PARAMS 16

/* The filter parameters, in expression order, with the flow-filter field each becomes. */
static const struct {
        const char *param;
        const char *field;
        ApiParamType type;
} filter_fields[] = {
        { "src", "src_addr", API_PARAM_ADDRESSES },
        { "dst", "dst_addr", API_PARAM_ADDRESSES },
        { "addr", "addr", API_PARAM_ADDRESSES },
        { "src_port", "src_port", API_PARAM_PORTS },
        { "dst_port", "dst_port", API_PARAM_PORTS },
        { "port", "port", API_PARAM_PORTS },
        { "proto", "proto", API_PARAM_PROTOCOLS },
        { "exporter", "exporter", API_PARAM_ADDRESSES },
        { "odid", "odid", API_PARAM_INTEGERS },
};

static const char *const type_names[_API_PARAM_TYPE_MAX] = {
        [API_PARAM_ADDRESSES] = "address",
        [API_PARAM_PORTS] = "ports",
        [API_PARAM_PROTOCOLS] = "protocols",
        [API_PARAM_INTEGERS] = "integers",
        [API_PARAM_INTEGER] = "integer",
        [API_PARAM_TIME] = "time",
        [API_PARAM_DURATION] = "duration",
        [API_PARAM_ENUM] = "enum",
        [API_PARAM_STRING] = "string",
        [API_PARAM_EXPRESSION] = "expression",
};

const char *api_param_type_to_string(ApiParamType t) {
        if ((int) t < 0 || t >= _API_PARAM_TYPE_MAX)
                return NULL;
        return type_names[t];
}

const ApiParamSpec *api_route_params(const char *route, size_t *ret_n) {
        assert(ret_n);

        *ret_n = 0;
        if (!route)
                return NULL;
        if (strncmp(route, "/api/v1/", 8) == 0)
                route += 7;
        for (size_t i = 0; i < _ROUTE_MAX; i++)
                if (strcmp(route, routes[i].path) == 0) {
                        *ret_n = routes[i].n;
                        return routes[i].params;
                }
        return NULL;
}

/* ---- errors --------------------------------------------------------------------------- */

/* Client text for a message: printable ASCII only, at most 48 bytes. */
static const char *quote(const char *s, char *buf, size_t size) {
        size_t i = 0, max = MIN(size - 4, (size_t) 48);

        for (; s && *s && i < max; s++)
                buf[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        if (s && *s) {
                memcpy(buf + i, "...", 3);
                i += 3;
        }
        buf[i] = 0;
        return buf;
}

_printf_(5, 6)
static int fail(ApiError *e, int r, const char *code, const char *param, const char *fmt, ...) {
        char p[sizeof(e->parameter)];
        int n;
        va_list ap;

        if (!e)
                return r;
        (void) quote(param, p, sizeof(p));
        *e = (ApiError) { .status = r == -ENOMEM ? 500 : 400 };
        (void) snprintf(e->code, sizeof(e->code), "%s", code);
        (void) snprintf(e->parameter, sizeof(e->parameter), "%s", p);
        n = p[0] ? snprintf(e->message, sizeof(e->message), "%s: ", p) : 0;
        va_start(ap, fmt);
        (void) vsnprintf(e->message + n, sizeof(e->message) - (size_t) n, fmt, ap);
        va_end(ap);
        return r;
}

#define bad(e, param, ...) fail(e, -EINVAL, "bad_parameter", param, __VA_ARGS__)
#define oom(e) fail(e, -ENOMEM, "internal", "", "out of memory")

json_t *api_error_json(const ApiError *e) {
        json_t *inner, *o;

        assert(e);
        inner = json_pack("{s:s, s:s}", "code", e->code, "message", e->message);
        if (!inner)
                return NULL;
        if (e->parameter[0] &&
            json_object_set_new(inner, "parameter", json_string(e->parameter)) < 0) {
                json_decref(inner);
                return NULL;
        }
        o = json_pack("{s:o}", "error", inner);
        return o;
}

/* ---- growable string ------------------------------------------------------------------ */

typedef struct Str {
        char *s;
        size_t len, cap;
        bool oom;
} Str;

_printf_(2, 3)
static void str_addf(Str *b, const char *fmt, ...) {
        va_list ap;
        int n;

        if (b->oom)
                return;
        for (;;) {
                size_t avail = b->cap - b->len;
                va_start(ap, fmt);
                n = vsnprintf(b->s ? b->s + b->len : NULL, avail, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if ((size_t) n < avail) {
                        b->len += (size_t) n;
                        return;
                }
                size_t cap = MAX(b->cap * 2, b->len + (size_t) n + 64);
                char *p = realloc(b->s, cap);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->s = p;
                b->cap = cap;
        }
}

/* ---- scalar parsers ------------------------------------------------------------------- */

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Decimal digits only, no sign or blanks. Return: 0, -EINVAL, -ERANGE (> @max). */
static int parse_uint(const char *s, size_t len, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (!is_digit(s[i]))
                        return -EINVAL;
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int api_parse_duration(const char *s, uint64_t *ret_s) {
        uint64_t total = 0, v;
        const char *p;
        int r;

        if (!s || !*s)
                return -EINVAL;
        p = s;
        while (is_digit(*p))
                p++;
        if (!*p) {
                r = parse_uint(s, (size_t) (p - s), DURATION_MAX_S, &v);
                if (r < 0)
                        return r;
                *ret_s = v;
                return 0;
        }
        p = s;
        while (*p) {
                const char *d = p;
                uint64_t mult;

                while (is_digit(*p))
                        p++;
                if (p == d)
                        return -EINVAL;
                switch (*p) {
                case 's': mult = 1; break;
                case 'm': mult = 60; break;
                case 'h': mult = 3600; break;
                case 'd': mult = 86400; break;
                default: return -EINVAL;
                }
                r = parse_uint(d, (size_t) (p - d), DURATION_MAX_S, &v);
                if (r < 0)
                        return r;
                v *= mult;
                if (v > DURATION_MAX_S || total + v > DURATION_MAX_S)
                        return -ERANGE;
                total += v;
                p++;
        }
        *ret_s = total;
        return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned) (y - era * 400);
        unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static bool is_leap(unsigned y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly @n digits. */
static bool digits(const char **p, unsigned n, unsigned *ret) {
        unsigned v = 0;

        for (unsigned i = 0; i < n; i++) {
                if (!is_digit((*p)[i]))
                        return false;
                v = v * 10 + (unsigned) ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static bool expect(const char **p, char c) {
        if (**p != c)
                return false;
        (*p)++;
        return true;
}

static int parse_rfc3339(const char *s, uint64_t *ret_ms) {
        static const unsigned mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        unsigned y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0;
        int64_t t, off = 0;
        const char *p = s;

        if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
            !digits(&p, 2, &d))
                return -EINVAL;
        if (*p != 'T' && *p != 't' && *p != ' ')
                return -EINVAL;
        p++;
        if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
            !digits(&p, 2, &sec))
                return -EINVAL;
        if (*p == '.') {
                unsigned n = 0;
                p++;
                if (!is_digit(*p))
                        return -EINVAL;
                for (; is_digit(*p); p++, n++)
                        if (n < 3)
                                ms = ms * 10 + (unsigned) (*p - '0');
                for (; n < 3; n++)
                        ms *= 10;
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int sign = *p == '-' ? -1 : 1;
                p++;
                if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 ||
                    om > 59)
                        return -EINVAL;
                off = sign * (int64_t) (oh * 3600 + om * 60);
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 ||
            d > mdays[mo - 1] + (mo == 2 && is_leap(y) ? 1 : 0) || h > 23 || mi > 59 || sec > 60)
                return -EINVAL;
        if (sec == 60) /* a leap second is read as the last second of its minute */
                sec = 59;
        t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
        if (t < 0)
                return -ERANGE;
        *ret_ms = (uint64_t) t * 1000 + ms;
        return 0;
}

int api_parse_time(const char *s, uint64_t now_ms, uint64_t *ret_ms) {
        uint64_t v;
        const char *p;
        int r;

        if (!s || !*s)
                return -EINVAL;
        if (strncmp(s, "now", 3) == 0) {
                p = s + 3;
                if (!*p) {
                        *ret_ms = now_ms;
                        return 0;
                }
                if (*p != '-' && *p != '+')
                        return -EINVAL;
                r = api_parse_duration(p + 1, &v);
                if (r < 0)
                        return r;
                v *= 1000;
                if (*p == '-') {
                        if (v > now_ms)
                                return -ERANGE;
                        *ret_ms = now_ms - v;
                } else {
                        if (now_ms > (uint64_t) INT64_MAX - v)
                                return -ERANGE;
                        *ret_ms = now_ms + v;
                }
                return 0;
        }
        for (p = s; is_digit(*p); p++)
                ;
        if (!*p)
                return parse_uint(s, (size_t) (p - s), INT64_MAX, ret_ms);
        return parse_rfc3339(s, ret_ms);
}

/* ---- filter parameters ---------------------------------------------------------------- */

static const struct {
        const char *name;
        uint8_t proto;
} proto_names[] = {
        { "icmp", 1 },    { "igmp", 2 },       { "tcp", 6 },     { "udp", 17 },
        { "ipv6", 41 },   { "gre", 47 },       { "esp", 50 },    { "ah", 51 },
        { "icmp6", 58 },  { "ipv6-icmp", 58 }, { "icmpv6", 58 }, { "ospf", 89 },
        { "pim", 103 },   { "vrrp", 112 },     { "l2tp", 115 },  { "sctp", 132 },
};

/* Formats one address or CIDR member canonically into @out. */
static int format_addr(const char *param, const char *s, size_t len, char *out, size_t outlen,
                       bool *ret_cidr, ApiError *e) {
        char text[64], q[64], canon[INET6_ADDRSTRLEN];
        uint8_t a[16];
        const char *slash;
        uint64_t plen = 0;
        bool v6, cidr;
        unsigned bits;

        if (len >= sizeof(text))
                return bad(e, param, "expected an IPv4 or IPv6 address or CIDR prefix, found '%s'",
                           quote(s, q, sizeof(q)));
        memcpy(text, s, len);
        text[len] = 0;
        slash = strchr(text, '/');
        cidr = slash;
        if (cidr)
                text[slash - text] = 0;
        v6 = strchr(text, ':');
        bits = v6 ? 128 : 32;
        if (inet_pton(v6 ? AF_INET6 : AF_INET, text, a) != 1) {
                if (cidr)
                        text[slash - text] = '/';
                return bad(e, param, "expected an IPv4 or IPv6 address or CIDR prefix, found '%s'",
                           quote(text, q, sizeof(q)));
        }
        if (cidr && parse_uint(slash + 1, strlen(slash + 1), bits, &plen) < 0) {
                text[slash - text] = '/';
                return bad(e, param, "prefix length in '%s' must be 0..%u",
                           quote(text, q, sizeof(q)), bits);
        }
        if (!inet_ntop(v6 ? AF_INET6 : AF_INET, a, canon, sizeof(canon)))
                return bad(e, param, "cannot format address");
        if (cidr) {
                bool host = false;
                for (unsigned i = 0; i < bits / 8; i++) {
                        unsigned keep = plen >= (i + 1) * 8 ? 8 : plen > i * 8 ? plen - i * 8 : 0;
                        uint8_t mask = keep ? (uint8_t) (0xff << (8 - keep)) : 0;
                        if (a[i] & ~mask) {
                                host = true;
                                a[i] &= mask;
                        }
                }
                if (host) {
                        char net[INET6_ADDRSTRLEN];
                        if (!inet_ntop(v6 ? AF_INET6 : AF_INET, a, net, sizeof(net)))
                                return bad(e, param, "cannot format address");
                        return bad(e, param, "%s/%" PRIu64 " has host bits set; did you mean "
                                   "%s/%" PRIu64 "?", canon, plen, net, plen);
                }
                (void) snprintf(out, outlen, "%s/%" PRIu64, canon, plen);
        } else
                (void) snprintf(out, outlen, "%s", canon);
        *ret_cidr = cidr;
        return 0;
}

static int format_member(ApiParamType type, const char *param, const char *s, size_t len,
                         char *out, size_t outlen, bool *ret_cidr, ApiError *e) {
        char q[64], tmp[64];
        uint64_t v;
        int r;

        *ret_cidr = false;
        (void) snprintf(tmp, sizeof(tmp), "%.*s", (int) MIN(len, sizeof(tmp) - 1), s);
        switch (type) {
        case API_PARAM_ADDRESSES:
                return format_addr(param, s, len, out, outlen, ret_cidr, e);
        case API_PARAM_PORTS:
                r = parse_uint(s, len, 65535, &v);
                if (r == -ERANGE)
                        return bad(e, param, "port %s is out of range (0..65535)",
                                   quote(tmp, q, sizeof(q)));
                if (r < 0)
                        return bad(e, param, "expected a port number 0..65535 or a comma list "
                                   "like 80,443, found '%s'", quote(tmp, q, sizeof(q)));
                break;
        case API_PARAM_PROTOCOLS:
                r = parse_uint(s, len, 255, &v);
                if (r == -ERANGE)
                        return bad(e, param, "protocol %s is out of range (0..255)",
                                   quote(tmp, q, sizeof(q)));
                if (r < 0) {
                        size_t i;
                        for (i = 0; i < ELEMENTSOF(proto_names); i++)
                                if (strlen(proto_names[i].name) == len &&
                                    strncasecmp(s, proto_names[i].name, len) == 0)
                                        break;
                        if (i == ELEMENTSOF(proto_names))
                                return bad(e, param, "unknown protocol '%s' (use a number 0..255 "
                                           "or icmp, igmp, tcp, udp, ipv6, gre, esp, ah, icmp6, "
                                           "ospf, pim, vrrp, l2tp, sctp)",
                                           quote(tmp, q, sizeof(q)));
                        v = proto_names[i].proto;
                }
                break;
        case API_PARAM_INTEGERS:
                r = parse_uint(s, len, UINT32_MAX, &v);
                if (r < 0)
                        return bad(e, param, "expected an integer 0..4294967295 or a comma list, "
                                   "found '%s'", quote(tmp, q, sizeof(q)));
                break;
        default:
                assert(false);
                return -EINVAL;
        }
        (void) snprintf(out, outlen, "%" PRIu64, v);
        return 0;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

/* Appends the term for one filter parameter ("field == x", "field in x/len" or
 * "field in (x, y)") to @b. */
static int add_term(Str *b, const char *param, const char *field, ApiParamType type,
                    const char *value, ApiError *e) {
        Str members = { 0 };
        char m[80];
        size_t n = 0;
        bool cidr = false;
        int r;

        for (const char *p = value;;) {
                const char *end = strchr(p, ',');
                const char *a = p, *z = end ? end : p + strlen(p);

                while (a < z && is_blank(*a))
                        a++;
                while (z > a && is_blank(z[-1]))
                        z--;
                if (a == z) {
                        free(members.s);
                        return bad(e, param, "empty member in the comma list");
                }
                r = format_member(type, param, a, (size_t) (z - a), m, sizeof(m), &cidr, e);
                if (r < 0) {
                        free(members.s);
                        return r;
                }
                str_addf(&members, "%s%s", n ? ", " : "", m);
                n++;
                if (!end)
                        break;
                p = end + 1;
        }
        if (!members.oom)
                str_addf(b, "%s%s %s%s%s%s", b->len ? " and " : "", field,
                         n > 1 || cidr ? "in" : "==", n > 1 ? " (" : " ", members.s,
                         n > 1 ? ")" : "");
        free(members.s);
        return members.oom || b->oom ? oom(e) : 0;
}

/* ---- collecting the arguments --------------------------------------------------------- */

static bool is_filter_param(const char *key) {
        if (strcmp(key, "filter") == 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(filter_fields); i++)
                if (strcmp(key, filter_fields[i].param) == 0)
                        return true;
        return false;
}

static int unknown(Route route, const char *key, ApiError *e) {
        char list[160];
        size_t n = 0;

        if ((route == ROUTE_TOP || route == ROUTE_TIMESERIES) && is_filter_param(key))
                return bad(e, key, "%s has no filters: it is answered from per-minute rollups, "
                           "which keep no per-flow detail; use /flows to filter flows",
                           routes[route].path);
        if (route == ROUTE_STREAM && (strcmp(key, "from") == 0 || strcmp(key, "to") == 0 ||
                                      strcmp(key, "limit") == 0 || strcmp(key, "cursor") == 0))
                return bad(e, key, "/flows/stream is live and sends flows as they arrive; from, "
                           "to, limit and cursor apply to /flows");
        list[0] = 0;
        for (size_t i = 0; i < routes[route].n; i++) {
                int k = snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
                                 routes[route].params[i].name);
                if (k < 0 || (size_t) k >= sizeof(list) - n)
                        break;
                n += (size_t) k;
        }
        return fail(e, -EINVAL, "unknown_parameter", key,
                    "unknown parameter; %s accepts %s", routes[route].path, list);
}

/* Maps each argument onto its slot in the route's table: vals[i] for params[i]. */
static int collect(Route route, const ApiKV *args, size_t n_args, const char **vals,
                   ApiError *e) {
        const ApiParamSpec *params = routes[route].params;
        size_t n = routes[route].n;

        assert(n <= MAX_ROUTE_PARAMS);
        assert(args || n_args == 0);
        for (size_t i = 0; i < n; i++)
                vals[i] = NULL;
        for (size_t a = 0; a < n_args; a++) {
                const char *key = args[a].key ? args[a].key : "";
                const char *value = args[a].value;
                size_t i;

                for (i = 0; i < n; i++)
                        if (strcmp(key, params[i].name) == 0)
                                break;
                if (i == n)
                        return unknown(route, key, e);
                if (vals[i])
                        return bad(e, key, "given twice (write lists with commas in one value)");
                if (!value || (!*value && params[i].type != API_PARAM_EXPRESSION))
                        return bad(e, key, "must have a value");
                vals[i] = value;
        }
        return 0;
}

static const char *val(Route route, const char **vals, const char *name) {
        for (size_t i = 0; i < routes[route].n; i++)
                if (strcmp(routes[route].params[i].name, name) == 0)
                        return vals[i];
        return NULL;
}

static bool blank(const char *s) {
        for (; s && *s; s++)
                if (!is_blank(*s) && *s != '\n' && *s != '\r')
                        return false;
        return true;
}

/* Builds and validates the filter expression of /flows and /flows/stream. */
static int build_expr(Route route, const char **vals, const ApiLimits *l, char **ret,
                      ApiError *e) {
        _cleanup_free_ char *cerr = NULL;
        const char *raw = val(route, vals, "filter"), *last = NULL;
        FlowFilter *f = NULL;
        Str b = { 0 };
        int r;

        if (raw && !blank(raw)) {
                if (strlen(raw) > l->max_expr_len)
                        return bad(e, "filter", "longer than %zu bytes", l->max_expr_len);
                r = flow_filter_compile(raw, &f, &cerr);
                if (r == -ENOMEM)
                        return oom(e);
                if (r < 0)
                        return bad(e, "filter", "%s", cerr ? cerr : strerror(-r));
                f = flow_filter_free(f);
        } else
                raw = NULL;

        for (size_t i = 0; i < ELEMENTSOF(filter_fields); i++) {
                const char *v = val(route, vals, filter_fields[i].param);
                if (!v)
                        continue;
                r = add_term(&b, filter_fields[i].param, filter_fields[i].field,
                             filter_fields[i].type, v, e);
                if (r < 0)
                        goto fail;
                last = filter_fields[i].param;
                if (b.len > l->max_expr_len) {
                        r = bad(e, last, "the combined filter would be longer than %zu bytes",
                                l->max_expr_len);
                        goto fail;
                }
        }
        if (raw) {
                if (b.len > 0)
                        str_addf(&b, " and (%s)", raw);
                else
                        str_addf(&b, "%s", raw);
                last = "filter";
                if (!b.oom && b.len > l->max_expr_len) {
                        r = bad(e, last, "the combined filter would be longer than %zu bytes",
                                l->max_expr_len);
                        goto fail;
                }
        }
        if (!b.s)
                str_addf(&b, "%s", "");
        if (b.oom) {
                r = oom(e);
                goto fail;
        }
        free(cerr);
        cerr = NULL;
        r = flow_filter_compile(b.s, &f, &cerr);
        if (r < 0) {
                r = r == -ENOMEM ? oom(e)
                                 : bad(e, last ? last : "filter", "%s", cerr ? cerr : strerror(-r));
                goto fail;
        }
        (void) flow_filter_free(f);
        *ret = b.s;
        return 0;
fail:
        free(b.s);
        return r;
}

/* ---- shared value checks -------------------------------------------------------------- */

static int time_arg(const char *param, const char *s, uint64_t now_ms, uint64_t *ret,
                    ApiError *e) {
        char q[64];
        int r = api_parse_time(s, now_ms, ret);

        if (r == -ERANGE)
                return bad(e, param, "'%s' is out of range (1970 .. epoch ms %" PRId64 ")",
                           quote(s, q, sizeof(q)), INT64_MAX);
        if (r < 0)
                return bad(e, param, "expected epoch milliseconds, an RFC 3339 time like "
                           "2026-11-25T10:00:00Z or a relative time like now-15m, found '%s'",
                           quote(s, q, sizeof(q)));
        return 0;
}

static int duration_arg(const char *param, const char *s, uint64_t *ret, ApiError *e) {
        char q[64];
        int r = api_parse_duration(s, ret);

        if (r == -ERANGE)
                return bad(e, param, "'%s' is too long", quote(s, q, sizeof(q)));
        if (r < 0)
                return bad(e, param, "expected a duration like 15m, 1h, 24h or a number of "
                           "seconds, found '%s'", quote(s, q, sizeof(q)));
        return 0;
}

static int uint_arg(const char *param, const char *s, uint64_t min, uint64_t max,
                    uint64_t *ret, ApiError *e) {
        char q[64];

        if (parse_uint(s, strlen(s), max, ret) < 0 || *ret < min)
                return bad(e, param, "must be an integer %" PRIu64 "..%" PRIu64 ", found '%s'",
                           min, max, quote(s, q, sizeof(q)));
        return 0;
}

/* The window of /flows/top and /flows/timeseries (see api_top_query_parse()). */
static int window_args(Route route, const char **vals, const ApiLimits *l, uint64_t now_ms,
                       uint64_t *ret_from, uint64_t *ret_to, ApiError *e) {
        const char *from_s = val(route, vals, "from"), *to_s = val(route, vals, "to"),
                   *window_s = val(route, vals, "window");
        uint64_t from = 0, to = now_ms, window = API_DEFAULT_WINDOW_S;
        int r;

        if (from_s && to_s && window_s)
                return bad(e, "window", "give at most two of from, to and window");
        if (window_s) {
                r = duration_arg("window", window_s, &window, e);
                if (r < 0)
                        return r;
                if (window == 0)
                        return bad(e, "window", "must be at least 1s");
                if (window > l->max_window_s)
                        return bad(e, "window", "at most %" PRIu64 " s (%" PRIu64 "d), found %s",
                                   l->max_window_s, l->max_window_s / 86400, window_s);
        }
        if (from_s && (r = time_arg("from", from_s, now_ms, &from, e)) < 0)
                return r;
        if (to_s && (r = time_arg("to", to_s, now_ms, &to, e)) < 0)
                return r;
        if (from_s && !to_s) {
                if (window_s) {
                        if (from > (uint64_t) INT64_MAX - window * 1000)
                                return bad(e, "from", "from + window is out of range");
                        to = from + window * 1000;
                } else
                        to = now_ms;
        } else if (!from_s) {
                if (to < window * 1000)
                        return bad(e, "window", "the window would start before 1970");
                from = to - window * 1000;
        }
        if (from >= to)
                return bad(e, "from", "must be before to (from %" PRIu64 " ms, to %" PRIu64
                           " ms)", from, to);
        if (to - from > l->max_window_s * 1000)
                return bad(e, "from", "from..to spans %" PRIu64 " s, at most %" PRIu64
                           " s (max_window_s)", (to - from + 999) / 1000, l->max_window_s);
        *ret_from = from;
        *ret_to = to;
        return 0;
}

/* ---- routes --------------------------------------------------------------------------- */

int api_flows_query_parse(const ApiKV *args, size_t n_args, const ApiLimits *limits,
                          uint64_t now_ms, ApiFlowsQuery *ret, ApiError *reterr) {
        const ApiLimits l = limits ? *limits : API_LIMITS_DEFAULT;
        const char *vals[MAX_ROUTE_PARAMS], *s, *cursor_s;
        _cleanup_free_ char *expr = NULL;
        char *cursor = NULL;
        uint64_t from = 0, to = API_TIME_OPEN, limit = MIN(l.default_limit, l.max_limit);
        char q[64];
        int r;

        assert(ret);
        r = collect(ROUTE_FLOWS, args, n_args, vals, reterr);
        if (r < 0)
                return r;
        if ((s = val(ROUTE_FLOWS, vals, "from")) && (r = time_arg("from", s, now_ms, &from,
                                                                  reterr)) < 0)
                return r;
        if ((s = val(ROUTE_FLOWS, vals, "to")) && (r = time_arg("to", s, now_ms, &to,
                                                                reterr)) < 0)
                return r;
        if (from >= to)
                return bad(reterr, "from", "must be before to (from %" PRIu64 " ms, to %" PRIu64
                           " ms)", from, to);
        if ((s = val(ROUTE_FLOWS, vals, "limit")) &&
            (r = uint_arg("limit", s, 1, l.max_limit, &limit, reterr)) < 0)
                return r;
        cursor_s = val(ROUTE_FLOWS, vals, "cursor");
        if (cursor_s) {
                size_t len = strlen(cursor_s);
                if (len > API_CURSOR_MAX)
                        return bad(reterr, "cursor", "longer than %u bytes", API_CURSOR_MAX);
                if (strspn(cursor_s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789._~:-") != len)
                        return bad(reterr, "cursor", "'%s' is not a cursor: use the next_cursor "
                                   "of the previous page as it is",
                                   quote(cursor_s, q, sizeof(q)));
        }
        r = build_expr(ROUTE_FLOWS, vals, &l, &expr, reterr);
        if (r < 0)
                return r;
        if (cursor_s) {
                cursor = strdup(cursor_s);
                if (!cursor)
                        return oom(reterr);
        }
        *ret = (ApiFlowsQuery) {
                .expr = TAKE_PTR(expr),
                .from_ms = from,
                .to_ms = to,
                .limit = (size_t) limit,
                .cursor = cursor,
        };
        return 0;
}

void api_flows_query_done(ApiFlowsQuery *q) {
        if (!q)
                return;
        free(q->expr);
        free(q->cursor);
        q->expr = q->cursor = NULL;
}

static const struct {
        const char *by;
        const char *dim;
} top_dims[] = {
        { "src", "src_addr" },        { "dst", "dst_addr" },   { "src_port", "src_port" },
        { "dst_port", "dst_port" },   { "port", "dst_port" },  { "proto", "proto" },
        { "exporter", "exporter" },   { "pair", "pair" },
};

static const char *const top_metrics[] = { "octets", "packets", "flows" };

int api_top_query_parse(const ApiKV *args, size_t n_args, const ApiLimits *limits,
                        uint64_t now_ms, ApiTopQuery *ret, ApiError *reterr) {
        const ApiLimits l = limits ? *limits : API_LIMITS_DEFAULT;
        const char *vals[MAX_ROUTE_PARAMS], *s, *dim = "src_addr", *metric = "octets";
        uint64_t from, to, n = API_TOP_DEFAULT_N;
        char q[64];
        int r;

        assert(ret);
        r = collect(ROUTE_TOP, args, n_args, vals, reterr);
        if (r < 0)
                return r;
        if ((s = val(ROUTE_TOP, vals, "by"))) {
                dim = NULL;
                for (size_t i = 0; i < ELEMENTSOF(top_dims) && !dim; i++)
                        if (strcmp(s, top_dims[i].by) == 0)
                                dim = top_dims[i].dim;
                if (!dim)
                        return bad(reterr, "by", "must be src, dst, src_port, dst_port, port, "
                                   "proto, exporter or pair, found '%s'", quote(s, q, sizeof(q)));
        }
        if ((s = val(ROUTE_TOP, vals, "metric"))) {
                metric = NULL;
                for (size_t i = 0; i < ELEMENTSOF(top_metrics) && !metric; i++)
                        if (strcmp(s, top_metrics[i]) == 0)
                                metric = top_metrics[i];
                if (!metric)
                        return bad(reterr, "metric", "must be octets, packets or flows, found "
                                   "'%s'", quote(s, q, sizeof(q)));
        }
        if ((s = val(ROUTE_TOP, vals, "n")) &&
            (r = uint_arg("n", s, 1, API_TOP_MAX_N, &n, reterr)) < 0)
                return r;
        r = window_args(ROUTE_TOP, vals, &l, now_ms, &from, &to, reterr);
        if (r < 0)
                return r;
        *ret = (ApiTopQuery) {
                .dim = dim, .metric = metric, .from_ms = from, .to_ms = to, .n = (size_t) n,
        };
        return 0;
}

int api_timeseries_query_parse(const ApiKV *args, size_t n_args, const ApiLimits *limits,
                               uint64_t now_ms, ApiTimeseriesQuery *ret, ApiError *reterr) {
        const ApiLimits l = limits ? *limits : API_LIMITS_DEFAULT;
        const char *vals[MAX_ROUTE_PARAMS], *s;
        uint64_t from, to, step = 60, points;
        int r;

        assert(ret);
        r = collect(ROUTE_TIMESERIES, args, n_args, vals, reterr);
        if (r < 0)
                return r;
        if ((s = val(ROUTE_TIMESERIES, vals, "interval"))) {
                r = duration_arg("interval", s, &step, reterr);
                if (r < 0)
                        return r;
                if (step == 0 || step % 60 != 0 || step > INTERVAL_MAX_S)
                        return bad(reterr, "interval", "must be a multiple of 60 s up to 7d "
                                   "(1m, 5m, 1h, ...), found %s", s);
        }
        r = window_args(ROUTE_TIMESERIES, vals, &l, now_ms, &from, &to, reterr);
        if (r < 0)
                return r;
        /* Points are aligned to multiples of step since the epoch on every pod. */
        points = (to - 1) / (step * 1000) - from / (step * 1000) + 1;
        if (points > l.max_points)
                return bad(reterr, "interval", "%" PRIu64 " points over the window, at most %zu: "
                           "widen the interval or narrow the window", points, l.max_points);
        *ret = (ApiTimeseriesQuery) {
                .from_ms = from, .to_ms = to, .step_s = (uint32_t) step, .points = (size_t) points,
        };
        return 0;
}

int api_stream_query_parse(const ApiKV *args, size_t n_args, const ApiLimits *limits,
                           ApiStreamQuery *ret, ApiError *reterr) {
        const ApiLimits l = limits ? *limits : API_LIMITS_DEFAULT;
        const char *vals[MAX_ROUTE_PARAMS];
        char *expr = NULL;
        int r;

        assert(ret);
        r = collect(ROUTE_STREAM, args, n_args, vals, reterr);
        if (r < 0)
                return r;
        r = build_expr(ROUTE_STREAM, vals, &l, &expr, reterr);
        if (r < 0)
                return r;
        *ret = (ApiStreamQuery) { .expr = expr };
        return 0;
}

void api_stream_query_done(ApiStreamQuery *q) {
        if (!q)
                return;
        free(q->expr);
        q->expr = NULL;
}

int api_templates_query_parse(const ApiKV *args, size_t n_args, ApiTemplatesQuery *ret,
                              ApiError *reterr) {
        const char *vals[MAX_ROUTE_PARAMS], *s;
        uint64_t odid = 0, limit = API_TEMPLATES_DEFAULT_LIMIT;
        uint8_t a[16];
        char q[64];
        int r;

        assert(ret);
        r = collect(ROUTE_TEMPLATES, args, n_args, vals, reterr);
        if (r < 0)
                return r;
        *ret = (ApiTemplatesQuery) {};
        if ((s = val(ROUTE_TEMPLATES, vals, "exporter"))) {
                int family = strchr(s, ':') ? AF_INET6 : AF_INET;

                if (inet_pton(family, s, a) != 1)
                        return bad(reterr, "exporter", "'%s' is not an IPv4 or IPv6 address",
                                   quote(s, q, sizeof(q)));
                /* Canonical text, as the collector writes it into the Redis key. */
                if (!inet_ntop(family, a, ret->exporter, sizeof(ret->exporter)))
                        return bad(reterr, "exporter", "cannot be written canonically");
                ret->has_exporter = true;
        }
        if ((s = val(ROUTE_TEMPLATES, vals, "odid"))) {
                r = uint_arg("odid", s, 0, UINT32_MAX, &odid, reterr);
                if (r < 0)
                        return r;
                ret->has_odid = true;
                ret->odid = (uint32_t) odid;
        }
        if ((s = val(ROUTE_TEMPLATES, vals, "limit")) &&
            (r = uint_arg("limit", s, 1, API_TEMPLATES_MAX_LIMIT, &limit, reterr)) < 0)
                return r;
        ret->limit = (size_t) limit;
        return 0;
}

/* ---- pod requests --------------------------------------------------------------------- */

static json_t *request_new(const char *op) {
        return json_pack("{s:i, s:s}", "v", 1, "op", op);
}

static bool set_u64(json_t *o, const char *key, uint64_t v) {
        return json_object_set_new(o, key, json_integer((json_int_t) v)) == 0;
}

json_t *api_flows_pod_request(const ApiFlowsQuery *q, const char *pod_cursor, size_t pod_limit,
                              uint64_t timeout_ms) {
        json_t *o;

        assert(q);
        o = request_new("flows");
        if (!o)
                return NULL;
        if ((q->expr && q->expr[0] &&
             json_object_set_new(o, "filter", json_string(q->expr)) < 0) ||
            !set_u64(o, "from_ms", q->from_ms) || !set_u64(o, "to_ms", q->to_ms) ||
            !set_u64(o, "limit", pod_limit ? pod_limit : q->limit) ||
            (pod_cursor && json_object_set_new(o, "cursor", json_string(pod_cursor)) < 0) ||
            (timeout_ms > 0 && !set_u64(o, "timeout_ms", timeout_ms))) {
                json_decref(o);
                return NULL;
        }
        return o;
}

json_t *api_top_pod_request(const ApiTopQuery *q, size_t pod_limit) {
        json_t *o;

        assert(q);
        o = request_new("top");
        if (!o)
                return NULL;
        if (json_object_set_new(o, "dim", json_string(q->dim)) < 0 ||
            json_object_set_new(o, "metric", json_string(q->metric)) < 0 ||
            !set_u64(o, "from_ms", q->from_ms) || !set_u64(o, "to_ms", q->to_ms) ||
            !set_u64(o, "limit", pod_limit ? pod_limit : q->n)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

json_t *api_timeseries_pod_request(const ApiTimeseriesQuery *q) {
        json_t *o;

        assert(q);
        o = request_new("totals");
        if (!o)
                return NULL;
        if (!set_u64(o, "from_ms", q->from_ms) || !set_u64(o, "to_ms", q->to_ms) ||
            !set_u64(o, "step_s", q->step_s)) {
                json_decref(o);
                return NULL;
        }
        return o;
}
