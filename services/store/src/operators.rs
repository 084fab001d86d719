//! Operator accounts (S4): no single operator account can satisfy the two-person rule
//! alone. A new operator account, or one given `support_admin`, waits inactive until a
//! support admin other than the one who created or promoted it approves it, after step-up.
//! `gatehouse bootstrap` alone makes the first support admin, active at once.

use crate::audit::event;
use crate::audit::{actor_of, user_target};
use crate::entities::users;
use crate::records::{Principal, Tenant, User};
use crate::scope::UserRef;
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::{Action, Actor};
use gatehouse_domain::ids::UserId;
use gatehouse_domain::role::Role;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

impl Store {
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
        self.require_step_up(actor)?;
        let scope = self.tenant(tenant.id);
        let m = scope
            .users()
            .find_model(&self.inner.db, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        if !m.pending_approval {
            return Err(
                DomainError::Conflict("This account is not waiting for approval.".into()).into(),
            );
        }
        if m.approval_requested_by == Some(actor.user.id.0) || m.id == actor.user.id.0 {
            return Err(DomainError::Forbidden(
                "Two-person rule: a support admin other than the one who created or promoted this account must approve it."
                    .into(),
            )
            .into());
        }
        self.activate_pending(tenant, &m, actor_of(actor), "support_admin", meta)
            .await
    }

    /// `gatehouse approve-operator`: the deployment's own operator, on the server, approves
    /// a waiting operator account. This is how a deployment gets its second support admin
    /// (bootstrap makes only the first, and one support admin cannot approve an account
    /// they created): whoever runs it holds the deployment's database and key, a second
    /// person apart from the support admin who asked in the API. Audited as `user.approved`
    /// by the system.
    pub async fn approve_operator_from_server(&self, username: &str) -> Result<User> {
        let company = self.inner.config.operator_company.clone();
        let tenant = self
            .find_tenant(&company)
            .await?
            .ok_or(DomainError::NotFound)?;
        let name = gatehouse_domain::ids::Username::parse(username)?;
        let m = self
            .tenant(tenant.id)
            .users()
            .find_model(&self.inner.db, &UserRef::Username(name.lower()))
            .await?
            .ok_or(DomainError::NotFound)?;
        if !m.pending_approval {
            return Err(
                DomainError::Conflict("This account is not waiting for approval.".into()).into(),
            );
        }
        let meta = RequestMeta::default();
        self.activate_pending(&tenant, &m, Actor::system(), "server", &meta)
            .await
    }

    /// Activates a waiting operator account, once (two approvals racing make one event).
    async fn activate_pending(
        &self,
        tenant: &Tenant,
        m: &users::Model,
        actor: Actor,
        via: &str,
        meta: &RequestMeta,
    ) -> Result<User> {
        let scope = self.tenant(tenant.id);
        let txn = self.inner.begin_write().await?;
        // Only while it still waits, so two approvals racing make one event.
        let done = users::Entity::update_many()
            .col_expr(users::Column::Active, Expr::value(true))
            .col_expr(users::Column::PendingApproval, Expr::value(false))
            .col_expr(
                users::Column::ApprovalRequestedBy,
                Expr::value(Option::<uuid::Uuid>::None),
            )
            .col_expr(
                users::Column::UpdatedAt,
                Expr::value(self.inner.clock.now()),
            )
            .filter(users::Column::TenantId.eq(tenant.id.0))
            .filter(users::Column::Id.eq(m.id))
            .filter(users::Column::PendingApproval.eq(true))
            .exec(&txn)
            .await?
            .rows_affected;
        if done != 1 {
            return Err(
                DomainError::Conflict("This account is not waiting for approval.".into()).into(),
            );
        }
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::UserApproved,
                    actor,
                    Some(user_target(UserId(m.id), &m.username)),
                    meta,
                    json!({
                        "role": m.role,
                        "requested_by": m.approval_requested_by.map(|u| u.to_string()),
                        "via": via,
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        self.forget_user_sessions(UserId(m.id));
        scope.users().get(&UserRef::Id(m.id)).await
    }
}
