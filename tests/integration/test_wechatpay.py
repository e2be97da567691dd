"""WeChat Pay's vehicle parking service end to end: a real redis-server (a cluster node owning every
slot, so a script touching two slots fails), the real gateway and billing binaries, and
tests/peers/wechatpay-server.js, a stateful stand-in for WeChat Pay whose every signature,
verification and encryption is done by the npm package wechatpay-axios-plugin.  Billing's clock is
moved through its clock file where the tests wait for queries and retries."""
import json
import time
import unittest

import harness
from harness import Billing, Gateway, Redis, WeChatPeer, ev, iso

H = 3600


class WeChatCase(unittest.TestCase):
    def setUp(self):
        self.redis = Redis()
        self.peer = WeChatPeer()
        port = harness.free_port()
        self.notify_url = "http://127.0.0.1:%d/v1/notify/wx-test" % port
        self.gw = Gateway(self.redis, {
            "gateway.listen": "127.0.0.1:%d" % port,
            "providers": [
                {"id": "stripe-test", "kind": "stripe", "base_url": "http://127.0.0.1:9",
                 "secret_key": {"file": "secrets/stripe"}},
                self.peer.provider(self.notify_url)],
            "credit_policy": {"min_score": 600, "max_unpaid_bills": 5, "max_unpaid_amount": 100000,
                              "max_fee": 20000, "retry_minutes": [1], "grace_hours": 72,
                              "default_after_days": 30, "score_paid_on_time": 1},
        }, files=self.peer.secret_files())
        self.billing = Billing(self.gw)
        self.offset = 0

    def tearDown(self):
        for c in (self.billing, self.gw, self.peer, self.redis):
            c.destroy()

    # ---- helpers ----
    def driver(self, plate):
        status, d = self.gw.admin("POST", "/v1/drivers", {
            "plates": [plate], "provider": "wx-test", "payment_ref": "oTestOpenid0123456789"})
        self.assertEqual(status, 201, d)
        return d["id"]

    def enter(self, plate, hours=3, lot="LOT-A", device="dev-a-in"):
        s, a = self.gw.event(device, ev(lot, "in", "entry", plate, iso(int(time.time()) - hours * H)))
        self.assertEqual((s, a["decision"]), (200, "open"), a)
        return a["session_id"]

    def leave(self, plate, lot="LOT-A", device="dev-a-out"):
        s, b = self.gw.event(device, ev(lot, "out", "exit", plate, iso(int(time.time()) - 5)))
        self.assertEqual(s, 200, b)
        return b

    @staticmethod
    def numbers(session):
        lot, n = session.split("~")
        return "%s*%s" % (lot, n), "%s*%s*b" % (lot, n)

    def registered(self, session):
        """Waits for the parking of a session at the peer and in the lot's pk:{L}:wx."""
        lot, n = session.split("~")
        no, _ = self.numbers(session)
        harness.wait_for(lambda: self.redis.cmd("HGET", "pk:{%s}:wx" % lot, "s:" + n) is not None,
                         what="parking of " + session)
        self.assertEqual(self.redis.cmd("HGET", "pk:{%s}:wx" % lot, "o:" + no), n)
        parking = [p for p in self.peer.parkings() if p["request"]["out_parking_no"] == no]
        self.assertEqual(len(parking), 1)
        return parking[0]

    def eligibility(self, plate):
        """The plate copy's eligibility, which the gateway's exit decision reads."""
        v = self.redis.cmd("HGET", "pk:plate:{%s}" % harness.fold_key(plate), plate)
        return v.split("\x1f")[4]

    def wait_eligibility(self, plate, value):
        harness.wait_for(lambda: self.eligibility(plate) == value, 15,
                         "eligibility %s of %s (is %s)" % (value, plate, self.eligibility(plate)))

    def bill(self, bill_id):
        status, b = self.gw.admin("GET", "/v1/bills/" + bill_id)
        self.assertEqual(status, 200, b)
        return b

    def wait_status(self, bill_id, statuses, timeout=20):
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

    def deductions(self, plate):
        return self.peer.deductions(plate)["deductions"]

    def notify(self, body, headers):
        status, data, _ = self.gw.request("POST", "/v1/notify/wx-test", body, headers)
        return status, json.loads(data)

    def provider_events(self, lot="LOT-A"):
        out = self.redis.cmd("XRANGE", "pk:{%s}:provider" % lot, "-", "+")
        return [dict(zip(e[1][::2], e[1][1::2])) for e in out]


class TestEntryAndDeduction(WeChatCase):
    def test_entry_registers_the_parking_and_the_exit_is_paid_by_notification(self):
        drv = self.driver("浙A71001")
        session = self.enter("浙A71001")
        parking = self.registered(session)
        self.assertEqual(parking["request"]["plate_number"], "浙A71001")
        self.assertEqual(parking["request"]["notify_url"], self.notify_url)
        self.assertEqual(parking["state"], "NORMAL")
        self.assertEqual(self.eligibility("浙A71001"), "NORMAL")
        # Applied by the registration: the driver's record holds the verdict's time.
        self.assertIsNotNone(self.redis.cmd("HGET", "pk:drv:{%s}" % drv, "eligibility_at"))

        b = self.leave("浙A71001")
        self.assertEqual((b["decision"], b["reason"]), ("open", "credit_ok"))
        paid = self.wait_status(b["bill_id"], "paid")
        transitions = [h["to"] for h in paid["history"]]
        self.assertIn("accepted", transitions)
        self.assertLess(transitions.index("accepted"), transitions.index("paid"))

        no, trade_no = self.numbers(session)
        ds = self.deductions("浙A71001")
        self.assertEqual(len(ds), 1)
        d = ds[0]
        self.assertEqual(d["out_trade_no"], trade_no)
        self.assertEqual(d["requests"], 1)
        self.assertEqual(d["amount_total"], b["amount"])
        self.assertEqual(d["parking_id"], parking["response"]["id"])
        self.assertEqual(d["params"]["attach"], b["bill_id"])
        self.assertEqual(d["params"]["notify_url"], self.notify_url)
        self.assertEqual(d["trade_state"], "SUCCESS")
        status, tx = self.peer.call("GET", "/test/notifications")
        tx_ids = [n["plaintext"].get("transaction_id") for n in tx
                  if n["event_type"] == "TRANSACTION.SUCCESS"]
        self.assertIn(paid["provider_ref"], tx_ids)
        harness.wait_for(lambda: self.drv(drv)["unpaid_count"] == 0, what="driver settled")
        self.assertEqual(self.drv(drv)["score"], 701)

    def test_blocked_at_entry_holds_the_exit(self):
        drv = self.driver("浙A71002")
        self.peer.control("POST", "/test/plates", {"plate_number": "浙A71002",
                                                   "parking_state": "BLOCKED",
                                                   "block_reason": "OVERDUE"})
        session = self.enter("浙A71002")
        self.assertEqual(self.registered(session)["state"], "BLOCKED")
        self.wait_eligibility("浙A71002", "BLOCKED:OVERDUE")
        b = self.leave("浙A71002")
        self.assertEqual((b["decision"], b["reason"]), ("hold", "provider_blocked"))
        self.assertEqual(self.deductions("浙A71002"), [])
        # Enrolled with another provider, the driver no longer carries WeChat's verdict.
        status, d = self.gw.admin("POST", "/v1/drivers", {"id": drv, "plates": ["浙A71002"],
                                                          "provider": "stripe-test",
                                                          "payment_ref": "cus_x"})
        self.assertEqual(status, 201, d)
        self.wait_eligibility("浙A71002", "NORMAL")

    def test_entrance_state_change_blocks_and_restores(self):
        drv = self.driver("浙A71003")
        session = self.enter("浙A71003")
        self.registered(session)
        self.wait_eligibility("浙A71003", "NORMAL")
        no, _ = self.numbers(session)
        self.peer.control("POST", "/test/entrance-state-change",
                          {"out_parking_no": no, "parking_state": "BLOCKED",
                           "blocked_state_description": "PAUSE"})
        self.wait_eligibility("浙A71003", "BLOCKED:PAUSE")
        self.assertEqual(self.drv(drv)["eligibility"], "BLOCKED:PAUSE")
        self.peer.control("POST", "/test/entrance-state-change",
                          {"out_parking_no": no, "parking_state": "NORMAL"})
        self.wait_eligibility("浙A71003", "NORMAL")
        events = [e for e in self.provider_events() if e["type"] == "parking.state"]
        self.assertEqual([e["state"] for e in events], ["BLOCKED", "NORMAL"])
        self.assertEqual({e["session"] for e in events}, {session})
        b = self.leave("浙A71003")
        self.assertEqual(b["reason"], "credit_ok")

    def test_pay_fail_is_declined_and_retried_with_a_new_number(self):
        self.driver("浙A71004")
        self.peer.control("POST", "/test/plates", {"plate_number": "浙A71004",
                                                   "payment": "PAY_FAIL"})
        session = self.enter("浙A71004")
        self.registered(session)
        b = self.leave("浙A71004")
        self.assertEqual(b["reason"], "credit_ok")
        bb = self.wait_status(b["bill_id"], "retry_scheduled")
        self.assertEqual(bb["last_decline"], "PAY_FAIL")
        self.peer.control("POST", "/test/plates", {"plate_number": "浙A71004",
                                                   "payment": "SUCCESS"})
        self.advance(61)
        paid = self.wait_status(b["bill_id"], "paid")
        self.assertEqual(paid["attempts"], "2")
        _, first = self.numbers(session)
        ds = self.deductions("浙A71004")
        self.assertEqual([d["out_trade_no"] for d in ds], [first, first + "2"])
        self.assertEqual([d["trade_state"] for d in ds], ["PAY_FAIL", "SUCCESS"])
        self.assertEqual({d["params"]["attach"] for d in ds}, {b["bill_id"]})
        self.assertEqual(len({d["parking_id"] for d in ds}), 1)
        self.assertEqual(self.peer.deductions()["conflicts"], [])

    def test_lost_answers_are_retried_with_the_same_number_and_body(self):
        # The deduction is processed but its answer lost, once by a hang (billing times out) and
        # once by a 500; the result notification comes late, so the retry must happen first.
        self.peer.control("POST", "/test/config", {"notify_delay_ms": 4000})
        for plate, fault in (("浙A71005", "hang"), ("浙A71006", "500")):
            self.driver(plate)
            session = self.enter(plate)
            self.registered(session)
            self.peer.control("POST", "/test/faults", {
                "mode": fault, "count": 1, "when": "after",
                "path_prefix": "/v3/vehicle/transactions/parking"})
            b = self.leave(plate)
            self.assertEqual(b["reason"], "credit_ok")
            paid = self.wait_status(b["bill_id"], "paid", timeout=30)
            self.assertEqual(paid["attempts"], "1")
            ds = self.deductions(plate)
            self.assertEqual(len(ds), 1, plate)
            self.assertEqual(ds[0]["out_trade_no"], self.numbers(session)[1])
            self.assertGreaterEqual(ds[0]["requests"], 2, plate)
            causes = [h["cause"] for h in paid["history"]]
            self.assertIn("provider unavailable, retrying", causes)
        # Identical parameters every time: the peer saw no re-use of a number with others.
        self.assertEqual(self.peer.deductions()["conflicts"], [])

    def test_billing_killed_mid_deduction_retries_the_same_attempt(self):
        # The deduction reaches WeChat, then billing dies before any answer: once its lease runs
        # out the bill is taken again as the same attempt, so the same number and body.
        self.peer.control("POST", "/test/config", {"notify_delay_ms": 600000})
        self.driver("浙A71008")
        session = self.enter("浙A71008")
        self.registered(session)
        self.peer.control("POST", "/test/faults", {
            "mode": "hang", "count": 1, "when": "after", "hang_ms": 60000,
            "path_prefix": "/v3/vehicle/transactions/parking"})
        b = self.leave("浙A71008")
        harness.wait_for(lambda: len(self.deductions("浙A71008")) == 1, what="the deduction")
        self.billing.kill()
        self.billing.start()
        self.advance(60)  # past the lease
        self.wait_status(b["bill_id"], "accepted")
        _, trade_no = self.numbers(session)
        self.peer.control("POST", "/test/settle", {"out_trade_no": trade_no})
        paid = self.wait_status(b["bill_id"], "paid")
        self.assertEqual(paid["attempts"], "1")
        ds = self.deductions("浙A71008")
        self.assertEqual(len(ds), 1)
        self.assertEqual((ds[0]["out_trade_no"], ds[0]["requests"]), (trade_no, 2))
        self.assertEqual(self.peer.deductions()["conflicts"], [])
        self.assertIn("attempt 1 taken again", [h["cause"] for h in paid["history"]])

    def test_exit_without_entry_registers_the_parking_late(self):
        self.driver("浙A71007")
        b = self.leave("浙A71007", lot="LOT-B", device="dev-b")
        self.assertEqual((b["decision"], b["reason"]), ("open", "credit_ok"))
        self.wait_status(b["bill_id"], "paid")
        session = b["session_id"]
        parking = self.registered(session)
        self.assertEqual(parking["request"]["plate_number"], "浙A71007")
        ds = self.deductions("浙A71007")
        self.assertEqual(len(ds), 1)
        self.assertEqual(ds[0]["parking_id"], parking["response"]["id"])
        self.assertEqual(ds[0]["amount_total"], 2000)


class TestRefunds(WeChatCase):
    def test_refund_in_part_then_the_rest_each_number_once(self):
        """Staff refund a paid WeChat bill in part, then the rest with the answer lost once: the
        peer (its refund API) holds exactly two refunds, one per number, adding up to the bill."""
        self.driver("浙A71090")
        session = self.enter("浙A71090", hours=5)
        self.registered(session)
        b = self.leave("浙A71090")
        paid = self.wait_status(b["bill_id"], "paid")
        self.assertGreater(b["amount"], 100)
        status, out = self.gw.admin("POST", "/v1/bills/%s/refund" % b["bill_id"],
                                    {"amount": 100, "reason": "barrier fault"})
        self.assertEqual(status, 202, out)
        # WeChat answers PROCESSING first; billing asks again with the same number 5 s later.
        harness.wait_for(lambda: len(self.peer.control("GET", "/test/refunds")["refunds"]) == 1,
                         what="the first refund at the peer")
        self.advance(10)
        r = self.wait_status(b["bill_id"], "refunded")
        self.assertEqual(r["refunded_amount"], "100")

        # The rest, with the first answer lost after WeChat processed it.
        self.peer.control("POST", "/test/faults", {
            "mode": "500", "count": 1, "when": "after", "path_prefix": "/v3/refund/"})
        status, out = self.gw.admin("POST", "/v1/bills/%s/refund" % b["bill_id"],
                                    {"reason": "the whole fee was wrong"})
        self.assertEqual(status, 202, out)
        for _ in range(6):
            if self.bill(b["bill_id"])["refunded_amount"] == str(b["amount"]):
                break
            self.advance(10)
            time.sleep(0.5)
        r = self.wait_status(b["bill_id"], "refunded")
        self.assertEqual(r["refunded_amount"], str(b["amount"]))
        causes = [h["cause"] for h in r["history"]]
        self.assertIn("refund: provider unavailable, retrying", causes)

        out = self.peer.control("GET", "/test/refunds")
        self.assertEqual(out["conflicts"], [])
        refunds = sorted(out["refunds"], key=lambda x: x["out_refund_no"])
        lot, n = session.split("~")
        self.assertEqual([x["out_refund_no"] for x in refunds],
                         ["%s*%s*r1" % (lot, n), "%s*%s*r2" % (lot, n)])
        self.assertEqual([x["status"] for x in refunds], ["SUCCESS", "SUCCESS"])
        self.assertEqual(sum(x["amount"]["refund"] for x in refunds), b["amount"])
        self.assertTrue(all(x["transaction_id"] == paid["provider_ref"] for x in refunds))
        self.assertTrue(all(x["amount"]["total"] == b["amount"] for x in refunds))
        self.assertGreaterEqual(refunds[1]["requests"], 2)  # the lost answer was asked again
        # Nothing is left to refund.
        status, out = self.gw.admin("POST", "/v1/bills/%s/refund" % b["bill_id"], {"reason": "x"})
        self.assertEqual(status, 400, out)


class TestNotifications(WeChatCase):
    def accepted_bill(self, plate):
        """A bill whose deduction was accepted, its result held back by the peer."""
        self.peer.control("POST", "/test/config", {"notify_delay_ms": 600000})
        self.driver(plate)
        session = self.enter(plate)
        self.registered(session)
        b = self.leave(plate)
        self.assertEqual(b["reason"], "credit_ok")
        self.wait_status(b["bill_id"], "accepted")
        return session, b

    def test_lost_notification_is_settled_by_query(self):
        session, b = self.accepted_bill("浙A71010")
        _, trade_no = self.numbers(session)
        # A minute later billing asks: still accepted, asked again later (two minutes on).
        self.advance(61)
        harness.wait_for(lambda: any(h["cause"] == "still accepted, asking again later"
                                     for h in self.bill(b["bill_id"])["history"]),
                         what="a first query")
        self.assertEqual(self.bill(b["bill_id"])["status"], "accepted")
        # The deduction succeeds while the gateway is down: the one notification WeChat tries is
        # lost.
        self.peer.control("POST", "/test/config", {"notify_max_attempts": 1})
        self.gw.stop()
        self.peer.control("POST", "/test/settle", {"out_trade_no": trade_no})
        harness.wait_for(lambda: any(n["gave_up"] for n in self.peer.notifications()),
                         what="the notification to be given up")
        self.gw.start()
        self.advance(121)
        paid = self.wait_status(b["bill_id"], "paid")
        d = self.deductions("浙A71010")[0]
        self.assertEqual(d["trade_state"], "SUCCESS")
        self.assertEqual(d["requests"], 1)
        self.assertTrue(paid["provider_ref"].startswith("4200"))
        self.assertEqual([e for e in self.provider_events() if e.get("bill") == b["bill_id"]], [])

    def transaction(self, session, bill, state="SUCCESS", tx_id="4200000000TEST0001"):
        _, trade_no = self.numbers(session)
        return {"appid": WeChatPeer.APPID, "sp_mchid": WeChatPeer.MCHID, "out_trade_no": trade_no,
                "transaction_id": tx_id, "trade_state": state, "trade_scene": "PARKING",
                "attach": bill["bill_id"], "amount": {"total": bill["amount"], "currency": "CNY"}}

    def test_notification_delivered_twice_is_applied_once(self):
        session, b = self.accepted_bill("浙A71011")
        drv = self.bill(b["bill_id"])["driver"]
        body, headers = self.peer.notification(self.transaction(session, b),
                                               notification_id="EV-dup-1")
        status, out = self.notify(body, headers)
        self.assertEqual((status, out), (200, {"code": "SUCCESS", "message": "queued"}))
        status, out = self.notify(body, headers)
        self.assertEqual((status, out["message"]), (200, "duplicate"))
        # Sent again by WeChat later, signed afresh: still the same notification.
        body2, headers2 = self.peer.notification(self.transaction(session, b),
                                                 notification_id="EV-dup-1")
        status, out = self.notify(body2, headers2)
        self.assertEqual((status, out["message"]), (200, "duplicate"))
        events = [e for e in self.provider_events() if e["id"] == "EV-dup-1"]
        self.assertEqual(len(events), 1)
        self.assertEqual((events[0]["type"], events[0]["bill"]), ("charge.succeeded", b["bill_id"]))
        paid = self.wait_status(b["bill_id"], "paid")
        self.assertEqual(paid["provider_ref"], "4200000000TEST0001")
        harness.wait_for(lambda: self.drv(drv)["unpaid_count"] == 0, what="driver settled")
        time.sleep(0.5)
        d = self.drv(drv)
        self.assertEqual((d["unpaid_count"], d["score"]), (0, 701))
        self.assertEqual(len([h for h in self.bill(b["bill_id"])["history"]
                              if h["to"] == "paid"]), 1)

    def test_forged_stale_and_tampered_notifications_are_refused(self):
        session, b = self.accepted_bill("浙A71012")
        tx = self.transaction(session, b)
        no, _ = self.numbers(session)
        parking = {"out_parking_no": no, "parking_state": "BLOCKED",
                   "blocked_state_description": "PAUSE",
                   "state_update_time": "2026-11-27T18:00:00+08:00"}
        good, headers = self.peer.notification(tx)
        forged = self.peer.notification(tx, signing_key=self.peer.key("other"))
        stale = self.peer.notification(tx, timestamp=int(time.time()) - 400)
        wrong_key = self.peer.notification(tx, apiv3_key=b"X" * 32)
        forged_state = self.peer.notification(parking, event_type="VEHICLE.ENTRANCE_STATE_CHANGE",
                                              signing_key=self.peer.key("other"),
                                              original_type="parking", associated_data="")
        cases = [
            (401, forged),
            (401, stale),
            (401, (good.replace(b"encrypt-resource", b"encrypt-resourcE"), headers)),
            (401, (good, dict(headers, **{"Wechatpay-Serial": "0" * 40}))),
            (401, (good, {k: v for k, v in headers.items() if k != "Wechatpay-Signature"})),
            (401, (good, dict(headers, **{"Wechatpay-Timestamp": str(int(time.time()) + 10)}))),
            (400, wrong_key),
            (401, forged_state),
        ]
        for want, (body, h) in cases:
            status, out = self.notify(body, h)
            self.assertEqual(status, want, (h, out))
            self.assertEqual(out["code"], "FAIL")
        self.assertEqual(self.provider_events(), [])
        self.assertEqual(self.bill(b["bill_id"])["status"], "accepted")
        self.assertEqual(self.eligibility("浙A71012"), "NORMAL")
        # The genuine one goes through.
        status, out = self.notify(good, headers)
        self.assertEqual((status, out["code"]), (200, "SUCCESS"))
        self.wait_status(b["bill_id"], "paid")
        # Genuine, but about nothing of ours: acknowledged and dropped.
        other = dict(tx, attach="NOWHERE~1~b")
        status, out = self.notify(*self.peer.notification(other))
        self.assertEqual((status, out["message"]), (200, "ignored: no bill of ours"))


if __name__ == "__main__":
    unittest.main()
