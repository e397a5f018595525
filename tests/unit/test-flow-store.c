/* SPDX-License-Identifier: MIT */
/*
 * test-flow-store.c - the flow store against a brute-force reference: (end_ms desc, seq desc)
 * order and cursor pagination over many pages (with end_ms ties), time ranges and filters on
 * random IPv4/IPv6 data, index pruning on clustered data (segments and blocks skipped while
 * the answer stays exact), ring wraparound and its counters, max_scan and deadline
 * truncation, the early stop of newest-first scans, argument checks, and one appender racing
 * several query threads (records carry their own seq and a checksum, so torn or misattributed
 * records and unsorted pages are caught). Sizes shrink under valgrind or with
 * IPFIXD_TEST_QUICK set.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <valgrind/valgrind.h>

#include "flow-filter.h"
#include "flow-store.h"
#include "macro.h"

#define BASE_MS UINT64_C(1700000000000)

static bool quick;

/* --- random records --- */

static uint64_t rng_next(uint64_t *st) {
        /* xorshift64* */
        uint64_t x = *st;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *st = x;
        return x * UINT64_C(0x2545f4914f6cdd1d);
}

static unsigned rng_below(uint64_t *st, unsigned n) {
        return (unsigned) ((rng_next(st) >> 32) % n);
}

static uint64_t record_checksum(const FlowRecord *r) {
        FlowRecord c = *r;
        const uint8_t *p = (const uint8_t *) &c;
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        c.packets = 0;
        for (size_t i = 0; i < sizeof(c); i++)
                h = (h ^ p[i]) * UINT64_C(0x100000001b3);
        return h;
}

static void set_v4(uint8_t a[16], unsigned b0, unsigned b1, unsigned b2, unsigned b3) {
        const uint8_t v4[4] = { (uint8_t) b0, (uint8_t) b1, (uint8_t) b2, (uint8_t) b3 };
        flow_addr_set_v4(a, v4);
}

static void set_v6(uint8_t a[16], unsigned w2, unsigned w3, unsigned last) {
        memset(a, 0, 16);
        a[0] = 0x20;
        a[1] = 0x01;
        a[2] = 0x0d;
        a[3] = 0xb8;
        a[4] = (uint8_t) (w2 >> 8);
        a[5] = (uint8_t) w2;
        a[6] = (uint8_t) (w3 >> 8);
        a[7] = (uint8_t) w3;
        a[15] = (uint8_t) last;
}

/*
 * A random record that will get @seq: octets holds the seq and packets the checksum. end_ms
 * follows the seq loosely (jitter, many ties), as arrival order follows flow ends.
 */
static void make_record(FlowRecord *r, uint64_t seq, uint64_t *rng) {
        static const uint16_t dports[] = { 22, 53, 80, 443, 443, 8080 };
        static const uint8_t protos[] = { 6, 6, 6, 6, 6, 6, 17, 17, 17, 1 };
        unsigned x = rng_below(rng, 100);

        memset(r, 0, sizeof(*r));
        r->end_ms = BASE_MS + seq / 4 + rng_below(rng, 40);
        if (x % 50 == 7)        /* exported late: ends long before its neighbours */
                r->end_ms -= rng_below(rng, 4000);
        else if (x % 50 == 8)   /* clock skew: ends well after them */
                r->end_ms += rng_below(rng, 600);
        if (seq % 5000 == 1234) /* rare: far after, beyond every newer segment */
                r->end_ms += 8000 + seq % 3000;
        r->start_ms = r->end_ms - rng_below(rng, 3000);
        if (x < 80) {
                r->family = 4;
                set_v4(r->src_addr, 10, rng_below(rng, 4), rng_below(rng, 8), rng_below(rng, 16));
                set_v4(r->dst_addr, 192, 168, rng_below(rng, 4), rng_below(rng, 32));
        } else {
                r->family = 6;
                set_v6(r->src_addr, rng_below(rng, 4), 0, rng_below(rng, 16));
                set_v6(r->dst_addr, 0xff, rng_below(rng, 4), 1 + rng_below(rng, 8));
        }
        if (rng_below(rng, 10) == 0) {
                r->exporter_family = 6;
                set_v6(r->exporter_addr, 0xe, 0, 1);
        } else {
                r->exporter_family = 4;
                set_v4(r->exporter_addr, 172, 16, 0, 1 + rng_below(rng, 3));
        }
        r->proto = rng_below(rng, 50) == 0 ? 47 : protos[rng_below(rng, ELEMENTSOF(protos))];
        r->src_port = (uint16_t) (rng_below(rng, 2) ? 1024 + rng_below(rng, 64) :
                                                      32768 + rng_below(rng, 28000));
        r->dst_port = rng_below(rng, 8) == 0 ? (uint16_t) rng_below(rng, 65536) :
                                               dports[rng_below(rng, ELEMENTSOF(dports))];
        r->octets = seq;
        r->tos = (uint8_t) rng_below(rng, 4);
        r->packets = record_checksum(r);
}

/* --- reference --- */

typedef struct Ref {
        FlowRecord *recs;               /* every record ever appended; index = seq */
        size_t n, cap;
} Ref;

static void ref_append(Ref *ref, const FlowRecord *recs, size_t n) {
        if (ref->n + n > ref->cap) {
                ref->cap = MAX(ref->cap * 2, ref->n + n);
                ref->recs = realloc(ref->recs, ref->cap * sizeof(FlowRecord));
                assert_non_null(ref->recs);
        }
        memcpy(ref->recs + ref->n, recs, n * sizeof(FlowRecord));
        ref->n += n;
}

static void ref_done(Ref *ref) {
        free(ref->recs);
        *ref = (Ref) {};
}

static bool in_time(const FlowStoreQuery *q, const FlowRecord *r) {
        return (q->to_ms == UINT64_MAX || r->start_ms < q->to_ms) && r->end_ms >= q->from_ms;
}

static bool after_cursor(uint64_t cend, uint64_t cseq, uint64_t end, uint64_t seq) {
        return end < cend || (end == cend && seq < cseq);
}

static const Ref *sort_ref;

static int seq_cmp_desc(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        const FlowRecord *rx = &sort_ref->recs[x], *ry = &sort_ref->recs[y];

        if (rx->end_ms != ry->end_ms)
                return rx->end_ms < ry->end_ms ? 1 : -1;
        return x < y ? 1 : x > y ? -1 : 0;
}

/* Seqs of the stored records matching @q (cursor ignored), in result order. */
static uint64_t *ref_query(const Ref *ref, FlowStore *s, const FlowStoreQuery *q, size_t *ret_n) {
        FlowStoreStats st;
        uint64_t *out;
        size_t n = 0;

        flow_store_get_stats(s, &st);
        out = malloc(sizeof(uint64_t) * (ref->n + 1));
        assert_non_null(out);
        for (uint64_t seq = st.records ? st.oldest_seq : ref->n; seq < ref->n; seq++) {
                const FlowRecord *r = &ref->recs[seq];
                if (in_time(q, r) && (!q->filter || flow_filter_match(q->filter, r)))
                        out[n++] = seq;
        }
        sort_ref = ref;
        qsort(out, n, sizeof(uint64_t), seq_cmp_desc);
        *ret_n = n;
        return out;
}

static void check_record(const FlowRecord *r, uint64_t seq) {
        assert_int_equal(r->octets, seq);
        assert_int_equal(r->packets, record_checksum(r));
}

/* Pages through @q with random limits and compares every page with the reference. */
static void paginate_and_compare(const Ref *ref, FlowStore *s, FlowStoreQuery q, uint64_t *rng,
                                 unsigned max_limit) {
        _cleanup_free_ uint64_t *want = NULL;
        size_t nwant, got = 0;
        unsigned pages = 0;

        want = ref_query(ref, s, &q, &nwant);
        q.has_cursor = false;
        for (;;) {
                FlowStoreResult res;

                q.limit = 1 + rng_below(rng, max_limit);
                assert_int_equal(flow_store_query(s, &q, &res), 0);
                assert_false(res.truncated);
                assert_true(res.n <= q.limit);
                for (size_t i = 0; i < res.n; i++) {
                        assert_true(got + i < nwant);
                        assert_int_equal(res.seqs[i], want[got + i]);
                        assert_memory_equal(&res.flows[i], &ref->recs[res.seqs[i]],
                                            sizeof(FlowRecord));
                }
                got += res.n;
                pages++;
                assert_int_equal(res.has_more, got < nwant);
                if (!res.has_more) {
                        flow_store_result_clear(&res);
                        break;
                }
                assert_int_equal(res.n, q.limit);
                assert_int_equal(res.next_seq, res.seqs[res.n - 1]);
                assert_int_equal(res.next_end_ms, res.flows[res.n - 1].end_ms);
                q.has_cursor = true;
                q.cursor_end_ms = res.next_end_ms;
                q.cursor_seq = res.next_seq;
                flow_store_result_clear(&res);
        }
        assert_int_equal(got, nwant);
        assert_true(pages >= 1);
}

static void filter_freep(FlowFilter **f) {
        (void) flow_filter_free(*f);
}

static FlowFilter *compile(const char *expr) {
        FlowFilter *f = NULL;
        char *err = NULL;
        int r = flow_filter_compile(expr, &f, &err);

        if (r < 0)
                fail_msg("filter '%s': %s", expr, err ? err : "?");
        free(err);
        return f;
}

static void append_random(FlowStore *s, Ref *ref, size_t n, uint64_t *rng) {
        FlowRecord *buf = malloc(sizeof(FlowRecord) * 512);

        assert_non_null(buf);
        while (n > 0) {
                size_t m = 1 + rng_below(rng, 511);     /* not inside MIN(): evaluated twice */

                m = MIN(n, m);
                for (size_t i = 0; i < m; i++)
                        make_record(&buf[i], ref->n + i, rng);
                flow_store_append(s, buf, m);
                ref_append(ref, buf, m);
                n -= m;
        }
        free(buf);
}

static const char *const filters[] = {
        "",
        "proto == tcp",
        "proto == 47",
        "dst_port in (80, 443)",
        "dst_port == 443 and src_addr in 10.1.0.0/16",
        "src_addr == 10.2.3.4",
        "src_addr == 10.2.3.4 and dst_port == 443",
        "dst_addr in 192.168.1.0/26",
        "src_addr in 10.0.0.0/12",
        "src_addr in 8.0.0.0/5",
        "exporter == 172.16.0.2",
        "exporter == 2001:db8:e::1",
        "addr in 2001:db8:2::/48",
        "src_addr in 2001:db8:2::/47",
        "dst_addr == 2001:db8:ff:3::5",
        "src_addr in 2001:db8::/32 and proto == udp",
        "not proto == udp",
        "port == 53 or proto == icmp",
        "src_port < 1100 and tos == 2",
        "src_addr == 10.9.9.9",
        "dst_port == 9",
};

/* --- tests --- */

static void test_pagination(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        FlowStoreConfig cfg = { .max_flows = (quick ? 4 : 8) * 2048, .segment_flows = 2048 };
        uint64_t rng = 1;
        Ref ref = {};
        size_t n = quick ? 10000 : 20000;

        assert_int_equal(flow_store_new(&s, &cfg), 0);
        append_random(s, &ref, n, &rng);

        /* All records, small pages: many pages, every tie broken by seq. */
        FlowStoreQuery q = { .to_ms = UINT64_MAX };
        paginate_and_compare(&ref, s, q, &rng, quick ? 400 : 150);
        paginate_and_compare(&ref, s, q, &rng, quick ? 20 : 3);

        /* Random time ranges. */
        for (unsigned i = 0; i < (quick ? 6u : 20u); i++) {
                uint64_t a = BASE_MS + rng_below(&rng, (unsigned) (n / 4 + 100));
                uint64_t b = a + rng_below(&rng, 2000);
                q = (FlowStoreQuery) { .from_ms = i % 3 == 0 ? 0 : a,
                                       .to_ms = i % 3 == 1 ? UINT64_MAX : b };
                paginate_and_compare(&ref, s, q, &rng, 200);
        }
        ref_done(&ref);
}

static void test_filters(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        FlowStoreConfig cfg = { .max_flows = 6 * 4096, .segment_flows = 4096 };
        uint64_t rng = 2;
        Ref ref = {};
        size_t n = quick ? 14000 : 30000;

        assert_int_equal(flow_store_new(&s, &cfg), 0);
        append_random(s, &ref, n, &rng);

        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                _cleanup_(filter_freep) FlowFilter *f = compile(filters[i]);
                FlowStoreQuery q = { .filter = f, .to_ms = UINT64_MAX };
                _cleanup_free_ uint64_t *want = NULL;
                FlowStoreResult res;
                size_t nwant;

                /* One page holding everything. */
                want = ref_query(&ref, s, &q, &nwant);
                q.limit = FLOW_STORE_MAX_LIMIT;
                assert_int_equal(flow_store_query(s, &q, &res), 0);
                assert_int_equal(res.n, nwant);
                assert_false(res.has_more);
                for (size_t k = 0; k < res.n; k++) {
                        assert_int_equal(res.seqs[k], want[k]);
                        check_record(&res.flows[k], res.seqs[k]);
                }
                flow_store_result_clear(&res);

                /* Pages, and with a time range. */
                paginate_and_compare(&ref, s, q, &rng, 300);
                q.from_ms = BASE_MS + n / 8;
                q.to_ms = BASE_MS + n / 5;
                paginate_and_compare(&ref, s, q, &rng, 100);
        }
        ref_done(&ref);
}

/* Records clustered per segment (and per block): pruning must skip what cannot match. */
static void make_clustered(FlowRecord *r, uint64_t seq, unsigned seg_flows) {
        unsigned seg = (unsigned) (seq / seg_flows);
        unsigned blk = (unsigned) (seq % seg_flows / FLOW_STORE_BLOCK_FLOWS);

        memset(r, 0, sizeof(*r));
        r->end_ms = BASE_MS + seq * 10;
        r->start_ms = r->end_ms - 5;
        if (seg % 2 == 0) {
                r->family = 4;
                set_v4(r->src_addr, 10, seg, blk, (unsigned) (seq % 7));
                set_v4(r->dst_addr, 192, 168, seg, (unsigned) (seq % 11));
        } else {
                r->family = 6;
                set_v6(r->src_addr, seg, blk, (unsigned) (seq % 7));
                set_v6(r->dst_addr, 0xff, seg, (unsigned) (seq % 11));
        }
        r->exporter_family = 4;
        set_v4(r->exporter_addr, 172, 16, 1, seg);
        r->proto = seg == 3 ? 47 : 6;
        r->src_port = (uint16_t) (2000 + seg);
        r->dst_port = (uint16_t) (1000 + seg * 4 + blk);
        r->octets = seq;
        r->packets = record_checksum(r);
}

static void test_pruning(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        const unsigned sf = 4096, nseg = 8;
        FlowStoreConfig cfg = { .max_flows = nseg * sf, .segment_flows = sf };
        FlowRecord *buf = malloc(sizeof(FlowRecord) * sf);
        Ref ref = {};
        static const struct {
                const char *expr;
                uint64_t min_seg_skipped, min_blk_skipped;
        } cases[] = {
                { "src_addr == 10.4.2.3", 7, 3 },
                { "src_addr in 10.4.2.0/24", 7, 3 },
                { "src_addr in 10.4.0.0/18", 7, 0 },    /* probed at /16 */
                { "src_addr in 10.0.0.0/13", 3, 0 },    /* probed at /8: every v4 segment */
                { "dst_addr in 192.168.6.0/25", 7, 0 },
                { "src_addr in 2001:db8:5::/48", 7, 0 },
                { "src_addr in 2001:db8:5:2::/64", 7, 3 },
                { "exporter == 172.16.1.2", 7, 0 },
                { "proto == 47", 7, 0 },
                { "dst_port == 1022", 7, 3 },
                { "src_port == 2005 and dst_port == 1000", 8, 0 },
                { "dst_port in (1001, 1029)", 6, 6 },
                { "src_addr == 10.4.2.3 or proto == 47", 6, 0 },
        };

        assert_non_null(buf);
        assert_int_equal(flow_store_new(&s, &cfg), 0);
        for (unsigned k = 0; k < nseg; k++) {
                for (unsigned i = 0; i < sf; i++)
                        make_clustered(&buf[i], (uint64_t) k * sf + i, sf);
                flow_store_append(s, buf, sf);
                ref_append(&ref, buf, sf);
        }
        free(buf);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(filter_freep) FlowFilter *f = compile(cases[i].expr);
                FlowStoreQuery q = { .filter = f, .to_ms = UINT64_MAX, .limit = 100000 };
                _cleanup_free_ uint64_t *want = NULL;
                FlowStoreResult res;
                size_t nwant;

                want = ref_query(&ref, s, &q, &nwant);
                assert_int_equal(flow_store_query(s, &q, &res), 0);
                assert_int_equal(res.n, nwant);
                for (size_t k = 0; k < res.n; k++)
                        assert_int_equal(res.seqs[k], want[k]);
                if (res.segments_skipped < cases[i].min_seg_skipped ||
                    res.blocks_skipped < cases[i].min_blk_skipped)
                        fail_msg("%s: skipped %" PRIu64 " segments, %" PRIu64 " blocks",
                                 cases[i].expr, res.segments_skipped, res.blocks_skipped);
                assert_int_equal(res.segments_scanned + res.segments_skipped, nseg);
                assert_true(res.scanned <= (nseg - cases[i].min_seg_skipped) * sf);
                flow_store_result_clear(&res);
        }

        /* A time range alone skips segments: segment 2 spans [2 * sf * 10, 3 * sf * 10). */
        FlowStoreQuery q = { .from_ms = BASE_MS + 2 * sf * 10 + 100,
                             .to_ms = BASE_MS + 2 * sf * 10 + 500, .limit = 1000 };
        FlowStoreResult res;
        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_int_equal(res.n, 41);    /* ends +100..+500 every 10 ms (start = end - 5) */
        assert_int_equal(res.segments_skipped, nseg - 1);
        assert_true(res.scanned <= FLOW_STORE_BLOCK_FLOWS);
        flow_store_result_clear(&res);
        ref_done(&ref);
}

/* Nearly every record shares its end_ms and start_ms: ties everywhere, bounds hit exactly. */
static void test_ties(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        _cleanup_(filter_freep) FlowFilter *f = compile("proto == tcp");
        FlowStoreConfig cfg = { .max_flows = 4 * 2048, .segment_flows = 2048 };
        const uint64_t x = BASE_MS + 1000;
        static const struct {
                uint64_t from, to;
        } ranges[] = {
                { 0, UINT64_MAX }, { 1001, UINT64_MAX }, { 0, 1000 }, { 1000, 1001 },
                { 1001, 1002 }, { 999, 1000 }, { 1002, UINT64_MAX },
        };
        uint64_t rng = 9;
        Ref ref = {};

        assert_int_equal(flow_store_new(&s, &cfg), 0);
        for (uint64_t seq = 0; seq < 7000; seq++) {
                FlowRecord r;
                make_record(&r, seq, &rng);
                r.end_ms = x + rng_below(&rng, 2);
                r.start_ms = r.end_ms - rng_below(&rng, 2);
                r.packets = record_checksum(&r);
                flow_store_append(s, &r, 1);
                ref_append(&ref, &r, 1);
        }
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++) {
                FlowStoreQuery q = {
                        .from_ms = ranges[i].from ? BASE_MS + ranges[i].from : 0,
                        .to_ms = ranges[i].to != UINT64_MAX ? BASE_MS + ranges[i].to : UINT64_MAX,
                };
                paginate_and_compare(&ref, s, q, &rng, quick ? 60 : 7);
                q.filter = f;
                paginate_and_compare(&ref, s, q, &rng, 300);
        }
        ref_done(&ref);
}

static void test_wraparound(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        FlowStoreConfig cfg = { .max_flows = 256, .segment_flows = 64 };
        FlowStoreStats st;
        FlowStoreResult res;
        FlowStoreQuery q = { .to_ms = UINT64_MAX, .limit = 1000 };
        uint64_t rng = 4;
        uint64_t seq = 0;

        Ref ref = {};

        assert_int_equal(flow_store_new(&s, &cfg), 0);
        flow_store_get_stats(s, &st);
        assert_int_equal(st.capacity, 256);
        assert_int_equal(st.segments, 4);
        assert_int_equal(st.records, 0);
        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_int_equal(res.n, 0);
        assert_false(res.has_more);
        flow_store_result_clear(&res);

        /* One at a time, then in batches crossing segment boundaries: 653 records. */
        for (; seq < 100; seq++) {
                FlowRecord r;
                make_record(&r, seq, &rng);
                r.end_ms = BASE_MS + seq;
                r.packets = record_checksum(&r);
                flow_store_append(s, &r, 1);
                ref_append(&ref, &r, 1);
        }
        while (seq < 653) {
                FlowRecord b[150];
                size_t m = MIN((size_t) 150, (size_t) (653 - seq));
                for (size_t i = 0; i < m; i++) {
                        make_record(&b[i], seq + i, &rng);
                        b[i].end_ms = BASE_MS + seq + i;
                        b[i].packets = record_checksum(&b[i]);
                }
                flow_store_append(s, b, m);
                ref_append(&ref, b, m);
                seq += m;
        }

        flow_store_get_stats(s, &st);
        assert_int_equal(st.appended, 653);
        assert_int_equal(st.records, 3 * 64 + 13);
        assert_int_equal(st.overwritten, 653 - st.records);
        assert_int_equal(st.oldest_seq, 448);
        assert_int_equal(st.newest_seq, 652);
        assert_int_equal(st.oldest_end_ms, BASE_MS + 448);
        assert_int_equal(st.newest_end_ms, BASE_MS + 652);
        assert_true(st.memory_bytes >= 256 * sizeof(FlowRecord));

        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_int_equal(res.n, st.records);
        for (size_t i = 0; i < res.n; i++) {
                assert_int_equal(res.seqs[i], 652 - i);
                check_record(&res.flows[i], res.seqs[i]);
        }
        flow_store_result_clear(&res);

        /* Indexes of recycled segments hold only their new records (one block each here). */
        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                _cleanup_(filter_freep) FlowFilter *f = compile(filters[i]);
                paginate_and_compare(&ref, s, (FlowStoreQuery) { .filter = f,
                                                                  .to_ms = UINT64_MAX },
                                     &rng, 40);
        }
        ref_done(&ref);

        /* Exactly one segment more: the oldest goes whole. */
        for (; seq < 653 + 51; seq++) {
                FlowRecord r;
                make_record(&r, seq, &rng);
                flow_store_append(s, &r, 1);
        }
        flow_store_get_stats(s, &st);
        assert_int_equal(st.records, 4 * 64);
        flow_store_append(s, &(FlowRecord) { .family = 4, .exporter_family = 4 }, 1);
        flow_store_get_stats(s, &st);
        assert_int_equal(st.records, 3 * 64 + 1);
        assert_int_equal(st.oldest_seq, 512);
}

/* A recycled segment's index starts empty, even for a value its previous life ended with. */
static void test_recycled_index(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        _cleanup_(filter_freep) FlowFilter *f = compile("exporter == 172.16.0.1");
        _cleanup_(filter_freep) FlowFilter *g = compile("exporter == 172.16.0.2");
        FlowStoreConfig cfg = { .max_flows = 128, .segment_flows = 64 };
        FlowStoreQuery q = { .filter = f, .to_ms = UINT64_MAX, .limit = 1000 };
        FlowStoreResult res;
        uint64_t rng = 10;

        assert_int_equal(flow_store_new(&s, &cfg), 0);
        for (uint64_t seq = 0; seq < 3 * 64; seq++) {
                FlowRecord r;
                make_record(&r, seq, &rng);
                r.exporter_family = 4;
                set_v4(r.exporter_addr, 172, 16, 0, seq < 32 ? 2 : 1);
                r.packets = record_checksum(&r);
                flow_store_append(s, &r, 1);
        }
        /* Slot 0 ended its first life with .1 and holds only .1 in its second. */
        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_int_equal(res.n, 128);
        flow_store_result_clear(&res);

        q.filter = g;
        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_int_equal(res.n, 0);
        assert_int_equal(res.segments_skipped, 2);
        flow_store_result_clear(&res);
}

static void test_truncation(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        _cleanup_(filter_freep) FlowFilter *f = compile("octets > 100000000000");
        FlowStoreConfig cfg = { .max_flows = 4 * 2048, .segment_flows = 2048 };
        FlowStoreQuery q = { .filter = f, .to_ms = UINT64_MAX, .limit = 10, .max_scan = 1000 };
        FlowStoreResult res;
        uint64_t rng = 5;
        Ref ref = {};

        assert_int_equal(flow_store_new(&s, &cfg), 0);
        append_random(s, &ref, 8192, &rng);

        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_true(res.truncated);
        assert_true(res.has_more);
        assert_int_equal(res.scanned, 1000);
        assert_int_equal(res.n, 0);
        flow_store_result_clear(&res);

        /* Truncated but with matches: the newest examined records are the candidates. */
        q.filter = NULL;
        q.max_scan = 5;
        q.limit = 3;
        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_true(res.truncated);
        assert_int_equal(res.scanned, 5);
        assert_int_equal(res.n, 3);
        for (size_t i = 0; i < res.n; i++)
                assert_true(res.seqs[i] >= 8192 - 5);
        flow_store_result_clear(&res);

        q.filter = f;
        q.max_scan = 0;
        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_false(res.truncated);
        assert_false(res.has_more);
        assert_int_equal(res.scanned, 8192);
        flow_store_result_clear(&res);

        q.deadline_us = 1;      /* long past */
        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_true(res.truncated);
        assert_int_equal(res.scanned, 0);
        flow_store_result_clear(&res);
        ref_done(&ref);
}

/* In-order data: a newest-first query stops after the first block it needs. */
static void test_early_stop(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        FlowStoreConfig cfg = { .max_flows = 16 * 2048, .segment_flows = 2048 };
        FlowStoreQuery q = { .to_ms = UINT64_MAX, .limit = 10 };
        FlowStoreResult res;
        uint64_t rng = 6;
        Ref ref = {};

        assert_int_equal(flow_store_new(&s, &cfg), 0);
        for (uint64_t seq = 0; seq < 16 * 2048; seq++) {
                FlowRecord r;
                make_record(&r, seq, &rng);
                r.end_ms = BASE_MS + seq / 4 + rng_below(&rng, 40);     /* no outliers */
                r.packets = record_checksum(&r);
                flow_store_append(s, &r, 1);
                ref_append(&ref, &r, 1);
        }

        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_int_equal(res.n, 10);
        assert_true(res.has_more);
        assert_true(res.scanned <= 2 * FLOW_STORE_BLOCK_FLOWS);
        assert_true(res.segments_skipped >= 14);
        flow_store_result_clear(&res);

        /* The same with a cursor deep into the data, and the whole answer stays right. */
        paginate_and_compare(&ref, s, (FlowStoreQuery) { .to_ms = UINT64_MAX }, &rng, 4000);
        ref_done(&ref);
}

static void test_invalid(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        FlowStoreConfig cfg = { .max_flows = 1000 };
        FlowStoreQuery q = { .to_ms = UINT64_MAX };
        FlowStoreResult res = {};
        FlowStoreStats st;
        FlowStore *t = NULL;

        assert_int_equal(flow_store_new(&t, &(FlowStoreConfig) {}), -EINVAL);
        assert_int_equal(flow_store_new(&t, &(FlowStoreConfig) { .max_flows = 1 << 20,
                                                                .segment_flows = 10 }),
                         -EINVAL);
        assert_int_equal(flow_store_new(&t, &(FlowStoreConfig) { .max_flows = 100 }), -EINVAL);
        assert_int_equal(flow_store_new(&t, &(FlowStoreConfig) { .max_memory_bytes = 4096 }),
                         -EINVAL);
        assert_null(t);

        /* Too few flows for two default segments: segments shrink. */
        assert_int_equal(flow_store_new(&s, &cfg), 0);
        flow_store_get_stats(s, &st);
        assert_int_equal(st.segment_flows, 256);
        assert_int_equal(st.capacity, 768);
        s = flow_store_free(s);

        /* The memory cap wins when it is the smaller one, counting the indexes. */
        cfg = (FlowStoreConfig) { .max_flows = 1 << 20, .segment_flows = 1024,
                                  .max_memory_bytes = 10 * flow_store_memory_per_segment(1024) };
        assert_int_equal(flow_store_new(&s, &cfg), 0);
        flow_store_get_stats(s, &st);
        assert_int_equal(st.capacity, 10 * 1024);
        assert_true(st.memory_bytes <= cfg.max_memory_bytes + 4096);
        assert_true(flow_store_memory_per_segment(1024) > 1024 * sizeof(FlowRecord));

        q.limit = 0;
        assert_int_equal(flow_store_query(s, &q, &res), -EINVAL);
        q.limit = FLOW_STORE_MAX_LIMIT + 1;
        assert_int_equal(flow_store_query(s, &q, &res), -EINVAL);
        q.limit = 1;
        q.from_ms = 10;
        q.to_ms = 9;
        assert_int_equal(flow_store_query(s, &q, &res), -EINVAL);
        assert_null(res.flows);
        q.to_ms = 10;   /* empty range */
        assert_int_equal(flow_store_query(s, &q, &res), 0);
        assert_int_equal(res.n, 0);
        flow_store_result_clear(&res);
        flow_store_result_clear(NULL);
}

/* --- concurrency --- */

#define N_QUERY_THREADS 3

typedef struct Race {
        FlowStore *store;
        FlowFilter *filters[ELEMENTSOF(filters)];
        volatile int stop;              /* read with __atomic builtins */
        uint64_t duration_ms;
        uint64_t appended;
        uint64_t queries[N_QUERY_THREADS];
        unsigned failures;              /* first failure wins; checked on the main thread */
        char failure[256];
        pthread_mutex_t lock;
} Race;

typedef struct RaceThread {
        Race *race;
        unsigned id;
} RaceThread;

static uint64_t mono_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

_printf_(2, 3) static void race_fail(Race *race, const char *fmt, ...) {
        va_list ap;

        (void) pthread_mutex_lock(&race->lock);
        if (race->failures++ == 0) {
                va_start(ap, fmt);
                (void) vsnprintf(race->failure, sizeof(race->failure), fmt, ap);
                va_end(ap);
        }
        (void) pthread_mutex_unlock(&race->lock);
        __atomic_store_n(&race->stop, 1, __ATOMIC_RELAXED);
}

static void *race_appender(void *userdata) {
        Race *race = userdata;
        FlowRecord buf[600];
        uint64_t rng = 77, seq = race->appended, start = mono_ms();

        while (mono_ms() - start < race->duration_ms && !__atomic_load_n(&race->stop,
                                                                         __ATOMIC_RELAXED)) {
                size_t m = 1 + rng_below(&rng, ELEMENTSOF(buf));
                for (size_t i = 0; i < m; i++)
                        make_record(&buf[i], seq + i, &rng);
                flow_store_append(race->store, buf, m);
                seq += m;
        }
        race->appended = seq;
        __atomic_store_n(&race->stop, 1, __ATOMIC_RELAXED);
        return NULL;
}

static void *race_querier(void *userdata) {
        RaceThread *t = userdata;
        Race *race = t->race;
        uint64_t rng = 1000 + t->id, start = mono_ms();

        /* The own deadline matters under valgrind, whose scheduler can starve the appender. */
        while (!__atomic_load_n(&race->stop, __ATOMIC_RELAXED) &&
               mono_ms() - start < race->duration_ms) {
                FlowStoreQuery q = { .to_ms = UINT64_MAX };
                FlowStoreStats st;
                unsigned fi = rng_below(&rng, ELEMENTSOF(filters));
                bool have_prev = false;
                uint64_t prev_end = 0, prev_seq = 0;

                q.filter = race->filters[fi];
                flow_store_get_stats(race->store, &st);
                if (rng_below(&rng, 2) && st.records > 0) {
                        q.from_ms = st.newest_end_ms - rng_below(&rng, 3000);
                        q.to_ms = q.from_ms + rng_below(&rng, 2000);
                }
                for (unsigned page = 0; page < 4; page++) {
                        FlowStoreResult res;
                        int r;

                        q.limit = 1 + rng_below(&rng, 300);
                        r = flow_store_query(race->store, &q, &res);
                        if (r < 0) {
                                race_fail(race, "query failed: %d", r);
                                return NULL;
                        }
                        for (size_t i = 0; i < res.n; i++) {
                                const FlowRecord *f = &res.flows[i];
                                if (f->octets != res.seqs[i] || f->packets != record_checksum(f))
                                        race_fail(race, "torn or misattributed record seq %" PRIu64,
                                                  res.seqs[i]);
                                else if (have_prev &&
                                         !after_cursor(prev_end, prev_seq, f->end_ms, res.seqs[i]))
                                        race_fail(race, "out of order at seq %" PRIu64, res.seqs[i]);
                                else if (!in_time(&q, f) ||
                                         (q.filter && !flow_filter_match(q.filter, f)))
                                        race_fail(race, "'%s' returned a non-match", filters[fi]);
                                have_prev = true;
                                prev_end = f->end_ms;
                                prev_seq = res.seqs[i];
                        }
                        __atomic_add_fetch(&race->queries[t->id], 1, __ATOMIC_RELAXED);
                        if (!res.has_more) {
                                flow_store_result_clear(&res);
                                break;
                        }
                        q.has_cursor = true;
                        q.cursor_end_ms = res.next_end_ms;
                        q.cursor_seq = res.next_seq;
                        flow_store_result_clear(&res);
                }
        }
        return NULL;
}

static void test_concurrent(void **state) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        /* Small segments: recycling under running queries is frequent. */
        FlowStoreConfig cfg = { .max_flows = 32 * 256, .segment_flows = 256 };
        Race race = { .duration_ms = quick ? 1500 : 1000 };
        RaceThread rt[N_QUERY_THREADS];
        pthread_t app, qt[N_QUERY_THREADS];
        FlowStoreStats st;

        assert_int_equal(pthread_mutex_init(&race.lock, NULL), 0);
        assert_int_equal(flow_store_new(&s, &cfg), 0);
        race.store = s;
        for (size_t i = 0; i < ELEMENTSOF(filters); i++)
                race.filters[i] = compile(filters[i]);
        /* Start with a full ring so that every query has something to find. */
        for (uint64_t rng = 78; race.appended < 32 * 256; race.appended++) {
                FlowRecord r;
                make_record(&r, race.appended, &rng);
                flow_store_append(s, &r, 1);
        }

        assert_int_equal(pthread_create(&app, NULL, race_appender, &race), 0);
        for (unsigned i = 0; i < N_QUERY_THREADS; i++) {
                rt[i] = (RaceThread) { .race = &race, .id = i };
                assert_int_equal(pthread_create(&qt[i], NULL, race_querier, &rt[i]), 0);
        }
        assert_int_equal(pthread_join(app, NULL), 0);
        for (unsigned i = 0; i < N_QUERY_THREADS; i++)
                assert_int_equal(pthread_join(qt[i], NULL), 0);

        if (race.failures > 0)
                fail_msg("%u failures, first: %s", race.failures, race.failure);
        flow_store_get_stats(s, &st);
        assert_int_equal(st.appended, race.appended);
        assert_true(st.overwritten > 0);
        for (unsigned i = 0; i < N_QUERY_THREADS; i++)
                assert_true(race.queries[i] > 0);
        print_message("appended %" PRIu64 ", queries %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                      race.appended, race.queries[0], race.queries[1], race.queries[2]);

        for (size_t i = 0; i < ELEMENTSOF(filters); i++)
                (void) flow_filter_free(race.filters[i]);
        (void) pthread_mutex_destroy(&race.lock);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pagination),
                cmocka_unit_test(test_filters),
                cmocka_unit_test(test_pruning),
                cmocka_unit_test(test_ties),
                cmocka_unit_test(test_wraparound),
                cmocka_unit_test(test_recycled_index),
                cmocka_unit_test(test_truncation),
                cmocka_unit_test(test_early_stop),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_concurrent),
        };

        quick = RUNNING_ON_VALGRIND || getenv("IPFIXD_TEST_QUICK");
        return cmocka_run_group_tests_name("flow-store", tests, NULL, NULL);
}
