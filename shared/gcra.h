/*
 * GCRA, the generic cell rate algorithm: a token bucket of capacity `burst`
 * refilled at one token per `emission` microseconds, kept as a single
 * number, the theoretical arrival time (TAT) of the next request.  Over any
 * interval T it admits at most burst + T / emission requests.
 *
 * This is the arithmetic only; worker/quota.c runs the same steps inside
 * Redis as a Lua script, and shared/localquota.c on a table in shared
 * memory.  All times are integer microseconds.
 */
#ifndef SPARK_GCRA_H
#define SPARK_GCRA_H

#include <stdint.h>

struct gcra_result {
    long     admitted;        /* how many of the n asked for */
    long     remaining;       /* tokens left after them */
    int64_t  retry_after_us;  /* until one more fits; -1 if all admitted */
    int64_t  reset_after_us;  /* until the bucket is full again */
};

/*
 * Microseconds between tokens for a rate of qps (> 0) per second, rounded
 * up so that the bucket never refills faster than qps.
 */
int64_t gcra_emission_us(double qps);

/*
 * Admits up to n requests at `now` against the TAT in *tat (0 = a full
 * bucket) and advances it for those admitted; a request that is denied
 * leaves *tat as it was.  Returns the number admitted.
 */
long gcra_take(int64_t *tat, int64_t now, int64_t emission, long burst,
               long n, struct gcra_result *r);

#endif
