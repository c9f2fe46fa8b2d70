/*
 * How many CPUs this process may really use: the smaller of its affinity
 * mask and its cgroup CPU quota (rounded up), at least 1.  Used by the
 * master to size WORKERS=auto.
 */
#ifndef SPARK_CPUS_H
#define SPARK_CPUS_H

int cpus_available(void);

/* The cgroup quota in CPUs, rounded up, or 0 when there is none. */
int cpus_cgroup_quota(const char *cgroup_root);

#endif
