/* SPDX-License-Identifier: MIT */
/*
 * test-api-server.c - ipfixd-api (frontend-api/api.h) in-process on 127.0.0.1:0, its loop in
 * a thread, against two REAL mediator query services (flow stores and rollups with known
 * records) and a third pod endpoint where nothing listens, driven with libcurl: /flows
 * against a brute force, cursor paging covering every flow once, /flows/top against a brute
 * force, 400/404/405, 429 after the burst, 401 with a token, a walk over every route.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "free-port.h"
#include "api-test-server.h"
#include "api.h"
#include "log.h"
#include "macro.h"
#include "query.h"

#define N_A 300u
#define N_B 120u

typedef struct Pod {
        FlowStore *store;
        Rollup *rollup;
        QueryService *service;
        char endpoint[64];
} Pod;

typedef TestApiServer Server;

static struct {
        void *zctx;
        Pod pods[2];
        uint64_t now_ms;
        char pods_spec[256];
        Server main;
} world;

/* ---- pods (as in test-api-scatter.c) ---- */

static void fill_pod(Pod *p, unsigned n, uint8_t net) {
        FlowStoreConfig sc = { .max_flows = 10000, .segment_flows = 1024 };
        FlowRecord *recs = calloc(n, sizeof(*recs));

        assert_non_null(recs);
        assert_int_equal(flow_store_new(&p->store, &sc), 0);
        assert_int_equal(rollup_new(&p->rollup, NULL), 0);
        for (unsigned i = 0; i < n; i++) {
                FlowRecord *r = &recs[i];
                uint8_t s[4] = { 10, net, 0, (uint8_t) (i % 200) };
                uint8_t d[4] = { 192, 0, 2, (uint8_t) (i % 3) };
                uint8_t e[4] = { 127, 0, 0, net };
                /* pairs of records share an end_ms, across pods too: the global order's
                 * tie-breaks (pod, then seq) are exercised by paging */
                r->end_ms = world.now_ms - 120000 + (uint64_t) (i / 2) * 100;
                r->start_ms = r->end_ms - 1000;
                r->octets = 1000 + i;
                r->packets = 2;
                flow_addr_set_v4(r->src_addr, s);
                flow_addr_set_v4(r->dst_addr, d);
                flow_addr_set_v4(r->exporter_addr, e);
                r->family = r->exporter_family = 4;
                r->proto = (uint8_t) (i % 4 == 0 ? 17 : 6);
                r->src_port = (uint16_t) (2000 + i);
                r->dst_port = 53;
        }
        flow_store_append(p->store, recs, n);
        rollup_add(p->rollup, recs, n, world.now_ms);
        free(recs);
}

static void start_service(Pod *p, const char *name) {
        QueryContext ctx = {
                .pod = name, .store = p->store, .rollup = p->rollup,
                .limits = { .max_limit = 10000, .max_scan = 0, .timeout_ms = 5000 },
        };
        int r = -EADDRINUSE;

        for (int attempt = 0; attempt < 20 && r == -EADDRINUSE; attempt++) {
                (void) snprintf(p->endpoint, sizeof(p->endpoint), "tcp://127.0.0.1:%u",
                                free_port());
                r = query_service_new(&p->service, world.zctx, p->endpoint, &ctx);
        }
        assert_int_equal(r, 0);
}

/* ---- the server in a thread (api-test-server.h) ---- */

static void server_start(Server *srv, const char *const *sets, size_t n_sets) {
        char *all[16];
        size_t n = 0;
        char pods[300];

        (void) snprintf(pods, sizeof(pods), "pods=%s", world.pods_spec);
        all[n++] = (char *) "listen=127.0.0.1:0";
        all[n++] = pods;
        all[n++] = (char *) "deadline_ms=1500";
        all[n++] = (char *) "workers=2";
        assert_true(n + n_sets <= ELEMENTSOF(all));
        for (size_t i = 0; i < n_sets; i++)
                all[n++] = (char *) sets[i];
        test_api_server_start(srv, all, n);
}

static void server_stop(Server *srv) {
        test_api_server_stop(srv);
}

/* ---- HTTP client ---- */


/* @header: one raw request header line, or NULL. */
static Reply http_header(const Server *srv, const char *method, const char *path,
                         const char *header) {
        Reply r = {};
        CURL *c = curl_easy_init();
        struct curl_slist *hdrs = NULL;
        char url[8192];
        CURLcode cc;

        assert_non_null(c);
        (void) snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", srv->port, path);
        (void) curl_easy_setopt(c, CURLOPT_URL, url);
        (void) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        (void) curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, reply_on_body);
        (void) curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        (void) curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, reply_on_header);
        (void) curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
        (void) curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        if (header) {
                hdrs = curl_slist_append(hdrs, header);
                (void) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        }
        cc = curl_easy_perform(c);
        if (cc != CURLE_OK)
                fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
        (void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        if (r.body)
                r.json = json_loads(r.body, 0, NULL);
        return r;
}

static Reply http(const Server *srv, const char *method, const char *path, const char *token) {
        char auth[256];

        if (!token)
                return http_header(srv, method, path, NULL);
        (void) snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        return http_header(srv, method, path, auth);
}

static Reply get(const char *path) {
        return http(&world.main, "GET", path, NULL);
}

static void assert_error(const Reply *r, long status, const char *code) {
        json_t *e = json_object_get(r->json, "error");

        if (r->status != status)
                fail_msg("status %ld, expected %ld: %s", r->status, status, r->body ? r->body : "");
        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
        assert_non_null(json_string_value(json_object_get(e, "message")));
}

/* ---- setup ---- */

static int group_setup(void **state) {
        world.zctx = zmq_ctx_new();
        assert_non_null(world.zctx);
        world.now_ms = now_realtime_ms();
        fill_pod(&world.pods[0], N_A, 1);
        fill_pod(&world.pods[1], N_B, 2);
        start_service(&world.pods[0], "pod-a");
        start_service(&world.pods[1], "pod-b");
        (void) snprintf(world.pods_spec, sizeof(world.pods_spec),
                        "pod-a=%s,pod-b=%s,pod-c=tcp://127.0.0.1:%u", world.pods[0].endpoint,
                        world.pods[1].endpoint, free_port());
        assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
        server_start(&world.main, (const char *const[]) { "rate_limit_rps=0" }, 1);
        return 0;
}

static int group_teardown(void **state) {
        server_stop(&world.main);
        for (size_t i = 0; i < ELEMENTSOF(world.pods); i++) {
                query_service_free(world.pods[i].service);
                flow_store_free(world.pods[i].store);
                rollup_free(world.pods[i].rollup);
        }
        (void) zmq_ctx_term(world.zctx);
        curl_global_cleanup();
        return 0;
}

/* ---- tests ---- */

static void test_readyz(void **state) {
        Reply r = {};

        for (int i = 0; i < 100; i++) {
                reply_done(&r);
                r = get("/readyz");
                if (r.status == 200)
                        break;
                usleep(50 * 1000);
        }
        assert_int_equal(r.status, 200);
        reply_done(&r);
        r = get("/healthz");
        assert_int_equal(r.status, 200);
        reply_done(&r);
}

/* pod index (0, 1) and src_port of a returned flow; checks its pod name */
static void flow_identity(json_t *f, unsigned *ret_pod, unsigned *ret_i) {
        const char *pod = json_string_value(json_object_get(f, "pod"));
        json_int_t sp = json_integer_value(json_object_get(f, "src_port"));

        assert_non_null(pod);
        if (strcmp(pod, "pod-a") == 0)
                *ret_pod = 0;
        else if (strcmp(pod, "pod-b") == 0)
                *ret_pod = 1;
        else
                fail_msg("flow from unexpected pod %s", pod);
        assert_true(sp >= 2000 && sp < 2000 + (json_int_t) (*ret_pod == 0 ? N_A : N_B));
        *ret_i = (unsigned) (sp - 2000);
}

static void assert_partial_c(json_t *j) {
        json_t *missing = json_object_get(j, "missing_pods");

        assert_true(json_is_true(json_object_get(j, "partial")));
        assert_int_equal(json_integer_value(json_object_get(j, "pods")), 3);
        assert_int_equal(json_integer_value(json_object_get(j, "answered")), 2);
        assert_int_equal(json_array_size(missing), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(missing, 0), "pod")),
                            "pod-c");
}

static void test_flows_udp(void **state) {
        Reply r = get("/api/v1/flows?proto=udp&limit=1000");
        bool seen[2][N_A] = {};
        json_t *flows, *f;
        size_t i, want = 0;
        unsigned p, k;

        if (r.status != 200)
                fail_msg("status %ld: %s", r.status, r.body);
        flows = json_object_get(r.json, "flows");
        json_array_foreach(flows, i, f) {
                assert_int_equal(json_integer_value(json_object_get(f, "proto")), 17);
                flow_identity(f, &p, &k);
                assert_false(seen[p][k]);
                seen[p][k] = true;
        }
        for (p = 0; p < 2; p++)
                for (k = 0; k < (p == 0 ? N_A : N_B); k++) {
                        assert_int_equal(seen[p][k], k % 4 == 0);
                        want += k % 4 == 0;
                }
        assert_int_equal(json_array_size(flows), want);
        assert_int_equal(json_integer_value(json_object_get(r.json, "count")), want);
        assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
        assert_true(json_is_false(json_object_get(r.json, "truncated")));
        assert_partial_c(r.json);
        reply_done(&r);
}

static void test_flows_paging(void **state) {
        bool seen[2][N_A] = {};
        char path[512], cursor[256] = "";
        size_t total = 0, pages = 0;
        uint64_t last_end = UINT64_MAX;

        for (;;) {
                Reply r;
                json_t *flows, *f, *next;
                size_t i;
                unsigned p, k;

                if (cursor[0])
                        (void) snprintf(path, sizeof(path), "/api/v1/flows?limit=37&cursor=%s",
                                        cursor);
                else
                        (void) snprintf(path, sizeof(path), "/api/v1/flows?limit=37");
                r = get(path);
                if (r.status != 200)
                        fail_msg("status %ld: %s", r.status, r.body);
                flows = json_object_get(r.json, "flows");
                json_array_foreach(flows, i, f) {
                        uint64_t end = (uint64_t) json_integer_value(json_object_get(f, "end_ms"));
                        assert_true(end <= last_end);
                        last_end = end;
                        flow_identity(f, &p, &k);
                        if (seen[p][k])
                                fail_msg("flow %u of pod %u returned twice (page %zu)", k, p, pages);
                        seen[p][k] = true;
                        total++;
                }
                pages++;
                assert_true(pages < 100);
                next = json_object_get(r.json, "next_cursor");
                if (json_is_null(next)) {
                        reply_done(&r);
                        break;
                }
                assert_true(json_is_string(next));
                (void) snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
                reply_done(&r);
        }
        assert_int_equal(total, N_A + N_B);
        assert_true(pages >= (N_A + N_B) / 37);
}

typedef struct TopKey {
        char key[32];
        uint64_t octets;
} TopKey;

static int topkey_cmp(const void *x, const void *y) {
        const TopKey *a = x, *b = y;

        if (a->octets != b->octets)
                return a->octets > b->octets ? -1 : 1;
        return strcmp(a->key, b->key);
}

static void test_top(void **state) {
        TopKey keys[400] = {};
        size_t n_keys = 0, i;
        Reply r = get("/api/v1/flows/top?by=src&metric=octets&n=10");
        json_t *entries, *e;

        for (unsigned p = 0; p < 2; p++)
                for (unsigned k = 0; k < (p == 0 ? N_A : N_B); k++) {
                        char key[32];
                        (void) snprintf(key, sizeof(key), "10.%u.0.%u", p + 1, k % 200);
                        for (i = 0; i < n_keys; i++)
                                if (strcmp(keys[i].key, key) == 0)
                                        break;
                        if (i == n_keys)
                                (void) snprintf(keys[n_keys++].key, sizeof(keys[0].key), "%s", key);
                        keys[i].octets += 1000 + k;
                }
        qsort(keys, n_keys, sizeof(keys[0]), topkey_cmp);

        if (r.status != 200)
                fail_msg("status %ld: %s", r.status, r.body);
        entries = json_object_get(r.json, "entries");
        assert_int_equal(json_array_size(entries), 10);
        json_array_foreach(entries, i, e) {
                assert_string_equal(json_string_value(json_object_get(e, "key")), keys[i].key);
                assert_int_equal(json_integer_value(json_object_get(e, "octets")), keys[i].octets);
        }
        assert_partial_c(r.json);
        reply_done(&r);
}

static void test_timeseries_exporters(void **state) {
        Reply r = get("/api/v1/flows/timeseries?window=1h");
        json_t *pts, *pt, *ex;
        size_t i;
        json_int_t flows = 0;

        if (r.status != 200)
                fail_msg("status %ld: %s", r.status, r.body);
        pts = json_object_get(r.json, "points");
        json_array_foreach(pts, i, pt)
                flows += json_integer_value(json_object_get(pt, "flows"));
        assert_int_equal(flows, N_A + N_B);
        assert_partial_c(r.json);
        reply_done(&r);

        r = get("/api/v1/exporters");
        assert_int_equal(r.status, 200);
        ex = json_object_get(r.json, "exporters");
        assert_int_equal(json_array_size(ex), 2);
        assert_partial_c(r.json);
        reply_done(&r);
}

static void test_errors(void **state) {
        Reply r = get("/api/v1/flows?src=10.0.0.1/8");
        json_t *e;

        assert_error(&r, 400, "bad_parameter");
        e = json_object_get(r.json, "error");
        assert_string_equal(json_string_value(json_object_get(e, "parameter")), "src");
        assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "src"));
        reply_done(&r);

        r = get("/api/v1/flows?bogus=1");
        assert_error(&r, 400, "unknown_parameter");
        reply_done(&r);

        r = get("/api/v1/flows?cursor=nonsense");
        assert_error(&r, 400, "bad_parameter");
        reply_done(&r);

        r = get("/api/v1/exporters?x=1");
        assert_error(&r, 400, "unknown_parameter");
        reply_done(&r);

        r = get("/nope");
        assert_error(&r, 404, "not_found");
        reply_done(&r);

        r = http(&world.main, "POST", "/api/v1/flows", NULL);
        assert_error(&r, 405, "method_not_allowed");
        assert_non_null(strcasestr(r.headers, "Allow: GET, HEAD"));
        reply_done(&r);

        {
                char path[6000] = "/api/v1/flows?filter=";
                size_t n = strlen(path);
                memset(path + n, 'a', 5000);
                path[n + 5000] = '\0';
                r = get(path);
                assert_error(&r, 414, "uri_too_long");
                reply_done(&r);
        }
}

static void test_route_walk(void **state) {
        static const char *const paths[] = {
                "/healthz", "/readyz", "/metrics", "/api/v1/flows", "/api/v1/flows/top",
                "/api/v1/flows/timeseries", "/api/v1/exporters",
        };
        Reply r;

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                r = get(paths[i]);
                if (r.status == 404 || r.status == 0)
                        fail_msg("%s answered %ld", paths[i], r.status);
                reply_done(&r);
        }
        r = get("/metrics");
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "ipfixd_api_requests_total{route=\"/api/v1/flows\",status=\"200\"}"));
        assert_non_null(strstr(r.body, "ipfixd_api_pod_timeouts_total{pod=\"pod-c\"}"));
        assert_non_null(strstr(r.body, "ipfixd_api_queue_depth"));
        reply_done(&r);
}

static void test_rate_limit(void **state) {
        Server srv = {};
        Reply r;

        server_start(&srv, (const char *const[]) { "rate_limit_rps=1", "rate_limit_burst=3" }, 2);
        for (int i = 0; i < 3; i++) {
                r = http(&srv, "GET", "/api/v1/flows?src=bad", NULL);
                assert_error(&r, 400, "bad_parameter");
                reply_done(&r);
        }
        r = http(&srv, "GET", "/api/v1/flows?src=bad", NULL);
        assert_error(&r, 429, "rate_limited");
        assert_non_null(strcasestr(r.headers, "Retry-After: "));
        reply_done(&r);
        /* the probes are not limited */
        r = http(&srv, "GET", "/healthz", NULL);
        assert_int_equal(r.status, 200);
        reply_done(&r);
        server_stop(&srv);
}

/* Behind a trusted proxy, X-Forwarded-For names the client the rate limit counts. */
static void test_trusted_proxies(void **state) {
        static const char *const cidr_ok[] = { "", "127.0.0.0/8", "10.0.0.0/8, fd00::/8",
                                               "192.0.2.7", "::1/128,0.0.0.0/0" };
        static const char *const cidr_bad[] = { "10.0.0.1/8", "10.0.0.0/33", "x", "10.0.0.0/",
                                                "10.0.0.0/8,", "fd00::1/8", ",10.0.0.0/8" };
        Server srv = {};
        Reply r;
        ApiCidr *c = NULL;
        size_t n = 0;
        uint8_t a[16] = { 10, 1, 2, 3 };

        for (size_t i = 0; i < ELEMENTSOF(cidr_ok); i++) {
                if (api_parse_cidrs(cidr_ok[i], &c, &n) < 0)
                        fail_msg("'%s' refused", cidr_ok[i]);
                free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(cidr_bad); i++) {
                c = NULL;
                if (api_parse_cidrs(cidr_bad[i], &c, &n) != -EINVAL)
                        fail_msg("'%s' accepted", cidr_bad[i]);
                assert_null(c);
        }
        assert_int_equal(api_parse_cidrs("10.0.0.0/15, 2001:db8::/32", &c, &n), 0);
        assert_int_equal(n, 2);
        assert_true(api_cidrs_match(c, n, a, 4));
        a[1] = 2;
        assert_false(api_cidrs_match(c, n, a, 4));
        assert_false(api_cidrs_match(c, n, a, 6));
        free(c);

        server_start(&srv, (const char *const[]) { "rate_limit_rps=1", "rate_limit_burst=1",
                                                   "trusted_proxies=127.0.0.0/8,10.9.0.0/16" },
                     3);
        /* two clients behind the proxy: one token each */
        r = http_header(&srv, "GET", "/api/v1/flows?src=bad", "X-Forwarded-For: 192.0.2.1");
        assert_error(&r, 400, "bad_parameter");
        reply_done(&r);
        r = http_header(&srv, "GET", "/api/v1/flows?src=bad", "X-Forwarded-For: 192.0.2.2");
        assert_error(&r, 400, "bad_parameter");
        reply_done(&r);
        /* the same client again, through a second trusted hop: limited */
        r = http_header(&srv, "GET", "/api/v1/flows?src=bad",
                        "X-Forwarded-For: 192.0.2.1, 10.9.3.4");
        assert_error(&r, 429, "rate_limited");
        reply_done(&r);
        /* a forged left-most entry does not help: the right-most untrusted one counts */
        r = http_header(&srv, "GET", "/api/v1/flows?src=bad",
                        "X-Forwarded-For: 198.51.100.9, 192.0.2.2");
        assert_error(&r, 429, "rate_limited");
        reply_done(&r);
        /* no header: the proxy itself is the client (its first request) */
        r = http(&srv, "GET", "/api/v1/flows?src=bad", NULL);
        assert_error(&r, 400, "bad_parameter");
        reply_done(&r);
        /* garbage in the header: the last believable address (the proxy) counts */
        r = http_header(&srv, "GET", "/api/v1/flows?src=bad", "X-Forwarded-For: not-an-ip");
        assert_error(&r, 429, "rate_limited");
        reply_done(&r);
        server_stop(&srv);
}

static void test_token(void **state) {
        char path[] = "/tmp/test-api-token-XXXXXX", set[64];
        int fd = mkstemp(path);
        Server srv = {};
        Reply r;

        assert_true(fd >= 0);
        assert_int_equal(write(fd, "s3cret\n", 7), 7);
        close(fd);
        (void) snprintf(set, sizeof(set), "token_file=%s", path);
        server_start(&srv, (const char *const[]) { set, "rate_limit_rps=0" }, 2);

        r = http(&srv, "GET", "/api/v1/exporters", NULL);
        assert_error(&r, 401, "unauthorized");
        assert_non_null(strcasestr(r.headers, "WWW-Authenticate: Bearer"));
        reply_done(&r);
        r = http(&srv, "GET", "/api/v1/exporters", "wrong");
        assert_error(&r, 401, "unauthorized");
        reply_done(&r);
        r = http(&srv, "GET", "/metrics", NULL);
        assert_error(&r, 401, "unauthorized");
        reply_done(&r);
        r = http(&srv, "GET", "/api/v1/exporters", "s3cret");
        assert_int_equal(r.status, 200);
        reply_done(&r);
        r = http(&srv, "GET", "/healthz", NULL);
        assert_int_equal(r.status, 200);
        reply_done(&r);
        r = http(&srv, "GET", "/readyz", NULL);
        assert_true(r.status == 200 || r.status == 503);
        reply_done(&r);
        server_stop(&srv);
        unlink(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_readyz),
                cmocka_unit_test(test_flows_udp),
                cmocka_unit_test(test_flows_paging),
                cmocka_unit_test(test_top),
                cmocka_unit_test(test_timeseries_exporters),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_route_walk),
                cmocka_unit_test(test_rate_limit),
                cmocka_unit_test(test_trusted_proxies),
                cmocka_unit_test(test_token),
        };

        log_set_max_level(LOG_WARNING);
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
