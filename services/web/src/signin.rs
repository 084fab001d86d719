//! W1: the hosted sign-in, one page per step of the flow. Each post calls the same use
//! case as its `/v1/auth/...` twin and draws the flow's next step; a refusal draws the
//! same step again with the reason in words.

use crate::WebState;
use crate::browser::Browser;
use crate::pages::{
    Choice, Chrome, Enroll, EnrollContact, EnrollTotp, NewPassword, Password, RecoveryCodes,
    TotpConfirm, Verify, render,
};
use crate::words;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use gatehouse_app::Error;
use gatehouse_app::signin::{FlowView, LoginInput, VerifyInput};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::FlowId;
use gatehouse_domain::mfa::codes::Channel;
use gatehouse_domain::mfa::flow::{CodeSent, Proof, factor_of};
use gatehouse_domain::mfa::step::Factor;
use gatehouse_domain::signin::FlowStatus;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(page))
        .route("", web::post().to(login))
        .route("/password", web::post().to(new_password))
        .route("/verify", web::post().to(verify))
        .route("/code", web::post().to(send_code))
        .route("/method", web::post().to(other_method))
        .route("/enroll", web::post().to(enroll))
        .route("/enroll/totp", web::post().to(enroll_totp))
        .route("/enroll/totp/confirm", web::post().to(confirm_totp))
        .route("/enroll/contact", web::post().to(enroll_contact))
        .route("/enroll/contact/confirm", web::post().to(confirm_contact))
        .route("/skip", web::post().to(skip))
        .route("/continue", web::post().to(done))
        .route("/restart", web::post().to(restart));
}

/// `GET /`: the sign-in page.
pub(crate) async fn home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/signin"))
        .finish()
}

/// The status a refusal is drawn with (as its API twin answers).
pub(crate) fn status_of(e: &Error) -> StatusCode {
    let Error::Domain(d) = e else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    match d {
        DomainError::InvalidCredentials | DomainError::Unauthenticated => StatusCode::UNAUTHORIZED,
        DomainError::AccountLocked => StatusCode::LOCKED,
        DomainError::AccountInactive
        | DomainError::OutsideLoginHours(_)
        | DomainError::TenantSuspended
        | DomainError::Forbidden(_)
        | DomainError::StepUpRequired => StatusCode::FORBIDDEN,
        DomainError::RateLimited { .. } | DomainError::MfaCodeExhausted => {
            StatusCode::TOO_MANY_REQUESTS
        }
        DomainError::MfaCodeInvalid { .. } => StatusCode::BAD_REQUEST,
        DomainError::MfaCodeExpired | DomainError::FlowExpired | DomainError::FlowCompleted => {
            StatusCode::GONE
        }
        DomainError::NotFound => StatusCode::NOT_FOUND,
        DomainError::Validation(_) | DomainError::PasswordPolicy(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        _ => StatusCode::CONFLICT,
    }
}

/// Whether the flow itself is gone (expired, finished, unknown): the page starts over.
fn flow_gone(e: &Error) -> bool {
    matches!(
        e,
        Error::Domain(
            DomainError::FlowExpired | DomainError::FlowCompleted | DomainError::NotFound
        )
    )
}

/// How a step's page is drawn beyond what the flow says.
#[derive(Default)]
struct Shown {
    alert: Option<String>,
    status: Option<StatusCode>,
    /// The factor picked with "Use another method" (else the flow's preferred one).
    factor: Option<Factor>,
    /// The code just sent (else the one sent on entering the step, if any).
    sent: Option<CodeSent>,
    resend_wait: Option<u64>,
}

impl Shown {
    fn refused(e: &Error) -> Self {
        let resend_wait = match e {
            Error::Domain(DomainError::RateLimited { retry_after_secs }) => Some(*retry_after_secs),
            _ => None,
        };
        Shown {
            alert: Some(words::error(e)),
            status: Some(status_of(e)),
            resend_wait,
            ..Shown::default()
        }
    }

    fn factor(mut self, f: Option<Factor>) -> Self {
        self.factor = f;
        self
    }
}

/// The password page, with what was typed (never the password) and a refusal.
fn password_page(
    b: Browser,
    company: String,
    username: String,
    refusal: Option<&Error>,
) -> HttpResponse {
    let status = refusal.map_or(StatusCode::OK, status_of);
    let c = Chrome::new("Sign in", b.form_token()).alert(refusal.map(words::error));
    let html = render(&Password {
        c,
        company,
        username,
    });
    b.page(status, html)
}

/// The flow is gone: back to the password page, saying why.
fn start_over(mut b: Browser, e: &Error) -> HttpResponse {
    b.clear_flow();
    let company = b.company().unwrap_or_default();
    password_page(b, company, String::new(), Some(e))
}

fn m_ss(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{}:{:02}", s / 60, s % 60)
}

fn choice(f: Factor) -> Choice {
    Choice {
        value: match f {
            Factor::Email => "email",
            Factor::Sms => "sms",
            Factor::Totp => "totp",
            Factor::RecoveryCode => "recovery_code",
        },
        label: words::factor(f),
    }
}

fn factor_named(name: &str) -> Option<Factor> {
    match name {
        "email" => Some(Factor::Email),
        "sms" => Some(Factor::Sms),
        "totp" => Some(Factor::Totp),
        "recovery_code" => Some(Factor::RecoveryCode),
        _ => None,
    }
}

/// The recovery codes as a `data:` URL, for "Download".
pub(crate) fn download_url(codes: &[String]) -> String {
    let text = codes.join("\n") + "\n";
    format!(
        "data:text/plain;charset=utf-8,{}",
        url::form_urlencoded::byte_serialize(text.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    )
}

/// Draws the step `view` is at. A sign-in that has just completed first ends the session
/// this browser held before (an application asked for a new sign-in: `prompt=login`,
/// `max_age`, a second factor), so that one browser holds one session.
async fn show(mut b: Browser, st: &WebState, view: FlowView, shown: Shown) -> HttpResponse {
    if view.session.is_some()
        && let Some(old) = b.session.take()
        && let Ok(p) = st.app.deployment().authenticate(&old).await
    {
        let meta = b.meta.clone();
        if let Err(e) = st.app.signin().logout(&p, &meta).await {
            tracing::warn!(error = %e, "the session this sign-in replaces could not be ended");
        }
    }
    flow_page(b, view, shown)
}

/// Draws the page of the step `view` is at. An authenticated flow starts the browser
/// session (and keeps a remembered computer for this user), then shows the recovery
/// codes just made, or goes to "My account".
fn flow_page(mut b: Browser, view: FlowView, shown: Shown) -> HttpResponse {
    let practice = Some(view.practice.name.as_str());
    let status = shown.status.unwrap_or(StatusCode::OK);
    match view.status {
        FlowStatus::Authenticated => {
            b.clear_flow();
            if let Some(s) = &view.session {
                b.start_session(&s.token);
            }
            if let Some(t) = &view.device_token {
                let who = (view.practice.company.as_str(), view.username.as_str());
                b.remember_device(who, t, view.practice.remember_device_hours);
            }
            match view.recovery_codes {
                // Back to the application that asked for this sign-in.
                None if b.oidc.is_some() => b.see_other("/oauth2/resume"),
                Some(codes) => {
                    let download = download_url(&codes);
                    let c =
                        Chrome::new("Save your recovery codes", b.form_token()).practice(practice);
                    let html = render(&RecoveryCodes { c, codes, download });
                    b.page(StatusCode::OK, html)
                }
                None => b.see_other("/account"),
            }
        }
        FlowStatus::PasswordChangeRequired => {
            b.set_flow(view.flow_id, (view.expires_at - Utc::now()).num_seconds());
            let c = Chrome::new("Change your password", b.form_token())
                .practice(practice)
                .alert(shown.alert);
            let rules = words::password_rules(&view.practice.password_policy);
            b.page(status, render(&NewPassword { c, rules }))
        }
        FlowStatus::MfaRequired => {
            b.set_flow(view.flow_id, (view.expires_at - Utc::now()).num_seconds());
            let mfa = view
                .mfa
                .unwrap_or_else(|| gatehouse_domain::mfa::flow::FlowMfa {
                    methods: Vec::new(),
                    preferred: None,
                    code_sent: None,
                    code_error: None,
                });
            let factor = shown
                .factor
                .filter(|f| mfa.methods.contains(f))
                .or(mfa.preferred)
                .or_else(|| mfa.methods.first().copied());
            let alert = shown
                .alert
                .or_else(|| mfa.code_error.as_ref().map(words::domain));
            let sent = shown.sent.or(mfa.code_sent);
            let (mode, channel, channel_words, code_label) = match factor {
                Some(Factor::Sms) => ("code", "sms", "text message", "Code"),
                Some(Factor::Email) => ("code", "email", "email", "Code"),
                Some(Factor::RecoveryCode) => ("recovery_code", "", "", "Recovery code"),
                _ => ("totp", "", "", "Authenticator code"),
            };
            let sent = sent.filter(|s| Some(factor_of(s.channel)) == factor);
            let hours = view.practice.remember_device_hours;
            let c = Chrome::new("Confirm it's you", b.form_token())
                .practice(practice)
                .alert(alert);
            let page = Verify {
                c,
                mode,
                channel,
                channel_words,
                code_label,
                time_left: sent
                    .as_ref()
                    .map(|s| m_ss((s.expires_at - Utc::now()).num_seconds())),
                expires_at: sent.as_ref().map(|s| s.expires_at.to_rfc3339()),
                sent_to: sent.map(|s| s.to),
                remember_label: (hours > 0).then(|| match hours {
                    1 => "Remember this computer for 1 hour".to_owned(),
                    h => format!("Remember this computer for {h} hours"),
                }),
                resend_wait: shown.resend_wait,
                others: mfa
                    .methods
                    .iter()
                    .filter(|f| Some(**f) != factor)
                    .map(|f| choice(*f))
                    .collect(),
            };
            b.page(status, render(&page))
        }
        FlowStatus::MfaEnrollmentRequired | FlowStatus::MfaEnrollmentSuggested => {
            b.set_flow(view.flow_id, (view.expires_at - Utc::now()).num_seconds());
            let options = view
                .mfa
                .map(|m| m.methods.into_iter().map(choice).collect())
                .unwrap_or_default();
            let c = Chrome::new("Set up a second factor", b.form_token())
                .practice(practice)
                .alert(shown.alert);
            let page = Enroll {
                c,
                options,
                suggested: view.status == FlowStatus::MfaEnrollmentSuggested,
            };
            b.page(status, render(&page))
        }
    }
}

/// The flow's current step drawn again, with a refusal of the step just tried.
async fn again(b: Browser, st: &WebState, id: FlowId, shown: Shown) -> HttpResponse {
    match st.app.signin().current(id).await {
        Ok(view) => show(b, st, view, shown).await,
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e) => {
            let company = b.company().unwrap_or_default();
            password_page(b, company, String::new(), Some(&e))
        }
    }
}

/// A post to a step: the browser, if the post is ours, and the flow it is in.
fn step(
    req: &HttpRequest,
    st: &web::Data<WebState>,
    csrf: &str,
) -> Result<(Browser, FlowId), Box<HttpResponse>> {
    let b = Browser::posted(req, st, csrf)?;
    match b.flow {
        Some(id) => Ok((b, id)),
        None => Err(Box::new(start_over(
            b,
            &Error::Domain(DomainError::FlowExpired),
        ))),
    }
}

#[derive(Deserialize)]
pub(crate) struct PageQuery {
    company: Option<String>,
}

/// `GET /signin`: the step the browser's flow is at, or the password page.
async fn page(req: HttpRequest, st: web::Data<WebState>, q: web::Query<PageQuery>) -> HttpResponse {
    let mut b = Browser::of(&req, &st);
    if let Some(id) = b.flow {
        return match st.app.signin().current(id).await {
            Ok(view) => show(b, &st, view, Shown::default()).await,
            Err(e) if flow_gone(&e) => {
                b.clear_flow();
                let company = b.company().unwrap_or_default();
                password_page(b, company, String::new(), None)
            }
            Err(e) => start_over(b, &e),
        };
    }
    // An application's request that the session did not answer asks for a new sign-in.
    let pending = crate::oidc::hints(&b, &st).await;
    if pending.is_none()
        && let Some(token) = b.session.clone()
    {
        match st.app.deployment().authenticate(&token).await {
            Ok(_) => return b.see_other("/account"),
            Err(_) => b.end_session(),
        }
    }
    let (hinted_company, username) = match pending {
        Some(p) => (p.company_hint, p.username_hint),
        None => (None, None),
    };
    let company = q
        .into_inner()
        .company
        .or(hinted_company)
        .filter(|c| !c.trim().is_empty() && c.len() <= 64)
        .or_else(|| b.company())
        .unwrap_or_default();
    let username = username.filter(|u| u.len() <= 64).unwrap_or_default();
    password_page(b, company, username, None)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    csrf: String,
    company: String,
    username: String,
    password: SecretString,
}

/// `POST /signin`: the password step.
async fn login(req: HttpRequest, st: web::Data<WebState>, f: web::Form<LoginForm>) -> HttpResponse {
    let f = f.into_inner();
    let mut b = match Browser::posted(&req, &st, &f.csrf) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    // A new sign-in replaces one in progress in this browser.
    b.clear_flow();
    let device_token = b.device_token(&f.company, &f.username);
    // An application that asked for a second factor (acr_values) gets one proven.
    let require_second_factor = crate::oidc::hints(&b, &st)
        .await
        .is_some_and(|p| p.request.require_mfa);
    let input = LoginInput {
        company: f.company.clone(),
        username: f.username.clone(),
        password: f.password,
        device_token,
        require_second_factor,
    };
    let meta = b.meta.clone();
    match st.app.signin().login(input, &meta).await {
        Ok(view) => {
            b.remember_company(view.practice.company.as_str());
            show(b, &st, view, Shown::default()).await
        }
        Err(e) => password_page(b, f.company, f.username, Some(&e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct NewPasswordForm {
    csrf: String,
    new_password: SecretString,
    confirm_password: SecretString,
}

/// `POST /signin/password`: a temporary password replaced.
async fn new_password(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<NewPasswordForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if f.new_password.expose_secret() != f.confirm_password.expose_secret() {
        let shown = Shown {
            alert: Some(words::PASSWORDS_DIFFER.to_owned()),
            status: Some(StatusCode::UNPROCESSABLE_ENTITY),
            ..Shown::default()
        };
        return again(b, &st, id, shown).await;
    }
    let meta = b.meta.clone();
    match st
        .app
        .signin()
        .change_password(id, f.new_password, &meta)
        .await
    {
        Ok(view) => show(b, &st, view, Shown::default()).await,
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e) => again(b, &st, id, Shown::refused(&e)).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct VerifyForm {
    csrf: String,
    method: String,
    #[serde(default)]
    channel: String,
    code: SecretString,
    remember: Option<String>,
}

/// `POST /signin/verify`: a code, an authenticator code or a recovery code.
async fn verify(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<VerifyForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let (proof, factor) = match f.method.as_str() {
        "code" => (Proof::Code, Channel::parse(&f.channel).map(factor_of)),
        "totp" => (Proof::Totp, Some(Factor::Totp)),
        "recovery_code" => (Proof::RecoveryCode, Some(Factor::RecoveryCode)),
        _ => {
            let e = Error::Domain(DomainError::field("method", "unknown method"));
            return again(b, &st, id, Shown::refused(&e)).await;
        }
    };
    let input = VerifyInput {
        method: proof,
        code: f.code,
        remember_device: f.remember.is_some(),
    };
    let meta = b.meta.clone();
    match st.app.signin().verify(id, input, &meta).await {
        Ok(view) => show(b, &st, view, Shown::default()).await,
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e) => again(b, &st, id, Shown::refused(&e).factor(factor)).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct ChannelForm {
    csrf: String,
    channel: String,
}

/// Sends a sign-in code and draws the code step for it.
async fn send_and_show(b: Browser, st: &WebState, id: FlowId, channel: Channel) -> HttpResponse {
    let factor = Some(factor_of(channel));
    let meta = b.meta.clone();
    match st.app.signin().send_code(id, channel, &meta).await {
        Ok(sent) => {
            let shown = Shown {
                sent: Some(sent),
                factor,
                ..Shown::default()
            };
            again(b, st, id, shown).await
        }
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e) => again(b, st, id, Shown::refused(&e).factor(factor)).await,
    }
}

/// `POST /signin/code`: "Send a new code".
async fn send_code(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<ChannelForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match Channel::parse(&f.channel) {
        Some(ch) => send_and_show(b, &st, id, ch).await,
        None => again(b, &st, id, Shown::default()).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct MethodForm {
    csrf: String,
    method: String,
}

/// `POST /signin/method`: "Use another method". A code method sends its code at once.
async fn other_method(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<MethodForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match factor_named(&f.method) {
        Some(Factor::Email) => send_and_show(b, &st, id, Channel::Email).await,
        Some(Factor::Sms) => send_and_show(b, &st, id, Channel::Sms).await,
        other => again(b, &st, id, Shown::default().factor(other)).await,
    }
}

/// `POST /signin/enroll`: the method to set up.
async fn enroll(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<MethodForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let view = match st.app.signin().current(id).await {
        Ok(v) => v,
        Err(e) => return start_over(b, &e),
    };
    let offered = view
        .mfa
        .as_ref()
        .map(|m| m.methods.clone())
        .unwrap_or_default();
    let enrolling = matches!(
        view.status,
        FlowStatus::MfaEnrollmentRequired | FlowStatus::MfaEnrollmentSuggested
    );
    let practice = Some(view.practice.name.as_str());
    match factor_named(&f.method).filter(|f| enrolling && offered.contains(f)) {
        Some(Factor::Totp) => {
            let c = Chrome::new("Set up your authenticator app", b.form_token()).practice(practice);
            let html = render(&EnrollTotp {
                c,
                label: view.username.clone(),
            });
            b.page(StatusCode::OK, html)
        }
        Some(f @ (Factor::Email | Factor::Sms)) => {
            let c = Chrome::new(contact_title(f), b.form_token()).practice(practice);
            let html = render(&contact_page(c, f, String::new(), None));
            b.page(StatusCode::OK, html)
        }
        _ => show(b, &st, view, Shown::default()).await,
    }
}

fn contact_title(f: Factor) -> &'static str {
    match f {
        Factor::Email => "Set up email codes",
        _ => "Set up text message codes",
    }
}

fn contact_page(
    c: Chrome,
    f: Factor,
    destination: String,
    sent_to: Option<String>,
) -> EnrollContact {
    let (channel, field_label, input_type) = match f {
        Factor::Email => ("email", "Email address", "email"),
        _ => ("sms", "Mobile number", "tel"),
    };
    EnrollContact {
        c,
        channel,
        field_label,
        input_type,
        destination,
        sent_to,
    }
}

#[derive(Deserialize)]
pub(crate) struct LabelForm {
    csrf: String,
    label: Option<String>,
}

/// `POST /signin/enroll/totp`: a new authenticator secret, as a QR code and a key.
async fn enroll_totp(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<LabelForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let label = f.label.filter(|l| !l.trim().is_empty());
    match st.app.signin().enroll_totp(id, label.clone()).await {
        Ok(e) => {
            let c = Chrome::new("Scan the QR code", b.form_token());
            let html = render(&TotpConfirm {
                c,
                action: "/signin/enroll/totp/confirm",
                qr_png_base64: Some(e.qr_png_base64),
                secret: Some(e.secret_base32),
            });
            b.page(StatusCode::OK, html)
        }
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e @ Error::Domain(DomainError::Validation(_))) => {
            let c = Chrome::new("Set up your authenticator app", b.form_token())
                .alert(Some(words::error(&e)));
            let html = render(&EnrollTotp {
                c,
                label: label.unwrap_or_default(),
            });
            b.page(status_of(&e), html)
        }
        Err(e) => again(b, &st, id, Shown::refused(&e)).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    csrf: String,
    code: SecretString,
    #[serde(default)]
    channel: String,
}

/// `POST /signin/enroll/totp/confirm`: the new authenticator's first code; the
/// recovery codes follow.
async fn confirm_totp(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<CodeForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let meta = b.meta.clone();
    match st
        .app
        .signin()
        .confirm_totp(id, f.code.expose_secret(), &meta)
        .await
    {
        Ok(view) => show(b, &st, view, Shown::default()).await,
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e @ Error::Domain(DomainError::MfaCodeInvalid { .. } | DomainError::Validation(_))) => {
            let c = Chrome::new("Scan the QR code", b.form_token()).alert(Some(words::error(&e)));
            let html = render(&TotpConfirm {
                c,
                action: "/signin/enroll/totp/confirm",
                qr_png_base64: None,
                secret: None,
            });
            b.page(status_of(&e), html)
        }
        Err(e) => again(b, &st, id, Shown::refused(&e)).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct ContactForm {
    csrf: String,
    channel: String,
    destination: Option<String>,
}

/// `POST /signin/enroll/contact`: a code to the address being set up.
async fn enroll_contact(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<ContactForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Some(channel) = Channel::parse(&f.channel) else {
        return again(b, &st, id, Shown::default()).await;
    };
    let factor = factor_of(channel);
    let meta = b.meta.clone();
    let typed = f.destination.unwrap_or_default();
    let given = Some(typed.clone()).filter(|d| !d.trim().is_empty());
    match st
        .app
        .signin()
        .enroll_channel(id, channel, given, &meta)
        .await
    {
        Ok(sent) => {
            let c = Chrome::new(contact_title(factor), b.form_token());
            let html = render(&contact_page(c, factor, typed, Some(sent.to)));
            b.page(StatusCode::ACCEPTED, html)
        }
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e) => {
            let c =
                Chrome::new(contact_title(factor), b.form_token()).alert(Some(words::error(&e)));
            let html = render(&contact_page(c, factor, typed, None));
            b.page(status_of(&e), html)
        }
    }
}

/// `POST /signin/enroll/contact/confirm`: the code proves the address.
async fn confirm_contact(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<CodeForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Some(channel) = Channel::parse(&f.channel) else {
        return again(b, &st, id, Shown::default()).await;
    };
    let meta = b.meta.clone();
    match st
        .app
        .signin()
        .confirm_channel(id, channel, f.code.expose_secret(), &meta)
        .await
    {
        Ok(view) => show(b, &st, view, Shown::default()).await,
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e) => {
            let factor = factor_of(channel);
            let c =
                Chrome::new(contact_title(factor), b.form_token()).alert(Some(words::error(&e)));
            // The code field again; "Start over" or a new code is the way out of a dead one.
            let html = render(&contact_page(
                c,
                factor,
                String::new(),
                Some(words::CODE_SENT_BEFORE.to_owned()),
            ));
            b.page(status_of(&e), html)
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// `POST /signin/skip`: "Set up later".
async fn skip(req: HttpRequest, st: web::Data<WebState>, f: web::Form<CsrfForm>) -> HttpResponse {
    let (b, id) = match step(&req, &st, &f.csrf) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let meta = b.meta.clone();
    match st.app.signin().skip(id, &meta).await {
        Ok(view) => show(b, &st, view, Shown::default()).await,
        Err(e) if flow_gone(&e) => start_over(b, &e),
        Err(e) => again(b, &st, id, Shown::refused(&e)).await,
    }
}

/// `POST /signin/continue`: past the recovery codes (the session already started).
async fn done(req: HttpRequest, st: web::Data<WebState>, f: web::Form<CsrfForm>) -> HttpResponse {
    match Browser::posted(&req, &st, &f.csrf) {
        Ok(b) if b.oidc.is_some() => b.see_other("/oauth2/resume"),
        Ok(b) => b.see_other("/account"),
        Err(r) => *r,
    }
}

/// `POST /signin/restart`: "Start over": the flow in progress is dropped.
async fn restart(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<CsrfForm>,
) -> HttpResponse {
    match Browser::posted(&req, &st, &f.csrf) {
        Ok(mut b) => {
            b.clear_flow();
            b.see_other("/signin")
        }
        Err(r) => *r,
    }
}
