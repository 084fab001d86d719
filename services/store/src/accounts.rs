//! Accounts outside a practice admin's hands: the operator's bootstrap, the demo seed,
//! and a user changing their own password.

use crate::audit::actor_user;
use crate::audit::event;
use crate::audit::{actor_of, user_target};
use crate::entities::users;
use crate::mfa::Destination;
use crate::records::{Principal, Tenant, User};
use crate::scope::TenantScope;
use crate::scope::UserRef;
use crate::tries::Taken;
use crate::users::NewUser;
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::audit::{Action, Actor};
use gatehouse_domain::ids::{CompanyId, EmailAddress, PhoneE164, UserId};
use gatehouse_domain::mfa::{Enrollment, UserMethod};
use gatehouse_domain::password::{Verified, check_policy};
use gatehouse_domain::{Error as DomainError, FieldError};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use secrecy::SecretString;
use serde_json::json;

/// What `gatehouse bootstrap` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapOutcome {
    Created,
    AlreadyPresent,
}

/// Credentials of a seeded account, printed by `serve --demo`.
#[derive(Debug, Clone)]
pub struct SeededAccount {
    pub company: String,
    pub username: String,
    pub password: String,
    pub role: String,
    /// How this account proves its second factor, for the banner.
    pub mfa: String,
}

/// How a demo account proves its second factor.
#[derive(Clone, Copy)]
enum DemoMfa {
    Email,
    Sms(&'static str),
    TotpPending,
}

impl Store {
    async fn ensure_tenant(
        &self,
        company: &CompanyId,
        name: &str,
        operator: bool,
    ) -> Result<(Tenant, bool)> {
        if let Some(t) = self.find_tenant(company).await? {
            return Ok((t, false));
        }
        let txn = self.inner.begin_write().await?;
        let t = self
            .insert_tenant(
                &txn,
                company,
                name.to_owned(),
                chrono_tz::America::New_York,
                operator,
            )
            .await?;
        txn.commit().await?;
        self.system_event(
            &t,
            Action::TenantCreated,
            Some(crate::audit::tenant_target(&t)),
            json!({"name": name}),
        )
        .await?;
        Ok((t, true))
    }

    /// Creates a user without an actor (bootstrap, demo), with a password chosen by the
    /// operator (not temporary).
    async fn seed_user(&self, tenant: &Tenant, new: NewUser) -> Result<()> {
        let parsed = new.parse(&tenant.settings, tenant.is_operator)?;
        let hash = self.inner.hasher.hash(new.password).await?;
        let scope = self.tenant(tenant.id);
        let now = self.inner.clock.now();
        let txn = self.inner.begin_write().await?;
        let m = scope
            .users()
            .insert(&txn, &parsed, hash, false, None, now)
            .await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::UserCreated,
                    gatehouse_domain::audit::Actor::system(),
                    Some(user_target(UserId(m.id), &m.username)),
                    &RequestMeta::default(),
                    json!({"role": parsed.role.as_str(), "via": "seed"}),
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Creates the operator tenant and its first support_admin unless a support_admin exists.
    pub async fn bootstrap(
        &self,
        username: &str,
        email: &str,
        password: SecretString,
    ) -> Result<BootstrapOutcome> {
        let company = self.inner.config.operator_company.clone();
        let (tenant, _) = self
            .ensure_tenant(&company, "Gatehouse operator", true)
            .await?;
        let admins = users::Entity::find()
            .filter(users::Column::TenantId.eq(tenant.id.0))
            .filter(users::Column::Role.eq("support_admin"))
            .count(&self.inner.db)
            .await?;
        if admins > 0 {
            return Ok(BootstrapOutcome::AlreadyPresent);
        }
        self.seed_user(
            &tenant,
            NewUser {
                username: username.to_owned(),
                first_name: "Support".to_owned(),
                last_name: "Admin".to_owned(),
                email: Some(email.to_owned()),
                phone: None,
                role: "support_admin".to_owned(),
                password,
                groups: Vec::new(),
            },
        )
        .await?;
        Ok(BootstrapOutcome::Created)
    }

    /// Seeds the demo practice `demo-clinic` (an admin, two staff) and an operator
    /// support_admin. Existing accounts are left as they are.
    pub async fn seed_demo(&self) -> Result<Vec<SeededAccount>> {
        let demo = CompanyId::parse("demo-clinic")?;
        let (clinic, _) = self
            .ensure_tenant(&demo, "Demo Family Clinic", false)
            .await?;
        let (operator, _) = self
            .ensure_tenant(
                &self.inner.config.operator_company.clone(),
                "Gatehouse operator",
                true,
            )
            .await?;
        // One account per way of proving the second factor (M1), so a newcomer can try each.
        let accounts = [
            (
                &clinic,
                "admin",
                "Alice",
                "Admin",
                "practice_admin",
                "Harbor-Lights-2026!",
                DemoMfa::Email,
            ),
            (
                &clinic,
                "nurse.joy",
                "Joy",
                "Nurse",
                "staff",
                "Quiet-Meadow-2026!",
                DemoMfa::Sms("+12025550147"),
            ),
            (
                &clinic,
                "dr.house",
                "Greg",
                "House",
                "staff",
                "Silver-Canyon-2026!",
                DemoMfa::TotpPending,
            ),
            (
                &operator,
                "support",
                "Sam",
                "Support",
                "support_admin",
                "Granite-Bridge-2026!",
                DemoMfa::Email,
            ),
        ];
        let mut out = Vec::new();
        for (tenant, username, first, last, role, password, mfa) in accounts {
            let scope = self.tenant(tenant.id);
            let exists = scope
                .users()
                .find_model(&self.inner.db, &UserRef::Username(username.to_owned()))
                .await?
                .is_some();
            let email = format!("{username}@{}.example.com", tenant.company);
            if !exists {
                self.seed_user(
                    tenant,
                    NewUser {
                        username: username.to_owned(),
                        first_name: first.to_owned(),
                        last_name: last.to_owned(),
                        email: Some(email.clone()),
                        phone: match mfa {
                            DemoMfa::Sms(p) => Some(p.to_owned()),
                            _ => None,
                        },
                        role: role.to_owned(),
                        password: SecretString::from(password.to_owned()),
                        groups: Vec::new(),
                    },
                )
                .await?;
                let id = scope
                    .users()
                    .find_model(&self.inner.db, &UserRef::Username(username.to_owned()))
                    .await?
                    .map(|m| UserId(m.id))
                    .ok_or(DomainError::NotFound)?;
                // Demo contacts count as proven, as if each user had enrolled once.
                match mfa {
                    DemoMfa::Email => {
                        let d = Destination::Email(EmailAddress::parse(&email)?);
                        scope
                            .users()
                            .set_verified_contact(&self.inner.db, id, &d, true)
                            .await?;
                    }
                    DemoMfa::Sms(p) => {
                        let d = Destination::Sms(PhoneE164::parse(p)?);
                        scope
                            .users()
                            .set_verified_contact(&self.inner.db, id, &d, true)
                            .await?;
                    }
                    DemoMfa::TotpPending => {
                        scope
                            .users()
                            .set_mfa(
                                &self.inner.db,
                                id,
                                UserMethod::Totp,
                                Some(Enrollment::Require),
                            )
                            .await?;
                    }
                }
            }
            out.push(SeededAccount {
                company: tenant.company.to_string(),
                username: username.to_owned(),
                password: password.to_owned(),
                role: role.to_owned(),
                mfa: match mfa {
                    DemoMfa::Email => format!("email code to {email}"),
                    DemoMfa::Sms(p) => format!("SMS code to {p}"),
                    DemoMfa::TotpPending => {
                        "authenticator app, enrolled at first sign-in".to_owned()
                    }
                },
            });
        }
        Ok(out)
    }

    /// `POST /v1/me/password`: the user changes their own password. Their other sessions end.
    pub async fn change_own_password(
        &self,
        p: &Principal,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<()> {
        let scope = self.tenant(p.tenant.id);
        let m = scope
            .users()
            .find_model(&self.inner.db, &UserRef::Id(p.user.id.0))
            .await?
            .ok_or(DomainError::Unauthenticated)?;
        check_policy(
            &p.tenant.settings.password_policy,
            "new_password",
            &new,
            &m.username,
        )?;
        if !self
            .judge_own_password(p, &m, current, meta, "wrong_current_password")
            .await?
        {
            return Err(DomainError::Validation(vec![FieldError::new(
                "current_password",
                "the current password is not correct",
            )])
            .into());
        }
        if let Verified::Yes { .. } = self
            .inner
            .hasher
            .verify(m.password_hash.clone(), new.clone())
            .await?
        {
            return Err(DomainError::PasswordPolicy(vec![FieldError::rule(
                "new_password",
                "reused",
                "must differ from the current password",
            )])
            .into());
        }
        let hash = self.inner.hasher.hash(new).await?;
        self.replace_password(
            (p.tenant.id, p.user.id, &p.user.username),
            hash,
            Some(p.session_id),
            actor_of(p),
            meta,
            crate::users::PasswordVia::SelfService,
        )
        .await
    }

    /// A password typed by a signed-in user (the current password of a change, or a
    /// step-up where no second factor exists). A stolen session must not be a way around
    /// the sign-in limits (P4): it is a guess like a sign-in's, limited per client address
    /// and counted on the user, whose lock it can reach. `Ok(false)`: wrong, and counted.
    pub(crate) async fn judge_own_password(
        &self,
        p: &Principal,
        m: &users::Model,
        password: SecretString,
        meta: &RequestMeta,
        reason: &'static str,
    ) -> Result<bool> {
        let scope = self.tenant(p.tenant.id);
        let attempt = match meta.ip {
            Some(ip) => Some(
                self.inner
                    .login_limiter
                    .begin(ip)
                    .await
                    .map_err(|retry_after_secs| DomainError::RateLimited { retry_after_secs })?,
            ),
            None => None,
        };
        let threshold = p.tenant.settings.lockout_threshold;
        match scope.tries().take_password(m.id, threshold).await? {
            Taken::Yes(_) => {}
            Taken::Locked => return Err(DomainError::AccountLocked.into()),
            Taken::Full => {
                return Err(DomainError::RateLimited {
                    retry_after_secs: 1,
                }
                .into());
            }
        }
        let verified = match self
            .inner
            .hasher
            .verify(m.password_hash.clone(), password)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                scope.tries().password_release(m.id).await?;
                return Err(e);
            }
        };
        if verified == Verified::No {
            let err = match User::from_model(m.clone()) {
                Ok(who) => {
                    self.count_failure(scope, threshold, &who, meta, reason)
                        .await
                }
                Err(e) => e,
            };
            if let Some(a) = attempt {
                a.failed().await;
            }
            return match err {
                crate::StoreError::Domain(DomainError::InvalidCredentials) => Ok(false),
                other => Err(other),
            };
        }
        scope.tries().password_release(m.id).await?;
        Ok(true)
    }

    /// Records a wrong password whose try was taken; the failure that reaches the
    /// tenant's threshold locks the user (P4). Answers the error to give the caller:
    /// `InvalidCredentials`, or what went wrong recording it.
    pub async fn count_failure(
        &self,
        scope: TenantScope<'_>,
        threshold: u32,
        user: &User,
        meta: &RequestMeta,
        reason: &'static str,
    ) -> crate::StoreError {
        let result: Result<()> = async {
            let txn = self.inner.begin_write().await?;
            let (n, locked) = scope
                .tries()
                .password_wrong(&txn, user.id.0, threshold)
                .await?;
            let target = Some(user_target(user.id, &user.username));
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        Action::SigninFailed,
                        actor_user(user),
                        target.clone(),
                        meta,
                        json!({"reason": reason, "failed_logins": n}),
                    ),
                )
                .await?;
            if locked {
                scope
                    .audit()
                    .append_in(
                        &txn,
                        event(
                            Action::UserLocked,
                            Actor::system(),
                            target,
                            meta,
                            json!({"reason": "failed_logins", "failed_logins": n}),
                        ),
                    )
                    .await?;
            }
            txn.commit().await?;
            if locked {
                crate::telemetry::metrics().lockouts.add(1, &[]);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => DomainError::InvalidCredentials.into(),
            Err(e) => e,
        }
    }
}
