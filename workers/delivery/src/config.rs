//! How the workers run: their configuration, and why they may not start.

use crate::{
    OptOutSyncConfig, OutboxProvider, Provider, RequeueConfig, SendRateConfig, SmsOptOutSource,
    rate,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the workers run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Where messages go.
    pub provider: Arc<dyn Provider>,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// Immediate retries of a transient failure (the re-enqueue job goes on after them).
    pub retries: usize,
    /// Backoff between retries: from `retry_min`, doubling with jitter, up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub requeue: RequeueConfig,
    /// The provider's SMS opt-out list (AWS); `None` with the outbox.
    pub sms_opt_outs: Option<Arc<dyn SmsOptOutSource>>,
    /// The periodic sync of that list (runs only when there is one).
    pub opt_out_sync: OptOutSyncConfig,
    /// SubscribeURL prefixes a SubscriptionConfirmation may be confirmed at (the
    /// webhook's certificate URL allow-list); empty: confirmations are only logged.
    pub subscribe_url_prefixes: Vec<String>,
    /// How long shutdown waits for sends in flight.
    pub shutdown_timeout: Duration,
    /// Provider send rates (D8), per channel; unlimited by default (the outbox has none).
    pub send_rates: SendRateConfig,
    /// A tenant's codes per 10 s that wait in the priority lane (0: all; see [`rate`]).
    /// In-process only: a [`RedisQueue`](crate::RedisQueue) is given its own.
    pub fair_burst: u32,
}

impl WorkerConfig {
    /// Defaults with a given provider.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Self {
            provider,
            concurrency: 64,
            retries: 4,
            retry_min: Duration::from_millis(250),
            retry_max: Duration::from_secs(10),
            requeue: RequeueConfig::default(),
            sms_opt_outs: None,
            opt_out_sync: OptOutSyncConfig::default(),
            subscribe_url_prefixes: Vec::new(),
            shutdown_timeout: Duration::from_secs(10),
            send_rates: SendRateConfig::UNLIMITED,
            fair_burst: rate::FAIR_BURST,
        }
    }

    /// Defaults, delivering to the outbox file at `path`.
    pub fn outbox(path: impl Into<PathBuf>) -> Self {
        Self::new(Arc::new(OutboxProvider::new(path)))
    }
}

/// The workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the workers must be started inside a tokio runtime")]
    NoRuntime,
    #[error("HTTP client: {0}")]
    Http(String),
}
