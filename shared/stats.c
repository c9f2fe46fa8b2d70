/*
 * Helpers over the stats wire format (see stats.h); used by both processes.
 */
#include "stats.h"

const uint32_t stats_bucket_us[STATS_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000, 2500000, 5000000
};

const char *const stats_reject_names[STATS_REJECTS] = {
    "auth", "quota", "degraded", "unavailable"
};


void
stats_add_counters(struct worker_stats *into, const struct worker_stats *from)
{
    into->requests += from->requests;
    into->accepted += from->accepted;
    into->redis_calls += from->redis_calls;
    into->redis_errors += from->redis_errors;
    into->redis_answers += from->redis_answers;
    into->redis_rtt_us += from->redis_rtt_us;
    into->duration_sum_us += from->duration_sum_us;

    for (int i = 0; i < STATS_BUCKETS; i++) {
        into->duration_buckets[i] += from->duration_buckets[i];
    }
}


void
stats_add_tally(struct org_tally *into, const struct org_tally *from)
{
    into->requests += from->requests;
    into->errors += from->errors;

    for (int i = 0; i < STATS_REJECTS; i++) {
        into->rejects[i] += from->rejects[i];
    }
}


int
stats_bucket(int64_t us)
{
    int i = 0;

    while (i < STATS_BUCKETS - 1 && us > (int64_t) stats_bucket_us[i]) {
        i++;
    }

    return i;
}
