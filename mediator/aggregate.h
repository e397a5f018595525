/* SPDX-License-Identifier: MIT */
/*
 * aggregate.h - RFC 7015-style flow aggregation: records that share a window and the
 * configured (optionally masked) key fields merge into one output record.
 *
 * Windows are fixed, aligned to the Unix epoch: a record belongs to window
 * floor(start_ms / window_ms), whatever its duration. An entry is emitted once its window
 * ended at least late_s ago (agg_tick()), early when max_keys entries are live and a new
 * key arrives (the oldest entries of the oldest window go first, counted in evicted_early),
 * or on agg_flush(). Octets, packets and flows are conserved exactly: every record added
 * leaves through exactly one emitted record.
 *
 * The output record carries the key fields (addresses masked), start_ms = min start,
 * end_ms = max end, summed octets and packets, flows = number of flows merged (an input
 * record's flows of 0 counts as 1), tcp_flags OR-ed over the merged records. Every other
 * field is zero except: family (the records' family when src_addr or dst_addr is a key,
 * else 4), exporter_family (the exporter's family when exporter is a key, else 4 with a
 * zero address) and direction (255, unknown, unless direction is a key).
 *
 * Memory is bounded by max_keys entries (about 160 bytes each) plus a hash table; every
 * operation is O(1) amortized per record. Single-threaded: the mediator's event loop.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "flow.h"

/* Key fields. The three address fields come first: they index the prefix arrays. */
typedef enum AggField {
        AGG_FIELD_SRC_ADDR,
        AGG_FIELD_DST_ADDR,
        AGG_FIELD_EXPORTER,
        AGG_FIELD_SRC_PORT,
        AGG_FIELD_DST_PORT,
        AGG_FIELD_PROTO,
        AGG_FIELD_TOS,
        AGG_FIELD_INGRESS_IF,
        AGG_FIELD_EGRESS_IF,
        AGG_FIELD_SRC_AS,
        AGG_FIELD_DST_AS,
        AGG_FIELD_VLAN,
        AGG_FIELD_ODID,
        AGG_FIELD_DIRECTION,
        _AGG_FIELD_MAX,
} AggField;

#define AGG_FIELD_BIT(f) (UINT32_C(1) << (f))
#define AGG_N_ADDR_FIELDS 3

#define AGG_WINDOW_S_MAX 86400u
#define AGG_LATE_S_MAX 3600u
#define AGG_MAX_KEYS_MAX 10000000u
#define AGG_DEFAULT_WINDOW_S 60u
#define AGG_DEFAULT_LATE_S 5u
#define AGG_DEFAULT_MAX_KEYS 100000u

/* Records per emit() call at most. */
#define AGG_EMIT_BATCH 1024u

typedef struct AggConfig {
        uint32_t fields;                        /* AGG_FIELD_BIT() of each key field, != 0 */
        uint8_t prefix4[AGG_N_ADDR_FIELDS];     /* IPv4 prefix length per address field */
        uint8_t prefix6[AGG_N_ADDR_FIELDS];     /* IPv6 prefix length per address field */
        uint32_t window_s;                      /* 1..AGG_WINDOW_S_MAX */
        uint32_t late_s;                        /* 0..AGG_LATE_S_MAX */
        size_t max_keys;                        /* 1..AGG_MAX_KEYS_MAX live entries */
} AggConfig;

/**
 * agg_config_init() - sets @ret to the defaults: no key fields (the caller adds some),
 * full-length prefixes, window_s 60, late_s 5, max_keys 100000.
 */
void agg_config_init(AggConfig *ret);

/**
 * agg_config_parse() - parses the `aggregate` object of a pipeline.
 * @obj:    {"keys": ["src_addr/24", "dst_addr", "proto", "dst_port"], "window_s": 60,
 *           "max_keys": 100000, "late_s": 5}. Key names: src_addr, dst_addr, exporter,
 *           src_port, dst_port, proto, tos, ingress_if, egress_if, src_as, dst_as, vlan,
 *           odid, direction. Address keys take "/v4len" or "/v4len/v6len" (default full
 *           length; "src_addr/24" keeps IPv6 addresses whole).
 * @ret:    set on success only
 * @reterr: on -EINVAL a heap message naming the member ("keys[2]: unknown field 'foo'",
 *          "window_s: must be 1..86400, got 0"); the caller frees it
 *
 * Return: 0, -EINVAL, or -ENOMEM.
 */
int agg_config_parse(json_t *obj, AggConfig *ret, char **reterr);

/* Called with up to AGG_EMIT_BATCH records, valid only during the call. It must not call
 * back into the aggregator that emits. */
typedef void (*AggEmitFn)(void *userdata, const FlowRecord *recs, size_t n);

typedef struct Aggregator Aggregator;

/**
 * agg_new() - creates an aggregator.
 * @cfg:  copied; must be valid as agg_config_parse() would return it
 * @emit: receives every output record (from agg_add() on early eviction, agg_tick() and
 *        agg_flush())
 *
 * Return: 0, -EINVAL for an invalid @cfg, or -ENOMEM.
 */
int agg_new(Aggregator **ret, const AggConfig *cfg, AggEmitFn emit, void *userdata);

/* Frees @a without emitting anything (call agg_flush() first to keep the data). */
Aggregator *agg_free(Aggregator *a);

/**
 * agg_add() - merges @r into its entry, creating the entry if needed.
 * @now_ms: the caller's clock; windows close on agg_tick() only, so it is not used yet
 *
 * A record for a window that agg_tick() already emitted starts a new entry (counted in
 * `late`) that the next agg_tick() emits. Never fails: when memory runs out the record is
 * emitted on its own (counted in evicted_early).
 */
void agg_add(Aggregator *a, const FlowRecord *r, uint64_t now_ms);

/* Emits every entry whose window ended at least late_s before @now_ms, oldest window first. */
void agg_tick(Aggregator *a, uint64_t now_ms);

/* Emits every entry (shutdown, reload). */
void agg_flush(Aggregator *a);

typedef struct AggStats {
        uint64_t in;                    /* records added */
        uint64_t out;                   /* records emitted */
        uint64_t live_keys;             /* entries waiting for their window to close */
        uint64_t evicted_early;         /* entries emitted before their window closed */
        uint64_t late;                  /* records for windows already emitted */
} AggStats;

void agg_get_stats(const Aggregator *a, AggStats *ret);
