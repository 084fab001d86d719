//! W2: "My account": password, second factor, recovery codes, contacts, remembered
//! computers, sign out. Each form calls the use case of its `/v1/me/...` twin; a change
//! that needs a recent second factor (M11) asks for it in place, on the same page.

use crate::WebState;
use crate::browser::Browser;
use crate::pages::{
    Account, Choice, Chrome, DeviceRow, Message, RecoveryCodes, TotpConfirm, render,
};
use crate::signin::status_of;
use crate::words;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use gatehouse_app::{Error, Principal};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::mfa::UserMethod;
use gatehouse_domain::mfa::codes::Channel;
use gatehouse_domain::mfa::flow::{CodeSent, StepUpProof};
use gatehouse_domain::settings::{AllowedMethod, MfaPolicy};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(page))
        .route("/password", web::post().to(change_password))
        .route("/method", web::post().to(set_method))
        .route("/authenticator", web::post().to(start_authenticator))
        .route(
            "/authenticator/confirm",
            web::post().to(confirm_authenticator),
        )
        .route("/recovery-codes", web::post().to(new_recovery_codes))
        .route("/contact", web::post().to(start_contact))
        .route("/contact/verify", web::post().to(verify_contact))
        .route("/devices/forget", web::post().to(forget_device))
        .route("/step-up/code", web::post().to(step_up_code))
        .route("/step-up", web::post().to(step_up));
}

fn method_words(m: UserMethod, totp: bool) -> &'static str {
    match m {
        UserMethod::Email => "Email codes",
        UserMethod::Sms => "Text message codes",
        UserMethod::Totp if totp => "Authenticator app",
        UserMethod::Totp => "Authenticator app (not set up yet)",
        UserMethod::None => "None",
    }
}

/// What the account page shows beyond the account.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    alert: Option<String>,
    status: Option<StatusCode>,
    contact: Option<CodeSent>,
    step_up: bool,
    step_up_sent: Option<CodeSent>,
}

impl Shown {
    fn notice(text: &str) -> Self {
        Shown {
            notice: Some(text.to_owned()),
            ..Shown::default()
        }
    }

    /// A refusal; a missing step-up opens the "Confirm it's you" panel.
    fn refused(e: &Error) -> Self {
        let step_up = matches!(e, Error::Domain(DomainError::StepUpRequired));
        Shown {
            alert: Some(if step_up {
                words::STEP_UP_FIRST.to_owned()
            } else {
                words::error(e)
            }),
            status: Some(status_of(e)),
            step_up,
            ..Shown::default()
        }
    }
}

/// The browser's signed-in user, or the way to the sign-in page.
async fn signed_in(mut b: Browser, st: &WebState) -> Result<(Browser, Principal), HttpResponse> {
    let Some(token) = b.session.clone() else {
        return Err(b.see_other("/signin"));
    };
    match st.app.deployment().authenticate(&token).await {
        Ok(p) => Ok((b, p)),
        Err(_) => {
            b.end_session();
            Err(b.see_other("/signin"))
        }
    }
}

/// A form post from a signed-in browser.
async fn posted(
    req: &HttpRequest,
    st: &web::Data<WebState>,
    csrf: &str,
) -> Result<(Browser, Principal), HttpResponse> {
    let b = Browser::posted(req, st, csrf).map_err(|r| *r)?;
    signed_in(b, st).await
}

/// Draws "My account" as the account is now.
async fn account_page(b: Browser, st: &WebState, p: &Principal, shown: Shown) -> HttpResponse {
    let records = st.app.records(p.tenant.id);
    let me = gatehouse_app::UserRef::Id(p.user.id.0);
    let (user, devices) = match (
        records.user(&me).await,
        st.app.mfa().devices_of(p.tenant.id, &me).await,
    ) {
        (Ok(u), Ok(d)) => (u, d),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "my account could not be read");
            let c = Chrome::new("My account", b.form_token());
            let html = render(&Message {
                c,
                text: words::TRY_LATER.to_owned(),
            });
            return b.page(StatusCode::SERVICE_UNAVAILABLE, html);
        }
    };
    let t = &p.tenant;
    let allowed = |m: AllowedMethod| t.settings.allowed_methods.contains(&m);
    let mut methods = Vec::new();
    if user.email_verified && allowed(AllowedMethod::Email) && user.mfa_method != UserMethod::Email
    {
        methods.push(Choice {
            value: "email",
            label: "email codes",
        });
    }
    if user.phone_verified && allowed(AllowedMethod::Sms) && user.mfa_method != UserMethod::Sms {
        methods.push(Choice {
            value: "sms",
            label: "text message codes",
        });
    }
    if user.totp_enrolled && allowed(AllowedMethod::Totp) && user.mfa_method != UserMethod::Totp {
        methods.push(Choice {
            value: "totp",
            label: "the authenticator app",
        });
    }
    let step_up_channel = match user.mfa_method {
        UserMethod::Email if user.email_verified => Some("email"),
        UserMethod::Sms if user.phone_verified => Some("sms"),
        _ => None,
    };
    let has_factor = step_up_channel.is_some() || user.totp_enrolled;
    let contact_channel = shown
        .contact
        .as_ref()
        .map_or("email", |s| s.channel.as_str());
    let tz = t.timezone;
    let c = Chrome::new("My account", b.form_token())
        .practice(Some(&t.name))
        .alert(shown.alert);
    let page = Account {
        c,
        notice: shown.notice,
        name: format!("{} {}", user.first_name, user.last_name)
            .trim()
            .to_owned(),
        username: user.username.clone(),
        practice_name: t.name.clone(),
        method: method_words(user.mfa_method, user.totp_enrolled).to_owned(),
        recovery_left: user.recovery_codes_remaining,
        email: contact_words(user.email.as_deref(), user.email_verified),
        phone: contact_words(user.phone.as_deref(), user.phone_verified),
        self_service: t.settings.self_service_mfa,
        methods,
        totp_allowed: allowed(AllowedMethod::Totp),
        totp: user.totp_enrolled,
        devices: devices
            .into_iter()
            .map(|d| DeviceRow {
                id: d.id.to_string(),
                label: d.label.unwrap_or_else(|| "A computer".to_owned()),
                until: d
                    .expires_at
                    .with_timezone(&tz)
                    .format("%b %-d, %H:%M")
                    .to_string(),
            })
            .collect(),
        contact_sent_to: shown.contact.map(|s| s.to),
        contact_channel,
        step_up: shown.step_up,
        step_up_channel,
        step_up_sent_to: shown.step_up_sent.map(|s| s.to),
        step_up_password: shown.step_up && !has_factor && t.settings.mfa_policy == MfaPolicy::Off,
    };
    b.page(shown.status.unwrap_or(StatusCode::OK), render(&page))
}

fn contact_words(value: Option<&str>, verified: bool) -> String {
    match (value, verified) {
        (Some(v), true) => v.to_owned(),
        (Some(v), false) => format!("{v} (not verified)"),
        (None, _) => "None".to_owned(),
    }
}

/// `GET /account`.
async fn page(req: HttpRequest, st: web::Data<WebState>) -> HttpResponse {
    match signed_in(Browser::of(&req, &st), &st).await {
        Ok((b, p)) => account_page(b, &st, &p, Shown::default()).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    csrf: String,
    current_password: SecretString,
    new_password: SecretString,
    confirm_password: SecretString,
}

/// `POST /account/password`: other sessions end; this one goes on.
async fn change_password(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<PasswordForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if f.new_password.expose_secret() != f.confirm_password.expose_secret() {
        let shown = Shown {
            alert: Some(words::PASSWORDS_DIFFER.to_owned()),
            status: Some(StatusCode::UNPROCESSABLE_ENTITY),
            ..Shown::default()
        };
        return account_page(b, &st, &p, shown).await;
    }
    let meta = b.meta.clone();
    let done = st
        .app
        .account()
        .change_password(&p, f.current_password, f.new_password, &meta)
        .await;
    let shown = match &done {
        Ok(()) => Shown::notice(words::PASSWORD_CHANGED),
        Err(e) => Shown::refused(e),
    };
    account_page(b, &st, &p, shown).await
}

#[derive(Deserialize)]
pub(crate) struct MethodForm {
    csrf: String,
    method: String,
}

/// `POST /account/method`: switch to another proven method (step-up).
async fn set_method(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<MethodForm>,
) -> HttpResponse {
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let method = match f.method.as_str() {
        "email" => UserMethod::Email,
        "sms" => UserMethod::Sms,
        "totp" => UserMethod::Totp,
        _ => return account_page(b, &st, &p, Shown::default()).await,
    };
    let meta = b.meta.clone();
    let shown = match st.app.mfa().set_own_method(&p, method, &meta).await {
        Ok(_) => Shown::notice(words::METHOD_CHANGED),
        Err(e) => Shown::refused(&e),
    };
    account_page(b, &st, &p, shown).await
}

#[derive(Deserialize)]
pub(crate) struct LabelForm {
    csrf: String,
    label: Option<String>,
}

/// `POST /account/authenticator`: a new authenticator secret (step-up), as a QR code.
async fn start_authenticator(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<LabelForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let label = f.label.filter(|l| !l.trim().is_empty());
    match st.app.mfa().start_own_totp(&p, label).await {
        Ok(e) => {
            let c = Chrome::new("Scan the QR code", b.form_token()).practice(Some(&p.tenant.name));
            let html = render(&TotpConfirm {
                c,
                action: "/account/authenticator/confirm",
                qr_png_base64: Some(e.qr_png_base64),
                secret: Some(e.secret_base32),
            });
            b.page(StatusCode::OK, html)
        }
        Err(e) => account_page(b, &st, &p, Shown::refused(&e)).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    csrf: String,
    code: SecretString,
}

/// The recovery codes page of "My account".
fn codes_page(b: Browser, p: &Principal, codes: Vec<String>) -> HttpResponse {
    let c = Chrome::new("Save your recovery codes", b.form_token()).practice(Some(&p.tenant.name));
    let download = crate::signin::download_url(&codes);
    b.page(
        StatusCode::OK,
        render(&RecoveryCodes { c, codes, download }),
    )
}

/// `POST /account/authenticator/confirm`: the new authenticator's first code; new
/// recovery codes follow.
async fn confirm_authenticator(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<CodeForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let meta = b.meta.clone();
    match st
        .app
        .mfa()
        .confirm_own_totp(&p, f.code.expose_secret(), &meta)
        .await
    {
        Ok(codes) => codes_page(b, &p, codes),
        Err(e @ Error::Domain(DomainError::MfaCodeInvalid { .. } | DomainError::Validation(_))) => {
            let c = Chrome::new("Scan the QR code", b.form_token()).alert(Some(words::error(&e)));
            let html = render(&TotpConfirm {
                c,
                action: "/account/authenticator/confirm",
                qr_png_base64: None,
                secret: None,
            });
            b.page(status_of(&e), html)
        }
        Err(e) => account_page(b, &st, &p, Shown::refused(&e)).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// `POST /account/recovery-codes`: new recovery codes (step-up); the old ones stop working.
async fn new_recovery_codes(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<CsrfForm>,
) -> HttpResponse {
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let meta = b.meta.clone();
    match st.app.mfa().regenerate_own_recovery_codes(&p, &meta).await {
        Ok(codes) => codes_page(b, &p, codes),
        Err(e) => account_page(b, &st, &p, Shown::refused(&e)).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct ContactForm {
    csrf: String,
    channel: String,
    value: String,
}

/// `POST /account/contact`: a code to a new email address or mobile number (step-up).
async fn start_contact(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<ContactForm>,
) -> HttpResponse {
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(channel) = Channel::parse(&f.channel) else {
        return account_page(b, &st, &p, Shown::default()).await;
    };
    let meta = b.meta.clone();
    let shown = match st
        .app
        .mfa()
        .start_own_contact(&p, channel, &f.value, &meta)
        .await
    {
        Ok(sent) => Shown {
            contact: Some(sent),
            status: Some(StatusCode::ACCEPTED),
            ..Shown::default()
        },
        Err(e) => Shown::refused(&e),
    };
    account_page(b, &st, &p, shown).await
}

#[derive(Deserialize)]
pub(crate) struct ContactCodeForm {
    csrf: String,
    channel: String,
    code: SecretString,
}

/// `POST /account/contact/verify`: the code proves the new address.
async fn verify_contact(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<ContactCodeForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(channel) = Channel::parse(&f.channel) else {
        return account_page(b, &st, &p, Shown::default()).await;
    };
    let meta = b.meta.clone();
    let shown = match st
        .app
        .mfa()
        .verify_own_contact(&p, channel, f.code.expose_secret(), &meta)
        .await
    {
        Ok(_) => Shown::notice(words::CONTACT_VERIFIED),
        Err(e) => Shown::refused(&e),
    };
    account_page(b, &st, &p, shown).await
}

#[derive(Deserialize)]
pub(crate) struct DeviceForm {
    csrf: String,
    /// A device's id, or `all`.
    device: String,
}

/// `POST /account/devices/forget`: one remembered computer, or all of them.
async fn forget_device(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<DeviceForm>,
) -> HttpResponse {
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let me = gatehouse_app::UserRef::Id(p.user.id.0);
    let meta = b.meta.clone();
    let mfa = st.app.mfa();
    let targets = if f.device == "all" {
        match mfa.devices_of(p.tenant.id, &me).await {
            Ok(ds) => ds.into_iter().map(|d| d.id).collect(),
            Err(e) => return account_page(b, &st, &p, Shown::refused(&e)).await,
        }
    } else {
        match uuid::Uuid::parse_str(&f.device) {
            Ok(id) => vec![id],
            Err(_) => {
                return account_page(
                    b,
                    &st,
                    &p,
                    Shown::refused(&Error::Domain(DomainError::NotFound)),
                )
                .await;
            }
        }
    };
    for id in targets {
        if let Err(e) = mfa
            .revoke_device_of(&p, (p.tenant.id, &me), id, &meta)
            .await
        {
            return account_page(b, &st, &p, Shown::refused(&e)).await;
        }
    }
    account_page(b, &st, &p, Shown::notice(words::DEVICES_FORGOTTEN)).await
}

#[derive(Deserialize)]
pub(crate) struct ChannelForm {
    csrf: String,
    channel: String,
}

/// `POST /account/step-up/code`: a step-up code by email or SMS.
async fn step_up_code(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<ChannelForm>,
) -> HttpResponse {
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(channel) = Channel::parse(&f.channel) else {
        return account_page(b, &st, &p, Shown::default()).await;
    };
    let meta = b.meta.clone();
    let shown = match st.app.mfa().step_up_code(&p, channel, &meta).await {
        Ok(sent) => Shown {
            step_up: true,
            step_up_sent: Some(sent),
            status: Some(StatusCode::ACCEPTED),
            ..Shown::default()
        },
        Err(e) => Shown {
            step_up: true,
            ..Shown::refused(&e)
        },
    };
    account_page(b, &st, &p, shown).await
}

#[derive(Deserialize)]
pub(crate) struct StepUpForm {
    csrf: String,
    method: String,
    code: SecretString,
}

/// `POST /account/step-up`: the second factor proven again, for 15 minutes of changes.
async fn step_up(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<StepUpForm>,
) -> HttpResponse {
    let f = f.into_inner();
    let (b, p) = match posted(&req, &st, &f.csrf).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let method = match f.method.as_str() {
        "code" => StepUpProof::Code,
        "totp" => StepUpProof::Totp,
        "recovery_code" => StepUpProof::RecoveryCode,
        "password" => StepUpProof::Password,
        _ => return account_page(b, &st, &p, Shown::default()).await,
    };
    let meta = b.meta.clone();
    let shown = match st
        .app
        .mfa()
        .step_up(&p, method, f.code.expose_secret(), &meta)
        .await
    {
        Ok(()) => Shown::notice(words::STEPPED_UP),
        Err(e) => Shown {
            step_up: true,
            ..Shown::refused(&e)
        },
    };
    account_page(b, &st, &p, shown).await
}

#[derive(Deserialize)]
pub(crate) struct SignOutForm {
    csrf: String,
}

/// `POST /signout`: ends the browser's session (the same session the API would end).
pub(crate) async fn sign_out(
    req: HttpRequest,
    st: web::Data<WebState>,
    f: web::Form<SignOutForm>,
) -> HttpResponse {
    let mut b = match Browser::posted(&req, &st, &f.csrf) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Some(token) = b.session.clone()
        && let Ok(p) = st.app.deployment().authenticate(&token).await
    {
        let meta = b.meta.clone();
        if let Err(e) = st.app.signin().logout(&p, &meta).await {
            tracing::warn!(error = %e, "sign-out failed");
            let c = Chrome::new("My account", b.form_token()).alert(Some(words::error(&e)));
            let html = render(&Message {
                c,
                text: words::TRY_LATER.to_owned(),
            });
            return b.page(StatusCode::SERVICE_UNAVAILABLE, html);
        }
    }
    b.end_session();
    b.clear_flow();
    let c = Chrome::new("Signed out", b.form_token());
    let html = render(&Message {
        c,
        text: words::SIGNED_OUT.to_owned(),
    });
    b.page(StatusCode::OK, html)
}
