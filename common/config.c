/* SPDX-License-Identifier: MIT */
/*
 * config.c - the table walker behind every daemon's configuration. It never logs; errors go
 * back to the caller as text naming the key.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"

char *config_errorf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

static void *field(void *cfg, const ConfigKey *k) {
        return (uint8_t *) cfg + k->offset;
}

int config_set_defaults(const ConfigKey *table, size_t n, void *cfg) {
        for (size_t i = 0; i < n; i++) {
                const ConfigKey *k = &table[i];
                switch (k->type) {
                case CONFIG_INT:
                        *(int64_t *) field(cfg, k) = k->def_int;
                        break;
                case CONFIG_BOOL:
                        *(bool *) field(cfg, k) = k->def_int != 0;
                        break;
                case CONFIG_STRING: {
                        char **s = field(cfg, k);
                        free(*s);
                        *s = NULL;
                        if (k->def_str && !(*s = strdup(k->def_str)))
                                return -ENOMEM;
                        break;
                }
                }
        }
        return 0;
}

void config_free(const ConfigKey *table, size_t n, void *cfg) {
        for (size_t i = 0; i < n; i++)
                if (table[i].type == CONFIG_STRING) {
                        char **s = field(cfg, &table[i]);
                        free(*s);
                        *s = NULL;
                }
}

static int set_int(const ConfigKey *k, void *cfg, int64_t v, char **reterr) {
        if (v < k->min || v > k->max) {
                *reterr = config_errorf("%s: must be %" PRId64 "..%" PRId64 ", got %" PRId64,
                                        k->name, k->min, k->max, v);
                return -EINVAL;
        }
        *(int64_t *) field(cfg, k) = v;
        return 0;
}

static int set_string(const ConfigKey *k, void *cfg, const char *v, char **reterr) {
        char **s = field(cfg, k);
        char *c = strdup(v);
        if (!c)
                return -ENOMEM;
        free(*s);
        *s = c;
        return 0;
}

static const ConfigKey *find_key(const ConfigKey *table, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(table[i].name, name) == 0)
                        return &table[i];
        return NULL;
}

int config_apply_json(const ConfigKey *table, size_t n, json_t *obj, void *cfg,
                      const char *const *extra, char **reterr) {
        const char *name;
        json_t *v;

        if (!json_is_object(obj)) {
                *reterr = config_errorf("configuration must be a JSON object");
                return -EINVAL;
        }
        json_object_foreach(obj, name, v) {
                const ConfigKey *k = find_key(table, n, name);
                bool handled = false;

                for (const char *const *e = extra; e && *e; e++)
                        if (strcmp(*e, name) == 0)
                                handled = true;
                if (handled)
                        continue;
                if (!k) {
                        *reterr = config_errorf("%s: unknown key", name);
                        return -EINVAL;
                }
                switch (k->type) {
                case CONFIG_INT:
                        if (!json_is_integer(v)) {
                                *reterr = config_errorf("%s: must be an integer", name);
                                return -EINVAL;
                        }
                        if (set_int(k, cfg, json_integer_value(v), reterr) < 0)
                                return -EINVAL;
                        break;
                case CONFIG_BOOL:
                        if (!json_is_boolean(v)) {
                                *reterr = config_errorf("%s: must be true or false", name);
                                return -EINVAL;
                        }
                        *(bool *) field(cfg, k) = json_is_true(v);
                        break;
                case CONFIG_STRING:
                        if (!json_is_string(v)) {
                                *reterr = config_errorf("%s: must be a string", name);
                                return -EINVAL;
                        }
                        if (set_string(k, cfg, json_string_value(v), reterr) < 0)
                                return -ENOMEM;
                        break;
                }
        }
        return 0;
}

int config_apply_string(const ConfigKey *table, size_t n, const char *name, const char *value,
                        void *cfg, char **reterr) {
        const ConfigKey *k = find_key(table, n, name);
        char *end;

        if (!k) {
                *reterr = config_errorf("%s: unknown key", name);
                return -ENOENT;
        }
        switch (k->type) {
        case CONFIG_INT: {
                long long v;
                errno = 0;
                v = strtoll(value, &end, 10);
                if (errno != 0 || end == value || *end != '\0') {
                        *reterr = config_errorf("%s: not an integer: '%s'", name, value);
                        return -EINVAL;
                }
                return set_int(k, cfg, v, reterr);
        }
        case CONFIG_BOOL:
                if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
                    strcasecmp(value, "yes") == 0)
                        *(bool *) field(cfg, k) = true;
                else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                         strcasecmp(value, "no") == 0)
                        *(bool *) field(cfg, k) = false;
                else {
                        *reterr = config_errorf("%s: must be true or false, got '%s'", name, value);
                        return -EINVAL;
                }
                return 0;
        case CONFIG_STRING:
                return set_string(k, cfg, value, reterr);
        }
        return -EINVAL;
}

int config_apply_env(const ConfigKey *table, size_t n, const char *prefix, void *cfg,
                     char **reterr) {
        for (size_t i = 0; i < n; i++) {
                char var[256];
                const char *v;
                size_t l;
                int r;

                l = (size_t) snprintf(var, sizeof(var), "%s%s", prefix, table[i].name);
                if (l >= sizeof(var))
                        continue;
                for (size_t j = 0; j < l; j++)
                        var[j] = (char) toupper((unsigned char) var[j]);
                v = getenv(var);
                if (!v)
                        continue;
                r = config_apply_string(table, n, table[i].name, v, cfg, reterr);
                if (r < 0) {
                        char *e = *reterr;
                        *reterr = config_errorf("environment %s: %s", var, e ? e : "invalid");
                        free(e);
                        return r;
                }
        }
        return 0;
}

int config_read_file(const char *path, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size > (off_t) CONFIG_MAX_FILE_SIZE)
                return -EFBIG;
        buf = malloc(CONFIG_MAX_FILE_SIZE + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + len, CONFIG_MAX_FILE_SIZE + 1 - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > CONFIG_MAX_FILE_SIZE)
                        return -EFBIG;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

bool config_key_changed(const ConfigKey *k, const void *a, const void *b) {
        const void *x = (const uint8_t *) a + k->offset, *y = (const uint8_t *) b + k->offset;

        switch (k->type) {
        case CONFIG_STRING: {
                const char *sx = *(char *const *) x, *sy = *(char *const *) y;
                if (!sx || !sy)
                        return sx != sy;
                return strcmp(sx, sy) != 0;
        }
        case CONFIG_INT:
                return memcmp(x, y, sizeof(int64_t)) != 0;
        case CONFIG_BOOL:
                return memcmp(x, y, sizeof(bool)) != 0;
        }
        return false;
}

int config_apply_assignments(const ConfigKey *table, size_t n, char *const *sets, size_t n_sets,
                             void *cfg, char **reterr) {
        for (size_t i = 0; i < n_sets; i++) {
                const char *eq = strchr(sets[i], '=');
                char name[128];
                int r;

                if (!eq || (size_t) (eq - sets[i]) >= sizeof(name)) {
                        *reterr = config_errorf("--set %s: expected KEY=VALUE", sets[i]);
                        return -EINVAL;
                }
                memcpy(name, sets[i], (size_t) (eq - sets[i]));
                name[eq - sets[i]] = '\0';
                r = config_apply_string(table, n, name, eq + 1, cfg, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

void config_print_table(const ConfigKey *table, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const ConfigKey *k = &table[i];
                if (k->type == CONFIG_INT)
                        printf("%-24s int    %lld..%lld default %lld%s  %s\n", k->name,
                               (long long) k->min, (long long) k->max, (long long) k->def_int,
                               k->reloadable ? " (reload)" : "", k->help);
                else if (k->type == CONFIG_BOOL)
                        printf("%-24s bool   default %s%s  %s\n", k->name,
                               k->def_int ? "true" : "false", k->reloadable ? " (reload)" : "",
                               k->help);
                else
                        printf("%-24s string default %s%s  %s\n", k->name,
                               k->def_str ? k->def_str : "(unset)",
                               k->reloadable ? " (reload)" : "", k->help);
        }
}

int config_load_json_text(const char *json, json_t **ret_root, char **reterr) {
        json_error_t jerr;

        *ret_root = NULL;
        if (!json || !*json)
                return 0;
        *ret_root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
        if (!*ret_root) {
                *reterr = config_errorf("line %d column %d: %s", jerr.line, jerr.column,
                                        jerr.text);
                return -EINVAL;
        }
        return 0;
}

int config_parse(const ConfigKey *table, size_t n, const char *json, const char *env_prefix,
                 void *cfg, char **reterr) {
        json_t *root;
        int r;

        r = config_set_defaults(table, n, cfg);
        if (r < 0)
                return r;
        r = config_load_json_text(json, &root, reterr);
        if (r < 0)
                return r;
        if (root) {
                r = config_apply_json(table, n, root, cfg, NULL, reterr);
                json_decref(root);
                if (r < 0)
                        return r;
        }
        return env_prefix ? config_apply_env(table, n, env_prefix, cfg, reterr) : 0;
}

int config_read_token(const char *path, char **ret) {
        char *text = NULL, *token;
        size_t start, end, len;
        int r;

        r = config_read_file(path, &text);
        if (r < 0)
                return r;
        len = strlen(text);
        start = strspn(text, " \t\r\n");
        end = len;
        while (end > start && strchr(" \t\r\n", text[end - 1]))
                end--;
        r = end == start ? -EINVAL : 0;
        for (size_t i = start; r == 0 && i < end; i++)
                if ((unsigned char) text[i] <= ' ' || text[i] == 0x7f)
                        r = -EINVAL;
        token = r == 0 ? strndup(text + start, end - start) : NULL;
        if (r == 0 && !token)
                r = -ENOMEM;
        explicit_bzero(text, len);
        free(text);
        if (r < 0)
                return r;
        *ret = token;
        return 0;
}

int config_read_password(const char *path, char **ret) {
        char *text = NULL;
        size_t len;
        int r;

        r = config_read_file(path, &text);
        if (r < 0)
                return r;
        len = strlen(text);
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                text[--len] = '\0';
        *ret = text;
        return 0;
}

int config_cli_append(char **list, size_t max, size_t *n, char *arg, const char *option) {
        if (*n >= max) {
                fprintf(stderr, "Too many %s arguments (at most %zu)\n", option, max);
                return -E2BIG;
        }
        list[(*n)++] = arg;
        return 0;
}
