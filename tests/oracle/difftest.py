#!/usr/bin/env python3
"""Differential test: parkctl's fee computation against the Python oracle.

    python3 difftest.py --parkctl PATH [--cases N] [--seed S] [--workers W]

Generates N random but valid tariffs and stays, runs
    PATH fee --tariff FILE --class CLASS --entry T --exit T --json
for each, reads the integer "amount" from the JSON output and compares it with
tariff_oracle.fee().  Stops at the first mismatch (prints the tariff, class,
entry, exit, both amounts and the oracle's unit breakdown; exit status 1).
Otherwise prints "N cases agree" and exits 0.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tariff_oracle as O  # noqa: E402

DAY = 86400
ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]
RANGE_START = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp())
RANGE_END = int(datetime(2028, 1, 1, tzinfo=timezone.utc).timestamp())
MAX_STAY = 10 * DAY
CLASS_NAMES = ["small", "large", "new_energy", "truck", "motorcycle"]
# minutes of the day worth hitting: midnight, DST change times (NY/Berlin 01:00-03:00,
# Lord Howe 01:30/02:00/02:30), classic day/night boundaries
INTERESTING_MIN = [0, 1, 59, 60, 90, 119, 120, 121, 150, 179, 180, 181, 420, 480, 1080, 1200, 1320, 1439]


# --------------------------------------------------------------------------
# DST transitions (found by scanning, refined to the second)
# --------------------------------------------------------------------------

def _offset(tz, t):
    return O._wall(tz, t) - t


def transitions(tzname):
    tz = O._zone(tzname)
    out = []
    step = 6 * 3600
    t = RANGE_START - DAY
    prev = _offset(tz, t)
    while t < RANGE_END + DAY:
        n = t + step
        o = _offset(tz, n)
        if o != prev:
            lo, hi = t, n               # offset(lo) == prev, offset(hi) != prev
            while lo + 1 < hi:
                mid = (lo + hi) // 2
                if _offset(tz, mid) == prev:
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
            prev = o
        t = n
    return out


TRANSITIONS = {z: transitions(z) for z in ZONES}


# --------------------------------------------------------------------------
# generators
# --------------------------------------------------------------------------

def hhmm(m):
    return f"{m // 60:02d}:{m % 60:02d}"


def gen_minute(rng):
    r = rng.random()
    if r < 0.45:
        return rng.choice(INTERESTING_MIN)
    if r < 0.65:
        return rng.randrange(0, 24) * 60 + rng.choice([0, 30])
    return rng.randrange(0, 1440)


def gen_bands(rng, prefix):
    k = rng.choice([1, 1, 2, 2, 2, 3, 3, 4])
    bounds = set()
    while len(bounds) < k:
        bounds.add(gen_minute(rng))
    bounds = sorted(bounds)
    bands = []
    for i in range(k):
        f = bounds[i]
        t = bounds[(i + 1) % k]           # k == 1: to == from (all day); last wraps
        r = rng.random()
        if r < 0.15:
            um = rng.randrange(1, 6)
        elif r < 0.6:
            um = rng.choice([10, 15, 20, 30, 45, 60, 90, 120])
        else:
            um = rng.randrange(1, 121)
        b = {"name": f"{prefix}{i}", "from": hhmm(f), "to": hhmm(t),
             "unit_minutes": um,
             "unit_price": 0 if rng.random() < 0.08 else rng.randrange(0, 2001)}
        if rng.random() < 0.45:
            b["cap"] = 0 if rng.random() < 0.05 else rng.choice([rng.randrange(0, 3000), rng.randrange(0, 8000)])
        # vary key order too
        if rng.random() < 0.3:
            b = dict(rng.sample(list(b.items()), len(b)))
        bands.append(b)
    rng.shuffle(bands)
    return bands


def gen_first_period(rng):
    return {"minutes": rng.choice([1, 15, 30, 60, 90, 120, rng.randrange(1, 241)]),
            "price": rng.randrange(0, 3001)}


def gen_cap24(rng):
    return 0 if rng.random() < 0.05 else rng.choice([rng.randrange(0, 10000), rng.randrange(0, 40000)])


def gen_tariff(rng, idx, scalar_nulls=True):
    t = {"id": f"difftest-{idx}", "currency": rng.choice(["CNY", "EUR", "USD"]),
         "timezone": rng.choice(ZONES)}
    if rng.random() < 0.85:
        t["free_minutes"] = rng.randrange(0, 31)
    if rng.random() < 0.7:
        t["free_deducted"] = rng.random() < 0.5
    if rng.random() < 0.5:
        t["first_period"] = gen_first_period(rng)
    t["bands"] = gen_bands(rng, "b")
    if rng.random() < 0.45:
        t["cap_24h"] = gen_cap24(rng)
    if rng.random() < 0.6:
        classes = {}
        for ci, cname in enumerate(rng.sample(CLASS_NAMES, rng.randrange(1, 4))):
            ov = {}
            if rng.random() < 0.35:
                ov["free_minutes"] = (None if scalar_nulls and rng.random() < 0.15
                                      else rng.randrange(0, 31))
            if rng.random() < 0.3:
                ov["free_deducted"] = (None if scalar_nulls and rng.random() < 0.15
                                       else rng.random() < 0.5)
            if rng.random() < 0.35:
                ov["first_period"] = None if rng.random() < 0.4 else gen_first_period(rng)
            if rng.random() < 0.35:
                ov["bands"] = gen_bands(rng, f"c{ci}_")
            if rng.random() < 0.35:
                ov["cap_24h"] = None if rng.random() < 0.4 else gen_cap24(rng)
            if rng.random() < 0.5:
                ov["discount_percent"] = (None if scalar_nulls and rng.random() < 0.1
                                          else rng.choice([0, 50, 50, 100, rng.randrange(0, 101), rng.randrange(0, 101),
                                                      rng.randrange(0, 101)]))
            classes[cname] = ov
        t["classes"] = classes
    return t


def local_instant(tzname, day, minute, rng):
    """An instant near local `day`@`minute` (the first instant reaching it)."""
    return O._begin(tzname, day, minute)


def band_boundaries(eff):
    return sorted({O._hhmm(b["from"], "") for b in eff["bands"]} |
                  {O._hhmm(b["to"], "") for b in eff["bands"]})


def jitter(rng):
    return rng.choice([0, 0, 1, -1, rng.randrange(-120, 121), rng.randrange(-3600, 3601),
                       rng.randrange(-5, 6)])


def gen_entry(rng, tariff, eff):
    tzname = tariff["timezone"]
    r = rng.random()
    trans = TRANSITIONS[tzname]
    if r < 0.30 and trans:
        tr = rng.choice(trans)
        spread = rng.choice([5, 120, 3600, 6 * 3600, 2 * DAY])
        return tr + rng.randrange(-spread, spread + 1)
    if r < 0.60:
        # near a band boundary on a random local date (dates near transitions favoured)
        if trans and rng.random() < 0.5:
            base = rng.choice(trans) + rng.randrange(-2 * DAY, 2 * DAY)
        else:
            base = rng.randrange(RANGE_START, RANGE_END)
        day = O._wall(O._zone(tzname), base) // DAY
        m = rng.choice(band_boundaries(eff))
        return local_instant(tzname, day, m, rng) + jitter(rng)
    return rng.randrange(RANGE_START, RANGE_END)


def gen_exit(rng, tariff, eff, entry):
    free = eff["free_minutes"] * 60
    r = rng.random()
    if r < 0.10:
        d = free + rng.choice([-1, 0, 1, 0, 1])
    elif r < 0.30:
        d = rng.randrange(0, 2 * 3600)
    elif r < 0.55:
        d = rng.randrange(0, DAY)
    elif r < 0.72:
        d = rng.randrange(0, MAX_STAY + 1)
    elif r < 0.82:
        # multiples of 24 h (window boundaries) or of a unit length, +-1 s
        base = rng.choice([DAY, DAY, 60 * rng.choice([b["unit_minutes"] for b in eff["bands"]])])
        d = base * rng.randrange(1, 8) + rng.choice([-1, 0, 1])
        if eff["free_deducted"]:
            d += free
    elif r < 0.92:
        # exit near a band boundary / DST transition
        tzname = tariff["timezone"]
        trans = [x for x in TRANSITIONS[tzname] if entry <= x <= entry + MAX_STAY]
        if trans and rng.random() < 0.5:
            x = rng.choice(trans) + jitter(rng)
        else:
            day = O._wall(O._zone(tzname), entry + rng.randrange(0, 3 * DAY)) // DAY
            x = O._begin(tzname, day, rng.choice(band_boundaries(eff))) + jitter(rng)
        d = x - entry
    else:
        d = rng.randrange(0, 300)
    d = max(0, min(MAX_STAY, d))
    return entry + d


def fmt_rfc3339(rng, t, tzname):
    r = rng.random()
    if r < 0.25:
        off = 0
        suffix = "Z"
    else:
        if r < 0.65:
            off = O._wall(O._zone(tzname), t) - t           # the zone's own offset at t
        elif r < 0.9:
            off = rng.randrange(-12 * 4, 14 * 4 + 1) * 900   # quarter hours, -12:00 .. +14:00
        else:
            off = rng.randrange(-(23 * 60 + 59), 23 * 60 + 60) * 60  # any valid minute offset
        if off == 0 and rng.random() < 0.5:
            suffix = "Z"
        else:
            sign = "-" if off < 0 else "+"
            a = abs(off)
            suffix = f"{sign}{a // 3600:02d}:{(a % 3600) // 60:02d}"
    local = datetime.fromtimestamp(t, timezone(timedelta(seconds=off)))
    s = local.strftime("%Y-%m-%dT%H:%M:%S") + suffix
    assert O.parse_rfc3339(s) == t, (s, t)
    return s


def gen_case(rng, idx, scalar_nulls):
    tariff = gen_tariff(rng, idx, scalar_nulls)
    O.validate(tariff)
    classes = list(tariff.get("classes", {}))
    unlisted = [c for c in CLASS_NAMES if c not in classes]
    if classes and rng.random() < 0.75:
        vclass = rng.choice(classes)
    else:
        vclass = rng.choice(unlisted)
    eff = O.resolve(tariff, vclass)
    entry = gen_entry(rng, tariff, eff)
    exit_ = gen_exit(rng, tariff, eff, entry)
    tzname = tariff["timezone"]
    return {"idx": idx, "tariff": tariff, "class": vclass, "entry": entry, "exit": exit_,
            "entry_s": fmt_rfc3339(rng, entry, tzname), "exit_s": fmt_rfc3339(rng, exit_, tzname)}


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------

def run_case(parkctl, tmpdir, case):
    path = os.path.join(tmpdir, f"tariff-{case['idx']}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(case["tariff"], f, indent=1, ensure_ascii=False)
    expected = O.fee(case["tariff"], case["class"], case["entry"], case["exit"])
    cmd = [parkctl, "fee", "--tariff", path, "--class", case["class"],
           "--entry", case["entry_s"], "--exit", case["exit_s"], "--json"]
    got = None
    err = None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            err = f"exit status {p.returncode}; stderr: {p.stderr.strip()[:2000]}; stdout: {p.stdout.strip()[:2000]}"
        else:
            try:
                out = json.loads(p.stdout)
                amt = out["amount"]
                if not (isinstance(amt, int) and not isinstance(amt, bool)):
                    err = f"'amount' is not an integer: {amt!r}"
                else:
                    got = amt
            except (ValueError, KeyError, TypeError) as e:
                err = f"cannot read JSON 'amount' ({e}); stdout: {p.stdout.strip()[:2000]}"
    except (OSError, subprocess.TimeoutExpired) as e:
        err = f"cannot run parkctl: {e}"
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return case["idx"], expected, got, err, cmd


def report(case, expected, got, err, cmd):
    print("MISMATCH" if err is None else "FAILURE", f"in case {case['idx']}")
    print("tariff:")
    print(json.dumps(case["tariff"], indent=2, ensure_ascii=False))
    tz = case["tariff"]["timezone"]
    for k in ("entry", "exit"):
        local = datetime.fromtimestamp(case[k], O._zone(tz)).isoformat()
        print(f"{k}: {case[k + '_s']}  (unix {case[k]}, {tz} {local})")
    print(f"class: {case['class']}")
    print(f"stay: {case['exit'] - case['entry']} s")
    print("command:", " ".join(cmd[:3]), "<tariff file>", " ".join(cmd[4:]))
    print(f"oracle amount: {expected}")
    print(f"parkctl amount: {got}" if err is None else f"parkctl error: {err}")
    ex = O.explain(case["tariff"], case["class"], case["entry"], case["exit"])
    print("oracle explanation:")
    for u in ex["units"][:200]:
        local = datetime.fromtimestamp(u["start"], O._zone(tz)).isoformat()
        print(f"  {local} band={u['band']}{' FP' if u['first_period'] else ''} len={u['length']}s "
              f"price={u['price']} after_band_cap={u['after_band_cap']} occ={u.get('occurrence')} "
              f"window={u['window']} charged={u['charged']}")
    if len(ex["units"]) > 200:
        print(f"  ... {len(ex['units']) - 200} more units")
    print(f"  gross={ex['gross']} discount={ex['discount_percent']}% amount={ex['amount']}"
          + (f" ({ex['reason']})" if "reason" in ex else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description="differential test of parkctl fee against the oracle")
    ap.add_argument("--parkctl", required=True)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-scalar-nulls", action="store_true",
                    help="only use null for first_period/cap_24h overrides "
                         "(not free_minutes/free_deducted/discount_percent)")
    ap.add_argument("--keep-going", action="store_true", help="count all mismatches instead of stopping")
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    print(f"seed {seed}", flush=True)
    parkctl = os.path.abspath(a.parkctl) if os.sep in a.parkctl else (shutil.which(a.parkctl) or a.parkctl)
    rng = random.Random(seed)
    cases = [gen_case(rng, i, not a.no_scalar_nulls) for i in range(a.cases)]
    bad = 0
    tmpdir = tempfile.mkdtemp(prefix="difftest-")
    try:
        with cf.ProcessPoolExecutor(max_workers=a.workers) as ex:
            futs = ex.map(run_case, [parkctl] * len(cases), [tmpdir] * len(cases), cases,
                          chunksize=16)
            for idx, expected, got, err, cmd in futs:
                if err is not None or got != expected:
                    bad += 1
                    report(cases[idx], expected, got, err, cmd)
                    if not a.keep_going:
                        ex.shutdown(wait=True, cancel_futures=True)
                        return 1
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    if bad:
        print(f"{bad} of {len(cases)} cases disagree (seed {seed})")
        return 1
    print(f"{len(cases)} cases agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
