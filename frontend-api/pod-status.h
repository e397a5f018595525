/* SPDX-License-Identifier: MIT */
/*
 * pod-status.h - GET /api/v1/pods: every pod controller's GET /api/v1/pod (the pod's
 * management API, dbus-controller/), fetched in parallel with libcurl's multi interface
 * and merged. Runs on a background worker thread, never on the HTTP loop.
 *
 * Each pod's document is taken as the controller sends it (a JSON object, at most
 * API_POD_STATUS_MAX_BODY bytes); the answer only adds who answered:
 *   {"pods": [{"name": "pod-0", "url": "http://10.0.0.5:8081/api/v1/pod",
 *              "ok": true, "status": <the controller's document>},
 *             {"name": "pod-1", "url": "...", "ok": false,
 *              "error": "timeout" | "connection refused" | "HTTP 503" |
 *                       "not JSON" | "too large" | "..."}],
 *    "count": N, "ok": K}
 * in the order of @pods. A non-2xx answer whose body is a JSON object keeps it in "status"
 * as well (the controller's 503 still describes the pod).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "scatter.h"            /* ApiPod */

#define API_POD_STATUS_MAX_BODY (4u * 1024u * 1024u)

/**
 * api_pod_status_fetch() - asks every pod with a non-empty http endpoint at once. BLOCKS up
 * to @timeout_ms in total. Pods without an http endpoint are listed with
 * "error": "no controller endpoint".
 * @token: bearer token to send (NULL: none)
 * @ret:   the answer above (new reference)
 * A pod without an http endpoint has "url": null. The environment's proxy settings are
 * ignored (controllers are pod addresses no proxy reaches). The body cap is per pod, so one
 * call holds at most n_pods x API_POD_STATUS_MAX_BODY.
 * Return: 0 (even when no pod answered: see "ok"), -EINVAL (@token has blanks or control
 * characters), -ENOMEM, -EIO (libcurl setup failed).
 */
int api_pod_status_fetch(const ApiPod *pods, size_t n_pods, const char *token,
                         uint64_t timeout_ms, json_t **ret);
