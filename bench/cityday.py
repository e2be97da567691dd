"""bench/run's city day (issue 7, item 5): a synthetic day of a city's public parking replayed
through lpr-bridge and the gateway as fast as it goes.

The city and the day are generated here, deterministically from a seed:

  lots     2 000 lots (full size) in Hangzhou's ten districts, about 300 000 spaces in all (sizes
           log-normal), each with 1 to 3 entry and as many exit lanes, one camera per lane pushing
           OpenALPR `alpr_results` JSON to lpr-bridge, one bridge device per lot; the shipped
           tariffs of config/tariffs by district (core, Wulin, suburb, park-and-ride).
  stays    900 000, each of a distinct vehicle (plates whose confusable-folded keys are all
           distinct, so a misread can only ever match its own vehicle): commuters entering in the
           morning peak and leaving in the evening peak, visitors through the day, evening stays,
           and short stops inside the free minutes; every stay enters and leaves within the day.
  drivers  80 % of the vehicles are enrolled (POST /v1/drivers, set-up, not timed).
  reads    each stay's entry read and exit read, with the camera's capture time of the synthetic
           day; a few per cent of them unreadable (the camera's "no plate" sentinel 无牌), misread
           (a confusable character: 0/D, 8/B, 1/T, 5/S, 2/Z, 6/G, 4/A, or the province), at the exit
           half of them with the right plate among the camera's candidates, and duplicated (the
           camera reads the vehicle again a second or two later: the bridge suppresses it).

The day is the local date (UTC+8) before today, so every capture time is in the past: the gateway
takes events of any past capture time (only more than 24 h ahead is refused, docs/lane-api.md); the
HMAC clock window concerns the bridge's signing time (X-Park-Timestamp, when it forwards), not the
capture time; fees are computed on the capture times, and each lot-day counter is the capture's
local date.  So the day's stays get the fees of their real times, and its revenue report is the
report of that date.

The replay: every read is one camera push (`POST /v1/cameras/{camera}`) sent by bench/loadgen closed
loop, the pushes of one lot one at a time in the day's order (`--serial-header X-Bench-Lot`, as a
lot's cameras, seconds apart, never overtake each other) and as many lots at once as there are
connections.  The bridge spools each read (fsynced) before answering the camera, then forwards it
signed to the gateway, one event in flight per lot.  The clock starts at loadgen's first push and
stops when the gateway has decided every read the bridge forwards (its decision counters, polled
every 20 ms once every push was answered): an exit's bill is queued on its lot's settlement stream
by the script that decides it, before the answer.  Billing does not run.

Then the checks: bills on the settlement streams == credit_ok decisions; the day's revenue report
(GET /v1/reports/revenue for that date, every lot) against Redis: on every row billed = paid +
paid_late + paid_on_site + outstanding + overdue + defaulted + waived + refunded, the billed total
== the sum of every bill's amount read from its record, entries == entry reads replayed less
duplicates and unreadables, exits == the exit decisions that opened the barrier; and the decisions,
matches and holds against what the generator expects of each read.
"""
import bisect
import http.client
import json
import math
import os
import random
import subprocess
import sys
import time

import benchlib as B

# District, code, share of the lots, tariffs (id, share within the district).
DISTRICTS = [
    ("上城区", "SC", 0.13, [("hz-core-2024", 0.8), ("hz-wulin-2024", 0.2)]),
    ("拱墅区", "GS", 0.13, [("hz-core-2024", 0.6), ("hz-wulin-2024", 0.4)]),
    ("西湖区", "XH", 0.14, [("hz-core-2024", 0.9), ("hz-park-ride-2024", 0.1)]),
    ("滨江区", "BJ", 0.09, [("hz-core-2024", 0.9), ("hz-park-ride-2024", 0.1)]),
    ("萧山区", "XS", 0.12, [("hz-suburb-2024", 0.9), ("hz-park-ride-2024", 0.1)]),
    ("余杭区", "YH", 0.12, [("hz-suburb-2024", 0.85), ("hz-park-ride-2024", 0.15)]),
    ("临平区", "LP", 0.06, [("hz-suburb-2024", 1.0)]),
    ("钱塘区", "QT", 0.08, [("hz-suburb-2024", 0.9), ("hz-park-ride-2024", 0.1)]),
    ("富阳区", "FY", 0.07, [("hz-suburb-2024", 1.0)]),
    ("临安区", "LA", 0.06, [("hz-suburb-2024", 1.0)]),
]
SIZES = {"full": {"lots": 2000, "spaces": 300000, "stays": 900000, "conns": 256},
         "quick": {"lots": 20, "spaces": 3000, "stays": 9000, "conns": 20}}
RATES = {"entry_unreadable": 0.010, "entry_misread": 0.010, "entry_duplicate": 0.040,
         "exit_unreadable": 0.010, "exit_misread": 0.030, "exit_duplicate": 0.040,
         "enrolled": 0.80}
SEED = 20261127
TZ = 8 * 3600
DAY_S = 86400
TOKEN = B.ADMIN_TOKEN

# Plates.  Serial characters: digits and letters without I and O (GA 36).  The fold key is
# docs/redis.md's: province -> *, each confusable group -> its first member.
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_DIGITS = "0123456789"
_FOLD = {c: c for c in _LETTERS + _DIGITS}
for group in ("0DQO", "8B", "1IT", "5S", "2Z", "6G", "A4"):
    for c in group:
        _FOLD[c] = group[0]
_SWAP = {"0": "D", "D": "0", "Q": "0", "8": "B", "B": "8", "1": "T", "T": "1", "5": "S",
         "S": "5", "2": "Z", "Z": "2", "6": "G", "G": "6", "4": "A", "A": "4"}
_PROVINCES = [("浙", "A", 0.80), ("浙", "BCDEFGHJKL", 0.08), ("沪", "ABDEF", 0.05),
              ("苏", "ABCDEFGHJKLMN", 0.04), ("皖", "ABCDEFGHJK", 0.02), ("赣", "ABCDEFG", 0.01)]
_MISREAD_PROVINCE = {"浙": "沪", "沪": "浙", "苏": "浙", "皖": "浙", "赣": "浙"}


def fold(plate):
    return "*" + "".join(_FOLD.get(c, c) for c in plate[1:])


def _plate(rng):
    r = rng.random()
    acc = 0.0
    for prov, cities, share in _PROVINCES:
        acc += share
        if r < acc:
            break
    city = rng.choice(cities)
    if rng.random() < 0.12:
        # New energy (small): D (pure electric) or F (hybrid), then five digits.
        return prov + city + rng.choice("DF") + "".join(rng.choice(_DIGITS) for _ in range(5))
    serial = [rng.choice(_DIGITS) for _ in range(5)]
    for _ in range(rng.choice((0, 1, 1, 2))):
        serial[rng.randrange(5)] = rng.choice(_LETTERS)
    return prov + city + "".join(serial)


def misread(plate, rng):
    """The plate as a camera misreads it: one confusable character of an ordinary plate's serial
    or, without one, the province; a new-energy plate's province only (its serial's letter and
    digits are fixed by the plate rules: a letter misread for a digit there is an impossible
    plate, which the bridge corrects or makes unreadable).  The fold key is the same, so the
    gateway's confusable-aware match can pair it."""
    spots = [] if len(plate) == 8 else [i for i in range(2, len(plate)) if plate[i] in _SWAP]
    if spots:
        i = rng.choice(spots)
        return plate[:i] + _SWAP[plate[i]] + plate[i + 1:]
    return _MISREAD_PROVINCE[plate[0]] + plate[1:]


# ---- the city ----------------------------------------------------------------------------------

def make_lots(n, spaces, rng):
    lots = []
    weights = [rng.lognormvariate(0.0, 0.8) for _ in range(n)]
    total = sum(weights)
    cum, acc = [], 0.0
    for d in DISTRICTS:
        acc += d[2]
        cum.append(acc)
    per = {}
    for i in range(n):
        d = DISTRICTS[min(bisect.bisect(cum, rng.random() * acc), len(DISTRICTS) - 1)]
        name, code, _, tariffs = d
        r, t_acc, tariff = rng.random(), 0.0, tariffs[-1][0]
        for tid, share in tariffs:
            t_acc += share
            if r < t_acc:
                tariff = tid
                break
        per[code] = per.get(code, 0) + 1
        cap = max(20, int(round(weights[i] / total * spaces)))
        lanes = 1 if cap < 150 else 2 if cap < 500 else 3
        lots.append({"id": "HZ-%s-%04d" % (code, per[code]), "district": name,
                     "name": "%s公共停车场%d号" % (name, per[code]), "tariff": tariff,
                     "capacity": cap, "lanes": lanes, "weight": weights[i]})
    return lots


def _free_minutes():
    """tariff id -> (free minutes of a small car, of a new-energy one), from config/tariffs."""
    out = {}
    d = os.path.join(B.ROOT, "config", "tariffs")
    for name in os.listdir(d):
        if name.endswith(".json"):
            with open(os.path.join(d, name)) as f:
                t = json.load(f)
            free = t.get("free_minutes", 0)
            ne = t.get("classes", {}).get("new_energy", {}).get("free_minutes", free)
            out[t["id"]] = (free, ne)
    return out


def _stay(rng):
    """(entry second of the day, duration in seconds, kind)."""
    r = rng.random()
    if r < 0.18:  # commuter: morning peak in, evening peak out
        t = rng.gauss(8.2, 0.6)
        t = min(max(t, 6.0), 10.5)
        d = min(max(rng.gauss(9.2, 0.8), 7.0), 11.0)
        return int(t * 3600), int(d * 3600), "commuter"
    if r < 0.25:  # a short stop inside the free minutes of every tariff (15 or 30)
        t = rng.uniform(7.5, 21.5)
        return int(t * 3600), rng.randint(180, 720), "short"
    if r < 0.88:  # visitors: late morning, afternoon and evening waves
        w = rng.random()
        t = rng.gauss(10.5, 1.4) if w < 0.4 else rng.gauss(14.5, 1.6) if w < 0.75 else \
            rng.gauss(19.0, 1.3)
        t = min(max(t, 6.0), 22.0)
        d = min(max(rng.lognormvariate(math.log(1.6 * 3600), 0.6), 35 * 60), 6 * 3600)
        return int(t * 3600), int(d), "visitor"
    t = min(max(rng.gauss(19.5, 1.2), 16.0), 22.5)  # evening
    return int(t * 3600), rng.randint(3600, 4 * 3600), "evening"


def generate(size, scale=1.0, seed=SEED, now=None):
    """The city and its day: a dict with lots, plates, enrolled plates, the reads in the day's
    order and what the generator expects the gateway to decide."""
    rng = random.Random(seed)
    n_lots = max(1, int(round(size["lots"] * scale)))
    n_stays = max(1, int(round(size["stays"] * scale)))
    spaces = int(round(size["spaces"] * scale))
    lots = make_lots(n_lots, spaces, rng)
    wsum = 0.0
    lot_cum = []
    for lot in lots:
        wsum += lot["weight"]
        lot_cum.append(wsum)
    now = int(time.time()) if now is None else now
    day_index = (now + TZ) // DAY_S - 1  # yesterday, local
    day0 = day_index * DAY_S - TZ        # its local midnight, unix seconds
    date = time.strftime("%Y-%m-%d", time.gmtime(day_index * DAY_S))

    seen = set()
    stays = []
    for s in range(n_stays):
        while True:
            p = _plate(rng)
            f = fold(p)
            if f not in seen:
                seen.add(f)
                break
        li = min(bisect.bisect(lot_cum, rng.random() * wsum), n_lots - 1)
        t_in, dur, kind = _stay(rng)
        for edge in (15, 30, 60):
            # No stay within a minute of a free-minutes limit: which side of it a stay falls on
            # is then beyond doubt, and the generator can say which exits are free.
            if abs(dur - edge * 60) < 60:
                dur = edge * 60 + (120 if dur >= edge * 60 else -120)
        if t_in + dur > DAY_S - 120:
            # Leaves within the day, at some time in its last hours (not all at one second).
            t_in = max(60, DAY_S - 120 - dur - rng.randint(0, 3 * 3600))
        stays.append((p, li, t_in, dur, kind, rng.random() < RATES["enrolled"]))
    return _reads(lots, stays, rng, day0, date)


def _reads(lots, stays, rng, day0, date):
    # Each read: [sort key, lot, lane, plate read or None, candidates, conf, capture ms, stay,
    # direction, duplicate of].  Lanes are numbered 1..lanes per direction.
    reads = []
    R = RATES
    for si, (plate, li, t_in, dur, kind, enrolled) in enumerate(stays):
        lanes = lots[li]["lanes"]
        for direction, t in (("in", t_in), ("out", t_in + dur)):
            ms = (day0 + t) * 1000 + rng.randrange(1000)
            lane = rng.randint(1, lanes)
            r = rng.random()
            cands = []
            if r < R["%s_unreadable" % ("entry" if direction == "in" else "exit")]:
                read, conf = None, round(rng.uniform(10, 40), 1)
            elif r < R["entry_unreadable" if direction == "in" else "exit_unreadable"] + \
                    R["entry_misread" if direction == "in" else "exit_misread"]:
                read, conf = misread(plate, rng), round(rng.uniform(81, 93), 1)
                if direction == "out" and rng.random() < 0.5:
                    cands = [plate]
            else:
                read, conf = plate, round(rng.uniform(85, 99.5), 1)
            key = (ms, len(reads))
            reads.append([key, li, lane, read, cands, conf, ms, si, direction, None])
            dup_rate = R["entry_duplicate" if direction == "in" else "exit_duplicate"]
            if rng.random() < dup_rate:
                # The camera reads the vehicle again a second or two later; it sorts right after
                # the read it repeats (the next read of its lane), as it would at the lane.
                reads.append([(ms, len(reads) - 0.5), li, lane, read, cands,
                              round(max(80.5, conf - rng.uniform(0, 4)), 1),
                              ms + rng.randint(800, 2500), si, direction, len(reads) - 1])
    reads.sort(key=lambda x: x[0])

    # Two unreadable reads of different vehicles one after the other in a lane are one vehicle
    # to the bridge (it cannot tell them apart): the second becomes readable, so that every
    # suppression of the day is a duplicate read.
    last = {}
    for x in reads:
        if x[9] is not None:
            continue
        k = (x[1], x[8], x[2])
        prev = last.get(k)
        if x[3] is None and prev is not None and prev[3] is None:
            x[3] = stays[x[7]][0]
            x[5] = round(rng.uniform(85, 99.5), 1)
        last[k] = x
    # Two vehicles never pass one lane in the same second.  The bridge derives a read's event_id
    # from camera, capture second and plate, so two unreadable reads of one lane in one second
    # would be one event to the gateway (the second answered from the first's idempotency
    # record): a later read of a lane whose second is taken moves to the next second.
    by_index = {x[0][1]: x for x in reads if x[9] is None}
    for _ in range(10):
        moved = 0
        last = {}
        for x in reads:
            if x[9] is not None:
                continue
            k = (x[1], x[8], x[2])
            prev = last.get(k)
            if prev is not None and prev[6] // 1000 >= x[6] // 1000:
                x[6] = (prev[6] // 1000 + 1) * 1000 + x[6] % 1000
                x[0] = (x[6], x[0][1])
                moved += 1
            last[k] = x
        if not moved:
            break
        for x in reads:
            if x[9] is not None:
                o = by_index[x[9]]
                x[0] = (o[0][0], x[9] + 0.5)
                x[6] = max(x[6], o[6] + 800)
        reads.sort(key=lambda x: x[0])
    # Duplicates copy what their read became.
    by_order = {}
    for x in reads:
        if x[9] is None:
            by_order[(x[7], x[8])] = x
    for x in reads:
        if x[9] is not None:
            o = by_order[(x[7], x[8])]
            x[3], x[4] = o[3], o[4]
    return {"lots": lots, "stays": stays, "reads": reads, "day0": day0, "date": date,
            "first": by_order, "expected": expect(lots, stays, by_order)}


def expect(lots, stays, first):
    """What the gateway should decide for each read the bridge forwards (the duplicates are
    suppressed), and each lot's highest occupancy (sessions open or held at an exit)."""
    e = {"entry_reads": 0, "exit_reads": 0, "entry_unreadable": 0, "exit_unreadable": 0,
         "sessions": 0, "match": {"exact": 0, "candidate": 0, "fuzzy": 0, "none": 0},
         "exit": {}, "bills": 0, "misread_entry": 0, "misread_exit": 0}
    events = [[] for _ in lots]
    free = _free_minutes()
    for si, (plate, li, t_in, dur, kind, enrolled) in enumerate(stays):
        a, b = first[(si, "in")], first[(si, "out")]
        e["entry_reads"] += 1
        e["exit_reads"] += 1
        if a[3] is None:
            e["entry_unreadable"] += 1
        else:
            e["sessions"] += 1
            e["misread_entry"] += a[3] != plate
            events[li].append((a[6], 1))
        if b[3] is None:
            e["exit_unreadable"] += 1
            reason = "unreadable"
        else:
            e["misread_exit"] += b[3] != plate
            if a[3] is None:
                e["match"]["none"] += 1
                reason = "no_entry_record"
            else:
                if b[3] == a[3]:
                    m = "exact"
                elif a[3] in b[4]:
                    m = "candidate"
                else:
                    m = "fuzzy"
                e["match"][m] += 1
                # The driver: by the entry read's plate, else the exit read's or any of its
                # candidates' (gateway/h_events.c).
                considered = {a[3], b[3]} | set(b[4])
                if dur < 60 * free[lots[li]["tariff"]][len(plate) == 8]:
                    reason = "free_period"
                elif enrolled and plate in considered:
                    reason = "credit_ok"
                    e["bills"] += 1
                else:
                    reason = "not_enrolled"
                if reason != "not_enrolled":
                    events[li].append((b[6], -1))
        e["exit"][reason] = e["exit"].get(reason, 0) + 1
    e["exits_open"] = e["exit"].get("credit_ok", 0) + e["exit"].get("free_period", 0)
    peaks = []
    for ev in events:
        ev.sort()
        occ = peak = 0
        for _, d in ev:
            occ += d
            peak = max(peak, occ)
        peaks.append(peak)
    e["peaks"] = peaks
    return e


# ---- configuration and processes ---------------------------------------------------------------

def camera_id(lot, direction, lane):
    return "cam-%s-%s%d" % (lot["id"].lower(), direction, lane)


def config(day, redis_port, provider_url, spool):
    cfg = {
        "name": "bench-city",
        "log_level": "info",
        "redis": {"address": "127.0.0.1:%d" % redis_port},
        "gateway": {"listen": "127.0.0.1:0", "admin_token": {"file": "secrets/admin"}},
        "billing": {"listen": "127.0.0.1:0", "default_provider": B.PROVIDER},
        "providers": [{"id": B.PROVIDER, "kind": "stripe", "base_url": provider_url,
                       "secret_key": {"file": "secrets/stripe"}}],
        "operators": [{"id": "hz-city-parking", "name": "杭州市公共停车"}],
        "lots": [], "devices": [],
        "lpr_bridge": {"listen": "127.0.0.1:0", "spool_dir": spool, "cameras": []},
    }
    bumped = 0
    for lot, peak in zip(day["lots"], day["expected"]["peaks"]):
        # Capacity: the lot's spaces, or its peak when the day's generated stays (held exits
        # included: nobody pays on site here) would fill it, so that no read is held lot_full.
        cap = lot["capacity"]
        if peak > cap:
            bumped += 1
            cap = peak
        lot["capacity_config"] = cap
        lanes = []
        for k in range(1, lot["lanes"] + 1):
            lanes += [{"id": "in%d" % k, "direction": "entry"},
                      {"id": "out%d" % k, "direction": "exit"}]
        cfg["lots"].append({"id": lot["id"], "name": lot["name"], "operator": "hz-city-parking",
                            "district": lot["district"], "capacity": cap,
                            "tariff": lot["tariff"], "lanes": lanes})
        dev = lot["id"].lower() + "-bridge"
        cfg["devices"].append({"id": dev, "lot": lot["id"], "lanes": [x["id"] for x in lanes],
                               "key": {"file": "secrets/" + dev}})
        for x in lanes:
            d, k = x["id"][:-1], int(x["id"][-1])
            cfg["lpr_bridge"]["cameras"].append({
                "id": camera_id(lot, d, k), "lot": lot["id"], "lane": x["id"], "device": dev,
                "format": "openalpr", "min_confidence": 800, "hold_ms": 800,
                "dedupe_window_s": 10, "decision_timeout_ms": 1000, "fallback": "hold",
                "barrier": {"kind": "none"}})
    return cfg, bumped


def _push(day, x):
    lot = day["lots"][x[1]]
    cam = camera_id(lot, x[8], x[2])
    if x[3] is None:
        res = '{"plate":"无牌","confidence":%.1f}' % x[5]
    else:
        cands = ",".join('{"plate":"%s","confidence":%.1f}' % (c, x[5] * 0.45) for c in x[4])
        res = ('{"plate":"%s","confidence":%.1f,"candidates":[{"plate":"%s","confidence":%.1f}%s]}'
               % (x[3], x[5], x[3], x[5], "," + cands if cands else ""))
    body = ('{"version":2,"data_type":"alpr_results","epoch_time":%d,"site_id":"%s",'
            '"camera_id":"%s","results":[%s]}' % (x[6], lot["id"], cam, res)).encode()
    return (b"POST /v1/cameras/%s HTTP/1.1\r\nHost: lpr-bridge\r\nX-Bench-Lot: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
                cam.encode(), lot["id"].encode(), len(body))) + body


def write_pushes(day, path):
    with open(path, "wb") as f:
        chunk = []
        for x in day["reads"]:
            chunk.append(_push(day, x))
            if len(chunk) == 10000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))


def write_drivers(day, path, customer):
    with open(path, "wb") as f:
        chunk = []
        n = 0
        for (plate, li, t_in, dur, kind, enrolled) in day["stays"]:
            if not enrolled:
                continue
            n += 1
            body = ('{"id":"cd-%d","plates":["%s"],"provider":"%s","payment_ref":"%s"}' % (
                n, plate, B.PROVIDER, customer)).encode()
            chunk.append(b"POST /v1/drivers HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
                             TOKEN.encode(), len(body)) + body)
            if len(chunk) == 10000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
    return n


def _get(port, path, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def prom(text, name):
    """label string -> value of the samples of metric `name`."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k[len(name):]] = float(v)
    return out


def decisions(port):
    _, body = _get(port, "/metrics")
    out = {}
    for labels, v in prom(body.decode(), "park_gateway_decisions_total").items():
        d = dict(kv.split("=", 1) for kv in labels.strip("{}").split(","))
        d = {k: v.strip('"') for k, v in d.items()}
        if v:
            out["%s/%s/%s" % (d["direction"], d["decision"], d["reason"])] = int(v)
    return out


class Proc:
    """The gateway or lpr-bridge on the city's configuration (a port file, then ready)."""

    def __init__(self, exe, cfg_path, name, env=None, ready="/healthz"):
        self.dir = os.path.dirname(cfg_path)
        port_file = os.path.join(self.dir, name + ".port")
        self.logpath = os.path.join(self.dir, name + ".log")
        self.log = open(self.logpath, "ab")
        self.proc = B.register(subprocess.Popen(
            [exe, "--config", cfg_path, "--port-file", port_file], stdout=self.log,
            stderr=self.log, env=dict(os.environ, **(env or {}))))
        B.wait_for(lambda: os.path.exists(port_file) and os.path.getsize(port_file) > 0, 60,
                   name + " port file")
        with open(port_file) as f:
            self.port = int(f.read())
        B.wait_for(lambda: _get(self.port, ready)[0] == 200, 120, name + " ready")

    def tail(self, n=20):
        with open(self.logpath, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")


# ---- the measurement ---------------------------------------------------------------------------

def measure(R, mode_name, noise, ctx, scale=1.0):
    """ctx: bin (the platform's executables), loadgen (its path), show (a command as the report
    prints it), log, mock (a running B.StripeMock, or None)."""
    log, show = ctx["log"], ctx["show"]
    size = SIZES[mode_name]
    out = R["cityday"] = {"size": dict(size), "scale": scale, "rates": RATES, "seed": SEED}
    noise.phase("city day: generation")
    log("city day: generating the city and its day (%s%s)" % (
        mode_name, ", scale %g" % scale if scale != 1.0 else ""))
    t = time.monotonic()
    day = generate(size, scale)
    tmp = B.tempdir("park-bench-city-")
    pushes = os.path.join(tmp, "pushes.req")
    write_pushes(day, pushes)
    out["generate_s"] = time.monotonic() - t
    ex = day["expected"]
    lots = day["lots"]
    out.update({"date": day["date"], "lots": len(lots), "stays": len(day["stays"]),
                "reads": len(day["reads"]), "cameras": sum(2 * x["lanes"] for x in lots),
                "spaces": sum(x["capacity"] for x in lots),
                "tariffs": {}, "districts": {}, "pushes_bytes": os.path.getsize(pushes)})
    for x in lots:
        out["tariffs"][x["tariff"]] = out["tariffs"].get(x["tariff"], 0) + 1
        out["districts"][x["district"]] = out["districts"].get(x["district"], 0) + 1
    dups = sum(1 for x in day["reads"] if x[9] is not None)
    dup_in = sum(1 for x in day["reads"] if x[9] is not None and x[8] == "in")
    out["duplicates"] = {"entry": dup_in, "exit": dups - dup_in}
    forwarded = len(day["reads"]) - dups
    exp = {k: v for k, v in ex.items() if k != "peaks"}
    exp["forwarded"] = forwarded
    out["expected"] = exp
    hours = [0] * 24
    for x in day["reads"]:
        hours[(x[6] // 1000 - day["day0"]) // 3600] += 1
    out["reads_by_hour"] = hours

    redis = B.Redis("city")
    mock = ctx.get("mock") or B.StripeMock()
    cfg, bumped = config(day, redis.port, mock.url, os.path.join(tmp, "spool"))
    out["capacity_bumped"] = bumped
    out["capacity_config"] = sum(x["capacity_config"] for x in lots)
    cfg_path = B.write_config_dir(os.path.join(tmp, "etc"), cfg)
    noise.phase("city day: set-up (gateway, enrolment)")
    log("city day: %d lots, %d cameras, %d stays, %d reads; starting the gateway" % (
        len(lots), out["cameras"], len(day["stays"]), len(day["reads"])))
    gw = Proc(os.path.join(ctx["bin"], "gateway"), cfg_path, "gateway", ready="/readyz")
    customer = mock.customer()
    drivers = os.path.join(tmp, "drivers.req")
    out["drivers"] = write_drivers(day, drivers, customer)
    log("city day: enrolling %d drivers" % out["drivers"])
    cmd = [ctx["loadgen"], "--port", str(gw.port), "--requests", drivers, "--conns", "50",
           "--expect", '"id"', "--timeout-s", "3000"]
    r = B.run(cmd, 3100)
    enrol = json.loads(r.stdout) if r.stdout.strip() else {}
    os.unlink(drivers)
    if enrol.get("expected") != out["drivers"]:
        raise RuntimeError("city day: enrolment: %r %s\n%s" % (enrol, r.stderr, gw.tail()))
    out["enrolment"] = {"seconds": enrol["seconds"], "rate": enrol["rate"],
                        "command": show(cmd)}

    bridge = Proc(os.path.join(ctx["bin"], "lpr-bridge"), cfg_path, "lpr-bridge",
                  env={"PARK_GATEWAY_URL": "http://127.0.0.1:%d" % gw.port})
    conns = size["conns"]
    cmd = [ctx["loadgen"], "--port", str(bridge.port), "--requests", pushes, "--conns",
           str(conns), "--serial-header", "X-Bench-Lot", "--timeout-s", "3000"]
    out["command"] = show(cmd)
    noise.phase("city day: replay")
    log("city day: replaying %d reads through lpr-bridge -> gateway, %d connections" % (
        len(day["reads"]), conns))
    meter = B.CpuMeter(gateway=gw.proc, bridge=bridge.proc, redis=redis.proc).start()
    lg = B.register(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True))
    lg_out, lg_err = lg.communicate()
    t_pushed = time.monotonic_ns()
    if not lg_out.strip():
        raise RuntimeError("city day: loadgen failed: " + lg_err)
    push = json.loads(lg_out)
    # Every push answered: now the bridge's queues drain to the gateway.  The clock stops at the
    # first poll that sees every forwarded read decided.
    # A replay that stalls short of that (a read lost or answered as another's) keeps its figures:
    # the clock stops at the last progress, and the checks below say what is missing.
    last, last_ns, decided, stalled = -1, time.monotonic_ns(), {}, None
    while True:
        decided = decisions(gw.port)
        n = sum(decided.values())
        now_ns = time.monotonic_ns()
        if n >= forwarded:
            break
        if n != last:
            last, last_ns = n, now_ns
        elif now_ns - last_ns > 30e9:
            stalled = "%d of %d forwarded reads decided, none more for 30 s" % (n, forwarded)
            log("city day: " + stalled)
            now_ns = last_ns
            break
        time.sleep(0.02)
    cpu = meter.stop()
    wall = (now_ns - push["t0_ns"]) / 1e9
    out["replay"] = {"wall_s": wall, "pushes_answered_s": (t_pushed - push["t0_ns"]) / 1e9,
                     "reads_per_s": len(day["reads"]) / wall, "loadgen": push, "cpu": cpu,
                     "decided": sum(decided.values()), "stalled": stalled}
    out["decisions"] = decided
    log("city day: %d reads in %.1f s (%.0f reads/s); checking" % (
        len(day["reads"]), wall, len(day["reads"]) / wall))

    noise.phase("city day: checks")
    _, body = _get(bridge.port, "/metrics")
    text = body.decode()
    outcomes = {}
    for labels, v in prom(text, "park_lpr_reads_total").items():
        o = labels.split('outcome="', 1)[1].split('"', 1)[0]
        outcomes[o] = outcomes.get(o, 0) + int(v)
    out["bridge"] = {"outcomes": outcomes, "errors": int(sum(prom(
        text, "park_lpr_payload_errors_total").values()))}
    for k in ("park_lpr_delivered_total", "park_lpr_refused_total",
              "park_lpr_forward_retries_total", "park_lpr_spool_depth"):
        out["bridge"][k[9:]] = int(sum(prom(text, k).values()))
    if "park_lpr_forward_seconds_count" not in text:
        raise RuntimeError("city day: lpr-bridge's /metrics is cut short (%d bytes)" % len(text))
    _, body = _get(gw.port, "/metrics")
    out["gateway_replays"] = int(sum(prom(body.decode(), "park_gateway_replays_total").values()))
    out["bin"] = ctx["bin"]
    out["checks"] = check(day, redis, gw, out)
    out.pop("bin")
    B.stop(bridge.proc)
    B.stop(gw.proc)
    B.stop(redis.proc)
    os.unlink(pushes)
    return out


def fee_sample(day, redis, ctx_bin, n=200):
    """Some bills, drawn with the seed, against the generated day: the record's entry and exit
    are the stay's capture times (to the second), and its amount is `parkctl fee` of the lot's
    tariff file for those times and the plate's class (the fee code the gateway runs, through the
    operator's CLI)."""
    rng = random.Random(SEED + 1)
    by_fold = {fold(p): i for i, (p, *_rest) in enumerate(day["stays"])}
    lots = day["lots"]
    picks = []
    for _ in range(n * 4):
        li = rng.randrange(len(lots))
        ln = redis.cmd("XLEN", "pk:{%s}:bills" % lots[li]["id"])
        if ln:
            picks.append(li)
        if len(picks) == n:
            break
    checked, wrong, times_wrong = 0, [], 0
    tdir = os.path.join(B.ROOT, "config", "tariffs")
    for li in picks:
        lot = lots[li]["id"]
        entries = redis.cmd("XRANGE", "pk:{%s}:bills" % lot, "-", "+")
        _id, fields = entries[rng.randrange(len(entries))]
        bill = dict(zip(fields[::2], fields[1::2]))["bill"]
        rec = redis.cmd("HGETALL", "pk:{%s}:s:%s" % (lot, bill.split("~")[1]))
        rec = dict(zip(rec[::2], rec[1::2]))
        si = by_fold[fold(rec["plate"])]
        plate = day["stays"][si][0]
        t0 = day["first"][(si, "in")][6] // 1000
        t1 = day["first"][(si, "out")][6] // 1000
        if int(rec["entry"]) != t0 or int(rec["exit"]) != t1:
            times_wrong += 1
        cmd = [os.path.join(ctx_bin, "parkctl"), "fee", "--tariff",
               os.path.join(tdir, lots[li]["tariff"] + ".json"), "--class",
               "new_energy" if len(plate) == 8 else "small", "--entry", B.iso(t0), "--exit",
               B.iso(t1), "--json"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        want = json.loads(r.stdout)["amount"] if r.returncode == 0 else None
        checked += 1
        if want != int(rec["amount"]):
            wrong.append({"bill": bill, "amount": int(rec["amount"]), "parkctl": want})
    return {"checked": checked, "amount_wrong": len(wrong), "times_wrong": times_wrong,
            "examples": wrong[:5]}


def check(day, redis, gw, out):
    """The bills on the settlement streams and the revenue report against Redis."""
    lots = day["lots"]
    c = {}
    xlens = redis.pipeline([("XLEN", "pk:{%s}:bills" % x["id"]) for x in lots])
    c["bills_queued"] = sum(xlens)
    # Every bill's amount, from its record (pk:{L}:s:<n>), found through the stream's entries.
    total, n, bad, days = 0, 0, [], {}
    for x in lots:
        entries = redis.cmd("XRANGE", "pk:{%s}:bills" % x["id"], "-", "+")
        ids = []
        for _id, fields in entries or []:
            f = dict(zip(fields[::2], fields[1::2]))
            ids.append(f["bill"])
        recs = redis.pipeline([("HMGET", "pk:{%s}:s:%s" % (x["id"], b.split("~")[1]), "amount",
                                "status", "day") for b in ids])
        for b, (amount, status, d) in zip(ids, recs):
            n += 1
            total += int(amount)
            days[d] = days.get(d, 0) + 1
            if status != "pending":
                bad.append((b, status))
    c["bills_read"] = n
    c["fees"] = fee_sample(day, redis, ctx_bin=out["bin"])
    c["bills_amount"] = total
    c["bill_days"] = days
    c["bills_not_pending"] = len(bad)
    st, body = _get(gw.port, "/v1/reports/revenue?from=%s&to=%s" % (day["date"], day["date"]),
                    TOKEN)
    if st != 200:
        raise RuntimeError("revenue report: %d %r" % (st, body[:300]))
    rep = json.loads(body)
    rows = rep["rows"]
    buckets = ("paid", "paid_late", "paid_on_site", "outstanding", "overdue", "defaulted",
               "waived", "refunded")
    c["rows"] = len(rows)
    c["rows_identity_ok"] = sum(1 for r in rows if r["billed"] == sum(r[b] for b in buckets))
    tot = {k: sum(r[k] for r in rows) for k in ("entries", "exits", "bills", "billed", "stays")
           + buckets}
    c["report"] = tot
    c["report_totals"] = {k: rep["totals"].get(k) for k in tot} if rep.get("totals") else None
    st, body = _get(gw.port, "/v1/reports/leakage?from=%s&to=%s" % (day["date"], day["date"]),
                    TOKEN)
    leak = {}
    if st == 200:
        for r in json.loads(body)["rows"]:
            for k, v in r.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    leak[k] = leak.get(k, 0) + v
                elif isinstance(v, dict):
                    for kk, vv in v.items():
                        leak["%s:%s" % (k, kk)] = leak.get("%s:%s" % (k, kk), 0) + vv
    c["leakage"] = leak
    ex = out["expected"]
    d = out["decisions"]
    exits_open = sum(v for k, v in d.items() if k.startswith("exit/open/"))
    replayed_in = ex["entry_reads"] + out["duplicates"]["entry"]
    c["verdicts"] = {
        "row_identity": c["rows_identity_ok"] == len(rows) and len(rows) > 0,
        "billed_eq_bills": tot["billed"] - tot["paid_on_site"] == total and
        tot["bills"] == n == c["bills_queued"] == d.get("exit/open/credit_ok", 0),
        "entries": tot["entries"] == replayed_in - out["duplicates"]["entry"] -
        ex["entry_unreadable"],
        "exits": tot["exits"] == exits_open,
        "fees": c["fees"]["checked"] > 0 and c["fees"]["amount_wrong"] == 0 and
        c["fees"]["times_wrong"] == 0,
        "every_read_decided_once": out["replay"]["decided"] == ex["forwarded"] and
        out["gateway_replays"] == 0 and
        out["bridge"].get("delivered_total") == ex["forwarded"] and
        out["bridge"]["outcomes"].get("suppressed", 0) == out["duplicates"]["entry"] +
        out["duplicates"]["exit"],
        "as_generated": tot["entries"] == ex["sessions"] and tot["exits"] == ex["exits_open"] and
        n == ex["bills"] and all(d.get("exit/%s/%s" % ("open" if k in ("credit_ok", "free_period")
                                                       else "hold", k), 0) == v
                                 for k, v in ex["exit"].items()),
    }
    return c


# ---- the report --------------------------------------------------------------------------------

TARGET_S = 120.0
FULL_READS = 2 * SIZES["full"]["stays"] * (1 + (RATES["entry_duplicate"] +
                                                RATES["exit_duplicate"]) / 2)


def projected_s(c):
    """The full-size day's wall time at this run's reads/s (reads scale with the day)."""
    return FULL_READS / c["replay"]["reads_per_s"]


def full_size(c, mode_name):
    return mode_name == "full" and c["scale"] == 1.0


def verdicts_ok(c):
    v = c["checks"]["verdicts"]
    return all(v[k] for k in ("row_identity", "billed_eq_bills", "entries", "exits", "fees",
                              "every_read_decided_once"))


def summary_row(c, mode_name, fmt, verdict):
    rp = c["replay"]
    size = "%s lots, %s stays, %s reads" % (fmt(c["lots"]), fmt(c["stays"]), fmt(c["reads"]))
    rec = "reconciles to the fen" if verdicts_ok(c) else "does NOT reconcile"
    if full_size(c, mode_name):
        what = "%.0f s, %s reads/s; %s" % (rp["wall_s"], fmt(rp["reads_per_s"]), rec)
        v = verdict(rp["wall_s"] < TARGET_S and verdicts_ok(c))
    elif mode_name == "quick":
        # The quick size's few lots push far fewer reads at once: no projection.
        what = "%.1f s, %s reads/s; %s" % (rp["wall_s"], fmt(rp["reads_per_s"]), rec)
        v = "— (quick size); reconciliation %s" % verdict(verdicts_ok(c))
    else:
        # A fraction of the day with the full run's settings: its rate says where the full day
        # would land.
        what = "%.1f s, %s reads/s (projected full day: %.0f s); %s" % (
            rp["wall_s"], fmt(rp["reads_per_s"]), projected_s(c), rec)
        v = "%s (projected from %g of the day); reconciliation %s" % (
            verdict(projected_s(c) < TARGET_S), c["scale"], verdict(verdicts_ok(c)))
    return ("5", "a city's day through lpr-bridge → gateway (%s)" % size, what,
            "full day < 2 min, reconciled", v)


def report(c, mode_name, w, fmt, verdict, cores):
    rp, ex, ck, br = c["replay"], c["expected"], c["checks"], c["bridge"]
    v = ck["verdicts"]
    w("## 5. A city's day")
    w("")
    scale = "" if full_size(c, mode_name) else (
        " **This run is the quick size** (CI's `bench/run --quick`): %s lots and %s stays instead "
        "of 2 000 and 900 000; its reads/s are those of %s lots pushing at once, not of 2 000." % (
            fmt(c["lots"]), fmt(c["stays"]), fmt(c["lots"])) if mode_name == "quick" else
        " **This run is %g of the full day** (`--city-scale %g`): lots, spaces and stays scaled "
        "alike." % (c["scale"], c["scale"]))
    w("The city (bench/cityday.py, seed %d): %s lots in %d districts of Hangzhou (%s), %s spaces, "
      "%s cameras (one per lane, 1 to 3 entry and as many exit lanes a lot), one lpr-bridge "
      "device per lot; the shipped tariffs (%s lots). Capacity: each lot's spaces, raised to the "
      "day's peak in %s lots (%s configured in all), since nobody pays on site here and the "
      "exits held `not_enrolled` keep their sessions open; so no read is held `lot_full`.%s" % (
          c["seed"], fmt(c["lots"]), len(c["districts"]),
          ", ".join("%s %d" % kv for kv in sorted(c["districts"].items(), key=lambda kv: -kv[1])),
          fmt(c["spaces"]), fmt(c["cameras"]),
          ", ".join("%s %d" % kv for kv in sorted(c["tariffs"].items(), key=lambda kv: -kv[1])),
          fmt(c["capacity_bumped"]), fmt(c["capacity_config"]), scale))
    w("")
    r = c["rates"]
    w("The day, %s (yesterday, local; every capture time in the past): %s stays of %s distinct "
      "vehicles, commuters in at the morning peak and out at the evening peak, visitors through "
      "the day, evening stays and short stops inside the free minutes; %s drivers enrolled "
      "(%.0f %% of the vehicles, `POST /v1/drivers`, %s/s, set-up, not timed). %s camera reads "
      "(OpenALPR `alpr_results` JSON with the synthetic capture time as `epoch_time`): entry "
      "reads %.0f %% unreadable (`无牌`), %.0f %% misread, %.0f %% duplicated; exit reads "
      "%.0f %% unreadable, %.0f %% misread (half of them with the right plate among the "
      "candidates), %.0f %% duplicated. Reads per hour of the day:" % (
          c["date"], fmt(c["stays"]), fmt(c["stays"]), fmt(c["drivers"]), r["enrolled"] * 100,
          fmt(c["enrolment"]["rate"]), fmt(c["reads"]), r["entry_unreadable"] * 100,
          r["entry_misread"] * 100, r["entry_duplicate"] * 100, r["exit_unreadable"] * 100,
          r["exit_misread"] * 100, r["exit_duplicate"] * 100))
    w("")
    h = c["reads_by_hour"]
    w("| hour | " + " | ".join("%02d" % i for i in range(24)) + " |")
    w("|---|" + "---|" * 24)
    w("| reads | " + " | ".join(fmt(x) for x in h) + " |")
    w("")
    w("Capture times in the past: the gateway refuses only times more than 24 h ahead; the HMAC "
      "clock window (`clock_window_s`) is about `X-Park-Timestamp`, which lpr-bridge sets when it "
      "signs and forwards, not about the capture time; fees are computed on the capture times and "
      "each lot-day counter is the capture's local date (docs/lane-api.md, docs/redis.md). So the "
      "day is replayed with its own times and its report is that date's.")
    w("")
    w("The replay: every read one `POST /v1/cameras/{camera}` to the real lpr-bridge (which "
      "spools and fsyncs it before answering, then forwards it signed to the real gateway, one "
      "event in flight per lot), sent by bench/loadgen closed loop over %d connections, a lot's "
      "reads one at a time in the day's order (`--serial-header X-Bench-Lot`: in a day "
      "compressed this much, a lot's entry and exit cameras must not overtake each other, and a "
      "duplicate must reach the bridge after the read it repeats). Redis (AOF everysec), "
      "gateway and bridge of their own, log level info, billing not running. The clock starts "
      "at the first push and stops when the gateway has decided every read the bridge forwards "
      "(its decision counters polled every 20 ms): an exit's bill is queued on its lot's "
      "settlement stream by the script that decides it, before the answer." % (
          rp["loadgen"]["conns"]))
    w("")
    w("    %s" % c["command"])
    w("")
    cpu = rp["cpu"]
    n = c["reads"]
    w("| | |")
    w("|---|---|")
    w("| reads pushed | %s (%s answered 2xx, %s errors) |" % (
        fmt(n), fmt(rp["loadgen"]["ok2xx"]), fmt(rp["loadgen"]["errors"] +
                                                rp["loadgen"]["other_status"])))
    w("| **wall time, first push to last decision** | **%.1f s**%s |" % (
        rp["wall_s"], " (**stalled**: %s; to the last progress)" % rp["stalled"]
        if rp.get("stalled") else ""))
    w("| **reads/s end to end** | **%s** |" % fmt(rp["reads_per_s"]))
    w("| every push answered by the bridge after | %.1f s (camera's wait p50 %.1f ms, p99 "
      "%.1f ms) |" % (rp["pushes_answered_s"], rp["loadgen"]["p50_us"] / 1000,
                      rp["loadgen"]["p99_us"] / 1000))
    w("| CPU per read: lpr-bridge / gateway / Redis | %.0f / %.0f / %.0f µs (%.2f / %.2f / %.2f "
      "of a core) |" % tuple([cpu[k] * 1e6 / n for k in ("bridge", "gateway", "redis")] +
                            [cpu[k] / cpu["wall"] for k in ("bridge", "gateway", "redis")]))
    if mode_name == "full" and c["scale"] != 1.0:
        w("| the full day (%s reads) at this rate | %.0f s (projected, not measured) |" % (
            fmt(int(FULL_READS)), projected_s(c)))
    w("")
    if full_size(c, mode_name):
        w("Target: the full day in under 2 minutes on this 2-core machine: %s." % verdict(
            rp["wall_s"] < TARGET_S))
    elif mode_name == "full":
        w("Target: the full day in under 2 minutes; this run is not the full day (projection "
          "above; the projection is only the ratio of reads): %s." % verdict(
              projected_s(c) < TARGET_S))
    else:
        w("Target: the full day in under 2 minutes; the quick size's 20 lots push far fewer "
          "reads at once than 2 000, so its rate says little about the full day's.")
    w("The three processes need %.0f µs of CPU per read between them, so 2 cores can do at most "
      "about %s reads/s (the load client and the machine's other users less): %.0f s for the "
      "full day even with nothing else running." % (
          sum(cpu[k] for k in ("bridge", "gateway", "redis")) * 1e6 / n,
          fmt(cores / (sum(cpu[k] for k in ("bridge", "gateway", "redis")) / n)),
          FULL_READS * sum(cpu[k] for k in ("bridge", "gateway", "redis")) / n / cores))
    w("")
    w("Decisions (the gateway's `park_gateway_decisions_total`), against what the generator "
      "expects of each read:")
    w("")
    w("| direction | decision | reason | decided | expected |")
    w("|---|---|---|---|---|")
    exp = {"entry/open/entry": ex["sessions"], "entry/hold/unreadable": ex["entry_unreadable"]}
    for k, val in ex["exit"].items():
        exp["exit/%s/%s" % ("open" if k in ("credit_ok", "free_period") else "hold", k)] = val
    for k in sorted(set(exp) | set(c["decisions"])):
        d, dec, reason = k.split("/")
        w("| %s | %s | `%s` | %s | %s |" % (d, dec, reason, fmt(c["decisions"].get(k, 0)),
                                           fmt(exp.get(k, 0))))
    w("")
    lk = ck["leakage"]
    w("lpr-bridge: %s reads forwarded, **%s duplicates suppressed** (of %s generated), **%s "
      "unreadable** (`无牌`) forwarded as such, %s refused, %s retries, spool depth %s at the "
      "end. Misreads: %s entry and %s exit reads misread; exits matched (leakage report) "
      "exact %s, **by a candidate %s, by confusable characters %s** (expected %s / %s / %s), "
      "without entry record %s." % (
          fmt(br["outcomes"].get("forwarded", 0)), fmt(br["outcomes"].get("suppressed", 0)),
          fmt(c["duplicates"]["entry"] + c["duplicates"]["exit"]),
          fmt(br["outcomes"].get("unreadable", 0)), fmt(br["refused_total"]),
          fmt(br["forward_retries_total"]), fmt(br["spool_depth"]), fmt(ex["misread_entry"]),
          fmt(ex["misread_exit"]), fmt(lk.get("matched_exact", 0)),
          fmt(lk.get("matched_candidate", 0)), fmt(lk.get("matched_fuzzy", 0)),
          fmt(ex["match"]["exact"]), fmt(ex["match"]["candidate"]), fmt(ex["match"]["fuzzy"]),
          fmt(lk.get("exits_unmatched", 0))))
    w("")
    rep = ck["report"]
    w("The day's revenue report (`GET /v1/reports/revenue?from=%s&to=%s`, every lot, %d rows) "
      "against Redis:" % (c["date"], c["date"], ck["rows"]))
    w("")
    w("| check | report | Redis / replay | verdict |")
    w("|---|---|---|---|")
    w("| billed = paid + paid_late + paid_on_site + outstanding + overdue + defaulted + waived "
      "+ refunded, on every row | %d of %d rows | — | %s |" % (
          ck["rows_identity_ok"], ck["rows"], verdict(v["row_identity"])))
    w("| billed total (fen) == every bill's `amount`, read from its record `pk:{L}:s:<n>` "
      "through the settlement streams | %s | %s (%s bills, %s of them `pending`) | %s |" % (
          fmt(rep["billed"]), fmt(ck["bills_amount"]), fmt(ck["bills_read"]),
          fmt(ck["bills_read"] - ck["bills_not_pending"]), verdict(v["billed_eq_bills"])))
    w("| bills == bills queued (XLEN of every `pk:{L}:bills`) == `credit_ok` exits | %s | %s / "
      "%s | %s |" % (fmt(rep["bills"]), fmt(ck["bills_queued"]),
                     fmt(c["decisions"].get("exit/open/credit_ok", 0)),
                     verdict(v["billed_eq_bills"])))
    w("| entries == entry reads replayed − duplicates − unreadables | %s | %s − %s − %s | %s |" % (
        fmt(rep["entries"]), fmt(ex["entry_reads"] + c["duplicates"]["entry"]),
        fmt(c["duplicates"]["entry"]), fmt(ex["entry_unreadable"]), verdict(v["entries"])))
    w("| exits == exit decisions that opened (exit reads − duplicates − unreadables − held) | "
      "%s | %s | %s |" % (fmt(rep["exits"]), fmt(sum(val for k, val in c["decisions"].items()
                                                     if k.startswith("exit/open/"))),
                          verdict(v["exits"])))
    w("| every forwarded read decided once (decisions, bridge deliveries, none answered from "
      "another's idempotency record; suppressed == duplicates) | — | %s decided, %s delivered, "
      "%s replays, %s expected | %s |" % (
          fmt(rp["decided"]), fmt(br["delivered_total"]), fmt(c["gateway_replays"]),
          fmt(ex["forwarded"]), verdict(v["every_read_decided_once"])))
    f = ck["fees"]
    w("| fees: %d bills drawn at random, record's entry/exit == the stay's capture times, amount "
      "== `parkctl fee` of the lot's tariff | — | %d wrong times, %d wrong amounts | %s |" % (
          f["checked"], f["times_wrong"], f["amount_wrong"], verdict(v["fees"])))
    w("| decisions and matches == the generator's expectations | — | — | %s |" % verdict(
        v["as_generated"]))
    w("")
    w("Billed %s (%s yuan) in %s bills, all `outstanding` (billing did not run): the day's "
      "money counted in the day of its exits (%s)." % (
          fmt(rep["billed"]), fmt(rep["billed"] / 100.0, 2), fmt(rep["bills"]),
          ", ".join("%s: %s bills" % (k, fmt(val)) for k, val in ck["bill_days"].items())))
    w("")
