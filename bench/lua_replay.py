#!/usr/bin/env python3
"""Redis CPU of the scripts, build against build, on the same traffic (docs/redis.md, "Less Lua per
event").

    python3 bench/lua_replay.py capture [--sessions N] [--out DIR]
    python3 bench/lua_replay.py replay --scripts <build>/common/lua_scripts.c [--capture DIR]
                                       [--week] [--again] [--slowlog] [--replies PREFIX]

capture: a bench city (bench/run's City: Redis, the Stripe mock, the gateway of build-bench/,
which `bench/run` builds) enrols N drivers; the RDB is saved; then N entries and N billed exits go
through the gateway under `redis-cli MONITOR`.  DIR gets dump.rdb and monitor.txt.

replay: a redis-server of its own (AOF on, fsync every second, as bench/run) loads the RDB, the
scripts of the given generated file (a Functions library, or the scripts of a build before it,
loaded with SCRIPT LOAD and called with EVALSHA), then gets every command the gateway sent, in
order, 16 at a time on one connection; Redis CPU (INFO cpu) per event of each phase.  --week first
gives the lot seven earlier days of idempotency tables (1 024 records each), as after a week;
--again replays everything a second time (every event a replay); --slowlog prints the SLOWLOG time
per script; --replies PREFIX writes every reply (XADD's ids left out) and the final state (every
key; streams without their ids) to PREFIX.<phase> and PREFIX.state, for a diff between builds.

The scripts of another revision, without building it:
    git archive REV common/lua cmake/EmbedLua.cmake | tar -x -C /tmp/rev
    cmake -DSRC=/tmp/rev/common/lua -DOUT=/tmp/rev.c -DSCRIPTS=$(ls /tmp/rev/common/lua/*.lua |
      xargs -n1 basename | sed 's/\\.lua$//' | grep -v '^prelude$\\|_lib$' | sort | paste -sd, -) \\
      -P /tmp/rev/cmake/EmbedLua.cmake
"""
import argparse
import collections
import importlib.machinery
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def capture(args):
    run = importlib.machinery.SourceFileLoader("benchrun", os.path.join(HERE, "run")).load_module()
    B = run.B
    os.makedirs(args.out, exist_ok=True)
    city = run.City(B.tempdir("capture"))
    try:
        r = city.redis
        plates = city.plates(args.sessions, "A")
        city.enrol(plates)
        time.sleep(1.0)
        subprocess.run(["redis-cli", "-p", str(r.port), "--rdb", os.path.join(args.out, "dump.rdb")],
                       capture_output=True, check=True)
        mon = subprocess.Popen(["redis-cli", "-p", str(r.port), "MONITOR"],
                               stdout=open(os.path.join(args.out, "monitor.txt"), "w"))
        time.sleep(0.5)
        r.cmd("ECHO", "phase:entry")
        city.enter("BENCH-X", plates)
        time.sleep(0.5)
        r.cmd("ECHO", "phase:exit")
        f = B.write_requests(city.file("exits"), city.exits("BENCH-X", plates))
        out = run.loadgen(city.gw.port, f, expect='"credit_ok"')
        print("exits: %d of %d credit_ok" % (out["expected"], out["requests"]))
        time.sleep(1.0)
        r.cmd("ECHO", "phase:end")
        time.sleep(0.5)
        mon.terminate()
    finally:
        city.close()
        if city.mock:
            B.stop(city.mock.proc)
        B.cleanup()


def c_strings(text):
    body = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', text))
    return body.encode().decode("unicode_escape").encode("latin-1")


def load_scripts(path):
    """(library text, {script: function}), or (None, {script: source}) for a build before the
    library."""
    src = open(path, encoding="utf-8").read()
    if "cmn_lua_library" not in src:
        return None, {m.group(1): c_strings(m.group(2)) for m in re.finditer(
            r'static const char script_(\w+)\[\] =\s*((?:"(?:[^"\\]|\\.)*"\s*)+);', src)}
    m = re.search(r'const char cmn_lua_library\[\] =\s*((?:"(?:[^"\\]|\\.)*"\s*)+);', src)
    return c_strings(m.group(1)), dict(re.findall(r'\{"(\w+)", "(\w+)"\}', src))


TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"')
ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("a"): 7, ord("b"): 8, ord("\\"): 92,
           ord('"'): 34}


def unrepr(s):
    """An argument as MONITOR shows it (sdscatrepr) back to its bytes."""
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == 92:
            if s[i + 1] == ord("x"):
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
            else:
                out.append(ESCAPES[s[i + 1]])
                i += 2
        else:
            out.append(s[i])
            i += 1
    return bytes(out)


SKIP = (b"INFO", b"PING", b"CLIENT", b"MONITOR", b"SLOWLOG", b"CONFIG", b"FUNCTION", b"SCRIPT",
        b"LATENCY")


def parse_monitor(path):
    """{phase: [command]}: the commands clients sent (not those run inside scripts)."""
    phases, cur = collections.OrderedDict(), None
    with open(path, "rb") as f:
        for line in f:
            m = re.match(rb"^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$", line.rstrip(b"\n"))
            if not m or m.group(1) == b"lua":
                continue
            a = [unrepr(t) for t in TOKEN.findall(m.group(2))]
            if not a:
                continue
            if a[0].upper() == b"ECHO" and a[1].startswith(b"phase:"):
                cur = a[1][6:].decode()
                phases[cur] = []
            elif cur is not None and a[0].upper() not in SKIP:
                phases[cur].append(a)
    return phases


def resp(args):
    out = bytearray(b"*%d\r\n" % len(args))
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return bytes(out)


def read_raw(f):
    """One reply, as its bytes on the wire."""
    line = f.readline()
    t = line[:1]
    if t == b"$" and int(line[1:]) >= 0:
        line += f.read(int(line[1:]) + 2)
    elif t == b"*":
        for _ in range(max(int(line[1:]), 0)):
            line += read_raw(f)
    elif t not in (b"+", b"-", b":", b"$"):
        raise RuntimeError("bad reply %r" % line)
    return line


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def run(self, cmds, window=16, log=None):
        """Sends cmds `window` at a time; the number of error replies."""
        errors = 0
        for i in range(0, len(cmds), window):
            part = cmds[i:i + window]
            self.s.sendall(b"".join(resp(a) for a in part))
            for a in part:
                raw = read_raw(self.f)
                if raw[:1] == b"-":
                    errors += 1
                    if errors < 4:
                        sys.stderr.write("error: %r\n" % raw[:300])
                if log is not None and a[0].upper() != b"XADD":
                    log.write(repr(raw) + "\n")
        return errors

    def cmd(self, *args):
        self.s.sendall(resp(args))
        return self.value()

    def value(self):
        line = self.f.readline()
        t = line[:1]
        if t == b"$":
            n = int(line[1:])
            return self.f.read(n + 2)[:-2] if n >= 0 else None
        if t == b"*":
            return [self.value() for _ in range(int(line[1:]))]
        if t == b":":
            return int(line[1:])
        if t == b"-":
            raise RuntimeError(line.decode().strip())
        return line[1:].rstrip().decode()


def cpu_seconds(c):
    d = dict(l.split(":", 1) for l in c.cmd("INFO", "cpu").decode().splitlines() if ":" in l)
    return float(d["used_cpu_user"]) + float(d["used_cpu_sys"])


def persistence(c):
    return c.cmd("INFO", "persistence").decode()


def add_week(c, phases):
    """Seven earlier days of idempotency tables at the lot: 16 buckets of 64 records each (state
    level 0, split 0 in the lot's meta: docs/redis.md, "Buckets")."""
    first = next(a for a in phases["entry"] if a[0].upper() == b"FCALL" or
                 a[0].upper() == b"EVALSHA")
    today = int(re.search(rb":idem:(\d+)$", first[13]).group(1))  # KEYS[11] of the entry script
    lot, rnd, cmds = b"pk:{BENCH-X}:", random.Random(7), []
    for d in range(1, 8):
        table = lot + b"idem:%d" % (today - d)
        cmds.append([b"HSET", lot + b"meta", table, b"0"])
        for b in range(16):
            hset = [b"HSET", table + b":%d" % b]
            for _ in range(64):
                hset += [rnd.randbytes(12),
                         rnd.randbytes(8) + b"open\x1fentry\x1f\x1fBENCH-X~1\x1f\x1f\x1f\x1fwelcome"]
            cmds.append(hset)
    c.run(cmds, window=64)


def dump_state(c, path):
    with open(path, "w") as out:
        for k in sorted(c.cmd("KEYS", "*")):
            t = c.cmd("TYPE", k)
            v = {"hash": lambda: sorted(zip(*[iter(c.cmd("HGETALL", k))] * 2)),
                 "set": lambda: sorted(c.cmd("SMEMBERS", k)),
                 "zset": lambda: c.cmd("ZRANGE", k, 0, -1, "WITHSCORES"),
                 "list": lambda: c.cmd("LRANGE", k, 0, -1),
                 "stream": lambda: [e[1] for e in c.cmd("XRANGE", k, "-", "+")],
                 "string": lambda: c.cmd("GET", k)}[t]()
            out.write("%r %s %s %r\n" % (k, t, "ttl" if c.cmd("TTL", k) >= 0 else "no-ttl", v))


def replay(args):
    lib, names = load_scripts(args.scripts)
    phases = parse_monitor(os.path.join(args.capture, "monitor.txt"))
    phases.pop("end", None)
    if args.again:
        for ph in list(phases):
            phases[ph + "_again"] = [list(a) for a in phases[ph]]
    d = tempfile.mkdtemp(prefix="park-lua-replay-")
    shutil.copy(os.path.join(args.capture, "dump.rdb"), os.path.join(d, "dump.rdb"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                          "--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "",
                          "--logfile", os.path.join(d, "redis.log")])
    try:
        for _ in range(100):
            try:
                c = Conn(port)
                c.cmd("PING")
                break
            except (OSError, RuntimeError):
                time.sleep(0.1)
        while "loading:1" in persistence(c):
            time.sleep(0.1)
        # AOF on as bench/run has it, once the RDB is in (a server started with AOF on would not
        # read the RDB).
        c.cmd("CONFIG", "SET", "appendonly", "yes")
        c.cmd("CONFIG", "SET", "appendfsync", "everysec")
        while "aof_rewrite_in_progress:0" not in persistence(c) or \
                "aof_rewrite_scheduled:0" not in persistence(c):
            time.sleep(0.1)
        if lib is not None:
            c.cmd("FUNCTION", "LOAD", "REPLACE", lib)
        else:
            names = {n: c.cmd("SCRIPT", "LOAD", src) for n, src in names.items()}
        if args.week:
            add_week(c, phases)
        for ph, cmds in phases.items():
            events = 0
            for a in cmds:
                if a[0].upper() == b"FCALL":
                    name = re.sub(rb"_[0-9a-f]{12}$", b"", a[1]).decode()
                    events += name in ("entry", "exit_lookup")
                    if lib is None:
                        a[0], a[1] = b"EVALSHA", names[name]
                    else:
                        a[1] = names[name].encode()
            c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0" if args.slowlog else "-1")
            c.cmd("CONFIG", "SET", "slowlog-max-len", "1000000")
            c.cmd("SLOWLOG", "RESET")
            log = open("%s.%s" % (args.replies, ph), "w") if args.replies else None
            c0 = cpu_seconds(c)
            errors = c.run(cmds, log=log)
            c1 = cpu_seconds(c)
            if log:
                log.close()
            print("%s: %d events, %d commands, %d error replies; Redis CPU %.1f us per event" % (
                ph, events, len(cmds), errors, (c1 - c0) * 1e6 / max(events, 1)))
            if args.slowlog:
                c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1")
                agg = collections.defaultdict(lambda: [0, 0])
                for e in c.cmd("SLOWLOG", "GET", "-1"):
                    k = e[3][0].decode().lower()
                    if k in ("fcall", "evalsha"):
                        k = "script " + (re.sub(r"_[0-9a-f]{12}$", "", e[3][1].decode())
                                         if k == "fcall" else
                                         next((n for n, v in names.items() if v == e[3][1]), "?"))
                    agg[k][0] += 1
                    agg[k][1] += e[2]
                for k, (n, us) in sorted(agg.items(), key=lambda x: -x[1][1])[:8]:
                    print("    %-28s %6d calls %7.1f us each (SLOWLOG, wall time)" % (k, n, us / n))
        if args.replies:
            dump_state(c, args.replies + ".state")
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--sessions", type=int, default=2000)
    c.add_argument("--out", default="lua-capture")
    r = sub.add_parser("replay")
    r.add_argument("--scripts", required=True, help="a generated lua_scripts.c")
    r.add_argument("--capture", default="lua-capture")
    r.add_argument("--week", action="store_true")
    r.add_argument("--again", action="store_true")
    r.add_argument("--slowlog", action="store_true")
    r.add_argument("--replies")
    args = ap.parse_args()
    capture(args) if args.what == "capture" else replay(args)


if __name__ == "__main__":
    main()
