/* SPDX-License-Identifier: MIT */
/*
 * test-proxy-proto.c - PROXY protocol v1/v2 header parser: v1 TCP4/TCP6/UNKNOWN and v2
 * PROXY (IPv4, IPv6, with and without TLVs, DGRAM, UNSPEC) and LOCAL headers parse to the
 * expected addresses and exact lengths with an IPFIX message behind them; every strict
 * prefix of a valid header asks for more; malformed headers fail at exactly the first octet
 * that rules them out (so a plain IPFIX peer is rejected on its first octet); the v1
 * 107-octet limit, the v2 length cap and TLV framing; the output is untouched unless the
 * parse succeeds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy-proto.h"

/* An IPFIX message header (version 10, length 16) that follows every header below. */
static const uint8_t ipfix_msg[] = { 0x00, 0x0a, 0x00, 0x10, 0x65, 0x53, 0xf1, 0x00,
                                     0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07 };

#define V2_SIG '\r', '\n', '\r', '\n', 0x00, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'

/* Output untouched: compared byte for byte, padding included, so set with memset/memcpy. */
static void sentinel(ProxyInfo *s) {
        memset(s, 0xa5, sizeof(*s));
}

static void assert_untouched(const ProxyInfo *i) {
        ProxyInfo s;

        sentinel(&s);
        assert_memory_equal(i, &s, sizeof(s));
}

/* Parsed results compared field by field: struct padding is unspecified. */
static void assert_info_equal(const ProxyInfo *a, const ProxyInfo *b) {
        assert_int_equal(a->family, b->family);
        assert_int_equal(a->local, b->local);
        assert_memory_equal(&a->src, &b->src, sizeof(a->src));
        assert_memory_equal(&a->dst, &b->dst, sizeof(a->dst));
}

/* @p[0..hlen) is a valid header: every strict prefix needs more (and leaves the output
 * alone), the whole parses to @hlen, and so it does with an IPFIX message or garbage behind
 * it. Returns the parsed header. */
static ProxyInfo expect_header(const uint8_t *p, size_t hlen) {
        uint8_t buf[PROXY_MAX_HEADER + sizeof(ipfix_msg)];
        ProxyInfo info, other;

        assert_true(hlen <= PROXY_MAX_HEADER);
        for (size_t k = 0; k < hlen; k++) {
                sentinel(&info);
                assert_int_equal(proxy_parse(p, k, &info), 0);
                assert_untouched(&info);
        }
        assert_int_equal(proxy_parse(p, hlen, &info), (int) hlen);

        memcpy(buf, p, hlen);
        memcpy(buf + hlen, ipfix_msg, sizeof(ipfix_msg));
        for (size_t k = hlen; k <= hlen + sizeof(ipfix_msg); k++) {
                assert_int_equal(proxy_parse(buf, k, &other), (int) hlen);
                assert_info_equal(&other, &info);
        }
        memset(buf + hlen, 0xff, sizeof(ipfix_msg));
        assert_int_equal(proxy_parse(buf, hlen + sizeof(ipfix_msg), &other), (int) hlen);
        assert_info_equal(&other, &info);
        return info;
}

static ProxyInfo expect_header_str(const char *s) {
        return expect_header((const uint8_t *) s, strlen(s));
}

/* Every prefix of @p shorter than @bad_at needs more; from @bad_at on, @err, with or without
 * octets behind; the output is never touched. */
static void expect_error_at(const uint8_t *p, size_t len, size_t bad_at, int err) {
        ProxyInfo info;

        assert_true(bad_at >= 1 && bad_at <= len);
        for (size_t k = 0; k <= len; k++) {
                sentinel(&info);
                assert_int_equal(proxy_parse(p, k, &info), k < bad_at ? 0 : err);
                assert_untouched(&info);
        }
}

static void check_in4(const struct sockaddr_storage *ss, const char *addr, uint16_t port) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) ss;
        struct in_addr a;

        assert_int_equal(in->sin_family, AF_INET);
        assert_int_equal(inet_pton(AF_INET, addr, &a), 1);
        assert_memory_equal(&in->sin_addr, &a, sizeof(a));
        assert_int_equal(ntohs(in->sin_port), port);
}

static void check_in6(const struct sockaddr_storage *ss, const char *addr, uint16_t port) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) ss;
        struct in6_addr a;

        assert_int_equal(in6->sin6_family, AF_INET6);
        assert_int_equal(inet_pton(AF_INET6, addr, &a), 1);
        assert_memory_equal(&in6->sin6_addr, &a, sizeof(a));
        assert_int_equal(ntohs(in6->sin6_port), port);
}

static void test_v1_tcp4(void **state) {
        ProxyInfo i = expect_header_str("PROXY TCP4 192.0.2.1 198.51.100.2 56324 4739\r\n");

        assert_int_equal(i.family, AF_INET);
        assert_false(i.local);
        check_in4(&i.src, "192.0.2.1", 56324);
        check_in4(&i.dst, "198.51.100.2", 4739);

        i = expect_header_str("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
        check_in4(&i.src, "0.0.0.0", 0);
        check_in4(&i.dst, "255.255.255.255", 65535);
}

static void test_v1_tcp6(void **state) {
        /* The longest TCP6 line without a dotted tail: 104 octets. */
        static const char longest[] =
                "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 65535 65535\r\n";
        ProxyInfo i = expect_header_str("PROXY TCP6 2001:db8::1 2001:db8:0:1::2 1024 4739\r\n");

        assert_int_equal(i.family, AF_INET6);
        assert_false(i.local);
        check_in6(&i.src, "2001:db8::1", 1024);
        check_in6(&i.dst, "2001:db8:0:1::2", 4739);

        i = expect_header_str("PROXY TCP6 ::ffff:192.0.2.1 :: 1 2\r\n");
        check_in6(&i.src, "::ffff:192.0.2.1", 1);
        check_in6(&i.dst, "::", 2);

        i = expect_header_str("PROXY TCP6 1:2:3:4:5:6:7:: ::1:2:3:4:5:6:7 3 4\r\n");
        check_in6(&i.src, "1:2:3:4:5:6:7::", 3);
        check_in6(&i.dst, "::1:2:3:4:5:6:7", 4);

        assert_int_equal(strlen(longest), 104);
        i = expect_header_str(longest);
        check_in6(&i.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

static void test_v1_unknown(void **state) {
        char line[PROXY_V1_MAX_HEADER + 2];
        ProxyInfo i = expect_header_str("PROXY UNKNOWN\r\n");

        assert_int_equal(i.family, AF_UNSPEC);
        assert_false(i.local);
        /* Spec 2.1: whatever follows "UNKNOWN " up to CRLF is ignored. */
        i = expect_header_str("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n");
        assert_int_equal(i.family, AF_UNSPEC);

        /* Exactly 107 octets is the longest line... */
        memset(line, 'x', sizeof(line));
        memcpy(line, "PROXY UNKNOWN ", 14);
        memcpy(line + PROXY_V1_MAX_HEADER - 2, "\r\n", 2);
        i = expect_header((const uint8_t *) line, PROXY_V1_MAX_HEADER);
        assert_int_equal(i.family, AF_UNSPEC);

        /* ... one more and it fails on the 107th octet, or without CRLF at all. */
        memset(line, 'x', sizeof(line));
        memcpy(line, "PROXY UNKNOWN ", 14);
        memcpy(line + PROXY_V1_MAX_HEADER - 1, "\r\n", 2);
        expect_error_at((const uint8_t *) line, sizeof(line), PROXY_V1_MAX_HEADER, -EBADMSG);
        line[PROXY_V1_MAX_HEADER - 1] = 'x';
        expect_error_at((const uint8_t *) line, sizeof(line), PROXY_V1_MAX_HEADER, -EBADMSG);
}

typedef struct BadLine {
        const char *ok;         /* a prefix that could still be valid */
        const char *rest;       /* its first octet rules the header out */
} BadLine;

static void test_v1_malformed(void **state) {
        static const BadLine bad[] = {
                { "", "proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n" },
                { "P", "roxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n" },
                { "PROXY", "\tTCP4 192.0.2.1 192.0.2.2 1 2\r\n" },
                { "PROXY ", " TCP4 192.0.2.1 192.0.2.2 1 2\r\n" },
                { "PROXY ", "tcp4 192.0.2.1 192.0.2.2 1 2\r\n" },
                { "PROXY TCP", "5 192.0.2.1 192.0.2.2 1 2\r\n" },
                { "PROXY TCP4", "\r\n" },
                { "PROXY TCP4 ", " 192.0.2.1 192.0.2.2 1 2\r\n" },
                { "PROXY TCP4 192.0.2.1 ", " 192.0.2.2 1 2\r\n" },      /* no dst */
                { "PROXY TCP4 192.0.2.1 192.0.2.2 ", " 1 2\r\n" },      /* no sport */
                { "PROXY TCP4 192.0.2.1 192.0.2.2 1 ", " 2\r\n" },
                { "PROXY TCP4 192.0.2.25", "6 192.0.2.2 1 2\r\n" },
                { "PROXY TCP4 192.0.2.0", "1 192.0.2.2 1 2\r\n" },       /* leading zero */
                { "PROXY TCP4 192.0.2", " 192.0.2.2 1 2\r\n" },          /* 3 octets */
                { "PROXY TCP4 192.0.2.1", ".1 192.0.2.2 1 2\r\n" },      /* 5 octets */
                { "PROXY TCP4 200", "1:db8::1 192.0.2.2 1 2\r\n" },      /* v6 in TCP4 */
                { "PROXY TCP4 192", "\r\n" },
                { "PROXY TCP6 192", ".0.2.1 ::1 1 2\r\n" },              /* v4 in TCP6 */
                { "PROXY TCP6 :", "1 ::1 1 2\r\n" },
                { "PROXY TCP6 ::", ": ::1 1 2\r\n" },
                { "PROXY TCP6 1::2:", ":3 ::1 1 2\r\n" },                /* two "::" */
                { "PROXY TCP6 1:2:3:4:5:6:7:8", ":9 ::1 1 2\r\n" },      /* nine groups */
                { "PROXY TCP6 1:2:3:4:5:6:7", " ::1 1 2\r\n" },          /* seven groups */
                { "PROXY TCP6 1:2:3:4:5:6:7::", "8 ::1 1 2\r\n" },       /* "::" for none */
                { "PROXY TCP6 1:2:3:4:5:6::1", ".2.3.4 ::1 1 2\r\n" },   /* v4 tail too far */
                { "PROXY TCP6 1234", "56:: ::1 1 2\r\n" },
                { "PROXY TCP6 ::1", "g ::1 1 2\r\n" },
                { "PROXY TCP6 2001:db8::1 ::1 1 ", " 2\r\n" },
                { "PROXY TCP4 192.0.2.1 192.0.2.2 6553", "6 2\r\n" },    /* port 65536 */
                { "PROXY TCP4 192.0.2.1 192.0.2.2 1 9999", "9\r\n" },
                { "PROXY TCP4 192.0.2.1 192.0.2.2 0", "1 2\r\n" },       /* leading zero */
                { "PROXY TCP4 192.0.2.1 192.0.2.2 ", "+1 2\r\n" },
                { "PROXY TCP4 192.0.2.1 192.0.2.2 ", "-1 2\r\n" },
                { "PROXY TCP4 192.0.2.1 192.0.2.2 1 ", "\r\n" },          /* no dport */
                { "PROXY TCP4 192.0.2.1 192.0.2.2 1 2", " 3\r\n" },       /* extra field */
                { "PROXY TCP4 192.0.2.1 192.0.2.2 1 2", " \r\n" },
                { "PROXY TCP4 192.0.2.1 192.0.2.2 1 2", "\n" },           /* LF only */
                { "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r", "\r\n" },
                { "PROXY UNKNOWN", "X\r\n" },
                { "PROXY UNKNOWN", "\n" },
                { "PROXY UNKNOWN\r", "X" },
                { "PROXY UNKNOWN abc", "\ndef\r\n" },
                { "PROXY UNKNOW", "\r\n" },
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char line[256];
                size_t ok = strlen(bad[i].ok);
                int n = snprintf(line, sizeof(line), "%s%s", bad[i].ok, bad[i].rest);

                assert_true(n > 0 && (size_t) n < sizeof(line));
                expect_error_at((const uint8_t *) line, (size_t) n, ok + 1, -EBADMSG);
        }
}

static void test_not_proxy(void **state) {
        static const uint8_t ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
        static const uint8_t v1_then_v2[] = { 'P', '\r' };
        static const uint8_t v2_then_v1[] = { '\r', '\n', 'P' };
        ProxyInfo info;

        /* A plain IPFIX peer is rejected on its first octet. */
        sentinel(&info);
        assert_int_equal(proxy_parse(ipfix_msg, 1, &info), -EBADMSG);
        expect_error_at(ipfix_msg, sizeof(ipfix_msg), 1, -EBADMSG);
        expect_error_at(ssh, sizeof(ssh) - 1, 1, -EBADMSG);
        expect_error_at(v1_then_v2, sizeof(v1_then_v2), 2, -EBADMSG);
        expect_error_at(v2_then_v1, sizeof(v2_then_v1), 3, -EBADMSG);
        assert_int_equal(proxy_parse(NULL, 0, &info), 0);
        assert_untouched(&info);
}

/* Writes a v2 header: signature, @vc, @fam, length @blen, then @body. */
static size_t v2_build(uint8_t *buf, uint8_t vc, uint8_t fam, const uint8_t *body,
                       size_t blen) {
        static const uint8_t sig[] = { V2_SIG };

        memcpy(buf, sig, sizeof(sig));
        buf[12] = vc;
        buf[13] = fam;
        buf[14] = (uint8_t) (blen >> 8);
        buf[15] = (uint8_t) blen;
        if (blen > 0)
                memcpy(buf + 16, body, blen);
        return 16 + blen;
}

static const uint8_t body_v4[] = { 192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x12, 0x83 };
static const uint8_t body_v6[] = {
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0x04, 0x00, 0x12, 0x83,
};
/* ALPN "h2", an empty NOOP, an AWS VPC endpoint id. */
static const uint8_t tlvs[] = {
        0x01, 0x00, 0x02, 'h', '2',
        0x04, 0x00, 0x00,
        0xea, 0x00, 0x06, 0x01, 'v', 'p', 'c', 'e', '1',
};

static void test_v2_proxy_v4(void **state) {
        uint8_t buf[128], body[64];
        ProxyInfo i;
        size_t n;

        n = v2_build(buf, 0x21, 0x11, body_v4, sizeof(body_v4));
        assert_int_equal(n, 28);
        i = expect_header(buf, n);
        assert_int_equal(i.family, AF_INET);
        assert_false(i.local);
        check_in4(&i.src, "192.0.2.1", 56324);
        check_in4(&i.dst, "198.51.100.2", 4739);

        memcpy(body, body_v4, sizeof(body_v4));
        memcpy(body + sizeof(body_v4), tlvs, sizeof(tlvs));
        n = v2_build(buf, 0x21, 0x11, body, sizeof(body_v4) + sizeof(tlvs));
        i = expect_header(buf, n);
        assert_int_equal(n, 28 + sizeof(tlvs));
        check_in4(&i.src, "192.0.2.1", 56324);
        check_in4(&i.dst, "198.51.100.2", 4739);

        /* DGRAM: accepted, the address is still the exporter's. */
        n = v2_build(buf, 0x21, 0x12, body_v4, sizeof(body_v4));
        i = expect_header(buf, n);
        assert_int_equal(i.family, AF_INET);
        check_in4(&i.src, "192.0.2.1", 56324);
}

static void test_v2_proxy_v6(void **state) {
        uint8_t buf[128], body[64];
        ProxyInfo i;
        size_t n;

        n = v2_build(buf, 0x21, 0x21, body_v6, sizeof(body_v6));
        assert_int_equal(n, 52);
        i = expect_header(buf, n);
        assert_int_equal(i.family, AF_INET6);
        assert_false(i.local);
        check_in6(&i.src, "2001:db8::1", 1024);
        check_in6(&i.dst, "2001:db8:0:1::2", 4739);

        memcpy(body, body_v6, sizeof(body_v6));
        memcpy(body + sizeof(body_v6), tlvs, sizeof(tlvs));
        n = v2_build(buf, 0x21, 0x22, body, sizeof(body_v6) + sizeof(tlvs));
        i = expect_header(buf, n);
        assert_int_equal(i.family, AF_INET6);
        check_in6(&i.src, "2001:db8::1", 1024);
        check_in6(&i.dst, "2001:db8:0:1::2", 4739);
}

static void test_v2_local_unspec(void **state) {
        uint8_t buf[PROXY_MAX_HEADER], body[PROXY_MAX_HEADER] = { 0 };
        ProxyInfo i;
        size_t n;

        /* LOCAL health check, bare. */
        n = v2_build(buf, 0x20, 0x00, NULL, 0);
        i = expect_header(buf, n);
        assert_int_equal(n, 16);
        assert_int_equal(i.family, AF_UNSPEC);
        assert_true(i.local);

        /* LOCAL with an address block (even a short or UNIX one): discarded unread. */
        n = v2_build(buf, 0x20, 0x11, body_v4, sizeof(body_v4));
        i = expect_header(buf, n);
        assert_int_equal(i.family, AF_UNSPEC);
        assert_true(i.local);
        n = v2_build(buf, 0x20, 0x21, body_v4, 5);
        assert_true(expect_header(buf, n).local);
        n = v2_build(buf, 0x20, 0x31, body, 216);
        assert_true(expect_header(buf, n).local);

        /* PROXY with UNSPEC: the socket peer is used; the block is skipped. */
        n = v2_build(buf, 0x21, 0x00, NULL, 0);
        i = expect_header(buf, n);
        assert_int_equal(i.family, AF_UNSPEC);
        assert_false(i.local);
        n = v2_build(buf, 0x21, 0x00, body_v6, 7);
        assert_int_equal(expect_header(buf, n).family, AF_UNSPEC);
}

static void test_v2_malformed(void **state) {
        uint8_t buf[PROXY_MAX_HEADER + 64], body[PROXY_MAX_HEADER] = { 0 };
        ProxyInfo i;
        size_t n;

        /* Signature mismatch on its last octet. */
        n = v2_build(buf, 0x21, 0x11, body_v4, sizeof(body_v4));
        buf[11] = '\r';
        expect_error_at(buf, n, 12, -EBADMSG);

        /* Version nibble 1 and 3, command 2 and 0xf. */
        n = v2_build(buf, 0x11, 0x11, body_v4, sizeof(body_v4));
        expect_error_at(buf, n, 13, -EBADMSG);
        n = v2_build(buf, 0x31, 0x11, body_v4, sizeof(body_v4));
        expect_error_at(buf, n, 13, -EBADMSG);
        n = v2_build(buf, 0x22, 0x11, body_v4, sizeof(body_v4));
        expect_error_at(buf, n, 13, -EBADMSG);
        n = v2_build(buf, 0x2f, 0x11, body_v4, sizeof(body_v4));
        expect_error_at(buf, n, 13, -EBADMSG);

        /* Unspecified family/transport octets, for PROXY and LOCAL alike. */
        n = v2_build(buf, 0x21, 0x13, body_v4, sizeof(body_v4));
        expect_error_at(buf, n, 14, -EBADMSG);
        n = v2_build(buf, 0x21, 0x41, body_v4, sizeof(body_v4));
        expect_error_at(buf, n, 14, -EBADMSG);
        n = v2_build(buf, 0x21, 0x10, body_v4, sizeof(body_v4));
        expect_error_at(buf, n, 14, -EBADMSG);
        n = v2_build(buf, 0x20, 0x01, NULL, 0);
        expect_error_at(buf, n, 14, -EBADMSG);

        /* UNIX with PROXY: well-formed but unsupported, said on the family octet. */
        n = v2_build(buf, 0x21, 0x31, body, 216);
        expect_error_at(buf, n, 14, -EPROTONOSUPPORT);
        n = v2_build(buf, 0x21, 0x32, body, 216);
        expect_error_at(buf, n, 14, -EPROTONOSUPPORT);

        /* Address block shorter than the family needs. */
        n = v2_build(buf, 0x21, 0x11, body_v4, 11);
        expect_error_at(buf, n, 16, -EBADMSG);
        n = v2_build(buf, 0x21, 0x21, body_v6, 35);
        expect_error_at(buf, n, 16, -EBADMSG);
        n = v2_build(buf, 0x21, 0x21, body_v4, sizeof(body_v4));
        expect_error_at(buf, n, 16, -EBADMSG);

        /* The cap: a whole header of PROXY_MAX_HEADER is fine (one big TLV)... */
        memcpy(body, body_v4, sizeof(body_v4));
        body[12] = 0xe0;
        body[13] = (uint8_t) ((PROXY_MAX_HEADER - 16 - 12 - 3) >> 8);
        body[14] = (uint8_t) (PROXY_MAX_HEADER - 16 - 12 - 3);
        n = v2_build(buf, 0x21, 0x11, body, PROXY_MAX_HEADER - 16);
        assert_int_equal(n, PROXY_MAX_HEADER);
        i = expect_header(buf, n);
        check_in4(&i.src, "192.0.2.1", 56324);
        /* ... one more octet fails on the length's low octet, 4 << 8 on its high one. */
        body[14]++;
        n = v2_build(buf, 0x21, 0x11, body, PROXY_MAX_HEADER - 16 + 1);
        expect_error_at(buf, n, 16, -EBADMSG);
        n = v2_build(buf, 0x21, 0x11, body, 1024);
        expect_error_at(buf, 64, 15, -EBADMSG);
        (void) v2_build(buf, 0x20, 0x00, NULL, 0);
        buf[14] = buf[15] = 0xff;
        expect_error_at(buf, 64, 15, -EBADMSG);

        /* TLVs: value past the block, a partial TLV header at its end. */
        memcpy(body, body_v4, sizeof(body_v4));
        memcpy(body + 12, tlvs, sizeof(tlvs));
        body[12 + 2] = 3;       /* ALPN claims 3 octets, eating the NOOP's type... */
        n = v2_build(buf, 0x21, 0x11, body, 12 + sizeof(tlvs));
        /* ... so the next header reads type 0, length 0x00ea: past the block, known once
         * its 3 octets at 16 + 12 + 6 are in. */
        expect_error_at(buf, n, 16 + 12 + 6 + 3, -EBADMSG);
        memcpy(body + 12, tlvs, sizeof(tlvs));
        body[12 + 10] = 7;      /* the last TLV (at 8) overruns the block by one */
        n = v2_build(buf, 0x21, 0x11, body, 12 + sizeof(tlvs));
        expect_error_at(buf, n, 16 + 12 + 8 + 3, -EBADMSG);
        body[12 + 10] = 6;      /* right again, but 2 octets follow: no room for a TLV */
        n = v2_build(buf, 0x21, 0x11, body, 12 + sizeof(tlvs) + 2);
        expect_error_at(buf, n, 16 + 12 + 8 + 3, -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_v1_tcp4),
                cmocka_unit_test(test_v1_tcp6),
                cmocka_unit_test(test_v1_unknown),
                cmocka_unit_test(test_v1_malformed),
                cmocka_unit_test(test_not_proxy),
                cmocka_unit_test(test_v2_proxy_v4),
                cmocka_unit_test(test_v2_proxy_v6),
                cmocka_unit_test(test_v2_local_unspec),
                cmocka_unit_test(test_v2_malformed),
        };
        return cmocka_run_group_tests_name("proxy-proto", tests, NULL, NULL);
}
