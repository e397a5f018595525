/* SPDX-License-Identifier: MIT */
/*
 * rollup.h - per-minute rollups of the flow stream: exact totals and the top keys of seven
 * dimensions per minute, kept for a configured horizon in bounded memory, plus the list of
 * exporters seen.
 *
 * A minute (records bucketed by end_ms / 60000) is *open* until seal_after_s after it ends
 * by wall clock. An open minute keeps exact per-key sums in one hash table per dimension, up
 * to live_max_keys keys; updates for further keys go to that dimension's `other` remainder
 * and mark the (minute, dimension) inexact. Sealing keeps, per dimension, the union of the
 * top_k keys by octets, by packets and by flows and moves the rest into `other` (inexact if
 * anything moved). Records arriving later for a sealed minute update a kept key or `other`.
 * Totals per minute are always exact, and for every (minute, dimension)
 * sum(kept keys) + other == totals ("conservation"), which is what lets query results from
 * several pods be merged exactly by summing per key.
 *
 * Threading: rollup_add() and rollup_tick() are the writer side and are serialized by the
 * rollup itself (normally one ingest thread calls both). Every query function may run on any
 * other thread at the same time. rollup_top() takes the lock once per minute it reads, so
 * the ingest thread never waits for more than one minute's worth of work; the other queries
 * hold it for one pass over the minute headers or the exporters (microseconds). The writer
 * holds it for at most 256 records at a time, and seals minutes outside it.
 *
 * Memory bound (rollup_memory_bound() computes it). With H = horizon_min, K = top_k,
 * L = live_max_keys, O = min(ceil(seal_after_s / 60) + 6, H + 5) open minutes at most, and
 * per dimension d an entry size S_d (24 bytes of sums + the key padded to 8: addresses 48,
 * ports 32, proto 32, exporter 48, pair 64), a key space N_d (proto 256, ports 65536, the
 * others unbounded) and n_d = min(L, N_d):
 *     ring       (H + 6) * ~600 bytes of per-minute headers
 *   + sealed     H * sum_d min(3K, N_d) * S_d
 *   + open       O * sum_d (8 * cap(n_d) + min(L, max(16, 2 n_d)) * S_d)
 *                    cap(x) = the power of two >= 4x/3 + 1 (at least 16): index slots
 *   + exporters  max_exporters * ~100 bytes
 * With the defaults: sealed 1440 * 406 KiB = 0.56 GiB, reached only if the three top-500
 * lists of every dimension are disjoint in every minute (0.19 GiB when they coincide), plus
 * 8 open minutes of at most 23 MiB: 0.74 GiB in all. Measured: 60 minutes of 3000 records
 * with top_k 500 hold 13 MiB. A running query also holds one entry per distinct key of its
 * window and dimension (at most ROLLUP_QUERY_MAX_KEYS) plus an index: 80 MiB for pairs at
 * the cap, typically a few MiB.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow.h"
#include "macro.h"

typedef enum RollupDim {
        ROLLUP_DIM_SRC_ADDR,
        ROLLUP_DIM_DST_ADDR,
        ROLLUP_DIM_SRC_PORT,
        ROLLUP_DIM_DST_PORT,
        ROLLUP_DIM_PROTO,
        ROLLUP_DIM_EXPORTER,    /* exporter address + observation domain id */
        ROLLUP_DIM_PAIR,        /* (source address, destination address) */
        _ROLLUP_DIM_MAX,
        _ROLLUP_DIM_INVALID = -EINVAL,
} RollupDim;

typedef enum RollupMetric {
        ROLLUP_METRIC_OCTETS,
        ROLLUP_METRIC_PACKETS,
        ROLLUP_METRIC_FLOWS,
        _ROLLUP_METRIC_MAX,
        _ROLLUP_METRIC_INVALID = -EINVAL,
} RollupMetric;

#define ROLLUP_HORIZON_MIN_DEFAULT 1440u
#define ROLLUP_HORIZON_MIN_MAX 10080u
#define ROLLUP_TOP_K_DEFAULT 500u
#define ROLLUP_TOP_K_MIN 10u
#define ROLLUP_TOP_K_MAX 100000u
#define ROLLUP_LIVE_MAX_KEYS_DEFAULT 65536u
#define ROLLUP_LIVE_MAX_KEYS_MAX (1u << 24)
#define ROLLUP_SEAL_AFTER_S_DEFAULT 120u
#define ROLLUP_SEAL_AFTER_S_MAX 3600u
#define ROLLUP_MAX_EXPORTERS_DEFAULT 10000u
#define ROLLUP_MAX_EXPORTERS_MAX 1000000u

/* Records whose end_ms lies more than this ahead of now are clamped to now's minute. */
#define ROLLUP_FUTURE_MAX_MS (5u * 60u * 1000u)
/* Distinct keys one rollup_top() aggregates at most; beyond, the result is inexact. */
#define ROLLUP_QUERY_MAX_KEYS (1u << 20)
/* Points one rollup_totals() returns at most. */
#define ROLLUP_SERIES_MAX_POINTS 10000u

typedef struct RollupConfig {
        uint32_t horizon_min;   /* minutes kept, 1..10080, default 1440 */
        uint32_t top_k;         /* per metric, per sealed minute and dimension, 10..100000 */
        uint32_t live_max_keys; /* exact keys per dimension of an open minute, 1..2^24 */
        uint32_t seal_after_s;  /* a minute is sealed this long after it ends, 0..3600 */
        uint32_t max_exporters; /* exporters tracked, 1..1000000 */
} RollupConfig;

typedef struct Rollup Rollup;

typedef struct RollupSums {
        uint64_t octets;
        uint64_t packets;
        uint64_t flows;         /* a record's flows field, 0 counting as 1 */
} RollupSums;

/* One key of any dimension; the fields a dimension does not use are zero. */
typedef struct RollupKey {
        uint8_t addr[16];       /* SRC_ADDR, DST_ADDR, EXPORTER: the address; PAIR: source */
        uint8_t addr2[16];      /* PAIR: destination address */
        uint32_t odid;          /* EXPORTER */
        uint16_t port;          /* SRC_PORT, DST_PORT */
        uint8_t proto;          /* PROTO */
        uint8_t family;         /* 4 or 6 for the address dimensions (PAIR: both), else 0 */
} RollupKey;

typedef struct RollupTopEntry {
        RollupKey key;
        RollupSums sums;        /* the key's exact partial sums over the window */
} RollupTopEntry;

typedef struct RollupTopResult {
        RollupDim dim;
        RollupMetric metric;
        uint64_t start_ms;      /* first minute edge of the window */
        uint64_t end_ms;        /* minute edge after the last minute of the window */
        RollupTopEntry *entries;        /* best first, owned by the result */
        size_t n_entries;
        RollupSums totals;      /* everything in the window */
        RollupSums other;       /* totals minus the returned entries */
        bool exact;             /* every key's traffic in the window is in its entry (see
                                 * rollup_top()); `other` is then the keys not returned */
        uint32_t minutes_covered;       /* minutes of the window that hold data */
} RollupTopResult;

typedef struct RollupPoint {
        uint64_t start_ms;
        uint64_t flows;
        uint64_t octets;
        uint64_t packets;
} RollupPoint;

typedef struct RollupSeries {
        uint32_t step_s;
        RollupPoint *points;    /* owned by the series */
        size_t n_points;
} RollupSeries;

typedef struct RollupExporter {
        uint8_t addr[16];       /* IPv4-mapped for family 4 */
        uint8_t family;
        uint32_t odid;
        uint64_t first_seen_ms; /* arrival time (now_ms of rollup_add) */
        uint64_t last_seen_ms;
        uint64_t flows;
        uint64_t octets;
        uint64_t packets;
} RollupExporter;

typedef struct RollupStats {
        uint32_t minutes_open;          /* minutes still keeping exact per-key tables */
        uint32_t minutes_sealed;
        uint64_t keys;                  /* per-key entries held over all minutes and dimensions */
        uint64_t memory_bytes;          /* estimate of what the rollup holds now */
        uint64_t memory_bound;          /* rollup_memory_bound() of the configuration */
        uint64_t records;               /* records given to rollup_add() */
        uint64_t stale;                 /* records older than the horizon, not added */
        uint64_t future;                /* records too far ahead, clamped to now's minute */
        uint64_t overflow;              /* key updates to `other`: open minute's table full */
        uint64_t evicted;               /* keys moved to `other` when their minute was sealed */
        uint64_t late_other;            /* key updates to `other`: sealed minute, key not kept */
        uint64_t nomem;                 /* key updates to `other` because an allocation failed */
        uint32_t exporters;             /* exporters tracked */
        uint64_t exporters_dropped;     /* records of exporters not tracked (table full) */
} RollupStats;

/**
 * rollup_config_default() - fills @ret with the documented defaults.
 */
void rollup_config_default(RollupConfig *ret);

/**
 * rollup_memory_bound() - worst-case bytes held by a rollup with configuration @cfg (the
 * formula at the top of this header), excluding the transient memory of running queries.
 */
uint64_t rollup_memory_bound(const RollupConfig *cfg);

/**
 * rollup_new() - creates an empty rollup.
 * @ret: set to the new rollup on success
 * @cfg: configuration (copied), or NULL for the defaults
 *
 * Return: 0, -EINVAL for a value out of range, -ENOMEM.
 */
int rollup_new(Rollup **ret, const RollupConfig *cfg);

/**
 * rollup_free() - frees @r (NULL is fine). No other thread may still use it.
 * Return: NULL.
 */
Rollup *rollup_free(Rollup *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Rollup *, rollup_free);

/**
 * rollup_add() - accounts @n records that arrived at wall-clock time @now_ms.
 *
 * Each record goes to the minute of its end_ms. A record whose minute is older than the
 * horizon (end_ms / 60000 <= now / 60000 - horizon_min) is counted as stale and dropped; a
 * record whose end_ms lies more than ROLLUP_FUTURE_MAX_MS after now is counted as future and
 * added to now's minute (so the totals still see the traffic); other records ahead of now go
 * to their own (open) minute. A record for a minute past its seal time goes to the sealed
 * minute (created sealed if it had no records yet): into a kept key, as a new key while that
 * dimension is exact and holds fewer than top_k keys, else into `other`. Every record updates
 * its exporter's entry. Minutes due for sealing or expiry at @now_ms are handled first, as by
 * rollup_tick(). The clock the rollup uses is the largest @now_ms seen, so a clock stepping
 * back does not reopen anything. Allocation failures never lose totals: the key update goes
 * to `other` (counted as nomem). Records are trusted (families come validated from
 * flow_batch_decode()).
 */
void rollup_add(Rollup *r, const FlowRecord *recs, size_t n, uint64_t now_ms);

/**
 * rollup_tick() - seals minutes that ended at least seal_after_s before @now_ms, expires
 * minutes older than the horizon and exporters not seen within it. Call it about once a
 * second; rollup_add() does the same work, so this matters only while no records arrive.
 */
void rollup_tick(Rollup *r, uint64_t now_ms);

/**
 * rollup_top() - the top keys of @dim by @metric over [@from_ms, @to_ms).
 * @limit: entries to return at most (0 returns only totals and other)
 * @ret:   filled on success; release with rollup_top_result_clear()
 *
 * Sums every key over each minute overlapping the window (a minute m overlaps when
 * m * 60000 < to_ms and (m + 1) * 60000 > from_ms), ranks by @metric descending, ties by
 * rollup_key_compare() ascending, so the order is deterministic. Each entry carries all three
 * sums so that results from several rollups can be merged exactly by summing per key. The
 * entries' sums are exact; `exact` is false when some traffic of the window could not be
 * attributed to its key (overflow, sealing, late records, or more than ROLLUP_QUERY_MAX_KEYS
 * distinct keys in the window), which then sits in `other` only.
 *
 * Return: 0, -EINVAL (bad dimension, metric, or from_ms >= to_ms), -ENOMEM.
 */
int rollup_top(Rollup *r, RollupDim dim, RollupMetric metric, uint64_t from_ms, uint64_t to_ms,
               size_t limit, RollupTopResult *ret);

void rollup_top_result_clear(RollupTopResult *res);

/**
 * rollup_totals() - exact totals over [@from_ms, @to_ms) in steps of @step_s seconds.
 * @step_s: a positive multiple of 60
 * @ret:    filled on success; release with rollup_series_clear()
 *
 * Points are aligned to multiples of the step since the epoch (so series from several
 * rollups line up): the first starts at from_ms rounded down to the step, and every step up
 * to to_ms has a point; minutes without data (empty, or beyond the horizon) count zero.
 *
 * Return: 0, -EINVAL (step not a positive multiple of 60, or from_ms >= to_ms), -E2BIG
 * (more than ROLLUP_SERIES_MAX_POINTS points), -ENOMEM.
 */
int rollup_totals(Rollup *r, uint64_t from_ms, uint64_t to_ms, uint32_t step_s,
                  RollupSeries *ret);

void rollup_series_clear(RollupSeries *s);

/**
 * rollup_exporters() - the exporters seen within the horizon, sorted by address, family and
 * ODID. Counters cover every record since the exporter was first seen (stale ones too).
 * @ret: set to an array the caller free()s (NULL when @ret_n is 0)
 *
 * Return: 0 or -ENOMEM.
 */
int rollup_exporters(Rollup *r, RollupExporter **ret, size_t *ret_n);

/**
 * rollup_get_stats() - counters and the current size; walks the minute headers under the lock.
 */
void rollup_get_stats(Rollup *r, RollupStats *ret);

/**
 * rollup_key_compare() - the tie-break order of rollup_top(): addresses byte-wise (address,
 * then PAIR's destination), then family, then odid, port and proto numerically.
 */
int rollup_key_compare(RollupDim dim, const RollupKey *a, const RollupKey *b);

const char *rollup_dim_to_string(RollupDim d);
RollupDim rollup_dim_from_string(const char *s);
const char *rollup_metric_to_string(RollupMetric m);
RollupMetric rollup_metric_from_string(const char *s);
