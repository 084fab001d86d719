#!/usr/bin/env python3
"""Second-factor latency on the embedded default (SQLite, in-process workers, outbox).

Starts `gatehouse serve --demo` in a temporary directory on 127.0.0.1, creates N staff
users through the admin API, enrolls each in email codes, then signs each in once and
measures, per sign-in:
  - POST /v1/auth/login (password + code issued and queued),
  - login answer -> the code's line in the outbox file (the outbox stands in for the
    provider call),
  - POST .../verify with the code (to the session).
Bounded: N users (default 20, at most 200), one client, stops by itself. Traffic goes only
to 127.0.0.1. Standard library only.

    python3 loadtests/mfa_latency.py --binary target/release/gatehouse [--users 20]
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ADMIN = ("demo-clinic", "admin", "Harbor-Lights-2026!")
NEW_PASSWORD = "Autumn-River-Stone-42!"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


class Outbox:
    """Follows the outbox file; answers lines as they appear."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def mark(self):
        self.offset = os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def wait_line(self, to, limit=10.0):
        deadline = time.perf_counter() + limit
        buf = b""
        while time.perf_counter() < deadline:
            if os.path.exists(self.path) and os.path.getsize(self.path) > self.offset:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    chunk = f.read()
                buf += chunk
                self.offset += len(chunk)
                *lines, buf = buf.split(b"\n")
                self.offset -= len(buf)
                buf = b""
                for line in lines:
                    msg = json.loads(line)
                    if msg["to"] == to:
                        return time.perf_counter(), msg
            time.sleep(0.0005)
        raise SystemExit(f"no outbox line to {to} within {limit} s")


def code_of(msg):
    return re.search(r"\b(\d{6})\b", msg["body"]).group(1)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report(name, xs):
    ms = [x * 1000 for x in xs]
    print(f"  {name:<34} median {statistics.median(ms):7.2f} ms   p95 {pct(ms, 95):7.2f} ms   max {max(ms):7.2f} ms   (n={len(ms)})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/gatehouse")
    ap.add_argument("--users", type=int, default=20)
    args = ap.parse_args()
    n = max(1, min(args.users, 200))
    binary = os.path.abspath(args.binary)
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        env = dict(os.environ, GATEHOUSE_LISTEN=f"127.0.0.1:{port}", GATEHOUSE_LOG_FORMAT="json",
                   GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE="0", RUST_LOG="warn")
        started = time.perf_counter()
        proc = subprocess.Popen([binary, "serve", "--demo"], cwd=d, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            c = Client(f"http://127.0.0.1:{port}")
            while True:
                try:
                    if c.call("GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                if time.perf_counter() - started > 15:
                    raise SystemExit("gatehouse did not become ready")
                time.sleep(0.01)
            print(f"ready after {(time.perf_counter() - started) * 1000:.0f} ms (includes migrations and demo seed)")
            outbox = Outbox(os.path.join(d, "gatehouse-outbox.jsonl"))

            # The admin signs in with an email code.
            outbox.mark()
            st, flow = c.call("POST", "/v1/auth/login", dict(zip(("company", "username", "password"), ADMIN)))
            assert st == 200 and flow["status"] == "mfa_required", flow
            _, msg = outbox.wait_line("admin@demo-clinic.example.com")
            st, done = c.call("POST", f"/v1/auth/flows/{flow['flow_id']}/verify", {"method": "code", "code": code_of(msg)})
            assert st == 200 and done["status"] == "authenticated", done
            admin = done["session"]["token"]

            users = [f"lat.user{i:03d}" for i in range(n)]
            for u in users:
                st, body = c.call("POST", "/v1/tenants/demo-clinic/users", {
                    "username": u, "first_name": "Lat", "last_name": "User", "role": "staff",
                    "email": f"{u}@example.com", "password": "Temporary-Pass-1234!"}, admin)
                assert st == 201, body
                st, flow = c.call("POST", "/v1/auth/login", {"company": "demo-clinic", "username": u, "password": "Temporary-Pass-1234!"})
                fid = flow["flow_id"]
                st, flow = c.call("POST", f"/v1/auth/flows/{fid}/password", {"new_password": NEW_PASSWORD})
                assert flow["status"] == "mfa_enrollment_required", flow
                outbox.mark()
                st, _ = c.call("POST", f"/v1/auth/flows/{fid}/enroll/email", {})
                assert st == 202
                _, msg = outbox.wait_line(f"{u}@example.com")
                st, done = c.call("POST", f"/v1/auth/flows/{fid}/enroll/email/confirm", {"code": code_of(msg)})
                assert done["status"] == "authenticated", done

            login_t, to_outbox, verify_t = [], [], []
            for u in users:
                outbox.mark()
                t0 = time.perf_counter()
                st, flow = c.call("POST", "/v1/auth/login", {"company": "demo-clinic", "username": u, "password": NEW_PASSWORD})
                t1 = time.perf_counter()
                assert st == 200 and flow["mfa"]["code_sent"], flow
                seen, msg = outbox.wait_line(f"{u}@example.com")
                t2 = time.perf_counter()
                st, done = c.call("POST", f"/v1/auth/flows/{flow['flow_id']}/verify", {"method": "code", "code": code_of(msg)})
                t3 = time.perf_counter()
                assert done["status"] == "authenticated", done
                login_t.append(t1 - t0)
                to_outbox.append(seen - t1)
                verify_t.append(t3 - t2)
            print(f"{n} sign-ins with an email code, one client, release build, embedded default:")
            report("POST /v1/auth/login (code queued)", login_t)
            report("login answer -> outbox line", to_outbox)
            report("POST .../verify (to session)", verify_t)
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
