//! Tenant scoping by construction: every repository of tenant-owned data hangs off a
//! [`TenantScope`], which puts the tenant id into each query it runs.

use crate::{Inner, Store};
use gatehouse_domain::ids::TenantId;
use uuid::Uuid;

/// Repositories of one tenant's data.
#[derive(Clone, Copy)]
pub struct TenantScope<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) tenant_id: TenantId,
}

impl TenantScope<'_> {
    pub(crate) fn uuid(&self) -> Uuid {
        self.tenant_id.0
    }
}

impl Store {
    /// The repositories of one tenant.
    pub fn tenant(&self, id: TenantId) -> TenantScope<'_> {
        TenantScope {
            inner: &self.inner,
            tenant_id: id,
        }
    }
}

/// How a path names a user: by UUID, or by username (compared case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(Uuid),
    Username(String),
}

impl UserRef {
    /// Reads a path segment. Usernames can never have the shape of a UUID, so this is unambiguous.
    pub fn parse(segment: &str) -> Option<Self> {
        if let Ok(id) = Uuid::parse_str(segment) {
            return Some(UserRef::Id(id));
        }
        gatehouse_domain::ids::Username::parse(segment)
            .ok()
            .map(|u| UserRef::Username(u.lower()))
    }
}
