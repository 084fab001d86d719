use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub username: String,
    pub username_lower: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_verified: bool,
    pub role: String,
    pub active: bool,
    pub locked: bool,
    pub must_change_password: bool,
    pub password_hash: String,
    pub failed_logins: i32,
    /// Wrong second-factor codes in a row, any method (M13).
    pub mfa_failures: i32,
    /// Passwords being checked now (taken before the check, P4).
    pub login_tries: i32,
    pub login_tries_at: Option<DateTimeUtc>,
    pub mfa_method: String,
    pub mfa_enrollment: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_login_at: Option<DateTimeUtc>,
    pub password_changed_at: Option<DateTimeUtc>,
    /// S4: inactive until a support admin other than `approval_requested_by` approves.
    pub pending_approval: bool,
    pub approval_requested_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
