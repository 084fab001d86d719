"""Browser security (web.md "Security") as an attacker's page meets it in Chromium."""

import http.server
import threading

import pytest
from playwright.sync_api import expect

from conftest import ADMIN, COMPANY, free_port


@pytest.fixture()
def evil_site():
    """Another origin serving whatever page a test puts in `pages`."""
    pages = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "").encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}", pages
    server.shutdown()


def test_a_page_inside_a_frame_is_refused(gatehouse, context, evil_site):
    origin, pages = evil_site
    pages["/frame"] = f'<iframe id="f" src="{gatehouse.url}/signin" width="600" height="400"></iframe>'
    page = context.new_page()
    responses = []
    page.on("response", lambda r: responses.append(r) if "/signin" in r.url else None)
    page.goto(f"{origin}/frame")
    page.wait_for_timeout(1000)
    assert responses, "the frame was requested"
    assert "frame-ancestors 'none'" in responses[0].headers["content-security-policy"]
    frame = page.frame_locator("#f")
    expect(frame.get_by_role("button", name="Sign in")).to_have_count(0)


def test_a_cross_site_post_changes_nothing(gatehouse, context, evil_site):
    origin, pages = evil_site
    page = context.new_page()
    # The victim has the sign-in page open (cookies set), then visits the attacker.
    page.goto(f"{gatehouse.url}/signin")
    pages["/post"] = f"""
      <form id="x" method="post" action="{gatehouse.url}/signin">
        <input name="csrf" value="guess"><input name="company" value="{COMPANY}">
        <input name="username" value="{ADMIN[0]}"><input name="password" value="{ADMIN[1]}">
      </form>
      <script>document.getElementById('x').submit()</script>"""
    mark = gatehouse.mark()
    with page.expect_response(lambda r: r.url.endswith("/signin") and r.request.method == "POST") as r:
        page.goto(f"{origin}/post")
    assert r.value.status == 403
    expect(page.get_by_text("did not come from a Gatehouse page")).to_be_visible()
    page.wait_for_timeout(500)
    assert gatehouse.mark() == mark, "no code was sent: no sign-in started"


def test_the_csp_blocks_an_inline_script(gatehouse, context):
    page = context.new_page()
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    response = page.goto(f"{gatehouse.url}/signin")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.injected = true'; document.body.appendChild(s); }""")
    assert page.evaluate("window.injected === undefined")
