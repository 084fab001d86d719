//! Users, as admins and the users themselves see and change them.

use super::groups::GroupRefDto;
use crate::input::Parsed;
use chrono::{DateTime, Utc};
use gatehouse_domain::role::Role;
use gatehouse_store::{Tenant, User};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// MFA status at a glance (M12).
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaStatus {
    #[schema(value_type = crate::vocabulary::UserMethod)]
    pub method: String,
    #[schema(value_type = crate::vocabulary::Enrollment)]
    pub enrollment: String,
    pub totp_enrolled: bool,
    pub recovery_codes_remaining: u32,
    pub pending: bool,
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: Uuid,
    pub company: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    #[schema(value_type = crate::vocabulary::Role)]
    pub role: String,
    pub active: bool,
    /// Operator accounts (S4): new, or given support_admin, and inactive until a second
    /// support admin approves them (`POST .../users/{user_id}/approve`).
    pub pending_approval: bool,
    pub locked: bool,
    pub must_change_password: bool,
    pub groups: Vec<GroupRefDto>,
    pub mfa: MfaStatus,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl UserDto {
    /// The API view of a user of `tenant`.
    pub fn from_user(u: &User, tenant: &Tenant) -> Self {
        let pending = u.mfa_pending(tenant);
        let company = tenant.company.as_str();
        UserDto {
            id: u.id.0,
            company: company.to_owned(),
            username: u.username.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            phone: u.phone.clone(),
            phone_verified: u.phone_verified,
            role: u.role.as_str().to_owned(),
            active: u.active,
            pending_approval: u.pending_approval,
            locked: u.locked,
            must_change_password: u.must_change_password,
            groups: u
                .groups
                .iter()
                .map(|g| GroupRefDto {
                    id: g.id.0,
                    name: g.name.clone(),
                })
                .collect(),
            mfa: MfaStatus {
                method: u.mfa_method.as_str().to_owned(),
                enrollment: u.mfa_enrollment.as_str().to_owned(),
                totp_enrolled: u.totp_enrolled,
                recovery_codes_remaining: u.recovery_codes_remaining,
                pending,
            },
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// The tenant part of a session answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantRef {
    pub company: String,
    pub name: String,
}

/// `GET /v1/auth/session`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub user: UserDto,
    pub tenant: TenantRef,
    /// Absolute end of the session.
    pub expires_at: DateTime<Utc>,
    /// When the session ends if it stays unused.
    pub idle_expires_at: DateTime<Utc>,
    pub mfa_verified_at: Option<DateTime<Utc>>,
}

/// `POST /v1/tenants/{company}/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// staff | practice_admin (support_agent | support_admin in the operator tenant)
    #[schema(value_type = crate::vocabulary::Role)]
    pub role: Parsed<Role>,
    /// Temporary: the user must change it at first sign-in.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[serde(default)]
    pub groups: Vec<Uuid>,
}

/// Distinguishes a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /v1/tenants/{company}/users/{user_id}`: any subset of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// A new address must be verified again before codes go to it; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub email: Option<Option<String>>,
    /// As `email`; stored in E.164.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub phone: Option<Option<String>>,
    /// A change needs step-up (a second factor within 15 minutes).
    #[schema(value_type = Option<crate::vocabulary::Role>)]
    pub role: Option<Parsed<Role>>,
    /// false deactivates (sessions and remembered devices end at once); true reactivates.
    pub active: Option<bool>,
}

/// `POST /v1/tenants/{company}/users/{user_id}/copy`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyUserRequest {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Temporary: the copy must change it at first sign-in.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// `POST /v1/tenants/{company}/users/{user_id}/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The user must change it at the next sign-in.
    #[schema(value_type = String, format = Password)]
    pub temporary_password: SecretString,
}

/// `POST /v1/me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}
