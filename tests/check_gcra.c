/*
 * Unit tests for shared/gcra.c and shared/localquota.c: the bucket
 * arithmetic, and one bucket shared by forked processes.
 */
#include <check.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../shared/gcra.h"
#include "../shared/localquota.h"
#include "check_run.h"

#define SEC 1000000


START_TEST(exactly_burst_requests_pass_at_once)
{
    struct gcra_result r;
    int64_t tat = 0, now = 5 * SEC, e = gcra_emission_us(10);
    int passed = 0;

    for (int i = 0; i < 20; i++) {
        passed += (int) gcra_take(&tat, now, e, 4, 1, &r);
    }
    ck_assert_int_eq(passed, 4);
    ck_assert_int_eq(r.remaining, 0);
}
END_TEST


START_TEST(one_more_passes_per_emission_interval)
{
    struct gcra_result r;
    int64_t tat = 0, now = 5 * SEC, e = gcra_emission_us(10);

    ck_assert_int_eq(gcra_take(&tat, now, e, 2, 5, &r), 2);
    ck_assert_int_eq(gcra_take(&tat, now + e - 1, e, 2, 1, &r), 0);
    ck_assert_int_eq(gcra_take(&tat, now + e, e, 2, 1, &r), 1);
    ck_assert_int_eq(gcra_take(&tat, now + e, e, 2, 1, &r), 0);
}
END_TEST


START_TEST(retry_after_is_exact_and_denials_consume_nothing)
{
    struct gcra_result r;
    int64_t tat = 0, now = 5 * SEC, e = gcra_emission_us(4);
    int64_t before, retry;

    gcra_take(&tat, now, e, 1, 1, &r);
    before = tat;
    ck_assert_int_eq(gcra_take(&tat, now + 1000, e, 1, 1, &r), 0);
    retry = r.retry_after_us;
    ck_assert_int_eq(tat, before);
    ck_assert_int_eq(retry, e - 1000);

    for (int i = 0; i < 100; i++) {
        gcra_take(&tat, now + 2000, e, 1, 1, &r);
    }
    ck_assert_int_eq(tat, before);
    ck_assert_int_eq(gcra_take(&tat, now + 1000 + retry - 1, e, 1, 1, &r), 0);
    ck_assert_int_eq(gcra_take(&tat, now + 1000 + retry, e, 1, 1, &r), 1);
}
END_TEST


START_TEST(a_batch_takes_what_fits_and_says_when_the_rest_would)
{
    struct gcra_result r;
    int64_t tat = 0, now = 5 * SEC, e = gcra_emission_us(2);

    ck_assert_int_eq(gcra_take(&tat, now, e, 3, 5, &r), 3);
    ck_assert_int_eq(r.admitted, 3);
    ck_assert_int_eq(r.retry_after_us, e);
    ck_assert_int_eq(r.reset_after_us, 3 * e);
    ck_assert_int_eq(gcra_take(&tat, now, e, 3, 2, &r), 0);
}
END_TEST


START_TEST(over_any_interval_at_most_burst_plus_rate_times_t)
{
    struct gcra_result r;
    int64_t tat = 0, start = 7 * SEC, e = gcra_emission_us(50);
    long admitted = 0;

    /* offered every 100 us for 10 s: 10000 per second against 50 */
    for (int64_t t = start; t < start + 10 * SEC; t += 100) {
        admitted += gcra_take(&tat, t, e, 10, 1, &r);
    }
    ck_assert_int_le(admitted, 10 + 50 * 10);
    ck_assert_int_ge(admitted, 10 + 50 * 10 - 1);
}
END_TEST


START_TEST(processes_sharing_the_table_share_one_bucket)
{
    struct localquota *lq = lq_create();
    int total = 0;

    ck_assert_ptr_nonnull(lq);
    for (int p = 0; p < 4; p++) {
        if (fork() == 0) {
            struct gcra_result r;
            int n = 0;

            for (int i = 0; i < 5000; i++) {
                n += lq_take(lq, "orgA", 0.001, 100, 1, &r) == 1;
            }
            _exit(n);
        }
    }
    for (int p = 0; p < 4; p++) {
        int status;

        wait(&status);
        total += WEXITSTATUS(status);
    }

    ck_assert_int_eq(total, 100);
    lq_destroy(lq);
}
END_TEST


START_TEST(tenants_have_separate_buckets)
{
    struct localquota *lq = lq_create();
    struct gcra_result r;

    ck_assert_int_eq(lq_take(lq, "a", 1, 1, 1, &r), 1);
    ck_assert_int_eq(lq_take(lq, "a", 1, 1, 1, &r), 0);
    ck_assert_int_eq(lq_take(lq, "b", 1, 1, 1, &r), 1);
    lq_destroy(lq);
}
END_TEST


START_TEST(the_interval_never_refills_faster_than_the_rate)
{
    static const double rates[] = { 3, 7, 0.3, 333333, 700000, 1000000 };

    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        int64_t e = gcra_emission_us(rates[i]);

        ck_assert_msg((double) SEC / (double) e <= rates[i],
                      "%g/s refills every %lld us", rates[i], (long long) e);
        ck_assert_int_ge(e, 1);
    }
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("gcra");
    TCase *tc = tcase_create("bucket");

    tcase_add_test(tc, exactly_burst_requests_pass_at_once);
    tcase_add_test(tc, one_more_passes_per_emission_interval);
    tcase_add_test(tc, retry_after_is_exact_and_denials_consume_nothing);
    tcase_add_test(tc, a_batch_takes_what_fits_and_says_when_the_rest_would);
    tcase_add_test(tc, over_any_interval_at_most_burst_plus_rate_times_t);
    tcase_add_test(tc, processes_sharing_the_table_share_one_bucket);
    tcase_add_test(tc, tenants_have_separate_buckets);
    tcase_add_test(tc, the_interval_never_refills_faster_than_the_rate);
    suite_add_tcase(s, tc);

    return check_run(s);
}
