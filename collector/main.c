/* SPDX-License-Identifier: MIT */
/*
 * main.c - ipfixd-collector: argv and configuration, then collector_new()/collector_run().
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "macro.h"

static void help(void) {
        printf("Usage: ipfixd-collector [--config FILE] [--listen URL]... \n"
               "                        [--set KEY=VALUE]... [--help-config]\n"
               "Receives IPFIX (TCP, UDP) and NetFlow v9 (UDP), pushes flow batches over ZeroMQ.\n"
               "URL: tcp://ADDR:PORT, udp://ADDR:PORT, or tcp+proxy://ADDR:PORT (a PROXY v1/v2\n"
               "header required first); IPv6 as [ADDR].\n"
               "Precedence: defaults < FILE < IPFIXD_COLLECTOR_<KEY> < --set/--listen.\n");
}

static void help_config(void) {
        config_print_table(collector_config_keys, collector_config_n_keys);
        printf("%-24s array  of {transport, address, port, proxy_protocol}, default "
               "[{\"tcp\",\"::\",4739,false}]\n", "listeners");
}

int main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "listen", required_argument, NULL, 'l' },
                { "set", required_argument, NULL, 's' },
                { "help-config", no_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_free_ char *text = NULL, *err = NULL;
        const char *path = NULL;
        char *sets[64], *listens[COLLECTOR_MAX_LISTENERS];
        size_t n_sets = 0, n_listens = 0;
        CollectorOrigin origin;
        CollectorConfig cfg;
        Collector *c = NULL;
        int r, opt;

        while ((opt = getopt_long(argc, argv, "c:l:s:h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'c': path = optarg; break;
                case 'l':
                        if (config_cli_append(listens, ELEMENTSOF(listens), &n_listens, optarg,
                                              "--listen") < 0)
                                return EXIT_FAILURE;
                        break;
                case 's':
                        if (config_cli_append(sets, ELEMENTSOF(sets), &n_sets, optarg,
                                              "--set") < 0)
                                return EXIT_FAILURE;
                        break;
                case 'H': help_config(); return EXIT_SUCCESS;
                case 'h': help(); return EXIT_SUCCESS;
                default: help(); return EXIT_FAILURE;
                }
        }
        if (path && (r = config_read_file(path, &text)) < 0) {
                log_error_errno(r, "Failed to read %s: %m", path);
                return EXIT_FAILURE;
        }
        r = collector_config_load(text, sets, n_sets, listens, n_listens, &cfg, &err);
        if (r < 0) {
                log_error("Invalid configuration%s%s: %s", path ? " in " : "", path ? path : "",
                          err ? err : "invalid");
                collector_config_done(&cfg);
                return EXIT_FAILURE;
        }
        origin = (CollectorOrigin) {
                .config_path = path, .config_text = text,
                .sets = sets, .n_sets = n_sets, .listens = listens, .n_listens = n_listens,
        };
        r = collector_new(&c, &cfg, &origin);
        if (r >= 0)
                r = collector_run(c);
        collector_free(c);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
