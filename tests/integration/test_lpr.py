"""The lpr-bridge end to end: camera payloads (OpenALPR, Plate Recognizer, Hikvision) pushed to the
real bridge, which spools them, de-duplicates them and forwards signed events to the real gateway
on a real redis-server; the barrier webhook is a small receiver of the test's own, and a Hikvision
camera's barrier control (ISAPI behind digest authentication) a stand-in of the test's own, since no
real camera can run here.  promtool (Debian's prometheus package) checks /metrics."""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import signal
import socketserver
import subprocess
import threading
import time
import unittest

import harness
from harness import Gateway, Redis


class BarrierReceiver:
    """Records what a barrier webhook receives."""

    def __init__(self):
        received = self.received = []
        times = self.times = []  # time.time() of each arrival, in the order of received

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n))
                times.append(time.time())
                received.append(body)
                self.send_response(204)
                self.end_headers()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def destroy(self):
        self.server.shutdown()
        self.server.server_close()


class HikvisionBarrier:
    """A stand-in for a Hikvision camera's ISAPI barrier control, since no real camera can run here:
    PUT /ISAPI/Parking/channels/{n}/barrierGate behind HTTP Digest authentication (RFC 7616, MD5,
    qop=auth; the server side written here with hashlib, the bridge's side is libcurl's).  Every
    request is recorded; a command is one that was authenticated and carried <ctrlMode>open."""

    REALM = "IP Camera(E12345678)"

    def __init__(self, username, password):
        self.username, self.password = username, password
        self.requests = []  # (method, path, "ok" | "challenged" | "bad_body" | "not_found")
        self.commands = []  # {"channel", "username", "nc", "body"} of authenticated commands
        self.nonces = {}    # nonce -> the highest nc seen (a replayed nc is refused)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as cameras do: curl answers the challenge on it

            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                m = re.fullmatch(r"/ISAPI/Parking/channels/(\d+)/barrierGate", self.path)
                auth = outer.check(self.command, self.path, self.headers.get("Authorization"))
                if m is None:
                    outcome = "not_found"
                elif auth is None:
                    outcome = "challenged"
                elif not re.search(rb"<ctrlMode>\s*open\s*</ctrlMode>", body):
                    outcome = "bad_body"
                else:
                    outcome = "ok"
                with outer.lock:
                    outer.requests.append((self.command, self.path, outcome))
                    if outcome == "ok":
                        outer.commands.append({"channel": int(m.group(1)), "username": auth[0],
                                               "nc": auth[1], "body": body})
                if outcome == "not_found":
                    return self.reply(404, b"<ResponseStatus><statusCode>4</statusCode>"
                                           b"</ResponseStatus>")
                if outcome == "challenged":
                    nonce = secrets.token_hex(16)
                    with outer.lock:
                        outer.nonces[nonce] = 0
                    challenge = ('Digest realm="%s", qop="auth", algorithm=MD5, nonce="%s", '
                                 'opaque="%s", stale=FALSE' % (outer.REALM, nonce,
                                                               secrets.token_hex(8)))
                    return self.reply(401, b"<ResponseStatus><statusCode>4</statusCode>"
                                           b"<subStatusCode>badAuthorization</subStatusCode>"
                                           b"</ResponseStatus>",
                                      [("WWW-Authenticate", challenge)])
                if outcome == "bad_body":
                    return self.reply(400, b"<ResponseStatus><statusCode>6</statusCode>"
                                           b"</ResponseStatus>")
                self.reply(200, b"<ResponseStatus><statusCode>1</statusCode>"
                                b"<statusString>OK</statusString></ResponseStatus>")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def check(self, method, path, header):
        """(username, nc) when `header` is a valid Digest answer to one of our challenges."""
        if not header or not header.startswith("Digest "):
            return None
        p = {k.lower(): (q if q else v) for k, q, v in
             re.findall(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))', header[7:])}
        need = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(k not in p for k in need) or p["qop"] != "auth":
            return None
        if p.get("algorithm", "MD5").upper() != "MD5" or p["realm"] != self.REALM:
            return None
        if p["uri"] != path or p["username"] != self.username:
            return None
        try:
            nc = int(p["nc"], 16)
        except ValueError:
            return None
        with self.lock:
            if p["nonce"] not in self.nonces or nc <= self.nonces[p["nonce"]]:
                return None
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
        ha1 = md5("%s:%s:%s" % (p["username"], self.REALM, self.password))
        ha2 = md5("%s:%s" % (method, p["uri"]))
        want = md5("%s:%s:%s:%s:%s:%s" % (ha1, p["nonce"], p["nc"], p["cnonce"], p["qop"], ha2))
        if not hmac.compare_digest(want, p["response"].lower()):
            return None
        with self.lock:
            self.nonces[p["nonce"]] = nc
        return p["username"], nc

    def destroy(self):
        self.server.shutdown()
        self.server.server_close()


class Bridge:
    def __init__(self, gw):
        self.gw = gw
        self.log = open(os.path.join(gw.dir, "lpr-bridge.log"), "ab")
        self.proc = None
        self.start()

    def start(self):
        port_file = os.path.join(self.gw.dir, "lpr-port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        env = dict(os.environ, PARK_GATEWAY_URL="http://127.0.0.1:%d" % self.gw.port)
        self.proc = subprocess.Popen([os.path.join(harness.BIN, "lpr-bridge"), "--config",
                                      self.gw.config_path, "--port-file", port_file],
                                     stdout=self.log, stderr=self.log, env=env)
        harness.wait_for(lambda: os.path.exists(port_file), what="lpr-bridge port file")
        with open(port_file) as f:
            self.port = int(f.read())

    def push(self, camera, body, ctype="application/json", headers=None, query=""):
        h = {"Content-Type": ctype} if ctype else {}
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/v1/cameras/" + camera + query,
                         body=body if isinstance(body, bytes) else body.encode(), headers=h)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def metrics_text(self):
        status, body = self.get("/metrics")
        assert status == 200, status
        return body.decode()

    def metrics(self):
        text = self.metrics_text()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None:
            self.proc.send_signal(sig)
            rc = self.proc.wait(20)
            self.proc = None
            return rc
        return None

    def destroy(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()

    def logs(self):
        self.log.flush()
        with open(os.path.join(self.gw.dir, "lpr-bridge.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")


def openalpr(plate, confidence=92.0, candidates=(), when=None):
    ms = int((when or time.time()) * 1000)
    return json.dumps({
        "version": 2, "data_type": "alpr_results", "epoch_time": ms, "img_width": 1280,
        "img_height": 720, "processing_time_ms": 80.0, "regions_of_interest": [],
        "results": [{"plate": plate, "confidence": confidence, "matches_template": 1,
                     "plate_index": 0, "region": "cn", "region_confidence": 90,
                     "processing_time_ms": 30.0, "requested_topn": 10,
                     "coordinates": [{"x": 500, "y": 400}, {"x": 640, "y": 400},
                                     {"x": 640, "y": 440}, {"x": 500, "y": 440}],
                     "candidates": [{"plate": plate, "confidence": confidence,
                                     "matches_template": 1}] +
                                   [{"plate": c, "confidence": 40.0, "matches_template": 0}
                                    for c in candidates]}],
        "uuid": "site-cam1-%d" % ms, "camera_id": 1, "site_id": "site"})


def hikvision(plate, confidence=95, when=None):
    t = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime((when or time.time()) + 8 * 3600))
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">"
            "<ipAddress>10.0.0.7</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>"
            "<channelID>1</channelID><dateTime>%s</dateTime><activePostCount>1</activePostCount>"
            "<eventType>ANPR</eventType><eventState>active</eventState>"
            "<eventDescription>ANPR</eventDescription><ANPR><country>CN</country>"
            "<licensePlate>%s</licensePlate><line>1</line><direction>forward</direction>"
            "<confidenceLevel>%d</confidenceLevel><plateType>92TypeCivil</plateType>"
            "<plateColor>blue</plateColor></ANPR><UUID>%s</UUID></EventNotificationAlert>"
            % (t, plate, confidence, "uuid-%f" % time.time()))


class LprCase(unittest.TestCase):
    def extra_cameras(self):
        """Cameras a test class adds to the two of every case."""
        return []

    def secret_files(self):
        """Files of the configuration folder (relative path -> bytes) the extra cameras name."""
        return {}

    def lpr_options(self):
        """More fields of the lpr_bridge section."""
        return {}

    def setUp(self):
        self.redis = Redis()
        self.barrier = BarrierReceiver()
        cams = [
            {"id": "cam-in", "lot": "LOT-A", "lane": "in", "device": "dev-a-in",
             "format": "auto", "min_confidence": 800, "hold_ms": 600, "dedupe_window_s": 10,
             "decision_timeout_ms": 800, "fallback": "hold",
             "barrier": {"kind": "webhook",
                         "url": "http://127.0.0.1:%d/barrier" % self.barrier.port}},
            {"id": "cam-out", "lot": "LOT-A", "lane": "out", "device": "dev-a-out",
             "format": "auto", "decision_timeout_ms": 800, "fallback": "hold",
             "barrier": {"kind": "webhook",
                         "url": "http://127.0.0.1:%d/barrier" % self.barrier.port}},
        ] + self.extra_cameras()
        lpr = {"listen": "127.0.0.1:0", "spool_dir": "spool", "forward_timeout_ms": 3000,
               "cameras": cams}
        lpr.update(self.lpr_options())
        self.gw = Gateway(self.redis, {"lpr_bridge": lpr}, files=self.secret_files())
        self.bridge = Bridge(self.gw)

    def tearDown(self):
        self.bridge.destroy()
        self.gw.destroy()
        self.barrier.destroy()
        self.redis.destroy()

    def open_plates(self, lot="LOT-A"):
        return sorted(v.split("\x1f")[0] for v in self.redis.open_sessions(lot).values())

    def wait_plates(self, plates, timeout=10, lot="LOT-A"):
        harness.wait_for(lambda: self.open_plates(lot) == sorted(plates), timeout,
                         "open sessions %s in %s (are %s)" % (sorted(plates), lot,
                                                             self.open_plates(lot)))

    def metric(self, name):
        return self.bridge.metrics().get(name, 0)

    def wait_metric(self, name, value, timeout=15):
        harness.wait_for(lambda: self.metric(name) == value, timeout,
                         "%s == %s (is %s)" % (name, value, self.metric(name)))


class TestBridge(LprCase):
    def test_camera_reads_become_sessions_and_decisions(self):
        status, out = self.bridge.push("cam-in", hikvision("浙A·81234"), "application/xml")
        self.assertEqual((status, out["action"]), (200, "forwarded"), out)
        self.wait_plates(["浙A81234"])
        harness.wait_for(lambda: any(b["decision"] == "open" and b["reason"] == "entry"
                                     for b in self.barrier.received), what="entry barrier")
        # The exit camera speaks OpenALPR, with a confusable misread: still matched.
        time.sleep(0.05)
        status, out = self.bridge.push("cam-out", openalpr("浙A8T234"), None)
        self.assertEqual(status, 200, out)
        harness.wait_for(lambda: any(b.get("direction") == "exit" for b in self.barrier.received),
                         what="exit barrier")
        exit_ = [b for b in self.barrier.received if b["direction"] == "exit"][0]
        # A stay of seconds is within the free period.
        self.assertEqual((exit_["decision"], exit_["reason"]), ("open", "free_period"))
        self.assertFalse(exit_["fallback"])

    def test_duplicates_are_suppressed(self):
        for _ in range(5):
            status, out = self.bridge.push("cam-in", openalpr("浙A82345"), None)
            self.assertEqual(status, 200)
        self.wait_plates(["浙A82345"])
        m = self.bridge.metrics()
        self.assertEqual(m['park_lpr_reads_total{camera="cam-in",outcome="forwarded"}'], 1)
        self.assertEqual(m['park_lpr_reads_total{camera="cam-in",outcome="suppressed"}'], 4)
        # A confusable variant of the same vehicle is the same vehicle.
        self.bridge.push("cam-in", openalpr("浙A8Z345"), None)
        time.sleep(0.3)
        self.assertEqual(self.open_plates(), ["浙A82345"])

    def test_weak_read_waits_for_a_better_one(self):
        status, out = self.bridge.push("cam-in", openalpr("浙A8ZZ45", confidence=55.0), None)
        self.assertEqual(out["action"], "held")
        status, out = self.bridge.push("cam-in", openalpr("浙A82245", confidence=97.0), None)
        self.assertEqual(out["action"], "forwarded")
        self.wait_plates(["浙A82245"])
        time.sleep(0.8)  # past the hold: the weak read is not sent after all
        self.assertEqual(self.open_plates(), ["浙A82245"])
        # A weak read alone goes after hold_ms.
        self.bridge.push("cam-in", openalpr("浙A83456", confidence=50.0), None)
        self.wait_plates(["浙A82245", "浙A83456"])

    def test_unreadable_and_garbage(self):
        status, out = self.bridge.push("cam-in", hikvision("无车牌", confidence=0),
                                       "application/xml")
        self.assertEqual(status, 200, out)
        harness.wait_for(lambda: any(b["reason"] == "unreadable" for b in self.barrier.received),
                         what="unreadable hold")
        self.assertEqual(self.open_plates(), [])
        status, out = self.bridge.push("cam-in", "{\"data_type\": \"alpr_results\", \"results\": [",
                                       None)
        self.assertEqual(status, 400)
        status, out = self.bridge.push("nobody", openalpr("浙A84567"), None)
        self.assertEqual(status, 404)


class TestDelivery(LprCase):
    def test_gateway_outage_every_read_arrives_once(self):
        self.gw.stop()
        plates = ["浙A9%04d" % i for i in range(8)]
        for p in plates:
            status, out = self.bridge.push("cam-in", openalpr(p), None)
            self.assertEqual((status, out["action"]), (200, "forwarded"))
        # Held for staff while the gateway is away.
        harness.wait_for(lambda: sum(1 for b in self.barrier.received if b["fallback"]) == 8,
                         what="fallbacks")
        self.assertTrue(all(b["reason"] == "gateway_timeout" and b["decision"] == "hold"
                            for b in self.barrier.received))
        self.gw.start()
        self.wait_plates(plates, timeout=30)
        entries = self.redis.cmd("XLEN", "pk:{LOT-A}:entries")
        self.assertEqual(entries, 8)

    def test_bridge_killed_then_restarted(self):
        self.gw.stop()
        plates = ["浙A9%04d" % i for i in range(10, 16)]
        for p in plates:
            self.assertEqual(self.bridge.push("cam-in", openalpr(p), None)[0], 200)
        self.bridge.stop(signal.SIGKILL)
        self.gw.start()
        self.bridge.start()
        self.wait_plates(plates, timeout=30)
        # Nothing doubled: one entry per read, and a second restart sends nothing again.
        self.assertEqual(self.redis.cmd("XLEN", "pk:{LOT-A}:entries"), 6)
        self.bridge.stop(signal.SIGKILL)
        self.bridge.start()
        time.sleep(1)
        self.assertEqual(self.redis.cmd("XLEN", "pk:{LOT-A}:entries"), 6)
        self.assertEqual(self.bridge.stop(), 0)


def platerecognizer_multipart_sample():
    """tests/samples/lpr/29 (a Plate Recognizer webhook with its JPEG) split into its Content-Type
    and body, the capture time moved to now (same length) so the gateway takes it as current."""
    path = os.path.join(harness.ROOT, "tests", "samples", "lpr",
                        "29_platerecognizer_multipart_with_image.http")
    with open(path, "rb") as f:
        raw = f.read()
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        headers[k.decode().strip().lower()] = v.decode().strip()
    now = time.time()
    utc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".250000Z"
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 8 * 3600)) + ".250000+08:00"
    for old, new in ((b"2025-03-14T09:43:01.250000Z", utc.encode()),
                     (b"2025-03-14 17:43:01.250000+08:00", local.encode())):
        assert len(old) == len(new) and old in body, old
        body = body.replace(old, new)
    assert int(headers["content-length"]) == len(body)
    return headers["content-type"], body


CAMERA_TOKEN = "camera-token-0123456789-abcdef"
HIK_USER, HIK_PASSWORD = "admin", "Hik-barrier-pass-42"


class TestLaneCommands(LprCase):
    """An operator opens a lane from afar (POST /v1/lots/{lot}/lanes/{lane}/open): the bridge
    finds the command with a signed GET /v1/lane-commands and drives the lane's barrier, once."""

    def lpr_options(self):
        return {"command_poll_ms": 200, "command_max_age_s": 2}

    def open_lane(self, lane, reason, lot="LOT-A"):
        status, out, _ = self.gw.request(
            "POST", "/v1/lots/%s/lanes/%s/open" % (lot, lane),
            json.dumps({"reason": reason}).encode(),
            {"Authorization": "Bearer " + harness.ADMIN_TOKEN, "Content-Type": "application/json"})
        self.assertEqual(status, 202, out)
        return json.loads(out)["command_id"]

    def remote(self):
        return [b for b in self.barrier.received if b.get("reason") == "remote_open"]

    def commands(self, device, after=None):
        path = "/v1/lane-commands" + ("?after=" + after if after is not None else "")
        status, data, _ = self.gw.signed("GET", path, b"", device)
        return status, json.loads(data)

    def test_remote_open_reaches_the_barrier_once(self):
        cmd = self.open_lane("out", "barrier stuck; the driver paid cash")
        harness.wait_for(lambda: len(self.remote()) == 1, 10, "the remote opening at the barrier")
        [b] = self.remote()
        self.assertEqual((b["camera"], b["lot"], b["lane"], b["decision"], b["command_id"]),
                         ("cam-out", "LOT-A", "out", "open", cmd))
        self.wait_metric('park_lpr_lane_commands_total{outcome="done"}', 1)
        # The cursor is kept: a restart carries nothing out again.
        cursor = os.path.join(self.gw.dir, "spool", "lane-commands.LOT-A")

        def saved():
            if not os.path.exists(cursor):
                return None
            with open(cursor) as f:
                return f.read().strip()
        harness.wait_for(lambda: saved() == cmd, what="the cursor file")
        self.bridge.stop()
        self.bridge.start()
        time.sleep(1.0)
        self.assertEqual(len(self.remote()), 1)
        # The other lane, then a lane no camera of this bridge drives.
        cmd2 = self.open_lane("in", "entry barrier jammed")
        harness.wait_for(lambda: len(self.remote()) == 2, 10, "the second opening")
        self.assertEqual((self.remote()[1]["camera"], self.remote()[1]["command_id"]),
                         ("cam-in", cmd2))
        self.assertEqual(len(self.remote()), 2)

    def test_the_gateway_gives_each_device_its_own_lots_commands(self):
        a1 = self.open_lane("out", "one")
        b1 = self.open_lane("in", "two", lot="LOT-B")
        status, out = self.commands("dev-a-in", "0-0")
        self.assertEqual(status, 200, out)
        self.assertEqual(out["lot"], "LOT-A")
        self.assertEqual([(c["id"], c["lane"], c["command"], c["reason"], c["actor"])
                          for c in out["commands"]], [(a1, "out", "open", "one", "configuration admin token")])
        self.assertEqual(out["cursor"], a1)
        status, out = self.commands("dev-a-in", a1)
        self.assertEqual((out["commands"], out["cursor"]), ([], a1))
        status, out = self.commands("dev-b")
        self.assertEqual((out["lot"], out["commands"], out["cursor"]), ("LOT-B", [], b1))
        status, out = self.commands("dev-a-in", "yesterday")
        self.assertEqual(status, 400, out)
        status, data, _ = self.gw.request("GET", "/v1/lane-commands?after=0-0", b"", {})
        self.assertEqual(status, 401)
        status, data, _ = self.gw.signed("GET", "/v1/lane-commands?after=0-0", b"", "dev-a-in",
                                         key="not-the-key-of-dev-a-in-000")
        self.assertEqual(status, 401)

    def test_a_command_older_than_its_limit_is_not_carried_out(self):
        self.open_lane("out", "first")
        harness.wait_for(lambda: len(self.remote()) == 1, 10, "the first opening")
        harness.wait_for(lambda: os.path.exists(os.path.join(self.gw.dir, "spool",
                                                             "lane-commands.LOT-A")),
                         what="the cursor file")
        self.bridge.stop()
        self.open_lane("out", "while the bridge was down")
        time.sleep(3.0)  # older than command_max_age_s (2 s) by the time the bridge is back
        self.bridge.start()
        self.wait_metric('park_lpr_lane_commands_total{outcome="stale"}', 1)
        self.assertEqual(len(self.remote()), 1)
        self.assertIn("not carried out", self.bridge.logs())


class TestHikvisionBarrier(LprCase):
    """A lane whose barrier is the camera's own, behind digest authentication."""

    def setUp(self):
        self.hik = HikvisionBarrier(HIK_USER, HIK_PASSWORD)
        self.addCleanup(self.hik.destroy)
        super().setUp()

    def secret_files(self):
        return {"secrets/hik-password": (HIK_PASSWORD + "\n").encode(),
                "secrets/hik-wrong": b"not-the-password\n"}

    def extra_cameras(self):
        def cam(cid, lot, device, channel, password_file):
            # A decision that takes long would give the fallback (hold: no command) the lane.
            return {"id": cid, "lot": lot, "lane": "in", "device": device, "format": "hikvision",
                    "decision_timeout_ms": 10000, "fallback": "hold",
                    "barrier": {"kind": "hikvision", "url": self.hik.url, "channel": channel,
                                "username": HIK_USER, "password": {"file": password_file},
                                "timeout_ms": 5000}}
        return [cam("cam-hik", "LOT-B", "dev-b", 2, "secrets/hik-password"),
                cam("cam-hik-wrong", "LOT-C", "dev-c", 3, "secrets/hik-wrong")]

    def test_entry_that_opens_sends_one_authenticated_command(self):
        status, out = self.bridge.push("cam-hik", hikvision("浙B12345"), "application/xml")
        self.assertEqual((status, out["action"]), (200, "forwarded"), out)
        self.wait_metric('park_lpr_barrier_commands_total{result="ok"}', 1)
        self.wait_plates(["浙B12345"], lot="LOT-B")
        time.sleep(0.5)  # nothing follows
        self.assertEqual(len(self.hik.commands), 1, self.hik.requests)
        command = self.hik.commands[0]
        self.assertEqual((command["channel"], command["username"]), (2, HIK_USER))
        self.assertIn(b"<ctrlMode>open</ctrlMode>", command["body"])
        # libcurl's digest dance: challenged once, then authenticated, on the right channel only.
        self.assertTrue(all(p == "/ISAPI/Parking/channels/2/barrierGate" and m == "PUT"
                            for m, p, _ in self.hik.requests), self.hik.requests)
        self.assertEqual([o for _, _, o in self.hik.requests if o != "challenged"], ["ok"])
        self.assertEqual(self.metric('park_lpr_barrier_commands_total{result="failed"}'), 0)

    def test_hold_sends_no_command(self):
        # An unreadable plate is held for staff: the camera's barrier is not touched.
        status, out = self.bridge.push("cam-hik", hikvision("无车牌", confidence=0),
                                       "application/xml")
        self.assertEqual(status, 200, out)
        self.wait_metric("park_lpr_delivered_total", 1)
        time.sleep(0.5)
        self.assertEqual(self.hik.requests, [])
        m = self.bridge.metrics()
        self.assertEqual(m['park_lpr_barrier_commands_total{result="ok"}'], 0)
        self.assertEqual(m['park_lpr_barrier_commands_total{result="failed"}'], 0)

    def test_wrong_password_fails_the_command_only(self):
        status, out = self.bridge.push("cam-hik-wrong", hikvision("浙C23456"), "application/xml")
        self.assertEqual(status, 200, out)
        self.wait_metric('park_lpr_barrier_commands_total{result="failed"}', 1)
        self.assertEqual(self.hik.commands, [])
        self.assertTrue(self.hik.requests)
        self.assertTrue(all(o == "challenged" for _, _, o in self.hik.requests), self.hik.requests)
        # The read itself went through, and the bridge carries on.
        self.wait_plates(["浙C23456"], lot="LOT-C")
        self.assertEqual(self.bridge.get("/healthz")[0], 200)
        status, out = self.bridge.push("cam-hik", hikvision("浙B34567"), "application/xml")
        self.assertEqual(status, 200, out)
        self.wait_metric('park_lpr_barrier_commands_total{result="ok"}', 1)
        self.assertEqual(len(self.hik.commands), 1)
        self.assertEqual(self.metric('park_lpr_barrier_commands_total{result="failed"}'), 1)


class TestCameras(LprCase):
    """Per-camera settings: fallback, token, pinned format, de-duplication window."""

    FALLBACK_MS = 800

    def secret_files(self):
        return {"secrets/cam-token": (CAMERA_TOKEN + "\n").encode()}

    def extra_cameras(self):
        webhook = {"kind": "webhook", "url": "http://127.0.0.1:%d/barrier" % self.barrier.port}
        return [
            {"id": "cam-fb", "lot": "LOT-C", "lane": "in", "device": "dev-c",
             "decision_timeout_ms": self.FALLBACK_MS, "fallback": "open", "barrier": webhook},
            {"id": "cam-tok", "lot": "LOT-B", "lane": "in", "device": "dev-b",
             "token": {"file": "secrets/cam-token"}},
            {"id": "cam-pin", "lot": "LOT-B", "lane": "out", "device": "dev-b",
             "format": "hikvision"},
            {"id": "cam-slide", "lot": "LOT-C", "lane": "in", "device": "dev-c",
             "dedupe_window_s": 5},
        ]

    def test_fallback_open_then_delivered_once(self):
        self.gw.stop()
        t0 = time.time()
        status, out = self.bridge.push("cam-fb", openalpr("浙C45678"), None)
        self.assertEqual((status, out["action"]), (200, "forwarded"), out)
        harness.wait_for(lambda: any(b["camera"] == "cam-fb" for b in self.barrier.received),
                         10, "the fallback at the barrier")
        i = next(i for i, b in enumerate(self.barrier.received) if b["camera"] == "cam-fb")
        b, elapsed = self.barrier.received[i], self.barrier.times[i] - t0
        self.assertEqual((b["decision"], b["reason"], b["fallback"]),
                         ("open", "gateway_timeout", True), b)
        self.assertEqual(b["event_id"], out["event_id"])
        # About decision_timeout_ms after the read: not before, and not much later (a busy CI
        # machine gets seconds of slack).
        self.assertGreaterEqual(elapsed, self.FALLBACK_MS / 1000 - 0.05)
        self.assertLess(elapsed, self.FALLBACK_MS / 1000 + 3)
        self.gw.start()
        self.wait_plates(["浙C45678"], timeout=30, lot="LOT-C")
        self.wait_metric("park_lpr_delivered_total", 1)
        time.sleep(1)
        self.assertEqual(self.redis.cmd("XLEN", "pk:{LOT-C}:entries"), 1)
        self.assertEqual(self.open_plates("LOT-C"), ["浙C45678"])
        # The barrier opened once: the gateway's late answer does not drive it again.
        self.assertEqual([x for x in self.barrier.received if x["camera"] == "cam-fb"], [b])
        self.assertEqual(self.metric("park_lpr_fallbacks_total"), 1)
        self.assertEqual(self.metric("park_lpr_spool_depth"), 0)

    def test_camera_token(self):
        self.assertEqual(self.bridge.push("cam-tok", openalpr("浙B50001"), None)[0], 401)
        self.assertEqual(self.bridge.push("cam-tok", openalpr("浙B50001"), None,
                                          {"Authorization": "Bearer wrong-token-0123456789"})[0],
                         401)
        self.assertEqual(self.bridge.push("cam-tok", openalpr("浙B50001"), None,
                                          query="?token=wrong-token-0123456789")[0], 401)
        # Only a parameter named token counts.
        self.assertEqual(self.bridge.push("cam-tok", openalpr("浙B50001"), None,
                                          query="?notoken=" + CAMERA_TOKEN)[0], 401)
        status, out = self.bridge.push("cam-tok", openalpr("浙B50002"), None,
                                       {"Authorization": "Bearer " + CAMERA_TOKEN})
        self.assertEqual((status, out.get("action")), (200, "forwarded"), out)
        status, out = self.bridge.push("cam-tok", openalpr("浙B50003"), None,
                                       query="?site=1&token=" + CAMERA_TOKEN)
        self.assertEqual((status, out.get("action")), (200, "forwarded"), out)
        self.wait_plates(["浙B50002", "浙B50003"], lot="LOT-B")
        # Cameras without a token still take pushes without one.
        self.assertEqual(self.bridge.push("cam-in", openalpr("浙A50004"), None)[0], 200)

    def test_pinned_format_refuses_other_payloads(self):
        status, out = self.bridge.push("cam-pin", openalpr("浙B60001"), None)
        self.assertEqual(status, 400, out)
        self.assertIn("hikvision", out["message"])
        self.assertEqual(self.metric('park_lpr_payload_errors_total{camera="cam-pin"}'), 1)
        status, out = self.bridge.push("cam-pin", hikvision("浙B60002"), "application/xml")
        self.assertEqual((status, out["action"]), (200, "forwarded"), out)

    def test_platerecognizer_multipart_with_image(self):
        ctype, body = platerecognizer_multipart_sample()
        status, out = self.bridge.push("cam-in", body, ctype)
        self.assertEqual((status, out["action"]), (200, "forwarded"), out)
        self.wait_plates(["KX70YTW"])
        self.wait_metric("park_lpr_delivered_total", 1)

    def test_window_slides_while_the_vehicle_stays(self):
        # Read every 3 s for 15 s: each read is within 5 s of the one before, never of the first.
        start = time.time()
        actions = []
        for i in range(6):
            time.sleep(max(0.0, start + 3 * i - time.time()))
            status, out = self.bridge.push("cam-slide", openalpr("浙C70001"), None)
            self.assertEqual(status, 200, out)
            actions.append(out["action"])
        self.assertEqual(actions, ["forwarded"] + ["suppressed"] * 5)
        self.wait_metric("park_lpr_delivered_total", 1)
        m = self.bridge.metrics()
        self.assertEqual(m['park_lpr_reads_total{camera="cam-slide",outcome="forwarded"}'], 1)
        self.assertEqual(m['park_lpr_reads_total{camera="cam-slide",outcome="suppressed"}'], 5)
        self.assertEqual(self.redis.cmd("XLEN", "pk:{LOT-C}:entries"), 1)
        self.assertEqual(self.open_plates("LOT-C"), ["浙C70001"])

    def test_metrics_pass_promtool(self):
        # Every kind of series with data in it: reads, suppressions, errors, deliveries, latency.
        self.bridge.push("cam-in", openalpr("浙A70001"), None)
        self.bridge.push("cam-in", openalpr("浙A70001"), None)
        self.bridge.push("cam-pin", openalpr("浙B70002"), None)
        self.wait_plates(["浙A70001"])
        self.wait_metric("park_lpr_delivered_total", 1)
        text = self.bridge.metrics_text()
        out = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                             capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, (out.stdout + out.stderr).decode() + text)


class TestShutdown(LprCase):
    def test_sigterm_with_undeliverable_reads(self):
        self.gw.stop()
        plates = ["浙A7%04d" % i for i in range(3)]
        for p in plates:
            status, out = self.bridge.push("cam-in", openalpr(p), None)
            self.assertEqual((status, out["action"]), (200, "forwarded"))
        self.assertEqual(self.metric("park_lpr_spool_depth"), 3)
        t0 = time.time()
        self.assertEqual(self.bridge.stop(), 0)
        self.assertLess(time.time() - t0, 5)
        self.assertIn("lpr-bridge stopped", self.bridge.logs())
        self.assertNotIn("handles left open", self.bridge.logs())
        self.gw.start()
        self.bridge.start()
        self.wait_plates(plates, timeout=30)
        self.assertEqual(self.redis.cmd("XLEN", "pk:{LOT-A}:entries"), 3)
        self.wait_metric("park_lpr_spool_depth", 0)



class TestManyCameras(LprCase):
    """A city's bridge: the metrics text of 1 500 cameras is over 1 MiB and must come whole."""

    N = 1500

    def extra_cameras(self):
        # Ids of 64 bytes, the most allowed, so the text is as long as such a bridge makes it.
        return [{"id": "cam-%060d" % i, "lot": "LOT-A", "lane": "in", "device": "dev-a-in"}
                for i in range(self.N)]

    def test_metrics_of_every_camera_and_the_totals(self):
        self.bridge.push("cam-%060d" % (self.N - 1), openalpr("浙A70003"), None)
        self.wait_plates(["浙A70003"])
        self.wait_metric("park_lpr_delivered_total", 1)
        text = self.bridge.metrics_text()
        self.assertGreater(len(text), 1 << 20)
        reads = [l for l in text.splitlines() if l.startswith("park_lpr_reads_total{")]
        self.assertEqual(len(reads), (self.N + 2) * 7)
        self.assertIn('park_lpr_reads_total{camera="cam-%060d",outcome="forwarded"} 1' %
                      (self.N - 1), text)
        self.assertIn("park_lpr_delivered_total 1\n", text)
        self.assertIn("park_lpr_spool_depth 0\n", text)
        self.assertTrue(text.rstrip("\n").startswith("# HELP") and
                        "park_lpr_forward_seconds_count 1" in text.splitlines()[-1], text[-300:])


if __name__ == "__main__":
    unittest.main()
