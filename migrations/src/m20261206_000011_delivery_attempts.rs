//! The history of a delivery's provider attempts (issue 22).
//!
//! Neither SES nor SNS takes an idempotency key, so a send is at least once: a worker
//! that stops between the provider call and its record leaves an attempt whose outcome
//! nobody knows, and the delivery is sent again when its lease runs out. Each attempt's
//! outcome is kept here (`sent`, `retrying`, `failed`, `opted_out`, or `unknown`: the
//! worker stopped), so that support and the audit can tell what happened. No code, no
//! destination: `detail` is the reason support reads on the delivery.

use crate::columns::{cascade_fk, text, text_null, ts, uuid, uuid_pk};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    Id,
    TenantId,
    DeliveryId,
    Attempt,
    Outcome,
    Detail,
    ProviderMessageId,
    At,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeliveryAttempts::Table)
                    .if_not_exists()
                    .col(uuid_pk(DeliveryAttempts::Id))
                    .col(uuid(DeliveryAttempts::TenantId))
                    .col(uuid(DeliveryAttempts::DeliveryId))
                    .col(
                        ColumnDef::new(DeliveryAttempts::Attempt)
                            .integer()
                            .not_null(),
                    )
                    .col(text(DeliveryAttempts::Outcome))
                    .col(text_null(DeliveryAttempts::Detail))
                    .col(text_null(DeliveryAttempts::ProviderMessageId))
                    .col(ts(DeliveryAttempts::At))
                    .foreign_key(&mut cascade_fk(
                        "fk_delivery_attempts_delivery",
                        DeliveryAttempts::Table,
                        DeliveryAttempts::DeliveryId,
                        Deliveries::Table,
                        Deliveries::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_delivery_attempts_delivery")
                    .table(DeliveryAttempts::Table)
                    .col(DeliveryAttempts::DeliveryId)
                    .col(DeliveryAttempts::Attempt)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeliveryAttempts::Table).to_owned())
            .await
    }
}
