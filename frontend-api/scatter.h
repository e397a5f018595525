/* SPDX-License-Identifier: MIT */
/*
 * scatter.h - scatter-gather over the pods' query services (README, "Query protocol"): one
 * request goes to every pod at once, and the answers are gathered until all pods answered
 * or the query's deadline passed, whichever comes first.
 *
 * Threading. An ApiScatter owns ZeroMQ sockets (one DEALER per pod), which are not
 * thread-safe: it is created, used and freed by ONE thread. The API keeps one per
 * background worker. Nothing else is shared, so several ApiScatters run in parallel freely.
 * Every DEALER counts against the context's ZMQ_MAX_SOCKETS (1023 by default): workers *
 * pods must stay below it.
 *
 * Matching. Every request sent gets a fresh "id": "<16 hex digits>-<n>" where the prefix is
 * random per ApiScatter and n counts requests. An answer is accepted only for the request
 * in flight on its pod's socket; an answer carrying one of our earlier ids (the late answer
 * of a pod that missed an earlier deadline) is dropped and counted as stale, so it can
 * never be mistaken for the answer to a later query. Anything else (not JSON, not an
 * object, several frames, an id we never sent) is a malformed answer.
 *
 * Sockets. ZMQ_IMMEDIATE is set, so a request to a pod without a finished connection fails
 * at once ("not connected"; also when its queue is full because the pod stopped reading
 * requests) instead of queueing; only while a pod's socket is younger than
 * API_SCATTER_CONNECT_GRACE_MS (its first connection attempt) is the send retried, every
 * 10 ms, until the connection is up, the grace period ends or the deadline passes.
 * ZMQ_LINGER 0, small high-water marks, ZMQ_MAXMSGSIZE = the answer cap
 * (api_scatter_set_max_answer()), reconnect every 100 ms backing off to 5 s. An answer over
 * the cap makes ZeroMQ drop the connection (and reconnect); the pod then shows as "timeout"
 * for that query, since ZeroMQ does not tell the application why it dropped it (only a
 * socket monitor would, at one more socket per pod).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "merge.h"          /* API_POD_NAME_MAX, api_pod_name_is_valid() */

#include "macro.h"

#define API_POD_ENDPOINT_MAX 255u
#define API_SCATTER_MAX_PODS 256u
/* The largest answer legitimate queries produce is a few MB (1000 flows, 5000 top entries,
 * 10000 points; an exporters list of 100 000 exporters is about 15 MB); jansson holds
 * several times an answer's size once parsed, per worker. */
#define API_SCATTER_MAX_ANSWER_DEFAULT (32u * 1024u * 1024u)
#define API_SCATTER_CONNECT_GRACE_MS 1000u
/* The query protocol's cap on a request (QUERY_MAX_REQUEST); larger ones are refused. */
#define API_SCATTER_MAX_REQUEST (64u * 1024u)

typedef struct ApiPod {
        char name[API_POD_NAME_MAX + 1];        /* 1..63 of [A-Za-z0-9._-], unique */
        char endpoint[API_POD_ENDPOINT_MAX + 1];/* tcp://HOST:PORT (IPv6 as [ADDR]) */
        char feed[API_POD_ENDPOINT_MAX + 1];    /* tcp://HOST:PORT of its zmq-pub live feed,
                                                 * "" when it has none */
        char http[API_POD_ENDPOINT_MAX + 1];    /* http://HOST:PORT of its controller, "" */
} ApiPod;

/* The ports of a pod's other services, on the host of its query endpoint (0: none). */
typedef struct ApiPodPorts {
        uint16_t feed;          /* the mediator's zmq-pub output (GET /flows/stream) */
        uint16_t http;          /* the pod controller's HTTP API (GET /pods) */
} ApiPodPorts;

typedef enum ApiPodStatus {
        API_POD_OK,             /* "ok": the answer arrived (it may still say "ok": false) */
        API_POD_TIMEOUT,        /* "timeout": sent, no answer before the deadline */
        API_POD_NOT_CONNECTED,  /* "not connected": no connection to send on */
        API_POD_MALFORMED,      /* "malformed answer": not a JSON object, or a foreign id */
        API_POD_NOT_ASKED,      /* "not asked": its per-pod request was NULL */
        _API_POD_STATUS_MAX,
} ApiPodStatus;

typedef struct ApiScatterAnswer {
        char pod[API_POD_NAME_MAX + 1]; /* the pod's name (a copy) */
        ApiPodStatus status;
        json_t *answer;                 /* API_POD_OK only, else NULL; owned by the result */
        uint64_t latency_us;            /* send to answer (or to giving up) */
} ApiScatterAnswer;

typedef struct ApiScatterResult {
        ApiScatterAnswer *pods;             /* one per pod, in the order of api_scatter_set_pods() */
        size_t n_pods;
        size_t n_ok;                    /* pods with status API_POD_OK */
        uint64_t took_us;               /* the whole call */
} ApiScatterResult;

typedef struct ApiScatterStats {
        uint64_t queries;               /* successful api_scatter_query() calls with pods */
        uint64_t requests;              /* requests sent */
        uint64_t answers;               /* answers accepted */
        uint64_t timeouts;              /* pods that missed a deadline */
        uint64_t not_connected;         /* pods we could not send to */
        uint64_t stale;                 /* late answers to earlier requests, dropped */
        uint64_t malformed;             /* messages that were no valid answer, dropped */
        uint64_t reconnects;            /* sockets (re)created by api_scatter_set_pods() */
} ApiScatterStats;

typedef struct ApiScatter ApiScatter;

/**
 * api_scatter_new() - an empty scatter-gather client.
 * @ret:  set on success
 * @zctx: the ZeroMQ context its sockets are made in (borrowed, must outlive it)
 * Return: 0, -EINVAL (no context), -ENOMEM.
 */
int api_scatter_new(ApiScatter **ret, void *zctx);

/* Closes every socket and frees @s (NULL is fine). Returns NULL. */
ApiScatter *api_scatter_free(ApiScatter *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ApiScatter *, api_scatter_free);

/**
 * api_scatter_set_max_answer() - the largest answer accepted, in bytes (ZMQ_MAXMSGSIZE).
 * Applies to sockets created afterwards, so set it before the first api_scatter_set_pods().
 * Return: 0, -EINVAL for 0 or more than INT64_MAX.
 */
int api_scatter_set_max_answer(ApiScatter *s, uint64_t bytes);

/**
 * api_scatter_set_pods() - the pods to ask from now on (copied). A pod whose name and
 * endpoint are both unchanged keeps its socket and connection; every other one gets a new
 * socket (connected now, asynchronously), and sockets of pods no longer listed are closed.
 * On failure nothing changes.
 *
 * Return: 0 when nothing changed, 1 when the list changed; -EINVAL (more than
 * API_SCATTER_MAX_PODS, an invalid or duplicate name, an endpoint that is not
 * tcp://HOST:PORT), -EMFILE (ZMQ_MAX_SOCKETS reached), -ENOMEM, other -errno from ZeroMQ.
 */
int api_scatter_set_pods(ApiScatter *s, const ApiPod *pods, size_t n);

/* The current pods; @ret_n is set to their number. Borrowed until the next set_pods. */
const ApiPod *api_scatter_get_pods(ApiScatter *s, size_t *ret_n);

/**
 * api_scatter_query() - sends a request to every pod and gathers the answers.
 * @requests:   either ONE request for every pod (@n_requests 1), or one per pod in the
 *              order of api_scatter_set_pods() (@n_requests == the number of pods; a NULL
 *              entry leaves that pod out: "not asked"). Each must be a JSON object with
 *              "v" and "op"; its "id" is replaced by scatter's own in what is sent, the
 *              caller's objects are not modified.
 * @deadline_ms: how long to wait for answers, from now. The call returns when every pod
 *              answered or failed, and never later than the deadline (plus the time to
 *              parse an answer that arrived before it). 0 only collects what is already
 *              there, which is nothing: every asked pod then times out.
 * @ret:        filled on success (also when no pod answered); release it with
 *              api_scatter_result_clear(). Untouched on failure.
 *
 * Before sending, answers left over from earlier queries are drained (counted as stale).
 *
 * Return: 0; -EINVAL (@n_requests neither 1 nor the number of pods, a request that is no
 * JSON object), -E2BIG (a request over API_SCATTER_MAX_REQUEST), -ENOMEM; a query with no
 * pods succeeds with an empty result.
 */
int api_scatter_query(ApiScatter *s, json_t *const *requests, size_t n_requests,
                      uint64_t deadline_ms, ApiScatterResult *ret);

/* Releases the answers and the array of @r and zeroes it. */
void api_scatter_result_clear(ApiScatterResult *r);

void api_scatter_get_stats(ApiScatter *s, ApiScatterStats *ret);

/* "ok", "timeout", "not connected", "malformed answer", "not asked". */
const char *api_pod_status_to_string(ApiPodStatus status);


/**
 * api_pods_resolve() - pod discovery.
 * @spec: either a static list "NAME=tcp://HOST:PORT[;feed=PORT][;http=PORT][,NAME=...]"
 *        (feed= and http= override @ports for that pod; 0 means none), or
 *        "dns:NAME:PORT": every A and AAAA record of NAME becomes a pod named after its
 *        address (IPv6 with ':' written as '-', so "::1" is the pod "--1"), endpoint
 *        tcp://ADDR:PORT (tcp://[ADDR]:PORT for IPv6), sorted by name, duplicates removed.
 *        A headless Kubernetes Service is the intended NAME.
 * @ports: the feed and http ports of every pod (NULL: none); feed and http endpoints use
 *         the host of the query endpoint
 * @ret:  set to an array the caller free()s
 * @ret_n: its length (at least 1)
 *
 * The dns: form calls getaddrinfo(), which BLOCKS for as long as the resolver takes
 * (seconds when a DNS server is unreachable). Callers run it off the request path, e.g. on a
 * refresh timer in a worker thread, and hand the result to each worker's
 * api_scatter_set_pods().
 *
 * Return: 0; -EINVAL (syntax, an invalid name or endpoint, a duplicate name), -ENXIO (the
 * name has no address), -EAGAIN (temporary resolver failure), -E2BIG (more than
 * API_SCATTER_MAX_PODS pods), -ENOMEM, -EIO (other resolver errors).
 */
int api_pods_resolve(const char *spec, const ApiPodPorts *ports, ApiPod **ret, size_t *ret_n);
