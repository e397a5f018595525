/* SPDX-License-Identifier: MIT */
/*
 * hash.h - the seeded hash the mediator's tables share: a multiply-rotate over 8-byte words
 * with a splitmix64 finalizer. Seeds are random per table, so a peer cannot aim keys at one
 * bucket. Keys are whole words (callers pad their key structs).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

static inline uint64_t hash_rotl64(uint64_t x, unsigned r) {
        return (x << r) | (x >> (64 - r));
}

/* Hashes the first len & ~7 octets of @p. */
static inline uint64_t hash_words(const void *p, size_t len, uint64_t seed) {
        const uint8_t *b = p;
        uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);

        for (size_t i = 0; i + 8 <= len; i += 8) {
                uint64_t w;
                memcpy(&w, b + i, 8);
                h ^= w * 0xbf58476d1ce4e5b9ull;
                h = hash_rotl64(h, 29) * 0x94d049bb133111ebull;
        }
        h ^= h >> 30;
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 27;
        h *= 0x94d049bb133111ebull;
        h ^= h >> 31;
        return h;
}

/* A random seed; without entropy yet (early boot), one derived from @salt's address. */
static inline uint64_t hash_random_seed(const void *salt) {
        uint64_t s;

        if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t) sizeof(s))
                s = (uint64_t) (uintptr_t) salt * 0x9e3779b97f4a7c15ull;
        return s;
}

/* FNV-1a 64 of a string (NULL hashes like ""): the pod's ConfigVersion. */
static inline uint64_t hash_fnv1a64(const char *s) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (; s && *s; s++)
                h = (h ^ (uint8_t) *s) * UINT64_C(0x100000001b3);
        return h;
}

static inline size_t hash_pow2_at_least(size_t n) {
        size_t p = 1;
        while (p < n)
                p <<= 1;
        return p;
}
