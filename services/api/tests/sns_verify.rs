//! D6: SNS message verification end to end, against certificates served from a tiny
//! HTTP server on 127.0.0.1 (the real `HttpCertFetcher`), with keys made here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::future::BoxFuture;
use gatehouse_api::sns::{
    CertFetcher, CertUrlError, CertUrlPolicy, CertUrlPrefix, FetchError, HttpCertFetcher,
    MessageType, SignatureVersion, SnsKind, TopicArn, TopicPolicy, Verifier, VerifyError,
};
use rsa::pkcs1v15::SigningKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use url::Url;
use x509_cert::builder::{Builder as _, CertificateBuilder, Profile};
use x509_cert::der::EncodePem as _;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:gatehouse-ses-events";
const TIMESTAMP: &str = "2012-05-02T00:54:06.655Z";

/// The deployment's topics: [`TOPIC`] alone.
fn ours() -> TopicPolicy {
    TopicPolicy::new(vec![TopicArn::parse(TOPIC).unwrap()])
}

// ---------------------------------------------------------------------------------
// Keys and certificates, made once per test binary (RSA key generation is slow in
// debug builds).

struct Keys {
    signer: RsaPrivateKey,
    /// Another key of the same size: its signatures have the right length but are forged.
    forger: RsaPrivateKey,
    cert_pem: String,
    expired_cert_pem: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        let signer = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let forger = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let now = SystemTime::now();
        let day = Duration::from_secs(24 * 60 * 60);
        let valid = Validity {
            not_before: Time::try_from(now - day).unwrap(),
            not_after: Time::try_from(now + 365 * day).unwrap(),
        };
        let expired = Validity {
            not_before: Time::try_from(now - 730 * day).unwrap(),
            not_after: Time::try_from(now - 365 * day).unwrap(),
        };
        Keys {
            cert_pem: self_signed(&signer, valid),
            expired_cert_pem: self_signed(&signer, expired),
            signer,
            forger,
        }
    })
}

fn self_signed(key: &RsaPrivateKey, validity: Validity) -> String {
    let subject = Name::from_str("CN=sns.us-east-1.amazonaws.com").unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).unwrap();
    let signer = SigningKey::<Sha256>::new(key.clone());
    let builder = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(7u32),
        validity,
        subject,
        spki,
        &signer,
    )
    .unwrap();
    let cert = builder.build::<rsa::pkcs1v15::Signature>().unwrap();
    cert.to_pem(LineEnding::LF).unwrap()
}

fn sign(key: &RsaPrivateKey, version: SignatureVersion, text: &str) -> String {
    let signature = match version {
        SignatureVersion::V1 => key.sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(text)),
        SignatureVersion::V2 => key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(text)),
    };
    BASE64.encode(signature.unwrap())
}

// ---------------------------------------------------------------------------------
// The certificate server: counts every request it reads.

enum Reply {
    Ok(String),
    Redirect(&'static str),
}

struct CertServer {
    base: String,
    requests: Arc<AtomicUsize>,
}

impl CertServer {
    async fn start(files: HashMap<&'static str, Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let files = Arc::new(files);
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let files = Arc::clone(&files);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split_whitespace().nth(1).unwrap_or("");
                    let response = match files.get(path) {
                        Some(Reply::Ok(body)) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/x-x509-ca-cert\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        Some(Reply::Redirect(to)) => format!(
                            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\
                             Connection: close\r\n\r\n"
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\
                                 Connection: close\r\n\r\n"
                            .to_owned(),
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { base, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

const GOOD: &str = "/certs/SimpleNotificationService-600d.pem";
const EXPIRED: &str = "/certs/SimpleNotificationService-0e1d.pem";
const GARBAGE: &str = "/certs/SimpleNotificationService-ba5e.pem";
const HUGE: &str = "/certs/SimpleNotificationService-b16b16.pem";
const REDIRECT: &str = "/certs/SimpleNotificationService-3d1ec7.pem";
const OUTSIDE: &str = "/other/SimpleNotificationService-600d.pem";

/// A server with every case, and a verifier trusting `<server>/certs/` only.
async fn setup() -> (CertServer, Verifier) {
    let k = keys();
    let files = HashMap::from([
        (GOOD, Reply::Ok(k.cert_pem.clone())),
        (EXPIRED, Reply::Ok(k.expired_cert_pem.clone())),
        (OUTSIDE, Reply::Ok(k.cert_pem.clone())),
        (
            GARBAGE,
            Reply::Ok("-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n".into()),
        ),
        (HUGE, Reply::Ok("A".repeat(100 * 1024))),
        (REDIRECT, Reply::Redirect(GOOD)),
    ]);
    let server = CertServer::start(files).await;
    let prefix = CertUrlPrefix::parse(&server.url("/certs/")).unwrap();
    let verifier = Verifier::with_http(CertUrlPolicy::new(vec![prefix]), ours()).unwrap();
    (server, verifier)
}

// ---------------------------------------------------------------------------------
// Messages, signed over canonical strings written out here from AWS's documentation
// (not with the module's own `string_to_sign`).

fn notification(
    cert_url: &str,
    version: SignatureVersion,
    subject: Option<&str>,
    message: &str,
) -> Value {
    let mut canonical = format!("Message\n{message}\nMessageId\nmsg-1\n");
    if let Some(subject) = subject {
        canonical.push_str(&format!("Subject\n{subject}\n"));
    }
    canonical.push_str(&format!(
        "Timestamp\n{TIMESTAMP}\nTopicArn\n{TOPIC}\nType\nNotification\n"
    ));
    let mut body = json!({
        "Type": "Notification",
        "MessageId": "msg-1",
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": TIMESTAMP,
        "SignatureVersion": version_text(version),
        "Signature": sign(&keys().signer, version, &canonical),
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
        "MessageAttributes": {"kind": {"Type": "String", "Value": "ses"}},
    });
    if let Some(subject) = subject {
        body["Subject"] = json!(subject);
    }
    body
}

fn confirmation(cert_url: &str, version: SignatureVersion, kind: &str) -> Value {
    let message = format!(
        "You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, \
         visit the SubscribeURL included in this message."
    );
    let subscribe = format!(
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=tok-1"
    );
    let canonical = format!(
        "Message\n{message}\nMessageId\nmsg-2\nSubscribeURL\n{subscribe}\n\
         Timestamp\n{TIMESTAMP}\nToken\ntok-1\nTopicArn\n{TOPIC}\nType\n{kind}\n"
    );
    json!({
        "Type": kind,
        "MessageId": "msg-2",
        "Token": "tok-1",
        "TopicArn": TOPIC,
        "Message": message,
        "SubscribeURL": subscribe,
        "Timestamp": TIMESTAMP,
        "SignatureVersion": version_text(version),
        "Signature": sign(&keys().signer, version, &canonical),
        "SigningCertURL": cert_url,
    })
}

fn version_text(version: SignatureVersion) -> &'static str {
    match version {
        SignatureVersion::V1 => "1",
        SignatureVersion::V2 => "2",
    }
}

fn bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap()
}

// ---------------------------------------------------------------------------------

#[tokio::test]
async fn d6_v1_and_v2_notifications_verify() {
    let (server, verifier) = setup().await;
    let url = server.url(GOOD);

    let v1 = notification(&url, SignatureVersion::V1, Some("Bounce"), "{\"a\":1}");
    let msg = verifier.verify(&bytes(&v1)).await.unwrap();
    assert_eq!(msg.message_type(), MessageType::Notification);
    assert_eq!(msg.signature_version, SignatureVersion::V1);
    assert_eq!(msg.message_id, "msg-1");
    assert_eq!(msg.message, "{\"a\":1}");
    assert!(
        matches!(msg.kind, SnsKind::Notification { subject: Some(ref s), .. } if s == "Bounce")
    );

    let v2 = notification(&url, SignatureVersion::V2, None, "line one\nline two");
    let msg = verifier.verify(&bytes(&v2)).await.unwrap();
    assert_eq!(msg.signature_version, SignatureVersion::V2);
    assert!(matches!(
        msg.kind,
        SnsKind::Notification { subject: None, .. }
    ));
}

#[tokio::test]
async fn d6_subscription_and_unsubscribe_confirmations_verify() {
    let (server, verifier) = setup().await;
    let url = server.url(GOOD);
    for (version, kind) in [
        (SignatureVersion::V1, "SubscriptionConfirmation"),
        (SignatureVersion::V2, "SubscriptionConfirmation"),
        (SignatureVersion::V2, "UnsubscribeConfirmation"),
    ] {
        let body = confirmation(&url, version, kind);
        let msg = verifier.verify(&bytes(&body)).await.unwrap();
        assert_eq!(msg.message_type().as_str(), kind);
        match msg.kind {
            SnsKind::SubscriptionConfirmation {
                token,
                subscribe_url,
            }
            | SnsKind::UnsubscribeConfirmation {
                token,
                subscribe_url,
            } => {
                assert_eq!(token, "tok-1");
                assert!(subscribe_url.contains("Action=ConfirmSubscription"));
            }
            SnsKind::Notification { .. } => panic!("not a confirmation"),
        }
    }
}

#[tokio::test]
async fn d6_changed_fields_are_refused() {
    let (server, _) = setup().await;
    let prefix = CertUrlPrefix::parse(&server.url("/certs/")).unwrap();
    const OTHER_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:other";
    let both = TopicPolicy::new(vec![
        TopicArn::parse(TOPIC).unwrap(),
        TopicArn::parse(OTHER_TOPIC).unwrap(),
    ]);
    let verifier = Verifier::with_http(CertUrlPolicy::new(vec![prefix]), both).unwrap();
    let url = server.url(GOOD);
    let signed = notification(&url, SignatureVersion::V2, Some("Bounce"), "original");

    let mut changed_message = signed.clone();
    changed_message["Message"] = json!("tampered");
    let mut changed_subject = signed.clone();
    changed_subject["Subject"] = json!("Complaint");
    let mut dropped_subject = signed.clone();
    dropped_subject.as_object_mut().unwrap().remove("Subject");
    // Another of our topics: the topic is believed, but it is signed too.
    let mut changed_topic = signed.clone();
    changed_topic["TopicArn"] = json!(OTHER_TOPIC);
    let mut changed_version = signed.clone();
    changed_version["SignatureVersion"] = json!("1");
    let mut confirmation_as_unsubscribe =
        confirmation(&url, SignatureVersion::V2, "SubscriptionConfirmation");
    confirmation_as_unsubscribe["Type"] = json!("UnsubscribeConfirmation");

    for body in [
        changed_message,
        changed_subject,
        dropped_subject,
        changed_topic,
        changed_version,
        confirmation_as_unsubscribe,
    ] {
        let err = verifier.verify(&bytes(&body)).await.unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{body}: {err:?}");
        assert!(!err.is_malformed());
    }
    verifier.verify(&bytes(&signed)).await.unwrap();
}

#[tokio::test]
async fn d6_forged_and_garbled_signatures_are_refused() {
    let (server, verifier) = setup().await;
    let url = server.url(GOOD);
    let genuine = notification(&url, SignatureVersion::V1, None, "hello");

    let canonical = format!(
        "Message\nhello\nMessageId\nmsg-1\nTimestamp\n{TIMESTAMP}\nTopicArn\n{TOPIC}\nType\nNotification\n"
    );
    let mut forged = genuine.clone();
    forged["Signature"] = json!(sign(&keys().forger, SignatureVersion::V1, &canonical));
    let mut not_base64 = genuine.clone();
    not_base64["Signature"] = json!("!!not base64!!");
    let mut truncated = genuine.clone();
    truncated["Signature"] = json!(BASE64.encode([1u8, 2, 3]));
    // A SHA-256 signature presented as version 1.
    let mut wrong_hash = genuine.clone();
    wrong_hash["Signature"] = json!(sign(&keys().signer, SignatureVersion::V2, &canonical));

    for body in [forged, not_base64, truncated, wrong_hash] {
        let err = verifier.verify(&bytes(&body)).await.unwrap_err();
        assert!(matches!(err, VerifyError::BadSignature), "{body}: {err:?}");
        assert_eq!(err.kind(), "bad_signature");
    }
    verifier.verify(&bytes(&genuine)).await.unwrap();
}

#[tokio::test]
async fn d6_unknown_signature_version_is_refused_without_fetching() {
    let (server, verifier) = setup().await;
    let url = server.url(GOOD);
    for version in ["3", "", "SHA256"] {
        let mut body = notification(&url, SignatureVersion::V2, None, "hello");
        body["SignatureVersion"] = json!(version);
        let err = verifier.verify(&bytes(&body)).await.unwrap_err();
        if version.is_empty() {
            assert!(err.is_malformed(), "{err:?}");
        } else {
            assert!(
                matches!(err, VerifyError::UnsupportedSignatureVersion(ref v) if v == version),
                "{err:?}"
            );
            assert!(!err.is_malformed());
        }
    }
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn d6_cert_urls_outside_the_prefixes_are_never_fetched() {
    let (server, verifier) = setup().await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let refused = [
        (server.url(OUTSIDE), CertUrlError::NotAllowed),
        (
            format!("http://localhost:{port}{GOOD}"),
            CertUrlError::NotAllowed,
        ),
        (
            server.url(GOOD).replace("http://", "https://"),
            CertUrlError::NotAllowed,
        ),
        (
            server.url("/certs/../other/SimpleNotificationService-600d.pem"),
            CertUrlError::NotAllowed,
        ),
        (
            format!("http://127.0.0.1:{port}@127.0.0.1:{port}{GOOD}"),
            CertUrlError::UserInfo,
        ),
        (
            format!("http://u:p@127.0.0.1:{port}{GOOD}"),
            CertUrlError::UserInfo,
        ),
        (
            format!("http://127.0.0.1:{port}.nip.io{GOOD}"),
            CertUrlError::Unparsable,
        ),
        ("not a url".to_owned(), CertUrlError::Unparsable),
    ];
    for (cert_url, expected) in refused {
        let body = notification(&cert_url, SignatureVersion::V2, None, "hello");
        let err = verifier.verify(&bytes(&body)).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::CertUrlRefused(ref e) if *e == expected),
            "{cert_url}: {err:?}"
        );
    }
    assert_eq!(server.requests(), 0, "a refused URL reached the server");
}

/// Records the URLs it is asked for and fetches nothing (no network at all).
#[derive(Default)]
struct RecordingFetcher {
    asked: std::sync::Mutex<Vec<String>>,
}

impl CertFetcher for RecordingFetcher {
    fn fetch<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        self.asked.lock().unwrap().push(url.to_string());
        Box::pin(async { Err(FetchError::Status(599)) })
    }
}

#[tokio::test]
async fn d6_default_prefix_refuses_host_suffix_and_userinfo_tricks() {
    let fetcher = Arc::new(RecordingFetcher::default());
    let policy = CertUrlPolicy::new(vec![
        CertUrlPrefix::default_for_region("us-east-1").unwrap(),
    ]);
    let verifier = Verifier::new(policy, ours(), fetcher.clone());
    for cert_url in [
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-x.pem",
        "https://sns.us-east-1.amazonaws.com:443@evil.example/x.pem",
        "https://evil.example/?https://sns.us-east-1.amazonaws.com/x.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem",
    ] {
        let body = notification(cert_url, SignatureVersion::V1, None, "hello");
        let err = verifier.verify(&bytes(&body)).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::CertUrlRefused(_)),
            "{cert_url}: {err:?}"
        );
    }
    assert!(fetcher.asked.lock().unwrap().is_empty());

    // The genuine regional URL is the one thing it would fetch.
    let genuine = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0a.pem";
    let body = notification(genuine, SignatureVersion::V1, None, "hello");
    let err = verifier.verify(&bytes(&body)).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::CertFetch(FetchError::Status(599))),
        "{err:?}"
    );
    assert_eq!(*fetcher.asked.lock().unwrap(), [genuine]);
}

#[tokio::test]
async fn d6_certificate_is_fetched_once_for_many_messages() {
    let (server, verifier) = setup().await;
    let url = server.url(GOOD);
    for i in 0..10 {
        let version = if i % 2 == 0 {
            SignatureVersion::V1
        } else {
            SignatureVersion::V2
        };
        let body = notification(&url, version, None, &format!("message {i}"));
        verifier.verify(&bytes(&body)).await.unwrap();
    }
    // Clones share the cache.
    let clone = verifier.clone();
    let body = confirmation(&url, SignatureVersion::V2, "SubscriptionConfirmation");
    clone.verify(&bytes(&body)).await.unwrap();
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn d6_expired_certificate_still_verifies() {
    let (server, verifier) = setup().await;
    let body = notification(
        &server.url(EXPIRED),
        SignatureVersion::V2,
        None,
        "late retry",
    );
    verifier.verify(&bytes(&body)).await.unwrap();
}

#[tokio::test]
async fn d6_fetch_failures_are_told_apart_from_bad_signatures() {
    let (server, verifier) = setup().await;

    let missing = notification(
        &server.url("/certs/SimpleNotificationService-0155.pem"),
        SignatureVersion::V2,
        None,
        "x",
    );
    let err = verifier.verify(&bytes(&missing)).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::CertFetch(FetchError::Status(404))),
        "{err:?}"
    );
    assert_eq!(err.kind(), "cert_fetch_failed");

    // Redirects are not followed: the target could be outside the prefixes.
    let redirected = notification(&server.url(REDIRECT), SignatureVersion::V2, None, "x");
    let err = verifier.verify(&bytes(&redirected)).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::CertFetch(FetchError::Status(302))),
        "{err:?}"
    );

    let huge = notification(&server.url(HUGE), SignatureVersion::V2, None, "x");
    let err = verifier.verify(&bytes(&huge)).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::CertFetch(FetchError::TooLarge)),
        "{err:?}"
    );

    let garbage = notification(&server.url(GARBAGE), SignatureVersion::V2, None, "x");
    let err = verifier.verify(&bytes(&garbage)).await.unwrap_err();
    assert!(matches!(err, VerifyError::CertInvalid(_)), "{err:?}");
    assert_eq!(err.kind(), "cert_invalid");

    // Failures are remembered for a while: the next message does not ask again.
    let err = verifier.verify(&bytes(&garbage)).await.unwrap_err();
    assert!(matches!(err, VerifyError::CertFailedRecently), "{err:?}");
    assert_eq!(err.kind(), "cert_failed_recently");
    let err = verifier.verify(&bytes(&missing)).await.unwrap_err();
    assert!(matches!(err, VerifyError::CertFailedRecently), "{err:?}");
    assert_eq!(server.requests(), 4);

    // Nothing listening at all.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!(
        "http://{}/certs/SimpleNotificationService-0a.pem",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let policy = CertUrlPolicy::new(vec![CertUrlPrefix::parse(&closed_url).unwrap()]);
    let verifier = Verifier::new(policy, ours(), Arc::new(HttpCertFetcher::new().unwrap()));
    let body = notification(&closed_url, SignatureVersion::V2, None, "x");
    let err = verifier.verify(&bytes(&body)).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::CertFetch(FetchError::Transport(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn d6_malformed_bodies_are_typed_errors_and_fetch_nothing() {
    let (server, verifier) = setup().await;
    let url = server.url(GOOD);
    let mut missing_token = confirmation(&url, SignatureVersion::V2, "SubscriptionConfirmation");
    missing_token.as_object_mut().unwrap().remove("Token");
    let mut unknown_type = notification(&url, SignatureVersion::V2, None, "x");
    unknown_type["Type"] = json!("Gossip");
    let mut numeric_message = notification(&url, SignatureVersion::V2, None, "x");
    numeric_message["Message"] = json!(12);

    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"Type=Notification".to_vec(),
        b"null".to_vec(),
        bytes(&missing_token),
        bytes(&unknown_type),
        bytes(&numeric_message),
    ];
    for body in bodies {
        let err = verifier.verify(&body).await.unwrap_err();
        assert!(
            err.is_malformed(),
            "{}: {err:?}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(err.kind(), "malformed");
    }
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn d6_messages_of_other_topics_are_refused_before_any_fetch() {
    let (server, verifier) = setup().await;
    let url = server.url(GOOD);
    // Genuinely signed by SNS (the canonical string includes the foreign topic).
    let foreign = "arn:aws:sns:us-east-1:999999999999:gatehouse-ses-events";
    let mut body = confirmation(&url, SignatureVersion::V2, "SubscriptionConfirmation");
    body["TopicArn"] = json!(foreign);
    let err = verifier.verify(&bytes(&body)).await.unwrap_err();
    assert!(
        matches!(err, VerifyError::TopicNotAllowed(ref t) if t == foreign),
        "{err:?}"
    );
    assert_eq!(err.kind(), "topic_not_allowed");
    assert!(!err.is_malformed());
    assert_eq!(server.requests(), 0, "nothing fetched for another topic");

    // No topics configured: nothing is believed, not even a perfect message.
    let prefix = CertUrlPrefix::parse(&server.url("/certs/")).unwrap();
    let none =
        Verifier::with_http(CertUrlPolicy::new(vec![prefix]), TopicPolicy::default()).unwrap();
    let good = notification(&url, SignatureVersion::V2, None, "hello");
    let err = none.verify(&bytes(&good)).await.unwrap_err();
    assert!(matches!(err, VerifyError::TopicNotAllowed(_)), "{err:?}");
    assert_eq!(server.requests(), 0);
    verifier.verify(&bytes(&good)).await.unwrap();
}

#[tokio::test]
async fn d6_cert_urls_not_named_like_aws_certificates_are_never_fetched() {
    let (server, verifier) = setup().await;
    for path in [
        "/certs/garbage.pem",
        "/certs/SimpleNotificationService-good.pem",
        "/certs/SimpleNotificationService-600d.pem?x=1",
        "/certs/SimpleNotificationService-600d.pem/",
        "/certs/upload/evil.pem",
    ] {
        let body = notification(&server.url(path), SignatureVersion::V2, None, "x");
        let err = verifier.verify(&bytes(&body)).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::CertUrlRefused(CertUrlError::NotAwsName)),
            "{path}: {err:?}"
        );
    }
    assert_eq!(server.requests(), 0);
}

/// Answers after a pause, counting how many fetches run at once.
#[derive(Default)]
struct SlowFetcher {
    running: AtomicUsize,
    most: AtomicUsize,
    total: AtomicUsize,
}

impl CertFetcher for SlowFetcher {
    fn fetch<'a>(&'a self, _url: &'a Url) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(async move {
            self.total.fetch_add(1, Ordering::SeqCst);
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(keys().cert_pem.clone().into_bytes())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d6_few_certificate_fetches_run_at_once_whatever_arrives() {
    let fetcher = Arc::new(SlowFetcher::default());
    let policy = CertUrlPolicy::new(vec![
        CertUrlPrefix::default_for_region("us-east-1").unwrap(),
    ]);
    let verifier = Verifier::new(policy, ours(), fetcher.clone());
    // 16 different certificate URLs, three messages each, all at once; twice.
    let burst = || {
        let mut tasks = Vec::new();
        for i in 0..48 {
            let verifier = verifier.clone();
            let url = format!(
                "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{:04x}.pem",
                i % 16
            );
            tasks.push(tokio::spawn(async move {
                let body = notification(&url, SignatureVersion::V2, None, "x");
                verifier.verify(&bytes(&body)).await
            }));
        }
        tasks
    };
    for t in burst() {
        t.await.unwrap().unwrap();
    }
    let most = fetcher.most.load(Ordering::SeqCst);
    assert!((1..=4).contains(&most), "{most} fetches at once");
    // A message that waited for a slot finds what the one before it fetched.
    let first = fetcher.total.load(Ordering::SeqCst);
    assert!((16..48).contains(&first), "{first} fetches");
    for t in burst() {
        t.await.unwrap().unwrap();
    }
    assert_eq!(fetcher.total.load(Ordering::SeqCst), first, "all cached");
}
