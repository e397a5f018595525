/* SPDX-License-Identifier: MIT */
/*
 * pcap-read.h - a small, bounds-checked reader for classic libpcap files that yields the UDP
 * datagrams they carry, for tests that replay real exporter captures.
 *
 * Owns nothing: the reader walks a caller-owned buffer holding the whole file, and every
 * payload it returns points into that buffer. Every length (record header, link header,
 * IPv4/IPv6 header, extension headers, UDP length) is checked against the bytes actually
 * captured before use. Frames that are not complete, unfragmented UDP over IPv4 or IPv6 are
 * skipped and counted by reason, never guessed at.
 *
 * Supported: magic 0xa1b2c3d4 (microseconds) and 0xa1b23c4d (nanoseconds), in either byte
 * order; link types Ethernet (1, with 802.1Q/802.1ad tags), Linux cooked SLL (113) and
 * SLL2 (276), raw IP (101) and raw IPv4/IPv6 (228/229). pcapng is not supported.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PCAP_LINKTYPE_ETHERNET 1u
#define PCAP_LINKTYPE_RAW 101u
#define PCAP_LINKTYPE_LINUX_SLL 113u
#define PCAP_LINKTYPE_IPV4 228u
#define PCAP_LINKTYPE_IPV6 229u
#define PCAP_LINKTYPE_LINUX_SLL2 276u

#define PCAP_GLOBAL_HEADER_SIZE 24u
#define PCAP_RECORD_HEADER_SIZE 16u

typedef struct PcapSkips {
        unsigned not_ip;        /* ARP, LLDP, other ethertypes */
        unsigned not_udp;       /* TCP (BMP/BGP), ICMP, ... */
        unsigned fragments;     /* IPv4 MF/offset or IPv6 fragment header */
        unsigned truncated;     /* captured fewer bytes than the headers announce */
        unsigned malformed;     /* impossible header values */
} PcapSkips;

typedef struct PcapReader {
        const uint8_t *p;
        size_t len, off;
        bool swapped;           /* file written on a host of the other byte order */
        bool nsec;
        uint32_t linktype;
        unsigned frames;
        PcapSkips skips;
} PcapReader;

typedef struct PcapUdp {
        uint8_t family;         /* 4 or 6 */
        uint8_t src[16];        /* IPv4 in the first 4 octets for family 4 */
        uint8_t dst[16];
        uint16_t sport, dport;
        const uint8_t *payload; /* points into the reader's buffer */
        size_t len;
        unsigned frame;         /* 1-based frame number, as tshark numbers them */
} PcapUdp;

static inline uint16_t pcap_be16(const uint8_t *p) {
        return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}

static inline uint32_t pcap_file_u32(const PcapReader *r, const uint8_t *p) {
        if (r->swapped)
                return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
        return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

/**
 * pcap_reader_init() - checks the global header of a capture held in memory.
 * Return: 0, -EBADMSG when shorter than the global header, -EPROTONOSUPPORT for an unknown
 * magic (pcapng included) or an unsupported link type.
 */
static inline int pcap_reader_init(PcapReader *r, const uint8_t *p, size_t len) {
        uint32_t magic;

        memset(r, 0, sizeof(*r));
        if (len < PCAP_GLOBAL_HEADER_SIZE)
                return -EBADMSG;
        r->p = p;
        r->len = len;
        magic = pcap_file_u32(r, p);            /* as little-endian */
        if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du)
                r->swapped = false;
        else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
                r->swapped = true;
        else
                return -EPROTONOSUPPORT;
        r->nsec = magic == 0xa1b23c4du || magic == 0x4d3cb2a1u;
        r->linktype = pcap_file_u32(r, p + 20) & 0x0fffffffu;  /* upper bits: FCS info */
        switch (r->linktype) {
        case PCAP_LINKTYPE_ETHERNET:
        case PCAP_LINKTYPE_RAW:
        case PCAP_LINKTYPE_LINUX_SLL:
        case PCAP_LINKTYPE_IPV4:
        case PCAP_LINKTYPE_IPV6:
        case PCAP_LINKTYPE_LINUX_SLL2:
                break;
        default:
                return -EPROTONOSUPPORT;
        }
        r->off = PCAP_GLOBAL_HEADER_SIZE;
        return 0;
}

/* IP version from the link header: 4, 6, 0 for another protocol, -1 when truncated. */
static inline int pcap_link_strip(const PcapReader *r, const uint8_t **pp, size_t *plen) {
        const uint8_t *p = *pp;
        size_t len = *plen, hl;
        uint16_t type;

        switch (r->linktype) {
        case PCAP_LINKTYPE_ETHERNET:
                if (len < 14)
                        return -1;
                type = pcap_be16(p + 12);
                hl = 14;
                while (type == 0x8100 || type == 0x88a8) {      /* VLAN tags */
                        if (len - hl < 4)
                                return -1;
                        type = pcap_be16(p + hl + 2);
                        hl += 4;
                }
                break;
        case PCAP_LINKTYPE_LINUX_SLL:
                if (len < 16)
                        return -1;
                type = pcap_be16(p + 14);
                hl = 16;
                break;
        case PCAP_LINKTYPE_LINUX_SLL2:
                if (len < 20)
                        return -1;
                type = pcap_be16(p);
                hl = 20;
                break;
        case PCAP_LINKTYPE_IPV4:
                type = 0x0800;
                hl = 0;
                break;
        case PCAP_LINKTYPE_IPV6:
                type = 0x86dd;
                hl = 0;
                break;
        default:                                /* raw IP: the version nibble decides */
                if (len < 1)
                        return -1;
                type = (p[0] >> 4) == 4 ? 0x0800 : (p[0] >> 4) == 6 ? 0x86dd : 0;
                hl = 0;
                break;
        }
        *pp = p + hl;
        *plen = len - hl;
        return type == 0x0800 ? 4 : type == 0x86dd ? 6 : 0;
}

/* Fills @u from a UDP header at @p, @len octets of it up to the end of the IP payload.
 * Return: 1, or 0 after counting the skip. */
static inline int pcap_udp(PcapReader *r, const uint8_t *p, size_t len, PcapUdp *u) {
        uint16_t ulen;

        if (len < 8) {
                r->skips.truncated++;
                return 0;
        }
        ulen = pcap_be16(p + 4);
        if (ulen < 8) {
                r->skips.malformed++;
                return 0;
        }
        if (ulen > len) {
                r->skips.truncated++;
                return 0;
        }
        u->sport = pcap_be16(p);
        u->dport = pcap_be16(p + 2);
        u->payload = p + 8;
        u->len = ulen - 8u;
        return 1;
}

static inline int pcap_ipv4(PcapReader *r, const uint8_t *p, size_t len, PcapUdp *u) {
        size_t ihl, tot;

        if (len < 20) {
                r->skips.truncated++;
                return 0;
        }
        ihl = (size_t) (p[0] & 0x0f) * 4;
        tot = pcap_be16(p + 2);
        if ((p[0] >> 4) != 4 || ihl < 20 || tot < ihl) {
                r->skips.malformed++;
                return 0;
        }
        if (tot > len) {
                r->skips.truncated++;
                return 0;
        }
        if (pcap_be16(p + 6) & 0x3fff) {        /* MF set or a non-zero fragment offset */
                r->skips.fragments++;
                return 0;
        }
        if (p[9] != 17) {
                r->skips.not_udp++;
                return 0;
        }
        memset(u, 0, sizeof(*u));
        u->family = 4;
        memcpy(u->src, p + 12, 4);
        memcpy(u->dst, p + 16, 4);
        return pcap_udp(r, p + ihl, tot - ihl, u);
}

static inline int pcap_ipv6(PcapReader *r, const uint8_t *p, size_t len, PcapUdp *u) {
        size_t plen, off = 40;
        uint8_t nh;

        if (len < 40) {
                r->skips.truncated++;
                return 0;
        }
        if ((p[0] >> 4) != 6) {
                r->skips.malformed++;
                return 0;
        }
        plen = pcap_be16(p + 4);                /* 0 would be a jumbogram: not handled */
        if (plen == 0) {
                r->skips.malformed++;
                return 0;
        }
        if (plen > len - 40) {
                r->skips.truncated++;
                return 0;
        }
        len = 40 + plen;
        nh = p[6];
        for (;;) {
                if (nh == 17)
                        break;
                if (nh == 44) {
                        r->skips.fragments++;
                        return 0;
                }
                if (nh != 0 && nh != 43 && nh != 60) {  /* hop-by-hop, routing, dest opts */
                        r->skips.not_udp++;
                        return 0;
                }
                if (len - off < 8) {
                        r->skips.truncated++;
                        return 0;
                }
                {
                        size_t ext = ((size_t) p[off + 1] + 1) * 8;
                        if (ext > len - off) {
                                r->skips.truncated++;
                                return 0;
                        }
                        nh = p[off];
                        off += ext;
                }
        }
        memset(u, 0, sizeof(*u));
        u->family = 6;
        memcpy(u->src, p + 8, 16);
        memcpy(u->dst, p + 24, 16);
        return pcap_udp(r, p + off, len - off, u);
}

/**
 * pcap_reader_next_udp() - the next UDP datagram of the capture.
 * @ret: filled on 1; its payload points into the reader's buffer
 *
 * Frames that are not complete unfragmented UDP/IP are skipped and counted in r->skips.
 * Return: 1, 0 at the end of the file, -EBADMSG when a record header or its captured length
 * runs past the end of the file (a truncated capture).
 */
static inline int pcap_reader_next_udp(PcapReader *r, PcapUdp *ret) {
        while (r->off < r->len) {
                const uint8_t *p;
                size_t caplen;
                int v;

                if (r->len - r->off < PCAP_RECORD_HEADER_SIZE)
                        return -EBADMSG;
                caplen = pcap_file_u32(r, r->p + r->off + 8);
                if (caplen > r->len - r->off - PCAP_RECORD_HEADER_SIZE)
                        return -EBADMSG;
                p = r->p + r->off + PCAP_RECORD_HEADER_SIZE;
                r->off += PCAP_RECORD_HEADER_SIZE + caplen;
                r->frames++;

                v = pcap_link_strip(r, &p, &caplen);
                if (v < 0) {
                        r->skips.truncated++;
                        continue;
                }
                if (v == 0) {
                        r->skips.not_ip++;
                        continue;
                }
                if (v == 4 ? pcap_ipv4(r, p, caplen, ret) : pcap_ipv6(r, p, caplen, ret)) {
                        ret->frame = r->frames;
                        return 1;
                }
        }
        return 0;
}
