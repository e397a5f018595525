/* SPDX-License-Identifier: MIT */
/*
 * tmpl-store.h - where templates live beyond one transport session, so an exporter's data
 * decodes after it reconnects (to this or, with the Redis store, another replica).
 *
 * The store is an interface (ops table) so the in-process store here and the Redis-backed
 * one can be swapped by configuration. Every op may be called from any worker thread and
 * must never block on the network: implementations answer from memory and do their I/O
 * asynchronously. Keys are the exporter identity (address + observation domain) and the
 * template id; the source port is deliberately not part of the key.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipfix.h"

typedef struct ExporterKey {
        uint8_t addr[16];       /* IPv4-mapped for family 4 */
        uint8_t family;         /* 4 or 6 */
        uint32_t odid;
} ExporterKey;

/* FNV-1a over the exporter key and @extra (a template id, a port...), for hash tables. */
static inline uint32_t exporter_key_hash(const ExporterKey *k, uint16_t extra) {
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < 16; i++)
                h = (h ^ k->addr[i]) * 1099511628211ull;
        h = (h ^ k->odid) * 1099511628211ull;
        h = (h ^ extra) * 1099511628211ull;
        return (uint32_t) (h ^ (h >> 31));
}

static inline bool exporter_key_equal(const ExporterKey *a, const ExporterKey *b) {
        return a->family == b->family && a->odid == b->odid && memcmp(a->addr, b->addr, 16) == 0;
}

typedef struct TmplStore TmplStore;

typedef struct TmplStoreOps {
        /* 0 and a template the caller frees, or -ENOENT. */
        int (*lookup)(TmplStore *s, const ExporterKey *k, uint16_t tid, IpfixTemplate **ret);
        /* 1 when the stored definition changed (or is new), 0 when identical, -ENOBUFS when
         * the store is full. */
        int (*put)(TmplStore *s, const ExporterKey *k, const IpfixTemplate *t);
        /* Removes one template, or every template of the exporter when @tid is 0. */
        int (*withdraw)(TmplStore *s, const ExporterKey *k, uint16_t tid);
        void (*free)(TmplStore *s);
} TmplStoreOps;

typedef void (*TmplStoreChangeFn)(void *userdata, const ExporterKey *k, uint16_t tid);

struct TmplStore {
        const TmplStoreOps *ops;
        /* Told (from any thread) when a template changed or was withdrawn, by this process
         * or, for shared stores, by another replica; tid 0 means "all of the exporter". */
        TmplStoreChangeFn on_change;
        void *on_change_userdata;
};

static inline void tmpl_store_set_listener(TmplStore *s, TmplStoreChangeFn fn, void *userdata) {
        s->on_change = fn;
        s->on_change_userdata = userdata;
}

static inline void tmpl_store_notify(TmplStore *s, const ExporterKey *k, uint16_t tid) {
        if (s->on_change)
                s->on_change(s->on_change_userdata, k, tid);
}

/**
 * tmpl_store_new_memory() - the in-process store: a mutex-protected hash table holding at
 * most @max_templates templates over all exporters (single replica, or no Redis).
 * Return: 0 or -ENOMEM / -EINVAL.
 */
int tmpl_store_new_memory(TmplStore **ret, size_t max_templates);

/**
 * tmpl_store_memory_foreach() - calls @fn for every (exporter, template id) of an in-process
 * store, on a snapshot taken under its lock (so @fn may use the store).
 * Return: the number of entries visited, or -ENOMEM.
 */
int tmpl_store_memory_foreach(TmplStore *s, void (*fn)(void *userdata, const ExporterKey *k,
                                                       uint16_t tid), void *userdata);

static inline void tmpl_store_free(TmplStore *s) {
        if (s)
                s->ops->free(s);
}

/* Formats "addr/odid" into @buf (>= 64 bytes) for logs. */
const char *exporter_key_format(const ExporterKey *k, char *buf, size_t len);
