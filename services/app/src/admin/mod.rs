//! Administration: a practice admin's use cases (and the same on the operator tenant for
//! support admins) on the practice's users, groups and settings, and the vendor's
//! support admins' on practices themselves.

mod groups;
mod operators;
mod tenants;
mod users;

pub use groups::{MAX_USER_IDS, NewMembers};
pub use tenants::NewTenant;
pub use users::{NewUser, UserCopy, UserPatch};

use gatehouse_store::Store;

/// The administration use cases (from [`crate::App::admin`]).
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    pub(crate) store: &'a Store,
}
