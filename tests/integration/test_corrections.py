"""Corrections of closed visits (docs/api.md, "Lane work"): two visits merged into one stay, one
visit split into two, end to end with a real redis-server (plain, and a one-node cluster where
every script must keep to one slot), the real gateway and billing binaries and the
stripe-stateful-mock peer.  Amounts are checked against `parkctl fee` for the new stays, the
lot-day money against the bills themselves (the revenue identity on every row), the drivers'
records, both histories, the audit log and the leakage report's counts; the refusals (roles,
other operators' lots, paid or open visits, bad times) are asked too."""
import json
import os
import subprocess
import time
import unittest

import harness
from harness import ev, iso
from test_roles import DAY, H, RolesCase, date_of, q

BUCKETS = ("paid", "paid_late", "paid_on_site", "outstanding", "overdue", "defaulted", "waived",
           "refunded")


class CorrectionCase(RolesCase):
    start_billing = False

    def fee(self, entry, exit_ts):
        out = subprocess.run(
            [os.path.join(harness.BIN, "parkctl"), "fee", "--tariff",
             os.path.join(self.gw.dir, "tariffs", "test-core.json"), "--entry", iso(entry),
             "--exit", iso(exit_ts), "--json"], capture_output=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)["amount"]

    def visit(self, plate, entry, exit_ts, lot="LOT-A"):
        din, dout = {"LOT-A": ("dev-a-in", "dev-a-out"), "LOT-C": ("dev-c", "dev-c")}[lot]
        s, a = self.gw.event(din, ev(lot, "in", "entry", plate, iso(entry)))
        self.assertEqual(s, 200, a)
        s, b = self.gw.event(dout, ev(lot, "out", "exit", plate, iso(exit_ts)))
        self.assertEqual(s, 200, b)
        self.assertEqual(b["session_id"], a["session_id"], b)
        return b

    def rec(self, sid):
        lot, n = sid.split("~")
        return self.redis.hgetall("pk:{%s}:s:%s" % (lot, n))

    def check_money(self, lot="LOT-A"):
        """The revenue report's rows: the identity on each, and each row equal to the money of the
        bills counted in that lot-day (a void bill is in none)."""
        exp = {}
        cursor = "0"
        while True:
            cursor, keys = self.redis.cmd("SCAN", cursor, "MATCH", "pk:{%s}:s:*" % lot,
                                          "COUNT", "1000")
            for k in keys:
                if k.endswith(":h"):
                    continue
                r = self.redis.hgetall(k)
                if "day" not in r:
                    continue
                self.assertIn(r["status"], ("pending", "retry_scheduled", "failed", "paid",
                                            "overdue"), r)
                row = exp.setdefault(r["day"], dict.fromkeys(("billed",) + BUCKETS, 0))
                row["billed"] += int(r["amount"])
                row[r["status"] if r["status"] in BUCKETS else "outstanding"] += int(r["amount"])
            if cursor == "0":
                break
        d1, d2 = date_of(time.time() - 10 * DAY), date_of(time.time() + DAY)
        rep = self.ok("GET", "/v1/reports/revenue?from=%s&to=%s&lot_id=%s" % (d1, d2, lot),
                      self.tok["admin"])
        rows = {r["date"]: r for r in rep["rows"] if r["lot_id"] == lot}
        for day, r in rows.items():
            self.assertEqual(r["billed"], sum(r[b] for b in BUCKETS), (day, r))
        for day, want in exp.items():
            self.assertIn(day, rows)
            self.assertEqual({k: rows[day][k] for k in want}, want, day)
        return rows

    def leakage(self, lot="LOT-A"):
        d1, d2 = date_of(time.time() - 3 * DAY), date_of(time.time() + DAY)
        rep = self.ok("GET", "/v1/reports/leakage?from=%s&to=%s&lot_id=%s&group=lot"
                      % (d1, d2, lot), self.tok["admin"])
        [row] = [r for r in rep["rows"] if r["lot_id"] == lot]
        return row


class TestMerge(CorrectionCase):
    def test_merge_two_visits_into_one_stay(self):
        west, river = self.tok["op_west"], self.tok["op_river"]
        p1, _ = self.driver("tok_visa", "浙B80001")
        now = int(time.time())
        t0 = now - 6 * H
        # The car turned back at the exit: its exit and a new entry were read 3 minutes apart.
        a = self.visit("浙B80001", t0, t0 + 2 * H)
        b = self.visit("浙B80001", t0 + 2 * H + 180, now - 60)
        fa, fb, fm = self.fee(t0, t0 + 2 * H), self.fee(t0 + 2 * H + 180, now - 60), \
            self.fee(t0, now - 60)
        self.assertEqual((a["amount"], b["amount"]), (fa, fb))
        self.assertNotEqual(fm, fa + fb)  # one stay is not the sum of two
        harness.wait_for(lambda: self.drv(p1)["unpaid_amount"] == fa + fb, what="driver billed")
        path = "/v1/sessions/%s/merge" % q(a["session_id"])
        body = {"with": b["session_id"], "reason": "turned back at the barrier (CCTV)"}
        # Refusals: no reason, another operator, bad or foreign ids, the wrong order.
        st, _ = self.call("POST", path, west, {"with": b["session_id"]})
        self.assertEqual(st, 400)
        st, _ = self.call("POST", path, river, body)
        self.assertEqual(st, 403)
        st, _ = self.call("POST", path, self.tok["city"], body)
        self.assertEqual(st, 403)
        for bad in ("nope", "LOT-C~1", a["session_id"]):
            st, _ = self.call("POST", path, west, dict(body, **{"with": bad}))
            self.assertEqual(st, 400, bad)
        st, _ = self.call("POST", path, west, dict(body, **{"with": "LOT-A~999"}))
        self.assertEqual(st, 404)
        st, _ = self.call("POST", "/v1/sessions/%s/merge" % q(b["session_id"]), west,
                          dict(body, **{"with": a["session_id"]}))
        self.assertEqual(st, 409)  # not consecutive that way round
        # A charge attempt whose outcome is unknown (billing retries it with the same key).
        self.redis.cmd("HSET", "pk:{LOT-A}:s:" + a["session_id"].split("~")[1], "transients", "1")
        st, _ = self.call("POST", path, west, body)
        self.assertEqual(st, 409)
        self.redis.cmd("HDEL", "pk:{LOT-A}:s:" + a["session_id"].split("~")[1], "transients")
        rows_before = self.check_money()

        out = self.ok("POST", path, west, body)
        self.assertEqual((out["session"], out["merged"], out["status"], out["bill"]),
                         (a["session_id"], b["session_id"], "pending", a["bill_id"]))
        self.assertEqual((out["amount"], out["void_bill"]), (fm, b["bill_id"]))
        self.assertEqual(out["explanation"]["amount"], fm)
        ba, bb = self.bill(a["bill_id"]), self.bill(b["bill_id"])
        self.assertEqual((ba["status"], ba["amount"], ba["entry"], ba["exit"]),
                         ("pending", str(fm), str(t0), str(now - 60)))
        self.assertEqual(ba["history"][-1]["cause"],
                         "merged with %s: turned back at the barrier (CCTV)" % b["session_id"])
        self.assertEqual(bb["status"], "merged")
        self.assertEqual(bb["merged_into"], a["session_id"])
        self.assertEqual(bb["history"][-1]["cause"],
                         "merged into %s: turned back at the barrier (CCTV)" % a["session_id"])
        # The money: one bill of the merged amount in the lot-day of the stay's exit, the void
        # bill in none; the identity holds on every row.
        rows = self.check_money()
        total = lambda rs: sum(r["billed"] for r in rs.values())
        self.assertEqual(total(rows) - total(rows_before), fm - fa - fb)
        self.assertNotIn("day", self.rec(b["session_id"]))
        self.assertEqual(self.rec(a["session_id"])["day"], date_of(now - 60))
        # The driver owes the merged stay only.
        harness.wait_for(lambda: self.drv(p1)["unpaid_amount"] == fm, what="driver repriced")
        self.assertEqual(self.drv(p1)["unpaid_count"], 1)
        [e] = self.audit(west, action="merge")
        self.check_entry(e, "merge", a["session_id"], "turned back at the barrier (CCTV)",
                         "west-desk", "operator", "LOT-A")
        self.assertEqual((e["with"], e["amount"], e["other_status"]),
                         (b["session_id"], str(fm), "merged"))
        self.assertEqual(self.leakage()["merged"], 1)
        # Not twice; not with an open visit.
        st, _ = self.call("POST", path, west, body)
        self.assertEqual(st, 409)
        s, c = self.gw.event("dev-a-in", ev("LOT-A", "in", "entry", "浙B80001", iso(now - 30)))
        st, _ = self.call("POST", path, west, dict(body, **{"with": c["session_id"]}))
        self.assertEqual(st, 409)

    def test_two_free_visits_become_one_billed_stay(self):
        """Two short visits (each in the free period) merged: a bill is made for the stay, to the
        plate's driver, and sent to billing like an exit's."""
        p1, _ = self.driver("tok_visa", "浙B80002")
        now = int(time.time())
        a = self.visit("浙B80002", now - 3 * H, now - 3 * H + 10 * 60)
        b = self.visit("浙B80002", now - 3 * H + 12 * 60, now - 3 * H + 20 * 60)
        self.assertEqual((a["bill_id"], b["bill_id"]), (None, None))
        out = self.ok("POST", "/v1/sessions/%s/merge" % q(a["session_id"]), self.tok["admin"],
                      {"with": b["session_id"], "reason": "one stay"})
        fm = self.fee(now - 3 * H, now - 3 * H + 20 * 60)
        self.assertGreater(fm, 0)
        self.assertEqual((out["status"], out["amount"], out["bill"], out["void_bill"]),
                         ("pending", fm, a["session_id"] + "~b", None))
        self.assertEqual(self.bill(out["bill"])["driver"], p1)
        self.assertEqual(self.redis.cmd("TTL", "pk:{LOT-A}:s:" + a["session_id"].split("~")[1]),
                         -1)  # a bill is kept
        [entry] = self.redis.cmd("XRANGE", "pk:{LOT-A}:bills", "-", "+")[-1:]
        f = dict(zip(entry[1][::2], entry[1][1::2]))
        self.assertEqual((f["bill"], f["amount"], f["driver"]), (out["bill"], str(fm), p1))
        self.check_money()
        harness.wait_for(lambda: self.drv(p1)["unpaid_amount"] == fm, what="driver billed")


class TestSplit(CorrectionCase):
    def test_split_one_visit_into_two(self):
        west = self.tok["op_west"]
        p1, _ = self.driver("tok_visa", "浙B90001")
        now = int(time.time())
        t0 = now - 6 * H
        s = self.visit("浙B90001", t0, now - 60)
        self.assertEqual(s["amount"], self.fee(t0, now - 60))
        path = "/v1/sessions/%s/split" % q(s["session_id"])
        x, e = t0 + H, now - 2 * H
        body = {"exit_at": iso(x), "entry_at": iso(e), "reason": "exit and entry missed (rain)"}
        for bad in ({"exit_at": iso(e), "entry_at": iso(x)},        # re-entered before leaving
                    {"exit_at": iso(t0 - 60), "entry_at": iso(e)},  # left before it entered
                    {"exit_at": iso(x), "entry_at": iso(now)},      # entered after its exit
                    {"exit_at": "yesterday", "entry_at": iso(e)},
                    {"entry_at": iso(e)}):
            st, out = self.call("POST", path, west, dict(bad, reason="r"))
            self.assertEqual(st, 400, (bad, out))
        st, _ = self.call("POST", path, west, dict(body, reason=""))
        self.assertEqual(st, 400)
        st, _ = self.call("POST", path, self.tok["op_river"], body)
        self.assertEqual(st, 403)
        st, _ = self.call("POST", "/v1/sessions/%s/split" % q("LOT-A~999"), west, body)
        self.assertEqual(st, 404)

        out = self.ok("POST", path, west, body)
        f1, f2 = self.fee(t0, x), self.fee(e, now - 60)
        second = out["second"]
        self.assertEqual((out["session"], out["status"], out["amount"], out["bill"]),
                         (s["session_id"], "pending", f1, s["bill_id"]))
        self.assertNotEqual(second["session"], s["session_id"])
        self.assertEqual((second["status"], second["amount"], second["bill"]),
                         ("pending", f2, second["session"] + "~b"))
        self.assertEqual(second["explanation"]["amount"], f2)
        b1, b2 = self.bill(s["bill_id"]), self.bill(second["bill"])
        self.assertEqual((b1["amount"], b1["exit"], b1["split_to"]),
                         (str(f1), str(x), second["session"]))
        self.assertNotIn("lane_out", b1)
        self.assertEqual((b2["driver"], b2["plate"], b2["entry"], b2["exit"], b2["lane_out"]),
                         (p1, "浙B90001", str(e), str(now - 60), "out"))
        self.assertEqual(b1["history"][-1]["cause"], "split, the second visit is %s: exit and "
                         "entry missed (rain)" % second["session"])
        self.assertEqual(b2["history"][-1]["cause"],
                         "split from %s: exit and entry missed (rain)" % s["session_id"])
        # A number of the lot's counter: the next entry gets the one after it.
        s3, c = self.gw.event("dev-a-in", ev("LOT-A", "in", "entry", "浙B90009", iso(now - 5)))
        self.assertEqual(int(c["session_id"].split("~")[1]),
                         int(second["session"].split("~")[1]) + 1)
        self.check_money()
        harness.wait_for(lambda: self.drv(p1)["unpaid_amount"] == f1 + f2, what="driver")
        self.assertEqual(self.drv(p1)["unpaid_count"], 2)
        [a] = self.audit(west, action="split")
        self.check_entry(a, "split", s["session_id"], "exit and entry missed (rain)",
                         "west-desk", "operator", "LOT-A")
        self.assertEqual((a["second"], a["amount"], a["other_amount"]),
                         (second["session"], str(f1), str(f2)))
        self.assertEqual(self.leakage()["split"], 1)
        # An open visit cannot be split.
        st, _ = self.call("POST", "/v1/sessions/%s/split" % q(c["session_id"]), west, body)
        self.assertEqual(st, 409)

    def test_a_free_first_part_voids_the_bill(self):
        p1, _ = self.driver("tok_visa", "浙B90002")
        now = int(time.time())
        s = self.visit("浙B90002", now - 4 * H, now - 60)
        out = self.ok("POST", "/v1/sessions/%s/split" % q(s["session_id"]), self.tok["admin"],
                      {"exit_at": iso(now - 4 * H + 5 * 60), "entry_at": iso(now - H),
                       "reason": "dropped someone off, came back"})
        f2 = self.fee(now - H, now - 60)
        self.assertEqual((out["status"], out["amount"], out["void_bill"]),
                         ("void", 0, s["bill_id"]))
        self.assertEqual((out["second"]["status"], out["second"]["amount"]), ("pending", f2))
        self.assertEqual(self.bill(s["bill_id"])["status"], "void")
        self.check_money()
        harness.wait_for(lambda: self.drv(p1)["unpaid_amount"] == f2, what="driver")
        self.assertEqual(self.drv(p1)["unpaid_count"], 1)


class TestWithBilling(CorrectionCase):
    start_billing = True

    def test_paid_is_refused_and_a_merged_bill_is_charged(self):
        west = self.tok["op_west"]
        p1, cus = self.driver("tok_visa", "浙B95001")
        now = int(time.time())
        a = self.visit("浙B95001", now - 5 * H, now - 4 * H)
        b = self.visit("浙B95001", now - 4 * H + 60, now - 3 * H)
        for x in (a, b):
            self.wait_status(x["bill_id"], "paid")
        st, out = self.call("POST", "/v1/sessions/%s/merge" % q(a["session_id"]), west,
                            {"with": b["session_id"], "reason": "x"})
        self.assertEqual(st, 409, out)
        st, out = self.call("POST", "/v1/sessions/%s/split" % q(a["session_id"]), west,
                            {"exit_at": iso(now - 5 * H + 600), "entry_at": iso(now - 4 * H - 600),
                             "reason": "x"})
        self.assertEqual(st, 409, out)
        # Two free visits merged: billing takes the new bill and charges the stay's amount.
        c = self.visit("浙B95001", now - 2 * H, now - 2 * H + 600)
        d = self.visit("浙B95001", now - 2 * H + 700, now - 2 * H + 1200)
        out = self.ok("POST", "/v1/sessions/%s/merge" % q(c["session_id"]), west,
                      {"with": d["session_id"], "reason": "one stay"})
        fm = self.fee(now - 2 * H, now - 2 * H + 1200)
        self.assertEqual(out["amount"], fm)
        paid = self.wait_status(out["bill"], "paid")
        st, charge = self.mock.call("GET", "/v1/charges/" + paid["provider_ref"])
        self.assertEqual(st, 200, charge)
        self.assertEqual((charge["amount"], charge["status"]), (fm, "succeeded"))
        self.assertEqual(paid["amount"], str(fm))
        self.check_money()

    def test_overdue_bills_merged_follow_in_the_arrears(self):
        """Two overdue bills (declined card, left 5 days ago) merged: one overdue bill of the
        stay's amount in the arrears index and its totals, the other out of it."""
        p1, _ = self.driver("tok_chargeCustomerFail", "浙B95002")
        end = int(time.time()) - 5 * DAY
        a = self.visit("浙B95002", end - 4 * H, end - 2 * H)
        b = self.visit("浙B95002", end - 2 * H + 120, end)
        for x in (a, b):
            self.wait_status(x["bill_id"], "overdue", 30)
        info = lambda: self.redis.hgetall("pk:{LOT-A}:arrears:info")
        fa, fb, fm = a["amount"], b["amount"], self.fee(end - 4 * H, end)
        before = info()
        self.assertEqual((before["#overdue_count"], before["#overdue_amount"]),
                         ("2", str(fa + fb)))
        out = self.ok("POST", "/v1/sessions/%s/merge" % q(a["session_id"]), self.tok["op_west"],
                      {"with": b["session_id"], "reason": "turned back"})
        self.assertEqual((out["status"], out["amount"]), ("overdue", fm))
        after = info()
        self.assertEqual((after["#overdue_count"], after["#overdue_amount"]), ("1", str(fm)))
        self.assertEqual((after["#owed_count"], after["#owed_amount"]), ("1", str(fm)))
        members = self.redis.cmd("ZRANGE", "pk:{LOT-A}:arrears", "0", "-1")
        self.assertEqual(members, ["%012d" % int(a["session_id"].split("~")[1])])
        self.assertEqual(after[members[0]].split("\x1f")[:2], ["overdue", str(fm)])
        self.check_money()
        harness.wait_for(lambda: self.drv(p1)["unpaid_amount"] == fm, what="driver repriced")
        self.assertEqual(self.bill(b["bill_id"])["status"], "merged")


if __name__ == "__main__":
    unittest.main()
