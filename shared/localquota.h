/*
 * Per-replica GCRA buckets in memory shared by the master and every worker,
 * so that a replica enforces one quota per tenant however the kernel
 * spreads connections over its workers.  Used when REDIS_URL is unset, and
 * as the degraded mode while Redis cannot be reached.
 *
 * The master maps the table before forking; workers update it with atomic
 * compare-and-swap, never a lock, so a worker dying mid-update leaves
 * nothing held.  Slots are keyed by a 64-bit hash of the org id and never
 * freed: the table holds LQ_SLOTS tenants, past which take() admits and
 * says so.
 */
#ifndef SPARK_LOCALQUOTA_H
#define SPARK_LOCALQUOTA_H

#include <stdint.h>

#include "gcra.h"

#define LQ_SLOTS 16384

struct localquota;

/* Maps a new table; returns NULL after logging. Master, before fork. */
struct localquota *lq_create(void);

void lq_destroy(struct localquota *lq);

/*
 * Admits up to n requests for org at rate qps with bucket burst.  Returns
 * the number admitted, or -1 when the table is full (nothing enforced).
 */
long lq_take(struct localquota *lq, const char *org, double qps, long burst,
             long n, struct gcra_result *r);

#endif
