/* SPDX-License-Identifier: MIT */
/*
 * test-api-openapi.c - the OpenAPI document embedded in ipfixd-api (frontend-api/openapi.json)
 * against the server itself, so the document cannot drift from the code: every route of the
 * server's table (api_route_get()) is documented with its method, an operationId and the
 * right security, and the document has no route the server lacks; each route's query
 * parameters are exactly its api_route_params() table (and none for routes without one);
 * every operation declares its 200 and the errors (Error schema) it can answer; every $ref
 * resolves inside the document; the documented caps and defaults are the code's
 * (api-params.h). Spectral lints the document's form separately (test 'openapi-lint').
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <jansson.h>

#include "api-params.h"
#include "api.h"
#include "macro.h"
#include "openapi.h"

#define ERROR_SCHEMA_REF "#/components/schemas/Error"
#define MAX_REF_HOPS 16

static json_t *doc;

/* The operations of a path item (OpenAPI 3.1 "fixed fields" that are methods). */
static const char *const http_methods[] = {
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
};

/* Kubernetes probes: they answer their own shapes, not the Error schema, on 503. */
static const char *const probe_paths[] = { "/healthz", "/readyz" };

static int setup(void **state) {
        json_error_t err;

        doc = json_loadb(api_openapi_json, api_openapi_json_len, 0, &err);
        if (!doc) {
                print_error("frontend-api/openapi.json: line %d column %d: %s\n", err.line,
                            err.column, err.text);
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        json_decref(doc);
        doc = NULL;
        return 0;
}

static bool is_probe(const char *path) {
        for (size_t i = 0; i < ELEMENTSOF(probe_paths); i++)
                if (strcmp(path, probe_paths[i]) == 0)
                        return true;
        return false;
}

static void lower(const char *s, char *buf, size_t size) {
        size_t i = 0;

        for (; s[i] && i + 1 < size; i++)
                buf[i] = (char) tolower((unsigned char) s[i]);
        buf[i] = 0;
}

/* A local JSON pointer ("#/components/schemas/Flow", with ~0 and ~1) to its target, or NULL. */
static json_t *resolve_ref(const char *ref) {
        json_t *cur = doc;
        const char *p;

        if (!ref || ref[0] != '#')
                return NULL;
        p = ref + 1;
        if (!*p)
                return doc;
        if (*p != '/')
                return NULL;
        while (*p == '/' && cur) {
                char token[256];
                size_t n = 0;

                for (p++; *p && *p != '/'; p++) {
                        char c = *p;

                        if (c == '~') {
                                if (p[1] != '0' && p[1] != '1')
                                        return NULL;
                                c = p[1] == '0' ? '~' : '/';
                                p++;
                        }
                        if (n + 1 >= sizeof(token))
                                return NULL;
                        token[n++] = c;
                }
                token[n] = 0;
                if (json_is_object(cur))
                        cur = json_object_get(cur, token);
                else if (json_is_array(cur)) {
                        char *end;
                        unsigned long i = strtoul(token, &end, 10);

                        cur = n > 0 && !*end ? json_array_get(cur, i) : NULL;
                } else
                        cur = NULL;
        }
        return cur;
}

/* @v with every $ref followed; NULL when one does not resolve (test_refs_resolve says which). */
static json_t *deref(json_t *v) {
        for (unsigned hops = 0; v && hops < MAX_REF_HOPS; hops++) {
                json_t *ref = json_object_get(v, "$ref");

                if (!json_is_string(ref))
                        return v;
                v = resolve_ref(json_string_value(ref));
        }
        return NULL;
}

static json_t *path_item(const char *path) {
        return json_object_get(json_object_get(doc, "paths"), path);
}

static json_t *operation(const char *path, const char *method) {
        char m[16];

        lower(method, m, sizeof(m));
        return json_object_get(path_item(path), m);
}

/* The route's query parameter @name (path-item and operation level, $refs followed). */
static json_t *find_query_param(const char *path, const char *method, const char *name) {
        json_t *lists[2] = { json_object_get(path_item(path), "parameters"),
                             json_object_get(operation(path, method), "parameters") };

        for (size_t l = 0; l < ELEMENTSOF(lists); l++) {
                size_t i;
                json_t *p;

                json_array_foreach(lists[l], i, p) {
                        json_t *d = deref(p);

                        if (d && json_is_string(json_object_get(d, "name")) &&
                            strcmp(json_string_value(json_object_get(d, "name")), name) == 0 &&
                            json_is_string(json_object_get(d, "in")) &&
                            strcmp(json_string_value(json_object_get(d, "in")), "query") == 0)
                                return d;
                }
        }
        return NULL;
}

static bool route_served(const char *path, const char *method) {
        for (size_t i = 0; i < api_route_count(); i++) {
                const char *m, *p;
                bool auth;

                api_route_get(i, &m, &p, &auth);
                if (strcmp(p, path) == 0 && strcasecmp(m, method) == 0)
                        return true;
        }
        return false;
}

/* ---- the document as a whole ---------------------------------------------------------- */

static void test_version(void **state) {
        const char *v = json_string_value(json_object_get(doc, "openapi"));
        json_t *info = json_object_get(doc, "info");

        assert_int_equal(strlen(api_openapi_json), api_openapi_json_len);
        if (!v || strncmp(v, "3.1.", 4) != 0)
                fail_msg("\"openapi\" is %s, expected 3.1.x", v ? v : "missing");
        if (!json_is_string(json_object_get(info, "title")) ||
            !json_is_string(json_object_get(info, "version")))
                fail_msg("info.title and info.version must be strings");
        if (!json_is_object(json_object_get(doc, "paths")))
                fail_msg("\"paths\" must be an object");
}

/* The global requirement is the bearer scheme, which is http/bearer. */
static void test_security_scheme(void **state) {
        json_t *sec = json_object_get(doc, "security"), *req, *schemes;
        const char *name;
        json_t *unused;
        size_t i;

        if (!json_is_array(sec) || json_array_size(sec) == 0)
                fail_msg("the document must require the bearer scheme globally (\"security\")");
        schemes = json_object_get(json_object_get(doc, "components"), "securitySchemes");
        json_array_foreach(sec, i, req) {
                if (!json_is_object(req) || json_object_size(req) == 0)
                        fail_msg("security[%zu] must name a scheme (an empty requirement would "
                                 "make the token optional everywhere)", i);
                json_object_foreach(req, name, unused) {
                        json_t *s = json_object_get(schemes, name);

                        if (!s)
                                fail_msg("security[%zu] names '%s', which is not in "
                                         "components.securitySchemes", i, name);
                        if (!json_is_string(json_object_get(s, "type")) ||
                            strcmp(json_string_value(json_object_get(s, "type")), "http") != 0 ||
                            !json_is_string(json_object_get(s, "scheme")) ||
                            strcasecmp(json_string_value(json_object_get(s, "scheme")),
                                       "bearer") != 0)
                                fail_msg("security scheme '%s' must be type http, scheme bearer",
                                         name);
                }
        }
}

/* Walks @v, checking every "$ref"; @where is the JSON path so far (for the message). */
static void check_refs(json_t *v, char *where, size_t size) {
        size_t len = strlen(where);

        if (json_is_object(v)) {
                const char *key;
                json_t *child;

                json_object_foreach(v, key, child) {
                        if (strcmp(key, "$ref") == 0) {
                                const char *ref = json_string_value(child);

                                if (!ref)
                                        fail_msg("%s/$ref is not a string", where);
                                if (ref[0] != '#')
                                        fail_msg("%s/$ref '%s' points outside the document (it "
                                                 "is served alone at /openapi.json)", where, ref);
                                if (!resolve_ref(ref))
                                        fail_msg("%s/$ref '%s' does not resolve", where, ref);
                                continue;
                        }
                        (void) snprintf(where + len, size - len, "/%s", key);
                        check_refs(child, where, size);
                        where[len] = 0;
                }
        } else if (json_is_array(v)) {
                size_t i;
                json_t *child;

                json_array_foreach(v, i, child) {
                        (void) snprintf(where + len, size - len, "/%zu", i);
                        check_refs(child, where, size);
                        where[len] = 0;
                }
        }
}

static void test_refs_resolve(void **state) {
        char where[1024] = "#";

        check_refs(doc, where, sizeof(where));
}

/* ---- routes --------------------------------------------------------------------------- */

static void test_routes_documented(void **state) {
        json_t *ids = json_object();

        assert_non_null(ids);
        assert_true(api_route_count() > 0);
        for (size_t i = 0; i < api_route_count(); i++) {
                const char *method, *path, *id;
                bool needs_auth;
                json_t *op, *sec;

                api_route_get(i, &method, &path, &needs_auth);
                if (!path_item(path))
                        fail_msg("route %s %s is not under \"paths\"", method, path);
                op = operation(path, method);
                if (!json_is_object(op))
                        fail_msg("route %s %s: the path has no '%s' operation", method, path,
                                 method);
                id = json_string_value(json_object_get(op, "operationId"));
                if (!id || !*id)
                        fail_msg("route %s %s has no operationId", method, path);
                if (json_object_get(ids, id))
                        fail_msg("route %s %s: operationId '%s' is used twice", method, path, id);
                assert_int_equal(json_object_set_new(ids, id, json_true()), 0);

                sec = json_object_get(op, "security");
                if (!needs_auth && (!json_is_array(sec) || json_array_size(sec) != 0))
                        fail_msg("route %s %s never needs a token: its operation must say "
                                 "\"security\": []", method, path);
                if (needs_auth && sec && (!json_is_array(sec) || json_array_size(sec) == 0))
                        fail_msg("route %s %s needs the token when one is configured: its "
                                 "operation must not override \"security\" to empty", method,
                                 path);
        }
        json_decref(ids);
}

static void test_no_phantom_routes(void **state) {
        const char *path;
        json_t *item;

        json_object_foreach(json_object_get(doc, "paths"), path, item) {
                bool any = false;

                for (size_t m = 0; m < ELEMENTSOF(http_methods); m++) {
                        if (!json_object_get(item, http_methods[m]))
                                continue;
                        any = true;
                        if (!route_served(path, http_methods[m]))
                                fail_msg("the document has %s %s, which the server's route "
                                         "table does not serve", http_methods[m], path);
                }
                if (!any)
                        fail_msg("the document's path %s has no operation", path);
        }
}

/* Checks one documented parameter; adds its name to @seen (no duplicates). */
static void check_param(const char *method, const char *path, json_t *raw, json_t *seen,
                        const ApiParamSpec *spec, size_t n_spec) {
        json_t *p = deref(raw), *schema, *def;
        const char *name, *in;
        const ApiParamSpec *s = NULL;
        char text[64];

        if (!p)
                fail_msg("route %s %s: a parameter's $ref does not resolve", method, path);
        name = json_string_value(json_object_get(p, "name"));
        in = json_string_value(json_object_get(p, "in"));
        if (!name || !in)
                fail_msg("route %s %s: a parameter lacks \"name\" or \"in\"", method, path);
        if (strcmp(in, "query") != 0)
                fail_msg("route %s %s: parameter '%s' is in %s; the server reads only the query "
                         "string", method, path, name, in);
        if (json_object_get(seen, name))
                fail_msg("route %s %s: query parameter '%s' is listed twice", method, path, name);
        assert_int_equal(json_object_set_new(seen, name, json_true()), 0);

        for (size_t i = 0; i < n_spec; i++)
                if (strcmp(spec[i].name, name) == 0)
                        s = &spec[i];
        if (!s) {
                if (!spec)
                        fail_msg("route %s %s takes no query parameters, but the document "
                                 "lists '%s'", method, path, name);
                fail_msg("route %s %s: the document lists query parameter '%s', which "
                         "api_route_params() does not accept", method, path, name);
        }
        schema = deref(json_object_get(p, "schema"));
        if (!json_is_object(schema))
                fail_msg("route %s %s: parameter '%s' has no schema", method, path, name);
        if (!json_is_string(json_object_get(p, "description")))
                fail_msg("route %s %s: parameter '%s' has no description", method, path, name);

        /* A documented default is the code's (api-params.c's table). */
        def = json_object_get(schema, "default");
        if (!def)
                return;
        if (json_is_integer(def))
                (void) snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT,
                                json_integer_value(def));
        else if (json_is_string(def))
                (void) snprintf(text, sizeof(text), "%s", json_string_value(def));
        else
                fail_msg("route %s %s: parameter '%s' has a default that is neither an integer "
                         "nor a string", method, path, name);
        if (!s->default_value || strcmp(s->default_value, text) != 0)
                fail_msg("route %s %s: parameter '%s' defaults to '%s' in the document, '%s' in "
                         "api-params.c", method, path, name, text,
                         s->default_value ? s->default_value : "(none)");
}

static void test_parameters_match_tables(void **state) {
        for (size_t i = 0; i < api_route_count(); i++) {
                const char *method, *path;
                const ApiParamSpec *spec;
                size_t n_spec = 0, k;
                bool needs_auth;
                json_t *seen = json_object(), *p;
                json_t *lists[2];

                assert_non_null(seen);
                api_route_get(i, &method, &path, &needs_auth);
                spec = api_route_params(path, &n_spec);
                lists[0] = json_object_get(path_item(path), "parameters");
                lists[1] = json_object_get(operation(path, method), "parameters");
                for (size_t l = 0; l < ELEMENTSOF(lists); l++) {
                        if (lists[l] && !json_is_array(lists[l]))
                                fail_msg("route %s %s: \"parameters\" is not an array", method,
                                         path);
                        json_array_foreach(lists[l], k, p)
                                check_param(method, path, p, seen, spec, n_spec);
                }
                for (size_t j = 0; j < n_spec; j++)
                        if (!json_object_get(seen, spec[j].name))
                                fail_msg("route %s %s accepts query parameter '%s' "
                                         "(api_route_params()), but the document does not "
                                         "list it", method, path, spec[j].name);
                json_decref(seen);
        }
}

/* The response for @status, $refs followed; NULL when not declared. */
static json_t *response(json_t *op, const char *method, const char *path, const char *status) {
        json_t *raw = json_object_get(json_object_get(op, "responses"), status), *r;

        if (!raw)
                return NULL;
        r = deref(raw);
        if (!json_is_object(r))
                fail_msg("route %s %s: response %s does not resolve to an object", method, path,
                         status);
        return r;
}

static void check_error_response(json_t *r, const char *method, const char *path,
                                 const char *status) {
        json_t *schema = json_object_get(
                json_object_get(json_object_get(r, "content"), "application/json"), "schema");
        const char *ref = json_string_value(json_object_get(schema, "$ref"));

        if (!ref || strcmp(ref, ERROR_SCHEMA_REF) != 0)
                fail_msg("route %s %s: response %s must be application/json with schema "
                         "{\"$ref\": \"" ERROR_SCHEMA_REF "\"}", method, path, status);
}

static bool has_header(json_t *r, const char *name) {
        const char *key;
        json_t *v;

        json_object_foreach(json_object_get(r, "headers"), key, v)
                if (strcasecmp(key, name) == 0)
                        return true;
        return false;
}

static void test_responses(void **state) {
        for (size_t i = 0; i < api_route_count(); i++) {
                const char *method, *path, *status;
                bool needs_auth, client_error = false;
                json_t *op, *ok, *raw;

                api_route_get(i, &method, &path, &needs_auth);
                op = operation(path, method);
                if (!json_is_object(json_object_get(op, "responses")))
                        fail_msg("route %s %s has no responses", method, path);
                ok = response(op, method, path, "200");
                if (!ok)
                        fail_msg("route %s %s does not declare its 200 response", method, path);
                if (json_object_size(json_object_get(ok, "content")) == 0)
                        fail_msg("route %s %s: the 200 response has no content", method, path);

                json_object_foreach(json_object_get(op, "responses"), status, raw) {
                        json_t *r = response(op, method, path, status);

                        if (status[0] != '4' && status[0] != '5')
                                continue;
                        client_error |= status[0] == '4';
                        if (is_probe(path)) {
                                if (json_object_size(json_object_get(r, "content")) == 0)
                                        fail_msg("route %s %s: response %s has no content",
                                                 method, path, status);
                                continue;
                        }
                        check_error_response(r, method, path, status);
                        if (strcmp(status, "401") == 0 && !has_header(r, "WWW-Authenticate"))
                                fail_msg("route %s %s: the 401 response must declare the "
                                         "WWW-Authenticate header", method, path);
                        if (strcmp(status, "429") == 0 && !has_header(r, "Retry-After"))
                                fail_msg("route %s %s: the 429 response must declare the "
                                         "Retry-After header", method, path);
                }
                if (is_probe(path))
                        continue;
                if (!client_error)
                        fail_msg("route %s %s declares no 4xx error response", method, path);
                if (needs_auth && !response(op, method, path, "401"))
                        fail_msg("route %s %s needs the token when one is configured, but does "
                                 "not declare 401", method, path);
                /* Every /api/v1 route reads its query string (unknown parameters are 400s). */
                if (strncmp(path, "/api/v1/", 8) == 0 && !response(op, method, path, "400"))
                        fail_msg("route %s %s does not declare 400", method, path);
        }
}

/* ---- the documented caps are the code's ----------------------------------------------- */

static json_int_t schema_int(const char *path, const char *name, const char *key) {
        json_t *p = find_query_param(path, "GET", name), *v;

        if (!p)
                fail_msg("GET %s: query parameter '%s' is not documented", path, name);
        v = json_object_get(deref(json_object_get(p, "schema")), key);
        if (!json_is_integer(v))
                fail_msg("GET %s: parameter '%s' has no integer schema \"%s\"", path, name, key);
        return json_integer_value(v);
}

static void expect_schema_int(const char *path, const char *name, const char *key,
                              uint64_t code_value, const char *code_name) {
        json_int_t v = schema_int(path, name, key);

        if (v < 0 || (uint64_t) v != code_value)
                fail_msg("GET %s: parameter '%s' has %s %" JSON_INTEGER_FORMAT " in the "
                         "document, but %s is %" PRIu64, path, name, key, v, code_name,
                         code_value);
}

static void test_limits_match_code(void **state) {
        const ApiLimits l = API_LIMITS_DEFAULT;

        expect_schema_int("/api/v1/flows", "limit", "maximum", l.max_limit,
                          "API_LIMITS_DEFAULT.max_limit");
        expect_schema_int("/api/v1/flows", "limit", "minimum", 1, "the smallest limit");
        expect_schema_int("/api/v1/flows", "limit", "default", l.default_limit,
                          "API_LIMITS_DEFAULT.default_limit");
        expect_schema_int("/api/v1/flows", "cursor", "maxLength", API_CURSOR_MAX,
                          "API_CURSOR_MAX");
        expect_schema_int("/api/v1/flows", "filter", "maxLength", l.max_expr_len,
                          "API_LIMITS_DEFAULT.max_expr_len");
        expect_schema_int("/api/v1/flows/stream", "filter", "maxLength", l.max_expr_len,
                          "API_LIMITS_DEFAULT.max_expr_len");
        expect_schema_int("/api/v1/flows/top", "n", "maximum", API_TOP_MAX_N, "API_TOP_MAX_N");
        expect_schema_int("/api/v1/flows/top", "n", "minimum", 1, "the smallest n");
        expect_schema_int("/api/v1/flows/top", "n", "default", API_TOP_DEFAULT_N,
                          "API_TOP_DEFAULT_N");
        expect_schema_int("/api/v1/templates", "limit", "maximum", API_TEMPLATES_MAX_LIMIT,
                          "API_TEMPLATES_MAX_LIMIT");
        expect_schema_int("/api/v1/templates", "limit", "default", API_TEMPLATES_DEFAULT_LIMIT,
                          "API_TEMPLATES_DEFAULT_LIMIT");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_version),
                cmocka_unit_test(test_security_scheme),
                cmocka_unit_test(test_refs_resolve),
                cmocka_unit_test(test_routes_documented),
                cmocka_unit_test(test_no_phantom_routes),
                cmocka_unit_test(test_parameters_match_tables),
                cmocka_unit_test(test_responses),
                cmocka_unit_test(test_limits_match_code),
        };

        return cmocka_run_group_tests_name("api-openapi", tests, setup, teardown);
}
