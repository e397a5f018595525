/* SPDX-License-Identifier: MIT */
/*
 * test-flow.c - the flow batch codec and record formatting: a finished batch decodes to the
 * same header and records, every header check (magic, version, record size, count, total
 * length, record families, short buffer) rejects with its documented error, addresses
 * format as dotted quad / RFC 5952, and a record's JSON parses back to the same values.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "flow.h"

#define N_RECS 3

typedef struct Fixture {
        /* uint64_t storage keeps the batch 8-byte aligned, as ZeroMQ message data is */
        uint64_t storage[(FLOW_BATCH_HEADER_SIZE + (N_RECS + 1) * FLOW_RECORD_SIZE) / 8];
        size_t len;
} Fixture;

static const uint8_t v4_src[4] = { 192, 0, 2, 10 };
static const uint8_t v4_dst[4] = { 198, 51, 100, 7 };
static const uint8_t v4_exp[4] = { 10, 1, 2, 3 };
/* 2001:db8::1 and 2001:db8:0:0:1::2 */
static const uint8_t v6_a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
static const uint8_t v6_b[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2 };

static void fill_record(FlowRecord *r, unsigned i) {
        memset(r, 0, sizeof(*r));
        r->start_ms = 1700000000000ull + i;
        r->end_ms = 1700000001000ull + i;
        r->octets = 1500u * (i + 1);
        r->packets = i + 1;
        if (i % 2 == 0) {
                flow_addr_set_v4(r->src_addr, v4_src);
                flow_addr_set_v4(r->dst_addr, v4_dst);
                r->family = 4;
        } else {
                memcpy(r->src_addr, v6_a, 16);
                memcpy(r->dst_addr, v6_b, 16);
                r->family = 6;
        }
        flow_addr_set_v4(r->exporter_addr, v4_exp);
        r->exporter_family = 4;
        r->src_port = (uint16_t) (1000 + i);
        r->dst_port = 443;
        r->proto = 6;
        r->odid = 7;
        r->template_id = 256;
        r->direction = FLOW_DIRECTION_UNKNOWN;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        for (unsigned i = 0; i < N_RECS; i++)
                fill_record(&flow_batch_records(f->storage)[i], i);
        f->len = flow_batch_finish(f->storage, N_RECS, 42, 0x1122334455667788ull);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        free(*state);
        return 0;
}

static uint8_t *bytes(Fixture *f) {
        return (uint8_t *) f->storage;
}

static void test_round_trip(void **state) {
        Fixture *f = *state;
        FlowBatchHeader h;
        const FlowRecord *recs = NULL;
        FlowRecord expect;

        assert_int_equal(f->len, FLOW_BATCH_HEADER_SIZE + N_RECS * FLOW_RECORD_SIZE);
        assert_int_equal(flow_batch_decode(f->storage, f->len, &h, &recs), N_RECS);
        assert_int_equal(h.magic, FLOW_BATCH_MAGIC);
        assert_int_equal(h.version, FLOW_BATCH_VERSION);
        assert_int_equal(h.record_size, FLOW_RECORD_SIZE);
        assert_int_equal(h.count, N_RECS);
        assert_int_equal(h.collector_id, 42);
        assert_true(h.seq == 0x1122334455667788ull);
        assert_int_equal(h.reserved, 0);
        /* the magic is "IPXB" on the wire */
        assert_memory_equal(bytes(f), "IPXB", 4);
        assert_ptr_equal(recs, bytes(f) + FLOW_BATCH_HEADER_SIZE);
        for (unsigned i = 0; i < N_RECS; i++) {
                fill_record(&expect, i);
                assert_memory_equal(&recs[i], &expect, sizeof(expect));
        }

        /* an empty batch is valid too */
        f->len = flow_batch_finish(f->storage, 0, 1, 2);
        assert_int_equal(f->len, FLOW_BATCH_HEADER_SIZE);
        assert_int_equal(flow_batch_decode(f->storage, f->len, &h, &recs), 0);
        assert_int_equal(h.seq, 2);
}

static void test_bad_magic(void **state) {
        Fixture *f = *state;
        FlowBatchHeader h = { .magic = 0xdead };

        bytes(f)[0] ^= 0x01;
        assert_int_equal(flow_batch_decode(f->storage, f->len, &h, NULL), -EBADMSG);
        assert_int_equal(h.magic, 0xdead);      /* ret_header untouched on failure */
}

static void test_bad_version(void **state) {
        Fixture *f = *state;
        uint16_t v = FLOW_BATCH_VERSION + 1;

        memcpy(bytes(f) + offsetof(FlowBatchHeader, version), &v, 2);
        assert_int_equal(flow_batch_decode(f->storage, f->len, NULL, NULL), -EPROTONOSUPPORT);
}

static void test_bad_record_size(void **state) {
        Fixture *f = *state;
        uint16_t rs = FLOW_RECORD_SIZE - 8;

        memcpy(bytes(f) + offsetof(FlowBatchHeader, record_size), &rs, 2);
        assert_int_equal(flow_batch_decode(f->storage, f->len, NULL, NULL), -EPROTONOSUPPORT);
}

static void test_count_too_big(void **state) {
        Fixture *f = *state;
        uint32_t c = FLOW_BATCH_MAX_RECORDS + 1;

        memcpy(bytes(f) + offsetof(FlowBatchHeader, count), &c, 4);
        assert_int_equal(flow_batch_decode(f->storage, f->len, NULL, NULL), -E2BIG);
        /* exactly the maximum passes the count check and fails only on length */
        c = FLOW_BATCH_MAX_RECORDS;
        memcpy(bytes(f) + offsetof(FlowBatchHeader, count), &c, 4);
        assert_int_equal(flow_batch_decode(f->storage, f->len, NULL, NULL), -EBADMSG);
}

static void test_length_mismatch(void **state) {
        Fixture *f = *state;
        const FlowRecord *recs = NULL;

        assert_int_equal(flow_batch_decode(f->storage, f->len - 1, NULL, &recs), -EBADMSG);
        assert_null(recs);
        /* the storage has room for one more record, so len + 1 stays inside the buffer */
        assert_int_equal(flow_batch_decode(f->storage, f->len + 1, NULL, &recs), -EBADMSG);
        assert_int_equal(flow_batch_decode(f->storage, f->len + FLOW_RECORD_SIZE, NULL, &recs),
                         -EBADMSG);
        assert_null(recs);
}

static void test_invalid_family(void **state) {
        Fixture *f = *state;
        FlowRecord *recs = flow_batch_records(f->storage);

        recs[2].family = 5;
        assert_int_equal(flow_batch_decode(f->storage, f->len, NULL, NULL), -EBADMSG);
        recs[2].family = 0;
        assert_int_equal(flow_batch_decode(f->storage, f->len, NULL, NULL), -EBADMSG);
        recs[2].family = 6;
        assert_int_equal(flow_batch_decode(f->storage, f->len, NULL, NULL), N_RECS);
        recs[1].exporter_family = 0;
        assert_int_equal(flow_batch_decode(f->storage, f->len, NULL, NULL), -EBADMSG);
}

static void test_short_buffer(void **state) {
        Fixture *f = *state;

        for (size_t l = 0; l < FLOW_BATCH_HEADER_SIZE; l++)
                assert_int_equal(flow_batch_decode(f->storage, l, NULL, NULL), -EBADMSG);
        assert_int_equal(flow_batch_decode(NULL, f->len, NULL, NULL), -EBADMSG);
}

static void test_misaligned(void **state) {
        Fixture *f = *state;
        /* a well-formed batch at an odd address: refused rather than read misaligned */
        uint64_t *copy = calloc(1, f->len + 8);

        assert_non_null(copy);
        memcpy((uint8_t *) copy + 4, f->storage, f->len);
        assert_int_equal(flow_batch_decode((uint8_t *) copy + 4, f->len, NULL, NULL), -EINVAL);
        memcpy(copy, f->storage, f->len);
        assert_int_equal(flow_batch_decode(copy, f->len, NULL, NULL), N_RECS);
        free(copy);
}

static void test_addr_format(void **state) {
        uint8_t a[16];
        char buf[64];

        flow_addr_set_v4(a, v4_src);
        assert_true(flow_addr_is_v4mapped(a));
        assert_string_equal(flow_addr_format(a, 4, buf, sizeof(buf)), "192.0.2.10");
        /* family 6 for a mapped address prints the RFC 5952 mapped form */
        assert_string_equal(flow_addr_format(a, 6, buf, sizeof(buf)), "::ffff:192.0.2.10");

        assert_false(flow_addr_is_v4mapped(v6_a));
        assert_string_equal(flow_addr_format(v6_a, 6, buf, sizeof(buf)), "2001:db8::1");
        assert_string_equal(flow_addr_format(v6_b, 6, buf, sizeof(buf)), "2001:db8::1:0:0:2");

        memset(a, 0, sizeof(a));
        assert_string_equal(flow_addr_format(a, 6, buf, sizeof(buf)), "::");
        /* a buffer too small for the text yields "?" instead of garbage */
        assert_string_equal(flow_addr_format(v6_a, 6, buf, 4), "?");
}

static void test_record_json(void **state) {
        FlowRecord r;
        char buf[1024];
        json_error_t jerr;
        json_t *o;
        int n;

        fill_record(&r, 1);                     /* IPv6 record */
        r.octets = 9007199254740993ull;         /* 2^53 + 1: not representable as a double */
        r.tcp_flags = 0x1b;
        r.tos = 0xb8;
        r.ingress_if = 3;
        r.egress_if = 4;
        r.src_as = 64512;
        r.dst_as = 4200000000u;
        r.vlan = 100;
        r.end_reason = 2;
        r.sampling = 1000;
        n = flow_record_to_json(&r, buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal((size_t) n, strlen(buf));
        assert_int_equal(buf[0], '{');
        assert_int_equal(buf[n - 1], '}');

        o = json_loads(buf, 0, &jerr);
        if (!o)
                fail_msg("invalid JSON at %d:%d: %s: %s", jerr.line, jerr.column, jerr.text, buf);
        assert_true(json_is_object(o));
        assert_int_equal(json_integer_value(json_object_get(o, "start_ms")), 1700000000001ll);
        assert_int_equal(json_integer_value(json_object_get(o, "end_ms")), 1700000001001ll);
        assert_string_equal(json_string_value(json_object_get(o, "src_addr")), "2001:db8::1");
        assert_string_equal(json_string_value(json_object_get(o, "dst_addr")),
                            "2001:db8::1:0:0:2");
        assert_string_equal(json_string_value(json_object_get(o, "exporter")), "10.1.2.3");
        assert_int_equal(json_integer_value(json_object_get(o, "src_port")), 1001);
        assert_int_equal(json_integer_value(json_object_get(o, "dst_port")), 443);
        assert_int_equal(json_integer_value(json_object_get(o, "proto")), 6);
        assert_int_equal(json_integer_value(json_object_get(o, "tcp_flags")), 0x1b);
        assert_int_equal(json_integer_value(json_object_get(o, "tos")), 0xb8);
        assert_int_equal(json_integer_value(json_object_get(o, "packets")), 2);
        assert_int_equal(json_integer_value(json_object_get(o, "ingress_if")), 3);
        assert_int_equal(json_integer_value(json_object_get(o, "egress_if")), 4);
        assert_int_equal(json_integer_value(json_object_get(o, "src_as")), 64512);
        assert_int_equal(json_integer_value(json_object_get(o, "dst_as")), 4200000000ll);
        assert_int_equal(json_integer_value(json_object_get(o, "vlan")), 100);
        assert_int_equal(json_integer_value(json_object_get(o, "direction")), 255);
        assert_int_equal(json_integer_value(json_object_get(o, "end_reason")), 2);
        assert_int_equal(json_integer_value(json_object_get(o, "sampling")), 1000);
        assert_int_equal(json_integer_value(json_object_get(o, "odid")), 7);
        assert_int_equal(json_integer_value(json_object_get(o, "template_id")), 256);
        /* printed as an exact integer, not rounded through floating point */
        assert_int_equal(json_integer_value(json_object_get(o, "octets")), 9007199254740993ll);
        assert_non_null(strstr(buf, "\"octets\":9007199254740993,"));
        /* "flows": 0 from a collector is printed as 1 flow */
        assert_int_equal(json_integer_value(json_object_get(o, "flows")), 1);
        assert_int_equal(json_object_size(o), 23);
        json_decref(o);

        /* IPv4 record: dotted quads */
        fill_record(&r, 0);
        assert_true(flow_record_to_json(&r, buf, sizeof(buf)) > 0);
        o = json_loads(buf, 0, &jerr);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "src_addr")), "192.0.2.10");
        assert_string_equal(json_string_value(json_object_get(o, "dst_addr")), "198.51.100.7");
        assert_int_equal(json_integer_value(json_object_get(o, "octets")), 1500);
        json_decref(o);
}

static void test_record_json_nobufs(void **state) {
        FlowRecord r;
        char buf[1024];
        int n;

        fill_record(&r, 0);
        n = flow_record_to_json(&r, buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(flow_record_to_json(&r, buf, 8), -ENOBUFS);
        /* no room for the NUL is too small as well; one more byte is enough */
        assert_int_equal(flow_record_to_json(&r, buf, (size_t) n), -ENOBUFS);
        assert_int_equal(flow_record_to_json(&r, buf, (size_t) n + 1), n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
                T(test_round_trip),
                T(test_bad_magic),
                T(test_bad_version),
                T(test_bad_record_size),
                T(test_count_too_big),
                T(test_length_mismatch),
                T(test_invalid_family),
                T(test_short_buffer),
                T(test_misaligned),
#undef T
                cmocka_unit_test(test_addr_format),
                cmocka_unit_test(test_record_json),
                cmocka_unit_test(test_record_json_nobufs),
        };
        return cmocka_run_group_tests_name("flow", tests, NULL, NULL);
}
