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
}
