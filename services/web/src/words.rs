//! What the pages say, in one place (English now; Spanish is the next language).
//! Refusals are told in words a front desk can act on.

use gatehouse_app::Error;
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::login_hours::{AllowedHours, Weekday};
use gatehouse_domain::mfa::step::Factor;

pub(crate) const BAD_FORM_TITLE: &str = "Something was missing";
pub(crate) const BAD_FORM: &str =
    "The form could not be read. Go back, fill in every field and try again.";
pub(crate) const REFUSED_TITLE: &str = "This page has expired";
pub(crate) const EXPIRED: &str =
    "This sign-in took too long and has expired. Sign in again from the start.";
pub(crate) const SIGNED_OUT: &str = "You are signed out.";
pub(crate) const SIGNED_OUT_TITLE: &str = "Signed out";
pub(crate) const OIDC_REFUSED_TITLE: &str = "This sign-in link does not work";
pub(crate) const OIDC_REFUSED: &str = "Go back to the application and sign in from there again. If it keeps happening, tell your practice admin: the application's set-up needs the vendor's support.";
pub(crate) const OIDC_EXPIRED: &str = "This sign-in request has expired or was already used.";
pub(crate) const OIDC_RETURN_TITLE: &str = "Signed in";

/// The words on the way back to the application that asked for the sign-in.
pub(crate) fn oidc_return(client: &str) -> String {
    format!("You are signed in. Taking you back to {client}…")
}
pub(crate) const TRY_LATER: &str = "Something went wrong on our side. Wait a moment and try again; if it keeps happening, call your practice admin.";
pub(crate) const PASSWORDS_DIFFER: &str = "The two new passwords are not the same.";

/// Why a state-changing request was refused before it did anything (CSRF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not from our own origin.
    CrossSite,
    /// The form's token is missing or not this browser's (or the page is older than
    /// the session).
    Token,
}

/// Why a form post was refused before it did anything.
pub(crate) fn refused(why: Refused) -> &'static str {
    match why {
        Refused::CrossSite => {
            "This request did not come from a Gatehouse page, so nothing was changed. Open the sign-in page and try again."
        }
        Refused::Token => {
            "This page is out of date (it was opened before you signed in or out), so nothing was changed. Open the sign-in page and try again."
        }
    }
}

/// The name of a second factor on a button and in a sentence.
pub(crate) fn factor(f: Factor) -> &'static str {
    match f {
        Factor::Email => "Email",
        Factor::Sms => "Text message",
        Factor::Totp => "Authenticator app",
        Factor::RecoveryCode => "Recovery code",
    }
}

fn weekday(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// "Monday 09:00 to 18:00, Tuesday ..., in America/New_York time."
fn hours(h: &AllowedHours) -> String {
    if h.windows.is_empty() {
        return "Sign-in is not allowed at any time for this account. Ask your practice admin."
            .into();
    }
    let list: Vec<String> = h
        .windows
        .iter()
        .map(|w| {
            let t = w.to_text();
            format!("{} {} to {}", weekday(w.weekday), t.start, t.end)
        })
        .collect();
    format!(
        "You can sign in only during your login hours: {} (times are in the practice's time zone, {}). Ask your practice admin if you need other hours.",
        list.join(", "),
        h.timezone.name()
    )
}

/// What a refusal of a use case means for the person at the computer.
pub(crate) fn error(e: &Error) -> String {
    match e {
        Error::Domain(d) => domain(d),
        _ => TRY_LATER.to_owned(),
    }
}

/// The same, for a rule of the domain.
pub(crate) fn domain(d: &DomainError) -> String {
    match d {
        DomainError::InvalidCredentials => {
            "The company, user ID or password is not right. Check them and try again.".into()
        }
        DomainError::AccountLocked => {
            "This account is locked after too many failed attempts. Ask your practice admin to unlock it.".into()
        }
        DomainError::AccountInactive => {
            "This account is turned off. Ask your practice admin.".into()
        }
        DomainError::OutsideLoginHours(h) => hours(h),
        DomainError::TenantSuspended => {
            "This practice's access is suspended. Call the vendor's support line.".into()
        }
        DomainError::RateLimited { retry_after_secs } => format!(
            "Too many attempts. Wait {retry_after_secs} seconds, then try again."
        ),
        DomainError::MfaCodeInvalid { attempts_remaining } => match attempts_remaining {
            1 => "That code is not right. 1 try left.".into(),
            n => format!("That code is not right. {n} tries left."),
        },
        DomainError::MfaCodeExpired => {
            "That code has expired. Send a new code and type the new one.".into()
        }
        DomainError::MfaCodeExhausted => {
            "Too many wrong codes for this code. Send a new code and type the new one.".into()
        }
        DomainError::PhoneOptedOut { opt_in_number } => match opt_in_number {
            Some(n) => format!(
                "This phone has turned off text messages (it replied STOP). Text START to {n} from that phone, then send a new code. Your practice cannot override this."
            ),
            None => "This phone has turned off text messages (it replied STOP). Text START to the number the codes came from, then send a new code. Your practice cannot override this.".into(),
        },
        DomainError::EmailSuppressed => {
            "Email to this address bounced or was reported as spam, so no code can be sent to it. Use another method, or ask your practice admin to correct the address.".into()
        }
        DomainError::SmsBudgetExceeded => {
            "Your practice has used today's text message allowance. Use another method, or ask your practice admin.".into()
        }
        DomainError::SmsCountryBlocked(_) => {
            "Your practice does not allow text messages to this country. Use another method, or ask your practice admin.".into()
        }
        DomainError::NoDestination(m)
        | DomainError::DestinationUnverified(m)
        | DomainError::MethodNotAllowed(m)
        | DomainError::Forbidden(m)
        | DomainError::Conflict(m) => m.clone(),
        DomainError::Validation(fields) => fields
            .iter()
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join(" "),
        DomainError::PasswordPolicy(fields) => fields
            .iter()
            .map(|f| format!("The new password {}.", f.message))
            .collect::<Vec<_>>()
            .join(" "),
        DomainError::FlowExpired | DomainError::FlowCompleted | DomainError::NotFound => {
            EXPIRED.into()
        }
        DomainError::StepUpRequired => {
            "Confirm it's you with your second factor first.".into()
        }
        DomainError::Unauthenticated => "Sign in first.".into(),
        DomainError::FlowWrongStep | DomainError::EscalationNotApproved(_) => {
            "That step is not possible now. Go on from this page.".into()
        }
    }
}

/// The practice's password rules, listed before a new password is typed.
pub(crate) fn password_rules(p: &gatehouse_domain::settings::PasswordPolicy) -> Vec<String> {
    let mut rules = vec![format!("At least {} characters", p.min_length)];
    if p.require_upper {
        rules.push("An upper-case letter (A-Z)".into());
    }
    if p.require_lower {
        rules.push("A lower-case letter (a-z)".into());
    }
    if p.require_digit {
        rules.push("A digit (0-9)".into());
    }
    if p.require_special {
        rules.push("A symbol, such as ! or #".into());
    }
    rules.push("Not containing your user ID".into());
    rules
}

/// Where a code went, when the page is drawn again after a wrong one.
pub(crate) const CODE_SENT_BEFORE: &str = "the address you typed";
pub(crate) const STEP_UP_FIRST: &str =
    "Confirm it's you with your second factor below, then make the change again.";
pub(crate) const STEPPED_UP: &str =
    "Thank you. For the next 15 minutes you can change your security settings.";
pub(crate) const PASSWORD_CHANGED: &str =
    "Your password is changed. Your other sessions were signed out.";
pub(crate) const METHOD_CHANGED: &str = "Your second factor is changed.";
pub(crate) const CONTACT_VERIFIED: &str = "The new address is verified.";
pub(crate) const DEVICES_FORGOTTEN: &str =
    "Forgotten: those computers will ask for your second factor again.";
