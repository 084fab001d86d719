//! The sign-in flow: which step comes next, lockout counting, flow lifetime.
//!
//! Order of steps (api.md): password change -> MFA verification -> MFA enrollment ->
//! authenticated. MFA steps arrive with the MFA capability.

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// A flow lives this long from the password step.
pub const FLOW_LIFETIME_MINUTES: i64 = 10;

/// The lifetime of a sign-in flow.
pub fn flow_lifetime() -> Duration {
    Duration::minutes(FLOW_LIFETIME_MINUTES)
}

/// Where a sign-in flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    Authenticated,
    PasswordChangeRequired,
    MfaRequired,
    MfaEnrollmentRequired,
    MfaEnrollmentSuggested,
}

impl FlowStatus {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Authenticated => "authenticated",
            FlowStatus::PasswordChangeRequired => "password_change_required",
            FlowStatus::MfaRequired => "mfa_required",
            FlowStatus::MfaEnrollmentRequired => "mfa_enrollment_required",
            FlowStatus::MfaEnrollmentSuggested => "mfa_enrollment_suggested",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            FlowStatus::Authenticated,
            FlowStatus::PasswordChangeRequired,
            FlowStatus::MfaRequired,
            FlowStatus::MfaEnrollmentRequired,
            FlowStatus::MfaEnrollmentSuggested,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// What the flow needs to know about the user to pick the next step.
#[derive(Debug, Clone, Copy)]
pub struct StepFacts {
    pub must_change_password: bool,
}

/// The first step after a correct password.
pub fn first_step(facts: StepFacts) -> FlowStatus {
    if facts.must_change_password {
        FlowStatus::PasswordChangeRequired
    } else {
        after_password_change(facts)
    }
}

/// The step after the password was changed (or needed no change).
pub fn after_password_change(_facts: StepFacts) -> FlowStatus {
    FlowStatus::Authenticated
}

/// The result of counting one more failed password for a user (P4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedAttempt {
    pub failed_logins: u32,
    /// True when this failure reached the threshold and the account is now locked.
    pub locks: bool,
}

/// Counts a failed password against the tenant's lockout threshold.
pub fn count_failure(failed_so_far: u32, threshold: u32) -> FailedAttempt {
    let failed_logins = failed_so_far.saturating_add(1);
    FailedAttempt {
        failed_logins,
        locks: failed_logins >= threshold.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p3_temporary_password_forces_a_change_first() {
        assert_eq!(
            first_step(StepFacts {
                must_change_password: true
            }),
            FlowStatus::PasswordChangeRequired
        );
        assert_eq!(
            first_step(StepFacts {
                must_change_password: false
            }),
            FlowStatus::Authenticated
        );
    }

    #[test]
    fn p4_lock_at_threshold() {
        assert!(!count_failure(3, 5).locks);
        assert_eq!(
            count_failure(4, 5),
            FailedAttempt {
                failed_logins: 5,
                locks: true
            }
        );
        assert!(count_failure(0, 1).locks);
    }

    #[test]
    fn flow_status_names_round_trip() {
        for s in [
            "authenticated",
            "password_change_required",
            "mfa_required",
            "mfa_enrollment_required",
            "mfa_enrollment_suggested",
        ] {
            assert_eq!(FlowStatus::parse(s).map(FlowStatus::as_str), Some(s));
        }
    }
}
