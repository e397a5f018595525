/* SPDX-License-Identifier: MIT */
/*
 * test-aggregate.c - the aggregation stage: records of one window and key merge, two windows
 * give two outputs, IPv4 and IPv6 prefix masks, the fields of an output record, tick timing
 * (nothing before window end + late_s, everything after), late records, flush and emit
 * batching, early eviction order, wrap-around protection, conservation of octets/packets/
 * flows over 100k random records with early eviction and late records, and the JSON
 * parser's accepted forms and error messages.
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

#include "aggregate.h"
#include "flow.h"
#include "macro.h"

#define T0 1699999980000ull     /* a multiple of 60 s: window boundaries fall on T0 + k*60 s */
_Static_assert(T0 % 60000 == 0, "T0 must start a window");

typedef struct Sink {
        FlowRecord *recs;
        size_t n, cap;
        size_t calls;
        size_t max_batch;
} Sink;

static void on_emit(void *userdata, const FlowRecord *recs, size_t n) {
        Sink *s = userdata;

        assert_true(n > 0);
        assert_true(n <= AGG_EMIT_BATCH);
        if (s->n + n > s->cap) {
                s->cap = (s->n + n) * 2;
                s->recs = realloc(s->recs, s->cap * sizeof(*s->recs));
                assert_non_null(s->recs);
        }
        memcpy(s->recs + s->n, recs, n * sizeof(*recs));
        s->n += n;
        s->calls++;
        if (n > s->max_batch)
                s->max_batch = n;
}

static void sink_reset(Sink *s) {
        free(s->recs);
        memset(s, 0, sizeof(*s));
}

static void v4(uint8_t a[16], uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3) {
        const uint8_t b[4] = { b0, b1, b2, b3 };
        flow_addr_set_v4(a, b);
}

static FlowRecord rec_v4(uint64_t start, uint8_t src_last, uint16_t dst_port) {
        FlowRecord r;

        memset(&r, 0, sizeof(r));
        r.start_ms = start;
        r.end_ms = start + 500;
        r.octets = 1000;
        r.packets = 10;
        v4(r.src_addr, 10, 1, 2, src_last);
        v4(r.dst_addr, 192, 0, 2, 1);
        v4(r.exporter_addr, 172, 16, 0, 1);
        r.family = 4;
        r.exporter_family = 4;
        r.src_port = 40000;
        r.dst_port = dst_port;
        r.proto = 6;
        r.odid = 3;
        r.ingress_if = 7;
        r.direction = 0;
        return r;
}

static Aggregator *new_agg(const char *json, Sink *s) {
        json_error_t jerr;
        json_t *o = json_loads(json, 0, &jerr);
        char *err = NULL;
        Aggregator *a = NULL;
        AggConfig cfg;

        assert_non_null(o);
        if (agg_config_parse(o, &cfg, &err) < 0)
                fail_msg("parse failed: %s", err);
        json_decref(o);
        assert_int_equal(agg_new(&a, &cfg, on_emit, s), 0);
        return a;
}

static void test_windows(void **state) {
        Sink s = { 0 };
        Aggregator *a = new_agg("{\"keys\": [\"dst_port\"], \"window_s\": 60}", &s);
        FlowRecord r;
        AggStats st;

        /* window 0: two records merge */
        r = rec_v4(T0 + 1000, 1, 443);
        r.tcp_flags = 0x02;
        agg_add(a, &r, T0);
        r = rec_v4(T0 + 59999, 2, 443);
        r.end_ms = T0 + 70000;
        r.tcp_flags = 0x10;
        r.flows = 3;
        agg_add(a, &r, T0);
        /* window 1 (starts exactly on the boundary): a separate output */
        r = rec_v4(T0 + 60000, 1, 443);
        agg_add(a, &r, T0);
        agg_get_stats(a, &st);
        assert_int_equal(st.in, 3);
        assert_int_equal(st.live_keys, 2);
        assert_int_equal(s.n, 0);

        agg_flush(a);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.calls, 1);
        /* oldest window first */
        assert_true(s.recs[0].start_ms == T0 + 1000);
        assert_true(s.recs[0].end_ms == T0 + 70000);
        assert_int_equal(s.recs[0].octets, 2000);
        assert_int_equal(s.recs[0].packets, 20);
        assert_int_equal(s.recs[0].flows, 4);  /* 0 counts as 1, plus 3 */
        assert_int_equal(s.recs[0].tcp_flags, 0x12);
        assert_int_equal(s.recs[0].dst_port, 443);
        assert_true(s.recs[1].start_ms == T0 + 60000);
        assert_int_equal(s.recs[1].octets, 1000);
        assert_int_equal(s.recs[1].flows, 1);

        agg_get_stats(a, &st);
        assert_int_equal(st.out, 2);
        assert_int_equal(st.live_keys, 0);
        assert_int_equal(st.evicted_early, 0);
        agg_free(a);
        sink_reset(&s);
}

static void test_output_fields(void **state) {
        Sink s = { 0 };
        Aggregator *a = new_agg("{\"keys\": [\"proto\", \"dst_port\"]}", &s);
        FlowRecord r = rec_v4(T0, 1, 53), o;

        r.proto = 17;
        r.sampling = 100;
        r.end_reason = 2;
        r.template_id = 256;
        r.vlan = 12;
        agg_add(a, &r, T0);
        agg_flush(a);
        assert_int_equal(s.n, 1);
        o = s.recs[0];
        assert_int_equal(o.proto, 17);
        assert_int_equal(o.dst_port, 53);
        /* no address key: zero addresses, family 4, exporter 4 with zero address */
        assert_int_equal(o.family, 4);
        assert_int_equal(o.exporter_family, 4);
        for (unsigned i = 0; i < 16; i++) {
                assert_int_equal(o.src_addr[i], 0);
                assert_int_equal(o.dst_addr[i], 0);
                assert_int_equal(o.exporter_addr[i], 0);
        }
        assert_int_equal(o.src_port, 0);
        assert_int_equal(o.ingress_if, 0);
        assert_int_equal(o.odid, 0);
        assert_int_equal(o.vlan, 0);
        assert_int_equal(o.sampling, 0);
        assert_int_equal(o.end_reason, 0);
        assert_int_equal(o.template_id, 0);
        assert_int_equal(o.direction, FLOW_DIRECTION_UNKNOWN);
        agg_free(a);
        sink_reset(&s);

        /* exporter, odid, direction and the integer keys are carried */
        a = new_agg("{\"keys\": [\"exporter\", \"odid\", \"direction\", \"ingress_if\", "
                    "\"egress_if\", \"src_as\", \"dst_as\", \"vlan\", \"tos\", \"src_port\"]}", &s);
        r = rec_v4(T0, 1, 53);
        r.egress_if = 9;
        r.src_as = 64500;
        r.dst_as = 64501;
        r.vlan = 12;
        r.tos = 0xb8;
        agg_add(a, &r, T0);
        agg_flush(a);
        assert_int_equal(s.n, 1);
        o = s.recs[0];
        assert_memory_equal(o.exporter_addr, r.exporter_addr, 16);
        assert_int_equal(o.exporter_family, 4);
        assert_int_equal(o.odid, 3);
        assert_int_equal(o.direction, 0);
        assert_int_equal(o.ingress_if, 7);
        assert_int_equal(o.egress_if, 9);
        assert_int_equal(o.src_as, 64500);
        assert_int_equal(o.dst_as, 64501);
        assert_int_equal(o.vlan, 12);
        assert_int_equal(o.tos, 0xb8);
        assert_int_equal(o.src_port, 40000);
        assert_int_equal(o.dst_port, 0);
        assert_int_equal(o.family, 4);
        agg_free(a);
        sink_reset(&s);
}

static void test_mask_v4(void **state) {
        Sink s = { 0 };
        Aggregator *a = new_agg("{\"keys\": [\"src_addr/24\", \"dst_addr\"]}", &s);
        FlowRecord r;
        uint8_t want[16];

        r = rec_v4(T0, 3, 80);
        agg_add(a, &r, T0);
        r = rec_v4(T0 + 5, 200, 81);    /* same /24 */
        agg_add(a, &r, T0);
        r = rec_v4(T0 + 7, 9, 82);
        v4(r.src_addr, 10, 1, 3, 9);    /* another /24 */
        agg_add(a, &r, T0);
        r = rec_v4(T0 + 9, 3, 83);
        v4(r.dst_addr, 192, 0, 2, 2);   /* same source /24, other destination (full length) */
        agg_add(a, &r, T0);
        agg_flush(a);
        assert_int_equal(s.n, 3);

        v4(want, 10, 1, 2, 0);
        assert_memory_equal(s.recs[0].src_addr, want, 16);     /* ::ffff: prefix kept */
        assert_int_equal(s.recs[0].octets, 2000);
        assert_int_equal(s.recs[0].family, 4);
        v4(want, 192, 0, 2, 1);
        assert_memory_equal(s.recs[0].dst_addr, want, 16);
        v4(want, 10, 1, 3, 0);
        assert_memory_equal(s.recs[1].src_addr, want, 16);
        v4(want, 192, 0, 2, 2);
        assert_memory_equal(s.recs[2].dst_addr, want, 16);
        agg_free(a);
        sink_reset(&s);

        /* /0 puts every IPv4 source in one entry; odd lengths mask inside a byte */
        a = new_agg("{\"keys\": [\"src_addr/0\", \"dst_addr/31\"]}", &s);
        r = rec_v4(T0, 3, 80);
        v4(r.dst_addr, 192, 0, 2, 5);
        agg_add(a, &r, T0);
        r = rec_v4(T0, 99, 80);
        v4(r.src_addr, 8, 8, 8, 8);
        v4(r.dst_addr, 192, 0, 2, 4);
        agg_add(a, &r, T0);
        agg_flush(a);
        assert_int_equal(s.n, 1);
        v4(want, 0, 0, 0, 0);
        assert_memory_equal(s.recs[0].src_addr, want, 16);
        v4(want, 192, 0, 2, 4);
        assert_memory_equal(s.recs[0].dst_addr, want, 16);
        agg_free(a);
        sink_reset(&s);
}

static FlowRecord rec_v6(uint64_t start, uint16_t group4, uint8_t last) {
        /* 2001:db8:0:<group4>::<last> */
        FlowRecord r = rec_v4(start, 1, 443);
        static const uint8_t base[16] = { 0x20, 0x01, 0x0d, 0xb8 };

        memcpy(r.src_addr, base, 16);
        r.src_addr[6] = (uint8_t) (group4 >> 8);
        r.src_addr[7] = (uint8_t) group4;
        r.src_addr[15] = last;
        r.family = 6;
        return r;
}

static void test_mask_v6(void **state) {
        Sink s = { 0 };
        Aggregator *a = new_agg("{\"keys\": [\"src_addr/24/64\"]}", &s);
        FlowRecord r;
        uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1 };

        r = rec_v6(T0, 1, 1);
        agg_add(a, &r, T0);
        r = rec_v6(T0, 1, 2);           /* same /64 */
        agg_add(a, &r, T0);
        r = rec_v6(T0, 2, 1);           /* another /64 */
        agg_add(a, &r, T0);
        /* IPv4 10.1.2.x/24 stays apart from IPv6 even where the bytes would agree */
        r = rec_v4(T0, 1, 443);
        agg_add(a, &r, T0);
        r = rec_v4(T0, 2, 443);
        agg_add(a, &r, T0);
        agg_flush(a);
        assert_int_equal(s.n, 3);
        for (size_t i = 0; i < s.n; i++) {
                const FlowRecord *o = &s.recs[i];
                if (o->family == 6 && o->src_addr[7] == 1) {
                        assert_memory_equal(o->src_addr, want, 16);
                        assert_int_equal(o->octets, 2000);
                } else if (o->family == 6) {
                        assert_int_equal(o->src_addr[7], 2);
                        assert_int_equal(o->src_addr[15], 0);
                        assert_int_equal(o->octets, 1000);
                } else {
                        uint8_t w4[16];
                        v4(w4, 10, 1, 2, 0);
                        assert_int_equal(o->family, 4);
                        assert_memory_equal(o->src_addr, w4, 16);
                        assert_int_equal(o->octets, 2000);
                }
        }
        agg_free(a);
        sink_reset(&s);

        /* "src_addr/24" alone keeps IPv6 addresses at full length */
        a = new_agg("{\"keys\": [\"src_addr/24\"]}", &s);
        r = rec_v6(T0, 1, 1);
        agg_add(a, &r, T0);
        r = rec_v6(T0, 1, 2);
        agg_add(a, &r, T0);
        agg_flush(a);
        assert_int_equal(s.n, 2);
        agg_free(a);
        sink_reset(&s);
}

static void test_tick_timing(void **state) {
        Sink s = { 0 };
        /* window [T0, T0+60s) is due at T0 + 65 s */
        Aggregator *a = new_agg("{\"keys\": [\"dst_port\"], \"window_s\": 60, \"late_s\": 5}", &s);
        FlowRecord r;
        AggStats st;

        r = rec_v4(T0 + 100, 1, 443);
        agg_add(a, &r, T0 + 200);
        r = rec_v4(T0 + 30000, 1, 80);
        agg_add(a, &r, T0 + 30000);
        r = rec_v4(T0 + 61000, 1, 443);         /* next window */
        agg_add(a, &r, T0 + 61000);

        agg_tick(a, T0 + 59999);
        agg_tick(a, T0 + 60000);
        agg_tick(a, T0 + 64999);
        assert_int_equal(s.n, 0);
        agg_tick(a, T0 + 65000);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.calls, 1);
        for (size_t i = 0; i < 2; i++)
                assert_true(s.recs[i].start_ms < T0 + 60000);
        agg_get_stats(a, &st);
        assert_int_equal(st.live_keys, 1);

        /* a late record for the emitted window: a new entry, emitted by the next tick */
        r = rec_v4(T0 + 500, 1, 443);
        agg_add(a, &r, T0 + 65500);
        agg_get_stats(a, &st);
        assert_int_equal(st.late, 1);
        assert_int_equal(st.live_keys, 2);
        agg_tick(a, T0 + 66000);
        assert_int_equal(s.n, 3);
        assert_true(s.recs[2].start_ms == T0 + 500);

        /* a record within late_s of the window end still merges before its tick */
        r = rec_v4(T0 + 119000, 1, 443);
        agg_add(a, &r, T0 + 122000);
        agg_get_stats(a, &st);
        assert_int_equal(st.late, 1);
        assert_int_equal(st.live_keys, 1);
        agg_tick(a, T0 + 124999);
        assert_int_equal(s.n, 3);
        agg_tick(a, T0 + 125000);
        assert_int_equal(s.n, 4);
        assert_int_equal(s.recs[3].octets, 2000);

        /* a clock that goes back does not reopen emitted windows */
        agg_tick(a, T0);
        r = rec_v4(T0 + 100, 1, 443);
        agg_add(a, &r, T0);
        agg_get_stats(a, &st);
        assert_int_equal(st.late, 2);
        agg_tick(a, T0 + 1);
        assert_int_equal(s.n, 5);

        /* now_ms smaller than late_s does not wrap */
        agg_tick(a, 1);
        agg_get_stats(a, &st);
        assert_int_equal(st.live_keys, 0);
        assert_int_equal(st.out, 5);
        agg_free(a);
        sink_reset(&s);
}

static void test_late_zero(void **state) {
        Sink s = { 0 };
        Aggregator *a = new_agg("{\"keys\": [\"proto\"], \"window_s\": 1, \"late_s\": 0}", &s);
        FlowRecord r = rec_v4(T0 + 999, 1, 1);

        agg_add(a, &r, T0 + 999);
        agg_tick(a, T0 + 999);
        assert_int_equal(s.n, 0);
        agg_tick(a, T0 + 1000);
        assert_int_equal(s.n, 1);
        agg_free(a);
        sink_reset(&s);
}

static void test_flush_batches(void **state) {
        Sink s = { 0 };
        Aggregator *a = new_agg("{\"keys\": [\"src_port\", \"dst_port\"]}", &s);
        FlowRecord r;
        AggStats st;

        for (unsigned i = 0; i < 3000; i++) {
                r = rec_v4(T0 + i, 1, (uint16_t) i);
                agg_add(a, &r, T0);
        }
        agg_get_stats(a, &st);
        assert_int_equal(st.live_keys, 3000);
        agg_flush(a);
        assert_int_equal(s.n, 3000);
        assert_int_equal(s.calls, 3);
        assert_int_equal(s.max_batch, AGG_EMIT_BATCH);
        agg_get_stats(a, &st);
        assert_int_equal(st.live_keys, 0);
        assert_int_equal(st.out, 3000);
        /* a second flush has nothing to emit; the aggregator stays usable */
        agg_flush(a);
        assert_int_equal(s.calls, 3);
        agg_add(a, &r, T0);
        agg_flush(a);
        assert_int_equal(s.n, 3001);
        agg_free(a);
        sink_reset(&s);

        /* agg_free() without a flush emits nothing and leaks nothing */
        a = new_agg("{\"keys\": [\"dst_port\"]}", &s);
        for (unsigned i = 0; i < 5000; i++) {
                r = rec_v4(T0 + i * 1000ull, 1, (uint16_t) (i % 7));
                agg_add(a, &r, T0);
        }
        agg_free(a);
        assert_int_equal(s.n, 0);
        sink_reset(&s);
}

static void test_early_eviction(void **state) {
        Sink s = { 0 };
        Aggregator *a = new_agg("{\"keys\": [\"dst_port\"], \"max_keys\": 4}", &s);
        FlowRecord r;
        AggStats st;

        /* window 1 first, then window 0: window 0 is the oldest although it came later */
        r = rec_v4(T0 + 60000, 1, 1);
        agg_add(a, &r, T0);
        r = rec_v4(T0 + 60000, 1, 2);
        agg_add(a, &r, T0);
        r = rec_v4(T0, 1, 3);
        agg_add(a, &r, T0);
        r = rec_v4(T0, 1, 4);
        agg_add(a, &r, T0);
        /* an existing key merges without eviction */
        r = rec_v4(T0 + 60001, 1, 1);
        agg_add(a, &r, T0);
        assert_int_equal(s.n, 0);

        r = rec_v4(T0 + 60000, 1, 5);           /* new key with 4 live: evict one */
        agg_add(a, &r, T0);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.recs[0].dst_port, 3);        /* oldest entry of the oldest window */
        r = rec_v4(T0 + 60000, 1, 6);
        agg_add(a, &r, T0);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.recs[1].dst_port, 4);
        r = rec_v4(T0 + 60000, 1, 7);
        agg_add(a, &r, T0);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.recs[2].dst_port, 1);        /* then window 1, insertion order */
        assert_int_equal(s.recs[2].octets, 2000);
        agg_get_stats(a, &st);
        assert_int_equal(st.evicted_early, 3);
        assert_int_equal(st.live_keys, 4);
        assert_int_equal(st.late, 0);

        /* key 3 comes back in window 0: a fresh entry (not late: no tick emitted it) */
        r = rec_v4(T0 + 1, 1, 3);
        agg_add(a, &r, T0);
        agg_get_stats(a, &st);
        assert_int_equal(st.evicted_early, 4);
        assert_int_equal(st.late, 0);
        assert_int_equal(s.recs[3].dst_port, 2);
        agg_free(a);
        sink_reset(&s);
}

static void test_wrap_split(void **state) {
        Sink s = { 0 };
        Aggregator *a = new_agg("{\"keys\": [\"dst_port\"]}", &s);
        FlowRecord r = rec_v4(T0, 1, 1);
        AggStats st;

        /* sums that would wrap leave as separate records instead */
        r.octets = UINT64_MAX / 2 + 1;
        agg_add(a, &r, T0);
        agg_add(a, &r, T0);
        assert_int_equal(s.n, 1);
        r.octets = 1;
        r.flows = UINT32_MAX;
        agg_add(a, &r, T0);
        assert_int_equal(s.n, 2);
        agg_flush(a);
        assert_int_equal(s.n, 3);
        assert_true(s.recs[0].octets == UINT64_MAX / 2 + 1);
        assert_true(s.recs[1].octets == UINT64_MAX / 2 + 1);
        assert_int_equal(s.recs[1].flows, 1);
        assert_true(s.recs[2].flows == UINT32_MAX);
        assert_int_equal(s.recs[2].octets, 1);
        agg_get_stats(a, &st);
        assert_int_equal(st.in, 3);
        assert_int_equal(st.out, 3);
        agg_free(a);
        sink_reset(&s);
}

static uint64_t rnd(uint64_t *x) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        return *x;
}

static void test_conservation(void **state) {
        Sink s = { 0 };
        /* 10 s windows, small max_keys: early eviction, ticks and late records all happen */
        Aggregator *a = new_agg("{\"keys\": [\"src_addr/24/48\", \"dst_port\", \"proto\"], "
                                "\"window_s\": 10, \"late_s\": 2, \"max_keys\": 64}", &s);
        uint64_t x = 0x9e3779b97f4a7c15ull, now = T0;
        uint64_t in_octets = 0, in_packets = 0, in_flows = 0;
        uint64_t out_octets = 0, out_packets = 0, out_flows = 0;
        AggStats st;

        for (unsigned i = 0; i < 100000; i++) {
                FlowRecord r;
                uint64_t v = rnd(&x);

                now += v % 7;                   /* about 3 ms per record: ~300 s in all */
                if (v % 5 == 0) {
                        r = rec_v6(0, (uint16_t) (v >> 8) % 4, (uint8_t) (v >> 16));
                } else {
                        r = rec_v4(0, (uint8_t) (v >> 16), 0);
                        r.src_addr[14] = (uint8_t) ((v >> 24) % 3);
                }
                r.dst_port = (uint16_t) ((v >> 32) % 12);
                r.proto = (v >> 40) % 3 ? 6 : 17;
                /* mostly current, some up to 30 s old (late), rarely far past or future */
                if ((v >> 44) % 100 == 0)
                        r.start_ms = (v >> 20) % 2 ? now - 3600000 : now + 600000;
                else
                        r.start_ms = now - (rnd(&x) % ((v >> 50) % 10 == 0 ? 30000 : 3000));
                r.end_ms = r.start_ms + rnd(&x) % 20000;
                r.octets = rnd(&x) % 1000000;
                r.packets = rnd(&x) % 1000;
                r.flows = (uint32_t) (rnd(&x) % 4);     /* 0 means 1 */
                r.tcp_flags = (uint16_t) (rnd(&x) & 0x3f);

                in_octets += r.octets;
                in_packets += r.packets;
                in_flows += r.flows ? r.flows : 1;
                agg_add(a, &r, now);
                if (i % 200 == 0)
                        agg_tick(a, now);
                if (i % 4096 == 0) {
                        agg_get_stats(a, &st);
                        assert_true(st.live_keys <= 64);
                }
        }
        agg_get_stats(a, &st);
        assert_true(st.evicted_early > 0);
        assert_true(st.late > 0);
        agg_flush(a);

        for (size_t i = 0; i < s.n; i++) {
                const FlowRecord *o = &s.recs[i];
                out_octets += o->octets;
                out_packets += o->packets;
                out_flows += o->flows;
                assert_true(o->flows >= 1);
                assert_true(o->end_ms >= o->start_ms);
                assert_true(o->family == 4 || o->family == 6);
                assert_int_equal(o->exporter_family, 4);
                if (o->family == 4)
                        assert_int_equal(o->src_addr[15], 0);
                else
                        for (unsigned b = 6; b < 16; b++)
                                assert_int_equal(o->src_addr[b], 0);
        }
        assert_true(in_octets == out_octets);
        assert_true(in_packets == out_packets);
        assert_true(in_flows == out_flows);
        agg_get_stats(a, &st);
        assert_int_equal(st.in, 100000);
        assert_int_equal(st.out, s.n);
        assert_int_equal(st.live_keys, 0);
        assert_true(s.n < 100000);              /* some aggregation did happen */
        agg_free(a);
        sink_reset(&s);
}

static void test_new_invalid(void **state) {
        Aggregator *a = (Aggregator *) 0x1;
        AggConfig cfg;

        agg_config_init(&cfg);
        assert_int_equal(agg_new(&a, &cfg, on_emit, NULL), -EINVAL);   /* no key field */
        assert_ptr_equal(a, (Aggregator *) 0x1);
        cfg.fields = AGG_FIELD_BIT(AGG_FIELD_PROTO);
        cfg.window_s = 0;
        assert_int_equal(agg_new(&a, &cfg, on_emit, NULL), -EINVAL);
        cfg.window_s = 60;
        cfg.max_keys = 0;
        assert_int_equal(agg_new(&a, &cfg, on_emit, NULL), -EINVAL);
        cfg.max_keys = 10;
        cfg.prefix4[AGG_FIELD_SRC_ADDR] = 33;
        assert_int_equal(agg_new(&a, &cfg, on_emit, NULL), -EINVAL);
        cfg.prefix4[AGG_FIELD_SRC_ADDR] = 32;
        cfg.fields |= AGG_FIELD_BIT(_AGG_FIELD_MAX);
        assert_int_equal(agg_new(&a, &cfg, on_emit, NULL), -EINVAL);
        cfg.fields = AGG_FIELD_BIT(AGG_FIELD_PROTO);
        assert_int_equal(agg_new(&a, &cfg, on_emit, NULL), 0);
        assert_null(agg_free(a));
        assert_null(agg_free(NULL));
}

static int parse(const char *json, AggConfig *cfg, char **err) {
        json_error_t jerr;
        json_t *o = json_loads(json, JSON_DECODE_ANY, &jerr);
        int r;

        if (!o)
                fail_msg("bad test JSON %s: %s", json, jerr.text);
        *err = NULL;
        r = agg_config_parse(o, cfg, err);
        json_decref(o);
        return r;
}

static void test_config_parse(void **state) {
        AggConfig c;
        char *err;

        assert_int_equal(parse("{\"keys\": [\"src_addr/24\", \"dst_addr\", \"proto\", "
                               "\"dst_port\"], \"window_s\": 300, \"max_keys\": 5000, "
                               "\"late_s\": 0}", &c, &err), 0);
        assert_null(err);
        assert_int_equal(c.fields, AGG_FIELD_BIT(AGG_FIELD_SRC_ADDR) |
                                   AGG_FIELD_BIT(AGG_FIELD_DST_ADDR) |
                                   AGG_FIELD_BIT(AGG_FIELD_PROTO) |
                                   AGG_FIELD_BIT(AGG_FIELD_DST_PORT));
        assert_int_equal(c.prefix4[AGG_FIELD_SRC_ADDR], 24);
        assert_int_equal(c.prefix6[AGG_FIELD_SRC_ADDR], 128);
        assert_int_equal(c.prefix4[AGG_FIELD_DST_ADDR], 32);
        assert_int_equal(c.prefix6[AGG_FIELD_DST_ADDR], 128);
        assert_int_equal(c.window_s, 300);
        assert_int_equal(c.late_s, 0);
        assert_int_equal(c.max_keys, 5000);

        /* defaults, v6 prefixes, every field name */
        assert_int_equal(parse("{\"keys\": [\"src_addr/16/48\", \"dst_addr/0/0\", "
                               "\"exporter/32/128\", \"src_port\", \"dst_port\", \"proto\", "
                               "\"tos\", \"ingress_if\", \"egress_if\", \"src_as\", \"dst_as\", "
                               "\"vlan\", \"odid\", \"direction\"]}", &c, &err), 0);
        assert_int_equal(c.fields, AGG_FIELD_BIT(_AGG_FIELD_MAX) - 1);
        assert_int_equal(c.prefix4[AGG_FIELD_SRC_ADDR], 16);
        assert_int_equal(c.prefix6[AGG_FIELD_SRC_ADDR], 48);
        assert_int_equal(c.prefix4[AGG_FIELD_DST_ADDR], 0);
        assert_int_equal(c.prefix6[AGG_FIELD_DST_ADDR], 0);
        assert_int_equal(c.prefix4[AGG_FIELD_EXPORTER], 32);
        assert_int_equal(c.prefix6[AGG_FIELD_EXPORTER], 128);
        assert_int_equal(c.window_s, AGG_DEFAULT_WINDOW_S);
        assert_int_equal(c.late_s, AGG_DEFAULT_LATE_S);
        assert_int_equal(c.max_keys, AGG_DEFAULT_MAX_KEYS);

        assert_int_equal(parse("{\"keys\": [\"proto\"], \"window_s\": 86400, \"late_s\": 3600, "
                               "\"max_keys\": 10000000}", &c, &err), 0);
        assert_int_equal(parse("{\"keys\": [\"proto\"], \"window_s\": 1, \"max_keys\": 1}", &c,
                               &err), 0);
}

static void test_config_errors(void **state) {
        static const struct {
                const char *json;
                const char *msg;
        } cases[] = {
                { "[1]", "must be a JSON object" },
                { "{}", "keys: missing (at least one key field is required)" },
                { "{\"keys\": []}", "keys: must be a non-empty array of field names" },
                { "{\"keys\": \"proto\"}", "keys: must be a non-empty array of field names" },
                { "{\"keys\": [\"src_addr\", \"dst_addr\", \"foo\"]}",
                  "keys[2]: unknown field 'foo'" },
                { "{\"keys\": [\"foo/24\"]}", "keys[0]: unknown field 'foo'" },
                { "{\"keys\": [\"\"]}", "keys[0]: unknown field ''" },
                { "{\"keys\": [\"proto\", 5]}", "keys[1]: must be a string" },
                { "{\"keys\": [\"dst_port\", \"dst_port\"]}",
                  "keys[1]: duplicate field 'dst_port'" },
                { "{\"keys\": [\"src_addr/24\", \"src_addr/16\"]}",
                  "keys[1]: duplicate field 'src_addr'" },
                { "{\"keys\": [\"proto/8\"]}", "keys[0]: 'proto' takes no prefix length" },
                { "{\"keys\": [\"src_addr/33\"]}", "keys[0]: IPv4 prefix length must be 0..32" },
                { "{\"keys\": [\"src_addr/\"]}", "keys[0]: IPv4 prefix length must be 0..32" },
                { "{\"keys\": [\"src_addr/-1\"]}", "keys[0]: IPv4 prefix length must be 0..32" },
                { "{\"keys\": [\"src_addr/99999999999999999999\"]}",
                  "keys[0]: IPv4 prefix length must be 0..32" },
                { "{\"keys\": [\"dst_addr/24/129\"]}",
                  "keys[0]: IPv6 prefix length must be 0..128" },
                { "{\"keys\": [\"dst_addr/24/\"]}", "keys[0]: IPv6 prefix length must be 0..128" },
                { "{\"keys\": [\"exporter/24x\"]}",
                  "keys[0]: expected 'exporter', 'exporter/v4len' or 'exporter/v4len/v6len'" },
                { "{\"keys\": [\"exporter/24/64/3\"]}",
                  "keys[0]: expected 'exporter', 'exporter/v4len' or 'exporter/v4len/v6len'" },
                { "{\"keys\": [\"proto\"], \"window_s\": 0}", "window_s: must be 1..86400, got 0" },
                { "{\"keys\": [\"proto\"], \"window_s\": 86401}",
                  "window_s: must be 1..86400, got 86401" },
                { "{\"keys\": [\"proto\"], \"window_s\": \"60\"}", "window_s: must be an integer" },
                { "{\"keys\": [\"proto\"], \"late_s\": -1}", "late_s: must be 0..3600, got -1" },
                { "{\"keys\": [\"proto\"], \"late_s\": 3601}",
                  "late_s: must be 0..3600, got 3601" },
                { "{\"keys\": [\"proto\"], \"max_keys\": 0}",
                  "max_keys: must be 1..10000000, got 0" },
                { "{\"keys\": [\"proto\"], \"max_keys\": 10000001}",
                  "max_keys: must be 1..10000000, got 10000001" },
                { "{\"keys\": [\"proto\"], \"window\": 60}", "window: unknown key" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AggConfig c, orig;
                char *err = NULL;

                memset(&c, 0x5a, sizeof(c));
                orig = c;
                if (parse(cases[i].json, &c, &err) != -EINVAL)
                        fail_msg("accepted: %s", cases[i].json);
                if (!err || strcmp(err, cases[i].msg) != 0)
                        fail_msg("%s: got '%s', want '%s'", cases[i].json, err ? err : "(null)",
                                 cases[i].msg);
                assert_memory_equal(&c, &orig, sizeof(c));     /* ret untouched */
                free(err);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_windows),
                cmocka_unit_test(test_output_fields),
                cmocka_unit_test(test_mask_v4),
                cmocka_unit_test(test_mask_v6),
                cmocka_unit_test(test_tick_timing),
                cmocka_unit_test(test_late_zero),
                cmocka_unit_test(test_flush_batches),
                cmocka_unit_test(test_early_eviction),
                cmocka_unit_test(test_wrap_split),
                cmocka_unit_test(test_conservation),
                cmocka_unit_test(test_new_invalid),
                cmocka_unit_test(test_config_parse),
                cmocka_unit_test(test_config_errors),
        };
        return cmocka_run_group_tests_name("aggregate", tests, NULL, NULL);
}
