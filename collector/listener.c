/* SPDX-License-Identifier: MIT */
/*
 * listener.c - socket set-up only; owns no state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"
#include "macro.h"

int listener_open(const ListenerConfig *l, int backlog, int rcvbuf, uint16_t *ret_port) {
        struct sockaddr_storage ss = { 0 };
        socklen_t sl;
        _cleanup_close_ int fd = -EBADF;
        int one = 1, zero = 0, family;

        if (inet_pton(AF_INET, l->address, &((struct sockaddr_in *) &ss)->sin_addr) == 1) {
                struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
                family = AF_INET;
                sin->sin_family = AF_INET;
                sin->sin_port = htons(l->port);
                sl = sizeof(*sin);
        } else if (inet_pton(AF_INET6, l->address, &((struct sockaddr_in6 *) &ss)->sin6_addr) == 1) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
                family = AF_INET6;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(l->port);
                sl = sizeof(*sin6);
        } else
                return -EINVAL;

        fd = socket(family,
                    (l->transport == LISTENER_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK |
                            SOCK_CLOEXEC,
                    0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
                return -errno;
        if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
                return -errno;
        if (l->transport == LISTENER_UDP && rcvbuf > 0) {
                /* SO_RCVBUFFORCE passes rmem_max when privileged; fall back silently. */
                if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
                        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        }
        if (bind(fd, (struct sockaddr *) &ss, sl) < 0)
                return -errno;
        if (l->transport == LISTENER_TCP && listen(fd, backlog) < 0)
                return -errno;
        sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
                return -errno;
        *ret_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                                  : ((struct sockaddr_in6 *) &ss)->sin6_port);
        return TAKE_FD(fd);
}

const char *sockaddr_format(const struct sockaddr *sa, char *buf, size_t len) {
        char a[INET6_ADDRSTRLEN] = "?";
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *s = (const struct sockaddr_in *) sa;
                (void) inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
                (void) snprintf(buf, len, "%s:%u", a, ntohs(s->sin_port));
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *s = (const struct sockaddr_in6 *) sa;
                (void) inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
                (void) snprintf(buf, len, "[%s]:%u", a, ntohs(s->sin6_port));
        } else
                (void) snprintf(buf, len, "?");
        return buf;
}
