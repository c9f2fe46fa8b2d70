/*
 * Unit tests for worker/exchange.c: request signing against the example
 * in the exchange's API documentation.
 */
#include <check.h>
#include <stdlib.h>

#include "../worker/exchange.h"
#include "check_run.h"


START_TEST(signing_matches_the_documented_example)
{
    char sig[65];

    ck_assert_int_eq(exch_sign(
        "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1"
        "&price=0.1&recvWindow=5000&timestamp=1499827319559", sig), 0);
    ck_assert_str_eq(sig, "c8db56825ae71d6d79447849e617115f"
                          "4a920fa2acdcab2b053c4b2838bd6b71");
}
END_TEST


START_TEST(a_different_secret_gives_a_different_signature)
{
    char a[65], b[65];

    ck_assert_int_eq(exch_sign("secret-one", "symbol=BTCUSDT", a), 0);
    ck_assert_int_eq(exch_sign("secret-two", "symbol=BTCUSDT", b), 0);
    ck_assert_str_ne(a, b);
}
END_TEST


int
main(void)
{
    Suite *s = suite_create("exchange");
    TCase *tc = tcase_create("sign");

    tcase_add_test(tc, signing_matches_the_documented_example);
    tcase_add_test(tc, a_different_secret_gives_a_different_signature);
    suite_add_tcase(s, tc);

    return check_run(s);
}
