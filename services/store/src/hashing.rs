//! Argon2id on a bounded pool (P1): one dedicated thread per core, never the async
//! workers, so hashing cannot starve session checks. Each thread keeps its own Argon2
//! working memory between computations, so memory stays at one buffer per thread
//! instead of growing with every thread that ever hashed.

use crate::error::StoreError;
use crate::telemetry::{label, metrics, secs};
use gatehouse_domain::password::{
    HashError, HashParams, Verified, Workspace, hash_password_in, verify_password_in,
};
use secrecy::SecretString;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// Jobs waiting beyond this are refused (429) rather than queued without end.
const QUEUE_LIMIT: usize = 4096;

enum Work {
    Verify {
        stored: String,
        password: SecretString,
        reply: oneshot::Sender<Verified>,
    },
    Hash {
        password: SecretString,
        reply: oneshot::Sender<Result<String, HashError>>,
    },
}

/// One computation and how it is traced: `waiting` is the span of its wait for a thread
/// (it ends when a thread takes the job); the computation's own span is a child of
/// `parent`, the caller's span.
struct Job {
    work: Work,
    queued: Instant,
    waiting: tracing::Span,
    parent: tracing::Span,
}

impl Work {
    fn operation(&self) -> &'static str {
        match self {
            Work::Verify { .. } => "verify",
            Work::Hash { .. } => "hash",
        }
    }
}

/// The bounded Argon2id executor. Cheap to clone; the threads end with the last clone.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    jobs: SyncSender<Job>,
}

fn work(jobs: Arc<Mutex<Receiver<Job>>>, params: HashParams) {
    let mut ws = Workspace::default();
    loop {
        // One thread waits on the queue at a time; the others wait for the lock.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(Job {
            work,
            queued,
            waiting,
            parent,
        }) = job
        else {
            return; // every sender is gone
        };
        let op = [label("operation", work.operation())];
        metrics().argon2_queue.record(secs(queued.elapsed()), &op);
        drop(waiting);
        let span = tracing::info_span!(parent: &parent, "argon2", operation = work.operation());
        let _entered = span.enter();
        let started = Instant::now();
        match work {
            Work::Verify {
                stored,
                password,
                reply,
            } => {
                let _ = reply.send(verify_password_in(&mut ws, params, &stored, &password));
            }
            Work::Hash { password, reply } => {
                let _ = reply.send(hash_password_in(&mut ws, params, &password));
            }
        }
        metrics()
            .argon2_duration
            .record(secs(started.elapsed()), &op);
    }
}

impl PasswordPool {
    /// A pool of `workers` hashing threads.
    pub fn new(params: HashParams, workers: usize) -> Result<Self, StoreError> {
        let (tx, rx) = sync_channel(QUEUE_LIMIT);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("gatehouse-argon2-{i}"))
                .spawn(move || work(rx, params))
                .map_err(|e| StoreError::Internal(format!("cannot start hashing thread: {e}")))?;
        }
        Ok(Self { jobs: tx })
    }

    fn submit(&self, work: Work) -> Result<(), StoreError> {
        let job = Job {
            waiting: tracing::info_span!("argon2.queue", operation = work.operation()),
            parent: tracing::Span::current(),
            queued: Instant::now(),
            work,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                tracing::warn!("password hashing queue is full; refusing");
                gatehouse_domain::Error::RateLimited {
                    retry_after_secs: 1,
                }
                .into()
            }
            TrySendError::Disconnected(_) => StoreError::Internal("hashing threads stopped".into()),
        })
    }

    /// Verifies a password against a stored hash.
    pub async fn verify(
        &self,
        stored: String,
        password: SecretString,
    ) -> Result<Verified, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Work::Verify {
            stored,
            password,
            reply,
        })?;
        answer
            .await
            .map_err(|_| StoreError::Internal("hashing thread dropped a job".into()))
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: SecretString) -> Result<String, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Work::Hash { password, reply })?;
        answer
            .await
            .map_err(|_| StoreError::Internal("hashing thread dropped a job".into()))?
            .map_err(|e| StoreError::Internal(e.to_string()))
    }
}
