//! The closed sets of words the API accepts and answers, as OpenAPI `enum`s.
//!
//! Request fields keep arriving as strings and are parsed by the domain, because the
//! domain reports every bad field of a body at once (`errors: [{field, message}]`),
//! which a serde enum failing the whole body would not. These types only describe the
//! accepted words to `/openapi.json`; the tests below keep them equal to what the
//! domain parses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

/// A contact a user verifies: `/v1/me/contacts/{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Email,
    Phone,
}

/// The proof a verify or step-up submits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    Code,
    Totp,
    RecoveryCode,
}

/// The proof a step-up submits: a second factor, or the password where the user has none
/// and the practice's MFA policy is `off` (M11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepUpProof {
    Code,
    Totp,
    RecoveryCode,
    Password,
}

/// A user's second-factor method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserMethod {
    None,
    Email,
    Sms,
    Totp,
}

/// How enrollment of the user's method is handled at the next sign-in (M3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Enrollment {
    NextLogin,
    Prompt,
    Require,
}

/// A user's role; support roles only in the operator tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Staff,
    PracticeAdmin,
    SupportAgent,
    SupportAdmin,
}

/// A method a flow offers (to verify with, or to enroll in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowMethod {
    Sms,
    Email,
    Totp,
    RecoveryCode,
}

/// Where a sign-in flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    Authenticated,
    PasswordChangeRequired,
    MfaRequired,
    MfaEnrollmentRequired,
    MfaEnrollmentSuggested,
}

/// A practice's second-factor policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    Off,
    Suggest,
    Require,
}

/// A method a practice allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllowedMethod {
    Email,
    Sms,
    Totp,
}

/// A day of the week of a login-hours window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// What a support escalation does once approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EscalationAction {
    Unlock,
    ResetMfa,
    ResetPassword,
}

/// Where an escalation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EscalationStatus {
    Pending,
    Approved,
    Denied,
    Executed,
    Expired,
}

/// Where a message to a user stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sent,
    Delivered,
    Bounced,
    Complained,
    Suppressed,
    OptedOut,
    Failed,
}

/// Why a message was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryPurpose {
    SignIn,
    Enroll,
    Contact,
    StepUp,
    Notice,
}

/// Whether a tenant may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use gatehouse_domain::mfa::codes;
    use serde::de::DeserializeOwned;
    use utoipa::PartialSchema;

    /// The words of a schema enum, read from its generated schema.
    fn words<T: ToSchema + PartialSchema>() -> Vec<String> {
        let v = serde_json::to_value(T::schema()).unwrap();
        v["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    }

    /// A word the domain parses as `D` round-trips through the schema enum, and back.
    fn same<T, D>(domain: &[D], name: impl Fn(&D) -> String)
    where
        T: ToSchema + PartialSchema + DeserializeOwned,
    {
        let mut ours = words::<T>();
        let mut theirs: Vec<String> = domain.iter().map(name).collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{}", T::name());
    }

    #[test]
    fn schema_enums_list_exactly_the_words_the_domain_parses() {
        use gatehouse_domain::mfa::{Enrollment as E, UserMethod as M};
        use gatehouse_domain::role::Role as R;
        same::<Channel, _>(&[codes::Channel::Email, codes::Channel::Sms], |c| {
            c.as_str().to_owned()
        });
        for w in words::<Channel>() {
            assert!(codes::Channel::parse(&w).is_some(), "{w}");
        }
        for w in words::<DeliveryPurpose>() {
            assert!(codes::Purpose::parse(&w).is_some(), "{w}");
        }
        for w in words::<Role>() {
            assert_eq!(R::parse(&w).unwrap().as_str(), w);
        }
        assert!(R::parse("owner").is_err());
        same::<Role, _>(
            &[R::Staff, R::PracticeAdmin, R::SupportAgent, R::SupportAdmin],
            |r| r.as_str().to_owned(),
        );
        for w in words::<UserMethod>() {
            assert_eq!(M::parse(&w).unwrap().as_str(), w);
        }
        same::<UserMethod, _>(&[M::None, M::Email, M::Sms, M::Totp], |m| {
            m.as_str().to_owned()
        });
        for w in words::<Enrollment>() {
            assert_eq!(E::parse(&w).unwrap().as_str(), w);
        }
        for w in words::<MfaPolicy>() {
            serde_json::from_value::<gatehouse_domain::settings::MfaPolicy>(w.clone().into())
                .unwrap();
        }
        for w in words::<AllowedMethod>() {
            serde_json::from_value::<gatehouse_domain::settings::AllowedMethod>(w.clone().into())
                .unwrap();
        }
        for w in words::<DeliveryStatus>() {
            assert!(
                gatehouse_domain::delivery::DeliveryStatus::parse(&w).is_some(),
                "{w}"
            );
        }
        for w in words::<FlowStatus>() {
            assert!(
                gatehouse_domain::signin::FlowStatus::parse(&w).is_some(),
                "{w}"
            );
        }
        for w in words::<EscalationAction>() {
            assert!(
                gatehouse_domain::escalation::EscalationAction::parse(&w).is_some(),
                "{w}"
            );
        }
        for w in words::<EscalationStatus>() {
            assert!(
                gatehouse_domain::escalation::EscalationStatus::parse(&w).is_some(),
                "{w}"
            );
        }
        for w in words::<Weekday>() {
            serde_json::from_value::<gatehouse_domain::login_hours::Weekday>(w.clone().into())
                .unwrap();
        }
    }
}
