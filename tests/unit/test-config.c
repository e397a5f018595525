/* SPDX-License-Identifier: MIT */
/*
 * test-config.c - the collector's configuration over the common key-table walker: defaults,
 * error messages that name the offending key (scalars, listeners[i].*, JSON syntax with
 * line and column), environment overrides (IPFIXD_COLLECTOR_*) only when asked for, the
 * string form used by config_apply_string, and listener URLs from the command line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "collector-config.h"

typedef struct Fixture {
        CollectorConfig cfg;
        char *err;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        (void) unsetenv("IPFIXD_COLLECTOR_WORKERS");
        (void) unsetenv("IPFIXD_COLLECTOR_LOG_LEVEL");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        collector_config_done(&f->cfg);
        free(f->err);
        free(f);
        (void) unsetenv("IPFIXD_COLLECTOR_WORKERS");
        (void) unsetenv("IPFIXD_COLLECTOR_LOG_LEVEL");
        return 0;
}

/* Parses @json, expects -EINVAL and an error message containing every needle. */
static void expect_error(Fixture *f, const char *json, const char *needle1, const char *needle2) {
        int r;

        collector_config_done(&f->cfg);
        free(f->err);
        f->err = NULL;
        r = collector_config_parse(json, false, &f->cfg, &f->err);
        if (r != -EINVAL)
                fail_msg("'%s': expected -EINVAL, got %d", json, r);
        if (!f->err)
                fail_msg("'%s': no error message", json);
        if (!strstr(f->err, needle1))
                fail_msg("'%s': error '%s' does not mention '%s'", json, f->err, needle1);
        if (needle2 && !strstr(f->err, needle2))
                fail_msg("'%s': error '%s' does not mention '%s'", json, f->err, needle2);
}

static void test_defaults(void **state) {
        Fixture *f = *state;

        assert_int_equal(collector_config_parse(NULL, false, &f->cfg, &f->err), 0);
        assert_null(f->err);
        assert_int_equal(f->cfg.collector_id, 0);
        assert_string_equal(f->cfg.log_level, "info");
        assert_int_equal(f->cfg.workers, 2);
        assert_string_equal(f->cfg.output, "ipc:///tmp/ipfixd-flows.sock");
        assert_int_equal(f->cfg.batch_records, 1024);
        assert_int_equal(f->cfg.max_message_size, 65535);
        assert_int_equal(f->cfg.max_templates, 1024);
        assert_int_equal(f->cfg.udp_rcvbuf, 8 << 20);
        assert_string_equal(f->cfg.template_store, "memory");
        assert_null(f->cfg.metrics_file);
        assert_int_equal(f->cfg.stats_interval_s, 10);
        assert_int_equal(f->cfg.n_listeners, 1);
        assert_int_equal(f->cfg.listeners[0].transport, LISTENER_TCP);
        assert_string_equal(f->cfg.listeners[0].address, "::");
        assert_int_equal(f->cfg.listeners[0].port, 4739);

        /* an empty object and an empty string give the same defaults */
        collector_config_done(&f->cfg);
        assert_int_equal(collector_config_parse("{}", false, &f->cfg, &f->err), 0);
        assert_int_equal(f->cfg.workers, 2);
        collector_config_done(&f->cfg);
        assert_int_equal(collector_config_parse("", false, &f->cfg, &f->err), 0);
        assert_int_equal(f->cfg.n_listeners, 1);
}

static void test_values_applied(void **state) {
        Fixture *f = *state;
        const char *json =
                "{\n"
                "  \"workers\": 4,\n"
                "  \"collector_id\": 4294967295,\n"
                "  \"log_level\": \"debug\",\n"
                "  \"output\": \"tcp://127.0.0.1:5555\",\n"
                "  \"metrics_file\": \"/run/ipfixd/metrics.prom\",\n"
                "  \"listeners\": [\n"
                "    { \"transport\": \"udp\", \"address\": \"127.0.0.1\", \"port\": 2055 },\n"
                "    { \"address\": \"::1\", \"port\": 0 }\n"
                "  ]\n"
                "}\n";

        assert_int_equal(collector_config_parse(json, false, &f->cfg, &f->err), 0);
        assert_null(f->err);
        assert_int_equal(f->cfg.workers, 4);
        assert_int_equal(f->cfg.collector_id, 4294967295ll);
        assert_string_equal(f->cfg.log_level, "debug");
        assert_string_equal(f->cfg.output, "tcp://127.0.0.1:5555");
        assert_string_equal(f->cfg.metrics_file, "/run/ipfixd/metrics.prom");
        assert_int_equal(f->cfg.n_listeners, 2);
        assert_int_equal(f->cfg.listeners[0].transport, LISTENER_UDP);
        assert_string_equal(f->cfg.listeners[0].address, "127.0.0.1");
        assert_int_equal(f->cfg.listeners[0].port, 2055);
        /* omitted members take the listener defaults */
        assert_int_equal(f->cfg.listeners[1].transport, LISTENER_TCP);
        assert_string_equal(f->cfg.listeners[1].address, "::1");
        assert_int_equal(f->cfg.listeners[1].port, 0);
}

static void test_errors_name_the_key(void **state) {
        Fixture *f = *state;

        expect_error(f, "{\"workers\": 0}", "workers", "1..64");
        expect_error(f, "{\"workers\": 65}", "workers", NULL);
        expect_error(f, "{\"collector_id\": -1}", "collector_id", NULL);
        expect_error(f, "{\"no_such_key\": 1}", "no_such_key", "unknown");
        expect_error(f, "{\"workers\": \"4\"}", "workers", "integer");
        expect_error(f, "{\"workers\": 2.5}", "workers", "integer");
        expect_error(f, "{\"log_level\": 3}", "log_level", "string");
        expect_error(f, "{\"log_level\": \"loud\"}", "log_level", "loud");
        expect_error(f, "{\"template_store\": \"etcd\"}", "template_store", NULL);
        expect_error(f, "{\"output\": \"inproc://x\"}", "output", NULL);
        expect_error(f, "[1, 2]", "JSON object", NULL);
}

static void test_listener_errors(void **state) {
        Fixture *f = *state;

        expect_error(f, "{\"listeners\": [{\"port\": 4739}, {\"port\": 70000}]}",
                     "listeners[1].port", NULL);
        expect_error(f, "{\"listeners\": [{\"port\": -1}]}", "listeners[0].port", NULL);
        expect_error(f, "{\"listeners\": [{\"port\": \"4739\"}]}", "listeners[0].port", NULL);
        expect_error(f, "{\"listeners\": [{\"transport\": \"sctp\"}]}",
                     "listeners[0].transport", NULL);
        expect_error(f, "{\"listeners\": [{}, {}, {\"address\": \"localhost\"}]}",
                     "listeners[2].address", NULL);
        expect_error(f, "{\"listeners\": [{\"address\": \"10.0.0\"}]}", "listeners[0].address",
                     NULL);
        expect_error(f, "{\"listeners\": [{\"bind\": \"::\"}]}", "listeners[0].bind", "unknown");
        expect_error(f, "{\"listeners\": [7]}", "listeners[0]", "object");
        expect_error(f, "{\"listeners\": []}", "listeners", NULL);
        expect_error(f, "{\"listeners\": {\"port\": 1}}", "listeners", NULL);
        expect_error(f,
                     "{\"listeners\": [{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}]}",
                     "listeners", "16");
}

static void test_invalid_json(void **state) {
        Fixture *f = *state;

        /* the missing comma is on line 3 */
        expect_error(f, "{\n  \"workers\": 2\n  \"log_level\": \"info\"\n}", "line 3", "column");
        expect_error(f, "{\"workers\": 2", "line 1", NULL);
        expect_error(f, "{\"workers\": 2, \"workers\": 3}", "duplicate", NULL);
}

static void test_env_override(void **state) {
        Fixture *f = *state;

        assert_int_equal(setenv("IPFIXD_COLLECTOR_WORKERS", "3", 1), 0);
        assert_int_equal(collector_config_parse("{\"workers\": 5}", true, &f->cfg, &f->err), 0);
        assert_int_equal(f->cfg.workers, 3);    /* environment beats the file */
        collector_config_done(&f->cfg);

        assert_int_equal(collector_config_parse("{\"workers\": 5}", false, &f->cfg, &f->err), 0);
        assert_int_equal(f->cfg.workers, 5);
        collector_config_done(&f->cfg);

        assert_int_equal(collector_config_parse(NULL, false, &f->cfg, &f->err), 0);
        assert_int_equal(f->cfg.workers, 2);
        collector_config_done(&f->cfg);

        assert_int_equal(setenv("IPFIXD_COLLECTOR_LOG_LEVEL", "debug", 1), 0);
        assert_int_equal(collector_config_parse(NULL, true, &f->cfg, &f->err), 0);
        assert_string_equal(f->cfg.log_level, "debug");
        assert_int_equal(f->cfg.workers, 3);
        collector_config_done(&f->cfg);

        /* a bad environment value names the variable */
        assert_int_equal(setenv("IPFIXD_COLLECTOR_WORKERS", "three", 1), 0);
        assert_int_equal(collector_config_parse(NULL, true, &f->cfg, &f->err), -EINVAL);
        assert_non_null(f->err);
        assert_non_null(strstr(f->err, "IPFIXD_COLLECTOR_WORKERS"));
        free(f->err);
        f->err = NULL;
        collector_config_done(&f->cfg);
        assert_int_equal(setenv("IPFIXD_COLLECTOR_WORKERS", "0", 1), 0);
        assert_int_equal(collector_config_parse(NULL, true, &f->cfg, &f->err), -EINVAL);
        assert_non_null(strstr(f->err, "workers"));
        /* ... and is ignored when the environment is not consulted */
        free(f->err);
        f->err = NULL;
        collector_config_done(&f->cfg);
        assert_int_equal(collector_config_parse(NULL, false, &f->cfg, &f->err), 0);
        assert_int_equal(f->cfg.workers, 2);
}

static void test_apply_string(void **state) {
        Fixture *f = *state;

        assert_int_equal(collector_config_parse(NULL, false, &f->cfg, &f->err), 0);
        assert_int_equal(config_apply_string(collector_config_keys, collector_config_n_keys,
                                             "batch_records", "8192", &f->cfg, &f->err), 0);
        assert_int_equal(f->cfg.batch_records, 8192);
        assert_int_equal(config_apply_string(collector_config_keys, collector_config_n_keys,
                                             "batch_records", "8193", &f->cfg, &f->err), -EINVAL);
        assert_non_null(strstr(f->err, "batch_records"));
        assert_int_equal(f->cfg.batch_records, 8192);   /* unchanged on failure */
        free(f->err);
        f->err = NULL;
        assert_int_equal(config_apply_string(collector_config_keys, collector_config_n_keys,
                                             "batch_records", "12x", &f->cfg, &f->err), -EINVAL);
        free(f->err);
        f->err = NULL;
        assert_int_equal(config_apply_string(collector_config_keys, collector_config_n_keys,
                                             "nope", "1", &f->cfg, &f->err), -ENOENT);
        assert_non_null(strstr(f->err, "nope"));
        free(f->err);
        f->err = NULL;
        assert_int_equal(config_apply_string(collector_config_keys, collector_config_n_keys,
                                             "metrics_file", "/tmp/m", &f->cfg, &f->err), 0);
        assert_string_equal(f->cfg.metrics_file, "/tmp/m");
}

static void test_listener_url(void **state) {
        ListenerConfig l;
        static const char *const bad[] = {
                "tcp://127.0.0.1",              /* missing port */
                "tcp://127.0.0.1:",
                "udp://[::1]",
                "udp://[::1]:",
                "udp://[::1",
                "sctp://127.0.0.1:4739",        /* bad scheme */
                "127.0.0.1:4739",
                "TCP://127.0.0.1:4739",
                "tcp://localhost:4739",         /* hostname, not numeric */
                "udp://[localhost]:4739",
                "tcp://127.0.0.1:65536",
                "tcp://127.0.0.1:-1",
                "tcp://127.0.0.1:47x9",
                "tcp://:4739",
        };

        memset(&l, 0, sizeof(l));
        assert_int_equal(listener_config_from_url("tcp://127.0.0.1:4739", &l), 0);
        assert_int_equal(l.transport, LISTENER_TCP);
        assert_string_equal(l.address, "127.0.0.1");
        assert_int_equal(l.port, 4739);

        assert_int_equal(listener_config_from_url("udp://[::1]:9995", &l), 0);
        assert_int_equal(l.transport, LISTENER_UDP);
        assert_string_equal(l.address, "::1");
        assert_int_equal(l.port, 9995);

        assert_int_equal(listener_config_from_url("udp://[::]:0", &l), 0);
        assert_string_equal(l.address, "::");
        assert_int_equal(l.port, 0);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ListenerConfig m = { .transport = LISTENER_UDP, .address = "keep", .port = 7 };
                int r = listener_config_from_url(bad[i], &m);
                if (r != -EINVAL)
                        fail_msg("'%s': expected -EINVAL, got %d", bad[i], r);
                /* ret untouched on failure */
                assert_string_equal(m.address, "keep");
                assert_int_equal(m.port, 7);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
                T(test_defaults),
                T(test_values_applied),
                T(test_errors_name_the_key),
                T(test_listener_errors),
                T(test_invalid_json),
                T(test_env_override),
                T(test_apply_string),
#undef T
                cmocka_unit_test(test_listener_url),
        };
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
