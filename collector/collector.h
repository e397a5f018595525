/* SPDX-License-Identifier: MIT */
/*
 * collector.h - the collector process: owns the configuration, the ZeroMQ context, the
 * template store and the worker threads; its own (main) thread runs an sd-event loop for
 * signals, periodic counter summaries and the metrics file. No data passes through it.
 */
#pragma once

#include "collector-config.h"
#include "metrics.h"

typedef struct Collector Collector;

/**
 * collector_new() - opens every listener on every worker and starts nothing yet.
 * @cfg:         consumed (moved into the collector, zeroed in the caller)
 * @config_path: file re-read on SIGHUP, or NULL
 * Return: 0 or -errno (already logged, naming what failed).
 */
int collector_new(Collector **ret, CollectorConfig *cfg, const char *config_path);
Collector *collector_free(Collector *c);

/**
 * collector_run() - starts the workers, runs until SIGTERM/SIGINT, then drains: workers
 * stop accepting, decode what they read, hand batches over within shutdown_timeout_ms.
 * Return: 0 or -errno.
 */
int collector_run(Collector *c);

/* Renders all counters (totals and per exporter) in Prometheus text format. */
void collector_render_metrics(Collector *c, MetricsBuf *b);
