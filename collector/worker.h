/* SPDX-License-Identifier: MIT */
/*
 * worker.h - one collector worker thread: its own sd-event loop, its own listening sockets
 * (SO_REUSEPORT), TCP connections, UDP session table, libfixbuf context and ZeroMQ PUSH
 * socket. Nothing libfixbuf-owned crosses threads. The only shared state is the template
 * store (thread-safe by contract), the connection count and the counter snapshot, which
 * the worker publishes under its lock once a second and when it stops.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "collector-config.h"
#include "counters.h"
#include "decoder.h"
#include "tmpl-store.h"

typedef struct Worker Worker;

/* An exporter session began (TCP: accepted, or its PROXY header read; UDP: first message
 * of a new (address, port, ODID) session) or ended (TCP: closed; UDP: expired). Called on
 * the worker's thread: must be cheap and thread-safe. */
typedef void (*WorkerExporterFn)(void *userdata, const ExporterKey *k, bool tcp, bool connected);

typedef struct WorkerShared {
        const CollectorConfig *cfg;     /* immutable while workers run */
        void *zctx;                     /* ZeroMQ context (thread-safe) */
        TmplStore *store;               /* may be NULL */
        atomic_uint open_connections;   /* over all workers, for max_connections */
        WorkerExporterFn on_exporter;   /* may be NULL */
        void *on_exporter_userdata;
} WorkerShared;

typedef struct ExporterSnapshot {
        ExporterKey key;
        uint16_t port;
        bool tcp;
        DecoderStats stats;
} ExporterSnapshot;

/* Per worker, sessions beyond this many (live plus ended, which are kept as per-exporter
 * totals) are summed in the totals but not listed in snapshots. */
#define WORKER_MAX_LISTED_EXPORTERS 1024

/**
 * worker_new() - creates the worker's loop, decoder context and output socket. Listening
 * sockets are added with worker_add_listener() before worker_start().
 * @shared: borrowed; must outlive the worker
 * Return: 0 or -errno.
 */
int worker_new(Worker **ret, unsigned index, WorkerShared *shared);
Worker *worker_free(Worker *w);

/* @fd is consumed (closed by the worker); @proxy: connections must start with a PROXY
 * protocol header. Return: 0 or -errno. */
int worker_add_listener(Worker *w, ListenerTransport transport, bool proxy, int fd);

/* Starts the thread. Return: 0 or -errno. */
int worker_start(Worker *w);

/* Asks the worker to drain (stop accepting, decode what was read, flush) and exit.
 * Safe to call from any thread. */
void worker_stop(Worker *w);

/* Whether the thread has finished its drain (and published its final counters); the
 * Worker itself stays valid until worker_free(). Any thread. */
bool worker_finished(Worker *w);

/* Waits for the thread. */
void worker_join(Worker *w);

/* Queues a template change (from the store, any thread) for the worker's decoders of that
 * exporter: they refresh the template and retry held data. tid 0: all of its templates. */
void worker_template_changed(Worker *w, const ExporterKey *k, uint16_t tid);

/* Counters of the worker's socket for listener @index (the order of worker_add_listener()
 * calls): TCP connections accepted (UDP: sessions created) and records decoded from what
 * arrived on it. Live values, any thread; 0 for an index the worker does not have. */
void worker_listener_stats(Worker *w, size_t index, uint64_t *ret_accepted,
                           uint64_t *ret_records);

/**
 * worker_snapshot() - copies the last published counters and exporter list.
 * @ret_exporters: heap array the caller frees (set to NULL when @ret_n is 0); pass NULL
 *                 (and @ret_n NULL) for the counters only
 * Return: 0 or -ENOMEM.
 */
int worker_snapshot(Worker *w, CollectorCounters *ret_counters, ExporterSnapshot **ret_exporters,
                    size_t *ret_n);
