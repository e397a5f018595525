/* SPDX-License-Identifier: MIT */
/*
 * test-netflow9.c - NetFlow v9 to IPFIX translation: a hand-built v9 datagram (template,
 * options template and data flowsets with padding) becomes the expected IPFIX message byte
 * for byte; init time, malformed packets, vendor field types (>= 32768) translated into
 * enterprise-specific fields, templates without fields, zero padding after the last flowset,
 * output size limits and reserved flowsets; and the translated message decoded by a real
 * Decoder, whose flow times come from the sysUpTime-relative fields, also across a wrap of
 * the 32-bit uptime.
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

#define PEN_OCTETS 0xff, 0xff, 0xff, 0xff      /* NETFLOW9_VENDOR_PEN */

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
        /* version 10, length 174, export time = unix_secs, sequence and ODID copied */
        0x00, 0x0a, 0x00, 0xae,
        0x65, 0x53, 0xf1, 0x00,
        0x00, 0x00, 0x00, 0x42,
        0x00, 0x00, 0x00, 0x07,
        /* template set: 256, and 258 whose type 32769 became id 1 with the enterprise bit
         * and the pseudo-PEN: 4 octets longer than in v9 */
        0x00, 0x02, 0x00, 0x38,
        TMPL256,
        0x01, 0x02, 0x00, 0x01,
        0x80, 0x01, 0x00, 0x04, PEN_OCTETS,
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
        uint8_t out[sizeof(ipfix_expect)];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 99;

        assert_int_equal(sizeof(v9_packet), 176);
        assert_int_equal(sizeof(ipfix_expect), 174);
        memset(out, 0xee, sizeof(out));
        /* a buffer of exactly the result's size suffices */
        assert_int_equal(netflow9_to_ipfix(v9_packet, sizeof(v9_packet), out, sizeof(out), &len,
                                           &init, &dropped), 0);
        assert_int_equal(len, sizeof(ipfix_expect));
        assert_memory_equal(out, ipfix_expect, sizeof(ipfix_expect));
        assert_int_equal(init, INIT_MS);
        assert_int_equal(dropped, 0);

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
                /* template 258 at 16 + 4 + 40: one enterprise-specific field */
                assert_int_equal(ipfix_template_parse(out + 60, 12, false, &t, &used), 0);
                assert_int_equal(used, 12);
                assert_int_equal(t->id, 258);
                assert_int_equal(t->field_count, 1);
                assert_int_equal(t->fields[0].id, 1);
                assert_int_equal(t->fields[0].pen, NETFLOW9_VENDOR_PEN);
                assert_int_equal(t->fields[0].len, 4);
                free(t);
                t = NULL;
                /* options template record at 16 + 56 + 4 */
                assert_int_equal(ipfix_template_parse(out + 76, 18, true, &t, &used), 0);
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
        uint8_t out[sizeof(ipfix_expect) + 16];
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
        /* output buffer one octet short of the result, or short of the IPFIX header */
        assert_int_equal(netflow9_to_ipfix(v9_packet, sizeof(v9_packet), out,
                                           sizeof(ipfix_expect) - 1, &len, &init, &dropped),
                         -ENOBUFS);
        assert_int_equal(netflow9_to_ipfix(v9_packet, NETFLOW9_HEADER_SIZE, out,
                                           IPFIX_HEADER_SIZE - 1, &len, &init, &dropped),
                         -ENOBUFS);

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

/* A template record without fields would be an IPFIX withdrawal; v9 has none: dropped. */
static void test_zero_count_template_dropped(void **state) {
        static const uint8_t in[] = {
                0x00, 0x09, 0x00, 0x03, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x02,
                0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07,
                /* template 260 with field count 0, then template 261 */
                0x00, 0x00, 0x00, 0x10,
                0x01, 0x04, 0x00, 0x00,
                0x01, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00, 0x04,
                /* a flowset holding only such a record */
                0x00, 0x00, 0x00, 0x08,
                0x01, 0x06, 0x00, 0x00,
        };
        static const uint8_t expect[] = {
                0x00, 0x0a, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
                0x00, 0x00, 0x00, 0x07,
                0x00, 0x02, 0x00, 0x0c,
                0x01, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00, 0x04,
        };
        uint8_t out[64];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 0;

        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), 0);
        assert_int_equal(dropped, 2);
        assert_int_equal(len, sizeof(expect));
        assert_memory_equal(out, expect, sizeof(expect));
}

/* Zero octets after the last flowset are padding, however many; other trailing octets that
 * do not parse as a flowset are not. */
static void test_zero_padding(void **state) {
        static const size_t pads[] = { 4, 5, 64, 1220 };
        uint8_t in[sizeof(v9_packet) + 1220];
        uint8_t out[sizeof(ipfix_expect)];
        size_t len;
        uint64_t init;
        unsigned dropped;

        for (size_t i = 0; i < sizeof(pads) / sizeof(pads[0]); i++) {
                size_t n = sizeof(v9_packet) + pads[i];

                memset(in, 0, sizeof(in));
                memcpy(in, v9_packet, sizeof(v9_packet));
                len = 0;
                assert_int_equal(netflow9_to_ipfix(in, n, out, sizeof(out), &len, &init,
                                                   &dropped), 0);
                assert_int_equal(len, sizeof(ipfix_expect));
                assert_memory_equal(out, ipfix_expect, sizeof(ipfix_expect));

                /* one non-zero octet anywhere in the tail: not padding */
                in[n - 1] = 0x01;
                assert_int_equal(netflow9_to_ipfix(in, n, out, sizeof(out), &len, &init,
                                                   &dropped), -EBADMSG);
                in[n - 1] = 0;
                in[sizeof(v9_packet) + 3] = 0x02;       /* "flowset" 0, length 2 */
                assert_int_equal(netflow9_to_ipfix(in, n, out, sizeof(out), &len, &init,
                                                   &dropped), -EBADMSG);
        }
}

/* Vendor field types (>= 32768) become enterprise-specific fields with NETFLOW9_VENDOR_PEN,
 * in templates and options templates; reserved flowsets are skipped and a tail of fewer than
 * 4 octets ignored. */
static const uint8_t vendor_v9[] = {
        0x00, 0x09, 0x00, 0x03, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x02,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07,
        /* template 258: IN_BYTES and type 32768 */
        0x00, 0x00, 0x00, 0x10,
        0x01, 0x02, 0x00, 0x02,
        0x00, 0x01, 0x00, 0x04,
        0x80, 0x00, 0x00, 0x02,
        /* options template 259 with option type 65535 */
        0x00, 0x01, 0x00, 0x12,
        0x01, 0x03, 0x00, 0x04, 0x00, 0x04,
        0x00, 0x01, 0x00, 0x04,
        0xff, 0xff, 0x00, 0x04,
        /* data for 258 */
        0x01, 0x02, 0x00, 0x0a,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
        /* a reserved flowset id is skipped */
        0x00, 0x05, 0x00, 0x08, 0xaa, 0xbb, 0xcc, 0xdd,
        /* trailing octets after the last flowset, fewer than a flowset header */
        0x00, 0x00,
};

static const uint8_t vendor_ipfix[] = {
        0x00, 0x0a, 0x00, 0x44, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x07,
        0x00, 0x02, 0x00, 0x14,
        0x01, 0x02, 0x00, 0x02,
        0x00, 0x01, 0x00, 0x04,
        0x80, 0x00, 0x00, 0x02, PEN_OCTETS,
        0x00, 0x03, 0x00, 0x16,
        0x01, 0x03, 0x00, 0x02, 0x00, 0x01,
        0x00, 0x01, 0x00, 0x04,
        0xff, 0xff, 0x00, 0x04, PEN_OCTETS,
        0x01, 0x02, 0x00, 0x0a,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
};

static void test_vendor_types_translated(void **state) {
        uint8_t out[sizeof(vendor_ipfix)];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 99;
        IpfixTemplate *t = NULL;
        size_t used = 0;

        assert_int_equal(netflow9_to_ipfix(vendor_v9, sizeof(vendor_v9), out, sizeof(out), &len,
                                           &init, &dropped), 0);
        assert_int_equal(dropped, 0);
        assert_int_equal(len, sizeof(vendor_ipfix));
        assert_memory_equal(out, vendor_ipfix, sizeof(vendor_ipfix));
        assert_int_equal(init, 2000 - 1000);

        assert_int_equal(ipfix_template_parse(out + 20, 16, false, &t, &used), 0);
        assert_int_equal(used, 16);
        assert_int_equal(t->fields[1].id, 0);
        assert_int_equal(t->fields[1].pen, NETFLOW9_VENDOR_PEN);
        assert_int_equal(t->fields[1].len, 2);
        assert_int_equal(t->min_record_len, 6);
        free(t);
        assert_int_equal(ipfix_template_parse(out + 40, 18, true, &t, &used), 0);
        assert_int_equal(used, 18);
        assert_int_equal(t->fields[1].id, 0x7fff);
        assert_int_equal(t->fields[1].pen, NETFLOW9_VENDOR_PEN);
        free(t);
}

/* The result can be longer than the input, and is bounded by the IPFIX length field. */
static void test_size_limits(void **state) {
        /* two vendor fields: 36 octets of v9 become 40 of IPFIX */
        static const uint8_t small[] = {
                0x00, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07,
                0x00, 0x00, 0x00, 0x10,
                0x01, 0x00, 0x00, 0x02, 0x82, 0x35, 0x00, 0x04, 0xdd, 0x7d, 0x00, 0x02,
        };
        static uint8_t in[65536 + 64], out[2 * 65536];
        size_t len = 0, body;
        uint64_t init;
        unsigned dropped;

        assert_int_equal(netflow9_to_ipfix(small, sizeof(small), out, sizeof(small), &len,
                                           &init, &dropped), -ENOBUFS);
        assert_int_equal(netflow9_to_ipfix(small, sizeof(small), out, sizeof(small) + 4, &len,
                                           &init, &dropped), 0);
        assert_int_equal(len, 40);
        assert_int_equal(wire_read_u32(out + 28), NETFLOW9_VENDOR_PEN);
        assert_int_equal(wire_read_u32(out + 36), NETFLOW9_VENDOR_PEN);

        /* A template with one vendor field (12 octets, 16 translated) and a data flowset
         * making the result exactly 65535 octets, then one more. */
        for (body = 65499; body <= 65500; body++) {
                size_t n = NETFLOW9_HEADER_SIZE + 12 + 4 + body;
                int expect = body == 65499 ? 0 : -EMSGSIZE;

                memset(in, 0x5a, sizeof(in));
                memcpy(in, small, NETFLOW9_HEADER_SIZE);
                memcpy(in + 20, (const uint8_t[]) { 0x00, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00,
                                                    0x01, 0x80, 0x01, 0x00, 0x04 }, 12);
                wire_write_u16(in + 32, 256);
                wire_write_u16(in + 34, (uint16_t) (body + 4));
                len = 0;
                assert_int_equal(netflow9_to_ipfix(in, n, out, NETFLOW9_MAX_OUTPUT, &len, &init,
                                                   &dropped), expect);
                /* a larger buffer does not lift the limit */
                assert_int_equal(netflow9_to_ipfix(in, n, out, sizeof(out), &len, &init,
                                                   &dropped), expect);
                if (expect == 0) {
                        assert_int_equal(len, IPFIX_MAX_MESSAGE);
                        assert_int_equal(wire_read_u16(out + 2), IPFIX_MAX_MESSAGE);
                        assert_int_equal(ipfix_frame(out, len, IPFIX_MAX_MESSAGE, &len), 1);
                        /* a buffer one octet short */
                        assert_int_equal(netflow9_to_ipfix(in, n, out, NETFLOW9_MAX_OUTPUT - 1,
                                                           &len, &init, &dropped), -ENOBUFS);
                }
        }
        /* a template flowset alone past the limit: 16381 vendor fields */
        memcpy(in, small, NETFLOW9_HEADER_SIZE);
        wire_write_u16(in + 20, 0);
        wire_write_u16(in + 22, 65535 - 3);
        wire_write_u16(in + 24, 256);
        wire_write_u16(in + 26, (65535 - 3 - 8) / 4);
        for (size_t i = 28; i < 20 + 65532; i += 4) {
                wire_write_u16(in + i, 0x8001);
                wire_write_u16(in + i + 2, 4);
        }
        assert_int_equal(netflow9_to_ipfix(in, 20 + 65532, out, sizeof(out), &len, &init,
                                           &dropped), -EMSGSIZE);
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
        assert_int_equal(f->c.templates_learned, 3);    /* 256, 258 and options 257 */
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

/* Data for a template with vendor fields decodes, nothing is counted as an error. */
static void test_decode_vendor_types(void **state) {
        Fixture *f = *state;
        uint8_t out[sizeof(vendor_ipfix)];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 0;

        assert_int_equal(netflow9_to_ipfix(vendor_v9, sizeof(vendor_v9), out, sizeof(out), &len,
                                           &init, &dropped), 0);
        assert_int_equal(decoder_feed(f->dec, out, len, init), 1);
        assert_int_equal(f->n_out, 1);
        assert_int_equal(f->c.templates_learned, 2);    /* 258 and options 259 */
        assert_int_equal(f->c.missing_template_sets, 0);
        assert_int_equal(f->c.err_template, 0);
        assert_int_equal(f->c.err_set, 0);
        assert_int_equal(f->c.err_record, 0);
        assert_int_equal(f->out[0].template_id, 258);
        assert_int_equal(f->out[0].octets, 1);
}

/*
 * sysUpTime is 32-bit milliseconds and wraps every 49.7 days. 1000 ms after a wrap, a flow
 * that started 2 s before the export time has FIRST_SWITCHED 2^32 - 1000 (before the wrap)
 * and LAST_SWITCHED 500: both lie before the export time, not 49.7 days after it.
 */
static void test_decode_uptime_wrap(void **state) {
        static const uint8_t in[] = {
                /* sysUpTime 1000 ms, unix_secs 1700000000, source id 7 */
                0x00, 0x09, 0x00, 0x02, 0x00, 0x00, 0x03, 0xe8, 0x65, 0x53, 0xf1, 0x00,
                0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07,
                0x00, 0x00, 0x00, 0x2c,
                TMPL256,
                0x01, 0x00, 0x00, 0x24,
                0x0a, 0x00, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x01, 0x04, 0xd2, 0x01, 0xbb,
                0x06, 0x00, 0x00, 0x05, 0xdc, 0x00, 0x00, 0x00, 0x03,
                0xff, 0xff, 0xfc, 0x18,         /* FIRST_SWITCHED 2^32 - 1000 */
                0x00, 0x00, 0x01, 0xf4,         /* LAST_SWITCHED 500 */
                0x00, 0x00, 0x00,
        };
        const uint64_t export_ms = 1700000000000ull;
        Fixture *f = *state;
        uint8_t out[sizeof(in)];
        size_t len = 0;
        uint64_t init = 0;
        unsigned dropped = 0;

        assert_int_equal(netflow9_to_ipfix(in, sizeof(in), out, sizeof(out), &len, &init,
                                           &dropped), 0);
        assert_int_equal(init, export_ms - 1000);
        assert_int_equal(decoder_feed(f->dec, out, len, init), 1);
        assert_int_equal(f->out[0].start_ms, export_ms - 2000);
        assert_int_equal(f->out[0].end_ms, export_ms - 500);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_translate),
                cmocka_unit_test(test_options_layout),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_zero_count_template_dropped),
                cmocka_unit_test(test_zero_padding),
                cmocka_unit_test(test_vendor_types_translated),
                cmocka_unit_test(test_size_limits),
                cmocka_unit_test_setup_teardown(test_decode_translated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_decode_vendor_types, setup, teardown),
                cmocka_unit_test_setup_teardown(test_decode_uptime_wrap, setup, teardown),
        };
        return cmocka_run_group_tests_name("netflow9", tests, NULL, NULL);
}
