/* SPDX-License-Identifier: MIT */
/*
 * rotate.c - temp-name, rotate and rename logic for output file series (see rotate.h).
 *
 * Everything is relative to a directory fd opened once, so a rename never crosses
 * directories and the directory can be fsynced after it. Writes use pwrite() at the known
 * size, so truncating back after a failed write leaves the file exactly as before it.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "rotate.h"

#define NAME_MAX_LEN 512
#define RENAME_TRIES 1000u

struct RotatingFile {
        int dir_fd;
        char *prefix;
        char *suffix;
        uint64_t rotate_ms, rotate_bytes;
        RotateClockFn clock;
        void *clock_userdata;

        int fd;                         /* -EBADF when no file is open */
        uint64_t size;
        uint64_t opened_ms;
        char stamp[32];                 /* UTC open time of the current file */
        uint64_t seq;                   /* next sequence number */
        uint64_t cur_seq;
        uint64_t files;
        char temp[NAME_MAX_LEN];
        char last[NAME_MAX_LEN];
        char *dir_path;
        char temp_path[NAME_MAX_LEN * 2];
        char last_path[NAME_MAX_LEN * 2];
};

static uint64_t default_clock(void *userdata) {
        return now_realtime_ms();
}

static uint64_t clock_ms(const RotatingFile *f) {
        return f->clock(f->clock_userdata);
}

int rotate_file_new(RotatingFile **ret, const RotateParams *p) {
        RotatingFile *f;
        const char *slash, *prefix;
        char *dir;

        assert(ret);
        assert(p);
        if (!p->path || !p->suffix || !*p->suffix || strchr(p->suffix, '/'))
                return -EINVAL;
        slash = strrchr(p->path, '/');
        prefix = slash ? slash + 1 : p->path;
        if (!*prefix || strlen(prefix) + strlen(p->suffix) > NAME_MAX_LEN - 64)
                return -EINVAL;
        if (!slash)
                dir = strdup(".");
        else if (slash == p->path)
                dir = strdup("/");
        else
                dir = strndup(p->path, (size_t) (slash - p->path));
        if (!dir)
                return -ENOMEM;

        f = calloc(1, sizeof(*f));
        if (!f) {
                free(dir);
                return -ENOMEM;
        }
        f->fd = -EBADF;
        f->dir_path = dir;
        f->rotate_ms = p->rotate_ms;
        f->rotate_bytes = p->rotate_bytes;
        f->clock = p->clock ? p->clock : default_clock;
        f->clock_userdata = p->clock_userdata;
        f->prefix = strdup(prefix);
        f->suffix = strdup(p->suffix);
        if (!f->prefix || !f->suffix) {
                rotate_file_free(f);
                return -ENOMEM;
        }
        f->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (f->dir_fd < 0) {
                int r = -errno;
                f->dir_fd = -EBADF;
                rotate_file_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

RotatingFile *rotate_file_free(RotatingFile *f) {
        if (!f)
                return NULL;
        (void) rotate_file_close(f);
        safe_close(f->dir_fd);
        free(f->dir_path);
        free(f->prefix);
        free(f->suffix);
        free(f);
        return NULL;
}

static int open_new(RotatingFile *f) {
        struct tm tm;
        time_t t;

        f->opened_ms = clock_ms(f);
        t = (time_t) (f->opened_ms / 1000u);
        if (!gmtime_r(&t, &tm) || strftime(f->stamp, sizeof(f->stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
                return -EINVAL;

        /* A temp name left by another process (or an earlier crash) is never reused. */
        for (unsigned i = 0; i < RENAME_TRIES; i++) {
                int fd;

                f->cur_seq = f->seq++;
                (void) snprintf(f->temp, sizeof(f->temp), ".%s-%s-%06llu.%s.tmp", f->prefix,
                                f->stamp, (unsigned long long) f->cur_seq, f->suffix);
                fd = openat(f->dir_fd, f->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY,
                            0644);
                if (fd >= 0) {
                        f->fd = fd;
                        f->size = 0;
                        (void) snprintf(f->temp_path, sizeof(f->temp_path), "%s/%s", f->dir_path,
                                        f->temp);
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

int rotate_file_write(RotatingFile *f, const void *data, size_t len) {
        const uint8_t *p = data;
        size_t done = 0;
        int r;

        assert(f);
        if (f->fd < 0) {
                r = open_new(f);
                if (r < 0)
                        return r;
        }
        while (done < len) {
                ssize_t k = pwrite(f->fd, p + done, len - done, (off_t) (f->size + done));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = k < 0 ? -errno : -EIO;
                        /* Whole writes only: cut a torn one off again. */
                        (void) ftruncate(f->fd, (off_t) f->size);
                        return r;
                }
                done += (size_t) k;
        }
        f->size += len;
        return 0;
}

bool rotate_file_should_rotate(const RotatingFile *f, size_t next_len) {
        uint64_t now;

        if (f->fd < 0)
                return false;
        if (f->rotate_bytes > 0 && f->size > 0 && f->size + next_len > f->rotate_bytes)
                return true;
        if (f->rotate_ms > 0) {
                now = clock_ms(f);
                /* A clock stepping backwards makes the file younger, never older. */
                if (now >= f->opened_ms && now - f->opened_ms >= f->rotate_ms)
                        return true;
        }
        return false;
}

/* renameat2(RENAME_NOREPLACE), with link+unlink where the filesystem lacks it. */
static int rename_noreplace(int dir_fd, const char *from, const char *to) {
        if (renameat2(dir_fd, from, dir_fd, to, RENAME_NOREPLACE) >= 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
                return -errno;
        if (linkat(dir_fd, from, dir_fd, to, 0) >= 0) {
                (void) unlinkat(dir_fd, from, 0);
                return 0;
        }
        return -errno;
}

int rotate_file_close(RotatingFile *f) {
        int r = 0, k = -EEXIST;

        assert(f);
        if (f->fd < 0)
                return 0;
        if (f->size == 0) {
                f->fd = safe_close(f->fd);
                if (unlinkat(f->dir_fd, f->temp, 0) < 0)
                        return -errno;
                return 0;
        }
        if (fdatasync(f->fd) < 0)
                r = -errno;
        if (close(f->fd) < 0 && r == 0 && errno != EINTR)
                r = -errno;
        f->fd = -EBADF;

        for (unsigned i = 0; i < RENAME_TRIES; i++) {
                uint64_t seq = i == 0 ? f->cur_seq : f->seq++;

                (void) snprintf(f->last, sizeof(f->last), "%s-%s-%06llu.%s", f->prefix, f->stamp,
                                (unsigned long long) seq, f->suffix);
                k = rename_noreplace(f->dir_fd, f->temp, f->last);
                if (k != -EEXIST)
                        break;
        }
        if (k < 0) {
                /* The data stays under its temp name for an operator to recover. */
                f->last[0] = '\0';
                return r < 0 ? r : k;
        }
        f->files++;
        (void) snprintf(f->last_path, sizeof(f->last_path), "%s/%s", f->dir_path, f->last);
        (void) fsync(f->dir_fd);
        return r;
}

bool rotate_file_is_open(const RotatingFile *f) {
        return f->fd >= 0;
}

uint64_t rotate_file_size(const RotatingFile *f) {
        return f->fd >= 0 ? f->size : 0;
}

uint64_t rotate_file_count(const RotatingFile *f) {
        return f->files;
}

const char *rotate_file_temp_path(const RotatingFile *f) {
        return f->fd >= 0 ? f->temp_path : NULL;
}

const char *rotate_file_last_path(const RotatingFile *f) {
        return f->last[0] ? f->last_path : NULL;
}
