/*
 * Prometheus text exposition of the replica, rendered by the master from
 * what it holds: the last report of each live worker plus the totals of
 * the workers that are gone.  Nothing here asks a worker anything.
 */
#ifndef SPARK_METRICS_H
#define SPARK_METRICS_H

#include <event2/buffer.h>

struct master;

/* Appends the exposition to out. Master process only. */
void met_render(struct master *m, struct evbuffer *out);

#endif
