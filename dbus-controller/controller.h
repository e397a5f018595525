/* SPDX-License-Identifier: MIT */
/*
 * controller.h - the pod's coordinator (ipfixd-controller): owns or joins the pod's private
 * D-Bus, watches org.ipfixd.Collector and org.ipfixd.Mediator on it (NameOwnerChanged), keeps
 * a cached view of both (properties, exporters, templates, pipelines, metrics text), polled
 * asynchronously every poll_interval_ms and refreshed at once when a component appears, and
 * orchestrates reload and drain across both. Everything runs on one sd-event loop; no bus
 * call blocks it. The HTTP layer (controller-http.h) reads the cached view and starts the
 * asynchronous operations below.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "controller-config.h"
#include "metrics.h"

typedef struct Controller Controller;

typedef enum ControllerComponent {
        CONTROLLER_COLLECTOR,
        CONTROLLER_MEDIATOR,
        _CONTROLLER_COMPONENT_MAX,
} ControllerComponent;

/**
 * controller_readiness() - whether both components are on the bus and report Ready.
 * @ret_reason: when not ready, a static or borrowed string for the JSON reason
 *              ("mediator: not on the bus", "collector: draining", ...)
 * Return: true when ready.
 */
bool controller_readiness(Controller *c, const char **ret_reason);

/* The /api/v1/pod document (new reference): pod name, config versions, both components'
 * state, counters, exporters, templates, pipelines, and when each was last refreshed. */
json_t *controller_pod_json(Controller *c);

/* Both components' metrics (their GetMetrics() text, last polled) plus the controller's own
 * (ipfixd_controller_*), appended to @b. */
void controller_render_metrics(Controller *c, MetricsBuf *b);

/*
 * Asynchronous operations. @done is called exactly once, on the loop, later (never from
 * inside the call): @status is an HTTP-like status (200 done, 400 invalid configuration,
 * 409 an operation is already running, 503 a component is not on the bus, 504 timed out),
 * @result a JSON object owned by the callee (borrow it; it is freed after @done returns).
 */
typedef void (*ControllerDone)(void *userdata, int status, json_t *result);

/**
 * controller_reload() - @configs: NULL (each component re-reads its own file) or an object
 * {"collector": {...config...}, "mediator": {...config...}} with either or both. Every given
 * document is validated by its component (Validate()) before any component applies anything
 * (Reload()); the result says what changed per component, or which key is invalid.
 * Return: 0 (done will be called), -EBUSY (another reload or drain runs), -ENOMEM.
 */
int controller_reload(Controller *c, json_t *configs, ControllerDone done, void *userdata);

/**
 * controller_drain() - the preStop hook: drains the collector (stop accepting, finish what
 * was read, hand everything to the mediator), then the mediator (process what arrived, flush
 * aggregations and outputs). Result: both components' final record counters.
 * Return: 0, -EBUSY, -ENOMEM.
 */
int controller_drain(Controller *c, ControllerDone done, void *userdata);

const char *controller_pod_name(Controller *c);

/* ---- lifecycle (used by main.c and pod.c) ---- */

/**
 * controller_new() - starts the pod's dbus-daemon (cfg->bus_address unset: on
 * cfg->bus_socket, restarted with backoff when it dies) or joins cfg->bus_address, connects
 * as org.ipfixd.Controller (reconnecting), and starts watching and polling both components.
 * @cfg: borrowed; must outlive the controller
 * Return: 0, or -errno (logged) when the dbus-daemon cannot be started.
 */
int controller_new(Controller **ret, const ControllerConfig *cfg, sd_event *e);
/* Frees everything: a running operation's @done is called from in here (503, or its result
 * if it had finished), a dbus-daemon still running is killed. */
Controller *controller_free(Controller *c);

/* The address the components are given (IPFIXD_BUS_ADDRESS): cfg->bus_address, or
 * "unix:path=<bus_socket>" for the daemon we run. Borrowed. */
const char *controller_bus_address(Controller *c);

/**
 * controller_stop() - shutdown: stops polling, fails a running operation (503), leaves the
 * bus and stops the dbus-daemon we started (SIGTERM, SIGKILL after cfg->stop_timeout_ms).
 * Readiness is false from here on. @done runs on the loop afterwards (never from inside).
 * Return: 0, -EALREADY, -ENOMEM.
 */
int controller_stop(Controller *c, void (*done)(void *userdata), void *userdata);

/* More metrics appended by controller_render_metrics() (the supervised children's). */
typedef void (*ControllerMetricsFunc)(void *userdata, MetricsBuf *b);
void controller_set_extra_metrics(Controller *c, ControllerMetricsFunc f, void *userdata);

/* Besides the statuses above, operations may finish with 502: a component answered a call
 * with an unexpected error (result {"error": {"code": "component_error", ...}}). */
