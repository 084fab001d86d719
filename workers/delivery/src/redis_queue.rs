//! The Redis job queue (apalis-redis) of production: API processes push, `gatehouse
//! worker` processes take, and Redis holds the jobs in between.
//!
//! Redis holds only the jobs: the delivery row (with its sealed message) and the recorded
//! SNS message are the durable records, so a push lost to a Redis outage, or a job lost
//! with Redis' memory, is pushed again by the periodic re-enqueue. A push never waits
//! longer than [`PUSH_TIMEOUT`]: a sign-in does not hang on a stalled Redis. After one
//! push (or any other Redis command of the process) fails, the breaker opens and pushes
//! fail at once without trying Redis, until a probe finds it back; meanwhile the workers
//! take queued deliveries straight from the database (see `lib.rs`).
//!
//! How apalis-redis is used here, and why:
//! - queue names are set explicitly under the configured prefix, identically in every
//!   process (the default would be a Rust type path);
//! - the worker polls for new jobs every [`POLL_INTERVAL`] (20 ms): without it a job
//!   pushed by another process is only seen at the next heartbeat. The poll is our own
//!   [`Every`], not apalis' `poll_with_interval`: that one arms its next delay without
//!   polling it, so when the delay fires in the same wake-up as an empty fetch nothing is
//!   left to wake the worker, and it sleeps until the heartbeat (5 s; the load test's
//!   dispatch p99 was 4 s);
//! - a job's idempotency key (the delivery id or the SNS message id) lives for
//!   [`IDEMPOTENCY_TTL`]: pushes of one job by several processes at about the same time
//!   become one, and the re-enqueue can push it again later (a duplicate that slips
//!   through is harmless: a delivery is claimed at most once);
//! - jobs never end as plain failures (see `lib.rs`): apalis-redis would re-run those up to
//!   25 times by itself, beside our own retries and re-enqueue;
//! - a finished job is acknowledged (`persist_results`): it leaves its worker's in-flight
//!   set and is marked done, and the periodic [`RedisQueue::vacuum`] drops it. Without the
//!   acknowledgement every job ever taken stayed in Redis, and when a worker stopped,
//!   another pushed all of them again;
//! - jobs are not locked (`lock_tasks`): taking a job already puts it in the worker's
//!   in-flight set, which is what brings it back if the worker dies. The lock only marked
//!   it "Running", through apalis' event channel before the job could start;
//! - a worker takes up to half its concurrency per fetch ([`fetch_batch`]): apalis' event
//!   channel holds four batches, and acknowledgements then never wait for room in it
//!   (waiting there stalls every send until the next heartbeat).

use crate::rate::{Lane, Lanes};
use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_core::backend::Vacuum;
use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use gatehouse_domain::jobs::{ProcessInbound, SendCode};
use gatehouse_store::queue::{JobQueue, PushFuture, QueueError};
use gatehouse_store::shared::{Breaker, RedisSettings};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Longest a push may take before the caller goes on (the re-enqueue pushes later).
pub const PUSH_TIMEOUT: Duration = Duration::from_millis(500);
/// How often an idle worker asks Redis for new jobs: the most a code waits in Redis
/// before a free worker sees it. Each ask is one small script in Redis.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a pushed job's idempotency key refuses a duplicate.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(5);
/// A worker that missed this many heartbeats is presumed dead and its jobs go back.
const HEARTBEAT: Duration = Duration::from_secs(5);
const MISSED_HEARTBEATS: usize = 6;

/// The two queues in Redis; clones share the connection.
#[derive(Clone)]
pub struct RedisQueue {
    send: RedisStorage<SendCode>,
    bulk: RedisStorage<SendCode>,
    lanes: Lanes,
    inbound: RedisStorage<ProcessInbound>,
    conn: ConnectionManager,
    settings: RedisSettings,
    /// Skips Redis while it does not answer: a push then fails at once (see
    /// [`gatehouse_store::shared::Breaker`]).
    breaker: Arc<Breaker>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.settings.prefix)
            .finish_non_exhaustive()
    }
}

fn config(settings: &RedisSettings, queue: &str) -> Config {
    Config::default()
        .queue(settings.key(queue))
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
        .idempotency_ttl(Some(IDEMPOTENCY_TTL))
        .emit_events(false)
        .lock_tasks(false)
        .persist_results(true)
}

/// Jobs a worker running `concurrency` sends at once takes per fetch. apalis drains its
/// event channel (capacity four batches) only between batches, and meanwhile up to
/// `concurrency` jobs in flight plus one batch can finish: a batch of at least a third of
/// the concurrency leaves an acknowledgement always room.
pub(crate) fn fetch_batch(concurrency: usize) -> usize {
    concurrency.div_ceil(2).max(10)
}

impl RedisQueue {
    /// The queues on an open connection (see [`gatehouse_store::shared::connect`]).
    pub fn new(conn: ConnectionManager, settings: RedisSettings) -> Self {
        Self {
            send: RedisStorage::new(conn.clone()).with_config(config(&settings, "jobs:send_code")),
            bulk: RedisStorage::new(conn.clone())
                .with_config(config(&settings, "jobs:send_code:bulk")),
            lanes: Lanes::shared(conn.clone(), settings.clone()),
            inbound: RedisStorage::new(conn.clone())
                .with_config(config(&settings, "jobs:process_inbound")),
            breaker: gatehouse_store::shared::breaker(&settings),
            conn,
            settings,
        }
    }

    /// Its priority lane takes a tenant's first `burst` codes per window (0: all of them;
    /// see [`crate::rate`]). Set it alike in every process that pushes.
    pub fn with_fair_burst(mut self, burst: u32) -> Self {
        self.lanes = self.lanes.with_burst(burst);
        self
    }

    /// The backend code-sending workers running `concurrency` sends take jobs from.
    pub(crate) fn send_backend(&self, concurrency: usize) -> RedisStorage<SendCode> {
        taking(self.send.clone(), concurrency)
    }

    /// The bulk lane: the rest of a tenant's burst.
    pub(crate) fn bulk_backend(&self, concurrency: usize) -> RedisStorage<SendCode> {
        taking(self.bulk.clone(), concurrency)
    }

    /// The breaker of this queue's Redis (shared with everything else in the process that
    /// uses that Redis).
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// The connection and settings the queue uses.
    pub(crate) fn redis(&self) -> (&ConnectionManager, &RedisSettings) {
        (&self.conn, &self.settings)
    }

    /// The backend of SNS message processing, for `concurrency` jobs at once.
    pub(crate) fn inbound_backend(&self, concurrency: usize) -> RedisStorage<ProcessInbound> {
        taking(self.inbound.clone(), concurrency)
    }

    /// Drops finished jobs from Redis; answers how many. Also empties the sets of finished
    /// job ids, which apalis-redis only ever adds to.
    pub async fn vacuum(&self) -> Result<usize, QueueError> {
        let mut removed = 0;
        for mut send in [self.send.clone(), self.bulk.clone()] {
            removed += send.vacuum().await.map_err(|e| QueueError(e.to_string()))?;
        }
        let mut inbound = self.inbound.clone();
        removed += inbound
            .vacuum()
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        let mut conn = self.conn.clone();
        redis::cmd("UNLINK")
            .arg(self.send.get_config().done_jobs_set())
            .arg(self.send.get_config().dead_jobs_set())
            .arg(self.bulk.get_config().done_jobs_set())
            .arg(self.bulk.get_config().dead_jobs_set())
            .arg(self.inbound.get_config().done_jobs_set())
            .arg(self.inbound.get_config().dead_jobs_set())
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        Ok(removed)
    }

    /// Jobs waiting to be taken (both queues).
    pub async fn waiting(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let (a, b, c): (u64, u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg(self.send.get_config().active_jobs_list())
            .cmd("LLEN")
            .arg(self.bulk.get_config().active_jobs_list())
            .cmd("LLEN")
            .arg(self.inbound.get_config().active_jobs_list())
            .query_async(&mut conn)
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        Ok(a + b + c)
    }
}

/// `backend` for a worker running `concurrency` jobs at once (see [`fetch_batch`]).
fn taking<T>(backend: RedisStorage<T>, concurrency: usize) -> RedisStorage<T> {
    let config = backend
        .get_config()
        .clone()
        .batch_size(fetch_batch(concurrency));
    backend.with_config(config)
}

/// Wakes a worker every `period` to ask Redis for jobs, and always leaves its next tick
/// armed (see the module notes for why apalis' interval strategy is not used). Missed
/// ticks are not made up: a busy worker asks again one `period` after it last did.
pub(crate) struct Every {
    period: Duration,
    ticks: Option<tokio::time::Interval>,
}

impl Every {
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            period,
            ticks: None,
        }
    }
}

impl PollStrategy for Every {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        // Made on the first poll, inside the worker's runtime.
        let ticks = self.ticks.get_or_insert_with(|| {
            let mut ticks = tokio::time::interval(self.period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        let mut ticked = false;
        // Until a tick is pending: that registers the waker for the next one.
        while ticks.poll_tick(cx).is_ready() {
            ticked = true;
        }
        if ticked {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

impl RedisQueue {
    /// One push, within [`PUSH_TIMEOUT`]; not tried at all while the breaker is open.
    async fn bounded<E: std::fmt::Display>(
        &self,
        push: impl Future<Output = Result<(), E>>,
    ) -> Result<(), QueueError> {
        self.breaker
            .call(&self.conn, PUSH_TIMEOUT, push)
            .await
            .map_err(|e| QueueError(e.to_string()))
    }
}

impl JobQueue for RedisQueue {
    fn push_send_code(&self, job: SendCode) -> PushFuture<'_> {
        let key = job.delivery_id.to_string();
        let tenant = job.tenant_id;
        let task = TaskBuilder::new(job).idempotency_key(key).build();
        // The lane's count and the push together stay within PUSH_TIMEOUT.
        Box::pin(self.bounded(async move {
            let mut backend = match self.lanes.lane(tenant).await {
                Lane::Priority => self.send.clone(),
                Lane::Bulk => self.bulk.clone(),
            };
            backend.push_task(task).await
        }))
    }

    fn push_process_inbound(&self, job: ProcessInbound) -> PushFuture<'_> {
        let key = job.message_id.clone();
        let task = TaskBuilder::new(job).idempotency_key(key).build();
        let mut backend = self.inbound.clone();
        Box::pin(self.bounded(async move { backend.push_task(task).await }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits (up to 5 s, far beyond the period) until `wakes` counts more than `seen`.
    async fn woken_after(wakes: &Wakes, seen: usize) -> bool {
        for _ in 0..500 {
            if wakes.0.load(Ordering::SeqCst) > seen {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// The worker is woken for its next ask even when the tick that fired was the last
    /// thing it polled: apalis' `IntervalStrategy` fails this (its fresh delay is never
    /// polled, so nothing wakes the worker before its heartbeat).
    #[tokio::test]
    async fn every_tick_arms_the_next_one() {
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut every = Every::new(Duration::from_millis(20));
        let snapshot = PollSnapshot::default();

        // Whether the first tick is already due or still pending, the waker is registered
        // for the one after; each wake-up finds a tick.
        let _ = every.poll_drive(&mut cx, &snapshot);
        for round in 0..3 {
            let seen = wakes.0.load(Ordering::SeqCst);
            assert!(
                woken_after(&wakes, seen).await,
                "round {round}: not woken for the next tick"
            );
            assert_eq!(
                every.poll_drive(&mut cx, &snapshot),
                Poll::Ready(Some(())),
                "round {round}: woken, but no tick"
            );
        }
        let seen = wakes.0.load(Ordering::SeqCst);
        assert!(
            woken_after(&wakes, seen).await,
            "not woken after the last tick"
        );
    }
}
