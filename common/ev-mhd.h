/* SPDX-License-Identifier: MIT */
/*
 * ev-mhd.h - a libmicrohttpd daemon driven by sd-event, without threads.
 *
 * The daemon runs in MHD's external epoll mode (MHD_USE_EPOLL, no internal polling thread):
 * its epoll fd (MHD_DAEMON_INFO_EPOLL_FD) is one sd-event io source, MHD_run() is called when
 * it is readable, and one timer is re-armed from MHD_get_timeout() after every run so idle
 * connections time out and data MHD already buffered is processed. The listening socket is
 * ours (non-blocking, close-on-exec, SO_REUSEADDR; an IPv6 wildcard also accepts IPv4) and
 * handed to MHD, which closes it when the daemon stops.
 *
 * Connections may be suspended (MHD_ALLOW_SUSPEND_RESUME) while an asynchronous operation
 * runs: call MHD_suspend_connection() in the access handler, and when the operation completes
 * queue the response and call ev_mhd_resume() (or MHD_resume_connection() and then
 * ev_mhd_kick()). MHD_run() is then re-run from a defer source, never from inside a caller
 * that may itself be running under MHD_run(). Every connection must be resumed before
 * ev_mhd_free(): MHD aborts when a daemon with suspended connections is stopped.
 *
 * Limits against hostile peers: total connections, connections per IP, idle timeout, and
 * the per-connection memory pool, which caps the request line and headers: MHD answers a
 * too-long URL with 414 and too-large headers with 431 itself (an HTML body; the access
 * handler never sees such requests).
 *
 * Everything here runs on the loop thread. common/ does not log: MHD's own diagnostics go to
 * EvMhdConfig.logger when one is given, and nowhere otherwise.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>
#include <systemd/sd-event.h>

typedef struct EvMhd EvMhd;

typedef struct EvMhdConfig {
        const char *listen;             /* "ADDR:PORT", "[V6ADDR]:PORT", ":PORT" or "*:PORT"
                                         * (all addresses); PORT 0 lets the kernel choose */
        unsigned max_connections;       /* 0: 64 */
        unsigned max_per_ip;            /* 0: no per-address limit */
        unsigned timeout_s;             /* idle connection timeout; 0: 30 */
        size_t memory_limit;            /* per-connection pool, caps request line + headers;
                                         * 0: 32 KiB (MHD's default), minimum 4 KiB */
        unsigned listen_backlog;        /* 0: 128 */
        /* MHD_OPTION_NOTIFY_COMPLETED: called for every request the handler saw, when it
         * completes or its connection goes away; free the per-request state (con_cls) here.
         * NULL: none. */
        MHD_RequestCompletedCallback on_completed;
        void *on_completed_cls;
        /* MHD's diagnostics (MHD_USE_ERROR_LOG + MHD_OPTION_EXTERNAL_LOGGER); NULL: silent. */
        MHD_LogCallback logger;
        void *logger_cls;
} EvMhdConfig;

/**
 * ev_mhd_parse_listen() - parses a listen string (see EvMhdConfig.listen) into a socket
 * address. Only numeric addresses are accepted (no name resolution, which would block).
 * @ret_addr: set to an AF_INET or AF_INET6 address on success; a wildcard is "::"
 * @ret_len:  its length
 * Return: 0, or -EINVAL for a malformed string, address or port.
 */
int ev_mhd_parse_listen(const char *listen, struct sockaddr_storage *ret_addr,
                        socklen_t *ret_len);

/**
 * ev_mhd_new() - binds and listens, starts the daemon and attaches it to @e.
 * @handler:     the access handler (called on the loop, from MHD_run())
 * @handler_cls: its closure
 * Return: 0, -EINVAL for a bad config, -errno from socket()/bind()/listen() (e.g.
 * -EADDRINUSE, -EADDRNOTAVAIL), -EAFNOSUPPORT when IPv6 is unavailable for an IPv6 address,
 * -ENOMEM, or -EIO when MHD refuses to start.
 */
int ev_mhd_new(EvMhd **ret, sd_event *e, const EvMhdConfig *cfg,
               MHD_AccessHandlerCallback handler, void *handler_cls);

/**
 * ev_mhd_free() - stops the daemon (closing every connection; the completed callback runs
 * for each request in progress) and detaches it from the loop. No connection may be
 * suspended (resume them first). NULL-safe.
 * Return: NULL.
 */
EvMhd *ev_mhd_free(EvMhd *m);

/* The bound port (the kernel's choice when the config said 0). */
uint16_t ev_mhd_port(const EvMhd *m);

/* The MHD daemon, for MHD_get_daemon_info() and the like. Borrowed. */
struct MHD_Daemon *ev_mhd_daemon(EvMhd *m);

/**
 * ev_mhd_kick() - schedules MHD_run() from a defer source on the next loop iteration. Call it
 * after MHD_resume_connection(); safe from inside MHD callbacks.
 */
void ev_mhd_kick(EvMhd *m);

/**
 * ev_mhd_resume() - MHD_resume_connection(@c) then ev_mhd_kick(). Queue the response on the
 * suspended connection first (MHD_queue_response() is allowed on a suspended connection).
 */
void ev_mhd_resume(EvMhd *m, struct MHD_Connection *c);

/**
 * ev_mhd_flush() - runs MHD a couple of times right now (never blocking), so responses just
 * queued on resumed connections get written before ev_mhd_free(). For shutdown: the access
 * handler may run for requests that arrived meanwhile and must not suspend them.
 */
void ev_mhd_flush(EvMhd *m);

/* Connections currently open (accepted and not yet closed). */
unsigned ev_mhd_connections(EvMhd *m);

/*
 * Helpers both HTTP servers share. A route table is an array of structs that each begin with
 * `const char *method; const char *path;` (EvMhdRouteKey); GET routes also answer HEAD.
 */
typedef struct EvMhdRouteKey {
        const char *method;
        const char *path;
} EvMhdRouteKey;

/**
 * ev_mhd_route_find() - the route for @url and @method in @routes (@n entries, @stride bytes
 * apart), or NULL with @allow set to the methods the path has ("" when the path is unknown:
 * 404, else 405 with that Allow header).
 */
const void *ev_mhd_route_find(const void *routes, size_t n, size_t stride, const char *url,
                              const char *method, char *allow, size_t allow_size);

/**
 * ev_mhd_check_bearer() - checks the Authorization header against @token (@token_len bytes)
 * in time that depends only on the token's length.
 * Return: 0 when it matches, -ENOKEY when absent or not a Bearer credential, -EACCES when
 * wrong.
 */
int ev_mhd_check_bearer(struct MHD_Connection *conn, const char *token, size_t token_len);

/**
 * ev_mhd_queue() - queues @resp (consumed; NULL means it could not be made) on @conn with
 * @status, Content-Type @content_type, "Cache-Control: no-store" and one optional header.
 * Return: 0, -ENOMEM (no response or header), -EIO (MHD refused it).
 */
int ev_mhd_queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *resp,
                 const char *content_type, const char *hname, const char *hvalue);

/* ev_mhd_queue() of @text (malloc'ed, consumed; NULL: -ENOMEM) as application/json. */
int ev_mhd_queue_json_text(struct MHD_Connection *conn, unsigned status, char *text,
                           const char *hname, const char *hvalue);

/* The one error shape of both servers: {"error": {"code", "message"}}. NULL on -ENOMEM. */
json_t *ev_mhd_error_json(const char *code, const char *message);

/**
 * ev_mhd_queue_errorv() - queues ev_mhd_error_json(@code, the formatted message, at most
 * 511 bytes) with @status and one optional header. Return: as ev_mhd_queue().
 */
int ev_mhd_queue_errorv(struct MHD_Connection *conn, unsigned status, const char *code,
                        const char *hname, const char *hvalue, const char *fmt, va_list ap)
        __attribute__((format(printf, 6, 0)));

/**
 * ev_mhd_body_declared_over() - whether the request's Content-Length declares more than
 * @max bytes (a value too large to parse counts as more). Bodies without a declared
 * length are left to the caller's own count as they arrive.
 */
bool ev_mhd_body_declared_over(struct MHD_Connection *conn, size_t max);

