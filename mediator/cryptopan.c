/* SPDX-License-Identifier: MIT */
/*
 * cryptopan.c - Crypto-PAn over OpenSSL's AES-128-ECB, plus key-file parsing.
 *
 * The AES inputs for one address do not depend on earlier outputs (block i is the first i
 * address bits followed by pad bits), so all 32 (IPv4) or 128 (IPv6) blocks are built first
 * and encrypted in one EVP_EncryptUpdate() call, which lets AES-NI pipeline them. The bytes
 * of each block that only ever hold pad bits are written once, at creation.
 *
 * Caches are two-way set-associative and start zeroed. A zeroed slot reads as "address 0
 * (or ::) maps to 0": wrong only for the all-zero address, and that address always probes
 * the same set, so creation fills both ways of that one set with its real mapping and every
 * zeroed slot is then either correct or a miss. Only results OpenSSL actually produced are
 * cached.
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config.h"
#include "cryptopan.h"
#include "macro.h"

#define AES_BLOCK 16u
#define V4_BITS 32u
#define V6_BITS 128u
#define CACHE_WAYS 2u
#define V4_SET_BITS 15u
#define V6_SET_BITS 13u

_Static_assert((CACHE_WAYS << V4_SET_BITS) == CRYPTOPAN_V4_CACHE_SLOTS, "v4 cache size");
_Static_assert((CACHE_WAYS << V6_SET_BITS) == CRYPTOPAN_V6_CACHE_SLOTS, "v6 cache size");

typedef struct V4Slot {
        uint32_t in, out;
} V4Slot;

typedef struct V6Slot {
        uint8_t in[16], out[16];
} V6Slot;

struct CryptoPan {
        EVP_CIPHER_CTX *ctx;
        uint32_t pad_v4;                /* pad bits 0..31, host order */
        uint64_t pad_hi, pad_lo;        /* pad bits 0..63 and 64..127, host order */
        uint8_t in_v4[V4_BITS * AES_BLOCK];
        uint8_t in_v6[V6_BITS * AES_BLOCK];
        uint8_t out[V6_BITS * AES_BLOCK];
        V4Slot *v4_cache;
        V6Slot *v6_cache;
        CryptoPanStats stats;
};

static int encrypt_blocks(CryptoPan *c, const uint8_t *in, size_t n_blocks) {
        int len = (int) (n_blocks * AES_BLOCK), outl = 0;

        if (EVP_EncryptUpdate(c->ctx, c->out, &outl, in, len) != 1 || outl != len)
                return -EIO;
        return 0;
}

/* The mask of the first @i bits of a word (0 for i == 0, where shifting by the full width
 * would be undefined). */
static inline uint32_t mask32(unsigned i) {
        return i == 0 ? 0 : UINT32_MAX << (32 - i);
}

static inline uint64_t mask64(unsigned i) {
        return i == 0 ? 0 : UINT64_MAX << (64 - i);
}

static int compute_v4(CryptoPan *c, uint32_t a, uint32_t *ret) {
        uint32_t x = 0;
        int r;

        for (unsigned i = 0; i < V4_BITS; i++) {
                uint32_t m = mask32(i);
                uint32_t w = htobe32((a & m) | (c->pad_v4 & ~m));
                memcpy(c->in_v4 + i * AES_BLOCK, &w, sizeof(w));
        }
        r = encrypt_blocks(c, c->in_v4, V4_BITS);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < V4_BITS; i++)
                x |= (uint32_t) (c->out[i * AES_BLOCK] >> 7) << (31 - i);
        *ret = a ^ x;
        return 0;
}

static int compute_v6(CryptoPan *c, const uint8_t in[16], uint8_t out[16]) {
        uint64_t a_hi, a_lo, x_hi = 0, x_lo = 0;
        int r;

        memcpy(&a_hi, in, 8);
        memcpy(&a_lo, in + 8, 8);
        a_hi = be64toh(a_hi);
        a_lo = be64toh(a_lo);

        for (unsigned i = 0; i < V6_BITS; i++) {
                uint64_t hi, lo;

                if (i < 64) {
                        uint64_t m = mask64(i);
                        hi = (a_hi & m) | (c->pad_hi & ~m);
                        lo = c->pad_lo;
                } else {
                        uint64_t m = mask64(i - 64);
                        hi = a_hi;
                        lo = (a_lo & m) | (c->pad_lo & ~m);
                }
                hi = htobe64(hi);
                lo = htobe64(lo);
                memcpy(c->in_v6 + i * AES_BLOCK, &hi, 8);
                memcpy(c->in_v6 + i * AES_BLOCK + 8, &lo, 8);
        }
        r = encrypt_blocks(c, c->in_v6, V6_BITS);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 64; i++) {
                x_hi |= (uint64_t) (c->out[i * AES_BLOCK] >> 7) << (63 - i);
                x_lo |= (uint64_t) (c->out[(i + 64) * AES_BLOCK] >> 7) << (63 - i);
        }
        a_hi = htobe64(a_hi ^ x_hi);
        a_lo = htobe64(a_lo ^ x_lo);
        memcpy(out, &a_hi, 8);
        memcpy(out + 8, &a_lo, 8);
        return 0;
}

/* Fibonacci hashing: the top bits of a multiplication mix both ends of the address, so
 * neighbouring hosts and neighbouring networks both spread over the table. Returns the
 * first slot of the address's set. */
static inline size_t set_v4(uint32_t a) {
        return ((uint32_t) (a * 0x9e3779b1u) >> (32 - V4_SET_BITS)) * CACHE_WAYS;
}

static inline size_t set_v6(const uint8_t a[16]) {
        uint64_t hi, lo;

        memcpy(&hi, a, 8);
        memcpy(&lo, a + 8, 8);
        return (size_t) (((hi ^ (lo << 32 | lo >> 32)) * 0x9e3779b97f4a7c15ull) >>
                         (64 - V6_SET_BITS)) * CACHE_WAYS;
}

/* Two-way sets, most recently used first: a hit in way 1 swaps it to the front, and a miss
 * moves way 0 to way 1. Cycling through random addresses half as many as the table holds,
 * a direct-mapped table of the same size answered 60% from the cache, this one 73%
 * (test-cryptopan prints the figure). */
uint32_t cryptopan_anon_v4(CryptoPan *c, uint32_t addr) {
        V4Slot *s, t;
        uint32_t out;

        assert(c);
        s = &c->v4_cache[set_v4(addr)];
        if (s[0].in == addr) {
                c->stats.v4_hits++;
                return s[0].out;
        }
        if (s[1].in == addr) {
                c->stats.v4_hits++;
                t = s[1];
                s[1] = s[0];
                s[0] = t;
                return t.out;
        }
        c->stats.v4_misses++;
        if (compute_v4(c, addr, &out) < 0)
                return 0;
        s[1] = s[0];
        s[0] = (V4Slot) { .in = addr, .out = out };
        return out;
}

void cryptopan_anon_v6(CryptoPan *c, const uint8_t in[16], uint8_t out[16]) {
        V6Slot *s, t;

        assert(c);
        s = &c->v6_cache[set_v6(in)];
        if (memcmp(s[0].in, in, 16) == 0) {
                c->stats.v6_hits++;
                memmove(out, s[0].out, 16);
                return;
        }
        if (memcmp(s[1].in, in, 16) == 0) {
                c->stats.v6_hits++;
                t = s[1];
                s[1] = s[0];
                s[0] = t;
                memmove(out, t.out, 16);
                return;
        }
        c->stats.v6_misses++;
        if (compute_v6(c, in, t.out) < 0) {
                memset(out, 0, 16);
                return;
        }
        memcpy(t.in, in, 16);           /* before writing @out, which may alias @in */
        s[1] = s[0];
        s[0] = t;
        memcpy(out, t.out, 16);
}

void cryptopan_get_stats(const CryptoPan *c, CryptoPanStats *ret) {
        assert(c);
        assert(ret);
        *ret = c->stats;
}

int cryptopan_new(CryptoPan **ret, const uint8_t key[static CRYPTOPAN_KEY_SIZE]) {
        _cleanup_(cryptopan_freep) CryptoPan *c = NULL;
        uint8_t pad[AES_BLOCK], zero[16] = { 0 };
        V4Slot *s4;
        V6Slot *s6;
        int outl = 0;
        int r;

        assert(ret);
        assert(key);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->v4_cache = calloc(CRYPTOPAN_V4_CACHE_SLOTS, sizeof(V4Slot));
        c->v6_cache = calloc(CRYPTOPAN_V6_CACHE_SLOTS, sizeof(V6Slot));
        c->ctx = EVP_CIPHER_CTX_new();
        if (!c->v4_cache || !c->v6_cache || !c->ctx)
                return -ENOMEM;
        if (EVP_EncryptInit_ex(c->ctx, EVP_aes_128_ecb(), NULL, key, NULL) != 1 ||
            EVP_CIPHER_CTX_set_padding(c->ctx, 0) != 1)
                return -EIO;

        /* The reference implementation encrypts the second key half to get the pad. */
        if (EVP_EncryptUpdate(c->ctx, pad, &outl, key + AES_BLOCK, AES_BLOCK) != 1 ||
            outl != AES_BLOCK)
                return -EIO;
        memcpy(&c->pad_v4, pad, 4);
        memcpy(&c->pad_hi, pad, 8);
        memcpy(&c->pad_lo, pad + 8, 8);
        c->pad_v4 = be32toh(c->pad_v4);
        c->pad_hi = be64toh(c->pad_hi);
        c->pad_lo = be64toh(c->pad_lo);
        /* IPv4 blocks carry only pad bits after their first 4 bytes: write those once. */
        for (unsigned i = 0; i < V4_BITS; i++)
                memcpy(c->in_v4 + i * AES_BLOCK + 4, pad + 4, AES_BLOCK - 4);
        explicit_bzero(pad, sizeof(pad));

        /* Make the zeroed caches valid (see the top of this file). */
        s4 = &c->v4_cache[set_v4(0)];
        r = compute_v4(c, 0, &s4[0].out);
        if (r < 0)
                return r;
        s4[1] = s4[0];
        s6 = &c->v6_cache[set_v6(zero)];
        r = compute_v6(c, zero, s6[0].out);
        if (r < 0)
                return r;
        s6[1] = s6[0];

        *ret = TAKE_PTR(c);
        return 0;
}

CryptoPan *cryptopan_free(CryptoPan *c) {
        if (!c)
                return NULL;
        EVP_CIPHER_CTX_free(c->ctx);    /* cleanses the key schedule */
        /* The caches and scratch blocks reveal the mapping (and the pad): wipe them all. */
        if (c->v4_cache)
                explicit_bzero(c->v4_cache, CRYPTOPAN_V4_CACHE_SLOTS * sizeof(V4Slot));
        if (c->v6_cache)
                explicit_bzero(c->v6_cache, CRYPTOPAN_V6_CACHE_SLOTS * sizeof(V6Slot));
        free(c->v4_cache);
        free(c->v6_cache);
        explicit_bzero(c, sizeof(*c));
        free(c);
        return NULL;
}

static int hex_value(uint8_t ch) {
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

static bool is_space(uint8_t ch) {
        return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Error messages give lengths and offsets only, never key bytes. */
static int parse_key(const uint8_t *buf, size_t n, uint8_t key[static CRYPTOPAN_KEY_SIZE],
                     const char *path, char **reterr) {
        size_t start = 0, end = n;

        if (n == CRYPTOPAN_KEY_SIZE) {
                memcpy(key, buf, CRYPTOPAN_KEY_SIZE);
                return 0;
        }
        while (start < end && is_space(buf[start]))
                start++;
        while (end > start && is_space(buf[end - 1]))
                end--;
        if (end - start != 2 * CRYPTOPAN_KEY_SIZE) {
                if (reterr)
                        *reterr = config_errorf("%s: expected %u raw bytes or %u hex digits, "
                                                "got %zu bytes", path, CRYPTOPAN_KEY_SIZE,
                                                2 * CRYPTOPAN_KEY_SIZE, n);
                return -EINVAL;
        }
        for (size_t i = 0; i < CRYPTOPAN_KEY_SIZE; i++) {
                int h = hex_value(buf[start + 2 * i]), l = hex_value(buf[start + 2 * i + 1]);

                if (h < 0 || l < 0) {
                        if (reterr)
                                *reterr = config_errorf("%s: invalid hex digit at byte %zu",
                                                        path, start + 2 * i + (h < 0 ? 0 : 1));
                        explicit_bzero(key, CRYPTOPAN_KEY_SIZE);
                        return -EINVAL;
                }
                key[i] = (uint8_t) (h << 4 | l);
        }
        return 0;
}

int cryptopan_key_load(const char *path, uint8_t key[static CRYPTOPAN_KEY_SIZE],
                       char **reterr) {
        _cleanup_close_ int fd = -EBADF;
        uint8_t buf[CRYPTOPAN_KEY_FILE_MAX + 1], tmp[CRYPTOPAN_KEY_SIZE];
        struct stat st;
        size_t n = 0;
        int r;

        assert(path);
        assert(key);

        /* O_NONBLOCK: opening a FIFO must not hang; fstat() refuses it below. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                if (reterr)
                        *reterr = config_errorf("%s: %m", path);
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                if (reterr)
                        *reterr = config_errorf("%s: %m", path);
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                if (reterr)
                        *reterr = config_errorf("%s: not a regular file", path);
                return -EINVAL;
        }

        /* Read one byte past the cap so a file that grew since fstat() is caught too. */
        while (n < sizeof(buf)) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        if (reterr)
                                *reterr = config_errorf("%s: %m", path);
                        explicit_bzero(buf, n);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > CRYPTOPAN_KEY_FILE_MAX) {
                if (reterr)
                        *reterr = config_errorf("%s: larger than %u bytes", path,
                                                CRYPTOPAN_KEY_FILE_MAX);
                explicit_bzero(buf, n);
                return -EFBIG;
        }

        r = parse_key(buf, n, tmp, path, reterr);
        explicit_bzero(buf, n);
        if (r < 0)
                return r;
        memcpy(key, tmp, CRYPTOPAN_KEY_SIZE);
        explicit_bzero(tmp, sizeof(tmp));
        return (st.st_mode & S_IROTH) ? 1 : 0;
}
