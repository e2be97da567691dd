"""Redis cost of the lane decisions, measured on the real gateway and a real redis-server:
round trips and commands per entry and per exit (INFO commandstats deltas), and Redis bytes per open
session (INFO memory deltas: every key an entry costs, its indexes, idempotency record, stream entry
and counters included).

    python3 bench/redis_cost.py [--sessions N] [--bin build/bin]
"""
import argparse
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402


def commandstats(redis):
    out = {}
    for line in redis.cli("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[8:].split(":", 1)
            out[name] = int(dict(kv.split("=") for kv in rest.split(","))["calls"])
    return out


def used_memory(redis):
    for line in redis.cli("INFO", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory")


def delta(a, b):
    return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b) if b.get(k, 0) != a.get(k, 0)}


def send_all(gw, device, bodies):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    for body in bodies:
        data = json.dumps(body, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        import hashlib
        import hmac
        sig = hmac.new(harness.DEVICE_KEYS[device].encode(),
                       b"\n".join([ts.encode(), b"POST", b"/v1/events", device.encode(), data]),
                       hashlib.sha256).hexdigest()
        conn.request("POST", "/v1/events", data, {"X-Park-Device": device, "X-Park-Timestamp": ts,
                                                    "X-Park-Signature": sig})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError("status %d" % r.status)
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20000)
    ap.add_argument("--bin", default=None)
    args = ap.parse_args()
    if args.bin:
        harness.BIN = args.bin
    redis = harness.Redis(cluster=False)
    gw = harness.Gateway(redis, {"lots.0.capacity": 1000000})
    try:
        now = int(time.time())
        plates = ["浙A%05d" % i for i in range(args.sessions)]
        # Warm up the lot's keys (hash encodings, streams, counters) before measuring.
        send_all(gw, "dev-a-in", [harness.ev("LOT-A", "in", "entry", "浙B%05d" % i,
                                             harness.iso(now - 7200)) for i in range(200)])
        m0, c0 = used_memory(redis), commandstats(redis)
        send_all(gw, "dev-a-in", [harness.ev("LOT-A", "in", "entry", p, harness.iso(now - 7200))
                                  for p in plates])
        m1, c1 = used_memory(redis), commandstats(redis)
        n_exit = min(2000, args.sessions)
        send_all(gw, "dev-a-out", [harness.ev("LOT-A", "out", "exit", p, harness.iso(now - 60))
                                   for p in plates[:n_exit]])
        c2 = commandstats(redis)
        entry = delta(c0, c1)
        exit_ = delta(c1, c2)
        print("entries: %d, Redis bytes per open session: %.1f" % (args.sessions,
                                                                  (m1 - m0) / args.sessions))
        print("per entry: %s" % {k: v / args.sessions for k, v in sorted(entry.items())})
        print("per exit (unenrolled, held): %s" % {k: v / n_exit for k, v in sorted(exit_.items())})
    finally:
        gw.destroy()
        redis.destroy()


if __name__ == "__main__":
    main()
