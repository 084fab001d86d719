//! The audit log.

use chrono::{DateTime, Utc};
use gatehouse_domain::audit::ChainedEvent;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

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
