//! Sending queued codes (D1, D5): a worker claims a delivery, sends it, and records the
//! outcome. A claim is a lease (`claimed_until`) taken by one conditional UPDATE, so two
//! copies of one job never both send, whether they run at once or one after the other;
//! a sent delivery is never sent again. A transient failure releases the lease.

use crate::audit::event;
use crate::entities::{deliveries as dl, mfa_challenges as ch};
use crate::scope::TenantScope;
use crate::sql::stmt;
use crate::{Inner, RequestMeta, Result, Store};
use chrono::{DateTime, Duration, Utc};
use gatehouse_domain::audit::details::CodeSent;
use gatehouse_domain::audit::{Actor, Details, Target};
use gatehouse_domain::delivery::DeliveryStatus;
use gatehouse_domain::ids::TenantId;
use gatehouse_domain::jobs::SendCode;
use gatehouse_domain::mfa::codes::{Channel, Purpose};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
    Value,
};
use std::collections::HashMap;
use uuid::Uuid;

/// How long a claim lasts: longer than any provider call is allowed to take.
pub const CLAIM_LEASE_SECONDS: i64 = 60;

/// What a worker needs to send one claimed delivery.
#[derive(Debug, Clone)]
pub struct SendContext {
    pub tenant: TenantId,
    pub delivery_id: Uuid,
    /// The user the code is for (none for a notice to an address only).
    pub user_id: Option<Uuid>,
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

/// Why a delivery whose code died unused ended `failed` when one of its attempts has an
/// unknown outcome (its worker stopped, maybe after the provider took the message): it
/// may have been sent, so "before it could be sent" would not be true.
pub const DEAD_CODE_UNKNOWN: &str = "outcome unknown: the worker stopped (the code may have been sent); the code expired or was replaced unused";

/// How long a notice (no code, purpose `notice`) may wait to be sent.
pub const NOTICE_HOURS: i64 = 24;

/// Why a notice that could not be sent within [`NOTICE_HOURS`] ended `failed`.
pub const DEAD_NOTICE: &str = "the notice could not be sent within a day";

/// Takes the lease of each listed delivery that is queued, unclaimed, and whose code lives
/// (or, for a notice, is less than a day old), and answers what the message needs. `$1`
/// the lease's end, `$2` now, `$3` the oldest live notice, then `n` pairs of delivery and
/// tenant from `$4`. On both databases RETURNING gives the rows as updated (`attempts`
/// already counts this attempt) and may read other tables through subqueries.
fn claim_sql(n: usize) -> String {
    let ids = (0..n)
        .map(|i| format!("${}", 4 + 2 * i))
        .collect::<Vec<_>>()
        .join(", ");
    let pairs = (0..n)
        .map(|i| format!("(id = ${} AND tenant_id = ${})", 4 + 2 * i, 5 + 2 * i))
        .collect::<Vec<_>>()
        .join(" OR ");
    format!(
        "UPDATE deliveries \
         SET attempts = attempts + 1, claimed_until = $1, updated_at = $2 \
         WHERE id IN ({ids}) AND ({pairs}) AND status = 'queued' AND payload_sealed IS NOT NULL \
           AND (claimed_until IS NULL OR claimed_until <= $2) \
           AND ((challenge_id IS NOT NULL AND EXISTS (SELECT 1 FROM mfa_challenges c \
                   WHERE c.id = deliveries.challenge_id AND c.tenant_id = deliveries.tenant_id \
                     AND c.used_at IS NULL AND c.superseded_at IS NULL AND c.expires_at > $2)) \
             OR (challenge_id IS NULL AND purpose = 'notice' AND created_at > $3)) \
         RETURNING id, tenant_id, user_id, channel, purpose, destination_masked, attempts, \
           payload_sealed, created_at, \
           (SELECT c.expires_at FROM mfa_challenges c \
             WHERE c.id = deliveries.challenge_id AND c.tenant_id = deliveries.tenant_id) AS code_expires_at, \
           (SELECT t.company FROM tenants t WHERE t.id = deliveries.tenant_id) AS company, \
           (SELECT t.name FROM tenants t WHERE t.id = deliveries.tenant_id) AS company_name"
    )
}

/// Decodes a row claimed by [`claim_sql`].
fn context(row: &sea_orm::QueryResult) -> Result<SendContext> {
    let id: Uuid = row.try_get("", "id")?;
    let corrupt = |what: &str| crate::StoreError::Corrupt(format!("delivery {id}: {what}"));
    let channel: String = row.try_get("", "channel")?;
    let purpose: String = row.try_get("", "purpose")?;
    let purpose = Purpose::parse(&purpose).ok_or_else(|| corrupt("purpose"))?;
    let created_at: DateTime<Utc> = row.try_get("", "created_at")?;
    let expires_at = match row.try_get::<Option<DateTime<Utc>>>("", "code_expires_at")? {
        Some(at) => at,
        // A notice has no code: it lives a day.
        None => created_at + Duration::hours(NOTICE_HOURS),
    };
    let attempts: i32 = row.try_get("", "attempts")?;
    Ok(SendContext {
        tenant: TenantId(row.try_get("", "tenant_id")?),
        delivery_id: id,
        user_id: row.try_get("", "user_id")?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel"))?,
        purpose,
        company: row
            .try_get::<Option<String>>("", "company")?
            .unwrap_or_default(),
        company_name: row
            .try_get::<Option<String>>("", "company_name")?
            .unwrap_or_default(),
        to_masked: row.try_get("", "destination_masked")?,
        expires_at,
        attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
        sealed: row
            .try_get::<Option<String>>("", "payload_sealed")?
            .ok_or_else(|| corrupt("claimed without its sealed message"))?,
    })
}

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

/// The delivery's code died unused: expired or replaced. A used code is not dead for
/// its delivery: its use proves it arrived (see [`Store::deliver_used_codes`]).
fn code_died_unused(now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(ch::Column::UsedAt.is_null())
        .add(
            sea_orm::Condition::any()
                .add(ch::Column::SupersededAt.is_not_null())
                .add(ch::Column::ExpiresAt.lte(now)),
        )
}

/// What the audit says of a send that was recorded only when its code was used.
pub const RECORDED_AT_USE: &str =
    "the send's own record was lost (its worker stopped); the code's use proves it arrived";

/// Ends as `failed` with `error` (the sealed message dropped) those of `ids` still queued
/// and unclaimed at `now`.
fn fail_unclaimed(
    ids: Vec<Uuid>,
    error: &str,
    now: DateTime<Utc>,
) -> sea_orm::UpdateMany<dl::Entity> {
    dl::Entity::update_many()
        .col_expr(
            dl::Column::Status,
            Expr::value(DeliveryStatus::Failed.as_str()),
        )
        .col_expr(dl::Column::Error, Expr::value(Some(error.to_owned())))
        .col_expr(
            dl::Column::PayloadSealed,
            Expr::value(Option::<String>::None),
        )
        .col_expr(dl::Column::UpdatedAt, Expr::value(now))
        .filter(dl::Column::Id.is_in(ids))
        .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
        .filter(unclaimed(now))
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
    /// Records, in `txn`, an email notice to `user` of this tenant at `to` (masked, the
    /// text sealed like a code's), and answers the job that sends it: to be enqueued once
    /// `txn` has committed.
    pub async fn queue_notice(
        &self,
        txn: &crate::WriteTxn,
        user: gatehouse_domain::ids::UserId,
        to: &gatehouse_domain::ids::EmailAddress,
        notice: &gatehouse_domain::jobs::NoticeText,
    ) -> Result<SendCode> {
        use gatehouse_domain::jobs::CodeMessage;
        use sea_orm::ActiveValue::Set;
        let key = self.scope.inner.config.keyring.current();
        let now = self.scope.inner.clock.now();
        let delivery_id = Uuid::new_v4();
        let sealed = key.seal(
            &SendCode::seal_context(delivery_id),
            &CodeMessage::notice_plaintext(to.as_str(), notice),
        );
        dl::Entity::insert(dl::ActiveModel {
            id: Set(delivery_id),
            tenant_id: Set(self.scope.uuid()),
            user_id: Set(Some(user.0)),
            challenge_id: Set(None),
            channel: Set(Channel::Email.as_str().to_owned()),
            destination_masked: Set(to.masked()),
            destination_hash: Set(destination_mac(key, to.as_str())),
            purpose: Set(Purpose::Notice.as_str().to_owned()),
            status: Set(DeliveryStatus::Queued.as_str().to_owned()),
            attempts: Set(0),
            provider_message_id: Set(None),
            error: Set(None),
            payload_sealed: Set(Some(sealed.clone())),
            claimed_until: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&**txn)
        .await?;
        Ok(SendCode::new(delivery_id, self.scope.uuid(), sealed))
    }

    fn by_id(&self, id: Uuid) -> sea_orm::Condition {
        sea_orm::Condition::all()
            .add(dl::Column::TenantId.eq(self.scope.uuid()))
            .add(dl::Column::Id.eq(id))
    }

    /// Claims a queued delivery for one send attempt. `None` when it was already sent or
    /// failed, another worker holds the lease, or its code died (then it is marked failed).
    /// Workers claim many at once with [`Store::claim_sends`]; this is that for one.
    pub async fn claim(&self, id: Uuid) -> Result<Option<SendContext>> {
        let mut claimed = self
            .scope
            .inner
            .claim_sends(&[(self.scope.tenant_id, id)])
            .await?;
        Ok(claimed.pop().flatten())
    }

    /// After a claim took nothing: a queued delivery whose code (or notice) died is
    /// ended `failed`, so that it does not sit `queued` for a code that cannot arrive.
    /// Anything else (sent, failed, leased to another worker) is left as it is.
    async fn settle_unclaimable(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        let db = &self.scope.inner.db;
        let Some(d) = dl::Entity::find().filter(self.by_id(id)).one(db).await? else {
            return Ok(());
        };
        if d.payload_sealed.is_none()
            || DeliveryStatus::parse(&d.status) != Some(DeliveryStatus::Queued)
        {
            return Ok(());
        }
        match d.challenge_id {
            Some(challenge_id) => {
                let challenge = ch::Entity::find()
                    .filter(ch::Column::TenantId.eq(self.scope.uuid()))
                    .filter(ch::Column::Id.eq(challenge_id))
                    .one(db)
                    .await?;
                let used = challenge.as_ref().is_some_and(|c| c.used_at.is_some());
                let open = challenge.as_ref().is_some_and(|c| {
                    c.used_at.is_none() && c.superseded_at.is_none() && c.expires_at > now
                });
                if used {
                    self.scope
                        .inner
                        .deliver_used(Some((self.scope.tenant_id, challenge_id)), 1)
                        .await?;
                } else if !open {
                    self.scope
                        .inner
                        .end_dead_codes(&[(d.tenant_id, d.id, d.attempts)], now)
                        .await?;
                }
            }
            None if d.purpose == Purpose::Notice.as_str()
                && d.created_at + Duration::hours(NOTICE_HOURS) <= now =>
            {
                self.fail(id, DEAD_NOTICE, true).await?;
            }
            None => {}
        }
        Ok(())
    }

    /// The code of `challenge_id` was used: its delivery is `delivered` (the use proves
    /// the code arrived), whatever its worker recorded or failed to record. A delivery
    /// still `queued` (its worker stopped between the provider call and the record) gets
    /// its `mfa.code_sent` now. Answers how many deliveries changed.
    pub async fn code_used(&self, challenge_id: Uuid) -> Result<u64> {
        self.scope
            .inner
            .deliver_used(Some((self.scope.tenant_id, challenge_id)), 10)
            .await
    }

    /// Records a successful send: the sealed message is dropped and `mfa.code_sent` audited.
    /// Workers record many sends at once with [`Store::record_sends`]; this is that for one.
    pub async fn mark_sent(&self, ctx: &SendContext, provider_message_id: &str) -> Result<()> {
        if ctx.tenant != self.scope.tenant_id {
            return Err(gatehouse_domain::Error::NotFound.into());
        }
        self.scope
            .inner
            .record_sends(&[(ctx, provider_message_id)])
            .await
    }

    /// Writes how a claimed attempt ended without a send (see [`crate::delivery_attempts`]);
    /// a send is written with its record ([`Store::record_sends`]).
    pub async fn note_attempt(
        &self,
        ctx: &SendContext,
        outcome: crate::delivery_attempts::AttemptOutcome,
        detail: &str,
    ) -> Result<()> {
        if ctx.tenant != self.scope.tenant_id {
            return Err(gatehouse_domain::Error::NotFound.into());
        }
        crate::delivery_attempts::insert_in(
            &self.scope.inner.db,
            self.scope.inner.clock.now(),
            &[crate::delivery_attempts::NewAttempt {
                tenant: ctx.tenant.0,
                delivery: ctx.delivery_id,
                attempt: i32::try_from(ctx.attempt).unwrap_or(i32::MAX),
                outcome,
                detail: Some(detail),
                provider_message_id: None,
            }],
        )
        .await
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
        let _turn = self.scope.inner.write_turn().await;
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
        let _turn = self.scope.inner.write_turn().await;
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
    /// Claims many deliveries, of any tenants, in one statement (see [`Deliveries::claim`]):
    /// answers, in the order asked, each one's context or `None`. A worker process gathers
    /// the claims of the jobs that start together, so that claiming costs one statement
    /// per batch instead of one per send.
    pub async fn claim_sends(
        &self,
        which: &[(TenantId, Uuid)],
    ) -> Result<Vec<Option<SendContext>>> {
        self.inner.claim_sends(which).await
    }

    /// Records many successful sends, of any tenants, in one transaction: each delivery
    /// ends `sent` with its provider message id (see [`Deliveries::mark_sent`]), and each
    /// code's `mfa.code_sent` is appended to its practice's audit chain. A worker process
    /// gathers the sends that finish together, so that recording costs a few statements
    /// per batch instead of a transaction per send. All or nothing.
    pub async fn record_sends(&self, sends: &[(&SendContext, &str)]) -> Result<()> {
        self.inner.record_sends(sends).await
    }

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
        let _turn = self.inner.write_turn().await;
        Ok(fail_unclaimed(ids, error, now)
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
        // A used code arrived: its delivery is never `failed`, even when its worker died
        // before recording the send.
        let delivered = self.deliver_used_codes(limit).await?;
        if delivered > 0 {
            tracing::info!(
                delivered,
                "deliveries whose code was used are now delivered"
            );
        }
        let mut failed = self
            .fail_queued(notice(now, false), DEAD_NOTICE, limit)
            .await?;
        let dead: Vec<(Uuid, Uuid, i32)> = dl::Entity::find()
            .select_only()
            .column(dl::Column::TenantId)
            .column(dl::Column::Id)
            .column(dl::Column::Attempts)
            .join(sea_orm::JoinType::InnerJoin, dl::Relation::Challenge.def())
            .filter(dl::Column::Status.eq(DeliveryStatus::Queued.as_str()))
            .filter(unclaimed(now))
            .filter(code_died_unused(now))
            .limit(limit)
            .into_tuple()
            .all(&self.inner.db)
            .await?;
        failed += self.inner.end_dead_codes(&dead, now).await?;
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
            let _turn = self.inner.write_turn().await;
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

impl Store {
    /// Marks `delivered` up to `limit` deliveries (`queued` or `sent`) whose code was used,
    /// across tenants (see [`Deliveries::code_used`]); answers how many.
    pub async fn deliver_used_codes(&self, limit: u64) -> Result<u64> {
        self.inner.deliver_used(None, limit).await
    }
}

impl Inner {
    /// Ends `failed` (sealed message dropped) the listed queued, unclaimed deliveries
    /// `(tenant, id, attempts)` whose code died unused; answers how many. One never
    /// claimed was never sent ([`DEAD_CODE`]). One claimed before may have been: each
    /// claimed attempt without a record is written `unknown` in its history, and when
    /// any attempt's outcome is unknown its error says so ([`DEAD_CODE_UNKNOWN`]), since
    /// "before it could be sent" may be false.
    pub(crate) async fn end_dead_codes(
        &self,
        dead: &[(Uuid, Uuid, i32)],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let end = |ids: Vec<Uuid>, error: &'static str| fail_unclaimed(ids, error, now);
        let never_claimed: Vec<Uuid> = dead
            .iter()
            .filter(|(_, _, attempts)| *attempts == 0)
            .map(|(_, id, _)| *id)
            .collect();
        let mut failed = 0;
        if !never_claimed.is_empty() {
            failed += end(never_claimed, DEAD_CODE)
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        // Claimed before: rare (a worker stopped, or transient failures until the code
        // died), so one at a time, each with its history in one transaction.
        for (tenant, id, attempts) in dead.iter().filter(|(_, _, a)| *a > 0) {
            let txn = self.begin_write().await?;
            let recorded = crate::delivery_attempts::of(&txn, *tenant, *id).await?;
            let lost = (1..=*attempts).any(|n| !recorded.iter().any(|a| a.attempt == n));
            let unknown = lost
                || recorded.iter().any(|a| {
                    a.outcome == crate::delivery_attempts::AttemptOutcome::Unknown.as_str()
                });
            let error = if unknown {
                DEAD_CODE_UNKNOWN
            } else {
                DEAD_CODE
            };
            let done = end(vec![*id], error)
                .filter(dl::Column::TenantId.eq(*tenant))
                .exec(&txn)
                .await?
                .rows_affected;
            if done == 1 && lost {
                crate::delivery_attempts::unknown_before_in(&txn, *tenant, *id, attempts + 1, now)
                    .await?;
            }
            txn.commit().await?;
            failed += done;
        }
        Ok(failed)
    }

    /// See [`Deliveries::code_used`]: `which` narrows it to one challenge.
    pub(crate) async fn deliver_used(
        &self,
        which: Option<(TenantId, Uuid)>,
        limit: u64,
    ) -> Result<u64> {
        let now = self.clock.now();
        let mut q = dl::Entity::find()
            .join(sea_orm::JoinType::InnerJoin, dl::Relation::Challenge.def())
            .filter(ch::Column::UsedAt.is_not_null())
            .filter(dl::Column::Status.is_in([
                DeliveryStatus::Queued.as_str(),
                DeliveryStatus::Sent.as_str(),
            ]));
        if let Some((tenant, challenge)) = which {
            q = q
                .filter(dl::Column::TenantId.eq(tenant.0))
                .filter(dl::Column::ChallengeId.eq(challenge));
        }
        let found = q.limit(limit).all(&self.db).await?;
        if found.is_empty() {
            return Ok(0);
        }
        let txn = self.begin_write().await?;
        let mut changed = 0;
        let mut events = Vec::new();
        for d in found {
            let delivered = |from: &str| {
                dl::Entity::update_many()
                    .col_expr(
                        dl::Column::Status,
                        Expr::value(DeliveryStatus::Delivered.as_str()),
                    )
                    .col_expr(dl::Column::Error, Expr::value(Option::<String>::None))
                    .col_expr(
                        dl::Column::ClaimedUntil,
                        Expr::value(Option::<DateTime<Utc>>::None),
                    )
                    .col_expr(
                        dl::Column::PayloadSealed,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(dl::Column::UpdatedAt, Expr::value(now))
                    .filter(dl::Column::Id.eq(d.id))
                    .filter(dl::Column::TenantId.eq(d.tenant_id))
                    .filter(dl::Column::Status.eq(from.to_owned()))
            };
            let mut done = delivered(&d.status).exec(&txn).await?.rows_affected;
            let was_queued = done == 1 && d.status == DeliveryStatus::Queued.as_str();
            if done == 0 && d.status == DeliveryStatus::Queued.as_str() {
                // Its worker recorded the send meanwhile (and audited it).
                done = delivered(DeliveryStatus::Sent.as_str())
                    .exec(&txn)
                    .await?
                    .rows_affected;
            }
            changed += done;
            if was_queued {
                crate::delivery_attempts::unknown_outcomes_in(&txn, &d, now).await?;
                let target = d.user_id.map(|u| Target {
                    kind: "user",
                    id: u.to_string(),
                    label: None,
                });
                events.push((
                    TenantId(d.tenant_id),
                    event(
                        Actor::system(),
                        target,
                        &RequestMeta::default(),
                        Details::MfaCodeSent(CodeSent {
                            delivery_id: d.id,
                            channel: d.channel.clone(),
                            purpose: d.purpose.clone(),
                            to: d.destination_masked.clone(),
                            attempt: i64::from(d.attempts),
                            recorded: Some("at_use"),
                            note: Some(RECORDED_AT_USE),
                            attempts: Some(
                                crate::delivery_attempts::history_in(&txn, d.tenant_id, d.id)
                                    .await?,
                            ),
                        }),
                    ),
                ));
            }
        }
        crate::audit::append_many_in(&txn, now, events).await?;
        txn.commit().await?;
        Ok(changed)
    }

    pub(crate) async fn claim_sends(
        &self,
        which: &[(TenantId, Uuid)],
    ) -> Result<Vec<Option<SendContext>>> {
        if which.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let mut values: Vec<Value> = vec![
            Some(now + Duration::seconds(CLAIM_LEASE_SECONDS)).into(),
            now.into(),
            (now - Duration::hours(NOTICE_HOURS)).into(),
        ];
        for (tenant, id) in which {
            values.extend([(*id).into(), tenant.0.into()]);
        }
        let backend = self.db.get_database_backend();
        let rows = self
            .db
            .query_all_raw(stmt(backend, &claim_sql(which.len()), values))
            .await?;
        let mut claimed = HashMap::with_capacity(rows.len());
        for row in &rows {
            let ctx = context(row)?;
            claimed.insert((ctx.tenant, ctx.delivery_id), ctx);
        }
        // A claim after an earlier one that recorded nothing: that worker stopped, maybe
        // after the provider took the message, and this claim sends it again.
        for ctx in claimed.values().filter(|c| c.attempt > 1) {
            let attempt = i32::try_from(ctx.attempt).unwrap_or(i32::MAX);
            let lost = crate::delivery_attempts::unknown_before_in(
                &self.db,
                ctx.tenant.0,
                ctx.delivery_id,
                attempt,
                now,
            )
            .await?;
            if lost > 0 {
                use crate::telemetry::{label, metrics};
                metrics()
                    .codes_resent
                    .add(1, &[label("channel", ctx.channel.as_str())]);
                tracing::warn!(
                    delivery_id = %ctx.delivery_id,
                    attempt = ctx.attempt,
                    "{}; sending again (the message may arrive twice)",
                    crate::delivery_attempts::UNKNOWN
                );
            }
        }
        let mut out = Vec::with_capacity(which.len());
        for (tenant, id) in which {
            let ctx = claimed.remove(&(*tenant, *id));
            if ctx.is_none() {
                // Rare: say why, ending a delivery whose code died.
                let scope = TenantScope {
                    inner: self,
                    tenant_id: *tenant,
                };
                scope.deliveries().settle_unclaimable(*id, now).await?;
            }
            out.push(ctx);
        }
        Ok(out)
    }

    pub(crate) async fn record_sends(&self, sends: &[(&SendContext, &str)]) -> Result<()> {
        if sends.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let txn = self.begin_write().await?;
        let backend = txn.get_database_backend();
        // One UPDATE for all: each row gets its own message id; an email's sealed message
        // is kept while its code lives, so that a transient bounce can send it again (see
        // `inbound`); an SMS's, and a notice's, is dropped now.
        let mut values: Vec<Value> = vec![now.into()];
        let (mut cases, mut ids, mut rows) = (String::new(), String::new(), String::new());
        for (ctx, message_id) in sends {
            let n = values.len();
            cases.push_str(&format!(" WHEN ${} THEN ${}", n + 1, n + 2));
            if !rows.is_empty() {
                ids.push_str(", ");
                rows.push_str(" OR ");
            }
            ids.push_str(&format!("${}", n + 1));
            rows.push_str(&format!("(id = ${} AND tenant_id = ${})", n + 1, n + 3));
            values.extend([
                ctx.delivery_id.into(),
                (*message_id).to_owned().into(),
                ctx.tenant.0.into(),
            ]);
        }
        // A delivery that is no longer queued was closed meanwhile: `delivered` because its
        // code was used (audited then), or by a provider event. It keeps its status and
        // only learns its message id. (A `failed` one was given up while this send was in
        // flight: the send happened, so it is `sent`.)
        let sql = format!(
            "UPDATE deliveries SET status = 'sent', provider_message_id = CASE id{cases} END, \
             claimed_until = NULL, error = NULL, updated_at = $1, \
             payload_sealed = CASE WHEN channel = 'email' AND purpose <> 'notice' \
               THEN payload_sealed ELSE NULL END \
             WHERE id IN ({ids}) AND ({rows}) AND status IN ('queued', 'failed') RETURNING id"
        );
        let changed: std::collections::HashSet<Uuid> = txn
            .query_all_raw(stmt(backend, &sql, values.clone()))
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id"))
            .collect::<std::result::Result<_, _>>()?;
        if changed.len() < sends.len() {
            let sql = format!(
                "UPDATE deliveries SET provider_message_id = CASE id{cases} END, \
                 claimed_until = NULL, updated_at = $1 \
                 WHERE id IN ({ids}) AND ({rows}) AND provider_message_id IS NULL \
                   AND status NOT IN ('queued', 'failed')"
            );
            txn.execute_raw(stmt(backend, &sql, values)).await?;
        }
        let attempts: Vec<_> = sends
            .iter()
            .map(|(ctx, message_id)| crate::delivery_attempts::NewAttempt {
                tenant: ctx.tenant.0,
                delivery: ctx.delivery_id,
                attempt: i32::try_from(ctx.attempt).unwrap_or(i32::MAX),
                outcome: crate::delivery_attempts::AttemptOutcome::Sent,
                detail: None,
                provider_message_id: Some(message_id),
            })
            .collect();
        crate::delivery_attempts::insert_in(&txn, now, &attempts).await?;
        // The history of a send that took more than one attempt (one may have gone out
        // already: see `delivery_attempts`), for its audit event.
        let mut histories = HashMap::new();
        for (ctx, _) in sends {
            if ctx.attempt > 1 && changed.contains(&ctx.delivery_id) {
                let h = crate::delivery_attempts::history_in(&txn, ctx.tenant.0, ctx.delivery_id)
                    .await?;
                histories.insert(ctx.delivery_id, h);
            }
        }
        // A notice is not a code: the delivery row is its record (the escalation is audited).
        let events: Vec<_> = sends
            .iter()
            .filter(|(ctx, _)| ctx.purpose != Purpose::Notice)
            .filter(|(ctx, _)| changed.contains(&ctx.delivery_id))
            .map(|(ctx, _)| {
                let target = ctx.user_id.map(|u| Target {
                    kind: "user",
                    id: u.to_string(),
                    label: None,
                });
                let e = event(
                    Actor::system(),
                    target,
                    &RequestMeta::default(),
                    Details::MfaCodeSent(CodeSent {
                        delivery_id: ctx.delivery_id,
                        channel: ctx.channel.as_str().to_owned(),
                        purpose: ctx.purpose.as_str().to_owned(),
                        to: ctx.to_masked.clone(),
                        attempt: i64::from(ctx.attempt),
                        recorded: None,
                        note: None,
                        attempts: histories.remove(&ctx.delivery_id),
                    }),
                );
                (ctx.tenant, e)
            })
            .collect();
        crate::audit::append_many_in(&txn, now, events).await?;
        txn.commit().await?;
        Ok(())
    }
}
