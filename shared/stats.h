/*
 * What a worker reports to the master over its channel, every second:
 * struct worker_stats (CHAN_STATS) and the per-tenant tallies that changed
 * (CHAN_ORGS, an array of struct org_tally).  Counters only grow for the
 * life of a worker; the master folds the last report of a worker that is
 * gone into its totals, so nothing it renders ever goes backwards.
 */
#ifndef SPARK_STATS_H
#define SPARK_STATS_H

#include <stdint.h>

#include "tenants.h"

/* Upper bounds of the request duration buckets, in microseconds; the last
 * bucket (+Inf) has none. */
#define STATS_BUCKETS 16
extern const uint32_t stats_bucket_us[STATS_BUCKETS - 1];

enum stats_reject {
    STATS_REJECT_AUTH,            /* 401 */
    STATS_REJECT_QUOTA,           /* 429, shared quota */
    STATS_REJECT_DEGRADED,        /* 429, replica share while Redis away */
    STATS_REJECT_UNAVAILABLE,     /* 503, Redis away, fail closed */
    STATS_REJECTS
};

extern const char *const stats_reject_names[STATS_REJECTS];

/* The org label of requests whose X-Org-Id names no tenant. */
#define STATS_ORG_UNKNOWN "(unknown)"

struct worker_stats {
    /* gauges: what is true now */
    uint64_t  generation;        /* tenants generation being served */
    uint32_t  connections;       /* open now */
    uint32_t  redis_up;          /* 1 while connected */
    uint32_t  redis_lost;        /* 1 from a lost link until it is back */
    uint32_t  replicas_seen;     /* replicas counted through Redis */
    uint32_t  outbound_inflight; /* exchange requests under way */
    uint32_t  warm;              /* 1 once warmup is done and it accepts */
    uint32_t  max_conns;         /* its share of HTTP_SERVER_CONCURRENCY */
    uint32_t  outbound_cap;      /* its share of OUTBOUND_MAX_CONCURRENCY */
    char      redis_why[128];    /* with redis_lost: where and what failed */

    /* counters */
    uint64_t  requests;          /* answers sent */
    uint64_t  accepted;          /* connections accepted */
    uint64_t  redis_calls;       /* quota scripts sent */
    uint64_t  redis_errors;      /* failed or past their time budget */
    uint64_t  redis_answers;
    uint64_t  redis_rtt_us;      /* summed over the answers */
    uint64_t  duration_buckets[STATS_BUCKETS];   /* not cumulative */
    uint64_t  duration_sum_us;
};

struct org_tally {
    char      org[TENANT_ORG_MAX + 1];
    uint32_t  dirty;             /* changed since the last report */
    uint64_t  requests;          /* answers on tenant routes */
    uint64_t  errors;            /* of which 5xx */
    uint64_t  rejects[STATS_REJECTS];
};

/* Adds the counters of from (never its gauges) into into. */
void stats_add_counters(struct worker_stats *into,
                        const struct worker_stats *from);

void stats_add_tally(struct org_tally *into, const struct org_tally *from);

/* The bucket a request of this many microseconds falls into. */
int stats_bucket(int64_t us);

#endif
