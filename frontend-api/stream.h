/* SPDX-License-Identifier: MIT */
/*
 * stream.h - GET /api/v1/flows/stream: server-sent events from the pods' live feeds (each
 * pod's mediator zmq-pub output, README "Outputs"), filtered on the API's side.
 *
 * Threads. The loop thread owns every ApiStream (one per HTTP client) and its MHD
 * response; a stream is freed by MHD's free callback when its connection ends. One feed
 * thread owns the SUB sockets (one per pod with a feed endpoint) and a compiled filter per
 * stream, and is told of streams opening and closing over an inproc PUSH/PULL pair
 * (commands are never dropped: that socket has no high-water mark). It connects to the
 * feeds only while at least one stream is open, so idle pods publish to nobody.
 *
 * Data path. For every batch a pod publishes, the feed thread matches each record against
 * each stream's filter and sends each stream one message with the SSE text of its matching
 * records to the loop thread (inproc, high-water mark API_STREAM_QUEUE messages). The loop
 * thread appends it to that stream's buffer and resumes the connection, whose content reader
 * copies the buffer out and suspends the connection again once it is empty.
 *
 * Bounds and loss. Everything lost is counted per stream and announced to its client:
 * events that do not fit the stream's buffer (a slow client), messages the feed thread could
 * not queue for the loop, and records beyond API_STREAM_MAX_CHUNK bytes of events per batch
 * become an `event: dropped` with `{"dropped": N}` sent before the next events. A stream
 * that has had nothing to send for keepalive_ms gets a `: keepalive` comment, which also
 * finds clients that went away.
 *
 * Events: `event: hello` (data {"pods": N, "filter": "EXPR"}) first, then `event: flow`
 * (data: one flow_record_to_json() object), `event: dropped`, `: keepalive`.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>
#include <systemd/sd-event.h>

#include "ev-mhd.h"
#include "metrics.h"
#include "podset.h"

#define API_STREAM_QUEUE 256u                   /* feed thread -> loop messages in flight */
#define API_STREAM_MAX_CHUNK (1024u * 1024u)    /* event text per stream per batch */

typedef struct ApiStreamConfig {
        size_t max_streams;             /* 0: every open is -EBUSY */
        size_t buffer_bytes;            /* per stream */
        const char *pipeline;           /* the feed messages' pipeline name, "" for any */
        uint64_t keepalive_ms;
} ApiStreamConfig;

typedef struct ApiStreamHub ApiStreamHub;

/**
 * api_stream_hub_new() - starts the feed thread (with every signal blocked).
 * @e:    the loop the events arrive on (borrowed)
 * @zctx: ZeroMQ context (borrowed; shutting it down stops the thread)
 * @dir:  the pods (borrowed); the thread follows its changes
 * Return: 0, -ENOMEM, -errno.
 */
int api_stream_hub_new(ApiStreamHub **ret, sd_event *e, void *zctx, ApiPodDir *dir,
                       const ApiStreamConfig *cfg);

/**
 * api_stream_open() - a stream for @conn with the filter @expr ("" for every flow).
 * @ret: the response to queue with status 200 (text/event-stream); the stream lives until
 *       MHD frees it
 * Return: 0; -EBUSY (max_streams open); -EINVAL (@expr does not compile); -ENOMEM.
 */
int api_stream_open(ApiStreamHub *h, EvMhd *mhd, struct MHD_Connection *conn,
                    const char *expr, struct MHD_Response **ret);

/* Ends every stream (their readers return end-of-stream): call before stopping MHD. */
void api_stream_hub_shutdown(ApiStreamHub *h);

/* Stops the feed thread and frees @h. MHD must be stopped first (its streams freed).
 * NULL-safe; returns NULL. */
ApiStreamHub *api_stream_hub_free(ApiStreamHub *h);

size_t api_stream_count(const ApiStreamHub *h);

/* Appends ipfixd_api_stream_* metrics. */
void api_stream_render_metrics(ApiStreamHub *h, MetricsBuf *b);
