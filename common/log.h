/* SPDX-License-Identifier: MIT */
/*
 * log.h - one line per event on stderr: "<N>message key=value ...", N the syslog level,
 * so journald and Kubernetes both keep the severity. The _errno forms take a negative
 * errno, make %m print it, and return it. Data-path messages go through log_ratelimited(),
 * which keeps a small per-thread table of keys and lets a burst through per interval,
 * counting what it suppressed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "debug", "info", "notice", "warning", "error"; returns the level or -EINVAL. */
int log_level_from_string(const char *s);

int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...)                                       \
        ({                                                                      \
                int _l = (level), _e = (error);                                 \
                _l <= log_get_max_level() ? log_internal(_l, _e, __VA_ARGS__)   \
                                          : -abs(_e);                           \
        })
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

/**
 * log_ratelimited() - logs unless messages with the same @key exceeded the burst
 * (10 per 10 s per thread). When a window reopens after suppression, the line says how
 * many were suppressed. Use for anything a peer can trigger per packet.
 */
void log_ratelimited(int level, const char *key, const char *fmt, ...) _printf_(3, 4);

/* Monotonic clock in microseconds. */
uint64_t now_usec(void);
/* Wall clock in milliseconds since the Unix epoch. */
uint64_t now_realtime_ms(void);
