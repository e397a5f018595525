/* SPDX-License-Identifier: MIT */
/*
 * ev-bus.c - EvBus: one sd-bus client connection on an sd-event loop that is retried until it
 * works and replaced when it goes away.
 *
 * Invariants:
 * - Nothing here blocks. sd_bus_start() only connect()s the unix socket (which answers at
 *   once); the SASL handshake and Hello() run on the loop. The synthetic
 *   org.freedesktop.DBus.Local.Connected signal (sd_bus_set_connected_signal()) says the
 *   connection is usable; org.freedesktop.DBus.Local.Disconnected says it is gone, both for a
 *   failed handshake and for a lost connection. Both matches are local: sd-bus installs no
 *   server-side match for them.
 * - A connection is never freed from inside its own dispatch: the Disconnected callback only
 *   arms the retry timer, and the timer callback drops the dead connection before it makes
 *   the next attempt.
 * - b->bus is set from the first attempt on; b->connected says whether the owner's
 *   on_connected() accepted it, and only then does ev_bus_get() hand it out.
 * - The well-known name is requested without REPLACE_EXISTING and without queueing: a second
 *   instance never takes the name from a running one. While the name is refused, the request
 *   is repeated every retry_max_ms (and after every reconnect).
 * - common/ is non-logging: the owner learns about transitions through its hooks and the
 *   accessors/stats.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-names.h"
#include "ev-bus.h"
#include "macro.h"

#define RETRY_MIN_MS_DEFAULT 100
#define RETRY_MAX_MS_DEFAULT 5000
#define TIMER_ACCURACY_USEC 1000ULL

struct EvBus {
        sd_event *event;
        char *address;                  /* NULL: the bus is off */
        char *name;
        uint64_t retry_min_usec;
        uint64_t retry_max_usec;
        int (*on_connected)(sd_bus *bus, void *userdata);
        void (*on_disconnected)(void *userdata);
        void *userdata;

        sd_bus *bus;                    /* the current attempt or connection */
        sd_bus_slot *slot_connected;
        sd_bus_slot *slot_disconnected;
        sd_bus_slot *slot_name;         /* RequestName in flight */
        sd_event_source *retry;         /* next connection attempt */
        sd_event_source *name_retry;    /* next RequestName while the name is refused */
        bool connected;
        bool dead;                      /* b->bus is done with; the retry timer drops it */
        bool name_owned;
        unsigned failures;              /* consecutive failed attempts: the backoff exponent */
        EvBusStats stats;
};

static void bus_drop(EvBus *b) {
        b->slot_name = sd_bus_slot_unref(b->slot_name);
        b->slot_connected = sd_bus_slot_unref(b->slot_connected);
        b->slot_disconnected = sd_bus_slot_unref(b->slot_disconnected);
        if (b->name_retry)
                (void) sd_event_source_set_enabled(b->name_retry, SD_EVENT_OFF);
        if (b->bus) {
                (void) sd_bus_detach_event(b->bus);
                b->bus = sd_bus_close_unref(b->bus);
        }
        b->connected = false;
        b->dead = false;
        b->name_owned = false;
}

static uint64_t backoff_usec(const EvBus *b) {
        uint64_t d = b->retry_min_usec;

        for (unsigned i = 0; i < b->failures && d < b->retry_max_usec; i++)
                d *= 2;
        return MIN(d, b->retry_max_usec);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvBus *, ev_bus_free);

static void schedule(EvBus *b, sd_event_source **src, uint64_t delay,
                     sd_event_time_handler_t handler) {
        int r;

        if (*src) {
                r = sd_event_source_set_time_relative(*src, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(*src, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time_relative(b->event, src, CLOCK_MONOTONIC, delay,
                                               TIMER_ACCURACY_USEC, handler, b);
                if (r >= 0)
                        (void) sd_event_source_set_description(*src, "ev-bus-retry");
        }
        /* Only out of memory gets here; nothing better to do than to stay idle. */
        (void) r;
}

static void schedule_retry(EvBus *b, bool failed) {
        if (failed) {
                b->stats.failures++;
                if (b->failures < 32)
                        b->failures++;
        }
        schedule(b, &b->retry, failed ? backoff_usec(b) : b->retry_min_usec, on_retry);
}

static int request_name(EvBus *b);

static int on_name_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        EvBus *b = userdata;

        if (b->connected && !b->name_owned && !b->slot_name)
                (void) request_name(b);
        return 0;
}

static int on_name_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EvBus *b = userdata;

        uint32_t ret = 0;

        b->slot_name = sd_bus_slot_unref(b->slot_name);
        /* The refusal is a regular reply: 3 = EXISTS (2 = IN_QUEUE does not happen without
         * the queueing flag); 1 = PRIMARY_OWNER, 4 = ALREADY_OWNER. */
        if (!sd_bus_message_is_method_error(m, NULL) &&
            sd_bus_message_read(m, "u", &ret) >= 0 && (ret == 1 || ret == 4)) {
                b->name_owned = true;
                return 0;
        }
        b->name_owned = false;
        if (b->connected)
                schedule(b, &b->name_retry, b->retry_max_usec, on_name_retry);
        return 0;
}

static int request_name(EvBus *b) {
        int r;

        if (!b->name)
                return 0;
        /* Flags 0: neither take the name from its owner nor queue for it. */
        r = sd_bus_request_name_async(b->bus, &b->slot_name, b->name, 0, on_name_reply, b);
        if (r < 0)
                schedule(b, &b->name_retry, b->retry_max_usec, on_name_retry);
        return r;
}

static int on_local_connected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EvBus *b = userdata;
        int r;

        if (b->connected || b->dead)
                return 0;
        b->connected = true;
        b->failures = 0;
        b->stats.connects++;
        if (b->on_connected) {
                r = b->on_connected(b->bus, b->userdata);
                if (r < 0) {
                        /* The owner could not set up: treat it as a failed attempt. The
                         * connection is closed from the retry timer, not from here. */
                        b->connected = false;
                        b->dead = true;
                        b->stats.connects--;
                        schedule_retry(b, true);
                        return 0;
                }
        }
        (void) request_name(b);
        return 0;
}

static int on_local_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EvBus *b = userdata;
        bool was_connected = b->connected;

        if (b->dead)
                return 0;
        b->dead = true;
        b->connected = false;
        b->name_owned = false;
        if (b->name_retry)
                (void) sd_event_source_set_enabled(b->name_retry, SD_EVENT_OFF);
        schedule_retry(b, !was_connected);
        if (was_connected) {
                b->stats.disconnects++;
                if (b->on_disconnected)
                        b->on_disconnected(b->userdata);
        }
        return 0;
}

static int bus_connect(EvBus *b) {
        int r;

        r = sd_bus_new(&b->bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(b->bus, b->address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(b->bus, true);
        if (r < 0)
                return r;
        r = sd_bus_set_connected_signal(b->bus, true);
        if (r < 0)
                return r;
        r = sd_bus_set_exit_on_disconnect(b->bus, false);
        if (r < 0)
                return r;
        /* At loop exit sd-bus would flush, which may wait for a stalled bus. */
        r = sd_bus_set_close_on_exit(b->bus, false);
        if (r < 0)
                return r;
        if (b->name)
                (void) sd_bus_set_description(b->bus, b->name);

        r = sd_bus_match_signal(b->bus, &b->slot_connected, NULL, "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Connected", on_local_connected, b);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(b->bus, &b->slot_disconnected, NULL,
                                "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                "Disconnected", on_local_disconnected, b);
        if (r < 0)
                return r;

        r = sd_bus_start(b->bus);
        if (r < 0)
                return r;
        return sd_bus_attach_event(b->bus, b->event, SD_EVENT_PRIORITY_NORMAL);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        EvBus *b = userdata;
        int r;

        bus_drop(b);
        r = bus_connect(b);
        if (r < 0) {
                bus_drop(b);
                schedule_retry(b, true);
        }
        return 0;
}

int ev_bus_new(EvBus **ret, sd_event *e, const EvBusConfig *cfg) {
        _cleanup_(ev_bus_freep) EvBus *b = NULL;
        const char *address;

        assert(ret);
        assert(e);
        assert(cfg);

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(e);
        b->retry_min_usec = (cfg->retry_min_ms ?: RETRY_MIN_MS_DEFAULT) * 1000ULL;
        b->retry_max_usec = (cfg->retry_max_ms ?: RETRY_MAX_MS_DEFAULT) * 1000ULL;
        if (b->retry_max_usec < b->retry_min_usec)
                b->retry_max_usec = b->retry_min_usec;
        b->on_connected = cfg->on_connected;
        b->on_disconnected = cfg->on_disconnected;
        b->userdata = cfg->userdata;

        address = cfg->address;
        if (!address || !*address)
                address = getenv(BUS_ADDRESS_ENV);
        if (address && *address) {
                b->address = strdup(address);
                if (!b->address)
                        return -ENOMEM;
        }
        if (cfg->name) {
                b->name = strdup(cfg->name);
                if (!b->name)
                        return -ENOMEM;
        }

        /* The first attempt runs from the loop, so the owner finishes its setup first. */
        if (b->address)
                schedule(b, &b->retry, 0, on_retry);

        *ret = TAKE_PTR(b);
        return 0;
}

EvBus *ev_bus_free(EvBus *b) {
        if (!b)
                return NULL;
        bus_drop(b);
        b->retry = sd_event_source_disable_unref(b->retry);
        b->name_retry = sd_event_source_disable_unref(b->name_retry);
        sd_event_unref(b->event);
        free(b->address);
        free(b->name);
        free(b);
        return NULL;
}

sd_bus *ev_bus_get(EvBus *b) {
        return b && b->connected ? b->bus : NULL;
}

bool ev_bus_enabled(const EvBus *b) {
        return b && b->address;
}

bool ev_bus_connected(const EvBus *b) {
        return b && b->connected;
}

bool ev_bus_name_owned(const EvBus *b) {
        return b && b->connected && b->name_owned;
}

const char *ev_bus_address(const EvBus *b) {
        return b ? b->address : NULL;
}

void ev_bus_get_stats(const EvBus *b, EvBusStats *ret) {
        assert(ret);
        if (!b) {
                *ret = (EvBusStats) {};
                return;
        }
        *ret = b->stats;
}
