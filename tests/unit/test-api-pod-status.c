/* SPDX-License-Identifier: MIT */
/*
 * test-api-pod-status.c - api_pod_status_fetch() (frontend-api/pod-status.h) against
 * STAND-INS for the pod controller's GET /api/v1/pod: small libmicrohttpd servers in this
 * process on 127.0.0.1 that answer whatever each case needs (good documents, a 503 with a
 * document, text, a body over the cap, a slow answer, a bearer check). The real controller
 * (dbus-controller/controller-http.c) is exercised by the integration test.
 *
 * Each stand-in runs a thread per connection; a slow one waits on a condition variable that
 * its shutdown signals, so stopping it never waits for the delay. Timing assertions bound
 * from above generously (valgrind runs this suite too).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <microhttpd.h>

#include "free-port.h"
#include "log.h"
#include "pod-status.h"

#define TIMEOUT_MS 5000u                /* for cases where every stand-in answers at once */
#define SLACK_US (1500u * 1000u)        /* over a deadline, for a loaded machine or valgrind */
#define TOKEN "s3cret-t0ken"

typedef enum Body {
        BODY_FIXED,             /* Stand.body, as is */
        BODY_BIG_LENGTH,        /* API_POD_STATUS_MAX_BODY + 1 bytes with a Content-Length */
        BODY_BIG_CHUNKED,       /* the same, chunked (no length announced) */
} Body;

typedef struct Stand {
        /* what it answers */
        unsigned code;
        const char *body;
        const char *type;
        Body kind;
        unsigned delay_ms;
        const char *want_token; /* non-NULL: 401 unless "Authorization: Bearer <it>" */

        struct MHD_Daemon *daemon;
        unsigned port;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stopping;

        /* what it saw (under lock) */
        unsigned requests;
        char path[128];
        char method[16];
        char accept[64];
        char auth[128];
        bool had_auth;
} Stand;

typedef struct BigBody {
        size_t left;
} BigBody;

static ssize_t on_big_read(void *cls, uint64_t pos, char *buf, size_t max) {
        BigBody *b = cls;
        size_t n = b->left < max ? b->left : max;

        if (n == 0)
                return MHD_CONTENT_READER_END_OF_STREAM;
        memset(buf, 'x', n);
        b->left -= n;
        return (ssize_t) n;
}

static void copy_header(struct MHD_Connection *conn, const char *name, char *dst, size_t size,
                        bool *ret_had) {
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);

        (void) snprintf(dst, size, "%s", v ? v : "");
        if (ret_had)
                *ret_had = v != NULL;
}

/* Waits @s->delay_ms, or less when the stand-in is being stopped. */
static void stand_delay(Stand *s) {
        struct timespec until;

        if (s->delay_ms == 0)
                return;
        (void) clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += s->delay_ms / 1000u;
        until.tv_nsec += (long) (s->delay_ms % 1000u) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->lock);
        while (!s->stopping && pthread_cond_timedwait(&s->cond, &s->lock, &until) != ETIMEDOUT)
                ;
        pthread_mutex_unlock(&s->lock);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        static int seen;
        Stand *s = cls;
        struct MHD_Response *resp;
        const char *type = s->type ? s->type : "application/json";
        unsigned code = s->code;
        char want[160];
        bool authorized = true;
        enum MHD_Result r;

        if (!*con_cls) {        /* headers only: answer on the next call */
                *con_cls = &seen;
                return MHD_YES;
        }

        pthread_mutex_lock(&s->lock);
        s->requests++;
        (void) snprintf(s->path, sizeof(s->path), "%s", url);
        (void) snprintf(s->method, sizeof(s->method), "%s", method);
        copy_header(conn, MHD_HTTP_HEADER_ACCEPT, s->accept, sizeof(s->accept), NULL);
        copy_header(conn, MHD_HTTP_HEADER_AUTHORIZATION, s->auth, sizeof(s->auth), &s->had_auth);
        if (s->want_token) {
                (void) snprintf(want, sizeof(want), "Bearer %s", s->want_token);
                authorized = s->had_auth && strcmp(s->auth, want) == 0;
        }
        pthread_mutex_unlock(&s->lock);

        stand_delay(s);

        if (strcmp(url, "/api/v1/pod") != 0 || strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
                static const char nf[] = "{\"error\":\"not_found\"}";
                resp = MHD_create_response_from_buffer(strlen(nf), (void *) nf,
                                                       MHD_RESPMEM_PERSISTENT);
                code = MHD_HTTP_NOT_FOUND;
                type = "application/json";
        } else if (!authorized) {
                static const char ua[] = "{\"error\":\"unauthorized\"}";
                resp = MHD_create_response_from_buffer(strlen(ua), (void *) ua,
                                                       MHD_RESPMEM_PERSISTENT);
                code = MHD_HTTP_UNAUTHORIZED;
                type = "application/json";
        } else if (s->kind == BODY_FIXED) {
                resp = MHD_create_response_from_buffer(strlen(s->body), (void *) s->body,
                                                       MHD_RESPMEM_PERSISTENT);
        } else {
                BigBody *b = malloc(sizeof(*b));

                if (!b)
                        return MHD_NO;
                b->left = (size_t) API_POD_STATUS_MAX_BODY + 1u;
                resp = MHD_create_response_from_callback(
                        s->kind == BODY_BIG_LENGTH ? (uint64_t) b->left : MHD_SIZE_UNKNOWN,
                        64 * 1024, on_big_read, b, free);
                if (!resp)
                        free(b);
        }
        if (!resp)
                return MHD_NO;
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        r = MHD_queue_response(conn, code, resp);
        MHD_destroy_response(resp);
        return r;
}

static void stand_start(Stand *s) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                .sin_port = 0,
        };
        const union MHD_DaemonInfo *info;

        if (s->code == 0)
                s->code = MHD_HTTP_OK;
        assert_int_equal(pthread_mutex_init(&s->lock, NULL), 0);
        {
                pthread_condattr_t attr;

                assert_int_equal(pthread_condattr_init(&attr), 0);
                assert_int_equal(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC), 0);
                assert_int_equal(pthread_cond_init(&s->cond, &attr), 0);
                (void) pthread_condattr_destroy(&attr);
        }
        s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                                             MHD_USE_THREAD_PER_CONNECTION,
                                     0, NULL, NULL, on_request, s,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                                     MHD_OPTION_END);
        assert_non_null(s->daemon);
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        assert_non_null(info);
        assert_true(info->port > 0);
        s->port = info->port;
}

static void stand_stop(Stand *s) {
        if (!s->daemon)
                return;
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
        (void) pthread_cond_destroy(&s->cond);
        (void) pthread_mutex_destroy(&s->lock);
}

/* @port 0: no controller endpoint. */
static void pod_set(ApiPod *p, const char *name, unsigned port) {
        *p = (ApiPod) { 0 };
        (void) snprintf(p->name, sizeof(p->name), "%s", name);
        (void) snprintf(p->endpoint, sizeof(p->endpoint), "tcp://127.0.0.1:9300");
        if (port > 0)
                (void) snprintf(p->http, sizeof(p->http), "http://127.0.0.1:%u", port);
}

static json_t *fetch(const ApiPod *pods, size_t n, const char *token, uint64_t timeout_ms,
                     uint64_t *ret_took_us) {
        json_t *answer = NULL;
        uint64_t start = now_usec();

        assert_int_equal(api_pod_status_fetch(pods, n, token, timeout_ms, &answer), 0);
        if (ret_took_us)
                *ret_took_us = now_usec() - start;
        assert_non_null(answer);
        assert_true(json_is_object(answer));
        assert_int_equal(json_integer_value(json_object_get(answer, "count")), (json_int_t) n);
        assert_true(json_is_array(json_object_get(answer, "pods")));
        assert_int_equal(json_array_size(json_object_get(answer, "pods")), n);
        return answer;
}

static json_int_t n_ok(json_t *answer) {
        return json_integer_value(json_object_get(answer, "ok"));
}

/* Checks the common fields of pod @i and returns it (borrowed). @error NULL: ok. */
static json_t *check_pod(json_t *answer, size_t i, const ApiPod *pod, const char *error) {
        json_t *e = json_array_get(json_object_get(answer, "pods"), i);
        char url[300];

        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(e, "name")), pod->name);
        if (pod->http[0]) {
                (void) snprintf(url, sizeof(url), "%s/api/v1/pod", pod->http);
                assert_string_equal(json_string_value(json_object_get(e, "url")), url);
        } else
                assert_true(json_is_null(json_object_get(e, "url")));
        if (!error) {
                assert_true(json_is_true(json_object_get(e, "ok")));
                assert_null(json_object_get(e, "error"));
                assert_true(json_is_object(json_object_get(e, "status")));
        } else {
                assert_true(json_is_false(json_object_get(e, "ok")));
                assert_string_equal(json_string_value(json_object_get(e, "error")), error);
        }
        return e;
}

static const char *status_name(json_t *e) {
        return json_string_value(json_object_get(json_object_get(e, "status"), "name"));
}

/* Two good stand-ins, the first slower, so the order is @pods' and not the answers'. */
static void test_two_good_pods(void **state) {
        Stand a = { .body = "{\"name\":\"pod-a\",\"ready\":true,\"replicas\":[1,2]}",
                    .delay_ms = 200 };
        Stand b = { .body = "{\"name\":\"pod-b\",\"ready\":true}" };
        ApiPod pods[2];
        json_t *answer, *e;

        stand_start(&a);
        stand_start(&b);
        pod_set(&pods[0], "pod-a", a.port);
        pod_set(&pods[1], "pod-b", b.port);

        answer = fetch(pods, 2, NULL, TIMEOUT_MS, NULL);
        assert_int_equal(n_ok(answer), 2);
        e = check_pod(answer, 0, &pods[0], NULL);
        assert_string_equal(status_name(e), "pod-a");
        assert_int_equal(json_array_size(json_object_get(json_object_get(e, "status"),
                                                         "replicas")), 2);
        e = check_pod(answer, 1, &pods[1], NULL);
        assert_string_equal(status_name(e), "pod-b");
        json_decref(answer);

        /* What the stand-in saw: GET of the path, JSON accepted, no token. */
        assert_int_equal(a.requests, 1);
        assert_string_equal(a.method, "GET");
        assert_string_equal(a.path, "/api/v1/pod");
        assert_string_equal(a.accept, "application/json");
        assert_false(a.had_auth);

        stand_stop(&a);
        stand_stop(&b);
}

static void test_empty(void **state) {
        json_t *answer = fetch(NULL, 0, NULL, TIMEOUT_MS, NULL);

        assert_int_equal(n_ok(answer), 0);
        json_decref(answer);
}

/* The controller answers 503 with its document while the pod is not ready: kept. */
static void test_503_keeps_status(void **state) {
        Stand s = { .code = 503, .body = "{\"name\":\"pod-n\",\"ready\":false}" };
        ApiPod pod;
        json_t *answer, *e;

        stand_start(&s);
        pod_set(&pod, "pod-n", s.port);
        answer = fetch(&pod, 1, NULL, TIMEOUT_MS, NULL);
        assert_int_equal(n_ok(answer), 0);
        e = check_pod(answer, 0, &pod, "HTTP 503");
        assert_string_equal(status_name(e), "pod-n");
        assert_true(json_is_false(json_object_get(json_object_get(e, "status"), "ready")));
        json_decref(answer);
        stand_stop(&s);
}

/* Text, a JSON array, an empty 200, and an error code without a JSON body. */
static void test_not_json(void **state) {
        Stand text = { .body = "hello, I am not JSON", .type = "text/plain" };
        Stand array = { .body = "[1,2,3]" };
        Stand empty = { .body = "" };
        Stand gone = { .code = 404, .body = "<html>no</html>", .type = "text/html" };
        ApiPod pods[4];
        json_t *answer, *e;

        stand_start(&text);
        stand_start(&array);
        stand_start(&empty);
        stand_start(&gone);
        pod_set(&pods[0], "text", text.port);
        pod_set(&pods[1], "array", array.port);
        pod_set(&pods[2], "empty", empty.port);
        pod_set(&pods[3], "gone", gone.port);

        answer = fetch(pods, 4, NULL, TIMEOUT_MS, NULL);
        assert_int_equal(n_ok(answer), 0);
        for (size_t i = 0; i < 3; i++) {
                e = check_pod(answer, i, &pods[i], "not JSON");
                assert_null(json_object_get(e, "status"));
        }
        e = check_pod(answer, 3, &pods[3], "HTTP 404");
        assert_null(json_object_get(e, "status"));
        json_decref(answer);

        stand_stop(&text);
        stand_stop(&array);
        stand_stop(&empty);
        stand_stop(&gone);
}

/* API_POD_STATUS_MAX_BODY + 1 bytes, announced (refused before the body) and chunked (cut
 * off by the write callback); a good stand-in in the same call is unaffected. */
static void test_too_large(void **state) {
        Stand len = { .kind = BODY_BIG_LENGTH, .type = "application/json" };
        Stand chunked = { .kind = BODY_BIG_CHUNKED, .type = "application/json" };
        Stand good = { .body = "{\"name\":\"good\"}" };
        ApiPod pods[3];
        json_t *answer, *e;

        stand_start(&len);
        stand_start(&chunked);
        stand_start(&good);
        pod_set(&pods[0], "length", len.port);
        pod_set(&pods[1], "chunked", chunked.port);
        pod_set(&pods[2], "good", good.port);

        answer = fetch(pods, 3, NULL, TIMEOUT_MS, NULL);
        assert_int_equal(n_ok(answer), 1);
        e = check_pod(answer, 0, &pods[0], "too large");
        assert_null(json_object_get(e, "status"));
        e = check_pod(answer, 1, &pods[1], "too large");
        assert_null(json_object_get(e, "status"));
        check_pod(answer, 2, &pods[2], NULL);
        json_decref(answer);

        stand_stop(&len);
        stand_stop(&chunked);
        stand_stop(&good);
}

static void test_connection_refused(void **state) {
        ApiPod pod;
        json_t *answer, *e;

        pod_set(&pod, "refused", free_port());
        answer = fetch(&pod, 1, NULL, TIMEOUT_MS, NULL);
        assert_int_equal(n_ok(answer), 0);
        e = check_pod(answer, 0, &pod, "connection refused");
        assert_null(json_object_get(e, "status"));
        json_decref(answer);
}

/* A stand-in that would answer after 30 s: "timeout" at the deadline, while a good one in
 * the same call is ok. */
static void test_timeout(void **state) {
        Stand slow = { .body = "{\"name\":\"slow\"}", .delay_ms = 30000 };
        Stand good = { .body = "{\"name\":\"good\"}" };
        const uint64_t timeout_ms = 500;
        ApiPod pods[2];
        json_t *answer, *e;
        uint64_t took;

        stand_start(&slow);
        stand_start(&good);
        pod_set(&pods[0], "slow", slow.port);
        pod_set(&pods[1], "good", good.port);

        answer = fetch(pods, 2, NULL, timeout_ms, &took);
        assert_int_equal(n_ok(answer), 1);
        e = check_pod(answer, 0, &pods[0], "timeout");
        assert_null(json_object_get(e, "status"));
        check_pod(answer, 1, &pods[1], NULL);
        /* libcurl's own timer (CURLOPT_TIMEOUT_MS) counts whole milliseconds and may fire
         * up to one early */
        assert_true(took + 5000u >= timeout_ms * 1000u);
        assert_true(took < timeout_ms * 1000u + SLACK_US);
        json_decref(answer);

        /* A 0 ms budget asks nobody. */
        answer = fetch(&pods[1], 1, NULL, 0, NULL);
        check_pod(answer, 0, &pods[1], "timeout");
        json_decref(answer);

        stand_stop(&slow);      /* wakes the waiting handler: does not take 30 s */
        stand_stop(&good);
}

/* A pod without an http endpoint is listed, not asked. */
static void test_no_endpoint(void **state) {
        Stand good = { .body = "{\"name\":\"good\"}" };
        ApiPod pods[2];
        json_t *answer, *e;

        stand_start(&good);
        pod_set(&pods[0], "bare", 0);
        pod_set(&pods[1], "good", good.port);
        answer = fetch(pods, 2, NULL, TIMEOUT_MS, NULL);
        assert_int_equal(n_ok(answer), 1);
        e = check_pod(answer, 0, &pods[0], "no controller endpoint");
        assert_null(json_object_get(e, "status"));
        check_pod(answer, 1, &pods[1], NULL);
        json_decref(answer);
        stand_stop(&good);
}

/* The token goes out as "Authorization: Bearer", and nothing goes out without one. */
static void test_token(void **state) {
        Stand s = { .body = "{\"name\":\"locked\"}", .want_token = TOKEN };
        ApiPod pod;
        json_t *answer, *e;

        stand_start(&s);
        pod_set(&pod, "locked", s.port);

        answer = fetch(&pod, 1, TOKEN, TIMEOUT_MS, NULL);
        assert_int_equal(n_ok(answer), 1);
        e = check_pod(answer, 0, &pod, NULL);
        assert_string_equal(status_name(e), "locked");
        json_decref(answer);
        assert_true(s.had_auth);
        assert_string_equal(s.auth, "Bearer " TOKEN);

        answer = fetch(&pod, 1, NULL, TIMEOUT_MS, NULL);
        assert_int_equal(n_ok(answer), 0);
        e = check_pod(answer, 0, &pod, "HTTP 401");
        assert_string_equal(json_string_value(json_object_get(json_object_get(e, "status"),
                                                              "error")), "unauthorized");
        json_decref(answer);
        assert_false(s.had_auth);
        assert_int_equal(s.requests, 2);

        /* A token that would write its own header line is refused, nobody is asked. */
        answer = NULL;
        assert_int_equal(api_pod_status_fetch(&pod, 1, TOKEN "\r\nX-Evil: 1", TIMEOUT_MS,
                                              &answer), -EINVAL);
        assert_null(answer);
        assert_int_equal(s.requests, 2);

        stand_stop(&s);
}

/* Three stand-ins that take 400 ms each all answer within 1000 ms: asked at once. */
static void test_parallel(void **state) {
        Stand s[3] = {
                { .body = "{\"name\":\"p0\"}", .delay_ms = 400 },
                { .body = "{\"name\":\"p1\"}", .delay_ms = 400 },
                { .body = "{\"name\":\"p2\"}", .delay_ms = 400 },
        };
        ApiPod pods[3];
        json_t *answer;
        uint64_t took;

        for (size_t i = 0; i < 3; i++) {
                char name[8];

                stand_start(&s[i]);
                (void) snprintf(name, sizeof(name), "p%zu", i);
                pod_set(&pods[i], name, s[i].port);
        }
        answer = fetch(pods, 3, NULL, 1000, &took);
        for (size_t i = 0; i < 3; i++)
                assert_string_equal(status_name(check_pod(answer, i, &pods[i], NULL)),
                                    pods[i].name);
        assert_int_equal(n_ok(answer), 3);
        assert_true(took >= 400u * 1000u);
        assert_true(took < 1000u * 1000u);
        json_decref(answer);
        for (size_t i = 0; i < 3; i++)
                stand_stop(&s[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_two_good_pods),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_503_keeps_status),
                cmocka_unit_test(test_not_json),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_connection_refused),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_no_endpoint),
                cmocka_unit_test(test_token),
                cmocka_unit_test(test_parallel),
        };

        return cmocka_run_group_tests_name("api-pod-status (stand-ins for the controller's "
                                           "GET /api/v1/pod)", tests, NULL, NULL);
}
