//! Delivery refusals that hold across practices (D3, D4): phone numbers that texted STOP
//! (a carrier opt-out is per sending number, so it binds every tenant) and email
//! addresses suppressed after a permanent bounce or a complaint.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PhoneOptOuts {
    Table,
    /// E.164.
    Phone,
    OptedOut,
    /// inbound | sync | check | support
    Source,
    ChangedAt,
}

#[derive(DeriveIden)]
enum EmailSuppressions {
    Table,
    /// Lowercased address.
    Email,
    /// bounce | complaint
    Reason,
    Detail,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PhoneOptOuts::Table)
                    .if_not_exists()
                    .col(text(PhoneOptOuts::Phone).primary_key())
                    .col(boolean(PhoneOptOuts::OptedOut))
                    .col(text(PhoneOptOuts::Source))
                    .col(ts(PhoneOptOuts::ChangedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmailSuppressions::Table)
                    .if_not_exists()
                    .col(text(EmailSuppressions::Email).primary_key())
                    .col(text(EmailSuppressions::Reason))
                    .col(text_null(EmailSuppressions::Detail))
                    .col(ts(EmailSuppressions::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EmailSuppressions::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(PhoneOptOuts::Table).take())
            .await
    }
}
