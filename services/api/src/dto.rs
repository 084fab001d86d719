//! Request and response bodies exactly as api.md names them.

use chrono::{DateTime, Utc};
use gatehouse_domain::audit::ChainedEvent;
use gatehouse_domain::login_hours::{LoginWindow, LoginWindowText};
use gatehouse_domain::settings::{self, TenantSettings};
use gatehouse_store::delivery_log::{DeliveryRecord, TenantDelivery};
use gatehouse_store::{Tenant, User};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub company: String,
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[schema(value_type = Option<String>)]
    pub device_token: Option<SecretString>,
}

/// `POST /v1/auth/flows/{flow_id}/password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FlowPasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// A session token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// A sign-in flow.
#[derive(Debug, Serialize, ToSchema)]
pub struct Flow {
    pub flow_id: Uuid,
    #[schema(value_type = crate::vocabulary::FlowStatus)]
    pub status: String,
    pub expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<FlowMfaDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionToken>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// A code just queued for delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSentDto {
    #[schema(value_type = crate::vocabulary::Channel)]
    pub channel: String,
    /// The masked destination.
    pub to: String,
    pub expires_at: DateTime<Utc>,
}

impl From<gatehouse_store::flow::CodeSent> for CodeSentDto {
    fn from(c: gatehouse_store::flow::CodeSent) -> Self {
        CodeSentDto {
            channel: c.channel.as_str().to_owned(),
            to: c.to,
            expires_at: c.expires_at,
        }
    }
}

/// The second-factor part of a Flow.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowMfaDto {
    /// To verify with, or (enrollment) to enroll in.
    #[schema(value_type = Vec<crate::vocabulary::FlowMethod>)]
    pub methods: Vec<String>,
    #[schema(value_type = Option<crate::vocabulary::FlowMethod>)]
    pub preferred: Option<String>,
    /// The code sent on entering `mfa_required`; null when none was sent.
    pub code_sent: Option<CodeSentDto>,
    /// Why the automatic send was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_error: Option<crate::error::Problem>,
}

/// `POST /v1/auth/flows/{flow_id}/code` and `/v1/me/step-up/code`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChannelRequest {
    #[schema(value_type = crate::vocabulary::Channel)]
    pub channel: String,
}

/// `POST /v1/auth/flows/{flow_id}/verify`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyRequest {
    #[schema(value_type = crate::vocabulary::Proof)]
    pub method: String,
    /// The 6-digit code (spaces and dashes ignored), or a 10-character recovery code.
    #[schema(value_type = String, pattern = "^[ -]*(?:(?:[0-9][ -]*){6}|(?:[0-9A-TV-Za-tv-z][ -]*){10})$")]
    pub code: SecretString,
    #[serde(default)]
    pub remember_device: bool,
}

/// `POST /v1/me/step-up`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StepUpRequest {
    /// `password` only for a user without a second factor where the practice's MFA policy is off
    #[schema(value_type = crate::vocabulary::StepUpProof)]
    pub method: String,
    /// The 6-digit code (spaces and dashes ignored), a 10-character recovery code, or
    /// (with `method: password`) the password.
    #[schema(value_type = String)]
    pub code: SecretString,
}

/// A body holding one code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    /// The 6-digit code (spaces and dashes ignored).
    #[schema(value_type = String, pattern = "^[ -]*(?:[0-9][ -]*){6}$")]
    pub code: SecretString,
}

/// `POST .../enroll/totp` and `/v1/me/mfa/totp` (the body may be omitted).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TotpStartRequest {
    /// The account name the authenticator app shows ("title for authenticator");
    /// default: the username.
    pub label: Option<String>,
}

/// A new authenticator secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrollmentDto {
    /// Base32, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// QR code of the otpauth URI, PNG, base64.
    pub qr_png: String,
}

impl From<gatehouse_domain::mfa::totp::Enrollment> for TotpEnrollmentDto {
    fn from(e: gatehouse_domain::mfa::totp::Enrollment) -> Self {
        TotpEnrollmentDto {
            secret: e.secret_base32,
            otpauth_uri: e.otpauth_uri,
            qr_png: e.qr_png_base64,
        }
    }
}

/// `POST .../enroll/{email|sms}` (the body may be omitted).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct EnrollChannelRequest {
    /// Default: the user's own email address or phone number.
    pub destination: Option<String>,
}

/// Recovery codes, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesDto {
    pub recovery_codes: Vec<String>,
}

/// `PUT /v1/me/mfa`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetMethodRequest {
    #[schema(value_type = crate::vocabulary::UserMethod)]
    pub method: String,
}

/// `PUT /v1/tenants/{company}/users/{user_id}/mfa`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminMfaRequest {
    #[schema(value_type = crate::vocabulary::UserMethod)]
    pub method: String,
    #[schema(value_type = crate::vocabulary::Enrollment)]
    pub enrollment: String,
}

/// `POST /v1/me/contacts/{email|phone}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContactRequest {
    pub value: String,
}

/// A remembered device (never its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDto {
    pub id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<gatehouse_store::mfa::Device> for DeviceDto {
    fn from(d: gatehouse_store::mfa::Device) -> Self {
        DeviceDto {
            id: d.id,
            label: d.label,
            created_at: d.created_at,
            expires_at: d.expires_at,
            last_used_at: d.last_used_at,
        }
    }
}

/// `POST /v1/tenants/{company}/trusted-networks`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NetworkRequest {
    /// An IPv4 or IPv6 range, e.g. 203.0.113.0/24.
    pub cidr: Option<String>,
    /// Trust the caller's own address instead of `cidr`.
    #[serde(default)]
    pub my_ip: bool,
    pub description: Option<String>,
    /// Only for this user (UUID); absent: everyone in the practice.
    pub user_id: Option<Uuid>,
}

/// A trusted network.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkDto {
    pub id: Uuid,
    pub cidr: String,
    pub description: Option<String>,
    pub user_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<gatehouse_store::mfa::TrustedNetwork> for NetworkDto {
    fn from(n: gatehouse_store::mfa::TrustedNetwork) -> Self {
        NetworkDto {
            id: n.id,
            cidr: n.cidr.to_string(),
            description: n.description,
            user_id: n.user_id,
            created_by: n.created_by,
            created_at: n.created_at,
        }
    }
}

/// A group reference inside a User.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRefDto {
    pub id: Uuid,
    pub name: String,
}

/// A group of the practice's users (T5).
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDto {
    pub id: Uuid,
    pub name: String,
    /// How many users belong to it, active or not.
    pub members: u64,
    pub created_at: DateTime<Utc>,
}

impl From<gatehouse_store::Group> for GroupDto {
    fn from(g: gatehouse_store::Group) -> Self {
        GroupDto {
            id: g.id.0,
            name: g.name,
            members: g.members,
            created_at: g.created_at,
        }
    }
}

/// `POST /v1/tenants/{company}/groups` and `PATCH .../groups/{group_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRequest {
    /// 1 to 100 printable characters, unique in the practice regardless of case.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
}

/// `POST .../groups/{group_id}/members`: exactly one of the two forms.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMembersRequest {
    /// `true`: every active user of the practice.
    pub all: Option<bool>,
    /// These users (UUIDs, at most 500), active or not; all must be of this practice.
    pub user_ids: Option<Vec<Uuid>>,
}

/// How many memberships a bulk add created (existing members are not counted).
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedDto {
    pub added: u64,
}

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

/// Password rules of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordPolicyDto {
    pub min_length: u32,
    pub require_upper: bool,
    pub require_lower: bool,
    pub require_digit: bool,
    pub require_special: bool,
}

/// All settings of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsDto {
    #[schema(value_type = crate::vocabulary::MfaPolicy)]
    pub mfa_policy: settings::MfaPolicy,
    #[schema(value_type = Vec<crate::vocabulary::AllowedMethod>)]
    pub allowed_methods: Vec<settings::AllowedMethod>,
    pub code_ttl_seconds: u32,
    pub remember_device_hours: u32,
    pub lockout_threshold: u32,
    pub timezone: String,
    pub password_policy: PasswordPolicyDto,
    pub self_service_mfa: bool,
    pub sms_country_codes: Vec<String>,
    pub sms_daily_limit: u32,
}

impl SettingsDto {
    fn from_settings(s: &TenantSettings, timezone: &str) -> Self {
        SettingsDto {
            mfa_policy: s.mfa_policy,
            allowed_methods: s.allowed_methods.clone(),
            code_ttl_seconds: s.code_ttl_seconds,
            remember_device_hours: s.remember_device_hours,
            lockout_threshold: s.lockout_threshold,
            timezone: timezone.to_owned(),
            password_policy: PasswordPolicyDto {
                min_length: s.password_policy.min_length,
                require_upper: s.password_policy.require_upper,
                require_lower: s.password_policy.require_lower,
                require_digit: s.password_policy.require_digit,
                require_special: s.password_policy.require_special,
            },
            self_service_mfa: s.self_service_mfa,
            sms_country_codes: s.sms_country_codes.clone(),
            sms_daily_limit: s.sms_daily_limit,
        }
    }
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDto {
    pub company: String,
    pub name: String,
    pub timezone: String,
    #[schema(value_type = crate::vocabulary::TenantStatus)]
    pub status: String,
    pub settings: SettingsDto,
    pub created_at: DateTime<Utc>,
}

impl From<&Tenant> for TenantDto {
    fn from(t: &Tenant) -> Self {
        TenantDto {
            company: t.company.to_string(),
            name: t.name.clone(),
            timezone: t.timezone.name().to_owned(),
            status: t.status.as_str().to_owned(),
            settings: SettingsDto::from_settings(&t.settings, t.timezone.name()),
            created_at: t.created_at,
        }
    }
}

/// `POST /v1/tenants` answer: the tenant and its first admin.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisionedTenant {
    #[serde(flatten)]
    pub tenant: TenantDto,
    pub admin: UserDto,
}

/// The first practice admin of a new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: Option<String>,
    /// Temporary: the admin must change it at first sign-in.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// `POST /v1/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub company: String,
    pub name: String,
    pub timezone: Option<String>,
    pub admin: NewAdmin,
}

/// Partial password policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicyPatchDto {
    #[schema(minimum = 8, maximum = 128)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub min_length: Option<u32>,
    pub require_upper: Option<bool>,
    pub require_lower: Option<bool>,
    pub require_digit: Option<bool>,
    pub require_special: Option<bool>,
}

/// A whole number, also when written as `2.0` (JSON Schema's `integer` includes it).
fn whole_u32<'de, D>(d: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(v) = n.as_u64() {
        return u32::try_from(v)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{v} is out of range")));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => {
            // Exact: whole and within range.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(f as u32))
        }
        _ => Err(D::Error::custom(format!(
            "expected a whole number from 0 to {}, got {n}",
            u32::MAX
        ))),
    }
}

/// `PATCH /v1/tenants/{company}/settings`: any subset of the settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatchDto {
    #[schema(value_type = Option<crate::vocabulary::MfaPolicy>)]
    pub mfa_policy: Option<settings::MfaPolicy>,
    /// At least one; none repeated.
    #[schema(value_type = Option<Vec<crate::vocabulary::AllowedMethod>>, min_items = 1)]
    pub allowed_methods: Option<Vec<settings::AllowedMethod>>,
    #[schema(minimum = 60, maximum = 900)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub code_ttl_seconds: Option<u32>,
    #[schema(minimum = 0, maximum = 720)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub remember_device_hours: Option<u32>,
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub lockout_threshold: Option<u32>,
    pub timezone: Option<String>,
    pub password_policy: Option<PasswordPolicyPatchDto>,
    pub self_service_mfa: Option<bool>,
    pub sms_country_codes: Option<Vec<String>>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub sms_daily_limit: Option<u32>,
}

impl From<SettingsPatchDto> for settings::SettingsPatch {
    fn from(d: SettingsPatchDto) -> Self {
        settings::SettingsPatch {
            mfa_policy: d.mfa_policy,
            allowed_methods: d.allowed_methods,
            code_ttl_seconds: d.code_ttl_seconds,
            remember_device_hours: d.remember_device_hours,
            lockout_threshold: d.lockout_threshold,
            timezone: d.timezone,
            password_policy: d.password_policy.map(|p| settings::PasswordPolicyPatch {
                min_length: p.min_length,
                require_upper: p.require_upper,
                require_lower: p.require_lower,
                require_digit: p.require_digit,
                require_special: p.require_special,
            }),
            self_service_mfa: d.self_service_mfa,
            sms_country_codes: d.sms_country_codes,
            sms_daily_limit: d.sms_daily_limit,
        }
    }
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
    pub role: String,
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
    pub role: Option<String>,
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

/// A login-hours window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginWindowDto {
    #[schema(value_type = crate::vocabulary::Weekday)]
    pub weekday: String,
    /// HH:MM in the tenant's time zone
    pub start: String,
    /// HH:MM (24:00 allowed); not after start means the window runs past midnight
    pub end: String,
}

impl From<LoginWindow> for LoginWindowDto {
    fn from(w: LoginWindow) -> Self {
        let t = w.to_text();
        LoginWindowDto {
            weekday: serde_json::to_value(t.weekday)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            start: t.start,
            end: t.end,
        }
    }
}

impl LoginWindowDto {
    /// The domain's text form, or the field error of an unknown weekday.
    pub fn to_text(&self, i: usize) -> Result<LoginWindowText, gatehouse_domain::FieldError> {
        let weekday =
            serde_json::from_value(serde_json::Value::String(self.weekday.to_lowercase()))
                .map_err(|_| {
                    gatehouse_domain::FieldError::new(
                        &format!("[{i}].weekday"),
                        "must be monday to sunday",
                    )
                })?;
        Ok(LoginWindowText {
            weekday,
            start: self.start.clone(),
            end: self.end.clone(),
        })
    }
}

/// Login hours of a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginHoursDto {
    pub timezone: String,
    pub items: Vec<LoginWindowDto>,
}

/// Who acted, in an audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    pub id: Option<Uuid>,
    /// user | support | system | anonymous
    pub kind: String,
    pub username: Option<String>,
}

/// What was acted on.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditTarget {
    pub kind: String,
    pub id: String,
    pub label: Option<String>,
}

/// An audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventDto {
    pub id: Uuid,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor: AuditActor,
    pub target: Option<AuditTarget>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<ChainedEvent> for AuditEventDto {
    fn from(e: ChainedEvent) -> Self {
        let target = match (e.target_kind, e.target_id) {
            (Some(kind), Some(id)) => Some(AuditTarget {
                kind,
                id,
                label: e.target_label,
            }),
            _ => None,
        };
        AuditEventDto {
            id: e.id,
            seq: e.seq,
            at: e.at,
            action: e.action,
            actor: AuditActor {
                id: e.actor_id,
                kind: e.actor_kind,
                username: e.actor_username,
            },
            target,
            ip: e.ip,
            user_agent: e.user_agent,
            details: e.details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// `GET .../audit-events/verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerifyDto {
    pub ok: bool,
    pub events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
}

/// One message to a user (D5), its destination masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    pub id: Uuid,
    #[schema(value_type = crate::vocabulary::Channel)]
    pub channel: String,
    /// The destination, masked: `j•••@example.com`, `•••-•••-1234`.
    pub to: String,
    #[schema(value_type = crate::vocabulary::DeliveryPurpose)]
    pub purpose: String,
    #[schema(value_type = crate::vocabulary::DeliveryStatus)]
    pub status: String,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    /// Why it failed or was refused (any address in it masked).
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DeliveryRecord> for DeliveryDto {
    fn from(d: DeliveryRecord) -> Self {
        DeliveryDto {
            id: d.id,
            channel: d.channel.as_str().to_owned(),
            to: d.to_masked,
            purpose: d.purpose.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            provider_message_id: d.provider_message_id,
            error: d.error,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A Delivery found by support across practices: the Delivery's fields plus the
/// practice and the user it went to.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupportDeliveryDto {
    #[serde(flatten)]
    pub delivery: DeliveryDto,
    pub company: String,
    pub user_id: Option<Uuid>,
}

impl From<TenantDelivery> for SupportDeliveryDto {
    fn from(t: TenantDelivery) -> Self {
        SupportDeliveryDto {
            company: t.tenant.company.to_string(),
            user_id: t.delivery.user_id,
            delivery: DeliveryDto::from(t.delivery),
        }
    }
}

/// `GET /v1/support/phone-opt-outs/{e164}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneOptOutDto {
    /// E.164
    pub phone: String,
    pub opted_out: bool,
    /// When the state last changed; null for a number never seen.
    pub since: Option<DateTime<Utc>>,
    /// inbound (the user texted a keyword) | sync (the provider's list) | check; null
    /// for a number never seen.
    pub source: Option<String>,
}

/// How many records a bulk action changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountDto {
    pub count: u64,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOf<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 500, default 50
    #[param(schema_with = crate::dto::limit_schema)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// `?limit=`: any whole number a `u64` holds; below 1 counts as 1, above 500 as 500.
/// No `format`: int64 would claim the values above `i64::MAX` are refused.
pub fn limit_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(0u64))
        .maximum(Some(u64::MAX))
        .description(Some(
            "1 to 500, default 50 (0 counts as 1, more than 500 as 500)",
        ))
        .build()
}

/// A query value that may also be given empty: like an absent parameter, `?x=` means
/// no filter (see `params::text`).
fn or_empty(schema: utoipa::openapi::RefOr<utoipa::openapi::Schema>) -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(schema)
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0)),
        )
        .build()
        .into()
}

/// `?since=`, `?until=`: an RFC 3339 instant, or empty.
pub fn query_instant_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into(),
    )
}

/// `?active=`, `?locked=`: true or false (1 or 0), or empty.
pub fn query_flag_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["true", "false", "1", "0"]))
            .into(),
    )
}

/// `?status=` of escalations: a status, or empty.
pub fn query_escalation_status_schema() -> utoipa::openapi::Schema {
    or_empty(<crate::vocabulary::EscalationStatus as utoipa::PartialSchema>::schema())
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// `POST /v1/escalations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEscalationRequest {
    pub company: String,
    /// The user's id (UUID) or username.
    pub user_id: String,
    #[schema(value_type = crate::vocabulary::EscalationAction)]
    pub action: String,
    pub reason: String,
    /// The support ticket reference.
    pub ticket: String,
}

/// `POST /v1/escalations/{id}/execute`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteEscalationRequest {
    /// Required for reset_password (the user must change it at the next sign-in);
    /// refused for the other actions.
    #[schema(value_type = Option<String>, format = Password)]
    pub temporary_password: Option<SecretString>,
}

/// An escalation (S2).
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationDto {
    pub id: Uuid,
    pub company: String,
    pub user_id: Uuid,
    #[schema(value_type = crate::vocabulary::EscalationAction)]
    pub action: &'static str,
    pub reason: String,
    pub ticket: String,
    #[schema(value_type = crate::vocabulary::EscalationStatus)]
    pub status: &'static str,
    /// The id of the support user who asked.
    pub requested_by: Uuid,
    pub requested_by_username: String,
    /// The id of the practice admin (or support admin, two-person rule) who decided.
    pub decided_by: Option<Uuid>,
    pub decided_by_username: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub executed_at: Option<DateTime<Utc>>,
    /// Pending: when the request lapses undecided; approved: the end of the execution
    /// window (one hour after the approval).
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<&gatehouse_store::escalations::Escalation> for EscalationDto {
    fn from(e: &gatehouse_store::escalations::Escalation) -> Self {
        EscalationDto {
            id: e.id,
            company: e.company.clone(),
            user_id: e.user_id,
            action: e.action.as_str(),
            reason: e.reason.clone(),
            ticket: e.ticket.clone(),
            status: e.status.as_str(),
            requested_by: e.requested_by,
            requested_by_username: e.requested_by_username.clone(),
            decided_by: e.decided_by,
            decided_by_username: e.decided_by_username.clone(),
            decided_at: e.decided_at,
            executed_at: e.executed_at,
            expires_at: e.expires_at,
            created_at: e.created_at,
        }
    }
}
