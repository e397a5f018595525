/* SPDX-License-Identifier: MIT */
/*
 * test-flow-filter.c - the filter language: a table of (expression, record, expected result)
 * covering every field, operator, sets, IPv4/IPv6 CIDR (/0, /32, /128, IPv4-mapped records),
 * precedence, nesting, `not`, upper-case keywords and the &&/||/! spellings; a table of
 * syntax and type errors with the column each message must name; the caps (length, depth,
 * nodes, set members) at and just past their limits; large sets against a brute-force check;
 * flow_filter_may_match() with a fake one-record index, including a soundness sweep over the
 * whole match table; and a printed (never asserted) evaluation rate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "flow-filter.h"
#include "macro.h"

enum {
        V4,             /* tcp 10.1.2.3:40000 -> 192.0.2.80:443, exporter 172.16.0.1 */
        V6,             /* udp [2001:db8::1]:53000 -> [2001:db8:1::53]:53, end < start */
        MAPPED,         /* family 6 with ::ffff:10.1.2.3 -> ::1, icmp6, exporter v4 */
        BIG,            /* every integer field at its maximum, sctp */
        N_RECS,
};

static FlowRecord recs[N_RECS];

static void set_addr(uint8_t dst[16], uint8_t *family, const char *text) {
        uint8_t v4[4];

        if (strchr(text, ':')) {
                assert_int_equal(inet_pton(AF_INET6, text, dst), 1);
                *family = 6;
        } else {
                assert_int_equal(inet_pton(AF_INET, text, v4), 1);
                flow_addr_set_v4(dst, v4);
                *family = 4;
        }
}

static void make_records(void) {
        FlowRecord *r;
        uint8_t fam;

        memset(recs, 0, sizeof(recs));

        r = &recs[V4];
        set_addr(r->src_addr, &r->family, "10.1.2.3");
        set_addr(r->dst_addr, &r->family, "192.0.2.80");
        set_addr(r->exporter_addr, &r->exporter_family, "172.16.0.1");
        r->src_port = 40000;
        r->dst_port = 443;
        r->proto = 6;
        r->tcp_flags = 0x1b;
        r->tos = 40;
        r->octets = 123456;
        r->packets = 100;
        r->flows = 0;                   /* means 1 */
        r->start_ms = 1700000000000ull;
        r->end_ms = 1700000002500ull;
        r->ingress_if = 3;
        r->egress_if = 4;
        r->src_as = 64512;
        r->dst_as = 4200000000u;
        r->odid = 7;
        r->vlan = 100;
        r->template_id = 256;
        r->direction = 0;
        r->end_reason = 2;
        r->sampling = 1000;

        r = &recs[V6];
        set_addr(r->src_addr, &r->family, "2001:db8::1");
        set_addr(r->dst_addr, &r->family, "2001:db8:1::53");
        set_addr(r->exporter_addr, &r->exporter_family, "2001:db8:ffff::9");
        r->src_port = 53000;
        r->dst_port = 53;
        r->proto = 17;
        r->octets = 80;
        r->packets = 1;
        r->flows = 5;
        r->start_ms = 2000;
        r->end_ms = 1000;               /* end before start: duration 0 */
        r->ingress_if = 10;
        r->egress_if = 20;
        r->dst_as = 1;
        r->template_id = 300;
        r->direction = 1;
        r->end_reason = 1;

        r = &recs[MAPPED];
        set_addr(r->src_addr, &fam, "::ffff:10.1.2.3");
        set_addr(r->dst_addr, &r->family, "::1");
        set_addr(r->exporter_addr, &r->exporter_family, "10.0.0.1");
        r->proto = 58;
        r->flows = 1;
        r->template_id = 256;

        r = &recs[BIG];
        set_addr(r->src_addr, &r->family, "0.0.0.0");
        set_addr(r->dst_addr, &r->family, "255.255.255.255");
        set_addr(r->exporter_addr, &r->exporter_family, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        r->src_port = 65535;
        r->dst_port = 0;
        r->proto = 132;
        r->tcp_flags = 0xffff;
        r->tos = 255;
        r->octets = UINT64_MAX;
        r->packets = UINT64_MAX;
        r->flows = UINT32_MAX;
        r->start_ms = 0;
        r->end_ms = UINT64_MAX;
        r->ingress_if = UINT32_MAX;
        r->egress_if = UINT32_MAX;
        r->src_as = UINT32_MAX;
        r->dst_as = UINT32_MAX;
        r->odid = UINT32_MAX;
        r->vlan = 0xffff;
        r->template_id = 0xffff;
        r->direction = 255;
        r->end_reason = 255;
        r->sampling = UINT32_MAX;
}

static int group_setup(void **state) {
        make_records();
        return 0;
}

static FlowFilter *compile_ok(const char *expr) {
        FlowFilter *f = NULL;
        char *err = NULL;
        int r;

        r = flow_filter_compile(expr, &f, &err);
        if (r < 0)
                fail_msg("'%s' failed to compile: %d %s", expr, r, err ? err : "(no message)");
        assert_null(err);
        assert_non_null(f);
        return f;
}

static bool match_expr(const char *expr, const FlowRecord *r) {
        FlowFilter *f = compile_ok(expr);
        bool m = flow_filter_match(f, r);

        flow_filter_free(f);
        return m;
}

/* ---- match table -------------------------------------------------------------------------- */

typedef struct MatchCase {
        const char *expr;
        int rec;
        bool expect;
} MatchCase;

static const MatchCase match_cases[] = {
        /* src_addr: exact, CIDR, family rules */
        { "src_addr == 10.1.2.3", V4, true },
        { "src_addr == 10.1.2.4", V4, false },
        { "src_addr == 10.1.2.3", MAPPED, false },      /* v4 literal, family-6 record */
        { "src_addr == ::ffff:10.1.2.3", MAPPED, true },
        { "src_addr == ::ffff:10.1.2.3", V4, false },   /* v6 literal, family-4 record */
        { "src_addr in 10.0.0.0/8", V4, true },
        { "src_addr in 10.0.0.0/8", MAPPED, false },
        { "src_addr in 11.0.0.0/8", V4, false },
        { "src_addr in 0.0.0.0/0", V4, true },
        { "src_addr in 0.0.0.0/0", BIG, true },
        { "src_addr in 0.0.0.0/0", V6, false },
        { "src_addr in 0.0.0.0/0", MAPPED, false },
        { "src_addr in ::/0", V6, true },
        { "src_addr in ::/0", MAPPED, true },
        { "src_addr in ::/0", V4, false },
        { "src_addr in 10.1.2.3/32", V4, true },
        { "src_addr in 10.1.2.2/32", V4, false },
        { "src_addr in 10.1.2.2/31", V4, true },
        { "src_addr in 10.1.2.4/31", V4, false },
        { "src_addr == 10.1.2.0/24", V4, true },        /* == with a CIDR means in */
        { "src_addr != 10.1.2.0/24", V4, false },
        { "src_addr in 2001:db8::1/128", V6, true },
        { "src_addr in 2001:db8::2/128", V6, false },
        { "src_addr in 2001:db8::/32", V6, true },
        { "src_addr in 2001:db9::/32", V6, false },
        { "src_addr in 2001:db8::/127", V6, true },
        { "src_addr in 2001:db8::2/127", V6, false },
        { "src_addr in ::ffff:0:0/96", MAPPED, true },
        { "src_addr in ::ffff:0:0/96", V4, false },
        { "src_addr in ::ffff:10.0.0.0/104", MAPPED, true },
        { "src_addr == 0.0.0.0", BIG, true },
        /* dst_addr, sets of addresses */
        { "dst_addr == 192.0.2.80", V4, true },
        { "dst_addr != 192.0.2.80", V4, false },
        { "dst_addr != 192.0.2.81", V4, true },
        { "dst_addr != 192.0.2.80", V6, true },
        { "dst_addr == 2001:db8:1::53", V6, true },
        { "dst_addr == 2001:DB8:1:0::53", V6, true },
        { "dst_addr == ::1", MAPPED, true },
        { "dst_addr == ::1", V6, false },
        { "dst_addr == 255.255.255.255", BIG, true },
        { "dst_addr in 255.255.255.255/32", BIG, true },
        { "dst_addr in (::1, 10.0.0.0/8)", MAPPED, true },
        { "dst_addr not in (::1, 10.0.0.0/8)", MAPPED, false },
        { "dst_addr not in (::1, 10.0.0.0/8)", V4, true },
        { "dst_addr in (192.0.2.0/24, 2001:db8:1::/48)", V4, true },
        { "dst_addr in (192.0.2.0/24, 2001:db8:1::/48)", V6, true },
        { "dst_addr in (192.0.2.0/24, 2001:db8:1::/48)", MAPPED, false },
        { "dst_addr in (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)", V4, false },
        { "dst_addr in (1.1.1.1, 192.0.2.80, 192.0.2.80, 8.8.8.8)", V4, true },
        { "dst_addr in (1.1.1.1, 192.0.2.81, 8.8.8.8, 2001:db8:1::53)", V4, false },
        /* exporter uses exporter_family */
        { "exporter == 172.16.0.1", V4, true },
        { "exporter in 172.16.0.0/12", V4, true },
        { "exporter == 172.16.0.1", V6, false },
        { "exporter == 2001:db8:ffff::9", V6, true },
        { "exporter in 10.0.0.0/8", MAPPED, true },
        { "exporter in ::/0", MAPPED, false },
        { "exporter != 10.0.0.1", MAPPED, false },
        /* addr: either side; != and not in mean neither side */
        { "addr == 10.1.2.3", V4, true },
        { "addr == 192.0.2.80", V4, true },
        { "addr == 10.9.9.9", V4, false },
        { "addr != 10.1.2.3", V4, false },
        { "addr != 192.0.2.80", V4, false },
        { "addr != 10.9.9.9", V4, true },
        { "addr in (192.0.2.0/24)", V4, true },
        { "addr in 2001:db8:1::/48", V6, true },
        { "addr not in 10.0.0.0/8", V4, false },
        { "addr not in 172.16.0.0/12", V4, true },
        /* ports */
        { "src_port == 40000", V4, true },
        { "src_port == 40001", V4, false },
        { "src_port == 0xffff", BIG, true },
        { "src_port == 65535", BIG, true },
        { "dst_port == 443", V4, true },
        { "dst_port != 443", V4, false },
        { "dst_port != 80", V4, true },
        { "dst_port < 443", V4, false },
        { "dst_port < 444", V4, true },
        { "dst_port <= 443", V4, true },
        { "dst_port <= 442", V4, false },
        { "dst_port > 442", V4, true },
        { "dst_port > 443", V4, false },
        { "dst_port >= 443", V4, true },
        { "dst_port >= 444", V4, false },
        { "dst_port in (80, 443)", V4, true },
        { "dst_port in (80, 443)", V6, false },
        { "dst_port not in (80, 443)", V6, true },
        { "dst_port not in (80, 443)", V4, false },
        { "dst_port in (53)", V6, true },
        { "dst_port in 53", V6, true },
        { "dst_port in (1,2,3,4,5,6,7,8,9,10,11,443)", V4, true },     /* binary search */
        { "dst_port in (1,2,3,4,5,6,7,8,9,10,11,444)", V4, false },
        { "dst_port in (444,1,2,3,4,5,6,7,8,9,10,0)", BIG, true },
        { "port == 443", V4, true },
        { "port == 40000", V4, true },
        { "port == 53", V4, false },
        { "port != 443", V4, false },
        { "port != 40000", V4, false },
        { "port != 53", V4, true },
        { "port < 1024", V4, true },
        { "port < 443", V4, false },
        { "port <= 443", V4, true },
        { "port > 40000", V4, false },
        { "port >= 40000", V4, true },
        { "port > 442", V4, true },
        { "port in (22, 443)", V4, true },
        { "port not in (22, 443)", V4, false },
        { "port not in (22, 80)", V4, true },
        /* proto: numbers, names, sets (bitmap) */
        { "proto == 6", V4, true },
        { "proto == 0x06", V4, true },
        { "proto == tcp", V4, true },
        { "proto == TCP", V4, true },
        { "proto == udp", V6, true },
        { "proto == udp", V4, false },
        { "proto == icmp6", MAPPED, true },
        { "proto == ipv6-icmp", MAPPED, true },
        { "proto == IPv6-ICMP", MAPPED, true },
        { "proto == sctp", BIG, true },
        { "proto != tcp", V6, true },
        { "proto != tcp", V4, false },
        { "proto in (tcp, udp)", V4, true },
        { "proto in (tcp, udp)", V6, true },
        { "proto in (tcp, udp)", MAPPED, false },
        { "proto not in (tcp, udp)", MAPPED, true },
        { "proto in (icmp, gre, esp, icmp6)", MAPPED, true },
        { "proto in (1, 47, 50, 58)", V4, false },
        { "proto in (0, 255, 132)", BIG, true },
        { "proto in tcp", V4, true },
        { "proto < 17", V4, true },
        { "proto >= 17", V4, false },
        /* the other integer fields */
        { "tcp_flags == 0x1b", V4, true },
        { "tcp_flags == 27", V4, true },
        { "tcp_flags > 0", V6, false },
        { "tcp_flags == 0xffff", BIG, true },
        { "tos == 40", V4, true },
        { "tos == 0x28", V4, true },
        { "tos in (0, 40)", V6, true },
        { "octets == 123456", V4, true },
        { "octets > 100000", V4, true },
        { "octets > 100000", V6, false },
        { "octets == 18446744073709551615", BIG, true },
        { "octets == 0xffffffffffffffff", BIG, true },
        { "octets >= 0xFFFFFFFFFFFFFFFF", V4, false },
        { "packets == 100", V4, true },
        { "packets < 2", V6, true },
        { "packets == 18446744073709551615", BIG, true },
        { "flows == 1", V4, true },                     /* 0 reads as 1 */
        { "flows == 0", V4, false },
        { "flows == 5", V6, true },
        { "flows > 1", V6, true },
        { "flows == 4294967295", BIG, true },
        { "start_ms == 1700000000000", V4, true },
        { "start_ms < 1700000000000", V4, false },
        { "end_ms == 1700000002500", V4, true },
        { "end_ms == 18446744073709551615", BIG, true },
        { "duration_ms == 2500", V4, true },
        { "duration_ms >= 2000", V4, true },
        { "duration_ms == 0", V6, true },               /* end < start */
        { "duration_ms > 0", V6, false },
        { "duration_ms == 18446744073709551615", BIG, true },
        { "ingress_if == 3", V4, true },
        { "ingress_if == 4", V4, false },
        { "egress_if == 4", V4, true },
        { "egress_if in (10, 20)", V6, true },
        { "src_as == 64512", V4, true },
        { "src_as == 0", V6, true },
        { "dst_as == 4200000000", V4, true },
        { "dst_as == 0xfa56ea00", V4, true },
        { "dst_as == 4294967295", BIG, true },
        { "odid == 7", V4, true },
        { "odid != 7", V4, false },
        { "vlan == 100", V4, true },
        { "vlan == 65535", BIG, true },
        { "template_id == 256", V4, true },
        { "template_id in (256, 300)", V6, true },
        { "template_id in (256, 301)", V6, false },
        { "direction == 0", V4, true },
        { "direction == 1", V6, true },
        { "direction == 255", BIG, true },
        { "end_reason == 2", V4, true },
        { "end_reason in (1, 2)", V6, true },
        { "sampling == 1000", V4, true },
        { "sampling == 0", V6, true },
        { "sampling > 1000", BIG, true },
        { "family == 4", V4, true },
        { "family == 4", MAPPED, false },
        { "family == 6", MAPPED, true },
        { "family in (4, 6)", V6, true },
        /* precedence: not > and > or */
        { "proto == 17 or proto == 6 and dst_port == 80", V6, true },
        { "proto == 17 or proto == 6 and dst_port == 80", V4, false },
        { "proto == 6 and dst_port == 80 or proto == 17", V6, true },
        { "(proto == 17 or proto == 6) and dst_port == 80", V6, false },
        { "not proto == 6 and dst_port == 53", V6, true },
        { "not (proto == 17 and dst_port == 53)", V6, false },
        { "not proto == 17 or dst_port == 53", V6, true },
        { "not not proto == 17", V6, true },
        { "not not not proto == 17", V6, false },
        { "! proto == 17", V6, false },
        { "!(proto == 6) && dst_port == 53 || proto == 1", V6, true },
        { "!(proto == 6) && dst_port == 54 || proto == 1", V6, false },
        { "((((proto == 17))))", V6, true },
        { "((proto == 6 or (dst_port == 53 and (src_port > 50000 or src_port < 10)))) "
          "and family == 6", V6, true },
        { "((proto == 6 or (dst_port == 53 and (src_port > 60000 or src_port < 10)))) "
          "and family == 6", V6, false },
        { "proto == 6 and dst_port == 443 and src_port == 40000 and family == 4", V4, true },
        { "proto == 6 and dst_port == 443 and src_port == 40000 and family == 6", V4, false },
        { "proto == 1 or proto == 2 or proto == 6", V4, true },
        { "proto == 1 or proto == 2 or proto == 3", V4, false },
        { "proto == 1 or proto == 6 and not (dst_port == 80 or dst_port == 8080)", V4, true },
        /* case, spelling, whitespace */
        { "PROTO == UDP AND NOT DST_PORT IN (80) OR FAMILY == 4", V6, true },
        { "Proto == Udp And Dst_Port Not In (80, 443)", V6, true },
        { "Src_Addr == 2001:db8::1", V6, true },
        { "proto==17&&dst_port==53", V6, true },
        { "src_addr==10.0.0.0/8||dst_port==53", V6, true },
        { "dst_port in(80,443)", V4, true },
        { "dst_port not in(80,443)", V4, false },
        { "addr==::1", MAPPED, true },
        { "dst_addr==fe80::1", MAPPED, false },
        { "  \t proto == 6 \n", V4, true },
        { "!(dst_addr==::1)", MAPPED, false },
};

static void test_match_table(void **state) {
        unsigned failures = 0;

        for (size_t i = 0; i < ELEMENTSOF(match_cases); i++) {
                const MatchCase *c = &match_cases[i];
                bool m = match_expr(c->expr, &recs[c->rec]);

                if (m != c->expect) {
                        print_error("case %zu: '%s' on record %d: got %d, want %d\n", i, c->expr,
                                    c->rec, m, c->expect);
                        failures++;
                }
        }
        assert_int_equal(failures, 0);
}

static void test_blank(void **state) {
        static const char *const blanks[] = { "", "   ", " \t\r\n " };
        FlowFilter *f;

        for (size_t i = 0; i < ELEMENTSOF(blanks); i++) {
                f = compile_ok(blanks[i]);
                assert_true(flow_filter_is_all(f));
                assert_string_equal(flow_filter_expr(f), "");
                for (int k = 0; k < N_RECS; k++)
                        assert_true(flow_filter_match(f, &recs[k]));
                flow_filter_free(f);
        }

        assert_int_equal(flow_filter_compile(NULL, &f, NULL), 0);
        assert_true(flow_filter_is_all(f));
        assert_string_equal(flow_filter_expr(f), "");
        assert_true(flow_filter_match(f, &recs[V6]));
        flow_filter_free(f);

        f = compile_ok(" proto == 6 ");
        assert_false(flow_filter_is_all(f));
        assert_string_equal(flow_filter_expr(f), " proto == 6 ");
        flow_filter_free(f);

        assert_null(flow_filter_free(NULL));
}

/* ---- error table -------------------------------------------------------------------------- */

typedef struct ErrorCase {
        const char *expr;
        int r;
        unsigned column;
        const char *fragment;   /* must appear in the message */
} ErrorCase;

static const ErrorCase error_cases[] = {
        { "(proto == 6", -EINVAL, 12, "expected ')' to close the '(' at column 1, found end" },
        { "((proto == 6) or (tos == 1)", -EINVAL, 28, "'(' at column 1" },
        { "proto ==", -EINVAL, 9, "expected a value after 'proto ==', found end of expr" },
        { "src_addr != ", -EINVAL, 13, "expected a value" },
        { "proto == )", -EINVAL, 10, "expected a number for proto, found ')'" },
        { "src_addr == ,", -EINVAL, 13, "expected an address for src_addr" },
        { "foo == 1", -EINVAL, 1, "unknown field 'foo' (fields: src_addr" },
        { "proto == 6 and dstport == 1", -EINVAL, 16, "unknown field 'dstport'" },
        { "proto == 6 )", -EINVAL, 12, "unbalanced ')'" },
        { "proto == 6 udp", -EINVAL, 12, "expected 'and', 'or' or end of expression" },
        { "proto == 6 (tos == 1)", -EINVAL, 12, "found '('" },
        { "dst_port == 8x0", -EINVAL, 13, "'8x0' is not a number" },
        { "dst_port == 0x", -EINVAL, 13, "'0x' is not a number" },
        { "dst_port == 0xg1", -EINVAL, 13, "not a number" },
        { "dst_port == 70000", -EINVAL, 13, "70000 is out of range for dst_port (0..65535)" },
        { "port == 65536", -EINVAL, 9, "out of range for port (0..65535)" },
        { "proto == 300", -EINVAL, 10, "300 is out of range for proto (0..255)" },
        { "proto in (6, 256)", -EINVAL, 14, "out of range for proto" },
        { "tos < 256", -EINVAL, 7, "out of range for tos" },
        { "src_as == 4294967296", -EINVAL, 11, "out of range for src_as (0..4294967295)" },
        { "flows == 0x100000000", -EINVAL, 10, "out of range for flows" },
        { "octets == 18446744073709551616", -EINVAL, 11, "out of range for octets" },
        { "dst_port in ()", -EINVAL, 14, "empty set" },
        { "dst_port in (80,", -EINVAL, 17, "expected a number for dst_port, found end" },
        { "dst_port in (80,)", -EINVAL, 17, "expected a number for dst_port, found ')'" },
        { "dst_port in (80 443)", -EINVAL, 17, "expected ',' or ')' to continue the set opened "
          "at column 13, found '443'" },
        { "dst_port in (80, 443", -EINVAL, 21, "set opened at column 13, found end" },
        { "dst_port in", -EINVAL, 12, "expected a number for dst_port, found end" },
        { "dst_port == 10.0.0.1", -EINVAL, 13, "dst_port is an integer field; found address "
          "'10.0.0.1'" },
        { "proto == ::1", -EINVAL, 10, "integer field" },
        { "src_addr < 10.0.0.1", -EINVAL, 10, "'<' does not apply to address field src_addr" },
        { "addr >= ::1", -EINVAL, 6, "'>=' does not apply to address field addr" },
        { "exporter > 1.2.3.4", -EINVAL, 10, "exporter" },
        { "src_addr == 80", -EINVAL, 13, "src_addr is an address field; expected an IPv4 or "
          "IPv6 address or a CIDR prefix, found '80'" },
        { "dst_addr in (10.0.0.0/8, tcp)", -EINVAL, 26, "found 'tcp'" },
        { "src_addr in 10.0.0.0/33", -EINVAL, 22, "bad prefix length '/33'" },
        { "src_addr in 10.0.0.0/", -EINVAL, 22, "must be 0..32 for IPv4" },
        { "src_addr in 10.0.0.0/8x", -EINVAL, 22, "bad prefix length" },
        { "src_addr in 10.0.0.0/0x8", -EINVAL, 22, "bad prefix length" },
        { "src_addr in 2001:db8::/129", -EINVAL, 24, "must be 0..128 for IPv6" },
        { "src_addr in 10.0.0.0/8/8", -EINVAL, 22, "bad prefix length" },
        { "src_addr in 10.0.0.1/8", -EINVAL, 13, "has host bits set beyond the /8 prefix (did "
          "you mean 10.0.0.0/8?)" },
        { "src_addr in 10.0.0.1/0", -EINVAL, 13, "did you mean 0.0.0.0/0?" },
        { "src_addr in 2001:db8::1/32", -EINVAL, 13, "did you mean 2001:db8::/32?" },
        { "src_addr == 10.0.0", -EINVAL, 13, "'10.0.0' is not a valid IPv4 address" },
        { "src_addr == 1.2.3.256", -EINVAL, 13, "not a valid IPv4 address" },
        { "src_addr == 1.2.3.4.5", -EINVAL, 13, "not a valid IPv4 address" },
        { "src_addr == 2001:db8:::1", -EINVAL, 13, "'2001:db8:::1' is not a valid IPv6" },
        { "src_addr == /8", -EINVAL, 13, "unexpected character '/'" },
        { "src_addr == ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", -EINVAL, 13,
          "not a valid IPv6 address" },
        { "dst_port == tcp", -EINVAL, 13, "'tcp' is a protocol name, only valid for proto" },
        { "proto == foo", -EINVAL, 10, "unknown protocol name 'foo' (known: icmp" },
        { "dst_port == src_port", -EINVAL, 13, "found field 'src_port'" },
        { "dst_port == bar", -EINVAL, 13, "expected a number for dst_port, found 'bar'" },
        { "proto = 6", -EINVAL, 7, "the equality operator is '=='" },
        { "proto == 6 & tos == 1", -EINVAL, 12, "did you mean '&&'" },
        { "proto == 6 | tos == 1", -EINVAL, 12, "did you mean '||'" },
        { "proto == 6 and", -EINVAL, 15, "expected a field name, 'not' or '(', found end" },
        { "proto == 6 or or tos == 1", -EINVAL, 15, "found 'or'" },
        { "and proto == 6", -EINVAL, 1, "expected a field name, 'not' or '(', found 'and'" },
        { "not", -EINVAL, 4, "expected a field name" },
        { "()", -EINVAL, 2, "expected a field name, 'not' or '(', found ')'" },
        { "proto 6", -EINVAL, 7, "expected an operator (==, !=, <, <=, >, >=, in, not in) "
          "after proto, found '6'" },
        { "proto", -EINVAL, 6, "expected an operator" },
        { "proto not 6", -EINVAL, 11, "expected 'in' after 'proto not', found '6'" },
        { "proto not == 6", -EINVAL, 11, "expected 'in'" },
        { "80 == dst_port", -EINVAL, 1, "expected a field name, found value '80'" },
        { "tcp", -EINVAL, 1, "found value 'tcp'" },
        { "10.0.0.0/8", -EINVAL, 1, "found value '10.0.0.0/8'" },
        { "proto == 6 $", -EINVAL, 12, "unexpected character '$'" },
        { "proto == -1", -EINVAL, 10, "unexpected character '-'" },
        { "proto == \xc3\xa9", -EINVAL, 10, "unexpected byte 0xc3" },
        { "proto == 6 and src_addr == 10.0.0.0/8 and " "dst_addr == "
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
          -EINVAL, 55, "found 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'" },
        { "proto in (1, 2, 3", -EINVAL, 18, "found end of expression" },
};

static void check_error(const char *expr, int want_r, unsigned column, const char *fragment) {
        FlowFilter *f = (FlowFilter *) 0x1;     /* must stay untouched on failure */
        char *err = NULL, prefix[32];
        int r;

        r = flow_filter_compile(expr, &f, &err);
        if (r != want_r || !err)
                fail_msg("'%s': got %d (%s), want %d", expr, r, err ? err : "no message", want_r);
        assert_ptr_equal(f, (FlowFilter *) 0x1);
        (void) snprintf(prefix, sizeof(prefix), "column %u: ", column);
        if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, fragment))
                fail_msg("'%s': message \"%s\", want \"%s...%s...\"", expr, err, prefix,
                         fragment);
        free(err);

        /* a NULL reterr is allowed */
        assert_int_equal(flow_filter_compile(expr, &f, NULL), want_r);
}

static void test_error_table(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++)
                check_error(error_cases[i].expr, error_cases[i].r, error_cases[i].column,
                            error_cases[i].fragment);
}

/* ---- caps --------------------------------------------------------------------------------- */

typedef struct Buf {
        char s[2 * FLOW_FILTER_MAX_LEN];
        size_t len;
} Buf;

_printf_(2, 3)
static void buf_add(Buf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(b->s + b->len, sizeof(b->s) - b->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0 && (size_t) n < sizeof(b->s) - b->len);
        b->len += (size_t) n;
}

static void test_cap_length(void **state) {
        _cleanup_free_ Buf *b = calloc(1, sizeof(Buf));
        FlowFilter *f;

        assert_non_null(b);
        /* exactly FLOW_FILTER_MAX_LEN bytes compile */
        buf_add(b, "proto == 6");
        while (b->len < FLOW_FILTER_MAX_LEN)
                buf_add(b, " ");
        f = compile_ok(b->s);
        assert_true(flow_filter_match(f, &recs[V4]));
        assert_int_equal(strlen(flow_filter_expr(f)), FLOW_FILTER_MAX_LEN);
        flow_filter_free(f);

        /* one more byte does not, even though it is only whitespace */
        buf_add(b, " ");
        check_error(b->s, -E2BIG, FLOW_FILTER_MAX_LEN + 1, "longer than 4096 bytes");
}

static void nested(Buf *b, unsigned depth, const char *open, const char *close) {
        b->len = 0;
        b->s[0] = '\0';
        for (unsigned i = 0; i < depth; i++)
                buf_add(b, "%s", open);
        buf_add(b, "proto == 6");
        for (unsigned i = 0; i < depth; i++)
                buf_add(b, "%s", close);
}

static void test_cap_depth(void **state) {
        _cleanup_free_ Buf *b = calloc(1, sizeof(Buf));
        FlowFilter *f;

        assert_non_null(b);
        nested(b, FLOW_FILTER_MAX_DEPTH, "(", ")");
        f = compile_ok(b->s);
        assert_true(flow_filter_match(f, &recs[V4]));
        flow_filter_free(f);
        nested(b, FLOW_FILTER_MAX_DEPTH + 1, "(", ")");
        check_error(b->s, -E2BIG, FLOW_FILTER_MAX_DEPTH + 1, "more than 64 levels deep");

        /* `not` counts too: 64 of them compile (even count: true), 65 do not */
        nested(b, FLOW_FILTER_MAX_DEPTH, "not ", "");
        f = compile_ok(b->s);
        assert_true(flow_filter_match(f, &recs[V4]));
        assert_false(flow_filter_match(f, &recs[V6]));
        flow_filter_free(f);
        nested(b, FLOW_FILTER_MAX_DEPTH + 1, "not ", "");
        check_error(b->s, -E2BIG, 4 * FLOW_FILTER_MAX_DEPTH + 1, "levels deep");

        /* mixed: 32 "(not " is 64 levels */
        nested(b, FLOW_FILTER_MAX_DEPTH / 2, "(not ", ")");
        f = compile_ok(b->s);
        assert_true(flow_filter_match(f, &recs[V4]));
        flow_filter_free(f);
}

static void test_cap_nodes(void **state) {
        _cleanup_free_ Buf *b = calloc(1, sizeof(Buf));
        unsigned cmps = (FLOW_FILTER_MAX_NODES + 1) / 2;       /* 2k - 1 nodes */
        FlowFilter *f;

        assert_non_null(b);
        for (unsigned i = 0; i < cmps; i++)
                buf_add(b, "%sport==%u", i ? "||" : "", i);
        f = compile_ok(b->s);                   /* 511 nodes, 512 instructions (either side) */
        assert_true(flow_filter_match(f, &recs[BIG]));          /* dst_port 0 */
        assert_false(flow_filter_match(f, &recs[V4]));
        flow_filter_free(f);

        buf_add(b, "&&tos==1");                 /* `&&` is the 512th, `tos` the 513th */
        check_error(b->s, -E2BIG, (unsigned) (b->len - 5), "more than 512 comparisons and "
                    "operators");

        /* `not` counts as a node: one more fits, a second one pushes the last `tos` out */
        b->len = 0;
        buf_add(b, "!(");
        for (unsigned i = 0; i < cmps; i++)
                buf_add(b, "%stos==%u", i ? "||" : "", i);
        buf_add(b, ")");
        f = compile_ok(b->s);
        assert_false(flow_filter_match(f, &recs[V4]));          /* every tos is listed */
        assert_false(flow_filter_match(f, &recs[BIG]));
        flow_filter_free(f);
        memmove(b->s + 1, b->s, b->len + 1);
        b->s[0] = '!';
        check_error(b->s, -E2BIG, (unsigned) (strrchr(b->s, 't') - b->s + 1), "more than 512");
}

static void test_cap_set(void **state) {
        _cleanup_free_ Buf *b = calloc(1, sizeof(Buf));
        FlowFilter *f;

        assert_non_null(b);
        buf_add(b, "proto in (");
        for (unsigned i = 0; i < FLOW_FILTER_MAX_SET; i++)
                buf_add(b, "%s%u", i ? "," : "", i % 3 ? 1 : 6);        /* duplicates count */
        buf_add(b, ")");
        f = compile_ok(b->s);
        assert_true(flow_filter_match(f, &recs[V4]));
        assert_false(flow_filter_match(f, &recs[V6]));
        flow_filter_free(f);

        b->s[--b->len] = '\0';
        buf_add(b, ",17)");
        check_error(b->s, -E2BIG, (unsigned) (b->len - 2), "the set opened at column 10 has "
                    "more than 1024 members");
}

/* ---- large sets against brute force ------------------------------------------------------- */

static void test_large_sets(void **state) {
        _cleanup_free_ Buf *b = calloc(1, sizeof(Buf));
        FlowRecord r = recs[V4];
        FlowFilter *f;

        assert_non_null(b);
        /* ports: every third value below 1500, written in descending order */
        buf_add(b, "dst_port in (");
        for (int v = 1497; v >= 0; v -= 3)
                buf_add(b, "%d%s", v, v ? "," : ")");
        f = compile_ok(b->s);
        for (unsigned v = 0; v < 2000; v++) {
                r.dst_port = (uint16_t) v;
                assert_int_equal(flow_filter_match(f, &r), v < 1500 && v % 3 == 0);
        }
        r.dst_port = 65535;
        assert_false(flow_filter_match(f, &r));
        flow_filter_free(f);

        /* addresses: 10.0.x.y for even y < 20, plus two v6 prefixes of different lengths */
        b->len = 0;
        buf_add(b, "src_addr not in (2001:db8::/48, 2001:db8:0:1::/64");
        for (unsigned x = 0; x < 10; x++)
                for (unsigned y = 0; y < 20; y += 2)
                        buf_add(b, ", 10.0.%u.%u", x, y);
        buf_add(b, ", 192.168.0.0/16)");
        f = compile_ok(b->s);
        for (unsigned x = 0; x < 12; x++)
                for (unsigned y = 0; y < 22; y++) {
                        uint8_t fam;
                        char text[32];

                        (void) snprintf(text, sizeof(text), "10.0.%u.%u", x, y);
                        set_addr(r.src_addr, &fam, text);
                        r.family = fam;
                        assert_int_equal(flow_filter_match(f, &r),
                                         !(x < 10 && y < 20 && y % 2 == 0));
                }
        set_addr(r.src_addr, &r.family, "192.168.200.1");
        assert_false(flow_filter_match(f, &r));
        set_addr(r.src_addr, &r.family, "2001:db8::ffff");
        assert_false(flow_filter_match(f, &r));
        set_addr(r.src_addr, &r.family, "2001:db8:0:1:2::");
        assert_false(flow_filter_match(f, &r));         /* in both prefixes */
        set_addr(r.src_addr, &r.family, "2001:db8:1::");
        assert_true(flow_filter_match(f, &r));
        set_addr(r.src_addr, &r.family, "::ffff:10.0.0.0");
        assert_true(flow_filter_match(f, &r));          /* v4 members never match family 6 */
        flow_filter_free(f);
}

/* ---- random boolean trees against a reference evaluation ---------------------------------- */

typedef struct Atom {
        const char *text;
        bool on_v4;             /* its value on recs[V4] */
} Atom;

static const Atom atoms[] = {
        { "proto == 6", true },                 { "proto == 17", false },
        { "dst_port in (80, 443)", true },      { "dst_port < 443", false },
        { "port != 53", true },                 { "port == 53", false },
        { "src_addr in 10.0.0.0/8", true },     { "src_addr in 11.0.0.0/8", false },
        { "addr == 192.0.2.80", true },         { "addr != 10.1.2.3", false },
        { "tos == 40", true },                  { "tos in (0, 1)", false },
        { "flows == 1", true },                 { "duration_ms > 2500", false },
        { "dst_addr not in (::1, 10.0.0.0/8)", true }, { "exporter in ::/0", false },
};

static uint32_t rng_state = 12345;

static uint32_t rng(uint32_t n) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 17;
        rng_state ^= rng_state << 5;
        return rng_state % n;
}

enum { PREC_OR = 1, PREC_AND = 2, PREC_UNARY = 3 };

/* Appends a random expression to @b with parentheses only where precedence needs them (or
 * at random), and returns its value on recs[V4]. */
static bool random_tree(Buf *b, unsigned depth, int min_prec) {
        unsigned kind = depth == 0 ? 0 : rng(4);
        int prec = kind == 2 ? PREC_AND : kind == 3 ? PREC_OR : PREC_UNARY;
        bool paren = prec < min_prec || rng(8) == 0, v;

        if (paren)
                buf_add(b, "(");
        switch (kind) {
        case 0: {
                const Atom *a = &atoms[rng(ELEMENTSOF(atoms))];
                buf_add(b, "%s", a->text);
                v = a->on_v4;
                break;
        }
        case 1:
                buf_add(b, "%s", rng(2) ? "not " : "!");
                v = !random_tree(b, depth - 1, PREC_UNARY);
                break;
        default: {
                unsigned n = 2 + rng(3);
                bool is_and = kind == 2;

                v = is_and;
                for (unsigned i = 0; i < n; i++) {
                        bool c;
                        if (i > 0)
                                buf_add(b, " %s ", is_and ? (rng(2) ? "and" : "&&") :
                                                            (rng(2) ? "OR" : "||"));
                        c = random_tree(b, depth - 1, prec + (is_and ? 0 : 1));
                        v = is_and ? (v && c) : (v || c);
                }
                break;
        }
        }
        if (paren)
                buf_add(b, ")");
        return v;
}

static void test_random_trees(void **state) {
        _cleanup_free_ Buf *b = calloc(1, sizeof(Buf));
        unsigned n_true = 0;

        assert_non_null(b);
        for (unsigned i = 0; i < 2000; i++) {
                FlowFilter *f = NULL;
                char *err = NULL;
                bool want;
                int r;

                b->len = 0;
                b->s[0] = '\0';
                want = random_tree(b, 1 + rng(4), PREC_OR);
                r = flow_filter_compile(b->s, &f, &err);
                if (r == -E2BIG) {              /* a rare tree over the node cap */
                        free(err);
                        continue;
                }
                if (r < 0)
                        fail_msg("'%s': %d %s", b->s, r, err);
                if (flow_filter_match(f, &recs[V4]) != want)
                        fail_msg("'%s': got %d, want %d", b->s, !want, want);
                n_true += want;
                flow_filter_free(f);
        }
        /* both outcomes are well represented */
        assert_true(n_true > 400 && n_true < 1600);
}

/* ---- may_match ---------------------------------------------------------------------------- */

/* A fake index over a single record: a probe says "maybe" exactly when that record has it. */
typedef struct FakeIndex {
        const FlowRecord *r;
        unsigned calls;
        unsigned addr_calls;
        FlowFilterAddrField last_field;
        uint8_t last_addr[16];
        uint8_t last_family;
        unsigned last_plen;
} FakeIndex;

static bool fake_proto(void *userdata, uint8_t proto) {
        FakeIndex *x = userdata;

        x->calls++;
        return x->r->proto == proto;
}

static bool fake_port(void *userdata, FlowFilterPortField field, uint16_t port) {
        FakeIndex *x = userdata;

        x->calls++;
        return (field == FLOW_FILTER_SRC_PORT ? x->r->src_port : x->r->dst_port) == port;
}

static bool fake_addr(void *userdata, FlowFilterAddrField field, const uint8_t addr[16],
                      uint8_t family, unsigned prefix_len) {
        FakeIndex *x = userdata;
        const uint8_t *a;
        uint8_t fam;
        unsigned start = family == 4 ? 96 : 0;

        x->calls++;
        x->addr_calls++;
        x->last_field = field;
        memcpy(x->last_addr, addr, 16);
        x->last_family = family;
        x->last_plen = prefix_len;

        assert_true(family == 4 || family == 6);
        assert_true(prefix_len <= (family == 4 ? 32u : 128u));
        switch (field) {
        case FLOW_FILTER_SRC_ADDR:
                a = x->r->src_addr;
                fam = x->r->family;
                break;
        case FLOW_FILTER_DST_ADDR:
                a = x->r->dst_addr;
                fam = x->r->family;
                break;
        default:
                a = x->r->exporter_addr;
                fam = x->r->exporter_family;
                break;
        }
        if (fam != family)
                return false;
        for (unsigned b = start; b < start + prefix_len; b++) {
                uint8_t m = (uint8_t) (0x80u >> (b % 8));
                if ((a[b / 8] & m) != (addr[b / 8] & m))
                        return false;
        }
        return true;
}

static bool may(const char *expr, FakeIndex *x) {
        FlowFilterProbe probe = {
                .proto = fake_proto, .port = fake_port, .addr = fake_addr, .userdata = x,
        };
        FlowFilter *f = compile_ok(expr);
        bool m;

        x->calls = x->addr_calls = 0;
        m = flow_filter_may_match(f, &probe);
        flow_filter_free(f);
        return m;
}

typedef struct MayCase {
        const char *expr;
        bool expect;            /* with the index holding only recs[V4] */
} MayCase;

static const MayCase may_cases[] = {
        { "", true },
        { "proto == 6", true },
        { "proto == 17", false },
        { "proto == udp", false },
        { "proto in (17, 1)", false },
        { "proto in (17, 6)", true },
        { "proto != 6", true },                 /* inequalities are "maybe" */
        { "proto not in (6)", true },
        { "proto < 6", true },
        { "not proto == 17", true },
        { "not proto == 6", true },             /* under not: "maybe" */
        { "proto == 17 or dst_port == 443", true },
        { "proto == 17 or dst_port == 80", false },
        { "proto == 6 and dst_port == 80", false },
        { "proto == 6 and dst_port == 443", true },
        { "proto == 6 and (dst_port == 80 or src_port == 40000)", true },
        { "proto == 6 and (dst_port == 80 or src_port == 40001)", false },
        { "proto == 6 and not (dst_port == 80 or src_port == 40001)", true },
        { "dst_port == 40000", false },
        { "src_port == 40000", true },
        { "port == 40000", true },
        { "port == 443", true },
        { "port in (1, 2)", false },
        { "port != 1", true },
        { "src_addr in 10.0.0.0/8", true },
        { "src_addr in 11.0.0.0/8", false },
        { "src_addr in 0.0.0.0/0", true },
        { "src_addr in ::/0", false },
        { "src_addr == ::ffff:10.1.2.3", false },
        { "dst_addr == 192.0.2.80", true },
        { "dst_addr == 10.1.2.3", false },
        { "addr == 10.1.2.3", true },
        { "addr == 192.0.2.80", true },
        { "addr in (1.1.1.1, 2.2.2.2)", false },
        { "addr in (1.1.1.1, 192.0.2.0/24)", true },
        { "addr not in (1.1.1.1, 2.2.2.2)", true },
        { "src_addr != 11.0.0.1", true },
        { "exporter == 172.16.0.1", true },
        { "exporter == 2001:db8::1", false },
        { "octets == 1", true },                /* no probe for this field */
        { "dst_port < 10", true },
        { "octets == 1 and proto == 17", false },
        { "octets == 1 or proto == 17", true },
};

static void test_may_match(void **state) {
        FakeIndex x = { .r = &recs[V4] };

        for (size_t i = 0; i < ELEMENTSOF(may_cases); i++)
                if (may(may_cases[i].expr, &x) != may_cases[i].expect)
                        fail_msg("may_match('%s') != %d", may_cases[i].expr,
                                 may_cases[i].expect);
}

static void test_may_match_probe_args(void **state) {
        static const uint8_t net10[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0 };
        FakeIndex x = { .r = &recs[V4] };
        FlowFilterProbe none = {};
        FlowFilter *f;
        uint8_t a[16];

        /* CIDR: the network (mapped) and the prefix length as written */
        assert_true(may("src_addr in 10.0.0.0/8", &x));
        assert_int_equal(x.addr_calls, 1);
        assert_int_equal(x.last_field, FLOW_FILTER_SRC_ADDR);
        assert_int_equal(x.last_family, 4);
        assert_int_equal(x.last_plen, 8);
        assert_memory_equal(x.last_addr, net10, 16);

        /* plain addresses: 32 and 128 */
        assert_true(may("exporter == 172.16.0.1", &x));
        assert_int_equal(x.last_field, FLOW_FILTER_EXPORTER);
        assert_int_equal(x.last_plen, 32);
        assert_false(may("dst_addr == 2001:db8::1", &x));
        assert_int_equal(x.last_field, FLOW_FILTER_DST_ADDR);
        assert_int_equal(x.last_family, 6);
        assert_int_equal(x.last_plen, 128);
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", a), 1);
        assert_memory_equal(x.last_addr, a, 16);
        assert_false(may("src_addr in ::/0", &x));
        assert_int_equal(x.last_plen, 0);

        /* either side and every member: 2 members x 2 sides, all "no" */
        assert_false(may("addr in (1.1.1.1, 2.2.2.2)", &x));
        assert_int_equal(x.addr_calls, 4);
        assert_false(may("port in (1, 2, 3)", &x));
        assert_int_equal(x.calls, 6);
        assert_false(may("proto in (1, 2, 3, 4)", &x));
        assert_int_equal(x.calls, 4);

        /* nothing is probed under not, for inequalities or unprobed fields */
        assert_true(may("not proto == 1 and port != 2 and octets == 3 and src_port > 4", &x));
        assert_int_equal(x.calls, 0);

        /* NULL callbacks and a NULL probe are "maybe" */
        f = compile_ok("proto == 17 and dst_port == 1 and addr == 1.1.1.1");
        assert_true(flow_filter_may_match(f, &none));
        assert_true(flow_filter_may_match(f, NULL));
        flow_filter_free(f);
}

/* Soundness: whenever a record matches, an index holding that record must say "maybe". */
static void test_may_match_sound(void **state) {
        unsigned checked = 0;

        for (size_t i = 0; i < ELEMENTSOF(match_cases); i++) {
                const MatchCase *c = &match_cases[i];
                FakeIndex x = { .r = &recs[c->rec] };

                if (!match_expr(c->expr, &recs[c->rec]))
                        continue;
                if (!may(c->expr, &x))
                        fail_msg("'%s' matches record %d but may_match says no", c->expr,
                                 c->rec);
                checked++;
        }
        assert_true(checked > 100);
}

/* ---- odds and ends ------------------------------------------------------------------------ */

static void test_tokens(void **state) {
        /* hex-looking words are names unless they contain ':' (dst_addr, add, be, cafe) */
        check_error("cafe == 1", -EINVAL, 1, "unknown field 'cafe'");
        check_error("add == 1", -EINVAL, 1, "unknown field 'add'");
        assert_true(match_expr("src_addr in ::ffff:0:0/96 and dst_addr == ::1", &recs[MAPPED]));
        assert_true(match_expr("dst_addr==dead::beef or src_addr==::ffff:10.1.2.3",
                               &recs[MAPPED]));
        assert_true(match_expr("(src_addr in 10.0.0.0/8)and(dst_port in (443))", &recs[V4]));
        /* keywords are whole words only */
        check_error("proto == 6 andtos == 1", -EINVAL, 12, "found 'andtos'");
        check_error("notproto == 6", -EINVAL, 1, "unknown field 'notproto'");
        /* long tokens are cut in messages */
        check_error("proto == 6 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                    -EINVAL, 12, "found 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
}

static void test_rate(void **state) {
        static const char *const exprs[] = {
                "proto == 6 and dst_port in (80,443)",
                "src_addr in 10.0.0.0/8 and not dst_addr in (192.168.0.0/16, 2001:db8::/32)",
        };
        enum { N = 256, ROUNDS = 8000 };
        _cleanup_free_ FlowRecord *rs = calloc(N, sizeof(FlowRecord));

        assert_non_null(rs);
        for (unsigned i = 0; i < N; i++) {
                rs[i] = recs[i % 2 ? V4 : V6];
                rs[i].dst_port = (uint16_t) (i % 4 == 1 ? 80 : 443 + i);
                rs[i].proto = (uint8_t) (i % 3 ? 6 : 17);
        }
        for (size_t e = 0; e < ELEMENTSOF(exprs); e++) {
                FlowFilter *f = compile_ok(exprs[e]);
                struct timespec t0, t1;
                unsigned long hits = 0;
                double s;

                assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
                for (unsigned k = 0; k < ROUNDS; k++)
                        for (unsigned i = 0; i < N; i++)
                                hits += flow_filter_match(f, &rs[i]);
                assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
                s = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
                printf("flow-filter rate: %.1f M evaluations/s (%.1f ns each, %lu hits) for '%s'\n",
                       (double) N * ROUNDS / s / 1e6, s * 1e9 / ((double) N * ROUNDS), hits,
                       exprs[e]);
                assert_true(hits > 0);
                flow_filter_free(f);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_match_table),
                cmocka_unit_test(test_blank),
                cmocka_unit_test(test_error_table),
                cmocka_unit_test(test_cap_length),
                cmocka_unit_test(test_cap_depth),
                cmocka_unit_test(test_cap_nodes),
                cmocka_unit_test(test_cap_set),
                cmocka_unit_test(test_large_sets),
                cmocka_unit_test(test_random_trees),
                cmocka_unit_test(test_may_match),
                cmocka_unit_test(test_may_match_probe_args),
                cmocka_unit_test(test_may_match_sound),
                cmocka_unit_test(test_tokens),
                cmocka_unit_test(test_rate),
        };
        return cmocka_run_group_tests_name("flow-filter", tests, group_setup, NULL);
}
