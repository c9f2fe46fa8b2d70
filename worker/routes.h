/*
 * The tenant API's request path: route lookup, authentication against the
 * current tenants table, the tenant's quota, then the route.  Worker
 * process only.
 *
 *   route -> 404 / 405    auth -> 401    quota -> 429 / 503    handler
 */
#ifndef SPARK_ROUTES_H
#define SPARK_ROUTES_H

#include <stdint.h>

#include "http.h"
#include "quota.h"
#include "../shared/tenants.h"

/* Rejections so far, by reason. */
struct routes_counters {
    uint64_t  auth;           /* 401 */
    uint64_t  quota;          /* 429 from the shared quota */
    uint64_t  degraded;       /* 429 from the replica share, Redis away */
    uint64_t  unavailable;    /* 503, Redis away and REDIS_FAIL_MODE=closed */
};

/* The quota every authenticated request is charged against. */
void routes_set_quota(struct quota *q);

/* The table requests are checked against; the caller keeps it alive. */
void routes_set_tenants(const struct tenants *tenants);

/* The http_handler_fn of the tenant API. */
void routes_handle(struct http_request *req, void *arg);

void routes_counters(struct routes_counters *out);

#endif
