/* SPDX-License-Identifier: MIT */
/*
 * query.c - ipfixd-query: sends query-protocol requests (README, "Query protocol") to a
 * mediator's ROUTER endpoint and prints the answers; with --repeat it measures latency
 * percentiles instead (used by bench/mediator-throughput).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "macro.h"

static void help(void) {
        printf("Usage: ipfixd-query [--endpoint E] [--timeout MS] [--repeat N] REQUEST...\n"
               "Sends each REQUEST (a JSON object, e.g. '{\"v\":1,\"op\":\"ping\"}') to a\n"
               "mediator's query endpoint (default tcp://127.0.0.1:9300) and prints each answer\n"
               "on one line. Exit 1 when an answer does not arrive within --timeout (default\n"
               "5000 ms).\n"
               "--repeat N sends the requests round-robin N times in total, one at a time, and\n"
               "prints {\"requests\":N,\"errors\":E,\"p50_ms\":..,\"p99_ms\":..,\"max_ms\":..}.\n");
}

static uint64_t mono_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Return: 0 with the answer in @msg, -ETIMEDOUT, or -errno. */
static int ask(void *s, const char *req, int timeout_ms, zmq_msg_t *msg) {
        zmq_pollitem_t it = { .socket = s, .events = ZMQ_POLLIN };

        if (zmq_send(s, req, strlen(req), 0) < 0)
                return -errno;
        if (zmq_poll(&it, 1, timeout_ms) <= 0)
                return -ETIMEDOUT;
        if (zmq_msg_recv(msg, s, 0) < 0)
                return -errno;
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "endpoint", required_argument, NULL, 'e' },
                { "timeout", required_argument, NULL, 't' },
                { "repeat", required_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *endpoint = "tcp://127.0.0.1:9300";
        int timeout_ms = 5000, opt, rc = 0, linger = 0;
        unsigned long repeat = 0;
        void *ctx, *s;

        while ((opt = getopt_long(argc, argv, "e:t:r:h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'e': endpoint = optarg; break;
                case 't': timeout_ms = atoi(optarg); break;
                case 'r': repeat = strtoul(optarg, NULL, 10); break;
                case 'h': help(); return 0;
                default: help(); return 2;
                }
        }
        if (optind >= argc || timeout_ms <= 0 || repeat > 10000000) {
                help();
                return 2;
        }
        ctx = zmq_ctx_new();
        s = zmq_socket(ctx, ZMQ_DEALER);
        (void) zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
        if (!s || zmq_connect(s, endpoint) < 0) {
                fprintf(stderr, "ipfixd-query: cannot connect to %s: %s\n", endpoint,
                        zmq_strerror(errno));
                return 1;
        }
        if (repeat == 0) {
                for (int i = optind; i < argc; i++) {
                        zmq_msg_t msg;
                        int r;
                        zmq_msg_init(&msg);
                        r = ask(s, argv[i], timeout_ms, &msg);
                        if (r < 0) {
                                fprintf(stderr, "ipfixd-query: no answer from %s: %s\n",
                                        endpoint, strerror(-r));
                                zmq_msg_close(&msg);
                                rc = 1;
                                break;
                        }
                        fwrite(zmq_msg_data(&msg), 1, zmq_msg_size(&msg), stdout);
                        putchar('\n');
                        zmq_msg_close(&msg);
                }
        } else {
                uint64_t *lat = calloc(repeat, sizeof(*lat));
                unsigned long errors = 0, done = 0;
                if (!lat)
                        return 1;
                for (unsigned long i = 0; i < repeat; i++) {
                        const char *req = argv[optind + (int) (i % (unsigned long) (argc - optind))];
                        uint64_t t0 = mono_us();
                        zmq_msg_t msg;
                        int r;
                        zmq_msg_init(&msg);
                        r = ask(s, req, timeout_ms, &msg);
                        if (r < 0) {
                                zmq_msg_close(&msg);
                                errors++;
                                rc = 1;
                                break;  /* a late answer would pair with the next request */
                        }
                        if (!memmem(zmq_msg_data(&msg), zmq_msg_size(&msg), "\"ok\":true", 9))
                                errors++;
                        lat[done++] = mono_us() - t0;
                        zmq_msg_close(&msg);
                }
                qsort(lat, done, sizeof(*lat), cmp_u64);
                printf("{\"requests\":%lu,\"errors\":%lu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
                       "\"max_ms\":%.2f}\n", done, errors,
                       done ? lat[done / 2] / 1000.0 : 0.0,
                       done ? lat[MIN(done - 1, done * 99 / 100)] / 1000.0 : 0.0,
                       done ? lat[done - 1] / 1000.0 : 0.0);
                free(lat);
        }
        zmq_close(s);
        zmq_ctx_term(ctx);
        return rc;
}
