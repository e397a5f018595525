/* SPDX-License-Identifier: MIT */
/*
 * main.c - ipfixd-mediator: argv and configuration, then mediator_new()/mediator_run().
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "mediator.h"

static void help(void) {
        printf("Usage: ipfixd-mediator [--config FILE] [--set KEY=VALUE]... [--check]\n"
               "                       [--help-config]\n"
               "Pulls flow batches from ipfixd-collector, runs the configured pipelines\n"
               "(filter, de-duplicate, anonymize, aggregate) into their outputs, keeps the\n"
               "pod's flow store and answers queries over ZeroMQ.\n"
               "Precedence: defaults < FILE < IPFIXD_MEDIATOR_<KEY> < --set.\n"
               "--check validates the configuration and exits (0 valid, 1 invalid).\n");
}

static void help_config(void) {
        config_print_table(mediator_config_keys, mediator_config_n_keys);
        printf("%-24s array  of {name, filter, dedup, anonymize, aggregate, outputs} "
               "(reload)\n", "pipelines");
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
        MediatorConfig cfg;
        Mediator *m = NULL;
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
                case 'H': help_config(); return EXIT_SUCCESS;
                case 'h': help(); return EXIT_SUCCESS;
                default: help(); return EXIT_FAILURE;
                }
        }
        if (path && (r = config_read_file(path, &text)) < 0) {
                log_error_errno(r, "Failed to read %s: %m", path);
                return EXIT_FAILURE;
        }
        r = mediator_config_parse(text, true, &cfg, &err);
        if (r >= 0)
                r = config_apply_assignments(mediator_config_keys, mediator_config_n_keys,
                                             sets, n_sets, &cfg, &err);
        if (r >= 0 && n_sets > 0)
                r = mediator_config_validate(&cfg, &err);
        if (r < 0) {
                log_error("Invalid configuration%s%s: %s", path ? " in " : "", path ? path : "",
                          err ? err : "invalid");
                mediator_config_done(&cfg);
                return EXIT_FAILURE;
        }
        if (check) {
                log_info("Configuration valid: %zu pipeline(s)", cfg.n_pipelines);
                mediator_config_done(&cfg);
                return EXIT_SUCCESS;
        }
        r = mediator_new(&m, &cfg, path, text);
        if (r >= 0)
                r = mediator_run(m);
        mediator_free(m);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
