/* SPDX-License-Identifier: MIT */
/*
 * test-pipeline.c - pipeline configuration errors (each names its member), the fixed stage
 * order (filter, de-duplication, anonymization, aggregation) and its counters, the sink that
 * feeds the flow store, output reuse by configuration, and mediator_config_parse() over a
 * whole file (duplicate names, store_source, unknown keys).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "mediator-config.h"
#include "pipeline.h"

static void rec(FlowRecord *r, uint8_t proto, uint16_t dport, uint8_t src_last, uint8_t exp_last,
                uint64_t end_ms) {
        uint8_t s[4] = { 10, 1, 2, src_last }, d[4] = { 192, 0, 2, 1 }, e[4] = { 127, 0, 0, exp_last };
        memset(r, 0, sizeof(*r));
        flow_addr_set_v4(r->src_addr, s);
        flow_addr_set_v4(r->dst_addr, d);
        flow_addr_set_v4(r->exporter_addr, e);
        r->family = r->exporter_family = 4;
        r->proto = proto;
        r->dst_port = dport;
        r->src_port = 40000;
        r->start_ms = end_ms - 1000;
        r->end_ms = end_ms;
        r->octets = 1000;
        r->packets = 10;
}

static int parse(const char *text, PipelineConfig **ret, char **err) {
        json_t *j = json_loads(text, 0, NULL);
        int r;
        assert_non_null(j);
        r = pipeline_config_parse(j, ret, err);
        json_decref(j);
        return r;
}

static void expect_error(const char *text, const char *needle) {
        PipelineConfig *c = NULL;
        char *err = NULL;
        assert_int_equal(parse(text, &c, &err), -EINVAL);
        assert_null(c);
        assert_non_null(err);
        if (!strstr(err, needle))
                fail_msg("error '%s' lacks '%s'", err, needle);
        free(err);
}

static void test_config_errors(void **state) {
        expect_error("[]", "object");
        expect_error("{}", "name: missing");
        expect_error("{\"name\":\"a b\"}", "name:");
        expect_error("{\"name\":\"a\",\"color\":1}", "color: unknown key");
        expect_error("{\"name\":\"a\",\"filter\":\"proto ==\"}", "filter: column");
        expect_error("{\"name\":\"a\",\"filter\":5}", "filter: must be a string");
        expect_error("{\"name\":\"a\",\"aggregate\":{\"keys\":[\"nope\"]}}", "aggregate.");
        expect_error("{\"name\":\"a\",\"dedup\":{\"tolerance_ms\":-5}}", "dedup.");
        expect_error("{\"name\":\"a\",\"anonymize\":{\"src_addr\":\"rot13\"}}", "anonymize.");
        expect_error("{\"name\":\"a\",\"outputs\":[{\"type\":\"carrier-pigeon\"}]}", "outputs[0].");
        expect_error("{\"name\":\"a\",\"outputs\":{}}", "outputs: must be an array");
}

typedef struct Sink {
        size_t n;
        uint64_t octets;
        FlowRecord last;
} Sink;

static void sink(void *userdata, const FlowRecord *recs, size_t n) {
        Sink *s = userdata;
        for (size_t i = 0; i < n; i++) {
                s->octets += recs[i].octets;
                s->last = recs[i];
        }
        s->n += n;
}

static void test_stages_and_counters(void **state) {
        PipelineConfig *c = NULL;
        Pipeline *p = NULL;
        PipelineStats st;
        FlowRecord recs[6];
        Sink s = { 0 };
        char *err = NULL;
        uint64_t now = 1800000000000ull;

        assert_int_equal(parse("{\"name\":\"web\",\"filter\":\"proto == tcp and dst_port == 443\","
                               "\"dedup\":{\"tolerance_ms\":2000},"
                               "\"anonymize\":{\"src_addr\":\"truncate\",\"v4_prefix\":24}}",
                               &c, &err), 0);
        assert_int_equal(pipeline_new(&p, c), 0);
        pipeline_set_sink(p, sink, &s);
        rec(&recs[0], 6, 443, 5, 1, now);       /* passes */
        rec(&recs[1], 17, 443, 6, 1, now);      /* filtered: udp */
        rec(&recs[2], 6, 80, 7, 1, now);        /* filtered: port */
        rec(&recs[3], 6, 443, 5, 2, now + 10);  /* duplicate of [0] from exporter .2 */
        rec(&recs[4], 6, 443, 9, 2, now);       /* passes */
        rec(&recs[5], 6, 443, 5, 1, now + 500); /* same exporter again: not a duplicate */
        pipeline_process(p, recs, 6, now);
        pipeline_get_stats(p, &st);
        assert_int_equal(st.in, 6);
        assert_int_equal(st.filtered, 2);
        assert_int_equal(st.duplicates, 1);
        assert_int_equal(st.passed, 3);
        assert_int_equal(st.out, 3);
        assert_int_equal(s.n, 3);
        /* anonymized after the copy: the caller's records are untouched */
        assert_int_equal(recs[5].src_addr[15], 5);
        assert_int_equal(s.last.src_addr[15], 0);
        assert_int_equal(s.last.src_addr[14], 2);
        pipeline_free(p, 0);
}

static void test_aggregation_conserves(void **state) {
        PipelineConfig *c = NULL;
        Pipeline *p = NULL;
        PipelineStats st;
        FlowRecord recs[100];
        Sink s = { 0 };
        char *err = NULL;
        uint64_t now = 1800000000000ull;

        assert_int_equal(parse("{\"name\":\"agg\",\"aggregate\":{\"keys\":[\"proto\"],"
                               "\"window_s\":60}}", &c, &err), 0);
        assert_int_equal(pipeline_new(&p, c), 0);
        pipeline_set_sink(p, sink, &s);
        for (int i = 0; i < 100; i++)
                rec(&recs[i], (uint8_t) (i % 2 ? 6 : 17), 443, (uint8_t) i, 1, now);
        pipeline_process(p, recs, 100, now);
        assert_int_equal(s.n, 0);               /* the window is still open */
        pipeline_flush(p);
        pipeline_get_stats(p, &st);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.octets, 100000);
        assert_int_equal(st.aggregated, 100);
        assert_int_equal(st.out, 2);
        pipeline_free(p, 0);
}

static void test_output_reuse_by_config(void **state) {
        char dir[] = "/tmp/ipfixd-pipeline.XXXXXX", text[512];
        PipelineConfig *c = NULL;
        Pipeline *p = NULL;
        Output *o = NULL;
        sd_event *e = NULL;
        char *err = NULL;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(sd_event_new(&e), 0);
        (void) snprintf(text, sizeof(text),
                        "{\"name\":\"j\",\"outputs\":[{\"type\":\"json\",\"path\":\"%s/a\"}]}", dir);
        assert_int_equal(parse(text, &c, &err), 0);
        assert_int_equal(c->n_outputs, 1);
        assert_int_equal(pipeline_new(&p, c), 0);
        assert_int_equal(output_new(&o, pipeline_config(p)->outputs[0], e, NULL, "j", &err), 0);
        assert_int_equal(pipeline_attach_output(p, o), 0);
        assert_int_equal(pipeline_n_outputs(p), 1);
        /* detaching by an equal configuration hands the same output back */
        assert_ptr_equal(pipeline_detach_output(p, pipeline_config(p)->outputs[0]), o);
        assert_int_equal(pipeline_n_outputs(p), 0);
        assert_int_equal(pipeline_attach_output(p, o), 0);
        pipeline_free(p, 0);
        sd_event_unref(e);
        {
                char cmd[600];
                (void) snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
                assert_int_equal(system(cmd), 0);
        }
}

static void expect_mediator_error(const char *text, const char *needle) {
        MediatorConfig m;
        char *err = NULL;
        assert_int_equal(mediator_config_parse(text, false, &m, &err), -EINVAL);
        if (!err || !strstr(err, needle))
                fail_msg("error '%s' lacks '%s'", err ? err : "(none)", needle);
        free(err);
        mediator_config_done(&m);
}

static void test_mediator_config(void **state) {
        MediatorConfig m;
        char *err = NULL;

        assert_int_equal(mediator_config_parse("{\"pipelines\":[{\"name\":\"a\"},{\"name\":\"b\","
                                               "\"filter\":\"port == 53\"}],\"store_source\":\"b\"}",
                                               false, &m, &err), 0);
        assert_int_equal(m.n_pipelines, 2);
        assert_non_null(mediator_config_pipeline(&m, "b"));
        assert_null(mediator_config_pipeline(&m, "c"));
        assert_string_equal(m.input, "ipc:///tmp/ipfixd-flows.sock");
        mediator_config_done(&m);

        expect_mediator_error("{\"pipelines\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", "used twice");
        expect_mediator_error("{\"store_source\":\"zzz\"}", "store_source");
        expect_mediator_error("{\"pipelines\":[{\"name\":\"a\",\"filter\":\"(\"}]}",
                              "pipelines[0] (a).filter: column");
        expect_mediator_error("{\"input\":\"udp://x\"}", "input:");
        expect_mediator_error("{\"inptu\":\"x\"}", "inptu");
        expect_mediator_error("{\"store_max_flows\":-1}", "store_max_flows");
        expect_mediator_error("[1]", "object");
        expect_mediator_error("{\"a\":", "line 1");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_stages_and_counters),
                cmocka_unit_test(test_aggregation_conserves),
                cmocka_unit_test(test_output_reuse_by_config),
                cmocka_unit_test(test_mediator_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
