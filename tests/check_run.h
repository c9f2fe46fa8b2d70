/*
 * The runner every tests/check_*.c shares: runs a suite, prints check's
 * summary, and gives the exit status make looks at.
 */
#ifndef SPARK_CHECK_RUN_H
#define SPARK_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

static inline int
check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
