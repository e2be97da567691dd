#!/usr/bin/env python3
"""bench/gateway_cpu.py: the gateway's own CPU per entry and per exit decision, on a bench city.

    bench/gateway_cpu.py [--bin DIR] [--n N] [--rounds K] [--perf FILE]

Starts Redis, the Stripe mock and the gateway of DIR (default build-bench/bin, as bench/run
builds it; bench/run's loadgen must have been built too) on the bench city of bench/run, then,
each round, N entries and then their N exits (each a real decision: an enrolled driver, so
credit_ok and a bill), closed loop through bench/loadgen at 50 connections.  Prints the
gateway's CPU time (utime + stime from /proc) per entry and per exit of each round.  With
--perf, the last round's exits are recorded by `perf record -g` into FILE (a build with
-fno-omit-frame-pointer gives readable call graphs).  A round whose exits are not all answered
credit_ok fails the run, with the gateway's last log lines.
"""
import argparse
import os
import subprocess
import sys
import time
from importlib.machinery import SourceFileLoader

HERE = os.path.dirname(os.path.abspath(__file__))
R = SourceFileLoader("benchrun", os.path.join(HERE, "run")).load_module()
B = R.B


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=R.BIN)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--perf")
    args = ap.parse_args()
    R.BIN = os.path.abspath(args.bin)
    city = R.City(B.tempdir("park-bench-gwcpu-"))
    try:
        gw = city.gw.proc
        plates = city.sessions("BENCH-X", 500)  # warm-up
        city.bulk(city.exits("BENCH-X", plates), "warm-up", expect='"credit_ok"')
        for rnd in range(args.rounds):
            plates = city.plates(args.n)
            city.enrol(plates)
            c0 = B.cpu_seconds(gw.pid)
            city.enter("BENCH-X", plates)
            c1 = B.cpu_seconds(gw.pid)
            f = B.write_requests(city.file("exits"), city.exits("BENCH-X", plates))
            perf = None
            if args.perf and rnd == args.rounds - 1:
                perf = subprocess.Popen(["perf", "record", "-g", "-o", args.perf, "-p",
                                         str(gw.pid)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                time.sleep(1)
            c2 = B.cpu_seconds(gw.pid)
            out = R.loadgen(city.gw.port, f, expect='"credit_ok"')
            c3 = B.cpu_seconds(gw.pid)
            if perf:
                perf.send_signal(2)
                perf.wait()
            if out["expected"] != args.n:
                print("round %d: %d of %d exits credit_ok (%s); gateway log:\n%s" % (
                    rnd, out["expected"], args.n, out["status"], city.gw.log_tail(40)))
                return 1
            print("round %d: gateway %.1f us of CPU per entry, %.1f us per exit (%.0f exits/s)" % (
                rnd, (c1 - c0) * 1e6 / args.n, (c3 - c2) * 1e6 / args.n, out["rate"]), flush=True)
        return 0
    finally:
        city.close()
        B.stop(city.mock.proc)
        B.cleanup()


if __name__ == "__main__":
    sys.exit(main())
