/* SPDX-License-Identifier: MIT */
/*
 * listener.h - opening the collector's own sockets. Every worker binds its own socket per
 * listener with SO_REUSEPORT, so the kernel spreads TCP connections and UDP flows (by
 * 4-tuple hash, which keeps one exporter on one worker) without a shared accept queue.
 */
#pragma once

#include <stdint.h>
#include <sys/socket.h>

#include "collector-config.h"

/**
 * listener_open() - a non-blocking, close-on-exec socket bound to @l (SO_REUSEADDR,
 * SO_REUSEPORT; "::" is dual-stack; TCP listens with @backlog; UDP gets @rcvbuf).
 * @ret_port: the bound port (useful when @l->port is 0)
 * Return: the fd, or -errno.
 */
int listener_open(const ListenerConfig *l, int backlog, int rcvbuf, uint16_t *ret_port);

/* Formats a socket address as "addr:port" / "[addr]:port". */
const char *sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);
