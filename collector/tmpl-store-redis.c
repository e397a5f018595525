/* SPDX-License-Identifier: MIT */
/*
 * tmpl-store-redis.c - TmplStore over a local cache (the in-process store) and Redis.
 *
 * Threads: workers call lookup/put/withdraw, which touch only the cache (its own lock) and
 * this store's queue (lock + eventfd). The store thread owns the sd-event loop and both
 * Redis connections (commands, and a subscriber: hiredis 0.14.1 cannot mix them) and is the
 * only one that talks to Redis. It notifies the listener (the collector, which tells every
 * worker) when a fetch or another replica's event changed the cache.
 *
 * Ownership: queued Ops belong to the queue; an Op in flight belongs to its reply callback,
 * which frees it or, when the connection was lost before the reply, queues it again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "ev-redis.h"
#include "flow.h"
#include "log.h"
#include "macro.h"
#include "tmpl-store-redis.h"
#include "wire.h"

#define EVENT_MAGIC 0x49505854u         /* "IPXT" */
#define EVENT_VERSION 1
#define EVENT_HEADER 33u                /* magic 4, version 1, op 1, replica 4, family 1,
                                         * address 16, odid 4, tid 2 */
#define FETCH_BUCKETS 1024u
#define FETCH_MAX 65536u
#define FETCH_RETRY_USEC (1000u * 1000u)

typedef enum OpKind {
        OP_PUT = 1,
        OP_DEL = 2,
        OP_FETCH = 3,
} OpKind;

typedef struct Op Op;
struct Op {
        Op *next;
        OpKind kind;
        ExporterKey key;
        uint16_t tid;                   /* 0 with OP_DEL: every template of the exporter */
        uint16_t vlen;
        struct RedisStore *rs;
        uint8_t value[];
};

typedef struct Fetched Fetched;
struct Fetched {
        Fetched *next;
        ExporterKey key;
        uint16_t tid;
        uint64_t at_usec;
};

typedef struct RedisStore {
        TmplStore base;
        TmplStore *cache;
        RedisStoreConfig cfg;
        char *address, *password, *prefix, *channel;
        char host[256];
        uint16_t port;
        bool unix_socket;

        pthread_t thread;
        bool started;
        sd_event *event;
        int wake_fd, stop_fd;
        sd_event_source *wake_src, *stop_src;
        EvRedis *cmd, *sub;
        bool degraded_logged;
        bool subscribed_before;

        pthread_mutex_t lock;           /* queue, fetch table, stats */
        Op *head, **tail;
        size_t n_writes;
        Fetched *fetched[FETCH_BUCKETS];
        size_t n_fetched;
        RedisStoreStats stats;
} RedisStore;

static void redis_key(const RedisStore *rs, const ExporterKey *k, char *buf, size_t len) {
        char a[INET6_ADDRSTRLEN];
        (void) snprintf(buf, len, "%stmpl:{%s}:%u", rs->prefix,
                        flow_addr_format(k->addr, k->family, a, sizeof(a)), k->odid);
}

static void wake(RedisStore *rs) {
        uint64_t one = 1;
        (void) !write(rs->wake_fd, &one, sizeof(one));
}

/* ---- queue (any thread) ------------------------------------------------------------------ */

/* Appends @op (consumed). Writes replace a queued write of the same template; when the
 * queue is full the oldest write is dropped and counted. Caller holds the lock. */
static void enqueue_locked(RedisStore *rs, Op *op) {
        if (op->kind != OP_FETCH) {
                for (Op **p = &rs->head; *p; p = &(*p)->next)
                        if ((*p)->kind != OP_FETCH && (*p)->tid == op->tid &&
                            exporter_key_equal(&(*p)->key, &op->key)) {
                                Op *old = *p;
                                op->next = old->next;
                                *p = op;
                                if (rs->tail == &old->next)
                                        rs->tail = &op->next;
                                free(old);
                                return;
                        }
                if (rs->n_writes >= rs->cfg.max_queued) {
                        for (Op **p = &rs->head; *p; p = &(*p)->next)
                                if ((*p)->kind != OP_FETCH) {
                                        Op *old = *p;
                                        *p = old->next;
                                        if (rs->tail == &old->next)
                                                rs->tail = p;
                                        free(old);
                                        rs->n_writes--;
                                        rs->stats.writes_dropped++;
                                        break;
                                }
                }
                rs->n_writes++;
                rs->stats.writes_queued = rs->n_writes;
        }
        op->next = NULL;
        *rs->tail = op;
        rs->tail = &op->next;
}

static Op *op_new(RedisStore *rs, OpKind kind, const ExporterKey *k, uint16_t tid,
                  const IpfixTemplate *t) {
        size_t vlen = t ? ipfix_template_serialized_size(t) : 0;
        Op *op;

        if (vlen > UINT16_MAX)
                return NULL;
        op = calloc(1, sizeof(*op) + vlen);
        if (!op)
                return NULL;
        op->kind = kind;
        op->key = *k;
        op->tid = tid;
        op->rs = rs;
        op->vlen = (uint16_t) vlen;
        if (t)
                (void) ipfix_template_serialize(t, op->value, vlen);
        return op;
}

/* A miss asks Redis at most once a second per template. */
static bool fetch_due_locked(RedisStore *rs, const ExporterKey *k, uint16_t tid) {
        uint32_t b = exporter_key_hash(k, tid) % FETCH_BUCKETS;
        uint64_t now = now_usec();
        Fetched *f;

        for (f = rs->fetched[b]; f; f = f->next)
                if (f->tid == tid && exporter_key_equal(&f->key, k)) {
                        if (now - f->at_usec < FETCH_RETRY_USEC)
                                return false;
                        f->at_usec = now;
                        return true;
                }
        if (rs->n_fetched >= FETCH_MAX) {       /* forget everything rather than grow */
                for (size_t i = 0; i < FETCH_BUCKETS; i++)
                        while (rs->fetched[i]) {
                                Fetched *d = rs->fetched[i];
                                rs->fetched[i] = d->next;
                                free(d);
                        }
                rs->n_fetched = 0;
        }
        f = calloc(1, sizeof(*f));
        if (!f)
                return false;
        f->key = *k;
        f->tid = tid;
        f->at_usec = now;
        f->next = rs->fetched[b];
        rs->fetched[b] = f;
        rs->n_fetched++;
        return true;
}

/* ---- TmplStore ops (worker threads) ------------------------------------------------------ */

static int rs_lookup(TmplStore *s, const ExporterKey *k, uint16_t tid, IpfixTemplate **ret) {
        RedisStore *rs = (RedisStore *) s;
        int r = rs->cache->ops->lookup(rs->cache, k, tid, ret);
        Op *op = NULL;

        if (r != -ENOENT)
                return r;
        pthread_mutex_lock(&rs->lock);
        if (fetch_due_locked(rs, k, tid) && (op = op_new(rs, OP_FETCH, k, tid, NULL)))
                enqueue_locked(rs, op);
        pthread_mutex_unlock(&rs->lock);
        if (op)
                wake(rs);
        return -ENOENT;
}

static void queue_write(RedisStore *rs, OpKind kind, const ExporterKey *k, uint16_t tid,
                        const IpfixTemplate *t) {
        Op *op = op_new(rs, kind, k, tid, t);
        pthread_mutex_lock(&rs->lock);
        if (op)
                enqueue_locked(rs, op);
        else
                rs->stats.writes_dropped++;
        pthread_mutex_unlock(&rs->lock);
        wake(rs);
}

static int rs_put(TmplStore *s, const ExporterKey *k, const IpfixTemplate *t) {
        RedisStore *rs = (RedisStore *) s;
        int r = rs->cache->ops->put(rs->cache, k, t);

        if (r > 0) {            /* only changes go to Redis and to the other sessions */
                queue_write(rs, OP_PUT, k, t->id, t);
                tmpl_store_notify(s, k, t->id);
        }
        return r;
}

static int rs_withdraw(TmplStore *s, const ExporterKey *k, uint16_t tid) {
        RedisStore *rs = (RedisStore *) s;
        int r = rs->cache->ops->withdraw(rs->cache, k, tid);

        queue_write(rs, OP_DEL, k, tid, NULL);
        tmpl_store_notify(s, k, tid);
        return r;
}

/* ---- store thread ------------------------------------------------------------------------ */

static void process_queue(RedisStore *rs);

static void event_payload(const RedisStore *rs, const Op *op, uint8_t *buf) {
        wire_write_u32(buf, EVENT_MAGIC);
        buf[4] = EVENT_VERSION;
        buf[5] = (uint8_t) op->kind;
        wire_write_u32(buf + 6, rs->cfg.replica_id);
        buf[10] = op->key.family;
        memcpy(buf + 11, op->key.addr, 16);
        wire_write_u32(buf + 27, op->key.odid);
        wire_write_u16(buf + 31, op->tid);
        memcpy(buf + EVENT_HEADER, op->value, op->vlen);
}

static void requeue(RedisStore *rs, Op *op) {
        pthread_mutex_lock(&rs->lock);
        if (op->kind != OP_FETCH)
                rs->n_writes++;         /* it left the count when it was sent */
        /* a newer write of the same template wins over this retry */
        bool newer = false;
        for (Op *q = rs->head; q; q = q->next)
                if (q->kind != OP_FETCH && q->tid == op->tid && exporter_key_equal(&q->key, &op->key))
                        newer = true;
        if (newer) {
                rs->n_writes--;
                free(op);
        } else {
                op->next = rs->head;
                rs->head = op;
                if (rs->tail == &rs->head)
                        rs->tail = &op->next;
        }
        rs->stats.writes_queued = rs->n_writes;
        pthread_mutex_unlock(&rs->lock);
}

static void on_write_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        Op *op = privdata;
        RedisStore *rs = op->rs;
        redisReply *rp = reply;

        if (!rp) {                      /* connection lost before the reply: try again */
                requeue(rs, op);
                return;
        }
        pthread_mutex_lock(&rs->lock);
        if (rp->type == REDIS_REPLY_ERROR)
                log_ratelimited(LOG_WARNING, "redis-write", "Template store: Redis refused a "
                                "write: %s", rp->str);
        else
                rs->stats.writes++;
        pthread_mutex_unlock(&rs->lock);
        free(op);
}

/* Replies of HSET/HDEL/DEL/EXPIRE: an error (e.g. Redis out of memory) is counted. */
static void on_store_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        RedisStore *rs = privdata;
        redisReply *rp = reply;

        if (rp && rp->type == REDIS_REPLY_ERROR) {
                pthread_mutex_lock(&rs->lock);
                rs->stats.writes_failed++;
                pthread_mutex_unlock(&rs->lock);
                log_ratelimited(LOG_WARNING, "redis-write", "Template store: Redis refused a "
                                "write: %s", rp->str);
        }
}

static void apply_remote(RedisStore *rs, OpKind kind, const ExporterKey *k, uint16_t tid,
                         const uint8_t *value, size_t vlen, bool from_fetch) {
        IpfixTemplate *t = NULL;
        int r;

        if (kind == OP_PUT) {
                if (ipfix_template_deserialize(tid, value, vlen, &t) < 0) {
                        pthread_mutex_lock(&rs->lock);
                        rs->stats.events_bad++;
                        pthread_mutex_unlock(&rs->lock);
                        return;
                }
                r = rs->cache->ops->put(rs->cache, k, t);
                free(t);
        } else
                r = rs->cache->ops->withdraw(rs->cache, k, tid);
        if (r < 0) {            /* local cache full (store_max_templates) */
                pthread_mutex_lock(&rs->lock);
                rs->stats.cache_full++;
                pthread_mutex_unlock(&rs->lock);
                return;
        }
        if (r > 0 || from_fetch)
                tmpl_store_notify(&rs->base, k, tid);
        if (r > 0 && !from_fetch) {
                pthread_mutex_lock(&rs->lock);
                rs->stats.events_applied++;
                pthread_mutex_unlock(&rs->lock);
        }
}

static void on_fetch_reply(redisAsyncContext *ac, void *reply, void *privdata) {
        Op *op = privdata;
        RedisStore *rs = op->rs;
        redisReply *rp = reply;

        if (rp && rp->type == REDIS_REPLY_STRING) {
                pthread_mutex_lock(&rs->lock);
                rs->stats.fetch_hits++;
                pthread_mutex_unlock(&rs->lock);
                apply_remote(rs, OP_PUT, &op->key, op->tid, (const uint8_t *) rp->str,
                             (size_t) rp->len, true);
        } else if (rp && rp->type == REDIS_REPLY_NIL) {
                pthread_mutex_lock(&rs->lock);
                rs->stats.fetch_misses++;
                pthread_mutex_unlock(&rs->lock);
                /* Not in Redis but in our cache (a resync after Redis lost its data): write
                 * ours back, so the replicas refill an emptied Redis. A withdrawal made
                 * elsewhere while we were away is undone this way; the exporter's next
                 * template set corrects it. */
                IpfixTemplate *t = NULL;
                if (rs->cache->ops->lookup(rs->cache, &op->key, op->tid, &t) == 0) {
                        queue_write(rs, OP_PUT, &op->key, op->tid, t);
                        free(t);
                }
        }
        free(op);
}

static int send_op(RedisStore *rs, Op *op) {
        char key[256], field[8];
        uint8_t payload[EVENT_HEADER + UINT16_MAX];
        int r;

        redis_key(rs, &op->key, key, sizeof(key));
        (void) snprintf(field, sizeof(field), "%u", op->tid);
        switch (op->kind) {
        case OP_FETCH:
                r = ev_redis_command(rs->cmd, on_fetch_reply, op, "HGET %s %s", key, field);
                if (r == 0) {
                        pthread_mutex_lock(&rs->lock);
                        rs->stats.fetches++;
                        pthread_mutex_unlock(&rs->lock);
                }
                return r;
        case OP_PUT:
                r = ev_redis_command(rs->cmd, on_store_reply, rs, "HSET %s %s %b", key, field,
                                     op->value, (size_t) op->vlen);
                break;
        case OP_DEL:
                r = op->tid ? ev_redis_command(rs->cmd, on_store_reply, rs, "HDEL %s %s", key, field)
                            : ev_redis_command(rs->cmd, on_store_reply, rs, "DEL %s", key);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        if (op->kind == OP_PUT && rs->cfg.ttl_s > 0)
                (void) ev_redis_command(rs->cmd, on_store_reply, rs, "EXPIRE %s %u", key,
                                        rs->cfg.ttl_s);
        event_payload(rs, op, payload);
        /* The PUBLISH reply closes the write: HSET went before it on the same connection. */
        return ev_redis_command(rs->cmd, on_write_reply, op, "PUBLISH %s %b", rs->channel,
                                payload, (size_t) EVENT_HEADER + op->vlen);
}

static void process_queue(RedisStore *rs) {
        for (;;) {
                Op *op;
                bool connected = ev_redis_is_connected(rs->cmd);

                pthread_mutex_lock(&rs->lock);
                if (!connected) {
                        /* Writes wait for the connection; fetches cannot, and are dropped
                         * (the hold tick asks again once a second while data is held). */
                        for (Op **p = &rs->head; *p;) {
                                Op *f = *p;
                                if (f->kind != OP_FETCH) {
                                        p = &f->next;
                                        continue;
                                }
                                *p = f->next;
                                if (rs->tail == &f->next)
                                        rs->tail = p;
                                rs->stats.fetch_skipped++;
                                free(f);
                        }
                        pthread_mutex_unlock(&rs->lock);
                        return;
                }
                op = rs->head;
                if (op) {
                        rs->head = op->next;
                        if (rs->tail == &op->next)
                                rs->tail = &rs->head;
                        if (op->kind != OP_FETCH)
                                rs->n_writes--;
                        rs->stats.writes_queued = rs->n_writes;
                }
                pthread_mutex_unlock(&rs->lock);
                if (!op)
                        return;
                if (send_op(rs, op) == -ENOTCONN) {
                        requeue(rs, op);
                        return;
                }
        }
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t v;
        (void) !read(fd, &v, sizeof(v));
        process_queue(userdata);
        return 0;
}

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        RedisStore *rs = userdata;
        return sd_event_exit(rs->event, 0);
}

static void queue_resync(void *userdata, const ExporterKey *k, uint16_t tid);

static void on_cmd_connected(void *userdata) {
        RedisStore *rs = userdata;

        pthread_mutex_lock(&rs->lock);
        rs->stats.connected = 1;
        rs->stats.connects++;
        pthread_mutex_unlock(&rs->lock);
        if (rs->degraded_logged)
                log_notice("Template store: Redis reachable again at %s, replaying %zu queued "
                           "writes", rs->address, rs->n_writes);
        else
                log_info("Template store: connected to Redis at %s", rs->address);
        rs->degraded_logged = false;
        /* After an outage: re-read what we cache (and write back what Redis lost). */
        if (rs->stats.connects > 1)
                (void) tmpl_store_memory_foreach(rs->cache, queue_resync, rs);
        process_queue(rs);
}

static void on_cmd_disconnected(void *userdata, int reason) {
        RedisStore *rs = userdata;

        pthread_mutex_lock(&rs->lock);
        rs->stats.connected = 0;
        rs->stats.disconnects++;
        pthread_mutex_unlock(&rs->lock);
        log_warning("Template store degraded: lost Redis at %s (%s); decoding from the local "
                    "cache, queueing writes", rs->address, ev_redis_last_error(rs->cmd));
        rs->degraded_logged = true;
}

static void on_event(redisAsyncContext *ac, void *reply, void *privdata) {
        RedisStore *rs = privdata;
        redisReply *rp = reply, *payload;
        const uint8_t *p;
        ExporterKey k = { 0 };
        uint32_t replica;
        uint8_t op;

        if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements != 3 ||
            rp->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(rp->element[0]->str, "message") != 0)
                return;         /* subscribe confirmations, or the connection went away */
        payload = rp->element[2];
        p = (const uint8_t *) payload->str;
        if (payload->type != REDIS_REPLY_STRING || payload->len < EVENT_HEADER ||
            wire_read_u32(p) != EVENT_MAGIC || p[4] != EVENT_VERSION ||
            (p[10] != 4 && p[10] != 6) || (p[5] != OP_PUT && p[5] != OP_DEL)) {
                pthread_mutex_lock(&rs->lock);
                rs->stats.events_bad++;
                pthread_mutex_unlock(&rs->lock);
                return;
        }
        op = p[5];
        replica = wire_read_u32(p + 6);
        if (replica == rs->cfg.replica_id)
                return;         /* our own change, already in the cache */
        pthread_mutex_lock(&rs->lock);
        rs->stats.events_received++;
        pthread_mutex_unlock(&rs->lock);
        k.family = p[10];
        memcpy(k.addr, p + 11, 16);
        k.odid = wire_read_u32(p + 27);
        apply_remote(rs, (OpKind) op, &k, wire_read_u16(p + 31), p + EVENT_HEADER,
                     (size_t) payload->len - EVENT_HEADER, false);
}

static void queue_resync(void *userdata, const ExporterKey *k, uint16_t tid) {
        RedisStore *rs = userdata;
        Op *op = op_new(rs, OP_FETCH, k, tid, NULL);

        if (!op)
                return;
        pthread_mutex_lock(&rs->lock);
        enqueue_locked(rs, op);
        rs->stats.resyncs++;
        pthread_mutex_unlock(&rs->lock);
}

static void on_sub_connected(void *userdata) {
        RedisStore *rs = userdata;

        if (ev_redis_command(rs->sub, on_event, rs, "SUBSCRIBE %s", rs->channel) < 0)
                log_warning("Template store: cannot subscribe to %s, ignoring", rs->channel);
        /* Events published while we were not subscribed are lost: re-read every cached
         * template (changed ones are applied and notified; ones Redis lost are written
         * back). The command connection does the same when it comes back. */
        if (rs->subscribed_before && ev_redis_is_connected(rs->cmd) &&
            tmpl_store_memory_foreach(rs->cache, queue_resync, rs) > 0)
                wake(rs);
        rs->subscribed_before = true;
}

static void on_sub_disconnected(void *userdata, int reason) {
}

static void *store_main(void *userdata) {
        RedisStore *rs = userdata;
        int r = sd_event_loop(rs->event);
        if (r < 0)
                log_error_errno(r, "Template store loop failed: %m");
        /* Free the connections from the thread that used them. */
        rs->cmd = ev_redis_free(rs->cmd);
        rs->sub = ev_redis_free(rs->sub);
        return NULL;
}

static void rs_free(TmplStore *s) {
        RedisStore *rs = (RedisStore *) s;
        uint64_t one = 1;

        if (rs->started) {
                (void) !write(rs->stop_fd, &one, sizeof(one));
                (void) pthread_join(rs->thread, NULL);
        }
        ev_redis_free(rs->cmd);
        ev_redis_free(rs->sub);
        sd_event_source_disable_unref(rs->wake_src);
        sd_event_source_disable_unref(rs->stop_src);
        sd_event_unref(rs->event);
        safe_close(rs->wake_fd);
        safe_close(rs->stop_fd);
        while (rs->head) {
                Op *op = rs->head;
                rs->head = op->next;
                free(op);
        }
        for (size_t i = 0; i < FETCH_BUCKETS; i++)
                while (rs->fetched[i]) {
                        Fetched *f = rs->fetched[i];
                        rs->fetched[i] = f->next;
                        free(f);
                }
        tmpl_store_free(rs->cache);
        pthread_mutex_destroy(&rs->lock);
        free(rs->address);
        free(rs->password);
        free(rs->prefix);
        free(rs->channel);
        free(rs);
}

static const TmplStoreOps redis_ops = {
        .lookup = rs_lookup,
        .put = rs_put,
        .withdraw = rs_withdraw,
        .free = rs_free,
};

static int parse_address(RedisStore *rs, const char *a) {
        const char *colon;
        char *end;
        long port;

        if (strncmp(a, "unix:", 5) == 0) {
                if (strlen(a + 5) == 0 || strlen(a + 5) >= sizeof(rs->host))
                        return -EINVAL;
                (void) snprintf(rs->host, sizeof(rs->host), "%s", a + 5);
                rs->unix_socket = true;
                return 0;
        }
        if (a[0] == '[') {
                const char *rb = strchr(a, ']');
                if (!rb || rb[1] != ':' || (size_t) (rb - a - 1) >= sizeof(rs->host))
                        return -EINVAL;
                memcpy(rs->host, a + 1, (size_t) (rb - a - 1));
                rs->host[rb - a - 1] = '\0';
                colon = rb + 1;
        } else {
                colon = strrchr(a, ':');
                if (!colon || colon == a || (size_t) (colon - a) >= sizeof(rs->host))
                        return -EINVAL;
                memcpy(rs->host, a, (size_t) (colon - a));
                rs->host[colon - a] = '\0';
        }
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
                return -EINVAL;
        rs->port = (uint16_t) port;
        return 0;
}

int tmpl_store_new_redis(TmplStore **ret, const RedisStoreConfig *cfg) {
        EvRedisConfig ec = { 0 };
        RedisStore *rs;
        int r;

        if (!cfg->address || !cfg->prefix || cfg->max_queued == 0)
                return -EINVAL;
        rs = calloc(1, sizeof(*rs));
        if (!rs)
                return -ENOMEM;
        rs->base.ops = &redis_ops;
        rs->cfg = *cfg;
        rs->wake_fd = rs->stop_fd = -EBADF;
        rs->tail = &rs->head;
        pthread_mutex_init(&rs->lock, NULL);
        rs->address = strdup(cfg->address);
        rs->prefix = strdup(cfg->prefix);
        rs->password = cfg->password ? strdup(cfg->password) : NULL;
        if (!rs->address || !rs->prefix || (cfg->password && !rs->password) ||
            asprintf(&rs->channel, "%stmpl:events", cfg->prefix) < 0) {
                rs->channel = NULL;
                r = -ENOMEM;
                goto fail;
        }
        r = parse_address(rs, cfg->address);
        if (r < 0)
                goto fail;
        r = tmpl_store_new_memory(&rs->cache, cfg->max_cache);
        if (r < 0)
                goto fail;
        r = sd_event_new(&rs->event);
        if (r < 0)
                goto fail;
        rs->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        rs->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (rs->wake_fd < 0 || rs->stop_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(rs->event, &rs->wake_src, rs->wake_fd, EPOLLIN, on_wake, rs);
        if (r >= 0)
                r = sd_event_add_io(rs->event, &rs->stop_src, rs->stop_fd, EPOLLIN, on_stop, rs);
        if (r < 0)
                goto fail;

        ec.host = rs->unix_socket ? NULL : rs->host;
        ec.port = rs->port;
        ec.unix_path = rs->unix_socket ? rs->host : NULL;
        ec.password = rs->password;
        ec.db = cfg->db;
        ec.command_timeout_usec = 5 * 1000 * 1000ULL;
        ec.backoff_min_usec = 100 * 1000ULL;
        ec.backoff_max_usec = 5 * 1000 * 1000ULL;
        ec.on_connected = on_cmd_connected;
        ec.on_disconnected = on_cmd_disconnected;
        ec.userdata = rs;
        r = ev_redis_new(&rs->cmd, rs->event, &ec);
        if (r < 0)
                goto fail;
        ec.command_timeout_usec = 0;    /* the subscriber waits for messages indefinitely */
        ec.on_connected = on_sub_connected;
        ec.on_disconnected = on_sub_disconnected;
        r = ev_redis_new(&rs->sub, rs->event, &ec);
        if (r < 0)
                goto fail;
        r = pthread_create(&rs->thread, NULL, store_main, rs);
        if (r != 0) {
                r = -r;
                goto fail;
        }
        rs->started = true;
        *ret = &rs->base;
        return 0;
fail:
        rs_free(&rs->base);
        return r;
}

void tmpl_store_redis_get_stats(TmplStore *s, RedisStoreStats *ret) {
        RedisStore *rs = (RedisStore *) s;
        pthread_mutex_lock(&rs->lock);
        *ret = rs->stats;
        pthread_mutex_unlock(&rs->lock);
}

TmplStore *tmpl_store_redis_get_cache(TmplStore *s) {
        return ((RedisStore *) s)->cache;
}
