/* SPDX-License-Identifier: MIT */
/*
 * flow-store.c - the bounded ring of recent raw flows with per-segment and per-block
 * pruning indexes (see flow-store.h for the layout and the locking design).
 *
 * Invariants:
 *  - A segment's records, indexes and count are written only by the appender holding the
 *    segment's write lock; queries read them holding its read lock.
 *  - A segment's generation, first_seq, count and time summary are also written with the
 *    store mutex held, so a query may snapshot them under the mutex alone.
 *  - Slots fill in order 0, 1, ... nsegs - 1 and then recycle round-robin: the head is the
 *    newest segment and (head + 1) % nsegs the oldest once the ring is full. Seqs grow with
 *    slot age, so visiting slots from the head backwards visits seqs in decreasing order.
 *  - The index of a segment (and of a block) covers exactly its count records: it is cleared
 *    when the segment is recycled, before the generation changes.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flow-store.h"

#define PORT_BITMAP_WORDS (65536u / 64u)
#define BLOOM_BLOCK_WORDS 8u            /* one 512-bit (cache line) block */
#define BLOOM_BYTES_PER_RECORD 4u
#define BLOOM_BLOCK_SELECT_BITS 28u     /* low hash bits pick the block, the next 36 the bits */

/* Per-block (FLOW_STORE_BLOCK_FLOWS records) summary; its Bloom filter lives elsewhere. */
typedef struct BlockIndex {
        uint64_t min_start, min_end, max_end;
        uint64_t proto[4];
        uint64_t unused;                /* pads to one cache line */
} BlockIndex;

typedef struct Segment {
        pthread_rwlock_t lock;
        /* Written under lock (write) and the store mutex. */
        uint64_t gen;                   /* 0 = never used; bumped when (re)started */
        uint64_t first_seq;
        uint32_t count;
        uint64_t min_start, max_start, min_end, max_end;
        /* Written under lock (write) only. */
        uint64_t proto[4];
        uint64_t *src_ports;            /* PORT_BITMAP_WORDS */
        uint64_t *dst_ports;            /* PORT_BITMAP_WORDS */
        uint64_t *bloom;                /* seg_bloom_blocks * BLOOM_BLOCK_WORDS */
        uint64_t *block_bloom;          /* nblocks * blk_bloom_blocks * BLOOM_BLOCK_WORDS */
        BlockIndex *blocks;             /* nblocks */
        FlowRecord *recs;               /* segment_flows */
        /* Appender-only: the last exporter indexed in this block, to skip repeats. */
        uint8_t last_exporter[16];
        uint8_t last_exporter_family;
        uint32_t last_exporter_block;
        bool lock_ready;                /* lock initialized (for flow_store_free()) */
} Segment;

struct FlowStore {
        pthread_mutex_t lock;           /* ring state below and segment summaries */
        uint32_t segment_flows;
        uint32_t nsegs;
        uint32_t nblocks;               /* blocks per segment */
        uint32_t block_flows;           /* MIN(FLOW_STORE_BLOCK_FLOWS, segment_flows) */
        size_t seg_bloom_blocks;        /* 512-bit Bloom blocks per segment filter */
        size_t blk_bloom_blocks;        /* 512-bit Bloom blocks per block filter */
        size_t index_words;             /* uint64_t words of one segment's index allocation */
        uint64_t memory_bytes;
        Segment *segs;
        /* Written by the appender under lock; the appender reads them without. */
        uint32_t head;
        uint32_t used;
        uint64_t next_seq;
        uint64_t overwritten;
};

/* Indexed prefix lengths, shortest first. */
static const unsigned v4_lens[] = { 8, 16, 24, 32 };
static const unsigned v6_lens[] = { 32, 48, 64, 128 };
_Static_assert(ELEMENTSOF(v4_lens) == ELEMENTSOF(v6_lens), "one key per length and family");
#define N_LENS ELEMENTSOF(v4_lens)

static size_t bloom_blocks_for(uint64_t records) {
        size_t bytes = (size_t) records * BLOOM_BYTES_PER_RECORD;
        return MAX((size_t) 1, (bytes + 63) / 64);
}

static uint32_t nblocks_for(uint32_t segment_flows) {
        return (segment_flows + FLOW_STORE_BLOCK_FLOWS - 1) / FLOW_STORE_BLOCK_FLOWS;
}

/* uint64_t words of the index allocation: port bitmaps, segment Bloom, block Blooms. */
static size_t index_words_for(uint32_t segment_flows) {
        uint32_t nblocks = nblocks_for(segment_flows);
        size_t blk = bloom_blocks_for(MIN(segment_flows, FLOW_STORE_BLOCK_FLOWS));

        return 2 * PORT_BITMAP_WORDS + bloom_blocks_for(segment_flows) * BLOOM_BLOCK_WORDS +
               (size_t) nblocks * blk * BLOOM_BLOCK_WORDS;
}

uint64_t flow_store_memory_per_segment(uint32_t segment_flows) {
        return (uint64_t) segment_flows * sizeof(FlowRecord) +
               (uint64_t) index_words_for(segment_flows) * sizeof(uint64_t) +
               (uint64_t) nblocks_for(segment_flows) * sizeof(BlockIndex) + sizeof(Segment);
}

/* --- hashing and Bloom filters --- */

static inline uint64_t mix64(uint64_t x) {
        /* MurmurHash3's fmix64: a bijection, so distinct 64-bit keys never collide. */
        x ^= x >> 33;
        x *= UINT64_C(0xff51afd7ed558ccd);
        x ^= x >> 33;
        x *= UINT64_C(0xc4ceb9fe1a85ec53);
        x ^= x >> 33;
        return x;
}

static inline uint64_t load_be64(const uint8_t *p) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return __builtin_bswap64(v);
}

static inline uint32_t load_be32(const uint8_t *p) {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return __builtin_bswap32(v);
}

static inline uint64_t prefix_mask64(unsigned len) {
        return len == 0 ? 0 : len >= 64 ? UINT64_MAX : ~UINT64_C(0) << (64 - len);
}

/*
 * Key of an address field at a prefix length. IPv4 keys are the bijective mix of
 * (masked address << 32 | field << 16 | 4 << 8 | len); port keys use 0xffff in the low
 * 16 bits (no IPv4 key has len 0xff), so IPv4 and port keys never collide exactly.
 */
static inline uint64_t addr_hash(unsigned field, uint8_t family, unsigned len,
                                 const uint8_t a[16]) {
        if (family == 4) {
                uint64_t v = load_be32(a + 12) & (prefix_mask64(len) >> 32);
                return mix64(v << 32 | (uint64_t) field << 16 | 4u << 8 | len);
        }
        uint64_t hi = load_be64(a), lo = load_be64(a + 8);
        if (len <= 64) {
                hi &= prefix_mask64(len);
                lo = 0;
        } else
                lo &= prefix_mask64(len - 64);
        return mix64(hi ^ mix64(lo ^ ((uint64_t) field << 16 | 6u << 8 | len)));
}

static inline uint64_t port_hash(unsigned field, uint16_t port) {
        return mix64((uint64_t) port << 32 | (uint64_t) (field + 8) << 16 | 0xffffu);
}

static inline uint64_t *bloom_block(uint64_t *bloom, size_t nblocks, uint64_t h) {
        size_t i = (size_t) (((h & ((UINT64_C(1) << BLOOM_BLOCK_SELECT_BITS) - 1)) * nblocks) >>
                             BLOOM_BLOCK_SELECT_BITS);
        return bloom + i * BLOOM_BLOCK_WORDS;
}

static inline void bloom_add(uint64_t *bloom, size_t nblocks, uint64_t h) {
        uint64_t *b = bloom_block(bloom, nblocks, h);
        for (unsigned k = 0; k < 4; k++) {
                unsigned bit = (unsigned) (h >> (BLOOM_BLOCK_SELECT_BITS + 9 * k)) & 511u;
                b[bit >> 6] |= UINT64_C(1) << (bit & 63);
        }
}

static inline bool bloom_test(const uint64_t *bloom, size_t nblocks, uint64_t h) {
        const uint64_t *b = bloom_block((uint64_t *) bloom, nblocks, h);
        for (unsigned k = 0; k < 4; k++) {
                unsigned bit = (unsigned) (h >> (BLOOM_BLOCK_SELECT_BITS + 9 * k)) & 511u;
                if (!(b[bit >> 6] & (UINT64_C(1) << (bit & 63))))
                        return false;
        }
        return true;
}

static inline void bit_set(uint64_t *bm, unsigned i) {
        bm[i >> 6] |= UINT64_C(1) << (i & 63);
}

static inline bool bit_test(const uint64_t *bm, unsigned i) {
        return bm[i >> 6] & (UINT64_C(1) << (i & 63));
}

/* The longest indexed length <= @len for @family, or -1 when @len is below all of them. */
static int probe_len(uint8_t family, unsigned len) {
        const unsigned *lens = family == 4 ? v4_lens : v6_lens;
        int best = -1;

        for (unsigned i = 0; i < N_LENS; i++)
                if (lens[i] <= len)
                        best = (int) lens[i];
        return best;
}

/* --- probes --- */

typedef struct ProbeCtx {
        const FlowStore *store;
        const Segment *seg;
        uint32_t block;
} ProbeCtx;

static bool seg_probe_proto(void *userdata, uint8_t proto) {
        const ProbeCtx *c = userdata;
        return bit_test(c->seg->proto, proto);
}

static bool seg_probe_port(void *userdata, FlowFilterPortField field, uint16_t port) {
        const ProbeCtx *c = userdata;
        return bit_test(field == FLOW_FILTER_SRC_PORT ? c->seg->src_ports : c->seg->dst_ports,
                        port);
}

static bool seg_probe_addr(void *userdata, FlowFilterAddrField field, const uint8_t addr[16],
                           uint8_t family, unsigned prefix_len) {
        const ProbeCtx *c = userdata;
        int len = probe_len(family, prefix_len);

        if (len < 0)
                return true;
        return bloom_test(c->seg->bloom, c->store->seg_bloom_blocks,
                          addr_hash((unsigned) field, family, (unsigned) len, addr));
}

static const uint64_t *block_bloom(const FlowStore *s, const Segment *g, uint32_t block) {
        return g->block_bloom + (size_t) block * s->blk_bloom_blocks * BLOOM_BLOCK_WORDS;
}

static bool blk_probe_proto(void *userdata, uint8_t proto) {
        const ProbeCtx *c = userdata;
        return bit_test(c->seg->blocks[c->block].proto, proto);
}

static bool blk_probe_port(void *userdata, FlowFilterPortField field, uint16_t port) {
        const ProbeCtx *c = userdata;
        return bloom_test(block_bloom(c->store, c->seg, c->block), c->store->blk_bloom_blocks,
                          port_hash((unsigned) field, port));
}

static bool blk_probe_addr(void *userdata, FlowFilterAddrField field, const uint8_t addr[16],
                           uint8_t family, unsigned prefix_len) {
        const ProbeCtx *c = userdata;
        int len = probe_len(family, prefix_len);

        if (len < 0)
                return true;
        return bloom_test(block_bloom(c->store, c->seg, c->block), c->store->blk_bloom_blocks,
                          addr_hash((unsigned) field, family, (unsigned) len, addr));
}

/* --- lifecycle --- */

static int segment_init(Segment *g, const FlowStore *s) {
        pthread_rwlockattr_t attr;
        uint64_t *idx;
        int r;

        g->recs = calloc(s->segment_flows, sizeof(FlowRecord));
        idx = calloc(s->index_words, sizeof(uint64_t));
        g->blocks = calloc(s->nblocks, sizeof(BlockIndex));
        if (!g->recs || !idx || !g->blocks) {
                free(idx);
                return -ENOMEM;
        }
        g->src_ports = idx;
        g->dst_ports = idx + PORT_BITMAP_WORDS;
        g->bloom = idx + 2 * PORT_BITMAP_WORDS;
        g->block_bloom = g->bloom + s->seg_bloom_blocks * BLOOM_BLOCK_WORDS;

        /* Writer preference: a stream of overlapping queries cannot starve the appender. */
        r = pthread_rwlockattr_init(&attr);
        if (r != 0)
                return NEG_ERRNO(r);
        (void) pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        r = pthread_rwlock_init(&g->lock, &attr);
        (void) pthread_rwlockattr_destroy(&attr);
        if (r != 0)
                return NEG_ERRNO(r);
        g->lock_ready = true;
        return 0;
}

int flow_store_new(FlowStore **ret, const FlowStoreConfig *cfg) {
        _cleanup_(flow_store_freep) FlowStore *s = NULL;
        uint32_t sf;
        uint64_t nsegs;
        int r;

        assert(ret);
        if (!cfg || (cfg->max_flows == 0 && cfg->max_memory_bytes == 0))
                return -EINVAL;
        sf = cfg->segment_flows ? cfg->segment_flows : FLOW_STORE_DEFAULT_SEGMENT_FLOWS;
        if (sf < FLOW_STORE_MIN_SEGMENT_FLOWS || sf > FLOW_STORE_MAX_SEGMENT_FLOWS)
                return -EINVAL;

        for (;;) {
                uint64_t by_flows = cfg->max_flows ? cfg->max_flows / sf : UINT64_MAX;
                uint64_t by_mem = cfg->max_memory_bytes ?
                                          cfg->max_memory_bytes / flow_store_memory_per_segment(sf) :
                                          UINT64_MAX;

                nsegs = MIN(by_flows, by_mem);
                if (nsegs < 2) {
                        if (sf / 2 < FLOW_STORE_MIN_SEGMENT_FLOWS)
                                return -EINVAL;
                        sf /= 2;
                } else if (nsegs > FLOW_STORE_MAX_SEGMENTS && sf * 2 <= FLOW_STORE_MAX_SEGMENT_FLOWS)
                        sf *= 2;
                else
                        break;
        }
        nsegs = MIN(nsegs, (uint64_t) FLOW_STORE_MAX_SEGMENTS);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = pthread_mutex_init(&s->lock, NULL);
        if (r != 0) {
                free(TAKE_PTR(s));
                return NEG_ERRNO(r);
        }
        s->segment_flows = sf;
        s->nblocks = nblocks_for(sf);
        s->block_flows = MIN(sf, FLOW_STORE_BLOCK_FLOWS);
        s->seg_bloom_blocks = bloom_blocks_for(sf);
        s->blk_bloom_blocks = bloom_blocks_for(s->block_flows);
        s->index_words = index_words_for(sf);
        s->memory_bytes = nsegs * flow_store_memory_per_segment(sf) + sizeof(*s);

        s->segs = calloc(nsegs, sizeof(Segment));
        if (!s->segs)
                return -ENOMEM;
        for (uint32_t i = 0; i < nsegs; i++) {
                r = segment_init(&s->segs[i], s);
                s->nsegs = i + 1;       /* flow_store_free() releases what was set up */
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

FlowStore *flow_store_free(FlowStore *s) {
        if (!s)
                return NULL;
        for (uint32_t i = 0; i < s->nsegs; i++) {
                Segment *g = &s->segs[i];
                if (g->lock_ready)
                        (void) pthread_rwlock_destroy(&g->lock);
                free(g->recs);
                free(g->src_ports);
                free(g->blocks);
        }
        free(s->segs);
        (void) pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

/* --- appending --- */

static void summary_reset(Segment *g) {
        g->count = 0;
        g->min_start = g->min_end = UINT64_MAX;
        g->max_start = g->max_end = 0;
}

static void block_reset(BlockIndex *b) {
        *b = (BlockIndex) { .min_start = UINT64_MAX, .min_end = UINT64_MAX };
}

/* Starts the next slot as the head, recycling the oldest segment once the ring is full. */
static void advance_head(FlowStore *s) {
        uint32_t slot = s->used == 0 ? 0 : (s->head + 1) % s->nsegs;
        Segment *g = &s->segs[slot];
        bool recycle = slot < s->used;

        (void) pthread_rwlock_wrlock(&g->lock);
        if (g->gen > 0) {
                memset(g->src_ports, 0, s->index_words * sizeof(uint64_t));
                memset(g->proto, 0, sizeof(g->proto));
        }
        for (uint32_t i = 0; i < s->nblocks; i++)
                block_reset(&g->blocks[i]);
        g->last_exporter_family = 0;

        (void) pthread_mutex_lock(&s->lock);
        if (recycle)
                s->overwritten += g->count;
        else
                s->used++;
        g->gen++;
        g->first_seq = s->next_seq;
        summary_reset(g);
        s->head = slot;
        (void) pthread_mutex_unlock(&s->lock);
        (void) pthread_rwlock_unlock(&g->lock);
}

static void index_addr(FlowStore *s, Segment *g, uint64_t *bb, unsigned field, uint8_t family,
                       const uint8_t a[16]) {
        const unsigned *lens = family == 4 ? v4_lens : v6_lens;

        for (unsigned i = 0; i < N_LENS; i++) {
                uint64_t h = addr_hash(field, family, lens[i], a);
                bloom_add(g->bloom, s->seg_bloom_blocks, h);
                bloom_add(bb, s->blk_bloom_blocks, h);
        }
}

/* Copies and indexes @n records that all fall into one block of the head segment. */
static void append_chunk(FlowStore *s, Segment *g, const FlowRecord *recs, uint32_t n) {
        uint32_t pos = g->count, block = pos / FLOW_STORE_BLOCK_FLOWS;
        BlockIndex *b = &g->blocks[block];
        uint64_t *bb = (uint64_t *) block_bloom(s, g, block);
        uint64_t min_start = UINT64_MAX, max_start = 0, min_end = UINT64_MAX, max_end = 0;

        memcpy(&g->recs[pos], recs, (size_t) n * sizeof(FlowRecord));
        for (uint32_t i = 0; i < n; i++) {
                const FlowRecord *r = &recs[i];
                uint8_t fam = r->family == 4 ? 4 : 6;
                uint8_t efam = r->exporter_family == 4 ? 4 : 6;

                min_start = MIN(min_start, r->start_ms);
                max_start = MAX(max_start, r->start_ms);
                min_end = MIN(min_end, r->end_ms);
                max_end = MAX(max_end, r->end_ms);

                bit_set(g->proto, r->proto);
                bit_set(b->proto, r->proto);
                bit_set(g->src_ports, r->src_port);
                bit_set(g->dst_ports, r->dst_port);
                bloom_add(bb, s->blk_bloom_blocks, port_hash(FLOW_FILTER_SRC_PORT, r->src_port));
                bloom_add(bb, s->blk_bloom_blocks, port_hash(FLOW_FILTER_DST_PORT, r->dst_port));

                index_addr(s, g, bb, FLOW_FILTER_SRC_ADDR, fam, r->src_addr);
                index_addr(s, g, bb, FLOW_FILTER_DST_ADDR, fam, r->dst_addr);
                /* Few exporters, long runs: index an exporter once per run within a block. */
                if (g->last_exporter_family != efam || g->last_exporter_block != block ||
                    memcmp(g->last_exporter, r->exporter_addr, 16) != 0) {
                        index_addr(s, g, bb, FLOW_FILTER_EXPORTER, efam, r->exporter_addr);
                        memcpy(g->last_exporter, r->exporter_addr, 16);
                        g->last_exporter_family = efam;
                        g->last_exporter_block = block;
                }
        }
        b->min_start = MIN(b->min_start, min_start);
        b->min_end = MIN(b->min_end, min_end);
        b->max_end = MAX(b->max_end, max_end);

        (void) pthread_mutex_lock(&s->lock);
        g->count += n;
        g->min_start = MIN(g->min_start, min_start);
        g->max_start = MAX(g->max_start, max_start);
        g->min_end = MIN(g->min_end, min_end);
        g->max_end = MAX(g->max_end, max_end);
        s->next_seq += n;
        (void) pthread_mutex_unlock(&s->lock);
}

void flow_store_append(FlowStore *s, const FlowRecord *recs, size_t n) {
        assert(s);
        assert(recs || n == 0);

        while (n > 0) {
                Segment *g;
                uint32_t m;

                if (s->used == 0 || s->segs[s->head].count == s->segment_flows)
                        advance_head(s);
                g = &s->segs[s->head];
                /* One block per lock hold bounds how long a query waits for the appender. */
                m = FLOW_STORE_BLOCK_FLOWS - g->count % FLOW_STORE_BLOCK_FLOWS;
                m = MIN(m, s->segment_flows - g->count);
                m = (uint32_t) MIN((size_t) m, n);

                (void) pthread_rwlock_wrlock(&g->lock);
                append_chunk(s, g, recs, m);
                (void) pthread_rwlock_unlock(&g->lock);
                recs += m;
                n -= m;
        }
}

/* --- queries --- */

typedef struct HeapEntry {
        uint64_t end, seq;
        size_t slot;                    /* index into the record pool */
} HeapEntry;

/* Min-heap on (end, seq): the root is the worst of the best matches found so far. */
typedef struct Heap {
        HeapEntry *e;
        FlowRecord *pool;
        size_t n, cap;
} Heap;

static inline bool key_less(uint64_t e1, uint64_t s1, uint64_t e2, uint64_t s2) {
        return e1 < e2 || (e1 == e2 && s1 < s2);
}

static void heap_sift_down(Heap *h, size_t i) {
        HeapEntry x = h->e[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= h->n)
                        break;
                if (c + 1 < h->n && key_less(h->e[c + 1].end, h->e[c + 1].seq, h->e[c].end,
                                             h->e[c].seq))
                        c++;
                if (!key_less(h->e[c].end, h->e[c].seq, x.end, x.seq))
                        break;
                h->e[i] = h->e[c];
                i = c;
        }
        h->e[i] = x;
}

static void heap_push(Heap *h, const FlowRecord *r, uint64_t seq) {
        size_t i;

        if (h->n < h->cap) {
                HeapEntry x = { .end = r->end_ms, .seq = seq, .slot = h->n };
                h->pool[x.slot] = *r;
                i = h->n++;
                while (i > 0) {
                        size_t p = (i - 1) / 2;
                        if (!key_less(x.end, x.seq, h->e[p].end, h->e[p].seq))
                                break;
                        h->e[i] = h->e[p];
                        i = p;
                }
                h->e[i] = x;
                return;
        }
        /* Full: the caller checked that @r beats the root; it takes the root's place. */
        h->pool[h->e[0].slot] = *r;
        h->e[0].end = r->end_ms;
        h->e[0].seq = seq;
        heap_sift_down(h, 0);
}

static int entry_cmp_desc(const void *a, const void *b) {
        const HeapEntry *x = a, *y = b;

        if (x->end != y->end)
                return x->end < y->end ? 1 : -1;
        if (x->seq != y->seq)
                return x->seq < y->seq ? 1 : -1;
        return 0;
}

typedef struct SnapSeg {
        uint32_t slot;
        uint64_t gen;
        uint64_t max_end;               /* max end_ms of this and every older segment */
} SnapSeg;

typedef struct Scan {
        const FlowStore *store;
        const FlowStoreQuery *q;
        const FlowFilter *filter;       /* NULL for match-all */
        Heap heap;
        uint64_t scanned;
        bool truncated;
        uint64_t blocks_skipped;
} Scan;

static uint64_t now_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Whether records with these time bounds can still enter the result. */
static bool range_may_match(const Scan *sc, uint64_t min_start, uint64_t min_end,
                            uint64_t max_end) {
        const FlowStoreQuery *q = sc->q;

        if (q->to_ms != UINT64_MAX && min_start >= q->to_ms)
                return false;
        if (max_end < q->from_ms)
                return false;
        if (q->has_cursor && min_end > q->cursor_end_ms)
                return false;
        /* Every heap entry has a larger seq than anything not yet scanned. */
        if (sc->heap.n == sc->heap.cap && max_end <= sc->heap.e[0].end)
                return false;
        return true;
}

static bool budget_left(Scan *sc) {
        if (sc->q->max_scan > 0 && sc->scanned >= sc->q->max_scan)
                return false;
        if (sc->q->deadline_us > 0 && now_us() >= sc->q->deadline_us)
                return false;
        return true;
}

/* Scans records [0, n) of a block newest first. */
static void scan_records(Scan *sc, const FlowRecord *recs, uint64_t first_seq, uint32_t n) {
        const FlowStoreQuery *q = sc->q;
        Heap *h = &sc->heap;
        uint64_t to = q->to_ms == UINT64_MAX ? UINT64_MAX : q->to_ms;
        bool open_to = q->to_ms == UINT64_MAX;
        /* Records must have end_ms in [lo, hi]; end == hi needs seq < hi_seq. */
        uint64_t lo = q->from_ms, hi = UINT64_MAX, hi_seq = UINT64_MAX;

        if (q->has_cursor) {
                hi = q->cursor_end_ms;
                hi_seq = q->cursor_seq;
        }
        if (h->n == h->cap)
                lo = MAX(lo, h->e[0].end + 1);  /* range_may_match() ruled out UINT64_MAX */

        for (uint32_t k = n; k-- > 0;) {
                const FlowRecord *r = &recs[k];
                uint64_t e = r->end_ms;

                if (e < lo || e > hi)
                        continue;
                if (e == hi && first_seq + k >= hi_seq)
                        continue;
                if (!open_to && r->start_ms >= to)
                        continue;
                if (sc->filter && !flow_filter_match(sc->filter, r))
                        continue;
                heap_push(h, r, first_seq + k);
                if (h->n == h->cap) {
                        if (h->e[0].end == UINT64_MAX)
                                break;          /* nothing can beat the worst any more */
                        lo = MAX(lo, h->e[0].end + 1);
                }
        }
}

static void scan_segment(Scan *sc, const Segment *g) {
        const FlowStore *s = sc->store;
        ProbeCtx ctx = { .store = s, .seg = g };
        FlowFilterProbe probe = {
                .proto = blk_probe_proto,
                .port = blk_probe_port,
                .addr = blk_probe_addr,
                .userdata = &ctx,
        };
        uint32_t count = g->count;

        for (uint32_t j = (count - 1) / FLOW_STORE_BLOCK_FLOWS + 1; j-- > 0;) {
                const BlockIndex *b = &g->blocks[j];
                uint32_t first = j * FLOW_STORE_BLOCK_FLOWS;
                uint32_t n = MIN(count - first, FLOW_STORE_BLOCK_FLOWS);

                if (!range_may_match(sc, b->min_start, b->min_end, b->max_end)) {
                        sc->blocks_skipped++;
                        continue;
                }
                ctx.block = j;
                if (sc->filter && s->nblocks > 1 && !flow_filter_may_match(sc->filter, &probe)) {
                        sc->blocks_skipped++;
                        continue;
                }
                if (!budget_left(sc)) {
                        sc->truncated = true;
                        return;
                }
                if (sc->q->max_scan > 0 && sc->scanned + n > sc->q->max_scan) {
                        /* Scan the newest part of the block that the budget allows. */
                        uint32_t part = (uint32_t) (sc->q->max_scan - sc->scanned);
                        scan_records(sc, g->recs + first + (n - part), g->first_seq + first +
                                     (n - part), part);
                        sc->scanned += part;
                        sc->truncated = true;
                        return;
                }
                scan_records(sc, g->recs + first, g->first_seq + first, n);
                sc->scanned += n;
        }
}

static bool segment_may_match(Scan *sc, const Segment *g) {
        ProbeCtx ctx = { .store = sc->store, .seg = g };
        FlowFilterProbe probe = {
                .proto = seg_probe_proto,
                .port = seg_probe_port,
                .addr = seg_probe_addr,
                .userdata = &ctx,
        };

        if (g->count == 0 || !range_may_match(sc, g->min_start, g->min_end, g->max_end))
                return false;
        return !sc->filter || flow_filter_may_match(sc->filter, &probe);
}

int flow_store_query(FlowStore *s, const FlowStoreQuery *q, FlowStoreResult *ret) {
        _cleanup_free_ SnapSeg *snap = NULL;
        _cleanup_free_ HeapEntry *entries = NULL;
        _cleanup_free_ FlowRecord *pool = NULL;
        _cleanup_free_ FlowRecord *flows = NULL;
        _cleanup_free_ uint64_t *seqs = NULL;
        FlowStoreResult res = {};
        Scan sc;
        uint32_t nsnap;

        assert(s);
        assert(q);
        assert(ret);
        if (q->limit == 0 || q->limit > FLOW_STORE_MAX_LIMIT || q->from_ms > q->to_ms)
                return -EINVAL;

        snap = malloc(sizeof(SnapSeg) * s->nsegs);
        entries = malloc(sizeof(HeapEntry) * (q->limit + 1));
        pool = malloc(sizeof(FlowRecord) * (q->limit + 1));
        if (!snap || !entries || !pool)
                return -ENOMEM;

        sc = (Scan) {
                .store = s,
                .q = q,
                .filter = q->filter && !flow_filter_is_all(q->filter) ? q->filter : NULL,
                .heap = { .e = entries, .pool = pool, .cap = q->limit + 1 },
        };

        (void) pthread_mutex_lock(&s->lock);
        nsnap = s->used;
        for (uint32_t i = 0; i < nsnap; i++) {
                uint32_t slot = (s->head + s->nsegs - i) % s->nsegs;
                snap[i] = (SnapSeg) { .slot = slot, .gen = s->segs[slot].gen,
                                      .max_end = s->segs[slot].max_end };
        }
        (void) pthread_mutex_unlock(&s->lock);
        for (uint32_t i = nsnap; i-- > 1;)
                snap[i - 1].max_end = MAX(snap[i - 1].max_end, snap[i].max_end);

        for (uint32_t i = 0; i < nsnap; i++) {
                Segment *g = &s->segs[snap[i].slot];

                /* Older segments are full, so their max end_ms in the snapshot is final. */
                if (sc.heap.n == sc.heap.cap && snap[i].max_end <= sc.heap.e[0].end)
                        break;
                if (!budget_left(&sc)) {
                        sc.truncated = true;
                        break;
                }
                (void) pthread_rwlock_rdlock(&g->lock);
                if (g->gen == snap[i].gen && segment_may_match(&sc, g)) {
                        scan_segment(&sc, g);
                        res.segments_scanned++;
                }
                (void) pthread_rwlock_unlock(&g->lock);
                if (sc.truncated)
                        break;
        }
        res.segments_skipped = nsnap - res.segments_scanned;

        res.n = sc.heap.n;
        if (res.n == sc.heap.cap) {
                /* The extra entry only tells that there is more: drop the worst. */
                sc.heap.e[0] = sc.heap.e[--sc.heap.n];
                res.n--;
                res.has_more = true;
        }
        qsort(entries, res.n, sizeof(HeapEntry), entry_cmp_desc);
        if (res.n > 0) {
                flows = malloc(sizeof(FlowRecord) * res.n);
                seqs = malloc(sizeof(uint64_t) * res.n);
                if (!flows || !seqs)
                        return -ENOMEM;
                for (size_t i = 0; i < res.n; i++) {
                        flows[i] = pool[entries[i].slot];
                        seqs[i] = entries[i].seq;
                }
                res.next_end_ms = entries[res.n - 1].end;
                res.next_seq = entries[res.n - 1].seq;
        } else if (q->has_cursor) {
                res.next_end_ms = q->cursor_end_ms;
                res.next_seq = q->cursor_seq;
        }
        res.truncated = sc.truncated;
        res.has_more = res.has_more || sc.truncated;
        res.scanned = sc.scanned;
        res.blocks_skipped = sc.blocks_skipped;
        res.flows = TAKE_PTR(flows);
        res.seqs = TAKE_PTR(seqs);

        *ret = res;
        return 0;
}

void flow_store_result_clear(FlowStoreResult *r) {
        if (!r)
                return;
        free(r->flows);
        free(r->seqs);
        *r = (FlowStoreResult) {};
}

void flow_store_get_stats(FlowStore *s, FlowStoreStats *ret) {
        FlowStoreStats st;
        uint64_t min_end = UINT64_MAX, max_end = 0;

        assert(s);
        assert(ret);
        st = (FlowStoreStats) {
                .capacity = (uint64_t) s->nsegs * s->segment_flows,
                .memory_bytes = s->memory_bytes,
                .segments = s->nsegs,
                .segment_flows = s->segment_flows,
        };

        (void) pthread_mutex_lock(&s->lock);
        st.appended = s->next_seq;
        st.overwritten = s->overwritten;
        if (s->used > 0) {
                uint32_t oldest = s->used < s->nsegs ? 0 : (s->head + 1) % s->nsegs;
                st.oldest_seq = s->segs[oldest].first_seq;
                st.records = s->next_seq - st.oldest_seq;
                for (uint32_t i = 0; i < s->used; i++) {
                        const Segment *g = &s->segs[i];
                        if (g->count == 0)
                                continue;
                        min_end = MIN(min_end, g->min_end);
                        max_end = MAX(max_end, g->max_end);
                }
        }
        (void) pthread_mutex_unlock(&s->lock);

        if (st.records > 0) {
                st.newest_seq = st.appended - 1;
                st.oldest_end_ms = min_end;
                st.newest_end_ms = max_end;
        } else
                st.oldest_seq = 0;
        *ret = st;
}
