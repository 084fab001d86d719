//! Accounts made outside a practice admin's hands: the operator's bootstrap (`gatehouse
//! bootstrap`) and the demo seed (`serve --demo`). Nobody signed in acts, so their audit
//! events name the system as actor.

use crate::{RequestMeta, Result, Store, Tenant};
use gatehouse_domain::audit::Actor;
use gatehouse_domain::audit::details::{CreatedVia, Details};
use gatehouse_domain::ids::CompanyId;
use gatehouse_domain::mfa::{Enrollment, UserMethod};
use gatehouse_domain::role::Role;
use gatehouse_store::audit::{event, tenant_target, user_target};
use gatehouse_store::mfa::Destination;
use gatehouse_store::scope::UserRef;
use gatehouse_store::users::NewUser;
use secrecy::SecretString;

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

/// How a demo account proves its second factor. Its contact counts as proven, as if the
/// user had enrolled once; the authenticator is enrolled at the first sign-in.
#[derive(Clone, Copy)]
enum DemoMfa {
    Email,
    Sms(&'static str),
    TotpPending,
}

/// One demo account.
struct DemoAccount {
    operator: bool,
    username: &'static str,
    first: &'static str,
    last: &'static str,
    role: Role,
    password: &'static str,
    mfa: DemoMfa,
}

/// One account per way of proving the second factor (M1), so a newcomer can try each,
/// and the vendor's support admin.
const DEMO: [DemoAccount; 4] = [
    DemoAccount {
        operator: false,
        username: "admin",
        first: "Alice",
        last: "Admin",
        role: Role::PracticeAdmin,
        password: "Harbor-Lights-2026!",
        mfa: DemoMfa::Email,
    },
    DemoAccount {
        operator: false,
        username: "nurse.joy",
        first: "Joy",
        last: "Nurse",
        role: Role::Staff,
        password: "Quiet-Meadow-2026!",
        mfa: DemoMfa::Sms("+12025550147"),
    },
    DemoAccount {
        operator: false,
        username: "dr.house",
        first: "Greg",
        last: "House",
        role: Role::Staff,
        password: "Silver-Canyon-2026!",
        mfa: DemoMfa::TotpPending,
    },
    DemoAccount {
        operator: true,
        username: "support",
        first: "Sam",
        last: "Support",
        role: Role::SupportAdmin,
        password: "Granite-Bridge-2026!",
        mfa: DemoMfa::Email,
    },
];

/// The demo practice's company id and name.
const DEMO_COMPANY: &str = "demo-clinic";
const DEMO_NAME: &str = "Demo Family Clinic";
/// The operator tenant's name when bootstrap or the seed creates it.
const OPERATOR_NAME: &str = "Gatehouse operator";

/// Bootstrap and the demo seed.
#[derive(Debug)]
pub struct Accounts<'a> {
    pub(crate) store: &'a Store,
}

impl Accounts<'_> {
    /// Creates the operator tenant and its first support_admin unless a support_admin
    /// exists.
    pub async fn bootstrap(
        &self,
        username: &str,
        email: &str,
        password: SecretString,
    ) -> Result<BootstrapOutcome> {
        let company = self.store.config().operator_company.clone();
        let tenant = self.ensure_tenant(&company, OPERATOR_NAME, true).await?;
        if self
            .store
            .tenant(tenant.id)
            .users()
            .count_with_role(Role::SupportAdmin)
            .await?
            > 0
        {
            return Ok(BootstrapOutcome::AlreadyPresent);
        }
        let new = NewUser {
            username: username.to_owned(),
            first_name: "Support".to_owned(),
            last_name: "Admin".to_owned(),
            email: Some(email.to_owned()),
            phone: None,
            role: Ok(Role::SupportAdmin),
            password,
            groups: Vec::new(),
        };
        self.seed_user(&tenant, new, None).await?;
        Ok(BootstrapOutcome::Created)
    }

    /// Seeds the demo practice `demo-clinic` (an admin, two staff) and an operator
    /// support_admin. Existing accounts are left as they are.
    pub async fn seed_demo(&self) -> Result<Vec<SeededAccount>> {
        let clinic = self
            .ensure_tenant(&CompanyId::parse(DEMO_COMPANY)?, DEMO_NAME, false)
            .await?;
        let operator_company = self.store.config().operator_company.clone();
        let operator = self
            .ensure_tenant(&operator_company, OPERATOR_NAME, true)
            .await?;
        let mut out = Vec::with_capacity(DEMO.len());
        for a in &DEMO {
            let tenant = if a.operator { &operator } else { &clinic };
            let email = format!("{}@{}.example.com", a.username, tenant.company);
            let exists = self
                .store
                .tenant(tenant.id)
                .users()
                .find(&UserRef::Username(a.username.to_owned()))
                .await?
                .is_some();
            if !exists {
                let new = NewUser {
                    username: a.username.to_owned(),
                    first_name: a.first.to_owned(),
                    last_name: a.last.to_owned(),
                    email: Some(email.clone()),
                    phone: match a.mfa {
                        DemoMfa::Sms(p) => Some(p.to_owned()),
                        _ => None,
                    },
                    role: Ok(a.role),
                    password: SecretString::from(a.password.to_owned()),
                    groups: Vec::new(),
                };
                self.seed_user(tenant, new, Some(a.mfa)).await?;
            }
            out.push(SeededAccount {
                company: tenant.company.to_string(),
                username: a.username.to_owned(),
                password: a.password.to_owned(),
                role: a.role.as_str().to_owned(),
                mfa: match a.mfa {
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

    /// The tenant with `company`, created (and audited) when absent.
    async fn ensure_tenant(
        &self,
        company: &CompanyId,
        name: &str,
        operator: bool,
    ) -> Result<Tenant> {
        if let Some(t) = self.store.find_tenant(company).await? {
            return Ok(t);
        }
        let tz = chrono_tz::America::New_York;
        let txn = self.store.begin_write().await?;
        let t = self
            .store
            .create_tenant(&txn, company, name.to_owned(), tz, operator)
            .await?;
        self.store
            .tenant(t.id)
            .audit()
            .append_in(
                &txn,
                event(
                    Actor::system(),
                    Some(tenant_target(&t)),
                    &RequestMeta::default(),
                    Details::TenantCreated {
                        name: name.to_owned(),
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(t)
    }

    /// Creates a user without an actor, with a password chosen by the operator (not
    /// temporary) and, for a demo account, its second factor ready.
    async fn seed_user(&self, tenant: &Tenant, new: NewUser, mfa: Option<DemoMfa>) -> Result<()> {
        let parsed = new.parse(&tenant.settings, tenant.is_operator)?;
        let hash = self.store.hash_password(new.password).await?;
        let scope = self.store.tenant(tenant.id);
        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        let user = scope
            .users()
            .create_with_password(&txn, &parsed, hash, now)
            .await?;
        let users = scope.users();
        match (mfa, &parsed.email, &parsed.phone) {
            (Some(DemoMfa::Email), Some(email), _) => {
                let d = Destination::Email(email.clone());
                users.set_verified_contact(&*txn, user.id, &d, true).await?;
            }
            (Some(DemoMfa::Sms(_)), _, Some(phone)) => {
                let d = Destination::Sms(phone.clone());
                users.set_verified_contact(&*txn, user.id, &d, true).await?;
            }
            (Some(DemoMfa::TotpPending), _, _) => {
                users
                    .set_mfa(&*txn, user.id, UserMethod::Totp, Some(Enrollment::Require))
                    .await?;
            }
            _ => {}
        }
        let details = Details::UserCreated {
            role: parsed.role,
            groups: None,
            pending_approval: None,
            via: Some(CreatedVia::Seed),
        };
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Actor::system(),
                    Some(user_target(user.id, &user.username)),
                    &RequestMeta::default(),
                    details,
                ),
            )
            .await?;
        txn.commit().await?;
        Ok(())
    }
}
