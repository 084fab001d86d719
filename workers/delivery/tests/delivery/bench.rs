//! Measurements, not tests: ignored by default, run in release on PostgreSQL (+ Redis):
//!
//! ```sh
//! cargo nextest run --release -p gatehouse-workers --run-ignored only --no-capture -E 'test(/bench_/)'
//! ```
//!
//! - worker throughput: one process's workers (default concurrency 64) sending queued
//!   email codes through the real AWS SDK to the fake provider, in-process and on Redis;
//! - dispatch latency: from `Store::login` answering (the code committed and queued) to
//!   the fake provider accepting the email, one sign-in at a time, p50 and p99.
//!
//! Nothing here asserts a time; each prints its figures.

use crate::helpers::{Db, TestStore};
use crate::moto::sdk_config_at;
use gatehouse_fake_aws::FakeAws;
use gatehouse_store::queue::JobQueue;
use gatehouse_store::shared::{self, RedisSettings};
use gatehouse_workers::aws::{self, AwsSettings, SesSettings, SmsSettings};
use gatehouse_workers::{RedisQueue, WorkerConfig, spawn_in_process, spawn_on_redis};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SENDS: usize = 5_000;
const LOGINS: usize = 200;
const ADMIN: &str = "admin@demo-clinic.example.com";

async fn config(fake: &FakeAws) -> WorkerConfig {
    let sdk = sdk_config_at(&fake.url).await;
    let settings = AwsSettings {
        ses: SesSettings {
            from: "no-reply@gatehouse-bench.example.com".into(),
            configuration_set: None,
        },
        sms: SmsSettings::default(),
    };
    let mut c = WorkerConfig::new(Arc::new(aws::providers(&sdk, settings)));
    // As `serve` runs: the re-enqueue only for what is idle 30 s, lanes off (one practice's
    // queue is all there is here; the lanes are measured by the fairness test).
    c.requeue.every = Duration::from_secs(15);
    c.requeue.idle = Duration::from_secs(30);
    c.fair_burst = 0;
    c
}

async fn redis_queue() -> RedisQueue {
    let settings = RedisSettings {
        url: "redis://127.0.0.1:6379".into(),
        prefix: format!("gh-bench-{}", uuid::Uuid::new_v4().simple()),
    };
    RedisQueue::new(shared::connect(&settings).await.unwrap(), settings).with_fair_burst(0)
}

/// Times one process's workers sending SENDS queued codes until the fake took them all.
async fn throughput(redis: bool) {
    let t = TestStore::with_config(Db::Postgres, |c| c.max_db_connections = 16).await;
    let fake = FakeAws::start().unwrap();
    let first = t.issue_email("admin").await;
    let mut jobs = vec![first.job.clone()];
    jobs.extend(t.copies(first.delivery_id, SENDS - 1).await);
    let cfg = config(&fake).await;
    if redis {
        // All queued in Redis before any worker runs.
        let queue = redis_queue().await;
        for job in jobs {
            queue.push_send_code(job).await.unwrap();
        }
        let started = Instant::now();
        let workers = spawn_on_redis(t.store.clone(), cfg, queue).unwrap();
        report("redis", &fake, started).await;
        workers.shutdown().await;
    } else {
        // The in-process queue lives with its workers, which start on the first push.
        let workers = spawn_in_process(t.store.clone(), cfg).unwrap();
        let started = Instant::now();
        for job in jobs {
            workers.queue().push_send_code(job).await.unwrap();
        }
        report("in-process", &fake, started).await;
        workers.shutdown().await;
    }
}

async fn report(queue: &str, fake: &FakeAws, started: Instant) {
    while fake.accepted_total() < SENDS {
        assert!(started.elapsed() < Duration::from_secs(300), "not all sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    eprintln!(
        "bench throughput ({queue} queue, PostgreSQL, fake SES over HTTP): {SENDS} sends in {took:?} = {:.0} sends/s",
        SENDS as f64 / took.as_secs_f64()
    );
}

/// One sign-in at a time: login answered -> the fake accepted the email.
async fn dispatch(redis: bool) {
    let t = TestStore::with_config(Db::Postgres, |c| c.max_db_connections = 16).await;
    let fake = FakeAws::start().unwrap();
    let cfg = config(&fake).await;
    let workers = if redis {
        spawn_on_redis(t.store.clone(), cfg, redis_queue().await).unwrap()
    } else {
        spawn_in_process(t.store.clone(), cfg).unwrap()
    };
    let mut latencies = Vec::with_capacity(LOGINS);
    for i in 0..LOGINS {
        // Sign-ins arrive at random moments, not in step with the workers' polling.
        let pause = rand::random::<u64>() % 50;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        // Past the per-user and per-destination limits of the previous sign-in.
        t.advance(3_660);
        t.flow("admin").await;
        let answered = Instant::now();
        loop {
            let accepted = fake.accepted_to(ADMIN);
            if accepted.len() > i {
                latencies.push(accepted[i].at.saturating_duration_since(answered));
                break;
            }
            assert!(answered.elapsed() < Duration::from_secs(30), "not sent");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    workers.shutdown().await;
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    eprintln!(
        "bench dispatch ({} queue, PostgreSQL, fake SES over HTTP): login answered -> provider accepted, {LOGINS} sign-ins: p50 {:?}, p99 {:?}, max {:?}",
        if redis { "redis" } else { "in-process" },
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run in release with --run-ignored"]
async fn bench_worker_throughput_in_process() {
    throughput(false).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run in release with --run-ignored"]
async fn bench_worker_throughput_on_redis() {
    throughput(true).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run in release with --run-ignored"]
async fn bench_dispatch_latency_in_process() {
    dispatch(false).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run in release with --run-ignored"]
async fn bench_dispatch_latency_on_redis() {
    dispatch(true).await;
}
