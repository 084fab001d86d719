//! Delivery under faults (issue 22), against the real store, a Redis of the test's own
//! and the real workers.

use crate::helpers::{Db, TestStore, has_word, wait_until};
use crate::on_both_databases;
use crate::redis_outage::PrivateRedis;
use gatehouse_store::shared::{self, RedisSettings};
use gatehouse_workers::{RedisQueue, spawn_on_redis};
use std::time::{Duration, Instant};

/// While Redis is down, a push is not even tried once the first one failed (the breaker
/// is open), so a sign-in does not wait the push timeout; the workers take the queued
/// deliveries straight from the database, so codes keep arriving; when Redis is back the
/// breaker closes by itself and pushes go through Redis again.
async fn f3_while_redis_is_down_pushes_skip_it_and_codes_come_from_the_database(db: Db) {
    let t = TestStore::new(db).await;
    let mut redis = PrivateRedis::start();
    let settings = RedisSettings {
        url: redis.url(),
        prefix: "gh-faults".into(),
    };
    let conn = shared::connect(&settings).await.unwrap();
    let queue = RedisQueue::new(conn, settings);
    let breaker = queue.breaker().clone();
    let workers = spawn_on_redis(t.store.clone(), t.worker_config(), queue).unwrap();
    assert!(!breaker.is_open());

    redis.down();
    // The workers' own check (a PING every 250 ms) notices, or the first push does.
    let template = t.issue_email("admin").await;
    let first = Instant::now();
    let _ = workers.queue().push_send_code(template.job.clone()).await;
    let first = first.elapsed();
    wait_until("the breaker to open", || async {
        breaker.is_open().then_some(())
    })
    .await;
    let trips = breaker.trips();

    // Codes committed now: each push answers at once, without trying Redis.
    let jobs = t.copies(template.delivery_id, 20).await;
    let started = Instant::now();
    for job in &jobs {
        let pushed = workers.queue().push_send_code(job.clone()).await;
        assert!(pushed.is_err(), "no push can succeed without Redis");
    }
    let pushes = started.elapsed();
    // Generous: 20 pushes that each waited the 500 ms push timeout would take 10 s.
    assert!(pushes < Duration::from_secs(2), "20 pushes took {pushes:?}");
    assert!(breaker.is_open());
    assert_eq!(
        breaker.trips(),
        trips,
        "no push reached Redis to fail again"
    );

    // The workers take them from the database (once they have waited 500 ms there).
    t.advance(1);
    let taking = Instant::now();
    for job in jobs.iter().chain([&template.job]) {
        t.wait_for_delivery(job.delivery_id, "sent from the database", |r| {
            r.status == "sent"
        })
        .await;
    }
    eprintln!(
        "figures: first push with Redis down {first:?}; 20 pushes with the breaker open \
         {pushes:?}; 21 codes sent from the database {:?} after they were due",
        taking.elapsed()
    );
    let line = t.wait_for_line(template.delivery_id).await;
    assert!(has_word(
        line["body"].as_str().unwrap(),
        template.code.expose()
    ));
    assert!(breaker.is_open(), "Redis is still down");

    // Redis is back: the probe closes the breaker, pushes go to Redis and are sent.
    redis.up();
    wait_until("the breaker to close", || async {
        (!breaker.is_open()).then_some(())
    })
    .await;
    let after = t.issue_sms("nurse.joy").await;
    workers
        .queue()
        .push_send_code(after.job.clone())
        .await
        .expect("the push goes through Redis again");
    t.wait_for_delivery(after.delivery_id, "sent", |r| r.status == "sent")
        .await;
    workers.shutdown().await;
    for job in jobs.iter().chain([&template.job, &after.job]) {
        assert_eq!(t.lines_of(job.delivery_id).len(), 1, "sent exactly once");
    }
}

on_both_databases!(f3_while_redis_is_down_pushes_skip_it_and_codes_come_from_the_database);
