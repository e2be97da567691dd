"""Hand-computed cases for the tariff oracle itself.

Run:  cd tests/oracle && python3 -m unittest test_oracle_self
"""
import copy
import os
import sys
import unittest
from datetime import datetime, timezone, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tariff_oracle as O  # noqa: E402

H = 3600
M = 60

# The example tariff of the spec, verbatim.
EXAMPLE = {
    "id": "hz-core-2024",
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "free_minutes": 15,
    "free_deducted": False,
    "first_period": {"minutes": 60, "price": 1000},
    "bands": [
        {"name": "day", "from": "08:00", "to": "20:00", "unit_minutes": 30, "unit_price": 300},
        {"name": "night", "from": "20:00", "to": "08:00", "unit_minutes": 60, "unit_price": 100, "cap": 500},
    ],
    "cap_24h": 6000,
    "classes": {
        "new_energy": {"free_minutes": 60, "discount_percent": 50},
        "large": {"bands": [{"name": "all", "from": "00:00", "to": "00:00", "unit_minutes": 60, "unit_price": 1200}]},
    },
}


def ts(s):
    """RFC 3339 -> unix seconds."""
    return O.parse_rfc3339(s)


def sh(y, mo, d, h=0, mi=0, s=0):
    """Asia/Shanghai (UTC+8, no DST) wall time -> unix seconds."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=timezone(timedelta(hours=8))).timestamp())


class ExampleTariff(unittest.TestCase):
    def setUp(self):
        O.validate(EXAMPLE)

    def f(self, cls, e, x):
        return O.fee(EXAMPLE, cls, e, x)

    def test_free_period_exact_to_the_second(self):
        # D = 15 min = free_minutes -> 0
        self.assertEqual(self.f("small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 10, 15)), 0)
        # D = 15 min + 1 s -> charged from entry: first period 10:00-11:00 = 1000
        self.assertEqual(self.f("small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 10, 15, 1)), 1000)
        # zero-length stay
        self.assertEqual(self.f("small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 10)), 0)

    def test_small_short_day_stay(self):
        # 10:00 -> 12:10: FP 10:00-11:00 1000 + day units 11:00, 11:30, 12:00 (cut by exit, charged in full)
        # = 1000 + 3*300 = 1900
        self.assertEqual(self.f("small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 12, 10)), 1900)
        # exit exactly at a unit boundary creates no extra unit: 10:00 -> 12:00 = 1000 + 2*300 = 1600
        self.assertEqual(self.f("small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 12)), 1600)

    def test_unit_keeps_length_into_next_band(self):
        # 18:00 -> 22:00: FP 18:00-19:00 1000; day 19:00, 19:30 (2*300=600);
        # 20:00 night, 21:00 night (2*100=200) -> 1800
        self.assertEqual(self.f("small", sh(2026, 6, 1, 18), sh(2026, 6, 1, 22)), 1800)
        # 18:30 -> 22:00: FP 18:30-19:30 1000; day 19:30 (ends 20:00) 300; night 20:00, 21:00 -> 1500
        self.assertEqual(self.f("small", sh(2026, 6, 1, 18, 30), sh(2026, 6, 1, 22)), 1500)
        # 19:10 -> 22:00: FP 19:10-20:10 (day band start) 1000; night unit at 20:10, 21:10 -> 1200
        self.assertEqual(self.f("small", sh(2026, 6, 1, 19, 10), sh(2026, 6, 1, 22)), 1200)
        # 07:50 -> 10:00, first_period removed via a class: night unit 07:50-08:50 (100, runs into day),
        # day units 08:50, 09:20, 09:50 (3*300) -> 1000
        t = copy.deepcopy(EXAMPLE)
        t["classes"]["nofp"] = {"first_period": None}
        self.assertEqual(O.fee(t, "nofp", sh(2026, 6, 1, 7, 50), sh(2026, 6, 1, 10)), 1000)

    def test_new_energy(self):
        # free 60: D = 60 min -> 0; D = 60 min + 1 s -> charged from entry: FP 10:00-11:00 1000
        # + day unit 11:00 (cut after 1 s, charged in full) 300 = 1300, 50 % -> 650
        self.assertEqual(self.f("new_energy", sh(2026, 6, 1, 10), sh(2026, 6, 1, 11)), 0)
        self.assertEqual(self.f("new_energy", sh(2026, 6, 1, 10), sh(2026, 6, 1, 11, 0, 1)), 650)
        # 10:00 -> 12:10: 1900 (as small; free not deducted) * 50 % = 950
        self.assertEqual(self.f("new_energy", sh(2026, 6, 1, 10), sh(2026, 6, 1, 12, 10)), 950)

    def test_large_all_day_band(self):
        # large keeps first_period, free 15, cap_24h 6000; its own band: 60 min 1200 all day.
        # 10:00 -> 13:00: FP 1000 + 11:00, 12:00 (2*1200) = 3400
        self.assertEqual(self.f("large", sh(2026, 6, 1, 10), sh(2026, 6, 1, 13)), 3400)
        # 2 days + 1 s from 10:00: window 0: 1000 + 23*1200 -> capped 6000;
        # window 1: 24*1200 -> 6000; window 2: unit at 10:00 day 3 = 1200 -> 13200
        self.assertEqual(self.f("large", sh(2026, 6, 1, 10), sh(2026, 6, 3, 10, 0, 1)), 13200)

    def test_night_band_cap(self):
        # first_period starting at night is capped by the night cap:
        # 21:00 -> 07:00: FP 21:00 (night, 1000 -> cut to 500), then 9 night units at 0 -> 500
        self.assertEqual(self.f("small", sh(2026, 6, 1, 21), sh(2026, 6, 2, 7)), 500)
        t = copy.deepcopy(EXAMPLE)
        t["classes"]["nofp"] = {"first_period": None}
        # no first period; 19:00 -> 23:30: day 19:00, 19:30 (600); night 20,21,22,23 (400 <= 500) -> 1000
        self.assertEqual(O.fee(t, "nofp", sh(2026, 6, 1, 19), sh(2026, 6, 1, 23, 30)), 1000)
        # 19:00 -> 02:00 next day: night 20,21,22,23,00,01 = 600 -> cap 500 (one occurrence
        # across midnight); total 600 + 500 = 1100
        self.assertEqual(O.fee(t, "nofp", sh(2026, 6, 1, 19), sh(2026, 6, 2, 2)), 1100)
        # two nights are two occurrences: 20:00 day1 -> 08:00 day3 with a 0-priced day band
        t["classes"]["nofp"]["bands"] = [
            {"name": "d", "from": "08:00", "to": "20:00", "unit_minutes": 60, "unit_price": 0},
            {"name": "n", "from": "20:00", "to": "08:00", "unit_minutes": 60, "unit_price": 100, "cap": 500}]
        # 12 night units per night -> 500 + 500 = 1000 (cap_24h 6000 not reached)
        self.assertEqual(O.fee(t, "nofp", sh(2026, 6, 1, 20), sh(2026, 6, 3, 8)), 1000)

    def test_24h_cap(self):
        # 08:00 -> 08:00 next day (exactly 24 h): FP 1000; day 09:00..19:30 = 22*300 = 6600;
        # night 12*100 -> cap 500; sum 8100, all in window 0 -> 6000
        self.assertEqual(self.f("small", sh(2026, 6, 1, 8), sh(2026, 6, 2, 8)), 6000)
        # 48 h + 1 s: window 0 = 6000; window 1 (from 08:00 day 2): 24 day units 7200 -> 6000;
        # window 2: unit at 08:00 day 3 -> 300; total 12300
        self.assertEqual(self.f("small", sh(2026, 6, 1, 8), sh(2026, 6, 3, 8, 0, 1)), 12300)
        # new_energy over the same stay: 12300 * 50 % = 6150
        self.assertEqual(self.f("new_energy", sh(2026, 6, 1, 8), sh(2026, 6, 3, 8, 0, 1)), 6150)

    def test_band_cap_reached_stays_reached_across_windows(self):
        t = {"id": "x", "currency": "EUR", "timezone": "UTC",
             "bands": [
                 {"name": "day", "from": "08:00", "to": "20:00", "unit_minutes": 60, "unit_price": 1000},
                 {"name": "night", "from": "20:00", "to": "08:00", "unit_minutes": 60, "unit_price": 100, "cap": 500}],
             "cap_24h": 1200}
        O.validate(t)
        e = ts("2026-06-01T02:00:00Z")
        x = ts("2026-06-02T08:30:00Z")
        # window 0 [06-01 02:00, 06-02 02:00): night 02..07 (6*100 -> band cap 500), 24h sum 500;
        #   day 08:00 1000 -> only 700 left; rest of the day 0; night of 06-01 (20..01):
        #   band cap consumed by 20,21,22,23,00 (500) -> 0 in window 0 anyway.
        # window 1 [06-02 02:00, ...): night 02..07 belong to the 06-01 occurrence whose cap is
        #   reached -> 0; day 08:00 (cut at 08:30) -> 1000.   Total 1200 + 1000 = 2200
        self.assertEqual(O.fee(t, "any", e, x), 2200)

    def test_free_deducted(self):
        t = copy.deepcopy(EXAMPLE)
        t["free_deducted"] = True
        # D = 15 min -> 0; D = 15 min + 1 s -> S = 10:15, FP 10:15-11:15 = 1000
        self.assertEqual(O.fee(t, "small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 10, 15)), 0)
        self.assertEqual(O.fee(t, "small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 10, 15, 1)), 1000)
        # 10:00 -> 12:16: S = 10:15; FP to 11:15; day 11:15, 11:45, 12:15 (cut) -> 1900
        self.assertEqual(O.fee(t, "small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 12, 16)), 1900)
        # 24h windows count from S = 08:15: 08:00 -> 08:15:01 next day.
        # window 0 [08:15, 08:15+24h): FP 1000 + day 09:15..19:45 (22*300) + night (cap 500) -> 6000;
        # window 1: day unit at 08:15 on day 2 (cut by exit) -> 300.  Total 6300
        self.assertEqual(O.fee(t, "small", sh(2026, 6, 1, 8), sh(2026, 6, 2, 8, 15, 1)), 6300)

    def test_discount_half_up(self):
        t = {"id": "x", "currency": "CNY", "timezone": "Asia/Shanghai",
             "bands": [{"name": "all", "from": "00:00", "to": "00:00", "unit_minutes": 60, "unit_price": 301}],
             "classes": {"half": {"discount_percent": 50}, "d51": {"discount_percent": 51},
                         "full": {"discount_percent": 100}, "none": {"discount_percent": 0}}}
        O.validate(t)
        e = sh(2026, 6, 1, 10)
        # one unit 301 * 50 / 100 = 150.5 -> 151 (half up)
        self.assertEqual(O.fee(t, "half", e, e + 1), 151)
        # three units 903 * 50 / 100 = 451.5 -> 452
        self.assertEqual(O.fee(t, "half", e, e + 2 * H + 1), 452)
        # 301 * 49 / 100 = 147.49 -> 147
        self.assertEqual(O.fee(t, "d51", e, e + 1), 147)
        self.assertEqual(O.fee(t, "full", e, e + 1), 0)
        self.assertEqual(O.fee(t, "none", e, e + 1), 301)

    def test_exit_before_entry(self):
        with self.assertRaises(ValueError):
            O.fee(EXAMPLE, "small", sh(2026, 6, 1, 10), sh(2026, 6, 1, 10) - 1)


BERLIN = {
    "id": "ber", "currency": "EUR", "timezone": "Europe/Berlin",
    "bands": [
        {"name": "day", "from": "08:00", "to": "20:00", "unit_minutes": 60, "unit_price": 300},
        {"name": "night", "from": "20:00", "to": "08:00", "unit_minutes": 60, "unit_price": 100},
    ],
    "classes": {
        "capped": {"bands": [
            {"name": "day", "from": "08:00", "to": "20:00", "unit_minutes": 60, "unit_price": 300},
            {"name": "night", "from": "20:00", "to": "08:00", "unit_minutes": 60, "unit_price": 100, "cap": 1250}]},
    },
}


class BerlinDST(unittest.TestCase):
    def setUp(self):
        O.validate(BERLIN)

    def test_spring_forward_night_is_23h(self):
        # 2026-03-29 02:00 CET -> 03:00 CEST.  20:00 CET (19:00Z) -> 08:00 CEST (06:00Z) = 11 h elapsed.
        # Units 20,21,22,23,00,01 CET then 03,04,05,06,07 CEST = 11 night units * 100 = 1100
        e = ts("2026-03-28T20:00:00+01:00")
        x = ts("2026-03-29T08:00:00+02:00")
        self.assertEqual(x - e, 11 * H)
        self.assertEqual(O.fee(BERLIN, "small", e, x), 1100)
        # one second later a day unit starts at 08:00 CEST -> +300
        self.assertEqual(O.fee(BERLIN, "small", e, x + 1), 1400)

    def test_fall_back_night_is_25h(self):
        # 2026-10-25 03:00 CEST -> 02:00 CET.  20:00 CEST (18:00Z) -> 08:00 CET (07:00Z) = 13 h.
        # 13 night units * 100 = 1300 (02:00-03:00 is charged twice, it happened twice)
        e = ts("2026-10-24T20:00:00+02:00")
        x = ts("2026-10-25T08:00:00+01:00")
        self.assertEqual(x - e, 13 * H)
        self.assertEqual(O.fee(BERLIN, "small", e, x), 1300)
        # with a night cap of 1250 the repeated hour is the same occurrence: 13*100 -> 1250
        self.assertEqual(O.fee(BERLIN, "capped", e, x), 1250)

    def test_units_are_elapsed_time_across_transition(self):
        # 90-minute units from 01:00 CET on spring-forward day: 01:00 CET (00:00Z) night,
        # next at 01:30Z = 03:30 CEST night, next 03:00Z = 05:00 CEST night -> exit 03:00:01Z -> 3*100
        t = copy.deepcopy(BERLIN)
        t["bands"][1]["unit_minutes"] = 90
        self.assertEqual(O.fee(t, "small", ts("2026-03-29T00:00:00Z"), ts("2026-03-29T03:00:01Z")), 300)
        # fall back: 02:30 CEST (00:30Z) + 90 min = 02:00Z = 03:00 CET; + 90 min = 03:30Z = exit,
        # so no third unit -> 2*100
        self.assertEqual(O.fee(t, "small", ts("2026-10-25T00:30:00Z"), ts("2026-10-25T03:30:00Z")), 200)

    def test_band_starting_in_skipped_time(self):
        # Band "a" from 02:30 (skipped on 2026-03-29 in Berlin) to 12:00, cap 250; "b" the rest, cap 15.
        t = {"id": "g", "currency": "EUR", "timezone": "Europe/Berlin",
             "bands": [
                 {"name": "a", "from": "02:30", "to": "12:00", "unit_minutes": 60, "unit_price": 100, "cap": 250},
                 {"name": "b", "from": "12:00", "to": "02:30", "unit_minutes": 60, "unit_price": 10, "cap": 15}]}
        O.validate(t)
        # 2026-03-28 23:30 CET (22:30Z) -> 2026-03-29 06:00Z (08:00 CEST):
        # b: 23:30, 00:30 CET = 10 + 5 (cap 15, occurrence b/2026-03-28);
        # 01:30 CET (00:30Z) is b too -> 0; next 01:30Z = 03:30 CEST -> a (occurrence a/2026-03-29,
        # began at the transition 01:00Z): 03:30, 04:30, 05:30, 06:30, 07:30 -> 100+100+50+0+0 = 250
        # total 265
        self.assertEqual(O.fee(t, "x", ts("2026-03-28T22:30:00Z"), ts("2026-03-29T06:00:00Z")), 265)

    def test_repeated_hour_same_occurrence_when_other_band_intervenes(self):
        # On 2026-10-25, band "a" [00:00, 02:30) runs 00:00-02:30 CEST and again 02:00-02:30 CET;
        # the repeated half hour is still occurrence a/2026-10-25 (cap 150 shared).
        t = {"id": "r", "currency": "EUR", "timezone": "Europe/Berlin",
             "bands": [
                 {"name": "a", "from": "00:00", "to": "02:30", "unit_minutes": 30, "unit_price": 100, "cap": 150},
                 {"name": "b", "from": "02:30", "to": "00:00", "unit_minutes": 30, "unit_price": 1}]}
        O.validate(t)
        # units from 01:00 CEST (23:00Z): a 01:00, 01:30, 02:00 (100, 50, 0); b 02:30 CEST (1);
        # a 02:00 CET (01:00Z) -> 0 (same occurrence); b 02:30 CET (1)  -> 152
        self.assertEqual(O.fee(t, "x", ts("2026-10-24T23:00:00Z"), ts("2026-10-25T01:30:01Z")), 152)

    def test_band_resumes_previous_days_occurrence_in_repeated_hour(self):
        # A [02:30, 05:00) 30 min 100 cap 250; B [05:00, 02:30) 30 min 10 cap 25.
        # 2026-10-25: 03:00 CEST -> 02:00 CET.  At 01:00Z (02:00 CET) the wall clock is back in B,
        # whose latest beginning <= t is 05:00 on 10-24: occurrence B/2026-10-24 continues.
        t = {"id": "r2", "currency": "EUR", "timezone": "Europe/Berlin",
             "bands": [
                 {"name": "A", "from": "02:30", "to": "05:00", "unit_minutes": 30, "unit_price": 100, "cap": 250},
                 {"name": "B", "from": "05:00", "to": "02:30", "unit_minutes": 30, "unit_price": 10, "cap": 25}]}
        O.validate(t)
        # 23:00Z (01:00 CEST) B/24 10; 23:30Z B/24 10; 00:00Z (02:00 CEST) B/24 5 (cap 25 reached);
        # 00:30Z (02:30 CEST) A/25 100; 01:00Z (02:00 CET) B/24 0; 01:30Z (02:30 CET) A/25 100;
        # 02:00Z (03:00 CET) A/25 50 (cap 250); 02:30Z A/25 0.   Total 275
        self.assertEqual(O.fee(t, "x", ts("2026-10-24T23:00:00Z"), ts("2026-10-25T02:30:01Z")), 275)

    def test_skipped_band_splits_neighbour_into_two_occurrences(self):
        # X [02:15, 02:45) is entirely skipped on 2026-03-29 (02:00 CET -> 03:00 CEST), so Y
        # [02:45, 02:15) is in effect without interruption; but Y's 2026-03-29 occurrence begins at
        # the transition instant (01:00Z: the first instant whose wall clock reaches 02:45), so
        # the night is two occurrences of Y (reading of "named by the band and the local date").
        t = {"id": "s", "currency": "EUR", "timezone": "Europe/Berlin",
             "bands": [
                 {"name": "X", "from": "02:15", "to": "02:45", "unit_minutes": 60, "unit_price": 1000},
                 {"name": "Y", "from": "02:45", "to": "02:15", "unit_minutes": 30, "unit_price": 100, "cap": 150}]}
        O.validate(t)
        # 00:00Z (01:00 CET) Y/28 100; 00:30Z Y/28 50 (cap); 01:00Z (03:00 CEST) Y/29 100;
        # 01:30Z Y/29 50; 02:00Z Y/29 0.   Total 300
        self.assertEqual(O.fee(t, "x", ts("2026-03-29T00:00:00Z"), ts("2026-03-29T02:00:01Z")), 300)


class OtherZones(unittest.TestCase):
    def test_lord_howe_half_hour_fall_back(self):
        # Australia/Lord_Howe: +11:00 (DST) -> +10:30 at 2026-04-05 02:00 -> 01:30.
        # 20:00+11:00 -> 08:00+10:30 = 12.5 h -> 13 hourly units (last cut short) * 100 = 1300
        t = {"id": "lh", "currency": "USD", "timezone": "Australia/Lord_Howe",
             "bands": [{"name": "n", "from": "20:00", "to": "08:00", "unit_minutes": 60, "unit_price": 100},
                       {"name": "d", "from": "08:00", "to": "20:00", "unit_minutes": 60, "unit_price": 300}]}
        O.validate(t)
        e = ts("2026-04-04T20:00:00+11:00")
        x = ts("2026-04-05T08:00:00+10:30")
        self.assertEqual(x - e, 12 * H + 30 * M)
        self.assertEqual(O.fee(t, "c", e, x), 1300)

    def test_begin_matches_brute_force(self):
        # begin(day, from) == first instant whose wall clock is >= day@from, by scanning.
        cases = [("Europe/Berlin", "2026-03-29"), ("Europe/Berlin", "2026-10-25"),
                 ("America/New_York", "2026-03-08"), ("America/New_York", "2026-11-01"),
                 ("Australia/Lord_Howe", "2026-04-05"), ("Australia/Lord_Howe", "2026-10-04")]
        for tzname, date in cases:
            tz = O._zone(tzname)
            day = int(datetime.fromisoformat(date + "T00:00:00+00:00").timestamp()) // 86400
            for from_min in (0, 59, 60, 90, 105, 119, 120, 135, 150, 179, 180, 181, 1439):
                target = day * 86400 + from_min * 60
                t = target - 16 * H
                while O._wall(tz, t) < target:
                    t += 60
                # refine to the second
                s = t - 60
                while O._wall(tz, s) < target:
                    s += 1
                self.assertEqual(O._begin(tzname, day, from_min), s, (tzname, date, from_min))


class Validation(unittest.TestCase):
    def bad(self, mutate):
        t = copy.deepcopy(EXAMPLE)
        mutate(t)
        with self.assertRaises(ValueError):
            O.validate(t)

    def test_example_is_valid(self):
        O.validate(EXAMPLE)

    def test_refused(self):
        self.bad(lambda t: t["bands"][0].update({"to": "21:00"}))           # overlap
        self.bad(lambda t: t["bands"][0].update({"to": "19:00"}))           # gap
        self.bad(lambda t: t["bands"].pop())                                # gap
        self.bad(lambda t: t["bands"].append(
            {"name": "x", "from": "00:00", "to": "00:00", "unit_minutes": 1, "unit_price": 1}))
        self.bad(lambda t: t["bands"][0].update({"unit_price": -1}))        # negative
        self.bad(lambda t: t["bands"][1].update({"cap": -5}))
        self.bad(lambda t: t.update({"free_minutes": -1}))
        self.bad(lambda t: t.update({"cap_24h": -1}))
        self.bad(lambda t: t["bands"][0].update({"unit_minutes": 0}))       # < 1
        self.bad(lambda t: t.update({"first_period": {"minutes": 0, "price": 5}}))
        self.bad(lambda t: t["classes"]["new_energy"].update({"discount_percent": 101}))
        self.bad(lambda t: t["classes"]["new_energy"].update({"discount_percent": 12.5}))
        self.bad(lambda t: t["classes"]["new_energy"].update({"discount_percent": -1}))
        self.bad(lambda t: t.update({"discount_percent": 10}))              # only in classes
        self.bad(lambda t: t.update({"colour": "red"}))                     # unknown field
        self.bad(lambda t: t["bands"][0].update({"colour": "red"}))
        self.bad(lambda t: t["classes"]["large"].update({"timezone": "UTC"}))
        self.bad(lambda t: t.update({"timezone": "Mars/Olympus_Mons"}))     # unknown tz
        self.bad(lambda t: t["bands"][1].update({"name": "day"}))           # duplicate name
        self.bad(lambda t: t["bands"][0].update({"from": "24:00"}))
        self.bad(lambda t: t.pop("bands"))
        self.bad(lambda t: t["classes"]["large"].update({"bands": None}))

    def test_null_override_accepted(self):
        t = copy.deepcopy(EXAMPLE)
        t["classes"]["x"] = {"first_period": None, "cap_24h": None}
        O.validate(t)
        # class x: no first period, no 24h cap. 08:00 -> 08:00+24h: 24 day units 7200 + night 500
        self.assertEqual(O.fee(t, "x", sh(2026, 6, 1, 8), sh(2026, 6, 2, 8)), 7700)


if __name__ == "__main__":
    unittest.main()
