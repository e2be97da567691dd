"""The gateway end to end: the real binary, a real redis-server (plain, or with
PARK_REDIS_CLUSTER=1 a cluster-enabled one owning every slot), signed requests over real sockets.
Each test uses plates of its own, so tests of one class can share one gateway."""
import hashlib
import hmac
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Gateway, Redis, ev, iso

NOW = int(time.time())
H = 3600


def parkctl_fee(entry, exit_, vclass="small", explain=False):
    """The expected fee, from parkctl (the engine the differential test checks); with `explain`,
    parkctl's whole explanation (built as a jansson tree), members in its order."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(harness.TARIFF, f)
        f.flush()
        out = subprocess.run([os.path.join(harness.BIN, "parkctl"), "fee", "--tariff", f.name,
                              "--class", vclass, "--entry", iso(entry), "--exit", iso(exit_),
                              "--json"] + (["--explain"] if explain else []),
                             capture_output=True, timeout=10, check=True)
    doc = json.loads(out.stdout)
    return doc if explain else doc["amount"]


class GatewayCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.gw = Gateway(cls.redis)

    @classmethod
    def tearDownClass(cls):
        cls.gw.destroy()
        cls.redis.destroy()

    def enrol(self, plates, score=None, driver_id=None):
        body = {"plates": plates, "provider": "stripe-test", "payment_ref": "cus_test"}
        if score is not None:
            body["score"] = score
        if driver_id:
            body["id"] = driver_id
        status, d = self.gw.admin("POST", "/v1/drivers", body)
        self.assertEqual(status, 201, d)
        return d

    def entry(self, lot, plate, ts, device=None, **extra):
        device = device or {"LOT-A": "dev-a-in", "LOT-B": "dev-b", "LOT-C": "dev-c"}[lot]
        status, a = self.gw.event(device, ev(lot, "in", "entry", plate, iso(ts), **extra))
        self.assertEqual(status, 200, a)
        return a

    def exit(self, lot, plate, ts, device=None, **extra):
        device = device or {"LOT-A": "dev-a-out", "LOT-B": "dev-b", "LOT-C": "dev-c"}[lot]
        status, a = self.gw.event(device, ev(lot, "out", "exit", plate, iso(ts), **extra))
        self.assertEqual(status, 200, a)
        return a


class TestEntryExit(GatewayCase):
    def test_entry_opens_a_session(self):
        a = self.entry("LOT-A", "浙A10001", NOW - 2 * H)
        self.assertEqual(a["decision"], "open")
        self.assertEqual(a["reason"], "entry")
        self.assertTrue(a["session_id"].startswith("LOT-A~"))
        for k in ("match", "bill_id", "amount", "currency"):
            self.assertIsNone(a[k])
        self.assertIn("浙A10001", a["display"])
        # The session is in Redis, indexed by its folded plate, and the entry was published.
        seq = a["session_id"].split("~")[1]
        rec = self.redis.open_sessions("LOT-A")[seq].split("\x1f")
        self.assertEqual(rec[0], "浙A10001")
        self.assertEqual(rec[2:4], ["in", "small"])
        self.assertEqual(rec[6], harness.fold_key("浙A10001"))
        self.assertEqual(int(self.redis.cmd("HGET", "pk:{LOT-A}:meta", "occ")),
                         len(self.redis.open_sessions("LOT-A")))
        stream = self.redis.cmd("XRANGE", "pk:{LOT-A}:entries", "-", "+")
        self.assertTrue(any(e[1][:4] == ["n", seq, "plate", "浙A10001"] for e in stream))

    def test_unenrolled_exit_is_held_with_the_fee_then_paid_on_site(self):
        entry_ts, exit_ts = NOW - 3 * H - 600, NOW - 600
        a = self.entry("LOT-A", "浙A10002", entry_ts)
        b = self.exit("LOT-A", "浙A10002", exit_ts)
        fee = parkctl_fee(entry_ts, exit_ts)
        self.assertGreater(fee, 0)
        self.assertEqual((b["decision"], b["reason"], b["match"]), ("hold", "not_enrolled", "exact"))
        self.assertEqual(b["session_id"], a["session_id"])
        self.assertEqual(b["amount"], fee)
        self.assertEqual(b["currency"], "CNY")
        self.assertIsNone(b["bill_id"])
        # The lane asks for the session's state, then its terminal confirms a payment.
        path = "/v1/sessions/" + a["session_id"]
        status, data, _ = self.gw.signed("GET", path, b"", "dev-a-out")
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["decision"], "hold")
        pay = {"event_id": "pay-10002", "amount": fee, "method": "qr", "ts": iso(NOW)}
        status, data, _ = self.gw.signed("POST", path + "/paid", pay, "dev-a-pay")
        self.assertEqual(status, 200, data)
        p = json.loads(data)
        self.assertEqual((p["decision"], p["reason"], p["amount"]), ("open", "paid_on_site", fee))
        # Replayed: the same bytes.
        status, data2, _ = self.gw.signed("POST", path + "/paid", pay, "dev-a-pay")
        self.assertEqual((status, data2), (200, data))
        status, data, _ = self.gw.signed("GET", path, b"", "dev-a-out")
        g = json.loads(data)
        self.assertEqual((g["decision"], g["reason"]), ("open", "paid_on_site"))
        rec = self.redis.hgetall("pk:{LOT-A}:s:" + a["session_id"].split("~")[1])
        self.assertEqual(rec["status"], "paid_on_site")
        self.assertEqual(rec["method"], "qr")

    def test_payment_below_the_amount_due_is_refused(self):
        a = self.entry("LOT-A", "浙A10003", NOW - 5 * H)
        b = self.exit("LOT-A", "浙A10003", NOW - 60)
        path = "/v1/sessions/%s/paid" % a["session_id"]
        pay = {"event_id": "pay-10003", "amount": b["amount"] - 1, "method": "cash", "ts": iso(NOW)}
        status, data, _ = self.gw.signed("POST", path, pay, "dev-a-pay")
        self.assertEqual(status, 400)
        self.assertIn("less than", json.loads(data)["message"])

    def test_free_period(self):
        self.entry("LOT-A", "浙A10004", NOW - 600)
        b = self.exit("LOT-A", "浙A10004", NOW - 60)
        self.assertEqual((b["decision"], b["reason"], b["amount"]), ("open", "free_period", 0))

    def test_credit_ok_creates_a_pending_bill_and_queues_it(self):
        d = self.enrol(["浙A10005", "浙B10005"])
        entry_ts, exit_ts = NOW - 2 * H, NOW - 120
        a = self.entry("LOT-A", "浙A10005", entry_ts)
        b = self.exit("LOT-A", "浙A10005", exit_ts)
        fee = parkctl_fee(entry_ts, exit_ts)
        self.assertEqual((b["decision"], b["reason"], b["match"]), ("open", "credit_ok", "exact"))
        self.assertEqual(b["amount"], fee)
        self.assertEqual(b["bill_id"], a["session_id"] + "~b")
        self.assertIn("先离场后付费", b["display"])
        bill = self.redis.hgetall("pk:{LOT-A}:s:" + a["session_id"].split("~")[1])
        self.assertEqual(bill["status"], "pending")
        self.assertEqual(bill["amount"], str(fee))
        self.assertEqual(bill["driver"], d["id"])
        self.assertEqual(bill["tariff"], "test-core")
        self.assertEqual(len(bill["tariff_version"]), 16)
        expl = json.loads(bill["explanation"])
        self.assertEqual(expl["amount"], fee)
        self.assertGreater(len(expl["rows"]), 0)
        # The record's explanation is the text of parkctl's, compact, member for member (the
        # gateway writes it without a jansson tree; its content here is plain ASCII, which Python
        # and jansson write alike).
        want = parkctl_fee(entry_ts, exit_ts, explain=True)
        want.pop("vehicle_class")
        self.assertEqual(bill["explanation"],
                         json.dumps(want, separators=(",", ":"), ensure_ascii=False))
        stream = self.redis.cmd("XRANGE", "pk:{LOT-A}:bills", "-", "+")
        self.assertTrue(any(b["bill_id"] in e[1] for e in stream))
        # The driver now owes it (updated right after the answer).
        harness.wait_for(lambda: self.gw.admin("GET", "/v1/drivers/" + d["id"])[1]["unpaid_count"] == 1)
        status, drv = self.gw.admin("GET", "/v1/drivers/" + d["id"])
        self.assertEqual(drv["unpaid_amount"], fee)
        self.assertEqual(drv["unpaid_bills"], {b["bill_id"]: fee})

    def test_replay_and_conflict(self):
        body = ev("LOT-A", "in", "entry", "浙A10006", iso(NOW - 300), event_id="fixed-10006")
        s1, a1, _ = self.gw.signed("POST", "/v1/events", body, "dev-a-in")
        s2, a2, _ = self.gw.signed("POST", "/v1/events", body, "dev-a-in")
        self.assertEqual((s1, s2), (200, 200))
        self.assertEqual(a1, a2)
        self.assertEqual(len([v for v in self.redis.open_sessions("LOT-A").values()
                              if v.startswith("浙A10006\x1f")]), 1)
        body["plate"] = "浙A10007"
        s3, a3, _ = self.gw.signed("POST", "/v1/events", body, "dev-a-in")
        self.assertEqual(s3, 409)
        self.assertEqual(json.loads(a3)["error"], "conflict")
        # The same id from another device is another event.
        body["lane_id"] = "out"
        body["direction"] = "exit"
        s4, _, _ = self.gw.signed("POST", "/v1/events", body, "dev-a-out")
        self.assertEqual(s4, 200)

    def test_concurrent_duplicates_are_applied_once(self):
        self.enrol(["浙A10008"])
        self.entry("LOT-A", "浙A10008", NOW - 4 * H)
        body = ev("LOT-A", "out", "exit", "浙A10008", iso(NOW - 10), event_id="dup-10008")
        results = []

        def send():
            results.append(self.gw.signed("POST", "/v1/events", body, "dev-a-out")[:2])

        threads = [threading.Thread(target=send) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len({r for r in results}), 1, results)
        self.assertEqual(results[0][0], 200)
        bill_id = json.loads(results[0][1])["bill_id"]
        stream = self.redis.cmd("XRANGE", "pk:{LOT-A}:bills", "-", "+")
        self.assertEqual(sum(1 for e in stream if bill_id in e[1]), 1)

    def test_passes_allow_list_exempt_and_blacklist(self):
        self.assertEqual(self.entry("LOT-A", "浙A·8M2K7", NOW - 5 * H)["reason"], "pass")
        self.assertEqual(self.exit("LOT-A", "浙A8M2K7", NOW - 10)["reason"], "pass")
        self.assertEqual(self.entry("LOT-A", "浙A0G9P3", NOW - 5 * H)["reason"], "pass")
        b = self.exit("LOT-A", "浙A0G9P3", NOW - 10)
        self.assertEqual((b["decision"], b["reason"]), ("open", "pass"))
        self.assertEqual(self.entry("LOT-A", "浙A1208警", NOW - 5 * H)["reason"], "exempt")
        self.assertEqual(self.exit("LOT-A", "浙A1208警", NOW - 10)["reason"], "exempt")
        a = self.entry("LOT-A", "浙A66J19", NOW - 60)
        self.assertEqual((a["decision"], a["reason"], a["session_id"]), ("hold", "blacklisted", None))

    def test_unreadable_reads_are_held_and_recorded(self):
        for direction, lane, dev in (("entry", "in", "dev-a-in"), ("exit", "out", "dev-a-out")):
            status, a = self.gw.event(dev, ev("LOT-A", lane, direction, None, iso(NOW),
                                              unreadable=True))
            self.assertEqual(status, 200, a)
            self.assertEqual((a["decision"], a["reason"], a["session_id"]),
                             ("hold", "unreadable", None))
            status, a = self.gw.event(dev, ev("LOT-A", lane, direction, "无车牌", iso(NOW)))
            self.assertEqual((a["decision"], a["reason"]), ("hold", "unreadable"))
        review = self.redis.cmd("XRANGE", "pk:{LOT-A}:review", "-", "+")
        self.assertGreaterEqual(sum(1 for e in review if "unreadable" in e[1]), 4)

    def test_exit_without_entry(self):
        b = self.exit("LOT-A", "浙A10009", NOW - 10)
        self.assertEqual((b["decision"], b["reason"], b["match"], b["session_id"]),
                         ("hold", "no_entry_record", "none", None))
        # Lot B charges a fixed fee: held for an unknown driver, a bill for an enrolled one.
        b = self.exit("LOT-B", "浙A10010", NOW - 10)
        self.assertEqual((b["decision"], b["reason"], b["amount"]), ("hold", "not_enrolled", 2000))
        self.assertIsNotNone(b["session_id"])
        self.enrol(["浙A10011"])
        b = self.exit("LOT-B", "浙A10011", NOW - 10)
        self.assertEqual((b["decision"], b["reason"], b["amount"], b["match"]),
                         ("open", "credit_ok", 2000, "none"))
        self.assertIsNotNone(b["bill_id"])

    def test_exit_before_entry_is_free_and_recorded(self):
        self.entry("LOT-A", "浙A10012", NOW - 60)
        b = self.exit("LOT-A", "浙A10012", NOW - 3600)
        self.assertEqual((b["decision"], b["reason"], b["amount"]), ("open", "free_period", 0))
        review = self.redis.cmd("XRANGE", "pk:{LOT-A}:review", "-", "+")
        self.assertTrue(any("exit_before_entry" in e[1] and "浙A10012" in e[1] for e in review))

    def test_parkctl_event_drives_the_gateway(self):
        def parkctl(*args):
            return subprocess.run([os.path.join(harness.BIN, "parkctl"), "event", "--config",
                                   self.gw.config_path, "--url", "http://127.0.0.1:%d" % self.gw.port]
                                  + list(args), capture_output=True, timeout=20)
        p = parkctl("--device", "dev-a-in", "--lane", "in", "--plate", "浙A·10014",
                    "--ts", iso(NOW - 2 * H))
        self.assertEqual(p.returncode, 0, p.stderr)
        a = json.loads(p.stdout)
        self.assertEqual((a["decision"], a["reason"]), ("open", "entry"))
        p = parkctl("--device", "dev-a-out", "--lane", "out", "--plate", "浙A10014")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["session_id"], a["session_id"])
        p = parkctl("--device", "dev-a-out", "--lane", "in", "--plate", "浙A10014")
        self.assertEqual(p.returncode, 2)  # the device does not serve that lane: 403
        self.assertIn("403", p.stderr.decode())

    def test_new_energy_class_from_plate(self):
        entry_ts, exit_ts = NOW - 3 * H, NOW - 60
        self.entry("LOT-A", "浙AD10013", entry_ts)
        b = self.exit("LOT-A", "浙AD10013", exit_ts)
        self.assertEqual(b["amount"], parkctl_fee(entry_ts, exit_ts, "new_energy"))


class TestMatching(GatewayCase):
    def test_confusable_match_is_used_when_unique(self):
        a = self.entry("LOT-A", "浙A20B01", NOW - H)
        b = self.exit("LOT-A", "浙A2081", NOW - 10)   # 8/B and 0/D/Q confusions? not the same length
        self.assertEqual(b["match"], "none")
        b = self.exit("LOT-A", "浙A2QB01", NOW - 10)  # 0 read as Q
        self.assertEqual((b["match"], b["session_id"]), ("fuzzy", a["session_id"]))

    def test_province_misread_matches(self):
        a = self.entry("LOT-A", "浙A30001", NOW - H)
        b = self.exit("LOT-A", "沪A30001", NOW - 10)
        self.assertEqual((b["match"], b["session_id"]), ("fuzzy", a["session_id"]))

    def test_ambiguous_confusable_match_is_refused(self):
        self.entry("LOT-A", "浙A40000", NOW - H)
        self.entry("LOT-A", "浙A4000D", NOW - H)
        b = self.exit("LOT-A", "浙A4000Q", NOW - 10)
        self.assertEqual((b["decision"], b["reason"], b["match"]), ("hold", "no_entry_record", "none"))

    def test_candidates_are_tried(self):
        a = self.entry("LOT-A", "浙A50001", NOW - H)
        b = self.exit("LOT-A", "浙A5000X", NOW - 10,
                      candidates=[{"plate": "浙A50007", "confidence": 0.3},
                                  {"plate": "浙A50001", "confidence": 0.2}])
        self.assertEqual((b["match"], b["session_id"]), ("candidate", a["session_id"]))

    def test_exact_only_lot(self):
        self.entry("LOT-C", "浙A60001", NOW - H)
        b = self.exit("LOT-C", "浙A6000D", NOW - 10,
                      candidates=[{"plate": "浙A60001", "confidence": 0.3}])
        self.assertEqual(b["match"], "none")

    def test_stale_entry_closes_the_old_session(self):
        a1 = self.entry("LOT-C", "浙A70001", NOW - 5 * H)
        a2 = self.entry("LOT-C", "浙A70001", NOW - H)
        self.assertNotEqual(a1["session_id"], a2["session_id"])
        open_recs = [v for v in self.redis.open_sessions("LOT-C").values() if v.startswith("浙A70001\x1f")]
        self.assertEqual(len(open_recs), 1)
        old = self.redis.hgetall("pk:{LOT-C}:s:" + a1["session_id"].split("~")[1])
        self.assertEqual((old["status"], old["reason"]), ("stale_closed", "stale_entry"))
        # Lot B bills the stale stay for review.
        b1 = self.entry("LOT-B", "浙A70002", NOW - 5 * H)
        self.entry("LOT-B", "浙A70002", NOW - H)
        old = self.redis.hgetall("pk:{LOT-B}:s:" + b1["session_id"].split("~")[1])
        self.assertEqual(old["status"], "stale_review")
        self.assertEqual(int(old["amount"]), parkctl_fee(NOW - 5 * H, NOW - H))


class TestCredit(GatewayCase):
    def snapshot(self, plate, **fields):
        """Writes a plate's credit copy the way billing does (docs/redis.md)."""
        fold = harness.fold_key(plate)
        key = "pk:plate:{%s}" % fold
        cur = self.redis.cmd("HGET", key, plate).split("\x1f")
        order = ["driver", "ver", "score", "suspended", "eligibility", "unpaid_count",
                 "unpaid_amount", "provider"]
        for k, v in fields.items():
            cur[order.index(k)] = str(v)
        cur[1] = str(int(cur[1]) + 100)
        self.redis.cmd("HSET", key, plate, "\x1f".join(cur))

    def stay(self, plate, hours=3):
        self.entry("LOT-A", plate, NOW - hours * H)
        return self.exit("LOT-A", plate, NOW - 30)

    def test_each_hold_reason(self):
        cases = [("浙A80001", {"score": 550}, "low_credit"),
                 ("浙A80002", {"suspended": 1}, "suspended"),
                 ("浙A80003", {"eligibility": "BLOCKED:OVERDUE"}, "provider_blocked"),
                 ("浙A80004", {"unpaid_count": 2}, "unpaid_limit"),
                 ("浙A80005", {"unpaid_amount": 4900}, "unpaid_limit"),
                 ("浙A80006", {"provider": "paypal"}, "not_enrolled")]
        for plate, fields, reason in cases:
            self.enrol([plate])
            self.snapshot(plate, **fields)
            b = self.stay(plate)
            self.assertEqual((b["decision"], b["reason"]), ("hold", reason), plate)
            self.assertGreater(b["amount"], 0)
            self.assertIsNotNone(b["session_id"])
        # A fee above max_fee (40.00) is never left unpaid.
        self.enrol(["浙A80007"])
        b = self.stay("浙A80007", hours=20)
        self.assertGreater(b["amount"], 4000)
        self.assertEqual(b["reason"], "unpaid_limit")

    def test_unpaid_limit_counts_new_bills(self):
        self.enrol(["浙A80010"])
        reasons = [self.stay("浙A80010", hours=2)["reason"] for _ in range(2)]
        self.assertEqual(reasons, ["credit_ok", "credit_ok"])
        harness.wait_for(lambda: self.redis.cmd("HGET", "pk:plate:{%s}" % harness.fold_key("浙A80010"),
                                                "浙A80010").split("\x1f")[5] == "2")
        self.assertEqual(self.stay("浙A80010", hours=2)["reason"], "unpaid_limit")

    def test_blocked_plate_at_pay_on_site_lot(self):
        self.enrol(["浙B66J19"])
        a = self.entry("LOT-B", "浙B66J19", NOW - 3 * H)
        self.assertEqual(a["reason"], "entry")
        b = self.exit("LOT-B", "浙B66J19", NOW - 30)
        self.assertEqual((b["decision"], b["reason"]), ("hold", "blacklisted"))


class TestDrivers(GatewayCase):
    def test_enrol_lookup_remove(self):
        status, d = self.gw.admin("POST", "/v1/drivers", {"plates": ["浙A·90001", "浙AD90001"],
                                                           "provider": "stripe-test",
                                                           "payment_ref": "cus_1", "score": 720})
        self.assertEqual(status, 201, d)
        self.assertEqual(d["plates"], ["浙A90001", "浙AD90001"])
        self.assertEqual((d["score"], d["unpaid_count"], d["suspended"]), (720, 0, False))
        status, same = self.gw.admin("GET", "/v1/drivers/" + d["id"])
        self.assertEqual((status, same["id"]), (200, d["id"]))
        status, by_plate = self.gw.admin("GET", "/v1/drivers?plate=%E6%B5%99A90001")
        self.assertEqual((status, by_plate["id"]), (200, d["id"]))
        # A plate belongs to one driver.
        status, err = self.gw.admin("POST", "/v1/drivers", {"plates": ["浙A90001"],
                                                             "provider": "stripe-test",
                                                             "payment_ref": "cus_2"})
        self.assertEqual(status, 409, err)
        # Updating drops a plate: its copy goes.
        status, d2 = self.gw.admin("POST", "/v1/drivers", {"id": d["id"], "plates": ["浙A90001"],
                                                            "provider": "stripe-test",
                                                            "payment_ref": "cus_1"})
        self.assertEqual((status, d2["plates"], d2["score"]), (201, ["浙A90001"], 720))
        harness.wait_for(lambda: self.gw.admin("GET", "/v1/drivers?plate=%E6%B5%99AD90001")[0] == 404)
        self.assertEqual(self.gw.admin("DELETE", "/v1/drivers/" + d["id"])[0], 204)
        self.assertEqual(self.gw.admin("GET", "/v1/drivers/" + d["id"])[0], 404)
        self.assertEqual(self.gw.admin("GET", "/v1/drivers?plate=%E6%B5%99A90001")[0], 404)

    def test_driver_owing_cannot_be_removed(self):
        d = self.enrol(["浙A90002"])
        self.entry("LOT-A", "浙A90002", NOW - 3 * H)
        self.assertEqual(self.exit("LOT-A", "浙A90002", NOW - 30)["reason"], "credit_ok")
        harness.wait_for(lambda: self.gw.admin("GET", "/v1/drivers/" + d["id"])[1]["unpaid_count"] == 1)
        self.assertEqual(self.gw.admin("DELETE", "/v1/drivers/" + d["id"])[0], 409)

    def test_admin_auth_and_validation(self):
        self.assertEqual(self.gw.admin("GET", "/v1/drivers/x", token="wrong")[0], 401)
        status, _, _ = self.gw.request("GET", "/v1/drivers/x")
        self.assertEqual(status, 401)
        for body in ({"plates": [], "provider": "stripe-test", "payment_ref": "c"},
                     {"plates": ["浙A1234I"], "provider": "stripe-test", "payment_ref": "c"},
                     {"plates": ["浙A90003"], "provider": "nope", "payment_ref": "c"},
                     {"plates": ["浙A90003"], "provider": "stripe-test"},
                     {"plates": ["浙A90003"], "provider": "stripe-test", "payment_ref": "c",
                      "score": 5000}):
            status, err = self.gw.admin("POST", "/v1/drivers", body)
            self.assertEqual(status, 400, body)
            self.assertEqual(err["error"], "bad_request")


class TestErrors(GatewayCase):
    def body(self, **kw):
        b = ev("LOT-A", "in", "entry", "浙A11111", iso(NOW))
        b.update(kw)
        return b

    def test_authentication(self):
        b = json.dumps(self.body()).encode()
        # This machine's wall clock has been seen to jump: read it for each request.
        cases = [
            lambda: dict(device="dev-a-in", key="wrong-key-0123456789"),
            lambda: dict(device="dev-a-in", ts=int(time.time()) - 302),
            lambda: dict(device="dev-a-in", ts=int(time.time()) + 302),
            lambda: dict(device="dev-nobody", key="whatever-0123456789"),
        ]
        for make in cases:
            c = make()
            status, data, _ = self.gw.signed("POST", "/v1/events", b, **c)
            self.assertEqual(status, 401, (c, data, int(time.time())))
            self.assertEqual(json.loads(data)["error"], "unauthorized")
        status, data, _ = self.gw.request("POST", "/v1/events", b, {"X-Park-Device": "dev-a-in"})
        self.assertEqual(status, 401)
        # A signature for another path is worthless here.
        status, _, _ = self.gw.signed("POST", "/v1/events?x=1", b, "dev-a-in")
        self.assertEqual(status, 200)  # signed for the path it was sent to
        # The path is signed: a signature for /v1/events does not open /v1/events?x=2.
        ts = str(int(time.time()))
        sig = hmac.new(harness.DEVICE_KEYS["dev-a-in"].encode(),
                       b"\n".join([ts.encode(), b"POST", b"/v1/events", b"dev-a-in", b]),
                       hashlib.sha256).hexdigest()
        status, _, _ = self.gw.request("POST", "/v1/events?x=2", b, {
            "X-Park-Device": "dev-a-in", "X-Park-Timestamp": ts, "X-Park-Signature": sig})
        self.assertEqual(status, 401)
        # Hex case is ignored.
        status, _, _ = self.gw.request("POST", "/v1/events", b, {
            "X-Park-Device": "dev-a-in", "X-Park-Timestamp": ts, "X-Park-Signature": sig.upper()})
        self.assertEqual(status, 200)

    def test_bad_requests(self):
        bads = [b"{not json", b"[]", json.dumps(self.body(event_id="")).encode(),
                json.dumps(self.body(event_id="x" * 65)).encode(),
                json.dumps(self.body(direction="sideways")).encode(),
                json.dumps(self.body(plate=None)).encode(),
                json.dumps(self.body(plate=12345)).encode(),
                json.dumps(self.body(ts="yesterday")).encode(),
                json.dumps(self.body(ts=iso(NOW + 2 * 86400))).encode(),
                json.dumps(self.body(confidence=1.5)).encode(),
                json.dumps(self.body(plate_color="purple")).encode(),
                json.dumps(self.body(candidates="浙A1")).encode(),
                json.dumps({k: v for k, v in self.body().items() if k != "lot_id"}).encode()]
        for b in bads:
            status, data, _ = self.gw.signed("POST", "/v1/events", b, "dev-a-in")
            self.assertEqual(status, 400, b)
            err = json.loads(data)
            self.assertEqual(err["error"], "bad_request")
            self.assertTrue(err["message"])

    def test_forbidden(self):
        for body in (self.body(lot_id="LOT-B"), self.body(lane_id="out", direction="exit")):
            status, data, _ = self.gw.signed("POST", "/v1/events", body, "dev-a-in")
            self.assertEqual(status, 403, body)
            self.assertEqual(json.loads(data)["error"], "forbidden")
        # The precedence of the table: a malformed body of a foreign lot is a 400.
        status, _, _ = self.gw.signed("POST", "/v1/events", self.body(lot_id="LOT-B", ts="x"),
                                      "dev-a-in")
        self.assertEqual(status, 400)
        # Sessions of another lot.
        a = self.entry("LOT-B", "浙A11112", NOW - 60)
        status, _, _ = self.gw.signed("GET", "/v1/sessions/" + a["session_id"], b"", "dev-a-in")
        self.assertEqual(status, 403)
        status, _, _ = self.gw.signed("GET", "/v1/sessions/LOT-A~999999999", b"", "dev-a-in")
        self.assertEqual(status, 404)

    def test_too_large(self):
        big = json.dumps(self.body(pad="x" * 20000)).encode()
        status, data, _ = self.gw.signed("POST", "/v1/events", big, "dev-a-in")
        self.assertEqual(status, 413)
        self.assertEqual(json.loads(data)["error"], "too_large")
        # 413 wins over 401.
        status, _, _ = self.gw.request("POST", "/v1/events", big, {"X-Park-Device": "nobody"})
        self.assertEqual(status, 413)

    def test_ts_as_unix_milliseconds(self):
        status, a = self.gw.event("dev-a-in", self.body(plate="浙A11113", ts=(NOW - 60) * 1000 + 999))
        self.assertEqual((status, a["reason"]), (200, "entry"))

    def test_operations_endpoints(self):
        self.assertEqual(self.gw.get("/healthz")[0], 200)
        status, data = self.gw.get("/readyz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(data)["redis"], True)
        status, data = self.gw.get("/metrics")
        self.assertEqual(status, 200)
        text = data.decode()
        self.assertIn("park_gateway_decision_seconds_bucket", text)
        self.assertIn("park_gateway_redis_up 1", text)
        p = subprocess.run(["promtool", "check", "metrics"], input=data, capture_output=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.gw.get("/nope")[0], 404)

    def test_logs_mask_plates(self):
        self.entry("LOT-A", "浙A12399", NOW - 60)
        logs = self.gw.logs()
        self.assertIn("浙A1***9", logs)
        self.assertNotIn("浙A12399", logs)
        self.assertNotIn(harness.DEVICE_KEYS["dev-a-in"], logs)
        self.assertNotIn(harness.ADMIN_TOKEN, logs)


class TestCapacity(unittest.TestCase):
    def setUp(self):
        self.redis = Redis()
        self.gw = Gateway(self.redis)

    def tearDown(self):
        self.gw.destroy()
        self.redis.destroy()

    def test_lot_full_but_passes_still_enter(self):
        for plate in ("浙A21001", "浙A21002"):
            self.assertEqual(self.gw.event("dev-b", ev("LOT-B", "in", "entry", plate, iso(NOW)))[1]["reason"], "entry")
        status, a = self.gw.event("dev-b", ev("LOT-B", "in", "entry", "浙A21003", iso(NOW)))
        self.assertEqual((a["decision"], a["reason"], a["session_id"]), ("hold", "lot_full", None))
        # A driver leaving makes room.
        self.gw.event("dev-b", ev("LOT-B", "out", "exit", "浙A21001", iso(NOW)))
        status, a = self.gw.event("dev-b", ev("LOT-B", "in", "entry", "浙A21003", iso(NOW)))
        self.assertEqual(a["reason"], "entry")


class TestResilience(unittest.TestCase):
    def setUp(self):
        self.redis = Redis()
        self.gw = Gateway(self.redis)

    def tearDown(self):
        self.gw.destroy()
        self.redis.destroy()

    def test_gateway_restart_keeps_sessions(self):
        a = self.gw.event("dev-a-in", ev("LOT-A", "in", "entry", "浙A31001", iso(NOW - H)))[1]
        self.assertEqual(self.gw.stop(), 0)
        self.gw.start()
        b = self.gw.event("dev-a-out", ev("LOT-A", "out", "exit", "浙A31001", iso(NOW)))[1]
        self.assertEqual((b["match"], b["session_id"]), ("exact", a["session_id"]))

    def test_redis_restart_keeps_sessions_and_outage_gives_503(self):
        a = self.gw.event("dev-a-in", ev("LOT-A", "in", "entry", "浙A31002", iso(NOW - H)))[1]
        self.redis.kill()
        harness.wait_for(lambda: self.gw.get("/readyz")[0] == 503, what="not ready")
        body = ev("LOT-A", "out", "exit", "浙A31002", iso(NOW))
        status, err = self.gw.event("dev-a-out", body)
        self.assertEqual(status, 503)
        self.assertEqual(err["error"], "unavailable")
        self.redis.start()  # its AOF is replayed
        self.gw.wait_ready(15)
        status, b = self.gw.event("dev-a-out", body)  # the same event, not remembered: applied now
        self.assertEqual(status, 200)
        self.assertEqual((b["match"], b["session_id"]), ("exact", a["session_id"]))

    def test_sighup_reload(self):
        self.gw.write_config(raw="{ broken")
        self.gw.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        self.assertIsNone(self.gw.proc.poll())
        self.assertIn("reload_refused", self.gw.logs())
        status, a = self.gw.event("dev-b", ev("LOT-B", "in", "entry", "浙A31003", iso(NOW)))
        self.assertEqual(a["reason"], "entry")
        # Capacity 1 now: the lot (holding one car) is full.
        self.gw.write_config({"lots.1.capacity": 1})
        self.gw.proc.send_signal(signal.SIGHUP)
        harness.wait_for(lambda: "reloaded" in self.gw.logs(), what="reload")
        status, a = self.gw.event("dev-b", ev("LOT-B", "in", "entry", "浙A31004", iso(NOW)))
        self.assertEqual(a["reason"], "lot_full")

    def test_sigterm_finishes_and_exits_cleanly(self):
        self.assertEqual(self.gw.stop(signal.SIGINT), 0)


class TestMigration(GatewayCase):
    def test_open_sessions_of_the_old_layout_move_into_buckets(self):
        # Before the buckets: one hash of text records and one fold hash (docs/redis.md).
        tver = self.redis.cmd("HKEYS", "pk:{LOT-A}:tariffs")[0]
        old = {}
        for i in range(3000):
            plate = "浙B%05d" % i
            fold = harness.fold_key(plate) if i < 3 else "*B%05d" % i
            old[str(900000 + i)] = "\x1f".join([plate, str(NOW - 3600), "in", "small", tver, "",
                                                 fold])
        self.gw.stop()
        flat = [x for kv in old.items() for x in kv]
        for i in range(0, len(flat), 1000):
            self.redis.cmd("HSET", "pk:{LOT-A}:open", *flat[i:i + 1000])
        self.redis.cmd("HSET", "pk:{LOT-A}:fold", "*B00001", "900001")
        self.gw.start()  # ready once every lot's sessions moved
        self.assertEqual(self.redis.cmd("EXISTS", "pk:{LOT-A}:open", "pk:{LOT-A}:fold"), 0)
        now = self.redis.open_sessions("LOT-A")
        self.assertEqual({k: v for k, v in now.items() if k in old}, old)
        a = self.exit("LOT-A", "浙B00001", NOW)
        self.assertEqual((a["decision"], a["match"], a["session_id"]),
                         ("hold", "exact", "LOT-A~900001"))


class TestBuckets(unittest.TestCase):
    """The bucketed layout of the scripts' prelude (docs/redis.md, "Open sessions, buckets"), run
    on the test Redis with the prelude the gateway embeds: many records, then every one found."""
    PRELUDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common", "lua",
                           "prelude.lua")

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        with open(cls.PRELUDE) as f:
            cls.prelude = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.redis.destroy()

    def run_lua(self, body, keys, *args):
        # As a function of the library does, call_begin hands the prelude KEYS and ARGV (the
        # globals, read before the prelude's locals of those names hide them).
        return self.redis.cmd("EVAL", "#!lua\nlocal keys_, args_ = KEYS, ARGV\n" + self.prelude +
                              "\ncall_begin(keys_, args_)\n" + body, str(len(keys)), *keys, *args)

    def buckets(self, pattern):
        keys = self.redis.cmd("KEYS", pattern)
        return {k: (self.redis.cmd("HLEN", k), self.redis.cmd("OBJECT", "ENCODING", k))
                for k in keys}

    def test_fold_index_splits_and_finds_every_plate(self):
        n = 3000
        self.run_lua("for i = 1, tonumber(ARGV[1]) do fold_add(lot_prefix(KEYS[1]), '*B' .. i, "
                     "tostring(i)) end fold_add(lot_prefix(KEYS[1]), '*B7', '99999')",
                     ["pk:{BK-F}:open"], n)
        b = self.buckets("pk:{BK-F}:fold:*")
        self.assertGreater(len(b), n // 100)  # it grew
        for k, (hlen, enc) in b.items():
            self.assertLessEqual(hlen, 128, k)
            self.assertEqual(enc, "listpack", k)
        missing = self.run_lua(
            "local bad = {} for i = 1, tonumber(ARGV[1]) do "
            "local s = fold_seqs(lot_prefix(KEYS[1]), '*B' .. i) "
            "if s[1] ~= tostring(i) then bad[#bad + 1] = i end end return bad",
            ["pk:{BK-F}:open"], n)
        self.assertEqual(missing, [])
        self.assertEqual(self.run_lua("return fold_seqs(lot_prefix(KEYS[1]), '*B7')",
                                      ["pk:{BK-F}:open"]), ["7", "99999"])
        self.run_lua("fold_remove(lot_prefix(KEYS[1]), '*B7', '7') "
                     "for i = 8, tonumber(ARGV[1]) do fold_remove(lot_prefix(KEYS[1]), '*B' .. i, "
                     "tostring(i)) end", ["pk:{BK-F}:open"], n)
        self.assertEqual(self.run_lua("return fold_seqs(lot_prefix(KEYS[1]), '*B7')",
                                      ["pk:{BK-F}:open"]), ["99999"])
        self.assertEqual(sum(h for h, _ in self.buckets("pk:{BK-F}:fold:*").values()), 7)

    def test_idempotency_records_split_expire_and_conflict(self):
        n = 2500
        day = "pk:{BK-I}:idem:20000"
        old = "pk:{BK-I}:idem:19999"
        digest = "local function F(i) return string.sub(redis.sha1hex('e' .. i), 1, 12) end "
        self.run_lua(digest + "for i = 1, tonumber(ARGV[1]) do idem_store(KEYS[1], F(i), "
                     "'hash' .. string.format('%04d', i % 10000), 'hold\\31x' .. i, 3600, nil) end",
                     [day], n)
        b = self.buckets(day + ":*")
        self.assertGreater(len(b), n // 100)
        for k, (hlen, enc) in b.items():
            self.assertLessEqual(hlen, 128, k)
            self.assertEqual(enc, "listpack", k)
            self.assertTrue(0 < self.redis.cmd("TTL", k) <= 3600, k)
        bad = self.run_lua(
            digest + "local bad = {} for i = 1, tonumber(ARGV[1]) do "
            "local r = idem_check(1, 2, F(i), 'hash' .. string.format('%04d', i % 10000), nil) "
            "if not r or r[1] ~= 'dup' or r[2] ~= 'hold\\31x' .. i then bad[#bad + 1] = i end "
            "end return bad", [old, day], n)
        self.assertEqual(bad, [])
        self.assertEqual(self.run_lua(digest + "return idem_check(1, 2, F(5), 'other!!!', nil)",
                                      [day, old]), ["conflict"])
        self.assertIsNone(self.run_lua(digest + "return idem_check(1, 1, F(5), 'hash0005', nil)",
                                       [old]))

    def test_entry_answer_is_rebuilt_byte_for_byte(self):
        # An opening's answer is kept as a reason byte and the number, and comes back whole.
        ans = "\x1f".join(["open", "pass", "", "BK-A~4242", "", "", "", "浙A12345 欢迎光临"])
        out = self.run_lua(
            "local ctx = {lot = 'BK-A', display = ARGV[2], reason = 'pass', seq = '4242'} "
            "idem_store(KEYS[1], '123456789012', 'bodyhash', ARGV[1], 3600, ctx) "
            "ctx.reason, ctx.seq = nil, nil "
            "return idem_check(1, 1, '123456789012', 'bodyhash', ctx)",
            ["pk:{BK-A}:idem:20000"], ans, "浙A12345 欢迎光临")
        self.assertEqual(out, ["dup", ans])
        raw = self.redis.cmd("HGETALL", "pk:{BK-A}:idem:20000:%d" % (
            int.from_bytes(b"123", "big") % 16), raw=True)
        self.assertEqual(raw[1], b"bodyhash\x024242")

    def test_open_records_round_trip(self):
        recs = {
            "1": "浙A12345\x1f1764200000\x1fin\x1fsmall\x1fv1\x1f\x1f*A123A5",
            "2": "沪B0D8Q1\x1f1764200001\x1fin\x1fnew_energy\x1fv2\x1fp\x1f*80D801",
            "70": "粤Z1234港\x1f1764200002\x1fE2\x1flarge\x1fv1\x1fn\x1f*21234港",
            "71": "WJ1234\x1f1764200003\x1fin\x1fsmall\x1fv1\x1fe\x1fW11234",  # no province
            "72": "浙A55555\x1f1764200004\x1fin\x1fsmall\x1fv1\x1f\x1fsomething else",
            "73": "浙A66666\x1f12\x1fin\x1fsmall\x1fv1\x1f\x1f*A66666",  # 1970: kept as text
            "74": "浙A77777\x1f01764200000\x1fin\x1fsmall\x1fv1\x1f\x1f*A77777",
        }
        args = [x for kv in recs.items() for x in kv]
        occ = self.run_lua("local P = lot_prefix(KEYS[1]) local n "
                           "for i = 1, #ARGV, 2 do n = open_put(P, ARGV[i], ARGV[i + 1]) end "
                           "return n", ["pk:{BK-O}:open"], *args)
        self.assertEqual(occ, len(recs))
        got = self.run_lua("local P = lot_prefix(KEYS[1]) local out = {} "
                           "for i = 1, #ARGV, 2 do out[#out + 1] = open_get(P, ARGV[i]) end "
                           "return out", ["pk:{BK-O}:open"], *args)
        self.assertEqual(got, list(recs.values()))
        self.assertEqual(self.redis.open_sessions("BK-O"), recs)  # the documented layout
        v = self.redis.cmd("HGET", "pk:{BK-O}:open:0", "1", raw=True)
        self.assertEqual(len(v), 8 + len("浙A12345".encode()))  # ts, 4 codes, the plate
        self.assertEqual(self.redis.cmd("HGET", "pk:{BK-O}:open:1", "9", raw=True)[:1], b"\x1f")
        self.run_lua("local P = lot_prefix(KEYS[1]) open_del(P, '2') open_del(P, '2')",
                     ["pk:{BK-O}:open"])
        self.assertEqual(int(self.redis.cmd("HGET", "pk:{BK-O}:meta", "occ")), len(recs) - 1)


if __name__ == "__main__":
    unittest.main()
