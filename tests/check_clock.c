/*
 * Unit tests for shared/clock.c: timeouts from milliseconds, retry delays,
 * and time since a mark.
 */
#include <check.h>
#include <unistd.h>

#include "../shared/clock.h"
#include "check_run.h"


START_TEST(milliseconds_become_seconds_and_microseconds)
{
    struct timeval tv = clock_tv_ms(2500);

    ck_assert_int_eq(tv.tv_sec, 2);
    ck_assert_int_eq(tv.tv_usec, 500000);

    tv = clock_tv_ms(0);
    ck_assert_int_eq(tv.tv_sec, 0);
    ck_assert_int_eq(tv.tv_usec, 0);
}
END_TEST


START_TEST(a_backoff_doubles_per_attempt_up_to_its_cap)
{
    ck_assert_int_eq(clock_backoff_ms(100, 30000, 0), 100);
    ck_assert_int_eq(clock_backoff_ms(100, 30000, 1), 200);
    ck_assert_int_eq(clock_backoff_ms(100, 30000, 8), 25600);
    ck_assert_int_eq(clock_backoff_ms(100, 30000, 9), 30000);
    /* far past the cap, with no overflow on the way */
    ck_assert_int_eq(clock_backoff_ms(100, 30000, 4000000000u), 30000);
}
END_TEST


START_TEST(time_since_a_mark_grows_with_the_monotonic_clock)
{
    struct timespec mark;
    int64_t before = clock_now_us();
    double since;

    clock_gettime(CLOCK_MONOTONIC, &mark);
    usleep(20000);
    since = clock_since_s(&mark);

    ck_assert_msg(since >= 0.02 && since < 1.0, "%f s", since);
    ck_assert_int_ge(clock_now_us() - before, 20000);
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("clock");

    tcase_add_test(tc, milliseconds_become_seconds_and_microseconds);
    tcase_add_test(tc, a_backoff_doubles_per_attempt_up_to_its_cap);
    tcase_add_test(tc, time_since_a_mark_grows_with_the_monotonic_clock);
    suite_add_tcase(s, tc);

    return check_run(s);
}
