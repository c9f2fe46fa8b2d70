/*
 * A map from org id to struct org_tally, used by a worker for its own
 * per-tenant counters and by the master for each worker's last report and
 * for the totals of workers that are gone.  Entries are never removed and
 * never move: a pointer from tally_get() stays valid until tally_free().
 */
#ifndef SPARK_TALLY_H
#define SPARK_TALLY_H

#include <stddef.h>

#include "stats.h"

struct tally_map;

struct tally_map *tally_new(void);

void tally_free(struct tally_map *m);

/* The entry for org, created zeroed if absent; NULL when out of memory. */
struct org_tally *tally_get(struct tally_map *m, const char *org);

size_t tally_count(const struct tally_map *m);

/* Entries in the order they were created, for i < tally_count(m). */
struct org_tally *tally_at(const struct tally_map *m, size_t i);

#endif
