/*
 * Tenant quotas: one GCRA bucket per tenant, kept in Redis so that it holds
 * across every worker of every replica.  Worker process only.
 *
 * Decisions a worker makes for one tenant within one loop turn travel as
 * one call that asks for n tokens (one Lua script, one round trip, Redis
 * server time), pipelined over the worker's single connection.  Each
 * request waits at most REDIS_TIMEOUT_MS from when it joined its call;
 * past that, while Redis is unreachable or refuses the calls (a wrong
 * password, say), decisions follow REDIS_FAIL_MODE:
 *   local   the replica's share of the quota, from shared memory
 *   open    admitted, without rate-limit headers
 *   closed  refused with 503 (never 429)
 * Without REDIS_URL, quotas are enforced per replica (the local table).
 */
#ifndef SPARK_QUOTA_H
#define SPARK_QUOTA_H

#include <stdint.h>

#include <event2/event.h>

#include "http.h"
#include "../shared/config.h"
#include "../shared/localquota.h"
#include "../shared/tenants.h"

enum quota_source {
    QUOTA_REDIS,              /* decided by Redis */
    QUOTA_LOCAL,              /* replica-local bucket (no Redis at all) */
    QUOTA_DEGRADED,           /* replica's share while Redis is away */
    QUOTA_OPEN,               /* admitted unchecked while Redis is away */
    QUOTA_CLOSED              /* refused while Redis is away */
};

struct quota_decision {
    int                 admitted;
    enum quota_source   source;
    long                limit;            /* the burst in force */
    double              qps;
    long                remaining;
    int64_t             retry_after_us;   /* when denied */
    int64_t             reset_after_us;
};

struct quota_counters {
    uint64_t  redis_calls;                /* scripts sent */
    uint64_t  redis_errors;               /* failed or timed-out calls */
    uint64_t  redis_rtt_us;               /* summed over answered calls */
    uint64_t  redis_answers;
    uint32_t  redis_up;                   /* connected and answering */
    uint32_t  redis_lost;                 /* from a failure until Redis
                                             answers again (a reply, not
                                             a connect) */
    uint32_t  replicas_seen;
    char      redis_why[128];             /* the first failure since */
};

/* Called once per request with the decision; org is valid during the call. */
typedef void (*quota_fn)(struct http_request *req, const char *org,
                         const struct quota_decision *d, void *arg);

struct quota;

struct quota *quota_new(struct event_base *base, const struct config *cfg,
                        struct localquota *local, const char *replica_id);

void quota_free(struct quota *q);

/* Decides for req, now or from a later loop turn; calls fn exactly once. */
void quota_take(struct quota *q, const struct tenant *tn,
                struct http_request *req, quota_fn fn, void *arg);

void quota_counters(const struct quota *q, struct quota_counters *out);

/*
 * The quota store's warmup step: calls done(arg) once, with a WARMUP line,
 * when the first connection has loaded the quota script, or when the first
 * attempt has failed (Redis down holds no replica back: the fail mode
 * decides until it answers).  Without REDIS_URL, done is called at once.
 */
void quota_warmup(struct quota *q, void (*done)(void *), void *arg);

#endif
