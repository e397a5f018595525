/* SPDX-License-Identifier: MIT */
/*
 * test-api-scatter.c - scatter-gather (frontend-api/scatter.h) against two REAL mediator
 * query services on loopback TCP (flow stores and rollups with known records), an endpoint
 * where nothing listens, and fake pods (a ROUTER in a test thread) that answer late, answer
 * garbage, answer with a foreign id or answer too much. Timing assertions only bound from
 * above, generously (deadline + 500 ms), so a loaded machine or valgrind does not flake.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
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
#include <zmq.h>

#include "free-port.h"
#include "log.h"
#include "query.h"
#include "podset.h"
#include "scatter.h"

#define N_A 300u        /* records on pod A */
#define N_B 120u        /* records on pod B */
#define SLACK_US (500u * 1000u)

typedef struct Pod {
        FlowStore *store;
        Rollup *rollup;
        QueryService *service;
        char endpoint[64];
        unsigned udp;   /* records with proto 17 */
} Pod;

typedef struct World {
        void *zctx;
        Pod pods[2];
        uint64_t now_ms;
} World;

static World world;

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
                r->end_ms = world.now_ms - 120000 + (uint64_t) i * 100;
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
                p->udp += r->proto == 17;
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

static int group_setup(void **state) {
        world.zctx = zmq_ctx_new();
        assert_non_null(world.zctx);
        world.now_ms = now_realtime_ms();
        fill_pod(&world.pods[0], N_A, 1);
        fill_pod(&world.pods[1], N_B, 2);
        start_service(&world.pods[0], "pod-a");
        start_service(&world.pods[1], "pod-b");
        return 0;
}

static int group_teardown(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(world.pods); i++) {
                query_service_free(world.pods[i].service);
                flow_store_free(world.pods[i].store);
                rollup_free(world.pods[i].rollup);
        }
        (void) zmq_ctx_term(world.zctx);
        return 0;
}

static ApiPod mkpod(const char *name, const char *endpoint) {
        ApiPod p = {};
        (void) snprintf(p.name, sizeof(p.name), "%s", name);
        (void) snprintf(p.endpoint, sizeof(p.endpoint), "%s", endpoint);
        return p;
}

static json_t *req(const char *text) {
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        if (!j)
                fail_msg("bad test request %s: %s", text, jerr.text);
        return j;
}

/* One shared request to every pod; the caller clears @res. */
static void query1(ApiScatter *s, const char *text, uint64_t deadline_ms, ApiScatterResult *res) {
        json_t *r = req(text);
        assert_int_equal(api_scatter_query(s, &r, 1, deadline_ms, res), 0);
        json_decref(r);
}

static const ApiScatterAnswer *answer_of(const ApiScatterResult *res, const char *pod) {
        for (size_t i = 0; i < res->n_pods; i++)
                if (strcmp(res->pods[i].pod, pod) == 0)
                        return &res->pods[i];
        fail_msg("no answer slot for %s", pod);
        return NULL;
}

static void assert_status(const ApiScatterResult *res, const char *pod, ApiPodStatus st) {
        const ApiScatterAnswer *a = answer_of(res, pod);
        if (a->status != st)
                fail_msg("pod %s: status '%s', expected '%s'", pod,
                         api_pod_status_to_string(a->status), api_pod_status_to_string(st));
        assert_true((a->answer != NULL) == (st == API_POD_OK));
}

static ApiScatter *new_scatter(void) {
        ApiScatter *s = NULL;
        assert_int_equal(api_scatter_new(&s, world.zctx), 0);
        return s;
}

static void set_real_pods(ApiScatter *s) {
        ApiPod pods[2] = {
                mkpod("pod-a", world.pods[0].endpoint),
                mkpod("pod-b", world.pods[1].endpoint),
        };
        assert_true(api_scatter_set_pods(s, pods, 2) >= 0);
}

/* ---- fake pods ---- */

typedef enum FakeMode {
        FAKE_SLOW,              /* echoes the id, after delay_ms; "n" counts requests */
        FAKE_GARBAGE,           /* "this is not json" */
        FAKE_WRONG_ID,          /* a valid answer with someone else's id */
        FAKE_MULTIPART,         /* the answer in two frames */
        FAKE_BIG,               /* a valid answer padded to big_bytes */
} FakeMode;

typedef struct FakePod {
        void *router;
        char endpoint[64];
        FakeMode mode;
        unsigned delay_ms;
        size_t big_bytes;
        int stop;               /* atomic */
        unsigned served;        /* atomic */
        pthread_t thread;
} FakePod;

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void fake_answer(FakePod *f, zmq_msg_t *ident, const char *request) {
        json_t *rq = json_loads(request, 0, NULL), *ans;
        unsigned n = __atomic_add_fetch(&f->served, 1, __ATOMIC_SEQ_CST);
        char *text = NULL;

        ans = json_pack("{s:i, s:O?, s:s, s:s, s:b, s:i}", "v", 1, "id", json_object_get(rq, "id"),
                        "pod", "fake", "op", "ping", "ok", 1, "n", (int) n);
        assert_non_null(ans);
        if (f->mode == FAKE_WRONG_ID)
                (void) json_object_set_new(ans, "id", json_string("0123456789abcdef-999999"));
        if (f->mode == FAKE_BIG) {
                char *pad = malloc(f->big_bytes + 1);
                assert_non_null(pad);
                memset(pad, 'x', f->big_bytes);
                pad[f->big_bytes] = '\0';
                (void) json_object_set_new(ans, "pad", json_string(pad));
                free(pad);
        }
        text = f->mode == FAKE_GARBAGE ? strdup("this is not json") : json_dumps(ans, JSON_COMPACT);
        assert_non_null(text);
        for (unsigned waited = 0; waited < f->delay_ms && !__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST);
             waited += 10)
                sleep_ms(10);
        (void) zmq_send(f->router, zmq_msg_data(ident), zmq_msg_size(ident), ZMQ_SNDMORE);
        if (f->mode == FAKE_MULTIPART) {
                (void) zmq_send(f->router, "{", 1, ZMQ_SNDMORE);
                (void) zmq_send(f->router, text, strlen(text), 0);
        } else
                (void) zmq_send(f->router, text, strlen(text), 0);
        free(text);
        json_decref(ans);
        json_decref(rq);
}

static void *fake_thread(void *userdata) {
        FakePod *f = userdata;
        zmq_pollitem_t it = { .socket = f->router, .events = ZMQ_POLLIN };

        while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
                zmq_msg_t ident, body;
                char *request;

                if (zmq_poll(&it, 1, 20) <= 0)
                        continue;
                zmq_msg_init(&ident);
                zmq_msg_init(&body);
                if (zmq_msg_recv(&ident, f->router, 0) >= 0 &&
                    zmq_msg_recv(&body, f->router, 0) >= 0) {
                        request = strndup(zmq_msg_data(&body), zmq_msg_size(&body));
                        assert_non_null(request);
                        fake_answer(f, &ident, request);
                        free(request);
                }
                zmq_msg_close(&ident);
                zmq_msg_close(&body);
        }
        return NULL;
}

static FakePod *fake_start(FakeMode mode, unsigned delay_ms) {
        FakePod *f = calloc(1, sizeof(*f));
        size_t len;
        int linger = 0;

        assert_non_null(f);
        f->mode = mode;
        f->delay_ms = delay_ms;
        f->big_bytes = 64 * 1024;
        f->router = zmq_socket(world.zctx, ZMQ_ROUTER);
        assert_non_null(f->router);
        (void) zmq_setsockopt(f->router, ZMQ_LINGER, &linger, sizeof(linger));
        assert_int_equal(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
        len = sizeof(f->endpoint);
        assert_int_equal(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
        assert_int_equal(pthread_create(&f->thread, NULL, fake_thread, f), 0);
        return f;
}

static void fake_stop(FakePod *f) {
        __atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        (void) zmq_close(f->router);
        free(f);
}

/* ---- tests ---- */

static void test_two_real_pods(void **state) {
        ApiScatter *s = new_scatter();
        ApiScatterResult res = {};
        ApiScatterStats st;
        char text[256];

        set_real_pods(s);

        query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
        assert_int_equal(res.n_pods, 2);
        assert_int_equal(res.n_ok, 2);
        assert_status(&res, "pod-a", API_POD_OK);
        assert_status(&res, "pod-b", API_POD_OK);
        assert_string_equal(json_string_value(json_object_get(res.pods[0].answer, "pod")), "pod-a");
        assert_string_equal(json_string_value(json_object_get(res.pods[1].answer, "pod")), "pod-b");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(res.pods[0].answer,
                                                                            "store"), "records")),
                         N_A);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(res.pods[1].answer,
                                                                            "store"), "records")),
                         N_B);
        api_scatter_result_clear(&res);
        assert_null(res.pods);

        /* flows: every record, then a filter */
        query1(s, "{\"v\":1,\"op\":\"flows\",\"limit\":10000}", 5000, &res);
        assert_int_equal(res.n_ok, 2);
        assert_int_equal(json_integer_value(json_object_get(res.pods[0].answer, "count")), N_A);
        assert_int_equal(json_integer_value(json_object_get(res.pods[1].answer, "count")), N_B);
        assert_int_equal(json_array_size(json_object_get(res.pods[0].answer, "flows")), N_A);
        api_scatter_result_clear(&res);
        query1(s, "{\"v\":1,\"op\":\"flows\",\"filter\":\"proto == udp\",\"limit\":10000}", 5000,
               &res);
        assert_int_equal(json_integer_value(json_object_get(res.pods[0].answer, "count")),
                         world.pods[0].udp);
        assert_int_equal(json_integer_value(json_object_get(res.pods[1].answer, "count")),
                         world.pods[1].udp);
        api_scatter_result_clear(&res);

        /* top: the totals of each pod's window are its records */
        (void) snprintf(text, sizeof(text),
                        "{\"v\":1,\"op\":\"top\",\"dim\":\"proto\",\"from_ms\":%" PRIu64
                        ",\"to_ms\":%" PRIu64 "}",
                        world.now_ms - 3600000, world.now_ms + 60000);
        query1(s, text, 5000, &res);
        assert_int_equal(res.n_ok, 2);
        for (size_t i = 0; i < 2; i++) {
                json_t *a = res.pods[i].answer, *entries = json_object_get(a, "entries");
                assert_true(json_is_true(json_object_get(a, "ok")));
                assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "totals"),
                                                                    "flows")),
                                 i == 0 ? N_A : N_B);
                assert_int_equal(json_array_size(entries), 2);  /* tcp and udp */
                assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0),
                                                                      "key")), "6");
        }
        api_scatter_result_clear(&res);

        /* one request per pod; NULL leaves a pod out; the caller's objects stay as they were */
        {
                json_t *reqs[2] = { req("{\"v\":1,\"op\":\"flows\",\"limit\":5,\"id\":\"mine\"}"),
                                    NULL };
                assert_int_equal(api_scatter_query(s, reqs, 2, 5000, &res), 0);
                assert_status(&res, "pod-a", API_POD_OK);
                assert_status(&res, "pod-b", API_POD_NOT_ASKED);
                assert_int_equal(res.n_ok, 1);
                assert_int_equal(json_integer_value(json_object_get(res.pods[0].answer, "count")), 5);
                /* the id on the wire is scatter's, the caller's object keeps its own */
                assert_string_not_equal(json_string_value(json_object_get(res.pods[0].answer, "id")),
                                        "mine");
                assert_string_equal(json_string_value(json_object_get(reqs[0], "id")), "mine");
                api_scatter_result_clear(&res);
                json_decref(reqs[0]);
        }

        /* an error answer is still an answer */
        query1(s, "{\"v\":1,\"op\":\"nope\"}", 5000, &res);
        assert_int_equal(res.n_ok, 2);
        assert_true(json_is_false(json_object_get(res.pods[0].answer, "ok")));
        api_scatter_result_clear(&res);

        api_scatter_get_stats(s, &st);
        assert_int_equal(st.queries, 6);
        assert_int_equal(st.requests, 11);
        assert_int_equal(st.answers, 11);
        assert_int_equal(st.timeouts + st.stale + st.malformed + st.not_connected, 0);
        api_scatter_free(s);
}

static void test_dead_pod(void **state) {
        ApiScatter *s = new_scatter();
        ApiScatterResult res = {};
        ApiScatterStats st;
        char dead[64];
        uint64_t t0, took;

        (void) snprintf(dead, sizeof(dead), "tcp://127.0.0.1:%u", free_port());
        {
                ApiPod pods[3] = {
                        mkpod("pod-a", world.pods[0].endpoint),
                        mkpod("pod-b", world.pods[1].endpoint),
                        mkpod("dead", dead),
                };
                assert_int_equal(api_scatter_set_pods(s, pods, 3), 1);
        }

        /* Young socket: the send is retried (first connection) until the deadline. */
        t0 = now_usec();
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 800, &res);
        took = now_usec() - t0;
        assert_true(took < 800000u + SLACK_US);
        assert_true(res.took_us <= took);
        assert_status(&res, "pod-a", API_POD_OK);
        assert_status(&res, "pod-b", API_POD_OK);
        assert_status(&res, "dead", API_POD_NOT_CONNECTED);
        assert_int_equal(res.n_ok, 2);
        api_scatter_result_clear(&res);

        /* After the grace period it fails fast: far less than the 5 s deadline. */
        sleep_ms(API_SCATTER_CONNECT_GRACE_MS + 100);
        t0 = now_usec();
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
        took = now_usec() - t0;
        assert_true(took < 2500u * 1000u);
        assert_status(&res, "dead", API_POD_NOT_CONNECTED);
        assert_int_equal(res.n_ok, 2);
        api_scatter_result_clear(&res);

        /* A deadline of 0 returns at once, every asked pod timed out or not connected. */
        t0 = now_usec();
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 0, &res);
        assert_true(now_usec() - t0 < SLACK_US);
        assert_int_equal(res.n_ok, 0);
        assert_status(&res, "pod-a", API_POD_TIMEOUT);
        assert_status(&res, "dead", API_POD_NOT_CONNECTED);
        api_scatter_result_clear(&res);

        /* The late answers of that query are drained and counted as stale by the next one. */
        sleep_ms(200);
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
        assert_int_equal(res.n_ok, 2);
        api_scatter_result_clear(&res);
        api_scatter_get_stats(s, &st);
        assert_int_equal(st.stale, 2);
        assert_int_equal(st.timeouts, 2);
        assert_int_equal(st.not_connected, 4);
        assert_int_equal(st.malformed, 0);
        api_scatter_free(s);
}

static void test_slow_pod_stale_answer(void **state) {
        FakePod *f = fake_start(FAKE_SLOW, 600);
        ApiScatter *s = new_scatter();
        ApiScatterResult res = {};
        ApiScatterStats st;
        uint64_t t0;

        {
                ApiPod pods[2] = { mkpod("pod-a", world.pods[0].endpoint), mkpod("slow", f->endpoint) };
                assert_int_equal(api_scatter_set_pods(s, pods, 2), 1);
        }
        /* Let the connection come up so the request leaves at once. */
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
        assert_status(&res, "slow", API_POD_OK);
        assert_int_equal(json_integer_value(json_object_get(res.pods[1].answer, "n")), 1);
        api_scatter_result_clear(&res);

        /* Query 2 misses the slow pod... */
        t0 = now_usec();
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 200, &res);
        assert_true(now_usec() - t0 < 200000u + SLACK_US);
        assert_status(&res, "pod-a", API_POD_OK);
        assert_status(&res, "slow", API_POD_TIMEOUT);
        assert_true(res.pods[1].latency_us >= 190000u);
        api_scatter_result_clear(&res);

        /* ...and query 3, sent right away, first sees the late answer to query 2 (n == 2),
         * which it must drop, then its own (n == 3). */
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
        assert_status(&res, "slow", API_POD_OK);
        assert_int_equal(json_integer_value(json_object_get(res.pods[1].answer, "n")), 3);
        api_scatter_result_clear(&res);

        api_scatter_get_stats(s, &st);
        assert_int_equal(st.stale, 1);
        assert_int_equal(st.timeouts, 1);
        assert_int_equal(st.malformed, 0);
        api_scatter_free(s);
        fake_stop(f);
}

static void test_malformed_answers(void **state) {
        static const FakeMode modes[] = { FAKE_GARBAGE, FAKE_WRONG_ID, FAKE_MULTIPART };
        FakePod *fakes[ELEMENTSOF(modes)];
        ApiPod pods[ELEMENTSOF(modes) + 1];
        ApiScatter *s = new_scatter();
        ApiScatterResult res = {};
        ApiScatterStats st;
        uint64_t t0;

        pods[0] = mkpod("pod-b", world.pods[1].endpoint);
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                char name[16];
                fakes[i] = fake_start(modes[i], 0);
                (void) snprintf(name, sizeof(name), "bad%zu", i);
                pods[i + 1] = mkpod(name, fakes[i]->endpoint);
        }
        assert_int_equal(api_scatter_set_pods(s, pods, ELEMENTSOF(pods)), 1);
        t0 = now_usec();
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
        /* a malformed answer ends the wait for that pod: no waiting for the deadline */
        assert_true(now_usec() - t0 < 2500u * 1000u);
        assert_status(&res, "pod-b", API_POD_OK);
        assert_status(&res, "bad0", API_POD_MALFORMED);
        assert_status(&res, "bad1", API_POD_MALFORMED);
        assert_status(&res, "bad2", API_POD_MALFORMED);
        assert_string_equal(api_pod_status_to_string(res.pods[1].status), "malformed answer");
        assert_int_equal(res.n_ok, 1);
        api_scatter_result_clear(&res);
        api_scatter_get_stats(s, &st);
        assert_int_equal(st.malformed, 3);
        assert_int_equal(st.stale, 0);
        api_scatter_free(s);
        for (size_t i = 0; i < ELEMENTSOF(modes); i++)
                fake_stop(fakes[i]);
}

static void test_answer_too_large(void **state) {
        FakePod *f = fake_start(FAKE_BIG, 0);
        ApiScatter *s = new_scatter();
        ApiScatterResult res = {};
        ApiPod pods[2];
        uint64_t t0;

        assert_int_equal(api_scatter_set_max_answer(s, 0), -EINVAL);
        assert_int_equal(api_scatter_set_max_answer(s, 16 * 1024), 0);
        pods[0] = mkpod("pod-a", world.pods[0].endpoint);
        pods[1] = mkpod("big", f->endpoint);
        assert_int_equal(api_scatter_set_pods(s, pods, 2), 1);
        /* ZeroMQ drops the connection over the cap; the pod shows as a timeout, and the
         * call keeps to its deadline. */
        t0 = now_usec();
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 800, &res);
        assert_true(now_usec() - t0 < 800000u + SLACK_US);
        assert_status(&res, "pod-a", API_POD_OK);
        assert_true(res.pods[1].status == API_POD_TIMEOUT ||
                    res.pods[1].status == API_POD_NOT_CONNECTED);
        assert_null(res.pods[1].answer);
        api_scatter_result_clear(&res);
        api_scatter_free(s);
        fake_stop(f);
}

static void test_pod_list_change(void **state) {
        FakePod *f = fake_start(FAKE_SLOW, 0);
        ApiScatter *s = new_scatter();
        ApiScatterResult res = {};
        ApiScatterStats st;
        const ApiPod *cur;
        size_t n;
        ApiPod a = mkpod("pod-a", world.pods[0].endpoint), b = mkpod("pod-b", world.pods[1].endpoint),
               fk = mkpod("fake", f->endpoint);

        {
                ApiPod l[2] = { a, b };
                assert_int_equal(api_scatter_set_pods(s, l, 2), 1);
                assert_int_equal(api_scatter_set_pods(s, l, 2), 0);     /* unchanged */
        }
        api_scatter_get_stats(s, &st);
        assert_int_equal(st.reconnects, 2);

        /* drop a, add the fake: only the fake gets a socket */
        {
                ApiPod l[2] = { b, fk };
                assert_int_equal(api_scatter_set_pods(s, l, 2), 1);
        }
        api_scatter_get_stats(s, &st);
        assert_int_equal(st.reconnects, 3);
        cur = api_scatter_get_pods(s, &n);
        assert_int_equal(n, 2);
        assert_string_equal(cur[0].name, "pod-b");
        assert_string_equal(cur[1].name, "fake");
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
        assert_int_equal(res.n_pods, 2);
        assert_int_equal(res.n_ok, 2);
        assert_string_equal(res.pods[0].pod, "pod-b");
        assert_string_equal(json_string_value(json_object_get(res.pods[1].answer, "pod")), "fake");
        api_scatter_result_clear(&res);

        /* same name, new endpoint: reconnects; reordering alone does not */
        {
                ApiPod moved = mkpod("pod-b", world.pods[0].endpoint), l[2] = { fk, moved };
                assert_int_equal(api_scatter_set_pods(s, l, 2), 1);
                api_scatter_get_stats(s, &st);
                assert_int_equal(st.reconnects, 4);
                query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
                assert_int_equal(res.n_ok, 2);
                /* pod-b's slot now answers from the service that calls itself pod-a */
                assert_string_equal(res.pods[1].pod, "pod-b");
                assert_string_equal(json_string_value(json_object_get(res.pods[1].answer, "pod")),
                                    "pod-a");
                api_scatter_result_clear(&res);
                ApiPod l2[2] = { moved, fk };
                assert_int_equal(api_scatter_set_pods(s, l2, 2), 1);
                api_scatter_get_stats(s, &st);
                assert_int_equal(st.reconnects, 4);
        }

        /* invalid lists change nothing */
        {
                ApiPod bad[2] = { a, mkpod("pod-a", world.pods[1].endpoint) };
                assert_int_equal(api_scatter_set_pods(s, bad, 2), -EINVAL);     /* duplicate */
                bad[1] = mkpod("pod b", world.pods[1].endpoint);
                assert_int_equal(api_scatter_set_pods(s, bad, 2), -EINVAL);
                bad[1] = mkpod("", world.pods[1].endpoint);
                assert_int_equal(api_scatter_set_pods(s, bad, 2), -EINVAL);
                bad[1] = mkpod("x", "udp://127.0.0.1:1");
                assert_int_equal(api_scatter_set_pods(s, bad, 2), -EINVAL);
                bad[1] = mkpod("x", "tcp://127.0.0.1");
                assert_int_equal(api_scatter_set_pods(s, bad, 2), -EINVAL);
                bad[1] = mkpod("x", "tcp://127.0.0.1:70000");
                assert_int_equal(api_scatter_set_pods(s, bad, 2), -EINVAL);
                assert_int_equal(api_scatter_set_pods(s, bad, API_SCATTER_MAX_PODS + 1), -EINVAL);
                cur = api_scatter_get_pods(s, &n);
                assert_int_equal(n, 2);
                assert_string_equal(cur[0].name, "pod-b");
        }

        /* empty list: a query is an empty success */
        assert_int_equal(api_scatter_set_pods(s, NULL, 0), 1);
        query1(s, "{\"v\":1,\"op\":\"ping\"}", 5000, &res);
        assert_int_equal(res.n_pods, 0);
        assert_null(res.pods);
        api_scatter_result_clear(&res);

        api_scatter_free(s);
        fake_stop(f);
}

static void test_bad_requests(void **state) {
        ApiScatter *s = new_scatter();
        ApiScatterResult res = { .n_ok = 77 };
        json_t *arr = json_array(), *obj = req("{\"v\":1,\"op\":\"flows\"}"), *three[3] = { obj, obj,
                                                                                           obj };
        json_t *big = json_object();
        char *pad = malloc(API_SCATTER_MAX_REQUEST + 1);

        set_real_pods(s);
        assert_int_equal(api_scatter_query(s, three, 3, 1000, &res), -EINVAL);
        assert_int_equal(api_scatter_query(s, &arr, 1, 1000, &res), -EINVAL);
        {
                json_t *none = NULL;
                assert_int_equal(api_scatter_query(s, &none, 1, 1000, &res), -EINVAL);
        }
        assert_non_null(pad);
        memset(pad, 'f', API_SCATTER_MAX_REQUEST);
        pad[API_SCATTER_MAX_REQUEST] = '\0';
        assert_int_equal(json_object_set_new(big, "filter", json_string(pad)), 0);
        assert_int_equal(api_scatter_query(s, &big, 1, 1000, &res), -E2BIG);
        assert_int_equal(res.n_ok, 77);         /* untouched on failure */
        {
                ApiScatterStats st;
                api_scatter_get_stats(s, &st);
                assert_int_equal(st.queries, 0);
                assert_int_equal(st.requests, 0);
        }
        free(pad);
        json_decref(big);
        json_decref(arr);
        json_decref(obj);
        assert_int_equal(api_scatter_new(&s, NULL) == -EINVAL, 1);
        api_scatter_free(s);
}

static void test_resolve(void **state) {
        ApiPod *pods = NULL;
        size_t n = 0;
        bool v4 = false;

        assert_int_equal(api_pods_resolve("a=tcp://127.0.0.1:9300,b.2_x-y=tcp://[::1]:9301",
                                          NULL, &pods, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(pods[0].name, "a");
        assert_string_equal(pods[0].endpoint, "tcp://127.0.0.1:9300");
        assert_string_equal(pods[0].feed, "");
        assert_string_equal(pods[0].http, "");
        assert_string_equal(pods[1].name, "b.2_x-y");
        assert_string_equal(pods[1].endpoint, "tcp://[::1]:9301");
        free(pods);

        /* the feed and http ports: defaults, per-pod overrides, 0 for none */
        assert_int_equal(api_pods_resolve("a=tcp://127.0.0.1:9300;feed=7101;http=7102,"
                                          "b=tcp://[::1]:9301;http=0,c=tcp://h.example:1",
                                          &(ApiPodPorts) { .feed = 9301, .http = 8081 },
                                          &pods, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(pods[0].endpoint, "tcp://127.0.0.1:9300");
        assert_string_equal(pods[0].feed, "tcp://127.0.0.1:7101");
        assert_string_equal(pods[0].http, "http://127.0.0.1:7102");
        assert_string_equal(pods[1].endpoint, "tcp://[::1]:9301");
        assert_string_equal(pods[1].feed, "tcp://[::1]:9301");
        assert_string_equal(pods[1].http, "");
        assert_string_equal(pods[2].feed, "tcp://h.example:9301");
        assert_string_equal(pods[2].http, "http://h.example:8081");
        free(pods);
        assert_int_equal(api_pods_resolve("one=tcp://mediator-0.mediator:9300", NULL, &pods, &n), 0);
        assert_int_equal(n, 1);
        free(pods);

        static const char *const bad[] = {
                "", "a", "a=", "=tcp://1.2.3.4:5", "a=tcp://1.2.3.4:5,", "a=tcp://1.2.3.4:5,,",
                "a=tcp://1.2.3.4", "a=tcp://1.2.3.4:0", "a=http://1.2.3.4:5",
                "a=tcp://1.2.3.4:5,a=tcp://1.2.3.4:6", "a b=tcp://1.2.3.4:5",
                "a=tcp://[::1:5", "a=tcp://:5", "dns:", "dns:localhost", "dns::9300",
                "dns:localhost:x", "dns:localhost:65536", "a=tcp://1.2.3.4:5;",
                "a=tcp://1.2.3.4:5;feed", "a=tcp://1.2.3.4:5;feed=", "a=tcp://1.2.3.4:5;feed=x",
                "a=tcp://1.2.3.4:5;feed=65536", "a=tcp://1.2.3.4:5;web=1",
                "a=tcp://1.2.3.4:5;feed=1;", "a=tcp://1.2.3.4:5;;feed=1",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                pods = NULL;
                if (api_pods_resolve(bad[i], NULL, &pods, &n) != -EINVAL)
                        fail_msg("'%s' was accepted", bad[i]);
                assert_null(pods);
        }

        assert_int_equal(api_pods_resolve("dns:localhost:9300", NULL, &pods, &n), 0);
        assert_true(n >= 1);
        for (size_t i = 0; i < n; i++) {
                assert_true(api_pod_name_is_valid(pods[i].name));
                if (strcmp(pods[i].name, "127.0.0.1") == 0) {
                        assert_string_equal(pods[i].endpoint, "tcp://127.0.0.1:9300");
                        assert_string_equal(pods[i].http, "");
                        v4 = true;
                }
                if (strcmp(pods[i].name, "--1") == 0)
                        assert_string_equal(pods[i].endpoint, "tcp://[::1]:9300");
                if (i > 0)
                        assert_true(strcmp(pods[i - 1].name, pods[i].name) < 0);
        }
        assert_true(v4);
        /* what discovery returns, scatter accepts */
        {
                ApiScatter *s = new_scatter();
                assert_int_equal(api_scatter_set_pods(s, pods, n), 1);
                api_scatter_free(s);
        }
        free(pods);
        assert_int_equal(api_pods_resolve("dns:no-such-host.invalid:9300", NULL, &pods, &n) < 0, 1);
}

/* The pod directory: publication only on change, generations, counters carried over. */
static void test_pod_dir(void **state) {
        ApiPodDir *d = NULL;
        ApiPodSet *s0, *s1, *s2;
        ApiPod pods[2] = {
                { .name = "a", .endpoint = "tcp://127.0.0.1:1", .feed = "tcp://127.0.0.1:2" },
                { .name = "b", .endpoint = "tcp://127.0.0.1:3" },
        };

        assert_int_equal(api_pod_dir_new(&d), 0);
        assert_int_equal(api_pod_dir_generation(d), 0);
        s0 = api_pod_dir_get(d);
        assert_int_equal(s0->n, 0);
        assert_int_equal(api_pod_dir_publish(d, pods, 2), 1);
        assert_int_equal(api_pod_dir_generation(d), 1);
        assert_int_equal(api_pod_dir_publish(d, pods, 2), 0);      /* unchanged */
        assert_int_equal(api_pod_dir_generation(d), 1);
        s1 = api_pod_dir_get(d);
        assert_int_equal(s1->n, 2);
        atomic_store(&s1->timeouts[1], 7);
        /* a changed feed endpoint is a change; b keeps its counter, the new pod starts at 0 */
        pods[0] = (ApiPod) { .name = "c", .endpoint = "tcp://127.0.0.1:5" };
        assert_int_equal(api_pod_dir_publish(d, pods, 2), 1);
        s2 = api_pod_dir_get(d);
        assert_int_equal(s2->generation, 2);
        assert_string_equal(s2->pods[0].name, "c");
        assert_int_equal(atomic_load(&s2->timeouts[0]), 0);
        assert_int_equal(atomic_load(&s2->timeouts[1]), 7);
        /* old snapshots stay valid while referenced */
        assert_string_equal(s1->pods[0].name, "a");
        assert_int_equal(s0->n, 0);
        pods[1].http[0] = 'h';
        assert_int_equal(api_pod_dir_publish(d, pods, 2), 1);
        assert_int_equal(api_pod_dir_publish(d, NULL, 0), 1);
        assert_int_equal(api_pod_dir_generation(d), 4);
        api_pod_set_unref(s0);
        api_pod_set_unref(s1);
        api_pod_set_unref(s2);
        api_pod_dir_free(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pod_dir),
                cmocka_unit_test(test_two_real_pods),
                cmocka_unit_test(test_dead_pod),
                cmocka_unit_test(test_slow_pod_stale_answer),
                cmocka_unit_test(test_malformed_answers),
                cmocka_unit_test(test_answer_too_large),
                cmocka_unit_test(test_pod_list_change),
                cmocka_unit_test(test_bad_requests),
                cmocka_unit_test(test_resolve),
        };
        return cmocka_run_group_tests_name("api-scatter", tests, group_setup, group_teardown);
}
