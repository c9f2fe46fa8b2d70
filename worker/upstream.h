/*
 * Outbound HTTP to the exchange: libcurl's multi interface driven by the
 * worker's libevent loop (socket and timer callbacks, no threads, nothing
 * blocking).  Connections are kept alive and reused.  At most `cap`
 * requests are in flight per worker (its share of OUTBOUND_MAX_CONCURRENCY);
 * more wait in a bounded queue, each for at most a deadline.  Worker
 * process only.
 */
#ifndef SPARK_UPSTREAM_H
#define SPARK_UPSTREAM_H

#include <stddef.h>

#include <event2/event.h>

#include "../shared/config.h"

enum up_outcome {
    UP_ANSWERED,            /* an HTTP answer came back (any status) */
    UP_TIMEOUT,             /* no answer within EXCHANGE_TIMEOUT_MS */
    UP_UNREACHABLE,         /* refused, reset, DNS or TLS failure */
    UP_BUSY                 /* the queue was full or its deadline passed */
};

struct up_result {
    enum up_outcome  outcome;
    long             status;
    const char      *body;           /* valid during the callback */
    size_t           len;
    long             retry_after_s;  /* from Retry-After, or 0 */
    const char      *error;          /* curl's words when not answered */
};

typedef void (*up_done_fn)(const struct up_result *r, void *arg);

struct upstream;

/* cap >= 1: in-flight requests of this worker. NULL after logging. */
struct upstream *up_new(struct event_base *base, const struct config *cfg,
                        int cap);

void up_free(struct upstream *u);

/*
 * GETs EXCHANGE_BASE_URL + path_and_query, with an X-MBX-APIKEY header
 * when api_key is not NULL; fn(arg) is called exactly once, maybe before
 * this returns (when the queue is full).
 */
void up_get(struct upstream *u, const char *path_and_query,
            const char *api_key, up_done_fn fn, void *arg);

/*
 * A new cap on requests in flight.  Lowered, it lets those under way
 * finish and starts no more until they are under it.
 */
void up_set_cap(struct upstream *u, int cap);

/* Requests in flight now, and the cap. */
int up_inflight(const struct upstream *u);
int up_cap(const struct upstream *u);

#endif
