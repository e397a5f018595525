/* SPDX-License-Identifier: MIT */
/*
 * gen-run.c - drives ipfixd-gen's transport sessions from one thread. Each connection owns
 * one buffer holding a batch of whole messages: for TCP they are contiguous and go out in
 * as few send() calls as the socket allows; for UDP each message is one datagram and a
 * batch goes out with sendmmsg(). A batch is only refilled once it has been sent
 * completely, so a message is never split or dropped (UDP ENOBUFS/EAGAIN wait for POLLOUT
 * and retry). Pacing is global: a message may be built once the records already built are
 * due at the configured rate, which bounds the overshoot to one message.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gen-run.h"
#include "macro.h"

/* Memory for batches over all connections, and the per-connection bounds. */
#define GEN_BATCH_TOTAL (32u << 20)
#define GEN_BATCH_MAX (256u << 10)
#define GEN_UDP_BATCH_MAX_MSGS 64u

typedef struct GenConn {
        int fd;
        unsigned index;
        GenSession session;
        uint8_t *buf;                   /* slots * max_size octets */
        size_t len, off;                /* TCP: bytes [off, len) still to send */
        struct mmsghdr *mmsg;           /* UDP: one per slot */
        struct iovec *iov;
        unsigned n_msgs, next_msg;      /* UDP: datagrams [next_msg, n_msgs) still to send */
        bool blocked;                   /* waiting for POLLOUT */
        bool closed;
} GenConn;

typedef struct GenRun {
        const GenRunConfig *cfg;
        GenConn *conns;
        unsigned n_conns;
        unsigned slots;                 /* messages per batch */
        const struct addrinfo *peer;    /* the destination that worked */
        struct pollfd *pfds;
        GenConn **pconns;               /* connection of each pfds entry */
        uint64_t t0_ns;
        GenStats stats;
} GenRun;

static uint64_t now_ns(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

static struct timespec timespec_from_ns(uint64_t ns) {
        return (struct timespec) {
                .tv_sec = (time_t) (ns / UINT64_C(1000000000)),
                .tv_nsec = (long) (ns % UINT64_C(1000000000)),
        };
}

static void gen_run_done(GenRun *run) {
        for (unsigned i = 0; i < run->n_conns; i++) {
                GenConn *c = &run->conns[i];

                c->fd = safe_close(c->fd);
                free(c->buf);
                free(c->mmsg);
                free(c->iov);
        }
        free(run->conns);
        free(run->pfds);
        free(run->pconns);
}

/* Monotonic time at which the records built so far are due; a message may start then. */
static uint64_t pace_due_ns(const GenRun *run) {
        return run->t0_ns + (uint64_t) ((double) run->stats.records * 1e9 / run->cfg->rate);
}

static bool pace_allows(const GenRun *run) {
        if (run->cfg->rate <= 0)
                return true;
        return now_ns(CLOCK_MONOTONIC) >= pace_due_ns(run);
}

static bool conn_pending(const GenRun *run, const GenConn *c) {
        if (run->cfg->proto == GEN_PROTO_TCP)
                return c->off < c->len;
        return c->next_msg < c->n_msgs;
}

/* Builds the next batch into an idle connection's buffer. Returns the messages built. */
static unsigned conn_fill(GenRun *run, GenConn *c) {
        const GenMessageConfig *m = &run->cfg->msg;
        uint64_t now_ms = now_ns(CLOCK_REALTIME) / UINT64_C(1000000);
        unsigned i;

        c->len = c->off = 0;
        c->n_msgs = c->next_msg = 0;
        for (i = 0; i < run->slots; i++) {
                uint8_t *dst;
                size_t n;

                if (!pace_allows(run))
                        break;
                dst = run->cfg->proto == GEN_PROTO_TCP ? c->buf + c->len : c->buf + i * m->max_size;
                n = gen_message_build(m, &c->session, now_ms, dst, &run->stats);
                if (n == 0)
                        break;
                if (run->cfg->proto == GEN_PROTO_TCP)
                        c->len += n;
                else {
                        c->iov[i].iov_len = n;
                        c->n_msgs++;
                }
        }
        return i;
}

/* Return: 0 when the batch is out, -EAGAIN when the socket is full, another -errno on error. */
static int conn_flush(GenRun *run, GenConn *c) {
        if (run->cfg->proto == GEN_PROTO_TCP) {
                while (c->off < c->len) {
                        ssize_t k = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (errno == EAGAIN || errno == EWOULDBLOCK)
                                        return -EAGAIN;
                                return -errno;
                        }
                        c->off += (size_t) k;
                }
                return 0;
        }

        while (c->next_msg < c->n_msgs) {
                int k = sendmmsg(c->fd, c->mmsg + c->next_msg, c->n_msgs - c->next_msg, 0);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        /* Loopback reports a full queue as ENOBUFS; both mean "retry later". */
                        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                                return -EAGAIN;
                        return -errno;
                }
                c->next_msg += (unsigned) k;
        }
        return 0;
}

static int conn_finish(GenRun *run, GenConn *c) {
        if (run->cfg->proto == GEN_PROTO_TCP && shutdown(c->fd, SHUT_WR) < 0) {
                int r = -errno;

                fprintf(stderr, "ipfixd-gen: connection %u to %s: shutdown failed: %s\n",
                        c->index, run->cfg->dest_name, strerror(-r));
                return r;
        }
        c->fd = safe_close(c->fd);
        c->closed = true;
        return 0;
}

static int socket_bind(int fd, const struct addrinfo *bind_ai, int family) {
        if (!bind_ai)
                return 0;
        if (family == AF_INET || family == AF_INET6) {
                int one = 1;

                /* Leave the port to connect(), so many connections can share the address. */
                (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        }
        if (bind(fd, bind_ai->ai_addr, bind_ai->ai_addrlen) < 0)
                return -errno;
        return 0;
}

static int tcp_connect_one(const GenRunConfig *cfg, const struct addrinfo *ai, int *ret_fd,
                           const char **reterr_step) {
        _cleanup_close_ int fd = -EBADF;
        int one = 1, flags, r;

        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
                *reterr_step = "socket";
                return -errno;
        }
        r = socket_bind(fd, cfg->bind, ai->ai_family);
        if (r < 0) {
                *reterr_step = "bind";
                return r;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                *reterr_step = "connect";
                return -errno;
        }
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                *reterr_step = "fcntl";
                return -errno;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static bool family_usable(const GenRunConfig *cfg, const struct addrinfo *ai) {
        return !cfg->bind || cfg->bind->ai_family == ai->ai_family;
}

static int tcp_open(GenRun *run, GenConn *c) {
        const GenRunConfig *cfg = run->cfg;
        const char *step = "connect";
        int r = -EAFNOSUPPORT;

        if (run->peer)
                r = tcp_connect_one(cfg, run->peer, &c->fd, &step);
        else
                for (const struct addrinfo *ai = cfg->dest; ai; ai = ai->ai_next) {
                        if (!family_usable(cfg, ai))
                                continue;
                        r = tcp_connect_one(cfg, ai, &c->fd, &step);
                        if (r >= 0) {
                                run->peer = ai;
                                break;
                        }
                }
        if (r < 0)
                fprintf(stderr, "ipfixd-gen: connection %u to %s: %s failed: %s\n", c->index,
                        cfg->dest_name, step, strerror(-r));
        return r;
}

static int udp_open(GenRun *run, GenConn *c) {
        const GenRunConfig *cfg = run->cfg;
        const char *step = "socket";
        int r;

        if (!run->peer) {
                for (const struct addrinfo *ai = cfg->dest; ai && !run->peer; ai = ai->ai_next)
                        if (family_usable(cfg, ai))
                                run->peer = ai;
                if (!run->peer) {
                        fprintf(stderr, "ipfixd-gen: %s: no address of the bind address's family\n",
                                cfg->dest_name);
                        return -EAFNOSUPPORT;
                }
        }

        c->fd = socket(run->peer->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                       IPPROTO_UDP);
        if (c->fd < 0)
                r = -errno;
        else {
                /* Unconnected on purpose: no ICMP errors leak into later sends. Every socket
                 * gets its own source port (bound here or on the first send). */
                step = "bind";
                r = socket_bind(c->fd, cfg->bind, AF_UNSPEC);
        }
        if (r < 0) {
                fprintf(stderr, "ipfixd-gen: socket %u for %s: %s failed: %s\n", c->index,
                        cfg->dest_name, step, strerror(-r));
                return r;
        }

        for (unsigned i = 0; i < run->slots; i++) {
                c->iov[i].iov_base = c->buf + i * cfg->msg.max_size;
                c->mmsg[i].msg_hdr = (struct msghdr) {
                        .msg_name = run->peer->ai_addr,
                        .msg_namelen = run->peer->ai_addrlen,
                        .msg_iov = &c->iov[i],
                        .msg_iovlen = 1,
                };
        }
        return 0;
}

static int gen_run_setup(GenRun *run) {
        const GenRunConfig *cfg = run->cfg;
        size_t budget;

        budget = GEN_BATCH_TOTAL / cfg->connections;
        budget = MIN(budget, (size_t) GEN_BATCH_MAX);
        run->slots = (unsigned) MAX(budget / cfg->msg.max_size, (size_t) 1);
        if (cfg->proto == GEN_PROTO_UDP)
                run->slots = MIN(run->slots, GEN_UDP_BATCH_MAX_MSGS);

        run->conns = calloc(cfg->connections, sizeof(GenConn));
        run->pfds = calloc(cfg->connections, sizeof(struct pollfd));
        run->pconns = calloc(cfg->connections, sizeof(GenConn *));
        if (!run->conns || !run->pfds || !run->pconns)
                return -ENOMEM;
        run->n_conns = cfg->connections;
        for (unsigned i = 0; i < run->n_conns; i++)
                run->conns[i].fd = -EBADF;

        for (unsigned i = 0; i < run->n_conns; i++) {
                GenConn *c = &run->conns[i];
                uint64_t records;
                int r;

                c->index = i;
                /* Even split: the first (records % C) sessions carry one extra record. */
                records = cfg->records / cfg->connections +
                          (i < cfg->records % cfg->connections ? 1 : 0);
                gen_session_init(&c->session, &cfg->msg, records, cfg->seed, i);

                c->buf = malloc((size_t) run->slots * cfg->msg.max_size);
                if (!c->buf)
                        return -ENOMEM;
                if (cfg->proto == GEN_PROTO_UDP) {
                        c->mmsg = calloc(run->slots, sizeof(struct mmsghdr));
                        c->iov = calloc(run->slots, sizeof(struct iovec));
                        if (!c->mmsg || !c->iov)
                                return -ENOMEM;
                        r = udp_open(run, c);
                } else
                        r = tcp_open(run, c);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One turn of a connection that is not waiting for POLLOUT. */
static int conn_step(GenRun *run, GenConn *c, bool *progress) {
        int r;

        if (!conn_pending(run, c) && conn_fill(run, c) > 0)
                *progress = true;
        if (conn_pending(run, c)) {
                r = conn_flush(run, c);
                if (r == -EAGAIN) {
                        c->blocked = true;
                        return 0;
                }
                if (r < 0) {
                        fprintf(stderr, "ipfixd-gen: %s %u to %s: send failed: %s\n",
                                run->cfg->proto == GEN_PROTO_TCP ? "connection" : "socket",
                                c->index, run->cfg->dest_name, strerror(-r));
                        return r;
                }
                *progress = true;
        }
        if (gen_session_done(&c->session, &run->cfg->msg))
                return conn_finish(run, c);
        return 0;
}

static int gen_run_loop(GenRun *run) {
        const GenRunConfig *cfg = run->cfg;
        int r;

        run->t0_ns = now_ns(CLOCK_MONOTONIC);
        for (;;) {
                unsigned active = 0, n_blocked = 0;
                bool progress = false;

                for (unsigned i = 0; i < run->n_conns; i++) {
                        GenConn *c = &run->conns[i];

                        if (c->closed)
                                continue;
                        if (!c->blocked) {
                                r = conn_step(run, c, &progress);
                                if (r < 0)
                                        return r;
                                if (c->closed)
                                        continue;
                        }
                        active++;
                        if (c->blocked) {
                                run->pfds[n_blocked] = (struct pollfd) {
                                        .fd = c->fd,
                                        .events = POLLOUT,
                                };
                                run->pconns[n_blocked++] = c;
                        }
                }
                if (active == 0)
                        return 0;

                if (n_blocked > 0) {
                        struct timespec ts = { 0 }, *timeout = &ts;

                        if (!progress && cfg->rate > 0 && n_blocked < active) {
                                /* The others wait for the pacer: sleep at most until it's due. */
                                uint64_t due = pace_due_ns(run), now = now_ns(CLOCK_MONOTONIC);

                                ts = timespec_from_ns(due > now ? due - now : 0);
                        } else if (!progress)
                                timeout = NULL;

                        if (ppoll(run->pfds, n_blocked, timeout, NULL) < 0 && errno != EINTR)
                                return -errno;
                        for (unsigned i = 0; i < n_blocked; i++)
                                if (run->pfds[i].revents != 0)
                                        run->pconns[i]->blocked = false;
                } else if (!progress && cfg->rate > 0) {
                        struct timespec due = timespec_from_ns(pace_due_ns(run));

                        (void) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
                }
        }
}

int gen_run(const GenRunConfig *cfg, GenStats *ret_stats) {
        GenRun run = { .cfg = cfg };
        int r;

        assert(cfg);
        assert(ret_stats);
        assert(cfg->connections >= 1);

        r = gen_run_setup(&run);
        if (r == -ENOMEM)
                fprintf(stderr, "ipfixd-gen: out of memory\n");
        if (r >= 0)
                r = gen_run_loop(&run);
        if (r >= 0)
                *ret_stats = run.stats;
        gen_run_done(&run);
        return r;
}
