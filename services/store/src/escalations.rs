//! Escalations' rows (S2): what support asked, what the practice decided, when it lapses.
//!
//! Who may decide, and how long each state lasts, are the domain's rules
//! (`gatehouse_domain::escalation`); the steps themselves, with their audit events and
//! notices, are gatehouse-app's. Here only what is stored, and the conditional updates
//! that make two concurrent steps on one escalation end in one.

use crate::entities::{escalations as es, tenants};
use crate::error::StoreError;
use crate::records::{Page, Tenant};
use crate::scope::TenantScope;
use crate::{Inner, Result, Store, WriteTxn};
use chrono::{DateTime, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::escalation::{EscalationAction, EscalationStatus};
use gatehouse_domain::ids::{TenantId, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

/// An escalation as both sides see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub company: String,
    pub user_id: Uuid,
    pub action: EscalationAction,
    pub reason: String,
    pub ticket: String,
    pub status: EscalationStatus,
    pub requested_by: Uuid,
    pub requested_by_username: String,
    pub decided_by: Option<Uuid>,
    pub decided_by_username: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub executed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl Escalation {
    fn from_model(m: es::Model, company: &str) -> Result<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("escalation {}: {what}", m.id));
        Ok(Escalation {
            action: EscalationAction::parse(&m.action).ok_or_else(|| corrupt("action"))?,
            status: EscalationStatus::parse(&m.status).ok_or_else(|| corrupt("status"))?,
            id: m.id,
            tenant_id: TenantId(m.tenant_id),
            company: company.to_owned(),
            user_id: m.user_id,
            reason: m.reason,
            ticket: m.ticket,
            requested_by: m.requested_by,
            requested_by_username: m.requested_by_username,
            decided_by: m.decided_by,
            decided_by_username: m.decided_by_username,
            decided_at: m.decided_at,
            executed_at: m.executed_at,
            expires_at: m.expires_at,
            created_at: m.created_at,
        })
    }
}

/// A request as the use case checked it, to be stored `pending`.
#[derive(Debug)]
pub struct NewEscalation<'a> {
    pub user: UserId,
    pub action: EscalationAction,
    pub reason: String,
    pub ticket: String,
    /// The support user who asks, with their username as it is now.
    pub requested_by: (UserId, &'a str),
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A decision on a pending escalation.
#[derive(Debug)]
pub struct Decision<'a> {
    pub status: EscalationStatus,
    pub by: (UserId, &'a str),
    pub at: DateTime<Utc>,
    /// Until when the escalation now holds (an approval opens the execution window).
    pub expires_at: DateTime<Utc>,
}

/// Escalations: one practice's (from [`TenantScope::escalations`]), or every practice's
/// for the vendor's support (from [`Store::escalations_of_every_practice`]).
pub struct Escalations<'a> {
    inner: &'a Inner,
    tenant: Option<TenantId>,
}

impl<'a> TenantScope<'a> {
    /// This practice's escalations.
    pub fn escalations(self) -> Escalations<'a> {
        Escalations {
            inner: self.inner,
            tenant: Some(self.tenant_id),
        }
    }
}

impl Store {
    /// Escalations of every practice, by id: what the vendor's support works on.
    pub fn escalations_of_every_practice(&self) -> Escalations<'_> {
        Escalations {
            inner: &self.inner,
            tenant: None,
        }
    }
}

/// Conditions of an escalation still open (pending or approved).
fn open() -> Condition {
    Condition::any()
        .add(es::Column::Status.eq(EscalationStatus::Pending.as_str()))
        .add(es::Column::Status.eq(EscalationStatus::Approved.as_str()))
}

impl Escalations<'_> {
    /// The scope's condition: the practice, if this is one practice's view.
    fn scoped(&self) -> Condition {
        let c = Condition::all();
        match self.tenant {
            Some(t) => c.add(es::Column::TenantId.eq(t.0)),
            None => c,
        }
    }

    /// With the company of the escalation's practice.
    async fn with_company(&self, rows: Vec<es::Model>) -> Result<Vec<Escalation>> {
        let mut out = Vec::with_capacity(rows.len());
        let mut known: Option<(Uuid, String)> = None;
        for m in rows {
            let company = match &known {
                Some((id, company)) if *id == m.tenant_id => company.clone(),
                _ => {
                    let company: Option<String> = tenants::Entity::find_by_id(m.tenant_id)
                        .select_only()
                        .column(tenants::Column::Company)
                        .into_tuple()
                        .one(&self.inner.db)
                        .await?;
                    let company = company.ok_or_else(|| {
                        StoreError::Corrupt(format!("escalation {}: no practice", m.id))
                    })?;
                    known = Some((m.tenant_id, company.clone()));
                    company
                }
            };
            out.push(Escalation::from_model(m, &company)?);
        }
        Ok(out)
    }

    /// One escalation of the scope.
    pub async fn find(&self, id: Uuid) -> Result<Option<Escalation>> {
        let m = es::Entity::find()
            .filter(self.scoped().add(es::Column::Id.eq(id)))
            .one(&self.inner.db)
            .await?;
        Ok(self.with_company(m.into_iter().collect()).await?.pop())
    }

    /// Open escalations of the scope whose time is up at `now`, all of them or only the
    /// one `id`, or only those about `user`.
    pub async fn due(
        &self,
        id: Option<Uuid>,
        user: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Escalation>> {
        let mut cond = self
            .scoped()
            .add(open())
            .add(es::Column::ExpiresAt.lte(now));
        if let Some(id) = id {
            cond = cond.add(es::Column::Id.eq(id));
        }
        if let Some(u) = user {
            cond = cond.add(es::Column::UserId.eq(u.0));
        }
        let rows = es::Entity::find()
            .filter(cond)
            .order_by_asc(es::Column::TenantId)
            .all(&self.inner.db)
            .await?;
        self.with_company(rows).await
    }

    /// How many open escalations of `action` the scope has about `user`.
    pub async fn open_count(&self, user: UserId, action: EscalationAction) -> Result<u64> {
        Ok(es::Entity::find()
            .filter(
                self.scoped()
                    .add(es::Column::UserId.eq(user.0))
                    .add(es::Column::Action.eq(action.as_str()))
                    .add(open()),
            )
            .count(&self.inner.db)
            .await?)
    }

    /// The scope's escalations, newest first, optionally of one status; the cursor is
    /// the id of the last one on the previous page.
    pub async fn page(
        &self,
        status: Option<EscalationStatus>,
        limit: u64,
        cursor: Option<Uuid>,
    ) -> Result<Page<Escalation>> {
        let mut cond = self.scoped();
        if let Some(s) = status {
            cond = cond.add(es::Column::Status.eq(s.as_str()));
        }
        if let Some(after) = cursor {
            let last = es::Entity::find()
                .filter(self.scoped().add(es::Column::Id.eq(after)))
                .one(&self.inner.db)
                .await?
                .ok_or_else(|| DomainError::field("cursor", "not a cursor of this list"))?;
            cond = cond.add(
                Condition::any()
                    .add(es::Column::CreatedAt.lt(last.created_at))
                    .add(
                        Condition::all()
                            .add(es::Column::CreatedAt.eq(last.created_at))
                            .add(es::Column::Id.lt(last.id)),
                    ),
            );
        }
        let mut rows = es::Entity::find()
            .filter(cond)
            .order_by_desc(es::Column::CreatedAt)
            .order_by_desc(es::Column::Id)
            .limit(limit + 1)
            .all(&self.inner.db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        let items = self.with_company(rows).await?;
        Ok(Page { items, next_cursor })
    }

    /// Stores a new request in `tenant` (which must be the scope's practice).
    pub async fn insert(
        &self,
        txn: &WriteTxn,
        tenant: &Tenant,
        new: NewEscalation<'_>,
    ) -> Result<Escalation> {
        if self.tenant.is_some_and(|t| t != tenant.id) {
            return Err(DomainError::NotFound.into());
        }
        let row = es::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant.id.0),
            user_id: Set(new.user.0),
            action: Set(new.action.as_str().to_owned()),
            reason: Set(new.reason),
            ticket: Set(new.ticket),
            status: Set(EscalationStatus::Pending.as_str().to_owned()),
            requested_by: Set(new.requested_by.0.0),
            requested_by_username: Set(new.requested_by.1.to_owned()),
            decided_by: Set(None),
            decided_by_username: Set(None),
            decided_at: Set(None),
            executed_by: Set(None),
            executed_at: Set(None),
            expires_at: Set(new.expires_at),
            created_at: Set(new.created_at),
            updated_at: Set(new.created_at),
        };
        let m = es::Entity::insert(row).exec_with_returning(&**txn).await?;
        Escalation::from_model(m, tenant.company.as_str())
    }

    /// Marks `e` expired, if it is still in the state it was read in. Whether it was.
    pub async fn lapse(&self, txn: &WriteTxn, e: &Escalation, now: DateTime<Utc>) -> Result<bool> {
        let done = es::Entity::update_many()
            .col_expr(
                es::Column::Status,
                Expr::value(EscalationStatus::Expired.as_str()),
            )
            .col_expr(es::Column::UpdatedAt, Expr::value(now))
            .filter(
                self.scoped()
                    .add(es::Column::Id.eq(e.id))
                    .add(es::Column::Status.eq(e.status.as_str())),
            )
            .exec(&**txn)
            .await?
            .rows_affected;
        Ok(done == 1)
    }

    /// Records a decision, if the escalation is still pending and its time not up at the
    /// decision's moment. Whether it was.
    pub async fn decide(&self, txn: &WriteTxn, id: Uuid, d: Decision<'_>) -> Result<bool> {
        let done = es::Entity::update_many()
            .col_expr(es::Column::Status, Expr::value(d.status.as_str()))
            .col_expr(es::Column::DecidedBy, Expr::value(Some(d.by.0.0)))
            .col_expr(
                es::Column::DecidedByUsername,
                Expr::value(Some(d.by.1.to_owned())),
            )
            .col_expr(es::Column::DecidedAt, Expr::value(Some(d.at)))
            .col_expr(es::Column::ExpiresAt, Expr::value(d.expires_at))
            .col_expr(es::Column::UpdatedAt, Expr::value(d.at))
            .filter(
                self.scoped()
                    .add(es::Column::Id.eq(id))
                    .add(es::Column::Status.eq(EscalationStatus::Pending.as_str()))
                    .add(es::Column::ExpiresAt.gt(d.at)),
            )
            .exec(&**txn)
            .await?
            .rows_affected;
        Ok(done == 1)
    }

    /// Marks an approved escalation whose window is still open as executed by `by`, in a
    /// statement of its own: of two concurrent executions, one claims it. Whether this did.
    pub async fn claim_execution(&self, id: Uuid, by: UserId, now: DateTime<Utc>) -> Result<bool> {
        let _turn = self.inner.write_turn().await;
        let claimed = es::Entity::update_many()
            .col_expr(
                es::Column::Status,
                Expr::value(EscalationStatus::Executed.as_str()),
            )
            .col_expr(es::Column::ExecutedBy, Expr::value(Some(by.0)))
            .col_expr(es::Column::ExecutedAt, Expr::value(Some(now)))
            .col_expr(es::Column::UpdatedAt, Expr::value(now))
            .filter(
                self.scoped()
                    .add(es::Column::Id.eq(id))
                    .add(es::Column::Status.eq(EscalationStatus::Approved.as_str()))
                    .add(es::Column::ExpiresAt.gt(now)),
            )
            .exec(&self.inner.db)
            .await?
            .rows_affected;
        Ok(claimed == 1)
    }

    /// Gives a claimed execution back: the approval stands again, for another try within
    /// its window.
    pub async fn release_execution(&self, id: Uuid) -> Result<()> {
        let _turn = self.inner.write_turn().await;
        es::Entity::update_many()
            .col_expr(
                es::Column::Status,
                Expr::value(EscalationStatus::Approved.as_str()),
            )
            .col_expr(es::Column::ExecutedBy, Expr::value(Option::<Uuid>::None))
            .col_expr(
                es::Column::ExecutedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(
                self.scoped()
                    .add(es::Column::Id.eq(id))
                    .add(es::Column::Status.eq(EscalationStatus::Executed.as_str())),
            )
            .exec(&self.inner.db)
            .await?;
        Ok(())
    }
}
