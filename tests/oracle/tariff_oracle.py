#!/usr/bin/env python3
"""Independent reference implementation ("oracle") of the parking tariff spec.

Source of truth: shared/spec/tariff.md.  Python 3.11 standard library only;
money is integers only (minor currency unit), time is integer unix seconds.

Public API
    validate(tariff: dict) -> None         raises ValueError for a refused file
    fee(tariff, vclass, entry, exit) -> int
    explain(tariff, vclass, entry, exit) -> dict (units, bands, caps, amount)

CLI
    python3 tariff_oracle.py --tariff FILE --class CLASS --entry RFC3339 --exit RFC3339 [--explain]

Readings of the spec taken here (see also the report that accompanies this file):
  * free period: D <= free_minutes*60 seconds -> 0 (exact to the second).
  * first_period is the first unit of [S, X); its band (for band caps) is the
    band containing S.
  * occurrence of a band containing instant t = the latest occurrence whose
    beginning is <= t, where the beginning of the occurrence of local date d is
    the first instant at which the local wall clock reaches d@from (i.e. the
    earliest instant whose wall time is >= d@from: the earlier of two repeated
    instants, or the transition instant when d@from is skipped).
  * null in a class override removes the field (falls back to the spec default:
    free_minutes 0, free_deducted false, no first_period, no cap_24h, no
    discount).  `"bands": null` would remove a required field: refused.
    null anywhere else (top level, inside bands / first_period) is refused.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["validate", "fee", "explain", "resolve", "parse_rfc3339"]

DAY = 86400

TOP_FIELDS = {"id", "currency", "timezone", "free_minutes", "free_deducted",
              "first_period", "bands", "cap_24h", "classes"}
TOP_REQUIRED = {"id", "currency", "timezone", "bands"}
CLASS_FIELDS = {"free_minutes", "free_deducted", "first_period", "bands",
                "cap_24h", "discount_percent"}
BAND_FIELDS = {"name", "from", "to", "unit_minutes", "unit_price", "cap"}
BAND_REQUIRED = {"name", "from", "to", "unit_minutes", "unit_price"}
FP_FIELDS = {"minutes", "price"}

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

def _bad(where: str, why: str):
    raise ValueError(f"{where}: {why}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _nonneg_int(v, where):
    if not _is_int(v):
        _bad(where, "must be an integer")
    if v < 0:
        _bad(where, "must not be negative")


def _hhmm(v, where) -> int:
    if not isinstance(v, str):
        _bad(where, "must be a string HH:MM")
    m = _HHMM.match(v)
    if not m:
        _bad(where, f"not a time HH:MM: {v!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _validate_first_period(fp, where):
    if not isinstance(fp, dict):
        _bad(where, "must be an object")
    for k in fp:
        if k not in FP_FIELDS:
            _bad(f"{where}.{k}", "unknown field")
    for k in ("minutes", "price"):
        if k not in fp:
            _bad(f"{where}.{k}", "missing")
        _nonneg_int(fp[k], f"{where}.{k}")
    if fp["minutes"] < 1:
        _bad(f"{where}.minutes", "must be at least 1")


def _validate_bands(bands, where):
    if not isinstance(bands, list) or not bands:
        _bad(where, "must be a non-empty list")
    cover = [0] * 1440
    names = set()
    for i, b in enumerate(bands):
        w = f"{where}[{i}]"
        if not isinstance(b, dict):
            _bad(w, "must be an object")
        for k in b:
            if k not in BAND_FIELDS:
                _bad(f"{w}.{k}", "unknown field")
        for k in sorted(BAND_REQUIRED):
            if k not in b:
                _bad(f"{w}.{k}", "missing")
        if not isinstance(b["name"], str) or not b["name"]:
            _bad(f"{w}.name", "must be a non-empty string")
        if b["name"] in names:
            _bad(f"{w}.name", f"duplicate band name {b['name']!r}")
        names.add(b["name"])
        f = _hhmm(b["from"], f"{w}.from")
        t = _hhmm(b["to"], f"{w}.to")
        _nonneg_int(b["unit_minutes"], f"{w}.unit_minutes")
        if b["unit_minutes"] < 1:
            _bad(f"{w}.unit_minutes", "must be at least 1")
        _nonneg_int(b["unit_price"], f"{w}.unit_price")
        if "cap" in b:
            _nonneg_int(b["cap"], f"{w}.cap")
        for m in _band_minutes(f, t):
            cover[m] += 1
    for m in range(1440):
        if cover[m] != 1:
            hhmm = f"{m // 60:02d}:{m % 60:02d}"
            _bad(where, ("bands overlap at " if cover[m] > 1 else "bands leave a gap at ") + hhmm)


def _band_minutes(f: int, t: int):
    if f == t:
        return range(1440)
    if f < t:
        return range(f, t)
    return list(range(f, 1440)) + list(range(0, t))


def _validate_overridable(obj, where, is_class):
    """Fields shared by the top level and a class override."""
    for k, v in obj.items():
        w = f"{where}.{k}"
        if v is None:
            if is_class and k != "bands":
                continue                       # null removes the field
            _bad(w, "must not be null")
        if k == "free_minutes" or k == "cap_24h":
            _nonneg_int(v, w)
        elif k == "free_deducted":
            if not isinstance(v, bool):
                _bad(w, "must be true or false")
        elif k == "first_period":
            _validate_first_period(v, w)
        elif k == "bands":
            _validate_bands(v, w)
        elif k == "discount_percent":
            if not _is_int(v) or not (0 <= v <= 100):
                _bad(w, "must be an integer from 0 to 100")


def validate(tariff: dict) -> None:
    """Raise ValueError (with field and reason) if the tariff must be refused."""
    if not isinstance(tariff, dict):
        _bad("tariff", "must be a JSON object")
    for k in tariff:
        if k not in TOP_FIELDS:
            _bad(k, "unknown field")
    for k in sorted(TOP_REQUIRED):
        if k not in tariff:
            _bad(k, "missing")
    if not isinstance(tariff["id"], str) or not tariff["id"]:
        _bad("id", "must be a non-empty string")
    if not isinstance(tariff["currency"], str) or not _CURRENCY.match(tariff["currency"]):
        _bad("currency", "must be an ISO 4217 code")
    tzname = tariff["timezone"]
    if not isinstance(tzname, str) or not tzname:
        _bad("timezone", "must be a string")
    try:
        ZoneInfo(tzname)
    except Exception as e:  # ZoneInfoNotFoundError (KeyError), ValueError, ...
        _bad("timezone", f"unknown timezone {tzname!r} ({type(e).__name__})")
    _validate_overridable({k: v for k, v in tariff.items()
                           if k in CLASS_FIELDS}, "", False)
    if "classes" in tariff:
        classes = tariff["classes"]
        if not isinstance(classes, dict):
            _bad("classes", "must be an object")
        for cname, ov in classes.items():
            w = f"classes.{cname}"
            if not cname:
                _bad(w, "empty class name")
            if not isinstance(ov, dict):
                _bad(w, "must be an object")
            for k in ov:
                if k not in CLASS_FIELDS:
                    _bad(f"{w}.{k}", "unknown field")
            _validate_overridable(ov, w, True)


# --------------------------------------------------------------------------
# class overrides
# --------------------------------------------------------------------------

def resolve(tariff: dict, vclass: str) -> dict:
    """Effective parameters for a vehicle class (step 1)."""
    eff = {k: tariff[k] for k in ("free_minutes", "free_deducted", "first_period",
                                   "bands", "cap_24h") if k in tariff}
    ov = tariff.get("classes", {}).get(vclass)
    if ov is not None:
        for k, v in ov.items():
            if v is None:
                eff.pop(k, None)
            else:
                eff[k] = v
    return {
        "free_minutes": eff.get("free_minutes", 0),
        "free_deducted": eff.get("free_deducted", False),
        "first_period": eff.get("first_period"),
        "bands": eff["bands"],
        "cap_24h": eff.get("cap_24h"),
        "discount_percent": eff.get("discount_percent", 0),
    }


# --------------------------------------------------------------------------
# wall clock
# --------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _wall(tz: ZoneInfo, t: int) -> int:
    """Local wall-clock time of instant t as seconds on a naive local axis
    (wall // 86400 = local days since 1970-01-01, wall % 86400 = time of day)."""
    off = datetime.fromtimestamp(t, tz).utcoffset()
    return t + off.days * DAY + off.seconds


@lru_cache(maxsize=200000)
def _begin(tzname: str, day: int, from_min: int) -> int:
    """First instant at which the local wall clock reaches `from` on local day
    `day`: min { t : wall(t) >= day@from }.  The earlier instant if the wall
    time is repeated, the transition instant if the wall time is skipped."""
    tz = _zone(tzname)
    target = day * DAY + from_min * 60
    naive = datetime.fromtimestamp(target, timezone.utc).replace(tzinfo=None)
    u0 = int(datetime(*naive.timetuple()[:6], fold=0, tzinfo=tz).timestamp())
    if _wall(tz, u0) == target:
        # Exists; fold=0 is the earlier of two repeated instants.  Guard
        # against a fall-back landing exactly on target (earlier instant has
        # wall >= target but != target): step back while still >= target.
        lo = u0
        cand = u0 - 1
        if _wall(tz, cand) >= target:
            # Search a bounded window for the first instant with wall >= target
            # that is preceded by a smaller wall time (rare; never hit by the
            # zones in use).
            lo = _first_reaching(tz, target, u0 - 2 * DAY, u0)
        return lo
    u1 = int(datetime(*naive.timetuple()[:6], fold=1, tzinfo=tz).timestamp())
    lo, hi = min(u0, u1), max(u0, u1)
    # In the gap: wall(t) < target before the transition, > target after it.
    if not (_wall(tz, hi) >= target and _wall(tz, lo) < target):
        return _first_reaching(tz, target, lo - 2 * DAY, hi + 2 * DAY)
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if _wall(tz, mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def _first_reaching(tz, target, lo, hi):
    """Slow fallback: min t in [lo, hi] with wall(t) >= target (scan by minute
    then by second)."""
    t = lo
    while t <= hi:
        if _wall(tz, t) >= target:
            s = max(lo, t - 60)
            while _wall(tz, s) < target:
                s += 1
            return s
        t += 60
    raise AssertionError("no instant reaches target")


# --------------------------------------------------------------------------
# fee computation
# --------------------------------------------------------------------------

class _Bands:
    def __init__(self, bands):
        self.bands = bands
        self.by_minute = [0] * 1440
        self.froms = []
        for i, b in enumerate(bands):
            f = _hhmm(b["from"], "from")
            t = _hhmm(b["to"], "to")
            self.froms.append(f)
            for m in _band_minutes(f, t):
                self.by_minute[m] = i

    def at_wall(self, wall: int) -> int:
        return self.by_minute[(wall % DAY) // 60]


def _occurrence(tzname: str, tz, bands: _Bands, idx: int, t: int, wall: int):
    """Occurrence (band index, local day) of band idx containing instant t:
    the latest occurrence whose beginning is <= t."""
    d = wall // DAY
    f = bands.froms[idx]
    for dd in (d + 1, d, d - 1, d - 2):
        if _begin(tzname, dd, f) <= t:
            return (idx, dd)
    raise AssertionError("no occurrence begins before t")


def _day_str(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, timezone.utc).strftime("%Y-%m-%d")


def explain(tariff: dict, vclass: str, entry: int, exit: int) -> dict:
    if not (_is_int(entry) and _is_int(exit)):
        raise TypeError("entry and exit must be integer unix seconds")
    if exit < entry:
        raise ValueError("exit before entry")
    p = resolve(tariff, vclass)
    tzname = tariff["timezone"]
    tz = _zone(tzname)
    out = {"class": vclass, "entry": entry, "exit": exit, "units": [],
           "amount": 0, "gross": 0, "discount_percent": p["discount_percent"]}
    D = exit - entry
    free = p["free_minutes"] * 60
    if D <= free:
        out["reason"] = "free_period"
        return out
    S = entry + free if p["free_deducted"] else entry
    out["charge_start"] = S
    if S >= exit:
        out["reason"] = "empty_charged_interval"
        return out
    B = _Bands(p["bands"])

    # step 4: units
    units = []
    t = S
    fp = p["first_period"]
    if fp is not None:
        w = _wall(tz, t)
        bi = B.at_wall(w)
        units.append({"start": t, "wall": w, "band": bi, "first_period": True,
                      "length": fp["minutes"] * 60, "price": fp["price"]})
        t += fp["minutes"] * 60
    while t < exit:
        w = _wall(tz, t)
        bi = B.at_wall(w)
        b = p["bands"][bi]
        units.append({"start": t, "wall": w, "band": bi, "first_period": False,
                      "length": b["unit_minutes"] * 60, "price": b["unit_price"]})
        t += b["unit_minutes"] * 60

    # step 5: band caps per occurrence
    used = {}
    for u in units:
        b = p["bands"][u["band"]]
        u["after_band_cap"] = u["price"]
        if "cap" in b:
            occ = _occurrence(tzname, tz, B, u["band"], u["start"], u["wall"])
            u["occurrence"] = (b["name"], _day_str(occ[1]))
            s = used.get(occ, 0)
            c = min(u["price"], max(b["cap"] - s, 0))
            used[occ] = s + c
            u["after_band_cap"] = c

    # step 6: 24-hour windows from S
    cap24 = p["cap_24h"]
    wused = {}
    for u in units:
        k = (u["start"] - S) // DAY
        u["window"] = k
        c = u["after_band_cap"]
        if cap24 is not None:
            s = wused.get(k, 0)
            c = min(c, max(cap24 - s, 0))
            wused[k] = s + c
        u["charged"] = c

    # step 7
    gross = sum(u["charged"] for u in units)
    pct = p["discount_percent"]
    amount = (gross * (100 - pct) + 50) // 100
    for u in units:
        u["band"] = p["bands"][u["band"]]["name"]
        del u["wall"]
    out.update(units=units, gross=gross, amount=amount)
    return out


def fee(tariff: dict, vclass: str, entry: int, exit: int) -> int:
    """Fee in the currency's minor unit for a stay [entry, exit) (unix seconds)."""
    return explain(tariff, vclass, entry, exit)["amount"]


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(s: str) -> int:
    m = _RFC3339.match(s)
    if not m:
        raise ValueError(f"not an RFC 3339 date-time: {s!r}")
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7)
    if frac and int(frac[1:]) != 0:
        raise ValueError("fractions of a second are not supported")
    tzs = m.group(8)
    off = 0
    if tzs not in ("Z", "z"):
        sign = -1 if tzs[0] == "-" else 1
        off = sign * (int(tzs[1:3]) * 3600 + int(tzs[4:6]) * 60)
    base = int(datetime(y, mo, d, h, mi, se, tzinfo=timezone.utc).timestamp())
    return base - off


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tariff", required=True)
    ap.add_argument("--class", dest="vclass", required=True)
    ap.add_argument("--entry", required=True)
    ap.add_argument("--exit", required=True)
    ap.add_argument("--explain", action="store_true")
    a = ap.parse_args(argv)
    with open(a.tariff, encoding="utf-8") as f:
        tariff = json.load(f)
    try:
        validate(tariff)
    except ValueError as e:
        print(f"{a.tariff}: {e}", file=sys.stderr)
        return 2
    e, x = parse_rfc3339(a.entry), parse_rfc3339(a.exit)
    if x < e:
        print("exit before entry", file=sys.stderr)
        return 2
    if a.explain:
        print(json.dumps(explain(tariff, a.vclass, e, x), indent=1, default=str))
    else:
        print(fee(tariff, a.vclass, e, x))
    return 0


if __name__ == "__main__":
    sys.exit(main())
