/* SPDX-License-Identifier: MIT */
/*
 * collector.c - process-level wiring: listeners onto workers, signals, summaries, metrics.
 * The Collector owns every object below it; workers borrow the config, store and ZeroMQ
 * context, which therefore outlive them (freed after worker_join()).
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <zmq.h>

#include "collector.h"
#include "listener.h"
#include "tmpl-store-redis.h"
#include "log.h"
#include "macro.h"
#include "worker.h"

struct Collector {
        CollectorConfig cfg;
        char *config_path;
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

static void on_store_change(void *userdata, const ExporterKey *k, uint16_t tid) {
        Collector *c = userdata;
        for (size_t i = 0; i < c->n_workers; i++)
                worker_template_changed(c->workers[i], k, tid);
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

                if (worker_snapshot(c->workers[i], &wc, &e, &n) < 0)
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

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Collector *c = userdata;
        _cleanup_free_ char *text = NULL, *err = NULL;
        CollectorConfig n;
        int r;

        if (!c->config_path) {
                log_notice("SIGHUP: no configuration file to reload, ignoring");
                return 0;
        }
        r = config_read_file(c->config_path, &text);
        if (r < 0)
                return log_error_errno(r, "Reload: cannot read %s: %m, keeping the running "
                                          "configuration", c->config_path), 0;
        r = collector_config_parse(text, true, &n, &err);
        if (r < 0) {
                log_error("Reload: %s: %s, keeping the running configuration", c->config_path,
                          err ? err : "invalid");
                collector_config_done(&n);
                return 0;
        }
        /* Only reloadable keys take effect; the rest need a restart (said once per key). */
        for (size_t i = 0; i < collector_config_n_keys; i++) {
                const ConfigKey *k = &collector_config_keys[i];
                if (config_key_changed(k, &c->cfg, &n) && !k->reloadable)
                        log_notice("Reload: %s changed; it takes effect after a restart", k->name);
        }
        free(c->cfg.log_level);
        c->cfg.log_level = TAKE_PTR(n.log_level);
        c->cfg.stats_interval_s = n.stats_interval_s;
        log_set_max_level(log_level_from_string(c->cfg.log_level));
        collector_config_done(&n);
        log_info("Reloaded %s", c->config_path);
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
                size_t l;
                r = config_read_file(c->cfg.redis_password_file, &password);
                if (r < 0)
                        return log_error_errno(r, "Failed to read redis_password_file %s: %m",
                                               c->cfg.redis_password_file);
                l = strlen(password);
                while (l > 0 && (password[l - 1] == '\n' || password[l - 1] == '\r'))
                        password[--l] = '\0';
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

int collector_new(Collector **ret, CollectorConfig *cfg, const char *config_path) {
        Collector *c;
        int r;

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
        if (config_path && !(c->config_path = strdup(config_path))) {
                r = -ENOMEM;
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
        if (c->zctx)
                (void) zmq_ctx_term(c->zctx);
        sd_event_source_disable_unref(c->stats_timer);
        sd_event_source_disable_unref(c->hup_src);
        sd_event_unref(c->event);
        collector_config_done(&c->cfg);
        free(c->config_path);
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
        r = sd_event_default(&c->event);
        if (r < 0)
                return r;
        r = sd_event_add_signal(c->event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c->event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(c->event, &c->hup_src, SIGHUP, on_sighup, c);
        if (r >= 0)
                r = sd_event_add_time_relative(c->event, &c->stats_timer, CLOCK_MONOTONIC,
                                               (uint64_t) MAX(c->cfg.stats_interval_s, 1) * 1000000u,
                                               100000, on_stats_timer, c);
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
        (void) sd_notify(0, "READY=1");
        log_info("Collector ready output=%s", c->cfg.output);

        r = sd_event_loop(c->event);

        log_info("Shutting down: draining workers");
        (void) sd_notify(0, "STOPPING=1");
        for (size_t i = 0; i < c->n_workers; i++)
                worker_stop(c->workers[i]);
        for (size_t i = 0; i < c->n_workers; i++)
                worker_join(c->workers[i]);
        write_stats(c);
        return r < 0 ? r : 0;
}
