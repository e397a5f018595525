/* SPDX-License-Identifier: MIT */
/*
 * ev-redis.h - hiredis async connections driven by sd-event, in two layers.
 *
 * ev_redis_attach() is the event-library adapter hiredis 0.14.1 lacks (hiredis >= 1.2 ships
 * adapters/libsdevent.h): it maps ac->ev.addRead/delRead/addWrite/delWrite/cleanup onto one
 * sd_event_source per context and calls redisAsyncHandleRead/Write when the fd is ready.
 *
 * EvRedis is a connection manager on top, because raw hiredis async never reconnects: it
 * connects (TCP or unix socket), sends AUTH and SELECT, and only then reports the connection
 * up. Lost or failed connections are retried with exponential backoff and jitter from an
 * sd-event timer; connecting and, optionally, waiting for replies are bounded by timeouts.
 * Nothing blocks the loop, except that hiredis 0.14.1 resolves a TCP host name with a
 * synchronous getaddrinfo(): configure an IP address where that matters.
 *
 * Replies handed to callbacks are valid only during the callback (hiredis frees them).
 * Every command's callback is called exactly once: with the reply, or with a NULL reply when
 * the connection is lost or the EvRedis freed before the reply came. Subscriptions
 * ((P)SUBSCRIBE, MONITOR) are passed to hiredis as they are: their callback runs per message
 * and once with NULL when the connection goes; they do not survive a reconnect, so re-issue
 * them from on_connected. hiredis 0.14.1 mis-routes replies to ordinary commands sent on a
 * subscribed connection: use a separate EvRedis for subscriptions.
 *
 * hiredis 0.14.1 writes with write(2), not send(MSG_NOSIGNAL): a process using this module
 * must ignore SIGPIPE (sigaction SIG_IGN), or a server that goes away can kill it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <systemd/sd-event.h>

#include "macro.h"

/**
 * ev_redis_attach() - drives @ac from @e: one io source for the context's fd, whose
 * EPOLLIN/EPOLLOUT follow what hiredis asks for. Attach before redisAsyncSetConnectCallback()
 * (hiredis 0.14.1 asks for the first write event from there). The source is released by the
 * cleanup hook when hiredis frees the context (redisAsyncFree(), a lost connection or a failed
 * connect). Also sets FD_CLOEXEC on the fd, which hiredis 0.14.1 does not.
 * Return: 0, -EEXIST when @ac already has an event library attached, -EBADF when @ac has no
 * fd (a connect that failed at once: check ac->err first), -ENOMEM, or -errno from sd-event.
 */
int ev_redis_attach(redisAsyncContext *ac, sd_event *e);

typedef struct EvRedis EvRedis;

#define EV_REDIS_CONNECT_TIMEOUT_USEC_DEFAULT (2 * 1000 * 1000ULL)
#define EV_REDIS_BACKOFF_MIN_USEC_DEFAULT (100 * 1000ULL)
#define EV_REDIS_BACKOFF_MAX_USEC_DEFAULT (30 * 1000 * 1000ULL)

typedef struct EvRedisConfig {
        /* Exactly one of host (IP address or name, with port) and unix_path. */
        const char *host;
        uint16_t port;
        const char *unix_path;
        const char *username;           /* optional ACL user (AUTH user password); needs password */
        const char *password;           /* optional: AUTH is sent first */
        unsigned db;                    /* SELECT db when not 0 */
        /* From the start of a connect until AUTH/SELECT (or PING) are answered. 0: default. */
        uint64_t connect_timeout_usec;
        /* While replies are outstanding, the longest wait for the next one before the
         * connection is dropped as hung (-ETIMEDOUT). 0: no limit. Leave it 0 on a connection
         * that issues blocking commands (BLPOP and the like). */
        uint64_t command_timeout_usec;
        /* Retry delays are drawn uniformly from [d/2, d], d doubling from backoff_min up to
         * backoff_max with each failed attempt and starting over once connected. 0: default. */
        uint64_t backoff_min_usec;
        uint64_t backoff_max_usec;

        /* Runtime hooks, not configuration. Both run from the loop (inside a hiredis callback
         * or one of our timers) and may issue commands or call ev_redis_free(). */
        void (*on_connected)(void *userdata);
        /* Called when an established connection (one that had called on_connected) is lost,
         * with -ECONNRESET (closed by the server), -EIO (I/O error), -EPROTO, -ETIMEDOUT
         * (command timeout) or -ENOMEM; ev_redis_last_error() has the details. It may run
         * before or after the NULL replies of the commands that were in flight. Failed
         * connect attempts are not reported here, only counted. */
        void (*on_disconnected)(void *userdata, int reason);
        void *userdata;
} EvRedisConfig;

typedef struct EvRedisCounters {
        uint64_t connect_attempts;
        uint64_t connect_failures;      /* refused, timed out, or AUTH/SELECT rejected */
        uint64_t connects;              /* connections that completed AUTH/SELECT */
        uint64_t disconnects;           /* such connections lost (not counting ev_redis_free) */
        uint64_t commands_sent;         /* accepted by ev_redis_command*() */
        /* Error replies, commands whose connection was lost before the reply, and commands
         * hiredis refused. -ENOTCONN refusals are the caller's to count. */
        uint64_t command_errors;
} EvRedisCounters;

/**
 * ev_redis_new() - creates the manager and schedules the first connect on @e (it never
 * connects from inside this call, so callbacks only ever run from the loop). The strings in
 * @cfg are copied.
 * Return: 0, -EINVAL for an inconsistent @cfg (neither or both of host and unix_path, port 0,
 * a unix path too long for sockaddr_un, username without password, backoff_min >
 * backoff_max, db > INT_MAX), -ENOMEM, or -errno from sd-event.
 */
int ev_redis_new(EvRedis **ret, sd_event *e, const EvRedisConfig *cfg);

/**
 * ev_redis_free() - frees the connection (redisAsyncFree()): callbacks of commands still
 * waiting for a reply, and subscription callbacks, are called with a NULL reply; the owner's
 * on_disconnected is not. Nothing queued is flushed. When called from inside a hiredis
 * callback, hiredis delivers those NULL replies after that callback returns, so they must not
 * use @r. NULL-safe.
 * Return: NULL.
 */
EvRedis *ev_redis_free(EvRedis *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvRedis *, ev_redis_free);

/**
 * ev_redis_command() - sends a command formatted like redisAsyncCommand() (hiredis format:
 * %s, %b with pointer and length, ...; hence no printf attribute).
 * @cb: called exactly once with the reply or NULL (see the top of this file); may be NULL
 * Return: 0 when queued, -ENOTCONN when not connected (nothing was sent: queue or count it),
 * -EINVAL for a bad format or an UNSUBSCRIBE without subscriptions, -ENOMEM.
 */
int ev_redis_command(EvRedis *r, redisCallbackFn *cb, void *privdata, const char *fmt, ...);

/**
 * ev_redis_command_argv() - like ev_redis_command() with an argument vector; @argvlen may be
 * NULL for NUL-terminated arguments. Return: as ev_redis_command(), -EINVAL for argc < 1.
 */
int ev_redis_command_argv(EvRedis *r, redisCallbackFn *cb, void *privdata, int argc,
                          const char **argv, const size_t *argvlen);

/**
 * ev_redis_is_connected() - whether commands are accepted now.
 * Return: true from on_connected until that connection is lost (false already while hiredis
 * is tearing a broken connection down and running its NULL replies).
 */
bool ev_redis_is_connected(const EvRedis *r);

/**
 * ev_redis_get_counters() - copies the counters (cumulative since ev_redis_new()) to @ret.
 */
void ev_redis_get_counters(const EvRedis *r, EvRedisCounters *ret);

/**
 * ev_redis_last_error() - why the last connect attempt failed or the last connection was
 * lost, as hiredis or the server put it ("Connection refused", "WRONGPASS ..."), for the
 * owner to log. Never contains the password. Return: borrowed string, "" when none yet.
 */
const char *ev_redis_last_error(const EvRedis *r);
