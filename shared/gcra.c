/*
 * GCRA arithmetic (see gcra.h).
 */
#include <math.h>

#include "gcra.h"


int64_t
gcra_emission_us(double qps)
{
    int64_t e = (int64_t) ceil(1e6 / qps);

    return e > 0 ? e : 1;
}


long
gcra_take(int64_t *tat, int64_t now, int64_t emission, long burst, long n,
          struct gcra_result *r)
{
    int64_t tolerance = emission * burst;
    int64_t t = *tat > now ? *tat : now;
    int64_t room = tolerance - (t - now);
    long fit = room > 0 ? (long) (room / emission) : 0;
    long k = n < fit ? n : fit;

    t += (int64_t) k * emission;
    if (k > 0) {
        *tat = t;
    }

    r->admitted = k;
    r->remaining = (long) ((tolerance - (t - now)) / emission);
    r->retry_after_us = k < n ? t + emission - tolerance - now : -1;
    r->reset_after_us = t - now;

    return k;
}
