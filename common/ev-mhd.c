/* SPDX-License-Identifier: MIT */
/*
 * ev-mhd.c - libmicrohttpd in external epoll mode on sd-event. Owns the listening socket
 * until MHD_start_daemon() takes it, the daemon, and three event sources: the io source on
 * MHD's epoll fd, the timer re-armed from MHD_get_timeout() after every MHD_run(), and the
 * defer source that re-runs MHD after a connection was resumed. Invariant: MHD_run() is
 * only ever called from those three callbacks, so it never re-enters itself.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>
#include <systemd/sd-event.h>

#include "ev-mhd.h"
#include "macro.h"

#define EV_MHD_MAX_CONNECTIONS_DEFAULT 64u
#define EV_MHD_TIMEOUT_S_DEFAULT 30u
#define EV_MHD_MEMORY_LIMIT_DEFAULT (32u * 1024u)
#define EV_MHD_MEMORY_LIMIT_MIN (4u * 1024u)
#define EV_MHD_BACKLOG_DEFAULT 128u
/* MHD_get_timeout() may report anything up to the idle timeout; cap what we hand sd-event so
 * "now + timeout" cannot overflow. */
#define EV_MHD_FLUSH_RUNS 2
#define EV_MHD_TIMER_MAX_USEC (3600ull * 1000000ull)

struct EvMhd {
        struct MHD_Daemon *daemon;
        sd_event_source *io;            /* MHD's epoll fd, EPOLLIN */
        sd_event_source *timer;         /* MHD_get_timeout() */
        sd_event_source *kick;          /* defer: MHD_run() after a resume */
        uint16_t port;
};

static int parse_port(const char *s, uint16_t *ret) {
        unsigned long v = 0;

        if (!*s || strlen(s) > 5)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long) (*p - '0');
        }
        if (v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int ev_mhd_parse_listen(const char *listen, struct sockaddr_storage *ret_addr,
                        socklen_t *ret_len) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *port_str, *colon;
        struct sockaddr_storage ss = { 0 };
        socklen_t len;
        uint16_t port;
        size_t hlen;
        bool bracketed = false;

        assert(ret_addr);
        assert(ret_len);
        if (!listen)
                return -EINVAL;

        if (listen[0] == '[') {
                const char *close = strchr(listen, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                hlen = (size_t) (close - listen - 1);
                if (hlen == 0 || hlen >= sizeof(host))
                        return -EINVAL;
                memcpy(host, listen + 1, hlen);
                port_str = close + 2;
                bracketed = true;
        } else {
                colon = strrchr(listen, ':');
                if (!colon)
                        return -EINVAL;
                hlen = (size_t) (colon - listen);
                if (hlen >= sizeof(host))
                        return -EINVAL;
                memcpy(host, listen, hlen);
                port_str = colon + 1;
        }
        host[hlen] = '\0';
        if (parse_port(port_str, &port) < 0)
                return -EINVAL;

        if (!bracketed && (hlen == 0 || strcmp(host, "*") == 0)) {
                struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *) &ss;
                sa6->sin6_family = AF_INET6;
                sa6->sin6_addr = in6addr_any;
                sa6->sin6_port = htons(port);
                len = sizeof(*sa6);
        } else if (bracketed) {
                struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *) &ss;
                if (inet_pton(AF_INET6, host, &sa6->sin6_addr) != 1)
                        return -EINVAL;
                sa6->sin6_family = AF_INET6;
                sa6->sin6_port = htons(port);
                len = sizeof(*sa6);
        } else {
                /* An unbracketed IPv6 address is ambiguous ("::1:80"), so only IPv4 here. */
                struct sockaddr_in *sa4 = (struct sockaddr_in *) &ss;
                if (inet_pton(AF_INET, host, &sa4->sin_addr) != 1)
                        return -EINVAL;
                sa4->sin_family = AF_INET;
                sa4->sin_port = htons(port);
                len = sizeof(*sa4);
        }
        *ret_addr = ss;
        *ret_len = len;
        return 0;
}

static int listen_socket(const struct sockaddr_storage *ss, socklen_t len, unsigned backlog,
                         uint16_t *ret_port) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_storage bound;
        socklen_t blen = sizeof(bound);
        int one = 1, zero = 0;

        fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (ss->ss_family == AF_INET6) {
                /* The wildcard accepts IPv4 too (dual stack); a specific address is only
                 * itself either way. */
                const struct sockaddr_in6 *sa6 = (const struct sockaddr_in6 *) ss;
                int v6only = IN6_IS_ADDR_UNSPECIFIED(&sa6->sin6_addr) ? zero : one;
                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0)
                        return -errno;
        }
        if (bind(fd, (const struct sockaddr *) ss, len) < 0)
                return -errno;
        if (listen(fd, (int) MIN(backlog, (unsigned) SOMAXCONN * 64u)) < 0)
                return -errno;
        if (getsockname(fd, (struct sockaddr *) &bound, &blen) < 0)
                return -errno;
        *ret_port = ntohs(bound.ss_family == AF_INET6 ?
                          ((struct sockaddr_in6 *) &bound)->sin6_port :
                          ((struct sockaddr_in *) &bound)->sin_port);
        return TAKE_FD(fd);
}

static void ev_mhd_process(EvMhd *m) {
        MHD_UNSIGNED_LONG_LONG to_ms;
        unsigned before = ev_mhd_connections(m);

        (void) MHD_run(m->daemon);
        /* At the connection limit MHD takes its listening socket out of its epoll set, and
         * puts it back only at the start of a later MHD_run(): after connections closed, run
         * again soon, or a connection waiting in the backlog would wait for some unrelated
         * event (up to the idle timeout). */
        if (ev_mhd_connections(m) < before)
                ev_mhd_kick(m);
        if (MHD_get_timeout(m->daemon, &to_ms) == MHD_YES) {
                uint64_t usec = to_ms >= EV_MHD_TIMER_MAX_USEC / 1000 ? EV_MHD_TIMER_MAX_USEC
                                                                       : to_ms * 1000;
                (void) sd_event_source_set_time_relative(m->timer, usec);
                (void) sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
}

static int on_epoll_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ev_mhd_process(userdata);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        ev_mhd_process(userdata);
        return 0;
}

static int on_kick(sd_event_source *s, void *userdata) {
        ev_mhd_process(userdata);
        return 0;
}

int ev_mhd_new(EvMhd **ret, sd_event *e, const EvMhdConfig *cfg,
               MHD_AccessHandlerCallback handler, void *handler_cls) {
        struct sockaddr_storage ss;
        socklen_t len;
        const union MHD_DaemonInfo *info;
        EvMhd *m;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, backlog, max_conn, timeout_s;
        size_t memory_limit;
        int fd, r;

        assert(ret);
        assert(e);
        assert(cfg);
        assert(handler);

        r = ev_mhd_parse_listen(cfg->listen, &ss, &len);
        if (r < 0)
                return r;
        if (cfg->memory_limit != 0 && cfg->memory_limit < EV_MHD_MEMORY_LIMIT_MIN)
                return -EINVAL;

        backlog = cfg->listen_backlog > 0 ? cfg->listen_backlog : EV_MHD_BACKLOG_DEFAULT;
        max_conn = cfg->max_connections > 0 ? cfg->max_connections : EV_MHD_MAX_CONNECTIONS_DEFAULT;
        timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : EV_MHD_TIMEOUT_S_DEFAULT;
        memory_limit = cfg->memory_limit > 0 ? cfg->memory_limit : EV_MHD_MEMORY_LIMIT_DEFAULT;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;

        fd = listen_socket(&ss, len, backlog, &m->port);
        if (fd == -EAFNOSUPPORT && ss.ss_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *) &ss)->sin6_addr)) {
                /* A host without IPv6: the wildcard falls back to IPv4 only. */
                struct sockaddr_in sa4 = { .sin_family = AF_INET,
                                           .sin_port = ((struct sockaddr_in6 *) &ss)->sin6_port,
                                           .sin_addr.s_addr = htonl(INADDR_ANY) };
                memset(&ss, 0, sizeof(ss));
                memcpy(&ss, &sa4, sizeof(sa4));
                fd = listen_socket(&ss, sizeof(sa4),
                                   backlog, &m->port);
        }
        if (fd < 0) {
                free(m);
                return fd;
        }

        {
                struct MHD_OptionItem opts[8];
                size_t n = 0;

                if (cfg->logger) {
                        /* First, so that MHD's start-up messages go there too. */
                        flags |= MHD_USE_ERROR_LOG;
                        opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_EXTERNAL_LOGGER,
                                                              (intptr_t) cfg->logger,
                                                              cfg->logger_cls };
                }
                opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_LISTEN_SOCKET, fd, NULL };
                opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_CONNECTION_LIMIT, max_conn,
                                                      NULL };
                opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                                      cfg->max_per_ip, NULL };
                opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                                                      NULL };
                opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                                      (intptr_t) memory_limit, NULL };
                if (cfg->on_completed)
                        opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_NOTIFY_COMPLETED,
                                                              (intptr_t) cfg->on_completed,
                                                              cfg->on_completed_cls };
                opts[n++] = (struct MHD_OptionItem) { MHD_OPTION_END, 0, NULL };
                assert(n <= ELEMENTSOF(opts));

                m->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls,
                                             MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
        }
        if (!m->daemon) {
                /* Whether MHD closed the socket on its failure path is not documented; nothing
                 * else runs on this thread meanwhile, so an fd still open is still ours. */
                if (fcntl(fd, F_GETFD) >= 0)
                        (void) safe_close(fd);
                free(m);
                return -EIO;
        }

        info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                r = -EIO;
                goto fail;
        }
        r = sd_event_add_io(e, &m->io, info->epoll_fd, EPOLLIN, on_epoll_readable, m);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(e, &m->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, m);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
        r = sd_event_add_defer(e, &m->kick, on_kick, m);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(m->kick, SD_EVENT_OFF);

        *ret = m;
        return 0;
fail:
        ev_mhd_free(m);
        return r;
}

EvMhd *ev_mhd_free(EvMhd *m) {
        if (!m)
                return NULL;
        /* Take the epoll fd out of sd-event's set while it is still open: MHD closes it. */
        if (m->io)
                (void) sd_event_source_set_enabled(m->io, SD_EVENT_OFF);
        if (m->daemon)
                MHD_stop_daemon(m->daemon);
        sd_event_source_disable_unref(m->io);
        sd_event_source_disable_unref(m->timer);
        sd_event_source_disable_unref(m->kick);
        free(m);
        return NULL;
}

uint16_t ev_mhd_port(const EvMhd *m) {
        assert(m);
        return m->port;
}

struct MHD_Daemon *ev_mhd_daemon(EvMhd *m) {
        assert(m);
        return m->daemon;
}

void ev_mhd_kick(EvMhd *m) {
        assert(m);
        if (m->kick)
                (void) sd_event_source_set_enabled(m->kick, SD_EVENT_ONESHOT);
}

void ev_mhd_resume(EvMhd *m, struct MHD_Connection *c) {
        assert(m);
        assert(c);
        MHD_resume_connection(c);
        ev_mhd_kick(m);
}

void ev_mhd_flush(EvMhd *m) {
        assert(m);
        for (unsigned i = 0; i < EV_MHD_FLUSH_RUNS; i++)
                (void) MHD_run(m->daemon);
}

unsigned ev_mhd_connections(EvMhd *m) {
        const union MHD_DaemonInfo *info;

        assert(m);
        info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        return info ? info->num_connections : 0;
}

static bool method_matches(const char *route_method, const char *method) {
        return strcmp(route_method, method) == 0 ||
               (strcmp(route_method, MHD_HTTP_METHOD_GET) == 0 &&
                strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
}

static void append_method(char *allow, size_t size, const char *method) {
        size_t n = strlen(allow);

        (void) snprintf(allow + n, size - n, "%s%s", n > 0 ? ", " : "", method);
}

const void *ev_mhd_route_find(const void *routes, size_t n, size_t stride, const char *url,
                              const char *method, char *allow, size_t allow_size) {
        allow[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                const EvMhdRouteKey *r = (const void *) ((const uint8_t *) routes + i * stride);
                if (strcmp(r->path, url) != 0)
                        continue;
                if (method_matches(r->method, method))
                        return r;
                append_method(allow, allow_size, r->method);
                if (strcmp(r->method, MHD_HTTP_METHOD_GET) == 0)
                        append_method(allow, allow_size, MHD_HTTP_METHOD_HEAD);
        }
        return NULL;
}

/* Compares in time that depends only on the configured token's length. */
static bool token_equal(const char *given, size_t given_len, const char *want, size_t want_len) {
        volatile unsigned char d = given_len != want_len;

        for (size_t i = 0; i < want_len; i++)
                d |= (unsigned char) (want[i] ^ (i < given_len ? given[i] : 0));
        return d == 0;
}

int ev_mhd_check_bearer(struct MHD_Connection *conn, const char *token, size_t token_len) {
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
        size_t len;

        if (!v)
                return -ENOKEY;
        v += strspn(v, " \t");
        if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
                return -ENOKEY;
        v += 6;
        v += strspn(v, " \t");
        len = strlen(v);
        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
        if (len == 0)
                return -ENOKEY;
        return token_equal(v, len, token, token_len) ? 0 : -EACCES;
}

int ev_mhd_queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *resp,
                 const char *content_type, const char *hname, const char *hvalue) {
        enum MHD_Result ok;

        if (!resp)
                return -ENOMEM;
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
            (hname && MHD_add_response_header(resp, hname, hvalue) != MHD_YES)) {
                MHD_destroy_response(resp);
                return -ENOMEM;
        }
        ok = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ok == MHD_YES ? 0 : -EIO;
}

int ev_mhd_queue_json_text(struct MHD_Connection *conn, unsigned status, char *text,
                           const char *hname, const char *hvalue) {
        if (!text)
                return -ENOMEM;
        /* @text comes from malloc() (jansson's default allocator): MHD may free() it. */
        return ev_mhd_queue(conn, status,
                            MHD_create_response_from_buffer(strlen(text), text,
                                                            MHD_RESPMEM_MUST_FREE),
                            "application/json", hname, hvalue);
}

json_t *ev_mhd_error_json(const char *code, const char *message) {
        return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
}

int ev_mhd_queue_errorv(struct MHD_Connection *conn, unsigned status, const char *code,
                        const char *hname, const char *hvalue, const char *fmt, va_list ap) {
        char msg[512];
        json_t *body;
        char *text;

        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        body = ev_mhd_error_json(code, msg);
        text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        return ev_mhd_queue_json_text(conn, status, text, hname, hvalue);
}

bool ev_mhd_body_declared_over(struct MHD_Connection *conn, size_t max) {
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long n;
        char *end;

        if (!v)
                return false;
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno == ERANGE)
                return true;
        /* MHD rejects malformed values itself; whatever it let through and we cannot read
         * is left to the caller's count as the body arrives. */
        return end != v && n > max;
}
