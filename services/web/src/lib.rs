//! Gatehouse's pages (web.md): the hosted sign-in (W1) and "My account" (W2), rendered on
//! the server with askama and served, with their style sheet and script, from the binary.
//!
//! Every page action calls the same `gatehouse-app` use case as its JSON API twin, so a
//! page and the API cannot disagree; this crate only reads forms, keeps the browser's
//! cookies and draws HTML. Every step works with JavaScript off; the script only counts
//! the code's time down and the resend wait.
//!
//! Browser security (web.md "Security") lives in [`browser`]: the `__Host-` session
//! cookie over the API's own sessions, CSRF refused by an origin check and a form token,
//! and the headers every page carries (a strict CSP with `frame-ancestors 'none'`).

mod account;
mod assets;
mod browser;
mod oidc;
mod pages;
mod signin;
mod words;

use actix_web::web;
use gatehouse_domain::crypto::Keyring;
use ipnet::IpNet;
use std::sync::Arc;

/// What the pages need.
#[derive(Clone, Debug)]
pub struct WebState {
    pub app: gatehouse_app::App,
    /// GATEHOUSE_PUBLIC_URL: the origin people reach; same-origin checks compare with it.
    pub public_url: url::Url,
    /// Proxies whose X-Forwarded-For is believed (as the API's).
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// Keys the form tokens (CSRF).
    pub keyring: Arc<Keyring>,
    /// The OpenID Connect issuer: the public origin (no trailing slash).
    pub issuer: String,
}

impl WebState {
    /// The public origin, as a browser sends it in `Origin`.
    pub(crate) fn origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// Whether pages are served over https (then HSTS is sent).
    pub(crate) fn https(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// Largest form accepted; every form of the pages is far smaller.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Registers the pages and their assets on an `App`. Register before the API, whose
/// default service answers every other path.
pub fn configure(state: WebState) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let data = web::Data::new(state);
    move |cfg: &mut web::ServiceConfig| {
        let headers = browser::page_headers(&data);
        let forms = web::FormConfig::default()
            .limit(MAX_FORM_BYTES)
            .error_handler(browser::bad_form);
        cfg.service(
            web::resource("/assets/{name}")
                .app_data(data.clone())
                .route(web::get().to(assets::serve)),
        )
        .service(
            web::resource("/")
                .wrap(headers.clone())
                .route(web::get().to(signin::home)),
        )
        .service(
            web::scope("/signin")
                .app_data(data.clone())
                .app_data(forms.clone())
                .wrap(headers.clone())
                .configure(signin::routes),
        )
        .service(
            web::scope("/account")
                .app_data(data.clone())
                .app_data(forms.clone())
                .wrap(headers.clone())
                .configure(account::routes),
        )
        .service(
            web::resource("/oauth2/authorize")
                .app_data(data.clone())
                .app_data(forms.clone())
                .wrap(headers.clone())
                .route(web::get().to(oidc::authorize))
                .route(web::post().to(oidc::authorize_posted)),
        )
        .service(
            web::resource("/oauth2/resume")
                .app_data(data.clone())
                .wrap(headers.clone())
                .route(web::get().to(oidc::resume)),
        )
        .service(
            web::resource("/oauth2/logout")
                .app_data(data.clone())
                .wrap(headers.clone())
                .route(web::get().to(oidc::logout)),
        )
        .service(
            web::resource("/signout")
                .app_data(data.clone())
                .app_data(forms)
                .wrap(headers)
                .route(web::post().to(account::sign_out)),
        );
    }
}
