/* SPDX-License-Identifier: MIT */
/*
 * collector.c - process-level wiring: listeners onto workers, signals, summaries, metrics,
 * reload, drain and the state the bus publishes.
 * The Collector owns every object below it; workers borrow the config, store and ZeroMQ
 * context, which therefore outlive them (freed after worker_join()). The bus object
 * (collector-bus.c) borrows the Collector and is freed first.
 *
 * The running configuration is immutable while workers run: a reload builds a new
 * CollectorConfig and moves only the reloadable keys (log_level, stats_interval_s) over, on
 * the loop thread, which is the only thread that reads them.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <malloc.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <jansson.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "collector-bus.h"
#include "collector.h"
#include "listener.h"
#include "tmpl-store-redis.h"
#include "hash.h"
#include "log.h"
#include "macro.h"
#include "worker.h"

#define TICK_USEC (100u * 1000u)
/* A Redis store that has not connected this long after the start counts as degraded. */
#define STORE_GRACE_USEC (2u * 1000u * 1000u)

typedef struct DrainWaiter {
        CollectorDrainDone done;
        void *userdata;
} DrainWaiter;

struct Collector {
        CollectorConfig cfg;
        char *config_path;
        char *config_text;              /* what cfg was parsed from (ConfigVersion); NULL: "" */
        char config_version[17];
        char **sets, **listens;         /* command-line overrides, re-applied on reload */
        size_t n_sets, n_listens;
        /* The listeners as configured (port 0 stays 0), to tell a reload what changed. */
        ListenerConfig listeners_configured[COLLECTOR_MAX_LISTENERS];
        size_t n_listeners_configured;
        uint64_t started_ms;
        uint64_t started_usec;
        CollectorState state;
        bool store_seen_up;
        bool store_degraded;
        CollectorBus *bus;
        sd_event_source *tick;
        DrainWaiter *drain_waiters;
        size_t n_drain_waiters;
        sd_event *event;
        sd_event_source *stats_timer, *hup_src;
        void *zctx;
        TmplStore *store;
        bool redis;
        WorkerShared shared;
        Worker **workers;
        size_t n_workers;
        CollectorCounters last;
        uint64_t last_usec;
};

static void on_glib_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
                        gpointer user_data) {
        /* libfixbuf reports through GLib (e.g. sequence gaps); keep it rate-limited. */
        log_ratelimited(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL) ? LOG_WARNING : LOG_DEBUG,
                        "libfixbuf", "libfixbuf: %s", message);
}

/* The in-process store that holds what this process knows (for Redis: its cache); reading
 * it never does I/O. */
static TmplStore *local_store(Collector *c) {
        return c->redis ? tmpl_store_redis_get_cache(c->store) : c->store;
}

static void on_store_change(void *userdata, const ExporterKey *k, uint16_t tid) {
        Collector *c = userdata;
        for (size_t i = 0; i < c->n_workers; i++)
                worker_template_changed(c->workers[i], k, tid);
        if (collector_bus_connected(c->bus)) {
                /* The store says "changed" for both: whether it is still there tells. */
                TmplStore *l = local_store(c);
                IpfixTemplate *t = NULL;
                bool learned = tid != 0 && l->ops->lookup(l, k, tid, &t) == 0;
                free(t);
                collector_bus_push_template(c->bus, k, tid, learned);
        }
}

static void on_exporter(void *userdata, const ExporterKey *k, bool tcp, bool connected) {
        Collector *c = userdata;
        collector_bus_push_exporter(c->bus, k, tcp, connected);
}

static int total_counters(Collector *c, CollectorCounters *ret, ExporterSnapshot **ret_exp,
                          size_t *ret_n) {
        ExporterSnapshot *all = NULL;
        size_t n_all = 0;

        memset(ret, 0, sizeof(*ret));
        for (size_t i = 0; i < c->n_workers; i++) {
                CollectorCounters wc;
                ExporterSnapshot *e = NULL;
                size_t n = 0;

                if (worker_snapshot(c->workers[i], &wc, ret_exp ? &e : NULL,
                                    ret_exp ? &n : NULL) < 0)
                        continue;
                collector_counters_add(ret, &wc);
                if (ret_exp && n > 0) {
                        ExporterSnapshot *grown = realloc(all, (n_all + n) * sizeof(*all));
                        if (grown) {
                                all = grown;
                                memcpy(all + n_all, e, n * sizeof(*e));
                                n_all += n;
                        }
                }
                free(e);
        }
        ret->signals_dropped = collector_bus_signals_dropped(c->bus);
        if (ret_exp) {
                *ret_exp = all;
                *ret_n = n_all;
        } else
                free(all);
        return 0;
}

static int cmp_exporter(const void *a, const void *b) {
        const ExporterSnapshot *x = a, *y = b;
        int r = memcmp(x->key.addr, y->key.addr, 16);
        if (r != 0)
                return r;
        if (x->key.odid != y->key.odid)
                return x->key.odid < y->key.odid ? -1 : 1;
        return (int) x->tcp - (int) y->tcp;
}

void collector_render_metrics(Collector *c, MetricsBuf *b) {
        ExporterSnapshot *e = NULL;
        CollectorCounters t;
        size_t n = 0;

        (void) total_counters(c, &t, &e, &n);
#define X_RENDER(name, help)                                                                   \
        metrics_header(b, "ipfixd_collector_" #name "_total", "counter", help);                \
        metrics_sample(b, "ipfixd_collector_" #name "_total", NULL, t.name);
        COLLECTOR_COUNTERS(X_RENDER)
#undef X_RENDER
        if (c->redis) {
                RedisStoreStats rs;
                tmpl_store_redis_get_stats(c->store, &rs);
                metrics_header(b, "ipfixd_collector_store_redis_connected", "gauge",
                               "1 while the template store's Redis connection is up");
                metrics_sample(b, "ipfixd_collector_store_redis_connected", NULL, rs.connected);
                metrics_header(b, "ipfixd_collector_store_writes_queued", "gauge",
                               "Template writes waiting for Redis");
                metrics_sample(b, "ipfixd_collector_store_writes_queued", NULL, rs.writes_queued);
#define STORE_COUNTER(name, help)                                                              \
                metrics_header(b, "ipfixd_collector_store_" #name "_total", "counter", help);  \
                metrics_sample(b, "ipfixd_collector_store_" #name "_total", NULL, rs.name);
                STORE_COUNTER(connects, "Redis connections established")
                STORE_COUNTER(disconnects, "Redis connections lost")
                STORE_COUNTER(writes, "Template changes written to Redis")
                STORE_COUNTER(writes_dropped, "Template writes dropped: queue full while down")
                STORE_COUNTER(writes_failed, "Template writes Redis answered with an error")
                STORE_COUNTER(fetches, "Template lookups sent to Redis on a cache miss")
                STORE_COUNTER(fetch_hits, "Lookups Redis answered with a template")
                STORE_COUNTER(fetch_misses, "Lookups for templates Redis does not have")
                STORE_COUNTER(fetch_skipped, "Lookups not sent: Redis unreachable")
                STORE_COUNTER(events_received, "Change events received from other replicas")
                STORE_COUNTER(events_applied, "Change events that changed the local cache")
                STORE_COUNTER(events_bad, "Malformed change events or stored values")
                STORE_COUNTER(resyncs, "Cached templates re-read from Redis after a resubscribe")
                STORE_COUNTER(cache_full, "Templates from Redis not cached: store_max_templates reached")
#undef STORE_COUNTER
        }
        metrics_header(b, "ipfixd_collector_tcp_connections", "gauge", "Open TCP connections");
        metrics_sample(b, "ipfixd_collector_tcp_connections", NULL,
                       atomic_load(&c->shared.open_connections));

        /* Per exporter (address, ODID, transport), summed over its sessions. */
        if (n > 0)
                qsort(e, n, sizeof(*e), cmp_exporter);
        static const struct {
                const char *name, *help;
                size_t off;
        } per[] = {
                { "ipfixd_collector_exporter_messages_total", "Messages per exporter",
                  offsetof(DecoderStats, messages) },
                { "ipfixd_collector_exporter_records_total", "Flow records per exporter",
                  offsetof(DecoderStats, records) },
                { "ipfixd_collector_exporter_bytes_total", "Message octets per exporter",
                  offsetof(DecoderStats, bytes) },
                { "ipfixd_collector_exporter_errors_total", "Decode errors per exporter",
                  offsetof(DecoderStats, errors) },
                { "ipfixd_collector_exporter_missing_template_sets_total",
                  "Data sets without a template per exporter",
                  offsetof(DecoderStats, missing_template_sets) },
        };
        for (size_t m = 0; m < ELEMENTSOF(per); m++) {
                metrics_header(b, per[m].name, "counter", per[m].help);
                for (size_t i = 0; i < n;) {
                        char addr[64], labels[160];
                        uint64_t sum = 0;
                        size_t j = i;
                        for (; j < n && cmp_exporter(&e[i], &e[j]) == 0; j++)
                                sum += *(const uint64_t *) ((const uint8_t *) &e[j].stats +
                                                            per[m].off);
                        (void) flow_addr_format(e[i].key.addr, e[i].key.family, addr, sizeof(addr));
                        (void) snprintf(labels, sizeof(labels),
                                        "exporter=\"%s\",odid=\"%u\",transport=\"%s\"", addr,
                                        e[i].key.odid, e[i].tcp ? "tcp" : "udp");
                        metrics_sample(b, per[m].name, labels, sum);
                        i = j;
                }
        }
        free(e);
}

static void write_stats(Collector *c) {
        CollectorCounters t;
        uint64_t now = now_usec();
        double secs = c->last_usec ? (double) (now - c->last_usec) / 1e6 : 0;

        (void) total_counters(c, &t, NULL, NULL);
        if (secs > 0)
                log_info("Stats records=%" PRIu64 " rate=%.0f/s messages=%" PRIu64
                         " missing_template_sets=%" PRIu64 " errors=%" PRIu64
                         " dropped=%" PRIu64 " tcp_open=%u",
                         t.records, (double) (t.records - c->last.records) / secs, t.messages,
                         t.missing_template_sets,
                         t.err_version + t.err_length + t.err_set + t.err_template +
                                 t.err_record + t.err_decode + t.err_netflow9,
                         t.drop_backpressure_records + t.drop_output_records +
                                 t.drop_session_limit_messages + t.drop_odid_limit_messages,
                         atomic_load(&c->shared.open_connections));
        c->last = t;
        c->last_usec = now;
        if (c->cfg.metrics_file) {
                MetricsBuf b = { 0 };
                int r;
                collector_render_metrics(c, &b);
                r = metrics_write_file(c->cfg.metrics_file, &b);
                if (r < 0)
                        log_warning_errno(r, "Failed to write %s: %m, ignoring", c->cfg.metrics_file);
                metrics_buf_done(&b);
        }
}

static int on_stats_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Collector *c = userdata;
        write_stats(c);
        (void) sd_event_source_set_time_relative(s, (uint64_t) MAX(c->cfg.stats_interval_s, 1) *
                                                            1000000u);
        return 0;
}

static char **strv_copy(char *const *v, size_t n) {
        char **copy = calloc(n + 1, sizeof(*copy));

        if (!copy)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(copy[i] = strdup(v[i]))) {
                        for (size_t j = 0; j < i; j++)
                                free(copy[j]);
                        free(copy);
                        return NULL;
                }
        return copy;
}

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

static int set_config_text(Collector *c, const char *text) {
        char *copy = NULL;

        if (text && !(copy = strdup(text)))
                return -ENOMEM;
        free(c->config_text);
        c->config_text = copy;
        (void) snprintf(c->config_version, sizeof(c->config_version), "%016" PRIx64,
                        hash_fnv1a64(c->config_text));
        return 0;
}

/* ---- state, drain, bus surface ------------------------------------------------------- */

static const char *const state_names[_COLLECTOR_STATE_MAX] = {
        [COLLECTOR_STARTING] = "starting",
        [COLLECTOR_RUNNING] = "running",
        [COLLECTOR_DEGRADED] = "degraded",
        [COLLECTOR_DRAINING] = "draining",
        [COLLECTOR_DRAINED] = "drained",
};

const char *collector_state_to_string(CollectorState s) {
        return s >= 0 && s < _COLLECTOR_STATE_MAX ? state_names[s] : NULL;
}

CollectorState collector_get_state(const Collector *c) {
        return c->state;
}

bool collector_is_ready(const Collector *c) {
        return c->state == COLLECTOR_RUNNING || c->state == COLLECTOR_DEGRADED;
}

uint64_t collector_started_ms(const Collector *c) {
        return c->started_ms;
}

const char *collector_config_version(const Collector *c) {
        return c->config_version;
}

static void set_state(Collector *c, CollectorState s) {
        if (c->state == s)
                return;
        log_debug("State %s -> %s", collector_state_to_string(c->state),
                  collector_state_to_string(s));
        c->state = s;
        collector_bus_state_changed(c->bus);
}

/* RUNNING <-> DEGRADED by the Redis store's connection; draining states are left alone. */
static void check_store(Collector *c) {
        RedisStoreStats rs;

        if (!c->redis)
                return;
        tmpl_store_redis_get_stats(c->store, &rs);
        if (rs.connected) {
                c->store_seen_up = true;
                if (c->store_degraded) {
                        c->store_degraded = false;
                        collector_bus_push_recovered(c->bus);
                }
        } else if (!c->store_degraded &&
                   (c->store_seen_up || now_usec() - c->started_usec > STORE_GRACE_USEC)) {
                char reason[160];

                c->store_degraded = true;
                (void) snprintf(reason, sizeof(reason), "template store: Redis at %s unreachable",
                                c->cfg.redis_address);
                collector_bus_push_degraded(c->bus, reason);
        }
        if (c->state == COLLECTOR_RUNNING && c->store_degraded)
                set_state(c, COLLECTOR_DEGRADED);
        else if (c->state == COLLECTOR_DEGRADED && !c->store_degraded)
                set_state(c, COLLECTOR_RUNNING);
}

static void check_drain(Collector *c) {
        CollectorCounters t;
        DrainWaiter *waiters;
        size_t n;

        if (c->state != COLLECTOR_DRAINING)
                return;
        for (size_t i = 0; i < c->n_workers; i++)
                if (!worker_finished(c->workers[i]))
                        return;
        collector_get_counters(c, &t);
        log_info("Drained records=%" PRIu64 " records_sent=%" PRIu64
                 " drop_shutdown_batches=%" PRIu64, t.records, t.records_sent,
                 t.drop_shutdown_batches);
        set_state(c, COLLECTOR_DRAINED);
        write_stats(c);
        waiters = TAKE_PTR(c->drain_waiters);
        n = c->n_drain_waiters;
        c->n_drain_waiters = 0;
        for (size_t i = 0; i < n; i++)
                waiters[i].done(waiters[i].userdata, 0);
        free(waiters);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Collector *c = userdata;

        check_store(c);
        check_drain(c);
        collector_bus_flush(c->bus);
        (void) sd_event_source_set_time_relative(s, TICK_USEC);
        return 0;
}

int collector_drain(Collector *c, CollectorDrainDone done, void *userdata) {
        DrainWaiter *n;

        assert(done);
        if (c->state == COLLECTOR_DRAINED)
                return 1;
        n = realloc(c->drain_waiters, (c->n_drain_waiters + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        c->drain_waiters = n;
        c->drain_waiters[c->n_drain_waiters++] = (DrainWaiter) { done, userdata };
        if (c->state != COLLECTOR_DRAINING) {
                log_info("Draining: workers stop accepting and reading, hand over what they "
                         "read within %" PRId64 " ms", c->cfg.shutdown_timeout_ms);
                for (size_t i = 0; i < c->n_workers; i++)
                        worker_stop(c->workers[i]);
                set_state(c, COLLECTOR_DRAINING);
        }
        /* The tick sees the workers finish; with no tick (no bus), look now and then. */
        if (!c->tick)
                check_drain(c);
        return 0;
}

void collector_get_counters(Collector *c, CollectorCounters *ret) {
        (void) total_counters(c, ret, NULL, NULL);
}

size_t collector_n_listeners(const Collector *c) {
        return c->cfg.n_listeners;
}

int collector_get_listener(Collector *c, size_t index, CollectorListenerInfo *ret) {
        const ListenerConfig *l;

        if (index >= c->cfg.n_listeners)
                return -ENOENT;
        l = &c->cfg.listeners[index];
        *ret = (CollectorListenerInfo) {
                .transport = l->transport,
                .address = l->address,
                .port = l->port,
                .proxy_protocol = l->proxy_protocol,
        };
        for (size_t i = 0; i < c->n_workers; i++) {
                uint64_t a, r;
                worker_listener_stats(c->workers[i], index, &a, &r);
                ret->accepted += a;
                ret->records += r;
        }
        return 0;
}

static int cmp_template(const void *a, const void *b);

int collector_list_exporters(Collector *c, CollectorExporter **ret, size_t *ret_n) {
        _cleanup_free_ CollectorTemplate *tl = NULL;
        ExporterSnapshot *e = NULL;
        CollectorExporter *list = NULL;
        CollectorCounters t;
        size_t n = 0, m = 0, n_tl = 0;

        if (collector_list_templates(c, &tl, &n_tl) < 0)
                return -ENOMEM;
        (void) total_counters(c, &t, &e, &n);
        if (n > 0)
                qsort(e, n, sizeof(*e), cmp_exporter);
        if (n > 0 && !(list = calloc(n, sizeof(*list)))) {
                free(e);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                CollectorExporter *x;
                if (m == 0 || cmp_exporter(&e[i - 1], &e[i]) != 0) {
                        x = &list[m++];
                        x->key = e[i].key;
                        x->tcp = e[i].tcp;
                } else
                        x = &list[m - 1];
                x->messages += e[i].stats.messages;
                x->records += e[i].stats.records;
                x->bytes += e[i].stats.bytes;
                x->errors += e[i].stats.errors;
                x->missing_template_sets += e[i].stats.missing_template_sets;
                x->last_seen_ms = MAX(x->last_seen_ms, e[i].stats.last_seen_ms);
        }
        free(e);
        /* Templates: what the store holds for the exporter (it outlives the sessions). */
        for (size_t i = 0; i < m; i++) {
                CollectorTemplate probe = { .key = list[i].key, .id = 0 };
                size_t lo = 0, hi = n_tl;
                while (lo < hi) {       /* first entry not below (addr, odid, 0) */
                        size_t mid = (lo + hi) / 2;
                        if (cmp_template(&tl[mid], &probe) < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                for (; lo < n_tl && exporter_key_equal(&tl[lo].key, &list[i].key); lo++)
                        list[i].templates++;
        }
        *ret = list;
        *ret_n = m;
        return 0;
}

typedef struct TemplateList {
        TmplStore *store;
        CollectorTemplate *items;
        size_t n, cap;
        bool failed;
} TemplateList;

static void collect_template(void *userdata, const ExporterKey *k, uint16_t tid) {
        TemplateList *l = userdata;
        IpfixTemplate *t = NULL;

        if (l->failed || l->store->ops->lookup(l->store, k, tid, &t) < 0)
                return;         /* withdrawn since the snapshot */
        if (l->n == l->cap) {
                size_t cap = MAX(l->cap * 2, 64);
                CollectorTemplate *n = realloc(l->items, cap * sizeof(*n));
                if (!n) {
                        l->failed = true;
                        free(t);
                        return;
                }
                l->items = n;
                l->cap = cap;
        }
        l->items[l->n++] = (CollectorTemplate) { .key = *k, .id = t->id,
                                                 .fields = t->field_count,
                                                 .scope_fields = t->scope_count };
        free(t);
}

static int cmp_template(const void *a, const void *b) {
        const CollectorTemplate *x = a, *y = b;
        int r = memcmp(x->key.addr, y->key.addr, 16);
        if (r != 0)
                return r;
        if (x->key.odid != y->key.odid)
                return x->key.odid < y->key.odid ? -1 : 1;
        return (int) x->id - (int) y->id;
}

int collector_list_templates(Collector *c, CollectorTemplate **ret, size_t *ret_n) {
        TemplateList l = { .store = local_store(c) };
        int r;

        r = tmpl_store_memory_foreach(l.store, collect_template, &l);
        if (r < 0 || l.failed) {
                free(l.items);
                return -ENOMEM;
        }
        if (l.n > 0)
                qsort(l.items, l.n, sizeof(*l.items), cmp_template);
        *ret = l.items;
        *ret_n = l.n;
        return 0;
}

static int load_config(Collector *c, const char *json, CollectorConfig *ret, char **reterr) {
        if (json && strlen(json) > CONFIG_MAX_FILE_SIZE) {
                *reterr = config_errorf("configuration larger than %u octets",
                                        CONFIG_MAX_FILE_SIZE);
                memset(ret, 0, sizeof(*ret));
                return -EINVAL;
        }
        return collector_config_load(json, c->sets, c->n_sets, c->listens, c->n_listens, ret,
                                     reterr);
}

int collector_validate(Collector *c, const char *json, char **reterr) {
        CollectorConfig n;
        int r;

        r = load_config(c, json, &n, reterr);
        collector_config_done(&n);
        return r;
}

static bool listeners_equal(const ListenerConfig *a, size_t na, const ListenerConfig *b,
                            size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (a[i].transport != b[i].transport || a[i].port != b[i].port ||
                    a[i].proxy_protocol != b[i].proxy_protocol ||
                    strcmp(a[i].address, b[i].address) != 0)
                        return false;
        return true;
}

static void format_value(const ConfigKey *k, const void *cfg, char *buf, size_t len) {
        const uint8_t *p = (const uint8_t *) cfg + k->offset;

        switch (k->type) {
        case CONFIG_INT:
                (void) snprintf(buf, len, "%" PRId64, *(const int64_t *) p);
                break;
        case CONFIG_BOOL:
                (void) snprintf(buf, len, "%s", *(const bool *) p ? "true" : "false");
                break;
        case CONFIG_STRING:
                if (*(char *const *) p)
                        (void) snprintf(buf, len, "%s", *(char *const *) p);
                else
                        (void) snprintf(buf, len, "unset");
                break;
        }
}

static int append_change(json_t *changes, const char *fmt, ...) _printf_(2, 3);
static int append_change(json_t *changes, const char *fmt, ...) {
        char line[512];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        return json_array_append_new(changes, json_string(line)) < 0 ? -ENOMEM : 0;
}

int collector_reload(Collector *c, const char *json, char **retchanges, char **reterr) {
        _cleanup_free_ char *file_text = NULL;
        json_t *changes = NULL;
        CollectorConfig n;
        char *dump;
        int r;

        if (!json || !*json) {
                if (!c->config_path) {
                        *reterr = config_errorf("no configuration file to re-read");
                        return -ENOENT;
                }
                r = config_read_file(c->config_path, &file_text);
                if (r < 0) {
                        errno = -r;
                        *reterr = config_errorf("cannot read %s: %m", c->config_path);
                        return r;
                }
                json = file_text;
        }
        r = load_config(c, json, &n, reterr);
        if (r < 0)
                goto out;

        changes = json_array();
        if (!changes) {
                r = -ENOMEM;
                goto out;
        }
        /* Only reloadable keys take effect; the rest need a restart (and are said so). */
        for (size_t i = 0; i < collector_config_n_keys && r >= 0; i++) {
                const ConfigKey *k = &collector_config_keys[i];
                char a[128], b[128];

                if (!config_key_changed(k, &c->cfg, &n))
                        continue;
                if (!k->reloadable) {
                        r = append_change(changes, "%s: changed; takes effect after a restart",
                                          k->name);
                        continue;
                }
                format_value(k, &c->cfg, a, sizeof(a));
                format_value(k, &n, b, sizeof(b));
                r = append_change(changes, "%s: %s -> %s", k->name, a, b);
        }
        if (r >= 0 && !listeners_equal(c->listeners_configured, c->n_listeners_configured,
                                       n.listeners, n.n_listeners))
                r = append_change(changes, "listeners: changed; takes effect after a restart");
        if (r < 0)
                goto out;
        dump = json_dumps(changes, JSON_COMPACT);
        if (!dump || set_config_text(c, json) < 0) {
                free(dump);
                r = -ENOMEM;
                goto out;
        }

        /* Nothing can fail from here on. */
        if (strcmp(c->cfg.log_level, n.log_level) != 0) {
                free(c->cfg.log_level);
                c->cfg.log_level = TAKE_PTR(n.log_level);
                log_set_max_level(log_level_from_string(c->cfg.log_level));
        }
        if (c->cfg.stats_interval_s != n.stats_interval_s) {
                c->cfg.stats_interval_s = n.stats_interval_s;
                if (c->stats_timer) {
                        (void) sd_event_source_set_time_relative(
                                c->stats_timer, (uint64_t) MAX(c->cfg.stats_interval_s, 1) * 1000000u);
                        (void) sd_event_source_set_enabled(c->stats_timer,
                                                           c->cfg.stats_interval_s > 0 ? SD_EVENT_ON
                                                                                       : SD_EVENT_OFF);
                }
        }
        for (size_t i = 0; i < json_array_size(changes); i++)
                log_info("Reload: %s", json_string_value(json_array_get(changes, i)));
        log_info("Reloaded %s version=%s", json == file_text ? c->config_path : "configuration",
                 c->config_version);
        *retchanges = dump;
        r = 0;
out:
        json_decref(changes);
        collector_config_done(&n);
        return r;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Collector *c = userdata;
        _cleanup_free_ char *changes = NULL, *err = NULL;
        int r;

        if (!c->config_path) {
                log_notice("SIGHUP: no configuration file to reload, ignoring");
                return 0;
        }
        r = collector_reload(c, NULL, &changes, &err);
        if (r < 0 && err)
                log_error("Reload: %s: %s, keeping the running configuration", c->config_path,
                          err);
        else if (r < 0)
                log_error_errno(r, "Reload: %s: %m, keeping the running configuration",
                                c->config_path);
        return 0;
}

static int open_store(Collector *c) {
        _cleanup_free_ char *password = NULL;
        RedisStoreConfig rc;
        uint32_t replica = (uint32_t) c->cfg.collector_id;
        int r;

        if (strcmp(c->cfg.template_store, "redis") != 0)
                return tmpl_store_new_memory(&c->store, (size_t) c->cfg.store_max_templates);

        if (c->cfg.redis_password_file) {
                r = config_read_password(c->cfg.redis_password_file, &password);
                if (r < 0)
                        return log_error_errno(r, "Failed to read redis_password_file %s: %m",
                                               c->cfg.redis_password_file);
        }
        /* Replicas tell their own change events apart by this id. */
        while (replica == 0 && getrandom(&replica, sizeof(replica), 0) != sizeof(replica))
                ;
        rc = (RedisStoreConfig) {
                .address = c->cfg.redis_address,
                .password = password,
                .db = (unsigned) c->cfg.redis_db,
                .prefix = c->cfg.redis_prefix,
                .ttl_s = (uint32_t) c->cfg.template_ttl_s,
                .replica_id = replica,
                .max_queued = (size_t) c->cfg.redis_max_queued,
                .max_cache = (size_t) c->cfg.store_max_templates,
        };
        r = tmpl_store_new_redis(&c->store, &rc);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the Redis template store at %s: %m",
                                       c->cfg.redis_address);
        c->redis = true;
        log_info("Template store: Redis at %s prefix=%s replica=%08x", c->cfg.redis_address,
                 c->cfg.redis_prefix, replica);
        return 0;
}

int collector_new(Collector **ret, CollectorConfig *cfg, const CollectorOrigin *origin) {
        static const CollectorOrigin none = { 0 };
        Collector *c;
        int r;

        if (!origin)
                origin = &none;

        /* Block the signals the main loop handles before any thread exists (the store's,
         * ZeroMQ's, the workers'), so only the main loop ever receives them. */
        {
                sigset_t mask;
                sigemptyset(&mask);
                sigaddset(&mask, SIGHUP);
                sigaddset(&mask, SIGTERM);
                sigaddset(&mask, SIGINT);
                if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
                        return log_error_errno(-EINVAL, "Failed to block signals");
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return log_error_errno(-ENOMEM, "Out of memory");
        c->cfg = *cfg;
        memset(cfg, 0, sizeof(*cfg));
        c->started_ms = now_realtime_ms();
        c->started_usec = now_usec();
        c->state = COLLECTOR_STARTING;
        memcpy(c->listeners_configured, c->cfg.listeners, sizeof(c->listeners_configured));
        c->n_listeners_configured = c->cfg.n_listeners;
        if ((origin->config_path && !(c->config_path = strdup(origin->config_path))) ||
            !(c->sets = strv_copy(origin->sets, origin->n_sets)) ||
            !(c->listens = strv_copy(origin->listens, origin->n_listens)) ||
            set_config_text(c, origin->config_text) < 0) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto fail;
        }
        c->n_sets = origin->n_sets;
        c->n_listens = origin->n_listens;
        r = sd_event_default(&c->event);
        if (r < 0) {
                log_error_errno(r, "Failed to create the main loop: %m");
                goto fail;
        }
        /* Before the store exists: its thread may report changes at once. The bus only
         * connects once the loop runs. */
        r = collector_bus_new(&c->bus, c, c->event, c->cfg.bus_address);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the bus connection: %m");
                goto fail;
        }
        log_set_max_level(log_level_from_string(c->cfg.log_level));
        g_log_set_default_handler(on_glib_log, NULL);
        {
                /* hiredis writes with write(2): a Redis that goes away must not kill us. */
                struct sigaction sa = { .sa_handler = SIG_IGN };
                (void) sigaction(SIGPIPE, &sa, NULL);
        }
        /* A 1024-record batch is 128 KiB, glibc's default mmap threshold: without this every
         * batch would be a fresh mmap, page faults included (measured: ~2% of CPU). */
        (void) mallopt(M_MMAP_THRESHOLD, 4 << 20);

        {
                /* Every exporter connection is an fd: take the hard limit (systemd's advice:
                 * raise the soft limit in the program that needs it). */
                struct rlimit rl;
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                        rl.rlim_cur = rl.rlim_max;
                        (void) setrlimit(RLIMIT_NOFILE, &rl);
                }
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
                    rl.rlim_cur < (rlim_t) c->cfg.max_connections + 256)
                        log_warning("RLIMIT_NOFILE is %llu, below max_connections=%" PRId64
                                    " plus headroom: accept() will fail before the limit",
                                    (unsigned long long) rl.rlim_cur, c->cfg.max_connections);
        }
        c->zctx = zmq_ctx_new();
        if (!c->zctx) {
                r = log_error_errno(-errno, "Failed to create ZeroMQ context: %m");
                goto fail;
        }
        r = open_store(c);
        if (r < 0)
                goto fail;
        tmpl_store_set_listener(c->store, on_store_change, c);
        c->shared.cfg = &c->cfg;
        c->shared.zctx = c->zctx;
        c->shared.store = c->store;
        if (collector_bus_enabled(c->bus)) {
                c->shared.on_exporter = on_exporter;
                c->shared.on_exporter_userdata = c;
        }

        c->workers = calloc((size_t) c->cfg.workers, sizeof(*c->workers));
        if (!c->workers) {
                r = -ENOMEM;
                goto fail;
        }
        for (; c->n_workers < (size_t) c->cfg.workers; c->n_workers++) {
                r = worker_new(&c->workers[c->n_workers], (unsigned) c->n_workers, &c->shared);
                if (r < 0) {
                        log_error_errno(r, "Failed to create worker %zu: %m", c->n_workers);
                        goto fail;
                }
        }
        for (size_t l = 0; l < c->cfg.n_listeners; l++) {
                ListenerConfig *lc = &c->cfg.listeners[l];
                for (size_t i = 0; i < c->n_workers; i++) {
                        uint16_t port = 0;
                        int fd = listener_open(lc, (int) c->cfg.tcp_backlog, (int) c->cfg.udp_rcvbuf,
                                               &port);
                        if (fd < 0) {
                                r = log_error_errno(fd, "Failed to listen on %s %s port %u: %m",
                                                    lc->transport == LISTENER_TCP ? "tcp" : "udp",
                                                    lc->address, lc->port);
                                goto fail;
                        }
                        lc->port = port;        /* port 0: every worker shares the first one's */
                        r = worker_add_listener(c->workers[i], lc->transport, lc->proxy_protocol, fd);
                        if (r < 0)
                                goto fail;
                }
                log_info("Listening on %s %s port %u workers=%zu%s",
                         lc->transport == LISTENER_TCP ? "tcp" : "udp", lc->address, lc->port,
                         c->n_workers, lc->proxy_protocol ? " proxy_protocol=required" : "");
        }
        *ret = c;
        return 0;
fail:
        collector_free(c);
        return r;
}

Collector *collector_free(Collector *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_workers; i++)
                worker_free(c->workers[i]);
        free(c->workers);
        tmpl_store_free(c->store);
        /* The bus after every thread that reports to it (workers, the store's) is gone; it
         * calls into the collector only from the loop, which no longer runs. */
        c->bus = collector_bus_free(c->bus);
        for (size_t i = 0; i < c->n_drain_waiters; i++)
                c->drain_waiters[i].done(c->drain_waiters[i].userdata, -ECANCELED);
        free(c->drain_waiters);
        if (c->zctx)
                (void) zmq_ctx_term(c->zctx);
        sd_event_source_disable_unref(c->stats_timer);
        sd_event_source_disable_unref(c->hup_src);
        sd_event_source_disable_unref(c->tick);
        sd_event_unref(c->event);
        collector_config_done(&c->cfg);
        free(c->config_path);
        free(c->config_text);
        strv_free(c->sets, c->n_sets);
        strv_free(c->listens, c->n_listens);
        free(c);
        return NULL;
}

int collector_run(Collector *c) {
        sigset_t mask;
        int r;

        /* Signals are blocked before the workers exist so only the main loop sees them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
                return -EINVAL;
        r = sd_event_add_signal(c->event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c->event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c->event, &c->hup_src, SIGHUP, on_sighup, c);
        if (r >= 0)
                r = sd_event_add_time_relative(c->event, &c->stats_timer, CLOCK_MONOTONIC,
                                               (uint64_t) MAX(c->cfg.stats_interval_s, 1) * 1000000u,
                                               100000, on_stats_timer, c);
        if (r >= 0 && collector_bus_enabled(c->bus)) {
                /* Signals, state and drain completion; only the bus needs them. */
                r = sd_event_add_time_relative(c->event, &c->tick, CLOCK_MONOTONIC, TICK_USEC,
                                               10000, on_tick, c);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->tick, SD_EVENT_ON);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to set up the main loop: %m");
        (void) sd_event_source_set_enabled(c->stats_timer,
                                           c->cfg.stats_interval_s > 0 ? SD_EVENT_ON : SD_EVENT_OFF);
        for (size_t i = 0; i < c->n_workers; i++) {
                r = worker_start(c->workers[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to start worker %zu: %m", i);
        }
        c->last_usec = now_usec();
        set_state(c, COLLECTOR_RUNNING);
        (void) sd_notify(0, "READY=1");
        log_info("Collector ready output=%s", c->cfg.output);

        r = sd_event_loop(c->event);

        if (c->state == COLLECTOR_DRAINED)
                log_info("Shutting down (drained already)");
        else
                log_info("Shutting down: draining workers");
        (void) sd_notify(0, "STOPPING=1");
        for (size_t i = 0; i < c->n_workers; i++)
                worker_stop(c->workers[i]);
        for (size_t i = 0; i < c->n_workers; i++)
                worker_join(c->workers[i]);
        write_stats(c);
        return r < 0 ? r : 0;
}
