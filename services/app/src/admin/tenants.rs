//! Practices as the vendor's support admins run them (S3): provisioning one with its
//! first practice admin, suspending and reactivating it; and a practice's settings as
//! its admins (or support) change them (T1). Each is audited in the practice's log and,
//! for the vendor's own actions, in the operator's.

use super::Admin;
use crate::{Error, Principal, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::FieldError;
use gatehouse_domain::audit::Details;
use gatehouse_domain::audit::details::TenantMoved;
use gatehouse_domain::ids::CompanyId;
use gatehouse_domain::names::display_name;
use gatehouse_domain::role::Role;
use gatehouse_domain::settings::{SettingsPatch, TenantSettings, parse_timezone};
use gatehouse_domain::validation::Collector;
use gatehouse_store::audit::{actor_of, event, tenant_target, user_target};
use gatehouse_store::scope::UserRef;
use gatehouse_store::users::NewUser;
use gatehouse_store::{TenantStatus, User};

/// `POST /v1/tenants`: a practice to provision, with its first practice admin.
#[derive(Debug)]
pub struct NewTenant {
    pub company: String,
    pub name: String,
    pub timezone: Option<String>,
    pub admin: NewUser,
}

impl Admin<'_> {
    /// `POST /v1/tenants` (support admin): provisions a practice and its first practice
    /// admin, who must change the temporary password at first sign-in (S3).
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
        if company.as_ref() == Some(&self.store.config().operator_company) {
            c.push(FieldError::new(
                "company",
                "this company id is reserved for the operator",
            ));
        }
        // The first admin is validated against the settings the new tenant will have.
        let admin = match new.admin.parse(&TenantSettings::default(), false) {
            Ok(a) => Some(a),
            Err(Error::Domain(DomainError::PasswordPolicy(v))) => {
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
            Err(Error::Domain(DomainError::Validation(v))) => {
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
            return Err(Error::Internal(
                "validation passed with missing fields".into(),
            ));
        };
        admin.role = Role::PracticeAdmin;
        let hash = self.store.hash_password(new.admin.password).await?;
        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        let tenant = self
            .store
            .create_tenant(&txn, &company, name, tz, false)
            .await?;
        let scope = self.store.tenant(tenant.id);
        let user = scope.users().create(&txn, &admin, hash, None, now).await?;
        let by = actor_of(actor);
        let created = || {
            event(
                by.clone(),
                Some(tenant_target(&tenant)),
                meta,
                Details::TenantCreated {
                    name: tenant.name.clone(),
                },
            )
        };
        scope.audit().append_in(&txn, created()).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    by.clone(),
                    Some(user_target(user.id, &user.username)),
                    meta,
                    Details::UserCreated {
                        role: Role::PracticeAdmin,
                        groups: None,
                        pending_approval: None,
                        via: None,
                    },
                ),
            )
            .await?;
        // The vendor's own log records what its staff provisioned.
        self.store
            .tenant(actor.tenant.id)
            .audit()
            .append_in(&txn, created())
            .await?;
        txn.commit().await?;
        let user = scope.users().get(&UserRef::Id(user.id.0)).await?;
        Ok((tenant, user))
    }

    /// `PATCH .../settings`: applies a settings patch (all fields validated, all problems
    /// reported at once); one that weakens a defence needs a step-up (M11).
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
            crate::require_step_up(self.store, actor)?;
        }
        let txn = self.store.begin_write().await?;
        // Re-read under the row lock, so two concurrent patches cannot lose each other's
        // fields.
        let current = self.store.take_tenant(&txn, tenant.id).await?;
        let (settings, tz) = patch.apply(&current.settings, current.is_operator)?;
        let saved = self
            .store
            .save_settings(&txn, tenant.id, &settings, tz)
            .await?;
        self.store
            .tenant(tenant.id)
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(tenant_target(tenant)),
                    meta,
                    Details::TenantSettingsChanged { changed },
                ),
            )
            .await?;
        txn.commit().await?;
        self.store.forget_tenant_sessions(tenant.id);
        Ok(saved)
    }

    /// `POST /v1/tenants/{company}/suspend|reactivate` (support admin): moves a practice
    /// to `status`. While suspended nobody of it signs in, and suspension ends every
    /// session of it at once, in the database and in the session cache of every API
    /// process; reactivating lets its users sign in again, and the sessions ended stay
    /// ended. `NotFound` for an unknown company, `Conflict` when it is already in that
    /// state or is the operator tenant (whose suspension would lock the vendor's own staff
    /// out). Audited in the practice's log and in the operator's.
    pub async fn set_tenant_status(
        &self,
        actor: &Principal,
        company: &CompanyId,
        status: TenantStatus,
        meta: &RequestMeta,
    ) -> Result<Tenant> {
        let tenant = self
            .store
            .find_tenant(company)
            .await?
            .ok_or(DomainError::NotFound)?;
        if tenant.is_operator {
            return Err(DomainError::Conflict(
                "the operator tenant cannot be suspended or reactivated".into(),
            )
            .into());
        }
        let from = match status {
            TenantStatus::Suspended => TenantStatus::Active,
            TenantStatus::Active => TenantStatus::Suspended,
        };
        let scope = self.store.tenant(tenant.id);
        let txn = self.store.begin_write().await?;
        // Conditional on the current state, so that of two concurrent calls one conflicts.
        if !self
            .store
            .move_tenant_status(&txn, tenant.id, (from, status))
            .await?
        {
            return Err(DomainError::Conflict(format!(
                "the practice is already {}",
                status.as_str()
            ))
            .into());
        }
        let sessions_ended = match status {
            TenantStatus::Suspended => scope.revoke_all_sessions(&*txn).await?,
            TenantStatus::Active => 0,
        };
        let moved = TenantMoved {
            status,
            sessions_ended,
        };
        let details = match status {
            TenantStatus::Suspended => Details::TenantSuspended(moved),
            TenantStatus::Active => Details::TenantReactivated(moved),
        };
        let by = actor_of(actor);
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    by.clone(),
                    Some(tenant_target(&tenant)),
                    meta,
                    details.clone(),
                ),
            )
            .await?;
        // The vendor's own log records what its staff did to a practice.
        self.store
            .tenant(actor.tenant.id)
            .audit()
            .append_in(&txn, event(by, Some(tenant_target(&tenant)), meta, details))
            .await?;
        txn.commit().await?;
        // After the commit: a session read from the database now finds it ended.
        self.store.forget_tenant_sessions(tenant.id);
        Ok(self
            .store
            .tenant_by_id(tenant.id)
            .await?
            .ok_or(DomainError::NotFound)?)
    }
}
