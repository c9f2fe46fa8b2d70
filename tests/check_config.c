/*
 * Unit tests for shared/config.c: defaults, accepted values, and the one
 * line that names a bad variable.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/config.h"
#include "check_run.h"

static const char *const vars[] = {
    "PORT", "ADMIN_PORT", "WORKERS", "HTTP_SERVER_CONCURRENCY",
    "OUTBOUND_MAX_CONCURRENCY", "TENANT_KEYS_FILE", "TENANT_DEFAULT_QPS",
    "TENANT_BURST", "REDIS_URL", "REDIS_FAIL_MODE", "WARMUP_ENABLED",
    "WARMUP_PRELOAD_SYMBOLS", "LOG_LEVEL", "SHUTDOWN_DELAY_MS",
    "SHUTDOWN_TIMEOUT_MS", "HTTP_MAX_HEADER_BYTES", "HTTP_MAX_BODY_BYTES",
    "HTTP_IDLE_TIMEOUT_MS", "EXCHANGE_BASE_URL", "EXCHANGE_WS_URL",
    "REDIS_TIMEOUT_MS", "HPA_MIN_REPLICAS", "WORKER_TIMEOUT_MS",
    "METRICS_ENABLED", "EXCHANGE_TIMEOUT_MS", "EXCHANGE_RECV_WINDOW_MS",
    "EXCHANGE_INFO_REFRESH_S", "EXCHANGE_CA_FILE",
};


static void
clear_env(void)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
}


START_TEST(defaults_match_the_documented_table)
{
    struct config cfg;
    char err[256] = "";

    clear_env();
    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.port, 4001);
    ck_assert_int_eq(cfg.admin_port, 9464);
    ck_assert_int_eq(cfg.workers, 0);
    ck_assert_int_eq(cfg.http_concurrency, 512);
    ck_assert_int_eq(cfg.outbound_max, 64);
    ck_assert_str_eq(cfg.tenants_file, "runtime/tenants.json");
    ck_assert_double_eq(cfg.default_qps, 2);
    ck_assert_int_eq(cfg.default_burst, 4);
    ck_assert_str_eq(cfg.redis_url, "");
    ck_assert_int_eq(cfg.redis_fail_mode, REDIS_FAIL_LOCAL);
    ck_assert_int_eq(cfg.warmup_enabled, 1);
    ck_assert_str_eq(cfg.warmup_symbols, "BTCUSDT,ETHUSDT,BNBUSDT");
    ck_assert_int_eq(cfg.log_level, LL_INFO);
    ck_assert_int_eq(cfg.redis_timeout_ms, 25);
    ck_assert_int_eq(cfg.hpa_min_replicas, 2);
}
END_TEST


START_TEST(set_values_are_taken)
{
    struct config cfg;
    char err[256] = "";

    clear_env();
    setenv("PORT", "8080", 1);
    setenv("WORKERS", "3", 1);
    setenv("TENANT_DEFAULT_QPS", "0.5", 1);
    setenv("REDIS_URL", "redis://127.0.0.1:6390/2", 1);
    setenv("REDIS_FAIL_MODE", "closed", 1);
    setenv("WARMUP_ENABLED", "false", 1);
    setenv("LOG_LEVEL", "debug", 1);

    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_int_eq(cfg.workers, 3);
    ck_assert_double_eq(cfg.default_qps, 0.5);
    ck_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:6390/2");
    ck_assert_str_eq(cfg.redis.host, "127.0.0.1");
    ck_assert_int_eq(cfg.redis.port, 6390);
    ck_assert_int_eq(cfg.redis.db, 2);
    ck_assert_int_eq(cfg.redis_fail_mode, REDIS_FAIL_CLOSED);
    ck_assert_int_eq(cfg.warmup_enabled, 0);
    ck_assert_int_eq(cfg.log_level, LL_DEBUG);
}
END_TEST


START_TEST(workers_auto_means_zero)
{
    struct config cfg;
    char err[256] = "";

    clear_env();
    setenv("WORKERS", "auto", 1);
    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.workers, 0);
}
END_TEST


static void
assert_rejected(const char *name, const char *value)
{
    struct config cfg;
    char err[256] = "";

    clear_env();
    setenv(name, value, 1);
    ck_assert_msg(config_from_env(&cfg, err, sizeof(err)) == -1,
                  "%s=%s was accepted", name, value);
    ck_assert_msg(strncmp(err, name, strlen(name)) == 0,
                  "error for %s does not start with its name: %s", name, err);
    ck_assert_ptr_null(strchr(err, '\n'));
}


START_TEST(each_bad_value_is_named_in_one_line)
{
    assert_rejected("PORT", "abc");
    assert_rejected("PORT", "70000");
    assert_rejected("PORT", "0");
    assert_rejected("PORT", "80x");
    assert_rejected("ADMIN_PORT", "-1");
    assert_rejected("WORKERS", "0");
    assert_rejected("WORKERS", "many");
    assert_rejected("HTTP_SERVER_CONCURRENCY", "0");
    assert_rejected("TENANT_DEFAULT_QPS", "0");
    assert_rejected("TENANT_DEFAULT_QPS", "nan");
    assert_rejected("TENANT_BURST", "0");
    assert_rejected("REDIS_URL", "http://x");
    assert_rejected("REDIS_URL", "redis://127.0.0.1:abc/0");
    assert_rejected("REDIS_FAIL_MODE", "sometimes");
    assert_rejected("WARMUP_ENABLED", "maybe");
    assert_rejected("LOG_LEVEL", "loud");
    assert_rejected("SHUTDOWN_DELAY_MS", "-5");
    assert_rejected("REDIS_TIMEOUT_MS", "0");
    assert_rejected("HPA_MIN_REPLICAS", "zero");
    assert_rejected("WORKER_TIMEOUT_MS", "1000");
}
END_TEST


START_TEST(redis_urls_split_into_host_port_db_user_and_password)
{
    struct config_redis rd;
    const char *why = NULL;

    ck_assert_int_eq(config_parse_redis_url("redis://cache:6380/2", &rd,
                                            &why), 0);
    ck_assert_str_eq(rd.host, "cache");
    ck_assert_int_eq(rd.port, 6380);
    ck_assert_int_eq(rd.db, 2);
    ck_assert_str_eq(rd.user, "");
    ck_assert_str_eq(rd.password, "");

    ck_assert_int_eq(config_parse_redis_url("redis://spark-redis", &rd,
                                            &why), 0);
    ck_assert_str_eq(rd.host, "spark-redis");
    ck_assert_int_eq(rd.port, 6379);
    ck_assert_int_eq(rd.db, 0);

    ck_assert_int_eq(config_parse_redis_url("redis://h:7000/", &rd, &why), 0);
    ck_assert_int_eq(rd.port, 7000);
    ck_assert_int_eq(rd.db, 0);

    ck_assert_int_eq(config_parse_redis_url("redis://:s3cret@10.0.0.5:7000/0",
                                            &rd, &why), 0);
    ck_assert_str_eq(rd.host, "10.0.0.5");
    ck_assert_str_eq(rd.user, "");
    ck_assert_str_eq(rd.password, "s3cret");

    ck_assert_int_eq(config_parse_redis_url("redis://user:pw@h/1", &rd,
                                            &why), 0);
    ck_assert_str_eq(rd.user, "user");
    ck_assert_str_eq(rd.password, "pw");
    ck_assert_str_eq(rd.host, "h");
    ck_assert_int_eq(rd.db, 1);

    /* without a colon the userinfo is a password, as redis-cli reads it */
    ck_assert_int_eq(config_parse_redis_url("redis://pw@h", &rd, &why), 0);
    ck_assert_str_eq(rd.user, "");
    ck_assert_str_eq(rd.password, "pw");

    /* the last '@' ends the password, which may hold '@', ':' and '/' */
    ck_assert_int_eq(config_parse_redis_url("redis://:p@s:s/w@h:7/3", &rd,
                                            &why), 0);
    ck_assert_str_eq(rd.password, "p@s:s/w");
    ck_assert_str_eq(rd.host, "h");
    ck_assert_int_eq(rd.port, 7);
    ck_assert_int_eq(rd.db, 3);
}
END_TEST


static void
assert_url_refused(const char *url, const char *reason)
{
    struct config_redis rd;
    const char *why = NULL;

    ck_assert_msg(config_parse_redis_url(url, &rd, &why) == -1,
                  "%s was accepted", url);
    ck_assert_msg(why != NULL && strstr(why, reason) != NULL,
                  "%s: \"%s\" does not say \"%s\"", url, why, reason);
}


START_TEST(malformed_redis_urls_are_refused_with_the_reason)
{
    assert_url_refused("http://h:1/0", "scheme");
    assert_url_refused("rediss://h:1/0", "scheme");
    assert_url_refused("redis://", "host is missing");
    assert_url_refused("redis://:pw@", "host is missing");
    assert_url_refused("redis://:6379/0", "host is missing");
    assert_url_refused("redis://127.0.0.1:abc/0", "port");
    assert_url_refused("redis://h:63a", "port");
    assert_url_refused("redis://h:", "port");
    assert_url_refused("redis://h:0", "port");
    assert_url_refused("redis://h:99999", "port");
    assert_url_refused("redis://h:1/x", "db");
    assert_url_refused("redis://h:1/-1", "db");
    assert_url_refused("redis://h:1/99999999999", "db");
}
END_TEST


static void
assert_masked(const char *url, const char *shown, const char *secret)
{
    struct config cfg;
    char err[256] = "";

    clear_env();
    setenv("REDIS_URL", url, 1);
    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), -1);
    ck_assert_msg(strncmp(err, "REDIS_URL ", 10) == 0, "%s", err);
    ck_assert_msg(strstr(err, shown) != NULL, "%s does not show %s", err,
                  shown);
    ck_assert_msg(strstr(err, secret) == NULL, "%s shows the password", err);
    ck_assert_ptr_null(strchr(err, '\n'));
}


START_TEST(a_bad_redis_url_is_named_without_its_password)
{
    assert_masked("redis://:hunter2@127.0.0.1:abc/0",
                  "\"redis://:***@127.0.0.1:abc/0\"", "hunter2");
    assert_masked("redis://spark:hunter2@h:0/0", "\"redis://spark:***@h:0/0\"",
                  "hunter2");
    assert_masked("redis://hunter2@h/x", "\"redis://***@h/x\"", "hunter2");
    assert_masked("rediss://:hunter2@h/0", "\"rediss://:***@h/0\"",
                  "hunter2");
}
END_TEST


START_TEST(admin_port_must_differ_from_port)
{
    struct config cfg;
    char err[256] = "";

    clear_env();
    setenv("PORT", "5000", 1);
    setenv("ADMIN_PORT", "5000", 1);
    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "ADMIN_PORT"));
}
END_TEST


START_TEST(workers_must_leave_each_a_share_of_the_limits)
{
    struct config cfg;
    char err[256] = "";

    clear_env();
    setenv("WORKERS", "4", 1);
    setenv("OUTBOUND_MAX_CONCURRENCY", "3", 1);
    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "WORKERS (4) must not exceed "
                     "OUTBOUND_MAX_CONCURRENCY (3), a share each");

    setenv("OUTBOUND_MAX_CONCURRENCY", "4", 1);
    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(config_workers_max(&cfg), 4);

    setenv("HTTP_SERVER_CONCURRENCY", "2", 1);
    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "HTTP_SERVER_CONCURRENCY (2)"));
}
END_TEST


START_TEST(warmup_symbols_are_checked_one_by_one)
{
    static const char *const bad[] = {
        "BTCUSDT,", ",BTCUSDT", "BTCUSDT, ETHUSDT", "btcusdt", "B",
        "BTCUSDT,,ETHUSDT", "BTC-USDT", "ABCDEFGHIJKLMNOPQRSTU"
    };
    struct config cfg;
    char err[256] = "";

    clear_env();
    setenv("WARMUP_PRELOAD_SYMBOLS", "BTCUSDT,1INCHUSDT", 1);
    ck_assert_int_eq(config_from_env(&cfg, err, sizeof(err)), 0);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("WARMUP_PRELOAD_SYMBOLS", bad[i], 1);
        ck_assert_msg(config_from_env(&cfg, err, sizeof(err)) == -1,
                      "accepted \"%s\"", bad[i]);
        ck_assert_ptr_nonnull(strstr(err, "WARMUP_PRELOAD_SYMBOLS must be"));
    }
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("env");

    tcase_add_test(tc, defaults_match_the_documented_table);
    tcase_add_test(tc, set_values_are_taken);
    tcase_add_test(tc, workers_auto_means_zero);
    tcase_add_test(tc, each_bad_value_is_named_in_one_line);
    tcase_add_test(tc, admin_port_must_differ_from_port);
    tcase_add_test(tc, redis_urls_split_into_host_port_db_user_and_password);
    tcase_add_test(tc, malformed_redis_urls_are_refused_with_the_reason);
    tcase_add_test(tc, a_bad_redis_url_is_named_without_its_password);
    tcase_add_test(tc, workers_must_leave_each_a_share_of_the_limits);
    tcase_add_test(tc, warmup_symbols_are_checked_one_by_one);
    suite_add_tcase(s, tc);

    return check_run(s);
}
