"""Real processes and signed requests for bench/run and bench/redis_cost.py.

Every process started here (redis-server, the gateway, billing, the Stripe mock, the fault proxy,
nginx, wrk, loadgen) is registered and killed when the bench ends, normally or not, and every
folder it used is removed (unless PARK_BENCH_KEEP=1).  Ports are free ports picked at start.
Nothing here times anything: the figures come from the C programs (loadgen, purebench), wrk,
redis-benchmark and Redis's own counters.
"""
import atexit
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# ---- process and folder registry ---------------------------------------------------------------

_procs = []
_groups = set()
_dirs = []
_cleaned = [False]


def register(proc, group=False):
    """Kills proc when the bench ends; with group, its whole process group (it was started with
    start_new_session=True: nginx's workers, say, outlive a master killed alone)."""
    _procs.append(proc)
    if group:
        _groups.add(proc.pid)
    return proc


def run(cmd, timeout):
    """Runs a command to its end like subprocess.run (text output), registered so that it is
    killed with the rest if the bench is stopped."""
    p = register(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        err += "\n(killed after %d s)" % timeout
    _procs.remove(p)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def tempdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _dirs.append(d)
    return d


def cleanup():
    if _cleaned[0]:
        return
    _cleaned[0] = True
    def signal_one(p, sig):
        try:
            if p.pid in _groups:
                os.killpg(p.pid, sig)
            elif p.poll() is None:
                p.send_signal(sig)
        except OSError:
            pass
    for p in reversed(_procs):
        signal_one(p, signal.SIGTERM)
    deadline = time.time() + 5
    for p in reversed(_procs):
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            signal_one(p, signal.SIGKILL)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if p.pid in _groups:
            signal_one(p, signal.SIGKILL)  # anything left of its group
    if os.environ.get("PARK_BENCH_KEEP") != "1":
        for d in _dirs:
            shutil.rmtree(d, ignore_errors=True)
    else:
        for d in _dirs:
            print("bench: kept " + d, file=sys.stderr)


def _on_signal(signum, frame):
    cleanup()
    sys.exit(128 + signum)


atexit.register(cleanup)
for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, _on_signal)


def stop(proc, sig=signal.SIGTERM, timeout=15):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=15.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def proc_status(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by named processes between start() and stop()."""

    def __init__(self, **procs):
        self.procs = {k: p for k, p in procs.items() if p is not None}
        self.t0 = {}

    def start(self):
        self.t0 = {k: cpu_seconds(p.pid) for k, p in self.procs.items()}
        self.wall0 = time.monotonic()
        return self

    def stop(self):
        out = {}
        for k, p in self.procs.items():
            try:
                out[k] = cpu_seconds(p.pid) - self.t0[k]
            except OSError:
                out[k] = None
        out["wall"] = time.monotonic() - self.wall0
        return out


# ---- Redis -------------------------------------------------------------------------------------

class Redis:
    """redis-server as scripts/run starts it (AOF on, fsync every second, no RDB), in a folder of
    its own on a free port."""

    def __init__(self, name="redis"):
        self.dir = tempdir("park-bench-%s-" % name)
        for _ in range(5):
            self.port = free_port()
            self.proc = register(subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "everysec",
                 "--save", "", "--daemonize", "no",
                 "--logfile", os.path.join(self.dir, "redis.log")]))
            try:
                wait_for(lambda: self.proc.poll() is None and self.cmd("PING") == "PONG",
                         10, "redis-server")
                return
            except RuntimeError:
                stop(self.proc)
        raise RuntimeError("redis-server did not start; see " + self.dir)

    def cli(self, *args, timeout=60):
        out = subprocess.run(["redis-cli", "-p", str(self.port), "--no-auth-warning"] +
                             [str(a) for a in args], capture_output=True, timeout=timeout)
        return out.stdout.decode().rstrip("\n")

    def pipeline(self, commands):
        """Sends many commands in one write and reads every answer: a list of decoded answers."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            out = bytearray()
            for args in commands:
                out += b"*%d\r\n" % len(args)
                for a in args:
                    a = a if isinstance(a, bytes) else str(a).encode()
                    out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return [_read_resp(f) for _ in commands]

    def cmd(self, *args):
        return self.pipeline([args])[0]

    def info(self, section):
        out = {}
        for line in self.cmd("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def used_memory(self):
        """INFO memory used_memory less what is only passing through: client query and output
        buffers and the AOF buffer not yet written (they grow when the disk stalls); waits up to
        5 s for those to drain first.  Every key, its encoding and the keyspace's own tables
        count."""
        transient = ("mem_clients_normal", "mem_clients_slaves", "mem_aof_buffer",
                     "mem_replication_backlog", "mem_total_replication_buffers")
        end = time.time() + 5
        while True:
            m = self.info("memory")
            passing = sum(int(m.get(k, 0)) for k in transient)
            if int(m.get("mem_aof_buffer", 0)) == 0 or time.time() > end:
                return int(m["used_memory"]) - passing
            time.sleep(0.05)

    def commandstats(self):
        """command -> (calls, usec)."""
        out = {}
        for k, v in self.info("commandstats").items():
            if k.startswith("cmdstat_"):
                d = dict(kv.split("=") for kv in v.split(","))
                out[k[8:]] = (int(d["calls"]), int(float(d["usec"])))
        return out

    def cpu_seconds(self):
        i = self.info("cpu")
        return float(i["used_cpu_user"]) + float(i["used_cpu_sys"])

    def stalls_reset(self):
        """Clears Redis's latency monitor and notes the AOF rewrites so far."""
        self.cmd("LATENCY", "RESET")
        self._rewrites = int(self.info("persistence").get("aof_rewrites", 0))

    def stalls(self):
        """Since stalls_reset: the latency monitor's events (fork, aof-write, command, ...) ->
        worst milliseconds, and the AOF rewrites started."""
        out = {}
        for ev in self.cmd("LATENCY", "LATEST") or []:
            if isinstance(ev, list) and len(ev) >= 4:
                out[ev[0]] = int(ev[3])
        rw = int(self.info("persistence").get("aof_rewrites", 0)) - getattr(self, "_rewrites", 0)
        return {"events_max_ms": out, "aof_rewrites": rw,
                "latest_fork_ms": int(self.info("stats").get("latest_fork_usec", 0)) / 1000}

    def reads_processed(self):
        return int(self.info("stats")["total_reads_processed"])


def _read_resp(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        return f.read(n + 2)[:-2].decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_read_resp(f) for _ in range(n)]
    raise OSError("bad RESP " + repr(line))


def delta(a, b):
    """Per-command (calls, usec) differences, commands that changed only."""
    out = {}
    for k in set(a) | set(b):
        ca, ua = a.get(k, (0, 0))
        cb, ub = b.get(k, (0, 0))
        if cb != ca:
            out[k] = (cb - ca, ub - ua)
    return out


# ---- the city of the bench ---------------------------------------------------------------------

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
PROVIDER = "stripe-bench"
# Lots of the bench: X for exit decisions, M for memory per open session, S for settled bills,
# T1..T3 for settlement runs.  Each with one entry and one exit lane and a device for each.
LOTS = ["BENCH-X", "BENCH-M", "BENCH-S", "BENCH-T1", "BENCH-T2", "BENCH-T3", "BENCH-T4",
        "BENCH-T5", "BENCH-R"]


def device_key(dev):
    return ("bench-key-%s-0123456789abcdef" % dev)


def devices_of(lot):
    base = lot.lower()
    return base + "-in", base + "-out"


def make_config(redis_port, provider_url, lots=LOTS, billing_in_flight=32):
    """A city of the bench: the real tariffs of config/tariffs, the default credit policy, one
    Stripe provider; each lot's capacity is the most the configuration allows (1 000 000)."""
    cfg = {
        "name": "bench",
        "log_level": "info",
        "redis": {"address": "127.0.0.1:%d" % redis_port},
        "gateway": {"listen": "127.0.0.1:0", "admin_token": {"file": "secrets/admin"}},
        "billing": {"listen": "127.0.0.1:0", "max_in_flight": billing_in_flight,
                    "default_provider": PROVIDER},
        "providers": [{"id": PROVIDER, "kind": "stripe", "base_url": provider_url,
                       "secret_key": {"file": "secrets/stripe"}}],
        "operators": [{"id": "bench-op", "name": "Bench"}],
        "lots": [],
        "devices": [],
    }
    for lot in lots:
        din, dout = devices_of(lot)
        cfg["lots"].append({
            "id": lot, "name": lot, "operator": "bench-op", "district": "西湖区",
            "capacity": 1000000, "tariff": "hz-core-2024",
            "lanes": [{"id": "in", "direction": "entry"}, {"id": "out", "direction": "exit"}]})
        cfg["devices"].append({"id": din, "lot": lot, "lanes": ["in"],
                               "key": {"file": "secrets/" + din}})
        cfg["devices"].append({"id": dout, "lot": lot, "lanes": ["out"],
                               "key": {"file": "secrets/" + dout}})
    return cfg


def write_config_dir(d, cfg):
    os.makedirs(os.path.join(d, "secrets"), exist_ok=True)
    tdir = os.path.join(d, "tariffs")
    if not os.path.isdir(tdir):
        shutil.copytree(os.path.join(ROOT, "config", "tariffs"), tdir)
    for dev in cfg["devices"]:
        with open(os.path.join(d, "secrets", dev["id"]), "w") as f:
            f.write(device_key(dev["id"]) + "\n")
    with open(os.path.join(d, "secrets", "admin"), "w") as f:
        f.write(ADMIN_TOKEN)
    with open(os.path.join(d, "secrets", "stripe"), "w") as f:
        f.write("sk_test_bench")
    path = os.path.join(d, "platform.json")
    with open(path, "w") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
    return path


class Gateway:
    def __init__(self, bindir, redis, provider_url):
        self.dir = tempdir("park-bench-gw-")
        self.config = write_config_dir(self.dir, make_config(redis.port, provider_url))
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "gateway.log"), "ab")
        self.proc = register(subprocess.Popen(
            [os.path.join(bindir, "gateway"), "--config", self.config, "--port-file", port_file],
            stdout=self.log, stderr=self.log))
        wait_for(lambda: os.path.exists(port_file), what="gateway port file")
        with open(port_file) as f:
            self.port = int(f.read())
        wait_for(lambda: self.request("GET", "/readyz")[0] == 200, 15, "gateway ready")

    def request(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def rss(self):
        return proc_status(self.proc.pid)

    def log_tail(self, n=20):
        with open(os.path.join(self.dir, "gateway.log"), "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")


class Billing:
    """park-billing on a configuration of its own: only the lot whose bills it should settle (the
    other lots' bills stay pending), the provider at `provider_url`."""

    def __init__(self, bindir, redis, provider_url, lot, in_flight=32, tick_ms=None):
        self.dir = tempdir("park-bench-billing-")
        cfg = make_config(redis.port, provider_url, lots=[lot], billing_in_flight=in_flight)
        self.config = write_config_dir(self.dir, cfg)
        with open(os.path.join(self.dir, "clock"), "w") as f:
            f.write("0\n")
        env = dict(os.environ)
        env.pop("PARK_BILLING_TICK_MS", None)
        if tick_ms is not None:
            env["PARK_BILLING_TICK_MS"] = str(tick_ms)
        self.log = open(os.path.join(self.dir, "billing.log"), "ab")
        self.proc = register(subprocess.Popen(
            [os.path.join(bindir, "billing"), "--config", self.config, "--clock-file",
             os.path.join(self.dir, "clock")], stdout=self.log, stderr=self.log, env=env))

    def stop(self):
        stop(self.proc)


class StripeMock:
    """stripe-stateful-mock (npm), as tests/integration/harness.py starts it."""

    def __init__(self):
        script = os.path.join(ROOT, "node_modules", "stripe-stateful-mock", "dist", "autostart.js")
        if not os.path.exists(script):
            raise RuntimeError("stripe-stateful-mock is not installed: run scripts/install-peers")
        self.dir = tempdir("park-bench-stripe-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "mock.log"), "ab")
        self.proc = register(subprocess.Popen(["node", script], stdout=self.log, stderr=self.log,
                                              env=dict(os.environ, PORT=str(self.port))))
        wait_for(lambda: self.call("GET", "/v1/customers?limit=1")[0] == 200, 30, "stripe mock")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def call(self, method, path, form=None):
        body = urllib.parse.urlencode(form or {}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body if method != "GET" else None, headers={
                "Authorization": "Bearer sk_test_bench",
                "Content-Type": "application/x-www-form-urlencoded"})
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def customer(self):
        status, c = self.call("POST", "/v1/customers", {"source": "tok_visa"})
        if status != 200:
            raise RuntimeError("stripe mock: cannot make a customer: %r" % (c,))
        return c["id"]


class DelayProxy:
    """bench/delayproxy (build-bench/bench/delayproxy) in front of the mock: each answer handed on
    `delay_ms` after it came, requests passed at once, one upstream connection per client
    connection.  sample() returns what it saw since the previous sample (SIGUSR1): open
    connections and how many of them had a request out and its answer not yet delivered
    ("waiting": the requests in flight), sampled every 5 ms."""

    def __init__(self, exe, upstream_port, delay_ms):
        self.delay_ms = delay_ms
        self.cmd = [exe, "--port", "0", "--upstream-port", str(upstream_port), "--delay-ms",
                    str(delay_ms)]
        self.proc = register(subprocess.Popen(self.cmd, stdout=subprocess.PIPE, text=True))
        line = self.proc.stdout.readline()
        if not line.startswith("listening"):
            raise RuntimeError("delayproxy did not start")
        self.port = int(line.split()[1])

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def sample(self):
        self.proc.send_signal(signal.SIGUSR1)
        return json.loads(self.proc.stdout.readline())

    def stop(self):
        stop(self.proc)
        self.proc.stdout.close()


class Nginx:
    """nginx (nginx-light) on a free port, with its own prefix, configuration and temp folders:
    `worker_processes auto` (one per core), keep-alive, answering POST /v1/events with a fixed JSON
    body (the request body is read and discarded, as the gateway reads it)."""

    def __init__(self, body):
        self.dir = tempdir("park-bench-nginx-")
        self.port = free_port()
        for sub in ("logs", "tmp"):
            os.makedirs(os.path.join(self.dir, sub))
        with open(os.path.join(self.dir, "answer.json"), "wb") as f:
            f.write(body)
        conf = """
worker_processes auto;
pid %(d)s/nginx.pid;
error_log %(d)s/logs/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(d)s/tmp/body;
    proxy_temp_path %(d)s/tmp/proxy;
    fastcgi_temp_path %(d)s/tmp/fastcgi;
    uwsgi_temp_path %(d)s/tmp/uwsgi;
    scgi_temp_path %(d)s/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 65s;
    client_body_buffer_size 16k;
    server {
        listen 127.0.0.1:%(port)d;
        location = /v1/events {
            default_type application/json;
            return 200 '%(body)s';
        }
        location / { return 404; }
    }
}
""" % {"d": self.dir, "port": self.port, "body": body.decode().replace("'", "\\'")}
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.log = open(os.path.join(self.dir, "nginx.out"), "ab")
        self.proc = register(subprocess.Popen(
            ["nginx", "-p", self.dir, "-c", path, "-e", os.path.join(self.dir, "logs", "error.log")],
            stdout=self.log, stderr=self.log, start_new_session=True), group=True)

        def up():
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        wait_for(up, 10, "nginx")

    def stop(self):
        stop(self.proc, signal.SIGQUIT)


def key_family(k):
    """A key with its hash tag, numbers (sessions, buckets) and dates replaced: pk:{…}:s:N,
    pk:{…}:open:N, pk:{…}:idem:DAY:N, pk:drv:{…}:unpaid."""
    import re
    k = re.sub(r"\{[^}]*\}", "{…}", k)
    k = re.sub(r":idem:\d+", ":idem:DAY", k)
    k = re.sub(r":day:[0-9-]+", ":day:DATE", k)
    return re.sub(r":\d+(?=:|$)", ":N", k)


def families(redis, patterns):
    """family -> [keys, bytes] over the keys matching the SCAN patterns (MEMORY USAGE, exact)."""
    keys = set()
    for pat in patterns:
        cursor = "0"
        while True:
            cursor, batch = redis.cmd("SCAN", cursor, "MATCH", pat, "COUNT", 10000)
            keys.update(batch)
            if cursor == "0":
                break
    keys = sorted(keys)
    out = {}
    for i in range(0, len(keys), 10000):
        part = keys[i:i + 10000]
        sizes = redis.pipeline([("MEMORY", "USAGE", k, "SAMPLES", "0") for k in part])
        for k, n in zip(part, sizes):
            f = out.setdefault(key_family(k), [0, 0])
            f[0] += 1
            f[1] += n if isinstance(n, int) else 0
    return out


# ---- plates and signed requests ----------------------------------------------------------------

# Serial characters that are each in a confusable group of their own (docs/redis.md), so two
# plates of the bench never share a plate-index bucket by accident: digits and letters other than
# A B D G I O Q S T Z.
_SERIAL = "0123456789CEFHJKLMNPRUVWXY"


def plate(n, letter="A"):
    """The n-th plate of a series: 浙<letter> + 5 serial characters (ordinary, class small)."""
    s = []
    for _ in range(5):
        s.append(_SERIAL[n % len(_SERIAL)])
        n //= len(_SERIAL)
    if n:
        raise ValueError("plate series exhausted")
    return "浙" + letter + "".join(reversed(s))


def iso(t, offset_hours=8):
    tz = time.gmtime(t + offset_hours * 3600)
    return time.strftime("%Y-%m-%dT%H:%M:%S", tz) + "%+03d:00" % offset_hours


def _http(method, path, headers, body):
    head = "%s %s HTTP/1.1\r\nHost: bench\r\n" % (method, path)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    head += "Content-Length: %d\r\n\r\n" % len(body)
    return head.encode() + body


def signed_event(device, body, ts=None):
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    ts = str(int(time.time()) if ts is None else ts)
    msg = b"\n".join([ts.encode(), b"POST", b"/v1/events", device.encode(), data])
    sig = hmac.new(device_key(device).encode(), msg, hashlib.sha256).hexdigest()
    return _http("POST", "/v1/events", [("X-Park-Device", device), ("X-Park-Timestamp", ts),
                                        ("X-Park-Signature", sig),
                                        ("Content-Type", "application/json")], data)


_run_id = "%x" % (int(time.time() * 1000) & 0xffffffff)


def entry_requests(lot, plates, now, rng, first_id):
    """Signed entries of `plates` at `lot`, each entered 30 minutes to 12 hours before `now`."""
    din, _ = devices_of(lot)
    ts = int(time.time())
    out = []
    for i, p in enumerate(plates):
        body = {"event_id": "in-%s-%d" % (_run_id, first_id + i), "lot_id": lot, "lane_id": "in",
                "direction": "entry", "plate": p, "plate_color": "blue", "confidence": 0.96,
                "ts": iso(now - rng.randint(1800, 12 * 3600))}
        out.append(signed_event(din, body, ts))
    return out


def exit_requests(lot, plates, now, first_id):
    """Signed exits of `plates` at `lot`, as a camera sends them (exact reads)."""
    _, dout = devices_of(lot)
    ts = int(time.time())
    out = []
    for i, p in enumerate(plates):
        body = {"event_id": "out-%s-%d" % (_run_id, first_id + i), "lot_id": lot,
                "lane_id": "out", "direction": "exit", "plate": p, "plate_color": "blue",
                "confidence": 0.97, "vehicle_class": "small", "ts": iso(now)}
        out.append(signed_event(dout, body, ts))
    return out


def driver_requests(plates, payment_ref, first_id, prefix="bd"):
    out = []
    for i, p in enumerate(plates):
        body = json.dumps({"id": "%s-%s-%d" % (prefix, _run_id, first_id + i), "plates": [p],
                           "provider": PROVIDER, "payment_ref": payment_ref},
                          ensure_ascii=False).encode()
        out.append(_http("POST", "/v1/drivers", [("Authorization", "Bearer " + ADMIN_TOKEN),
                                                  ("Content-Type", "application/json")], body))
    return out


def write_requests(path, reqs):
    with open(path, "wb") as f:
        for r in reqs:
            f.write(r)
    return path


def rng(seed=20261127):
    return random.Random(seed)
