/* SPDX-License-Identifier: MIT */
/*
 * collector.h - the collector process: owns the configuration, the ZeroMQ context, the
 * template store and the worker threads; its own (main) thread runs an sd-event loop for
 * signals, periodic counter summaries, the metrics file and the pod's D-Bus
 * (collector-bus.h publishes the control surface below). No data passes through it.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "collector-config.h"
#include "counters.h"
#include "metrics.h"
#include "tmpl-store.h"

typedef struct Collector Collector;

/* Where the running configuration came from; every reload goes through the same chain. */
typedef struct CollectorOrigin {
        const char *config_path;        /* file re-read on SIGHUP and Reload(""), or NULL */
        const char *config_text;        /* the text the config was parsed from, or NULL */
        char *const *sets;              /* --set KEY=VALUE, re-applied on every reload */
        size_t n_sets;
        char *const *listens;           /* --listen URL, likewise */
        size_t n_listens;
} CollectorOrigin;

/**
 * collector_new() - opens every listener on every worker and the bus connection (which
 * connects once the loop runs); starts no thread of its own yet.
 * @cfg:    consumed (moved into the collector, zeroed in the caller)
 * @origin: copied; NULL: no file, no overrides
 * Return: 0 or -errno (already logged, naming what failed).
 */
int collector_new(Collector **ret, CollectorConfig *cfg, const CollectorOrigin *origin);
Collector *collector_free(Collector *c);

/**
 * collector_run() - starts the workers, runs until SIGTERM/SIGINT, then drains: workers
 * stop accepting, decode what they read, hand batches over within shutdown_timeout_ms.
 * Return: 0 or -errno.
 */
int collector_run(Collector *c);

/* Renders all counters (totals and per exporter) in Prometheus text format. */
void collector_render_metrics(Collector *c, MetricsBuf *b);

/*
 * Lifecycle as published on the bus (State): STARTING until the workers run; RUNNING, or
 * DEGRADED while the Redis template store is unreachable (the data path goes on from the
 * local cache, so a degraded collector is Ready); DRAINING from collector_drain() until
 * every worker has handed its last batch over, then DRAINED (not Ready; nothing is read any
 * more, and a later SIGTERM exits at once).
 */
typedef enum CollectorState {
        COLLECTOR_STARTING,
        COLLECTOR_RUNNING,
        COLLECTOR_DEGRADED,
        COLLECTOR_DRAINING,
        COLLECTOR_DRAINED,
        _COLLECTOR_STATE_MAX,
        _COLLECTOR_STATE_INVALID = -EINVAL,
} CollectorState;

const char *collector_state_to_string(CollectorState s);
CollectorState collector_get_state(const Collector *c);
/* RUNNING or DEGRADED. */
bool collector_is_ready(const Collector *c);
uint64_t collector_started_ms(const Collector *c);
/* FNV-1a 64 of the running configuration text ("" without one) as 16 lower-case hex
 * digits. Borrowed; changes on a successful reload. */
const char *collector_config_version(const Collector *c);

/* Totals over the workers (last published snapshots, at most a second old) plus the loop
 * thread's own counters. */
void collector_get_counters(Collector *c, CollectorCounters *ret);

typedef struct CollectorListenerInfo {
        ListenerTransport transport;
        const char *address;            /* borrowed from the running config */
        uint16_t port;                  /* the bound port (also when configured as 0) */
        bool proxy_protocol;
        uint64_t accepted;              /* TCP connections accepted; UDP: sessions created */
        uint64_t records;               /* records decoded from what arrived on it */
} CollectorListenerInfo;

size_t collector_n_listeners(const Collector *c);
/* Return: 0, or -ENOENT past the last listener. */
int collector_get_listener(Collector *c, size_t index, CollectorListenerInfo *ret);

typedef struct CollectorExporter {
        ExporterKey key;
        bool tcp;
        uint64_t messages, records, bytes, errors, missing_template_sets;
        uint64_t last_seen_ms;
        uint32_t templates;             /* templates the store holds for (address, ODID) */
} CollectorExporter;

/**
 * collector_list_exporters() - every exporter (address, ODID, transport) the workers know,
 * live or ended, summed over its sessions, sorted.
 * @ret: heap array (caller frees; NULL when *ret_n is 0)
 * Return: 0 or -ENOMEM.
 */
int collector_list_exporters(Collector *c, CollectorExporter **ret, size_t *ret_n);

typedef struct CollectorTemplate {
        ExporterKey key;
        uint16_t id;
        uint16_t fields;
        uint16_t scope_fields;
} CollectorTemplate;

/**
 * collector_list_templates() - the templates in the store (with Redis: its local cache),
 * sorted by exporter, ODID and id.
 * @ret: heap array (caller frees; NULL when *ret_n is 0)
 * Return: 0 or -ENOMEM.
 */
int collector_list_templates(Collector *c, CollectorTemplate **ret, size_t *ret_n);

/**
 * collector_validate() - what collector_reload() checks before it applies anything: parse
 * and validation of @json with the environment and command-line overrides on top.
 * Return: 0, -EINVAL (@reterr names the key), -ENOMEM.
 */
int collector_validate(Collector *c, const char *json, char **reterr);

/**
 * collector_reload() - SIGHUP and Reload(): validates @json (NULL or "": the configuration
 * file, re-read), then applies the keys that can change at run time (log_level,
 * stats_interval_s); the others are reported as needing a restart. Nothing changes on error.
 * On success the text becomes the running configuration (ConfigVersion).
 * @retchanges: on success, a heap JSON array of strings describing what changed
 * @reterr:     on failure, a heap message naming the key (or the file)
 * Return: 0, -EINVAL (invalid), -ENOENT (no file configured, for @json ""), -errno from
 * reading the file, -ENOMEM.
 */
int collector_reload(Collector *c, const char *json, char **retchanges, char **reterr);

/* Called once per collector_drain() call that returned 0, on the loop, when the drain
 * completed (@r 0) or the collector is freed first (@r -ECANCELED). */
typedef void (*CollectorDrainDone)(void *userdata, int r);

/**
 * collector_drain() - every worker stops accepting and reading, decodes what it read and
 * hands every batch over within shutdown_timeout_ms; the process keeps running (State
 * DRAINING, then DRAINED; not Ready). @done is called later from the loop, never from
 * inside this call. Draining while a drain runs adds a waiter.
 * Return: 0 (@done will be called), 1 (already drained: @done is not called), -ENOMEM.
 */
int collector_drain(Collector *c, CollectorDrainDone done, void *userdata);
