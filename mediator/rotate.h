/* SPDX-License-Identifier: MIT */
/*
 * rotate.h - a series of output files written under a temporary name and renamed into place
 * when complete, shared by the IPFIX file and JSON lines outputs.
 *
 * A RotatingFile is configured with a path "/dir/prefix" and a suffix ("ipfix", "json").
 * The current file is "/dir/.<prefix>-<UTC YYYYmmddTHHMMSSZ>-<seq>.<suffix>.tmp" (a dot file,
 * so globs on the final names never see it; the timestamp is the time the file was opened,
 * seq counts files this RotatingFile opened). Closing it (rotation, shutdown) fdatasyncs it
 * and renames it to "/dir/<prefix>-<timestamp>-<seq>.<suffix>" without ever replacing an
 * existing file, then fsyncs the directory. Invariants:
 *   - a final name only ever refers to a complete file: writers see the data only after
 *     the rename, and a failed write is truncated back so the file holds whole writes only;
 *   - an empty temp file is removed instead of renamed (idle periods leave no files);
 *   - no temp file of ours is left after rotate_file_close() or rotate_file_free().
 * Files are opened lazily by the first write after a rotation. The clock is injectable so
 * tests can drive time-based rotation without waiting. Temp files left by a process that
 * crashed are not touched (they may end in a torn write).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct RotatingFile RotatingFile;

/* Wall clock in ms since the Unix epoch (names and file age). */
typedef uint64_t (*RotateClockFn)(void *userdata);

typedef struct RotateParams {
        const char *path;               /* "/dir/prefix" or "prefix" (current directory) */
        const char *suffix;             /* without the dot: "ipfix" */
        uint64_t rotate_ms;             /* close a file this old; 0 = never by age */
        uint64_t rotate_bytes;          /* close a file this large; 0 = never by size */
        RotateClockFn clock;            /* NULL: now_realtime_ms() */
        void *clock_userdata;
} RotateParams;

/**
 * rotate_file_new() - validates @p and opens the destination directory (no file yet).
 * Return: 0; -EINVAL for an empty prefix or one ending in '/'; -errno from opening the
 * directory (-ENOENT, -ENOTDIR, -EACCES); -ENOMEM.
 */
int rotate_file_new(RotatingFile **ret, const RotateParams *p);

/* Closes (renames) the current file like rotate_file_close(), then frees. NULL-safe. */
RotatingFile *rotate_file_free(RotatingFile *f);

/**
 * rotate_file_write() - appends @len bytes to the current file, opening a new one first if
 * none is open. All or nothing: if the write fails the file is truncated back.
 * Return: 0, or -errno (-ENOSPC, -EIO, or from creating the file).
 */
int rotate_file_write(RotatingFile *f, const void *data, size_t len);

/**
 * rotate_file_should_rotate() - whether the current file must be closed before writing
 * @next_len more bytes: it is open and either older than rotate_ms, or non-empty and
 * size + @next_len would exceed rotate_bytes. Pass @next_len 1 to ask "has it reached
 * rotate_bytes". False when no file is open.
 */
bool rotate_file_should_rotate(const RotatingFile *f, size_t next_len);

/**
 * rotate_file_close() - fdatasyncs, closes and renames the current file (or removes it when
 * empty). No-op when none is open; the next write opens a new file. Also used to rotate.
 * Return: 0, or -errno of the first step that failed (the file is renamed whenever possible
 * and never left under its temp name unless the rename itself failed).
 */
int rotate_file_close(RotatingFile *f);

bool rotate_file_is_open(const RotatingFile *f);
/* Bytes in the current file (0 when none is open). */
uint64_t rotate_file_size(const RotatingFile *f);
/* Files completed (renamed into place) so far. */
uint64_t rotate_file_count(const RotatingFile *f);
/* Temp path of the open file, or NULL. Borrowed until the next call. */
const char *rotate_file_temp_path(const RotatingFile *f);
/* Final path of the last completed file, or NULL. Borrowed until the next close. */
const char *rotate_file_last_path(const RotatingFile *f);
