#!/usr/bin/env python3
"""What tracing costs on the session-check path (A2), measured in one run.

Starts `gatehouse serve --demo` (embedded default) on 127.0.0.1 twice per round: once
without an OTLP endpoint (no tracing layer: spans are never built) and once exporting
traces and metrics over OTLP/HTTP to a sink in this script that answers every export with
200. Each time, signs the demo admin in (email code read from the outbox), then drives
`GET /v1/auth/session` (a session-cache hit: the EHR's hot path) with wrk for a fixed
time, and reads requests per second and latency. Rounds alternate the two settings so that
drift of the machine hits both alike; the table shows each round and the medians.

Bounded: `--rounds` (default 3, at most 10) of `--seconds` (default 10, at most 60) per
setting; stops by itself; traffic only to 127.0.0.1. Needs wrk (Debian package `wrk`).

    cargo build --release -p gatehouse
    python3 loadtests/tracing_overhead.py --binary target/release/gatehouse
"""

import argparse
import http.server
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ADMIN = ("demo-clinic", "admin", "Harbor-Lights-2026!")
ADMIN_EMAIL = "admin@demo-clinic.example.com"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
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


class Sink:
    """An OTLP/HTTP endpoint that takes every export (and counts them)."""

    def __init__(self):
        self.requests = 0
        self.bytes = 0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                self.rfile.read(n)
                sink.requests += 1
                sink.bytes += n
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def wait_ready(base, proc, limit=20.0):
    start = time.time()
    while time.time() - start < limit:
        if proc.poll() is not None:
            sys.exit("gatehouse exited with %s" % proc.returncode)
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("gatehouse not ready within %ss" % limit)


def code_for(outbox, to, mark, limit=10.0):
    start = time.time()
    while time.time() - start < limit:
        try:
            with open(outbox) as f:
                lines = f.read().splitlines()[mark:]
        except FileNotFoundError:
            lines = []
        for line in reversed(lines):
            msg = json.loads(line)
            if msg["to"] == to:
                return re.search(r"\b(\d{6})\b", msg["body"]).group(1)
        time.sleep(0.02)
    sys.exit("no code for %s in the outbox" % to)


def outbox_len(outbox):
    try:
        with open(outbox) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def admin_token(base, outbox):
    mark = outbox_len(outbox)
    company, user, password = ADMIN
    status, flow = call(base, "POST", "/v1/auth/login",
                        {"company": company, "username": user, "password": password})
    assert status == 200 and flow["status"] == "mfa_required", flow
    code = code_for(outbox, ADMIN_EMAIL, mark)
    status, done = call(base, "POST", "/v1/auth/flows/%s/verify" % flow["flow_id"],
                        {"method": "code", "code": code})
    assert status == 200 and done["status"] == "authenticated", done
    return done["session"]["token"]


def wrk(base, token, seconds, threads, connections):
    out = subprocess.run(
        ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--latency",
         "-H", "Authorization: Bearer " + token, base + "/v1/auth/session"],
        check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(r"\s%s\s+([\d.]+)(us|ms|s)\b" % re.escape(label), out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit("wrk saw %s failed session checks:\n%s" % (errors.group(1), out))
    return rps, ms("50%"), ms("99%")


def run_once(binary, exporting, sink, seconds, threads, connections, rust_log, otel_env):
    work = tempfile.mkdtemp(prefix="gh-overhead-")
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("OTEL_"):
            del env[k]
    env.update({"GATEHOUSE_LISTEN": "127.0.0.1:%d" % port, "GATEHOUSE_LOG_FORMAT": "json",
                "RUST_LOG": rust_log})
    if exporting:
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
        env.update(otel_env)
    log = open(os.path.join(work, "stderr.log"), "w")
    proc = subprocess.Popen([binary, "serve", "--demo"], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_ready(base, proc)
        token = admin_token(base, os.path.join(work, "gatehouse-outbox.jsonl"))
        wrk(base, token, 2, threads, connections)  # warm-up
        before = sink.requests
        result = wrk(base, token, seconds, threads, connections)
        exports = sink.requests - before
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    with open(os.path.join(work, "stderr.log")) as f:
        dropped = [l for l in f if "Dropp" in l or "dropped" in l]
    shutil.rmtree(work, ignore_errors=True)
    return result + (exports, len(dropped))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default="target/release/gatehouse")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--rust-log", default="info",
                   help="the servers' log filter (info: one access line per request)")
    p.add_argument("--otel", action="append", default=[], metavar="OTEL_X=value",
                   help="more variables for the exporting server, e.g. "
                        "OTEL_TRACES_SAMPLER=parentbased_traceidratio")
    a = p.parse_args()
    binary = os.path.abspath(a.binary)  # the server runs in a directory of its own
    rounds = max(1, min(a.rounds, 10))
    seconds = max(1, min(a.seconds, 60))
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    otel_env = {}
    for kv in a.otel:
        k, _, v = kv.partition("=")
        if not k.startswith("OTEL_"):
            sys.exit("--otel takes OTEL_* variables: %s" % kv)
        otel_env[k] = v
    sink = Sink()
    rows = {"off": [], "otlp": []}
    for r in range(rounds):
        for setting in ("off", "otlp"):
            rps, p50, p99, exports, dropped = run_once(
                binary, setting == "otlp", sink, seconds, a.threads, a.connections,
                a.rust_log, otel_env)
            rows[setting].append(rps)
            print("round %d %-4s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  exports %d%s" % (
                r + 1, setting, rps, p50, p99, exports,
                "  (spans dropped: see the log)" if dropped else ""), flush=True)
    off = statistics.median(rows["off"])
    on = statistics.median(rows["otlp"])
    print()
    print("| GET /v1/auth/session (cache hit), wrk -t%d -c%d, %d s x %d rounds | req/s (median) |"
          % (a.threads, a.connections, seconds, rounds))
    print("|---|---|")
    print("| no OTLP endpoint (tracing off) | %.0f |" % off)
    what = " ".join(a.otel) or "every request traced"
    print("| OTLP/HTTP exporter to a local sink (%s) | %.0f (%.1f%% of off) |"
          % (what, on, 100.0 * on / off))


if __name__ == "__main__":
    main()
