/* SPDX-License-Identifier: MIT */
/*
 * test-api-params.c - the public API's query strings: tables of query strings with the exact
 * filter expression, window and limits each must give (every parameter, lists, CIDR,
 * IPv6, combinations with a raw filter); tables of bad ones with the parameter, code and
 * message text each error must carry; time and duration formats; the pod requests' JSON;
 * the per-route parameter tables. The clock is fixed at NOW (2026-11-25T10:00:00Z).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "api-params.h"
#include "macro.h"

#define NOW 1795600800000ull    /* 2026-11-25T10:00:00Z */
#define H 3600000ull
#define M 60000ull

/* A query string split on '&' and the first '=' (no percent-decoding: the tests write the
 * decoded text). A part without '=' has a NULL value, as libmicrohttpd reports it. */
typedef struct Args {
        char *buf;
        ApiKV kv[32];
        size_t n;
} Args;

static void args_split(Args *a, const char *qs) {
        char *p;

        memset(a, 0, sizeof(*a));
        a->buf = strdup(qs);
        assert_non_null(a->buf);
        if (!*qs)
                return;
        p = a->buf;
        for (;;) {
                char *amp = strchr(p, '&'), *eq;
                if (amp)
                        *amp = 0;
                eq = strchr(p, '=');
                if (eq)
                        *eq = 0;
                assert_true(a->n < ELEMENTSOF(a->kv));
                a->kv[a->n++] = (ApiKV) { p, eq ? eq + 1 : NULL };
                if (!amp)
                        break;
                p = amp + 1;
        }
}

static void args_done(Args *a) {
        free(a->buf);
}

static void check_error(const ApiError *e, const char *param, const char *code,
                        const char *needle, const char *qs) {
        if (strcmp(e->parameter, param) != 0 || strcmp(e->code, code) != 0 ||
            !strstr(e->message, needle) || e->status != 400 ||
            strncmp(e->message, param, strlen(param)) != 0)
                fail_msg("query '%s': got status %d code %s parameter '%s' message '%s'; "
                         "expected %s '%s' containing '%s'", qs, e->status, e->code, e->parameter,
                         e->message, code, param, needle);
}

/* ---- /flows --------------------------------------------------------------------------- */

static const struct {
        const char *qs;
        const char *expr;
        uint64_t from_ms, to_ms;
        size_t limit;
        const char *cursor;
} flows_ok[] = {
        { "", "", 0, API_TIME_OPEN, 100, NULL },
        { "src=10.0.0.0/8", "src_addr in 10.0.0.0/8", 0, API_TIME_OPEN, 100, NULL },
        { "src=10.1.2.3", "src_addr == 10.1.2.3", 0, API_TIME_OPEN, 100, NULL },
        { "dst=192.0.2.0/24", "dst_addr in 192.0.2.0/24", 0, API_TIME_OPEN, 100, NULL },
        { "addr=192.0.2.1", "addr == 192.0.2.1", 0, API_TIME_OPEN, 100, NULL },
        { "src=2001:DB8::0001", "src_addr == 2001:db8::1", 0, API_TIME_OPEN, 100, NULL },
        { "dst=2001:db8:1::/48", "dst_addr in 2001:db8:1::/48", 0, API_TIME_OPEN, 100, NULL },
        { "src=0.0.0.0/0", "src_addr in 0.0.0.0/0", 0, API_TIME_OPEN, 100, NULL },
        { "src=::/0", "src_addr in ::/0", 0, API_TIME_OPEN, 100, NULL },
        { "src=10.1.2.3/32", "src_addr in 10.1.2.3/32", 0, API_TIME_OPEN, 100, NULL },
        { "src=::ffff:10.1.2.3", "src_addr == ::ffff:10.1.2.3", 0, API_TIME_OPEN, 100, NULL },
        { "src=10.0.0.0/8,192.168.0.0/16", "src_addr in (10.0.0.0/8, 192.168.0.0/16)", 0,
          API_TIME_OPEN, 100, NULL },
        { "addr=10.0.0.1, 2001:db8::/32", "addr in (10.0.0.1, 2001:db8::/32)", 0,
          API_TIME_OPEN, 100, NULL },
        { "src_port=53", "src_port == 53", 0, API_TIME_OPEN, 100, NULL },
        { "dst_port=80,443", "dst_port in (80, 443)", 0, API_TIME_OPEN, 100, NULL },
        { "dst_port=0", "dst_port == 0", 0, API_TIME_OPEN, 100, NULL },
        { "port=65535", "port == 65535", 0, API_TIME_OPEN, 100, NULL },
        { "port=22, 80 ,443", "port in (22, 80, 443)", 0, API_TIME_OPEN, 100, NULL },
        { "proto=6", "proto == 6", 0, API_TIME_OPEN, 100, NULL },
        { "proto=tcp", "proto == 6", 0, API_TIME_OPEN, 100, NULL },
        { "proto=UDP", "proto == 17", 0, API_TIME_OPEN, 100, NULL },
        { "proto=tcp,udp,icmp6,132", "proto in (6, 17, 58, 132)", 0, API_TIME_OPEN, 100, NULL },
        { "proto=ipv6-icmp", "proto == 58", 0, API_TIME_OPEN, 100, NULL },
        { "exporter=172.16.0.1", "exporter == 172.16.0.1", 0, API_TIME_OPEN, 100, NULL },
        { "exporter=172.16.0.0/12", "exporter in 172.16.0.0/12", 0, API_TIME_OPEN, 100, NULL },
        { "odid=5", "odid == 5", 0, API_TIME_OPEN, 100, NULL },
        { "odid=0,4294967295", "odid in (0, 4294967295)", 0, API_TIME_OPEN, 100, NULL },
        { "filter=tos == 4", "tos == 4", 0, API_TIME_OPEN, 100, NULL },
        { "filter=", "", 0, API_TIME_OPEN, 100, NULL },
        { "filter=   ", "", 0, API_TIME_OPEN, 100, NULL },
        /* fixed order whatever the argument order; the raw filter last, in parentheses */
        { "proto=6&dst_port=80,443&src=10.0.0.0/8",
          "src_addr in 10.0.0.0/8 and dst_port in (80, 443) and proto == 6", 0, API_TIME_OPEN,
          100, NULL },
        { "filter=proto == udp or proto == tcp&src=10.0.0.0/8",
          "src_addr in 10.0.0.0/8 and (proto == udp or proto == tcp)", 0, API_TIME_OPEN, 100,
          NULL },
        { "odid=1&exporter=10.9.9.9&proto=17&port=53&dst_port=53&src_port=1024&addr=10.0.0.1"
          "&dst=10.0.0.2&src=10.0.0.3",
          "src_addr == 10.0.0.3 and dst_addr == 10.0.0.2 and addr == 10.0.0.1 and src_port == "
          "1024 and dst_port == 53 and port == 53 and proto == 17 and exporter == 10.9.9.9 and "
          "odid == 1", 0, API_TIME_OPEN, 100, NULL },
        /* time, limit, cursor */
        { "from=1795597200000&to=1795600800000", "", NOW - H, NOW, 100, NULL },
        { "from=2026-11-25T09:00:00Z&to=now", "", NOW - H, NOW, 100, NULL },
        { "from=now-15m", "", NOW - 15 * M, API_TIME_OPEN, 100, NULL },
        { "to=now-1h", "", 0, NOW - H, 100, NULL },
        { "limit=1", "", 0, API_TIME_OPEN, 1, NULL },
        { "limit=1000", "", 0, API_TIME_OPEN, 1000, NULL },
        { "cursor=1795600800000:42", "", 0, API_TIME_OPEN, 100, "1795600800000:42" },
        { "cursor=AZaz09._~:-", "", 0, API_TIME_OPEN, 100, "AZaz09._~:-" },
        { "src=10.0.0.0/8&from=now-1h&limit=50&cursor=abc", "src_addr in 10.0.0.0/8",
          NOW - H, API_TIME_OPEN, 50, "abc" },
};

static void test_flows_ok(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(flows_ok); i++) {
                ApiFlowsQuery q = { 0 };
                ApiError e = { 0 };
                Args a;
                int r;

                args_split(&a, flows_ok[i].qs);
                r = api_flows_query_parse(a.kv, a.n, NULL, NOW, &q, &e);
                if (r < 0)
                        fail_msg("'%s': %s", flows_ok[i].qs, e.message);
                if (strcmp(q.expr, flows_ok[i].expr) != 0)
                        fail_msg("'%s': expression '%s', expected '%s'", flows_ok[i].qs, q.expr,
                                 flows_ok[i].expr);
                assert_int_equal(q.from_ms, flows_ok[i].from_ms);
                assert_int_equal(q.to_ms, flows_ok[i].to_ms);
                assert_int_equal(q.limit, flows_ok[i].limit);
                if (flows_ok[i].cursor)
                        assert_string_equal(q.cursor, flows_ok[i].cursor);
                else
                        assert_null(q.cursor);
                api_flows_query_done(&q);
                assert_null(q.expr);
                args_done(&a);
        }
}

static const struct {
        const char *qs;
        const char *param;
        const char *code;
        const char *needle;
} flows_err[] = {
        { "foo=1", "foo", "unknown_parameter", "unknown parameter; /flows accepts src, dst" },
        { "SRC=10.0.0.1", "SRC", "unknown_parameter", "unknown parameter" },
        { "by=src", "by", "unknown_parameter", "unknown parameter" },
        { "src=10.0.0.1&src=10.0.0.2", "src", "bad_parameter", "given twice" },
        { "limit=5&limit=5", "limit", "bad_parameter", "given twice" },
        { "src", "src", "bad_parameter", "must have a value" },
        { "src=", "src", "bad_parameter", "must have a value" },
        { "src=10.0.0", "src", "bad_parameter", "expected an IPv4 or IPv6 address" },
        { "src=example.com", "src", "bad_parameter", "found 'example.com'" },
        { "dst=10.0.0.256", "dst", "bad_parameter", "expected an IPv4 or IPv6 address" },
        { "src=10.0.0.1/8", "src", "bad_parameter",
          "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?" },
        { "addr=2001:db8::1/32", "addr", "bad_parameter", "did you mean 2001:db8::/32?" },
        { "src=10.0.0.0/33", "src", "bad_parameter",
          "prefix length in '10.0.0.0/33' must be 0..32" },
        { "src=::/129", "src", "bad_parameter", "must be 0..128" },
        { "src=10.0.0.0/", "src", "bad_parameter", "prefix length" },
        { "src=10.0.0.0/8,", "src", "bad_parameter", "empty member" },
        { "exporter=fe80::1%eth0", "exporter", "bad_parameter", "expected an IPv4 or IPv6" },
        { "dst_port=70000", "dst_port", "bad_parameter", "port 70000 is out of range (0..65535)" },
        { "src_port=http", "src_port", "bad_parameter", "found 'http'" },
        { "port=80,,443", "port", "bad_parameter", "empty member" },
        { "port=-1", "port", "bad_parameter", "expected a port number" },
        { "port=80-90", "port", "bad_parameter", "expected a port number" },
        { "proto=foo", "proto", "bad_parameter", "unknown protocol 'foo'" },
        { "proto=256", "proto", "bad_parameter", "protocol 256 is out of range (0..255)" },
        { "odid=4294967296", "odid", "bad_parameter", "expected an integer 0..4294967295" },
        { "from=yesterday", "from", "bad_parameter", "expected epoch milliseconds" },
        { "to=2026-13-01T00:00:00Z", "to", "bad_parameter", "RFC 3339" },
        { "from=now&to=now-1h", "from", "bad_parameter", "must be before to" },
        { "from=1000&to=1000", "from", "bad_parameter", "must be before to" },
        { "limit=0", "limit", "bad_parameter", "must be an integer 1..1000, found '0'" },
        { "limit=1001", "limit", "bad_parameter", "must be an integer 1..1000" },
        { "limit=ten", "limit", "bad_parameter", "found 'ten'" },
        { "cursor=abc def", "cursor", "bad_parameter", "is not a cursor" },
        { "cursor=a/b", "cursor", "bad_parameter", "is not a cursor" },
        { "filter", "filter", "bad_parameter", "must have a value" },
        { "filter=proto ==", "filter", "bad_parameter", "filter: column 9: " },
        { "src=10.0.0.0/8&filter=dst_port == 70000", "filter", "bad_parameter",
          "filter: column 13: " },
        { "filter=proto == 6)", "filter", "bad_parameter", "column 11: unbalanced" },
        { "from=now-36500d", "from", "bad_parameter", "out of range" },
};

static void test_flows_err(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(flows_err); i++) {
                ApiFlowsQuery q = { 0 };
                ApiError e = { 0 };
                Args a;
                int r;

                args_split(&a, flows_err[i].qs);
                r = api_flows_query_parse(a.kv, a.n, NULL, NOW, &q, &e);
                if (r != -EINVAL)
                        fail_msg("'%s': accepted (%d), expression '%s'", flows_err[i].qs, r,
                                 q.expr ? q.expr : "");
                check_error(&e, flows_err[i].param, flows_err[i].code, flows_err[i].needle,
                            flows_err[i].qs);
                assert_null(q.expr); /* untouched on failure */
                args_done(&a);
        }
}

static void test_flows_limits(void **state) {
        ApiLimits l = API_LIMITS_DEFAULT;
        ApiFlowsQuery q = { 0 };
        ApiError e = { 0 };
        char *big;
        ApiKV kv[2];
        int r;

        /* default and cap come from the limits */
        l.max_limit = 20;
        l.default_limit = 5;
        assert_int_equal(api_flows_query_parse(NULL, 0, &l, NOW, &q, &e), 0);
        assert_int_equal(q.limit, 5);
        api_flows_query_done(&q);
        kv[0] = (ApiKV) { "limit", "21" };
        assert_int_equal(api_flows_query_parse(kv, 1, &l, NOW, &q, &e), -EINVAL);
        check_error(&e, "limit", "bad_parameter", "1..20", "limit=21");

        /* raw filter at and past max_expr_len */
        l = API_LIMITS_DEFAULT;
        l.max_expr_len = 39;
        kv[0] = (ApiKV) { "filter", "proto == 6 or proto == 17 or proto == 1" }; /* 39 bytes */
        assert_int_equal(strlen(kv[0].value), 39);
        assert_int_equal(api_flows_query_parse(kv, 1, &l, NOW, &q, &e), 0);
        assert_string_equal(q.expr, kv[0].value);
        api_flows_query_done(&q);
        kv[0] = (ApiKV) { "filter", "proto == 6 or proto == 17 or proto == 1 " };
        assert_int_equal(api_flows_query_parse(kv, 1, &l, NOW, &q, &e), -EINVAL);
        check_error(&e, "filter", "bad_parameter", "longer than 39 bytes", "filter (40)");

        /* the combined expression: the parameter that pushes it over is named */
        kv[0] = (ApiKV) { "src", "10.0.0.0/8" };
        kv[1] = (ApiKV) { "filter", "proto == 6 or proto == 17" };
        assert_int_equal(api_flows_query_parse(kv, 2, &l, NOW, &q, &e), -EINVAL);
        check_error(&e, "filter", "bad_parameter", "combined filter would be longer than 39",
                    "src+filter");
        kv[0] = (ApiKV) { "src", "10.0.0.0/8,10.0.0.0/8,10.0.0.0/8" };
        assert_int_equal(api_flows_query_parse(kv, 1, &l, NOW, &q, &e), -EINVAL);
        check_error(&e, "src", "bad_parameter", "combined filter would be longer", "src list");

        /* a port list of 1025 members passes max_expr_len but not the filter's set cap */
        l.max_expr_len = 8192;
        big = malloc(1025 * 2 + 1);
        assert_non_null(big);
        for (size_t i = 0; i < 1025; i++)
                memcpy(big + 2 * i, i ? ",1" : "1,", 2);
        big[0] = '1';
        big[1] = ',';
        big[2049] = '1';
        big[2050] = 0;
        kv[0] = (ApiKV) { "dst_port", big };
        r = api_flows_query_parse(kv, 1, &l, NOW, &q, &e);
        assert_int_equal(r, -EINVAL);
        assert_string_equal(e.parameter, "dst_port");
        free(big);
}

static void test_flows_request(void **state) {
        ApiFlowsQuery q = { 0 };
        ApiError e = { 0 };
        json_t *req, *want;
        Args a;

        args_split(&a, "src=10.0.0.0/8&dst_port=80,443&from=now-1h&to=now&limit=50");
        assert_int_equal(api_flows_query_parse(a.kv, a.n, NULL, NOW, &q, &e), 0);

        req = api_flows_pod_request(&q, NULL, 0, 0);
        want = json_pack("{s:i, s:s, s:s, s:I, s:I, s:i}", "v", 1, "op", "flows", "filter",
                         "src_addr in 10.0.0.0/8 and dst_port in (80, 443)", "from_ms",
                         (json_int_t) (NOW - H), "to_ms", (json_int_t) NOW, "limit", 50);
        assert_true(json_equal(req, want));
        json_decref(req);
        json_decref(want);

        req = api_flows_pod_request(&q, "1795600799000:17", 51, 1600);
        assert_string_equal(json_string_value(json_object_get(req, "cursor")),
                            "1795600799000:17");
        assert_int_equal(json_integer_value(json_object_get(req, "limit")), 51);
        assert_int_equal(json_integer_value(json_object_get(req, "timeout_ms")), 1600);
        json_decref(req);
        api_flows_query_done(&q);
        args_done(&a);

        /* no filter member for the empty expression; the open window is explicit */
        assert_int_equal(api_flows_query_parse(NULL, 0, NULL, NOW, &q, &e), 0);
        req = api_flows_pod_request(&q, NULL, 0, 0);
        want = json_pack("{s:i, s:s, s:I, s:I, s:i}", "v", 1, "op", "flows", "from_ms",
                         (json_int_t) 0, "to_ms", (json_int_t) INT64_MAX, "limit", 100);
        assert_true(json_equal(req, want));
        json_decref(req);
        json_decref(want);
        api_flows_query_done(&q);
        api_flows_query_done(&q); /* idempotent */
}

/* ---- /flows/top ----------------------------------------------------------------------- */

static const struct {
        const char *qs;
        const char *dim, *metric;
        uint64_t from_ms, to_ms;
        size_t n;
} top_ok[] = {
        { "", "src_addr", "octets", NOW - H, NOW, 10 },
        { "by=src", "src_addr", "octets", NOW - H, NOW, 10 },
        { "by=dst", "dst_addr", "octets", NOW - H, NOW, 10 },
        { "by=src_port", "src_port", "octets", NOW - H, NOW, 10 },
        { "by=dst_port", "dst_port", "octets", NOW - H, NOW, 10 },
        { "by=port", "dst_port", "octets", NOW - H, NOW, 10 },
        { "by=proto", "proto", "octets", NOW - H, NOW, 10 },
        { "by=exporter", "exporter", "octets", NOW - H, NOW, 10 },
        { "by=pair&metric=packets", "pair", "packets", NOW - H, NOW, 10 },
        { "metric=flows&n=1", "src_addr", "flows", NOW - H, NOW, 1 },
        { "n=100", "src_addr", "octets", NOW - H, NOW, 100 },
        { "window=15m", "src_addr", "octets", NOW - 15 * M, NOW, 10 },
        { "window=24h", "src_addr", "octets", NOW - 24 * H, NOW, 10 },
        { "window=900", "src_addr", "octets", NOW - 15 * M, NOW, 10 },
        { "window=7d", "src_addr", "octets", NOW - 168 * H, NOW, 10 },
        { "from=now-2h", "src_addr", "octets", NOW - 2 * H, NOW, 10 },
        { "to=now-1h", "src_addr", "octets", NOW - 2 * H, NOW - H, 10 },
        { "from=now-3h&to=now-1h", "src_addr", "octets", NOW - 3 * H, NOW - H, 10 },
        { "from=now-3h&window=30m", "src_addr", "octets", NOW - 3 * H, NOW - 3 * H + 30 * M, 10 },
        { "to=2026-11-25T09:00:00Z&window=1h", "src_addr", "octets", NOW - 2 * H, NOW - H, 10 },
};

static void test_top_ok(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(top_ok); i++) {
                ApiTopQuery q = { 0 };
                ApiError e = { 0 };
                Args a;

                args_split(&a, top_ok[i].qs);
                if (api_top_query_parse(a.kv, a.n, NULL, NOW, &q, &e) < 0)
                        fail_msg("'%s': %s", top_ok[i].qs, e.message);
                assert_string_equal(q.dim, top_ok[i].dim);
                assert_string_equal(q.metric, top_ok[i].metric);
                assert_int_equal(q.from_ms, top_ok[i].from_ms);
                assert_int_equal(q.to_ms, top_ok[i].to_ms);
                assert_int_equal(q.n, top_ok[i].n);
                args_done(&a);
        }
}

static const struct {
        const char *qs;
        const char *param, *code, *needle;
} top_err[] = {
        { "by=source", "by", "bad_parameter", "must be src, dst" },
        { "metric=bytes", "metric", "bad_parameter", "must be octets, packets or flows" },
        { "n=0", "n", "bad_parameter", "1..100" },
        { "n=101", "n", "bad_parameter", "1..100" },
        { "window=8d", "window", "bad_parameter", "at most 604800 s" },
        { "window=0", "window", "bad_parameter", "at least 1s" },
        { "window=1y", "window", "bad_parameter", "expected a duration" },
        { "from=now-8d", "from", "bad_parameter", "at most 604800 s" },
        { "from=now-1h&to=now-2h", "from", "bad_parameter", "must be before to" },
        { "from=now-2h&to=now&window=1h", "window", "bad_parameter", "at most two" },
        { "to=0", "window", "bad_parameter", "before 1970" },
        { "src=10.0.0.0/8", "src", "bad_parameter", "/flows/top has no filters" },
        { "filter=proto == 6", "filter", "bad_parameter", "per-minute rollups" },
        { "proto=tcp", "proto", "bad_parameter", "use /flows" },
        { "limit=10", "limit", "unknown_parameter", "/flows/top accepts by, metric, n" },
        { "interval=1m", "interval", "unknown_parameter", "unknown parameter" },
        { "by=src&by=dst", "by", "bad_parameter", "given twice" },
};

static void test_top_err(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(top_err); i++) {
                ApiTopQuery q = { 0 };
                ApiError e = { 0 };
                Args a;

                args_split(&a, top_err[i].qs);
                if (api_top_query_parse(a.kv, a.n, NULL, NOW, &q, &e) != -EINVAL)
                        fail_msg("'%s': accepted", top_err[i].qs);
                check_error(&e, top_err[i].param, top_err[i].code, top_err[i].needle,
                            top_err[i].qs);
                assert_null(q.dim);
                args_done(&a);
        }
}

static void test_top_request(void **state) {
        ApiLimits l = API_LIMITS_DEFAULT;
        ApiTopQuery q = { 0 };
        ApiError e = { 0 };
        json_t *req, *want;
        Args a;

        args_split(&a, "by=pair&metric=flows&n=20&window=15m");
        assert_int_equal(api_top_query_parse(a.kv, a.n, NULL, NOW, &q, &e), 0);
        req = api_top_pod_request(&q, 0);
        want = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:i}", "v", 1, "op", "top", "dim", "pair",
                         "metric", "flows", "from_ms", (json_int_t) (NOW - 15 * M), "to_ms",
                         (json_int_t) NOW, "limit", 20);
        assert_true(json_equal(req, want));
        json_decref(req);
        req = api_top_pod_request(&q, 200);
        assert_int_equal(json_integer_value(json_object_get(req, "limit")), 200);
        json_decref(req);
        json_decref(want);
        args_done(&a);

        /* max_window_s is configurable */
        l.max_window_s = 3600;
        args_split(&a, "window=61m");
        assert_int_equal(api_top_query_parse(a.kv, a.n, &l, NOW, &q, &e), -EINVAL);
        check_error(&e, "window", "bad_parameter", "at most 3600 s", "window=61m");
        args_done(&a);
}

/* ---- /flows/timeseries ---------------------------------------------------------------- */

static void test_timeseries(void **state) {
        static const struct {
                const char *qs;
                uint64_t from_ms, to_ms;
                uint32_t step_s;
                size_t points;
        } ok[] = {
                { "", NOW - H, NOW, 60, 60 },
                { "interval=5m", NOW - H, NOW, 300, 12 },
                { "interval=1h&window=24h", NOW - 24 * H, NOW, 3600, 24 },
                { "interval=120", NOW - H, NOW, 120, 30 },
                { "interval=1m&from=now-90s", NOW - 90000, NOW, 60, 2 },
                /* unaligned bounds touch one more bucket */
                { "interval=1h&from=1795598100000&to=1795600860000", 1795598100000, 1795600860000,
                  3600, 2 },
                { "interval=1m&window=6d", NOW - 144 * H, NOW, 60, 8640 },
                { "interval=7d&window=7d", NOW - 168 * H, NOW, 604800, 2 },
        };
        static const struct {
                const char *qs;
                const char *param, *code, *needle;
        } err[] = {
                { "interval=90s", "interval", "bad_parameter", "multiple of 60 s" },
                { "interval=0", "interval", "bad_parameter", "multiple of 60 s" },
                { "interval=8d", "interval", "bad_parameter", "up to 7d" },
                { "interval=fast", "interval", "bad_parameter", "expected a duration" },
                { "interval=1m&window=7d&to=now-30s", "interval", "bad_parameter",
                  "10081 points over the window, at most 10000" },
                { "window=8d&interval=1h", "window", "bad_parameter", "at most 604800 s" },
                { "dst_port=80", "dst_port", "bad_parameter", "/flows/timeseries has no filters" },
                { "by=src", "by", "unknown_parameter", "/flows/timeseries accepts interval" },
        };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                ApiTimeseriesQuery q = { 0 };
                ApiError e = { 0 };
                Args a;

                args_split(&a, ok[i].qs);
                if (api_timeseries_query_parse(a.kv, a.n, NULL, NOW, &q, &e) < 0)
                        fail_msg("'%s': %s", ok[i].qs, e.message);
                assert_int_equal(q.from_ms, ok[i].from_ms);
                assert_int_equal(q.to_ms, ok[i].to_ms);
                assert_int_equal(q.step_s, ok[i].step_s);
                if (q.points != ok[i].points)
                        fail_msg("'%s': %zu points, expected %zu", ok[i].qs, q.points,
                                 ok[i].points);
                args_done(&a);
        }
        for (size_t i = 0; i < ELEMENTSOF(err); i++) {
                ApiTimeseriesQuery q = { 0 };
                ApiError e = { 0 };
                Args a;

                args_split(&a, err[i].qs);
                if (api_timeseries_query_parse(a.kv, a.n, NULL, NOW, &q, &e) != -EINVAL)
                        fail_msg("'%s': accepted", err[i].qs);
                check_error(&e, err[i].param, err[i].code, err[i].needle, err[i].qs);
                args_done(&a);
        }
}

static void test_timeseries_request(void **state) {
        ApiTimeseriesQuery q = { 0 };
        ApiError e = { 0 };
        json_t *req, *want;
        ApiLimits l = API_LIMITS_DEFAULT;
        Args a;

        args_split(&a, "interval=5m&window=2h");
        assert_int_equal(api_timeseries_query_parse(a.kv, a.n, NULL, NOW, &q, &e), 0);
        req = api_timeseries_pod_request(&q);
        want = json_pack("{s:i, s:s, s:I, s:I, s:i}", "v", 1, "op", "totals", "from_ms",
                         (json_int_t) (NOW - 2 * H), "to_ms", (json_int_t) NOW, "step_s", 300);
        assert_true(json_equal(req, want));
        json_decref(req);
        json_decref(want);
        args_done(&a);

        l.max_points = 10;
        args_split(&a, "interval=1m&window=11m");
        assert_int_equal(api_timeseries_query_parse(a.kv, a.n, &l, NOW, &q, &e), -EINVAL);
        check_error(&e, "interval", "bad_parameter", "11 points", "max_points 10");
        args_done(&a);
}

/* ---- /flows/stream -------------------------------------------------------------------- */

static void test_stream(void **state) {
        static const struct {
                const char *qs, *expr;
        } ok[] = {
                { "", "" },
                { "src=10.0.0.0/8&proto=tcp", "src_addr in 10.0.0.0/8 and proto == 6" },
                { "port=53&filter=octets > 1000", "port == 53 and (octets > 1000)" },
        };
        static const struct {
                const char *qs, *param, *code, *needle;
        } err[] = {
                { "from=now-1h", "from", "bad_parameter", "/flows/stream is live" },
                { "to=now", "to", "bad_parameter", "is live" },
                { "limit=10", "limit", "bad_parameter", "is live" },
                { "cursor=1:2", "cursor", "bad_parameter", "is live" },
                { "window=1h", "window", "unknown_parameter", "/flows/stream accepts src" },
                { "dst=10.0.0.1/24", "dst", "bad_parameter", "did you mean 10.0.0.0/24?" },
                { "filter=bogus == 1", "filter", "bad_parameter", "filter: column 1: " },
                { "port=1&port=2", "port", "bad_parameter", "given twice" },
        };

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                ApiStreamQuery q = { 0 };
                ApiError e = { 0 };
                Args a;

                args_split(&a, ok[i].qs);
                if (api_stream_query_parse(a.kv, a.n, NULL, &q, &e) < 0)
                        fail_msg("'%s': %s", ok[i].qs, e.message);
                assert_string_equal(q.expr, ok[i].expr);
                api_stream_query_done(&q);
                args_done(&a);
        }
        for (size_t i = 0; i < ELEMENTSOF(err); i++) {
                ApiStreamQuery q = { 0 };
                ApiError e = { 0 };
                Args a;

                args_split(&a, err[i].qs);
                if (api_stream_query_parse(a.kv, a.n, NULL, &q, &e) != -EINVAL)
                        fail_msg("'%s': accepted", err[i].qs);
                check_error(&e, err[i].param, err[i].code, err[i].needle, err[i].qs);
                assert_null(q.expr);
                args_done(&a);
        }
}

/* ---- building blocks ------------------------------------------------------------------ */

static void test_parse_time(void **state) {
        static const struct {
                const char *s;
                int r;
                uint64_t ms;
        } t[] = {
                { "0", 0, 0 },
                { "1795600800000", 0, NOW },
                { "9223372036854775807", 0, INT64_MAX },
                { "9223372036854775808", -ERANGE, 0 },
                { "99999999999999999999999", -ERANGE, 0 },
                { "now", 0, NOW },
                { "now-15m", 0, NOW - 15 * M },
                { "now-1h30m", 0, NOW - 90 * M },
                { "now+5m", 0, NOW + 5 * M },
                { "now-90", 0, NOW - 90000 },
                { "now-", -EINVAL, 0 },
                { "now-15x", -EINVAL, 0 },
                { "now15m", -EINVAL, 0 },
                { "nowhere", -EINVAL, 0 },
                { "now-100y", -EINVAL, 0 },
                { "now-60d", 0, NOW - 60 * 24 * H },
                { "2026-11-25T10:00:00Z", 0, NOW },
                { "2026-11-25t10:00:00z", 0, NOW },
                { "2026-11-25 10:00:00Z", 0, NOW },
                { "2026-11-25T10:00:00.5Z", 0, NOW + 500 },
                { "2026-11-25T10:00:00.123456Z", 0, NOW + 123 },
                { "2026-11-25T11:30:00+01:30", 0, NOW },
                { "2026-11-25T09:00:00-01:00", 0, NOW },
                { "1970-01-01T00:00:00Z", 0, 0 },
                { "1970-01-01T00:00:00+00:01", -ERANGE, 0 },
                { "1969-12-31T23:59:59Z", -ERANGE, 0 },
                { "2024-02-29T23:59:59Z", 0, 1709251199000 },
                { "2024-02-29T23:59:60Z", 0, 1709251199000 },
                { "2026-02-29T00:00:00Z", -EINVAL, 0 },
                { "2026-04-31T00:00:00Z", -EINVAL, 0 },
                { "2026-00-10T00:00:00Z", -EINVAL, 0 },
                { "2026-11-25T24:00:00Z", -EINVAL, 0 },
                { "2026-11-25T10:60:00Z", -EINVAL, 0 },
                { "2026-11-25T10:00:00", -EINVAL, 0 },
                { "2026-11-25T10:00Z", -EINVAL, 0 },
                { "2026-11-25", -EINVAL, 0 },
                { "2026-11-25T10:00:00.Z", -EINVAL, 0 },
                { "2026-11-25T10:00:00Z ", -EINVAL, 0 },
                { "2026-11-25T10:00:00+1:00", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "-5", -EINVAL, 0 },
                { "1e3", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                uint64_t ms = 12345;
                int r = api_parse_time(t[i].s, NOW, &ms);
                if (r != t[i].r)
                        fail_msg("'%s': %d, expected %d", t[i].s, r, t[i].r);
                if (r == 0 && ms != t[i].ms)
                        fail_msg("'%s': %llu, expected %llu", t[i].s, (unsigned long long) ms,
                                 (unsigned long long) t[i].ms);
                if (r < 0)
                        assert_int_equal(ms, 12345); /* untouched */
        }
        {
                uint64_t ms;
                assert_int_equal(api_parse_time("now-2h", H, &ms), -ERANGE);
        }
}

static void test_parse_duration(void **state) {
        static const struct {
                const char *s;
                int r;
                uint64_t sec;
        } t[] = {
                { "0", 0, 0 },           { "90", 0, 90 },         { "30s", 0, 30 },
                { "15m", 0, 900 },       { "1h", 0, 3600 },       { "24h", 0, 86400 },
                { "7d", 0, 604800 },     { "1h30m", 0, 5400 },    { "1d2h3m4s", 0, 93784 },
                { "0m", 0, 0 },          { "3153600000", 0, 3153600000ull },
                { "3153600001", -ERANGE, 0 },                     { "36501d", -ERANGE, 0 },
                { "99999999999999999999h", -ERANGE, 0 },          { "", -EINVAL, 0 },
                { "m", -EINVAL, 0 },     { "15", 0, 15 },         { "15M", -EINVAL, 0 },
                { "1.5h", -EINVAL, 0 },  { "-1h", -EINVAL, 0 },   { "1h ", -EINVAL, 0 },
                { " 1h", -EINVAL, 0 },   { "1w", -EINVAL, 0 },    { "1hh", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                uint64_t s = 777;
                int r = api_parse_duration(t[i].s, &s);
                if (r != t[i].r)
                        fail_msg("'%s': %d, expected %d", t[i].s, r, t[i].r);
                if (r == 0 && s != t[i].sec)
                        fail_msg("'%s': %llu, expected %llu", t[i].s, (unsigned long long) s,
                                 (unsigned long long) t[i].sec);
                if (r < 0)
                        assert_int_equal(s, 777);
        }
}

static void test_route_params(void **state) {
        static const struct {
                const char *route;
                const char *names;
        } t[] = {
                { "/flows", "src dst addr src_port dst_port port proto exporter odid from to "
                            "limit cursor filter" },
                { "/api/v1/flows", "src dst addr src_port dst_port port proto exporter odid from "
                                   "to limit cursor filter" },
                { "/flows/top", "by metric n window from to" },
                { "/flows/timeseries", "interval window from to" },
                { "/flows/stream", "src dst addr src_port dst_port port proto exporter odid "
                                   "filter" },
        };
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                const ApiParamSpec *p = api_route_params(t[i].route, &n);
                char names[256] = "";
                size_t len = 0;

                assert_non_null(p);
                for (size_t j = 0; j < n; j++) {
                        len += (size_t) snprintf(names + len, sizeof(names) - len, "%s%s",
                                                 j ? " " : "", p[j].name);
                        assert_non_null(api_param_type_to_string(p[j].type));
                        assert_non_null(p[j].description);
                        assert_true(strlen(p[j].description) > 10);
                }
                assert_string_equal(names, t[i].names);
        }
        assert_null(api_route_params("/flows/nope", &n));
        assert_int_equal(n, 0);
        assert_null(api_route_params(NULL, &n));
        assert_string_equal(api_param_type_to_string(API_PARAM_ADDRESSES), "address");
        assert_string_equal(api_param_type_to_string(API_PARAM_EXPRESSION), "expression");
        assert_null(api_param_type_to_string(_API_PARAM_TYPE_MAX));
}

/* Every documented parameter is accepted by its route's parser with a sample value. */
static void test_route_params_accepted(void **state) {
        static const struct {
                const char *type, *value;
        } samples[] = {
                { "address", "10.0.0.0/8" }, { "ports", "80" },    { "protocols", "tcp" },
                { "integers", "1" },         { "integer", "5" },   { "time", "now-10m" },
                { "duration", "5m" },        { "string", "1:2" },  { "expression", "tos == 0" },
        };
        const char *routes[] = { "/flows", "/flows/top", "/flows/timeseries", "/flows/stream" };

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                size_t n;
                const ApiParamSpec *p = api_route_params(routes[i], &n);

                for (size_t j = 0; j < n; j++) {
                        const char *type = api_param_type_to_string(p[j].type), *v = NULL;
                        ApiError e = { 0 };
                        ApiKV kv;
                        int r;

                        for (size_t k = 0; k < ELEMENTSOF(samples); k++)
                                if (strcmp(samples[k].type, type) == 0)
                                        v = samples[k].value;
                        if (strcmp(p[j].name, "by") == 0)
                                v = "dst";
                        else if (strcmp(p[j].name, "metric") == 0)
                                v = "packets";
                        assert_non_null(v);
                        kv = (ApiKV) { p[j].name, v };
                        if (i == 0) {
                                ApiFlowsQuery q = { 0 };
                                r = api_flows_query_parse(&kv, 1, NULL, NOW, &q, &e);
                                api_flows_query_done(&q);
                        } else if (i == 1) {
                                ApiTopQuery q;
                                r = api_top_query_parse(&kv, 1, NULL, NOW, &q, &e);
                        } else if (i == 2) {
                                ApiTimeseriesQuery q;
                                r = api_timeseries_query_parse(&kv, 1, NULL, NOW, &q, &e);
                        } else {
                                ApiStreamQuery q = { 0 };
                                r = api_stream_query_parse(&kv, 1, NULL, &q, &e);
                                api_stream_query_done(&q);
                        }
                        if (r < 0)
                                fail_msg("%s %s=%s: %s", routes[i], p[j].name, v, e.message);
                }
        }
}

static void test_error_json(void **state) {
        ApiError e = { 0 };
        ApiKV kv = { "src\x01\xff-very-long-parameter-name-indeed-longer", "x" };
        json_t *j, *want;
        char *s;

        assert_int_equal(api_flows_query_parse(&kv, 1, NULL, NOW, &(ApiFlowsQuery) { 0 }, &e),
                         -EINVAL);
        /* client bytes are quoted as printable ASCII and cut */
        assert_string_equal(e.parameter, "src?" "?-very-long-parameter-na...");
        j = api_error_json(&e);
        assert_non_null(j);
        s = json_dumps(j, JSON_COMPACT);
        assert_non_null(s);
        free(s);
        json_decref(j);

        kv = (ApiKV) { "dst_port", "70000" };
        assert_int_equal(api_flows_query_parse(&kv, 1, NULL, NOW, &(ApiFlowsQuery) { 0 }, &e),
                         -EINVAL);
        j = api_error_json(&e);
        want = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "bad_parameter", "message",
                         "dst_port: port 70000 is out of range (0..65535)", "parameter",
                         "dst_port");
        assert_true(json_equal(j, want));
        json_decref(j);
        json_decref(want);

        /* a long, non-ASCII value is quoted safely */
        kv = (ApiKV) { "src", "\xc3\xa9\xc3\xa9xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" };
        assert_int_equal(api_flows_query_parse(&kv, 1, NULL, NOW, &(ApiFlowsQuery) { 0 }, &e),
                         -EINVAL);
        assert_non_null(strstr(e.message, "'????xxxx"));
        assert_non_null(strstr(e.message, "...'"));
        j = api_error_json(&e);
        assert_non_null(j);
        json_decref(j);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_flows_ok),
                cmocka_unit_test(test_flows_err),
                cmocka_unit_test(test_flows_limits),
                cmocka_unit_test(test_flows_request),
                cmocka_unit_test(test_top_ok),
                cmocka_unit_test(test_top_err),
                cmocka_unit_test(test_top_request),
                cmocka_unit_test(test_timeseries),
                cmocka_unit_test(test_timeseries_request),
                cmocka_unit_test(test_stream),
                cmocka_unit_test(test_parse_time),
                cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_route_params),
                cmocka_unit_test(test_route_params_accepted),
                cmocka_unit_test(test_error_json),
        };

        return cmocka_run_group_tests_name("api-params", tests, NULL, NULL);
}
