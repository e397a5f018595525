/* SPDX-License-Identifier: MIT */
/*
 * controller-config.h - the controller's configuration: one key table (scalar keys with
 * bounds and defaults) parsed by one pure function from JSON text into a ControllerConfig.
 * The --spawn-pod keys (binaries, their configs, restart backoff, stop timeout) are only
 * used when the controller also runs the collector and the mediator as its children.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct ControllerConfig {
        char *pod_name;                 /* NULL: the host name */
        char *log_level;
        char *bus_address;              /* join this bus; NULL: start our own dbus-daemon */
        char *bus_socket;               /* socket of the dbus-daemon we start */
        char *http_listen;              /* "host:port" */
        char *token_file;               /* bearer token for mutating routes; NULL: no auth */
        int64_t max_body_bytes;
        int64_t poll_interval_ms;
        int64_t call_timeout_ms;
        int64_t drain_timeout_ms;

        /* --spawn-pod */
        char *collector_binary;         /* NULL: next to our executable, else $PATH */
        char *mediator_binary;
        char *collector_config;         /* passed as --config; NULL: none */
        char *mediator_config;
        int64_t restart_min_ms;
        int64_t restart_max_ms;
        int64_t stop_timeout_ms;
} ControllerConfig;

extern const ConfigKey controller_config_keys[];
extern const size_t controller_config_n_keys;

/**
 * controller_config_parse() - parses JSON text (NULL or "" for none) over the defaults,
 * applies environment overrides (IPFIXD_CONTROLLER_<KEY>) when @use_env, then validates.
 * @ret:    initialized by this call; release with controller_config_done() (also on failure)
 * @reterr: on failure a heap message naming the key ("poll_interval_ms: must be ...")
 * Return: 0, -EINVAL, -ENOMEM.
 */
int controller_config_parse(const char *json, bool use_env, ControllerConfig *ret,
                            char **reterr);
/* Cross-key checks (run again after --set). Return: 0 or -EINVAL with @reterr set. */
int controller_config_validate(const ControllerConfig *c, char **reterr);
void controller_config_done(ControllerConfig *c);
