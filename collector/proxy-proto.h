/* SPDX-License-Identifier: MIT */
/*
 * proxy-proto.h - PROXY protocol (HAProxy spec, versions 1 and 2) header parser for the
 * collector's TCP listeners: a load balancer (Envoy Gateway, HAProxy, cloud NLBs) in front of
 * the IPFIX stream prepends one header naming the real exporter address.
 *
 * The parser is a pure function over the bytes received so far: no state, no allocation, no
 * logging. It answers "complete", "need more" or "can never become valid" for every prefix,
 * so a caller simply re-runs it on its receive buffer after each read. Decisions only ever
 * depend on octets already seen, which gives the invariant the fuzz target checks: over the
 * growing prefixes of one stream the result is 0 for a while, then one fixed value (a
 * length with the same addresses, or an error) for every longer prefix.
 *
 * Choices where the spec leaves room:
 * - v1 is strict: single spaces, upper-case keywords, CRLF; addresses must match the
 *   protocol (TCP4: dotted quad; TCP6: IPv6 text form, a dotted-quad tail allowed) and pass
 *   inet_pton(); IPv4 octets and ports are plain decimal without sign or leading zeros ("0"
 *   itself is fine; IPv6 groups may have them, as inet_pton allows), ports 0..65535. "UNKNOWN" may be followed by a space and anything except CR/LF, which is
 *   ignored (spec 2.1).
 * - v2 families: INET and INET6 with STREAM or DGRAM are accepted (the address is still the
 *   exporter's; the transport of the hop before the proxy does not change that). UNIX
 *   (0x31, 0x32) with the PROXY command is -EPROTONOSUPPORT: a socket path names no
 *   exporter. Any other family byte is -EBADMSG, as the spec requires.
 * - v2 LOCAL (health checks) is accepted with any specified family byte; its address block
 *   and TLVs are skipped unread (spec: "discard the protocol block"). So is the block of a
 *   PROXY header with the UNSPEC family (0x00), which yields AF_UNSPEC like v1 "UNKNOWN".
 * - v2 PROXY TLVs are walked and skipped: each must fit in the header, and the TLV list must
 *   fill it exactly (no trailing partial TLV). CRC32C TLVs are not verified.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Spec 2.1: the longest v1 line, "PROXY TCP6 <addr> <addr> 65535 65535\r\n" included. */
#define PROXY_V1_MAX_HEADER 107u
/* v2 fixed part: 12-octet signature, version/command, family/transport, 16-bit length. */
#define PROXY_V2_FIXED_HEADER 16u
/*
 * Cap on a whole v2 header (fixed part + addresses + TLVs). The wire format allows
 * 16 + 65535; 1024 leaves 792 octets of TLVs after the largest (UNIX) address block and over
 * 970 after IPv6, more than the usual senders put there together (AWS/GCP/Azure endpoint
 * ids, HAProxy's SNI, ALPN, authority, unique id and SSL sub-TLVs). It bounds what a peer
 * makes the caller buffer before the first IPFIX octet. A longer header is -EBADMSG, as soon
 * as its length field arrives.
 */
#define PROXY_MAX_HEADER 1024u

typedef struct ProxyInfo {
        int family;                     /* AF_INET, AF_INET6, or AF_UNSPEC for LOCAL / UNKNOWN */
        struct sockaddr_storage src, dst;       /* filled for AF_INET/AF_INET6 */
        bool local;                     /* v2 LOCAL command (health checks): use the socket peer */
} ProxyInfo;

/**
 * proxy_parse() - parses a PROXY header at the start of a stream buffer.
 * @p:   the octets received on the connection so far (may be NULL when @len is 0)
 * @len: how many
 * @ret: the parsed header, set only when a value > 0 is returned
 *
 * On success, @ret->family is AF_INET or AF_INET6 with @ret->src and @ret->dst holding a
 * struct sockaddr_in / sockaddr_in6 (ports in network byte order), or AF_UNSPEC with both
 * zeroed for v1 "UNKNOWN", v2 PROXY with the UNSPEC family and v2 LOCAL (@ret->local set):
 * the caller then uses the socket's own peer address.
 *
 * The first octet decides the version ('P' for v1, '\r' for v2); any other first octet
 * (a plain IPFIX stream starts with 0x00 0x0a) is -EBADMSG with just that octet. 0 is
 * returned only while @p is a strict prefix of a header that can still become valid, with
 * one documented approximation: a v1 line is given until PROXY_V1_MAX_HEADER octets to end
 * in CRLF even when its remaining fields could no longer fit.
 *
 * Return: > 0 the exact header length, at most PROXY_MAX_HEADER: the IPFIX stream starts at
 *         @p + that (octets after it are never read);
 *         0 when more octets are needed (the caller reads more and must cap the wait itself);
 *         -EBADMSG when the octets are not a valid PROXY v1/v2 header or the v2 header is
 *         longer than PROXY_MAX_HEADER (the connection is to be rejected);
 *         -EPROTONOSUPPORT for a well-formed v2 PROXY header with the UNIX family, returned
 *         as soon as the family octet arrives.
 */
int proxy_parse(const uint8_t *p, size_t len, ProxyInfo *ret);
