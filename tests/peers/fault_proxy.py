"""A fault-injecting HTTP proxy for tests: forwards every request to an upstream (the Stripe API
mock) unchanged, except when told to misbehave.  What the mock cannot do, this does: 429 and 5xx
answers, slow answers, and answers that never come.

    python3 fault_proxy.py --port N --upstream http://127.0.0.1:M

Control (plain HTTP on the same port, path prefix /_faults):
    POST /_faults  {"plan": [{"status": 429}, {"status": 500}, {"delay_ms": 1500},
                             {"hang": true}, {"pass": true}]}
        each forwarded request takes the next step of the plan (then the plan is empty: pass);
        "status" answers without forwarding; "delay_ms" forwards, then waits before answering;
        "delay_before_ms" waits, then forwards; "hang" never answers (the client times out).
    GET  /_faults  {"plan": [...left...], "forwarded": N, "injected": N, "requests": [...],
                    "in_flight": N, "max_in_flight": N}
        in_flight: requests received and not yet answered; max_in_flight: the most there were at
        once since the last POST (which sets it to the requests in flight then).
"""
import argparse
import http.client
import http.server
import json
import socketserver
import threading
import time
import urllib.parse

lock = threading.Lock()
state = {"plan": [], "forwarded": 0, "injected": 0, "requests": [], "in_flight": 0,
         "max_in_flight": 0}
KEYS = ("plan", "forwarded", "injected", "requests", "in_flight", "max_in_flight")
UPSTREAM = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body of an answer are two writes: with Nagle's algorithm the body waits
    # for the client's delayed ACK of the head (40 ms on Linux), which added 40 ms or more to
    # every answer, a delay nobody asked for.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _control(self, body):
        with lock:
            if self.command == "POST":
                state["plan"] = json.loads(body or b"{}").get("plan", [])
                state["max_in_flight"] = state["in_flight"]
            out = json.dumps({k: state[k] for k in KEYS})
        self._send(200, out.encode(), [("Content-Type", "application/json")])

    def _any(self):
        body = self._body()
        if self.path.startswith("/_faults"):
            return self._control(body)
        with lock:
            step = state["plan"].pop(0) if state["plan"] else {"pass": True}
            state["requests"].append({"method": self.command, "path": self.path,
                                      "idempotency_key": self.headers.get("Idempotency-Key"),
                                      "step": step})
        if step.get("hang"):
            with lock:
                state["injected"] += 1
            time.sleep(30)
            self.close_connection = True
            return
        if "status" in step:
            with lock:
                state["injected"] += 1
            err = {"error": {"type": "api_error", "message": "injected by the test proxy"}}
            if step["status"] == 429:
                err = {"error": {"type": "invalid_request_error", "code": "rate_limit",
                                 "message": "Too many requests (injected)"}}
            return self._send(step["status"], json.dumps(err).encode(),
                              [("Content-Type", "application/json")])
        time.sleep(step.get("delay_before_ms", 0) / 1000)
        u = urllib.parse.urlparse(UPSTREAM)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        with lock:
            state["forwarded"] += 1
        time.sleep(step.get("delay_ms", 0) / 1000)
        self._send(r.status, data, r.getheaders())

    def _counted(self):
        """_any, counted in in_flight while it runs (control requests excepted)."""
        if self.path.startswith("/_faults"):
            return self._any()
        with lock:
            state["in_flight"] += 1
            state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            self._any()
        finally:
            with lock:
                state["in_flight"] -= 1

    def _guarded(self):
        try:
            self._counted()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout the test asked for)

    do_GET = do_POST = do_DELETE = do_PUT = _guarded


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a client opening its connections all at once is not refused


def main():
    global UPSTREAM
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    args = ap.parse_args()
    UPSTREAM = args.upstream
    srv = Server(("127.0.0.1", args.port), Handler)
    print("listening %d" % args.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
