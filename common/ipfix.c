/* SPDX-License-Identifier: MIT */
/*
 * ipfix.c - bounds-checked RFC 7011 parsing: message framing, template records, record
 * length walking, and the template serialization codec. No allocation except the template
 * objects handed to the caller.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipfix.h"
#include "macro.h"
#include "wire.h"

int ipfix_header_parse(const uint8_t *p, size_t len, IpfixHeader *ret) {
        if (len < IPFIX_HEADER_SIZE)
                return -EBADMSG;
        ret->version = wire_read_u16(p);
        ret->length = wire_read_u16(p + 2);
        ret->export_time = wire_read_u32(p + 4);
        ret->sequence = wire_read_u32(p + 8);
        ret->odid = wire_read_u32(p + 12);
        return 0;
}

void ipfix_write_header(uint8_t *p, uint32_t export_time, uint32_t odid) {
        wire_write_u16(p, IPFIX_VERSION);
        wire_write_u16(p + 2, IPFIX_HEADER_SIZE);
        wire_write_u32(p + 4, export_time);
        wire_write_u32(p + 8, 0);
        wire_write_u32(p + 12, odid);
}

int ipfix_frame(const uint8_t *p, size_t len, size_t max_msg, size_t *ret_msglen) {
        uint16_t msglen;

        if (len < 2)
                return 0;
        if (wire_read_u16(p) != IPFIX_VERSION)
                return -EPROTO;
        if (len < 4)
                return 0;
        msglen = wire_read_u16(p + 2);
        if (msglen < IPFIX_HEADER_SIZE)
                return -EBADMSG;
        if (msglen > max_msg)
                return -EMSGSIZE;
        if (len < msglen)
                return 0;
        *ret_msglen = msglen;
        return 1;
}

IpfixTemplate *ipfix_template_new(uint16_t id, uint16_t scope_count, uint16_t field_count) {
        IpfixTemplate *t = calloc(1, sizeof(*t) + (size_t) field_count * sizeof(IpfixField));
        if (!t)
                return NULL;
        t->id = id;
        t->scope_count = scope_count;
        t->field_count = field_count;
        return t;
}

IpfixTemplate *ipfix_template_dup(const IpfixTemplate *t) {
        size_t sz = sizeof(*t) + (size_t) t->field_count * sizeof(IpfixField);
        IpfixTemplate *c = malloc(sz);
        if (c)
                memcpy(c, t, sz);
        return c;
}

void ipfix_template_finish(IpfixTemplate *t) {
        uint32_t min = 0;
        t->varlen = false;
        for (unsigned i = 0; i < t->field_count; i++) {
                if (t->fields[i].len == IPFIX_VARLEN) {
                        t->varlen = true;
                        min += 1;
                } else
                        min += t->fields[i].len;
        }
        t->min_record_len = (uint16_t) MIN(min, 65535u);
}

bool ipfix_template_equal(const IpfixTemplate *a, const IpfixTemplate *b) {
        if (a->id != b->id || a->scope_count != b->scope_count ||
            a->field_count != b->field_count)
                return false;
        for (unsigned i = 0; i < a->field_count; i++)
                if (a->fields[i].pen != b->fields[i].pen || a->fields[i].id != b->fields[i].id ||
                    a->fields[i].len != b->fields[i].len)
                        return false;
        return true;
}

int ipfix_template_parse(const uint8_t *p, size_t len, bool options, IpfixTemplate **ret,
                         size_t *ret_used) {
        IpfixTemplate *t;
        uint16_t id, count, scope = 0;
        size_t off;

        if (len < 4)
                return -EBADMSG;
        id = wire_read_u16(p);
        count = wire_read_u16(p + 2);
        off = 4;
        if (id < IPFIX_SET_MIN_DATA)
                return -EBADMSG;
        if (count == 0) {       /* withdrawal: no scope count follows, even for options */
                *ret = NULL;
                *ret_used = off;
                return 1;
        }
        if (options) {
                if (len < 6)
                        return -EBADMSG;
                scope = wire_read_u16(p + 4);
                off = 6;
                if (scope == 0 || scope > count)
                        return -EBADMSG;
        }
        if (count > IPFIX_MAX_FIELDS)
                return -E2BIG;

        t = ipfix_template_new(id, scope, count);
        if (!t)
                return -ENOMEM;
        for (unsigned i = 0; i < count; i++) {
                uint16_t raw;
                if (len - off < 4)
                        goto bad;
                raw = wire_read_u16(p + off);
                t->fields[i].id = raw & (uint16_t) ~IPFIX_ENTERPRISE_BIT;
                t->fields[i].len = wire_read_u16(p + off + 2);
                off += 4;
                if (raw & IPFIX_ENTERPRISE_BIT) {
                        if (len - off < 4)
                                goto bad;
                        t->fields[i].pen = wire_read_u32(p + off);
                        off += 4;
                }
        }
        ipfix_template_finish(t);
        /* A record must occupy at least one octet, or a data set would hold infinitely many. */
        if (t->min_record_len == 0)
                goto bad;
        *ret = t;
        *ret_used = off;
        return 0;
bad:
        free(t);
        return -EBADMSG;
}

int ipfix_template_record_len(const IpfixTemplate *t, const uint8_t *p, size_t len) {
        size_t off = 0;

        if (!t->varlen)
                return len >= t->min_record_len ? t->min_record_len : -EBADMSG;
        for (unsigned i = 0; i < t->field_count; i++) {
                size_t flen = t->fields[i].len;
                if (flen == IPFIX_VARLEN) {
                        if (off >= len)
                                return -EBADMSG;
                        flen = p[off++];
                        if (flen == 255) {
                                if (len - off < 2)
                                        return -EBADMSG;
                                flen = wire_read_u16(p + off);
                                off += 2;
                        }
                }
                if (len - off < flen)
                        return -EBADMSG;
                off += flen;
        }
        return off > 0 ? (int) off : -EBADMSG;
}

int ipfix_template_count_records(const IpfixTemplate *t, const uint8_t *p, size_t len) {
        size_t off = 0;
        int n = 0;

        if (!t->varlen)
                return (int) (len / t->min_record_len);
        while (len - off >= t->min_record_len) {
                int r = ipfix_template_record_len(t, p + off, len - off);
                if (r < 0) {
                        /* Trailing bytes that cannot hold a record are padding only when the
                         * whole rest is zero (RFC 7011 3.3.1 says padding is zero). */
                        for (size_t i = off; i < len; i++)
                                if (p[i] != 0)
                                        return -EBADMSG;
                        break;
                }
                off += (size_t) r;
                n++;
        }
        return n;
}

size_t ipfix_template_serialized_size(const IpfixTemplate *t) {
        return 4 + (size_t) t->field_count * 8;
}

int ipfix_template_serialize(const IpfixTemplate *t, uint8_t *buf, size_t len) {
        if (len < ipfix_template_serialized_size(t))
                return -ENOBUFS;
        wire_write_u16(buf, t->scope_count);
        wire_write_u16(buf + 2, t->field_count);
        for (unsigned i = 0; i < t->field_count; i++) {
                uint8_t *f = buf + 4 + (size_t) i * 8;
                wire_write_u32(f, t->fields[i].pen);
                wire_write_u16(f + 4, t->fields[i].id);
                wire_write_u16(f + 6, t->fields[i].len);
        }
        return (int) ipfix_template_serialized_size(t);
}

int ipfix_template_deserialize(uint16_t id, const uint8_t *buf, size_t len,
                               IpfixTemplate **ret) {
        IpfixTemplate *t;
        uint16_t scope, count;

        if (len < 4 || id < IPFIX_SET_MIN_DATA)
                return -EBADMSG;
        scope = wire_read_u16(buf);
        count = wire_read_u16(buf + 2);
        if (count == 0 || scope > count)
                return -EBADMSG;
        if (count > IPFIX_MAX_FIELDS)
                return -E2BIG;
        if (len != 4 + (size_t) count * 8)
                return -EBADMSG;
        t = ipfix_template_new(id, scope, count);
        if (!t)
                return -ENOMEM;
        for (unsigned i = 0; i < count; i++) {
                const uint8_t *f = buf + 4 + (size_t) i * 8;
                t->fields[i].pen = wire_read_u32(f);
                t->fields[i].id = wire_read_u16(f + 4) & (uint16_t) ~IPFIX_ENTERPRISE_BIT;
                t->fields[i].len = wire_read_u16(f + 6);
        }
        ipfix_template_finish(t);
        if (t->min_record_len == 0) {
                free(t);
                return -EBADMSG;
        }
        *ret = t;
        return 0;
}
