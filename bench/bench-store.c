/* SPDX-License-Identifier: MIT */
/*
 * bench-store.c - flow store fill rate and query latency over millions of in-memory flows.
 *
 * Fills a store with --flows synthetic flows (default 10,000,000): hosts from four internal
 * /16s and eight external /16s drawn from a Zipf-like (1/rank) distribution, a realistic mix
 * of services, protocols and four exporters, end_ms increasing over one hour in arrival order
 * with up to a minute of export jitter. Then runs --queries queries (default 200) of four
 * kinds, round robin, while an ingest thread keeps appending at --rate records/s (default
 * 200,000):
 *   selective  src_addr == X and dst_port == 443, last hour, limit 100 (X drawn like traffic)
 *   proto      proto == udp / icmp / 47 in turn, last 5 minutes, limit 100
 *   cidr       dst_addr in A.B.C.0/24 (an internal /24 drawn like traffic), last hour, limit 100
 *   newest     no filter, no time range, limit 100
 * and prints per kind p50/p99/max latency and records scanned, the fill rate, the ingest
 * thread's achieved rate and longest append call, and memory. The data is generated from a
 * fixed seed (--seed), so every run sees the same input. The last line is machine-readable;
 * its query_* figures are the selective kind's.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flow-filter.h"
#include "flow-store.h"
#include "macro.h"

#define HOUR_MS UINT64_C(3600000)
#define T0_MS UINT64_C(1700000000000)
#define BATCH 2000u

/* --- synthetic traffic --- */

typedef struct Gen {
        uint64_t rng;
        uint64_t i;                     /* arrival index */
        uint64_t flows;                 /* records spread over one hour of data time */
} Gen;

static uint64_t rng_next(uint64_t *st) {
        uint64_t x = *st;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *st = x;
        return x * UINT64_C(0x2545f4914f6cdd1d);
}

static double rng_unit(uint64_t *st) {
        return (double) (rng_next(st) >> 11) * (1.0 / 9007199254740992.0);
}

static unsigned rng_below(uint64_t *st, unsigned n) {
        return (unsigned) ((rng_next(st) >> 32) % n);
}

/*
 * Rank in [0, 2^bits) with P(rank) roughly 1 / (rank + 1): an octave [2^k, 2^(k+1)) picked
 * uniformly, then a uniform rank + 1 inside it (no libm needed).
 */
static unsigned zipf(uint64_t *st, unsigned bits) {
        unsigned k = rng_below(st, bits);
        return (1u << k) + rng_below(st, 1u << k) - 1;
}

static const uint8_t internal_16[4][2] = { { 10, 1 }, { 10, 2 }, { 172, 16 }, { 192, 168 } };
static const uint8_t external_16[8][2] = {
        { 198, 18 }, { 203, 0 }, { 151, 101 }, { 142, 250 },
        { 13, 107 }, { 52, 84 }, { 104, 16 }, { 31, 13 },
};

static void set_v4(uint8_t a[16], uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3) {
        const uint8_t v4[4] = { b0, b1, b2, b3 };
        flow_addr_set_v4(a, v4);
}

/* Popular hosts scattered over the /16s: rank -> address through an odd multiplier. */
static void internal_host(uint8_t a[16], unsigned rank) {
        unsigned p = (rank * 40503u + 12345u) & 0x3ffffu;
        set_v4(a, internal_16[p >> 16][0], internal_16[p >> 16][1], (uint8_t) (p >> 8),
               (uint8_t) p);
}

static void external_host(uint8_t a[16], unsigned rank) {
        unsigned p = (rank * 48271u + 777u) & 0x7ffffu;
        set_v4(a, external_16[p >> 16][0], external_16[p >> 16][1], (uint8_t) (p >> 8),
               (uint8_t) p);
}

static void v6_host(uint8_t a[16], unsigned rank, bool internal) {
        unsigned p = (rank * 40503u + 99u) & 0xffffu;
        memset(a, 0, 16);
        a[0] = 0x20;
        a[1] = 0x01;
        a[2] = 0x0d;
        a[3] = 0xb8;
        a[5] = internal ? 1 : 2;
        a[7] = (uint8_t) (p >> 8);
        a[15] = (uint8_t) p;
}

static void gen_service(Gen *g, uint16_t *port, uint8_t *proto) {
        unsigned x = rng_below(&g->rng, 1000);

        if (x < 450) {
                *port = 443;
                *proto = 6;
        } else if (x < 600) {
                *port = 80;
                *proto = 6;
        } else if (x < 720) {
                *port = 53;
                *proto = 17;
        } else if (x < 740) {
                *port = 123;
                *proto = 17;
        } else if (x < 770) {
                *port = 22;
                *proto = 6;
        } else if (x < 800) {
                *port = 8080;
                *proto = 6;
        } else if (x < 820) {
                *port = 3306;
                *proto = 6;
        } else if (x < 840) {
                *port = 993;
                *proto = 6;
        } else if (x < 850) {
                *port = 443;
                *proto = 17;            /* QUIC */
        } else {
                *port = (uint16_t) (1024 + rng_below(&g->rng, 64512));
                *proto = rng_below(&g->rng, 10) < 7 ? 6 : 17;
        }
}

static void gen_record(Gen *g, FlowRecord *r) {
        uint64_t arrival = T0_MS + g->i * HOUR_MS / g->flows;
        unsigned kind = rng_below(&g->rng, 100);
        uint16_t sport = (uint16_t) (32768 + rng_below(&g->rng, 28232)), dport;
        uint8_t proto;

        memset(r, 0, sizeof(*r));
        gen_service(g, &dport, &proto);
        r->family = 4;
        if (kind < 8) {
                /* IPv6 client to server */
                r->family = 6;
                v6_host(r->src_addr, zipf(&g->rng, 16), true);
                v6_host(r->dst_addr, zipf(&g->rng, 16), false);
        } else if (kind < 65) {
                /* internal client to external server */
                internal_host(r->src_addr, zipf(&g->rng, 18));
                external_host(r->dst_addr, zipf(&g->rng, 19));
        } else if (kind < 92) {
                /* the answers: external server to internal client */
                external_host(r->src_addr, zipf(&g->rng, 19));
                internal_host(r->dst_addr, zipf(&g->rng, 18));
                uint16_t t = sport;
                sport = dport;
                dport = t;
        } else {
                internal_host(r->src_addr, zipf(&g->rng, 18));
                internal_host(r->dst_addr, zipf(&g->rng, 18));
        }
        unsigned odd = rng_below(&g->rng, 1000);
        if (odd < 10) {
                proto = 1;              /* ICMP */
                sport = 0;
                dport = (uint16_t) (rng_below(&g->rng, 2) ? 0x0800 : 0x0000);
        } else if (odd < 12) {
                proto = 47;             /* GRE */
                sport = dport = 0;
        } else if (odd < 15) {
                proto = 50;             /* ESP */
                sport = dport = 0;
        }
        r->proto = proto;
        r->src_port = sport;
        r->dst_port = dport;

        unsigned e = (unsigned) (g->i % 4096 < 4000 ? (g->i >> 12) % 4 : rng_below(&g->rng, 4));
        r->exporter_family = 4;
        set_v4(r->exporter_addr, 10, 255, 0, (uint8_t) (1 + e));
        r->odid = e;
        r->template_id = 256;

        /* Exported up to a minute after the flow ended (skewed to short delays). */
        uint64_t delay = (uint64_t) (60000.0 * rng_unit(&g->rng) * rng_unit(&g->rng));
        /* Durations: a geometric number of doublings of one second, up to five minutes. */
        unsigned dbl = MIN((unsigned) __builtin_ctzll(rng_next(&g->rng) | (1ull << 63)), 9u);
        uint64_t dur = MIN((uint64_t) 300000, (uint64_t) rng_below(&g->rng, 1000u << dbl));
        r->end_ms = arrival - delay;
        r->start_ms = r->end_ms - dur;
        r->packets = 1 + rng_below(&g->rng, 200);
        r->octets = r->packets * (40 + rng_below(&g->rng, 1460));
        r->tcp_flags = proto == 6 ? 0x1b : 0;
        r->direction = FLOW_DIRECTION_UNKNOWN;
        g->i++;
}

static void filter_freep(FlowFilter **f) {
        (void) flow_filter_free(*f);
}

/* --- timing --- */

static uint64_t now_ns(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *v, size_t n, double p) {
        size_t i;

        if (n == 0)
                return 0;
        qsort(v, n, sizeof(*v), cmp_u64);
        i = (size_t) (p * (double) n);
        if ((double) i < p * (double) n)
                i++;            /* ceil() without libm */
        i = i == 0 ? 0 : MIN(i - 1, n - 1);
        return (double) v[i] / 1e6;
}

/* --- ingest thread --- */

typedef struct Ingest {
        FlowStore *store;
        Gen *gen;
        uint64_t rate;
        volatile int stop;              /* __atomic builtins */
        uint64_t appended;
        uint64_t elapsed_ns;
        uint64_t max_append_ns;
} Ingest;

static void *ingest_run(void *userdata) {
        Ingest *in = userdata;
        FlowRecord *buf = malloc(sizeof(FlowRecord) * BATCH);
        uint64_t start = now_ns(), tick = start;
        uint64_t period = in->rate ? (uint64_t) BATCH * 1000000000u / in->rate : 0;

        if (!buf)
                return NULL;
        while (!__atomic_load_n(&in->stop, __ATOMIC_RELAXED)) {
                uint64_t t;

                for (unsigned i = 0; i < BATCH; i++)
                        gen_record(in->gen, &buf[i]);
                t = now_ns();
                flow_store_append(in->store, buf, BATCH);
                t = now_ns() - t;
                in->max_append_ns = MAX(in->max_append_ns, t);
                in->appended += BATCH;

                tick += period;
                if (tick > now_ns()) {
                        struct timespec ts = { .tv_sec = (time_t) (tick / 1000000000u),
                                               .tv_nsec = (long) (tick % 1000000000u) };
                        (void) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                }
        }
        in->elapsed_ns = now_ns() - start;
        free(buf);
        return NULL;
}

/* --- queries --- */

enum { KIND_SELECTIVE, KIND_PROTO, KIND_CIDR, KIND_NEWEST, _KIND_MAX };
static const char *const kind_names[_KIND_MAX] = { "selective", "proto", "cidr", "newest" };

typedef struct KindStats {
        uint64_t *lat_ns;
        size_t n;
        uint64_t scanned_sum, scanned_max, skipped_sum, segments_sum, results_sum, truncated;
} KindStats;

static void usage(const char *argv0) {
        fprintf(stderr, "usage: %s [--flows N] [--queries N] [--rate RECORDS_PER_S] [--seed N]\n",
                argv0);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "flows", required_argument, NULL, 'f' },
                { "queries", required_argument, NULL, 'q' },
                { "rate", required_argument, NULL, 'r' },
                { "seed", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        uint64_t flows = 10000000, queries = 200, rate = 200000, seed = 42;
        _cleanup_(flow_store_freep) FlowStore *store = NULL;
        KindStats ks[_KIND_MAX] = {};
        FlowStoreStats st;
        Gen gen, qgen;
        Ingest in = {};
        pthread_t thread;
        FlowRecord *buf;
        uint64_t fill_ns = 0, t;
        long rss_pages = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                char *end;
                unsigned long long v;

                if (c == 'h' || c == '?') {
                        usage(argv[0]);
                        return c == 'h' ? 0 : 2;
                }
                errno = 0;
                v = strtoull(optarg, &end, 10);
                if (errno != 0 || *end != '\0' || end == optarg) {
                        usage(argv[0]);
                        return 2;
                }
                switch (c) {
                case 'f':
                        flows = v;
                        break;
                case 'q':
                        queries = v;
                        break;
                case 'r':
                        rate = v;
                        break;
                case 's':
                        seed = v;
                        break;
                }
        }
        if (flows < 1000 || queries == 0) {
                usage(argv[0]);
                return 2;
        }

        /* Room for every filled flow; the ingest during queries then recycles segments. */
        r = flow_store_new(&store, &(FlowStoreConfig) {
                .max_flows = flows + FLOW_STORE_DEFAULT_SEGMENT_FLOWS,
        });
        if (r < 0) {
                fprintf(stderr, "flow_store_new: %s\n", strerror(-r));
                return 1;
        }

        /* Fill: only the append calls are timed. */
        gen = (Gen) { .rng = seed * 2 + 1, .flows = flows };
        buf = malloc(sizeof(FlowRecord) * BATCH);
        if (!buf)
                return 1;
        for (uint64_t done = 0; done < flows;) {
                unsigned n = (unsigned) MIN((uint64_t) BATCH, flows - done);
                for (unsigned i = 0; i < n; i++)
                        gen_record(&gen, &buf[i]);
                t = now_ns();
                flow_store_append(store, buf, n);
                fill_ns += now_ns() - t;
                done += n;
        }
        free(buf);
        flow_store_get_stats(store, &st);
        printf("fill: %" PRIu64 " flows in %.2f s of appends = %.0f records/s; "
               "%" PRIu64 " stored in %" PRIu32 " segments of %" PRIu32 "\n",
               flows, (double) fill_ns / 1e9, (double) flows * 1e9 / (double) fill_ns,
               st.records, st.segments, st.segment_flows);

        for (unsigned k = 0; k < _KIND_MAX; k++) {
                ks[k].lat_ns = calloc(queries, sizeof(uint64_t));
                if (!ks[k].lat_ns)
                        return 1;
        }

        in = (Ingest) { .store = store, .gen = &gen, .rate = rate };
        if (rate > 0 && pthread_create(&thread, NULL, ingest_run, &in) != 0)
                return 1;

        qgen = (Gen) { .rng = seed * 2 + 12345, .flows = flows };
        for (uint64_t i = 0; i < queries; i++) {
                unsigned kind = (unsigned) (i % _KIND_MAX);
                _cleanup_(filter_freep) FlowFilter *f = NULL;
                FlowStoreQuery q = { .to_ms = UINT64_MAX, .limit = 100 };
                FlowStoreResult res;
                char expr[128], *err = NULL;
                uint8_t a[16];

                flow_store_get_stats(store, &st);
                expr[0] = '\0';
                switch (kind) {
                case KIND_SELECTIVE:
                        internal_host(a, zipf(&qgen.rng, 18));
                        (void) snprintf(expr, sizeof(expr),
                                        "src_addr == %u.%u.%u.%u and dst_port == 443", a[12],
                                        a[13], a[14], a[15]);
                        q.from_ms = st.newest_end_ms - HOUR_MS;
                        break;
                case KIND_PROTO: {
                        static const char *const protos[] = { "udp", "icmp", "47" };
                        (void) snprintf(expr, sizeof(expr), "proto == %s",
                                        protos[(i / _KIND_MAX) % ELEMENTSOF(protos)]);
                        q.from_ms = st.newest_end_ms - 5 * 60000;
                        break;
                }
                case KIND_CIDR:
                        internal_host(a, zipf(&qgen.rng, 18));
                        (void) snprintf(expr, sizeof(expr), "dst_addr in %u.%u.%u.0/24", a[12],
                                        a[13], a[14]);
                        q.from_ms = st.newest_end_ms - HOUR_MS;
                        break;
                default:
                        break;
                }
                r = flow_filter_compile(expr, &f, &err);
                if (r < 0) {
                        fprintf(stderr, "filter '%s': %s\n", expr, err ? err : strerror(-r));
                        free(err);
                        return 1;
                }
                q.filter = f;

                t = now_ns();
                r = flow_store_query(store, &q, &res);
                t = now_ns() - t;
                if (r < 0) {
                        fprintf(stderr, "query: %s\n", strerror(-r));
                        return 1;
                }
                KindStats *k = &ks[kind];
                k->lat_ns[k->n++] = t;
                k->scanned_sum += res.scanned;
                k->scanned_max = MAX(k->scanned_max, res.scanned);
                k->skipped_sum += res.segments_skipped;
                k->segments_sum += res.segments_skipped + res.segments_scanned;
                k->results_sum += res.n;
                k->truncated += res.truncated;
                flow_store_result_clear(&res);
        }

        __atomic_store_n(&in.stop, 1, __ATOMIC_RELAXED);
        if (rate > 0)
                (void) pthread_join(thread, NULL);

        flow_store_get_stats(store, &st);
        {
                FILE *fp = fopen("/proc/self/statm", "re");
                if (fp) {
                        long size_pages;
                        if (fscanf(fp, "%ld %ld", &size_pages, &rss_pages) != 2)
                                rss_pages = 0;
                        fclose(fp);
                }
        }

        double sel_p50 = 0, sel_p99 = 0, all_p99 = 0;
        for (unsigned kind = 0; kind < _KIND_MAX; kind++) {
                KindStats *k = &ks[kind];
                double p50, p99, max;

                if (k->n == 0)
                        continue;
                p50 = pct_ms(k->lat_ns, k->n, 0.50);
                p99 = pct_ms(k->lat_ns, k->n, 0.99);
                max = pct_ms(k->lat_ns, k->n, 1.0);
                printf("query %-9s n=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
                       "scanned_mean=%.0f scanned_max=%" PRIu64 " segments_skipped_mean=%.1f/%.1f "
                       "results_mean=%.1f truncated=%" PRIu64 "\n",
                       kind_names[kind], k->n, p50, p99, max,
                       (double) k->scanned_sum / (double) k->n, k->scanned_max,
                       (double) k->skipped_sum / (double) k->n,
                       (double) k->segments_sum / (double) k->n,
                       (double) k->results_sum / (double) k->n, k->truncated);
                if (kind == KIND_SELECTIVE) {
                        sel_p50 = p50;
                        sel_p99 = p99;
                }
                all_p99 = MAX(all_p99, p99);
        }
        if (rate > 0 && in.elapsed_ns > 0)
                printf("ingest: %" PRIu64 " records in %.2f s = %.0f records/s during queries, "
                       "longest append of %u records %.3f ms\n",
                       in.appended, (double) in.elapsed_ns / 1e9,
                       (double) in.appended * 1e9 / (double) in.elapsed_ns, BATCH,
                       (double) in.max_append_ns / 1e6);
        printf("memory: store %" PRIu64 " bytes (%.1f per record of capacity %" PRIu64 "), "
               "rss %ld bytes; %" PRIu64 " stored, %" PRIu64 " overwritten\n",
               st.memory_bytes, (double) st.memory_bytes / (double) st.capacity, st.capacity,
               rss_pages * sysconf(_SC_PAGESIZE), st.records, st.overwritten);
        printf("store flows=%" PRIu64 " query_p50_ms=%.3f query_p99_ms=%.3f "
               "fill_records_per_s=%.0f all_kinds_p99_ms=%.3f memory_bytes=%" PRIu64 "\n",
               flows, sel_p50, sel_p99, (double) flows * 1e9 / (double) fill_ns, all_p99,
               st.memory_bytes);

        for (unsigned k = 0; k < _KIND_MAX; k++)
                free(ks[k].lat_ns);
        return 0;
}
