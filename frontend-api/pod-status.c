/* SPDX-License-Identifier: MIT */
/*
 * pod-status.c - GET /api/v1/pods: every pod controller's GET /api/v1/pod at once, over
 * libcurl's multi interface (see pod-status.h).
 *
 * One call owns everything it uses: one CURLM, one easy handle and one body buffer per pod
 * with an http endpoint, all created, added at once and freed inside the call, so worker
 * threads never share a handle. The only state outside a call is libcurl's global state:
 * curl_global_init() is not thread-safe before libcurl 7.84 (and curl_easy_init() calls it
 * implicitly when nobody did), so it runs exactly once, through pthread_once(), before the
 * first handle is made. It is never undone: curl_global_cleanup() would race with other
 * workers, and the state lives as long as the process.
 *
 * Invariants: a pod's body never exceeds API_POD_STATUS_MAX_BODY (the write callback aborts
 * the transfer first); every easy handle is removed from the multi handle before it is
 * cleaned up; the deadline is the call's start plus @timeout_ms on CLOCK_MONOTONIC and no
 * wait goes past it, and every pod still in flight then is a "timeout". Peer data decides
 * only what a pod's entry says, never the call's return value. A pod without an http
 * endpoint is not asked; its entry has "url": null.
 *
 * Transfers are plain HTTP only (CURLOPT_PROTOCOLS), never follow a redirect, ignore the
 * http_proxy/no_proxy environment (controllers are pod addresses inside the cluster, which
 * a proxy would not reach) and run with CURLOPT_NOSIGNAL, as we run in a worker thread.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "log.h"
#include "macro.h"
#include "pod-status.h"

#define POD_PATH "/api/v1/pod"
#define USER_AGENT "ipfixd-api"
#define BODY_INITIAL 4096u      /* first allocation of a body buffer; doubled as needed */
#define POLL_MAX_MS 1000u       /* one curl_multi_poll() at most; the loop re-checks the deadline */

typedef struct PodFetch {
        CURL *easy;             /* NULL for a pod without an http endpoint */
        char *url;
        char *body;
        size_t len;
        size_t size;
        bool too_large;         /* the body passed API_POD_STATUS_MAX_BODY: aborted */
        bool oom;               /* the body buffer could not grow: aborted */
        bool done;              /* libcurl finished it (with @result) */
        CURLcode result;
        char errbuf[CURL_ERROR_SIZE];
} PodFetch;

typedef struct Fetch {
        CURLM *multi;
        struct curl_slist *headers;     /* shared by every easy handle, freed after them */
        PodFetch *pods;
        size_t n_pods;
} Fetch;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int curl_init(void) {
        int r = pthread_once(&curl_once, curl_init_once);

        if (r != 0)
                return NEG_ERRNO(r);
        return curl_init_result == CURLE_OK ? 0 : -EIO;
}

static inline void jsonp(json_t **j) {
        json_decref(*j);
}
#define _cleanup_json_ _cleanup_(jsonp)

/* Frees a string holding a secret, wiping it first. */
static void erase_freep(char **p) {
        if (*p) {
                explicit_bzero(*p, strlen(*p));
                free(*p);
        }
}

static void fetch_done(Fetch *f) {
        for (size_t i = 0; i < f->n_pods; i++) {
                PodFetch *p = &f->pods[i];

                if (p->easy) {
                        /* A handle that was never added is fine to remove too. */
                        if (f->multi)
                                (void) curl_multi_remove_handle(f->multi, p->easy);
                        curl_easy_cleanup(p->easy);
                }
                free(p->url);
                free(p->body);
        }
        free(f->pods);
        if (f->multi)
                (void) curl_multi_cleanup(f->multi);
        curl_slist_free_all(f->headers);
        *f = (Fetch) { 0 };
}

static int easy_error(CURLcode c) {
        return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

static int multi_error(CURLMcode c) {
        return c == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

/* Tokens come from config_read_token(), which refuses blanks and control characters; checked
 * again here because one CR or LF would let the token write its own header lines. */
static bool token_is_valid(const char *token) {
        if (!*token)
                return false;
        for (const char *c = token; *c; c++)
                if ((unsigned char) *c <= ' ' || *c == 0x7f)
                        return false;
        return true;
}

static int headers_new(const char *token, struct curl_slist **ret) {
        _cleanup_(erase_freep) char *auth = NULL;
        struct curl_slist *h, *t;

        h = curl_slist_append(NULL, "Accept: application/json");
        if (!h)
                return -ENOMEM;
        if (token) {
                if (asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
                        auth = NULL;
                        curl_slist_free_all(h);
                        return -ENOMEM;
                }
                t = curl_slist_append(h, auth);
                if (!t) {
                        curl_slist_free_all(h);
                        return -ENOMEM;
                }
                h = t;
        }
        *ret = h;
        return 0;
}

/* CURLOPT_WRITEFUNCTION: appends to the pod's body, aborting the transfer (by taking less
 * than offered) when it would pass the cap or the buffer cannot grow. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        PodFetch *p = userdata;
        size_t n, want;
        char *b;

        if (__builtin_mul_overflow(size, nmemb, &n) || n > API_POD_STATUS_MAX_BODY - p->len) {
                p->too_large = true;
                return 0;
        }
        if (n > p->size - p->len) {
                want = MAX(p->size, (size_t) BODY_INITIAL);
                while (want < p->len + n)
                        want *= 2;
                want = MIN(want, (size_t) API_POD_STATUS_MAX_BODY);
                b = realloc(p->body, want);
                if (!b) {
                        p->oom = true;
                        return 0;
                }
                p->body = b;
                p->size = want;
        }
        memcpy(p->body + p->len, data, n);
        p->len += n;
        return n;
}

/* Makes @p's easy handle for @pod, with @budget_ms left until the deadline. */
static int pod_fetch_setup(PodFetch *p, const ApiPod *pod, struct curl_slist *headers,
                           uint64_t budget_ms) {
        long budget = (long) MIN(MAX(budget_ms, (uint64_t) 1), (uint64_t) LONG_MAX);
        CURLcode c = CURLE_OK;

        if (asprintf(&p->url, "%s" POD_PATH, pod->http) < 0) {
                p->url = NULL;
                return -ENOMEM;
        }
        p->easy = curl_easy_init();
        if (!p->easy)
                return -ENOMEM;

#define SETOPT(opt, val)                                                \
        do {                                                            \
                if (c == CURLE_OK)                                      \
                        c = curl_easy_setopt(p->easy, opt, val);        \
        } while (0)

        SETOPT(CURLOPT_ERRORBUFFER, p->errbuf);
        SETOPT(CURLOPT_PRIVATE, (void *) p);
        SETOPT(CURLOPT_URL, p->url);
#if LIBCURL_VERSION_NUM >= 0x075500     /* 7.85: CURLOPT_PROTOCOLS is deprecated */
        SETOPT(CURLOPT_PROTOCOLS_STR, "http");
#else
        SETOPT(CURLOPT_PROTOCOLS, (long) CURLPROTO_HTTP);
#endif
        SETOPT(CURLOPT_HTTPGET, 1L);
        SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(CURLOPT_PROXY, "");
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_HTTPHEADER, headers);
        SETOPT(CURLOPT_USERAGENT, USER_AGENT);
        SETOPT(CURLOPT_TIMEOUT_MS, budget);
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, budget);
        /* Refuses an announced Content-Length over the cap before any byte; on_body() caps
         * what arrives without one. */
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) API_POD_STATUS_MAX_BODY);
        SETOPT(CURLOPT_WRITEFUNCTION, on_body);
        SETOPT(CURLOPT_WRITEDATA, (void *) p);
#undef SETOPT

        return c == CURLE_OK ? 0 : easy_error(c);
}

/* Marks every finished transfer done, with its result. */
static void fetch_collect(Fetch *f) {
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(f->multi, &left))) {
                char *priv = NULL;
                PodFetch *p;

                if (m->msg != CURLMSG_DONE)
                        continue;
                if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
                    !priv)
                        continue;
                p = (PodFetch *) (void *) priv;
                p->done = true;
                p->result = m->data.result;
        }
}

/* Runs the transfers until all finished or @deadline_us passed. */
static int fetch_run(Fetch *f, uint64_t deadline_us) {
        int running = 0;
        uint64_t now;
        CURLMcode mc;

        /* Checked before the first curl_multi_perform() too: with no time left (a 0 ms
         * timeout) no connection is even started. */
        while ((now = now_usec()) < deadline_us) {
                mc = curl_multi_perform(f->multi, &running);
                if (mc != CURLM_OK)
                        return multi_error(mc);
                fetch_collect(f);
                if (running == 0)
                        return 0;

                now = now_usec();
                if (now >= deadline_us)
                        return 0;
                mc = curl_multi_poll(f->multi, NULL, 0,
                                     (int) MIN((deadline_us - now + 999u) / 1000u,
                                               (uint64_t) POLL_MAX_MS),
                                     NULL);
                if (mc != CURLM_OK)
                        return multi_error(mc);
        }
        return 0;
}

/* Makes error texts from libcurl safe for a JSON string (they may quote a host name). */
static void text_make_printable(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < ' ' || (unsigned char) *s >= 0x7f)
                        *s = '?';
}

/* Sets @key of @o to @v (consumed); false on -ENOMEM. */
static bool set_new(json_t *o, const char *key, json_t *v) {
        return v && json_object_set_new(o, key, v) == 0;
}

/* The "pods" entry of @pod; @ret_ok tells whether it is "ok". Return: 0, -ENOMEM. */
static int pod_entry(const ApiPod *pod, PodFetch *p, json_t **ret, bool *ret_ok) {
        _cleanup_json_ json_t *o = NULL, *status = NULL;
        const char *error = NULL;
        char http_error[32];
        long code = 0, os_errno = 0;

        if (p->oom)
                return -ENOMEM;

        if (!p->easy)
                error = "no controller endpoint";
        else if (!p->done)
                error = "timeout";
        else if (p->too_large || p->result == CURLE_FILESIZE_EXCEEDED)
                error = "too large";
        else if (p->result == CURLE_OPERATION_TIMEDOUT)
                error = "timeout";
        else if (p->result == CURLE_OUT_OF_MEMORY)
                return -ENOMEM;
        else if (p->result != CURLE_OK) {
                if (p->result == CURLE_COULDNT_CONNECT &&
                    curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
                    os_errno == ECONNREFUSED)
                        error = "connection refused";
                else if (p->errbuf[0]) {
                        text_make_printable(p->errbuf);
                        error = p->errbuf;
                } else
                        error = curl_easy_strerror(p->result);
        } else {
                json_t *doc;

                (void) curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
                doc = p->len > 0 ? json_loadb(p->body, p->len, 0, NULL) : NULL;
                /* The text is not needed any more: do not hold it and its tree at once. */
                free(p->body);
                p->body = NULL;
                p->len = p->size = 0;
                if (json_is_object(doc))
                        status = doc;
                else
                        json_decref(doc);
                if (code < 200 || code > 299) {
                        (void) snprintf(http_error, sizeof(http_error), "HTTP %ld", code);
                        error = http_error;
                } else if (!status)
                        error = "not JSON";
        }
        if (error && p->easy)
                log_debug("GET %s of pod %s failed: %s", p->url, pod->name, error);

        o = json_object();
        if (!o ||
            !set_new(o, "name", json_string(pod->name)) ||
            !set_new(o, "url", p->url ? json_string(p->url) : json_null()) ||
            !set_new(o, "ok", json_boolean(!error)) ||
            (status && json_object_set_new(o, "status", TAKE_PTR(status)) < 0) ||
            (error && !set_new(o, "error", json_string(error))))
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        *ret_ok = !error;
        return 0;
}

int api_pod_status_fetch(const ApiPod *pods, size_t n_pods, const char *token,
                         uint64_t timeout_ms, json_t **ret) {
        _cleanup_(fetch_done) Fetch f = { 0 };
        _cleanup_json_ json_t *answer = NULL, *list = NULL;
        uint64_t start = now_usec(), deadline, now;
        size_t n_ok = 0;
        CURLMcode mc;
        int r;

        assert(pods || n_pods == 0);
        assert(ret);

        /* Not in the header's list: the caller's token is validated when read
         * (config_read_token()), so this is a programmer error, refused without asserting. */
        if (token && !token_is_valid(token))
                return -EINVAL;
        r = curl_init();
        if (r < 0)
                return r;
        deadline = start + MIN(timeout_ms, (UINT64_MAX - start) / 1000u) * 1000u;

        if (n_pods > 0) {
                f.pods = calloc(n_pods, sizeof(*f.pods));
                if (!f.pods)
                        return -ENOMEM;
                f.n_pods = n_pods;
        }
        f.multi = curl_multi_init();
        if (!f.multi)
                return -ENOMEM;
        r = headers_new(token, &f.headers);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n_pods; i++) {
                if (!pods[i].http[0])
                        continue;
                now = now_usec();
                r = pod_fetch_setup(&f.pods[i], &pods[i], f.headers,
                                    now < deadline ? (deadline - now) / 1000u : 0);
                if (r < 0)
                        return r;
                mc = curl_multi_add_handle(f.multi, f.pods[i].easy);
                if (mc != CURLM_OK)
                        return multi_error(mc);
        }

        r = fetch_run(&f, deadline);
        if (r < 0)
                return r;

        list = json_array();
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < n_pods; i++) {
                json_t *entry;
                bool ok;

                r = pod_entry(&pods[i], &f.pods[i], &entry, &ok);
                if (r < 0)
                        return r;
                n_ok += ok;
                if (json_array_append_new(list, entry) < 0)
                        return -ENOMEM;
        }

        answer = json_object();
        if (!answer ||
            json_object_set_new(answer, "pods", TAKE_PTR(list)) < 0 ||
            !set_new(answer, "count", json_integer((json_int_t) n_pods)) ||
            !set_new(answer, "ok", json_integer((json_int_t) n_ok)))
                return -ENOMEM;
        *ret = TAKE_PTR(answer);
        return 0;
}
