/* SPDX-License-Identifier: MIT */
/*
 * mediator.h - the mediator process: one sd-event loop that PULLs the collector's flow
 * batches, runs them through every pipeline, feeds the flow store and rollups, and a query
 * service thread that answers from those two (query.h).
 */
#pragma once

#include <stdint.h>

#include "mediator-config.h"
#include "metrics.h"

typedef struct Mediator Mediator;

/**
 * mediator_new() - binds the input and query endpoints and opens every output.
 * @cfg:         consumed (moved into the mediator, zeroed in the caller)
 * @config_path: file re-read on SIGHUP, or NULL
 * Return: 0 or -errno (already logged, naming what failed).
 */
int mediator_new(Mediator **ret, MediatorConfig *cfg, const char *config_path);
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
 * @retchanges: on success, a heap JSON array of strings describing what changed
 * @reterr:     on failure, a heap message naming the key
 * Return: 0, -EINVAL (invalid; nothing changed), -errno when an output could not be opened
 * (nothing changed either).
 */
int mediator_reload(Mediator *m, const char *json, char **retchanges, char **reterr);

/* Renders every counter in Prometheus text format. */
void mediator_render_metrics(Mediator *m, MetricsBuf *b);
