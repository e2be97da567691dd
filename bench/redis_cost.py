"""Redis cost of the lane decisions, measured on the real gateway and a real redis-server:
round trips and commands per entry and per exit, and Redis bytes per open session (INFO memory
deltas: every key an entry costs, its indexes, idempotency record, stream entry and counters
included).

    python3 bench/redis_cost.py [--sessions N] [--serial N] [--bin build/bin]

The round trips on an answer's path are measured apart: a second gateway reaches Redis through a
proxy that delays what the gateway sends by 20 ms, so an answer takes about 20 ms per sequential
round trip (answer_path_round_trips).

Round trips and commands come from a serial run: events sent one at a time over one keep-alive
connection, each followed by a short pause so that what the gateway sends to Redis after its answer
(the driver update of a billed exit) is counted with the event, under `redis-cli MONITOR` (which
names every command the gateway sends, and every command run inside its scripts) and with `INFO
stats` `total_reads_processed` (Redis reads once per round trip when events do not overlap).
Scripts are functions of one Redis Functions library (FCALL <script>_<hash>), named by the table
the build embeds (<build>/common/lua_scripts.c).
bench/run uses the same functions (section 2 of bench/RESULTS.md); this file runs them alone.
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


def script_names(build_dir):
    """Function -> name of the scripts the programs call (FCALL <function>), from the table of the
    generated lua_scripts.c ({"<name>", "<name>_<hash>"})."""
    with open(os.path.join(build_dir, "common", "lua_scripts.c"), encoding="utf-8") as f:
        text = f.read()
    return {fn: name for name, fn in re.findall(r'\{"(\w+)", "(\w+)"\}', text)}


MON_RE = re.compile(r'^(\d+\.\d+) \[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]*)")?')


def parse_monitor(path, shas):
    """Commands seen by MONITOR, by phase (ECHO bench-phase:<name> markers):
    {phase: {"top": {command: n}, "lua": {command: n}}}; FCALL is named by its script."""
    phases = {}
    cur = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = MON_RE.match(line)
            if not m:
                continue
            _, who, cmd, arg = m.groups()
            cmd = cmd.upper()
            if cmd == "ECHO" and arg and arg.startswith("bench-phase:"):
                cur = phases.setdefault(arg[12:], {"top": {}, "lua": {}})
                continue
            if cur is None or cmd in ("INFO", "ECHO", "MONITOR", "PING", "CLIENT"):
                continue
            if who == "lua":
                cur["lua"][cmd] = cur["lua"].get(cmd, 0) + 1
            else:
                name = cmd
                if cmd == "FCALL":
                    name = "FCALL " + shas.get(arg, arg or "?")
                cur["top"][name] = cur["top"].get(name, 0) + 1
    return phases


def send_serial(redis, gw_port, reqs, expect, pause=0.005):
    """Sends pre-built requests one at a time; returns the Redis reads they caused and the time
    taken.  Each answer must be 200 and contain `expect`."""
    t0 = time.monotonic()
    reads0 = redis.reads_processed()
    conn = http.client.HTTPConnection("127.0.0.1", gw_port, timeout=30)
    bad = 0
    for raw in reqs:
        head, body = raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        hdr = dict(line.split(": ", 1) for line in lines[1:])
        hdr.pop("Content-Length", None)
        hdr.pop("Host", None)
        conn.request(method, path, body, hdr)
        r = conn.getresponse()
        data = r.read()
        if r.status not in (200, 201) or expect.encode() not in data:
            bad += 1
        time.sleep(pause)  # lets the commands sent after the answer reach Redis
    conn.close()
    # The INFO that reads the counter is itself one read.
    reads = redis.reads_processed() - reads0 - 1
    if bad:
        raise RuntimeError("%d of %d events not answered with %s" % (bad, len(reqs), expect))
    return {"reads": reads, "seconds": time.monotonic() - t0}


def serial_costs(redis, gw_port, build_dir, phases):
    """phases: [(name, requests, expected text)].  Per event of each phase: round trips (reads,
    the gateway's idle traffic subtracted), commands the gateway sent, commands run in scripts."""
    mon_path = os.path.join(B.tempdir("park-bench-monitor-"), "monitor.txt")
    mon_out = open(mon_path, "wb")
    mon = B.register(subprocess.Popen(["redis-cli", "-p", str(redis.port), "MONITOR"],
                                      stdout=mon_out, stderr=subprocess.DEVNULL))
    B.wait_for(lambda: redis.cmd("ECHO", "bench-phase:start") and os.path.getsize(mon_path) > 0,
               10, "MONITOR")
    # The gateway's own traffic with no event (its Redis client's health checks, if any).
    r0 = redis.reads_processed()
    time.sleep(1.0)
    idle = redis.reads_processed() - r0 - 1
    runs = {}
    for name, reqs, expect in phases:
        redis.cmd("ECHO", "bench-phase:" + name)
        runs[name] = send_serial(redis, gw_port, reqs, expect)
        runs[name]["n"] = len(reqs)
    redis.cmd("ECHO", "bench-phase:end")

    def ended():
        with open(mon_path, "rb") as f:
            f.seek(max(0, os.path.getsize(mon_path) - 4096))
            return b"bench-phase:end" in f.read()
    B.wait_for(ended, 10, "MONITOR")
    B.stop(mon)
    mon_out.close()
    seen = parse_monitor(mon_path, script_names(build_dir))
    out = {"idle_reads_per_s": idle}
    for name, run in runs.items():
        n = run["n"]
        ph = seen.get(name, {"top": {}, "lua": {}})
        out[name] = {"n": n,
                     "reads_per_event": (run["reads"] - idle * run["seconds"]) / n,
                     "top": {k: v / n for k, v in sorted(ph["top"].items())},
                     "lua": {k: v / n for k, v in sorted(ph["lua"].items())}}
    return out


class DelayProxy:
    """A TCP proxy in front of Redis that holds every byte the client sends for `delay_ms` before
    passing it on (answers come back at once), in a thread of this process.  A request that needs
    k sequential round trips to Redis then takes about k x delay_ms more: the round trips on an
    answer's path, measured from outside the gateway."""

    def __init__(self, upstream_port, delay_ms):
        import asyncio
        import threading
        self.delay = delay_ms / 1000.0
        self.upstream = upstream_port
        self.loop = asyncio.new_event_loop()
        self.port = None
        ready = threading.Event()

        async def pipe_delayed(reader, writer):
            q = asyncio.Queue()

            async def pump():
                while True:
                    at, data = await q.get()
                    if data is None:
                        break
                    wait = at - self.loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    writer.write(data)
                    await writer.drain()
                writer.close()
            task = asyncio.ensure_future(pump())
            while True:
                data = await reader.read(65536)
                await q.put((self.loop.time() + self.delay, data or None))
                if not data:
                    break
            await task

        async def pipe(reader, writer):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            writer.close()

        async def client(creader, cwriter):
            try:
                ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream)
            except OSError:
                cwriter.close()
                return
            await asyncio.gather(pipe_delayed(creader, uwriter), pipe(ureader, cwriter),
                                 return_exceptions=True)

        async def start():
            srv = await asyncio.start_server(client, "127.0.0.1", 0)
            self.port = srv.sockets[0].getsockname()[1]
            ready.set()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


def answer_path_round_trips(bindir, redis, mock_url, customer, n=20, delay_ms=20):
    """Round trips to Redis on the path of each answer, measured: a second gateway reaches Redis
    through a DelayProxy adding delay_ms to everything it sends; entries then exits (enrolled
    drivers) one at a time; (median answer time) / delay_ms per kind of event."""
    proxy = DelayProxy(redis.port, delay_ms)

    class Via:
        port = proxy.port
    gw = B.Gateway(bindir, Via, mock_url)
    try:
        now = int(time.time())
        plates = [B.plate(11000000 + i, "K") for i in range(n)]
        out = {"delay_ms": delay_ms, "n": n}
        phases = (("enrolment", B.driver_requests(plates, customer, 5 * 10 ** 6, "bk"), '"id"'),
                  ("entry", B.entry_requests("BENCH-R", plates, now, B.rng(7), 5 * 10 ** 6),
                   '"entry"'),
                  ("exit", B.exit_requests("BENCH-R", plates, now, 5 * 10 ** 6), '"credit_ok"'))
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        for name, reqs, expect in phases:
            times = []
            for raw in reqs:
                head, body = raw.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                hdr = dict(line.split(": ", 1) for line in lines[1:])
                hdr.pop("Content-Length", None)
                hdr.pop("Host", None)
                t0 = time.monotonic()
                conn.request(method, path, body, hdr)
                r = conn.getresponse()
                data = r.read()
                times.append(time.monotonic() - t0)
                if r.status not in (200, 201) or expect.encode() not in data:
                    raise RuntimeError("%s through the delaying proxy: %d %r" % (name, r.status,
                                                                                 data[:200]))
                time.sleep(3 * delay_ms / 1000.0)  # what follows the answer gets through
            times.sort()
            med = times[len(times) // 2]
            out[name] = {"median_ms": med * 1000, "round_trips": med * 1000 / delay_ms}
        conn.close()
        return out
    finally:
        B.stop(gw.proc)
        proxy.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20000, help="open sessions for the memory")
    ap.add_argument("--serial", type=int, default=200, help="entries and exits in the serial run")
    ap.add_argument("--bin", default=os.path.join(B.ROOT, "build", "bin"))
    args = ap.parse_args()
    build_dir = os.path.dirname(os.path.abspath(args.bin))
    redis = B.Redis()
    mock = B.StripeMock()
    gw = B.Gateway(args.bin, redis, mock.url)
    rng = B.rng()
    now = int(time.time())

    # Bytes per open session: one lot, warmed up first (hash encodings, streams, counters).
    warm = [B.plate(i, "E") for i in range(200)]
    send_serial(redis, gw.port, B.entry_requests("BENCH-M", warm, now, rng, 0), '"entry"', 0)
    m0 = redis.used_memory()
    plates = [B.plate(200 + i, "E") for i in range(args.sessions)]
    for i in range(0, len(plates), 20000):
        part = plates[i:i + 20000]
        send_serial(redis, gw.port, B.entry_requests("BENCH-M", part, now, rng, 200 + i),
                    '"entry"', 0)
    m1 = redis.used_memory()

    # Round trips and commands: enrolled drivers, so that exits are credit_ok and bill.
    n = args.serial
    plates = [B.plate(i, "C") for i in range(n)]
    cus = mock.customer()
    send_serial(redis, gw.port, B.driver_requests(plates, cus, 0), '"id"', 0)
    costs = serial_costs(redis, gw.port, build_dir, [
        ("entry", B.entry_requests("BENCH-R", plates, now, rng, 10 ** 6), '"entry"'),
        ("exit", B.exit_requests("BENCH-R", plates, now, 10 ** 6), '"credit_ok"')])
    path = answer_path_round_trips(args.bin, redis, mock.url, cus)
    print("entries: %d, Redis bytes per open session: %.1f" % (args.sessions,
                                                              (m1 - m0) / args.sessions))
    for name in ("entry", "exit"):
        c = costs[name]
        print("per %s (%d, serial): %.2f round trips; sent %s; in scripts %s" % (
            name, c["n"], c["reads_per_event"], json.dumps(c["top"]),
            json.dumps(c["lua"])))
    for name in ("enrolment", "entry", "exit"):
        print("%s: %.2f round trips on the answer's path (median %.1f ms through a proxy adding "
              "%d ms to each)" % (name, path[name]["round_trips"], path[name]["median_ms"],
                                  path["delay_ms"]))
    B.cleanup()


if __name__ == "__main__":
    main()
