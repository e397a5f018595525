/* SPDX-License-Identifier: MIT */
/*
 * templates.c - GET /api/v1/templates: reads the shared template store (README, "Redis
 * layout") over one short-lived blocking hiredis connection (see templates.h for the answer).
 *
 * The steps: connect, AUTH, SELECT; collect the key identities (exporter text, odid) from
 * SCAN, or the one key when both exporter and odid are given; sort them by (exporter text,
 * odid) and drop the duplicates SCAN may return; then read them in that order with HGETALL,
 * pipelined in batches. Within a key the templates are taken in template id order, so the
 * templates arrive already in the answer's order and reading stops as soon as one more than
 * @limit is held: that one only proves "truncated" and is dropped. Hence "exporters" and
 * "malformed" count the keys read up to that point, and at most @limit + 1 decoded templates
 * (plus one HGETALL reply and the key list, at most API_TEMPLATES_MAX_KEYS entries) are ever
 * in memory.
 *
 * Time: one deadline (CLOCK_MONOTONIC) covers the connect and every command. hiredis 0.14.1
 * only offers per-read/per-write socket timeouts (SO_RCVTIMEO/SO_SNDTIMEO), so every read and
 * write is issued by us (redisBufferWrite/redisBufferRead) with the time left set just before
 * it: a server that trickles its answer cannot stretch the call past the deadline. The one
 * exception is name resolution: for a HOST:PORT with a host name, hiredis calls getaddrinfo()
 * synchronously, outside any timeout; configure an IP address where that matters.
 *
 * Errors: a missing unix socket (ENOENT) is reported as -ECONNREFUSED, like a socket file
 * nobody listens on: for the client both mean "nobody answers at that address". Read and
 * write timeouts (EAGAIN from SO_RCVTIMEO/SO_SNDTIMEO) and a connect timeout are -ETIMEDOUT;
 * error replies, a connection closed by the server and unexpected reply shapes are -EIO.
 * The key of a foreign type (WRONGTYPE) is not an error but counted in "malformed".
 *
 * hiredis 0.14.1 writes with write(2): the process must ignore SIGPIPE (as for ev-redis.h),
 * or a server that closes the connection while we send can kill it.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "ipfix.h"
#include "macro.h"
#include "templates.h"

#define SCAN_COUNT "512"
#define HGETALL_BATCH 64u
#define ERROR_TEXT_MAX 200
#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL
/* A day: far beyond any sensible budget, and no overflow when added to the clock. */
#define TIMEOUT_MS_MAX (86400ULL * 1000)

typedef struct Conn {
        redisContext *ctx;
        const char *address;    /* for messages */
        uint64_t timeout_ms;
        uint64_t deadline_usec;
        char **reterr;
} Conn;

typedef struct TmplKey {
        char exporter[INET6_ADDRSTRLEN];
        uint32_t odid;
} TmplKey;

typedef struct Entry {
        size_t key;             /* index into the sorted key list */
        IpfixTemplate *t;
} Entry;

typedef struct Result {
        TmplKey *keys;
        size_t n_keys;
        Entry *entries;
        size_t n_entries, cap_entries;
        size_t keep;            /* limit + 1 */
        uint64_t exporters;
        uint64_t malformed;
        bool truncated;
} Result;

static void result_done(Result *res) {
        for (size_t i = 0; i < res->n_entries; i++)
                free(res->entries[i].t);
        free(res->entries);
        free(res->keys);
}

static void reply_freep(redisReply **r) {
        if (*r)
                freeReplyObject(*r);
}
#define _cleanup_reply_ _cleanup_(reply_freep)

static void jsonp(json_t **j) {
        json_decref(*j);
}
#define _cleanup_json_ _cleanup_(jsonp)

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Stores a formatted heap message in *@reterr (when non-NULL) and returns @r, or -ENOMEM. */
_printf_(3, 4) static int set_reterr(char **reterr, int r, const char *fmt, ...) {
        va_list ap;
        char *s;
        int k;

        if (!reterr)
                return r;
        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        *reterr = s;
        return r;
}

/* Peer text for a message: at most ERROR_TEXT_MAX bytes, printable ASCII only (the message
 * ends up in a JSON string, which must be valid UTF-8). */
static void sanitize(const char *s, size_t len, char *buf, size_t size) {
        size_t n = MIN(len, size - 1);

        for (size_t i = 0; i < n; i++)
                buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        buf[n] = '\0';
}

/* "HOST:PORT", "[V6]:PORT" or "unix:/path". @host gets the host or the path. */
static int parse_address(const char *a, char *host, size_t host_size, int *ret_port,
                         bool *ret_unix) {
        const char *colon, *h;
        size_t hlen;
        unsigned long port;
        char *end;

        if (strncmp(a, "unix:", 5) == 0) {
                hlen = strlen(a + 5);
                if (hlen == 0 || hlen >= sizeof(((struct sockaddr_un *) NULL)->sun_path) ||
                    hlen >= host_size)
                        return -EINVAL;
                memcpy(host, a + 5, hlen + 1);
                *ret_port = 0;
                *ret_unix = true;
                return 0;
        }
        if (a[0] == '[') {
                const char *rb = strchr(a, ']');
                if (!rb || rb[1] != ':')
                        return -EINVAL;
                h = a + 1;
                hlen = (size_t) (rb - h);
                colon = rb + 1;
        } else {
                colon = strrchr(a, ':');
                if (!colon || memchr(a, ':', (size_t) (colon - a)))
                        return -EINVAL;         /* a bare IPv6 address needs brackets */
                h = a;
                hlen = (size_t) (colon - a);
        }
        if (hlen == 0 || hlen >= host_size)
                return -EINVAL;
        if (colon[1] < '0' || colon[1] > '9')
                return -EINVAL;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
                return -EINVAL;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        *ret_port = (int) port;
        *ret_unix = false;
        return 0;
}

static bool errstr_is(const redisContext *ctx, int e) {
        const char *d = strerrordesc_np(e);
        return d && strstr(ctx->errstr, d);
}

static int conn_timed_out(Conn *c) {
        return set_reterr(c->reterr, -ETIMEDOUT, "redis at %s: timed out after %" PRIu64 " ms",
                          c->address, c->timeout_ms);
}

/* The time left as a timeval (never zero: a zero SO_RCVTIMEO means "no timeout"). */
static int conn_remaining(Conn *c, struct timeval *ret) {
        uint64_t now = now_usec(), left;

        if (now >= c->deadline_usec)
                return conn_timed_out(c);
        left = c->deadline_usec - now;
        *ret = (struct timeval) { .tv_sec = (time_t) (left / USEC_PER_SEC),
                                  .tv_usec = (suseconds_t) (left % USEC_PER_SEC) };
        return 0;
}

/* Maps the context's error after a failed read, write or append; @saved_errno is errno
 * right after the call. */
static int conn_fail(Conn *c, int saved_errno) {
        char text[ERROR_TEXT_MAX + 1];

        switch (c->ctx->err) {
        case REDIS_ERR_OOM:
                return -ENOMEM;
        case REDIS_ERR_IO:
                if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
                    saved_errno == ETIMEDOUT || now_usec() >= c->deadline_usec)
                        return conn_timed_out(c);
                break;
        case REDIS_ERR_EOF:
                return set_reterr(c->reterr, -EIO, "redis at %s: connection closed by the server",
                                  c->address);
        default:
                break;
        }
        sanitize(c->ctx->errstr, strnlen(c->ctx->errstr, sizeof(c->ctx->errstr)), text,
                 sizeof(text));
        return set_reterr(c->reterr, -EIO, "redis at %s: %s", c->address, text);
}

static int reply_error(Conn *c, const redisReply *reply) {
        char text[ERROR_TEXT_MAX + 1];

        sanitize(reply->str ? reply->str : "", reply->str ? reply->len : 0, text, sizeof(text));
        return set_reterr(c->reterr, -EIO, "redis: %s", text);
}

static int unexpected_reply(Conn *c, const char *command) {
        return set_reterr(c->reterr, -EIO, "redis at %s: unexpected reply to %s", c->address,
                          command);
}

/* Sends what is queued, then reads one reply (of any type, error replies included), all
 * within the deadline. */
static int conn_reply(Conn *c, redisReply **ret) {
        struct timeval tv;
        void *reply = NULL;
        int done = 0, r;

        while (!done) {
                r = conn_remaining(c, &tv);
                if (r < 0)
                        return r;
                if (redisSetTimeout(c->ctx, tv) != REDIS_OK)
                        return conn_fail(c, errno);
                if (redisBufferWrite(c->ctx, &done) != REDIS_OK)
                        return conn_fail(c, errno);
        }
        for (;;) {
                if (redisGetReplyFromReader(c->ctx, &reply) != REDIS_OK)
                        return conn_fail(c, errno);
                if (reply)
                        break;
                r = conn_remaining(c, &tv);
                if (r < 0)
                        return r;
                if (redisSetTimeout(c->ctx, tv) != REDIS_OK)
                        return conn_fail(c, errno);
                if (redisBufferRead(c->ctx) != REDIS_OK)
                        return conn_fail(c, errno);
        }
        *ret = reply;
        return 0;
}

static int conn_append(Conn *c, int argc, const char **argv, const size_t *lens) {
        if (redisAppendCommandArgv(c->ctx, argc, argv, lens) != REDIS_OK)
                return conn_fail(c, errno);
        return 0;
}

/* One command; an error reply is -EIO ("redis: <text>"). */
static int conn_command(Conn *c, int argc, const char **argv, const size_t *lens,
                        redisReply **ret) {
        _cleanup_reply_ redisReply *reply = NULL;
        int r;

        r = conn_append(c, argc, argv, lens);
        if (r < 0)
                return r;
        r = conn_reply(c, &reply);
        if (r < 0)
                return r;
        if (reply->type == REDIS_REPLY_ERROR)
                return reply_error(c, reply);
        *ret = TAKE_PTR(reply);
        return 0;
}

static int conn_open(Conn *c, const ApiRedisConfig *cfg) {
        char host[256], db[24];
        struct timeval tv;
        bool is_unix;
        int port, r, saved;

        r = parse_address(cfg->address, host, sizeof(host), &port, &is_unix);
        if (r < 0)
                return r;
        r = conn_remaining(c, &tv);
        if (r < 0)
                return r;

        errno = 0;
        c->ctx = is_unix ? redisConnectUnixWithTimeout(host, tv)
                         : redisConnectWithTimeout(host, port, tv);
        saved = errno;
        if (!c->ctx)
                return -ENOMEM;
        if (c->ctx->err) {
                if (c->ctx->err == REDIS_ERR_OOM)
                        return -ENOMEM;
                if (c->ctx->err == REDIS_ERR_IO) {
                        /* hiredis keeps only the text; errno is checked first, the text
                         * (strerror of it) is the fallback. */
                        if (saved == ECONNREFUSED || errstr_is(c->ctx, ECONNREFUSED) ||
                            (is_unix && (saved == ENOENT || errstr_is(c->ctx, ENOENT))))
                                return set_reterr(c->reterr, -ECONNREFUSED,
                                                  "redis at %s: connection refused", c->address);
                        if (saved == ETIMEDOUT || errstr_is(c->ctx, ETIMEDOUT))
                                return conn_timed_out(c);
                }
                return conn_fail(c, saved);
        }
        /* hiredis 0.14.1 does not set close-on-exec. */
        (void) fcntl(c->ctx->fd, F_SETFD, FD_CLOEXEC);

        if (cfg->password) {
                _cleanup_reply_ redisReply *reply = NULL;
                const char *argv[] = { "AUTH", cfg->password };
                size_t lens[] = { 4, strlen(cfg->password) };

                r = conn_command(c, 2, argv, lens, &reply);
                if (r < 0)
                        return r;
        }
        if (cfg->db > 0) {
                _cleanup_reply_ redisReply *reply = NULL;
                const char *argv[] = { "SELECT", db };
                size_t lens[2];

                lens[0] = 6;
                lens[1] = (size_t) snprintf(db, sizeof(db), "%" PRId64, cfg->db);
                r = conn_command(c, 2, argv, lens, &reply);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A decimal number without sign or leading zeros (the collector writes "%u"), <= @max. */
static bool parse_decimal(const char *s, size_t n, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0 || n > 20 || (s[0] == '0' && n > 1))
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (uint64_t) (s[i] - '0');
                if (v > max)
                        return false;
        }
        *ret = v;
        return true;
}

static bool exporter_valid(const char *s) {
        unsigned char buf[16];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* "<prefix>tmpl:{ADDR}:ODID", strictly. */
static bool key_parse(const char *prefix, size_t prefix_len, const char *k, size_t n,
                      TmplKey *ret) {
        const char *p, *end = k + n, *rb;
        uint64_t odid;
        size_t alen;

        if (n < prefix_len + 6 || memcmp(k, prefix, prefix_len) != 0 ||
            memcmp(k + prefix_len, "tmpl:{", 6) != 0)
                return false;
        p = k + prefix_len + 6;
        rb = memchr(p, '}', (size_t) (end - p));
        if (!rb || rb + 1 >= end || rb[1] != ':')
                return false;
        alen = (size_t) (rb - p);
        if (alen == 0 || alen >= sizeof(ret->exporter))
                return false;
        memcpy(ret->exporter, p, alen);
        ret->exporter[alen] = '\0';
        if (!exporter_valid(ret->exporter))
                return false;
        if (!parse_decimal(rb + 2, (size_t) (end - rb - 2), UINT32_MAX, &odid))
                return false;
        ret->odid = (uint32_t) odid;
        return true;
}

static int key_cmp(const void *a, const void *b) {
        const TmplKey *x = a, *y = b;
        int c = strcmp(x->exporter, y->exporter);

        if (c != 0)
                return c;
        return x->odid < y->odid ? -1 : x->odid > y->odid;
}

/* Sorts the keys into the answer's order and drops the duplicates SCAN may return. */
static void keys_sort_unique(Result *res) {
        size_t n = 0;

        if (res->n_keys < 2)
                return;
        qsort(res->keys, res->n_keys, sizeof(*res->keys), key_cmp);
        for (size_t i = 0; i < res->n_keys; i++)
                if (n == 0 || key_cmp(&res->keys[n - 1], &res->keys[i]) != 0)
                        res->keys[n++] = res->keys[i];
        res->n_keys = n;
}

/* Appends @s to @buf at *@pos with the glob characters *?[]\ escaped; @buf has room. */
static void glob_escape(char *buf, size_t *pos, const char *s) {
        for (; *s; s++) {
                if (strchr("*?[]\\", *s))
                        buf[(*pos)++] = '\\';
                buf[(*pos)++] = *s;
        }
        buf[*pos] = '\0';
}

static void append(char *buf, size_t *pos, const char *s) {
        size_t n = strlen(s);

        memcpy(buf + *pos, s, n + 1);
        *pos += n;
}

static int scan_keys(Conn *c, const ApiRedisConfig *cfg, const ApiTemplatesQuery *q,
                     Result *res) {
        _cleanup_free_ char *pattern = NULL;
        size_t prefix_len = strlen(cfg->prefix), cap = 0, pos = 0;
        char cursor[21] = "0", odid[16];
        bool stop = false;

        pattern = malloc(2 * prefix_len + 2 * sizeof(q->exporter) + 32);
        if (!pattern)
                return -ENOMEM;
        glob_escape(pattern, &pos, cfg->prefix);
        append(pattern, &pos, "tmpl:");
        if (q->has_exporter) {
                append(pattern, &pos, "{");
                glob_escape(pattern, &pos, q->exporter);
                append(pattern, &pos, "}:*");
        } else if (q->has_odid) {
                (void) snprintf(odid, sizeof(odid), "%" PRIu32, q->odid);
                append(pattern, &pos, "{*}:");
                append(pattern, &pos, odid);
        } else
                append(pattern, &pos, "*");

        do {
                _cleanup_reply_ redisReply *reply = NULL;
                const char *argv[] = { "SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT };
                size_t lens[] = { 4, strlen(cursor), 5, pos, 5, strlen(SCAN_COUNT) };
                const redisReply *keys;
                uint64_t next;
                int r;

                r = conn_command(c, (int) ELEMENTSOF(argv), argv, lens, &reply);
                if (r < 0)
                        return r;
                if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                    reply->element[0]->type != REDIS_REPLY_STRING ||
                    !parse_decimal(reply->element[0]->str, reply->element[0]->len, UINT64_MAX,
                                   &next) ||
                    reply->element[1]->type != REDIS_REPLY_ARRAY)
                        return unexpected_reply(c, "SCAN");
                keys = reply->element[1];
                for (size_t i = 0; i < keys->elements && !stop; i++) {
                        const redisReply *k = keys->element[i];
                        TmplKey key;

                        if (k->type != REDIS_REPLY_STRING)
                                return unexpected_reply(c, "SCAN");
                        if (!key_parse(cfg->prefix, prefix_len, k->str, k->len, &key)) {
                                res->malformed++;
                                continue;
                        }
                        if ((q->has_exporter && strcmp(key.exporter, q->exporter) != 0) ||
                            (q->has_odid && key.odid != q->odid))
                                continue;
                        if (res->n_keys >= API_TEMPLATES_MAX_KEYS) {
                                res->truncated = stop = true;
                                break;
                        }
                        if (res->n_keys == cap) {
                                size_t ncap = MIN(MAX(cap * 2, (size_t) 64),
                                                  (size_t) API_TEMPLATES_MAX_KEYS);
                                TmplKey *n = realloc(res->keys, ncap * sizeof(*n));
                                if (!n)
                                        return -ENOMEM;
                                res->keys = n;
                                cap = ncap;
                        }
                        res->keys[res->n_keys++] = key;
                }
                (void) snprintf(cursor, sizeof(cursor), "%" PRIu64, next);
        } while (!stop && strcmp(cursor, "0") != 0);
        return 0;
}

typedef struct Field {
        uint16_t id;
        const redisReply *value;
} Field;

static int field_cmp(const void *a, const void *b) {
        const Field *x = a, *y = b;
        return (x->id > y->id) - (x->id < y->id);
}

static int entries_push(Result *res, size_t key, IpfixTemplate *t) {
        if (res->n_entries == res->cap_entries) {
                size_t ncap = MIN(MAX(res->cap_entries * 2, (size_t) 64), res->keep);
                Entry *n = realloc(res->entries, ncap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                res->entries = n;
                res->cap_entries = ncap;
        }
        res->entries[res->n_entries++] = (Entry) { .key = key, .t = t };
        return 0;
}

/* One HGETALL reply: keeps the key's templates in template id order while fewer than
 * res->keep are held, and counts the rest of the key's fields and values. */
static int read_key(Conn *c, const redisReply *reply, size_t key, Result *res) {
        _cleanup_free_ Field *fields = NULL;
        size_t n_fields = 0;
        int r;

        if (reply->type == REDIS_REPLY_ERROR) {
                if (reply->str && reply->len >= 9 && memcmp(reply->str, "WRONGTYPE", 9) == 0) {
                        res->malformed++;       /* a foreign key of another type */
                        return 0;
                }
                return reply_error(c, reply);
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0)
                return unexpected_reply(c, "HGETALL");
        if (reply->elements == 0)
                return 0;                       /* gone since SCAN */
        for (size_t i = 0; i < reply->elements; i++)
                if (reply->element[i]->type != REDIS_REPLY_STRING)
                        return unexpected_reply(c, "HGETALL");
        res->exporters++;

        fields = malloc(reply->elements / 2 * sizeof(*fields));
        if (!fields)
                return -ENOMEM;
        for (size_t i = 0; i < reply->elements; i += 2) {
                const redisReply *name = reply->element[i];
                uint64_t id;

                if (!parse_decimal(name->str, name->len, UINT16_MAX, &id) ||
                    id < IPFIX_SET_MIN_DATA) {
                        res->malformed++;
                        continue;
                }
                fields[n_fields++] = (Field) { .id = (uint16_t) id,
                                               .value = reply->element[i + 1] };
        }
        if (n_fields > 1)
                qsort(fields, n_fields, sizeof(*fields), field_cmp);

        for (size_t i = 0; i < n_fields; i++) {
                IpfixTemplate *t = NULL;

                r = ipfix_template_deserialize(fields[i].id, (const uint8_t *) fields[i].value->str,
                                               fields[i].value->len, &t);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        res->malformed++;
                        continue;
                }
                if (res->n_entries >= res->keep) {
                        free(t);                /* still decoded: counted if malformed */
                        continue;
                }
                r = entries_push(res, key, t);
                if (r < 0) {
                        free(t);
                        return r;
                }
        }
        return 0;
}

static int read_templates(Conn *c, const ApiRedisConfig *cfg, Result *res) {
        size_t prefix_len = strlen(cfg->prefix);
        _cleanup_free_ char *name = NULL;
        size_t name_size = prefix_len + sizeof(res->keys[0].exporter) + 32;
        int r;

        name = malloc(name_size);
        if (!name)
                return -ENOMEM;
        for (size_t i = 0; i < res->n_keys && res->n_entries < res->keep; i += HGETALL_BATCH) {
                size_t m = MIN((size_t) HGETALL_BATCH, res->n_keys - i);

                for (size_t j = 0; j < m; j++) {
                        const TmplKey *k = &res->keys[i + j];
                        const char *argv[] = { "HGETALL", name };
                        size_t lens[2] = { 7 };

                        lens[1] = (size_t) snprintf(name, name_size, "%stmpl:{%s}:%" PRIu32,
                                                    cfg->prefix, k->exporter, k->odid);
                        r = conn_append(c, 2, argv, lens);
                        if (r < 0)
                                return r;
                }
                /* Once enough templates are held the rest of the batch is not read: the
                 * connection is closed with its replies unread. */
                for (size_t j = 0; j < m && res->n_entries < res->keep; j++) {
                        _cleanup_reply_ redisReply *reply = NULL;

                        r = conn_reply(c, &reply);
                        if (r < 0)
                                return r;
                        r = read_key(c, reply, i + j, res);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static json_t *template_json(const TmplKey *k, const IpfixTemplate *t) {
        _cleanup_json_ json_t *fields = json_array();

        if (!fields)
                return NULL;
        for (unsigned i = 0; i < t->field_count; i++) {
                const IpfixField *f = &t->fields[i];
                if (json_array_append_new(fields, json_pack("{s:i,s:I,s:i}", "ie", (int) f->id,
                                                            "pen", (json_int_t) f->pen, "length",
                                                            (int) f->len)) < 0)
                        return NULL;
        }
        return json_pack("{s:s,s:I,s:i,s:i,s:O}", "exporter", k->exporter, "odid",
                         (json_int_t) k->odid, "template_id", (int) t->id, "scope_fields",
                         (int) t->scope_count, "fields", fields);
}

static json_t *result_json(const Result *res, size_t limit) {
        _cleanup_json_ json_t *list = json_array();
        size_t n = MIN(res->n_entries, limit);

        if (!list)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(list, template_json(&res->keys[res->entries[i].key],
                                                              res->entries[i].t)) < 0)
                        return NULL;
        return json_pack("{s:O,s:I,s:I,s:I,s:b}", "templates", list, "count", (json_int_t) n,
                         "exporters", (json_int_t) MIN(res->exporters, (uint64_t) INT64_MAX),
                         "malformed", (json_int_t) MIN(res->malformed, (uint64_t) INT64_MAX),
                         "truncated", res->truncated || res->n_entries > limit);
}

static void conn_done(Conn *c) {
        if (c->ctx)
                redisFree(c->ctx);
}

int api_templates_fetch(const ApiRedisConfig *cfg, const ApiTemplatesQuery *q,
                        uint64_t timeout_ms, json_t **ret, char **reterr) {
        _cleanup_(conn_done) Conn c = { 0 };
        _cleanup_(result_done) Result res = { 0 };
        json_t *j;
        int r;

        assert(cfg);
        assert(q);
        assert(ret);

        if (!cfg->address || !cfg->prefix || q->limit == 0 ||
            strnlen(q->exporter, sizeof(q->exporter)) == sizeof(q->exporter))
                return -EINVAL;

        timeout_ms = MIN(timeout_ms, TIMEOUT_MS_MAX);
        c = (Conn) { .address = cfg->address, .timeout_ms = timeout_ms,
                     .deadline_usec = now_usec() + timeout_ms * USEC_PER_MSEC, .reterr = reterr };
        res.keep = MIN(q->limit, (size_t) API_TEMPLATES_MAX_LIMIT) + 1;

        r = conn_open(&c, cfg);
        if (r < 0)
                return r;

        if (q->has_exporter && q->has_odid) {
                if (exporter_valid(q->exporter)) {
                        res.keys = malloc(sizeof(*res.keys));
                        if (!res.keys)
                                return -ENOMEM;
                        (void) snprintf(res.keys[0].exporter, sizeof(res.keys[0].exporter), "%s",
                                        q->exporter);
                        res.keys[0].odid = q->odid;
                        res.n_keys = 1;
                }
        } else {
                r = scan_keys(&c, cfg, q, &res);
                if (r < 0)
                        return r;
                keys_sort_unique(&res);
        }

        r = read_templates(&c, cfg, &res);
        if (r < 0)
                return r;

        j = result_json(&res, res.keep - 1);
        if (!j)
                return -ENOMEM;
        *ret = j;
        return 0;
}
