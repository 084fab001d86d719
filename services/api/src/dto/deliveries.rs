//! Deliveries and opt-outs, as practices and support read them.

use chrono::{DateTime, Utc};
use gatehouse_store::delivery_log::{DeliveryRecord, TenantDelivery};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

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
