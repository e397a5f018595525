/* SPDX-License-Identifier: MIT */
/*
 * api-params.h - the public API's query strings: decoded key/value pairs in, a validated
 * query (and the query-protocol request sent to every pod) out, or an ApiError that names
 * the offending parameter. Pure functions: no I/O, the clock is a parameter.
 *
 * Rules shared by every route:
 * - Parameter names are exact and lower-case; an unknown one is an error
 *   ("unknown_parameter") that lists what the route accepts. A parameter that exists on
 *   another route but makes no sense here (a filter on /flows/top, `from` on /flows/stream)
 *   is "bad_parameter" with the reason.
 * - Each parameter may be given once ("src: given twice"). Lists are written with commas
 *   inside one value (`dst_port=80,443`, `src=10.0.0.0/8,192.168.0.0/16`, `proto=tcp,udp`),
 *   one spelling only. Blanks around list members are ignored. An empty value (or a key
 *   without '=') is an error, except `filter=` which means "no extra filter".
 * - Filter parameters become ONE flow-filter expression (common/flow-filter.h), in the fixed
 *   order src, dst, addr, src_port, dst_port, port, proto, exporter, odid, then the raw
 *   `filter` in parentheses, joined by " and ". Addresses are written canonically
 *   (inet_ntop), protocols as numbers: `src_addr in 10.0.0.0/8 and dst_port in (80, 443) and
 *   proto == 6`. The raw filter is compiled alone first so its error columns are its own.
 * - Times (from, to): epoch milliseconds, RFC 3339 (`2026-11-25T10:00:00Z`, optional
 *   fraction, `Z` or a `+hh:mm`/`-hh:mm` offset; note that a literal '+' in a URL decodes to
 *   a blank, so clients write %2B or use Z), or `now`, `now-15m`, `now+5m`.
 * - Durations (window, interval): `90` (seconds) or number+unit sequences with units s, m, h,
 *   d (`15m`, `1h30m`, `7d`).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* One decoded query argument. @value is NULL for a key given without '='. */
typedef struct ApiKV {
        const char *key;
        const char *value;
} ApiKV;

typedef struct ApiLimits {
        size_t max_limit;       /* /flows limit cap (1000) */
        size_t default_limit;   /* /flows limit when absent (100) */
        uint64_t max_window_s;  /* /flows/top and /flows/timeseries window cap (7 days) */
        size_t max_points;      /* /flows/timeseries points cap (10000) */
        size_t max_expr_len;    /* the raw filter and the combined expression, bytes (2048) */
} ApiLimits;

#define API_LIMITS_DEFAULT                                                                  \
        ((ApiLimits) { .max_limit = 1000, .default_limit = 100, .max_window_s = 7 * 86400,  \
                       .max_points = 10000, .max_expr_len = 2048 })

#define API_CURSOR_MAX 256u     /* opaque cursor, bytes */
#define API_TOP_MAX_N 100u
#define API_TOP_DEFAULT_N 10u
#define API_DEFAULT_WINDOW_S 3600u
#define API_TIME_OPEN ((uint64_t) INT64_MAX) /* /flows to_ms when `to` is absent */

typedef struct ApiError {
        int status;             /* HTTP status: 400, or 500 for code "internal" (-ENOMEM) */
        char code[32];          /* "bad_parameter", "unknown_parameter", "internal" */
        char parameter[32];     /* the parameter at fault ("" when none) */
        char message[256];      /* starts with "<parameter>: " */
} ApiError;

/* api_error_json() - {"error": {"code", "message", "parameter"}} (parameter only when set).
 * Return: a new reference, NULL on -ENOMEM. */
json_t *api_error_json(const ApiError *e);

/* ---- /flows --------------------------------------------------------------------------- */

typedef struct ApiFlowsQuery {
        char *expr;             /* the combined filter expression, "" for all (owned) */
        uint64_t from_ms;       /* 0 when `from` is absent */
        uint64_t to_ms;         /* API_TIME_OPEN when `to` is absent; from_ms < to_ms */
        size_t limit;           /* 1..max_limit */
        char *cursor;           /* the client's opaque cursor, NULL when absent (owned) */
} ApiFlowsQuery;

/**
 * api_flows_query_parse() - validates the arguments of GET /flows.
 * @args, @n_args: the decoded query arguments, in any order
 * @limits:        caps; NULL means API_LIMITS_DEFAULT
 * @now_ms:        the wall clock, for relative times
 * @ret:           filled on success (free with api_flows_query_done())
 * @reterr:        filled on failure
 *
 * Return: 0, -EINVAL (status 400), -ENOMEM (status 500, code "internal").
 */
int api_flows_query_parse(const ApiKV *args, size_t n_args, const ApiLimits *limits,
                          uint64_t now_ms, ApiFlowsQuery *ret, ApiError *reterr);
void api_flows_query_done(ApiFlowsQuery *q);

/**
 * api_flows_pod_request() - the query-protocol request for one pod:
 * {"v":1,"op":"flows","filter":expr,"from_ms","to_ms","limit","cursor","timeout_ms"};
 * "filter" is left out for the empty expression, "cursor" when @pod_cursor is NULL and
 * "timeout_ms" when @timeout_ms is 0.
 * @pod_cursor: that pod's own "END_MS:SEQ" next_cursor, or NULL for its first page
 * @pod_limit:  the page size asked of the pod; 0 means @q->limit
 * @timeout_ms: the pod's share of the asker's deadline (it answers "truncated" when over)
 *
 * Return: a new reference, NULL on -ENOMEM.
 */
json_t *api_flows_pod_request(const ApiFlowsQuery *q, const char *pod_cursor, size_t pod_limit,
                              uint64_t timeout_ms);

/* ---- /flows/top ----------------------------------------------------------------------- */

typedef struct ApiTopQuery {
        const char *dim;        /* pod dim: src_addr, dst_addr, src_port, dst_port, proto,
                                 * exporter, pair (static string) */
        const char *metric;     /* octets, packets, flows (static string) */
        uint64_t from_ms, to_ms; /* from_ms < to_ms, at most max_window_s apart */
        size_t n;               /* 1..API_TOP_MAX_N */
} ApiTopQuery;

/**
 * api_top_query_parse() - validates GET /flows/top: by (src, dst, src_port, dst_port, port
 * (= dst_port), proto, exporter, pair; default src), metric (octets), n (10), and the window:
 * none -> the last hour; window -> [now - window, now); from -> [from, now); to ->
 * [to - 1h, to); from + window and to + window -> that span; from + to -> [from, to); all
 * three is an error. Filter parameters are rejected: the pods answer top from per-minute
 * rollups, which keep no per-flow detail.
 * Return: 0, -EINVAL (@reterr set).
 */
int api_top_query_parse(const ApiKV *args, size_t n_args, const ApiLimits *limits,
                        uint64_t now_ms, ApiTopQuery *ret, ApiError *reterr);

/* {"v":1,"op":"top","dim","metric","from_ms","to_ms","limit"}; @pod_limit 0 means @q->n.
 * Return: a new reference, NULL on -ENOMEM. */
json_t *api_top_pod_request(const ApiTopQuery *q, size_t pod_limit);

/* ---- /flows/timeseries ---------------------------------------------------------------- */

typedef struct ApiTimeseriesQuery {
        uint64_t from_ms, to_ms;
        uint32_t step_s;        /* a multiple of 60 */
        size_t points;          /* buckets aligned to step_s since the epoch that overlap
                                 * [from_ms, to_ms): 1..max_points */
} ApiTimeseriesQuery;

/**
 * api_timeseries_query_parse() - validates GET /flows/timeseries: interval (a multiple of
 * 60 s, default 1m, at most 7 d), and from/to/window as for /flows/top (at most max_window_s,
 * at most max_points points). No filters (the totals come from rollups).
 * Return: 0, -EINVAL (@reterr set).
 */
int api_timeseries_query_parse(const ApiKV *args, size_t n_args, const ApiLimits *limits,
                               uint64_t now_ms, ApiTimeseriesQuery *ret, ApiError *reterr);

/* {"v":1,"op":"totals","from_ms","to_ms","step_s"}. Return: a new reference, NULL on -ENOMEM. */
json_t *api_timeseries_pod_request(const ApiTimeseriesQuery *q);

/* ---- /flows/stream -------------------------------------------------------------------- */

typedef struct ApiStreamQuery {
        char *expr;             /* the combined filter expression, "" for all (owned) */
} ApiStreamQuery;

/**
 * api_stream_query_parse() - validates GET /flows/stream: the filter parameters of /flows,
 * nothing else (the stream is live: from, to, limit and cursor are rejected).
 * Return: 0, -EINVAL (status 400), -ENOMEM (status 500).
 */
int api_stream_query_parse(const ApiKV *args, size_t n_args, const ApiLimits *limits,
                           ApiStreamQuery *ret, ApiError *reterr);
void api_stream_query_done(ApiStreamQuery *q);

/* ---- /templates ---------------------------------------------------------------------- */

#define API_TEMPLATES_DEFAULT_LIMIT 1000u
#define API_TEMPLATES_MAX_LIMIT 10000u

typedef struct ApiTemplatesQuery {
        bool has_exporter;
        char exporter[46];      /* canonical text (inet_ntop), as in the Redis key */
        bool has_odid;
        uint32_t odid;
        size_t limit;           /* 1..API_TEMPLATES_MAX_LIMIT */
} ApiTemplatesQuery;

/**
 * api_templates_query_parse() - validates GET /templates: exporter (one address), odid,
 * limit (1000, at most 10000).
 * Return: 0, -EINVAL (@reterr set).
 */
int api_templates_query_parse(const ApiKV *args, size_t n_args, ApiTemplatesQuery *ret,
                              ApiError *reterr);

/* ---- building blocks ------------------------------------------------------------------ */

/**
 * api_parse_time() - a point in time (see the top of this file) to epoch milliseconds.
 * Return: 0 (@ret_ms set), -EINVAL (bad syntax or a field out of range), -ERANGE (before
 * 1970 or past INT64_MAX ms).
 */
int api_parse_time(const char *s, uint64_t now_ms, uint64_t *ret_ms);

/**
 * api_parse_duration() - `3600`, `15m`, `1h30m`, `7d` to seconds (0 is accepted; callers
 * set their own minimum).
 * Return: 0 (@ret_s set), -EINVAL (bad syntax), -ERANGE (over 100 years).
 */
int api_parse_duration(const char *s, uint64_t *ret_s);

/* ---- the parameter tables ------------------------------------------------------------- */

typedef enum ApiParamType {
        API_PARAM_ADDRESSES,    /* IPv4/IPv6 address or CIDR, comma list */
        API_PARAM_PORTS,        /* 0..65535, comma list */
        API_PARAM_PROTOCOLS,    /* name or 0..255, comma list */
        API_PARAM_INTEGERS,     /* unsigned integers, comma list */
        API_PARAM_INTEGER,
        API_PARAM_TIME,
        API_PARAM_DURATION,
        API_PARAM_ENUM,
        API_PARAM_STRING,
        API_PARAM_EXPRESSION,   /* flow-filter expression */
        _API_PARAM_TYPE_MAX,
} ApiParamType;

typedef struct ApiParamSpec {
        const char *name;
        ApiParamType type;
        const char *default_value;      /* NULL when absent means "no constraint" */
        const char *description;
} ApiParamSpec;

/* "address", "ports", "protocols", "integers", "integer", "time", "duration", "enum",
 * "string", "expression"; NULL when out of range. */
const char *api_param_type_to_string(ApiParamType t);

/**
 * api_route_params() - the parameters a route accepts, in documentation order.
 * @route: "/flows", "/flows/top", "/flows/timeseries", "/flows/stream" or "/templates", with or without
 *         the "/api/v1" prefix
 * Return: a static table and its length in @ret_n, or NULL (and 0) for an unknown route.
 */
const ApiParamSpec *api_route_params(const char *route, size_t *ret_n);
