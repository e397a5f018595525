/* SPDX-License-Identifier: MIT */
/*
 * cryptopan.h - Crypto-PAn, the prefix-preserving address anonymization of Xu, Fan, Ammar
 * and Moon ("Prefix-Preserving IP Address Anonymization", ICNP 2002), bit-compatible with
 * their reference implementation for IPv4.
 *
 * The 32-byte key is an AES-128 key (bytes 0..15) and a secret pad (bytes 16..31), which is
 * itself encrypted with that AES key before use, as the reference code does. Output bit i is
 * input bit i XOR the most significant bit of AES(first i bits of the address followed by
 * the remaining bits of the pad). IPv6 is the same construction over 128 bits with the full
 * 16-byte pad (as the Go, C#, libanon and yacryptopan implementations do). Two addresses
 * that share exactly a k-bit prefix map to addresses that share exactly a k-bit prefix, and
 * the mapping is a bijection.
 *
 * Costs: 32 AES blocks per IPv4 address and 128 per IPv6 address, each address's blocks
 * encrypted in one EVP call. Two fixed-size two-way set-associative caches
 * (CRYPTOPAN_V4_CACHE_SLOTS and CRYPTOPAN_V6_CACHE_SLOTS entries, 1 MiB together, allocated
 * at creation) make repeated addresses cost a table lookup. A CryptoPan keeps scratch buffers and the caches
 * inside, so it is not thread-safe: one instance per thread.
 */
#pragma once

#include <stdint.h>

#include "macro.h"

#define CRYPTOPAN_KEY_SIZE 32u
#define CRYPTOPAN_KEY_FILE_MAX 4096u            /* bytes; larger key files are refused */
#define CRYPTOPAN_V4_CACHE_SLOTS (64u * 1024u)  /* 8 bytes each */
#define CRYPTOPAN_V6_CACHE_SLOTS (16u * 1024u)  /* 32 bytes each */

typedef struct CryptoPan CryptoPan;

typedef struct CryptoPanStats {
        uint64_t v4_hits;       /* IPv4 addresses answered from the cache */
        uint64_t v4_misses;     /* IPv4 addresses computed (32 AES blocks each) */
        uint64_t v6_hits;
        uint64_t v6_misses;     /* IPv6 addresses computed (128 AES blocks each) */
} CryptoPanStats;

/**
 * cryptopan_new() - sets up AES-128-ECB (OpenSSL EVP, created once) and the caches.
 * @ret: the new instance, owned by the caller (cryptopan_free()); set on success only
 * @key: CRYPTOPAN_KEY_SIZE bytes; not kept (the derived pad and the cipher context are)
 *
 * Return: 0, -ENOMEM, or -EIO when OpenSSL fails to set up the cipher.
 */
int cryptopan_new(CryptoPan **ret, const uint8_t key[static CRYPTOPAN_KEY_SIZE]);

/**
 * cryptopan_free() - wipes the derived key material and frees @c. NULL-safe.
 * Return: NULL.
 */
CryptoPan *cryptopan_free(CryptoPan *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(CryptoPan *, cryptopan_free);

/**
 * cryptopan_anon_v4() - anonymizes one IPv4 address.
 * @addr: the address in host byte order (192.0.2.1 is 0xc0000201)
 *
 * Return: the anonymized address, host byte order. Cannot fail: should OpenSSL ever report
 * an error for an established ECB context, the result is 0.0.0.0 (fail closed, never the
 * original address).
 */
uint32_t cryptopan_anon_v4(CryptoPan *c, uint32_t addr);

/**
 * cryptopan_anon_v6() - anonymizes one IPv6 address (16 octets, network order) into @out.
 * @in and @out may be the same buffer. Fails closed to :: like cryptopan_anon_v4().
 */
void cryptopan_anon_v6(CryptoPan *c, const uint8_t in[16], uint8_t out[16]);

/* Cache hit/miss counters since creation. */
void cryptopan_get_stats(const CryptoPan *c, CryptoPanStats *ret);

/**
 * cryptopan_key_load() - reads a Crypto-PAn key file.
 * @path:   a regular file (symlinks followed, as Kubernetes Secret mounts need) holding
 *          either exactly 32 raw bytes, or 64 hex digits (either case) optionally surrounded
 *          by whitespace such as a trailing newline
 * @key:    receives the key; written on success only
 * @reterr: on failure a heap message starting with @path (caller frees); may be NULL
 *
 * Permissions are not enforced: Kubernetes mounts Secrets 0644 unless told otherwise, so a
 * refusal would break the default deployment. Instead a key file that other users may read
 * is reported by returning 1, and the caller should warn (and suggest defaultMode 0400).
 *
 * Return: 0, or 1 when the key loaded but the file is world-readable (S_IROTH); -errno from
 * open/read (-ENOENT, -EACCES, ...), -EINVAL for anything but a regular file or for contents
 * that are neither form, -EFBIG for a file larger than CRYPTOPAN_KEY_FILE_MAX bytes.
 */
int cryptopan_key_load(const char *path, uint8_t key[static CRYPTOPAN_KEY_SIZE], char **reterr);
