//! A real Gatehouse for a test: [`TestApp::spawn`] starts the binary's own wiring
//! (`gatehouse::wiring::build`, the one `gatehouse serve` runs) on a fresh database,
//! a random port and an outbox of its own, and answers a client with the helpers the
//! suites share (sign in, finish a second factor, read the outbox, problem+json checks).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test kit that cannot set up can only stop

use chrono::{DateTime, Utc};
use gatehouse::wiring::{Plan, Queue};
use gatehouse_domain::clock::{Clock, FixedClock, SystemClock};
use gatehouse_domain::crypto::{Keyring, SecretKey};
use gatehouse_domain::ids::CompanyId;
use gatehouse_domain::sender::{SenderNumber, SmsNumbers};
use gatehouse_store::{Store, StoreConfig};
use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;

pub use gatehouse_testkit::Db;

/// Knobs of a spawned app.
#[derive(Default)]
pub struct Options {
    pub clock: Option<Arc<FixedClock>>,
    pub login_rate_per_ip_per_minute: u32,
    /// Do not believe X-Forwarded-For from 127.0.0.1 (by default the test client is
    /// treated as a trusted proxy, so tests can pose as other client addresses).
    pub untrusted_local_proxy: bool,
    /// The SNS webhook's verifier (default: AWS's us-east-1 certificate URLs, fetched, and
    /// no topic believed, as with GATEHOUSE_SNS_TOPIC_ARNS unset).
    pub sns: Option<gatehouse_api::sns::Verifier>,
    /// The deployment's SMS numbers (default: origination [`ORIGINATION_NUMBER`], opt-in
    /// [`OPT_IN_NUMBER`]).
    pub sms_numbers: Option<SmsNumbers>,
    /// Where the workers may confirm SNS subscriptions (default: nowhere).
    pub subscribe_url_prefixes: Vec<String>,
    /// Share sign-in limits and session invalidations through the Redis on 127.0.0.1,
    /// under a fresh key prefix of this app's own (its siblings use the same one).
    pub redis: bool,
    /// Capture spans (in memory) and JSON log lines of this test process; see
    /// [`telemetry`].
    pub traced: bool,
}

/// The telemetry of a test process: metrics always (for `GET /metrics`); spans and JSON
/// log lines captured in memory when the first app of the process was spawned with
/// `traced` (nextest runs each test in a process of its own).
pub struct TestTelemetry {
    pub traced: bool,
    pub spans: opentelemetry_sdk::trace::InMemorySpanExporter,
    pub logs: Arc<std::sync::Mutex<Vec<u8>>>,
    pub prometheus: gatehouse_telemetry::PrometheusText,
    _telemetry: gatehouse_telemetry::Telemetry,
}

impl TestTelemetry {
    /// Every captured log line.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().expect("logs")).into_owned()
    }
}

/// Log lines into a shared buffer.
#[derive(Clone)]
struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static TELEMETRY: std::sync::OnceLock<TestTelemetry> = std::sync::OnceLock::new();

/// This process's test telemetry, installed by the first call.
pub fn telemetry(traced: bool) -> &'static TestTelemetry {
    TELEMETRY.get_or_init(|| {
        let spans = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let capture = Capture(logs.clone());
        let settings = gatehouse_telemetry::Settings {
            service_name: "gatehouse-test".into(),
            process: "test".into(),
            log_format: gatehouse_telemetry::LogFormat::Json,
            // Traced tests read every line, debug included; the others keep warnings,
            // which nextest shows when a test fails.
            log_filter: Some(if traced { "debug" } else { "warn" }.into()),
            log_writer: Some(if traced {
                tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || capture.clone())
            } else {
                tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr)
            }),
            otlp_from_env: false,
            span_processor: traced.then(|| {
                Box::new(opentelemetry_sdk::trace::SimpleSpanProcessor::new(
                    spans.clone(),
                )) as Box<dyn opentelemetry_sdk::trace::SpanProcessor>
            }),
        };
        let installed = gatehouse_telemetry::init(settings).expect("telemetry");
        TestTelemetry {
            traced,
            spans,
            logs,
            prometheus: installed.prometheus(),
            _telemetry: installed,
        }
    })
}

/// `GET /metrics` of a test app.
#[derive(Debug)]
struct TestMetrics(gatehouse_telemetry::PrometheusText);

impl gatehouse_api::MetricsText for TestMetrics {
    fn render(&self) -> Result<String, String> {
        self.0.render().map_err(|e| e.to_string())
    }
}

/// The Redis every test uses.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub const SUPPORT_USER: &str = "root.support";
pub const SUPPORT_PASSWORD: &str = "Operator-Root-Pass-77!";
/// The number users text START to, as configured for the spawned app.
pub const OPT_IN_NUMBER: &str = "+12025550100";
/// The number SMS come from (a toll-free number), as configured for the spawned app.
pub const ORIGINATION_NUMBER: &str = "+18005550100";
/// A password that satisfies the default policy and contains none of the test usernames.
pub const NEW_PASSWORD: &str = "Brisk-Lantern-Harvest-93!";

/// A running app and a raw connection to its database.
pub struct TestApp {
    pub base: String,
    /// The pages' origin, `http://localhost:<port>` (GATEHOUSE_PUBLIC_URL's default).
    pub public_origin: String,
    pub client: reqwest::Client,
    /// The use cases of this app, for set-up that needs no HTTP round trip.
    pub app: gatehouse_app::App,
    pub store: Store,
    /// A separate connection for checks and tampering that bypass the API.
    pub raw: DatabaseConnection,
    pub db: Db,
    pub clock: Option<Arc<FixedClock>>,
    /// Where the in-process workers write messages (the outbox provider).
    pub outbox: std::path::PathBuf,
    /// What another process of the same deployment needs: the database, the key, Redis.
    pub db_url: String,
    pub keyring: Arc<Keyring>,
    pub redis: Option<gatehouse_store::shared::RedisSettings>,
    support: tokio::sync::Mutex<Option<String>>,
    _workers: Option<gatehouse_workers::Workers>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        Self::spawn_with(db, Options::default()).await
    }

    pub async fn spawn_with(db: Db, opts: Options) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = db.fresh_url(dir.path()).await;
        let keyring = Arc::new(Keyring::new(SecretKey::generate(&mut rand::rngs::OsRng)));
        let redis = opts.redis.then(|| gatehouse_store::shared::RedisSettings {
            url: REDIS_URL.to_owned(),
            prefix: format!("gh-test-{}", uuid::Uuid::new_v4().simple()),
        });
        Self::spawn_on(db, url, keyring, redis, dir, opts).await
    }

    /// Another process of the same deployment: the same database, key and Redis (when
    /// this app uses one), its own HTTP server, caches and workers.
    pub async fn sibling(&self, opts: Options) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::spawn_on(
            self.db,
            self.db_url.clone(),
            self.keyring.clone(),
            self.redis.clone(),
            dir,
            opts,
        )
        .await
    }

    /// Another process of the same deployment after a key rotation: `keyring` (a new
    /// current key, the old ones as previous) instead of this app's.
    pub async fn sibling_with_keyring(&self, keyring: Arc<Keyring>, opts: Options) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::spawn_on(
            self.db,
            self.db_url.clone(),
            keyring,
            self.redis.clone(),
            dir,
            opts,
        )
        .await
    }

    async fn spawn_on(
        db: Db,
        url: String,
        keyring: Arc<Keyring>,
        redis: Option<gatehouse_store::shared::RedisSettings>,
        dir: tempfile::TempDir,
        opts: Options,
    ) -> TestApp {
        let outbox = dir.path().join("outbox.jsonl");
        // Before the store: the metric instruments come from the meter provider it installs.
        let telemetry = telemetry(opts.traced);
        let mut cfg = StoreConfig::new(
            url.clone(),
            CompanyId::parse("operator").expect("company"),
            keyring.clone(),
        );
        cfg.redis = redis.clone();
        cfg.login_rate_per_ip_per_minute = opts.login_rate_per_ip_per_minute;
        cfg.max_db_connections = 8;
        cfg.sms_numbers = opts.sms_numbers.clone().unwrap_or_else(|| SmsNumbers {
            origination: Some(SenderNumber::parse(ORIGINATION_NUMBER).expect("number")),
            opt_in: Some(SenderNumber::parse(OPT_IN_NUMBER).expect("number")),
        });
        let clock: Arc<dyn Clock> = match &opts.clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let sns = match opts.sns {
            Some(v) => v,
            None => gatehouse_api::sns::Verifier::with_http(
                gatehouse_api::sns::CertUrlPolicy::new(vec![
                    gatehouse_api::sns::CertUrlPrefix::default_for_region("us-east-1")
                        .expect("prefix"),
                ]),
                gatehouse_api::sns::TopicPolicy::default(),
            )
            .expect("verifier"),
        };
        // The in-process workers write to this app's outbox. The periodic re-enqueue is
        // left out of the way (an hour apart): tests here drive deliveries by hand, and
        // the workers crate tests the re-enqueue itself. Even with Redis, each app's jobs
        // stay with its own workers, so a test reads a code from the app that sent it.
        let mut workers = gatehouse_workers::WorkerConfig::outbox(outbox.clone());
        workers.requeue.every = std::time::Duration::from_secs(3600);
        workers.subscribe_url_prefixes = opts.subscribe_url_prefixes.clone();
        let plan = Plan {
            store: cfg,
            clock,
            migrate: true,
            demo: false,
            listen: "127.0.0.1:0".parse().expect("address"),
            public_url: None,
            http_workers: Some(2),
            shutdown_timeout: 1,
            trusted_proxies: if opts.untrusted_local_proxy {
                Vec::new()
            } else {
                vec!["127.0.0.1/32".parse().expect("cidr")]
            },
            sns,
            metrics: Some(Arc::new(TestMetrics(telemetry.prometheus.clone()))),
            workers: Some(workers),
            queue: Queue::InProcess,
        };
        let running = gatehouse::wiring::build(plan).await.expect("start the app");
        running
            .app
            .accounts()
            .bootstrap(
                SUPPORT_USER,
                "root@vendor.example.com",
                SecretString::from(SUPPORT_PASSWORD.to_owned()),
            )
            .await
            .expect("bootstrap");
        tokio::spawn(running.server);
        let raw = Database::connect(url.clone())
            .await
            .expect("raw connection");
        TestApp {
            base: format!("http://127.0.0.1:{}", running.addr.port()),
            public_origin: running.public_url.origin().ascii_serialization(),
            client: reqwest::Client::new(),
            app: running.app,
            store: running.store,
            raw,
            db,
            clock: opts.clock,
            outbox,
            db_url: url,
            keyring,
            redis,
            support: tokio::sync::Mutex::new(None),
            _workers: running.workers,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut r = self.client.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("request")
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        let mut r = self.client.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.expect("request")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::POST, path, token, body)
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::PATCH, path, token, body)
            .await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::PUT, path, token, body)
            .await
    }

    pub async fn login(&self, company: &str, username: &str, password: &str) -> Response {
        self.post(
            "/v1/auth/login",
            None,
            &json!({"company": company, "username": username, "password": password}),
        )
        .await
    }

    /// Signs in and returns the session token; panics unless the flow is `authenticated`.
    pub async fn token(&self, company: &str, username: &str, password: &str) -> String {
        let r = self.login(company, username, password).await;
        assert_eq!(r.status(), StatusCode::OK, "login {company}/{username}");
        let flow: Value = r.json().await.expect("flow");
        assert_eq!(flow["status"], "authenticated", "{flow}");
        flow["session"]["token"].as_str().expect("token").to_owned()
    }

    /// The bootstrapped support_admin's session token. The operator tenant always
    /// requires MFA, so the first call signs in for real: the admin enrolls email codes
    /// with a code read from the outbox. Later calls reuse that session.
    pub async fn support_token(&self) -> String {
        let mut cached = self.support.lock().await;
        if let Some(t) = cached.as_ref() {
            return t.clone();
        }
        let mark = self.outbox_mark();
        let r = self.login("operator", SUPPORT_USER, SUPPORT_PASSWORD).await;
        let flow = ok_json(r).await;
        let token = self
            .finish_mfa(&flow, "root@vendor.example.com", mark)
            .await;
        *cached = Some(token.clone());
        token
    }

    /// Lines of the outbox so far. A worker may be appending one as this reads (a read
    /// can see part of a write): only lines ending in a newline are there yet.
    pub fn outbox_lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.outbox).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).expect("outbox lines are whole JSON"))
            .collect()
    }

    /// How many outbox lines exist now; pass it to `code_after`.
    pub fn outbox_mark(&self) -> usize {
        self.outbox_lines().len()
    }

    /// Waits (up to 10 s) for a message to `to` after line `mark`; answers its code.
    pub async fn code_after(&self, mark: usize, to: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(line) = self
                .outbox_lines()
                .into_iter()
                .skip(mark)
                .rfind(|l| l["to"] == to)
            {
                return code_in(line["body"].as_str().expect("body"));
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no message to {to} in the outbox"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Takes a flow at an MFA step to `authenticated` by email: enrolls `email` (when
    /// enrollment is asked) or verifies the code sent on entering `mfa_required` (the
    /// outbox line after `mark`, taken before the step that entered it).
    pub async fn finish_mfa(&self, flow: &Value, email: &str, mark: usize) -> String {
        let id = flow["flow_id"].as_str().expect("flow id");
        let status = flow["status"].as_str().expect("status");
        let done = match status {
            "authenticated" => flow.clone(),
            "mfa_enrollment_required" | "mfa_enrollment_suggested" => {
                let mark = self.outbox_mark();
                let r = self
                    .post(
                        &format!("/v1/auth/flows/{id}/enroll/email"),
                        None,
                        &json!({"destination": email}),
                    )
                    .await;
                assert_eq!(
                    r.status(),
                    StatusCode::ACCEPTED,
                    "{}",
                    r.text().await.unwrap_or_default()
                );
                let code = self.code_after(mark, email).await;
                ok_json(
                    self.post(
                        &format!("/v1/auth/flows/{id}/enroll/email/confirm"),
                        None,
                        &json!({"code": code}),
                    )
                    .await,
                )
                .await
            }
            "mfa_required" => {
                assert_eq!(flow["mfa"]["code_sent"]["channel"], "email", "{flow}");
                let code = self.code_after(mark, email).await;
                ok_json(
                    self.post(
                        &format!("/v1/auth/flows/{id}/verify"),
                        None,
                        &json!({"method": "code", "code": code}),
                    )
                    .await,
                )
                .await
            }
            other => panic!("flow at {other}: {flow}"),
        };
        assert_eq!(done["status"], "authenticated", "{done}");
        done["session"]["token"].as_str().expect("token").to_owned()
    }

    /// Sets a tenant's MFA policy directly (a fixture for tests about other things).
    pub async fn set_mfa_policy(&self, company: &str, policy: &str) {
        let support = self.support_token().await;
        let principal = self
            .store
            .authenticate(&SecretString::from(support))
            .await
            .expect("support session");
        let tenant = self
            .store
            .find_tenant(&CompanyId::parse(company).expect("company"))
            .await
            .expect("find tenant")
            .expect("tenant exists");
        let patch: gatehouse_domain::settings::SettingsPatch =
            serde_json::from_value(json!({"mfa_policy": policy})).expect("patch");
        self.app
            .admin()
            .update_settings(&principal, &tenant, patch, &Default::default())
            .await
            .expect("update settings");
    }

    /// Provisions a practice; returns the admin's username and temporary password.
    pub async fn provision(&self, support: &str, company: &str) -> (String, String) {
        let username = format!("{company}-admin");
        let temp = "Temporary-Pass-1234!".to_owned();
        let r = self
            .post(
                "/v1/tenants",
                Some(support),
                &json!({
                    "company": company,
                    "name": format!("{company} clinic"),
                    "admin": {"username": username, "first_name": "Ada", "last_name": "Admin",
                              "email": format!("admin@{company}.example.com"), "password": temp}
                }),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "provision {company}: {}",
            r.text().await.unwrap_or_default()
        );
        (username, temp)
    }

    /// Completes a forced password change (and, where MFA is required, enrollment of
    /// email codes) and returns the session token.
    pub async fn finish_password_change(
        &self,
        company: &str,
        username: &str,
        temp: &str,
        new: &str,
    ) -> String {
        let r = self.login(company, username, temp).await;
        assert_eq!(r.status(), StatusCode::OK);
        let flow: Value = r.json().await.expect("flow");
        assert_eq!(flow["status"], "password_change_required", "{flow}");
        let id = flow["flow_id"].as_str().expect("flow id");
        let r = self
            .post(
                &format!("/v1/auth/flows/{id}/password"),
                None,
                &json!({"new_password": new}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let flow: Value = r.json().await.expect("flow");
        // Where MFA is required (the operator tenant always), enroll email codes.
        self.finish_mfa(&flow, &format!("{username}@{company}.example.com"), 0)
            .await
    }

    /// A provisioned practice whose admin has a real password; returns the admin's token.
    /// Its MFA policy is `off` (set as a fixture): for tests about other things. MFA tests
    /// use `mfa_practice`.
    /// The admin has no second factor, so the session is stepped up with the password
    /// (M11, allowed where the policy is `off`) for the admin actions that need it.
    pub async fn practice(&self, company: &str) -> String {
        let support = self.support_token().await;
        let (admin, temp) = self.provision(&support, company).await;
        self.set_mfa_policy(company, "off").await;
        let token = self
            .finish_password_change(company, &admin, &temp, NEW_PASSWORD)
            .await;
        self.step_up_with_password(&token, NEW_PASSWORD).await;
        token
    }

    /// Steps a session up with its password (a user without a second factor in a
    /// practice whose MFA policy is `off`).
    pub async fn step_up_with_password(&self, token: &str, password: &str) {
        let r = self
            .post(
                "/v1/me/step-up",
                Some(token),
                &json!({"method": "password", "code": password}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "step-up: {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// A provisioned practice with the default policy (`require`); the admin changes the
    /// temporary password and enrolls email codes. Returns the admin's token.
    pub async fn mfa_practice(&self, company: &str) -> String {
        let support = self.support_token().await;
        let (admin, temp) = self.provision(&support, company).await;
        let flow = ok_json(self.login(company, &admin, &temp).await).await;
        assert_eq!(flow["status"], "password_change_required", "{flow}");
        let id = flow["flow_id"].as_str().expect("flow id");
        let flow = ok_json(
            self.post(
                &format!("/v1/auth/flows/{id}/password"),
                None,
                &json!({"new_password": NEW_PASSWORD}),
            )
            .await,
        )
        .await;
        self.finish_mfa(&flow, &format!("admin@{company}.example.com"), 0)
            .await
    }

    /// Creates a staff user (temporary password) and returns their token after the change.
    pub async fn staff(&self, company: &str, admin: &str, username: &str) -> String {
        let r = self
            .post(
                &format!("/v1/tenants/{company}/users"),
                Some(admin),
                &json!({"username": username, "first_name": "Sam", "last_name": "Staff",
                        "role": "staff", "password": "Temporary-Pass-1234!"}),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        self.finish_password_change(company, username, "Temporary-Pass-1234!", NEW_PASSWORD)
            .await
    }

    /// Runs SQL on the app's database directly; answers the rows it changed.
    pub async fn exec(&self, sql: &str) -> u64 {
        self.raw
            .execute_unprepared(sql)
            .await
            .expect("raw sql")
            .rows_affected()
    }

    /// Runs `sql` until it changes a row (10 s at most): for rewriting what a worker
    /// writes only once the worker has finished writing it.
    pub async fn exec_once_ready(&self, sql: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.exec(sql).await == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no row ever matched: {sql}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock
            .as_ref()
            .map(|c| c.now())
            .unwrap_or_else(Utc::now)
    }
}

/// RFC 6238 TOTP written out here, independent of the production path (totp-rs).
pub fn independent_totp(secret: &[u8], unix_time: u64) -> String {
    use hmac::{Hmac, Mac};
    let counter = unix_time / 30;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// Base32 (RFC 4648, no padding needed) as authenticator apps read the manual key.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// The 6-digit code in a message body (a whole word).
pub fn code_in(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit code in {body:?}"))
        .to_owned()
}

/// Reads a 200 answer's JSON, failing with the body if the status is not 200.
pub async fn ok_json(r: Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).expect("json")
}

/// The `field`s of a problem's `errors`.
pub fn error_fields(problem: &Value) -> std::collections::BTreeSet<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

/// Reads a problem+json body, checking its content type and code.
pub async fn problem(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: Value = r.json().await.expect("problem body");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    body
}
