/* SPDX-License-Identifier: MIT */
/*
 * test-rollup.c - the per-minute rollups: top-N equals a brute-force computation on random
 * records while nothing overflows (open, sealed and late-updated minutes alike); sealing
 * keeps exactly the union of the three top_k lists; entries + other == totals everywhere;
 * overflow and eviction flag results inexact per dimension; ties order by key; windows
 * select minutes by overlap; the horizon expires minutes, stale and future records are
 * counted; totals series with steps of 60 and 300 s; the exporter list, its cap and expiry;
 * an ingest thread against a query thread; and a printed timing of a top-10 over 60 sealed
 * minutes with top_k=500.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "flow.h"
#include "rollup.h"

/* an hour edge, so 5-minute steps start at minute 0 */
#define T0 (472222ull * 3600000ull)
#define MIN_MS 60000ull

static uint64_t at(uint64_t minute, uint64_t ms) {
        return T0 + minute * MIN_MS + ms;
}

static uint64_t rnd_state;

static uint64_t rnd(void) {
        rnd_state ^= rnd_state >> 12;
        rnd_state ^= rnd_state << 25;
        rnd_state ^= rnd_state >> 27;
        return rnd_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n) {
        return rnd() % n;
}

static void set_addr(uint8_t a[16], uint32_t v, bool v6) {
        memset(a, 0, 16);
        if (v6) {
                a[0] = 0x20;
                a[1] = 0x01;
                a[2] = 0x0d;
                a[3] = 0xb8;
        } else {
                a[10] = 0xff;
                a[11] = 0xff;
        }
        a[12] = (uint8_t) (v >> 24);
        a[13] = (uint8_t) (v >> 16);
        a[14] = (uint8_t) (v >> 8);
        a[15] = (uint8_t) v;
}

static FlowRecord rec_make(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                           uint8_t proto, uint32_t exporter, uint32_t odid, uint64_t end_ms,
                           uint64_t octets, uint64_t packets, uint32_t flows) {
        FlowRecord r = {
                .start_ms = end_ms > 1000 ? end_ms - 1000 : 0,
                .end_ms = end_ms,
                .octets = octets,
                .packets = packets,
                .src_port = sport,
                .dst_port = dport,
                .proto = proto,
                .odid = odid,
                .flows = flows,
                .family = 4,
                .exporter_family = 4,
                .direction = FLOW_DIRECTION_UNKNOWN,
        };
        set_addr(r.src_addr, 0x0a000000u | src, false);
        set_addr(r.dst_addr, 0xc6336400u | dst, false);
        set_addr(r.exporter_addr, 0x0a630000u | exporter, false);
        return r;
}

/* A record with keys from small spaces (v4 and v6 mixed) so nothing overflows. */
static FlowRecord rec_random(uint64_t end_ms) {
        bool v6 = rnd_below(4) == 0;
        FlowRecord r = rec_make((uint32_t) rnd_below(30), (uint32_t) rnd_below(30),
                                (uint16_t) (1024 + rnd_below(40)), (uint16_t) (rnd_below(10) * 100),
                                (uint8_t) (uint8_t[]) { 6, 17, 1, 47 }[rnd_below(4)],
                                (uint32_t) rnd_below(3), (uint32_t) rnd_below(2), end_ms,
                                1 + rnd_below(1000000), 1 + rnd_below(1000),
                                (uint32_t) rnd_below(4));
        if (v6) {
                set_addr(r.src_addr, (uint32_t) rnd_below(30), true);
                set_addr(r.dst_addr, (uint32_t) rnd_below(30), true);
                r.family = 6;
        }
        if (rnd_below(5) == 0) {
                set_addr(r.exporter_addr, 1, true);
                r.exporter_family = 6;
        }
        return r;
}

static uint64_t rec_flows(const FlowRecord *r) {
        return r->flows ? r->flows : 1;
}

/* The test's own key extraction, independent of rollup.c's encoding. */
static RollupKey key_of(RollupDim d, const FlowRecord *r) {
        RollupKey k = {};

        switch (d) {
        case ROLLUP_DIM_SRC_ADDR:
                memcpy(k.addr, r->src_addr, 16);
                k.family = r->family;
                break;
        case ROLLUP_DIM_DST_ADDR:
                memcpy(k.addr, r->dst_addr, 16);
                k.family = r->family;
                break;
        case ROLLUP_DIM_SRC_PORT:
                k.port = r->src_port;
                break;
        case ROLLUP_DIM_DST_PORT:
                k.port = r->dst_port;
                break;
        case ROLLUP_DIM_PROTO:
                k.proto = r->proto;
                break;
        case ROLLUP_DIM_EXPORTER:
                memcpy(k.addr, r->exporter_addr, 16);
                k.family = r->exporter_family;
                k.odid = r->odid;
                break;
        case ROLLUP_DIM_PAIR:
                memcpy(k.addr, r->src_addr, 16);
                memcpy(k.addr2, r->dst_addr, 16);
                k.family = r->family;
                break;
        default:
                fail();
        }
        return k;
}

static uint64_t sums_get(const RollupSums *s, RollupMetric m) {
        return m == ROLLUP_METRIC_OCTETS ? s->octets : m == ROLLUP_METRIC_PACKETS ? s->packets
                                                                                  : s->flows;
}

static bool sums_eq(const RollupSums *a, const RollupSums *b) {
        return a->octets == b->octets && a->packets == b->packets && a->flows == b->flows;
}

static void check_conservation(const RollupTopResult *res) {
        RollupSums s = res->other;

        for (size_t i = 0; i < res->n_entries; i++) {
                s.octets += res->entries[i].sums.octets;
                s.packets += res->entries[i].sums.packets;
                s.flows += res->entries[i].sums.flows;
        }
        assert_true(sums_eq(&s, &res->totals));
}

/* ---- brute force ---- */

typedef struct Brute {
        RollupKey key;
        RollupSums sums;
} Brute;

static RollupDim sort_dim;
static RollupMetric sort_metric;

static int brute_key_cmp(const void *a, const void *b) {
        return rollup_key_compare(sort_dim, &((const Brute *) a)->key, &((const Brute *) b)->key);
}

static int brute_rank_cmp(const void *a, const void *b) {
        const Brute *x = a, *y = b;
        uint64_t vx = sums_get(&x->sums, sort_metric), vy = sums_get(&y->sums, sort_metric);

        if (vx != vy)
                return vx > vy ? -1 : 1;
        return rollup_key_compare(sort_dim, &x->key, &y->key);
}

/* Per-key sums over the records whose minute overlaps [from, to), ranked. */
static size_t brute_top(const FlowRecord *recs, size_t n, RollupDim d, RollupMetric m,
                        uint64_t from, uint64_t to, Brute *out, RollupSums *ret_totals) {
        size_t k = 0, w = 0;

        *ret_totals = (RollupSums) {};
        for (size_t i = 0; i < n; i++) {
                uint64_t mstart = recs[i].end_ms / MIN_MS * MIN_MS;

                if (!(mstart < to && mstart + MIN_MS > from))
                        continue;
                out[k].key = key_of(d, &recs[i]);
                out[k].sums = (RollupSums) { recs[i].octets, recs[i].packets,
                                             rec_flows(&recs[i]) };
                ret_totals->octets += recs[i].octets;
                ret_totals->packets += recs[i].packets;
                ret_totals->flows += rec_flows(&recs[i]);
                k++;
        }
        sort_dim = d;
        sort_metric = m;
        qsort(out, k, sizeof(*out), brute_key_cmp);
        for (size_t i = 0; i < k; i++) {
                if (w > 0 && rollup_key_compare(d, &out[w - 1].key, &out[i].key) == 0) {
                        out[w - 1].sums.octets += out[i].sums.octets;
                        out[w - 1].sums.packets += out[i].sums.packets;
                        out[w - 1].sums.flows += out[i].sums.flows;
                } else
                        out[w++] = out[i];
        }
        qsort(out, w, sizeof(*out), brute_rank_cmp);
        return w;
}

static void compare_with_brute(Rollup *r, const FlowRecord *recs, size_t n, uint64_t from,
                               uint64_t to, size_t limit, Brute *scratch) {
        for (int d = 0; d < _ROLLUP_DIM_MAX; d++)
                for (int m = 0; m < _ROLLUP_METRIC_MAX; m++) {
                        RollupTopResult res = {};
                        RollupSums totals;
                        size_t want = brute_top(recs, n, (RollupDim) d, (RollupMetric) m, from,
                                                to, scratch, &totals);

                        assert_int_equal(rollup_top(r, (RollupDim) d, (RollupMetric) m, from,
                                                    to, limit, &res), 0);
                        assert_true(res.exact);
                        assert_true(sums_eq(&res.totals, &totals));
                        assert_int_equal(res.n_entries, want < limit ? want : limit);
                        for (size_t i = 0; i < res.n_entries; i++) {
                                assert_int_equal(rollup_key_compare((RollupDim) d,
                                                                    &res.entries[i].key,
                                                                    &scratch[i].key), 0);
                                assert_memory_equal(&res.entries[i].key, &scratch[i].key,
                                                    sizeof(RollupKey));
                                assert_true(sums_eq(&res.entries[i].sums, &scratch[i].sums));
                        }
                        check_conservation(&res);
                        rollup_top_result_clear(&res);
                }
}

static Rollup *new_rollup(uint32_t horizon, uint32_t top_k, uint32_t live_max, uint32_t seal_s,
                          uint32_t max_exporters) {
        RollupConfig c = {
                .horizon_min = horizon,
                .top_k = top_k,
                .live_max_keys = live_max,
                .seal_after_s = seal_s,
                .max_exporters = max_exporters,
        };
        Rollup *r = NULL;

        assert_int_equal(rollup_new(&r, &c), 0);
        return r;
}

static void test_config(void **state) {
        RollupConfig c;
        Rollup *r = NULL;

        rollup_config_default(&c);
        assert_int_equal(c.horizon_min, 1440);
        assert_int_equal(c.top_k, 500);
        assert_int_equal(c.live_max_keys, 65536);
        assert_int_equal(c.seal_after_s, 120);
        assert_int_equal(c.max_exporters, 10000);
        /* the documented figures: ~0.6 GB sealed + 8 open minutes of ~37 MB */
        assert_true(rollup_memory_bound(&c) > 550ull << 20);
        assert_true(rollup_memory_bound(&c) < 1000ull << 20);

        assert_int_equal(rollup_new(&r, NULL), 0);
        r = rollup_free(r);
        assert_null(r);

        c.horizon_min = 0;
        assert_int_equal(rollup_new(&r, &c), -EINVAL);
        c.horizon_min = 10081;
        assert_int_equal(rollup_new(&r, &c), -EINVAL);
        rollup_config_default(&c);
        c.top_k = 9;
        assert_int_equal(rollup_new(&r, &c), -EINVAL);
        c.top_k = 100001;
        assert_int_equal(rollup_new(&r, &c), -EINVAL);
        rollup_config_default(&c);
        c.live_max_keys = 0;
        assert_int_equal(rollup_new(&r, &c), -EINVAL);
        rollup_config_default(&c);
        c.seal_after_s = 3601;
        assert_int_equal(rollup_new(&r, &c), -EINVAL);
        rollup_config_default(&c);
        c.max_exporters = 0;
        assert_int_equal(rollup_new(&r, &c), -EINVAL);
        assert_null(r);
}

static void test_names(void **state) {
        static const char *const dims[] = { "src_addr", "dst_addr", "src_port", "dst_port",
                                            "proto", "exporter", "pair" };
        static const char *const metrics[] = { "octets", "packets", "flows" };

        for (int d = 0; d < _ROLLUP_DIM_MAX; d++) {
                assert_int_equal(rollup_dim_from_string(dims[d]), d);
                assert_string_equal(rollup_dim_to_string((RollupDim) d), dims[d]);
        }
        for (int m = 0; m < _ROLLUP_METRIC_MAX; m++) {
                assert_int_equal(rollup_metric_from_string(metrics[m]), m);
                assert_string_equal(rollup_metric_to_string((RollupMetric) m), metrics[m]);
        }
        assert_int_equal(rollup_dim_from_string("SRC_ADDR"), -EINVAL);
        assert_int_equal(rollup_dim_from_string(""), -EINVAL);
        assert_int_equal(rollup_dim_from_string(NULL), -EINVAL);
        assert_int_equal(rollup_metric_from_string("bytes"), -EINVAL);
        assert_null(rollup_dim_to_string(_ROLLUP_DIM_MAX));
        assert_null(rollup_metric_to_string(_ROLLUP_METRIC_INVALID));
}

#define BF_MINUTES 10
#define BF_PER_MINUTE 300
#define BF_LATE 40

static void test_brute_force(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(60, 1000, 65536, 120, 100);
        size_t n = 0, total = BF_MINUTES * BF_PER_MINUTE + BF_LATE;
        _cleanup_free_ FlowRecord *recs = calloc(total, sizeof(*recs));
        _cleanup_free_ Brute *scratch = calloc(total, sizeof(*scratch));
        RollupStats st;
        struct {
                uint64_t from, to;
        } windows[] = {
                { at(0, 0), at(BF_MINUTES, 0) },        /* everything */
                { at(2, 0), at(5, 0) },                 /* sealed minutes on edges */
                { at(3, 17000), at(7, 1) },             /* ragged edges: minutes 3..7 */
                { at(7, 0), at(10, 0) },                /* sealed and open */
                { at(9, 59999), at(9, 60000) },         /* one ms: the open minute 9 */
                { 0, UINT64_MAX },
        };

        assert_non_null(recs);
        assert_non_null(scratch);
        rnd_state = 0x1234567887654321ull;
        for (uint64_t m = 0; m < BF_MINUTES; m++) {
                size_t first = n;

                for (size_t i = 0; i < BF_PER_MINUTE; i++)
                        recs[n++] = rec_random(at(m, rnd_below(MIN_MS)));
                /* arrives a second after the minute; seals 2 minutes later */
                rollup_add(r, recs + first, n - first, at(m + 1, 1000));
        }
        rollup_get_stats(r, &st);
        assert_int_equal(st.minutes_sealed, BF_MINUTES - 2);
        assert_int_equal(st.minutes_open, 2);
        assert_int_equal(st.records, BF_MINUTES * BF_PER_MINUTE);

        for (size_t w = 0; w < ELEMENTSOF(windows); w++)
                for (size_t l = 0; l < 3; l++)
                        compare_with_brute(r, recs, n, windows[w].from, windows[w].to,
                                           (size_t[]) { 1, 7, 100000 }[l], scratch);

        /* late records for sealed minutes: known keys and new ones (which an exact minute with
         * fewer than top_k keys still takes exactly) */
        for (size_t i = 0; i < BF_LATE; i++) {
                recs[n] = rec_random(at(1 + rnd_below(5), rnd_below(MIN_MS)));
                if (i % 2)
                        recs[n].src_port = (uint16_t) (30000 + i);
                rollup_add(r, &recs[n++], 1, at(BF_MINUTES, 5000));
        }
        for (size_t w = 0; w < ELEMENTSOF(windows); w++)
                compare_with_brute(r, recs, n, windows[w].from, windows[w].to, 100000, scratch);
        rollup_get_stats(r, &st);
        assert_int_equal(st.late_other, 0);
        assert_int_equal(st.evicted, 0);
        assert_int_equal(st.overflow, 0);
        assert_int_equal(st.stale + st.future, 0);
        assert_true(st.memory_bytes <= st.memory_bound);
}

/* 40 src ports in one minute, top_k 10: key i has octets descending in i, packets ascending
 * in i and flows peaking at i = 20. */
static void fill_seal_minute(FlowRecord *recs) {
        for (int i = 0; i < 40; i++)
                recs[i] = rec_make(1, 2, (uint16_t) (1000 + i), 80, 6, 1, 0, at(0, 1000 + i),
                                   (uint64_t) (40 - i) * 1000, (uint64_t) i + 1,
                                   (uint32_t) (21 - abs(i - 20)));
}

static void test_seal(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(60, 10, 65536, 120, 100);
        FlowRecord recs[40], late;
        RollupTopResult res = {};
        bool want[40] = {};
        RollupSums evicted = {};
        RollupStats st;

        fill_seal_minute(recs);
        rollup_add(r, recs, 40, at(0, 59000));

        /* open: exact, all 40 */
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_PORT, ROLLUP_METRIC_OCTETS, at(0, 0),
                                    at(1, 0), 100, &res), 0);
        assert_true(res.exact);
        assert_int_equal(res.n_entries, 40);
        assert_int_equal(res.entries[0].key.port, 1000);
        check_conservation(&res);
        rollup_top_result_clear(&res);

        /* not sealed one ms early, sealed at minute end + 120 s */
        rollup_tick(r, at(3, 0) - 1);
        rollup_get_stats(r, &st);
        assert_int_equal(st.minutes_open, 1);
        rollup_tick(r, at(3, 0));
        rollup_get_stats(r, &st);
        assert_int_equal(st.minutes_open, 0);
        assert_int_equal(st.minutes_sealed, 1);

        /* top 10 by octets: 0..9; by packets: 30..39; by flows: 16..24 and then 15 (tied with
         * 25 at 16 flows, lower key wins) */
        for (int i = 0; i < 10; i++)
                want[i] = want[30 + i] = true;
        for (int i = 15; i <= 24; i++)
                want[i] = true;
        for (int i = 0; i < 40; i++)
                if (!want[i]) {
                        evicted.octets += recs[i].octets;
                        evicted.packets += recs[i].packets;
                        evicted.flows += rec_flows(&recs[i]);
                }
        assert_int_equal(st.evicted, 10);
        assert_int_equal(st.keys, 30 + 6);      /* + one key in each other dimension */

        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_PORT, ROLLUP_METRIC_FLOWS, at(0, 0),
                                    at(1, 0), 100, &res), 0);
        assert_false(res.exact);
        assert_int_equal(res.n_entries, 30);
        for (size_t i = 0; i < res.n_entries; i++) {
                int k = res.entries[i].key.port - 1000;

                assert_true(k >= 0 && k < 40 && want[k]);
                assert_int_equal(res.entries[i].sums.octets, recs[k].octets);
                assert_int_equal(res.entries[i].sums.packets, recs[k].packets);
                assert_int_equal(res.entries[i].sums.flows, rec_flows(&recs[k]));
        }
        assert_int_equal(res.entries[0].key.port, 1020);
        assert_true(sums_eq(&res.other, &evicted));
        check_conservation(&res);
        rollup_top_result_clear(&res);

        /* the other dimensions lost nothing */
        assert_int_equal(rollup_top(r, ROLLUP_DIM_DST_PORT, ROLLUP_METRIC_FLOWS, at(0, 0),
                                    at(1, 0), 100, &res), 0);
        assert_true(res.exact);
        assert_int_equal(res.n_entries, 1);
        assert_true(sums_eq(&res.entries[0].sums, &res.totals));
        rollup_top_result_clear(&res);

        /* late: a kept key is updated, an evicted key and a new key go to other */
        late = rec_make(1, 2, 1000, 80, 6, 1, 0, at(0, 30000), 5, 1, 1);
        rollup_add(r, &late, 1, at(4, 0));
        late.src_port = 1012;
        rollup_add(r, &late, 1, at(4, 0));
        late.src_port = 2000;
        rollup_add(r, &late, 1, at(4, 0));
        rollup_get_stats(r, &st);
        assert_int_equal(st.late_other, 2);
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_PORT, ROLLUP_METRIC_OCTETS, at(0, 0),
                                    at(1, 0), 1, &res), 0);
        assert_int_equal(res.n_entries, 1);
        assert_int_equal(res.entries[0].key.port, 1000);
        assert_int_equal(res.entries[0].sums.octets, 40005);
        assert_int_equal(res.entries[0].sums.flows, 2);
        assert_int_equal(res.totals.flows, 231 + 209 + 3);   /* sum of 21 - |i - 20|, + late */
        check_conservation(&res);
        rollup_top_result_clear(&res);

        /* limit 0: only totals and other */
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_PORT, ROLLUP_METRIC_OCTETS, at(0, 0),
                                    at(1, 0), 0, &res), 0);
        assert_int_equal(res.n_entries, 0);
        assert_null(res.entries);
        assert_true(sums_eq(&res.other, &res.totals));
        rollup_top_result_clear(&res);
}

static void test_overflow(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(60, 10, 16, 120, 100);
        RollupTopResult res = {};
        FlowRecord recs[20];
        RollupStats st;

        for (int i = 0; i < 20; i++)
                recs[i] = rec_make(1, 2, (uint16_t) (1000 + i), 80, 6, 1, 0, at(0, 0), 100, 1, 0);
        rollup_add(r, recs, 20, at(0, 30000));
        /* the first 16 keys keep counting, the 4 others stay in other */
        rollup_add(r, recs, 20, at(0, 31000));
        rollup_get_stats(r, &st);
        assert_int_equal(st.overflow, 8);

        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_PORT, ROLLUP_METRIC_OCTETS, at(0, 0),
                                    at(1, 0), 100, &res), 0);
        assert_false(res.exact);
        assert_int_equal(res.n_entries, 16);
        for (size_t i = 0; i < 16; i++) {
                assert_int_equal(res.entries[i].key.port, 1000 + i);
                assert_int_equal(res.entries[i].sums.octets, 200);
                assert_int_equal(res.entries[i].sums.flows, 2);
        }
        assert_int_equal(res.other.octets, 800);
        assert_int_equal(res.totals.octets, 4000);
        assert_int_equal(res.totals.flows, 40);
        check_conservation(&res);
        rollup_top_result_clear(&res);

        /* other dimensions of the same minute are still exact */
        assert_int_equal(rollup_top(r, ROLLUP_DIM_PAIR, ROLLUP_METRIC_OCTETS, at(0, 0),
                                    at(1, 0), 100, &res), 0);
        assert_true(res.exact);
        assert_int_equal(res.n_entries, 1);
        assert_int_equal(res.entries[0].key.family, 4);
        assert_memory_equal(res.entries[0].key.addr, recs[0].src_addr, 16);
        assert_memory_equal(res.entries[0].key.addr2, recs[0].dst_addr, 16);
        assert_int_equal(res.other.octets, 0);
        rollup_top_result_clear(&res);

        /* the inexact flag survives sealing */
        rollup_tick(r, at(10, 0));
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_PORT, ROLLUP_METRIC_PACKETS, at(0, 0),
                                    at(1, 0), 100, &res), 0);
        assert_false(res.exact);
        assert_int_equal(res.n_entries, 10);      /* all tie: the 10 lowest ports stay */
        assert_int_equal(res.entries[9].key.port, 1009);
        check_conservation(&res);
        rollup_top_result_clear(&res);
}

static void test_ties(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(60, 10, 65536, 0, 100);
        static const uint16_t ports[] = { 443, 22, 8080, 53, 80, 1 };
        static const uint32_t srcs[] = { 9, 3, 0x00ff00, 7, 0x010000 };
        RollupTopResult res = {};
        FlowRecord rec;

        /* equal octets and packets for every key, inserted in scrambled order */
        for (size_t i = 0; i < ELEMENTSOF(ports); i++) {
                rec = rec_make(srcs[i % ELEMENTSOF(srcs)], 1, ports[i], 80, 6, 1, 0, at(0, 0),
                               100, 10, 0);
                rollup_add(r, &rec, 1, at(0, 1000));
        }
        rec = rec_make(3, 1, 7, 80, 6, 1, 0, at(0, 0), 100, 11, 0);    /* more packets */
        rollup_add(r, &rec, 1, at(0, 1000));

        for (int sealed = 0; sealed < 2; sealed++) {
                static const uint16_t want_o[] = { 1, 7, 22, 53, 80, 443, 8080 };
                static const uint32_t want_src[] = { 3, 9, 7, 0x00ff00, 0x010000 };

                assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_PORT, ROLLUP_METRIC_OCTETS,
                                            at(0, 0), at(1, 0), 10, &res), 0);
                assert_int_equal(res.n_entries, ELEMENTSOF(want_o));
                for (size_t i = 0; i < res.n_entries; i++)
                        assert_int_equal(res.entries[i].key.port, want_o[i]);
                rollup_top_result_clear(&res);

                assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_PORT, ROLLUP_METRIC_PACKETS,
                                            at(0, 0), at(1, 0), 3, &res), 0);
                assert_int_equal(res.n_entries, 3);
                assert_int_equal(res.entries[0].key.port, 7);
                assert_int_equal(res.entries[1].key.port, 1);
                assert_int_equal(res.entries[2].key.port, 22);
                check_conservation(&res);
                rollup_top_result_clear(&res);

                /* addresses: 10.0.0.3 and 10.0.0.9 have 2 flows, the rest 1; ties by bytes */
                assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_ADDR, ROLLUP_METRIC_FLOWS,
                                            at(0, 0), at(1, 0), 10, &res), 0);
                assert_int_equal(res.n_entries, ELEMENTSOF(want_src));
                for (size_t i = 0; i < res.n_entries; i++) {
                        uint8_t a[16];

                        set_addr(a, 0x0a000000u | want_src[i], false);
                        assert_memory_equal(res.entries[i].key.addr, a, 16);
                        assert_int_equal(res.entries[i].key.family, 4);
                }
                rollup_top_result_clear(&res);

                rollup_tick(r, at(5, 0));
        }
}

static void test_windows(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(60, 10, 65536, 120, 100);
        RollupTopResult res = {};
        FlowRecord recs[3];
        struct {
                uint64_t from, to;
                uint32_t covered;
                uint64_t flows;
                uint64_t start, end;
        } cases[] = {
                { at(10, 0), at(11, 0), 1, 1, at(10, 0), at(11, 0) },
                { at(10, 1), at(11, 1), 2, 3, at(10, 0), at(12, 0) },
                { at(11, 0) - 1, at(11, 0), 1, 1, at(10, 0), at(11, 0) },
                { at(11, 0), at(12, 0), 1, 2, at(11, 0), at(12, 0) },
                { at(12, 0), at(12, 1), 1, 4, at(12, 0), at(13, 0) },
                { at(9, 0), at(13, 0), 3, 7, at(9, 0), at(13, 0) },
                { at(13, 0), at(14, 0), 0, 0, at(13, 0), at(14, 0) },
                { at(0, 0), at(10, 0), 0, 0, at(0, 0), at(10, 0) },
        };

        for (int i = 0; i < 3; i++)
                recs[i] = rec_make(1, 2, 3, 4, 6, 1, 0, at(10 + i, i == 1 ? 59999 : 0), 10, 1,
                                   1u << i);
        rollup_add(r, recs, 3, at(13, 0));      /* minute 10 sealed, 11 and 12 open */

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(rollup_top(r, ROLLUP_DIM_PROTO, ROLLUP_METRIC_FLOWS,
                                            cases[i].from, cases[i].to, 10, &res), 0);
                assert_int_equal(res.minutes_covered, cases[i].covered);
                assert_int_equal(res.totals.flows, cases[i].flows);
                assert_int_equal(res.n_entries, cases[i].flows ? 1 : 0);
                assert_int_equal(res.start_ms, cases[i].start);
                assert_int_equal(res.end_ms, cases[i].end);
                assert_true(res.exact);
                check_conservation(&res);
                rollup_top_result_clear(&res);
        }

        assert_int_equal(rollup_top(r, ROLLUP_DIM_PROTO, ROLLUP_METRIC_FLOWS, at(11, 0),
                                    at(11, 0), 10, &res), -EINVAL);
        assert_int_equal(rollup_top(r, _ROLLUP_DIM_MAX, ROLLUP_METRIC_FLOWS, at(10, 0),
                                    at(11, 0), 10, &res), -EINVAL);
        assert_int_equal(rollup_top(r, ROLLUP_DIM_PROTO, _ROLLUP_METRIC_INVALID, at(10, 0),
                                    at(11, 0), 10, &res), -EINVAL);
        assert_null(res.entries);
}

static void test_horizon(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(5, 10, 65536, 0, 100);
        RollupExporter *ex = NULL;
        RollupTopResult res = {};
        FlowRecord rec;
        RollupStats st;
        size_t n;

        for (uint64_t m = 0; m < 10; m++) {
                rec = rec_make(1, 2, 3, 4, 6, 1, 0, at(m, 500), 10, 1, 0);
                rollup_add(r, &rec, 1, at(m, 1000));
        }
        /* now in minute 9: minutes 5..9 remain */
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_ADDR, ROLLUP_METRIC_OCTETS, at(0, 0),
                                    at(10, 0), 10, &res), 0);
        assert_int_equal(res.minutes_covered, 5);
        assert_int_equal(res.totals.flows, 5);
        rollup_top_result_clear(&res);
        rollup_get_stats(r, &st);
        assert_int_equal(st.minutes_sealed + st.minutes_open, 5);

        /* stale: minute 4; future: more than 5 minutes ahead goes to now's minute; up to 5
         * minutes ahead goes to its own minute */
        rec.end_ms = at(4, 59999);
        rollup_add(r, &rec, 1, at(9, 1000));
        rec.end_ms = at(9, 1000) + ROLLUP_FUTURE_MAX_MS + 1;
        rollup_add(r, &rec, 1, at(9, 1000));
        rec.end_ms = at(9, 1000) + ROLLUP_FUTURE_MAX_MS;
        rollup_add(r, &rec, 1, at(9, 1000));
        rollup_get_stats(r, &st);
        assert_int_equal(st.stale, 1);
        assert_int_equal(st.future, 1);
        assert_int_equal(st.records, 13);
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_ADDR, ROLLUP_METRIC_OCTETS, at(9, 0),
                                    at(10, 0), 10, &res), 0);
        assert_int_equal(res.totals.flows, 2);
        rollup_top_result_clear(&res);
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_ADDR, ROLLUP_METRIC_OCTETS, at(14, 0),
                                    at(15, 0), 10, &res), 0);
        assert_int_equal(res.minutes_covered, 1);
        assert_int_equal(res.totals.flows, 1);
        rollup_top_result_clear(&res);

        /* a step back of the clock changes nothing; one minute on, minute 5 expires */
        rollup_tick(r, at(2, 0));
        rollup_tick(r, at(10, 0));
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_ADDR, ROLLUP_METRIC_OCTETS, at(0, 0),
                                    at(20, 0), 10, &res), 0);
        assert_int_equal(res.minutes_covered, 5);       /* 6..9 and 14 */
        assert_int_equal(res.totals.flows, 6);
        rollup_top_result_clear(&res);

        /* far ahead: everything expires, exporters too */
        assert_int_equal(rollup_exporters(r, &ex, &n), 0);
        assert_int_equal(n, 1);
        free(ex);
        rollup_tick(r, at(100, 0));
        rollup_get_stats(r, &st);
        assert_int_equal(st.minutes_sealed + st.minutes_open, 0);
        assert_int_equal(st.keys, 0);
        assert_int_equal(st.exporters, 0);
        assert_int_equal(rollup_top(r, ROLLUP_DIM_SRC_ADDR, ROLLUP_METRIC_OCTETS, at(0, 0),
                                    at(200, 0), 10, &res), 0);
        assert_int_equal(res.minutes_covered, 0);
        assert_int_equal(res.n_entries, 0);
        rollup_top_result_clear(&res);
        assert_int_equal(rollup_exporters(r, &ex, &n), 0);
        assert_int_equal(n, 0);
        assert_null(ex);
}

static void test_series(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(60, 10, 65536, 120, 100);
        RollupSeries s = {};
        FlowRecord rec;

        /* minute m: m + 1 flows, 100 * (m + 1) octets, 2 packets; minute 4 has nothing */
        for (uint64_t m = 0; m < 10; m++) {
                if (m == 4)
                        continue;
                rec = rec_make(1, 2, 3, 4, 6, 1, 0, at(m, 100), 100 * (m + 1), 2,
                               (uint32_t) (m + 1));
                rollup_add(r, &rec, 1, at(m, 30000));
        }
        rollup_tick(r, at(10, 0));

        assert_int_equal(rollup_totals(r, at(0, 0), at(10, 0), 60, &s), 0);
        assert_int_equal(s.step_s, 60);
        assert_int_equal(s.n_points, 10);
        for (uint64_t m = 0; m < 10; m++) {
                assert_int_equal(s.points[m].start_ms, at(m, 0));
                assert_int_equal(s.points[m].flows, m == 4 ? 0 : m + 1);
                assert_int_equal(s.points[m].octets, m == 4 ? 0 : 100 * (m + 1));
                assert_int_equal(s.points[m].packets, m == 4 ? 0 : 2);
        }
        rollup_series_clear(&s);

        assert_int_equal(rollup_totals(r, at(0, 0), at(10, 0), 300, &s), 0);
        assert_int_equal(s.n_points, 2);
        assert_int_equal(s.points[0].start_ms, at(0, 0));
        assert_int_equal(s.points[0].flows, 1 + 2 + 3 + 4);
        assert_int_equal(s.points[1].start_ms, at(5, 0));
        assert_int_equal(s.points[1].flows, 6 + 7 + 8 + 9 + 10);
        assert_int_equal(s.points[1].packets, 10);
        rollup_series_clear(&s);

        /* ragged window: points aligned to the step, minutes 3..6 counted */
        assert_int_equal(rollup_totals(r, at(3, 5000), at(6, 1), 300, &s), 0);
        assert_int_equal(s.n_points, 2);
        assert_int_equal(s.points[0].start_ms, at(0, 0));
        assert_int_equal(s.points[0].flows, 4);
        assert_int_equal(s.points[1].flows, 6 + 7);
        rollup_series_clear(&s);

        /* beyond the data: zeros */
        assert_int_equal(rollup_totals(r, at(20, 0), at(25, 0), 60, &s), 0);
        assert_int_equal(s.n_points, 5);
        assert_int_equal(s.points[4].start_ms, at(24, 0));
        assert_int_equal(s.points[4].flows, 0);
        rollup_series_clear(&s);

        assert_int_equal(rollup_totals(r, at(0, 0), at(10000, 0), 60, &s), 0);
        assert_int_equal(s.n_points, 10000);
        rollup_series_clear(&s);
        assert_int_equal(rollup_totals(r, at(0, 0), at(10000, 1), 60, &s), -E2BIG);
        assert_int_equal(rollup_totals(r, at(0, 0), at(10, 0), 0, &s), -EINVAL);
        assert_int_equal(rollup_totals(r, at(0, 0), at(10, 0), 90, &s), -EINVAL);
        assert_int_equal(rollup_totals(r, at(10, 0), at(10, 0), 60, &s), -EINVAL);
        assert_null(s.points);
}

static void test_exporters(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(60, 10, 65536, 120, 3);
        RollupExporter *ex = NULL;
        FlowRecord recs[5];
        RollupStats st;
        uint8_t a[16];
        size_t n;

        recs[0] = rec_make(1, 2, 3, 4, 6, 7, 2, at(0, 0), 100, 1, 0);  /* 10.99.0.7 odid 2 */
        recs[1] = rec_make(1, 2, 3, 4, 6, 7, 1, at(0, 0), 200, 2, 3);  /* 10.99.0.7 odid 1 */
        recs[2] = rec_make(1, 2, 3, 4, 6, 1, 0, at(0, 0), 300, 3, 0);  /* v6 2001:db8::1 */
        set_addr(recs[2].exporter_addr, 1, true);
        recs[2].exporter_family = 6;
        recs[3] = rec_make(1, 2, 3, 4, 6, 9, 0, at(0, 0), 400, 4, 0);  /* fourth: dropped */
        recs[4] = recs[0];
        rollup_add(r, recs, 4, at(0, 10000));
        rollup_add(r, &recs[4], 1, at(0, 20000));
        rollup_add(r, &recs[3], 1, at(0, 20000));

        assert_int_equal(rollup_exporters(r, &ex, &n), 0);
        assert_int_equal(n, 3);
        set_addr(a, 0x0a630007, false);
        assert_memory_equal(ex[0].addr, a, 16);
        assert_int_equal(ex[0].family, 4);
        assert_int_equal(ex[0].odid, 1);
        assert_int_equal(ex[0].flows, 3);
        assert_int_equal(ex[0].first_seen_ms, at(0, 10000));
        assert_int_equal(ex[0].last_seen_ms, at(0, 10000));
        assert_memory_equal(ex[1].addr, a, 16);
        assert_int_equal(ex[1].odid, 2);
        assert_int_equal(ex[1].octets, 200);
        assert_int_equal(ex[1].packets, 2);
        assert_int_equal(ex[1].flows, 2);
        assert_int_equal(ex[1].first_seen_ms, at(0, 10000));
        assert_int_equal(ex[1].last_seen_ms, at(0, 20000));
        set_addr(a, 1, true);
        assert_memory_equal(ex[2].addr, a, 16);
        assert_int_equal(ex[2].family, 6);
        assert_int_equal(ex[2].octets, 300);
        free(ex);

        rollup_get_stats(r, &st);
        assert_int_equal(st.exporters, 3);
        assert_int_equal(st.exporters_dropped, 2);
        assert_int_equal(st.records, 6);

        /* the rollups still count the dropped exporter's traffic */
        {
                RollupTopResult res = {};

                assert_int_equal(rollup_top(r, ROLLUP_DIM_EXPORTER, ROLLUP_METRIC_OCTETS,
                                            at(0, 0), at(1, 0), 10, &res), 0);
                assert_int_equal(res.n_entries, 4);
                assert_int_equal(res.entries[0].key.odid, 0);   /* 10.99.0.9: 800 octets */
                assert_int_equal(res.entries[0].sums.octets, 800);
                assert_int_equal(res.entries[1].key.family, 6);
                assert_int_equal(res.entries[3].key.odid, 2);
                rollup_top_result_clear(&res);
        }
}

/* ---- thread-safety smoke ---- */

typedef struct Smoke {
        Rollup *r;
        _Atomic uint64_t now;
        atomic_bool stop;
        uint64_t queries;
} Smoke;

static void *smoke_query(void *userdata) {
        Smoke *s = userdata;
        uint64_t seed = 99;

        while (!atomic_load(&s->stop)) {
                uint64_t now = atomic_load(&s->now);
                RollupTopResult res = {};
                RollupSeries ser = {};
                RollupExporter *ex = NULL;
                RollupStats st;
                size_t n;

                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                assert_int_equal(rollup_top(s->r, (RollupDim) ((seed >> 33) % _ROLLUP_DIM_MAX),
                                            (RollupMetric) ((seed >> 40) % _ROLLUP_METRIC_MAX),
                                            now - 20 * MIN_MS, now + 5 * MIN_MS, 10, &res), 0);
                check_conservation(&res);
                rollup_top_result_clear(&res);
                assert_int_equal(rollup_totals(s->r, now - 20 * MIN_MS, now, 60, &ser), 0);
                rollup_series_clear(&ser);
                assert_int_equal(rollup_exporters(s->r, &ex, &n), 0);
                free(ex);
                rollup_get_stats(s->r, &st);
                s->queries++;
        }
        return NULL;
}

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void test_threads(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(30, 10, 64, 0, 20);
        Smoke s = { .r = r, .now = at(0, 0) };
        double start = now_s();
        uint64_t batches = 0;
        FlowRecord recs[64];
        pthread_t t;

        rnd_state = 77;
        assert_int_equal(pthread_create(&t, NULL, smoke_query, &s), 0);
        while (now_s() - start < 0.5) {
                uint64_t now = atomic_load(&s.now) + 5000;

                for (size_t i = 0; i < ELEMENTSOF(recs); i++) {
                        recs[i] = rec_random(now - rnd_below(3 * MIN_MS));
                        recs[i].src_port = (uint16_t) rnd_below(200);   /* overflows 64 */
                        recs[i].exporter_addr[15] = (uint8_t) rnd_below(30);
                }
                rollup_add(r, recs, ELEMENTSOF(recs), now);
                if (batches % 7 == 0)
                        rollup_tick(r, now);
                atomic_store(&s.now, now);
                batches++;
        }
        atomic_store(&s.stop, true);
        assert_int_equal(pthread_join(t, NULL), 0);
        printf("thread smoke: %" PRIu64 " batches, %" PRIu64 " queries\n", batches, s.queries);
        assert_true(batches > 0);
        assert_true(s.queries > 0);
}

/* ---- timing ---- */

#define PERF_MINUTES 60
#define PERF_PER_MINUTE 3000

static void test_perf(void **state) {
        _cleanup_(rollup_freep) Rollup *r = new_rollup(120, 500, 65536, 0, 1000);
        _cleanup_free_ FlowRecord *recs = calloc(PERF_PER_MINUTE, sizeof(*recs));
        RollupTopResult res = {};
        RollupStats st;
        double t, worst = 0;

        assert_non_null(recs);
        rnd_state = 4242;
        for (uint64_t m = 0; m < PERF_MINUTES; m++) {
                for (size_t i = 0; i < PERF_PER_MINUTE; i++) {
                        /* skewed: small values are much more likely */
                        uint32_t hot = (uint32_t) (rnd_below(20000) * rnd_below(20000) / 20000);

                        recs[i] = rec_make(hot, (uint32_t) rnd_below(20000),
                                           (uint16_t) (1024 + rnd_below(64000)),
                                           (uint16_t) (rnd_below(1000) * rnd_below(1000) / 1000),
                                           (uint8_t) rnd_below(5), (uint32_t) rnd_below(50),
                                           (uint32_t) rnd_below(2), at(m, rnd_below(MIN_MS)),
                                           40 + rnd_below(1500 * 100), 1 + rnd_below(100), 0);
                }
                rollup_add(r, recs, PERF_PER_MINUTE, at(m, 59999));
        }
        rollup_tick(r, at(PERF_MINUTES + 1, 0));
        rollup_get_stats(r, &st);
        assert_int_equal(st.minutes_sealed, PERF_MINUTES);
        assert_int_equal(st.minutes_open, 0);
        assert_true(st.evicted > 0);
        assert_true(st.memory_bytes <= st.memory_bound);

        /* the first query of each dimension pays for fresh memory; report the best of 5 */
        for (int d = 0; d < _ROLLUP_DIM_MAX; d++) {
                double first = 0, dt = 1e9;

                for (int i = 0; i < 5; i++) {
                        t = now_s();
                        assert_int_equal(rollup_top(r, (RollupDim) d, ROLLUP_METRIC_OCTETS,
                                                    at(0, 0), at(PERF_MINUTES, 0), 10, &res), 0);
                        t = now_s() - t;
                        if (i == 0)
                                first = t;
                        dt = t < dt ? t : dt;
                        assert_int_equal(res.minutes_covered, PERF_MINUTES);
                        assert_int_equal(res.n_entries, d == ROLLUP_DIM_PROTO ? 5 : 10);
                        check_conservation(&res);
                        rollup_top_result_clear(&res);
                }
                if (dt > worst)
                        worst = dt;
                printf("top-10 %-8s over %d sealed minutes (top_k 500): first %.3f ms, "
                       "best %.3f ms\n", rollup_dim_to_string((RollupDim) d), PERF_MINUTES,
                       first * 1e3, dt * 1e3);
        }
        printf("top-10 worst dimension: %.3f ms; %" PRIu64 " keys held, %.1f MB (bound %.1f MB)\n",
               worst * 1e3, st.keys, (double) st.memory_bytes / 1048576.0,
               (double) st.memory_bound / 1048576.0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_brute_force),
                cmocka_unit_test(test_seal),
                cmocka_unit_test(test_overflow),
                cmocka_unit_test(test_ties),
                cmocka_unit_test(test_windows),
                cmocka_unit_test(test_horizon),
                cmocka_unit_test(test_series),
                cmocka_unit_test(test_exporters),
                cmocka_unit_test(test_threads),
                cmocka_unit_test(test_perf),
        };

        return cmocka_run_group_tests_name("rollup", tests, NULL, NULL);
}
