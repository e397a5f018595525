/* SPDX-License-Identifier: MIT */
/*
 * ipfix-builder.h - tiny helpers for unit tests to write IPFIX messages byte by byte.
 * Header-only so each test executable stays self-contained.
 */
#pragma once

#include <stdint.h>
#include <string.h>

#include "wire.h"

typedef struct Msg {
        uint8_t b[65536];
        size_t len;
        size_t set_start;
} Msg;

static inline void msg_begin(Msg *m, uint16_t version, uint32_t export_time, uint32_t odid) {
        memset(m->b, 0, 16);
        wire_write_u16(m->b, version);
        wire_write_u32(m->b + 4, export_time);
        wire_write_u32(m->b + 12, odid);
        m->len = 16;
}
static inline void msg_u8(Msg *m, uint8_t v) {
        m->b[m->len++] = v;
}
static inline void msg_u16(Msg *m, uint16_t v) {
        wire_write_u16(m->b + m->len, v);
        m->len += 2;
}
static inline void msg_u32(Msg *m, uint32_t v) {
        wire_write_u32(m->b + m->len, v);
        m->len += 4;
}
static inline void msg_u64(Msg *m, uint64_t v) {
        wire_write_u64(m->b + m->len, v);
        m->len += 8;
}
static inline void msg_bytes(Msg *m, const void *p, size_t n) {
        memcpy(m->b + m->len, p, n);
        m->len += n;
}
static inline void msg_set_begin(Msg *m, uint16_t set_id) {
        m->set_start = m->len;
        msg_u16(m, set_id);
        msg_u16(m, 0);
}
static inline void msg_set_end(Msg *m) {
        wire_write_u16(m->b + m->set_start + 2, (uint16_t) (m->len - m->set_start));
}
static inline size_t msg_end(Msg *m) {
        wire_write_u16(m->b + 2, (uint16_t) m->len);
        return m->len;
}
/* Field specifier: id with enterprise bit when pen != 0. */
static inline void msg_field(Msg *m, uint16_t id, uint16_t len, uint32_t pen) {
        msg_u16(m, pen ? (uint16_t) (id | 0x8000) : id);
        msg_u16(m, len);
        if (pen)
                msg_u32(m, pen);
}
