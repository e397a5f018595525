/* SPDX-License-Identifier: MIT */
/*
 * main.c - ipfixd-api: argv and configuration, then api_new(), api_run(), api_free().
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "api-config.h"
#include "api.h"
#include "log.h"
#include "macro.h"

static void help(void) {
        printf("Usage: ipfixd-api [--config FILE] [--set KEY=VALUE]... [--check] [--help-config]\n"
               "The public HTTP API: flow queries answered by asking every pod's query\n"
               "service and merging the answers.\n"
               "Precedence: defaults < FILE < IPFIXD_API_<KEY> < --set.\n");
}

int main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "set", required_argument, NULL, 's' },
                { "check", no_argument, NULL, 'C' },
                { "help-config", no_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_free_ char *text = NULL, *err = NULL;
        const char *path = NULL;
        char *sets[64];
        size_t n_sets = 0;
        bool check = false;
        ApiConfig cfg;
        sd_event *e = NULL;
        Api *api = NULL;
        int r, opt;

        while ((opt = getopt_long(argc, argv, "c:s:h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'c': path = optarg; break;
                case 's':
                        if (config_cli_append(sets, ELEMENTSOF(sets), &n_sets, optarg,
                                              "--set") < 0)
                                return EXIT_FAILURE;
                        break;
                case 'C': check = true; break;
                case 'H': config_print_table(api_config_keys, api_config_n_keys);
                          return EXIT_SUCCESS;
                case 'h': help(); return EXIT_SUCCESS;
                default: help(); return EXIT_FAILURE;
                }
        }
        if (path && (r = config_read_file(path, &text)) < 0) {
                log_error_errno(r, "Failed to read %s: %m", path);
                return EXIT_FAILURE;
        }
        r = api_config_parse(text, true, &cfg, &err);
        if (r >= 0)
                r = config_apply_assignments(api_config_keys, api_config_n_keys, sets, n_sets,
                                             &cfg, &err);
        if (r >= 0)
                r = api_config_validate(&cfg, &err);
        if (r < 0 || check) {
                if (r < 0)
                        log_error("Invalid configuration%s%s: %s", path ? " in " : "",
                                  path ? path : "", err ? err : "invalid");
                api_config_done(&cfg);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        log_set_max_level(log_level_from_string(cfg.log_level));

        /* A peer closing a socket we write to (Redis, a controller) is an error return, not
         * the end of the process. */
        (void) signal(SIGPIPE, SIG_IGN);
        r = sd_event_default(&e);
        if (r >= 0)
                r = api_new(&api, e, &cfg);
        if (r >= 0)
                r = api_run(api);
        if (r < 0)
                log_error_errno(r, "ipfixd-api failed: %m");

        api_free(api);
        sd_event_unref(e);
        api_config_done(&cfg);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
