//! One-time codes sent by email or SMS (M4): six digits from a CSPRNG, stored only as a
//! keyed hash, valid for the tenant's lifetime, single use, dead after five wrong tries,
//! and throttled exactly as api.md counts sends.

use crate::Error;
use crate::crypto::SecretKey;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// Wrong tries after which a code is dead.
pub const MAX_ATTEMPTS: u32 = 5;
/// Within one flow, at most one send per this many seconds.
pub const FLOW_RESEND_SECONDS: i64 = 30;
/// Per user, at most `USER_SENDS_PER_WINDOW` sends in this many minutes.
pub const USER_WINDOW_MINUTES: i64 = 15;
/// Sends allowed per user per window.
pub const USER_SENDS_PER_WINDOW: usize = 5;

/// Where a code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The second factor of a sign-in.
    SignIn,
    /// Proving a destination while enrolling it as the method.
    Enroll,
    /// Verifying a new email address or phone number (M10).
    Contact,
    /// A fresh second factor for a sensitive operation (M11).
    StepUp,
    /// Not a code: a notice to a practice's admins (an escalation awaits their decision,
    /// S2), delivered by the same workers and recorded as a delivery like a code.
    Notice,
}

macro_rules! names {
    ($t:ty { $($v:ident => $n:literal),* $(,)? }) => {
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $n),* }
            }

            /// The value of a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($n => Some(Self::$v),)* _ => None }
            }
        }
    };
}

names!(Channel { Email => "email", Sms => "sms" });
names!(Purpose { SignIn => "sign_in", Enroll => "enroll", Contact => "contact", StepUp => "step_up", Notice => "notice" });

/// A six-digit code as a user typed it (spaces and dashes ignored).
#[derive(Debug, Clone)]
pub struct OtpCode(SecretString);

impl OtpCode {
    /// Parses user input.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(SecretString::from(digits)))
        } else {
            Err(Error::field("code", "must be the 6-digit code"))
        }
    }

    /// A new uniformly random code.
    pub fn generate(rng: &mut impl Rng) -> Self {
        Self(SecretString::from(format!(
            "{:06}",
            rng.gen_range(0..1_000_000u32)
        )))
    }

    /// The digits (for the message that delivers it, and nothing else).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The keyed hash stored for this code, bound to its challenge.
    pub fn keyed_hash(&self, key: &SecretKey, challenge: Uuid) -> String {
        key.mac(
            "otp-code",
            &[challenge.as_bytes(), self.expose().as_bytes()],
        )
    }

    /// Whether this code is the one whose keyed hash is stored (constant time).
    pub fn matches(&self, key: &SecretKey, challenge: Uuid, stored: &str) -> bool {
        key.mac_matches(
            "otp-code",
            &[challenge.as_bytes(), self.expose().as_bytes()],
            stored,
        )
    }
}

/// What is known about a stored challenge when a code is submitted.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeState {
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    pub used: bool,
    /// A newer code was sent; this one is dead.
    pub superseded: bool,
}

/// The answer to a submitted code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right code: mark it used.
    Accept,
    /// Wrong code: count the try; `attempts_remaining` after this one.
    Reject { attempts_remaining: u32 },
    /// The code's lifetime is over (or it was replaced or already used).
    Expired,
    /// Too many wrong tries.
    Exhausted,
}

/// Judges a submitted code against its challenge. Exhaustion is checked before the code,
/// so a dead challenge gives nothing away.
pub fn judge(state: ChallengeState, now: DateTime<Utc>, matched: bool) -> CodeCheck {
    if state.attempts >= MAX_ATTEMPTS {
        return CodeCheck::Exhausted;
    }
    if state.used || state.superseded || now >= state.expires_at {
        return CodeCheck::Expired;
    }
    if matched {
        CodeCheck::Accept
    } else {
        let after = state.attempts + 1;
        if after >= MAX_ATTEMPTS {
            CodeCheck::Exhausted
        } else {
            CodeCheck::Reject {
                attempts_remaining: MAX_ATTEMPTS - after,
            }
        }
    }
}

/// Whether a new code may be sent now; `Err` carries the seconds to wait.
///
/// `last_in_flow` is the last send of this flow (or step-up/contact request); `user_sends`
/// are the user's sends that reached the queue in the last 15 minutes, any order.
pub fn may_send(
    now: DateTime<Utc>,
    last_in_flow: Option<DateTime<Utc>>,
    user_sends: &[DateTime<Utc>],
) -> Result<(), u64> {
    let mut wait = Duration::zero();
    if let Some(last) = last_in_flow {
        let next = last + Duration::seconds(FLOW_RESEND_SECONDS);
        if next > now {
            wait = wait.max(next - now);
        }
    }
    let window_start = now - Duration::minutes(USER_WINDOW_MINUTES);
    let mut recent: Vec<DateTime<Utc>> = user_sends
        .iter()
        .copied()
        .filter(|t| *t > window_start)
        .collect();
    if recent.len() >= USER_SENDS_PER_WINDOW {
        recent.sort();
        // A slot frees when the oldest send that keeps the count at the limit leaves the window.
        let oldest = recent[recent.len() - USER_SENDS_PER_WINDOW];
        wait = wait.max(oldest + Duration::minutes(USER_WINDOW_MINUTES) - now);
    }
    if wait > Duration::zero() {
        let secs = wait.num_seconds() + i64::from(wait.subsec_nanos() > 0);
        Err(u64::try_from(secs).unwrap_or(1).max(1))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    #[test]
    fn m4_codes_are_six_digits_and_only_their_keyed_hash_matches() {
        let key = SecretKey::from_bytes([9; 32]);
        let mut rng = rand::rngs::OsRng;
        let c = OtpCode::generate(&mut rng);
        assert_eq!(c.expose().len(), 6);
        let id = Uuid::new_v4();
        let h = c.keyed_hash(&key, id);
        assert!(!h.contains(c.expose()));
        assert!(c.matches(&key, id, &h));
        assert!(
            !c.matches(&key, Uuid::new_v4(), &h),
            "bound to its challenge"
        );
        let other = OtpCode::parse(if c.expose() == "000000" {
            "000001"
        } else {
            "000000"
        });
        assert!(other.is_ok_and(|o| !o.matches(&key, id, &h)));
        assert_eq!(
            OtpCode::parse("123 456")
                .map(|c| c.expose().to_owned())
                .ok(),
            Some("123456".into())
        );
        assert!(OtpCode::parse("12345").is_err());
        assert!(OtpCode::parse("12345a").is_err());
    }

    #[test]
    fn m4_codes_are_uniform_enough_to_reach_both_ends() {
        let mut rng = rand::rngs::OsRng;
        let firsts: std::collections::HashSet<char> = (0..400)
            .filter_map(|_| OtpCode::generate(&mut rng).expose().chars().next())
            .collect();
        assert_eq!(
            firsts.len(),
            10,
            "leading digit takes every value, zero included"
        );
    }

    #[test]
    fn m4_wrong_tries_count_down_then_exhaust() {
        let mut s = ChallengeState {
            expires_at: t(300),
            attempts: 0,
            used: false,
            superseded: false,
        };
        for remaining in (1..MAX_ATTEMPTS).rev() {
            assert_eq!(
                judge(s, t(10), false),
                CodeCheck::Reject {
                    attempts_remaining: remaining
                }
            );
            s.attempts += 1;
        }
        assert_eq!(judge(s, t(10), false), CodeCheck::Exhausted);
        s.attempts += 1;
        // Even the right code is refused once exhausted.
        assert_eq!(judge(s, t(10), true), CodeCheck::Exhausted);
    }

    #[test]
    fn m4_expired_used_and_replaced_codes_are_refused() {
        let s = ChallengeState {
            expires_at: t(300),
            attempts: 0,
            used: false,
            superseded: false,
        };
        assert_eq!(judge(s, t(299), true), CodeCheck::Accept);
        assert_eq!(judge(s, t(300), true), CodeCheck::Expired);
        assert_eq!(
            judge(ChallengeState { used: true, ..s }, t(1), true),
            CodeCheck::Expired
        );
        assert_eq!(
            judge(
                ChallengeState {
                    superseded: true,
                    ..s
                },
                t(1),
                true
            ),
            CodeCheck::Expired
        );
    }

    #[test]
    fn channel_and_purpose_names_round_trip() {
        for c in [Channel::Email, Channel::Sms] {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        for p in [
            Purpose::SignIn,
            Purpose::Enroll,
            Purpose::Contact,
            Purpose::StepUp,
            Purpose::Notice,
        ] {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(Channel::parse("fax"), None);
    }

    #[test]
    fn m4_send_throttle_counts_as_the_contract_says() {
        // Within one flow: one send per 30 s.
        assert_eq!(may_send(t(10), Some(t(0)), &[t(0)]), Err(20));
        assert_eq!(may_send(t(30), Some(t(0)), &[t(0)]), Ok(()));
        // Per user: five sends per 15 minutes, across flows.
        let sends = [t(0), t(60), t(120), t(180), t(240)];
        assert_eq!(may_send(t(300), None, &sends), Err(600));
        assert_eq!(may_send(t(899), None, &sends), Err(1));
        // Exactly 15 minutes after the oldest send it has left the window.
        assert_eq!(may_send(t(900), None, &sends), Ok(()));
        assert_eq!(may_send(t(300), None, &sends[..4]), Ok(()));
        // The longer of the two waits wins.
        assert_eq!(may_send(t(895), Some(t(890)), &sends), Err(25));
    }
}
