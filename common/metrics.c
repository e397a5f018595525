/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - Prometheus text writer. Owns nothing but the buffer it grows.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "metrics.h"

void metrics_buf_done(MetricsBuf *b) {
        free(b->data);
        *b = (MetricsBuf) { 0 };
}

static void appendf(MetricsBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(MetricsBuf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        if (b->failed)
                return;
        for (;;) {
                size_t room = b->cap - b->len;
                va_start(ap, fmt);
                n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->failed = true;
                        return;
                }
                if ((size_t) n < room) {
                        b->len += (size_t) n;
                        return;
                }
                size_t ncap = MAX(b->cap * 2, b->len + (size_t) n + 4096);
                char *d = realloc(b->data, ncap);
                if (!d) {
                        b->failed = true;
                        return;
                }
                b->data = d;
                b->cap = ncap;
        }
}

void metrics_header(MetricsBuf *b, const char *name, const char *type, const char *help) {
        appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(MetricsBuf *b, const char *name, const char *labels, uint64_t value) {
        if (labels && *labels)
                appendf(b, "%s{%s} %" PRIu64 "\n", name, labels, value);
        else
                appendf(b, "%s %" PRIu64 "\n", name, value);
}

int metrics_escape_label(const char *v, char *dst, size_t len) {
        size_t o = 0;
        for (; *v; v++) {
                const char *rep = NULL;
                char one[2] = { *v, 0 };
                if (*v == '\\')
                        rep = "\\\\";
                else if (*v == '"')
                        rep = "\\\"";
                else if (*v == '\n')
                        rep = "\\n";
                else
                        rep = one;
                size_t rl = strlen(rep);
                if (o + rl >= len)
                        return -ENOBUFS;
                memcpy(dst + o, rep, rl);
                o += rl;
        }
        if (o >= len)
                return -ENOBUFS;
        dst[o] = '\0';
        return (int) o;
}

int metrics_write_file(const char *path, const MetricsBuf *b) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t off = 0;

        if (b->failed)
                return -ENOMEM;
        if (asprintf(&tmp, "%s.tmp.%d", path, (int) getpid()) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        while (off < b->len) {
                ssize_t k = write(fd, b->data + off, b->len - off);
                if (k < 0) {
                        int r = -errno;
                        if (r == -EINTR)
                                continue;
                        (void) unlink(tmp);
                        return r;
                }
                off += (size_t) k;
        }
        if (rename(tmp, path) < 0) {
                int r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return 0;
}
