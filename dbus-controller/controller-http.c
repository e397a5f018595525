/* SPDX-License-Identifier: MIT */
/*
 * controller-http.c - the controller's HTTP routes on libmicrohttpd (common/ev-mhd.c).
 *
 * Owns the EvMhd, a copy of the bearer token, one ControllerHttpRequest per request
 * (MHD's con_cls: created on the first call of the access handler, freed in the
 * request-completed callback) and one HttpOp per reload or drain in flight. Invariants:
 * - a request's body buffer never grows beyond max_body_bytes;
 * - a request is answered (a response queued) at most once, and before its connection is
 *   resumed;
 * - an HttpOp is the userdata of exactly one ControllerDone call and frees itself there. It
 *   outlives its request and this object only as an orphan (op->req / op->h NULL), so a done
 *   callback that comes after controller_http_free() touches nothing that is gone.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <microhttpd.h>

#include "config.h"
#include "controller-http.h"
#include "controller.h"
#include "ev-mhd.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define AUTH_REALM "Bearer realm=\"ipfixd-controller\""
#ifndef MHD_HTTP_CONTENT_TOO_LARGE      /* named so since libmicrohttpd 0.9.74 */
#define MHD_HTTP_CONTENT_TOO_LARGE 413
#endif

typedef struct HttpOp HttpOp;

struct ControllerHttpRequest {
        ControllerHttp *h;
        struct MHD_Connection *conn;
        const ControllerHttpRoute *route;
        const char *method, *url;       /* MHD's, valid while the request lives */
        char *body;
        size_t len, cap;
        size_t seen;                    /* body bytes received, kept or not */
        bool too_large;
        bool dispatched;                /* the route handler ran */
        bool answered;                  /* a response is queued */
        bool suspended;
        HttpOp *op;
};

struct HttpOp {
        ControllerHttp *h;              /* NULL: orphaned by controller_http_free() */
        ControllerHttpRequest *req;     /* NULL: the request is gone */
        json_t *configs;                /* kept alive until done, whatever the callee does */
        const char *what;               /* "reload", "drain" */
        HttpOp *prev, *next;
};

/* Status codes we count individually; anything else goes to "other". */
static const unsigned counted_codes[] = { 200, 400, 401, 404, 405, 409, 413, 500, 503, 504 };

struct ControllerHttp {
        Controller *controller;
        EvMhd *mhd;
        char *token;                    /* NULL: no authentication */
        size_t token_len;
        size_t max_body;
        HttpOp *ops;
        uint64_t n_pending;
        bool shutting_down;             /* answer everything 503, suspend nothing */
        uint64_t requests, unauthorized, body_too_large;
        uint64_t responses[ELEMENTSOF(counted_codes) + 1];
};

/* ---- answering ---- */

static void count_response(ControllerHttp *h, unsigned status) {
        size_t i;

        for (i = 0; i < ELEMENTSOF(counted_codes); i++)
                if (counted_codes[i] == status)
                        break;
        h->responses[i]++;
        h->requests++;
        if (status == MHD_HTTP_UNAUTHORIZED)
                h->unauthorized++;
        else if (status == MHD_HTTP_CONTENT_TOO_LARGE)
                h->body_too_large++;
}

/* Bookkeeping once MHD took a response (@r from ev_mhd_queue*()). */
static int answered(ControllerHttpRequest *req, unsigned status, int r) {
        if (r < 0)
                return r;
        req->answered = true;
        count_response(req->h, status);
        log_debug("HTTP %s %s -> %u", req->method, req->url, status);
        return 0;
}

/* Queues @resp (consumed) with @status. Return: 0, -ENOMEM (no response), -EIO (refused). */
static int answer(ControllerHttpRequest *req, unsigned status, struct MHD_Response *resp,
                  const char *content_type, const char *hname, const char *hvalue) {
        assert(!req->answered);
        return answered(req, status,
                        ev_mhd_queue(req->conn, status, resp, content_type, hname, hvalue));
}

/* @body is consumed. */
static int answer_json(ControllerHttpRequest *req, unsigned status, json_t *body) {
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

        assert(!req->answered);
        json_decref(body);
        return answered(req, status, ev_mhd_queue_json_text(req->conn, status, text, NULL,
                                                            NULL));
}

static int answer_error_header(ControllerHttpRequest *req, unsigned status, const char *code,
                               const char *hname, const char *hvalue, const char *fmt, ...)
        _printf_(6, 7);
static int answer_error_header(ControllerHttpRequest *req, unsigned status, const char *code,
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

static const char *code_for_status(unsigned status) {
        switch (status) {
        case 400: return "bad_request";
        case 401: return "unauthorized";
        case 404: return "not_found";
        case 405: return "method_not_allowed";
        case 409: return "busy";
        case 413: return "payload_too_large";
        case 500: return "internal";
        case 503: return "unavailable";
        case 504: return "timeout";
        default:  return "error";
        }
}

/* Answers what a ControllerDone reported: success results as they are, errors in our one
 * error shape with the controller's result kept under "detail". */
static int answer_result(ControllerHttpRequest *req, int status, json_t *result) {
        json_t *body, *m;
        const char *message = NULL;

        if (status < 200 || status > 599) {
                log_warning("Controller reported HTTP status %d for %s, answering 500", status,
                            req->url);
                status = 500;
        }
        if (status < 400)
                return answer_json(req, (unsigned) status,
                                   result ? json_incref(result) : json_object());
        if (json_is_object(result) && json_is_object(json_object_get(result, "error")))
                return answer_json(req, (unsigned) status, json_incref(result));

        if ((m = json_object_get(result, "message")) && json_is_string(m))
                message = json_string_value(m);
        else if ((m = json_object_get(result, "error")) && json_is_string(m))
                message = json_string_value(m);
        if (!message)
                message = MHD_get_reason_phrase_for((unsigned) status);
        body = ev_mhd_error_json(code_for_status((unsigned) status), message);
        if (body && result && json_object_set(body, "detail", result) < 0) {
                json_decref(body);
                body = NULL;
        }
        return answer_json(req, (unsigned) status, body);
}

/* ---- asynchronous operations (reload, drain) ---- */

static void op_unlink(ControllerHttp *h, HttpOp *op) {
        if (op->prev)
                op->prev->next = op->next;
        else
                h->ops = op->next;
        if (op->next)
                op->next->prev = op->prev;
        op->prev = op->next = NULL;
        h->n_pending--;
}

static void on_op_done(void *userdata, int status, json_t *result) {
        HttpOp *op = userdata;
        ControllerHttp *h = op->h;
        ControllerHttpRequest *req = op->req;
        int r;

        if (h)
                op_unlink(h, op);
        json_decref(op->configs);
        if (req) {
                log_info("HTTP %s finished with status %d", op->what, status);
                req->op = NULL;
                r = answer_result(req, status, result);
                if (r < 0)
                        /* Resumed without a response, MHD calls the handler again, which
                         * answers 500 then. */
                        log_warning_errno(r, "Failed to answer %s: %m", req->url);
                if (req->suspended) {
                        req->suspended = false;
                        ev_mhd_resume(req->h->mhd, req->conn);
                }
        }
        free(op);
}

typedef enum OpKind {
        OP_RELOAD,
        OP_DRAIN,
} OpKind;

/* Starts a reload or drain and suspends the connection until it is done. @configs is
 * consumed. */
static int start_op(ControllerHttpRequest *req, OpKind kind, json_t *configs) {
        ControllerHttp *h = req->h;
        HttpOp *op;
        int r;

        op = calloc(1, sizeof(*op));
        if (!op) {
                json_decref(configs);
                return -ENOMEM;
        }
        op->h = h;
        op->req = req;
        op->configs = configs;
        op->what = kind == OP_RELOAD ? "reload" : "drain";
        op->next = h->ops;
        if (h->ops)
                h->ops->prev = op;
        h->ops = op;
        h->n_pending++;
        req->op = op;

        if (kind == OP_RELOAD)
                r = controller_reload(h->controller, configs, on_op_done, op);
        else
                r = controller_drain(h->controller, on_op_done, op);
        if (r < 0) {
                op_unlink(h, op);
                req->op = NULL;
                json_decref(op->configs);
                free(op);
                if (r == -EBUSY)
                        return answer_error(req, MHD_HTTP_CONFLICT, "busy",
                                            "another reload or drain is running");
                return answer_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                                    "could not start the %s: %s",
                                    kind == OP_RELOAD ? "reload" : "drain", strerror(-r));
        }
        log_info("HTTP %s started", kind == OP_RELOAD ? "reload" : "drain");
        /* The controller calls done later, from the loop; should it ever have called it
         * already, the request is answered and must not be suspended. */
        if (!req->answered) {
                MHD_suspend_connection(req->conn);
                req->suspended = true;
        }
        return 0;
}

/* ---- route handlers ---- */

static int route_healthz(ControllerHttpRequest *req) {
        return answer_json(req, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

static int route_readyz(ControllerHttpRequest *req) {
        const char *reason = NULL;

        if (controller_readiness(req->h->controller, &reason))
                return answer_json(req, MHD_HTTP_OK, json_pack("{s:b}", "ready", 1));
        return answer_json(req, MHD_HTTP_SERVICE_UNAVAILABLE,
                           json_pack("{s:b,s:s}", "ready", 0, "reason",
                                     reason ? reason : "not ready"));
}

static int route_pod(ControllerHttpRequest *req) {
        json_t *pod = controller_pod_json(req->h->controller);

        if (!pod)
                return -ENOMEM;
        return answer_json(req, MHD_HTTP_OK, pod);
}

static int route_metrics(ControllerHttpRequest *req) {
        MetricsBuf b = { 0 };
        struct MHD_Response *resp;

        controller_render_metrics(req->h->controller, &b);
        controller_http_render_metrics(req->h, &b);
        if (metrics_buf_failed(&b)) {
                metrics_buf_done(&b);
                return -ENOMEM;
        }
        if (b.len == 0)
                resp = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
        else {
                resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
                if (resp)
                        b = (MetricsBuf) { 0 };         /* MHD frees the text now */
        }
        metrics_buf_done(&b);
        return answer(req, MHD_HTTP_OK, resp, METRICS_TYPE, NULL, NULL);
}

static bool body_is_blank(const ControllerHttpRequest *req) {
        for (size_t i = 0; i < req->len; i++)
                if (!strchr(" \t\r\n", req->body[i]))
                        return false;
        return true;
}

static int route_reload(ControllerHttpRequest *req) {
        json_error_t err;
        json_t *configs, *v;
        const char *key;

        if (body_is_blank(req))
                return start_op(req, OP_RELOAD, NULL);

        configs = json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &err);
        if (!configs)
                return answer_error(req, MHD_HTTP_BAD_REQUEST, "invalid_json",
                                    "malformed JSON at line %d, column %d: %s", err.line,
                                    err.column, err.text);
        if (!json_is_object(configs)) {
                json_decref(configs);
                return answer_error(req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                    "expected a JSON object with \"collector\" and/or "
                                    "\"mediator\" configurations");
        }
        json_object_foreach(configs, key, v) {
                if (strcmp(key, "collector") != 0 && strcmp(key, "mediator") != 0) {
                        int r = answer_error(req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                             "unknown member \"%.64s\": expected \"collector\" "
                                             "and/or \"mediator\"", key);
                        json_decref(configs);
                        return r;
                }
                if (!json_is_object(v)) {
                        int r = answer_error(req, MHD_HTTP_BAD_REQUEST, "bad_request",
                                             "\"%s\": expected a JSON object", key);
                        json_decref(configs);      /* owns @key */
                        return r;
                }
        }
        if (json_object_size(configs) == 0) {
                /* {} names no component: the same as no body, each re-reads its file. */
                json_decref(configs);
                configs = NULL;
        }
        return start_op(req, OP_RELOAD, configs);
}

static int route_drain(ControllerHttpRequest *req) {
        return start_op(req, OP_DRAIN, NULL);
}

static const ControllerHttpRoute routes[] = {
        { MHD_HTTP_METHOD_GET,  "/healthz",        false, false, route_healthz },
        { MHD_HTTP_METHOD_GET,  "/readyz",         false, false, route_readyz  },
        { MHD_HTTP_METHOD_GET,  "/api/v1/pod",     false, false, route_pod     },
        { MHD_HTTP_METHOD_POST, "/api/v1/reload",  true,  true,  route_reload  },
        { MHD_HTTP_METHOD_POST, "/api/v1/drain",   true,  false, route_drain   },
        { MHD_HTTP_METHOD_GET,  "/metrics",        false, false, route_metrics },
};

const ControllerHttpRoute *controller_http_routes(size_t *ret_n) {
        assert(ret_n);
        *ret_n = ELEMENTSOF(routes);
        return routes;
}

/* Return: the route, or NULL with @allow set to the methods the path has ("" if none). */
static const ControllerHttpRoute *route_find(const char *url, const char *method, char *allow,
                                             size_t allow_size) {
        return ev_mhd_route_find(routes, ELEMENTSOF(routes), sizeof(routes[0]), url, method,
                                 allow, allow_size);
}

/* ---- authentication ---- */

typedef enum AuthResult {
        AUTH_OK,
        AUTH_MISSING,
        AUTH_WRONG,
} AuthResult;

static AuthResult check_auth(ControllerHttp *h, struct MHD_Connection *conn) {
        int r = ev_mhd_check_bearer(conn, h->token, h->token_len);

        return r == 0 ? AUTH_OK : r == -ENOKEY ? AUTH_MISSING : AUTH_WRONG;
}

/* ---- the access handler ---- */

/* Return: false when the request is over max_body_bytes by its declared length. */
static bool content_length_ok(ControllerHttp *h, struct MHD_Connection *conn) {
        return !ev_mhd_body_declared_over(conn, h->max_body);
}

static int first_call(ControllerHttpRequest *req) {
        ControllerHttp *h = req->h;
        char allow[64];

        req->route = route_find(req->url, req->method, allow, sizeof(allow));
        if (!req->route) {
                if (!allow[0])
                        return answer_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                            "no such resource: %.200s", req->url);
                return answer_error_header(req, MHD_HTTP_METHOD_NOT_ALLOWED,
                                           "method_not_allowed", MHD_HTTP_HEADER_ALLOW, allow,
                                           "%.200s supports %s", req->url, allow);
        }
        if (req->route->needs_auth && h->token) {
                switch (check_auth(h, req->conn)) {
                case AUTH_OK:
                        break;
                case AUTH_MISSING:
                        return answer_error_header(req, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                                   MHD_HTTP_HEADER_WWW_AUTHENTICATE, AUTH_REALM,
                                                   "a bearer token is required");
                case AUTH_WRONG:
                        return answer_error_header(req, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                                   MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                                   AUTH_REALM ", error=\"invalid_token\"",
                                                   "the bearer token is not valid");
                }
        }
        if (!content_length_ok(h, req->conn))
                return answer_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                                    "the request body exceeds %zu bytes", h->max_body);
        /* Even a route that reads no body answers only once the request is complete: a
         * response queued on this first call makes MHD close the connection after it
         * (fine for the errors above, which discard the body; not for keep-alive). */
        return 0;
}

/* Return: false to close the connection (an oversized chunked body that does not end). */
static bool take_upload(ControllerHttpRequest *req, const char *data, size_t n) {
        ControllerHttp *h = req->h;

        req->seen += n;
        if (!req->too_large && req->seen > h->max_body) {
                req->too_large = true;
                free(req->body);
                req->body = NULL;
                req->len = req->cap = 0;
        }
        if (req->too_large) {
                /* MHD cannot answer in the middle of an upload: discard what comes until the
                 * body has twice the cap and answer 413 at its end, or give up on the
                 * connection. */
                if (req->seen / 2 > h->max_body) {
                        h->body_too_large++;
                        log_debug("HTTP %s %s: body over %zu bytes does not end, closing",
                                  req->method, req->url, h->max_body);
                        return false;
                }
                return true;
        }
        if (!req->route->reads_body)
                return true;            /* counted against the cap, then dropped */
        if (req->len + n > req->cap) {
                size_t cap = MAX(MAX(req->cap * 2, req->len + n), (size_t) 4096);
                char *b;

                cap = MIN(cap, h->max_body);
                b = realloc(req->body, cap);
                if (!b)
                        return false;
                req->body = b;
                req->cap = cap;
        }
        memcpy(req->body + req->len, data, n);
        req->len += n;
        return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        ControllerHttp *h = cls;
        ControllerHttpRequest *req = *con_cls;
        int r;

        if (!req) {
                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->h = h;
                req->conn = conn;
                req->url = url;
                req->method = method;
                *con_cls = req;
                r = first_call(req);
                goto finish;
        }

        if (*upload_data_size > 0) {
                if (!take_upload(req, upload_data, *upload_data_size))
                        return MHD_NO;
                *upload_data_size = 0;
                return MHD_YES;
        }

        /* The whole request is here. */
        if (h->shutting_down)
                r = answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                                 "the controller is shutting down");
        else if (req->too_large)
                r = answer_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                                 "the request body exceeds %zu bytes", h->max_body);
        else if (req->dispatched)
                /* Resumed without a response (answering failed): try once more, briefly. */
                r = -EIO;
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
        ControllerHttpRequest *req = *con_cls;

        if (!req)
                return;
        if (req->op)
                req->op->req = NULL;
        free(req->body);
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

/* ---- lifecycle ---- */

int controller_http_new(ControllerHttp **ret, sd_event *e, Controller *c,
                        const ControllerHttpConfig *cfg) {
        ControllerHttp *h;
        EvMhdConfig mcfg;
        int r;

        assert(ret);
        assert(e);
        assert(c);
        assert(cfg);

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->controller = c;
        h->max_body = cfg->max_body_bytes > 0 ? cfg->max_body_bytes
                                              : CONTROLLER_HTTP_MAX_BODY_DEFAULT;
        if (cfg->token && cfg->token[0]) {
                h->token = strdup(cfg->token);
                if (!h->token) {
                        free(h);
                        return -ENOMEM;
                }
                h->token_len = strlen(h->token);
        }

        mcfg = (EvMhdConfig) {
                .listen = cfg->listen ? cfg->listen : CONTROLLER_HTTP_LISTEN_DEFAULT,
                .max_connections = cfg->max_connections > 0
                                           ? cfg->max_connections
                                           : CONTROLLER_HTTP_MAX_CONNECTIONS_DEFAULT,
                .max_per_ip = cfg->max_per_ip,
                .timeout_s = cfg->timeout_s,
                .memory_limit = cfg->max_header_bytes,
                .on_completed = on_completed,
                .on_completed_cls = h,
                .logger = on_mhd_log,
        };
        r = ev_mhd_new(&h->mhd, e, &mcfg, on_request, h);
        if (r < 0) {
                controller_http_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

ControllerHttp *controller_http_free(ControllerHttp *h) {
        HttpOp *op, *next;

        if (!h)
                return NULL;
        /* MHD must not be stopped with suspended connections: answer and resume them, and
         * give MHD a chance to send those answers. The operations themselves run on in the
         * controller and end as orphans. */
        h->shutting_down = true;
        for (op = h->ops; op; op = next) {
                ControllerHttpRequest *req = op->req;

                next = op->next;
                op->h = NULL;
                op->req = NULL;
                op->prev = op->next = NULL;
                if (!req)
                        continue;
                req->op = NULL;
                if (!req->answered)
                        (void) answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                                            "the controller is shutting down; the %s goes on",
                                            op->what);
                if (req->suspended) {
                        req->suspended = false;
                        MHD_resume_connection(req->conn);
                }
        }
        h->ops = NULL;
        h->n_pending = 0;
        if (h->mhd)
                ev_mhd_flush(h->mhd);
        h->mhd = ev_mhd_free(h->mhd);
        if (h->token) {
                explicit_bzero(h->token, h->token_len);
                free(h->token);
        }
        free(h);
        return NULL;
}

uint16_t controller_http_port(const ControllerHttp *h) {
        assert(h);
        return ev_mhd_port(h->mhd);
}

void controller_http_get_stats(const ControllerHttp *h, ControllerHttpStats *ret) {
        assert(h);
        assert(ret);
        *ret = (ControllerHttpStats) {
                .requests = h->requests,
                .unauthorized = h->unauthorized,
                .body_too_large = h->body_too_large,
                .pending = h->n_pending,
        };
}

void controller_http_render_metrics(ControllerHttp *h, MetricsBuf *b) {
        char labels[32];

        assert(h);
        assert(b);
        metrics_header(b, "ipfixd_controller_http_responses_total", "counter",
                       "HTTP responses by status code (not counting libmicrohttpd's own 414/431).");
        for (size_t i = 0; i <= ELEMENTSOF(counted_codes); i++) {
                if (i < ELEMENTSOF(counted_codes))
                        (void) snprintf(labels, sizeof(labels), "code=\"%u\"", counted_codes[i]);
                else
                        (void) snprintf(labels, sizeof(labels), "code=\"other\"");
                metrics_sample(b, "ipfixd_controller_http_responses_total", labels,
                               h->responses[i]);
        }
        metrics_header(b, "ipfixd_controller_http_body_too_large_total", "counter",
                       "Requests refused because the body exceeded max_body_bytes.");
        metrics_sample(b, "ipfixd_controller_http_body_too_large_total", NULL, h->body_too_large);
        metrics_header(b, "ipfixd_controller_http_unauthorized_total", "counter",
                       "Requests refused for a missing or wrong bearer token.");
        metrics_sample(b, "ipfixd_controller_http_unauthorized_total", NULL, h->unauthorized);
        metrics_header(b, "ipfixd_controller_http_connections", "gauge",
                       "HTTP connections open now.");
        metrics_sample(b, "ipfixd_controller_http_connections", NULL, ev_mhd_connections(h->mhd));
        metrics_header(b, "ipfixd_controller_http_pending_operations", "gauge",
                       "Reload and drain requests waiting for the controller.");
        metrics_sample(b, "ipfixd_controller_http_pending_operations", NULL, h->n_pending);
}
