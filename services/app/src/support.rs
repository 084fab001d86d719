//! The vendor's support staff (S1, D4, D5): finding a user or the deliveries to an
//! address across practices, and lifting an email suppression. A read across practices
//! is not reached through one practice's scope: it is audited instead, with a
//! `support.read` in the log of every practice it answers (the term masked when it is an
//! address or number), so each practice sees who from the vendor looked.

use crate::{Page, Principal, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::{Details, NewEvent, Target};
use gatehouse_domain::ids::EmailAddress;
use gatehouse_domain::lookup::{DestinationLookup, UserLookup};
use gatehouse_store::Store;
use gatehouse_store::audit::{actor_of, event, tenant_target};
use gatehouse_store::delivery_log::TenantDelivery;
use gatehouse_store::support::TenantUser;
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

/// The `support.read` a practice's log records when the vendor's staff read its data.
fn read_event(p: &Principal, tenant: &Tenant, query: &str, at: ReadAt<'_>) -> NewEvent {
    event(
        actor_of(p),
        Some(tenant_target(tenant)),
        at.meta,
        Details::SupportRead {
            path: at.path.to_owned(),
            query: Some(query.to_owned()),
            role: Some(p.user.role),
        },
    )
}

/// Each practice once, whatever number of the page's items it holds, in order of their
/// company ids.
fn practices<'t>(all: impl Iterator<Item = &'t Tenant>) -> Vec<&'t Tenant> {
    let mut seen = std::collections::HashSet::new();
    let mut shown: Vec<&Tenant> = all.filter(|t| seen.insert(t.id)).collect();
    shown.sort_by(|a, b| a.company.as_str().cmp(b.company.as_str()));
    shown
}

impl Support<'_> {
    /// Records a `support.read` in the log of every practice a read across practices
    /// answered. They are kept aside for the chains, so a search locks no practice's
    /// chain head (see `Store::keep_events_aside`).
    async fn record_reads(
        &self,
        p: &Principal,
        practices: Vec<&Tenant>,
        query: &str,
        at: ReadAt<'_>,
    ) -> Result<()> {
        let reads = practices
            .into_iter()
            .map(|t| (t.id, read_event(p, t, query, at)))
            .collect();
        self.store.keep_events_aside(reads).await
    }

    /// Records that a support agent read one practice's data (S1): the practice sees in
    /// its own log who from the vendor looked, and at what.
    pub async fn record_read(
        &self,
        p: &Principal,
        tenant: &Tenant,
        query: &str,
        at: ReadAt<'_>,
    ) -> Result<()> {
        self.store
            .tenant(tenant.id)
            .audit()
            .record(read_event(p, tenant, query, at))
            .await
    }

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
        self.record_reads(actor, practices, &query, at).await?;
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
        self.record_reads(actor, practices, &query, at).await?;
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
                    actor_of(actor),
                    Some(Target {
                        kind: "email",
                        id: masked.clone(),
                        label: None,
                    }),
                    meta,
                    Details::EmailSuppressionLifted {
                        email: masked.clone(),
                        reason,
                        since,
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        tracing::info!(to = %masked, "email suppression lifted by support");
        Ok(())
    }
}
