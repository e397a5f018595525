/* SPDX-License-Identifier: MIT */
/*
 * api-config.h - ipfixd-api's configuration: one key table parsed by one pure function from
 * JSON text into an ApiConfig (defaults < file < IPFIXD_API_<KEY> < --set).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct ApiConfig {
        char *listen;                   /* "host:port" */
        char *pods;                     /* api_pods_resolve() spec; required */
        int64_t pods_refresh_s;         /* readiness window (and dns: re-resolve period) */
        int64_t deadline_ms;            /* per-query scatter deadline */
        int64_t workers;                /* background query threads */
        int64_t max_pending;            /* queued queries before 503 "overloaded" */
        int64_t rate_limit_rps;         /* per client address; 0: no limit */
        int64_t rate_limit_burst;
        char *token_file;               /* bearer token for every route but the probes */
        int64_t max_url_bytes;          /* path + decoded query arguments */
        int64_t feed_port;              /* pods' zmq-pub feed port (0: no /flows/stream) */
        char *feed_pipeline;            /* the pipeline whose feed streams ("" any) */
        int64_t controller_port;        /* pods' controller HTTP port (0: no /pods) */
        int64_t max_streams;            /* concurrent /flows/stream clients */
        int64_t stream_buffer_bytes;    /* per stream, events beyond are dropped and counted */
        char *redis_address;            /* templates; NULL: /templates answers 503 */
        char *redis_password_file;
        int64_t redis_db;
        char *redis_prefix;
        char *trusted_proxies;          /* CIDR list whose X-Forwarded-For is believed */
        char *log_level;
} ApiConfig;

/* One address prefix; IPv4 in the first 4 bytes of @addr. */
typedef struct ApiCidr {
        uint8_t addr[16];
        uint8_t family;                 /* 4 or 6 */
        uint8_t plen;
} ApiCidr;

#define API_MAX_TRUSTED_PROXIES 64u

/**
 * api_parse_cidrs() - "10.0.0.0/8, fd00::/8, 192.0.2.7" (a bare address is a host prefix;
 * host bits must be zero). "" is an empty list.
 * Return: 0 (@ret malloc'ed, NULL when empty), -EINVAL, -E2BIG (more than
 * API_MAX_TRUSTED_PROXIES), -ENOMEM.
 */
int api_parse_cidrs(const char *s, ApiCidr **ret, size_t *ret_n);

/* Whether @addr (family 4 or 6, IPv4 in the first 4 bytes) is inside one of @cidrs. */
bool api_cidrs_match(const ApiCidr *cidrs, size_t n, const uint8_t addr[static 16],
                     uint8_t family);

extern const ConfigKey api_config_keys[];
extern const size_t api_config_n_keys;

/**
 * api_config_parse() - parses JSON text (NULL or "" for none) over the defaults, applies
 * IPFIXD_API_<KEY> when @use_env. Does not validate (call api_config_validate() after --set).
 * @ret: initialized by this call; release with api_config_done() (also on failure)
 * Return: 0, -EINVAL (@reterr set), -ENOMEM.
 */
int api_config_parse(const char *json, bool use_env, ApiConfig *ret, char **reterr);
/* Cross-key checks. Return: 0 or -EINVAL with @reterr set. */
int api_config_validate(const ApiConfig *c, char **reterr);
void api_config_done(ApiConfig *c);

