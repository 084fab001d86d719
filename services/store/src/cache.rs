//! The in-process session cache: `GET /v1/auth/session` is answered from memory on a hit.
//!
//! Entries live at most a minute, which bounds how stale another process's view can be;
//! changes made through this process (logout, password change, deactivation, settings)
//! invalidate at once.

use crate::records::Principal;
use gatehouse_domain::ids::{TenantId, UserId};
use moka::sync::Cache;
use std::time::Duration;

#[derive(Clone)]
pub(crate) struct SessionCache {
    by_token_hash: Cache<String, Principal>,
}

impl SessionCache {
    pub(crate) fn new() -> Self {
        Self {
            by_token_hash: Cache::builder()
                .max_capacity(200_000)
                .time_to_live(Duration::from_secs(60))
                .support_invalidation_closures()
                .build(),
        }
    }

    pub(crate) fn get(&self, token_hash: &str) -> Option<Principal> {
        self.by_token_hash.get(token_hash)
    }

    pub(crate) fn insert(&self, principal: Principal) {
        self.by_token_hash
            .insert(principal.token_hash.clone(), principal);
    }

    pub(crate) fn invalidate(&self, token_hash: &str) {
        self.by_token_hash.invalidate(token_hash);
    }

    pub(crate) fn invalidate_user(&self, user: UserId) {
        // Only fails when closures are not enabled, which `new` does; fall back to clearing.
        if self
            .by_token_hash
            .invalidate_entries_if(move |_, p| p.user.id == user)
            .is_err()
        {
            self.by_token_hash.invalidate_all();
        }
    }

    pub(crate) fn invalidate_tenant(&self, tenant: TenantId) {
        if self
            .by_token_hash
            .invalidate_entries_if(move |_, p| p.tenant.id == tenant)
            .is_err()
        {
            self.by_token_hash.invalidate_all();
        }
    }
}
