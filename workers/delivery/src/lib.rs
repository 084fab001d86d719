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
//! [`JobQueue`]: gatehouse_store::queue::JobQueue

pub mod aws;
mod config;
mod in_process;
mod jobs;
pub mod message;
mod on_redis;
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
mod supervise;

pub use config::{StartError, WorkerConfig};
pub use in_process::spawn_in_process;
pub use on_redis::{FALLBACK_EVERY, FALLBACK_GRACE, FALLBACK_IDLE, spawn_on_redis};
pub use optout::{OptOutSyncConfig, SmsOptOutSource};
pub use outbox::OutboxProvider;
pub use provider::{ByChannel, Provider, ProviderError};
pub use queue::InProcessQueue;
pub use rate::SendRateConfig;
pub use redis_queue::RedisQueue;
pub use requeue::RequeueConfig;
pub use send::{Outcome, SendDeps, SendError};
pub use supervise::Workers;

/// The send worker's name (in its logs and spans; with Redis, made unique per process).
pub const SEND_WORKER: &str = "gatehouse-send-code";
/// The send worker of the bulk lane (the rest of one tenant's burst, see [`rate`]).
pub const BULK_WORKER: &str = "gatehouse-send-code-bulk";
/// The worker that processes SNS messages recorded by the webhook.
pub const INBOUND_WORKER: &str = "gatehouse-inbound";
