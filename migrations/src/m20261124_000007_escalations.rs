//! Escalations (S2): the vendor's support asks to unlock a user, reset their MFA or set
//! a temporary password; the practice (or, under the two-person rule, a second support
//! admin) decides; an approved escalation executes once within its window.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Escalations {
    Table,
    Id,
    TenantId,
    UserId,
    /// unlock | reset_mfa | reset_password
    Action,
    Reason,
    Ticket,
    /// pending | approved | denied | executed | expired
    Status,
    /// The support user who asked (a user of the operator tenant).
    RequestedBy,
    RequestedByUsername,
    /// Who approved or denied: a practice admin, or a support admin (two-person rule).
    DecidedBy,
    DecidedByUsername,
    DecidedAt,
    ExecutedBy,
    ExecutedAt,
    /// While pending: when an undecided request lapses; once approved: the end of the
    /// execution window.
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Escalations::Table)
                    .if_not_exists()
                    .col(uuid_pk(Escalations::Id))
                    .col(uuid(Escalations::TenantId))
                    .col(uuid(Escalations::UserId))
                    .col(text(Escalations::Action))
                    .col(text(Escalations::Reason))
                    .col(text(Escalations::Ticket))
                    .col(text(Escalations::Status))
                    .col(uuid(Escalations::RequestedBy))
                    .col(text(Escalations::RequestedByUsername))
                    .col(uuid_null(Escalations::DecidedBy))
                    .col(text_null(Escalations::DecidedByUsername))
                    .col(ts_null(Escalations::DecidedAt))
                    .col(uuid_null(Escalations::ExecutedBy))
                    .col(ts_null(Escalations::ExecutedAt))
                    .col(ts(Escalations::ExpiresAt))
                    .col(ts(Escalations::CreatedAt))
                    .col(ts(Escalations::UpdatedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_escalations_tenant",
                        Escalations::Table,
                        Escalations::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_escalations_user",
                        Escalations::Table,
                        Escalations::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_escalations_tenant_created")
                    .table(Escalations::Table)
                    .col(Escalations::TenantId)
                    .col(Escalations::CreatedAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_escalations_open")
                    .table(Escalations::Table)
                    .col(Escalations::Status)
                    .col(Escalations::ExpiresAt)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Escalations::Table).take())
            .await
    }
}
