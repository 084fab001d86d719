//! The text of a code message, per purpose and channel. A provider receives a finished
//! [`Message`]; it never composes text itself, so every provider sends the same words.

use chrono::{DateTime, Utc};
use gatehouse_domain::jobs::NoticeText;
use gatehouse_domain::mfa::codes::{Channel, Purpose};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// Longest practice name put into an SMS, so the whole text stays in one segment.
const SMS_NAME_CHARS: usize = 40;

/// One message, ready for a provider.
pub struct Message {
    pub delivery_id: Uuid,
    pub channel: Channel,
    pub purpose: Purpose,
    /// The practice's company id.
    pub company: String,
    /// The full destination (email address or E.164 number): what the provider needs,
    /// and nothing anyone logs.
    pub to: String,
    pub subject: String,
    /// Holds the code, so it is typed as a secret.
    pub body: SecretString,
    /// The same words as an HTML document (email only; `None` for SMS).
    pub html: Option<SecretString>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("delivery_id", &self.delivery_id)
            .field("channel", &self.channel)
            .field("purpose", &self.purpose)
            .field("company", &self.company)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// What a message is composed from.
#[derive(Debug)]
pub struct Compose<'a> {
    pub delivery_id: Uuid,
    pub channel: Channel,
    pub purpose: Purpose,
    pub company: &'a str,
    pub company_name: &'a str,
    pub to: &'a str,
    pub code: &'a SecretString,
    /// A notice's words (purpose `notice`): sent instead of a code message.
    pub notice: Option<&'a NoticeText>,
    pub expires_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Whole minutes the code still lives, rounded up (at least 1).
pub fn minutes_left(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let secs = (expires_at - now).num_seconds().max(1);
    (secs + 59) / 60
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The practice name as it may appear in a header or a text: printable, trimmed.
fn clean_name(name: &str, max_chars: usize) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = cleaned.trim();
    let mut out: String = trimmed.chars().take(max_chars).collect();
    if trimmed.chars().count() > max_chars {
        out = out.trim_end().to_owned();
        out.push('…');
    }
    if out.is_empty() {
        "your practice".to_owned()
    } else {
        out
    }
}

/// What the code is for, as a user reads it.
fn what_for(purpose: Purpose, channel: Channel) -> &'static str {
    match (purpose, channel) {
        (Purpose::SignIn, _) => "sign-in code",
        (Purpose::Enroll, _) => "code to set up sign-in verification",
        (Purpose::Contact, Channel::Email) => "code to confirm this email address",
        (Purpose::Contact, Channel::Sms) => "code to confirm this phone number",
        (Purpose::StepUp, _) => "code to confirm a sensitive change",
        (Purpose::Notice, _) => "notice",
    }
}

/// What to do if the user did not ask for the code.
fn if_not_you(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::SignIn => {
            "If you did not try to sign in, someone may know your password: change it and tell your practice administrator."
        }
        Purpose::Enroll | Purpose::StepUp => {
            "If you did not ask for this, tell your practice administrator."
        }
        Purpose::Contact | Purpose::Notice => {
            "If you did not ask for this, you can ignore this message."
        }
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML part of an email: the text part's words, the practice name escaped, the code
/// an element of its own (large, monospaced, nothing else in it).
fn email_html(
    subject: &str,
    name: &str,
    what: &str,
    code: &str,
    lifetime: &str,
    not_you: &str,
) -> String {
    let subject = escape_html(subject);
    let name = escape_html(name);
    let code = escape_html(code);
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{subject}</title></head>\n\
         <body style=\"margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1f2933;\">\n\
         <p>Hello,</p>\n\
         <p>Your {name} {what} is:</p>\n\
         <p style=\"margin:24px 0;font-family:Consolas,Menlo,monospace;font-size:32px;font-weight:bold;letter-spacing:6px;\">{code}</p>\n\
         <p>It expires in {lifetime}. Do not share it: {name} staff will never ask you for it.</p>\n\
         <p>{not_you}</p>\n\
         </body>\n\
         </html>\n"
    )
}

/// Composes the message: the subject names the practice; the body names it, holds the
/// code as a word of its own, and says how long the code lives. Email also gets the same
/// words as HTML.
pub fn compose(c: &Compose<'_>) -> Message {
    if let Some(n) = c.notice {
        return notice(c, n);
    }
    let code = c.code.expose_secret();
    let minutes = minutes_left(c.expires_at, c.now);
    let what = what_for(c.purpose, c.channel);
    let (subject, body, html) = match c.channel {
        Channel::Email => {
            let name = clean_name(c.company_name, 200);
            let subject = format!("Your {name} verification code");
            let lifetime = plural(minutes, "minute");
            let not_you = if_not_you(c.purpose);
            let body = format!(
                "Hello,\n\n\
                 Your {name} {what} is:\n\n\
                 {code}\n\n\
                 It expires in {lifetime}. Do not share it: {name} staff will never ask you for it.\n\n\
                 {not_you}\n",
            );
            let html = email_html(&subject, &name, what, code, &lifetime, not_you);
            (subject, body, Some(SecretString::from(html)))
        }
        Channel::Sms => {
            let name = clean_name(c.company_name, SMS_NAME_CHARS);
            let subject = format!("Your {name} verification code");
            let body = format!(
                "{code} is your {name} {what}. It expires in {minutes} min. Do not share it."
            );
            (subject, body, None)
        }
    };
    Message {
        delivery_id: c.delivery_id,
        channel: c.channel,
        purpose: c.purpose,
        company: c.company.to_owned(),
        to: c.to.to_owned(),
        subject,
        body: SecretString::from(body),
        html,
    }
}

/// A notice: its own subject (headed by the practice's name) and words, as plain text
/// and the same text escaped in a simple HTML document.
fn notice(c: &Compose<'_>, n: &NoticeText) -> Message {
    let name = clean_name(c.company_name, 200);
    let subject = format!("{name}: {}", clean_name(&n.subject, 200));
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1f2933;\">\n\
         <pre style=\"font-family:inherit;white-space:pre-wrap;\">{}</pre>\n</body>\n</html>\n",
        escape_html(&subject),
        escape_html(&n.body)
    );
    Message {
        delivery_id: c.delivery_id,
        channel: c.channel,
        purpose: c.purpose,
        company: c.company.to_owned(),
        to: c.to.to_owned(),
        subject,
        body: SecretString::from(n.body.clone()),
        html: (c.channel == Channel::Email).then(|| SecretString::from(html)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chrono::{Duration, TimeZone};

    const ALL: [Purpose; 4] = [
        Purpose::SignIn,
        Purpose::Enroll,
        Purpose::Contact,
        Purpose::StepUp,
    ];

    fn message(channel: Channel, purpose: Purpose, name: &str, ttl: Duration) -> Message {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        compose(&Compose {
            delivery_id: Uuid::new_v4(),
            channel,
            purpose,
            company: "demo-clinic",
            company_name: name,
            to: "+12025550147",
            code: &SecretString::from("042917".to_owned()),
            notice: None,
            expires_at: now + ttl,
            now,
        })
    }

    #[test]
    fn s2_a_notice_is_sent_as_written_under_the_practice_name_with_its_html_escaped() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        let n = NoticeText {
            subject: "support asks to unlock <sam>".into(),
            body: "Ticket SUP-1 & reason: \"locked out\".".into(),
        };
        let m = compose(&Compose {
            delivery_id: Uuid::new_v4(),
            channel: Channel::Email,
            purpose: Purpose::Notice,
            company: "demo-clinic",
            company_name: "Demo\nClinic",
            to: "admin@demo.example.com",
            code: &SecretString::from(String::new()),
            notice: Some(&n),
            expires_at: now,
            now,
        });
        assert_eq!(m.subject, "Demo Clinic: support asks to unlock <sam>");
        assert_eq!(m.body.expose_secret(), n.body);
        let html = m.html.as_ref().unwrap().expose_secret();
        assert!(
            html.contains("Ticket SUP-1 &amp; reason: &quot;locked out&quot;."),
            "{html}"
        );
        assert!(html.contains("unlock &lt;sam&gt;"), "{html}");
        assert!(!html.contains("<sam>"));
    }

    fn words(s: &str) -> Vec<&str> {
        s.split(|c: char| !c.is_ascii_alphanumeric()).collect()
    }

    #[test]
    fn d1_every_message_names_the_practice_and_holds_the_code_as_a_word() {
        for channel in [Channel::Email, Channel::Sms] {
            for purpose in ALL {
                let m = message(
                    channel,
                    purpose,
                    "Demo Family Clinic",
                    Duration::seconds(300),
                );
                let body = m.body.expose_secret();
                assert!(words(body).contains(&"042917"), "{body}");
                assert!(body.contains("Demo Family Clinic"), "{body}");
                assert!(body.contains("5 min"), "{body}");
                assert_eq!(m.subject, "Your Demo Family Clinic verification code");
                assert!(!format!("{m:?}").contains("042917"));
                assert!(!format!("{m:?}").contains("2025550147"));
            }
        }
    }

    #[test]
    fn d1_sms_fits_one_segment_even_with_a_long_practice_name() {
        let long = "Northern Valley Integrated Family Medicine and Pediatrics Associates of Greater Springfield";
        for purpose in ALL {
            let m = message(Channel::Sms, purpose, long, Duration::seconds(600));
            let body = m.body.expose_secret();
            assert!(body.chars().count() < 160, "{} chars: {body}", body.len());
            assert!(words(body).contains(&"042917"));
        }
    }

    #[test]
    fn d1_lifetime_is_rounded_up_and_singular_when_one() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        assert_eq!(minutes_left(now + Duration::seconds(299), now), 5);
        assert_eq!(minutes_left(now + Duration::seconds(300), now), 5);
        assert_eq!(minutes_left(now + Duration::seconds(301), now), 6);
        assert_eq!(minutes_left(now - Duration::seconds(5), now), 1);
        let m = message(Channel::Email, Purpose::SignIn, "A", Duration::seconds(40));
        assert!(m.body.expose_secret().contains("expires in 1 minute."));
        let m = message(Channel::Sms, Purpose::SignIn, "A", Duration::seconds(40));
        assert!(m.body.expose_secret().contains("expires in 1 min."));
    }

    #[test]
    fn d2_email_html_escapes_the_name_and_holds_the_code_as_its_own_element() {
        for purpose in ALL {
            let m = message(
                Channel::Email,
                purpose,
                "Smith & <b>Sons</b> \"Clinic\"",
                Duration::seconds(300),
            );
            let html = m.html.as_ref().expect("email has HTML");
            let html = html.expose_secret();
            assert!(
                html.contains("Smith &amp; &lt;b&gt;Sons&lt;/b&gt; &quot;Clinic&quot;"),
                "{html}"
            );
            assert!(!html.contains("<b>"), "{html}");
            assert!(html.contains(">042917</p>"), "{html}");
            assert!(words(html).contains(&"042917"));
            assert!(html.contains("It expires in 5 minutes."), "{html}");
            assert!(html.contains(if_not_you(purpose)), "{html}");
            assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        }
        let sms = message(Channel::Sms, Purpose::SignIn, "A", Duration::seconds(300));
        assert!(sms.html.is_none());
    }

    #[test]
    fn d1_control_characters_never_reach_a_subject() {
        let m = message(
            Channel::Email,
            Purpose::SignIn,
            "Clinic\r\nBcc: x@y",
            Duration::seconds(300),
        );
        assert!(!m.subject.contains('\n') && !m.subject.contains('\r'));
    }
}
