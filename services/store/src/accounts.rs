//! Accounts outside a practice admin's hands: the operator's bootstrap and the demo seed
//! (a user changes their own password through gatehouse-app's `account`).

use crate::audit::event;
use crate::audit::user_target;
use crate::entities::users;
use crate::mfa::Destination;
use crate::records::Tenant;
use crate::scope::UserRef;
use crate::users::NewUser;
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Action;
use gatehouse_domain::ids::{CompanyId, EmailAddress, PhoneE164, UserId};
use gatehouse_domain::mfa::{Enrollment, UserMethod};
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
}
