//! Groups and their members.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
