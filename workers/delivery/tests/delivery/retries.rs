//! Provider failures on the real AWS SDK against the fake provider, which throttles, errs
//! or refuses on purpose (moto cannot): transient failures are retried with backoff until
//! the code goes out once; a refused destination fails at once; a code that expires
//! while the provider keeps throttling is never sent late; a transient bounce sends the
//! code again while it lives (D2, D4).

use crate::helpers::{Db, TestStore, has_word};
use crate::moto::{sdk_config_at, unique_email, unique_phone};
use gatehouse_domain::ids::{EmailAddress, PhoneE164};
use gatehouse_fake_aws::{Counts, FakeAws, Rule};
use gatehouse_store::mfa::Destination;
use gatehouse_testkit::on_both_databases;
use gatehouse_workers::aws::{self, AwsSettings, SesSettings, SmsSettings};
use gatehouse_workers::{WorkerConfig, spawn_in_process};
use std::sync::Arc;
use std::time::Duration;

on_both_databases!(
    d2_throttling_and_server_errors_are_retried_with_backoff_until_the_code_goes_out_once,
    d2_a_refused_destination_fails_at_once_with_a_reason_support_can_read,
    d4_a_code_that_expires_while_the_provider_throttles_is_never_sent_late,
    d4_a_transient_bounce_sends_the_code_again_after_a_pause_while_it_lives,
);

/// Workers sending through the real SDK to the fake, which has no identity to verify.
async fn workers_at(t: &TestStore, fake: &FakeAws, retries: usize) -> WorkerConfig {
    let sdk = sdk_config_at(&fake.url).await;
    let settings = AwsSettings {
        ses: SesSettings {
            from: "no-reply@gatehouse-test.example.com".into(),
            configuration_set: None,
        },
        sms: SmsSettings::default(),
    };
    let mut config = t.worker_config();
    config.provider = Arc::new(aws::providers(&sdk, settings));
    config.retries = retries;
    config.retry_min = Duration::from_millis(20);
    config.retry_max = Duration::from_millis(80);
    config
}

async fn d2_throttling_and_server_errors_are_retried_with_backoff_until_the_code_goes_out_once(
    db: Db,
) {
    let t = TestStore::new(db).await;
    let fake = FakeAws::start().unwrap();
    let workers = spawn_in_process(t.store.clone(), workers_at(&t, &fake, 4).await).unwrap();

    // Email: throttled twice, then a server error, then accepted.
    let to = unique_email("nurse.joy");
    fake.rule(&to, Rule::Throttle, 2);
    fake.rule(&to, Rule::ServerError, 1);
    let email = t
        .issue(
            "nurse.joy",
            Destination::Email(EmailAddress::parse(&to).unwrap()),
        )
        .await;
    // SMS: throttled three times, then accepted.
    let phone = unique_phone();
    fake.rule(&phone, Rule::Throttle, 3);
    let sms = t
        .issue(
            "nurse.joy",
            Destination::Sms(PhoneE164::parse(&phone).unwrap()),
        )
        .await;
    for job in [&email.job, &sms.job] {
        workers.queue().push_send_code(job.clone()).await.unwrap();
    }

    for (issued, dest, failures) in [(&email, &to, 3), (&sms, &phone, 3)] {
        let row = t
            .wait_for_delivery(issued.delivery_id, "sent after retries", |r| {
                r.status == "sent"
            })
            .await;
        assert_eq!(row.attempts, failures + 1, "{row:?}");
        assert_eq!(row.error, None, "a success clears the last error");
        let accepted = fake.accepted_to(dest);
        assert_eq!(accepted.len(), 1, "{accepted:?}");
        assert!(has_word(&accepted[0].text, issued.code.expose()));
        assert_eq!(
            row.provider_message_id.as_deref(),
            Some(accepted[0].message_id.as_str())
        );
        assert_eq!(
            fake.counts(dest),
            Counts {
                calls: failures as u32 + 1,
                accepted: 1,
                refused: failures as u32,
                hanging: 0,
            }
        );
    }
    workers.shutdown().await;
}

async fn d2_a_refused_destination_fails_at_once_with_a_reason_support_can_read(db: Db) {
    let t = TestStore::new(db).await;
    let fake = FakeAws::start().unwrap();
    let workers = spawn_in_process(t.store.clone(), workers_at(&t, &fake, 4).await).unwrap();
    let phone = unique_phone();
    fake.rule(&phone, Rule::Reject, 5);
    let sms = t
        .issue(
            "nurse.joy",
            Destination::Sms(PhoneE164::parse(&phone).unwrap()),
        )
        .await;
    workers
        .queue()
        .push_send_code(sms.job.clone())
        .await
        .unwrap();
    let row = t
        .wait_for_delivery(sms.delivery_id, "failed", |r| r.status == "failed")
        .await;
    assert_eq!(row.attempts, 1, "a permanent refusal is not retried");
    let error = row.error.unwrap_or_default();
    assert!(error.contains("InvalidParameter"), "{error}");
    assert!(
        !error.contains(&phone[2..]),
        "the number is masked: {error}"
    );
    assert_eq!(fake.counts(&phone).calls, 1);
    workers.shutdown().await;
}

async fn d4_a_code_that_expires_while_the_provider_throttles_is_never_sent_late(db: Db) {
    let t = TestStore::new(db).await;
    let fake = FakeAws::start().unwrap();
    let workers = spawn_in_process(t.store.clone(), workers_at(&t, &fake, 2).await).unwrap();
    let to = unique_email("nurse.joy");
    fake.rule(&to, Rule::Throttle, 10_000);
    let email = t
        .issue(
            "nurse.joy",
            Destination::Email(EmailAddress::parse(&to).unwrap()),
        )
        .await;
    workers
        .queue()
        .push_send_code(email.job.clone())
        .await
        .unwrap();
    // Throttled, retried, still queued (the re-enqueue tries again while it lives).
    let row = t
        .wait_for_delivery(email.delivery_id, "three throttled attempts", |r| {
            r.attempts >= 3 && r.error.is_some()
        })
        .await;
    assert_eq!(row.status, "queued", "{row:?}");
    assert!(
        row.error
            .as_deref()
            .unwrap_or("")
            .contains("TooManyRequests"),
        "{row:?}"
    );

    // The code's five minutes pass; then the provider would accept again.
    t.advance(301);
    let row = t
        .wait_for_delivery(email.delivery_id, "failed as expired", |r| {
            r.status == "failed"
        })
        .await;
    assert!(
        row.error.as_deref().unwrap_or("").contains("expired"),
        "{row:?}"
    );
    fake.clear_rules(&to);
    // The re-enqueue runs every 100 ms here: give it several chances to send it late.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        fake.counts(&to).accepted,
        0,
        "an expired code is never sent"
    );
    assert_eq!(t.delivery(email.delivery_id).await.status, "failed");
    workers.shutdown().await;
}

/// Records an SES event notification as the webhook would, and queues its processing.
async fn ses_event(
    t: &TestStore,
    queue: &dyn gatehouse_store::queue::JobQueue,
    event: serde_json::Value,
) {
    let message_id = uuid::Uuid::new_v4().to_string();
    assert!(
        t.store
            .record_inbound(gatehouse_store::inbound::NewInbound {
                message_id: &message_id,
                sns_type: "Notification",
                topic_arn: "arn:aws:sns:us-east-1:123456789012:gatehouse-ses-events",
                message: &event.to_string(),
                subscribe_url: None,
            })
            .await
            .unwrap()
    );
    queue
        .push_process_inbound(gatehouse_domain::jobs::ProcessInbound::new(message_id))
        .await
        .unwrap();
}

fn transient_bounce(to: &str, mail_message_id: &str) -> serde_json::Value {
    serde_json::json!({"eventType": "Bounce",
        "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull",
                   "bouncedRecipients": [{"emailAddress": to}]},
        "mail": {"messageId": mail_message_id, "destination": [to]}})
}

async fn d4_a_transient_bounce_sends_the_code_again_after_a_pause_while_it_lives(db: Db) {
    let t = TestStore::new(db).await;
    let fake = FakeAws::start().unwrap();
    let workers = spawn_in_process(t.store.clone(), workers_at(&t, &fake, 1).await).unwrap();
    let to = unique_email("nurse.joy");
    let email = t
        .issue(
            "nurse.joy",
            Destination::Email(EmailAddress::parse(&to).unwrap()),
        )
        .await;
    workers
        .queue()
        .push_send_code(email.job.clone())
        .await
        .unwrap();
    let first = t
        .wait_for_delivery(email.delivery_id, "sent", |r| r.status == "sent")
        .await;
    assert!(
        first.payload_sealed.is_some(),
        "kept while the code lives, for a resend"
    );
    let first_id = first.provider_message_id.clone().unwrap();

    // The mailbox is full for now: the delivery waits 30 s, then goes out again.
    ses_event(&t, workers.queue(), transient_bounce(&to, &first_id)).await;
    let row = t
        .wait_for_delivery(email.delivery_id, "queued again", |r| r.status == "queued")
        .await;
    assert!(
        row.error
            .as_deref()
            .unwrap_or("")
            .contains("transient bounce"),
        "{row:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.accepted_to(&to).len(), 1, "not before the pause");
    t.advance(31);
    let second = t
        .wait_for_delivery(email.delivery_id, "sent again", |r| {
            r.status == "sent" && r.provider_message_id.as_deref() != Some(first_id.as_str())
        })
        .await;
    let accepted = fake.accepted_to(&to);
    assert_eq!(accepted.len(), 2);
    assert!(has_word(&accepted[1].text, email.code.expose()));
    assert_eq!(
        second.provider_message_id.as_deref(),
        Some(accepted[1].message_id.as_str())
    );

    // Bounced again, but the code would be dead before the next pause ends: recorded only,
    // and once the code is dead its sealed message is dropped.
    t.advance(240);
    ses_event(
        &t,
        workers.queue(),
        transient_bounce(&to, second.provider_message_id.as_deref().unwrap()),
    )
    .await;
    let row = t
        .wait_for_delivery(email.delivery_id, "the bounce recorded", |r| {
            r.error.as_deref() == Some("transient bounce reported by the mail provider")
        })
        .await;
    assert_eq!(row.status, "sent");
    t.advance(60);
    let row = t
        .wait_for_delivery(email.delivery_id, "the sealed message dropped", |r| {
            r.payload_sealed.is_none()
        })
        .await;
    assert_eq!(row.status, "sent");
    assert_eq!(
        fake.accepted_to(&to).len(),
        2,
        "never sent after the code died"
    );
    workers.shutdown().await;
}
