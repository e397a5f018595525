/* SPDX-License-Identifier: MIT */
/*
 * tap.c - ipfixd-tap, a ZeroMQ PULL sink for flow batches (common/flow.h). It binds an
 * endpoint, validates every message with flow_batch_decode(), counts records, octets and
 * packets, optionally prints each record as a JSON line, and ends with one JSON summary on
 * stdout; with --progress it also reports the running count and rate on stderr at a fixed
 * period. Malformed messages are counted, never trusted. The receive path does no
 * per-record allocation: messages are received into one zmq_msg_t, records are read in
 * place (or from one aligned scratch buffer when ZeroMQ hands out unaligned data), and JSON
 * lines go into one large output buffer.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "flow.h"
#include "macro.h"

#define TAP_RCVHWM 1000
#define TAP_POLL_MS 100
#define TAP_DRAIN_MAX 256               /* messages per wakeup before checking deadlines */
#define TAP_OUT_SIZE (1u << 20)
#define TAP_JSON_MAX 1024u              /* upper bound of one flow_record_to_json() line */
#define TAP_BAD_LOG_EVERY 100u

typedef struct TapArgs {
        const char *endpoint;
        double timeout;                 /* seconds, 0 = none */
        double idle;                    /* seconds, 0 = none */
        uint64_t expect;                /* records, 0 = none */
        double progress;                /* seconds between progress lines, 0 = none */
        bool json;
} TapArgs;

typedef struct Tap {
        uint64_t records;
        uint64_t octets;
        uint64_t packets;
        uint64_t batches;
        uint64_t bad_batches;
        bool json;
        char *out;                      /* stdout buffer, TAP_OUT_SIZE octets */
        size_t out_len;
        bool out_failed;
        void *scratch;                  /* aligned copy of an unaligned message */
        uint64_t progress_ns;           /* monotonic time of the last progress line */
        uint64_t progress_records;      /* records at the last progress line */
} Tap;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
        stop_requested = 1;
}

static void help(FILE *f) {
        fprintf(f,
                "Usage: ipfixd-tap --bind ENDPOINT [OPTIONS]\n"
                "Binds a ZeroMQ PULL socket, receives flow batches and prints on exit\n"
                "{\"records\":N,\"octets\":X,\"packets\":Y,\"batches\":B,\"bad_batches\":E}\n"
                "\n"
                "  --bind ENDPOINT   e.g. tcp://127.0.0.1:5555 or ipc:///tmp/tap.sock (required)\n"
                "  --timeout S       stop S seconds after start (fractions allowed)\n"
                "  --expect N        stop once N records arrived; exit 2 if they did not\n"
                "  --idle S          stop after S seconds without a message, once one arrived\n"
                "  --json            print every record as one JSON line\n"
                "  --progress S      every S seconds print on stderr\n"
                "                    ipfixd-tap: records=N batches=B rate=R/s\n"
                "                    (totals since start, rate over the last S seconds)\n"
                "  --help            show this help\n");
}

static uint64_t now_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

static int parse_seconds(const char *s, double *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_args(int argc, char **argv, TapArgs *a) {
        enum {
                ARG_BIND = 0x100,
                ARG_TIMEOUT,
                ARG_EXPECT,
                ARG_JSON,
                ARG_IDLE,
                ARG_HELP,
                ARG_PROGRESS,
        };
        static const struct option options[] = {
                { "bind", required_argument, NULL, ARG_BIND },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "expect", required_argument, NULL, ARG_EXPECT },
                { "json", no_argument, NULL, ARG_JSON },
                { "idle", required_argument, NULL, ARG_IDLE },
                { "help", no_argument, NULL, ARG_HELP },
                { "progress", required_argument, NULL, ARG_PROGRESS },
                {}
        };
        unsigned long long v;
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                int r = 0;

                switch (c) {
                case ARG_BIND:
                        a->endpoint = optarg;
                        break;
                case ARG_TIMEOUT:
                        r = parse_seconds(optarg, &a->timeout);
                        break;
                case ARG_EXPECT:
                        errno = 0;
                        v = strtoull(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-')
                                r = -EINVAL;
                        a->expect = v;
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_IDLE:
                        r = parse_seconds(optarg, &a->idle);
                        break;
                case ARG_HELP:
                        help(stdout);
                        return 0;
                case ARG_PROGRESS:
                        r = parse_seconds(optarg, &a->progress);
                        break;
                default:
                        help(stderr);
                        return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "ipfixd-tap: invalid value for --%s: '%s'\n",
                                options[c - ARG_BIND].name, optarg);
                        return r;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "ipfixd-tap: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        if (!a->endpoint) {
                fprintf(stderr, "ipfixd-tap: --bind ENDPOINT is required\n");
                help(stderr);
                return -EINVAL;
        }
        return 1;
}

static void tap_flush(Tap *t) {
        size_t off = 0;

        while (off < t->out_len && !t->out_failed) {
                ssize_t k = write(STDOUT_FILENO, t->out + off, t->out_len - off);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "ipfixd-tap: writing to stdout failed: %s\n",
                                strerror(errno));
                        t->out_failed = true;
                        break;
                }
                off += (size_t) k;
        }
        t->out_len = 0;
}

static void tap_print_record(Tap *t, const FlowRecord *r) {
        int n;

        if (TAP_OUT_SIZE - t->out_len < TAP_JSON_MAX + 1)
                tap_flush(t);
        n = flow_record_to_json(r, t->out + t->out_len, TAP_OUT_SIZE - t->out_len - 1);
        if (n < 0)
                return;         /* cannot happen with TAP_JSON_MAX of room */
        t->out_len += (size_t) n;
        t->out[t->out_len++] = '\n';
}

static void tap_handle(Tap *t, const void *data, size_t len) {
        const FlowRecord *recs;
        FlowBatchHeader h;
        int n;

        /* ZeroMQ may return small messages pointing into its receive buffer at any offset;
         * the decoder needs the 8-byte alignment of a FlowRecord. */
        if (((uintptr_t) data & 7) != 0 && len <= flow_batch_size(FLOW_BATCH_MAX_RECORDS)) {
                memcpy(t->scratch, data, len);
                data = t->scratch;
        }

        n = flow_batch_decode(data, len, &h, &recs);
        if (n < 0) {
                if (t->bad_batches++ % TAP_BAD_LOG_EVERY == 0)
                        fprintf(stderr,
                                "ipfixd-tap: bad batch of %zu bytes: %s (%" PRIu64 " so far)\n",
                                len, strerror(-n), t->bad_batches);
                return;
        }

        t->batches++;
        t->records += (uint64_t) n;
        for (int i = 0; i < n; i++) {
                t->octets += recs[i].octets;
                t->packets += recs[i].packets;
        }
        if (t->json && !t->out_failed)
                for (int i = 0; i < n; i++)
                        tap_print_record(t, &recs[i]);
}

static void tap_summary(Tap *t) {
        int n;

        if (TAP_OUT_SIZE - t->out_len < 256)
                tap_flush(t);
        n = snprintf(t->out + t->out_len, TAP_OUT_SIZE - t->out_len,
                     "{\"records\":%" PRIu64 ",\"octets\":%" PRIu64 ",\"packets\":%" PRIu64
                     ",\"batches\":%" PRIu64 ",\"bad_batches\":%" PRIu64 "}\n",
                     t->records, t->octets, t->packets, t->batches, t->bad_batches);
        if (n > 0)
                t->out_len += (size_t) n;
        tap_flush(t);
}

/* One progress line on stderr: totals since start and the rate since the previous line. */
static void tap_progress(Tap *t, uint64_t now) {
        double secs = (double) (now - t->progress_ns) / 1e9;
        double rate = secs > 0 ? (double) (t->records - t->progress_records) / secs : 0;

        fprintf(stderr, "ipfixd-tap: records=%" PRIu64 " batches=%" PRIu64 " rate=%.0f/s\n",
                t->records, t->batches, rate);
        t->progress_ns = now;
        t->progress_records = t->records;
}

/* Milliseconds until @deadline, rounded up, capped at @cap; 0 when it has passed. */
static int ms_until(uint64_t deadline, uint64_t now, int cap) {
        uint64_t ms;

        if (deadline <= now)
                return 0;
        ms = (deadline - now + 999999) / 1000000;
        return ms < (uint64_t) cap ? (int) ms : cap;
}

/* Return: 0 when a stop condition was met, -errno on a ZeroMQ error. */
static int tap_loop(Tap *t, void *sock, const TapArgs *a) {
        uint64_t start = now_ns(), last = 0, timeout_at = 0, idle_ns = 0;
        uint64_t progress_every = 0, progress_at = 0;
        zmq_msg_t msg;
        int r = 0;

        if (a->timeout > 0)
                timeout_at = start + (uint64_t) (a->timeout * 1e9);
        if (a->idle > 0)
                idle_ns = (uint64_t) (a->idle * 1e9);
        if (a->progress > 0) {
                /* 1 ms .. 1 day: a tiny period must not turn the loop into a busy wait, and
                 * the conversion to nanoseconds must not overflow. */
                progress_every = (uint64_t) (MIN(MAX(a->progress, 1e-3), 86400.0) * 1e9);
                progress_at = start + progress_every;
                t->progress_ns = start;
        }

        if (zmq_msg_init(&msg) < 0)
                return -errno;

        while (!stop_requested) {
                zmq_pollitem_t item = { .socket = sock, .events = ZMQ_POLLIN };
                uint64_t now = now_ns();
                int wait = TAP_POLL_MS;

                if (a->expect > 0 && t->records >= a->expect)
                        break;
                if (timeout_at > 0) {
                        if (now >= timeout_at)
                                break;
                        wait = ms_until(timeout_at, now, wait);
                }
                if (idle_ns > 0 && last > 0) {
                        if (now >= last + idle_ns)
                                break;
                        wait = ms_until(last + idle_ns, now, wait);
                }
                if (progress_every > 0) {
                        if (now >= progress_at) {
                                tap_progress(t, now);
                                /* Keep the period; after a stall, restart it from now. */
                                progress_at += progress_every;
                                if (progress_at <= now)
                                        progress_at = now + progress_every;
                        }
                        wait = ms_until(progress_at, now, wait);
                }

                if (zmq_poll(&item, 1, wait) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (!(item.revents & ZMQ_POLLIN))
                        continue;

                for (unsigned i = 0; i < TAP_DRAIN_MAX; i++) {
                        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        break;
                                r = -errno;
                                goto out;
                        }
                        tap_handle(t, zmq_msg_data(&msg), zmq_msg_size(&msg));
                        if (a->expect > 0 && t->records >= a->expect)
                                break;
                }
                last = now_ns();
        }
out:
        (void) zmq_msg_close(&msg);
        return r;
}

static int tap_signals(void) {
        struct sigaction sa = { .sa_handler = on_signal };      /* no SA_RESTART: EINTR */
        struct sigaction ign = { .sa_handler = SIG_IGN };

        if (sigemptyset(&sa.sa_mask) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
            sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGPIPE, &ign, NULL) < 0)
                return -errno;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *out = NULL;
        _cleanup_free_ void *scratch = NULL;
        TapArgs a = {};
        Tap t = {};
        sigset_t mask, old;
        void *ctx = NULL, *sock = NULL;
        int hwm = TAP_RCVHWM, linger = 0, r, ret = EXIT_FAILURE;

        r = parse_args(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        out = malloc(TAP_OUT_SIZE);
        /* C11: the size must be a multiple of the alignment */
        scratch = aligned_alloc(64, (flow_batch_size(FLOW_BATCH_MAX_RECORDS) + 63) & ~(size_t) 63);
        if (!out || !scratch) {
                fprintf(stderr, "ipfixd-tap: out of memory\n");
                return EXIT_FAILURE;
        }
        t.out = out;
        t.scratch = scratch;
        t.json = a.json;

        if (tap_signals() < 0) {
                fprintf(stderr, "ipfixd-tap: installing signal handlers failed: %m\n");
                return EXIT_FAILURE;
        }
        /* ZeroMQ's I/O threads inherit the mask: keep SIGTERM/SIGINT for the main thread,
         * so they interrupt zmq_poll() instead of landing on a thread that ignores them. */
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigprocmask(SIG_BLOCK, &mask, &old);
        ctx = zmq_ctx_new();
        (void) sigprocmask(SIG_SETMASK, &old, NULL);
        if (!ctx) {
                fprintf(stderr, "ipfixd-tap: zmq_ctx_new failed: %s\n", zmq_strerror(errno));
                return EXIT_FAILURE;
        }

        sock = zmq_socket(ctx, ZMQ_PULL);
        if (!sock) {
                fprintf(stderr, "ipfixd-tap: zmq_socket failed: %s\n", zmq_strerror(errno));
                goto finish_ctx;
        }
        if (zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
            zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0) {
                fprintf(stderr, "ipfixd-tap: zmq_setsockopt failed: %s\n", zmq_strerror(errno));
                goto finish_sock;
        }
        if (zmq_bind(sock, a.endpoint) < 0) {
                fprintf(stderr, "ipfixd-tap: cannot bind %s: %s\n", a.endpoint,
                        zmq_strerror(errno));
                goto finish_sock;
        }
        fprintf(stderr, "ipfixd-tap: listening on %s\n", a.endpoint);

        r = tap_loop(&t, sock, &a);
        if (r < 0)
                fprintf(stderr, "ipfixd-tap: receiving failed: %s\n", zmq_strerror(-r));
        tap_summary(&t);
        if (r < 0 || t.out_failed)
                ret = EXIT_FAILURE;
        else if (a.expect > 0 && t.records < a.expect)
                ret = 2;
        else
                ret = EXIT_SUCCESS;

finish_sock:
        (void) zmq_close(sock);
finish_ctx:
        (void) zmq_ctx_term(ctx);
        return ret;
}
