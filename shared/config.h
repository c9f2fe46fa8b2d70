/*
 * Start-up configuration from the environment, read once by the master
 * before anything is bound or forked; workers get their copy by fork.
 */
#ifndef SPARK_CONFIG_H
#define SPARK_CONFIG_H

#include <stddef.h>

#include "log.h"

#define CONFIG_STR_MAX 512
#define CONFIG_SYMBOL_MAX 20        /* characters of an exchange symbol */

/* REDIS_URL in parts, as config_parse_redis_url() splits it. */
struct config_redis {
    char  host[256];
    int   port;                 /* 6379 when absent */
    int   db;                   /* 0 when absent */
    char  user[128];            /* "" = AUTH with the password alone */
    char  password[256];        /* "" with no user = no AUTH */
};

enum redis_fail_mode {
    REDIS_FAIL_LOCAL,
    REDIS_FAIL_OPEN,
    REDIS_FAIL_CLOSED
};

struct config {
    int                   port;
    int                   admin_port;
    int                   workers;            /* 0 = auto */
    int                   http_concurrency;   /* per replica */
    int                   outbound_max;       /* per replica */
    char                  tenants_file[CONFIG_STR_MAX];
    double                default_qps;
    int                   default_burst;
    char                  redis_url[CONFIG_STR_MAX];  /* "" = unset */
    struct config_redis   redis;              /* redis_url, when set */
    enum redis_fail_mode  redis_fail_mode;
    int                   warmup_enabled;
    int                   metrics_enabled;    /* per-request accounting */
    char                  warmup_symbols[CONFIG_STR_MAX];
    char                  exchange_base_url[CONFIG_STR_MAX];
    char                  exchange_ws_url[CONFIG_STR_MAX];
    char                  exchange_ca_file[CONFIG_STR_MAX];   /* "" = system */
    int                   exchange_timeout_ms;
    int                   exchange_recv_window_ms;
    int                   exchange_info_refresh_s;
    enum log_level        log_level;
    int                   shutdown_delay_ms;
    int                   shutdown_timeout_ms;
    int                   http_max_header_bytes;
    int                   http_max_body_bytes;
    int                   http_idle_timeout_ms;
    int                   redis_timeout_ms;   /* budget of one quota call */
    int                   worker_timeout_ms;  /* silence before the kill */
    int                   hpa_min_replicas;   /* quota share before Redis
                                                 has counted replicas */
};

/*
 * Fills cfg from the environment, defaults for what is unset.  Returns 0,
 * or -1 with one line naming the variable and the accepted values in err.
 */
int config_from_env(struct config *cfg, char *err, size_t errlen);

/*
 * Splits redis://[[user]:password@]host[:port][/db]; userinfo without a
 * colon is a password.  Returns 0, or -1 with what is wrong in *why (a
 * static string).  The one parser of REDIS_URL: the master checks it at
 * start, so a worker never meets a URL it cannot use.
 */
int config_parse_redis_url(const char *url, struct config_redis *out,
                           const char **why);

/* 1 if s[0..len) is an exchange symbol: 2 to 20 of A-Z and 0-9. */
int config_symbol_valid(const char *s, size_t len);

/*
 * The most workers cfg allows: each needs a share of at least 1 of
 * HTTP_SERVER_CONCURRENCY and of OUTBOUND_MAX_CONCURRENCY.
 */
int config_workers_max(const struct config *cfg);

#endif
