/* SPDX-License-Identifier: MIT */
/*
 * output-json.h - JSON lines: one flow_record_to_json() object per line, to stdout or to a
 * series of rotated files ("<prefix>-<UTC>-<seq>.json", see rotate.h).
 *
 * Stdout never blocks the loop. A pipe is reopened through /proc/self/fd/1 as a new,
 * non-blocking open file description (so the O_NONBLOCK flag does not leak to whoever else
 * shares the pipe), a socket is written with MSG_DONTWAIT. When the reader is slow the tail
 * of a partial write is kept and finished first (a line is never torn), and records that
 * arrive while it is pending are dropped and counted. A terminal or regular file on stdout
 * is written directly (those do not block for long). Files rotate before a line would make
 * them exceed rotate_bytes, and by age (checked every second).
 */
#pragma once

#include <stdint.h>

#include <systemd/sd-event.h>

#include "flow.h"
#include "output.h"

typedef struct OutputJsonParams {
        const char *path;               /* "-" for stdout, else "/dir/prefix" */
        uint64_t rotate_s, rotate_bytes;
} OutputJsonParams;

typedef struct OutputJson OutputJson;

/* Return: 0, -EINVAL, -ENOMEM, or -errno (the file directory, reopening stdout). */
int output_json_new(OutputJson **ret, const OutputJsonParams *p, sd_event *e, char **reterr);
OutputJson *output_json_free(OutputJson *o);
int output_json_write(OutputJson *o, const FlowRecord *recs, size_t n);
void output_json_flush(OutputJson *o);
/* Return: records dropped at close. */
uint64_t output_json_close(OutputJson *o, uint64_t timeout_ms);
void output_json_get_stats(const OutputJson *o, OutputStats *ret);
