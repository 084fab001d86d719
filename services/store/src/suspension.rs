//! Suspending a practice (S3): while suspended nobody of it signs in (see
//! [`crate::tenants`]'s `ensure_active`), and suspension ends every session of it at once,
//! in the database and in the session cache of every API process. Reactivating lets its
//! users sign in again; the sessions ended stay ended.

use crate::audit::actor_of;
use crate::audit::event;
use crate::audit::tenant_target;
use crate::entities::tenants;
use crate::records::{Principal, Tenant, TenantStatus};
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Action;
use gatehouse_domain::ids::CompanyId;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

impl Store {
    /// Moves a practice to `status` (support_admin): `NotFound` for an unknown company,
    /// `Conflict` when it is already in that state or is the operator tenant (whose
    /// suspension would lock the vendor's own staff out). Audited in the practice's log
    /// and in the operator's.
    pub async fn set_tenant_status(
        &self,
        actor: &Principal,
        company: &CompanyId,
        status: TenantStatus,
        meta: &RequestMeta,
    ) -> Result<Tenant> {
        let tenant = self
            .find_tenant(company)
            .await?
            .ok_or(DomainError::NotFound)?;
        if tenant.is_operator {
            return Err(DomainError::Conflict(
                "the operator tenant cannot be suspended or reactivated".into(),
            )
            .into());
        }
        let (from, action) = match status {
            TenantStatus::Suspended => (TenantStatus::Active, Action::TenantSuspended),
            TenantStatus::Active => (TenantStatus::Suspended, Action::TenantReactivated),
        };
        let now = self.inner.clock.now();
        let scope = self.tenant(tenant.id);
        let txn = self.inner.begin_write().await?;
        // Conditional on the current state, so that of two concurrent calls one conflicts.
        let changed = tenants::Entity::update_many()
            .col_expr(tenants::Column::Status, Expr::value(status.as_str()))
            .col_expr(tenants::Column::UpdatedAt, Expr::value(now))
            .filter(tenants::Column::Id.eq(tenant.id.0))
            .filter(tenants::Column::Status.eq(from.as_str()))
            .exec(&txn)
            .await?
            .rows_affected;
        if changed != 1 {
            return Err(DomainError::Conflict(format!(
                "the practice is already {}",
                status.as_str()
            ))
            .into());
        }
        let sessions_ended = match status {
            TenantStatus::Suspended => scope.revoke_all_sessions(&txn).await?,
            TenantStatus::Active => 0,
        };
        let details = json!({"status": status.as_str(), "sessions_ended": sessions_ended});
        let by = actor_of(actor);
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    action,
                    by.clone(),
                    Some(tenant_target(&tenant)),
                    meta,
                    details.clone(),
                ),
            )
            .await?;
        // The vendor's own log records what its staff did to a practice.
        self.tenant(actor.tenant.id)
            .audit()
            .append_in(
                &txn,
                event(action, by, Some(tenant_target(&tenant)), meta, details),
            )
            .await?;
        txn.commit().await?;
        // After the commit: a session read from the database now finds it ended.
        self.forget_tenant_sessions(tenant.id);
        let m = tenants::Entity::find_by_id(tenant.id.0)
            .one(&self.inner.db)
            .await?
            .ok_or(DomainError::NotFound)?;
        Tenant::try_from(m)
    }
}
