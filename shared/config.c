/*
 * Start-up configuration from the environment (see config.h).  Every value
 * is checked; the first bad one stops start-up with a line that names it.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define CONFIG_MAX_WORKERS 256

static const char config_redis_form[] =
    "redis://[[user]:password@]host[:port][/db]";


static const char *
config_get(const char *name)
{
    const char *v = getenv(name);

    return (v != NULL && *v != '\0') ? v : NULL;
}


static int
config_int(const char *name, int def, int min, int max, int *out,
           char *err, size_t errlen)
{
    const char *v = config_get(name);
    char *end;
    long n;

    if (v == NULL) {
        *out = def;
        return 0;
    }

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
        snprintf(err, errlen, "%s must be an integer in %d..%d, got \"%s\"",
                 name, min, max, v);
        return -1;
    }

    *out = (int) n;
    return 0;
}


static int
config_positive(const char *name, double def, double *out,
                char *err, size_t errlen)
{
    const char *v = config_get(name);
    char *end;
    double d;

    if (v == NULL) {
        *out = def;
        return 0;
    }

    errno = 0;
    d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !isfinite(d) || d <= 0
        || d > 1e6)
    {
        snprintf(err, errlen, "%s must be a number in (0, 1000000], got \"%s\"",
                 name, v);
        return -1;
    }

    *out = d;
    return 0;
}


static int
config_bool(const char *name, int def, int *out, char *err, size_t errlen)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    const char *v = config_get(name);

    *out = def;
    if (v == NULL) {
        return 0;
    }

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }

    snprintf(err, errlen, "%s must be true or false, got \"%s\"", name, v);
    return -1;
}


static int
config_str(const char *name, const char *def, char *out, size_t size,
           char *err, size_t errlen)
{
    const char *v = config_get(name);

    if (v == NULL) {
        v = def;
    }

    if (strlen(v) >= size) {
        snprintf(err, errlen, "%s is longer than %zu characters", name,
                 size - 1);
        return -1;
    }

    memcpy(out, v, strlen(v) + 1);
    return 0;
}


static int
config_workers(struct config *cfg, char *err, size_t errlen)
{
    const char *v = config_get("WORKERS");

    if (v == NULL || strcasecmp(v, "auto") == 0) {
        cfg->workers = 0;
        return 0;
    }

    return config_int("WORKERS", 0, 1, CONFIG_MAX_WORKERS, &cfg->workers,
                      err, errlen);
}


static int
config_fail_mode(struct config *cfg, char *err, size_t errlen)
{
    static const char *const names[] = { "local", "open", "closed" };
    const char *v = config_get("REDIS_FAIL_MODE");

    cfg->redis_fail_mode = REDIS_FAIL_LOCAL;
    if (v == NULL) {
        return 0;
    }

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(v, names[i]) == 0) {
            cfg->redis_fail_mode = (enum redis_fail_mode) i;
            return 0;
        }
    }

    snprintf(err, errlen,
             "REDIS_FAIL_MODE must be local, open or closed, got \"%s\"", v);
    return -1;
}


/* Copies [from, to) into out; -1 when it does not fit in size. */
static int
config_span(const char *from, const char *to, char *out, size_t size)
{
    size_t len = (size_t) (to - from);

    if (len >= size) {
        return -1;
    }

    memcpy(out, from, len);
    out[len] = '\0';
    return 0;
}


/* The decimal number [from, to) spells, digits only, in [0, max]. */
static int
config_span_number(const char *from, const char *to, long max, int *out)
{
    long n = 0;

    if (from == to) {
        return -1;
    }

    for (const char *c = from; c < to; c++) {
        if (*c < '0' || *c > '9') {
            return -1;
        }
        n = n * 10 + (*c - '0');
        if (n > max) {
            return -1;
        }
    }

    *out = (int) n;
    return 0;
}


/* Splits off [[user]:password@]; *p moves past it.  Returns 0 or -1. */
static int
config_redis_userinfo(const char **p, struct config_redis *out,
                      const char **why)
{
    /* the last '@' ends it, so a password may hold '@', ':' and '/' */
    const char *at = strrchr(*p, '@');
    const char *colon;

    if (at == NULL) {
        return 0;
    }

    colon = memchr(*p, ':', (size_t) (at - *p));
    if (colon != NULL
        && config_span(*p, colon, out->user, sizeof(out->user)) != 0)
    {
        *why = "the user is too long";
        return -1;
    }

    if (config_span(colon != NULL ? colon + 1 : *p, at, out->password,
                    sizeof(out->password)) != 0)
    {
        *why = "the password is too long";
        return -1;
    }

    *p = at + 1;
    return 0;
}


int
config_parse_redis_url(const char *url, struct config_redis *out,
                       const char **why)
{
    const char *p, *slash, *colon, *host_end;

    memset(out, 0, sizeof(*out));
    out->port = 6379;

    if (strncmp(url, "redis://", 8) != 0) {
        *why = "the scheme must be redis://";
        return -1;
    }
    p = url + 8;

    if (config_redis_userinfo(&p, out, why) != 0) {
        return -1;
    }

    slash = strchr(p, '/');
    host_end = slash != NULL ? slash : p + strlen(p);
    colon = memchr(p, ':', (size_t) (host_end - p));
    if (colon != NULL
        && (config_span_number(colon + 1, host_end, 65535, &out->port) != 0
            || out->port == 0))
    {
        *why = "the port must be a number in 1..65535";
        return -1;
    }

    if (colon == NULL) {
        colon = host_end;
    }
    if (colon == p
        || config_span(p, colon, out->host, sizeof(out->host)) != 0)
    {
        *why = colon == p ? "the host is missing" : "the host is too long";
        return -1;
    }

    /* "/" alone, or nothing, is db 0 */
    if (slash != NULL && slash[1] != '\0'
        && config_span_number(slash + 1, slash + strlen(slash), INT_MAX,
                              &out->db) != 0)
    {
        *why = "the db must be a number from 0 up";
        return -1;
    }

    return 0;
}


/* url for an error line: a password in it becomes ***, the user stays. */
static void
config_mask_url(const char *url, char *out, size_t size)
{
    const char *start = strstr(url, "://");
    const char *at, *colon;

    start = start != NULL ? start + 3 : url;
    at = strrchr(start, '@');
    if (at == NULL) {
        snprintf(out, size, "%s", url);
        return;
    }

    colon = memchr(start, ':', (size_t) (at - start));
    snprintf(out, size, "%.*s%s%s",
             (int) ((colon != NULL ? colon : start) - url), url,
             colon != NULL ? ":***" : "***", at);
}


static int
config_redis_url(struct config *cfg, char *err, size_t errlen)
{
    char shown[CONFIG_STR_MAX + 8];
    const char *why;

    if (config_str("REDIS_URL", "", cfg->redis_url, sizeof(cfg->redis_url),
                   err, errlen) != 0)
    {
        return -1;
    }

    if (cfg->redis_url[0] == '\0'
        || config_parse_redis_url(cfg->redis_url, &cfg->redis, &why) == 0)
    {
        return 0;
    }

    config_mask_url(cfg->redis_url, shown, sizeof(shown));
    snprintf(err, errlen, "REDIS_URL must look like %s (%s), got \"%s\"",
             config_redis_form, why, shown);
    return -1;
}


static int
config_log_level(struct config *cfg, char *err, size_t errlen)
{
    const char *v = config_get("LOG_LEVEL");

    cfg->log_level = LL_INFO;
    if (v == NULL || log_level_parse(v, &cfg->log_level) == 0) {
        return 0;
    }

    snprintf(err, errlen,
             "LOG_LEVEL must be debug, info, warn or error, got \"%s\"", v);
    return -1;
}


static int
config_numbers(struct config *cfg, char *err, size_t errlen)
{
    const struct {
        const char *name;
        int         def, min, max;
        int        *out;
    } ints[] = {
        { "PORT", 4001, 1, 65535, &cfg->port },
        { "ADMIN_PORT", 9464, 1, 65535, &cfg->admin_port },
        { "HTTP_SERVER_CONCURRENCY", 512, 1, 1000000,
          &cfg->http_concurrency },
        { "OUTBOUND_MAX_CONCURRENCY", 64, 1, 100000, &cfg->outbound_max },
        { "TENANT_BURST", 4, 1, 1000000, &cfg->default_burst },
        { "SHUTDOWN_DELAY_MS", 5000, 0, 600000, &cfg->shutdown_delay_ms },
        { "SHUTDOWN_TIMEOUT_MS", 20000, 100, 3600000,
          &cfg->shutdown_timeout_ms },
        { "HTTP_MAX_HEADER_BYTES", 8192, 1024, 1048576,
          &cfg->http_max_header_bytes },
        { "HTTP_MAX_BODY_BYTES", 65536, 0, 67108864,
          &cfg->http_max_body_bytes },
        { "HTTP_IDLE_TIMEOUT_MS", 60000, 100, 3600000,
          &cfg->http_idle_timeout_ms },
        { "REDIS_TIMEOUT_MS", 25, 1, 10000, &cfg->redis_timeout_ms },
        { "WORKER_TIMEOUT_MS", 10000, 2000, 600000,
          &cfg->worker_timeout_ms },
        { "EXCHANGE_TIMEOUT_MS", 5000, 50, 120000,
          &cfg->exchange_timeout_ms },
        { "EXCHANGE_RECV_WINDOW_MS", 5000, 1, 60000,
          &cfg->exchange_recv_window_ms },
        { "EXCHANGE_INFO_REFRESH_S", 300, 5, 86400,
          &cfg->exchange_info_refresh_s },
        { "HPA_MIN_REPLICAS", 2, 1, 1000, &cfg->hpa_min_replicas },
    };

    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (config_int(ints[i].name, ints[i].def, ints[i].min, ints[i].max,
                       ints[i].out, err, errlen) != 0)
        {
            return -1;
        }
    }

    return config_positive("TENANT_DEFAULT_QPS", 2, &cfg->default_qps,
                           err, errlen);
}


int
config_symbol_valid(const char *s, size_t len)
{
    if (len < 2 || len > CONFIG_SYMBOL_MAX) {
        return 0;
    }

    for (size_t i = 0; i < len; i++) {
        if ((s[i] < 'A' || s[i] > 'Z') && (s[i] < '0' || s[i] > '9')) {
            return 0;
        }
    }
    return 1;
}


/* A comma-separated list of symbols, as warmup asks the exchange for. */
static int
config_symbols(const struct config *cfg, char *err, size_t errlen)
{
    const char *s = cfg->warmup_symbols;
    size_t len = strcspn(s, ",");

    while (config_symbol_valid(s, len)) {
        if (s[len] == '\0') {
            return 0;
        }
        s += len + 1;
        len = strcspn(s, ",");
    }

    snprintf(err, errlen,
             "WARMUP_PRELOAD_SYMBOLS must be like BTCUSDT,ETHUSDT, got \"%s\"",
             cfg->warmup_symbols);
    return -1;
}


int
config_workers_max(const struct config *cfg)
{
    int max = CONFIG_MAX_WORKERS;

    max = cfg->http_concurrency < max ? cfg->http_concurrency : max;
    return cfg->outbound_max < max ? cfg->outbound_max : max;
}


/* An explicit WORKERS must leave every worker a part of each limit. */
static int
config_workers_fit(const struct config *cfg, char *err, size_t errlen)
{
    const char *name = cfg->outbound_max < cfg->http_concurrency
                       ? "OUTBOUND_MAX_CONCURRENCY"
                       : "HTTP_SERVER_CONCURRENCY";

    if (cfg->workers <= config_workers_max(cfg)) {
        return 0;
    }

    snprintf(err, errlen,
             "WORKERS (%d) must not exceed %s (%d), a share each",
             cfg->workers, name, config_workers_max(cfg));
    return -1;
}


int
config_from_env(struct config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));

    if (config_numbers(cfg, err, errlen) != 0
        || config_workers(cfg, err, errlen) != 0
        || config_fail_mode(cfg, err, errlen) != 0
        || config_redis_url(cfg, err, errlen) != 0
        || config_log_level(cfg, err, errlen) != 0
        || config_bool("WARMUP_ENABLED", 1, &cfg->warmup_enabled,
                       err, errlen) != 0
        || config_bool("METRICS_ENABLED", 1, &cfg->metrics_enabled,
                       err, errlen) != 0
        || config_str("TENANT_KEYS_FILE", "runtime/tenants.json",
                      cfg->tenants_file, sizeof(cfg->tenants_file),
                      err, errlen) != 0
        || config_str("WARMUP_PRELOAD_SYMBOLS", "BTCUSDT,ETHUSDT,BNBUSDT",
                      cfg->warmup_symbols, sizeof(cfg->warmup_symbols),
                      err, errlen) != 0
        || config_str("EXCHANGE_BASE_URL", "http://127.0.0.1:4100",
                      cfg->exchange_base_url,
                      sizeof(cfg->exchange_base_url), err, errlen) != 0
        || config_str("EXCHANGE_WS_URL", "ws://127.0.0.1:4100/ws",
                      cfg->exchange_ws_url, sizeof(cfg->exchange_ws_url),
                      err, errlen) != 0
        || config_str("EXCHANGE_CA_FILE", "", cfg->exchange_ca_file,
                      sizeof(cfg->exchange_ca_file), err, errlen) != 0)
    {
        return -1;
    }

    if (cfg->port == cfg->admin_port) {
        snprintf(err, errlen, "ADMIN_PORT must differ from PORT (both %d)",
                 cfg->port);
        return -1;
    }

    return config_workers_fit(cfg, err, errlen) != 0
           || config_symbols(cfg, err, errlen) != 0 ? -1 : 0;
}
