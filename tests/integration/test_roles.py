"""Who may see and do what, end to end (docs/api.md): a real redis-server (a one-node cluster:
every script must keep to one slot), the real gateway and billing binaries, the stripe-stateful-mock
peer (npm), and tokens made with `parkctl token create`.  Every endpoint of the people's API is
asked by every role and by callers without a valid token; every cross-access (an operator on the
other operator's lot, a driver on another driver's bill) is refused; the defaults list is filtered
and paged; each staff action lands in the audit log with its actor, reason, target and time; a
disputed bill is not charged until resolved; a driver lists, reads, pays and disputes its bills;
operators open lanes, change passes and correct a misread.  Billing's clock moves through its
clock file instead of waiting for days."""
import csv
import io
import json
import os
import subprocess
import time
import unittest
import urllib.parse

import harness
from harness import Billing, Gateway, Redis, StripeMock, ev, iso

H = 3600
DAY = 86400
TZ = 8 * H  # the harness tariff's zone (Asia/Shanghai)
LANES = {"LOT-A": ("dev-a-in", "dev-a-out"), "LOT-B": ("dev-b", "dev-b"),
         "LOT-C": ("dev-c", "dev-c")}
DISTRICT = {"LOT-A": "西湖区", "LOT-B": "上城区", "LOT-C": "滨江区"}


def q(s):
    return urllib.parse.quote(s, safe="")


def parkctl(*args, env=None):
    return subprocess.run([os.path.join(harness.BIN, "parkctl")] + list(args), capture_output=True,
                          timeout=60, env=dict(os.environ, **(env or {})))


def date_of(t):
    return time.strftime("%Y-%m-%d", time.gmtime(t + TZ))


class RolesCase(unittest.TestCase):
    """The harness city with two operators: op-west runs LOT-A and LOT-B, op-river LOT-C.  Drivers
    pay through the Stripe mock; grace 72 h, default after 30 days, suspended while overdue."""

    start_billing = True

    def setUp(self):
        self.redis = Redis()
        self.mock = StripeMock()
        self.gw = Gateway(self.redis, {
            "providers.0.base_url": "http://127.0.0.1:%d" % self.mock.port,
            "providers.0.timeout_ms": 3000,
            "operators": [{"id": "op-west", "name": "West"}, {"id": "op-river", "name": "River"}],
            "lots.0.operator": "op-west", "lots.1.operator": "op-west",
            "lots.2.operator": "op-river", "lots.1.capacity": 50,
            "credit_policy": {"min_score": 600, "max_unpaid_bills": 10,
                              "max_unpaid_amount": 1000000, "max_fee": 100000,
                              "retry_minutes": [1, 2], "grace_hours": 72,
                              "default_after_days": 30, "score_paid_on_time": 1,
                              "score_paid_late": -10, "score_default": -100,
                              "first_default_free_months": 12, "suspend_when_overdue": True},
        })
        self.billing = Billing(self.gw) if self.start_billing else None
        self.offset = 0
        self.tok = {"admin_cfg": harness.ADMIN_TOKEN,
                    "admin": self.token("admin", name="root"),
                    "city": self.token("city", name="city-clerk"),
                    "op_west": self.token("operator", "op-west", "west-desk"),
                    "op_river": self.token("operator", "op-river", "river-desk")}

    def tearDown(self):
        for c in (self.billing, self.gw, self.mock, self.redis):
            if c is not None:
                c.destroy()

    # ---- helpers ----
    def token(self, role, scope=None, name=None):
        args = ["token", "create", "--role", role, "--config", self.gw.config_path]
        if scope:
            args += ["--scope", scope]
        if name:
            args += ["--name", name]
        out = parkctl(*args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode().strip()

    def call(self, method, path, token=None, body=None, raw=None):
        h = {"Content-Type": "application/json"}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (
            json.dumps(body, ensure_ascii=False).encode() if body is not None else b"")
        status, out, _ = self.gw.request(method, path, data, h)
        try:
            return status, json.loads(out) if out else None
        except ValueError:
            return status, out

    def ok(self, method, path, token, body=None, status=200):
        st, out = self.call(method, path, token, body)
        self.assertEqual(st, status, "%s %s: %s" % (method, path, out))
        return out

    def driver(self, card, plate, name=None):
        cus = self.mock.customer(card)
        d = self.ok("POST", "/v1/drivers", harness.ADMIN_TOKEN,
                    {"id": name, "plates": [plate], "provider": "stripe-test",
                     "payment_ref": cus}, 201)
        return d["id"], cus

    def stay(self, lot, plate, hours=2.0, ago=0):
        """A visit that left `ago` seconds ago after `hours`; returns the exit's answer."""
        end = int(time.time()) - ago - 5
        self.last_exit = end
        din, dout = LANES[lot]
        s, a = self.gw.event(din, ev(lot, "in", "entry", plate, iso(end - int(hours * H))))
        self.assertEqual(s, 200, a)
        s, b = self.gw.event(dout, ev(lot, "out", "exit", plate, iso(end)))
        self.assertEqual(s, 200, b)
        return b

    def bill(self, bill_id):
        return self.ok("GET", "/v1/bills/" + q(bill_id), harness.ADMIN_TOKEN)

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
        return self.ok("GET", "/v1/drivers/" + driver_id, harness.ADMIN_TOKEN)

    def fix_card(self, cus):
        status, card = self.mock.call("POST", "/v1/customers/%s/sources" % cus,
                                      {"source": "tok_visa"})
        self.assertEqual(status, 200, card)
        status, _ = self.mock.call("POST", "/v1/customers/" + cus,
                                   {"default_source": card["id"]})
        self.assertEqual(status, 200)

    def audit(self, token=None, **params):
        path = "/v1/audit" + ("?" + urllib.parse.urlencode(params) if params else "")
        return self.ok("GET", path, token or self.tok["admin"])["items"]

    def check_entry(self, e, action, target, reason, actor, role, lot=None, t0=None):
        self.assertEqual(e["action"], action)
        self.assertEqual(e["target"], target)
        self.assertEqual(e["reason"], reason)
        self.assertEqual(e["actor"], actor)
        self.assertEqual(e["role"], role)
        if lot is not None:
            self.assertEqual(e["lot"], lot)
        t0 = t0 or time.time() - 120
        self.assertTrue(t0 - 1 <= e["at"] <= time.time() + 1, e)
        self.assertTrue(e["time"].endswith("+08:00") or e["time"].endswith("Z"), e)


class TestAccess(RolesCase):
    ROLES = ("admin_cfg", "admin", "city", "op_west", "op_river", "drv_x", "drv_y", "none",
             "bogus", "revoked")

    def setUp(self):
        super().setUp()
        self.x, _ = self.driver("tok_visa", "浙B10001", "drv-x")
        self.y, _ = self.driver("tok_visa", "浙B10002", "drv-y")
        self.tok["drv_x"] = self.token("driver", self.x, "x-phone")
        self.tok["drv_y"] = self.token("driver", self.y, "y-phone")
        revoked = self.token("operator", "op-west", "gone")
        out = parkctl("token", "revoke", revoked, "--config", self.gw.config_path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.tok["revoked"] = revoked
        self.tok["bogus"] = "pkt_" + "0" * 64
        self.tok["none"] = None
        self.bx = self.stay("LOT-A", "浙B10001")["bill_id"]
        self.by = self.stay("LOT-C", "浙B10002")["bill_id"]
        for b in (self.bx, self.by):
            self.wait_status(b, "paid")

    def expect(self, method, path, allowed, body=None, raw=None):
        """allowed: role -> status for the roles let in; every other role with a valid token
        gets 403, and callers without a valid one 401."""
        for role in self.ROLES:
            want = allowed.get(role, 401 if role in ("none", "bogus", "revoked") else 403)
            st, out = self.call(method, path, self.tok[role], body, raw)
            self.assertEqual(st, want, "%s %s as %s: %s" % (method, path, role, out))
            if st in (401, 403):
                self.assertEqual(out["error"], "unauthorized" if st == 401 else "forbidden")

    def test_every_endpoint_every_role(self):
        admins = {"admin_cfg": None, "admin": None}
        staff = dict(admins, city=None)

        def with_status(roles, status):
            return {r: status for r in roles}

        bx, by, px = q(self.bx), q(self.by), q("浙B10001")
        # Drivers' enrolment: admin only.
        self.expect("GET", "/v1/drivers/" + self.x, with_status(admins, 200))
        self.expect("POST", "/v1/drivers", with_status(admins, 400), body={})
        self.expect("GET", "/v1/drivers?plate=" + px, with_status(admins, 200))
        # Bills: staff everywhere, an operator its lots, a driver (reading) its own.
        self.expect("GET", "/v1/bills/" + bx,
                    with_status(("admin_cfg", "admin", "city", "op_west", "drv_x"), 200))
        self.expect("GET", "/v1/bills/" + by,
                    with_status(("admin_cfg", "admin", "city", "op_river", "drv_y"), 200))
        self.expect("POST", "/v1/bills/%s/waive" % bx,
                    with_status(("admin_cfg", "admin", "city", "op_west"), 400), body={})
        self.expect("POST", "/v1/bills/%s/refund" % by,
                    with_status(("admin_cfg", "admin", "city", "op_river"), 400), body={})
        self.expect("POST", "/v1/bills/%s/charge" % bx,
                    with_status(("admin_cfg", "admin", "city", "op_west"), 409))
        self.expect("POST", "/v1/bills/%s/dispute" % bx, with_status(staff, 400), body={})
        self.expect("POST", "/v1/bills/%s/resolve" % by, with_status(staff, 400), body={})
        # Defaults and city figures: admin and city.
        self.expect("GET", "/v1/defaults", with_status(staff, 200))
        self.expect("GET", "/v1/defaults?lot=LOT-C", with_status(staff, 200))
        self.expect("GET", "/v1/defaults/" + px, with_status(staff, 200))
        self.expect("POST", "/v1/defaults/%s/reinstate" % px, with_status(staff, 400), body={})
        self.expect("GET", "/v1/city/figures", with_status(staff, 200))
        # The audit log: staff all of it, an operator its own lots.
        self.expect("GET", "/v1/audit",
                    with_status(("admin_cfg", "admin", "city", "op_west", "op_river"), 200))
        self.expect("GET", "/v1/audit?lot=LOT-C",
                    with_status(("admin_cfg", "admin", "city", "op_river"), 200))
        self.expect("GET", "/v1/audit?lot=LOT-B",
                    with_status(("admin_cfg", "admin", "city", "op_west"), 200))
        # A driver's own.
        self.expect("GET", "/v1/me", with_status(("drv_x", "drv_y"), 200))
        self.expect("GET", "/v1/me/bills", with_status(("drv_x", "drv_y"), 200))
        self.expect("GET", "/v1/me/bills/" + bx, {"drv_x": 200})
        self.expect("GET", "/v1/me/bills/" + by, {"drv_y": 200})
        self.expect("POST", "/v1/me/bills/%s/pay" % bx, {"drv_x": 409})
        self.expect("POST", "/v1/me/bills/%s/dispute" % by, {"drv_y": 409},
                    body={"reason": "not my car"})
        # Lane work: admin and the lot's operator; city may read passes.
        self.expect("GET", "/v1/lots/LOT-A/passes",
                    with_status(("admin_cfg", "admin", "city", "op_west"), 200))
        self.expect("GET", "/v1/lots/LOT-C/allow",
                    with_status(("admin_cfg", "admin", "city", "op_river"), 200))
        self.expect("POST", "/v1/lots/LOT-C/passes",
                    with_status(("admin_cfg", "admin", "op_river"), 400), body={})
        self.expect("DELETE", "/v1/lots/LOT-A/allow/%s?reason=x" % q("浙A0G9P3"),
                    with_status(("admin_cfg", "admin", "op_west"), 409))
        self.expect("POST", "/v1/lots/LOT-B/lanes/in/open",
                    with_status(("admin_cfg", "admin", "op_west"), 400), body={})
        self.expect("POST", "/v1/lots/LOT-C/lanes/in/open",
                    with_status(("admin_cfg", "admin", "op_river"), 400), body={})
        self.expect("POST", "/v1/sessions/%s/reassign" % q(self.by[:-2]),
                    with_status(("admin_cfg", "admin", "op_river"), 400), body={})
        for fix in ("merge", "split"):
            self.expect("POST", "/v1/sessions/%s/%s" % (q(self.by[:-2]), fix),
                        with_status(("admin_cfg", "admin", "op_river"), 400), body={})
        # Nothing above changed a bill.
        self.assertEqual(self.bill(self.bx)["status"], "paid")
        self.assertEqual(self.bill(self.by)["status"], "paid")
        self.assertNotIn("disputed", self.bill(self.by))
        # Health stays open; the lane API keeps its own signatures.
        self.assertEqual(self.gw.get("/healthz")[0], 200)
        st, _ = self.call("POST", "/v1/events", self.tok["admin"], {})
        self.assertEqual(st, 401)

    def test_cross_access_reveals_nothing(self):
        # Operator west never reads river's lot, in any form.
        for path in ("/v1/bills/" + q(self.by), "/v1/lots/LOT-C/passes", "/v1/audit?lot=LOT-C"):
            st, out = self.call("GET", path, self.tok["op_west"])
            self.assertEqual(st, 403, (path, out))
            self.assertNotIn("浙B10002", json.dumps(out, ensure_ascii=False))
        # Its audit view holds its own lots' entries only.
        self.ok("POST", "/v1/lots/LOT-C/lanes/in/open", self.tok["op_river"], {"reason": "jam"},
                202)
        self.ok("POST", "/v1/lots/LOT-A/lanes/in/open", self.tok["op_west"], {"reason": "jam"},
                202)
        lots = {e["lot"] for e in self.audit(self.tok["op_west"])}
        self.assertEqual(lots, {"LOT-A"})
        self.assertEqual({e["lot"] for e in self.audit(self.tok["op_river"])}, {"LOT-C"})
        # City staff see every lot's, and the drivers' (enrolments: no lot).
        self.assertEqual({e["lot"] for e in self.audit(self.tok["city"])}, {"LOT-A", "LOT-C", ""})
        # Driver x never reads, pays or disputes y's bill; its list holds its own only.
        for method, path, body in (("GET", "/v1/me/bills/" + q(self.by), None),
                                   ("POST", "/v1/me/bills/%s/pay" % q(self.by), None),
                                   ("POST", "/v1/me/bills/%s/dispute" % q(self.by),
                                    {"reason": "x"}),
                                   ("GET", "/v1/bills/" + q(self.by), None)):
            st, out = self.call(method, path, self.tok["drv_x"], body)
            self.assertEqual(st, 403, (path, out))
        mine = self.ok("GET", "/v1/me/bills", self.tok["drv_x"])
        self.assertEqual([b["bill"] for b in mine["items"]], [self.bx])
        # An unknown bill is 404 for its lot's staff.
        st, _ = self.call("GET", "/v1/bills/" + q("LOT-A~999~b"), self.tok["op_west"])
        self.assertEqual(st, 404)

    def test_tokens_are_listed_and_revoked(self):
        out = parkctl("token", "list", "--config", self.gw.config_path)
        self.assertEqual(out.returncode, 0, out.stderr)
        text = out.stdout.decode()
        for name in ("root", "city-clerk", "west-desk", "river-desk", "x-phone"):
            self.assertIn(name, text)
        self.assertNotIn("gone", text)  # revoked
        for t in self.tok.values():
            if t and t.startswith("pkt_"):
                self.assertNotIn(t[4:], text)  # never the token itself
        # A revoked token stops working (within the gateway's 30 s cache).
        t = self.token("city", name="temp")
        self.ok("GET", "/v1/defaults", t)
        self.assertEqual(parkctl("token", "revoke", t, "--config",
                                 self.gw.config_path).returncode, 0)
        harness.wait_for(lambda: self.call("GET", "/v1/defaults", t)[0] == 401, 40,
                         "the revoked token to be refused")


class TestDefaults(RolesCase):
    def setUp(self):
        super().setUp()
        # Per lot: a bill that defaulted (left 40 days ago), one overdue (5 days ago), one still
        # owed (today, its card declined): each of its own driver, amounts by the stay's length.
        self.bills = {}
        n = 0
        for lot in ("LOT-A", "LOT-B", "LOT-C"):
            for kind, ago, hours in (("defaulted", 40 * DAY, 1 + n % 3),
                                     ("overdue", 5 * DAY, 2 + n % 3), ("owed", 0, 3)):
                n += 1
                plate = "浙B2%04d" % n
                d, _ = self.driver("tok_chargeCustomerFail", plate)
                b = self.stay(lot, plate, hours=hours, ago=ago)
                self.assertEqual(b["reason"], "credit_ok", b)
                self.bills[b["bill_id"]] = {"kind": kind, "lot": lot, "plate": plate,
                                            "driver": d, "amount": b["amount"],
                                            "exit": self.last_exit}
        for b, info in self.bills.items():
            want = {"defaulted": "defaulted", "overdue": "overdue",
                    "owed": ("retry_scheduled", "failed")}[info["kind"]]
            self.wait_status(b, want, 30)

    def listing(self, token=None, **params):
        path = "/v1/defaults" + ("?" + urllib.parse.urlencode(params) if params else "")
        return self.ok("GET", path, token or self.tok["city"])

    def expected(self, pred):
        """The expected list: exit time, then lot, then number."""
        items = [(v["exit"], v["lot"], int(b.split("~")[1]), b) for b, v in self.bills.items()
                 if v["kind"] in ("defaulted", "overdue") and pred(b, v)]
        return [b for _, _, _, b in sorted(items)]

    def test_filters_and_paging(self):
        everything = self.listing()
        self.assertEqual([i["bill"] for i in everything["items"]], self.expected(lambda b, v: True))
        self.assertIsNone(everything["next_cursor"])
        for it in everything["items"]:
            v = self.bills[it["bill"]]
            self.assertEqual(it["status"], v["kind"])
            self.assertEqual((it["lot"], it["district"], it["plate"], it["driver"], it["amount"]),
                             (v["lot"], DISTRICT[v["lot"]], v["plate"], v["driver"], v["amount"]))
            self.assertFalse(it["disputed"])
            self.assertEqual(it["currency"], "CNY")
        for status in ("defaulted", "overdue"):
            got = [i["bill"] for i in self.listing(status=status)["items"]]
            self.assertEqual(got, self.expected(lambda b, v, s=status: v["kind"] == s))
        got = [i["bill"] for i in self.listing(district="上城区")["items"]]
        self.assertEqual(got, self.expected(lambda b, v: v["lot"] == "LOT-B"))
        got = [i["bill"] for i in self.listing(lot="LOT-C", status="overdue")["items"]]
        self.assertEqual(got, self.expected(lambda b, v: v["lot"] == "LOT-C" and
                                            v["kind"] == "overdue"))
        amounts = sorted({v["amount"] for v in self.bills.values()})
        mid = amounts[len(amounts) // 2]
        got = [i["bill"] for i in self.listing(min_amount=mid)["items"]]
        self.assertEqual(got, self.expected(lambda b, v: v["amount"] >= mid))
        got = [i["bill"] for i in self.listing(min_age_days=30)["items"]]
        self.assertEqual(got, self.expected(lambda b, v: v["kind"] == "defaulted"))
        for it in self.listing(min_age_days=30)["items"]:
            self.assertGreaterEqual(it["age_days"], 40)
        # Pages of two, by cursor: the same list, in the same order, nothing twice.
        pages, cursor = [], None
        while True:
            params = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = self.listing(**params)
            self.assertLessEqual(len(page["items"]), 2)
            pages += [i["bill"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(pages, self.expected(lambda b, v: True))
        # Bad filters.
        for params in ({"status": "late"}, {"limit": 0}, {"limit": 501}, {"cursor": "nope"},
                       {"min_amount": "-1"}, {"lot": "LOT-Z"}):
            st, out = self.call("GET", "/v1/defaults?" + urllib.parse.urlencode(params),
                                self.tok["city"])
            self.assertIn(st, (400, 404), (params, out))

    def test_detail_figures_and_parkctl(self):
        b = next(k for k, v in self.bills.items() if v["kind"] == "overdue")
        v = self.bills[b]
        harness.wait_for(lambda: self.drv(v["driver"])["suspended"], what="suspension")
        d = self.ok("GET", "/v1/defaults/" + q(v["plate"]), self.tok["city"])
        self.assertEqual(d["driver"]["id"], v["driver"])
        self.assertTrue(d["driver"]["suspended"])
        self.assertEqual(d["arrears"], {"count": 1, "amount": v["amount"]})
        causes = [h["cause"] for h in d["credit_history"]]
        self.assertIn("overdue", causes)
        [bill] = d["bills"]
        self.assertEqual(bill["id"] + "~b", b)
        self.assertEqual(bill["explanation"]["amount"], v["amount"])
        self.assertTrue(bill["explanation"]["rows"])
        self.assertIn("credit_ok", bill["reason_codes"])
        self.assertIn("fee:charged", bill["reason_codes"])
        kinds = [r["kind"] for r in bill["reminders"]]
        self.assertIn("overdue", kinds)
        self.assertIn("bill_created", kinds)
        # Without a reminder webhook billing acknowledges each reminder once logged: sent.
        harness.wait_for(lambda: all(
            r["state"] == "sent" for r in self.ok("GET", "/v1/defaults/" + q(v["plate"]),
                                                  self.tok["city"])["bills"][0]["reminders"]))
        d = self.ok("GET", "/v1/defaults/" + q(v["plate"]), self.tok["city"])
        self.assertEqual(d["bills"][0]["collection_status"], "reminded")
        self.assertTrue(d["bills"][0]["arrear"])
        owed = next(k for k, x in self.bills.items() if x["kind"] == "owed")
        d = self.ok("GET", "/v1/defaults/" + q(self.bills[owed]["plate"]), self.tok["admin"])
        self.assertFalse(d["bills"][0]["arrear"])
        self.assertIn(d["bills"][0]["collection_status"], ("reminding", "reminded"))
        st, _ = self.call("GET", "/v1/defaults/" + q("浙B99999"), self.tok["city"])
        self.assertEqual(st, 404)

        # City figures over the last 45 days: every bill, per district.
        today = date_of(time.time())
        start = date_of(time.time() - 44 * DAY)
        f = self.ok("GET", "/v1/city/figures?from=%s&to=%s" % (start, today), self.tok["city"])
        city = f["city"]
        total = sum(x["amount"] for x in self.bills.values())
        self.assertEqual(city["leave_first_bills"], 9)
        self.assertEqual(city["billed"], total)
        self.assertEqual(city["outstanding"], total)
        self.assertEqual(city["outstanding_count"], 9)
        self.assertEqual(city["overdue_count"], 3)
        self.assertEqual(city["defaulted_count"], 3)
        self.assertEqual(city["overdue"], sum(x["amount"] for x in self.bills.values()
                                              if x["kind"] == "overdue"))
        self.assertEqual(city["defaulted_in_range"], 3)
        self.assertAlmostEqual(city["default_rate"], 3 / 9)
        self.assertEqual(city["leave_first_share"], 1.0)
        by_d = {x["district"]: x for x in f["districts"]}
        self.assertEqual(set(by_d), set(DISTRICT.values()))
        for lot, dist in DISTRICT.items():
            self.assertEqual(by_d[dist]["leave_first_bills"], 3)
            self.assertEqual(by_d[dist]["defaulted_count"], 1)
            self.assertAlmostEqual(by_d[dist]["default_rate"], 1 / 3)
        # The last 10 days hold the overdue and owed bills, none that defaulted.
        f = self.ok("GET", "/v1/city/figures?from=%s&to=%s" % (date_of(time.time() - 9 * DAY),
                                                              today), self.tok["admin"])
        self.assertEqual(f["city"]["leave_first_bills"], 6)
        self.assertEqual(f["city"]["defaulted_in_range"], 0)
        self.assertEqual(f["city"]["defaulted_count"], 3)  # now, whenever they left
        st, _ = self.call("GET", "/v1/city/figures?from=2020-01-01&to=2026-01-01",
                          self.tok["city"])
        self.assertEqual(st, 400)

        # parkctl defaults: a table, and CSV for scripts, every page.
        url = "http://127.0.0.1:%d" % self.gw.port
        out = parkctl("defaults", "--config", self.gw.config_path, "--url", url, "--status",
                      "overdue", "--csv", env={"PARK_TOKEN": self.tok["city"]})
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = list(csv.DictReader(io.StringIO(out.stdout.decode())))
        self.assertEqual([r["bill"] for r in rows],
                         self.expected(lambda b, v: v["kind"] == "overdue"))
        for r in rows:
            self.assertEqual(int(r["amount_minor"]), self.bills[r["bill"]]["amount"])
        out = parkctl("defaults", "--config", self.gw.config_path, "--url", url, "--district",
                      "滨江区", "--token", self.tok["admin"])
        self.assertEqual(out.returncode, 0, out.stderr)
        text = out.stdout.decode()
        self.assertIn("2 arrears", text)
        self.assertIn("滨江区", text)
        self.assertNotIn("西湖区", text)
        out = parkctl("defaults", "--config", self.gw.config_path, "--url", url,
                      env={"PARK_TOKEN": self.tok["op_west"]})
        self.assertEqual(out.returncode, 2)
        self.assertIn("403", out.stderr.decode())


class TestActions(RolesCase):
    def test_each_action_is_applied_and_audited(self):
        t0 = time.time()
        bad, bad_cus = self.driver("tok_chargeCustomerFail", "浙B30001")
        good, _ = self.driver("tok_visa", "浙B30002")
        # The three exits leave on credit before billing suspends the driver for the first.
        self.billing.stop()
        b1 = self.stay("LOT-A", "浙B30001", ago=5 * DAY)["bill_id"]   # overdue
        b2 = self.stay("LOT-B", "浙B30001", ago=4 * DAY)["bill_id"]   # overdue
        b3 = self.stay("LOT-C", "浙B30001", ago=40 * DAY)["bill_id"]  # defaulted
        paid = self.stay("LOT-A", "浙B30002")["bill_id"]
        self.billing.start()
        self.wait_status(b1, "overdue")
        self.wait_status(b2, "overdue")
        self.wait_status(b3, "defaulted")
        self.wait_status(paid, "paid")
        harness.wait_for(lambda: self.drv(bad)["suspended"], what="suspension")
        city, west = self.tok["city"], self.tok["op_west"]

        # Every action needs a reason.
        for path in ("/v1/bills/%s/dispute", "/v1/bills/%s/resolve", "/v1/bills/%s/waive"):
            st, _ = self.call("POST", path % q(b1), city, {"reason": ""})
            self.assertEqual(st, 400)
        st, _ = self.call("POST", "/v1/defaults/%s/reinstate" % q("浙B30001"), city, {})
        self.assertEqual(st, 400)

        # dispute: a flag, shown in the defaults list, audited.
        out = self.ok("POST", "/v1/bills/%s/dispute" % q(b1), city,
                      {"reason": "driver says the car was sold"})
        self.assertTrue(out["disputed"])
        st, _ = self.call("POST", "/v1/bills/%s/dispute" % q(b1), city, {"reason": "again"})
        self.assertEqual(st, 409)
        listed = self.ok("GET", "/v1/defaults?status=disputed", city)["items"]
        self.assertEqual([(i["bill"], i["status"], i["disputed"]) for i in listed],
                         [(b1, "overdue", True)])
        [e] = self.audit(action="dispute")
        self.check_entry(e, "dispute", b1, "driver says the car was sold", "city-clerk", "city",
                         "LOT-A", t0)
        # resolve, upheld: still owed, no longer disputed.
        out = self.ok("POST", "/v1/bills/%s/resolve" % q(b1), city,
                      {"reason": "sale was after the stay", "outcome": "upheld"})
        self.assertEqual(out["outcome"], "upheld")
        bb = self.bill(b1)
        self.assertEqual(bb["status"], "overdue")
        self.assertNotIn("disputed", bb)
        self.assertIn("dispute resolved, upheld: sale was after the stay",
                      [h["cause"] for h in bb["history"]])
        self.assertEqual(self.ok("GET", "/v1/defaults?status=disputed", city)["items"], [])
        [e] = self.audit(action="resolve")
        self.check_entry(e, "resolve", b1, "sale was after the stay", "city-clerk", "city",
                         "LOT-A", t0)
        self.assertEqual(e["outcome"], "upheld")
        st, _ = self.call("POST", "/v1/bills/%s/resolve" % q(b1), city,
                          {"reason": "twice", "outcome": "upheld"})
        self.assertEqual(st, 409)
        # dispute, then resolve waived: the bill is no longer owed, the driver's record follows.
        self.ok("POST", "/v1/bills/%s/dispute" % q(b2), self.tok["admin"],
                {"reason": "camera misread"})
        out = self.ok("POST", "/v1/bills/%s/resolve" % q(b2), self.tok["admin"],
                      {"reason": "plate was 浙B30007", "outcome": "waived"})
        self.assertEqual(out["status"], "waived")
        self.assertEqual(self.bill(b2)["status"], "waived")
        harness.wait_for(lambda: b2 not in self.drv(bad)["unpaid_bills"], what="driver settled")
        # waive (the existing action) of the defaulted bill, by an operator of its lot? Not
        # LOT-C's west operator: river's.
        st, _ = self.call("POST", "/v1/bills/%s/waive" % q(b3), west, {"reason": "x"})
        self.assertEqual(st, 403)
        self.ok("POST", "/v1/bills/%s/waive" % q(b3), self.tok["op_river"],
                {"reason": "barrier fault that day"})
        self.assertEqual(self.bill(b3)["status"], "waived")
        # refund of the paid bill by its lot's operator.
        out = self.ok("POST", "/v1/bills/%s/refund" % q(paid), west,
                      {"reason": "double charged at the gate", "amount": 100}, 202)
        self.wait_status(paid, "refunded", 30)
        # reinstate: the suspension ends, written to the credit history.
        out = self.ok("POST", "/v1/defaults/%s/reinstate" % q("浙B30001"), city,
                      {"reason": "payment plan agreed"})
        self.assertFalse(out["suspended"])
        d = self.drv(bad)
        self.assertFalse(d["suspended"])
        history = self.ok("GET", "/v1/defaults/" + q("浙B30001"), city)["credit_history"]
        [r] = [h for h in history if h["cause"] == "reinstated"]
        self.assertEqual((r["why"], r["by"], r["was_suspended"]),
                         ("payment plan agreed", "city-clerk", True))
        st, _ = self.call("POST", "/v1/defaults/%s/reinstate" % q("浙B30001"), city,
                          {"reason": "again"})
        self.assertEqual(st, 409)  # not suspended any more
        # The next exit leaves on credit again.
        self.assertEqual(self.stay("LOT-A", "浙B30001")["reason"], "credit_ok")

        # The audit log: one entry per action, newest first, with actor, role, reason, target.
        log = self.audit()
        # The drivers' enrolments (by the admin token) are audited too: checked in
        # TestDriverAudit; here the actions on bills and drivers' credit.
        actions = [e["action"] for e in log if not e["action"].startswith("driver_")]
        self.assertEqual(actions, ["reinstate", "refund", "waive", "resolve", "dispute",
                                   "resolve", "dispute"])
        by = {e["action"] + ":" + e["target"]: e for e in log}
        self.check_entry(by["waive:" + b3], "waive", b3, "barrier fault that day", "river-desk",
                         "operator", "LOT-C", t0)
        self.check_entry(by["refund:" + paid], "refund", paid, "double charged at the gate",
                         "west-desk", "operator", "LOT-A", t0)
        self.assertEqual(by["refund:" + paid]["amount"], "100")
        self.check_entry(by["resolve:" + b2], "resolve", b2, "plate was 浙B30007", "root",
                         "admin", "LOT-B", t0)
        self.assertEqual(by["resolve:" + b2]["outcome"], "waived")
        self.check_entry(by["reinstate:" + bad], "reinstate", bad, "payment plan agreed",
                         "city-clerk", "city", "", t0)
        self.assertEqual(by["reinstate:" + bad]["plate"], "浙B30001")
        # Filters: actor, action, lot, time; paging by cursor.
        self.assertEqual({e["actor"] for e in self.audit(actor="city-clerk")}, {"city-clerk"})
        self.assertEqual(len(self.audit(actor="city-clerk")), 3)
        self.assertEqual([e["target"] for e in self.audit(lot="LOT-B")], [b2, b2])
        self.assertEqual(self.audit(to=int(t0) - 10), [])
        self.assertEqual(len([e for e in self.audit(**{"from": int(t0) - 10})
                              if not e["action"].startswith("driver_")]), 7)
        pages, cursor = [], None
        while True:
            params = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = self.ok("GET", "/v1/audit?" + urllib.parse.urlencode(params), city)
            pages += [e["id"] + e["source"] for e in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(pages, [e["id"] + e["source"] for e in log])
        # Operators see their lots' entries only.
        self.assertEqual({e["lot"] for e in self.audit(west)}, {"LOT-A", "LOT-B"})
        # Append-only: the streams are never trimmed by an action.
        n = self.redis.cmd("XLEN", "pk:{LOT-A}:audit")
        self.assertEqual(n, 3)


class TestDriverAudit(RolesCase):
    start_billing = False

    def test_enrolment_change_and_deletion_are_audited(self):
        t0 = time.time()
        cus = self.mock.customer("tok_visa")
        d = self.ok("POST", "/v1/drivers", self.tok["admin"],
                    {"id": "drv-audited", "plates": ["浙B70001"], "provider": "stripe-test",
                     "payment_ref": cus}, 201)
        self.ok("POST", "/v1/drivers", self.tok["admin"],
                {"id": "drv-audited", "plates": ["浙B70001", "浙B70002"],
                 "provider": "stripe-test", "payment_ref": cus, "score": 650}, 201)
        self.ok("DELETE", "/v1/drivers/drv-audited", self.tok["admin"], status=204)
        log = [e for e in self.audit() if e["target"] == d["id"]]
        self.assertEqual([e["action"] for e in log],
                         ["driver_delete", "driver_update", "driver_enrol"])
        for e in log:
            self.check_entry(e, e["action"], "drv-audited", "", "root", "admin", "", t0)
            self.assertEqual(e["source"], "drv:drv-audited")
            self.assertNotIn(cus, json.dumps(e))  # the payment reference is not copied
        delete, update, enrol = log
        self.assertEqual(enrol["plates"], "浙B70001")
        self.assertEqual((update["plates"], update["old_plates"], update["score"]),
                         ("浙B70001 浙B70002", "浙B70001", "650"))
        self.assertEqual(delete["plates"], "浙B70001 浙B70002")
        # The driver is gone, its audit stream is not; filters find the entries.
        st, _ = self.call("GET", "/v1/drivers/drv-audited", self.tok["admin"])
        self.assertEqual(st, 404)
        self.assertEqual(self.redis.cmd("XLEN", "pk:drv:{drv-audited}:audit"), 3)
        self.assertEqual([e["target"] for e in self.audit(action="driver_delete")],
                         ["drv-audited"])
        # Operators see their lots only, never drivers' streams.
        self.assertEqual([e for e in self.audit(self.tok["op_west"]) if e["target"] == d["id"]],
                         [])


class TestDisputeBlocksCharging(RolesCase):
    start_billing = False

    def test_disputed_bill_waits_for_staff(self):
        d, _ = self.driver("tok_visa", "浙B40001")
        drv = self.token("driver", d, "phone")
        b = self.stay("LOT-A", "浙B40001")["bill_id"]
        out = self.ok("POST", "/v1/me/bills/%s/dispute" % q(b), drv,
                      {"reason": "I was not parked that long"})
        self.assertTrue(out["disputed"])
        self.billing = Billing(self.gw)
        # Billing takes the bill in, but charges nothing while it is disputed, and it does not
        # age: not even when its default time has passed.
        harness.wait_for(lambda: self.bill(b).get("due_set") == "1", what="intake")
        time.sleep(1.5)
        self.advance(40 * DAY)
        time.sleep(1.5)
        bb = self.bill(b)
        self.assertEqual(bb["status"], "pending")
        self.assertEqual(bb["disputed"], "1")
        self.assertEqual(self.mock.charges(d), [])
        items = self.ok("GET", "/v1/defaults?status=disputed", self.tok["city"])["items"]
        self.assertEqual([(i["bill"], i["status"]) for i in items], [(b, "owed")])
        [e] = self.audit(action="dispute")
        self.check_entry(e, "dispute", b, "I was not parked that long", "phone", "driver",
                         "LOT-A")
        # Upheld: its life resumes where its times are (40 days on: defaulted, charged only
        # when someone asks); the driver pays it now.
        self.advance(-40 * DAY)
        self.ok("POST", "/v1/bills/%s/resolve" % q(b), self.tok["city"],
                {"reason": "entry photo matches", "outcome": "upheld"})
        paid = self.wait_status(b, "paid", 30)
        [charge] = self.mock.charges(d)
        self.assertEqual(charge["amount"], int(paid["amount"]))
        self.assertEqual(self.ok("GET", "/v1/defaults?status=disputed",
                                 self.tok["city"])["items"], [])


class TestDriverSelfService(RolesCase):
    def test_list_explain_pay_dispute(self):
        d, cus = self.driver("tok_chargeCustomerFail", "浙B50001")
        other, _ = self.driver("tok_visa", "浙B50002")
        me = self.token("driver", d, "my-phone")
        b1 = self.stay("LOT-A", "浙B50001", hours=3)
        b2 = self.stay("LOT-C", "浙B50001", hours=1.5)
        ob = self.stay("LOT-A", "浙B50002")["bill_id"]
        for b in (b1, b2):
            self.wait_status(b["bill_id"], "retry_scheduled")
        lst = self.ok("GET", "/v1/me/bills", me)
        self.assertEqual(lst["total"], 2)
        self.assertEqual([i["bill"] for i in lst["items"]], [b2["bill_id"], b1["bill_id"]])
        for i, b in zip(lst["items"], (b2, b1)):
            self.assertEqual(i["amount"], b["amount"])
            self.assertEqual(i["status"], "retry_scheduled")
            self.assertEqual(i["plate"], "浙B50001")
            self.assertTrue(i["exit"].endswith("+08:00"))
        self.assertEqual([i["bill"] for i in self.ok("GET", "/v1/me/bills?limit=1&offset=1",
                                                     me)["items"]], [b1["bill_id"]])
        # A bill with its explanation and reason codes.
        bill = self.ok("GET", "/v1/me/bills/" + q(b1["bill_id"]), me)
        self.assertEqual(bill["amount"], b1["amount"])
        self.assertEqual(bill["explanation"]["amount"], b1["amount"])
        self.assertTrue(bill["explanation"]["rows"])
        self.assertEqual(bill["reason_codes"][:3], ["credit_ok", "match:exact", "fee:charged"])
        self.assertIn("first_period", bill["reason_codes"])
        self.assertIn("charge declined", [h["cause"] for h in bill["history"]])
        self.assertNotIn("provider_ref", json.dumps(bill))
        me_rec = self.ok("GET", "/v1/me", me)
        self.assertEqual(me_rec["unpaid_count"], 2)
        # Another driver's bill: 403.
        st, _ = self.call("GET", "/v1/me/bills/" + q(ob), me)
        self.assertEqual(st, 403)
        # Pay: the card is fixed, the charge goes through the provider now.
        self.fix_card(cus)
        out = self.ok("POST", "/v1/me/bills/%s/pay" % q(b1["bill_id"]), me, status=202)
        self.assertEqual(out["charge"], "requested")
        paid = self.wait_status(b1["bill_id"], "paid", 30)
        charges = [c for c in self.mock.charges(d) if c["status"] == "succeeded"]
        self.assertEqual([c["id"] for c in charges], [paid["provider_ref"]])
        self.assertEqual(charges[0]["amount"], b1["amount"])
        st, _ = self.call("POST", "/v1/me/bills/%s/pay" % q(b1["bill_id"]), me)
        self.assertEqual(st, 409)
        [e] = self.audit(action="pay")
        self.check_entry(e, "pay", b1["bill_id"], "payment requested by the driver", "my-phone",
                         "driver", "LOT-A")
        # Dispute the other: no reason, 400; then disputed; a paid bill cannot be.
        st, _ = self.call("POST", "/v1/me/bills/%s/dispute" % q(b2["bill_id"]), me, {})
        self.assertEqual(st, 400)
        self.ok("POST", "/v1/me/bills/%s/dispute" % q(b2["bill_id"]), me,
                {"reason": "I left after 20 minutes"})
        bill = self.ok("GET", "/v1/me/bills/" + q(b2["bill_id"]), me)
        self.assertTrue(bill["disputed"])
        self.assertEqual(bill["dispute_reason"], "I left after 20 minutes")
        st, _ = self.call("POST", "/v1/me/bills/%s/dispute" % q(b1["bill_id"]), me,
                          {"reason": "x"})
        self.assertEqual(st, 409)
        # The disputed bill is not retried by itself (its next attempt was due in a minute).
        self.advance(5 * 60)
        time.sleep(1.5)
        self.assertEqual(self.bill(b2["bill_id"])["attempts"], "1")


class TestLaneWork(RolesCase):
    start_billing = False

    def test_remote_open_is_counted_published_and_audited(self):
        west = self.tok["op_west"]
        st, _ = self.call("POST", "/v1/lots/LOT-A/lanes/out/open", west, {})
        self.assertEqual(st, 400)
        st, _ = self.call("POST", "/v1/lots/LOT-A/lanes/nope/open", west, {"reason": "x"})
        self.assertEqual(st, 404)
        st, _ = self.call("POST", "/v1/lots/LOT-C/lanes/out/open", west, {"reason": "x"})
        self.assertEqual(st, 403)
        out = self.ok("POST", "/v1/lots/LOT-A/lanes/out/open", west,
                      {"reason": "ambulance leaving"}, 202)
        [cmd] = self.redis.cmd("XRANGE", "pk:{LOT-A}:lane_commands", "-", "+")
        f = dict(zip(cmd[1][::2], cmd[1][1::2]))
        self.assertEqual(cmd[0], out["command_id"])
        self.assertEqual((f["command"], f["lane"], f["reason"], f["actor"]),
                         ("open", "out", "ambulance leaving", "west-desk"))
        day = self.redis.hgetall("pk:{LOT-A}:day:" + date_of(time.time()))
        self.assertEqual(day["manual_open"], "1")
        self.assertEqual(day["manual_open:out"], "1")
        [e] = self.audit(west)
        self.check_entry(e, "lane_open", "LOT-A/out", "ambulance leaving", "west-desk",
                         "operator", "LOT-A")
        self.assertEqual(e["command"], out["command_id"])

    def test_runtime_passes_and_allow_list(self):
        river, west = self.tok["op_river"], self.tok["op_west"]
        today = date_of(time.time())
        now = int(time.time())
        self.driver("tok_visa", "浙B60001")
        body = {"plate": "浙B·60001", "from": today, "to": today, "reason": "monthly, paid cash"}
        self.ok("POST", "/v1/lots/LOT-C/passes", river, body, 201)
        s, a = self.gw.event("dev-c", ev("LOT-C", "in", "entry", "浙B60001", iso(now - 2 * H)))
        self.assertEqual(a["reason"], "pass", a)
        s, b = self.gw.event("dev-c", ev("LOT-C", "out", "exit", "浙B60001", iso(now - 60)))
        self.assertEqual((b["decision"], b["reason"], b["bill_id"]), ("open", "pass", None), b)
        passes = self.ok("GET", "/v1/lots/LOT-C/passes", self.tok["city"])["passes"]
        self.assertEqual(passes, [{"plate": "浙B60001", "from": today, "to": today,
                                   "source": "runtime"}])
        # A pass for yesterday only does not open today.
        yesterday = date_of(time.time() - DAY)
        self.ok("POST", "/v1/lots/LOT-C/passes", river,
                dict(body, **{"from": yesterday, "to": yesterday}), 200)
        s, a = self.gw.event("dev-c", ev("LOT-C", "in", "entry", "浙B60001", iso(now - 30)))
        self.assertEqual(a["reason"], "entry", a)
        st, _ = self.call("DELETE", "/v1/lots/LOT-C/passes/" + q("浙B60001"), river, {})
        self.assertEqual(st, 400)
        self.ok("DELETE", "/v1/lots/LOT-C/passes/" + q("浙B60001"), river,
                {"reason": "pass cancelled"})
        st, _ = self.call("DELETE", "/v1/lots/LOT-C/passes/%s?reason=x" % q("浙B60001"), river)
        self.assertEqual(st, 404)
        # The allow-list: an entered session leaves with `pass` once its plate is allowed.
        s, a = self.gw.event("dev-a-in", ev("LOT-A", "in", "entry", "浙B60002", iso(now - H)))
        self.assertEqual(a["reason"], "entry", a)
        self.ok("POST", "/v1/lots/LOT-A/allow", west, {"plate": "浙B60002",
                                                       "reason": "city vehicle"}, 201)
        s, b = self.gw.event("dev-a-out", ev("LOT-A", "out", "exit", "浙B60002", iso(now - 10)))
        self.assertEqual((b["decision"], b["reason"]), ("open", "pass"), b)
        allow = self.ok("GET", "/v1/lots/LOT-A/allow", west)["allow"]
        self.assertIn({"plate": "浙B60002", "source": "runtime"}, allow)
        self.assertIn({"plate": "浙A0G9P3", "source": "config"}, allow)
        st, _ = self.call("DELETE", "/v1/lots/LOT-A/allow/%s?reason=x" % q("浙A0G9P3"), west)
        self.assertEqual(st, 409)  # the configuration's: changed in the file
        self.ok("DELETE", "/v1/lots/LOT-A/allow/%s?reason=%s" % (q("浙B60002"), q("done")), west)
        actions = [(e["action"], e["target"], e["reason"]) for e in self.audit()
                   if not e["action"].startswith("driver_")]
        self.assertEqual(actions, [
            ("allow_del", "LOT-A/浙B60002", "done"),
            ("allow_add", "LOT-A/浙B60002", "city vehicle"),
            ("pass_del", "LOT-C/浙B60001", "pass cancelled"),
            ("pass_add", "LOT-C/浙B60001", "monthly, paid cash"),
            ("pass_add", "LOT-C/浙B60001", "monthly, paid cash")])

    def test_reassign_a_misread_exit(self):
        west = self.tok["op_west"]
        p1, _ = self.driver("tok_visa", "浙B70001")
        p2, _ = self.driver("tok_visa", "浙B70002")
        now = int(time.time())
        s, e1 = self.gw.event("dev-a-in", ev("LOT-A", "in", "entry", "浙B70001", iso(now - 5 * H)))
        s, e2 = self.gw.event("dev-a-in", ev("LOT-A", "in", "entry", "浙B70002", iso(now - 2 * H)))
        # The camera read car 2's exit as car 1: session 1 is closed and billed to driver 1.
        s, x = self.gw.event("dev-a-out", ev("LOT-A", "out", "exit", "浙B70001", iso(now - 60)))
        self.assertEqual((x["reason"], x["session_id"]), ("credit_ok", e1["session_id"]), x)
        harness.wait_for(lambda: self.drv(p1)["unpaid_count"] == 1)
        st, _ = self.call("POST", "/v1/sessions/%s/reassign" % q(x["session_id"]), west,
                          {"to_session": e2["session_id"]})
        self.assertEqual(st, 400)
        st, _ = self.call("POST", "/v1/sessions/%s/reassign" % q(x["session_id"]),
                          self.tok["op_river"],
                          {"to_session": e2["session_id"], "reason": "x"})
        self.assertEqual(st, 403)
        out = self.ok("POST", "/v1/sessions/%s/reassign" % q(x["session_id"]), west,
                      {"to_session": e2["session_id"], "reason": "CCTV shows car 2 leaving"})
        self.assertEqual(out["reassigned_to"], e2["session_id"])
        self.assertEqual(out["void_bill"], x["bill_id"])
        # Car 2's bill: its own two hours, by the tariff engine.
        fee = json.loads(subprocess.run(
            [os.path.join(harness.BIN, "parkctl"), "fee", "--tariff",
             os.path.join(self.gw.dir, "tariffs", "test-core.json"), "--entry", iso(now - 2 * H),
             "--exit", iso(now - 60), "--json"], capture_output=True, timeout=10).stdout)
        self.assertEqual(out["amount"], fee["amount"])
        self.assertNotEqual(out["amount"], x["amount"])
        b2 = self.bill(out["bill"])
        self.assertEqual((b2["status"], b2["driver"], b2["plate"], b2["amount"]),
                         ("pending", p2, "浙B70002", str(fee["amount"])))
        self.assertEqual(b2["explanation"]["amount"], fee["amount"])
        self.assertEqual(b2["history"][-1]["cause"],
                         "exit reassigned from %s: CCTV shows car 2 leaving" % x["session_id"])
        b1 = self.bill(x["bill_id"])
        self.assertEqual(b1["status"], "reassigned")
        self.assertEqual(b1["history"][-1]["cause"],
                         "exit reassigned to %s: CCTV shows car 2 leaving" % e2["session_id"])
        # The exit's lot-day: one bill, of the recomputed amount, still owed; one correction.
        day = self.redis.hgetall("pk:{LOT-A}:day:" + date_of(now - 60))
        self.assertEqual((day["bills"], day["billed"], day["outstanding"], day["reassigned"]),
                         ("1", str(fee["amount"]), str(fee["amount"]), "1"))
        # Drivers: 1 owes nothing, 2 owes its bill.  Car 1 is inside again: its exit opens.
        harness.wait_for(lambda: self.drv(p1)["unpaid_count"] == 0, what="driver 1 settled")
        harness.wait_for(lambda: self.drv(p2)["unpaid_amount"] == fee["amount"],
                         what="driver 2 billed")
        s, again = self.gw.event("dev-a-out", ev("LOT-A", "out", "exit", "浙B70001", iso(now)))
        self.assertEqual((again["session_id"], again["match"]), (e1["session_id"], "exact"))
        [e] = self.audit(west, action="reassign")
        self.check_entry(e, "reassign", x["session_id"], "CCTV shows car 2 leaving", "west-desk",
                         "operator", "LOT-A")
        self.assertEqual(e["to_session"], e2["session_id"])
        # Not twice, and not onto a closed session.
        st, _ = self.call("POST", "/v1/sessions/%s/reassign" % q(x["session_id"]), west,
                          {"to_session": e2["session_id"], "reason": "again"})
        self.assertEqual(st, 409)


if __name__ == "__main__":
    unittest.main()
