/* SPDX-License-Identifier: MIT */
/*
 * query.c - the query protocol (version 1) and the ROUTER service thread.
 *
 * query_handle() parses one request with jansson (small, capped) and writes the answer as
 * text directly: a flow answer can carry 100 000 records, and formatting them with
 * flow_record_to_json() into one growing buffer is several times cheaper than building a
 * jansson tree. Every answer is one JSON object with "v", "id" (echoed), "ok", "op", "pod"
 * and either the op's members or "error": {"code", "message"}.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zmq.h>

#include "flow-filter.h"
#include "log.h"
#include "macro.h"
#include "query.h"

#define DEFAULT_FLOWS_LIMIT 100u
#define DEFAULT_TOP_LIMIT 10u
#define DEFAULT_WINDOW_MS (3600u * 1000u)

/* A growable text buffer; a failed allocation sets failed and later appends do nothing. */
typedef struct Text {
        char *data;
        size_t len, cap;
        bool failed;
        bool error;             /* an error answer was written */
} Text;

static bool text_reserve(Text *t, size_t more) {
        size_t need = t->len + more + 1, cap;
        char *d;

        if (t->failed)
                return false;
        if (need <= t->cap)
                return true;
        cap = MAX(t->cap * 2, MAX(need, (size_t) 4096));
        d = realloc(t->data, cap);
        if (!d) {
                t->failed = true;
                return false;
        }
        t->data = d;
        t->cap = cap;
        return true;
}

static void text_add(Text *t, const char *s) {
        size_t l = strlen(s);
        if (!text_reserve(t, l))
                return;
        memcpy(t->data + t->len, s, l + 1);
        t->len += l;
}

_printf_(2, 3) static void text_addf(Text *t, const char *fmt, ...) {
        va_list ap;
        int n;

        if (!text_reserve(t, 256))
                return;
        va_start(ap, fmt);
        n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
                t->failed = true;
                return;
        }
        if ((size_t) n >= t->cap - t->len) {
                if (!text_reserve(t, (size_t) n))
                        return;
                va_start(ap, fmt);
                (void) vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
                va_end(ap);
        }
        t->len += (size_t) n;
}

/* A JSON string literal (jansson does the escaping). */
static void text_add_json_string(Text *t, const char *s) {
        json_t *j = json_string(s ? s : "");
        char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
        if (d)
                text_add(t, d);
        else
                t->failed = true;
        free(d);
        json_decref(j);
}

static const char *const op_names[_QUERY_OP_MAX] = {
        [QUERY_OP_FLOWS] = "flows",
        [QUERY_OP_TOP] = "top",
        [QUERY_OP_TOTALS] = "totals",
        [QUERY_OP_EXPORTERS] = "exporters",
        [QUERY_OP_PING] = "ping",
};

const char *query_op_to_string(QueryOp op) {
        return op >= 0 && op < _QUERY_OP_MAX ? op_names[op] : "unknown";
}

static QueryOp op_from_string(const char *s) {
        for (int i = 0; s && i < _QUERY_OP_MAX; i++)
                if (strcmp(op_names[i], s) == 0)
                        return (QueryOp) i;
        return _QUERY_OP_MAX;
}

/* The common head of every answer: {"v":1,"id":...,"pod":"...","op":"..." */
static void answer_head(Text *t, const QueryContext *ctx, json_t *id, const char *op) {
        text_addf(t, "{\"v\":%d,\"id\":", QUERY_PROTOCOL_VERSION);
        if (id) {
                char *d = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
                if (d)
                        text_add(t, d);
                else
                        t->failed = true;
                free(d);
        } else
                text_add(t, "null");
        text_add(t, ",\"pod\":");
        text_add_json_string(t, ctx->pod);
        text_add(t, ",\"op\":");
        text_add_json_string(t, op);
}

static void answer_error(Text *t, const QueryContext *ctx, json_t *id, const char *op,
                         const char *code, const char *message) {
        t->error = true;
        answer_head(t, ctx, id, op);
        text_add(t, ",\"ok\":false,\"error\":{\"code\":");
        text_add_json_string(t, code);
        text_add(t, ",\"message\":");
        text_add_json_string(t, message);
        text_add(t, "}}");
}

/* Reads an optional non-negative integer member. Return: 0, or -EINVAL with @msg set. */
static int get_uint(json_t *req, const char *name, uint64_t def, uint64_t max, uint64_t *ret,
                    char *msg, size_t msglen) {
        json_t *v = json_object_get(req, name);

        if (!v || json_is_null(v)) {
                *ret = def;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (uint64_t) json_integer_value(v) > max) {
                (void) snprintf(msg, msglen, "%s: must be an integer 0..%" PRIu64, name, max);
                return -EINVAL;
        }
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

/* from_ms/to_ms with defaults; rejects from >= to. */
static int get_window(json_t *req, uint64_t def_from, uint64_t def_to, uint64_t *from,
                      uint64_t *to, char *msg, size_t msglen) {
        if (get_uint(req, "from_ms", def_from, INT64_MAX, from, msg, msglen) < 0 ||
            get_uint(req, "to_ms", def_to, INT64_MAX, to, msg, msglen) < 0)
                return -EINVAL;
        if (*from >= *to) {
                (void) snprintf(msg, msglen, "from_ms: must be before to_ms");
                return -EINVAL;
        }
        return 0;
}

static void format_cursor(char *buf, size_t len, uint64_t end_ms, uint64_t seq) {
        (void) snprintf(buf, len, "%" PRIu64 ":%" PRIu64, end_ms, seq);
}

static int parse_cursor(const char *s, uint64_t *end_ms, uint64_t *seq) {
        char *e;

        errno = 0;
        *end_ms = strtoull(s, &e, 10);
        if (errno || e == s || *e != ':')
                return -EINVAL;
        s = e + 1;
        *seq = strtoull(s, &e, 10);
        if (errno || e == s || *e)
                return -EINVAL;
        return 0;
}

static void handle_flows(Text *t, const QueryContext *ctx, json_t *req, json_t *id,
                         bool *truncated) {
        _cleanup_free_ char *err = NULL;
        FlowFilter *filter = NULL;
        FlowStoreResult res = { 0 };
        FlowStoreQuery q = { 0 };
        uint64_t limit, timeout_ms, t0 = now_usec();
        char msg[256] = "", cursor[64];
        json_t *v;
        int r;

        if (!ctx->store) {
                answer_error(t, ctx, id, "flows", "unavailable",
                             "this mediator keeps no flow store (store_max_flows = 0)");
                return;
        }
        if (get_window(req, 0, UINT64_MAX >> 1, &q.from_ms, &q.to_ms, msg, sizeof(msg)) < 0 ||
            get_uint(req, "limit", DEFAULT_FLOWS_LIMIT, ctx->limits.max_limit, &limit, msg,
                     sizeof(msg)) < 0 ||
            get_uint(req, "timeout_ms", ctx->limits.timeout_ms, UINT32_MAX, &timeout_ms, msg,
                     sizeof(msg)) < 0) {
                answer_error(t, ctx, id, "flows", "bad_request", msg);
                return;
        }
        if (limit == 0 || timeout_ms == 0) {
                answer_error(t, ctx, id, "flows", "bad_request",
                             limit == 0 ? "limit: must be at least 1"
                                        : "timeout_ms: must be at least 1");
                return;
        }
        v = json_object_get(req, "cursor");
        if (v && !json_is_null(v)) {
                if (!json_is_string(v) ||
                    parse_cursor(json_string_value(v), &q.cursor_end_ms, &q.cursor_seq) < 0) {
                        answer_error(t, ctx, id, "flows", "bad_request",
                                     "cursor: must be the next_cursor of a previous answer");
                        return;
                }
                q.has_cursor = true;
        }
        v = json_object_get(req, "filter");
        if (v && !json_is_null(v)) {
                if (!json_is_string(v)) {
                        answer_error(t, ctx, id, "flows", "bad_request", "filter: must be a string");
                        return;
                }
                r = flow_filter_compile(json_string_value(v), &filter, &err);
                if (r < 0) {
                        (void) snprintf(msg, sizeof(msg), "filter: %s", err ? err : strerror(-r));
                        answer_error(t, ctx, id, "flows", "bad_request", msg);
                        return;
                }
        }
        q.filter = filter;
        q.limit = (size_t) MIN(limit, (uint64_t) FLOW_STORE_MAX_LIMIT);
        q.max_scan = ctx->limits.max_scan;
        /* The asker's own budget (the API's deadline), within query_timeout_ms. */
        q.deadline_us = t0 + MIN(timeout_ms, ctx->limits.timeout_ms) * 1000u;
        r = flow_store_query(ctx->store, &q, &res);
        flow_filter_free(filter);
        if (r < 0) {
                answer_error(t, ctx, id, "flows", r == -ENOMEM ? "internal" : "bad_request",
                             strerror(-r));
                return;
        }
        answer_head(t, ctx, id, "flows");
        text_add(t, ",\"ok\":true,\"flows\":[");
        for (size_t i = 0; i < res.n && !t->failed; i++) {
                int n;
                if (!text_reserve(t, 1024))
                        break;
                if (i > 0)
                        t->data[t->len++] = ',';
                n = flow_record_to_json(&res.flows[i], t->data + t->len, t->cap - t->len);
                if (n < 2) {
                        t->failed = true;
                        break;
                }
                t->len += (size_t) n - 1;       /* reopen the object for "seq" */
                text_addf(t, ",\"seq\":%" PRIu64 "}", res.seqs[i]);
        }
        text_addf(t, "],\"count\":%zu,\"next_cursor\":", res.n);
        if (res.has_more && res.n > 0) {
                format_cursor(cursor, sizeof(cursor), res.next_end_ms, res.next_seq);
                text_add_json_string(t, cursor);
        } else
                text_add(t, "null");
        text_addf(t, ",\"truncated\":%s,\"scanned\":%" PRIu64 ",\"segments_skipped\":%" PRIu64
                     ",\"took_us\":%" PRIu64 "}",
                  res.truncated ? "true" : "false", res.scanned, res.segments_skipped,
                  now_usec() - t0);
        *truncated = res.truncated;
        flow_store_result_clear(&res);
}

static void format_addr(char *buf, size_t len, const uint8_t a[16], uint8_t family) {
        (void) flow_addr_format(a, family ? family : 6, buf, len);
}

/* "key" (a string that identifies the key across pods) and "fields" (typed). */
static void add_top_key(Text *t, RollupDim dim, const RollupKey *k) {
        char a[64], b[64], key[160];

        switch (dim) {
        case ROLLUP_DIM_SRC_ADDR:
        case ROLLUP_DIM_DST_ADDR:
                format_addr(a, sizeof(a), k->addr, k->family);
                text_addf(t, "\"key\":\"%s\",\"fields\":{\"%s\":\"%s\"}", a,
                          rollup_dim_to_string(dim), a);
                break;
        case ROLLUP_DIM_SRC_PORT:
        case ROLLUP_DIM_DST_PORT:
                text_addf(t, "\"key\":\"%u\",\"fields\":{\"%s\":%u}", k->port,
                          rollup_dim_to_string(dim), k->port);
                break;
        case ROLLUP_DIM_PROTO:
                text_addf(t, "\"key\":\"%u\",\"fields\":{\"proto\":%u}", k->proto, k->proto);
                break;
        case ROLLUP_DIM_EXPORTER:
                format_addr(a, sizeof(a), k->addr, k->family);
                (void) snprintf(key, sizeof(key), "%s,%" PRIu32, a, k->odid);
                text_addf(t, "\"key\":\"%s\",\"fields\":{\"exporter\":\"%s\",\"odid\":%" PRIu32 "}",
                          key, a, k->odid);
                break;
        case ROLLUP_DIM_PAIR:
                format_addr(a, sizeof(a), k->addr, k->family);
                format_addr(b, sizeof(b), k->addr2, k->family);
                text_addf(t, "\"key\":\"%s,%s\",\"fields\":{\"src_addr\":\"%s\",\"dst_addr\":\"%s\"}",
                          a, b, a, b);
                break;
        default:
                text_add(t, "\"key\":null");
        }
}

static void add_sums(Text *t, const char *name, const RollupSums *s) {
        text_addf(t, "\"%s\":{\"flows\":%" PRIu64 ",\"octets\":%" PRIu64 ",\"packets\":%" PRIu64 "}",
                  name, s->flows, s->octets, s->packets);
}

static void handle_top(Text *t, const QueryContext *ctx, json_t *req, json_t *id) {
        RollupTopResult res = { 0 };
        uint64_t from, to, limit, now = now_realtime_ms();
        const char *dim_s, *metric_s;
        RollupMetric metric;
        RollupDim dim;
        char msg[256] = "";
        int r;

        if (!ctx->rollup) {
                answer_error(t, ctx, id, "top", "unavailable", "no rollups on this mediator");
                return;
        }
        dim_s = json_string_value(json_object_get(req, "dim"));
        metric_s = json_string_value(json_object_get(req, "metric"));
        dim = dim_s ? rollup_dim_from_string(dim_s) : _ROLLUP_DIM_INVALID;
        metric = metric_s ? rollup_metric_from_string(metric_s) : ROLLUP_METRIC_OCTETS;
        if (dim < 0) {
                answer_error(t, ctx, id, "top", "bad_request",
                             "dim: must be src_addr, dst_addr, src_port, dst_port, proto, "
                             "exporter or pair");
                return;
        }
        if (metric < 0) {
                answer_error(t, ctx, id, "top", "bad_request",
                             "metric: must be octets, packets or flows");
                return;
        }
        if (get_window(req, now - DEFAULT_WINDOW_MS, now + ROLLUP_FUTURE_MAX_MS, &from, &to, msg,
                       sizeof(msg)) < 0 ||
            get_uint(req, "limit", DEFAULT_TOP_LIMIT, ctx->limits.max_limit, &limit, msg,
                     sizeof(msg)) < 0) {
                answer_error(t, ctx, id, "top", "bad_request", msg);
                return;
        }
        r = rollup_top(ctx->rollup, dim, metric, from, to, (size_t) limit, &res);
        if (r < 0) {
                answer_error(t, ctx, id, "top", r == -ENOMEM ? "internal" : "bad_request",
                             strerror(-r));
                return;
        }
        answer_head(t, ctx, id, "top");
        text_addf(t, ",\"ok\":true,\"dim\":\"%s\",\"metric\":\"%s\",\"from_ms\":%" PRIu64
                     ",\"to_ms\":%" PRIu64 ",\"entries\":[",
                  rollup_dim_to_string(dim), rollup_metric_to_string(metric), res.start_ms,
                  res.end_ms);
        for (size_t i = 0; i < res.n_entries; i++) {
                const RollupTopEntry *e = &res.entries[i];
                text_add(t, i ? ",{" : "{");
                add_top_key(t, dim, &e->key);
                text_addf(t, ",\"flows\":%" PRIu64 ",\"octets\":%" PRIu64 ",\"packets\":%" PRIu64 "}",
                          e->sums.flows, e->sums.octets, e->sums.packets);
        }
        text_add(t, "],");
        add_sums(t, "totals", &res.totals);
        text_add(t, ",");
        add_sums(t, "other", &res.other);
        text_addf(t, ",\"exact\":%s,\"minutes\":%" PRIu32 "}", res.exact ? "true" : "false",
                  res.minutes_covered);
        rollup_top_result_clear(&res);
}

static void handle_totals(Text *t, const QueryContext *ctx, json_t *req, json_t *id) {
        RollupSeries s = { 0 };
        uint64_t from, to, step, now = now_realtime_ms();
        char msg[256] = "";
        int r;

        if (!ctx->rollup) {
                answer_error(t, ctx, id, "totals", "unavailable", "no rollups on this mediator");
                return;
        }
        if (get_window(req, now - DEFAULT_WINDOW_MS, now + ROLLUP_FUTURE_MAX_MS, &from, &to, msg,
                       sizeof(msg)) < 0 ||
            get_uint(req, "step_s", 60, 7 * 86400, &step, msg, sizeof(msg)) < 0) {
                answer_error(t, ctx, id, "totals", "bad_request", msg);
                return;
        }
        r = rollup_totals(ctx->rollup, from, to, (uint32_t) step, &s);
        if (r < 0) {
                answer_error(t, ctx, id, "totals", r == -ENOMEM ? "internal" : "bad_request",
                             r == -E2BIG ? "too many points: widen step_s or narrow the window"
                             : r == -EINVAL ? "step_s: must be a positive multiple of 60"
                                            : strerror(-r));
                return;
        }
        answer_head(t, ctx, id, "totals");
        text_addf(t, ",\"ok\":true,\"step_s\":%" PRIu32 ",\"points\":[", s.step_s);
        for (size_t i = 0; i < s.n_points; i++)
                text_addf(t, "%s{\"start_ms\":%" PRIu64 ",\"flows\":%" PRIu64 ",\"octets\":%" PRIu64
                             ",\"packets\":%" PRIu64 "}",
                          i ? "," : "", s.points[i].start_ms, s.points[i].flows,
                          s.points[i].octets, s.points[i].packets);
        text_add(t, "]}");
        rollup_series_clear(&s);
}

static void handle_exporters(Text *t, const QueryContext *ctx, json_t *id) {
        RollupExporter *e = NULL;
        size_t n = 0;
        char a[64];

        if (!ctx->rollup || rollup_exporters(ctx->rollup, &e, &n) < 0) {
                answer_error(t, ctx, id, "exporters", ctx->rollup ? "internal" : "unavailable",
                             ctx->rollup ? "out of memory" : "no rollups on this mediator");
                return;
        }
        answer_head(t, ctx, id, "exporters");
        text_add(t, ",\"ok\":true,\"exporters\":[");
        for (size_t i = 0; i < n; i++) {
                format_addr(a, sizeof(a), e[i].addr, e[i].family);
                text_addf(t, "%s{\"address\":\"%s\",\"odid\":%" PRIu32 ",\"first_seen_ms\":%" PRIu64
                             ",\"last_seen_ms\":%" PRIu64 ",\"flows\":%" PRIu64
                             ",\"octets\":%" PRIu64 ",\"packets\":%" PRIu64 "}",
                          i ? "," : "", a, e[i].odid, e[i].first_seen_ms, e[i].last_seen_ms,
                          e[i].flows, e[i].octets, e[i].packets);
        }
        text_add(t, "]}");
        free(e);
}

static void handle_ping(Text *t, const QueryContext *ctx, json_t *id) {
        answer_head(t, ctx, id, "ping");
        text_addf(t, ",\"ok\":true,\"now_ms\":%" PRIu64, now_realtime_ms());
        if (ctx->store) {
                FlowStoreStats st;
                flow_store_get_stats(ctx->store, &st);
                text_addf(t, ",\"store\":{\"records\":%" PRIu64 ",\"capacity\":%" PRIu64
                             ",\"appended\":%" PRIu64 ",\"oldest_end_ms\":%" PRIu64
                             ",\"newest_end_ms\":%" PRIu64 "}",
                          st.records, st.capacity, st.appended, st.oldest_end_ms,
                          st.newest_end_ms);
        }
        text_add(t, "}");
}

int query_handle(const QueryContext *ctx, const char *req, size_t len, char **ret,
                 QueryOp *retop, bool *rettruncated, bool *reterror) {
        Text t = { 0 };
        json_error_t jerr;
        json_t *root, *id = NULL, *v;
        QueryOp op = _QUERY_OP_MAX;
        bool truncated = false;
        char msg[256];

        root = len <= QUERY_MAX_REQUEST ? json_loadb(req, len, JSON_REJECT_DUPLICATES, &jerr)
                                        : NULL;
        if (len > QUERY_MAX_REQUEST) {
                (void) snprintf(msg, sizeof(msg), "request larger than %u bytes",
                                QUERY_MAX_REQUEST);
                answer_error(&t, ctx, NULL, "unknown", "too_large", msg);
        } else if (!root || !json_is_object(root)) {
                (void) snprintf(msg, sizeof(msg), "request is not a JSON object%s%s",
                                root ? "" : ": ", root ? "" : jerr.text);
                answer_error(&t, ctx, NULL, "unknown", "bad_request", msg);
        } else {
                id = json_object_get(root, "id");
                v = json_object_get(root, "v");
                op = op_from_string(json_string_value(json_object_get(root, "op")));
                if (!json_is_integer(v) || json_integer_value(v) != QUERY_PROTOCOL_VERSION) {
                        (void) snprintf(msg, sizeof(msg),
                                        "v: this mediator speaks version %d of the query "
                                        "protocol", QUERY_PROTOCOL_VERSION);
                        answer_error(&t, ctx, id, query_op_to_string(op), "unsupported_version",
                                     msg);
                        op = _QUERY_OP_MAX;
                } else
                        switch (op) {
                        case QUERY_OP_FLOWS: handle_flows(&t, ctx, root, id, &truncated); break;
                        case QUERY_OP_TOP: handle_top(&t, ctx, root, id); break;
                        case QUERY_OP_TOTALS: handle_totals(&t, ctx, root, id); break;
                        case QUERY_OP_EXPORTERS: handle_exporters(&t, ctx, id); break;
                        case QUERY_OP_PING: handle_ping(&t, ctx, id); break;
                        default:
                                answer_error(&t, ctx, id, "unknown", "bad_request",
                                             "op: must be flows, top, totals, exporters or ping");
                        }
        }
        json_decref(root);
        if (t.failed) {
                free(t.data);
                return -ENOMEM;
        }
        *ret = t.data;
        if (retop)
                *retop = op;
        if (rettruncated)
                *rettruncated = truncated;
        if (reterror)
                *reterror = t.error;
        return 0;
}

/* ---- the service thread ---- */

struct QueryService {
        void *zctx;
        void *router;
        void *ctl;                      /* inproc PAIR, our end: "stop" */
        void *ctl_peer;                 /* the thread's end */
        char ctl_endpoint[64];
        pthread_t thread;
        bool started;
        pthread_mutex_t lock;           /* guards ctx.limits and stats */
        QueryContext ctx;
        char pod[256];
        QueryStats stats;
};

/* Receives one multipart message; the envelope is every frame but the last. */
static void serve_one(QueryService *q) {
        zmq_msg_t frames[16];
        size_t n = 0;
        int more = 1;
        size_t sz = sizeof(more);
        QueryContext ctx;
        char *answer = NULL;
        bool truncated = false, error = false;
        QueryOp op = _QUERY_OP_MAX;
        uint64_t t0 = now_usec();

        bool overflow = false;

        while (more) {
                zmq_msg_t junk, *m = n < ELEMENTSOF(frames) ? &frames[n] : &junk;
                zmq_msg_init(m);
                if (zmq_msg_recv(m, q->router, 0) < 0) {
                        zmq_msg_close(m);
                        break;
                }
                if (zmq_getsockopt(q->router, ZMQ_RCVMORE, &more, &sz) < 0)
                        more = 0;
                if (m == &junk) {
                        zmq_msg_close(m);       /* absurd envelope: the request is dropped */
                        overflow = true;
                } else
                        n++;
        }
        if (overflow)
                goto out;
        if (n < 2)
                goto out;       /* a ROUTER message always has an identity frame */

        pthread_mutex_lock(&q->lock);
        ctx = q->ctx;
        pthread_mutex_unlock(&q->lock);
        if (query_handle(&ctx, zmq_msg_data(&frames[n - 1]), zmq_msg_size(&frames[n - 1]),
                         &answer, &op, &truncated, &error) < 0)
                goto out;
        /* Counted before the answer leaves, so a client that got it sees it counted. */
        pthread_mutex_lock(&q->lock);
        if (op < _QUERY_OP_MAX)
                q->stats.requests[op]++;
        if (op == _QUERY_OP_MAX || error)
                q->stats.bad_requests++;
        if (truncated)
                q->stats.truncated++;
        q->stats.latency_us_total += now_usec() - t0;
        pthread_mutex_unlock(&q->lock);
        for (size_t i = 0; i + 1 < n; i++)
                if (zmq_send(q->router, zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i]),
                             ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
                        goto out;
        (void) zmq_send(q->router, answer, strlen(answer), ZMQ_DONTWAIT);

out:
        free(answer);
        for (size_t i = 0; i < n; i++)
                zmq_msg_close(&frames[i]);
}

static void *service_thread(void *userdata) {
        QueryService *q = userdata;
        zmq_pollitem_t items[2] = {
                { .socket = q->router, .events = ZMQ_POLLIN },
                { .socket = q->ctl_peer, .events = ZMQ_POLLIN },
        };

        for (;;) {
                if (zmq_poll(items, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (items[1].revents & ZMQ_POLLIN)
                        break;
                if (items[0].revents & ZMQ_POLLIN)
                        serve_one(q);
        }
        return NULL;
}

int query_service_new(QueryService **ret, void *zctx, const char *endpoint,
                      const QueryContext *ctx) {
        static unsigned counter;
        int64_t maxmsg = QUERY_MAX_REQUEST + 1024;
        int linger = 0, hwm = 1000, r;
        QueryService *q;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        pthread_mutex_init(&q->lock, NULL);
        q->zctx = zctx;
        q->ctx = *ctx;
        (void) snprintf(q->pod, sizeof(q->pod), "%s", ctx->pod ? ctx->pod : "");
        q->ctx.pod = q->pod;
        (void) snprintf(q->ctl_endpoint, sizeof(q->ctl_endpoint), "inproc://query-ctl-%u",
                        __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));

        q->router = zmq_socket(zctx, ZMQ_ROUTER);
        q->ctl = zmq_socket(zctx, ZMQ_PAIR);
        q->ctl_peer = zmq_socket(zctx, ZMQ_PAIR);
        if (!q->router || !q->ctl || !q->ctl_peer) {
                r = -errno;
                goto fail;
        }
        (void) zmq_setsockopt(q->router, ZMQ_LINGER, &linger, sizeof(linger));
        (void) zmq_setsockopt(q->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
        (void) zmq_setsockopt(q->router, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        (void) zmq_setsockopt(q->router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        (void) zmq_setsockopt(q->ctl, ZMQ_LINGER, &linger, sizeof(linger));
        (void) zmq_setsockopt(q->ctl_peer, ZMQ_LINGER, &linger, sizeof(linger));
        if (zmq_bind(q->router, endpoint) < 0 || zmq_bind(q->ctl_peer, q->ctl_endpoint) < 0 ||
            zmq_connect(q->ctl, q->ctl_endpoint) < 0) {
                r = -errno;
                goto fail;
        }
        r = -pthread_create(&q->thread, NULL, service_thread, q);
        if (r < 0)
                goto fail;
        q->started = true;
        *ret = q;
        return 0;
fail:
        query_service_free(q);
        return r;
}

QueryService *query_service_free(QueryService *q) {
        if (!q)
                return NULL;
        if (q->started) {
                (void) zmq_send(q->ctl, "stop", 4, 0);
                pthread_join(q->thread, NULL);
        }
        if (q->router)
                zmq_close(q->router);
        if (q->ctl)
                zmq_close(q->ctl);
        if (q->ctl_peer)
                zmq_close(q->ctl_peer);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
}

void query_service_set_limits(QueryService *q, const QueryLimits *limits) {
        pthread_mutex_lock(&q->lock);
        q->ctx.limits = *limits;
        pthread_mutex_unlock(&q->lock);
}

void query_service_get_stats(QueryService *q, QueryStats *ret) {
        pthread_mutex_lock(&q->lock);
        *ret = q->stats;
        pthread_mutex_unlock(&q->lock);
}
