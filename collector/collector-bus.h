/* SPDX-License-Identifier: MIT */
/*
 * collector-bus.h - the collector's object on the pod's private D-Bus: org.ipfixd.Collector1
 * at /org/ipfixd/Collector under the name org.ipfixd.Collector (common/bus-names.h is the
 * contract). The connection is an EvBus: it may come up after the collector, go away and
 * come back; the object is registered again on every connect, and the data path never waits
 * for the bus.
 *
 * Signals start on any thread (workers report exporter sessions, the template store reports
 * changes): collector_bus_push_*() put them into a bounded queue (COLLECTOR_BUS_QUEUE
 * entries) under a mutex; the loop thread takes them out in collector_bus_flush() and emits
 * at most BUS_SIGNALS_PER_SECOND per second (a token bucket). A full queue and an empty
 * bucket both drop the signal and count it (signals_dropped). Nothing is queued while the
 * bus is not connected.
 *
 * Everything else runs on the collector's loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "tmpl-store.h"

typedef struct Collector Collector;
typedef struct CollectorBus CollectorBus;

#define COLLECTOR_BUS_QUEUE 1024u

/**
 * collector_bus_new() - starts connecting (in the background, retrying).
 * @c:       the collector the object publishes (borrowed; must outlive the CollectorBus)
 * @address: D-Bus address, or NULL for $IPFIXD_BUS_ADDRESS; no address at all: the bus is
 *           off and every other call is a no-op
 * Return: 0 or -ENOMEM.
 */
int collector_bus_new(CollectorBus **ret, Collector *c, sd_event *e, const char *address);
/* Disconnects and drops queued signals. NULL-safe. Pending Drain() calls belong to the
 * collector's drain waiters (collector_drain()); their replies then fail harmlessly. */
CollectorBus *collector_bus_free(CollectorBus *b);

bool collector_bus_enabled(const CollectorBus *b);
bool collector_bus_connected(const CollectorBus *b);
/* Signals dropped: queue full or over the rate. Any thread. */
uint64_t collector_bus_signals_dropped(const CollectorBus *b);

/* Any thread. */
void collector_bus_push_exporter(CollectorBus *b, const ExporterKey *k, bool tcp,
                                 bool connected);
void collector_bus_push_template(CollectorBus *b, const ExporterKey *k, uint16_t tid,
                                 bool learned);
/* Loop thread. @reason is copied. */
void collector_bus_push_degraded(CollectorBus *b, const char *reason);
void collector_bus_push_recovered(CollectorBus *b);

/* Loop thread: emits what the queue holds (rate limited) and logs connection changes that
 * the hooks cannot see (first failures, the well-known name). Call it every 100 ms or so. */
void collector_bus_flush(CollectorBus *b);

/* Loop thread: PropertiesChanged for Ready and State. */
void collector_bus_state_changed(CollectorBus *b);

/* A token bucket: up to @rate tokens, refilled at @rate per second. Exposed for tests. */
typedef struct CollectorTokenBucket {
        uint64_t rate;
        uint64_t micro_tokens;          /* tokens x 1e6 */
        uint64_t last_usec;
} CollectorTokenBucket;

void collector_token_bucket_init(CollectorTokenBucket *tb, uint64_t rate, uint64_t now_usec);
/* Takes one token. Return: true when there was one. */
bool collector_token_bucket_take(CollectorTokenBucket *tb, uint64_t now_usec);
