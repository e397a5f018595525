/* SPDX-License-Identifier: MIT */
/*
 * test-query.c - the query protocol (query_handle()) over a real flow store and rollup:
 * every operation's answer against a brute-force count of the same records, cursor paging
 * without gaps or repeats, the error codes (malformed JSON, wrong version, unknown op, bad
 * filter with its column, bad members, limits), and the ROUTER service end to end through a
 * DEALER socket on inproc.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <zmq.h>

#include "query.h"

#define N 20000
#define NOW_MS UINT64_C(1800000000000)

typedef struct Fixture {
        FlowStore *store;
        Rollup *rollup;
        QueryContext ctx;
        FlowRecord recs[N];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        FlowStoreConfig sc = { .max_flows = 100000, .segment_flows = 4096 };
        RollupConfig rc;

        assert_non_null(f);
        assert_int_equal(flow_store_new(&f->store, &sc), 0);
        rollup_config_default(&rc);
        assert_int_equal(rollup_new(&f->rollup, &rc), 0);
        srand(7);
        for (unsigned i = 0; i < N; i++) {
                FlowRecord *r = &f->recs[i];
                uint8_t s[4] = { 10, 0, (uint8_t) (i % 7), (uint8_t) (i % 251) };
                uint8_t d[4] = { 192, 0, 2, (uint8_t) (i % 5) };
                uint8_t e[4] = { 127, 0, 0, (uint8_t) (1 + i % 2) };
                r->end_ms = NOW_MS - 600000 + (uint64_t) i * 25;        /* 10 minutes */
                r->start_ms = r->end_ms - (uint64_t) (rand() % 5000);
                r->octets = 100 + (uint64_t) (rand() % 5000);
                r->packets = 1 + (uint64_t) (rand() % 10);
                flow_addr_set_v4(r->src_addr, s);
                flow_addr_set_v4(r->dst_addr, d);
                flow_addr_set_v4(r->exporter_addr, e);
                r->family = r->exporter_family = 4;
                r->odid = 1;
                r->proto = (uint8_t) ((i % 3 == 0) ? 17 : 6);
                r->src_port = (uint16_t) (1024 + i % 1000);
                r->dst_port = (uint16_t) ((i % 4 == 0) ? 53 : 443);
        }
        flow_store_append(f->store, f->recs, N);
        rollup_add(f->rollup, f->recs, N, NOW_MS);
        f->ctx = (QueryContext) {
                .pod = "pod-0", .store = f->store, .rollup = f->rollup,
                .limits = { .max_limit = 10000, .max_scan = 0, .timeout_ms = 5000 },
        };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        flow_store_free(f->store);
        rollup_free(f->rollup);
        free(f);
        return 0;
}

/* Runs @req; returns the parsed answer (caller decrefs). */
static json_t *ask(const Fixture *f, const char *req) {
        char *answer = NULL;
        json_error_t jerr;
        json_t *j;

        assert_int_equal(query_handle(&f->ctx, req, strlen(req), &answer, NULL, NULL, NULL), 0);
        j = json_loads(answer, 0, &jerr);
        if (!j)
                fail_msg("answer is not JSON (%s): %.200s", jerr.text, answer);
        free(answer);
        return j;
}

static void assert_error(const Fixture *f, const char *req, const char *code, const char *needle) {
        json_t *j = ask(f, req);
        json_t *e = json_object_get(j, "error");
        assert_true(json_is_false(json_object_get(j, "ok")));
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
        if (needle && !strstr(json_string_value(json_object_get(e, "message")), needle))
                fail_msg("message '%s' lacks '%s'", json_string_value(json_object_get(e, "message")),
                         needle);
        assert_int_equal(json_integer_value(json_object_get(j, "v")), 1);
        json_decref(j);
}

static void test_errors(void **state) {
        Fixture *f = *state;

        assert_error(f, "not json", "bad_request", "JSON");
        assert_error(f, "[1,2]", "bad_request", "object");
        assert_error(f, "{\"op\":\"ping\"}", "unsupported_version", "version 1");
        assert_error(f, "{\"v\":2,\"op\":\"ping\"}", "unsupported_version", NULL);
        assert_error(f, "{\"v\":1,\"op\":\"drop\"}", "bad_request", "op:");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"filter\":\"proto == \"}", "bad_request",
                     "filter: column");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"filter\":7}", "bad_request", "filter:");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"limit\":0}", "bad_request", "limit");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"limit\":10001}", "bad_request", "limit");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"limit\":-1}", "bad_request", "limit");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"timeout_ms\":0}", "bad_request",
                     "timeout_ms");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"timeout_ms\":-5}", "bad_request",
                     "timeout_ms");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"timeout_ms\":\"1s\"}", "bad_request",
                     "timeout_ms");
        /* the asker's budget is accepted, and clamped to query_timeout_ms when larger */
        {
                json_t *j = ask(f, "{\"v\":1,\"op\":\"flows\",\"timeout_ms\":99999999,\"limit\":3}");
                assert_true(json_is_true(json_object_get(j, "ok")));
                assert_int_equal(json_array_size(json_object_get(j, "flows")), 3);
                json_decref(j);
        }
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"cursor\":\"12\"}", "bad_request", "cursor");
        assert_error(f, "{\"v\":1,\"op\":\"flows\",\"from_ms\":5,\"to_ms\":5}", "bad_request",
                     "from_ms");
        assert_error(f, "{\"v\":1,\"op\":\"top\",\"dim\":\"color\"}", "bad_request", "dim:");
        assert_error(f, "{\"v\":1,\"op\":\"top\",\"dim\":\"proto\",\"metric\":\"bits\"}",
                     "bad_request", "metric:");
        assert_error(f, "{\"v\":1,\"op\":\"totals\",\"step_s\":61}", "bad_request", "step_s");
        /* the id is echoed in errors too */
        {
                json_t *j = ask(f, "{\"v\":1,\"id\":{\"n\":5},\"op\":\"nope\"}");
                assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "id"), "n")), 5);
                json_decref(j);
        }
}

static void test_flows_match_brute_force(void **state) {
        Fixture *f = *state;
        json_t *j = ask(f, "{\"v\":1,\"id\":\"q\",\"op\":\"flows\",\"filter\":\"proto == udp and "
                           "dst_port == 53\",\"limit\":10000}");
        json_t *flows = json_object_get(j, "flows"), *fl;
        size_t truth = 0, i;

        for (i = 0; i < N; i++)
                truth += f->recs[i].proto == 17 && f->recs[i].dst_port == 53;
        assert_true(json_is_true(json_object_get(j, "ok")));
        assert_string_equal(json_string_value(json_object_get(j, "pod")), "pod-0");
        assert_string_equal(json_string_value(json_object_get(j, "id")), "q");
        assert_int_equal(json_array_size(flows), truth);
        assert_true(json_is_null(json_object_get(j, "next_cursor")));
        json_array_foreach(flows, i, fl) {
                assert_int_equal(json_integer_value(json_object_get(fl, "proto")), 17);
                assert_int_equal(json_integer_value(json_object_get(fl, "dst_port")), 53);
                assert_true(json_is_integer(json_object_get(fl, "seq")));
                if (i > 0) {
                        json_t *p = json_array_get(flows, i - 1);
                        assert_true(json_integer_value(json_object_get(p, "end_ms")) >=
                                    json_integer_value(json_object_get(fl, "end_ms")));
                }
        }
        json_decref(j);
}

static void test_flows_cursor_paging(void **state) {
        Fixture *f = *state;
        char req[256], cursor[64] = "";
        uint8_t *seen = calloc(N, 1);
        size_t total = 0, pages = 0;

        assert_non_null(seen);
        for (;;) {
                json_t *j, *flows, *fl;
                size_t i;
                (void) snprintf(req, sizeof(req),
                                "{\"v\":1,\"op\":\"flows\",\"filter\":\"proto == 6\",\"limit\":997%s%s%s}",
                                *cursor ? ",\"cursor\":\"" : "", cursor, *cursor ? "\"" : "");
                j = ask(f, req);
                flows = json_object_get(j, "flows");
                json_array_foreach(flows, i, fl) {
                        json_int_t seq = json_integer_value(json_object_get(fl, "seq"));
                        assert_true(seq >= 0 && seq < N);
                        assert_int_equal(seen[seq], 0);
                        seen[seq] = 1;
                        total++;
                }
                pages++;
                if (json_is_null(json_object_get(j, "next_cursor"))) {
                        json_decref(j);
                        break;
                }
                (void) snprintf(cursor, sizeof(cursor), "%s",
                                json_string_value(json_object_get(j, "next_cursor")));
                json_decref(j);
                assert_true(pages < 1000);
        }
        {
                size_t truth = 0;
                for (size_t i = 0; i < N; i++)
                        truth += f->recs[i].proto == 6;
                assert_int_equal(total, truth);
                assert_true(pages > 10);
        }
        free(seen);
}

static void test_truncated_by_scan_budget(void **state) {
        Fixture *f = *state;
        QueryContext c = f->ctx;
        char *answer = NULL;
        bool truncated = false;
        /* octets has no index: nothing is pruned, every record must be examined */
        const char *req = "{\"v\":1,\"op\":\"flows\",\"filter\":\"octets == 1\",\"limit\":10}";

        c.limits.max_scan = 100;
        assert_int_equal(query_handle(&c, req, strlen(req), &answer, NULL, &truncated, NULL), 0);
        assert_true(truncated);
        assert_non_null(strstr(answer, "\"truncated\":true"));
        free(answer);
}

static void test_top_and_totals(void **state) {
        Fixture *f = *state;
        char req[256];
        uint64_t by_dst[5] = { 0 }, octets = 0;
        json_t *j, *entries, *e;
        size_t i;

        for (i = 0; i < N; i++) {
                by_dst[f->recs[i].dst_addr[15]] += f->recs[i].octets;
                octets += f->recs[i].octets;
        }
        (void) snprintf(req, sizeof(req),
                        "{\"v\":1,\"op\":\"top\",\"dim\":\"dst_addr\",\"metric\":\"octets\","
                        "\"limit\":3,\"from_ms\":%" PRIu64 ",\"to_ms\":%" PRIu64 "}",
                        NOW_MS - 3600000, NOW_MS + 60000);
        j = ask(f, req);
        entries = json_object_get(j, "entries");
        assert_int_equal(json_array_size(entries), 3);
        json_array_foreach(entries, i, e) {
                const char *key = json_string_value(json_object_get(e, "key"));
                unsigned last = (unsigned) atoi(strrchr(key, '.') + 1);
                assert_true(last < 5);
                assert_int_equal(json_integer_value(json_object_get(e, "octets")), by_dst[last]);
        }
        assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "totals"), "octets")),
                         octets);
        /* entries + other == totals */
        {
                uint64_t sum = 0;
                json_array_foreach(entries, i, e)
                        sum += (uint64_t) json_integer_value(json_object_get(e, "octets"));
                sum += (uint64_t) json_integer_value(json_object_get(json_object_get(j, "other"), "octets"));
                assert_int_equal(sum, octets);
        }
        assert_true(json_is_true(json_object_get(j, "exact")));
        json_decref(j);

        (void) snprintf(req, sizeof(req),
                        "{\"v\":1,\"op\":\"totals\",\"step_s\":300,\"from_ms\":%" PRIu64
                        ",\"to_ms\":%" PRIu64 "}", NOW_MS - 3600000, NOW_MS + 60000);
        j = ask(f, req);
        {
                uint64_t sum = 0;
                json_array_foreach(json_object_get(j, "points"), i, e)
                        sum += (uint64_t) json_integer_value(json_object_get(e, "octets"));
                assert_int_equal(sum, octets);
        }
        json_decref(j);

        j = ask(f, "{\"v\":1,\"op\":\"exporters\"}");
        assert_int_equal(json_array_size(json_object_get(j, "exporters")), 2);
        {
                uint64_t flows = 0;
                json_array_foreach(json_object_get(j, "exporters"), i, e)
                        flows += (uint64_t) json_integer_value(json_object_get(e, "flows"));
                assert_int_equal(flows, N);
        }
        json_decref(j);
}

static void test_service_over_zmq(void **state) {
        Fixture *f = *state;
        void *zctx = zmq_ctx_new(), *dealer;
        QueryService *q = NULL;
        QueryStats st;
        char buf[65536];
        int n, linger = 0, timeout = 5000;

        assert_int_equal(query_service_new(&q, zctx, "inproc://query-test", &f->ctx), 0);
        dealer = zmq_socket(zctx, ZMQ_DEALER);
        (void) zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof(linger));
        (void) zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
        assert_int_equal(zmq_connect(dealer, "inproc://query-test"), 0);
        for (int i = 0; i < 3; i++) {
                const char *req = "{\"v\":1,\"id\":1,\"op\":\"ping\"}";
                assert_int_equal(zmq_send(dealer, req, strlen(req), 0), (int) strlen(req));
                n = zmq_recv(dealer, buf, sizeof(buf) - 1, 0);
                assert_true(n > 0);
                buf[n] = '\0';
                assert_non_null(strstr(buf, "\"ok\":true"));
        }
        assert_int_equal(zmq_send(dealer, "{", 1, 0), 1);
        n = zmq_recv(dealer, buf, sizeof(buf) - 1, 0);
        assert_true(n > 0);
        query_service_get_stats(q, &st);
        assert_int_equal(st.requests[QUERY_OP_PING], 3);
        assert_int_equal(st.bad_requests, 1);
        zmq_close(dealer);
        query_service_free(q);
        zmq_ctx_term(zctx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_flows_match_brute_force),
                cmocka_unit_test(test_flows_cursor_paging),
                cmocka_unit_test(test_truncated_by_scan_budget),
                cmocka_unit_test(test_top_and_totals),
                cmocka_unit_test(test_service_over_zmq),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
