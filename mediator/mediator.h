/* SPDX-License-Identifier: MIT */
/*
 * mediator.h - the mediator process: one sd-event loop that PULLs the collector's flow
 * batches, runs them through every pipeline, feeds the flow store and rollups, and a query
 * service thread that answers from those two (query.h). Its control surface (state,
 * counters, reload, drain, pipeline listing) is what mediator-bus.c publishes on the pod's
 * D-Bus; everything here runs on the loop thread.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "mediator-config.h"
#include "metrics.h"

typedef struct Mediator Mediator;

typedef struct MediatorCounters {
        uint64_t batches;
        uint64_t records;
        uint64_t bad_batches;           /* failed validation, dropped (records unknown) */
        uint64_t unaligned_batches;     /* copied before decoding */
        uint64_t reloads;
        uint64_t reload_failures;
        uint64_t signals_dropped;       /* bus signals over BUS_SIGNALS_PER_SECOND */
} MediatorCounters;

/*
 * Lifecycle as published on the bus (State): STARTING until the first one-second tick has
 * looked at the outputs; then RUNNING, or DEGRADED while any output is down (connecting,
 * backing off or failed: ipfixd_mediator_output_up 0) - the data path still runs then, so a
 * degraded mediator is Ready; DRAINING from Drain() until it is done, then DRAINED (not
 * Ready; input is still processed, and a later SIGTERM exits as usual).
 */
typedef enum MediatorState {
        MEDIATOR_STARTING,
        MEDIATOR_RUNNING,
        MEDIATOR_DEGRADED,
        MEDIATOR_DRAINING,
        MEDIATOR_DRAINED,
        _MEDIATOR_STATE_MAX,
        _MEDIATOR_STATE_INVALID = -EINVAL,
} MediatorState;

const char *mediator_state_to_string(MediatorState s);

/**
 * mediator_new() - binds the input and query endpoints, opens every output and starts
 * connecting to the pod's bus (bus_address, else $IPFIXD_BUS_ADDRESS, else no bus).
 * @cfg:         consumed (moved into the mediator, zeroed in the caller)
 * @config_path: file re-read on SIGHUP and Reload(""), or NULL
 * @config_text: the text @cfg was parsed from (copied; ConfigVersion hashes it), or NULL
 * Return: 0 or -errno (already logged, naming what failed).
 */
int mediator_new(Mediator **ret, MediatorConfig *cfg, const char *config_path,
                 const char *config_text);
Mediator *mediator_free(Mediator *m);

/**
 * mediator_run() - runs until SIGTERM/SIGINT, then processes what the input already holds,
 * flushes every aggregation and closes the outputs within shutdown_timeout_ms.
 * Return: 0 or -errno.
 */
int mediator_run(Mediator *m);

/**
 * mediator_reload() - applies new configuration text: validates it completely first and
 * changes nothing on error. Unchanged pipelines keep running untouched (their aggregation
 * and de-duplication state too); a changed pipeline's old stages are flushed into its
 * outputs, and outputs whose configuration did not change move to the new pipeline open.
 * On success the text becomes the running configuration (ConfigVersion) and Reloaded is
 * signalled on the bus.
 * @retchanges: on success, a heap JSON array of strings describing what changed
 * @reterr:     on failure, a heap message naming the key
 * Return: 0, -EINVAL (invalid; nothing changed), -EBUSY (a drain is running), -errno when
 * an output could not be opened (nothing changed either).
 */
int mediator_reload(Mediator *m, const char *json, char **retchanges, char **reterr);

/**
 * mediator_reload_file() - SIGHUP and Reload(""): re-reads the configuration file and
 * applies it with mediator_reload().
 * Return: as mediator_reload(), or -ENOENT (no file configured; @reterr set) or the -errno
 * of reading it (@reterr set).
 */
int mediator_reload_file(Mediator *m, char **retchanges, char **reterr);

/**
 * mediator_validate() - what mediator_reload() checks before it touches anything (parse,
 * validation, and the keys a reload cannot change), without applying.
 * Return: 0, -EINVAL (@reterr names the key), -ENOMEM, -errno from reading a key file.
 */
int mediator_validate(Mediator *m, const char *json, char **reterr);

/* Called exactly once when a drain completes: @r is 0 (drained) or -ECANCELED (the mediator
 * is being freed before it finished). */
typedef void (*MediatorDrainDone)(void *userdata, int r);

/**
 * mediator_drain() - keeps pulling the input until it has been idle for 200 ms (counted
 * from the later of the call and the last batch) or shutdown_timeout_ms passed, then
 * flushes every pipeline's aggregation and outputs and calls @done (later, on the loop;
 * never from inside this call). State is DRAINING meanwhile, then DRAINED. Draining again
 * after DRAINED runs the same steps again.
 * Return: 0, -EBUSY (a drain is running), -ENOMEM.
 */
int mediator_drain(Mediator *m, MediatorDrainDone done, void *userdata);

MediatorState mediator_get_state(const Mediator *m);
/* Input bound, pipelines running and not draining: RUNNING or DEGRADED. */
bool mediator_is_ready(const Mediator *m);
void mediator_get_counters(const Mediator *m, MediatorCounters *ret);
uint64_t mediator_started_ms(const Mediator *m);
/* FNV-1a 64 of the running configuration text as 16 lower-case hex digits. Borrowed. */
const char *mediator_config_version(const Mediator *m);

/**
 * mediator_list_pipelines() - the running pipelines as a JSON array: [{"name", "counters":
 * {in, filtered, duplicates, passed, aggregated, out, output_errors}, "outputs": [{"type",
 * "target", "state", "counters": {records, messages, bytes, dropped, errors, reconnects,
 * files}}]}].
 * Return: a heap string (caller frees), or NULL when out of memory.
 */
char *mediator_list_pipelines(Mediator *m);

/* Renders every counter in Prometheus text format. */
void mediator_render_metrics(Mediator *m, MetricsBuf *b);

