//! A job the workers finished leaves Redis: it is acknowledged (out of its worker's
//! in-flight set, marked done) and the vacuum drops it. A job left in a worker's in-flight
//! set is pushed again when that worker is presumed dead, and one never dropped is
//! memory Redis never gets back.

use crate::helpers::{Db, TestStore};
use crate::redis_outage::PrivateRedis;
use gatehouse_store::shared::{self, RedisSettings};
use gatehouse_testkit::on_both_databases;
use gatehouse_workers::{RedisQueue, spawn_on_redis};
use std::time::{Duration, Instant};

const PREFIX: &str = "gh-acks";

/// Keys of this test's Redis matching `pattern`.
async fn keys(conn: &mut redis::aio::ConnectionManager, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(pattern)
        .query_async(conn)
        .await
        .unwrap()
}

/// Jobs in the in-flight sets of every worker of every queue.
async fn in_flight(conn: &mut redis::aio::ConnectionManager) -> usize {
    let mut n = 0;
    for set in keys(conn, &format!("{PREFIX}:jobs:*:inflight:*")).await {
        let members: usize = redis::cmd("SCARD")
            .arg(&set)
            .query_async(conn)
            .await
            .unwrap();
        n += members;
    }
    n
}

async fn d1_finished_jobs_are_acknowledged_and_vacuumed_from_redis(db: Db) {
    let t = TestStore::new(db).await;
    let redis = PrivateRedis::start();
    let settings = RedisSettings {
        url: redis.url(),
        prefix: PREFIX.into(),
    };
    let mut conn = shared::connect(&settings).await.unwrap();
    let queue = RedisQueue::new(conn.clone(), settings);
    // No periodic re-enqueue: the issues below move the store's clock past its idle time,
    // and a job pushed again while the test counts would be counted twice.
    let mut config = t.worker_config();
    config.requeue.idle = Duration::from_secs(24 * 3600);
    let workers = spawn_on_redis(t.store.clone(), config, queue.clone()).unwrap();

    let issued = vec![
        t.issue_email("admin").await,
        t.issue_sms("nurse.joy").await,
        t.issue_email("nurse.joy").await,
    ];
    for code in &issued {
        workers
            .queue()
            .push_send_code(code.job.clone())
            .await
            .unwrap();
    }
    for code in &issued {
        t.wait_for_line(code.delivery_id).await;
    }
    // The store pushed the codes of the sign-ins (TestStore::flow) as well; the jobs
    // were all in Redis.
    let data = format!("{PREFIX}:jobs:send_code:data");
    let held: usize = redis::cmd("HLEN")
        .arg(&data)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(held >= issued.len(), "{held} jobs in Redis");

    // Each job is acknowledged once its send is recorded: none waits, no worker holds it.
    let start = Instant::now();
    while queue.waiting().await.unwrap() > 0 || in_flight(&mut conn).await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "jobs still waiting or in flight after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The vacuum drops them: their data and their metadata.
    assert_eq!(queue.vacuum().await.unwrap(), held);
    let held: usize = redis::cmd("HLEN")
        .arg(&data)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(held, 0);
    assert_eq!(
        keys(&mut conn, &format!("{PREFIX}:jobs:*:meta:*")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        keys(&mut conn, &format!("{PREFIX}:jobs:*:done")).await,
        Vec::<String>::new()
    );
    workers.shutdown().await;
    for code in &issued {
        assert_eq!(t.lines_of(code.delivery_id).len(), 1, "sent exactly once");
    }
}

on_both_databases!(d1_finished_jobs_are_acknowledged_and_vacuumed_from_redis);
