//! Sending queued codes (D1, D5): a worker claims a delivery, sends it, and records the
//! outcome. A claim is a lease (`claimed_until`) taken by one conditional UPDATE, so two
//! copies of one job never both send, whether they run at once or one after the other;
//! a sent delivery is never sent again. A transient failure releases the lease.

use crate::audit::event;
use crate::entities::{deliveries as dl, mfa_challenges as ch, tenants};
use crate::scope::TenantScope;
use crate::{RequestMeta, Result, Store};
use chrono::{DateTime, Duration, Utc};
use gatehouse_domain::audit::{Action, Actor, Target};
use gatehouse_domain::delivery::DeliveryStatus;
use gatehouse_domain::jobs::SendCode;
use gatehouse_domain::mfa::codes::{Channel, Purpose};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait};
use serde_json::json;
use uuid::Uuid;

/// How long a claim lasts: longer than any provider call is allowed to take.
pub const CLAIM_LEASE_SECONDS: i64 = 60;

/// What a worker needs to send one claimed delivery.
#[derive(Debug, Clone)]
pub struct SendContext {
    pub delivery_id: Uuid,
    pub channel: Channel,
    pub purpose: Purpose,
    /// The practice's company id and name, for the message.
    pub company: String,
    pub company_name: String,
    pub to_masked: String,
    /// When the code dies: never send (or retry) after this.
    pub expires_at: DateTime<Utc>,
    /// This claim's attempt number, from 1.
    pub attempt: u32,
    pub sealed: String,
}

/// Why a delivery whose code died before it could be sent ended `failed`.
pub const DEAD_CODE: &str = "the code expired or was replaced before it could be sent";

/// How long a notice (no code, purpose `notice`) may wait to be sent.
pub const NOTICE_HOURS: i64 = 24;

/// Why a notice that could not be sent within [`NOTICE_HOURS`] ended `failed`.
pub const DEAD_NOTICE: &str = "the notice could not be sent within a day";

/// A queued notice that may still be sent, or (`alive: false`) may not.
fn notice(now: DateTime<Utc>, alive: bool) -> sea_orm::Condition {
    let since = now - Duration::hours(NOTICE_HOURS);
    sea_orm::Condition::all()
        .add(dl::Column::ChallengeId.is_null())
        .add(dl::Column::Purpose.eq(Purpose::Notice.as_str()))
        .add(if alive {
            dl::Column::CreatedAt.gt(since)
        } else {
            dl::Column::CreatedAt.lte(since)
        })
}

/// The delivery's code can no longer be used: expired, used or replaced.
fn code_dead(now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(ch::Column::UsedAt.is_not_null())
        .add(ch::Column::SupersededAt.is_not_null())
        .add(ch::Column::ExpiresAt.lte(now))
}

/// No worker holds a live lease on the delivery.
fn unclaimed(now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(dl::Column::ClaimedUntil.is_null())
        .add(dl::Column::ClaimedUntil.lte(now))
}

/// One tenant's deliveries.
pub struct Deliveries<'a> {
    pub(crate) scope: TenantScope<'a>,
}

/// The keyed hash stored with a delivery, by which support finds the deliveries to a
/// destination without the destination being stored (D5). Case and surrounding space
/// do not matter.
pub(crate) fn destination_mac(
    key: &gatehouse_domain::crypto::SecretKey,
    destination: &str,
) -> String {
    key.mac(
        "destination",
        &[destination.trim().to_lowercase().as_bytes()],
    )
}

impl<'a> TenantScope<'a> {
    /// This tenant's deliveries.
    pub fn deliveries(self) -> Deliveries<'a> {
        Deliveries { scope: self }
    }
}

impl Deliveries<'_> {
    fn by_id(&self, id: Uuid) -> sea_orm::Condition {
        sea_orm::Condition::all()
            .add(dl::Column::TenantId.eq(self.scope.uuid()))
            .add(dl::Column::Id.eq(id))
    }

    /// Claims a queued delivery for one send attempt. `None` when it was already sent or
    /// failed, another worker holds the lease, or its code died (then it is marked failed).
    pub async fn claim(&self, id: Uuid) -> Result<Option<SendContext>> {
        let db = &self.scope.inner.db;
        let now = self.scope.inner.clock.now();
        let Some(d) = dl::Entity::find().filter(self.by_id(id)).one(db).await? else {
            return Ok(None);
        };
        let Some(sealed) = d.payload_sealed.clone() else {
            return Ok(None);
        };
        if DeliveryStatus::parse(&d.status) != Some(DeliveryStatus::Queued) {
            return Ok(None);
        }
        let expires_at = match d.challenge_id {
            Some(challenge_id) => {
                let challenge = ch::Entity::find()
                    .filter(ch::Column::TenantId.eq(self.scope.uuid()))
                    .filter(ch::Column::Id.eq(challenge_id))
                    .one(db)
                    .await?;
                let open = challenge.as_ref().is_some_and(|c| {
                    c.used_at.is_none() && c.superseded_at.is_none() && c.expires_at > now
                });
                let Some(c) = challenge.filter(|_| open) else {
                    self.fail(id, DEAD_CODE, true).await?;
                    return Ok(None);
                };
                c.expires_at
            }
            // A notice has no code: it lives a day.
            None if d.purpose == Purpose::Notice.as_str() => {
                let until = d.created_at + Duration::hours(NOTICE_HOURS);
                if until <= now {
                    self.fail(id, DEAD_NOTICE, true).await?;
                    return Ok(None);
                }
                until
            }
            None => return Ok(None),
        };
        let claimed = dl::Entity::update_many()
            .col_expr(dl::Column::Attempts, Expr::col(dl::Column::Attempts).add(1))
            .col_expr(
                dl::Column::ClaimedUntil,
                Expr::value(Some(now + Duration::seconds(CLAIM_LEASE_SECONDS))),
            )
            .col_expr(dl::Column::UpdatedAt, Expr::value(now))
            .filter(self.by_id(id))
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
            .filter(unclaimed(now))
            .exec(db)
            .await?
            .rows_affected;
        if claimed != 1 {
            return Ok(None);
        }
        let (company, company_name) = tenants::Entity::find_by_id(self.scope.uuid())
            .select_only()
            .column(tenants::Column::Company)
            .column(tenants::Column::Name)
            .into_tuple::<(String, String)>()
            .one(db)
            .await?
            .unwrap_or_default();
        let corrupt = |what: &str| crate::StoreError::Corrupt(format!("delivery {id}: {what}"));
        Ok(Some(SendContext {
            delivery_id: id,
            channel: Channel::parse(&d.channel).ok_or_else(|| corrupt("channel"))?,
            purpose: Purpose::parse(&d.purpose).ok_or_else(|| corrupt("purpose"))?,
            company,
            company_name,
            to_masked: d.destination_masked,
            expires_at,
            attempt: u32::try_from(d.attempts + 1).unwrap_or(u32::MAX),
            sealed,
        }))
    }

    /// Records a successful send: the sealed message is dropped and `mfa.code_sent` audited.
    pub async fn mark_sent(&self, ctx: &SendContext, provider_message_id: &str) -> Result<()> {
        let now = self.scope.inner.clock.now();
        let txn = crate::begin_write(&self.scope.inner.db).await?;
        let d = dl::Entity::find()
            .filter(self.by_id(ctx.delivery_id))
            .one(&txn)
            .await?;
        let mut sent = dl::Entity::update_many()
            .col_expr(
                dl::Column::Status,
                Expr::value(DeliveryStatus::Sent.as_str()),
            )
            .col_expr(
                dl::Column::ProviderMessageId,
                Expr::value(Some(provider_message_id.to_owned())),
            )
            .col_expr(
                dl::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(dl::Column::Error, Expr::value(Option::<String>::None))
            .col_expr(dl::Column::UpdatedAt, Expr::value(now))
            .filter(self.by_id(ctx.delivery_id));
        // An email's sealed message is kept while its code lives, so that a transient
        // bounce can send it again (see `inbound`); an SMS's, and a notice's, is dropped now.
        if ctx.channel != Channel::Email || ctx.purpose == Purpose::Notice {
            sent = sent.col_expr(
                dl::Column::PayloadSealed,
                Expr::value(Option::<String>::None),
            );
        }
        sent.exec(&txn).await?;
        if ctx.purpose == Purpose::Notice {
            // Not a code: the delivery row is the record (the escalation is audited).
            txn.commit().await?;
            return Ok(());
        }
        let target = d.and_then(|d| d.user_id).map(|u| Target {
            kind: "user",
            id: u.to_string(),
            label: None,
        });
        self.scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::MfaCodeSent,
                    Actor::system(),
                    target,
                    &RequestMeta::default(),
                    json!({
                        "delivery_id": ctx.delivery_id.to_string(),
                        "channel": ctx.channel.as_str(),
                        "purpose": ctx.purpose.as_str(),
                        "to": ctx.to_masked,
                        "attempt": ctx.attempt,
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Records a failed attempt. A permanent failure ends the delivery (and drops its sealed
    /// message); otherwise it stays queued for a retry while the code lives.
    pub async fn fail(&self, id: Uuid, error: &str, permanent: bool) -> Result<()> {
        let now = self.scope.inner.clock.now();
        let mut q = dl::Entity::update_many()
            .col_expr(
                dl::Column::Error,
                Expr::value(Some(error.chars().take(500).collect::<String>())),
            )
            .col_expr(
                dl::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(dl::Column::UpdatedAt, Expr::value(now))
            .filter(self.by_id(id))
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()));
        if permanent {
            q = q
                .col_expr(
                    dl::Column::Status,
                    Expr::value(DeliveryStatus::Failed.as_str()),
                )
                .col_expr(
                    dl::Column::PayloadSealed,
                    Expr::value(Option::<String>::None),
                );
        }
        q.exec(&self.scope.inner.db).await?;
        Ok(())
    }
    /// Refuses a queued delivery before any provider call (`suppressed` or `opted_out`):
    /// the delivery ends with `reason` and its sealed message is dropped. Answers whether
    /// it was still queued (a delivery already sent or failed is left as it is).
    pub async fn refuse(&self, id: Uuid, status: DeliveryStatus, reason: &str) -> Result<bool> {
        if !status.refused_before_provider() {
            // A caller's mistake, not a state to store.
            return Err(crate::StoreError::Internal(format!(
                "delivery {id}: {} is not a refusal",
                status.as_str()
            )));
        }
        let now = self.scope.inner.clock.now();
        let refused = dl::Entity::update_many()
            .col_expr(dl::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                dl::Column::Error,
                Expr::value(Some(reason.chars().take(500).collect::<String>())),
            )
            .col_expr(
                dl::Column::PayloadSealed,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                dl::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(dl::Column::UpdatedAt, Expr::value(now))
            .filter(self.by_id(id))
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
            .exec(&self.scope.inner.db)
            .await?
            .rows_affected;
        Ok(refused == 1)
    }
}

impl Store {
    /// Queued deliveries untouched for `idle` whose code still lives, across tenants: the
    /// periodic job re-enqueues them, so a lost queue or a restart loses no code.
    pub async fn deliveries_to_requeue(&self, idle: Duration, limit: u64) -> Result<Vec<SendCode>> {
        let now = self.inner.clock.now();
        let rows: Vec<(Uuid, Uuid, Option<String>)> = dl::Entity::find()
            .select_only()
            .column(dl::Column::Id)
            .column(dl::Column::TenantId)
            .column(dl::Column::PayloadSealed)
            .join(sea_orm::JoinType::LeftJoin, dl::Relation::Challenge.def())
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
            .filter(dl::Column::PayloadSealed.is_not_null())
            .filter(dl::Column::UpdatedAt.lt(now - idle))
            .filter(unclaimed(now))
            .filter(
                sea_orm::Condition::any()
                    .add(
                        sea_orm::Condition::all()
                            .add(dl::Column::ChallengeId.is_not_null())
                            .add(ch::Column::UsedAt.is_null())
                            .add(ch::Column::SupersededAt.is_null())
                            .add(ch::Column::ExpiresAt.gt(now)),
                    )
                    .add(notice(now, true)),
            )
            .order_by_asc(dl::Column::CreatedAt)
            .limit(limit)
            .into_tuple()
            .all(&self.inner.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(delivery_id, tenant_id, sealed)| {
                sealed.map(|sealed| SendCode::new(delivery_id, tenant_id, sealed))
            })
            .collect())
    }

    /// Ends as `failed` with `error` (sealed message dropped) up to `limit` unclaimed
    /// queued deliveries matching `which`; answers how many.
    async fn fail_queued(&self, which: sea_orm::Condition, error: &str, limit: u64) -> Result<u64> {
        let now = self.inner.clock.now();
        let ids: Vec<Uuid> = dl::Entity::find()
            .select_only()
            .column(dl::Column::Id)
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
            .filter(unclaimed(now))
            .filter(which)
            .limit(limit)
            .into_tuple()
            .all(&self.inner.db)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(dl::Entity::update_many()
            .col_expr(
                dl::Column::Status,
                Expr::value(DeliveryStatus::Failed.as_str()),
            )
            .col_expr(dl::Column::Error, Expr::value(Some(error)))
            .col_expr(
                dl::Column::PayloadSealed,
                Expr::value(Option::<String>::None),
            )
            .col_expr(dl::Column::UpdatedAt, Expr::value(now))
            .filter(dl::Column::Id.is_in(ids))
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
            .filter(unclaimed(now))
            .exec(&self.inner.db)
            .await?
            .rows_affected)
    }

    /// Deliveries waiting to be sent, per channel: the queue-depth gauge (A2). Counted
    /// in the database, which holds every queued delivery whichever queue carries its
    /// job; the status index answers it.
    pub async fn queued_by_channel(&self) -> Result<Vec<(Channel, u64)>> {
        let rows: Vec<(String, i64)> = dl::Entity::find()
            .select_only()
            .column(dl::Column::Channel)
            .column_as(
                sea_orm::sea_query::SimpleExpr::from(sea_orm::sea_query::Func::count(Expr::col(
                    dl::Column::Id,
                ))),
                "queued",
            )
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
            .group_by(dl::Column::Channel)
            .into_tuple()
            .all(&self.inner.db)
            .await?;
        Ok([Channel::Email, Channel::Sms]
            .into_iter()
            .map(|c| {
                let n = rows
                    .iter()
                    .find(|(name, _)| name == c.as_str())
                    .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
                (c, n)
            })
            .collect())
    }

    /// Ends as `failed` (sealed message dropped) the queued deliveries whose code died
    /// before anyone sent it: expired, used or replaced. Without this, a code that no job
    /// ran for in its lifetime (its pushes lost, every worker down) would stay `queued`
    /// forever, and support would read "queued" for a code that can no longer arrive.
    /// Answers how many.
    pub async fn fail_dead_deliveries(&self, limit: u64) -> Result<u64> {
        let now = self.inner.clock.now();
        let mut failed = self
            .fail_queued(notice(now, false), DEAD_NOTICE, limit)
            .await?;
        let ids: Vec<Uuid> = dl::Entity::find()
            .select_only()
            .column(dl::Column::Id)
            .join(sea_orm::JoinType::InnerJoin, dl::Relation::Challenge.def())
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
            .filter(unclaimed(now))
            .filter(code_dead(now))
            .limit(limit)
            .into_tuple()
            .all(&self.inner.db)
            .await?;
        failed += if ids.is_empty() {
            0
        } else {
            dl::Entity::update_many()
                .col_expr(
                    dl::Column::Status,
                    Expr::value(DeliveryStatus::Failed.as_str()),
                )
                .col_expr(dl::Column::Error, Expr::value(Some(DEAD_CODE)))
                .col_expr(
                    dl::Column::PayloadSealed,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(dl::Column::UpdatedAt, Expr::value(now))
                .filter(dl::Column::Id.is_in(ids))
                .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
                .filter(unclaimed(now))
                .exec(&self.inner.db)
                .await?
                .rows_affected
        };
        // Emails keep their sealed message after the send only while the code lives.
        let dropped = dl::Entity::find()
            .select_only()
            .column(dl::Column::Id)
            .join(sea_orm::JoinType::InnerJoin, dl::Relation::Challenge.def())
            .filter(dl::Column::Status.ne(DeliveryStatus::Queued.as_str()))
            .filter(dl::Column::PayloadSealed.is_not_null())
            .filter(code_dead(now))
            .limit(limit)
            .into_tuple::<Uuid>()
            .all(&self.inner.db)
            .await?;
        if !dropped.is_empty() {
            dl::Entity::update_many()
                .col_expr(
                    dl::Column::PayloadSealed,
                    Expr::value(Option::<String>::None),
                )
                .filter(dl::Column::Id.is_in(dropped))
                .filter(dl::Column::Status.ne(DeliveryStatus::Queued.as_str()))
                .exec(&self.inner.db)
                .await?;
        }
        Ok(failed)
    }
}
