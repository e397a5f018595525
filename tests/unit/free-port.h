/* SPDX-License-Identifier: MIT */
/*
 * free-port.h - a loopback TCP port nothing listens on right now (bound, read back, closed),
 * for the unit tests that need a peer that refuses, or a port to hand a server. Include
 * after cmocka.h.
 */
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static inline unsigned free_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        close(fd);
        return ntohs(sa.sin_port);
}
