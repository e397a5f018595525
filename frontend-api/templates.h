/* SPDX-License-Identifier: MIT */
/*
 * templates.h - GET /api/v1/templates: the IPFIX templates every collector replica shares
 * through Redis (README, "Redis layout"), read with a short-lived blocking hiredis
 * connection. Runs on a background worker thread, never on the HTTP loop.
 *
 * Reading. Without an exporter the keys come from SCAN MATCH <prefix>tmpl:* (COUNT 512),
 * at most API_TEMPLATES_MAX_KEYS keys; with an exporter (and odid) from SCAN MATCH
 * <prefix>tmpl:{<exporter>}:* (or the one key). Each key is read with HGETALL. Every Redis
 * reply is checked for its type; a key that vanished between SCAN and HGETALL is skipped.
 * A field or value that does not decode (not a decimal template id 256..65535, or not a
 * serialized template per ipfix_template_deserialize()) is skipped and counted in
 * "malformed". The whole call honours @timeout_ms (connect and every command).
 *
 * Answer (sorted by exporter text, odid, template_id):
 *   {"templates": [{"exporter": "192.0.2.7", "odid": 1, "template_id": 256,
 *                   "scope_fields": 0,
 *                   "fields": [{"ie": 8, "pen": 0, "length": 4}, ...]}, ...],
 *    "count": N, "exporters": E (distinct exporter/odid keys read),
 *    "malformed": M, "truncated": bool (limit or API_TEMPLATES_MAX_KEYS reached)}
 * "length" 65535 means variable length.
 */
#pragma once

#include <stdint.h>

#include <jansson.h>

#include "api-params.h"

#define API_TEMPLATES_MAX_KEYS 100000u

typedef struct ApiRedisConfig {
        const char *address;    /* HOST:PORT, [V6]:PORT or unix:/path */
        const char *password;   /* NULL: no AUTH */
        int64_t db;             /* SELECT when > 0 */
        const char *prefix;     /* key prefix, e.g. "ipfixd:" */
} ApiRedisConfig;

/**
 * api_templates_fetch() - reads the templates @q asks for. BLOCKS up to about @timeout_ms.
 * @ret:    the answer object above (new reference)
 * @reterr: on -ECONNREFUSED/-ETIMEDOUT/-EIO, a heap string for the client ("redis at
 *          ADDR: connection refused", "redis: NOAUTH ...")
 * Return: 0; -EINVAL (bad @cfg address); -ECONNREFUSED, -ETIMEDOUT, -EIO (Redis unreachable,
 *         slow or answering errors: the API answers 503 "redis_unavailable"); -ENOMEM.
 */
int api_templates_fetch(const ApiRedisConfig *cfg, const ApiTemplatesQuery *q,
                        uint64_t timeout_ms, json_t **ret, char **reterr);
