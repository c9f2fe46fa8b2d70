/*
 * The admin port (ADMIN_PORT), served by the master from its own loop and
 * from what it already holds, so a stuck worker cannot stall a probe:
 *   /healthz  liveness: the master loop turns and a worker is alive
 *   /readyz   readiness: workers up, not draining, not crash-looping
 *   /status   JSON scoreboard of the replica and its workers
 */
#ifndef SPARK_ADMIN_H
#define SPARK_ADMIN_H

struct master;
struct admin;

/* Binds ADMIN_PORT on the master's loop; returns NULL after logging. */
struct admin *admin_start(struct master *m);

void admin_stop(struct admin *a);

#endif
