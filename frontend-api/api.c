/* SPDX-License-Identifier: MIT */
/*
 * api.c - the public HTTP API (see api.h).
 *
 * Threads. The loop thread owns the EvMhd, every ApiRequest (MHD's con_cls) and every ApiJob
 * list link. Jobs wait in the loop's FIFO until a worker is idle (a worker announces itself
 * idle with its result, or with an empty message when it starts), and are then sent to THAT
 * worker as a pointer over an inproc ROUTER (so a job never queues behind a slow one while
 * another worker idles); the worker owns the job's input and output fields until it PUSHes
 * the pointer back, and never touches anything else of the job. Invariants:
 * - a job is on a->jobs from route_query() until its result is received (or api_free());
 * - a job is on the FIFO (a->queue_head) from route_query() until it is sent to a worker;
 * - job->req and req->job point at each other or are both NULL (a request that went away
 *   orphans its job, whose result is then dropped);
 * - a request is answered at most once, and before its connection is resumed.
 * Shutdown: zmq_ctx_shutdown() wakes every thread with ETERM; after joining them the loop
 * thread frees the jobs nobody answered.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <zmq.h>

#include "api-params.h"
#include "api.h"
#include "ev-mhd.h"
#include "ev-zmq.h"
#include "log.h"
#include "macro.h"
#include "merge.h"
#include "openapi.h"
#include "pod-status.h"
#include "podset.h"
#include "templates.h"
#include "scatter.h"
#include "stream.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define AUTH_REALM "Bearer realm=\"ipfixd-api\""
#define JOBS_ENDPOINT "inproc://ipfixd-api-jobs"
#define RESULTS_ENDPOINT "inproc://ipfixd-api-results"
#define PINGER_ENDPOINT "inproc://ipfixd-api-pinger"
#define MAX_ARGS 64u
#define MAX_DISCARDED_BODY (64u * 1024u)
#define RATE_SLOTS 4096u
#define RATE_PROBE 16u
#define PING_INTERVAL_MS 2000u
#define DISCOVERY_RETRY_MS 2000u        /* dns: re-resolution while it fails or finds none */
#define STREAM_KEEPALIVE_MS 15000u      /* ": keepalive" to a stream idle this long */
#define TOP_POD_LIMIT_FACTOR 4u         /* /flows/top: first round asks pods for 4 n entries */
#define TOP_POD_LIMIT_MIN 100u          /* ... and at least this many */
#define TOP_POD_LIMIT_MAX 5000u         /* second round (within query_max_limit's default) */
#ifndef MHD_HTTP_URI_TOO_LONG
#define MHD_HTTP_URI_TOO_LONG 414
#endif
#ifndef MHD_HTTP_CONTENT_TOO_LARGE
#define MHD_HTTP_CONTENT_TOO_LARGE 413
#endif
#ifndef MHD_HTTP_TOO_MANY_REQUESTS
#define MHD_HTTP_TOO_MANY_REQUESTS 429
#endif

typedef enum RouteId {
        ROUTE_HEALTHZ,
        ROUTE_READYZ,
        ROUTE_METRICS,
        ROUTE_FLOWS,
        ROUTE_TOP,
        ROUTE_TIMESERIES,
        ROUTE_EXPORTERS,
        ROUTE_STREAM,
        ROUTE_TEMPLATES,
        ROUTE_PODS,
        ROUTE_OPENAPI,
        _ROUTE_MAX,
} RouteId;

typedef struct ApiRequest ApiRequest;
typedef struct ApiJob ApiJob;

typedef struct ApiRoute {
        const char *method;             /* first two members: an EvMhdRouteKey */
        const char *path;
        RouteId id;
        bool needs_auth;        /* when a token is configured */
        bool rate_limited;
        int (*handler)(ApiRequest *req);
} ApiRoute;

/* The decoded query arguments (MHD's strings, valid while the request lives). */
typedef struct ArgCollector {
        ApiKV kv[MAX_ARGS];
        size_t n;
        size_t bytes;
        bool overflow;
} ArgCollector;

struct ApiRequest {
        Api *api;
        struct MHD_Connection *conn;
        const ApiRoute *route;
        const char *method, *url;       /* MHD's, valid while the request lives */
        size_t seen;                    /* body bytes received and dropped */
        bool dispatched, answered, suspended;
        ApiJob *job;
        ArgCollector args;              /* collected once, by first_call() */
};

struct ApiJob {
        /* loop thread only */
        Api *api;
        ApiRequest *req;
        ApiJob *prev, *next;
        ApiJob *qnext;                  /* the FIFO of jobs no worker has yet */
        /* input: written before sending, read by the worker */
        RouteId route;
        ApiFlowsQuery flows;
        bool has_cursor;
        ApiCursor cursor;
        ApiTopQuery top;
        ApiTimeseriesQuery ts;
        ApiTemplatesQuery tmpl;
        size_t top_pod_limit;           /* entries asked of each pod (worker-owned) */
        /* output: written by the worker */
        unsigned status;
        char *body;                     /* JSON text (malloc), NULL: answer 500 */
};

/* Status codes counted individually; anything else is "other". */
static const unsigned counted_codes[] = { 200, 400, 401, 404, 405, 413, 414, 429, 500, 502, 503 };

typedef struct RateSlot {
        uint8_t addr[16];
        uint8_t family;                 /* 0: free */
        double tokens;
        uint64_t last_us;
} RateSlot;

struct Api {
        sd_event *event;
        EvMhd *mhd;
        char *token;
        size_t token_len;
        ApiPodDir *dir;                 /* the pods asked (thread-safe) */
        char *pods_spec;
        bool pods_dns;                  /* re-resolved by the pinger */
        ApiPodPorts ports;
        ApiRedisConfig redis;           /* .address NULL: no /templates */
        ApiStreamHub *streams;          /* NULL: max_streams 0 */
        char *redis_password, *redis_address, *redis_prefix;
        uint64_t deadline_ms, refresh_ms;
        size_t max_pending, max_url;
        double rps, burst;
        RateSlot *rate;                 /* NULL: no rate limit */
        ApiCidr *trusted;               /* proxies whose X-Forwarded-For is believed */
        size_t n_trusted;

        void *zctx;
        void *jobs_router, *results_pull;
        sd_event_source *results_src, *retry_src, *sigterm_src, *sigint_src;
        pthread_t *workers;
        size_t n_workers;               /* started */
        struct WorkerArg *worker_args;
        uint16_t *idle;                 /* worker indexes waiting for a job (a stack) */
        size_t n_idle;
        ApiJob *queue_head, *queue_tail;
        pthread_t pinger;
        bool pinger_started;
        _Atomic uint64_t last_ping_ok_ms; /* CLOCK_MONOTONIC; 0: never */

        ApiJob *jobs;
        size_t n_pending;
        bool shutting_down;

        uint64_t responses[_ROUTE_MAX + 1][ELEMENTSOF(counted_codes) + 1];
        uint64_t rate_limited, overloaded, unauthorized;
        _Atomic uint64_t resolve_failures, resolve_changes;
};

static const char *const route_names[_ROUTE_MAX + 1] = {
        [ROUTE_HEALTHZ] = "/healthz",
        [ROUTE_READYZ] = "/readyz",
        [ROUTE_METRICS] = "/metrics",
        [ROUTE_FLOWS] = "/api/v1/flows",
        [ROUTE_TOP] = "/api/v1/flows/top",
        [ROUTE_TIMESERIES] = "/api/v1/flows/timeseries",
        [ROUTE_EXPORTERS] = "/api/v1/exporters",
        [ROUTE_STREAM] = "/api/v1/flows/stream",
        [ROUTE_TEMPLATES] = "/api/v1/templates",
        [ROUTE_PODS] = "/api/v1/pods",
        [ROUTE_OPENAPI] = "/openapi.json",
        [_ROUTE_MAX] = "other",
};

static uint64_t now_mono_us(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- answering ---- */

static void count_response(ApiRequest *req, unsigned status) {
        size_t i, r = req->route ? (size_t) req->route->id : _ROUTE_MAX;

        for (i = 0; i < ELEMENTSOF(counted_codes); i++)
                if (counted_codes[i] == status)
                        break;
        req->api->responses[r][i]++;
}

/* Bookkeeping once MHD took a response (@r from ev_mhd_queue*()). */
static int answered(ApiRequest *req, unsigned status, int r) {
        if (r < 0)
                return r;
        req->answered = true;
        count_response(req, status);
        log_debug("HTTP %s %s -> %u", req->method, req->url, status);
        return 0;
}

/* Queues @resp (consumed). Return: 0, -ENOMEM, -EIO. */
static int answer(ApiRequest *req, unsigned status, struct MHD_Response *resp,
                  const char *content_type, const char *hname, const char *hvalue) {
        assert(!req->answered);
        return answered(req, status,
                        ev_mhd_queue(req->conn, status, resp, content_type, hname, hvalue));
}

/* @text (malloc'ed JSON) is consumed. */
static int answer_text(ApiRequest *req, unsigned status, char *text, const char *hname,
                       const char *hvalue) {
        assert(!req->answered);
        return answered(req, status, ev_mhd_queue_json_text(req->conn, status, text, hname,
                                                            hvalue));
}

/* @body is consumed. */
static int answer_json(ApiRequest *req, unsigned status, json_t *body) {
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

        json_decref(body);
        return answer_text(req, status, text, NULL, NULL);
}

static int answer_error_header(ApiRequest *req, unsigned status, const char *code,
                               const char *hname, const char *hvalue, const char *fmt, ...)
        _printf_(6, 7);
static int answer_error_header(ApiRequest *req, unsigned status, const char *code,
                               const char *hname, const char *hvalue, const char *fmt, ...) {
        va_list ap;
        int r;

        assert(!req->answered);
        va_start(ap, fmt);
        r = ev_mhd_queue_errorv(req->conn, status, code, hname, hvalue, fmt, ap);
        va_end(ap);
        return answered(req, status, r);
}

#define answer_error(req, status, code, ...) \
        answer_error_header((req), (status), (code), NULL, NULL, __VA_ARGS__)

/* ---- jobs ---- */

static void job_free(ApiJob *job) {
        if (!job)
                return;
        api_flows_query_done(&job->flows);
        free(job->body);
        free(job);
}

static void job_link(Api *a, ApiJob *job) {
        job->prev = NULL;
        job->next = a->jobs;
        if (a->jobs)
                a->jobs->prev = job;
        a->jobs = job;
        a->n_pending++;
}

static void job_unlink(Api *a, ApiJob *job) {
        if (job->prev)
                job->prev->next = job->next;
        else
                a->jobs = job->next;
        if (job->next)
                job->next->prev = job->prev;
        job->prev = job->next = NULL;
        a->n_pending--;
}

/* Worker side: sets job->status and job->body to an error. */
static json_t *json_decref_null(json_t *j) {
        json_decref(j);
        return NULL;
}

static void job_fail(ApiJob *job, unsigned status, const char *code, const char *fmt, ...)
        _printf_(4, 5);
static void job_fail(ApiJob *job, unsigned status, const char *code, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        json_t *j;

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        j = ev_mhd_error_json(code, msg);
        free(job->body);
        job->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        job->status = status;
}

/*
 * Worker side: the pods' requests for @job. A flow query carries the pod's share of the
 * deadline ("timeout_ms", four fifths of it: the rest is for the answers to travel and be
 * merged), so a slow pod answers "truncated" in time instead of missing the deadline.
 * Return: the number (1 or n_pods), 0 on -ENOMEM.
 */
static size_t job_requests(const ApiPodSet *set, ApiJob *job, uint64_t deadline_ms,
                           json_t **reqs) {
        uint64_t budget = MAX(deadline_ms - deadline_ms / 5, (uint64_t) 1);
        char cur[64];
        uint64_t end_ms, seq;

        switch (job->route) {
        case ROUTE_FLOWS:
                if (!job->has_cursor) {
                        reqs[0] = api_flows_pod_request(&job->flows, NULL, 0, budget);
                        return reqs[0] ? 1 : 0;
                }
                for (size_t i = 0; i < set->n; i++) {
                        if (api_cursor_for_pod(&job->cursor, set->pods[i].name, &end_ms, &seq) < 0)
                                return 0;
                        (void) snprintf(cur, sizeof(cur), "%" PRIu64 ":%" PRIu64, end_ms, seq);
                        reqs[i] = api_flows_pod_request(&job->flows, cur, job->flows.limit,
                                                        budget);
                        if (!reqs[i])
                                return 0;
                }
                return set->n;
        case ROUTE_TOP:
                reqs[0] = api_top_pod_request(&job->top, job->top_pod_limit);
                break;
        case ROUTE_TIMESERIES:
                reqs[0] = api_timeseries_pod_request(&job->ts);
                break;
        case ROUTE_EXPORTERS:
                reqs[0] = json_pack("{s:i,s:s}", "v", 1, "op", "exporters");
                break;
        default:
                return 0;
        }
        return reqs[0] ? 1 : 0;
}

/* Worker side: merges the answers per route. Return: a new object, or NULL with @r set. */
static json_t *job_merge(ApiJob *job, const ApiPodAnswer *answers, size_t n, int *ret_r) {
        json_t *out = NULL, *flows = NULL;
        bool has_more = false, truncated = false;
        ApiCursor next = {};
        char cur[API_CURSOR_STRING_MAX];
        int r;

        switch (job->route) {
        case ROUTE_FLOWS:
                r = api_merge_flows(answers, n, job->flows.limit, &flows, &has_more, &truncated,
                                    &next);
                if (r < 0)
                        break;
                if (has_more && json_array_size(flows) > 0) {
                        r = api_cursor_format(&next, cur, sizeof(cur));
                        if (r < 0) {
                                json_decref(flows);
                                break;
                        }
                }
                out = json_pack("{s:o,s:I,s:o,s:b}", "flows", flows, "count",
                                (json_int_t) json_array_size(flows), "next_cursor",
                                has_more && json_array_size(flows) > 0 ? json_string(cur)
                                                                       : json_null(),
                                "truncated", truncated);
                r = out ? 0 : -ENOMEM;
                break;
        case ROUTE_TOP:
                r = api_merge_top(answers, n, job->top.metric, job->top.n, &out);
                break;
        case ROUTE_TIMESERIES:
                r = api_merge_totals(answers, n, &out);
                break;
        case ROUTE_EXPORTERS:
                r = api_merge_exporters(answers, n, &out);
                break;
        default:
                r = -EINVAL;
        }
        *ret_r = r < 0 ? r : 0;
        return r < 0 ? NULL : out;
}

/* Worker side: GET /templates from Redis. */
static void job_run_templates(const Api *a, ApiJob *job) {
        _cleanup_free_ char *err = NULL;
        json_t *out = NULL;
        int r;

        r = api_templates_fetch(&a->redis, &job->tmpl, a->deadline_ms, &out, &err);
        if (r == -ENOMEM) {
                job_fail(job, 500, "internal", "out of memory");
                return;
        }
        if (r < 0) {
                job_fail(job, 503, "redis_unavailable", "%s",
                         err ? err : "the template store did not answer");
                return;
        }
        free(job->body);
        job->body = json_dumps(out, JSON_COMPACT);
        job->status = job->body ? 200 : 500;
        json_decref(out);
}

/* Worker side: GET /pods from every pod's controller. */
static void job_run_pods(const Api *a, const ApiPodSet *set, ApiJob *job) {
        json_t *out = NULL;
        int r;

        r = api_pod_status_fetch(set->pods, set->n, NULL, a->deadline_ms, &out);
        if (r < 0) {
                job_fail(job, 500, "internal", "could not ask the pods: %s", strerror(-r));
                return;
        }
        free(job->body);
        job->body = json_dumps(out, JSON_COMPACT);
        job->status = job->body ? 200 : 500;
        json_decref(out);
}

/*
 * Whether a merged top answer could become exact by asking the pods for more entries: it
 * is not exact, every pod answered with exact rollups, and some pod listed as many entries
 * as it was asked for (so it may hold more).
 */
static bool top_wants_more(const ApiJob *job, const json_t *body, const ApiScatterResult *res) {
        json_t *inexact = json_object_get(body, "pods_inexact");

        if (job->top_pod_limit >= TOP_POD_LIMIT_MAX || json_is_true(json_object_get(body, "exact")) ||
            !json_is_array(inexact) || json_array_size(inexact) > 0 || res->n_ok != res->n_pods)
                return false;
        for (size_t i = 0; i < res->n_pods; i++)
                if (json_array_size(json_object_get(res->pods[i].answer, "entries")) >=
                    job->top_pod_limit)
                        return true;
        return false;
}

static void job_run(const Api *a, ApiScatter *s, const ApiPodSet *set, ApiJob *job) {
        json_t *reqs[API_SCATTER_MAX_PODS] = {};
        ApiPodAnswer answers[API_SCATTER_MAX_PODS];
        ApiScatterResult res = {};
        json_t *body = NULL, *meta = NULL;
        size_t n_req;
        int r;

        if (job->route == ROUTE_TEMPLATES) {
                job_run_templates(a, job);
                return;
        }
        if (!set || !s) {
                job_fail(job, 500, "internal", "the query worker could not start");
                return;
        }
        if (job->route == ROUTE_PODS) {
                job_run_pods(a, set, job);
                return;
        }
        if (set->n == 0) {
                job_fail(job, 503, "no_pods", "no pods are known (discovery found none yet)");
                return;
        }
        /* Top-N: the first round asks each pod for a few times n entries; when that cannot
         * prove the merged ranking exact (a key may be top overall without being in any
         * pod's first entries), a second round asks for TOP_POD_LIMIT_MAX. */
        job->top_pod_limit = MAX(job->top.n * TOP_POD_LIMIT_FACTOR, (size_t) TOP_POD_LIMIT_MIN);
again:
        n_req = job_requests(set, job, a->deadline_ms, reqs);
        if (n_req == 0) {
                job_fail(job, 500, "internal", "could not build the pods' request");
                goto finish;
        }
        r = api_scatter_query(s, reqs, n_req, a->deadline_ms, &res);
        if (r < 0) {
                job_fail(job, 500, "internal", "scatter failed: %s", strerror(-r));
                goto finish;
        }
        for (size_t i = 0; i < res.n_pods; i++) {
                answers[i] = (ApiPodAnswer) {
                        .pod = res.pods[i].pod,
                        .answer = res.pods[i].status == API_POD_OK ? res.pods[i].answer : NULL,
                };
                if (i < set->n && (res.pods[i].status == API_POD_TIMEOUT ||
                                   res.pods[i].status == API_POD_NOT_CONNECTED))
                        atomic_fetch_add(&set->timeouts[i], 1);
        }
        if (res.n_ok == 0) {
                job_fail(job, 503, "no_pods", "no pod answered within %" PRIu64 " ms (%zu asked)",
                         a->deadline_ms, res.n_pods);
                goto finish;
        }
        body = job_merge(job, answers, res.n_pods, &r);
        if (body && job->route == ROUTE_TOP && top_wants_more(job, body, &res)) {
                body = json_decref_null(body);
                api_scatter_result_clear(&res);
                for (size_t i = 0; i < ELEMENTSOF(reqs); i++)
                        reqs[i] = json_decref_null(reqs[i]);
                job->top_pod_limit = TOP_POD_LIMIT_MAX;
                goto again;
        }
        if (!body) {
                if (r == -EBADMSG)
                        job_fail(job, 502, "bad_pod_answer",
                                 "a pod's answer does not have the documented shape");
                else
                        job_fail(job, 500, "internal", "merging failed: %s", strerror(-r));
                goto finish;
        }
        meta = api_merge_meta(answers, res.n_pods);
        if (!meta || json_object_update(body, meta) < 0) {
                job_fail(job, 500, "internal", "out of memory");
                goto finish;
        }
        free(job->body);
        job->body = json_dumps(body, JSON_COMPACT);
        job->status = job->body ? 200 : 500;
finish:
        json_decref(meta);
        json_decref(body);
        api_scatter_result_clear(&res);
        for (size_t i = 0; i < ELEMENTSOF(reqs); i++)
                json_decref(reqs[i]);
}

static ApiScatter *worker_scatter(const Api *a) {
        ApiScatter *s = NULL;
        int r;

        r = api_scatter_new(&s, a->zctx);
        if (r < 0) {
                log_error_errno(r, "Failed to set up a query worker's scatter client: %m");
                return NULL;
        }
        return s;
}

/* A worker's view of the pods: switches @s to the directory's current set when it moved.
 * Return: the set to use for the next job (borrowed from *@set), NULL when @s could not be
 * set up for any (out of memory; retried before the next job). */
static const ApiPodSet *worker_pods(Api *a, ApiScatter *s, ApiPodSet **set) {
        ApiPodSet *cur;
        int r;

        if (*set && (*set)->generation == api_pod_dir_generation(a->dir))
                return *set;
        cur = api_pod_dir_get(a->dir);
        if (s) {
                r = api_scatter_set_pods(s, cur->pods, cur->n);
                if (r < 0) {
                        /* Keep the old set; try again before the next job. */
                        log_warning_errno(r, "Failed to switch to %zu pods: %m", cur->n);
                        api_pod_set_unref(cur);
                        return *set;
                }
        }
        api_pod_set_unref(*set);
        *set = cur;
        return cur;
}

/* What a worker sends the loop: its index, and the job it finished (NULL: just started). */
typedef struct WorkerMsg {
        uint32_t worker;
        ApiJob *job;
} WorkerMsg;

typedef struct WorkerArg {
        Api *api;
        uint16_t index;
} WorkerArg;

static void *worker_main(void *userdata) {
        WorkerArg *arg = userdata;
        Api *a = arg->api;
        void *in = zmq_socket(a->zctx, ZMQ_DEALER), *push = zmq_socket(a->zctx, ZMQ_PUSH);
        ApiScatter *s = worker_scatter(a);
        ApiPodSet *set = NULL;
        WorkerMsg msg = { .worker = arg->index };
        int zero = 0, n;

        if (!in || !push)
                goto out;
        (void) zmq_setsockopt(in, ZMQ_LINGER, &zero, sizeof(zero));
        (void) zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof(zero));
        (void) zmq_setsockopt(in, ZMQ_ROUTING_ID, &arg->index, sizeof(arg->index));
        if (zmq_connect(in, JOBS_ENDPOINT) < 0 || zmq_connect(push, RESULTS_ENDPOINT) < 0)
                goto out;
        for (;;) {
                /* Idle: hand back the finished job (or announce ourselves), then wait. */
                while ((n = zmq_send(push, &msg, sizeof(msg), 0)) < 0 && errno == EINTR)
                        ;
                if (n < 0)
                        break;  /* ETERM: shutting down */
                do
                        n = zmq_recv(in, &msg.job, sizeof(msg.job), 0);
                while ((n < 0 && errno == EINTR) || (n >= 0 && n != (int) sizeof(msg.job)));
                if (n < 0)
                        break;
                job_run(a, s, worker_pods(a, s, &set), msg.job);
        }
out:
        api_scatter_free(s);
        api_pod_set_unref(set);
        if (in)
                (void) zmq_close(in);
        if (push)
                (void) zmq_close(push);
        return NULL;
}

/*
 * Resolves the pods spec and publishes what it finds. BLOCKS in getaddrinfo() for the dns:
 * form: only api_new() (before serving) and the pinger thread call it.
 */
static int discover_pods(Api *a) {
        _cleanup_free_ ApiPod *pods = NULL;
        size_t n = 0;
        int r;

        r = api_pods_resolve(a->pods_spec, &a->ports, &pods, &n);
        if (r < 0) {
                atomic_fetch_add(&a->resolve_failures, 1);
                return r;
        }
        r = api_pod_dir_publish(a->dir, pods, n);
        if (r < 0)
                return r;
        if (r > 0) {
                if (api_pod_dir_generation(a->dir) > 1)
                        atomic_fetch_add(&a->resolve_changes, 1);
                log_info("Querying %zu pod(s) from '%s'", n, a->pods_spec);
                for (size_t i = 0; i < n; i++)
                        log_debug("pod %s query=%s feed=%s http=%s", pods[i].name,
                                  pods[i].endpoint, pods[i].feed[0] ? pods[i].feed : "-",
                                  pods[i].http[0] ? pods[i].http : "-");
        }
        return 0;
}

/*
 * Pings every pod every PING_INTERVAL_MS for /readyz and, for a dns: spec, re-resolves the
 * pods every pods_refresh_s (every DISCOVERY_RETRY_MS while that fails or finds none);
 * woken by ETERM at shutdown.
 */
static void *pinger_main(void *userdata) {
        Api *a = userdata;
        void *ctl = zmq_socket(a->zctx, ZMQ_PULL);
        ApiScatter *s = worker_scatter(a);
        ApiPodSet *set = NULL;
        json_t *ping = json_pack("{s:i,s:s}", "v", 1, "op", "ping");
        uint64_t interval = MIN((uint64_t) PING_INTERVAL_MS, a->refresh_ms / 2);
        uint64_t last_discovery = now_mono_us() / 1000u;
        int zero = 0, discovered = 0;

        if (!ctl || !ping)
                goto out;
        (void) zmq_setsockopt(ctl, ZMQ_LINGER, &zero, sizeof(zero));
        if (zmq_connect(ctl, PINGER_ENDPOINT) < 0)
                goto out;
        for (;;) {
                zmq_pollitem_t item = { .socket = ctl, .events = ZMQ_POLLIN };
                ApiScatterResult res = {};
                const ApiPodSet *cur;
                uint64_t now = now_mono_us() / 1000u;

                if (a->pods_dns) {
                        bool empty = api_pod_dir_generation(a->dir) == 0 || !set || set->n == 0;
                        uint64_t every = discovered < 0 || empty ? DISCOVERY_RETRY_MS
                                                                 : a->refresh_ms;

                        if (now - last_discovery >= every) {
                                int r = discover_pods(a);

                                if (r < 0 && discovered >= 0)
                                        log_warning_errno(r, "Failed to re-resolve pods '%s' "
                                                          "(keeping the %zu known): %m",
                                                          a->pods_spec, set ? set->n : 0);
                                discovered = r;
                                last_discovery = now;
                        }
                }
                cur = worker_pods(a, s, &set);
                if (s && cur && cur->n > 0 &&
                    api_scatter_query(s, &ping, 1, a->deadline_ms, &res) >= 0) {
                        if (res.n_ok > 0)
                                atomic_store(&a->last_ping_ok_ms, now_mono_us() / 1000u);
                        api_scatter_result_clear(&res);
                }
                if (zmq_poll(&item, 1, (long) interval) < 0 && errno != EINTR)
                        break;  /* ETERM */
                if (item.revents & ZMQ_POLLIN)
                        break;  /* told to stop */
        }
out:
        json_decref(ping);
        api_scatter_free(s);
        api_pod_set_unref(set);
        if (ctl)
                (void) zmq_close(ctl);
        return NULL;
}

/* ---- results (loop thread) ---- */

/* Sends queued jobs to idle workers. A worker the ROUTER does not know yet (its connection
 * still being attached) gets the job a moment later from the retry timer. */
static void dispatch_jobs(Api *a) {
        while (a->n_idle > 0 && a->queue_head) {
                uint16_t w = a->idle[a->n_idle - 1];
                ApiJob *job = a->queue_head;

                if (zmq_send(a->jobs_router, &w, sizeof(w), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                    zmq_send(a->jobs_router, &job, sizeof(job), ZMQ_DONTWAIT) < 0) {
                        log_debug("Worker %u cannot take a job yet: %s", (unsigned) w,
                                  zmq_strerror(zmq_errno()));
                        (void) sd_event_source_set_time_relative(a->retry_src, 10 * 1000);
                        (void) sd_event_source_set_enabled(a->retry_src, SD_EVENT_ONESHOT);
                        return;
                }
                a->n_idle--;
                a->queue_head = job->qnext;
                if (!a->queue_head)
                        a->queue_tail = NULL;
                job->qnext = NULL;
        }
}

static int on_dispatch_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        dispatch_jobs(userdata);
        return 0;
}

static void on_job_result(Api *a, ApiJob *job) {
        ApiRequest *req = job->req;
        int r;

        job_unlink(a, job);
        if (req) {
                req->job = NULL;
                job->req = NULL;
                if (job->body)
                        r = answer_text(req, job->status, TAKE_PTR(job->body), NULL, NULL);
                else
                        r = answer_error(req, 500, "internal", "internal error");
                if (r < 0)
                        log_warning_errno(r, "Failed to answer %s: %m", req->url);
                if (req->suspended) {
                        req->suspended = false;
                        ev_mhd_resume(a->mhd, req->conn);
                }
        }
        job_free(job);
}

static int on_results(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Api *a = userdata;

        for (;;) {
                WorkerMsg msg;
                int n = zmq_recv(a->results_pull, &msg, sizeof(msg), ZMQ_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;  /* EAGAIN: drained */
                }
                if (n != (int) sizeof(msg) || msg.worker >= a->n_workers)
                        continue;
                if (msg.job)
                        on_job_result(a, msg.job);
                a->idle[a->n_idle++] = (uint16_t) msg.worker;
        }
        dispatch_jobs(a);
        return 0;
}

/* ---- rate limiting (loop thread) ---- */

/* IPv4-mapped IPv6 (a dual-stack listener's IPv4 peers) becomes plain IPv4. */
static void unmap_v4(uint8_t addr[static 16], uint8_t *family) {
        static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

        if (*family == 6 && memcmp(addr, prefix, 12) == 0) {
                memmove(addr, addr + 12, 4);
                memset(addr + 4, 0, 12);
                *family = 4;
        }
}

static bool parse_addr(const char *s, size_t len, uint8_t addr[static 16], uint8_t *family) {
        char text[INET6_ADDRSTRLEN];

        if (len == 0 || len >= sizeof(text))
                return false;
        memcpy(text, s, len);
        text[len] = 0;
        memset(addr, 0, 16);
        if (inet_pton(AF_INET, text, addr) == 1)
                *family = 4;
        else if (inet_pton(AF_INET6, text, addr) == 1)
                *family = 6;
        else
                return false;
        unmap_v4(addr, family);
        return true;
}

/*
 * The client's address for the rate limit: the connection's peer, or, when that peer is a
 * trusted proxy, the right-most address of X-Forwarded-For that is not itself a trusted
 * proxy (the left-most when all are; the peer when the header is absent or malformed at
 * that point). Entries left of the first untrusted one are the client's own claims and are
 * never believed.
 */
static void client_address(const Api *a, struct MHD_Connection *conn, uint8_t addr[static 16],
                           uint8_t *ret_family) {
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        const char *xff, *end;

        memset(addr, 0, 16);
        *ret_family = 1;        /* unknown peers share one bucket */
        if (sa && sa->sa_family == AF_INET) {
                memcpy(addr, &((const struct sockaddr_in *) sa)->sin_addr, 4);
                *ret_family = 4;
        } else if (sa && sa->sa_family == AF_INET6) {
                memcpy(addr, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
                *ret_family = 6;
                unmap_v4(addr, ret_family);
        }
        if (a->n_trusted == 0 || *ret_family == 1 ||
            !api_cidrs_match(a->trusted, a->n_trusted, addr, *ret_family))
                return;
        xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
        if (!xff)
                return;
        /* Right to left over the comma list. */
        end = xff + strlen(xff);
        while (end > xff) {
                const char *start = end, *s, *e;
                uint8_t cand[16], fam;

                while (start > xff && start[-1] != ',')
                        start--;
                for (s = start; s < end && (*s == ' ' || *s == '\t'); s++)
                        ;
                for (e = end; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
                        ;
                if (!parse_addr(s, (size_t) (e - s), cand, &fam))
                        return;                 /* keep the last believable one */
                memcpy(addr, cand, 16);
                *ret_family = fam;
                if (!api_cidrs_match(a->trusted, a->n_trusted, cand, fam))
                        return;                 /* the client */
                end = start > xff ? start - 1 : xff;
        }
}

/* Return: true when the request may go on; else @ret_retry_s is the Retry-After. */
static bool rate_take(Api *a, struct MHD_Connection *conn, unsigned *ret_retry_s) {
        uint8_t addr[16], family;
        uint64_t h = 1469598103934665603ull, now = now_mono_us();
        RateSlot *slot = NULL, *oldest = NULL;

        if (!a->rate)
                return true;
        client_address(a, conn, addr, &family);
        h = (h ^ family) * 1099511628211ull;
        for (size_t i = 0; i < 16; i++)
                h = (h ^ addr[i]) * 1099511628211ull;
        for (size_t i = 0; i < RATE_PROBE; i++) {
                RateSlot *s = &a->rate[(h + i) % RATE_SLOTS];

                if (s->family == family && memcmp(s->addr, addr, 16) == 0) {
                        slot = s;
                        break;
                }
                if (s->family == 0) {
                        if (!oldest || oldest->family != 0)
                                oldest = s;
                } else if (!oldest || (oldest->family != 0 && s->last_us < oldest->last_us))
                        oldest = s;
        }
        if (!slot) {
                /* A free slot, or the least recently used of the probed ones. */
                slot = oldest;
                memcpy(slot->addr, addr, 16);
                slot->family = family;
                slot->tokens = a->burst;
                slot->last_us = now;
        }
        slot->tokens = MIN(a->burst, slot->tokens + (double) (now - slot->last_us) / 1e6 * a->rps);
        slot->last_us = now;
        if (slot->tokens >= 1.0) {
                slot->tokens -= 1.0;
                return true;
        }
        *ret_retry_s = (unsigned) MAX(1.0, ceil((1.0 - slot->tokens) / a->rps));
        return false;
}

/* ---- route handlers ---- */

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value) {
        ArgCollector *c = cls;

        c->bytes += strlen(key) + (value ? strlen(value) + 1 : 0) + 1;
        if (c->n >= MAX_ARGS) {
                c->overflow = true;
                return MHD_YES;
        }
        c->kv[c->n++] = (ApiKV) { .key = key, .value = value };
        return MHD_YES;
}

static int route_healthz(ApiRequest *req) {
        return answer_json(req, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

static int route_readyz(ApiRequest *req) {
        Api *a = req->api;
        uint64_t last = atomic_load(&a->last_ping_ok_ms), now = now_mono_us() / 1000u;

        if (last > 0 && now - last <= a->refresh_ms)
                return answer_json(req, MHD_HTTP_OK, json_pack("{s:b}", "ready", 1));
        return answer_json(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                           json_pack("{s:b,s:s}", "ready", 0, "reason",
                                     last ? "no pod answered a ping recently"
                                          : "no pod has answered a ping yet"));
}

static int route_metrics(ApiRequest *req) {
        MetricsBuf b = {};
        struct MHD_Response *resp;

        api_render_metrics(req->api, &b);
        if (metrics_buf_failed(&b) || b.len == 0) {
                metrics_buf_done(&b);
                return -ENOMEM;
        }
        resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
        if (resp)
                b = (MetricsBuf) {};    /* MHD frees the text now */
        metrics_buf_done(&b);
        return answer(req, MHD_HTTP_OK, resp, METRICS_TYPE, NULL, NULL);
}

static int answer_param_error(ApiRequest *req, const ApiError *err) {
        return answer_json(req, (unsigned) (err->status ? err->status : 400),
                           api_error_json(err));
}

/* Parses the query, hands it to a worker and suspends the connection. */
static int route_query(ApiRequest *req) {
        Api *a = req->api;
        const ArgCollector *args = &req->args;
        ApiError err = {};
        ApiJob *job;
        uint64_t now = now_realtime_ms();
        int r;

        if (args->overflow)
                return answer_error(req, MHD_HTTP_BAD_REQUEST, "too_many_parameters",
                                    "at most %u query parameters are accepted", MAX_ARGS);
        if (req->route->id == ROUTE_TEMPLATES && !a->redis.address)
                return answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_template_store",
                                    "this API has no redis_address configured");
        if (a->n_pending >= a->max_pending) {
                a->overloaded++;
                return answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                                    "%zu queries are waiting; try again later", a->n_pending);
        }
        job = calloc(1, sizeof(*job));
        if (!job)
                return -ENOMEM;
        job->api = a;
        job->route = req->route->id;
        switch (job->route) {
        case ROUTE_FLOWS:
                r = api_flows_query_parse(args->kv, args->n, NULL, now, &job->flows, &err);
                if (r >= 0 && job->flows.cursor) {
                        if (api_cursor_parse(job->flows.cursor, &job->cursor) < 0) {
                                err = (ApiError) { .status = 400, .code = "bad_parameter",
                                                   .parameter = "cursor",
                                                   .message = "cursor: not a cursor this API "
                                                              "returned" };
                                r = -EINVAL;
                        } else
                                job->has_cursor = true;
                }
                break;
        case ROUTE_TOP:
                r = api_top_query_parse(args->kv, args->n, NULL, now, &job->top, &err);
                break;
        case ROUTE_TIMESERIES:
                r = api_timeseries_query_parse(args->kv, args->n, NULL, now, &job->ts, &err);
                break;
        case ROUTE_TEMPLATES:
                r = api_templates_query_parse(args->kv, args->n, &job->tmpl, &err);
                break;
        case ROUTE_EXPORTERS:
        case ROUTE_PODS:
                r = 0;
                if (args->n > 0) {
                        err = (ApiError) { .status = 400, .code = "unknown_parameter" };
                        (void) snprintf(err.parameter, sizeof(err.parameter), "%s",
                                        args->kv[0].key);
                        (void) snprintf(err.message, sizeof(err.message),
                                        "%.64s: unknown parameter (this route takes none)",
                                        args->kv[0].key);
                        r = -EINVAL;
                }
                break;
        default:
                r = -EINVAL;
                err = (ApiError) { .status = 500, .code = "internal", .message = "no such query" };
        }
        if (r < 0) {
                job_free(job);
                return answer_param_error(req, &err);
        }

        job_link(a, job);
        if (a->queue_tail)
                a->queue_tail->qnext = job;
        else
                a->queue_head = job;
        a->queue_tail = job;
        job->req = req;
        req->job = job;
        MHD_suspend_connection(req->conn);
        req->suspended = true;
        dispatch_jobs(a);
        return 0;
}

static int route_openapi(ApiRequest *req) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(
                api_openapi_json_len, (void *) api_openapi_json, MHD_RESPMEM_PERSISTENT);

        return answer(req, MHD_HTTP_OK, resp, "application/json", NULL, NULL);
}

/* Opens a server-sent event stream (stream.h); the response lives until the client leaves. */
static int route_stream(ApiRequest *req) {
        Api *a = req->api;
        const ArgCollector *args = &req->args;
        ApiStreamQuery q = {};
        ApiError err = {};
        struct MHD_Response *resp = NULL;
        int r;

        if (args->overflow)
                return answer_error(req, MHD_HTTP_BAD_REQUEST, "too_many_parameters",
                                    "at most %u query parameters are accepted", MAX_ARGS);
        if (api_stream_query_parse(args->kv, args->n, NULL, &q, &err) < 0)
                return answer_param_error(req, &err);
        if (!a->streams) {
                api_stream_query_done(&q);
                return answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "no_streams",
                                    "this API serves no streams (max_streams is 0)");
        }
        r = api_stream_open(a->streams, a->mhd, req->conn, q.expr, &resp);
        api_stream_query_done(&q);
        if (r == -EBUSY)
                return answer_error_header(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                                           "too_many_streams", MHD_HTTP_HEADER_RETRY_AFTER, "5",
                                           "%zu streams are open already (max_streams)",
                                           api_stream_count(a->streams));
        if (r < 0)
                return r;
        return answer(req, MHD_HTTP_OK, resp, "text/event-stream",
                      "X-Accel-Buffering", "no");   /* proxies: do not buffer a stream */
}

static const ApiRoute routes[] = {
        { MHD_HTTP_METHOD_GET, "/healthz", ROUTE_HEALTHZ, false, false, route_healthz },
        { MHD_HTTP_METHOD_GET, "/readyz", ROUTE_READYZ, false, false, route_readyz },
        { MHD_HTTP_METHOD_GET, "/metrics", ROUTE_METRICS, true, false, route_metrics },
        { MHD_HTTP_METHOD_GET, "/api/v1/flows", ROUTE_FLOWS, true, true, route_query },
        { MHD_HTTP_METHOD_GET, "/api/v1/flows/top", ROUTE_TOP, true, true, route_query },
        { MHD_HTTP_METHOD_GET, "/api/v1/flows/timeseries", ROUTE_TIMESERIES, true, true,
          route_query },
        { MHD_HTTP_METHOD_GET, "/api/v1/exporters", ROUTE_EXPORTERS, true, true, route_query },
        { MHD_HTTP_METHOD_GET, "/api/v1/flows/stream", ROUTE_STREAM, true, true, route_stream },
        { MHD_HTTP_METHOD_GET, "/api/v1/templates", ROUTE_TEMPLATES, true, true, route_query },
        { MHD_HTTP_METHOD_GET, "/api/v1/pods", ROUTE_PODS, true, true, route_query },
        { MHD_HTTP_METHOD_GET, "/openapi.json", ROUTE_OPENAPI, true, false, route_openapi },
};

size_t api_route_count(void) {
        return ELEMENTSOF(routes);
}

void api_route_get(size_t i, const char **ret_method, const char **ret_path,
                   bool *ret_needs_auth) {
        assert(i < ELEMENTSOF(routes));
        *ret_method = routes[i].method;
        *ret_path = routes[i].path;
        *ret_needs_auth = routes[i].needs_auth;
}

/* Return: the route, or NULL with @allow set to the methods the path has ("" if none). */
static const ApiRoute *route_find(const char *url, const char *method, char *allow,
                                  size_t allow_size) {
        return ev_mhd_route_find(routes, ELEMENTSOF(routes), sizeof(routes[0]), url, method,
                                 allow, allow_size);
}

/* ---- authentication ---- */

/* Return: 0 ok, -ENOKEY missing, -EACCES wrong. */
static int check_auth(Api *a, struct MHD_Connection *conn) {
        return ev_mhd_check_bearer(conn, a->token, a->token_len);
}

/* ---- the access handler ---- */

static int first_call(ApiRequest *req) {
        Api *a = req->api;
        char allow[64], retry[16];
        unsigned retry_s = 1;

        /* MHD has decoded the query string already; its decoded size is what we can see
         * (at most the raw size), which is what max_url_bytes bounds. */
        (void) MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, on_arg, &req->args);
        if (strlen(req->url) + req->args.bytes > a->max_url)
                return answer_error(req, MHD_HTTP_URI_TOO_LONG, "uri_too_long",
                                    "the URL exceeds %zu bytes", a->max_url);
        if (ev_mhd_body_declared_over(req->conn, MAX_DISCARDED_BODY))
                return answer_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                                    "request bodies are not read; at most %u bytes are "
                                    "accepted", MAX_DISCARDED_BODY);

        req->route = route_find(req->url, req->method, allow, sizeof(allow));
        if (!req->route) {
                if (!allow[0])
                        return answer_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                            "no such resource: %.200s", req->url);
                return answer_error_header(req, MHD_HTTP_METHOD_NOT_ALLOWED,
                                           "method_not_allowed", MHD_HTTP_HEADER_ALLOW, allow,
                                           "%.200s supports %s", req->url, allow);
        }
        if (req->route->rate_limited && !rate_take(a, req->conn, &retry_s)) {
                a->rate_limited++;
                (void) snprintf(retry, sizeof(retry), "%u", retry_s);
                return answer_error_header(req, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited",
                                           MHD_HTTP_HEADER_RETRY_AFTER, retry,
                                           "too many requests from this address; retry in %u s",
                                           retry_s);
        }
        if (req->route->needs_auth && a->token) {
                int r = check_auth(a, req->conn);

                if (r < 0)
                        a->unauthorized++;
                if (r == -ENOKEY)
                        return answer_error_header(req, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                                   MHD_HTTP_HEADER_WWW_AUTHENTICATE, AUTH_REALM,
                                                   "a bearer token is required");
                if (r == -EACCES)
                        return answer_error_header(req, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                                   MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                                   AUTH_REALM ", error=\"invalid_token\"",
                                                   "the bearer token is not valid");
        }
        return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        Api *a = cls;
        ApiRequest *req = *con_cls;
        int r;

        if (!req) {
                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->api = a;
                req->conn = conn;
                req->url = url;
                req->method = method;
                *con_cls = req;
                r = first_call(req);
                goto finish;
        }

        if (*upload_data_size > 0) {
                /* No route reads a body: drop it, up to a cap. */
                req->seen += *upload_data_size;
                *upload_data_size = 0;
                if (req->seen <= MAX_DISCARDED_BODY || req->answered)
                        return req->seen > 16 * MAX_DISCARDED_BODY ? MHD_NO : MHD_YES;
                r = answer_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                                 "request bodies are not read; at most %u bytes are accepted",
                                 MAX_DISCARDED_BODY);
                return r < 0 ? MHD_NO : MHD_YES;
        }
        if (req->answered)
                return MHD_YES;

        if (a->shutting_down)
                r = answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                                 "the API is shutting down");
        else if (req->dispatched)
                r = -EIO;       /* resumed without a response */
        else {
                req->dispatched = true;
                r = req->route->handler(req);
        }

finish:
        if (r < 0 && !req->answered && !req->suspended) {
                log_warning_errno(r, "HTTP %s %s failed: %m", method, url);
                r = answer_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                                 "internal error");
        }
        return r < 0 ? MHD_NO : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        ApiRequest *req = *con_cls;

        if (!req)
                return;
        if (req->job)
                req->job->req = NULL;   /* orphaned: its result is dropped */
        free(req);
        *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) _printf_(2, 0);
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char msg[512];
        size_t n;

        if (log_get_max_level() < LOG_DEBUG)
                return;
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
                msg[--n] = '\0';
        log_debug("libmicrohttpd: %s", msg);
}

/* ---- metrics ---- */

void api_render_metrics(Api *a, MetricsBuf *b) {
        char labels[160], esc[140];
        ApiPodSet *set;

        assert(a);
        assert(b);
        metrics_header(b, "ipfixd_api_requests_total", "counter",
                       "HTTP responses by route and status (not counting libmicrohttpd's own).");
        for (size_t r = 0; r <= _ROUTE_MAX; r++)
                for (size_t i = 0; i <= ELEMENTSOF(counted_codes); i++) {
                        if (a->responses[r][i] == 0)
                                continue;
                        if (i < ELEMENTSOF(counted_codes))
                                (void) snprintf(labels, sizeof(labels),
                                                "route=\"%s\",status=\"%u\"", route_names[r],
                                                counted_codes[i]);
                        else
                                (void) snprintf(labels, sizeof(labels),
                                                "route=\"%s\",status=\"other\"", route_names[r]);
                        metrics_sample(b, "ipfixd_api_requests_total", labels, a->responses[r][i]);
                }
        metrics_header(b, "ipfixd_api_pod_timeouts_total", "counter",
                       "Queries a pod did not answer before the deadline (or could not be sent).");
        set = api_pod_dir_get(a->dir);
        for (size_t i = 0; i < set->n; i++) {
                if (metrics_escape_label(set->pods[i].name, esc, sizeof(esc)) < 0)
                        continue;
                (void) snprintf(labels, sizeof(labels), "pod=\"%s\"", esc);
                metrics_sample(b, "ipfixd_api_pod_timeouts_total", labels,
                               atomic_load(&set->timeouts[i]));
        }
        metrics_header(b, "ipfixd_api_pods", "gauge", "Pods the queries go to now.");
        metrics_sample(b, "ipfixd_api_pods", NULL, set->n);
        api_pod_set_unref(set);
        metrics_header(b, "ipfixd_api_pods_resolve_failures_total", "counter",
                       "dns: pod discovery attempts that failed (the previous pods were kept).");
        metrics_sample(b, "ipfixd_api_pods_resolve_failures_total", NULL,
                       atomic_load(&a->resolve_failures));
        metrics_header(b, "ipfixd_api_pods_changes_total", "counter",
                       "Times discovery found a different set of pods.");
        metrics_sample(b, "ipfixd_api_pods_changes_total", NULL,
                       atomic_load(&a->resolve_changes));
        metrics_header(b, "ipfixd_api_queue_depth", "gauge",
                       "Queries queued for or running in the workers.");
        metrics_sample(b, "ipfixd_api_queue_depth", NULL, a->n_pending);
        metrics_header(b, "ipfixd_api_rate_limited_total", "counter",
                       "Requests refused with 429 by the per-address rate limit.");
        metrics_sample(b, "ipfixd_api_rate_limited_total", NULL, a->rate_limited);
        metrics_header(b, "ipfixd_api_overloaded_total", "counter",
                       "Queries refused with 503 because max_pending were queued.");
        metrics_sample(b, "ipfixd_api_overloaded_total", NULL, a->overloaded);
        metrics_header(b, "ipfixd_api_unauthorized_total", "counter",
                       "Requests refused for a missing or wrong bearer token.");
        metrics_sample(b, "ipfixd_api_unauthorized_total", NULL, a->unauthorized);
        if (a->streams)
                api_stream_render_metrics(a->streams, b);
        metrics_header(b, "ipfixd_api_http_connections", "gauge", "HTTP connections open now.");
        metrics_sample(b, "ipfixd_api_http_connections", NULL,
                       a->mhd ? ev_mhd_connections(a->mhd) : 0);
}

/* ---- lifecycle ---- */

static int start_threads(Api *a, size_t n_workers) {
        sigset_t all, old;
        int r = 0;

        a->workers = calloc(n_workers, sizeof(*a->workers));
        a->worker_args = calloc(n_workers, sizeof(*a->worker_args));
        a->idle = calloc(n_workers, sizeof(*a->idle));
        if (!a->workers || !a->worker_args || !a->idle)
                return -ENOMEM;
        /* The threads block every signal: only the loop thread takes them (signalfd). */
        (void) sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &old);
        for (size_t i = 0; i < n_workers; i++) {
                a->worker_args[i] = (WorkerArg) { .api = a, .index = (uint16_t) i };
                r = -pthread_create(&a->workers[i], NULL, worker_main, &a->worker_args[i]);
                if (r < 0)
                        break;
                a->n_workers++;
        }
        if (r >= 0) {
                r = -pthread_create(&a->pinger, NULL, pinger_main, a);
                a->pinger_started = r >= 0;
        }
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
}

int api_new(Api **ret, sd_event *e, const ApiConfig *cfg) {
        Api *a;
        EvMhdConfig mcfg;
        void *pinger_ctl = NULL;
        int r, fd;
        size_t fdlen = sizeof(fd);

        assert(ret);
        assert(e);
        assert(cfg);

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->event = sd_event_ref(e);
        a->deadline_ms = (uint64_t) cfg->deadline_ms;
        a->refresh_ms = (uint64_t) cfg->pods_refresh_s * 1000u;
        a->max_pending = (size_t) cfg->max_pending;
        a->max_url = (size_t) cfg->max_url_bytes;
        a->rps = (double) cfg->rate_limit_rps;
        a->burst = (double) MAX(cfg->rate_limit_burst, (int64_t) 1);

        if (!cfg->pods) {
                r = -EINVAL;
                goto fail;
        }
        a->ports = (ApiPodPorts) { .feed = (uint16_t) cfg->feed_port,
                                   .http = (uint16_t) cfg->controller_port };
        a->pods_spec = strdup(cfg->pods);
        if (!a->pods_spec) {
                r = -ENOMEM;
                goto fail;
        }
        a->pods_dns = strncmp(cfg->pods, "dns:", 4) == 0;
        r = api_pod_dir_new(&a->dir);
        if (r < 0)
                goto fail;
        r = discover_pods(a);
        if (r < 0 && (!a->pods_dns || r == -EINVAL)) {
                log_error_errno(r, "Failed to resolve pods '%s': %m", cfg->pods);
                goto fail;
        }
        if (r < 0)
                log_warning_errno(r, "Pods '%s' do not resolve yet, retrying every %u ms: %m",
                                  cfg->pods, (unsigned) DISCOVERY_RETRY_MS);
        if (cfg->redis_address) {
                a->redis_address = strdup(cfg->redis_address);
                a->redis_prefix = strdup(cfg->redis_prefix ? cfg->redis_prefix : "ipfixd:");
                if (!a->redis_address || !a->redis_prefix) {
                        r = -ENOMEM;
                        goto fail;
                }
                a->redis.address = a->redis_address;
                a->redis.db = cfg->redis_db;
                a->redis.prefix = a->redis_prefix;
                if (cfg->redis_password_file) {
                        r = config_read_password(cfg->redis_password_file, &a->redis_password);
                        if (r < 0) {
                                log_error_errno(r, "Failed to read redis_password_file %s: %m",
                                                cfg->redis_password_file);
                                goto fail;
                        }
                        a->redis.password = a->redis_password;
                }
        }
        if (cfg->trusted_proxies) {
                r = api_parse_cidrs(cfg->trusted_proxies, &a->trusted, &a->n_trusted);
                if (r < 0)
                        goto fail;
        }
        if (cfg->rate_limit_rps > 0) {
                a->rate = calloc(RATE_SLOTS, sizeof(*a->rate));
                if (!a->rate) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (cfg->token_file) {
                r = config_read_token(cfg->token_file, &a->token);
                if (r < 0) {
                        log_error_errno(r, "Failed to read token_file %s: %m", cfg->token_file);
                        goto fail;
                }
                a->token_len = strlen(a->token);
        }

        a->zctx = zmq_ctx_new();
        if (!a->zctx) {
                r = -errno;
                goto fail;
        }
        r = ev_zmq_bind(a->zctx, ZMQ_ROUTER, JOBS_ENDPOINT, 16, &a->jobs_router);
        if (r >= 0 && zmq_setsockopt(a->jobs_router, ZMQ_ROUTER_MANDATORY, &(int) { 1 },
                                     sizeof(int)) < 0)
                r = -errno;
        if (r >= 0)
                r = ev_zmq_bind(a->zctx, ZMQ_PULL, RESULTS_ENDPOINT, (int) a->max_pending + 16,
                          &a->results_pull);
        if (r >= 0)
                r = ev_zmq_bind(a->zctx, ZMQ_PUSH, PINGER_ENDPOINT, 1, &pinger_ctl);
        if (r < 0)
                goto fail;
        /* The pinger's control socket only exists to be polled; closing it is harmless. */
        (void) zmq_close(pinger_ctl);
        if (zmq_getsockopt(a->results_pull, ZMQ_FD, &fd, &fdlen) < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(e, &a->results_src, fd, EPOLLIN, on_results, a);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &a->retry_src, CLOCK_MONOTONIC, 10 * 1000, 0,
                                               on_dispatch_retry, a);
        if (r >= 0)
                r = sd_event_source_set_enabled(a->retry_src, SD_EVENT_OFF);
        if (r < 0)
                goto fail;
        r = start_threads(a, (size_t) cfg->workers);
        if (r < 0)
                goto fail;

        mcfg = (EvMhdConfig) {
                .listen = cfg->listen,
                .max_connections = 1024,
                .memory_limit = MAX((size_t) 32768, a->max_url * 4 + 16384),
                .on_completed = on_completed,
                .on_completed_cls = a,
                .logger = on_mhd_log,
        };
        r = ev_mhd_new(&a->mhd, e, &mcfg, on_request, a);
        if (r < 0) {
                log_error_errno(r, "Failed to serve HTTP on %s: %m", cfg->listen);
                goto fail;
        }
        if (cfg->max_streams > 0) {
                ApiStreamConfig scfg = {
                        .max_streams = (size_t) cfg->max_streams,
                        .buffer_bytes = (size_t) cfg->stream_buffer_bytes,
                        .pipeline = cfg->feed_pipeline,
                        .keepalive_ms = STREAM_KEEPALIVE_MS,
                };

                r = api_stream_hub_new(&a->streams, e, a->zctx, a->dir, &scfg);
                if (r < 0) {
                        log_error_errno(r, "Failed to start the stream feeds: %m");
                        goto fail;
                }
        }
        log_info("Serving the API listen=%s port=%u workers=%zu", cfg->listen,
                 (unsigned) ev_mhd_port(a->mhd), a->n_workers);
        *ret = a;
        return 0;
fail:
        api_free(a);
        return r;
}

Api *api_free(Api *a) {
        ApiJob *job, *next;

        if (!a)
                return NULL;
        /* MHD must not be stopped with suspended connections: answer and resume them. */
        a->shutting_down = true;
        for (job = a->jobs; job; job = job->next) {
                ApiRequest *req = job->req;

                if (!req)
                        continue;
                job->req = NULL;
                req->job = NULL;
                if (!req->answered)
                        (void) answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                                            "the API is shutting down");
                if (req->suspended) {
                        req->suspended = false;
                        MHD_resume_connection(req->conn);
                }
        }
        api_stream_hub_shutdown(a->streams);
        if (a->mhd)
                ev_mhd_flush(a->mhd);
        a->mhd = ev_mhd_free(a->mhd);   /* frees every stream */
        a->results_src = sd_event_source_disable_unref(a->results_src);
        a->retry_src = sd_event_source_disable_unref(a->retry_src);
        a->sigterm_src = sd_event_source_disable_unref(a->sigterm_src);
        a->sigint_src = sd_event_source_disable_unref(a->sigint_src);

        if (a->zctx)
                (void) zmq_ctx_shutdown(a->zctx);
        for (size_t i = 0; i < a->n_workers; i++)
                (void) pthread_join(a->workers[i], NULL);
        if (a->pinger_started)
                (void) pthread_join(a->pinger, NULL);
        a->streams = api_stream_hub_free(a->streams);
        if (a->jobs_router)
                (void) zmq_close(a->jobs_router);
        if (a->results_pull)
                (void) zmq_close(a->results_pull);
        if (a->zctx)
                (void) zmq_ctx_term(a->zctx);
        for (job = a->jobs; job; job = next) {
                next = job->next;
                job_free(job);
        }
        free(a->workers);
        free(a->worker_args);
        free(a->idle);
        api_pod_dir_free(a->dir);
        free(a->pods_spec);
        free(a->redis_address);
        free(a->redis_prefix);
        if (a->redis_password) {
                explicit_bzero(a->redis_password, strlen(a->redis_password));
                free(a->redis_password);
        }
        free(a->rate);
        free(a->trusted);
        if (a->token) {
                explicit_bzero(a->token, a->token_len);
                free(a->token);
        }
        sd_event_unref(a->event);
        free(a);
        return NULL;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received signal %u, shutting down", si->ssi_signo);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int api_run(Api *a) {
        sigset_t ss;
        int r;

        assert(a);
        (void) sigemptyset(&ss);
        (void) sigaddset(&ss, SIGTERM);
        (void) sigaddset(&ss, SIGINT);
        r = -pthread_sigmask(SIG_BLOCK, &ss, NULL);
        if (r >= 0 && !a->sigterm_src)
                r = sd_event_add_signal(a->event, &a->sigterm_src, SIGTERM, on_signal, a);
        if (r >= 0 && !a->sigint_src)
                r = sd_event_add_signal(a->event, &a->sigint_src, SIGINT, on_signal, a);
        if (r < 0)
                return r;
        return sd_event_loop(a->event);
}

uint16_t api_port(const Api *a) {
        assert(a);
        return ev_mhd_port(a->mhd);
}
