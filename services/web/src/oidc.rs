//! The OpenID Connect provider's browser side (oidc.md): `/oauth2/authorize` hands over to
//! the sign-in pages and back, `/oauth2/logout` ends the browser session for every client.
//! The rules are gatehouse-app's `oidc` use cases; this module keeps the request's cookie
//! and draws the pages.

use crate::WebState;
use crate::browser::Browser;
use crate::pages::{Chrome, Continue, Message, render};
use crate::words;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use gatehouse_app::Principal;
use gatehouse_app::oidc::{AuthorizeError, AuthorizeParams, LogoutParams, Pending};
use gatehouse_domain::oidc::Prompt;
use std::collections::HashMap;

/// `GET /oauth2/authorize` (and `POST`, OIDC Core 3.1.2.1).
pub(crate) async fn authorize(
    req: HttpRequest,
    st: web::Data<WebState>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    start(req, st, q.into_inner()).await
}

/// `POST /oauth2/authorize`: the same parameters as a form.
pub(crate) async fn authorize_posted(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    start(req, st, f.into_inner()).await
}

fn params(mut m: HashMap<String, String>) -> AuthorizeParams {
    let mut take = |k: &str| m.remove(k).filter(|v| !v.is_empty());
    AuthorizeParams {
        response_type: take("response_type"),
        client_id: take("client_id"),
        redirect_uri: take("redirect_uri"),
        scope: take("scope"),
        state: take("state"),
        nonce: take("nonce"),
        code_challenge: take("code_challenge"),
        code_challenge_method: take("code_challenge_method"),
        prompt: take("prompt"),
        max_age: take("max_age"),
        login_hint: take("login_hint"),
        company: take("company"),
        acr_values: take("acr_values"),
        request: take("request"),
        request_uri: take("request_uri"),
        response_mode: take("response_mode"),
    }
}

async fn start(
    req: HttpRequest,
    st: web::Data<WebState>,
    m: HashMap<String, String>,
) -> HttpResponse {
    let b = Browser::of(&req, &st);
    let oidc = st.app.oidc(&st.issuer);
    match oidc.begin(params(m)).await {
        Ok(pending) => proceed(b, &st, pending).await,
        Err(e) => refused(b, e),
    }
}

/// The browser's live session, if any (a dead one is forgotten).
async fn session_of(b: &mut Browser, st: &WebState) -> Option<Principal> {
    let token = b.session.clone()?;
    match st.app.deployment().authenticate(&token).await {
        Ok(p) => Some(p),
        Err(_) => {
            b.end_session();
            None
        }
    }
}

/// A checked request: answered by the browser's session (single sign-on), refused with
/// `login_required`, or handed to the sign-in pages.
async fn proceed(mut b: Browser, st: &WebState, pending: Pending) -> HttpResponse {
    let oidc = st.app.oidc(&st.issuer);
    let session = session_of(&mut b, st).await;
    if let Some(p) = &session
        && oidc.session_answers(&pending, p)
    {
        let meta = b.meta.clone();
        return match oidc.answer(&pending, p, true, &meta).await {
            Ok(url) => {
                b.clear_oidc();
                b.back_to_client(&url)
            }
            Err(e) => refused(b, e),
        };
    }
    if pending.prompt == Some(Prompt::None) {
        return match oidc.login_required(&pending).await {
            Ok(url) => b.back_to_client(&url),
            Err(e) => refused(b, AuthorizeError::Failed(e)),
        };
    }
    b.clear_flow();
    b.set_oidc(pending.request.id);
    b.see_other("/signin")
}

/// A refusal: back to the client where its redirect URI is known, else on our page.
fn refused(mut b: Browser, e: AuthorizeError) -> HttpResponse {
    b.clear_oidc();
    match e {
        AuthorizeError::Redirect(url) => b.back_to_client(&url),
        AuthorizeError::Page(text) => {
            let c = Chrome::new(words::OIDC_REFUSED_TITLE, b.form_token()).alert(Some(text));
            let html = render(&Message {
                c,
                text: words::OIDC_REFUSED.to_owned(),
            });
            b.page(StatusCode::BAD_REQUEST, html)
        }
        AuthorizeError::Failed(e) => {
            tracing::error!(error = %e, "an authorization request failed");
            let c = Chrome::new(words::OIDC_REFUSED_TITLE, b.form_token())
                .alert(Some(words::TRY_LATER.to_owned()));
            let html = render(&Message {
                c,
                text: words::OIDC_REFUSED.to_owned(),
            });
            b.page(StatusCode::SERVICE_UNAVAILABLE, html)
        }
    }
}

/// What the sign-in page is filled with for the request this browser signs in for.
pub(crate) async fn hints(b: &Browser, st: &WebState) -> Option<Pending> {
    let id = b.oidc?;
    st.app.oidc(&st.issuer).pending(id).await.ok().flatten()
}

/// `GET /oauth2/resume`: the sign-in for a request ended; the request is answered with
/// the new session, and the browser moves on to the client.
pub(crate) async fn resume(req: HttpRequest, st: web::Data<WebState>) -> HttpResponse {
    let mut b = Browser::of(&req, &st);
    let oidc = st.app.oidc(&st.issuer);
    let Some(pending) = hints(&b, &st).await else {
        return refused(b, AuthorizeError::Page(words::OIDC_EXPIRED.to_owned()));
    };
    let Some(p) = session_of(&mut b, &st).await else {
        return b.see_other("/signin");
    };
    // Only a sign-in made for this request, or a session that answers it anyway.
    if p.created_at < pending.request.created_at && !oidc.session_answers(&pending, &p) {
        return b.see_other("/signin");
    }
    let meta = b.meta.clone();
    let url = match oidc.answer(&pending, &p, false, &meta).await {
        Ok(url) => url,
        Err(AuthorizeError::Redirect(url)) => url,
        Err(e) => return refused(b, e),
    };
    b.clear_oidc();
    let c = Chrome::new(words::OIDC_RETURN_TITLE, b.form_token())
        .practice(Some(p.tenant.name.as_str()));
    let html = render(&Continue {
        c,
        text: words::oidc_return(&pending.client_name),
        url,
    });
    b.page(StatusCode::OK, html)
}

fn logout_params(mut m: HashMap<String, String>) -> LogoutParams {
    let mut take = |k: &str| m.remove(k).filter(|v| !v.is_empty() && v.len() <= 8192);
    LogoutParams {
        id_token_hint: take("id_token_hint"),
        client_id: take("client_id"),
        post_logout_redirect_uri: take("post_logout_redirect_uri"),
        state: take("state"),
    }
}

/// `GET /oauth2/logout` (RP-Initiated Logout 1.0, as oidc.md has it): the browser session
/// ends with every token issued in it, then the browser goes back to the application's
/// registered address, or is told it is signed out. An `id_token_hint` must be one of
/// ours; the return address must be registered by the application it or `client_id`
/// names.
pub(crate) async fn logout(
    req: HttpRequest,
    st: web::Data<WebState>,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let mut b = Browser::of(&req, &st);
    let p = logout_params(q.into_inner());
    let target = match st.app.oidc(&st.issuer).logout_target(&p).await {
        Ok(t) => t,
        Err(e) => return refused(b, e),
    };
    let session = session_of(&mut b, &st).await;
    signed_out(b, &st, session, target).await
}

/// Ends the session (and its tokens), then returns to the client or says so.
async fn signed_out(
    mut b: Browser,
    st: &WebState,
    session: Option<Principal>,
    target: Option<String>,
) -> HttpResponse {
    if let Some(p) = session {
        let meta = b.meta.clone();
        if let Err(e) = st.app.oidc(&st.issuer).logout(&p, &meta).await {
            return refused(b, AuthorizeError::Failed(e));
        }
    }
    b.end_session();
    b.clear_flow();
    b.clear_oidc();
    match target {
        Some(url) => b.back_to_client(&url),
        None => {
            let c = Chrome::new(words::SIGNED_OUT_TITLE, b.form_token());
            let html = render(&Message {
                c,
                text: words::SIGNED_OUT.to_owned(),
            });
            b.page(StatusCode::OK, html)
        }
    }
}
