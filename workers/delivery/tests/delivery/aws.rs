//! The SES and SNS providers on the real AWS SDK against the emulator (moto server): a code
//! issued by the store leaves through the worker and reaches the provider API, and
//! provider refusals land on the delivery as readable, final errors (D2, D4, D5).

use crate::helpers::{COMPANY_NAME, Db, TestStore, has_word};
use crate::moto::{Moto, sdk_config_at, unique_email, unique_phone};
use gatehouse_domain::ids::{EmailAddress, PhoneE164};
use gatehouse_domain::mfa::codes::{Channel, Purpose};
use gatehouse_store::mfa::Destination;
use gatehouse_testkit::on_both_databases;
use gatehouse_workers::aws::{self, AwsSettings, SesSettings, SmsSettings, SnsProvider};
use gatehouse_workers::message::Message;
use gatehouse_workers::{Provider, WorkerConfig, spawn_in_process};
use secrecy::SecretString;
use std::sync::Arc;
use uuid::Uuid;

on_both_databases!(
    d2_an_email_code_reaches_ses_as_text_and_html_and_the_delivery_records_its_id,
    d2_an_sms_code_reaches_sns_and_the_delivery_records_its_id,
);

/// Worker settings for tests, sending through AWS.
fn aws_workers(t: &TestStore, sdk: &aws_config::SdkConfig, settings: AwsSettings) -> WorkerConfig {
    let mut config = t.worker_config();
    config.provider = Arc::new(aws::providers(sdk, settings));
    config
}

async fn d2_an_email_code_reaches_ses_as_text_and_html_and_the_delivery_records_its_id(db: Db) {
    let t = TestStore::new(db).await;
    let moto = Moto::from_env();
    let sdk = moto.sdk_config().await;
    let from = moto.verified_sender(&sdk).await;
    let configuration_set = moto.configuration_set(&sdk).await;
    let settings = AwsSettings {
        ses: SesSettings {
            from: from.clone(),
            configuration_set: Some(configuration_set),
        },
        sms: SmsSettings::default(),
    };
    let workers = spawn_in_process(t.store.clone(), aws_workers(&t, &sdk, settings)).unwrap();
    let to = unique_email("nurse.joy");
    let issued = t
        .issue(
            "nurse.joy",
            Destination::Email(EmailAddress::parse(&to).unwrap()),
        )
        .await;
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();

    let row = t
        .wait_for_delivery(issued.delivery_id, "sent", |r| r.status == "sent")
        .await;
    let email = moto.wait_for_email(&to).await;
    assert_eq!(email["source"], from.as_str());
    assert_eq!(
        email["subject"],
        format!("Your {COMPANY_NAME} verification code")
    );
    assert_eq!(
        email["destinations"]["ToAddresses"],
        serde_json::json!([to])
    );
    // moto keeps only the HTML part when both are sent.
    let body = email["body"].as_str().unwrap();
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    assert!(has_word(body, issued.code.expose()), "{body}");
    assert!(
        body.contains(&format!(">{}</p>", issued.code.expose())),
        "{body}"
    );
    assert!(
        body.contains(COMPANY_NAME) && body.contains("5 minutes"),
        "{body}"
    );
    assert_eq!(row.provider_message_id.as_deref(), email["id"].as_str());
    assert!(
        row.payload_sealed.is_some(),
        "an email's sealed message is kept while its code lives, for a resend after a transient bounce"
    );
    assert_eq!(row.error, None);
    workers.shutdown().await;
    assert_eq!(moto.emails_to(&to).await.len(), 1, "one send per delivery");
}

async fn d2_an_sms_code_reaches_sns_and_the_delivery_records_its_id(db: Db) {
    let t = TestStore::new(db).await;
    let moto = Moto::from_env();
    let sdk = moto.sdk_config().await;
    let settings = AwsSettings {
        ses: SesSettings {
            from: moto.verified_sender(&sdk).await,
            configuration_set: None,
        },
        sms: SmsSettings {
            sender_id: Some("DemoClinic".into()),
            origination_number: Some(
                gatehouse_domain::sender::SenderNumber::parse("+12025550100").unwrap(),
            ),
        },
    };
    let workers = spawn_in_process(t.store.clone(), aws_workers(&t, &sdk, settings)).unwrap();
    let phone = unique_phone();
    let issued = t
        .issue(
            "dr.house",
            Destination::Sms(PhoneE164::parse(&phone).unwrap()),
        )
        .await;
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();

    let row = t
        .wait_for_delivery(issued.delivery_id, "sent", |r| r.status == "sent")
        .await;
    let sms = moto.wait_for_sms(&phone).await;
    let text = sms["message"].as_str().unwrap();
    assert!(has_word(text, issued.code.expose()), "{text}");
    assert!(text.contains(COMPANY_NAME), "{text}");
    assert!(text.chars().count() < 160, "{text}");
    assert_eq!(
        row.provider_message_id.as_deref(),
        sms["message_id"].as_str()
    );
    assert_eq!(row.error, None);
    workers.shutdown().await;
    assert_eq!(moto.sms_to(&phone).await.len(), 1, "one send per delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d4_an_unverified_sender_fails_the_delivery_at_once_with_a_readable_reason() {
    let t = TestStore::new(Db::Sqlite).await;
    let moto = Moto::from_env();
    let sdk = moto.sdk_config().await;
    // Never created as an identity, so SES refuses it.
    let from = format!("nobody-{}@unverified.example.com", Uuid::new_v4().simple());
    let settings = AwsSettings {
        ses: SesSettings {
            from,
            configuration_set: None,
        },
        sms: SmsSettings::default(),
    };
    let workers = spawn_in_process(t.store.clone(), aws_workers(&t, &sdk, settings)).unwrap();
    let to = unique_email("admin");
    let issued = t
        .issue(
            "admin",
            Destination::Email(EmailAddress::parse(&to).unwrap()),
        )
        .await;
    workers
        .queue()
        .push_send_code(issued.job.clone())
        .await
        .unwrap();
    let row = t
        .wait_for_delivery(issued.delivery_id, "failed", |r| r.status == "failed")
        .await;
    workers.shutdown().await;
    let error = row.error.unwrap_or_default();
    assert!(
        error.starts_with("SES SendEmail: MessageRejected"),
        "{error}"
    );
    assert!(error.contains("not verified"), "{error}");
    assert!(
        !error.contains(&to) && !error.contains(issued.code.expose()),
        "{error}"
    );
    assert_eq!(row.attempts, 1, "a permanent refusal is not retried");
    assert_eq!(row.payload_sealed, None);
    assert!(moto.emails_to(&to).await.is_empty());
}

fn sms(to: &str) -> Message {
    Message {
        delivery_id: Uuid::new_v4(),
        channel: Channel::Sms,
        purpose: Purpose::SignIn,
        company: "demo-clinic".into(),
        to: to.to_owned(),
        subject: "Your Demo Family Clinic verification code".into(),
        body: SecretString::from("123456 is your Demo Family Clinic sign-in code.".to_owned()),
        html: None,
    }
}

#[tokio::test]
async fn d4_a_number_sns_refuses_is_a_permanent_error_that_masks_it() {
    let moto = Moto::from_env();
    let sns = SnsProvider::new(&moto.sdk_config().await, SmsSettings::default());
    let err = sns.send(&sms("2025550147x")).await.unwrap_err();
    assert!(err.permanent, "{err:?}");
    assert!(
        err.reason.starts_with("SNS Publish: InvalidParameter"),
        "{err:?}"
    );
    assert!(err.reason.contains("(HTTP 400)"), "{err:?}");
    assert!(!err.reason.contains("2025550147x"), "{err:?}");
}

#[tokio::test]
async fn d4_an_unreachable_provider_is_a_transient_error() {
    // Nothing listens on port 9 of the loopback: the connection is refused at once.
    let sdk = sdk_config_at("http://127.0.0.1:9").await;
    let sns = SnsProvider::new(&sdk, SmsSettings::default());
    let started = std::time::Instant::now();
    let err = sns.send(&sms(&unique_phone())).await.unwrap_err();
    assert!(!err.permanent, "{err:?}");
    assert!(
        err.reason
            .starts_with("SNS Publish: could not reach the service"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < aws::OPERATION_TIMEOUT,
        "bounded by the timeouts"
    );
}
