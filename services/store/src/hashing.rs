//! Argon2id on a bounded pool (P1): one dedicated thread per core, never the async
//! workers, so hashing cannot starve session checks. The threads also run at a lower
//! scheduling priority ([`NICENESS`]): hashing is throughput work and takes whatever CPU
//! the rest leaves, while a request's other steps (the async workers answering, a
//! database on the same machine) are latency work that should not wait for a 10 ms hash
//! to finish its time slice. Each thread keeps its own Argon2 working memory between
//! computations, so memory stays at one buffer per thread instead of growing with every
//! thread that ever hashed.

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

/// How much nicer than the rest of the process a hashing thread is (`nice` values: 10
/// gives it about a tenth of the weight of a normal thread when both want a core; alone,
/// it still has the whole core).
pub const NICENESS: i32 = 10;

/// Lowers the calling thread's priority by [`NICENESS`] (Linux keeps a nice value per
/// thread; lowering one's own needs no privilege). Answers the value now in force.
#[cfg(target_os = "linux")]
fn yield_to_requests() -> Option<i32> {
    let me = Some(rustix::thread::gettid());
    let now = rustix::process::getpriority_process(me).ok()?;
    let nicer = (now + NICENESS).min(19);
    match rustix::process::setpriority_process(me, nicer) {
        Ok(()) => Some(nicer),
        Err(e) => {
            tracing::warn!(error = %e, "cannot lower the priority of a password hashing thread");
            Some(now)
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn yield_to_requests() -> Option<i32> {
    None
}

fn work(jobs: Arc<Mutex<Receiver<Job>>>, params: HashParams) {
    yield_to_requests();
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Nice values of this process's threads named like hashing threads (the kernel keeps
    /// the first 15 bytes of a name).
    fn hashing_threads_nice() -> Vec<i32> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = task.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim_end() != "gatehouse-argon" {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
            // After the name's closing parenthesis: field 3 (state) onwards; nice is 19.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            found.push(rest.split(' ').nth(16).unwrap().parse().unwrap());
        }
        found
    }

    #[tokio::test]
    async fn p1_hashing_threads_yield_the_cpu_to_request_work() {
        let base = rustix::process::getpriority_process(None).unwrap();
        let params = HashParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        };
        let pool = PasswordPool::new(params, 1).unwrap();
        // A finished hash proves the thread is past its start.
        let stored = pool
            .hash(SecretString::from("correct horse".to_owned()))
            .await
            .unwrap();
        assert!(stored.starts_with("$argon2id$"));
        let expected = (base + NICENESS).min(19);
        assert_ne!(
            expected, base,
            "this test needs a process that may get nicer"
        );
        let nice = hashing_threads_nice();
        assert!(
            nice.contains(&expected),
            "hashing threads' nice values {nice:?}, expected {expected} (process: {base})"
        );
    }
}
