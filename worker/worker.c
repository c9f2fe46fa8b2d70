/*
 * A worker process (see worker.h).  Everything here runs in the child
 * after fork(), on an event_base of its own.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "exchange.h"
#include "http.h"
#include "quota.h"
#include "routes.h"
#include "upstream.h"
#include "worker.h"
#include "../shared/channel.h"
#include "../shared/clock.h"
#include "../shared/log.h"
#include "../shared/stats.h"
#include "../shared/tally.h"

#define WORKER_REPORT_MS 1000

struct worker {
    struct worker_params  *params;
    struct event_base     *base;
    struct http_server    *http;
    struct quota          *quota;
    struct upstream       *up;
    struct exch           *exchange;
    int                    warm;
    int                    warm_steps;    /* exchange info, quota store */
    struct bufferevent    *chan;
    struct event          *report_ev;
    struct event          *sig_term, *sig_quit;
    struct tenants        *tenants;
    uint64_t               generation;
    int                    draining;
    struct tally_map      *tallies;     /* per-org counts, for the master */
    uint64_t               buckets[STATS_BUCKETS];
    uint64_t               duration_sum_us;
};


/* Sends the tallies that changed since the last report. */
static void
worker_report_orgs(struct worker *w)
{
    struct org_tally batch[64];
    size_t n = 0;

    for (size_t i = 0; i < tally_count(w->tallies); i++) {
        struct org_tally *t = tally_at(w->tallies, i);

        if (!t->dirty) {
            continue;
        }
        t->dirty = 0;
        batch[n++] = *t;
        if (n == sizeof(batch) / sizeof(batch[0])) {
            chan_send(w->chan, CHAN_ORGS, batch, sizeof(batch));
            n = 0;
        }
    }

    if (n > 0) {
        chan_send(w->chan, CHAN_ORGS, batch, n * sizeof(batch[0]));
    }
}


static void
worker_report(struct worker *w)
{
    struct quota_counters qc;
    struct http_counters hc;
    struct worker_stats st;

    if (w->chan == NULL) {
        return;
    }

    http_server_counters(w->http, &hc);
    quota_counters(w->quota, &qc);

    memset(&st, 0, sizeof(st));
    st.generation = w->generation;
    st.connections = hc.connections;
    st.redis_up = qc.redis_up;
    st.redis_lost = qc.redis_lost;
    memcpy(st.redis_why, qc.redis_why, sizeof(st.redis_why));
    st.replicas_seen = qc.replicas_seen;
    st.outbound_inflight = (uint32_t) up_inflight(w->up);
    st.warm = (uint32_t) w->warm;
    st.max_conns = hc.max_conns;
    st.outbound_cap = (uint32_t) up_cap(w->up);
    st.requests = hc.requests;
    st.accepted = hc.accepted;
    st.redis_calls = qc.redis_calls;
    st.redis_errors = qc.redis_errors;
    st.redis_answers = qc.redis_answers;
    st.redis_rtt_us = qc.redis_rtt_us;
    memcpy(st.duration_buckets, w->buckets, sizeof(st.duration_buckets));
    st.duration_sum_us = w->duration_sum_us;

    worker_report_orgs(w);
    chan_send(w->chan, CHAN_STATS, &st, sizeof(st));
}


/* Every answer to a request: its duration, and its org's count. */
static void
worker_observe(const struct http_request *req, int status,
               int64_t duration_us, void *arg)
{
    struct worker *w = arg;
    struct org_tally *t = req->user;

    w->buckets[stats_bucket(duration_us)]++;
    w->duration_sum_us += (uint64_t) (duration_us > 0 ? duration_us : 0);

    if (t != NULL) {
        t->requests++;
        t->errors += status >= 500;
        t->dirty = 1;
    }
}


static void
worker_report_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    worker_report(arg);
}


/*
 * The last report must reach the master before exit, or its counts would
 * be lost; the loop has stopped, so write it out blocking.  A socket
 * bufferevent freezes the start of its output buffer so that only its own
 * write callback drains it (evbuffer_write() fails until unfrozen): with
 * the loop stopped, that is ours to do now.
 */
static void
worker_flush_chan(struct worker *w)
{
    struct evbuffer *out;
    int fd;

    if (w->chan == NULL) {
        return;
    }

    out = bufferevent_get_output(w->chan);
    fd = bufferevent_getfd(w->chan);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    evbuffer_unfreeze(out, 1);

    while (evbuffer_get_length(out) > 0) {
        if (evbuffer_write(out, fd) <= 0) {
            break;
        }
    }
}


static void
worker_drained(void *arg)
{
    struct worker *w = arg;
    struct http_counters hc;

    http_server_counters(w->http, &hc);
    log_info("WORKER", "drained after %llu requests; exiting",
             (unsigned long long) hc.requests);

    worker_report(w);
    event_base_loopexit(w->base, NULL);
}


/*
 * Warm: exchange info cached and the quota store settled (or warmup off);
 * only now take connections.
 */
static void
worker_warm(void *arg)
{
    struct worker *w = arg;

    if (w->warm) {
        return;
    }

    w->warm = 1;
    if (!w->draining) {
        http_server_start(w->http);
    }
    worker_report(w);
}


/* One warmup step is done; the last one makes the worker warm. */
static void
worker_warm_step(void *arg)
{
    struct worker *w = arg;

    if (--w->warm_steps == 0) {
        worker_warm(w);
    }
}


static void
worker_drain(struct worker *w, const char *why)
{
    if (w->draining) {
        return;
    }

    w->draining = 1;
    log_info("WORKER", "draining (%s): no new connections", why);
    http_server_drain(w->http, worker_drained, w);
}


static void
worker_take_tenants(struct worker *w, const char *payload, size_t len)
{
    struct tenants_problems problems;
    struct tenants *t;
    uint64_t generation;

    if (len < sizeof(generation)) {
        log_error("RELOAD", "short tenants frame from the master (%zu bytes)",
                  len);
        return;
    }
    memcpy(&generation, payload, sizeof(generation));

    t = tenants_parse(payload + sizeof(generation), len - sizeof(generation),
                      w->params->cfg->default_qps,
                      w->params->cfg->default_burst, &problems);
    if (t == NULL) {
        log_error("RELOAD", "generation %llu refused by this worker: %s",
                  (unsigned long long) generation, problems.lines[0]);
        return;
    }

    /* Requests waiting on the quota hold the org, not the tenant, so
     * nothing holds the old table once this returns. */
    if (routes_set_tenants(t, w->tallies) != 0) {
        log_error("RELOAD", "out of memory taking generation %llu",
                  (unsigned long long) generation);
        tenants_free(t);
        return;
    }
    tenants_free(w->tenants);
    w->tenants = t;
    w->generation = generation;

    log_debug("RELOAD", "serving generation %llu (%zu tenants)",
              (unsigned long long) generation, t->count);
    worker_report(w);
}


/* The number of workers changed: a new part of the replica's limits. */
static void
worker_take_shares(struct worker *w, const void *payload)
{
    struct chan_shares sh;

    memcpy(&sh, payload, sizeof(sh));
    http_server_set_max_conns(w->http, sh.max_conns);
    up_set_cap(w->up, sh.outbound);
    log_debug("WORKER", "now up to %d connections and %d exchange requests",
              (int) sh.max_conns, (int) sh.outbound);
    worker_report(w);
}


static void
worker_chan_read_cb(struct bufferevent *bev, void *arg)
{
    struct worker *w = arg;
    struct chan_frame f;
    int rc;

    while ((rc = chan_recv(bev, &f)) == 1) {
        if (f.type == CHAN_TENANTS) {
            worker_take_tenants(w, f.payload, f.len);
        } else if (f.type == CHAN_DRAIN) {
            worker_drain(w, "ordered by the master");
        } else if (f.type == CHAN_SHARES
                   && f.len == sizeof(struct chan_shares)) {
            worker_take_shares(w, f.payload);
        }
        free(f.payload);
    }

    if (rc < 0) {
        log_error("WORKER", "bad frame on the master channel; draining");
        worker_drain(w, "channel error");
    }
}


static void
worker_chan_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct worker *w = arg;

    (void) what;

    /* The master is gone: finish what is under way and leave. */
    bufferevent_free(bev);
    w->chan = NULL;
    worker_drain(w, "the master went away");
}


/*
 * TERM and QUIT reach workers along with the master (a pkill, a kill of the
 * process group, systemd stopping the control group).  While the master
 * lives it decides: it orders the drain over the channel once its
 * SHUTDOWN_DELAY_MS is over, so the signal is only noted.  Once it is gone
 * (SIGTERM is also the death signal the kernel sends then), drain now.
 */
static void
worker_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    const char *name = sig == SIGQUIT ? "SIGQUIT" : "SIGTERM";

    (void) what;

    if (getppid() == w->params->master_pid) {
        log_debug("WORKER", "%s left to the master, which orders the drain",
                  name);
        return;
    }

    worker_drain(w, "the master went away");
}


/*
 * Signals meant for the master reach workers too (a terminal's Ctrl-C, a
 * pkill): the master decides, so workers ignore all but TERM and QUIT,
 * which worker_signal_cb() weighs.
 */
static int
worker_signals(struct worker *w)
{
    static const int ignored[] = {
        SIGHUP, SIGINT, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGPIPE
    };
    sigset_t none;

    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        signal(ignored[i], SIG_IGN);
    }
    signal(SIGCHLD, SIG_DFL);

    w->sig_term = evsignal_new(w->base, SIGTERM, worker_signal_cb, w);
    w->sig_quit = evsignal_new(w->base, SIGQUIT, worker_signal_cb, w);
    if (w->sig_term == NULL || w->sig_quit == NULL
        || evsignal_add(w->sig_term, NULL) != 0
        || evsignal_add(w->sig_quit, NULL) != 0)
    {
        log_error("WORKER", "evsignal_add() failed");
        return -1;
    }

    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}


/*
 * The worker's loop batches its epoll changes per turn: libcurl moves each
 * exchange socket between read and write interest on every request, and
 * without the changelist each move is an epoll_ctl() of its own.  (The
 * changelist's caveat, dup()ed descriptors, does not arise here.)
 */
static struct event_base *
worker_base_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (cfg == NULL) {
        return NULL;
    }
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}


static int
worker_start(struct worker *w)
{
    struct worker_params *p = w->params;
    struct http_limits limits = {
        .max_header_bytes = (size_t) p->cfg->http_max_header_bytes,
        .max_body_bytes = (size_t) p->cfg->http_max_body_bytes,
        .idle_timeout_ms = p->cfg->http_idle_timeout_ms,
        .max_conns = p->max_conns,
    };
    struct timeval every = clock_tv_ms(WORKER_REPORT_MS);
    char replica[160], host[128] = "replica";

    w->base = worker_base_new();
    if (w->base == NULL) {
        log_error("WORKER", "event_base_new() failed");
        return -1;
    }

    /* The pod name in Kubernetes; the master pid tells replicas apart on
     * one host. */
    gethostname(host, sizeof(host) - 1);
    snprintf(replica, sizeof(replica), "%s:%d", host, (int) p->master_pid);
    w->quota = quota_new(w->base, p->cfg, p->local, replica);
    if (w->quota == NULL) {
        log_error("WORKER", "could not set up quotas");
        return -1;
    }
    routes_set_quota(w->quota);

    w->up = up_new(w->base, p->cfg, p->outbound_share);
    w->warm_steps = 2;
    w->exchange = w->up != NULL ? exch_new(w->base, p->cfg, w->up,
                                            worker_warm_step, w) : NULL;
    if (w->exchange == NULL) {
        log_error("WORKER", "could not set up the exchange client");
        return -1;
    }
    routes_set_exchange(w->exchange);

    w->chan = bufferevent_socket_new(w->base, p->chan_fd,
                                     BEV_OPT_CLOSE_ON_FREE);
    w->http = http_server_new(w->base, p->listen_fd, &limits, routes_handle,
                              w);
    if (w->http != NULL && p->cfg->metrics_enabled) {
        http_server_observe(w->http, worker_observe, w);
    }
    w->report_ev = event_new(w->base, -1, EV_PERSIST, worker_report_cb, w);
    if (w->chan == NULL || w->http == NULL || w->report_ev == NULL) {
        log_error("WORKER", "could not set up the event loop");
        return -1;
    }

    bufferevent_setcb(w->chan, worker_chan_read_cb, NULL,
                      worker_chan_event_cb, w);
    bufferevent_enable(w->chan, EV_READ | EV_WRITE);
    event_add(w->report_ev, &every);

    quota_warmup(w->quota, worker_warm_step, w);
    if (!p->cfg->warmup_enabled) {
        worker_warm(w);
    }

    return worker_signals(w);
}


static void
worker_cleanup(struct worker *w)
{
    if (w->exchange != NULL) {
        exch_stop(w->exchange);
    }

    /*
     * The quota first: it decides the requests still waiting on it, and
     * one it admits may go on to the exchange, whose client and upstream
     * must still be there to answer it.
     */
    quota_free(w->quota);
    up_free(w->up);
    exch_free(w->exchange);
    if (w->http != NULL) {
        http_server_free(w->http);
    }
    if (w->chan != NULL) {
        bufferevent_free(w->chan);
    }
    if (w->report_ev != NULL) {
        event_free(w->report_ev);
    }
    if (w->sig_term != NULL) {
        event_free(w->sig_term);
    }
    if (w->sig_quit != NULL) {
        event_free(w->sig_quit);
    }
    if (w->base != NULL) {
        event_base_free(w->base);
    }
    tenants_free(w->tenants);
    tally_free(w->tallies);
}


int
worker_main(struct worker_params *p)
{
    struct worker w;
    int rc = 0;

    memset(&w, 0, sizeof(w));
    w.params = p;
    w.tenants = p->tenants;
    w.generation = p->generation;
    log_set_slot(p->slot);

    /* Leave with the master, even if it dies before the channel says so. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != p->master_pid) {
        return 0;
    }

    w.tallies = tally_new();
    if (w.tallies == NULL || routes_set_tenants(w.tenants, w.tallies) != 0
        || worker_start(&w) != 0)
    {
        rc = 1;
    } else {
        log_debug("WORKER", "serving generation %llu, up to %d connections",
                  (unsigned long long) w.generation, p->max_conns);
        worker_report(&w);
        event_base_dispatch(w.base);
        worker_flush_chan(&w);
    }

    worker_cleanup(&w);
    return rc;
}
