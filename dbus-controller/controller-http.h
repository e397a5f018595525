/* SPDX-License-Identifier: MIT */
/*
 * controller-http.h - the pod's management HTTP API (ipfixd-controller, :8081 by default),
 * served by libmicrohttpd on the controller's sd-event loop (common/ev-mhd.h).
 *
 *   GET  /healthz         200 {"status":"ok"}
 *   GET  /readyz          200 {"ready":true} | 503 {"ready":false,"reason":"..."}
 *   GET  /api/v1/pod      200 controller_pod_json()
 *   POST /api/v1/reload   body empty (components re-read their files) or
 *                         {"collector":{...},"mediator":{...}} (either or both);
 *                         answered when controller_reload() completes, with its status and
 *                         result; 409 while another reload or drain runs
 *   POST /api/v1/drain    answered when controller_drain() completes; a body is ignored
 *   GET  /metrics         text/plain; version=0.0.4 (controller_render_metrics() plus the
 *                         ipfixd_controller_http_* counters)
 *
 * GET routes also answer HEAD. Every other answer is application/json, and every error has
 * one shape: {"error":{"code":"...","message":"..."}} - 400 bad_request / invalid_json (with
 * jansson's line and column), 401 unauthorized (POST routes when a bearer token is
 * configured; WWW-Authenticate: Bearer), 404 not_found, 405 method_not_allowed (with Allow),
 * 409 busy, 413 payload_too_large, 500 internal, 503 shutting_down; an error status the
 * controller reports (400, 503, 504) keeps this shape too, its result under "detail".
 * Requests libmicrohttpd refuses itself never reach us and get its HTML bodies: 414 (request
 * line) and 431 (headers) beyond max_header_bytes, 400 for malformed HTTP or chunking.
 * Connections beyond max_connections wait in the listen backlog; beyond max_per_ip they are
 * closed at once.
 *
 * Request bodies are read into a per-request buffer of at most max_body_bytes. A declared
 * Content-Length above it is refused with 413 before any of the body is read. A chunked body
 * that grows past it is discarded from then on (libmicrohttpd cannot answer in the middle of
 * an upload) and answered with 413 when it ends; one that goes on beyond twice the cap has
 * its connection closed.
 *
 * Reload and drain suspend their connection while the controller works; other requests are
 * served meanwhile. Everything runs on the loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "controller.h"
#include "metrics.h"

#define CONTROLLER_HTTP_LISTEN_DEFAULT ":8081"
#define CONTROLLER_HTTP_MAX_BODY_DEFAULT (1024u * 1024u)
#define CONTROLLER_HTTP_MAX_CONNECTIONS_DEFAULT 64u

typedef struct ControllerHttp ControllerHttp;
typedef struct ControllerHttpRequest ControllerHttpRequest;

typedef struct ControllerHttpConfig {
        const char *listen;             /* "ADDR:PORT", "[V6]:PORT", ":PORT" (all addresses);
                                         * NULL: CONTROLLER_HTTP_LISTEN_DEFAULT; port 0: the
                                         * kernel chooses (controller_http_port()) */
        const char *token;              /* bearer token for the POST routes (copied); NULL or
                                         * "": no authentication */
        size_t max_body_bytes;          /* 0: CONTROLLER_HTTP_MAX_BODY_DEFAULT */
        unsigned max_connections;       /* 0: CONTROLLER_HTTP_MAX_CONNECTIONS_DEFAULT */
        unsigned max_per_ip;            /* 0: no per-address limit */
        unsigned timeout_s;             /* idle connection timeout; 0: 30 */
        size_t max_header_bytes;        /* libmicrohttpd's per-connection memory, which bounds
                                         * the request line and headers; 0: 32 KiB */
} ControllerHttpConfig;

/* One row of the route table. */
/* Begins like an EvMhdRouteKey (method, path): ev_mhd_route_find() walks the table. */
typedef struct ControllerHttpRoute {
        const char *method;             /* "GET" (also serves HEAD) or "POST" */
        const char *path;               /* exact match, no trailing slash */
        bool needs_auth;                /* the bearer token is required (when configured) */
        bool reads_body;                /* the body is kept for the handler (req body); else
                                         * it is dropped, but counts against the cap too */
        int (*handler)(ControllerHttpRequest *req);     /* 0, or -errno: answered with 500 */
} ControllerHttpRoute;

/**
 * controller_http_routes() - the route table, for tests and documentation.
 * @ret_n: set to the number of rows
 * Return: the table (static).
 */
const ControllerHttpRoute *controller_http_routes(size_t *ret_n);

/**
 * controller_http_new() - binds, listens and serves on @e. @c is borrowed and must outlive
 * the ControllerHttp.
 * Return: 0, -EINVAL for a malformed listen address or limit, -EADDRINUSE and other -errno
 * from binding, -ENOMEM, or -EIO when libmicrohttpd refuses to start.
 */
int controller_http_new(ControllerHttp **ret, sd_event *e, Controller *c,
                        const ControllerHttpConfig *cfg);

/**
 * controller_http_free() - answers every request still waiting for a reload or drain with
 * 503 shutting_down, then closes every connection. Call it before freeing the Controller: an
 * operation still running then completes into nothing (its done callback only frees its own
 * record). NULL-safe. Return: NULL.
 */
ControllerHttp *controller_http_free(ControllerHttp *h);

/* The bound port. */
uint16_t controller_http_port(const ControllerHttp *h);

typedef struct ControllerHttpStats {
        uint64_t requests;              /* requests answered by us (not MHD's 414/431) */
        uint64_t unauthorized;          /* 401 */
        uint64_t body_too_large;        /* 413, and chunked uploads cut off */
        uint64_t pending;               /* requests waiting for a reload or drain now */
} ControllerHttpStats;
void controller_http_get_stats(const ControllerHttp *h, ControllerHttpStats *ret);

/* Appends the ipfixd_controller_http_* metrics (responses by status code, connections,
 * pending operations) to @b. /metrics does this after controller_render_metrics(). */
void controller_http_render_metrics(ControllerHttp *h, MetricsBuf *b);

