//! A practice admin's actions on one user (T3, T4, P3, P4): edit, deactivate and
//! reactivate, unlock, set a temporary password, copy. Credential actions (unlock,
//! password reset, role change) need a recent second factor (M11); escalations (S2)
//! reach the same operations through `*_as` without it, with support as the actor.

use crate::audit::event;
use crate::audit::{actor_of, user_target};
use crate::entities::{trusted_networks, users};
use crate::records::{Principal, Tenant, User};
use crate::scope::UserRef;
use crate::users::{NewUser, PasswordVia, approval_by};
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::{Action, Actor};
use gatehouse_domain::ids::{EmailAddress, PhoneE164, UserId};
use gatehouse_domain::names::person_name;
use gatehouse_domain::password::check_policy;
use gatehouse_domain::role::Role;
use gatehouse_domain::validation::Collector;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

/// `PATCH .../users/{user_id}`: each field present is changed; `Some(None)` clears a
/// contact.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub role: Option<String>,
    pub active: Option<bool>,
}

/// `POST .../users/{user_id}/copy`: what the copy gets of its own (T4).
#[derive(Debug)]
pub struct UserCopy {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password: SecretString,
}

/// A patch checked against the tenant's rules: `Some` means "set to".
struct ParsedPatch {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<Option<EmailAddress>>,
    phone: Option<Option<PhoneE164>>,
    role: Option<Role>,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl UserPatch {
    /// Every problem at once, as for a new user.
    fn parse(&self, is_operator: bool) -> Result<ParsedPatch> {
        let mut c = Collector::new();
        let first_name = self
            .first_name
            .as_deref()
            .map(|n| c.take(person_name("first_name", n)));
        let last_name = self
            .last_name
            .as_deref()
            .map(|n| c.take(person_name("last_name", n)));
        let email = self.email.as_ref().map(|e| match blank(e) {
            None => Some(None),
            Some(e) => c.take(EmailAddress::parse(e)).map(Some),
        });
        let phone = self.phone.as_ref().map(|p| match blank(p) {
            None => Some(None),
            Some(p) => c.take(PhoneE164::parse(p)).map(Some),
        });
        let role = self
            .role
            .as_deref()
            .map(|r| c.take(Role::parse(r).and_then(|r| r.check_for_tenant(is_operator))));
        c.finish()?;
        // After `finish`, every field given parsed: `flatten` only drops absent ones.
        Ok(ParsedPatch {
            first_name: first_name.flatten(),
            last_name: last_name.flatten(),
            email: email.flatten(),
            phone: phone.flatten(),
            role: role.flatten(),
        })
    }
}

impl Store {
    /// `PATCH .../users/{user_id}`: names, contacts, role and the active flag. A changed
    /// email or phone loses its proof (M10: it is verified again before codes go to it);
    /// a role change needs step-up; deactivation ends the user's sessions and remembered
    /// devices at once (T3). Admins cannot deactivate themselves or change their own role,
    /// so a practice always keeps the admin who is acting.
    pub async fn update_user(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        patch: UserPatch,
        meta: &RequestMeta,
    ) -> Result<User> {
        let parsed = patch.parse(tenant.is_operator)?;
        let scope = self.tenant(tenant.id);
        let m = scope
            .users()
            .find_model(&self.inner.db, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        let id = UserId(m.id);
        let current_role = Role::parse(&m.role)
            .map_err(|_| crate::error::StoreError::Corrupt(format!("user {}: role", m.id)))?;
        let new_role = parsed.role.filter(|r| *r != current_role);
        // S4: a support role gained waits, inactive, for another support admin's approval.
        let pending_by = new_role.and_then(|r| approval_by(actor, r, Some(current_role)));
        let deactivate = patch.active == Some(false) && m.active;
        let reactivate = patch.active == Some(true) && !m.active && pending_by.is_none();
        if id == actor.user.id && (new_role.is_some() || deactivate) {
            return Err(DomainError::Conflict(
                "You cannot change your own role or deactivate yourself; ask another administrator."
                    .into(),
            )
            .into());
        }
        if reactivate && m.pending_approval {
            return Err(DomainError::Conflict(
                "This account waits for approval by a support admin other than the one who created or promoted it."
                    .into(),
            )
            .into());
        }
        // Waiting for approval ends the account's sessions as deactivation does.
        let suspend = pending_by.is_some() && m.active;
        let same_text = |old: &Option<String>, new: Option<&str>| {
            old.as_deref().map(str::to_lowercase) == new.map(str::to_lowercase)
        };
        let email = parsed
            .email
            .filter(|e| !same_text(&m.email, e.as_ref().map(EmailAddress::as_str)));
        let phone = parsed
            .phone
            .filter(|p| !same_text(&m.phone, p.as_ref().map(PhoneE164::as_str)));
        // A role grants access; one's own email or phone is where one's codes go (M11).
        let own_contact = id == actor.user.id && (email.is_some() || phone.is_some());
        if new_role.is_some() || own_contact {
            self.require_step_up(actor)?;
        }
        let first_name = parsed.first_name.filter(|n| *n != m.first_name);
        let last_name = parsed.last_name.filter(|n| *n != m.last_name);

        let mut changed = Vec::new();
        let now = self.inner.clock.now();
        let mut q = users::Entity::update_many()
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::TenantId.eq(tenant.id.0))
            .filter(users::Column::Id.eq(m.id));
        if let Some(n) = first_name {
            q = q.col_expr(users::Column::FirstName, Expr::value(n));
            changed.push("first_name");
        }
        if let Some(n) = last_name {
            q = q.col_expr(users::Column::LastName, Expr::value(n));
            changed.push("last_name");
        }
        if let Some(e) = &email {
            q = q
                .col_expr(
                    users::Column::Email,
                    Expr::value(e.as_ref().map(|e| e.as_str().to_owned())),
                )
                .col_expr(users::Column::EmailVerified, Expr::value(false));
            changed.push("email");
        }
        if let Some(p) = &phone {
            q = q
                .col_expr(
                    users::Column::Phone,
                    Expr::value(p.as_ref().map(|p| p.as_str().to_owned())),
                )
                .col_expr(users::Column::PhoneVerified, Expr::value(false));
            changed.push("phone");
        }
        if let Some(r) = new_role {
            q = q.col_expr(users::Column::Role, Expr::value(r.as_str()));
            changed.push("role");
        }
        if deactivate || reactivate {
            q = q.col_expr(users::Column::Active, Expr::value(reactivate));
        }
        if let Some(by) = pending_by {
            q = q
                .col_expr(users::Column::Active, Expr::value(false))
                .col_expr(users::Column::PendingApproval, Expr::value(true))
                .col_expr(users::Column::ApprovalRequestedBy, Expr::value(Some(by.0)));
        }
        if changed.is_empty() && !deactivate && !reactivate {
            return scope.users().get(&UserRef::Id(m.id)).await;
        }

        let txn = self.inner.begin_write().await?;
        q.exec(&txn).await?;
        let target = || Some(user_target(id, &m.username));
        if !changed.is_empty() {
            let mut details = json!({ "fields": changed });
            if let Some(r) = new_role {
                details["role"] = json!({"from": current_role.as_str(), "to": r.as_str()});
            }
            if email.is_some() || phone.is_some() {
                details["reverification"] = json!(true);
            }
            if pending_by.is_some() {
                details["pending_approval"] = json!(true);
            }
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        Action::UserUpdated,
                        actor_of(actor),
                        target(),
                        meta,
                        details,
                    ),
                )
                .await?;
        }
        if deactivate || suspend {
            let sessions = scope.revoke_user_sessions(&txn, id, None).await?;
            let devices = scope.mfa().revoke_all_devices(&txn, id).await?;
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        Action::UserDeactivated,
                        actor_of(actor),
                        target(),
                        meta,
                        json!({"sessions_ended": sessions, "devices_revoked": devices,
                               "pending_approval": suspend}),
                    ),
                )
                .await?;
        }
        if reactivate {
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        Action::UserReactivated,
                        actor_of(actor),
                        target(),
                        meta,
                        json!({}),
                    ),
                )
                .await?;
        }
        txn.commit().await?;
        // Sessions carry the user's role, names and flags: every process reloads them.
        self.forget_user_sessions(id);
        scope.users().get(&UserRef::Id(m.id)).await
    }

    /// `POST .../users/{user_id}/unlock` (P4, step-up).
    pub async fn unlock_user(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<User> {
        self.require_step_up(actor)?;
        self.unlock_as(actor_of(actor), tenant, user, meta, None)
            .await
    }

    /// Clears the lock and the failed sign-in count; audits `user.unlocked` when the user
    /// was locked (with `escalation`, the escalation that asked for it).
    pub async fn unlock_as(
        &self,
        actor: Actor,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
        escalation: Option<Uuid>,
    ) -> Result<User> {
        let scope = self.tenant(tenant.id);
        let m = scope
            .users()
            .find_model(&self.inner.db, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        if m.locked || m.failed_logins != 0 || m.mfa_failures != 0 {
            let txn = self.inner.begin_write().await?;
            users::Entity::update_many()
                .col_expr(users::Column::Locked, Expr::value(false))
                .col_expr(users::Column::FailedLogins, Expr::value(0))
                .col_expr(users::Column::MfaFailures, Expr::value(0))
                .col_expr(
                    users::Column::UpdatedAt,
                    Expr::value(self.inner.clock.now()),
                )
                .filter(users::Column::TenantId.eq(tenant.id.0))
                .filter(users::Column::Id.eq(m.id))
                .exec(&txn)
                .await?;
            if m.locked {
                let mut details =
                    json!({"failed_logins": m.failed_logins, "mfa_failures": m.mfa_failures});
                if let Some(e) = escalation {
                    details["escalation_id"] = json!(e.to_string());
                }
                scope
                    .audit()
                    .append_in(
                        &txn,
                        event(
                            Action::UserUnlocked,
                            actor,
                            Some(user_target(UserId(m.id), &m.username)),
                            meta,
                            details,
                        ),
                    )
                    .await?;
            }
            txn.commit().await?;
            self.forget_user_sessions(UserId(m.id));
        }
        scope.users().get(&UserRef::Id(m.id)).await
    }

    /// `POST .../users/{user_id}/password` (P3, step-up): a temporary password the user
    /// must change at the next sign-in; their sessions and remembered devices end.
    pub async fn reset_password(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        temporary: SecretString,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.require_step_up(actor)?;
        self.set_temporary_password(
            actor_of(actor),
            tenant,
            user,
            temporary,
            meta,
            PasswordVia::AdminReset,
        )
        .await
    }

    /// Checks `temporary` against the practice's policy and stores it as temporary.
    pub async fn set_temporary_password(
        &self,
        actor: Actor,
        tenant: &Tenant,
        user: &UserRef,
        temporary: SecretString,
        meta: &RequestMeta,
        via: PasswordVia,
    ) -> Result<()> {
        let m = self
            .tenant(tenant.id)
            .users()
            .find_model(&self.inner.db, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        check_policy(
            &tenant.settings.password_policy,
            "temporary_password",
            &temporary,
            &m.username,
        )?;
        let hash = self.inner.hasher.hash(temporary).await?;
        self.replace_password(
            (tenant.id, UserId(m.id), &m.username),
            hash,
            None,
            actor,
            meta,
            via,
        )
        .await
    }

    /// `POST .../users/{user_id}/copy` (T4): a new user with the source's role, groups,
    /// MFA method and enrollment mode, login hours and per-user trusted networks, and its
    /// own username, names, contacts (unverified) and temporary password. Nothing of the
    /// source's credentials (authenticator, recovery codes, devices) is copied.
    pub async fn copy_user(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        source: &UserRef,
        copy: UserCopy,
        meta: &RequestMeta,
    ) -> Result<User> {
        let scope = self.tenant(tenant.id);
        let db = &self.inner.db;
        let src = scope.users().get(source).await?;
        let new = NewUser {
            username: copy.username,
            first_name: copy.first_name,
            last_name: copy.last_name,
            email: copy.email,
            phone: copy.phone,
            role: src.role.as_str().to_owned(),
            password: copy.password,
            groups: src.groups.iter().map(|g| g.id.0).collect(),
        };
        let parsed = new.parse(&tenant.settings, tenant.is_operator)?;
        if parsed.role.is_privileged() {
            self.require_step_up(actor)?;
        }
        let approval_by = approval_by(actor, parsed.role, None);
        let windows = scope.users().windows_of(db, src.id.0).await?;
        let networks: Vec<_> = scope
            .mfa()
            .networks()
            .await?
            .into_iter()
            .filter(|n| n.user_id == Some(src.id.0))
            .collect();
        let hash = self.inner.hasher.hash(new.password).await?;
        let now = self.inner.clock.now();
        let txn = self.inner.begin_write().await?;
        let m = scope
            .users()
            .insert(&txn, &parsed, hash, true, approval_by, now)
            .await?;
        let id = UserId(m.id);
        scope
            .users()
            .set_mfa(&txn, id, src.mfa_method, Some(src.mfa_enrollment))
            .await?;
        scope
            .users()
            .add_to_groups(&txn, m.id, &new.groups, now)
            .await?;
        scope.users().insert_windows(&txn, m.id, &windows).await?;
        if !networks.is_empty() {
            trusted_networks::Entity::insert_many(networks.iter().map(|n| {
                trusted_networks::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    tenant_id: Set(tenant.id.0),
                    user_id: Set(Some(m.id)),
                    cidr: Set(n.cidr.to_string()),
                    description: Set(n.description.clone()),
                    created_by: Set(Some(actor.user.id.0)),
                    created_at: Set(now),
                }
            }))
            .exec_without_returning(&txn)
            .await?;
        }
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::UserCopied,
                    actor_of(actor),
                    Some(user_target(id, &m.username)),
                    meta,
                    json!({
                        "from": {"id": src.id.to_string(), "username": src.username},
                        "role": src.role.as_str(),
                        "groups": new.groups.len(),
                        "login_hours": windows.len(),
                        "trusted_networks": networks.len(),
                        "mfa_method": src.mfa_method.as_str(),
                        "mfa_enrollment": src.mfa_enrollment.as_str(),
                        "pending_approval": approval_by.is_some(),
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        scope.users().get(&UserRef::Id(m.id)).await
    }
}
