/* SPDX-License-Identifier: MIT */
/*
 * worker.c - the collector's data path on one thread.
 *
 * TCP: a connection's bytes are read into the worker's read buffer, behind whatever partial
 * message the connection stashed from its previous read; complete messages are framed and
 * decoded in place; the tail (a partial message, or messages left undecoded because the
 * output backed up) is stashed on the connection. When the output queue is non-empty the
 * worker stops reading TCP connections (flow control pushes back on exporters) and resumes
 * them when ev-zmq reports it drained. A stash never exceeds one read plus one message.
 *
 * UDP: recvmmsg() in batches; NetFlow v9 is translated; each (source address, source port,
 * ODID) has a session with its own decoder, expired after udp_session_timeout_s idle. When
 * the output is backed up, UDP records are decoded (templates must still be learned) and
 * dropped with a counter.
 *
 * Batches: records are decoded straight into the current batch buffer, which is handed to
 * ZeroMQ zero-copy when full or after batch_flush_ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "datagram.h"
#include "ev-zmq.h"
#include "listener.h"
#include "log.h"
#include "macro.h"
#include "netflow9.h"
#include "proxy-proto.h"
#include "wire.h"
#include "worker.h"

#define READ_CHUNK (256u * 1024u)
#define UDP_BATCH 32u
#define UDP_BUCKETS 4096u
#define UDP_DROP_PENDING 4u
#define ACCEPT_BURST 64
#define MAX_LISTENERS COLLECTOR_MAX_LISTENERS
#define PUBLISH_USEC (1000u * 1000u)
#define SWEEP_USEC (10u * 1000u * 1000u)
#define HOLD_TICK_USEC (250u * 1000u)
#define PROXY_TIMEOUT_USEC (5u * 1000u * 1000u)
#define INBOX_MAX 4096u

typedef struct Change {
        ExporterKey key;
        uint16_t tid;
} Change;

typedef struct Conn Conn;
struct Conn {
        Worker *w;
        int fd;
        sd_event_source *io;
        ExporterKey peer;       /* odid filled per decoder */
        uint16_t port;
        char name[64];
        uint8_t *stash;
        size_t stash_len;
        bool paused;
        bool proxy_pending;     /* a PROXY header must come first */
        bool announced;         /* on_exporter(connected) was reported */
        uint8_t listen;         /* index of the listener it was accepted on */
        uint64_t accepted_usec;
        Decoder **decs;
        size_t n_decs;
        Conn *prev, *next;              /* all connections */
        Conn *pprev, *pnext;            /* paused connections */
};

typedef struct UdpSession UdpSession;
struct UdpSession {
        UdpSession *next;
        ExporterKey key;
        uint16_t port;
        uint64_t last_usec;
        uint8_t listen;
        Decoder *dec;
};

/* Totals of exporter sessions that ended, so per-exporter counters survive reconnects. */
typedef struct Retired Retired;
struct Retired {
        Retired *next;
        ExporterKey key;
        bool tcp;
        DecoderStats stats;
};
#define RETIRED_BUCKETS 1024u
#define MAX_RETIRED 4096u
#define MAX_ORPHANS 1024u

typedef struct Listen {
        Worker *w;
        uint8_t index;                  /* the same on every worker: the config's order */
        ListenerTransport transport;
        bool proxy;
        int fd;
        sd_event_source *src;
        /* Written by the worker only, read by any thread (relaxed: plain counters). */
        atomic_uint_fast64_t accepted;  /* TCP connections accepted; UDP: sessions created */
        atomic_uint_fast64_t records;   /* records decoded from what arrived here */
} Listen;

typedef struct Orphan {
        Decoder *dec;
        uint8_t listen;
} Orphan;

struct Worker {
        unsigned index;
        WorkerShared *shared;
        const CollectorConfig *cfg;
        pthread_t thread;
        bool started;
        sd_event *event;
        int stop_fd;
        sd_event_source *stop_src, *flush_timer, *publish_timer, *sweep_timer;
        Listen listens[MAX_LISTENERS];
        size_t n_listens;
        DecoderCtx *dctx;
        CollectorCounters c;
        EvZmqSender *out;
        void *batch;
        uint32_t batch_n;
        uint64_t seq;
        bool cur_tcp;
        bool draining;
        uint64_t drain_deadline_usec;   /* shutdown_timeout_ms after the stop request */
        uint8_t *rbuf;
        size_t rbuf_cap;
        Conn *conns, *paused;
        UdpSession *udp[UDP_BUCKETS];
        size_t n_udp;
        Retired *retired[RETIRED_BUCKETS];
        size_t n_retired;
        /* Decoders of closed TCP sessions that still hold data sets: the template may yet
         * come on another session of the exporter. Freed when their hold queue empties. */
        Orphan *orphans;
        size_t n_orphans;
        struct mmsghdr mm[UDP_BATCH];
        struct iovec iov[UDP_BATCH];
        struct sockaddr_storage addrs[UDP_BATCH];
        uint8_t *ubuf;
        uint8_t nf9buf[NETFLOW9_MAX_OUTPUT];   /* always large enough (netflow9.h) */

        /* Template changes reported by the store, from any thread. */
        pthread_mutex_t inbox_lock;
        Change *inbox;
        size_t n_inbox;
        bool inbox_overflow;
        atomic_uint_fast64_t inbox_dropped;     /* written by other threads */
        int inbox_fd;
        sd_event_source *inbox_src, *hold_timer;

        atomic_bool finished;           /* worker_main() returned (after a stop) */

        pthread_mutex_t lock;           /* guards the snapshot below */
        CollectorCounters snap;
        ExporterSnapshot *snap_exp;
        size_t snap_n;
};

static bool output_blocked(const Worker *w) {
        return ev_zmq_sender_pending(w->out) > 0;
}

/* ---- output ---------------------------------------------------------------------------- */

/* What is left of shutdown_timeout_ms since the stop request (one budget for all waits). */
static int drain_ms_left(const Worker *w) {
        uint64_t now = now_usec();
        return now >= w->drain_deadline_usec ? 0 : (int) ((w->drain_deadline_usec - now) / 1000u);
}

static void emit_batch(Worker *w) {
        uint32_t n = w->batch_n;
        size_t len;
        int r;

        if (!w->batch || n == 0)
                return;
        len = flow_batch_finish(w->batch, n, (uint32_t) w->cfg->collector_id, w->seq++);
        w->batch_n = 0;
        if (w->draining &&
            ev_zmq_sender_pending(w->out) + 1 >= ev_zmq_sender_max_pending(w->out))
                /* Shutting down: the loop is over, waiting here delays nothing else. */
                (void) ev_zmq_sender_wait(w->out, ev_zmq_sender_max_pending(w->out) / 2,
                                          drain_ms_left(w));
        r = ev_zmq_sender_send(w->out, TAKE_PTR(w->batch), len);
        if (r < 0) {
                w->c.drop_output_records += n;
                log_ratelimited(LOG_WARNING, "output-full",
                                "Output queue full, %u records dropped worker=%u", n, w->index);
                return;
        }
        w->c.batches_sent++;
        w->c.records_sent += n;
}

static FlowRecord *on_reserve(void *userdata) {
        Worker *w = userdata;

        if (w->batch && w->batch_n >= (uint32_t) w->cfg->batch_records)
                emit_batch(w);
        if (!w->batch) {
                /* TCP never drops here: reading stops while the queue is non-empty, so at
                 * most one message's records arrive after that (max_pending covers it). */
                if (!w->cur_tcp && ev_zmq_sender_pending(w->out) >= UDP_DROP_PENDING) {
                        w->c.drop_backpressure_records++;
                        return NULL;
                }
                w->batch = malloc(flow_batch_size((uint32_t) w->cfg->batch_records));
                if (!w->batch) {
                        w->c.drop_output_records++;
                        return NULL;
                }
                w->batch_n = 0;
        }
        return &flow_batch_records(w->batch)[w->batch_n++];
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        emit_batch(w);
        (void) ev_zmq_sender_flush(w->out);
        (void) sd_event_source_set_time_relative(s, (uint64_t) w->cfg->batch_flush_ms * 1000u);
        return 0;
}

/* ---- per-listener counters and exporter events ------------------------------------------ */

static void report_exporter(Worker *w, const ExporterKey *k, bool tcp, bool connected) {
        if (w->shared->on_exporter)
                w->shared->on_exporter(w->shared->on_exporter_userdata, k, tcp, connected);
}

/* Records decoded since @before (a value of w->c.records) came from listener @idx. */
static void listen_add_records(Worker *w, uint8_t idx, uint64_t before) {
        if (idx < w->n_listens && w->c.records > before)
                atomic_fetch_add_explicit(&w->listens[idx].records, w->c.records - before,
                                          memory_order_relaxed);
}

/* ---- TCP connections ------------------------------------------------------------------- */

/* Adds a finished session's counters to its exporter's totals. */
static void retire(Worker *w, const Decoder *d, bool tcp) {
        const ExporterKey *k = decoder_get_key(d);
        const DecoderStats *st = decoder_get_stats(d);
        uint32_t b = exporter_key_hash(k, tcp) % RETIRED_BUCKETS;
        Retired *r;

        for (r = w->retired[b]; r; r = r->next)
                if (r->tcp == tcp && exporter_key_equal(&r->key, k))
                        break;
        if (!r) {
                if (w->n_retired >= MAX_RETIRED || !(r = calloc(1, sizeof(*r)))) {
                        w->c.exporters_untracked++;
                        return;
                }
                r->key = *k;
                r->tcp = tcp;
                r->next = w->retired[b];
                w->retired[b] = r;
                w->n_retired++;
        }
        r->stats.messages += st->messages;
        r->stats.records += st->records;
        r->stats.bytes += st->bytes;
        r->stats.errors += st->errors;
        r->stats.missing_template_sets += st->missing_template_sets;
        r->stats.last_seen_ms = MAX(r->stats.last_seen_ms, st->last_seen_ms);
}

static void conn_free(Conn *c) {
        Worker *w = c->w;

        if (c->paused) {
                if (c->pprev)
                        c->pprev->pnext = c->pnext;
                else
                        w->paused = c->pnext;
                if (c->pnext)
                        c->pnext->pprev = c->pprev;
        }
        if (c->prev)
                c->prev->next = c->next;
        else
                w->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        for (size_t i = 0; i < c->n_decs; i++) {
                retire(w, c->decs[i], true);
                if (decoder_has_held(c->decs[i]) && !w->draining && w->n_orphans < MAX_ORPHANS) {
                        Orphan *n = realloc(w->orphans, (w->n_orphans + 1) * sizeof(*n));
                        if (n) {
                                w->orphans = n;
                                w->orphans[w->n_orphans++] = (Orphan) { .dec = c->decs[i],
                                                                        .listen = c->listen };
                                continue;
                        }
                }
                decoder_free(c->decs[i]);
        }
        if (c->announced)
                report_exporter(w, &c->peer, true, false);
        free(c->decs);
        free(c->stash);
        free(c);
        w->c.tcp_closed++;
        atomic_fetch_sub(&w->shared->open_connections, 1);
}

/* @count: a new pause (counted); false when a resumed connection goes straight back. */
static void conn_pause_counted(Conn *c, bool count) {
        Worker *w = c->w;
        if (c->paused)
                return;
        if (c->io)
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        c->paused = true;
        c->pprev = NULL;
        c->pnext = w->paused;
        if (w->paused)
                w->paused->pprev = c;
        w->paused = c;
        if (count)
                w->c.tcp_paused++;
}

static void conn_pause(Conn *c) {
        conn_pause_counted(c, true);
}

static Decoder *conn_decoder(Conn *c, uint32_t odid) {
        Worker *w = c->w;
        ExporterKey k = c->peer;
        Decoder *d;
        Decoder **n;

        for (size_t i = 0; i < c->n_decs; i++)
                if (decoder_get_key(c->decs[i])->odid == odid)
                        return c->decs[i];
        if (c->n_decs >= (size_t) w->cfg->max_odids_per_session)
                return NULL;
        k.odid = odid;
        if (decoder_new(w->dctx, &k, &d) < 0)
                return NULL;
        n = realloc(c->decs, (c->n_decs + 1) * sizeof(*n));
        if (!n) {
                decoder_free(d);
                return NULL;
        }
        c->decs = n;
        c->decs[c->n_decs++] = d;
        return d;
}

/* Decodes complete messages from @p and stashes the rest. Return: 0, or -errno when the
 * stream is broken and the connection must close. */
static int conn_consume(Conn *c, const uint8_t *p, size_t len) {
        Worker *w = c->w;
        uint64_t before = w->c.records;
        size_t off = 0;
        int r = 0;

        w->cur_tcp = true;
        while (off < len) {
                size_t mlen;
                Decoder *d;

                if (output_blocked(w) && !w->draining)
                        break;
                r = ipfix_frame(p + off, len - off, (size_t) w->cfg->max_message_size, &mlen);
                if (r <= 0)
                        break;
                r = 0;
                d = conn_decoder(c, wire_read_u32(p + off + 12));
                if (d)
                        (void) decoder_feed(d, p + off, mlen, 0);
                else
                        w->c.drop_odid_limit_messages++;
                off += mlen;
        }
        w->cur_tcp = false;
        listen_add_records(w, c->listen, before);
        if (r < 0) {
                if (r == -EPROTO)
                        w->c.err_version++;
                else
                        w->c.err_length++;
                log_ratelimited(LOG_WARNING, "tcp-framing",
                                "Closing connection, stream is not valid IPFIX: %s peer=%s",
                                r == -EPROTO ? "version is not 10" :
                                r == -EMSGSIZE ? "message longer than max_message_size" :
                                "message length below 16", c->name);
                return r;
        }
        if (off < len) {
                uint8_t *s = malloc(len - off);
                if (!s)
                        return -ENOMEM;
                memcpy(s, p + off, len - off);
                c->stash = s;
                c->stash_len = len - off;
        }
        return 0;
}

static void exporter_key_from_sockaddr(const struct sockaddr_storage *ss, ExporterKey *k,
                                       uint16_t *port);

/* Reads the PROXY header at the start of @p. Return: octets it took (> 0, and
 * c->proxy_pending cleared), 0 when incomplete (stashed), or -errno to reject. */
static int conn_proxy_header(Conn *c, const uint8_t *p, size_t len, bool eof) {
        Worker *w = c->w;
        ProxyInfo pi;
        int r = proxy_parse(p, len, &pi);

        if (r == 0 && !eof) {
                uint8_t *s = malloc(len);       /* len < PROXY_MAX_HEADER: proxy_parse caps it */
                if (!s)
                        return -ENOMEM;
                memcpy(s, p, len);
                c->stash = s;
                c->stash_len = len;
                return 0;
        }
        if (r <= 0) {
                w->c.tcp_proxy_rejected++;
                log_ratelimited(LOG_WARNING, "proxy-header",
                                "Rejecting connection without a valid PROXY protocol header "
                                "peer=%s", c->name);
                return r < 0 ? r : -EBADMSG;
        }
        if (pi.family == AF_INET || pi.family == AF_INET6) {
                uint16_t sport;
                exporter_key_from_sockaddr(&pi.src, &c->peer, &sport);
                (void) sockaddr_format((struct sockaddr *) &pi.src, c->name, sizeof(c->name));
                c->port = sport;
        }       /* LOCAL / UNKNOWN: the socket peer stays the identity */
        c->proxy_pending = false;
        w->c.tcp_proxy_accepted++;
        c->announced = true;
        report_exporter(w, &c->peer, true, true);
        return r;
}

static int on_conn_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;
        Worker *w = c->w;
        size_t have = c->stash_len;
        bool eof;
        ssize_t n;

        if (output_blocked(w) && !w->draining) {
                conn_pause(c);
                return 0;
        }
        n = read(fd, w->rbuf + have, READ_CHUNK);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                log_ratelimited(LOG_NOTICE, "tcp-read", "Read failed, closing: %m peer=%s",
                                c->name);
                conn_free(c);
                return 0;
        }
        if (have > 0)
                memcpy(w->rbuf, c->stash, have);
        free(TAKE_PTR(c->stash));
        c->stash_len = 0;
        w->c.bytes += (uint64_t) n;
        eof = n == 0;
        if (c->proxy_pending) {
                int r = conn_proxy_header(c, w->rbuf, have + (size_t) n, eof);
                if (r < 0) {
                        conn_free(c);
                        return 0;
                }
                if (c->proxy_pending)
                        return 0;       /* header incomplete: stashed */
                have += (size_t) n;
                memmove(w->rbuf, w->rbuf + r, have - (size_t) r);
                n = (ssize_t) (have - (size_t) r);
                have = 0;
        }
        if (conn_consume(c, w->rbuf, have + (size_t) n) < 0) {
                conn_free(c);
                return 0;
        }
        if (eof) {
                if (c->stash_len > 0 && output_blocked(w) && !w->draining) {
                        /* EOF with undecoded complete messages: decode them on resume. */
                        c->io = sd_event_source_disable_unref(c->io);
                        conn_pause(c);
                        return 0;
                }
                if (c->stash_len > 0)
                        w->c.tcp_truncated_close++;
                conn_free(c);
                return 0;
        }
        if (output_blocked(w) && !w->draining)
                conn_pause(c);
        return 0;
}

typedef enum ResumeResult {
        RESUME_READING,
        RESUME_BLOCKED,
        RESUME_CLOSED,
} ResumeResult;

/* Continues a paused connection (already off the paused list). */
static ResumeResult conn_resume(Conn *c) {
        Worker *w = c->w;
        size_t len = c->stash_len;
        bool eof = c->io == NULL;

        if (len > 0) {
                memcpy(w->rbuf, c->stash, len);
                free(TAKE_PTR(c->stash));
                c->stash_len = 0;
                if (conn_consume(c, w->rbuf, len) < 0) {
                        conn_free(c);
                        return RESUME_CLOSED;
                }
        }
        if (output_blocked(w))
                return RESUME_BLOCKED;
        if (eof) {
                if (c->stash_len > 0)
                        w->c.tcp_truncated_close++;
                conn_free(c);
                return RESUME_CLOSED;
        }
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_ON);
        return RESUME_READING;
}

static void on_output_drained(void *userdata) {
        Worker *w = userdata;

        while (w->paused && !output_blocked(w)) {
                Conn *c = w->paused;
                w->paused = c->pnext;
                if (w->paused)
                        w->paused->pprev = NULL;
                c->paused = false;
                c->pnext = c->pprev = NULL;
                if (conn_resume(c) == RESUME_BLOCKED) {
                        conn_pause_counted(c, false);   /* blocked again mid-stash */
                }
        }
}

static void exporter_key_from_sockaddr(const struct sockaddr_storage *ss, ExporterKey *k,
                                       uint16_t *port) {
        memset(k, 0, sizeof(*k));
        if (ss->ss_family == AF_INET) {
                const struct sockaddr_in *s = (const struct sockaddr_in *) ss;
                flow_addr_set_v4(k->addr, (const uint8_t *) &s->sin_addr);
                k->family = 4;
                *port = ntohs(s->sin_port);
        } else {
                const struct sockaddr_in6 *s = (const struct sockaddr_in6 *) ss;
                memcpy(k->addr, &s->sin6_addr, 16);
                k->family = flow_addr_is_v4mapped(k->addr) ? 4 : 6;
                *port = ntohs(s->sin6_port);
        }
}

static int on_tcp_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Listen *l = userdata;
        Worker *w = l->w;
        bool proxy = l->proxy;

        for (int i = 0; i < ACCEPT_BURST; i++) {
                struct sockaddr_storage ss;
                socklen_t sl = sizeof(ss);
                _cleanup_close_ int cfd = -EBADF;
                Conn *c;
                int r;

                cfd = accept4(fd, (struct sockaddr *) &ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_ratelimited(LOG_WARNING, "accept", "accept() failed: %m");
                        return 0;
                }
                if (atomic_fetch_add(&w->shared->open_connections, 1) >=
                    (unsigned) w->cfg->max_connections) {
                        atomic_fetch_sub(&w->shared->open_connections, 1);
                        w->c.tcp_rejected_limit++;
                        log_ratelimited(LOG_WARNING, "tcp-limit",
                                        "Refusing connection: max_connections=%" PRId64
                                        " reached", w->cfg->max_connections);
                        continue;
                }
                c = calloc(1, sizeof(*c));
                if (!c) {
                        atomic_fetch_sub(&w->shared->open_connections, 1);
                        continue;
                }
                c->w = w;
                c->listen = l->index;
                c->proxy_pending = proxy;
                c->accepted_usec = now_usec();
                exporter_key_from_sockaddr(&ss, &c->peer, &c->port);
                (void) sockaddr_format((struct sockaddr *) &ss, c->name, sizeof(c->name));
                r = sd_event_add_io(w->event, &c->io, cfd, EPOLLIN, on_conn_readable, c);
                if (r < 0) {
                        free(c);
                        atomic_fetch_sub(&w->shared->open_connections, 1);
                        continue;
                }
                c->fd = TAKE_FD(cfd);
                c->next = w->conns;
                if (w->conns)
                        w->conns->prev = c;
                w->conns = c;
                w->c.tcp_accepted++;
                atomic_fetch_add_explicit(&l->accepted, 1, memory_order_relaxed);
                if (!proxy) {   /* behind a proxy, the exporter is known from the header */
                        c->announced = true;
                        report_exporter(w, &c->peer, true, true);
                }
                log_debug("Exporter connected peer=%s worker=%u", c->name, w->index);
        }
        return 0;
}

/* ---- UDP ------------------------------------------------------------------------------- */

static Decoder *udp_session(Worker *w, const ExporterKey *k, uint16_t port, uint8_t listen) {
        uint32_t b = exporter_key_hash(k, port) % UDP_BUCKETS;
        UdpSession *s;

        for (s = w->udp[b]; s; s = s->next)
                if (s->port == port && exporter_key_equal(&s->key, k)) {
                        s->last_usec = now_usec();
                        return s->dec;
                }
        if (w->n_udp >= (size_t) w->cfg->max_udp_sessions)
                return NULL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        if (decoder_new(w->dctx, k, &s->dec) < 0) {
                free(s);
                return NULL;
        }
        s->key = *k;
        s->port = port;
        s->listen = listen;
        s->last_usec = now_usec();
        s->next = w->udp[b];
        w->udp[b] = s;
        w->n_udp++;
        if (listen < w->n_listens)
                atomic_fetch_add_explicit(&w->listens[listen].accepted, 1, memory_order_relaxed);
        report_exporter(w, k, false, true);
        return s->dec;
}

typedef struct UdpOrigin {
        Worker *w;
        uint8_t listen;
        ExporterKey key;
        uint16_t port;
} UdpOrigin;

static void udp_message(void *userdata, const uint8_t *msg, size_t len, uint64_t init_ms) {
        UdpOrigin *o = userdata;
        Worker *w = o->w;
        Decoder *d;

        o->key.odid = wire_read_u32(msg + 12);
        d = udp_session(w, &o->key, o->port, o->listen);
        if (!d) {
                w->c.drop_session_limit_messages++;
                log_ratelimited(LOG_WARNING, "udp-limit",
                                "UDP message dropped: max_udp_sessions=%" PRId64 " reached",
                                w->cfg->max_udp_sessions);
                return;
        }
        (void) decoder_feed(d, msg, len, init_ms);
}

static void udp_datagram(Worker *w, uint8_t listen, const struct sockaddr_storage *ss,
                         const uint8_t *p, size_t len) {
        UdpOrigin o = { .w = w, .listen = listen };
        char peer[64];
        int r;

        exporter_key_from_sockaddr(ss, &o.key, &o.port);
        r = datagram_dispatch(p, len, (size_t) w->cfg->max_message_size, w->nf9buf, &w->c,
                              udp_message, &o);
        if (r == -EPROTO)
                log_ratelimited(LOG_NOTICE, "udp-version",
                                "Ignoring datagram that is neither IPFIX nor NetFlow v9 peer=%s",
                                sockaddr_format((const struct sockaddr *) ss, peer, sizeof(peer)));
        else if (r < 0)
                log_ratelimited(LOG_NOTICE, "udp-malformed",
                                "Malformed datagram of %zu octets, ignoring peer=%s", len,
                                sockaddr_format((const struct sockaddr *) ss, peer, sizeof(peer)));
}

static int on_udp_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Listen *l = userdata;
        Worker *w = l->w;
        uint64_t before = w->c.records;
        int n;

        for (unsigned i = 0; i < UDP_BATCH; i++) {
                w->iov[i] = (struct iovec) { .iov_base = w->ubuf + (size_t) i * 65536u,
                                             .iov_len = 65536u };
                w->mm[i].msg_hdr = (struct msghdr) {
                        .msg_name = &w->addrs[i], .msg_namelen = sizeof(w->addrs[i]),
                        .msg_iov = &w->iov[i], .msg_iovlen = 1,
                };
        }
        n = recvmmsg(fd, w->mm, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0)
                return 0;
        for (int i = 0; i < n; i++) {
                size_t len = w->mm[i].msg_len;
                w->c.udp_datagrams++;
                w->c.bytes += len;
                if (w->mm[i].msg_hdr.msg_flags & MSG_TRUNC) {
                        w->c.err_length++;
                        continue;
                }
                udp_datagram(w, l->index, &w->addrs[i], w->ubuf + (size_t) i * 65536u, len);
        }
        listen_add_records(w, l->index, before);
        return 0;
}

static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;
        uint64_t now = now_usec(), max_idle = (uint64_t) w->cfg->udp_session_timeout_s * 1000000u;

        for (size_t b = 0; b < UDP_BUCKETS; b++) {
                UdpSession **p = &w->udp[b];
                while (*p) {
                        UdpSession *e = *p;
                        if (now - e->last_usec > max_idle) {
                                *p = e->next;
                                report_exporter(w, &e->key, false, false);
                                retire(w, e->dec, false);
                                decoder_free(e->dec);
                                free(e);
                                w->n_udp--;
                        } else
                                p = &e->next;
                }
        }
        (void) sd_event_source_set_time_relative(s, SWEEP_USEC);
        return 0;
}

/* ---- template changes and held data ----------------------------------------------------- */

typedef void (*DecoderVisitFn)(Worker *w, Decoder *d, void *userdata);

static void for_each_decoder(Worker *w, DecoderVisitFn fn, void *userdata) {
        uint64_t before;

        for (Conn *c = w->conns; c; c = c->next)
                for (size_t i = 0; i < c->n_decs; i++) {
                        before = w->c.records;
                        w->cur_tcp = true;
                        fn(w, c->decs[i], userdata);
                        w->cur_tcp = false;
                        listen_add_records(w, c->listen, before);
                }
        for (size_t b = 0; b < UDP_BUCKETS; b++)
                for (UdpSession *e = w->udp[b]; e; e = e->next) {
                        before = w->c.records;
                        fn(w, e->dec, userdata);
                        listen_add_records(w, e->listen, before);
                }
        for (size_t i = 0; i < w->n_orphans;) {
                before = w->c.records;
                w->cur_tcp = true;
                fn(w, w->orphans[i].dec, userdata);
                w->cur_tcp = false;
                listen_add_records(w, w->orphans[i].listen, before);
                if (decoder_has_held(w->orphans[i].dec)) {
                        i++;
                        continue;
                }
                decoder_free(w->orphans[i].dec);        /* its totals were retired at close */
                w->orphans[i] = w->orphans[--w->n_orphans];
        }
}

static void visit_change(Worker *w, Decoder *d, void *userdata) {
        const Change *ch = userdata;
        const ExporterKey *k = decoder_get_key(d);

        if (!exporter_key_equal(k, &ch->key))
                return;
        if (ch->tid != 0)
                (void) decoder_refresh_template(d, ch->tid);
        else
                (void) decoder_refresh_all(d);
}

static void visit_retry(Worker *w, Decoder *d, void *userdata) {
        if (decoder_has_held(d))
                (void) decoder_retry_held(d);
}

static int on_inbox(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        Change *list;
        size_t n;
        bool overflow;
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
        pthread_mutex_lock(&w->inbox_lock);
        list = w->inbox;
        n = w->n_inbox;
        overflow = w->inbox_overflow;
        w->inbox = NULL;
        w->n_inbox = 0;
        w->inbox_overflow = false;
        pthread_mutex_unlock(&w->inbox_lock);

        for (size_t i = 0; i < n; i++)
                for_each_decoder(w, visit_change, &list[i]);
        if (overflow)   /* changes were lost: at least give every held set its chance */
                for_each_decoder(w, visit_retry, NULL);
        free(list);
        return 0;
}

void worker_template_changed(Worker *w, const ExporterKey *k, uint16_t tid) {
        uint64_t one = 1;

        pthread_mutex_lock(&w->inbox_lock);
        if (w->n_inbox >= INBOX_MAX) {
                w->inbox_overflow = true;
                atomic_fetch_add(&w->inbox_dropped, 1);
        }
        else {
                Change *n = (w->n_inbox & (w->n_inbox - 1)) == 0
                        ? realloc(w->inbox, MAX(w->n_inbox * 2, 8) * sizeof(*n))
                        : w->inbox;
                if (n) {
                        w->inbox = n;
                        w->inbox[w->n_inbox++] = (Change) { .key = *k, .tid = tid };
                } else {
                        w->inbox_overflow = true;
                        atomic_fetch_add(&w->inbox_dropped, 1);
                }
        }
        pthread_mutex_unlock(&w->inbox_lock);
        (void) !write(w->inbox_fd, &one, sizeof(one));
}

/* Held data is retried on every tick too, not only on change notifications: a fetch that
 * could not be sent (Redis down) or an event missed during a reconnect is made good here
 * (the store rate-limits its fetches per template). */
static void visit_expire(Worker *w, Decoder *d, void *userdata) {
        if (!decoder_has_held(d))
                return;
        decoder_expire_held(d, *(const uint64_t *) userdata);
        if (decoder_has_held(d))
                (void) decoder_retry_held(d);
}

static int on_hold_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;
        uint64_t now = now_usec();

        /* A PROXY header is sent at once by load balancers: a peer that has not completed
         * it within PROXY_TIMEOUT_USEC only holds a connection slot, and is dropped. */
        for (Conn *c = w->conns, *next; c; c = next) {
                next = c->next;
                if (c->proxy_pending && now - c->accepted_usec > PROXY_TIMEOUT_USEC) {
                        w->c.tcp_proxy_rejected++;
                        log_ratelimited(LOG_WARNING, "proxy-timeout",
                                        "No complete PROXY header within %u s, closing peer=%s",
                                        (unsigned) (PROXY_TIMEOUT_USEC / 1000000u), c->name);
                        conn_free(c);
                }
        }

        for_each_decoder(w, visit_expire, &now);
        (void) sd_event_source_set_time_relative(s, HOLD_TICK_USEC);
        return 0;
}

/* ---- snapshots, shutdown --------------------------------------------------------------- */

static void publish(Worker *w) {
        ExporterSnapshot *list;
        size_t n = 0;

        list = malloc(WORKER_MAX_LISTED_EXPORTERS * sizeof(*list));
        if (list) {
                for (Conn *c = w->conns; c; c = c->next)
                        for (size_t i = 0; i < c->n_decs && n < WORKER_MAX_LISTED_EXPORTERS; i++)
                                list[n++] = (ExporterSnapshot) {
                                        .key = *decoder_get_key(c->decs[i]), .port = c->port,
                                        .tcp = true, .stats = *decoder_get_stats(c->decs[i]) };
                for (size_t b = 0; b < UDP_BUCKETS; b++)
                        for (UdpSession *e = w->udp[b]; e && n < WORKER_MAX_LISTED_EXPORTERS;
                             e = e->next)
                                list[n++] = (ExporterSnapshot) { .key = e->key, .port = e->port,
                                                                 .tcp = false,
                                                                 .stats = *decoder_get_stats(e->dec) };
                for (size_t b = 0; b < RETIRED_BUCKETS; b++)
                        for (Retired *r = w->retired[b]; r && n < WORKER_MAX_LISTED_EXPORTERS;
                             r = r->next)
                                list[n++] = (ExporterSnapshot) { .key = r->key, .tcp = r->tcp,
                                                                 .stats = r->stats };
        }
        w->c.template_changes_dropped = atomic_load(&w->inbox_dropped);
        pthread_mutex_lock(&w->lock);
        w->snap = w->c;
        free(w->snap_exp);
        w->snap_exp = list;
        w->snap_n = list ? n : 0;
        pthread_mutex_unlock(&w->lock);
}

static int on_publish(sd_event_source *s, uint64_t usec, void *userdata) {
        publish(userdata);
        (void) sd_event_source_set_time_relative(s, PUBLISH_USEC);
        return 0;
}

static void drain(Worker *w) {
        w->draining = true;
        w->drain_deadline_usec = now_usec() + (uint64_t) w->cfg->shutdown_timeout_ms * 1000u;
        /* Stop accepting; take what the kernel already queued for us. */
        for (size_t i = 0; i < w->n_listens; i++) {
                Listen *l = &w->listens[i];
                if (l->transport == LISTENER_UDP)
                        for (int k = 0; k < 1024; k++) {
                                uint64_t before = w->c.udp_datagrams;
                                (void) on_udp_readable(l->src, l->fd, EPOLLIN, l);
                                if (w->c.udp_datagrams == before)
                                        break;
                        }
                l->src = sd_event_source_disable_unref(l->src);
                l->fd = safe_close(l->fd);
        }
        /* Decode every TCP byte already received, then close. */
        while (w->paused) {
                Conn *c = w->paused;
                w->paused = c->pnext;
                c->paused = false;
                if (c->stash_len > 0) {
                        size_t len = c->stash_len;
                        memcpy(w->rbuf, c->stash, len);
                        free(TAKE_PTR(c->stash));
                        c->stash_len = 0;
                        (void) conn_consume(c, w->rbuf, len);
                }
        }
        while (w->conns) {
                Conn *c = w->conns;
                for (int k = 0; k < 64 && c->io; k++) {
                        size_t before = (size_t) w->c.bytes;
                        (void) sd_event_source_set_enabled(c->io, SD_EVENT_ON);
                        if (on_conn_readable(c->io, c->fd, EPOLLIN, c), w->conns != c)
                                break;  /* closed (EOF or error) */
                        if ((size_t) w->c.bytes == before)
                                break;  /* nothing more queued */
                }
                if (w->conns == c) {
                        if (c->stash_len > 0)
                                w->c.tcp_truncated_close++;
                        conn_free(c);
                }
        }
        emit_batch(w);
}

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
        drain(w);
        return sd_event_exit(w->event, 0);
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        size_t left;
        int r;

        r = sd_event_loop(w->event);
        if (r < 0)
                log_error_errno(r, "Worker %u event loop failed: %m", w->index);
        left = ev_zmq_sender_drain(w->out, w->draining ? drain_ms_left(w)
                                                       : (int) w->cfg->shutdown_timeout_ms);
        w->c.drop_shutdown_batches += left;
        if (left > 0)
                log_warning("Worker %u: %zu batches not handed over within %" PRId64 " ms",
                            w->index, left, w->cfg->shutdown_timeout_ms);
        publish(w);
        atomic_store(&w->finished, true);
        return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

int worker_new(Worker **ret, unsigned index, WorkerShared *shared) {
        DecoderLimits lim = {
                .max_templates = (uint32_t) shared->cfg->max_templates,
                .max_unknown_elements = (uint32_t) shared->cfg->max_unknown_elements,
                .hold_ms = (uint32_t) shared->cfg->hold_ms,
                .hold_max_bytes = (uint32_t) shared->cfg->hold_max_bytes,
        };
        size_t max_pending;
        Worker *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->index = index;
        w->shared = shared;
        w->cfg = shared->cfg;
        w->stop_fd = -EBADF;
        w->inbox_fd = -EBADF;
        pthread_mutex_init(&w->lock, NULL);
        pthread_mutex_init(&w->inbox_lock, NULL);
        w->rbuf_cap = READ_CHUNK + (size_t) IPFIX_MAX_MESSAGE + 1;
        w->rbuf = malloc(w->rbuf_cap + READ_CHUNK);
        w->ubuf = malloc((size_t) UDP_BATCH * 65536u);
        if (!w->rbuf || !w->ubuf) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_new(&w->event);
        if (r < 0)
                goto fail;
        r = decoder_ctx_new(&w->dctx, &lim, shared->store, &w->c, on_reserve, w);
        if (r < 0)
                goto fail;
        /* One message can yield up to 65535 records after reading stopped; see on_reserve. */
        max_pending = IPFIX_MAX_MESSAGE / (size_t) w->cfg->batch_records + 2 * UDP_DROP_PENDING + 8;
        r = ev_zmq_sender_new(&w->out, w->event, shared->zctx, w->cfg->output,
                              (int) w->cfg->output_hwm, max_pending, on_output_drained, w);
        if (r < 0)
                goto fail;
        w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->stop_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(w->event, &w->stop_src, w->stop_fd, EPOLLIN, on_stop, w);
        if (r < 0)
                goto fail;
        w->inbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->inbox_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(w->event, &w->inbox_src, w->inbox_fd, EPOLLIN, on_inbox, w);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(w->event, &w->hold_timer, CLOCK_MONOTONIC, HOLD_TICK_USEC,
                                       50000, on_hold_tick, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(w->hold_timer, SD_EVENT_ON);
        r = sd_event_add_time_relative(w->event, &w->flush_timer, CLOCK_MONOTONIC,
                                       (uint64_t) w->cfg->batch_flush_ms * 1000u, 1000,
                                       on_flush_timer, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(w->flush_timer, SD_EVENT_ON);
        r = sd_event_add_time_relative(w->event, &w->publish_timer, CLOCK_MONOTONIC, PUBLISH_USEC,
                                       100000, on_publish, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(w->publish_timer, SD_EVENT_ON);
        r = sd_event_add_time_relative(w->event, &w->sweep_timer, CLOCK_MONOTONIC, SWEEP_USEC,
                                       1000000, on_sweep, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(w->sweep_timer, SD_EVENT_ON);
        *ret = w;
        return 0;
fail:
        worker_free(w);
        return r;
}

int worker_add_listener(Worker *w, ListenerTransport transport, bool proxy, int fd) {
        Listen *l;
        int r;

        if (w->n_listens >= MAX_LISTENERS) {
                safe_close(fd);
                return -E2BIG;
        }
        l = &w->listens[w->n_listens];
        l->w = w;
        l->index = (uint8_t) w->n_listens;
        r = sd_event_add_io(w->event, &l->src, fd, EPOLLIN,
                            transport == LISTENER_TCP ? on_tcp_accept : on_udp_readable, l);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        l->fd = fd;
        l->transport = transport;
        l->proxy = proxy;
        w->n_listens++;
        return 0;
}

int worker_start(Worker *w) {
        int r = pthread_create(&w->thread, NULL, worker_main, w);
        if (r != 0)
                return -r;
        w->started = true;
        return 0;
}

void worker_stop(Worker *w) {
        uint64_t one = 1;
        if (w && w->stop_fd >= 0)
                (void) !write(w->stop_fd, &one, sizeof(one));
}

void worker_join(Worker *w) {
        if (w && w->started) {
                (void) pthread_join(w->thread, NULL);
                w->started = false;
        }
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        worker_join(w);
        while (w->conns)
                conn_free(w->conns);
        for (size_t b = 0; b < UDP_BUCKETS; b++)
                while (w->udp[b]) {
                        UdpSession *e = w->udp[b];
                        w->udp[b] = e->next;
                        decoder_free(e->dec);
                        free(e);
                }
        for (size_t i = 0; i < w->n_orphans; i++)
                decoder_free(w->orphans[i].dec);
        free(w->orphans);
        for (size_t b = 0; b < RETIRED_BUCKETS; b++)
                while (w->retired[b]) {
                        Retired *r = w->retired[b];
                        w->retired[b] = r->next;
                        free(r);
                }
        for (size_t i = 0; i < w->n_listens; i++) {
                sd_event_source_disable_unref(w->listens[i].src);
                safe_close(w->listens[i].fd);
        }
        sd_event_source_disable_unref(w->stop_src);
        sd_event_source_disable_unref(w->inbox_src);
        sd_event_source_disable_unref(w->hold_timer);
        safe_close(w->inbox_fd);
        free(w->inbox);
        pthread_mutex_destroy(&w->inbox_lock);
        sd_event_source_disable_unref(w->flush_timer);
        sd_event_source_disable_unref(w->publish_timer);
        sd_event_source_disable_unref(w->sweep_timer);
        safe_close(w->stop_fd);
        free(w->batch);
        ev_zmq_sender_free(w->out);
        decoder_ctx_free(w->dctx);
        sd_event_unref(w->event);
        free(w->rbuf);
        free(w->ubuf);
        free(w->snap_exp);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

int worker_snapshot(Worker *w, CollectorCounters *ret_counters, ExporterSnapshot **ret_exporters,
                    size_t *ret_n) {
        ExporterSnapshot *copy = NULL;
        size_t n;

        pthread_mutex_lock(&w->lock);
        n = ret_exporters ? w->snap_n : 0;
        if (n > 0) {
                copy = malloc(n * sizeof(*copy));
                if (copy)
                        memcpy(copy, w->snap_exp, n * sizeof(*copy));
        }
        *ret_counters = w->snap;
        pthread_mutex_unlock(&w->lock);
        if (n > 0 && !copy)
                return -ENOMEM;
        if (ret_exporters) {
                *ret_exporters = copy;
                *ret_n = n;
        }
        return 0;
}

bool worker_finished(Worker *w) {
        return atomic_load(&w->finished);
}

void worker_listener_stats(Worker *w, size_t index, uint64_t *ret_accepted,
                           uint64_t *ret_records) {
        *ret_accepted = *ret_records = 0;
        if (index >= w->n_listens)
                return;
        *ret_accepted = atomic_load_explicit(&w->listens[index].accepted, memory_order_relaxed);
        *ret_records = atomic_load_explicit(&w->listens[index].records, memory_order_relaxed);
}
