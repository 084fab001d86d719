//! `spawn_app` and client helpers shared by the integration tests.
#![allow(dead_code)]

use actix_web::{App, HttpServer};
use chrono::{DateTime, Utc};
use gatehouse_api::ApiState;
use gatehouse_domain::clock::{Clock, FixedClock, SystemClock};
use gatehouse_domain::crypto::{Keyring, SecretKey};
use gatehouse_domain::ids::CompanyId;
use gatehouse_store::{Store, StoreConfig};
use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::Arc;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Knobs of a spawned app.
#[derive(Default)]
pub struct Options {
    pub clock: Option<Arc<FixedClock>>,
    pub login_rate_per_ip_per_minute: u32,
}

pub const SUPPORT_USER: &str = "root.support";
pub const SUPPORT_PASSWORD: &str = "Operator-Root-Pass-77!";
/// A password that satisfies the default policy and contains none of the test usernames.
pub const NEW_PASSWORD: &str = "Brisk-Lantern-Harvest-93!";

/// A running app and a raw connection to its database.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    /// A separate connection for checks and tampering that bypass the API.
    pub raw: DatabaseConnection,
    pub db: Db,
    pub clock: Option<Arc<FixedClock>>,
    _dir: Option<tempfile::TempDir>,
}

fn postgres_base() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh schema in the `gatehouse_test` database; returns its URL.
async fn fresh_postgres_schema() -> String {
    let base = postgres_base();
    let admin = Database::connect(base.clone())
        .await
        .expect("connect to PostgreSQL");
    // Parallel test processes may race to create it; losing the race is fine.
    let _ = admin
        .execute_unprepared("CREATE DATABASE gatehouse_test")
        .await;
    admin.close().await.ok();
    let root = base
        .rsplit_once('/')
        .map(|(r, _)| r.to_owned())
        .unwrap_or(base);
    let db_url = format!("{root}/gatehouse_test");
    let schema = format!("gh_{}", uuid::Uuid::new_v4().simple());
    let conn = Database::connect(db_url.clone())
        .await
        .expect("connect to gatehouse_test");
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    conn.close().await.ok();
    format!("{db_url}?options=-c%20search_path%3D{schema}")
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        Self::spawn_with(db, Options::default()).await
    }

    pub async fn spawn_with(db: Db, opts: Options) -> TestApp {
        let (url, dir) = match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("gh.db").display());
                (url, Some(dir))
            }
            Db::Postgres => (fresh_postgres_schema().await, None),
        };
        let keyring = Keyring::new(SecretKey::generate(&mut rand::rngs::OsRng));
        let mut cfg = StoreConfig::new(
            url.clone(),
            CompanyId::parse("operator").expect("company"),
            Arc::new(keyring),
        );
        cfg.login_rate_per_ip_per_minute = opts.login_rate_per_ip_per_minute;
        cfg.max_db_connections = 8;
        let clock: Arc<dyn Clock> = match &opts.clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let store = Store::connect(cfg, clock).await.expect("connect store");
        store.migrate().await.expect("migrate");
        store
            .bootstrap(
                SUPPORT_USER,
                "root@vendor.example.com",
                SecretString::from(SUPPORT_PASSWORD.to_owned()),
            )
            .await
            .expect("bootstrap");
        let state = ApiState {
            store: store.clone(),
            trusted_proxies: Arc::new(vec!["127.0.0.1/32".parse().expect("cidr")]),
        };
        let configure = gatehouse_api::configure(state);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = HttpServer::new(move || App::new().configure(configure.clone()))
            .workers(2)
            .listen(listener)
            .expect("listen")
            .run();
        tokio::spawn(server);
        let raw = Database::connect(url).await.expect("raw connection");
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            store,
            raw,
            db,
            clock: opts.clock,
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

    /// The bootstrapped support_admin's session token.
    pub async fn support_token(&self) -> String {
        self.token("operator", SUPPORT_USER, SUPPORT_PASSWORD).await
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

    /// Completes a forced password change and returns the session token.
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
        assert_eq!(flow["status"], "authenticated", "{flow}");
        flow["session"]["token"].as_str().expect("token").to_owned()
    }

    /// A provisioned practice whose admin has a real password; returns the admin's token.
    pub async fn practice(&self, company: &str) -> String {
        let support = self.support_token().await;
        let (admin, temp) = self.provision(&support, company).await;
        self.finish_password_change(company, &admin, &temp, NEW_PASSWORD)
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

    /// Runs SQL on the app's database directly (`$1` placeholders become `?` on SQLite).
    pub async fn exec(&self, sql: &str) {
        self.raw.execute_unprepared(sql).await.expect("raw sql");
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock
            .as_ref()
            .map(|c| c.now())
            .unwrap_or_else(Utc::now)
    }
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

/// Declares each listed `async fn name(app_db: Db)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Postgres).await
                }
            )*
        }
    };
}
