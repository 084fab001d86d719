//! OpenID Connect clients (I2).

use chrono::{DateTime, Utc};
use gatehouse_domain::oidc::ClientKind;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Whether a client keeps a secret.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientTypeDto {
    Confidential,
    Public,
}

impl From<ClientTypeDto> for ClientKind {
    fn from(t: ClientTypeDto) -> Self {
        match t {
            ClientTypeDto::Confidential => ClientKind::Confidential,
            ClientTypeDto::Public => ClientKind::Public,
        }
    }
}

impl From<ClientKind> for ClientTypeDto {
    fn from(k: ClientKind) -> Self {
        match k {
            ClientKind::Confidential => ClientTypeDto::Confidential,
            ClientKind::Public => ClientTypeDto::Public,
        }
    }
}

/// A registered client. Its secret is never shown again after it was made.
#[derive(Debug, Serialize, ToSchema)]
pub struct OidcClientDto {
    pub client_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ClientTypeDto,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The practices whose users may sign in to it; `null`: every practice.
    pub companies: Option<Vec<String>>,
    /// Until when the secret before the last rotation is still accepted.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only in the answer that made it (registration or rotation); a confidential
    /// client's secret, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl From<gatehouse_app::oidc::Client> for OidcClientDto {
    fn from(c: gatehouse_app::oidc::Client) -> Self {
        OidcClientDto {
            client_id: c.client_id,
            name: c.name,
            kind: c.kind.into(),
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            companies: c.companies,
            previous_secret_valid_until: c.previous_secret_until,
            created_at: c.created_at,
            updated_at: c.updated_at,
            client_secret: None,
        }
    }
}

/// `POST /v1/oidc/clients`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOidcClientRequest {
    /// 1 to 100 characters, shown to no one but support.
    pub name: String,
    /// Matched exactly; https, or http only for localhost and loopback addresses; 1 to 20.
    pub redirect_uris: Vec<String>,
    /// Where `/oauth2/logout` may return; matched exactly.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(rename = "type")]
    pub kind: ClientTypeDto,
    /// Company ids; omitted or `null`: every practice.
    #[serde(default)]
    pub companies: Option<Vec<String>>,
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn explicit<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /v1/oidc/clients/{client_id}`: the fields given change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOidcClientRequest {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `null`: every practice again.
    #[serde(default, deserialize_with = "explicit")]
    #[schema(value_type = Option<Vec<String>>, nullable)]
    pub companies: Option<Option<Vec<String>>>,
}

/// `POST /v1/oidc/clients/{client_id}/secret`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// How long the old secret keeps working, 0 to 2592000 seconds; default 0.
    #[schema(minimum = 0, maximum = 2592000)]
    pub grace_period_seconds: Option<i64>,
}
