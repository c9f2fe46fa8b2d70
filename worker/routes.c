/*
 * The tenant API's request path (see routes.h).  Worker process only.
 */
#include <stdio.h>
#include <string.h>

#include "routes.h"
#include "../shared/log.h"

struct route {
    const char  *path;
    void       (*handler)(struct http_request *req, const struct tenant *tn);
};

static const struct tenants *routes_tenants;


static void
route_health(struct http_request *req, const struct tenant *tn)
{
    char headers[128], body[128];
    int n;

    snprintf(headers, sizeof(headers), "X-Tenant: %s\r\n", tn->org);
    n = snprintf(body, sizeof(body), "{\"status\":\"ok\",\"org\":\"%s\"}",
                 tn->org);

    http_respond(req, 200, headers, body, (size_t) n);
}


static const struct route routes[] = {
    { "/api/private/health", route_health },
};


void
routes_set_tenants(const struct tenants *tenants)
{
    routes_tenants = tenants;
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


/* The tenant a request's credentials name, or NULL; one answer for all. */
static const struct tenant *
routes_authenticate(const struct http_request *req)
{
    const char *org = http_header(req, "X-Org-Id");
    const char *key = http_header(req, "X-Api-Key");

    if (org == NULL || key == NULL || routes_tenants == NULL) {
        return NULL;
    }

    return tenants_auth(routes_tenants, org, key, strlen(key));
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

    tn = routes_authenticate(req);
    if (tn == NULL) {
        log_debug("TENANT", "rejected credentials on %s", req->path);
        http_respond_error(req, 401, NULL, "unauthorized",
                           "missing or invalid X-Org-Id / X-Api-Key");
        return;
    }

    route->handler(req, tn);
}
