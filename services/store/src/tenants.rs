//! Tenants: provisioning by the vendor (S3), lookup, settings (T1).

use crate::audit::{actor_of, user_target};
use crate::audit::{event, support_read_event, tenant_target};
use crate::entities::tenants;
use crate::error::StoreError;
use crate::records::{Page, Principal, Tenant, TenantStatus, User};
use crate::scope::UserRef;
use crate::users::NewUser;
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::{Action, Actor, Target};
use gatehouse_domain::ids::{CompanyId, TenantId, UserId};
use gatehouse_domain::names::display_name;
use gatehouse_domain::settings::{SettingsPatch, TenantSettings, parse_timezone};
use gatehouse_domain::validation::Collector;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

/// A practice to provision, with its first practice admin.
#[derive(Debug)]
pub struct NewTenant {
    pub company: String,
    pub name: String,
    pub timezone: Option<String>,
    pub admin: NewUser,
}

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

    /// Provisions a practice and its first practice admin, who must change the
    /// temporary password at first sign-in (S3).
    pub async fn provision_tenant(
        &self,
        actor: &Principal,
        new: NewTenant,
        meta: &RequestMeta,
    ) -> Result<(Tenant, User)> {
        let mut c = Collector::new();
        let company = c.take(CompanyId::parse(&new.company));
        let name = c.take(display_name("name", &new.name));
        let tz = match new.timezone.as_deref() {
            None => Some(chrono_tz::America::New_York),
            Some(t) => c.take(parse_timezone("timezone", t)),
        };
        if company.as_ref() == Some(&self.inner.config.operator_company) {
            c.push(gatehouse_domain::FieldError::new(
                "company",
                "this company id is reserved for the operator",
            ));
        }
        // The first admin is validated against the settings the new tenant will have.
        let admin = match new.admin.parse(&TenantSettings::default(), false) {
            Ok(a) => Some(a),
            Err(StoreError::Domain(DomainError::PasswordPolicy(v))) => {
                let v: Vec<_> = v.into_iter().map(|f| f.prefixed("admin")).collect();
                // Only the admin's password is wrong: that is a policy answer.
                c.finish().map_err(|e| match e {
                    DomainError::Validation(mut all) => {
                        all.extend(v.clone());
                        DomainError::Validation(all)
                    }
                    other => other,
                })?;
                return Err(DomainError::PasswordPolicy(v).into());
            }
            Err(StoreError::Domain(DomainError::Validation(v))) => {
                for f in v {
                    c.push(f.prefixed("admin"));
                }
                None
            }
            Err(other) => return Err(other),
        };
        c.finish()?;
        let (Some(company), Some(name), Some(tz), Some(mut admin)) = (company, name, tz, admin)
        else {
            return Err(StoreError::Internal(
                "validation passed with missing fields".into(),
            ));
        };
        admin.role = gatehouse_domain::role::Role::PracticeAdmin;
        let hash = self.inner.hasher.hash(new.admin.password).await?;
        let now = self.inner.clock.now();
        let txn = self.inner.begin_write().await?;
        let tenant = self.insert_tenant(&txn, &company, name, tz, false).await?;
        let scope = self.tenant(tenant.id);
        let user = scope
            .users()
            .insert(&txn, &admin, hash, true, None, now)
            .await?;
        let by = actor_of(actor);
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::TenantCreated,
                    by.clone(),
                    Some(tenant_target(&tenant)),
                    meta,
                    json!({"name": tenant.name}),
                ),
            )
            .await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::UserCreated,
                    by.clone(),
                    Some(user_target(UserId(user.id), &user.username)),
                    meta,
                    json!({"role": "practice_admin"}),
                ),
            )
            .await?;
        // The vendor's own log records what its staff provisioned.
        self.tenant(actor.tenant.id)
            .audit()
            .append_in(
                &txn,
                event(
                    Action::TenantCreated,
                    by,
                    Some(tenant_target(&tenant)),
                    meta,
                    json!({"name": tenant.name}),
                ),
            )
            .await?;
        txn.commit().await?;
        let user = scope.users().get(&UserRef::Id(user.id)).await?;
        Ok((tenant, user))
    }

    /// Applies a settings patch (all fields validated, all problems reported at once).
    pub async fn update_settings(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        patch: SettingsPatch,
        meta: &RequestMeta,
    ) -> Result<Tenant> {
        let changed: Vec<&str> = [
            ("mfa_policy", patch.mfa_policy.is_some()),
            ("allowed_methods", patch.allowed_methods.is_some()),
            ("code_ttl_seconds", patch.code_ttl_seconds.is_some()),
            (
                "remember_device_hours",
                patch.remember_device_hours.is_some(),
            ),
            ("lockout_threshold", patch.lockout_threshold.is_some()),
            ("timezone", patch.timezone.is_some()),
            ("password_policy", patch.password_policy.is_some()),
            ("self_service_mfa", patch.self_service_mfa.is_some()),
            ("sms_country_codes", patch.sms_country_codes.is_some()),
            ("sms_daily_limit", patch.sms_daily_limit.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if patch.touches_a_defence() {
            self.require_step_up(actor)?;
        }
        let txn = self.inner.begin_write().await?;
        // Re-read under the row lock (the UPDATE below runs first on SQLite too),
        // so two concurrent patches cannot lose each other's fields.
        let backend = txn.get_database_backend();
        txn.execute_raw(crate::sql::stmt(
            backend,
            "UPDATE tenants SET updated_at = updated_at WHERE id = $1",
            vec![tenant.id.0.into()],
        ))
        .await?;
        let model = tenants::Entity::find_by_id(tenant.id.0)
            .one(&txn)
            .await?
            .ok_or(DomainError::NotFound)?;
        let current = Tenant::try_from(model.clone())?;
        let (settings, tz) = patch.apply(&current.settings, current.is_operator)?;
        let mut row: tenants::ActiveModel = model.into();
        row.settings =
            Set(serde_json::to_string(&settings)
                .map_err(|e| StoreError::Internal(e.to_string()))?);
        if let Some(tz) = tz {
            row.timezone = Set(tz.name().to_owned());
        }
        row.updated_at = Set(self.inner.clock.now());
        let m = row.update(&txn).await?;
        self.tenant(tenant.id)
            .audit()
            .append_in(
                &txn,
                event(
                    Action::TenantSettingsChanged,
                    actor_of(actor),
                    Some(tenant_target(tenant)),
                    meta,
                    json!({"changed": changed}),
                ),
            )
            .await?;
        txn.commit().await?;
        self.inner.cache.invalidate_tenant(tenant.id);
        Tenant::try_from(m)
    }

    /// Records that the vendor's support staff read a tenant's data (S1): the practice
    /// sees in its own log who from the vendor looked, and at what.
    pub async fn record_support_read(
        &self,
        p: &Principal,
        tenant: &Tenant,
        path: &str,
        query: &str,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.tenant(tenant.id)
            .audit()
            .record(support_read_event(p, tenant, path, query, meta))
            .await
    }

    /// Records a `support.read` in the log of every practice a search across practices
    /// answered (S1), in order of their names. They are kept aside for the chains
    /// ([`crate::audit::keep_aside`]), so a search locks no practice's chain head and two
    /// agents searching at once for similar terms do not queue on each other; the
    /// background chainer and any read of a practice's log put them in place.
    pub(crate) async fn record_support_reads<'t>(
        &self,
        p: &Principal,
        tenants: impl IntoIterator<Item = &'t Tenant>,
        path: &str,
        query: &str,
        meta: &RequestMeta,
    ) -> Result<()> {
        let mut shown: Vec<&Tenant> = tenants.into_iter().collect();
        shown.sort_by(|a, b| a.company.as_str().cmp(b.company.as_str()));
        let reads: Vec<_> = shown
            .into_iter()
            .map(|t| (t.id, support_read_event(p, t, path, query, meta)))
            .collect();
        crate::audit::keep_aside(&self.inner, self.inner.clock.now(), reads).await
    }

    /// Records a system event in a tenant's log (bootstrap, seeding).
    pub(crate) async fn system_event(
        &self,
        tenant: &Tenant,
        action: Action,
        target: Option<Target>,
        details: serde_json::Value,
    ) -> Result<()> {
        self.tenant(tenant.id)
            .audit()
            .record(event(
                action,
                Actor::system(),
                target,
                &RequestMeta::default(),
                details,
            ))
            .await
    }
}

/// Whether the tenant may be used for sign-in.
pub fn ensure_active(t: &Tenant) -> Result<(), DomainError> {
    match t.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Suspended => Err(DomainError::TenantSuspended),
    }
}
