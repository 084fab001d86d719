//! The pages' templates (askama, checked at compile time; every value HTML-escaped) and
//! what each one shows.

use askama::Template;

/// What every page has around its content.
pub(crate) struct Chrome {
    /// The page's heading and title.
    pub title: String,
    /// The practice's name, once the company is known.
    pub practice: Option<String>,
    /// The forms' CSRF token.
    pub csrf: String,
    /// A refusal or problem, read out by screen readers (`role="alert"`).
    pub alert: Option<String>,
    pub css: String,
    pub js: String,
}

impl Chrome {
    pub(crate) fn new(title: &str, csrf: String) -> Self {
        Chrome {
            title: title.to_owned(),
            practice: None,
            csrf,
            alert: None,
            css: crate::assets::css(),
            js: crate::assets::js(),
        }
    }

    pub(crate) fn practice(mut self, name: Option<&str>) -> Self {
        self.practice = name.map(str::to_owned);
        self
    }

    pub(crate) fn alert(mut self, alert: Option<String>) -> Self {
        self.alert = alert;
        self
    }
}

/// Renders a page; a template that fails to render (it cannot, short of a bug) says so
/// in plain text rather than half a page.
pub(crate) fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a page failed to render");
        crate::words::TRY_LATER.to_owned()
    })
}

/// A page that only says something, with a way back to the sign-in page.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message {
    pub c: Chrome,
    pub text: String,
}

impl Message {
    pub(crate) fn new(title: &str, text: &str) -> Self {
        Message {
            c: Chrome::new(title, String::new()),
            text: text.to_owned(),
        }
    }
}

/// W1.1: company, user ID, password.
#[derive(Template)]
#[template(path = "signin/password.html")]
pub(crate) struct Password {
    pub c: Chrome,
    pub company: String,
    pub username: String,
}

/// W1.2: a temporary password is replaced.
#[derive(Template)]
#[template(path = "signin/new_password.html")]
pub(crate) struct NewPassword {
    pub c: Chrome,
    pub rules: Vec<String>,
}

/// A button that picks a second factor: its form value and its name.
pub(crate) struct Choice {
    pub value: &'static str,
    pub label: &'static str,
}

/// W1.3 and W1.4: a code by email or SMS, an authenticator code or a recovery code.
#[derive(Template)]
#[template(path = "signin/verify.html")]
pub(crate) struct Verify {
    pub c: Chrome,
    /// `code`, `totp` or `recovery_code`: the verify form's `method`.
    pub mode: &'static str,
    /// For `code`: `email` or `sms`.
    pub channel: &'static str,
    /// For `code`: "email" or "text message", in a sentence.
    pub channel_words: &'static str,
    pub code_label: &'static str,
    /// The masked destination the code went to, when it was just sent.
    pub sent_to: Option<String>,
    /// When the code expires (RFC 3339, for the countdown) and the time left now.
    pub expires_at: Option<String>,
    pub time_left: Option<String>,
    /// "Remember this computer for N hours"; none when the practice remembers none.
    pub remember_label: Option<String>,
    /// Seconds before another code may be sent.
    pub resend_wait: Option<u64>,
    pub others: Vec<Choice>,
}

/// W1.5: the methods the practice allows, to set one up.
#[derive(Template)]
#[template(path = "signin/enroll.html")]
pub(crate) struct Enroll {
    pub c: Chrome,
    pub options: Vec<Choice>,
    pub suggested: bool,
}

/// W1.5: the authenticator's title.
#[derive(Template)]
#[template(path = "signin/enroll_totp.html")]
pub(crate) struct EnrollTotp {
    pub c: Chrome,
    pub label: String,
}

/// W1.5: the QR code and key of a new authenticator, and its first code. After a wrong
/// code the secret is not shown again (it stays pending): only the code is asked.
#[derive(Template)]
#[template(path = "signin/totp_confirm.html")]
pub(crate) struct TotpConfirm {
    pub c: Chrome,
    /// Where the code is posted: the sign-in flow's or "My account"'s.
    pub action: &'static str,
    pub qr_png_base64: Option<String>,
    pub secret: Option<String>,
}

/// W1.5: an email address or mobile number to prove, then its code.
#[derive(Template)]
#[template(path = "signin/enroll_contact.html")]
pub(crate) struct EnrollContact {
    pub c: Chrome,
    /// `email` or `sms`.
    pub channel: &'static str,
    /// "Email address" or "Mobile number".
    pub field_label: &'static str,
    pub input_type: &'static str,
    pub destination: String,
    /// Set once the code is sent: then the code is asked.
    pub sent_to: Option<String>,
}

/// W1.6: recovery codes, shown this once.
#[derive(Template)]
#[template(path = "signin/recovery_codes.html")]
pub(crate) struct RecoveryCodes {
    pub c: Chrome,
    pub codes: Vec<String>,
    /// The codes as a `data:` URL to download.
    pub download: String,
}

/// A remembered computer, as "My account" lists it.
pub(crate) struct DeviceRow {
    pub id: String,
    pub label: String,
    pub until: String,
}

/// W2: my account.
#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct Account {
    pub c: Chrome,
    /// What the last action did, read out politely (`role="status"`).
    pub notice: Option<String>,
    pub name: String,
    pub username: String,
    pub practice_name: String,
    pub method: String,
    pub recovery_left: u32,
    pub email: String,
    pub phone: String,
    /// The practice lets users change their own second factor.
    pub self_service: bool,
    /// The methods the user may switch to (proven ones, other than the current).
    pub methods: Vec<Choice>,
    pub totp_allowed: bool,
    /// An authenticator is enrolled (so recovery codes exist).
    pub totp: bool,
    pub devices: Vec<DeviceRow>,
    /// A code just sent to verify a new address.
    pub contact_sent_to: Option<String>,
    pub contact_channel: &'static str,
    /// Step-up is asked, in place.
    pub step_up: bool,
    /// For step-up by code: `email` or `sms`.
    pub step_up_channel: Option<&'static str>,
    pub step_up_sent_to: Option<String>,
    /// A user without a second factor where the practice asks none steps up with the password.
    pub step_up_password: bool,
}

/// On the way back to an application (OpenID Connect): a page that moves on by itself
/// (a refresh, not a redirect: Chromium holds a redirect after a form post to the
/// form's `form-action 'self'`), with a link for a browser that does not.
#[derive(Template)]
#[template(path = "continue.html")]
pub(crate) struct Continue {
    pub c: Chrome,
    pub text: String,
    pub url: String,
}
