//! A practice admin's actions on the practice's users (T3, T4, P3, P4, P5): create,
//! edit, deactivate and reactivate, unlock, set a temporary password, copy, login hours,
//! and a password change for everyone. Credential actions (unlock, password reset, role
//! change, a privileged new user) need a recent second factor (M11); escalations (S2)
//! reach unlock and the password reset through `*_as` without it, with support as the
//! actor.

use super::Admin;
use crate::passwords::replace_password;
use crate::{Principal, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::details::{RoleChange, UserCopied, UserLabel, UserUpdate};
use gatehouse_domain::audit::{Actor, Details};
use gatehouse_domain::ids::{EmailAddress, PhoneE164, UserId};
use gatehouse_domain::login_hours::LoginWindow;
use gatehouse_domain::names::person_name;
use gatehouse_domain::password::check_policy;
use gatehouse_domain::role::Role;
use gatehouse_domain::validation::{Collector, Given};
use gatehouse_store::User;
use gatehouse_store::audit::{actor_of, event, tenant_target, user_target};
use gatehouse_store::scope::UserRef;
use gatehouse_store::users::{PasswordVia, UserChange};
use secrecy::SecretString;
use uuid::Uuid;

pub use gatehouse_store::users::NewUser;

/// `PATCH .../users/{user_id}`: each field present is changed; `Some(None)` clears a
/// contact.
#[derive(Debug, Default)]
pub struct UserPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    /// Read at the edge (an unknown name is that field's error).
    pub role: Option<Given<Role>>,
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
        let role = self.role.clone().map(|r| {
            c.given(r)
                .and_then(|r| c.take(r.check_for_tenant(is_operator)))
        });
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

/// S4: who must not approve an operator account given `role` (having had `from`, or new):
/// the admin acting now, when the account must wait for a second support admin.
fn approval_by(actor: &Principal, role: Role, from: Option<Role>) -> Option<UserId> {
    role.needs_second_approval(from).then_some(actor.user.id)
}

/// Whether an address or number given is the one already stored (case aside).
fn same_text(old: &Option<String>, new: Option<&str>) -> bool {
    old.as_deref().map(str::to_lowercase) == new.map(str::to_lowercase)
}

impl Admin<'_> {
    /// A user of the practice as stored now, or `NotFound`.
    pub(super) async fn user(&self, tenant: &Tenant, user: &UserRef) -> Result<User> {
        Ok(self
            .store
            .tenant(tenant.id)
            .users()
            .find(user)
            .await?
            .ok_or(DomainError::NotFound)?)
    }

    /// `POST .../users`: creates a user with a temporary password (P3:
    /// `must_change_password` is set).
    pub async fn create_user(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        new: NewUser,
        meta: &RequestMeta,
    ) -> Result<User> {
        let parsed = new.parse(&tenant.settings, tenant.is_operator)?;
        if parsed.role.is_privileged() {
            crate::require_step_up(self.store, actor)?;
        }
        let approval_by = approval_by(actor, parsed.role, None);
        let hash = self.store.hash_password(new.password).await?;
        let scope = self.store.tenant(tenant.id);
        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        let u = scope
            .users()
            .create(&txn, &parsed, hash, approval_by, now)
            .await?;
        scope
            .users()
            .add_to_groups(&*txn, u.id.0, &new.groups, now)
            .await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(user_target(u.id, &u.username)),
                    meta,
                    Details::UserCreated {
                        role: parsed.role,
                        groups: Some(new.groups.len() as u64),
                        pending_approval: Some(approval_by.is_some()),
                        via: None,
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        scope.users().get(&UserRef::Id(u.id.0)).await
    }

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
        let scope = self.store.tenant(tenant.id);
        let m = self.user(tenant, user).await?;
        let id = m.id;
        let current_role = m.role;
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
        let email = parsed
            .email
            .filter(|e| !same_text(&m.email, e.as_ref().map(EmailAddress::as_str)));
        let phone = parsed
            .phone
            .filter(|p| !same_text(&m.phone, p.as_ref().map(PhoneE164::as_str)));
        // A role grants access; one's own email or phone is where one's codes go (M11).
        let own_contact = id == actor.user.id && (email.is_some() || phone.is_some());
        if new_role.is_some() || own_contact {
            crate::require_step_up(self.store, actor)?;
        }
        let reverify = email.is_some() || phone.is_some();
        let change = UserChange {
            first_name: parsed.first_name.filter(|n| *n != m.first_name),
            last_name: parsed.last_name.filter(|n| *n != m.last_name),
            email,
            phone,
            role: new_role,
            active: (deactivate || reactivate).then_some(reactivate),
            pending_approval_by: pending_by,
        };
        let changed: Vec<&str> = [
            ("first_name", change.first_name.is_some()),
            ("last_name", change.last_name.is_some()),
            ("email", change.email.is_some()),
            ("phone", change.phone.is_some()),
            ("role", change.role.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if changed.is_empty() && !deactivate && !reactivate {
            return scope.users().get(&UserRef::Id(id.0)).await;
        }

        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        scope.users().change(&txn, id, &change, now).await?;
        let target = || Some(user_target(id, &m.username));
        if !changed.is_empty() {
            let details = Details::UserUpdated(UserUpdate::Fields {
                fields: changed,
                role: new_role.map(|to| RoleChange {
                    from: current_role,
                    to,
                }),
                reverification: reverify.then_some(true),
                pending_approval: pending_by.is_some().then_some(true),
            });
            scope
                .audit()
                .append_in(&txn, event(actor_of(actor), target(), meta, details))
                .await?;
        }
        if deactivate || suspend {
            let sessions = scope.revoke_user_sessions(&*txn, id, None).await?;
            let devices = scope.mfa().revoke_all_devices(&*txn, id).await?;
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        actor_of(actor),
                        target(),
                        meta,
                        Details::UserDeactivated {
                            sessions_ended: sessions,
                            devices_revoked: devices,
                            pending_approval: suspend,
                        },
                    ),
                )
                .await?;
        }
        if reactivate {
            scope
                .audit()
                .append_in(
                    &txn,
                    event(actor_of(actor), target(), meta, Details::UserReactivated {}),
                )
                .await?;
        }
        txn.commit().await?;
        // Sessions carry the user's role, names and flags: every process reloads them.
        self.store.forget_user_sessions(id);
        scope.users().get(&UserRef::Id(id.0)).await
    }

    /// `POST .../users/{user_id}/unlock` (P4, step-up).
    pub async fn unlock_user(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<User> {
        crate::require_step_up(self.store, actor)?;
        self.unlock_as(actor_of(actor), tenant, user, meta, None)
            .await
    }

    /// Clears the lock and the failed sign-in count; audits `user.unlocked` when the user
    /// was locked (with `escalation`, the escalation that asked for it).
    pub(crate) async fn unlock_as(
        &self,
        actor: Actor,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
        escalation: Option<Uuid>,
    ) -> Result<User> {
        let scope = self.store.tenant(tenant.id);
        let m = self.user(tenant, user).await?;
        if m.locked || m.failed_logins != 0 || m.mfa_failures != 0 {
            let txn = self.store.begin_write().await?;
            scope
                .users()
                .unlock(&txn, m.id, self.store.clock().now())
                .await?;
            if m.locked {
                let details = Details::UserUnlocked {
                    failed_logins: i64::from(m.failed_logins),
                    mfa_failures: i64::from(m.mfa_failures),
                    escalation_id: escalation,
                };
                scope
                    .audit()
                    .append_in(
                        &txn,
                        event(actor, Some(user_target(m.id, &m.username)), meta, details),
                    )
                    .await?;
            }
            txn.commit().await?;
            self.store.forget_user_sessions(m.id);
        }
        scope.users().get(&UserRef::Id(m.id.0)).await
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
        crate::require_step_up(self.store, actor)?;
        let by = (actor_of(actor), PasswordVia::AdminReset);
        self.set_temporary_password(by, tenant, user, temporary, meta)
            .await
    }

    /// Checks `temporary` against the practice's policy and stores it as temporary.
    pub(crate) async fn set_temporary_password(
        &self,
        (actor, via): (Actor, PasswordVia),
        tenant: &Tenant,
        user: &UserRef,
        temporary: SecretString,
        meta: &RequestMeta,
    ) -> Result<()> {
        let m = self.user(tenant, user).await?;
        check_policy(
            &tenant.settings.password_policy,
            "temporary_password",
            &temporary,
            &m.username,
        )?;
        let hash = self.store.hash_password(temporary).await?;
        replace_password(
            self.store,
            (tenant.id, m.id, &m.username),
            hash,
            None,
            (actor, via),
            meta,
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
        let scope = self.store.tenant(tenant.id);
        let src = scope.users().get(source).await?;
        let new = NewUser {
            username: copy.username,
            first_name: copy.first_name,
            last_name: copy.last_name,
            email: copy.email,
            phone: copy.phone,
            role: Ok(src.role),
            password: copy.password,
            groups: src.groups.iter().map(|g| g.id.0).collect(),
        };
        let parsed = new.parse(&tenant.settings, tenant.is_operator)?;
        if parsed.role.is_privileged() {
            crate::require_step_up(self.store, actor)?;
        }
        let approval_by = approval_by(actor, parsed.role, None);
        let windows = scope.users().windows(src.id).await?;
        let networks: Vec<_> = scope
            .mfa()
            .networks()
            .await?
            .into_iter()
            .filter(|n| n.user_id == Some(src.id.0))
            .collect();
        let hash = self.store.hash_password(new.password).await?;
        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        let u = scope
            .users()
            .create(&txn, &parsed, hash, approval_by, now)
            .await?;
        scope
            .users()
            .set_mfa(&*txn, u.id, src.mfa_method, Some(src.mfa_enrollment))
            .await?;
        scope
            .users()
            .add_to_groups(&*txn, u.id.0, &new.groups, now)
            .await?;
        scope
            .users()
            .insert_windows(&*txn, u.id.0, &windows)
            .await?;
        scope
            .mfa()
            .copy_networks_to(&txn, &networks, u.id, actor.user.id)
            .await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(user_target(u.id, &u.username)),
                    meta,
                    Details::UserCopied(Box::new(UserCopied {
                        from: UserLabel {
                            id: src.id.0,
                            username: src.username.clone(),
                        },
                        role: src.role,
                        groups: new.groups.len() as u64,
                        login_hours: windows.len() as u64,
                        trusted_networks: networks.len() as u64,
                        mfa_method: src.mfa_method,
                        mfa_enrollment: src.mfa_enrollment,
                        pending_approval: approval_by.is_some(),
                    })),
                ),
            )
            .await?;
        txn.commit().await?;
        scope.users().get(&UserRef::Id(u.id.0)).await
    }

    /// `PUT .../users/{user_id}/login-hours` (P5): replaces a user's login hours; an
    /// empty list lifts the restriction.
    pub async fn set_login_hours(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        windows: Vec<LoginWindow>,
        meta: &RequestMeta,
    ) -> Result<Vec<LoginWindow>> {
        let scope = self.store.tenant(tenant.id);
        let m = self.user(tenant, user).await?;
        let txn = self.store.begin_write().await?;
        scope.users().replace_windows(&txn, m.id, &windows).await?;
        let text: Vec<_> = windows.iter().map(|w| w.to_text()).collect();
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(user_target(m.id, &m.username)),
                    meta,
                    Details::UserUpdated(UserUpdate::LoginHours { login_hours: text }),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(windows)
    }

    /// `POST .../users/require-password-change` (P3): every active user of the practice,
    /// the caller included, must change their password at the next sign-in (a practice
    /// moving onto Gatehouse with imported passwords). Sessions go on; one audit event
    /// records the count. Answers how many users were newly marked.
    pub async fn require_password_change_all(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        meta: &RequestMeta,
    ) -> Result<u64> {
        let scope = self.store.tenant(tenant.id);
        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        let count = scope.users().require_password_change_all(&txn, now).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(tenant_target(tenant)),
                    meta,
                    Details::UserUpdated(UserUpdate::MustChangePassword {
                        must_change_password: true,
                        users: count,
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(count)
    }
}
