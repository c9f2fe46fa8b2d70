/*
 * Unit tests for worker/exchange.c: request signing, with the HMAC key a
 * tenants table sets up, against the example in the exchange's API
 * documentation.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../worker/exchange.h"
#include "check_run.h"

static const char documented_query[] =
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1"
    "&price=0.1&recvWindow=5000&timestamp=1499827319559";


/* A table of one tenant, orgX, whose exchange secret is secret. */
static struct tenants *
tenant_with_secret(const char *secret)
{
    char json[512];
    struct tenants_problems problems;
    struct tenants *t;

    snprintf(json, sizeof(json),
             "{\"orgX\": {\"apiKey\": \"key-0123456789abcdef\", "
             "\"exchange\": {\"apiKey\": \"exch-key\", "
             "\"apiSecret\": \"%s\"}}}", secret);
    t = tenants_parse(json, strlen(json), 10, 20, &problems);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(t->items[0].exchange_mac);
    return t;
}


START_TEST(signing_matches_the_documented_example)
{
    struct tenants *t = tenant_with_secret(
        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
    char sig[65];

    ck_assert_int_eq(exch_sign(t->items[0].exchange_mac, documented_query,
                               sig), 0);
    ck_assert_str_eq(sig, "c8db56825ae71d6d79447849e617115f"
                          "4a920fa2acdcab2b053c4b2838bd6b71");
    tenants_free(t);
}
END_TEST


START_TEST(the_key_signs_each_query_afresh)
{
    struct tenants *t = tenant_with_secret(
        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
    char first[65], other[65], again[65];

    ck_assert_int_eq(exch_sign(t->items[0].exchange_mac, documented_query,
                               first), 0);
    ck_assert_int_eq(exch_sign(t->items[0].exchange_mac, "symbol=BTCUSDT",
                               other), 0);
    ck_assert_int_eq(exch_sign(t->items[0].exchange_mac, documented_query,
                               again), 0);
    ck_assert_str_ne(first, other);
    ck_assert_str_eq(first, again);
    tenants_free(t);
}
END_TEST


START_TEST(a_different_secret_gives_a_different_signature)
{
    struct tenants *one = tenant_with_secret("secret-one");
    struct tenants *two = tenant_with_secret("secret-two");
    char a[65], b[65];

    ck_assert_int_eq(exch_sign(one->items[0].exchange_mac, "symbol=BTCUSDT",
                               a), 0);
    ck_assert_int_eq(exch_sign(two->items[0].exchange_mac, "symbol=BTCUSDT",
                               b), 0);
    ck_assert_str_ne(a, b);
    tenants_free(one);
    tenants_free(two);
}
END_TEST


START_TEST(a_tenant_without_a_secret_cannot_sign)
{
    char sig[65];

    ck_assert_int_eq(exch_sign(NULL, "symbol=BTCUSDT", sig), -1);
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("exchange");
    TCase *tc = tcase_create("sign");

    tcase_add_test(tc, signing_matches_the_documented_example);
    tcase_add_test(tc, the_key_signs_each_query_afresh);
    tcase_add_test(tc, a_different_secret_gives_a_different_signature);
    tcase_add_test(tc, a_tenant_without_a_secret_cannot_sign);
    suite_add_tcase(s, tc);

    return check_run(s);
}
