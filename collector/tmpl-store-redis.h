/* SPDX-License-Identifier: MIT */
/*
 * tmpl-store-redis.h - the template store shared by collector replicas through Redis.
 *
 * Layout (ARCHITECTURE.md): hash <prefix>tmpl:{<exporter address>}:<odid>, field <template
 * id>, value the serialized template (ipfix_template_serialize()); the braces are a Redis
 * Cluster hash tag, so one exporter's templates live in one slot. Changes are published on
 * <prefix>tmpl:events so other replicas update their caches at once.
 *
 * Nothing here blocks a worker: every op answers from the local cache. A miss returns
 * -ENOENT and asks the store thread to fetch the template (HGET); when it arrives the store
 * notifies its listener and the workers decode the data they held. Writes happen only when
 * a definition changes and go out from the store thread (HSET, then PUBLISH); while Redis
 * is unreachable they wait in a bounded queue (coalesced per template) and are replayed on
 * reconnect, and decoding goes on from the cache (degraded).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "tmpl-store.h"

typedef struct RedisStoreConfig {
        const char *address;            /* "HOST:PORT", "[V6]:PORT" or "unix:/path" */
        const char *password;           /* the secret itself (read from a file), or NULL */
        unsigned db;
        const char *prefix;             /* key prefix, e.g. "ipfixd:" */
        uint32_t ttl_s;                 /* EXPIRE on every write; 0: templates never expire */
        uint32_t replica_id;            /* published with changes; our own are ignored: every
                                         * replica needs a distinct one */
        size_t max_queued;              /* writes kept while Redis is down */
        size_t max_cache;               /* templates in the local cache */
} RedisStoreConfig;

typedef struct RedisStoreStats {
        uint64_t connected;             /* 1 while the command connection is up */
        uint64_t connects, disconnects;
        uint64_t writes, writes_queued, writes_dropped, writes_failed;
        uint64_t fetches, fetch_hits, fetch_misses, fetch_skipped;
        uint64_t events_received, events_applied, events_bad;
        uint64_t resyncs;
        uint64_t cache_full;            /* remote templates not cached: cache full */               /* cached templates re-read after a resubscribe */
} RedisStoreStats;

/**
 * tmpl_store_new_redis() - starts the store thread and its connections (which retry with
 * backoff; an unreachable Redis at start is not an error).
 * Return: 0, -EINVAL for a bad address, -ENOMEM, or -errno.
 */
int tmpl_store_new_redis(TmplStore **ret, const RedisStoreConfig *cfg);

/* Copies the store's counters (thread-safe). */
void tmpl_store_redis_get_stats(TmplStore *s, RedisStoreStats *ret);

/* The local cache: an in-process store (tmpl-store.h) holding what this replica knows.
 * Reading it (lookup, tmpl_store_memory_foreach()) never touches Redis. Borrowed. */
TmplStore *tmpl_store_redis_get_cache(TmplStore *s);
