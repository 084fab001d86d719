//! Time from a push to the outbox line being written, printed for the record (run with
//! `--no-capture` to see it). Nothing is asserted about speed: this only proves that every
//! pushed code arrives, one by one, and reports how long each took.

use crate::helpers::{Db, TestStore, USERS};
use crate::on_both_databases;
use gatehouse_store::queue::JobQueue;
use gatehouse_workers::message::Message;
use gatehouse_workers::provider::{Provider, SendFuture};
use gatehouse_workers::{OutboxProvider, RequeueConfig, WorkerConfig, spawn_in_process};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

on_both_databases!(d1_push_to_outbox_latency_is_reported);

/// The outbox, reporting when each line was written.
#[derive(Debug)]
struct Timed {
    inner: OutboxProvider,
    written: mpsc::UnboundedSender<(Uuid, Instant)>,
}

impl Provider for Timed {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let r = self.inner.send(message).await;
            let _ = self.written.send((message.delivery_id, Instant::now()));
            r
        })
    }
}

const SENDS: usize = 40;

async fn d1_push_to_outbox_latency_is_reported(db: Db) {
    let t = TestStore::new(db).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut config = WorkerConfig::new(Arc::new(Timed {
        inner: OutboxProvider::new(t.outbox_path()),
        written: tx,
    }));
    // Only pushes are measured: the re-enqueue finds nothing idle for a day.
    config.requeue = RequeueConfig {
        every: Duration::from_secs(3600),
        idle: Duration::from_secs(86_400),
        limit: 1,
    };
    let workers = spawn_in_process(t.store.clone(), config).unwrap();
    let mut took = Vec::with_capacity(SENDS);
    for i in 0..SENDS {
        // Past the per-user send throttle (5 per 15 minutes) without waiting for it.
        t.advance(300);
        let issued = t.issue_sms(USERS[i % USERS.len()].0).await;
        let pushed = Instant::now();
        workers
            .queue()
            .push_send_code(issued.job.clone())
            .await
            .unwrap();
        // Skip lines of codes the sign-in itself may have sent.
        let at = loop {
            let (id, at) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("the line within 20 s")
                .expect("the provider is alive");
            if id == issued.delivery_id {
                break at;
            }
        };
        took.push(at - pushed);
        t.wait_for_delivery(issued.delivery_id, "sent", |r| r.status == "sent")
            .await;
    }
    workers.shutdown().await;
    took.sort();
    let pct = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
    eprintln!(
        "push -> outbox line ({db:?}, {SENDS} sends, one at a time): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(90),
        pct(99),
        took[took.len() - 1]
    );
}
