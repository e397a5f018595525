/* SPDX-License-Identifier: MIT */
/*
 * openapi.h - the OpenAPI 3.1 document served at GET /openapi.json: frontend-api/openapi.json,
 * embedded at build time (frontend-api/embed.py). CI lints it with spectral and
 * tests/unit/test-api-openapi.c walks the server's route table against it.
 */
#pragma once

#include <stddef.h>

extern const char api_openapi_json[];   /* NUL-terminated */
extern const size_t api_openapi_json_len; /* without the NUL */
