//! Running workers: what both queues' workers share, the handle that stops them, and the
//! supervision that starts a failed worker again.

use crate::config::{StartError, WorkerConfig};
use crate::jobs::InboundDeps;
use crate::send::{self, SendDeps};
use crate::{optout, rate, record, requeue, subscription};
use gatehouse_store::Store;
use gatehouse_store::queue::JobQueue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// Everything both queues' workers share.
pub(crate) struct Parts {
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) send: SendDeps,
    pub(crate) inbound: InboundDeps,
    pub(crate) concurrency: usize,
    pub(crate) stop: watch::Sender<bool>,
}

impl Parts {
    pub(crate) fn new(
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
    pub(crate) fn periodic(
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

    pub(crate) fn into_workers(
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
pub(crate) fn stopped(
    stop: &watch::Sender<bool>,
) -> impl Future<Output = std::io::Result<()>> + Send + use<> {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|s| *s).await;
        Ok(())
    }
}

/// Runs one worker until told to stop, starting it again (after a pause that grows up to
/// 30 s) whenever it ends on its own: its backend failed (Redis went away) or it panicked.
pub(crate) async fn supervise<F, Fut>(
    kind: &'static str,
    mut stop: watch::Receiver<bool>,
    mut run: F,
) where
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

pub(crate) async fn log_end(
    kind: &'static str,
    run: impl Future<Output = Result<(), apalis::prelude::WorkerError>>,
) {
    if let Err(e) = run.await {
        tracing::error!(worker = kind, error = %e, "worker stopped with an error");
    }
}
