/* SPDX-License-Identifier: MIT */
/*
 * test-netflow9.c - NetFlow v9 to IPFIX translation: a hand-built v9 datagram (template,
 * options template and data flowsets with padding) becomes the expected IPFIX message byte
 * for byte; init time, malformed packets, templates with enterprise-range field types and
 * reserved flowsets; and the translated message decoded by a real Decoder, whose flow times
 * come from the sysUpTime-relative fields plus the init time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "decoder.h"
#include "ipfix.h"
#include "netflow9.h"
#include "wire.h"

/* Template 256 body: 9 fields, a 29-octet record. */
#define TMPL256                                                                    \
        0x01, 0x00, 0x00, 0x09,                                                    \
        0x00, 0x08, 0x00, 0x04,         /* IPV4_SRC_ADDR */                        \
        0x00, 0x0c, 0x00, 0x04,         /* IPV4_DST_ADDR */                        \
        0x00, 0x07, 0x00, 0x02,         /* L4_SRC_PORT */                          \
        0x00, 0x0b, 0x00, 0x02,         /* L4_DST_PORT */                          \
        0x00, 0x04, 0x00, 0x01,         /* PROTOCOL */                             \
        0x00, 0x01, 0x00, 0x04,         /* IN_BYTES */                             \
        0x00, 0x02, 0x00, 0x04,         /* IN_PKTS */                              \
        0x00, 0x16, 0x00, 0x04,         /* FIRST_SWITCHED (flowStartSysUpTime) */  \
        0x00, 0x15, 0x00, 0x04          /* LAST_SWITCHED (flowEndSysUpTime) */

/* Two records for template 256 and two octets of flowset padding. */
#define DATA256                                                                    \
        0x0a, 0x00, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x01, 0x04, 0xd2, 0x01, 0xbb,    \
        0x06, 0x00, 0x00, 0x05, 0xdc, 0x00, 0x00, 0x00, 0x03,                      \
        0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x1f, 0x40,                            \
        0x0a, 0x00, 0x00, 0x02, 0xc0, 0xa8, 0x00, 0x02, 0x14, 0xe9, 0x00, 0x35,    \
        0x11, 0x00, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01,                      \
        0x00, 0x00, 0x23, 0x28, 0x00, 0x00, 0x25, 0x1c,                            \
        0x00, 0x00

/* Options data record for template 257 (system 1, interval 1000, algorithm 2) + 3 padding. */
#define DATA257 \
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0xe8, 0x02, 0x00, 0x00, 0x00

static const uint8_t v9_packet[] = {
        /* header: version 9, count 5, sysUpTime 10000 ms, unix_secs 1700000000,
         * sequence 0x42, source id 7 */
        0x00, 0x09, 0x00, 0x05,
        0x00, 0x00, 0x27, 0x10,
        0x65, 0x53, 0xf1, 0x00,
        0x00, 0x00, 0x00, 0x42,
        0x00, 0x00, 0x00, 0x07,
        /* template flowset (52): template 256, then template 258 with field type 32769 */
        0x00, 0x00, 0x00, 0x34,
        TMPL256,
        0x01, 0x02, 0x00, 0x01,
        0x80, 0x01, 0x00, 0x04,
        /* options template flowset (24): 257, scope length 4, option length 8, 2 padding */
        0x00, 0x01, 0x00, 0x18,
        0x01, 0x01, 0x00, 0x04, 0x00, 0x08,
        0x00, 0x01, 0x00, 0x04,         /* scope: System */
        0x00, 0x22, 0x00, 0x04,         /* SAMPLING_INTERVAL */
        0x00, 0x23, 0x00, 0x01,         /* SAMPLING_ALGORITHM */
        0x00, 0x00,
        /* data flowset 256 (64) */
        0x01, 0x00, 0x00, 0x40,
        DATA256,
        /* options data flowset 257 (16) */
        0x01, 0x01, 0x00, 0x10,
        DATA257,
};

static const uint8_t ipfix_expect[] = {
        /* version 10, length 162, export time = unix_secs, sequence and ODID copied */
        0x00, 0x0a, 0x00, 0xa2,
        0x65, 0x53, 0xf1, 0x00,
        0x00, 0x00, 0x00, 0x42,
        0x00, 0x00, 0x00, 0x07,
        /* template set: only template 256 is left */
        0x00, 0x02, 0x00, 0x2c,
        TMPL256,
        /* options template set: id 257, field count (4+8)/4 = 3, scope count 4/4 = 1 */
        0x00, 0x03, 0x00, 0x16,
        0x01, 0x01, 0x00, 0x03, 0x00, 0x01,
        0x00, 0x01, 0x00, 0x04,
        0x00, 0x22, 0x00, 0x04,
        0x00, 0x23, 0x00, 0x01,
        /* data sets copied with their padding */
        0x01, 0x00, 0x00, 0x40,
        DATA256,
        0x01, 0x01, 0x00, 0x10,
        DATA257,
};

#define INIT_MS (1700000000000ull - 10000u)

static void test_translate(void **state) {
        uint8_t out[sizeof(v9_packet)];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 99;

        assert_int_equal(sizeof(v9_packet), 176);
        assert_int_equal(sizeof(ipfix_expect), 162);
        memset(out, 0xee, sizeof(out));
        /* cap == len suffices */
        assert_int_equal(netflow9_to_ipfix(v9_packet, sizeof(v9_packet), out, sizeof(out), &len,
                                           &init, &dropped), 0);
        assert_int_equal(len, sizeof(ipfix_expect));
        assert_memory_equal(out, ipfix_expect, sizeof(ipfix_expect));
        assert_int_equal(init, INIT_MS);
        assert_int_equal(dropped, 1);           /* template 258 */

        /* the result parses with the IPFIX helpers */
        {
                IpfixHeader h;
                IpfixTemplate *t = NULL;
                size_t used = 0, ml = 0;

                assert_int_equal(ipfix_frame(out, len, 65535, &ml), 1);
                assert_int_equal(ml, len);
                assert_int_equal(ipfix_header_parse(out, len, &h), 0);
                assert_int_equal(h.export_time, 1700000000);
                assert_int_equal(h.sequence, 0x42);
                assert_int_equal(h.odid, 7);
                /* options template record at 16 + 44 + 4 */
                assert_int_equal(ipfix_template_parse(out + 64, 18, true, &t, &used), 0);
                assert_int_equal(used, 18);
                assert_int_equal(t->id, 257);
                assert_int_equal(t->field_count, 3);
                assert_int_equal(t->scope_count, 1);
                assert_int_equal(t->min_record_len, 9);
                free(t);
        }

        /* ret_dropped may be NULL */
        assert_int_equal(netflow9_to_ipfix(v9_packet, sizeof(v9_packet), out, sizeof(out), &len,
                                           &init, NULL), 0);
        assert_int_equal(len, sizeof(ipfix_expect));
}

static void test_options_layout(void **state) {
        /* two scope fields, three option fields: count 5, scope count 2; no padding */
        static const uint8_t in[] = {
                0x00, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09,
                0x00, 0x01, 0x00, 0x1e,
                0x01, 0x40, 0x00, 0x08, 0x00, 0x0c,
                0x00, 0x01, 0x00, 0x04, 0x00, 0x02, 0x00, 0x02,
                0x00, 0x22, 0x00, 0x04, 0x00, 0x23, 0x00, 0x01, 0x00, 0x30, 0x00, 0x01,
        };
        static const uint8_t expect[] = {
                0x00, 0x0a, 0x00, 0x2e, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
                0x00, 0x00, 0x00, 0x09,
                0x00, 0x03, 0x00, 0x1e,
                0x01, 0x40, 0x00, 0x05, 0x00, 0x02,
                0x00, 0x01, 0x00, 0x04, 0x00, 0x02, 0x00, 0x02,
                0x00, 0x22, 0x00, 0x04, 0x00, 0x23, 0x00, 0x01, 0x00, 0x30, 0x00, 0x01,
        };
        uint8_t out[sizeof(in)];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 99;

        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), 0);
        assert_int_equal(len, sizeof(expect));
        assert_memory_equal(out, expect, sizeof(expect));
        assert_int_equal(dropped, 0);
        assert_int_equal(init, 1000);           /* 1 s since the epoch, uptime 0 */
}

static void test_malformed(void **state) {
        uint8_t in[sizeof(v9_packet)];
        uint8_t out[sizeof(v9_packet) + 16];
        size_t len = 12345;
        uint64_t init = 777;
        unsigned dropped = 99;

        /* truncated header */
        for (size_t l = 0; l < NETFLOW9_HEADER_SIZE; l++)
                assert_int_equal(netflow9_to_ipfix(v9_packet, l, out, sizeof(out), &len, &init,
                                                   &dropped), -EBADMSG);
        assert_int_equal(len, 12345);
        assert_int_equal(init, 777);
        /* the header alone is a valid, empty packet */
        assert_int_equal(netflow9_to_ipfix(v9_packet, NETFLOW9_HEADER_SIZE, out, sizeof(out),
                                           &len, &init, &dropped), 0);
        assert_int_equal(len, IPFIX_HEADER_SIZE);
        assert_int_equal(wire_read_u16(out + 2), IPFIX_HEADER_SIZE);
        len = 12345;

        /* not version 9 */
        memcpy(in, v9_packet, sizeof(in));
        wire_write_u16(in, 5);
        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), -EBADMSG);
        /* output buffer smaller than the input */
        assert_int_equal(netflow9_to_ipfix(v9_packet, sizeof(v9_packet), out,
                                           sizeof(v9_packet) - 1, &len, &init, &dropped),
                         -EBADMSG);

        /* a flowset that runs past the end of the datagram: the last one, cut short */
        assert_int_equal(netflow9_to_ipfix(v9_packet, sizeof(v9_packet) - 1, out, sizeof(out),
                                           &len, &init, &dropped), -EBADMSG);
        /* ... or the first one, claiming more than the packet holds */
        memcpy(in, v9_packet, sizeof(in));
        wire_write_u16(in + 22, (uint16_t) (sizeof(in) - 20 + 4));
        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), -EBADMSG);
        /* flowset length below 4 */
        wire_write_u16(in + 22, 3);
        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), -EBADMSG);
        wire_write_u16(in + 22, 0);
        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), -EBADMSG);

        /* a template record that overruns its flowset: 256 claims 13 fields */
        memcpy(in, v9_packet, sizeof(in));
        wire_write_u16(in + 24 + 2, 13);
        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), -EBADMSG);

        /* options template: scope length not a multiple of 4, zero, or overrunning */
        memcpy(in, v9_packet, sizeof(in));
        wire_write_u16(in + 72 + 4 + 2, 3);
        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), -EBADMSG);
        wire_write_u16(in + 72 + 4 + 2, 0);
        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), -EBADMSG);
        wire_write_u16(in + 72 + 4 + 2, 4);
        wire_write_u16(in + 72 + 4 + 4, 16);
        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), -EBADMSG);
        assert_int_equal(len, 12345);
}

static void test_enterprise_types_dropped(void **state) {
        static const uint8_t in[] = {
                0x00, 0x09, 0x00, 0x03, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x02,
                0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
                /* template flowset holding only a template with a type >= 32768 */
                0x00, 0x00, 0x00, 0x10,
                0x01, 0x02, 0x00, 0x02,
                0x00, 0x01, 0x00, 0x04,
                0x80, 0x00, 0x00, 0x02,
                /* options template with an option type >= 32768 */
                0x00, 0x01, 0x00, 0x12,
                0x01, 0x03, 0x00, 0x04, 0x00, 0x04,
                0x00, 0x01, 0x00, 0x04,
                0xff, 0xff, 0x00, 0x04,
                /* data for 258 passes through untouched */
                0x01, 0x02, 0x00, 0x0a,
                0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
                /* a reserved flowset id is skipped */
                0x00, 0x05, 0x00, 0x08, 0xaa, 0xbb, 0xcc, 0xdd,
                /* trailing octets after the last flowset are ignored */
                0x00, 0x00,
        };
        static const uint8_t expect[] = {
                0x00, 0x0a, 0x00, 0x1a, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
                0x00, 0x00, 0x00, 0x01,
                0x01, 0x02, 0x00, 0x0a,
                0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
        };
        uint8_t out[sizeof(in)];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 0;

        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), 0);
        assert_int_equal(dropped, 2);
        assert_int_equal(len, sizeof(expect));
        assert_memory_equal(out, expect, sizeof(expect));
        assert_int_equal(init, 2000 - 1000);
}

/* ---- through a real decoder --------------------------------------------------------------- */

typedef struct Fixture {
        CollectorCounters c;
        TmplStore *store;
        DecoderCtx *ctx;
        Decoder *dec;
        FlowRecord out[16];
        size_t n_out;
} Fixture;

static FlowRecord *reserve(void *ud) {
        Fixture *f = ud;
        if (f->n_out >= 16)
                return NULL;
        return &f->out[f->n_out++];
}

static const ExporterKey key = {
        .addr = { [10] = 0xff, [11] = 0xff, 192, 0, 2, 1 }, .family = 4, .odid = 7,
};

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        DecoderLimits lim = { .max_templates = 8, .max_unknown_elements = 4 };
        assert_non_null(f);
        assert_int_equal(tmpl_store_new_memory(&f->store, 100), 0);
        assert_int_equal(decoder_ctx_new(&f->ctx, &lim, f->store, &f->c, reserve, f), 0);
        assert_int_equal(decoder_new(f->ctx, &key, &f->dec), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        decoder_free(f->dec);
        decoder_ctx_free(f->ctx);
        tmpl_store_free(f->store);
        free(f);
        return 0;
}

static void test_decode_translated(void **state) {
        Fixture *f = *state;
        uint8_t out[sizeof(v9_packet)];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 0;

        assert_int_equal(netflow9_to_ipfix(v9_packet, sizeof(v9_packet), out, sizeof(out), &len,
                                           &init, &dropped), 0);
        assert_int_equal(decoder_feed(f->dec, out, len, init), 2);
        assert_int_equal(f->n_out, 2);
        assert_int_equal(f->c.templates_learned, 2);    /* 256 and options 257 */
        assert_int_equal(f->c.options_records, 1);
        assert_int_equal(f->c.records, 2);

        /* init = 1700000000000 - 10000; FIRST/LAST_SWITCHED 5000/8000 and 9000/9500 */
        assert_int_equal(f->out[0].start_ms, 1699999995000ull);
        assert_int_equal(f->out[0].end_ms, 1699999998000ull);
        assert_int_equal(f->out[1].start_ms, 1699999999000ull);
        assert_int_equal(f->out[1].end_ms, 1699999999500ull);

        assert_int_equal(f->out[0].family, 4);
        assert_int_equal(f->out[0].src_addr[10], 0xff);
        assert_int_equal(f->out[0].src_addr[12], 10);
        assert_int_equal(f->out[0].src_addr[15], 1);
        assert_int_equal(f->out[0].dst_addr[12], 192);
        assert_int_equal(f->out[0].src_port, 1234);
        assert_int_equal(f->out[0].dst_port, 443);
        assert_int_equal(f->out[0].proto, 6);
        assert_int_equal(f->out[0].octets, 1500);
        assert_int_equal(f->out[0].packets, 3);
        assert_int_equal(f->out[0].odid, 7);
        assert_int_equal(f->out[0].template_id, 256);
        assert_int_equal(f->out[1].src_port, 5353);
        assert_int_equal(f->out[1].dst_port, 53);
        assert_int_equal(f->out[1].proto, 17);
        assert_int_equal(f->out[1].octets, 80);
        assert_int_equal(f->out[1].packets, 1);
        assert_int_equal(f->out[1].dst_addr[15], 2);

        /* a later packet with data only (template already known), uptime now 20000 ms */
        {
                static const uint8_t data_only[] = {
                        0x00, 0x09, 0x00, 0x01, 0x00, 0x00, 0x4e, 0x20, 0x65, 0x53, 0xf1, 0x0a,
                        0x00, 0x00, 0x00, 0x43, 0x00, 0x00, 0x00, 0x07,
                        0x01, 0x00, 0x00, 0x24,
                        0x0a, 0x00, 0x00, 0x03, 0xc0, 0xa8, 0x00, 0x03, 0x00, 0x50, 0xc3, 0x50,
                        0x06, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x01,
                        0x00, 0x00, 0x4a, 0x38, 0x00, 0x00, 0x4e, 0x20,
                        0x00, 0x00, 0x00,
                };
                uint8_t o2[sizeof(data_only)];

                assert_int_equal(netflow9_to_ipfix(data_only, sizeof(data_only), o2, sizeof(o2),
                                                   &len, &init, &dropped), 0);
                /* the exporter did not reboot: same init time */
                assert_int_equal(init, 1700000010000ull - 20000u);
                assert_int_equal(init, INIT_MS);
                assert_int_equal(decoder_feed(f->dec, o2, len, init), 1);
                assert_int_equal(f->out[2].start_ms, INIT_MS + 19000u);
                assert_int_equal(f->out[2].end_ms, INIT_MS + 20000u);
                assert_int_equal(f->out[2].dst_port, 50000);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_translate),
                cmocka_unit_test(test_options_layout),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_enterprise_types_dropped),
                cmocka_unit_test_setup_teardown(test_decode_translated, setup, teardown),
        };
        return cmocka_run_group_tests_name("netflow9", tests, NULL, NULL);
}
