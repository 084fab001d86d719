//! Escalations (S2): the vendor's support changes a practice's credentials only with the
//! practice's consent. An agent opens one for a user and an action; a practice admin of
//! that tenant approves or denies it, or, when the practice has no other active, unlocked
//! admin (the admin is the one locked out), a support admin who is not the requester
//! approves it (two-person rule). An approved escalation executes once, within an hour
//! of the approval; one left undecided or unexecuted lapses to `expired`. Every step is
//! audited in the practice's log and in the operator's.

use crate::audit::event;
use crate::audit::tenant_target;
use crate::audit::{actor_of, user_target};
use crate::entities::{escalations as es, tenants, users};
use crate::error::StoreError;
use crate::records::{Page, Principal, Tenant, TenantStatus};
use crate::scope::UserRef;
use crate::users::PasswordVia;
use crate::{RequestMeta, Result, Store};
use chrono::{DateTime, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::{Action, Actor, Target};
use gatehouse_domain::escalation::{
    self as rules, EXECUTION_WINDOW_MINUTES, EscalationAction, EscalationStatus, PENDING_HOURS,
    checked_text,
};
use gatehouse_domain::ids::{CompanyId, UserId};
use gatehouse_domain::role::Role;
use gatehouse_domain::validation::Collector;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

/// An escalation as both sides see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub id: Uuid,
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

/// `POST /v1/escalations` as support submits it.
#[derive(Debug, Default)]
pub struct NewEscalation {
    pub company: String,
    /// UUID or username.
    pub user_id: String,
    pub action: String,
    pub reason: String,
    pub ticket: String,
}

fn escalation_target(e: &es::Model, username: &str) -> Option<Target> {
    Some(user_target(UserId(e.user_id), username))
}

/// The names an escalation's audit events carry.
struct AuditContext {
    tenant: Tenant,
    username: String,
    operator: gatehouse_domain::ids::TenantId,
}

/// The status a row holds.
fn status_of(e: &es::Model) -> Result<EscalationStatus> {
    EscalationStatus::parse(&e.status)
        .ok_or_else(|| StoreError::Corrupt(format!("escalation {}: status", e.id)))
}

/// Conditions of an escalation still open (pending or approved).
fn open() -> Condition {
    Condition::any()
        .add(es::Column::Status.eq(EscalationStatus::Pending.as_str()))
        .add(es::Column::Status.eq(EscalationStatus::Approved.as_str()))
}

impl Store {
    async fn tenant_by_id(&self, id: Uuid) -> Result<Tenant> {
        tenants::Entity::find_by_id(id)
            .one(&self.inner.db)
            .await?
            .ok_or(DomainError::NotFound)
            .map_err(StoreError::from)
            .and_then(Tenant::try_from)
    }

    async fn operator_tenant_id(&self) -> Result<Uuid> {
        let id: Option<Uuid> = tenants::Entity::find()
            .select_only()
            .column(tenants::Column::Id)
            .filter(tenants::Column::IsOperator.eq(true))
            .into_tuple()
            .one(&self.inner.db)
            .await?;
        id.ok_or_else(|| StoreError::Internal("no operator tenant".into()))
    }

    async fn username_of(&self, tenant: Uuid, user: Uuid) -> Result<String> {
        let name: Option<String> = users::Entity::find()
            .select_only()
            .column(users::Column::Username)
            .filter(users::Column::TenantId.eq(tenant))
            .filter(users::Column::Id.eq(user))
            .into_tuple()
            .one(&self.inner.db)
            .await?;
        Ok(name.unwrap_or_default())
    }

    /// What the audit events of an escalation name, read before its transaction begins.
    async fn audit_context(&self, e: &es::Model) -> Result<AuditContext> {
        Ok(AuditContext {
            username: self.username_of(e.tenant_id, e.user_id).await?,
            tenant: self.tenant_by_id(e.tenant_id).await?,
            operator: gatehouse_domain::ids::TenantId(self.operator_tenant_id().await?),
        })
    }

    /// Appends one step of an escalation to the practice's log and the operator's, in
    /// that order (always the same order, so two steps never wait on each other's chains).
    async fn audit_both(
        &self,
        txn: &DatabaseTransaction,
        (e, cx): (&es::Model, &AuditContext),
        action: Action,
        actor: Actor,
        meta: &RequestMeta,
        details: serde_json::Value,
    ) -> Result<()> {
        let mut details = details;
        details["escalation_id"] = json!(e.id.to_string());
        details["action"] = json!(e.action);
        details["ticket"] = json!(e.ticket);
        self.tenant(cx.tenant.id)
            .audit()
            .append_in(
                txn,
                event(
                    action,
                    actor.clone(),
                    escalation_target(e, &cx.username),
                    meta,
                    details.clone(),
                ),
            )
            .await?;
        details["company"] = json!(cx.tenant.company.as_str());
        details["user"] = json!(cx.username);
        self.tenant(cx.operator)
            .audit()
            .append_in(
                txn,
                event(
                    action,
                    actor,
                    Some(tenant_target(&cx.tenant)),
                    meta,
                    details,
                ),
            )
            .await
    }

    /// Marks open escalations whose time is up as `expired` (each audited in both logs).
    /// Runs before any read or step, so nobody sees or acts on a stale one.
    async fn expire_stale(&self, scope: Condition) -> Result<()> {
        let now = self.inner.clock.now();
        let stale = es::Entity::find()
            .filter(scope)
            .filter(open())
            .filter(es::Column::ExpiresAt.lte(now))
            .all(&self.inner.db)
            .await?;
        for e in stale {
            let cx = self.audit_context(&e).await?;
            let txn = self.inner.begin_write().await?;
            let done = es::Entity::update_many()
                .col_expr(
                    es::Column::Status,
                    Expr::value(EscalationStatus::Expired.as_str()),
                )
                .col_expr(es::Column::UpdatedAt, Expr::value(now))
                .filter(es::Column::Id.eq(e.id))
                .filter(es::Column::Status.eq(e.status.as_str()))
                .exec(&txn)
                .await?
                .rows_affected;
            if done == 1 {
                self.audit_both(
                    &txn,
                    (&e, &cx),
                    Action::EscalationExpired,
                    Actor::system(),
                    &RequestMeta::default(),
                    json!({"was": e.status}),
                )
                .await?;
            }
            txn.commit().await?;
        }
        Ok(())
    }

    async fn escalation_model(&self, id: Uuid, tenant: Option<Uuid>) -> Result<es::Model> {
        let mut scope = Condition::all().add(es::Column::Id.eq(id));
        if let Some(t) = tenant {
            scope = scope.add(es::Column::TenantId.eq(t));
        }
        self.expire_stale(scope.clone()).await?;
        Ok(es::Entity::find()
            .filter(scope)
            .one(&self.inner.db)
            .await?
            .ok_or(DomainError::NotFound)?)
    }

    async fn escalation_view(&self, m: es::Model) -> Result<Escalation> {
        let tenant = self.tenant_by_id(m.tenant_id).await?;
        Escalation::from_model(m, tenant.company.as_str())
    }

    /// `POST /v1/escalations` (support staff): opens a request; one open request per user
    /// and action at a time.
    pub async fn open_escalation(
        &self,
        p: &Principal,
        new: NewEscalation,
        meta: &RequestMeta,
    ) -> Result<Escalation> {
        let mut c = Collector::new();
        let company = c.take(
            CompanyId::parse(new.company.trim())
                .map_err(|_| DomainError::field("company", "not a company id")),
        );
        let action = rules::parse_action(&mut c, &new.action);
        let user = UserRef::parse(new.user_id.trim());
        if user.is_none() {
            c.push(gatehouse_domain::FieldError::new(
                "user_id",
                "a user id (UUID) or username",
            ));
        }
        let reason = checked_text(&mut c, "reason", &new.reason, 1000, true);
        let ticket = checked_text(&mut c, "ticket", &new.ticket, 100, false);
        c.finish()?;
        let (Some(company), Some(action), Some(user), Some(reason), Some(ticket)) =
            (company, action, user, reason, ticket)
        else {
            return Err(StoreError::Internal(
                "validation passed with missing fields".into(),
            ));
        };
        let tenant = self
            .find_tenant(&company)
            .await?
            .filter(|t| !t.is_operator)
            .ok_or_else(|| DomainError::field("company", "no such practice"))?;
        let target = self
            .tenant(tenant.id)
            .users()
            .find_model(&self.inner.db, &user)
            .await?
            .ok_or_else(|| DomainError::field("user_id", "no such user in this practice"))?;
        self.expire_stale(Condition::all().add(es::Column::UserId.eq(target.id)))
            .await?;
        let already = es::Entity::find()
            .filter(es::Column::TenantId.eq(tenant.id.0))
            .filter(es::Column::UserId.eq(target.id))
            .filter(es::Column::Action.eq(action.as_str()))
            .filter(open())
            .count(&self.inner.db)
            .await?;
        if already > 0 {
            return Err(DomainError::Conflict(format!(
                "an open {} escalation for this user already exists",
                action.as_str()
            ))
            .into());
        }
        let now = self.inner.clock.now();
        let row = es::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant.id.0),
            user_id: Set(target.id),
            action: Set(action.as_str().to_owned()),
            reason: Set(reason),
            ticket: Set(ticket),
            status: Set(EscalationStatus::Pending.as_str().to_owned()),
            requested_by: Set(p.user.id.0),
            requested_by_username: Set(p.user.username.clone()),
            decided_by: Set(None),
            decided_by_username: Set(None),
            decided_at: Set(None),
            executed_by: Set(None),
            executed_at: Set(None),
            expires_at: Set(rules::pending_until(now)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let cx = AuditContext {
            username: target.username.clone(),
            tenant: tenant.clone(),
            operator: p.tenant.id,
        };
        let txn = self.inner.begin_write().await?;
        let m = es::Entity::insert(row).exec_with_returning(&txn).await?;
        let notices = self.notify_admins(&txn, &tenant, &m, &cx, now).await?;
        self.audit_both(
            &txn,
            (&m, &cx),
            Action::EscalationRequested,
            actor_of(p),
            meta,
            json!({"reason": m.reason, "admins_notified": notices.len()}),
        )
        .await?;
        txn.commit().await?;
        for job in notices {
            self.enqueue_send(job).await;
        }
        Escalation::from_model(m, tenant.company.as_str())
    }

    /// Queues, in the escalation's transaction, an email notice to each active practice
    /// admin of the tenant who has an address: a request awaits their decision. The
    /// deliveries are recorded like codes' (masked, sealed) and sent by the workers.
    async fn notify_admins(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        e: &es::Model,
        cx: &AuditContext,
        now: DateTime<Utc>,
    ) -> Result<Vec<gatehouse_domain::jobs::SendCode>> {
        use crate::entities::deliveries as dl;
        use gatehouse_domain::delivery::DeliveryStatus;
        use gatehouse_domain::ids::EmailAddress;
        use gatehouse_domain::jobs::{CodeMessage, NoticeText, SendCode};
        use gatehouse_domain::mfa::codes::{Channel, Purpose};
        let admins: Vec<(Uuid, Option<String>)> = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .column(users::Column::Email)
            .filter(users::Column::TenantId.eq(tenant.id.0))
            .filter(users::Column::Role.eq(Role::PracticeAdmin.as_str()))
            .filter(users::Column::Active.eq(true))
            .into_tuple()
            .all(txn)
            .await?;
        let what = match EscalationAction::parse(&e.action) {
            Some(EscalationAction::Unlock) => "unlock the account of",
            Some(EscalationAction::ResetMfa) => "reset the second factor of",
            Some(EscalationAction::ResetPassword) => "set a temporary password for",
            None => "act on the account of",
        };
        let notice = NoticeText {
            subject: format!("support asks to {what} {}", cx.username),
            body: format!(
                "Hello,\n\n\
                 The vendor's support ({requester}) asks to {what} {user} in {company}.\n\n\
                 Ticket: {ticket}\nReason: {reason}\n\n\
                 Nothing happens unless an administrator of your practice approves it. \
                 Approve or deny it in Gatehouse (escalation {id}); it lapses undecided after \
                 {PENDING_HOURS} hours. An approved request can be carried out once, within \
                 {EXECUTION_WINDOW_MINUTES} minutes.\n\n\
                 If you did not expect this, deny it and contact the vendor.\n",
                requester = e.requested_by_username,
                user = cx.username,
                company = tenant.name,
                ticket = e.ticket,
                reason = e.reason,
                id = e.id,
            ),
        };
        let key = self.inner.config.keyring.current();
        let mut jobs = Vec::new();
        for (admin, email) in admins {
            let Some(email) = email.and_then(|a| EmailAddress::parse(&a).ok()) else {
                continue;
            };
            let delivery_id = Uuid::new_v4();
            let sealed = key.seal(
                &SendCode::seal_context(delivery_id),
                &CodeMessage::notice_plaintext(email.as_str(), &notice),
            );
            dl::Entity::insert(dl::ActiveModel {
                id: Set(delivery_id),
                tenant_id: Set(tenant.id.0),
                user_id: Set(Some(admin)),
                challenge_id: Set(None),
                channel: Set(Channel::Email.as_str().to_owned()),
                destination_masked: Set(email.masked()),
                destination_hash: Set(crate::deliveries::destination_mac(key, email.as_str())),
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
            .exec_without_returning(txn)
            .await?;
            jobs.push(SendCode::new(delivery_id, tenant.id.0, sealed));
        }
        Ok(jobs)
    }

    /// `GET /v1/escalations/{id}` (support staff).
    pub async fn escalation(&self, id: Uuid) -> Result<Escalation> {
        let m = self.escalation_model(id, None).await?;
        self.escalation_view(m).await
    }

    /// `GET /v1/tenants/{company}/escalations`: the practice's escalations, newest first;
    /// the cursor is the id of the last one on the previous page.
    pub async fn tenant_escalations(
        &self,
        tenant: &Tenant,
        status: Option<EscalationStatus>,
        limit: u64,
        cursor: Option<Uuid>,
    ) -> Result<Page<Escalation>> {
        let scope = Condition::all().add(es::Column::TenantId.eq(tenant.id.0));
        self.expire_stale(scope.clone()).await?;
        let mut cond = scope;
        if let Some(s) = status {
            cond = cond.add(es::Column::Status.eq(s.as_str()));
        }
        if let Some(after) = cursor {
            let last = es::Entity::find()
                .filter(es::Column::TenantId.eq(tenant.id.0))
                .filter(es::Column::Id.eq(after))
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
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|m| Escalation::from_model(m, tenant.company.as_str()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    /// Records a decision on a pending escalation.
    async fn decide(
        &self,
        e: &es::Model,
        decider: &Principal,
        approve: bool,
        meta: &RequestMeta,
        details: serde_json::Value,
    ) -> Result<Escalation> {
        let now = self.inner.clock.now();
        let (status, action, expires_at) = if approve {
            (
                EscalationStatus::Approved,
                Action::EscalationApproved,
                rules::approved_until(now),
            )
        } else {
            (
                EscalationStatus::Denied,
                Action::EscalationDenied,
                e.expires_at,
            )
        };
        let cx = self.audit_context(e).await?;
        let txn = self.inner.begin_write().await?;
        let done = es::Entity::update_many()
            .col_expr(es::Column::Status, Expr::value(status.as_str()))
            .col_expr(es::Column::DecidedBy, Expr::value(Some(decider.user.id.0)))
            .col_expr(
                es::Column::DecidedByUsername,
                Expr::value(Some(decider.user.username.clone())),
            )
            .col_expr(es::Column::DecidedAt, Expr::value(Some(now)))
            .col_expr(es::Column::ExpiresAt, Expr::value(expires_at))
            .col_expr(es::Column::UpdatedAt, Expr::value(now))
            .filter(es::Column::Id.eq(e.id))
            .filter(es::Column::Status.eq(EscalationStatus::Pending.as_str()))
            .filter(es::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?
            .rows_affected;
        if done != 1 {
            return Err(
                DomainError::Conflict("the escalation was decided meanwhile".into()).into(),
            );
        }
        self.audit_both(&txn, (e, &cx), action, actor_of(decider), meta, details)
            .await?;
        txn.commit().await?;
        let m = self.escalation_model(e.id, None).await?;
        self.escalation_view(m).await
    }

    /// `POST /v1/tenants/{company}/escalations/{id}/approve|deny`: a practice admin of the
    /// escalation's tenant decides (approving is a credential action: step-up). Nobody
    /// decides an escalation about themselves.
    pub async fn practice_decides(
        &self,
        admin: &Principal,
        tenant: &Tenant,
        id: Uuid,
        approve: bool,
        meta: &RequestMeta,
    ) -> Result<Escalation> {
        let e = self.escalation_model(id, Some(tenant.id.0)).await?;
        // A decision either way is a credential action (M11).
        self.require_step_up(admin)?;
        rules::practice_may_decide(status_of(&e)?, e.user_id, admin.user.id.0)?;
        self.decide(&e, admin, approve, meta, json!({"by": "practice_admin"}))
            .await
    }

    /// Active, unlocked practice admins of the tenant other than `except`.
    async fn other_admins(&self, tenant: Uuid, except: Uuid) -> Result<u64> {
        Ok(users::Entity::find()
            .filter(users::Column::TenantId.eq(tenant))
            .filter(users::Column::Role.eq(Role::PracticeAdmin.as_str()))
            .filter(users::Column::Active.eq(true))
            .filter(users::Column::Locked.eq(false))
            .filter(users::Column::Id.ne(except))
            .count(&self.inner.db)
            .await?)
    }

    /// `POST /v1/escalations/{id}/approve` (support admin, two-person rule): only when
    /// the practice has no other active, unlocked admin who could decide, and never by
    /// the support user who asked.
    pub async fn support_approves(
        &self,
        p: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<Escalation> {
        let e = self.escalation_model(id, None).await?;
        self.require_step_up(p)?;
        let others = self.other_admins(e.tenant_id, e.user_id);
        rules::support_may_approve(status_of(&e)?, e.requested_by, p.user.id.0, others).await?;
        self.decide(
            &e,
            p,
            true,
            meta,
            json!({"by": "support_admin", "two_person_rule": true}),
        )
        .await
    }

    /// `POST /v1/escalations/{id}/execute` (support staff): does the approved action,
    /// once, within the window. `reset_password` takes the temporary password (the user
    /// must change it at the next sign-in); the other actions take none.
    pub async fn execute_escalation(
        &self,
        p: &Principal,
        id: Uuid,
        temporary_password: Option<SecretString>,
        meta: &RequestMeta,
    ) -> Result<Escalation> {
        let e = self.escalation_model(id, None).await?;
        let action = EscalationAction::parse(&e.action)
            .ok_or_else(|| StoreError::Corrupt(format!("escalation {}: action", e.id)))?;
        rules::ready_to_execute(status_of(&e)?, action, temporary_password.is_some())?;
        let tenant = self.tenant_by_id(e.tenant_id).await?;
        if tenant.status == TenantStatus::Suspended {
            return Err(DomainError::Conflict("the practice is suspended".into()).into());
        }
        // Claim the execution first: of two concurrent calls, one wins.
        let now = self.inner.clock.now();
        let turn = self.inner.write_turn().await;
        let claimed = es::Entity::update_many()
            .col_expr(
                es::Column::Status,
                Expr::value(EscalationStatus::Executed.as_str()),
            )
            .col_expr(es::Column::ExecutedBy, Expr::value(Some(p.user.id.0)))
            .col_expr(es::Column::ExecutedAt, Expr::value(Some(now)))
            .col_expr(es::Column::UpdatedAt, Expr::value(now))
            .filter(es::Column::Id.eq(e.id))
            .filter(es::Column::Status.eq(EscalationStatus::Approved.as_str()))
            .filter(es::Column::ExpiresAt.gt(now))
            .exec(&self.inner.db)
            .await?
            .rows_affected;
        drop(turn);
        if claimed != 1 {
            return Err(DomainError::EscalationNotApproved(
                "This escalation was executed or expired meanwhile.".into(),
            )
            .into());
        }
        let user = UserRef::Id(e.user_id);
        let actor = actor_of(p);
        let done = match action {
            EscalationAction::Unlock => self
                .unlock_as(actor.clone(), &tenant, &user, meta, Some(e.id))
                .await
                .map(|_| ()),
            EscalationAction::ResetMfa => {
                self.reset_mfa_as(actor.clone(), &tenant, &user, meta).await
            }
            EscalationAction::ResetPassword => match temporary_password {
                Some(pw) => {
                    self.set_temporary_password(
                        actor.clone(),
                        &tenant,
                        &user,
                        pw,
                        meta,
                        PasswordVia::Escalation,
                    )
                    .await
                }
                None => Err(StoreError::Internal("checked above".into())),
            },
        };
        if let Err(err) = done {
            // Not done: the approval stands for another try within its window.
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
                .filter(es::Column::Id.eq(e.id))
                .filter(es::Column::Status.eq(EscalationStatus::Executed.as_str()))
                .exec(&self.inner.db)
                .await?;
            return Err(err);
        }
        let cx = self.audit_context(&e).await?;
        let txn = self.inner.begin_write().await?;
        self.audit_both(
            &txn,
            (&e, &cx),
            Action::EscalationExecuted,
            actor,
            meta,
            json!({}),
        )
        .await?;
        txn.commit().await?;
        let m = self.escalation_model(e.id, None).await?;
        self.escalation_view(m).await
    }
}
