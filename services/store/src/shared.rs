//! What several Gatehouse processes share through Redis (GATEHOUSE_REDIS_URL): the
//! failed-sign-in counters ([`crate::ratelimit`]), the session cache's invalidations
//! ([`crate::cache`]) and, in the workers, the job queue and the provider send rates.
//!
//! Redis holds no durable state. Every use of it is bounded in time and degrades to the
//! process's own view when Redis does not answer: limits are then counted per process,
//! and cached sessions live out their one-minute lifetime. Nothing is lost, and a practice
//! is never locked out because Redis is down.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// How to reach Redis, and the prefix of every key and channel Gatehouse uses there (so
/// that several deployments, or test runs, can share one Redis).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub prefix: String,
}

impl RedisSettings {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "gatehouse";

    /// Settings with the default prefix.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }

    /// A key (or channel) name under the prefix: `<prefix>:<name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
}

/// How long one Redis command may take before the caller goes on without it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// Redis could not be reached or did not answer.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(pub String);

impl From<redis::RedisError> for RedisError {
    fn from(e: redis::RedisError) -> Self {
        Self(e.to_string())
    }
}

/// A connection that reconnects by itself, with every command bounded by
/// [`COMMAND_TIMEOUT`]. Fails when Redis cannot be reached now: a process configured with
/// Redis does not start without it.
pub async fn connect(settings: &RedisSettings) -> Result<ConnectionManager, RedisError> {
    let client = redis::Client::open(settings.url.as_str())?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_connection_manager_with_config(config),
    )
    .await
    .map_err(|_| RedisError(format!("no answer from {}", redacted(&settings.url))))??;
    Ok(conn)
}

/// The URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// Logs a Redis failure at most once every ten seconds per call site, so an outage does
/// not flood the logs with one line per request.
pub struct OutageLog {
    last: AtomicI64,
    what: &'static str,
}

impl OutageLog {
    pub const fn new(what: &'static str) -> Self {
        Self {
            last: AtomicI64::new(0),
            what,
        }
    }

    pub fn failed(&self, error: &dyn std::fmt::Display) {
        let now = chrono::Utc::now().timestamp();
        let last = self.last.load(Ordering::Relaxed);
        if now - last >= 10
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %error, "redis unavailable: {}", self.what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_passwords_never_shown() {
        let s = RedisSettings {
            url: "redis://:hunter2@cache.internal:6379/0".into(),
            prefix: "gh-test".into(),
        };
        assert_eq!(s.key("login:block:1.2.3.4"), "gh-test:login:block:1.2.3.4");
        let shown = redacted(&s.url);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("cache.internal"), "{shown}");
        assert_eq!(redacted("not a url"), "(unparsable URL)");
    }
}
