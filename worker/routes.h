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

#include "exchange.h"
#include "http.h"
#include "quota.h"
#include "../shared/tally.h"
#include "../shared/tenants.h"

/* The quota every authenticated request is charged against. */
void routes_set_quota(struct quota *q);

/* The exchange the open-orders and exchange-info routes use. */
void routes_set_exchange(struct exch *x);

/*
 * The table requests are checked against (the caller keeps it alive) and
 * the map that counts them per org: each tenant's tally is set here.
 * Requests on tenant routes get their org's tally as req->user.
 */
int routes_set_tenants(struct tenants *tenants, struct tally_map *tallies);

/* The http_handler_fn of the tenant API. */
void routes_handle(struct http_request *req, void *arg);

#endif
