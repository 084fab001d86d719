//! The vendor's support staff (S1, D4, D5): finding a user or the deliveries to an
//! address across practices, and lifting an email suppression. A read across practices
//! is not reached through one practice's scope: it is audited instead, with a
//! `support.read` in the log of every practice it answers (the term masked when it is an
//! address or number), so each practice sees who from the vendor looked.

use crate::{Page, Principal, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::{Action, Target};
use gatehouse_domain::ids::EmailAddress;
use gatehouse_domain::lookup::{DestinationLookup, UserLookup};
use gatehouse_store::Store;
use gatehouse_store::audit::{actor_of, event};
use gatehouse_store::delivery_log::TenantDelivery;
use gatehouse_store::support::TenantUser;
use serde_json::json;
use uuid::Uuid;

/// The support use cases (from [`crate::App::support`]).
#[derive(Debug, Clone, Copy)]
pub struct Support<'a> {
    pub(crate) store: &'a Store,
}

/// Where a read across practices came from, for its `support.read` events.
#[derive(Debug, Clone, Copy)]
pub struct ReadAt<'a> {
    /// The request's path.
    pub path: &'a str,
    pub meta: &'a RequestMeta,
}

/// Each practice once, whatever number of the page's items it holds.
fn practices<'t>(all: impl Iterator<Item = &'t Tenant>) -> Vec<&'t Tenant> {
    let mut seen = std::collections::HashSet::new();
    all.filter(|t| seen.insert(t.id)).collect()
}

impl Support<'_> {
    /// `GET /v1/support/users`: users of every practice matching `lookup`, ordered by
    /// username (then id); the cursor is the id of the previous page's last user.
    pub async fn find_users(
        &self,
        actor: &Principal,
        lookup: &UserLookup,
        (limit, cursor): (u64, Option<Uuid>),
        at: ReadAt<'_>,
    ) -> Result<Page<TenantUser>> {
        let page = self
            .store
            .find_users_everywhere(lookup, limit, cursor)
            .await?;
        let query = format!("q={}", lookup.for_audit());
        let practices = practices(page.items.iter().map(|u| &u.tenant));
        self.store
            .record_support_reads(actor, practices, at.path, &query, at.meta)
            .await?;
        Ok(page)
    }

    /// `GET /v1/support/deliveries`: deliveries to a destination across practices, newest
    /// first (D5).
    pub async fn deliveries_to(
        &self,
        actor: &Principal,
        destination: &DestinationLookup,
        (limit, cursor): (u64, Option<Uuid>),
        at: ReadAt<'_>,
    ) -> Result<Page<TenantDelivery>> {
        let page = self
            .store
            .deliveries_to_everywhere(destination, limit, cursor)
            .await?;
        let query = format!("destination={}", destination.masked());
        let practices = practices(page.items.iter().map(|d| &d.tenant));
        self.store
            .record_support_reads(actor, practices, at.path, &query, at.meta)
            .await?;
        Ok(page)
    }

    /// `DELETE /v1/support/email-suppressions/{email}`: lifts a suppression once the
    /// mailbox is fixed (D4); `NotFound` when the address is not suppressed. Audited in
    /// the support member's own (operator) log with the address masked: a suppression
    /// belongs to no practice.
    pub async fn lift_email_suppression(
        &self,
        actor: &Principal,
        email: &EmailAddress,
        meta: &RequestMeta,
    ) -> Result<()> {
        let txn = self.store.begin_write().await?;
        let (reason, since) = self
            .store
            .lift_email_suppression_in(&txn, email)
            .await?
            .ok_or(DomainError::NotFound)?;
        let masked = email.masked();
        self.store
            .tenant(actor.tenant.id)
            .audit()
            .append_in(
                &txn,
                event(
                    Action::EmailSuppressionLifted,
                    actor_of(actor),
                    Some(Target {
                        kind: "email",
                        id: masked.clone(),
                        label: None,
                    }),
                    meta,
                    json!({"email": masked, "reason": reason, "since": since}),
                ),
            )
            .await?;
        txn.commit().await?;
        tracing::info!(to = %masked, "email suppression lifted by support");
        Ok(())
    }
}
