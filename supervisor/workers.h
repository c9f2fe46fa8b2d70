/*
 * The master's worker slots: spawning (fork), reaping, respawning with a
 * growing delay, the crash-loop guard, and each worker's channel and last
 * stats.  Master process only.
 */
#ifndef SPARK_WORKERS_H
#define SPARK_WORKERS_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <event2/bufferevent.h>

#include "../shared/stats.h"
#include "../shared/tally.h"

#define SUP_SLOTS_MAX 256

struct master;

enum sup_slot_state {
    SLOT_EMPTY,
    SLOT_RUNNING,
    SLOT_STOPPING,       /* told to drain; not replaced when it exits */
    SLOT_RESPAWNING      /* dead, waiting out its restart delay */
};

/* Why a worker had to be replaced. */
enum sup_cause {
    SUP_CAUSE_EXIT,                      /* it exited on its own */
    SUP_CAUSE_SIGNAL,                    /* a signal killed it */
    SUP_CAUSE_WATCHDOG,                  /* it stopped reporting */
    SUP_CAUSES
};

extern const char *const sup_cause_names[SUP_CAUSES];

struct sup_slot {
    int                   index;
    enum sup_slot_state   state;
    pid_t                 pid;
    struct timespec       started;
    struct timespec       last_report;
    struct bufferevent   *chan;
    struct worker_stats   stats;         /* the last report */
    struct tally_map     *orgs;          /* its last per-org report */
    int                   reported;      /* at least one report arrived */
    int                   watchdog_kill; /* killed for its silence */
    unsigned              young_deaths;  /* in a row */
    struct event         *respawn_ev;
    struct sup_workers   *owner;
};

/* Counts of workers that are gone, so that totals never go backwards. */
struct sup_retired {
    struct worker_stats   stats;         /* its counters; gauges unused */
    struct tally_map     *orgs;
    uint64_t              restarts[SUP_CAUSES];
};

struct sup_workers {
    struct master        *m;
    int                   target;        /* slots that should run */
    struct sup_slot       slots[SUP_SLOTS_MAX];
    struct sup_retired    retired;
    struct timespec       young_deaths_at[8];  /* ring of recent ones */
    unsigned              young_deaths_next;
    int                   redis_lost;    /* as last logged for the replica */
    int                   shared_by;     /* workers the limits were split by */
};

struct sup_workers *sup_workers_new(struct master *m, int target);
void sup_workers_free(struct sup_workers *ws);

/* Forks every missing worker up to the target; returns 0, or -1. */
int sup_workers_start(struct sup_workers *ws);

/* Reaps every exited child; called on SIGCHLD. */
void sup_workers_reap(struct sup_workers *ws);

/* One worker more, or one less (the highest slot drains and exits). */
void sup_workers_grow(struct sup_workers *ws);
void sup_workers_shrink(struct sup_workers *ws);

/* Sends the tenants in force to every running worker. */
void sup_workers_send_tenants(struct sup_workers *ws);

/* Tells every worker to drain; no slot is replaced from now on. */
void sup_workers_drain(struct sup_workers *ws);

int sup_workers_alive(const struct sup_workers *ws);
/* Workers that finished their warmup and take connections. */
int sup_workers_warm(const struct sup_workers *ws);

/* True when workers died young too often lately (see workers.c). */
int sup_workers_crash_looping(const struct sup_workers *ws);

/* One worker's share of a per-replica limit (at least 1). */
int sup_workers_share(const struct sup_workers *ws, int per_replica);

/* Kills (SIGKILL) every worker silent for longer than timeout_ms. */
void sup_workers_watchdog(struct sup_workers *ws, int timeout_ms);

/* Counts every worker as heard from now (after the master was stopped). */
void sup_workers_heard_now(struct sup_workers *ws);

uint64_t sup_workers_restarts(const struct sup_workers *ws);

#endif
