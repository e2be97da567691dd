/*
 * The tariff contract (docs/tariffs.md), rule by rule, with the arithmetic of every expected amount
 * written beside it.  Times are written in RFC 3339 so each case reads like a bill.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/mem.h"
#include "cmn/tariff.h"
#include "cmn/time.h"

/* The example of the contract: free 15 min, first hour 10.00, day 3.00/30 min, night 1.00/h capped
 * at 5.00 per night, 60.00 per 24 h; new energy 60 free min and 50 % off; large 12.00/h all day. */
static const char *const spec_example =
    "{\"id\":\"hz-core-2024\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\","
    "\"free_minutes\":15,\"free_deducted\":false,\"first_period\":{\"minutes\":60,\"price\":1000},"
    "\"bands\":["
    "{\"name\":\"day\",\"from\":\"08:00\",\"to\":\"20:00\",\"unit_minutes\":30,\"unit_price\":300},"
    "{\"name\":\"night\",\"from\":\"20:00\",\"to\":\"08:00\",\"unit_minutes\":60,\"unit_price\":100,"
    "\"cap\":500}],"
    "\"cap_24h\":6000,"
    "\"classes\":{\"new_energy\":{\"free_minutes\":60,\"discount_percent\":50},"
    "\"large\":{\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\",\"unit_minutes\":60,"
    "\"unit_price\":1200}]}}}";

static cmn_tariff_t *load(const char *text)
{
    cmn_diag_t d;
    cmn_tariff_t *t = NULL;
    cmn_diag_init(&d);
    int rc = cmn_tariff_load_text("test.json", text, strlen(text), &t, &d);
    if (rc != 0)
        cmn_diag_print(&d, "unexpected: ", stderr);
    assert_int_equal(rc, 0);
    cmn_diag_dispose(&d);
    return t;
}

static cmn_instant_t at(const char *s)
{
    cmn_instant_t t;
    assert_int_equal(cmn_rfc3339_parse(s, strlen(s), &t), 0);
    return t;
}

/* The amount, checked to be the same with and without the explanation. */
static int64_t fee_t(const cmn_tariff_t *t, const char *vclass, const char *entry, const char *exit)
{
    cmn_fee_t plain, explained;
    assert_int_equal(cmn_tariff_fee(t, vclass, at(entry), at(exit), 0, &plain), 0);
    assert_int_equal(cmn_tariff_fee(t, vclass, at(entry), at(exit), CMN_FEE_EXPLAIN, &explained),
                     0);
    assert_int_equal(plain.amount, explained.amount);
    /* The rows add up to the subtotal. */
    int64_t sum = 0, units = 0;
    for (size_t i = 0; i < explained.nrows; i++) {
        sum += explained.rows[i].charged_each * explained.rows[i].count;
        units += explained.rows[i].count;
    }
    assert_int_equal(sum, explained.subtotal);
    assert_int_equal(units, explained.units);
    cmn_fee_dispose(&plain);
    cmn_fee_dispose(&explained);
    return plain.amount;
}

static int64_t fee(const char *text, const char *vclass, const char *entry, const char *exit)
{
    cmn_tariff_t *t = load(text);
    int64_t amount = fee_t(t, vclass, entry, exit);
    cmn_tariff_free(t);
    return amount;
}

static void test_free_period(void **state)
{
    (void)state;
    /* D = 15 min exactly: free. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T10:00:00+08:00",
                         "2026-11-27T10:15:00+08:00"),
                     0);
    /* One second more: charged from entry, one first period of 10.00. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T10:00:00+08:00",
                         "2026-11-27T10:15:01+08:00"),
                     1000);
    /* A stay of zero seconds. */
    assert_int_equal(fee(spec_example, NULL, "2026-11-27T10:00:00+08:00",
                         "2026-11-27T10:00:00+08:00"),
                     0);
}

static void test_free_deducted(void **state)
{
    (void)state;
    const char *t = "{\"id\":\"d\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\","
                    "\"free_minutes\":30,\"free_deducted\":true,"
                    "\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
                    "\"unit_minutes\":30,\"unit_price\":250}]}";
    /* 30 min: free. */
    assert_int_equal(fee(t, NULL, "2026-11-27T10:00:00Z", "2026-11-27T10:30:00Z"), 0);
    /* 31 min: S = 10:30, one unit [10:30, 11:00) = 2.50. */
    assert_int_equal(fee(t, NULL, "2026-11-27T10:00:00Z", "2026-11-27T10:31:00Z"), 250);
    /* 61 min: units at 10:30 and 11:00 = 5.00 (without deduction it would be three units). */
    assert_int_equal(fee(t, NULL, "2026-11-27T10:00:00Z", "2026-11-27T11:01:00Z"), 500);
}

static void test_first_period_and_units(void **state)
{
    (void)state;
    /* 08:10–10:05: first period [08:10, 09:10) 10.00, then [09:10, 09:40) and [09:40, 10:10) at
     * 3.00: the last unit is cut short by the exit and charged in full.  16.00. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T08:10:00+08:00",
                         "2026-11-27T10:05:00+08:00"),
                     1600);
    /* 60 min + 1 s: the first period and one more day unit.  13.00. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T09:00:00+08:00",
                         "2026-11-27T10:00:01+08:00"),
                     1300);
}

static void test_unit_runs_into_next_band(void **state)
{
    (void)state;
    const char *t = "{\"id\":\"r\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\","
                    "\"bands\":["
                    "{\"name\":\"day\",\"from\":\"08:00\",\"to\":\"20:00\",\"unit_minutes\":30,"
                    "\"unit_price\":300},"
                    "{\"name\":\"night\",\"from\":\"20:00\",\"to\":\"08:00\",\"unit_minutes\":60,"
                    "\"unit_price\":100}]}";
    /* [19:50, 20:20) starts in the day: 3.00 although it ends at night; [20:20, 21:20) night 1.00.
     * 4.00. */
    assert_int_equal(fee(t, NULL, "2026-11-27T19:50:00+08:00", "2026-11-27T20:40:00+08:00"), 400);
    /* [07:30, 08:30) is a night unit (1.00) that runs an hour into the day; then [08:30, 09:00)
     * day 3.00.  4.00. */
    assert_int_equal(fee(t, NULL, "2026-11-27T07:30:00+08:00", "2026-11-27T08:45:00+08:00"), 400);
}

static void test_night_cap_and_first_period_at_night(void **state)
{
    (void)state;
    /* 20:00 to 08:00: the first period starts at night, costs 10.00, and the night cap cuts it to
     * 5.00; the 11 night units after it cost 0.  5.00. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T20:00:00+08:00",
                         "2026-11-28T08:00:00+08:00"),
                     500);
    /* 18:10 to 10:05 the next day: first period 10.00, day [19:10, 20:10) 2 x 3.00, night units
     * from 20:10 (12 x 1.00 capped to 5.00), day units [08:10, 10:10) 4 x 3.00 = 12.00.
     * 10 + 6 + 5 + 12 = 33.00; all in the first 24-hour window, under 60.00. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T18:10:00+08:00",
                         "2026-11-28T10:05:00+08:00"),
                     3300);
}

static void test_occurrences_of_a_wrapping_band(void **state)
{
    (void)state;
    const char *t = "{\"id\":\"o\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\","
                    "\"first_period\":{\"minutes\":60,\"price\":1000},"
                    "\"bands\":["
                    "{\"name\":\"day\",\"from\":\"08:00\",\"to\":\"20:00\",\"unit_minutes\":30,"
                    "\"unit_price\":300},"
                    "{\"name\":\"night\",\"from\":\"20:00\",\"to\":\"08:00\",\"unit_minutes\":60,"
                    "\"unit_price\":100,\"cap\":500}]}";
    /* 06:00 to 22:00: first period [06:00, 07:00) in the night begun on the 26th: 10.00 capped to
     * 5.00; [07:00, 08:00) same night: 0.  Day 24 x 3.00 = 72.00.  Night of the 27th: 2 x 1.00.
     * 5 + 72 + 2 = 79.00. */
    assert_int_equal(fee(t, NULL, "2026-11-27T06:00:00+08:00", "2026-11-27T22:00:00+08:00"),
                     7900);
}

static void test_cap_24h_windows(void **state)
{
    (void)state;
    /* Same stay as above with the 60.00 cap per 24 hours: the window [06:00, 06:00 next day)
     * holds all units, 79.00 is cut to 60.00. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T06:00:00+08:00",
                         "2026-11-27T22:00:00+08:00"),
                     6000);
    /* Two full days from 08:00: window 0 [27th 08:00, 28th 08:00): first period 10.00, day
     * [09:00, 20:00) 22 x 3.00 = 66.00, night 5.00: 81.00 -> 60.00.  Window 1 the same without the
     * first period: 24 x 3.00 + 5.00 = 77.00 -> 60.00.  120.00. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T08:00:00+08:00",
                         "2026-11-29T08:00:00+08:00"),
                     12000);
    /* One second more starts window 2 with a day unit: 3.00.  123.00. */
    assert_int_equal(fee(spec_example, "small", "2026-11-27T08:00:00+08:00",
                         "2026-11-29T08:00:01+08:00"),
                     12300);
}

static void test_band_cap_reached_stays_reached_across_windows(void **state)
{
    (void)state;
    /* Windows start at S = 21:00.  The night of the 27th: [21:00, 22:00) 4.00 ... capped at 6.00
     * per night, 24-hour cap 5.00.  Units 21:00 (4.00) and 22:00 (4.00 -> band room 2.00 -> 24h
     * room 1.00).  Window 0 ends at 21:00 on the 28th.  The night of the 27th continues into window
     * 0 only.  Test: stay 21:00 to 23:00 = 5.00 (24h cap), not 6.00. */
    const char *t = "{\"id\":\"w\",\"currency\":\"CNY\",\"timezone\":\"UTC\","
                    "\"bands\":["
                    "{\"name\":\"day\",\"from\":\"08:00\",\"to\":\"20:00\",\"unit_minutes\":60,"
                    "\"unit_price\":0},"
                    "{\"name\":\"night\",\"from\":\"20:00\",\"to\":\"08:00\",\"unit_minutes\":60,"
                    "\"unit_price\":400,\"cap\":600}],\"cap_24h\":500}";
    assert_int_equal(fee(t, NULL, "2026-11-27T21:00:00Z", "2026-11-27T23:00:00Z"), 500);
    /* A stay that crosses a window boundary inside one night: S = 2026-11-27T04:00Z.  Window 0 =
     * [27th 04:00, 28th 04:00).  Night of the 26th: units 04:00..07:00 (4 units): 4.00, 2.00 (band
     * cap 6.00), 0, 0; the 24-hour cap (5.00) cuts window 0's 6.00 to 5.00.  Day units 0.  Night of
     * the 27th from 20:00: 4.00, then 2.00 of band room -> but window 0 already has 5.00: 0, ...
     * Window 1 starts at 28th 04:00, still in the night of the 27th, whose band cap was already
     * reached (4.00 + 2.00): 0.  Total 5.00. */
    assert_int_equal(fee(t, NULL, "2026-11-27T04:00:00Z", "2026-11-28T06:00:00Z"), 500);
}

static void test_class_overrides(void **state)
{
    (void)state;
    /* new_energy: free 60 min. */
    assert_int_equal(fee(spec_example, "new_energy", "2026-11-27T08:00:00+08:00",
                         "2026-11-27T09:00:00+08:00"),
                     0);
    /* 61 min: first period 10.00 + day 3.00 = 13.00, 50 % off: 6.50. */
    assert_int_equal(fee(spec_example, "new_energy", "2026-11-27T08:00:00+08:00",
                         "2026-11-27T09:01:00+08:00"),
                     650);
    /* large overrides only bands and keeps the first period: 10.00 + 2 x 12.00 = 34.00, under the
     * inherited 60.00 per 24 h. */
    assert_int_equal(fee(spec_example, "large", "2026-11-27T08:00:00+08:00",
                         "2026-11-27T11:00:00+08:00"),
                     3400);
    /* 12 hours large: 10.00 + 11 x 12.00 = 142.00 -> 60.00 (inherited 24-hour cap). */
    assert_int_equal(fee(spec_example, "large", "2026-11-27T08:00:00+08:00",
                         "2026-11-27T20:00:00+08:00"),
                     6000);
    /* A class the tariff does not list uses the top-level rules. */
    assert_int_equal(fee(spec_example, "bus", "2026-11-27T08:10:00+08:00",
                         "2026-11-27T10:05:00+08:00"),
                     1600);
}

static void test_null_removes_inherited_fields(void **state)
{
    (void)state;
    const char *t = "{\"id\":\"n\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\","
                    "\"free_minutes\":15,\"first_period\":{\"minutes\":60,\"price\":1000},"
                    "\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
                    "\"unit_minutes\":60,\"unit_price\":500}],\"cap_24h\":1000,"
                    "\"classes\":{\"x\":{\"first_period\":null,\"cap_24h\":null,"
                    "\"free_minutes\":null}}}";
    /* Top level: 3 h = 10.00 + 5.00 + 5.00 = 20.00 -> 24-hour cap 10.00. */
    assert_int_equal(fee(t, NULL, "2026-11-27T08:00:00Z", "2026-11-27T11:00:00Z"), 1000);
    /* x: no first period, no cap, no free period: 3 x 5.00 = 15.00; 10 minutes cost 5.00. */
    assert_int_equal(fee(t, "x", "2026-11-27T08:00:00Z", "2026-11-27T11:00:00Z"), 1500);
    assert_int_equal(fee(t, "x", "2026-11-27T08:00:00Z", "2026-11-27T08:10:00Z"), 500);
}

static void test_discount_rounds_half_up(void **state)
{
    (void)state;
    const char *t = "{\"id\":\"h\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\","
                    "\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
                    "\"unit_minutes\":60,\"unit_price\":333}],"
                    "\"classes\":{\"half\":{\"discount_percent\":50},"
                    "\"third\":{\"discount_percent\":33},\"all\":{\"discount_percent\":100}}}";
    /* 3.33 x 50 % = 1.665 -> 1.67. */
    assert_int_equal(fee(t, "half", "2026-11-27T08:00:00Z", "2026-11-27T09:00:00Z"), 167);
    /* 3.33 x 67 % = 2.2311 -> 2.23. */
    assert_int_equal(fee(t, "third", "2026-11-27T08:00:00Z", "2026-11-27T09:00:00Z"), 223);
    /* 6.66 x 67 % = 4.4622 -> 4.46. */
    assert_int_equal(fee(t, "third", "2026-11-27T08:00:00Z", "2026-11-27T10:00:00Z"), 446);
    assert_int_equal(fee(t, "all", "2026-11-27T08:00:00Z", "2026-11-27T10:00:00Z"), 0);
}

static void test_all_day_band_with_offset_start(void **state)
{
    (void)state;
    /* One all-day band from 06:00 to 06:00, capped at 10.00: occurrences run 06:00 to 06:00.
     * 04:00 to 10:00: units 04:00 and 05:00 belong to the occurrence begun the day before (8.00),
     * units 06:00..09:00 to the new one (4 x 4.00 = 16.00 -> 10.00).  18.00. */
    const char *t = "{\"id\":\"a\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\","
                    "\"bands\":[{\"name\":\"all\",\"from\":\"06:00\",\"to\":\"06:00\","
                    "\"unit_minutes\":60,\"unit_price\":400,\"cap\":1000}]}";
    assert_int_equal(fee(t, NULL, "2026-11-27T04:00:00+08:00", "2026-11-27T10:00:00+08:00"),
                     1800);
}

/* Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET. */
static const char *const berlin =
    "{\"id\":\"b\",\"currency\":\"EUR\",\"timezone\":\"Europe/Berlin\","
    "\"bands\":["
    "{\"name\":\"day\",\"from\":\"08:00\",\"to\":\"20:00\",\"unit_minutes\":60,\"unit_price\":200},"
    "{\"name\":\"night\",\"from\":\"20:00\",\"to\":\"08:00\",\"unit_minutes\":60,"
    "\"unit_price\":100}]}";

static const char *const berlin_capped =
    "{\"id\":\"bc\",\"currency\":\"EUR\",\"timezone\":\"Europe/Berlin\","
    "\"bands\":["
    "{\"name\":\"day\",\"from\":\"08:00\",\"to\":\"20:00\",\"unit_minutes\":60,\"unit_price\":200},"
    "{\"name\":\"night\",\"from\":\"20:00\",\"to\":\"08:00\",\"unit_minutes\":60,"
    "\"unit_price\":100,\"cap\":1200}]}";

static void test_dst_spring_forward(void **state)
{
    (void)state;
    /* 20:00 CET to 08:00 CEST is 11 hours: 11 night units = 11.00, not 12. */
    assert_int_equal(fee(berlin, NULL, "2026-03-28T20:00:00+01:00", "2026-03-29T08:00:00+02:00"),
                     1100);
    /* Units follow elapsed time: [07:30, 08:30) CEST is still a night unit, [08:30, 09:30) day.
     * From 01:30 CET: units at 01:30 CET, 03:30, 04:30, 05:30, 06:30, 07:30 CEST are night (6.00),
     * 08:30 day (2.00).  Exit 09:00 CEST.  8.00. */
    assert_int_equal(fee(berlin, NULL, "2026-03-29T01:30:00+01:00", "2026-03-29T09:00:00+02:00"),
                     800);
}

static void test_dst_fall_back(void **state)
{
    (void)state;
    /* 20:00 CEST to 08:00 CET is 13 hours: 13 night units = 13.00. */
    assert_int_equal(fee(berlin, NULL, "2026-10-24T20:00:00+02:00", "2026-10-25T08:00:00+01:00"),
                     1300);
    /* With a 12.00 cap per night: the repeated hour stays in the same night, so the 13 units of
     * the one occurrence cost 12.00. */
    assert_int_equal(fee(berlin_capped, NULL, "2026-10-24T20:00:00+02:00",
                         "2026-10-25T08:00:00+01:00"),
                     1200);
}

static void test_dst_band_starting_in_repeated_hour(void **state)
{
    (void)state;
    /* A band from 02:30 to 02:30 (all day), capped at 3.00, 1.00 per hour.  On 2026-10-25 the
     * wall clock reads 02:30 twice (CEST, then CET).  The occurrence begins at the first 02:30
     * (00:30Z); the second pass through 02:00-03:00 (01:00Z-02:00Z) stays in it.
     * From 00:00Z (02:00 CEST) to 05:00Z: unit 00:00Z belongs to the occurrence of the 24th
     * (1.00); units 01:00Z..04:00Z to that of the 25th: 4 x 1.00 capped at 3.00.  4.00.  Taking
     * wall times instead would put 01:00Z (02:00 CET, before 02:30) back in the 24th's. */
    const char *t = "{\"id\":\"f\",\"currency\":\"EUR\",\"timezone\":\"Europe/Berlin\","
                    "\"bands\":[{\"name\":\"all\",\"from\":\"02:30\",\"to\":\"02:30\","
                    "\"unit_minutes\":60,\"unit_price\":100,\"cap\":300}]}";
    assert_int_equal(fee(t, NULL, "2026-10-25T00:00:00Z", "2026-10-25T05:00:00Z"), 400);
    /* Spring forward: 02:30 does not exist on 2026-03-29, so the occurrence begins at the jump
     * (01:00Z, 03:00 CEST).  From 00:00Z: unit 00:00Z (01:00 CET) belongs to the 28th's (1.00),
     * units 01:00Z..04:00Z to the 29th's, capped at 3.00.  4.00. */
    assert_int_equal(fee(t, NULL, "2026-03-29T00:00:00Z", "2026-03-29T05:00:00Z"), 400);
}

static void test_errors(void **state)
{
    (void)state;
    cmn_tariff_t *t = load(spec_example);
    cmn_fee_t f;
    assert_int_equal(cmn_tariff_fee(t, NULL, 1000, 999, 0, &f), CMN_ERANGE);
    cmn_fee_dispose(&f);
    assert_int_equal(cmn_tariff_fee(t, NULL, 0, CMN_TARIFF_MAX_STAY + 1, 0, &f), CMN_ERANGE);
    cmn_fee_dispose(&f);
    /* Exactly the longest stay is computed. */
    assert_int_equal(cmn_tariff_fee(t, NULL, 0, CMN_TARIFF_MAX_STAY, 0, &f), 0);
    assert_true(f.amount > 0);
    cmn_fee_dispose(&f);
    cmn_tariff_free(t);
}

static void test_version_is_content_hash(void **state)
{
    (void)state;
    cmn_tariff_t *a = load(spec_example);
    /* Same content, other layout and key order: same version. */
    cmn_tariff_t *b = load(
        "{ \"currency\": \"CNY\", \"id\": \"hz-core-2024\", \"timezone\": \"Asia/Shanghai\",\n"
        "  \"free_deducted\": false, \"free_minutes\": 15,\n"
        "  \"first_period\": { \"price\": 1000, \"minutes\": 60 },\n"
        "  \"bands\": [\n"
        "{\"name\":\"day\",\"from\":\"08:00\",\"to\":\"20:00\",\"unit_minutes\":30,\"unit_price\":300},"
        "{\"name\":\"night\",\"from\":\"20:00\",\"to\":\"08:00\",\"unit_minutes\":60,\"unit_price\":100,"
        "\"cap\":500}],\n"
        "\"cap_24h\":6000,"
        "\"classes\":{\"large\":{\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
        "\"unit_minutes\":60,\"unit_price\":1200}]},"
        "\"new_energy\":{\"discount_percent\":50,\"free_minutes\":60}}}");
    assert_string_equal(cmn_tariff_version(a), cmn_tariff_version(b));
    assert_int_equal(strlen(cmn_tariff_version(a)), 16);
    /* One price changed: another version. */
    char *changed = strdup(spec_example);
    char *p = strstr(changed, "\"unit_price\":300");
    p[14] = '1';
    cmn_tariff_t *c = load(changed);
    assert_string_not_equal(cmn_tariff_version(a), cmn_tariff_version(c));
    free(changed);
    cmn_tariff_free(a);
    cmn_tariff_free(b);
    cmn_tariff_free(c);
}

/* A bad file is refused; the message names the file, the JSON path and the reason. */
static void expect_refused(const char *text, const char *where, const char *why)
{
    cmn_diag_t d;
    cmn_tariff_t *t = NULL;
    cmn_diag_init(&d);
    assert_int_equal(cmn_tariff_load_text("tariffs/bad.json", text, strlen(text), &t, &d),
                     CMN_ECONFIG);
    assert_null(t);
    int found = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (strstr(d.msgs[i], "tariffs/bad.json: ") == d.msgs[i] && strstr(d.msgs[i], where) &&
            strstr(d.msgs[i], why))
            found = 1;
    }
    if (!found) {
        fprintf(stderr, "expected \"%s\" ... \"%s\" among:\n", where, why);
        cmn_diag_print(&d, "  ", stderr);
    }
    assert_true(found);
    cmn_diag_dispose(&d);
}

#define HEAD "{\"id\":\"x\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\","
#define ALLDAY "{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\",\"unit_minutes\":60,\"unit_price\":100}"

static void test_refused_files(void **state)
{
    (void)state;
    expect_refused("{\"id\": \"x\",\n  \"currency\": }", "line 2", "");
    expect_refused("[1, 2]", "line 1", "JSON object");
    expect_refused(HEAD "\"bands\":[" ALLDAY "],\"bands\":[]}", "line 1", "duplicate");
    expect_refused(HEAD "\"bands\":["
                        "{\"name\":\"a\",\"from\":\"00:00\",\"to\":\"12:00\",\"unit_minutes\":60,\"unit_price\":1},"
                        "{\"name\":\"b\",\"from\":\"11:00\",\"to\":\"00:00\",\"unit_minutes\":60,\"unit_price\":1}]}",
                   "$.bands[1]", "overlaps band \"a\" from 11:00");
    expect_refused(HEAD "\"bands\":["
                        "{\"name\":\"a\",\"from\":\"08:00\",\"to\":\"20:00\",\"unit_minutes\":60,\"unit_price\":1},"
                        "{\"name\":\"b\",\"from\":\"21:00\",\"to\":\"08:00\",\"unit_minutes\":60,\"unit_price\":1}]}",
                   "$.bands", "no band covers 20:00 to 21:00");
    expect_refused(HEAD "\"bands\":[]}", "$.bands", "at least one band");
    expect_refused(HEAD "\"free_minutes\":5}", "$.bands", "required field is missing");
    expect_refused(HEAD "\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
                        "\"unit_minutes\":60,\"unit_price\":-1}]}",
                   "$.bands[0].unit_price", "from 0 to");
    expect_refused(HEAD "\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
                        "\"unit_minutes\":0,\"unit_price\":1}]}",
                   "$.bands[0].unit_minutes", "from 1 to");
    expect_refused(HEAD "\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
                        "\"unit_minutes\":60,\"unit_price\":2.5}]}",
                   "$.bands[0].unit_price", "not a number with a fraction");
    expect_refused(HEAD "\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
                        "\"unit_minutes\":60,\"unit_price\":1,\"cap\":-5}]}",
                   "$.bands[0].cap", "(got -5)");
    expect_refused(HEAD "\"bands\":[{\"name\":\"all\",\"from\":\"24:00\",\"to\":\"00:00\","
                        "\"unit_minutes\":60,\"unit_price\":1}]}",
                   "$.bands[0].from", "HH:MM");
    expect_refused(HEAD "\"bands\":[{\"name\":\"all\",\"from\":\"8:00\",\"to\":\"08:00\","
                        "\"unit_minutes\":60,\"unit_price\":1}]}",
                   "$.bands[0].from", "HH:MM");
    expect_refused(HEAD "\"bands\":["
                        "{\"name\":\"a\",\"from\":\"00:00\",\"to\":\"12:00\",\"unit_minutes\":60,\"unit_price\":1},"
                        "{\"name\":\"a\",\"from\":\"12:00\",\"to\":\"00:00\",\"unit_minutes\":60,\"unit_price\":1}]}",
                   "$.bands[1].name", "duplicate band name");
    expect_refused(HEAD "\"bands\":[{\"name\":\"all\",\"from\":\"00:00\",\"to\":\"00:00\","
                        "\"unit_minutes\":60,\"unit_price\":1,\"colour\":\"red\"}]}",
                   "$.bands[0].colour", "unknown field");
    expect_refused(HEAD "\"free_minutes\":-1,\"bands\":[" ALLDAY "]}", "$.free_minutes",
                   "(got -1)");
    expect_refused(HEAD "\"free_deducted\":\"yes\",\"bands\":[" ALLDAY "]}", "$.free_deducted",
                   "true or false");
    expect_refused(HEAD "\"first_period\":{\"minutes\":0,\"price\":100},\"bands\":[" ALLDAY "]}",
                   "$.first_period.minutes", "from 1 to");
    expect_refused(HEAD "\"first_period\":{\"minutes\":60,\"price\":-100},\"bands\":[" ALLDAY "]}",
                   "$.first_period.price", "(got -100)");
    expect_refused(HEAD "\"first_period\":{\"minutes\":60},\"bands\":[" ALLDAY "]}",
                   "$.first_period.price", "required");
    expect_refused(HEAD "\"cap_24h\":-1,\"bands\":[" ALLDAY "]}", "$.cap_24h", "(got -1)");
    expect_refused(HEAD "\"discount_percent\":10,\"bands\":[" ALLDAY "]}", "$.discount_percent",
                   "only allowed inside a class");
    expect_refused(HEAD "\"bands\":[" ALLDAY "],\"classes\":{\"new_energy\":{\"discount_percent\":101}}}",
                   "$.classes.new_energy.discount_percent", "from 0 to 100");
    expect_refused(HEAD "\"bands\":[" ALLDAY "],\"classes\":{\"new_energy\":{\"discount_percent\":12.5}}}",
                   "$.classes.new_energy.discount_percent", "integer");
    expect_refused(HEAD "\"bands\":[" ALLDAY "],\"classes\":{\"new_energy\":{\"speed\":1}}}",
                   "$.classes.new_energy.speed", "unknown field");
    expect_refused(HEAD "\"bands\":[" ALLDAY "],\"classes\":{\"large\":{\"bands\":null}}}",
                   "$.classes.large.bands", "cannot be removed");
    expect_refused(HEAD "\"bands\":[" ALLDAY "],\"classes\":{\"large\":{\"bands\":["
                        "{\"name\":\"a\",\"from\":\"00:00\",\"to\":\"12:00\",\"unit_minutes\":60,\"unit_price\":1}]}}}",
                   "$.classes.large.bands", "no band covers 12:00 to 00:00");
    expect_refused(HEAD "\"bands\":[" ALLDAY "],\"owner\":\"me\"}", "$.owner", "unknown field");
    expect_refused("{\"id\":\"x\",\"currency\":\"CNY\",\"timezone\":\"Asia/Hangzhou\",\"bands\":[" ALLDAY "]}",
                   "$.timezone", "unknown IANA time zone \"Asia/Hangzhou\"");
    expect_refused("{\"id\":\"x\",\"currency\":\"CNY\",\"timezone\":\"GMT+8\",\"bands\":[" ALLDAY "]}",
                   "$.timezone", "unknown IANA time zone");
    expect_refused("{\"id\":\"x\",\"currency\":\"RMB\",\"timezone\":\"UTC\",\"bands\":[" ALLDAY "]}",
                   "$.currency", "ISO 4217");
    expect_refused("{\"currency\":\"CNY\",\"timezone\":\"UTC\",\"bands\":[" ALLDAY "]}", "$.id",
                   "required field is missing");
    expect_refused("{\"id\":\"has space\",\"currency\":\"CNY\",\"timezone\":\"UTC\",\"bands\":[" ALLDAY "]}",
                   "$.id", "letters, digits");
}

static void test_explanation(void **state)
{
    (void)state;
    cmn_tariff_t *t = load(spec_example);
    cmn_fee_t f;
    assert_int_equal(cmn_tariff_fee(t, "small", at("2026-11-27T18:10:00+08:00"),
                                    at("2026-11-28T10:05:00+08:00"), CMN_FEE_EXPLAIN, &f),
                     0);
    assert_int_equal(f.amount, 3300);
    /* Rows: first period, 2 day units, 5 night units at 1.00, 7 capped to 0, 4 day units. */
    assert_int_equal(f.nrows, 5);
    assert_true(f.rows[0].first_period);
    assert_int_equal(f.rows[1].count, 2);
    assert_int_equal(f.rows[2].count, 5);
    assert_int_equal(f.rows[2].charged_each, 100);
    assert_int_equal(f.rows[3].count, 7);
    assert_int_equal(f.rows[3].charged_each, 0);
    assert_int_equal(f.ncaps, 1);
    assert_int_equal(f.caps[0].kind, CMN_CAP_BAND);
    assert_int_equal(f.caps[0].before, 1200);
    assert_int_equal(f.caps[0].after, 500);

    json_t *j = cmn_fee_to_json(t, &f);
    assert_int_equal(json_integer_value(json_object_get(j, "amount")), 3300);
    assert_string_equal(json_string_value(json_object_get(j, "currency")), "CNY");
    assert_string_equal(json_string_value(json_object_get(j, "entry")), "2026-11-27T18:10:00+08:00");
    json_t *cap = json_array_get(json_object_get(j, "caps"), 0);
    assert_string_equal(json_string_value(json_object_get(cap, "band")), "night");
    assert_string_equal(json_string_value(json_object_get(cap, "occurrence")), "2026-11-27");
    json_decref(j);

    cmn_buf_t b;
    cmn_buf_init(&b, 1 << 20);
    assert_int_equal(cmn_fee_explain_text(t, &f, &b), 0);
    assert_non_null(strstr(b.base, "band cap of \"night\" begun 2026-11-27: 5.00, units 12.00 -> 5.00"));
    assert_non_null(strstr(b.base, "total 33.00 CNY"));
    cmn_buf_dispose(&b);
    cmn_fee_dispose(&f);
    cmn_tariff_free(t);
}

/* Names that jansson must escape (quotes, a backslash, a tab, non-ASCII) in a tariff with a 24-hour
 * cap and a discount, so both writers see every kind of member. */
static const char *const odd_names =
    "{\"id\":\"odd\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\",\"free_minutes\":10,"
    "\"free_deducted\":true,\"bands\":["
    "{\"name\":\"\\u591c \\\"n\\\"\\\\\\t\",\"from\":\"19:00\",\"to\":\"07:00\","
    "\"unit_minutes\":45,\"unit_price\":150,\"cap\":700},"
    "{\"name\":\"day/\\u65e5\",\"from\":\"07:00\",\"to\":\"19:00\",\"unit_minutes\":20,"
    "\"unit_price\":250}],\"cap_24h\":3000,"
    "\"classes\":{\"ev_1\":{\"discount_percent\":35}}}";

/* cmn_fee_explain_json writes the bytes jansson writes for cmn_fee_to_json, over stays of every
 * length from nothing to four days, starting at every quarter of the clock, in every class,
 * across DST changes (the offset cache) and through every cap kind. */
static void explain_both_ways(const cmn_tariff_t *t, const char *const *classes, size_t nclasses,
                              const char *from, int *checked)
{
    static const int64_t stays[] = {0, 59, 600, 601, 900, 3599, 3600, 5400, 7261, 4 * 3600 + 1,
                                    11 * 3600, 13 * 3600 + 17, 86399, 86400, 90000, 2 * 86400 + 7,
                                    4 * 86400};
    cmn_instant_t t0 = at(from);
    for (size_t c = 0; c < nclasses; c++) {
        for (int q = 0; q < 4 * 24 * 3; q += 5) {
            for (size_t k = 0; k < sizeof stays / sizeof stays[0]; k++) {
                cmn_instant_t entry = t0 + (cmn_instant_t)q * 900;
                cmn_fee_t f;
                assert_int_equal(
                    cmn_tariff_fee(t, classes[c], entry, entry + stays[k], CMN_FEE_EXPLAIN, &f), 0);
                json_t *j = cmn_fee_to_json(t, &f);
                char *tree = cmn_json_dump(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
                json_decref(j);
                cmn_buf_t b;
                cmn_buf_init(&b, 1 << 20);
                assert_int_equal(cmn_fee_explain_json(t, &f, &b), 0);
                assert_non_null(tree);
                assert_non_null(b.base);
                assert_string_equal(b.base, tree);
                assert_int_equal(b.len, strlen(tree));
                cmn_free(tree);
                cmn_buf_dispose(&b);
                cmn_fee_dispose(&f);
                (*checked)++;
            }
        }
    }
}

static void test_explanation_json_text_matches_tree(void **state)
{
    (void)state;
    static const char *const spec_classes[] = {NULL, "new_energy", "large", "unknown"};
    static const char *const odd_classes[] = {NULL, "ev_1"};
    static const char *const none[] = {NULL};
    int checked = 0;
    cmn_tariff_t *t = load(spec_example);
    explain_both_ways(t, spec_classes, 4, "2026-11-27T00:00:00+08:00", &checked);
    cmn_tariff_free(t);
    t = load(odd_names);
    explain_both_ways(t, odd_classes, 2, "2026-11-27T00:00:00+08:00", &checked);
    cmn_tariff_free(t);
    t = load(berlin_capped);
    explain_both_ways(t, none, 1, "2026-03-28T00:00:00+01:00", &checked);
    explain_both_ways(t, none, 1, "2026-10-24T00:00:00+02:00", &checked);
    cmn_tariff_free(t);
    assert_true(checked > 4000);

    /* A band name that is not UTF-8 cannot be written; the buffer is left as it was. */
    t = load(spec_example);
    cmn_fee_t f;
    assert_int_equal(cmn_tariff_fee(t, NULL, at("2026-11-27T18:10:00+08:00"),
                                    at("2026-11-28T10:05:00+08:00"), CMN_FEE_EXPLAIN, &f),
                     0);
    cmn_tariff_rules_t bad = *f.rules;
    cmn_band_t bands[8];
    memcpy(bands, bad.bands, (size_t)bad.nbands * sizeof bands[0]);
    char name[] = "n\xff";
    for (int i = 0; i < bad.nbands; i++)
        bands[i].name = name;
    bad.bands = bands;
    f.rules = &bad;
    cmn_buf_t b;
    cmn_buf_init(&b, 1 << 20);
    assert_int_equal(cmn_buf_puts(&b, "kept"), 0);
    assert_int_equal(cmn_fee_explain_json(t, &f, &b), CMN_EINVAL);
    assert_string_equal(b.base, "kept");
    cmn_buf_dispose(&b);
    cmn_fee_dispose(&f);
    cmn_tariff_free(t);
}

/* The writer's pieces against jansson's own dump of the same values. */
static void test_json_put_matches_jansson(void **state)
{
    (void)state;
    static const char *const strings[] = {
        "", "plain ASCII ~!@#$%^&*()_+", "a/b", "q\"uote", "back\\slash",
        "tab\tnl\ncr\r\x01\x1f\x7f", "\xe4\xba\xac" "A12345 \xe5\x85\x88\xe7\xa6\xbb\xe5\x9c\xba"};
    static const long long ints[] = {0, 1, -1, 9, 10, -10, 123456789, 9223372036854775807LL,
                                     -9223372036854775807LL - 1};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        json_t *v = json_string(strings[i]);
        char *want = cmn_json_dump(v, JSON_ENCODE_ANY | JSON_COMPACT);
        json_decref(v);
        cmn_buf_t b;
        cmn_buf_init(&b, 1024);
        assert_int_equal(cmn_json_put_string(&b, strings[i], strlen(strings[i])), 0);
        assert_string_equal(b.base, want);
        cmn_free(want);
        cmn_buf_dispose(&b);
    }
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_integer(ints[i]);
        char *want = cmn_json_dump(v, JSON_ENCODE_ANY | JSON_COMPACT);
        json_decref(v);
        cmn_buf_t b;
        cmn_buf_init(&b, 1024);
        assert_int_equal(cmn_json_put_int(&b, ints[i]), 0);
        assert_string_equal(b.base, want);
        cmn_free(want);
        cmn_buf_dispose(&b);
    }
    cmn_buf_t b;
    cmn_buf_init(&b, 1024);
    assert_int_equal(cmn_json_put_string(&b, "\xc3\x28", 2), CMN_EINVAL);
    assert_null(b.base);
    cmn_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_period),
        cmocka_unit_test(test_explanation_json_text_matches_tree),
        cmocka_unit_test(test_json_put_matches_jansson),
        cmocka_unit_test(test_free_deducted),
        cmocka_unit_test(test_first_period_and_units),
        cmocka_unit_test(test_unit_runs_into_next_band),
        cmocka_unit_test(test_night_cap_and_first_period_at_night),
        cmocka_unit_test(test_occurrences_of_a_wrapping_band),
        cmocka_unit_test(test_cap_24h_windows),
        cmocka_unit_test(test_band_cap_reached_stays_reached_across_windows),
        cmocka_unit_test(test_class_overrides),
        cmocka_unit_test(test_null_removes_inherited_fields),
        cmocka_unit_test(test_discount_rounds_half_up),
        cmocka_unit_test(test_all_day_band_with_offset_start),
        cmocka_unit_test(test_dst_spring_forward),
        cmocka_unit_test(test_dst_fall_back),
        cmocka_unit_test(test_dst_band_starting_in_repeated_hour),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_version_is_content_hash),
        cmocka_unit_test(test_refused_files),
        cmocka_unit_test(test_explanation),
    };
    return cmocka_run_group_tests_name("tariff", tests, NULL, NULL);
}
