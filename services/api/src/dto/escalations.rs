//! Support escalations (S2).

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /v1/escalations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEscalationRequest {
    pub company: String,
    /// The user's id (UUID) or username.
    pub user_id: String,
    #[schema(value_type = crate::vocabulary::EscalationAction)]
    pub action: crate::input::Parsed<gatehouse_domain::escalation::EscalationAction>,
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

impl From<&gatehouse_app::escalations::Escalation> for EscalationDto {
    fn from(e: &gatehouse_app::escalations::Escalation) -> Self {
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
