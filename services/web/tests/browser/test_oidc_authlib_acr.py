"""I1 step-up with a stock relying party: on a trusted network the nurse signs in with
her password alone and the ID token says so (`acr` pwd, `amr` trusted_network); a
client asking `acr_values=urn:gatehouse:acr:mfa` gets the second factor asked all the
same, and an ID token that says `acr` mfa.

A module of its own: the trusted network it adds belongs to the whole practice, and
this module has its own `gatehouse` (removed again at the end all the same).
"""

import pytest
import requests

from conftest import ADMIN, COMPANY, NURSE
from oidc_rp import ACR_MFA, ACR_PWD, CLIENT_ID, RelyingParty, sign_in, wait_for_redirect


@pytest.fixture()
def trusted_loopback(gatehouse):
    """127.0.0.1/32 as a trusted network of the demo practice, added by its admin through
    the JSON API (api.md: sign-in flow, email code, then trusted-networks), for one test."""
    mark = gatehouse.mark()
    r = requests.post(
        f"{gatehouse.api}/v1/auth/login",
        json={"company": COMPANY, "username": ADMIN[0], "password": ADMIN[1]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    flow = r.json()
    assert flow["status"] == "mfa_required", flow
    r = requests.post(
        f"{gatehouse.api}/v1/auth/flows/{flow['flow_id']}/verify",
        json={"method": "code", "code": gatehouse.code_after(mark, "email"), "remember_device": False},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authenticated"
    admin = {"authorization": f"Bearer {r.json()['session']['token']}"}
    networks = f"{gatehouse.api}/v1/tenants/{COMPANY}/trusted-networks"
    r = requests.post(
        networks, json={"cidr": "127.0.0.1/32", "description": "browser test"}, headers=admin, timeout=10
    )
    assert r.status_code == 201, r.text
    network = r.json()
    yield network
    r = requests.delete(f"{networks}/{network['id']}", headers=admin, timeout=10)
    assert r.status_code == 204, r.text


def test_acr_values_asks_the_second_factor_even_on_a_trusted_network(
    gatehouse, browser, trusted_loopback, rp_site
):
    """Without `acr_values` the trusted network stands in for the SMS code; with
    `acr_values=urn:gatehouse:acr:mfa` (a fresh browser) the code is asked, and the ID
    token, checked by authlib, says `acr` mfa."""
    rp = RelyingParty(gatehouse, CLIENT_ID, gatehouse.demo_client_secret())
    seen = {}
    for name, params, channel in [("plain", {}, None), ("mfa", {"acr_values": ACR_MFA}, "sms")]:
        context = browser.new_context()
        try:
            page = context.new_page()
            request = rp.authorization(**params)
            page.goto(request["url"])
            mark = gatehouse.mark()
            sign_in(page, gatehouse, NURSE, channel)
            url, query = wait_for_redirect(page)
            assert query["state"] == request["state"]
            seen[name] = rp.id_token_claims(rp.exchange(request, url), request)
            sent = [m for m in gatehouse.outbox_lines()[mark:] if m["channel"] == "sms"]
            assert len(sent) == (1 if channel else 0), (name, sent)
        finally:
            context.close()

    plain, mfa = seen["plain"], seen["mfa"]
    assert plain["acr"] == ACR_PWD
    assert "trusted_network" in plain["amr"] and "pwd" in plain["amr"]
    assert "mfa" not in plain["amr"]
    assert mfa["acr"] == ACR_MFA
    assert {"pwd", "sms", "mfa"} <= set(mfa["amr"])
    assert plain["sub"] == mfa["sub"]
