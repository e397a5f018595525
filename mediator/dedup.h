/* SPDX-License-Identifier: MIT */
/*
 * dedup.h - de-duplication: the same flow reported by several exporters (routers along
 * the path) passes once.
 *
 * Flow key = (family, src_addr, dst_addr, src_port, dst_port, proto); exporter identity =
 * (exporter_family, exporter_addr, odid). A record is a duplicate when a remembered report
 * of the same key from a *different* exporter has |start_ms difference| <= tolerance_ms
 * and |end_ms difference| <= tolerance_ms. Records that pass are remembered (duplicates are
 * not); the same exporter reporting the same key again is not a duplicate (the next report
 * of a long flow) and is remembered too.
 *
 * Memory is bounded: at most max_entries reports (about 104 bytes each), and at most
 * DEDUP_MAX_PER_KEY per flow key (the oldest of that key goes first). At max_entries the
 * oldest report by arrival is evicted. Both evictions count in `evicted`. Reports expire
 * hold_ms after their arrival (dedup_expire(), and lazily when their key is looked up).
 * Every operation is O(1) amortized. Single-threaded: the mediator's event loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "flow.h"

#define DEDUP_MAX_PER_KEY 8u
#define DEDUP_TOLERANCE_MS_MAX 3600000u
#define DEDUP_HOLD_MS_MAX 86400000u
#define DEDUP_MAX_ENTRIES_MAX 100000000u
#define DEDUP_DEFAULT_TOLERANCE_MS 1000u
#define DEDUP_DEFAULT_HOLD_MS 30000u
#define DEDUP_DEFAULT_MAX_ENTRIES 1000000u

typedef struct DedupConfig {
        uint64_t tolerance_ms;          /* 0..DEDUP_TOLERANCE_MS_MAX */
        uint64_t hold_ms;               /* 1..DEDUP_HOLD_MS_MAX */
        size_t max_entries;             /* 1..DEDUP_MAX_ENTRIES_MAX */
} DedupConfig;

/* Sets @ret to the defaults: tolerance_ms 1000, hold_ms 30000, max_entries 1000000. */
void dedup_config_init(DedupConfig *ret);

/**
 * dedup_config_parse() - parses the `dedup` object of a pipeline.
 * @obj:    {"tolerance_ms": 1000, "hold_ms": 30000, "max_entries": 1000000}, every member
 *          optional
 * @ret:    set on success only
 * @reterr: on -EINVAL a heap message naming the member ("hold_ms: must be 1..86400000,
 *          got 0"); the caller frees it
 *
 * Return: 0, -EINVAL, or -ENOMEM.
 */
int dedup_config_parse(json_t *obj, DedupConfig *ret, char **reterr);

typedef struct Dedup Dedup;

/**
 * dedup_new() - creates an empty de-duplicator.
 * @cfg: copied; values outside the bounds above return -EINVAL
 *
 * Return: 0, -EINVAL, or -ENOMEM.
 */
int dedup_new(Dedup **ret, const DedupConfig *cfg);
Dedup *dedup_free(Dedup *d);

/**
 * dedup_is_duplicate() - checks @r and remembers it unless it is a duplicate.
 * @now_ms: arrival time, for expiry
 *
 * Return: true when @r is a duplicate and should be dropped. Never fails: when memory for
 * a new report cannot be had, the oldest report is evicted instead (counted).
 */
bool dedup_is_duplicate(Dedup *d, const FlowRecord *r, uint64_t now_ms);

/* Drops the reports that arrived more than hold_ms before @now_ms, oldest first. */
void dedup_expire(Dedup *d, uint64_t now_ms);

typedef struct DedupStats {
        uint64_t checked;               /* records checked */
        uint64_t duplicates;            /* records found to be duplicates */
        uint64_t entries;               /* reports remembered now */
        uint64_t evicted;               /* reports dropped before expiry (either cap) */
} DedupStats;

void dedup_get_stats(const Dedup *d, DedupStats *ret);
