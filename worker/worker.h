/*
 * A worker process: serves the tenant API on the listening socket it
 * inherited from the master, takes tenants and drain orders from its
 * channel, and reports its stats there every second.
 */
#ifndef SPARK_WORKER_H
#define SPARK_WORKER_H

#include <stdint.h>
#include <sys/types.h>

#include "../shared/config.h"
#include "../shared/localquota.h"
#include "../shared/tenants.h"

struct worker_params {
    int                    slot;
    int                    listen_fd;
    int                    chan_fd;
    pid_t                  master_pid;
    int                    max_conns;   /* this worker's share */
    int                    outbound_share;  /* of OUTBOUND_MAX_CONCURRENCY */
    struct localquota     *local;       /* the replica's shared buckets */
    const struct config   *cfg;
    struct tenants        *tenants;     /* becomes the worker's */
    uint64_t               generation;
};

/*
 * Runs in the child right after fork(), with every signal blocked; returns
 * the process exit code once the worker has drained.
 */
int worker_main(struct worker_params *p);

#endif
