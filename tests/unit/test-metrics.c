/* SPDX-License-Identifier: MIT */
/*
 * test-metrics.c - Prometheus text exposition: HELP/TYPE lines and samples byte for byte,
 * labels, label-value escaping and its buffer limit, buffer growth, and the atomic metrics
 * file writer (content replaced by rename, no temporary file left behind).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "metrics.h"

typedef struct Fixture {
        MetricsBuf b;
        char dir[64];
        char path[128];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        (void) snprintf(f->dir, sizeof(f->dir), "/tmp/test-metrics-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void) snprintf(f->path, sizeof(f->path), "%s/collector.prom", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        DIR *d = opendir(f->dir);
        struct dirent *de;

        /* remove whatever the test left, so a failing test does not litter /tmp */
        if (d) {
                while ((de = readdir(d))) {
                        char p[512];
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        (void) snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
                        (void) unlink(p);
                }
                (void) closedir(d);
        }
        (void) rmdir(f->dir);
        metrics_buf_done(&f->b);
        free(f);
        return 0;
}

static char *nul_terminated(const MetricsBuf *b) {
        char *s = malloc(b->len + 1);
        assert_non_null(s);
        memcpy(s, b->data, b->len);
        s[b->len] = '\0';
        return s;
}

static void test_header_and_samples(void **state) {
        Fixture *f = *state;
        char *s;

        metrics_header(&f->b, "ipfixd_records_total", "counter", "Flow records decoded.");
        metrics_sample(&f->b, "ipfixd_records_total", NULL, 0);
        metrics_sample(&f->b, "ipfixd_records_total", "", 18446744073709551615ull);
        metrics_header(&f->b, "ipfixd_templates", "gauge", "Templates held.");
        metrics_sample(&f->b, "ipfixd_templates", "worker=\"0\",exporter=\"10.0.0.1\"", 12);
        assert_false(metrics_buf_failed(&f->b));
        s = nul_terminated(&f->b);
        assert_string_equal(s,
                            "# HELP ipfixd_records_total Flow records decoded.\n"
                            "# TYPE ipfixd_records_total counter\n"
                            "ipfixd_records_total 0\n"
                            "ipfixd_records_total 18446744073709551615\n"
                            "# HELP ipfixd_templates Templates held.\n"
                            "# TYPE ipfixd_templates gauge\n"
                            "ipfixd_templates{worker=\"0\",exporter=\"10.0.0.1\"} 12\n");
        assert_int_equal(f->b.len, strlen(s));
        free(s);
}

static void test_growth(void **state) {
        Fixture *f = *state;
        char labels[64];
        size_t expect = 0;

        /* far more than the first allocation: every sample must land intact and in order */
        for (unsigned i = 0; i < 5000; i++) {
                char line[128];
                (void) snprintf(labels, sizeof(labels), "i=\"%u\"", i);
                metrics_sample(&f->b, "m", labels, i);
                expect += (size_t) snprintf(line, sizeof(line), "m{i=\"%u\"} %u\n", i, i);
        }
        assert_false(metrics_buf_failed(&f->b));
        assert_int_equal(f->b.len, expect);
        assert_true(f->b.cap > f->b.len);
        {
                static const char first[] = "m{i=\"0\"} 0\nm{i=\"1\"} 1\n";
                static const char last[] = "\nm{i=\"4999\"} 4999\n";
                assert_memory_equal(f->b.data, first, sizeof(first) - 1);
                assert_memory_equal(f->b.data + f->b.len - (sizeof(last) - 1), last,
                                    sizeof(last) - 1);
        }
}

static void test_escape_label(void **state) {
        char buf[64];

        assert_int_equal(metrics_escape_label("plain", buf, sizeof(buf)), 5);
        assert_string_equal(buf, "plain");
        assert_int_equal(metrics_escape_label("a\\b", buf, sizeof(buf)), 4);
        assert_string_equal(buf, "a\\\\b");
        assert_int_equal(metrics_escape_label("say \"hi\"", buf, sizeof(buf)), 10);
        assert_string_equal(buf, "say \\\"hi\\\"");
        assert_int_equal(metrics_escape_label("l1\nl2", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "l1\\nl2");
        assert_int_equal(metrics_escape_label("\\\"\n", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "\\\\\\\"\\n");
        assert_int_equal(metrics_escape_label("", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "");
        /* other bytes, tabs and UTF-8 included, pass through unchanged */
        assert_int_equal(metrics_escape_label("t\tü", buf, sizeof(buf)), 4);
        assert_string_equal(buf, "t\tü");
}

static void test_escape_label_nobufs(void **state) {
        char buf[8];

        /* exactly enough: 5 characters and the NUL */
        assert_int_equal(metrics_escape_label("abcde", buf, 6), 5);
        assert_string_equal(buf, "abcde");
        assert_int_equal(metrics_escape_label("abcde", buf, 5), -ENOBUFS);
        /* an escape that does not fit whole is refused, not cut in half */
        assert_int_equal(metrics_escape_label("ab\"", buf, 4), -ENOBUFS);
        assert_int_equal(metrics_escape_label("ab\"", buf, 5), 4);
        assert_string_equal(buf, "ab\\\"");
        assert_int_equal(metrics_escape_label("", buf, 0), -ENOBUFS);
        assert_int_equal(metrics_escape_label("x", buf, 1), -ENOBUFS);
}

static size_t count_dir_entries(const char *dir, const char *only) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (only && strcmp(de->d_name, only) != 0)
                        fail_msg("unexpected file left in %s: %s", dir, de->d_name);
                n++;
        }
        (void) closedir(d);
        return n;
}

static char *read_all(const char *path) {
        FILE *fp = fopen(path, "re");
        char *s = calloc(1, 4096);
        size_t n;

        assert_non_null(fp);
        assert_non_null(s);
        n = fread(s, 1, 4095, fp);
        s[n] = '\0';
        (void) fclose(fp);
        return s;
}

static void test_write_file(void **state) {
        Fixture *f = *state;
        struct stat st;
        char *s;

        metrics_header(&f->b, "up", "gauge", "Collector running.");
        metrics_sample(&f->b, "up", NULL, 1);
        assert_int_equal(metrics_write_file(f->path, &f->b), 0);
        assert_int_equal(stat(f->path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_size, f->b.len);
        assert_int_equal(count_dir_entries(f->dir, "collector.prom"), 1);
        s = read_all(f->path);
        assert_string_equal(s, "# HELP up Collector running.\n# TYPE up gauge\nup 1\n");
        free(s);

        /* a second write replaces the content (shorter this time: no stale tail) */
        metrics_buf_done(&f->b);
        metrics_sample(&f->b, "up", NULL, 0);
        assert_int_equal(metrics_write_file(f->path, &f->b), 0);
        s = read_all(f->path);
        assert_string_equal(s, "up 0\n");
        free(s);
        assert_int_equal(count_dir_entries(f->dir, "collector.prom"), 1);
}

static void test_write_file_errors(void **state) {
        Fixture *f = *state;
        char missing[192];

        metrics_sample(&f->b, "up", NULL, 1);
        (void) snprintf(missing, sizeof(missing), "%s/no-such-dir/m.prom", f->dir);
        assert_int_equal(metrics_write_file(missing, &f->b), -ENOENT);

        /* a buffer whose allocation failed is never written out */
        f->b.failed = true;
        assert_int_equal(metrics_write_file(f->path, &f->b), -ENOMEM);
        assert_int_equal(count_dir_entries(f->dir, NULL), 0);
        /* once failed, appends are ignored */
        {
                size_t len = f->b.len;
                metrics_sample(&f->b, "more", NULL, 2);
                assert_int_equal(f->b.len, len);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
                T(test_header_and_samples),
                T(test_growth),
                T(test_escape_label),
                T(test_escape_label_nobufs),
                T(test_write_file),
                T(test_write_file_errors),
#undef T
        };
        return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
