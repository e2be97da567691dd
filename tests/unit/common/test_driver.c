/* A driver's snapshot (cmn_snapshot_parse): the 8 fields, cut text, and what is not a snapshot. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cmn/driver.h"

static void test_whole(void **state)
{
    (void)state;
    cmn_snapshot_t s;
    assert_int_equal(cmn_snapshot_parse("bd-1\x1f" "12\x1f" "700\x1f" "1\x1f" "NORMAL\x1f" "3\x1f"
                                        "4500\x1f" "stripe-main",
                                        &s),
                     0);
    assert_string_equal(s.driver, "bd-1");
    assert_int_equal(s.ver, 12);
    assert_int_equal(s.score, 700);
    assert_int_equal(s.suspended, 1);
    assert_string_equal(s.eligibility, "NORMAL");
    assert_int_equal(s.unpaid_count, 3);
    assert_int_equal(s.unpaid_amount, 4500);
    assert_string_equal(s.provider, "stripe-main");

    /* Suspended only when the field is "1"; empty numbers read as 0. */
    assert_int_equal(cmn_snapshot_parse("d\x1f" "0\x1f\x1f" "10\x1f\x1f\x1f\x1f", &s), 0);
    assert_int_equal(s.suspended, 0);
    assert_int_equal(s.ver, 0);
    assert_string_equal(s.provider, "");
}

static void test_cut(void **state)
{
    (void)state;
    char text[700], longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    snprintf(text, sizeof text, "%s\x1f" "1\x1f" "1\x1f" "0\x1f%s\x1f" "0\x1f" "0\x1f%s", longid,
             longid, longid);
    cmn_snapshot_t s;
    assert_int_equal(cmn_snapshot_parse(text, &s), 0);
    assert_int_equal(strlen(s.driver), sizeof s.driver - 1);
    assert_int_equal(strlen(s.eligibility), sizeof s.eligibility - 1);
    assert_int_equal(strlen(s.provider), sizeof s.provider - 1);
}

static void test_not_a_snapshot(void **state)
{
    (void)state;
    cmn_snapshot_t s;
    assert_int_equal(cmn_snapshot_parse("", &s), -1);
    assert_int_equal(cmn_snapshot_parse("bd-1", &s), -1);
    assert_int_equal(cmn_snapshot_parse("a\x1f" "1\x1f" "2\x1f" "0\x1fNORMAL\x1f" "0\x1f" "0", &s),
                     -1);
    assert_string_equal(s.driver, ""); /* nothing half-filled */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_not_a_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
