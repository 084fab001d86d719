//! Tenants: lookup, and the rows that provisioning (S3), settings (T1) and suspension
//! write (the use cases are gatehouse-app's `admin::tenants`).

use crate::entities::tenants;
use crate::error::StoreError;
use crate::records::{Page, Tenant, TenantStatus};
use crate::{Result, Store, WriteTxn};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::{CompanyId, TenantId};
use gatehouse_domain::settings::TenantSettings;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

impl Store {
    /// A tenant by company id.
    pub async fn find_tenant(&self, company: &CompanyId) -> Result<Option<Tenant>> {
        tenants::Entity::find()
            .filter(tenants::Column::Company.eq(company.as_str()))
            .one(&self.inner.db)
            .await?
            .map(Tenant::try_from)
            .transpose()
    }

    /// A tenant by id.
    pub async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>> {
        tenants::Entity::find_by_id(id.0)
            .one(&self.inner.db)
            .await?
            .map(Tenant::try_from)
            .transpose()
    }

    /// The vendor's own tenant.
    pub async fn operator_tenant_id(&self) -> Result<TenantId> {
        let id: Option<Uuid> = tenants::Entity::find()
            .select_only()
            .column(tenants::Column::Id)
            .filter(tenants::Column::IsOperator.eq(true))
            .into_tuple()
            .one(&self.inner.db)
            .await?;
        id.map(TenantId)
            .ok_or_else(|| StoreError::Internal("no operator tenant".into()))
    }

    /// All tenants ordered by company id; the cursor is the last company id of the previous page.
    pub async fn list_tenants(&self, limit: u64, cursor: Option<&str>) -> Result<Page<Tenant>> {
        let mut q = tenants::Entity::find();
        if let Some(c) = cursor {
            q = q.filter(tenants::Column::Company.gt(c));
        }
        let mut rows = q
            .order_by_asc(tenants::Column::Company)
            .limit(limit + 1)
            .all(&self.inner.db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.company.clone())
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(Tenant::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    /// Inserts a tenant row; a taken company id is a `Conflict`.
    pub(crate) async fn insert_tenant<C: ConnectionTrait>(
        &self,
        conn: &C,
        company: &CompanyId,
        name: String,
        timezone: chrono_tz::Tz,
        is_operator: bool,
    ) -> Result<Tenant> {
        let now = self.inner.clock.now();
        let settings = TenantSettings::default();
        let row = tenants::ActiveModel {
            id: Set(Uuid::new_v4()),
            company: Set(company.to_string()),
            name: Set(name),
            timezone: Set(timezone.name().to_owned()),
            status: Set(TenantStatus::Active.as_str().to_owned()),
            settings: Set(serde_json::to_string(&settings)
                .map_err(|e| StoreError::Internal(e.to_string()))?),
            is_operator: Set(is_operator),
            audit_head_seq: Set(0),
            audit_head_hash: Set(gatehouse_domain::audit::GENESIS_HASH.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let m = tenants::Entity::insert(row)
            .exec_with_returning(conn)
            .await
            .map_err(|e| {
                if StoreError::is_unique_violation(&e) {
                    DomainError::Conflict(format!("company id '{company}' is already taken")).into()
                } else {
                    StoreError::from(e)
                }
            })?;
        Tenant::try_from(m)
    }

    /// Stores a new tenant in `txn`: a practice, or the operator's own (`is_operator`);
    /// a taken company id is a `Conflict`.
    pub async fn create_tenant(
        &self,
        txn: &WriteTxn,
        company: &CompanyId,
        name: String,
        timezone: chrono_tz::Tz,
        is_operator: bool,
    ) -> Result<Tenant> {
        self.insert_tenant(&**txn, company, name, timezone, is_operator)
            .await
    }

    /// The practice as it is now, its row taken for the rest of `txn` (the `UPDATE`
    /// comes first on SQLite too): two concurrent changes of its settings queue instead
    /// of losing each other's fields.
    pub async fn take_tenant(&self, txn: &WriteTxn, id: TenantId) -> Result<Tenant> {
        let backend = txn.get_database_backend();
        txn.execute_raw(crate::sql::stmt(
            backend,
            "UPDATE tenants SET updated_at = updated_at WHERE id = $1",
            vec![id.0.into()],
        ))
        .await?;
        let m = tenants::Entity::find_by_id(id.0)
            .one(&**txn)
            .await?
            .ok_or(DomainError::NotFound)?;
        Tenant::try_from(m)
    }

    /// Stores a practice's settings (and time zone, if given) in `txn`.
    pub async fn save_settings(
        &self,
        txn: &WriteTxn,
        id: TenantId,
        settings: &TenantSettings,
        timezone: Option<chrono_tz::Tz>,
    ) -> Result<Tenant> {
        let m = tenants::Entity::find_by_id(id.0)
            .one(&**txn)
            .await?
            .ok_or(DomainError::NotFound)?;
        let mut row: tenants::ActiveModel = m.into();
        row.settings =
            Set(serde_json::to_string(settings).map_err(|e| StoreError::Internal(e.to_string()))?);
        if let Some(tz) = timezone {
            row.timezone = Set(tz.name().to_owned());
        }
        row.updated_at = Set(self.inner.clock.now());
        Tenant::try_from(row.update(&**txn).await?)
    }

    /// Moves a practice from status `from` to `to` in `txn`, if it is still in `from`
    /// (of two concurrent moves, one does it). Whether it moved.
    pub async fn move_tenant_status(
        &self,
        txn: &WriteTxn,
        id: TenantId,
        (from, to): (TenantStatus, TenantStatus),
    ) -> Result<bool> {
        use sea_orm::sea_query::Expr;
        let changed = tenants::Entity::update_many()
            .col_expr(tenants::Column::Status, Expr::value(to.as_str()))
            .col_expr(
                tenants::Column::UpdatedAt,
                Expr::value(self.inner.clock.now()),
            )
            .filter(tenants::Column::Id.eq(id.0))
            .filter(tenants::Column::Status.eq(from.as_str()))
            .exec(&**txn)
            .await?
            .rows_affected;
        Ok(changed == 1)
    }

    /// Appends events to the logs of several practices without taking their chains'
    /// heads: they are kept aside ([`crate::audit::keep_aside`]) and the background
    /// chainer (or any read of a practice's log) puts them in place. For reads across
    /// practices (S1), so that a search locks no practice's chain head and two agents
    /// searching at once for similar terms do not queue on each other.
    pub async fn keep_events_aside(
        &self,
        events: Vec<(TenantId, gatehouse_domain::audit::NewEvent)>,
    ) -> Result<()> {
        crate::audit::keep_aside(&self.inner, self.inner.clock.now(), events).await
    }
}
