//! Losing Redis loses no code (D1): the workers on the Redis queue, against a Redis of the
//! test's own that it stops and starts again. A code committed while Redis is down (its
//! push fails) is sent once Redis is back: the delivery row was the durable record, the
//! re-enqueue pushes it again, and the workers reconnect by themselves.

use crate::helpers::{Db, TestStore, has_word};
use gatehouse_store::shared::{self, RedisSettings};
use gatehouse_testkit::on_both_databases;
use gatehouse_workers::{RedisQueue, spawn_on_redis};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a port of its own, keeping nothing on disk; killed when dropped.
pub(crate) struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub(crate) fn start() -> PrivateRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = PrivateRedis { port, child: None };
        r.up();
        r
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub(crate) fn up(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (the test command installs it)");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server: everything it held is gone.
    pub(crate) fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.down();
    }
}

async fn d1_a_code_committed_while_redis_is_down_is_sent_once_redis_is_back(db: Db) {
    let t = TestStore::new(db).await;
    let mut redis = PrivateRedis::start();
    let settings = RedisSettings {
        url: redis.url(),
        prefix: "gh-outage".into(),
    };
    let conn = shared::connect(&settings).await.unwrap();
    let queue = RedisQueue::new(conn, settings);
    let workers = spawn_on_redis(t.store.clone(), t.worker_config(), queue).unwrap();

    // Normal operation first: the store pushes, a worker takes it from Redis.
    let before = t.issue_email("admin").await;
    workers
        .queue()
        .push_send_code(before.job.clone())
        .await
        .unwrap();
    t.wait_for_line(before.delivery_id).await;

    // Redis goes away; a code is committed and its push fails (quickly: sign-in never
    // waits on Redis).
    redis.down();
    let issued = t.issue_sms("nurse.joy").await;
    let push = Instant::now();
    let pushed = workers.queue().push_send_code(issued.job.clone()).await;
    assert!(pushed.is_err(), "the push cannot succeed without Redis");
    assert!(
        push.elapsed() < Duration::from_secs(3),
        "{:?}",
        push.elapsed()
    );
    assert_eq!(t.delivery(issued.delivery_id).await.status, "queued");

    // Redis comes back empty; the re-enqueue pushes the delivery again and a reconnected
    // worker sends it, once.
    redis.up();
    t.advance(1);
    let line = t.wait_for_line(issued.delivery_id).await;
    assert!(has_word(
        line["body"].as_str().unwrap(),
        issued.code.expose()
    ));
    let row = t
        .wait_for_delivery(issued.delivery_id, "sent", |r| r.status == "sent")
        .await;
    assert_eq!(row.payload_sealed, None);
    workers.shutdown().await;
    assert_eq!(t.lines_of(issued.delivery_id).len(), 1, "sent exactly once");
}

on_both_databases!(d1_a_code_committed_while_redis_is_down_is_sent_once_redis_is_back);
