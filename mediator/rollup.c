/* SPDX-License-Identifier: MIT */
/*
 * rollup.c - per-minute totals and top keys (see rollup.h for the model and memory bound).
 *
 * Minutes live in a ring of horizon_min + 6 slots indexed by minute % size; a slot is reused
 * only after its previous minute expired (the valid window, horizon minutes back and five
 * ahead, is shorter than the ring). Per dimension an entry is 24 bytes of sums (octets,
 * packets, flows) followed by the key encoded so that memcmp() gives the tie-break order,
 * padded to 8 bytes. An open minute holds its entries densely, in insertion order, behind an
 * open-addressing index of 8-byte slots (Table); a sealed minute holds the kept entries in an
 * array sorted by key (binary search for late records, no index). A query aggregates the
 * window's entries of one dimension into a Table of its own.
 *
 * Invariants: for every minute and dimension, sum(entries) + other == total; a stored key's
 * sums are complete (a key is stored at its first record in the minute or never, and once
 * moved to `other` it is never stored again, except into a still exact sealed minute, where
 * it cannot have been seen before).
 *
 * Locking: `write_lock` serializes the writer side (rollup_add/rollup_tick). Everything the
 * queries read is modified only with `lock` held as well. Because there is a single writer,
 * it may read its own data without `lock`: sealing (the expensive part) reads an open
 * minute's tables unlocked and takes `lock` only to swap the result in, and memory is freed
 * after `lock` is released.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "macro.h"
#include "rollup.h"

#define MINUTE_MS 60000ull
#define FUTURE_MINUTES 5u               /* ROLLUP_FUTURE_MAX_MS in minutes */
#define RING_EXTRA (FUTURE_MINUTES + 1u)
#define ADD_CHUNK 256u                  /* records per hold of the lock in rollup_add() */
#define SUMS_SIZE 24u
#define KEY_MAX 33u
#define KEY_BUF 40u                     /* KEY_MAX rounded up to whole 8-byte words */
#define TABLE_MIN_CAP 16u
#define EXPORTER_KEY_SIZE 21u
#define EXPORTER_KEY_BUF 24u

_Static_assert(ROLLUP_FUTURE_MAX_MS == FUTURE_MINUTES * MINUTE_MS, "future window in minutes");
_Static_assert(ROLLUP_METRIC_OCTETS == 0 && ROLLUP_METRIC_PACKETS == 1 &&
               ROLLUP_METRIC_FLOWS == 2, "metrics index the sums of an entry");

/* Keys are hashed a word at a time: a key buffer, and the bytes after the key in an entry
 * (the stride leaves room for that), are zero up to the next multiple of 8. */
typedef struct DimSpec {
        uint8_t klen;           /* encoded key length */
        uint8_t stride;         /* entry size: SUMS_SIZE + klen rounded up to 8 */
        uint32_t keyspace;      /* distinct keys possible */
} DimSpec;

static const DimSpec dim_spec[_ROLLUP_DIM_MAX] = {
        [ROLLUP_DIM_SRC_ADDR] = { 17, 48, UINT32_MAX },         /* address, family */
        [ROLLUP_DIM_DST_ADDR] = { 17, 48, UINT32_MAX },
        [ROLLUP_DIM_SRC_PORT] = { 2, 32, 65536 },               /* big-endian port */
        [ROLLUP_DIM_DST_PORT] = { 2, 32, 65536 },
        [ROLLUP_DIM_PROTO] = { 1, 32, 256 },
        [ROLLUP_DIM_EXPORTER] = { 21, 48, UINT32_MAX },         /* address, family, BE odid */
        [ROLLUP_DIM_PAIR] = { 33, 64, UINT32_MAX },             /* src, dst, family */
};

/* Entries are stored densely in insertion order; the open-addressing index (linear probing)
 * holds the key's 32-bit hash and the entry number, so probes and index growth touch 8 bytes
 * per slot and never the keys, except to confirm a hash match. */
typedef struct Table {
        uint64_t *index;        /* cap slots: 0 when empty, else hash << 32 | (entry number + 1) */
        uint8_t *ents;          /* n (of alloc) entries of the dimension's stride */
        uint32_t cap;           /* power of two, 0 before the first insert */
        uint32_t n, alloc;
} Table;

typedef struct MinuteDim {
        Table live;             /* open minute: exact per-key sums */
        uint8_t *kept;          /* sealed minute: kept entries sorted by key */
        uint32_t n_kept, alloc_kept;
        uint64_t other[3];
        bool inexact;
} MinuteDim;

typedef struct Minute {
        uint64_t index;         /* end_ms / 60000 */
        bool used;
        bool sealed;
        uint64_t total[3];
        MinuteDim dims[_ROLLUP_DIM_MAX];
} Minute;

typedef struct Exporter {
        struct Exporter *next;
        RollupExporter e;
} Exporter;

struct Rollup {
        RollupConfig cfg;
        uint64_t seed;                  /* hash seed, so peers cannot aim at one bucket */
        uint64_t rng;                   /* writer: pivots of the top-k selection */
        pthread_mutex_t write_lock;
        pthread_mutex_t lock;

        /* Written by the writer with `lock` held. */
        uint64_t clock_ms;              /* largest now_ms seen */
        uint64_t first_minute;          /* minutes below are expired */
        uint64_t seal_next;             /* minutes below are sealed (or expired, or empty) */
        uint64_t swept_minute;          /* last clock minute the exporters were swept */
        Minute *ring;
        uint32_t ring_size;
        Exporter **buckets;
        uint32_t n_buckets;             /* power of two */
        uint32_t n_exporters;

        uint64_t records, stale, future, overflow, evicted, late_other, nomem;
        uint64_t exporters_dropped;
};

/* ---- keys and entries ---- */

static inline uint64_t *ent_sums(uint8_t *e) {
        return (uint64_t *) (void *) e;
}

static inline const uint64_t *ent_csums(const uint8_t *e) {
        return (const uint64_t *) (const void *) e;
}

static inline void sums_add(uint64_t dst[3], const uint64_t s[3]) {
        dst[0] += s[0];
        dst[1] += s[1];
        dst[2] += s[2];
}

static void put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static void encode_record_key(RollupDim d, const FlowRecord *rec, uint8_t *k) {
        switch (d) {
        case ROLLUP_DIM_SRC_ADDR:
                memcpy(k, rec->src_addr, 16);
                k[16] = rec->family;
                break;
        case ROLLUP_DIM_DST_ADDR:
                memcpy(k, rec->dst_addr, 16);
                k[16] = rec->family;
                break;
        case ROLLUP_DIM_SRC_PORT:
                put_be16(k, rec->src_port);
                break;
        case ROLLUP_DIM_DST_PORT:
                put_be16(k, rec->dst_port);
                break;
        case ROLLUP_DIM_PROTO:
                k[0] = rec->proto;
                break;
        case ROLLUP_DIM_EXPORTER:
                memcpy(k, rec->exporter_addr, 16);
                k[16] = rec->exporter_family;
                put_be32(k + 17, rec->odid);
                break;
        case ROLLUP_DIM_PAIR:
                memcpy(k, rec->src_addr, 16);
                memcpy(k + 16, rec->dst_addr, 16);
                k[32] = rec->family;
                break;
        default:
                assert(false);
        }
}

static void encode_key(RollupDim d, const RollupKey *key, uint8_t *k) {
        switch (d) {
        case ROLLUP_DIM_SRC_ADDR:
        case ROLLUP_DIM_DST_ADDR:
                memcpy(k, key->addr, 16);
                k[16] = key->family;
                break;
        case ROLLUP_DIM_SRC_PORT:
        case ROLLUP_DIM_DST_PORT:
                put_be16(k, key->port);
                break;
        case ROLLUP_DIM_PROTO:
                k[0] = key->proto;
                break;
        case ROLLUP_DIM_EXPORTER:
                memcpy(k, key->addr, 16);
                k[16] = key->family;
                put_be32(k + 17, key->odid);
                break;
        case ROLLUP_DIM_PAIR:
                memcpy(k, key->addr, 16);
                memcpy(k + 16, key->addr2, 16);
                k[32] = key->family;
                break;
        default:
                assert(false);
        }
}

static void decode_key(RollupDim d, const uint8_t *k, RollupKey *ret) {
        *ret = (RollupKey) {};
        switch (d) {
        case ROLLUP_DIM_SRC_ADDR:
        case ROLLUP_DIM_DST_ADDR:
                memcpy(ret->addr, k, 16);
                ret->family = k[16];
                break;
        case ROLLUP_DIM_SRC_PORT:
        case ROLLUP_DIM_DST_PORT:
                ret->port = (uint16_t) (k[0] << 8 | k[1]);
                break;
        case ROLLUP_DIM_PROTO:
                ret->proto = k[0];
                break;
        case ROLLUP_DIM_EXPORTER:
                memcpy(ret->addr, k, 16);
                ret->family = k[16];
                ret->odid = (uint32_t) k[17] << 24 | (uint32_t) k[18] << 16 |
                            (uint32_t) k[19] << 8 | k[20];
                break;
        case ROLLUP_DIM_PAIR:
                memcpy(ret->addr, k, 16);
                memcpy(ret->addr2, k + 16, 16);
                ret->family = k[32];
                break;
        default:
                assert(false);
        }
}

int rollup_key_compare(RollupDim dim, const RollupKey *a, const RollupKey *b) {
        uint8_t ka[KEY_BUF], kb[KEY_BUF];

        assert(dim >= 0 && dim < _ROLLUP_DIM_MAX);
        encode_key(dim, a, ka);
        encode_key(dim, b, kb);
        return memcmp(ka, kb, dim_spec[dim].klen);
}

static uint64_t mix64(uint64_t x) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ull;
        x ^= x >> 33;
        return x;
}

/* Seeded hash of a key of @len bytes followed by zeros up to a multiple of 8. */
static uint64_t key_hash(uint64_t seed, const uint8_t *k, size_t len) {
        uint64_t h = seed ^ len, w;

        for (size_t i = 0; i < len; i += 8) {
                memcpy(&w, k + i, 8);
                h = (h ^ w) * 0x9e3779b97f4a7c15ull;
                h ^= h >> 32;
        }
        return mix64(h);
}

static uint64_t rng_next(uint64_t *s) {
        /* xorshift64*; only spreads quickselect pivots */
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 0x2545f4914f6cdd1dull;
}

/* Rank order: @metric descending, then key ascending. Keys are unique within a table, so
 * two different entries never compare equal. */
static int rank_cmp(const uint8_t *a, const uint8_t *b, unsigned metric, size_t klen) {
        uint64_t va = ent_csums(a)[metric], vb = ent_csums(b)[metric];

        if (va != vb)
                return va > vb ? -1 : 1;
        return memcmp(a + SUMS_SIZE, b + SUMS_SIZE, klen);
}

typedef struct RankCtx {
        unsigned metric;
        size_t klen;
} RankCtx;

static int rank_cmp_ptr(const void *a, const void *b, void *userdata) {
        const RankCtx *c = userdata;
        return rank_cmp(*(uint8_t *const *) a, *(uint8_t *const *) b, c->metric, c->klen);
}

static int key_cmp_entry(const void *a, const void *b, void *userdata) {
        return memcmp((const uint8_t *) a + SUMS_SIZE, (const uint8_t *) b + SUMS_SIZE,
                      *(const size_t *) userdata);
}

/* Restores the heap a[0..n) (the worst-ranked entry at the root) below @i. */
static void heap_sift(uint8_t **a, size_t n, size_t i, const RankCtx *c) {
        for (;;) {
                size_t w = i, l = 2 * i + 1, r = l + 1;
                uint8_t *t;

                if (l < n && rank_cmp(a[l], a[w], c->metric, c->klen) > 0)
                        w = l;
                if (r < n && rank_cmp(a[r], a[w], c->metric, c->klen) > 0)
                        w = r;
                if (w == i)
                        return;
                t = a[i];
                a[i] = a[w];
                a[w] = t;
                i = w;
        }
}

/* Reorders @a so that a[0..k) are the @k best entries by rank_cmp (in no particular order).
 * Small k (a query's limit): one pass against a heap of the k best so far, about one
 * comparison per entry. Otherwise quickselect with random pivots: expected linear time
 * whatever the input order. */
static void select_best(uint8_t **a, size_t n, size_t k, const RankCtx *c, uint64_t *rng) {
        size_t lo = 0, hi = n;

        if (k >= n || k == 0)
                return;
        if (k <= 256) {
                for (size_t i = k / 2; i-- > 0;)
                        heap_sift(a, k, i, c);
                for (size_t j = k; j < n; j++)
                        if (rank_cmp(a[j], a[0], c->metric, c->klen) < 0) {
                                uint8_t *t = a[0];

                                a[0] = a[j];
                                a[j] = t;
                                heap_sift(a, k, 0, c);
                        }
                return;
        }
        while (hi - lo > 1) {
                size_t p = lo + (size_t) (rng_next(rng) % (hi - lo)), i = lo;
                uint8_t *pivot = a[p], *t;

                a[p] = a[hi - 1];
                a[hi - 1] = pivot;
                for (size_t j = lo; j < hi - 1; j++)
                        if (rank_cmp(a[j], pivot, c->metric, c->klen) < 0) {
                                t = a[i];
                                a[i] = a[j];
                                a[j] = t;
                                i++;
                        }
                a[hi - 1] = a[i];
                a[i] = pivot;
                /* a[0..i) rank before the pivot (now at a[i]), a(i..n) after it */
                if (i == k || i + 1 == k)
                        return;
                if (k < i)
                        hi = i;
                else
                        lo = i + 1;
        }
}

/* ---- hash tables ---- */

static uint32_t table_cap_for(uint64_t keys) {
        uint64_t need = (keys * 4 + 2) / 3 + 1, cap = TABLE_MIN_CAP;

        while (cap < need)
                cap <<= 1;
        return (uint32_t) MIN(cap, (uint64_t) 1 << 31);
}

static void table_done(Table *t) {
        free(t->index);
        free(t->ents);
        *t = (Table) {};
}

static inline uint8_t *table_ent(const Table *t, const DimSpec *ds, uint32_t i) {
        return t->ents + (size_t) i * ds->stride;
}

/* The index slot holding @key, or the empty slot where it would go. Needs cap > n. */
static uint32_t table_slot(const Table *t, const DimSpec *ds, uint32_t h, const uint8_t *key,
                           bool *ret_found) {
        uint32_t mask = t->cap - 1, i = h & mask;

        for (;; i = (i + 1) & mask) {
                uint64_t v = t->index[i];

                if (v == 0) {
                        *ret_found = false;
                        return i;
                }
                if ((uint32_t) (v >> 32) == h &&
                    memcmp(table_ent(t, ds, (uint32_t) v - 1) + SUMS_SIZE, key, ds->klen) == 0) {
                        *ret_found = true;
                        return i;
                }
        }
}

static int table_grow_index(Table *t, uint32_t cap) {
        uint64_t *index = calloc(cap, sizeof(*index));

        if (!index)
                return -ENOMEM;
        for (uint32_t i = 0; i < t->cap; i++) {
                uint64_t v = t->index[i];
                uint32_t j;

                if (v == 0)
                        continue;
                for (j = (uint32_t) (v >> 32) & (cap - 1); index[j] != 0; j = (j + 1) & (cap - 1))
                        ;
                index[j] = v;
        }
        free(t->index);
        t->index = index;
        t->cap = cap;
        return 0;
}

/* Sizes an empty table for @keys keys, so that filling it never rehashes. */
static int table_reserve(Table *t, const DimSpec *ds, uint32_t keys) {
        assert(t->n == 0);
        if (keys == 0)
                return 0;
        table_done(t);
        t->cap = table_cap_for(keys);
        t->index = calloc(t->cap, sizeof(*t->index));
        t->ents = malloc((size_t) keys * ds->stride);
        if (!t->index || !t->ents) {
                table_done(t);
                return -ENOMEM;
        }
        t->alloc = keys;
        return 0;
}

/* Adds @s to @key's entry, inserting the key while the table holds fewer than @max_keys.
 * Return: 1 when added, 0 when there is no room for a new key, -ENOMEM. */
static int table_add_hashed(Table *t, const DimSpec *ds, uint32_t h, const uint8_t *key,
                            const uint64_t s[3], uint32_t max_keys) {
        uint32_t i = 0;
        bool found = false;
        uint8_t *e;
        int r;

        if (t->cap > 0) {
                i = table_slot(t, ds, h, key, &found);
                if (found) {
                        sums_add(ent_sums(table_ent(t, ds, (uint32_t) t->index[i] - 1)), s);
                        return 1;
                }
        }
        if (t->n >= max_keys)
                return 0;
        if (t->n == t->alloc) {
                uint32_t a = (uint32_t) MIN(MAX(16ull, (uint64_t) t->alloc * 2), max_keys);

                e = realloc(t->ents, (size_t) a * ds->stride);
                if (!e)
                        return -ENOMEM;
                t->ents = e;
                t->alloc = a;
        }
        if ((uint64_t) (t->n + 1) * 4 > (uint64_t) t->cap * 3) {
                r = table_grow_index(t, t->cap ? t->cap * 2 : TABLE_MIN_CAP);
                if (r < 0)
                        return r;
                i = table_slot(t, ds, h, key, &found);
        }
        e = table_ent(t, ds, t->n);
        memset(e, 0, ds->stride);
        memcpy(ent_sums(e), s, SUMS_SIZE);
        memcpy(e + SUMS_SIZE, key, ds->klen);
        t->index[i] = (uint64_t) h << 32 | ++t->n;
        return 1;
}

#define AGG_BATCH 16u

/* table_add_hashed() for @count consecutive entries at @base, hashing a batch ahead and prefetching
 * its index slots: the index of a large window does not fit in the cache. Return: false when
 * a key found no room, or -ENOMEM. */
static int table_add_entries(Table *t, const DimSpec *ds, uint64_t seed, const uint8_t *base,
                             uint32_t count, uint32_t max_keys) {
        uint32_t h[AGG_BATCH];
        int ret = 1;

        for (uint32_t i = 0; i < count; i += AGG_BATCH) {
                uint32_t b = MIN(AGG_BATCH, count - i);

                for (uint32_t j = 0; j < b; j++) {
                        h[j] = (uint32_t) key_hash(seed, base + (size_t) (i + j) * ds->stride +
                                                                 SUMS_SIZE, ds->klen);
                        if (t->cap > 0)
                                __builtin_prefetch(&t->index[h[j] & (t->cap - 1)]);
                }
                for (uint32_t j = 0; j < b; j++) {
                        const uint8_t *e = base + (size_t) (i + j) * ds->stride;
                        int a = table_add_hashed(t, ds, h[j], e + SUMS_SIZE, ent_csums(e),
                                                 max_keys);

                        if (a < 0)
                                return a;
                        if (a == 0)
                                ret = 0;
                }
        }
        return ret;
}

/* ---- minutes ---- */

static void minute_release(Minute *m) {
        for (size_t d = 0; d < _ROLLUP_DIM_MAX; d++) {
                table_done(&m->dims[d].live);
                free(m->dims[d].kept);
        }
}

static Minute *minute_lookup(Rollup *r, uint64_t m) {
        Minute *slot = &r->ring[m % r->ring_size];
        return slot->used && slot->index == m ? slot : NULL;
}

/* Lock held. */
static Minute *minute_get(Rollup *r, uint64_t m) {
        Minute *slot = &r->ring[m % r->ring_size];

        if (slot->used && slot->index == m)
                return slot;
        /* advance() expired the previous occupant already; this only keeps the ring sound */
        if (slot->used)
                minute_release(slot);
        *slot = (Minute) {
                .index = m,
                .used = true,
                .sealed = m < r->seal_next,
        };
        return slot;
}

/* Position of @key in a sealed dimension's sorted array. */
static size_t kept_search(const MinuteDim *md, const DimSpec *ds, const uint8_t *key,
                          bool *ret_found) {
        size_t lo = 0, hi = md->n_kept;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = memcmp(md->kept + mid * ds->stride + SUMS_SIZE, key, ds->klen);

                if (c == 0) {
                        *ret_found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = false;
        return lo;
}

/* Lock held. A late record for a sealed minute. */
static void sealed_add(Rollup *r, MinuteDim *md, const DimSpec *ds, const uint8_t *key,
                       const uint64_t s[3]) {
        bool found;
        size_t pos = kept_search(md, ds, key, &found);
        uint8_t *e;

        if (found) {
                sums_add(ent_sums(md->kept + pos * ds->stride), s);
                return;
        }
        /* Every key of an exact dimension is stored; while it holds fewer than top_k keys a
         * new one belongs to the kept set and the minute stays exact. */
        if (!md->inexact && md->n_kept < r->cfg.top_k) {
                if (md->n_kept == md->alloc_kept) {
                        uint32_t a = MIN(MAX(8u, md->alloc_kept * 2), r->cfg.top_k);
                        uint8_t *k = realloc(md->kept, (size_t) a * ds->stride);

                        if (!k) {
                                r->nomem++;
                                goto other;
                        }
                        md->kept = k;
                        md->alloc_kept = a;
                }
                e = md->kept + pos * ds->stride;
                memmove(e + ds->stride, e, (md->n_kept - pos) * ds->stride);
                memset(e, 0, ds->stride);
                memcpy(ent_sums(e), s, SUMS_SIZE);
                memcpy(e + SUMS_SIZE, key, ds->klen);
                md->n_kept++;
                return;
        }
        r->late_other++;
other:
        sums_add(md->other, s);
        md->inexact = true;
}

/* Lock held. */
static void live_add(Rollup *r, MinuteDim *md, const DimSpec *ds, uint32_t h,
                     const uint8_t *key, const uint64_t s[3]) {
        int k = table_add_hashed(&md->live, ds, h, key, s, r->cfg.live_max_keys);

        if (k > 0)
                return;
        if (k == 0)
                r->overflow++;
        else
                r->nomem++;
        sums_add(md->other, s);
        md->inexact = true;
}

/* ---- exporters ---- */

static void exporter_key(const uint8_t addr[16], uint8_t family, uint32_t odid, uint8_t *k) {
        memcpy(k, addr, 16);
        k[16] = family;
        put_be32(k + 17, odid);
}

/* Lock held. */
static void exporter_account(Rollup *r, const FlowRecord *rec, const uint64_t s[3],
                             uint64_t now_ms) {
        uint8_t k[EXPORTER_KEY_BUF] = {};
        Exporter **b, *x;

        exporter_key(rec->exporter_addr, rec->exporter_family, rec->odid, k);
        b = &r->buckets[key_hash(r->seed, k, EXPORTER_KEY_SIZE) & (r->n_buckets - 1)];
        for (x = *b; x; x = x->next)
                if (x->e.odid == rec->odid && x->e.family == rec->exporter_family &&
                    memcmp(x->e.addr, rec->exporter_addr, 16) == 0)
                        break;
        if (!x) {
                if (r->n_exporters >= r->cfg.max_exporters) {
                        r->exporters_dropped++;
                        return;
                }
                x = calloc(1, sizeof(*x));
                if (!x) {
                        r->exporters_dropped++;
                        return;
                }
                memcpy(x->e.addr, rec->exporter_addr, 16);
                x->e.family = rec->exporter_family;
                x->e.odid = rec->odid;
                x->e.first_seen_ms = now_ms;
                x->next = *b;
                *b = x;
                r->n_exporters++;
        }
        x->e.last_seen_ms = MAX(x->e.last_seen_ms, now_ms);
        x->e.octets += s[0];
        x->e.packets += s[1];
        x->e.flows += s[2];
}

/* Lock held. Drops exporters not seen within the horizon. */
static void exporters_sweep(Rollup *r) {
        uint64_t horizon_ms = (uint64_t) r->cfg.horizon_min * MINUTE_MS;

        for (uint32_t i = 0; i < r->n_buckets; i++)
                for (Exporter **p = &r->buckets[i]; *p;) {
                        Exporter *x = *p;

                        if (x->e.last_seen_ms + horizon_ms <= r->clock_ms) {
                                *p = x->next;
                                free(x);
                                r->n_exporters--;
                        } else
                                p = &x->next;
                }
}

/* ---- sealing and expiry (writer side) ---- */

typedef struct SealOut {
        uint8_t *kept;
        uint32_t n_kept;
        uint64_t moved[3];
        uint32_t n_moved;
        bool nomem;
} SealOut;

/* Computes the sealed form of one dimension's table without touching it (no lock needed:
 * only the writer modifies tables). */
static void seal_dim(Rollup *r, const DimSpec *ds, const Table *t, SealOut *out) {
        _cleanup_free_ uint8_t **ents = NULL;
        _cleanup_free_ uint8_t *mark = NULL;
        uint32_t n = t->n, top_k = r->cfg.top_k, j = 0;
        size_t klen = ds->klen;

        *out = (SealOut) {};
        if (n == 0)
                return;

        if (n > top_k) {
                ents = malloc(n * sizeof(*ents));
                mark = calloc(n, 1);
                if (!ents || !mark)
                        goto fail;
                for (uint32_t i = 0; i < n; i++)
                        ents[i] = table_ent(t, ds, i);
                /* the union of the top_k by each metric */
                for (unsigned m = 0; m < _ROLLUP_METRIC_MAX; m++) {
                        RankCtx c = { .metric = m, .klen = klen };

                        select_best(ents, n, top_k, &c, &r->rng);
                        for (uint32_t i = 0; i < top_k; i++)
                                mark[(size_t) (ents[i] - t->ents) / ds->stride] = 1;
                }
                for (uint32_t i = 0; i < n; i++)
                        out->n_kept += mark[i];
        } else
                out->n_kept = n;

        out->kept = malloc((size_t) out->n_kept * ds->stride);
        if (!out->kept)
                goto fail;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *e = table_ent(t, ds, i);

                if (!mark || mark[i])
                        memcpy(out->kept + (size_t) j++ * ds->stride, e, ds->stride);
                else {
                        sums_add(out->moved, ent_csums(e));
                        out->n_moved++;
                }
        }
        assert(j == out->n_kept);
        qsort_r(out->kept, j, ds->stride, key_cmp_entry, &klen);
        return;

fail:
        /* without memory for the kept set everything goes to `other`; totals stay exact */
        free(out->kept);
        *out = (SealOut) { .n_moved = n, .nomem = true };
        for (uint32_t i = 0; i < n; i++)
                sums_add(out->moved, ent_csums(table_ent(t, ds, i)));
}

static void seal_minute(Rollup *r, Minute *mn) {
        SealOut out[_ROLLUP_DIM_MAX];
        Table old[_ROLLUP_DIM_MAX];

        for (size_t d = 0; d < _ROLLUP_DIM_MAX; d++)
                seal_dim(r, &dim_spec[d], &mn->dims[d].live, &out[d]);

        pthread_mutex_lock(&r->lock);
        for (size_t d = 0; d < _ROLLUP_DIM_MAX; d++) {
                MinuteDim *md = &mn->dims[d];

                old[d] = md->live;
                md->live = (Table) {};
                md->kept = out[d].kept;
                md->n_kept = md->alloc_kept = out[d].n_kept;
                sums_add(md->other, out[d].moved);
                if (out[d].n_moved > 0)
                        md->inexact = true;
                r->evicted += out[d].n_moved;
                r->nomem += out[d].nomem;
        }
        mn->sealed = true;
        pthread_mutex_unlock(&r->lock);

        for (size_t d = 0; d < _ROLLUP_DIM_MAX; d++)
                table_done(&old[d]);
}

static void expire_slot(Rollup *r, Minute *slot) {
        Minute copy;

        pthread_mutex_lock(&r->lock);
        copy = *slot;
        *slot = (Minute) {};
        pthread_mutex_unlock(&r->lock);
        minute_release(&copy);
}

/* Writer side: moves the clock to @now_ms, expires, seals and sweeps. */
static void advance(Rollup *r, uint64_t now_ms) {
        uint64_t clock = MAX(r->clock_ms, now_ms), cm = clock / MINUTE_MS;
        uint64_t seal_ms = (uint64_t) r->cfg.seal_after_s * 1000, first, seal_next;

        first = cm + 1 >= r->cfg.horizon_min ? cm + 1 - r->cfg.horizon_min : 0;
        seal_next = clock >= seal_ms ? (clock - seal_ms) / MINUTE_MS : 0;

        pthread_mutex_lock(&r->lock);
        r->clock_ms = clock;
        pthread_mutex_unlock(&r->lock);

        if (first > r->first_minute) {
                if (first - r->first_minute >= r->ring_size) {
                        for (uint32_t i = 0; i < r->ring_size; i++)
                                if (r->ring[i].used && r->ring[i].index < first)
                                        expire_slot(r, &r->ring[i]);
                } else
                        for (uint64_t m = r->first_minute; m < first; m++) {
                                Minute *mn = minute_lookup(r, m);

                                if (mn)
                                        expire_slot(r, mn);
                        }
        }

        /* open minutes are never older than first (they would have expired just now) */
        for (uint64_t m = MAX(r->seal_next, first); m < seal_next; m++) {
                Minute *mn = minute_lookup(r, m);

                if (mn && !mn->sealed)
                        seal_minute(r, mn);
        }

        pthread_mutex_lock(&r->lock);
        r->first_minute = MAX(r->first_minute, first);
        r->seal_next = MAX(r->seal_next, seal_next);
        if (cm != r->swept_minute) {
                exporters_sweep(r);
                r->swept_minute = cm;
        }
        pthread_mutex_unlock(&r->lock);
}

/* Lock held. */
#define ADD_BATCH 64u                   /* records whose table slots are prefetched together */

/* Lock held. Accounts up to ADD_BATCH records. Open minutes' tables are far larger than the
 * cache when keys are many, so each dimension is done for the whole batch in three passes:
 * hash and prefetch the index slots, read them and prefetch the entries they point to, then
 * update. Each dimension still sees the records in order, so results equal one-by-one. */
static void add_batch(Rollup *r, const FlowRecord *recs, size_t n, uint64_t now_ms) {
        uint8_t keys[ADD_BATCH][KEY_BUF];
        uint64_t s[ADD_BATCH][3];
        uint32_t h[ADD_BATCH];
        Minute *mn[ADD_BATCH];

        assert(n <= ADD_BATCH);
        for (size_t j = 0; j < n; j++) {
                const FlowRecord *rec = &recs[j];
                uint64_t m;

                s[j][0] = rec->octets;
                s[j][1] = rec->packets;
                s[j][2] = rec->flows ? rec->flows : 1;
                r->records++;
                exporter_account(r, rec, s[j], now_ms);
                mn[j] = NULL;
                if (rec->end_ms > r->clock_ms && rec->end_ms - r->clock_ms > ROLLUP_FUTURE_MAX_MS) {
                        r->future++;
                        m = r->clock_ms / MINUTE_MS;
                } else {
                        m = rec->end_ms / MINUTE_MS;
                        if (m < r->first_minute) {
                                r->stale++;
                                continue;
                        }
                }
                mn[j] = minute_get(r, m);
                sums_add(mn[j]->total, s[j]);
        }
        for (size_t d = 0; d < _ROLLUP_DIM_MAX; d++) {
                const DimSpec *ds = &dim_spec[d];

                for (size_t j = 0; j < n; j++) {
                        const Table *t;
                        if (!mn[j])
                                continue;
                        memset(keys[j], 0, sizeof(keys[j]));
                        encode_record_key((RollupDim) d, &recs[j], keys[j]);
                        if (mn[j]->sealed)
                                continue;
                        t = &mn[j]->dims[d].live;
                        h[j] = (uint32_t) key_hash(r->seed, keys[j], ds->klen);
                        if (t->cap > 0)
                                __builtin_prefetch(&t->index[h[j] & (t->cap - 1)]);
                }
                for (size_t j = 0; j < n; j++) {
                        const Table *t;
                        uint64_t v;
                        if (!mn[j] || mn[j]->sealed)
                                continue;
                        t = &mn[j]->dims[d].live;
                        if (t->cap == 0)
                                continue;
                        v = t->index[h[j] & (t->cap - 1)];
                        if (v != 0)
                                __builtin_prefetch(table_ent(t, ds, (uint32_t) v - 1));
                }
                for (size_t j = 0; j < n; j++) {
                        if (!mn[j])
                                continue;
                        if (mn[j]->sealed)
                                sealed_add(r, &mn[j]->dims[d], ds, keys[j], s[j]);
                        else
                                live_add(r, &mn[j]->dims[d], ds, h[j], keys[j], s[j]);
                }
        }
}

void rollup_add(Rollup *r, const FlowRecord *recs, size_t n, uint64_t now_ms) {
        assert(r);
        assert(recs || n == 0);

        pthread_mutex_lock(&r->write_lock);
        advance(r, now_ms);
        for (size_t i = 0; i < n; i += ADD_CHUNK) {
                size_t end = MIN(n, i + ADD_CHUNK);

                pthread_mutex_lock(&r->lock);
                for (size_t j = i; j < end; j += ADD_BATCH)
                        add_batch(r, &recs[j], MIN(ADD_BATCH, end - j), now_ms);
                pthread_mutex_unlock(&r->lock);
        }
        pthread_mutex_unlock(&r->write_lock);
}

void rollup_tick(Rollup *r, uint64_t now_ms) {
        assert(r);

        pthread_mutex_lock(&r->write_lock);
        advance(r, now_ms);
        pthread_mutex_unlock(&r->write_lock);
}

/* ---- queries ---- */

/* Lock held. The minutes a window [m_lo, m_hi] can find data in. */
static bool window_clip(Rollup *r, uint64_t m_lo, uint64_t m_hi, uint64_t *ret_lo,
                        uint64_t *ret_hi) {
        uint64_t lo = MAX(m_lo, r->first_minute);
        uint64_t hi = MIN(m_hi, r->clock_ms / MINUTE_MS + FUTURE_MINUTES);

        if (lo > hi)
                return false;
        *ret_lo = lo;
        *ret_hi = hi;
        return true;
}

int rollup_top(Rollup *r, RollupDim dim, RollupMetric metric, uint64_t from_ms, uint64_t to_ms,
               size_t limit, RollupTopResult *ret) {
        _cleanup_free_ uint8_t **ents = NULL;
        _cleanup_free_ RollupTopEntry *entries = NULL;
        uint64_t totals[3] = {}, returned[3] = {}, lo = 0, hi = 0, rng;
        uint32_t covered = 0;
        uint64_t expect = 0;
        bool exact = true, any;
        const DimSpec *ds;
        Table q = {};
        size_t k;
        int err = 0;

        assert(r);
        assert(ret);
        if (dim < 0 || dim >= _ROLLUP_DIM_MAX || metric < 0 || metric >= _ROLLUP_METRIC_MAX ||
            from_ms >= to_ms)
                return -EINVAL;
        ds = &dim_spec[dim];

        pthread_mutex_lock(&r->lock);
        any = window_clip(r, from_ms / MINUTE_MS, (to_ms - 1) / MINUTE_MS, &lo, &hi);
        rng = r->seed | 1;
        for (uint64_t m = lo; any && m <= hi; m++) {
                const Minute *mn = minute_lookup(r, m);

                if (mn)
                        expect += mn->sealed ? mn->dims[dim].n_kept : mn->dims[dim].live.n;
        }
        pthread_mutex_unlock(&r->lock);

        /* room for every entry of the window (an upper bound on its distinct keys): no
         * rehash while aggregating */
        err = table_reserve(&q, ds, (uint32_t) MIN(expect, (uint64_t) ROLLUP_QUERY_MAX_KEYS));
        if (err < 0)
                return err;

        /* one hold of the lock per minute: the writer waits for one minute's worth at most;
         * each minute is read consistently, so entries + other == totals still holds */
        for (uint64_t m = lo; any && m <= hi && err >= 0; m++) {
                const MinuteDim *md;
                const uint8_t *base;
                uint32_t count;
                Minute *mn;

                pthread_mutex_lock(&r->lock);
                mn = minute_lookup(r, m);
                if (!mn) {
                        pthread_mutex_unlock(&r->lock);
                        continue;
                }
                covered++;
                sums_add(totals, mn->total);
                md = &mn->dims[dim];
                if (md->inexact)
                        exact = false;
                base = mn->sealed ? md->kept : md->live.ents;
                count = mn->sealed ? md->n_kept : md->live.n;
                err = table_add_entries(&q, ds, r->seed, base, count, ROLLUP_QUERY_MAX_KEYS);
                pthread_mutex_unlock(&r->lock);
                if (err == 0)
                        exact = false;
        }
        if (err < 0) {
                table_done(&q);
                return err;
        }

        k = MIN(limit, (size_t) q.n);
        if (k > 0) {
                RankCtx c = { .metric = (unsigned) metric, .klen = ds->klen };
                size_t n = 0;

                ents = malloc(q.n * sizeof(*ents));
                entries = calloc(k, sizeof(*entries));
                if (!ents || !entries) {
                        table_done(&q);
                        return -ENOMEM;
                }
                for (uint32_t i = 0; i < q.n; i++)
                        ents[n++] = table_ent(&q, ds, i);
                select_best(ents, n, k, &c, &rng);
                qsort_r(ents, k, sizeof(*ents), rank_cmp_ptr, &c);
                for (size_t i = 0; i < k; i++) {
                        const uint64_t *s = ent_csums(ents[i]);

                        decode_key(dim, ents[i] + SUMS_SIZE, &entries[i].key);
                        entries[i].sums = (RollupSums) { s[0], s[1], s[2] };
                        sums_add(returned, s);
                }
        }
        table_done(&q);

        *ret = (RollupTopResult) {
                .dim = dim,
                .metric = metric,
                .start_ms = from_ms / MINUTE_MS * MINUTE_MS,
                .end_ms = (to_ms - 1) / MINUTE_MS >= UINT64_MAX / MINUTE_MS - 1
                                  ? UINT64_MAX
                                  : ((to_ms - 1) / MINUTE_MS + 1) * MINUTE_MS,
                .entries = TAKE_PTR(entries),
                .n_entries = k,
                .totals = { totals[0], totals[1], totals[2] },
                .other = { totals[0] - returned[0], totals[1] - returned[1],
                           totals[2] - returned[2] },
                .exact = exact,
                .minutes_covered = covered,
        };
        return 0;
}

void rollup_top_result_clear(RollupTopResult *res) {
        if (!res)
                return;
        free(res->entries);
        *res = (RollupTopResult) {};
}

int rollup_totals(Rollup *r, uint64_t from_ms, uint64_t to_ms, uint32_t step_s,
                  RollupSeries *ret) {
        uint64_t step_ms = (uint64_t) step_s * 1000, first, span, n, lo, hi;
        RollupPoint *pts;

        assert(r);
        assert(ret);
        if (step_s == 0 || step_s % 60 != 0 || from_ms >= to_ms)
                return -EINVAL;
        first = from_ms / step_ms * step_ms;
        span = to_ms - first;
        n = span / step_ms + (span % step_ms != 0);
        if (n > ROLLUP_SERIES_MAX_POINTS)
                return -E2BIG;
        pts = calloc(n, sizeof(*pts));
        if (!pts)
                return -ENOMEM;
        for (uint64_t i = 0; i < n; i++)
                pts[i].start_ms = first + i * step_ms;

        /* a few thousand slot reads at most: one hold of the lock */
        pthread_mutex_lock(&r->lock);
        if (window_clip(r, from_ms / MINUTE_MS, (to_ms - 1) / MINUTE_MS, &lo, &hi))
                for (uint64_t m = lo; m <= hi; m++) {
                        const Minute *mn = minute_lookup(r, m);
                        RollupPoint *p;

                        if (!mn)
                                continue;
                        /* first is a minute edge at or before from_ms's minute */
                        p = &pts[(m * MINUTE_MS - first) / step_ms];
                        p->octets += mn->total[0];
                        p->packets += mn->total[1];
                        p->flows += mn->total[2];
                }
        pthread_mutex_unlock(&r->lock);

        *ret = (RollupSeries) { .step_s = step_s, .points = pts, .n_points = n };
        return 0;
}

void rollup_series_clear(RollupSeries *s) {
        if (!s)
                return;
        free(s->points);
        *s = (RollupSeries) {};
}

static int exporter_cmp(const void *a, const void *b) {
        const RollupExporter *x = a, *y = b;
        uint8_t kx[EXPORTER_KEY_SIZE], ky[EXPORTER_KEY_SIZE];

        exporter_key(x->addr, x->family, x->odid, kx);
        exporter_key(y->addr, y->family, y->odid, ky);
        return memcmp(kx, ky, sizeof(kx));
}

int rollup_exporters(Rollup *r, RollupExporter **ret, size_t *ret_n) {
        RollupExporter *a = NULL;
        size_t n = 0;

        assert(r);
        assert(ret);
        assert(ret_n);

        pthread_mutex_lock(&r->lock);
        if (r->n_exporters > 0) {
                a = malloc(r->n_exporters * sizeof(*a));
                if (!a) {
                        pthread_mutex_unlock(&r->lock);
                        return -ENOMEM;
                }
                for (uint32_t i = 0; i < r->n_buckets; i++)
                        for (const Exporter *x = r->buckets[i]; x; x = x->next)
                                a[n++] = x->e;
        }
        pthread_mutex_unlock(&r->lock);

        if (n > 0)
                qsort(a, n, sizeof(*a), exporter_cmp);
        *ret = a;
        *ret_n = n;
        return 0;
}

void rollup_get_stats(Rollup *r, RollupStats *ret) {
        RollupStats st = {};

        assert(r);
        assert(ret);

        st.memory_bound = rollup_memory_bound(&r->cfg);
        pthread_mutex_lock(&r->lock);
        st.memory_bytes = sizeof(*r) + (uint64_t) r->ring_size * sizeof(Minute) +
                          (uint64_t) r->n_buckets * sizeof(Exporter *) +
                          (uint64_t) r->n_exporters * sizeof(Exporter);
        for (uint32_t i = 0; i < r->ring_size; i++) {
                const Minute *mn = &r->ring[i];

                if (!mn->used)
                        continue;
                if (mn->sealed)
                        st.minutes_sealed++;
                else
                        st.minutes_open++;
                for (size_t d = 0; d < _ROLLUP_DIM_MAX; d++) {
                        const MinuteDim *md = &mn->dims[d];

                        st.keys += md->live.n + md->n_kept;
                        st.memory_bytes += (uint64_t) md->live.cap * sizeof(uint64_t) +
                                           ((uint64_t) md->live.alloc + md->alloc_kept) *
                                                   dim_spec[d].stride;
                }
        }
        st.records = r->records;
        st.stale = r->stale;
        st.future = r->future;
        st.overflow = r->overflow;
        st.evicted = r->evicted;
        st.late_other = r->late_other;
        st.nomem = r->nomem;
        st.exporters = r->n_exporters;
        st.exporters_dropped = r->exporters_dropped;
        pthread_mutex_unlock(&r->lock);

        *ret = st;
}

/* ---- lifecycle ---- */

void rollup_config_default(RollupConfig *ret) {
        assert(ret);
        *ret = (RollupConfig) {
                .horizon_min = ROLLUP_HORIZON_MIN_DEFAULT,
                .top_k = ROLLUP_TOP_K_DEFAULT,
                .live_max_keys = ROLLUP_LIVE_MAX_KEYS_DEFAULT,
                .seal_after_s = ROLLUP_SEAL_AFTER_S_DEFAULT,
                .max_exporters = ROLLUP_MAX_EXPORTERS_DEFAULT,
        };
}

static uint32_t exporter_buckets_for(uint32_t max_exporters) {
        uint32_t n = 16;

        while (n < max_exporters)
                n <<= 1;
        return n;
}

uint64_t rollup_memory_bound(const RollupConfig *cfg) {
        uint64_t open = ((uint64_t) cfg->seal_after_s + 59) / 60 + FUTURE_MINUTES + 1;
        uint64_t sealed = 0, live = 0;

        assert(cfg);
        for (size_t d = 0; d < _ROLLUP_DIM_MAX; d++) {
                const DimSpec *ds = &dim_spec[d];

                sealed += MIN((uint64_t) cfg->top_k * 3, ds->keyspace) * ds->stride;
                uint64_t keys = MIN(cfg->live_max_keys, ds->keyspace);

                /* index slots, and entries grown by doubling from 16 up to live_max_keys */
                live += (uint64_t) table_cap_for(keys) * sizeof(uint64_t) +
                        MIN(MAX(16, 2 * keys), cfg->live_max_keys) * ds->stride;
        }
        open = MIN(open, (uint64_t) cfg->horizon_min + FUTURE_MINUTES);
        return sizeof(Rollup) +
               ((uint64_t) cfg->horizon_min + RING_EXTRA) * sizeof(Minute) +
               (uint64_t) cfg->horizon_min * sealed + open * live +
               (uint64_t) exporter_buckets_for(cfg->max_exporters) * sizeof(Exporter *) +
               (uint64_t) cfg->max_exporters * sizeof(Exporter);
}

int rollup_new(Rollup **ret, const RollupConfig *cfg) {
        _cleanup_(rollup_freep) Rollup *r = NULL;
        RollupConfig c;

        assert(ret);
        if (cfg)
                c = *cfg;
        else
                rollup_config_default(&c);
        if (c.horizon_min < 1 || c.horizon_min > ROLLUP_HORIZON_MIN_MAX ||
            c.top_k < ROLLUP_TOP_K_MIN || c.top_k > ROLLUP_TOP_K_MAX ||
            c.live_max_keys < 1 || c.live_max_keys > ROLLUP_LIVE_MAX_KEYS_MAX ||
            c.seal_after_s > ROLLUP_SEAL_AFTER_S_MAX ||
            c.max_exporters < 1 || c.max_exporters > ROLLUP_MAX_EXPORTERS_MAX)
                return -EINVAL;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->write_lock, NULL);
        pthread_mutex_init(&r->lock, NULL);
        r->cfg = c;
        r->ring_size = c.horizon_min + RING_EXTRA;
        r->ring = calloc(r->ring_size, sizeof(*r->ring));
        r->n_buckets = exporter_buckets_for(c.max_exporters);
        r->buckets = calloc(r->n_buckets, sizeof(*r->buckets));
        if (!r->ring || !r->buckets)
                return -ENOMEM;
        if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != sizeof(r->seed)) {
                /* the seed only has to be unguessable from outside, not secret */
                struct timespec ts;

                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                r->seed = mix64((uint64_t) ts.tv_nsec ^ (uint64_t) ts.tv_sec << 32 ^
                                (uint64_t) (uintptr_t) r);
        }
        r->rng = mix64(r->seed ^ 0x5851f42d4c957f2dull) | 1;

        *ret = TAKE_PTR(r);
        return 0;
}

Rollup *rollup_free(Rollup *r) {
        if (!r)
                return NULL;
        if (r->ring)
                for (uint32_t i = 0; i < r->ring_size; i++)
                        if (r->ring[i].used)
                                minute_release(&r->ring[i]);
        free(r->ring);
        if (r->buckets)
                for (uint32_t i = 0; i < r->n_buckets; i++)
                        while (r->buckets[i]) {
                                Exporter *x = r->buckets[i];

                                r->buckets[i] = x->next;
                                free(x);
                        }
        free(r->buckets);
        pthread_mutex_destroy(&r->lock);
        pthread_mutex_destroy(&r->write_lock);
        free(r);
        return NULL;
}

/* ---- names ---- */

static const char *const dim_names[_ROLLUP_DIM_MAX] = {
        [ROLLUP_DIM_SRC_ADDR] = "src_addr", [ROLLUP_DIM_DST_ADDR] = "dst_addr",
        [ROLLUP_DIM_SRC_PORT] = "src_port", [ROLLUP_DIM_DST_PORT] = "dst_port",
        [ROLLUP_DIM_PROTO] = "proto",       [ROLLUP_DIM_EXPORTER] = "exporter",
        [ROLLUP_DIM_PAIR] = "pair",
};

static const char *const metric_names[_ROLLUP_METRIC_MAX] = {
        [ROLLUP_METRIC_OCTETS] = "octets",
        [ROLLUP_METRIC_PACKETS] = "packets",
        [ROLLUP_METRIC_FLOWS] = "flows",
};

const char *rollup_dim_to_string(RollupDim d) {
        return d >= 0 && d < _ROLLUP_DIM_MAX ? dim_names[d] : NULL;
}

RollupDim rollup_dim_from_string(const char *s) {
        if (s)
                for (int d = 0; d < _ROLLUP_DIM_MAX; d++)
                        if (strcmp(s, dim_names[d]) == 0)
                                return (RollupDim) d;
        return _ROLLUP_DIM_INVALID;
}

const char *rollup_metric_to_string(RollupMetric m) {
        return m >= 0 && m < _ROLLUP_METRIC_MAX ? metric_names[m] : NULL;
}

RollupMetric rollup_metric_from_string(const char *s) {
        if (s)
                for (int m = 0; m < _ROLLUP_METRIC_MAX; m++)
                        if (strcmp(s, metric_names[m]) == 0)
                                return (RollupMetric) m;
        return _ROLLUP_METRIC_INVALID;
}
