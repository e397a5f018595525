/* SPDX-License-Identifier: MIT */
/*
 * test-api-templates.c - api_templates_fetch() against real redis-server processes the test
 * starts itself (one on a unix socket in a temporary directory, one on a random loopback TCP
 * port with --requirepass), filled with hiredis directly: templates serialized with
 * ipfix_template_serialize() as the collector stores them, plus malformed fields, values and
 * keys. Also a unix socket nobody listens on, a TCP port nobody listens on and a listener
 * that never answers. Exit code 77 ("skipped") when redis-server is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
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

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "ipfix.h"
#include "templates.h"

#define PASSWORD "t3mpl-pw"
#define PREFIX "ipfixd:"
#define TIMEOUT_MS 10000    /* generous: the same holds under valgrind */

/* ---- redis-server ---- */

typedef struct Server {
        pid_t pid;
        char sock[128];         /* unix socket, or "" */
        uint16_t port;          /* TCP port (127.0.0.1, and ::1 when available), or 0 */
        const char *password;
        char address[160];      /* for ApiRedisConfig */
} Server;

typedef struct World {
        char dir[64];
        Server plain, auth;
        redisContext *plain_c, *auth_c;
        bool v6;                /* the auth server also listens on ::1 */
} World;

static World w;

static uint64_t mono_msec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static bool can_connect(int family, const char *unix_path, uint16_t port) {
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } a = { 0 };
        socklen_t len;
        int fd, r;

        if (family == AF_UNIX) {
                a.un.sun_family = AF_UNIX;
                (void) snprintf(a.un.sun_path, sizeof(a.un.sun_path), "%s", unix_path);
                len = sizeof(a.un);
        } else if (family == AF_INET) {
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(port);
                a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                len = sizeof(a.in);
        } else {
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                a.in6.sin6_addr = in6addr_loopback;
                len = sizeof(a.in6);
        }
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        r = connect(fd, &a.sa, len);
        (void) close(fd);
        return r == 0;
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

static int server_start(Server *s, const char *name) {
        char port[8], log[128], dir[96];
        const char *argv[32];
        uint64_t deadline;
        int n = 0;

        (void) snprintf(port, sizeof(port), "%u", s->port);
        (void) snprintf(log, sizeof(log), "%s/%s.log", w.dir, name);
        (void) snprintf(dir, sizeof(dir), "%s", w.dir);
        argv[n++] = "redis-server";
        argv[n++] = "--port";
        argv[n++] = port;
        if (s->sock[0]) {
                argv[n++] = "--unixsocket";
                argv[n++] = s->sock;
                argv[n++] = "--unixsocketperm";
                argv[n++] = "700";
        } else {
                /* "-": optional, for machines without IPv6 loopback. */
                argv[n++] = "--bind";
                argv[n++] = "127.0.0.1";
                argv[n++] = "-::1";
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
        argv[n++] = "--dbfilename";
        argv[n++] = name;
        argv[n++] = "--dir";
        argv[n++] = dir;
        argv[n] = NULL;

        s->pid = fork();
        if (s->pid < 0)
                return -errno;
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
        deadline = mono_msec() + 20000;
        while (!(s->sock[0] ? can_connect(AF_UNIX, s->sock, 0)
                            : can_connect(AF_INET, NULL, s->port))) {
                if (waitpid(s->pid, NULL, WNOHANG) != 0 || mono_msec() > deadline) {
                        fprintf(stderr, "redis-server %s did not start, see %s\n", name, log);
                        return -EIO;
                }
                (void) usleep(5000);
        }
        return 0;
}

static void server_stop(Server *s) {
        if (s->pid > 0) {
                (void) kill(s->pid, SIGKILL);
                (void) waitpid(s->pid, NULL, 0);
                s->pid = 0;
        }
}

static void rm_rf_dir(const char *dir) {
        const char *names[] = { "plain.log", "auth.log", "plain", "auth", "redis.sock",
                                "dead.sock", "hang.sock" };
        char p[160];

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                (void) snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
                (void) unlink(p);
        }
        (void) rmdir(dir);
}

static redisContext *client(const Server *s) {
        redisContext *c;

        c = s->sock[0] ? redisConnectUnix(s->sock) : redisConnect("127.0.0.1", s->port);
        if (!c || c->err)
                return NULL;
        if (s->password) {
                redisReply *r = redisCommand(c, "AUTH %s", s->password);
                bool ok = r && r->type == REDIS_REPLY_STATUS;
                if (r)
                        freeReplyObject(r);
                if (!ok) {
                        redisFree(c);
                        return NULL;
                }
        }
        return c;
}

static int group_setup(void **state) {
        (void) snprintf(w.dir, sizeof(w.dir), "/tmp/test-api-templates.XXXXXX");
        if (!mkdtemp(w.dir))
                return -1;
        (void) snprintf(w.plain.sock, sizeof(w.plain.sock), "%s/redis.sock", w.dir);
        (void) snprintf(w.plain.address, sizeof(w.plain.address), "unix:%s", w.plain.sock);
        w.auth.port = free_port();
        w.auth.password = PASSWORD;
        (void) snprintf(w.auth.address, sizeof(w.auth.address), "127.0.0.1:%u", w.auth.port);
        if (server_start(&w.plain, "plain") < 0 || server_start(&w.auth, "auth") < 0)
                return -1;
        w.v6 = can_connect(AF_INET6, NULL, w.auth.port);
        w.plain_c = client(&w.plain);
        w.auth_c = client(&w.auth);
        return w.plain_c && w.auth_c ? 0 : -1;
}

static int group_teardown(void **state) {
        if (w.plain_c)
                redisFree(w.plain_c);
        if (w.auth_c)
                redisFree(w.auth_c);
        server_stop(&w.plain);
        server_stop(&w.auth);
        rm_rf_dir(w.dir);
        return 0;
}

/* ---- filling Redis ---- */

/* A hiredis format (%s, %b, ...): no printf attribute. */
static void cmd(redisContext *c, const char *fmt, ...) {
        redisReply *r;
        va_list ap;

        va_start(ap, fmt);
        r = redisvCommand(c, fmt, ap);
        va_end(ap);
        assert_non_null(r);
        if (r->type == REDIS_REPLY_ERROR)
                fail_msg("redis: %s", r->str);
        freeReplyObject(r);
}

static int setup_flush(void **state) {
        cmd(w.plain_c, "FLUSHALL");
        cmd(w.auth_c, "FLUSHALL");
        return 0;
}

typedef struct Def {
        const char *exporter;
        uint32_t odid;
        uint16_t id;
        uint16_t scope;
        uint16_t n;
        IpfixField f[8];
} Def;

/* In the answer's order: exporter text, odid (numeric: 2 before 10), template id (numeric:
 * 1000 after 300); options templates, variable-length and enterprise fields. */
static const Def defs[] = {
        { "10.0.0.1", UINT32_MAX, 65535, 0, 2, { { 0, 8, 4 }, { 0, 12, 4 } } },
        { "192.0.2.7", 1, 256, 0, 7,
          { { 0, 8, 4 }, { 0, 12, 4 }, { 0, 4, 1 }, { 0, 7, 2 }, { 0, 11, 2 }, { 0, 1, 8 },
            { 0, 2, 8 } } },
        { "192.0.2.7", 1, 300, 1, 3, { { 0, 149, 4 }, { 0, 41, 8 }, { 0, 42, 8 } } },
        { "192.0.2.7", 1, 1000, 0, 3,
          { { 0, 8, 4 }, { 29305, 1, IPFIX_VARLEN }, { 0, 82, IPFIX_VARLEN } } },
        { "192.0.2.7", 2, 256, 0, 2, { { 0, 27, 16 }, { 0, 28, 16 } } },
        { "192.0.2.7", 10, 256, 2, 3, { { 0, 144, 4 }, { 0, 149, 4 }, { 0, 160, 8 } } },
        { "2001:db8::7", 1, 257, 0, 3,
          { { 9, 12232, 4 }, { 9, 12233, IPFIX_VARLEN }, { 0, 1, 4 } } },
        { "2001:db8::7", 1, 4096, 0, 1, { { 0, 27, 16 } } },
        { "2001:db8::7", 7, 256, 0, 1, { { UINT32_MAX, 32767, 2 } } },
};
#define N_DEFS (sizeof(defs) / sizeof(defs[0]))
#define N_KEYS 6u

static void put(redisContext *c, const char *prefix, const Def *d) {
        IpfixTemplate *t = ipfix_template_new(d->id, d->scope, d->n);
        uint8_t buf[4 + 8 * 8];
        char key[256], field[8];
        int len;

        assert_non_null(t);
        memcpy(t->fields, d->f, d->n * sizeof(IpfixField));
        ipfix_template_finish(t);
        len = ipfix_template_serialize(t, buf, sizeof(buf));
        assert_true(len > 0);
        (void) snprintf(key, sizeof(key), "%stmpl:{%s}:%u", prefix, d->exporter, d->odid);
        (void) snprintf(field, sizeof(field), "%u", d->id);
        cmd(c, "HSET %s %s %b", key, field, buf, (size_t) len);
        free(t);
}

static void put_all(redisContext *c, const char *prefix) {
        for (size_t i = N_DEFS; i > 0; i--)     /* backwards: the answer must be sorted */
                put(c, prefix, &defs[i - 1]);
}

/* ---- fetching and checking ---- */

static ApiTemplatesQuery query(const char *exporter, int64_t odid, size_t limit) {
        ApiTemplatesQuery q = { .limit = limit };

        if (exporter) {
                q.has_exporter = true;
                (void) snprintf(q.exporter, sizeof(q.exporter), "%s", exporter);
        }
        if (odid >= 0) {
                q.has_odid = true;
                q.odid = (uint32_t) odid;
        }
        return q;
}

static int fetch_full(const char *address, const char *password, int64_t db, const char *prefix,
                      const ApiTemplatesQuery *q, uint64_t timeout_ms, json_t **ret,
                      char **reterr) {
        ApiRedisConfig cfg = { .address = address, .password = password, .db = db,
                               .prefix = prefix };
        return api_templates_fetch(&cfg, q, timeout_ms, ret, reterr);
}

/* On the plain server with the default prefix; the answer must come. */
static json_t *fetch(const ApiTemplatesQuery *q) {
        json_t *j = NULL;
        char *err = NULL;
        int r;

        r = fetch_full(w.plain.address, NULL, 0, PREFIX, q, TIMEOUT_MS, &j, &err);
        if (r < 0)
                fail_msg("api_templates_fetch: %s (%s)", strerror(-r), err ? err : "-");
        assert_null(err);
        assert_non_null(j);
        return j;
}

static int64_t get_int(const json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        assert_non_null(v);
        assert_true(json_is_integer(v));
        return (int64_t) json_integer_value(v);
}

static void check_def(const json_t *t, const Def *d) {
        const json_t *fields;

        assert_true(json_is_object(t));
        assert_int_equal(json_object_size(t), 5);
        assert_string_equal(json_string_value(json_object_get(t, "exporter")), d->exporter);
        assert_int_equal(get_int(t, "odid"), d->odid);
        assert_int_equal(get_int(t, "template_id"), d->id);
        assert_int_equal(get_int(t, "scope_fields"), d->scope);
        fields = json_object_get(t, "fields");
        assert_true(json_is_array(fields));
        assert_int_equal(json_array_size(fields), d->n);
        for (size_t i = 0; i < d->n; i++) {
                const json_t *f = json_array_get(fields, i);
                assert_int_equal(json_object_size(f), 3);
                assert_int_equal(get_int(f, "ie"), d->f[i].id);
                assert_int_equal(get_int(f, "pen"), d->f[i].pen);
                assert_int_equal(get_int(f, "length"), d->f[i].len);
        }
}

/* The answer holds exactly defs[idx[0]], defs[idx[1]], ... in that order. */
static void check(json_t *j, const size_t *idx, size_t n, int64_t exporters, int64_t malformed,
                  bool truncated) {
        const json_t *list;

        assert_true(json_is_object(j));
        assert_int_equal(json_object_size(j), 5);
        list = json_object_get(j, "templates");
        assert_true(json_is_array(list));
        assert_int_equal(json_array_size(list), n);
        for (size_t i = 0; i < n; i++)
                check_def(json_array_get(list, i), &defs[idx[i]]);
        assert_int_equal(get_int(j, "count"), n);
        assert_int_equal(get_int(j, "exporters"), exporters);
        assert_int_equal(get_int(j, "malformed"), malformed);
        assert_true(json_is_boolean(json_object_get(j, "truncated")));
        assert_int_equal(json_is_true(json_object_get(j, "truncated")), truncated);
        json_decref(j);
}

/* IDX(1, 2) -> the array and its length, for check(). */
#define IDX(...)                                \
        ((const size_t[]) { __VA_ARGS__ }),     \
        (sizeof((const size_t[]) { __VA_ARGS__ }) / sizeof(size_t))
static const size_t all[N_DEFS] = { 0, 1, 2, 3, 4, 5, 6, 7, 8 };

/* ---- tests ---- */

static void test_all_sorted(void **state) {
        ApiTemplatesQuery q = query(NULL, -1, 1000);

        put_all(w.plain_c, PREFIX);
        check(fetch(&q), all, N_DEFS, N_KEYS, 0, false);
}

static void test_exporter(void **state) {
        ApiTemplatesQuery q;

        put_all(w.plain_c, PREFIX);
        q = query("192.0.2.7", -1, 1000);
        check(fetch(&q), IDX(1, 2, 3, 4, 5), 3, 0, false);
        q = query("2001:db8::7", -1, 1000);
        check(fetch(&q), IDX(6, 7, 8), 2, 0, false);
        q = query("10.0.0.1", -1, 1000);
        check(fetch(&q), IDX(0), 1, 0, false);
        q = query("192.0.2.1", -1, 1000);
        check(fetch(&q), NULL, 0, 0, 0, false);
}

static void test_exporter_odid(void **state) {
        ApiTemplatesQuery q;

        put_all(w.plain_c, PREFIX);
        q = query("192.0.2.7", 1, 1000);
        check(fetch(&q), IDX(1, 2, 3), 1, 0, false);
        q = query("192.0.2.7", 10, 1000);
        check(fetch(&q), IDX(5), 1, 0, false);
        q = query("10.0.0.1", UINT32_MAX, 1000);
        check(fetch(&q), IDX(0), 1, 0, false);
        q = query("192.0.2.7", 3, 1000);
        check(fetch(&q), NULL, 0, 0, 0, false);
        q = query("2001:db8::7", 7, 1);
        check(fetch(&q), IDX(8), 1, 0, false);
        q = query("2001:db8::7", 1, 1);
        check(fetch(&q), IDX(6), 1, 0, true);
}

static void test_odid(void **state) {
        ApiTemplatesQuery q;

        put_all(w.plain_c, PREFIX);
        q = query(NULL, 1, 1000);
        check(fetch(&q), IDX(1, 2, 3, 6, 7), 2, 0, false);
        q = query(NULL, 10, 1000);
        check(fetch(&q), IDX(5), 1, 0, false);
        q = query(NULL, UINT32_MAX, 1000);
        check(fetch(&q), IDX(0), 1, 0, false);
        q = query(NULL, 0, 1000);
        check(fetch(&q), NULL, 0, 0, 0, false);
}

static void test_limit(void **state) {
        ApiTemplatesQuery q;

        put_all(w.plain_c, PREFIX);
        /* Reading stops at the first template past the limit: "exporters" counts the keys
         * read up to there. */
        q = query(NULL, -1, 1);
        check(fetch(&q), IDX(0), 2, 0, true);
        q = query(NULL, -1, 4);
        check(fetch(&q), IDX(0, 1, 2, 3), 3, 0, true);
        q = query(NULL, -1, N_DEFS - 1);
        check(fetch(&q), all, N_DEFS - 1, N_KEYS, 0, true);
        q = query(NULL, -1, N_DEFS);
        check(fetch(&q), all, N_DEFS, N_KEYS, 0, false);
        q = query("192.0.2.7", -1, 2);
        check(fetch(&q), IDX(1, 2), 1, 0, true);
        q = query(NULL, 1, 3);
        check(fetch(&q), IDX(1, 2, 3), 2, 0, true);
}

static void test_malformed(void **state) {
        static const uint8_t short_value[] = { 0, 0, 0 };
        static const uint8_t no_fields[] = { 0, 0, 0, 0 };
        static const uint8_t scope_over[] = { 0, 2, 0, 1, 0, 0, 0, 0, 0, 8, 0, 4 };
        static const uint8_t zero_len[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0, 0 };
        ApiTemplatesQuery q;
        redisContext *c = w.plain_c;

        put_all(c, PREFIX);
        /* Field names that are no template id (4), on a key with good templates. */
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:1 abc %b", short_value, sizeof(short_value));
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:1 255 %b", short_value, sizeof(short_value));
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:1 0300 %b", short_value, sizeof(short_value));
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:1 65536 %b", short_value, sizeof(short_value));
        /* Values that do not decode (4). */
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:2 500 %b", short_value, sizeof(short_value));
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:2 501 %b", no_fields, sizeof(no_fields));
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:2 502 %b", scope_over, sizeof(scope_over));
        cmd(c, "HSET ipfixd:tmpl:{2001:db8::7}:7 503 %b", zero_len, sizeof(zero_len));
        /* Keys that match the pattern but are no template key (7). */
        cmd(c, "SET ipfixd:tmpl:foo bar");
        cmd(c, "HSET ipfixd:tmpl:{999.1.1.1}:1 256 x");
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:01 256 x");
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:x 256 x");
        cmd(c, "HSET ipfixd:tmpl:{192.0.2.7}:4294967296 256 x");
        cmd(c, "HSET ipfixd:tmpl:{fe80::1%%eth0}:1 256 x");
        cmd(c, "HSET ipfixd:tmpl:{}:1 256 x");
        /* A template key of another type (1), and one with no good field (1, but it counts
         * as an exporter read). */
        cmd(c, "SET ipfixd:tmpl:{192.0.2.9}:1 bar");
        cmd(c, "HSET ipfixd:tmpl:{198.51.100.1}:1 1 x");
        /* Keys outside the pattern: not counted. */
        cmd(c, "HSET other:tmpl:{192.0.2.7}:1 1 x");
        cmd(c, "SET ipfixd:tmplx y");

        q = query(NULL, -1, 1000);
        {
                json_t *j = fetch(&q);
                const json_t *list = json_object_get(j, "templates");

                /* 198.51.100.1 sorts between 192.0.2.7 and 2001:db8::7 but holds nothing. */
                assert_int_equal(json_array_size(list), N_DEFS);
                check(j, all, N_DEFS, N_KEYS + 1, 4 + 4 + 7 + 1 + 1, false);
        }
        q = query("192.0.2.7", -1, 1000);
        check(fetch(&q), IDX(1, 2, 3, 4, 5), 3, 4 + 3 + 3, false);
        q = query("192.0.2.9", -1, 1000);
        check(fetch(&q), NULL, 0, 0, 1, false);
        q = query("192.0.2.9", 1, 1000);
        check(fetch(&q), NULL, 0, 0, 1, false);
        q = query(NULL, 7, 1000);
        check(fetch(&q), IDX(8), 1, 1, false);
}

static void test_empty(void **state) {
        ApiTemplatesQuery q = query(NULL, -1, 1000);

        check(fetch(&q), NULL, 0, 0, 0, false);
        q = query("192.0.2.7", 1, 1000);
        check(fetch(&q), NULL, 0, 0, 0, false);
}

/* More keys than one SCAN reply and one HGETALL batch hold. */
static void test_many_keys(void **state) {
        const unsigned n = 1500;
        ApiTemplatesQuery q = query(NULL, -1, API_TEMPLATES_MAX_LIMIT);
        const json_t *list;
        const char *prev = NULL;
        uint8_t buf[12];
        json_t *j;

        {
                IpfixTemplate *t = ipfix_template_new(256, 0, 1);
                assert_non_null(t);
                t->fields[0] = (IpfixField) { .id = 8, .len = 4 };
                ipfix_template_finish(t);
                assert_int_equal(ipfix_template_serialize(t, buf, sizeof(buf)), sizeof(buf));
                free(t);
        }
        for (unsigned i = 0; i < n; i++)
                assert_int_equal(redisAppendCommand(w.plain_c, "HSET ipfixd:tmpl:{10.%u.%u.1}:%u "
                                                    "256 %b", i / 256, i % 256, i, buf,
                                                    sizeof(buf)),
                                 REDIS_OK);
        for (unsigned i = 0; i < n; i++) {
                void *r = NULL;
                assert_int_equal(redisGetReply(w.plain_c, &r), REDIS_OK);
                freeReplyObject(r);
        }

        j = fetch(&q);
        list = json_object_get(j, "templates");
        assert_int_equal(json_array_size(list), n);
        assert_int_equal(get_int(j, "count"), n);
        assert_int_equal(get_int(j, "exporters"), n);
        assert_int_equal(get_int(j, "malformed"), 0);
        assert_true(json_is_false(json_object_get(j, "truncated")));
        for (size_t i = 0; i < n; i++) {
                const char *e = json_string_value(json_object_get(json_array_get(list, i),
                                                                  "exporter"));
                assert_non_null(e);
                if (prev)
                        assert_true(strcmp(prev, e) < 0);
                prev = e;
        }
        json_decref(j);

        q = query(NULL, -1, 100);
        j = fetch(&q);
        assert_int_equal(get_int(j, "count"), 100);
        assert_true(json_is_true(json_object_get(j, "truncated")));
        json_decref(j);
}

static void expect_error(const char *address, const char *password, const char *prefix,
                         uint64_t timeout_ms, int error, const char *text) {
        ApiTemplatesQuery q = query(NULL, -1, 1000);
        json_t *j = NULL;
        char *err = NULL;
        int r;

        r = fetch_full(address, password, 0, prefix, &q, timeout_ms, &j, &err);
        if (r != error)
                fail_msg("%s: expected %s, got %s (%s)", address, strerror(-error),
                         strerror(-r), err ? err : "-");
        assert_null(j);
        if (text) {
                assert_non_null(err);
                if (!strstr(err, text))
                        fail_msg("%s: \"%s\" lacks \"%s\"", address, err, text);
                free(err);
        } else
                assert_null(err);
}

/* A fake server on loopback: accepts one connection, answers each read with the next canned
 * answer, then closes. */
typedef struct Fake {
        int fd;
        const char *answers[4];
        size_t n;
        pthread_t thread;
        char address[64];
} Fake;

static void *fake_run(void *p) {
        Fake *f = p;
        char buf[4096];
        int c = accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);

        if (c < 0)
                return NULL;
        for (size_t i = 0; i < f->n; i++)
                if (read(c, buf, sizeof(buf)) <= 0 ||
                    write(c, f->answers[i], strlen(f->answers[i])) < 0)
                        break;
        (void) close(c);
        return NULL;
}

static void fake_start(Fake *f, size_t n, const char *const *answers) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);

        assert_true(n <= sizeof(f->answers) / sizeof(f->answers[0]));
        *f = (Fake) { .n = n };
        for (size_t i = 0; i < n; i++)
                f->answers[i] = answers[i];
        f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f->fd >= 0);
        assert_int_equal(bind(f->fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(f->fd, 4), 0);
        assert_int_equal(getsockname(f->fd, (struct sockaddr *) &a, &len), 0);
        (void) snprintf(f->address, sizeof(f->address), "127.0.0.1:%u", ntohs(a.sin_port));
        assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void fake_stop(Fake *f) {
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        (void) close(f->fd);
}

static void fake_expect(size_t n, const char *const *answers, const char *text) {
        Fake f;

        fake_start(&f, n, answers);
        expect_error(f.address, NULL, PREFIX, TIMEOUT_MS, -EIO, text);
        fake_stop(&f);
}

#define SCAN_ONE_KEY "*2\r\n$1\r\n0\r\n*1\r\n$25\r\nipfixd:tmpl:{192.0.2.7}:1\r\n"

/* Servers that close, speak garbage or answer in shapes no Redis uses: -EIO, no crash. */
static void test_bad_server(void **state) {
        ApiTemplatesQuery q = query(NULL, -1, 1000);
        char long_error[400], *err = NULL;
        json_t *j = NULL;
        Fake f;

        fake_expect(0, NULL, "redis at 127.0.0.1:");
        fake_expect(1, (const char *[]) { "+OK\r\n" }, "unexpected reply to SCAN");
        fake_expect(1, (const char *[]) { "*2\r\n:0\r\n*0\r\n" }, "unexpected reply to SCAN");
        fake_expect(1, (const char *[]) { "*2\r\n$1\r\n0\r\n*1\r\n:7\r\n" },
                    "unexpected reply to SCAN");
        fake_expect(1, (const char *[]) { "!garbage\r\n" }, "redis at 127.0.0.1:");
        fake_expect(1, (const char *[]) { "-ERR unknown command 'SCAN'\r\n" },
                    "redis: ERR unknown command");
        fake_expect(2, (const char *[]) { SCAN_ONE_KEY, ":5\r\n" },
                    "unexpected reply to HGETALL");
        fake_expect(2, (const char *[]) { SCAN_ONE_KEY, "*1\r\n$3\r\n256\r\n" },
                    "unexpected reply to HGETALL");
        fake_expect(2, (const char *[]) { SCAN_ONE_KEY, "*2\r\n$3\r\n256\r\n:1\r\n" },
                    "unexpected reply to HGETALL");
        fake_expect(1, (const char *[]) { SCAN_ONE_KEY }, "redis at 127.0.0.1:");

        /* A long error text with control characters: cut to about 200 bytes, printable. */
        memset(long_error, 'x', sizeof(long_error));
        memcpy(long_error, "-ERR \x01\x7f\xc3", 8);
        memcpy(long_error + sizeof(long_error) - 3, "\r\n", 3);
        fake_start(&f, 1, (const char *[]) { long_error });
        assert_int_equal(fetch_full(f.address, NULL, 0, PREFIX, &q, TIMEOUT_MS, &j, &err), -EIO);
        fake_stop(&f);
        assert_null(j);
        assert_non_null(err);
        assert_true(strncmp(err, "redis: ERR ???xxx", 17) == 0);
        assert_int_equal(strlen(err), strlen("redis: ") + 200);
        free(err);
}

static void test_auth(void **state) {
        ApiTemplatesQuery q = query(NULL, -1, 1000);
        json_t *j = NULL;
        char *err = NULL;

        put(w.auth_c, PREFIX, &defs[2]);
        cmd(w.auth_c, "SELECT 3");
        put(w.auth_c, PREFIX, &defs[6]);
        cmd(w.auth_c, "SELECT 0");

        assert_int_equal(fetch_full(w.auth.address, PASSWORD, 0, PREFIX, &q, TIMEOUT_MS, &j, &err),
                         0);
        check(j, IDX(2), 1, 0, false);
        assert_int_equal(fetch_full(w.auth.address, PASSWORD, 3, PREFIX, &q, TIMEOUT_MS, &j, &err),
                         0);
        check(j, IDX(6), 1, 0, false);
        if (w.v6) {
                char a[64];
                (void) snprintf(a, sizeof(a), "[::1]:%u", w.auth.port);
                assert_int_equal(fetch_full(a, PASSWORD, 3, PREFIX, &q, TIMEOUT_MS, &j, &err), 0);
                check(j, IDX(6), 1, 0, false);
        } else
                fprintf(stderr, "no IPv6 loopback: [::1]:PORT not tried\n");
        assert_null(err);

        expect_error(w.auth.address, NULL, PREFIX, TIMEOUT_MS, -EIO, "redis: NOAUTH");
        expect_error(w.auth.address, "wrong", PREFIX, TIMEOUT_MS, -EIO, "redis: WRONGPASS");
        /* AUTH on a server without a password is an error reply too. */
        expect_error(w.plain.address, PASSWORD, PREFIX, TIMEOUT_MS, -EIO, "redis: ERR");
}

static void test_glob_prefix(void **state) {
        ApiTemplatesQuery q = query(NULL, -1, 1000);
        json_t *j = NULL;
        char *err = NULL;

        /* Unescaped, "ipx[1]:tmpl:*" would match ipx1:, and "p*?\:tmpl:*" pXY:. */
        put(w.plain_c, "ipx[1]:", &defs[0]);
        put(w.plain_c, "ipx1:", &defs[1]);
        put(w.plain_c, "p*?\\:", &defs[6]);
        put(w.plain_c, "pXY:", &defs[7]);
        put(w.plain_c, PREFIX, &defs[8]);

        assert_int_equal(fetch_full(w.plain.address, NULL, 0, "ipx[1]:", &q, TIMEOUT_MS, &j, &err),
                         0);
        check(j, IDX(0), 1, 0, false);
        assert_int_equal(fetch_full(w.plain.address, NULL, 0, "ipx1:", &q, TIMEOUT_MS, &j, &err),
                         0);
        check(j, IDX(1), 1, 0, false);
        assert_int_equal(fetch_full(w.plain.address, NULL, 0, "p*?\\:", &q, TIMEOUT_MS, &j, &err),
                         0);
        check(j, IDX(6), 1, 0, false);
        q = query("2001:db8::7", -1, 1000);
        assert_int_equal(fetch_full(w.plain.address, NULL, 0, "p*?\\:", &q, TIMEOUT_MS, &j, &err),
                         0);
        check(j, IDX(6), 1, 0, false);
        q = query(NULL, 1, 1000);
        assert_int_equal(fetch_full(w.plain.address, NULL, 0, "p*?\\:", &q, TIMEOUT_MS, &j, &err),
                         0);
        check(j, IDX(6), 1, 0, false);
        q = query("2001:db8::7", 1, 1000);
        assert_int_equal(fetch_full(w.plain.address, NULL, 0, "p*?\\:", &q, TIMEOUT_MS, &j, &err),
                         0);
        check(j, IDX(6), 1, 0, false);
        assert_null(err);
}

static void test_unreachable(void **state) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        char addr[160];
        int fd;

        /* A missing socket file is reported like a refused connection. */
        (void) snprintf(addr, sizeof(addr), "unix:%s/missing.sock", w.dir);
        expect_error(addr, NULL, PREFIX, TIMEOUT_MS, -ECONNREFUSED, "connection refused");
        /* A socket file nobody listens on. */
        (void) snprintf(a.sun_path, sizeof(a.sun_path), "%s/dead.sock", w.dir);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        (void) close(fd);
        (void) snprintf(addr, sizeof(addr), "unix:%s", a.sun_path);
        expect_error(addr, NULL, PREFIX, TIMEOUT_MS, -ECONNREFUSED, "redis at unix:");
        /* A TCP port nobody listens on. */
        (void) snprintf(addr, sizeof(addr), "127.0.0.1:%u", free_port());
        expect_error(addr, PASSWORD, PREFIX, TIMEOUT_MS, -ECONNREFUSED,
                     "connection refused");
}

/* A listener that never accepts nor answers: connect(2) succeeds, the first command hangs. */
static void test_timeout(void **state) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct sockaddr_un u = { .sun_family = AF_UNIX };
        socklen_t len = sizeof(a);
        char addr[160];
        int fd, ufd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        (void) snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
        expect_error(addr, NULL, PREFIX, 300, -ETIMEDOUT, "timed out");
        expect_error(addr, PASSWORD, PREFIX, 300, -ETIMEDOUT, "timed out");
        (void) close(fd);

        (void) snprintf(u.sun_path, sizeof(u.sun_path), "%s/hang.sock", w.dir);
        ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(ufd >= 0);
        assert_int_equal(bind(ufd, (struct sockaddr *) &u, sizeof(u)), 0);
        assert_int_equal(listen(ufd, 16), 0);
        (void) snprintf(addr, sizeof(addr), "unix:%s", u.sun_path);
        expect_error(addr, NULL, PREFIX, 300, -ETIMEDOUT, "redis at unix:");
        (void) close(ufd);

        /* No time at all. */
        expect_error(w.plain.address, NULL, PREFIX, 0, -ETIMEDOUT, "timed out");
}

static void test_bad_address(void **state) {
        static const char *const bad[] = {
                "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1",
                "127.0.0.1:+80", "127.0.0.1:80x", ":6379", "::1:6379", "[::1]", "[::1]6379",
                "[]:6379", "unix:", "[::1:6379",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                expect_error(bad[i], NULL, PREFIX, TIMEOUT_MS, -EINVAL, NULL);
}

int main(void) {
        struct sigaction ign = { .sa_handler = SIG_IGN };
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_all_sorted, setup_flush),
                cmocka_unit_test_setup(test_exporter, setup_flush),
                cmocka_unit_test_setup(test_exporter_odid, setup_flush),
                cmocka_unit_test_setup(test_odid, setup_flush),
                cmocka_unit_test_setup(test_limit, setup_flush),
                cmocka_unit_test_setup(test_malformed, setup_flush),
                cmocka_unit_test_setup(test_empty, setup_flush),
                cmocka_unit_test_setup(test_many_keys, setup_flush),
                cmocka_unit_test_setup(test_auth, setup_flush),
                cmocka_unit_test_setup(test_glob_prefix, setup_flush),
                cmocka_unit_test(test_unreachable),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_bad_address),
                cmocka_unit_test(test_bad_server),
        };
        const char *path = getenv("PATH");
        bool found = false;
        char buf[PATH_MAX];

        while (path && *path && !found) {
                size_t n = strcspn(path, ":");
                if (n > 0 && (size_t) snprintf(buf, sizeof(buf), "%.*s/redis-server", (int) n,
                                               path) < sizeof(buf))
                        found = access(buf, X_OK) == 0;
                path += n + (path[n] == ':');
        }
        if (!found) {
                fprintf(stderr, "redis-server not found in PATH, skipping\n");
                return 77;
        }
        /* hiredis 0.14.1 writes with write(2): a closing server must not kill us. */
        if (sigaction(SIGPIPE, &ign, NULL) < 0)
                return EXIT_FAILURE;
        return cmocka_run_group_tests_name("api-templates", tests, group_setup, group_teardown);
}
