/* SPDX-License-Identifier: MIT */
/*
 * ev-bus.h - a D-Bus client connection on sd-event that keeps trying: the pod's private bus
 * (ipfixd-controller starts it) may come up after a component, go away and come back. While
 * it is away the component runs on (the data path never depends on the bus); when it is
 * (re)connected, on_connected() registers the component's objects again.
 *
 * Address: EvBusConfig.address, else $IPFIXD_BUS_ADDRESS, else the bus is off (ev_bus_new()
 * returns 0 and the EvBus stays idle). Connecting and authenticating never block the loop:
 * sd_bus_start() on a unix socket, then the handshake runs on the loop; a failure or a
 * disconnect schedules the next attempt with exponential backoff (retry_min_ms doubling up
 * to retry_max_ms). The well-known name is requested asynchronously after each connect.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

typedef struct EvBus EvBus;

typedef struct EvBusConfig {
        const char *address;            /* "unix:path=/run/ipfixd/bus"; NULL: $IPFIXD_BUS_ADDRESS */
        const char *name;               /* well-known name to own, e.g. "org.ipfixd.Collector"; NULL: none */
        uint64_t retry_min_ms;          /* 0: 100 */
        uint64_t retry_max_ms;          /* 0: 5000 */
        /* Called on the loop each time the connection is up (before the name is requested):
         * add object vtables and matches here. A negative return drops the connection and
         * retries later. */
        int (*on_connected)(sd_bus *bus, void *userdata);
        /* Called when an established connection is lost (not for failed attempts). */
        void (*on_disconnected)(void *userdata);
        void *userdata;
} EvBusConfig;

/**
 * ev_bus_new() - starts connecting (strings in @cfg are copied).
 * Return: 0 (also when no address is configured: the bus is then off), -ENOMEM.
 */
int ev_bus_new(EvBus **ret, sd_event *e, const EvBusConfig *cfg);
EvBus *ev_bus_free(EvBus *b);

/* The connection while it is up (and authenticated), else NULL. Borrowed. */
sd_bus *ev_bus_get(EvBus *b);
bool ev_bus_enabled(const EvBus *b);            /* an address is configured */
bool ev_bus_connected(const EvBus *b);
bool ev_bus_name_owned(const EvBus *b);         /* the well-known name was granted */
const char *ev_bus_address(const EvBus *b);     /* NULL when off */

typedef struct EvBusStats {
        uint64_t connects;              /* connections established */
        uint64_t disconnects;           /* established connections lost */
        uint64_t failures;              /* attempts that failed */
} EvBusStats;
void ev_bus_get_stats(const EvBus *b, EvBusStats *ret);
