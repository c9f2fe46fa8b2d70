/*
 * The master's worker slots (see workers.h).  Master process only, except
 * sup_child(), which runs in a freshly forked child on its way to
 * worker_main().
 *
 * A worker that dies is replaced at once; one that keeps dying young is
 * replaced after a growing delay, and when young deaths pile up the replica
 * reports itself not ready (crash loop) instead of forking at full speed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "master.h"
#include "workers.h"
#include "../shared/channel.h"
#include "../shared/clock.h"
#include "../shared/log.h"
#include "../worker/worker.h"

#define SUP_YOUNG_S          5.0      /* dying sooner than this is young */
#define SUP_RESPAWN_BASE_MS  100
#define SUP_RESPAWN_MAX_MS   30000
#define SUP_LOOP_DEATHS      5        /* young deaths ... */
#define SUP_LOOP_WINDOW_S    60.0     /* ... within this many seconds */

static int sup_slot_spawn(struct sup_slot *s);
static void sup_workers_send_shares(struct sup_workers *ws);

const char *const sup_cause_names[SUP_CAUSES] = {
    "exit", "signal", "watchdog"
};


static void
sup_close_fds_except(int keep_a, int keep_b)
{
    int lo = keep_a < keep_b ? keep_a : keep_b;
    int hi = keep_a < keep_b ? keep_b : keep_a;
    DIR *dir;
    struct dirent *de;

#ifdef SYS_close_range
    if ((lo <= 3 || syscall(SYS_close_range, 3, lo - 1, 0) == 0)
        && (hi <= lo + 1 || syscall(SYS_close_range, lo + 1, hi - 1, 0) == 0)
        && syscall(SYS_close_range, hi + 1, ~0U, 0) == 0)
    {
        return;
    }
#endif

    /* Kernels before 5.9: walk the open descriptors instead. */
    dir = opendir("/proc/self/fd");
    if (dir == NULL) {
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        int fd = atoi(de->d_name);

        if (fd > 2 && fd != keep_a && fd != keep_b && fd != dirfd(dir)) {
            close(fd);
        }
    }
    closedir(dir);
}


/*
 * In the child: forget the master's handlers and descriptors (its loop,
 * the admin socket, the siblings' channels), then become a worker.
 */
static void
sup_child(struct sup_slot *s, int chan_fd)
{
    struct master *m = s->owner->m;
    struct worker_params p = {
        .slot = s->index,
        .listen_fd = m->listen_fd,
        .chan_fd = chan_fd,
        .master_pid = m->pid,
        .max_conns = sup_workers_share(s->owner, m->cfg.http_concurrency),
        .outbound_share = sup_workers_share(s->owner, m->cfg.outbound_max),
        .local = m->local,
        .cfg = &m->cfg,
        .tenants = m->tenants,
        .generation = m->generation,
    };

    master_forget_signals(m);
    sup_close_fds_except(m->listen_fd, chan_fd);
    exit(worker_main(&p));
}


/* A report of per-org counts: each entry replaces the worker's last. */
static void
sup_slot_take_orgs(struct sup_slot *s, const struct chan_frame *f)
{
    size_t n = f->len / sizeof(struct org_tally);

    if (f->len % sizeof(struct org_tally) != 0 || s->orgs == NULL) {
        return;
    }

    for (size_t i = 0; i < n; i++) {
        struct org_tally e, *t;

        memcpy(&e, f->payload + i * sizeof(e), sizeof(e));
        e.org[sizeof(e.org) - 1] = '\0';
        t = tally_get(s->orgs, e.org);
        if (t != NULL) {
            *t = e;
        }
    }
}


static const char *
sup_fail_mode_effect(enum redis_fail_mode mode)
{
    switch (mode) {
    case REDIS_FAIL_OPEN:
        return "admitted unchecked (REDIS_FAIL_MODE=open)";
    case REDIS_FAIL_CLOSED:
        return "refused with 503 (REDIS_FAIL_MODE=closed)";
    default:
        return "enforced per replica share (REDIS_FAIL_MODE=local)";
    }
}


/*
 * Each worker keeps its own Redis connection and reports its state; the
 * replica logs one line when Redis stops answering any of them, and one
 * when it answers again (some worker connected, none still cut off).
 */
static void
sup_redis_watch(struct sup_workers *ws)
{
    const char *why = NULL;
    int lost = 0, up = 0, reporting = 0;

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        const struct sup_slot *s = &ws->slots[i];

        if (s->pid == 0 || !s->reported) {
            continue;
        }
        reporting++;
        up += s->stats.redis_up != 0;
        if (s->stats.redis_lost) {
            lost++;
            why = s->stats.redis_why;
        }
    }

    if (lost > 0 && !ws->redis_lost) {
        log_warn("REDIS",
                 "%s unreachable from %d of %d workers; quotas %s until back",
                 why, lost, reporting,
                 sup_fail_mode_effect(ws->m->cfg.redis_fail_mode));
        ws->redis_lost = 1;
    } else if (lost == 0 && up > 0 && ws->redis_lost) {
        log_info("REDIS", "Redis answers again; quotas enforced in Redis");
        ws->redis_lost = 0;
    }
}


static void
sup_slot_chan_read(struct bufferevent *bev, void *arg)
{
    struct sup_slot *s = arg;
    struct chan_frame f;

    while (chan_recv(bev, &f) == 1) {
        if (f.type == CHAN_ORGS) {
            sup_slot_take_orgs(s, &f);
        } else if (f.type == CHAN_STATS && f.len == sizeof(s->stats)) {
            uint64_t was = s->stats.generation;

            memcpy(&s->stats, f.payload, sizeof(s->stats));
            s->stats.redis_why[sizeof(s->stats.redis_why) - 1] = '\0';
            clock_gettime(CLOCK_MONOTONIC, &s->last_report);
            if (s->owner->m->ready_ms == 0 && s->stats.warm) {
                struct master *m = s->owner->m;

                m->ready_ms = clock_since_s(&m->started) * 1000;
                log_info("WARMUP",
                         "ready %.1f ms after start (a worker is warm)",
                         m->ready_ms);
            }
            if (!s->reported || was != s->stats.generation) {
                log_debug("WORKER", "slot %d pid %d serves generation %llu",
                          s->index, (int) s->pid,
                          (unsigned long long) s->stats.generation);
            }
            s->reported = 1;
            sup_redis_watch(s->owner);
        }
        free(f.payload);
    }
}


/*
 * Takes in what the worker wrote and closes the channel.  When SIGCHLD is
 * acted on first (signals run at the higher priority), the last report of
 * a worker that drained on purpose may still sit in the socket, unread by
 * the bufferevent: read it dry (the socket is non-blocking) so that its
 * final counts are kept.  A socket bufferevent freezes the end of its
 * input buffer so that only it adds to it; it is about to be freed.
 */
static void
sup_slot_chan_close(struct sup_slot *s)
{
    if (s->chan != NULL) {
        struct evbuffer *in = bufferevent_get_input(s->chan);
        evutil_socket_t fd = bufferevent_getfd(s->chan);

        evbuffer_unfreeze(in, 0);
        while (fd >= 0 && evbuffer_read(in, fd, -1) > 0) {
            continue;
        }
        sup_slot_chan_read(s->chan, s);
        bufferevent_free(s->chan);
        s->chan = NULL;
    }
}


static void
sup_slot_chan_event(struct bufferevent *bev, short what, void *arg)
{
    (void) bev;
    (void) what;

    /* The worker closed its end: it is exiting; SIGCHLD follows. */
    sup_slot_chan_close(arg);
}


static int
sup_slot_spawn(struct sup_slot *s)
{
    struct master *m = s->owner->m;
    sigset_t all, old;
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_error("WORKER", "socketpair() failed for slot %d: %s", s->index,
                  strerror(errno));
        return -1;
    }

    /* No signal may run the master's handlers in the child. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        sup_child(s, sv[1]);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);

    if (pid < 0) {
        log_error("WORKER", "fork() failed for slot %d: %s", s->index,
                  strerror(errno));
        close(sv[0]);
        return -1;
    }

    evutil_make_socket_nonblocking(sv[0]);
    s->chan = bufferevent_socket_new(m->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    if (s->chan == NULL) {
        log_error("WORKER", "no channel for slot %d; stopping pid %d",
                  s->index, (int) pid);
        close(sv[0]);
        kill(pid, SIGKILL);
    } else {
        bufferevent_setcb(s->chan, sup_slot_chan_read, NULL,
                          sup_slot_chan_event, s);
        bufferevent_enable(s->chan, EV_READ | EV_WRITE);
    }

    s->pid = pid;
    s->state = SLOT_RUNNING;
    s->reported = 0;
    s->watchdog_kill = 0;
    memset(&s->stats, 0, sizeof(s->stats));
    s->orgs = tally_new();
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    s->last_report = s->started;

    log_info("WORKER", "slot %d started pid %d (generation %llu)", s->index,
             (int) pid, (unsigned long long) m->generation);
    return 0;
}


static void sup_slot_respawn_in(struct sup_slot *s, int delay_ms);


/*
 * The slot's worker is forked again; one that cannot be (fork() or the
 * channel failed, logged there) is tried again later rather than left
 * empty, so the replica recovers once the cause does.
 */
static void
sup_slot_respawn(struct sup_slot *s)
{
    if (sup_slot_spawn(s) != 0) {
        sup_slot_respawn_in(s, SUP_RESPAWN_MAX_MS / 10);
    }
}


static void
sup_slot_respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sup_slot *s = arg;

    (void) fd;
    (void) what;

    if (s->state == SLOT_RESPAWNING) {
        sup_slot_respawn(s);
    }
}


static void
sup_slot_respawn_in(struct sup_slot *s, int delay_ms)
{
    struct timeval tv = clock_tv_ms(delay_ms);

    if (s->respawn_ev == NULL) {
        s->respawn_ev = evtimer_new(s->owner->m->base, sup_slot_respawn_cb, s);
    }
    s->state = SLOT_RESPAWNING;
    evtimer_add(s->respawn_ev, &tv);
}


static int
sup_active(const struct sup_slot *s)
{
    return s->state == SLOT_RUNNING || s->state == SLOT_RESPAWNING;
}


struct sup_workers *
sup_workers_new(struct master *m, int target)
{
    struct sup_workers *ws = calloc(1, sizeof(*ws));

    if (ws == NULL) {
        return NULL;
    }

    ws->m = m;
    ws->target = target;
    ws->shared_by = target;
    ws->retired.orgs = tally_new();
    if (ws->retired.orgs == NULL) {
        free(ws);
        return NULL;
    }
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        ws->slots[i].index = i;
        ws->slots[i].owner = ws;
    }

    return ws;
}


void
sup_workers_free(struct sup_workers *ws)
{
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        sup_slot_chan_close(&ws->slots[i]);
        if (ws->slots[i].respawn_ev != NULL) {
            event_free(ws->slots[i].respawn_ev);
        }
        tally_free(ws->slots[i].orgs);
    }

    tally_free(ws->retired.orgs);
    free(ws);
}


int
sup_workers_start(struct sup_workers *ws)
{
    int active = 0;

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        active += sup_active(&ws->slots[i]);
    }

    for (int i = 0; i < SUP_SLOTS_MAX && active < ws->target; i++) {
        if (ws->slots[i].state == SLOT_EMPTY) {
            if (sup_slot_spawn(&ws->slots[i]) != 0) {
                return -1;
            }
            active++;
        }
    }

    return 0;
}


static unsigned
sup_recent_young_deaths(const struct sup_workers *ws)
{
    unsigned n = 0;
    size_t ring = sizeof(ws->young_deaths_at) / sizeof(ws->young_deaths_at[0]);

    for (size_t i = 0; i < ring; i++) {
        const struct timespec *ts = &ws->young_deaths_at[i];

        if ((ts->tv_sec != 0 || ts->tv_nsec != 0)
            && clock_since_s(ts) < SUP_LOOP_WINDOW_S)
        {
            n++;
        }
    }

    return n;
}


int
sup_workers_crash_looping(const struct sup_workers *ws)
{
    return sup_recent_young_deaths(ws) >= SUP_LOOP_DEATHS;
}


static void
sup_note_young_death(struct sup_workers *ws)
{
    size_t ring = sizeof(ws->young_deaths_at) / sizeof(ws->young_deaths_at[0]);
    int was = sup_workers_crash_looping(ws);

    clock_gettime(CLOCK_MONOTONIC,
                  &ws->young_deaths_at[ws->young_deaths_next++ % ring]);

    if (!was && sup_workers_crash_looping(ws)) {
        log_error("WORKER",
                  "crash loop: %u workers died young in %.0f s; not ready",
                  sup_recent_young_deaths(ws), SUP_LOOP_WINDOW_S);
    }
}


static int
sup_respawn_delay_ms(unsigned young_deaths)
{
    if (young_deaths <= 1) {
        return 0;
    }

    return clock_backoff_ms(SUP_RESPAWN_BASE_MS, SUP_RESPAWN_MAX_MS,
                            young_deaths - 2);
}


static void
sup_log_exit(const struct sup_slot *s, int status, int planned)
{
    double up = clock_since_s(&s->started);

    /* the kill itself was the event, logged once by the watchdog */
    if (s->watchdog_kill) {
        log_debug("WORKER", "slot %d pid %d reaped after %.1f s",
                  s->index, (int) s->pid, up);
        return;
    }

    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);

        log_at(code == 0 && planned ? LL_INFO : LL_WARN, "WORKER",
               "slot %d pid %d exited with code %d after %.1f s", s->index,
               (int) s->pid, code, up);
        return;
    }

    log_at(LL_ERROR, "WORKER",
           "slot %d pid %d killed by signal %d (%s)%s after %.1f s",
           s->index, (int) s->pid, WTERMSIG(status),
           strsignal(WTERMSIG(status)),
           WTERMSIG(status) == SIGKILL ? ", possibly out of memory" : "",
           up);
}


/* Folds a dead worker's last counts into the totals of those gone. */
static void
sup_slot_retire(struct sup_slot *s)
{
    struct sup_retired *r = &s->owner->retired;

    stats_add_counters(&r->stats, &s->stats);
    memset(&s->stats, 0, sizeof(s->stats));

    for (size_t i = 0; s->orgs != NULL && i < tally_count(s->orgs); i++) {
        struct org_tally *from = tally_at(s->orgs, i);
        struct org_tally *into = tally_get(r->orgs, from->org);

        if (into != NULL) {
            stats_add_tally(into, from);
        }
    }

    tally_free(s->orgs);
    s->orgs = NULL;
}


static void
sup_slot_exited(struct sup_slot *s, int status)
{
    struct sup_workers *ws = s->owner;
    int planned = s->state == SLOT_STOPPING;
    int delay;

    sup_slot_chan_close(s);
    sup_log_exit(s, status, planned);

    sup_slot_retire(s);
    s->pid = 0;
    sup_workers_send_shares(ws);

    if (planned || ws->m->state == MASTER_DRAINING) {
        if (ws->m->state == MASTER_DRAINING
            && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        {
            ws->m->exit_code = 1;
        }
        s->state = SLOT_EMPTY;
        return;
    }

    ws->retired.restarts[s->watchdog_kill ? SUP_CAUSE_WATCHDOG
                         : WIFSIGNALED(status) ? SUP_CAUSE_SIGNAL
                         : SUP_CAUSE_EXIT]++;
    if (clock_since_s(&s->started) < SUP_YOUNG_S) {
        s->young_deaths++;
        sup_note_young_death(ws);
    } else {
        s->young_deaths = 0;
    }

    delay = sup_respawn_delay_ms(s->young_deaths);
    if (sup_workers_crash_looping(ws) && delay < SUP_RESPAWN_MAX_MS / 10) {
        delay = SUP_RESPAWN_MAX_MS / 10;
    }

    if (delay == 0) {
        sup_slot_respawn(s);
        return;
    }

    log_warn("WORKER",
             "slot %d died young %u times in a row; restarting in %d ms",
             s->index, s->young_deaths, delay);
    sup_slot_respawn_in(s, delay);
}


static struct sup_slot *
sup_slot_by_pid(struct sup_workers *ws, pid_t pid)
{
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        if (ws->slots[i].pid == pid && ws->slots[i].state != SLOT_EMPTY) {
            return &ws->slots[i];
        }
    }

    return NULL;
}


void
sup_workers_reap(struct sup_workers *ws)
{
    struct sup_slot *s;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        s = sup_slot_by_pid(ws, pid);
        if (s == NULL) {
            /* As PID 1 we inherit orphans; they are not workers. */
            log_debug("WORKER", "reaped pid %d, not a worker", (int) pid);
            continue;
        }
        sup_slot_exited(s, status);
    }
}


void
sup_workers_grow(struct sup_workers *ws)
{
    if (ws->target >= config_workers_max(&ws->m->cfg)) {
        log_warn("WORKER",
                 "SIGTTIN ignored: %d workers, a share each of the limits",
                 ws->target);
        return;
    }

    ws->target++;
    log_info("WORKER", "SIGTTIN: %d workers wanted", ws->target);
    sup_workers_send_shares(ws);
    sup_workers_start(ws);
}


void
sup_workers_shrink(struct sup_workers *ws)
{
    if (ws->target <= 1) {
        log_warn("WORKER", "SIGTTOU ignored: one worker is the minimum");
        return;
    }

    ws->target--;
    log_info("WORKER", "SIGTTOU: %d workers wanted", ws->target);

    for (int i = SUP_SLOTS_MAX - 1; i >= 0; i--) {
        struct sup_slot *s = &ws->slots[i];

        if (s->state == SLOT_RESPAWNING) {
            evtimer_del(s->respawn_ev);
            s->state = SLOT_EMPTY;
            return;
        }
        if (s->state == SLOT_RUNNING) {
            s->state = SLOT_STOPPING;
            if (s->chan != NULL) {
                chan_send(s->chan, CHAN_DRAIN, NULL, 0);
            }
            return;
        }
    }
}


void
sup_workers_send_tenants(struct sup_workers *ws)
{
    struct master *m = ws->m;

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        struct sup_slot *s = &ws->slots[i];

        if (s->state == SLOT_RUNNING && s->chan != NULL
            && chan_send2(s->chan, CHAN_TENANTS, &m->generation,
                          sizeof(m->generation), m->tenants_raw,
                          m->tenants_raw_len) != 0)
        {
            log_error("RELOAD", "could not queue generation %llu for slot %d",
                      (unsigned long long) m->generation, i);
        }
    }
}


void
sup_workers_drain(struct sup_workers *ws)
{
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        struct sup_slot *s = &ws->slots[i];

        if (s->state == SLOT_RESPAWNING) {
            evtimer_del(s->respawn_ev);
            s->state = SLOT_EMPTY;
        } else if (s->state == SLOT_RUNNING || s->state == SLOT_STOPPING) {
            s->state = SLOT_STOPPING;
            if (s->chan != NULL) {
                chan_send(s->chan, CHAN_DRAIN, NULL, 0);
            }
        }
    }
}


int
sup_workers_alive(const struct sup_workers *ws)
{
    int n = 0;

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        n += ws->slots[i].pid != 0;
    }

    return n;
}


int
sup_workers_warm(const struct sup_workers *ws)
{
    int n = 0;

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        n += ws->slots[i].pid != 0 && ws->slots[i].stats.warm;
    }

    return n;
}


/*
 * The workers a per-replica limit is split by: the target, or more while a
 * worker told to stop still finishes its requests.
 */
static int
sup_workers_sharing(const struct sup_workers *ws)
{
    int alive = sup_workers_alive(ws);

    return alive > ws->target ? alive : ws->target;
}


int
sup_workers_share(const struct sup_workers *ws, int per_replica)
{
    int share = per_replica / sup_workers_sharing(ws);

    return share > 0 ? share : 1;
}


/* Tells the running workers their new parts when the split changed. */
static void
sup_workers_send_shares(struct sup_workers *ws)
{
    const struct config *cfg = &ws->m->cfg;
    struct chan_shares sh = {
        .max_conns = sup_workers_share(ws, cfg->http_concurrency),
        .outbound = sup_workers_share(ws, cfg->outbound_max),
    };

    if (sup_workers_sharing(ws) == ws->shared_by) {
        return;
    }
    ws->shared_by = sup_workers_sharing(ws);

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        struct sup_slot *s = &ws->slots[i];

        if (s->state == SLOT_RUNNING && s->chan != NULL) {
            chan_send(s->chan, CHAN_SHARES, &sh, sizeof(sh));
        }
    }
}


void
sup_workers_watchdog(struct sup_workers *ws, int timeout_ms)
{
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        struct sup_slot *s = &ws->slots[i];
        double silent = clock_since_s(&s->last_report) * 1000;

        if (s->pid == 0 || s->watchdog_kill || silent <= timeout_ms) {
            continue;
        }

        log_error("WORKER",
                  "slot %d pid %d silent for %.0f ms of %d allowed; killing it",
                  s->index, (int) s->pid, silent, timeout_ms);
        s->watchdog_kill = 1;
        kill(s->pid, SIGKILL);
    }
}


void
sup_workers_heard_now(struct sup_workers *ws)
{
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ws->slots[i].last_report);
    }
}


uint64_t
sup_workers_restarts(const struct sup_workers *ws)
{
    uint64_t n = 0;

    for (int i = 0; i < SUP_CAUSES; i++) {
        n += ws->retired.restarts[i];
    }

    return n;
}
