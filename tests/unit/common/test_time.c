/* Civil dates, RFC 3339 parsing and formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cmn/err.h"
#include "cmn/time.h"
#include "cmn/tz.h"

static int parse(const char *s, cmn_instant_t *t)
{
    return cmn_rfc3339_parse(s, strlen(s), t);
}

static void test_civil_round_trip(void **state)
{
    (void)state;
    assert_int_equal(cmn_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(cmn_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(cmn_days_from_civil(1969, 12, 31), -1);
    /* Every day from 1900 to 2100 survives the round trip and follows the one before. */
    int64_t prev = cmn_days_from_civil(1899, 12, 31);
    for (int64_t y = 1900; y <= 2100; y++) {
        for (int m = 1; m <= 12; m++) {
            for (int d = 1; d <= cmn_days_in_month(y, m); d++) {
                int64_t days = cmn_days_from_civil(y, m, d), y2;
                int m2, d2;
                assert_int_equal(days, prev + 1);
                cmn_civil_from_days(days, &y2, &m2, &d2);
                assert_int_equal(y2, y);
                assert_int_equal(m2, m);
                assert_int_equal(d2, d);
                prev = days;
            }
        }
    }
    assert_int_equal(cmn_days_in_month(2024, 2), 29);
    assert_int_equal(cmn_days_in_month(1900, 2), 28);
    assert_int_equal(cmn_days_in_month(2000, 2), 29);
}

static void test_rfc3339_parse(void **state)
{
    (void)state;
    cmn_instant_t t;
    assert_int_equal(parse("2026-11-27T18:42:07+08:00", &t), 0);
    assert_int_equal(t, 1795776127);
    assert_int_equal(parse("2026-11-27T10:42:07Z", &t), 0);
    assert_int_equal(t, 1795776127);
    assert_int_equal(parse("2026-11-27t10:42:07z", &t), 0);
    assert_int_equal(t, 1795776127);
    assert_int_equal(parse("2026-11-27 05:42:07-05:00", &t), 0);
    assert_int_equal(t, 1795776127);
    /* Fractions are dropped. */
    assert_int_equal(parse("2026-11-27T10:42:07.999999Z", &t), 0);
    assert_int_equal(t, 1795776127);
    assert_int_equal(parse("1969-12-31T23:59:59Z", &t), 0);
    assert_int_equal(t, -1);
    assert_int_equal(parse("2024-02-29T00:00:00+05:45", &t), 0);
}

static void test_rfc3339_refused(void **state)
{
    (void)state;
    cmn_instant_t t = 42;
    static const char *const bad[] = {
        "", "2026-11-27", "2026-11-27T18:42:07", "2026-11-27T18:42+08:00",
        "2026-11-27T18:42:07+0800", "2026-11-27T18:42:07+08", "26-11-27T18:42:07Z",
        "2026-11-27T18:42:07.Z", "2026-11-27T18:42:07Zjunk", "2026/11/27T18:42:07Z",
        "2026-11-27X18:42:07Z", "１2026-11-27T18:42:07Z", "2026-11-27T18:42:07 Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(parse(bad[i], &t), CMN_EPARSE);
    static const char *const range[] = {
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-11-27T24:00:00Z", "2026-11-27T23:60:00Z", "2026-12-31T23:59:60Z",
        "2026-11-27T00:00:00+24:00", "2026-00-10T00:00:00Z", "0000-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof range / sizeof *range; i++)
        assert_int_equal(parse(range[i], &t), CMN_ERANGE);
    assert_int_equal(t, 42); /* untouched on failure */
    /* A length shorter than the string is honoured. */
    assert_int_equal(cmn_rfc3339_parse("2026-11-27T10:42:07Z", 19, &t), CMN_EPARSE);
}

static void test_format(void **state)
{
    (void)state;
    char s[CMN_RFC3339_MAX];
    cmn_rfc3339_format(1795776127, 8 * 3600, 0, s, sizeof s);
    assert_string_equal(s, "2026-11-27T18:42:07+08:00");
    cmn_rfc3339_format(1795776127, 0, 1, s, sizeof s);
    assert_string_equal(s, "2026-11-27T10:42:07Z");
    cmn_rfc3339_format(1795776127, 0, 0, s, sizeof s);
    assert_string_equal(s, "2026-11-27T10:42:07+00:00");
    cmn_rfc3339_format(-1, -(3 * 3600 + 30 * 60), 0, s, sizeof s);
    assert_string_equal(s, "1969-12-31T20:29:59-03:30");
    int64_t d;
    assert_int_equal(cmn_date_parse("2026-11-27", 10, &d), 0);
    cmn_date_format(d, s, sizeof s);
    assert_string_equal(s, "2026-11-27");
    assert_int_equal(cmn_date_parse("2026-11-31", 10, &d), CMN_ERANGE);
    assert_int_equal(cmn_date_parse("2026-11-3", 9, &d), CMN_EPARSE);
}

/* The digit-by-digit writer against printf over years 0 to 9999 and beyond, offsets of every
 * sign and size, and short buffers (printf's truncation and return value). */
static void test_format_matches_printf(void **state)
{
    (void)state;
    static const int offsets[] = {0,         3600,      -3600, 8 * 3600,  5 * 3600 + 45 * 60,
                                  -(9 * 3600 + 30 * 60), 14 * 3600, 3600 + 59, -59, 99 * 3600,
                                  100 * 3600};
    const int64_t lo = cmn_days_from_civil(-2, 1, 1) * 86400;
    const int64_t hi = cmn_days_from_civil(10001, 1, 1) * 86400;
    int checked = 0;
    for (int64_t t = lo; t < hi; t += 86400LL * 3653 + 3607 * 7) {
        for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
            for (int z = 0; z < 2; z++) {
                int off_min = offsets[o] / 60, a = off_min < 0 ? -off_min : off_min;
                int64_t local = t + (int64_t)off_min * 60, days = cmn_floordiv(local, 86400);
                int64_t sod = local - days * 86400, y;
                int m, d;
                cmn_civil_from_days(days, &y, &m, &d);
                char want[64], got[CMN_RFC3339_MAX + 8];
                int wn;
                if (off_min == 0 && z)
                    wn = snprintf(want, sizeof want, "%04lld-%02d-%02dT%02d:%02d:%02dZ",
                                  (long long)y, m, d, (int)(sod / 3600), (int)(sod / 60 % 60),
                                  (int)(sod % 60));
                else
                    wn = snprintf(want, sizeof want, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
                                  (long long)y, m, d, (int)(sod / 3600), (int)(sod / 60 % 60),
                                  (int)(sod % 60), off_min < 0 ? '-' : '+', a / 60, a % 60);
                assert_int_equal(cmn_rfc3339_format(t, offsets[o], z, got, sizeof got), wn);
                assert_string_equal(got, want);
                /* A buffer one byte short: printf's truncation. */
                memset(got, 'x', sizeof got);
                assert_int_equal(cmn_rfc3339_format(t, offsets[o], z, got, (size_t)wn), wn);
                want[wn - 1] = '\0';
                assert_string_equal(got, want);
                checked++;
            }
        }
    }
    assert_true(checked > 20000);
}

static void test_tz(void **state)
{
    (void)state;
    cmn_tz_t *tz;
    cmn_instant_t t, from, until;
    int off;
    assert_int_equal(cmn_tz_new("Mars/Olympus", &tz), CMN_ETZ);
    assert_int_equal(cmn_tz_new("GMT+8", &tz), CMN_ETZ);
    assert_int_equal(cmn_tz_new("Europe/Berlin", &tz), 0);
    /* 2026-03-29T01:00:00Z: CET -> CEST. */
    parse("2026-03-29T00:59:59Z", &t);
    assert_int_equal(cmn_tz_offset(tz, t, &off, &from, &until), 0);
    assert_int_equal(off, 3600);
    assert_int_equal(until, t + 1);
    assert_int_equal(cmn_tz_offset(tz, t + 1, &off, &from, &until), 0);
    assert_int_equal(off, 7200);
    assert_int_equal(from, t + 1);
    /* The first 02:30 of 2026-10-25 is 00:30Z; 02:30 of 2026-03-29 does not exist: 01:00Z. */
    assert_int_equal(cmn_tz_wall_start(tz, cmn_days_from_civil(2026, 10, 25), 150, &t), 0);
    assert_int_equal(t, 1792888200);
    assert_int_equal(cmn_tz_wall_start(tz, cmn_days_from_civil(2026, 3, 29), 150, &t), 0);
    parse("2026-03-29T01:00:00Z", &from);
    assert_int_equal(t, from);
    assert_string_equal(cmn_tz_name(tz), "Europe/Berlin");
    cmn_tz_free(tz);
    assert_int_equal(cmn_tz_new("UTC", &tz), 0);
    assert_int_equal(cmn_tz_offset(tz, 0, &off, &from, &until), 0);
    assert_int_equal(off, 0);
    cmn_tz_free(tz);
}

/* A zone remembers its last offset and interval: answers from a zone asked over and over, back and
 * forth across transitions and decades, are those of a fresh zone asked once. */
static void test_tz_cache_agrees_with_fresh(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/Berlin", "Asia/Shanghai", "America/Sao_Paulo"};
    cmn_instant_t spring, fall;
    parse("2026-03-29T01:00:00Z", &spring);
    parse("2026-10-25T01:00:00Z", &fall);
    const cmn_instant_t probes[] = {spring - 1, spring,      spring + 1, fall,      fall - 1,
                                    spring,     fall + 1,    0,          spring - 1, 684000000,
                                    fall,       fall + 86400 * 200, spring - 86400 * 3650,
                                    spring + 3600, -86400,   spring - 1};
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        cmn_tz_t *kept;
        assert_int_equal(cmn_tz_new(zones[z], &kept), 0);
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            for (int with_interval = 0; with_interval < 2; with_interval++) {
                cmn_tz_t *fresh;
                int a = -1, b = -2;
                cmn_instant_t fa = 0, ua = 0, fb = 1, ub = 1;
                assert_int_equal(cmn_tz_new(zones[z], &fresh), 0);
                if (with_interval) {
                    assert_int_equal(cmn_tz_offset(kept, probes[i], &a, &fa, &ua), 0);
                    assert_int_equal(cmn_tz_offset(fresh, probes[i], &b, &fb, &ub), 0);
                    assert_int_equal(fa, fb);
                    assert_int_equal(ua, ub);
                    assert_true(fa <= probes[i] && probes[i] < ua);
                } else {
                    assert_int_equal(cmn_tz_offset(kept, probes[i], &a, NULL, NULL), 0);
                    assert_int_equal(cmn_tz_offset(fresh, probes[i], &b, NULL, NULL), 0);
                }
                assert_int_equal(a, b);
                cmn_tz_free(fresh);
            }
        }
        cmn_tz_free(kept);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil_round_trip), cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_refused),  cmocka_unit_test(test_format),
        cmocka_unit_test(test_tz),
        cmocka_unit_test(test_format_matches_printf),
        cmocka_unit_test(test_tz_cache_agrees_with_fresh),
    };
    return cmocka_run_group_tests_name("time", tests, NULL, NULL);
}
