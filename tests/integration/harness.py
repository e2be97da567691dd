"""Real processes for integration tests: a redis-server on a free port with its own folder, the
gateway binary on a configuration written for the test, and a lane client that signs requests
exactly as docs/lane-api.md says.  Nothing here stands in for a component: every request crosses a
real socket to the real binary, which talks to a real Redis.

Environment: PARK_BIN_DIR (the build's bin folder), PARK_REDIS_CLUSTER=1 to run Redis with
cluster-enabled yes owning every slot.
"""
import atexit
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import time
import urllib.parse

BIN = os.environ.get("PARK_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
CLUSTER = os.environ.get("PARK_REDIS_CLUSTER") == "1"


def free_port(bus=False):
    """A port nobody listens on now; with bus, one whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not bus:
            return port
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Redis:
    """redis-server with AOF in its own folder; cluster mode owns all 16384 slots."""

    def __init__(self, cluster=CLUSTER):
        self.dir = tempfile.mkdtemp(prefix="park-redis-")
        self.cluster = cluster
        self.proc = None
        for attempt in range(5):
            # Another process may take the port between the check and the start: try another.
            self.port = free_port(bus=cluster)
            try:
                self.start()
                return
            except AssertionError:
                self.kill()
        raise AssertionError("redis-server did not start; see " + self.dir)

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file",
                     os.path.join(self.dir, "nodes.conf")]
        self.proc = subprocess.Popen(args)
        wait_for(lambda: self.proc.poll() is None and self.cli("PING") == "PONG",
                 what="redis-server")
        if self.cluster:
            if "cluster_state:ok" not in self.cli("CLUSTER", "INFO"):
                slots = self.cli("CLUSTER", "SLOTS")
                if not slots:
                    self.cli("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
            wait_for(lambda: "cluster_state:ok" in self.cli("CLUSTER", "INFO"), what="cluster ok")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), "--no-auth-warning"] + list(args),
                             capture_output=True, timeout=10)
        return out.stdout.decode().rstrip("\n")

    def cmd(self, *args, raw=False):
        """A command over RESP, answers decoded (lists, bytes as str, ints; bytes kept with
        raw)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            f = s.makefile("rb")
            return _read_resp(f, raw)

    def hgetall(self, key):
        flat = self.cmd("HGETALL", key)
        return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}

    def open_sessions(self, lot):
        """The open sessions of a lot, seq -> record (plate US entry US lane US class US tariff
        version US flags US fold key), read from the buckets pk:{L}:open:<seq/64> as docs/redis.md
        describes them: an independent reading of the layout the scripts write."""
        buckets = {int(key.rsplit(":", 1)[1]): self.cmd("HGETALL", key, raw=True)
                   for key in self.cmd("KEYS", "pk:{%s}:open:*" % lot)}
        # After the buckets: a dictionary name is written before the first record using it and
        # never removed, so every code read is in this meta.
        meta = self.cmd("HGETALL", "pk:{%s}:meta" % lot, raw=True)
        meta = {meta[i]: meta[i + 1] for i in range(0, len(meta), 2)}
        out = {}
        for bucket, flat in buckets.items():
            for i in range(0, len(flat), 2):
                v = flat[i + 1]
                if v[:1] == b"\x1f":
                    rec = v[1:]
                else:
                    ts = int.from_bytes(v[:4], "big")
                    names = [meta[b"d<%d" % c] for c in v[4:8]]
                    plate, _, fold = v[8:].partition(b"\x1f")
                    if not _:
                        fold = fold_key(plate.decode()).encode()
                    rec = b"\x1f".join([plate, b"%d" % ts] + names + [fold])
                out[str(bucket * 64 + int(flat[i]))] = rec.decode()
        return out


def _read_resp(f, raw=False):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data if raw else data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_read_resp(f, raw) for _ in range(n)]
    raise OSError("bad RESP " + repr(line))


TARIFF = {
    "id": "test-core", "currency": "CNY", "timezone": "Asia/Shanghai",
    "free_minutes": 15, "free_deducted": False,
    "first_period": {"minutes": 60, "price": 1000},
    "bands": [
        {"name": "day", "from": "08:00", "to": "20:00", "unit_minutes": 30, "unit_price": 300},
        {"name": "night", "from": "20:00", "to": "08:00", "unit_minutes": 60, "unit_price": 100,
         "cap": 500}],
    "cap_24h": 6000,
    "classes": {"new_energy": {"free_minutes": 60, "discount_percent": 50}},
}

DEVICE_KEYS = {
    "dev-a-in": "key-a-in-0123456789abcdef",
    "dev-a-out": "key-a-out-0123456789abcdef",
    "dev-a-pay": "key-a-pay-0123456789abcdef",
    "dev-b": "key-b-0123456789abcdef0123",
    "dev-c": "key-c-0123456789abcdef0123",
}
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


def make_config(redis_port, overrides=None):
    """A small city: lot A (fuzzy matching, hold without entry), lot B (capacity 2, charges a
    fixed fee without entry), lot C (exact matching only)."""
    cfg = {
        "name": "integration",
        "log_level": "debug",
        "redis": {"address": "127.0.0.1:%d" % redis_port, "command_timeout_ms": 2000},
        "gateway": {"listen": "127.0.0.1:0", "admin_token": {"file": "secrets/admin"},
                    "idle_timeout_ms": 5000},
        "credit_policy": {"min_score": 600, "max_unpaid_bills": 2, "max_unpaid_amount": 5000,
                          "max_fee": 4000},
        "providers": [{"id": "stripe-test", "kind": "stripe", "base_url": "http://127.0.0.1:9",
                       "secret_key": {"file": "secrets/stripe"}}],
        "operators": [{"id": "op", "name": "Operator"}],
        "lots": [
            {"id": "LOT-A", "name": "A", "operator": "op", "district": "西湖区", "capacity": 100,
             "tariff": "test-core",
             "lanes": [{"id": "in", "direction": "entry"}, {"id": "out", "direction": "exit"}],
             "passes": [{"plate": "浙A8M2K7", "from": "2020-01-01", "to": "2099-12-31"}],
             "allow_list": ["浙A0G9P3"],
             "exempt": {"kinds": ["police"]},
             "blocked": ["浙A66J19"]},
            {"id": "LOT-B", "name": "B", "operator": "op", "district": "上城区", "capacity": 2,
             "tariff": "test-core",
             "exit_policy": {"no_entry_record": "charge", "no_entry_fee": 2000,
                             "stale_entry": "close_charged", "blocked": "pay_on_site"},
             "blocked": ["浙B66J19"],
             "lanes": [{"id": "in", "direction": "entry"}, {"id": "out", "direction": "exit"}]},
            {"id": "LOT-C", "name": "C", "operator": "op", "district": "滨江区", "capacity": 10,
             "tariff": "test-core", "exit_policy": {"match": "exact", "stale_entry": "close_free"},
             "lanes": [{"id": "in", "direction": "entry"}, {"id": "out", "direction": "exit"}]},
        ],
        "devices": [
            {"id": "dev-a-in", "lot": "LOT-A", "lanes": ["in"], "key": {"file": "secrets/dev-a-in"}},
            {"id": "dev-a-out", "lot": "LOT-A", "lanes": ["out"],
             "key": {"file": "secrets/dev-a-out"}},
            {"id": "dev-a-pay", "lot": "LOT-A", "lanes": ["out"],
             "key": {"file": "secrets/dev-a-pay"}},
            {"id": "dev-b", "lot": "LOT-B", "lanes": ["in", "out"], "key": {"file": "secrets/dev-b"}},
            {"id": "dev-c", "lot": "LOT-C", "lanes": ["in", "out"], "key": {"file": "secrets/dev-c"}},
        ],
    }
    for path, value in (overrides or {}).items():
        cur = cfg
        parts = path.split(".")
        for p in parts[:-1]:
            cur = cur[int(p)] if p.isdigit() else cur[p]
        last = parts[-1]
        if last.isdigit():
            cur[int(last)] = value
        else:
            cur[last] = value
    return cfg


class Gateway:
    """The gateway binary on a configuration folder of its own."""

    def __init__(self, redis, overrides=None, env=None, files=None):
        self.dir = tempfile.mkdtemp(prefix="park-gw-")
        os.makedirs(os.path.join(self.dir, "tariffs"))
        os.makedirs(os.path.join(self.dir, "secrets"))
        # Extra files of the configuration folder (keys of a provider), relative path -> bytes.
        for name, data in (files or {}).items():
            with open(os.path.join(self.dir, name), "wb") as f:
                f.write(data)
        with open(os.path.join(self.dir, "tariffs", "test-core.json"), "w") as f:
            json.dump(TARIFF, f)
        for dev, key in DEVICE_KEYS.items():
            with open(os.path.join(self.dir, "secrets", dev), "w") as f:
                f.write(key + "\n")
        with open(os.path.join(self.dir, "secrets", "admin"), "w") as f:
            f.write(ADMIN_TOKEN)
        with open(os.path.join(self.dir, "secrets", "stripe"), "w") as f:
            f.write("sk_test_integration")
        self.redis = redis
        self.env = env or {}
        self.write_config(overrides)
        self.proc = None
        self.log = open(os.path.join(self.dir, "gateway.log"), "ab")
        self.start()

    @property
    def config_path(self):
        return os.path.join(self.dir, "platform.json")

    def write_config(self, overrides=None, raw=None):
        with open(self.config_path, "w") as f:
            if raw is not None:
                f.write(raw)
            else:
                json.dump(make_config(self.redis.port, overrides), f, ensure_ascii=False)

    def start(self, wait_ready=True):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        env = dict(os.environ)
        env.update(self.env)
        if getattr(self, "port", None):
            # A restart comes back on the same port, as a real deployment's gateway would.
            env["PARK_GATEWAY_LISTEN"] = "127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "gateway"), "--config", self.config_path, "--port-file", port_file],
            stdout=self.log, stderr=self.log, env=env)
        wait_for(lambda: os.path.exists(port_file), what="gateway port file")
        with open(port_file) as f:
            self.port = int(f.read())
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=10):
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout, what="gateway ready")

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None:
            self.proc.send_signal(sig)
            rc = self.proc.wait(15)
            self.proc = None
            return rc
        return None

    def destroy(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        with open(os.path.join(self.dir, "gateway.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    # ---- HTTP ----
    def request(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, data, dict(r.getheaders())
        finally:
            conn.close()

    def get(self, path):
        status, data, _ = self.request("GET", path)
        return status, data

    def signed(self, method, path, body, device, ts=None, key=None, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode()
        ts = str(int(time.time()) if ts is None else ts)
        key = (key if key is not None else DEVICE_KEYS[device]).encode()
        msg = b"\n".join([ts.encode(), method.encode(), path.encode(), device.encode(), body])
        sig = hmac.new(key, msg, hashlib.sha256).hexdigest()
        h = {"X-Park-Device": device, "X-Park-Timestamp": ts, "X-Park-Signature": sig,
             "Content-Type": "application/json"}
        h.update(headers or {})
        return self.request(method, path, body, h)

    def event(self, device, body, **kw):
        status, data, _ = self.signed("POST", "/v1/events", body, device, **kw)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data

    def admin(self, method, path, body=None, token=ADMIN_TOKEN):
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
        h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        status, out, _ = self.request(method, path, data, h)
        try:
            return status, json.loads(out) if out else None
        except ValueError:
            return status, out


_seq = [0]


def ev(lot, lane, direction, plate, ts, event_id=None, **extra):
    """A lane event body."""
    _seq[0] += 1
    body = {"event_id": event_id or "ev-%d-%d" % (os.getpid(), _seq[0]), "lot_id": lot,
            "lane_id": lane, "direction": direction, "plate": plate, "ts": ts}
    body.update(extra)
    return body


def iso(t, offset_hours=8):
    """RFC 3339 of unix seconds t at a fixed offset."""
    tz = time.gmtime(t + offset_hours * 3600)
    return time.strftime("%Y-%m-%dT%H:%M:%S", tz) + "%+03d:00" % offset_hours


def fold_key(plate):
    out = subprocess.run([os.path.join(BIN, "parkctl"), "plate", "--json", plate],
                         capture_output=True, timeout=10)
    return json.loads(out.stdout)["fold_key"]


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class StripeMock:
    """stripe-stateful-mock (npm): a third-party Stripe API mock with customers, charges,
    idempotency keys and declines chosen by test tokens."""

    def __init__(self):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        script = os.path.join(ROOT, "node_modules", "stripe-stateful-mock", "dist", "autostart.js")
        if not os.path.exists(script):
            raise AssertionError("stripe-stateful-mock is not installed: run npm ci (scripts/test does)")
        env = dict(os.environ, PORT=str(self.port))
        self.proc = subprocess.Popen(["node", script], stdout=self.log, stderr=self.log, env=env)
        wait_for(lambda: self.call("GET", "/v1/customers?limit=1")[0] == 200, 20, "stripe mock")

    def call(self, method, path, form=None):
        body = urllib.parse.urlencode(form or {}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body if method != "GET" else None, headers={
                "Authorization": "Bearer sk_test_integration",
                "Content-Type": "application/x-www-form-urlencoded"})
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def customer(self, token):
        status, c = self.call("POST", "/v1/customers", {"source": token})
        assert status == 200, c
        return c["id"]

    def all_charges(self):
        out, after = [], None
        while True:
            path = "/v1/charges?limit=100" + ("&starting_after=" + after if after else "")
            status, page = self.call("GET", path)
            assert status == 200, page
            out += page["data"]
            if not page.get("has_more") or not page["data"]:
                return out
            after = page["data"][-1]["id"]

    def charges(self, driver):
        """The charges made for a driver of ours (the mock leaves a charge's customer empty, so
        the metadata billing sends identifies them)."""
        return [c for c in self.all_charges() if c.get("metadata", {}).get("driver") == driver]

    def destroy(self):
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()


class FaultProxy:
    """tests/peers/fault_proxy.py in front of an upstream."""

    def __init__(self, upstream_port):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "peers", "fault_proxy.py"),
             "--port", str(self.port), "--upstream", "http://127.0.0.1:%d" % upstream_port],
            stdout=subprocess.PIPE)
        self.proc.stdout.readline()
        self.proc.stdout.close()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def plan(self, steps):
        self._call("POST", {"plan": steps})

    def state(self):
        return self._call("GET")

    def _call(self, method, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, "/_faults", body=json.dumps(body).encode() if body else None)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def destroy(self):
        self.proc.kill()
        self.proc.wait(10)


class Billing:
    """The billing binary on a gateway's configuration, with a clock tests can move."""

    def __init__(self, gw, name="billing", tick_ms=50):
        self.gw = gw
        self.tick_ms = tick_ms
        self.clock = os.path.join(gw.dir, "clock")
        if not os.path.exists(self.clock):
            self.set_clock(0)
        self.log = open(os.path.join(gw.dir, name + ".log"), "ab")
        self.proc = None
        self.start()

    def set_clock(self, offset_seconds):
        with open(self.clock + ".tmp", "w") as f:
            f.write("%d\n" % offset_seconds)
        os.replace(self.clock + ".tmp", self.clock)

    def start(self):
        env = dict(os.environ, PARK_BILLING_TICK_MS=str(self.tick_ms))
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "billing"), "--config", self.gw.config_path, "--clock-file",
             self.clock], stdout=self.log, stderr=self.log, env=env)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None:
            self.proc.send_signal(sig)
            rc = self.proc.wait(20)
            self.proc = None
            return rc
        return None

    def kill(self):
        return self.stop(signal.SIGKILL)

    def destroy(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


_WX_KEY_DIR = []


def _wechat_keys():
    """Throwaway RSA-2048 key pairs, made once per test process with the openssl command line:
    merchant (signs billing's requests), platform (the peer signs answers and notifications) and
    other (a stranger's, for forgeries)."""
    if not _WX_KEY_DIR:
        d = tempfile.mkdtemp(prefix="park-wxkeys-")
        atexit.register(shutil.rmtree, d, True)
        for who in ("merchant", "platform", "other"):
            key, pub = os.path.join(d, who + ".pem"), os.path.join(d, who + "_pub.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                            "rsa_keygen_bits:2048", "-out", key],
                           check=True, capture_output=True, timeout=60)
            subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub],
                           check=True, capture_output=True, timeout=60)
        _WX_KEY_DIR.append(d)
    return _WX_KEY_DIR[0]


class WeChatPeer:
    """tests/peers/wechatpay-server.js: WeChat Pay's vehicle parking API as built on the npm package
    wechatpay-axios-plugin, which checks our signatures and signs and encrypts its answers and
    notifications with code nobody here wrote.  Its /test/ endpoints steer it."""

    MCHID = "1900000109"
    APPID = "wxd678efh567hg6787"
    MERCHANT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD0E1E7B33"
    PLATFORM_SERIAL = "7132D72A03E93CDDF8C03BBD1F37EEDF0D2FBD3C"
    APIV3_KEY = b"0123456789abcdefghijABCDEFGHIJ01"

    def __init__(self):
        self.keys = _wechat_keys()
        self.dir = tempfile.mkdtemp(prefix="park-wxpeer-")
        apiv3 = os.path.join(self.dir, "apiv3")
        with open(apiv3, "wb") as f:
            f.write(self.APIV3_KEY)
        script = os.path.join(ROOT, "tests", "peers", "wechatpay-server.js")
        if not os.path.isdir(os.path.join(ROOT, "node_modules", "wechatpay-axios-plugin")):
            raise AssertionError("wechatpay-axios-plugin is not installed: run npm ci (scripts/test does)")
        self.log = open(os.path.join(self.dir, "peer.log"), "ab")
        self.proc = subprocess.Popen(
            ["node", script, "--port", "0",
             "--merchant-public-key", self.key("merchant_pub"),
             "--platform-private-key", self.key("platform"),
             "--platform-serial", self.PLATFORM_SERIAL, "--apiv3-key-file", apiv3,
             "--mchid", self.MCHID, "--merchant-serial", self.MERCHANT_SERIAL],
            stdout=subprocess.PIPE, stderr=self.log, cwd=ROOT)
        line = self.proc.stdout.readline().decode()
        self.proc.stdout.close()
        if not line.startswith("listening "):
            raise AssertionError("wechatpay-server did not start; see " + self.dir)
        self.port = int(line.split()[1])

    def key(self, name):
        return os.path.join(self.keys, name + ".pem")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def secret_files(self):
        """The provider's secrets, for the gateway's configuration folder."""
        out = {"secrets/wx_apiv3": self.APIV3_KEY}
        for name, key in (("secrets/wx_merchant.pem", "merchant"),
                          ("secrets/wx_platform.pem", "platform_pub")):
            with open(self.key(key), "rb") as f:
                out[name] = f.read()
        return out

    def provider(self, notify_url, provider_id="wx-test"):
        return {"id": provider_id, "kind": "wechatpay", "base_url": self.url,
                "mchid": self.MCHID, "appid": self.APPID, "serial_no": self.MERCHANT_SERIAL,
                "notify_url": notify_url, "private_key": {"file": "secrets/wx_merchant.pem"},
                "platform_public_key": {"file": "secrets/wx_platform.pem"},
                "platform_serial": self.PLATFORM_SERIAL, "apiv3_key": {"file": "secrets/wx_apiv3"},
                "timeout_ms": 1500, "connect_timeout_ms": 1000}

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def control(self, method, path, body=None):
        status, out = self.call(method, path, body)
        assert status == 200, (path, status, out)
        return out

    def parkings(self):
        return self.control("GET", "/test/parkings")

    def deductions(self, plate=None):
        q = "?plate_number=" + urllib.parse.quote(plate) if plate else ""
        return self.control("GET", "/test/deductions" + q)

    def notifications(self):
        return self.control("GET", "/test/notifications")

    def notification(self, resource, event_type="TRANSACTION.SUCCESS", notification_id=None,
                     signing_key=None, apiv3_key=None, timestamp=None, associated_data="transaction",
                     original_type="transaction"):
        """A notification made with wechatpay-axios-plugin: (body bytes, headers)."""
        script = r"""
const { Rsa, Formatter, Aes } = require('wechatpay-axios-plugin');
const a = JSON.parse(process.argv[1]);
const nonce = Formatter.nonce(12);
const body = JSON.stringify({id: a.id, create_time: '2026-11-27T18:00:00+08:00',
  resource_type: 'encrypt-resource', event_type: a.event_type, summary: 'test',
  resource: {original_type: a.original_type, algorithm: 'AEAD_AES_256_GCM',
    ciphertext: Aes.AesGcm.encrypt(JSON.stringify(a.resource), Buffer.from(a.apiv3, 'latin1'),
                                   nonce, a.ad),
    associated_data: a.ad, nonce}});
const n = Formatter.nonce();
const key = Rsa.from('file://' + a.key, Rsa.KEY_TYPE_PRIVATE);
process.stdout.write(JSON.stringify({body, nonce: n,
  signature: Rsa.sign(Formatter.response(a.ts, n, body), key)}));
"""
        args = {"id": notification_id or "EV-test-%d" % time.time_ns(), "event_type": event_type,
                "original_type": original_type, "resource": resource,
                "apiv3": (apiv3_key or self.APIV3_KEY).decode("latin1"), "ad": associated_data,
                "key": signing_key or self.key("platform"),
                "ts": str(int(time.time()) if timestamp is None else timestamp)}
        out = subprocess.run(["node", "-e", script, json.dumps(args)], capture_output=True,
                             cwd=ROOT, timeout=20, check=True)
        made = json.loads(out.stdout)
        headers = {"Wechatpay-Timestamp": args["ts"], "Wechatpay-Nonce": made["nonce"],
                   "Wechatpay-Signature": made["signature"],
                   "Wechatpay-Serial": self.PLATFORM_SERIAL,
                   "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                   "Content-Type": "application/json"}
        return made["body"].encode(), headers

    def destroy(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
