//! SMS opt-outs at the worker (D3): a number is re-checked just before the provider call,
//! checked with SNS when first used, synced from SNS's list, and opted back in at SNS after
//! START. SNS is the emulator (moto) where it can answer; a counting fake of the opt-out
//! trait where moto cannot show what it was asked (OptInPhoneNumber) or cannot fail.

use crate::helpers::{Db, TestStore, wait_until};
use crate::moto::{Moto, unique_phone};
use gatehouse_domain::ids::PhoneE164;
use gatehouse_domain::jobs::ProcessInbound;
use gatehouse_store::inbound::NewInbound;
use gatehouse_store::mfa::Destination;
use gatehouse_store::optouts::OptOutSource;
use gatehouse_store::queue::JobQueue;
use gatehouse_testkit::on_both_databases;
use gatehouse_workers::aws::{self, AwsSettings, SesSettings, SmsSettings};
use gatehouse_workers::optout::{OptOutFuture, OptedOutPage};
use gatehouse_workers::{ProviderError, SmsOptOutSource, WorkerConfig, spawn_in_process};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

on_both_databases!(
    d3_a_number_sns_knows_as_opted_out_is_refused_at_first_use_and_the_answer_recorded,
    d3_a_number_opted_out_after_its_code_was_issued_is_refused_by_the_worker,
    d3_the_sync_records_the_numbers_sns_lists_as_opted_out,
    d3_start_opts_the_number_back_in_at_the_provider,
    d3_a_failing_check_is_retried_later_not_a_refusal,
    d3_many_first_time_numbers_at_once_are_each_gated_on_their_own_answer,
    d3_batched_reads_and_checks_answer_in_order_and_keep_what_is_recorded,
);

/// The eight UK numbers moto's `ListPhoneNumbersOptedOut` always answers.
const MOTO_OPTED_OUT: [&str; 8] = [
    "+447420500600",
    "+447420505401",
    "+447632960543",
    "+447632960028",
    "+447700900149",
    "+447700900550",
    "+447700900545",
    "+447700900907",
];

/// Worker settings sending SMS through SNS on moto, with SNS's opt-out list.
async fn aws_workers(t: &TestStore, moto: &Moto) -> WorkerConfig {
    let sdk = moto.sdk_config().await;
    let delivery = aws::delivery(
        &sdk,
        AwsSettings {
            ses: SesSettings {
                from: "no-reply@gatehouse-test.example.com".into(),
                configuration_set: None,
            },
            sms: SmsSettings::default(),
        },
    );
    let mut config = t.worker_config();
    config.provider = Arc::new(delivery.providers);
    config.sms_opt_outs = Some(delivery.sms_opt_outs);
    config
}

/// A number no other test uses that moto answers is opted out (it ends in 99).
fn unique_opted_out_phone() -> String {
    let phone = unique_phone();
    format!("{}99", &phone[..phone.len() - 2])
}

async fn d3_a_number_sns_knows_as_opted_out_is_refused_at_first_use_and_the_answer_recorded(
    db: Db,
) {
    let t = TestStore::new(db).await;
    let moto = Moto::from_env();
    let workers = spawn_in_process(t.store.clone(), aws_workers(&t, &moto).await).unwrap();

    let out = unique_opted_out_phone();
    let phone = PhoneE164::parse(&out).unwrap();
    assert_eq!(t.store.phone_opt_out(&phone).await.unwrap(), None);
    let issued = t.issue("dr.house", Destination::Sms(phone.clone())).await;
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();
    let row = t
        .wait_for_delivery(issued.delivery_id, "opted_out", |r| r.status == "opted_out")
        .await;
    assert_eq!(row.payload_sealed, None, "the sealed message is dropped");
    assert_eq!(row.provider_message_id, None);
    assert!(
        row.error
            .as_deref()
            .unwrap_or_default()
            .contains("opted out"),
        "{row:?}"
    );
    let recorded = t.store.phone_opt_out(&phone).await.unwrap().unwrap();
    assert!(recorded.opted_out);
    assert_eq!(recorded.source, "check");

    // A number SNS does not know as opted out is sent, and its answer is recorded too, so
    // it is not asked about again.
    let fine = unique_phone();
    let fine_phone = PhoneE164::parse(&fine).unwrap();
    let sent = t
        .issue("nurse.joy", Destination::Sms(fine_phone.clone()))
        .await;
    workers
        .queue()
        .push_send_code(sent.job.clone())
        .await
        .unwrap();
    t.wait_for_delivery(sent.delivery_id, "sent", |r| r.status == "sent")
        .await;
    moto.wait_for_sms(&fine).await;
    let recorded = t.store.phone_opt_out(&fine_phone).await.unwrap().unwrap();
    assert!(!recorded.opted_out);
    assert_eq!(recorded.source, "check");

    workers.shutdown().await;
    assert!(moto.sms_to(&out).await.is_empty(), "nothing was published");
}

async fn d3_a_number_opted_out_after_its_code_was_issued_is_refused_by_the_worker(db: Db) {
    let t = TestStore::new(db).await;
    let moto = Moto::from_env();
    let to = unique_phone();
    let phone = PhoneE164::parse(&to).unwrap();
    let issued = t.issue("admin", Destination::Sms(phone.clone())).await;
    // STOP arrives between the sign-in and the send.
    assert!(
        t.store
            .set_phone_opted_out(&phone, true, OptOutSource::Inbound)
            .await
            .unwrap()
    );

    let workers = spawn_in_process(t.store.clone(), aws_workers(&t, &moto).await).unwrap();
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();
    let row = t
        .wait_for_delivery(issued.delivery_id, "opted_out", |r| r.status == "opted_out")
        .await;
    assert_eq!(row.payload_sealed, None);
    assert_eq!(row.attempts, 1, "a refusal is not retried");
    // The job again: the delivery is final, nothing is sent.
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();
    workers.shutdown().await;
    assert_eq!(t.delivery(issued.delivery_id).await.status, "opted_out");
    assert!(moto.sms_to(&to).await.is_empty(), "nothing was published");
    // The user's STOP stays what is recorded.
    let recorded = t.store.phone_opt_out(&phone).await.unwrap().unwrap();
    assert_eq!(recorded.source, "inbound");
}

async fn d3_the_sync_records_the_numbers_sns_lists_as_opted_out(db: Db) {
    let t = TestStore::new(db).await;
    let moto = Moto::from_env();
    // The first sync runs at start.
    let workers = spawn_in_process(t.store.clone(), aws_workers(&t, &moto).await).unwrap();
    for number in MOTO_OPTED_OUT {
        let phone = PhoneE164::parse(number).unwrap();
        let recorded = wait_until(&format!("{number} recorded as opted out"), || async {
            t.store.phone_opt_out(&phone).await.unwrap()
        })
        .await;
        assert!(recorded.opted_out, "{number}");
        assert_eq!(recorded.source, "sync", "{number}");
    }
    workers.shutdown().await;
}

/// Counts what it is asked; its check fails while `failing` is set, and otherwise answers,
/// as moto does, that a number ending in 99 is opted out.
#[derive(Debug, Default)]
struct Counting {
    checks: Mutex<Vec<String>>,
    opt_ins: Mutex<Vec<String>>,
    failing: AtomicBool,
}

impl SmsOptOutSource for Counting {
    fn check<'a>(&'a self, phone: &'a PhoneE164) -> OptOutFuture<'a, bool> {
        self.checks.lock().unwrap().push(phone.as_str().to_owned());
        let phone = phone.clone();
        let failing = self.failing.load(Ordering::SeqCst);
        Box::pin(async move {
            if failing {
                Err(ProviderError::permanent(
                    "SNS CheckIfPhoneNumberIsOptedOut: InternalError (HTTP 500)",
                ))
            } else {
                Ok(phone.as_str().ends_with("99"))
            }
        })
    }

    fn list_opted_out<'a>(
        &'a self,
        _next_token: Option<&'a str>,
    ) -> OptOutFuture<'a, OptedOutPage> {
        Box::pin(async { Ok(OptedOutPage::default()) })
    }

    fn opt_in<'a>(&'a self, phone: &'a PhoneE164) -> OptOutFuture<'a, ()> {
        self.opt_ins.lock().unwrap().push(phone.as_str().to_owned());
        Box::pin(async { Ok(()) })
    }
}

/// Records an inbound SMS notification as the webhook would, and queues its processing.
async fn inbound_text(t: &TestStore, queue: &dyn JobQueue, from: &str, body: &str) {
    let message_id = Uuid::new_v4().to_string();
    let message = serde_json::json!({
        "originationNumber": from,
        "destinationNumber": "+12025550100",
        "messageKeyword": "KEYWORD_123456789012",
        "messageBody": body,
        "inboundMessageId": Uuid::new_v4().to_string(),
    })
    .to_string();
    assert!(
        t.store
            .record_inbound(NewInbound {
                message_id: &message_id,
                sns_type: "Notification",
                topic_arn: "arn:aws:sns:us-east-1:123456789012:gatehouse-inbound-sms",
                message: &message,
                subscribe_url: None,
            })
            .await
            .unwrap()
    );
    queue
        .push_process_inbound(ProcessInbound::new(message_id))
        .await
        .unwrap();
}

async fn d3_start_opts_the_number_back_in_at_the_provider(db: Db) {
    let t = TestStore::new(db).await;
    let source = Arc::new(Counting::default());
    let mut config = t.worker_config();
    config.sms_opt_outs = Some(source.clone());
    let workers = spawn_in_process(t.store.clone(), config).unwrap();
    let to = unique_phone();
    let phone = PhoneE164::parse(&to).unwrap();

    inbound_text(&t, workers.queue(), &to, "STOP").await;
    wait_until("STOP recorded", || async {
        t.store
            .phone_opt_out(&phone)
            .await
            .unwrap()
            .filter(|p| p.opted_out)
    })
    .await;
    inbound_text(&t, workers.queue(), &to, "  start ").await;
    wait_until("OptInPhoneNumber called", || async {
        let calls = source.opt_ins.lock().unwrap().clone();
        (!calls.is_empty()).then_some(calls)
    })
    .await;
    workers.shutdown().await;

    assert_eq!(
        *source.opt_ins.lock().unwrap(),
        vec![to.clone()],
        "once, for START only"
    );
    let recorded = t.store.phone_opt_out(&phone).await.unwrap().unwrap();
    assert!(!recorded.opted_out);
    assert_eq!(recorded.source, "inbound");
}

async fn d3_a_failing_check_is_retried_later_not_a_refusal(db: Db) {
    let t = TestStore::new(db).await;
    let source = Arc::new(Counting::default());
    source.failing.store(true, Ordering::SeqCst);
    let mut config = t.worker_config();
    config.sms_opt_outs = Some(source.clone());
    let workers = spawn_in_process(t.store.clone(), config).unwrap();
    let to = unique_phone();
    let phone = PhoneE164::parse(&to).unwrap();
    let issued = t.issue("nurse.joy", Destination::Sms(phone.clone())).await;
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();

    let row = t
        .wait_for_delivery(issued.delivery_id, "the check's error", |r| {
            r.error.is_some()
        })
        .await;
    assert_eq!(row.status, "queued", "{row:?}");
    assert!(row.payload_sealed.is_some(), "kept for the retry");
    assert!(
        row.error
            .as_deref()
            .unwrap_or_default()
            .contains("CheckIfPhoneNumberIsOptedOut"),
        "{row:?}"
    );
    assert_eq!(
        t.store.phone_opt_out(&phone).await.unwrap(),
        None,
        "nothing recorded"
    );
    assert!(t.lines_of(issued.delivery_id).is_empty(), "nothing sent");

    // The provider answers again: the periodic re-enqueue sends the code.
    source.failing.store(false, Ordering::SeqCst);
    t.advance(1);
    t.wait_for_line(issued.delivery_id).await;
    t.wait_for_delivery(issued.delivery_id, "sent", |r| r.status == "sent")
        .await;
    workers.shutdown().await;
    let recorded = t.store.phone_opt_out(&phone).await.unwrap().unwrap();
    assert!(!recorded.opted_out);
    assert_eq!(recorded.source, "check");
    assert!(source.checks.lock().unwrap().len() >= 2);
}

/// Many SMS to numbers used for the first time, sent at once: their reads and the records
/// of their checks go in batches, and each delivery is still gated on its own number.
async fn d3_many_first_time_numbers_at_once_are_each_gated_on_their_own_answer(db: Db) {
    let t = TestStore::new(db).await;
    let source = Arc::new(Counting::default());
    let template = t
        .issue(
            "nurse.joy",
            Destination::Sms(PhoneE164::parse(&unique_phone()).unwrap()),
        )
        .await;
    // Half of them opted out at the provider; one number twice.
    let mut numbers: Vec<String> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                unique_phone()
            } else {
                unique_opted_out_phone()
            }
        })
        .collect();
    numbers.push(numbers[0].clone());
    let jobs = t.copies_to(template.delivery_id, &numbers).await;

    let mut config = t.worker_config();
    config.sms_opt_outs = Some(source.clone());
    let workers = spawn_in_process(t.store.clone(), config).unwrap();
    for job in &jobs {
        workers.queue().push_send_code(job.clone()).await.unwrap();
    }
    for (job, number) in jobs.iter().zip(&numbers) {
        let refused = number.ends_with("99");
        let want = if refused { "opted_out" } else { "sent" };
        let row = t
            .wait_for_delivery(job.delivery_id, want, |r| r.status != "queued")
            .await;
        assert_eq!(row.status, want, "{number}: {row:?}");
        assert_eq!(t.lines_of(job.delivery_id).is_empty(), refused, "{number}");
    }
    workers.shutdown().await;

    for number in &numbers {
        let recorded = t
            .store
            .phone_opt_out(&PhoneE164::parse(number).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recorded.opted_out, number.ends_with("99"), "{number}");
        assert_eq!(recorded.source, "check", "{number}");
    }
    let checks = source.checks.lock().unwrap().clone();
    for number in &numbers[..40] {
        let asked = checks.iter().filter(|c| *c == number).count();
        // Two sends to one new number at the same instant may both ask.
        let most = if *number == numbers[0] { 2 } else { 1 };
        assert!((1..=most).contains(&asked), "{number} asked {asked} times");
    }
}

/// The batched store calls behind the gate: answers in the order asked, unknown numbers
/// as unknown, and a recorded state (a STOP meanwhile) wins over a check's answer.
async fn d3_batched_reads_and_checks_answer_in_order_and_keep_what_is_recorded(db: Db) {
    let t = TestStore::new(db).await;
    let [stopped, unknown, fine] = [(); 3].map(|_| PhoneE164::parse(&unique_phone()).unwrap());
    assert!(
        t.store
            .set_phone_opted_out(&stopped, true, OptOutSource::Inbound)
            .await
            .unwrap()
    );
    assert_eq!(
        t.store
            .phone_opt_outs_of(&[unknown.clone(), stopped.clone(), unknown.clone()])
            .await
            .unwrap(),
        vec![None, Some(true), None]
    );
    assert!(t.store.phone_opt_outs_of(&[]).await.unwrap().is_empty());

    let answers = t
        .store
        .record_phone_checks(&[
            (stopped.clone(), false),
            (unknown.clone(), true),
            (fine.clone(), false),
            (unknown.clone(), false),
        ])
        .await
        .unwrap();
    // The STOP stands; a number checked twice keeps its first answer.
    assert_eq!(answers, vec![true, true, false, true]);
    assert!(t.store.record_phone_checks(&[]).await.unwrap().is_empty());
    let stop = t.store.phone_opt_out(&stopped).await.unwrap().unwrap();
    assert_eq!((stop.opted_out, stop.source.as_str()), (true, "inbound"));
    let checked = t.store.phone_opt_out(&unknown).await.unwrap().unwrap();
    assert_eq!(
        (checked.opted_out, checked.source.as_str()),
        (true, "check")
    );
    assert_eq!(
        t.store
            .phone_opt_outs_of(&[fine.clone(), unknown.clone()])
            .await
            .unwrap(),
        vec![Some(false), Some(true)]
    );
}
