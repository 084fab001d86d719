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
//! Queues: the embedded default runs the workers in-process ([`spawn_in_process`]) on an
//! in-memory queue ([`InProcessQueue`]); with Redis ([`spawn_on_redis`]) API processes
//! push to a [`RedisQueue`] and any number of worker processes take from it.
//!
//! [`SendCode`]: gatehouse_domain::jobs::SendCode

pub mod aws;
pub mod message;
pub mod optout;
pub mod outbox;
pub mod provider;
pub mod queue;
pub mod rate;
pub mod record;
pub mod redis_queue;
pub mod requeue;
pub mod send;
pub mod subscription;

pub use optout::{OptOutSyncConfig, SmsOptOutSource};
pub use outbox::OutboxProvider;
pub use provider::{ByChannel, Provider, ProviderError};
pub use queue::InProcessQueue;
pub use rate::SendRateConfig;
pub use redis_queue::RedisQueue;
pub use requeue::RequeueConfig;
pub use send::{Outcome, SendDeps, SendError};

use apalis::prelude::{AbortError, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use apalis_core::backend::ext::BackendExt;
use gatehouse_domain::jobs::{ProcessInbound, SendCode};
use gatehouse_store::Store;
use gatehouse_store::inbound::InboundOutcome;
use gatehouse_store::queue::JobQueue;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The send worker's name (in its logs and spans; with Redis, made unique per process).
pub const SEND_WORKER: &str = "gatehouse-send-code";
/// The send worker of the bulk lane (the rest of one tenant's burst, see [`rate`]).
pub const BULK_WORKER: &str = "gatehouse-send-code-bulk";
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
    /// Provider send rates (D8), per channel; unlimited by default (the outbox has none).
    pub send_rates: SendRateConfig,
    /// A tenant's codes per 10 s that wait in the priority lane (0: all; see [`rate`]).
    /// In-process only: a [`RedisQueue`] is given its own.
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

/// Running workers; [`Workers::shutdown`] stops them.
pub struct Workers {
    queue: Arc<dyn JobQueue>,
    stop: watch::Sender<bool>,
    /// The two worker supervisors: they finish the jobs in flight when told to stop.
    workers: Vec<JoinHandle<()>>,
    /// The periodic jobs: re-enqueue, opt-out sync, vacuum.
    periodic: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("workers", &self.workers.len())
            .field("periodic", &self.periodic.len())
            .finish_non_exhaustive()
    }
}

impl Workers {
    /// The queue the workers take jobs from (the same one attached to the store).
    pub fn queue(&self) -> &dyn JobQueue {
        self.queue.as_ref()
    }

    /// Stops taking jobs and waits (up to the configured timeout) for sends in flight.
    /// A send cut off by the timeout stays `queued` and is sent by the next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        for mut worker in self.workers {
            if tokio::time::timeout_at(deadline, &mut worker)
                .await
                .is_err()
            {
                tracing::warn!("workers did not stop in time; abandoning sends in flight");
                worker.abort();
            }
        }
        for task in self.periodic {
            let _ = task.await;
        }
        tracing::info!("workers stopped");
    }
}

/// The apalis job function: one send, retried with backoff while transient. It never ends
/// as a plain failure: an error is final here (the delivery row records it, and the
/// re-enqueue picks up what is still `queued`), so no backend re-runs it by itself.
///
/// Its span continues the trace the job carries (the request that issued the code), so
/// that one trace runs from `POST /v1/auth/login` to the provider call (A2).
async fn send_job(job: SendCode, deps: Data<SendDeps>) -> Result<(), BoxDynError> {
    run_send(job, &deps)
        .await
        .map_err(|e| AbortError::new(e).into())
}

/// One send job's run, whichever way the job came (a queue, or the database while Redis
/// does not answer).
async fn run_send(job: SendCode, deps: &SendDeps) -> Result<(), SendError> {
    use gatehouse_store::telemetry::{continue_trace, label, metrics, secs};
    let span = tracing::info_span!(
        "job.run",
        otel.name = "send_code process",
        otel.kind = "consumer",
        job = "send_code",
        delivery_id = %job.delivery_id,
        outcome = tracing::field::Empty,
    );
    continue_trace(&span, job.traceparent.as_deref());
    if let Some(queued) = job.queued_at {
        let waited = (chrono::Utc::now() - queued).to_std().unwrap_or_default();
        metrics()
            .job_wait
            .record(secs(waited), &[label("job", "send_code")]);
    }
    let started = std::time::Instant::now();
    let result =
        tracing::Instrument::instrument(send::send_with_retries(&job, deps), span.clone()).await;
    let outcome = match &result {
        Ok(send::Outcome::Sent { .. }) => "sent",
        Ok(send::Outcome::Skipped) => "skipped",
        Ok(send::Outcome::OptedOut) => "opted_out",
        Err(e) if e.is_transient() => "left_queued",
        Err(_) => "failed",
    };
    span.record("outcome", outcome);
    metrics().job_duration.record(
        secs(started.elapsed()),
        &[label("job", "send_code"), label("outcome", outcome)],
    );
    result.map(|_| ())
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
    let span = tracing::info_span!(
        "job.run",
        otel.name = "process_inbound process",
        otel.kind = "consumer",
        job = "process_inbound",
    );
    gatehouse_store::telemetry::continue_trace(&span, job.traceparent.as_deref());
    tracing::Instrument::instrument(process_inbound(job, deps), span).await
}

async fn process_inbound(job: ProcessInbound, deps: Data<InboundDeps>) -> Result<(), BoxDynError> {
    let outcome = deps
        .store
        .process_inbound(&job.message_id)
        .await
        .map_err(AbortError::new)?;
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

/// Everything both queues' workers share.
struct Parts {
    runtime: tokio::runtime::Handle,
    send: SendDeps,
    inbound: InboundDeps,
    concurrency: usize,
    stop: watch::Sender<bool>,
}

impl Parts {
    fn new(
        store: &Store,
        config: &WorkerConfig,
        rates: rate::SendRates,
    ) -> Result<Self, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let confirmer = if config.subscribe_url_prefixes.is_empty() {
            None
        } else {
            Some(
                subscription::SubscriptionConfirmer::new(config.subscribe_url_prefixes.clone())
                    .map_err(|e| StartError::Http(e.to_string()))?,
            )
        };
        let batches = record::SendBatches::spawn(store, &runtime);
        Ok(Self {
            runtime,
            send: SendDeps {
                store: store.clone(),
                provider: config.provider.clone(),
                sms_opt_outs: config.sms_opt_outs.clone(),
                rates,
                retry: send::RetryPolicy {
                    retries: config.retries,
                    min: config.retry_min,
                    max: config.retry_max,
                },
                batches,
            },
            inbound: InboundDeps {
                store: store.clone(),
                sms_opt_outs: config.sms_opt_outs.clone(),
                confirmer,
            },
            concurrency: config.concurrency.max(1),
            stop: watch::channel(false).0,
        })
    }

    /// The periodic jobs of every worker process: the re-enqueue and, with SNS, the
    /// opt-out sync.
    fn periodic(
        &self,
        store: &Store,
        config: &WorkerConfig,
        queue: Arc<dyn JobQueue>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![self.runtime.spawn(requeue::run(
            store.clone(),
            queue,
            config.requeue,
            self.stop.subscribe(),
        ))];
        if let Some(source) = config.sms_opt_outs.clone() {
            tasks.push(self.runtime.spawn(optout::run_sync(
                store.clone(),
                source,
                config.opt_out_sync,
                self.stop.subscribe(),
            )));
        }
        tasks
    }

    fn into_workers(
        self,
        queue: Arc<dyn JobQueue>,
        workers: Vec<JoinHandle<()>>,
        periodic: Vec<JoinHandle<()>>,
        config: &WorkerConfig,
    ) -> Workers {
        tracing::info!(
            concurrency = self.concurrency,
            provider = ?config.provider,
            sms_opt_outs = config.sms_opt_outs.is_some(),
            "delivery workers started"
        );
        Workers {
            queue,
            stop: self.stop,
            workers,
            periodic,
            shutdown_timeout: config.shutdown_timeout,
        }
    }
}

/// A future that ends when `stop` turns true (or its sender is gone).
fn stopped(stop: &watch::Sender<bool>) -> impl Future<Output = std::io::Result<()>> + Send + use<> {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|s| *s).await;
        Ok(())
    }
}

/// Runs one worker until told to stop, starting it again (after a pause that grows up to
/// 30 s) whenever it ends on its own: its backend failed (Redis went away) or it panicked.
async fn supervise<F, Fut>(kind: &'static str, mut stop: watch::Receiver<bool>, mut run: F)
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(), apalis::prelude::WorkerError>> + Send + 'static,
{
    let mut pause = Duration::from_millis(500);
    loop {
        // Unique across processes and restarts: a stopped worker's name stays registered
        // in Redis for a while, and containers all run as pid 1.
        let name = format!(
            "{kind}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let began = tokio::time::Instant::now();
        let ended = tokio::spawn(run(name)).await;
        if *stop.borrow() {
            return;
        }
        match ended {
            Ok(Ok(())) => tracing::warn!(worker = kind, "worker ended; starting it again"),
            Ok(Err(e)) => {
                tracing::error!(worker = kind, error = %e, "worker failed; starting it again")
            }
            Err(e) => {
                tracing::error!(worker = kind, error = %e, "worker panicked; starting it again")
            }
        }
        // A worker that ran a good while failed afresh: start again soon.
        if began.elapsed() > Duration::from_secs(60) {
            pause = Duration::from_millis(500);
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// Starts the workers in this process on an in-memory queue, attaches that queue to
/// `store`, and starts the periodic jobs. Must be called inside a tokio runtime.
pub fn spawn_in_process(store: Store, config: WorkerConfig) -> Result<Workers, StartError> {
    let parts = Parts::new(&store, &config, rate::SendRates::local(config.send_rates))?;
    let queue = InProcessQueue::with_fair_burst(config.fair_burst);
    store.attach_queue(Arc::new(queue.clone()));

    let (deps, concurrency) = (parts.send.clone(), parts.concurrency);
    let send = WorkerBuilder::new(SEND_WORKER)
        .backend(queue.backend())
        .data(deps)
        .concurrency(concurrency)
        .enable_tracing()
        .build(send_job);
    let bulk = WorkerBuilder::new(BULK_WORKER)
        .backend(queue.bulk_backend())
        .data(parts.send.clone())
        .concurrency(rate::bulk_concurrency(concurrency))
        .enable_tracing()
        .build(send_job);
    let inbound = WorkerBuilder::new(INBOUND_WORKER)
        .backend(queue.inbound_backend())
        .data(parts.inbound.clone())
        .concurrency(INBOUND_CONCURRENCY)
        .enable_tracing()
        .build(inbound_job);
    // The in-memory queue cannot fail, so these run once, to the stop signal.
    let workers = vec![
        parts
            .runtime
            .spawn(log_end(SEND_WORKER, send.run_until(stopped(&parts.stop)))),
        parts
            .runtime
            .spawn(log_end(BULK_WORKER, bulk.run_until(stopped(&parts.stop)))),
        parts.runtime.spawn(log_end(
            INBOUND_WORKER,
            inbound.run_until(stopped(&parts.stop)),
        )),
    ];
    let queue: Arc<dyn JobQueue> = Arc::new(queue);
    let periodic = parts.periodic(&store, &config, queue.clone());
    Ok(parts.into_workers(queue, workers, periodic, &config))
}

async fn log_end(
    kind: &'static str,
    run: impl Future<Output = Result<(), apalis::prelude::WorkerError>>,
) {
    if let Err(e) = run.await {
        tracing::error!(worker = kind, error = %e, "worker stopped with an error");
    }
}

/// How often finished jobs are vacuumed from Redis. apalis-redis' vacuum reads every job
/// still held in one script, blocking Redis meanwhile: often enough that it stays small
/// (20,000 jobs at 2,000 sends/s).
const VACUUM_EVERY: Duration = Duration::from_secs(10);
/// SNS messages processed at once in a process (each is a few queries).
const INBOUND_CONCURRENCY: usize = 4;

/// Starts workers in this process taking jobs from Redis, attaches the same queue to
/// `store` (the re-enqueue and anything this process issues push there), and starts the
/// periodic jobs. Other processes may push and take from the same queue.
pub fn spawn_on_redis(
    store: Store,
    config: WorkerConfig,
    queue: RedisQueue,
) -> Result<Workers, StartError> {
    let (conn, settings) = queue.redis();
    let rates = rate::SendRates::shared(config.send_rates, conn.clone(), settings);
    let parts = Parts::new(&store, &config, rates)?;
    store.attach_queue(Arc::new(queue.clone()));

    let send_supervisor = redis_send_worker(
        SEND_WORKER,
        RedisQueue::send_backend,
        &queue,
        &parts,
        parts.concurrency,
    );
    let bulk_supervisor = redis_send_worker(
        BULK_WORKER,
        RedisQueue::bulk_backend,
        &queue,
        &parts,
        rate::bulk_concurrency(parts.concurrency),
    );
    let inbound_supervisor = {
        let (queue, deps) = (queue.clone(), parts.inbound.clone());
        let stop = parts.stop.clone();
        supervise(INBOUND_WORKER, parts.stop.subscribe(), move |name| {
            WorkerBuilder::new(name)
                .backend(
                    queue
                        .inbound_backend(INBOUND_CONCURRENCY)
                        .poll_with_strategy(redis_queue::Every::new(Duration::from_millis(250))),
                )
                .data(deps.clone())
                .concurrency(INBOUND_CONCURRENCY)
                .enable_tracing()
                .build(inbound_job)
                .run_until(stopped(&stop))
        })
    };
    let workers = vec![
        parts.runtime.spawn(send_supervisor),
        parts.runtime.spawn(bulk_supervisor),
        parts.runtime.spawn(inbound_supervisor),
    ];
    let shared: Arc<dyn JobQueue> = Arc::new(queue.clone());
    let mut periodic = parts.periodic(&store, &config, shared.clone());
    periodic.push(parts.runtime.spawn(from_database(
        store.clone(),
        parts.send.clone(),
        queue.clone(),
        parts.concurrency,
        parts.stop.subscribe(),
    )));
    periodic.push(parts.runtime.spawn(vacuum(queue, parts.stop.subscribe())));
    Ok(parts.into_workers(shared, workers, periodic, &config))
}

/// A supervised send worker taking jobs from one of the Redis queue's send lanes.
fn redis_send_worker(
    kind: &'static str,
    lane: fn(&RedisQueue, usize) -> apalis_redis::RedisStorage<SendCode>,
    queue: &RedisQueue,
    parts: &Parts,
    concurrency: usize,
) -> impl Future<Output = ()> + use<> {
    let (queue, deps, stop) = (queue.clone(), parts.send.clone(), parts.stop.clone());
    supervise(kind, parts.stop.subscribe(), move |name| {
        WorkerBuilder::new(name)
            .backend(
                lane(&queue, concurrency)
                    .poll_with_strategy(redis_queue::Every::new(redis_queue::POLL_INTERVAL)),
            )
            .data(deps.clone())
            .concurrency(concurrency)
            .enable_tracing()
            .build(send_job)
            .run_until(stopped(&stop))
    })
}

/// How often a worker process asks Redis whether it answers (one `PING`) and, while it
/// does not, takes queued deliveries from the database.
pub const FALLBACK_EVERY: Duration = Duration::from_millis(250);
/// While Redis does not answer, a delivery queued (or last tried) this long ago is taken
/// from the database: a new code is sent within about this plus [`FALLBACK_EVERY`].
pub const FALLBACK_IDLE: Duration = Duration::from_millis(500);
/// For this long after Redis answers again, deliveries still queued after
/// [`FALLBACK_IDLE`] are taken from the database too: their jobs may have been lost with
/// Redis, the queue's consumers may still be starting again (the fault run saw them take
/// seconds), and the codes asked for in the outage's last moments are still in the
/// database. Taking a delivery that also has a job is harmless: the claim lets one send.
pub const FALLBACK_GRACE: Duration = Duration::from_secs(30);

/// The way codes keep going out while Redis is down: every [`FALLBACK_EVERY`], while the
/// breaker of the queue's Redis is open (this process's last Redis command failed, or the
/// `PING` here did) and for [`FALLBACK_GRACE`] after it closed, up to `concurrency`
/// queued deliveries whose code lives are taken straight from the database and sent,
/// `concurrency` at once. Each is claimed as a job
/// from the queue would be, so one delivery is still sent by one worker only, whether
/// its job also waits in Redis or another worker process takes it from the database too.
/// When Redis answers again the breaker closes and the queue is the way again.
async fn from_database(
    store: Store,
    deps: SendDeps,
    queue: RedisQueue,
    concurrency: usize,
    mut stop: watch::Receiver<bool>,
) {
    let breaker = queue.breaker().clone();
    let (conn, _) = queue.redis();
    let conn = conn.clone();
    let limit = u64::try_from(concurrency).unwrap_or(64);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FALLBACK_EVERY) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if !breaker.is_open() {
            let mut ping = conn.clone();
            let _ = breaker
                .call(
                    &conn,
                    FALLBACK_EVERY,
                    redis::cmd("PING").query_async::<String>(&mut ping),
                )
                .await;
        }
        if !breaker.open_within(FALLBACK_GRACE) {
            continue;
        }
        let idle =
            chrono::Duration::from_std(FALLBACK_IDLE).unwrap_or(chrono::Duration::seconds(1));
        let due = match store.deliveries_to_requeue(idle, limit).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "reading queued deliveries failed; trying again");
                continue;
            }
        };
        if due.is_empty() {
            continue;
        }
        tracing::info!(
            deliveries = due.len(),
            redis_down = breaker.is_open(),
            "taking queued deliveries from the database"
        );
        let mut sends = tokio::task::JoinSet::new();
        for job in due {
            let deps = deps.clone();
            sends.spawn(async move {
                if let Err(e) = run_send(job, &deps).await {
                    tracing::debug!(error = %e, "send taken from the database did not complete");
                }
            });
        }
        while sends.join_next().await.is_some() {}
    }
}

/// Vacuums finished jobs from Redis every [`VACUUM_EVERY`] until told to stop.
async fn vacuum(queue: RedisQueue, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(VACUUM_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        match queue.vacuum().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "vacuumed finished jobs from redis"),
            Err(e) => tracing::warn!(error = %e, "vacuuming redis failed; trying again later"),
        }
    }
}
