/*
 * Prometheus text exposition (see metrics.h).  Metric names follow the
 * operations guide of the service this one replaces, so that existing
 * dashboards and alerts keep working; process_* figures cover every
 * process of the replica.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "master.h"
#include "metrics.h"
#include "workers.h"
#include "../shared/clock.h"
#include "../shared/tally.h"

struct met_process {
    double  rss_bytes;
    double  cpu_seconds;
    double  open_fds;
};


static void
met_family(struct evbuffer *out, const char *name, const char *type,
           const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
                        name, type);
}


static void
met_value(struct evbuffer *out, const char *name, const char *type,
          const char *help, double value)
{
    met_family(out, name, type, help);
    evbuffer_add_printf(out, "%s %.17g\n", name, value);
}


/* The counters of every worker, live or gone, added up. */
static void
met_sum_counters(const struct sup_workers *ws, struct worker_stats *sum)
{
    *sum = ws->retired.stats;

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        if (ws->slots[i].pid != 0) {
            stats_add_counters(sum, &ws->slots[i].stats);
        }
    }
}


static void
met_add_orgs(struct tally_map *into, const struct tally_map *from)
{
    for (size_t i = 0; from != NULL && i < tally_count(from); i++) {
        struct org_tally *t = tally_get(into, tally_at(from, i)->org);

        if (t != NULL) {
            stats_add_tally(t, tally_at(from, i));
        }
    }
}


static void
met_tenants(struct evbuffer *out, const struct sup_workers *ws)
{
    struct tally_map *orgs = tally_new();
    size_t n;

    if (orgs == NULL) {
        return;
    }
    met_add_orgs(orgs, ws->retired.orgs);
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        met_add_orgs(orgs, ws->slots[i].orgs);
    }
    n = tally_count(orgs);

    met_family(out, "spark_tenant_requests_total", "counter",
               "Answers on tenant routes, by the org the request named.");
    for (size_t i = 0; i < n; i++) {
        evbuffer_add_printf(out, "spark_tenant_requests_total{org=\"%s\"} "
                            "%llu\n", tally_at(orgs, i)->org,
                            (unsigned long long) tally_at(orgs, i)->requests);
    }

    met_family(out, "spark_tenant_errors_total", "counter",
               "Answers with a 5xx status on tenant routes, by org.");
    for (size_t i = 0; i < n; i++) {
        evbuffer_add_printf(out, "spark_tenant_errors_total{org=\"%s\"} "
                            "%llu\n", tally_at(orgs, i)->org,
                            (unsigned long long) tally_at(orgs, i)->errors);
    }

    met_family(out, "spark_tenant_rejects_total", "counter",
               "Requests refused, by org and reason (auth, quota, degraded, "
               "unavailable).");
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; r < STATS_REJECTS; r++) {
            evbuffer_add_printf(out, "spark_tenant_rejects_total{org=\"%s\","
                                "reason=\"%s\"} %llu\n",
                                tally_at(orgs, i)->org, stats_reject_names[r],
                                (unsigned long long)
                                tally_at(orgs, i)->rejects[r]);
        }
    }

    tally_free(orgs);
}


static void
met_histogram(struct evbuffer *out, const struct worker_stats *sum)
{
    uint64_t cumulative = 0;

    met_family(out, "spark_perf_http_duration_ms", "histogram",
               "Time from a request's last byte to its answer, in "
               "milliseconds.");

    for (int i = 0; i < STATS_BUCKETS; i++) {
        cumulative += sum->duration_buckets[i];
        if (i < STATS_BUCKETS - 1) {
            evbuffer_add_printf(out, "spark_perf_http_duration_ms_bucket"
                                "{le=\"%g\"} %llu\n",
                                stats_bucket_us[i] / 1000.0,
                                (unsigned long long) cumulative);
        } else {
            evbuffer_add_printf(out, "spark_perf_http_duration_ms_bucket"
                                "{le=\"+Inf\"} %llu\n",
                                (unsigned long long) cumulative);
        }
    }

    evbuffer_add_printf(out, "spark_perf_http_duration_ms_sum %.3f\n"
                        "spark_perf_http_duration_ms_count %llu\n",
                        sum->duration_sum_us / 1000.0,
                        (unsigned long long) cumulative);
}


static void
met_workers(struct evbuffer *out, const struct master *m)
{
    const struct sup_workers *ws = m->workers;

    met_value(out, "spark_workers", "gauge", "Worker processes alive.",
              sup_workers_alive(ws));
    met_value(out, "spark_workers_wanted", "gauge",
              "Worker processes the supervisor keeps running.", ws->target);

    met_family(out, "spark_worker_restarts_total", "counter",
               "Workers replaced, by cause (exit, signal, watchdog).");
    for (int c = 0; c < SUP_CAUSES; c++) {
        evbuffer_add_printf(out, "spark_worker_restarts_total{cause=\"%s\"} "
                            "%llu\n", sup_cause_names[c],
                            (unsigned long long) ws->retired.restarts[c]);
    }
}


static void
met_config(struct evbuffer *out, const struct master *m)
{
    met_value(out, "spark_config_generation", "gauge",
              "Generation of the tenants in force; each good reload adds "
              "one.", (double) m->generation);

    met_family(out, "spark_config_reloads_total", "counter",
               "Tenants reloads (SIGHUP), by result.");
    evbuffer_add_printf(out, "spark_config_reloads_total{result=\"ok\"} "
                        "%llu\nspark_config_reloads_total{result=\"failed\"} "
                        "%llu\n", (unsigned long long) m->reloads_ok,
                        (unsigned long long) m->reloads_failed);

    met_value(out, "spark_config_last_reload_timestamp_seconds", "gauge",
              "Unix time of the last good reload (0: none yet).",
              (double) m->reloaded_at);
    met_value(out, "spark_config_tenants", "gauge",
              "Tenants in force.", (double) m->tenants->count);
}


static void
met_redis(struct evbuffer *out, const struct master *m,
          const struct worker_stats *sum)
{
    const struct sup_workers *ws = m->workers;
    uint32_t up = 0, replicas = 0;

    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        if (ws->slots[i].pid != 0) {
            up += ws->slots[i].stats.redis_up;
            if (ws->slots[i].stats.replicas_seen > replicas) {
                replicas = ws->slots[i].stats.replicas_seen;
            }
        }
    }

    met_value(out, "spark_redis_connected_workers", "gauge",
              "Workers connected to the quota Redis.", up);
    met_value(out, "spark_redis_replicas_seen", "gauge",
              "Replicas sharing the quotas, as counted through Redis.",
              replicas);
    met_value(out, "spark_redis_calls_total", "counter",
              "Quota scripts sent to Redis.", (double) sum->redis_calls);
    met_value(out, "spark_redis_errors_total", "counter",
              "Quota calls that failed or ran past REDIS_TIMEOUT_MS.",
              (double) sum->redis_errors);

    met_family(out, "spark_redis_roundtrip_seconds", "summary",
               "Round-trip time of answered quota calls.");
    evbuffer_add_printf(out, "spark_redis_roundtrip_seconds_sum %.6f\n"
                        "spark_redis_roundtrip_seconds_count %llu\n",
                        sum->redis_rtt_us / 1e6,
                        (unsigned long long) sum->redis_answers);
}


/* Adds one process's memory, CPU and descriptors from /proc. */
static void
met_proc(pid_t pid, struct met_process *p)
{
    char path[64];
    unsigned long utime, stime;
    long pages, resident;
    struct dirent *de;
    FILE *f;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/statm", (int) pid);
    f = fopen(path, "re");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &resident) == 2) {
            p->rss_bytes += (double) resident * sysconf(_SC_PAGESIZE);
        }
        fclose(f);
    }

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    f = fopen(path, "re");
    if (f != NULL) {
        if (fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                   "%lu %lu", &utime, &stime) == 2)
        {
            p->cpu_seconds += (double) (utime + stime)
                              / sysconf(_SC_CLK_TCK);
        }
        fclose(f);
    }

    snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
    d = opendir(path);
    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            p->open_fds += de->d_name[0] != '.';
        }
        closedir(d);
        p->open_fds -= pid == getpid();      /* the one opendir holds */
    }
}


static void
met_process(struct evbuffer *out, struct master *m)
{
    struct met_process p = { 0, 0, 0 };
    struct rusage gone;

    met_proc(getpid(), &p);
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        if (m->workers->slots[i].pid != 0) {
            met_proc(m->workers->slots[i].pid, &p);
        }
    }

    /* workers already reaped; never less than already shown */
    getrusage(RUSAGE_CHILDREN, &gone);
    p.cpu_seconds += gone.ru_utime.tv_sec + gone.ru_stime.tv_sec
                     + (gone.ru_utime.tv_usec + gone.ru_stime.tv_usec) / 1e6;
    if (p.cpu_seconds < m->cpu_seconds) {
        p.cpu_seconds = m->cpu_seconds;
    }
    m->cpu_seconds = p.cpu_seconds;

    met_value(out, "process_resident_memory_bytes", "gauge",
              "Resident memory of the master and its workers.", p.rss_bytes);
    met_value(out, "process_open_fds", "gauge",
              "Open descriptors of the master and its workers.", p.open_fds);
    met_value(out, "process_cpu_seconds_total", "counter",
              "CPU time of the master and all its workers, past and "
              "present.", p.cpu_seconds);
    met_value(out, "process_start_time_seconds", "gauge",
              "Unix time the master started.",
              (double) m->started_wall.tv_sec
              + m->started_wall.tv_nsec / 1e9);
}


void
met_render(struct master *m, struct evbuffer *out)
{
    const struct sup_workers *ws = m->workers;
    struct worker_stats sum;
    uint32_t inflight = 0, conns = 0;

    met_sum_counters(ws, &sum);
    for (int i = 0; i < SUP_SLOTS_MAX; i++) {
        if (ws->slots[i].pid != 0) {
            inflight += ws->slots[i].stats.outbound_inflight;
            conns += ws->slots[i].stats.connections;
        }
    }

    met_tenants(out, ws);
    met_histogram(out, &sum);
    met_value(out, "spark_outbound_concurrency", "gauge",
              "Exchange requests under way.", inflight);
    met_value(out, "spark_warmup_duration_ms", "gauge",
              "Milliseconds from start until the replica could serve.",
              m->ready_ms);
    met_value(out, "spark_http_connections", "gauge",
              "Client connections open on the tenant port.", conns);
    met_value(out, "spark_http_requests_total", "counter",
              "Answers on the tenant port, every route and status.",
              (double) sum.requests);
    met_value(out, "spark_http_connections_accepted_total", "counter",
              "Client connections accepted on the tenant port.",
              (double) sum.accepted);
    met_workers(out, m);
    met_config(out, m);
    met_redis(out, m, &sum);
    met_process(out, m);
}
