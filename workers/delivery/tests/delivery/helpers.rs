//! A real store on a fresh SQLite file or PostgreSQL schema, the demo practice seeded,
//! and helpers to issue codes and read what the workers did.
#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use gatehouse_app::signin::LoginInput;
use gatehouse_domain::clock::FixedClock;
use gatehouse_domain::crypto::{Keyring, SecretKey};
use gatehouse_domain::ids::{CompanyId, EmailAddress, FlowId, PhoneE164, TenantId, UserId};
use gatehouse_domain::jobs::{CodeMessage, SendCode};
use gatehouse_domain::mfa::codes::Purpose;
use gatehouse_domain::password::HashParams;
use gatehouse_store::mfa::{CodeOwner, CodeRequest, Destination, IssuedCode};
use gatehouse_store::scope::UserRef;
use gatehouse_store::{RequestMeta, Store, StoreConfig};
use gatehouse_workers::{RequeueConfig, WorkerConfig};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use secrecy::SecretString;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub use gatehouse_testkit::Db;

pub const PHONE: &str = "+12025550147";
pub const COMPANY: &str = "demo-clinic";
pub const COMPANY_NAME: &str = "Demo Family Clinic";
/// The seeded demo users (see gatehouse-app's `accounts().seed_demo()`).
pub const USERS: [(&str, &str); 3] = [
    ("admin", "Harbor-Lights-2026!"),
    ("nurse.joy", "Quiet-Meadow-2026!"),
    ("dr.house", "Silver-Canyon-2026!"),
];

/// A store with the demo practice, a raw connection, and a directory for the outbox.
pub struct TestStore {
    pub store: Store,
    pub raw: DatabaseConnection,
    /// The store's clock: tests move time instead of waiting for it.
    pub clock: Arc<FixedClock>,
    pub tenant: TenantId,
    pub dir: tempfile::TempDir,
}

impl TestStore {
    pub async fn new(db: Db) -> Self {
        Self::with_config(db, |_| {}).await
    }

    /// [`TestStore::new`] with the store's configuration adjusted by `tune`.
    pub async fn with_config(db: Db, tune: impl FnOnce(&mut StoreConfig)) -> Self {
        let clock = Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
                .single()
                .expect("a valid instant"),
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let url = db.fresh_url(dir.path()).await;
        let keyring = Keyring::new(SecretKey::generate(&mut rand::rngs::OsRng));
        let mut cfg = StoreConfig::new(
            url.clone(),
            CompanyId::parse("operator").expect("company"),
            Arc::new(keyring),
        );
        // Passwords are not under test here; cheap hashes keep the setup fast.
        cfg.hash_params = HashParams {
            m_cost: 1024,
            t_cost: 1,
            p_cost: 1,
        };
        cfg.max_db_connections = 8;
        // The number inbound texts are sent to: only texts to our numbers count (D3).
        cfg.sms_numbers = gatehouse_domain::sender::SmsNumbers {
            origination: Some(
                gatehouse_domain::sender::SenderNumber::parse("+12025550100").expect("number"),
            ),
            opt_in: None,
        };
        tune(&mut cfg);
        let store = Store::connect(cfg, clock.clone())
            .await
            .expect("connect store");
        store.migrate().await.expect("migrate");
        gatehouse_app::App::new(store.clone())
            .accounts()
            .seed_demo()
            .await
            .expect("seed demo");
        let tenant = store
            .find_tenant(&CompanyId::parse(COMPANY).expect("company"))
            .await
            .expect("find tenant")
            .expect("demo tenant")
            .id;
        let raw = Database::connect(url).await.expect("raw connection");
        Self {
            store,
            raw,
            clock,
            tenant,
            dir,
        }
    }

    /// The outbox file in this test's directory.
    pub fn outbox_path(&self) -> PathBuf {
        self.dir.path().join("outbox.jsonl")
    }

    /// Worker settings for tests: the outbox here, quick retries, a fast re-enqueue.
    pub fn worker_config(&self) -> WorkerConfig {
        let mut c = WorkerConfig::outbox(self.outbox_path());
        c.retries = 1;
        c.retry_min = Duration::from_millis(10);
        c.retry_max = Duration::from_millis(20);
        c.requeue = RequeueConfig {
            every: Duration::from_millis(100),
            idle: Duration::ZERO,
            limit: 100,
        };
        c.shutdown_timeout = Duration::from_secs(5);
        c
    }

    pub async fn user(&self, username: &str) -> UserId {
        self.store
            .tenant(self.tenant)
            .users()
            .get(&UserRef::Username(username.to_owned()))
            .await
            .expect("user")
            .id
    }

    /// A real sign-in flow of a demo user (the owner of a sign-in code).
    pub async fn flow(&self, username: &str) -> FlowId {
        let password = USERS
            .iter()
            .find(|(u, _)| *u == username)
            .map(|(_, p)| *p)
            .expect("a demo user");
        gatehouse_app::App::new(self.store.clone())
            .signin()
            .login(
                LoginInput {
                    company: COMPANY.to_owned(),
                    username: username.to_owned(),
                    password: SecretString::from(password.to_owned()),
                    device_token: None,
                    require_second_factor: false,
                },
                &RequestMeta::default(),
            )
            .await
            .expect("login")
            .flow_id
    }

    /// Moves the store's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(chrono::Duration::seconds(seconds));
    }

    /// Issues a sign-in code for `username` to `destination` (not pushed anywhere).
    ///
    /// The code is owned by a fresh sign-in flow. Depending on the practice's MFA policy
    /// the sign-in itself may already have sent a code for that flow (queued like any
    /// other), so the clock moves past the per-flow resend interval first; tests look at
    /// outbox lines by delivery id for that reason.
    pub async fn issue(&self, username: &str, destination: Destination) -> IssuedCode {
        let user = self.user(username).await;
        let flow = self.flow(username).await;
        self.advance(gatehouse_domain::mfa::codes::FLOW_RESEND_SECONDS + 1);
        self.store
            .tenant(self.tenant)
            .mfa()
            .issue_code(CodeRequest {
                user,
                owner: CodeOwner::Flow(flow),
                purpose: Purpose::SignIn,
                destination,
                ttl_seconds: 300,
            })
            .await
            .expect("issue code")
    }

    pub async fn issue_sms(&self, username: &str) -> IssuedCode {
        self.issue(
            username,
            Destination::Sms(PhoneE164::parse(PHONE).expect("phone")),
        )
        .await
    }

    pub async fn issue_email(&self, username: &str) -> IssuedCode {
        let email =
            EmailAddress::parse(&format!("{username}@{COMPANY}.example.com")).expect("email");
        self.issue(username, Destination::Email(email)).await
    }

    /// `n` more queued deliveries like `template` (same practice, user and code), each to an
    /// address of its own with its message sealed to its own id, as the store would seal it.
    /// Written directly: issuing them through the store would (rightly) meet the per-user
    /// throttle long before a thousand.
    pub async fn copies(&self, template: Uuid, n: usize) -> Vec<SendCode> {
        let tos: Vec<String> = (0..n)
            .map(|i| format!("burst-{i}@demo-clinic.example.com"))
            .collect();
        self.copies_to(template, &tos).await
    }

    /// Like [`TestStore::copies`], one to each of `tos` (of the template's channel).
    pub async fn copies_to(&self, template: Uuid, tos: &[String]) -> Vec<SendCode> {
        let (t, tenant) = (self, self.tenant.0);
        let backend = t.raw.get_database_backend();
        let sql = if backend == DbBackend::Postgres {
            "INSERT INTO deliveries (id, tenant_id, user_id, challenge_id, channel, destination_masked, \
             destination_hash, purpose, status, attempts, payload_sealed, created_at, updated_at) \
             SELECT $1, tenant_id, user_id, challenge_id, channel, destination_masked, destination_hash, \
             purpose, status, attempts, $2, created_at, updated_at FROM deliveries WHERE id = $3"
        } else {
            "INSERT INTO deliveries (id, tenant_id, user_id, challenge_id, channel, destination_masked, \
             destination_hash, purpose, status, attempts, payload_sealed, created_at, updated_at) \
             SELECT ?, tenant_id, user_id, challenge_id, channel, destination_masked, destination_hash, \
             purpose, status, attempts, ?, created_at, updated_at FROM deliveries WHERE id = ?"
        };
        let keyring = t.store.config().keyring.clone();
        let key = keyring.current();
        let mut jobs = Vec::with_capacity(tos.len());
        for to in tos {
            let id = Uuid::new_v4();
            let sealed = key.seal(
                &SendCode::seal_context(id),
                &CodeMessage::plaintext(to, "482913"),
            );
            t.raw
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    sql,
                    [id.into(), sealed.clone().into(), template.into()],
                ))
                .await
                .unwrap();
            jobs.push(SendCode::new(id, tenant, sealed));
        }
        jobs
    }

    /// The delivery row as the workers left it.
    pub async fn delivery(&self, id: Uuid) -> DeliveryRow {
        let backend = self.raw.get_database_backend();
        let placeholder = if backend == DbBackend::Postgres {
            "$1"
        } else {
            "?"
        };
        let row = self
            .raw
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT status, provider_message_id, payload_sealed, error, attempts \
                     FROM deliveries WHERE id = {placeholder}"
                ),
                [id.into()],
            ))
            .await
            .expect("query delivery")
            .expect("delivery row");
        DeliveryRow {
            status: row.try_get("", "status").expect("status"),
            provider_message_id: row.try_get("", "provider_message_id").expect("pmid"),
            payload_sealed: row.try_get("", "payload_sealed").expect("payload"),
            error: row.try_get("", "error").expect("error"),
            attempts: row.try_get::<i32>("", "attempts").expect("attempts"),
        }
    }

    /// Replaces a delivery's sealed message.
    pub async fn set_sealed(&self, id: Uuid, sealed: &str) {
        let backend = self.raw.get_database_backend();
        let sql = if backend == DbBackend::Postgres {
            "UPDATE deliveries SET payload_sealed = $1 WHERE id = $2"
        } else {
            "UPDATE deliveries SET payload_sealed = ? WHERE id = ?"
        };
        self.raw
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [sealed.into(), id.into()],
            ))
            .await
            .expect("update sealed");
    }

    /// The outbox lines of one delivery.
    pub fn lines_of(&self, delivery_id: Uuid) -> Vec<Value> {
        let id = delivery_id.to_string();
        self.outbox_lines()
            .into_iter()
            .filter(|l| l["delivery_id"] == id.as_str())
            .collect()
    }

    /// Runs SQL directly.
    pub async fn exec(&self, sql: &str) {
        self.raw.execute_unprepared(sql).await.expect("raw sql");
    }

    /// The outbox's lines, parsed (each must be whole JSON). A worker may be appending
    /// one as this reads (a read can see part of a write): only lines ending in a
    /// newline are there yet.
    pub fn outbox_lines(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.outbox_path()) {
            Ok(text) => text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Waits for the outbox line of `delivery_id`.
    pub async fn wait_for_line(&self, delivery_id: Uuid) -> Value {
        let id = delivery_id.to_string();
        wait_until(&format!("the outbox line of {id}"), || async {
            self.outbox_lines()
                .into_iter()
                .find(|l| l["delivery_id"] == id.as_str())
        })
        .await
    }

    /// Waits until the delivery's row satisfies `done`.
    pub async fn wait_for_delivery(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&DeliveryRow) -> bool,
    ) -> DeliveryRow {
        wait_until(what, || async {
            let row = self.delivery(id).await;
            done(&row).then_some(row)
        })
        .await
    }
}

/// A delivery row.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub status: String,
    pub provider_message_id: Option<String>,
    pub payload_sealed: Option<String>,
    pub error: Option<String>,
    pub attempts: i32,
}

/// Polls `check` until it answers something; panics after 20 s (the bound, not a
/// performance assertion: a send takes milliseconds).
pub async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether `word` appears in `text` as a word of its own.
pub fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == word)
}
