//! What a page knows of the browser, and the rules the browser is held to (web.md
//! "Security"): the cookies, the CSRF checks, the headers on every page.

use crate::WebState;
use crate::pages::{self, Message};
use crate::words::Refused;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_app::RequestMeta;
use gatehouse_domain::ids::FlowId;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// The browser session: a Gatehouse session token, as the API's bearer token.
pub(crate) const SESSION: &str = "__Host-gatehouse";
/// The sign-in flow in progress.
const FLOW: &str = "__Host-gatehouse-flow";
/// The OpenID Connect authorization request this browser is signing in for.
const OIDC: &str = "__Host-gatehouse-oidc";
/// The seed the form tokens are bound to; renewed when a session starts or ends.
const CSRF: &str = "__Host-gatehouse-csrf";
/// The company last signed in to on this computer: not a secret (one computer, one practice).
const COMPANY: &str = "gatehouse-company";
/// Prefix of a remembered computer's cookie: one per user (see [`device_cookie`]).
const DEVICE: &str = "__Host-gatehouse-device-";
/// What the form token is a MAC of.
const FORM_PURPOSE: &str = "web-form-token";

/// The content security policy of every page: our own origin only, no inline script or
/// style, images also as `data:` (the QR code), never inside a frame.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The headers every page carries. Pages hold form tokens and flow state, some show
/// secrets (QR code, recovery codes): none is ever stored by a browser or a proxy.
pub(crate) fn page_headers(st: &web::Data<WebState>) -> DefaultHeaders {
    let h = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CSP))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CACHE_CONTROL, "no-store"));
    if st.https() {
        h.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"))
    } else {
        h
    }
}

/// A form that cannot be read (too large, not urlencoded, a field missing).
pub(crate) fn bad_form(
    err: actix_web::error::UrlencodedError,
    _req: &HttpRequest,
) -> actix_web::Error {
    tracing::debug!(error = %err, "unreadable form");
    let page = pages::render(&Message::new(
        crate::words::BAD_FORM_TITLE,
        crate::words::BAD_FORM,
    ));
    actix_web::error::InternalError::from_response(
        err,
        HttpResponse::BadRequest()
            .content_type("text/html; charset=utf-8")
            .body(page),
    )
    .into()
}

/// The cookie that remembers this computer for one user: its name is derived from the
/// company and user ID, so several people sharing a browser each keep their own.
fn device_cookie(company: &str, username: &str) -> String {
    let who = format!(
        "{}/{}",
        company.trim().to_lowercase(),
        username.trim().to_lowercase()
    );
    format!(
        "{DEVICE}{}",
        hex::encode(&Sha256::digest(who.as_bytes())[..8])
    )
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// One request's browser: its cookies as the response will leave them, and who it is.
pub(crate) struct Browser {
    req: HttpRequest,
    st: web::Data<WebState>,
    seed: String,
    out: Vec<Cookie<'static>>,
    pub(crate) flow: Option<FlowId>,
    /// The authorization request (OpenID Connect) the sign-in is for.
    pub(crate) oidc: Option<uuid::Uuid>,
    pub(crate) session: Option<SecretString>,
    pub(crate) meta: RequestMeta,
}

impl Browser {
    /// The browser of a request that changes nothing.
    pub(crate) fn of(req: &HttpRequest, st: &web::Data<WebState>) -> Self {
        let mut out = Vec::new();
        let seed = match req.cookie(CSRF) {
            Some(c) if !c.value().is_empty() => c.value().to_owned(),
            _ => {
                let s = random_token();
                out.push(host_cookie(CSRF, s.clone(), SameSite::Strict, None));
                s
            }
        };
        let flow = req
            .cookie(FLOW)
            .and_then(|c| uuid::Uuid::parse_str(c.value()).ok())
            .map(FlowId);
        let oidc = req
            .cookie(OIDC)
            .and_then(|c| uuid::Uuid::parse_str(c.value()).ok());
        let session = req
            .cookie(SESSION)
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .map(SecretString::from);
        let peer = req.peer_addr().map(|a| a.ip());
        let ip = peer.map(|peer| {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok());
            gatehouse_domain::networks::client_ip(peer, forwarded, &st.trusted_proxies)
        });
        let meta = RequestMeta {
            ip,
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        Browser {
            req: req.clone(),
            st: st.clone(),
            seed,
            out,
            flow,
            oidc,
            session,
            meta,
        }
    }

    /// The browser of a form post: refused unless it comes from our own origin and
    /// carries the token of a form we gave this browser.
    pub(crate) fn posted(
        req: &HttpRequest,
        st: &web::Data<WebState>,
        token: &str,
    ) -> Result<Self, Box<HttpResponse>> {
        let refused = |why: Refused| {
            tracing::info!(?why, path = req.path(), "form post refused");
            let page = pages::render(&Message::new(
                crate::words::REFUSED_TITLE,
                crate::words::refused(why),
            ));
            HttpResponse::Forbidden()
                .content_type("text/html; charset=utf-8")
                .body(page)
        };
        if !same_origin(req, st) {
            return Err(Box::new(refused(Refused::CrossSite)));
        }
        let seed = req.cookie(CSRF).map(|c| c.value().to_owned());
        let valid = seed.is_some_and(|s| {
            !s.is_empty()
                && st
                    .keyring
                    .keys()
                    .any(|k| k.mac_matches(FORM_PURPOSE, &[s.as_bytes()], token))
        });
        if !valid {
            return Err(Box::new(refused(Refused::Token)));
        }
        Ok(Self::of(req, st))
    }

    /// The token the forms of the page about to be drawn carry.
    pub(crate) fn form_token(&self) -> String {
        self.st
            .keyring
            .current()
            .mac(FORM_PURPOSE, &[self.seed.as_bytes()])
    }

    /// A new form-token seed: a session starts or ends, and no form drawn before it
    /// may act on the new one.
    fn renew_seed(&mut self) {
        self.seed = random_token();
        self.set(host_cookie(CSRF, self.seed.clone(), SameSite::Strict, None));
    }

    fn set(&mut self, c: Cookie<'static>) {
        self.out.retain(|o| o.name() != c.name());
        self.out.push(c);
    }

    /// The flow this browser is now in, kept until it expires.
    pub(crate) fn set_flow(&mut self, id: FlowId, seconds_left: i64) {
        self.flow = Some(id);
        let c = host_cookie(
            FLOW,
            id.0.to_string(),
            SameSite::Lax,
            Some(Duration::seconds(seconds_left.max(1))),
        );
        self.set(c);
    }

    /// The flow is over (done, expired, or abandoned).
    pub(crate) fn clear_flow(&mut self) {
        if self.flow.take().is_some() || self.req.cookie(FLOW).is_some() {
            self.set(removal(FLOW));
        }
    }

    /// The sign-in that follows is for this authorization request (kept as long as the
    /// request waits).
    pub(crate) fn set_oidc(&mut self, id: uuid::Uuid) {
        self.oidc = Some(id);
        let c = host_cookie(
            OIDC,
            id.to_string(),
            SameSite::Lax,
            Some(Duration::seconds(gatehouse_domain::oidc::REQUEST_SECONDS)),
        );
        self.set(c);
    }

    /// The authorization request is answered (or gone).
    pub(crate) fn clear_oidc(&mut self) {
        if self.oidc.take().is_some() || self.req.cookie(OIDC).is_some() {
            self.set(removal(OIDC));
        }
    }

    /// A session started: the browser holds its token until the browser closes or it
    /// ends; form tokens of pages drawn before no longer work.
    pub(crate) fn start_session(&mut self, token: &SecretString) {
        self.session = Some(token.clone());
        let c = host_cookie(
            SESSION,
            token.expose_secret().to_owned(),
            SameSite::Lax,
            None,
        );
        self.set(c);
        self.renew_seed();
    }

    /// The session ended (or was not valid any more).
    pub(crate) fn end_session(&mut self) {
        self.session = None;
        self.set(removal(SESSION));
        self.renew_seed();
    }

    /// The company last used on this computer.
    pub(crate) fn company(&self) -> Option<String> {
        self.req
            .cookie(COMPANY)
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 64)
    }

    /// Remembers the company for the next sign-in on this computer.
    pub(crate) fn remember_company(&mut self, company: &str) {
        let mut c = Cookie::new(COMPANY, company.trim().to_lowercase());
        c.set_path("/");
        c.set_secure(true);
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_max_age(Duration::days(400));
        self.set(c);
    }

    /// This computer's remembered-device token for one user, if it keeps one.
    pub(crate) fn device_token(&self, company: &str, username: &str) -> Option<SecretString> {
        self.req
            .cookie(&device_cookie(company, username))
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .map(SecretString::from)
    }

    /// Keeps a remembered-device token for one user for the practice's hours.
    pub(crate) fn remember_device(
        &mut self,
        (company, username): (&str, &str),
        token: &SecretString,
        hours: u32,
    ) {
        let c = host_cookie(
            &device_cookie(company, username),
            token.expose_secret().to_owned(),
            SameSite::Lax,
            Some(Duration::hours(i64::from(hours.max(1)))),
        );
        self.set(c);
    }

    /// The response: `html` with `status`, and the cookies this request set.
    pub(crate) fn page(self, status: StatusCode, html: String) -> HttpResponse {
        let mut r = HttpResponse::build(status);
        r.content_type("text/html; charset=utf-8");
        for c in self.out {
            r.cookie(c);
        }
        r.body(html)
    }

    /// A redirect to one of our own paths (never anywhere a request names).
    pub(crate) fn see_other(self, path: &'static str) -> HttpResponse {
        self.redirect(path)
    }

    /// A redirect to a client's registered redirect URI, as the OpenID Connect use case
    /// made it (never an address a request names unchecked).
    pub(crate) fn back_to_client(self, url: &str) -> HttpResponse {
        self.redirect(url)
    }

    fn redirect(self, location: &str) -> HttpResponse {
        let mut r = HttpResponse::SeeOther();
        r.insert_header((header::LOCATION, location));
        for c in self.out {
            r.cookie(c);
        }
        r.finish()
    }
}

/// Whether a request comes from a page of our own origin. A browser that sends
/// `Sec-Fetch-Site` (a header no page can set) must say `same-origin`; its `Origin` may
/// then be `null` (our `Referrer-Policy: no-referrer` makes Chromium send that on form
/// posts) or our public origin, nothing else. Without `Sec-Fetch-Site`, `Origin` must be
/// the public origin. A request with neither is refused.
fn same_origin(req: &HttpRequest, st: &WebState) -> bool {
    let h = req.headers();
    let origin = h.get(header::ORIGIN).map(|v| v.to_str().unwrap_or(""));
    let ours = |o: &str| o == st.origin();
    match h.get("sec-fetch-site").map(|v| v.to_str().unwrap_or("")) {
        Some(site) => site == "same-origin" && origin.is_none_or(|o| o == "null" || ours(o)),
        None => origin.is_some_and(ours),
    }
}

/// A `__Host-` cookie: Secure, Path=/, no Domain, HttpOnly.
fn host_cookie(
    name: &str,
    value: String,
    same_site: SameSite,
    max_age: Option<Duration>,
) -> Cookie<'static> {
    let mut c = Cookie::new(name.to_owned(), value);
    c.set_path("/");
    c.set_secure(true);
    c.set_http_only(true);
    c.set_same_site(same_site);
    if let Some(a) = max_age {
        c.set_max_age(a);
    }
    c
}

fn removal(name: &str) -> Cookie<'static> {
    let mut c = host_cookie(name, String::new(), SameSite::Lax, None);
    c.make_removal();
    c
}
