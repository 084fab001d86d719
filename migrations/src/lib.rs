//! Gatehouse schema migrations, portable across SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

pub use sea_orm_migration::{MigratorTrait, SchemaManager, sea_orm};

mod columns;
mod m20261124_000001_foundation;
mod m20261124_000002_mfa;
mod m20261124_000003_mfa_attempts;
mod m20261124_000004_optouts;
mod m20261124_000005_inbound_events;
mod m20261124_000007_escalations;
mod m20261206_000008_user_mfa_failures;
mod m20261206_000009_operator_approval;
mod m20261206_000010_support_search;
mod m20261206_000011_delivery_attempts;
mod m20261206_000012_audit_inbox;
mod m20261207_000013_oidc;

pub use m20261206_000012_audit_inbox::create_side as create_side_audit_inbox;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_foundation::Migration),
            Box::new(m20261124_000002_mfa::Migration),
            Box::new(m20261124_000003_mfa_attempts::Migration),
            Box::new(m20261124_000004_optouts::Migration),
            Box::new(m20261124_000005_inbound_events::Migration),
            Box::new(m20261124_000007_escalations::Migration),
            Box::new(m20261206_000008_user_mfa_failures::Migration),
            Box::new(m20261206_000009_operator_approval::Migration),
            Box::new(m20261206_000010_support_search::Migration),
            Box::new(m20261206_000011_delivery_attempts::Migration),
            Box::new(m20261206_000012_audit_inbox::Migration),
            Box::new(m20261207_000013_oidc::Migration),
        ]
    }
}
