/* SPDX-License-Identifier: MIT */
/*
 * ev-zmq.c - PUSH sender with a ring of pending zmq_msg_t. A zmq_msg_t that failed to send
 * stays valid and owned by us (zmq_msg_send leaves it intact on failure), so it waits in the
 * ring without being copied and is retried in order.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "ev-zmq.h"
#include "macro.h"

struct EvZmqSender {
        void *sock;
        sd_event_source *io;
        sd_event_source *drained;       /* defer source: on_drained runs from the loop only */
        zmq_msg_t *ring;
        size_t cap, head, n;
        bool was_blocked;
        void (*on_drained)(void *userdata);
        void *userdata;
};

static void free_buf(void *data, void *hint) {
        free(data);
}

static bool can_send(EvZmqSender *s) {
        int ev = 0;
        size_t sz = sizeof(ev);
        if (zmq_getsockopt(s->sock, ZMQ_EVENTS, &ev, &sz) < 0)
                return false;
        return (ev & ZMQ_POLLOUT) != 0;
}

size_t ev_zmq_sender_flush(EvZmqSender *s) {
        while (s->n > 0) {
                zmq_msg_t *m = &s->ring[s->head];
                if (!can_send(s))
                        break;
                if (zmq_msg_send(m, s->sock, ZMQ_DONTWAIT) < 0)
                        break;          /* still ours; retried on the next wake-up */
                zmq_msg_close(m);
                s->head = (s->head + 1) % s->cap;
                s->n--;
        }
        if (s->io)
                (void) sd_event_source_set_enabled(s->io, s->n > 0 ? SD_EVENT_ON : SD_EVENT_OFF);
        if (s->n == 0 && s->was_blocked) {
                s->was_blocked = false;
                /* Never call back from inside send/flush: the owner may be in the middle of
                 * filling a batch, and resuming its inputs there would re-enter it. */
                if (s->drained)
                        (void) sd_event_source_set_enabled(s->drained, SD_EVENT_ONESHOT);
        }
        return s->n;
}

static int on_drained_defer(sd_event_source *es, void *userdata) {
        EvZmqSender *s = userdata;
        if (s->n == 0 && s->on_drained)
                s->on_drained(s->userdata);
        return 0;
}

static int on_zmq_fd(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        (void) ev_zmq_sender_flush(userdata);
        return 0;
}

int ev_zmq_sender_new(EvZmqSender **ret, sd_event *e, void *zctx, const char *endpoint, int hwm,
                      size_t max_pending, void (*on_drained)(void *userdata), void *userdata) {
        EvZmqSender *s;
        int zfd, r, linger = 0;
        size_t sz = sizeof(zfd);

        if (max_pending == 0)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cap = max_pending;
        s->on_drained = on_drained;
        s->userdata = userdata;
        s->ring = calloc(max_pending, sizeof(zmq_msg_t));
        s->sock = zmq_socket(zctx, ZMQ_PUSH);
        if (!s->ring || !s->sock) {
                r = s->sock ? -ENOMEM : -errno;
                goto fail;
        }
        if (zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0) {
                r = -errno;
                goto fail;
        }
        if (zmq_connect(s->sock, endpoint) < 0) {
                r = -errno;
                goto fail;
        }
        if (e) {
                if (zmq_getsockopt(s->sock, ZMQ_FD, &zfd, &sz) < 0) {
                        r = -errno;
                        goto fail;
                }
                r = sd_event_add_io(e, &s->io, zfd, EPOLLIN, on_zmq_fd, s);
                if (r < 0)
                        goto fail;
                (void) sd_event_source_set_enabled(s->io, SD_EVENT_OFF);
                r = sd_event_add_defer(e, &s->drained, on_drained_defer, s);
                if (r < 0)
                        goto fail;
                (void) sd_event_source_set_enabled(s->drained, SD_EVENT_OFF);
        }
        *ret = s;
        return 0;
fail:
        ev_zmq_sender_free(s);
        return r;
}

EvZmqSender *ev_zmq_sender_free(EvZmqSender *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->drained);
        for (; s->n > 0; s->n--) {
                zmq_msg_close(&s->ring[s->head]);
                s->head = (s->head + 1) % s->cap;
        }
        if (s->sock)
                zmq_close(s->sock);
        free(s->ring);
        free(s);
        return NULL;
}

int ev_zmq_sender_send(EvZmqSender *s, void *buf, size_t len) {
        zmq_msg_t *m;

        if (s->n > 0)
                (void) ev_zmq_sender_flush(s);
        if (s->n >= s->cap) {
                free(buf);
                return -ENOBUFS;
        }
        m = &s->ring[(s->head + s->n) % s->cap];
        if (zmq_msg_init_data(m, buf, len, free_buf, NULL) < 0) {
                free(buf);
                return -ENOMEM;
        }
        if (s->n == 0 && can_send(s) && zmq_msg_send(m, s->sock, ZMQ_DONTWAIT) >= 0) {
                zmq_msg_close(m);
                return 0;
        }
        s->n++;
        s->was_blocked = true;
        if (s->io)
                (void) sd_event_source_set_enabled(s->io, SD_EVENT_ON);
        return 1;
}

size_t ev_zmq_sender_pending(const EvZmqSender *s) {
        return s->n;
}

size_t ev_zmq_sender_max_pending(const EvZmqSender *s) {
        return s->cap;
}

size_t ev_zmq_sender_wait(EvZmqSender *s, size_t max_left, int timeout_ms) {
        struct timespec start, now;

        (void) clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                zmq_pollitem_t pi = { .socket = s->sock, .events = ZMQ_POLLOUT };
                long elapsed;
                size_t left = ev_zmq_sender_flush(s);

                (void) clock_gettime(CLOCK_MONOTONIC, &now);
                elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                if (left <= max_left || elapsed >= timeout_ms)
                        return left;
                (void) zmq_poll(&pi, 1, MIN(50, timeout_ms - elapsed));
        }
}

size_t ev_zmq_sender_drain(EvZmqSender *s, int timeout_ms) {
        struct timespec start, now;
        size_t left;

        (void) clock_gettime(CLOCK_MONOTONIC, &start);
        left = ev_zmq_sender_wait(s, 0, timeout_ms);
        {
                /* Give ZeroMQ the remaining time to deliver what it buffered. */
                (void) clock_gettime(CLOCK_MONOTONIC, &now);
                long elapsed = (now.tv_sec - start.tv_sec) * 1000 +
                               (now.tv_nsec - start.tv_nsec) / 1000000;
                int linger = (int) MAX(0, timeout_ms - elapsed);
                (void) zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger));
        }
        return left;
}

int ev_zmq_bind(void *zctx, int type, const char *endpoint, int hwm, void **ret) {
        void *s = zmq_socket(zctx, type);
        int zero = 0;

        if (!s)
                return -zmq_errno();
        if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
            zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 || zmq_bind(s, endpoint) < 0) {
                int r = -zmq_errno();

                (void) zmq_close(s);
                return r;
        }
        *ret = s;
        return 0;
}
