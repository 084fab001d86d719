use crate::helpers::{COMPANY, COMPANY_NAME, Db, PHONE, TestStore, has_word};
use gatehouse_testkit::on_both_databases;
use gatehouse_workers::spawn_in_process;

on_both_databases!(
    d1_a_pushed_code_is_written_to_the_outbox_once_and_the_delivery_is_sent,
    d1_a_code_queued_while_no_worker_ran_is_sent_by_the_requeue,
    d1_an_expired_code_is_never_sent,
    d1_a_failing_provider_leaves_a_readable_error_and_no_plaintext_then_recovers,
    d1_a_message_that_does_not_open_fails_permanently,
);

async fn d1_a_pushed_code_is_written_to_the_outbox_once_and_the_delivery_is_sent(db: Db) {
    let t = TestStore::new(db).await;
    let mut config = t.worker_config();
    // One send at a time, so a later job's line proves an earlier job has run.
    config.concurrency = 1;
    let workers = spawn_in_process(t.store.clone(), config).unwrap();
    let sms = t.issue_sms("nurse.joy").await;
    workers
        .queue()
        .push_send_code(sms.job.clone())
        .await
        .unwrap();

    let line = t.wait_for_line(sms.delivery_id).await;
    assert_eq!(line["channel"], "sms");
    assert_eq!(line["to"], PHONE);
    assert_eq!(line["company"], COMPANY);
    assert_eq!(line["purpose"], "sign_in");
    assert_eq!(
        line["subject"],
        format!("Your {COMPANY_NAME} verification code")
    );
    let body = line["body"].as_str().unwrap();
    assert!(has_word(body, sms.code.expose()), "{body}");
    assert!(
        body.contains(COMPANY_NAME) && body.contains("5 min"),
        "{body}"
    );
    assert!(body.chars().count() < 160);
    assert!(chrono::DateTime::parse_from_rfc3339(line["at"].as_str().unwrap()).is_ok());
    let keys: Vec<_> = line.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 8, "{keys:?}");

    let row = t
        .wait_for_delivery(sms.delivery_id, "sent", |r| r.status == "sent")
        .await;
    assert_eq!(
        row.provider_message_id,
        Some(format!("outbox-{}", sms.delivery_id))
    );
    assert_eq!(row.payload_sealed, None, "the sealed message is dropped");
    assert_eq!(row.error, None);

    // The same job again, twice: nothing more is written. An email code pushed after them
    // is written after they ran (one send at a time).
    for _ in 0..2 {
        workers
            .queue()
            .push_send_code(sms.job.clone())
            .await
            .unwrap();
    }
    let email = t.issue_email("admin").await;
    workers
        .queue()
        .push_send_code(email.job.clone())
        .await
        .unwrap();
    let line = t.wait_for_line(email.delivery_id).await;
    assert_eq!(line["channel"], "email");
    assert_eq!(line["to"], "admin@demo-clinic.example.com");
    assert!(has_word(
        line["body"].as_str().unwrap(),
        email.code.expose()
    ));
    workers.shutdown().await;
    assert_eq!(
        t.lines_of(sms.delivery_id).len(),
        1,
        "one send per delivery"
    );
    assert_eq!(t.lines_of(email.delivery_id).len(), 1);
}

async fn d1_a_code_queued_while_no_worker_ran_is_sent_by_the_requeue(db: Db) {
    let t = TestStore::new(db).await;
    // Issued while no queue is attached: only the delivery row knows about it.
    let issued = t.issue_sms("dr.house").await;
    assert_eq!(t.delivery(issued.delivery_id).await.status, "queued");
    t.advance(1);
    let workers = spawn_in_process(t.store.clone(), t.worker_config()).unwrap();
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
    assert_eq!(t.lines_of(issued.delivery_id).len(), 1);
}

async fn d1_an_expired_code_is_never_sent(db: Db) {
    let t = TestStore::new(db).await;
    let issued = t.issue_sms("nurse.joy").await;
    t.advance(301);
    let workers = spawn_in_process(t.store.clone(), t.worker_config()).unwrap();
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();
    let row = t
        .wait_for_delivery(issued.delivery_id, "failed", |r| r.status == "failed")
        .await;
    assert!(
        row.error.as_deref().unwrap_or("").contains("expired"),
        "{row:?}"
    );
    assert_eq!(row.payload_sealed, None);
    workers.shutdown().await;
    assert!(t.lines_of(issued.delivery_id).is_empty());
}

async fn d1_a_failing_provider_leaves_a_readable_error_and_no_plaintext_then_recovers(db: Db) {
    let t = TestStore::new(db).await;
    let missing = t.dir.path().join("not-yet");
    let mut config = gatehouse_workers::WorkerConfig::outbox(missing.join("outbox.jsonl"));
    let base = t.worker_config();
    config.retries = base.retries;
    config.retry_min = base.retry_min;
    config.retry_max = base.retry_max;
    config.requeue = base.requeue;
    let workers = spawn_in_process(t.store.clone(), config).unwrap();
    let issued = t.issue_sms("admin").await;
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();
    // The first try and its retry both failed.
    let row = t
        .wait_for_delivery(issued.delivery_id, "two failed attempts", |r| {
            r.attempts >= 2 && r.error.is_some()
        })
        .await;
    assert_eq!(
        row.status, "queued",
        "a transient failure keeps the code queued"
    );
    let error = row.error.unwrap();
    assert!(error.contains("outbox: cannot open"), "{error}");
    assert!(error.contains("not-yet"), "{error}");
    let code = issued.code.expose();
    let sealed = row.payload_sealed.unwrap();
    assert!(sealed.starts_with("v1."));
    for text in [&error, &sealed] {
        assert!(
            !text.contains(code) && !text.contains("2025550147"),
            "{text}"
        );
    }

    // Once the directory exists, the re-enqueue sends it. The store's clock moves on a
    // second every half second meanwhile: the second try may still be recording its
    // failure, and a row touched after a single step would never look idle again.
    std::fs::create_dir(&missing).unwrap();
    let (mut polls, id) = (0u32, issued.delivery_id);
    let row = crate::helpers::wait_until("sent after the fix", || {
        if polls % 50 == 0 {
            t.advance(1);
        }
        polls += 1;
        let t = &t;
        async move {
            let row = t.delivery(id).await;
            (row.status == "sent").then_some(row)
        }
    })
    .await;
    assert_eq!(row.error, None);
    workers.shutdown().await;
    let text = std::fs::read_to_string(missing.join("outbox.jsonl")).unwrap();
    let id = issued.delivery_id.to_string();
    let mine: Vec<&str> = text.lines().filter(|l| l.contains(&id)).collect();
    assert_eq!(mine.len(), 1);
    assert!(has_word(mine[0], code));
}

async fn d1_a_message_that_does_not_open_fails_permanently(db: Db) {
    let t = TestStore::new(db).await;
    let issued = t.issue_sms("dr.house").await;
    // Sealed under a key this service does not have.
    let other = gatehouse_domain::crypto::SecretKey::from_bytes([9; 32]);
    let foreign = other.seal(
        &gatehouse_domain::jobs::SendCode::seal_context(issued.delivery_id),
        b"{\"to\":\"+12025550147\",\"code\":\"123456\"}",
    );
    t.set_sealed(issued.delivery_id, &foreign).await;
    let workers = spawn_in_process(t.store.clone(), t.worker_config()).unwrap();
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();
    let row = t
        .wait_for_delivery(issued.delivery_id, "failed", |r| r.status == "failed")
        .await;
    assert!(
        row.error
            .as_deref()
            .unwrap_or("")
            .contains("could not be opened"),
        "{row:?}"
    );
    assert_eq!(row.payload_sealed, None);
    workers.shutdown().await;
    assert!(t.lines_of(issued.delivery_id).is_empty());
}
