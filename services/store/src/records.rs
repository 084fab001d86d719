//! What the store hands out: parsed, typed views of stored rows (never password hashes).

use crate::entities::{tenants, users};
use crate::error::StoreError;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use gatehouse_domain::ids::{CompanyId, GroupId, SessionId, TenantId, UserId};
use gatehouse_domain::mfa::{Enrollment, UserMethod};
use gatehouse_domain::role::Role;
use gatehouse_domain::settings::TenantSettings;
use std::sync::Arc;

pub use gatehouse_domain::settings::TenantStatus;

/// A practice, or the operator tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub company: CompanyId,
    pub name: String,
    pub timezone: Tz,
    pub status: TenantStatus,
    pub settings: TenantSettings,
    pub is_operator: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<tenants::Model> for Tenant {
    type Error = StoreError;

    fn try_from(m: tenants::Model) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("tenant {}: {what}", m.id));
        Ok(Tenant {
            id: TenantId(m.id),
            company: CompanyId::parse(&m.company).map_err(|_| corrupt("company"))?,
            timezone: m.timezone.parse().map_err(|_| corrupt("timezone"))?,
            status: match m.status.as_str() {
                "active" => TenantStatus::Active,
                "suspended" => TenantStatus::Suspended,
                _ => return Err(corrupt("status")),
            },
            settings: serde_json::from_str(&m.settings).map_err(|_| corrupt("settings"))?,
            is_operator: m.is_operator,
            created_at: m.created_at,
            updated_at: m.updated_at,
            name: m.name,
        })
    }
}

/// A group a user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: GroupId,
    pub name: String,
}

/// A group of a practice's users (T5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    /// How many users belong to it, active or not.
    pub members: u64,
    pub created_at: DateTime<Utc>,
}

/// A user as admins and the user see it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub role: Role,
    pub active: bool,
    /// S4: inactive until a support admin other than `approval_requested_by` approves it.
    pub pending_approval: bool,
    /// Who created or promoted the account that waits for approval.
    pub approval_requested_by: Option<UserId>,
    pub locked: bool,
    pub must_change_password: bool,
    pub failed_logins: u32,
    /// Wrong second-factor codes in a row (M13).
    pub mfa_failures: u32,
    pub mfa_method: UserMethod,
    pub mfa_enrollment: Enrollment,
    /// A confirmed authenticator exists (M12).
    pub totp_enrolled: bool,
    /// Unused recovery codes (M12).
    pub recovery_codes_remaining: u32,
    pub groups: Vec<GroupRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// Builds the view from a row; groups are filled in by the caller.
    pub(crate) fn from_model(m: users::Model) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("user {}: {what}", m.id));
        Ok(User {
            id: UserId(m.id),
            tenant_id: TenantId(m.tenant_id),
            role: Role::parse(&m.role).map_err(|_| corrupt("role"))?,
            mfa_method: UserMethod::parse(&m.mfa_method).map_err(|_| corrupt("mfa_method"))?,
            mfa_enrollment: Enrollment::parse(&m.mfa_enrollment)
                .map_err(|_| corrupt("mfa_enrollment"))?,
            failed_logins: u32::try_from(m.failed_logins).unwrap_or(0),
            mfa_failures: u32::try_from(m.mfa_failures).unwrap_or(0),
            username: m.username,
            first_name: m.first_name,
            last_name: m.last_name,
            email: m.email,
            email_verified: m.email_verified,
            phone: m.phone,
            phone_verified: m.phone_verified,
            active: m.active,
            pending_approval: m.pending_approval,
            approval_requested_by: m.approval_requested_by.map(UserId),
            locked: m.locked,
            must_change_password: m.must_change_password,
            totp_enrolled: false,
            recovery_codes_remaining: 0,
            groups: Vec::new(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            last_login_at: m.last_login_at,
        })
    }
}

impl User {
    /// The MFA facts of this user under `tenant`'s rules, before any sign-in step.
    pub fn mfa_facts(&self, tenant: &Tenant) -> gatehouse_domain::mfa::step::Facts {
        gatehouse_domain::mfa::step::Facts {
            policy: tenant.settings.mfa_policy,
            allowed: tenant.settings.allowed_methods.clone(),
            is_operator: tenant.is_operator,
            method: self.mfa_method,
            enrollment: self.mfa_enrollment,
            totp_enrolled: self.totp_enrolled,
            email_verified: self.email_verified && self.email.is_some(),
            phone_verified: self.phone_verified && self.phone.is_some(),
            recovery_codes_remaining: self.recovery_codes_remaining,
            bypass: None,
            verified: false,
        }
    }

    /// Whether an enrollment is still ahead of the user (M12).
    pub fn mfa_pending(&self, tenant: &Tenant) -> bool {
        gatehouse_domain::mfa::step::enrollment_pending(&self.mfa_facts(tenant))
    }
}

/// The authenticated caller of a request: a live session, its user and tenant.
#[derive(Debug, Clone)]
pub struct Principal(pub(crate) Arc<PrincipalData>);

/// The data behind a [`Principal`].
#[derive(Debug)]
pub struct PrincipalData {
    pub session_id: SessionId,
    pub(crate) token_hash: String,
    pub user: User,
    pub tenant: Tenant,
    pub expires_at: DateTime<Utc>,
    /// When the user signed in (OpenID Connect `auth_time`).
    pub created_at: DateTime<Utc>,
    /// How the user signed in (`amr`, `acr`).
    pub auth: gatehouse_domain::oidc::AuthContext,
    pub mfa_verified_at: Option<DateTime<Utc>>,
    /// Last activity known to this process (unix seconds), for the idle timeout.
    pub(crate) last_seen: std::sync::atomic::AtomicI64,
}

impl std::ops::Deref for Principal {
    type Target = PrincipalData;

    fn deref(&self) -> &PrincipalData {
        &self.0
    }
}

impl PrincipalData {
    /// When the session ends without further activity.
    pub fn last_seen_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.last_seen.load(std::sync::atomic::Ordering::Relaxed), 0)
            .unwrap_or(self.expires_at)
    }
}

/// One page of a list and the cursor of the next.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
