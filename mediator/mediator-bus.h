/* SPDX-License-Identifier: MIT */
/*
 * mediator-bus.h - the mediator's object on the pod's private D-Bus: org.ipfixd.Mediator1 at
 * /org/ipfixd/Mediator under the name org.ipfixd.Mediator (common/bus-names.h is the
 * contract). The connection is an EvBus: it may come up after the mediator, go away and come
 * back; the object is registered again on every connect, and nothing on the data path ever
 * waits for the bus. The mediator tells this module what happened (state changes, output
 * state changes, reloads); this module turns that into signals, rate limited to
 * BUS_SIGNALS_PER_SECOND by a token bucket (the excess is counted, never queued).
 *
 * Everything runs on the mediator's loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct Mediator Mediator;
typedef struct MediatorBus MediatorBus;

/**
 * mediator_bus_new() - starts connecting (in the background, retrying).
 * @m:       the mediator the object publishes (borrowed; must outlive the MediatorBus)
 * @address: D-Bus address, or NULL for $IPFIXD_BUS_ADDRESS; no address at all: the bus is
 *           off and every other call is a no-op
 * Return: 0 or -ENOMEM.
 */
int mediator_bus_new(MediatorBus **ret, Mediator *m, sd_event *e, const char *address);
/* Cancels a pending Drain() call (its caller gets an error) and disconnects. NULL-safe. */
MediatorBus *mediator_bus_free(MediatorBus *b);

bool mediator_bus_enabled(const MediatorBus *b);
bool mediator_bus_connected(const MediatorBus *b);
/* Signals not sent because the token bucket was empty. */
uint64_t mediator_bus_signals_dropped(const MediatorBus *b);

/* PropertiesChanged for Ready and State (the caller checked that either changed). */
void mediator_bus_state_changed(MediatorBus *b);
void mediator_bus_emit_output_state(MediatorBus *b, const char *pipeline, const char *type,
                                    const char *target, const char *state);
void mediator_bus_emit_reloaded(MediatorBus *b, const char *changes);
void mediator_bus_emit_degraded(MediatorBus *b, const char *reason);
void mediator_bus_emit_recovered(MediatorBus *b);

/*
 * A token bucket: up to @rate tokens, refilled at @rate per second (pure: no clock of its
 * own, so a test can drive it).
 */
typedef struct TokenBucket {
        uint64_t rate;                  /* tokens per second, also the burst */
        uint64_t micro_tokens;          /* tokens x 1e6 */
        uint64_t last_usec;
} TokenBucket;

void token_bucket_init(TokenBucket *tb, uint64_t rate, uint64_t now_usec);
/* Takes one token. Return: true when there was one. */
bool token_bucket_take(TokenBucket *tb, uint64_t now_usec);
