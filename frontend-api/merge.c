/* SPDX-License-Identifier: MIT */
/*
 * merge.c - merging the pods' query answers exactly (see merge.h for the rules).
 *
 * Every merge flattens the answered pods' items into one array of small refs (borrowing the
 * pods' json_t), sorts it, and walks it once: grouping by key for top/totals/exporters,
 * taking a prefix for flows. Nothing is hashed, so the result does not depend on any seed,
 * and the inputs are never modified. Pod data is untrusted in shape (-EBADMSG) but not in
 * meaning: a pod that lies about its order or sums makes the merge wrong, not unsafe.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "macro.h"
#include "merge.h"

#define SUMS 3
static const char *const sum_names[SUMS] = { "flows", "octets", "packets" };

static inline void jsonp(json_t **j) {
        json_decref(*j);
}
#define _cleanup_json_ _cleanup_(jsonp)

static uint64_t sat_add(uint64_t a, uint64_t b) {
        return a > (uint64_t) INT64_MAX - MIN(b, (uint64_t) INT64_MAX) ? (uint64_t) INT64_MAX
                                                                        : a + b;
}

static json_t *json_u64(uint64_t v) {
        return json_integer((json_int_t) MIN(v, (uint64_t) INT64_MAX));
}

/* Sets @key of @o to @v (consumed); false on -ENOMEM. */
static bool set_new(json_t *o, const char *key, json_t *v) {
        return v && json_object_set_new(o, key, v) == 0;
}

bool api_pod_name_is_valid(const char *s) {
        size_t i;

        if (!s)
                return false;
        for (i = 0; s[i]; i++) {
                char c = s[i];
                if (i >= API_POD_NAME_MAX)
                        return false;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return i > 0;
}

int api_cursor_format(const ApiCursor *c, char *buf, size_t size) {
        int k;

        assert(c);
        assert(buf || size == 0);
        if (c->end_ms > (uint64_t) INT64_MAX || !api_pod_name_is_valid(c->pod))
                return -EINVAL;
        k = snprintf(buf, size, "%" PRIu64 ".%" PRIu64 ".%s", c->end_ms, c->seq, c->pod);
        if (k < 0)
                return -EINVAL;
        if ((size_t) k >= size)
                return -ENOBUFS;
        return k;
}

/* Parses canonical decimal digits at *p up to @stop: no sign, no leading zero, <= @max. */
static int parse_u64(const char **p, char stop, uint64_t max, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;
        size_t n = 0;

        for (; s[n] >= '0' && s[n] <= '9'; n++) {
                unsigned d = (unsigned) (s[n] - '0');
                if (v > (max - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        if (n == 0 || (n > 1 && s[0] == '0') || s[n] != stop)
                return -EINVAL;
        *p = s + n + 1;
        *ret = v;
        return 0;
}

int api_cursor_parse(const char *s, ApiCursor *ret) {
        ApiCursor c = { 0 };
        size_t l;

        assert(ret);
        if (!s || parse_u64(&s, '.', (uint64_t) INT64_MAX, &c.end_ms) < 0 ||
            parse_u64(&s, '.', UINT64_MAX, &c.seq) < 0)
                return -EINVAL;
        l = strnlen(s, API_POD_NAME_MAX + 1);
        if (l > API_POD_NAME_MAX || !api_pod_name_is_valid(s))
                return -EINVAL;
        memcpy(c.pod, s, l + 1);
        *ret = c;
        return 0;
}

int api_cursor_for_pod(const ApiCursor *c, const char *pod, uint64_t *ret_end_ms,
                       uint64_t *ret_seq) {
        int d;

        assert(c);
        assert(ret_end_ms);
        assert(ret_seq);
        if (!api_pod_name_is_valid(pod) || !api_pod_name_is_valid(c->pod) ||
            c->end_ms > (uint64_t) INT64_MAX)
                return -EINVAL;
        d = strcmp(pod, c->pod);
        if (d < 0) {
                *ret_end_ms = c->end_ms;
                *ret_seq = 0;
        } else if (d == 0) {
                *ret_end_ms = c->end_ms;
                *ret_seq = c->seq;
        } else {
                *ret_end_ms = c->end_ms + 1;
                *ret_seq = 0;
        }
        return 0;
}

/* The one test for "this pod answered", shared by the merges and api_merge_meta(). */
static bool answer_ok(const ApiPodAnswer *a) {
        return a->answer && json_is_object(a->answer) &&
               json_is_true(json_object_get(a->answer, "ok"));
}

static int check_pods(const ApiPodAnswer *answers, size_t n) {
        assert(answers || n == 0);
        for (size_t i = 0; i < n; i++) {
                if (!api_pod_name_is_valid(answers[i].pod))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(answers[i].pod, answers[j].pod) == 0)
                                return -EINVAL;
        }
        return 0;
}

/* A non-negative integer member. */
static int get_u64(json_t *o, const char *name, uint64_t *ret) {
        json_t *v = json_object_get(o, name);

        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

/* The three sums of @o (its members flows, octets, packets). */
static int get_sums(json_t *o, uint64_t s[SUMS]) {
        if (!json_is_object(o))
                return -EBADMSG;
        for (size_t m = 0; m < SUMS; m++)
                if (get_u64(o, sum_names[m], &s[m]) < 0)
                        return -EBADMSG;
        return 0;
}

static bool set_sums(json_t *o, const uint64_t s[SUMS]) {
        for (size_t m = 0; m < SUMS; m++)
                if (!set_new(o, sum_names[m], json_u64(s[m])))
                        return false;
        return true;
}

static json_t *sums_object(const uint64_t s[SUMS]) {
        json_t *o = json_object();

        if (o && !set_sums(o, s)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* Checks the pods (check_pods()), then counts the items of the array member @name over the
 * answered pods; -EBADMSG if an answered pod lacks it. */
static int count_items(const ApiPodAnswer *answers, size_t n, const char *name, size_t *ret) {
        size_t total = 0;
        int r;

        r = check_pods(answers, n);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                json_t *a;

                if (!answer_ok(&answers[i]))
                        continue;
                a = json_object_get(answers[i].answer, name);
                if (!json_is_array(a))
                        return -EBADMSG;
                total += json_array_size(a);
        }
        *ret = total;
        return 0;
}

/* ---- flows ---- */

typedef struct FlowRef {
        uint64_t end_ms, seq;
        const char *pod;
        json_t *flow;
} FlowRef;

static int flow_ref_cmp(const void *a, const void *b) {
        const FlowRef *x = a, *y = b;
        int d;

        if (x->end_ms != y->end_ms)
                return x->end_ms > y->end_ms ? -1 : 1;
        d = strcmp(x->pod, y->pod);
        if (d != 0)
                return d;
        if (x->seq != y->seq)
                return x->seq > y->seq ? -1 : 1;
        return 0;
}

int api_merge_flows(const ApiPodAnswer *answers, size_t n, size_t limit, json_t **ret_flows,
                    bool *ret_has_more, bool *ret_truncated, ApiCursor *ret_next) {
        _cleanup_free_ FlowRef *refs = NULL;
        _cleanup_json_ json_t *out = NULL;
        bool more = false, truncated = false;
        ApiCursor next = { 0 };
        size_t total, k = 0, take;
        int r;

        assert(ret_flows);
        assert(ret_has_more);
        assert(ret_truncated);
        assert(ret_next);
        if (limit == 0)
                return -EINVAL;
        r = count_items(answers, n, "flows", &total);
        if (r < 0)
                return r;
        refs = calloc(MAX(total, (size_t) 1), sizeof(*refs));
        if (!refs)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                json_t *a = answers[i].answer, *flows, *f, *nc, *tr;
                size_t j;

                if (!answer_ok(&answers[i]))
                        continue;
                flows = json_object_get(a, "flows");
                json_array_foreach(flows, j, f) {
                        FlowRef *ref = &refs[k++];

                        if (!json_is_object(f) || get_u64(f, "end_ms", &ref->end_ms) < 0 ||
                            get_u64(f, "seq", &ref->seq) < 0)
                                return -EBADMSG;
                        ref->pod = answers[i].pod;
                        ref->flow = f;
                }
                nc = json_object_get(a, "next_cursor");
                if (nc && !json_is_null(nc)) {
                        if (!json_is_string(nc))
                                return -EBADMSG;
                        more = true;
                }
                tr = json_object_get(a, "truncated");
                if (tr && !json_is_boolean(tr))
                        return -EBADMSG;
                truncated = truncated || json_is_true(tr);
        }
        assert(k == total);

        qsort(refs, total, sizeof(*refs), flow_ref_cmp);
        take = MIN(limit, total);
        if (total > limit)
                more = true;

        out = json_array();
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < take; i++) {
                json_t *c = json_copy(refs[i].flow);

                if (!c)
                        return -ENOMEM;
                if (json_object_set_new(c, "pod", json_string(refs[i].pod)) < 0) {
                        json_decref(c);
                        return -ENOMEM;
                }
                if (json_array_append_new(out, c) < 0) /* consumes c */
                        return -ENOMEM;
        }
        if (take > 0) {
                const FlowRef *last = &refs[take - 1];

                next.end_ms = last->end_ms;
                next.seq = last->seq;
                memcpy(next.pod, last->pod, strlen(last->pod) + 1);
        }

        *ret_flows = TAKE_PTR(out);
        *ret_has_more = more;
        *ret_truncated = truncated;
        *ret_next = next;
        return 0;
}

/* ---- top ---- */

typedef struct TopRef {
        const char *key;
        size_t pod;
        json_t *fields;
        uint64_t s[SUMS];
} TopRef;

typedef struct TopPod {
        uint64_t totals[SUMS], other[SUMS];
        uint64_t bound; /* b_p */
        bool omit;      /* omit_p */
        bool exact;
} TopPod;

typedef struct TopGroup {
        const char *key;
        json_t *fields;
        uint64_t s[SUMS];
        uint64_t listed_bound;  /* sum of b_p over the pods listing the key */
        size_t listed_omitters; /* pods listing the key that have omit_p */
} TopGroup;

static int top_ref_cmp(const void *a, const void *b) {
        const TopRef *x = a, *y = b;
        int d = strcmp(x->key, y->key);

        if (d != 0)
                return d;
        return x->pod < y->pod ? -1 : x->pod > y->pod;
}

static int top_group_cmp_metric(const TopGroup *x, const TopGroup *y, unsigned m) {
        if (x->s[m] != y->s[m])
                return x->s[m] > y->s[m] ? -1 : 1;
        return strcmp(x->key, y->key);
}

/* Ranks by metric desc, key asc: a merge sort, since qsort() has no context argument. */
static void sort_groups(TopGroup *g, TopGroup *tmp, size_t n, unsigned m) {
        size_t h, i, j, k;

        if (n < 2)
                return;
        h = n / 2;
        sort_groups(g, tmp, h, m);
        sort_groups(g + h, tmp, n - h, m);
        for (i = 0, j = h, k = 0; i < h || j < n;)
                if (j >= n || (i < h && top_group_cmp_metric(&g[i], &g[j], m) <= 0))
                        tmp[k++] = g[i++];
                else
                        tmp[k++] = g[j++];
        memcpy(g, tmp, n * sizeof(*g));
}

static int metric_from_string(const char *s) {
        for (size_t m = 0; s && m < SUMS; m++)
                if (strcmp(s, sum_names[m]) == 0)
                        return (int) m;
        return -EINVAL;
}

static int top_read_pod(json_t *a, unsigned m, const char *metric, TopPod *p) {
        json_t *ents = json_object_get(a, "entries"), *e, *ex, *ms;
        uint64_t t = UINT64_MAX;
        size_t j;

        ms = json_object_get(a, "metric");
        if (ms && (!json_is_string(ms) || strcmp(json_string_value(ms), metric) != 0))
                return -EBADMSG;
        ex = json_object_get(a, "exact");
        if (!json_is_boolean(ex) || get_sums(json_object_get(a, "totals"), p->totals) < 0 ||
            get_sums(json_object_get(a, "other"), p->other) < 0)
                return -EBADMSG;
        p->exact = json_is_true(ex);
        json_array_foreach(ents, j, e) {
                uint64_t v;
                if (get_u64(e, sum_names[m], &v) < 0)
                        return -EBADMSG;
                t = MIN(t, v);
        }
        p->omit = p->other[0] || p->other[1] || p->other[2];
        p->bound = p->other[m] == 0 ? 0 : MIN(t, p->other[m]);
        return 0;
}

int api_merge_top(const ApiPodAnswer *answers, size_t n, const char *metric, size_t limit,
                  json_t **ret) {
        _cleanup_free_ TopPod *pods = NULL;
        _cleanup_free_ TopRef *refs = NULL;
        _cleanup_free_ TopGroup *groups = NULL, *tmp = NULL;
        _cleanup_json_ json_t *out = NULL, *entries = NULL, *inexact = NULL;
        uint64_t totals[SUMS] = { 0 }, returned[SUMS] = { 0 }, other[SUMS], all_bound = 0;
        uint64_t from = UINT64_MAX, to = 0, minutes = 0;
        size_t total, k = 0, ng = 0, take, n_ok = 0, n_omitters = 0;
        json_t *dim = NULL;
        bool exact = true;
        int r, mi;
        unsigned m;

        assert(ret);
        mi = metric_from_string(metric);
        if (mi < 0)
                return -EINVAL;
        m = (unsigned) mi;
        r = count_items(answers, n, "entries", &total);
        if (r < 0)
                return r;
        pods = calloc(MAX(n, (size_t) 1), sizeof(*pods));
        refs = calloc(MAX(total, (size_t) 1), sizeof(*refs));
        groups = calloc(MAX(total, (size_t) 1), sizeof(*groups));
        tmp = calloc(MAX(total, (size_t) 1), sizeof(*tmp));
        inexact = json_array();
        if (!pods || !refs || !groups || !tmp || !inexact)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                json_t *a = answers[i].answer, *e, *v;
                TopPod *p = &pods[i];
                uint64_t x;
                size_t j;

                if (!answer_ok(&answers[i])) {
                        exact = false; /* a pod's keys and totals are missing */
                        continue;
                }
                r = top_read_pod(a, m, metric, p);
                if (r < 0)
                        return r;
                n_ok++;
                if (!p->exact) {
                        exact = false;
                        if (json_array_append_new(inexact, json_string(answers[i].pod)) < 0)
                                return -ENOMEM;
                }
                if (p->omit)
                        n_omitters++;
                all_bound = sat_add(all_bound, p->bound);
                for (size_t s = 0; s < SUMS; s++)
                        totals[s] = sat_add(totals[s], p->totals[s]);
                v = json_object_get(a, "dim");
                if (!dim && json_is_string(v))
                        dim = v;
                if (get_u64(a, "from_ms", &x) == 0)
                        from = MIN(from, x);
                if (get_u64(a, "to_ms", &x) == 0)
                        to = MAX(to, x);
                if (get_u64(a, "minutes", &x) == 0)
                        minutes = MAX(minutes, x);

                json_array_foreach(json_object_get(a, "entries"), j, e) {
                        TopRef *ref = &refs[k++];
                        json_t *key = json_object_get(e, "key");

                        ref->fields = json_object_get(e, "fields");
                        if (!json_is_string(key) || !json_is_object(ref->fields) ||
                            get_sums(e, ref->s) < 0)
                                return -EBADMSG;
                        ref->key = json_string_value(key);
                        ref->pod = i;
                }
        }
        assert(k == total);
        if (n_ok == 0)
                exact = false;

        /* group by key; the first of a group is the first pod (in @answers order) */
        qsort(refs, total, sizeof(*refs), top_ref_cmp);
        for (size_t i = 0; i < total; i++) {
                const TopRef *ref = &refs[i];
                TopGroup *g;

                if (ng > 0 && strcmp(groups[ng - 1].key, ref->key) == 0) {
                        if (refs[i - 1].pod == ref->pod)
                                return -EBADMSG; /* one pod listed the key twice */
                        g = &groups[ng - 1];
                } else {
                        g = &groups[ng++];
                        g->key = ref->key;
                        g->fields = ref->fields;
                }
                for (size_t s = 0; s < SUMS; s++)
                        g->s[s] = sat_add(g->s[s], ref->s[s]);
                g->listed_bound = sat_add(g->listed_bound, pods[ref->pod].bound);
                if (pods[ref->pod].omit)
                        g->listed_omitters++;
        }
        sort_groups(groups, tmp, ng, m);
        take = MIN(limit, ng);

        /* the exact-flag rule of merge.h, conditions 2 to 4 */
        for (size_t i = 0; exact && i < take; i++)
                if (groups[i].listed_omitters != n_omitters)
                        exact = false;
        if (exact && take < limit && n_omitters > 0)
                exact = false;
        if (exact && take == limit && limit > 0) {
                const TopGroup *last = &groups[take - 1];
                uint64_t v = last->s[m];

                for (size_t i = take; exact && i < ng; i++) {
                        const TopGroup *g = &groups[i];
                        /* the pods not listing g: all_bound - listed_bound (no saturation
                         * below INT64_MAX; at saturation the bound is only larger) */
                        uint64_t ub = sat_add(g->s[m], all_bound - MIN(all_bound, g->listed_bound));

                        if (all_bound == (uint64_t) INT64_MAX)
                                ub = INT64_MAX;
                        if (!(ub < v || (ub == v && strcmp(g->key, last->key) > 0)))
                                exact = false;
                }
                if (n_omitters > 0 && all_bound >= v)
                        exact = false;
        }

        entries = json_array();
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < take; i++) {
                const TopGroup *g = &groups[i];
                json_t *e = json_object();

                if (json_array_append_new(entries, e) < 0) /* consumes e, rejects NULL */
                        return -ENOMEM;
                if (!set_new(e, "key", json_string(g->key)) ||
                    !set_new(e, "fields", json_deep_copy(g->fields)) || !set_sums(e, g->s))
                        return -ENOMEM;
                for (size_t s = 0; s < SUMS; s++)
                        returned[s] = sat_add(returned[s], g->s[s]);
        }
        for (size_t s = 0; s < SUMS; s++)
                other[s] = totals[s] - MIN(totals[s], returned[s]);

        out = json_object();
        if (!out || !set_new(out, "dim", dim ? json_copy(dim) : json_null()) ||
            !set_new(out, "metric", json_string(metric)) ||
            !set_new(out, "from_ms", n_ok && from != UINT64_MAX ? json_u64(from) : json_null()) ||
            !set_new(out, "to_ms", n_ok && to > 0 ? json_u64(to) : json_null()) ||
            !set_new(out, "minutes", json_u64(minutes)) ||
            json_object_set_new(out, "entries", TAKE_PTR(entries)) < 0 ||
            !set_new(out, "totals", sums_object(totals)) ||
            !set_new(out, "other", sums_object(other)) ||
            !set_new(out, "exact", json_boolean(exact)) ||
            json_object_set_new(out, "pods_inexact", TAKE_PTR(inexact)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- totals ---- */

typedef struct PointRef {
        uint64_t start_ms;
        size_t pod;
        uint64_t s[SUMS];
} PointRef;

static int point_ref_cmp(const void *a, const void *b) {
        const PointRef *x = a, *y = b;

        if (x->start_ms != y->start_ms)
                return x->start_ms < y->start_ms ? -1 : 1;
        return x->pod < y->pod ? -1 : x->pod > y->pod;
}

int api_merge_totals(const ApiPodAnswer *answers, size_t n, json_t **ret) {
        _cleanup_free_ PointRef *refs = NULL;
        _cleanup_json_ json_t *out = NULL, *points = NULL;
        uint64_t step = 0;
        bool have_step = false;
        size_t total, k = 0;
        int r;

        assert(ret);
        r = count_items(answers, n, "points", &total);
        if (r < 0)
                return r;
        refs = calloc(MAX(total, (size_t) 1), sizeof(*refs));
        if (!refs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *a = answers[i].answer, *p;
                uint64_t s;
                size_t j;

                if (!answer_ok(&answers[i]))
                        continue;
                if (get_u64(a, "step_s", &s) < 0 || (have_step && s != step))
                        return -EBADMSG;
                step = s;
                have_step = true;
                json_array_foreach(json_object_get(a, "points"), j, p) {
                        PointRef *ref = &refs[k++];

                        if (get_u64(p, "start_ms", &ref->start_ms) < 0 || get_sums(p, ref->s) < 0)
                                return -EBADMSG;
                        ref->pod = i;
                }
        }
        assert(k == total);
        qsort(refs, total, sizeof(*refs), point_ref_cmp);

        points = json_array();
        if (!points)
                return -ENOMEM;
        for (size_t i = 0; i < total;) {
                uint64_t sums[SUMS] = { 0 };
                size_t j = i;
                json_t *o;

                for (; j < total && refs[j].start_ms == refs[i].start_ms; j++) {
                        if (j > i && refs[j].pod == refs[j - 1].pod)
                                return -EBADMSG;
                        for (size_t s = 0; s < SUMS; s++)
                                sums[s] = sat_add(sums[s], refs[j].s[s]);
                }
                o = json_object();
                if (json_array_append_new(points, o) < 0)
                        return -ENOMEM;
                if (!set_new(o, "start_ms", json_u64(refs[i].start_ms)) || !set_sums(o, sums))
                        return -ENOMEM;
                i = j;
        }
        out = json_object();
        if (!out || !set_new(out, "step_s", have_step ? json_u64(step) : json_null()) ||
            json_object_set_new(out, "points", TAKE_PTR(points)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- exporters ---- */

typedef struct ExporterRef {
        const char *address;
        uint64_t odid, first, last;
        size_t pod;
        uint64_t s[SUMS];
} ExporterRef;

static int exporter_ref_cmp(const void *a, const void *b) {
        const ExporterRef *x = a, *y = b;
        int d = strcmp(x->address, y->address);

        if (d != 0)
                return d;
        if (x->odid != y->odid)
                return x->odid < y->odid ? -1 : 1;
        return x->pod < y->pod ? -1 : x->pod > y->pod;
}

static bool exporter_same(const ExporterRef *x, const ExporterRef *y) {
        return x->odid == y->odid && strcmp(x->address, y->address) == 0;
}

int api_merge_exporters(const ApiPodAnswer *answers, size_t n, json_t **ret) {
        _cleanup_free_ ExporterRef *refs = NULL;
        _cleanup_json_ json_t *out = NULL, *list = NULL;
        size_t total, k = 0;
        int r;

        assert(ret);
        r = count_items(answers, n, "exporters", &total);
        if (r < 0)
                return r;
        refs = calloc(MAX(total, (size_t) 1), sizeof(*refs));
        if (!refs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *e;
                size_t j;

                if (!answer_ok(&answers[i]))
                        continue;
                json_array_foreach(json_object_get(answers[i].answer, "exporters"), j, e) {
                        ExporterRef *ref = &refs[k++];
                        json_t *addr = json_object_get(e, "address");

                        if (!json_is_string(addr) || get_u64(e, "odid", &ref->odid) < 0 ||
                            get_u64(e, "first_seen_ms", &ref->first) < 0 ||
                            get_u64(e, "last_seen_ms", &ref->last) < 0 || get_sums(e, ref->s) < 0)
                                return -EBADMSG;
                        ref->address = json_string_value(addr);
                        ref->pod = i;
                }
        }
        assert(k == total);
        qsort(refs, total, sizeof(*refs), exporter_ref_cmp);

        list = json_array();
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < total;) {
                uint64_t sums[SUMS] = { 0 }, first = UINT64_MAX, last = 0;
                _cleanup_json_ json_t *pods = json_array();
                json_t *o = json_object();
                size_t j = i;

                if (json_array_append_new(list, o) < 0 || !pods || /* list owns o */
                    !set_new(o, "address", json_string(refs[i].address)) ||
                    !set_new(o, "odid", json_u64(refs[i].odid)))
                        return -ENOMEM;
                for (; j < total && exporter_same(&refs[j], &refs[i]); j++) {
                        if (j > i && refs[j].pod == refs[j - 1].pod)
                                return -EBADMSG; /* one pod listed the exporter twice */
                        for (size_t s = 0; s < SUMS; s++)
                                sums[s] = sat_add(sums[s], refs[j].s[s]);
                        first = MIN(first, refs[j].first);
                        last = MAX(last, refs[j].last);
                        if (json_array_append_new(pods, json_string(answers[refs[j].pod].pod)) < 0)
                                return -ENOMEM;
                }
                if (!set_new(o, "first_seen_ms", json_u64(first)) ||
                    !set_new(o, "last_seen_ms", json_u64(last)) || !set_sums(o, sums) ||
                    !set_new(o, "pods", TAKE_PTR(pods)))
                        return -ENOMEM;
                i = j;
        }
        out = json_object();
        if (!out || json_object_set_new(out, "exporters", TAKE_PTR(list)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- meta ---- */

static json_t *error_object(const char *code, const char *message) {
        return json_pack("{s:s, s:s}", "code", code, "message", message);
}

json_t *api_merge_meta(const ApiPodAnswer *answers, size_t n) {
        _cleanup_json_ json_t *out = NULL, *missing = NULL;
        size_t answered = 0;

        assert(answers || n == 0);
        missing = json_array();
        if (!missing)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const ApiPodAnswer *a = &answers[i];
                json_t *err, *m;

                if (answer_ok(a)) {
                        answered++;
                        continue;
                }
                if (!a->answer)
                        err = error_object("no_answer", "the pod did not answer");
                else {
                        err = json_object_get(a->answer, "error");
                        if (json_is_object(a->answer) &&
                            json_is_false(json_object_get(a->answer, "ok")) &&
                            json_is_object(err))
                                err = json_deep_copy(err);
                        else
                                err = error_object("bad_answer", "the pod's answer is malformed");
                }
                if (!err)
                        return NULL;
                m = json_pack("{s:s?, s:o}", "pod", a->pod, "error", err);
                if (!m || json_array_append_new(missing, m) < 0) {
                        json_decref(m);
                        return NULL;
                }
        }
        out = json_object();
        if (!out || !set_new(out, "pods", json_u64(n)) ||
            !set_new(out, "answered", json_u64(answered)) ||
            !set_new(out, "partial", json_boolean(answered < n)) ||
            json_object_set_new(out, "missing_pods", TAKE_PTR(missing)) < 0)
                return NULL;
        return TAKE_PTR(out);
}
