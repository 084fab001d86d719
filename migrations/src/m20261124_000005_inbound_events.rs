//! Verified SNS messages (D6): one row per MessageId, so a redelivered message has no
//! second effect, and the durable record of work the webhook queued: a message whose
//! processing was lost with the queue is processed again from here.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum InboundEvents {
    Table,
    MessageId,
    /// Notification | SubscriptionConfirmation | UnsubscribeConfirmation
    SnsType,
    TopicArn,
    /// The SNS `Message` (an SES event, an inbound SMS, or a confirmation text).
    Message,
    /// For SubscriptionConfirmation: the URL a worker visits to confirm.
    SubscribeUrl,
    ReceivedAt,
    ProcessedAt,
    /// What processing did or why it failed, for operators.
    Outcome,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InboundEvents::Table)
                    .if_not_exists()
                    .col(text(InboundEvents::MessageId).primary_key())
                    .col(text(InboundEvents::SnsType))
                    .col(text(InboundEvents::TopicArn))
                    .col(text(InboundEvents::Message))
                    .col(text_null(InboundEvents::SubscribeUrl))
                    .col(ts(InboundEvents::ReceivedAt))
                    .col(ts_null(InboundEvents::ProcessedAt))
                    .col(text_null(InboundEvents::Outcome))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_inbound_events_pending")
                    .table(InboundEvents::Table)
                    .col(InboundEvents::ProcessedAt)
                    .col(InboundEvents::ReceivedAt)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InboundEvents::Table).take())
            .await
    }
}
