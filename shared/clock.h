/*
 * Time as the master and the workers both use it: the monotonic clock, how
 * long since a mark taken from it, and milliseconds as a libevent timeout.
 */
#ifndef SPARK_CLOCK_H
#define SPARK_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* Microseconds on CLOCK_MONOTONIC. */
int64_t clock_now_us(void);

/* Seconds since mark, a CLOCK_MONOTONIC reading. */
double clock_since_s(const struct timespec *mark);

/* ms (>= 0) milliseconds as a struct timeval, for event_add(). */
struct timeval clock_tv_ms(long ms);

/* A retry delay: min_ms doubled for each earlier attempt, at most max_ms. */
int clock_backoff_ms(int min_ms, int max_ms, unsigned attempt);

#endif
