/*
 * Unit tests for worker/quota.c that need no Redis: REDIS_URL parsing.
 * The quota's behaviour against a real redis-server is covered by
 * tests/blackbox.py.
 */
#include <check.h>
#include <stdlib.h>

#include "../worker/quota.h"
#include "check_run.h"


START_TEST(urls_split_into_host_port_db_and_password)
{
    char host[256], password[256];
    int port, db;

    ck_assert_int_eq(quota_parse_url("redis://cache:6380/2", host, &port,
                                     &db, password), 0);
    ck_assert_str_eq(host, "cache");
    ck_assert_int_eq(port, 6380);
    ck_assert_int_eq(db, 2);
    ck_assert_str_eq(password, "");

    ck_assert_int_eq(quota_parse_url("redis://spark-redis", host, &port, &db,
                                     password), 0);
    ck_assert_str_eq(host, "spark-redis");
    ck_assert_int_eq(port, 6379);
    ck_assert_int_eq(db, 0);

    ck_assert_int_eq(quota_parse_url("redis://:s3cret@10.0.0.5:7000/0", host,
                                     &port, &db, password), 0);
    ck_assert_str_eq(host, "10.0.0.5");
    ck_assert_int_eq(port, 7000);
    ck_assert_str_eq(password, "s3cret");

    ck_assert_int_eq(quota_parse_url("redis://user:pw@h/1", host, &port, &db,
                                     password), 0);
    ck_assert_str_eq(password, "pw");
    ck_assert_int_eq(db, 1);
}
END_TEST


START_TEST(malformed_urls_are_refused)
{
    char host[256], password[256];
    int port, db;

    ck_assert_int_eq(quota_parse_url("http://h:1/0", host, &port, &db,
                                     password), -1);
    ck_assert_int_eq(quota_parse_url("redis://", host, &port, &db,
                                     password), -1);
    ck_assert_int_eq(quota_parse_url("redis://h:99999", host, &port, &db,
                                     password), -1);
    ck_assert_int_eq(quota_parse_url("redis://h:1/x", host, &port, &db,
                                     password), -1);
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("quota");
    TCase *tc = tcase_create("url");

    tcase_add_test(tc, urls_split_into_host_port_db_and_password);
    tcase_add_test(tc, malformed_urls_are_refused);
    suite_add_tcase(s, tc);

    return check_run(s);
}
