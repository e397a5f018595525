/* SPDX-License-Identifier: MIT */
/*
 * test-anon.c - the anonymization stage: every method on family-4 and family-6 records
 * (Crypto-PAn checked against the reference vectors, truncation at default, top-level,
 * per-field and edge prefixes), the IPv4-mapped prefix surviving, fields and the rest of
 * the record left untouched, unknown families failing closed, and configuration errors
 * reported with the member they concern.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include <jansson.h>

#include "anon.h"
#include "flow.h"

/* The Crypto-PAn reference distribution's sample key (see test-cryptopan.c for sources). */
static const char ref_key_hex[] =
        "1522178d33a4cf80130a5b1649907d10d8988f8379796527625" "74c2d2a842202";

typedef struct Fixture {
        char dir[64];
        char key_path[128];             /* hex key, mode 0600 */
        char open_key_path[128];        /* hex key, mode 0644 */
        char bad_key_path[128];         /* 10 bytes of text */
} Fixture;

static void write_file(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        size_t len = strlen(text);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(close(fd), 0);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        char text[80];

        assert_non_null(f);
        (void) snprintf(f->dir, sizeof(f->dir), "/tmp/test-anon-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        (void) snprintf(f->key_path, sizeof(f->key_path), "%s/key", f->dir);
        (void) snprintf(f->open_key_path, sizeof(f->open_key_path), "%s/open-key", f->dir);
        (void) snprintf(f->bad_key_path, sizeof(f->bad_key_path), "%s/bad-key", f->dir);
        (void) snprintf(text, sizeof(text), "%s\n", ref_key_hex);
        write_file(f->key_path, text, 0600);
        write_file(f->open_key_path, text, 0644);
        write_file(f->bad_key_path, "not a key\n", 0600);
        *state = f;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

static int teardown(void **state) {
        Fixture *f = *state;

        assert_int_equal(nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

/* Builds the Anonymizer from JSON text, with "@KEY@" standing for the fixture's key path. */
static Anonymizer *make(Fixture *f, const char *json_fmt) {
        char text[1024], *err = NULL;
        const char *at = strstr(json_fmt, "@KEY@");
        json_error_t jerr;
        json_t *obj;
        Anonymizer *a = NULL;
        int r;

        if (at)
                (void) snprintf(text, sizeof(text), "%.*s%s%s", (int) (at - json_fmt), json_fmt,
                                f->key_path, at + 5);
        else
                (void) snprintf(text, sizeof(text), "%s", json_fmt);
        obj = json_loads(text, 0, &jerr);
        if (!obj)
                fail_msg("bad test JSON %s: %s", text, jerr.text);
        r = anon_new(&a, obj, &err);
        if (r < 0)
                fail_msg("anon_new(%s): %d %s", text, r, err ? err : "");
        assert_null(err);
        json_decref(obj);
        return a;
}

static void expect_error(const char *json, int want_r, const char *want_msg) {
        char *err = NULL;
        json_error_t jerr;
        json_t *obj = json_loads(json, JSON_DECODE_ANY, &jerr);
        Anonymizer *a = (Anonymizer *) 0x1;     /* must stay untouched */

        if (!obj)
                fail_msg("bad test JSON %s: %s", json, jerr.text);
        assert_int_equal(anon_new(&a, obj, &err), want_r);
        assert_ptr_equal(a, (Anonymizer *) 0x1);
        assert_non_null(err);
        if (strcmp(err, want_msg) != 0)
                fail_msg("for %s:\n  got      \"%s\"\n  expected \"%s\"", json, err, want_msg);
        free(err);
        /* reterr is optional */
        assert_int_equal(anon_new(&a, obj, NULL), want_r);
        json_decref(obj);
}

static void set4(uint8_t dst[16], const char *s) {
        uint8_t v4[4];

        assert_int_equal(inet_pton(AF_INET, s, v4), 1);
        flow_addr_set_v4(dst, v4);
}

static void set6(uint8_t dst[16], const char *s) {
        assert_int_equal(inet_pton(AF_INET6, s, dst), 1);
}

static void expect4(const uint8_t a[16], const char *s) {
        uint8_t want[16];
        char buf[64];

        set4(want, s);
        if (memcmp(a, want, 16) != 0)
                fail_msg("got %s (mapped: %d), expected %s", flow_addr_format(a, 4, buf, 64),
                         flow_addr_is_v4mapped(a), s);
}

static void expect6(const uint8_t a[16], const char *s) {
        uint8_t want[16];
        char buf[64];

        set6(want, s);
        if (memcmp(a, want, 16) != 0)
                fail_msg("got %s, expected %s", flow_addr_format(a, 6, buf, 64), s);
}

static void fill4(FlowRecord *r) {
        memset(r, 0, sizeof(*r));
        r->start_ms = 1700000000000ull;
        r->end_ms = 1700000001000ull;
        r->octets = 4242;
        r->packets = 7;
        set4(r->src_addr, "128.11.68.132");
        set4(r->dst_addr, "129.118.74.4");
        set4(r->exporter_addr, "130.132.252.244");
        r->family = 4;
        r->exporter_family = 4;
        r->src_port = 40000;
        r->dst_port = 443;
        r->proto = 6;
        r->odid = 9;
        r->template_id = 256;
        r->direction = FLOW_DIRECTION_UNKNOWN;
        r->flows = 3;
}

static void fill6(FlowRecord *r) {
        fill4(r);
        set6(r->src_addr, "2001:db8::1");
        set6(r->dst_addr, "2001:db8:abcd:1234:5678::2");
        set6(r->exporter_addr, "2001:db8::2");
        r->family = 6;
        r->exporter_family = 6;
}

/* Everything but @changed (an address field, or NULL) equals @orig. */
static void expect_rest_untouched(const FlowRecord *orig, const FlowRecord *got,
                                  const uint8_t *changed) {
        FlowRecord x = *got;
        size_t off;

        if (changed) {
                off = (size_t) (changed - (const uint8_t *) got);
                memcpy((uint8_t *) &x + off, (const uint8_t *) orig + off, 16);
        }
        assert_memory_equal(&x, orig, sizeof(x));
}

static void test_none(void **state) {
        Fixture *f = *state;
        Anonymizer *a;
        FlowRecord r, o;
        CryptoPanStats st;

        a = make(f, "{}");
        assert_false(anon_is_active(a));
        assert_null(anon_key_file(a));
        fill4(&r);
        o = r;
        anon_apply(a, &r);
        assert_memory_equal(&r, &o, sizeof(r));
        anon_get_stats(a, &st);
        assert_int_equal(st.v4_hits + st.v4_misses, 0);
        anon_free(a);

        a = make(f, "{\"src_addr\": \"none\", \"dst_addr\": {\"method\": \"none\"}, "
                    "\"exporter\": \"none\", \"v4_prefix\": 8}");
        assert_false(anon_is_active(a));
        assert_int_equal(anon_method(a, ANON_FIELD_DST), ANON_NONE);
        fill6(&r);
        o = r;
        anon_apply(a, &r);
        assert_memory_equal(&r, &o, sizeof(r));
        anon_free(a);
}

static void test_cryptopan(void **state) {
        Fixture *f = *state;
        _cleanup_(anon_freep) Anonymizer *a = NULL;
        FlowRecord r, o;
        CryptoPanStats st;

        a = make(f, "{\"key_file\": \"@KEY@\", \"src_addr\": \"cryptopan\", "
                    "\"dst_addr\": {\"method\": \"cryptopan\"}, \"exporter\": \"cryptopan\"}");
        assert_true(anon_is_active(a));
        assert_false(anon_key_file_exposed(a));
        assert_string_equal(anon_key_file(a), f->key_path);
        assert_int_equal(anon_method(a, ANON_FIELD_SRC), ANON_CRYPTOPAN);
        assert_string_equal(anon_method_to_string(ANON_CRYPTOPAN), "cryptopan");

        /* family 4: the reference vectors, mapping kept */
        fill4(&r);
        o = r;
        anon_apply(a, &r);
        expect4(r.src_addr, "135.242.180.132");
        expect4(r.dst_addr, "134.136.186.123");
        expect4(r.exporter_addr, "133.68.164.234");
        assert_true(flow_addr_is_v4mapped(r.src_addr));
        memcpy(o.src_addr, r.src_addr, 16);
        memcpy(o.dst_addr, r.dst_addr, 16);
        memcpy(o.exporter_addr, r.exporter_addr, 16);
        assert_memory_equal(&r, &o, sizeof(r));

        /* family 6 (vectors of the Go implementation); exporter stays family 4 */
        fill6(&r);
        set4(r.exporter_addr, "152.163.225.39");
        r.exporter_family = 4;
        anon_apply(a, &r);
        expect6(r.src_addr, "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e");
        expect4(r.exporter_addr, "151.140.114.167");
        /* prefix preserved: 2001:db8::/32 shared with the source */
        assert_memory_equal(r.dst_addr, r.src_addr, 4);
        assert_memory_not_equal(r.dst_addr, r.src_addr, 5);

        /* the same address anonymizes the same way in every field (one key, one cache) */
        fill4(&r);
        memcpy(r.dst_addr, r.src_addr, 16);
        anon_apply(a, &r);
        expect4(r.dst_addr, "135.242.180.132");

        anon_get_stats(a, &st);
        assert_true(st.v4_hits >= 1);
        assert_true(st.v4_misses >= 4);
        assert_int_equal(st.v6_misses, 2);
}

static void test_truncate(void **state) {
        Fixture *f = *state;
        Anonymizer *a;
        FlowRecord r, o;

        /* defaults /24 and /48 */
        a = make(f, "{\"src_addr\": \"truncate\", \"dst_addr\": \"truncate\", "
                    "\"exporter\": \"truncate\"}");
        fill4(&r);
        anon_apply(a, &r);
        expect4(r.src_addr, "128.11.68.0");
        expect4(r.dst_addr, "129.118.74.0");
        expect4(r.exporter_addr, "130.132.252.0");
        fill6(&r);
        anon_apply(a, &r);
        expect6(r.src_addr, "2001:db8::");
        expect6(r.dst_addr, "2001:db8:abcd::");
        /* idempotent */
        o = r;
        anon_apply(a, &r);
        assert_memory_equal(&r, &o, sizeof(r));
        anon_free(a);

        /* top-level prefixes, overridden per field */
        a = make(f, "{\"v4_prefix\": 8, \"v6_prefix\": 40, \"src_addr\": \"truncate\", "
                    "\"dst_addr\": {\"method\": \"truncate\", \"v4_prefix\": 20, "
                    "\"v6_prefix\": 57}, \"exporter\": {\"method\": \"truncate\", "
                    "\"v4_prefix\": 31}}");
        fill4(&r);
        anon_apply(a, &r);
        expect4(r.src_addr, "128.0.0.0");
        expect4(r.dst_addr, "129.118.64.0");            /* 74 = 0100 1010 -> 0100 0000 */
        expect4(r.exporter_addr, "130.132.252.244");    /* .244 is even: /31 keeps it */
        fill6(&r);
        anon_apply(a, &r);
        expect6(r.src_addr, "2001:db8::");
        expect6(r.dst_addr, "2001:db8:abcd:1200::");    /* 0x1234 /9 bits -> 0x1200 */
        expect6(r.exporter_addr, "2001:db8::");         /* v6 inherits the top-level 40 */
        anon_free(a);

        /* edges: /0 clears everything (v4 keeps ::ffff:), /32 and /128 keep everything */
        a = make(f, "{\"src_addr\": {\"method\": \"truncate\", \"v4_prefix\": 0, "
                    "\"v6_prefix\": 0}, \"dst_addr\": {\"method\": \"truncate\", "
                    "\"v4_prefix\": 32, \"v6_prefix\": 128}}");
        fill4(&r);
        anon_apply(a, &r);
        expect4(r.src_addr, "0.0.0.0");
        assert_true(flow_addr_is_v4mapped(r.src_addr));
        expect4(r.dst_addr, "129.118.74.4");
        fill6(&r);
        anon_apply(a, &r);
        expect6(r.src_addr, "::");
        expect6(r.dst_addr, "2001:db8:abcd:1234:5678::2");
        anon_free(a);
}

/* Each field configured alone changes only itself. */
static void test_field_independence(void **state) {
        Fixture *f = *state;
        static const char *const methods[] = { "cryptopan", "truncate" };
        static const char *const fields[] = { "src_addr", "dst_addr", "exporter" };

        for (size_t m = 0; m < ELEMENTSOF(methods); m++)
                for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                        for (int fam = 4; fam <= 6; fam += 2) {
                                char json[256];
                                Anonymizer *a;
                                FlowRecord r, o;
                                const uint8_t *changed;

                                (void) snprintf(json, sizeof(json),
                                                "{\"key_file\": \"@KEY@\", \"%s\": \"%s\"}",
                                                fields[i], methods[m]);
                                a = make(f, json);
                                if (fam == 4)
                                        fill4(&r);
                                else
                                        fill6(&r);
                                o = r;
                                anon_apply(a, &r);
                                changed = i == 0 ? r.src_addr :
                                          i == 1 ? r.dst_addr : r.exporter_addr;
                                assert_memory_not_equal(changed,
                                                        (const uint8_t *) &o +
                                                                (changed - (const uint8_t *) &r),
                                                        16);
                                expect_rest_untouched(&o, &r, changed);
                                anon_free(a);
                        }
}

static void test_unknown_family(void **state) {
        Fixture *f = *state;
        _cleanup_(anon_freep) Anonymizer *a = NULL;
        static const uint8_t zero[16] = { 0 };
        FlowRecord r, o;

        a = make(f, "{\"key_file\": \"@KEY@\", \"src_addr\": \"cryptopan\", "
                    "\"dst_addr\": \"truncate\"}");
        fill6(&r);
        r.family = 5;
        o = r;
        anon_apply(a, &r);
        assert_memory_equal(r.src_addr, zero, 16);
        assert_memory_equal(r.dst_addr, zero, 16);
        assert_memory_equal(r.exporter_addr, o.exporter_addr, 16);      /* "none" */
}

static void test_key_file_exposed(void **state) {
        Fixture *f = *state;
        char json[256];
        Anonymizer *a;

        (void) snprintf(json, sizeof(json), "{\"key_file\": \"%s\", \"src_addr\": \"cryptopan\"}",
                        f->open_key_path);
        a = make(f, json);
        assert_true(anon_key_file_exposed(a));
        anon_free(a);

        /* a key file no field uses is still loaded and checked */
        (void) snprintf(json, sizeof(json), "{\"key_file\": \"%s\"}", f->bad_key_path);
        {
                char msg[300];

                (void) snprintf(msg, sizeof(msg), "anonymize.key_file: %s: expected 32 raw bytes "
                                "or 64 hex digits, got 10 bytes", f->bad_key_path);
                expect_error(json, -EINVAL, msg);
        }
}

static void test_errors(void **state) {
        Fixture *f = *state;
        char json[256], msg[300];

        expect_error("[]", -EINVAL, "anonymize: must be an object");
        expect_error("{\"src_addr\": \"hash\"}", -EINVAL,
                     "anonymize.src_addr: unknown method \"hash\" (expected none, cryptopan or "
                     "truncate)");
        expect_error("{\"dst_addr\": {\"method\": \"sha1\"}}", -EINVAL,
                     "anonymize.dst_addr.method: unknown method \"sha1\" (expected none, "
                     "cryptopan or truncate)");
        expect_error("{\"exporter\": 3}", -EINVAL,
                     "anonymize.exporter: must be a method name or an object");
        expect_error("{\"exporter\": {\"v4_prefix\": 8}}", -EINVAL,
                     "anonymize.exporter.method: missing");
        expect_error("{\"src_addr\": {\"method\": 1}}", -EINVAL,
                     "anonymize.src_addr.method: must be a method name (none, cryptopan or "
                     "truncate)");
        expect_error("{\"colour\": \"blue\"}", -EINVAL, "anonymize.colour: unknown key");
        expect_error("{\"src_addr\": {\"method\": \"truncate\", \"bits\": 3}}", -EINVAL,
                     "anonymize.src_addr.bits: unknown key");
        /* the first problem in document order is the one reported */
        expect_error("{\"v4_prefix\": 33, \"colour\": 1}", -EINVAL,
                     "anonymize.v4_prefix: must be an integer 0..32");
        expect_error("{\"v4_prefix\": -1}", -EINVAL,
                     "anonymize.v4_prefix: must be an integer 0..32");
        expect_error("{\"v6_prefix\": 129}", -EINVAL,
                     "anonymize.v6_prefix: must be an integer 0..128");
        expect_error("{\"v6_prefix\": \"48\"}", -EINVAL,
                     "anonymize.v6_prefix: must be an integer 0..128");
        expect_error("{\"v4_prefix\": 24.0}", -EINVAL,
                     "anonymize.v4_prefix: must be an integer 0..32");
        expect_error("{\"dst_addr\": {\"method\": \"truncate\", \"v6_prefix\": 200}}", -EINVAL,
                     "anonymize.dst_addr.v6_prefix: must be an integer 0..128");
        expect_error("{\"dst_addr\": {\"method\": \"cryptopan\", \"v4_prefix\": 8}}", -EINVAL,
                     "anonymize.dst_addr.v4_prefix: only valid with method truncate");
        expect_error("{\"dst_addr\": \"truncate\", \"exporter\": \"cryptopan\"}", -EINVAL,
                     "anonymize.key_file: required because exporter uses cryptopan");
        expect_error("{\"key_file\": \"\", \"src_addr\": \"cryptopan\"}", -EINVAL,
                     "anonymize.key_file: must be a non-empty string");
        expect_error("{\"key_file\": 7}", -EINVAL,
                     "anonymize.key_file: must be a non-empty string");

        (void) snprintf(json, sizeof(json), "{\"key_file\": \"%s/nope\", \"src_addr\": "
                        "\"cryptopan\"}", f->dir);
        (void) snprintf(msg, sizeof(msg), "anonymize.key_file: %s/nope: No such file or "
                        "directory", f->dir);
        expect_error(json, -ENOENT, msg);

        (void) snprintf(json, sizeof(json), "{\"key_file\": \"%s\", \"src_addr\": "
                        "\"cryptopan\"}", f->dir);
        (void) snprintf(msg, sizeof(msg), "anonymize.key_file: %s: not a regular file", f->dir);
        expect_error(json, -EINVAL, msg);

        (void) snprintf(json, sizeof(json), "{\"key_file\": \"%s\", \"src_addr\": "
                        "\"cryptopan\"}", f->bad_key_path);
        (void) snprintf(msg, sizeof(msg), "anonymize.key_file: %s: expected 32 raw bytes or 64 "
                        "hex digits, got 10 bytes", f->bad_key_path);
        expect_error(json, -EINVAL, msg);

        /* unreadable for permission reasons (meaningless as root, which reads anything) */
        if (geteuid() != 0) {
                char path[160];

                (void) snprintf(path, sizeof(path), "%s/locked", f->dir);
                write_file(path, ref_key_hex, 0000);
                (void) snprintf(json, sizeof(json), "{\"key_file\": \"%s\", \"src_addr\": "
                                "\"cryptopan\"}", path);
                (void) snprintf(msg, sizeof(msg), "anonymize.key_file: %s: Permission denied",
                                path);
                expect_error(json, -EACCES, msg);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cryptopan, setup, teardown),
                cmocka_unit_test_setup_teardown(test_truncate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_field_independence, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_family, setup, teardown),
                cmocka_unit_test_setup_teardown(test_key_file_exposed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        };
        return cmocka_run_group_tests_name("anon", tests, NULL, NULL);
}
