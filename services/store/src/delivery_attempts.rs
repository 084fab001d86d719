//! The history of a delivery's attempts (issue 22): one row per claim of the delivery
//! by a worker, written when the attempt ends (`sent`, `retrying`, `failed`,
//! `opted_out`). The claim itself is the attempt's intent (it counts `attempts` and
//! takes the lease), so an attempt that has a claim but no row ended without a record:
//! its worker stopped, maybe after the provider took the message. Such an attempt is
//! written `unknown` ("outcome unknown: the worker stopped") when the delivery is
//! claimed again (and sent again: neither SES nor SNS takes an idempotency key, so
//! delivery is at least once), or when its code is used.
//!
//! No code and no destination here: `detail` is the reason support reads.

use crate::entities::deliveries as dl;
use crate::entities::delivery_attempts as at;
use crate::{Result, Store};
use chrono::{DateTime, Utc};
use gatehouse_domain::ids::TenantId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

/// What an attempt whose outcome was lost says.
pub const UNKNOWN: &str = "outcome unknown: the worker stopped";

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Sent,
    /// A transient failure: the delivery stays queued.
    Retrying,
    Failed,
    OptedOut,
    /// The worker stopped before recording anything.
    Unknown,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::OptedOut => "opted_out",
            Self::Unknown => "unknown",
        }
    }
}

/// One attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryAttempt {
    pub attempt: i32,
    pub outcome: String,
    pub detail: Option<String>,
    pub provider_message_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// A row to write.
pub(crate) struct NewAttempt<'a> {
    pub tenant: Uuid,
    pub delivery: Uuid,
    pub attempt: i32,
    pub outcome: AttemptOutcome,
    pub detail: Option<&'a str>,
    pub provider_message_id: Option<&'a str>,
}

/// Writes attempts (one statement).
pub(crate) async fn insert_in(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    rows: &[NewAttempt<'_>],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    at::Entity::insert_many(rows.iter().map(|r| at::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(r.tenant),
        delivery_id: Set(r.delivery),
        attempt: Set(r.attempt),
        outcome: Set(r.outcome.as_str().to_owned()),
        detail: Set(r.detail.map(|d| d.chars().take(500).collect())),
        provider_message_id: Set(r.provider_message_id.map(str::to_owned)),
        at: Set(now),
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// A delivery's attempts, oldest first.
pub(crate) async fn of(
    conn: &impl ConnectionTrait,
    tenant: Uuid,
    delivery: Uuid,
) -> Result<Vec<DeliveryAttempt>> {
    Ok(at::Entity::find()
        .filter(at::Column::TenantId.eq(tenant))
        .filter(at::Column::DeliveryId.eq(delivery))
        .order_by_asc(at::Column::Attempt)
        .order_by_asc(at::Column::At)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| DeliveryAttempt {
            attempt: r.attempt,
            outcome: r.outcome,
            detail: r.detail,
            provider_message_id: r.provider_message_id,
            at: r.at,
        })
        .collect())
}

/// The attempts as the audit shows them: `[{attempt, outcome, detail?}]`.
pub(crate) async fn history_in(
    conn: &impl ConnectionTrait,
    tenant: Uuid,
    delivery: Uuid,
) -> Result<serde_json::Value> {
    let shown: Vec<serde_json::Value> = of(conn, tenant, delivery)
        .await?
        .into_iter()
        .map(|a| {
            let mut v = serde_json::json!({"attempt": a.attempt, "outcome": a.outcome});
            if let Some(d) = a.detail {
                v["detail"] = d.into();
            }
            v
        })
        .collect();
    Ok(shown.into())
}

/// Writes `unknown` for each claimed attempt of `tenant`'s delivery before `before` (the
/// numbers `1..before`) that has no row; answers how many it wrote.
pub(crate) async fn unknown_before_in(
    conn: &impl ConnectionTrait,
    tenant: Uuid,
    delivery: Uuid,
    before: i32,
    now: DateTime<Utc>,
) -> Result<u64> {
    if before <= 1 {
        return Ok(0);
    }
    let recorded: Vec<i32> = of(conn, tenant, delivery)
        .await?
        .into_iter()
        .map(|a| a.attempt)
        .collect();
    let missing: Vec<NewAttempt<'_>> = (1..before)
        .filter(|n| !recorded.contains(n))
        .map(|n| NewAttempt {
            tenant,
            delivery,
            attempt: n,
            outcome: AttemptOutcome::Unknown,
            detail: Some(UNKNOWN),
            provider_message_id: None,
        })
        .collect();
    insert_in(conn, now, &missing).await?;
    Ok(missing.len() as u64)
}

/// For a delivery about to be closed without a record of its last attempt (its code was
/// used): each claimed attempt without a row is `unknown`.
pub(crate) async fn unknown_outcomes_in(
    conn: &impl ConnectionTrait,
    d: &dl::Model,
    now: DateTime<Utc>,
) -> Result<u64> {
    unknown_before_in(conn, d.tenant_id, d.id, d.attempts + 1, now).await
}

impl Store {
    /// A delivery's attempts, oldest first (support and tests read them).
    pub async fn delivery_attempts(
        &self,
        tenant: TenantId,
        delivery: Uuid,
    ) -> Result<Vec<DeliveryAttempt>> {
        of(&self.inner.db, tenant.0, delivery).await
    }
}
