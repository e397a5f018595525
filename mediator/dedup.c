/* SPDX-License-Identifier: MIT */
/*
 * dedup.c - the de-duplication stage. It owns the remembered reports.
 *
 * Reports live in one array of DedupEntry addressed by 32-bit index (grown by doubling as
 * the load requires, never beyond max_entries, never shrunk), linked into
 *  - a chained hash table keyed by the flow key, seeded 64-bit hash, each chain ordered
 *    newest first (new reports go to the head; rehashing walks the arrival list), so the
 *    last report of a key met on a chain walk is that key's oldest;
 *  - a doubly linked arrival list (FIFO) for eviction at max_entries and for expiry;
 *  - a free list through the hash link for slots given back.
 * Invariants: every live report is on exactly one chain and on the arrival list; at most
 * DEDUP_MAX_PER_KEY live reports share a flow key; n <= max_entries.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "config.h"
#include "dedup.h"
#include "hash.h"
#include "macro.h"

#define DEDUP_NONE UINT32_MAX
#define DEDUP_INITIAL 1024u             /* initial slots and buckets */

/* Hashed and compared as raw bytes: built with memset() so padding is always zero. */
typedef struct DedupKey {
        uint8_t src_addr[16];
        uint8_t dst_addr[16];
        uint16_t src_port;
        uint16_t dst_port;
        uint8_t proto;
        uint8_t family;
        uint8_t pad[2];
} DedupKey;
_Static_assert(sizeof(DedupKey) == 40, "DedupKey must have no implicit padding");

typedef struct DedupEntry {
        DedupKey key;
        uint8_t exporter_addr[16];
        uint32_t odid;
        uint8_t exporter_family;
        uint32_t hash;
        uint32_t hnext;                 /* hash chain; free list while unused */
        uint32_t prev, next;            /* arrival list */
        uint64_t start_ms;
        uint64_t end_ms;
        uint64_t inserted_ms;
} DedupEntry;

struct Dedup {
        DedupConfig cfg;
        uint64_t seed;

        DedupEntry *entries;
        uint32_t capacity;              /* slots allocated, <= max_entries */
        uint32_t used;                  /* slots ever handed out, <= capacity */
        uint32_t free_head;
        size_t n;                       /* live reports */

        uint32_t *buckets;
        size_t n_buckets;               /* power of two */
        size_t max_buckets;

        uint32_t head, tail;            /* oldest and newest report */

        DedupStats stats;
};

/* ---- configuration ---- */

typedef struct DedupConfigRaw {
        int64_t tolerance_ms;
        int64_t hold_ms;
        int64_t max_entries;
} DedupConfigRaw;

static const ConfigKey dedup_config_keys[] = {
        { "tolerance_ms", CONFIG_INT, offsetof(DedupConfigRaw, tolerance_ms), 0,
          DEDUP_TOLERANCE_MS_MAX, DEDUP_DEFAULT_TOLERANCE_MS, NULL, true,
          "largest start/end difference between two reports of one flow" },
        { "hold_ms", CONFIG_INT, offsetof(DedupConfigRaw, hold_ms), 1, DEDUP_HOLD_MS_MAX,
          DEDUP_DEFAULT_HOLD_MS, NULL, true, "how long a report is remembered after arrival" },
        { "max_entries", CONFIG_INT, offsetof(DedupConfigRaw, max_entries), 1,
          DEDUP_MAX_ENTRIES_MAX, DEDUP_DEFAULT_MAX_ENTRIES, NULL, true,
          "reports remembered at most" },
};

void dedup_config_init(DedupConfig *ret) {
        assert(ret);
        *ret = (DedupConfig) {
                .tolerance_ms = DEDUP_DEFAULT_TOLERANCE_MS,
                .hold_ms = DEDUP_DEFAULT_HOLD_MS,
                .max_entries = DEDUP_DEFAULT_MAX_ENTRIES,
        };
}

int dedup_config_parse(json_t *obj, DedupConfig *ret, char **reterr) {
        DedupConfigRaw raw = { 0 };
        int r;

        assert(ret);
        assert(reterr);
        if (!json_is_object(obj)) {
                *reterr = config_errorf("must be a JSON object");
                return -EINVAL;
        }
        r = config_set_defaults(dedup_config_keys, ELEMENTSOF(dedup_config_keys), &raw);
        if (r < 0)
                return r;
        r = config_apply_json(dedup_config_keys, ELEMENTSOF(dedup_config_keys), obj, &raw, NULL,
                              reterr);
        if (r < 0)
                return r;
        *ret = (DedupConfig) {
                .tolerance_ms = (uint64_t) raw.tolerance_ms,
                .hold_ms = (uint64_t) raw.hold_ms,
                .max_entries = (size_t) raw.max_entries,
        };
        return 0;
}


/* ---- reports ---- */

static void key_from_record(const FlowRecord *r, DedupKey *k) {
        memset(k, 0, sizeof(*k));
        memcpy(k->src_addr, r->src_addr, 16);
        memcpy(k->dst_addr, r->dst_addr, 16);
        k->src_port = r->src_port;
        k->dst_port = r->dst_port;
        k->proto = r->proto;
        k->family = r->family;
}

static bool same_exporter(const DedupEntry *e, const FlowRecord *r) {
        return e->odid == r->odid && e->exporter_family == r->exporter_family &&
               memcmp(e->exporter_addr, r->exporter_addr, 16) == 0;
}

static uint64_t diff(uint64_t a, uint64_t b) {
        return a > b ? a - b : b - a;
}

static bool expired(const Dedup *d, const DedupEntry *e, uint64_t now_ms) {
        return now_ms > e->inserted_ms && now_ms - e->inserted_ms > d->cfg.hold_ms;
}

static uint32_t *bucket(Dedup *d, uint32_t hash) {
        return &d->buckets[hash & (d->n_buckets - 1)];
}

static void fifo_unlink(Dedup *d, uint32_t i) {
        DedupEntry *e = &d->entries[i];

        if (e->prev != DEDUP_NONE)
                d->entries[e->prev].next = e->next;
        else
                d->head = e->next;
        if (e->next != DEDUP_NONE)
                d->entries[e->next].prev = e->prev;
        else
                d->tail = e->prev;
}

/* Gives slot @i back; the caller has unlinked it from its chain. */
static void slot_release(Dedup *d, uint32_t i) {
        fifo_unlink(d, i);
        d->entries[i].hnext = d->free_head;
        d->free_head = i;
        d->n--;
}

static void entry_remove(Dedup *d, uint32_t i) {
        uint32_t *link = bucket(d, d->entries[i].hash);

        while (*link != i) {
                assert(*link != DEDUP_NONE);
                link = &d->entries[*link].hnext;
        }
        *link = d->entries[i].hnext;
        slot_release(d, i);
}

/* A free slot, growing the array if allowed; DEDUP_NONE when none can be had. */
static uint32_t slot_get(Dedup *d) {
        uint32_t i;

        if (d->free_head != DEDUP_NONE) {
                i = d->free_head;
                d->free_head = d->entries[i].hnext;
                return i;
        }
        if (d->used == d->capacity) {
                size_t cap = MIN((size_t) d->capacity * 2, d->cfg.max_entries);
                DedupEntry *ne;

                if (cap <= d->capacity)
                        return DEDUP_NONE;
                ne = reallocarray(d->entries, cap, sizeof(*ne));
                if (!ne)
                        return DEDUP_NONE;
                d->entries = ne;
                d->capacity = (uint32_t) cap;
        }
        return d->used++;
}

/* Doubles the bucket array when the load passes 1/2 (fewer chain misses for 8 bytes a
 * key); failure only costs speed. */
static void buckets_maybe_grow(Dedup *d) {
        uint32_t *nb;
        size_t n;

        if (d->n <= d->n_buckets / 2 || d->n_buckets >= d->max_buckets)
                return;
        n = d->n_buckets * 2;
        nb = reallocarray(NULL, n, sizeof(*nb));
        if (!nb)
                return;
        memset(nb, 0xff, n * sizeof(*nb));      /* DEDUP_NONE */
        free(d->buckets);
        d->buckets = nb;
        d->n_buckets = n;
        /* oldest first, each pushed on its chain's head: chains stay newest first */
        for (uint32_t i = d->head; i != DEDUP_NONE; i = d->entries[i].next) {
                uint32_t *b = bucket(d, d->entries[i].hash);
                d->entries[i].hnext = *b;
                *b = i;
        }
}

/* ---- public ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(Dedup *, dedup_free);

int dedup_new(Dedup **ret, const DedupConfig *cfg) {
        _cleanup_(dedup_freep) Dedup *d = NULL;

        assert(ret);
        assert(cfg);
        if (cfg->tolerance_ms > DEDUP_TOLERANCE_MS_MAX || cfg->hold_ms < 1 ||
            cfg->hold_ms > DEDUP_HOLD_MS_MAX || cfg->max_entries < 1 ||
            cfg->max_entries > DEDUP_MAX_ENTRIES_MAX)
                return -EINVAL;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->cfg = *cfg;
        d->seed = hash_random_seed(d);
        d->capacity = (uint32_t) MIN((size_t) DEDUP_INITIAL, cfg->max_entries);
        d->entries = reallocarray(NULL, d->capacity, sizeof(*d->entries));
        d->max_buckets = hash_pow2_at_least(cfg->max_entries * 2);
        d->n_buckets = MIN((size_t) DEDUP_INITIAL, d->max_buckets);
        d->buckets = reallocarray(NULL, d->n_buckets, sizeof(*d->buckets));
        if (!d->entries || !d->buckets)
                return -ENOMEM;
        memset(d->buckets, 0xff, d->n_buckets * sizeof(*d->buckets));
        d->free_head = d->head = d->tail = DEDUP_NONE;

        *ret = TAKE_PTR(d);
        return 0;
}

Dedup *dedup_free(Dedup *d) {
        if (!d)
                return NULL;
        free(d->entries);
        free(d->buckets);
        free(d);
        return NULL;
}

bool dedup_is_duplicate(Dedup *d, const FlowRecord *r, uint64_t now_ms) {
        uint32_t *link, i, oldest = DEDUP_NONE;
        unsigned same_key = 0;
        DedupEntry *e;
        DedupKey k;
        uint32_t h;

        assert(d);
        assert(r);
        d->stats.checked++;
        key_from_record(r, &k);
        h = (uint32_t) hash_words(&k, sizeof(k), d->seed);

        link = bucket(d, h);
        while ((i = *link) != DEDUP_NONE) {
                e = &d->entries[i];
                if (e->hash != h || memcmp(&e->key, &k, sizeof(k)) != 0) {
                        link = &e->hnext;
                        continue;
                }
                if (expired(d, e, now_ms)) {
                        *link = e->hnext;
                        slot_release(d, i);
                        continue;
                }
                if (!same_exporter(e, r) && diff(e->start_ms, r->start_ms) <= d->cfg.tolerance_ms &&
                    diff(e->end_ms, r->end_ms) <= d->cfg.tolerance_ms) {
                        d->stats.duplicates++;
                        return true;
                }
                same_key++;
                oldest = i;             /* chains are newest first */
                link = &e->hnext;
        }

        if (same_key >= DEDUP_MAX_PER_KEY) {
                entry_remove(d, oldest);
                d->stats.evicted++;
        }
        if (d->n >= d->cfg.max_entries) {
                entry_remove(d, d->head);
                d->stats.evicted++;
        }
        i = slot_get(d);
        if (i == DEDUP_NONE) {
                /* the array could not grow: make room by evicting the oldest report (there
                 * is one, since every slot ever handed out is live or free) */
                entry_remove(d, d->head);
                d->stats.evicted++;
                i = slot_get(d);
                assert(i != DEDUP_NONE);
        }

        e = &d->entries[i];
        e->key = k;
        memcpy(e->exporter_addr, r->exporter_addr, 16);
        e->odid = r->odid;
        e->exporter_family = r->exporter_family;
        e->hash = h;
        e->start_ms = r->start_ms;
        e->end_ms = r->end_ms;
        e->inserted_ms = now_ms;
        link = bucket(d, h);
        e->hnext = *link;
        *link = i;
        e->prev = d->tail;
        e->next = DEDUP_NONE;
        if (d->tail != DEDUP_NONE)
                d->entries[d->tail].next = i;
        else
                d->head = i;
        d->tail = i;
        d->n++;
        buckets_maybe_grow(d);
        return false;
}

void dedup_expire(Dedup *d, uint64_t now_ms) {
        assert(d);
        while (d->head != DEDUP_NONE && expired(d, &d->entries[d->head], now_ms))
                entry_remove(d, d->head);
}

void dedup_get_stats(const Dedup *d, DedupStats *ret) {
        assert(d);
        assert(ret);
        *ret = d->stats;
        ret->entries = d->n;
}
