"""What the OpenID Connect browser tests share (oidc.md "What proves it").

The demo clients `serve --demo` registers, the hosted sign-in page as the user of a
relying party meets it, and authlib's own generic OpenID Connect client: the class its
Flask, Django and Starlette clients are made of, here on `requests` without a web
framework. Nothing in it knows how Gatehouse works inside; it speaks the standards.
"""

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from authlib.integrations.base_client import BaseApp, FrameworkIntegration, OAuth2Mixin, OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from playwright.sync_api import expect

from conftest import COMPANY

# The demo clients (`serve --demo` prints them; the secret is made at start).
CLIENT_ID = "demo-ehr"
PUBLIC_CLIENT_ID = "demo-ehr-public"
REDIRECT_URI = "http://localhost:8400/callback"
POST_LOGOUT_URI = "http://localhost:8400/signed-out"
SCOPE = "openid profile email phone offline_access"
ACR_PWD = "urn:gatehouse:acr:pwd"
ACR_MFA = "urn:gatehouse:acr:mfa"


class _NoFramework(FrameworkIntegration):
    def update_token(self, token, refresh_token=None, access_token=None):
        pass


class RelyingParty(OAuth2Mixin, OpenIDMixin, BaseApp):
    """authlib's OpenID Connect client for one demo client of one Gatehouse.

    Configured from discovery alone; PKCE S256 always. `auth` is the token endpoint
    authentication (`client_secret_basic`, `client_secret_post`, or `none` for the
    public client). Every answer of the token endpoint is kept in `responses`, so a test
    can look at a refusal's status and headers.
    """

    client_cls = OAuth2Session

    def __init__(self, gatehouse, client_id=CLIENT_ID, client_secret=None, auth="client_secret_basic"):
        self.responses = []
        super().__init__(
            _NoFramework(client_id),
            name=client_id,
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=f"{gatehouse.url}/.well-known/openid-configuration",
            client_kwargs={
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": auth,
                "revocation_endpoint_auth_method": auth,
                "default_timeout": 10,
            },
            compliance_fix=self._keep_responses,
        )
        self.issuer = gatehouse.url

    def _keep_responses(self, session):
        def keep(resp):
            self.responses.append(resp)
            return resp

        for hook in ("access_token_response", "refresh_token_response"):
            session.register_compliance_hook(hook, keep)

    @property
    def metadata(self):
        return self.load_server_metadata()

    def session(self, auth=None):
        """An authlib OAuth2Session configured from discovery (for refresh, revocation
        and introspection); `auth` overrides the client authentication method."""
        client_kwargs = dict(self.client_kwargs)
        if auth:
            client_kwargs["token_endpoint_auth_method"] = auth
            client_kwargs["revocation_endpoint_auth_method"] = auth
        metadata = {k: v for k, v in self.metadata.items() if not k.startswith("_")}
        session = OAuth2Session(
            client_id=self.client_id, client_secret=self.client_secret, **client_kwargs, **metadata
        )
        self._keep_responses(session)
        return session

    def authorization(self, scope=SCOPE, **params):
        """A new authorization request: a dict with `url`, `state`, `nonce` and
        `code_verifier`, all made by authlib."""
        return self.create_authorization_url(REDIRECT_URI, scope=scope, **params)

    def exchange(self, request, callback_url, **kwargs):
        """The token request for the code in `callback_url` (authlib checks `state`)."""
        return self.fetch_access_token(
            REDIRECT_URI,
            authorization_response=callback_url,
            state=request["state"],
            code_verifier=request["code_verifier"],
            **kwargs,
        )

    def id_token_claims(self, token, request):
        """The ID token checked by authlib against the JWKS: signature (the algorithms
        discovery lists), `iss`, `aud`, `exp`, `nonce`, `at_hash` when present."""
        return self.parse_id_token(
            token,
            nonce=request["nonce"],
            claims_options={
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "nonce": {"essential": True},
            },
            leeway=5,
        )

    def refresh(self, refresh_token, auth=None):
        with self.session(auth) as s:
            return s.refresh_token(self.metadata["token_endpoint"], refresh_token=refresh_token)

    def introspect(self, token, hint=None):
        with self.session() as s:
            resp = s.introspect_token(
                self.metadata["introspection_endpoint"], token=token, token_type_hint=hint
            )
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.json()

    def revoke(self, token, hint=None):
        with self.session() as s:
            return s.revoke_token(self.metadata["revocation_endpoint"], token=token, token_type_hint=hint)


def sign_in(page, gatehouse, who, channel=None, company=COMPANY):
    """On the hosted sign-in page an authorization request led to: the company (when the
    page does not have it yet), user ID and password; then, when `channel` is given, the
    code from the outbox on the page that asks for it."""
    company_field = page.get_by_label("Company")
    expect(company_field).to_be_visible()
    if company_field.input_value() != company:
        company_field.fill(company)
    page.get_by_label("User ID").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    mark = gatehouse.mark()
    page.get_by_role("button", name="Sign in").click()
    if channel:
        code_field = page.get_by_label("Code", exact=True)
        expect(code_field).to_be_visible()
        code_field.fill(gatehouse.code_after(mark, channel))
        page.get_by_role("button", name="Verify").click()


def wait_for_redirect(page, uri=REDIRECT_URI):
    """Waits until the browser lands on `uri` (through a redirect or a page of ours, as
    it may be); returns the full URL and its query parameters (single values)."""
    page.wait_for_url(lambda url: url.split("?")[0] == uri)
    return page.url, query_of(page.url)


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def altered(url, **changes):
    """`url` with query parameters changed (a value of None removes one)."""
    params = query_of(url)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return urlunsplit(urlsplit(url)._replace(query=urlencode(params)))
