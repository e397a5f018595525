/* SPDX-License-Identifier: MIT */
/*
 * netflow9.c - v9 to IPFIX rewriting; bounds-checked, allocation-free.
 */
#include <errno.h>
#include <string.h>

#include "ipfix.h"
#include "netflow9.h"
#include "wire.h"

/* Copies template records of a v9 template flowset, dropping those with enterprise-range
 * field types. Returns octets written. */
static int translate_templates(const uint8_t *p, size_t len, uint8_t *o, unsigned *dropped) {
        size_t off = 0, w = 0;

        while (len - off >= 4) {
                uint16_t id = wire_read_u16(p + off), count = wire_read_u16(p + off + 2);
                size_t rec = 4 + (size_t) count * 4;
                bool ok = true;

                if (id == 0 && count == 0)
                        break;                  /* padding */
                if (rec > len - off)
                        return -EBADMSG;
                for (unsigned i = 0; i < count; i++)
                        if (wire_read_u16(p + off + 4 + i * 4) & IPFIX_ENTERPRISE_BIT)
                                ok = false;
                if (ok) {
                        memcpy(o + w, p + off, rec);
                        w += rec;
                } else
                        (*dropped)++;
                off += rec;
        }
        return (int) w;
}

/* v9 options template: id, scope length (octets), option length (octets), fields.
 * IPFIX: id, field count, scope field count, fields. */
static int translate_options(const uint8_t *p, size_t len, uint8_t *o, unsigned *dropped) {
        size_t off = 0, w = 0;

        while (len - off >= 6) {
                uint16_t id = wire_read_u16(p + off);
                uint16_t slen = wire_read_u16(p + off + 2), olen = wire_read_u16(p + off + 4);
                size_t rec = 6 + (size_t) slen + olen;
                bool ok = true;

                if (id == 0 && slen == 0 && olen == 0)
                        break;
                if (slen % 4 || olen % 4 || slen == 0 || rec > len - off)
                        return -EBADMSG;
                for (size_t i = 6; i < rec; i += 4)
                        if (wire_read_u16(p + off + i) & IPFIX_ENTERPRISE_BIT)
                                ok = false;
                if (ok) {
                        wire_write_u16(o + w, id);
                        wire_write_u16(o + w + 2, (uint16_t) ((slen + olen) / 4));
                        wire_write_u16(o + w + 4, (uint16_t) (slen / 4));
                        memcpy(o + w + 6, p + off + 6, rec - 6);
                        w += rec;
                } else
                        (*dropped)++;
                off += rec;
        }
        return (int) w;
}

int netflow9_to_ipfix(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *ret_len,
                      uint64_t *ret_init_ms, unsigned *ret_dropped) {
        size_t off = NETFLOW9_HEADER_SIZE, w = IPFIX_HEADER_SIZE;
        uint32_t uptime, secs;
        unsigned dropped = 0;

        if (len < NETFLOW9_HEADER_SIZE || wire_read_u16(in) != NETFLOW9_VERSION || cap < len ||
            len > IPFIX_MAX_MESSAGE + (NETFLOW9_HEADER_SIZE - IPFIX_HEADER_SIZE))
                return -EBADMSG;
        uptime = wire_read_u32(in + 4);
        secs = wire_read_u32(in + 8);

        wire_write_u16(out, IPFIX_VERSION);
        wire_write_u32(out + 4, secs);
        memcpy(out + 8, in + 12, 4);            /* sequence */
        memcpy(out + 12, in + 16, 4);           /* source id -> observation domain */

        while (len - off >= 4) {
                uint16_t fsid = wire_read_u16(in + off), fslen = wire_read_u16(in + off + 2);
                const uint8_t *body = in + off + 4;
                size_t set_at = w;
                int n;

                if (fslen < 4 || fslen > len - off)
                        return -EBADMSG;
                w += 4;
                if (fsid == 0)
                        n = translate_templates(body, fslen - 4u, out + w, &dropped);
                else if (fsid == 1)
                        n = translate_options(body, fslen - 4u, out + w, &dropped);
                else if (fsid >= 256) {
                        memcpy(out + w, body, fslen - 4u);
                        n = fslen - 4;
                } else
                        n = 0;                  /* reserved flowset ids: skipped */
                if (n < 0)
                        return n;
                if (n == 0) {
                        w = set_at;             /* drop an empty set */
                } else {
                        wire_write_u16(out + set_at, fsid == 0 ? IPFIX_SET_TEMPLATE :
                                                     fsid == 1 ? IPFIX_SET_OPTIONS_TEMPLATE : fsid);
                        wire_write_u16(out + set_at + 2, (uint16_t) (n + 4));
                        w += (size_t) n;
                }
                off += fslen;
        }
        /* Some exporters pad the datagram after the last flowset; anything left is ignored. */
        wire_write_u16(out + 2, (uint16_t) w);
        *ret_len = w;
        *ret_init_ms = (uint64_t) secs * 1000u - uptime;
        if (ret_dropped)
                *ret_dropped = dropped;
        return 0;
}
