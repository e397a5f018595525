/* SPDX-License-Identifier: MIT */
/*
 * collector-config.c - key table and parser for ipfixd-collector. The table is the single
 * list of keys: the README's table is generated from the same names, and `--help-config`
 * prints it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector-config.h"
#include "log.h"
#include "macro.h"

#define K_INT(n, min, max, def, rel, h) \
        { #n, CONFIG_INT, offsetof(CollectorConfig, n), min, max, def, NULL, rel, h }
#define K_STR(n, def, rel, h) \
        { #n, CONFIG_STRING, offsetof(CollectorConfig, n), 0, 0, 0, def, rel, h }

const ConfigKey collector_config_keys[] = {
        K_INT(collector_id, 0, UINT32_MAX, 0, false,
              "id in every batch header and, with Redis, this replica's id in change events: "
              "distinct per replica (0: random)"),
        K_STR(log_level, "info", true, "debug, info, notice, warning or error"),
        K_INT(workers, 1, 64, 2, false, "worker threads, each with its own sockets and loop"),
        K_STR(output, "ipc:///tmp/ipfixd-flows.sock", false,
              "ZeroMQ endpoint the collector PUSHes flow batches to (connect)"),
        K_INT(batch_records, 1, 8192, 1024, false, "flow records per batch"),
        K_INT(batch_flush_ms, 1, 10000, 50, false, "send a partial batch after this long"),
        K_INT(output_hwm, 1, 100000, 64, false, "ZeroMQ send high-water mark in batches"),
        K_INT(max_message_size, 16, 65535, 65535, false, "largest IPFIX message accepted"),
        K_INT(max_connections, 1, 1000000, 10000, false, "concurrent TCP exporter connections"),
        K_INT(max_templates, 1, 65280, 1024, false, "templates per exporter session and ODID"),
        K_INT(max_unknown_elements, 0, 1000000, 4096, false,
              "unknown information elements a worker adds to its model"),
        K_INT(max_udp_sessions, 1, 1000000, 4096, false, "UDP exporter sessions per worker"),
        K_INT(udp_session_timeout_s, 1, 86400, 1800, false,
              "idle UDP session (and its templates) expiry"),
        K_INT(max_odids_per_session, 1, 1024, 16, false,
              "observation domains per TCP connection"),
        K_INT(hold_ms, 0, 600000, 5000, false,
              "hold data sets that arrive before their template this long (0: drop at once)"),
        K_INT(hold_max_bytes, 0, 64 << 20, 256 << 10, false,
              "octets of held data sets per exporter session"),
        K_INT(udp_rcvbuf, 0, 1 << 30, 8 << 20, false, "UDP socket receive buffer (bytes)"),
        K_INT(tcp_backlog, 1, 65535, 4096, false, "listen(2) backlog"),
        K_STR(template_store, "memory", false,
              "memory (this process only) or redis (shared by every replica)"),
        K_INT(store_max_templates, 1, 10000000, 100000, false,
              "templates the store (or its local cache) holds over all exporters"),
        K_STR(redis_address, "127.0.0.1:6379", false,
              "Redis for template_store=redis: HOST:PORT, [V6]:PORT or unix:/path"),
        K_STR(redis_password_file, NULL, false, "file holding the Redis password (AUTH)"),
        K_INT(redis_db, 0, 1 << 20, 0, false, "Redis database (SELECT)"),
        K_STR(redis_prefix, "ipfixd:", false, "prefix of every Redis key and channel"),
        K_INT(template_ttl_s, 0, 30 * 86400, 0, false,
              "expire an exporter's templates in Redis this long after their last change "
              "(0: never); for UDP exporters that went away"),
        K_INT(redis_max_queued, 1, 10000000, 100000, false,
              "template writes queued while Redis is unreachable (oldest dropped beyond)"),
        K_STR(metrics_file, NULL, false, "write Prometheus text here every stats interval"),
        K_INT(stats_interval_s, 0, 3600, 10, true, "counter summary and metrics file period"),
        K_INT(shutdown_timeout_ms, 0, 60000, 3000, false,
              "on SIGTERM, how long to try to hand buffered flows over"),
        K_STR(bus_address, NULL, false,
              "the pod's D-Bus (e.g. unix:path=/run/ipfixd/bus); unset: $IPFIXD_BUS_ADDRESS, "
              "else no bus"),
};
const size_t collector_config_n_keys = ELEMENTSOF(collector_config_keys);

void collector_config_done(CollectorConfig *c) {
        config_free(collector_config_keys, collector_config_n_keys, c);
}

static int parse_listener(json_t *o, size_t idx, ListenerConfig *l, char **reterr) {
        const char *name;
        json_t *v;

        *l = (ListenerConfig) { .transport = LISTENER_TCP, .port = 4739 };
        (void) snprintf(l->address, sizeof(l->address), "::");
        if (!json_is_object(o)) {
                *reterr = config_errorf("listeners[%zu]: must be an object", idx);
                return -EINVAL;
        }
        json_object_foreach(o, name, v) {
                if (strcmp(name, "transport") == 0) {
                        const char *t = json_string_value(v);
                        if (t && strcmp(t, "tcp") == 0)
                                l->transport = LISTENER_TCP;
                        else if (t && strcmp(t, "udp") == 0)
                                l->transport = LISTENER_UDP;
                        else {
                                *reterr = config_errorf("listeners[%zu].transport: must be "
                                                        "\"tcp\" or \"udp\"", idx);
                                return -EINVAL;
                        }
                } else if (strcmp(name, "address") == 0) {
                        const char *a = json_string_value(v);
                        struct in6_addr tmp;
                        if (!a || strlen(a) >= sizeof(l->address) ||
                            (inet_pton(AF_INET, a, &tmp) != 1 && inet_pton(AF_INET6, a, &tmp) != 1)) {
                                *reterr = config_errorf("listeners[%zu].address: must be a "
                                                        "numeric IPv4 or IPv6 address", idx);
                                return -EINVAL;
                        }
                        (void) snprintf(l->address, sizeof(l->address), "%s", a);
                } else if (strcmp(name, "proxy_protocol") == 0) {
                        if (!json_is_boolean(v)) {
                                *reterr = config_errorf("listeners[%zu].proxy_protocol: must be "
                                                        "true or false", idx);
                                return -EINVAL;
                        }
                        l->proxy_protocol = json_is_true(v);
                } else if (strcmp(name, "port") == 0) {
                        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                            json_integer_value(v) > 65535) {
                                *reterr = config_errorf("listeners[%zu].port: must be 0..65535",
                                                        idx);
                                return -EINVAL;
                        }
                        l->port = (uint16_t) json_integer_value(v);
                } else {
                        *reterr = config_errorf("listeners[%zu].%s: unknown key", idx, name);
                        return -EINVAL;
                }
        }
        if (l->proxy_protocol && l->transport != LISTENER_TCP) {
                *reterr = config_errorf("listeners[%zu].proxy_protocol: only for tcp listeners",
                                        idx);
                return -EINVAL;
        }
        return 0;
}

int collector_config_parse(const char *json, bool use_env, CollectorConfig *ret,
                           char **reterr_msg) {
        static const char *const extra[] = { "listeners", NULL };
        json_t *root, *ls;
        int r;

        memset(ret, 0, sizeof(*ret));
        r = config_set_defaults(collector_config_keys, collector_config_n_keys, ret);
        if (r < 0)
                return r;
        ret->n_listeners = 1;
        ret->listeners[0] = (ListenerConfig) { .transport = LISTENER_TCP, .address = "::",
                                               .port = 4739 };

        r = config_load_json_text(json, &root, reterr_msg);
        if (r < 0)
                return r;
        if (root) {
                r = config_apply_json(collector_config_keys, collector_config_n_keys, root, ret,
                                      extra, reterr_msg);
                ls = json_object_get(root, "listeners");
                if (r == 0 && ls) {
                        if (!json_is_array(ls) || json_array_size(ls) == 0 ||
                            json_array_size(ls) > COLLECTOR_MAX_LISTENERS) {
                                *reterr_msg = config_errorf("listeners: must be an array of 1..%d "
                                                            "objects", COLLECTOR_MAX_LISTENERS);
                                r = -EINVAL;
                        } else {
                                ret->n_listeners = json_array_size(ls);
                                for (size_t i = 0; r == 0 && i < ret->n_listeners; i++)
                                        r = parse_listener(json_array_get(ls, i), i,
                                                           &ret->listeners[i], reterr_msg);
                        }
                }
                json_decref(root);
                if (r < 0)
                        return r;
        }
        if (use_env) {
                r = config_apply_env(collector_config_keys, collector_config_n_keys,
                                     "IPFIXD_COLLECTOR_", ret, reterr_msg);
                if (r < 0)
                        return r;
        }

        return collector_config_validate(ret, reterr_msg);
}

int collector_config_validate(const CollectorConfig *ret, char **reterr_msg) {
        if (log_level_from_string(ret->log_level) < 0) {
                *reterr_msg = config_errorf("log_level: unknown level '%s'", ret->log_level);
                return -EINVAL;
        }
        if (strcmp(ret->template_store, "memory") != 0 && strcmp(ret->template_store, "redis") != 0) {
                *reterr_msg = config_errorf("template_store: must be \"memory\" or \"redis\" "
                                            "(got '%s')", ret->template_store);
                return -EINVAL;
        }
        if (!ret->output || (strncmp(ret->output, "ipc://", 6) != 0 &&
                             strncmp(ret->output, "tcp://", 6) != 0)) {
                *reterr_msg = config_errorf("output: must be an ipc:// or tcp:// endpoint");
                return -EINVAL;
        }
        return 0;
}

int collector_config_load(const char *json, char *const *sets, size_t n_sets,
                          char *const *listens, size_t n_listens, CollectorConfig *ret,
                          char **reterr_msg) {
        int r;

        r = collector_config_parse(json, true, ret, reterr_msg);
        if (r < 0)
                return r;
        r = config_apply_assignments(collector_config_keys, collector_config_n_keys, sets, n_sets,
                                     ret, reterr_msg);
        if (r < 0)
                return r;
        if (n_listens > COLLECTOR_MAX_LISTENERS) {
                *reterr_msg = config_errorf("--listen: at most %d listeners",
                                            COLLECTOR_MAX_LISTENERS);
                return -EINVAL;
        }
        for (size_t i = 0; i < n_listens; i++) {
                r = listener_config_from_url(listens[i], &ret->listeners[i]);
                if (r < 0) {
                        *reterr_msg = config_errorf("--listen %s: expected tcp://, udp:// or "
                                                    "tcp+proxy://ADDR:PORT with a numeric "
                                                    "address", listens[i]);
                        return r;
                }
                ret->n_listeners = i + 1;
        }
        if (n_sets > 0 || n_listens > 0)
                return collector_config_validate(ret, reterr_msg);
        return 0;
}

int listener_config_from_url(const char *url, ListenerConfig *ret) {
        ListenerConfig l = { 0 };
        const char *hp, *colon;
        char host[64];
        size_t hl;
        struct in6_addr tmp;
        char *end;
        long port;

        if (strncmp(url, "tcp://", 6) == 0) {
                l.transport = LISTENER_TCP;
                hp = url + 6;
        } else if (strncmp(url, "udp://", 6) == 0) {
                l.transport = LISTENER_UDP;
                hp = url + 6;
        } else if (strncmp(url, "tcp+proxy://", 12) == 0) {
                l.transport = LISTENER_TCP;
                l.proxy_protocol = true;
                hp = url + 12;
        } else
                return -EINVAL;
        if (*hp == '[') {
                const char *rb = strchr(hp, ']');
                if (!rb || rb[1] != ':')
                        return -EINVAL;
                hl = (size_t) (rb - hp - 1);
                if (hl >= sizeof(host))
                        return -EINVAL;
                memcpy(host, hp + 1, hl);
                colon = rb + 1;
        } else {
                colon = strrchr(hp, ':');
                if (!colon)
                        return -EINVAL;
                hl = (size_t) (colon - hp);
                if (hl >= sizeof(host))
                        return -EINVAL;
                memcpy(host, hp, hl);
        }
        host[hl] = '\0';
        if (inet_pton(AF_INET, host, &tmp) != 1 && inet_pton(AF_INET6, host, &tmp) != 1)
                return -EINVAL;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
                return -EINVAL;
        (void) snprintf(l.address, sizeof(l.address), "%s", host);
        l.port = (uint16_t) port;
        *ret = l;
        return 0;
}
