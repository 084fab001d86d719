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
//! `GATEHOUSE_DELIVERY=aws`, SES v2 for email and SNS for SMS ([`aws`]).
//!
//! The embedded default runs all of this in-process ([`spawn_in_process`]) on an
//! in-memory queue ([`InProcessQueue`]). A Redis queue will be another [`JobQueue`] and
//! another backend for the same worker.
//!
//! [`SendCode`]: gatehouse_domain::jobs::SendCode

pub mod aws;
pub mod message;
pub mod outbox;
pub mod provider;
pub mod queue;
pub mod requeue;
pub mod send;

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
}

/// Running in-process workers; [`Workers::shutdown`] stops them.
#[derive(Debug)]
pub struct Workers {
    queue: InProcessQueue,
    stop_monitor: oneshot::Sender<()>,
    stop_requeue: watch::Sender<bool>,
    monitor: JoinHandle<()>,
    requeue: JoinHandle<()>,
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
        let _ = self.stop_requeue.send(true);
        let _ = self.stop_monitor.send(());
        // Past the monitor's own grace period it drops what is left; this bound is a backstop.
        let bound = self.shutdown_timeout + Duration::from_secs(1);
        let mut monitor = self.monitor;
        if tokio::time::timeout(bound, &mut monitor).await.is_err() {
            tracing::warn!("workers did not stop in time; abandoning sends in flight");
            monitor.abort();
        }
        let _ = self.requeue.await;
        tracing::info!("workers stopped");
    }
}

/// The apalis job function: one send.
async fn send_job(job: SendCode, deps: Data<SendDeps>) -> Result<Outcome, BoxDynError> {
    send::send_code(&job, &deps)
        .await
        .map_err(BoxDynError::from)
}

/// The apalis job function: processes one verified SNS message (bounce, complaint,
/// delivery, STOP/START). A failure leaves the message unprocessed, and the periodic
/// job pushes it again.
async fn inbound_job(job: ProcessInbound, store: Data<Store>) -> Result<(), BoxDynError> {
    store
        .process_inbound(&job.message_id)
        .await
        .map(|_| ())
        .map_err(BoxDynError::from)
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
    };
    let backend_of = queue.clone();
    let inbound_of = queue.clone();
    let inbound_store = store.clone();
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
                .data(inbound_store.clone())
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

    let (stop_requeue, requeue_stop) = watch::channel(false);
    let pusher: Arc<dyn JobQueue> = Arc::new(queue.clone());
    let requeue = runtime.spawn(requeue::run(store, pusher, config.requeue, requeue_stop));
    tracing::info!(
        worker = SEND_WORKER,
        concurrency,
        provider = ?config.provider,
        "in-process workers started"
    );
    Ok(Workers {
        queue,
        stop_monitor,
        stop_requeue,
        monitor,
        requeue,
        shutdown_timeout: config.shutdown_timeout,
    })
}
