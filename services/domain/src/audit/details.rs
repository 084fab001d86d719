//! What an audited action records beyond who did what to whom (A1): one variant per
//! action name of api.md, so every event of an action has the same keys, written in one
//! place, and the action of an event follows from its details ([`Details::action`]).
//!
//! Non-secret facts only: never a password, code, token, secret or hash. Destinations
//! appear masked. The JSON form (`serde_json::to_value`) is what the log stores and
//! hashes; its keys are the contract's, so a variant's field names are not to be renamed.

use super::Action;
use crate::escalation::{EscalationAction, EscalationStatus};
use crate::login_hours::LoginWindowText;
use crate::mfa::codes::{Channel, Purpose};
use crate::mfa::flow::Proof;
use crate::mfa::step::Bypass;
use crate::mfa::{Enrollment, UserMethod};
use crate::password::PasswordVia;
use crate::role::Role;
use crate::settings::TenantStatus;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

/// The facts of one audited action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Details {
    SigninSucceeded {
        flow_id: Uuid,
        /// Whether a second factor was proven (not bypassed, not off).
        second_factor: bool,
    },
    SigninFailed {
        reason: SigninFailure,
        /// The user's consecutive failures, this one included (a known user only).
        #[serde(skip_serializing_if = "Option::is_none")]
        failed_logins: Option<u64>,
    },
    SigninRefused {
        reason: Refusal,
    },
    UserLocked {
        reason: LockReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        failed_logins: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        mfa_failures: Option<u64>,
    },
    UserUnlocked {
        failed_logins: i64,
        mfa_failures: i64,
        /// The escalation that asked for it (S2).
        #[serde(skip_serializing_if = "Option::is_none")]
        escalation_id: Option<Uuid>,
    },
    PasswordChanged(PasswordSet),
    PasswordReset(PasswordSet),
    MfaCodeSent(CodeSent),
    MfaCodeRefused {
        #[serde(serialize_with = "name")]
        channel: Channel,
        to: String,
        #[serde(serialize_with = "name")]
        purpose: Purpose,
        /// The problem code the caller was answered.
        reason: &'static str,
    },
    MfaVerified {
        method: Method,
        context: Context,
        /// The channel the code went to, for a code.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "some_name")]
        channel: Option<Channel>,
    },
    MfaFailed {
        method: Method,
        attempts_remaining: u32,
        context: Context,
    },
    MfaExhausted {
        method: Method,
        context: Context,
    },
    MfaEnrolled {
        method: Method,
        /// Recovery codes issued with an authenticator.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovery_codes: Option<u64>,
        /// The proven contact (masked), for a channel.
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        context: Context,
    },
    MfaReset(MfaReset),
    MfaSkipped {},
    MfaBypassed {
        #[serde(serialize_with = "name")]
        via: Bypass,
    },
    RecoveryCodeUsed {
        remaining: u64,
    },
    RecoveryCodesRegenerated {
        count: u64,
    },
    DeviceRemembered {
        #[serde(serialize_with = "rfc3339")]
        expires_at: DateTime<Utc>,
    },
    DeviceRevoked {
        device_id: Uuid,
    },
    NetworkAdded(Network),
    NetworkRemoved(Network),
    ContactVerified {
        #[serde(serialize_with = "name")]
        channel: Channel,
        to: String,
    },
    UserCreated {
        #[serde(serialize_with = "name")]
        role: Role,
        /// Groups joined at creation (an admin's create).
        #[serde(skip_serializing_if = "Option::is_none")]
        groups: Option<u64>,
        /// Waiting for a second support admin (S4).
        #[serde(skip_serializing_if = "Option::is_none")]
        pending_approval: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<CreatedVia>,
    },
    UserCopied(Box<UserCopied>),
    UserUpdated(UserUpdate),
    UserDeactivated {
        sessions_ended: u64,
        devices_revoked: u64,
        /// A role change that waits for approval suspended the account (S4).
        pending_approval: bool,
    },
    UserReactivated {},
    UserApproved {
        #[serde(serialize_with = "name")]
        role: Role,
        requested_by: Option<Uuid>,
        via: ApprovedVia,
    },
    GroupCreated {
        name: String,
    },
    GroupUpdated {
        name: Change<String>,
    },
    GroupDeleted {
        members: u64,
    },
    GroupMembersChanged {
        #[serde(skip_serializing_if = "Option::is_none")]
        added: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        removed: Option<u64>,
        /// Every user of the practice was added.
        #[serde(skip_serializing_if = "Option::is_none")]
        all: Option<bool>,
        user_ids: Vec<Uuid>,
    },
    TenantCreated {
        name: String,
    },
    TenantSettingsChanged {
        changed: Vec<&'static str>,
    },
    TenantSuspended(TenantMoved),
    TenantReactivated(TenantMoved),
    SupportRead {
        path: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "some_name")]
        role: Option<Role>,
    },
    EmailSuppressionLifted {
        email: String,
        reason: String,
        since: DateTime<Utc>,
    },
    SessionEnded {
        reason: SessionEnd,
    },
    EscalationRequested {
        #[serde(flatten)]
        escalation: EscalationRef,
        reason: String,
        admins_notified: u64,
    },
    EscalationApproved(Decided),
    EscalationDenied(Decided),
    EscalationExecuted {
        #[serde(flatten)]
        escalation: EscalationRef,
    },
    EscalationExpired {
        #[serde(flatten)]
        escalation: EscalationRef,
        #[serde(serialize_with = "name")]
        was: EscalationStatus,
    },
    OidcClientCreated(OidcClientFacts),
    OidcClientUpdated(OidcClientFacts),
    OidcClientDeleted {
        client_id: String,
        name: String,
    },
    OidcClientSecretRotated {
        client_id: String,
        /// Until when the previous secret is still accepted.
        #[serde(skip_serializing_if = "Option::is_none")]
        previous_until: Option<DateTime<Utc>>,
    },
    /// An authorization code was issued to a client for this user.
    OidcAuthorized {
        client_id: String,
        scope: String,
        /// Whether an existing browser session answered (single sign-on).
        sso: bool,
    },
    /// The user may not use this client (a client limited to other practices).
    OidcDenied {
        client_id: String,
    },
    /// Tokens were issued at the token endpoint.
    OidcTokensIssued {
        client_id: String,
        grant_type: &'static str,
        refresh_token: bool,
    },
    /// A spent code or refresh token came back: what it issued is revoked.
    OidcReplayDetected {
        client_id: String,
        /// `authorization_code` or `refresh_token`.
        grant_type: &'static str,
        revoked: u64,
    },
    /// A client revoked a token (RFC 7009).
    OidcTokenRevoked {
        client_id: String,
        revoked: u64,
    },
}

/// What an operator's log says of a client (no secret, not even hashed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OidcClientFacts {
    pub client_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub companies: Option<Vec<String>>,
}

impl Details {
    /// The action these details belong to.
    pub fn action(&self) -> Action {
        match self {
            Details::SigninSucceeded { .. } => Action::SigninSucceeded,
            Details::SigninFailed { .. } => Action::SigninFailed,
            Details::SigninRefused { .. } => Action::SigninRefused,
            Details::UserLocked { .. } => Action::UserLocked,
            Details::UserUnlocked { .. } => Action::UserUnlocked,
            Details::PasswordChanged(_) => Action::PasswordChanged,
            Details::PasswordReset(_) => Action::PasswordReset,
            Details::MfaCodeSent(_) => Action::MfaCodeSent,
            Details::MfaCodeRefused { .. } => Action::MfaCodeRefused,
            Details::MfaVerified { .. } => Action::MfaVerified,
            Details::MfaFailed { .. } => Action::MfaFailed,
            Details::MfaExhausted { .. } => Action::MfaExhausted,
            Details::MfaEnrolled { .. } => Action::MfaEnrolled,
            Details::MfaReset(_) => Action::MfaReset,
            Details::MfaSkipped {} => Action::MfaSkipped,
            Details::MfaBypassed { .. } => Action::MfaBypassed,
            Details::RecoveryCodeUsed { .. } => Action::RecoveryCodeUsed,
            Details::RecoveryCodesRegenerated { .. } => Action::RecoveryCodesRegenerated,
            Details::DeviceRemembered { .. } => Action::DeviceRemembered,
            Details::DeviceRevoked { .. } => Action::DeviceRevoked,
            Details::NetworkAdded(_) => Action::NetworkAdded,
            Details::NetworkRemoved(_) => Action::NetworkRemoved,
            Details::ContactVerified { .. } => Action::ContactVerified,
            Details::UserCreated { .. } => Action::UserCreated,
            Details::UserCopied(_) => Action::UserCopied,
            Details::UserUpdated(_) => Action::UserUpdated,
            Details::UserDeactivated { .. } => Action::UserDeactivated,
            Details::UserReactivated {} => Action::UserReactivated,
            Details::UserApproved { .. } => Action::UserApproved,
            Details::GroupCreated { .. } => Action::GroupCreated,
            Details::GroupUpdated { .. } => Action::GroupUpdated,
            Details::GroupDeleted { .. } => Action::GroupDeleted,
            Details::GroupMembersChanged { .. } => Action::GroupMembersChanged,
            Details::TenantCreated { .. } => Action::TenantCreated,
            Details::TenantSettingsChanged { .. } => Action::TenantSettingsChanged,
            Details::TenantSuspended(_) => Action::TenantSuspended,
            Details::TenantReactivated(_) => Action::TenantReactivated,
            Details::SupportRead { .. } => Action::SupportRead,
            Details::EmailSuppressionLifted { .. } => Action::EmailSuppressionLifted,
            Details::SessionEnded { .. } => Action::SessionEnded,
            Details::EscalationRequested { .. } => Action::EscalationRequested,
            Details::EscalationApproved(_) => Action::EscalationApproved,
            Details::EscalationDenied(_) => Action::EscalationDenied,
            Details::EscalationExecuted { .. } => Action::EscalationExecuted,
            Details::EscalationExpired { .. } => Action::EscalationExpired,
            Details::OidcClientCreated(_) => Action::OidcClientCreated,
            Details::OidcClientUpdated(_) => Action::OidcClientUpdated,
            Details::OidcClientDeleted { .. } => Action::OidcClientDeleted,
            Details::OidcClientSecretRotated { .. } => Action::OidcClientSecretRotated,
            Details::OidcAuthorized { .. } => Action::OidcAuthorized,
            Details::OidcDenied { .. } => Action::OidcDenied,
            Details::OidcTokensIssued { .. } => Action::OidcTokensIssued,
            Details::OidcReplayDetected { .. } => Action::OidcReplayDetected,
            Details::OidcTokenRevoked { .. } => Action::OidcTokenRevoked,
        }
    }

    /// The stored form. The types above are strings, numbers, booleans, lists and
    /// options of them with string keys, which always serialise.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A failed sign-in: `failed_logins` for a known user.
    pub fn signin_failed(reason: SigninFailure, failed_logins: Option<u32>) -> Self {
        Details::SigninFailed {
            reason,
            failed_logins: failed_logins.map(u64::from),
        }
    }

    /// The lock after the `n`th wrong password (P4).
    pub fn locked_by_passwords(n: u32) -> Self {
        Details::UserLocked {
            reason: LockReason::FailedLogins,
            failed_logins: Some(u64::from(n)),
            mfa_failures: None,
        }
    }

    /// The lock after the `n`th wrong second-factor guess (M7).
    pub fn locked_by_codes(n: u32) -> Self {
        Details::UserLocked {
            reason: LockReason::MfaFailures,
            failed_logins: None,
            mfa_failures: Some(u64::from(n)),
        }
    }
}

/// Why a sign-in (or a password re-entered later) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigninFailure {
    UnknownUser,
    WrongPassword,
    /// Wrong, on an account that is locked anyway (the lock stays unrevealed).
    WrongPasswordWhileLocked,
    /// `POST /v1/me/password` with a wrong current password.
    WrongCurrentPassword,
    /// Step-up by password, wrong.
    WrongStepUpPassword,
}

/// Why a right password did not sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    Locked,
    TenantSuspended,
    Inactive,
    OutsideLoginHours,
}

/// What locked an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockReason {
    FailedLogins,
    MfaFailures,
}

/// A password set (changed by the user, or reset by someone else).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PasswordSet {
    #[serde(serialize_with = "name")]
    pub via: PasswordVia,
    pub sessions_ended: u64,
    pub devices_revoked: u64,
}

impl PasswordSet {
    /// `password.reset` when someone else set it (it is temporary), else
    /// `password.changed`.
    pub fn into_details(self) -> Details {
        if self.via.temporary() {
            Details::PasswordReset(self)
        } else {
            Details::PasswordChanged(self)
        }
    }
}

/// A code handed to the provider (D1), as the delivery worker records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeSent {
    pub delivery_id: Uuid,
    pub channel: String,
    pub purpose: String,
    /// The destination, masked.
    pub to: String,
    /// Which send of this delivery it was.
    pub attempt: i64,
    /// `at_use` when the send was recorded only when the code was used (the worker's own
    /// record was lost), with a note saying so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// The provider attempts behind it, as the delivery's history shows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<serde_json::Value>,
}

/// How a second factor was proven or tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A code sent by email or SMS (which one: the event's `channel`).
    Code,
    Email,
    Sms,
    Totp,
    RecoveryCode,
    /// Step-up by password (M11).
    Password,
}

impl From<Proof> for Method {
    fn from(p: Proof) -> Self {
        match p {
            Proof::Code => Method::Code,
            Proof::Totp => Method::Totp,
            Proof::RecoveryCode => Method::RecoveryCode,
        }
    }
}

impl From<Channel> for Method {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Email => Method::Email,
            Channel::Sms => Method::Sms,
        }
    }
}

/// Where a second factor was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    SignIn,
    StepUp,
    /// `/v1/me/mfa` (the user's own).
    SelfService,
    /// Confirming an authenticator.
    Enrollment,
    /// Proving an email address or phone number.
    Contact,
}

/// Who acted, where the actor alone does not say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The user, on their own account.
    Themselves,
    /// Someone of this role.
    Role(Role),
}

impl Serialize for By {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            By::Themselves => "self",
            By::Role(r) => r.as_str(),
        })
    }
}

/// A second factor reset.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MfaReset {
    /// By an admin or an escalation (M13): everything of the user's method.
    Everything {
        #[serde(serialize_with = "name")]
        method: UserMethod,
        authenticator_removed: bool,
        recovery_codes_removed: u64,
        devices_revoked: u64,
    },
    /// The user removed their own authenticator.
    Own { removed: Method, by: By },
}

/// A trusted network (M9).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    pub id: Uuid,
    pub cidr: String,
    /// The one user it applies to; none: everyone.
    pub user_id: Option<Uuid>,
}

/// How a user came to be, when not by an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CreatedVia {
    /// Bootstrap or the demo seed.
    Seed,
}

/// Who approved a waiting operator account (S4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovedVia {
    /// A second support admin, through the API.
    SupportAdmin,
    /// `gatehouse approve-operator` on the server.
    Server,
}

/// A user made from another (U3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserCopied {
    pub from: UserLabel,
    #[serde(serialize_with = "name")]
    pub role: Role,
    pub groups: u64,
    pub login_hours: u64,
    pub trusted_networks: u64,
    #[serde(serialize_with = "name")]
    pub mfa_method: UserMethod,
    #[serde(serialize_with = "name")]
    pub mfa_enrollment: Enrollment,
    pub pending_approval: bool,
}

/// A user as another event names them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserLabel {
    pub id: Uuid,
    pub username: String,
}

/// A value before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

/// What changed on a user.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UserUpdate {
    /// An admin's `PATCH`: the fields given.
    Fields {
        fields: Vec<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<RoleChange>,
        /// A changed contact must be proven again (M10).
        #[serde(skip_serializing_if = "Option::is_none")]
        reverification: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pending_approval: Option<bool>,
    },
    /// The user's login hours, as the API shows them.
    LoginHours { login_hours: Vec<LoginWindowText> },
    /// Every user of the practice must change their password (P3).
    MustChangePassword {
        must_change_password: bool,
        users: u64,
    },
    /// The user's second-factor method, set by an admin (with its enrollment) or by the
    /// user.
    Mfa {
        #[serde(serialize_with = "name")]
        mfa_method: UserMethod,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "some_name")]
        mfa_enrollment: Option<Enrollment>,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<By>,
    },
}

/// A role before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoleChange {
    #[serde(serialize_with = "name")]
    pub from: Role,
    #[serde(serialize_with = "name")]
    pub to: Role,
}

/// A practice suspended or reactivated (S3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantMoved {
    #[serde(serialize_with = "name")]
    pub status: TenantStatus,
    pub sessions_ended: u64,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    Logout,
    /// RP-initiated logout at `/oauth2/logout`.
    OidcLogout,
}

/// The escalation an escalation event is about (S2). The operator's copy also names the
/// practice and the user, since the operator's log spans practices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalationRef {
    pub escalation_id: Uuid,
    #[serde(serialize_with = "name")]
    pub action: EscalationAction,
    pub ticket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A practice's (or the second support admin's) answer to an escalation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    #[serde(flatten)]
    pub escalation: EscalationRef,
    pub by: By,
    /// Approved by a second support admin because the practice has no admin (S2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub two_person_rule: Option<bool>,
}

/// A value stored by its name.
trait Named: Copy {
    fn name(self) -> &'static str;
}

macro_rules! named {
    ($($t:ty),* $(,)?) => {
        $(impl Named for $t {
            fn name(self) -> &'static str {
                self.as_str()
            }
        })*
    };
}

named!(
    Channel,
    Purpose,
    Bypass,
    Role,
    UserMethod,
    Enrollment,
    PasswordVia,
    TenantStatus,
    EscalationAction,
    EscalationStatus,
);

fn name<T: Named, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

fn some_name<T: Named, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(v.name()),
        None => s.serialize_none(),
    }
}

fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    /// The stored keys are the contract's: a few shapes, byte for byte.
    #[test]
    fn details_keep_their_keys() {
        let id = Uuid::nil();
        let cases = [
            (
                Details::signin_failed(SigninFailure::WrongPassword, Some(3)),
                json!({"reason": "wrong_password", "failed_logins": 3}),
            ),
            (
                Details::signin_failed(SigninFailure::UnknownUser, None),
                json!({"reason": "unknown_user"}),
            ),
            (
                Details::locked_by_codes(5),
                json!({"reason": "mfa_failures", "mfa_failures": 5}),
            ),
            (
                Details::MfaVerified {
                    method: Method::Code,
                    context: Context::SignIn,
                    channel: Some(Channel::Sms),
                },
                json!({"method": "code", "context": "sign_in", "channel": "sms"}),
            ),
            (
                Details::NetworkAdded(Network {
                    id,
                    cidr: "203.0.113.0/24".into(),
                    user_id: None,
                }),
                json!({"id": id.to_string(), "cidr": "203.0.113.0/24", "user_id": null}),
            ),
            (
                Details::MfaReset(MfaReset::Own {
                    removed: Method::Totp,
                    by: By::Themselves,
                }),
                json!({"removed": "totp", "by": "self"}),
            ),
            (
                Details::GroupMembersChanged {
                    added: None,
                    removed: Some(1),
                    all: None,
                    user_ids: vec![id],
                },
                json!({"removed": 1, "user_ids": [id.to_string()]}),
            ),
            (
                Details::EscalationApproved(Decided {
                    escalation: EscalationRef {
                        escalation_id: id,
                        action: EscalationAction::ResetMfa,
                        ticket: "T-1".into(),
                        company: Some("clinic".into()),
                        user: None,
                    },
                    by: By::Role(Role::SupportAdmin),
                    two_person_rule: Some(true),
                }),
                json!({"escalation_id": id.to_string(), "action": "reset_mfa", "ticket": "T-1",
                       "company": "clinic", "by": "support_admin", "two_person_rule": true}),
            ),
            (
                PasswordSet {
                    via: PasswordVia::AdminReset,
                    sessions_ended: 2,
                    devices_revoked: 0,
                }
                .into_details(),
                json!({"via": "admin_reset", "sessions_ended": 2, "devices_revoked": 0}),
            ),
            (Details::MfaSkipped {}, json!({})),
        ];
        for (details, stored) in cases {
            assert_eq!(details.to_value(), stored, "{:?}", details.action());
        }
    }

    /// Each variant names its own action, and a reset by someone else is `password.reset`.
    #[test]
    fn details_name_their_action() {
        let set = |via| PasswordSet {
            via,
            sessions_ended: 0,
            devices_revoked: 0,
        };
        assert_eq!(
            set(PasswordVia::Escalation).into_details().action(),
            Action::PasswordReset
        );
        assert_eq!(
            set(PasswordVia::SelfService).into_details().action(),
            Action::PasswordChanged
        );
        assert_eq!(
            Details::locked_by_passwords(10).action(),
            Action::UserLocked
        );
        assert_eq!(
            Details::SessionEnded {
                reason: SessionEnd::Logout
            }
            .action(),
            Action::SessionEnded
        );
    }
}
