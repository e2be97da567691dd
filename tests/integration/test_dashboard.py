"""The web dashboard (docs/dashboard.md) in a real browser: Debian's headless Chromium driven by
playwright-core (npm) from tests/browser/dashboard.test.mjs (node:test), against a real
redis-server (a one-node cluster), the real gateway serving web/ and the people's API, billing and
the stripe-stateful-mock peer (npm), with tokens made by `parkctl token create`.

This file builds the city the browser looks at (two operators, paid bills on two days, a default
and an overdue bill of a driver whose card is declined, a driver with an owed bill whose fee spans
the day and night bands with a cap), then runs the browser tests with the addresses, tokens and
ids in the environment.  Screenshots go to $PARK_ARTIFACTS_DIR (build/test-artifacts/dashboard).

PARK_DASHBOARD_HOLD=1 keeps everything running after the browser tests and prints the links, to
look at the dashboard by hand (Ctrl-C ends it).
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness
from harness import Billing, Gateway, Redis, StripeMock, ev, iso

H = 3600
DAY = 86400
LANES = {"LOT-A": ("dev-a-in", "dev-a-out"), "LOT-B": ("dev-b", "dev-b"),
         "LOT-C": ("dev-c", "dev-c")}
CHROMIUM = os.environ.get("PARK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = os.environ.get("PARK_ARTIFACTS_DIR",
                           os.path.join(harness.ROOT, "build", "test-artifacts", "dashboard"))
SCRIPT = os.path.join(harness.ROOT, "tests", "browser", "dashboard.test.mjs")


def q(s):
    return urllib.parse.quote(s, safe="")


def parkctl(*args):
    return subprocess.run([os.path.join(harness.BIN, "parkctl")] + list(args), capture_output=True,
                          timeout=60)


class DashboardTest(unittest.TestCase):
    def setUp(self):
        if not os.access(CHROMIUM, os.X_OK):
            self.fail("%s is not installed: scripts/install-deps installs Debian's chromium"
                      % CHROMIUM)
        if not os.path.isdir(os.path.join(harness.ROOT, "node_modules", "playwright-core")):
            self.fail("playwright-core is not installed: run npm ci (scripts/install-peers)")
        self.web_root = os.path.join(harness.BIN, "..", "share", "park", "web")
        if not os.path.isfile(os.path.join(self.web_root, "index.html")):
            self.fail("the dashboard is not built into %s (scripts/build)" % self.web_root)
        self.cleanup = []
        self.redis = Redis()
        self.cleanup.append(self.redis.destroy)
        self.mock = StripeMock()
        self.cleanup.append(self.mock.destroy)
        self.overrides = {
            "providers.0.base_url": "http://127.0.0.1:%d" % self.mock.port,
            "providers.0.timeout_ms": 3000,
            "operators": [{"id": "op-west", "name": "West"}, {"id": "op-river", "name": "River"}],
            "lots.0.operator": "op-west", "lots.0.name": "西湖文化广场",
            "lots.1.operator": "op-west", "lots.1.name": "湖滨银泰", "lots.1.capacity": 50,
            "lots.2.operator": "op-river", "lots.2.name": "江南大道",
            "credit_policy": {"min_score": 600, "max_unpaid_bills": 10,
                              "max_unpaid_amount": 1000000, "max_fee": 100000,
                              "retry_minutes": [1, 2], "grace_hours": 72,
                              "default_after_days": 30, "score_paid_on_time": 1,
                              "score_paid_late": -10, "score_default": -100,
                              "first_default_free_months": 12, "suspend_when_overdue": True},
        }
        self.gw = Gateway(self.redis, self.overrides)
        self.cleanup.append(self.gw.destroy)
        self.billing = Billing(self.gw)
        self.cleanup.append(self.billing.destroy)

    def tearDown(self):
        for fn in reversed(self.cleanup):
            fn()

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

    def ok(self, method, path, body=None, status=200, token=harness.ADMIN_TOKEN):
        st, out = self.gw.admin(method, path, body, token)
        self.assertEqual(st, status, "%s %s: %s" % (method, path, out))
        return out

    def driver(self, card, plate, name):
        cus = self.mock.customer(card)
        d = self.ok("POST", "/v1/drivers", {"id": name, "plates": [plate],
                                            "provider": "stripe-test", "payment_ref": cus}, 201)
        return d["id"]

    def stay(self, lot, plate, start, end):
        din, dout = LANES[lot]
        s, a = self.gw.event(din, ev(lot, "in", "entry", plate, iso(start)))
        self.assertEqual(s, 200, a)
        s, b = self.gw.event(dout, ev(lot, "out", "exit", plate, iso(end)))
        self.assertEqual(s, 200, b)
        self.assertEqual(b["decision"], "open", b)
        return b["bill_id"]

    def status(self, bill):
        return self.ok("GET", "/v1/bills/" + q(bill))["status"]

    def wait_status(self, bill, statuses, timeout=30):
        harness.wait_for(lambda: self.status(bill) in statuses, timeout,
                         "bill %s to become %s (is %s)" % (bill, statuses, self.status(bill)))

    def build_city(self):
        now = int(time.time())
        # Billing waits while the exits leave on credit (a declined card would suspend the
        # driver before the next exit).
        self.billing.stop()
        good = self.driver("tok_visa", "浙B50001", "drv-good")
        bad = self.driver("tok_chargeCustomerFail", "浙B50002", "drv-bad")
        owes = self.driver("tok_chargeCustomerFail", "浙A7D2Q8", "drv-owes")
        paid = [
            self.stay("LOT-A", "浙B50001", now - 2 * DAY - 3 * H, now - 2 * DAY - 1 * H),
            self.stay("LOT-B", "浙B50001", now - 2 * DAY + 60, now - 2 * DAY + 60 + 5 * H),
            self.stay("LOT-A", "浙B50001", now - 1 * DAY - 4 * H, now - 1 * DAY),
            self.stay("LOT-C", "浙B50001", now - 1 * DAY + 60, now - 1 * DAY + 60 + 2 * H),
            self.stay("LOT-B", "浙B50001", now - 3 * H, now - 60),
        ]
        defaulted = self.stay("LOT-A", "浙B50002", now - 40 * DAY - 3 * H, now - 40 * DAY)
        overdue = self.stay("LOT-B", "浙B50002", now - 5 * DAY - 2 * H, now - 5 * DAY)
        # Yesterday from 04:00 to 18:00 local time (whatever the time now): the first period in the
        # night band, night and day rows, the night band's cap and the 24-hour cap.
        midnight = (now + 8 * H) // DAY * DAY - 8 * H
        owed = self.stay("LOT-A", "浙A7D2Q8", midnight - DAY + 4 * H, midnight - DAY + 18 * H)
        # A car still parked: the lot's occupancy is not all zeros.
        s, a = self.gw.event("dev-a-in", ev("LOT-A", "in", "entry", "浙B50009", iso(now - 600)))
        self.assertEqual(s, 200, a)
        self.billing.start()
        for b in paid:
            self.wait_status(b, ("paid",))
        self.wait_status(defaulted, ("defaulted",))
        self.wait_status(overdue, ("overdue",))
        self.wait_status(owed, ("retry_scheduled", "failed"))
        return {"drivers": {"good": good, "bad": bad, "owes": owes},
                "bills": {"paid": paid, "defaulted": defaulted, "overdue": overdue,
                          "owed": owed},
                "plates": {"good": "浙B50001", "bad": "浙B50002", "owes": "浙A7D2Q8"},
                "lots": {"op-west": ["LOT-A", "LOT-B"], "op-river": ["LOT-C"]}}

    def nochart_root(self):
        """A copy of the web root without ECharts, with links that lead out of it."""
        d = tempfile.mkdtemp(prefix="park-web-")
        self.cleanup.append(lambda: shutil.rmtree(d, ignore_errors=True))
        root = os.path.join(d, "web")
        shutil.copytree(self.web_root, root, ignore=shutil.ignore_patterns("vendor"))
        with open(os.path.join(d, "secret.txt"), "w") as f:
            f.write("outside the web root\n")
        os.symlink(os.path.join(d, "secret.txt"), os.path.join(root, "leak.txt"))
        os.symlink(d, os.path.join(root, "up"))
        return root

    def test_dashboard(self):
        t0 = time.time()
        fixture = self.build_city()
        tokens = {"admin": self.token("admin", name="root"),
                  "city": self.token("city", name="city-clerk"),
                  "op_west": self.token("operator", "op-west", "west-desk"),
                  "op_river": self.token("operator", "op-river", "river-desk"),
                  "driver": self.token("driver", fixture["drivers"]["owes"], "owes-phone"),
                  "driver_good": self.token("driver", fixture["drivers"]["good"], "good-phone")}
        # A second gateway on the same city whose web root lacks the chart library.
        nochart = Gateway(self.redis, dict(self.overrides, **{"gateway.web_root":
                                                              self.nochart_root()}))
        self.cleanup.append(nochart.destroy)
        t1 = time.time()

        # A web_root that is set but cannot be read stops the gateway from starting.
        cfg = json.load(open(self.gw.config_path))
        cfg["gateway"]["web_root"] = "no-such-folder"
        bad_cfg = os.path.join(self.gw.dir, "bad-web-root.json")
        with open(bad_cfg, "w") as f:
            json.dump(cfg, f, ensure_ascii=False)
        out = subprocess.run([os.path.join(harness.BIN, "gateway"), "--config", bad_cfg],
                             capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn(b"no-such-folder", out.stderr)

        os.makedirs(ARTIFACTS, exist_ok=True)
        env = dict(os.environ,
                   PARK_URL="http://127.0.0.1:%d" % self.gw.port,
                   PARK_URL_NOCHART="http://127.0.0.1:%d" % nochart.port,
                   PARK_TOKENS=json.dumps(tokens), PARK_FIXTURE=json.dumps(fixture,
                                                                           ensure_ascii=False),
                   PARK_ARTIFACTS_DIR=ARTIFACTS, PARK_CHROMIUM=CHROMIUM)
        run = subprocess.run(["node", "--test-reporter=spec", SCRIPT], cwd=harness.ROOT,
                             env=env, capture_output=True, timeout=240)
        t2 = time.time()
        print(run.stdout.decode("utf-8", "replace"))
        print(run.stderr.decode("utf-8", "replace"))
        print("dashboard: city built in %.1f s, browser tests %.1f s; screenshots in %s"
              % (t1 - t0, t2 - t1, ARTIFACTS))
        if os.environ.get("PARK_DASHBOARD_HOLD") == "1":
            print("holding: %s/dashboard/#token=%s (Ctrl-C ends)" % (env["PARK_URL"],
                                                                    tokens["admin"]))
            for role, t in tokens.items():
                print("  %-12s %s/dashboard/#token=%s" % (role, env["PARK_URL"], t))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        if run.returncode != 0:
            self.fail("browser tests failed (exit %d); gateway log tail:\n%s"
                      % (run.returncode, self.gw.logs()[-3000:]))
        # The actions the browser took are in the records, not only on the screen.
        bills = fixture["bills"]
        self.assertEqual(self.status(bills["defaulted"]), "waived")
        self.assertEqual(self.ok("GET", "/v1/bills/" + q(bills["owed"]))["disputed"], "1")


if __name__ == "__main__":
    unittest.main()
