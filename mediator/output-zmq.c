/* SPDX-License-Identifier: MIT */
/*
 * output-zmq.c - [pipeline][flow batch] messages on an XPUB socket (see output-zmq.h).
 *
 * Records collect in a batch buffer that is handed to ZeroMQ zero-copy when full or on
 * flush; a refused batch (EAGAIN: a subscriber at its high-water mark) keeps its buffer for
 * the next batch. ZeroMQ checks the high-water mark at the first frame of a message only,
 * so once the name frame is accepted the batch frame is too.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "output-zmq.h"

#define SUBSCRIPTION_BURST 64

struct OutputZmq {
        void *sock;
        char *endpoint;
        char *pipeline;
        size_t pipeline_len;
        void *batch;                    /* flow_batch_size(batch_records) bytes */
        uint32_t n, cap;
        uint32_t sender_id;
        uint64_t seq;
        uint64_t records, messages, bytes, dropped, errors;
        bool closed;
};

static void free_batch(void *data, void *hint) {
        free(data);
}

static void *batch_alloc(const OutputZmq *o) {
        /* malloc is 16-byte aligned: receivers of inproc messages see an aligned batch. */
        return malloc(flow_batch_size(o->cap));
}

/* Reads and discards subscription notices so they never pile up in the socket. */
static void drain_subscriptions(OutputZmq *o) {
        for (int i = 0; i < SUBSCRIPTION_BURST; i++) {
                uint8_t buf[256];
                if (zmq_recv(o->sock, buf, sizeof(buf), ZMQ_DONTWAIT) < 0)
                        break;
        }
}

static void send_batch(OutputZmq *o) {
        uint32_t n = o->n;
        zmq_msg_t m;
        size_t len;

        if (n == 0 || !o->batch)
                return;
        o->n = 0;
        len = flow_batch_finish(o->batch, n, o->sender_id, o->seq);
        if (zmq_send(o->sock, o->pipeline, o->pipeline_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
                if (errno != EAGAIN) {
                        o->errors++;
                        log_ratelimited(LOG_WARNING, "output-zmq",
                                        "ZeroMQ output %s: send failed: %s", o->endpoint,
                                        zmq_strerror(errno));
                }
                o->dropped += n;        /* the buffer is reused for the next batch */
                return;
        }
        if (zmq_msg_init_data(&m, o->batch, len, free_batch, NULL) < 0) {
                /* Cannot happen for a non-NULL buffer; finish the message anyway. */
                o->errors++;
                o->dropped += n;
                (void) zmq_send(o->sock, "", 0, ZMQ_DONTWAIT);
                return;
        }
        o->batch = NULL;                /* ZeroMQ's now: freed by free_batch() */
        if (zmq_msg_send(&m, o->sock, ZMQ_DONTWAIT) < 0) {
                o->errors++;
                o->dropped += n;
                zmq_msg_close(&m);
        } else {
                o->seq++;
                o->records += n;
                o->messages++;
                o->bytes += o->pipeline_len + len;
        }
        o->batch = batch_alloc(o);
}

int output_zmq_new(OutputZmq **ret, const OutputZmqParams *p, void *zctx, char **reterr) {
        OutputZmq *o;
        int one = 1, linger = 0, r;

        assert(ret);
        assert(p);
        assert(reterr);
        if (!zctx || !p->endpoint || p->batch_records == 0 ||
            p->batch_records > FLOW_BATCH_MAX_RECORDS || p->hwm <= 0)
                return -EINVAL;
        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->cap = p->batch_records;
        o->sender_id = p->sender_id;
        o->endpoint = strdup(p->endpoint);
        o->pipeline = strdup(p->pipeline ? p->pipeline : "");
        if (!o->endpoint || !o->pipeline) {
                r = -ENOMEM;
                goto fail;
        }
        o->pipeline_len = strlen(o->pipeline);
        o->batch = batch_alloc(o);
        if (!o->batch) {
                r = -ENOMEM;
                goto fail;
        }
        o->sock = zmq_socket(zctx, ZMQ_XPUB);
        if (!o->sock) {
                r = -errno;
                goto fail;
        }
        if (zmq_setsockopt(o->sock, ZMQ_SNDHWM, &p->hwm, sizeof(p->hwm)) < 0 ||
            zmq_setsockopt(o->sock, ZMQ_XPUB_NODROP, &one, sizeof(one)) < 0 ||
            zmq_setsockopt(o->sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0) {
                r = -errno;
                goto fail;
        }
        if ((p->bind ? zmq_bind(o->sock, p->endpoint) : zmq_connect(o->sock, p->endpoint)) < 0) {
                r = -errno;
                *reterr = config_errorf("endpoint: cannot %s %s: %s", p->bind ? "bind" : "connect",
                                        p->endpoint, zmq_strerror(-r));
                goto fail;
        }
        *ret = o;
        return 0;
fail:
        output_zmq_free(o);
        return r;
}

int output_zmq_write(OutputZmq *o, const FlowRecord *recs, size_t n) {
        assert(o);
        if (o->closed)
                return -ESHUTDOWN;
        while (n > 0) {
                uint32_t k;

                if (!o->batch) {
                        o->batch = batch_alloc(o);
                        if (!o->batch) {
                                o->dropped += n;
                                return -ENOMEM;
                        }
                }
                k = (uint32_t) MIN((size_t) (o->cap - o->n), n);
                memcpy(flow_batch_records(o->batch) + o->n, recs, (size_t) k * sizeof(*recs));
                o->n += k;
                recs += k;
                n -= k;
                if (o->n == o->cap)
                        send_batch(o);
        }
        return 0;
}

void output_zmq_flush(OutputZmq *o) {
        assert(o);
        if (o->closed)
                return;
        drain_subscriptions(o);
        send_batch(o);
}

uint64_t output_zmq_close(OutputZmq *o, uint64_t timeout_ms) {
        uint64_t before;
        int linger;

        assert(o);
        if (o->closed)
                return 0;
        before = o->dropped;
        drain_subscriptions(o);
        send_batch(o);
        /* Let ZeroMQ deliver what it queued within the timeout when the socket closes. */
        linger = (int) MIN(timeout_ms, (uint64_t) INT32_MAX);
        (void) zmq_setsockopt(o->sock, ZMQ_LINGER, &linger, sizeof(linger));
        (void) zmq_close(o->sock);
        o->sock = NULL;
        o->closed = true;
        return o->dropped - before;
}

OutputZmq *output_zmq_free(OutputZmq *o) {
        if (!o)
                return NULL;
        if (o->sock)
                (void) zmq_close(o->sock);
        free(o->batch);
        free(o->endpoint);
        free(o->pipeline);
        free(o);
        return NULL;
}

void output_zmq_get_stats(const OutputZmq *o, OutputStats *ret) {
        ret->records = o->records;
        ret->messages = o->messages;
        ret->bytes = o->bytes;
        ret->dropped = o->dropped;
        ret->errors = o->errors;
        ret->state = o->closed ? "idle" : "open";
}
