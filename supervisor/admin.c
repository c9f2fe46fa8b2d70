/*
 * The admin port (see admin.h), on libevent's evhttp.  Master process only.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "admin.h"
#include "master.h"
#include "metrics.h"
#include "workers.h"
#include "../shared/clock.h"
#include "../shared/log.h"

struct admin {
    struct evhttp  *http;
    struct master  *m;
};

struct admin_route {
    const char  *path;
    void       (*serve)(struct evhttp_request *req, struct master *m);
};


static const char *
admin_reason(int code)
{
    switch (code) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default:  return "Service Unavailable";
    }
}


static void
admin_reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", "application/json");
    evbuffer_add(out, body, strlen(body));
    evbuffer_add(out, "\n", 1);
    evhttp_send_reply(req, code, admin_reason(code), NULL);
}


static void
admin_healthz(struct evhttp_request *req, struct master *m)
{
    if (sup_workers_alive(m->workers) == 0) {
        admin_reply(req, 503, "{\"status\":\"unhealthy\","
                    "\"reason\":\"no worker alive\"}");
        return;
    }

    admin_reply(req, 200, "{\"status\":\"ok\"}");
}


static void
admin_readyz(struct evhttp_request *req, struct master *m)
{
    const char *why;
    char body[160];

    if (master_ready(m, &why)) {
        admin_reply(req, 200, "{\"status\":\"ready\"}");
        return;
    }

    snprintf(body, sizeof(body), "{\"status\":\"not ready\",\"reason\":"
             "\"%s\"}", why);
    admin_reply(req, 503, body);
}


static json_t *
admin_slot_json(const struct sup_slot *s)
{
    static const char *const states[] = {
        "empty", "running", "stopping", "respawning"
    };

    return json_pack("{s:i, s:i, s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:b}",
                     "slot", s->index,
                     "pid", (int) s->pid,
                     "state", states[s->state],
                     "generation", (json_int_t) s->stats.generation,
                     "uptime_s", s->pid ? clock_since_s(&s->started) : 0.0,
                     "requests", (json_int_t) s->stats.requests,
                     "connections", (json_int_t) s->stats.connections,
                     "max_connections", (json_int_t) s->stats.max_conns,
                     "outbound_cap", (json_int_t) s->stats.outbound_cap,
                     "reported", s->reported);
}


static void
admin_status(struct evhttp_request *req, struct master *m)
{
    const struct sup_workers *ws = m->workers;
    const char *why;
    json_t *root, *workers;
    uint64_t requests = ws->retired.stats.requests;
    char *text;

    workers = json_array();
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        if (ws->slots[i].state != SLOT_EMPTY) {
            json_array_append_new(workers, admin_slot_json(&ws->slots[i]));
            requests += ws->slots[i].stats.requests;
        }
    }

    root = json_pack("{s:i, s:s, s:b, s:f, s:I, s:i, s:{s:I, s:I}, "
                     "s:i, s:i, s:I, s:I, s:o}",
                     "pid", (int) m->pid,
                     "state", m->state == MASTER_RUNNING ? "running"
                              : "draining",
                     "ready", master_ready(m, &why),
                     "uptime_s", clock_since_s(&m->started),
                     "generation", (json_int_t) m->generation,
                     "tenants", (int) m->tenants->count,
                     "reloads", "ok", (json_int_t) m->reloads_ok,
                     "failed", (json_int_t) m->reloads_failed,
                     "workers_wanted", ws->target,
                     "workers_alive", sup_workers_alive(ws),
                     "worker_restarts",
                     (json_int_t) sup_workers_restarts(ws),
                     "requests", (json_int_t) requests,
                     "workers", workers);

    text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
    admin_reply(req, 200, text != NULL ? text : "{}");
    free(text);
    json_decref(root);
}


static void
admin_metrics(struct evhttp_request *req, struct master *m)
{
    met_render(m, evhttp_request_get_output_buffer(req));
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Content-Type", "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", NULL);
}


static const struct admin_route admin_routes[] = {
    { "/healthz", admin_healthz },
    { "/readyz", admin_readyz },
    { "/status", admin_status },
    { "/metrics", admin_metrics },
};


static void
admin_dispatch(struct evhttp_request *req, void *arg)
{
    struct admin *a = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type method = evhttp_request_get_command(req);

    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD");
        admin_reply(req, 405, "{\"error\":\"method_not_allowed\","
                    "\"message\":\"the admin port serves GET and HEAD\"}");
        return;
    }

    for (size_t i = 0; i < sizeof(admin_routes) / sizeof(admin_routes[0]);
         i++)
    {
        if (path != NULL && strcmp(path, admin_routes[i].path) == 0) {
            admin_routes[i].serve(req, a->m);
            return;
        }
    }

    admin_reply(req, 404, "{\"error\":\"not_found\","
                "\"message\":\"no such route\"}");
}


/* How long accepting pauses when the master is out of descriptors. */
#define ADMIN_ACCEPT_PAUSE_MS 1000


static void
admin_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    evconnlistener_enable(arg);
}


/*
 * Out of descriptors, the listening socket stays readable and every accept
 * fails at once: without a pause the master would spin on it and starve
 * its own loop (signals, worker reports, the probes already connected).
 * The pause ends by itself; other accept errors are the client's.
 */
static void
admin_accept_error_cb(struct evconnlistener *listener, void *arg)
{
    struct timeval pause = clock_tv_ms(ADMIN_ACCEPT_PAUSE_MS);
    int err = errno;

    (void) arg;

    if (err != EMFILE && err != ENFILE) {
        return;
    }

    log_warn("ADMIN", "accept() failed: %s; pausing accepts for %d ms",
             strerror(err), ADMIN_ACCEPT_PAUSE_MS);
    evconnlistener_disable(listener);
    event_base_once(evconnlistener_get_base(listener), -1, EV_TIMEOUT,
                    admin_accept_resume_cb, listener, &pause);
}


/* ADMIN_PORT on every address, close-on-exec, served by a's evhttp. */
static int
admin_listen(struct admin *a, int port)
{
    struct sockaddr_in sin = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t) port),
        .sin_addr.s_addr = htonl(INADDR_ANY),
    };
    struct evconnlistener *listener;

    listener = evconnlistener_new_bind(
        a->m->base, NULL, NULL,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
        -1, (struct sockaddr *) &sin, sizeof(sin));
    if (listener == NULL
        || evhttp_bind_listener(a->http, listener) == NULL)
    {
        if (listener != NULL) {
            evconnlistener_free(listener);
        }
        return -1;
    }

    /* after evhttp_bind_listener(), which sets the accept callback */
    evconnlistener_set_error_cb(listener, admin_accept_error_cb);
    return 0;
}


struct admin *
admin_start(struct master *m)
{
    struct admin *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        return NULL;
    }

    a->m = m;
    a->http = evhttp_new(m->base);
    if (a->http == NULL) {
        free(a);
        return NULL;
    }

    /* Every method reaches admin_dispatch, which answers 405 in JSON. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD
                               | EVHTTP_REQ_POST | EVHTTP_REQ_PUT
                               | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS
                               | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT
                               | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_gencb(a->http, admin_dispatch, a);

    if (admin_listen(a, m->cfg.admin_port) != 0) {
        log_error("ADMIN", "cannot listen on ADMIN_PORT %d",
                  m->cfg.admin_port);
        evhttp_free(a->http);
        free(a);
        return NULL;
    }

    return a;
}


void
admin_stop(struct admin *a)
{
    if (a != NULL) {
        evhttp_free(a->http);
        free(a);
    }
}
