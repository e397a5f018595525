/* SPDX-License-Identifier: MIT */
/*
 * test-ev-redis.c - ev_redis_attach() and EvRedis against real redis-server processes that
 * the test starts itself: on a unix socket in a temporary directory, and on a random
 * loopback TCP port with --requirepass. Each test runs an sd-event loop until a condition
 * holds (or a deadline passes); timers in the loop kill, stop and restart the server where a
 * scenario needs it. Exit code 77 ("skipped") when redis-server is not installed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <hiredis/async.h>
#include <systemd/sd-event.h>

#include "ev-redis.h"

#define MSEC 1000ULL
#define SEC (1000 * MSEC)
#define PASSWORD "s3cret-pw"
#define BACKOFF_MIN (20 * MSEC)
#define BACKOFF_MAX (200 * MSEC)
/* Generous: the same deadlines hold under valgrind. */
#define WAIT (20 * SEC)

typedef struct Server {
        pid_t pid;
        char dir[64];
        char sock[100];
        uint16_t port;                  /* 0: unix socket only */
        const char *password;
} Server;

typedef struct Fixture {
        sd_event *event;
        Server server;
} Fixture;

static uint64_t mono_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Runs the loop until @cond holds or @usec passed; evaluates to @cond. */
#define RUN_UNTIL(e, cond, usec)                                                  \
        ({                                                                        \
                uint64_t _deadline = mono_usec() + (usec);                        \
                while (!(cond) && mono_usec() < _deadline)                        \
                        assert_true(sd_event_run((e), 20 * MSEC) >= 0);           \
                (bool) (cond);                                                    \
        })

static void run_for(sd_event *e, uint64_t usec) {
        uint64_t deadline = mono_usec() + usec;
        while (mono_usec() < deadline)
                assert_true(sd_event_run(e, 10 * MSEC) >= 0);
}

/* ---- redis-server ---- */

static bool server_ready(const Server *s) {
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
                struct sockaddr_in in;
        } a = { 0 };
        socklen_t len;
        int fd, r;

        if (s->port == 0) {
                a.un.sun_family = AF_UNIX;
                (void) snprintf(a.un.sun_path, sizeof(a.un.sun_path), "%s", s->sock);
                len = sizeof(a.un);
        } else {
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(s->port);
                a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                len = sizeof(a.in);
        }
        fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        r = connect(fd, &a.sa, len);
        (void) close(fd);
        return r == 0;
}

static void server_start(Server *s) {
        char port[8], log[128];
        const char *argv[32];
        int n = 0;
        uint64_t deadline;

        (void) snprintf(port, sizeof(port), "%u", s->port);
        (void) snprintf(log, sizeof(log), "%s/redis.log", s->dir);
        argv[n++] = "redis-server";
        argv[n++] = "--port";
        argv[n++] = port;
        if (s->port == 0) {
                argv[n++] = "--unixsocket";
                argv[n++] = s->sock;
                argv[n++] = "--unixsocketperm";
                argv[n++] = "700";
        } else {
                argv[n++] = "--bind";
                argv[n++] = "127.0.0.1";
        }
        if (s->password) {
                argv[n++] = "--requirepass";
                argv[n++] = s->password;
        }
        argv[n++] = "--save";
        argv[n++] = "";
        argv[n++] = "--appendonly";
        argv[n++] = "no";
        argv[n++] = "--daemonize";
        argv[n++] = "no";
        argv[n++] = "--dir";
        argv[n++] = s->dir;
        argv[n] = NULL;

        s->pid = fork();
        assert_true(s->pid >= 0);
        if (s->pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (fd >= 0) {
                        (void) dup2(fd, STDOUT_FILENO);
                        (void) dup2(fd, STDERR_FILENO);
                }
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        deadline = mono_usec() + WAIT;
        while (!server_ready(s)) {
                assert_int_equal(waitpid(s->pid, NULL, WNOHANG), 0);   /* still running */
                assert_true(mono_usec() < deadline);
                (void) usleep(5000);
        }
}

static void server_signal(Server *s, int sig) {
        assert_true(s->pid > 0);
        assert_int_equal(kill(s->pid, sig), 0);
        if (sig == SIGKILL) {
                assert_int_equal(waitpid(s->pid, NULL, 0), s->pid);
                s->pid = 0;
        }
}

static uint16_t free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        (void) close(fd);
        return ntohs(a.sin_port);
}

static int fixture_setup(void **state, bool start, uint16_t port, const char *password) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        (void) snprintf(f->server.dir, sizeof(f->server.dir), "/tmp/test-ev-redis.XXXXXX");
        assert_non_null(mkdtemp(f->server.dir));
        (void) snprintf(f->server.sock, sizeof(f->server.sock), "%s/redis.sock", f->server.dir);
        f->server.port = port;
        f->server.password = password;
        if (start)
                server_start(&f->server);
        *state = f;
        return 0;
}

static int setup_unix(void **state) {
        return fixture_setup(state, true, 0, NULL);
}

static int setup_tcp_auth(void **state) {
        return fixture_setup(state, true, free_port(), PASSWORD);
}

static int setup_no_server(void **state) {
        return fixture_setup(state, false, 0, NULL);
}

static int teardown(void **state) {
        Fixture *f = *state;
        DIR *d;
        struct dirent *de;

        if (f->server.pid > 0) {
                (void) kill(f->server.pid, SIGKILL);
                (void) waitpid(f->server.pid, NULL, 0);
        }
        d = opendir(f->server.dir);
        if (d) {
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                (void) closedir(d);
        }
        (void) rmdir(f->server.dir);
        sd_event_unref(f->event);
        free(f);
        return 0;
}

/* ---- clients and replies ---- */

typedef struct Client {
        EvRedis *r;
        unsigned connected, disconnected;
        int last_reason;
        bool free_on_disconnect;
} Client;

static void on_connected(void *userdata) {
        Client *c = userdata;
        c->connected++;
}

static void on_disconnected(void *userdata, int reason) {
        Client *c = userdata;
        c->disconnected++;
        c->last_reason = reason;
        if (c->free_on_disconnect)
                c->r = ev_redis_free(c->r);
}

static EvRedisConfig config_for(Fixture *f, Client *c) {
        return (EvRedisConfig) {
                .unix_path = f->server.port == 0 ? f->server.sock : NULL,
                .host = f->server.port != 0 ? "127.0.0.1" : NULL,
                .port = f->server.port,
                .password = f->server.password,
                .connect_timeout_usec = 5 * SEC,
                .backoff_min_usec = BACKOFF_MIN,
                .backoff_max_usec = BACKOFF_MAX,
                .on_connected = on_connected,
                .on_disconnected = on_disconnected,
                .userdata = c,
        };
}

static void client_connect(Fixture *f, Client *c, const EvRedisConfig *cfg) {
        assert_int_equal(ev_redis_new(&c->r, f->event, cfg), 0);
        assert_false(ev_redis_is_connected(c->r));
        assert_true(RUN_UNTIL(f->event, c->connected == 1, WAIT));
        assert_true(ev_redis_is_connected(c->r));
}

typedef struct Reply {
        unsigned calls;
        unsigned nulls;
        int type;
        long long integer;
        size_t len;
        char str[64];
        size_t elements;
        size_t elem_len[8];
        char elem[8][64];
} Reply;

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        Reply *out = privdata;
        redisReply *rr = reply;

        out->calls++;
        if (!rr) {
                out->nulls++;
                return;
        }
        out->type = rr->type;
        out->integer = rr->integer;
        if (rr->str) {
                out->len = rr->len;
                memcpy(out->str, rr->str, MIN(rr->len, sizeof(out->str)));
        }
        out->elements = rr->elements;
        for (size_t i = 0; i < MIN(rr->elements, ELEMENTSOF(out->elem)); i++)
                if (rr->element[i]->str) {
                        out->elem_len[i] = rr->element[i]->len;
                        memcpy(out->elem[i], rr->element[i]->str,
                               MIN(rr->element[i]->len, sizeof(out->elem[i])));
                }
}

/* Sends GET @key on @c and returns the reply. */
static Reply get_key(Fixture *f, Client *c, const char *key) {
        Reply rep = { 0 };
        assert_int_equal(ev_redis_command(c->r, on_reply, &rep, "GET %s", key), 0);
        assert_true(RUN_UNTIL(f->event, rep.calls == 1, WAIT));
        return rep;
}

/* ---- tests ---- */

static void test_set_get(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        EvRedisConfig cfg = config_for(f, &c);
        Reply set = { 0 }, get = { 0 }, bad = { 0 }, get2;
        EvRedisCounters n;

        assert_int_equal(ev_redis_new(&c.r, f->event, &cfg), 0);
        assert_int_equal(ev_redis_command(c.r, on_reply, &set, "PING"), -ENOTCONN);
        assert_true(RUN_UNTIL(f->event, c.connected == 1, WAIT));
        assert_true(ev_redis_is_connected(c.r));

        assert_int_equal(ev_redis_command(c.r, on_reply, &set, "SET %s %b", "k1", "v\0x",
                                          (size_t) 3), 0);
        assert_int_equal(ev_redis_command(c.r, on_reply, &get, "GET k1"), 0);
        assert_int_equal(ev_redis_command(c.r, on_reply, &bad, "INCR k1"), 0);
        assert_int_equal(ev_redis_command(c.r, NULL, NULL, "SET k2 fire-and-forget"), 0);
        assert_true(RUN_UNTIL(f->event, bad.calls == 1, WAIT));

        assert_int_equal(set.calls, 1);
        assert_int_equal(set.type, REDIS_REPLY_STATUS);
        assert_memory_equal(set.str, "OK", 2);
        assert_int_equal(get.type, REDIS_REPLY_STRING);
        assert_int_equal(get.len, 3);
        assert_memory_equal(get.str, "v\0x", 3);
        assert_int_equal(bad.type, REDIS_REPLY_ERROR);
        get2 = get_key(f, &c, "k2");
        assert_int_equal(get2.type, REDIS_REPLY_STRING);
        assert_memory_equal(get2.str, "fire-and-forget", 15);

        ev_redis_get_counters(c.r, &n);
        assert_int_equal(n.connect_attempts, 1);
        assert_int_equal(n.connect_failures, 0);
        assert_int_equal(n.connects, 1);
        assert_int_equal(n.disconnects, 0);
        assert_int_equal(n.commands_sent, 5);
        assert_int_equal(n.command_errors, 1);          /* INCR on a string */
        c.r = ev_redis_free(c.r);
        assert_int_equal(c.disconnected, 0);            /* not called for ev_redis_free */
}

typedef struct Pipeline {
        long long next;
        unsigned answered, wrong;
} Pipeline;

static void on_incr(redisAsyncContext *ac, void *reply, void *privdata) {
        Pipeline *p = privdata;
        redisReply *rr = reply;

        p->answered++;
        if (!rr || rr->type != REDIS_REPLY_INTEGER || rr->integer != ++p->next)
                p->wrong++;
}

static void test_pipeline(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        EvRedisConfig cfg = config_for(f, &c);
        Pipeline p = { 0 };
        EvRedisCounters n;

        client_connect(f, &c, &cfg);
        for (unsigned i = 0; i < 10000; i++)
                assert_int_equal(ev_redis_command(c.r, on_incr, &p, "INCR counter"), 0);
        assert_true(RUN_UNTIL(f->event, p.answered == 10000, WAIT));
        assert_int_equal(p.wrong, 0);
        assert_int_equal(p.next, 10000);
        ev_redis_get_counters(c.r, &n);
        assert_int_equal(n.commands_sent, 10000);
        assert_int_equal(n.command_errors, 0);
        c.r = ev_redis_free(c.r);
}

static void test_hash(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        EvRedisConfig cfg = config_for(f, &c);
        Reply hset = { 0 }, all = { 0 };
        const char *argv[] = { "HSET", "h", "f1", "v1", "f2", "\x01\0\x02\0" };
        const size_t argvlen[] = { 4, 1, 2, 2, 2, 4 };

        client_connect(f, &c, &cfg);
        assert_int_equal(ev_redis_command_argv(c.r, on_reply, &hset, 0, argv, argvlen), -EINVAL);
        assert_int_equal(ev_redis_command_argv(c.r, on_reply, &hset, 6, argv, argvlen), 0);
        assert_int_equal(ev_redis_command(c.r, on_reply, &all, "HGETALL h"), 0);
        assert_true(RUN_UNTIL(f->event, all.calls == 1, WAIT));
        assert_int_equal(hset.type, REDIS_REPLY_INTEGER);
        assert_int_equal(hset.integer, 2);
        assert_int_equal(all.type, REDIS_REPLY_ARRAY);
        assert_int_equal(all.elements, 4);
        /* Field order of small hashes (listpack) is insertion order. */
        assert_memory_equal(all.elem[0], "f1", 2);
        assert_memory_equal(all.elem[1], "v1", 2);
        assert_memory_equal(all.elem[2], "f2", 2);
        assert_int_equal(all.elem_len[3], 4);
        assert_memory_equal(all.elem[3], "\x01\0\x02\0", 4);
        c.r = ev_redis_free(c.r);
}

typedef struct Subscription {
        unsigned subscribed, messages, nulls;
        char last[64];
} Subscription;

static void on_subscription(redisAsyncContext *ac, void *reply, void *privdata) {
        Subscription *s = privdata;
        redisReply *rr = reply;

        if (!rr) {
                s->nulls++;
                return;
        }
        assert_int_equal(rr->type, REDIS_REPLY_ARRAY);
        assert_int_equal(rr->elements, 3);
        if (strcmp(rr->element[0]->str, "subscribe") == 0)
                s->subscribed++;
        else if (strcmp(rr->element[0]->str, "message") == 0) {
                assert_string_equal(rr->element[1]->str, "ipfixd:tmpl:events");
                (void) snprintf(s->last, sizeof(s->last), "%s", rr->element[2]->str);
                s->messages++;
        }
}

static void test_pubsub(void **state) {
        Fixture *f = *state;
        Client sub = { 0 }, pub = { 0 };
        EvRedisConfig sub_cfg = config_for(f, &sub), pub_cfg = config_for(f, &pub);
        Subscription s = { 0 };
        Reply p1 = { 0 }, p2 = { 0 };
        EvRedisCounters n;

        client_connect(f, &sub, &sub_cfg);
        client_connect(f, &pub, &pub_cfg);
        assert_int_equal(ev_redis_command(sub.r, on_subscription, &s, "SUBSCRIBE %s",
                                          "ipfixd:tmpl:events"), 0);
        assert_true(RUN_UNTIL(f->event, s.subscribed == 1, WAIT));

        assert_int_equal(ev_redis_command(pub.r, on_reply, &p1, "PUBLISH %s %s",
                                          "ipfixd:tmpl:events", "first"), 0);
        assert_true(RUN_UNTIL(f->event, s.messages == 1 && p1.calls == 1, WAIT));
        assert_string_equal(s.last, "first");
        assert_int_equal(p1.integer, 1);                /* one subscriber got it */
        assert_int_equal(ev_redis_command(pub.r, on_reply, &p2, "PUBLISH %s %s",
                                          "ipfixd:tmpl:events", "second"), 0);
        assert_true(RUN_UNTIL(f->event, s.messages == 2, WAIT));
        assert_string_equal(s.last, "second");

        /* A quiet subscription is not "in flight": no command timeout applies to it. */
        ev_redis_get_counters(sub.r, &n);
        assert_int_equal(n.commands_sent, 1);
        assert_int_equal(n.command_errors, 0);
        sub.r = ev_redis_free(sub.r);
        assert_int_equal(s.nulls, 1);                   /* subscription callback told */
        pub.r = ev_redis_free(pub.r);
}

typedef struct Outage {
        Fixture *fixture;
        Client *client;
        uint64_t restarted_at;
        unsigned refused;               /* probes that got -ENOTCONN */
        sd_event_source *probe;
} Outage;

static int on_restart(sd_event_source *s, uint64_t usec, void *userdata) {
        Outage *o = userdata;
        server_start(&o->fixture->server);
        o->restarted_at = mono_usec();
        return 0;
}

static int on_probe(sd_event_source *s, uint64_t usec, void *userdata) {
        Outage *o = userdata;
        int r = ev_redis_command(o->client->r, NULL, NULL, "PING");

        if (r == -ENOTCONN)
                o->refused++;
        else
                assert_int_equal(r, 0);
        (void) sd_event_source_set_time_relative(s, 30 * MSEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void test_kill_restart(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        EvRedisConfig cfg = config_for(f, &c);
        Outage o = { .fixture = f, .client = &c };
        Reply blpop = { 0 }, set = { 0 }, get;
        sd_event_source *restart;
        EvRedisCounters n;
        uint64_t took;

        client_connect(f, &c, &cfg);
        /* Blocks on the server: certainly in flight when it dies. */
        assert_int_equal(ev_redis_command(c.r, on_reply, &blpop, "BLPOP nokey 0"), 0);
        run_for(f->event, 50 * MSEC);
        assert_int_equal(blpop.calls, 0);

        server_signal(&f->server, SIGKILL);
        assert_true(RUN_UNTIL(f->event, c.disconnected == 1, WAIT));
        assert_true(c.last_reason < 0);
        assert_int_equal(blpop.calls, 1);
        assert_int_equal(blpop.nulls, 1);
        assert_false(ev_redis_is_connected(c.r));
        assert_int_equal(ev_redis_command(c.r, on_reply, &set, "SET a b"), -ENOTCONN);
        assert_int_equal(set.calls, 0);
        ev_redis_get_counters(c.r, &n);
        assert_int_equal(n.disconnects, 1);
        assert_int_equal(n.command_errors, 1);          /* the BLPOP */
        assert_true(ev_redis_last_error(c.r)[0] != '\0');

        /* The server comes back 400 ms later; meanwhile every probe is refused. */
        assert_int_equal(sd_event_add_time_relative(f->event, &restart, CLOCK_MONOTONIC,
                                                    400 * MSEC, 0, on_restart, &o), 0);
        assert_int_equal(sd_event_add_time_relative(f->event, &o.probe, CLOCK_MONOTONIC,
                                                    0, 0, on_probe, &o), 0);
        assert_true(RUN_UNTIL(f->event, c.connected == 2, WAIT));
        took = mono_usec() - o.restarted_at;
        (void) sd_event_source_set_enabled(o.probe, SD_EVENT_OFF);
        assert_true(o.restarted_at > 0);
        print_message("reconnected %llu ms after the restart; %u probes refused meanwhile\n",
                      (unsigned long long) (took / MSEC), o.refused);
        /* Within one maximal backoff step plus the connect itself. */
        assert_true(took < BACKOFF_MAX + 500 * MSEC);
        assert_true(o.refused >= 3);
        ev_redis_get_counters(c.r, &n);
        assert_int_equal(n.connects, 2);
        assert_int_equal(n.disconnects, 1);
        assert_true(n.connect_failures >= 1);           /* attempts during the outage */
        assert_int_equal(n.connect_attempts, n.connects + n.connect_failures);

        assert_int_equal(ev_redis_command(c.r, on_reply, &set, "SET a b"), 0);
        get = get_key(f, &c, "a");
        assert_int_equal(set.type, REDIS_REPLY_STATUS);
        assert_int_equal(get.type, REDIS_REPLY_STRING);
        assert_memory_equal(get.str, "b", 1);

        sd_event_source_unref(restart);
        sd_event_source_unref(o.probe);
        c.r = ev_redis_free(c.r);
}

static void test_command_timeout(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        EvRedisConfig cfg = config_for(f, &c);
        Reply get = { 0 };
        EvRedisCounters n;
        uint64_t start;

        cfg.command_timeout_usec = 300 * MSEC;
        cfg.connect_timeout_usec = 300 * MSEC;
        client_connect(f, &c, &cfg);
        /* Replies flowing keep the connection up, however long the whole burst takes. */
        assert_int_equal(ev_redis_command(c.r, NULL, NULL, "SET x 1"), 0);
        run_for(f->event, 400 * MSEC);
        assert_int_equal(c.disconnected, 0);

        server_signal(&f->server, SIGSTOP);             /* hangs without closing anything */
        start = mono_usec();
        assert_int_equal(ev_redis_command(c.r, on_reply, &get, "GET x"), 0);
        assert_true(RUN_UNTIL(f->event, c.disconnected == 1, WAIT));
        assert_true(mono_usec() - start >= 290 * MSEC);
        assert_int_equal(c.last_reason, -ETIMEDOUT);
        assert_int_equal(get.nulls, 1);
        /* Reconnects meanwhile connect (the kernel accepts) but the handshake times out. */
        assert_true(RUN_UNTIL(f->event, (ev_redis_get_counters(c.r, &n), n.connect_failures >= 1),
                              WAIT));
        assert_string_equal(ev_redis_last_error(c.r), "handshake timed out after 300 ms");

        server_signal(&f->server, SIGCONT);
        assert_true(RUN_UNTIL(f->event, c.connected == 2, WAIT));
        get = get_key(f, &c, "x");
        assert_memory_equal(get.str, "1", 1);
        c.r = ev_redis_free(c.r);
}

static int on_accept_close(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        int conn;

        while ((conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
                (void) close(conn);
        return 0;
}

static void test_connect_timeout_hangup(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        sd_event_source *hangup;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        EvRedisConfig cfg;
        EvRedisCounters n;
        int fd;

        /* A listener that never accepts nor answers: connect(2) succeeds, PING hangs. */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 64), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        cfg = (EvRedisConfig) {
                .host = "127.0.0.1",
                .port = ntohs(a.sin_port),
                .connect_timeout_usec = 100 * MSEC,
                .backoff_min_usec = 10 * MSEC,
                .backoff_max_usec = 40 * MSEC,
                .on_connected = on_connected,
                .on_disconnected = on_disconnected,
                .userdata = &c,
        };
        assert_int_equal(ev_redis_new(&c.r, f->event, &cfg), 0);
        assert_true(RUN_UNTIL(f->event, (ev_redis_get_counters(c.r, &n), n.connect_failures >= 3),
                              WAIT));
        assert_int_equal(c.connected, 0);
        assert_int_equal(c.disconnected, 0);            /* never was connected */
        assert_int_equal(n.connects, 0);
        assert_true(n.connect_attempts >= 3);
        assert_string_equal(ev_redis_last_error(c.r), "handshake timed out after 100 ms");
        c.r = ev_redis_free(c.r);

        /* The same listener, now accepting and hanging up at once: EOF during the handshake
         * is a failed attempt too, not a lost connection. */
        assert_int_equal(sd_event_add_io(f->event, &hangup, fd, EPOLLIN, on_accept_close, NULL),
                         0);
        assert_int_equal(ev_redis_new(&c.r, f->event, &cfg), 0);
        assert_true(RUN_UNTIL(f->event, (ev_redis_get_counters(c.r, &n), n.connect_failures >= 3),
                              WAIT));
        assert_int_equal(c.connected, 0);
        assert_int_equal(c.disconnected, 0);
        assert_string_equal(ev_redis_last_error(c.r), "Server closed the connection");
        c.r = ev_redis_free(c.r);
        sd_event_source_disable_unref(hangup);
        (void) close(fd);
}

static void test_refused(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        EvRedisConfig cfg = config_for(f, &c);          /* no server on the socket */
        EvRedisCounters n;
        uint64_t start = mono_usec();

        assert_int_equal(ev_redis_new(&c.r, f->event, &cfg), 0);
        assert_true(RUN_UNTIL(f->event, (ev_redis_get_counters(c.r, &n), n.connect_failures >= 5),
                              WAIT));
        /* Backoff: 5 failures take at least 10 + 20 + 40 + 80 ms (the lower halves). */
        assert_true(mono_usec() - start >= 150 * MSEC);
        assert_non_null(strstr(ev_redis_last_error(c.r), "No such file"));
        assert_int_equal(ev_redis_command(c.r, NULL, NULL, "PING"), -ENOTCONN);
        c.r = ev_redis_free(c.r);

        /* TCP to a closed loopback port. */
        cfg = (EvRedisConfig) {
                .host = "127.0.0.1",
                .port = free_port(),
                .backoff_min_usec = BACKOFF_MIN,
                .backoff_max_usec = BACKOFF_MAX,
                .on_connected = on_connected,
                .userdata = &c,
        };
        assert_int_equal(ev_redis_new(&c.r, f->event, &cfg), 0);
        assert_true(RUN_UNTIL(f->event, (ev_redis_get_counters(c.r, &n), n.connect_failures >= 3),
                              WAIT));
        assert_non_null(strstr(ev_redis_last_error(c.r), "refused"));
        assert_int_equal(c.connected, 0);
        c.r = ev_redis_free(c.r);
}

static void test_auth_select(void **state) {
        Fixture *f = *state;
        Client a = { 0 }, b = { 0 }, d = { 0 };
        EvRedisConfig cfg_a = config_for(f, &a), cfg_b = config_for(f, &b),
                      cfg_d = config_for(f, &d);
        Reply set = { 0 }, got;

        cfg_a.db = 3;
        cfg_d.db = 3;
        cfg_d.username = "default";                     /* ACL form: AUTH user password */
        client_connect(f, &a, &cfg_a);
        client_connect(f, &b, &cfg_b);
        client_connect(f, &d, &cfg_d);
        assert_int_equal(ev_redis_command(a.r, on_reply, &set, "SET only-in-3 yes"), 0);
        assert_true(RUN_UNTIL(f->event, set.calls == 1, WAIT));
        assert_int_equal(set.type, REDIS_REPLY_STATUS);
        got = get_key(f, &b, "only-in-3");
        assert_int_equal(got.type, REDIS_REPLY_NIL);
        got = get_key(f, &d, "only-in-3");
        assert_int_equal(got.type, REDIS_REPLY_STRING);
        assert_memory_equal(got.str, "yes", 3);
        a.r = ev_redis_free(a.r);
        b.r = ev_redis_free(b.r);
        d.r = ev_redis_free(d.r);
}

static void test_wrong_password(void **state) {
        Fixture *f = *state;
        Client wrong = { 0 }, none = { 0 };
        EvRedisConfig cfg_wrong = config_for(f, &wrong), cfg_none = config_for(f, &none);
        EvRedisCounters n;

        cfg_wrong.password = "not-the-password";
        cfg_none.password = NULL;
        assert_int_equal(ev_redis_new(&wrong.r, f->event, &cfg_wrong), 0);
        assert_int_equal(ev_redis_new(&none.r, f->event, &cfg_none), 0);
        assert_true(RUN_UNTIL(f->event, (ev_redis_get_counters(wrong.r, &n),
                                         n.connect_failures >= 3), WAIT));
        assert_int_equal(n.connects, 0);
        assert_true(n.connect_attempts >= 3);
        assert_int_equal(wrong.connected, 0);
        assert_int_equal(wrong.disconnected, 0);
        assert_non_null(strstr(ev_redis_last_error(wrong.r), "AUTH: WRONGPASS"));
        assert_null(strstr(ev_redis_last_error(wrong.r), "not-the-password"));
        assert_int_equal(ev_redis_command(wrong.r, NULL, NULL, "PING"), -ENOTCONN);

        assert_true(RUN_UNTIL(f->event, (ev_redis_get_counters(none.r, &n),
                                         n.connect_failures >= 3), WAIT));
        assert_int_equal(none.connected, 0);
        assert_non_null(strstr(ev_redis_last_error(none.r), "PING: NOAUTH"));
        wrong.r = ev_redis_free(wrong.r);
        none.r = ev_redis_free(none.r);
}

static void test_free_in_flight(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        EvRedisConfig cfg = config_for(f, &c);
        Reply blpop = { 0 }, nulls = { 0 };

        client_connect(f, &c, &cfg);
        assert_int_equal(ev_redis_command(c.r, on_reply, &blpop, "BLPOP nokey 0"), 0);
        for (unsigned i = 0; i < 100; i++)
                assert_int_equal(ev_redis_command(c.r, on_reply, &nulls, "INCR n"), 0);
        run_for(f->event, 50 * MSEC);                   /* on the wire, queued behind BLPOP */
        for (unsigned i = 0; i < 100; i++)              /* and some never written */
                assert_int_equal(ev_redis_command(c.r, on_reply, &nulls, "INCR n"), 0);
        assert_int_equal(blpop.calls + nulls.calls, 0);

        c.r = ev_redis_free(c.r);
        assert_int_equal(blpop.calls, 1);
        assert_int_equal(blpop.nulls, 1);
        assert_int_equal(nulls.calls, 200);
        assert_int_equal(nulls.nulls, 200);
        assert_int_equal(c.disconnected, 0);
        run_for(f->event, 20 * MSEC);                   /* nothing left that could fire */
}

typedef struct FreeInCallback {
        Client *client;
        unsigned calls, nulls;
} FreeInCallback;

static void on_reply_free(redisAsyncContext *ac, void *reply, void *privdata) {
        FreeInCallback *x = privdata;

        x->calls++;
        if (!reply)
                x->nulls++;
        else
                x->client->r = ev_redis_free(x->client->r);
}

static void test_free_in_callback(void **state) {
        Fixture *f = *state;
        Client c = { 0 };
        EvRedisConfig cfg = config_for(f, &c);
        FreeInCallback x = { .client = &c };

        client_connect(f, &c, &cfg);
        /* Eleven replies arrive together; the first callback frees the EvRedis. */
        for (unsigned i = 0; i < 11; i++)
                assert_int_equal(ev_redis_command(c.r, on_reply_free, &x, "INCR n"), 0);
        assert_true(RUN_UNTIL(f->event, x.calls == 11, WAIT));
        assert_null(c.r);
        assert_int_equal(x.nulls, 10);
        run_for(f->event, 20 * MSEC);
}

static void on_connected_free(void *userdata) {
        Client *c = userdata;
        c->connected++;
        c->r = ev_redis_free(c->r);
}

static void test_free_in_owner_callbacks(void **state) {
        Fixture *f = *state;
        Client c = { .free_on_disconnect = true }, d = { 0 };
        EvRedisConfig cfg = config_for(f, &c), cfg_d = config_for(f, &d);
        Reply blpop = { 0 };

        /* From on_connected (inside the handshake reply). */
        cfg_d.on_connected = on_connected_free;
        assert_int_equal(ev_redis_new(&d.r, f->event, &cfg_d), 0);
        assert_true(RUN_UNTIL(f->event, d.connected == 1, WAIT));
        assert_null(d.r);

        /* From on_disconnected (inside hiredis tearing the connection down). */
        client_connect(f, &c, &cfg);
        assert_int_equal(ev_redis_command(c.r, on_reply, &blpop, "BLPOP nokey 0"), 0);
        run_for(f->event, 50 * MSEC);
        server_signal(&f->server, SIGKILL);
        assert_true(RUN_UNTIL(f->event, c.disconnected == 1, WAIT));
        assert_null(c.r);
        assert_int_equal(blpop.nulls, 1);
        run_for(f->event, 3 * BACKOFF_MAX);             /* no retry timer left behind */
}

typedef struct Raw {
        unsigned connects, disconnects;
        int status;
} Raw;

static void raw_on_connect(const redisAsyncContext *ac, int status) {
        Raw *raw = ac->data;
        raw->connects++;
        raw->status = status;
}

static void raw_on_disconnect(const redisAsyncContext *ac, int status) {
        Raw *raw = ac->data;
        raw->disconnects++;
        raw->status = status;
}

static void test_attach_raw(void **state) {
        Fixture *f = *state;
        redisAsyncContext *ac;
        Reply pong = { 0 };
        Raw raw = { 0 };
        int flags;

        ac = redisAsyncConnectUnix("/nonexistent/redis.sock");
        assert_non_null(ac);
        assert_true(ac->err != 0);
        assert_int_equal(ev_redis_attach(ac, f->event), -EBADF);
        redisAsyncFree(ac);

        ac = redisAsyncConnectUnix(f->server.sock);
        assert_non_null(ac);
        assert_int_equal(ac->err, 0);
        assert_int_equal(ev_redis_attach(ac, f->event), 0);
        assert_int_equal(ev_redis_attach(ac, f->event), -EEXIST);
        flags = fcntl(ac->c.fd, F_GETFD);
        assert_true(flags >= 0 && (flags & FD_CLOEXEC));
        ac->data = &raw;
        assert_int_equal(redisAsyncSetConnectCallback(ac, raw_on_connect), REDIS_OK);
        assert_int_equal(redisAsyncSetDisconnectCallback(ac, raw_on_disconnect), REDIS_OK);
        assert_int_equal(redisAsyncCommand(ac, on_reply, &pong, "PING"), REDIS_OK);
        assert_true(RUN_UNTIL(f->event, pong.calls == 1, WAIT));
        assert_int_equal(raw.connects, 1);
        assert_int_equal(raw.status, REDIS_OK);
        assert_int_equal(pong.type, REDIS_REPLY_STATUS);
        assert_memory_equal(pong.str, "PONG", 4);

        /* A clean disconnect: hiredis frees the context and our cleanup hook the source. */
        redisAsyncDisconnect(ac);
        assert_true(RUN_UNTIL(f->event, raw.disconnects == 1, WAIT));
        assert_int_equal(raw.status, REDIS_OK);
        run_for(f->event, 20 * MSEC);
}

static void test_config_invalid(void **state) {
        Fixture *f = *state;
        EvRedis *r = NULL;
        EvRedisConfig cfg = { .unix_path = "/x", .host = "127.0.0.1", .port = 6379 };
        char long_path[200];

        assert_int_equal(ev_redis_new(&r, f->event, &cfg), -EINVAL);            /* both */
        cfg = (EvRedisConfig) { 0 };
        assert_int_equal(ev_redis_new(&r, f->event, &cfg), -EINVAL);            /* neither */
        cfg = (EvRedisConfig) { .host = "127.0.0.1" };
        assert_int_equal(ev_redis_new(&r, f->event, &cfg), -EINVAL);            /* port 0 */
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[sizeof(long_path) - 1] = '\0';
        cfg = (EvRedisConfig) { .unix_path = long_path };
        assert_int_equal(ev_redis_new(&r, f->event, &cfg), -EINVAL);
        cfg = (EvRedisConfig) { .unix_path = "/x", .username = "u" };
        assert_int_equal(ev_redis_new(&r, f->event, &cfg), -EINVAL);
        cfg = (EvRedisConfig) { .unix_path = "/x", .backoff_min_usec = 2, .backoff_max_usec = 1 };
        assert_int_equal(ev_redis_new(&r, f->event, &cfg), -EINVAL);
        assert_null(r);
        assert_null(ev_redis_free(NULL));
}

static bool in_path(const char *name) {
        const char *path = getenv("PATH");
        char buf[PATH_MAX];

        while (path && *path) {
                size_t n = strcspn(path, ":");
                if (n > 0 && (size_t) snprintf(buf, sizeof(buf), "%.*s/%s", (int) n, path, name) <
                                     sizeof(buf) &&
                    access(buf, X_OK) == 0)
                        return true;
                path += n + (path[n] == ':');
        }
        return false;
}

int main(void) {
        struct sigaction ign = { .sa_handler = SIG_IGN };
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_config_invalid, setup_no_server, teardown),
                cmocka_unit_test_setup_teardown(test_attach_raw, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_set_get, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_pipeline, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_hash, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_pubsub, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_kill_restart, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_command_timeout, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_connect_timeout_hangup, setup_no_server, teardown),
                cmocka_unit_test_setup_teardown(test_refused, setup_no_server, teardown),
                cmocka_unit_test_setup_teardown(test_auth_select, setup_tcp_auth, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_password, setup_tcp_auth, teardown),
                cmocka_unit_test_setup_teardown(test_free_in_flight, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_free_in_callback, setup_unix, teardown),
                cmocka_unit_test_setup_teardown(test_free_in_owner_callbacks, setup_unix,
                                                teardown),
        };

        if (!in_path("redis-server")) {
                fprintf(stderr, "redis-server not found in PATH, skipping\n");
                return 77;
        }
        /* hiredis 0.14.1 writes with write(2): a dead server must not kill us with SIGPIPE. */
        if (sigaction(SIGPIPE, &ign, NULL) < 0)
                return EXIT_FAILURE;
        return cmocka_run_group_tests_name("ev-redis", tests, NULL, NULL);
}
