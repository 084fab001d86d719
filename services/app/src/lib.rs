//! Gatehouse's use cases: the one thing the JSON API's handlers (and, next, the pages and
//! the OpenID Connect endpoints) call.
//!
//! A use case takes typed input, runs the domain's rules (`gatehouse_domain`) over the
//! store's repositories (`gatehouse_store`), writes what it changes together with its
//! audit events in one transaction, and answers typed output. The store decides nothing;
//! the adapters parse and render nothing but their own format.
//!
//! The use cases move here from the store one concept at a time; those not moved yet are
//! still methods of [`gatehouse_store::Store`] (see `docs/behaviour.md`).

pub mod escalations;
pub mod signin;

use gatehouse_store::Store;

pub use gatehouse_store::{Page, Principal, RequestMeta, StoreError as Error, Tenant};

/// What a use case answers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The use cases over one store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    store: Store,
}

impl App {
    /// The use cases over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The store underneath, for what has not moved here yet.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sign-in (P1-P5, M1-M10): the password step and the flow's steps after it.
    pub fn signin(&self) -> signin::SignIn<'_> {
        signin::SignIn { store: &self.store }
    }

    /// Escalations (S2): support asks, the practice decides, support executes once.
    pub fn escalations(&self) -> escalations::Escalations<'_> {
        escalations::Escalations { store: &self.store }
    }
}
