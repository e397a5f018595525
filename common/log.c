/* SPDX-License-Identifier: MIT */
/*
 * log.c - stderr logger and per-thread rate limiter. The max level is process-wide and
 * set once at start-up (and on reload); lines are written with one write(2) so lines from
 * several threads never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        static const struct {
                const char *name;
                int level;
        } table[] = {
                { "debug", LOG_DEBUG },     { "info", LOG_INFO },   { "notice", LOG_NOTICE },
                { "warning", LOG_WARNING }, { "error", LOG_ERR },   { "err", LOG_ERR },
        };
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (strcasecmp(s, table[i].name) == 0)
                        return table[i].level;
        return -EINVAL;
}

static void log_vwrite(int level, int error, const char *fmt, va_list ap) _printf_(3, 0);
static void log_vwrite(int level, int error, const char *fmt, va_list ap) {
        char line[2048];
        int n, m;

        n = snprintf(line, sizeof(line), "<%d>", level & 7);
        if (error != 0)
                errno = abs(error);
        m = vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, ap);
        if (m < 0)
                return;
        n += m;
        if ((size_t) n > sizeof(line) - 2)
                n = (int) sizeof(line) - 2;
        line[n++] = '\n';
        (void) !write(STDERR_FILENO, line, (size_t) n);
}

int log_internal(int level, int error, const char *fmt, ...) {
        va_list ap;
        int saved = errno;

        va_start(ap, fmt);
        log_vwrite(level, error, fmt, ap);
        va_end(ap);
        errno = saved;
        return -abs(error);
}

uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

uint64_t now_realtime_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

#define RL_SLOTS 64
#define RL_INTERVAL_USEC (10u * 1000000u)
#define RL_BURST 10u

typedef struct RateSlot {
        uint64_t hash;
        uint64_t begin;
        unsigned num;
        unsigned suppressed;
} RateSlot;

static _Thread_local RateSlot rl_slots[RL_SLOTS];

static uint64_t hash_key(const char *s) {
        uint64_t h = 1469598103934665603ull;    /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 1099511628211ull;
        return h | 1;
}

void log_ratelimited(int level, const char *key, const char *fmt, ...) {
        uint64_t h, now;
        RateSlot *s;
        va_list ap;

        if (level > max_level)
                return;
        h = hash_key(key);
        s = &rl_slots[h % RL_SLOTS];
        now = now_usec();
        if (s->hash != h || now - s->begin >= RL_INTERVAL_USEC) {
                if (s->hash == h && s->suppressed > 0)
                        log_internal(level, 0, "Suppressed %u messages like the next one key=%s",
                                     s->suppressed, key);
                s->hash = h;
                s->begin = now;
                s->num = 0;
                s->suppressed = 0;
        }
        if (s->num >= RL_BURST) {
                s->suppressed++;
                return;
        }
        s->num++;
        va_start(ap, fmt);
        log_vwrite(level, 0, fmt, ap);
        va_end(ap);
}
