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
};

#endif
