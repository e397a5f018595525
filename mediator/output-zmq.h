/* SPDX-License-Identifier: MIT */
/*
 * output-zmq.h - publishes FlowRecords on a ZeroMQ socket as two-frame messages:
 * [pipeline name][one batch in the common flow batch format (flow.h)]. Subscribers filter
 * on the pipeline name (a prefix match, so subscribe to "name" or to "" for everything).
 *
 * The socket is an XPUB with ZMQ_XPUB_NODROP: when a subscriber's queue is at ZMQ_SNDHWM the
 * send fails with EAGAIN instead of silently dropping inside ZeroMQ, and the batch's records
 * are counted as dropped (for every subscriber: a slow subscriber costs the others that
 * batch). Sends use ZMQ_DONTWAIT and never block. With no subscriber at all, batches are
 * counted as sent. Subscription notices are read and discarded on every flush.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "flow.h"
#include "output.h"

typedef struct OutputZmqParams {
        const char *endpoint;           /* "tcp://127.0.0.1:9401", "ipc://...", "inproc://..." */
        bool bind;                      /* bind (default) or connect */
        int hwm;                        /* ZMQ_SNDHWM in messages */
        uint32_t batch_records;         /* records per batch, <= FLOW_BATCH_MAX_RECORDS */
        uint32_t sender_id;             /* the batch header's collector_id field */
        const char *pipeline;           /* first frame */
} OutputZmqParams;

typedef struct OutputZmq OutputZmq;

/* Return: 0, -EINVAL, -ENOMEM, or -errno from ZeroMQ (-EADDRINUSE, -EPROTONOSUPPORT...). */
int output_zmq_new(OutputZmq **ret, const OutputZmqParams *p, void *zctx, char **reterr);
OutputZmq *output_zmq_free(OutputZmq *o);
int output_zmq_write(OutputZmq *o, const FlowRecord *recs, size_t n);
void output_zmq_flush(OutputZmq *o);
/* Return: records dropped at close. */
uint64_t output_zmq_close(OutputZmq *o, uint64_t timeout_ms);
void output_zmq_get_stats(const OutputZmq *o, OutputStats *ret);
