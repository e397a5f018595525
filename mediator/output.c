/* SPDX-License-Identifier: MIT */
/*
 * output.c - output configuration (one key table per output type, validated once, immutable
 * afterwards) and the Output front end that dispatches to the IPFIX, JSON and ZeroMQ
 * backends. An Output owns a copy of its config so a reload can compare it with the new one.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "output-ipfix.h"
#include "output-json.h"
#include "output-zmq.h"
#include "output.h"

struct OutputConfig {
        OutputType type;
        char *target;
        char *path;
        char *endpoint;
        int64_t odid;
        int64_t buffer_records;
        int64_t reconnect_min_ms, reconnect_max_ms, connect_timeout_ms;
        int64_t template_resend_s, max_message;
        int64_t rotate_s, rotate_bytes;
        int64_t hwm, batch_records, sender_id;
        bool bind;
        struct sockaddr_storage addr;   /* parsed target (ipfix-tcp/udp) */
        socklen_t addr_len;
};

struct Output {
        OutputConfig *cfg;
        char *pipeline;
        bool closed;
        OutputIpfix *ipfix;
        OutputJson *json;
        OutputZmq *zmq;
};

static const char *const type_names[_OUTPUT_TYPE_MAX] = {
        [OUTPUT_IPFIX_TCP] = "ipfix-tcp",
        [OUTPUT_IPFIX_UDP] = "ipfix-udp",
        [OUTPUT_IPFIX_FILE] = "ipfix-file",
        [OUTPUT_JSON] = "json",
        [OUTPUT_ZMQ_PUB] = "zmq-pub",
};

const char *output_type_to_string(OutputType t) {
        if (t < 0 || t >= _OUTPUT_TYPE_MAX)
                return NULL;
        return type_names[t];
}

OutputType output_type_from_string(const char *s) {
        for (int t = 0; s && t < _OUTPUT_TYPE_MAX; t++)
                if (strcmp(type_names[t], s) == 0)
                        return (OutputType) t;
        return _OUTPUT_TYPE_INVALID;
}

/* ---- configuration tables -------------------------------------------------------------- */

#define KEY_INT(n, lo, hi, def, h)                                                      \
        { .name = #n, .type = CONFIG_INT, .offset = offsetof(OutputConfig, n), .min = (lo), \
          .max = (hi), .def_int = (def), .reloadable = true, .help = (h) }
#define KEY_STR(n, h)                                                                   \
        { .name = #n, .type = CONFIG_STRING, .offset = offsetof(OutputConfig, n),       \
          .reloadable = true, .help = (h) }
#define KEY_BOOL(n, def, h)                                                             \
        { .name = #n, .type = CONFIG_BOOL, .offset = offsetof(OutputConfig, n),         \
          .def_int = (def), .reloadable = true, .help = (h) }

#define KEY_ODID KEY_INT(odid, 0, UINT32_MAX, 1, "observation domain id of exported messages")
#define KEY_ROTATE_S KEY_INT(rotate_s, 1, 7 * 86400, 300, "close a file after this many seconds")
#define KEY_ROTATE_BYTES                                                                \
        KEY_INT(rotate_bytes, 65536, INT64_C(1) << 40, 100 * 1024 * 1024,               \
                "close a file once it reached this size")

/* A changed key replaces the output on reload (a new connection or file series). */
static const ConfigKey tcp_keys[] = {
        KEY_STR(target, "collector address, a.b.c.d:port or [v6]:port"),
        KEY_ODID,
        KEY_INT(buffer_records, 1, 16 * 1024 * 1024, 131072,
                "records queued while the collector is slow or unreachable"),
        KEY_INT(reconnect_min_ms, 10, 600000, 100, "first reconnect delay"),
        KEY_INT(reconnect_max_ms, 10, 3600000, 30000, "longest reconnect delay"),
        KEY_INT(connect_timeout_ms, 100, 600000, 5000, "give up a connect attempt after this"),
};
static const ConfigKey udp_keys[] = {
        KEY_STR(target, "collector address, a.b.c.d:port or [v6]:port"),
        KEY_ODID,
        KEY_INT(template_resend_s, 1, 3600, 30, "resend the templates this often"),
        KEY_INT(max_message, 512, 65507, 1400, "largest datagram, bytes"),
};
static const ConfigKey file_keys[] = {
        KEY_STR(path, "/dir/prefix of the files"),
        KEY_ODID,
        KEY_ROTATE_S,
        KEY_ROTATE_BYTES,
};
static const ConfigKey json_keys[] = {
        KEY_STR(path, "\"-\" for stdout, or /dir/prefix of the files"),
        KEY_ROTATE_S,
        KEY_ROTATE_BYTES,
};
static const ConfigKey zmq_keys[] = {
        KEY_STR(endpoint, "ZeroMQ endpoint, e.g. tcp://127.0.0.1:9401"),
        KEY_INT(hwm, 1, 1000000, 1000, "ZMQ_SNDHWM, messages per subscriber"),
        KEY_INT(batch_records, 1, FLOW_BATCH_MAX_RECORDS, 1024, "records per message"),
        KEY_BOOL(bind, 1, "bind the endpoint (true) or connect to it (false)"),
        KEY_INT(sender_id, 0, UINT32_MAX, 0, "collector_id field of the batch header"),
};

typedef struct TypeTable {
        const ConfigKey *keys;
        size_t n;
} TypeTable;

static const TypeTable tables[_OUTPUT_TYPE_MAX] = {
        [OUTPUT_IPFIX_TCP] = { tcp_keys, ELEMENTSOF(tcp_keys) },
        [OUTPUT_IPFIX_UDP] = { udp_keys, ELEMENTSOF(udp_keys) },
        [OUTPUT_IPFIX_FILE] = { file_keys, ELEMENTSOF(file_keys) },
        [OUTPUT_JSON] = { json_keys, ELEMENTSOF(json_keys) },
        [OUTPUT_ZMQ_PUB] = { zmq_keys, ELEMENTSOF(zmq_keys) },
};

int output_parse_target(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *port_s;
        char *end;
        unsigned long port;
        size_t hl;

        if (!s)
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                hl = (size_t) (close - s - 1);
                if (hl == 0 || hl >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s + 1, hl);
                port_s = close + 2;
        } else {
                const char *colon = strrchr(s, ':');
                if (!colon || strchr(s, ':') != colon)
                        return -EINVAL;         /* IPv6 without brackets is ambiguous */
                hl = (size_t) (colon - s);
                if (hl == 0 || hl >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s, hl);
                port_s = colon + 1;
        }
        host[hl] = '\0';
        if (*port_s < '0' || *port_s > '9')
                return -EINVAL;
        errno = 0;
        port = strtoul(port_s, &end, 10);
        if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
                return -EINVAL;

        memset(ret, 0, sizeof(*ret));
        if (s[0] == '[') {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *) ret;
                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return -EINVAL;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *) ret;
                if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                        return -EINVAL;
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t) port);
                *ret_len = sizeof(*a);
        }
        return 0;
}

OutputConfig *output_config_free(OutputConfig *c) {
        if (!c)
                return NULL;
        free(c->target);
        free(c->path);
        free(c->endpoint);
        free(c);
        return NULL;
}

/* Validates the path of a file series: "/dir/prefix", the prefix non-empty. */
static int check_file_path(const char *p, char **reterr) {
        const char *slash = strrchr(p, '/');
        const char *prefix = slash ? slash + 1 : p;

        if (!*prefix || strcmp(prefix, ".") == 0 || strcmp(prefix, "..") == 0) {
                *reterr = config_errorf("path: expected /dir/prefix, got '%s'", p);
                return -EINVAL;
        }
        if (strlen(prefix) > 200) {
                *reterr = config_errorf("path: file prefix longer than 200 characters");
                return -EINVAL;
        }
        return 0;
}

static int validate(OutputConfig *c, json_t *obj, char **reterr) {
        switch (c->type) {
        case OUTPUT_IPFIX_TCP:
        case OUTPUT_IPFIX_UDP:
                if (!c->target) {
                        *reterr = config_errorf("target: missing (host:port)");
                        return -EINVAL;
                }
                if (output_parse_target(c->target, &c->addr, &c->addr_len) < 0) {
                        *reterr = config_errorf("target: expected host:port with a numeric "
                                                "a.b.c.d or [v6] address and port 1..65535, "
                                                "got '%s'", c->target);
                        return -EINVAL;
                }
                if (c->type == OUTPUT_IPFIX_TCP && c->reconnect_max_ms < c->reconnect_min_ms) {
                        *reterr = config_errorf("reconnect_max_ms: must be >= reconnect_min_ms "
                                                "(%lld), got %lld",
                                                (long long) c->reconnect_min_ms,
                                                (long long) c->reconnect_max_ms);
                        return -EINVAL;
                }
                return 0;
        case OUTPUT_IPFIX_FILE:
                if (!c->path) {
                        *reterr = config_errorf("path: missing (/dir/prefix)");
                        return -EINVAL;
                }
                if (strcmp(c->path, "-") == 0) {
                        *reterr = config_errorf("path: ipfix-file cannot write to stdout");
                        return -EINVAL;
                }
                return check_file_path(c->path, reterr);
        case OUTPUT_JSON:
                if (!c->path) {
                        *reterr = config_errorf("path: missing (\"-\" or /dir/prefix)");
                        return -EINVAL;
                }
                if (strcmp(c->path, "-") == 0) {
                        const char *k = json_object_get(obj, "rotate_s") ? "rotate_s"
                                        : json_object_get(obj, "rotate_bytes") ? "rotate_bytes"
                                                                               : NULL;
                        if (k) {
                                *reterr = config_errorf("%s: not valid with path \"-\" (stdout)",
                                                        k);
                                return -EINVAL;
                        }
                        return 0;
                }
                return check_file_path(c->path, reterr);
        case OUTPUT_ZMQ_PUB:
                if (!c->endpoint) {
                        *reterr = config_errorf("endpoint: missing (e.g. tcp://127.0.0.1:9401)");
                        return -EINVAL;
                }
                if (!strstr(c->endpoint, "://") || strlen(c->endpoint) > 1024) {
                        *reterr = config_errorf("endpoint: expected transport://address, got '%s'",
                                                c->endpoint);
                        return -EINVAL;
                }
                return 0;
        default:
                return -EINVAL;
        }
}

int output_config_parse(json_t *obj, OutputConfig **ret, char **reterr) {
        static const char *const extra[] = { "type", NULL };
        _cleanup_(output_config_freep) OutputConfig *c = NULL;
        const char *ts;
        json_t *t;
        OutputType type;
        int r;

        assert(ret);
        assert(reterr);
        if (!json_is_object(obj)) {
                *reterr = config_errorf("output: must be a JSON object");
                return -EINVAL;
        }
        t = json_object_get(obj, "type");
        if (!t) {
                *reterr = config_errorf("type: missing (ipfix-tcp, ipfix-udp, ipfix-file, json "
                                        "or zmq-pub)");
                return -EINVAL;
        }
        ts = json_string_value(t);
        if (!ts) {
                *reterr = config_errorf("type: must be a string");
                return -EINVAL;
        }
        type = output_type_from_string(ts);
        if (type < 0) {
                *reterr = config_errorf("type: unknown output type '%s' (ipfix-tcp, ipfix-udp, "
                                        "ipfix-file, json or zmq-pub)", ts);
                return -EINVAL;
        }

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->type = type;
        r = config_set_defaults(tables[type].keys, tables[type].n, c);
        if (r < 0)
                return r;
        r = config_apply_json(tables[type].keys, tables[type].n, obj, c, extra, reterr);
        if (r < 0)
                return r;
        r = validate(c, obj, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static bool streq_null(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool output_config_equal(const OutputConfig *a, const OutputConfig *b) {
        if (a == b)
                return true;
        if (!a || !b)
                return false;
        return a->type == b->type && streq_null(a->target, b->target) &&
               streq_null(a->path, b->path) && streq_null(a->endpoint, b->endpoint) &&
               a->odid == b->odid && a->buffer_records == b->buffer_records &&
               a->reconnect_min_ms == b->reconnect_min_ms &&
               a->reconnect_max_ms == b->reconnect_max_ms &&
               a->connect_timeout_ms == b->connect_timeout_ms &&
               a->template_resend_s == b->template_resend_s &&
               a->max_message == b->max_message && a->rotate_s == b->rotate_s &&
               a->rotate_bytes == b->rotate_bytes && a->hwm == b->hwm &&
               a->batch_records == b->batch_records && a->sender_id == b->sender_id &&
               a->bind == b->bind;
}

OutputType output_config_type(const OutputConfig *c) {
        return c->type;
}

const char *output_config_target(const OutputConfig *c) {
        switch (c->type) {
        case OUTPUT_IPFIX_TCP:
        case OUTPUT_IPFIX_UDP:
                return c->target;
        case OUTPUT_ZMQ_PUB:
                return c->endpoint;
        default:
                return c->path;
        }
}

static int strdup_null(const char *s, char **ret) {
        *ret = NULL;
        if (s && !(*ret = strdup(s)))
                return -ENOMEM;
        return 0;
}

static OutputConfig *config_dup(const OutputConfig *c) {
        OutputConfig *d = malloc(sizeof(*d));

        if (!d)
                return NULL;
        *d = *c;
        d->target = d->path = d->endpoint = NULL;
        if (strdup_null(c->target, &d->target) < 0 || strdup_null(c->path, &d->path) < 0 ||
            strdup_null(c->endpoint, &d->endpoint) < 0)
                return output_config_free(d);
        return d;
}

/* ---- the Output front end -------------------------------------------------------------- */

int output_new(Output **ret, const OutputConfig *cfg, sd_event *e, void *zctx,
               const char *pipeline, char **reterr) {
        _cleanup_(output_freep) Output *o = NULL;
        char *err = NULL;
        int r;

        assert(ret);
        assert(cfg);
        if (reterr)
                *reterr = NULL;
        if (!e || (cfg->type == OUTPUT_ZMQ_PUB && !zctx)) {
                if (reterr)
                        *reterr = config_errorf("%s output needs an event loop%s",
                                                output_type_to_string(cfg->type),
                                                cfg->type == OUTPUT_ZMQ_PUB ? " and a ZeroMQ "
                                                                              "context" : "");
                return -EINVAL;
        }
        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->cfg = config_dup(cfg);
        o->pipeline = strdup(pipeline ? pipeline : "");
        if (!o->cfg || !o->pipeline)
                return -ENOMEM;

        switch (cfg->type) {
        case OUTPUT_IPFIX_TCP:
        case OUTPUT_IPFIX_UDP:
        case OUTPUT_IPFIX_FILE: {
                OutputIpfixParams p = {
                        .transport = cfg->type == OUTPUT_IPFIX_TCP   ? IPFIX_TRANSPORT_TCP
                                     : cfg->type == OUTPUT_IPFIX_UDP ? IPFIX_TRANSPORT_UDP
                                                                     : IPFIX_TRANSPORT_FILE,
                        .target = cfg->target,
                        .addr = cfg->addr,
                        .addr_len = cfg->addr_len,
                        .path = cfg->path,
                        .odid = (uint32_t) cfg->odid,
                        .buffer_records = (uint64_t) cfg->buffer_records,
                        .reconnect_min_ms = (uint64_t) cfg->reconnect_min_ms,
                        .reconnect_max_ms = (uint64_t) cfg->reconnect_max_ms,
                        .connect_timeout_ms = (uint64_t) cfg->connect_timeout_ms,
                        .template_resend_s = (uint64_t) cfg->template_resend_s,
                        .max_message = (uint32_t) cfg->max_message,
                        .rotate_s = (uint64_t) cfg->rotate_s,
                        .rotate_bytes = (uint64_t) cfg->rotate_bytes,
                };
                r = output_ipfix_new(&o->ipfix, &p, e, &err);
                break;
        }
        case OUTPUT_JSON: {
                OutputJsonParams p = {
                        .path = cfg->path,
                        .rotate_s = (uint64_t) cfg->rotate_s,
                        .rotate_bytes = (uint64_t) cfg->rotate_bytes,
                };
                r = output_json_new(&o->json, &p, e, &err);
                break;
        }
        case OUTPUT_ZMQ_PUB: {
                OutputZmqParams p = {
                        .endpoint = cfg->endpoint,
                        .bind = cfg->bind,
                        .hwm = (int) cfg->hwm,
                        .batch_records = (uint32_t) cfg->batch_records,
                        .sender_id = (uint32_t) cfg->sender_id,
                        .pipeline = o->pipeline,
                };
                r = output_zmq_new(&o->zmq, &p, zctx, &err);
                break;
        }
        default:
                r = -EINVAL;
        }
        if (r < 0) {
                if (reterr)
                        *reterr = err;
                else
                        free(err);
                return r;
        }
        free(err);
        *ret = TAKE_PTR(o);
        return 0;
}

int output_write(Output *o, const FlowRecord *recs, size_t n) {
        assert(o);
        if (o->closed)
                return -ESHUTDOWN;
        if (n == 0)
                return 0;
        assert(recs);
        if (o->ipfix)
                return output_ipfix_write(o->ipfix, recs, n);
        if (o->json)
                return output_json_write(o->json, recs, n);
        return output_zmq_write(o->zmq, recs, n);
}

void output_flush(Output *o) {
        assert(o);
        if (o->closed)
                return;
        if (o->ipfix)
                output_ipfix_flush(o->ipfix);
        else if (o->json)
                output_json_flush(o->json);
        else
                output_zmq_flush(o->zmq);
}

int output_close(Output *o, uint64_t timeout_ms) {
        uint64_t dropped;

        assert(o);
        if (o->closed)
                return 0;
        o->closed = true;
        if (o->ipfix)
                dropped = output_ipfix_close(o->ipfix, timeout_ms);
        else if (o->json)
                dropped = output_json_close(o->json, timeout_ms);
        else if (o->zmq)
                dropped = output_zmq_close(o->zmq, timeout_ms);
        else
                dropped = 0;
        return dropped > INT32_MAX ? INT32_MAX : (int) dropped;
}

Output *output_free(Output *o) {
        if (!o)
                return NULL;
        if (!o->closed && (o->ipfix || o->json || o->zmq))
                (void) output_close(o, 0);
        output_ipfix_free(o->ipfix);
        output_json_free(o->json);
        output_zmq_free(o->zmq);
        output_config_free(o->cfg);
        free(o->pipeline);
        free(o);
        return NULL;
}

const OutputConfig *output_get_config(const Output *o) {
        return o->cfg;
}

void output_get_stats(const Output *o, OutputStats *ret) {
        assert(o);
        assert(ret);
        memset(ret, 0, sizeof(*ret));
        if (o->ipfix)
                output_ipfix_get_stats(o->ipfix, ret);
        else if (o->json)
                output_json_get_stats(o->json, ret);
        else if (o->zmq)
                output_zmq_get_stats(o->zmq, ret);
        ret->type = output_type_to_string(o->cfg->type);
        ret->target = output_config_target(o->cfg);
        if (o->closed && !ret->state)
                ret->state = "idle";
}
