use sea_orm::entity::prelude::*;

/// An audit event waiting for its place in its practice's chain (see `crate::audit`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_inbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub n: i64,
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub at: DateTimeUtc,
    pub action: String,
    pub actor_id: Option<Uuid>,
    pub actor_kind: String,
    pub actor_username: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
