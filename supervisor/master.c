/*
 * The supervisor (see master.h).  Signals arrive through evsignal events on
 * the master's loop; no work is done in a raw signal handler.
 *
 *   SIGHUP          reload the tenants file (validated first)
 *   SIGTERM/QUIT    not ready at once, serve SHUTDOWN_DELAY_MS, then drain
 *   SIGINT          the same without the delay
 *   SIGTTIN/TTOU    one worker more / less
 *   SIGCHLD         reap (any child: the master may be PID 1)
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "admin.h"
#include "cpus.h"
#include "master.h"
#include "workers.h"
#include "../shared/clock.h"
#include "../shared/localquota.h"
#include "../shared/log.h"

#define MASTER_BACKLOG    4096
#define MASTER_EX_CONFIG  78        /* sysexits.h: configuration error */
#define MASTER_PRI_SIGNAL 0         /* of two; all other events take 1 */

static const int master_signals[MASTER_NSIGNALS] = {
    SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGTTIN, SIGTTOU, SIGCHLD
};


int
master_ready(const struct master *m, const char **why)
{
    if (m->state != MASTER_RUNNING) {
        *why = "shutting down";
        return 0;
    }
    if (sup_workers_crash_looping(m->workers)) {
        *why = "workers are crash-looping";
        return 0;
    }
    if (sup_workers_warm(m->workers) == 0) {
        *why = "warming up";
        return 0;
    }

    *why = "";
    return 1;
}


static int
master_listen(int port)
{
    struct sockaddr_in sin;
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("MASTER", "socket() failed: %s", strerror(errno));
        return -1;
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) port);
    sin.sin_addr.s_addr = htonl(INADDR_ANY);

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(fd, MASTER_BACKLOG) != 0)
    {
        log_error("MASTER", "cannot listen on PORT %d: %s", port,
                  strerror(errno));
        close(fd);
        return -1;
    }

    return fd;
}


static void
master_reload(struct master *m)
{
    struct tenants_problems problems;
    struct tenants *t;
    char *raw;
    size_t len;

    t = tenants_load(m->cfg.tenants_file, m->cfg.default_qps,
                     m->cfg.default_burst, &problems, &raw, &len);
    if (t == NULL) {
        m->reloads_failed++;
        log_error("RELOAD",
                  "rejected %s (%d problem%s); generation %llu stays in force",
                  m->cfg.tenants_file, problems.count,
                  problems.count == 1 ? "" : "s",
                  (unsigned long long) m->generation);
        for (int i = 0; i < problems.count && i < TENANTS_PROBLEMS_MAX; i++) {
            log_error("RELOAD", "%s", problems.lines[i]);
        }
        return;
    }

    tenants_free(m->tenants);
    free(m->tenants_raw);
    m->tenants = t;
    m->tenants_raw = raw;
    m->tenants_raw_len = len;
    m->generation++;
    m->reloads_ok++;
    m->reloaded_at = time(NULL);

    log_info("RELOAD", "generation %llu: %zu tenants from %s",
             (unsigned long long) m->generation, t->count,
             m->cfg.tenants_file);
    sup_workers_send_tenants(m->workers);
}


static void
master_stop_loop_if_done(struct master *m)
{
    if (m->state == MASTER_DRAINING && sup_workers_alive(m->workers) == 0
        && !m->exiting)
    {
        m->exiting = 1;
        log_info("MASTER", "every worker has drained; exiting with code %d",
                 m->exit_code);
        event_base_loopexit(m->base, NULL);
    }
}


static void
master_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    const struct sup_workers *ws = m->workers;

    (void) fd;
    (void) what;

    log_warn("MASTER",
             "SHUTDOWN_TIMEOUT_MS (%d) passed; killing %d draining workers",
             m->cfg.shutdown_timeout_ms, sup_workers_alive(ws));

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        if (ws->slots[i].pid != 0) {
            kill(ws->slots[i].pid, SIGKILL);
        }
    }
    m->exit_code = 1;
}


/* After the delay: stop taking connections and let the workers finish. */
static void
master_drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    struct timeval tv = clock_tv_ms(m->cfg.shutdown_timeout_ms);

    (void) fd;
    (void) what;

    if (m->state == MASTER_DRAINING) {
        return;
    }

    m->state = MASTER_DRAINING;
    log_info("MASTER",
             "draining: no new connections, finishing requests (up to %d ms)",
             m->cfg.shutdown_timeout_ms);

    /* Workers each take what is queued before closing their copies. */
    close(m->listen_fd);
    m->listen_fd = -1;
    sup_workers_drain(m->workers);

    m->deadline_ev = evtimer_new(m->base, master_deadline_cb, m);
    evtimer_add(m->deadline_ev, &tv);
    master_stop_loop_if_done(m);
}


static void
master_shutdown(struct master *m, int delay_ms, const char *why)
{
    struct timeval tv = clock_tv_ms(delay_ms);

    if (m->state == MASTER_DRAINING) {
        log_info("MASTER", "%s: already draining", why);
        return;
    }

    if (m->state == MASTER_DELAYING) {
        if (delay_ms == 0) {
            log_info("MASTER", "%s: skipping the rest of the delay", why);
            evtimer_del(m->shutdown_ev);
            master_drain_cb(-1, 0, m);
        }
        return;
    }

    m->state = MASTER_DELAYING;
    log_info("MASTER",
             "%s: not ready from now; serving %d ms more before draining",
             why, delay_ms);

    m->shutdown_ev = evtimer_new(m->base, master_drain_cb, m);
    evtimer_add(m->shutdown_ev, &tv);
}


static void
master_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct master *m = arg;

    (void) what;

    switch (sig) {
    case SIGCHLD:
        sup_workers_reap(m->workers);
        master_stop_loop_if_done(m);
        break;
    case SIGHUP:
        master_reload(m);
        break;
    case SIGTERM:
    case SIGQUIT:
        master_shutdown(m, m->cfg.shutdown_delay_ms,
                        sig == SIGTERM ? "SIGTERM" : "SIGQUIT");
        break;
    case SIGINT:
        master_shutdown(m, 0, "SIGINT");
        break;
    case SIGTTIN:
        if (m->state == MASTER_RUNNING) {
            sup_workers_grow(m->workers);
        }
        break;
    case SIGTTOU:
        if (m->state == MASTER_RUNNING) {
            sup_workers_shrink(m->workers);
        }
        break;
    }
}


/*
 * Stats double as heartbeats: a worker silent for WORKER_TIMEOUT_MS is
 * killed and replaced.  A tick that comes far too late means the master
 * itself was stopped; the workers then get a fresh allowance instead.
 */
static void
master_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    double late = clock_since_s(&m->watchdog_tick) * 1000
                  - m->cfg.worker_timeout_ms / 4;

    (void) fd;
    (void) what;

    clock_gettime(CLOCK_MONOTONIC, &m->watchdog_tick);
    if (late > m->cfg.worker_timeout_ms / 2) {
        log_warn("MASTER",
                 "the master was held up for %.0f ms; workers' clocks reset",
                 late);
        sup_workers_heard_now(m->workers);
        return;
    }

    sup_workers_watchdog(m->workers, m->cfg.worker_timeout_ms);
}


static int
master_watchdog_start(struct master *m)
{
    struct timeval every = clock_tv_ms(m->cfg.worker_timeout_ms / 4);

    m->watchdog_ev = event_new(m->base, -1, EV_PERSIST, master_watchdog_cb,
                               m);
    if (m->watchdog_ev == NULL) {
        return -1;
    }

    clock_gettime(CLOCK_MONOTONIC, &m->watchdog_tick);
    return event_add(m->watchdog_ev, &every);
}


static int
master_signals_add(struct master *m)
{
    struct event **evs = m->signals;

    signal(SIGPIPE, SIG_IGN);

    for (size_t i = 0; i < MASTER_NSIGNALS; i++) {
        evs[i] = evsignal_new(m->base, master_signals[i], master_signal_cb,
                              m);
        if (evs[i] == NULL || event_priority_set(evs[i], MASTER_PRI_SIGNAL)
            || evsignal_add(evs[i], NULL) != 0)
        {
            log_error("MASTER", "evsignal_add(%d) failed", master_signals[i]);
            return -1;
        }
    }

    return 0;
}


void
master_forget_signals(struct master *m)
{
    /* Deleting a signal event touches no descriptor shared with the
     * master: it only puts the previous handler back. */
    for (size_t i = 0; i < MASTER_NSIGNALS; i++) {
        if (m->signals[i] != NULL) {
            event_del(m->signals[i]);
        }
    }
}


static int
master_load_tenants(struct master *m)
{
    struct tenants_problems problems;

    m->tenants = tenants_load(m->cfg.tenants_file, m->cfg.default_qps,
                              m->cfg.default_burst, &problems,
                              &m->tenants_raw, &m->tenants_raw_len);
    if (m->tenants != NULL) {
        m->generation = 1;
        log_info("TENANT", "%zu tenants loaded from %s", m->tenants->count,
                 m->cfg.tenants_file);
        return 0;
    }

    log_error("TENANT", "TENANT_KEYS_FILE %s is not usable (%d problem%s)",
              m->cfg.tenants_file, problems.count,
              problems.count == 1 ? "" : "s");
    for (int i = 0; i < problems.count && i < TENANTS_PROBLEMS_MAX; i++) {
        log_error("TENANT", "%s", problems.lines[i]);
    }
    return -1;
}


static int
master_start(struct master *m)
{
    int workers = m->cfg.workers > 0 ? m->cfg.workers : cpus_available();
    int most = config_workers_max(&m->cfg);

    /* auto: never more workers than the per-replica limits can share */
    workers = workers < most ? workers : most;

    m->listen_fd = master_listen(m->cfg.port);
    if (m->listen_fd < 0) {
        return -1;
    }

    /*
     * Two priorities: a signal that arrived before an admin request is
     * acted on first in the same loop turn, so /readyz answers 503 to any
     * probe sent after SIGTERM was delivered.  Everything but the signal
     * events takes the default, lower priority.
     */
    m->base = event_base_new();
    if (m->base == NULL || event_base_priority_init(m->base, 2) != 0) {
        log_error("MASTER", "event_base_new() failed");
        return -1;
    }

    m->local = lq_create();
    m->workers = sup_workers_new(m, workers);
    m->admin = admin_start(m);
    if (m->local == NULL || m->workers == NULL || m->admin == NULL
        || master_signals_add(m) != 0 || master_watchdog_start(m) != 0)
    {
        return -1;
    }

    log_info("MASTER",
             "listening on PORT %d, admin on ADMIN_PORT %d, %d workers%s",
             m->cfg.port, m->cfg.admin_port, workers,
             m->cfg.workers > 0 ? "" : " (auto)");
    if (m->cfg.redis_url[0] == '\0') {
        log_warn("REDIS",
                 "REDIS_URL is unset: N replicas admit N times each quota");
    }

    return sup_workers_start(m->workers);
}


static void
master_cleanup(struct master *m)
{
    for (size_t i = 0; i < MASTER_NSIGNALS; i++) {
        if (m->signals[i] != NULL) {
            event_free(m->signals[i]);
        }
    }
    if (m->shutdown_ev != NULL) {
        event_free(m->shutdown_ev);
    }
    if (m->watchdog_ev != NULL) {
        event_free(m->watchdog_ev);
    }
    if (m->deadline_ev != NULL) {
        event_free(m->deadline_ev);
    }
    admin_stop(m->admin);
    if (m->workers != NULL) {
        sup_workers_free(m->workers);
    }
    if (m->base != NULL) {
        event_base_free(m->base);
    }
    if (m->listen_fd >= 0) {
        close(m->listen_fd);
    }
    lq_destroy(m->local);
    tenants_free(m->tenants);
    free(m->tenants_raw);
}


/*
 * libevent's own messages, as lines of ours (tag EVENT) rather than bare
 * "[warn] ..." on stderr.  Set before the fork, so workers inherit it.
 */
static void
master_event_log(int severity, const char *msg)
{
    enum log_level level = severity >= EVENT_LOG_ERR ? LL_ERROR
                           : severity == EVENT_LOG_WARN ? LL_WARN
                           : severity == EVENT_LOG_MSG ? LL_INFO
                           : LL_DEBUG;

    log_at(level, "EVENT", "%s", msg);
}


int
master_main(void)
{
    struct master m;
    char err[256];

    memset(&m, 0, sizeof(m));
    m.listen_fd = -1;
    m.pid = getpid();
    clock_gettime(CLOCK_MONOTONIC, &m.started);
    clock_gettime(CLOCK_REALTIME, &m.started_wall);

    if (config_from_env(&m.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "spark-executor: %s\n", err);
        return MASTER_EX_CONFIG;
    }
    log_set_level(m.cfg.log_level);
    event_set_log_callback(master_event_log);

    /* once, before any worker exists (libcurl's rule) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "spark-executor: curl_global_init() failed\n");
        return 1;
    }

    if (master_load_tenants(&m) != 0) {
        master_cleanup(&m);
        return MASTER_EX_CONFIG;
    }

    if (master_start(&m) != 0) {
        m.exit_code = 1;
    } else {
        event_base_dispatch(m.base);
    }

    master_cleanup(&m);
    curl_global_cleanup();
    return m.exit_code;
}
