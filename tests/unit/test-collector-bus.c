/* SPDX-License-Identifier: MIT */
/*
 * test-collector-bus.c - the logic behind the collector's bus surface, without a bus: the
 * signal rate limit (token bucket), ConfigVersion's FNV-1a, the configuration chain that
 * start and every reload share (file < environment < --set/--listen), and
 * collector_validate()/collector_reload() on a collector that is built but not running
 * (listeners on loopback port 0, no workers started): what a reload reports, what it
 * applies, and that a refused one changes nothing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "collector-bus.h"
#include "collector.h"
#include "hash.h"
#include "log.h"

static void test_token_bucket(void **state) {
        CollectorTokenBucket tb;
        int n = 0;

        collector_token_bucket_init(&tb, 20, 1000000);
        /* A full bucket: a burst of 20, then nothing until time passes. */
        while (collector_token_bucket_take(&tb, 1000000))
                n++;
        assert_int_equal(n, 20);
        assert_false(collector_token_bucket_take(&tb, 1000000 + 49999));
        assert_true(collector_token_bucket_take(&tb, 1000000 + 50000));     /* 1/20 s */
        assert_false(collector_token_bucket_take(&tb, 1000000 + 50000));
        /* A long pause refills to the burst, not beyond. */
        n = 0;
        while (collector_token_bucket_take(&tb, 100000000))
                n++;
        assert_int_equal(n, 20);
        /* A clock that goes backwards adds nothing. */
        assert_false(collector_token_bucket_take(&tb, 5));
}

static void test_fnv(void **state) {
        assert_true(hash_fnv1a64("") == UINT64_C(0xcbf29ce484222325));
        assert_true(hash_fnv1a64(NULL) == UINT64_C(0xcbf29ce484222325));
        assert_true(hash_fnv1a64("a") == UINT64_C(0xaf63dc4c8601ec8c));
        assert_true(hash_fnv1a64("foobar") == UINT64_C(0x85944171f73967e8));
}

static void test_config_load(void **state) {
        char *sets[] = { (char *) "workers=3", (char *) "bus_address=unix:path=/x" };
        char *listens[] = { (char *) "udp://127.0.0.1:9995" };
        char *bad_set[] = { (char *) "workers=0" };
        char *bad_listen[] = { (char *) "sctp://1.2.3.4:1" };
        CollectorConfig cfg;
        char *err = NULL;

        (void) unsetenv("IPFIXD_COLLECTOR_WORKERS");
        assert_int_equal(collector_config_load("{\"workers\": 5}", NULL, 0, NULL, 0, &cfg, &err),
                         0);
        assert_int_equal(cfg.workers, 5);
        assert_null(cfg.bus_address);
        collector_config_done(&cfg);

        assert_int_equal(collector_config_load("{\"workers\": 5, \"listeners\": [{\"port\": 1}]}",
                                               sets, 2, listens, 1, &cfg, &err), 0);
        assert_int_equal(cfg.workers, 3);
        assert_string_equal(cfg.bus_address, "unix:path=/x");
        assert_int_equal(cfg.n_listeners, 1);
        assert_int_equal(cfg.listeners[0].transport, LISTENER_UDP);
        assert_int_equal(cfg.listeners[0].port, 9995);
        collector_config_done(&cfg);

        assert_int_equal(collector_config_load(NULL, bad_set, 1, NULL, 0, &cfg, &err), -EINVAL);
        assert_non_null(strstr(err, "workers"));
        free(err);
        err = NULL;
        collector_config_done(&cfg);

        assert_int_equal(collector_config_load(NULL, NULL, 0, bad_listen, 1, &cfg, &err), -EINVAL);
        assert_non_null(strstr(err, "--listen sctp://1.2.3.4:1"));
        free(err);
        collector_config_done(&cfg);
}

typedef struct Fixture {
        Collector *c;
        char path[64];
        char sock[128];
        char *sets[1];
} Fixture;

static const char *const file_text =
        "{\"listeners\": [{\"transport\": \"udp\", \"address\": \"127.0.0.1\", \"port\": 0}],"
        " \"workers\": 1, \"stats_interval_s\": 0}";

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        CollectorConfig cfg;
        CollectorOrigin origin;
        char *err = NULL;
        FILE *fp;
        int fd;

        assert_non_null(f);
        (void) unsetenv("IPFIXD_BUS_ADDRESS");
        (void) unsetenv("IPFIXD_COLLECTOR_WORKERS");
        (void) unsetenv("IPFIXD_COLLECTOR_LOG_LEVEL");
        (void) snprintf(f->path, sizeof(f->path), "/tmp/test-collector-bus.XXXXXX");
        fd = mkstemp(f->path);
        assert_true(fd >= 0);
        fp = fdopen(fd, "w");
        assert_non_null(fp);
        assert_true(fputs(file_text, fp) >= 0);
        assert_int_equal(fclose(fp), 0);
        (void) snprintf(f->sock, sizeof(f->sock), "output=ipc://%s.sock", f->path);
        f->sets[0] = f->sock;

        assert_int_equal(collector_config_load(file_text, f->sets, 1, NULL, 0, &cfg, &err), 0);
        origin = (CollectorOrigin) { .config_path = f->path, .config_text = file_text,
                                     .sets = f->sets, .n_sets = 1 };
        assert_int_equal(collector_new(&f->c, &cfg, &origin), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        collector_free(f->c);
        (void) unlink(f->path);
        free(f);
        return 0;
}

static void test_state(void **state) {
        Fixture *f = *state;
        char version[17];

        assert_int_equal(collector_get_state(f->c), COLLECTOR_STARTING);
        assert_false(collector_is_ready(f->c));
        assert_string_equal(collector_state_to_string(COLLECTOR_DRAINED), "drained");
        assert_null(collector_state_to_string(_COLLECTOR_STATE_MAX));
        (void) snprintf(version, sizeof(version), "%016llx",
                        (unsigned long long) hash_fnv1a64(file_text));
        assert_string_equal(collector_config_version(f->c), version);
        assert_true(collector_started_ms(f->c) > 0);
        assert_int_equal(collector_n_listeners(f->c), 1);
}

static void test_listener(void **state) {
        Fixture *f = *state;
        CollectorListenerInfo l;

        assert_int_equal(collector_get_listener(f->c, 0, &l), 0);
        assert_int_equal(l.transport, LISTENER_UDP);
        assert_string_equal(l.address, "127.0.0.1");
        assert_true(l.port > 0);        /* the port actually bound */
        assert_int_equal(l.accepted, 0);
        assert_int_equal(collector_get_listener(f->c, 1, &l), -ENOENT);
}

static void test_validate(void **state) {
        Fixture *f = *state;
        char *err = NULL;

        assert_int_equal(collector_validate(f->c, "{\"workers\": 2}", &err), 0);
        assert_int_equal(collector_validate(f->c, "{\"workrs\": 2}", &err), -EINVAL);
        assert_non_null(strstr(err, "workrs"));
        free(err);
        err = NULL;
        assert_int_equal(collector_validate(f->c, "{\"listeners\": [{\"port\": 70000}]}", &err),
                         -EINVAL);
        assert_non_null(strstr(err, "listeners[0].port"));
        free(err);
}

static void test_reload(void **state) {
        Fixture *f = *state;
        char *changes = NULL, *err = NULL;
        char before[17];
        const char *text =
                "{\"listeners\": [{\"transport\": \"udp\", \"address\": \"127.0.0.1\", \"port\": 0}],"
                " \"workers\": 4, \"log_level\": \"warning\", \"stats_interval_s\": 0}";

        (void) snprintf(before, sizeof(before), "%s", collector_config_version(f->c));

        /* Refused: nothing changes. */
        assert_int_equal(collector_reload(f->c, "{\"log_level\": \"loud\"}", &changes, &err),
                         -EINVAL);
        assert_null(changes);
        assert_non_null(strstr(err, "log_level"));
        free(err);
        err = NULL;
        assert_string_equal(collector_config_version(f->c), before);
        assert_int_equal(log_get_max_level(), LOG_INFO);

        /* The same configuration: no changes (port 0 is compared as configured). */
        assert_int_equal(collector_reload(f->c, NULL, &changes, &err), 0);
        assert_string_equal(changes, "[]");
        free(changes);
        assert_string_equal(collector_config_version(f->c), before);

        assert_int_equal(collector_reload(f->c, text, &changes, &err), 0);
        assert_non_null(strstr(changes, "\"log_level: info -> warning\""));
        assert_non_null(strstr(changes, "\"workers: changed; takes effect after a restart\""));
        assert_null(strstr(changes, "listeners"));
        assert_null(strstr(changes, "output"));         /* --set output= still applies */
        free(changes);
        assert_int_equal(log_get_max_level(), LOG_WARNING);
        assert_string_not_equal(collector_config_version(f->c), before);

        /* "" re-reads the file. */
        assert_int_equal(collector_reload(f->c, "", &changes, &err), 0);
        assert_non_null(strstr(changes, "\"log_level: warning -> info\""));
        free(changes);
        assert_string_equal(collector_config_version(f->c), before);
        assert_int_equal(log_get_max_level(), LOG_INFO);
}

static void test_lists(void **state) {
        Fixture *f = *state;
        CollectorExporter *e = NULL;
        CollectorTemplate *t = NULL;
        CollectorCounters c;
        size_t n = 1;

        assert_int_equal(collector_list_exporters(f->c, &e, &n), 0);
        assert_int_equal(n, 0);
        free(e);
        n = 1;
        assert_int_equal(collector_list_templates(f->c, &t, &n), 0);
        assert_int_equal(n, 0);
        free(t);
        collector_get_counters(f->c, &c);
        assert_int_equal(c.records, 0);
        assert_int_equal(c.signals_dropped, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_token_bucket),
                cmocka_unit_test(test_fnv),
                cmocka_unit_test(test_config_load),
                cmocka_unit_test_setup_teardown(test_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_listener, setup, teardown),
                cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        };
        return cmocka_run_group_tests_name("collector-bus", tests, NULL, NULL);
}
