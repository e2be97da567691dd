"""Billing end to end: a real redis-server, the real gateway and billing binaries, the
stripe-stateful-mock peer (npm) behind the fault-injecting proxy, and billing's clock moved forward
through its clock file instead of waiting for days."""
import json
import os
import subprocess
import time
import unittest

import harness
from harness import Billing, FaultProxy, Gateway, Redis, StripeMock, ev, iso

H = 3600
DAY = 86400


class BillingCase(unittest.TestCase):
    OVERRIDES = {}  # a test class's own configuration, over the common one

    def setUp(self):
        self.redis = Redis()
        self.mock = StripeMock()
        self.proxy = FaultProxy(self.mock.port)
        overrides = {
            "providers.0.base_url": self.proxy.url,
            "providers.0.timeout_ms": 1000,
            "providers.0.connect_timeout_ms": 1000,
            "credit_policy": {"min_score": 600, "max_unpaid_bills": 5, "max_unpaid_amount": 100000,
                              "max_fee": 20000, "retry_minutes": [1, 2], "grace_hours": 72,
                              "default_after_days": 30, "score_paid_on_time": 1,
                              "score_paid_late": -10, "score_default": -100,
                              "first_default_free_months": 12, "suspend_when_overdue": True},
        }
        overrides.update(self.OVERRIDES)
        self.gw = Gateway(self.redis, overrides)
        self.billing = Billing(self.gw)
        self.offset = 0

    def tearDown(self):
        for c in (self.billing, self.gw, self.proxy, self.mock, self.redis):
            c.destroy()

    # ---- helpers ----
    def driver(self, token, plate):
        cus = self.mock.customer(token)
        status, d = self.gw.admin("POST", "/v1/drivers", {"plates": [plate],
                                                           "provider": "stripe-test",
                                                           "payment_ref": cus})
        self.assertEqual(status, 201, d)
        return d["id"], cus

    def stay(self, plate, hours=3, lot="LOT-A"):
        now = int(time.time())
        dev_in, dev_out = ("dev-a-in", "dev-a-out") if lot == "LOT-A" else ("dev-b", "dev-b")
        s, a = self.gw.event(dev_in, ev(lot, "in", "entry", plate, iso(now - hours * H)))
        self.assertEqual(s, 200, a)
        s, b = self.gw.event(dev_out, ev(lot, "out", "exit", plate, iso(now - 5)))
        self.assertEqual(s, 200, b)
        return b

    def bill(self, bill_id):
        status, b = self.gw.admin("GET", "/v1/bills/" + bill_id)
        self.assertEqual(status, 200, b)
        return b

    def wait_status(self, bill_id, statuses, timeout=15):
        statuses = (statuses,) if isinstance(statuses, str) else statuses
        harness.wait_for(lambda: self.bill(bill_id)["status"] in statuses, timeout,
                         "bill %s to become %s (is %s)" % (bill_id, statuses,
                                                            self.bill(bill_id)["status"]))
        return self.bill(bill_id)

    def advance(self, seconds):
        self.offset += seconds
        self.billing.set_clock(self.offset)

    def drv(self, driver_id):
        return self.gw.admin("GET", "/v1/drivers/" + driver_id)[1]

    def stream(self):
        """The settlement stream's entries left, and the entries read but not acknowledged."""
        return (self.redis.cmd("XLEN", "pk:{LOT-A}:bills"),
                self.redis.cmd("XPENDING", "pk:{LOT-A}:bills", "billing")[0])

    def copy(self, plate):
        """The plate index's copy of the driver's record, which exits read."""
        v = self.redis.cmd("HGET", "pk:plate:{%s}" % harness.fold_key(plate), plate)
        f = v.split("\x1f")
        return {"score": int(f[2]), "suspended": f[3] == "1", "unpaid_count": int(f[5]),
                "unpaid_amount": int(f[6])}


class TestSettlement(BillingCase):
    def test_three_drivers_through_the_credit_lifecycle(self):
        good, good_cus = self.driver("tok_visa", "浙A70001")
        bad, bad_cus = self.driver("tok_chargeCustomerFail", "浙A70002")
        err, err_cus = self.driver("tok_chargeDeclinedProcessingError", "浙A70003")
        b_good = self.stay("浙A70001")
        b_bad = self.stay("浙A70002")
        b_err = self.stay("浙A70003")
        for b in (b_good, b_bad, b_err):
            self.assertEqual(b["reason"], "credit_ok")

        # The good card pays within seconds: one charge, of the bill's amount, keyed by the bill.
        paid = self.wait_status(b_good["bill_id"], "paid")
        charges = self.mock.charges(good)
        self.assertEqual(len(charges), 1)
        self.assertEqual(charges[0]["amount"], b_good["amount"])
        self.assertEqual(charges[0]["id"], paid["provider_ref"])
        harness.wait_for(lambda: self.drv(good)["unpaid_count"] == 0)
        self.assertEqual(self.drv(good)["score"], 701)
        harness.wait_for(lambda: self.copy("浙A70001")["unpaid_count"] == 0)

        # The others fail their first attempt and are retried by the schedule (1 then 2 minutes).
        for b in (b_bad, b_err):
            bb = self.wait_status(b["bill_id"], "retry_scheduled")
            self.assertEqual(bb["attempts"], "1")
        self.advance(61)
        for b in (b_bad, b_err):
            harness.wait_for(lambda: self.bill(b["bill_id"])["attempts"] == "2")
            self.wait_status(b["bill_id"], "retry_scheduled")
        self.advance(121)
        for b in (b_bad, b_err):
            bb = self.wait_status(b["bill_id"], "failed")
            self.assertEqual(bb["attempts"], "3")
            causes = [h["to"] for h in bb["history"]]
            self.assertEqual(causes.count("charging"), 3)
        self.assertEqual(len(self.mock.charges(bad)), 3)  # each attempt a declined charge

        # After the grace period: overdue, and the drivers are suspended.
        self.advance(72 * H)
        for b, d, plate in ((b_bad, bad, "浙A70002"), (b_err, err, "浙A70003")):
            self.wait_status(b["bill_id"], "overdue")
            harness.wait_for(lambda: self.copy(plate)["suspended"], what="suspension of " + plate)
            self.assertTrue(self.drv(d)["suspended"])
        # A suspended driver's next exit is held with `suspended`.
        self.assertEqual(self.stay("浙A70002")["reason"], "suspended")

        # After 30 days: defaulted.  The first default in 12 months is a warning: no score lost.
        self.advance(30 * DAY)
        self.wait_status(b_bad["bill_id"], "defaulted")
        harness.wait_for(lambda: any(h["cause"] == "default_warning"
                                     for h in self.history(bad)), what="default warning")
        self.assertEqual(self.drv(bad)["score"], 700)

        # Paying restores: the driver fixes the card, staff ask for a charge now.
        status, card = self.mock.call("POST", "/v1/customers/%s/sources" % bad_cus,
                                      {"source": "tok_visa"})
        self.assertEqual(status, 200, card)
        status, _ = self.mock.call("POST", "/v1/customers/" + bad_cus,
                                   {"default_source": card["id"]})
        self.assertEqual(status, 200)
        status, out = self.gw.admin("POST", "/v1/bills/%s/charge" % b_bad["bill_id"])
        self.assertEqual(status, 202, out)
        self.wait_status(b_bad["bill_id"], "paid_late")
        harness.wait_for(lambda: not self.copy("浙A70002")["suspended"], what="restored")
        d = self.drv(bad)
        self.assertFalse(d["suspended"])
        self.assertEqual(d["score"], 690)  # paid late: -10
        # The held session of the suspended exit is still open; the next stay is credit_ok again.
        self.assertEqual(self.stay("浙A70002")["reason"], "credit_ok")

    def history(self, driver):
        return [json.loads(x) for x in
                self.redis.cmd("LRANGE", "pk:drv:{%s}:history" % driver, "0", "-1")]

    def test_second_default_costs_score(self):
        bad, _ = self.driver("tok_chargeCustomerFail", "浙A70010")
        first = self.stay("浙A70010", hours=2)
        second = self.stay("浙A70010", hours=1)
        for b in (first, second):
            self.assertEqual(b["reason"], "credit_ok")
        self.advance(31 * DAY)
        for b in (first, second):
            self.wait_status(b["bill_id"], "defaulted", timeout=20)
        harness.wait_for(lambda: len([h for h in self.history(bad)
                                      if h["cause"] in ("default", "default_warning")]) == 2)
        causes = sorted(h["cause"] for h in self.history(bad)
                        if h["cause"] in ("default", "default_warning"))
        self.assertEqual(causes, ["default", "default_warning"])
        self.assertEqual(self.drv(bad)["score"], 600)

    def test_provider_faults_are_retried_with_the_same_key(self):
        drv, _ = self.driver("tok_visa", "浙A70020")
        self.proxy.plan([{"status": 429}, {"status": 500}, {"status": 503}, {"hang": True},
                         {"delay_ms": 1500}])
        b = self.stay("浙A70020")
        paid = self.wait_status(b["bill_id"], "paid", timeout=40)
        # One charge at the mock although the request went out six times, always with one key.
        charges = self.mock.charges(drv)
        self.assertEqual(len(charges), 1)
        self.assertEqual(charges[0]["id"], paid["provider_ref"])
        reqs = [r for r in self.proxy.state()["requests"] if r["path"] == "/v1/charges"]
        self.assertEqual(len(reqs), 6)
        self.assertEqual({r["idempotency_key"] for r in reqs}, {b["bill_id"]})
        # Faults did not use up the driver's attempts.
        self.assertEqual(paid["attempts"], "1")

    def test_reminders_reach_the_outbox(self):
        self.driver("tok_chargeCustomerFail", "浙A70030")
        b = self.stay("浙A70030")
        self.wait_status(b["bill_id"], "retry_scheduled")
        out = self.redis.cmd("XRANGE", "pk:{LOT-A}:outbox", "-", "+")
        kinds = [dict(zip(e[1][::2], e[1][1::2]))["kind"] for e in out
                 if b["bill_id"] in e[1]]
        self.assertIn("bill_created", kinds)
        self.assertIn("payment_failed", kinds)


class TestCrashes(BillingCase):
    def test_kill_and_two_processes_never_charge_twice(self):
        drivers = []
        for i in range(12):
            plate = "浙A7%04d" % (100 + i)
            drivers.append((plate,) + self.driver("tok_visa", plate))
        # Slow answers so that kills land while charges are in flight.
        self.proxy.plan([{"delay_ms": 300}] * 40)
        second = Billing(self.gw, "billing2")
        try:
            bills = [self.stay(plate, hours=2)["bill_id"] for plate, _, _ in drivers]
            time.sleep(0.4)
            self.billing.kill()
            time.sleep(0.3)
            self.billing.start()
            time.sleep(0.3)
            second.kill()
            second.start()
            for bill in bills:
                self.wait_status(bill, "paid", timeout=120)
        finally:
            second.destroy()
        total = 0
        for plate, driver, cus in drivers:
            charges = self.mock.charges(driver)
            self.assertEqual(len(charges), 1, plate)
            total += 1
        self.assertEqual(total, len(bills))
        # The entries the killed processes read and left are reclaimed (after 10 s idle), then
        # acknowledged and deleted like the others: the stream ends empty.
        harness.wait_for(lambda: self.stream() == (0, 0), 40, "the stream to be emptied (%s)"
                         % (self.stream(),))

    def test_stream_trimmed_and_entries_of_a_crash_reclaimed(self):
        drv, _ = self.driver("tok_visa", "浙A70200")
        first = self.stay("浙A70200", hours=2)["bill_id"]
        self.wait_status(first, "paid")
        # Settled and acknowledged: the entry is deleted, not kept for ever.
        harness.wait_for(lambda: self.stream() == (0, 0), what="the entry deleted")

        # A process reads two entries and dies before doing anything with them.
        self.billing.stop()
        drivers = [self.driver("tok_visa", p)[0] for p in ("浙A70201", "浙A70202")]
        bills = [self.stay(p)["bill_id"] for p in ("浙A70201", "浙A70202")]
        read = self.redis.cmd("XREADGROUP", "GROUP", "billing", "crashed-1", "COUNT", "10",
                              "STREAMS", "pk:{LOT-A}:bills", ">")
        self.assertEqual(len(read[0][1]), 2)
        self.assertEqual(self.stream(), (2, 2))
        # Another process takes them over once idle for 10 s, settles them once, and deletes them.
        self.billing.start()
        for bill in bills:
            self.wait_status(bill, "paid", timeout=40)
        for d in drivers:
            self.assertEqual(len(self.mock.charges(d)), 1)
        self.assertEqual(len(self.mock.charges(drv)), 1)
        harness.wait_for(lambda: self.stream() == (0, 0), what="the entries deleted")


class TestSlots(BillingCase):
    """billing keeps billing.max_in_flight charges going behind a slow provider, starting the next
    due bill as a slot frees, not a tick's batch at a time."""
    IN_FLIGHT = 48  # above the 32 bills billing reads or claims at a time
    OVERRIDES = {
        "billing": {"max_in_flight": IN_FLIGHT},
        "providers.0.timeout_ms": 8000,
        "credit_policy": {"min_score": 600, "max_unpaid_bills": 500, "max_unpaid_amount": 10 ** 9,
                          "max_fee": 20000},
    }

    def test_slots_stay_full_behind_a_slow_provider(self):
        n = 90
        self.billing.stop()
        drv, _ = self.driver("tok_visa", "浙A70300")
        bills = [self.stay("浙A70300", hours=1)["bill_id"] for _ in range(n)]
        self.assertEqual(len(set(bills)), n)
        # Every charge takes 600 ms more; billing's tick is 5 s, far longer than a charge.
        self.proxy.plan([{"delay_ms": 600}] * (n + 20))
        self.billing.destroy()
        self.billing = Billing(self.gw, tick_ms=5000)
        for bill in bills:
            self.wait_status(bill, "paid", timeout=60)
        state = self.proxy.state()
        # All the slots were used at once, and never more.
        self.assertEqual(state["max_in_flight"], self.IN_FLIGHT, state["max_in_flight"])
        charges = self.mock.charges(drv)
        self.assertEqual(sorted(c["metadata"]["bill"] for c in charges), sorted(bills))
        self.assertEqual(self.stream(), (0, 0))


    def test_stop_while_bills_wait_for_slots(self):
        """SIGTERM with every slot busy and bills prepared ahead: billing finishes the requests in
        flight and exits; the bills it had prepared but not sent come back when their leases end,
        and every bill is charged once."""
        n = 80
        self.billing.stop()
        drv, _ = self.driver("tok_visa", "浙A70310")
        bills = [self.stay("浙A70310", hours=1)["bill_id"] for _ in range(n)]
        self.proxy.plan([{"delay_ms": 1000}] * (n + 20))
        self.billing.destroy()
        self.billing = Billing(self.gw)
        harness.wait_for(lambda: self.proxy.state()["in_flight"] == self.IN_FLIGHT, 20,
                         "every slot busy")
        self.assertEqual(self.billing.stop(), 0)
        self.assertEqual(self.proxy.state()["in_flight"], 0)
        self.billing.destroy()
        self.billing = Billing(self.gw)
        for bill in bills:
            self.wait_status(bill, "paid", timeout=60)
        charges = self.mock.charges(drv)
        self.assertEqual(sorted(c["metadata"]["bill"] for c in charges), sorted(bills))


class TestLotsShare(BillingCase):
    """Few slots, two lots with bills waiting: the slots go to both lots by turns, not to one lot
    until its due bills run out."""
    OVERRIDES = dict(TestSlots.OVERRIDES, billing={"max_in_flight": 4})

    def test_slots_are_shared_between_lots(self):
        self.billing.stop()
        a, _ = self.driver("tok_visa", "浙A70400")
        b, _ = self.driver("tok_visa", "浙B70401")
        bills_a = [self.stay("浙A70400", hours=1)["bill_id"] for _ in range(30)]
        bills_b = [self.stay("浙B70401", hours=1, lot="LOT-B")["bill_id"] for _ in range(10)]
        self.assertTrue(all(x.startswith("LOT-B~") for x in bills_b), bills_b)
        self.proxy.plan([{"delay_ms": 150}] * 60)
        self.billing.destroy()
        self.billing = Billing(self.gw, tick_ms=5000)
        for bill in bills_a + bills_b:
            self.wait_status(bill, "paid", timeout=60)
        keys = [r["idempotency_key"] for r in self.proxy.state()["requests"]
                if r["path"] == "/v1/charges"]
        self.assertEqual(sorted(keys), sorted(bills_a + bills_b))
        # Shared by turns (LOT-C, without bills, drops out), LOT-B's 10 bills go among the first
        # 20 or so requests, about every other one; a lot kept waiting while the other has bills
        # due would have few or none among the first 16.
        first = keys[:16]
        self.assertGreaterEqual(sum(1 for k in first if k in bills_b), 4,
                                ["B" if k in bills_b else "a" for k in keys])
        self.assertEqual(self.proxy.state()["max_in_flight"], 4)


if __name__ == "__main__":
    unittest.main()


WEBHOOK_SECRET = "whsec_integration_0123456789abcdef"


def stripe_signature(payload, secret=WEBHOOK_SECRET, timestamp=None):
    """Stripe-Signature made by Stripe's own Node library (npm `stripe`), not by us."""
    script = ("const s = require('stripe')('sk_test_x');"
              "process.stdout.write(s.webhooks.generateTestHeaderString("
              "{payload: process.argv[1], secret: process.argv[2], timestamp: +process.argv[3]}))")
    out = subprocess.run(["node", "-e", script, payload, secret,
                          str(timestamp if timestamp is not None else int(time.time()))],
                         capture_output=True, cwd=harness.ROOT, timeout=20, check=True)
    return out.stdout.decode()


class TestNotifications(BillingCase):
    def setUp(self):
        super().setUp()
        with open(os.path.join(self.gw.dir, "secrets", "whsec"), "w") as f:
            f.write(WEBHOOK_SECRET)
        self.gw.write_config({
            "providers.0.base_url": self.proxy.url,
            "providers.0.webhook_secret": {"file": "secrets/whsec"},
            "credit_policy": {"retry_minutes": [60]}})
        self.gw.stop()
        self.gw.start()

    def event(self, bill, evt_id, kind="charge.succeeded", ref="ch_notified"):
        return json.dumps({"id": evt_id, "object": "event", "type": kind, "data": {"object": {
            "id": ref, "object": "charge", "amount": 1000, "status": "succeeded",
            "metadata": {"bill": bill}}}})

    def post(self, payload, sig):
        status, data, _ = self.gw.request("POST", "/v1/notify/stripe-test", payload.encode(),
                                          {"Stripe-Signature": sig,
                                           "Content-Type": "application/json"})
        return status, json.loads(data)

    def test_verified_once_and_applied(self):
        self.driver("tok_chargeCustomerFail", "浙A70040")
        b = self.stay("浙A70040")
        self.wait_status(b["bill_id"], "retry_scheduled")
        payload = self.event(b["bill_id"], "evt_1")
        status, out = self.post(payload, stripe_signature(payload))
        self.assertEqual((status, out["duplicate"]), (200, False))
        # Delivered twice: acknowledged, queued once.
        status, out = self.post(payload, stripe_signature(payload))
        self.assertEqual((status, out["duplicate"]), (200, True))
        self.assertEqual(len(self.redis.cmd("XRANGE", "pk:{LOT-A}:provider", "-", "+")), 1)
        paid = self.wait_status(b["bill_id"], "paid")
        self.assertEqual(paid["provider_ref"], "ch_notified")

    def test_forged_stale_and_tampered_are_refused(self):
        payload = self.event("LOT-A~1~b", "evt_2")
        now = int(time.time())
        cases = [
            (payload, stripe_signature(payload, secret="whsec_someone_else")),
            (payload, stripe_signature(payload, timestamp=now - 400)),
            (payload.replace("1000", "1"), stripe_signature(payload)),
            (payload, "t=%d" % now),
            (payload, "v1=" + "0" * 64),
        ]
        for body, sig in cases:
            status, out = self.post(body, sig)
            self.assertEqual(status, 400, (sig, out))
            self.assertEqual(out["error"], "bad_request")
        self.assertEqual(self.redis.cmd("XLEN", "pk:{LOT-A}:provider"), 0)
        # Several v1 values (a rotated secret): one valid is enough.
        good = stripe_signature(payload)
        t, v1 = good.split(",")
        status, out = self.post(payload, "%s,v1=%s,%s" % (t, "ab" * 32, v1))
        self.assertEqual(status, 200, out)
        # A bill of nobody's lot: acknowledged, dropped.
        other = self.event("NOWHERE~1~b", "evt_3")
        status, out = self.post(other, stripe_signature(other))
        self.assertEqual((status, out.get("ignored")), (200, "no bill of ours"))


class TestRefundsAndWaivers(BillingCase):
    def test_refund_in_part_then_in_full(self):
        drv, _ = self.driver("tok_visa", "浙A70050")
        b = self.stay("浙A70050", hours=4)
        self.wait_status(b["bill_id"], "paid")
        status, out = self.gw.admin("POST", "/v1/bills/%s/refund" % b["bill_id"],
                                    {"amount": 100, "reason": "barrier fault"})
        self.assertEqual(status, 202, out)
        r = self.wait_status(b["bill_id"], "refunded")
        self.assertEqual(r["refunded_amount"], "100")
        status, out = self.gw.admin("POST", "/v1/bills/%s/refund" % b["bill_id"],
                                    {"amount": b["amount"], "reason": "too much"})
        self.assertEqual(status, 400)
        status, out = self.gw.admin("POST", "/v1/bills/%s/refund" % b["bill_id"],
                                    {"reason": "the rest"})
        self.assertEqual(status, 202, out)
        harness.wait_for(lambda: self.bill(b["bill_id"])["refunded_amount"] == str(b["amount"]))
        charge = self.mock.charges(drv)[0]
        status, c = self.mock.call("GET", "/v1/charges/" + charge["id"])
        self.assertEqual(c["amount_refunded"], b["amount"])
        status, out = self.gw.admin("POST", "/v1/bills/%s/refund" % b["bill_id"], {"reason": "x"})
        self.assertEqual(status, 400)  # nothing left

    def test_waive_restores_the_driver(self):
        drv, _ = self.driver("tok_chargeCustomerFail", "浙A70060")
        b = self.stay("浙A70060")
        self.wait_status(b["bill_id"], "retry_scheduled")
        self.advance(73 * H)
        self.wait_status(b["bill_id"], "overdue")
        harness.wait_for(lambda: self.drv(drv)["suspended"], what="suspension")
        status, out = self.gw.admin("POST", "/v1/bills/%s/waive" % b["bill_id"],
                                    {"reason": "camera misread the plate"})
        self.assertEqual(status, 200, out)
        harness.wait_for(lambda: not self.drv(drv)["suspended"], what="restored")
        d = self.drv(drv)
        self.assertEqual((d["unpaid_count"], d["score"]), (0, 700))
        self.assertEqual(self.bill(b["bill_id"])["status"], "waived")
        status, _ = self.gw.admin("POST", "/v1/bills/%s/waive" % b["bill_id"], {"reason": "again"})
        self.assertEqual(status, 409)


class TestReminderWebhook(BillingCase):
    def setUp(self):
        super().setUp()
        import http.server
        import socketserver
        import threading
        received = self.received = []
        fail = self.fail_next = [2]  # the first two deliveries get a 500

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n))
                if fail[0] > 0:
                    fail[0] -= 1
                    self.send_response(500)
                else:
                    received.append((self.headers.get("Idempotency-Key"), body))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.receiver = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.receiver.serve_forever, daemon=True).start()
        self.billing.destroy()
        self.gw.write_config({
            "providers.0.base_url": self.proxy.url,
            "credit_policy": {"retry_minutes": [60],
                              "reminder_webhook": "http://127.0.0.1:%d/notify" %
                                                  self.receiver.server_address[1]}})
        self.billing = Billing(self.gw)

    def tearDown(self):
        self.receiver.shutdown()
        self.receiver.server_close()
        super().tearDown()

    def test_delivered_after_failures_once_each(self):
        self.driver("tok_visa", "浙A70070")
        b = self.stay("浙A70070")
        self.wait_status(b["bill_id"], "paid")
        # bill_created and paid, though the first two deliveries failed (sent again later).
        harness.wait_for(lambda: {r[1]["kind"] for r in self.received} >= {"bill_created", "paid"},
                         timeout=40, what="reminders delivered")
        ours = [r for r in self.received if r[1].get("bill") == b["bill_id"]]
        keys = [r[0] for r in ours]
        self.assertEqual(len(keys), len(set(keys)))  # each delivered once
        self.assertTrue(all(k and k.startswith("LOT-A-") for k in keys))
        created = [r[1] for r in ours if r[1]["kind"] == "bill_created"][0]
        self.assertEqual(created["amount"], b["amount"])
        self.assertEqual(created["plate"], "浙A70070")
