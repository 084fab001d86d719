//! The job producer. The store pushes a job only after the rows it refers to are
//! committed; the queue itself (apalis: in-process or Redis) lives in gatehouse-workers
//! and is attached at start-up, so the store does not depend on it.
//!
//! A push that fails, or happens while no queue is attached, loses nothing: the delivery
//! row stays `queued` with its sealed message, and the periodic re-enqueue job
//! ([`crate::Store::deliveries_to_requeue`]) pushes it again while its code lives; while
//! Redis does not answer, the workers take it from the database. A failed push is logged
//! at most once every ten seconds: in an outage every sign-in's push fails.

use crate::shared::OutageLog;
use gatehouse_domain::jobs::{ProcessInbound, SendCode};
use std::future::Future;
use std::pin::Pin;

/// A queue refused or failed a push.
#[derive(Debug, thiserror::Error)]
#[error("job queue: {0}")]
pub struct QueueError(pub String);

/// The future of one push.
pub type PushFuture<'a> = Pin<Box<dyn Future<Output = Result<(), QueueError>> + Send + 'a>>;

/// Where jobs go.
pub trait JobQueue: Send + Sync + 'static {
    /// Queues one code for delivery.
    fn push_send_code(&self, job: SendCode) -> PushFuture<'_>;

    /// Queues the processing of a verified SNS message.
    fn push_process_inbound(&self, job: ProcessInbound) -> PushFuture<'_>;
}

impl crate::Store {
    /// Attaches the job queue; the first one attached stays.
    pub fn attach_queue(&self, queue: std::sync::Arc<dyn JobQueue>) {
        if self.inner.queue.set(queue).is_err() {
            tracing::warn!("a job queue was already attached; keeping the first");
        }
    }

    /// Pushes a send job. Failure is logged, not returned: the committed delivery row
    /// is the durable record and the periodic re-enqueue sends it.
    ///
    /// The job carries the trace context of this enqueue (A2), so that the worker's run
    /// and its provider call join the trace of the request that issued the code.
    pub async fn enqueue_send(&self, mut job: SendCode) {
        let delivery_id = job.delivery_id;
        let span = tracing::info_span!(
            "job.enqueue",
            otel.kind = "producer",
            job = "send_code",
            %delivery_id,
        );
        job.traceparent = span.in_scope(crate::telemetry::current_traceparent);
        job.queued_at = Some(chrono::Utc::now());
        let push = async {
            match self.inner.queue.get() {
                Some(q) => {
                    if let Err(e) = q.push_send_code(job).await {
                        static PUSH: OutageLog = OutageLog::new(
                            "code pushes fail; the codes stay queued in the database and go out from there",
                        );
                        tracing::debug!(%delivery_id, error = %e, "push failed");
                        PUSH.failed(&e);
                    }
                }
                None => {
                    tracing::warn!(%delivery_id, "no job queue attached; the re-enqueue job will send it")
                }
            }
        };
        tracing::Instrument::instrument(push, span).await
    }

    /// Pushes the processing of a recorded SNS message. Failure is logged: the recorded
    /// row is durable and the periodic job processes what is left.
    pub async fn enqueue_inbound(&self, message_id: &str) {
        let span = tracing::info_span!(
            "job.enqueue",
            otel.kind = "producer",
            job = "process_inbound",
        );
        let mut job = ProcessInbound::new(message_id.to_owned());
        job.traceparent = span.in_scope(crate::telemetry::current_traceparent);
        let push = async {
            match self.inner.queue.get() {
                Some(q) => {
                    if let Err(e) = q.push_process_inbound(job).await {
                        static PUSH: OutageLog = OutageLog::new(
                            "inbound pushes fail; the periodic job processes the messages",
                        );
                        tracing::debug!(message_id, error = %e, "push failed");
                        PUSH.failed(&e);
                    }
                }
                None => tracing::warn!(
                    message_id,
                    "no job queue attached; the periodic job will process it"
                ),
            }
        };
        tracing::Instrument::instrument(push, span).await
    }
}
