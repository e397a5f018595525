/* SPDX-License-Identifier: MIT */
/*
 * podset.h - the pods the API asks, as immutable reference-counted snapshots.
 *
 * Discovery (the pinger thread re-resolving a dns: spec every pods_refresh_s) publishes a
 * new ApiPodSet only when the list changed; the query workers and the stream thread compare
 * the directory's generation with the one they use before each job and switch when it
 * moved. A snapshot is never modified after publication except for its per-pod counters,
 * which are atomics; a pod that stays across a change keeps its counters.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scatter.h"

typedef struct ApiPodSet {
        atomic_uint refs;
        uint64_t generation;            /* 1 for the first set published */
        size_t n;
        ApiPod *pods;                   /* n, sorted as published */
        _Atomic uint64_t *timeouts;     /* per pod: queries it missed (timeout, not connected) */
} ApiPodSet;

typedef struct ApiPodDir ApiPodDir;

int api_pod_dir_new(ApiPodDir **ret);
ApiPodDir *api_pod_dir_free(ApiPodDir *d);

/**
 * api_pod_dir_publish() - makes @pods (copied) the current set when they differ from it
 * (names, endpoints, feed or http), carrying over the counters of pods that stay.
 * Thread-safe. Return: 1 published, 0 unchanged, -ENOMEM.
 */
int api_pod_dir_publish(ApiPodDir *d, const ApiPod *pods, size_t n);

/* The current set, referenced (never NULL: an empty set before the first publication). */
ApiPodSet *api_pod_dir_get(ApiPodDir *d);

/* The current set's generation (a cheap atomic read). */
uint64_t api_pod_dir_generation(ApiPodDir *d);

ApiPodSet *api_pod_set_ref(ApiPodSet *s);
ApiPodSet *api_pod_set_unref(ApiPodSet *s);     /* NULL-safe, returns NULL */
