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


def test_logout_without_an_id_token_returns_to_the_registered_address_with_javascript_off(
    gatehouse, browser, no_js, rp_site
):
    """oidc.md: `/oauth2/logout` ends the session, then redirects (to a registered
    address, with `state`) or says "You are signed out"; an unregistered address is
    refused on our page, and the session is kept."""
    rp = RelyingParty(gatehouse, CLIENT_ID, gatehouse.demo_client_secret())
    page = no_js.new_page()
    page.goto(rp.authorization()["url"])
    sign_in(page, gatehouse, ADMIN, "email")
    _, query = wait_for_redirect(page)
    assert query["code"]

    seen = len(rp_site)
    r = page.goto(
        f"{gatehouse.url}/oauth2/logout?client_id={CLIENT_ID}"
        "&post_logout_redirect_uri=http://localhost:8400/elsewhere&state=bye-0"
    )
    assert r.status == 400
    expect(page.get_by_role("alert")).to_contain_text("has not registered")
    assert rp_site[seen:] == []
    # Refused: the session still answers a request without a page.
    page.goto(rp.authorization(prompt="none")["url"])
    _, query = wait_for_redirect(page)
    assert query["code"], query

    page.goto(
        f"{gatehouse.url}/oauth2/logout?client_id={CLIENT_ID}"
        f"&post_logout_redirect_uri={POST_LOGOUT_URI}&state=bye-1"
    )
    _, query = wait_for_redirect(page, POST_LOGOUT_URI)
    assert query == {"state": "bye-1"}
    assert rp_site[-1] == "/signed-out?state=bye-1"
    # Signed out: the next request needs the pages again.
    page.goto(rp.authorization(prompt="none")["url"])
    _, query = wait_for_redirect(page)
    assert query["error"] == "login_required"
    # Without a return address: our own page says so.
    page.goto(f"{gatehouse.url}/oauth2/logout")
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    check_axe(browser, page)
