//! Second factors: a user's method and enrollment mode (M1, M3), one-time codes (M4),
//! authenticator apps (M5), recovery codes (M6) and the step the sign-in flow takes next.

pub mod codes;
pub mod flow;
pub mod recovery;
pub mod step;
pub mod totp;

use crate::Error;
use serde::{Deserialize, Serialize};

/// Sensitive operations need a second factor this recent (M11).
pub const STEP_UP_MINUTES: i64 = 15;

/// M11: whether a session whose second factor (or, where nothing else exists, password)
/// was last proven at `verified_at` may take a credential action at `now`: within the
/// last [`STEP_UP_MINUTES`] minutes, else `StepUpRequired`.
pub fn require_step_up(
    verified_at: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    if verified_at.is_some_and(|at| now - at <= chrono::Duration::minutes(STEP_UP_MINUTES)) {
        Ok(())
    } else {
        Err(Error::StepUpRequired)
    }
}

/// The user's method: `none` means MFA is off for that user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserMethod {
    None,
    Email,
    Sms,
    Totp,
}

impl UserMethod {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserMethod::None => "none",
            UserMethod::Email => "email",
            UserMethod::Sms => "sms",
            UserMethod::Totp => "totp",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "none" => Ok(UserMethod::None),
            "email" => Ok(UserMethod::Email),
            "sms" => Ok(UserMethod::Sms),
            "totp" => Ok(UserMethod::Totp),
            _ => Err(Error::field(
                "method",
                "method must be none, email, sms or totp",
            )),
        }
    }
}

/// How enrollment of the user's method is handled at the next sign-in (M3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enrollment {
    NextLogin,
    Prompt,
    Require,
}

impl Enrollment {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Enrollment::NextLogin => "next_login",
            Enrollment::Prompt => "prompt",
            Enrollment::Require => "require",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "next_login" => Ok(Enrollment::NextLogin),
            "prompt" => Ok(Enrollment::Prompt),
            "require" => Ok(Enrollment::Require),
            _ => Err(Error::field(
                "enrollment",
                "enrollment must be next_login, prompt or require",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m3_names_round_trip() {
        for m in [
            UserMethod::None,
            UserMethod::Email,
            UserMethod::Sms,
            UserMethod::Totp,
        ] {
            assert_eq!(UserMethod::parse(m.as_str()), Ok(m));
        }
        for e in [
            Enrollment::NextLogin,
            Enrollment::Prompt,
            Enrollment::Require,
        ] {
            assert_eq!(Enrollment::parse(e.as_str()), Ok(e));
        }
        assert!(UserMethod::parse("fax").is_err());
    }

    #[test]
    fn m11_a_step_up_holds_fifteen_minutes_to_the_second() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .to_utc();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        assert_eq!(require_step_up(ago(0), now), Ok(()));
        assert_eq!(require_step_up(ago(15 * 60), now), Ok(()));
        assert_eq!(
            require_step_up(ago(15 * 60 + 1), now),
            Err(Error::StepUpRequired)
        );
        assert_eq!(require_step_up(None, now), Err(Error::StepUpRequired));
    }
}
