/*
 * Unit tests for supervisor/cpus.c: cgroup v1 and v2 CPU quotas.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../supervisor/cpus.h"
#include "check_run.h"


static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}


static char *
temp_root(void)
{
    static char root[64];

    snprintf(root, sizeof(root), "/tmp/check_cpus.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    return root;
}


START_TEST(cgroup_v2_quota_rounds_up)
{
    char *root = temp_root(), path[128];

    snprintf(path, sizeof(path), "%s/cpu.max", root);
    write_file(path, "150000 100000\n");
    ck_assert_int_eq(cpus_cgroup_quota(root), 2);

    write_file(path, "50000 100000\n");
    ck_assert_int_eq(cpus_cgroup_quota(root), 1);

    write_file(path, "max 100000\n");
    ck_assert_int_eq(cpus_cgroup_quota(root), 0);
    unlink(path);
    rmdir(root);
}
END_TEST


START_TEST(cgroup_v1_quota_is_read_when_v2_is_absent)
{
    char *root = temp_root(), path[160];

    snprintf(path, sizeof(path), "%s/cpu", root);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/cpu/cpu.cfs_quota_us", root);
    write_file(path, "300000\n");
    snprintf(path, sizeof(path), "%s/cpu/cpu.cfs_period_us", root);
    write_file(path, "100000\n");
    ck_assert_int_eq(cpus_cgroup_quota(root), 3);

    snprintf(path, sizeof(path), "%s/cpu/cpu.cfs_quota_us", root);
    write_file(path, "-1\n");
    ck_assert_int_eq(cpus_cgroup_quota(root), 0);

    unlink(path);
    snprintf(path, sizeof(path), "%s/cpu/cpu.cfs_period_us", root);
    unlink(path);
    snprintf(path, sizeof(path), "%s/cpu", root);
    rmdir(path);
    rmdir(root);
}
END_TEST


START_TEST(available_cpus_are_at_least_one)
{
    ck_assert_int_ge(cpus_available(), 1);
    ck_assert_int_le(cpus_available(), (int) sysconf(_SC_NPROCESSORS_ONLN));
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("cpus");
    TCase *tc = tcase_create("quota");

    tcase_add_test(tc, cgroup_v2_quota_rounds_up);
    tcase_add_test(tc, cgroup_v1_quota_is_read_when_v2_is_absent);
    tcase_add_test(tc, available_cpus_are_at_least_one);
    suite_add_tcase(s, tc);

    return check_run(s);
}
