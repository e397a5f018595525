/* SPDX-License-Identifier: MIT */
/*
 * api-test-server.h - ipfixd-api in a thread of the test process: its own sd-event loop,
 * api_new() with the given assignments, the bound port read back. Shared by the unit tests
 * that talk to the API over real HTTP (test-api-server.c, test-api-stream.c), with the
 * libcurl write and header callbacks they read answers with. Include after cmocka.h.
 */
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <systemd/sd-event.h>

#include "api-config.h"
#include "api.h"
#include "config.h"
#include "macro.h"

typedef struct TestApiServer {
        pthread_t thread;
        int stop[2];            /* closing the write end ends the loop */
        int ready[2];           /* the server writes its port (or 0) */
        ApiConfig cfg;
        unsigned port;
        bool running;
} TestApiServer;

static int test_api_on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *test_api_server_main(void *userdata) {
        TestApiServer *srv = userdata;
        sd_event *e = NULL;
        Api *api = NULL;
        unsigned port = 0;

        if (sd_event_new(&e) >= 0 && api_new(&api, e, &srv->cfg) >= 0 &&
            sd_event_add_io(e, NULL, srv->stop[0], EPOLLIN | EPOLLHUP, test_api_on_stop,
                            NULL) >= 0)
                port = api_port(api);
        if (write(srv->ready[1], &port, sizeof(port)) != sizeof(port))
                port = 0;
        if (port)
                (void) sd_event_loop(e);
        api_free(api);
        sd_event_unref(e);
        return NULL;
}

/* Starts the API with the defaults overridden by @sets ("key=value"); fails the test when
 * the configuration is refused or the server does not come up. */
static inline void test_api_server_start(TestApiServer *srv, char *const *sets, size_t n_sets) {
        char *err = NULL;

        assert_int_equal(api_config_parse(NULL, false, &srv->cfg, &err), 0);
        if (config_apply_assignments(api_config_keys, api_config_n_keys, sets, n_sets,
                                     &srv->cfg, &err) < 0 ||
            api_config_validate(&srv->cfg, &err) < 0)
                fail_msg("config: %s", err);
        assert_int_equal(pipe2(srv->stop, O_CLOEXEC), 0);
        assert_int_equal(pipe2(srv->ready, O_CLOEXEC), 0);
        assert_int_equal(pthread_create(&srv->thread, NULL, test_api_server_main, srv), 0);
        srv->running = true;
        assert_int_equal(read(srv->ready[0], &srv->port, sizeof(srv->port)),
                         (ssize_t) sizeof(srv->port));
        assert_true(srv->port > 0);
}

/* Ends the loop and api_free()s the server. Idempotent. */
static inline void test_api_server_stop(TestApiServer *srv) {
        if (!srv->running)
                return;
        srv->running = false;
        close(srv->stop[1]);
        assert_int_equal(pthread_join(srv->thread, NULL), 0);
        close(srv->stop[0]);
        close(srv->ready[0]);
        close(srv->ready[1]);
        api_config_done(&srv->cfg);
}

/* ---- answers read with libcurl: body, raw header lines, the body parsed as JSON ---- */

typedef struct Reply {
        long status;
        char *body;
        size_t len;
        char headers[4096];
        size_t hlen;
        json_t *json;
} Reply;

static inline size_t reply_on_body(char *p, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        char *b = realloc(r->body, r->len + size * n + 1);

        if (!b)
                return 0;
        memcpy(b + r->len, p, size * n);
        r->len += size * n;
        b[r->len] = '\0';
        r->body = b;
        return size * n;
}

static inline size_t reply_on_header(char *p, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        size_t k = MIN(size * n, sizeof(r->headers) - 1 - r->hlen);

        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = '\0';
        return size * n;
}

static inline void reply_done(Reply *r) {
        free(r->body);
        json_decref(r->json);
        *r = (Reply) {};
}
