/* SPDX-License-Identifier: MIT */
/*
 * podset.c - reference-counted pod list snapshots (see podset.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "podset.h"

struct ApiPodDir {
        pthread_mutex_t lock;
        ApiPodSet *current;             /* owns one reference */
        _Atomic uint64_t generation;
};

static ApiPodSet *set_new(const ApiPod *pods, size_t n, uint64_t generation) {
        ApiPodSet *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        atomic_init(&s->refs, 1);
        s->generation = generation;
        s->n = n;
        if (n > 0) {
                s->pods = calloc(n, sizeof(*s->pods));
                s->timeouts = calloc(n, sizeof(*s->timeouts));
                if (!s->pods || !s->timeouts) {
                        free(s->pods);
                        free((void *) s->timeouts);
                        free(s);
                        return NULL;
                }
                memcpy(s->pods, pods, n * sizeof(*pods));
                for (size_t i = 0; i < n; i++)
                        atomic_init(&s->timeouts[i], 0);
        }
        return s;
}

ApiPodSet *api_pod_set_ref(ApiPodSet *s) {
        if (s)
                atomic_fetch_add(&s->refs, 1);
        return s;
}

ApiPodSet *api_pod_set_unref(ApiPodSet *s) {
        if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
                free(s->pods);
                free((void *) s->timeouts);
                free(s);
        }
        return NULL;
}

int api_pod_dir_new(ApiPodDir **ret) {
        ApiPodDir *d = calloc(1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        d->current = set_new(NULL, 0, 0);
        if (!d->current) {
                free(d);
                return -ENOMEM;
        }
        (void) pthread_mutex_init(&d->lock, NULL);
        atomic_init(&d->generation, 0);
        *ret = d;
        return 0;
}

ApiPodDir *api_pod_dir_free(ApiPodDir *d) {
        if (!d)
                return NULL;
        api_pod_set_unref(d->current);
        (void) pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
}

static bool same_pods(const ApiPodSet *s, const ApiPod *pods, size_t n) {
        if (s->n != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (strcmp(s->pods[i].name, pods[i].name) != 0 ||
                    strcmp(s->pods[i].endpoint, pods[i].endpoint) != 0 ||
                    strcmp(s->pods[i].feed, pods[i].feed) != 0 ||
                    strcmp(s->pods[i].http, pods[i].http) != 0)
                        return false;
        return true;
}

int api_pod_dir_publish(ApiPodDir *d, const ApiPod *pods, size_t n) {
        ApiPodSet *old, *s;

        (void) pthread_mutex_lock(&d->lock);
        old = d->current;
        if (old->generation > 0 && same_pods(old, pods, n)) {
                (void) pthread_mutex_unlock(&d->lock);
                return 0;
        }
        s = set_new(pods, n, old->generation + 1);
        if (!s) {
                (void) pthread_mutex_unlock(&d->lock);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < old->n; j++)
                        if (strcmp(old->pods[j].name, pods[i].name) == 0)
                                atomic_store(&s->timeouts[i], atomic_load(&old->timeouts[j]));
        d->current = s;
        atomic_store(&d->generation, s->generation);
        (void) pthread_mutex_unlock(&d->lock);
        api_pod_set_unref(old);
        return 1;
}

ApiPodSet *api_pod_dir_get(ApiPodDir *d) {
        ApiPodSet *s;

        (void) pthread_mutex_lock(&d->lock);
        s = api_pod_set_ref(d->current);
        (void) pthread_mutex_unlock(&d->lock);
        return s;
}

uint64_t api_pod_dir_generation(ApiPodDir *d) {
        return atomic_load(&d->generation);
}
