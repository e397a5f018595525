/* SPDX-License-Identifier: MIT */
/*
 * scatter.c - scatter-gather over the pods' query services (see scatter.h).
 *
 * Invariants: s->pods[i] and s->conns[i] describe the same pod; every conn has a connected
 * DEALER socket. A query keeps its per-pod state (expected id, phase) on the stack of
 * api_scatter_query() only, so nothing of a finished query survives except the request
 * counter, which is what makes a late answer recognizable as stale.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "log.h"
#include "macro.h"
#include "scatter.h"

#define POD_HWM 16
#define RECONNECT_IVL_MS 100
#define RECONNECT_IVL_MAX_MS 5000
#define SEND_RETRY_MS 10
#define POLL_MAX_MS 60000       /* one zmq_poll() at most; the loop re-checks the deadline */
#define RECV_BATCH 16           /* messages read from one socket per wakeup */
#define DRAIN_MAX 1024          /* leftovers read from one socket before a query */
#define ID_MAX 48

typedef struct PodConn {
        void *sock;
        uint64_t created_us;
} PodConn;

struct ApiScatter {
        void *zctx;
        ApiPod *pods;
        PodConn *conns;
        size_t n_pods;
        uint64_t max_answer;
        char prefix[17];        /* random, hex */
        uint64_t next_seq;      /* the next request's number; every earlier one was sent */
        ApiScatterStats stats;
};

typedef enum Phase {
        PHASE_IDLE,             /* not asked, or finished */
        PHASE_SEND,             /* still to be sent (first connection in progress) */
        PHASE_WAIT,             /* sent, waiting for the answer */
} Phase;

typedef struct PodQuery {
        Phase phase;
        char id[ID_MAX];
        char *payload;
        size_t len;
        uint64_t start_us;
} PodQuery;

typedef enum Verdict {
        VERDICT_ACCEPT,
        VERDICT_STALE,
        VERDICT_MALFORMED,
} Verdict;

static const char *const status_names[_API_POD_STATUS_MAX] = {
        [API_POD_OK] = "ok",
        [API_POD_TIMEOUT] = "timeout",
        [API_POD_NOT_CONNECTED] = "not connected",
        [API_POD_MALFORMED] = "malformed answer",
        [API_POD_NOT_ASKED] = "not asked",
};

const char *api_pod_status_to_string(ApiPodStatus status) {
        return status >= 0 && status < _API_POD_STATUS_MAX ? status_names[status] : "unknown";
}

static bool parse_port(const char *s, size_t len, unsigned *ret) {
        unsigned v = 0;

        if (len == 0 || len > 5)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return false;
        *ret = v;
        return true;
}

static bool parse_port_or_zero(const char *s, size_t len, unsigned *ret) {
        if (len == 1 && s[0] == '0') {
                *ret = 0;
                return true;
        }
        return parse_port(s, len, ret);
}

/* tcp://HOST:PORT or tcp://[V6]:PORT; HOST without blanks, commas or '/'. */
static bool endpoint_is_valid(const char *e) {
        const char *host, *colon;
        unsigned port;
        size_t n;

        if (!e || strncmp(e, "tcp://", 6) != 0)
                return false;
        n = strlen(e);
        if (n > API_POD_ENDPOINT_MAX)
                return false;
        host = e + 6;
        if (*host == '[') {
                const char *close = strchr(host, ']');
                if (!close || close == host + 1 || close[1] != ':')
                        return false;
                colon = close + 1;
        } else {
                colon = strrchr(host, ':');
                if (!colon || colon == host)
                        return false;
        }
        for (const char *p = host; p < colon; p++)
                if (*p <= ' ' || *p == ',' || *p == '/' || *p == 0x7f)
                        return false;
        return parse_port(colon + 1, strlen(colon + 1), &port);
}

int api_scatter_new(ApiScatter **ret, void *zctx) {
        uint8_t rnd[8];
        ApiScatter *s;

        assert(ret);
        if (!zctx)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->zctx = zctx;
        s->max_answer = API_SCATTER_MAX_ANSWER_DEFAULT;
        if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd)) {
                /* Only needs to differ between instances, not to be secret. */
                uint64_t x = now_usec() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) s;
                memcpy(rnd, &x, sizeof(rnd));
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                (void) snprintf(s->prefix + 2 * i, 3, "%02x", rnd[i]);
        *ret = s;
        return 0;
}

static void conn_close(PodConn *c) {
        if (c->sock)
                (void) zmq_close(c->sock);
        c->sock = NULL;
}

ApiScatter *api_scatter_free(ApiScatter *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_pods; i++)
                conn_close(&s->conns[i]);
        free(s->conns);
        free(s->pods);
        free(s);
        return NULL;
}

int api_scatter_set_max_answer(ApiScatter *s, uint64_t bytes) {
        assert(s);
        if (bytes == 0 || bytes > INT64_MAX)
                return -EINVAL;
        s->max_answer = bytes;
        return 0;
}

static int conn_open(ApiScatter *s, const ApiPod *pod, PodConn *ret) {
        int linger = 0, hwm = POD_HWM, one = 1, ivl = RECONNECT_IVL_MS,
            ivl_max = RECONNECT_IVL_MAX_MS, r;
        int64_t maxmsg = (int64_t) s->max_answer;
        void *sock;

        sock = zmq_socket(s->zctx, ZMQ_DEALER);
        if (!sock)
                return -errno;
        if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
            zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(sock, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(sock, ZMQ_IPV6, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0 ||
            zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0 ||
            zmq_setsockopt(sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) < 0 ||
            zmq_connect(sock, pod->endpoint) < 0) {
                r = -errno;
                (void) zmq_close(sock);
                return r;
        }
        *ret = (PodConn) { .sock = sock, .created_us = now_usec() };
        return 0;
}

int api_scatter_set_pods(ApiScatter *s, const ApiPod *pods, size_t n) {
        _cleanup_free_ ApiPod *np = NULL;
        _cleanup_free_ PodConn *nc = NULL;
        _cleanup_free_ bool *taken = NULL, *fresh = NULL;
        bool changed = n != s->n_pods;
        size_t created = 0;
        int r;

        assert(s);
        assert(pods || n == 0);
        if (n > API_SCATTER_MAX_PODS)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                const ApiPod *p = &pods[i];

                if (strnlen(p->name, sizeof(p->name)) == sizeof(p->name) ||
                    !api_pod_name_is_valid(p->name) ||
                    strnlen(p->endpoint, sizeof(p->endpoint)) == sizeof(p->endpoint) ||
                    !endpoint_is_valid(p->endpoint))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(pods[i].name, pods[j].name) == 0)
                                return -EINVAL;
        }

        if (n > 0) {
                np = calloc(n, sizeof(*np));
                nc = calloc(n, sizeof(*nc));
                fresh = calloc(n, sizeof(*fresh));
                if (!np || !nc || !fresh)
                        return -ENOMEM;
        }
        if (s->n_pods > 0) {
                taken = calloc(s->n_pods, sizeof(*taken));
                if (!taken)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                size_t j;

                np[i] = pods[i];
                for (j = 0; j < s->n_pods; j++)
                        if (!taken[j] && strcmp(s->pods[j].name, pods[i].name) == 0 &&
                            strcmp(s->pods[j].endpoint, pods[i].endpoint) == 0)
                                break;
                if (j < s->n_pods) {
                        taken[j] = true;
                        nc[i] = s->conns[j];
                        changed = changed || j != i;
                        continue;
                }
                r = conn_open(s, &np[i], &nc[i]);
                if (r < 0) {
                        for (size_t k = 0; k < i; k++)
                                if (fresh[k])
                                        conn_close(&nc[k]);
                        return r;
                }
                fresh[i] = true;
                created++;
                changed = true;
        }
        for (size_t j = 0; j < s->n_pods; j++)
                if (!taken[j]) {
                        conn_close(&s->conns[j]);
                        changed = true;
                }
        free(s->pods);
        free(s->conns);
        s->pods = TAKE_PTR(np);
        s->conns = TAKE_PTR(nc);
        s->n_pods = n;
        s->stats.reconnects += created;
        return changed ? 1 : 0;
}

const ApiPod *api_scatter_get_pods(ApiScatter *s, size_t *ret_n) {
        assert(s);
        assert(ret_n);
        *ret_n = s->n_pods;
        return s->pods;
}

/* Whether @id is one of ours, sent before now. */
static bool id_is_ours(const ApiScatter *s, const char *id) {
        uint64_t seq;
        char *end;

        if (strncmp(id, s->prefix, 16) != 0 || id[16] != '-' || id[17] < '0' || id[17] > '9')
                return false;
        errno = 0;
        seq = strtoull(id + 17, &end, 10);
        return errno == 0 && *end == '\0' && seq < s->next_seq;
}

/*
 * Classifies one received message. @expected is the id in flight on this socket, or NULL.
 * On VERDICT_ACCEPT, *ret is the parsed answer.
 */
static Verdict classify(const ApiScatter *s, const zmq_msg_t *m, bool multipart,
                        const char *expected, json_t **ret) {
        json_t *j, *id;
        json_error_t jerr;
        const char *ids;
        Verdict v;

        if (multipart)
                return VERDICT_MALFORMED;
        j = json_loadb(zmq_msg_data((zmq_msg_t *) m), zmq_msg_size((zmq_msg_t *) m),
                       JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return VERDICT_MALFORMED;
        id = json_object_get(j, "id");
        ids = json_string_value(id);
        if (!json_is_object(j) || !ids) {
                json_decref(j);
                return VERDICT_MALFORMED;
        }
        if (expected && strcmp(ids, expected) == 0) {
                *ret = j;
                return VERDICT_ACCEPT;
        }
        v = id_is_ours(s, ids) ? VERDICT_STALE : VERDICT_MALFORMED;
        json_decref(j);         /* @ids belongs to @j */
        return v;
}

/*
 * Reads one message (all its frames) from @sock without waiting. Return: 1 with @m filled
 * (and *multipart), 0 when nothing is there, -errno.
 */
static int recv_one(void *sock, zmq_msg_t *m, bool *multipart) {
        int more = 0;
        size_t sz = sizeof(more);

        *multipart = false;
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0)
                return errno == EAGAIN ? 0 : -errno;
        for (;;) {
                zmq_msg_t junk;
                if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) < 0 || !more)
                        return 1;
                *multipart = true;
                zmq_msg_init(&junk);
                if (zmq_msg_recv(&junk, sock, 0) < 0) {
                        zmq_msg_close(&junk);
                        return 1;
                }
                zmq_msg_close(&junk);
        }
}

/* Drops what arrived on a pod's socket since the last query: late answers, mostly. */
static void drain(ApiScatter *s, void *sock) {
        for (unsigned i = 0; i < DRAIN_MAX; i++) {
                zmq_msg_t m;
                bool multipart;
                json_t *unused = NULL;
                int r;

                zmq_msg_init(&m);
                r = recv_one(sock, &m, &multipart);
                if (r <= 0) {
                        zmq_msg_close(&m);
                        return;
                }
                if (classify(s, &m, multipart, NULL, &unused) == VERDICT_STALE)
                        s->stats.stale++;
                else
                        s->stats.malformed++;
                zmq_msg_close(&m);
        }
}

/* The payload for one pod: a shallow copy of @req with our id, compact. */
static int make_payload(json_t *req, const char *id, char **ret, size_t *ret_len) {
        json_t *copy;
        char *d;

        if (!json_is_object(req))
                return -EINVAL;
        copy = json_copy(req);
        if (!copy)
                return -ENOMEM;
        if (json_object_set_new(copy, "id", json_string(id)) < 0) {
                json_decref(copy);
                return -ENOMEM;
        }
        d = json_dumps(copy, JSON_COMPACT);
        json_decref(copy);
        if (!d)
                return -ENOMEM;
        if (strlen(d) > API_SCATTER_MAX_REQUEST) {
                free(d);
                return -E2BIG;
        }
        *ret_len = strlen(d);
        *ret = d;
        return 0;
}

static void try_send(ApiScatter *s, size_t i, PodQuery *q, ApiScatterAnswer *a, uint64_t now) {
        if (zmq_send(s->conns[i].sock, q->payload, q->len, ZMQ_DONTWAIT) >= 0) {
                q->phase = PHASE_WAIT;
                q->start_us = now;
                s->stats.requests++;
                return;
        }
        /* EAGAIN: no finished connection (ZMQ_IMMEDIATE) or the pipe is full. Only a socket
         * still making its first connection gets more tries; everything else fails fast. */
        if (errno == EAGAIN && q->phase == PHASE_SEND &&
            now - s->conns[i].created_us < API_SCATTER_CONNECT_GRACE_MS * 1000u)
                return;
        q->phase = PHASE_IDLE;
        a->status = API_POD_NOT_CONNECTED;
        a->latency_us = now - q->start_us;
        s->stats.not_connected++;
}

static void free_queries(PodQuery *q, size_t n) {
        for (size_t i = 0; q && i < n; i++)
                free(q[i].payload);
        free(q);
}

/* Reads what @sock has for pod @i; returns whether the pod is finished. */
static bool on_readable(ApiScatter *s, size_t i, PodQuery *q, ApiScatterAnswer *a) {
        for (unsigned k = 0; k < RECV_BATCH && q->phase == PHASE_WAIT; k++) {
                json_t *answer = NULL;
                zmq_msg_t m;
                bool multipart;
                int r;

                zmq_msg_init(&m);
                r = recv_one(s->conns[i].sock, &m, &multipart);
                if (r <= 0) {
                        zmq_msg_close(&m);
                        break;
                }
                switch (classify(s, &m, multipart, q->id, &answer)) {
                case VERDICT_ACCEPT:
                        a->status = API_POD_OK;
                        a->answer = answer;
                        a->latency_us = now_usec() - q->start_us;
                        q->phase = PHASE_IDLE;
                        s->stats.answers++;
                        break;
                case VERDICT_STALE:
                        s->stats.stale++;
                        break;
                case VERDICT_MALFORMED:
                        /* The pod breaks the protocol: waiting longer would not help. */
                        a->status = API_POD_MALFORMED;
                        a->latency_us = now_usec() - q->start_us;
                        q->phase = PHASE_IDLE;
                        s->stats.malformed++;
                        break;
                }
                zmq_msg_close(&m);
        }
        return q->phase == PHASE_IDLE;
}

int api_scatter_query(ApiScatter *s, json_t *const *requests, size_t n_requests,
                      uint64_t deadline_ms, ApiScatterResult *ret) {
        uint64_t t0 = now_usec(), end;
        _cleanup_free_ ApiScatterAnswer *answers = NULL;
        _cleanup_free_ zmq_pollitem_t *items = NULL;
        _cleanup_free_ size_t *item_pod = NULL;
        PodQuery *qs = NULL;
        size_t n, outstanding = 0, n_ok = 0;
        int r;

        assert(s);
        assert(ret);
        assert(requests || n_requests == 0);
        n = s->n_pods;
        if (n == 0) {
                *ret = (ApiScatterResult) { .took_us = now_usec() - t0 };
                return 0;
        }
        if (n_requests != 1 && n_requests != n)
                return -EINVAL;
        answers = calloc(n, sizeof(*answers));
        qs = calloc(n, sizeof(*qs));
        items = calloc(n, sizeof(*items));
        item_pod = calloc(n, sizeof(*item_pod));
        if (!answers || !qs || !items || !item_pod) {
                free(qs);
                return -ENOMEM;
        }
        /* Everything that can fail comes before the first send. */
        for (size_t i = 0; i < n; i++) {
                json_t *req = requests[n_requests == 1 ? 0 : i];

                (void) snprintf(answers[i].pod, sizeof(answers[i].pod), "%s", s->pods[i].name);
                answers[i].status = API_POD_NOT_ASKED;
                if (!req) {
                        if (n_requests == 1) {
                                free_queries(qs, n);
                                return -EINVAL;
                        }
                        continue;
                }
                (void) snprintf(qs[i].id, sizeof(qs[i].id), "%s-%" PRIu64, s->prefix,
                                s->next_seq + i);
                r = make_payload(req, qs[i].id, &qs[i].payload, &qs[i].len);
                if (r < 0) {
                        free_queries(qs, n);
                        return r;
                }
                qs[i].phase = PHASE_SEND;
        }
        s->next_seq += n;
        s->stats.queries++;
        for (size_t i = 0; i < n; i++)
                drain(s, s->conns[i].sock);

        /* saturating: a huge deadline means "wait for every answer" */
        end = deadline_ms > (UINT64_MAX - t0) / 1000u ? UINT64_MAX : t0 + deadline_ms * 1000u;
        for (size_t i = 0; i < n; i++) {
                if (qs[i].phase != PHASE_SEND)
                        continue;
                qs[i].start_us = now_usec();
                try_send(s, i, &qs[i], &answers[i], qs[i].start_us);
                if (qs[i].phase != PHASE_IDLE)
                        outstanding++;
        }

        while (outstanding > 0) {
                uint64_t now = now_usec(), wait_us;
                size_t n_items = 0, to_send = 0;
                long timeout_ms;
                int k;

                if (now >= end)
                        break;
                for (size_t i = 0; i < n; i++) {
                        if (qs[i].phase == PHASE_SEND) {
                                try_send(s, i, &qs[i], &answers[i], now);
                                if (qs[i].phase == PHASE_IDLE)
                                        outstanding--;
                                else if (qs[i].phase == PHASE_SEND)
                                        to_send++;
                        }
                        if (qs[i].phase == PHASE_WAIT) {
                                items[n_items] = (zmq_pollitem_t) { .socket = s->conns[i].sock,
                                                                    .events = ZMQ_POLLIN };
                                item_pod[n_items++] = i;
                        }
                }
                if (outstanding == 0)
                        break;
                wait_us = MIN(end - now, (uint64_t) POLL_MAX_MS * 1000u);
                if (to_send > 0)
                        wait_us = MIN(wait_us, (uint64_t) SEND_RETRY_MS * 1000u);
                timeout_ms = (long) ((wait_us + 999) / 1000);   /* round up: no busy loop */
                k = zmq_poll(items, (int) n_items, timeout_ms);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        break;  /* ETERM or a closed socket: report what we have */
                }
                for (size_t m = 0; k > 0 && m < n_items; m++)
                        if ((items[m].revents & ZMQ_POLLIN) &&
                            on_readable(s, item_pod[m], &qs[item_pod[m]], &answers[item_pod[m]]))
                                outstanding--;
        }

        for (size_t i = 0; i < n; i++) {
                uint64_t now = now_usec();
                if (qs[i].phase == PHASE_WAIT) {
                        answers[i].status = API_POD_TIMEOUT;
                        answers[i].latency_us = now - qs[i].start_us;
                        s->stats.timeouts++;
                } else if (qs[i].phase == PHASE_SEND) {
                        answers[i].status = API_POD_NOT_CONNECTED;
                        answers[i].latency_us = now - qs[i].start_us;
                        s->stats.not_connected++;
                }
                n_ok += answers[i].status == API_POD_OK;
        }
        free_queries(qs, n);
        *ret = (ApiScatterResult) {
                .pods = TAKE_PTR(answers),
                .n_pods = n,
                .n_ok = n_ok,
                .took_us = now_usec() - t0,
        };
        return 0;
}

void api_scatter_result_clear(ApiScatterResult *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_pods; i++)
                json_decref(r->pods[i].answer);
        free(r->pods);
        *r = (ApiScatterResult) {};
}

void api_scatter_get_stats(ApiScatter *s, ApiScatterStats *ret) {
        assert(s);
        assert(ret);
        *ret = s->stats;
}

/* ---- discovery ---- */

static int pod_cmp(const void *a, const void *b) {
        return strcmp(((const ApiPod *) a)->name, ((const ApiPod *) b)->name);
}

/* Sets @p's feed and http endpoints on the host of its query endpoint. */
static int pod_set_ports(ApiPod *p, unsigned feed, unsigned http) {
        const char *host = p->endpoint + 6, *colon = strrchr(host, ':');
        int hlen;

        assert(strncmp(p->endpoint, "tcp://", 6) == 0);
        if (!colon)
                return -EINVAL;
        hlen = (int) (colon - host);
        p->feed[0] = p->http[0] = 0;
        if (feed > 0)
                (void) snprintf(p->feed, sizeof(p->feed), "tcp://%.*s:%u", hlen, host, feed);
        if (http > 0)
                (void) snprintf(p->http, sizeof(p->http), "http://%.*s:%u", hlen, host, http);
        return 0;
}

/* Parses the ";feed=PORT;http=PORT" options of a static entry. */
static int parse_pod_options(const char *s, size_t len, unsigned *feed, unsigned *http) {
        if (len == 0)
                return -EINVAL;
        while (len > 0) {
                const char *semi = memchr(s, ';', len), *eq;
                size_t item = semi ? (size_t) (semi - s) : len;

                eq = memchr(s, '=', item);
                if (!eq)
                        return -EINVAL;
                if ((size_t) (eq - s) == 4 && memcmp(s, "feed", 4) == 0) {
                        if (!parse_port_or_zero(eq + 1, item - 5, feed))
                                return -EINVAL;
                } else if ((size_t) (eq - s) == 4 && memcmp(s, "http", 4) == 0) {
                        if (!parse_port_or_zero(eq + 1, item - 5, http))
                                return -EINVAL;
                } else
                        return -EINVAL;
                if (!semi)
                        break;
                len -= item + 1;
                s = semi + 1;
                if (len == 0)
                        return -EINVAL;
        }
        return 0;
}

static int resolve_static(const char *spec, const ApiPodPorts *ports, ApiPod **ret,
                          size_t *ret_n) {
        _cleanup_free_ ApiPod *pods = NULL;
        size_t n = 1, k = 0;
        const char *p = spec;

        for (const char *c = spec; *c; c++)
                n += *c == ',';
        if (n > API_SCATTER_MAX_PODS)
                return -E2BIG;
        pods = calloc(n, sizeof(*pods));
        if (!pods)
                return -ENOMEM;
        for (;;) {
                const char *comma = strchr(p, ','), *eq, *semi;
                size_t len = comma ? (size_t) (comma - p) : strlen(p), name_len, ep_len;
                unsigned feed = ports ? ports->feed : 0, http = ports ? ports->http : 0;

                eq = memchr(p, '=', len);
                if (!eq)
                        return -EINVAL;
                name_len = (size_t) (eq - p);
                semi = memchr(eq + 1, ';', len - name_len - 1);
                ep_len = semi ? (size_t) (semi - eq - 1) : len - name_len - 1;
                if (name_len == 0 || name_len > API_POD_NAME_MAX || ep_len > API_POD_ENDPOINT_MAX)
                        return -EINVAL;
                memcpy(pods[k].name, p, name_len);
                memcpy(pods[k].endpoint, eq + 1, ep_len);
                if (!api_pod_name_is_valid(pods[k].name) || !endpoint_is_valid(pods[k].endpoint))
                        return -EINVAL;
                if (semi && parse_pod_options(semi + 1, (size_t) (p + len - semi - 1), &feed,
                                              &http) < 0)
                        return -EINVAL;
                if (pod_set_ports(&pods[k], feed, http) < 0)
                        return -EINVAL;
                for (size_t j = 0; j < k; j++)
                        if (strcmp(pods[j].name, pods[k].name) == 0)
                                return -EINVAL;
                k++;
                if (!comma)
                        break;
                p = comma + 1;
        }
        *ret = TAKE_PTR(pods);
        *ret_n = k;
        return 0;
}

static int resolve_dns(const char *spec, const ApiPodPorts *ports, ApiPod **ret,
                       size_t *ret_n) {
        const struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        _cleanup_free_ char *host = NULL;
        _cleanup_free_ ApiPod *pods = NULL;
        struct addrinfo *res = NULL;
        const char *colon = strrchr(spec, ':');
        size_t n = 0, k = 0;
        unsigned port;
        int r;

        if (!colon || colon == spec || !parse_port(colon + 1, strlen(colon + 1), &port))
                return -EINVAL;
        host = strndup(spec, (size_t) (colon - spec));
        if (!host)
                return -ENOMEM;
        if (strpbrk(host, " \t,/[]:"))
                return -EINVAL;
        r = getaddrinfo(host, NULL, &hints, &res);
        switch (r) {
        case 0: break;
#ifdef EAI_NODATA
        case EAI_NODATA:
#endif
        case EAI_NONAME: return -ENXIO;
        case EAI_AGAIN: return -EAGAIN;
        case EAI_MEMORY: return -ENOMEM;
        case EAI_SYSTEM: return errno > 0 ? -errno : -EIO;
        default: return -EIO;
        }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                n++;
        pods = calloc(MAX(n, (size_t) 1), sizeof(*pods));
        if (!pods) {
                freeaddrinfo(res);
                return -ENOMEM;
        }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                char addr[INET6_ADDRSTRLEN];
                ApiPod *p = &pods[k];

                if (ai->ai_family == AF_INET) {
                        const struct sockaddr_in *sin = (const struct sockaddr_in *) ai->ai_addr;
                        if (!inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr)))
                                continue;
                        (void) snprintf(p->endpoint, sizeof(p->endpoint), "tcp://%s:%u", addr,
                                        port);
                } else if (ai->ai_family == AF_INET6) {
                        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ai->ai_addr;
                        if (!inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr)))
                                continue;
                        (void) snprintf(p->endpoint, sizeof(p->endpoint), "tcp://[%s]:%u", addr,
                                        port);
                } else
                        continue;
                (void) snprintf(p->name, sizeof(p->name), "%s", addr);
                (void) pod_set_ports(p, ports ? ports->feed : 0, ports ? ports->http : 0);
                for (char *c = p->name; *c; c++)
                        if (*c == ':')
                                *c = '-';
                k++;
        }
        freeaddrinfo(res);
        if (k == 0)
                return -ENXIO;
        qsort(pods, k, sizeof(*pods), pod_cmp);
        n = 1;
        for (size_t i = 1; i < k; i++)
                if (strcmp(pods[i].name, pods[n - 1].name) != 0)
                        pods[n++] = pods[i];
        if (n > API_SCATTER_MAX_PODS)
                return -E2BIG;
        *ret = TAKE_PTR(pods);
        *ret_n = n;
        return 0;
}

int api_pods_resolve(const char *spec, const ApiPodPorts *ports, ApiPod **ret, size_t *ret_n) {
        assert(ret);
        assert(ret_n);
        if (!spec || !*spec)
                return -EINVAL;
        if (strncmp(spec, "dns:", 4) == 0)
                return resolve_dns(spec + 4, ports, ret, ret_n);
        return resolve_static(spec, ports, ret, ret_n);
}
