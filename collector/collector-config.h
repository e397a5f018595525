/* SPDX-License-Identifier: MIT */
/*
 * collector-config.h - the collector's configuration: the key table (every scalar key with
 * bounds, default and reload behaviour), the listeners array, and a pure parser from JSON
 * text to an immutable CollectorConfig.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define COLLECTOR_MAX_LISTENERS 16

typedef enum ListenerTransport {
        LISTENER_TCP,
        LISTENER_UDP,
} ListenerTransport;

typedef struct ListenerConfig {
        ListenerTransport transport;
        char address[64];       /* numeric IPv4/IPv6 address; "::" is dual-stack */
        uint16_t port;          /* 0 = pick one (logged) */
        bool proxy_protocol;    /* TCP: require a PROXY v1/v2 header; identity from it */
} ListenerConfig;

typedef struct CollectorConfig {
        int64_t collector_id;
        char *log_level;
        int64_t workers;
        char *output;
        int64_t batch_records;
        int64_t batch_flush_ms;
        int64_t output_hwm;
        int64_t max_message_size;
        int64_t max_connections;
        int64_t max_templates;
        int64_t max_unknown_elements;
        int64_t max_udp_sessions;
        int64_t udp_session_timeout_s;
        int64_t max_odids_per_session;
        int64_t hold_ms;
        int64_t hold_max_bytes;
        int64_t udp_rcvbuf;
        int64_t tcp_backlog;
        char *template_store;
        int64_t store_max_templates;
        char *redis_address;
        char *redis_password_file;
        int64_t redis_db;
        char *redis_prefix;
        int64_t template_ttl_s;
        int64_t redis_max_queued;
        char *metrics_file;
        int64_t stats_interval_s;
        int64_t shutdown_timeout_ms;
        char *bus_address;

        ListenerConfig listeners[COLLECTOR_MAX_LISTENERS];
        size_t n_listeners;
} CollectorConfig;

extern const ConfigKey collector_config_keys[];
extern const size_t collector_config_n_keys;

/**
 * collector_config_parse() - parses JSON text over the defaults, then applies environment
 * overrides (IPFIXD_COLLECTOR_<KEY>) when @use_env is true, then validates.
 * @ret: initialized by this call; free with collector_config_done() (also on failure)
 * @reterr_msg: on failure a heap message naming the key ("listeners[1].port: must be 0..65535")
 * Return: 0, -EINVAL (invalid), -ENOMEM.
 */
int collector_config_parse(const char *json, bool use_env, CollectorConfig *ret,
                           char **reterr_msg);
/**
 * collector_config_load() - the whole precedence chain: @json (may be NULL) over the
 * defaults, then the environment, then @sets ("KEY=VALUE", as --set takes them) and
 * @listens (URLs, as --listen takes them; when given they replace the listeners), then
 * validation. Used at start and again for every reload, so overrides survive reloads.
 * @ret: as collector_config_parse() (free with collector_config_done(), also on failure)
 * Return: 0, -EINVAL / -ENOENT with @reterr_msg naming the key or argument, -ENOMEM.
 */
int collector_config_load(const char *json, char *const *sets, size_t n_sets,
                          char *const *listens, size_t n_listens, CollectorConfig *ret,
                          char **reterr_msg);

/* Cross-key checks; the parser calls it, and main again after --set/--listen. */
int collector_config_validate(const CollectorConfig *c, char **reterr_msg);
void collector_config_done(CollectorConfig *c);

/* Parses "tcp://ADDR:PORT", "udp://[ADDR]:PORT" or "tcp+proxy://ADDR:PORT" (a TCP listener
 * that requires a PROXY protocol header), as --listen takes them. */
int listener_config_from_url(const char *url, ListenerConfig *ret);
