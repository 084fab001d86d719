//! Production layout: `gatehouse serve --no-workers` and `gatehouse worker` as separate
//! processes on PostgreSQL and Redis, delivering through the real AWS SDK to the
//! emulator (moto) that the test command starts.

use crate::cli::{Server, free_port, gatehouse, post};
use aws_sdk_sesv2::config::Credentials;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) const REGION: &str = "us-east-1";
const ADMIN_EMAIL: &str = "admin@demo-clinic.example.com";
pub(crate) const NURSE_PHONE: &str = "+12025550147";

fn moto_url() -> String {
    std::env::var("GATEHOUSE_TEST_MOTO_URL")
        .expect("GATEHOUSE_TEST_MOTO_URL is not set: run ./scripts/test, which starts moto server")
        .trim_end_matches('/')
        .to_owned()
}

/// Everything moto recorded.
async fn moto_data(client: &reqwest::Client) -> Value {
    client
        .get(format!("{}/moto-api/data.json", moto_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Emails SES took for `to` (text of each), oldest first.
async fn emails_to(client: &reqwest::Client, to: &str) -> Vec<String> {
    let data = moto_data(client).await;
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == to))
        })
        .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// SMS SNS took for `phone` (text of each), oldest first.
pub(crate) async fn sms_to(client: &reqwest::Client, phone: &str) -> Vec<String> {
    let data = moto_data(client).await;
    data["sns"]["SMS"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["phone_number"] == phone)
        .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits (at most 20 s) for a message past the first `seen`; answers the code in it.
/// The emulator's mailbox is shared: a test reading the demo practice's addresses this
/// way belongs to the `demo-mailbox` group of `.config/nextest.toml`, which runs one at
/// a time.
pub(crate) async fn next_code<F, Fut>(what: &str, seen: usize, read: F) -> String
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let start = Instant::now();
    loop {
        if let Some(text) = read().await.into_iter().nth(seen) {
            return crate::helpers::code_in(&text);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no new {what} at the emulator within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sender SES will accept (identities are per emulator and region).
pub(crate) async fn verified_sender() -> String {
    let sdk = gatehouse_workers::aws::config_loader()
        .endpoint_url(moto_url())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await;
    let from = format!(
        "no-reply-{}@gatehouse-test.example.com",
        uuid::Uuid::new_v4().simple()
    );
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("CreateEmailIdentity at moto");
    from
}

/// The configuration both processes share: one database, one Redis (under a prefix of
/// this test's own), one key, AWS at the emulator.
pub(crate) fn configured(dir: &Path, db_url: &str, prefix: &str, key: &str, from: &str) -> Command {
    configured_at(dir, db_url, prefix, key, from, &moto_url())
}

/// [`configured`] with AWS at `aws` (moto, or the fake provider).
fn configured_at(
    dir: &Path,
    db_url: &str,
    prefix: &str,
    key: &str,
    from: &str,
    aws: &str,
) -> Command {
    let mut c = gatehouse(dir);
    c.env("GATEHOUSE_DATABASE_URL", db_url)
        .env("GATEHOUSE_SECRET_KEY", key)
        .env("GATEHOUSE_REDIS_URL", "redis://127.0.0.1:6379")
        .env("GATEHOUSE_REDIS_PREFIX", prefix)
        .env("GATEHOUSE_DELIVERY", "aws")
        .env("GATEHOUSE_SES_FROM", from)
        .env("GATEHOUSE_SMS_ORIGINATION_NUMBER", "+12025550100")
        .env("AWS_ENDPOINT_URL", aws)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RUST_LOG", "info");
    c
}

pub(crate) fn random_key() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Signs in and answers the flow, which must be waiting for a code.
async fn login_expecting_code(client: &reqwest::Client, base: &str, user: &str, pw: &str) -> Value {
    let r = client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"company": "demo-clinic", "username": user, "password": pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let flow: Value = r.json().await.unwrap();
    assert_eq!(flow["status"], "mfa_required", "{flow}");
    assert!(flow["mfa"]["code_sent"]["to"].is_string(), "{flow}");
    assert!(flow["mfa"]["code_error"].is_null(), "{flow}");
    flow
}

async fn verify(client: &reqwest::Client, base: &str, flow: &Value, code: &str) -> Value {
    let id = flow["flow_id"].as_str().unwrap();
    post(
        client,
        format!("{base}/v1/auth/flows/{id}/verify"),
        json!({"method": "code", "code": code}),
    )
    .await
}

/// A new deployment starts several API tasks at once on an empty database: their
/// migrations take turns instead of colliding (each would otherwise try to create the
/// same tables), and every one of them starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn o2_processes_migrating_one_new_database_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = gatehouse_testkit::fresh_postgres_schema().await;
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut c = gatehouse(dir.path());
            c.env("GATEHOUSE_DATABASE_URL", &db_url)
                .env("GATEHOUSE_SECRET_KEY", random_key())
                .arg("migrate")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `openssl` with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private `redis-server` that speaks only TLS and requires `token`, as ElastiCache
/// with TLS in transit and an AUTH token does; its certificate is for `localhost`, signed
/// by a CA written to `dir/ca.pem`. Killed when dropped.
struct TlsRedis {
    port: u16,
    child: std::process::Child,
}

impl TlsRedis {
    fn start(dir: &Path, token: &str) -> TlsRedis {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=Test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "redis.key",
                "-out",
                "redis.csr",
            ],
        );
        std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "redis.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "san.ext",
                "-out",
                "redis.pem",
            ],
        );
        let port = free_port();
        let child = Command::new("redis-server")
            .current_dir(dir)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-cert-file",
                "redis.pem",
                "--tls-key-file",
                "redis.key",
                "--tls-ca-cert-file",
                "ca.pem",
                "--tls-auth-clients",
                "no",
                "--requirepass",
                token,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (the test command installs it)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsRedis { port, child }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Production's cache speaks TLS with an AUTH token (`rediss://`, infra/): the API and
/// the worker queue, count and cache through it, trusting its CA from the system's roots
/// (here SSL_CERT_FILE), and a code goes out. A plain-text Redis port is not even open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_serve_and_worker_use_a_redis_that_speaks_only_tls_with_an_auth_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("tok{}", uuid::Uuid::new_v4().simple());
    let redis = TlsRedis::start(dir.path(), &token);
    let url = format!("rediss://:{token}@localhost:{}/", redis.port);
    let db_url = gatehouse_testkit::fresh_postgres_schema().await;
    let prefix = format!("gh-tls-{}", uuid::Uuid::new_v4().simple());
    let (key, from) = (random_key(), verified_sender().await);
    let client = reqwest::Client::new();
    let with_tls = |c: &mut Command| {
        c.env("GATEHOUSE_REDIS_URL", &url)
            .env("SSL_CERT_FILE", dir.path().join("ca.pem"));
    };

    let port = free_port();
    let mut api = configured(dir.path(), &db_url, &prefix, &key, &from);
    with_tls(&mut api);
    api.env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
        .args(["serve", "--no-workers", "--demo"]);
    let mut api = Server::spawn(api, port);
    api.wait_ready(&client).await;
    let mut worker = {
        let mut c = configured(dir.path(), &db_url, &prefix, &key, &from);
        with_tls(&mut c);
        c.args(["worker", "--no-migrate"]);
        Server::spawn(c, 0)
    };
    worker
        .wait_log("gatehouse worker is ready", Duration::from_secs(20))
        .await;
    let seen = emails_to(&client, ADMIN_EMAIL).await.len();
    let admin = login_expecting_code(&client, &api.base, "admin", "Harbor-Lights-2026!").await;
    let code = next_code("email", seen, || emails_to(&client, ADMIN_EMAIL)).await;
    let done = verify(&client, &api.base, &admin, &code).await;
    assert_eq!(done["status"], "authenticated", "{done}");
    // The job went through this Redis, and the token is in no log line.
    for log in [api.stderr(), worker.stderr()] {
        assert!(!log.contains(&token), "{log}");
        assert!(!log.to_lowercase().contains("redis error"), "{log}");
    }
    assert!(
        worker.terminate(Duration::from_secs(15)),
        "{}",
        worker.stderr()
    );
    assert!(api.terminate(Duration::from_secs(15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_serve_without_workers_and_a_worker_process_deliver_codes_through_redis_to_ses_and_sns()
{
    let dir = tempfile::tempdir().unwrap();
    let db_url = gatehouse_testkit::fresh_postgres_schema().await;
    let prefix = format!("gh-test-{}", uuid::Uuid::new_v4().simple());
    let (key, from) = (random_key(), verified_sender().await);
    let client = reqwest::Client::new();

    // The API alone: it seeds the demo practice and queues codes in Redis.
    let port = free_port();
    let mut api = configured(dir.path(), &db_url, &prefix, &key, &from);
    api.env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
        .args(["serve", "--no-workers", "--demo"]);
    let mut api = Server::spawn(api, port);
    api.wait_ready(&client).await;
    let base = api.base.clone();

    // Codes issued while no worker runs wait in Redis.
    let seen_email = emails_to(&client, ADMIN_EMAIL).await.len();
    let admin = login_expecting_code(&client, &base, "admin", "Harbor-Lights-2026!").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        emails_to(&client, ADMIN_EMAIL).await.len(),
        seen_email,
        "nothing is sent while no worker runs"
    );

    // A worker process takes the job from Redis and sends through SES.
    let mut worker = Server::spawn(
        {
            let mut c = configured(dir.path(), &db_url, &prefix, &key, &from);
            c.args(["worker", "--no-migrate"]);
            c
        },
        0,
    );
    worker
        .wait_log("gatehouse worker is ready", Duration::from_secs(20))
        .await;
    let code = next_code("email", seen_email, || emails_to(&client, ADMIN_EMAIL)).await;
    let done = verify(&client, &base, &admin, &code).await;
    assert_eq!(done["status"], "authenticated", "{done}");

    // With the worker running, an SMS code goes through SNS at once.
    let seen_sms = sms_to(&client, NURSE_PHONE).await.len();
    let nurse = login_expecting_code(&client, &base, "nurse.joy", "Quiet-Meadow-2026!").await;
    let code = next_code("SMS", seen_sms, || sms_to(&client, NURSE_PHONE)).await;
    let done = verify(&client, &base, &nurse, &code).await;
    assert_eq!(done["status"], "authenticated", "{done}");
    let texts = sms_to(&client, NURSE_PHONE).await;
    assert!(
        texts[seen_sms].contains("Demo Family Clinic"),
        "{}",
        texts[seen_sms]
    );

    // The API process never sent anything itself.
    let api_log = api.stderr();
    assert!(!api_log.contains("code sent"), "{api_log}");
    assert!(worker.stderr().contains("code sent"));

    // Both stop cleanly on SIGTERM, as containers are stopped.
    assert!(
        worker.terminate(Duration::from_secs(15)),
        "worker did not stop cleanly; stderr:\n{}",
        worker.stderr()
    );
    assert!(
        api.terminate(Duration::from_secs(15)),
        "serve did not stop cleanly"
    );
}

#[test]
fn d1_worker_without_redis_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = gatehouse(dir.path());
    c.args(["worker"]).env(
        "GATEHOUSE_DATABASE_URL",
        format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display()),
    );
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GATEHOUSE_REDIS_URL"), "{err}");

    let mut c = gatehouse(dir.path());
    c.args(["worker"])
        .env("GATEHOUSE_REDIS_URL", "http://127.0.0.1:6379");
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GATEHOUSE_REDIS_URL: expected redis://"),
        "{err}"
    );
}

/// A worker killed in the middle of a send: the provider never answered it. Another worker
/// sends the code once the killed one's claim runs out (60 s), and the provider sees
/// exactly one successful call for that delivery: neither Redis' own re-delivery of the
/// orphaned job nor the re-enqueue sends it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_a_worker_killed_mid_send_is_replaced_and_the_provider_gets_exactly_one_success() {
    use gatehouse_fake_aws::{FakeAws, Rule};
    let dir = tempfile::tempdir().unwrap();
    let db_url = gatehouse_testkit::fresh_postgres_schema().await;
    let prefix = format!("gh-test-{}", uuid::Uuid::new_v4().simple());
    let key = random_key();
    let fake = FakeAws::start().unwrap();
    let from = "no-reply@gatehouse-test.example.com";
    let client = reqwest::Client::new();
    let process = |args: &[&str]| {
        let mut c = configured_at(dir.path(), &db_url, &prefix, &key, from, &fake.url);
        c.env("GATEHOUSE_REQUEUE_AFTER_SECONDS", "2").args(args);
        c
    };

    let port = free_port();
    let mut api = process(&["serve", "--no-workers", "--demo"]);
    api.env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"));
    let mut api = Server::spawn(api, port);
    api.wait_ready(&client).await;
    let mut first = Server::spawn(process(&["worker", "--no-migrate"]), 0);
    first
        .wait_log("gatehouse worker is ready", Duration::from_secs(20))
        .await;

    // The provider takes the first send and never answers it.
    fake.rule(ADMIN_EMAIL, Rule::Hang, 1);
    let flow = login_expecting_code(&client, &api.base, "admin", "Harbor-Lights-2026!").await;
    let start = Instant::now();
    while fake.counts(ADMIN_EMAIL).hanging == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no send reached the provider"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    // A new worker takes over.
    let mut second = Server::spawn(process(&["worker", "--no-migrate"]), 0);
    second
        .wait_log("gatehouse worker is ready", Duration::from_secs(20))
        .await;
    let start = Instant::now();
    while fake.counts(ADMIN_EMAIL).accepted == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(100),
            "the code was not sent after the worker was killed; worker log:\n{}",
            second.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = fake.accepted_to(ADMIN_EMAIL);
    assert_eq!(accepted.len(), 1);
    let code = crate::helpers::code_in(&accepted[0].text);
    let done = verify(&client, &api.base, &flow, &code).await;
    assert_eq!(done["status"], "authenticated", "{done}");

    // Redis' re-delivery of the killed worker's job (after 30 s without heartbeats) and
    // further re-enqueue runs find the delivery sent: no second success.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = fake.counts(ADMIN_EMAIL);
    assert_eq!(counts.accepted, 1, "{counts:?}");
    assert_eq!(
        counts.calls, 2,
        "the call never answered, then one success: {counts:?}"
    );
    assert!(second.terminate(Duration::from_secs(15)));
    assert!(api.terminate(Duration::from_secs(15)));
}
