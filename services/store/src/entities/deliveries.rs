use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    pub challenge_id: Option<Uuid>,
    pub channel: String,
    pub destination_masked: String,
    pub destination_hash: String,
    pub purpose: String,
    pub status: String,
    pub attempts: i32,
    pub provider_message_id: Option<String>,
    pub error: Option<String>,
    pub payload_sealed: Option<String>,
    pub claimed_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::mfa_challenges::Entity",
        from = "Column::ChallengeId",
        to = "super::mfa_challenges::Column::Id"
    )]
    Challenge,
}

impl ActiveModelBehavior for ActiveModel {}
