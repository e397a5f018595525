/* SPDX-License-Identifier: MIT */
/*
 * stream.c - server-sent events from the pods' live feeds (see stream.h).
 *
 * Ownership. Loop thread: the hub's stream list, every ApiStream and its buffer, the
 * command PUSH and event PULL sockets. Feed thread: the SUB sockets, the FeedStream table
 * (id + compiled filter), its pod set reference, the batch and text scratch buffers. The
 * two share only the atomics in ApiStreamHub and the pod directory (thread-safe).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "ev-zmq.h"
#include "flow-filter.h"
#include "flow.h"
#include "log.h"
#include "macro.h"
#include "stream.h"

#define CMD_ENDPOINT "inproc://ipfixd-api-stream-cmd"
#define EVENTS_ENDPOINT "inproc://ipfixd-api-stream-events"
#define READ_BLOCK (64u * 1024u)
#define FEED_RCVHWM 64
#define FEED_BURST 64u                  /* messages read from one feed per wake-up */
#define EVENT_PREFIX "event: flow\ndata: "
#define FLOW_JSON_MAX 1024u
#define HOLD_RETRY_MS 1u                /* a held events message is looked at again */
#define HOLD_CHECK_MS 20u               /* a client that took nothing this long is slow */
#define HOLD_MAX_MS 200u                /* nor does one message wait longer than this */

typedef enum CmdType {
        CMD_ADD = 1,
        CMD_DEL = 2,
} CmdType;

typedef struct Cmd {
        uint32_t type;
        uint32_t expr_len;              /* CMD_ADD: bytes of the expression that follow */
        uint64_t id;
} Cmd;

typedef struct EventsHeader {
        uint64_t id;
        uint32_t events;                /* "event: flow" records in the text */
        uint32_t dropped;               /* records lost before they reached the loop */
} EventsHeader;

typedef struct ApiStream ApiStream;

struct ApiStream {
        ApiStreamHub *hub;
        EvMhd *mhd;
        struct MHD_Connection *conn;
        uint64_t id;
        ApiStream *prev, *next;
        char *buf;                      /* pending text is buf[off, len) */
        size_t off, len, cap;
        uint64_t dropped_pending;       /* to announce before the next events */
        uint64_t last_write_ms;         /* CLOCK_MONOTONIC of the last text appended */
        bool mid_event;                 /* the last block sent ended inside an event */
        bool slow;                      /* made no progress while events waited: drop */
        uint64_t sent_bytes;            /* handed to MHD so far */
        int hup_fd;                     /* our dup of the client socket, -1: none */
        sd_event_source *hup_src;       /* EPOLLRDHUP on it: the client went away */
        bool suspended, closing;
};

struct ApiStreamHub {
        /* loop thread */
        sd_event *event;
        ApiStreamConfig cfg;
        char *pipeline;
        void *zctx;
        void *cmd_push, *events_pull;
        sd_event_source *events_src, *keepalive_src, *retry_src;
        zmq_msg_t held;                 /* an events message waiting for room in its stream */
        bool has_held;
        uint64_t held_since_ms, held_check_ms, held_mark;
        ApiStream *streams;
        size_t n_streams;
        uint64_t next_id;
        uint64_t opened, refused, events_sent, dropped_slow, dropped_feed;

        /* shared */
        ApiPodDir *dir;
        pthread_t thread;
        bool thread_started;
        _Atomic uint64_t feed_messages, feed_records, feed_bad, feed_lost, feeds_connected;
};

static uint64_t now_mono_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* ---- feed thread ---- */

typedef struct FeedStream {
        uint64_t id;
        FlowFilter *filter;
        uint64_t carry_dropped;         /* not yet reported to the loop */
} FeedStream;

typedef struct Feed {
        ApiStreamHub *hub;
        void *cmd_pull, *events_push;
        FeedStream *streams;
        size_t n_streams, cap_streams;
        ApiPodSet *set;                 /* the pods the subs are connected to */
        void **subs;
        size_t n_subs;
        bool connected;
        void *batch;                    /* 8-byte aligned copy of a batch */
        size_t batch_cap;
        char *text;                     /* events for one stream */
} Feed;

static void feed_close_subs(Feed *f) {
        for (size_t i = 0; i < f->n_subs; i++)
                (void) zmq_close(f->subs[i]);
        free(f->subs);
        f->subs = NULL;
        f->n_subs = 0;
        f->connected = false;
        f->set = api_pod_set_unref(f->set);
        atomic_store(&f->hub->feeds_connected, 0);
}

static void feed_open_subs(Feed *f) {
        const char *pipeline = f->hub->pipeline;
        int64_t max_msg = (int64_t) flow_batch_size(FLOW_BATCH_MAX_RECORDS);
        int hwm = FEED_RCVHWM, zero = 0, ivl = 100, ivl_max = 5000;

        feed_close_subs(f);
        f->set = api_pod_dir_get(f->hub->dir);
        f->subs = calloc(MAX(f->set->n, (size_t) 1), sizeof(*f->subs));
        if (!f->subs)
                return;         /* retried on the next wake-up: connected stays false */
        for (size_t i = 0; i < f->set->n; i++) {
                const ApiPod *p = &f->set->pods[i];
                void *s;

                if (!p->feed[0])
                        continue;
                s = zmq_socket(f->hub->zctx, ZMQ_SUB);
                if (!s)
                        continue;
                if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
                    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
                    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_msg, sizeof(max_msg)) < 0 ||
                    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0 ||
                    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) < 0 ||
                    zmq_setsockopt(s, ZMQ_SUBSCRIBE, pipeline, strlen(pipeline)) < 0 ||
                    zmq_connect(s, p->feed) < 0) {
                        log_warning("Cannot subscribe to pod %s's feed %s: %s", p->name, p->feed,
                                    zmq_strerror(zmq_errno()));
                        (void) zmq_close(s);
                        continue;
                }
                f->subs[f->n_subs++] = s;
        }
        f->connected = true;
        atomic_store(&f->hub->feeds_connected, f->n_subs);
        log_debug("Stream feeds: subscribed to %zu pod(s)", f->n_subs);
}

static FeedStream *feed_find(Feed *f, uint64_t id) {
        for (size_t i = 0; i < f->n_streams; i++)
                if (f->streams[i].id == id)
                        return &f->streams[i];
        return NULL;
}

static void feed_command(Feed *f) {
        zmq_msg_t msg;
        Cmd cmd;

        zmq_msg_init(&msg);
        while (zmq_msg_recv(&msg, f->cmd_pull, ZMQ_DONTWAIT) >= 0) {
                size_t len = zmq_msg_size(&msg);
                const char *data = zmq_msg_data(&msg);

                if (len < sizeof(cmd))
                        continue;
                memcpy(&cmd, data, sizeof(cmd));
                if (cmd.type == CMD_ADD && len == sizeof(cmd) + cmd.expr_len) {
                        _cleanup_free_ char *expr = strndup(data + sizeof(cmd), cmd.expr_len);
                        _cleanup_free_ char *err = NULL;
                        FlowFilter *filter = NULL;

                        if (!expr || flow_filter_compile(expr, &filter, &err) < 0) {
                                /* The loop compiled it already: only -ENOMEM. */
                                log_warning("Stream %" PRIu64 " gets no events: out of memory",
                                            cmd.id);
                                continue;
                        }
                        if (f->n_streams == f->cap_streams) {
                                size_t cap = MAX(f->cap_streams * 2, (size_t) 8);
                                FeedStream *n = realloc(f->streams, cap * sizeof(*n));

                                if (!n) {
                                        log_warning("Stream %" PRIu64 " gets no events: out of "
                                                    "memory", cmd.id);
                                        flow_filter_free(filter);
                                        continue;
                                }
                                f->streams = n;
                                f->cap_streams = cap;
                        }
                        f->streams[f->n_streams++] = (FeedStream) { .id = cmd.id, .filter = filter };
                } else if (cmd.type == CMD_DEL) {
                        FeedStream *fs = feed_find(f, cmd.id);

                        if (fs) {
                                flow_filter_free(fs->filter);
                                *fs = f->streams[--f->n_streams];
                        }
                }
        }
        zmq_msg_close(&msg);
}

/* Sends @fs its events (in f->text, @len bytes, @events records). */
static void feed_send(Feed *f, FeedStream *fs, size_t len, uint32_t events) {
        EventsHeader h = {
                .id = fs->id,
                .events = events,
                .dropped = (uint32_t) MIN(fs->carry_dropped, (uint64_t) UINT32_MAX),
        };
        zmq_msg_t msg;

        if (len == 0 && h.dropped == 0)
                return;
        if (zmq_msg_init_size(&msg, sizeof(h) + len) < 0) {
                fs->carry_dropped += events;
                return;
        }
        memcpy(zmq_msg_data(&msg), &h, sizeof(h));
        memcpy((char *) zmq_msg_data(&msg) + sizeof(h), f->text, len);
        if (zmq_msg_send(&msg, f->events_push, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&msg);
                fs->carry_dropped += events;    /* the loop is behind: told later */
                return;
        }
        fs->carry_dropped -= h.dropped;
}

static void feed_batch(Feed *f, const void *data, size_t len) {
        const FlowRecord *recs;
        FlowBatchHeader hdr;
        int n;

        if (len > f->batch_cap) {
                void *b = realloc(f->batch, len);

                if (!b) {
                        atomic_fetch_add(&f->hub->feed_lost, 1);
                        return;
                }
                f->batch = b;
                f->batch_cap = len;
        }
        memcpy(f->batch, data, len);
        n = flow_batch_decode(f->batch, len, &hdr, &recs);
        if (n < 0) {
                atomic_fetch_add(&f->hub->feed_bad, 1);
                return;
        }
        atomic_fetch_add(&f->hub->feed_messages, 1);
        atomic_fetch_add(&f->hub->feed_records, (uint64_t) n);
        for (size_t s = 0; s < f->n_streams; s++) {
                FeedStream *fs = &f->streams[s];
                size_t used = 0;
                uint32_t events = 0;

                for (int i = 0; i < n; i++) {
                        int k;

                        if (!flow_filter_match(fs->filter, &recs[i]))
                                continue;
                        if (used + sizeof(EVENT_PREFIX) + FLOW_JSON_MAX + 2 > API_STREAM_MAX_CHUNK) {
                                fs->carry_dropped++;
                                continue;
                        }
                        memcpy(f->text + used, EVENT_PREFIX, sizeof(EVENT_PREFIX) - 1);
                        k = flow_record_to_json(&recs[i], f->text + used + sizeof(EVENT_PREFIX) - 1,
                                                FLOW_JSON_MAX);
                        if (k < 0) {
                                fs->carry_dropped++;
                                continue;
                        }
                        used += sizeof(EVENT_PREFIX) - 1 + (size_t) k;
                        f->text[used++] = '\n';
                        f->text[used++] = '\n';
                        events++;
                }
                feed_send(f, fs, used, events);
        }
}

static void feed_read(Feed *f, void *sub) {
        const char *pipeline = f->hub->pipeline;
        size_t plen = strlen(pipeline);

        for (unsigned i = 0; i < FEED_BURST; i++) {
                zmq_msg_t name, batch;
                int more = 0;
                size_t more_len = sizeof(more);

                zmq_msg_init(&name);
                if (zmq_msg_recv(&name, sub, ZMQ_DONTWAIT) < 0) {
                        zmq_msg_close(&name);
                        return;
                }
                if (zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &more_len) < 0 || !more) {
                        atomic_fetch_add(&f->hub->feed_bad, 1);
                        zmq_msg_close(&name);
                        continue;
                }
                zmq_msg_init(&batch);
                if (zmq_msg_recv(&batch, sub, ZMQ_DONTWAIT) < 0) {
                        zmq_msg_close(&name);
                        zmq_msg_close(&batch);
                        return;
                }
                /* Drain any extra frames: a two-frame message is all we accept. */
                if (zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &more_len) == 0 && more) {
                        atomic_fetch_add(&f->hub->feed_bad, 1);
                        do {
                                zmq_msg_t extra;

                                zmq_msg_init(&extra);
                                (void) zmq_msg_recv(&extra, sub, ZMQ_DONTWAIT);
                                zmq_msg_close(&extra);
                        } while (zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &more_len) == 0 && more);
                } else if (plen == 0 || (zmq_msg_size(&name) == plen &&
                                         memcmp(zmq_msg_data(&name), pipeline, plen) == 0))
                        feed_batch(f, zmq_msg_data(&batch), zmq_msg_size(&batch));
                zmq_msg_close(&name);
                zmq_msg_close(&batch);
        }
}

static void *feed_main(void *userdata) {
        ApiStreamHub *h = userdata;
        Feed f = { .hub = h };
        zmq_pollitem_t *items = NULL;
        int zero = 0, hwm = API_STREAM_QUEUE;

        f.cmd_pull = zmq_socket(h->zctx, ZMQ_PULL);
        f.events_push = zmq_socket(h->zctx, ZMQ_PUSH);
        f.text = malloc(API_STREAM_MAX_CHUNK);
        if (!f.cmd_pull || !f.events_push || !f.text)
                goto out;
        (void) zmq_setsockopt(f.cmd_pull, ZMQ_LINGER, &zero, sizeof(zero));
        (void) zmq_setsockopt(f.events_push, ZMQ_LINGER, &zero, sizeof(zero));
        (void) zmq_setsockopt(f.events_push, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        if (zmq_connect(f.cmd_pull, CMD_ENDPOINT) < 0 ||
            zmq_connect(f.events_push, EVENTS_ENDPOINT) < 0)
                goto out;
        /* Connected: api_stream_hub_new() waits for this before any stream can open (a
         * command sent before the connection would find no reader). */
        {
                EventsHeader ready = {};

                if (zmq_send(f.events_push, &ready, sizeof(ready), 0) < 0)
                        goto out;
        }
        for (;;) {
                size_t n;

                if (f.n_streams > 0 &&
                    (!f.connected || f.set->generation != api_pod_dir_generation(h->dir)))
                        feed_open_subs(&f);
                else if (f.n_streams == 0 && f.connected)
                        feed_close_subs(&f);

                free(items);
                items = calloc(1 + f.n_subs, sizeof(*items));
                if (!items)
                        break;
                items[0] = (zmq_pollitem_t) { .socket = f.cmd_pull, .events = ZMQ_POLLIN };
                for (size_t i = 0; i < f.n_subs; i++)
                        items[1 + i] = (zmq_pollitem_t) { .socket = f.subs[i], .events = ZMQ_POLLIN };
                n = 1 + f.n_subs;
                if (zmq_poll(items, (int) n, 1000) < 0) {
                        if (zmq_errno() == EINTR)
                                continue;
                        break;          /* ETERM */
                }
                if (items[0].revents & ZMQ_POLLIN)
                        feed_command(&f);
                for (size_t i = 1; i < n; i++)
                        if (items[i].revents & ZMQ_POLLIN)
                                feed_read(&f, items[i].socket);
        }
out:
        free(items);
        feed_close_subs(&f);
        for (size_t i = 0; i < f.n_streams; i++)
                flow_filter_free(f.streams[i].filter);
        free(f.streams);
        free(f.batch);
        free(f.text);
        if (f.cmd_pull)
                (void) zmq_close(f.cmd_pull);
        if (f.events_push)
                (void) zmq_close(f.events_push);
        return NULL;
}

/* ---- loop thread ---- */

static void stream_wake(ApiStream *st) {
        if (st->suspended) {
                st->suspended = false;
                ev_mhd_resume(st->mhd, st->conn);
        }
}

/* Appends @len bytes of events to @st's buffer. Return: false when they do not fit. */
static bool stream_append(ApiStream *st, const char *text, size_t len) {
        size_t pending = st->len - st->off;

        if (pending + len > st->hub->cfg.buffer_bytes)
                return false;
        if (st->len + len > st->cap) {
                if (st->off > 0) {
                        memmove(st->buf, st->buf + st->off, pending);
                        st->off = 0;
                        st->len = pending;
                }
                if (st->len + len > st->cap) {
                        size_t cap = MAX(st->cap * 2, st->len + len);
                        char *b;

                        cap = MIN(cap, st->hub->cfg.buffer_bytes);
                        b = realloc(st->buf, cap);
                        if (!b)
                                return false;
                        st->buf = b;
                        st->cap = cap;
                }
        }
        memcpy(st->buf + st->len, text, len);
        st->len += len;
        st->last_write_ms = now_mono_ms();
        return true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
        ApiStream *st = cls;
        size_t n = 0, avail;

        /* The loss note goes between events only, never into one half sent. */
        if (st->dropped_pending > 0 && !st->mid_event) {
                char note[96];
                int k = snprintf(note, sizeof(note), "event: dropped\ndata: {\"dropped\":%" PRIu64
                                 "}\n\n", st->dropped_pending);

                if (k > 0 && (size_t) k <= max) {
                        memcpy(out, note, (size_t) k);
                        n = (size_t) k;
                        st->dropped_pending = 0;
                }
        }
        avail = MIN(st->len - st->off, max - n);
        if (avail > 0 && avail < st->len - st->off) {
                /* Only part fits: end this block at the last whole event when one fits. */
                size_t cut = avail;

                while (cut >= 2 && !(st->buf[st->off + cut - 1] == '\n' &&
                                     st->buf[st->off + cut - 2] == '\n'))
                        cut--;
                if (cut >= 2)
                        avail = cut;
        }
        if (avail > 0) {
                const char *end = st->buf + st->off + avail;

                memcpy(out + n, st->buf + st->off, avail);
                st->off += avail;
                n += avail;
                /* The buffer holds whole events: its end, or a "\n\n", is a boundary. */
                st->mid_event = st->off < st->len && !(end[-1] == '\n' && avail >= 2 &&
                                                       end[-2] == '\n');
        }
        st->sent_bytes += n;
        if (st->off == st->len) {
                st->off = st->len = 0;
                st->slow = false;       /* caught up */
        }
        if (n > 0)
                return (ssize_t) n;
        if (st->closing)
                return MHD_CONTENT_READER_END_OF_STREAM;
        /* Nothing to send: park the connection until events (or a keepalive) arrive. */
        MHD_suspend_connection(st->conn);
        st->suspended = true;
        return 0;
}

static void stream_free(void *cls) {
        ApiStream *st = cls;
        ApiStreamHub *h = st->hub;
        Cmd cmd = { .type = CMD_DEL, .id = st->id };

        st->hup_src = sd_event_source_disable_unref(st->hup_src);
        if (st->hup_fd >= 0)
                (void) close(st->hup_fd);

        if (st->prev)
                st->prev->next = st->next;
        else
                h->streams = st->next;
        if (st->next)
                st->next->prev = st->prev;
        h->n_streams--;
        /* Never lost: the command socket has no high-water mark. */
        if (zmq_send(h->cmd_push, &cmd, sizeof(cmd), ZMQ_DONTWAIT) < 0)
                log_warning("Failed to tell the feed thread stream %" PRIu64 " ended: %s",
                            st->id, zmq_strerror(zmq_errno()));
        log_debug("Stream %" PRIu64 " closed (%zu open)", st->id, h->n_streams);
        free(st->buf);
        free(st);
}

/* The client closed its end: end the stream now rather than at the next failed write. */
static int on_client_hup(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ApiStream *st = userdata;

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (!st->closing) {
                log_debug("Stream %" PRIu64 ": the client went away", st->id);
                st->closing = true;
                st->off = st->len = 0;
                st->dropped_pending = 0;
                stream_wake(st);
        }
        return 0;
}

/*
 * Watches @st's client socket for the peer's close (EPOLLRDHUP), through a dup of the
 * descriptor so that the watch never outlives the socket it watches (MHD closes its own
 * descriptor; ours goes in stream_free()). Optional: without it, a write that fails (a
 * keepalive at the latest) notices the client is gone.
 */
static void stream_watch_client(ApiStream *st) {
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        if (!ci)
                return;
        st->hup_fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 3);
        if (st->hup_fd < 0)
                return;
        if (sd_event_add_io(st->hub->event, &st->hup_src, st->hup_fd, EPOLLRDHUP,
                            on_client_hup, st) < 0) {
                (void) close(st->hup_fd);
                st->hup_fd = -1;
        }
}

static ApiStream *stream_find(ApiStreamHub *h, uint64_t id) {
        for (ApiStream *st = h->streams; st; st = st->next)
                if (st->id == id)
                        return st;
        return NULL;
}

/*
 * Delivers one events message to its stream. When it does not fit the stream's buffer, the
 * message is held (and reading stops, so later messages keep their order) while the client
 * is taking data: a burst larger than the buffer is not lost by a client that keeps up.
 * A client that took nothing for HOLD_CHECK_MS, or that still has no room after
 * HOLD_MAX_MS, is slow: this message and, until it catches up, the next ones that do not
 * fit are dropped for it (counted and announced), and the others go on.
 * Return: 0 consumed (delivered or dropped), -EAGAIN held.
 */
static int deliver(ApiStreamHub *h, const char *data, size_t len, bool first) {
        uint64_t now = now_mono_ms();
        EventsHeader hdr;
        ApiStream *st;

        if (len < sizeof(hdr))
                return 0;
        memcpy(&hdr, data, sizeof(hdr));
        st = stream_find(h, hdr.id);
        if (!st || st->closing)
                return 0;       /* it went away meanwhile */
        if (first) {
                st->dropped_pending += hdr.dropped;
                h->dropped_feed += hdr.dropped;
        }
        if (len == sizeof(hdr) || stream_append(st, data + sizeof(hdr), len - sizeof(hdr))) {
                h->events_sent += hdr.events;
                stream_wake(st);
                return 0;
        }
        if (!st->slow) {
                if (first) {
                        h->held_since_ms = h->held_check_ms = now;
                        h->held_mark = st->sent_bytes;
                        stream_wake(st);
                        return -EAGAIN;
                }
                if (now - h->held_since_ms < HOLD_MAX_MS &&
                    (now - h->held_check_ms < HOLD_CHECK_MS || st->sent_bytes != h->held_mark)) {
                        if (now - h->held_check_ms >= HOLD_CHECK_MS) {
                                h->held_check_ms = now;
                                h->held_mark = st->sent_bytes;
                        }
                        stream_wake(st);
                        return -EAGAIN;
                }
                st->slow = true;
        }
        st->dropped_pending += hdr.events;
        h->dropped_slow += hdr.events;
        stream_wake(st);
        return 0;
}

static void events_pump(ApiStreamHub *h) {
        for (;;) {
                bool first = !h->has_held;

                if (first) {
                        if (zmq_msg_recv(&h->held, h->events_pull, ZMQ_DONTWAIT) < 0)
                                return;
                        h->has_held = true;
                }
                if (deliver(h, zmq_msg_data(&h->held), zmq_msg_size(&h->held), first) < 0) {
                        /* Let MHD write; look again shortly (ZMQ_FD will not fire for
                         * messages already queued). */
                        (void) sd_event_source_set_time_relative(h->retry_src,
                                                                 HOLD_RETRY_MS * 1000u);
                        (void) sd_event_source_set_enabled(h->retry_src, SD_EVENT_ONESHOT);
                        return;
                }
                zmq_msg_close(&h->held);
                zmq_msg_init(&h->held);
                h->has_held = false;
        }
}

static int on_events(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        events_pump(userdata);
        return 0;
}

static int on_events_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        events_pump(userdata);
        return 0;
}

static int on_keepalive(sd_event_source *s, uint64_t usec, void *userdata) {
        ApiStreamHub *h = userdata;
        uint64_t now = now_mono_ms();
        static const char ka[] = ": keepalive\n\n";

        for (ApiStream *st = h->streams; st; st = st->next)
                if (!st->closing && st->len == st->off &&
                    now - st->last_write_ms >= h->cfg.keepalive_ms &&
                    stream_append(st, ka, sizeof(ka) - 1))
                        stream_wake(st);
        (void) sd_event_source_set_time_relative(s, h->cfg.keepalive_ms * 1000u / 2);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int api_stream_open(ApiStreamHub *h, EvMhd *mhd, struct MHD_Connection *conn,
                    const char *expr, struct MHD_Response **ret) {
        _cleanup_free_ char *err = NULL, *hello = NULL;
        FlowFilter *filter = NULL;
        struct MHD_Response *resp;
        ApiPodSet *set;
        ApiStream *st;
        size_t feeds = 0, expr_len = strlen(expr);
        Cmd cmd = { .type = CMD_ADD, .expr_len = (uint32_t) expr_len };
        json_t *j;
        zmq_msg_t msg;
        int r;

        assert(h && mhd && conn && expr && ret);
        if (h->n_streams >= h->cfg.max_streams) {
                h->refused++;
                return -EBUSY;
        }
        r = flow_filter_compile(expr, &filter, &err);
        if (r < 0)
                return r;
        flow_filter_free(filter);

        set = api_pod_dir_get(h->dir);
        for (size_t i = 0; i < set->n; i++)
                feeds += set->pods[i].feed[0] != 0;
        api_pod_set_unref(set);
        j = json_pack("{s:I,s:s}", "pods", (json_int_t) feeds, "filter", expr);
        hello = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        st = calloc(1, sizeof(*st));
        if (!st || !hello) {
                free(st);
                return -ENOMEM;
        }
        *st = (ApiStream) { .hub = h, .mhd = mhd, .conn = conn, .id = ++h->next_id,
                            .hup_fd = -1 };
        {
                char head[64];
                int k = snprintf(head, sizeof(head), "retry: 3000\n\nevent: hello\ndata: ");

                if (!stream_append(st, head, (size_t) k) ||
                    !stream_append(st, hello, strlen(hello)) || !stream_append(st, "\n\n", 2)) {
                        free(st->buf);
                        free(st);
                        return -ENOMEM;
                }
        }
        cmd.id = st->id;
        if (zmq_msg_init_size(&msg, sizeof(cmd) + expr_len) < 0) {
                free(st->buf);
                free(st);
                return -ENOMEM;
        }
        memcpy(zmq_msg_data(&msg), &cmd, sizeof(cmd));
        memcpy((char *) zmq_msg_data(&msg) + sizeof(cmd), expr, expr_len);
        if (zmq_msg_send(&msg, h->cmd_push, ZMQ_DONTWAIT) < 0) {
                r = -zmq_errno();
                zmq_msg_close(&msg);
                free(st->buf);
                free(st);
                return r;
        }
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READ_BLOCK, stream_read, st,
                                                 stream_free);
        if (!resp) {
                /* The feed thread knows it already: tell it to forget. */
                cmd = (Cmd) { .type = CMD_DEL, .id = st->id };
                (void) zmq_send(h->cmd_push, &cmd, sizeof(cmd), ZMQ_DONTWAIT);
                free(st->buf);
                free(st);
                return -ENOMEM;
        }
        stream_watch_client(st);
        st->next = h->streams;
        if (h->streams)
                h->streams->prev = st;
        h->streams = st;
        h->n_streams++;
        h->opened++;
        log_debug("Stream %" PRIu64 " opened filter='%s' (%zu open)", st->id, expr, h->n_streams);
        *ret = resp;
        return 0;
}

void api_stream_hub_shutdown(ApiStreamHub *h) {
        if (!h)
                return;
        for (ApiStream *st = h->streams; st; st = st->next) {
                st->closing = true;
                st->off = st->len = 0;
                st->dropped_pending = 0;
                stream_wake(st);
        }
}

size_t api_stream_count(const ApiStreamHub *h) {
        return h ? h->n_streams : 0;
}

void api_stream_render_metrics(ApiStreamHub *h, MetricsBuf *b) {
        metrics_header(b, "ipfixd_api_streams", "gauge", "/flows/stream clients connected now.");
        metrics_sample(b, "ipfixd_api_streams", NULL, h->n_streams);
        metrics_header(b, "ipfixd_api_streams_opened_total", "counter", "Streams opened.");
        metrics_sample(b, "ipfixd_api_streams_opened_total", NULL, h->opened);
        metrics_header(b, "ipfixd_api_streams_refused_total", "counter",
                       "Streams refused with 503 because max_streams were open.");
        metrics_sample(b, "ipfixd_api_streams_refused_total", NULL, h->refused);
        metrics_header(b, "ipfixd_api_stream_events_total", "counter",
                       "Flow events queued to stream clients.");
        metrics_sample(b, "ipfixd_api_stream_events_total", NULL, h->events_sent);
        metrics_header(b, "ipfixd_api_stream_dropped_total", "counter",
                       "Flow events dropped (and announced to the client) by cause.");
        metrics_sample(b, "ipfixd_api_stream_dropped_total", "cause=\"slow_client\"",
                       h->dropped_slow);
        metrics_sample(b, "ipfixd_api_stream_dropped_total", "cause=\"api_busy\"",
                       h->dropped_feed);
        metrics_header(b, "ipfixd_api_stream_feeds", "gauge",
                       "Pod feeds subscribed to (0 while no stream is open).");
        metrics_sample(b, "ipfixd_api_stream_feeds", NULL, atomic_load(&h->feeds_connected));
        metrics_header(b, "ipfixd_api_stream_feed_batches_total", "counter",
                       "Flow batches received from the pods' feeds.");
        metrics_sample(b, "ipfixd_api_stream_feed_batches_total", NULL,
                       atomic_load(&h->feed_messages));
        metrics_header(b, "ipfixd_api_stream_feed_records_total", "counter",
                       "Flow records received from the pods' feeds.");
        metrics_sample(b, "ipfixd_api_stream_feed_records_total", NULL,
                       atomic_load(&h->feed_records));
        metrics_header(b, "ipfixd_api_stream_feed_bad_total", "counter",
                       "Feed messages that were not a valid [pipeline][flow batch] message.");
        metrics_sample(b, "ipfixd_api_stream_feed_bad_total", NULL, atomic_load(&h->feed_bad));
        metrics_header(b, "ipfixd_api_stream_feed_lost_total", "counter",
                       "Feed batches not filtered for lack of memory (no stream saw them).");
        metrics_sample(b, "ipfixd_api_stream_feed_lost_total", NULL, atomic_load(&h->feed_lost));
}

int api_stream_hub_new(ApiStreamHub **ret, sd_event *e, void *zctx, ApiPodDir *dir,
                       const ApiStreamConfig *cfg) {
        ApiStreamHub *h;
        sigset_t all, old;
        size_t fdlen;
        int r, fd;

        assert(ret && e && zctx && dir && cfg);
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        zmq_msg_init(&h->held);
        h->event = sd_event_ref(e);
        h->zctx = zctx;
        h->dir = dir;
        h->cfg = *cfg;
        h->cfg.keepalive_ms = MAX(h->cfg.keepalive_ms, (uint64_t) 100);
        h->pipeline = strdup(cfg->pipeline ? cfg->pipeline : "");
        if (!h->pipeline) {
                r = -ENOMEM;
                goto fail;
        }
        h->cfg.pipeline = h->pipeline;
        r = ev_zmq_bind(zctx, ZMQ_PUSH, CMD_ENDPOINT, 0, &h->cmd_push);
        if (r >= 0)
                r = ev_zmq_bind(zctx, ZMQ_PULL, EVENTS_ENDPOINT, API_STREAM_QUEUE, &h->events_pull);
        if (r < 0)
                goto fail;
        fdlen = sizeof(fd);
        if (zmq_getsockopt(h->events_pull, ZMQ_FD, &fd, &fdlen) < 0) {
                r = -zmq_errno();
                goto fail;
        }
        r = sd_event_add_io(e, &h->events_src, fd, EPOLLIN, on_events, h);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &h->retry_src, CLOCK_MONOTONIC,
                                               HOLD_RETRY_MS * 1000u, 0, on_events_retry, h);
        if (r >= 0)
                r = sd_event_source_set_enabled(h->retry_src, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &h->keepalive_src, CLOCK_MONOTONIC,
                                               h->cfg.keepalive_ms * 1000u / 2, 0, on_keepalive,
                                               h);
        if (r < 0)
                goto fail;
        (void) sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&h->thread, NULL, feed_main, h);
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto fail;
        h->thread_started = true;
        /* Wait (at start-up, before serving) until the feed thread is connected. */
        {
                EventsHeader ready;
                int timeout = 5000;

                (void) zmq_setsockopt(h->events_pull, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
                if (zmq_recv(h->events_pull, &ready, sizeof(ready), 0) != (int) sizeof(ready) ||
                    ready.id != 0) {
                        r = -ETIMEDOUT;
                        log_error("The stream feed thread did not start");
                        (void) zmq_ctx_shutdown(zctx);  /* so that it can be joined */
                        goto fail;
                }
                /* Read on to EAGAIN: ZMQ_FD signals only after a read found nothing. */
                events_pump(h);
        }
        *ret = h;
        return 0;
fail:
        api_stream_hub_free(h);
        return r;
}

ApiStreamHub *api_stream_hub_free(ApiStreamHub *h) {
        if (!h)
                return NULL;
        assert(h->n_streams == 0);
        /* The thread leaves on ETERM once the context is shut down (api_free() does it);
         * joining before that would wait forever. */
        if (h->thread_started)
                (void) pthread_join(h->thread, NULL);
        h->events_src = sd_event_source_disable_unref(h->events_src);
        h->keepalive_src = sd_event_source_disable_unref(h->keepalive_src);
        h->retry_src = sd_event_source_disable_unref(h->retry_src);
        zmq_msg_close(&h->held);
        if (h->cmd_push)
                (void) zmq_close(h->cmd_push);
        if (h->events_pull)
                (void) zmq_close(h->events_pull);
        sd_event_unref(h->event);
        free(h->pipeline);
        free(h);
        return NULL;
}
