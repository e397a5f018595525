/* SPDX-License-Identifier: MIT */
/*
 * output-json.c - JSON lines to stdout or rotated files (see output-json.h).
 *
 * Records are formatted into a chunk buffer and written one chunk at a time. Lines are the
 * unit of accounting: a record counts as delivered when its newline has been written, so a
 * partial write to a slow stdout pipe is accounted exactly, whatever byte it stopped at.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "output-json.h"
#include "rotate.h"

#define CHUNK_CAP (256u * 1024u)
#define LINE_MAX_LEN 1024u              /* flow_record_to_json() needs well under 700 */
#define TICK_USEC (1000u * 1000u)

struct OutputJson {
        char *path;
        sd_event *event;
        uint64_t records, messages, bytes, dropped, errors;
        bool error_state;
        bool closed;
        char *chunk;
        size_t chunk_len;
        uint64_t chunk_lines;

        /* stdout */
        bool to_stdout;
        int fd;
        bool use_send;                  /* a socket: send(MSG_DONTWAIT) */
        bool pollable;                  /* pipe or socket */
        sd_event_source *io;            /* EPOLLOUT while pend holds bytes */
        char *pend;                     /* the unwritten tail of a chunk */
        size_t pend_len, pend_off;

        /* files */
        RotatingFile *file;
        sd_event_source *tick;
        uint64_t rotate_bytes;
};

static uint64_t count_lines(const char *p, size_t len) {
        uint64_t n = 0;
        const char *end = p + len;

        while (p < end && (p = memchr(p, '\n', (size_t) (end - p)))) {
                n++;
                p++;
        }
        return n;
}

/*
 * write() without SIGPIPE: a reader that went away must become EPIPE, not kill the daemon.
 * SIGPIPE is blocked around the call and a SIGPIPE the call raised is consumed.
 */
static ssize_t write_nosigpipe(int fd, const void *p, size_t len) {
        sigset_t set, old, pending;
        bool was_pending;
        ssize_t k;
        int saved;

        (void) sigemptyset(&set);
        (void) sigaddset(&set, SIGPIPE);
        (void) pthread_sigmask(SIG_BLOCK, &set, &old);
        was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
        k = write(fd, p, len);
        saved = errno;
        if (k < 0 && saved == EPIPE && !was_pending) {
                struct timespec zero = { 0 };
                (void) sigtimedwait(&set, NULL, &zero);
        }
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
        return k;
}

static ssize_t stdout_write(OutputJson *o, const char *p, size_t len) {
        ssize_t k;

        do {
                if (o->use_send)
                        k = send(o->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                else
                        k = write_nosigpipe(o->fd, p, len);
        } while (k < 0 && errno == EINTR);
        return k;
}

static void stdout_update_io(OutputJson *o) {
        if (o->io)
                (void) sd_event_source_set_enabled(o->io, o->pend_len > o->pend_off ? SD_EVENT_ON
                                                                                    : SD_EVENT_OFF);
}

/* Writes what is pending. Return: true when nothing is pending any more. */
static bool stdout_drain(OutputJson *o) {
        ssize_t k;

        if (o->pend_off == o->pend_len)
                return true;
        k = stdout_write(o, o->pend + o->pend_off, o->pend_len - o->pend_off);
        if (k < 0 && errno != EAGAIN) {
                int r = -errno;
                o->dropped += count_lines(o->pend + o->pend_off, o->pend_len - o->pend_off);
                o->errors++;
                o->error_state = true;
                o->pend_len = o->pend_off = 0;
                log_ratelimited(LOG_WARNING, "output-json", "JSON output: stdout: %s",
                                strerror(-r));
                stdout_update_io(o);
                return true;
        }
        if (k > 0) {
                o->records += count_lines(o->pend + o->pend_off, (size_t) k);
                o->bytes += (uint64_t) k;
                o->pend_off += (size_t) k;
        }
        if (o->pend_off == o->pend_len) {
                o->pend_len = o->pend_off = 0;
                o->messages++;
        }
        stdout_update_io(o);
        return o->pend_len == 0;
}

/* Writes the chunk; an unwritten tail moves to pend. Requires pend to be empty. */
static void stdout_push(OutputJson *o) {
        size_t len = o->chunk_len;
        ssize_t k;

        if (len == 0)
                return;
        o->chunk_len = 0;
        o->chunk_lines = 0;
        k = stdout_write(o, o->chunk, len);
        if (k < 0 && errno != EAGAIN) {
                int r = -errno;
                o->dropped += count_lines(o->chunk, len);
                o->errors++;
                o->error_state = true;
                log_ratelimited(LOG_WARNING, "output-json", "JSON output: stdout: %s",
                                strerror(-r));
                return;
        }
        o->error_state = false;
        if (k < 0)
                k = 0;
        o->records += count_lines(o->chunk, (size_t) k);
        o->bytes += (uint64_t) k;
        if ((size_t) k == len) {
                o->messages++;
                return;
        }
        /* The reader is slow: keep the tail (the chunks swap, no copy). */
        {
                char *t = o->pend;
                o->pend = o->chunk;
                o->chunk = t;
                o->pend_off = (size_t) k;
                o->pend_len = len;
        }
        stdout_update_io(o);
}

static int on_stdout_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) stdout_drain(userdata);
        return 0;
}

static int stdout_open(OutputJson *o) {
        struct stat st;
        int r;

        if (fstat(STDOUT_FILENO, &st) < 0)
                return -errno;
        if (S_ISFIFO(st.st_mode)) {
                /* A new open file description: O_NONBLOCK stays ours. */
                o->fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (o->fd < 0) {
                        /* No /proc: share the description and make it non-blocking. */
                        o->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
                        if (o->fd < 0)
                                return -errno;
                        r = fcntl(o->fd, F_GETFL);
                        if (r < 0 || fcntl(o->fd, F_SETFL, r | O_NONBLOCK) < 0)
                                return -errno;
                }
                o->pollable = true;
        } else {
                o->fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
                if (o->fd < 0)
                        return -errno;
                o->use_send = S_ISSOCK(st.st_mode);
                o->pollable = o->use_send;
        }
        if (o->pollable) {
                r = sd_event_add_io(o->event, &o->io, o->fd, EPOLLOUT, on_stdout_writable, o);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_enabled(o->io, SD_EVENT_OFF);
        }
        o->pend = malloc(CHUNK_CAP);
        return o->pend ? 0 : -ENOMEM;
}

/* ---- files ----------------------------------------------------------------------------- */

static void file_push(OutputJson *o) {
        int r;

        if (o->chunk_len == 0)
                return;
        r = rotate_file_write(o->file, o->chunk, o->chunk_len);
        if (r < 0) {
                o->dropped += o->chunk_lines;
                o->errors++;
                o->error_state = true;
                log_ratelimited(LOG_WARNING, "output-json", "JSON output %s: write failed: %s, "
                                "%" PRIu64 " records dropped", o->path, strerror(-r),
                                o->chunk_lines);
        } else {
                o->error_state = false;
                o->records += o->chunk_lines;
                o->messages++;
                o->bytes += o->chunk_len;
        }
        o->chunk_len = 0;
        o->chunk_lines = 0;
}

static void file_rotate(OutputJson *o) {
        int r = rotate_file_close(o->file);

        if (r < 0) {
                o->errors++;
                log_ratelimited(LOG_WARNING, "output-json", "JSON output %s: closing the file "
                                "failed: %s", o->path, strerror(-r));
        }
}

static int on_file_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        OutputJson *o = userdata;

        if (rotate_file_should_rotate(o->file, 0))
                file_rotate(o);
        (void) sd_event_source_set_time_relative(s, TICK_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* ---- public ---------------------------------------------------------------------------- */

int output_json_new(OutputJson **ret, const OutputJsonParams *p, sd_event *e, char **reterr) {
        OutputJson *o;
        int r;

        assert(ret);
        assert(p);
        assert(reterr);
        if (!e || !p->path)
                return -EINVAL;
        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->fd = -EBADF;
        o->event = sd_event_ref(e);
        o->path = strdup(p->path);
        o->chunk = malloc(CHUNK_CAP);
        if (!o->path || !o->chunk) {
                r = -ENOMEM;
                goto fail;
        }
        if (strcmp(p->path, "-") == 0) {
                o->to_stdout = true;
                r = stdout_open(o);
                if (r < 0) {
                        *reterr = config_errorf("path: cannot use stdout: %s", strerror(-r));
                        goto fail;
                }
        } else {
                RotateParams rp = {
                        .path = p->path,
                        .suffix = "json",
                        .rotate_ms = p->rotate_s * 1000u,
                        .rotate_bytes = p->rotate_bytes,
                };

                o->rotate_bytes = p->rotate_bytes;
                r = rotate_file_new(&o->file, &rp);
                if (r < 0) {
                        *reterr = config_errorf("path: cannot use the directory of '%s': %s",
                                                p->path, strerror(-r));
                        goto fail;
                }
                r = sd_event_add_time_relative(e, &o->tick, CLOCK_MONOTONIC, TICK_USEC, 0,
                                               on_file_tick, o);
                if (r < 0)
                        goto fail;
        }
        *ret = o;
        return 0;
fail:
        output_json_free(o);
        return r;
}

int output_json_write(OutputJson *o, const FlowRecord *recs, size_t n) {
        assert(o);
        if (o->closed)
                return -ESHUTDOWN;

        if (o->to_stdout && !stdout_drain(o)) {
                /* The reader is behind; never wait for it. */
                o->dropped += n;
                return 0;
        }
        if (o->file && rotate_file_should_rotate(o->file, 0))
                file_rotate(o);

        for (size_t i = 0; i < n; i++) {
                size_t start = o->chunk_len;
                int k;

                if (o->to_stdout && start + LINE_MAX_LEN > CHUNK_CAP) {
                        stdout_push(o);
                        if (o->pend_len > 0) {
                                o->dropped += n - i;
                                return 0;
                        }
                        start = 0;
                } else if (o->file && start + LINE_MAX_LEN > CHUNK_CAP) {
                        file_push(o);
                        start = 0;
                }
                k = flow_record_to_json(&recs[i], o->chunk + start, LINE_MAX_LEN - 1);
                if (k < 0) {
                        o->dropped++;
                        o->errors++;
                        continue;
                }
                o->chunk[start + (size_t) k] = '\n';
                k++;
                if (o->file && o->rotate_bytes > 0 &&
                    rotate_file_size(o->file) + start + (size_t) k > o->rotate_bytes &&
                    rotate_file_size(o->file) + start > 0) {
                        /* This line would make the file too large: it starts the next one. */
                        o->chunk_len = start;
                        file_push(o);
                        file_rotate(o);
                        memmove(o->chunk, o->chunk + start, (size_t) k);
                        start = 0;
                }
                o->chunk_len = start + (size_t) k;
                o->chunk_lines++;
        }
        if (o->to_stdout)
                stdout_push(o);
        else
                file_push(o);
        return 0;
}

void output_json_flush(OutputJson *o) {
        assert(o);
        if (o->closed)
                return;
        if (o->to_stdout)
                (void) stdout_drain(o);
}

uint64_t output_json_close(OutputJson *o, uint64_t timeout_ms) {
        uint64_t before;

        assert(o);
        if (o->closed)
                return 0;
        before = o->dropped;
        if (o->to_stdout) {
                uint64_t deadline = now_usec() + timeout_ms * 1000u;

                while (!stdout_drain(o)) {
                        struct pollfd pfd = { .fd = o->fd, .events = POLLOUT };
                        uint64_t now = now_usec();

                        if (now >= deadline || !o->pollable)
                                break;
                        if (poll(&pfd, 1, (int) MIN((deadline - now + 999u) / 1000u, 100u)) < 0 &&
                            errno != EINTR)
                                break;
                }
                o->dropped += count_lines(o->pend + o->pend_off, o->pend_len - o->pend_off);
                o->pend_len = o->pend_off = 0;
                o->io = sd_event_source_disable_unref(o->io);
                o->fd = safe_close(o->fd);
        } else {
                int r;

                file_push(o);
                r = rotate_file_close(o->file);
                if (r < 0) {
                        o->errors++;
                        log_warning("JSON output %s: closing the file failed: %s", o->path,
                                    strerror(-r));
                }
                o->tick = sd_event_source_disable_unref(o->tick);
        }
        o->closed = true;
        return o->dropped - before;
}

OutputJson *output_json_free(OutputJson *o) {
        if (!o)
                return NULL;
        sd_event_source_disable_unref(o->io);
        sd_event_source_disable_unref(o->tick);
        safe_close(o->fd);
        rotate_file_free(o->file);
        sd_event_unref(o->event);
        free(o->chunk);
        free(o->pend);
        free(o->path);
        free(o);
        return NULL;
}

void output_json_get_stats(const OutputJson *o, OutputStats *ret) {
        ret->records = o->records;
        ret->messages = o->messages;
        ret->bytes = o->bytes;
        ret->dropped = o->dropped;
        ret->errors = o->errors;
        ret->files = o->file ? rotate_file_count(o->file) : 0;
        if (o->closed)
                ret->state = "idle";
        else if (o->error_state)
                ret->state = "error";
        else if (o->to_stdout || rotate_file_is_open(o->file))
                ret->state = "open";
        else
                ret->state = "idle";
}
