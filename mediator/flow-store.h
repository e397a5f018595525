/* SPDX-License-Identifier: MIT */
/*
 * flow-store.h - the mediator's bounded in-memory store of recent raw flows, appended to by
 * the ingest thread and queried by one or more query threads.
 *
 * Layout. Records live in a ring of fixed-size segments (cfg->segment_flows records each).
 * Every appended record gets the next 64-bit sequence number (0, 1, 2, ...: its position in
 * the stream); segment k of the stream holds seqs [k * segment_flows, (k + 1) *
 * segment_flows). When every segment is in use and the newest ("head") one is full, the oldest
 * segment is recycled whole, so the store holds between (segments - 1) and `segments` full
 * segments' worth of records once it has wrapped.
 *
 * Indexes. Each segment keeps min/max start_ms and end_ms, a 256-bit protocol bitmap, a
 * 65536-bit bitmap each for src_port and dst_port, and a blocked Bloom filter (4 bytes per
 * record) over the src, dst and exporter addresses, each inserted at several prefix lengths
 * (IPv4 /8 /16 /24 /32, IPv6 /32 /48 /64 /128). A CIDR of length p is probed at the largest
 * indexed length <= p (shorter than the shortest indexed length answers "maybe"), so exact
 * addresses and CIDRs both prune. Inside a segment, every block of 1024 records keeps its own
 * time bounds, protocol bitmap and a 4 KiB Bloom filter over the same address keys plus both
 * ports, so a segment that cannot be skipped is scanned only in the blocks that may match.
 * Queries feed these through FlowFilterProbe into flow_filter_may_match().
 *
 * Query order. Results are ordered by (end_ms desc, seq desc), a total order (seqs are
 * unique). Segments and blocks are visited newest first while a heap keeps the best
 * limit + 1 matches; since arrival order is close to end_ms order, the scan stops as soon as no
 * remaining (older) segment's max end_ms can beat the heap's worst entry. The cursor is
 * exclusive: a page returns only records ordered strictly after (cursor_end_ms, cursor_seq).
 *
 * Concurrency. One thread appends; any number of threads query. Every segment has its own
 * writer-preferring rwlock that guards its records and indexes; one mutex guards the ring
 * (head slot, per-slot generation, counters) and is only ever held for O(1) work by the
 * appender or a copy of the ring's small per-segment summary by a query.
 *  - The appender writes at most one block (1024 records) per acquisition of the head
 *    segment's write lock, updating records, indexes and the summary together, so readers
 *    never see a record without its index entry or a torn record. Recycling takes the oldest
 *    segment's write lock, clears it and bumps its generation.
 *  - A query snapshots the ring (slots, generations, max end_ms) under the mutex, then read-
 *    locks one segment at a time, skipping a segment whose generation changed since the
 *    snapshot (it was recycled: its records are gone and its new ones arrived after the
 *    query started). It never holds two locks at once.
 *  - Hence the appender waits for a query at most for the remainder of one segment's scan
 *    (queries hold a read lock only while scanning that segment, and writer preference stops
 *    new readers from extending the wait), and a query waits for the appender at most for one
 *    block's worth of appends or one segment's reset.
 * Records appended after a query took its snapshot may or may not be seen by it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow-filter.h"
#include "flow.h"
#include "macro.h"

#define FLOW_STORE_DEFAULT_SEGMENT_FLOWS 65536u
#define FLOW_STORE_MIN_SEGMENT_FLOWS 64u
#define FLOW_STORE_MAX_SEGMENT_FLOWS (1u << 22)
#define FLOW_STORE_MAX_SEGMENTS 65536u
#define FLOW_STORE_BLOCK_FLOWS 1024u     /* records per in-segment block index */
#define FLOW_STORE_MAX_LIMIT 100000u

typedef struct FlowStore FlowStore;

typedef struct FlowStoreConfig {
        uint64_t max_flows;             /* cap on stored records, 0 = none */
        uint64_t max_memory_bytes;      /* cap on records + indexes, 0 = none */
        uint32_t segment_flows;         /* records per segment, 0 = default (65536) */
} FlowStoreConfig;

typedef struct FlowStoreQuery {
        const FlowFilter *filter;       /* NULL matches every record; borrowed */
        uint64_t from_ms, to_ms;        /* flows whose [start_ms, end_ms] overlaps
                                         * [from_ms, to_ms); 0 / UINT64_MAX for open */
        size_t limit;                   /* 1..FLOW_STORE_MAX_LIMIT */
        bool has_cursor;                /* continue after (cursor_end_ms, cursor_seq) */
        uint64_t cursor_end_ms, cursor_seq;
        uint64_t max_scan;              /* records examined, 0 = unlimited */
        uint64_t deadline_us;           /* CLOCK_MONOTONIC, 0 = none */
} FlowStoreQuery;

typedef struct FlowStoreResult {
        FlowRecord *flows;              /* n records, (end_ms desc, seq desc); owned */
        uint64_t *seqs;                 /* n sequence numbers, flows[i] has seqs[i]; owned */
        size_t n;
        bool has_more;                  /* more matches after the last one (or truncated) */
        uint64_t next_end_ms, next_seq; /* cursor for the next page: the last record's; when
                                         * n == 0 the query's own cursor (or 0) */
        bool truncated;                 /* max_scan or the deadline stopped the scan early;
                                         * the records are then the best ones among those
                                         * examined, not necessarily the best overall */
        uint64_t scanned;               /* records examined */
        uint64_t segments_scanned;      /* segments at least partly scanned */
        uint64_t segments_skipped;      /* segments of the snapshot not scanned: pruned by
                                         * time range, cursor, index or heap bound, recycled
                                         * meanwhile, or after the early stop */
        uint64_t blocks_skipped;        /* blocks pruned inside scanned segments */
} FlowStoreResult;

typedef struct FlowStoreStats {
        uint64_t records;               /* currently stored */
        uint64_t capacity;              /* segments * segment_flows */
        uint64_t memory_bytes;          /* allocated for records and indexes */
        uint64_t appended;              /* records appended since creation */
        uint64_t overwritten;           /* records dropped by recycling */
        uint64_t oldest_seq, newest_seq;        /* stored seq range, 0 when empty */
        uint64_t oldest_end_ms, newest_end_ms;  /* min / max end_ms stored, 0 when empty */
        uint32_t segments;              /* segments in the ring */
        uint32_t segment_flows;         /* effective records per segment */
} FlowStoreStats;

/**
 * flow_store_memory_per_segment() - bytes one segment of @segment_flows records takes,
 * records and indexes together (the figure max_memory_bytes is divided by).
 */
uint64_t flow_store_memory_per_segment(uint32_t segment_flows);

/**
 * flow_store_new() - allocates an empty store.
 * @ret: the store, owned by the caller (flow_store_free()); set on success only
 * @cfg: limits. The number of segments is the smaller of max_flows / segment_flows and
 *       max_memory_bytes / flow_store_memory_per_segment(segment_flows). If that is below 2,
 *       segment_flows is halved (down to FLOW_STORE_MIN_SEGMENT_FLOWS) until two fit; if it
 *       is above FLOW_STORE_MAX_SEGMENTS, segment_flows is doubled. The effective value is in
 *       FlowStoreStats. Memory is reserved up front but only touched as segments fill.
 *
 * Return: 0; -EINVAL when both caps are 0, segment_flows is out of range or the caps do not
 * fit two minimal segments; -ENOMEM.
 */
int flow_store_new(FlowStore **ret, const FlowStoreConfig *cfg);

/* Frees @s (NULL is fine). No append or query may be running. Returns NULL. */
FlowStore *flow_store_free(FlowStore *s);

/**
 * flow_store_append() - copies @n records into the store, recycling the oldest segment as
 * needed. Call from one thread at a time (the ingest thread). Never fails; it waits for a
 * query at most for the rest of one segment's scan.
 */
void flow_store_append(FlowStore *s, const FlowRecord *recs, size_t n);

/**
 * flow_store_query() - the first @q->limit records matching @q, in (end_ms desc, seq desc)
 * order, after the cursor if one is given. Safe to call from several threads at once and
 * concurrently with flow_store_append().
 * @ret: set on success only; it is overwritten, not cleared first. The caller releases it
 *       with flow_store_result_clear().
 *
 * Return: 0 (also when truncated, see FlowStoreResult); -EINVAL for limit 0 or above
 * FLOW_STORE_MAX_LIMIT, or from_ms > to_ms; -ENOMEM.
 */
int flow_store_query(FlowStore *s, const FlowStoreQuery *q, FlowStoreResult *ret);

/* Frees the arrays of @r and zeroes it. */
void flow_store_result_clear(FlowStoreResult *r);

/* A consistent snapshot of the counters. Thread-safe. */
void flow_store_get_stats(FlowStore *s, FlowStoreStats *ret);

DEFINE_TRIVIAL_CLEANUP_FUNC(FlowStore *, flow_store_free);
