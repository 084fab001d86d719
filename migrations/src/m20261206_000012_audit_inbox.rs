//! Audit events waiting for their place in a practice's chain (issue 19, finding 13).
//!
//! A support search answers users of up to a page's worth of practices and records a
//! `support.read` in each one's log. Appending them at once locked every one of those
//! practices' chain heads, and two agents searching for similar names queued on the same
//! heads (72 of 5,105 searches waited over 10 ms in the clinic morning, up to 230 ms). The
//! search now writes its events here, with their id and time, in one INSERT that locks no
//! head; they are chained moments later (`gatehouse_store::audit`), and before any read of
//! that practice's log. `n` keeps the order they arrived in.
//!
//! On SQLite the store keeps them in a file of its own beside the database instead (one
//! writer at a time per file: there, the search's INSERT no longer queues behind every
//! sign-in's writes); [`create_side`] makes that file's table, the same one without the
//! foreign key to a practice it cannot see.

use crate::columns::{cascade_fk, text, text_null, ts, uuid, uuid_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditInbox {
    Table,
    N,
    Id,
    TenantId,
    At,
    Action,
    ActorId,
    ActorKind,
    ActorUsername,
    TargetKind,
    TargetId,
    TargetLabel,
    Ip,
    UserAgent,
    Details,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

/// The inbox table; `tenant_fk`: removed with its practice (not in a side file, where
/// the practices are not).
fn table(tenant_fk: bool) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(AuditInbox::Table)
        .if_not_exists()
        .col(
            ColumnDef::new(AuditInbox::N)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(uuid(AuditInbox::Id).unique_key().take())
        .col(uuid(AuditInbox::TenantId))
        .col(ts(AuditInbox::At))
        .col(text(AuditInbox::Action))
        .col(uuid_null(AuditInbox::ActorId))
        .col(text(AuditInbox::ActorKind))
        .col(text_null(AuditInbox::ActorUsername))
        .col(text_null(AuditInbox::TargetKind))
        .col(text_null(AuditInbox::TargetId))
        .col(text_null(AuditInbox::TargetLabel))
        .col(text_null(AuditInbox::Ip))
        .col(text_null(AuditInbox::UserAgent))
        .col(text(AuditInbox::Details));
    if tenant_fk {
        t.foreign_key(&mut cascade_fk(
            "fk_audit_inbox_tenant",
            AuditInbox::Table,
            AuditInbox::TenantId,
            Tenants::Table,
            Tenants::Id,
        ));
    }
    t.take()
}

fn index() -> IndexCreateStatement {
    Index::create()
        .name("idx_audit_inbox_tenant")
        .table(AuditInbox::Table)
        .if_not_exists()
        .col(AuditInbox::TenantId)
        .col(AuditInbox::N)
        .take()
}

/// Creates the inbox table, when missing, in a SQLite file of its own (see the module
/// comment).
pub async fn create_side(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), DbErr> {
    let manager = SchemaManager::new(db);
    manager.create_table(table(false)).await?;
    manager.create_index(index()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(table(true)).await?;
        manager.create_index(index()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditInbox::Table).to_owned())
            .await
    }
}
