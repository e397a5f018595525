/* SPDX-License-Identifier: MIT */
/*
 * ev-zmq.h - a ZeroMQ PUSH sender driven by sd-event, with a bounded queue of messages the
 * socket could not take yet (its high-water mark reached).
 *
 * Messages are zero-copy: the sender takes ownership of malloc'ed buffers and ZeroMQ frees
 * them after transmission. ZMQ_FD is only a hint: on wake-up the sender checks ZMQ_EVENTS
 * and sends until the socket refuses or the queue is empty, then calls on_drained so the
 * owner can resume reading its inputs (backpressure). Nothing here blocks except
 * ev_zmq_sender_drain(), which is for shutdown, outside the loop.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct EvZmqSender EvZmqSender;

/**
 * ev_zmq_bind() - a socket of @type in @zctx with ZMQ_LINGER 0 and both high-water marks
 * at @hwm (0: none), bound to @endpoint (inproc links between a loop and its threads).
 * Return: 0 (@ret set), -errno from ZeroMQ.
 */
int ev_zmq_bind(void *zctx, int type, const char *endpoint, int hwm, void **ret);

/**
 * ev_zmq_sender_new() - creates a PUSH socket in @zctx, connects it to @endpoint.
 * @hwm:         ZMQ_SNDHWM in messages
 * @max_pending: messages queued beyond the HWM before ev_zmq_sender_send() refuses
 * @on_drained:  called from the loop (a defer source, never from inside a send or flush
 *               call) when the queue emptied after having been non-empty
 * Return: 0, -EINVAL for a bad endpoint, -ENOMEM, or -errno from ZeroMQ.
 */
int ev_zmq_sender_new(EvZmqSender **ret, sd_event *e, void *zctx, const char *endpoint, int hwm,
                      size_t max_pending, void (*on_drained)(void *userdata), void *userdata);
EvZmqSender *ev_zmq_sender_free(EvZmqSender *s);

/**
 * ev_zmq_sender_send() - sends or queues @buf (consumed: freed by ZeroMQ or by the sender).
 * Return: 0 when sent, 1 when queued, -ENOBUFS when the queue is full (@buf is freed and the
 * caller counts the loss), -ENOMEM.
 */
int ev_zmq_sender_send(EvZmqSender *s, void *buf, size_t len);

/* Messages waiting in our queue (not counting what ZeroMQ buffers). */
size_t ev_zmq_sender_pending(const EvZmqSender *s);
size_t ev_zmq_sender_max_pending(const EvZmqSender *s);

/* Tries to send queued messages now. Return: messages still queued. */
size_t ev_zmq_sender_flush(EvZmqSender *s);

/**
 * ev_zmq_sender_wait() - blocking: flushes until at most @max_left messages are queued or
 * @timeout_ms passed. For shutdown paths only (the loop is not running them concurrently).
 * Return: messages still queued.
 */
size_t ev_zmq_sender_wait(EvZmqSender *s, size_t max_left, int timeout_ms);

/**
 * ev_zmq_sender_drain() - blocking: waits up to @timeout_ms for the queue to empty and sets
 * ZMQ_LINGER so ZeroMQ delivers what it buffered within that time. For shutdown only.
 * Return: messages that could not be handed over (and were dropped).
 */
size_t ev_zmq_sender_drain(EvZmqSender *s, int timeout_ms);
