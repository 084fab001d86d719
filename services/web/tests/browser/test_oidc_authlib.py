"""I1 with a stock relying party (oidc.md "What proves it"): Python's authlib drives the
whole exchange against the real binary, the browser part in Chromium through the hosted
pages: discovery, authorization code + PKCE with a password and an SMS or email code
from the outbox, the token exchange, the ID token checked by authlib against the JWKS,
userinfo, refresh rotation and its reuse detection, single sign-on across clients,
revocation and introspection, the errors a client is told, and RP-initiated logout.

Codes are counted per user (at most 5 sent in 15 minutes): this module sends the nurse 4
SMS codes and the admin 1 email code.
"""

import base64
import json
import time
import uuid

import pytest
from authlib.integrations.base_client import OAuthError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc import discovery, rpinitiated
from authlib.oidc.core import UserInfo
from playwright.sync_api import expect

from conftest import ADMIN, COMPANY, NURSE
from oidc_rp import (
    ACR_MFA,
    CLIENT_ID,
    POST_LOGOUT_URI,
    PUBLIC_CLIENT_ID,
    SCOPE,
    RelyingParty,
    altered,
    sign_in,
    wait_for_redirect,
)


@pytest.fixture()
def confidential(gatehouse):
    return RelyingParty(gatehouse, CLIENT_ID, gatehouse.demo_client_secret(), auth="client_secret_basic")


@pytest.fixture()
def public(gatehouse):
    return RelyingParty(gatehouse, PUBLIC_CLIENT_ID, auth="none")


def refused(call):
    """The OAuth error code a token endpoint call answered with."""
    with pytest.raises(OAuthError) as e:
        call()
    return e.value.error


def code_flow(rp, page, gatehouse, who=None, channel=None, **params):
    """An authorization request from `rp` in the browser, signed in as `who` when given
    (else answered by the browser session); returns the request and the callback URL
    after checking `state` and `iss` (RFC 9207) in it."""
    request = rp.authorization(**params)
    page.goto(request["url"])
    if who:
        sign_in(page, gatehouse, who, channel)
    url, query = wait_for_redirect(page)
    assert "error" not in query, query
    assert query["state"] == request["state"]
    assert query["iss"] == gatehouse.url
    assert query["code"]
    return request, url


def jose_header(compact):
    part = compact.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def check_token_answer(rp, token, scope=SCOPE, refreshed=False):
    """The token endpoint's answer (RFC 6749 5.1); a refresh need not repeat the ID
    token or the scope."""
    answer = rp.responses[-1]
    assert answer.status_code == 200
    assert "no-store" in answer.headers["cache-control"]
    assert token["token_type"].lower() == "bearer"
    assert 0 < token["expires_in"] <= 600
    assert token["access_token"]
    if not refreshed or "scope" in token:
        assert set(token["scope"].split()) == set(scope.split())
    if not refreshed:
        assert token["id_token"]
    if "offline_access" in scope.split():
        assert token["refresh_token"]


def check_id_token(rp, token, request, gatehouse):
    """authlib's checks, then what Gatehouse promises beyond them; returns the claims."""
    claims = rp.id_token_claims(token, request)
    header = jose_header(token["id_token"])
    assert header["alg"] == "ES256"
    assert header["kid"] in [k["kid"] for k in rp.fetch_jwk_set()["keys"]]
    assert claims["iss"] == gatehouse.url
    assert claims["aud"] in (rp.client_id, [rp.client_id])
    assert claims["nonce"] == request["nonce"]
    uuid.UUID(claims["sub"])
    now = time.time()
    assert abs(claims["iat"] - now) < 60
    assert claims["iat"] < claims["exp"] <= claims["iat"] + 300
    assert claims["auth_time"] <= claims["iat"] + 1
    assert claims["sid"]
    assert isinstance(claims["amr"], list) and "pwd" in claims["amr"]
    assert claims["company"] == COMPANY
    assert claims["company_name"]
    assert isinstance(claims["role"], str) and claims["role"]
    assert isinstance(claims["groups"], list)
    return claims


def test_discovery_and_the_signing_keys(gatehouse):
    """Discovery as authlib reads and checks it (RFC 8414, OpenID Connect Discovery,
    RP-Initiated Logout), the endpoints at their paths, and an ES256 key in the JWKS."""
    rp = RelyingParty(gatehouse, PUBLIC_CLIENT_ID, auth="none")
    meta = discovery.OpenIDProviderMetadata(rp.metadata)
    for key in meta.REGISTRY_KEYS:
        # OpenID Connect Discovery 1.0 wants RS256 listed; Gatehouse signs ES256 only
        # (oidc.md), which every client library here accepts: checked below instead.
        if key != "id_token_signing_alg_values_supported":
            getattr(meta, f"validate_{key}")()
    rpinitiated.OpenIDProviderMetadata(rp.metadata).validate_end_session_endpoint()
    oauth = AuthorizationServerMetadata(rp.metadata)
    for key in ("revocation_endpoint", "introspection_endpoint", "code_challenge_methods_supported"):
        getattr(oauth, f"validate_{key}")()
    issuer = gatehouse.url
    assert meta["issuer"] == issuer
    paths = {
        "authorization_endpoint": "/oauth2/authorize",
        "token_endpoint": "/oauth2/token",
        "userinfo_endpoint": "/oauth2/userinfo",
        "jwks_uri": "/oauth2/jwks",
        "revocation_endpoint": "/oauth2/revoke",
        "introspection_endpoint": "/oauth2/introspect",
        "end_session_endpoint": "/oauth2/logout",
    }
    assert {k: meta[k] for k in paths} == {k: issuer + p for k, p in paths.items()}
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "ES256" in meta["id_token_signing_alg_values_supported"]
    assert set(SCOPE.split()) <= set(meta["scopes_supported"])
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(
        meta["token_endpoint_auth_methods_supported"]
    )
    assert {"authorization_code", "refresh_token"} <= set(meta.grant_types_supported)
    assert not {"implicit", "password"} & set(meta.grant_types_supported)
    keys = rp.fetch_jwk_set()["keys"]
    assert keys and all(k["kid"] and "d" not in k for k in keys)
    assert any(k["kty"] == "EC" and k["crv"] == "P-256" for k in keys)


def test_sms_sign_in_then_tokens_userinfo_and_refresh_rotation(gatehouse, context, confidential, rp_site):
    """The nurse signs in for the EHR (password, then the SMS code): the code comes back
    with `state` and `iss`; the exchange (client_secret_basic) gives tokens whose ID
    token authlib verifies, with the claims of an SMS sign-in; userinfo tells the same
    `sub`; each refresh (client_secret_post) gives a new refresh token; an old one
    presented again is refused and takes the newest down with it."""
    page = context.new_page()
    request = confidential.authorization(company=COMPANY)
    page.goto(request["url"])
    # The `company` parameter fills the page; the rest is the user's to type.
    expect(page.get_by_label("Company")).to_have_value(COMPANY)
    expect(page.get_by_label("User ID")).to_have_value("")
    sign_in(page, gatehouse, NURSE, "sms")
    url, query = wait_for_redirect(page)
    assert query["state"] == request["state"] and query["iss"] == gatehouse.url
    assert rp_site[-1].startswith("/callback?")

    token = confidential.exchange(request, url)
    check_token_answer(confidential, token)
    claims = check_id_token(confidential, token, request, gatehouse)
    assert claims["acr"] == ACR_MFA
    assert {"pwd", "sms", "mfa"} <= set(claims["amr"])
    assert claims["preferred_username"] == NURSE[0]

    info = confidential.userinfo(token=token)
    assert isinstance(info, UserInfo)
    assert info["sub"] == claims["sub"]
    assert info["preferred_username"] == NURSE[0]
    assert info["company"] == COMPANY
    assert "".join(c for c in info["phone_number"] if c.isdigit()).endswith("0147")
    assert confidential.introspect(token["access_token"])["active"] is True

    first = token["refresh_token"]
    second = confidential.refresh(first, auth="client_secret_post")
    check_token_answer(confidential, second, refreshed=True)
    third = confidential.refresh(second["refresh_token"], auth="client_secret_post")
    check_token_answer(confidential, third, refreshed=True)
    assert len({first, second["refresh_token"], third["refresh_token"]}) == 3
    assert len({token["access_token"], second["access_token"], third["access_token"]}) == 3
    assert confidential.userinfo(token=third)["sub"] == claims["sub"]

    assert refused(lambda: confidential.refresh(first)) == "invalid_grant"
    assert confidential.responses[-1].status_code == 400
    assert refused(lambda: confidential.refresh(third["refresh_token"])) == "invalid_grant"
    assert confidential.responses[-1].status_code == 400


def test_single_sign_on_for_the_public_client_and_prompt_login(gatehouse, context, confidential, public):
    """Signed in for the EHR, the browser gets a code for the public client with no page
    and no code sent: same user, same session, same sign-in time. The public client
    exchanges it with its PKCE verifier alone; a wrong verifier is refused.
    `prompt=login` asks the password and the code again."""
    page = context.new_page()
    ehr_request, ehr_url = code_flow(confidential, page, gatehouse, NURSE, "sms")
    ehr = check_id_token(confidential, confidential.exchange(ehr_request, ehr_url), ehr_request, gatehouse)

    mark = gatehouse.mark()
    request, url = code_flow(public, page, gatehouse)
    token = public.exchange(request, url)
    check_token_answer(public, token)
    claims = check_id_token(public, token, request, gatehouse)
    assert gatehouse.mark() == mark, "single sign-on sent no code"
    assert claims["aud"] in (PUBLIC_CLIENT_ID, [PUBLIC_CLIENT_ID])
    assert claims["sub"] == ehr["sub"]
    assert claims["sid"] == ehr["sid"]
    assert claims["auth_time"] == ehr["auth_time"]
    assert claims["acr"] == ACR_MFA
    assert public.userinfo(token=token)["sub"] == claims["sub"]

    request, url = code_flow(public, page, gatehouse)
    wrong = dict(request, code_verifier=request["code_verifier"][::-1])
    assert refused(lambda: public.exchange(wrong, url)) == "invalid_grant"
    assert public.responses[-1].status_code == 400

    request = public.authorization(prompt="login")
    page.goto(request["url"])
    expect(page.get_by_label("Password")).to_be_visible()
    sign_in(page, gatehouse, NURSE, "sms")
    url, query = wait_for_redirect(page)
    again = check_id_token(public, public.exchange(request, url), request, gatehouse)
    assert again["sub"] == ehr["sub"]
    assert again["auth_time"] >= ehr["auth_time"]
    assert {"sms", "mfa"} <= set(again["amr"])


def test_email_code_sign_in_code_replay_revocation_and_introspection(gatehouse, context):
    """The admin signs in with an email code (`amr` says `mail`). A code works once: the
    replay is refused and takes back what the first exchange issued. A refresh token
    revoked by the client (RFC 7009) stops working, as introspection (RFC 7662) tells."""
    rp = RelyingParty(gatehouse, CLIENT_ID, gatehouse.demo_client_secret(), auth="client_secret_post")
    page = context.new_page()
    request, url = code_flow(rp, page, gatehouse, ADMIN, "email")
    token = rp.exchange(request, url)
    check_token_answer(rp, token)
    claims = check_id_token(rp, token, request, gatehouse)
    assert {"pwd", "mail", "mfa"} <= set(claims["amr"])
    assert claims["acr"] == ACR_MFA
    assert rp.userinfo(token=token)["email"]

    assert refused(lambda: rp.exchange(request, url)) == "invalid_grant"
    assert rp.responses[-1].status_code == 400
    assert "no-store" in rp.responses[-1].headers["cache-control"]
    assert refused(lambda: rp.refresh(token["refresh_token"])) == "invalid_grant"
    assert rp.introspect(token["access_token"])["active"] is False

    # A new code from the browser session; its refresh token, revoked by the client.
    request, url = code_flow(rp, page, gatehouse)
    token = rp.exchange(request, url)
    assert rp.introspect(token["access_token"], "access_token")["active"] is True
    assert rp.introspect(token["refresh_token"], "refresh_token")["active"] is True
    assert rp.revoke(token["refresh_token"], "refresh_token").status_code == 200
    assert rp.introspect(token["refresh_token"], "refresh_token")["active"] is False
    assert refused(lambda: rp.refresh(token["refresh_token"])) == "invalid_grant"


def test_errors_come_back_to_the_client_with_state_and_iss(gatehouse, context, public, rp_site):
    """With no browser session, `prompt=none` answers `login_required`; a request without
    PKCE answers `invalid_request`: both at the redirect URI with `state` and `iss`, and
    no page shown."""
    page = context.new_page()
    seen = len(rp_site)
    request = public.authorization(prompt="none")
    page.goto(request["url"])
    _, query = wait_for_redirect(page)
    assert query["error"] == "login_required", query
    assert query["state"] == request["state"]
    assert query["iss"] == gatehouse.url
    assert "code" not in query

    # The same request without PKCE (authlib adds it whenever it can).
    request = public.authorization()
    page.goto(altered(request["url"], code_challenge=None, code_challenge_method=None))
    _, query = wait_for_redirect(page)
    assert query["error"] == "invalid_request", query
    assert query["state"] == request["state"]
    assert query["iss"] == gatehouse.url
    assert len(rp_site) == seen + 2


def test_an_unregistered_redirect_uri_or_client_gets_an_error_page_not_a_redirect(
    gatehouse, context, public, rp_site
):
    """A redirect URI that is not registered exactly, or an unknown client: an error
    page (the reason in an alert) and never a redirect, whatever else is wrong."""
    page = context.new_page()
    seen = len(rp_site)
    url = public.authorization()["url"]
    for bad, statuses in [({"redirect_uri": "http://localhost:8400/evil"}, {400}),
                          ({"client_id": "no-such-client"}, set(range(400, 500)))]:
        response = page.goto(altered(url, **bad))
        assert response.status in statuses, (bad, response.status)
        expect(page.get_by_role("alert")).to_be_visible()
        assert page.url.startswith(gatehouse.url + "/"), page.url
    # Not even `prompt=none` takes the browser to an unregistered URI.
    url = public.authorization(prompt="none")["url"]
    response = page.goto(altered(url, redirect_uri="http://localhost:8400/evil"))
    assert response.status == 400
    expect(page.get_by_role("alert")).to_be_visible()
    assert rp_site[seen:] == [], "the browser was never sent to the client"


def test_logout_ends_the_session_for_every_client(gatehouse, context, confidential, public):
    """RP-initiated logout with the ID token as hint lands on the registered
    post-logout URI with `state`; the session's refresh token stops working, and the
    other client's `prompt=none` now answers `login_required`."""
    page = context.new_page()
    request, url = code_flow(confidential, page, gatehouse, NURSE, "sms")
    token = confidential.exchange(request, url)
    check_id_token(confidential, token, request, gatehouse)
    # The other client is signed in too, through the same session.
    other_request, other_url = code_flow(public, page, gatehouse)
    other = public.exchange(other_request, other_url)

    logout = confidential.create_logout_url(
        post_logout_redirect_uri=POST_LOGOUT_URI, id_token_hint=token["id_token"], state="xyz"
    )
    page.goto(logout["url"])
    _, query = wait_for_redirect(page, POST_LOGOUT_URI)
    assert query["state"] == "xyz"

    assert refused(lambda: confidential.refresh(token["refresh_token"])) == "invalid_grant"
    assert refused(lambda: public.refresh(other["refresh_token"])) == "invalid_grant"
    request = public.authorization(prompt="none")
    page.goto(request["url"])
    _, query = wait_for_redirect(page)
    assert query["error"] == "login_required", query
    assert query["state"] == request["state"]
