/*
 * One-line event logging to stdout (see log.h).  Used by both processes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 1024

enum log_level log_min_level = LL_INFO;

static int log_slot = -1;

static const char *const log_level_names[] = {
    "DEBUG", "INFO", "WARN", "ERROR"
};


int
log_level_parse(const char *s, enum log_level *level)
{
    static const char *const names[] = { "debug", "info", "warn", "error" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *level = (enum log_level) i;
            return 0;
        }
    }

    return -1;
}


void
log_set_level(enum log_level level)
{
    log_min_level = level;
}


void
log_set_slot(int slot)
{
    log_slot = slot;
}


static size_t
log_prefix(char *buf, size_t size, enum log_level level, const char *tag)
{
    struct timespec ts;
    struct tm tm;
    char role[24];
    size_t n;
    int len;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);

    if (log_slot < 0) {
        snprintf(role, sizeof(role), "master");
    } else {
        snprintf(role, sizeof(role), "worker=%d", log_slot);
    }

    len = snprintf(buf + n, size - n, ".%03ldZ %-5s %s %s pid=%d ",
                   ts.tv_nsec / 1000000, log_level_names[level], tag, role,
                   (int) getpid());

    return n + (size_t) len;
}


void
log_write(enum log_level level, const char *tag, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    size_t n;
    int len;

    n = log_prefix(line, sizeof(line), level, tag);

    va_start(ap, fmt);
    len = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);

    /* A message longer than the line is cut, never split across lines. */
    if (len < 0) {
        len = 0;
    }
    n += (size_t) len;
    if (n > sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';

    if (write(STDOUT_FILENO, line, n) < 0) {
        /* stdout is gone: there is nowhere left to report it */
        return;
    }
}
