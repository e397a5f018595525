/* SPDX-License-Identifier: MIT */
/*
 * fuzz-proxy.c - libFuzzer target for the PROXY protocol parser. The input is the start of a
 * TCP stream; proxy_parse() runs on every prefix (each copied to a buffer of exactly that
 * size, so ASan sees any read past the octets given) and the target aborts unless:
 * - the result is 0, > 0, -EBADMSG or -EPROTONOSUPPORT, never above the prefix length or
 *   PROXY_MAX_HEADER, and the output is untouched unless it is > 0;
 * - over growing prefixes the results are 0 some times, then one fixed value for good: a
 *   header, once complete, has the same length and addresses whatever follows, and an
 *   error stays that error (the parser never asks for more and then changes its mind);
 * - a parsed header is consistent: AF_INET/AF_INET6 with matching socket addresses, or
 *   AF_UNSPEC with none; local only from v2; a v1 TCP4 line prints back to the same octets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Past this, no prefix can change the result; the full input is still parsed once. */
#define PREFIX_LIMIT (PROXY_MAX_HEADER + 64)

static void check(bool ok) {
        if (!ok)
                abort();
}

static bool info_equal(const ProxyInfo *a, const ProxyInfo *b) {
        return a->family == b->family && a->local == b->local &&
               memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
               memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0;
}

static void check_info(const uint8_t *p, int r, const ProxyInfo *i) {
        static const struct sockaddr_storage zero;

        switch (i->family) {
        case AF_INET:
        case AF_INET6:
                check(i->src.ss_family == i->family && i->dst.ss_family == i->family);
                check(!i->local);
                break;
        case AF_UNSPEC:
                check(memcmp(&i->src, &zero, sizeof(zero)) == 0);
                check(memcmp(&i->dst, &zero, sizeof(zero)) == 0);
                break;
        default:
                abort();
        }
        if (p[0] == 'P') {
                check(!i->local && r <= (int) PROXY_V1_MAX_HEADER);
                check(p[r - 2] == '\r' && p[r - 1] == '\n');
        }
        if (p[0] == 'P' && i->family == AF_INET) {
                /* Strict v1 IPv4 has one spelling: it must print back to the input. */
                const struct sockaddr_in *s = (const struct sockaddr_in *) &i->src;
                const struct sockaddr_in *d = (const struct sockaddr_in *) &i->dst;
                char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], line[PROXY_V1_MAX_HEADER + 1];
                int n;

                check(inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a)) != NULL);
                check(inet_ntop(AF_INET, &d->sin_addr, b, sizeof(b)) != NULL);
                n = snprintf(line, sizeof(line), "PROXY TCP4 %s %s %u %u\r\n", a, b,
                             (unsigned) ntohs(s->sin_port), (unsigned) ntohs(d->sin_port));
                check(n == r && memcmp(line, p, (size_t) r) == 0);
        }
}

/* Parses @data[0..k) from an exact-size copy; checks what holds for any single call. */
static int parse_prefix(const uint8_t *data, size_t k, ProxyInfo *info) {
        ProxyInfo s;
        uint8_t *copy = NULL;
        int r;

        memset(&s, 0xa5, sizeof(s));
        memcpy(info, &s, sizeof(s));
        if (k > 0) {
                copy = malloc(k);
                if (!copy)
                        abort();
                memcpy(copy, data, k);
        }
        r = proxy_parse(copy, k, info);
        free(copy);

        check(r == 0 || r == -EBADMSG || r == -EPROTONOSUPPORT || r > 0);
        check(r <= (int) PROXY_MAX_HEADER && (r < 0 || (size_t) r <= k));
        if (r > 0)
                check_info(data, r, info);
        else
                check(memcmp(info, &s, sizeof(s)) == 0);
        return r;
}

/* One step of the prefix walk: the result must stay what it settled on. */
static void check_settled(int r, const ProxyInfo *info, int settled, const ProxyInfo *first) {
        check(r == settled);
        if (r > 0)
                check(info_equal(info, first));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t limit = size < PREFIX_LIMIT ? size : PREFIX_LIMIT;
        ProxyInfo first = { 0 }, info;
        int settled = 0;

        for (size_t k = 0; k <= limit; k++) {
                int r = parse_prefix(data, k, &info);

                if (settled != 0) {
                        check_settled(r, &info, settled, &first);
                        continue;
                }
                settled = r;
                first = info;
                if (r > 0 && (size_t) r < size) {
                        /* The octets after a header are never looked at. */
                        uint8_t *other = malloc(size);
                        if (!other)
                                abort();
                        memcpy(other, data, size);
                        for (size_t j = (size_t) r; j < size; j++)
                                other[j] ^= 0xff;
                        check_settled(parse_prefix(other, size, &info), &info, settled, &first);
                        free(other);
                }
        }
        if (size > limit)
                check_settled(parse_prefix(data, size, &info), &info, settled, &first);
        return 0;
}
