/*
 * One-line event logging to stdout, shared by the master and the workers.
 *
 * Every line reads
 *   2026-12-03T18:20:01.123Z INFO  WORKER master pid=812 message
 * so that operators can grep by tag (WORKER, RELOAD, TENANT, REDIS, ...).
 * Each line goes out in a single write(2), so lines from several processes
 * sharing stdout never interleave.  Not async-signal-safe: call it from the
 * event loop, never from a signal handler.
 */
#ifndef SPARK_LOG_H
#define SPARK_LOG_H

enum log_level {
    LL_DEBUG,
    LL_INFO,
    LL_WARN,
    LL_ERROR
};

extern enum log_level log_min_level;

/* Parses "debug", "info", "warn" or "error"; returns 0, or -1 if unknown. */
int log_level_parse(const char *s, enum log_level *level);

void log_set_level(enum log_level level);

/* The process role shown on each line: slot < 0 is the master. */
void log_set_slot(int slot);

void log_write(enum log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The level is checked before any argument is formatted. */
#define log_at(level, tag, ...)                                              \
    do {                                                                     \
        if ((level) >= log_min_level) {                                      \
            log_write((level), (tag), __VA_ARGS__);                          \
        }                                                                    \
    } while (0)

#define log_debug(tag, ...) log_at(LL_DEBUG, tag, __VA_ARGS__)
#define log_info(tag, ...)  log_at(LL_INFO, tag, __VA_ARGS__)
#define log_warn(tag, ...)  log_at(LL_WARN, tag, __VA_ARGS__)
#define log_error(tag, ...) log_at(LL_ERROR, tag, __VA_ARGS__)

#endif
