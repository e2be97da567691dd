"""The lpr-bridge end to end: camera payloads (OpenALPR, Plate Recognizer, Hikvision) pushed to the
real bridge, which spools them, de-duplicates them and forwards signed events to the real gateway
on a real redis-server; the barrier webhook is a small receiver of the test's own."""
import http.server
import json
import os
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

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(n)))
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

    def push(self, camera, body, ctype="application/json"):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/v1/cameras/" + camera,
                         body=body if isinstance(body, bytes) else body.encode(),
                         headers={"Content-Type": ctype} if ctype else {})
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def metrics(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
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
        ]
        self.gw = Gateway(self.redis, {"lpr_bridge": {"listen": "127.0.0.1:0",
                                                      "spool_dir": "spool",
                                                      "forward_timeout_ms": 3000,
                                                      "cameras": cams}})
        self.bridge = Bridge(self.gw)

    def tearDown(self):
        self.bridge.destroy()
        self.gw.destroy()
        self.barrier.destroy()
        self.redis.destroy()

    def open_plates(self):
        return sorted(v.split("\x1f")[0] for v in self.redis.cmd("HVALS", "pk:{LOT-A}:open"))

    def wait_plates(self, plates, timeout=10):
        harness.wait_for(lambda: self.open_plates() == sorted(plates), timeout,
                         "open sessions %s (are %s)" % (sorted(plates), self.open_plates()))


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


if __name__ == "__main__":
    unittest.main()
