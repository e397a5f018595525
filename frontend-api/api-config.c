/* SPDX-License-Identifier: MIT */
/*
 * api-config.c - key table and parser for ipfixd-api. `--help-config` prints the table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-config.h"
#include "ev-mhd.h"
#include "log.h"
#include "macro.h"

#define K_INT(n, min, max, def, h) \
        { #n, CONFIG_INT, offsetof(ApiConfig, n), min, max, def, NULL, false, h }
#define K_STR(n, def, h) \
        { #n, CONFIG_STRING, offsetof(ApiConfig, n), 0, 0, 0, def, false, h }

const ConfigKey api_config_keys[] = {
        K_STR(listen, "0.0.0.0:8080", "public HTTP API, host:port"),
        K_STR(pods, NULL,
              "the pods' query services: NAME=tcp://HOST:PORT[,...] or dns:NAME:PORT (required)"),
        K_INT(pods_refresh_s, 1, 3600, 30,
              "readiness window: /readyz is 200 while a pod answered a ping this recently"),
        K_INT(deadline_ms, 10, 600000, 2000, "how long one query waits for the pods"),
        K_INT(workers, 1, 16, 2, "background threads running queries (scatter + merge)"),
        K_INT(max_pending, 1, 100000, 64, "queries queued or running before 503 overloaded"),
        K_INT(rate_limit_rps, 0, 1000000, 20, "requests per second per client address (0: off)"),
        K_INT(rate_limit_burst, 1, 1000000, 40, "burst allowed above rate_limit_rps"),
        K_STR(token_file, NULL,
              "file holding the bearer token for every route but /healthz and /readyz"),
        K_INT(max_url_bytes, 256, 1 << 20, 4096, "longest request URL (path and query)"),
        K_INT(feed_port, 0, 65535, 9301,
              "port of every pod's zmq-pub live feed, on its query host (0: no /flows/stream)"),
        K_STR(feed_pipeline, "",
              "pipeline whose zmq-pub feed /flows/stream reads (empty: every pipeline's)"),
        K_INT(controller_port, 0, 65535, 8081,
              "port of every pod controller's HTTP API, on its query host (0: no /pods)"),
        K_INT(max_streams, 0, 10000, 64, "concurrent /flows/stream clients (0: none)"),
        K_INT(stream_buffer_bytes, 4096, 64 << 20, 1 << 20,
              "events waiting for one slow stream client before newer ones are dropped"),
        K_STR(redis_address, NULL,
              "Redis holding the shared templates: HOST:PORT, [V6]:PORT or unix:/path "
              "(unset: /templates answers 503)"),
        K_STR(redis_password_file, NULL, "file holding the Redis password (AUTH)"),
        K_INT(redis_db, 0, 1048576, 0, "Redis database (SELECT)"),
        K_STR(redis_prefix, "ipfixd:", "prefix of the collectors' Redis keys"),
        K_STR(trusted_proxies, "",
              "proxies (CIDR list) whose X-Forwarded-For names the client for the rate limit, "
              "e.g. the Gateway's addresses"),
        K_STR(log_level, "info", "debug, info, notice, warning or error"),
};
const size_t api_config_n_keys = ELEMENTSOF(api_config_keys);

void api_config_done(ApiConfig *c) {
        config_free(api_config_keys, api_config_n_keys, c);
}

int api_config_validate(const ApiConfig *c, char **reterr) {
        struct sockaddr_storage ss;
        socklen_t len;

        if (!c->log_level || log_level_from_string(c->log_level) < 0) {
                *reterr = config_errorf("log_level: unknown level '%s'",
                                        c->log_level ? c->log_level : "");
                return -EINVAL;
        }
        if (!c->listen || ev_mhd_parse_listen(c->listen, &ss, &len) < 0) {
                *reterr = config_errorf("listen: must be ADDR:PORT, [V6]:PORT or :PORT");
                return -EINVAL;
        }
        if (!c->pods || !*c->pods) {
                *reterr = config_errorf("pods: required (NAME=tcp://HOST:PORT,... or "
                                        "dns:NAME:PORT)");
                return -EINVAL;
        }
        if (c->feed_pipeline && strlen(c->feed_pipeline) > 255) {
                *reterr = config_errorf("feed_pipeline: longer than 255 bytes");
                return -EINVAL;
        }
        if (c->redis_address && !*c->redis_address) {
                *reterr = config_errorf("redis_address: must not be empty (unset it instead)");
                return -EINVAL;
        }
        if (c->trusted_proxies) {
                ApiCidr *cidrs = NULL;
                size_t n = 0;
                int r = api_parse_cidrs(c->trusted_proxies, &cidrs, &n);

                free(cidrs);
                if (r < 0) {
                        *reterr = config_errorf("trusted_proxies: %s",
                                                r == -E2BIG ? "more than 64 prefixes"
                                                            : "must be a comma list of "
                                                              "addresses or CIDR prefixes "
                                                              "with zero host bits");
                        return -EINVAL;
                }
        }
        if (c->token_file && !*c->token_file) {
                *reterr = config_errorf("token_file: must not be empty (unset it instead)");
                return -EINVAL;
        }
        return 0;
}

int api_config_parse(const char *json, bool use_env, ApiConfig *ret, char **reterr) {
        memset(ret, 0, sizeof(*ret));
        return config_parse(api_config_keys, api_config_n_keys, json,
                            use_env ? "IPFIXD_API_" : NULL, ret, reterr);
}

static int parse_cidr(const char *s, size_t len, ApiCidr *ret) {
        char text[64];
        const char *slash;
        unsigned long plen;
        char *end;

        if (len == 0 || len >= sizeof(text))
                return -EINVAL;
        memcpy(text, s, len);
        text[len] = 0;
        slash = strchr(text, '/');
        if (slash)
                text[slash - text] = 0;
        *ret = (ApiCidr) {};
        if (inet_pton(AF_INET, text, ret->addr) == 1)
                ret->family = 4;
        else if (inet_pton(AF_INET6, text, ret->addr) == 1)
                ret->family = 6;
        else
                return -EINVAL;
        ret->plen = ret->family == 4 ? 32 : 128;
        if (slash) {
                if (!slash[1] || slash[1] < '0' || slash[1] > '9')
                        return -EINVAL;
                errno = 0;
                plen = strtoul(slash + 1, &end, 10);
                if (errno || *end || plen > ret->plen)
                        return -EINVAL;
                ret->plen = (uint8_t) plen;
        }
        for (unsigned b = ret->plen; b < (ret->family == 4 ? 32u : 128u); b++)
                if (ret->addr[b / 8] & (0x80u >> (b % 8)))
                        return -EINVAL;         /* host bits set */
        return 0;
}

int api_parse_cidrs(const char *s, ApiCidr **ret, size_t *ret_n) {
        ApiCidr *cidrs = NULL;
        size_t n = 0;

        *ret = NULL;
        *ret_n = 0;
        while (s && *s) {
                size_t len;

                s += strspn(s, " \t");
                len = strcspn(s, ",");
                while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
                        len--;
                if (n == API_MAX_TRUSTED_PROXIES) {
                        free(cidrs);
                        return -E2BIG;
                }
                if (!cidrs) {
                        cidrs = calloc(API_MAX_TRUSTED_PROXIES, sizeof(*cidrs));
                        if (!cidrs)
                                return -ENOMEM;
                }
                if (parse_cidr(s, len, &cidrs[n]) < 0) {
                        free(cidrs);
                        return -EINVAL;
                }
                n++;
                s += strcspn(s, ",");
                if (*s == ',') {
                        s++;
                        if (!*s) {
                                free(cidrs);
                                return -EINVAL;         /* a trailing comma */
                        }
                }
        }
        *ret = cidrs;
        *ret_n = n;
        return 0;
}

bool api_cidrs_match(const ApiCidr *cidrs, size_t n, const uint8_t addr[static 16],
                     uint8_t family) {
        for (size_t i = 0; i < n; i++) {
                const ApiCidr *c = &cidrs[i];
                unsigned full = c->plen / 8, rest = c->plen % 8;

                if (c->family != family || memcmp(c->addr, addr, full) != 0)
                        continue;
                if (rest && ((c->addr[full] ^ addr[full]) & (0xffu << (8 - rest)) & 0xffu))
                        continue;
                return true;
        }
        return false;
}
