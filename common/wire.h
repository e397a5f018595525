/* SPDX-License-Identifier: MIT */
/*
 * wire.h - bounds-free big-endian readers and writers for network byte order fields.
 * Callers check lengths first; these helpers never touch more than the width they name
 * and never cast packet buffers to structs (alignment-safe memcpy).
 */
#pragma once

#include <stdint.h>
#include <string.h>

static inline uint16_t wire_read_u16(const uint8_t *p) {
        return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}
static inline uint32_t wire_read_u32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}
static inline uint64_t wire_read_u64(const uint8_t *p) {
        return (uint64_t) wire_read_u32(p) << 32 | wire_read_u32(p + 4);
}
/* Reads an unsigned big-endian integer of 1..8 octets (reduced-length encoding, RFC 7011 6.2). */
static inline uint64_t wire_read_uint(const uint8_t *p, unsigned len) {
        uint64_t v = 0;
        for (unsigned i = 0; i < len && i < 8; i++)
                v = v << 8 | p[i];
        return v;
}
static inline void wire_write_u16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
static inline void wire_write_u32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}
static inline void wire_write_u64(uint8_t *p, uint64_t v) {
        wire_write_u32(p, (uint32_t) (v >> 32));
        wire_write_u32(p + 4, (uint32_t) v);
}
