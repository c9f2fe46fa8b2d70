/*
 * Unit tests for shared/tenants.c: validation that reports every problem,
 * defaults, hashed keys, and authentication.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/tenants.h"
#include "check_run.h"

#define KEY_A "orgA-key-0123456789abcdef"


static struct tenants *
parse(const char *json, struct tenants_problems *p)
{
    return tenants_parse(json, strlen(json), 2.0, 4, p);
}


static int
has_problem(const struct tenants_problems *p, const char *needle)
{
    for (int i = 0; i < p->count && i < TENANTS_PROBLEMS_MAX; i++) {
        if (strstr(p->lines[i], needle) != NULL) {
            return 1;
        }
    }
    return 0;
}


START_TEST(a_valid_file_parses_with_defaults)
{
    struct tenants_problems p;
    struct tenants *t;
    const struct tenant *a, *b;

    t = parse("{\"orgA\":{\"apiKey\":\"" KEY_A "\",\"qps\":5,\"burst\":10},"
              "\"orgB\":{\"apiKey\":\"another-key-0123456789\"}}", &p);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(p.count, 0);
    ck_assert_uint_eq(t->count, 2);

    a = tenants_find(t, "orgA");
    b = tenants_find(t, "orgB");
    ck_assert_ptr_nonnull(a);
    ck_assert_double_eq(a->qps, 5);
    ck_assert_int_eq(a->burst, 10);
    ck_assert_double_eq(b->qps, 2.0);
    ck_assert_int_eq(b->burst, 4);
    ck_assert_ptr_null(tenants_find(t, "orgC"));
    tenants_free(t);
}
END_TEST


START_TEST(every_problem_is_reported_at_once)
{
    struct tenants_problems p;
    struct tenants *t;

    t = parse("{\"orgA\":{\"apiKey\":\"short\",\"qps\":0,\"burst\":0.5,"
              "\"qsp\":3},"
              "\"orgB\":{\"qps\":1},"
              "\"bad org\":{\"apiKey\":\"" KEY_A "\"},"
              "\"orgC\":{\"apiKeySha256\":\"xyz\"},"
              "\"orgD\":{\"apiKey\":\"" KEY_A "\",\"exchange\":"
              "{\"apiKey\":\"k\"}},"
              "\"orgE\":5,"
              "\"orgF\":{\"apiKey\":\"" KEY_A "\",\"exchange\":"
              "{\"apiKey\":\"k\\r\\nX-Evil: 1\",\"apiSecret\":\"s\"}}}", &p);
    ck_assert_ptr_null(t);
    ck_assert(has_problem(&p, "orgA: apiKey must be"));
    ck_assert(has_problem(&p, "orgA: qps must be"));
    ck_assert(has_problem(&p, "orgA: burst must be"));
    ck_assert(has_problem(&p, "orgA: unknown field \"qsp\""));
    ck_assert(has_problem(&p, "orgB: exactly one of apiKey"));
    ck_assert(has_problem(&p, "\"bad org\": an org id"));
    ck_assert(has_problem(&p, "orgC: apiKeySha256 must be"));
    ck_assert(has_problem(&p, "orgD: exchange needs"));
    ck_assert(has_problem(&p, "orgE: must be an object"));
    ck_assert(has_problem(&p, "orgF: exchange: apiKey must be"));
    ck_assert_int_eq(p.count, 10);
}
END_TEST


START_TEST(broken_json_names_line_and_column)
{
    struct tenants_problems p;

    ck_assert_ptr_null(parse("{\n\"orgA\": {\"apiKey\": }\n}", &p));
    ck_assert_int_eq(p.count, 1);
    ck_assert(has_problem(&p, "line 2"));
}
END_TEST


START_TEST(duplicate_orgs_and_empty_files_are_refused)
{
    struct tenants_problems p;

    ck_assert_ptr_null(parse("{\"a\":{\"apiKey\":\"" KEY_A "\"},"
                             "\"a\":{\"apiKey\":\"" KEY_A "\"}}", &p));
    ck_assert_ptr_null(parse("{}", &p));
    ck_assert(has_problem(&p, "at least one tenant"));
    ck_assert_ptr_null(parse("[]", &p));
}
END_TEST


START_TEST(auth_accepts_only_the_right_org_and_key)
{
    struct tenants_problems p;
    struct tenants *t;
    const struct tenant *tn;

    t = parse("{\"orgA\":{\"apiKey\":\"" KEY_A "\"},"
              "\"orgZ\":{\"apiKey\":\"zzzz-key-0123456789abcdef\"}}", &p);
    ck_assert_ptr_nonnull(t);

    tn = tenants_auth(t, "orgA", KEY_A, strlen(KEY_A));
    ck_assert_ptr_nonnull(tn);
    ck_assert_str_eq(tn->org, "orgA");

    ck_assert_ptr_null(tenants_auth(t, "orgA", "wrong", 5));
    ck_assert_ptr_null(tenants_auth(t, "orgA", KEY_A, strlen(KEY_A) - 1));
    ck_assert_ptr_null(tenants_auth(t, "nobody", KEY_A, strlen(KEY_A)));
    ck_assert_ptr_null(tenants_auth(t, "orgZ", KEY_A, strlen(KEY_A)));
    ck_assert_ptr_null(tenants_auth(t, "orgA", "", 0));
    tenants_free(t);
}
END_TEST


START_TEST(hashed_keys_authenticate_like_plain_ones)
{
    static const char key[] = "hashed-key-0123456789abcdef";
    unsigned char digest[TENANT_DIGEST_LEN];
    struct tenants_problems p;
    struct tenants *t;
    char json[256], hex[2 * TENANT_DIGEST_LEN + 1];

    ck_assert_int_eq(tenants_digest(key, strlen(key), digest), 0);
    for (int i = 0; i < TENANT_DIGEST_LEN; i++) {
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    snprintf(json, sizeof(json), "{\"orgH\":{\"apiKeySha256\":\"%s\"}}", hex);

    t = parse(json, &p);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(tenants_auth(t, "orgH", key, strlen(key)));
    ck_assert_ptr_null(tenants_auth(t, "orgH", hex, strlen(hex)));
    tenants_free(t);
}
END_TEST


START_TEST(sha256_matches_the_standard_test_vector)
{
    static const unsigned char abc[TENANT_DIGEST_LEN] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad
    };
    unsigned char digest[TENANT_DIGEST_LEN];

    ck_assert_int_eq(tenants_digest("abc", 3, digest), 0);
    ck_assert_mem_eq(digest, abc, TENANT_DIGEST_LEN);
}
END_TEST


START_TEST(exchange_credentials_are_kept)
{
    struct tenants_problems p;
    struct tenants *t;
    const struct tenant *tn;

    t = parse("{\"orgA\":{\"apiKey\":\"" KEY_A "\",\"exchange\":"
              "{\"apiKey\":\"ek\",\"apiSecret\":\"es\"}}}", &p);
    ck_assert_ptr_nonnull(t);
    tn = tenants_find(t, "orgA");
    ck_assert_str_eq(tn->exchange_key, "ek");
    ck_assert_str_eq(tn->exchange_secret, "es");
    tenants_free(t);
}
END_TEST


START_TEST(a_missing_file_is_one_clear_problem)
{
    struct tenants_problems p;

    ck_assert_ptr_null(tenants_load("/nonexistent/tenants.json", 2, 4, &p,
                                    NULL, NULL));
    ck_assert_int_eq(p.count, 1);
    ck_assert(has_problem(&p, "No such file"));
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("tenants");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, a_valid_file_parses_with_defaults);
    tcase_add_test(tc, every_problem_is_reported_at_once);
    tcase_add_test(tc, broken_json_names_line_and_column);
    tcase_add_test(tc, duplicate_orgs_and_empty_files_are_refused);
    tcase_add_test(tc, auth_accepts_only_the_right_org_and_key);
    tcase_add_test(tc, hashed_keys_authenticate_like_plain_ones);
    tcase_add_test(tc, sha256_matches_the_standard_test_vector);
    tcase_add_test(tc, exchange_credentials_are_kept);
    tcase_add_test(tc, a_missing_file_is_one_clear_problem);
    suite_add_tcase(s, tc);

    return check_run(s);
}
