"""I1 with Node's openid-client (oidc.md "What proves it"): oidc_openid_client.mjs drives
the whole exchange against the real binary, its browser part in the same Chromium
through playwright-core, and prints what it saw; this asserts on it.

openid-client refuses by itself whatever breaks the standards it implements (discovery,
`state` and `iss` of the authorization response, PKCE, the ID token's signature against
the JWKS, `iss`, `aud`, `exp`, `nonce`, userinfo's `sub`): the script then fails. What
Gatehouse promises beyond them is checked here. The nurse gets 2 SMS codes.
"""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from conftest import CHROMIUM, COMPANY, NURSE
from oidc_rp import ACR_MFA, CLIENT_ID, PUBLIC_CLIENT_ID, SCOPE

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "oidc_openid_client.mjs"


def run_script(gatehouse):
    assert (HERE / "node_modules" / "openid-client").is_dir(), (
        "npm ci in services/web/tests/browser (scripts/browser-tests does it)"
    )
    env = dict(
        os.environ,
        GATEHOUSE_ISSUER=gatehouse.url,
        GATEHOUSE_OUTBOX=str(gatehouse.outbox),
        GATEHOUSE_CLIENT_SECRET=gatehouse.demo_client_secret(),
        GATEHOUSE_CHROMIUM=CHROMIUM,
    )
    node = shutil.which("node")
    assert node, "node is needed for openid-client"
    done = subprocess.run(
        [node, str(SCRIPT)], cwd=HERE, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"openid-client failed:\n{done.stderr}\n{done.stdout}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_openid_client_code_flow_refresh_single_sign_on_and_logout(gatehouse, rp_site):
    """Discovery, the nurse's sign-in (password, SMS code), tokens and a verified ID
    token with the claims of an SMS sign-in, userinfo, refresh rotation, a code for the
    public client by single sign-on that works once, RP-initiated logout that ends the
    session for both clients, and refresh token reuse detection: all through
    openid-client."""
    out = run_script(gatehouse)
    issuer = gatehouse.url

    assert out["discovery"] == {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/oauth2/jwks",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
    }

    signin = out["signin"]
    assert {"code", "state", "iss"} <= set(signin["callback_params"])
    token = signin["token"]
    assert token["token_type"].lower() == "bearer"
    assert 0 < token["expires_in"] <= 600
    assert set(token["scope"].split()) == set(SCOPE.split())
    assert token["has_id_token"] and token["has_refresh_token"]
    claims = signin["claims"]
    assert claims["iss"] == issuer
    assert claims["aud"] in (CLIENT_ID, [CLIENT_ID])
    uuid.UUID(claims["sub"])
    assert claims["sid"]
    assert claims["auth_time"] <= claims["iat"] + 1
    assert claims["acr"] == ACR_MFA
    assert {"pwd", "sms", "mfa"} <= set(claims["amr"])
    assert claims["company"] == COMPANY and claims["company_name"]
    assert claims["role"] and isinstance(claims["groups"], list)
    assert claims["preferred_username"] == NURSE[0]
    assert signin["userinfo"]["sub"] == claims["sub"]
    assert signin["userinfo"]["preferred_username"] == NURSE[0]

    refresh = out["refresh"]
    assert refresh["token"]["has_refresh_token"]
    assert refresh["distinct_refresh_tokens"] == 3
    assert refresh["distinct_access_tokens"] == 3
    assert refresh["userinfo_sub"] == claims["sub"]

    sso = out["sso"]
    assert sso["codes_sent"] == 0, "single sign-on asked no second code"
    assert sso["claims"]["aud"] in (PUBLIC_CLIENT_ID, [PUBLIC_CLIENT_ID])
    assert sso["claims"]["sub"] == claims["sub"]
    assert sso["claims"]["sid"] == claims["sid"]
    assert sso["claims"]["auth_time"] == claims["auth_time"]
    assert sso["replay"] == {"error": "invalid_grant", "status": 400, "kind": "ResponseBodyError"}

    logout = out["logout"]
    assert logout["end_session_url"] == f"{issuer}/oauth2/logout"
    assert logout["landed"] == "http://localhost:8400/signed-out"
    assert logout["state"] == "xyz"
    assert logout["refresh"]["error"] == "invalid_grant" and logout["refresh"]["status"] == 400
    assert logout["prompt_none"]["error"] == "login_required", logout["prompt_none"]

    reuse = out["reuse"]
    assert reuse["claims_sub"] == claims["sub"]
    assert reuse["used"] == {"error": "invalid_grant", "status": 400, "kind": "ResponseBodyError"}
    assert reuse["newest"] == {"error": "invalid_grant", "status": 400, "kind": "ResponseBodyError"}
    assert any(p.startswith("/signed-out?") for p in rp_site)
