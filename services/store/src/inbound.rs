//! Verified SNS messages (D3, D4, D6): recorded once by MessageId, then processed once.
//!
//! The webhook records the message and queues its processing; processing marks the row
//! and applies its effects in one transaction, so a redelivered message, a duplicated
//! job or a retry after a crash never applies an effect twice, and a message whose job
//! was lost is found again by [`Store::inbound_pending`].

use crate::entities::{deliveries as dl, inbound_events as ie};
use crate::optouts::{OptOutSource, suppress_in, upsert_opt_out};
use crate::{Result, Store};
use chrono::Duration;
use gatehouse_domain::delivery::DeliveryStatus;
use gatehouse_domain::ids::EmailAddress;
use gatehouse_domain::inbound::{Bounced, Effect, effect_of, recognise, resend_after_bounce};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

/// A verified SNS message as the webhook records it.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    pub message_id: &'a str,
    pub sns_type: &'a str,
    pub topic_arn: &'a str,
    pub message: &'a str,
    pub subscribe_url: Option<&'a str>,
}

/// What processing one message did (also stored on its row for operators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Addresses newly suppressed and deliveries marked, after a bounce or complaint.
    Suppressed { addresses: usize, deliveries: u64 },
    /// A transient bounce: recorded on the delivery, the address stays usable; `resending`
    /// of them go back to the queue to be sent again (the code still lives).
    TransientBounce { deliveries: u64, resending: u64 },
    /// Deliveries marked `delivered`.
    Delivered { deliveries: u64 },
    /// A number opted out (STOP) or back in (START).
    OptOut { phone: String, opted_out: bool },
    /// A text that is not a keyword.
    IgnoredText,
    /// A text to a number that is not one of ours: not ours to act on (D3).
    NotOurNumber,
    /// A SubscriptionConfirmation: the worker confirms by visiting the SubscribeURL.
    Subscription { subscribe_url: Option<String> },
    /// An UnsubscribeConfirmation: recorded; nobody re-subscribes automatically.
    Unsubscribed,
    /// A shape this version does not know; logged, not an error.
    Unknown,
}

impl InboundOutcome {
    fn describe(&self) -> String {
        match self {
            InboundOutcome::Suppressed {
                addresses,
                deliveries,
            } => format!("suppressed {addresses} address(es), marked {deliveries} delivery(ies)"),
            InboundOutcome::TransientBounce {
                deliveries,
                resending,
            } => {
                format!(
                    "transient bounce recorded on {deliveries} delivery(ies), {resending} sent again"
                )
            }
            InboundOutcome::Delivered { deliveries } => {
                format!("marked {deliveries} delivery(ies) delivered")
            }
            InboundOutcome::OptOut { opted_out, .. } => {
                if *opted_out {
                    "number opted out (STOP)".to_owned()
                } else {
                    "number opted back in (START)".to_owned()
                }
            }
            InboundOutcome::IgnoredText => "inbound text without a keyword".to_owned(),
            InboundOutcome::NotOurNumber => {
                "inbound text to a number that is not ours; ignored".to_owned()
            }
            InboundOutcome::Subscription { .. } => "subscription confirmation received".to_owned(),
            InboundOutcome::Unsubscribed => "unsubscribe confirmation received".to_owned(),
            InboundOutcome::Unknown => "unknown message shape; ignored".to_owned(),
        }
    }
}

/// Marks the deliveries SES knows by `mail_message_id` (never a refusal or a later state
/// going backwards: `delivered` does not undo `bounced`).
async fn mark_deliveries(
    txn: &DatabaseTransaction,
    mail_message_id: Option<&str>,
    status: DeliveryStatus,
    error: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    let Some(id) = mail_message_id else {
        return Ok(0);
    };
    let from: &[DeliveryStatus] = match status {
        DeliveryStatus::Delivered => &[DeliveryStatus::Sent],
        _ => &[DeliveryStatus::Sent, DeliveryStatus::Delivered],
    };
    // The sealed message was kept only for a resend after a transient bounce.
    let mut q = dl::Entity::update_many()
        .col_expr(dl::Column::Status, Expr::value(status.as_str()))
        .col_expr(
            dl::Column::PayloadSealed,
            Expr::value(Option::<String>::None),
        )
        .col_expr(dl::Column::UpdatedAt, Expr::value(now))
        .filter(dl::Column::ProviderMessageId.eq(id))
        .filter(dl::Column::Status.is_in(from.iter().map(|s| s.as_str())));
    if let Some(e) = error {
        q = q.col_expr(
            dl::Column::Error,
            Expr::value(Some(e.chars().take(500).collect::<String>())),
        );
    }
    Ok(q.exec(txn).await?.rows_affected)
}

/// A delivery whose message bounced, and its code's state: id, status, sealed message,
/// attempts, code used at, replaced at, expires at.
type BouncedRow = (
    uuid::Uuid,
    String,
    Option<String>,
    i32,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
    chrono::DateTime<chrono::Utc>,
);

/// A transient bounce of the message `mail_message_id`: the deliveries that sent it go
/// back to `queued`, not claimable before the pause, when the domain's
/// [`resend_after_bounce`] says so; the others only record it. Answers (deliveries
/// concerned, sent again).
async fn resend_after_transient_bounce(
    txn: &DatabaseTransaction,
    mail_message_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(u64, u64)> {
    use crate::entities::mfa_challenges as ch;
    use sea_orm::RelationTrait;
    let rows: Vec<BouncedRow> = dl::Entity::find()
        .select_only()
        .column(dl::Column::Id)
        .column(dl::Column::Status)
        .column(dl::Column::PayloadSealed)
        .column(dl::Column::Attempts)
        .column(ch::Column::UsedAt)
        .column(ch::Column::SupersededAt)
        .column(ch::Column::ExpiresAt)
        .join(sea_orm::JoinType::InnerJoin, dl::Relation::Challenge.def())
        .filter(dl::Column::ProviderMessageId.eq(mail_message_id))
        .into_tuple()
        .all(txn)
        .await?;
    let (mut concerned, mut resending) = (0, 0);
    for (id, status, sealed, attempts, used, superseded, expires) in rows {
        concerned += 1;
        let again = resend_after_bounce(
            Bounced {
                status: DeliveryStatus::parse(&status),
                sealed_kept: sealed.is_some(),
                attempts,
                code_done: used.is_some() || superseded.is_some(),
                code_expires_at: expires,
            },
            now,
        );
        let mut q = dl::Entity::update_many()
            .col_expr(dl::Column::UpdatedAt, Expr::value(now))
            .filter(dl::Column::Id.eq(id))
            .filter(dl::Column::ProviderMessageId.eq(mail_message_id));
        if let Some(at) = again {
            q = q
                .col_expr(
                    dl::Column::Status,
                    Expr::value(DeliveryStatus::Queued.as_str()),
                )
                .col_expr(dl::Column::ClaimedUntil, Expr::value(Some(at)))
                .col_expr(
                    dl::Column::Error,
                    Expr::value(Some(
                        "transient bounce reported by the mail provider; sending again",
                    )),
                );
            resending += 1;
        } else {
            q = q.col_expr(
                dl::Column::Error,
                Expr::value(Some("transient bounce reported by the mail provider")),
            );
        }
        q.exec(txn).await?;
    }
    Ok((concerned, resending))
}

async fn suppress_all(
    txn: &DatabaseTransaction,
    recipients: &[String],
    reason: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize> {
    let mut added = 0;
    for r in recipients {
        let Ok(email) = EmailAddress::parse(r) else {
            tracing::warn!("SES event names an address that does not parse; skipped");
            continue;
        };
        if suppress_in(txn, &email, reason, None, now).await? {
            added += 1;
        }
    }
    Ok(added)
}

impl Store {
    /// Records a verified message; `false` when its MessageId was seen before.
    pub async fn record_inbound(&self, m: NewInbound<'_>) -> Result<bool> {
        let _turn = self.inner.write_turn().await;
        let n = ie::Entity::insert(ie::ActiveModel {
            message_id: Set(m.message_id.to_owned()),
            sns_type: Set(m.sns_type.to_owned()),
            topic_arn: Set(m.topic_arn.to_owned()),
            message: Set(m.message.to_owned()),
            subscribe_url: Set(m.subscribe_url.map(str::to_owned)),
            received_at: Set(self.inner.clock.now()),
            processed_at: Set(None),
            outcome: Set(None),
        })
        .on_conflict(
            OnConflict::column(ie::Column::MessageId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.inner.db)
        .await?;
        Ok(n > 0)
    }

    /// Processes a recorded message once; `None` when it was processed already (or is
    /// unknown). The row is marked in the same transaction as the effects.
    pub async fn process_inbound(&self, message_id: &str) -> Result<Option<InboundOutcome>> {
        let now = self.inner.clock.now();
        let txn = self.inner.begin_write().await?;
        let claimed = ie::Entity::update_many()
            .col_expr(ie::Column::ProcessedAt, Expr::value(Some(now)))
            .filter(ie::Column::MessageId.eq(message_id))
            .filter(ie::Column::ProcessedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected;
        if claimed != 1 {
            return Ok(None);
        }
        let Some(row) = ie::Entity::find_by_id(message_id.to_owned())
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let outcome = match row.sns_type.as_str() {
            "Notification" => self.apply(&txn, &row.message, now).await?,
            "SubscriptionConfirmation" => InboundOutcome::Subscription {
                subscribe_url: row.subscribe_url.clone(),
            },
            _ => InboundOutcome::Unsubscribed,
        };
        ie::Entity::update_many()
            .col_expr(ie::Column::Outcome, Expr::value(Some(outcome.describe())))
            .filter(ie::Column::MessageId.eq(message_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        if outcome == InboundOutcome::Unknown {
            tracing::warn!(message_id, "SNS notification of an unknown shape; ignored");
        } else {
            tracing::info!(message_id, outcome = %outcome.describe(), "SNS notification processed");
        }
        Ok(Some(outcome))
    }

    /// Carries out what the domain decides `message` does.
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        message: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<InboundOutcome> {
        let numbers = &self.inner.config.sms_numbers;
        Ok(match effect_of(recognise(message), numbers) {
            Effect::Suppress {
                recipients,
                reason,
                mail_message_id,
                status,
                error,
            } => {
                let addresses = suppress_all(txn, &recipients, reason, now).await?;
                let id = mail_message_id.as_deref();
                let deliveries = mark_deliveries(txn, id, status, Some(error), now).await?;
                InboundOutcome::Suppressed {
                    addresses,
                    deliveries,
                }
            }
            Effect::TransientBounce { mail_message_id } => {
                let (deliveries, resending) = match mail_message_id.as_deref() {
                    Some(id) => resend_after_transient_bounce(txn, id, now).await?,
                    None => (0, 0),
                };
                InboundOutcome::TransientBounce {
                    deliveries,
                    resending,
                }
            }
            Effect::Delivered { mail_message_id } => {
                let id = Some(mail_message_id.as_str());
                let deliveries =
                    mark_deliveries(txn, id, DeliveryStatus::Delivered, None, now).await?;
                InboundOutcome::Delivered { deliveries }
            }
            Effect::OptOut { phone, opted_out } => {
                upsert_opt_out(txn, &phone, opted_out, OptOutSource::Inbound, now).await?;
                InboundOutcome::OptOut {
                    phone: phone.as_str().to_owned(),
                    opted_out,
                }
            }
            Effect::IgnoredText => InboundOutcome::IgnoredText,
            Effect::NotOurNumber => InboundOutcome::NotOurNumber,
            Effect::Unknown => InboundOutcome::Unknown,
        })
    }

    /// Recorded messages not processed after `older_than` (their job was lost): the
    /// periodic job processes them.
    pub async fn inbound_pending(&self, older_than: Duration, limit: u64) -> Result<Vec<String>> {
        let cutoff = self.inner.clock.now() - older_than;
        Ok(ie::Entity::find()
            .select_only()
            .column(ie::Column::MessageId)
            .filter(ie::Column::ProcessedAt.is_null())
            .filter(ie::Column::ReceivedAt.lte(cutoff))
            .order_by_asc(ie::Column::ReceivedAt)
            .limit(limit)
            .into_tuple()
            .all(&self.inner.db)
            .await?)
    }
}
