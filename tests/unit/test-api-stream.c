/* SPDX-License-Identifier: MIT */
/*
 * test-api-stream.c - GET /api/v1/flows/stream (frontend-api/stream.[ch] and route_stream()
 * in api.c) in-process: ipfixd-api on 127.0.0.1:0 with its sd-event loop in a thread, a
 * ZeroMQ XPUB standing in for a pod's live feed (two-frame [pipeline][flow batch] messages,
 * as mediator/output-zmq.c sends them), and raw-socket HTTP/1.1 clients that decode the
 * chunked body and the server-sent events themselves, so each test decides when a client
 * reads.
 *
 * Every published record is identified by its src_port (an index into `published`), so a
 * received event is compared field by field with what was sent. Records with src_port >=
 * MARKER_BASE are markers: a test publishes one matching a stream's filter and reads until it
 * arrives, which proves every batch published before it went through the feed thread (one
 * SUB socket, one inproc queue per direction: the order is kept). With XPUB_VERBOSE the XPUB
 * also receives the API's subscription, which says the feed thread is connected.
 *
 * Cases: hello and headers; a filter gets exactly its matches (and other pipelines' batches
 * are ignored); two streams with different filters; a slow client's loss is announced and
 * counted exactly (8 KiB buffer; and the default buffer with mediator-sized batches, where
 * the announcement must not cut an event); a client that keeps up loses nothing to a burst;
 * max_streams (503 + Retry-After, a slot freed once the server notices a client left); 400
 * for bad parameters and for time ranges; api_free() with streams open ends them with the
 * last chunk; a pod without a feed; a stream opened before the feed thread is ready.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "free-port.h"
#include "api-test-server.h"
#include "api.h"
#include "flow.h"
#include "log.h"
#include "macro.h"

#define PIPELINE "all"
#define CMD_ENDPOINT "inproc://ipfixd-api-stream-cmd"       /* as in stream.c */
#define MARKER_BASE 50000u
#define N_IDS 65536u
#define WAIT_MS 10000               /* deadline of every wait (generous: valgrind) */
#define BUFFER_SMALL 8192u

/* udp/53: the filter most tests use */
#define FILTER_DNS "proto=udp&dst_port=53"
#define FILTER_DNS_EXPR "dst_port == 53 and proto == 17"

typedef TestApiServer Server;

typedef struct Feed {
        void *pub;
        unsigned port;
        uint64_t seq;
} Feed;

static struct {
        void *zctx;
        Feed feed;
        Server srv;
        FlowRecord published[N_IDS];    /* by src_port; family 0: never published */
        uint16_t next_marker;
        int (*real_zmq_connect)(void *, const char *);
        atomic_uint cmd_connect_delay_ms;
        atomic_uint cmd_connects_delayed;
        atomic_uint cmd_connects;       /* feed threads that connected their command socket */
        int (*real_zmq_msg_recv)(zmq_msg_t *, void *, int);
        atomic_uint loop_stall_ms;
} world;

/*
 * Seam: the API's own zmq_connect() calls (libapi is linked statically into this test, so they
 * resolve here) go through this wrapper, which counts the stream feed thread's connects to its
 * command socket (stream.c's CMD_ENDPOINT), so a test starts once that thread is ready, and
 * can hold one back.
 */
int zmq_connect(void *s, const char *addr) {
        unsigned delay = atomic_load(&world.cmd_connect_delay_ms);
        int r;

        if (strcmp(addr, CMD_ENDPOINT) != 0)
                return world.real_zmq_connect(s, addr);
        if (delay > 0) {
                atomic_fetch_add(&world.cmd_connects_delayed, 1);
                usleep(delay * 1000u);
        }
        r = world.real_zmq_connect(s, addr);
        atomic_fetch_add(&world.cmd_connects, 1);
        return r;
}

/* The same for zmq_msg_recv(): the server's loop thread can be held up once, as if it were
 * busy or descheduled, while the feed thread queues events for it. */
int zmq_msg_recv(zmq_msg_t *msg, void *s, int flags) {
        if (atomic_load(&world.loop_stall_ms) > 0 && world.srv.running &&
            pthread_equal(pthread_self(), world.srv.thread)) {
                unsigned ms = atomic_exchange(&world.loop_stall_ms, 0);
                if (ms > 0)
                        usleep(ms * 1000u);
        }
        return world.real_zmq_msg_recv(msg, s, flags);
}

static uint64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* ---- the pod's live feed ---- */

static void feed_open(Feed *f) {
        int zero = 0, one = 1;
        char ep[128];
        size_t len = sizeof(ep);
        const char *colon;

        *f = (Feed) { .pub = zmq_socket(world.zctx, ZMQ_XPUB) };
        assert_non_null(f->pub);
        assert_int_equal(zmq_setsockopt(f->pub, ZMQ_LINGER, &zero, sizeof(zero)), 0);
        /* Nothing dropped on our side: every loss the test sees is the API's. */
        assert_int_equal(zmq_setsockopt(f->pub, ZMQ_SNDHWM, &zero, sizeof(zero)), 0);
        assert_int_equal(zmq_setsockopt(f->pub, ZMQ_XPUB_NODROP, &one, sizeof(one)), 0);
        assert_int_equal(zmq_setsockopt(f->pub, ZMQ_XPUB_VERBOSE, &one, sizeof(one)), 0);
        assert_int_equal(zmq_bind(f->pub, "tcp://127.0.0.1:*"), 0);
        assert_int_equal(zmq_getsockopt(f->pub, ZMQ_LAST_ENDPOINT, ep, &len), 0);
        colon = strrchr(ep, ':');
        assert_non_null(colon);
        f->port = (unsigned) strtoul(colon + 1, NULL, 10);
        assert_true(f->port > 0);
}

static void feed_close(Feed *f) {
        if (f->pub)
                assert_int_equal(zmq_close(f->pub), 0);
        *f = (Feed) {};
}

/* Waits for the API's subscription to @PIPELINE (it subscribes once a stream is open). */
static void feed_wait_subscribed(Feed *f) {
        uint64_t deadline = now_ms() + WAIT_MS;

        for (;;) {
                zmq_pollitem_t it = { .socket = f->pub, .events = ZMQ_POLLIN };
                uint64_t now = now_ms();
                char msg[64];
                int n;

                if (now >= deadline)
                        fail_msg("the API never subscribed to the feed");
                assert_true(zmq_poll(&it, 1, (long) (deadline - now)) >= 0);
                if (!(it.revents & ZMQ_POLLIN))
                        continue;
                n = zmq_recv(f->pub, msg, sizeof(msg), 0);
                assert_true(n >= 1);
                if (msg[0] == 1) {
                        /* the configured pipeline, exactly */
                        assert_int_equal(n, 1 + (int) strlen(PIPELINE));
                        assert_memory_equal(msg + 1, PIPELINE, strlen(PIPELINE));
                        return;
                }
        }
}

/* Publishes one batch of @n records on @pipeline; "all" batches are remembered by id. */
static void feed_publish(Feed *f, const char *pipeline, const FlowRecord *recs, uint32_t n) {
        void *buf = aligned_alloc(8, flow_batch_size(n) + 8);
        size_t len;

        assert_non_null(buf);
        memcpy(flow_batch_records(buf), recs, (size_t) n * sizeof(*recs));
        len = flow_batch_finish(buf, n, 1, f->seq++);
        assert_int_equal(zmq_send(f->pub, pipeline, strlen(pipeline), ZMQ_SNDMORE),
                         (int) strlen(pipeline));
        assert_int_equal(zmq_send(f->pub, buf, len, 0), (int) len);
        free(buf);
        if (strcmp(pipeline, PIPELINE) == 0)
                for (uint32_t i = 0; i < n; i++)
                        world.published[recs[i].src_port] = recs[i];
}

/* ---- records ---- */

static void make_rec(FlowRecord *r, uint16_t id, uint8_t proto, uint16_t dst_port) {
        uint8_t s[4] = { 10, 1, (uint8_t) (id >> 8), (uint8_t) id };
        uint8_t d[4] = { 192, 0, 2, (uint8_t) (1 + id % 250) };
        uint8_t e[4] = { 127, 0, 0, 9 };

        *r = (FlowRecord) {
                .start_ms = 1760000000000ull + (uint64_t) id * 10u,
                .octets = 1000u + (uint64_t) id * 7u,
                .packets = 1u + id % 13u,
                .src_port = id,
                .dst_port = dst_port,
                .proto = proto,
                .tcp_flags = proto == 6 ? 0x12 : 0,
                .tos = (uint8_t) (id % 4),
                .odid = id >= MARKER_BASE ? 99u : 7u,
                .template_id = 256,
                .direction = FLOW_DIRECTION_UNKNOWN,
                .family = 4,
                .exporter_family = 4,
        };
        r->end_ms = r->start_ms + 500u + id % 100u;
        flow_addr_set_v4(r->src_addr, s);
        flow_addr_set_v4(r->dst_addr, d);
        flow_addr_set_v4(r->exporter_addr, e);
}

/* The data records of the filter tests: every proto x port combination occurs. */
static void data_rec(FlowRecord *r, uint16_t id) {
        static const uint8_t protos[] = { 17, 6, 1 };
        static const uint16_t ports[] = { 53, 80, 443, 8080, 54 };

        make_rec(r, id, protos[id % 3], ports[(id / 3) % 5]);
}

static bool want_dns(const FlowRecord *r) {
        return r->proto == 17 && r->dst_port == 53;
}

static bool want_web(const FlowRecord *r) {
        return r->proto == 6 && (r->dst_port == 80 || r->dst_port == 443);
}

static bool want_all(const FlowRecord *r) {
        return true;
}

static bool want_udp(const FlowRecord *r) {
        return r->proto == 17;
}

static uint16_t marker_id(void) {
        assert_true(world.next_marker >= MARKER_BASE && world.next_marker < UINT16_MAX);
        return world.next_marker++;
}

/* Publishes a batch of one marker per (proto, dst_port) pair given; returns the first id. */
static uint16_t publish_markers(const uint8_t *protos, const uint16_t *ports, size_t n) {
        FlowRecord recs[4];
        uint16_t first = 0;

        assert_true(n <= ELEMENTSOF(recs));
        for (size_t i = 0; i < n; i++) {
                uint16_t id = marker_id();
                if (i == 0)
                        first = id;
                make_rec(&recs[i], id, protos[i], ports[i]);
        }
        feed_publish(&world.feed, PIPELINE, recs, (uint32_t) n);
        return first;
}

static uint16_t publish_dns_marker(void) {
        return publish_markers((const uint8_t[]) { 17 }, (const uint16_t[]) { 53 }, 1);
}

/* ---- the server in a thread (api-test-server.h) ---- */

static void server_start(Server *srv, const char *pods, const char *const *sets, size_t n_sets) {
        char *all[16];
        char pods_set[300];
        size_t n = 0;

        (void) snprintf(pods_set, sizeof(pods_set), "pods=%s", pods);
        all[n++] = (char *) "listen=127.0.0.1:0";
        all[n++] = pods_set;
        all[n++] = (char *) "workers=1";
        all[n++] = (char *) "rate_limit_rps=0";
        all[n++] = (char *) "feed_pipeline=" PIPELINE;
        all[n++] = (char *) "max_streams=2";
        assert_true(n + n_sets <= ELEMENTSOF(all));
        for (size_t i = 0; i < n_sets; i++)
                all[n++] = (char *) sets[i];
        test_api_server_start(srv, all, n);
}

static void server_stop(Server *srv) {
        test_api_server_stop(srv);
}

/* ---- libcurl, for the ordinary answers ---- */


static Reply get(const char *path) {
        Reply r = {};
        CURL *c = curl_easy_init();
        char url[1024];
        CURLcode cc;

        assert_non_null(c);
        (void) snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", world.srv.port, path);
        (void) curl_easy_setopt(c, CURLOPT_URL, url);
        (void) curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, reply_on_body);
        (void) curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        (void) curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, reply_on_header);
        (void) curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
        (void) curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
        cc = curl_easy_perform(c);
        if (cc != CURLE_OK)
                fail_msg("GET %s: %s", path, curl_easy_strerror(cc));
        (void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_cleanup(c);
        if (r.body)
                r.json = json_loads(r.body, 0, NULL);
        return r;
}

static void assert_error(const Reply *r, long status, const char *code, const char *parameter) {
        json_t *e = json_object_get(r->json, "error");

        if (r->status != status)
                fail_msg("status %ld, expected %ld: %s", r->status, status, r->body ? r->body : "");
        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
        assert_non_null(json_string_value(json_object_get(e, "message")));
        if (parameter) {
                assert_string_equal(json_string_value(json_object_get(e, "parameter")),
                                    parameter);
                assert_non_null(strstr(json_string_value(json_object_get(e, "message")),
                                       parameter));
        }
}

/* A sample of GET /metrics, e.g. `ipfixd_api_stream_dropped_total{cause="slow_client"}`. */
static uint64_t metric(const char *sample) {
        Reply r = get("/metrics");
        size_t n = strlen(sample);
        uint64_t v = 0;
        bool found = false;

        assert_int_equal(r.status, 200);
        for (const char *line = r.body; line && *line;) {
                const char *eol = strchr(line, '\n');
                if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
                        v = strtoull(line + n + 1, NULL, 10);
                        found = true;
                        break;
                }
                line = eol ? eol + 1 : NULL;
        }
        if (!found)
                fail_msg("no sample %s in /metrics", sample);
        reply_done(&r);
        return v;
}

#define M_STREAMS "ipfixd_api_streams"
#define M_OPENED "ipfixd_api_streams_opened_total"
#define M_REFUSED "ipfixd_api_streams_refused_total"
#define M_EVENTS "ipfixd_api_stream_events_total"
#define M_SLOW "ipfixd_api_stream_dropped_total{cause=\"slow_client\"}"
#define M_BUSY "ipfixd_api_stream_dropped_total{cause=\"api_busy\"}"
#define M_FEEDS "ipfixd_api_stream_feeds"
#define M_BATCHES "ipfixd_api_stream_feed_batches_total"
#define M_RECORDS "ipfixd_api_stream_feed_records_total"
#define M_BAD "ipfixd_api_stream_feed_bad_total"

static void wait_metric(const char *sample, uint64_t want) {
        uint64_t deadline = now_ms() + WAIT_MS, v;

        while ((v = metric(sample)) != want) {
                if (now_ms() >= deadline)
                        fail_msg("%s is %" PRIu64 ", expected %" PRIu64, sample, v, want);
                usleep(10 * 1000);
        }
}

/* ---- raw HTTP/1.1 + chunked + server-sent events client ---- */

typedef struct Event {
        char type[32];
        char *data;
} Event;

typedef enum ChunkState {
        CHUNK_SIZE,
        CHUNK_DATA,
        CHUNK_CRLF,
        CHUNK_TRAILER,
} ChunkState;

typedef struct Client {
        int fd;
        char *raw;                      /* received, not yet decoded */
        size_t raw_len;
        bool used;                      /* a slot of clients */
        bool head_done, chunked, ended, eof;
        int status;
        char head[4096];
        ChunkState state;
        size_t chunk_left;
        char *body;                     /* decoded body not yet parsed into events */
        size_t body_len, body_off;      /* body_off: only while parsing */
        Event *events;
        size_t n_events;
        unsigned comments, retry_ms;
        unsigned torn;                  /* blocks that are no well-formed event */
        char torn_sample[1024];
} Client;

static Client clients[4];       /* client_open()'s slots */

/* Opens a connection in a free slot of clients (teardown closes what a failed test
 * left open) and sends GET @path; @rcvbuf > 0 sets SO_RCVBUF first. */
static Client *client_open(const char *path, int rcvbuf) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t) world.srv.port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        Client *c = NULL;
        char req[1024];
        int n;

        for (size_t i = 0; i < ELEMENTSOF(clients) && !c; i++)
                if (!clients[i].used)
                        c = &clients[i];
        assert_non_null(c);
        *c = (Client) { .used = true, .fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) };
        assert_true(c->fd >= 0);
        if (rcvbuf > 0)
                assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)),
                                 0);
        assert_int_equal(connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nAccept: text/event-stream\r\n\r\n",
                     path, world.srv.port);
        assert_true(n > 0 && (size_t) n < sizeof(req));
        assert_int_equal(send(c->fd, req, (size_t) n, MSG_NOSIGNAL), n);
        return c;
}

static void client_close(Client *c) {
        if (c->fd >= 0)
                close(c->fd);
        for (size_t i = 0; i < c->n_events; i++)
                free(c->events[i].data);
        free(c->events);
        free(c->raw);
        free(c->body);
        *c = (Client) { .fd = -1 };     /* and not used */
}

/* The value of header @name (first occurrence), or NULL. */
static const char *client_header(const Client *c, const char *name, char *out, size_t len) {
        size_t n = strlen(name);

        for (const char *l = strstr(c->head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
                const char *v = l + 2, *end;
                if (strncasecmp(v, name, n) != 0 || v[n] != ':')
                        continue;
                v += n + 1;
                while (*v == ' ')
                        v++;
                end = strstr(v, "\r\n");
                (void) snprintf(out, len, "%.*s", (int) (end - v), v);
                return out;
        }
        return NULL;
}

static void body_append(Client *c, const char *p, size_t n) {
        char *b = realloc(c->body, c->body_len + n + 1);

        assert_non_null(b);
        memcpy(b + c->body_len, p, n);
        c->body = b;
        c->body_len += n;
        c->body[c->body_len] = '\0';
}

/* Keeps a block that is not a well-formed event of the API's (see Client.torn). */
static void client_torn(Client *c, const char *block) {
        if (c->torn++ == 0)
                (void) snprintf(c->torn_sample, sizeof(c->torn_sample), "%s", block);
}

static void parse_events(Client *c) {
        if (!c->body)
                return;
        for (;;) {
                char *start = c->body + c->body_off, *sep, *line, *next, *copy;
                Event ev = { .type = "" };
                bool comment = false, bad = false;
                size_t k;

                sep = memmem(start, c->body_len - c->body_off, "\n\n", 2);
                if (!sep)
                        break;
                *sep = '\0';
                c->body_off = (size_t) (sep + 2 - c->body);
                copy = strdup(start);
                assert_non_null(copy);
                for (line = start; line; line = next) {
                        next = strchr(line, '\n');
                        if (next)
                                *next++ = '\0';
                        if (line[0] == ':')
                                comment = true;
                        else if (strncmp(line, "event: ", 7) == 0 && !ev.type[0])
                                (void) snprintf(ev.type, sizeof(ev.type), "%s", line + 7);
                        else if (strncmp(line, "data: ", 6) == 0 && !ev.data) {
                                ev.data = strdup(line + 6);
                                assert_non_null(ev.data);
                        } else if (strncmp(line, "retry: ", 7) == 0)
                                c->retry_ms = (unsigned) strtoul(line + 7, NULL, 10);
                        else
                                bad = true;     /* a second event/data line, or no field */
                }
                /* The API's events: one "event:" line of a known type and one JSON object. */
                k = ev.data ? strlen(ev.data) : 0;
                if (!bad && !ev.type[0] && !ev.data) {
                        c->comments += comment;
                        free(copy);
                        continue;       /* "retry:" or ": keepalive" */
                }
                if (bad || comment || k < 2 || ev.data[0] != '{' || ev.data[k - 1] != '}' ||
                    (strcmp(ev.type, "hello") != 0 && strcmp(ev.type, "flow") != 0 &&
                     strcmp(ev.type, "dropped") != 0)) {
                        client_torn(c, copy);
                        free(ev.data);
                        free(copy);
                        continue;
                }
                free(copy);
                if (!(c->n_events & (c->n_events + 1))) {       /* 0, 1, 3, 7, ...: grow */
                        Event *e = realloc(c->events, (c->n_events * 2 + 1) * sizeof(*e));
                        assert_non_null(e);
                        c->events = e;
                }
                c->events[c->n_events++] = ev;
        }
        if (c->body_off > 0) {
                memmove(c->body, c->body + c->body_off, c->body_len - c->body_off);
                c->body_len -= c->body_off;
                c->body_off = 0;
        }
}

static void assert_not_torn(const Client *c) {
        if (c->torn > 0)
                fail_msg("%u malformed SSE block(s) (an event cut by another?), the first:\n"
                         "%s\n---", c->torn, c->torn_sample);
}

static void client_decode(Client *c) {
        size_t pos = 0;

        if (!c->head_done) {
                char *end = memmem(c->raw, c->raw_len, "\r\n\r\n", 4);
                char te[64];
                size_t hl;

                if (!end)
                        return;
                hl = (size_t) (end - c->raw) + 4;
                assert_true(hl < sizeof(c->head));
                memcpy(c->head, c->raw, hl);
                c->head[hl] = '\0';
                assert_int_equal(sscanf(c->head, "HTTP/1.1 %d", &c->status), 1);
                c->chunked = client_header(c, "Transfer-Encoding", te, sizeof(te)) &&
                             strcasecmp(te, "chunked") == 0;
                c->head_done = true;
                pos = hl;
        }
        while (c->chunked && !c->ended) {
                size_t avail = c->raw_len - pos;

                if (c->state == CHUNK_SIZE) {
                        char *eol = memmem(c->raw + pos, avail, "\r\n", 2), *endp;
                        unsigned long size;

                        if (!eol)
                                break;
                        size = strtoul(c->raw + pos, &endp, 16);
                        assert_true(endp > c->raw + pos);
                        pos = (size_t) (eol - c->raw) + 2;
                        if (size == 0)
                                c->state = CHUNK_TRAILER;
                        else {
                                c->chunk_left = size;
                                c->state = CHUNK_DATA;
                        }
                } else if (c->state == CHUNK_DATA) {
                        size_t k = MIN(avail, c->chunk_left);

                        if (k == 0)
                                break;
                        body_append(c, c->raw + pos, k);
                        pos += k;
                        c->chunk_left -= k;
                        if (c->chunk_left == 0)
                                c->state = CHUNK_CRLF;
                } else {
                        /* after a chunk's data; or the end of the (empty) trailer */
                        if (avail < 2)
                                break;
                        assert_memory_equal(c->raw + pos, "\r\n", 2);
                        pos += 2;
                        if (c->state == CHUNK_TRAILER)
                                c->ended = true;
                        c->state = CHUNK_SIZE;
                }
        }
        if (!c->chunked && pos < c->raw_len) {
                body_append(c, c->raw + pos, c->raw_len - pos);
                pos = c->raw_len;
        }
        if (c->ended)
                assert_int_equal(pos, c->raw_len);     /* nothing after the last chunk */
        if (pos > 0) {
                memmove(c->raw, c->raw + pos, c->raw_len - pos);
                c->raw_len -= pos;
        }
        if (c->chunked)
                parse_events(c);
}

/* Reads what arrives within @timeout_ms. Return: bytes read (0 on timeout or EOF). */
static size_t client_pump(Client *c, int timeout_ms) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        char buf[65536];
        ssize_t n;
        char *r;

        if (c->eof)
                return 0;
        if (poll(&p, 1, timeout_ms) <= 0)
                return 0;
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0) {
                assert_true(n == 0 || errno == ECONNRESET);
                c->eof = true;
                return 0;
        }
        r = realloc(c->raw, c->raw_len + (size_t) n);
        assert_non_null(r);
        memcpy(r + c->raw_len, buf, (size_t) n);
        c->raw = r;
        c->raw_len += (size_t) n;
        client_decode(c);
        return (size_t) n;
}

static int remaining(uint64_t deadline) {
        uint64_t now = now_ms();

        return now >= deadline ? 0 : (int) MIN(deadline - now, (uint64_t) 100);
}

/* Waits for the response head and at least @n events. */
static void client_wait_events(Client *c, size_t n) {
        uint64_t deadline = now_ms() + WAIT_MS;

        while ((!c->head_done || c->n_events < n) && !c->eof && now_ms() < deadline)
                (void) client_pump(c, remaining(deadline));
        if (!c->head_done || c->n_events < n)
                fail_msg("%zu event(s) after %d ms (status %d, eof %d), expected %zu",
                         c->n_events, WAIT_MS, c->status, c->eof, n);
}

/* Waits for the response head, and the first event of a 200. */
static void client_wait_events_or_head(Client *c) {
        uint64_t deadline = now_ms() + WAIT_MS;

        while ((!c->head_done || (c->status == 200 && c->n_events < 1)) && !c->eof &&
               now_ms() < deadline)
                (void) client_pump(c, remaining(deadline));
        assert_true(c->head_done);
}

/* A 200 text/event-stream whose first event is the hello for @filter and @pods. */
static void client_expect_hello(Client *c, const char *filter, int pods) {
        char v[128];
        json_t *j;

        client_wait_events(c, 1);
        if (c->status != 200)
                fail_msg("status %d: %s", c->status, c->head);
        assert_true(c->chunked);
        assert_non_null(client_header(c, "Content-Type", v, sizeof(v)));
        assert_string_equal(v, "text/event-stream");
        assert_string_equal(c->events[0].type, "hello");
        j = json_loads(c->events[0].data, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_object_size(j), 2);
        assert_int_equal(json_integer_value(json_object_get(j, "pods")), pods);
        assert_string_equal(json_string_value(json_object_get(j, "filter")), filter);
        json_decref(j);
}

/* The flow in event @i, checked field by field against what was published. */
static const FlowRecord *event_flow(const Client *c, size_t i) {
        const FlowRecord *p;
        char a[INET6_ADDRSTRLEN];
        json_t *j;
        json_int_t id;

        assert_string_equal(c->events[i].type, "flow");
        j = json_loads(c->events[i].data, 0, NULL);
        if (!j)
                fail_msg("event %zu: not JSON: %s", i, c->events[i].data);
        id = json_integer_value(json_object_get(j, "src_port"));
        assert_true(id > 0 && id < (json_int_t) N_IDS);
        p = &world.published[id];
        if (p->family != 4)
                fail_msg("flow %" JSON_INTEGER_FORMAT " was never published on '" PIPELINE "'",
                         id);
#define EQ_INT(field) assert_int_equal(json_integer_value(json_object_get(j, #field)), p->field)
        EQ_INT(start_ms);
        EQ_INT(end_ms);
        EQ_INT(octets);
        EQ_INT(packets);
        EQ_INT(dst_port);
        EQ_INT(proto);
        EQ_INT(tcp_flags);
        EQ_INT(tos);
        EQ_INT(odid);
        EQ_INT(template_id);
#undef EQ_INT
        assert_string_equal(json_string_value(json_object_get(j, "src_addr")),
                            inet_ntop(AF_INET, p->src_addr + 12, a, sizeof(a)));
        assert_string_equal(json_string_value(json_object_get(j, "dst_addr")),
                            inet_ntop(AF_INET, p->dst_addr + 12, a, sizeof(a)));
        assert_string_equal(json_string_value(json_object_get(j, "exporter")), "127.0.0.9");
        json_decref(j);
        return p;
}

static bool client_has_flow(const Client *c, uint16_t id) {
        char key[32];

        (void) snprintf(key, sizeof(key), "\"src_port\":%u,", id);
        for (size_t i = 0; i < c->n_events; i++)
                if (strcmp(c->events[i].type, "flow") == 0 && strstr(c->events[i].data, key))
                        return true;
        return false;
}

/* Reads until the flow @id (a marker) arrived. */
static void client_wait_flow(Client *c, uint16_t id) {
        uint64_t deadline = now_ms() + WAIT_MS;
        size_t checked = 0;

        for (;;) {
                char key[32];
                (void) snprintf(key, sizeof(key), "\"src_port\":%u,", id);
                for (; checked < c->n_events; checked++)
                        if (strcmp(c->events[checked].type, "flow") == 0 &&
                            strstr(c->events[checked].data, key))
                                return;
                if (c->eof || now_ms() >= deadline)
                        fail_msg("flow %u did not arrive (%zu events, eof %d)", id, c->n_events,
                                 c->eof);
                (void) client_pump(c, remaining(deadline));
        }
}

typedef struct Tally {
        size_t data;                    /* data flows (each checked) */
        size_t markers;
        uint64_t dropped;               /* sum of the dropped events' counts */
        size_t dropped_events;
        uint32_t seen[MARKER_BASE];     /* data flows by id */
} Tally;

static Tally tally_buf;

/* Counts @c's events after the hello; every flow must satisfy @want, in publish order. */
static void tally(const Client *c, bool (*want)(const FlowRecord *), Tally *t) {
        uint16_t last = 0;

        memset(t, 0, sizeof(*t));
        assert_not_torn(c);
        assert_true(c->n_events >= 1);
        assert_string_equal(c->events[0].type, "hello");
        for (size_t i = 1; i < c->n_events; i++) {
                const Event *e = &c->events[i];

                if (strcmp(e->type, "dropped") == 0) {
                        json_t *j = json_loads(e->data, 0, NULL);
                        json_int_t n = json_integer_value(json_object_get(j, "dropped"));

                        assert_int_equal(json_object_size(j), 1);
                        assert_true(n > 0);
                        t->dropped += (uint64_t) n;
                        t->dropped_events++;
                        json_decref(j);
                } else if (strcmp(e->type, "flow") == 0) {
                        const FlowRecord *r = event_flow(c, i);

                        if (!want(r))
                                fail_msg("flow %u (proto %u dst_port %u) does not match the "
                                         "stream's filter", r->src_port, r->proto, r->dst_port);
                        if (r->src_port >= MARKER_BASE)
                                t->markers++;
                        else {
                                t->data++;
                                t->seen[r->src_port]++;
                                /* one feed, one stream: events keep the publish order */
                                assert_true(r->src_port > last);
                                last = r->src_port;
                        }
                } else
                        fail_msg("unexpected event '%s' (%s)", e->type, e->data);
        }
}

/* Publishes data records @first..@last in batches of @per_batch. */
static void publish_data(uint16_t first, uint16_t last, unsigned per_batch) {
        FlowRecord recs[64];

        assert_true(per_batch <= ELEMENTSOF(recs));
        for (uint32_t id = first; id <= last;) {
                uint32_t n = 0;
                for (; n < per_batch && id <= last; n++, id++)
                        data_rec(&recs[n], (uint16_t) id);
                feed_publish(&world.feed, PIPELINE, recs, n);
        }
}

/* Every data id in [first, last] arrived exactly once when @want says so, else never. */
static void assert_exact(const Tally *t, uint16_t first, uint16_t last,
                         bool (*want)(const FlowRecord *)) {
        size_t expected = 0;

        for (uint32_t id = first; id <= last; id++) {
                FlowRecord r;
                data_rec(&r, (uint16_t) id);
                if (want(&r)) {
                        expected++;
                        if (t->seen[id] != 1)
                                fail_msg("flow %u arrived %u times, expected once", id,
                                         t->seen[id]);
                } else if (t->seen[id] != 0)
                        fail_msg("flow %u arrived but does not match", id);
        }
        assert_true(expected > 0);
        assert_int_equal(t->data, expected);
        assert_int_equal(t->dropped, 0);
        assert_int_equal(t->dropped_events, 0);
}

/* A thread that reads a socket as fast as it can (no cmocka asserts off the main thread). */
typedef struct Reader {
        pthread_t thread;
        int fd;
        pthread_mutex_t lock;
        char *buf;
        size_t len;
        bool eof;
        atomic_bool stop;
        bool started;
} Reader;

static Reader reader = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Stops the reader thread (if any). Return: what it read (the caller frees it). */
static char *reader_stop(Reader *r, size_t *ret_len) {
        char *buf;

        if (r->started) {
                atomic_store(&r->stop, true);
                assert_int_equal(pthread_join(r->thread, NULL), 0);
        }
        buf = r->buf;
        *ret_len = r->len;
        r->buf = NULL;
        r->len = 0;
        r->started = r->eof = false;
        atomic_store(&r->stop, false);
        return buf;
}

static void *reader_main(void *userdata) {
        Reader *r = userdata;
        char chunk[65536];

        while (!atomic_load(&r->stop)) {
                struct pollfd p = { .fd = r->fd, .events = POLLIN };
                ssize_t n;
                char *b;

                if (poll(&p, 1, 10) <= 0)
                        continue;
                n = recv(r->fd, chunk, sizeof(chunk), 0);
                pthread_mutex_lock(&r->lock);
                if (n <= 0 || !(b = realloc(r->buf, r->len + (size_t) n))) {
                        r->eof = true;
                        pthread_mutex_unlock(&r->lock);
                        break;
                }
                memcpy(b + r->len, chunk, (size_t) n);
                r->buf = b;
                r->len += (size_t) n;
                pthread_mutex_unlock(&r->lock);
        }
        return NULL;
}

static bool reader_has_flow(Reader *r, uint16_t id) {
        char key[32];
        bool found;

        (void) snprintf(key, sizeof(key), "\"src_port\":%u,", id);
        pthread_mutex_lock(&r->lock);
        found = r->buf && memmem(r->buf, r->len, key, strlen(key));
        pthread_mutex_unlock(&r->lock);
        return found;
}

/* ---- fixtures ---- */

/* Starts the feed and the server; unless @racy, waits for the feed thread to be ready (see
 * test_open_before_feed_thread, which does not). */
static void fixture_start(bool with_feed, bool racy, const char *const *sets, size_t n_sets) {
        unsigned connects = atomic_load(&world.cmd_connects);
        uint64_t deadline = now_ms() + WAIT_MS;
        char pods[200];

        memset(world.published, 0, sizeof(world.published));
        world.next_marker = MARKER_BASE;
        feed_open(&world.feed);
        if (with_feed)
                (void) snprintf(pods, sizeof(pods), "p0=tcp://127.0.0.1:%u;feed=%u", free_port(),
                                world.feed.port);
        else
                (void) snprintf(pods, sizeof(pods), "p0=tcp://127.0.0.1:%u", free_port());
        server_start(&world.srv, pods, sets, n_sets);
        while (!racy && atomic_load(&world.cmd_connects) == connects) {
                if (now_ms() >= deadline)
                        fail_msg("the stream feed thread never connected to %s (renamed in "
                                 "stream.c? then update zmq_connect() here)", CMD_ENDPOINT);
                usleep(1000);
        }
}

static int setup_feed(void **state) {
        fixture_start(true, false, NULL, 0);
        return 0;
}

static int setup_small(void **state) {
        fixture_start(true, false, (const char *const[]) { "stream_buffer_bytes=8192" }, 1);
        return 0;
}

static int setup_nofeed(void **state) {
        /* feed_port=0: no default feed port either, so the pod has no feed at all */
        fixture_start(false, false, (const char *const[]) { "feed_port=0" }, 1);
        return 0;
}

static int teardown(void **state) {
        size_t len;

        atomic_store(&world.cmd_connect_delay_ms, 0);
        atomic_store(&world.loop_stall_ms, 0);
        free(reader_stop(&reader, &len));
        for (size_t i = 0; i < ELEMENTSOF(clients); i++)
                if (clients[i].used)
                        client_close(&clients[i]);
        server_stop(&world.srv);
        feed_close(&world.feed);
        return 0;
}

static int group_setup(void **state) {
        *(void **) &world.real_zmq_connect = dlsym(RTLD_NEXT, "zmq_connect");
        *(void **) &world.real_zmq_msg_recv = dlsym(RTLD_NEXT, "zmq_msg_recv");
        assert_non_null(world.real_zmq_connect);
        assert_non_null(world.real_zmq_msg_recv);
        world.zctx = zmq_ctx_new();
        assert_non_null(world.zctx);
        assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
        return 0;
}

static int group_teardown(void **state) {
        assert_int_equal(zmq_ctx_term(world.zctx), 0);
        curl_global_cleanup();
        return 0;
}

/* ---- tests ---- */

static void test_hello(void **state) {
        Client *c, *all;
        char v[128];

        c = client_open("/api/v1/flows/stream?" FILTER_DNS, 0);
        client_expect_hello(c, FILTER_DNS_EXPR, 1);
        /* no cache stores it (ev_mhd_queue()'s no-store), no proxy buffers it */
        assert_non_null(client_header(c, "Cache-Control", v, sizeof(v)));
        assert_string_equal(v, "no-store");
        assert_non_null(strstr(c->head, "\r\nX-Accel-Buffering: no\r\n"));
        assert_int_equal(c->retry_ms, 3000);
        feed_wait_subscribed(&world.feed);
        assert_int_equal(metric(M_STREAMS), 1);
        assert_int_equal(metric(M_FEEDS), 1);

        /* no filter: the empty expression */
        all = client_open("/api/v1/flows/stream", 0);
        client_expect_hello(all, "", 1);
        assert_int_equal(metric(M_STREAMS), 2);
        assert_int_equal(metric(M_OPENED), 2);
        client_close(all);
        client_close(c);
}

static void test_filter(void **state) {
        FlowRecord other[12];
        Client *c;
        Tally *t = &tally_buf;
        uint16_t fence;
        unsigned batches = 0;

        c = client_open("/api/v1/flows/stream?" FILTER_DNS, 0);
        client_expect_hello(c, FILTER_DNS_EXPR, 1);
        feed_wait_subscribed(&world.feed);

        /* batches of other pipelines, full of matching records: "all2" passes ZeroMQ's
         * prefix subscription, so the API itself must compare the whole name */
        for (unsigned i = 0; i < ELEMENTSOF(other); i++)
                make_rec(&other[i], (uint16_t) (30000 + i), 17, 53);
        for (uint16_t first = 1; first <= 300; first += 60) {
                publish_data(first, (uint16_t) (first + 59), 15);
                batches += 4;
                feed_publish(&world.feed, "other", other, ELEMENTSOF(other));
                feed_publish(&world.feed, "all2", other, ELEMENTSOF(other));
        }
        fence = publish_dns_marker();
        batches++;
        client_wait_flow(c, fence);

        tally(c, want_dns, t);
        assert_exact(t, 1, 300, want_dns);
        for (unsigned i = 0; i < ELEMENTSOF(other); i++)
                assert_int_equal(t->seen[30000 + i], 0);
        assert_int_equal(t->markers, 1);
        assert_int_equal(metric(M_BATCHES), batches);
        assert_int_equal(metric(M_RECORDS), 300 + 1);
        assert_int_equal(metric(M_BAD), 0);
        assert_int_equal(metric(M_EVENTS), t->data + 1);
        assert_int_equal(metric(M_SLOW) + metric(M_BUSY), 0);
        client_close(c);
}

static void test_two_streams(void **state) {
        static const uint8_t protos[] = { 17, 6 };
        static const uint16_t ports[] = { 53, 443 };
        Client *a, *b;
        Tally *t = &tally_buf;
        uint16_t m;

        a = client_open("/api/v1/flows/stream?" FILTER_DNS, 0);
        client_expect_hello(a, FILTER_DNS_EXPR, 1);
        feed_wait_subscribed(&world.feed);
        /* the parameters and a raw expression together */
        b = client_open("/api/v1/flows/stream?proto=tcp&filter=dst_port%20in%20(80%2C%20443)", 0);
        client_expect_hello(b, "proto == 6 and (dst_port in (80, 443))", 1);

        /* b's filter reaches the feed thread after its hello: markers until b sees one */
        for (;;) {
                uint64_t until = now_ms() + 50;
                m = publish_markers(protos, ports, 2);
                while (!client_has_flow(b, (uint16_t) (m + 1)) && now_ms() < until)
                        (void) client_pump(b, 10);
                if (client_has_flow(b, (uint16_t) (m + 1)))
                        break;
                assert_true(m < MARKER_BASE + 200);
        }

        publish_data(1, 600, 20);
        m = publish_markers(protos, ports, 2);
        client_wait_flow(a, m);
        client_wait_flow(b, (uint16_t) (m + 1));

        tally(a, want_dns, t);
        assert_exact(t, 1, 600, want_dns);
        tally(b, want_web, t);
        assert_exact(t, 1, 600, want_web);
        client_close(a);
        client_close(b);
}

/* Waits until the API read @records from the feed and queued or dropped (and counted) each
 * of the @matching events. Return: the slow_client drops. */
static uint64_t wait_accounted(uint64_t records, uint64_t matching) {
        uint64_t deadline, events, slow, busy;

        wait_metric(M_RECORDS, records);
        deadline = now_ms() + WAIT_MS;
        for (;;) {
                events = metric(M_EVENTS);
                slow = metric(M_SLOW);
                /* at most a few dozen messages are ever in flight: the inproc queue (256)
                 * never fills, so nothing is lost as api_busy */
                busy = metric(M_BUSY);
                assert_int_equal(busy, 0);
                if (events + slow == matching)
                        return slow;
                if (now_ms() >= deadline)
                        fail_msg("events %" PRIu64 " + dropped %" PRIu64 " != %" PRIu64
                                 " matching", events, slow, matching);
                usleep(10 * 1000);
        }
}

/* Flow events and announced drops in @c so far (no field checks). */
static void quick_count(const Client *c, size_t *ret_flows, uint64_t *ret_dropped) {
        size_t flows = 0;
        uint64_t dropped = 0;

        for (size_t i = 1; i < c->n_events; i++)
                if (strcmp(c->events[i].type, "flow") == 0)
                        flows++;
                else if (strcmp(c->events[i].type, "dropped") == 0)
                        dropped += strtoull(c->events[i].data + strlen("{\"dropped\":"), NULL, 10);
        *ret_flows = flows;
        *ret_dropped = dropped;
}

/* Reads @c until its flows and announced drops account for @matching events, then checks
 * every event: nothing lost silently. */
static void read_accounted(Client *c, uint64_t matching, bool (*want)(const FlowRecord *),
                           Tally *t) {
        uint64_t deadline = now_ms() + WAIT_MS, dropped;
        size_t flows;

        for (;;) {
                assert_not_torn(c);
                quick_count(c, &flows, &dropped);
                if (flows + dropped >= matching)
                        break;
                if (c->eof || now_ms() >= deadline)
                        fail_msg("received %zu + dropped %" PRIu64 " of %" PRIu64 " (eof %d)",
                                 flows, dropped, matching, c->eof);
                while (client_pump(c, 20) > 0)
                        ;
        }
        tally(c, want, t);
        assert_int_equal(t->data + t->dropped, matching);
        assert_int_equal(t->markers, 0);
}

/* A client that reads nothing, with an 8 KiB stream buffer: rounds of batches of 8 matching
 * events (each fits the buffer alone) until the server has been dropping for two rounds;
 * then it reads everything. */
static void test_slow_client(void **state) {
        Client *c;
        Tally *t = &tally_buf;
        uint64_t matching = 0, records = 0, slow = 0;
        uint32_t id = 1;
        unsigned rounds_after_drop = 0;
        uint16_t m;

        /* a small receive window, so the kernel holds little of what the client ignores */
        c = client_open("/api/v1/flows/stream?proto=udp", 4096);
        client_expect_hello(c, "proto == 17", 1);
        feed_wait_subscribed(&world.feed);

        /* the client reads nothing now */
        for (unsigned round = 0; rounds_after_drop < 2; round++) {
                if (round >= 100)
                        fail_msg("no slow_client drop after %" PRIu64 " matching events", matching);
                for (unsigned b = 0; b < 40; b++) {
                        FlowRecord recs[10];
                        for (unsigned i = 0; i < ELEMENTSOF(recs); i++, id++) {
                                assert_true(id < MARKER_BASE);
                                /* 8 udp (matching), a tcp and an icmp */
                                make_rec(&recs[i], (uint16_t) id, i == 3 ? 6 : i == 7 ? 1 : 17,
                                         (uint16_t) (50 + i));
                                matching += recs[i].proto == 17;
                        }
                        records += ELEMENTSOF(recs);
                        feed_publish(&world.feed, PIPELINE, recs, ELEMENTSOF(recs));
                }
                slow = wait_accounted(records, matching);
                if (slow > 0)
                        rounds_after_drop++;
        }
        assert_true(matching * 400 > 20 * BUFFER_SMALL);        /* "far more" than the buffer */

        /* now read everything */
        read_accounted(c, matching, want_udp, t);
        assert_true(t->data > 0);
        assert_true(t->dropped > 0);
        assert_true(t->dropped_events >= 1);
        assert_int_equal(metric(M_SLOW), t->dropped);
        assert_int_equal(metric(M_EVENTS), t->data);

        /* the stream goes on once the client keeps up */
        m = publish_dns_marker();
        client_wait_flow(c, m);
        assert_not_torn(c);
        client_close(c);
}

/* @n full batches (output-zmq's default batch_records is 1024): ~490 KB of events each on an
 * unfiltered stream, against the default 1 MiB stream buffer. */
static void publish_big_batches(uint32_t *id, unsigned n) {
        static FlowRecord recs[1024];

        for (unsigned b = 0; b < n; b++) {
                for (unsigned i = 0; i < 1024; i++, (*id)++)
                        make_rec(&recs[i], (uint16_t) *id, i % 2 ? 6 : 17, (uint16_t) (i % 1000));
                feed_publish(&world.feed, PIPELINE, recs, 1024);
        }
}

/* The same with the default buffer and mediator-sized batches, one at a time. The buffer is
 * read out in pieces (READ_BLOCK at most per call), so the buffered text starts in the middle
 * of an event once the server has sent some; drops announced then must still come between
 * two events, not inside one. */
static void test_slow_client_big_batches(void **state) {
        Client *c;
        Tally *t = &tally_buf;
        uint64_t slow = 0;
        uint32_t id = 1;
        uint16_t m;

        c = client_open("/api/v1/flows/stream", 4096);
        client_expect_hello(c, "", 1);
        feed_wait_subscribed(&world.feed);
        while (slow == 0) {
                /* the kernel takes a few MB before the server's buffer fills */
                if (id > 16 * 1024)
                        fail_msg("no slow_client drop after %u events", id - 1);
                publish_big_batches(&id, 1);
                slow = wait_accounted(id - 1, id - 1);
        }
        assert_int_equal(slow % 1024, 0);       /* whole batches */

        read_accounted(c, id - 1, want_all, t);
        assert_true(t->data > 0);
        assert_int_equal(t->dropped, slow);
        assert_int_equal(metric(M_SLOW), t->dropped);

        m = publish_dns_marker();
        client_wait_flow(c, m);
        assert_not_torn(c);
        client_close(c);
}

/* A client that reads as fast as it can (a thread drains its socket the whole time) is not
 * slow. The loop thread is held up 200 ms while four full batches (~2 MB of events) arrive
 * on an unfiltered stream: they wait in the feed thread -> loop queue (256 messages), and
 * must not then be dropped as "slow_client" because the loop moved them all into the 1 MiB
 * stream buffer before the HTTP server had a chance to send any of it. */
static void test_burst_fast_client(void **state) {
        Client *c;
        Tally *t = &tally_buf;
        uint64_t deadline, dropped;
        uint32_t id = 1;
        size_t flows;
        uint16_t m;
        bool eof;

        c = client_open("/api/v1/flows/stream", 0);
        client_expect_hello(c, "", 1);
        feed_wait_subscribed(&world.feed);
        assert_int_equal(c->raw_len, 0);
        reader.fd = c->fd;
        assert_int_equal(pthread_create(&reader.thread, NULL, reader_main, &reader), 0);
        reader.started = true;

        atomic_store(&world.loop_stall_ms, 200);
        publish_big_batches(&id, 4);
        m = publish_dns_marker();
        deadline = now_ms() + WAIT_MS;
        while (!reader_has_flow(&reader, m) && !reader.eof && now_ms() < deadline)
                usleep(10 * 1000);
        eof = reader.eof;
        /* decode what the reader got as if the client had read it */
        assert_int_equal(c->raw_len, 0);
        free(c->raw);
        c->raw = reader_stop(&reader, &c->raw_len);
        client_decode(c);
        assert_false(eof);
        assert_true(client_has_flow(c, m));
        quick_count(c, &flows, &dropped);
        if (flows != id || dropped > 0 || c->torn > 0)
                fail_msg("a client reading as fast as it can: %zu of %u events (and the marker) "
                         "arrived, slow_client drops %" PRIu64 ", %" PRIu64 " announced, %u "
                         "malformed SSE blocks", flows, id - 1, metric(M_SLOW), dropped, c->torn);
        tally(c, want_all, t);
        assert_int_equal(t->data, id - 1);
        assert_int_equal(t->markers, 1);
        client_close(c);
}

static void test_max_streams(void **state) {
        Client *a, *b, *c;
        Reply r;
        uint64_t deadline;
        char v[32];
        uint16_t m;

        a = client_open("/api/v1/flows/stream?proto=udp", 0);
        client_expect_hello(a, "proto == 17", 1);
        feed_wait_subscribed(&world.feed);
        b = client_open("/api/v1/flows/stream", 0);
        client_expect_hello(b, "", 1);

        r = get("/api/v1/flows/stream?" FILTER_DNS);
        assert_error(&r, 503, "too_many_streams", NULL);
        assert_non_null(strcasestr(r.headers, "\r\nRetry-After: "));
        reply_done(&r);
        /* a raw client sees the same, with a well-formed head */
        c = client_open("/api/v1/flows/stream", 0);
        deadline = now_ms() + WAIT_MS;
        while (!c->head_done && !c->eof && now_ms() < deadline)
                (void) client_pump(c, remaining(deadline));
        assert_int_equal(c->status, 503);
        assert_non_null(client_header(c, "Retry-After", v, sizeof(v)));
        assert_true(strtoul(v, NULL, 10) > 0);
        client_close(c);
        assert_int_equal(metric(M_REFUSED), 2);
        assert_int_equal(metric(M_STREAMS), 2);

        /* a leaves; the server notices when it next writes to it */
        client_close(a);
        deadline = now_ms() + WAIT_MS;
        while (metric(M_STREAMS) != 1) {
                if (now_ms() >= deadline)
                        fail_msg("the server never noticed the closed stream");
                m = publish_dns_marker();
                client_wait_flow(b, m);        /* b keeps receiving meanwhile */
                usleep(20 * 1000);
        }
        c = client_open("/api/v1/flows/stream?" FILTER_DNS, 0);
        client_expect_hello(c, FILTER_DNS_EXPR, 1);
        assert_int_equal(metric(M_STREAMS), 2);
        assert_int_equal(metric(M_OPENED), 3);
        assert_int_equal(metric(M_REFUSED), 2);
        client_close(b);
        client_close(c);
}

static void test_bad_parameters(void **state) {
        static const struct {
                const char *query;
                const char *code;
                const char *parameter;
        } cases[] = {
                { "src=bad", "bad_parameter", "src" },
                { "from=", "bad_parameter", "from" },
                { "from=now-15m", "bad_parameter", "from" },
                { "to=now", "bad_parameter", "to" },
                { "limit=10", "bad_parameter", "limit" },
                { "cursor=x", "bad_parameter", "cursor" },
                { "proto=udp&dst_port=70000", "bad_parameter", "dst_port" },
                { "filter=proto%20%3D%3D", "bad_parameter", "filter" },
                { "bogus=1", "unknown_parameter", "bogus" },
        };
        char path[256];
        Client *c;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Reply r;
                (void) snprintf(path, sizeof(path), "/api/v1/flows/stream?%s", cases[i].query);
                r = get(path);
                assert_error(&r, 400, cases[i].code, cases[i].parameter);
                reply_done(&r);
        }
        assert_int_equal(metric(M_OPENED), 0);
        assert_int_equal(metric(M_STREAMS), 0);
        /* the refusals held no slot */
        c = client_open("/api/v1/flows/stream?" FILTER_DNS, 0);
        client_expect_hello(c, FILTER_DNS_EXPR, 1);
        client_close(c);
}

static void test_shutdown(void **state) {
        Client *a, *b;
        uint64_t deadline;
        uint16_t m;

        a = client_open("/api/v1/flows/stream?" FILTER_DNS, 0);
        client_expect_hello(a, FILTER_DNS_EXPR, 1);
        feed_wait_subscribed(&world.feed);
        b = client_open("/api/v1/flows/stream?proto=udp", 0);
        client_expect_hello(b, "proto == 17", 1);
        do {
                m = publish_dns_marker();
                usleep(20 * 1000);
                (void) client_pump(b, 0);
        } while (!client_has_flow(b, m) && m < MARKER_BASE + 200);
        client_wait_flow(a, m);
        client_wait_flow(b, m);

        /* api_free() with both streams open (and parked): it must not hang, and each client
         * sees the chunked body terminated, then the connection closed */
        server_stop(&world.srv);
        deadline = now_ms() + WAIT_MS;
        while ((!a->eof || !b->eof) && now_ms() < deadline) {
                (void) client_pump(a, a->eof ? 0 : 20);
                (void) client_pump(b, b->eof ? 0 : 20);
        }
        assert_true(a->eof && b->eof);
        if (!a->ended || !b->ended)
                fail_msg("the stream ended without its last chunk (a %d, b %d)", a->ended,
                         b->ended);
        client_close(a);
        client_close(b);
}

static void test_no_feed(void **state) {
        Client *c;
        uint64_t until;

        c = client_open("/api/v1/flows/stream?" FILTER_DNS, 0);
        client_expect_hello(c, FILTER_DNS_EXPR, 0);
        /* open and quiet: no event, no end, for a while */
        until = now_ms() + 200;
        while (now_ms() < until)
                assert_int_equal(client_pump(c, 20), 0);
        assert_false(c->eof);
        assert_false(c->ended);
        assert_int_equal(c->n_events, 1);
        assert_int_equal(metric(M_STREAMS), 1);
        assert_int_equal(metric(M_FEEDS), 0);
        client_close(c);
}

/*
 * A stream opened right after the server started, while its feed thread has not yet
 * connected to the command socket (the thread is created last in api_new() and the loop may
 * take a request before the scheduler runs it: ~1 start in 100 on a loaded machine here).
 * zmq_connect() above holds that connect back 300 ms to make it certain. The stream must open
 * all the same (or wait), not fail with 500.
 */
static void test_open_before_feed_thread(void **state) {
        Client *c;

        atomic_store(&world.cmd_connect_delay_ms, 300);
        fixture_start(true, true, NULL, 0);
        c = client_open("/api/v1/flows/stream?" FILTER_DNS, 0);
        client_wait_events_or_head(c);
        assert_int_equal(atomic_load(&world.cmd_connects_delayed), 1);
        atomic_store(&world.cmd_connect_delay_ms, 0);
        if (c->status != 200)
                fail_msg("a stream opened before the feed thread connected was answered %d "
                         "(api_stream_open(): EAGAIN from its command PUSH socket, no peer yet)",
                         c->status);
        client_expect_hello(c, FILTER_DNS_EXPR, 1);
        feed_wait_subscribed(&world.feed);
        client_close(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_hello, setup_feed, teardown),
                cmocka_unit_test_setup_teardown(test_filter, setup_feed, teardown),
                cmocka_unit_test_setup_teardown(test_two_streams, setup_feed, teardown),
                cmocka_unit_test_setup_teardown(test_slow_client, setup_small, teardown),
                cmocka_unit_test_setup_teardown(test_slow_client_big_batches, setup_feed, teardown),
                cmocka_unit_test_setup_teardown(test_burst_fast_client, setup_feed, teardown),
                cmocka_unit_test_setup_teardown(test_max_streams, setup_feed, teardown),
                cmocka_unit_test_setup_teardown(test_bad_parameters, setup_feed, teardown),
                cmocka_unit_test_setup_teardown(test_shutdown, setup_feed, teardown),
                cmocka_unit_test_setup_teardown(test_no_feed, setup_nofeed, teardown),
                cmocka_unit_test_setup_teardown(test_open_before_feed_thread, NULL, teardown),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
