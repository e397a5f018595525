/* SPDX-License-Identifier: MIT */
/*
 * mediator-config.h - the mediator's configuration: the key table (scalar keys with bounds,
 * defaults and reload behaviour) and the `pipelines` array, parsed by one pure function from
 * JSON text into a MediatorConfig. Parsing validates everything a reload must know before it
 * touches the running pipelines: filters compile, key files load, every output parses.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "pipeline.h"

#define MEDIATOR_MAX_PIPELINES 32

typedef struct MediatorConfig {
        char *pod_name;
        char *log_level;
        char *input;
        int64_t input_hwm;
        char *query_listen;
        int64_t query_max_limit;
        int64_t query_max_scan;
        int64_t query_timeout_ms;
        int64_t store_max_flows;
        int64_t store_max_memory_mb;
        char *store_source;
        int64_t rollup_horizon_min;
        int64_t rollup_top_k;
        int64_t rollup_live_max_keys;
        char *metrics_file;
        int64_t stats_interval_s;
        int64_t shutdown_timeout_ms;
        char *bus_address;              /* NULL: $IPFIXD_BUS_ADDRESS, else no bus; "": no bus */

        PipelineConfig **pipelines;
        size_t n_pipelines;
} MediatorConfig;

extern const ConfigKey mediator_config_keys[];
extern const size_t mediator_config_n_keys;

/**
 * mediator_config_parse() - parses JSON text over the defaults, applies environment
 * overrides (IPFIXD_MEDIATOR_<KEY>) when @use_env, then validates.
 * @ret: initialized by this call; release with mediator_config_done() (also on failure)
 * @reterr: on failure a heap message naming the key ("pipelines[1].filter: column 4: ...")
 * Return: 0, -EINVAL, -ENOMEM, or -errno from reading a key file.
 */
int mediator_config_parse(const char *json, bool use_env, MediatorConfig *ret, char **reterr);
int mediator_config_validate(const MediatorConfig *c, char **reterr);
void mediator_config_done(MediatorConfig *c);

/* The pipeline named @name, or NULL. */
const PipelineConfig *mediator_config_pipeline(const MediatorConfig *c, const char *name);
