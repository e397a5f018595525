/* SPDX-License-Identifier: MIT */
/*
 * ev-redis.c - the sd-event adapter for hiredis 0.14.1 async contexts, and EvRedis, which
 * owns at most one such context at a time and replaces it after a failure.
 *
 * Invariants:
 * - ac->data points at the EvRedis exactly while r->ac == ac. Every path that lets go of a
 *   context clears ac->data first, so hiredis callbacks that still run for it (NULL replies
 *   while it is freed, onDisconnect) find NULL and leave the EvRedis alone. That is also what
 *   makes ev_redis_free() safe from inside any callback.
 * - Owner code (on_connected, on_disconnected, command callbacks) runs last in each of our
 *   functions: an owner that frees the EvRedis from there leaves nothing of ours touching it.
 * - redisAsyncFree() is never called from the connect callback: hiredis 0.14.1 runs that
 *   callback without its IN_CALLBACK guard and keeps using the context when it returns.
 *   Everything else that may free the context does so from our timers, from a reply callback
 *   (hiredis then defers the free until the callback returns), or from ev_redis_free().
 * - Each wrapped command holds one CommandCallback, freed when hiredis calls it, which it
 *   does exactly once for ordinary commands. Subscriptions are called per message or never
 *   ((P)UNSUBSCRIBE), so they go to hiredis unwrapped and are not counted in flight.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "ev-redis.h"

/* Our timers are short (tens of milliseconds in tests); sd-event's default accuracy of
 * 250 ms would stretch them. */
#define TIMER_ACCURACY_USEC 1000ULL
/* What hiredis' redisEnableKeepAlive() sets (REDIS_KEEPALIVE_INTERVAL), done here so that a
 * failing setsockopt() cannot poison the context's error state. */
#define KEEPALIVE_INTERVAL_SEC 15

/* ---- adapter: one sd_event_source per redisAsyncContext ---- */

typedef struct Attachment {
        redisAsyncContext *ac;          /* NULL once hiredis called the cleanup hook */
        sd_event_source *io;
        uint32_t events;                /* EPOLLIN/EPOLLOUT as hiredis asked for them */
        bool dispatching;               /* inside on_io: cleanup leaves the free to it */
} Attachment;

static void attachment_update(Attachment *a, uint32_t events) {
        int r;

        if (events == a->events || !a->io)
                return;
        if (events == 0)
                r = sd_event_source_set_enabled(a->io, SD_EVENT_OFF);
        else {
                r = sd_event_source_set_io_events(a->io, events);
                if (r >= 0)
                        r = sd_event_source_set_enabled(a->io, SD_EVENT_ON);
        }
        /* hiredis' hooks return nothing. When epoll_ctl() fails (out of memory) the state is
         * left as it was so the next hook call retries; meanwhile the connection stalls and
         * EvRedis' connect or command timeout drops it. */
        if (r >= 0)
                a->events = events;
}

static void on_add_read(void *p) {
        Attachment *a = p;
        attachment_update(a, a->events | EPOLLIN);
}

static void on_del_read(void *p) {
        Attachment *a = p;
        attachment_update(a, a->events & ~(uint32_t) EPOLLIN);
}

static void on_add_write(void *p) {
        Attachment *a = p;
        attachment_update(a, a->events | EPOLLOUT);
}

static void on_del_write(void *p) {
        Attachment *a = p;
        attachment_update(a, a->events & ~(uint32_t) EPOLLOUT);
}

/* Called by hiredis right before it closes the fd and frees the context. */
static void on_cleanup(void *p) {
        Attachment *a = p;
        redisAsyncContext *ac = a->ac;

        ac->ev.data = NULL;
        ac->ev.addRead = ac->ev.delRead = NULL;
        ac->ev.addWrite = ac->ev.delWrite = NULL;
        ac->ev.cleanup = NULL;
        a->ac = NULL;
        /* Unregisters the fd from epoll now, even when called from inside on_io (sd-event
         * then keeps the source object until the dispatch returns). */
        a->io = sd_event_source_disable_unref(a->io);
        if (!a->dispatching)
                free(a);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Attachment *a = userdata;

        a->dispatching = true;
        /* Either handler may end in hiredis freeing the context (and calling on_cleanup). */
        if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (a->events & EPOLLIN))
                redisAsyncHandleRead(a->ac);
        if (a->ac && (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (a->events & EPOLLOUT))
                redisAsyncHandleWrite(a->ac);
        a->dispatching = false;
        if (!a->ac)
                free(a);
        return 0;
}

int ev_redis_attach(redisAsyncContext *ac, sd_event *e) {
        _cleanup_free_ Attachment *a = NULL;
        int r, flags;

        assert(ac);
        assert(e);
        if (ac->ev.data)
                return -EEXIST;
        if (ac->c.fd < 0)
                return -EBADF;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->ac = ac;
        r = sd_event_add_io(e, &a->io, ac->c.fd, EPOLLIN, on_io, a);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(a->io, SD_EVENT_OFF);
        if (r < 0) {
                a->io = sd_event_source_unref(a->io);
                return r;
        }
        (void) sd_event_source_set_description(a->io, "redis");
        a->events = 0;

        /* hiredis 0.14.1 creates its sockets without SOCK_CLOEXEC. */
        flags = fcntl(ac->c.fd, F_GETFD);
        if (flags >= 0)
                (void) fcntl(ac->c.fd, F_SETFD, flags | FD_CLOEXEC);

        ac->ev.addRead = on_add_read;
        ac->ev.delRead = on_del_read;
        ac->ev.addWrite = on_add_write;
        ac->ev.delWrite = on_del_write;
        ac->ev.cleanup = on_cleanup;
        ac->ev.data = TAKE_PTR(a);
        return 0;
}

/* ---- EvRedis ---- */

typedef enum EvRedisState {
        EV_REDIS_WAITING,               /* no context; the retry timer is armed */
        EV_REDIS_CONNECTING,            /* connect(2) in progress */
        EV_REDIS_HANDSHAKE,             /* connected; AUTH/SELECT/PING not all answered */
        EV_REDIS_CONNECTED,
} EvRedisState;

typedef enum HandshakeStep {
        HANDSHAKE_AUTH = 1,
        HANDSHAKE_SELECT,
        HANDSHAKE_PING,
} HandshakeStep;

typedef struct CommandCallback {
        redisCallbackFn *fn;
        void *privdata;
} CommandCallback;

struct EvRedis {
        sd_event *event;
        redisAsyncContext *ac;          /* set from CONNECTING on; ac->data == this */
        sd_event_source *retry;         /* WAITING: when to connect again */
        sd_event_source *deadline;      /* CONNECTING/HANDSHAKE: connect timeout;
                                         * CONNECTED: reply timeout while commands are out */
        EvRedisState state;
        unsigned handshake_pending;     /* handshake replies still expected */
        unsigned failures;              /* consecutive failed attempts: the backoff exponent */
        uint64_t inflight;              /* wrapped commands on ac waiting for their reply */
        uint64_t last_progress;         /* CLOCK_MONOTONIC usec: last reply, or 0 -> 1 inflight */
        uint64_t rng;

        char *host;
        uint16_t port;
        char *unix_path;
        char *username;
        char *password;
        unsigned db;
        uint64_t connect_timeout;
        uint64_t command_timeout;
        uint64_t backoff_min;
        uint64_t backoff_max;
        void (*on_connected)(void *userdata);
        void (*on_disconnected)(void *userdata, int reason);
        void *userdata;

        EvRedisCounters counters;
        char last_error[160];
};

_printf_(2, 3) static void set_error(EvRedis *r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
        va_end(ap);
}

static uint64_t now_mono(EvRedis *r) {
        uint64_t t = 0;
        /* The loop's cached time of this iteration (or the clock, before the first one). */
        (void) sd_event_now(r->event, CLOCK_MONOTONIC, &t);
        return t;
}

static uint64_t rng_next(uint64_t *s) {
        /* splitmix64: only spreads retries of replicas that failed together. */
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* The next retry delay: uniform in [d/2, d], d = backoff_min * 2^failures, at most max. */
static uint64_t backoff_next(EvRedis *r) {
        uint64_t d = r->backoff_min;

        for (unsigned i = 0; i < r->failures && d < r->backoff_max; i++)
                d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
        d = MIN(d, r->backoff_max);
        if (r->failures < UINT_MAX)
                r->failures++;
        return d / 2 + rng_next(&r->rng) % (d - d / 2 + 1);
}

static void timer_arm(sd_event_source *s, uint64_t usec) {
        /* Neither call allocates for a time source that exists on a clock already in use. */
        (void) sd_event_source_set_time(s, usec);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int reason_from_redis_err(int err) {
        switch (err) {
        case REDIS_ERR_EOF:
                return -ECONNRESET;
        case REDIS_ERR_PROTOCOL:
                return -EPROTO;
        case REDIS_ERR_OOM:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/*
 * Bookkeeping for a connection, or an attempt, that is gone; r->ac is already NULL. Schedules
 * the next attempt. Return: whether it was established, i.e. the owner must be told.
 */
static bool connection_lost(EvRedis *r) {
        bool was_connected = r->state == EV_REDIS_CONNECTED;

        assert(!r->ac);
        r->state = EV_REDIS_WAITING;
        r->handshake_pending = 0;
        r->counters.command_errors += r->inflight;
        r->inflight = 0;
        (void) sd_event_source_set_enabled(r->deadline, SD_EVENT_OFF);
        if (was_connected)
                r->counters.disconnects++;
        else
                r->counters.connect_failures++;
        timer_arm(r->retry, now_mono(r) + backoff_next(r));
        return was_connected;
}

/* Lets go of the current context from our own code (a timer, a handshake reply). */
static void connection_drop(EvRedis *r, int reason) {
        void (*cb)(void *userdata, int reason) = r->on_disconnected;
        void *userdata = r->userdata;
        redisAsyncContext *ac = TAKE_PTR(r->ac);

        assert(ac);
        ac->data = NULL;
        if (connection_lost(r) && cb)
                cb(userdata, reason);           /* may free r */
        /* Runs the NULL replies now, or, inside a reply callback, once it returns. */
        redisAsyncFree(ac);
}

static const char *handshake_step_name(HandshakeStep step) {
        return step == HANDSHAKE_AUTH ? "AUTH" : step == HANDSHAKE_SELECT ? "SELECT" : "PING";
}

static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        HandshakeStep step = (HandshakeStep) (uintptr_t) privdata;
        EvRedis *r = ac->data;
        redisReply *rr = reply;

        if (!r || !rr)
                return;         /* the context is going; whoever let go of it did the rest */
        if (rr->type == REDIS_REPLY_ERROR) {
                set_error(r, "%s: %.*s", handshake_step_name(step), (int) MIN(rr->len, 120),
                          rr->str);
                /* A failed attempt (counted; on_disconnected is for established ones). The
                 * owner learns why from ev_redis_last_error(): WRONGPASS, NOAUTH, LOADING. */
                connection_drop(r, -EPROTO);
                return;
        }
        if (--r->handshake_pending > 0)
                return;

        r->state = EV_REDIS_CONNECTED;
        r->failures = 0;
        r->counters.connects++;
        (void) sd_event_source_set_enabled(r->deadline, SD_EVENT_OFF);
        if (r->on_connected)
                r->on_connected(r->userdata);   /* may free r */
}

/* Queues a handshake command. Failure is left to the connect timeout. */
static void handshake_send(EvRedis *r, HandshakeStep step, int argc, const char **argv) {
        char *cmd = NULL;
        int len;

        len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
        if (len < 0)
                return;
        if (redisAsyncFormattedCommand(r->ac, on_handshake_reply, (void *) (uintptr_t) step, cmd,
                                       (size_t) len) == REDIS_OK)
                r->handshake_pending++;
        redisFreeCommand(cmd);
}

static void keepalive_enable(int fd) {
        int on = 1, idle = KEEPALIVE_INTERVAL_SEC, intvl = MAX(1, KEEPALIVE_INTERVAL_SEC / 3),
            cnt = 3;

        (void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
        (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* hiredis passes const, but the context is ours to send on. */
static void on_connect(const redisAsyncContext *cac, int status) {
        redisAsyncContext *ac = (redisAsyncContext *) cac;
        EvRedis *r = ac->data;
        char db[16];

        if (!r)
                return;
        assert(r->ac == ac);
        if (status != REDIS_OK) {
                /* hiredis frees the context when we return (no onDisconnect: it never was
                 * connected). Calling redisAsyncFree() here would be a use after free. */
                set_error(r, "connect: %s", ac->c.errstr);
                r->ac = NULL;
                ac->data = NULL;
                (void) connection_lost(r);
                return;
        }

        r->state = EV_REDIS_HANDSHAKE;
        if (r->host)
                keepalive_enable(ac->c.fd);
        if (r->password) {
                const char *argv[3] = { "AUTH" };
                int argc = 1;
                if (r->username)
                        argv[argc++] = r->username;
                argv[argc++] = r->password;
                handshake_send(r, HANDSHAKE_AUTH, argc, argv);
        }
        if (r->db > 0) {
                (void) snprintf(db, sizeof(db), "%u", r->db);
                handshake_send(r, HANDSHAKE_SELECT, 2, (const char *[]) { "SELECT", db });
        }
        /* Without AUTH or SELECT, PING: "connected" always means the server answered. */
        if (!r->password && r->db == 0)
                handshake_send(r, HANDSHAKE_PING, 1, (const char *[]) { "PING" });
}

static void on_disconnect(const redisAsyncContext *cac, int status) {
        redisAsyncContext *ac = (redisAsyncContext *) cac;
        EvRedis *r = ac->data;
        void (*cb)(void *userdata, int reason);
        void *userdata;
        int reason;

        if (!r)
                return;
        assert(r->ac == ac);
        r->ac = NULL;
        ac->data = NULL;
        reason = status == REDIS_OK ? -ECONNRESET : reason_from_redis_err(ac->err);
        set_error(r, "%s", ac->errstr ? ac->errstr : "connection closed");
        cb = r->on_disconnected;
        userdata = r->userdata;
        if (connection_lost(r) && cb)
                cb(userdata, reason);           /* may free r */
}

static void connect_start(EvRedis *r) {
        redisAsyncContext *ac;
        int k;

        assert(!r->ac);
        r->counters.connect_attempts++;
        errno = 0;
        ac = r->unix_path ? redisAsyncConnectUnix(r->unix_path)
                          : redisAsyncConnect(r->host, r->port);
        if (!ac) {
                set_error(r, "connect: out of memory");
                (void) connection_lost(r);
                return;
        }
        if (ac->err) {
                /* Failed at once (ENOENT, ECONNREFUSED on a unix socket, name lookup). */
                set_error(r, "connect: %s", ac->errstr);
                redisAsyncFree(ac);
                (void) connection_lost(r);
                return;
        }
        k = ev_redis_attach(ac, r->event);
        if (k < 0) {
                set_error(r, "attach: %s", strerror(-k));
                redisAsyncFree(ac);
                (void) connection_lost(r);
                return;
        }
        ac->data = r;
        r->ac = ac;
        r->state = EV_REDIS_CONNECTING;
        r->handshake_pending = 0;
        timer_arm(r->deadline, now_mono(r) + r->connect_timeout);
        /* Only now: hiredis asks for the first write event from inside this call. */
        (void) redisAsyncSetConnectCallback(ac, on_connect);
        (void) redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        connect_start(userdata);
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        EvRedis *r = userdata;
        uint64_t now = now_mono(r);

        switch (r->state) {
        case EV_REDIS_CONNECTING:
        case EV_REDIS_HANDSHAKE:
                set_error(r, "%s timed out after %llu ms",
                          r->state == EV_REDIS_CONNECTING ? "connect" : "handshake",
                          (unsigned long long) (r->connect_timeout / 1000));
                connection_drop(r, -ETIMEDOUT);
                break;
        case EV_REDIS_CONNECTED:
                if (r->inflight == 0 || r->command_timeout == 0)
                        break;
                if (now < r->last_progress + r->command_timeout) {
                        timer_arm(s, r->last_progress + r->command_timeout);
                        break;
                }
                set_error(r, "no reply within %llu ms",
                          (unsigned long long) (r->command_timeout / 1000));
                connection_drop(r, -ETIMEDOUT);
                break;
        case EV_REDIS_WAITING:
                break;
        }
        return 0;
}

static void on_command_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        CommandCallback cc = *(CommandCallback *) privdata;
        EvRedis *r = ac->data;
        redisReply *rr = reply;

        free(privdata);
        /* A NULL reply with r still set: the connection broke; on_disconnect counts what was
         * in flight. */
        if (r && rr) {
                assert(r->inflight > 0);
                r->inflight--;
                if (r->command_timeout > 0)
                        r->last_progress = now_mono(r);
                if (rr->type == REDIS_REPLY_ERROR)
                        r->counters.command_errors++;
        }
        if (cc.fn)
                cc.fn(ac, reply, cc.privdata);  /* may free r */
}

/* Commands hiredis 0.14.1 keeps callbacks for per message, or none at all. */
static bool command_is_subscription(const char *cmd, size_t len) {
        static const char *const names[] = {
                "subscribe", "psubscribe", "unsubscribe", "punsubscribe", "monitor",
        };
        const char *end = cmd + len, *p = memchr(cmd, '$', len), *name;
        size_t n = 0;

        if (!p)
                return false;
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
                n = n * 10 + (size_t) (*p - '0');
                if (n > 16)
                        return false;
        }
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
                return false;
        name = p + 2;
        if ((size_t) (end - name) < n)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strlen(names[i]) == n && strncasecmp(name, names[i], n) == 0)
                        return true;
        return false;
}

static int command_refused(EvRedis *r) {
        r->counters.command_errors++;
        /* hiredis refuses commands only while closing, or an UNSUBSCRIBE with nothing
         * subscribed; we checked for the former before. */
        return -EINVAL;
}

static int command_submit(EvRedis *r, redisCallbackFn *cb, void *privdata, const char *cmd,
                          size_t len) {
        CommandCallback *cc;

        if (command_is_subscription(cmd, len)) {
                if (redisAsyncFormattedCommand(r->ac, cb, privdata, cmd, len) != REDIS_OK)
                        return command_refused(r);
                r->counters.commands_sent++;
                return 0;
        }

        cc = malloc(sizeof(*cc));
        if (!cc)
                return -ENOMEM;
        *cc = (CommandCallback) { .fn = cb, .privdata = privdata };
        if (redisAsyncFormattedCommand(r->ac, on_command_reply, cc, cmd, len) != REDIS_OK) {
                free(cc);
                return command_refused(r);
        }
        r->counters.commands_sent++;
        if (r->inflight++ == 0 && r->command_timeout > 0) {
                r->last_progress = now_mono(r);
                timer_arm(r->deadline, r->last_progress + r->command_timeout);
        }
        return 0;
}

bool ev_redis_is_connected(const EvRedis *r) {
        assert(r);
        /* While hiredis tears a broken connection down (and runs the NULL replies), the
         * context is flagged before on_disconnect tells us. */
        return r->state == EV_REDIS_CONNECTED && r->ac &&
               !(r->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

int ev_redis_command(EvRedis *r, redisCallbackFn *cb, void *privdata, const char *fmt, ...) {
        char *cmd = NULL;
        va_list ap;
        int len, k;

        assert(r);
        assert(fmt);
        if (!ev_redis_is_connected(r))
                return -ENOTCONN;
        va_start(ap, fmt);
        len = redisvFormatCommand(&cmd, fmt, ap);
        va_end(ap);
        if (len < 0)
                return len == -2 ? -EINVAL : -ENOMEM;   /* hiredis: -2 bad format, -1 OOM */
        k = command_submit(r, cb, privdata, cmd, (size_t) len);
        redisFreeCommand(cmd);
        return k;
}

int ev_redis_command_argv(EvRedis *r, redisCallbackFn *cb, void *privdata, int argc,
                          const char **argv, const size_t *argvlen) {
        char *cmd = NULL;
        int len, k;

        assert(r);
        if (argc < 1 || !argv)
                return -EINVAL;
        if (!ev_redis_is_connected(r))
                return -ENOTCONN;
        len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
        if (len < 0)
                return -ENOMEM;
        k = command_submit(r, cb, privdata, cmd, (size_t) len);
        redisFreeCommand(cmd);
        return k;
}

void ev_redis_get_counters(const EvRedis *r, EvRedisCounters *ret) {
        assert(r);
        assert(ret);
        *ret = r->counters;
}

const char *ev_redis_last_error(const EvRedis *r) {
        assert(r);
        return r->last_error;
}

static int strdup_optional(char **dst, const char *src) {
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

static int config_check(const EvRedisConfig *cfg) {
        bool tcp = cfg->host && cfg->host[0], local = cfg->unix_path && cfg->unix_path[0];

        if (tcp == local)
                return -EINVAL;
        if (tcp && cfg->port == 0)
                return -EINVAL;
        if (local && strlen(cfg->unix_path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return -EINVAL;         /* hiredis 0.14.1 would silently truncate it */
        if (cfg->username && !cfg->password)
                return -EINVAL;
        if (cfg->db > INT_MAX)
                return -EINVAL;
        if (cfg->backoff_min_usec && cfg->backoff_max_usec &&
            cfg->backoff_min_usec > cfg->backoff_max_usec)
                return -EINVAL;
        return 0;
}

int ev_redis_new(EvRedis **ret, sd_event *e, const EvRedisConfig *cfg) {
        _cleanup_(ev_redis_freep) EvRedis *r = NULL;
        int k;

        assert(ret);
        assert(e);
        assert(cfg);
        k = config_check(cfg);
        if (k < 0)
                return k;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(e);
        r->state = EV_REDIS_WAITING;
        if ((cfg->host && cfg->host[0] && strdup_optional(&r->host, cfg->host) < 0) ||
            (cfg->unix_path && cfg->unix_path[0] &&
             strdup_optional(&r->unix_path, cfg->unix_path) < 0) ||
            strdup_optional(&r->username, cfg->username) < 0 ||
            strdup_optional(&r->password, cfg->password) < 0)
                return -ENOMEM;
        r->port = cfg->port;
        r->db = cfg->db;
        r->connect_timeout = cfg->connect_timeout_usec ? cfg->connect_timeout_usec
                                                       : EV_REDIS_CONNECT_TIMEOUT_USEC_DEFAULT;
        r->command_timeout = cfg->command_timeout_usec;
        r->backoff_min = cfg->backoff_min_usec ? cfg->backoff_min_usec
                                               : EV_REDIS_BACKOFF_MIN_USEC_DEFAULT;
        r->backoff_max = cfg->backoff_max_usec ? cfg->backoff_max_usec
                                               : EV_REDIS_BACKOFF_MAX_USEC_DEFAULT;
        r->backoff_max = MAX(r->backoff_max, r->backoff_min);
        r->on_connected = cfg->on_connected;
        r->on_disconnected = cfg->on_disconnected;
        r->userdata = cfg->userdata;
        if (getrandom(&r->rng, sizeof(r->rng), GRND_NONBLOCK) != sizeof(r->rng))
                r->rng = now_mono(r) ^ (uint64_t) (uintptr_t) r;

        /* The first attempt runs from the loop, like every later one. */
        k = sd_event_add_time_relative(e, &r->retry, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC,
                                       on_retry, r);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(r->retry, "redis-retry");
        k = sd_event_add_time(e, &r->deadline, CLOCK_MONOTONIC, UINT64_MAX, TIMER_ACCURACY_USEC,
                              on_deadline, r);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(r->deadline, "redis-deadline");
        k = sd_event_source_set_enabled(r->deadline, SD_EVENT_OFF);
        if (k < 0)
                return k;

        *ret = TAKE_PTR(r);
        return 0;
}

EvRedis *ev_redis_free(EvRedis *r) {
        redisAsyncContext *ac;

        if (!r)
                return NULL;
        ac = TAKE_PTR(r->ac);
        r->state = EV_REDIS_WAITING;    /* commands from the NULL replies get -ENOTCONN */
        if (ac) {
                ac->data = NULL;
                redisAsyncFree(ac);
        }
        r->retry = sd_event_source_disable_unref(r->retry);
        r->deadline = sd_event_source_disable_unref(r->deadline);
        r->event = sd_event_unref(r->event);
        free(r->host);
        free(r->unix_path);
        free(r->username);
        if (r->password) {
                explicit_bzero(r->password, strlen(r->password));
                free(r->password);
        }
        free(r);
        return NULL;
}
