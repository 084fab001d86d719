//! Gatehouse's use cases: the one thing the JSON API's handlers (and, next, the pages and
//! the OpenID Connect endpoints) call.
//!
//! A use case takes typed input, runs the domain's rules (`gatehouse_domain`) over the
//! store's repositories (`gatehouse_store`), writes what it changes together with its
//! audit events in one transaction, and answers typed output. The store decides nothing;
//! the adapters parse and render nothing but their own format.
//!
//! Everything an adapter does goes through here: the writes, and (in [`records`]) the
//! reads that decide nothing, such as a user list or the audit log, whose practice scope
//! is their authorisation. The adapters hold no store. What the store still does beyond
//! storing: checking a session token (every request, with its cache) and the delivery
//! workers' own persistence.

pub mod account;
pub mod accounts;
pub mod admin;
pub mod escalations;
pub mod inbound;
pub mod mfa;
pub mod oidc;
mod passwords;
pub mod records;
pub mod signin;
pub mod support;

pub use gatehouse_store::scope::UserRef;
pub use gatehouse_store::{Page, Principal, RequestMeta, Store, StoreError as Error, Tenant};

/// What a use case answers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// M11: a credential action needs a second factor proven in this session within the last
/// 15 minutes (see `gatehouse_domain::mfa::require_step_up`).
pub(crate) fn require_step_up(store: &Store, p: &Principal) -> Result<()> {
    gatehouse_domain::mfa::require_step_up(p.mfa_verified_at, store.clock().now())?;
    Ok(())
}

/// The use cases over one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    store: Store,
    /// The OpenID Connect signing keys this process loaded.
    oidc_keys: std::sync::Arc<oidc::KeyCache>,
}

impl App {
    /// The use cases over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            oidc_keys: Default::default(),
        }
    }

    /// Sign-in (P1-P5, M1-M10): the password step and the flow's steps after it.
    pub fn signin(&self) -> signin::SignIn<'_> {
        signin::SignIn { store: &self.store }
    }

    /// Second factors outside sign-in: the user's own, step-up, and an admin's.
    pub fn mfa(&self) -> mfa::Mfa<'_> {
        mfa::Mfa { store: &self.store }
    }

    /// A practice admin's use cases.
    pub fn admin(&self) -> admin::Admin<'_> {
        admin::Admin { store: &self.store }
    }

    /// The signed-in user's own account.
    pub fn account(&self) -> account::Account<'_> {
        account::Account { store: &self.store }
    }

    /// The vendor's support staff's reads across practices, and email suppressions.
    pub fn support(&self) -> support::Support<'_> {
        support::Support { store: &self.store }
    }

    /// One practice's records, to read.
    pub fn records(&self, tenant: gatehouse_domain::ids::TenantId) -> records::Records<'_> {
        records::Records {
            store: &self.store,
            tenant,
        }
    }

    /// Reads outside one practice, and the session check every request makes.
    pub fn deployment(&self) -> records::Deployment<'_> {
        records::Deployment { store: &self.store }
    }

    /// The operator's bootstrap and the demo seed.
    pub fn accounts(&self) -> accounts::Accounts<'_> {
        accounts::Accounts { store: &self.store }
    }

    /// Verified SNS messages from the webhook.
    pub fn inbound(&self) -> inbound::Inbound<'_> {
        inbound::Inbound { store: &self.store }
    }

    /// The OpenID Connect provider, answering as `issuer` (the public origin).
    pub fn oidc<'a>(&'a self, issuer: &'a str) -> oidc::Oidc<'a> {
        oidc::Oidc {
            store: &self.store,
            keys: &self.oidc_keys,
            issuer,
        }
    }

    /// Escalations (S2): support asks, the practice decides, support executes once.
    pub fn escalations(&self) -> escalations::Escalations<'_> {
        escalations::Escalations { store: &self.store }
    }
}
