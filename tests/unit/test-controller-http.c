/* SPDX-License-Identifier: MIT */
/*
 * test-controller-http.c - the controller's HTTP API over real HTTP on 127.0.0.1, against a
 * fake Controller defined here (the controller_* functions of controller.h; the test links
 * controller-http.c alone, not libcontroller). The server's sd-event loop runs in a second
 * thread; the test is a blocking client with plain sockets, so requests are byte-exact
 * (chunked bodies, oversized headers, partial uploads).
 *
 * Covered: every route and its status codes, the one error shape, HEAD, 404/405 with Allow,
 * bearer tokens (missing, wrong, other scheme, right), the body cap (declared and chunked),
 * malformed JSON with line/column, reload/drain answered from a timer while other requests
 * are served (suspend/resume), 409 while busy, error statuses from the controller, MHD's
 * 431/414 for oversized headers, keep-alive across a resumed request, the idle timeout,
 * shutdown with a request pending (orphaned operation), the route table, listen parsing,
 * IPv6, a port in use, the token file reader.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "controller-http.h"
#include "controller.h"
#include "ev-mhd.h"
#include "log.h"
#include "metrics.h"

/* ---- the fake controller ---- */

struct Controller {
        sd_event *event;
        atomic_bool ready;
        const char *reason;
        atomic_bool pod_fails;
        /* the next operation's outcome */
        int status;
        json_t *result;                 /* owned; passed to done */
        uint64_t delay_usec;
        bool never_complete;            /* done only when the test calls fake_complete() */
        /* the operation in flight */
        atomic_bool pending;
        ControllerDone done;
        void *userdata;
        sd_event_source *timer;
        /* what was asked */
        atomic_uint reloads, drains;
        char *last_configs;             /* json_dumps of the configs, or "null" */
};

static void fake_complete(Controller *c) {
        ControllerDone done = c->done;
        void *userdata = c->userdata;

        c->timer = sd_event_source_disable_unref(c->timer);
        c->done = NULL;
        c->userdata = NULL;
        atomic_store(&c->pending, false);
        if (done)
                done(userdata, c->status, c->result);
}

static int on_fake_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        fake_complete(userdata);
        return 0;
}

static int fake_start(Controller *c, ControllerDone done, void *userdata) {
        if (atomic_load(&c->pending))
                return -EBUSY;
        c->done = done;
        c->userdata = userdata;
        atomic_store(&c->pending, true);
        if (!c->never_complete)
                assert_int_equal(sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC,
                                                            c->delay_usec, 1, on_fake_timer, c),
                                 0);
        return 0;
}

bool controller_readiness(Controller *c, const char **ret_reason) {
        if (atomic_load(&c->ready))
                return true;
        *ret_reason = c->reason;
        return false;
}

json_t *controller_pod_json(Controller *c) {
        if (atomic_load(&c->pod_fails))
                return NULL;
        return json_pack("{s:s,s:{s:s},s:{s:s}}", "pod", "pod-0", "collector", "state",
                         "running", "mediator", "state", "running");
}

void controller_render_metrics(Controller *c, MetricsBuf *b) {
        metrics_header(b, "ipfixd_fake_records_total", "counter", "Fake records.");
        metrics_sample(b, "ipfixd_fake_records_total", NULL, 42);
}

int controller_reload(Controller *c, json_t *configs, ControllerDone done, void *userdata) {
        int r = fake_start(c, done, userdata);
        if (r < 0)
                return r;
        free(c->last_configs);
        c->last_configs = configs ? json_dumps(configs, JSON_COMPACT | JSON_SORT_KEYS)
                                  : strdup("null");
        atomic_fetch_add(&c->reloads, 1);
        return 0;
}

int controller_drain(Controller *c, ControllerDone done, void *userdata) {
        int r = fake_start(c, done, userdata);
        if (r < 0)
                return r;
        atomic_fetch_add(&c->drains, 1);
        return 0;
}

const char *controller_pod_name(Controller *c) {
        return "pod-0";
}

/* ---- the server in its own thread ---- */

typedef struct Fixture {
        sd_event *event;
        Controller ctl;
        ControllerHttp *http;
        uint16_t port;
        int stop_fd, complete_fd;
        sd_event_source *stop_source, *complete_source;
        pthread_t thread;
        bool running;
} Fixture;

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* Lets the test complete the fake's operation on the loop thread, as the controller would. */
static int on_complete(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Fixture *f = userdata;
        uint64_t v;

        (void) read(fd, &v, sizeof(v));
        fake_complete(&f->ctl);
        return 0;
}

static void complete_on_loop(Fixture *f) {
        uint64_t one = 1;
        assert_int_equal(write(f->complete_fd, &one, sizeof(one)), (ssize_t) sizeof(one));
}

static void *loop_thread(void *p) {
        Fixture *f = p;
        (void) sd_event_loop(f->event);
        return NULL;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        f->ctl.event = f->event;
        atomic_store(&f->ctl.ready, true);
        f->ctl.status = 200;
        f->ctl.result = json_pack("{s:b}", "changed", 1);
        f->ctl.delay_usec = 20 * 1000;
        f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        assert_true(f->stop_fd >= 0);
        assert_int_equal(sd_event_add_io(f->event, &f->stop_source, f->stop_fd, EPOLLIN, on_stop,
                                         f), 0);
        f->complete_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        assert_true(f->complete_fd >= 0);
        assert_int_equal(sd_event_add_io(f->event, &f->complete_source, f->complete_fd, EPOLLIN,
                                         on_complete, f), 0);
        *state = f;
        return 0;
}

static void start_with(Fixture *f, const ControllerHttpConfig *cfg) {
        ControllerHttpConfig c = *cfg;

        if (!c.listen)
                c.listen = "127.0.0.1:0";
        assert_int_equal(controller_http_new(&f->http, f->event, &f->ctl, &c), 0);
        f->port = controller_http_port(f->http);
        assert_true(f->port > 0);
        assert_int_equal(pthread_create(&f->thread, NULL, loop_thread, f), 0);
        f->running = true;
}

static void start(Fixture *f) {
        start_with(f, &(ControllerHttpConfig) { 0 });
}

static void stop_loop(Fixture *f) {
        uint64_t one = 1;

        if (!f->running)
                return;
        assert_int_equal(write(f->stop_fd, &one, sizeof(one)), (ssize_t) sizeof(one));
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        f->running = false;
}

static int teardown(void **state) {
        Fixture *f = *state;

        stop_loop(f);
        f->http = controller_http_free(f->http);
        /* An operation the controller still runs completes after the HTTP side is gone. */
        if (atomic_load(&f->ctl.pending))
                fake_complete(&f->ctl);
        json_decref(f->ctl.result);
        free(f->ctl.last_configs);
        sd_event_source_disable_unref(f->stop_source);
        sd_event_source_disable_unref(f->complete_source);
        (void) close(f->stop_fd);
        (void) close(f->complete_fd);
        sd_event_unref(f->event);
        free(f);
        return 0;
}

/* ---- a small HTTP client ---- */

typedef struct Resp {
        int status;                     /* 0: no response (connection closed) */
        char *head;                     /* status line and headers */
        char *body;
        size_t body_len;
} Resp;

static void resp_done(Resp *r) {
        free(r->head);
        free(r->body);
        *r = (Resp) { 0 };
}

static int connect_to(uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct timeval tv = { .tv_sec = 20 };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

/* Sends what it can; the server may close early (413), which is not an error here. */
static void send_all(int fd, const char *data, size_t len) {
        while (len > 0) {
                ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
                if (n <= 0)
                        return;
                data += n;
                len -= (size_t) n;
        }
}

static const char *header_value(const Resp *r, const char *name, size_t *ret_len) {
        size_t nlen = strlen(name);

        for (const char *p = r->head ? strstr(r->head, "\r\n") : NULL; p; p = strstr(p + 2, "\r\n")) {
                const char *line = p + 2;
                if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
                        const char *v = line + nlen + 1;
                        v += strspn(v, " ");
                        *ret_len = strcspn(v, "\r\n");
                        return v;
                }
        }
        return NULL;
}

/* Reads one response: headers, then Content-Length bytes of body (or to EOF without one).
 * @head_only: a HEAD response (no body whatever Content-Length says). */
static void read_response(int fd, Resp *ret, bool head_only) {
        char *buf = NULL;
        size_t len = 0, cap = 0, hlen = 0, want = SIZE_MAX;
        const char *end = NULL;

        *ret = (Resp) { 0 };
        for (;;) {
                ssize_t n;

                if (end && len - hlen >= want)
                        break;
                if (len + 4096 + 1 > cap) {
                        cap = (len + 4096 + 1) * 2;
                        buf = realloc(buf, cap);
                        assert_non_null(buf);
                }
                n = recv(fd, buf + len, cap - len - 1, 0);
                if (n <= 0)
                        break;          /* EOF, reset or timeout */
                len += (size_t) n;
                buf[len] = '\0';
                if (!end && (end = strstr(buf, "\r\n\r\n"))) {
                        size_t vlen;
                        const char *cl;
                        hlen = (size_t) (end - buf) + 4;
                        ret->head = strndup(buf, hlen - 2);
                        assert_non_null(ret->head);
                        cl = header_value(ret, "Content-Length", &vlen);
                        if (head_only)
                                want = 0;
                        else if (cl)
                                want = strtoull(cl, NULL, 10);
                }
        }
        if (end) {
                size_t blen = len - hlen < want ? len - hlen : want;
                assert_int_equal(sscanf(ret->head, "HTTP/1.%*d %d", &ret->status), 1);
                ret->body = malloc(blen + 1);
                assert_non_null(ret->body);
                memcpy(ret->body, buf + hlen, blen);
                ret->body[blen] = '\0';
                ret->body_len = blen;
        }
        free(buf);
}

static char *format_request(const char *method, const char *path, const char *headers,
                            const char *body, bool keep_alive) {
        char *req = NULL;
        char cl[64] = "";

        if (body)
                (void) snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
        assert_true(asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s\r\n%s", method,
                             path, keep_alive ? "" : "Connection: close\r\n",
                             headers ? headers : "", cl, body ? body : "") > 0);
        return req;
}

/* One request on a new connection. @headers: extra "Name: value\r\n" lines or NULL. */
static void http(Fixture *f, const char *method, const char *path, const char *headers,
                 const char *body, Resp *ret) {
        char *req = format_request(method, path, headers, body, false);
        int fd = connect_to(f->port);

        send_all(fd, req, strlen(req));
        read_response(fd, ret, strcmp(method, "HEAD") == 0);
        (void) close(fd);
        free(req);
}

static void http_raw(Fixture *f, const char *raw, size_t len, Resp *ret) {
        int fd = connect_to(f->port);

        send_all(fd, raw, len);
        read_response(fd, ret, false);
        (void) close(fd);
}

static json_t *body_json(const Resp *r) {
        json_error_t err;
        json_t *j = json_loadb(r->body ? r->body : "", r->body_len, 0, &err);
        if (!j)
                fail_msg("response body is not JSON (%s): '%s'", err.text, r->body ? r->body : "");
        return j;
}

static void assert_content_type(const Resp *r, const char *want) {
        size_t len;
        const char *v = header_value(r, "Content-Type", &len);

        assert_non_null(v);
        if (len != strlen(want) || strncmp(v, want, len) != 0)
                fail_msg("Content-Type '%.*s', expected '%s'", (int) len, v, want);
}

/* Asserts @r is @status with the error shape and code; returns its message (in @r's JSON). */
static void assert_error(const Resp *r, int status, const char *code, const char *msg_needle) {
        json_t *j, *e;
        const char *msg;

        if (r->status != status)
                fail_msg("status %d, expected %d; body '%s'", r->status, status,
                         r->body ? r->body : "");
        assert_content_type(r, "application/json");
        j = body_json(r);
        e = json_object_get(j, "error");
        assert_true(json_is_object(e));
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
        msg = json_string_value(json_object_get(e, "message"));
        assert_non_null(msg);
        if (msg_needle && !strstr(msg, msg_needle))
                fail_msg("message '%s' does not mention '%s'", msg, msg_needle);
        json_decref(j);
}

static void wait_pending(Controller *c, bool want) {
        for (int i = 0; i < 20000 && atomic_load(&c->pending) != want; i++)
                (void) usleep(1000);
        assert_true(atomic_load(&c->pending) == want);
}

/* ---- tests ---- */

static void test_healthz_readyz(void **state) {
        Fixture *f = *state;
        Resp r;
        json_t *j;

        start(f);
        http(f, "GET", "/healthz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_content_type(&r, "application/json");
        assert_string_equal(r.body, "{\"status\":\"ok\"}");
        resp_done(&r);

        http(f, "HEAD", "/healthz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 0);
        resp_done(&r);

        http(f, "GET", "/readyz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"ready\":true}");
        resp_done(&r);

        f->ctl.reason = "mediator: not on the bus";
        atomic_store(&f->ctl.ready, false);
        http(f, "GET", "/readyz", NULL, NULL, &r);
        assert_int_equal(r.status, 503);
        assert_content_type(&r, "application/json");
        j = body_json(&r);
        assert_true(json_is_false(json_object_get(j, "ready")));
        assert_string_equal(json_string_value(json_object_get(j, "reason")),
                            "mediator: not on the bus");
        json_decref(j);
        resp_done(&r);

        /* A query string does not change the route. */
        http(f, "GET", "/healthz?verbose=1", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        resp_done(&r);
}

static void test_pod(void **state) {
        Fixture *f = *state;
        Resp r;
        json_t *j;

        start(f);
        http(f, "GET", "/api/v1/pod", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_content_type(&r, "application/json");
        j = body_json(&r);
        assert_string_equal(json_string_value(json_object_get(j, "pod")), "pod-0");
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "mediator"),
                                                              "state")), "running");
        json_decref(j);
        resp_done(&r);

        atomic_store(&f->ctl.pod_fails, true);
        http(f, "GET", "/api/v1/pod", NULL, NULL, &r);
        assert_error(&r, 500, "internal", NULL);
        resp_done(&r);
}

static void test_metrics(void **state) {
        Fixture *f = *state;
        Resp r;

        start(f);
        http(f, "GET", "/nope", NULL, NULL, &r);
        resp_done(&r);
        http(f, "GET", "/metrics", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_content_type(&r, "text/plain; version=0.0.4; charset=utf-8");
        assert_non_null(strstr(r.body, "# TYPE ipfixd_fake_records_total counter\n"));
        assert_non_null(strstr(r.body, "\nipfixd_fake_records_total 42\n"));
        assert_non_null(strstr(r.body, "ipfixd_controller_http_responses_total{code=\"404\"} 1\n"));
        assert_non_null(strstr(r.body, "ipfixd_controller_http_responses_total{code=\"200\"} 0\n"));
        assert_non_null(strstr(r.body, "\nipfixd_controller_http_connections "));
        assert_non_null(strstr(r.body, "ipfixd_controller_http_pending_operations 0\n"));
        resp_done(&r);
}

static void test_not_found_and_method(void **state) {
        Fixture *f = *state;
        Resp r;
        size_t len;
        const char *allow;

        start(f);
        http(f, "GET", "/api/v1/nothing", NULL, NULL, &r);
        assert_error(&r, 404, "not_found", "/api/v1/nothing");
        resp_done(&r);
        http(f, "GET", "/healthz/", NULL, NULL, &r);
        assert_error(&r, 404, "not_found", NULL);
        resp_done(&r);

        http(f, "POST", "/healthz", NULL, "{}", &r);
        assert_error(&r, 405, "method_not_allowed", NULL);
        allow = header_value(&r, "Allow", &len);
        assert_non_null(allow);
        assert_int_equal(len, strlen("GET, HEAD"));
        assert_memory_equal(allow, "GET, HEAD", len);
        resp_done(&r);

        http(f, "GET", "/api/v1/reload", NULL, NULL, &r);
        assert_error(&r, 405, "method_not_allowed", NULL);
        allow = header_value(&r, "Allow", &len);
        assert_non_null(allow);
        assert_int_equal(len, 4);
        assert_memory_equal(allow, "POST", 4);
        resp_done(&r);

        http(f, "DELETE", "/metrics", NULL, NULL, &r);
        assert_error(&r, 405, "method_not_allowed", NULL);
        resp_done(&r);
        assert_int_equal(atomic_load(&f->ctl.reloads), 0);
}

/* Every row of the route table: served by its method, 405 with Allow for another, and the
 * POST ones refuse a missing token. */
static void test_route_table(void **state) {
        Fixture *f = *state;
        size_t n, len;
        const ControllerHttpRoute *routes = controller_http_routes(&n);
        Resp r;

        start_with(f, &(ControllerHttpConfig) { .token = "t0k3n" });
        assert_true(n >= 6);
        for (size_t i = 0; i < n; i++) {
                const char *other = strcmp(routes[i].method, "GET") == 0 ? "PUT" : "GET";
                const char *allow;

                assert_non_null(routes[i].handler);
                assert_true(strcmp(routes[i].method, "GET") == 0 ||
                            strcmp(routes[i].method, "POST") == 0);
                /* Every mutating route needs the token. */
                assert_true(routes[i].needs_auth == (strcmp(routes[i].method, "POST") == 0));

                http(f, routes[i].method, routes[i].path, "Authorization: Bearer t0k3n\r\n",
                     strcmp(routes[i].method, "POST") == 0 ? "" : NULL, &r);
                if (r.status == 404 || r.status == 405 || r.status == 401 || r.status == 0)
                        fail_msg("%s %s: %d", routes[i].method, routes[i].path, r.status);
                resp_done(&r);

                http(f, other, routes[i].path, NULL, NULL, &r);
                assert_int_equal(r.status, 405);
                allow = header_value(&r, "Allow", &len);
                assert_non_null(allow);
                assert_true(len >= strlen(routes[i].method));
                assert_memory_equal(allow, routes[i].method, strlen(routes[i].method));
                resp_done(&r);

                if (routes[i].needs_auth) {
                        http(f, routes[i].method, routes[i].path, NULL, "", &r);
                        assert_error(&r, 401, "unauthorized", NULL);
                        resp_done(&r);
                }
        }
}

static void test_auth(void **state) {
        Fixture *f = *state;
        Resp r;
        size_t len;
        const char *v;

        start_with(f, &(ControllerHttpConfig) { .token = "s3cret-token" });

        http(f, "POST", "/api/v1/reload", NULL, NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        v = header_value(&r, "WWW-Authenticate", &len);
        assert_non_null(v);
        assert_memory_equal(v, "Bearer", 6);
        resp_done(&r);

        http(f, "POST", "/api/v1/reload", "Authorization: Bearer s3cret-tokeX\r\n", NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        v = header_value(&r, "WWW-Authenticate", &len);
        assert_non_null(v);
        assert_non_null(memmem(v, len, "invalid_token", strlen("invalid_token")));
        resp_done(&r);

        http(f, "POST", "/api/v1/drain", "Authorization: Bearer s3cret\r\n", NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        resp_done(&r);
        http(f, "POST", "/api/v1/drain", "Authorization: Bearer s3cret-token-longer\r\n", NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        resp_done(&r);
        http(f, "POST", "/api/v1/drain", "Authorization: Basic czNjcmV0LXRva2Vu\r\n", NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        resp_done(&r);
        http(f, "POST", "/api/v1/drain", "Authorization: Bearer \r\n", NULL, &r);
        assert_error(&r, 401, "unauthorized", NULL);
        resp_done(&r);
        /* The body of a refused request is never read. */
        http(f, "POST", "/api/v1/reload", NULL, "{\"collector\":{}}", &r);
        assert_error(&r, 401, "unauthorized", NULL);
        resp_done(&r);
        assert_int_equal(atomic_load(&f->ctl.reloads), 0);
        assert_int_equal(atomic_load(&f->ctl.drains), 0);

        /* The scheme is case-insensitive. */
        http(f, "POST", "/api/v1/reload", "Authorization: bearer  s3cret-token\r\n", NULL, &r);
        assert_int_equal(r.status, 200);
        resp_done(&r);
        http(f, "POST", "/api/v1/drain", "Authorization: Bearer s3cret-token\r\n", NULL, &r);
        assert_int_equal(r.status, 200);
        resp_done(&r);
        assert_int_equal(atomic_load(&f->ctl.reloads), 1);
        assert_int_equal(atomic_load(&f->ctl.drains), 1);

        /* Reading needs no token. */
        http(f, "GET", "/api/v1/pod", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        resp_done(&r);

        {
                ControllerHttpStats st;
                controller_http_get_stats(f->http, &st);
                assert_int_equal(st.unauthorized, 7);
        }
}

static void test_no_token_configured(void **state) {
        Fixture *f = *state;
        Resp r;

        start(f);
        http(f, "POST", "/api/v1/drain", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_content_type(&r, "application/json");
        assert_string_equal(r.body, "{\"changed\":true}");
        resp_done(&r);
}

static void test_reload_bodies(void **state) {
        Fixture *f = *state;
        Resp r;

        start(f);
        http(f, "POST", "/api/v1/reload", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"changed\":true}");
        assert_string_equal(f->ctl.last_configs, "null");
        resp_done(&r);

        http(f, "POST", "/api/v1/reload", NULL, " \n", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(f->ctl.last_configs, "null");
        resp_done(&r);

        http(f, "POST", "/api/v1/reload", NULL, "{}", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(f->ctl.last_configs, "null");
        resp_done(&r);

        http(f, "POST", "/api/v1/reload", "Content-Type: application/json\r\n",
             "{\"collector\":{\"workers\":2},\"mediator\":{\"log_level\":\"debug\"}}", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(f->ctl.last_configs,
                            "{\"collector\":{\"workers\":2},\"mediator\":{\"log_level\":\"debug\"}}");
        resp_done(&r);

        http(f, "POST", "/api/v1/reload", NULL, "{\"mediator\":{}}", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(f->ctl.last_configs, "{\"mediator\":{}}");
        resp_done(&r);
        assert_int_equal(atomic_load(&f->ctl.reloads), 5);

        http(f, "POST", "/api/v1/reload", NULL, "{\n  \"collector\": {\"workers\": }\n}", &r);
        assert_error(&r, 400, "invalid_json", "line 2, column");
        resp_done(&r);
        http(f, "POST", "/api/v1/reload", NULL, "{\"collector\":{},\"collector\":{}}", &r);
        assert_error(&r, 400, "invalid_json", "duplicate");
        resp_done(&r);
        http(f, "POST", "/api/v1/reload", NULL, "[1,2]", &r);
        assert_error(&r, 400, "bad_request", "object");
        resp_done(&r);
        http(f, "POST", "/api/v1/reload", NULL, "\"collector\"", &r);
        assert_error(&r, 400, "invalid_json", NULL);
        resp_done(&r);
        http(f, "POST", "/api/v1/reload", NULL, "{\"exporter\":{}}", &r);
        assert_error(&r, 400, "bad_request", "exporter");
        resp_done(&r);
        http(f, "POST", "/api/v1/reload", NULL, "{\"collector\":[]}", &r);
        assert_error(&r, 400, "bad_request", "collector");
        resp_done(&r);
        http(f, "POST", "/api/v1/reload", NULL, "{\"collector\":{}} trailing", &r);
        assert_error(&r, 400, "invalid_json", NULL);
        resp_done(&r);
        assert_int_equal(atomic_load(&f->ctl.reloads), 5);
}

/* The reload is answered from the fake's timer while the loop serves other requests. */
static void test_reload_suspends(void **state) {
        Fixture *f = *state;
        char *req = format_request("POST", "/api/v1/reload", NULL, "{\"collector\":{}}", true);
        Resp r;
        int fd;

        f->ctl.never_complete = true;
        start(f);
        fd = connect_to(f->port);
        send_all(fd, req, strlen(req));
        wait_pending(&f->ctl, true);

        http(f, "GET", "/healthz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        resp_done(&r);
        http(f, "GET", "/metrics", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "ipfixd_controller_http_pending_operations 1\n"));
        resp_done(&r);
        /* Only one operation at a time. */
        http(f, "POST", "/api/v1/reload", NULL, NULL, &r);
        assert_error(&r, 409, "busy", NULL);
        resp_done(&r);
        http(f, "POST", "/api/v1/drain", NULL, NULL, &r);
        assert_error(&r, 409, "busy", NULL);
        resp_done(&r);
        assert_true(atomic_load(&f->ctl.pending));

        complete_on_loop(f);

        read_response(fd, &r, false);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"changed\":true}");
        resp_done(&r);

        /* The resumed connection stays usable (keep-alive). */
        send_all(fd, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
                 strlen("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"));
        read_response(fd, &r, false);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"ready\":true}");
        resp_done(&r);
        (void) close(fd);
        free(req);
}

/* The same through the fake's timer, with error statuses reported by the controller. */
static void test_operation_errors(void **state) {
        Fixture *f = *state;
        Resp r;
        json_t *j;

        f->ctl.delay_usec = 50 * 1000;
        start(f);

        json_decref(f->ctl.result);
        f->ctl.result = json_pack("{s:s,s:s}", "message", "collector: timed out", "component",
                                  "collector");
        f->ctl.status = 504;
        http(f, "POST", "/api/v1/drain", NULL, NULL, &r);
        assert_error(&r, 504, "timeout", "collector: timed out");
        j = body_json(&r);
        assert_string_equal(json_string_value(json_object_get(json_object_get(j, "detail"),
                                                              "component")), "collector");
        json_decref(j);
        resp_done(&r);

        json_decref(f->ctl.result);
        f->ctl.result = json_pack("{s:{s:s,s:s}}", "error", "code", "invalid_config", "message",
                                  "collector: workers: must be 1..64");
        f->ctl.status = 400;
        http(f, "POST", "/api/v1/reload", NULL, "{\"collector\":{\"workers\":0}}", &r);
        assert_error(&r, 400, "invalid_config", "workers");
        resp_done(&r);

        json_decref(f->ctl.result);
        f->ctl.result = NULL;
        f->ctl.status = 503;
        http(f, "POST", "/api/v1/reload", NULL, NULL, &r);
        assert_error(&r, 503, "unavailable", NULL);
        resp_done(&r);

        f->ctl.status = 200;
        http(f, "POST", "/api/v1/reload", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{}");
        resp_done(&r);
}

static void test_body_cap(void **state) {
        Fixture *f = *state;
        const char *head;
        char *big, *raw;
        Resp r;
        int fd;

        start_with(f, &(ControllerHttpConfig) { .max_body_bytes = 1024 });

        /* Exactly at the cap: accepted (a JSON object padded with blanks). */
        big = malloc(1025);
        assert_non_null(big);
        memset(big, ' ', 1024);
        memcpy(big, "{\"collector\":{}}", 16);
        big[1024] = '\0';
        http(f, "POST", "/api/v1/reload", NULL, big, &r);
        assert_int_equal(r.status, 200);
        resp_done(&r);

        /* One byte over, declared: 413 before the body is read. */
        big = realloc(big, 1026);
        assert_non_null(big);
        big[1024] = ' ';
        big[1025] = '\0';
        http(f, "POST", "/api/v1/reload", NULL, big, &r);
        assert_error(&r, 413, "payload_too_large", "1024");
        resp_done(&r);

        /* A huge declared length: answered at once, although no body byte was sent. */
        fd = connect_to(f->port);
        head = "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n";
        send_all(fd, head, strlen(head));
        read_response(fd, &r, false);
        assert_error(&r, 413, "payload_too_large", NULL);
        resp_done(&r);
        (void) close(fd);

        /* Expect: 100-continue: refused before the client sends anything. */
        fd = connect_to(f->port);
        head = "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
               "Expect: 100-continue\r\n\r\n";
        send_all(fd, head, strlen(head));
        read_response(fd, &r, false);
        assert_error(&r, 413, "payload_too_large", NULL);
        resp_done(&r);
        (void) close(fd);

        /* Chunked, over the cap but ending soon: discarded, then 413. */
        assert_true(asprintf(&raw, "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n400\r\n%s\r\n100\r\n%.256s\r\n0\r\n\r\n",
                             big + 1, big) > 0);
        http_raw(f, raw, strlen(raw), &r);
        assert_error(&r, 413, "payload_too_large", NULL);
        resp_done(&r);
        free(raw);

        /* Chunked and endless: the connection is closed. */
        {
                size_t n = 0, cap = 64 * 1024;
                raw = malloc(cap);
                assert_non_null(raw);
                n += (size_t) snprintf(raw, cap, "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\n"
                                                 "Transfer-Encoding: chunked\r\n\r\n");
                while (n + 1100 < cap)
                        n += (size_t) snprintf(raw + n, cap - n, "400\r\n%s\r\n", big + 1);
                http_raw(f, raw, n, &r);
                assert_int_equal(r.status, 0);
                resp_done(&r);
                free(raw);
        }
        free(big);

        {
                ControllerHttpStats st;
                controller_http_get_stats(f->http, &st);
                assert_int_equal(st.body_too_large, 5);
        }
        /* Still serving. */
        http(f, "GET", "/healthz", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        resp_done(&r);
}

static void test_oversized_headers(void **state) {
        Fixture *f = *state;
        char *pad = malloc(16 * 1024 + 1), *hdr = NULL, *path = NULL;
        Resp r;

        assert_non_null(pad);
        memset(pad, 'a', 16 * 1024);
        pad[16 * 1024] = '\0';
        start_with(f, &(ControllerHttpConfig) { .max_header_bytes = 8 * 1024 });

        assert_true(asprintf(&hdr, "X-Padding: %s\r\n", pad) > 0);
        http(f, "GET", "/healthz", hdr, NULL, &r);
        assert_int_equal(r.status, 431);        /* libmicrohttpd's own answer */
        resp_done(&r);

        assert_true(asprintf(&path, "/healthz?%s", pad) > 0);
        http(f, "GET", path, NULL, NULL, &r);
        assert_int_equal(r.status, 414);
        resp_done(&r);

        /* Below the limit is fine. */
        pad[2048] = '\0';
        free(hdr);
        assert_true(asprintf(&hdr, "X-Padding: %s\r\n", pad) > 0);
        http(f, "GET", "/healthz", hdr, NULL, &r);
        assert_int_equal(r.status, 200);
        resp_done(&r);
        free(hdr);
        free(path);
        free(pad);
}

static void test_keep_alive_and_timeout(void **state) {
        Fixture *f = *state;
        const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        struct timespec t0, t1;
        Resp r;
        char c;
        int fd;

        start_with(f, &(ControllerHttpConfig) { .timeout_s = 1 });
        fd = connect_to(f->port);
        for (int i = 0; i < 3; i++) {
                send_all(fd, req, strlen(req));
                read_response(fd, &r, false);
                if (r.status != 200)
                        fail_msg("request %d on the connection: %d", i, r.status);
                resp_done(&r);
        }
        /* Idle now: closed after about a second (the timer from MHD_get_timeout()). */
        (void) clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_true(recv(fd, &c, 1, 0) <= 0);
        (void) clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(t1.tv_sec - t0.tv_sec < 15);
        (void) close(fd);
}

/* Sends a keep-alive GET on @fd and expects 200: the connection is accepted and served. */
static void ping(int fd) {
        const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        Resp r;

        send_all(fd, req, strlen(req));
        read_response(fd, &r, false);
        assert_int_equal(r.status, 200);
        resp_done(&r);
}

/* Whether @fd has something to read (or EOF) within @ms. */
static bool readable_within(int fd, int ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, ms) > 0;
}

static void test_connection_limits(void **state) {
        Fixture *f = *state;
        const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        int a, b, c;
        Resp r;

        start_with(f, &(ControllerHttpConfig) { .max_connections = 2 });
        a = connect_to(f->port);
        b = connect_to(f->port);
        ping(a);
        ping(b);
        /* A third is not served while both are open (kept in the backlog or closed). */
        c = connect_to(f->port);
        send_all(c, req, strlen(req));
        if (readable_within(c, 300)) {
                read_response(c, &r, false);
                assert_int_equal(r.status, 0);
                resp_done(&r);
                (void) close(c);
                c = connect_to(f->port);
                send_all(c, req, strlen(req));
        }
        (void) close(a);
        read_response(c, &r, false);
        assert_int_equal(r.status, 200);
        resp_done(&r);
        (void) close(b);
        (void) close(c);
}

static void test_per_ip_limit(void **state) {
        Fixture *f = *state;
        Resp r;
        int a, b;

        start_with(f, &(ControllerHttpConfig) { .max_per_ip = 1 });
        a = connect_to(f->port);
        ping(a);
        b = connect_to(f->port);
        send_all(b, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                 strlen("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
        read_response(b, &r, false);
        assert_int_equal(r.status, 0);          /* closed at once */
        resp_done(&r);
        (void) close(b);
        ping(a);
        (void) close(a);
}

/* Shutting down with a reload in flight: the request is answered 503 and resumed (MHD cannot
 * stop with a suspended connection), and the controller's later done callback frees the
 * orphaned operation. */
static void test_shutdown_pending(void **state) {
        Fixture *f = *state;
        char *req = format_request("POST", "/api/v1/reload", NULL, "{\"mediator\":{}}", false);
        Resp r;
        int fd;

        f->ctl.never_complete = true;
        start(f);
        fd = connect_to(f->port);
        send_all(fd, req, strlen(req));
        wait_pending(&f->ctl, true);
        stop_loop(f);
        f->http = controller_http_free(f->http);
        read_response(fd, &r, false);
        assert_error(&r, 503, "shutting_down", "reload");
        resp_done(&r);
        (void) close(fd);
        free(req);
        /* teardown calls the pending done now, after the HTTP side is gone */
}

static void test_parse_listen(void **state) {
        struct sockaddr_storage ss;
        socklen_t len;
        const struct sockaddr_in *sa4 = (const struct sockaddr_in *) &ss;
        const struct sockaddr_in6 *sa6 = (const struct sockaddr_in6 *) &ss;
        static const char *const bad[] = {
                "", "8081", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:80x",
                ":", "::1:80", "[::1]80", "[::1]", "[]:80", "localhost:80", "[1.2.3.4]:80",
                "1.2.3:80", ":123456",
        };

        assert_int_equal(ev_mhd_parse_listen("127.0.0.1:8081", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(len, sizeof(struct sockaddr_in));
        assert_int_equal(ntohs(sa4->sin_port), 8081);
        assert_int_equal(ntohl(sa4->sin_addr.s_addr), INADDR_LOOPBACK);

        assert_int_equal(ev_mhd_parse_listen("[::1]:0", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_int_equal(len, sizeof(struct sockaddr_in6));
        assert_true(IN6_IS_ADDR_LOOPBACK(&sa6->sin6_addr));
        assert_int_equal(ntohs(sa6->sin6_port), 0);

        assert_int_equal(ev_mhd_parse_listen(":8081", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_true(IN6_IS_ADDR_UNSPECIFIED(&sa6->sin6_addr));
        assert_int_equal(ntohs(sa6->sin6_port), 8081);
        assert_int_equal(ev_mhd_parse_listen("*:65535", &ss, &len), 0);
        assert_int_equal(ntohs(sa6->sin6_port), 65535);
        assert_int_equal(ev_mhd_parse_listen("0.0.0.0:1", &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (ev_mhd_parse_listen(bad[i], &ss, &len) != -EINVAL)
                        fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ev_mhd_parse_listen(NULL, &ss, &len), -EINVAL);
}

static void test_bind(void **state) {
        Fixture *f = *state;
        ControllerHttp *other = NULL;
        char listen[32];
        int r;

        assert_int_equal(controller_http_new(&other, f->event, &f->ctl,
                                             &(ControllerHttpConfig) { .listen = "nonsense" }),
                         -EINVAL);
        assert_null(other);

        /* No loop thread here: every server is created and freed on this thread. */
        assert_int_equal(controller_http_new(&f->http, f->event, &f->ctl,
                                             &(ControllerHttpConfig) { .listen = "127.0.0.1:0" }),
                         0);
        (void) snprintf(listen, sizeof(listen), "127.0.0.1:%u", controller_http_port(f->http));
        assert_int_equal(controller_http_new(&other, f->event, &f->ctl,
                                             &(ControllerHttpConfig) { .listen = listen }),
                         -EADDRINUSE);
        assert_null(other);

        /* IPv6 loopback, where the host has it. */
        r = controller_http_new(&other, f->event, &f->ctl,
                                &(ControllerHttpConfig) { .listen = "[::1]:0" });
        if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL)
                return;
        assert_int_equal(r, 0);
        assert_true(controller_http_port(other) > 0);
        other = controller_http_free(other);
}

static void write_file(const char *path, const char *text) {
        FILE *fp = fopen(path, "we");
        assert_non_null(fp);
        assert_int_equal(fputs(text, fp) >= 0, 1);
        assert_int_equal(fclose(fp), 0);
}

static void test_read_token(void **state) {
        char dir[] = "/tmp/test-controller-http-XXXXXX", path[128];
        char *tok = NULL;

        assert_non_null(mkdtemp(dir));
        (void) snprintf(path, sizeof(path), "%s/token", dir);

        write_file(path, "  abc.DEF-123_~+/=\n\n");
        assert_int_equal(config_read_token(path, &tok), 0);
        assert_string_equal(tok, "abc.DEF-123_~+/=");
        free(tok);
        tok = NULL;

        write_file(path, " \t\r\n");
        assert_int_equal(config_read_token(path, &tok), -EINVAL);
        write_file(path, "");
        assert_int_equal(config_read_token(path, &tok), -EINVAL);
        write_file(path, "two words\n");
        assert_int_equal(config_read_token(path, &tok), -EINVAL);
        write_file(path, "ctl\x01x");
        assert_int_equal(config_read_token(path, &tok), -EINVAL);
        assert_null(tok);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(config_read_token(path, &tok), -ENOENT);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        if (getenv("IPFIXD_TEST_DEBUG"))
                log_set_max_level(LOG_DEBUG);
#define T(x) cmocka_unit_test_setup_teardown(x, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_healthz_readyz),
                T(test_pod),
                T(test_metrics),
                T(test_not_found_and_method),
                T(test_route_table),
                T(test_auth),
                T(test_no_token_configured),
                T(test_reload_bodies),
                T(test_reload_suspends),
                T(test_operation_errors),
                T(test_body_cap),
                T(test_oversized_headers),
                T(test_keep_alive_and_timeout),
                T(test_connection_limits),
                T(test_per_ip_limit),
                T(test_shutdown_pending),
                T(test_bind),
                cmocka_unit_test(test_parse_listen),
                cmocka_unit_test(test_read_token),
        };
        return cmocka_run_group_tests_name("controller-http", tests, NULL, NULL);
}
