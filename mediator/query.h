/* SPDX-License-Identifier: MIT */
/*
 * query.h - the pod's query service: a ZeroMQ ROUTER socket on its own thread that answers
 * versioned JSON requests from the flow store and the rollups. The protocol (request and
 * response members, error codes) is documented in the README ("Query protocol");
 * query_handle() is the pure part (request text in, response text out) that tests call
 * without sockets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow-store.h"
#include "rollup.h"

#define QUERY_PROTOCOL_VERSION 1
#define QUERY_MAX_REQUEST (64u * 1024u)

typedef struct QueryLimits {
        size_t max_limit;               /* largest `limit` accepted */
        uint64_t max_scan;              /* records one flow query may examine (0: no cap) */
        uint64_t timeout_ms;            /* time one query may run */
} QueryLimits;

typedef struct QueryContext {
        const char *pod;                /* name in every answer */
        FlowStore *store;               /* may be NULL: flow queries answer "unavailable" */
        Rollup *rollup;                 /* may be NULL likewise */
        QueryLimits limits;
} QueryContext;

typedef enum QueryOp {
        QUERY_OP_FLOWS,
        QUERY_OP_TOP,
        QUERY_OP_TOTALS,
        QUERY_OP_EXPORTERS,
        QUERY_OP_PING,
        _QUERY_OP_MAX,
} QueryOp;

typedef struct QueryStats {
        uint64_t requests[_QUERY_OP_MAX];
        uint64_t bad_requests;          /* malformed or invalid, answered with an error */
        uint64_t truncated;             /* answered with "truncated": true */
        uint64_t too_large;             /* requests over QUERY_MAX_REQUEST, not parsed */
        uint64_t latency_us_total;
} QueryStats;

/**
 * query_handle() - answers one request.
 * @ret: a heap NUL-terminated JSON response (always set on 0: errors are answers too)
 * @retop: the operation, or _QUERY_OP_MAX for a malformed request
 * @rettruncated: whether the answer said "truncated": true
 * @reterror: whether the answer is an error answer ("ok": false)
 * Return: 0 or -ENOMEM.
 */
int query_handle(const QueryContext *ctx, const char *req, size_t len, char **ret,
                 QueryOp *retop, bool *rettruncated, bool *reterror);

const char *query_op_to_string(QueryOp op);

typedef struct QueryService QueryService;

/**
 * query_service_new() - binds a ROUTER socket at @endpoint in @zctx and starts the thread.
 * @ctx is copied; its store and rollup must outlive the service.
 * Return: 0, or -errno (-EADDRINUSE and friends from zmq_bind).
 */
int query_service_new(QueryService **ret, void *zctx, const char *endpoint,
                      const QueryContext *ctx);
/* Stops the thread (within about 100 ms plus the query in progress) and closes the socket. */
QueryService *query_service_free(QueryService *q);

/* Reload: new limits for the next request. */
void query_service_set_limits(QueryService *q, const QueryLimits *limits);
void query_service_get_stats(QueryService *q, QueryStats *ret);
