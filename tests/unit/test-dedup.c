/* SPDX-License-Identifier: MIT */
/*
 * test-dedup.c - the de-duplication stage: a second exporter's report of the same flow is
 * dropped (another address or another observation domain), the same exporter's repeat is
 * not (and is remembered), tolerance bounds on start and end, flow key fields, expiry by
 * arrival time (explicit and lazy), FIFO eviction at max_entries, the per-key cap, a
 * random load that stays within its bounds, and the JSON parser's defaults and errors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "dedup.h"
#include "flow.h"
#include "macro.h"

#define T0 1700000000000ull

static void v4(uint8_t a[16], uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3) {
        const uint8_t b[4] = { b0, b1, b2, b3 };
        flow_addr_set_v4(a, b);
}

/* Flow @flow (source port) as reported by exporter 10.0.0.@exporter. */
static FlowRecord rec(uint16_t flow, uint8_t exporter, uint64_t start, uint64_t end) {
        FlowRecord r;

        memset(&r, 0, sizeof(r));
        r.start_ms = start;
        r.end_ms = end;
        r.octets = 1000;
        r.packets = 3;
        v4(r.src_addr, 192, 0, 2, 1);
        v4(r.dst_addr, 198, 51, 100, 2);
        v4(r.exporter_addr, 10, 0, 0, exporter);
        r.family = 4;
        r.exporter_family = 4;
        r.src_port = flow;
        r.dst_port = 443;
        r.proto = 6;
        r.odid = 1;
        return r;
}

static Dedup *new_dedup(uint64_t tolerance, uint64_t hold, size_t max) {
        DedupConfig c = { .tolerance_ms = tolerance, .hold_ms = hold, .max_entries = max };
        Dedup *d = NULL;

        assert_int_equal(dedup_new(&d, &c), 0);
        return d;
}

static DedupStats stats(const Dedup *d) {
        DedupStats s;
        dedup_get_stats(d, &s);
        return s;
}

static void test_second_exporter(void **state) {
        Dedup *d = new_dedup(1000, 30000, 1000);
        FlowRecord a = rec(1000, 1, T0, T0 + 5000), b;

        assert_false(dedup_is_duplicate(d, &a, T0 + 6000));
        b = rec(1000, 2, T0 + 300, T0 + 5200);  /* other router, clocks slightly off */
        assert_true(dedup_is_duplicate(d, &b, T0 + 6100));
        /* a third exporter is a duplicate too; duplicates are not remembered */
        b = rec(1000, 3, T0 - 1000, T0 + 4000);
        assert_true(dedup_is_duplicate(d, &b, T0 + 6200));
        assert_int_equal(stats(d).checked, 3);
        assert_int_equal(stats(d).duplicates, 2);
        assert_int_equal(stats(d).entries, 1);

        /* same exporter address, another observation domain: another exporter */
        b = rec(1000, 1, T0, T0 + 5000);
        b.odid = 2;
        assert_true(dedup_is_duplicate(d, &b, T0 + 6300));
        /* same address bytes as IPv6 exporter family: another exporter as well */
        b.odid = 1;
        b.exporter_family = 6;
        assert_true(dedup_is_duplicate(d, &b, T0 + 6300));
        assert_int_equal(stats(d).duplicates, 4);
        assert_null(dedup_free(d));
        assert_null(dedup_free(NULL));
}

static void test_same_exporter(void **state) {
        Dedup *d = new_dedup(1000, 300000, 1000);
        FlowRecord a = rec(1000, 1, T0, T0 + 60000), b;

        assert_false(dedup_is_duplicate(d, &a, T0 + 60000));
        /* the same report again (a long flow's next report, or a resend) passes */
        assert_false(dedup_is_duplicate(d, &a, T0 + 61000));
        a = rec(1000, 1, T0 + 60000, T0 + 120000);
        assert_false(dedup_is_duplicate(d, &a, T0 + 120000));
        assert_int_equal(stats(d).entries, 3);
        assert_int_equal(stats(d).duplicates, 0);

        /* the second exporter's copies of both reports match the remembered ones */
        b = rec(1000, 2, T0 + 100, T0 + 60100);
        assert_true(dedup_is_duplicate(d, &b, T0 + 120100));
        b = rec(1000, 2, T0 + 60100, T0 + 120100);
        assert_true(dedup_is_duplicate(d, &b, T0 + 120200));
        assert_int_equal(stats(d).duplicates, 2);
        dedup_free(d);
}

static void test_tolerance(void **state) {
        Dedup *d = new_dedup(1000, 30000, 1000);
        FlowRecord a = rec(1000, 1, T0 + 10000, T0 + 20000), b;

        assert_false(dedup_is_duplicate(d, &a, T0));
        /* exactly at the tolerance, either direction: duplicate */
        b = rec(1000, 2, T0 + 11000, T0 + 19000);
        assert_true(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 2, T0 + 9000, T0 + 21000);
        assert_true(dedup_is_duplicate(d, &b, T0));
        /* one past it, in start or end: a different flow (and remembered) */
        b = rec(1000, 2, T0 + 11001, T0 + 20000);
        assert_false(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 3, T0 + 10000, T0 + 18999);
        assert_false(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 4, T0 + 8999, T0 + 20000);
        assert_false(dedup_is_duplicate(d, &b, T0));
        assert_int_equal(stats(d).entries, 4);
        dedup_free(d);

        /* tolerance 0: only exact start and end match */
        d = new_dedup(0, 30000, 1000);
        a = rec(1000, 1, T0, T0 + 1);
        assert_false(dedup_is_duplicate(d, &a, T0));
        b = rec(1000, 2, T0, T0 + 2);
        assert_false(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 3, T0, T0 + 1);
        assert_true(dedup_is_duplicate(d, &b, T0));
        dedup_free(d);
}

static void test_key_fields(void **state) {
        Dedup *d = new_dedup(1000, 30000, 1000);
        FlowRecord a = rec(1000, 1, T0, T0 + 1000), b;

        assert_false(dedup_is_duplicate(d, &a, T0));
        b = rec(1001, 2, T0, T0 + 1000);                /* src_port */
        assert_false(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 2, T0, T0 + 1000);
        b.dst_port = 80;
        assert_false(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 2, T0, T0 + 1000);
        b.proto = 17;
        assert_false(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 2, T0, T0 + 1000);
        b.src_addr[15] ^= 1;
        assert_false(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 2, T0, T0 + 1000);
        b.dst_addr[15] ^= 1;
        assert_false(dedup_is_duplicate(d, &b, T0));
        b = rec(1000, 2, T0, T0 + 1000);
        b.family = 6;
        assert_false(dedup_is_duplicate(d, &b, T0));
        /* non-key fields do not matter: other counters, interfaces, template */
        b = rec(1000, 2, T0, T0 + 1000);
        b.octets = 999;
        b.packets = 2;
        b.ingress_if = 9;
        b.template_id = 300;
        b.tcp_flags = 0x12;
        assert_true(dedup_is_duplicate(d, &b, T0));
        dedup_free(d);
}

static void test_expiry(void **state) {
        Dedup *d = new_dedup(1000, 30000, 1000);
        FlowRecord a = rec(1000, 1, T0, T0 + 1000), b = rec(1000, 2, T0, T0 + 1000);
        FlowRecord c = rec(2000, 1, T0, T0 + 1000);

        assert_false(dedup_is_duplicate(d, &a, T0 + 1000));
        assert_false(dedup_is_duplicate(d, &c, T0 + 5000));
        /* hold_ms after arrival: still there */
        dedup_expire(d, T0 + 31000);
        assert_int_equal(stats(d).entries, 2);
        assert_true(dedup_is_duplicate(d, &b, T0 + 31000));
        /* one more millisecond: the first is gone, the second stays */
        dedup_expire(d, T0 + 31001);
        assert_int_equal(stats(d).entries, 1);
        assert_false(dedup_is_duplicate(d, &b, T0 + 31001));    /* now remembered itself */
        assert_int_equal(stats(d).entries, 2);
        dedup_expire(d, T0 + 100000);
        assert_int_equal(stats(d).entries, 0);
        assert_int_equal(stats(d).evicted, 0);

        /* without dedup_expire(), a lookup ignores and drops expired reports of its key */
        assert_false(dedup_is_duplicate(d, &a, T0));
        assert_false(dedup_is_duplicate(d, &b, T0 + 30001));
        assert_int_equal(stats(d).entries, 1);
        assert_int_equal(stats(d).duplicates, 1);
        /* a clock going backwards expires nothing */
        dedup_expire(d, 0);
        assert_int_equal(stats(d).entries, 1);
        dedup_free(d);
}

static void test_max_entries(void **state) {
        Dedup *d = new_dedup(1000, 30000, 3);
        FlowRecord r;

        for (uint16_t f = 1; f <= 4; f++) {
                r = rec(f, 1, T0, T0 + 1000);
                assert_false(dedup_is_duplicate(d, &r, T0 + f));
        }
        assert_int_equal(stats(d).entries, 3);
        assert_int_equal(stats(d).evicted, 1);
        /* flow 1 arrived first and was evicted: its second report passes */
        r = rec(1, 2, T0, T0 + 1000);
        assert_false(dedup_is_duplicate(d, &r, T0 + 10));
        assert_int_equal(stats(d).evicted, 2);          /* evicting flow 2 to remember it */
        r = rec(2, 2, T0, T0 + 1000);
        assert_false(dedup_is_duplicate(d, &r, T0 + 11));
        /* the newest are still known */
        r = rec(4, 2, T0, T0 + 1000);
        assert_true(dedup_is_duplicate(d, &r, T0 + 12));
        r = rec(1, 3, T0, T0 + 1000);
        assert_true(dedup_is_duplicate(d, &r, T0 + 13));
        assert_int_equal(stats(d).entries, 3);
        dedup_free(d);

        /* max_entries 1 works */
        d = new_dedup(1000, 30000, 1);
        r = rec(1, 1, T0, T0 + 1000);
        assert_false(dedup_is_duplicate(d, &r, T0));
        r = rec(2, 1, T0, T0 + 1000);
        assert_false(dedup_is_duplicate(d, &r, T0));
        r = rec(2, 2, T0, T0 + 1000);
        assert_true(dedup_is_duplicate(d, &r, T0));
        assert_int_equal(stats(d).entries, 1);
        dedup_free(d);
}

static void test_per_key_cap(void **state) {
        Dedup *d = new_dedup(1000, 30000, 1000);
        FlowRecord r;

        /* one exporter reporting one key 9 times, 10 s apart: only the last 8 are kept */
        for (unsigned i = 0; i <= DEDUP_MAX_PER_KEY; i++) {
                r = rec(1000, 1, T0 + i * 10000ull, T0 + i * 10000ull + 9000);
                assert_false(dedup_is_duplicate(d, &r, T0 + i));
        }
        assert_int_equal(stats(d).entries, DEDUP_MAX_PER_KEY);
        assert_int_equal(stats(d).evicted, 1);
        /* the first report is forgotten: its copy passes and, remembered, pushes out the
         * second report (the key's oldest by arrival); so the second's copy passes too,
         * pushing out the third; the fourth is still known */
        r = rec(1000, 2, T0, T0 + 9000);
        assert_false(dedup_is_duplicate(d, &r, T0 + 100));
        assert_int_equal(stats(d).evicted, 2);
        r = rec(1000, 3, T0 + 10000, T0 + 19000);
        assert_false(dedup_is_duplicate(d, &r, T0 + 101));
        assert_int_equal(stats(d).evicted, 3);
        r = rec(1000, 2, T0 + 30000, T0 + 39000);
        assert_true(dedup_is_duplicate(d, &r, T0 + 102));
        assert_int_equal(stats(d).entries, DEDUP_MAX_PER_KEY);
        assert_int_equal(stats(d).evicted, 3);
        dedup_free(d);
}

static uint64_t rnd(uint64_t *x) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        return *x;
}

static void test_random_load(void **state) {
        /* enough reports to grow the array and the buckets several times, with eviction,
         * expiry and duplicates mixed in; a shadow count checks the stats add up */
        Dedup *d = new_dedup(50, 2000, 1000);
        uint64_t x = 0x243f6a8885a308d3ull, now = T0, passed = 0;
        DedupStats s;

        for (unsigned i = 0; i < 200000; i++) {
                uint64_t v = rnd(&x);
                FlowRecord r = rec((uint16_t) (v % 3000), (uint8_t) ((v >> 16) % 3 + 1),
                                   T0 + ((v >> 24) % 4) * 1000, T0 + ((v >> 24) % 4) * 1000 + 500);

                r.dst_port = (uint16_t) ((v >> 32) % 3);
                now += (v >> 40) % 3;
                if (!dedup_is_duplicate(d, &r, now))
                        passed++;
                if (i % 1000 == 0) {
                        dedup_expire(d, now);
                        s = stats(d);
                        assert_true(s.entries <= 1000);
                }
        }
        s = stats(d);
        assert_int_equal(s.checked, 200000);
        assert_int_equal(s.checked - s.duplicates, passed);
        assert_true(s.duplicates > 0);
        assert_true(s.evicted > 0);
        assert_true(s.entries <= 1000);
        dedup_expire(d, now + 2001);
        assert_int_equal(stats(d).entries, 0);
        dedup_free(d);
}

static void test_new_invalid(void **state) {
        Dedup *d = (Dedup *) 0x1;
        DedupConfig c;

        dedup_config_init(&c);
        c.max_entries = 0;
        assert_int_equal(dedup_new(&d, &c), -EINVAL);
        c.max_entries = DEDUP_MAX_ENTRIES_MAX + 1;
        assert_int_equal(dedup_new(&d, &c), -EINVAL);
        dedup_config_init(&c);
        c.hold_ms = 0;
        assert_int_equal(dedup_new(&d, &c), -EINVAL);
        dedup_config_init(&c);
        c.tolerance_ms = DEDUP_TOLERANCE_MS_MAX + 1;
        assert_int_equal(dedup_new(&d, &c), -EINVAL);
        assert_ptr_equal(d, (Dedup *) 0x1);
        dedup_config_init(&c);
        assert_int_equal(dedup_new(&d, &c), 0);
        dedup_free(d);
}

static int parse(const char *json, DedupConfig *c, char **err) {
        json_error_t jerr;
        json_t *o = json_loads(json, JSON_DECODE_ANY, &jerr);
        int r;

        if (!o)
                fail_msg("bad test JSON %s: %s", json, jerr.text);
        *err = NULL;
        r = dedup_config_parse(o, c, err);
        json_decref(o);
        return r;
}

static void test_config_parse(void **state) {
        DedupConfig c;
        char *err;

        assert_int_equal(parse("{}", &c, &err), 0);
        assert_int_equal(c.tolerance_ms, 1000);
        assert_int_equal(c.hold_ms, 30000);
        assert_int_equal(c.max_entries, 1000000);
        assert_int_equal(parse("{\"tolerance_ms\": 0, \"hold_ms\": 1, \"max_entries\": 1}", &c,
                               &err), 0);
        assert_int_equal(c.tolerance_ms, 0);
        assert_int_equal(c.hold_ms, 1);
        assert_int_equal(c.max_entries, 1);
        assert_int_equal(parse("{\"tolerance_ms\": 3600000, \"hold_ms\": 86400000, "
                               "\"max_entries\": 100000000}", &c, &err), 0);
        assert_int_equal(c.tolerance_ms, 3600000);
        assert_int_equal(c.hold_ms, 86400000);
        assert_int_equal(c.max_entries, 100000000);
        assert_null(err);
}

static void test_config_errors(void **state) {
        static const struct {
                const char *json;
                const char *msg;
        } cases[] = {
                { "true", "must be a JSON object" },
                { "[]", "must be a JSON object" },
                { "{\"tolerance_ms\": -1}", "tolerance_ms: must be 0..3600000, got -1" },
                { "{\"tolerance_ms\": 3600001}", "tolerance_ms: must be 0..3600000, got 3600001" },
                { "{\"tolerance_ms\": 1.5}", "tolerance_ms: must be an integer" },
                { "{\"hold_ms\": 0}", "hold_ms: must be 1..86400000, got 0" },
                { "{\"hold_ms\": 86400001}", "hold_ms: must be 1..86400000, got 86400001" },
                { "{\"max_entries\": 0}", "max_entries: must be 1..100000000, got 0" },
                { "{\"max_entries\": \"many\"}", "max_entries: must be an integer" },
                { "{\"tolerance\": 5}", "tolerance: unknown key" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                DedupConfig c = { 7, 8, 9 };
                char *err = NULL;

                if (parse(cases[i].json, &c, &err) != -EINVAL)
                        fail_msg("accepted: %s", cases[i].json);
                if (!err || strcmp(err, cases[i].msg) != 0)
                        fail_msg("%s: got '%s', want '%s'", cases[i].json, err ? err : "(null)",
                                 cases[i].msg);
                assert_int_equal(c.tolerance_ms, 7);    /* ret untouched */
                assert_int_equal(c.hold_ms, 8);
                assert_int_equal(c.max_entries, 9);
                free(err);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_second_exporter),
                cmocka_unit_test(test_same_exporter),
                cmocka_unit_test(test_tolerance),
                cmocka_unit_test(test_key_fields),
                cmocka_unit_test(test_expiry),
                cmocka_unit_test(test_max_entries),
                cmocka_unit_test(test_per_key_cap),
                cmocka_unit_test(test_random_load),
                cmocka_unit_test(test_new_invalid),
                cmocka_unit_test(test_config_parse),
                cmocka_unit_test(test_config_errors),
        };
        return cmocka_run_group_tests_name("dedup", tests, NULL, NULL);
}
