/* SPDX-License-Identifier: MIT */
/*
 * aggregate.c - the aggregation stage. It owns the live entries, the windows they belong to
 * and one output batch buffer.
 *
 * Data structures (all O(1) average per record):
 *  - entries: a chained hash table keyed by AggKey (window index + masked key fields),
 *    seeded 64-bit hash, kept at load <= 1/2 up to 2 * max_keys buckets. Entry
 *    memory comes from chunks of AGG_CHUNK entries with a free list, so the number of
 *    entries ever allocated is <= max_keys.
 *  - windows: one AggWindow per window index that has live entries, found through a small
 *    chained hash table (plus a last-used cache), holding its entries in insertion order.
 *    A binary min-heap over window index gives the oldest window for agg_tick() and for
 *    early eviction. A window is freed when its last entry leaves; entries only leave
 *    through the window at the top of the heap, so removal is always a heap pop.
 *  - out: AGG_EMIT_BATCH records; every public function leaves it empty on return.
 *
 * Invariants: live entries <= max_keys; every live entry is in exactly one window list
 * and in the hash table; windows with index < closed have been emitted by agg_tick() once,
 * so new entries for them are late and the next tick emits them.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "aggregate.h"
#include "config.h"
#include "hash.h"
#include "macro.h"

#define AGG_CHUNK 4096u                 /* entries per allocation */
#define AGG_INITIAL_BUCKETS 1024u
#define AGG_INITIAL_WINDOW_BUCKETS 16u
#define AGG_EVICT_DIVISOR 64u           /* early eviction frees max_keys/64 entries at once */

/* Hashed and compared as raw bytes: built with memset() so padding is always zero. */
typedef struct AggKey {
        uint64_t window;
        uint8_t src_addr[16];
        uint8_t dst_addr[16];
        uint8_t exporter_addr[16];
        uint32_t ingress_if;
        uint32_t egress_if;
        uint32_t src_as;
        uint32_t dst_as;
        uint32_t odid;
        uint16_t src_port;
        uint16_t dst_port;
        uint16_t vlan;
        uint8_t proto;
        uint8_t tos;
        uint8_t direction;
        uint8_t family;
        uint8_t exporter_family;
        uint8_t pad;
} AggKey;
_Static_assert(sizeof(AggKey) == 88, "AggKey must have no implicit padding");

typedef struct AggEntry {
        AggKey key;
        uint64_t hash;
        struct AggEntry *hnext;         /* hash chain; free list link while unused */
        struct AggEntry *wnext;         /* window list, insertion order */
        uint64_t start_ms;
        uint64_t end_ms;
        uint64_t octets;
        uint64_t packets;
        uint32_t flows;
        uint16_t tcp_flags;
} AggEntry;

typedef struct AggWindow {
        uint64_t index;
        struct AggWindow *hnext;
        AggEntry *head;
        AggEntry *tail;
} AggWindow;

struct Aggregator {
        AggConfig cfg;
        uint64_t window_ms;
        uint64_t late_ms;
        uint64_t seed;
        AggEmitFn emit;
        void *userdata;

        AggEntry **buckets;
        size_t n_buckets;               /* power of two */
        size_t max_buckets;
        size_t n_entries;

        AggEntry **chunks;
        size_t n_chunks;
        size_t n_allocated;             /* entries in all chunks, <= max_keys */
        AggEntry *free_list;

        AggWindow **wbuckets;
        size_t n_wbuckets;              /* power of two */
        AggWindow **heap;               /* min-heap by index */
        size_t n_windows;
        size_t heap_cap;
        AggWindow *last_window;

        uint64_t closed;                /* windows below this index were emitted by a tick */

        FlowRecord *out;
        size_t n_out;

        AggStats stats;
};

static const char *const field_names[_AGG_FIELD_MAX] = {
        [AGG_FIELD_SRC_ADDR] = "src_addr",
        [AGG_FIELD_DST_ADDR] = "dst_addr",
        [AGG_FIELD_EXPORTER] = "exporter",
        [AGG_FIELD_SRC_PORT] = "src_port",
        [AGG_FIELD_DST_PORT] = "dst_port",
        [AGG_FIELD_PROTO] = "proto",
        [AGG_FIELD_TOS] = "tos",
        [AGG_FIELD_INGRESS_IF] = "ingress_if",
        [AGG_FIELD_EGRESS_IF] = "egress_if",
        [AGG_FIELD_SRC_AS] = "src_as",
        [AGG_FIELD_DST_AS] = "dst_as",
        [AGG_FIELD_VLAN] = "vlan",
        [AGG_FIELD_ODID] = "odid",
        [AGG_FIELD_DIRECTION] = "direction",
};

/* ---- configuration ---- */

typedef struct AggConfigRaw {
        int64_t window_s;
        int64_t late_s;
        int64_t max_keys;
} AggConfigRaw;

static const ConfigKey agg_config_keys[] = {
        { "window_s", CONFIG_INT, offsetof(AggConfigRaw, window_s), 1, AGG_WINDOW_S_MAX,
          AGG_DEFAULT_WINDOW_S, NULL, true, "aggregation window length, seconds" },
        { "late_s", CONFIG_INT, offsetof(AggConfigRaw, late_s), 0, AGG_LATE_S_MAX,
          AGG_DEFAULT_LATE_S, NULL, true, "how long a window stays open after it ended" },
        { "max_keys", CONFIG_INT, offsetof(AggConfigRaw, max_keys), 1, AGG_MAX_KEYS_MAX,
          AGG_DEFAULT_MAX_KEYS, NULL, true, "live entries before early eviction" },
};

void agg_config_init(AggConfig *ret) {
        assert(ret);
        *ret = (AggConfig) {
                .window_s = AGG_DEFAULT_WINDOW_S,
                .late_s = AGG_DEFAULT_LATE_S,
                .max_keys = AGG_DEFAULT_MAX_KEYS,
        };
        for (size_t i = 0; i < AGG_N_ADDR_FIELDS; i++) {
                ret->prefix4[i] = 32;
                ret->prefix6[i] = 128;
        }
}

/* Parses a decimal prefix length 0..max at *p, advancing *p. */
static bool parse_prefix(const char **p, unsigned max, uint8_t *ret) {
        unsigned v = 0;
        const char *s = *p;

        if (*s < '0' || *s > '9')
                return false;
        for (; *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (unsigned) (*s - '0');
                if (v > max)
                        return false;
        }
        *p = s;
        *ret = (uint8_t) v;
        return true;
}

static int parse_key(const char *spec, size_t i, AggConfig *cfg, char **reterr) {
        const char *slash = strchr(spec, '/');
        size_t len = slash ? (size_t) (slash - spec) : strlen(spec);
        int f;

        for (f = 0; f < _AGG_FIELD_MAX; f++)
                if (strlen(field_names[f]) == len && strncmp(field_names[f], spec, len) == 0)
                        break;
        if (f == _AGG_FIELD_MAX) {
                *reterr = config_errorf("keys[%zu]: unknown field '%.*s'", i, (int) MIN(len, 64u),
                                        spec);
                return -EINVAL;
        }
        if (cfg->fields & AGG_FIELD_BIT(f)) {
                *reterr = config_errorf("keys[%zu]: duplicate field '%s'", i, field_names[f]);
                return -EINVAL;
        }
        cfg->fields |= AGG_FIELD_BIT(f);
        if (!slash)
                return 0;
        if (f >= AGG_N_ADDR_FIELDS) {
                *reterr = config_errorf("keys[%zu]: '%s' takes no prefix length", i,
                                        field_names[f]);
                return -EINVAL;
        }
        spec = slash + 1;
        if (!parse_prefix(&spec, 32, &cfg->prefix4[f])) {
                *reterr = config_errorf("keys[%zu]: IPv4 prefix length must be 0..32", i);
                return -EINVAL;
        }
        if (*spec == '/') {
                spec++;
                if (!parse_prefix(&spec, 128, &cfg->prefix6[f])) {
                        *reterr = config_errorf("keys[%zu]: IPv6 prefix length must be 0..128",
                                                i);
                        return -EINVAL;
                }
        }
        if (*spec != '\0') {
                *reterr = config_errorf("keys[%zu]: expected '%s', '%s/v4len' or "
                                        "'%s/v4len/v6len'", i, field_names[f], field_names[f],
                                        field_names[f]);
                return -EINVAL;
        }
        return 0;
}

int agg_config_parse(json_t *obj, AggConfig *ret, char **reterr) {
        static const char *const extra[] = { "keys", NULL };
        AggConfigRaw raw = { 0 };
        AggConfig cfg;
        json_t *keys;
        int r;

        assert(ret);
        assert(reterr);

        if (!json_is_object(obj)) {
                *reterr = config_errorf("must be a JSON object");
                return -EINVAL;
        }
        agg_config_init(&cfg);
        r = config_set_defaults(agg_config_keys, ELEMENTSOF(agg_config_keys), &raw);
        if (r < 0)
                return r;
        r = config_apply_json(agg_config_keys, ELEMENTSOF(agg_config_keys), obj, &raw, extra,
                              reterr);
        if (r < 0)
                return r;

        keys = json_object_get(obj, "keys");
        if (!keys) {
                *reterr = config_errorf("keys: missing (at least one key field is required)");
                return -EINVAL;
        }
        if (!json_is_array(keys) || json_array_size(keys) == 0) {
                *reterr = config_errorf("keys: must be a non-empty array of field names");
                return -EINVAL;
        }
        for (size_t i = 0; i < json_array_size(keys); i++) {
                json_t *k = json_array_get(keys, i);

                if (!json_is_string(k)) {
                        *reterr = config_errorf("keys[%zu]: must be a string", i);
                        return -EINVAL;
                }
                r = parse_key(json_string_value(k), i, &cfg, reterr);
                if (r < 0)
                        return r;
        }

        cfg.window_s = (uint32_t) raw.window_s;
        cfg.late_s = (uint32_t) raw.late_s;
        cfg.max_keys = (size_t) raw.max_keys;
        *ret = cfg;
        return 0;
}

static bool config_valid(const AggConfig *c) {
        if (c->fields == 0 || (c->fields >> _AGG_FIELD_MAX) != 0)
                return false;
        if (c->window_s < 1 || c->window_s > AGG_WINDOW_S_MAX || c->late_s > AGG_LATE_S_MAX)
                return false;
        if (c->max_keys < 1 || c->max_keys > AGG_MAX_KEYS_MAX)
                return false;
        for (size_t i = 0; i < AGG_N_ADDR_FIELDS; i++)
                if (c->prefix4[i] > 32 || c->prefix6[i] > 128)
                        return false;
        return true;
}


/* ---- keys and output records ---- */

static void addr_mask(uint8_t dst[16], const uint8_t src[16], unsigned bits) {
        for (unsigned i = 0; i < 16; i++) {
                if (bits >= 8) {
                        dst[i] = src[i];
                        bits -= 8;
                } else {
                        dst[i] = (uint8_t) (src[i] & (uint8_t) (0xff00u >> bits));
                        bits = 0;
                }
        }
}

static unsigned prefix_bits(const AggConfig *c, AggField f, uint8_t family) {
        /* IPv4 is stored mapped: keep the ::ffff: prefix and mask the last 32 bits */
        return family == 4 ? 96u + c->prefix4[f] : c->prefix6[f];
}

static void key_from_record(const Aggregator *a, const FlowRecord *r, AggKey *k) {
        const AggConfig *c = &a->cfg;
        uint32_t f = c->fields;

        memset(k, 0, sizeof(*k));
        k->window = r->start_ms / a->window_ms;
        if (f & (AGG_FIELD_BIT(AGG_FIELD_SRC_ADDR) | AGG_FIELD_BIT(AGG_FIELD_DST_ADDR)))
                k->family = r->family;
        if (f & AGG_FIELD_BIT(AGG_FIELD_SRC_ADDR))
                addr_mask(k->src_addr, r->src_addr,
                          prefix_bits(c, AGG_FIELD_SRC_ADDR, r->family));
        if (f & AGG_FIELD_BIT(AGG_FIELD_DST_ADDR))
                addr_mask(k->dst_addr, r->dst_addr,
                          prefix_bits(c, AGG_FIELD_DST_ADDR, r->family));
        if (f & AGG_FIELD_BIT(AGG_FIELD_EXPORTER)) {
                k->exporter_family = r->exporter_family;
                addr_mask(k->exporter_addr, r->exporter_addr,
                          prefix_bits(c, AGG_FIELD_EXPORTER, r->exporter_family));
        }
        if (f & AGG_FIELD_BIT(AGG_FIELD_SRC_PORT))
                k->src_port = r->src_port;
        if (f & AGG_FIELD_BIT(AGG_FIELD_DST_PORT))
                k->dst_port = r->dst_port;
        if (f & AGG_FIELD_BIT(AGG_FIELD_PROTO))
                k->proto = r->proto;
        if (f & AGG_FIELD_BIT(AGG_FIELD_TOS))
                k->tos = r->tos;
        if (f & AGG_FIELD_BIT(AGG_FIELD_INGRESS_IF))
                k->ingress_if = r->ingress_if;
        if (f & AGG_FIELD_BIT(AGG_FIELD_EGRESS_IF))
                k->egress_if = r->egress_if;
        if (f & AGG_FIELD_BIT(AGG_FIELD_SRC_AS))
                k->src_as = r->src_as;
        if (f & AGG_FIELD_BIT(AGG_FIELD_DST_AS))
                k->dst_as = r->dst_as;
        if (f & AGG_FIELD_BIT(AGG_FIELD_VLAN))
                k->vlan = r->vlan;
        if (f & AGG_FIELD_BIT(AGG_FIELD_ODID))
                k->odid = r->odid;
        if (f & AGG_FIELD_BIT(AGG_FIELD_DIRECTION))
                k->direction = r->direction;
}

static uint32_t record_flows(const FlowRecord *r) {
        return r->flows ? r->flows : 1u;
}

static void entry_set(AggEntry *e, const FlowRecord *r) {
        e->start_ms = r->start_ms;
        e->end_ms = r->end_ms;
        e->octets = r->octets;
        e->packets = r->packets;
        e->flows = record_flows(r);
        e->tcp_flags = r->tcp_flags;
}

/* False when a sum would wrap: the caller emits the entry first and starts it afresh. */
static bool entry_merge(AggEntry *e, const FlowRecord *r) {
        uint64_t octets, packets;
        uint32_t flows;

        if (__builtin_add_overflow(e->octets, r->octets, &octets) ||
            __builtin_add_overflow(e->packets, r->packets, &packets) ||
            __builtin_add_overflow(e->flows, record_flows(r), &flows))
                return false;
        e->octets = octets;
        e->packets = packets;
        e->flows = flows;
        e->start_ms = MIN(e->start_ms, r->start_ms);
        e->end_ms = MAX(e->end_ms, r->end_ms);
        e->tcp_flags |= r->tcp_flags;
        return true;
}

static void out_flush(Aggregator *a) {
        if (a->n_out == 0)
                return;
        a->stats.out += a->n_out;
        a->emit(a->userdata, a->out, a->n_out);
        a->n_out = 0;
}

/* Appends the output record of @k and the totals in @e to the batch. */
static void out_push(Aggregator *a, const AggKey *k, const AggEntry *e) {
        uint32_t f = a->cfg.fields;
        FlowRecord *o;

        if (a->n_out == AGG_EMIT_BATCH)
                out_flush(a);
        o = &a->out[a->n_out++];
        memset(o, 0, sizeof(*o));
        o->start_ms = e->start_ms;
        o->end_ms = e->end_ms;
        o->octets = e->octets;
        o->packets = e->packets;
        o->flows = e->flows;
        o->tcp_flags = e->tcp_flags;
        /* non-key fields stay zero: the key holds zeros for them */
        memcpy(o->src_addr, k->src_addr, 16);
        memcpy(o->dst_addr, k->dst_addr, 16);
        memcpy(o->exporter_addr, k->exporter_addr, 16);
        o->ingress_if = k->ingress_if;
        o->egress_if = k->egress_if;
        o->src_as = k->src_as;
        o->dst_as = k->dst_as;
        o->odid = k->odid;
        o->src_port = k->src_port;
        o->dst_port = k->dst_port;
        o->vlan = k->vlan;
        o->proto = k->proto;
        o->tos = k->tos;
        o->direction = (f & AGG_FIELD_BIT(AGG_FIELD_DIRECTION)) ? k->direction
                                                                 : FLOW_DIRECTION_UNKNOWN;
        o->family = k->family ? k->family : 4;
        o->exporter_family = k->exporter_family ? k->exporter_family : 4;
}

/* ---- entry table ---- */

static AggEntry *entry_find(Aggregator *a, const AggKey *k, uint64_t h) {
        for (AggEntry *e = a->buckets[h & (a->n_buckets - 1)]; e; e = e->hnext)
                if (e->hash == h && memcmp(&e->key, k, sizeof(*k)) == 0)
                        return e;
        return NULL;
}

static void entry_unhash(Aggregator *a, AggEntry *e) {
        AggEntry **link = &a->buckets[e->hash & (a->n_buckets - 1)];

        while (*link != e) {
                assert(*link);
                link = &(*link)->hnext;
        }
        *link = e->hnext;
}

/* Doubles the bucket array when the load passes 1/2 (fewer chain misses for 16 bytes a
 * key); failure only costs speed. */
static void buckets_maybe_grow(Aggregator *a) {
        AggEntry **nb;
        size_t n;

        if (a->n_entries <= a->n_buckets / 2 || a->n_buckets >= a->max_buckets)
                return;
        n = a->n_buckets * 2;
        nb = calloc(n, sizeof(*nb));
        if (!nb)
                return;
        for (size_t i = 0; i < a->n_buckets; i++)
                for (AggEntry *e = a->buckets[i], *next; e; e = next) {
                        next = e->hnext;
                        e->hnext = nb[e->hash & (n - 1)];
                        nb[e->hash & (n - 1)] = e;
                }
        free(a->buckets);
        a->buckets = nb;
        a->n_buckets = n;
}

static AggEntry *entry_alloc(Aggregator *a) {
        AggEntry *e, **nc, *chunk;
        size_t n;

        if (!a->free_list) {
                n = MIN((size_t) AGG_CHUNK, a->cfg.max_keys - a->n_allocated);
                if (n == 0)
                        return NULL;
                nc = reallocarray(a->chunks, a->n_chunks + 1, sizeof(*nc));
                if (!nc)
                        return NULL;
                a->chunks = nc;
                chunk = malloc(n * sizeof(*chunk));
                if (!chunk)
                        return NULL;
                a->chunks[a->n_chunks++] = chunk;
                a->n_allocated += n;
                for (size_t i = 0; i < n; i++) {
                        chunk[i].hnext = a->free_list;
                        a->free_list = &chunk[i];
                }
        }
        e = a->free_list;
        a->free_list = e->hnext;
        return e;
}

static void entry_release(Aggregator *a, AggEntry *e) {
        e->hnext = a->free_list;
        a->free_list = e;
}

/* ---- windows ---- */

static void heap_swap(AggWindow **h, size_t i, size_t j) {
        AggWindow *t = h[i];
        h[i] = h[j];
        h[j] = t;
}

static int heap_push(Aggregator *a, AggWindow *w) {
        size_t i;

        if (a->n_windows == a->heap_cap) {
                size_t cap = MAX(a->heap_cap * 2, (size_t) 16);
                AggWindow **nh = reallocarray(a->heap, cap, sizeof(*nh));
                if (!nh)
                        return -ENOMEM;
                a->heap = nh;
                a->heap_cap = cap;
        }
        i = a->n_windows++;
        a->heap[i] = w;
        while (i > 0 && a->heap[(i - 1) / 2]->index > a->heap[i]->index) {
                heap_swap(a->heap, i, (i - 1) / 2);
                i = (i - 1) / 2;
        }
        return 0;
}

static void heap_pop(Aggregator *a) {
        size_t i = 0;

        assert(a->n_windows > 0);
        a->heap[0] = a->heap[--a->n_windows];
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < a->n_windows && a->heap[l]->index < a->heap[m]->index)
                        m = l;
                if (r < a->n_windows && a->heap[r]->index < a->heap[m]->index)
                        m = r;
                if (m == i)
                        break;
                heap_swap(a->heap, i, m);
                i = m;
        }
}

static size_t window_bucket(const Aggregator *a, uint64_t index) {
        return hash_words(&index, sizeof(index), a->seed) & (a->n_wbuckets - 1);
}

static void wbuckets_maybe_grow(Aggregator *a) {
        AggWindow **nb;
        size_t old = a->n_wbuckets;

        if (a->n_windows <= old || old >= a->max_buckets)
                return;
        nb = calloc(old * 2, sizeof(*nb));
        if (!nb)
                return;
        a->n_wbuckets = old * 2;
        for (size_t i = 0; i < old; i++)
                for (AggWindow *w = a->wbuckets[i], *next; w; w = next) {
                        size_t b = window_bucket(a, w->index);
                        next = w->hnext;
                        w->hnext = nb[b];
                        nb[b] = w;
                }
        free(a->wbuckets);
        a->wbuckets = nb;
}

static AggWindow *window_get(Aggregator *a, uint64_t index) {
        AggWindow *w;
        size_t b;

        if (a->last_window && a->last_window->index == index)
                return a->last_window;
        b = window_bucket(a, index);
        for (w = a->wbuckets[b]; w; w = w->hnext)
                if (w->index == index)
                        return a->last_window = w;

        w = calloc(1, sizeof(*w));
        if (!w)
                return NULL;
        w->index = index;
        if (heap_push(a, w) < 0) {
                free(w);
                return NULL;
        }
        w->hnext = a->wbuckets[b];
        a->wbuckets[b] = w;
        wbuckets_maybe_grow(a);
        return a->last_window = w;
}

/* Removes the (empty) window at the top of the heap. */
static void window_pop(Aggregator *a) {
        AggWindow *w = a->heap[0], **link;

        assert(!w->head);
        heap_pop(a);
        link = &a->wbuckets[window_bucket(a, w->index)];
        while (*link != w)
                link = &(*link)->hnext;
        *link = w->hnext;
        if (a->last_window == w)
                a->last_window = NULL;
        free(w);
}

/* Emits and frees the first entry of the oldest window, and the window once empty. */
static void emit_oldest_entry(Aggregator *a) {
        AggWindow *w = a->heap[0];
        AggEntry *e = w->head;

        w->head = e->wnext;
        if (!w->head)
                w->tail = NULL;
        out_push(a, &e->key, e);
        entry_unhash(a, e);
        entry_release(a, e);
        a->n_entries--;
        if (!w->head)
                window_pop(a);
}

static void emit_oldest_window(Aggregator *a) {
        AggWindow *w = a->heap[0];
        bool last;

        do {
                last = !w->head->wnext;         /* the window is freed with its last entry */
                emit_oldest_entry(a);
        } while (!last);
}

/* ---- public ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(Aggregator *, agg_free);

int agg_new(Aggregator **ret, const AggConfig *cfg, AggEmitFn emit, void *userdata) {
        _cleanup_(agg_freep) Aggregator *a = NULL;

        assert(ret);
        assert(cfg);
        assert(emit);
        if (!config_valid(cfg))
                return -EINVAL;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->cfg = *cfg;
        a->window_ms = (uint64_t) cfg->window_s * 1000u;
        a->late_ms = (uint64_t) cfg->late_s * 1000u;
        a->emit = emit;
        a->userdata = userdata;
        a->seed = hash_random_seed(a);
        a->max_buckets = hash_pow2_at_least(cfg->max_keys * 2);
        a->n_buckets = MIN((size_t) AGG_INITIAL_BUCKETS, a->max_buckets);
        a->buckets = calloc(a->n_buckets, sizeof(*a->buckets));
        a->n_wbuckets = MIN((size_t) AGG_INITIAL_WINDOW_BUCKETS, a->max_buckets);
        a->wbuckets = calloc(a->n_wbuckets, sizeof(*a->wbuckets));
        a->out = malloc(AGG_EMIT_BATCH * sizeof(*a->out));
        if (!a->buckets || !a->wbuckets || !a->out)
                return -ENOMEM;

        *ret = TAKE_PTR(a);
        return 0;
}

Aggregator *agg_free(Aggregator *a) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < a->n_windows; i++)
                free(a->heap[i]);
        free(a->heap);
        free(a->wbuckets);
        for (size_t i = 0; i < a->n_chunks; i++)
                free(a->chunks[i]);
        free(a->chunks);
        free(a->buckets);
        free(a->out);
        free(a);
        return NULL;
}

void agg_add(Aggregator *a, const FlowRecord *r, uint64_t now_ms) {
        AggWindow *w;
        AggEntry *e;
        AggKey k;
        uint64_t h;

        assert(a);
        assert(r);
        a->stats.in++;
        key_from_record(a, r, &k);
        if (k.window < a->closed)
                a->stats.late++;
        h = hash_words(&k, sizeof(k), a->seed);

        e = entry_find(a, &k, h);
        if (e) {
                if (!entry_merge(e, r)) {
                        /* a sum would wrap: emit what the entry holds and restart it */
                        out_push(a, &e->key, e);
                        out_flush(a);
                        entry_set(e, r);
                }
                return;
        }

        if (a->n_entries >= a->cfg.max_keys) {
                size_t n = MIN(MAX(a->cfg.max_keys / AGG_EVICT_DIVISOR, (size_t) 1),
                               (size_t) AGG_EMIT_BATCH);
                for (size_t i = 0; i < n && a->n_windows > 0; i++) {
                        emit_oldest_entry(a);
                        a->stats.evicted_early++;
                }
                out_flush(a);
        }

        /* the entry first: a window, once created, must not stay empty */
        e = entry_alloc(a);
        w = e ? window_get(a, k.window) : NULL;
        if (!w) {
                /* out of memory: pass the record on as its own aggregate */
                AggEntry tmp;

                if (e)
                        entry_release(a, e);
                entry_set(&tmp, r);
                out_push(a, &k, &tmp);
                out_flush(a);
                a->stats.evicted_early++;
                return;
        }
        e->key = k;
        e->hash = h;
        e->wnext = NULL;
        entry_set(e, r);
        e->hnext = a->buckets[h & (a->n_buckets - 1)];
        a->buckets[h & (a->n_buckets - 1)] = e;
        if (w->tail)
                w->tail->wnext = e;
        else
                w->head = e;
        w->tail = e;
        a->n_entries++;
        buckets_maybe_grow(a);
}

void agg_tick(Aggregator *a, uint64_t now_ms) {
        uint64_t closed;

        assert(a);
        /* window i ends at (i + 1) * window_ms; it is due when that is <= now - late, i.e.
         * i < (now - late) / window_ms (written this way so it cannot overflow) */
        closed = now_ms >= a->late_ms ? (now_ms - a->late_ms) / a->window_ms : 0;
        a->closed = MAX(a->closed, closed);
        while (a->n_windows > 0 && a->heap[0]->index < a->closed)
                emit_oldest_window(a);
        out_flush(a);
}

void agg_flush(Aggregator *a) {
        assert(a);
        while (a->n_windows > 0)
                emit_oldest_window(a);
        out_flush(a);
}

void agg_get_stats(const Aggregator *a, AggStats *ret) {
        assert(a);
        assert(ret);
        *ret = a->stats;
        ret->live_keys = a->n_entries;
}
