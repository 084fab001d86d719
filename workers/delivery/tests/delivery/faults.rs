//! Delivery under faults (issue 22), against the real store, a Redis of the test's own
//! and the real workers.

use crate::helpers::{Db, TestStore, has_word, wait_until};
use crate::redis_outage::PrivateRedis;
use gatehouse_domain::ids::{EmailAddress, FlowId};
use gatehouse_domain::mfa::codes::CodeCheck;
use gatehouse_domain::mfa::codes::Purpose;
use gatehouse_store::audit::AuditFilter;
use gatehouse_store::deliveries::CLAIM_LEASE_SECONDS;
use gatehouse_store::mfa::{CodeOwner, CodeRequest, Destination, IssuedCode};
use gatehouse_store::shared::{self, RedisSettings};
use gatehouse_testkit::on_both_databases;
use gatehouse_workers::message::Message;
use gatehouse_workers::provider::SendFuture;
use gatehouse_workers::{OutboxProvider, Provider, RedisQueue, spawn_in_process, spawn_on_redis};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Hands the first message to the outbox (the provider has it), tells the test, then
/// never answers: the worker is stopped right there, between the provider call and its
/// record. Later messages go through at once.
#[derive(Debug)]
struct StopsAfterSending {
    outbox: OutboxProvider,
    sent: Arc<tokio::sync::Notify>,
    first: AtomicBool,
}

impl Provider for StopsAfterSending {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(async move {
            let id = self.outbox.send(message).await?;
            if self.first.swap(false, Ordering::SeqCst) {
                self.sent.notify_one();
                std::future::pending::<()>().await;
            }
            Ok(id)
        })
    }
}

/// A code issued on a real sign-in flow, with that flow.
async fn issue_on_flow(t: &TestStore, username: &str) -> (FlowId, IssuedCode) {
    let user = t.user(username).await;
    let flow = t.flow(username).await;
    t.advance(gatehouse_domain::mfa::codes::FLOW_RESEND_SECONDS + 1);
    let email = EmailAddress::parse(&format!("{username}@demo-clinic.example.com")).unwrap();
    let issued = t
        .store
        .tenant(t.tenant)
        .mfa()
        .issue_code(CodeRequest {
            user,
            owner: CodeOwner::Flow(flow),
            purpose: Purpose::SignIn,
            destination: Destination::Email(email),
            ttl_seconds: 300,
        })
        .await
        .unwrap();
    (flow, issued)
}

/// Runs the workers with a provider that takes the first message and then hangs; once it
/// has the message, stops the workers (they abandon the send): the delivery was written
/// to the provider and nothing recorded it.
async fn interrupted_send(t: &TestStore, issued: &IssuedCode) {
    let sent = Arc::new(tokio::sync::Notify::new());
    let mut config = t.worker_config();
    config.provider = Arc::new(StopsAfterSending {
        outbox: OutboxProvider::new(t.outbox_path()),
        sent: sent.clone(),
        first: AtomicBool::new(true),
    });
    config.shutdown_timeout = Duration::from_millis(100);
    let workers = spawn_in_process(t.store.clone(), config).unwrap();
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), sent.notified())
        .await
        .expect("the provider got the message");
    workers.shutdown().await;
    let row = t.delivery(issued.delivery_id).await;
    assert_eq!(row.status, "queued", "nothing recorded the send");
    assert_eq!(row.attempts, 1);
    assert_eq!(t.lines_of(issued.delivery_id).len(), 1);
}

async fn code_sent_events(t: &TestStore, delivery_id: uuid::Uuid) -> Vec<serde_json::Value> {
    let filter = AuditFilter {
        action: Some("mfa.code_sent".into()),
        ..Default::default()
    };
    t.store
        .tenant(t.tenant)
        .audit()
        .list(&filter, 100, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.details)
        .filter(|d| d["delivery_id"] == delivery_id.to_string().as_str())
        .collect()
}

/// (1) The worker stops between the provider call and the record; the user types the code
/// that arrived. The use proves the code arrived: the delivery is `delivered`, audited
/// `mfa.code_sent` with its attempt's outcome unknown, and the sweep, past the lease and
/// the code's life, never ends it `failed`.
async fn f1_a_code_used_after_its_worker_stopped_is_delivered_never_failed(db: Db) {
    let t = TestStore::new(db).await;
    let (flow, issued) = issue_on_flow(&t, "admin").await;
    interrupted_send(&t, &issued).await;

    let check = t
        .store
        .tenant(t.tenant)
        .mfa()
        .check_code(CodeOwner::Flow(flow), Purpose::SignIn, &issued.code)
        .await
        .unwrap();
    assert_eq!(check, Some(CodeCheck::Accept));
    let row = t.delivery(issued.delivery_id).await;
    assert_eq!(row.status, "delivered", "{row:?}");
    assert_eq!(row.payload_sealed, None);
    assert_eq!(row.error, None);

    let events = code_sent_events(&t, issued.delivery_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["recorded"], "at_use");
    assert_eq!(events[0]["attempts"][0]["outcome"], "unknown");
    assert_eq!(
        events[0]["attempts"][0]["detail"],
        "outcome unknown: the worker stopped"
    );
    let history = t
        .store
        .delivery_attempts(t.tenant, issued.delivery_id)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].attempt, history[0].outcome.as_str()),
        (1, "unknown")
    );

    // Past the lease and the code's life, the sweep leaves it delivered.
    t.advance(400);
    t.store.fail_dead_deliveries(100).await.unwrap();
    assert_eq!(t.delivery(issued.delivery_id).await.status, "delivered");
    assert_eq!(code_sent_events(&t, issued.delivery_id).await.len(), 1);
    assert!(t.store.tenant(t.tenant).audit().verify().await.unwrap().ok);
}

/// (1) The same with no verify call: the sweep alone finds the used code and ends the
/// delivery `delivered` (here the code is marked used directly, as a verify in another
/// process whose own marking failed would leave it).
async fn f1_the_sweep_ends_a_used_codes_queued_delivery_delivered(db: Db) {
    let t = TestStore::new(db).await;
    let (_flow, issued) = issue_on_flow(&t, "admin").await;
    interrupted_send(&t, &issued).await;
    let backend = t.raw.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        "UPDATE mfa_challenges SET used_at = expires_at WHERE id = $1"
    } else {
        "UPDATE mfa_challenges SET used_at = expires_at WHERE id = ?"
    };
    let used = t
        .raw
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [issued.challenge_id.into()],
        ))
        .await
        .unwrap();
    assert_eq!(used.rows_affected(), 1);
    t.advance(400);
    t.store.fail_dead_deliveries(100).await.unwrap();
    let row = t.delivery(issued.delivery_id).await;
    assert_eq!(row.status, "delivered", "{row:?}");
    let events = code_sent_events(&t, issued.delivery_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["attempts"][0]["outcome"], "unknown");
}

/// (2) The worker stops between the provider call and the record; nobody uses the code.
/// When the lease runs out the delivery is sent again (at least once: the provider has no
/// idempotency key), and its history and audit say that the first attempt's outcome is
/// unknown.
async fn f2_an_interrupted_send_is_sent_again_and_the_record_says_so(db: Db) {
    let t = TestStore::new(db).await;
    let (_flow, issued) = issue_on_flow(&t, "admin").await;
    interrupted_send(&t, &issued).await;

    t.advance(CLAIM_LEASE_SECONDS + 1);
    let workers = spawn_in_process(t.store.clone(), t.worker_config()).unwrap();
    let row = t
        .wait_for_delivery(issued.delivery_id, "sent again", |r| r.status == "sent")
        .await;
    workers.shutdown().await;
    assert_eq!(row.attempts, 2);
    assert_eq!(t.lines_of(issued.delivery_id).len(), 2, "sent twice");

    let history = t
        .store
        .delivery_attempts(t.tenant, issued.delivery_id)
        .await
        .unwrap();
    let outcomes: Vec<(i32, &str)> = history
        .iter()
        .map(|a| (a.attempt, a.outcome.as_str()))
        .collect();
    assert_eq!(outcomes, vec![(1, "unknown"), (2, "sent")]);
    assert_eq!(
        history[0].detail.as_deref(),
        Some("outcome unknown: the worker stopped")
    );
    let events = code_sent_events(&t, issued.delivery_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["attempt"], 2);
    assert_eq!(events[0]["attempts"][0]["outcome"], "unknown");
    assert_eq!(events[0]["attempts"][1]["outcome"], "sent");
    // No code and no full destination in the audit.
    let shown = serde_json::to_string(&events).unwrap();
    assert!(!has_word(&shown, issued.code.expose()), "{shown}");
    assert!(!shown.contains("admin@demo-clinic.example.com"), "{shown}");
}

/// An unused code whose attempt's outcome is unknown (its worker stopped after the
/// provider took the message, the lease ran out) and that then expires: it ends `failed`,
/// as the API's statuses allow, but neither its error nor its history says it was never
/// sent: the lost attempt is written `unknown`, and the error says the outcome is unknown.
/// Whether the sweep finds it or a late job's claim does. A code never claimed still
/// says "expired or was replaced before it could be sent".
async fn f2_an_unknown_attempt_whose_code_expires_unused_is_not_called_unsent(db: Db) {
    let t = TestStore::new(db).await;
    let (_flow, swept) = issue_on_flow(&t, "admin").await;
    interrupted_send(&t, &swept).await;
    let (_flow, claimed) = issue_on_flow(&t, "nurse.joy").await;
    interrupted_send(&t, &claimed).await;
    let (_flow, never) = issue_on_flow(&t, "dr.house").await;

    // Past the lease and the codes' life; nobody used them.
    t.advance(400);
    // A late job of one: its claim finds the code dead and ends the delivery.
    let none = t
        .store
        .tenant(t.tenant)
        .deliveries()
        .claim(claimed.delivery_id)
        .await
        .unwrap();
    assert!(none.is_none(), "a dead code is not sent");
    // The sweep ends the others.
    t.store.fail_dead_deliveries(100).await.unwrap();

    for issued in [&swept, &claimed] {
        let row = t.delivery(issued.delivery_id).await;
        assert_eq!(row.status, "failed", "{row:?}");
        assert_eq!(row.payload_sealed, None);
        assert_eq!(
            row.error.as_deref(),
            Some(gatehouse_store::deliveries::DEAD_CODE_UNKNOWN),
            "{row:?}"
        );
        assert!(row.error.as_deref().unwrap().starts_with("outcome unknown"));
        let history = t
            .store
            .delivery_attempts(t.tenant, issued.delivery_id)
            .await
            .unwrap();
        let outcomes: Vec<(i32, &str, Option<&str>)> = history
            .iter()
            .map(|a| (a.attempt, a.outcome.as_str(), a.detail.as_deref()))
            .collect();
        assert_eq!(
            outcomes,
            vec![(1, "unknown", Some("outcome unknown: the worker stopped"))]
        );
        assert_eq!(
            t.lines_of(issued.delivery_id).len(),
            1,
            "sent once, not again"
        );
    }
    let row = t.delivery(never.delivery_id).await;
    assert_eq!(row.status, "failed");
    assert_eq!(
        row.error.as_deref(),
        Some(gatehouse_store::deliveries::DEAD_CODE)
    );
    assert!(
        t.store
            .delivery_attempts(t.tenant, never.delivery_id)
            .await
            .unwrap()
            .is_empty()
    );
    // A second sweep changes nothing and writes no second `unknown`.
    assert_eq!(t.store.fail_dead_deliveries(100).await.unwrap(), 0);
    assert_eq!(
        t.store
            .delivery_attempts(t.tenant, swept.delivery_id)
            .await
            .unwrap()
            .len(),
        1
    );
}

on_both_databases!(
    f2_an_unknown_attempt_whose_code_expires_unused_is_not_called_unsent,
    f3_while_redis_is_down_pushes_skip_it_and_codes_come_from_the_database,
    f1_a_code_used_after_its_worker_stopped_is_delivered_never_failed,
    f1_the_sweep_ends_a_used_codes_queued_delivery_delivered,
    f2_an_interrupted_send_is_sent_again_and_the_record_says_so,
);
