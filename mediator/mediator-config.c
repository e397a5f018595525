/* SPDX-License-Identifier: MIT */
/*
 * mediator-config.c - key table and parser for ipfixd-mediator. `--help-config` prints the
 * table; the README's table lists the same keys.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "mediator-config.h"

#define K_INT(n, min, max, def, rel, h) \
        { #n, CONFIG_INT, offsetof(MediatorConfig, n), min, max, def, NULL, rel, h }
#define K_STR(n, def, rel, h) \
        { #n, CONFIG_STRING, offsetof(MediatorConfig, n), 0, 0, 0, def, rel, h }

const ConfigKey mediator_config_keys[] = {
        K_STR(pod_name, NULL, false, "name in query answers (default: the host name)"),
        K_STR(log_level, "info", true, "debug, info, notice, warning or error"),
        K_STR(input, "ipc:///tmp/ipfixd-flows.sock", false,
              "ZeroMQ endpoint the mediator binds to PULL the collector's batches"),
        K_INT(input_hwm, 1, 100000, 64, false, "ZeroMQ receive high-water mark in batches"),
        K_STR(query_listen, "tcp://127.0.0.1:9300", false,
              "ZeroMQ ROUTER endpoint of the query service (empty: no query service)"),
        K_INT(query_max_limit, 1, 100000, 10000, true, "largest `limit` a query may ask"),
        K_INT(query_max_scan, 0, INT64_C(1) << 40, 50000000, true,
              "records one flow query may examine before answering truncated (0: no cap)"),
        K_INT(query_timeout_ms, 1, 600000, 2000, true,
              "time one query may run before answering truncated"),
        K_INT(store_max_flows, 0, INT64_C(1) << 32, 1000000, false,
              "recent raw flows kept for queries (0: no flow store)"),
        K_INT(store_max_memory_mb, 1, 1 << 20, 1024, false,
              "memory cap of the flow store, indexes included"),
        K_STR(store_source, "input", false,
              "what the flow store and rollups keep: \"input\" (every record received) or "
              "the name of a pipeline (its output)"),
        K_INT(rollup_horizon_min, 1, 10080, 1440, false, "minutes of per-minute rollups kept"),
        K_INT(rollup_top_k, 10, 100000, 200, false,
              "keys kept per minute and dimension once a minute is sealed"),
        K_INT(rollup_live_max_keys, 100, 10000000, 65536, false,
              "exact keys per dimension for a minute still open"),
        K_STR(metrics_file, NULL, false, "write Prometheus text here every stats interval"),
        K_INT(stats_interval_s, 0, 3600, 10, true, "counter summary and metrics file period"),
        K_INT(shutdown_timeout_ms, 0, 60000, 3000, false,
              "on SIGTERM, how long outputs may take to send what they buffered; Drain() "
              "waits at most this long for the input to go idle"),
        K_STR(bus_address, NULL, false,
              "the pod's private D-Bus, e.g. unix:path=/run/ipfixd/bus (unset: "
              "$IPFIXD_BUS_ADDRESS, else no bus; empty: no bus)"),
};
const size_t mediator_config_n_keys = ELEMENTSOF(mediator_config_keys);

void mediator_config_done(MediatorConfig *c) {
        for (size_t i = 0; i < c->n_pipelines; i++)
                pipeline_config_free(c->pipelines[i]);
        free(c->pipelines);
        c->pipelines = NULL;
        c->n_pipelines = 0;
        config_free(mediator_config_keys, mediator_config_n_keys, c);
}

const PipelineConfig *mediator_config_pipeline(const MediatorConfig *c, const char *name) {
        for (size_t i = 0; i < c->n_pipelines; i++)
                if (strcmp(c->pipelines[i]->name, name) == 0)
                        return c->pipelines[i];
        return NULL;
}

static int parse_pipelines(json_t *ps, MediatorConfig *c, char **reterr) {
        int r;

        if (!json_is_array(ps) || json_array_size(ps) > MEDIATOR_MAX_PIPELINES) {
                *reterr = config_errorf("pipelines: must be an array of at most %d objects",
                                        MEDIATOR_MAX_PIPELINES);
                return -EINVAL;
        }
        c->pipelines = calloc(json_array_size(ps) + 1, sizeof(*c->pipelines));
        if (!c->pipelines)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(ps); i++) {
                char *inner = NULL;
                json_t *name = json_object_get(json_array_get(ps, i), "name");

                r = pipeline_config_parse(json_array_get(ps, i), &c->pipelines[i], &inner);
                if (r < 0) {
                        if (json_is_string(name))
                                *reterr = config_errorf("pipelines[%zu] (%s).%s", i,
                                                        json_string_value(name),
                                                        inner ? inner : "invalid");
                        else
                                *reterr = config_errorf("pipelines[%zu].%s", i,
                                                        inner ? inner : "invalid");
                        free(inner);
                        return r;
                }
                c->n_pipelines++;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(c->pipelines[j]->name, c->pipelines[i]->name) == 0) {
                                *reterr = config_errorf("pipelines[%zu].name: '%s' is used "
                                                        "twice", i, c->pipelines[i]->name);
                                return -EINVAL;
                        }
        }
        return 0;
}

int mediator_config_parse(const char *json, bool use_env, MediatorConfig *ret, char **reterr) {
        static const char *const extra[] = { "pipelines", NULL };
        json_t *root;
        int r;

        memset(ret, 0, sizeof(*ret));
        r = config_set_defaults(mediator_config_keys, mediator_config_n_keys, ret);
        if (r < 0)
                return r;
        r = config_load_json_text(json, &root, reterr);
        if (r < 0)
                return r;
        if (root) {
                r = config_apply_json(mediator_config_keys, mediator_config_n_keys, root, ret,
                                      extra, reterr);
                if (r == 0 && json_object_get(root, "pipelines"))
                        r = parse_pipelines(json_object_get(root, "pipelines"), ret, reterr);
                json_decref(root);
                if (r < 0)
                        return r;
        }
        if (use_env) {
                r = config_apply_env(mediator_config_keys, mediator_config_n_keys,
                                     "IPFIXD_MEDIATOR_", ret, reterr);
                if (r < 0)
                        return r;
        }
        return mediator_config_validate(ret, reterr);
}

static bool zmq_endpoint_ok(const char *s) {
        return s && (strncmp(s, "ipc://", 6) == 0 || strncmp(s, "tcp://", 6) == 0 ||
                     strncmp(s, "inproc://", 9) == 0);
}

int mediator_config_validate(const MediatorConfig *c, char **reterr) {
        if (log_level_from_string(c->log_level) < 0) {
                *reterr = config_errorf("log_level: unknown level '%s'", c->log_level);
                return -EINVAL;
        }
        if (!zmq_endpoint_ok(c->input)) {
                *reterr = config_errorf("input: must be an ipc:// or tcp:// endpoint");
                return -EINVAL;
        }
        if (c->query_listen && *c->query_listen && !zmq_endpoint_ok(c->query_listen)) {
                *reterr = config_errorf("query_listen: must be an ipc:// or tcp:// endpoint, "
                                        "or empty");
                return -EINVAL;
        }
        if (c->pod_name && (strlen(c->pod_name) == 0 || strlen(c->pod_name) > 253)) {
                *reterr = config_errorf("pod_name: must be 1..253 characters");
                return -EINVAL;
        }
        if (strcmp(c->store_source, "input") != 0 &&
            !mediator_config_pipeline(c, c->store_source)) {
                *reterr = config_errorf("store_source: no pipeline named '%s' (or \"input\")",
                                        c->store_source);
                return -EINVAL;
        }
        return 0;
}
