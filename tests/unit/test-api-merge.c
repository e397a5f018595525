/* SPDX-License-Identifier: MIT */
/*
 * test-api-merge.c - frontend-api/merge.[ch]: the cursor's text form (round trips, and
 * malformed and mutated inputs rejected or canonical), paging over simulated pods against a
 * brute-force global order (no gaps, no repeats, empty pods and pages), the flows merge,
 * the top merge (sums, ties, a key top on no pod but top overall, the exact flag, and a
 * randomized check that "exact": true is never wrong), totals, exporters and the meta.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "merge.h"

static uint64_t rng_state;

static uint64_t rnd(void) {
        /* splitmix64: deterministic across platforms */
        uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n) {
        return rnd() % n;
}

static json_t *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *J(const char *fmt, ...) {
        char buf[8192];
        json_error_t err;
        va_list ap;
        json_t *j;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        assert_true(k > 0 && (size_t) k < sizeof(buf));
        j = json_loads(buf, 0, &err);
        if (!j)
                fail_msg("bad test JSON: %s: %s", err.text, buf);
        return j;
}

static uint64_t U(json_t *o, const char *name) {
        json_t *v = json_object_get(o, name);
        assert_true(json_is_integer(v));
        return (uint64_t) json_integer_value(v);
}

static void free_answers(ApiPodAnswer *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                json_decref(a[i].answer);
}

/* ---- cursor ---- */

static void test_cursor_roundtrip(void **state) {
        static const char *const good[] = {
                "0.0.a",
                "1700000000123.4711.mediator-0",
                "9223372036854775807.18446744073709551615.p",
                "5.7.a.b.c",
                "10.20.-_.",
                "3.4.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_",
        };
        char buf[API_CURSOR_STRING_MAX];
        ApiCursor c, d;

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                assert_int_equal(api_cursor_parse(good[i], &c), 0);
                assert_int_equal(api_cursor_format(&c, buf, sizeof(buf)), (int) strlen(good[i]));
                assert_string_equal(buf, good[i]);
        }
        assert_int_equal(api_cursor_parse("5.7.a.b.c", &c), 0);
        assert_int_equal(c.end_ms, 5);
        assert_int_equal(c.seq, 7);
        assert_string_equal(c.pod, "a.b.c");

        /* random cursors round trip */
        rng_state = 1;
        for (int i = 0; i < 2000; i++) {
                static const char chars[] =
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
                size_t l = 1 + rnd_below(API_POD_NAME_MAX);

                memset(&c, 0, sizeof(c));
                c.end_ms = rnd() >> (1 + rnd_below(63));
                c.seq = rnd() >> rnd_below(64);
                for (size_t k = 0; k < l; k++)
                        c.pod[k] = chars[rnd_below(sizeof(chars) - 1)];
                assert_true(api_cursor_format(&c, buf, sizeof(buf)) > 0);
                assert_int_equal(api_cursor_parse(buf, &d), 0);
                assert_memory_equal(&c, &d, sizeof(c));
        }

        /* format refuses what parse would refuse, and small buffers */
        c = (ApiCursor) { .end_ms = 12, .seq = 34, .pod = "pod" };
        assert_int_equal(api_cursor_format(&c, buf, 10), 9);
        assert_int_equal(api_cursor_format(&c, buf, 9), -ENOBUFS);
        assert_int_equal(api_cursor_format(&c, NULL, 0), -ENOBUFS);
        c.end_ms = (uint64_t) INT64_MAX + 1;
        assert_int_equal(api_cursor_format(&c, buf, sizeof(buf)), -EINVAL);
        c = (ApiCursor) { .end_ms = 1, .seq = 1, .pod = "" };
        assert_int_equal(api_cursor_format(&c, buf, sizeof(buf)), -EINVAL);
        c = (ApiCursor) { .end_ms = 1, .seq = 1, .pod = "a/b" };
        assert_int_equal(api_cursor_format(&c, buf, sizeof(buf)), -EINVAL);
}

static void test_cursor_malformed(void **state) {
        static const char *const bad[] = {
                "", ".", "..", "1", "1.", "1.2", "1.2.", "1..p", ".2.p", "01.2.p", "1.02.p",
                "00.0.p", "+1.2.p", "-1.2.p", "1.-2.p", " 1.2.p", "1 .2.p", "1.2.p ",
                "1.2.p\n", "1.2.p/x", "1.2.p%2F", "1.2.p+q", "1.2.p:q", "1:2:p", "a.2.p",
                "1.b.p", "0x1.2.p", "1e3.2.p", "1.2.\xc3\xa9", "9223372036854775808.1.p",
                "99999999999999999999.1.p", "1.18446744073709551616.p",
                "1.99999999999999999999.p",
                "1.2.0123456789012345678901234567890123456789012345678901234567890123",
                "123456789012345678901234567890.1.p",
        };
        ApiCursor c = { .end_ms = 99, .seq = 98, .pod = "untouched" };
        char buf[512];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (api_cursor_parse(bad[i], &c) != -EINVAL)
                        fail_msg("accepted: \"%s\"", bad[i]);
        }
        assert_int_equal(api_cursor_parse(NULL, &c), -EINVAL);
        assert_int_equal(c.end_ms, 99); /* ret_ untouched on failure */
        assert_string_equal(c.pod, "untouched");

        /* a long string of digits and one of pod characters */
        memset(buf, '7', sizeof(buf) - 1);
        buf[sizeof(buf) - 1] = '\0';
        assert_int_equal(api_cursor_parse(buf, &c), -EINVAL);
        memcpy(buf, "1.2.", 4);
        memset(buf + 4, 'x', sizeof(buf) - 5);
        assert_int_equal(api_cursor_parse(buf, &c), -EINVAL);

        /* fuzz-ish: random strings over a nasty alphabet, and mutations of a valid cursor;
         * whatever parses must be canonical (format gives back the same bytes) */
        rng_state = 2;
        for (int i = 0; i < 50000; i++) {
                static const char alpha[] = "0123456789..ab-_ %+:/\x01\xff";
                char out[API_CURSOR_STRING_MAX];
                size_t l;

                if (i % 2) {
                        l = rnd_below(40);
                        for (size_t k = 0; k < l; k++)
                                buf[k] = alpha[rnd_below(sizeof(alpha) - 1)];
                        buf[l] = '\0';
                } else {
                        l = (size_t) snprintf(buf, sizeof(buf), "1700000000123.4711.mediator-0");
                        for (int m = 0, nm = 1 + (int) rnd_below(3); m < nm; m++) {
                                size_t at = rnd_below(l);
                                switch (rnd_below(3)) {
                                case 0: /* replace */
                                        buf[at] = alpha[rnd_below(sizeof(alpha) - 1)];
                                        break;
                                case 1: /* delete */
                                        memmove(buf + at, buf + at + 1, l - at);
                                        l--;
                                        break;
                                default: /* insert */
                                        memmove(buf + at + 1, buf + at, l - at + 1);
                                        buf[at] = alpha[rnd_below(sizeof(alpha) - 1)];
                                        l++;
                                }
                        }
                }
                if (api_cursor_parse(buf, &c) == 0) {
                        assert_true(api_cursor_format(&c, out, sizeof(out)) > 0);
                        assert_string_equal(out, buf);
                }
        }
}

static void test_cursor_for_pod(void **state) {
        ApiCursor c = { .end_ms = 1000, .seq = 55, .pod = "pod-b" };
        uint64_t e = 1, s = 1;

        assert_int_equal(api_cursor_for_pod(&c, "pod-a", &e, &s), 0);
        assert_int_equal(e, 1000);
        assert_int_equal(s, 0);
        assert_int_equal(api_cursor_for_pod(&c, "pod-b", &e, &s), 0);
        assert_int_equal(e, 1000);
        assert_int_equal(s, 55);
        assert_int_equal(api_cursor_for_pod(&c, "pod-c", &e, &s), 0);
        assert_int_equal(e, 1001);
        assert_int_equal(s, 0);
        c.end_ms = INT64_MAX;
        assert_int_equal(api_cursor_for_pod(&c, "pod-c", &e, &s), 0);
        assert_true(e == (uint64_t) INT64_MAX + 1 && s == 0);

        e = s = 7;
        assert_int_equal(api_cursor_for_pod(&c, "bad pod", &e, &s), -EINVAL);
        assert_int_equal(api_cursor_for_pod(&c, NULL, &e, &s), -EINVAL);
        c.end_ms = (uint64_t) INT64_MAX + 1;
        assert_int_equal(api_cursor_for_pod(&c, "pod-c", &e, &s), -EINVAL);
        c = (ApiCursor) { .end_ms = 1, .pod = "" };
        assert_int_equal(api_cursor_for_pod(&c, "pod-c", &e, &s), -EINVAL);
        assert_true(e == 7 && s == 7);
}

/* ---- paging over simulated pods ---- */

typedef struct Rec {
        uint64_t end_ms, seq;
        size_t pod;
} Rec;

#define NPODS 3
static const char *const pod_names[NPODS] = { "pod-1", "pod-10", "pod.2" }; /* strcmp order */

static int rec_pod_cmp(const void *a, const void *b) {
        const Rec *x = a, *y = b;
        if (x->end_ms != y->end_ms)
                return x->end_ms > y->end_ms ? -1 : 1;
        return x->seq > y->seq ? -1 : x->seq < y->seq;
}

static int rec_global_cmp(const void *a, const void *b) {
        const Rec *x = a, *y = b;
        int d;
        if (x->end_ms != y->end_ms)
                return x->end_ms > y->end_ms ? -1 : 1;
        d = strcmp(pod_names[x->pod], pod_names[y->pod]);
        if (d)
                return d;
        return x->seq > y->seq ? -1 : x->seq < y->seq;
}

/* A pod answering "flows": its records sorted (end desc, seq desc), those strictly after
 * the cursor, at most limit, next_cursor when more remain (as mediator/query.c does). */
static json_t *pod_flows(const Rec *recs, size_t n, bool has_cursor, uint64_t ce, uint64_t cs,
                         size_t limit) {
        json_t *a = J("{\"v\":1,\"ok\":true,\"op\":\"flows\",\"flows\":[],\"truncated\":false}");
        json_t *flows = json_object_get(a, "flows");
        size_t i = 0, taken = 0;

        if (has_cursor)
                while (i < n && (recs[i].end_ms > ce || (recs[i].end_ms == ce && recs[i].seq >= cs)))
                        i++;
        for (; i < n && taken < limit; i++, taken++)
                assert_int_equal(json_array_append_new(flows,
                        J("{\"start_ms\":%" PRIu64 ",\"end_ms\":%" PRIu64 ",\"seq\":%" PRIu64 "}",
                          recs[i].end_ms - 5, recs[i].end_ms, recs[i].seq)), 0);
        if (i < n && taken > 0) {
                char cur[64];
                snprintf(cur, sizeof(cur), "%" PRIu64 ":%" PRIu64, recs[i - 1].end_ms,
                         recs[i - 1].seq);
                json_object_set_new(a, "next_cursor", json_string(cur));
        } else
                json_object_set_new(a, "next_cursor", json_null());
        json_object_set_new(a, "count", json_integer((json_int_t) taken));
        return a;
}

static void page_through(Rec *pods[NPODS], const size_t npod[NPODS], size_t limit) {
        size_t total = 0, got = 0, pages = 0, empty_pod_pages = 0;
        Rec *all;
        ApiCursor cur = { 0 };
        bool first = true, more = true;

        for (size_t p = 0; p < NPODS; p++)
                total += npod[p];
        all = calloc(total + 1, sizeof(*all));
        assert_non_null(all);
        for (size_t p = 0, k = 0; p < NPODS; p++)
                for (size_t i = 0; i < npod[p]; i++)
                        all[k++] = pods[p][i];
        qsort(all, total, sizeof(*all), rec_global_cmp);

        while (more) {
                ApiPodAnswer ans[NPODS];
                json_t *flows = NULL;
                bool truncated = true;
                char text[API_CURSOR_STRING_MAX];
                ApiCursor next;
                size_t k;
                json_t *f;

                for (size_t p = 0; p < NPODS; p++) {
                        uint64_t e = 0, s = 0;
                        if (!first)
                                assert_int_equal(api_cursor_for_pod(&cur, pod_names[p], &e, &s), 0);
                        ans[p] = (ApiPodAnswer) { pod_names[p],
                                                  pod_flows(pods[p], npod[p], !first, e, s, limit) };
                        if (json_array_size(json_object_get(ans[p].answer, "flows")) == 0)
                                empty_pod_pages++;
                }
                assert_int_equal(api_merge_flows(ans, NPODS, limit, &flows, &more, &truncated,
                                                 &next), 0);
                assert_false(truncated);
                assert_true(json_array_size(flows) <= limit);
                json_array_foreach(flows, k, f) {
                        const Rec *want = &all[got++];
                        assert_true(got <= total);
                        assert_int_equal(U(f, "end_ms"), want->end_ms);
                        assert_int_equal(U(f, "seq"), want->seq);
                        assert_string_equal(json_string_value(json_object_get(f, "pod")),
                                            pod_names[want->pod]);
                }
                if (json_array_size(flows) > 0) {
                        /* the cursor travels as text, as it does through a client */
                        assert_true(api_cursor_format(&next, text, sizeof(text)) > 0);
                        assert_int_equal(api_cursor_parse(text, &cur), 0);
                        assert_int_equal(cur.end_ms, all[got - 1].end_ms);
                        assert_int_equal(cur.seq, all[got - 1].seq);
                } else
                        assert_false(more);
                json_decref(flows);
                free_answers(ans, NPODS);
                first = false;
                pages++;
                assert_true(pages <= total + 2);
        }
        assert_int_equal(got, total); /* no gaps, no repeats: exactly the global order */
        (void) empty_pod_pages;
        free(all);
}

static void test_paging_brute_force(void **state) {
        static const size_t limits[] = { 1, 2, 3, 5, 7, 16, 1000 };

        rng_state = 3;
        for (int round = 0; round < 60; round++) {
                Rec *pods[NPODS];
                size_t npod[NPODS];
                uint64_t span = 1 + rnd_below(round % 3 == 0 ? 3 : 12); /* many end_ms ties */

                for (size_t p = 0; p < NPODS; p++) {
                        uint64_t seq = rnd_below(3);
                        /* one pod is often empty, another often entirely newer/older */
                        npod[p] = (round + p) % 5 == 0 ? 0 : rnd_below(40);
                        pods[p] = calloc(npod[p] + 1, sizeof(Rec));
                        assert_non_null(pods[p]);
                        for (size_t i = 0; i < npod[p]; i++) {
                                uint64_t base = (round % 4 == 1 && p == 1) ? 100 : 0;
                                seq += 1 + rnd_below(2);
                                pods[p][i] = (Rec) { .end_ms = 1000 + base + rnd_below(span),
                                                     .seq = seq, .pod = p };
                        }
                        if (p == 2 && round % 7 == 3 && npod[p] > 0)
                                pods[p][0].seq = 0; /* seq 0 at an end_ms tie */
                        qsort(pods[p], npod[p], sizeof(Rec), rec_pod_cmp);
                }
                for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++)
                        page_through(pods, npod, limits[l]);
                for (size_t p = 0; p < NPODS; p++)
                        free(pods[p]);
        }
}

/* ---- flows merge ---- */

static void test_flows_merge(void **state) {
        ApiPodAnswer ans[3] = {
                { "b", J("{\"ok\":true,\"flows\":[{\"end_ms\":30,\"seq\":9,\"x\":1},"
                         "{\"end_ms\":20,\"seq\":8}],\"next_cursor\":null,\"truncated\":false}") },
                { "a", J("{\"ok\":true,\"flows\":[{\"end_ms\":30,\"seq\":2},"
                         "{\"end_ms\":20,\"seq\":1}],\"next_cursor\":null,\"truncated\":true}") },
                { "c", NULL },
        };
        json_t *flows = NULL, *f;
        bool more = true, tr = false;
        ApiCursor next;

        assert_int_equal(api_merge_flows(ans, 3, 3, &flows, &more, &tr, &next), 0);
        assert_int_equal(json_array_size(flows), 3);
        f = json_array_get(flows, 0);
        assert_string_equal(json_string_value(json_object_get(f, "pod")), "a");
        assert_int_equal(U(f, "seq"), 2);
        f = json_array_get(flows, 1);
        assert_string_equal(json_string_value(json_object_get(f, "pod")), "b");
        assert_int_equal(U(f, "x"), 1); /* the pod's members are kept */
        f = json_array_get(flows, 2);
        assert_string_equal(json_string_value(json_object_get(f, "pod")), "a");
        assert_true(more); /* 4 available, 3 returned */
        assert_true(tr);   /* pod a truncated */
        assert_int_equal(next.end_ms, 20);
        assert_int_equal(next.seq, 1);
        assert_string_equal(next.pod, "a");
        /* the inputs are untouched */
        assert_null(json_object_get(json_array_get(json_object_get(ans[0].answer, "flows"), 0),
                                    "pod"));
        json_decref(flows);

        /* everything fits: no more, unless a pod says so */
        assert_int_equal(api_merge_flows(ans, 3, 4, &flows, &more, &tr, &next), 0);
        assert_int_equal(json_array_size(flows), 4);
        assert_false(more);
        json_decref(flows);
        json_object_set_new(ans[0].answer, "next_cursor", json_string("20:8"));
        assert_int_equal(api_merge_flows(ans, 3, 10, &flows, &more, &tr, &next), 0);
        assert_true(more);
        json_decref(flows);

        /* nothing at all */
        assert_int_equal(api_merge_flows(ans + 2, 1, 10, &flows, &more, &tr, &next), 0);
        assert_int_equal(json_array_size(flows), 0);
        assert_false(more);
        assert_false(tr);
        assert_int_equal(next.end_ms, 0);
        assert_string_equal(next.pod, "");
        json_decref(flows);

        /* errors, ret_ untouched */
        flows = NULL;
        assert_int_equal(api_merge_flows(ans, 3, 0, &flows, &more, &tr, &next), -EINVAL);
        ans[2].pod = "a";
        assert_int_equal(api_merge_flows(ans, 3, 5, &flows, &more, &tr, &next), -EINVAL);
        ans[2].pod = "bad/name";
        assert_int_equal(api_merge_flows(ans, 3, 5, &flows, &more, &tr, &next), -EINVAL);
        ans[2].pod = "c";
        ans[2].answer = J("{\"ok\":true,\"flows\":[{\"end_ms\":-1,\"seq\":1}]}");
        assert_int_equal(api_merge_flows(ans, 3, 5, &flows, &more, &tr, &next), -EBADMSG);
        json_decref(ans[2].answer);
        ans[2].answer = J("{\"ok\":true,\"flows\":[{\"end_ms\":1}]}");
        assert_int_equal(api_merge_flows(ans, 3, 5, &flows, &more, &tr, &next), -EBADMSG);
        json_decref(ans[2].answer);
        ans[2].answer = J("{\"ok\":true,\"flows\":{}}");
        assert_int_equal(api_merge_flows(ans, 3, 5, &flows, &more, &tr, &next), -EBADMSG);
        json_decref(ans[2].answer);
        ans[2].answer = J("{\"ok\":true,\"flows\":[],\"next_cursor\":5}");
        assert_int_equal(api_merge_flows(ans, 3, 5, &flows, &more, &tr, &next), -EBADMSG);
        json_decref(ans[2].answer);
        /* a failed pod is skipped (the meta reports it) */
        ans[2].answer = J("{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"x\"}}");
        assert_int_equal(api_merge_flows(ans, 3, 5, &flows, &more, &tr, &next), 0);
        assert_int_equal(json_array_size(flows), 4);
        json_decref(flows);
        free_answers(ans, 3);
}

/* ---- top merge ---- */

static json_t *top_answer(bool exact, const char *entries, uint64_t other_o) {
        /* "other" for octets as given; flows and packets follow */
        return J("{\"ok\":true,\"op\":\"top\",\"dim\":\"src_addr\",\"metric\":\"octets\","
                 "\"from_ms\":60000,\"to_ms\":120000,\"minutes\":1,\"entries\":[%s],"
                 "\"totals\":{\"flows\":1000,\"octets\":100000,\"packets\":1000},"
                 "\"other\":{\"flows\":%d,\"octets\":%" PRIu64 ",\"packets\":%d},\"exact\":%s}",
                 entries, other_o ? 1 : 0, other_o, other_o ? 1 : 0, exact ? "true" : "false");
}

#define E(k, o) "{\"key\":\"" k "\",\"fields\":{\"src_addr\":\"" k "\"},\"flows\":1,\"octets\":" #o ",\"packets\":1}"

static void expect_keys(json_t *top, const char *const *keys, const uint64_t *octets, size_t n) {
        json_t *ents = json_object_get(top, "entries");
        assert_int_equal(json_array_size(ents), n);
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(ents, i);
                assert_string_equal(json_string_value(json_object_get(e, "key")), keys[i]);
                assert_int_equal(U(e, "octets"), octets[i]);
        }
}

static bool top_exact(ApiPodAnswer *ans, size_t n, size_t limit) {
        json_t *top = NULL;
        bool r;
        assert_int_equal(api_merge_top(ans, n, "octets", limit, &top), 0);
        r = json_is_true(json_object_get(top, "exact"));
        json_decref(top);
        return r;
}

static void test_top_sums_ties(void **state) {
        ApiPodAnswer ans[2] = {
                { "a", top_answer(true, E("x", 10) "," E("y", 5), 0) },
                { "b", top_answer(true, E("y", 10) "," E("z", 10), 0) },
        };
        static const char *const keys[] = { "y", "x", "z" };
        static const uint64_t oct[] = { 15, 10, 10 };
        json_t *top = NULL, *e;

        assert_int_equal(api_merge_top(ans, 2, "octets", 10, &top), 0);
        expect_keys(top, keys, oct, 3);
        e = json_array_get(json_object_get(top, "entries"), 0);
        assert_int_equal(U(e, "flows"), 2);
        assert_int_equal(U(e, "packets"), 2);
        assert_string_equal(json_string_value(json_object_get(json_object_get(e, "fields"),
                                                              "src_addr")), "y");
        assert_true(json_is_true(json_object_get(top, "exact"))); /* both pods listed all */
        assert_int_equal(U(json_object_get(top, "totals"), "octets"), 200000);
        assert_int_equal(U(json_object_get(top, "other"), "octets"), 200000 - 35);
        assert_int_equal(U(json_object_get(top, "other"), "flows"), 2000 - 4);
        assert_string_equal(json_string_value(json_object_get(top, "dim")), "src_addr");
        assert_string_equal(json_string_value(json_object_get(top, "metric")), "octets");
        assert_int_equal(json_array_size(json_object_get(top, "pods_inexact")), 0);
        json_decref(top);

        /* limit 2 cuts the x/z tie by key */
        assert_int_equal(api_merge_top(ans, 2, "octets", 2, &top), 0);
        expect_keys(top, keys, oct, 2);
        json_decref(top);

        /* ranking by another metric: flows (y 2, x 1, z 1) */
        json_object_set_new(ans[0].answer, "metric", json_string("flows"));
        json_object_set_new(ans[1].answer, "metric", json_string("flows"));
        assert_int_equal(api_merge_top(ans, 2, "flows", 1, &top), 0);
        assert_string_equal(json_string_value(json_object_get(
                json_array_get(json_object_get(top, "entries"), 0), "key")), "y");
        json_decref(top);
        /* metric mismatch is malformed, an unknown metric invalid */
        assert_int_equal(api_merge_top(ans, 2, "octets", 1, &top), -EBADMSG);
        assert_int_equal(api_merge_top(ans, 2, "bytes", 1, &top), -EINVAL);
        free_answers(ans, 2);

        /* one pod listing a key twice */
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("x", 10) "," E("x", 5), 0) };
        assert_int_equal(api_merge_top(ans, 1, "octets", 3, &top), -EBADMSG);
        json_decref(ans[0].answer);
        ans[0] = (ApiPodAnswer) { "a", J("{\"ok\":true,\"entries\":[{\"key\":1}],"
                                         "\"totals\":{},\"other\":{},\"exact\":true}") };
        assert_int_equal(api_merge_top(ans, 1, "octets", 3, &top), -EBADMSG);
        json_decref(ans[0].answer);
}

static void test_top_hidden_leader(void **state) {
        /* k is second on every pod, first on none, and first overall */
        ApiPodAnswer ans[3] = {
                { "a", top_answer(true, E("a", 100) "," E("k", 60), 0) },
                { "b", top_answer(true, E("b", 100) "," E("k", 60), 0) },
                { "c", top_answer(true, E("c", 100) "," E("k", 60), 0) },
        };
        static const char *const keys[] = { "k", "a", "b", "c" };
        static const uint64_t oct[] = { 180, 100, 100, 100 };
        json_t *top = NULL;

        assert_int_equal(api_merge_top(ans, 3, "octets", 4, &top), 0);
        expect_keys(top, keys, oct, 4);
        assert_true(json_is_true(json_object_get(top, "exact")));
        json_decref(top);
        assert_true(top_exact(ans, 3, 1));
        free_answers(ans, 3);
}

static void test_top_exact_flag(void **state) {
        ApiPodAnswer ans[3];
        json_t *top = NULL;

        /* thresholds prove it: both pods cut their lists (other > 0), but k1 and k2 are on
         * both, b_a = min(90, 30) = 30, b_b = min(70, 20) = 20, unknown keys <= 50 */
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("k1", 100) "," E("k2", 90), 30) };
        ans[1] = (ApiPodAnswer) { "b", top_answer(true, E("k1", 80) "," E("k2", 70), 20) };
        assert_true(top_exact(ans, 2, 1));
        assert_true(top_exact(ans, 2, 2));
        /* asking for more than the pods listed: unknown keys could be there */
        assert_false(top_exact(ans, 2, 3));
        /* a third pod that is missing, or failed, or inexact */
        ans[2] = (ApiPodAnswer) { "c", NULL };
        assert_false(top_exact(ans, 3, 1));
        ans[2].answer = J("{\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\"x\"}}");
        assert_false(top_exact(ans, 3, 1));
        json_decref(ans[2].answer);
        ans[2].answer = top_answer(false, E("k1", 1), 0);
        assert_int_equal(api_merge_top(ans, 3, "octets", 1, &top), 0);
        assert_false(json_is_true(json_object_get(top, "exact")));
        assert_string_equal(json_string_value(json_array_get(json_object_get(top, "pods_inexact"),
                                                             0)), "c");
        json_decref(top);
        free_answers(ans, 3);

        /* a truncated list makes it inexact: k3 is 85 on b and could be up to 80 on a
         * (a's last entry 90, other 80), UB 165 >= k1's 150 */
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("k1", 100) "," E("k2", 90), 80) };
        ans[1] = (ApiPodAnswer) { "b", top_answer(true, E("k3", 85) "," E("k1", 50), 10) };
        assert_int_equal(api_merge_top(ans, 2, "octets", 1, &top), 0);
        assert_string_equal(json_string_value(json_object_get(
                json_array_get(json_object_get(top, "entries"), 0), "key")), "k1");
        assert_false(json_is_true(json_object_get(top, "exact")));
        json_decref(top);
        free_answers(ans, 2);

        /* the same with a small enough other on a: UB(k3) = 85 + 60 = 145 < 150, k2: 90 +
         * b_b(10) = 100, unknown: 60 + 10 = 70: exact */
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("k1", 100) "," E("k2", 90), 60) };
        ans[1] = (ApiPodAnswer) { "b", top_answer(true, E("k3", 85) "," E("k1", 50), 10) };
        assert_true(top_exact(ans, 2, 1));
        /* but k2 returned at limit 2 lacks b's share (b cut its list): inexact */
        assert_false(top_exact(ans, 2, 2));
        free_answers(ans, 2);

        /* a tie at the bound: UB(k3) == 150 and "k3" > "k1" ranks after; then the same
         * with a key that would rank before */
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("k1", 100) "," E("k2", 90), 65) };
        ans[1] = (ApiPodAnswer) { "b", top_answer(true, E("k3", 85) "," E("k1", 50), 10) };
        assert_true(top_exact(ans, 2, 1));
        free_answers(ans, 2);
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("k1", 100) "," E("k2", 90), 65) };
        ans[1] = (ApiPodAnswer) { "b", top_answer(true, E("k0", 85) "," E("k1", 50), 10) };
        assert_false(top_exact(ans, 2, 1));
        free_answers(ans, 2);

        /* an unknown key could tie k1: b_a + b_b = 40 + 30 = 70 = k1's 70 */
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("k1", 40), 40) };
        ans[1] = (ApiPodAnswer) { "b", top_answer(true, E("k1", 30), 30) };
        assert_false(top_exact(ans, 2, 1));
        free_answers(ans, 2);
}

static void test_top_exact_edge(void **state) {
        ApiPodAnswer ans[2];

        /* k1 is on both pods (complete) and unknown keys are <= 30 + 30 = 60 < 70 */
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("k1", 40), 30) };
        ans[1] = (ApiPodAnswer) { "b", top_answer(true, E("k1", 30), 30) };
        assert_true(top_exact(ans, 2, 1));
        free_answers(ans, 2);
        /* no pods, or limit 0 */
        assert_false(top_exact(NULL, 0, 1));
        ans[0] = (ApiPodAnswer) { "a", top_answer(true, E("k1", 40), 30) };
        assert_true(top_exact(ans, 1, 0));
        free_answers(ans, 1);
}

/* Randomized soundness: pods hold true per-key sums, answer their top L by octets (ties by
 * key), with other = the rest; whenever the merge says exact, it must equal the true global
 * top. And when every pod lists all its keys it must say exact. */
static void test_top_exact_sound(void **state) {
        enum { KEYS = 12, PODS = 3 };
        unsigned exact_seen = 0, inexact_seen = 0, proved_seen = 0;

        rng_state = 4;
        for (int round = 0; round < 3000; round++) {
                uint64_t v[PODS][KEYS][3] = { { { 0 } } }, g[KEYS][3] = { { 0 } };
                size_t L = 1 + rnd_below(KEYS), limit = 1 + rnd_below(5), order[KEYS];
                ApiPodAnswer ans[PODS];
                bool all_listed = true;
                json_t *top = NULL, *ents;
                char names[KEYS][8];

                for (size_t k = 0; k < KEYS; k++)
                        snprintf(names[k], sizeof(names[k]), "k%02zu", k);
                for (size_t p = 0; p < PODS; p++)
                        for (size_t k = 0; k < KEYS; k++) {
                                if (rnd_below(3) == 0)
                                        continue; /* key absent on this pod */
                                v[p][k][0] = 1 + rnd_below(3);
                                v[p][k][1] = rnd_below(round % 2 ? 6 : 200);
                                v[p][k][2] = rnd_below(9);
                                for (int m = 0; m < 3; m++)
                                        g[k][m] += v[p][k][m];
                        }
                for (size_t p = 0; p < PODS; p++) {
                        char buf[4096] = "";
                        size_t idx[KEYS], ni = 0, off = 0, listed;
                        uint64_t tot[3] = { 0 }, ret[3] = { 0 };

                        for (size_t k = 0; k < KEYS; k++)
                                if (v[p][k][0]) {
                                        idx[ni++] = k;
                                        for (int m = 0; m < 3; m++)
                                                tot[m] += v[p][k][m];
                                }
                        /* selection sort by octets desc, key asc */
                        for (size_t i = 0; i < ni; i++)
                                for (size_t j = i + 1; j < ni; j++)
                                        if (v[p][idx[j]][1] > v[p][idx[i]][1] ||
                                            (v[p][idx[j]][1] == v[p][idx[i]][1] && idx[j] < idx[i])) {
                                                size_t t = idx[i];
                                                idx[i] = idx[j];
                                                idx[j] = t;
                                        }
                        listed = ni < L ? ni : L;
                        if (listed < ni)
                                all_listed = false;
                        for (size_t i = 0; i < listed; i++) {
                                const uint64_t *s = v[p][idx[i]];
                                off += (size_t) snprintf(buf + off, sizeof(buf) - off,
                                        "%s{\"key\":\"%s\",\"fields\":{},\"flows\":%" PRIu64
                                        ",\"octets\":%" PRIu64 ",\"packets\":%" PRIu64 "}",
                                        i ? "," : "", names[idx[i]], s[0], s[1], s[2]);
                                for (int m = 0; m < 3; m++)
                                        ret[m] += s[m];
                        }
                        ans[p] = (ApiPodAnswer) { pod_names[p], J(
                                "{\"ok\":true,\"entries\":[%s],\"totals\":{\"flows\":%" PRIu64
                                ",\"octets\":%" PRIu64 ",\"packets\":%" PRIu64 "},\"other\":{"
                                "\"flows\":%" PRIu64 ",\"octets\":%" PRIu64 ",\"packets\":%" PRIu64
                                "},\"exact\":true}", buf, tot[0], tot[1], tot[2], tot[0] - ret[0],
                                tot[1] - ret[1], tot[2] - ret[2]) };
                }
                assert_int_equal(api_merge_top(ans, PODS, "octets", limit, &top), 0);

                /* the true global ranking over keys present anywhere */
                size_t nk = 0;
                for (size_t k = 0; k < KEYS; k++)
                        if (g[k][0])
                                order[nk++] = k;
                for (size_t i = 0; i < nk; i++)
                        for (size_t j = i + 1; j < nk; j++)
                                if (g[order[j]][1] > g[order[i]][1] ||
                                    (g[order[j]][1] == g[order[i]][1] && order[j] < order[i])) {
                                        size_t t = order[i];
                                        order[i] = order[j];
                                        order[j] = t;
                                }
                ents = json_object_get(top, "entries");
                if (all_listed)
                        assert_true(json_is_true(json_object_get(top, "exact")));
                if (json_is_true(json_object_get(top, "exact"))) {
                        exact_seen++;
                        if (!all_listed)
                                proved_seen++; /* thresholds, not completeness, proved it */
                        assert_int_equal(json_array_size(ents), nk < limit ? nk : limit);
                        for (size_t i = 0; i < json_array_size(ents); i++) {
                                json_t *e = json_array_get(ents, i);
                                assert_string_equal(json_string_value(json_object_get(e, "key")),
                                                    names[order[i]]);
                                assert_int_equal(U(e, "flows"), g[order[i]][0]);
                                assert_int_equal(U(e, "octets"), g[order[i]][1]);
                                assert_int_equal(U(e, "packets"), g[order[i]][2]);
                        }
                } else
                        inexact_seen++;
                json_decref(top);
                free_answers(ans, PODS);
        }
        /* both outcomes occur, and cut lists sometimes still prove exact */
        assert_true(exact_seen > 300);
        assert_true(inexact_seen > 300);
        assert_true(proved_seen > 100);
        print_message("exact %u (by thresholds %u), inexact %u\n", exact_seen, proved_seen,
                      inexact_seen);
}

/* ---- totals, exporters, meta ---- */

static void test_totals(void **state) {
        ApiPodAnswer ans[3] = {
                { "a", J("{\"ok\":true,\"step_s\":60,\"points\":["
                         "{\"start_ms\":60000,\"flows\":1,\"octets\":10,\"packets\":2},"
                         "{\"start_ms\":120000,\"flows\":2,\"octets\":20,\"packets\":3}]}") },
                { "b", J("{\"ok\":true,\"step_s\":60,\"points\":["
                         "{\"start_ms\":180000,\"flows\":5,\"octets\":50,\"packets\":5},"
                         "{\"start_ms\":60000,\"flows\":4,\"octets\":40,\"packets\":4}]}") },
                { "c", NULL },
        };
        json_t *t = NULL, *pts;

        assert_int_equal(api_merge_totals(ans, 3, &t), 0);
        assert_int_equal(U(t, "step_s"), 60);
        pts = json_object_get(t, "points");
        assert_int_equal(json_array_size(pts), 3);
        assert_int_equal(U(json_array_get(pts, 0), "start_ms"), 60000);
        assert_int_equal(U(json_array_get(pts, 0), "flows"), 5);
        assert_int_equal(U(json_array_get(pts, 0), "octets"), 50);
        assert_int_equal(U(json_array_get(pts, 0), "packets"), 6);
        assert_int_equal(U(json_array_get(pts, 1), "start_ms"), 120000);
        assert_int_equal(U(json_array_get(pts, 1), "octets"), 20);
        assert_int_equal(U(json_array_get(pts, 2), "start_ms"), 180000);
        assert_int_equal(U(json_array_get(pts, 2), "octets"), 50);
        json_decref(t);

        assert_int_equal(api_merge_totals(ans + 2, 1, &t), 0);
        assert_true(json_is_null(json_object_get(t, "step_s")));
        assert_int_equal(json_array_size(json_object_get(t, "points")), 0);
        json_decref(t);

        /* different steps cannot be summed; a start_ms twice in one pod is malformed */
        ans[2].answer = J("{\"ok\":true,\"step_s\":300,\"points\":[]}");
        t = NULL;
        assert_int_equal(api_merge_totals(ans, 3, &t), -EBADMSG);
        assert_null(t);
        json_decref(ans[2].answer);
        ans[2].answer = J("{\"ok\":true,\"step_s\":60,\"points\":["
                          "{\"start_ms\":0,\"flows\":1,\"octets\":1,\"packets\":1},"
                          "{\"start_ms\":0,\"flows\":1,\"octets\":1,\"packets\":1}]}");
        assert_int_equal(api_merge_totals(ans, 3, &t), -EBADMSG);
        json_decref(ans[2].answer);
        ans[2].answer = J("{\"ok\":true,\"step_s\":60,\"points\":[{\"start_ms\":0}]}");
        assert_int_equal(api_merge_totals(ans, 3, &t), -EBADMSG);
        free_answers(ans, 3);
}

#define X(a, o, f, l, n) "{\"address\":\"" a "\",\"odid\":" #o ",\"first_seen_ms\":" #f \
        ",\"last_seen_ms\":" #l ",\"flows\":" #n ",\"octets\":" #n "0,\"packets\":" #n "}"

static void test_exporters(void **state) {
        ApiPodAnswer ans[3] = {
                { "p2", J("{\"ok\":true,\"exporters\":[" X("10.0.0.1", 1, 100, 200, 1) ","
                          X("10.0.0.1", 2, 50, 60, 2) "]}") },
                { "p1", J("{\"ok\":true,\"exporters\":[" X("10.0.0.1", 1, 90, 150, 3) ","
                          X("::1", 0, 10, 20, 4) "]}") },
                { "p3", J("{\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\"m\"}}") },
        };
        json_t *t = NULL, *list, *e, *pods;

        assert_int_equal(api_merge_exporters(ans, 3, &t), 0);
        list = json_object_get(t, "exporters");
        assert_int_equal(json_array_size(list), 3);
        e = json_array_get(list, 0);
        assert_string_equal(json_string_value(json_object_get(e, "address")), "10.0.0.1");
        assert_int_equal(U(e, "odid"), 1);
        assert_int_equal(U(e, "first_seen_ms"), 90);
        assert_int_equal(U(e, "last_seen_ms"), 200);
        assert_int_equal(U(e, "flows"), 4);
        assert_int_equal(U(e, "octets"), 40);
        assert_int_equal(U(e, "packets"), 4);
        pods = json_object_get(e, "pods");
        assert_int_equal(json_array_size(pods), 2);
        assert_string_equal(json_string_value(json_array_get(pods, 0)), "p2"); /* answers order */
        assert_string_equal(json_string_value(json_array_get(pods, 1)), "p1");
        e = json_array_get(list, 1);
        assert_int_equal(U(e, "odid"), 2);
        assert_int_equal(json_array_size(json_object_get(e, "pods")), 1);
        e = json_array_get(list, 2);
        assert_string_equal(json_string_value(json_object_get(e, "address")), "::1");
        assert_int_equal(U(e, "flows"), 4);
        json_decref(t);

        json_decref(ans[2].answer);
        ans[2].answer = J("{\"ok\":true,\"exporters\":[" X("1.1.1.1", 1, 1, 1, 1) ","
                          X("1.1.1.1", 1, 1, 1, 1) "]}");
        t = NULL;
        assert_int_equal(api_merge_exporters(ans, 3, &t), -EBADMSG);
        json_decref(ans[2].answer);
        ans[2].answer = J("{\"ok\":true,\"exporters\":[{\"address\":\"1.1.1.1\",\"odid\":1}]}");
        assert_int_equal(api_merge_exporters(ans, 3, &t), -EBADMSG);
        json_decref(ans[2].answer);
        ans[2].answer = J("{\"ok\":true}");
        assert_int_equal(api_merge_exporters(ans, 3, &t), -EBADMSG);
        assert_null(t);
        free_answers(ans, 3);
}

static void test_meta(void **state) {
        ApiPodAnswer ans[5] = {
                { "a", J("{\"ok\":true}") },
                { "b", NULL },
                { "c", J("{\"ok\":false,\"error\":{\"code\":\"unavailable\",\"message\":\"no store\"}}") },
                { "d", J("[1,2]") },
                { "e", J("{\"ok\":\"yes\"}") },
        };
        json_t *m = api_merge_meta(ans, 5), *miss, *x;

        assert_non_null(m);
        assert_int_equal(U(m, "pods"), 5);
        assert_int_equal(U(m, "answered"), 1);
        assert_true(json_is_true(json_object_get(m, "partial")));
        miss = json_object_get(m, "missing_pods");
        assert_int_equal(json_array_size(miss), 4);
        x = json_array_get(miss, 0);
        assert_string_equal(json_string_value(json_object_get(x, "pod")), "b");
        assert_string_equal(json_string_value(json_object_get(json_object_get(x, "error"), "code")),
                            "no_answer");
        x = json_array_get(miss, 1);
        assert_string_equal(json_string_value(json_object_get(x, "pod")), "c");
        assert_string_equal(json_string_value(json_object_get(json_object_get(x, "error"),
                                                              "message")), "no store");
        x = json_array_get(miss, 2);
        assert_string_equal(json_string_value(json_object_get(json_object_get(x, "error"), "code")),
                            "bad_answer");
        x = json_array_get(miss, 3);
        assert_string_equal(json_string_value(json_object_get(json_object_get(x, "error"), "code")),
                            "bad_answer");
        json_decref(m);

        m = api_merge_meta(ans, 1);
        assert_false(json_is_true(json_object_get(m, "partial")));
        assert_int_equal(json_array_size(json_object_get(m, "missing_pods")), 0);
        json_decref(m);
        m = api_merge_meta(NULL, 0);
        assert_int_equal(U(m, "pods"), 0);
        assert_false(json_is_true(json_object_get(m, "partial")));
        json_decref(m);
        free_answers(ans, 5);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cursor_roundtrip),
                cmocka_unit_test(test_cursor_malformed),
                cmocka_unit_test(test_cursor_for_pod),
                cmocka_unit_test(test_paging_brute_force),
                cmocka_unit_test(test_flows_merge),
                cmocka_unit_test(test_top_sums_ties),
                cmocka_unit_test(test_top_hidden_leader),
                cmocka_unit_test(test_top_exact_flag),
                cmocka_unit_test(test_top_exact_edge),
                cmocka_unit_test(test_top_exact_sound),
                cmocka_unit_test(test_totals),
                cmocka_unit_test(test_exporters),
                cmocka_unit_test(test_meta),
        };
        return cmocka_run_group_tests_name("api-merge", tests, NULL, NULL);
}
