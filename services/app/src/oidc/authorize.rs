//! `/oauth2/authorize` (OIDC Core 3.1.2) and `/oauth2/logout` (RP-Initiated Logout), as
//! the pages call them: a request is checked and kept server-side while the user signs in,
//! then answered with a code for the browser session; or refused, by a redirect to the
//! client with `error`, `state` and `iss` once the client and its redirect URI are known,
//! and on our own page before that (never redirecting to an address nobody registered).

use super::{Oidc, new_secret};
use crate::{Principal, RequestMeta, Result};
use gatehouse_domain::audit::details::{Details, SessionEnd};
use gatehouse_domain::oidc::keys::kid_of;
use gatehouse_domain::oidc::{
    CODE_SECONDS, ErrorCode, MAX_OPAQUE_LEN, OAuthError, Prompt, REQUEST_SECONDS, Scopes,
    check_challenge, session_answers, split_login_hint, wants_mfa,
};
use gatehouse_store::audit::{actor_of, event, user_target};
use gatehouse_store::oidc::{AuthRequest, Client, CodeRow, Grant};
use secrecy::ExposeSecret;
use uuid::Uuid;

/// The parameters of an authorization request, as sent.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub company: Option<String>,
    pub acr_values: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub response_mode: Option<String>,
}

/// Why an authorization request is not answered with a code.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown on our own page: the client or its redirect URI is not known, or the request
    /// expired. Never redirected anywhere.
    Page(String),
    /// Sent back to the client: this address, with `error`, `error_description`, `state`
    /// and `iss`.
    Redirect(String),
    Failed(crate::Error),
}

impl From<crate::Error> for AuthorizeError {
    fn from(e: crate::Error) -> Self {
        AuthorizeError::Failed(e)
    }
}

/// A checked request, kept while the user signs in.
#[derive(Debug, Clone)]
pub struct Pending {
    pub request: AuthRequest,
    pub client_name: String,
    pub prompt: Option<Prompt>,
    /// What the sign-in page is filled with.
    pub company_hint: Option<String>,
    pub username_hint: Option<String>,
}

impl Pending {
    fn of(request: AuthRequest, client_name: String) -> Self {
        let prompt = Prompt::parse(request.prompt.as_deref()).ok().flatten();
        let (hint_company, username) = match request.login_hint.as_deref() {
            Some(h) => {
                let (c, u) = split_login_hint(h);
                (
                    c.map(str::to_owned),
                    Some(u.to_owned()).filter(|u| !u.is_empty()),
                )
            }
            None => (None, None),
        };
        Pending {
            company_hint: request.company.clone().or(hint_company),
            username_hint: username,
            prompt,
            client_name,
            request,
        }
    }
}

/// `/oauth2/logout`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// `uri` with `pairs` added to its query (a registered URI, so it parses).
fn with_query(uri: &str, pairs: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
            }
            u.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

impl Oidc<'_> {
    /// The redirect that refuses `request` with `code` (RFC 6749 4.1.2.1, RFC 9207).
    pub fn refusal(&self, (redirect_uri, state): (&str, Option<&str>), e: &OAuthError) -> String {
        with_query(
            redirect_uri,
            &[
                ("error", Some(e.code.as_str())),
                ("error_description", Some(&e.description)),
                ("state", state),
                ("iss", Some(self.issuer)),
            ],
        )
    }

    /// Checks an authorization request and keeps it for the sign-in.
    pub async fn begin(&self, p: AuthorizeParams) -> Result<Pending, AuthorizeError> {
        let page = |s: &str| AuthorizeError::Page(s.to_owned());
        let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Err(page(
                "The application did not say who it is (client_id is missing).",
            ));
        };
        let Some(client) = self.store.oidc().client(client_id).await? else {
            return Err(page("This application is not registered with Gatehouse."));
        };
        let Some(redirect_uri) = p.redirect_uri.as_deref() else {
            return Err(page(
                "The application did not say where to return (redirect_uri is missing).",
            ));
        };
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(page(
                "The application asked to return to an address it has not registered.",
            ));
        }
        let state = p.state.as_deref();
        let back =
            |e: OAuthError| AuthorizeError::Redirect(self.refusal((redirect_uri, state), &e));
        let checked = check_request(&p);
        let (scopes, challenge, prompt, max_age) = match checked {
            Ok(c) => c,
            Err(e) => return Err(back(e)),
        };
        if p.state.as_ref().is_some_and(|s| s.len() > MAX_OPAQUE_LEN) {
            // Too long to send back: refused without it.
            return Err(AuthorizeError::Redirect(self.refusal(
                (redirect_uri, None),
                &OAuthError::invalid_request("state is too long"),
            )));
        }
        let now = self.store.clock().now();
        let request = AuthRequest {
            id: Uuid::new_v4(),
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope: scopes.to_text(),
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            code_challenge: challenge,
            prompt: prompt.map(|p| match p {
                Prompt::None => "none".to_owned(),
                Prompt::Login => "login".to_owned(),
            }),
            max_age,
            require_mfa: wants_mfa(p.acr_values.as_deref()),
            company: p
                .company
                .clone()
                .filter(|c| !c.trim().is_empty() && c.len() <= 64),
            login_hint: p.login_hint.clone().filter(|h| h.len() <= 200),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(REQUEST_SECONDS),
        };
        self.store.oidc().insert_request(&request).await?;
        Ok(Pending::of(request, client.name))
    }

    /// A request kept by [`Oidc::begin`], while it has not expired.
    pub async fn pending(&self, id: Uuid) -> Result<Option<Pending>> {
        let now = self.store.clock().now();
        let Some(r) = self.store.oidc().request(id, now).await? else {
            return Ok(None);
        };
        let Some(c) = self.store.oidc().client(&r.client_id).await? else {
            return Ok(None);
        };
        Ok(Some(Pending::of(r, c.name)))
    }

    /// Whether the browser session `p` answers `pending` without a page (single sign-on).
    pub fn session_answers(&self, pending: &Pending, p: &Principal) -> bool {
        let r = &pending.request;
        let now = self.store.clock().now().timestamp();
        session_answers(
            pending.prompt,
            r.max_age,
            r.require_mfa,
            pending.company_hint.as_deref(),
            (
                p.created_at.timestamp(),
                now,
                p.auth.mfa(),
                p.tenant.company.as_str(),
            ),
        )
    }

    /// The refusal of a request that may show no page and has no session to answer it.
    pub async fn login_required(&self, pending: &Pending) -> Result<String> {
        let r = &pending.request;
        let txn = self.store.begin_write().await?;
        self.store.oidc().delete_request(&*txn, r.id).await?;
        txn.commit().await?;
        Ok(self.refusal(
            (&r.redirect_uri, r.state.as_deref()),
            &OAuthError::new(ErrorCode::LoginRequired, "the user is not signed in"),
        ))
    }

    /// Answers `pending` for the signed-in browser session `p`: the redirect to the client
    /// with a new code, or with `access_denied` when the client is not for `p`'s practice.
    pub async fn answer(
        &self,
        pending: &Pending,
        p: &Principal,
        sso: bool,
        meta: &RequestMeta,
    ) -> Result<String, AuthorizeError> {
        let r = &pending.request;
        let Some(client) = self.store.oidc().client(&r.client_id).await? else {
            return Err(AuthorizeError::Page(
                "This application is no longer registered with Gatehouse.".into(),
            ));
        };
        let now = self.store.clock().now();
        let scope = self.store.tenant(p.tenant.id);
        let target = Some(user_target(p.user.id, &p.user.username));
        let txn = self.store.begin_write().await?;
        self.store.oidc().delete_request(&*txn, r.id).await?;
        if !allows(&client, p.tenant.company.as_str()) {
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        actor_of(p),
                        target,
                        meta,
                        Details::OidcDenied {
                            client_id: client.client_id.clone(),
                        },
                    ),
                )
                .await?;
            txn.commit().await?;
            return Err(AuthorizeError::Redirect(self.refusal(
                (&r.redirect_uri, r.state.as_deref()),
                &OAuthError::new(
                    ErrorCode::AccessDenied,
                    "this application is not available to the user's practice",
                ),
            )));
        }
        let (code, code_hash) = new_secret();
        let row = CodeRow {
            code_hash,
            grant: Grant {
                client_id: client.client_id.clone(),
                tenant_id: p.tenant.id,
                user_id: p.user.id,
                session_id: p.session_id,
                scope: r.scope.clone(),
                auth_time: p.created_at,
                amr: p.auth.to_text(),
            },
            redirect_uri: r.redirect_uri.clone(),
            code_challenge: r.code_challenge.clone(),
            nonce: r.nonce.clone(),
            expires_at: now + chrono::Duration::seconds(CODE_SECONDS),
        };
        self.store.oidc().insert_code(&*txn, &row, now).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(p),
                    target,
                    meta,
                    Details::OidcAuthorized {
                        client_id: client.client_id.clone(),
                        scope: r.scope.clone(),
                        sso,
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(with_query(
            &r.redirect_uri,
            &[
                ("code", Some(code.expose_secret())),
                ("state", r.state.as_deref()),
                ("iss", Some(self.issuer)),
            ],
        ))
    }

    /// `/oauth2/logout`: checks where to return after signing out: a
    /// `post_logout_redirect_uri` registered by the client the hint or `client_id` names
    /// (exactly), with `state`; `Ok(None)` for our own "signed out" page. An ID token
    /// hint must be one of ours (signature and issuer; it may have expired).
    pub async fn logout_target(&self, p: &LogoutParams) -> Result<Option<String>, AuthorizeError> {
        let page = |s: &str| AuthorizeError::Page(s.to_owned());
        let hinted = match p.id_token_hint.as_deref() {
            Some(hint) => match self.verify_own(hint, true).await? {
                Some(claims) => Some(claims.aud),
                None => {
                    return Err(page(
                        "The sign-out request carries a token Gatehouse did not issue.",
                    ));
                }
            },
            None => None,
        };
        let client_id = match (hinted, p.client_id.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                return Err(page(
                    "The sign-out request names two different applications.",
                ));
            }
            (Some(a), _) => Some(a),
            (None, b) => b.map(str::to_owned),
        };
        let Some(uri) = p.post_logout_redirect_uri.as_deref() else {
            return Ok(None);
        };
        let client: Option<Client> = match &client_id {
            Some(id) => self.store.oidc().client(id).await?,
            None => None,
        };
        match client {
            Some(c) if c.post_logout_redirect_uris.iter().any(|u| u == uri) => {
                Ok(Some(with_query(uri, &[("state", p.state.as_deref())])))
            }
            _ => Err(page(
                "The application asked to return to an address it has not registered.",
            )),
        }
    }

    /// Ends the browser session `p` at `/oauth2/logout`, with every token issued in it.
    pub async fn logout(&self, p: &Principal, meta: &RequestMeta) -> Result<()> {
        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        self.store.end_session(&txn, p).await?;
        self.store
            .oidc()
            .revoke_session_tokens(&*txn, (p.tenant.id, p.session_id), now)
            .await?;
        self.store
            .tenant(p.tenant.id)
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(p),
                    Some(user_target(p.user.id, &p.user.username)),
                    meta,
                    Details::SessionEnded {
                        reason: SessionEnd::OidcLogout,
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        self.store.forget_session(p);
        Ok(())
    }

    /// The claims of an ID token we signed with a key still published.
    pub(crate) async fn verify_own(
        &self,
        token: &str,
        allow_expired: bool,
    ) -> Result<Option<gatehouse_domain::oidc::IdTokenClaims>> {
        let Some(kid) = kid_of(token) else {
            return Ok(None);
        };
        let loaded = self.loaded().await?;
        Ok(loaded
            .published
            .iter()
            .find(|k| k.kid == kid)
            .and_then(|k| k.verify(token, self.issuer, allow_expired)))
    }
}

/// Whether `client` serves the practice `company`.
fn allows(client: &Client, company: &str) -> bool {
    client
        .companies
        .as_ref()
        .is_none_or(|list| list.iter().any(|c| c.eq_ignore_ascii_case(company)))
}

type Checked = (Scopes, String, Option<Prompt>, Option<i64>);

/// The checks of a request whose client and redirect URI are known.
fn check_request(p: &AuthorizeParams) -> Result<Checked, OAuthError> {
    if p.request.is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "request objects are not supported",
        ));
    }
    if p.request_uri.is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "request_uri is not supported",
        ));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => return Err(OAuthError::invalid_request("response_type is missing")),
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(OAuthError::invalid_request(
            "only response_mode=query is supported",
        ));
    }
    let scopes = Scopes::parse(p.scope.as_deref().unwrap_or(""))?;
    let challenge = check_challenge(
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    )?;
    let prompt = Prompt::parse(p.prompt.as_deref())?;
    let max_age =
        match p.max_age.as_deref() {
            None => None,
            Some(m) => Some(m.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                OAuthError::invalid_request("max_age must be a number of seconds")
            })?),
        };
    if p.nonce.as_ref().is_some_and(|n| n.len() > MAX_OPAQUE_LEN) {
        return Err(OAuthError::invalid_request("nonce is too long"));
    }
    Ok((scopes, challenge, prompt, max_age))
}
