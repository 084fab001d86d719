//! The in-process session cache: `GET /v1/auth/session` is answered from memory on a hit.
//!
//! Entries live at most a minute, which bounds how stale a process's view can be when it
//! hears nothing. Changes made through this process (logout, password change,
//! deactivation, settings) invalidate at once. With Redis ([`crate::shared`]) each
//! invalidation is also published, and every process subscribed applies it to its own
//! cache, so a session ended through one API process is refused by all of them. After
//! the subscription is lost and taken again, a process empties its cache: it may have
//! missed invalidations in between.

use crate::records::Principal;
use crate::shared::{OutageLog, RedisSettings};
use futures_util::StreamExt;
use gatehouse_domain::ids::{TenantId, UserId};
use moka::sync::Cache;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

#[derive(Clone)]
pub(crate) struct SessionCache {
    by_token_hash: Cache<String, Principal>,
    /// Counts invalidations applied here. A session read from the database is cached only
    /// if none was applied since the read began: otherwise an invalidation landing between
    /// the read and the insert would be undone by the insert (moka invalidates only the
    /// entries present when it is called), and a revoked session would live on for up to
    /// a minute.
    epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Where this process's invalidations go to be published; `None` without Redis.
    publish: Option<mpsc::UnboundedSender<Invalidation>>,
}

/// One invalidation as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Invalidation {
    Token { token_hash: String },
    User { user: Uuid },
    Tenant { tenant: Uuid },
}

/// The message on the channel: the invalidation and the process it came from.
#[derive(Debug, Serialize, Deserialize)]
struct Published {
    origin: Uuid,
    #[serde(flatten)]
    what: Invalidation,
}

static PUBLISH_OUTAGE: OutageLog =
    OutageLog::new("session invalidations reach other processes within a minute");

impl SessionCache {
    pub(crate) fn new() -> Self {
        Self {
            by_token_hash: Cache::builder()
                .max_capacity(200_000)
                .time_to_live(Duration::from_secs(60))
                .support_invalidation_closures()
                .build(),
            epoch: Default::default(),
            publish: None,
        }
    }

    /// Publishes this process's invalidations on Redis and applies everyone else's;
    /// spawns the two tasks that do it. Must be called inside a tokio runtime.
    pub(crate) fn shared(
        mut self,
        client: redis::Client,
        conn: ConnectionManager,
        settings: &RedisSettings,
    ) -> Self {
        let channel = settings.key("sessions:invalidate");
        let origin = Uuid::new_v4();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(publish(rx, conn, channel.clone(), origin));
        tokio::spawn(subscribe(client, channel, origin, self.clone()));
        self.publish = Some(tx);
        self
    }

    pub(crate) fn get(&self, token_hash: &str) -> Option<Principal> {
        self.by_token_hash.get(token_hash)
    }

    /// Where invalidations stand now; pass it to [`SessionCache::insert`] with what was
    /// read after it.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Caches a session read from the database after `epoch` was taken, unless an
    /// invalidation was applied in between. The check is repeated after the insert: an
    /// invalidation applied between the first check and the insert removes the entry
    /// here, and one applied after the second check finds the entry in place.
    pub(crate) fn insert(&self, principal: Principal, epoch: u64) {
        if self.epoch() != epoch {
            return;
        }
        let key = principal.token_hash.clone();
        self.by_token_hash.insert(key.clone(), principal);
        if self.epoch() != epoch {
            self.by_token_hash.invalidate(&key);
        }
    }

    pub(crate) fn invalidate(&self, token_hash: &str) {
        self.invalidate_everywhere(Invalidation::Token {
            token_hash: token_hash.to_owned(),
        });
    }

    pub(crate) fn invalidate_user(&self, user: UserId) {
        self.invalidate_everywhere(Invalidation::User { user: user.0 });
    }

    pub(crate) fn invalidate_tenant(&self, tenant: TenantId) {
        self.invalidate_everywhere(Invalidation::Tenant { tenant: tenant.0 });
    }

    /// Applies `what` here and, with Redis, has it published to the other processes.
    fn invalidate_everywhere(&self, what: Invalidation) {
        self.apply(&what);
        if let Some(tx) = &self.publish {
            // Fails only once the publisher task has ended with the runtime.
            let _ = tx.send(what);
        }
    }

    /// Applies an invalidation to this process's cache only.
    fn apply(&self, what: &Invalidation) {
        // Before invalidating: an insert that checks after this sees the change.
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let done = match what {
            Invalidation::Token { token_hash } => {
                self.by_token_hash.invalidate(token_hash);
                Ok(())
            }
            Invalidation::User { user } => {
                let user = UserId(*user);
                self.by_token_hash
                    .invalidate_entries_if(move |_, p| p.user.id == user)
                    .map(|_| ())
            }
            Invalidation::Tenant { tenant } => {
                let tenant = TenantId(*tenant);
                self.by_token_hash
                    .invalidate_entries_if(move |_, p| p.tenant.id == tenant)
                    .map(|_| ())
            }
        };
        // Only fails when closures are not enabled, which `new` does; fall back to clearing.
        if done.is_err() {
            self.by_token_hash.invalidate_all();
        }
    }
}

/// Publishes what this process invalidated. A message that cannot be published is
/// dropped: it matters only now, and other processes' entries expire within a minute.
async fn publish(
    mut rx: mpsc::UnboundedReceiver<Invalidation>,
    mut conn: ConnectionManager,
    channel: String,
    origin: Uuid,
) {
    while let Some(what) = rx.recv().await {
        let Ok(payload) = serde_json::to_string(&Published { origin, what }) else {
            continue;
        };
        let sent = tokio::time::timeout(
            crate::shared::COMMAND_TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload)
                .query_async::<i64>(&mut conn),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => PUBLISH_OUTAGE.failed(&e),
            Err(_) => PUBLISH_OUTAGE.failed(&"timed out"),
        }
    }
}

/// Applies other processes' invalidations, subscribing again (with backoff) whenever the
/// subscription is lost. Ends with the runtime.
async fn subscribe(client: redis::Client, channel: String, origin: Uuid, cache: SessionCache) {
    let mut wait = Duration::from_millis(200);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    // Whatever was published while unsubscribed is unknown: start afresh.
                    cache.by_token_hash.invalidate_all();
                    wait = Duration::from_millis(200);
                    tracing::debug!(%channel, "listening for session invalidations");
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        match serde_json::from_str::<Published>(&payload) {
                            Ok(p) if p.origin != origin => cache.apply(&p.what),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "unreadable session invalidation ignored")
                            }
                        }
                    }
                    tracing::warn!(
                        "session invalidation subscription lost; cached sessions are dropped and it is taken again"
                    );
                }
                Err(e) => PUBLISH_OUTAGE.failed(&e),
            },
            Err(e) => PUBLISH_OUTAGE.failed(&e),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::records::{PrincipalData, Tenant, TenantStatus, User};
    use chrono::Utc;
    use gatehouse_domain::ids::{CompanyId, SessionId};
    use gatehouse_domain::mfa::{Enrollment, UserMethod};
    use gatehouse_domain::role::Role;

    fn principal(token_hash: &str, user: UserId, tenant: TenantId) -> Principal {
        let now = Utc::now();
        Principal(std::sync::Arc::new(PrincipalData {
            session_id: SessionId(Uuid::new_v4()),
            token_hash: token_hash.to_owned(),
            user: User {
                id: user,
                tenant_id: tenant,
                username: "sam".into(),
                first_name: "Sam".into(),
                last_name: "Staff".into(),
                email: None,
                email_verified: false,
                phone: None,
                phone_verified: false,
                role: Role::Staff,
                active: true,
                pending_approval: false,
                approval_requested_by: None,
                locked: false,
                must_change_password: false,
                failed_logins: 0,
                mfa_failures: 0,
                mfa_method: UserMethod::None,
                mfa_enrollment: Enrollment::NextLogin,
                totp_enrolled: false,
                recovery_codes_remaining: 0,
                groups: Vec::new(),
                created_at: now,
                updated_at: now,
                last_login_at: None,
            },
            tenant: Tenant {
                id: tenant,
                company: CompanyId::parse("race-clinic").unwrap(),
                name: "Race clinic".into(),
                timezone: chrono_tz::America::New_York,
                status: TenantStatus::Active,
                settings: Default::default(),
                is_operator: false,
                created_at: now,
                updated_at: now,
            },
            expires_at: now,
            created_at: now,
            auth: gatehouse_domain::oidc::AuthContext::of(None, None),
            mfa_verified_at: None,
            last_seen: std::sync::atomic::AtomicI64::new(now.timestamp()),
        }))
    }

    #[test]
    fn t3_a_session_read_before_an_invalidation_is_not_cached_after_it() {
        let cache = SessionCache::new();
        let (user, tenant) = (UserId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        // Read from the database, then the user is deactivated elsewhere in this process,
        // then the read would be cached: it is not.
        let epoch = cache.epoch();
        cache.invalidate_user(user);
        cache.insert(principal("stale", user, tenant), epoch);
        assert!(cache.get("stale").is_none());
        // A suspension of the tenant in between: the same.
        let epoch = cache.epoch();
        cache.invalidate_tenant(tenant);
        cache.insert(principal("stale", user, tenant), epoch);
        assert!(cache.get("stale").is_none());
        // With nothing in between, the session is cached, and a later invalidation
        // removes it.
        let epoch = cache.epoch();
        cache.insert(principal("fresh", user, tenant), epoch);
        assert!(cache.get("fresh").is_some());
        cache.invalidate_user(user);
        assert!(cache.get("fresh").is_none());
    }

    #[test]
    fn invalidations_travel_as_tagged_json() {
        let origin = Uuid::new_v4();
        let user = Uuid::new_v4();
        let text = serde_json::to_string(&Published {
            origin,
            what: Invalidation::User { user },
        })
        .unwrap_or_default();
        let back: Published = serde_json::from_str(&text).unwrap_or(Published {
            origin: Uuid::nil(),
            what: Invalidation::Tenant {
                tenant: Uuid::nil(),
            },
        });
        assert_eq!(back.origin, origin);
        assert_eq!(back.what, Invalidation::User { user });
        assert!(text.contains("\"kind\":\"user\""), "{text}");
    }
}
