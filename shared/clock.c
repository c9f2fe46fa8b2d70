/*
 * Monotonic time and timeouts (see clock.h).
 */
#include "clock.h"


int64_t
clock_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


double
clock_since_s(const struct timespec *mark)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double) (now.tv_sec - mark->tv_sec)
           + (double) (now.tv_nsec - mark->tv_nsec) / 1e9;
}


int
clock_backoff_ms(int min_ms, int max_ms, unsigned attempt)
{
    long ms = (long) min_ms << (attempt < 20 ? attempt : 20);

    return ms < max_ms ? (int) ms : max_ms;
}


struct timeval
clock_tv_ms(long ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    return tv;
}
