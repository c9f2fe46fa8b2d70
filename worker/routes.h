/*
 * The tenant API's request path: route lookup, authentication against the
 * current tenants table, then the route.  Worker process only.
 *
 *   route -> 404 / 405     auth -> 401     quota (next layer) -> handler
 */
#ifndef SPARK_ROUTES_H
#define SPARK_ROUTES_H

#include "http.h"
#include "../shared/tenants.h"

/* The table requests are checked against; the caller keeps it alive. */
void routes_set_tenants(const struct tenants *tenants);

/* The http_handler_fn of the tenant API. */
void routes_handle(struct http_request *req, void *arg);

#endif
