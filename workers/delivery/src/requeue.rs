//! The periodic re-enqueue (D1): every so often, push again each `queued` delivery that
//! nothing touched for a while and whose code still lives. This is what makes a lost
//! push, a full restart or an exhausted retry lose no code.

use gatehouse_domain::jobs::ProcessInbound;
use gatehouse_store::Store;
use gatehouse_store::queue::JobQueue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the re-enqueue runs.
#[derive(Debug, Clone, Copy)]
pub struct RequeueConfig {
    /// Time between runs.
    pub every: Duration,
    /// A delivery untouched this long is pushed again (longer than a normal send takes).
    pub idle: Duration,
    /// Deliveries pushed per run at most.
    pub limit: u64,
}

impl Default for RequeueConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(15),
            idle: Duration::from_secs(20),
            limit: 500,
        }
    }
}

/// One run: ends queued deliveries whose code died unsent, then pushes what is due
/// (queued deliveries whose code lives, SNS messages not processed); answers how many
/// were pushed.
pub async fn requeue_once(
    store: &Store,
    queue: &dyn JobQueue,
    config: &RequeueConfig,
) -> Result<usize, gatehouse_store::StoreError> {
    let idle = chrono::Duration::from_std(config.idle).unwrap_or(chrono::Duration::seconds(20));
    let dead = store.fail_dead_deliveries(config.limit).await?;
    if dead > 0 {
        tracing::info!(
            failed = dead,
            "queued deliveries whose code died unsent are now failed"
        );
    }
    let due = store.deliveries_to_requeue(idle, config.limit).await?;
    let mut pushed = 0;
    for job in due {
        let delivery_id = job.delivery_id;
        match queue.push_send_code(job).await {
            Ok(()) => pushed += 1,
            Err(e) => {
                // The queue is down: the rest would fail alike (and, with Redis, the
                // workers take them from the database meanwhile).
                tracing::warn!(%delivery_id, error = %e, "re-enqueue push failed; pushing the rest next time");
                return Ok(pushed);
            }
        }
    }
    // SNS messages recorded by the webhook whose processing job was lost.
    for message_id in store.inbound_pending(idle, config.limit).await? {
        let job = ProcessInbound::new(message_id.clone());
        match queue.push_process_inbound(job).await {
            Ok(()) => pushed += 1,
            Err(e) => tracing::warn!(%message_id, error = %e, "re-enqueue push failed"),
        }
    }
    Ok(pushed)
}

/// Runs [`requeue_once`] every `config.every` until `stop` turns true. Errors are logged
/// and the loop goes on.
pub(crate) async fn run(
    store: Store,
    queue: Arc<dyn JobQueue>,
    config: RequeueConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(config.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        match requeue_once(&store, queue.as_ref(), &config).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pushed = n, "re-enqueued queued deliveries"),
            Err(e) => tracing::error!(error = %e, "re-enqueue failed; trying again next time"),
        }
        record_queue_depth(&store).await;
    }
    tracing::debug!("re-enqueue stopped");
}

/// Sets `gatehouse_queue_depth` from the database.
async fn record_queue_depth(store: &Store) {
    use gatehouse_store::telemetry::{label, metrics};
    match store.queued_by_channel().await {
        Ok(depths) => {
            for (channel, n) in depths {
                metrics()
                    .queue_depth
                    .record(n, &[label("channel", channel.as_str())]);
            }
        }
        Err(e) => tracing::warn!(error = %e, "queue depth could not be read"),
    }
}
