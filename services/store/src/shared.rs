//! What several Gatehouse processes share through Redis (GATEHOUSE_REDIS_URL): the
//! failed-sign-in counters ([`crate::ratelimit`]), the session cache's invalidations
//! ([`crate::cache`]) and, in the workers, the job queue and the provider send rates.
//!
//! Redis holds no durable state. Every use of it is bounded in time and degrades to the
//! process's own view when Redis does not answer: limits are then counted per process,
//! and cached sessions live out their one-minute lifetime. Nothing is lost, and a practice
//! is never locked out because Redis is down.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

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

/// How often an open [`Breaker`] asks Redis whether it is back (one `PING`, bounded by
/// the same time).
pub const PROBE_EVERY: Duration = Duration::from_millis(250);

/// The circuit breaker of one Redis, shared by everything in the process that uses it
/// (the job pushes, the failed-sign-in counters, the fairness lanes and send rates).
///
/// Every Redis command on a request path is bounded (500 ms), but while Redis is down a
/// bound reached on every request is a sign-in that waits 500 ms for nothing. So the
/// first command that fails or times out opens the breaker: from then on, callers skip
/// Redis at once (each falls back as it always did: the delivery row stays `queued` and
/// the workers take it from the database, counts stay per process) and a background task
/// asks Redis with one `PING` every [`PROBE_EVERY`]. The first answer closes the breaker:
/// the fast path resumes by itself, without any request having waited.
pub struct Breaker {
    /// Whether callers skip Redis now.
    open: AtomicBool,
    /// Whether a probe task runs (at most one).
    probing: AtomicBool,
    /// Milliseconds since `epoch` at which the breaker last closed (0: never opened).
    closed_at_ms: AtomicU64,
    /// How many times it opened.
    trips: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("open", &self.is_open())
            .field("trips", &self.trips())
            .finish()
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            open: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            closed_at_ms: AtomicU64::new(0),
            trips: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

/// The breaker of the Redis at `settings.url`: one per URL in the process, so the queue,
/// the limiter and the workers of one process see one state.
pub fn breaker(settings: &RedisSettings) -> Arc<Breaker> {
    static ALL: OnceLock<Mutex<HashMap<String, Arc<Breaker>>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    all.entry(settings.url.clone()).or_default().clone()
}

static BREAKER_LOG: OutageLog = OutageLog::new("skipping it until it answers again");

impl Breaker {
    /// Whether callers skip Redis now.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// How many times the breaker opened since the process started.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    /// Whether it is open, or closed less than `within` ago.
    pub fn open_within(&self, within: Duration) -> bool {
        if self.is_open() {
            return true;
        }
        let closed = self.closed_at_ms.load(Ordering::Acquire);
        closed != 0 && self.now_ms().saturating_sub(closed) < within.as_millis() as u64
    }

    fn now_ms(&self) -> u64 {
        (self.epoch.elapsed().as_millis() as u64).max(1)
    }

    /// Redis failed or did not answer: opens the breaker and starts the probe. Outside a
    /// tokio runtime no probe can run, so the breaker stays closed.
    pub fn failed(self: &Arc<Self>, conn: &ConnectionManager, error: &dyn std::fmt::Display) {
        if !self.open.swap(true, Ordering::AcqRel) {
            self.trips.fetch_add(1, Ordering::Relaxed);
            BREAKER_LOG.failed(error);
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.open.store(false, Ordering::Release);
            self.probing.store(false, Ordering::Release);
            return;
        };
        let (me, mut conn) = (self.clone(), conn.clone());
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                let ping = tokio::time::timeout(
                    PROBE_EVERY,
                    redis::cmd("PING").query_async::<String>(&mut conn),
                )
                .await;
                if matches!(ping, Ok(Ok(_))) {
                    me.closed_at_ms.store(me.now_ms(), Ordering::Release);
                    me.open.store(false, Ordering::Release);
                    me.probing.store(false, Ordering::Release);
                    tracing::info!("redis answers again; using it");
                    return;
                }
            }
        });
    }

    /// Runs one Redis command bounded by `limit`, unless the breaker is open (then it
    /// answers an error at once, without touching Redis). A failure or timeout opens it.
    pub async fn call<T, E: std::fmt::Display>(
        self: &Arc<Self>,
        conn: &ConnectionManager,
        limit: Duration,
        command: impl Future<Output = Result<T, E>>,
    ) -> Result<T, RedisError> {
        if self.is_open() {
            return Err(RedisError(
                "not tried: redis did not answer a moment ago (circuit open)".into(),
            ));
        }
        match tokio::time::timeout(limit, command).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.failed(conn, &e);
                Err(RedisError(e.to_string()))
            }
            Err(_) => {
                let e = RedisError(format!("no answer within {limit:?}"));
                self.failed(conn, &e);
                Err(e)
            }
        }
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
