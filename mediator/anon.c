/* SPDX-License-Identifier: MIT */
/*
 * anon.c - the anonymization stage: parses the "anonymize" object into one method per
 * address field, with truncation masks precomputed, and applies them to records in place.
 * An Anonymizer owns at most one CryptoPan (created only when a field uses it), so the
 * three fields share its key and its caches. After anon_new() the configuration is
 * immutable; only the caches and their counters change.
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "anon.h"
#include "config.h"
#include "cryptopan.h"
#include "flow.h"
#include "macro.h"

typedef struct FieldConf {
        AnonMethod method;
        int v4_prefix, v6_prefix;       /* -1 until resolved against the top-level values */
        uint32_t v4_mask;               /* host order */
        uint8_t v6_mask[16];
} FieldConf;

struct Anonymizer {
        FieldConf fields[_ANON_FIELD_MAX];
        CryptoPan *cpan;
        char *key_file;
        bool key_exposed;
};

static const char *const field_names[_ANON_FIELD_MAX] = {
        [ANON_FIELD_SRC] = "src_addr",
        [ANON_FIELD_DST] = "dst_addr",
        [ANON_FIELD_EXPORTER] = "exporter",
};

static const char *const method_names[_ANON_METHOD_MAX] = {
        [ANON_NONE] = "none",
        [ANON_CRYPTOPAN] = "cryptopan",
        [ANON_TRUNCATE] = "truncate",
};

const char *anon_method_to_string(AnonMethod m) {
        if (m < 0 || m >= _ANON_METHOD_MAX)
                return NULL;
        return method_names[m];
}

static AnonMethod method_from_string(const char *s) {
        for (int m = 0; m < _ANON_METHOD_MAX; m++)
                if (strcmp(s, method_names[m]) == 0)
                        return (AnonMethod) m;
        return _ANON_METHOD_INVALID;
}

#define SET_ERR(...)                                            \
        do {                                                    \
                if (reterr)                                     \
                        *reterr = config_errorf(__VA_ARGS__);   \
        } while (0)

/* @where is the member's path ("anonymize.v4_prefix", "anonymize.src_addr.v6_prefix"). */
static int parse_prefix(json_t *v, int max, const char *where, int *ret, char **reterr) {
        json_int_t p;

        if (!json_is_integer(v) || (p = json_integer_value(v)) < 0 || p > max) {
                SET_ERR("%s: must be an integer 0..%d", where, max);
                return -EINVAL;
        }
        *ret = (int) p;
        return 0;
}

static int parse_method(json_t *v, const char *where, AnonMethod *ret, char **reterr) {
        AnonMethod m;

        if (!json_is_string(v)) {
                SET_ERR("%s: must be a method name (none, cryptopan or truncate)", where);
                return -EINVAL;
        }
        m = method_from_string(json_string_value(v));
        if (m < 0) {
                SET_ERR("%s: unknown method \"%s\" (expected none, cryptopan or truncate)",
                        where, json_string_value(v));
                return -EINVAL;
        }
        *ret = m;
        return 0;
}

/* A field is a method name or {"method": ..., "v4_prefix": ..., "v6_prefix": ...}. */
static int parse_field(json_t *v, const char *name, FieldConf *ret, char **reterr) {
        FieldConf fc = { .method = ANON_NONE, .v4_prefix = -1, .v6_prefix = -1 };
        char where[64];
        const char *k;
        json_t *m, *x;
        int r;

        (void) snprintf(where, sizeof(where), "anonymize.%s", name);
        if (json_is_string(v)) {
                r = parse_method(v, where, &fc.method, reterr);
                if (r < 0)
                        return r;
                *ret = fc;
                return 0;
        }
        if (!json_is_object(v)) {
                SET_ERR("%s: must be a method name or an object", where);
                return -EINVAL;
        }

        json_object_foreach(v, k, x) {
                if (strcmp(k, "method") != 0 && strcmp(k, "v4_prefix") != 0 &&
                    strcmp(k, "v6_prefix") != 0) {
                        SET_ERR("%s.%s: unknown key", where, k);
                        return -EINVAL;
                }
        }
        m = json_object_get(v, "method");
        if (!m) {
                SET_ERR("%s.method: missing", where);
                return -EINVAL;
        }
        (void) snprintf(where, sizeof(where), "anonymize.%s.method", name);
        r = parse_method(m, where, &fc.method, reterr);
        if (r < 0)
                return r;

        x = json_object_get(v, "v4_prefix");
        if (x) {
                (void) snprintf(where, sizeof(where), "anonymize.%s.v4_prefix", name);
                if (fc.method != ANON_TRUNCATE) {
                        SET_ERR("%s: only valid with method truncate", where);
                        return -EINVAL;
                }
                r = parse_prefix(x, 32, where, &fc.v4_prefix, reterr);
                if (r < 0)
                        return r;
        }
        x = json_object_get(v, "v6_prefix");
        if (x) {
                (void) snprintf(where, sizeof(where), "anonymize.%s.v6_prefix", name);
                if (fc.method != ANON_TRUNCATE) {
                        SET_ERR("%s: only valid with method truncate", where);
                        return -EINVAL;
                }
                r = parse_prefix(x, 128, where, &fc.v6_prefix, reterr);
                if (r < 0)
                        return r;
        }
        *ret = fc;
        return 0;
}

static void field_set_masks(FieldConf *fc) {
        fc->v4_mask = fc->v4_prefix == 0 ? 0 : UINT32_MAX << (32 - fc->v4_prefix);
        memset(fc->v6_mask, 0, sizeof(fc->v6_mask));
        for (int i = 0; i < fc->v6_prefix; i++)
                fc->v6_mask[i / 8] |= (uint8_t) (0x80u >> (i % 8));
}

int anon_new(Anonymizer **ret, json_t *obj, char **reterr) {
        _cleanup_(anon_freep) Anonymizer *a = NULL;
        int v4_prefix = ANON_V4_PREFIX_DEFAULT, v6_prefix = ANON_V6_PREFIX_DEFAULT;
        const char *k, *cpan_user = NULL;
        json_t *v;
        int r;

        assert(ret);

        if (!json_is_object(obj)) {
                SET_ERR("anonymize: must be an object");
                return -EINVAL;
        }
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        for (int f = 0; f < _ANON_FIELD_MAX; f++)
                a->fields[f] = (FieldConf) { .method = ANON_NONE, .v4_prefix = -1,
                                             .v6_prefix = -1 };

        /* Members in document order, so the first problem in the text is the one reported. */
        json_object_foreach(obj, k, v) {
                int f;

                if (strcmp(k, "key_file") == 0) {
                        if (!json_is_string(v) || json_string_length(v) == 0) {
                                SET_ERR("anonymize.key_file: must be a non-empty string");
                                return -EINVAL;
                        }
                        a->key_file = strdup(json_string_value(v));
                        if (!a->key_file)
                                return -ENOMEM;
                        continue;
                }
                if (strcmp(k, "v4_prefix") == 0) {
                        r = parse_prefix(v, 32, "anonymize.v4_prefix", &v4_prefix, reterr);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (strcmp(k, "v6_prefix") == 0) {
                        r = parse_prefix(v, 128, "anonymize.v6_prefix", &v6_prefix, reterr);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (f = 0; f < _ANON_FIELD_MAX; f++)
                        if (strcmp(k, field_names[f]) == 0)
                                break;
                if (f == _ANON_FIELD_MAX) {
                        SET_ERR("anonymize.%s: unknown key", k);
                        return -EINVAL;
                }
                r = parse_field(v, field_names[f], &a->fields[f], reterr);
                if (r < 0)
                        return r;
        }

        for (int f = 0; f < _ANON_FIELD_MAX; f++) {
                FieldConf *fc = &a->fields[f];

                if (fc->v4_prefix < 0)
                        fc->v4_prefix = v4_prefix;
                if (fc->v6_prefix < 0)
                        fc->v6_prefix = v6_prefix;
                field_set_masks(fc);
                if (fc->method == ANON_CRYPTOPAN && !cpan_user)
                        cpan_user = field_names[f];
        }

        if (cpan_user && !a->key_file) {
                SET_ERR("anonymize.key_file: required because %s uses cryptopan", cpan_user);
                return -EINVAL;
        }
        /* A key file is loaded even when no field uses it: an unreadable secret is a
         * configuration error whether or not it is needed yet. */
        if (a->key_file) {
                uint8_t key[CRYPTOPAN_KEY_SIZE];
                _cleanup_free_ char *err = NULL;

                r = cryptopan_key_load(a->key_file, key, reterr ? &err : NULL);
                if (r < 0) {
                        SET_ERR("anonymize.key_file: %s", err ? err : a->key_file);
                        return r;
                }
                a->key_exposed = r > 0;
                r = cpan_user ? cryptopan_new(&a->cpan, key) : 0;
                explicit_bzero(key, sizeof(key));
                if (r < 0) {
                        SET_ERR("anonymize.key_file: cannot set up Crypto-PAn: %s",
                                r == -ENOMEM ? "out of memory" : "OpenSSL error");
                        return r;
                }
        }

        *ret = TAKE_PTR(a);
        return 0;
}

Anonymizer *anon_free(Anonymizer *a) {
        if (!a)
                return NULL;
        cryptopan_free(a->cpan);
        free(a->key_file);
        free(a);
        return NULL;
}

static void apply_field(Anonymizer *a, const FieldConf *fc, uint8_t addr[16], uint8_t family) {
        uint32_t v;

        if (fc->method == ANON_NONE)
                return;
        if (family != 4 && family != 6) {
                memset(addr, 0, 16);    /* fail closed: never pass an unknown form through */
                return;
        }

        switch (fc->method) {
        case ANON_CRYPTOPAN:
                if (family == 4) {
                        memcpy(&v, addr + 12, 4);
                        v = htobe32(cryptopan_anon_v4(a->cpan, be32toh(v)));
                        memcpy(addr + 12, &v, 4);
                } else
                        cryptopan_anon_v6(a->cpan, addr, addr);
                break;
        case ANON_TRUNCATE:
                if (family == 4) {
                        memcpy(&v, addr + 12, 4);
                        v = htobe32(be32toh(v) & fc->v4_mask);
                        memcpy(addr + 12, &v, 4);
                } else
                        for (unsigned i = 0; i < 16; i++)
                                addr[i] &= fc->v6_mask[i];
                break;
        default:
                assert(false);
        }
}

void anon_apply(Anonymizer *a, FlowRecord *r) {
        assert(a);
        assert(r);

        apply_field(a, &a->fields[ANON_FIELD_SRC], r->src_addr, r->family);
        apply_field(a, &a->fields[ANON_FIELD_DST], r->dst_addr, r->family);
        apply_field(a, &a->fields[ANON_FIELD_EXPORTER], r->exporter_addr, r->exporter_family);
}

AnonMethod anon_method(const Anonymizer *a, AnonField field) {
        assert(a);
        assert(field >= 0 && field < _ANON_FIELD_MAX);
        return a->fields[field].method;
}

bool anon_is_active(const Anonymizer *a) {
        assert(a);
        for (int f = 0; f < _ANON_FIELD_MAX; f++)
                if (a->fields[f].method != ANON_NONE)
                        return true;
        return false;
}

bool anon_key_file_exposed(const Anonymizer *a) {
        assert(a);
        return a->key_exposed;
}

const char *anon_key_file(const Anonymizer *a) {
        assert(a);
        return a->key_file;
}

void anon_get_stats(const Anonymizer *a, CryptoPanStats *ret) {
        assert(a);
        assert(ret);
        if (a->cpan)
                cryptopan_get_stats(a->cpan, ret);
        else
                *ret = (CryptoPanStats) { 0 };
}
