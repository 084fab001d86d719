"""The pages the OpenID Connect provider adds (oidc.md, web.md): the refusal of a request
that names no registered address, and the "Sign out?" question an application's logout
without an ID token asks. axe-core on both; the answer, with JavaScript off, goes back
to the application's registered address only."""

from playwright.sync_api import expect

from conftest import ADMIN, check_axe
from oidc_rp import CLIENT_ID, POST_LOGOUT_URI, RelyingParty, altered, sign_in, wait_for_redirect


def test_a_request_to_an_unregistered_address_is_refused_on_an_accessible_page(gatehouse, browser, context, rp_site):
    rp = RelyingParty(gatehouse, CLIENT_ID, gatehouse.demo_client_secret())
    request = rp.authorization()
    page = context.new_page()
    seen = len(rp_site)
    r = page.goto(altered(request["url"], redirect_uri="http://localhost:8400/elsewhere"))
    assert r.status == 400
    expect(page.get_by_role("alert")).to_contain_text("has not registered")
    expect(page.get_by_role("heading", level=1)).to_have_text("This sign-in link does not work")
    check_axe(browser, page)
    assert rp_site[seen:] == []


def test_logout_without_an_id_token_asks_first_then_returns_with_javascript_off(gatehouse, browser, no_js, rp_site):
    rp = RelyingParty(gatehouse, CLIENT_ID, gatehouse.demo_client_secret())
    request = rp.authorization()
    page = no_js.new_page()
    page.goto(request["url"])
    sign_in(page, gatehouse, ADMIN, "email")
    url, query = wait_for_redirect(page)
    assert query["state"] == request["state"] and query["code"]

    page.goto(
        f"{gatehouse.url}/oauth2/logout?client_id={CLIENT_ID}"
        f"&post_logout_redirect_uri={POST_LOGOUT_URI}&state=bye-1"
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign out?")
    check_axe(browser, page)
    # Asked, not yet done: the session still answers a request without a page.
    other = no_js.new_page()
    other.goto(rp.authorization(prompt="none")["url"])
    _, answered = wait_for_redirect(other)
    assert answered["code"], answered
    other.close()
    seen = len(rp_site)
    page.get_by_role("button", name="Sign out").click()
    url, query = wait_for_redirect(page, POST_LOGOUT_URI)
    assert query == {"state": "bye-1"}
    assert rp_site[seen:] == ["/signed-out?state=bye-1"]
    # Signed out: the next request needs the pages again.
    page.goto(rp.authorization(prompt="none")["url"])
    _, query = wait_for_redirect(page)
    assert query["error"] == "login_required"
