//! `POST /v1/webhooks/aws/sns` end to end (D3, D4, D6): signed SNS messages are
//! accepted once, their processing is queued, and its effects (a suppression, an
//! opt-out, a delivery's status) follow; anything not signed by an allow-listed
//! certificate is refused with 403 and changes nothing.

use crate::helpers::{Db, Options, TestApp, ok_json, problem};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::future::BoxFuture;
use gatehouse_api::sns::{
    CertFetcher, CertUrlPolicy, CertUrlPrefix, FetchError, SignatureVersion, SnsMessage, TopicArn,
    TopicPolicy, Verifier,
};
use gatehouse_domain::ids::{EmailAddress, PhoneE164};
use gatehouse_domain::sender::{SenderNumber, SmsNumbers};
use gatehouse_testkit::on_both_databases;
use reqwest::StatusCode;
use rsa::pkcs1v15::SigningKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use x509_cert::builder::{Builder as _, CertificateBuilder, Profile};
use x509_cert::der::EncodePem as _;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

on_both_databases!(
    d4_signed_bounce_and_complaint_suppress_and_later_sends_are_refused,
    d3_inbound_stop_and_start_change_the_opt_out_once_per_message,
    d6_unsigned_forged_or_foreign_messages_are_refused_and_change_nothing,
    d6_a_subscription_is_confirmed_only_at_an_allowed_url,
    d6_messages_of_other_topics_are_refused_unrecorded_and_never_confirmed,
    d6_with_no_topics_configured_the_webhook_accepts_nothing,
    d3_an_inbound_stop_to_a_number_that_is_not_ours_changes_nothing,
    d6_cert_urls_not_named_like_aws_are_never_fetched,
    d6_a_failing_certificate_fetch_is_not_repeated_for_every_message,
    d3_an_inbound_stop_to_our_short_code_opts_out,
);

const CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7e57c0de7e57c0de.pem";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:gatehouse-events";

struct Keys {
    signer: RsaPrivateKey,
    forger: RsaPrivateKey,
    cert_pem: String,
}

/// A signing key and its self-signed certificate, made once per test binary.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        let signer = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let forger = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let validity = Validity {
            not_before: Time::try_from(now - day).unwrap(),
            not_after: Time::try_from(now + 30 * day).unwrap(),
        };
        let spki = SubjectPublicKeyInfoOwned::from_key(signer.to_public_key()).unwrap();
        let cert = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::from(9u32),
            validity,
            Name::from_str("CN=sns.us-east-1.amazonaws.com").unwrap(),
            spki,
            &SigningKey::<Sha256>::new(signer.clone()),
        )
        .unwrap()
        .build::<rsa::pkcs1v15::Signature>()
        .unwrap();
        Keys {
            cert_pem: cert.to_pem(LineEnding::LF).unwrap(),
            signer,
            forger,
        }
    })
}

/// Serves the test certificate for the allow-listed URL (the real prefix check runs
/// first, so only allowed URLs get here) and counts fetches.
#[derive(Default)]
struct StaticCert {
    fetches: AtomicUsize,
}

impl CertFetcher for StaticCert {
    fn fetch<'a>(&'a self, url: &'a url::Url) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let body = (url.as_str() == CERT_URL).then(|| keys().cert_pem.clone().into_bytes());
        Box::pin(async move { body.ok_or(FetchError::Status(404)) })
    }
}

async fn spawn(db: Db) -> (TestApp, Arc<StaticCert>) {
    spawn_confirming(db, Vec::new()).await
}

async fn spawn_confirming(db: Db, subscribe: Vec<String>) -> (TestApp, Arc<StaticCert>) {
    spawn_on(db, &[TOPIC], subscribe).await
}

/// An app whose webhook believes exactly `topics` (GATEHOUSE_SNS_TOPIC_ARNS).
async fn spawn_with_topics(db: Db, topics: &[&str]) -> (TestApp, Arc<StaticCert>) {
    spawn_on(db, topics, Vec::new()).await
}

fn verifier(topics: &[&str], fetcher: Arc<StaticCert>) -> Verifier {
    let policy = CertUrlPolicy::new(vec![
        CertUrlPrefix::default_for_region("us-east-1").unwrap(),
    ]);
    let topics = TopicPolicy::new(topics.iter().map(|t| TopicArn::parse(t).unwrap()).collect());
    Verifier::new(policy, topics, fetcher)
}

async fn spawn_on(db: Db, topics: &[&str], subscribe: Vec<String>) -> (TestApp, Arc<StaticCert>) {
    let fetcher = Arc::new(StaticCert::default());
    let app = TestApp::spawn_with(
        db,
        Options {
            sns: Some(verifier(topics, fetcher.clone())),
            subscribe_url_prefixes: subscribe,
            ..Options::default()
        },
    )
    .await;
    (app, fetcher)
}

/// A Notification carrying `message`, signed (v1 or v2) by `key`.
fn notification(
    id: &str,
    message: &Value,
    version: SignatureVersion,
    key: &RsaPrivateKey,
) -> Value {
    let mut m = json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": TOPIC,
        "Message": message.to_string(),
        "Timestamp": "2026-11-24T09:00:00.000Z",
        "SignatureVersion": match version { SignatureVersion::V1 => "1", SignatureVersion::V2 => "2" },
        "Signature": "cGxhY2Vob2xkZXI=",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    });
    let text = SnsMessage::parse(m.to_string().as_bytes())
        .unwrap()
        .string_to_sign();
    let sig = match version {
        SignatureVersion::V1 => key.sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(&text)),
        SignatureVersion::V2 => key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&text)),
    };
    m["Signature"] = json!(BASE64.encode(sig.unwrap()));
    m
}

async fn post(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/webhooks/aws/sns"))
        .header("content-type", "text/plain; charset=UTF-8")
        .header(
            "x-amz-sns-message-type",
            body["Type"].as_str().unwrap_or(""),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Waits (at most 10 s) until `check` holds: the effect follows the answer.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the recorded message was processed.
async fn processed(app: &TestApp, id: &str) -> bool {
    use sea_orm::ConnectionTrait;
    app.raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            format!("SELECT outcome FROM inbound_events WHERE message_id = '{id}' AND processed_at IS NOT NULL"),
        ))
        .await
        .unwrap()
        .is_some()
}

fn bounce(kind: &str, to: &str) -> Value {
    json!({"notificationType": "Bounce",
           "bounce": {"bounceType": kind, "bounceSubType": "General",
                      "bouncedRecipients": [{"emailAddress": to}]},
           "mail": {"messageId": "0100018c-test", "destination": [to]}})
}

async fn d4_signed_bounce_and_complaint_suppress_and_later_sends_are_refused(db: Db) {
    let (app, fetcher) = spawn(db).await;
    let admin = app.mfa_practice("hook-clinic").await;
    let addr = "admin@hook-clinic.example.com";
    let email = EmailAddress::parse(addr).unwrap();

    // A transient bounce leaves the address usable.
    let r = post(
        &app,
        &notification(
            "m-1",
            &bounce("Transient", addr),
            SignatureVersion::V1,
            &keys().signer,
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("processing of the transient bounce", || async {
        processed(&app, "m-1").await
    })
    .await;
    assert!(!app.store.is_email_suppressed(&email).await.unwrap());
    // A permanent bounce (v2 signature) suppresses it.
    let msg = notification(
        "m-2",
        &bounce("Permanent", addr),
        SignatureVersion::V2,
        &keys().signer,
    );
    assert_eq!(post(&app, &msg).await.status(), StatusCode::OK);
    eventually("the suppression", || async {
        app.store.is_email_suppressed(&email).await.unwrap()
    })
    .await;
    let s = app.store.email_suppression(&email).await.unwrap().unwrap();
    assert_eq!(s.reason, "bounce");
    // The same MessageId again changes nothing, even after support lifted it.
    assert!(app.store.lift_email_suppression(&email).await.unwrap());
    assert_eq!(post(&app, &msg).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!app.store.is_email_suppressed(&email).await.unwrap());

    // A complaint suppresses too; then the admin's next sign-in gets no code.
    let complaint = json!({"notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": addr}]},
        "mail": {"messageId": "0100018c-other"}});
    let r = post(
        &app,
        &notification("m-3", &complaint, SignatureVersion::V2, &keys().signer),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the complaint's suppression", || async {
        app.store.is_email_suppressed(&email).await.unwrap()
    })
    .await;
    let flow = ok_json(
        app.login(
            "hook-clinic",
            "hook-clinic-admin",
            crate::helpers::NEW_PASSWORD,
        )
        .await,
    )
    .await;
    assert_eq!(
        flow["mfa"]["code_error"]["code"], "email_suppressed",
        "{flow}"
    );
    assert_eq!(
        fetcher.fetches.load(Ordering::SeqCst),
        1,
        "the certificate is cached"
    );

    // Provider events move a sent delivery on: delivered, then (for another) bounced. The
    // codes used above are `delivered` already (their use proves it), so two more are
    // sent and left unused.
    assert!(app.store.lift_email_suppression(&email).await.unwrap());
    for _ in 0..2 {
        let flow = ok_json(
            app.login(
                "hook-clinic",
                "hook-clinic-admin",
                crate::helpers::NEW_PASSWORD,
            )
            .await,
        )
        .await;
        assert_eq!(flow["mfa"]["code_sent"]["channel"], "email", "{flow}");
    }
    eventually("two codes sent", || async {
        sent_ids(&app).await.len() >= 2
    })
    .await;
    let ids = sent_ids(&app).await;
    let delivered = json!({"eventType": "Delivery", "mail": {"messageId": ids[0]},
                           "delivery": {"recipients": [addr]}});
    post(
        &app,
        &notification("m-4", &delivered, SignatureVersion::V2, &keys().signer),
    )
    .await;
    let mut hard = bounce("Permanent", addr);
    hard["mail"]["messageId"] = json!(ids[1]);
    post(
        &app,
        &notification("m-5", &hard, SignatureVersion::V2, &keys().signer),
    )
    .await;
    eventually("the delivery statuses", || async {
        status_of(&app, &ids[0]).await == "delivered" && status_of(&app, &ids[1]).await == "bounced"
    })
    .await;
    let _ = admin;
}

/// Provider message ids of the sent deliveries, oldest first.
async fn sent_ids(app: &TestApp) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    app.raw
        .query_all_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT provider_message_id AS p FROM deliveries WHERE status = 'sent' ORDER BY created_at",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.try_get::<String>("", "p").unwrap())
        .collect()
}

async fn status_of(app: &TestApp, provider_id: &str) -> String {
    use sea_orm::ConnectionTrait;
    app.raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            format!("SELECT status FROM deliveries WHERE provider_message_id = '{provider_id}'"),
        ))
        .await
        .unwrap()
        .map(|r| r.try_get::<String>("", "status").unwrap())
        .unwrap_or_default()
}

async fn d3_inbound_stop_and_start_change_the_opt_out_once_per_message(db: Db) {
    let (app, _) = spawn(db).await;
    let phone = PhoneE164::parse("+12025550147").unwrap();
    let sms = |body: &str| {
        json!({"originationNumber": "+12025550147", "destinationNumber": "+18005550100",
               "messageKeyword": "KEYWORD_123", "messageBody": body,
               "inboundMessageId": "in-1"})
    };
    let r = post(
        &app,
        &notification("s-1", &sms(" Stop "), SignatureVersion::V2, &keys().signer),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the opt-out", || async {
        app.store.is_phone_opted_out(&phone).await.unwrap()
    })
    .await;
    let r = post(
        &app,
        &notification("s-2", &sms("start"), SignatureVersion::V1, &keys().signer),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the opt-in", || async {
        !app.store.is_phone_opted_out(&phone).await.unwrap()
    })
    .await;
    // A replay of the STOP (same MessageId) has no second effect.
    let r = post(
        &app,
        &notification("s-1", &sms(" Stop "), SignatureVersion::V2, &keys().signer),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!app.store.is_phone_opted_out(&phone).await.unwrap());
    // A text that is no keyword, and a shape nobody knows, answer 200 and change nothing.
    for (id, m) in [
        ("s-3", sms("stop please")),
        ("s-4", json!({"hello": "world"})),
    ] {
        let r = post(
            &app,
            &notification(id, &m, SignatureVersion::V2, &keys().signer),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!app.store.is_phone_opted_out(&phone).await.unwrap());
}

async fn d6_unsigned_forged_or_foreign_messages_are_refused_and_change_nothing(db: Db) {
    let (app, fetcher) = spawn(db).await;
    let addr = "victim@example.com";
    let email = EmailAddress::parse(addr).unwrap();
    let good = notification(
        "f-1",
        &bounce("Permanent", addr),
        SignatureVersion::V2,
        &keys().signer,
    );

    let forged = notification(
        "f-2",
        &bounce("Permanent", addr),
        SignatureVersion::V2,
        &keys().forger,
    );
    problem(
        post(&app, &forged).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let mut altered = good.clone();
    altered["Message"] = json!(bounce("Permanent", "someone.else@example.com").to_string());
    problem(
        post(&app, &altered).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let mut foreign = good.clone();
    foreign["SigningCertURL"] = json!("https://sns.us-east-1.amazonaws.com.evil.example/cert.pem");
    let before = fetcher.fetches.load(Ordering::SeqCst);
    problem(
        post(&app, &foreign).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        fetcher.fetches.load(Ordering::SeqCst),
        before,
        "never fetched"
    );
    let r = app
        .client
        .post(app.url("/v1/webhooks/aws/sns"))
        .body("not json")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "bad_request").await;

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!app.store.is_email_suppressed(&email).await.unwrap());
    // The untouched original is accepted.
    assert_eq!(post(&app, &good).await.status(), StatusCode::OK);
    eventually("the suppression", || async {
        app.store.is_email_suppressed(&email).await.unwrap()
    })
    .await;
}

/// A SubscriptionConfirmation for `subscribe_url`, signed (v2).
fn confirmation(id: &str, subscribe_url: &str) -> Value {
    let mut m = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": id,
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a",
        "TopicArn": TOPIC,
        "Message": format!("You have chosen to subscribe to the topic {TOPIC}. To confirm, visit the SubscribeURL."),
        "SubscribeURL": subscribe_url,
        "Timestamp": "2026-11-24T09:00:00.000Z",
        "SignatureVersion": "2",
        "Signature": "cGxhY2Vob2xkZXI=",
        "SigningCertURL": CERT_URL,
    });
    let text = SnsMessage::parse(m.to_string().as_bytes())
        .unwrap()
        .string_to_sign();
    let sig = keys()
        .signer
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&text))
        .unwrap();
    m["Signature"] = json!(BASE64.encode(sig));
    m
}

/// Counts GET requests by path on 127.0.0.1 (stands in for SNS's ConfirmSubscription).
async fn visit_counter() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.lock().unwrap().push(path);
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (base, seen)
}

async fn d6_a_subscription_is_confirmed_only_at_an_allowed_url(db: Db) {
    let (base, seen) = visit_counter().await;
    let (app, _) = spawn_confirming(db, vec![format!("{base}/confirm/")]).await;
    let outside = format!("{base}/elsewhere/?Action=ConfirmSubscription&Token=t1");
    let r = post(&app, &confirmation("c-1", &outside)).await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("processing of the foreign confirmation", || async {
        processed(&app, "c-1").await
    })
    .await;
    let allowed = format!("{base}/confirm/?Action=ConfirmSubscription&Token=t2");
    let r = post(&app, &confirmation("c-2", &allowed)).await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the confirmation visit", || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    // A replay does not confirm twice; the foreign URL was never visited.
    assert_eq!(
        post(&app, &confirmation("c-2", &allowed)).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let visits = seen.lock().unwrap().clone();
    assert_eq!(
        visits,
        ["/confirm/?Action=ConfirmSubscription&Token=t2"],
        "{visits:?}"
    );
}

/// A2: the job that processes a message continues the webhook request's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_an_inbound_stop_is_processed_in_the_trace_of_its_webhook_request() {
    let fetcher = Arc::new(StaticCert::default());
    let app = TestApp::spawn_with(
        Db::Sqlite,
        Options {
            sns: Some(verifier(&[TOPIC], fetcher)),
            traced: true,
            ..Options::default()
        },
    )
    .await;
    let tel = crate::helpers::telemetry(true);
    let stop = json!({"originationNumber": "+12025550147", "destinationNumber": "+18005550100",
        "messageKeyword": "KEYWORD_123", "messageBody": "STOP", "inboundMessageId": "in-9"});
    let r = post(
        &app,
        &notification("t-1", &stop, SignatureVersion::V2, &keys().signer),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the processing", || async { processed(&app, "t-1").await }).await;
    let start = std::time::Instant::now();
    let spans = loop {
        let spans = tel.spans.get_finished_spans().unwrap();
        // The request's span may end just after its answer reached the client.
        let ended = |name: &str| spans.iter().any(|s| s.name == name);
        if ended("process_inbound process") && ended("POST /v1/webhooks/aws/sns") {
            break spans;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no job or request span"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let request = spans
        .iter()
        .find(|s| s.name == "POST /v1/webhooks/aws/sns")
        .expect("request span");
    let enqueue = spans
        .iter()
        .find(|s| {
            s.name == "job.enqueue" && s.span_context.trace_id() == request.span_context.trace_id()
        })
        .expect("enqueue span in the request's trace");
    let job = spans
        .iter()
        .find(|s| s.name == "process_inbound process")
        .unwrap();
    assert_eq!(job.span_context.trace_id(), request.span_context.trace_id());
    assert_eq!(job.parent_span_id, enqueue.span_context.span_id());
}

/// Another AWS account's topic: SNS signs its messages for real.
const FOREIGN_TOPIC: &str = "arn:aws:sns:us-east-1:999999999999:attacker-topic";

/// Re-signs `m` (v2) after a change to a signed field.
fn resign(mut m: Value) -> Value {
    let text = SnsMessage::parse(m.to_string().as_bytes())
        .unwrap()
        .string_to_sign();
    let sig = keys()
        .signer
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&text))
        .unwrap();
    m["Signature"] = json!(BASE64.encode(sig));
    m
}

/// How many messages were recorded.
async fn recorded(app: &TestApp) -> i64 {
    use sea_orm::ConnectionTrait;
    app.raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            "SELECT COUNT(*) AS n FROM inbound_events",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

async fn d6_messages_of_other_topics_are_refused_unrecorded_and_never_confirmed(db: Db) {
    let (base, seen) = visit_counter().await;
    let (app, _) = spawn_confirming(db, vec![format!("{base}/confirm/")]).await;
    let addr = "victim@example.com";
    let email = EmailAddress::parse(addr).unwrap();
    let phone = PhoneE164::parse("+12025550147").unwrap();

    // Correctly signed by SNS, but of a topic someone else owns.
    let mut bounce_msg = notification(
        "x-1",
        &bounce("Permanent", addr),
        SignatureVersion::V2,
        &keys().signer,
    );
    bounce_msg["TopicArn"] = json!(FOREIGN_TOPIC);
    let stop = json!({"originationNumber": "+12025550147", "destinationNumber": "+18005550100",
                      "messageBody": "STOP", "inboundMessageId": "in-x"});
    let mut stop_msg = notification("x-2", &stop, SignatureVersion::V2, &keys().signer);
    stop_msg["TopicArn"] = json!(FOREIGN_TOPIC);
    let mut subscribe = confirmation(
        "x-3",
        &format!("{base}/confirm/?Action=ConfirmSubscription&Token=foreign"),
    );
    subscribe["TopicArn"] = json!(FOREIGN_TOPIC);
    for m in [bounce_msg, stop_msg, subscribe] {
        let m = resign(m);
        problem(post(&app, &m).await, StatusCode::FORBIDDEN, "forbidden").await;
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recorded(&app).await, 0, "nothing is recorded");
    assert!(!app.store.is_email_suppressed(&email).await.unwrap());
    assert!(!app.store.is_phone_opted_out(&phone).await.unwrap());
    assert!(seen.lock().unwrap().is_empty(), "never confirmed");

    // The deployment's own topic still works.
    let ours = confirmation(
        "x-4",
        &format!("{base}/confirm/?Action=ConfirmSubscription&Token=ours"),
    );
    assert_eq!(post(&app, &ours).await.status(), StatusCode::OK);
    eventually("the confirmation of our own topic", || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(recorded(&app).await, 1);
}

async fn d6_with_no_topics_configured_the_webhook_accepts_nothing(db: Db) {
    let (app, fetcher) = spawn_with_topics(db, &[]).await;
    let addr = "victim@example.com";
    let email = EmailAddress::parse(addr).unwrap();
    let m = notification(
        "n-1",
        &bounce("Permanent", addr),
        SignatureVersion::V2,
        &keys().signer,
    );
    problem(post(&app, &m).await, StatusCode::FORBIDDEN, "forbidden").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recorded(&app).await, 0);
    assert!(!app.store.is_email_suppressed(&email).await.unwrap());
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 0, "nothing fetched");
}

async fn d3_an_inbound_stop_to_a_number_that_is_not_ours_changes_nothing(db: Db) {
    let (app, _) = spawn(db).await;
    let phone = PhoneE164::parse("+12025550147").unwrap();
    let sms = |to: &str, body: &str| {
        json!({"originationNumber": "+12025550147", "destinationNumber": to,
               "messageBody": body, "inboundMessageId": "in-1"})
    };
    // Someone else's number (their own toll-free number, in their own account), and no
    // destination at all.
    let mut no_destination = sms("", "STOP");
    no_destination
        .as_object_mut()
        .unwrap()
        .remove("destinationNumber");
    for (id, m) in [
        ("o-1", sms("+18885550123", "STOP")),
        ("o-2", no_destination),
    ] {
        let r = post(
            &app,
            &notification(id, &m, SignatureVersion::V2, &keys().signer),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        eventually("the processing", || async { processed(&app, id).await }).await;
    }
    assert!(!app.store.is_phone_opted_out(&phone).await.unwrap());
    // Sent to our opt-in number, it counts.
    let r = post(
        &app,
        &notification(
            "o-3",
            &sms(crate::helpers::OPT_IN_NUMBER, "STOP"),
            SignatureVersion::V2,
            &keys().signer,
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the opt-out", || async {
        app.store.is_phone_opted_out(&phone).await.unwrap()
    })
    .await;
}

async fn d6_cert_urls_not_named_like_aws_are_never_fetched(db: Db) {
    let (app, fetcher) = spawn(db).await;
    let addr = "victim@example.com";
    let email = EmailAddress::parse(addr).unwrap();
    for url in [
        "https://sns.us-east-1.amazonaws.com/evil.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-xyz.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem/x",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem?x=1",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.crt",
    ] {
        let mut m = notification(
            "u-1",
            &bounce("Permanent", addr),
            SignatureVersion::V2,
            &keys().signer,
        );
        m["SigningCertURL"] = json!(url);
        problem(post(&app, &m).await, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 0, "never fetched");
    assert_eq!(recorded(&app).await, 0);
    assert!(!app.store.is_email_suppressed(&email).await.unwrap());
}

async fn d6_a_failing_certificate_fetch_is_not_repeated_for_every_message(db: Db) {
    let (app, fetcher) = spawn(db).await;
    let missing = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0bad0bad.pem";
    for i in 0..5 {
        let mut m = notification(
            &format!("g-{i}"),
            &bounce("Permanent", "victim@example.com"),
            SignatureVersion::V2,
            &keys().signer,
        );
        m["SigningCertURL"] = json!(missing);
        problem(post(&app, &m).await, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert_eq!(
        fetcher.fetches.load(Ordering::SeqCst),
        1,
        "the failure is remembered for a while"
    );
    assert_eq!(recorded(&app).await, 0);
}

async fn d3_an_inbound_stop_to_our_short_code_opts_out(db: Db) {
    // The seeds' practices: codes come from, and users text START to, the short code 501-20.
    let fetcher = Arc::new(StaticCert::default());
    let app = TestApp::spawn_with(
        db,
        Options {
            sns: Some(verifier(&[TOPIC], fetcher)),
            sms_numbers: Some(SmsNumbers {
                origination: Some(SenderNumber::parse("501-20").unwrap()),
                opt_in: None,
            }),
            ..Options::default()
        },
    )
    .await;
    let phone = PhoneE164::parse("+12025550147").unwrap();
    let stop = |to: &str| {
        json!({"originationNumber": "+12025550147", "destinationNumber": to,
               "messageBody": "STOP", "inboundMessageId": "in-s"})
    };
    // Another short code, and the number the default test app would own: not ours here.
    for (id, to) in [("k-1", "50121"), ("k-2", crate::helpers::OPT_IN_NUMBER)] {
        let r = post(
            &app,
            &notification(id, &stop(to), SignatureVersion::V2, &keys().signer),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        eventually("the processing", || async { processed(&app, id).await }).await;
    }
    assert!(!app.store.is_phone_opted_out(&phone).await.unwrap());
    // AWS writes the short code as digits.
    let r = post(
        &app,
        &notification("k-3", &stop("50120"), SignatureVersion::V2, &keys().signer),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually("the opt-out", || async {
        app.store.is_phone_opted_out(&phone).await.unwrap()
    })
    .await;
}
