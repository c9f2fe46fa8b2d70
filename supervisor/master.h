/*
 * The supervisor (master) process: owns the listening socket, the tenants
 * in force and their generation, the worker slots, the admin port and the
 * shutdown sequence.  It never serves tenant traffic.
 */
#ifndef SPARK_MASTER_H
#define SPARK_MASTER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "../shared/config.h"
#define MASTER_NSIGNALS 7

#include "../shared/tenants.h"

struct admin;
struct sup_workers;

enum master_state {
    MASTER_RUNNING,
    MASTER_DELAYING,     /* not ready, still serving: SHUTDOWN_DELAY_MS */
    MASTER_DRAINING      /* workers finishing; exit when all are gone */
};

struct master {
    struct config         cfg;
    struct event_base    *base;
    int                   listen_fd;     /* -1 once draining */
    pid_t                 pid;
    struct timespec       started;
    struct timespec       started_wall;   /* the same, CLOCK_REALTIME */

    struct tenants       *tenants;       /* in force; copied by fork */
    char                 *tenants_raw;   /* the bytes they came from */
    size_t                tenants_raw_len;
    uint64_t              generation;
    uint64_t              reloads_ok;
    uint64_t              reloads_failed;
    time_t                reloaded_at;   /* last successful reload, or 0 */
    double                ready_ms;      /* start to first worker up */

    struct localquota    *local;         /* shared with every worker */
    struct sup_workers   *workers;
    struct admin         *admin;

    struct event         *signals[MASTER_NSIGNALS];
    enum master_state     state;
    struct event         *watchdog_ev;
    struct timespec       watchdog_tick;
    double                cpu_seconds;   /* the most ever rendered */
    struct event         *shutdown_ev;
    struct event         *deadline_ev;
    int                   exit_code;
    int                   exiting;       /* the loop was told to stop */
};

/* Runs the supervisor in the foreground; returns the exit code. */
int master_main(void);

/* Whether the replica should take traffic (see /readyz). */
int master_ready(const struct master *m, const char **why);

/*
 * In a freshly forked child, before anything else: drops the master's
 * signal events, which puts back the default handlers and lets the child's
 * own event_base take signals.
 */
void master_forget_signals(struct master *m);

#endif
