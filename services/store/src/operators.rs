//! Operator accounts (S4): no single operator account can satisfy the two-person rule
//! alone. A new operator account, or one given `support_admin`, waits inactive until a
//! support admin other than the one who created or promoted it approves it, after step-up.
//! `gatehouse bootstrap` alone makes the first support admin, active at once.

use crate::audit::event;
use crate::entities::users;
use crate::records::{Principal, Tenant, User};
use crate::scope::UserRef;
use crate::users::{actor_of, user_target};
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Action;
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
        let txn = crate::begin_write(&self.inner.db).await?;
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
                    actor_of(actor),
                    Some(user_target(UserId(m.id), &m.username)),
                    meta,
                    json!({
                        "role": m.role,
                        "requested_by": m.approval_requested_by.map(|u| u.to_string()),
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        self.forget_user_sessions(UserId(m.id));
        scope.users().get(&UserRef::Id(m.id)).await
    }
}
