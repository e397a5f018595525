/* SPDX-License-Identifier: MIT */
/*
 * controller-config.c - key table and parser for ipfixd-controller. `--help-config` prints
 * the table. Nothing here is reloadable: the controller has no reload of its own (its
 * Reload route reloads the components).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "controller-config.h"
#include "log.h"
#include "macro.h"

#define K_INT(n, min, max, def, h) \
        { #n, CONFIG_INT, offsetof(ControllerConfig, n), min, max, def, NULL, false, h }
#define K_STR(n, def, h) \
        { #n, CONFIG_STRING, offsetof(ControllerConfig, n), 0, 0, 0, def, false, h }

const ConfigKey controller_config_keys[] = {
        K_STR(pod_name, NULL, "name in /api/v1/pod (default: the host name)"),
        K_STR(log_level, "info", "debug, info, notice, warning or error"),
        K_STR(bus_address, NULL,
              "join this D-Bus address (unset: start our own dbus-daemon on bus_socket)"),
        K_STR(bus_socket, "/run/ipfixd/bus",
              "socket path of the dbus-daemon we start (its config file goes beside it)"),
        K_STR(http_listen, "0.0.0.0:8081", "management HTTP API, host:port"),
        K_STR(token_file, NULL, "file holding the bearer token for POST routes (unset: none)"),
        K_INT(max_body_bytes, 1024, 64 << 20, 1 << 20, "largest HTTP request body"),
        K_INT(poll_interval_ms, 100, 60000, 1000,
              "period of the status, list and metrics calls to both components"),
        K_INT(call_timeout_ms, 100, 600000, 5000, "timeout of one D-Bus call (drain excepted)"),
        K_INT(drain_timeout_ms, 1000, 3600000, 30000, "timeout of each component's Drain()"),
        K_STR(collector_binary, NULL,
              "--spawn-pod: ipfixd-collector to run (default: beside this executable, "
              "else $PATH)"),
        K_STR(mediator_binary, NULL, "--spawn-pod: ipfixd-mediator to run (same default)"),
        K_STR(collector_config, NULL, "--spawn-pod: the collector's --config file"),
        K_STR(mediator_config, NULL, "--spawn-pod: the mediator's --config file"),
        K_INT(restart_min_ms, 10, 600000, 500,
              "--spawn-pod: first restart delay of a crashed child (doubles per crash)"),
        K_INT(restart_max_ms, 10, 3600000, 30000, "--spawn-pod: largest restart delay"),
        K_INT(stop_timeout_ms, 0, 600000, 10000,
              "on SIGTERM, how long each child may take before SIGKILL"),
};
const size_t controller_config_n_keys = ELEMENTSOF(controller_config_keys);

void controller_config_done(ControllerConfig *c) {
        config_free(controller_config_keys, controller_config_n_keys, c);
}

static bool listen_ok(const char *s) {
        const char *colon = strrchr(s, ':');
        char *end;
        long port;

        if (!colon)             /* ":PORT" is every address */
                return false;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        return errno == 0 && end != colon + 1 && *end == '\0' && port >= 0 && port <= 65535;
}

int controller_config_validate(const ControllerConfig *c, char **reterr) {
        if (log_level_from_string(c->log_level) < 0) {
                *reterr = config_errorf("log_level: unknown level '%s'", c->log_level);
                return -EINVAL;
        }
        if (c->pod_name && (strlen(c->pod_name) == 0 || strlen(c->pod_name) > 253)) {
                *reterr = config_errorf("pod_name: must be 1..253 characters");
                return -EINVAL;
        }
        if (c->bus_address && !*c->bus_address) {
                *reterr = config_errorf("bus_address: must not be empty (unset it instead)");
                return -EINVAL;
        }
        if (!c->bus_address) {
                if (!c->bus_socket || c->bus_socket[0] != '/' ||
                    strlen(c->bus_socket) >= sizeof(((struct sockaddr_un *) NULL)->sun_path)) {
                        *reterr = config_errorf("bus_socket: must be an absolute path shorter "
                                                "than 108 bytes");
                        return -EINVAL;
                }
        }
        if (!c->http_listen || !listen_ok(c->http_listen)) {
                *reterr = config_errorf("http_listen: must be HOST:PORT, [V6]:PORT or :PORT");
                return -EINVAL;
        }
        if (c->token_file && !*c->token_file) {
                *reterr = config_errorf("token_file: must not be empty (unset it instead)");
                return -EINVAL;
        }
        if (c->restart_max_ms < c->restart_min_ms) {
                *reterr = config_errorf("restart_max_ms: must be at least restart_min_ms (%" PRId64
                                        ")", c->restart_min_ms);
                return -EINVAL;
        }
        return 0;
}

int controller_config_parse(const char *json, bool use_env, ControllerConfig *ret,
                            char **reterr) {
        int r;

        memset(ret, 0, sizeof(*ret));
        r = config_parse(controller_config_keys, controller_config_n_keys, json,
                         use_env ? "IPFIXD_CONTROLLER_" : NULL, ret, reterr);
        if (r < 0)
                return r;
        return controller_config_validate(ret, reterr);
}
