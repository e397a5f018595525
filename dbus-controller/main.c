/* SPDX-License-Identifier: MIT */
/*
 * main.c - ipfixd-controller: argv and configuration, then the controller (bus, cached view
 * of both components), optionally the pod's children (--spawn-pod), the HTTP API, pod_run().
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller-http.h"
#include "controller.h"
#include "log.h"
#include "macro.h"
#include "pod.h"

static void help(void) {
        printf("Usage: ipfixd-controller [--config FILE] [--set KEY=VALUE]... [--spawn-pod]\n"
               "                         [--check] [--help-config]\n"
               "The pod's coordinator: runs (or joins) the pod's private D-Bus, watches the\n"
               "collector and the mediator on it and serves the pod's management HTTP API.\n"
               "--spawn-pod also runs the collector and the mediator as supervised children.\n"
               "Precedence: defaults < FILE < IPFIXD_CONTROLLER_<KEY> < --set.\n");
}

static int http_start(ControllerHttp **ret, sd_event *e, Controller *c,
                      const ControllerConfig *cfg) {
        _cleanup_free_ char *token = NULL;
        int r;

        if (cfg->token_file && (r = config_read_token(cfg->token_file, &token)) < 0)
                return log_error_errno(r, "Failed to read token_file %s: %m", cfg->token_file);
        r = controller_http_new(ret, e, c, &(ControllerHttpConfig) {
                                        .listen = cfg->http_listen,
                                        .token = token,
                                        .max_body_bytes = (size_t) cfg->max_body_bytes });
        if (token)
                explicit_bzero(token, strlen(token));
        if (r < 0)
                return log_error_errno(r, "Failed to serve HTTP on %s: %m", cfg->http_listen);
        log_info("Serving HTTP listen=%s port=%u", cfg->http_listen,
                 (unsigned) controller_http_port(*ret));
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "set", required_argument, NULL, 's' },
                { "spawn-pod", no_argument, NULL, 'P' },
                { "check", no_argument, NULL, 'C' },
                { "help-config", no_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_free_ char *text = NULL, *err = NULL;
        const char *path = NULL;
        char *sets[64];
        size_t n_sets = 0;
        bool spawn = false, check = false;
        ControllerConfig cfg;
        sd_event *e = NULL;
        Controller *c = NULL;
        Pod *pod = NULL;
        ControllerHttp *http = NULL;
        int r, opt;

        while ((opt = getopt_long(argc, argv, "c:s:h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'c': path = optarg; break;
                case 's':
                        if (config_cli_append(sets, ELEMENTSOF(sets), &n_sets, optarg,
                                              "--set") < 0)
                                return EXIT_FAILURE;
                        break;
                case 'P': spawn = true; break;
                case 'C': check = true; break;
                case 'H': config_print_table(controller_config_keys, controller_config_n_keys);
                          return EXIT_SUCCESS;
                case 'h': help(); return EXIT_SUCCESS;
                default: help(); return EXIT_FAILURE;
                }
        }
        if (path && (r = config_read_file(path, &text)) < 0) {
                log_error_errno(r, "Failed to read %s: %m", path);
                return EXIT_FAILURE;
        }
        r = controller_config_parse(text, true, &cfg, &err);
        if (r >= 0)
                r = config_apply_assignments(controller_config_keys, controller_config_n_keys,
                                             sets, n_sets, &cfg, &err);
        if (r >= 0)
                r = controller_config_validate(&cfg, &err);
        if (r < 0 || check) {
                if (r < 0)
                        log_error("Invalid configuration%s%s: %s", path ? " in " : "",
                                  path ? path : "", err ? err : "invalid");
                controller_config_done(&cfg);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        log_set_max_level(log_level_from_string(cfg.log_level));

        r = pod_block_signals();
        if (r >= 0)
                r = sd_event_default(&e);
        if (r >= 0)
                r = controller_new(&c, &cfg, e);
        if (r >= 0)
                r = http_start(&http, e, c, &cfg);
        if (r >= 0 && spawn)
                r = pod_new(&pod, e, &cfg, controller_bus_address(c));
        if (r >= 0)
                r = pod_run(e, c, pod);
        if (r < 0)
                log_error_errno(r, "ipfixd-controller failed: %m");

        controller_http_free(http);
        pod_free(pod);
        controller_free(c);
        sd_event_unref(e);
        controller_config_done(&cfg);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
