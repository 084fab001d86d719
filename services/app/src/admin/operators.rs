//! Operator accounts (S4): no single operator account can satisfy the two-person rule
//! alone. A new operator account, or one given `support_admin`, waits inactive until a
//! support admin other than the one who created or promoted it approves it, after step-up.
//! `gatehouse bootstrap` alone makes the first support admin, active at once.

use super::Admin;
use crate::{Principal, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Actor;
use gatehouse_domain::audit::details::{ApprovedVia, Details};
use gatehouse_domain::ids::Username;
use gatehouse_domain::role::Role;
use gatehouse_store::User;
use gatehouse_store::audit::{actor_of, event, user_target};
use gatehouse_store::scope::UserRef;

fn not_waiting() -> DomainError {
    DomainError::Conflict("This account is not waiting for approval.".into())
}

impl Admin<'_> {
    /// `POST /v1/tenants/{operator}/users/{user_id}/approve`: a support admin (step-up)
    /// other than the one who created or promoted the account activates it.
    pub async fn approve_user(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<User> {
        // Practices have no accounts waiting: the path is the operator tenant's alone.
        if !tenant.is_operator {
            return Err(DomainError::NotFound.into());
        }
        if actor.user.role != Role::SupportAdmin || actor.tenant.id != tenant.id {
            return Err(
                DomainError::Forbidden("Only a support admin approves accounts.".into()).into(),
            );
        }
        crate::require_step_up(self.store, actor)?;
        let u = self.user(tenant, user).await?;
        if !u.pending_approval {
            return Err(not_waiting().into());
        }
        if u.approval_requested_by == Some(actor.user.id) || u.id == actor.user.id {
            return Err(DomainError::Forbidden(
                "Two-person rule: a support admin other than the one who created or promoted this account must approve it."
                    .into(),
            )
            .into());
        }
        self.activate_pending(
            tenant,
            &u,
            (actor_of(actor), ApprovedVia::SupportAdmin),
            meta,
        )
        .await
    }

    /// `gatehouse approve-operator`: the deployment's own operator, on the server, approves
    /// a waiting operator account. This is how a deployment gets its second support admin
    /// (bootstrap makes only the first, and one support admin cannot approve an account
    /// they created): whoever runs it holds the deployment's database and key, a second
    /// person apart from the support admin who asked in the API. Audited as `user.approved`
    /// by the system.
    pub async fn approve_operator_from_server(&self, username: &str) -> Result<User> {
        let company = self.store.config().operator_company.clone();
        let tenant = self
            .store
            .find_tenant(&company)
            .await?
            .ok_or(DomainError::NotFound)?;
        let name = Username::parse(username)?;
        let u = self.user(&tenant, &UserRef::Username(name.lower())).await?;
        if !u.pending_approval {
            return Err(not_waiting().into());
        }
        let meta = RequestMeta::default();
        self.activate_pending(&tenant, &u, (Actor::system(), ApprovedVia::Server), &meta)
            .await
    }

    /// Activates a waiting operator account, once (two approvals racing make one event).
    async fn activate_pending(
        &self,
        tenant: &Tenant,
        u: &User,
        (actor, via): (Actor, ApprovedVia),
        meta: &RequestMeta,
    ) -> Result<User> {
        let scope = self.store.tenant(tenant.id);
        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        if !scope.users().activate_pending(&txn, u.id, now).await? {
            return Err(not_waiting().into());
        }
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor,
                    Some(user_target(u.id, &u.username)),
                    meta,
                    Details::UserApproved {
                        role: u.role,
                        requested_by: u.approval_requested_by.map(|id| id.0),
                        via,
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        self.store.forget_user_sessions(u.id);
        scope.users().get(&UserRef::Id(u.id.0)).await
    }
}
