//! Gatehouse workers: codes leave through the job queue, never inside an HTTP request.
//!
//! The store commits a challenge and its `deliveries` row, then pushes a [`SendCode`] job
//! to the attached [`JobQueue`]. A worker takes it ([`send::send_code`]): claims the
//! delivery, opens its sealed message, composes the text ([`message`]), hands it to a
//! [`Provider`] and records the outcome. Transient failures are retried with exponential
//! backoff and jitter while the code lives; the periodic re-enqueue ([`requeue`]) pushes
//! again whatever is still `queued`, so neither a lost push nor a restart loses a code.
//!
//! Providers: the [`OutboxProvider`] (a JSON-lines file, the embedded default) and, with
//! `GATEHOUSE_DELIVERY=aws`, SES v2 for email and SNS for SMS ([`aws`]). With SNS, the
//! provider's SMS opt-out list is consulted and kept in step ([`optout`]): numbers used for
//! the first time are checked, the list is synced periodically, and START opts back in.
//!
//! The embedded default runs all of this in-process ([`spawn_in_process`]) on an
//! in-memory queue ([`InProcessQueue`]). A Redis queue will be another [`JobQueue`] and
//! another backend for the same worker.
//!
//! [`SendCode`]: gatehouse_domain::jobs::SendCode

pub mod aws;
pub mod message;
pub mod optout;
pub mod outbox;
pub mod provider;
pub mod queue;
pub mod requeue;
pub mod send;
pub mod subscription;

pub use optout::{OptOutSyncConfig, SmsOptOutSource};
pub use outbox::OutboxProvider;
pub use provider::{ByChannel, Provider, ProviderError};
pub use queue::InProcessQueue;
pub use requeue::RequeueConfig;
pub use send::{Outcome, SendDeps, SendError};

use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
use apalis::prelude::{BoxDynError, Data, Monitor, RetryPolicy, WorkerBuilder, WorkerBuilderExt};
use gatehouse_domain::jobs::{ProcessInbound, SendCode};
use gatehouse_store::Store;
use gatehouse_store::inbound::InboundOutcome;
use gatehouse_store::queue::JobQueue;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// The apalis worker's name (in its logs and spans).
pub const SEND_WORKER: &str = "gatehouse-send-code";
/// The worker that processes SNS messages recorded by the webhook.
pub const INBOUND_WORKER: &str = "gatehouse-inbound";

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
}

impl WorkerConfig {
    /// Defaults with a given provider.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Self {
            provider,
            concurrency: 32,
            retries: 4,
            retry_min: Duration::from_millis(250),
            retry_max: Duration::from_secs(10),
            requeue: RequeueConfig::default(),
            sms_opt_outs: None,
            opt_out_sync: OptOutSyncConfig::default(),
            subscribe_url_prefixes: Vec::new(),
            shutdown_timeout: Duration::from_secs(10),
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
    #[error("retry backoff: {0}")]
    Backoff(String),
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Running in-process workers; [`Workers::shutdown`] stops them.
#[derive(Debug)]
pub struct Workers {
    queue: InProcessQueue,
    stop_monitor: oneshot::Sender<()>,
    stop_periodic: watch::Sender<bool>,
    monitor: JoinHandle<()>,
    requeue: JoinHandle<()>,
    opt_out_sync: Option<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl Workers {
    /// The queue the workers take jobs from (the same one attached to the store).
    pub fn queue(&self) -> &InProcessQueue {
        &self.queue
    }

    /// Stops taking jobs and waits (up to the configured timeout) for sends in flight.
    /// A send cut off by the timeout stays `queued` and is sent by the next start.
    pub async fn shutdown(self) {
        let _ = self.stop_periodic.send(true);
        let _ = self.stop_monitor.send(());
        // Past the monitor's own grace period it drops what is left; this bound is a backstop.
        let bound = self.shutdown_timeout + Duration::from_secs(1);
        let mut monitor = self.monitor;
        if tokio::time::timeout(bound, &mut monitor).await.is_err() {
            tracing::warn!("workers did not stop in time; abandoning sends in flight");
            monitor.abort();
        }
        let _ = self.requeue.await;
        if let Some(sync) = self.opt_out_sync {
            let _ = sync.await;
        }
        tracing::info!("workers stopped");
    }
}

/// The apalis job function: one send.
async fn send_job(job: SendCode, deps: Data<SendDeps>) -> Result<Outcome, BoxDynError> {
    send::send_code(&job, &deps)
        .await
        .map_err(BoxDynError::from)
}

/// What the inbound job needs; cheap to clone.
#[derive(Debug, Clone)]
struct InboundDeps {
    store: Store,
    sms_opt_outs: Option<Arc<dyn SmsOptOutSource>>,
    confirmer: Option<subscription::SubscriptionConfirmer>,
}

/// The apalis job function: processes one verified SNS message (bounce, complaint,
/// delivery, STOP/START). A failure leaves the message unprocessed, and the periodic
/// job pushes it again. After a START the provider is told too.
async fn inbound_job(job: ProcessInbound, deps: Data<InboundDeps>) -> Result<(), BoxDynError> {
    let outcome = deps
        .store
        .process_inbound(&job.message_id)
        .await
        .map_err(BoxDynError::from)?;
    if let Some(outcome) = outcome {
        optout::after_inbound(&outcome, deps.sms_opt_outs.as_deref()).await;
        if let InboundOutcome::Subscription {
            subscribe_url: Some(url),
        } = &outcome
        {
            match deps.confirmer.as_ref().map(|c| c.confirm(url)) {
                Some(visit) => match visit.await {
                    Ok(()) => {
                        tracing::info!(message_id = %job.message_id, "SNS subscription confirmed")
                    }
                    Err(e) => {
                        tracing::error!(message_id = %job.message_id, error = %e, "SNS subscription not confirmed; an operator can confirm it in the SNS console")
                    }
                },
                None => {
                    tracing::warn!(message_id = %job.message_id, "SNS subscription confirmation received; no confirmer configured")
                }
            }
        }
    }
    Ok(())
}

/// Retry only what can succeed later (the next claim re-checks that the code lives).
fn worth_retrying(e: &BoxDynError) -> bool {
    e.downcast_ref::<SendError>()
        .is_some_and(SendError::is_transient)
}

/// Starts the workers in this process on an in-memory queue, attaches that queue to
/// `store`, and starts the periodic re-enqueue. Must be called inside a tokio runtime.
pub fn spawn_in_process(store: Store, config: WorkerConfig) -> Result<Workers, StartError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
    let backoff = ExponentialBackoffMaker::new(
        config.retry_min,
        config.retry_max,
        0.5,
        HasherRng::default(),
    )
    .map_err(|e| StartError::Backoff(e.to_string()))?
    .make_backoff();

    let queue = InProcessQueue::new();
    store.attach_queue(Arc::new(queue.clone()));

    let deps = SendDeps {
        store: store.clone(),
        provider: config.provider.clone(),
        sms_opt_outs: config.sms_opt_outs.clone(),
    };
    let backend_of = queue.clone();
    let inbound_of = queue.clone();
    let inbound_deps = InboundDeps {
        store: store.clone(),
        sms_opt_outs: config.sms_opt_outs.clone(),
        confirmer: if config.subscribe_url_prefixes.is_empty() {
            None
        } else {
            Some(
                subscription::SubscriptionConfirmer::new(config.subscribe_url_prefixes.clone())
                    .map_err(|e| StartError::Http(e.to_string()))?,
            )
        },
    };
    let concurrency = config.concurrency.max(1);
    let retries = config.retries;
    let (stop_monitor, stopped) = oneshot::channel::<()>();
    let monitor = Monitor::new()
        .register(move |_restarts| {
            WorkerBuilder::new(SEND_WORKER)
                .backend(backend_of.backend())
                .data(deps.clone())
                .concurrency(concurrency)
                .retry(
                    RetryPolicy::retries(retries)
                        .with_backoff(backoff.clone())
                        .retry_if(worth_retrying),
                )
                .enable_tracing()
                .build(send_job)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(INBOUND_WORKER)
                .backend(inbound_of.inbound_backend())
                .data(inbound_deps.clone())
                .concurrency(4)
                .enable_tracing()
                .build(inbound_job)
        })
        .shutdown_timeout(config.shutdown_timeout);
    let monitor = runtime.spawn(async move {
        // A dropped handle stops the workers too.
        let signal = async move {
            let _ = stopped.await;
            Ok(())
        };
        if let Err(e) = monitor.run_with_signal(signal).await {
            tracing::error!(error = %e, "workers stopped with an error");
        }
    });

    let (stop_periodic, periodic_stop) = watch::channel(false);
    let opt_out_sync = config.sms_opt_outs.clone().map(|source| {
        runtime.spawn(optout::run_sync(
            store.clone(),
            source,
            config.opt_out_sync,
            periodic_stop.clone(),
        ))
    });
    let pusher: Arc<dyn JobQueue> = Arc::new(queue.clone());
    let requeue = runtime.spawn(requeue::run(store, pusher, config.requeue, periodic_stop));
    tracing::info!(
        worker = SEND_WORKER,
        concurrency,
        provider = ?config.provider,
        sms_opt_outs = config.sms_opt_outs.is_some(),
        "in-process workers started"
    );
    Ok(Workers {
        queue,
        stop_monitor,
        stop_periodic,
        monitor,
        requeue,
        opt_out_sync,
        shutdown_timeout: config.shutdown_timeout,
    })
}
