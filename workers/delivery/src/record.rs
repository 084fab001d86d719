//! Claiming and recording sends together. A worker process's send jobs hand their claims
//! to one claimer task and their finished sends to one recorder task; each writes all
//! that are waiting in one statement or transaction ([`Store::claim_sends`],
//! [`Store::record_sends`]). The SMS opt-out gate's reads and records of the provider's
//! checks go the same way ([`Store::phone_opt_outs_of`], [`Store::record_phone_checks`]):
//! singly they were three statements for every SMS to a number used for the first time. A send used to cost a claim and a transaction of its own
//! (mark the delivery sent, lock the practice's audit head, append the event, move the
//! head); under load that, not the provider call, bounded a worker's sends per second,
//! and 32 jobs queueing for 16 database connections made each statement wait.
//!
//! Nothing waits to fill a batch: a task takes what has arrived while it wrote the
//! previous batch, so a lone send is claimed and recorded at once and a busy process
//! writes batches of about its concurrency. Each job still awaits its own answer, so a
//! send is never reported done before its record is committed. When a batch fails, its
//! items are tried one by one, so that one bad item cannot fail the others.
//!
//! On PostgreSQL, [`IN_FLIGHT`] batches of each kind are written at once: with one, the
//! recorder was busy all the time in the load test (about 67 transactions a second of 26
//! sends, 15 ms each). Two record transactions meet only on a practice's audit head,
//! which both lock in the order of the practice ids (see `audit::append_many_in`), so
//! they cannot deadlock. SQLite has a single writer: a second batch would only wait for
//! the first in SQLite's busy handler, so there one is written at a time.

use gatehouse_domain::ids::{PhoneE164, TenantId};
use gatehouse_store::deliveries::SendContext;
use gatehouse_store::{Store, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

/// At most this many items are written in one statement or transaction.
pub const MAX_BATCH: usize = 64;
/// Batches of one kind being written at once on PostgreSQL (see the module docs).
pub const IN_FLIGHT: usize = 2;

type Reply<O> = oneshot::Sender<Result<O, StoreError>>;

/// Hands items to a task that handles, in one go, all that are waiting. Cheap to clone.
struct Batcher<I, O> {
    tx: mpsc::Sender<(I, Reply<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the task on `runtime`; it ends when the last handle is dropped. `run` answers
    /// one result per item, in order; up to `in_flight` runs go on at once, and items that
    /// arrive meanwhile wait for the next.
    fn spawn<F, Fut>(runtime: &tokio::runtime::Handle, in_flight: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Result<O, StoreError>>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<(I, Reply<O>)>(MAX_BATCH * 16);
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        let spawner = runtime.clone();
        runtime.spawn(async move {
            let mut waiting = Vec::with_capacity(MAX_BATCH);
            // A free slot first: while every slot is busy, arrivals gather into the next batch.
            while let Ok(slot) = slots.clone().acquire_owned().await {
                if rx.recv_many(&mut waiting, MAX_BATCH).await == 0 {
                    break;
                }
                let (items, replies): (Vec<I>, Vec<Reply<O>>) = waiting.drain(..).unzip();
                let batch = run(items);
                spawner.spawn(async move {
                    let mut results = batch.await.into_iter();
                    drop(slot);
                    for reply in replies {
                        let result = results.next().unwrap_or_else(|| {
                            Err(StoreError::Internal(
                                "a batch answered too few results".into(),
                            ))
                        });
                        // A job that stopped waiting has nothing left to learn.
                        let _ = reply.send(result);
                    }
                });
            }
        });
        Self { tx }
    }

    async fn call(&self, item: I) -> Result<O, StoreError> {
        let stopped = || StoreError::Internal("the send batcher has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.tx.send((item, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The future of one write of a batch.
type Write<'a, O> = Pin<Box<dyn Future<Output = Result<Vec<O>, StoreError>> + Send + 'a>>;

/// Writes all `items` in one go (`write` answers one result per item, in order); when
/// that fails, writes each on its own, so that one bad item cannot fail the others.
async fn all_or_each<I, O>(
    store: Store,
    items: Vec<I>,
    what: &'static str,
    write: impl for<'a> Fn(&'a Store, &'a [I]) -> Write<'a, O>,
) -> Vec<Result<O, StoreError>> {
    match write(&store, &items).await {
        Ok(all) => all.into_iter().map(Ok).collect(),
        Err(e) if items.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(error = %e, items = items.len(), "{what}: the batch failed; writing its items one by one");
            let mut each = Vec::with_capacity(items.len());
            for one in items.chunks(1) {
                each.push(write(&store, one).await.and_then(|mut r| {
                    r.pop()
                        .ok_or_else(|| StoreError::Internal(format!("{what}: no result")))
                }));
            }
            each
        }
    }
}

fn claim_all(
    store: Store,
    items: Vec<(TenantId, Uuid)>,
) -> impl Future<Output = Results<Option<SendContext>>> {
    all_or_each(store, items, "claiming sends", |s, items| {
        Box::pin(s.claim_sends(items))
    })
}

fn record_all(
    store: Store,
    items: Vec<(SendContext, String)>,
) -> impl Future<Output = Results<()>> {
    all_or_each(store, items, "recording sends", |s, items| {
        Box::pin(async move {
            let sends: Vec<(&SendContext, &str)> =
                items.iter().map(|(c, m)| (c, m.as_str())).collect();
            s.record_sends(&sends).await.map(|()| vec![(); sends.len()])
        })
    })
}

fn look_up_all(store: Store, items: Vec<PhoneE164>) -> impl Future<Output = Results<Option<bool>>> {
    all_or_each(store, items, "reading SMS opt-outs", |s, items| {
        Box::pin(s.phone_opt_outs_of(items))
    })
}

fn record_checks_all(
    store: Store,
    items: Vec<(PhoneE164, bool)>,
) -> impl Future<Output = Results<bool>> {
    all_or_each(store, items, "recording SMS opt-out checks", |s, items| {
        Box::pin(s.record_phone_checks(items))
    })
}

type Results<O> = Vec<Result<O, StoreError>>;

/// Claims and records this process's sends, and reads and records the SMS opt-out states
/// they are gated on, in batches. Cheap to clone.
#[derive(Clone)]
pub struct SendBatches {
    claims: Batcher<(TenantId, Uuid), Option<SendContext>>,
    records: Batcher<(SendContext, String), ()>,
    opt_outs: Batcher<PhoneE164, Option<bool>>,
    checks: Batcher<(PhoneE164, bool), bool>,
}

impl std::fmt::Debug for SendBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatches").finish_non_exhaustive()
    }
}

impl SendBatches {
    /// Starts the batching tasks on `runtime`.
    pub fn spawn(store: &Store, runtime: &tokio::runtime::Handle) -> Self {
        // Reads go on at once on both databases; SQLite writes one at a time.
        let writes = match store.backend() {
            gatehouse_store::DbBackend::Postgres => IN_FLIGHT,
            _ => 1,
        };
        let s = store.clone();
        let claims = Batcher::spawn(runtime, writes, move |i| claim_all(s.clone(), i));
        let s = store.clone();
        let records = Batcher::spawn(runtime, writes, move |i| record_all(s.clone(), i));
        let s = store.clone();
        let opt_outs = Batcher::spawn(runtime, IN_FLIGHT, move |i| look_up_all(s.clone(), i));
        let s = store.clone();
        let checks = Batcher::spawn(runtime, writes, move |i| record_checks_all(s.clone(), i));
        Self {
            claims,
            records,
            opt_outs,
            checks,
        }
    }

    /// Claims a delivery (see [`gatehouse_store::deliveries::Deliveries::claim`]).
    pub async fn claim(
        &self,
        tenant: TenantId,
        delivery_id: Uuid,
    ) -> Result<Option<SendContext>, StoreError> {
        self.claims.call((tenant, delivery_id)).await
    }

    /// Records a send (see [`gatehouse_store::deliveries::Deliveries::mark_sent`]);
    /// answers once it is committed, or why it is not.
    pub async fn record(
        &self,
        ctx: &SendContext,
        provider_message_id: &str,
    ) -> Result<(), StoreError> {
        self.records
            .call((ctx.clone(), provider_message_id.to_owned()))
            .await
    }

    /// The recorded opt-out state of a number: whether sends to it are refused, `None`
    /// when nothing is recorded (see [`Store::phone_opt_outs_of`]).
    pub async fn opt_out_state(&self, phone: &PhoneE164) -> Result<Option<bool>, StoreError> {
        self.opt_outs.call(phone.clone()).await
    }

    /// Records the provider's answer for a number first used; answers whether sends to it
    /// are refused, as now recorded (see [`Store::record_phone_checks`]).
    pub async fn record_check(
        &self,
        phone: &PhoneE164,
        opted_out: bool,
    ) -> Result<bool, StoreError> {
        self.checks.call((phone.clone(), opted_out)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::sync::Barrier;

    /// Two batches are written at once: each run below waits until another is running,
    /// which a batcher writing one batch at a time never lets happen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_batches_are_written_at_once() {
        let meet = Arc::new(Barrier::new(2));
        let started = Arc::new(Semaphore::new(0));
        let runs = started.clone();
        let batcher = Batcher::spawn(
            &tokio::runtime::Handle::current(),
            2,
            move |items: Vec<u32>| {
                let meet = meet.clone();
                runs.add_permits(1);
                async move {
                    let met = tokio::time::timeout(Duration::from_secs(10), meet.wait())
                        .await
                        .is_ok();
                    items
                        .into_iter()
                        .map(|i| {
                            if met {
                                Ok(i * 10)
                            } else {
                                Err(StoreError::Internal("ran alone".into()))
                            }
                        })
                        .collect()
                }
            },
        );
        let first = {
            let b = batcher.clone();
            tokio::spawn(async move { b.call(1).await })
        };
        // The first batch is running (waiting at the barrier) before the second is sent.
        if let Ok(p) = started.acquire().await {
            p.forget();
        }
        let second = batcher.call(2).await;
        assert_eq!(second.ok(), Some(20));
        assert_eq!(first.await.ok().and_then(|r| r.ok()), Some(10));
    }

    /// While every slot is busy, arrivals gather into one batch; each caller gets its own
    /// answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn arrivals_while_busy_gather_into_one_batch() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(Semaphore::new(0));
        let batcher = {
            let (sizes, release) = (sizes.clone(), release.clone());
            Batcher::spawn(
                &tokio::runtime::Handle::current(),
                1,
                move |items: Vec<u32>| {
                    let (sizes, release) = (sizes.clone(), release.clone());
                    async move {
                        if let Ok(mut s) = sizes.lock() {
                            s.push(items.len());
                        }
                        // Each batch waits until the test lets it finish.
                        if let Ok(p) = release.acquire().await {
                            p.forget();
                        }
                        items.into_iter().map(|i| Ok(i + 100)).collect()
                    }
                },
            )
        };
        let mut calls = Vec::new();
        let b = batcher.clone();
        calls.push(tokio::spawn(async move { b.call(0).await }));
        // The first batch (one item) is running; five more arrive meanwhile.
        while sizes.lock().map(|s| s.len()).unwrap_or(0) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for i in 1..=5 {
            let b = batcher.clone();
            calls.push(tokio::spawn(async move { b.call(i).await }));
        }
        // All five wait in the channel before the first batch may finish.
        while MAX_BATCH * 16 - batcher.tx.capacity() < 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release.add_permits(2);
        for (i, call) in calls.into_iter().enumerate() {
            let answer = call.await.ok().and_then(|r| r.ok());
            assert_eq!(answer, Some(i as u32 + 100), "call {i}");
        }
        assert_eq!(*sizes.lock().unwrap_or_else(|e| e.into_inner()), vec![1, 5]);
    }
}
