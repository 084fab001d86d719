//! The text of a code message, per purpose and channel. A provider receives a finished
//! [`Message`]; it never composes text itself, so every provider sends the same words.

use chrono::{DateTime, Utc};
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
        Purpose::Contact => "If you did not ask for this, you can ignore this message.",
    }
}

/// Composes the message: the subject names the practice; the body names it, holds the
/// code as a word of its own, and says how long the code lives.
pub fn compose(c: &Compose<'_>) -> Message {
    let code = c.code.expose_secret();
    let minutes = minutes_left(c.expires_at, c.now);
    let what = what_for(c.purpose, c.channel);
    let (subject, body) = match c.channel {
        Channel::Email => {
            let name = clean_name(c.company_name, 200);
            let subject = format!("Your {name} verification code");
            let body = format!(
                "Hello,\n\n\
                 Your {name} {what} is:\n\n\
                 {code}\n\n\
                 It expires in {lifetime}. Do not share it: {name} staff will never ask you for it.\n\n\
                 {not_you}\n",
                lifetime = plural(minutes, "minute"),
                not_you = if_not_you(c.purpose),
            );
            (subject, body)
        }
        Channel::Sms => {
            let name = clean_name(c.company_name, SMS_NAME_CHARS);
            let subject = format!("Your {name} verification code");
            let body = format!(
                "{code} is your {name} {what}. It expires in {minutes} min. Do not share it."
            );
            (subject, body)
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
            expires_at: now + ttl,
            now,
        })
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
