/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - Prometheus text exposition format (version 0.0.4) into a growable buffer,
 * and an atomic file writer (temp name + rename) for the collector's metrics file.
 * A failed allocation marks the buffer; callers check metrics_buf_failed() once at the end.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct MetricsBuf {
        char *data;
        size_t len, cap;
        bool failed;
} MetricsBuf;

void metrics_buf_done(MetricsBuf *b);
static inline bool metrics_buf_failed(const MetricsBuf *b) {
        return b->failed;
}

/* "# HELP name help" and "# TYPE name type" lines. */
void metrics_header(MetricsBuf *b, const char *name, const char *type, const char *help);
/* One sample; @labels is preformatted (`a="x",b="y"`) or NULL. */
void metrics_sample(MetricsBuf *b, const char *name, const char *labels, uint64_t value);
/* Escapes a label value (backslash, quote, newline). Return: length, or -ENOBUFS. */
int metrics_escape_label(const char *v, char *dst, size_t len);

/* Return: 0 or -errno. */
int metrics_write_file(const char *path, const MetricsBuf *b);
