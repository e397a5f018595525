/* SPDX-License-Identifier: MIT */
/*
 * config.h - table-driven JSON configuration (Redis's standardConfig idea).
 *
 * Each daemon declares one ConfigKey table listing every scalar key with its type, bounds,
 * default and whether it can be reloaded. Parsing is pure: text in, value struct out, with
 * errors that name the key and the reason. Precedence: defaults < file < environment
 * (IPFIXD_<DAEMON>_<KEY>) < argv, each applied by the same table. Integer keys are stored
 * as int64_t, booleans as bool, strings as heap char* owned by the struct.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef enum ConfigType {
        CONFIG_INT,
        CONFIG_BOOL,
        CONFIG_STRING,
} ConfigType;

typedef struct ConfigKey {
        const char *name;
        ConfigType type;
        size_t offset;          /* offsetof() the field in the daemon's config struct */
        int64_t min, max;       /* CONFIG_INT bounds (inclusive) */
        int64_t def_int;        /* default for CONFIG_INT and CONFIG_BOOL */
        const char *def_str;    /* default for CONFIG_STRING (NULL = unset) */
        bool reloadable;
        const char *help;
} ConfigKey;

#define CONFIG_MAX_FILE_SIZE (1024u * 1024u)

/* Sets every key in @table to its default. Return: 0 or -ENOMEM. */
int config_set_defaults(const ConfigKey *table, size_t n, void *cfg);
/* Frees the strings the table's keys own in @cfg. */
void config_free(const ConfigKey *table, size_t n, void *cfg);

/**
 * config_apply_json() - applies the members of JSON object @obj that the table names.
 * @extra: NULL-terminated list of further member names the caller handles itself
 * @reterr: on failure, a heap message like "port: must be 1..65535" (caller frees)
 *
 * Return: 0, or -EINVAL for an unknown key, a wrong type, or a value out of bounds.
 */
int config_apply_json(const ConfigKey *table, size_t n, json_t *obj, void *cfg,
                      const char *const *extra, char **reterr);

/**
 * config_cli_append() - appends a repeatable command-line argument (--set, --listen) to
 * @list (@max entries); one too many is an error, not silently ignored.
 * Return: 0, -E2BIG (printed to stderr, naming @option).
 */
int config_cli_append(char **list, size_t max, size_t *n, char *arg, const char *option);

/**
 * config_read_token() - a bearer token from @path: the file's text without surrounding blanks;
 * empty, or containing blanks or control characters, is -EINVAL (a token goes into an HTTP
 * header). The file's buffer is wiped before it is freed.
 * Return: 0 (@ret a heap string), -EINVAL, -errno.
 */
int config_read_token(const char *path, char **ret);

/**
 * config_read_password() - a password from @path: the file's text with trailing newlines
 * removed (anything else, blanks included, is part of it).
 * Return: 0 (@ret a heap string), -errno.
 */
int config_read_password(const char *path, char **ret);

/**
 * config_load_json_text() - parses a configuration file's text, rejecting duplicate members.
 * @json: the text; NULL or "" is no configuration (*@ret_root = NULL)
 * Return: 0 (@ret_root a new reference or NULL), -EINVAL with @reterr "line L column C: ...".
 */
int config_load_json_text(const char *json, json_t **ret_root, char **reterr);

/**
 * config_parse() - the whole chain for a configuration that is just its key table: the
 * defaults, then @json's members (config_load_json_text(), config_apply_json()), then the
 * environment when @env_prefix is not NULL. No validation (the caller's, after --set).
 * Return: 0, -EINVAL (@reterr set), -ENOMEM.
 */
int config_parse(const ConfigKey *table, size_t n, const char *json, const char *env_prefix,
                 void *cfg, char **reterr);

/**
 * config_apply_env() - applies environment variables PREFIX + upper-cased key name
 * (e.g. IPFIXD_COLLECTOR_WORKERS=4), parsed by the key's type.
 * Return: 0 or -EINVAL with @reterr set.
 */
int config_apply_env(const ConfigKey *table, size_t n, const char *prefix, void *cfg,
                     char **reterr);

/**
 * config_apply_string() - sets one key from text ("name=value" style callers split first).
 * Return: 0, -ENOENT for an unknown key, -EINVAL for a bad value (@reterr set).
 */
int config_apply_string(const ConfigKey *table, size_t n, const char *name, const char *value,
                        void *cfg, char **reterr);

/**
 * config_read_file() - reads a whole config file of at most CONFIG_MAX_FILE_SIZE.
 * Return: 0 and a NUL-terminated heap string, or -errno (-EFBIG when too large).
 */
int config_read_file(const char *path, char **ret);

/**
 * config_apply_assignments() - applies "KEY=VALUE" strings (--set arguments) in order.
 * Return: 0, or -EINVAL / -ENOENT with @reterr naming the argument.
 */
int config_apply_assignments(const ConfigKey *table, size_t n, char *const *sets, size_t n_sets,
                             void *cfg, char **reterr);

/* Prints the key table (--help-config): name, type, bounds, default, reload, help. */
void config_print_table(const ConfigKey *table, size_t n);

/* Whether key @k differs between two config structs of the table's type. */
bool config_key_changed(const ConfigKey *k, const void *a, const void *b);

/* Formats an error message into a new heap string (for reterr_ parameters). */
char *config_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
