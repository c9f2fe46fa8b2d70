/*
 * The tenant API's request path (see routes.h).  Worker process only.
 *
 * The quota may answer from a later loop turn, after a tenants reload: the
 * tenant is looked up again by org once the decision is in, so a handler
 * always sees the table in force.
 */
#include <stdio.h>
#include <string.h>

#include "routes.h"
#include "../shared/log.h"

#define ROUTES_HEADERS_MAX 512

struct route {
    const char  *path;
    int          public;          /* no credentials, no quota */
    void       (*handler)(struct http_request *req, const struct tenant *tn,
                          const char *headers);
};

static const struct tenants *routes_tenants;
static struct quota *routes_quota;
static struct exch *routes_exchange;
static struct org_tally *routes_unknown;    /* X-Org-Id named no tenant */


static void
route_health(struct http_request *req, const struct tenant *tn,
             const char *headers)
{
    char body[128];
    int n;

    n = snprintf(body, sizeof(body), "{\"status\":\"ok\",\"org\":\"%s\"}",
                 tn->org);
    http_respond(req, 200, headers, body, (size_t) n);
}


static void
route_open_orders(struct http_request *req, const struct tenant *tn,
                  const char *headers)
{
    exch_open_orders(routes_exchange, req, tn, headers);
}


static void
route_exchange_info(struct http_request *req, const struct tenant *tn,
                    const char *headers)
{
    (void) tn;
    (void) headers;
    exch_exchange_info(routes_exchange, req);
}


static const struct route routes[] = {
    { "/api/private/health", 0, route_health },
    { "/api/private/open-orders", 0, route_open_orders },
    { "/api/public/exchange-info", 1, route_exchange_info },
};


void
routes_set_quota(struct quota *q)
{
    routes_quota = q;
}


void
routes_set_exchange(struct exch *x)
{
    routes_exchange = x;
}


int
routes_set_tenants(struct tenants *tenants, struct tally_map *tallies)
{
    for (size_t i = 0; i < tenants->count; i++) {
        tenants->items[i].tally = tally_get(tallies, tenants->items[i].org);
        if (tenants->items[i].tally == NULL) {
            return -1;
        }
    }

    routes_unknown = tally_get(tallies, STATS_ORG_UNKNOWN);
    routes_tenants = tenants;
    return routes_unknown != NULL ? 0 : -1;
}


static void
routes_reject(struct http_request *req, enum stats_reject why)
{
    struct org_tally *t = req->user;

    t->rejects[why]++;
    t->dirty = 1;
}


static const struct route *
routes_find(const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(path, routes[i].path) == 0) {
            return &routes[i];
        }
    }

    return NULL;
}


/*
 * The tenant a request's credentials name, or NULL; one answer for all.
 * Either way req->user becomes the tally of the org it named, or of
 * STATS_ORG_UNKNOWN, so that metrics carry only orgs from the file.
 */
static const struct tenant *
routes_authenticate(struct http_request *req)
{
    const char *org = http_header(req, "X-Org-Id");
    const char *key = http_header(req, "X-Api-Key");
    const struct tenant *named;

    named = org != NULL ? tenants_find(routes_tenants, org) : NULL;
    req->user = named != NULL ? named->tally : routes_unknown;

    if (org == NULL || key == NULL) {
        return NULL;
    }

    /* an unknown org takes the same path as a wrong key */
    return tenants_auth(routes_tenants, org, key, strlen(key));
}


/* One answer for an unknown org and a wrong key alike. */
static void
routes_unauthorized(struct http_request *req)
{
    routes_reject(req, STATS_REJECT_AUTH);
    http_respond_error(req, 401, NULL, "unauthorized",
                       "missing or invalid X-Org-Id / X-Api-Key");
}


static long
routes_ceil_s(int64_t us)
{
    return us > 0 ? (long) ((us + 999999) / 1000000) : 0;
}


/*
 * X-Tenant plus the rate-limit fields: the fastify-style X-RateLimit-*
 * and the IETF RateLimit-Policy / RateLimit (whole seconds, rounded up).
 * A decision Redis could not make claims no quota state: fail open adds
 * nothing, fail closed only Retry-After.
 */
static void
routes_quota_headers(char *buf, size_t size, const char *org,
                     const struct quota_decision *d)
{
    long window, t, retry;
    int n;

    n = snprintf(buf, size, "X-Tenant: %s\r\n", org);
    if (d->source == QUOTA_CLOSED) {
        snprintf(buf + n, size - (size_t) n, "Retry-After: 1\r\n");
        return;
    }
    if (d->source == QUOTA_OPEN) {
        return;
    }

    window = routes_ceil_s((int64_t) (1e6 * (double) d->limit / d->qps));
    retry = routes_ceil_s(d->retry_after_us);
    retry = retry > 0 ? retry : 1;
    t = d->admitted ? routes_ceil_s(d->reset_after_us) : retry;

    n += snprintf(buf + n, size - (size_t) n,
                  "X-RateLimit-Limit: %ld\r\n"
                  "X-RateLimit-Remaining: %ld\r\n"
                  "X-RateLimit-Reset: %ld\r\n"
                  "RateLimit-Policy: \"tenant\";q=%ld;w=%ld\r\n"
                  "RateLimit: \"tenant\";r=%ld;t=%ld\r\n",
                  d->limit, d->remaining, routes_ceil_s(d->reset_after_us),
                  d->limit, window > 0 ? window : 1, d->remaining, t);

    if (!d->admitted) {
        snprintf(buf + n, size - (size_t) n, "Retry-After: %ld\r\n", retry);
    }
}


static void
routes_refuse(struct http_request *req, const struct quota_decision *d,
              const char *headers)
{
    char body[256];
    int n;

    if (d->source == QUOTA_CLOSED) {
        routes_reject(req, STATS_REJECT_UNAVAILABLE);
        http_respond_error(req, 503, headers, "quota_unavailable",
                           "the quota store is unreachable; retry shortly");
        return;
    }

    routes_reject(req, d->source == QUOTA_DEGRADED ? STATS_REJECT_DEGRADED
                                                   : STATS_REJECT_QUOTA);

    n = snprintf(body, sizeof(body),
                 "{\"error\":\"rate_limited\",\"message\":\"tenant quota "
                 "exceeded; retry after Retry-After seconds\","
                 "\"retry_after_ms\":%lld}",
                 (long long) ((d->retry_after_us + 999) / 1000));
    http_respond(req, 429, headers, body, (size_t) n);
}


static void
routes_decided(struct http_request *req, const char *org,
               const struct quota_decision *d, void *arg)
{
    const struct route *route = arg;
    char headers[ROUTES_HEADERS_MAX];
    const struct tenant *tn;

    routes_quota_headers(headers, sizeof(headers), org, d);
    if (!d->admitted) {
        routes_refuse(req, d, headers);
        return;
    }

    tn = tenants_find(routes_tenants, org);
    if (tn == NULL) {
        /* removed by a reload while the quota was being decided */
        routes_unauthorized(req);
        return;
    }

    route->handler(req, tn, headers);
}


void
routes_handle(struct http_request *req, void *arg)
{
    const struct route *route;
    const struct tenant *tn;

    (void) arg;

    route = routes_find(req->path);
    if (route == NULL) {
        http_respond_error(req, 404, NULL, "not_found", "no such route");
        return;
    }

    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        http_respond_error(req, 405, "Allow: GET, HEAD\r\n",
                           "method_not_allowed",
                           "this route answers GET and HEAD");
        return;
    }

    if (route->public) {
        route->handler(req, NULL, NULL);
        return;
    }

    tn = routes_authenticate(req);
    if (tn == NULL) {
        log_debug("TENANT", "rejected credentials on %s", req->path);
        routes_unauthorized(req);
        return;
    }

    /* A failed authentication never reaches the quota store. */
    quota_take(routes_quota, tn, req, routes_decided, (void *) route);
}
