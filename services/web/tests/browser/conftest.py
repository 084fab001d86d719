"""Browser tests of the pages (web.md "How it is tested").

Playwright for Python drives Debian's chromium (never a downloaded browser), headless,
against the real `gatehouse serve --demo` binary on a random port, once on SQLite and
once on PostgreSQL. Codes are read from the outbox; authenticator codes come from
pyotp, an implementation nobody here wrote.
"""

import base64
import http.server
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[4]
BIN = Path(os.environ.get("GATEHOUSE_BIN", ROOT / "target" / "debug" / "gatehouse"))
CHROMIUM = os.environ.get("GATEHOUSE_CHROMIUM", "/usr/bin/chromium")
POSTGRES_URL = os.environ.get(
    "GATEHOUSE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
SCREENSHOTS = Path(os.environ.get("GATEHOUSE_SCREENSHOTS", ROOT / "target" / "screenshots"))

# The demo accounts `serve --demo` seeds (README).
COMPANY = "demo-clinic"
ADMIN = ("admin", "Harbor-Lights-2026!")
NURSE = ("nurse.joy", "Quiet-Meadow-2026!")
DOCTOR = ("dr.house", "Silver-Canyon-2026!")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gatehouse:
    """One running `gatehouse serve --demo`."""

    url: str
    api: str
    outbox: Path
    database: str
    log: Path  # what the process printed (stdout and stderr)

    def outbox_lines(self):
        if not self.outbox.exists():
            return []
        text = self.outbox.read_text()
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def mark(self) -> int:
        return len(self.outbox_lines())

    def code_after(self, mark: int, channel: str, timeout: float = 10.0) -> str:
        """The code of the newest `channel` message after line `mark`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [l for l in self.outbox_lines()[mark:] if l["channel"] == channel]
            if lines:
                words = lines[-1]["body"].split()
                return next(w for w in words if len(w) == 6 and w.isdigit())
            time.sleep(0.05)
        raise AssertionError(f"no {channel} message in the outbox after line {mark}")

    def demo_client_secret(self, timeout: float = 10.0) -> str:
        """The secret of the confidential demo OIDC client, as `serve --demo` printed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"client_secret (\S+)", self.log.read_text())
            if found:
                return found.group(1)
            time.sleep(0.05)
        raise AssertionError(f"`serve --demo` printed no client_secret:\n{self.log.read_text()[-4000:]}")


def _psql(sql: str):
    subprocess.run(["psql", POSTGRES_URL, "-q", "-c", sql], check=True, capture_output=True)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gatehouse(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"gatehouse-{request.param}")
    port = free_port()
    if request.param == "postgres":
        name = f"gh_browser_{secrets.token_hex(6)}"
        _psql(f"CREATE DATABASE {name}")
        database = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    else:
        name = None
        database = f"sqlite://{d}/gatehouse.db?mode=rwc"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(
        GATEHOUSE_LISTEN=f"127.0.0.1:{port}",
        GATEHOUSE_DATABASE_URL=database,
        GATEHOUSE_OUTBOX_PATH=str(d / "outbox.jsonl"),
        GATEHOUSE_SECRET_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        GATEHOUSE_LOG_FORMAT="json",
    )
    log = open(d / "gatehouse.log", "w")
    proc = subprocess.Popen([str(BIN), "serve", "--demo"], cwd=d, env=env, stdout=log, stderr=log)
    api = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{api}/readyz", timeout=1)
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((d / "gatehouse.log").read_text()[-4000:])
            time.sleep(0.1)
    yield Gatehouse(
        url=f"http://localhost:{port}", api=api, outbox=d / "outbox.jsonl", database=request.param,
        log=d / "gatehouse.log",
    )
    proc.terminate()
    proc.wait(timeout=15)
    log.close()
    if name:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class _RelyingPartyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/favicon.ico":
            self.server.seen.append(self.path)
        body = (
            '<!doctype html><link rel="icon" href="data:,"><title>EHR</title>'
            f"<p>The EHR got {self.path.split('?')[0]}</p>"
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _RelyingPartyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


class _RelyingPartyServer6(_RelyingPartyServer):
    address_family = socket.AF_INET6


@pytest.fixture(scope="session")
def rp_site():
    """The demo OIDC clients' end of the redirects: http://localhost:8400, answering 200
    with a small page; yields the list of paths (with their query) it was asked, in order.

    A real listener rather than `context.route`: Playwright never routes the hop of an
    HTTP redirect (its handler sees only a navigation's first request), and Gatehouse
    answers a single sign-on or an error with a plain redirect.
    """
    seen = []
    servers = []
    for cls, host in [(_RelyingPartyServer, "127.0.0.1"), (_RelyingPartyServer6, "::1")]:
        try:
            server = cls((host, 8400), _RelyingPartyHandler)
        except OSError as e:
            if host == "127.0.0.1":
                raise AssertionError(f"port 8400 (the demo clients' redirect URIs) is taken: {e}")
            continue  # no IPv6 loopback: "localhost" still reaches 127.0.0.1
        server.seen = seen
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield seen
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def context(browser):
    """A fresh browser profile with JavaScript on."""
    c = browser.new_context()
    yield c
    c.close()


@pytest.fixture()
def no_js(browser):
    """A fresh browser profile with JavaScript off, as on a locked-down clinic computer."""
    c = browser.new_context(java_script_enabled=False)
    yield c
    c.close()


AXE = os.environ.get("GATEHOUSE_AXE")


def check_axe(browser, page):
    """axe-core over the page as it is now: no serious or critical violation.

    The page's own CSP forbids injected scripts (as it should), so axe runs in a
    separate profile that bypasses CSP, over the same HTML.
    """
    assert AXE, "GATEHOUSE_AXE names axe.min.js (scripts/browser-tests installs it)"
    html = page.content()
    c = browser.new_context(bypass_csp=True, java_script_enabled=True)
    try:
        p = c.new_page()
        p.route("**/*", lambda route: route.fulfill(body=html, content_type="text/html")
                if route.request.url == page.url else route.continue_())
        p.goto(page.url)
        p.add_script_tag(path=AXE)
        result = p.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    finally:
        c.close()
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: {bad}"


def screenshot(gatehouse, page, name):
    """Keeps a screenshot of the page for the README (SQLite run only: one set)."""
    if gatehouse.database != "sqlite":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
