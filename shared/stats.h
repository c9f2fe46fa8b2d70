/*
 * What a worker reports to the master over its channel (CHAN_STATS).
 * Counters only grow for the life of the worker; the master keeps the last
 * report of a worker that died, so totals survive crashes and respawns.
 */
#ifndef SPARK_STATS_H
#define SPARK_STATS_H

#include <stdint.h>

struct worker_stats {
    uint64_t  generation;        /* tenants generation being served */
    uint64_t  requests;          /* responses sent */
    uint64_t  accepted;          /* connections accepted */
    uint32_t  connections;       /* open now */
    uint32_t  draining;          /* 1 once the worker stopped accepting */

    uint64_t  rejects_auth;      /* 401 */
    uint64_t  rejects_quota;     /* 429, shared quota */
    uint64_t  rejects_degraded;  /* 429, replica share while Redis is away */
    uint64_t  rejects_unavailable;   /* 503, Redis away, fail closed */
    uint64_t  redis_calls;       /* quota scripts sent */
    uint64_t  redis_errors;      /* failed or past their time budget */
    uint64_t  redis_answers;
    uint64_t  redis_rtt_us;      /* summed over the answers */
    uint32_t  redis_up;          /* 1 while connected */
    uint32_t  replicas_seen;     /* replicas counted through Redis */
};

#endif
