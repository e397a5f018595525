/* SPDX-License-Identifier: MIT */
/*
 * test-gen-ipfix.c - ipfixd-gen's record times: without a spread every flow starts in the
 * minute before the clock and lasts at most a minute; with --time-spread S a session's flows
 * walk from S before the clock to the clock in record order (each start 0..60 s before its
 * base), and a spread above the maximum is refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gen-ipfix.h"

#define NOW_MS 1795000000000ull
#define JITTER_MS 60000ull

static uint64_t get_u64(const uint8_t *p) {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* Emits a whole session of @n records at NOW_MS; @ret_start and @ret_end get their times. */
static void run_session(uint32_t spread_ms, size_t n, uint64_t *ret_start, uint64_t *ret_end) {
        GenMessageConfig cfg = {
                .odid = 1, .template_id = GEN_TEMPLATE_ID_V4, .max_size = 1400,
                .mode = GEN_TEMPLATE_FIRST, .spread_ms = spread_ms,
        };
        static uint8_t buf[1400];
        GenSession s;
        GenStats st = {};
        size_t k = 0, len;

        assert_int_equal(gen_message_config_check(&cfg), 0);
        gen_session_init(&s, &cfg, n, 7, 0);
        while ((len = gen_message_build(&cfg, &s, NOW_MS, buf, &st)) > 0) {
                size_t off = GEN_IPFIX_HEADER_SIZE;

                while (off + GEN_IPFIX_SET_HEADER_SIZE <= len) {
                        unsigned id = (unsigned) buf[off] << 8 | buf[off + 1];
                        size_t set_len = (size_t) buf[off + 2] << 8 | buf[off + 3];

                        assert_true(set_len >= GEN_IPFIX_SET_HEADER_SIZE && off + set_len <= len);
                        if (id == GEN_TEMPLATE_ID_V4)
                                for (size_t r = off + GEN_IPFIX_SET_HEADER_SIZE;
                                     r + GEN_RECORD_SIZE_V4 <= off + set_len;
                                     r += GEN_RECORD_SIZE_V4, k++) {
                                        assert_true(k < n);
                                        ret_start[k] = get_u64(buf + r);
                                        ret_end[k] = get_u64(buf + r + 8);
                                }
                        off += set_len;
                }
        }
        assert_int_equal(k, n);
        assert_int_equal(st.records, n);
}

static void test_no_spread(void **state) {
        enum { N = 5000 };
        static uint64_t start[N], end[N];

        run_session(0, N, start, end);
        for (size_t i = 0; i < N; i++) {
                assert_true(start[i] <= NOW_MS && start[i] >= NOW_MS - JITTER_MS);
                assert_true(end[i] >= start[i] && end[i] <= start[i] + JITTER_MS);
        }
}

static void test_spread_in_order(void **state) {
        enum { N = 20000 };
        const uint64_t spread = 3600000;
        static uint64_t start[N], end[N];
        uint64_t lo = UINT64_MAX, hi = 0;

        run_session((uint32_t) spread, N, start, end);
        for (size_t i = 0; i < N; i++) {
                /* base = now minus the share of the session still to come, (N - i) / N */
                uint64_t base = NOW_MS - (uint64_t) ((double) (N - i) / N * (double) spread);

                assert_true(start[i] <= base && start[i] + JITTER_MS >= base);
                assert_true(end[i] >= start[i] && end[i] <= start[i] + JITTER_MS);
                lo = start[i] < lo ? start[i] : lo;
                hi = start[i] > hi ? start[i] : hi;
        }
        assert_true(lo <= NOW_MS - spread + 1000);
        assert_true(hi >= NOW_MS - 2 * JITTER_MS);
        /* in order: the first tenth all started before the last tenth */
        for (size_t i = 0; i < N / 10; i++)
                assert_true(start[i] < start[N - 1 - i]);
}

static void test_spread_max(void **state) {
        GenMessageConfig cfg = {
                .odid = 1, .template_id = GEN_TEMPLATE_ID_V4, .max_size = 1400,
                .mode = GEN_TEMPLATE_FIRST, .spread_ms = GEN_SPREAD_MS_MAX,
        };

        assert_int_equal(gen_message_config_check(&cfg), 0);
        cfg.spread_ms = GEN_SPREAD_MS_MAX + 1;
        assert_int_equal(gen_message_config_check(&cfg), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_spread),
                cmocka_unit_test(test_spread_in_order),
                cmocka_unit_test(test_spread_max),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
