/* SPDX-License-Identifier: MIT */
/*
 * mediator-bus.c - the org.ipfixd.Mediator1 object (vtable, method handlers, signals) on the
 * pod's private D-Bus, over an EvBus that reconnects by itself. It owns no mediator state:
 * properties and methods read and call mediator.h; the mediator calls the
 * mediator_bus_emit_*() functions when something happened.
 *
 * Invariants: nothing here blocks the loop (Drain() keeps its message and replies from the
 * mediator's drain timer; no synchronous bus call is ever made: every member is
 * SD_BUS_VTABLE_UNPRIVILEGED, because a privilege check would query the sender's
 * credentials with a blocking call - access to the pod's bus is the bus policy's and the
 * socket's business); a lost bus loses signals, never records; signals beyond
 * BUS_SIGNALS_PER_SECOND are counted, not queued.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "bus-names.h"
#include "ev-bus.h"
#include "log.h"
#include "macro.h"
#include "mediator-bus.h"
#include "mediator.h"
#include "metrics.h"

struct MediatorBus {
        Mediator *m;
        EvBus *bus;                     /* NULL: the bus is off */
        TokenBucket signals;
        uint64_t signals_dropped;
        bool last_ready;                /* Ready as last announced */
        sd_bus_message *drain_msg;      /* the Drain() call waiting for its reply */
};

void token_bucket_init(TokenBucket *tb, uint64_t rate, uint64_t now_usec) {
        assert(tb);
        *tb = (TokenBucket) {
                .rate = rate,
                .micro_tokens = rate * 1000000u,
                .last_usec = now_usec,
        };
}

bool token_bucket_take(TokenBucket *tb, uint64_t now_usec) {
        assert(tb);
        if (now_usec > tb->last_usec) {
                uint64_t cap = tb->rate * 1000000u, elapsed = now_usec - tb->last_usec;

                /* tokens/s x us = micro-tokens; a long pause just fills the bucket. */
                if (elapsed >= 1000000u || tb->micro_tokens + elapsed * tb->rate >= cap)
                        tb->micro_tokens = cap;
                else
                        tb->micro_tokens += elapsed * tb->rate;
                tb->last_usec = now_usec;
        }
        if (tb->micro_tokens < 1000000u)
                return false;
        tb->micro_tokens -= 1000000u;
        return true;
}

/* Properties. */

static int get_ready(sd_bus *bus, const char *path, const char *interface, const char *property,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        MediatorBus *b = userdata;
        return sd_bus_message_append(reply, "b", (int) mediator_is_ready(b->m));
}

static int get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        MediatorBus *b = userdata;
        return sd_bus_message_append(reply, "s",
                                     mediator_state_to_string(mediator_get_state(b->m)));
}

static int get_config_version(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        MediatorBus *b = userdata;
        return sd_bus_message_append(reply, "s", mediator_config_version(b->m));
}

static int get_started_ms(sd_bus *bus, const char *path, const char *interface,
                          const char *property, sd_bus_message *reply, void *userdata,
                          sd_bus_error *error) {
        MediatorBus *b = userdata;
        return sd_bus_message_append(reply, "t", mediator_started_ms(b->m));
}

/* One getter for every counter, found by the property's name (sd-bus would hand the getter
 * userdata + offset, which does not fit counters read through mediator_get_counters()). */
static const struct {
        const char *name;
        size_t off;
} counter_props[] = {
        { "batches", offsetof(MediatorCounters, batches) },
        { "records", offsetof(MediatorCounters, records) },
        { "bad_batches", offsetof(MediatorCounters, bad_batches) },
        { "unaligned_batches", offsetof(MediatorCounters, unaligned_batches) },
        { "reloads", offsetof(MediatorCounters, reloads) },
        { "reload_failures", offsetof(MediatorCounters, reload_failures) },
        { "signals_dropped", offsetof(MediatorCounters, signals_dropped) },
};

static int get_counter(sd_bus *bus, const char *path, const char *interface,
                       const char *property, sd_bus_message *reply, void *userdata,
                       sd_bus_error *error) {
        MediatorBus *b = userdata;
        MediatorCounters c;

        mediator_get_counters(b->m, &c);
        for (size_t i = 0; i < ELEMENTSOF(counter_props); i++)
                if (strcmp(counter_props[i].name, property) == 0)
                        return sd_bus_message_append(
                                reply, "t",
                                *(const uint64_t *) ((const uint8_t *) &c + counter_props[i].off));
        return -ENOENT;
}

/* Methods. */

/* Maps a failed Validate()/Reload() onto the contract's errors. */
static int config_error(sd_bus_error *error, int r, const char *msg) {
        if (r == -EBUSY)
                return sd_bus_error_set(error, BUS_ERROR_BUSY, msg ? msg : "busy");
        if (r == -ENOMEM || !msg)
                return sd_bus_error_set_errno(error, r);
        return sd_bus_error_set(error, BUS_ERROR_INVALID_CONFIG, msg);
}

static int method_get_metrics(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        MediatorBus *b = userdata;
        MetricsBuf mb = { 0 };
        int r;

        mediator_render_metrics(b->m, &mb);
        if (metrics_buf_failed(&mb) || !mb.data) {
                metrics_buf_done(&mb);
                return -ENOMEM;
        }
        r = sd_bus_reply_method_return(msg, "s", mb.data);
        metrics_buf_done(&mb);
        return r;
}

static int method_validate(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        MediatorBus *b = userdata;
        _cleanup_free_ char *err = NULL;
        const char *text;
        int r;

        r = sd_bus_message_read(msg, "s", &text);
        if (r < 0)
                return r;
        r = mediator_validate(b->m, text, &err);
        if (r < 0)
                return config_error(error, r, err);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        MediatorBus *b = userdata;
        _cleanup_free_ char *err = NULL, *changes = NULL;
        const char *text;
        int r;

        r = sd_bus_message_read(msg, "s", &text);
        if (r < 0)
                return r;
        /* The same path as SIGHUP (""), or as SIGHUP after writing the file (text). */
        if (*text)
                r = mediator_reload(b->m, text, &changes, &err);
        else
                r = mediator_reload_file(b->m, &changes, &err);
        if (r < 0)
                return config_error(error, r, err);
        return sd_bus_reply_method_return(msg, "s", changes ? changes : "[]");
}

static void on_drained(void *userdata, int r) {
        MediatorBus *b = userdata;
        sd_bus_message *msg = TAKE_PTR(b->drain_msg);
        int k;

        if (!msg)
                return;
        if (r < 0)
                k = sd_bus_reply_method_errnof(msg, r, "Drain did not finish: %m");
        else
                k = sd_bus_reply_method_return(msg, NULL);
        if (k < 0)      /* the caller's bus went away meanwhile: it will not hear back */
                log_debug_errno(k, "Cannot reply to Drain(): %m");
        sd_bus_message_unref(msg);
}

static int method_drain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        MediatorBus *b = userdata;
        int r;

        if (b->drain_msg)
                return sd_bus_error_set(error, BUS_ERROR_BUSY, "a drain is already running");
        r = mediator_drain(b->m, on_drained, b);
        if (r == -EBUSY)
                return sd_bus_error_set(error, BUS_ERROR_BUSY, "a drain is already running");
        if (r < 0)
                return r;
        b->drain_msg = sd_bus_message_ref(msg);
        return 1;       /* on_drained() replies */
}

static int method_list_pipelines(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        MediatorBus *b = userdata;
        _cleanup_free_ char *text = mediator_list_pipelines(b->m);

        if (!text)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", text);
}

#define COUNTER(n) SD_BUS_PROPERTY(n, "t", get_counter, 0, 0)

static const sd_bus_vtable mediator_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Ready", "b", get_ready, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ConfigVersion", "s", get_config_version, 0, 0),
        SD_BUS_PROPERTY("StartedMs", "t", get_started_ms, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        COUNTER("batches"),
        COUNTER("records"),
        COUNTER("bad_batches"),
        COUNTER("unaligned_batches"),
        COUNTER("reloads"),
        COUNTER("reload_failures"),
        COUNTER("signals_dropped"),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", metrics),
                                method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Validate", SD_BUS_ARGS("s", config), SD_BUS_NO_RESULT,
                                method_validate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_ARGS("s", config), SD_BUS_RESULT("s", changes),
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Drain", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_drain,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListPipelines", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", pipelines),
                                method_list_pipelines, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("OutputStateChanged",
                                SD_BUS_ARGS("s", pipeline, "s", type, "s", target, "s", state),
                                0),
        SD_BUS_SIGNAL_WITH_ARGS("Reloaded", SD_BUS_ARGS("s", changes), 0),
        SD_BUS_SIGNAL_WITH_ARGS("Degraded", SD_BUS_ARGS("s", reason), 0),
        SD_BUS_SIGNAL_WITH_ARGS("Recovered", SD_BUS_NO_ARGS, 0),
        SD_BUS_VTABLE_END,
};

/* Connection. */

static int on_connected(sd_bus *bus, void *userdata) {
        MediatorBus *b = userdata;
        int r;

        /* A floating slot: it goes with this connection, the next one gets its own. */
        r = sd_bus_add_object_vtable(bus, NULL, BUS_MEDIATOR_PATH, BUS_MEDIATOR_INTERFACE,
                                     mediator_vtable, b);
        if (r < 0)
                return log_warning_errno(r, "Cannot register %s on the bus: %m, retrying",
                                         BUS_MEDIATOR_PATH);
        log_info("Connected to the pod bus %s as %s", ev_bus_address(b->bus),
                 BUS_MEDIATOR_NAME);
        return 0;
}

static void on_disconnected(void *userdata) {
        MediatorBus *b = userdata;
        log_notice("Lost the pod bus %s, reconnecting; the data path runs on",
                   ev_bus_address(b->bus));
}

int mediator_bus_new(MediatorBus **ret, Mediator *m, sd_event *e, const char *address) {
        MediatorBus *b;
        int r;

        assert(ret);
        assert(m);
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->m = m;
        b->last_ready = mediator_is_ready(m);
        token_bucket_init(&b->signals, BUS_SIGNALS_PER_SECOND, now_usec());
        /* An empty bus_address turns the bus off even when $IPFIXD_BUS_ADDRESS is set. */
        if (!address || *address) {
                r = ev_bus_new(&b->bus, e, &(EvBusConfig) {
                        .address = address,
                        .name = BUS_MEDIATOR_NAME,
                        .on_connected = on_connected,
                        .on_disconnected = on_disconnected,
                        .userdata = b,
                });
                if (r < 0) {
                        free(b);
                        return r;
                }
                if (b->bus && !ev_bus_enabled(b->bus))
                        b->bus = ev_bus_free(b->bus);
        }
        if (b->bus)
                log_info("Pod bus %s: connecting in the background", ev_bus_address(b->bus));
        *ret = b;
        return 0;
}

MediatorBus *mediator_bus_free(MediatorBus *b) {
        if (!b)
                return NULL;
        if (b->drain_msg) {
                (void) sd_bus_reply_method_errorf(b->drain_msg, SD_BUS_ERROR_FAILED,
                                                  "The mediator is shutting down");
                b->drain_msg = sd_bus_message_unref(b->drain_msg);
        }
        ev_bus_free(b->bus);
        free(b);
        return NULL;
}

bool mediator_bus_enabled(const MediatorBus *b) {
        return b && b->bus;
}

bool mediator_bus_connected(const MediatorBus *b) {
        return b && b->bus && ev_bus_connected(b->bus);
}

uint64_t mediator_bus_signals_dropped(const MediatorBus *b) {
        return b ? b->signals_dropped : 0;
}

/* Signals. */

static void emit(MediatorBus *b, const char *member, const char *types, ...) {
        sd_bus *bus;
        va_list ap;
        int r;

        if (!b || !b->bus || !(bus = ev_bus_get(b->bus)))
                return;         /* nobody to tell: not a drop */
        if (!token_bucket_take(&b->signals, now_usec())) {
                b->signals_dropped++;
                return;
        }
        va_start(ap, types);
        r = sd_bus_emit_signalv(bus, BUS_MEDIATOR_PATH, BUS_MEDIATOR_INTERFACE, member, types,
                                ap);
        va_end(ap);
        if (r < 0)
                log_debug_errno(r, "Cannot emit %s: %m", member);
}

void mediator_bus_state_changed(MediatorBus *b) {
        sd_bus *bus;
        bool ready;
        int r;

        if (!b)
                return;
        ready = mediator_is_ready(b->m);
        if (!b->bus || !(bus = ev_bus_get(b->bus))) {
                b->last_ready = ready;
                return;
        }
        r = sd_bus_emit_properties_changed(bus, BUS_MEDIATOR_PATH, BUS_MEDIATOR_INTERFACE,
                                           "State", ready != b->last_ready ? "Ready" : NULL,
                                           NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit PropertiesChanged: %m");
        b->last_ready = ready;
}

void mediator_bus_emit_output_state(MediatorBus *b, const char *pipeline, const char *type,
                                    const char *target, const char *state) {
        emit(b, "OutputStateChanged", "ssss", pipeline, type, target, state);
}

void mediator_bus_emit_reloaded(MediatorBus *b, const char *changes) {
        emit(b, "Reloaded", "s", changes);
}

void mediator_bus_emit_degraded(MediatorBus *b, const char *reason) {
        emit(b, "Degraded", "s", reason);
}

void mediator_bus_emit_recovered(MediatorBus *b) {
        emit(b, "Recovered", NULL);
}
