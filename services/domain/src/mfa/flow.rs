//! The second-factor part of a sign-in flow, without storage: what a flow remembers
//! between calls, the proofs a verify may submit, the step shown next and how a Flow
//! shows it. The store keeps the state and runs the checks; the decisions are here, each
//! tested on its own.

use super::UserMethod;
use super::codes::Channel;
use super::step::{Bypass, Factor, Facts, Step, decide};
use crate::Error;
use crate::settings::AllowedMethod;
use crate::signin::FlowStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a flow remembers between calls (`sign_in_flows.state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    /// A remembered device or trusted network found at the password step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass: Option<Bypass>,
    /// When a second factor was proven in this flow (verify or completed enrollment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    /// Which second factor was proven, for the session's `amr` (OpenID Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven: Option<Factor>,
    /// The user skipped a suggested enrollment.
    #[serde(default)]
    pub skipped: bool,
}

impl FlowState {
    /// Records the second factor just proven.
    pub fn prove(&mut self, factor: Factor, at: DateTime<Utc>) {
        self.verified_at = Some(at);
        self.proven = Some(factor);
    }

    /// How this sign-in was made, as an ID token tells it.
    pub fn auth_context(&self) -> crate::oidc::AuthContext {
        crate::oidc::AuthContext::of(self.proven, self.bypass)
    }

    /// Reads the stored form; `None` when it is not one.
    pub fn from_json(stored: &str) -> Option<Self> {
        serde_json::from_str(stored).ok()
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A code just queued for delivery (api.md `code_sent`, and the 202 of the send calls).
#[derive(Debug, Clone)]
pub struct CodeSent {
    pub channel: Channel,
    /// Masked destination.
    pub to: String,
    pub expires_at: DateTime<Utc>,
}

/// The `mfa` member of a Flow.
#[derive(Debug, Clone)]
pub struct FlowMfa {
    /// Verification: the factors the user can prove now; enrollment: the factors on offer.
    /// Clients see them by [`Factor::as_str`].
    pub methods: Vec<Factor>,
    pub preferred: Option<Factor>,
    pub code_sent: Option<CodeSent>,
    /// Why the automatic send was refused.
    pub code_error: Option<Error>,
}

/// The proof a verify (flow or step-up) submits, as its `method` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    Code,
    Totp,
    RecoveryCode,
}

/// What a step-up submits (M11): a second factor, or the password where the practice asks
/// for none and the user has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepUpProof {
    Code,
    Totp,
    RecoveryCode,
    Password,
}

impl StepUpProof {
    /// The submitted name.
    pub fn as_str(self) -> &'static str {
        match self.second_factor() {
            Some(p) => p.as_str(),
            None => "password",
        }
    }

    /// The second factor proven, or `None` for the password.
    pub fn second_factor(self) -> Option<Proof> {
        match self {
            StepUpProof::Code => Some(Proof::Code),
            StepUpProof::Totp => Some(Proof::Totp),
            StepUpProof::RecoveryCode => Some(Proof::RecoveryCode),
            StepUpProof::Password => None,
        }
    }
}

impl Proof {
    /// The submitted and audited name.
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Code => "code",
            Proof::Totp => "totp",
            Proof::RecoveryCode => "recovery_code",
        }
    }

    /// Whether the user may prove this factor now.
    pub fn usable(self, factors: &[Factor]) -> bool {
        match self {
            Proof::Code => factors
                .iter()
                .any(|f| matches!(f, Factor::Sms | Factor::Email)),
            Proof::Totp => factors.contains(&Factor::Totp),
            Proof::RecoveryCode => factors.contains(&Factor::RecoveryCode),
        }
    }
}

/// The method a practice allows for codes over `channel`.
pub fn allowed_of(channel: Channel) -> AllowedMethod {
    match channel {
        Channel::Email => AllowedMethod::Email,
        Channel::Sms => AllowedMethod::Sms,
    }
}

/// The factor a code over `channel` proves.
pub fn factor_of(channel: Channel) -> Factor {
    match channel {
        Channel::Email => Factor::Email,
        Channel::Sms => Factor::Sms,
    }
}

/// The factor an enrollment option gives the user.
pub fn factor_of_allowed(m: AllowedMethod) -> Factor {
    match m {
        AllowedMethod::Email => Factor::Email,
        AllowedMethod::Sms => Factor::Sms,
        AllowedMethod::Totp => Factor::Totp,
    }
}

/// The factor of a user's own method; `None` for none.
fn factor_of_user(m: UserMethod) -> Option<Factor> {
    match m {
        UserMethod::None => None,
        UserMethod::Email => Some(Factor::Email),
        UserMethod::Sms => Some(Factor::Sms),
        UserMethod::Totp => Some(Factor::Totp),
    }
}

/// The reason a channel cannot be used at all right now (opted out, suppressed, over
/// budget, country), as audit details name it; `None` for other errors.
pub fn channel_refusal(e: &Error) -> Option<&'static str> {
    match e {
        Error::PhoneOptedOut { .. } => Some("phone_opted_out"),
        Error::EmailSuppressed => Some("email_suppressed"),
        Error::SmsBudgetExceeded => Some("sms_budget_exceeded"),
        Error::SmsCountryBlocked(_) => Some("sms_country_blocked"),
        _ => None,
    }
}

/// The next step, honouring a skipped suggestion.
pub fn next_step(facts: &Facts, state: &FlowState) -> Step {
    match decide(facts) {
        Step::EnrollSuggested { .. } if state.skipped => Step::Done { bypassed: None },
        s => s,
    }
}

/// The flow status a step shows.
pub fn status_of(step: &Step) -> FlowStatus {
    match step {
        Step::Verify { .. } => FlowStatus::MfaRequired,
        Step::EnrollRequired { .. } => FlowStatus::MfaEnrollmentRequired,
        Step::EnrollSuggested { .. } => FlowStatus::MfaEnrollmentSuggested,
        Step::Done { .. } => FlowStatus::Authenticated,
    }
}

/// The Flow's `mfa` member for a step: the factors to prove, with the user's own first
/// choice; or the methods on offer, the user's own method preferred when it is one.
pub fn mfa_view(step: &Step, method: UserMethod) -> Option<FlowMfa> {
    match step {
        Step::Verify { factors, preferred } => Some(FlowMfa {
            methods: factors.clone(),
            preferred: Some(*preferred),
            code_sent: None,
            code_error: None,
        }),
        Step::EnrollRequired { options } | Step::EnrollSuggested { options } => {
            let methods: Vec<Factor> = options.iter().map(|m| factor_of_allowed(*m)).collect();
            let own = factor_of_user(method).filter(|f| methods.contains(f));
            Some(FlowMfa {
                preferred: own.or_else(|| methods.first().copied()),
                methods,
                code_sent: None,
                code_error: None,
            })
        }
        Step::Done { .. } => None,
    }
}

/// Checks a TOTP label (what the authenticator app shows under the issuer); none or
/// blank is the username.
pub fn check_label(label: Option<String>, username: &str) -> Result<String, Error> {
    let Some(l) = label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()) else {
        return Ok(username.to_owned());
    };
    if l.chars().count() > 64 || l.chars().any(|c| c.is_control() || c == ':') {
        return Err(Error::field(
            "label",
            "label must be at most 64 characters, without ':' or control characters",
        ));
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mfa::Enrollment;
    use crate::settings::MfaPolicy;

    fn facts(policy: MfaPolicy, method: UserMethod) -> Facts {
        Facts {
            policy,
            allowed: vec![
                AllowedMethod::Email,
                AllowedMethod::Sms,
                AllowedMethod::Totp,
            ],
            is_operator: false,
            method,
            enrollment: Enrollment::Prompt,
            totp_enrolled: false,
            email_verified: false,
            phone_verified: false,
            recovery_codes_remaining: 0,
            bypass: None,
            verified: false,
        }
    }

    #[test]
    fn m1_flow_state_round_trips_and_old_rows_read_as_empty() {
        let s = FlowState {
            bypass: Some(Bypass::TrustedNetwork),
            verified_at: None,
            proven: None,
            skipped: true,
        };
        assert_eq!(FlowState::from_json(&s.to_json()), Some(s));
        let mut proven = FlowState::default();
        proven.prove(Factor::Sms, chrono::Utc::now());
        assert_eq!(
            FlowState::from_json(&proven.to_json()),
            Some(proven.clone())
        );
        assert_eq!(proven.auth_context().amr, ["pwd", "sms", "mfa"]);
        assert_eq!(FlowState::from_json("{}"), Some(FlowState::default()));
        assert_eq!(FlowState::from_json("not json"), None);
    }

    #[test]
    fn m3_a_skipped_suggestion_ends_the_flow_and_a_requirement_does_not() {
        let skipped = FlowState {
            skipped: true,
            ..FlowState::default()
        };
        let suggested = facts(MfaPolicy::Suggest, UserMethod::None);
        assert!(matches!(
            next_step(&suggested, &FlowState::default()),
            Step::EnrollSuggested { .. }
        ));
        assert_eq!(
            next_step(&suggested, &skipped),
            Step::Done { bypassed: None }
        );
        let required = facts(MfaPolicy::Require, UserMethod::None);
        assert!(matches!(
            next_step(&required, &skipped),
            Step::EnrollRequired { .. }
        ));
    }

    #[test]
    fn m1_each_step_shows_its_status() {
        let cases = [
            (
                Step::Verify {
                    factors: vec![Factor::Sms],
                    preferred: Factor::Sms,
                },
                FlowStatus::MfaRequired,
            ),
            (
                Step::EnrollRequired { options: vec![] },
                FlowStatus::MfaEnrollmentRequired,
            ),
            (
                Step::EnrollSuggested { options: vec![] },
                FlowStatus::MfaEnrollmentSuggested,
            ),
            (Step::Done { bypassed: None }, FlowStatus::Authenticated),
        ];
        for (step, status) in cases {
            assert_eq!(status_of(&step), status, "{step:?}");
        }
    }

    #[test]
    fn m1_the_flow_offers_the_users_own_method_first() {
        let verify = Step::Verify {
            factors: vec![Factor::Totp, Factor::Sms, Factor::RecoveryCode],
            preferred: Factor::Sms,
        };
        let v = mfa_view(&verify, UserMethod::Sms);
        assert_eq!(
            v.as_ref().map(|m| m.methods.clone()),
            Some(vec![Factor::Totp, Factor::Sms, Factor::RecoveryCode])
        );
        assert_eq!(v.and_then(|m| m.preferred), Some(Factor::Sms));

        let options = vec![
            AllowedMethod::Email,
            AllowedMethod::Sms,
            AllowedMethod::Totp,
        ];
        let enroll = Step::EnrollRequired {
            options: options.clone(),
        };
        // The user's own method when it is on offer, else the first on offer.
        assert_eq!(
            mfa_view(&enroll, UserMethod::Totp).and_then(|m| m.preferred),
            Some(Factor::Totp)
        );
        assert_eq!(
            mfa_view(&enroll, UserMethod::None).and_then(|m| m.preferred),
            Some(Factor::Email)
        );
        let only_sms = Step::EnrollSuggested {
            options: vec![AllowedMethod::Sms],
        };
        assert_eq!(
            mfa_view(&only_sms, UserMethod::Totp).and_then(|m| m.preferred),
            Some(Factor::Sms)
        );
        assert!(mfa_view(&Step::Done { bypassed: None }, UserMethod::Sms).is_none());
    }

    #[test]
    fn m4_a_code_proof_needs_a_code_factor_and_each_proof_its_own() {
        assert!(Proof::Code.usable(&[Factor::Email]));
        assert!(Proof::Code.usable(&[Factor::Sms]));
        assert!(!Proof::Code.usable(&[Factor::Totp, Factor::RecoveryCode]));
        assert!(Proof::Totp.usable(&[Factor::Totp]));
        assert!(!Proof::Totp.usable(&[Factor::Sms]));
        assert!(Proof::RecoveryCode.usable(&[Factor::RecoveryCode]));
        assert!(!Proof::RecoveryCode.usable(&[Factor::Totp]));
        for p in [Proof::Code, Proof::Totp, Proof::RecoveryCode] {
            let named: Proof = serde_json::from_value(serde_json::json!(p.as_str())).unwrap();
            assert_eq!(named, p);
        }
        assert!(serde_json::from_value::<Proof>(serde_json::json!("password")).is_err());
        for s in ["code", "totp", "recovery_code", "password"] {
            let named: StepUpProof = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert_eq!(named.as_str(), s);
        }
        assert_eq!(StepUpProof::Password.second_factor(), None);
    }

    #[test]
    fn d3_channel_refusals_are_named_for_the_audit_and_others_are_not() {
        assert_eq!(
            channel_refusal(&Error::PhoneOptedOut {
                opt_in_number: None
            }),
            Some("phone_opted_out")
        );
        assert_eq!(
            channel_refusal(&Error::EmailSuppressed),
            Some("email_suppressed")
        );
        assert_eq!(
            channel_refusal(&Error::SmsBudgetExceeded),
            Some("sms_budget_exceeded")
        );
        assert_eq!(
            channel_refusal(&Error::SmsCountryBlocked("+44".into())),
            Some("sms_country_blocked")
        );
        assert_eq!(channel_refusal(&Error::NotFound), None);
    }

    #[test]
    fn m5_a_totp_label_defaults_to_the_username_and_refuses_what_apps_misread() {
        assert_eq!(check_label(None, "jdoe").ok(), Some("jdoe".to_owned()));
        assert_eq!(
            check_label(Some("  ".into()), "jdoe").ok(),
            Some("jdoe".to_owned())
        );
        assert_eq!(
            check_label(Some(" Front desk ".into()), "jdoe").ok(),
            Some("Front desk".to_owned())
        );
        for bad in ["a:b", "tab\there", &"x".repeat(65)] {
            assert!(check_label(Some(bad.to_owned()), "jdoe").is_err(), "{bad}");
        }
        assert_eq!(factor_of(Channel::Sms), Factor::Sms);
        assert_eq!(allowed_of(Channel::Email), AllowedMethod::Email);
    }
}
