/*
 * Unit tests for shared/stats.c and shared/tally.c: buckets, folding
 * counters, and the org map.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "../shared/stats.h"
#include "../shared/tally.h"
#include "check_run.h"


START_TEST(durations_fall_into_the_right_bucket)
{
    ck_assert_int_eq(stats_bucket(0), 0);
    ck_assert_int_eq(stats_bucket(100), 0);
    ck_assert_int_eq(stats_bucket(101), 1);
    ck_assert_int_eq(stats_bucket(1000), 3);
    ck_assert_int_eq(stats_bucket(5000000), STATS_BUCKETS - 2);
    ck_assert_int_eq(stats_bucket(60000000), STATS_BUCKETS - 1);
}
END_TEST


START_TEST(folding_adds_counters_and_leaves_gauges)
{
    struct worker_stats into = { .connections = 3, .requests = 10 };
    struct worker_stats from = { .connections = 7, .requests = 5,
                                 .redis_up = 1 };

    from.duration_buckets[2] = 4;
    stats_add_counters(&into, &from);
    ck_assert_uint_eq(into.requests, 15);
    ck_assert_uint_eq(into.duration_buckets[2], 4);
    ck_assert_uint_eq(into.connections, 3);
    ck_assert_uint_eq(into.redis_up, 0);
}
END_TEST


START_TEST(the_org_map_keeps_entries_where_they_are_as_it_grows)
{
    struct tally_map *m = tally_new();
    struct org_tally *first;
    char org[32];

    first = tally_get(m, "org0");
    first->requests = 42;
    for (int i = 1; i < 1000; i++) {
        snprintf(org, sizeof(org), "org%d", i);
        tally_get(m, org)->requests = (uint64_t) i;
    }

    ck_assert_uint_eq(tally_count(m), 1000);
    ck_assert_ptr_eq(tally_get(m, "org0"), first);
    ck_assert_uint_eq(first->requests, 42);
    ck_assert_uint_eq(tally_get(m, "org999")->requests, 999);
    ck_assert_str_eq(tally_at(m, 500)->org, "org500");
    ck_assert_uint_eq(tally_count(m), 1000);
    tally_free(m);
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");

    tcase_add_test(tc, durations_fall_into_the_right_bucket);
    tcase_add_test(tc, folding_adds_counters_and_leaves_gauges);
    tcase_add_test(tc, the_org_map_keeps_entries_where_they_are_as_it_grows);
    suite_add_tcase(s, tc);

    return check_run(s);
}
