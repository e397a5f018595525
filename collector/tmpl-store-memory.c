/* SPDX-License-Identifier: MIT */
/*
 * tmpl-store-memory.c - the in-process template store. One chained hash table keyed by
 * (exporter address, ODID, template id) behind one mutex; it is touched only when a session
 * misses a template or a template changes, never per record. Bounded by max_templates.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "macro.h"
#include "tmpl-store.h"

#define N_BUCKETS 4096u

typedef struct Entry {
        struct Entry *next;
        ExporterKey key;
        IpfixTemplate *tmpl;
} Entry;

typedef struct MemStore {
        TmplStore base;
        pthread_mutex_t lock;
        size_t n, max;
        Entry *buckets[N_BUCKETS];
} MemStore;

static Entry **find(MemStore *m, const ExporterKey *k, uint16_t tid) {
        Entry **e = &m->buckets[exporter_key_hash(k, tid) % N_BUCKETS];
        for (; *e; e = &(*e)->next)
                if ((*e)->tmpl->id == tid && exporter_key_equal(&(*e)->key, k))
                        return e;
        return e;
}

static int mem_lookup(TmplStore *s, const ExporterKey *k, uint16_t tid, IpfixTemplate **ret) {
        MemStore *m = (MemStore *) s;
        IpfixTemplate *t = NULL;
        bool found;
        Entry **e;

        pthread_mutex_lock(&m->lock);
        e = find(m, k, tid);
        found = *e != NULL;
        if (found)
                t = ipfix_template_dup((*e)->tmpl);
        pthread_mutex_unlock(&m->lock);
        if (!found)
                return -ENOENT;
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

static int mem_put(TmplStore *s, const ExporterKey *k, const IpfixTemplate *t) {
        MemStore *m = (MemStore *) s;
        IpfixTemplate *copy;
        Entry **e, *n;
        int r;

        copy = ipfix_template_dup(t);
        if (!copy)
                return -ENOMEM;
        copy->flags = 0;
        pthread_mutex_lock(&m->lock);
        e = find(m, k, t->id);
        if (*e) {
                if (ipfix_template_equal((*e)->tmpl, copy)) {
                        r = 0;
                } else {
                        free((*e)->tmpl);
                        (*e)->tmpl = TAKE_PTR(copy);
                        r = 1;
                }
        } else if (m->n >= m->max) {
                r = -ENOBUFS;
        } else if (!(n = calloc(1, sizeof(*n)))) {
                r = -ENOMEM;
        } else {
                n->key = *k;
                n->tmpl = TAKE_PTR(copy);
                *e = n;
                m->n++;
                r = 1;
        }
        pthread_mutex_unlock(&m->lock);
        free(copy);
        if (r > 0)
                tmpl_store_notify(s, k, t->id);
        return r;
}

static void entry_free(Entry *e) {
        free(e->tmpl);
        free(e);
}

static int mem_withdraw(TmplStore *s, const ExporterKey *k, uint16_t tid) {
        MemStore *m = (MemStore *) s;
        int removed = 0;

        pthread_mutex_lock(&m->lock);
        if (tid != 0) {
                Entry **e = find(m, k, tid), *dead = *e;
                if (dead) {
                        *e = dead->next;
                        entry_free(dead);
                        m->n--;
                        removed = 1;
                }
        } else {
                /* Withdraw-all is rare (exporter restart): a full scan is acceptable. */
                for (size_t b = 0; b < N_BUCKETS; b++) {
                        Entry **e = &m->buckets[b];
                        while (*e) {
                                if (exporter_key_equal(&(*e)->key, k)) {
                                        Entry *dead = *e;
                                        *e = dead->next;
                                        entry_free(dead);
                                        m->n--;
                                        removed++;
                                } else
                                        e = &(*e)->next;
                        }
                }
        }
        pthread_mutex_unlock(&m->lock);
        if (removed > 0)
                tmpl_store_notify(s, k, tid);
        return removed;
}

static void mem_free(TmplStore *s) {
        MemStore *m = (MemStore *) s;
        for (size_t b = 0; b < N_BUCKETS; b++)
                while (m->buckets[b]) {
                        Entry *e = m->buckets[b];
                        m->buckets[b] = e->next;
                        entry_free(e);
                }
        pthread_mutex_destroy(&m->lock);
        free(m);
}

static const TmplStoreOps mem_ops = {
        .lookup = mem_lookup,
        .put = mem_put,
        .withdraw = mem_withdraw,
        .free = mem_free,
};

int tmpl_store_new_memory(TmplStore **ret, size_t max_templates) {
        MemStore *m;

        if (max_templates == 0)
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->base.ops = &mem_ops;
        m->max = max_templates;
        pthread_mutex_init(&m->lock, NULL);
        *ret = &m->base;
        return 0;
}

int tmpl_store_memory_foreach(TmplStore *s, void (*fn)(void *userdata, const ExporterKey *k,
                                                       uint16_t tid), void *userdata) {
        MemStore *m = (MemStore *) s;
        ExporterKey *keys;
        uint16_t *tids;
        size_t n = 0;

        pthread_mutex_lock(&m->lock);
        keys = malloc(MAX(m->n, 1) * sizeof(*keys));
        tids = malloc(MAX(m->n, 1) * sizeof(*tids));
        if (keys && tids)
                for (size_t b = 0; b < N_BUCKETS; b++)
                        for (Entry *e = m->buckets[b]; e; e = e->next) {
                                keys[n] = e->key;
                                tids[n++] = e->tmpl->id;
                        }
        pthread_mutex_unlock(&m->lock);
        if (!keys || !tids) {
                free(keys);
                free(tids);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                fn(userdata, &keys[i], tids[i]);
        free(keys);
        free(tids);
        return (int) n;
}

const char *exporter_key_format(const ExporterKey *k, char *buf, size_t len) {
        char a[64];
        (void) snprintf(buf, len, "%s/%u", flow_addr_format(k->addr, k->family, a, sizeof(a)),
                        k->odid);
        return buf;
}
