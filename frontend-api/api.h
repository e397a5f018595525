/* SPDX-License-Identifier: MIT */
/*
 * api.h - ipfixd-api, the public HTTP API: libmicrohttpd on the sd-event loop thread
 * (routing, authentication, per-client rate limits, parameter validation), and `workers`
 * background threads that run the queries (scatter to every pod, merge) fed over ZeroMQ
 * inproc. The loop thread never blocks: a query request is parsed, handed to a worker as a
 * job, its connection suspended, and resumed when the worker's answer comes back.
 *
 * Routes: GET /healthz, /readyz, /metrics, /api/v1/flows, /api/v1/flows/top,
 * /api/v1/flows/timeseries, /api/v1/exporters. Errors everywhere are
 * {"error": {"code", "message"}} (400s from parameter checks also name "parameter").
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "api-config.h"
#include "metrics.h"

typedef struct Api Api;

/**
 * api_new() - resolves the pods (the dns: form blocks in getaddrinfo()), reads the token
 * file, starts the worker and pinger threads and serves HTTP on @e.
 * Return: 0, -EINVAL (bad pods spec, bad token file contents), -errno.
 */
int api_new(Api **ret, sd_event *e, const ApiConfig *cfg);

/* Answers every query in flight 503, stops the threads and the server. NULL-safe. */
Api *api_free(Api *a);

/* Runs @a's loop until SIGTERM or SIGINT. Return: 0 or -errno. */
int api_run(Api *a);

/* The bound HTTP port. */
uint16_t api_port(const Api *a);

/* The server's route table, for the OpenAPI check: @i < api_route_count(). */
size_t api_route_count(void);
void api_route_get(size_t i, const char **ret_method, const char **ret_path,
                   bool *ret_needs_auth);

/* Appends ipfixd_api_* metrics to @b. */
void api_render_metrics(Api *a, MetricsBuf *b);
