/* SPDX-License-Identifier: MIT */
/*
 * pod.c - child process supervision (PodChild), the --spawn-pod pair (Pod) and the
 * controller's run/shutdown sequence (pod_run()).
 *
 * Invariants: a PodChild has at most one process; its pid is non-zero exactly while that
 * process has not been seen exiting; while stopping it is never restarted. Children are
 * forked from the loop thread only, with every signal unblocked and at default disposition
 * in the child, stdin on /dev/null, in a process group of their own.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "bus-names.h"
#include "log.h"
#include "macro.h"
#include "pod.h"

extern char **environ;

struct PodChild {
        sd_event *event;
        char *name;
        char **argv;
        char **env;
        uint64_t restart_min_ms, restart_max_ms, stop_timeout_ms;
        int (*on_prepare)(void *userdata, int *ret_fd);
        void (*on_exited)(void *userdata, const siginfo_t *si);
        void *userdata;

        pid_t pid;
        sd_event_source *child_source;
        sd_event_source *restart_timer;
        sd_event_source *kill_timer;
        sd_event_source *stop_defer;
        uint64_t started_usec;
        unsigned crashes;               /* consecutive short runs: the backoff exponent */
        uint64_t restarts;
        bool stopping;
        PodStopDone stop_done;
        void *stop_userdata;
};

static char **strv_free(char **v) {
        for (char **s = v; s && *s; s++)
                free(*s);
        free(v);
        return NULL;
}

static char **strv_copy(char *const *v) {
        size_t n = 0;
        char **c;

        while (v && v[n])
                n++;
        c = calloc(n + 1, sizeof(*c));
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(c[i] = strdup(v[i])))
                        return strv_free(c);
        return c;
}

/* Our environment with @add's keys replaced; the strings are borrowed (free the array). */
static char **env_merge(char *const *add) {
        size_t n = 0, k = 0;
        char **v;

        for (char **e = environ; e && *e; e++)
                n++;
        for (char *const *a = add; a && *a; a++)
                n++;
        v = calloc(n + 1, sizeof(*v));
        if (!v)
                return NULL;
        for (char **e = environ; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                size_t kl = eq ? (size_t) (eq - *e) + 1 : strlen(*e);
                bool replaced = false;

                for (char *const *a = add; a && *a; a++)
                        if (strncmp(*a, *e, kl) == 0)
                                replaced = true;
                if (!replaced)
                        v[k++] = *e;
        }
        for (char *const *a = add; a && *a; a++)
                v[k++] = *a;
        return v;
}

/* In the child after fork(): only async-signal-safe calls. Reports a failure as an errno
 * value on @err_fd (close-on-exec, so a successful exec reports nothing). */
_noreturn_ static void child_exec(char *const *argv, char *const *envp, int pass_fd, int err_fd,
                                  pid_t parent) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t ss;
        int null_fd, e;
        ssize_t k;

        (void) setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
                goto fail;
        if (getppid() != parent)        /* the controller died before prctl() */
                _exit(EXIT_FAILURE);
        for (int sig = 1; sig < NSIG; sig++)
                (void) sigaction(sig, &sa, NULL);
        sigemptyset(&ss);
        if (sigprocmask(SIG_SETMASK, &ss, NULL) < 0)
                goto fail;

        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0)
                goto fail;
        if (null_fd != STDIN_FILENO) {
                if (dup2(null_fd, STDIN_FILENO) < 0)
                        goto fail;
                (void) close(null_fd);
        } else if (fcntl(STDIN_FILENO, F_SETFD, 0) < 0)
                goto fail;

        if (err_fd <= 3) {
                int moved = fcntl(err_fd, F_DUPFD_CLOEXEC, 10);
                if (moved < 0)
                        goto fail;
                err_fd = moved;
        }
        if (pass_fd >= 0) {
                if (pass_fd == 3) {
                        if (fcntl(3, F_SETFD, 0) < 0)
                                goto fail;
                } else if (dup2(pass_fd, 3) < 0)
                        goto fail;
        }
        execve(argv[0], argv, envp);
fail:
        e = errno;
        k = write(err_fd, &e, sizeof(e));
        (void) k;
        _exit(127);
}

static int spawn(PodChild *p, pid_t *ret_pid) {
        _cleanup_close_ int pass_fd = -EBADF, err_r = -EBADF, err_w = -EBADF;
        _cleanup_free_ char **envp = NULL;
        pid_t parent = getpid(), pid;
        int fds[2], e = 0, r;
        ssize_t k;

        if (p->on_prepare) {
                r = p->on_prepare(p->userdata, &pass_fd);
                if (r < 0)
                        return r;
        }
        envp = env_merge(p->env);
        if (!envp)
                return -ENOMEM;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        err_r = fds[0];
        err_w = fds[1];

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(p->argv, envp, pass_fd, err_w, parent);

        (void) setpgid(pid, pid);       /* both sides set it: no window for a group signal */
        err_w = safe_close(err_w);
        do
                k = read(err_r, &e, sizeof(e));
        while (k < 0 && errno == EINTR);
        if (k == (ssize_t) sizeof(e)) {
                (void) waitpid(pid, NULL, 0);
                return e > 0 ? -e : -EIO;
        }
        *ret_pid = pid;
        return 0;
}

static void describe_exit(const siginfo_t *si, char *buf, size_t len) {
        const char *sig;

        switch (si->si_code) {
        case CLD_EXITED:
                (void) snprintf(buf, len, "status=%d", si->si_status);
                break;
        case CLD_KILLED:
        case CLD_DUMPED:
                sig = sigabbrev_np(si->si_status);
                (void) snprintf(buf, len, "signal=%s%s", sig ? sig : "?",
                                si->si_code == CLD_DUMPED ? " core_dumped=yes" : "");
                break;
        default:
                (void) snprintf(buf, len, "code=%d status=%d", si->si_code, si->si_status);
        }
}

static uint64_t backoff_ms(const PodChild *p) {
        uint64_t d = p->restart_min_ms;

        for (unsigned i = 0; i < p->crashes && d < p->restart_max_ms; i++)
                d *= 2;
        return MIN(d, p->restart_max_ms);
}

static int arm_timer(sd_event *e, sd_event_source **s, uint64_t ms,
                     sd_event_time_handler_t cb, void *userdata) {
        int r;

        if (*s) {
                r = sd_event_source_set_time_relative(*s, ms * 1000);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
        }
        return sd_event_add_time_relative(e, s, CLOCK_MONOTONIC, ms * 1000, 1000, cb, userdata);
}

static void child_schedule_restart(PodChild *p);

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        PodChild *p = userdata;
        int r;

        p->restarts++;
        r = pod_child_start(p);
        if (r < 0) {
                log_error_errno(r, "Failed to restart %s: %m", p->name);
                p->crashes++;
                child_schedule_restart(p);
        }
        return 0;
}

static void child_schedule_restart(PodChild *p) {
        uint64_t d = backoff_ms(p);
        int r;

        r = arm_timer(p->event, &p->restart_timer, d, on_restart_timer, p);
        if (r < 0)
                log_error_errno(r, "Failed to schedule the restart of %s, leaving it down: %m",
                                p->name);
        else
                log_notice("Restarting %s in %" PRIu64 " ms restart=%" PRIu64, p->name, d,
                           p->restarts + 1);
}

static void child_stop_finished(PodChild *p) {
        PodStopDone done = p->stop_done;

        p->stop_done = NULL;
        if (p->kill_timer)
                (void) sd_event_source_set_enabled(p->kill_timer, SD_EVENT_OFF);
        if (done)
                done(p->stop_userdata);
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        PodChild *p = userdata;
        uint64_t ran_ms = (now_usec() - p->started_usec) / 1000;
        char status[64];

        describe_exit(si, status, sizeof(status));
        p->pid = 0;
        if (p->on_exited)
                p->on_exited(p->userdata, si);

        if (p->stopping) {
                log_info("Stopped %s pid=%d %s", p->name, (int) si->si_pid, status);
                child_stop_finished(p);
                return 0;
        }
        log_warning("Child %s exited after %" PRIu64 " ms pid=%d %s", p->name, ran_ms,
                    (int) si->si_pid, status);
        if (p->restart_min_ms == 0)
                return 0;
        /* Like a kubelet: a child that ran for a while starts over with the shortest delay. */
        if (ran_ms >= MAX(2 * p->restart_max_ms, UINT64_C(10000)))
                p->crashes = 0;
        child_schedule_restart(p);
        p->crashes++;
        return 0;
}

int pod_child_new(PodChild **ret, sd_event *e, const PodChildConfig *cfg) {
        PodChild *p;

        assert(ret && e && cfg && cfg->name);
        if (!cfg->argv || !cfg->argv[0])
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->name = strdup(cfg->name);
        p->argv = strv_copy(cfg->argv);
        p->env = strv_copy(cfg->env);
        if (!p->name || !p->argv || !p->env) {
                pod_child_free(p);
                return -ENOMEM;
        }
        p->restart_min_ms = cfg->restart_min_ms;
        p->restart_max_ms = MAX(cfg->restart_max_ms, cfg->restart_min_ms);
        p->stop_timeout_ms = cfg->stop_timeout_ms;
        p->on_prepare = cfg->on_prepare;
        p->on_exited = cfg->on_exited;
        p->userdata = cfg->userdata;
        *ret = p;
        return 0;
}

int pod_child_start(PodChild *p) {
        pid_t pid = 0;
        int r;

        assert(p);
        if (p->pid > 0)
                return -EBUSY;
        if (p->stopping)
                return -ESHUTDOWN;
        /* The previous process was reaped already; its source only needs releasing. */
        p->child_source = sd_event_source_unref(p->child_source);

        r = spawn(p, &pid);
        if (r < 0)
                return r;
        r = sd_event_add_child(p->event, &p->child_source, pid, WEXITED, on_child_exit, p);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        /* Freeing the source (pod_child_free()) then kills and reaps the child. */
        (void) sd_event_source_set_child_process_own(p->child_source, true);
        p->pid = pid;
        p->started_usec = now_usec();
        log_info("Started %s pid=%d binary=%s", p->name, (int) pid, p->argv[0]);
        return 0;
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        PodChild *p = userdata;

        if (p->pid <= 0)
                return 0;
        log_warning("Child %s did not stop within %" PRIu64 " ms, sending SIGKILL pid=%d",
                    p->name, p->stop_timeout_ms, (int) p->pid);
        (void) kill(-p->pid, SIGKILL);  /* its whole process group */
        (void) sd_event_source_send_child_signal(p->child_source, SIGKILL, NULL, 0);
        return 0;
}

static int on_stop_defer(sd_event_source *s, void *userdata) {
        child_stop_finished(userdata);
        return 0;
}

int pod_child_stop(PodChild *p, PodStopDone done, void *userdata) {
        int r;

        assert(p);
        if (p->stopping)
                return -EALREADY;
        p->stopping = true;
        p->stop_done = done;
        p->stop_userdata = userdata;
        if (p->restart_timer)
                (void) sd_event_source_set_enabled(p->restart_timer, SD_EVENT_OFF);

        if (p->pid <= 0)
                return sd_event_add_defer(p->event, &p->stop_defer, on_stop_defer, p);

        log_info("Stopping %s pid=%d (SIGTERM, SIGKILL after %" PRIu64 " ms)", p->name,
                 (int) p->pid, p->stop_timeout_ms);
        r = sd_event_source_send_child_signal(p->child_source, SIGTERM, NULL, 0);
        if (r < 0 && r != -ESRCH)
                log_warning_errno(r, "Failed to send SIGTERM to %s, ignoring: %m", p->name);
        r = arm_timer(p->event, &p->kill_timer, p->stop_timeout_ms, on_kill_timer, p);
        if (r < 0)
                (void) on_kill_timer(NULL, 0, p);
        return 0;
}

PodChild *pod_child_free(PodChild *p) {
        if (!p)
                return NULL;
        if (p->pid > 0)
                log_warning("Killing %s pid=%d", p->name, (int) p->pid);
        sd_event_source_unref(p->child_source);
        sd_event_source_unref(p->restart_timer);
        sd_event_source_unref(p->kill_timer);
        sd_event_source_unref(p->stop_defer);
        sd_event_unref(p->event);
        strv_free(p->argv);
        strv_free(p->env);
        free(p->name);
        free(p);
        return NULL;
}

pid_t pod_child_pid(const PodChild *p) {
        return p->pid;
}

uint64_t pod_child_restarts(const PodChild *p) {
        return p->restarts;
}

const char *pod_child_name(const PodChild *p) {
        return p->name;
}

static bool is_executable(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int pod_find_executable(const char *name, char **ret) {
        const char *path = getenv("PATH");
        char buf[PATH_MAX];

        if (strchr(name, '/')) {
                if (!is_executable(name))
                        return -ENOENT;
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                size_t l = strcspn(path, ":");
                int n = snprintf(buf, sizeof(buf), "%.*s/%s", (int) l, path, name);

                if (l > 0 && n > 0 && (size_t) n < sizeof(buf) && is_executable(buf)) {
                        *ret = strdup(buf);
                        return *ret ? 0 : -ENOMEM;
                }
                path += l;
                if (*path == ':')
                        path++;
        }
        return -ENOENT;
}

int pod_block_signals(void) {
        sigset_t ss;

        sigemptyset(&ss);
        sigaddset(&ss, SIGCHLD);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        return sigprocmask(SIG_BLOCK, &ss, NULL) < 0 ? -errno : 0;
}

/* ---- the collector + mediator pair ---- */

enum { POD_COLLECTOR, POD_MEDIATOR, _POD_MAX };

static const struct {
        const char *name, *dir, *exe;
} pod_components[_POD_MAX] = {
        [POD_COLLECTOR] = { "collector", "collector", "ipfixd-collector" },
        [POD_MEDIATOR] = { "mediator", "mediator", "ipfixd-mediator" },
};

struct Pod {
        sd_event *event;
        PodChild *children[_POD_MAX];
        unsigned stop_next;
        PodStopDone stop_done;
        void *stop_userdata;
};

/* Beside our own executable: a build tree (dbus-controller/../collector/) or an install
 * (same directory); then $PATH. */
static int find_component(const char *configured, unsigned i, char **ret) {
        char self[PATH_MAX], buf[PATH_MAX];
        ssize_t n;
        char *slash;

        if (configured)
                return pod_find_executable(configured, ret);
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        if (snprintf(buf, sizeof(buf), "%s/../%s/%s", self, pod_components[i].dir,
                                     pod_components[i].exe) < (int) sizeof(buf) &&
                            is_executable(buf) && realpath(buf, self)) {
                                *ret = strdup(self);
                                return *ret ? 0 : -ENOMEM;
                        }
                        if (snprintf(buf, sizeof(buf), "%s/%s", self, pod_components[i].exe) <
                                    (int) sizeof(buf) &&
                            is_executable(buf)) {
                                *ret = strdup(buf);
                                return *ret ? 0 : -ENOMEM;
                        }
                }
        }
        return pod_find_executable(pod_components[i].exe, ret);
}

int pod_new(Pod **ret, sd_event *e, const ControllerConfig *cfg, const char *bus_address) {
        _cleanup_(pod_freep) Pod *p = NULL;
        _cleanup_free_ char *env_bus = NULL;
        int r;

        assert(ret && e && cfg && bus_address);
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        if (asprintf(&env_bus, "%s=%s", BUS_ADDRESS_ENV, bus_address) < 0)
                return -ENOMEM;

        for (unsigned i = 0; i < _POD_MAX; i++) {
                const char *configured = i == POD_COLLECTOR ? cfg->collector_binary
                                                            : cfg->mediator_binary;
                const char *config = i == POD_COLLECTOR ? cfg->collector_config
                                                        : cfg->mediator_config;
                _cleanup_free_ char *binary = NULL;
                char *argv[4] = { NULL, NULL, NULL, NULL };
                char *env[2] = { env_bus, NULL };

                r = find_component(configured, i, &binary);
                if (r < 0)
                        return log_error_errno(r, "Failed to find %s (set %s_binary): %m",
                                               pod_components[i].exe, pod_components[i].name);
                argv[0] = binary;
                if (config) {
                        argv[1] = (char *) "--config";
                        argv[2] = (char *) config;
                }
                r = pod_child_new(&p->children[i], e,
                                  &(PodChildConfig) {
                                          .name = pod_components[i].name,
                                          .argv = argv,
                                          .env = env,
                                          .restart_min_ms = (uint64_t) cfg->restart_min_ms,
                                          .restart_max_ms = (uint64_t) cfg->restart_max_ms,
                                          .stop_timeout_ms = (uint64_t) cfg->stop_timeout_ms,
                                  });
                if (r < 0)
                        return log_error_errno(r, "Failed to set up %s: %m",
                                               pod_components[i].name);
        }
        /* Against the data path: the mediator binds what the collector connects to. */
        for (int i = _POD_MAX - 1; i >= 0; i--) {
                r = pod_child_start(p->children[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to start %s: %m",
                                               pod_components[i].name);
        }
        *ret = TAKE_PTR(p);
        return 0;
}

Pod *pod_free(Pod *p) {
        if (!p)
                return NULL;
        for (unsigned i = 0; i < _POD_MAX; i++)
                pod_child_free(p->children[i]);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}

static void pod_stop_next(void *userdata) {
        Pod *p = userdata;
        int r;

        /* Data-path order: the collector hands its last batches over before the mediator
         * stops. */
        while (p->stop_next < _POD_MAX) {
                r = pod_child_stop(p->children[p->stop_next++], pod_stop_next, p);
                if (r >= 0)
                        return;
                log_error_errno(r, "Failed to stop %s: %m", pod_components[p->stop_next - 1].name);
        }
        if (p->stop_done)
                p->stop_done(p->stop_userdata);
}

int pod_stop(Pod *p, PodStopDone done, void *userdata) {
        assert(p);
        if (p->stop_done)
                return -EALREADY;
        p->stop_done = done;
        p->stop_userdata = userdata;
        p->stop_next = 0;
        pod_stop_next(p);
        return 0;
}

void pod_render_metrics(Pod *p, MetricsBuf *b) {
        char labels[64];

        metrics_header(b, "ipfixd_controller_child_up", "gauge",
                       "1 while the supervised child process runs (--spawn-pod)");
        for (unsigned i = 0; i < _POD_MAX; i++) {
                (void) snprintf(labels, sizeof(labels), "component=\"%s\"", pod_components[i].name);
                metrics_sample(b, "ipfixd_controller_child_up", labels,
                               pod_child_pid(p->children[i]) > 0);
        }
        metrics_header(b, "ipfixd_controller_child_restarts_total", "counter",
                       "restarts of a crashed child process (--spawn-pod)");
        for (unsigned i = 0; i < _POD_MAX; i++) {
                (void) snprintf(labels, sizeof(labels), "component=\"%s\"", pod_components[i].name);
                metrics_sample(b, "ipfixd_controller_child_restarts_total", labels,
                               pod_child_restarts(p->children[i]));
        }
}

/* ---- run and shut down ---- */

typedef struct PodRun {
        sd_event *event;
        Controller *controller;
        Pod *pod;
        bool stopping;
} PodRun;

static void on_controller_stopped(void *userdata) {
        PodRun *run = userdata;

        log_info("Pod stopped");
        (void) sd_event_exit(run->event, 0);
}

static void on_pod_stopped(void *userdata) {
        PodRun *run = userdata;
        int r;

        r = controller_stop(run->controller, on_controller_stopped, run);
        if (r < 0) {
                log_error_errno(r, "Failed to stop the controller: %m");
                (void) sd_event_exit(run->event, 0);
        }
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        PodRun *run = userdata;
        const char *sig = sigabbrev_np((int) si->ssi_signo);
        int r;

        if (run->stopping) {
                log_notice("Received SIG%s while stopping, still waiting for the children",
                           sig ? sig : "?");
                return 0;
        }
        run->stopping = true;
        log_info("Received SIG%s, stopping%s", sig ? sig : "?",
                 run->pod ? " the collector, the mediator, then the bus" : "");
        (void) sd_notify(false, "STOPPING=1");
        if (!run->pod) {
                on_pod_stopped(run);
                return 0;
        }
        r = pod_stop(run->pod, on_pod_stopped, run);
        if (r < 0) {
                log_error_errno(r, "Failed to stop the pod: %m");
                on_pod_stopped(run);
        }
        return 0;
}

static void on_hup_reload_done(void *userdata, int status, json_t *result) {
        _cleanup_free_ char *text = result ? json_dumps(result, JSON_COMPACT) : NULL;

        if (status == 200)
                log_info("SIGHUP: both components re-read their configuration: %s",
                         text ? text : "{}");
        else
                log_error("SIGHUP: reload failed (%d): %s", status, text ? text : "");
}

/* SIGHUP asks both components to re-read their files, as POST /api/v1/reload with an empty
 * body does. */
static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        PodRun *run = userdata;
        int r;

        if (run->stopping)
                return 0;
        r = controller_reload(run->controller, NULL, on_hup_reload_done, NULL);
        if (r < 0)
                log_warning_errno(r, "SIGHUP: cannot reload now: %m");
        return 0;
}

static void render_pod_metrics(void *userdata, MetricsBuf *b) {
        pod_render_metrics(userdata, b);
}

int pod_run(sd_event *e, Controller *c, Pod *p) {
        PodRun run = { .event = e, .controller = c, .pod = p };
        sd_event_source *term = NULL, *intr = NULL, *hup = NULL;
        int r;

        r = sd_event_add_signal(e, &term, SIGTERM, on_terminate, &run);
        if (r >= 0)
                r = sd_event_add_signal(e, &intr, SIGINT, on_terminate, &run);
        if (r >= 0)
                r = sd_event_add_signal(e, &hup, SIGHUP, on_hup, &run);
        if (r < 0) {
                sd_event_source_unref(term);
                sd_event_source_unref(intr);
                return log_error_errno(r, "Failed to watch SIGTERM/SIGINT/SIGHUP: %m");
        }
        if (p)
                controller_set_extra_metrics(c, render_pod_metrics, p);
        (void) sd_event_set_watchdog(e, true);
        (void) sd_notify(false, "READY=1");

        r = sd_event_loop(e);

        if (p)
                controller_set_extra_metrics(c, NULL, NULL);
        sd_event_source_unref(term);
        sd_event_source_unref(intr);
        sd_event_source_unref(hup);
        return r;
}
