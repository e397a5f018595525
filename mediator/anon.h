/* SPDX-License-Identifier: MIT */
/*
 * anon.h - the pipeline's anonymization stage: rewrites the source, destination and
 * exporter addresses of flow records in place, each field with its own method.
 *
 * Configuration is the pipeline's "anonymize" object:
 *
 *   { "key_file": "/run/secrets/cryptopan.key",
 *     "src_addr": "cryptopan", "dst_addr": "truncate", "exporter": "none",
 *     "v4_prefix": 24, "v6_prefix": 48 }
 *
 * src_addr, dst_addr, exporter: a method name, or an object
 *   {"method": "truncate", "v4_prefix": 16, "v6_prefix": 32} whose prefixes override the
 *   top-level ones for that field. Methods:
 *     "none"      - leave the field alone (the default for an absent field);
 *     "cryptopan" - prefix-preserving Crypto-PAn (cryptopan.h) keyed by key_file, which is
 *                   then required; one key serves all fields, so an address anonymizes the
 *                   same way as source, destination or exporter;
 *     "truncate"  - keep the first v4_prefix (family 4, 0..32, default 24) or v6_prefix
 *                   (family 6, 0..128, default 48) bits and zero the rest.
 * key_file: a path for cryptopan_key_load() (32 raw bytes or 64 hex digits). It is read
 *   once, by anon_new(); a reload re-reads it by building a new Anonymizer.
 *
 * Each address is rewritten by its record's family (family for src/dst, exporter_family
 * for the exporter). Family-4 addresses stay IPv4-mapped: only the last four octets
 * change. An address whose family is neither 4 nor 6 (flow_batch_decode() refuses those,
 * so only a caller's bug produces one) is zeroed rather than passed through.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cryptopan.h"
#include "flow.h"
#include "macro.h"

typedef struct Anonymizer Anonymizer;

typedef enum AnonMethod {
        ANON_NONE,
        ANON_CRYPTOPAN,
        ANON_TRUNCATE,
        _ANON_METHOD_MAX,
        _ANON_METHOD_INVALID = -EINVAL,
} AnonMethod;

typedef enum AnonField {
        ANON_FIELD_SRC,
        ANON_FIELD_DST,
        ANON_FIELD_EXPORTER,
        _ANON_FIELD_MAX,
} AnonField;

#define ANON_V4_PREFIX_DEFAULT 24
#define ANON_V6_PREFIX_DEFAULT 48

/**
 * anon_new() - parses and validates an "anonymize" object and loads the key file.
 * @ret:    the stage, owned by the caller (anon_free()); set on success only
 * @obj:    the JSON object (borrowed; nothing is kept from it)
 * @reterr: on failure a heap message starting with the member it concerns, e.g.
 *          "anonymize.src_addr: unknown method \"hash\" (expected none, cryptopan or
 *          truncate)", "anonymize.colour: unknown key", "anonymize.key_file: /k: No such
 *          file or directory" (caller frees); may be NULL
 *
 * Return: 0; -EINVAL for a malformed object (wrong type, unknown member or method, prefix
 * out of range, cryptopan without key_file, a key file of the wrong form); -errno from
 * reading the key file (-ENOENT, -EACCES, -EFBIG, ...); -ENOMEM; -EIO from OpenSSL.
 */
int anon_new(Anonymizer **ret, json_t *obj, char **reterr);

/* Frees @a and wipes its key material. NULL-safe. Return: NULL. */
Anonymizer *anon_free(Anonymizer *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Anonymizer *, anon_free);

/**
 * anon_apply() - anonymizes @r's addresses in place. Not thread-safe (the Crypto-PAn
 * caches live in @a): one Anonymizer per thread.
 */
void anon_apply(Anonymizer *a, FlowRecord *r);

/* The method configured for @field. */
AnonMethod anon_method(const Anonymizer *a, AnonField field);

/* True when some field is anonymized (false for an object that configures only "none"). */
bool anon_is_active(const Anonymizer *a);

/*
 * True when the key file was readable by other users at load time (cryptopan_key_load()
 * returned 1). The stage still works; the caller should log a warning naming the file.
 */
bool anon_key_file_exposed(const Anonymizer *a);

/* The loaded key file's path, or NULL when there is none (borrowed from @a). */
const char *anon_key_file(const Anonymizer *a);

/* Crypto-PAn cache counters (all zero when no field uses cryptopan). */
void anon_get_stats(const Anonymizer *a, CryptoPanStats *ret);

/* "none", "cryptopan", "truncate", or NULL. */
const char *anon_method_to_string(AnonMethod m);
