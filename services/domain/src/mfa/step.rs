//! Which MFA step a sign-in takes after the password (api.md order): verification
//! (unless a remembered device of this user or a trusted network applies), then
//! enrollment (if the tenant's policy or the user's mode requires or suggests it).

use super::{Enrollment, UserMethod};
use crate::settings::{AllowedMethod, MfaPolicy};
use serde::Serialize;

/// A way to prove the second factor now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Sms,
    Email,
    Totp,
    RecoveryCode,
}

/// What skipped verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bypass {
    TrustedNetwork,
    RememberedDevice,
}

/// What the decision needs to know.
#[derive(Debug, Clone)]
pub struct Facts {
    pub policy: MfaPolicy,
    pub allowed: Vec<AllowedMethod>,
    /// The operator tenant always requires MFA (M2), whatever its stored policy.
    pub is_operator: bool,
    pub method: UserMethod,
    pub enrollment: Enrollment,
    pub totp_enrolled: bool,
    pub email_verified: bool,
    pub phone_verified: bool,
    pub recovery_codes_remaining: u32,
    /// A remembered device of this user, or a trusted network, applies.
    pub bypass: Option<Bypass>,
    /// A second factor was already proven in this flow.
    pub verified: bool,
}

/// The MFA part of the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Prove a factor; `preferred` is the user's own method.
    Verify {
        factors: Vec<Factor>,
        preferred: Factor,
    },
    /// Enroll before getting a session.
    EnrollRequired { options: Vec<AllowedMethod> },
    /// Enrollment is offered and may be skipped.
    EnrollSuggested { options: Vec<AllowedMethod> },
    /// No second factor is needed (none configured and none required, or bypassed).
    Done { bypassed: Option<Bypass> },
}

impl Facts {
    fn allows(&self, m: AllowedMethod) -> bool {
        self.allowed.contains(&m)
    }

    /// The factors the user can prove right now: allowed by the tenant and enrolled or
    /// verified, the user's own method and their other proven channels as alternatives.
    /// A user whose method is `none` has MFA off and no factors.
    pub fn usable_factors(&self) -> Vec<Factor> {
        if self.method == UserMethod::None {
            return Vec::new();
        }
        let mut f = Vec::new();
        if self.allows(AllowedMethod::Sms) && self.phone_verified {
            f.push(Factor::Sms);
        }
        if self.allows(AllowedMethod::Email) && self.email_verified {
            f.push(Factor::Email);
        }
        if self.allows(AllowedMethod::Totp) && self.totp_enrolled {
            f.push(Factor::Totp);
        }
        if !f.is_empty() && self.recovery_codes_remaining > 0 {
            f.push(Factor::RecoveryCode);
        }
        f
    }

    fn own_factor(&self) -> Option<Factor> {
        match self.method {
            UserMethod::Sms => Some(Factor::Sms),
            UserMethod::Email => Some(Factor::Email),
            UserMethod::Totp => Some(Factor::Totp),
            UserMethod::None => None,
        }
    }

    fn preferred(&self, usable: &[Factor]) -> Option<Factor> {
        self.own_factor()
            .filter(|f| usable.contains(f))
            .or_else(|| usable.first().copied())
    }

    /// The enrollment choices: the tenant's allowed methods, the user's own first.
    fn options(&self) -> Vec<AllowedMethod> {
        let own = match self.method {
            UserMethod::Sms => Some(AllowedMethod::Sms),
            UserMethod::Email => Some(AllowedMethod::Email),
            UserMethod::Totp => Some(AllowedMethod::Totp),
            UserMethod::None => None,
        };
        let mut o: Vec<AllowedMethod> = own.filter(|m| self.allows(*m)).into_iter().collect();
        o.extend(self.allowed.iter().copied().filter(|m| Some(*m) != own));
        o
    }
}

/// Decides the next MFA step after the password (and any password change); asked again
/// after each MFA step with `verified` updated.
pub fn decide(f: &Facts) -> Step {
    let usable = f.usable_factors();
    if !f.verified
        && f.bypass.is_none()
        && let Some(preferred) = f.preferred(&usable)
    {
        return Step::Verify {
            factors: usable,
            preferred,
        };
    }
    let bypassed = if f.verified || usable.is_empty() {
        None
    } else {
        f.bypass
    };
    // Enrollment, if the user's own method is not usable yet and something asks for it.
    let own_usable = f.own_factor().is_some_and(|o| usable.contains(&o));
    if own_usable {
        return Step::Done { bypassed };
    }
    let policy = if f.is_operator {
        MfaPolicy::Require
    } else {
        f.policy
    };
    let options = f.options();
    if options.is_empty() {
        // The tenant allows no method at all: nothing to enroll in.
        return Step::Done { bypassed };
    }
    let user_wants = f.method != UserMethod::None;
    let has_any = !usable.is_empty();
    if (policy == MfaPolicy::Require && !has_any)
        || (user_wants && matches!(f.enrollment, Enrollment::Require | Enrollment::NextLogin))
    {
        Step::EnrollRequired { options }
    } else if (policy == MfaPolicy::Suggest && !has_any)
        || (user_wants && f.enrollment == Enrollment::Prompt)
    {
        Step::EnrollSuggested { options }
    } else {
        Step::Done { bypassed }
    }
}

impl Factor {
    /// The name clients see in a Flow's `mfa.methods`.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Sms => "sms",
            Factor::Email => "email",
            Factor::Totp => "totp",
            Factor::RecoveryCode => "recovery_code",
        }
    }
}

impl Bypass {
    /// The name audit details use.
    pub fn as_str(self) -> &'static str {
        match self {
            Bypass::TrustedNetwork => "trusted_network",
            Bypass::RememberedDevice => "remembered_device",
        }
    }
}

/// Whether the user still has an enrollment ahead (M12 `pending`): what the next sign-in
/// would ask once any second factor is proven.
pub fn enrollment_pending(f: &Facts) -> bool {
    let f = Facts {
        verified: true,
        bypass: None,
        ..f.clone()
    };
    matches!(
        decide(&f),
        Step::EnrollRequired { .. } | Step::EnrollSuggested { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            policy: MfaPolicy::Require,
            allowed: vec![
                AllowedMethod::Email,
                AllowedMethod::Sms,
                AllowedMethod::Totp,
            ],
            is_operator: false,
            method: UserMethod::None,
            enrollment: Enrollment::NextLogin,
            totp_enrolled: false,
            email_verified: false,
            phone_verified: false,
            recovery_codes_remaining: 0,
            bypass: None,
            verified: false,
        }
    }

    #[test]
    fn m2_require_without_a_method_forces_enrollment() {
        assert!(matches!(decide(&facts()), Step::EnrollRequired { .. }));
    }

    #[test]
    fn m2_suggest_offers_enrollment_and_off_lets_through() {
        let f = Facts {
            policy: MfaPolicy::Suggest,
            ..facts()
        };
        assert!(matches!(decide(&f), Step::EnrollSuggested { .. }));
        let f = Facts {
            policy: MfaPolicy::Off,
            ..facts()
        };
        assert_eq!(decide(&f), Step::Done { bypassed: None });
        // The operator tenant requires MFA whatever is stored.
        let f = Facts {
            policy: MfaPolicy::Off,
            is_operator: true,
            ..facts()
        };
        assert!(matches!(decide(&f), Step::EnrollRequired { .. }));
    }

    #[test]
    fn m3_user_modes_apply_even_when_the_tenant_policy_is_off() {
        let base = Facts {
            policy: MfaPolicy::Off,
            method: UserMethod::Totp,
            ..facts()
        };
        for (mode, want_required) in [
            (Enrollment::Require, true),
            (Enrollment::NextLogin, true),
            (Enrollment::Prompt, false),
        ] {
            let step = decide(&Facts {
                enrollment: mode,
                ..base.clone()
            });
            match step {
                Step::EnrollRequired { options } => {
                    assert!(want_required, "{mode:?}");
                    assert_eq!(
                        options[0],
                        AllowedMethod::Totp,
                        "the user's own method first"
                    );
                }
                Step::EnrollSuggested { .. } => assert!(!want_required, "{mode:?}"),
                other => panic!("{mode:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn m1_enrolled_totp_is_verified_with_recovery_codes_as_fallback() {
        let f = Facts {
            method: UserMethod::Totp,
            totp_enrolled: true,
            recovery_codes_remaining: 5,
            ..facts()
        };
        assert_eq!(
            decide(&f),
            Step::Verify {
                factors: vec![Factor::Totp, Factor::RecoveryCode],
                preferred: Factor::Totp
            }
        );
        let f = Facts {
            recovery_codes_remaining: 0,
            ..f
        };
        assert_eq!(
            decide(&f),
            Step::Verify {
                factors: vec![Factor::Totp],
                preferred: Factor::Totp
            }
        );
    }

    #[test]
    fn m10_unverified_contacts_are_offered_enrollment_never_codes() {
        let f = Facts {
            method: UserMethod::Sms,
            phone_verified: false,
            ..facts()
        };
        match decide(&f) {
            Step::EnrollRequired { options } => assert_eq!(options[0], AllowedMethod::Sms),
            other => panic!("{other:?}"),
        }
        let f = Facts {
            method: UserMethod::Sms,
            phone_verified: true,
            ..facts()
        };
        assert_eq!(
            decide(&f),
            Step::Verify {
                factors: vec![Factor::Sms],
                preferred: Factor::Sms
            }
        );
    }

    #[test]
    fn m1_other_proven_channels_are_alternatives_and_own_enrollment_follows() {
        // Method TOTP, not enrolled yet, but a verified email: verify by email first,
        // then enroll the authenticator.
        let f = Facts {
            method: UserMethod::Totp,
            email_verified: true,
            ..facts()
        };
        assert_eq!(
            decide(&f),
            Step::Verify {
                factors: vec![Factor::Email],
                preferred: Factor::Email
            }
        );
        let after = Facts {
            verified: true,
            ..f
        };
        assert!(
            matches!(decide(&after), Step::EnrollRequired { ref options } if options[0] == AllowedMethod::Totp)
        );
        // Method SMS with a verified phone and email: both offered, SMS preferred.
        let f = Facts {
            method: UserMethod::Sms,
            phone_verified: true,
            email_verified: true,
            ..facts()
        };
        assert_eq!(
            decide(&f),
            Step::Verify {
                factors: vec![Factor::Sms, Factor::Email],
                preferred: Factor::Sms
            }
        );
        assert_eq!(
            decide(&Facts {
                verified: true,
                ..f
            }),
            Step::Done { bypassed: None }
        );
        // Method none means MFA is off for the user: a verified phone is not a factor.
        let f = Facts {
            policy: MfaPolicy::Off,
            phone_verified: true,
            ..facts()
        };
        assert_eq!(decide(&f), Step::Done { bypassed: None });
    }

    #[test]
    fn m2_a_method_the_tenant_no_longer_allows_is_not_usable() {
        let f = Facts {
            method: UserMethod::Sms,
            phone_verified: true,
            allowed: vec![AllowedMethod::Totp],
            ..facts()
        };
        assert_eq!(
            decide(&f),
            Step::EnrollRequired {
                options: vec![AllowedMethod::Totp]
            }
        );
    }

    #[test]
    fn m7_m8_bypass_skips_verification_but_not_required_enrollment() {
        let enrolled = Facts {
            method: UserMethod::Email,
            email_verified: true,
            bypass: Some(Bypass::TrustedNetwork),
            ..facts()
        };
        assert_eq!(
            decide(&enrolled),
            Step::Done {
                bypassed: Some(Bypass::TrustedNetwork)
            }
        );
        let not_enrolled = Facts {
            bypass: Some(Bypass::RememberedDevice),
            ..facts()
        };
        assert!(matches!(decide(&not_enrolled), Step::EnrollRequired { .. }));
    }
}
