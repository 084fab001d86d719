//! Escalations (S2): the vendor's support changes a practice's credentials only with the
//! practice's consent. An agent opens one for a user and an action; a practice admin of
//! that tenant approves or denies it, or, when the practice has no other active, unlocked
//! admin (the admin is the one locked out), a support admin who is not the requester
//! approves it (two-person rule). An approved escalation executes once, within an hour
//! of the approval; one left undecided or unexecuted lapses to `expired`. Every step is
//! audited in the practice's log and in the operator's.
//!
//! Who may do what is `gatehouse_domain::escalation`; the rows and their conditional
//! updates are `gatehouse_store::escalations`.

use crate::{Error, Page, Principal, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::details::{By, Decided, EscalationRef};
use gatehouse_domain::audit::{Actor, Details};
use gatehouse_domain::escalation::{
    self as rules, EXECUTION_WINDOW_MINUTES, EscalationAction, EscalationStatus, PENDING_HOURS,
    checked_text,
};
use gatehouse_domain::ids::{CompanyId, TenantId, UserId};
use gatehouse_domain::jobs::{NoticeText, SendCode};
use gatehouse_domain::role::Role;
use gatehouse_domain::validation::{Collector, Given};
use gatehouse_store::audit::{actor_of, event, tenant_target, user_target};
use gatehouse_store::escalations::{Decision, Escalations as Rows, NewEscalation as Row};
use gatehouse_store::scope::UserRef;
use gatehouse_store::users::PasswordVia;
use gatehouse_store::{Store, WriteTxn};
use secrecy::SecretString;
use uuid::Uuid;

pub use gatehouse_store::escalations::Escalation;

/// `POST /v1/escalations` as support submits it.
#[derive(Debug)]
pub struct NewEscalation {
    pub company: String,
    /// UUID or username.
    pub user_id: String,
    /// Read at the edge (an unknown name is that field's error).
    pub action: Given<EscalationAction>,
    pub reason: String,
    pub ticket: String,
}

/// The escalation use cases (from [`crate::App::escalations`]).
#[derive(Debug, Clone, Copy)]
pub struct Escalations<'a> {
    pub(crate) store: &'a Store,
}

/// The names an escalation's audit events carry, read before its transaction begins.
struct AuditContext {
    tenant: Tenant,
    username: String,
    operator: TenantId,
}

/// The email asking a practice's admins to decide `e` about `username`.
fn notice(e: &Escalation, username: &str, practice: &str) -> NoticeText {
    let what = match e.action {
        EscalationAction::Unlock => "unlock the account of",
        EscalationAction::ResetMfa => "reset the second factor of",
        EscalationAction::ResetPassword => "set a temporary password for",
    };
    NoticeText {
        subject: format!("support asks to {what} {username}"),
        body: format!(
            "Hello,\n\n\
             The vendor's support ({requester}) asks to {what} {username} in {practice}.\n\n\
             Ticket: {ticket}\nReason: {reason}\n\n\
             Nothing happens unless an administrator of your practice approves it. \
             Approve or deny it in Gatehouse (escalation {id}); it lapses undecided after \
             {PENDING_HOURS} hours. An approved request can be carried out once, within \
             {EXECUTION_WINDOW_MINUTES} minutes.\n\n\
             If you did not expect this, deny it and contact the vendor.\n",
            requester = e.requested_by_username,
            ticket = e.ticket,
            reason = e.reason,
            id = e.id,
        ),
    }
}

impl Escalations<'_> {
    async fn tenant(&self, id: TenantId) -> Result<Tenant> {
        Ok(self
            .store
            .tenant_by_id(id)
            .await?
            .ok_or(DomainError::NotFound)?)
    }

    async fn audit_context(&self, e: &Escalation) -> Result<AuditContext> {
        Ok(AuditContext {
            username: self
                .store
                .tenant(e.tenant_id)
                .users()
                .username_of(UserId(e.user_id))
                .await?
                .unwrap_or_default(),
            tenant: self.tenant(e.tenant_id).await?,
            operator: self.store.operator_tenant_id().await?,
        })
    }

    /// Appends one step of an escalation to the practice's log and the operator's, in
    /// that order (always the same order, so two steps never wait on each other's chains).
    async fn audit_both(
        &self,
        txn: &WriteTxn,
        (e, cx): (&Escalation, &AuditContext),
        actor: Actor,
        meta: &RequestMeta,
        details: impl Fn(EscalationRef) -> Details,
    ) -> Result<()> {
        let mut about = EscalationRef {
            escalation_id: e.id,
            action: e.action,
            ticket: e.ticket.clone(),
            company: None,
            user: None,
        };
        let target = Some(user_target(UserId(e.user_id), &cx.username));
        self.store
            .tenant(cx.tenant.id)
            .audit()
            .append_in(
                txn,
                event(actor.clone(), target, meta, details(about.clone())),
            )
            .await?;
        // The operator's log spans practices: its copy names the practice and the user.
        about.company = Some(cx.tenant.company.as_str().to_owned());
        about.user = Some(cx.username.clone());
        let details = details(about);
        self.store
            .tenant(cx.operator)
            .audit()
            .append_in(
                txn,
                event(actor, Some(tenant_target(&cx.tenant)), meta, details),
            )
            .await
    }

    /// Marks the open escalations of `rows` whose time is up as `expired` (each audited in
    /// both logs): all of them, or only `id`, or only those about `user`. Runs before any
    /// read or step, so nobody sees or acts on a stale one.
    async fn lapse_due(
        &self,
        rows: &Rows<'_>,
        id: Option<Uuid>,
        user: Option<UserId>,
    ) -> Result<()> {
        let now = self.store.clock().now();
        for e in rows.due(id, user, now).await? {
            let cx = self.audit_context(&e).await?;
            let txn = self.store.begin_write().await?;
            if rows.lapse(&txn, &e, now).await? {
                self.audit_both(
                    &txn,
                    (&e, &cx),
                    Actor::system(),
                    &RequestMeta::default(),
                    |escalation| Details::EscalationExpired {
                        escalation,
                        was: e.status,
                    },
                )
                .await?;
            }
            txn.commit().await?;
        }
        Ok(())
    }

    /// One escalation as it is now (lapsed first if its time is up); with `practice`,
    /// only one of that practice.
    async fn load(&self, id: Uuid, practice: Option<TenantId>) -> Result<Escalation> {
        let rows = match practice {
            Some(t) => self.store.tenant(t).escalations(),
            None => self.store.escalations_of_every_practice(),
        };
        self.lapse_due(&rows, Some(id), None).await?;
        Ok(rows.find(id).await?.ok_or(DomainError::NotFound)?)
    }

    /// `POST /v1/escalations` (support staff): opens a request; one open request per user
    /// and action at a time.
    pub async fn open(
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
        let action = c.given(new.action);
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
            return Err(Error::Internal(
                "validation passed with missing fields".into(),
            ));
        };
        let tenant = self
            .store
            .find_tenant(&company)
            .await?
            .filter(|t| !t.is_operator)
            .ok_or_else(|| DomainError::field("company", "no such practice"))?;
        let scope = self.store.tenant(tenant.id);
        let target = match scope.users().get(&user).await {
            Err(Error::Domain(DomainError::NotFound)) => {
                return Err(DomainError::field("user_id", "no such user in this practice").into());
            }
            other => other?,
        };
        let rows = scope.escalations();
        self.lapse_due(&rows, None, Some(target.id)).await?;
        if rows.open_count(target.id, action).await? > 0 {
            return Err(DomainError::Conflict(format!(
                "an open {} escalation for this user already exists",
                action.as_str()
            ))
            .into());
        }
        let now = self.store.clock().now();
        let cx = AuditContext {
            username: target.username.clone(),
            tenant: tenant.clone(),
            operator: p.tenant.id,
        };
        let txn = self.store.begin_write().await?;
        let e = rows
            .insert(
                &txn,
                &tenant,
                Row {
                    user: target.id,
                    action,
                    reason,
                    ticket,
                    requested_by: (p.user.id, &p.user.username),
                    created_at: now,
                    expires_at: rules::pending_until(now),
                },
            )
            .await?;
        let notices = self.notify_admins(&txn, &e, &cx).await?;
        self.audit_both(&txn, (&e, &cx), actor_of(p), meta, |escalation| {
            Details::EscalationRequested {
                escalation,
                reason: e.reason.clone(),
                admins_notified: notices.len() as u64,
            }
        })
        .await?;
        txn.commit().await?;
        for job in notices {
            self.store.enqueue_send(job).await;
        }
        Ok(e)
    }

    /// Queues, in the escalation's transaction, an email notice to each active practice
    /// admin of the tenant who has an address: a request awaits their decision. The
    /// deliveries are recorded like codes' (masked, sealed) and sent by the workers.
    async fn notify_admins(
        &self,
        txn: &WriteTxn,
        e: &Escalation,
        cx: &AuditContext,
    ) -> Result<Vec<SendCode>> {
        let scope = self.store.tenant(cx.tenant.id);
        let text = notice(e, &cx.username, &cx.tenant.name);
        let mut jobs = Vec::new();
        for (admin, email) in scope.users().admin_addresses(txn).await? {
            let Some(email) = email else { continue };
            jobs.push(
                scope
                    .deliveries()
                    .queue_notice(txn, admin, &email, &text)
                    .await?,
            );
        }
        Ok(jobs)
    }

    /// `GET /v1/escalations/{id}` (support staff).
    pub async fn get(&self, id: Uuid) -> Result<Escalation> {
        self.load(id, None).await
    }

    /// `GET /v1/tenants/{company}/escalations`: the practice's escalations, newest first;
    /// the cursor is the id of the last one on the previous page.
    pub async fn of_practice(
        &self,
        tenant: &Tenant,
        status: Option<EscalationStatus>,
        limit: u64,
        cursor: Option<Uuid>,
    ) -> Result<Page<Escalation>> {
        let rows = self.store.tenant(tenant.id).escalations();
        self.lapse_due(&rows, None, None).await?;
        rows.page(status, limit, cursor).await
    }

    /// Records a decision on a pending escalation.
    async fn decide(
        &self,
        e: &Escalation,
        decider: &Principal,
        approve: bool,
        meta: &RequestMeta,
        (by, two_person_rule): (By, Option<bool>),
    ) -> Result<Escalation> {
        let now = self.store.clock().now();
        let (status, expires_at) = if approve {
            (EscalationStatus::Approved, rules::approved_until(now))
        } else {
            (EscalationStatus::Denied, e.expires_at)
        };
        let cx = self.audit_context(e).await?;
        let txn = self.store.begin_write().await?;
        let decided = self
            .store
            .tenant(e.tenant_id)
            .escalations()
            .decide(
                &txn,
                e.id,
                Decision {
                    status,
                    by: (decider.user.id, &decider.user.username),
                    at: now,
                    expires_at,
                },
            )
            .await?;
        if !decided {
            return Err(
                DomainError::Conflict("the escalation was decided meanwhile".into()).into(),
            );
        }
        let details = |escalation| {
            let decided = Decided {
                escalation,
                by,
                two_person_rule,
            };
            if approve {
                Details::EscalationApproved(decided)
            } else {
                Details::EscalationDenied(decided)
            }
        };
        self.audit_both(&txn, (e, &cx), actor_of(decider), meta, details)
            .await?;
        txn.commit().await?;
        self.load(e.id, None).await
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
        let e = self.load(id, Some(tenant.id)).await?;
        // A decision either way is a credential action (M11).
        crate::require_step_up(self.store, admin)?;
        rules::practice_may_decide(e.status, e.user_id, admin.user.id.0)?;
        self.decide(
            &e,
            admin,
            approve,
            meta,
            (By::Role(Role::PracticeAdmin), None),
        )
        .await
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
        let e = self.load(id, None).await?;
        crate::require_step_up(self.store, p)?;
        let users = self.store.tenant(e.tenant_id).users();
        let others = users.other_active_admins(UserId(e.user_id));
        rules::support_may_approve(e.status, e.requested_by, p.user.id.0, others).await?;
        self.decide(
            &e,
            p,
            true,
            meta,
            (By::Role(Role::SupportAdmin), Some(true)),
        )
        .await
    }

    /// `POST /v1/escalations/{id}/execute` (support staff): does the approved action,
    /// once, within the window. `reset_password` takes the temporary password (the user
    /// must change it at the next sign-in); the other actions take none.
    pub async fn execute(
        &self,
        p: &Principal,
        id: Uuid,
        temporary_password: Option<SecretString>,
        meta: &RequestMeta,
    ) -> Result<Escalation> {
        let e = self.load(id, None).await?;
        rules::ready_to_execute(e.status, e.action, temporary_password.is_some())?;
        let tenant = self.tenant(e.tenant_id).await?;
        if tenant.status == gatehouse_store::TenantStatus::Suspended {
            return Err(DomainError::Conflict("the practice is suspended".into()).into());
        }
        // Claim the execution first: of two concurrent calls, one wins.
        let rows = self.store.tenant(e.tenant_id).escalations();
        let now = self.store.clock().now();
        if !rows.claim_execution(e.id, p.user.id, now).await? {
            return Err(DomainError::EscalationNotApproved(
                "This escalation was executed or expired meanwhile.".into(),
            )
            .into());
        }
        let user = UserRef::Id(e.user_id);
        let actor = actor_of(p);
        let done = match (e.action, temporary_password) {
            (EscalationAction::Unlock, _) => crate::admin::Admin { store: self.store }
                .unlock_as(actor.clone(), &tenant, &user, meta, Some(e.id))
                .await
                .map(|_| ()),
            (EscalationAction::ResetMfa, _) => {
                crate::mfa::Mfa { store: self.store }
                    .reset_mfa_as(actor.clone(), &tenant, &user, meta)
                    .await
            }
            (EscalationAction::ResetPassword, Some(pw)) => {
                let by = (actor.clone(), PasswordVia::Escalation);
                crate::admin::Admin { store: self.store }
                    .set_temporary_password(by, &tenant, &user, pw, meta)
                    .await
            }
            (EscalationAction::ResetPassword, None) => {
                Err(Error::Internal("checked by ready_to_execute".into()))
            }
        };
        if let Err(err) = done {
            // Not done: the approval stands for another try within its window.
            rows.release_execution(e.id).await?;
            return Err(err);
        }
        let cx = self.audit_context(&e).await?;
        let txn = self.store.begin_write().await?;
        self.audit_both(&txn, (&e, &cx), actor, meta, |escalation| {
            Details::EscalationExecuted { escalation }
        })
        .await?;
        txn.commit().await?;
        self.load(e.id, None).await
    }
}
