//! Workers taking jobs from Redis, shared by every API and worker process, with the way
//! codes keep going out from the database while Redis does not answer.

use crate::config::{StartError, WorkerConfig};
use crate::jobs::{INBOUND_CONCURRENCY, inbound_job, run_send, send_job};
use crate::send::SendDeps;
use crate::supervise::{Parts, Workers, stopped, supervise};
use crate::{BULK_WORKER, INBOUND_WORKER, RedisQueue, SEND_WORKER, rate, redis_queue};
use apalis::prelude::{WorkerBuilder, WorkerBuilderExt};
use apalis_core::backend::ext::BackendExt;
use gatehouse_domain::jobs::SendCode;
use gatehouse_store::Store;
use gatehouse_store::queue::JobQueue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often finished jobs are vacuumed from Redis. apalis-redis' vacuum reads every job
/// still held in one script, blocking Redis meanwhile: often enough that it stays small
/// (20,000 jobs at 2,000 sends/s).
const VACUUM_EVERY: Duration = Duration::from_secs(10);

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
