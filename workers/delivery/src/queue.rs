//! The in-process job queue of the embedded default: apalis' `VecDequeBackend`, shared
//! between the store (which pushes) and the worker (which takes). It wakes the worker on
//! each push, so a job starts as soon as it is queued; nothing polls on a timer.
//!
//! It holds jobs in memory only. That is safe because the delivery row is the durable
//! record: after a restart the periodic re-enqueue pushes every `queued` delivery whose
//! code still lives. A Redis queue (apalis-redis) implements [`JobQueue`] the same way.

use crate::rate::{Lane, Lanes};
use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_core::backend::dequeue::VecDequeBackend;
use gatehouse_domain::jobs::{ProcessInbound, SendCode};
use gatehouse_store::queue::{JobQueue, PushFuture, QueueError};

/// Jobs waiting in this process: code sends (in two lanes, see [`crate::rate`]), and the
/// processing of SNS messages.
#[derive(Debug, Clone)]
pub struct InProcessQueue {
    backend: VecDequeBackend<SendCode>,
    bulk: VecDequeBackend<SendCode>,
    inbound: VecDequeBackend<ProcessInbound>,
    lanes: Lanes,
}

impl Default for InProcessQueue {
    fn default() -> Self {
        Self {
            backend: VecDequeBackend::default(),
            bulk: VecDequeBackend::default(),
            inbound: VecDequeBackend::default(),
            lanes: Lanes::local(),
        }
    }
}

impl InProcessQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue whose priority lane takes a tenant's first `burst` codes per window
    /// (0: all of them; see [`crate::rate`]).
    pub fn with_fair_burst(burst: u32) -> Self {
        let mut q = Self::default();
        q.lanes = q.lanes.with_burst(burst);
        q
    }

    /// The backend a worker takes jobs from (clones share the queue).
    pub(crate) fn backend(&self) -> VecDequeBackend<SendCode> {
        self.backend.clone()
    }

    /// The bulk lane: the rest of a tenant's burst.
    pub(crate) fn bulk_backend(&self) -> VecDequeBackend<SendCode> {
        self.bulk.clone()
    }

    /// The backend of SNS message processing.
    pub(crate) fn inbound_backend(&self) -> VecDequeBackend<ProcessInbound> {
        self.inbound.clone()
    }
}

impl JobQueue for InProcessQueue {
    fn push_send_code(&self, job: SendCode) -> PushFuture<'_> {
        // A job already waiting for the same delivery is not queued twice; one that already
        // ran is harmless, because a delivery is claimed at most once (see the send job).
        let key = job.delivery_id.to_string();
        let tenant = job.tenant_id;
        let task = TaskBuilder::new(job).idempotency_key(key).build();
        Box::pin(async move {
            let mut backend = match self.lanes.lane(tenant).await {
                Lane::Priority => self.backend.clone(),
                Lane::Bulk => self.bulk.clone(),
            };
            backend
                .push_task(task)
                .await
                .map_err(|e| QueueError(e.to_string()))
        })
    }

    fn push_process_inbound(&self, job: ProcessInbound) -> PushFuture<'_> {
        let key = job.message_id.clone();
        let task = TaskBuilder::new(job).idempotency_key(key).build();
        let mut backend = self.inbound.clone();
        Box::pin(async move {
            backend
                .push_task(task)
                .await
                .map_err(|e| QueueError(e.to_string()))
        })
    }
}
