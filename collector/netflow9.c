/* SPDX-License-Identifier: MIT */
/*
 * netflow9.c - v9 to IPFIX rewriting; bounds-checked, allocation-free.
 *
 * Every read is checked against the flowset it belongs to, every write against the room
 * left in the output (the smaller of @cap and 65535 octets, see netflow9.h): the result can
 * be longer than the input because vendor field types gain a 4-octet PEN.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "ipfix.h"
#include "macro.h"
#include "netflow9.h"
#include "wire.h"

_Static_assert(NETFLOW9_MAX_OUTPUT == IPFIX_MAX_MESSAGE, "the IPFIX length field's maximum");

static bool all_zero(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

/* Octets of translated field specifiers for @count v9 (type, length) pairs at @p. */
static size_t fields_size(const uint8_t *p, size_t count) {
        size_t n = count * 4;

        for (size_t i = 0; i < count; i++)
                if (wire_read_u16(p + i * 4) & IPFIX_ENTERPRISE_BIT)
                        n += 4;
        return n;
}

/* Writes @count field specifiers; a vendor type keeps its two octets (type & 0x7fff with the
 * enterprise bit is the type itself) and gains NETFLOW9_VENDOR_PEN. The caller checked room
 * with fields_size(). Returns octets written. */
static size_t write_fields(const uint8_t *p, size_t count, uint8_t *o) {
        size_t w = 0;

        for (size_t i = 0; i < count; i++) {
                memcpy(o + w, p + i * 4, 4);
                w += 4;
                if (wire_read_u16(p + i * 4) & IPFIX_ENTERPRISE_BIT) {
                        wire_write_u32(o + w, NETFLOW9_VENDOR_PEN);
                        w += 4;
                }
        }
        return w;
}

/* Translates the template records of a v9 template flowset into at most @room octets at @o,
 * dropping (and counting) records without fields. Returns octets written, -EBADMSG or
 * -EMSGSIZE (no room). */
static int translate_templates(const uint8_t *p, size_t len, uint8_t *o, size_t room,
                               unsigned *dropped) {
        size_t off = 0, w = 0;

        while (len - off >= 4) {
                uint16_t id = wire_read_u16(p + off), count = wire_read_u16(p + off + 2);
                size_t rec = 4 + (size_t) count * 4, need;

                if (id == 0 && count == 0)
                        break;                  /* padding */
                if (rec > len - off)
                        return -EBADMSG;
                if (count == 0) {
                        /* An IPFIX withdrawal if copied; v9 has none: malformed. */
                        (*dropped)++;
                        off += rec;
                        continue;
                }
                need = 4 + fields_size(p + off + 4, count);
                if (need > room - w)
                        return -EMSGSIZE;
                memcpy(o + w, p + off, 4);
                w += 4;
                w += write_fields(p + off + 4, count, o + w);
                off += rec;
        }
        return (int) w;
}

/* v9 options template: id, scope length (octets), option length (octets), fields.
 * IPFIX: id, field count, scope field count, fields. Same contract as translate_templates(). */
static int translate_options(const uint8_t *p, size_t len, uint8_t *o, size_t room) {
        size_t off = 0, w = 0;

        while (len - off >= 6) {
                uint16_t id = wire_read_u16(p + off);
                uint16_t slen = wire_read_u16(p + off + 2), olen = wire_read_u16(p + off + 4);
                size_t rec = 6 + (size_t) slen + olen, count = ((size_t) slen + olen) / 4, need;

                if (id == 0 && slen == 0 && olen == 0)
                        break;
                if (slen % 4 || olen % 4 || slen == 0 || rec > len - off)
                        return -EBADMSG;
                need = 6 + fields_size(p + off + 6, count);
                if (need > room - w)
                        return -EMSGSIZE;
                wire_write_u16(o + w, id);
                wire_write_u16(o + w + 2, (uint16_t) count);
                wire_write_u16(o + w + 4, (uint16_t) (slen / 4));
                w += 6;
                w += write_fields(p + off + 6, count, o + w);
                off += rec;
        }
        return (int) w;
}

int netflow9_to_ipfix(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *ret_len,
                      uint64_t *ret_init_ms, unsigned *ret_dropped) {
        size_t off = NETFLOW9_HEADER_SIZE, w = IPFIX_HEADER_SIZE;
        size_t lim = MIN(cap, (size_t) NETFLOW9_MAX_OUTPUT);
        /* Running out of room is -ENOBUFS when the caller's buffer is the limit. */
        int nospace = cap < NETFLOW9_MAX_OUTPUT ? -ENOBUFS : -EMSGSIZE;
        uint32_t uptime, secs;
        unsigned dropped = 0;

        if (len < NETFLOW9_HEADER_SIZE || wire_read_u16(in) != NETFLOW9_VERSION)
                return -EBADMSG;
        if (lim < IPFIX_HEADER_SIZE)
                return -ENOBUFS;
        uptime = wire_read_u32(in + 4);
        secs = wire_read_u32(in + 8);

        wire_write_u16(out, IPFIX_VERSION);
        wire_write_u32(out + 4, secs);
        memcpy(out + 8, in + 12, 4);            /* sequence */
        memcpy(out + 12, in + 16, 4);           /* source id -> observation domain */

        while (len - off >= 4) {
                uint16_t fsid = wire_read_u16(in + off), fslen = wire_read_u16(in + off + 2);
                const uint8_t *body = in + off + 4;
                /* The set's content goes after its header; an empty set takes no room, so
                 * the header's room is only needed once there is content. */
                size_t at = MIN(w + 4, lim), room = lim - at, body_len;
                int n;

                if (fslen < 4) {
                        /* Exporters pad the datagram with zeros after the last flowset
                         * (Cisco ACI 64 octets, Palo Alto 8.1 1220), which reads as flowset
                         * 0 of length 0: the end. Anything else is garbage. */
                        if (all_zero(in + off, len - off))
                                break;
                        return -EBADMSG;
                }
                if (fslen > len - off)
                        return -EBADMSG;
                body_len = fslen - 4u;
                if (fsid == 0)
                        n = translate_templates(body, body_len, out + at, room, &dropped);
                else if (fsid == 1)
                        n = translate_options(body, body_len, out + at, room);
                else if (fsid >= 256) {
                        if (body_len > room)
                                return nospace;
                        memcpy(out + at, body, body_len);
                        n = (int) body_len;
                } else
                        n = 0;                  /* reserved flowset ids: skipped */
                if (n == -EMSGSIZE)
                        return nospace;
                if (n < 0)
                        return n;
                if (n > 0) {                    /* n > 0 fit in room: at == w + 4 */
                        wire_write_u16(out + w, fsid == 0 ? IPFIX_SET_TEMPLATE :
                                                fsid == 1 ? IPFIX_SET_OPTIONS_TEMPLATE : fsid);
                        wire_write_u16(out + w + 2, (uint16_t) (n + 4));
                        w += 4 + (size_t) n;
                }                               /* else an empty set is dropped */
                off += fslen;
        }
        /* A tail of fewer than 4 octets cannot hold a flowset header and is ignored. */
        wire_write_u16(out + 2, (uint16_t) w);
        *ret_len = w;
        *ret_init_ms = (uint64_t) secs * 1000u - uptime;
        if (ret_dropped)
                *ret_dropped = dropped;
        return 0;
}
