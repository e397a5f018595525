/* SPDX-License-Identifier: MIT */
/*
 * pod.h - the pod's processes as the controller runs them.
 *
 * PodChild supervises one child process: the dbus-daemon the controller starts, and with
 * --spawn-pod the collector and the mediator. A child runs in its own process group (a
 * terminal's Ctrl-C reaches only the controller, which then stops the children in order),
 * gets SIGTERM if the controller dies (PR_SET_PDEATHSIG), has its exit status logged and is
 * restarted with exponential backoff like a kubelet does; stopping it sends SIGTERM, then
 * SIGKILL after a timeout. Exit is noticed through sd_event_add_child(): SIGCHLD must be
 * blocked (pod_block_signals()) before the first child starts.
 *
 * Pod is the collector + mediator pair of --spawn-pod; pod_run() runs the controller's loop
 * and, on SIGTERM/SIGINT, stops everything in data-path order: collector, mediator, then the
 * controller's own dbus-daemon (controller_stop()), and returns 0.
 */
#pragma once

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "controller-config.h"
#include "controller.h"
#include "macro.h"
#include "metrics.h"

typedef void (*PodStopDone)(void *userdata);

typedef struct PodChild PodChild;

typedef struct PodChildConfig {
        const char *name;               /* for logs and metrics: "collector", "dbus-daemon" */
        char *const *argv;              /* argv[0] is the path executed; copied */
        char *const *env;               /* "KEY=VALUE" set over our environment; copied; or NULL */
        uint64_t restart_min_ms;        /* first restart delay, doubling; 0: never restart */
        uint64_t restart_max_ms;
        uint64_t stop_timeout_ms;       /* SIGTERM, then SIGKILL after this long */
        /* Before each start: may set *ret_fd to an fd the child receives as fd 3 (the parent's
         * copy is closed after the fork). A negative return fails this start. */
        int (*on_prepare)(void *userdata, int *ret_fd);
        /* After the child exited (not called from pod_child_free()). */
        void (*on_exited)(void *userdata, const siginfo_t *si);
        void *userdata;
} PodChildConfig;

/* Creates a stopped child (strings copied). Return: 0, -ENOMEM, -EINVAL. */
int pod_child_new(PodChild **ret, sd_event *e, const PodChildConfig *cfg);
/**
 * pod_child_start() - forks and execs now.
 * Return: 0, -EBUSY (already running), or -errno of the fork or the exec (-ENOENT: no such
 * binary); a failed start is not retried (restarts are only for a child that ran).
 */
int pod_child_start(PodChild *p);
/**
 * pod_child_stop() - stops for good: cancels a pending restart, sends SIGTERM, SIGKILL after
 * stop_timeout_ms. @done runs on the loop once the child is gone (later, also when it was
 * not running). Return: 0, -EALREADY (already stopping), -ENOMEM.
 */
int pod_child_stop(PodChild *p, PodStopDone done, void *userdata);
/* Kills (SIGKILL) and reaps a child still running, without callbacks. */
PodChild *pod_child_free(PodChild *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(PodChild *, pod_child_free);
pid_t pod_child_pid(const PodChild *p);                 /* 0 when not running */
uint64_t pod_child_restarts(const PodChild *p);
const char *pod_child_name(const PodChild *p);

/**
 * pod_find_executable() - @name with a slash is taken as is; else searched in $PATH.
 * Return: 0 and a heap path, -ENOENT.
 */
int pod_find_executable(const char *name, char **ret);

/* Blocks SIGCHLD, SIGTERM and SIGINT (they arrive as sd-event sources). Return: 0, -errno. */
int pod_block_signals(void);

typedef struct Pod Pod;

/**
 * pod_new() - starts the mediator, then the collector, each with --config from @cfg and
 * IPFIXD_BUS_ADDRESS=@bus_address (@cfg and @bus_address are borrowed for the pod's life).
 * Binaries: collector_binary/mediator_binary, else beside /proc/self/exe (../collector/ and
 * ../mediator/ of a build tree, or the same directory), else $PATH.
 * Return: 0, or -errno (logged) when a binary is missing or cannot be started.
 */
int pod_new(Pod **ret, sd_event *e, const ControllerConfig *cfg, const char *bus_address);
Pod *pod_free(Pod *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pod *, pod_free);
/* Stops the collector, then the mediator; @done on the loop afterwards. Return: 0, -errno. */
int pod_stop(Pod *p, PodStopDone done, void *userdata);
/* ipfixd_controller_child_up / _child_restarts_total{component=...}. */
void pod_render_metrics(Pod *p, MetricsBuf *b);

/**
 * pod_run() - sd_notify(READY=1), then runs @e until SIGTERM/SIGINT; then stops @p (may be
 * NULL: no --spawn-pod) and @c's dbus-daemon in order and returns. A second signal while
 * stopping is logged and otherwise ignored (the stop timeouts bound the wait).
 * Return: 0 or -errno of the loop.
 */
int pod_run(sd_event *e, Controller *c, Pod *p);
