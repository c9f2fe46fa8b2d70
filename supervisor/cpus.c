/*
 * CPUs granted by affinity and cgroup quota (see cpus.h).
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "cpus.h"


static int
cpus_ceil_div(long long quota, long long period)
{
    if (quota <= 0 || period <= 0) {
        return 0;
    }

    return (int) ((quota + period - 1) / period);
}


/* cgroup v2: "cpu.max" holds "<quota> <period>" or "max <period>". */
static int
cpus_cgroup_v2(const char *root)
{
    char path[512], quota[32];
    long long period, q = 0;
    FILE *f;
    int n;

    snprintf(path, sizeof(path), "%s/cpu.max", root);
    f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }

    n = fscanf(f, "%31s %lld", quota, &period);
    fclose(f);
    if (n != 2 || strcmp(quota, "max") == 0) {
        return 0;
    }

    if (sscanf(quota, "%lld", &q) != 1) {
        return 0;
    }
    return cpus_ceil_div(q, period);
}


/* cgroup v1: cpu.cfs_quota_us (-1 = none) over cpu.cfs_period_us. */
static int
cpus_cgroup_v1(const char *root)
{
    long long quota = -1, period = 0;
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/cpu/cpu.cfs_quota_us", root);
    f = fopen(path, "re");
    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%lld", &quota) != 1) {
        quota = -1;
    }
    fclose(f);

    snprintf(path, sizeof(path), "%s/cpu/cpu.cfs_period_us", root);
    f = fopen(path, "re");
    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%lld", &period) != 1) {
        period = 0;
    }
    fclose(f);

    return cpus_ceil_div(quota, period);
}


int
cpus_cgroup_quota(const char *cgroup_root)
{
    int n = cpus_cgroup_v2(cgroup_root);

    return n >= 0 ? n : cpus_cgroup_v1(cgroup_root);
}


int
cpus_available(void)
{
    cpu_set_t set;
    int n = 1, quota;

    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        n = CPU_COUNT(&set);
    }

    quota = cpus_cgroup_quota("/sys/fs/cgroup");
    if (quota > 0 && quota < n) {
        n = quota;
    }

    return n > 0 ? n : 1;
}
