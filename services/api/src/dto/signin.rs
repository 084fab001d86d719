//! Sign-in flows and sessions (`/v1/auth/...`).

use crate::input::Parsed;
use chrono::{DateTime, Utc};
use gatehouse_domain::mfa::codes::Channel;
use gatehouse_domain::mfa::flow::{Proof, StepUpProof};
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

impl From<gatehouse_domain::mfa::flow::CodeSent> for CodeSentDto {
    fn from(c: gatehouse_domain::mfa::flow::CodeSent) -> Self {
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
    pub channel: Parsed<Channel>,
}

/// `POST /v1/auth/flows/{flow_id}/verify`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyRequest {
    #[schema(value_type = crate::vocabulary::Proof)]
    pub method: Parsed<Proof>,
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
    pub method: Parsed<StepUpProof>,
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
