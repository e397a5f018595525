/* SPDX-License-Identifier: MIT */
/*
 * test-ipfix.c - RFC 7011 helpers in common/ipfix.c: stream framing (partial reads, several
 * messages in one buffer, bad length and version), template record parsing (enterprise
 * fields, options scope counts, withdrawal, truncation, limits), data record length walking
 * with variable-length fields and padding, and the template serialization codec.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ipfix.h"
#include "wire.h"

/* ---- framing ------------------------------------------------------------------------------ */

/* Message 1: header (length 20, export time 0x65000000, seq 1, odid 7) + empty set 256. */
static const uint8_t msg1[] = {
        0x00, 0x0a, 0x00, 0x14, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x07,
        0x01, 0x00, 0x00, 0x04,
};
/* Message 2: length 24, one set 256 of 4 octets of data. */
static const uint8_t msg2[] = {
        0x00, 0x0a, 0x00, 0x18, 0x65, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
        0x00, 0x00, 0x00, 0x07,
        0x01, 0x00, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef,
};

static void test_frame_complete(void **state) {
        size_t l = 0;
        IpfixHeader h;

        assert_int_equal(ipfix_frame(msg1, sizeof(msg1), 65535, &l), 1);
        assert_int_equal(l, 20);
        assert_int_equal(ipfix_header_parse(msg1, sizeof(msg1), &h), 0);
        assert_int_equal(h.version, 10);
        assert_int_equal(h.length, 20);
        assert_int_equal(h.export_time, 0x65000000);
        assert_int_equal(h.sequence, 1);
        assert_int_equal(h.odid, 7);
        assert_int_equal(ipfix_header_parse(msg1, 15, &h), -EBADMSG);

        /* max_msg equal to the length is accepted */
        l = 0;
        assert_int_equal(ipfix_frame(msg2, sizeof(msg2), 24, &l), 1);
        assert_int_equal(l, 24);
}

static void test_frame_split(void **state) {
        static const size_t prefixes[] = { 0, 1, 2, 3, 4, 15, 16, 19 };
        size_t l = 12345;

        for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
                assert_int_equal(ipfix_frame(msg1, prefixes[i], 65535, &l), 0);
                assert_int_equal(l, 12345);     /* untouched until a message is complete */
        }
        assert_int_equal(ipfix_frame(msg1, 20, 65535, &l), 1);
        assert_int_equal(l, 20);
}

static void test_frame_several(void **state) {
        uint8_t buf[sizeof(msg1) + sizeof(msg2) + 3];
        size_t off = 0, l = 0;

        memcpy(buf, msg1, sizeof(msg1));
        memcpy(buf + sizeof(msg1), msg2, sizeof(msg2));
        memcpy(buf + sizeof(msg1) + sizeof(msg2), msg1, 3);     /* start of a third */

        assert_int_equal(ipfix_frame(buf + off, sizeof(buf) - off, 65535, &l), 1);
        assert_int_equal(l, 20);
        off += l;
        assert_int_equal(ipfix_frame(buf + off, sizeof(buf) - off, 65535, &l), 1);
        assert_int_equal(l, 24);
        assert_memory_equal(buf + off, msg2, l);
        off += l;
        assert_int_equal(off, sizeof(buf) - 3);
        assert_int_equal(ipfix_frame(buf + off, sizeof(buf) - off, 65535, &l), 0);
}

static void test_frame_errors(void **state) {
        uint8_t b[20];
        size_t l = 0;

        /* oversized: detected from the 4-octet prefix, before the body arrives */
        memcpy(b, msg2, 4);
        assert_int_equal(ipfix_frame(b, 4, 23, &l), -EMSGSIZE);
        memcpy(b, (const uint8_t[]) { 0x00, 0x0a, 0xff, 0xff }, 4);
        assert_int_equal(ipfix_frame(b, 4, 1500, &l), -EMSGSIZE);

        /* length field below the header size */
        memcpy(b, msg1, sizeof(msg1));
        wire_write_u16(b + 2, 0);
        assert_int_equal(ipfix_frame(b, sizeof(b), 65535, &l), -EBADMSG);
        wire_write_u16(b + 2, 15);
        assert_int_equal(ipfix_frame(b, sizeof(b), 65535, &l), -EBADMSG);
        wire_write_u16(b + 2, 16);              /* header-only message is valid */
        assert_int_equal(ipfix_frame(b, sizeof(b), 65535, &l), 1);
        assert_int_equal(l, 16);

        /* NetFlow v9 on an IPFIX stream: known from the first two octets */
        memcpy(b, msg1, sizeof(msg1));
        wire_write_u16(b, 9);
        assert_int_equal(ipfix_frame(b, 2, 65535, &l), -EPROTO);
        assert_int_equal(ipfix_frame(b, sizeof(b), 65535, &l), -EPROTO);
}

/* ---- template records --------------------------------------------------------------------- */

/* id 256, 3 fields: sourceIPv4Address(4), destinationIPv4Address(4), octetDeltaCount(8);
 * followed by 4 octets that belong to the next record. */
static const uint8_t tmpl_plain[] = {
        0x01, 0x00, 0x00, 0x03,
        0x00, 0x08, 0x00, 0x04,
        0x00, 0x0c, 0x00, 0x04,
        0x00, 0x01, 0x00, 0x08,
        0x01, 0x01, 0x00, 0x01,
};

/* id 300, 3 fields: PEN 12345 IE 1 (2), applicationName varlen, PEN 29305 IE 0x7fff (4) */
static const uint8_t tmpl_enterprise[] = {
        0x01, 0x2c, 0x00, 0x03,
        0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x30, 0x39,
        0x00, 0x60, 0xff, 0xff,
        0xff, 0xff, 0x00, 0x04, 0x00, 0x00, 0x72, 0x79,
};

/* options id 400, 2 fields, scope 1: observationDomainId(4) scope, samplingInterval(4) */
static const uint8_t tmpl_options[] = {
        0x01, 0x90, 0x00, 0x02, 0x00, 0x01,
        0x00, 0x95, 0x00, 0x04,
        0x00, 0x22, 0x00, 0x04,
};

static void test_template_plain(void **state) {
        IpfixTemplate *t = NULL;
        size_t used = 0;

        assert_int_equal(ipfix_template_parse(tmpl_plain, sizeof(tmpl_plain), false, &t, &used), 0);
        assert_non_null(t);
        assert_int_equal(used, 16);
        assert_int_equal(t->id, 256);
        assert_int_equal(t->scope_count, 0);
        assert_int_equal(t->field_count, 3);
        assert_int_equal(t->min_record_len, 16);
        assert_false(t->varlen);
        assert_int_equal(t->flags, 0);
        assert_int_equal(t->fields[0].id, 8);
        assert_int_equal(t->fields[0].len, 4);
        assert_int_equal(t->fields[0].pen, 0);
        assert_int_equal(t->fields[1].id, 12);
        assert_int_equal(t->fields[2].id, 1);
        assert_int_equal(t->fields[2].len, 8);
        free(t);
}

static void test_template_enterprise(void **state) {
        IpfixTemplate *t = NULL;
        size_t used = 0;

        assert_int_equal(ipfix_template_parse(tmpl_enterprise, sizeof(tmpl_enterprise), false,
                                              &t, &used), 0);
        assert_int_equal(used, sizeof(tmpl_enterprise));
        assert_int_equal(t->id, 300);
        assert_int_equal(t->field_count, 3);
        assert_int_equal(t->fields[0].id, 1);   /* enterprise bit stripped */
        assert_int_equal(t->fields[0].pen, 12345);
        assert_int_equal(t->fields[0].len, 2);
        assert_int_equal(t->fields[1].id, 96);
        assert_int_equal(t->fields[1].pen, 0);
        assert_int_equal(t->fields[1].len, IPFIX_VARLEN);
        assert_int_equal(t->fields[2].id, 0x7fff);
        assert_int_equal(t->fields[2].pen, 29305);
        assert_true(t->varlen);
        assert_int_equal(t->min_record_len, 2 + 1 + 4);        /* varlen counts as 1 */
        free(t);

        /* truncated inside the PEN of the last field */
        t = NULL;
        assert_int_equal(ipfix_template_parse(tmpl_enterprise, sizeof(tmpl_enterprise) - 1,
                                              false, &t, &used), -EBADMSG);
        assert_null(t);
}

static void test_template_options(void **state) {
        uint8_t b[sizeof(tmpl_options)];
        IpfixTemplate *t = NULL;
        size_t used = 0;

        assert_int_equal(ipfix_template_parse(tmpl_options, sizeof(tmpl_options), true, &t, &used),
                         0);
        assert_int_equal(used, 14);
        assert_int_equal(t->id, 400);
        assert_int_equal(t->scope_count, 1);
        assert_int_equal(t->field_count, 2);
        assert_int_equal(t->fields[0].id, 149);
        assert_int_equal(t->fields[1].id, 34);
        assert_int_equal(t->min_record_len, 8);
        free(t);

        memcpy(b, tmpl_options, sizeof(b));
        wire_write_u16(b + 4, 2);               /* scope count == field count is allowed */
        t = NULL;
        assert_int_equal(ipfix_template_parse(b, sizeof(b), true, &t, &used), 0);
        assert_int_equal(t->scope_count, 2);
        free(t);

        t = NULL;
        wire_write_u16(b + 4, 0);
        assert_int_equal(ipfix_template_parse(b, sizeof(b), true, &t, &used), -EBADMSG);
        wire_write_u16(b + 4, 3);
        assert_int_equal(ipfix_template_parse(b, sizeof(b), true, &t, &used), -EBADMSG);
        /* scope count missing altogether */
        assert_int_equal(ipfix_template_parse(b, 5, true, &t, &used), -EBADMSG);
        assert_null(t);
}

static void test_template_withdrawal(void **state) {
        static const uint8_t wd[] = { 0x01, 0x00, 0x00, 0x00, 0xaa, 0xbb };
        IpfixTemplate *t = (IpfixTemplate *) (uintptr_t) 1;
        size_t used = 0;

        assert_int_equal(ipfix_template_parse(wd, sizeof(wd), false, &t, &used), 1);
        assert_null(t);
        assert_int_equal(used, 4);
        /* an options template withdrawal has no scope count field */
        t = (IpfixTemplate *) (uintptr_t) 1;
        used = 0;
        assert_int_equal(ipfix_template_parse(wd, 4, true, &t, &used), 1);
        assert_null(t);
        assert_int_equal(used, 4);
}

static void test_template_truncated(void **state) {
        IpfixTemplate *t = NULL;
        size_t used = 0;

        for (size_t l = 0; l < 16; l++) {
                assert_int_equal(ipfix_template_parse(tmpl_plain, l, false, &t, &used), -EBADMSG);
                assert_null(t);
        }
        for (size_t l = 0; l < sizeof(tmpl_options); l++)
                assert_int_equal(ipfix_template_parse(tmpl_options, l, true, &t, &used),
                                 -EBADMSG);
        assert_null(t);
}

static void test_template_low_id(void **state) {
        uint8_t b[sizeof(tmpl_plain)];
        IpfixTemplate *t = NULL;
        size_t used = 0;

        memcpy(b, tmpl_plain, sizeof(b));
        wire_write_u16(b, 255);
        assert_int_equal(ipfix_template_parse(b, sizeof(b), false, &t, &used), -EBADMSG);
        wire_write_u16(b, 0);
        assert_int_equal(ipfix_template_parse(b, sizeof(b), false, &t, &used), -EBADMSG);
        assert_null(t);
}

static void test_template_too_many_fields(void **state) {
        size_t sz = 4 + (IPFIX_MAX_FIELDS + 1) * 4;
        uint8_t *b = calloc(1, sz);
        IpfixTemplate *t = NULL;
        size_t used = 0;

        assert_non_null(b);
        wire_write_u16(b, 256);
        for (size_t i = 0; i < IPFIX_MAX_FIELDS + 1; i++) {
                wire_write_u16(b + 4 + i * 4, 1);
                wire_write_u16(b + 6 + i * 4, 1);
        }
        wire_write_u16(b + 2, IPFIX_MAX_FIELDS + 1);
        assert_int_equal(ipfix_template_parse(b, sz, false, &t, &used), -E2BIG);
        assert_null(t);

        wire_write_u16(b + 2, IPFIX_MAX_FIELDS);
        assert_int_equal(ipfix_template_parse(b, sz, false, &t, &used), 0);
        assert_int_equal(used, 4 + IPFIX_MAX_FIELDS * 4);
        assert_int_equal(t->field_count, IPFIX_MAX_FIELDS);
        assert_int_equal(t->min_record_len, IPFIX_MAX_FIELDS);
        free(t);
        free(b);
}

static void test_template_zero_length(void **state) {
        /* two zero-length fields: a record would be zero octets long */
        static const uint8_t zero[] = {
                0x01, 0x00, 0x00, 0x02,
                0x00, 0x01, 0x00, 0x00,
                0x00, 0x02, 0x00, 0x00,
        };
        /* one zero-length field next to a real one is fine */
        static const uint8_t mixed[] = {
                0x01, 0x00, 0x00, 0x02,
                0x00, 0x01, 0x00, 0x00,
                0x00, 0x02, 0x00, 0x04,
        };
        IpfixTemplate *t = NULL;
        size_t used = 0;

        assert_int_equal(ipfix_template_parse(zero, sizeof(zero), false, &t, &used), -EBADMSG);
        assert_null(t);
        assert_int_equal(ipfix_template_parse(mixed, sizeof(mixed), false, &t, &used), 0);
        assert_int_equal(t->min_record_len, 4);
        free(t);
}

/* ---- data records ------------------------------------------------------------------------- */

/* id 500: octetDeltaCount(4), applicationName varlen, destinationTransportPort(2): min 7 */
static const uint8_t tmpl_varlen[] = {
        0x01, 0xf4, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x04,
        0x00, 0x60, 0xff, 0xff,
        0x00, 0x0b, 0x00, 0x02,
};

static IpfixTemplate *parse_or_die(const uint8_t *p, size_t len) {
        IpfixTemplate *t = NULL;
        size_t used;

        assert_int_equal(ipfix_template_parse(p, len, false, &t, &used), 0);
        assert_non_null(t);
        return t;
}

/* Short-form record (10 octets), then a long-form one with a 300-octet value (309 octets). */
static size_t build_varlen_records(uint8_t *b) {
        static const uint8_t shortrec[] = {
                0x00, 0x00, 0x00, 0x01, 0x03, 'd', 'n', 's', 0x00, 0x35,
        };
        size_t o = 0;

        memcpy(b, shortrec, sizeof(shortrec));
        o += sizeof(shortrec);
        wire_write_u32(b + o, 2);
        o += 4;
        b[o++] = 0xff;
        wire_write_u16(b + o, 300);
        o += 2;
        memset(b + o, 'x', 300);
        o += 300;
        wire_write_u16(b + o, 443);
        o += 2;
        return o;
}

static void test_record_len_varlen(void **state) {
        IpfixTemplate *t = parse_or_die(tmpl_varlen, sizeof(tmpl_varlen));
        uint8_t b[400];
        size_t n = build_varlen_records(b);

        assert_int_equal(n, 319);
        assert_int_equal(t->min_record_len, 7);
        assert_int_equal(ipfix_template_record_len(t, b, n), 10);
        assert_int_equal(ipfix_template_record_len(t, b + 10, n - 10), 309);
        /* a zero-length short-form value: 4 + 1 + 0 + 2 */
        assert_int_equal(ipfix_template_record_len(t, (const uint8_t[]) { 0, 0, 0, 0, 0, 0, 0 }, 7),
                         7);
        /* long form can encode a short value too */
        assert_int_equal(ipfix_template_record_len(
                                 t, (const uint8_t[]) { 0, 0, 0, 0, 0xff, 0, 1, 'a', 0, 0 }, 10),
                         10);

        /* truncations: every prefix of either record fails */
        for (size_t l = 0; l < 10; l++)
                assert_int_equal(ipfix_template_record_len(t, b, l), -EBADMSG);
        for (size_t l = 0; l < 309; l++)
                assert_int_equal(ipfix_template_record_len(t, b + 10, l), -EBADMSG);
        /* short prefix claims more than is there */
        assert_int_equal(ipfix_template_record_len(
                                 t, (const uint8_t[]) { 0, 0, 0, 0, 200, 1, 2, 3, 4, 5 }, 10),
                         -EBADMSG);
        /* long form with only one of its two length octets */
        assert_int_equal(ipfix_template_record_len(t, (const uint8_t[]) { 0, 0, 0, 0, 0xff, 0 }, 6),
                         -EBADMSG);
        free(t);
}

static void test_record_len_fixed(void **state) {
        IpfixTemplate *t = parse_or_die(tmpl_plain, sizeof(tmpl_plain));
        uint8_t b[40] = { 0 };

        assert_int_equal(ipfix_template_record_len(t, b, 16), 16);
        assert_int_equal(ipfix_template_record_len(t, b, 40), 16);
        assert_int_equal(ipfix_template_record_len(t, b, 15), -EBADMSG);
        /* 2 records and 8 octets of padding */
        assert_int_equal(ipfix_template_count_records(t, b, 40), 2);
        assert_int_equal(ipfix_template_count_records(t, b, 32), 2);
        assert_int_equal(ipfix_template_count_records(t, b, 15), 0);
        assert_int_equal(ipfix_template_count_records(t, b, 0), 0);
        free(t);
}

static void test_count_records_varlen(void **state) {
        IpfixTemplate *t = parse_or_die(tmpl_varlen, sizeof(tmpl_varlen));
        uint8_t b[400];
        size_t n = build_varlen_records(b);

        assert_int_equal(ipfix_template_count_records(t, b, n), 2);
        assert_int_equal(ipfix_template_count_records(t, b, 0), 0);

        /* zero padding shorter than a minimal record */
        memset(b + n, 0, 6);
        assert_int_equal(ipfix_template_count_records(t, b, n + 6), 2);

        /* trailing octets long enough for a record but not parseable, and not zero */
        static const uint8_t garbage[] = { 0x00, 0x00, 0x00, 0x09, 0x40, 0x01, 0x02, 0x03 };
        memcpy(b + n, garbage, sizeof(garbage));
        assert_int_equal(ipfix_template_count_records(t, b, n + sizeof(garbage)), -EBADMSG);

        /* a truncated second record is an error, not padding */
        assert_int_equal(ipfix_template_count_records(t, b, 100), -EBADMSG);
        free(t);
}

/* ---- serialization ------------------------------------------------------------------------ */

static void test_serialize_round_trip(void **state) {
        static const uint8_t expect[] = {
                0x00, 0x01, 0x00, 0x03,                         /* scope 1, 3 fields */
                0x00, 0x00, 0x30, 0x39, 0x00, 0x01, 0x00, 0x02, /* pen 12345, id 1, len 2 */
                0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0xff, 0xff, /* id 96, varlen */
                0x00, 0x00, 0x72, 0x79, 0x7f, 0xff, 0x00, 0x04, /* pen 29305, id 0x7fff, 4 */
        };
        IpfixTemplate *t = NULL, *u = NULL;
        uint8_t buf[64];

        t = ipfix_template_new(300, 1, 3);
        assert_non_null(t);
        t->fields[0] = (IpfixField) { .pen = 12345, .id = 1, .len = 2 };
        t->fields[1] = (IpfixField) { .pen = 0, .id = 96, .len = IPFIX_VARLEN };
        t->fields[2] = (IpfixField) { .pen = 29305, .id = 0x7fff, .len = 4 };
        ipfix_template_finish(t);
        assert_int_equal(ipfix_template_serialized_size(t), sizeof(expect));
        assert_int_equal(ipfix_template_serialize(t, buf, sizeof(buf)), sizeof(expect));
        assert_memory_equal(buf, expect, sizeof(expect));
        assert_int_equal(ipfix_template_serialize(t, buf, sizeof(expect) - 1), -ENOBUFS);

        assert_int_equal(ipfix_template_deserialize(300, expect, sizeof(expect), &u), 0);
        assert_non_null(u);
        assert_true(ipfix_template_equal(t, u));
        assert_int_equal(u->min_record_len, t->min_record_len);
        assert_true(u->varlen);
        free(u);

        /* another id is a different template */
        u = NULL;
        assert_int_equal(ipfix_template_deserialize(301, expect, sizeof(expect), &u), 0);
        assert_false(ipfix_template_equal(t, u));
        free(u);
        free(t);

        /* a parsed wire template survives the codec */
        t = parse_or_die(tmpl_enterprise, sizeof(tmpl_enterprise));
        assert_int_equal(ipfix_template_serialize(t, buf, sizeof(buf)),
                         (int) ipfix_template_serialized_size(t));
        u = NULL;
        assert_int_equal(ipfix_template_deserialize(300, buf, ipfix_template_serialized_size(t),
                                                    &u), 0);
        assert_true(ipfix_template_equal(t, u));
        free(u);
        free(t);
}

static void test_deserialize_rejects(void **state) {
        uint8_t v[4 + 2 * 8] = {
                0x00, 0x00, 0x00, 0x02,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x04,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x04,
        };
        IpfixTemplate *t = NULL;

        assert_int_equal(ipfix_template_deserialize(256, v, sizeof(v), &t), 0);
        assert_int_equal(t->min_record_len, 8);
        free(t);
        t = NULL;

        for (size_t l = 0; l < sizeof(v); l++)
                assert_int_equal(ipfix_template_deserialize(256, v, l, &t), -EBADMSG);
        /* one octet too many (the length is exact) */
        {
                uint8_t longer[sizeof(v) + 1] = { 0 };
                memcpy(longer, v, sizeof(v));
                assert_int_equal(ipfix_template_deserialize(256, longer, sizeof(longer), &t),
                                 -EBADMSG);
        }
        /* id below 256 */
        assert_int_equal(ipfix_template_deserialize(255, v, sizeof(v), &t), -EBADMSG);
        /* scope count above field count */
        wire_write_u16(v, 3);
        assert_int_equal(ipfix_template_deserialize(256, v, sizeof(v), &t), -EBADMSG);
        wire_write_u16(v, 0);
        /* field count 0 (only the 4-octet prefix) */
        assert_int_equal(ipfix_template_deserialize(256, (const uint8_t[]) { 0, 0, 0, 0 }, 4, &t),
                         -EBADMSG);
        /* too many fields */
        assert_int_equal(ipfix_template_deserialize(256, (const uint8_t[]) { 0, 0, 0x10, 0x01 }, 4,
                                                    &t), -E2BIG);
        /* all fields zero length */
        wire_write_u16(v + 10, 0);
        wire_write_u16(v + 18, 0);
        assert_int_equal(ipfix_template_deserialize(256, v, sizeof(v), &t), -EBADMSG);
        /* field count disagrees with the length (garbage) */
        memset(v, 0xa5, sizeof(v));
        assert_int_equal(ipfix_template_deserialize(256, v, sizeof(v), &t), -E2BIG);
        wire_write_u16(v, 0);
        wire_write_u16(v + 2, 0x0a5);
        assert_int_equal(ipfix_template_deserialize(256, v, sizeof(v), &t), -EBADMSG);
        assert_null(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_frame_complete),
                cmocka_unit_test(test_frame_split),
                cmocka_unit_test(test_frame_several),
                cmocka_unit_test(test_frame_errors),
                cmocka_unit_test(test_template_plain),
                cmocka_unit_test(test_template_enterprise),
                cmocka_unit_test(test_template_options),
                cmocka_unit_test(test_template_withdrawal),
                cmocka_unit_test(test_template_truncated),
                cmocka_unit_test(test_template_low_id),
                cmocka_unit_test(test_template_too_many_fields),
                cmocka_unit_test(test_template_zero_length),
                cmocka_unit_test(test_record_len_varlen),
                cmocka_unit_test(test_record_len_fixed),
                cmocka_unit_test(test_count_records_varlen),
                cmocka_unit_test(test_serialize_round_trip),
                cmocka_unit_test(test_deserialize_rejects),
        };
        return cmocka_run_group_tests_name("ipfix", tests, NULL, NULL);
}
