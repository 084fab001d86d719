//! Second factors: enrollment, methods, contacts, remembered computers, trusted networks.

use crate::input::Parsed;
use chrono::{DateTime, Utc};
use gatehouse_domain::mfa::{Enrollment, UserMethod};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
    pub method: Parsed<UserMethod>,
}

/// `PUT /v1/tenants/{company}/users/{user_id}/mfa`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdminMfaRequest {
    #[schema(value_type = crate::vocabulary::UserMethod)]
    pub method: Parsed<UserMethod>,
    #[schema(value_type = crate::vocabulary::Enrollment)]
    pub enrollment: Parsed<Enrollment>,
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
