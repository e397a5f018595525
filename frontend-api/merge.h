/* SPDX-License-Identifier: MIT */
/*
 * merge.h - merging the pods' query-protocol answers (README "Query protocol (version 1)")
 * into the public API's answers, exactly. Pure functions over parsed jansson trees: no I/O,
 * no clock, nothing kept between calls.
 *
 * Every merge takes an array of ApiPodAnswer, one per pod asked, in any order. An answer
 * that is NULL (no reply), not an object, or not "ok": true is skipped by the merges and
 * reported by api_merge_meta() (the same test in both places, so the two always agree).
 * An answer with "ok": true whose members do not have the documented shape makes the merge
 * fail with -EBADMSG: pods run the same code, so that is version skew or a bug, and a
 * silently wrong merge would be worse than an error. Numbers from pods are unsigned
 * integers; sums saturate at INT64_MAX (what JSON can carry).
 *
 * Pod names (ApiPodAnswer.pod, ApiCursor.pod) are 1..63 characters of [A-Za-z0-9._-] and
 * unique within one call; anything else is -EINVAL (a configuration error, not a pod's).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define API_POD_NAME_MAX 63u

/* One pod's answer. @answer is borrowed (never modified or freed); NULL: the pod did not
 * answer. */
typedef struct ApiPodAnswer {
        const char *pod;
        json_t *answer;
} ApiPodAnswer;

/*
 * ApiCursor - a position in the global flow order.
 *
 * Flows are ordered across pods by (end_ms desc, pod asc (strcmp), seq desc), a total
 * order since (pod, seq) names one record. The cursor is the position of the last flow
 * returned; the next page is everything strictly after it.
 *
 * Text form (api_cursor_format()): "END_MS.SEQ.POD", e.g. "1700000000123.4711.mediator-0",
 * with END_MS in 0..INT64_MAX and SEQ in 0..UINT64_MAX written in decimal without leading
 * zeros. It is unambiguous (the numbers contain no '.', so the first two dots split it; the
 * pod name may contain dots) and URL-safe without escaping (only RFC 3986 unreserved
 * characters). Clients must treat it as opaque. At most API_CURSOR_STRING_MAX - 1 bytes.
 */
typedef struct ApiCursor {
        uint64_t end_ms;
        char pod[API_POD_NAME_MAX + 1];
        uint64_t seq;
} ApiCursor;

#define API_CURSOR_STRING_MAX 128u /* 19 + 1 + 20 + 1 + 63 + NUL fits */

/**
 * api_pod_name_is_valid() - whether @s is 1..63 characters of [A-Za-z0-9._-].
 * @s: the name, may be NULL (not valid).
 */
bool api_pod_name_is_valid(const char *s);

/**
 * api_cursor_format() - write @c as text (see ApiCursor).
 * @c: the cursor.
 * @buf: output, NUL-terminated on success.
 * @size: size of @buf; API_CURSOR_STRING_MAX is always enough.
 *
 * Return: the length written (> 0), -EINVAL if @c->pod is not a valid pod name or
 * @c->end_ms > INT64_MAX, -ENOBUFS if @buf is too small.
 */
int api_cursor_format(const ApiCursor *c, char *buf, size_t size);

/**
 * api_cursor_parse() - parse a cursor from a client (untrusted).
 * @s: the text, may be NULL.
 * @ret: the cursor, set on success only.
 *
 * Accepts exactly what api_cursor_format() writes (so format(parse(s)) == s).
 * Return: 0, or -EINVAL for anything else (NULL, empty, signs, blanks, leading zeros,
 * out-of-range numbers, a bad or too long pod name, trailing bytes).
 */
int api_cursor_parse(const char *s, ApiCursor *ret);

/**
 * api_cursor_for_pod() - the pod-protocol cursor that makes @pod return exactly its flows
 * after the global position @c.
 * @c: the global cursor.
 * @pod: the pod to ask.
 * @ret_end_ms, @ret_seq: the pod's exclusive cursor "END_MS:SEQ" (the pod returns records
 * strictly after (end_ms, seq) in (end_ms desc, seq desc) order).
 *
 * At end_ms == E the pods come in name order, so:
 * - @pod < c->pod: its flows at E are already behind us; it needs end_ms < E: (E, 0).
 * - @pod == c->pod: (E, S), its own position.
 * - @pod > c->pod: all its flows at E are still ahead; it needs end_ms <= E: (E + 1, 0).
 *   (Not (E, UINT64_MAX), which would lose a record with seq UINT64_MAX; E <= INT64_MAX,
 *   so E + 1 does not overflow.)
 *
 * Return: 0, or -EINVAL if @pod is not a valid pod name or @c is not one that
 * api_cursor_parse() could produce.
 */
int api_cursor_for_pod(const ApiCursor *c, const char *pod, uint64_t *ret_end_ms,
                       uint64_t *ret_seq);

/**
 * api_merge_flows() - merge the pods' "flows" answers into one page in global order.
 * @answers, @n: the pods' answers, each to the same request (each pod asked with its
 * api_cursor_for_pod() cursor, or none for the first page, and the same @limit).
 * @limit: flows wanted, >= 1.
 * @ret_flows: a new array of at most @limit flows, the best in global order; each is a
 * shallow copy of the pod's flow object with "pod": name added (the caller owns it).
 * @ret_has_more: true when any pod answered a non-null "next_cursor" or more than @limit
 * flows were available.
 * @ret_truncated: true when any pod answered "truncated": true (its scan budget ran out, so
 * its flows are the best of those it examined).
 * @ret_next: the position of the last flow returned; all zero when none was returned.
 *
 * Because each pod returns its best @limit flows after the cursor, the global best @limit
 * are among the union, so the page is exact (unless truncated).
 * Return: 0; -EINVAL (limit 0, a bad or duplicate pod name), -EBADMSG (an ok answer whose
 * "flows" is not an array of objects with integer "end_ms" and "seq"), -ENOMEM. The ret_
 * parameters are set on success only.
 */
int api_merge_flows(const ApiPodAnswer *answers, size_t n, size_t limit, json_t **ret_flows,
                    bool *ret_has_more, bool *ret_truncated, ApiCursor *ret_next);

/**
 * api_merge_top() - merge the pods' "top" answers.
 * @answers, @n: the pods' answers to the same request (same dim, metric, window, and a pod
 * limit of at least @limit).
 * @metric: "octets", "packets" or "flows": the ranking metric of the request.
 * @limit: entries wanted (0 is allowed: totals only).
 * @ret: a new object {"dim", "metric", "from_ms", "to_ms", "minutes", "entries": [{"key",
 * "fields", "flows", "octets", "packets"}], "totals", "other", "exact", "pods_inexact"}.
 *
 * Entries are summed per "key" (all three sums) over the pods that list it, "fields" come
 * from the first pod (in @answers order) that lists it, and they are ranked by @metric desc,
 * then key asc (strcmp); the first @limit are returned. "totals" is the sum of the pods'
 * totals, "other" is totals minus the returned entries. "from_ms"/"to_ms" are the widest
 * over the pods, "minutes" the largest, "dim" the first pod's. "pods_inexact" names the
 * pods that answered "exact": false.
 *
 * "exact" is sound: true only when the entries are provably the true global top @limit,
 * in the right order, with exact sums. For each answered pod p let
 *   omit_p = p's "other" is non-zero in any of the three sums (p left out some key);
 *   t_p    = the smallest @metric among p's entries (p's "other" for @metric if it listed
 *            none);
 *   b_p    = 0 if p's "other" for @metric is 0, else min(t_p, other): a bound on the
 *            @metric any key p did not list has on p (p lists its top keys, so an unlisted
 *            key is at most its last entry, and at most all of "other").
 * A key k's upper bound is UB(k) = merged(k) + sum of b_p over the pods that did not list
 * k; a key no pod listed has UB = B = sum of all b_p. "exact" is true iff
 *   1. every pod was asked and answered ok (no pod missing or failed), at least one did,
 *      and every pod answered "exact": true (its per-key sums are complete);
 *   2. every returned key is complete: no pod that did not list it has omit_p (else some
 *      of its three sums may be low);
 *   3. if fewer than @limit entries are returned: no pod has omit_p (no key is unknown);
 *   4. if @limit entries are returned, with v = the last one's @metric and key K: every
 *      listed key j not returned has UB(j) < v, or UB(j) == v and j > K (it would rank
 *      after K even at its bound); and if any pod has omit_p, B < v (an unknown key can
 *      neither beat nor tie the last entry).
 * A pod that lists too few entries only makes the result inexact, never wrong.
 *
 * Return: 0; -EINVAL (bad metric, a bad or duplicate pod name), -EBADMSG (an ok answer
 * without an "entries" array of {"key": string, "fields": object, three integers}, a key
 * listed twice by one pod, missing "totals"/"other"/"exact", or a "metric" other than
 * @metric), -ENOMEM. @ret is set on success only.
 */
int api_merge_top(const ApiPodAnswer *answers, size_t n, const char *metric, size_t limit,
                  json_t **ret);

/**
 * api_merge_totals() - merge the pods' "totals" answers.
 * @answers, @n: the pods' answers to the same request.
 * @ret: a new object {"step_s": the pods' step (null if no pod answered), "points": [...]}
 * with one point per "start_ms" present on any pod (the union), sorted ascending, its
 * flows, octets and packets summed over the pods that have it.
 *
 * Return: 0; -EINVAL (a bad or duplicate pod name), -EBADMSG (malformed points, a start_ms
 * twice in one pod's answer, or pods answering different "step_s": their points would not
 * be aligned), -ENOMEM. @ret is set on success only.
 */
int api_merge_totals(const ApiPodAnswer *answers, size_t n, json_t **ret);

/**
 * api_merge_exporters() - merge the pods' "exporters" answers.
 * @answers, @n: the pods' answers.
 * @ret: a new object {"exporters": [...]}, one entry per ("address", "odid") sorted by
 * address (strcmp) then odid, with flows, octets and packets summed, the smallest
 * "first_seen_ms", the largest "last_seen_ms" and "pods": the names of the pods that saw
 * it, in @answers order.
 *
 * Return: 0; -EINVAL (a bad or duplicate pod name), -EBADMSG (malformed entries, or one
 * exporter twice in one pod's answer), -ENOMEM. @ret is set on success only.
 */
int api_merge_exporters(const ApiPodAnswer *answers, size_t n, json_t **ret);

/**
 * api_merge_meta() - who answered.
 * @answers, @n: the pods' answers.
 *
 * Return: a new object {"pods": n, "answered": K, "partial": K < n, "missing_pods":
 * [{"pod": name, "error": {"code", "message"}}]}, in @answers order. The error is the pod's
 * own "error" object when it answered "ok": false with one, {"code": "no_answer"} when
 * @answer is NULL, and {"code": "bad_answer"} for anything else. NULL on -ENOMEM.
 */
json_t *api_merge_meta(const ApiPodAnswer *answers, size_t n);
