/* SPDX-License-Identifier: MIT */
/*
 * test-decoder.c - pre-scan and libfixbuf decode: templates, missing templates, withdrawal,
 * redefinition inside one message, options templates, variable-length and enterprise fields,
 * reduced-length encoding, timestamp kinds (sysUpTime also across its 32-bit wrap), the
 * template store path, and malformed sets.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#include "decoder.h"
#include "log.h"
#include "ipfix-builder.h"

typedef struct Fixture {
        CollectorCounters c;
        TmplStore *store;
        DecoderCtx *ctx;
        Decoder *dec;
        FlowRecord out[256];
        size_t n_out;
        bool refuse;
        Msg m;
} Fixture;

static FlowRecord *reserve(void *ud) {
        Fixture *f = ud;
        if (f->refuse || f->n_out >= 256)
                return NULL;
        return &f->out[f->n_out++];
}

static const ExporterKey key = { .addr = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 9 }, .family = 4, .odid = 7 };

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

/* Template 256: ms start/end, octets(8), packets(4, reduced), v4 src/dst, ports, proto. */
static void add_tmpl256(Msg *m) {
        msg_set_begin(m, 2);
        msg_u16(m, 256);
        msg_u16(m, 9);
        msg_field(m, 152, 8, 0);
        msg_field(m, 153, 8, 0);
        msg_field(m, 1, 8, 0);
        msg_field(m, 2, 4, 0);
        msg_field(m, 8, 4, 0);
        msg_field(m, 12, 4, 0);
        msg_field(m, 7, 2, 0);
        msg_field(m, 11, 2, 0);
        msg_field(m, 4, 1, 0);
        msg_set_end(m);
}

static void add_rec256(Msg *m, uint64_t start, uint64_t octets, uint32_t packets, uint8_t last) {
        msg_u64(m, start);
        msg_u64(m, start + 10);
        msg_u64(m, octets);
        msg_u32(m, packets);
        msg_u32(m, 0x0a000001);
        msg_u32(m, 0xc0a80000u | last);
        msg_u16(m, 1234);
        msg_u16(m, 443);
        msg_u8(m, 6);
}

static void test_template_then_data(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        msg_set_begin(m, 256);
        add_rec256(m, 1700000000123ull, 1500, 3, 1);
        add_rec256(m, 1700000000456ull, 99, 1, 2);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 2);
        assert_int_equal(f->n_out, 2);
        assert_int_equal(f->out[0].start_ms, 1700000000123ull);
        assert_int_equal(f->out[0].end_ms, 1700000000133ull);
        assert_int_equal(f->out[0].octets, 1500);
        assert_int_equal(f->out[0].packets, 3);
        assert_int_equal(f->out[0].family, 4);
        assert_int_equal(f->out[0].src_addr[12], 10);
        assert_int_equal(f->out[0].src_addr[15], 1);
        assert_int_equal(f->out[1].dst_addr[15], 2);
        assert_int_equal(f->out[0].src_port, 1234);
        assert_int_equal(f->out[0].dst_port, 443);
        assert_int_equal(f->out[0].proto, 6);
        assert_int_equal(f->out[0].template_id, 256);
        assert_int_equal(f->out[0].odid, 7);
        assert_int_equal(f->out[0].direction, FLOW_DIRECTION_UNKNOWN);
        assert_int_equal(f->c.templates_learned, 1);
        assert_int_equal(f->c.records, 2);
}

static void test_missing_template_counted(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 300);
        msg_u32(m, 1);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_int_equal(f->c.missing_template_sets, 1);
        assert_int_equal(f->c.missing_template_bytes, 8);
        assert_int_equal(f->n_out, 0);
}

static void test_template_from_store(void **state) {
        Fixture *f = *state;
        Decoder *other;
        Msg *m = &f->m;

        /* The template arrives on one session ... */
        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        /* ... and data on another session of the same exporter decodes through the store. */
        assert_int_equal(decoder_new(f->ctx, &key, &other), 0);
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 256);
        add_rec256(m, 1700000000000ull, 42, 1, 1);
        msg_set_end(m);
        assert_int_equal(decoder_feed(other, m->b, msg_end(m), 0), 1);
        assert_int_equal(f->out[0].octets, 42);
        assert_int_equal(f->c.templates_from_store, 1);
        decoder_free(other);
}

static void test_withdrawal_strips_data(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        msg_set_begin(m, 256);
        add_rec256(m, 1700000000000ull, 1, 1, 1);
        msg_set_end(m);
        msg_set_begin(m, 2);            /* withdraw 256 */
        msg_u16(m, 256);
        msg_u16(m, 0);
        msg_set_end(m);
        msg_set_begin(m, 256);          /* data for the withdrawn id must not reach libfixbuf */
        add_rec256(m, 1700000000000ull, 2, 1, 1);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 1);
        assert_int_equal(f->out[0].octets, 1);
        assert_int_equal(f->c.templates_withdrawn, 1);
        assert_int_equal(f->c.missing_template_sets, 1);

        /* withdraw-all (template id == set id) followed by data */
        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        msg_set_begin(m, 2);
        msg_u16(m, 2);
        msg_u16(m, 0);
        msg_set_end(m);
        msg_set_begin(m, 256);
        add_rec256(m, 1700000000000ull, 3, 1, 1);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_int_equal(f->c.templates_withdrawn, 2);
        assert_int_equal(f->c.missing_template_sets, 2);
}

static void test_redefinition_in_one_message(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        msg_set_begin(m, 256);
        add_rec256(m, 1700000000000ull, 777, 1, 1);
        msg_set_end(m);
        /* redefine 256 as: octetDeltaCount(4), sourceIPv6Address, destinationIPv6Address */
        msg_set_begin(m, 2);
        msg_u16(m, 256);
        msg_u16(m, 3);
        msg_field(m, 1, 4, 0);
        msg_field(m, 27, 16, 0);
        msg_field(m, 28, 16, 0);
        msg_set_end(m);
        msg_set_begin(m, 256);
        msg_u32(m, 888);
        for (int i = 0; i < 16; i++)
                msg_u8(m, (uint8_t) (0x20 + i));
        for (int i = 0; i < 16; i++)
                msg_u8(m, (uint8_t) (0x40 + i));
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 2);
        assert_int_equal(f->out[0].octets, 777);
        assert_int_equal(f->out[0].family, 4);
        assert_int_equal(f->out[1].octets, 888);
        assert_int_equal(f->out[1].family, 6);
        assert_int_equal(f->out[1].src_addr[0], 0x20);
        assert_int_equal(f->out[1].dst_addr[15], 0x4f);
        assert_int_equal(f->out[1].start_ms, 1700000000000ull);        /* export time */
        assert_int_equal(f->c.templates_learned, 2);
}

static void test_options_varlen_enterprise(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        /* options template 400: scope observationDomainId(149), samplingInterval */
        msg_set_begin(m, 3);
        msg_u16(m, 400);
        msg_u16(m, 2);
        msg_u16(m, 1);
        msg_field(m, 149, 4, 0);
        msg_field(m, 34, 4, 0);
        msg_set_end(m);
        /* data template 401: enterprise IE (PEN 12345 id 1, 2 octets), varlen string, octets */
        msg_set_begin(m, 2);
        msg_u16(m, 401);
        msg_u16(m, 4);
        msg_field(m, 1, 2, 12345);
        msg_field(m, 96, 65535, 0);     /* applicationName, variable length */
        msg_field(m, 1, 8, 0);
        msg_field(m, 61, 1, 0);         /* flowDirection */
        msg_set_end(m);
        msg_set_begin(m, 400);
        msg_u32(m, 7);
        msg_u32(m, 100);
        msg_set_end(m);
        msg_set_begin(m, 401);
        msg_u16(m, 0xbeef);
        msg_u8(m, 3);
        msg_bytes(m, "dns", 3);
        msg_u64(m, 5000);
        msg_u8(m, 1);
        msg_u16(m, 0xbeef);             /* long-form varlen prefix */
        msg_u8(m, 255);
        msg_u16(m, 4);
        msg_bytes(m, "http", 4);
        msg_u64(m, 6000);
        msg_u8(m, 0);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 2);
        assert_int_equal(f->c.options_records, 1);
        assert_int_equal(f->out[0].octets, 5000);
        assert_int_equal(f->out[0].direction, 1);
        assert_int_equal(f->out[1].octets, 6000);
        assert_int_equal(f->out[1].direction, 0);
}

static void test_truncated_varlen_record_rejected(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 402);
        msg_u16(m, 2);
        msg_field(m, 96, 65535, 0);
        msg_field(m, 1, 8, 0);
        msg_set_end(m);
        msg_set_begin(m, 402);
        msg_u8(m, 200);                 /* claims 200 octets, set holds 9 */
        msg_u64(m, 1);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_int_equal(f->c.err_record, 1);
}

static void test_timestamps(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;
        const uint64_t ntp = (1700000000ull + 2208988800ull) << 32 | 0x80000000u; /* +500 ms */

        msg_begin(m, 10, 1700000100, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 500);                /* seconds */
        msg_u16(m, 2);
        msg_field(m, 150, 4, 0);
        msg_field(m, 151, 4, 0);
        msg_u16(m, 501);                /* micro (NTP format) */
        msg_u16(m, 2);
        msg_field(m, 154, 8, 0);
        msg_field(m, 155, 8, 0);
        msg_u16(m, 502);                /* sysUpTime relative */
        msg_u16(m, 2);
        msg_field(m, 22, 4, 0);
        msg_field(m, 21, 4, 0);
        msg_u16(m, 503);                /* delta microseconds relative to export time */
        msg_u16(m, 2);
        msg_field(m, 158, 4, 0);
        msg_field(m, 159, 4, 0);
        msg_set_end(m);
        msg_set_begin(m, 500);
        msg_u32(m, 1700000000);
        msg_u32(m, 1700000005);
        msg_set_end(m);
        msg_set_begin(m, 501);
        msg_u64(m, ntp);
        msg_u64(m, ntp);
        msg_set_end(m);
        msg_set_begin(m, 502);
        msg_u32(m, 1000);
        msg_u32(m, 3000);
        msg_set_end(m);
        msg_set_begin(m, 503);
        msg_u32(m, 2000000);
        msg_u32(m, 1000000);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 1600000000000ull), 4);
        assert_int_equal(f->out[0].start_ms, 1700000000000ull);
        assert_int_equal(f->out[0].end_ms, 1700000005000ull);
        assert_int_equal(f->out[1].start_ms, 1700000000500ull);
        assert_int_equal(f->out[2].start_ms, 1600000001000ull);
        assert_int_equal(f->out[2].end_ms, 1600000003000ull);
        assert_int_equal(f->out[3].start_ms, 1700000098000ull);
        assert_int_equal(f->out[3].end_ms, 1700000099000ull);
}

/*
 * flowStart/EndSysUpTime are 32-bit milliseconds and wrap every 49.7 days: they are placed
 * relative to the export time, not added to the init time. Exporter up 1000 ms since the
 * last wrap at the export time: 2^32 - 1000 lies 2000 ms before it, 500 lies 500 ms before
 * it, and 1400 (after a 1 s export time rounded down) 400 ms after it.
 */
static void test_sysuptime_wrap(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;
        const uint64_t export_ms = 1700000000000ull;

        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 502);
        msg_u16(m, 2);
        msg_field(m, 22, 4, 0);
        msg_field(m, 21, 4, 0);
        msg_set_end(m);
        msg_set_begin(m, 502);
        msg_u32(m, 0xfffffc18u);
        msg_u32(m, 500);
        msg_u32(m, 500);
        msg_u32(m, 1400);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), export_ms - 1000), 2);
        assert_int_equal(f->out[0].start_ms, export_ms - 2000);
        assert_int_equal(f->out[0].end_ms, export_ms - 500);
        assert_int_equal(f->out[1].start_ms, export_ms - 500);
        assert_int_equal(f->out[1].end_ms, export_ms + 400);
}

static void test_reduced_length_and_bad_lengths(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 600);
        msg_u16(m, 3);
        msg_field(m, 1, 2, 0);          /* octets in 2 octets */
        msg_field(m, 8, 2, 0);          /* sourceIPv4Address with a wrong length: ignored */
        msg_field(m, 10, 1, 0);         /* ingressInterface in 1 octet */
        msg_set_end(m);
        msg_set_begin(m, 600);
        msg_u16(m, 0x1234);
        msg_u16(m, 0xffff);
        msg_u8(m, 9);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 1);
        assert_int_equal(f->out[0].octets, 0x1234);
        assert_int_equal(f->out[0].ingress_if, 9);
        assert_int_equal(f->out[0].src_addr[15], 0);
}

static void test_malformed(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        /* set length beyond the message */
        msg_begin(m, 10, 1700000000, 7);
        msg_u16(m, 256);
        msg_u16(m, 100);
        msg_u32(m, 0);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), -EBADMSG);
        /* set length below 4 */
        msg_begin(m, 10, 1700000000, 7);
        msg_u16(m, 256);
        msg_u16(m, 2);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), -EBADMSG);
        assert_int_equal(f->c.err_set, 2);
        /* header length disagrees with the buffer */
        msg_begin(m, 10, 1700000000, 7);
        msg_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, 20, 0), -EBADMSG);
        /* template id below 256 and a truncated template: counted, nothing installed */
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 5);
        msg_u16(m, 1);
        msg_field(m, 1, 8, 0);
        msg_set_end(m);
        msg_set_begin(m, 2);
        msg_u16(m, 700);
        msg_u16(m, 3);
        msg_field(m, 1, 8, 0);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_int_equal(f->c.err_template, 2);
        assert_int_equal(f->c.templates_learned, 0);
        assert_int_equal(decoder_get_stats(f->dec)->templates, 0);
}

static void test_limits(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        /* 8 templates allowed, the 9th refused */
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        for (uint16_t i = 0; i < 9; i++) {
                msg_u16(m, (uint16_t) (1000 + i));
                msg_u16(m, 1);
                msg_field(m, 1, 8, 0);
        }
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_int_equal(f->c.templates_learned, 8);
        assert_int_equal(f->c.templates_rejected_limit, 1);

        /* unknown enterprise elements: 4 allowed per worker */
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 1000);
        msg_u16(m, 6);
        for (uint16_t i = 0; i < 6; i++)
                msg_field(m, (uint16_t) (100 + i), 4, 99999);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_int_equal(f->c.templates_rejected_unknown_ie, 1);
}

static void test_sink_refusal_counts_nothing_twice(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        f->refuse = true;
        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        msg_set_begin(m, 256);
        add_rec256(m, 1700000000000ull, 1, 1, 1);
        msg_set_end(m);
        /* decoded records are reported; the sink owns the drop accounting */
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 1);
        assert_int_equal(f->n_out, 0);
}


static int setup_hold(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        DecoderLimits lim = { .max_templates = 8, .max_unknown_elements = 4, .hold_ms = 1000,
                              .hold_max_bytes = 200 };
        assert_non_null(f);
        assert_int_equal(tmpl_store_new_memory(&f->store, 100), 0);
        assert_int_equal(decoder_ctx_new(&f->ctx, &lim, f->store, &f->c, reserve, f), 0);
        assert_int_equal(decoder_new(f->ctx, &key, &f->dec), 0);
        *state = f;
        return 0;
}

static void test_hold_then_template(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        /* data first: held, nothing decoded, nothing counted missing */
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 256);
        add_rec256(m, 1700000000000ull, 11, 1, 1);
        add_rec256(m, 1700000000000ull, 22, 1, 2);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_true(decoder_has_held(f->dec));
        assert_int_equal(f->c.held_sets, 1);
        assert_int_equal(f->c.missing_template_sets, 0);
        /* the template arrives: the held records decode in the same call */
        msg_begin(m, 10, 1700000001, 7);
        add_tmpl256(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 2);
        assert_int_equal(f->n_out, 2);
        assert_int_equal(f->out[0].octets, 11);
        assert_int_equal(f->out[1].octets, 22);
        assert_int_equal(f->c.held_decoded_sets, 1);
        assert_int_equal(f->c.records, 2);
        assert_false(decoder_has_held(f->dec));
}

static void test_hold_expires_and_caps(void **state) {
        Fixture *f = *state;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        for (int i = 0; i < 5; i++) {           /* 5 sets of 45 octets; 200 bytes hold 4 */
                msg_set_begin(m, 256);
                add_rec256(m, 1700000000000ull, 1, 1, 1);
                msg_set_end(m);
        }
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_int_equal(f->c.held_sets, 4);
        assert_int_equal(f->c.missing_template_sets, 1);
        decoder_expire_held(f->dec, now_usec());                /* not yet */
        assert_int_equal(f->c.held_expired_sets, 0);
        decoder_expire_held(f->dec, now_usec() + 2000000);      /* 2 s later */
        assert_int_equal(f->c.held_expired_sets, 4);
        assert_int_equal(f->c.held_expired_bytes, 4 * 45);
        assert_false(decoder_has_held(f->dec));
}

static void test_hold_resolved_through_store(void **state) {
        Fixture *f = *state;
        Decoder *other;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 256);
        add_rec256(m, 1700000000000ull, 5, 1, 1);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        /* another session of the exporter sends the template */
        assert_int_equal(decoder_new(f->ctx, &key, &other), 0);
        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        assert_int_equal(decoder_feed(other, m->b, msg_end(m), 0), 0);
        /* the store change is noticed: retry decodes the held set */
        assert_int_equal(decoder_retry_held(f->dec), 1);
        assert_int_equal(f->out[0].octets, 5);
        decoder_free(other);
}

static void test_refresh_newest_definition_wins(void **state) {
        Fixture *f = *state;
        Decoder *other;
        Msg *m = &f->m;

        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        /* the exporter redefines 256 on another session: 4-octet octets only */
        assert_int_equal(decoder_new(f->ctx, &key, &other), 0);
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 256);
        msg_u16(m, 1);
        msg_field(m, 1, 4, 0);
        msg_set_end(m);
        assert_int_equal(decoder_feed(other, m->b, msg_end(m), 0), 0);
        assert_int_equal(decoder_refresh_template(f->dec, 256), 0);
        /* data in the new layout on the first session decodes with it */
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 256);
        msg_u32(m, 4242);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 1);
        assert_int_equal(f->out[0].octets, 4242);
        /* a withdrawal elsewhere removes it here too */
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 256);
        msg_u16(m, 0);
        msg_set_end(m);
        assert_int_equal(decoder_feed(other, m->b, msg_end(m), 0), 0);
        assert_int_equal(decoder_refresh_template(f->dec, 256), 0);
        assert_int_equal(decoder_get_stats(f->dec)->templates, 0);
        /* withdraw-all elsewhere: refresh_all drops every template the store lost */
        msg_begin(m, 10, 1700000000, 7);
        add_tmpl256(m);
        msg_set_begin(m, 2);
        msg_u16(m, 257);
        msg_u16(m, 1);
        msg_field(m, 1, 8, 0);
        msg_set_end(m);
        assert_int_equal(decoder_feed(f->dec, m->b, msg_end(m), 0), 0);
        assert_int_equal(decoder_get_stats(f->dec)->templates, 2);
        msg_begin(m, 10, 1700000000, 7);
        msg_set_begin(m, 2);
        msg_u16(m, 2);
        msg_u16(m, 0);
        msg_set_end(m);
        assert_int_equal(decoder_feed(other, m->b, msg_end(m), 0), 0);
        assert_int_equal(decoder_refresh_all(f->dec), 0);
        assert_int_equal(decoder_get_stats(f->dec)->templates, 0);
        decoder_free(other);
}

int main(void) {
        const struct CMUnitTest tests[] = {
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
                T(test_template_then_data),
                T(test_missing_template_counted),
                T(test_template_from_store),
                T(test_withdrawal_strips_data),
                T(test_redefinition_in_one_message),
                T(test_options_varlen_enterprise),
                T(test_truncated_varlen_record_rejected),
                T(test_timestamps),
                T(test_sysuptime_wrap),
                T(test_reduced_length_and_bad_lengths),
                T(test_malformed),
                T(test_limits),
                T(test_sink_refusal_counts_nothing_twice),
#undef T
                cmocka_unit_test_setup_teardown(test_hold_then_template, setup_hold, teardown),
                cmocka_unit_test_setup_teardown(test_hold_expires_and_caps, setup_hold, teardown),
                cmocka_unit_test_setup_teardown(test_hold_resolved_through_store, setup_hold,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_refresh_newest_definition_wins, setup_hold,
                                                teardown),
        };
        return cmocka_run_group_tests_name("decoder", tests, NULL, NULL);
}
