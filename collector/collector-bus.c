/* SPDX-License-Identifier: MIT */
/*
 * collector-bus.c - org.ipfixd.Collector1 on the pod's bus: the vtable (properties,
 * methods, signals as common/bus-names.h lists them), the signal queue fed from any thread,
 * and its rate limit. The collector's logic lives in collector.c; this file only translates.
 *
 * Invariants:
 * - Everything but collector_bus_push_*() and collector_bus_signals_dropped() runs on the
 *   loop thread. The queue is the only state other threads touch (under b->lock; the
 *   connected flag and the drop counter are atomics).
 * - Properties are computed when read. Counter totals are taken once per loop iteration
 *   (keyed by sd_event_now()), so a GetAll does not sum the workers once per counter.
 * - A pending Drain() call is held by its message reference only: its completion callback
 *   touches nothing but the message, so it is safe after the CollectorBus (or the
 *   connection the call came in on) is gone. A reply on a lost connection just fails.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "bus-names.h"
#include "collector-bus.h"
#include "collector.h"
#include "ev-bus.h"
#include "flow.h"
#include "log.h"
#include "macro.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
/* Connected this long without the name: someone else has it. */
#define NAME_WARN_USEC (2u * 1000u * 1000u)

typedef enum BusEventType {
        BUS_EVENT_EXPORTER_CONNECTED,
        BUS_EVENT_EXPORTER_DISCONNECTED,
        BUS_EVENT_TEMPLATE_LEARNED,
        BUS_EVENT_TEMPLATE_WITHDRAWN,
        BUS_EVENT_DEGRADED,
        BUS_EVENT_RECOVERED,
} BusEventType;

typedef struct BusEvent {
        BusEventType type;
        bool tcp;
        uint16_t tid;
        ExporterKey key;
        char *reason;                   /* DEGRADED: heap */
} BusEvent;

struct CollectorBus {
        Collector *c;
        sd_event *event;
        EvBus *ev;
        atomic_bool connected;
        atomic_uint_fast64_t dropped;

        pthread_mutex_t lock;           /* guards the ring */
        BusEvent *ring;                 /* COLLECTOR_BUS_QUEUE entries */
        size_t head, n;
        BusEvent *scratch;              /* the loop's copy while emitting */
        CollectorTokenBucket bucket;

        CollectorCounters cache;
        uint64_t cache_stamp;
        bool cache_valid;

        bool ever_connected;
        bool logged_unreachable;
        bool logged_name;
        uint64_t connected_usec;
};

/* ---- token bucket ------------------------------------------------------------------------ */

void collector_token_bucket_init(CollectorTokenBucket *tb, uint64_t rate, uint64_t now_usec) {
        tb->rate = rate;
        tb->micro_tokens = rate * 1000000u;
        tb->last_usec = now_usec;
}

bool collector_token_bucket_take(CollectorTokenBucket *tb, uint64_t now_usec) {
        if (now_usec > tb->last_usec) {
                /* usec x tokens/s = micro-tokens */
                tb->micro_tokens += (now_usec - tb->last_usec) * tb->rate;
                tb->micro_tokens = MIN(tb->micro_tokens, tb->rate * 1000000u);
                tb->last_usec = now_usec;
        }
        if (tb->micro_tokens < 1000000u)
                return false;
        tb->micro_tokens -= 1000000u;
        return true;
}

/* ---- properties ------------------------------------------------------------------------- */

static const CollectorCounters *counters(CollectorBus *b) {
        uint64_t now = 0;

        (void) sd_event_now(b->event, CLOCK_MONOTONIC, &now);
        if (!b->cache_valid || now != b->cache_stamp) {
                collector_get_counters(b->c, &b->cache);
                b->cache_stamp = now;
                b->cache_valid = true;
        }
        return &b->cache;
}

static const struct {
        const char *name;
        size_t offset;
} counter_props[] = {
#define X_ENTRY(name, help) { #name, offsetof(CollectorCounters, name) },
        COLLECTOR_COUNTERS(X_ENTRY)
#undef X_ENTRY
};

static int property_get_counter(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        CollectorBus *b = userdata;

        for (size_t i = 0; i < ELEMENTSOF(counter_props); i++)
                if (strcmp(counter_props[i].name, property) == 0) {
                        const uint8_t *base = (const uint8_t *) counters(b);
                        uint64_t v;
                        memcpy(&v, base + counter_props[i].offset, sizeof(v));
                        return sd_bus_message_append(reply, "t", v);
                }
        return -ENOENT;
}

static int property_get_ready(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        CollectorBus *b = userdata;
        return sd_bus_message_append(reply, "b", (int) collector_is_ready(b->c));
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        CollectorBus *b = userdata;
        return sd_bus_message_append(reply, "s",
                                     collector_state_to_string(collector_get_state(b->c)));
}

static int property_get_config_version(sd_bus *bus, const char *path, const char *interface,
                                       const char *property, sd_bus_message *reply,
                                       void *userdata, sd_bus_error *error) {
        CollectorBus *b = userdata;
        return sd_bus_message_append(reply, "s", collector_config_version(b->c));
}

static int property_get_started_ms(sd_bus *bus, const char *path, const char *interface,
                                   const char *property, sd_bus_message *reply, void *userdata,
                                   sd_bus_error *error) {
        CollectorBus *b = userdata;
        return sd_bus_message_append(reply, "t", collector_started_ms(b->c));
}

static int property_get_listeners(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *reply, void *userdata,
                                  sd_bus_error *error) {
        CollectorBus *b = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ssqbtt)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < collector_n_listeners(b->c); i++) {
                CollectorListenerInfo l;
                if (collector_get_listener(b->c, i, &l) < 0)
                        continue;
                r = sd_bus_message_append(reply, "(ssqbtt)",
                                          l.transport == LISTENER_TCP ? "tcp" : "udp", l.address,
                                          l.port, (int) l.proxy_protocol, l.accepted, l.records);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* ---- methods ---------------------------------------------------------------------------- */

static int method_get_metrics(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CollectorBus *b = userdata;
        MetricsBuf buf = { 0 };
        int r;

        collector_render_metrics(b->c, &buf);
        if (metrics_buf_failed(&buf)) {
                metrics_buf_done(&buf);
                return -ENOMEM;
        }
        r = sd_bus_reply_method_return(m, "s", buf.data ? buf.data : "");
        metrics_buf_done(&buf);
        return r;
}

static int config_error(sd_bus_error *error, int r, const char *msg) {
        if (r == -EINVAL)
                return sd_bus_error_set(error, BUS_ERROR_INVALID_CONFIG, msg ? msg : "invalid");
        if (r == -ENOENT)
                return sd_bus_error_set(error, SD_BUS_ERROR_FILE_NOT_FOUND, msg);
        if (msg)
                return sd_bus_error_set_errnof(error, r, "%s", msg);
        return r;
}

static int method_validate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CollectorBus *b = userdata;
        _cleanup_free_ char *err = NULL;
        const char *json;
        int r;

        r = sd_bus_message_read(m, "s", &json);
        if (r < 0)
                return r;
        r = collector_validate(b->c, json, &err);
        if (r < 0)
                return config_error(error, r, err);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CollectorBus *b = userdata;
        _cleanup_free_ char *err = NULL, *changes = NULL;
        const char *json;
        int r;

        r = sd_bus_message_read(m, "s", &json);
        if (r < 0)
                return r;
        r = collector_reload(b->c, json, &changes, &err);
        if (r < 0) {
                log_warning("Reload over D-Bus refused: %s", err ? err : "error");
                return config_error(error, r, err);
        }
        return sd_bus_reply_method_return(m, "s", changes);
}

/* Touches only the message: see the invariants above. */
static void on_drain_done(void *userdata, int r) {
        sd_bus_message *m = userdata;

        if (r >= 0)
                (void) sd_bus_reply_method_return(m, NULL);
        sd_bus_message_unref(m);
}

static int method_drain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CollectorBus *b = userdata;
        int r;

        r = collector_drain(b->c, on_drain_done, m);
        if (r < 0)
                return r;
        if (r > 0)      /* drained already */
                return sd_bus_reply_method_return(m, NULL);
        sd_bus_message_ref(m);
        return 1;       /* replied from on_drain_done() */
}

static int method_list_exporters(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CollectorBus *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ CollectorExporter *list = NULL;
        size_t n = 0;
        int r;

        r = collector_list_exporters(b->c, &list, &n);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sustttu)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char addr[64];
                r = sd_bus_message_append(reply, "(sustttu)",
                                          flow_addr_format(list[i].key.addr, list[i].key.family,
                                                           addr, sizeof(addr)),
                                          list[i].key.odid, list[i].tcp ? "tcp" : "udp",
                                          list[i].records, list[i].bytes, list[i].last_seen_ms,
                                          list[i].templates);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_list_templates(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CollectorBus *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ CollectorTemplate *list = NULL;
        size_t n = 0;
        int r;

        r = collector_list_templates(b->c, &list, &n);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(suqqq)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char addr[64];
                r = sd_bus_message_append(reply, "(suqqq)",
                                          flow_addr_format(list[i].key.addr, list[i].key.family,
                                                           addr, sizeof(addr)),
                                          list[i].key.odid, list[i].id, list[i].fields,
                                          list[i].scope_fields);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable collector_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Ready", "b", property_get_ready, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ConfigVersion", "s", property_get_config_version, 0, 0),
        SD_BUS_PROPERTY("StartedMs", "t", property_get_started_ms, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Listeners", "a(ssqbtt)", property_get_listeners, 0, 0),
#define X_PROPERTY(name, help) SD_BUS_PROPERTY(#name, "t", property_get_counter, 0, 0),
        COLLECTOR_COUNTERS(X_PROPERTY)
#undef X_PROPERTY
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", metrics),
                                method_get_metrics, 0),
        SD_BUS_METHOD_WITH_ARGS("Validate", SD_BUS_ARGS("s", config), SD_BUS_NO_RESULT,
                                method_validate, 0),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_ARGS("s", config), SD_BUS_RESULT("s", changes),
                                method_reload, 0),
        SD_BUS_METHOD_WITH_ARGS("Drain", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_drain, 0),
        SD_BUS_METHOD_WITH_ARGS("ListExporters", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sustttu)", exporters), method_list_exporters, 0),
        SD_BUS_METHOD_WITH_ARGS("ListTemplates", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(suqqq)", templates), method_list_templates, 0),
        SD_BUS_SIGNAL_WITH_ARGS("ExporterConnected", SD_BUS_ARGS("s", address, "s", transport), 0),
        SD_BUS_SIGNAL_WITH_ARGS("ExporterDisconnected", SD_BUS_ARGS("s", address, "s", transport),
                                0),
        SD_BUS_SIGNAL_WITH_ARGS("TemplateLearned",
                                SD_BUS_ARGS("s", exporter, "u", odid, "q", template_id), 0),
        SD_BUS_SIGNAL_WITH_ARGS("TemplateWithdrawn",
                                SD_BUS_ARGS("s", exporter, "u", odid, "q", template_id), 0),
        SD_BUS_SIGNAL_WITH_ARGS("Degraded", SD_BUS_ARGS("s", reason), 0),
        SD_BUS_SIGNAL("Recovered", "", 0),
        SD_BUS_VTABLE_END
};

/* ---- connection ------------------------------------------------------------------------- */

static int on_connected(sd_bus *bus, void *userdata) {
        CollectorBus *b = userdata;
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, BUS_COLLECTOR_PATH, BUS_COLLECTOR_INTERFACE,
                                     collector_vtable, b);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s on the bus: %m",
                                       BUS_COLLECTOR_PATH);
        atomic_store(&b->connected, true);
        b->ever_connected = true;
        b->logged_name = false;
        b->connected_usec = now_usec();
        log_info("Connected to the bus at %s", ev_bus_address(b->ev));
        return 0;
}

static void on_disconnected(void *userdata) {
        CollectorBus *b = userdata;

        atomic_store(&b->connected, false);
        log_warning("Lost the bus at %s, reconnecting in the background",
                    ev_bus_address(b->ev));
}

int collector_bus_new(CollectorBus **ret, Collector *c, sd_event *e, const char *address) {
        CollectorBus *b;
        EvBusConfig cfg;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->c = c;
        b->event = sd_event_ref(e);
        pthread_mutex_init(&b->lock, NULL);
        cfg = (EvBusConfig) {
                .address = address,
                .name = BUS_COLLECTOR_NAME,
                .retry_min_ms = RETRY_MIN_MS,
                .retry_max_ms = RETRY_MAX_MS,
                .on_connected = on_connected,
                .on_disconnected = on_disconnected,
                .userdata = b,
        };
        r = ev_bus_new(&b->ev, e, &cfg);
        if (r < 0) {
                collector_bus_free(b);
                return r;
        }
        if (ev_bus_enabled(b->ev)) {
                b->ring = calloc(COLLECTOR_BUS_QUEUE, sizeof(*b->ring));
                b->scratch = calloc(COLLECTOR_BUS_QUEUE, sizeof(*b->scratch));
                if (!b->ring || !b->scratch) {
                        collector_bus_free(b);
                        return -ENOMEM;
                }
                log_info("D-Bus: connecting to %s as %s", ev_bus_address(b->ev),
                         BUS_COLLECTOR_NAME);
        }
        collector_token_bucket_init(&b->bucket, BUS_SIGNALS_PER_SECOND, now_usec());
        *ret = b;
        return 0;
}

CollectorBus *collector_bus_free(CollectorBus *b) {
        if (!b)
                return NULL;
        b->ev = ev_bus_free(b->ev);
        for (size_t i = 0; b->ring && i < b->n; i++)
                free(b->ring[(b->head + i) % COLLECTOR_BUS_QUEUE].reason);
        free(b->ring);
        free(b->scratch);
        pthread_mutex_destroy(&b->lock);
        sd_event_unref(b->event);
        free(b);
        return NULL;
}

bool collector_bus_enabled(const CollectorBus *b) {
        return b && ev_bus_enabled(b->ev);
}

bool collector_bus_connected(const CollectorBus *b) {
        return b && atomic_load(&b->connected);
}

uint64_t collector_bus_signals_dropped(const CollectorBus *b) {
        return b ? atomic_load(&b->dropped) : 0;
}

/* ---- signals ---------------------------------------------------------------------------- */

static void push(CollectorBus *b, const BusEvent *ev) {
        bool full;

        pthread_mutex_lock(&b->lock);
        full = b->n >= COLLECTOR_BUS_QUEUE;
        if (!full)
                b->ring[(b->head + b->n++) % COLLECTOR_BUS_QUEUE] = *ev;
        pthread_mutex_unlock(&b->lock);
        if (full) {
                atomic_fetch_add(&b->dropped, 1);
                free(ev->reason);
        }
}

void collector_bus_push_exporter(CollectorBus *b, const ExporterKey *k, bool tcp,
                                 bool connected) {
        if (!collector_bus_connected(b))
                return;
        push(b, &(BusEvent) { .type = connected ? BUS_EVENT_EXPORTER_CONNECTED
                                                : BUS_EVENT_EXPORTER_DISCONNECTED,
                              .tcp = tcp, .key = *k });
}

void collector_bus_push_template(CollectorBus *b, const ExporterKey *k, uint16_t tid,
                                 bool learned) {
        if (!collector_bus_connected(b))
                return;
        push(b, &(BusEvent) { .type = learned ? BUS_EVENT_TEMPLATE_LEARNED
                                              : BUS_EVENT_TEMPLATE_WITHDRAWN,
                              .tid = tid, .key = *k });
}

void collector_bus_push_degraded(CollectorBus *b, const char *reason) {
        char *copy;

        if (!collector_bus_connected(b))
                return;
        copy = strdup(reason);
        if (!copy) {
                atomic_fetch_add(&b->dropped, 1);
                return;
        }
        push(b, &(BusEvent) { .type = BUS_EVENT_DEGRADED, .reason = copy });
}

void collector_bus_push_recovered(CollectorBus *b) {
        if (!collector_bus_connected(b))
                return;
        push(b, &(BusEvent) { .type = BUS_EVENT_RECOVERED });
}

static int emit(sd_bus *bus, const BusEvent *ev) {
        char addr[64];

        (void) flow_addr_format(ev->key.addr, ev->key.family, addr, sizeof(addr));
        switch (ev->type) {
        case BUS_EVENT_EXPORTER_CONNECTED:
        case BUS_EVENT_EXPORTER_DISCONNECTED:
                return sd_bus_emit_signal(bus, BUS_COLLECTOR_PATH, BUS_COLLECTOR_INTERFACE,
                                          ev->type == BUS_EVENT_EXPORTER_CONNECTED
                                                  ? "ExporterConnected"
                                                  : "ExporterDisconnected",
                                          "ss", addr, ev->tcp ? "tcp" : "udp");
        case BUS_EVENT_TEMPLATE_LEARNED:
        case BUS_EVENT_TEMPLATE_WITHDRAWN:
                return sd_bus_emit_signal(bus, BUS_COLLECTOR_PATH, BUS_COLLECTOR_INTERFACE,
                                          ev->type == BUS_EVENT_TEMPLATE_LEARNED
                                                  ? "TemplateLearned"
                                                  : "TemplateWithdrawn",
                                          "suq", addr, ev->key.odid, ev->tid);
        case BUS_EVENT_DEGRADED:
                return sd_bus_emit_signal(bus, BUS_COLLECTOR_PATH, BUS_COLLECTOR_INTERFACE,
                                          "Degraded", "s", ev->reason ? ev->reason : "");
        case BUS_EVENT_RECOVERED:
                return sd_bus_emit_signal(bus, BUS_COLLECTOR_PATH, BUS_COLLECTOR_INTERFACE,
                                          "Recovered", "");
        }
        return -EINVAL;
}

static void log_transitions(CollectorBus *b) {
        if (!b->ever_connected && !b->logged_unreachable) {
                EvBusStats st;
                ev_bus_get_stats(b->ev, &st);
                if (st.failures > 0) {
                        log_notice("D-Bus at %s not reachable yet, retrying in the background",
                                   ev_bus_address(b->ev));
                        b->logged_unreachable = true;
                }
        }
        if (!ev_bus_connected(b->ev) || b->logged_name)
                return;
        if (ev_bus_name_owned(b->ev)) {
                log_info("Acquired the bus name %s", BUS_COLLECTOR_NAME);
                b->logged_name = true;
        } else if (now_usec() - b->connected_usec > NAME_WARN_USEC) {
                log_warning("The bus name %s belongs to another process; asking again "
                            "periodically", BUS_COLLECTOR_NAME);
                b->logged_name = true;
        }
}

void collector_bus_flush(CollectorBus *b) {
        sd_bus *bus;
        size_t n;
        uint64_t now;

        if (!collector_bus_enabled(b))
                return;
        log_transitions(b);

        pthread_mutex_lock(&b->lock);
        n = b->n;
        for (size_t i = 0; i < n; i++)
                b->scratch[i] = b->ring[(b->head + i) % COLLECTOR_BUS_QUEUE];
        b->head = 0;
        b->n = 0;
        pthread_mutex_unlock(&b->lock);

        bus = ev_bus_get(b->ev);
        now = now_usec();
        for (size_t i = 0; i < n; i++) {
                /* Not connected (any more): nobody to tell, and nothing counted. */
                if (bus) {
                        if (collector_token_bucket_take(&b->bucket, now))
                                (void) emit(bus, &b->scratch[i]);
                        else
                                atomic_fetch_add(&b->dropped, 1);
                }
                free(b->scratch[i].reason);
        }
}

void collector_bus_state_changed(CollectorBus *b) {
        sd_bus *bus = b ? ev_bus_get(b->ev) : NULL;

        if (bus)
                (void) sd_bus_emit_properties_changed(bus, BUS_COLLECTOR_PATH,
                                                      BUS_COLLECTOR_INTERFACE, "Ready", "State",
                                                      NULL);
}
