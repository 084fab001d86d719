//! The `gatehouse` binary itself: subcommands, configuration errors, serve, demo.
//! These run the built executable in a temporary directory, on SQLite only.

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const ROOT_USER: &str = "cli.root";
const ROOT_EMAIL: &str = "root@vendor.example.com";
const ROOT_PASSWORD: &str = "Cli-Root-Password-42!";

/// The binary with none of the caller's GATEHOUSE_* settings, running in `dir`.
pub(crate) fn gatehouse(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEHOUSE_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.current_dir(dir).env("GATEHOUSE_LOG_FORMAT", "json");
    c
}

pub(crate) fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("g.db").display())
}

/// Runs a command to its end, failing the test if it takes longer than `limit`.
pub(crate) fn run(mut c: Command, limit: Duration) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gatehouse");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        out.read_to_end(&mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        err.read_to_end(&mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("gatehouse did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bootstrap(dir: &Path, username: &str) -> Output {
    let mut c = gatehouse(dir);
    c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir)).args([
        "bootstrap",
        "--username",
        username,
        "--email",
        ROOT_EMAIL,
        "--password",
        ROOT_PASSWORD,
    ]);
    run(c, Duration::from_secs(30))
}

/// A running `gatehouse serve` (or `worker`); killed when dropped, whatever happened in
/// the test.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut s = b.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    buf
}

impl Server {
    fn start(dir: &Path, extra_args: &[&str]) -> Server {
        let port = free_port();
        let mut c = gatehouse(dir);
        c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir))
            .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
            .arg("serve")
            .args(extra_args);
        Server::spawn(c, port)
    }

    /// Starts a prepared command; `port` is where it listens (if it does).
    pub(crate) fn spawn(mut c: Command, port: u16) -> Server {
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn gatehouse");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the process to exit; answers whether
    /// it exited successfully.
    pub(crate) fn terminate(&mut self, limit: Duration) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.success();
            }
            if start.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most `limit`) for a line containing `needle` on stderr (the log).
    pub(crate) async fn wait_log(&mut self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.stderr().contains(needle) {
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!("gatehouse exited with {st}; stderr:\n{}", self.stderr());
            }
            assert!(
                start.elapsed() < limit,
                "no {needle:?} in the log within {limit:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls /readyz until it answers 200 (at most 10 s).
    pub(crate) async fn wait_ready(&mut self, client: &reqwest::Client) {
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["status"], "ready", "{body}");
                return;
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "gatehouse serve exited with {st} before it was ready; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "gatehouse serve not ready within 10 s; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    company: &str,
    user: &str,
    pw: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"company": company, "username": user, "password": pw}))
        .send()
        .await
        .unwrap()
}

/// Lines of the server's outbox file (cwd `dir`, default path).
fn outbox(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("gatehouse-outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines"))
        .collect()
}

/// Waits (at most 10 s) for an outbox line to `to` after line `mark`; answers its code.
async fn outbox_code(dir: &Path, mark: usize, to: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(l) = outbox(dir).into_iter().skip(mark).rfind(|l| l["to"] == to) {
            return crate::helpers::code_in(l["body"].as_str().unwrap());
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no code to {to} in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
    let r = client.post(url).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

/// Takes a flow at an MFA step to a session the way a user would: a code from the
/// outbox (`to` = the full address), enrolling that address when asked, or an
/// authenticator enrolled with a code computed in the test.
async fn complete_mfa(
    client: &reqwest::Client,
    base: &str,
    dir: &Path,
    mark: usize,
    flow: Value,
    to: &str,
) -> String {
    let id = flow["flow_id"].as_str().unwrap().to_owned();
    let flows = format!("{base}/v1/auth/flows/{id}");
    let done = match flow["status"].as_str().unwrap() {
        "mfa_required" => {
            assert!(flow["mfa"]["code_sent"]["to"].is_string(), "{flow}");
            let code = outbox_code(dir, mark, to).await;
            post(
                client,
                format!("{flows}/verify"),
                json!({"method": "code", "code": code}),
            )
            .await
        }
        "mfa_enrollment_required" if to == "totp" => {
            let e = post(client, format!("{flows}/enroll/totp"), json!({})).await;
            let secret = crate::helpers::base32_decode(e["secret"].as_str().unwrap());
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let code = crate::helpers::independent_totp(&secret, now);
            let f = post(
                client,
                format!("{flows}/enroll/totp/confirm"),
                json!({"code": code}),
            )
            .await;
            assert_eq!(f["recovery_codes"].as_array().map(Vec::len), Some(5), "{f}");
            f
        }
        "mfa_enrollment_required" => {
            let mark = outbox(dir).len();
            post(
                client,
                format!("{flows}/enroll/email"),
                json!({"destination": to}),
            )
            .await;
            let code = outbox_code(dir, mark, to).await;
            post(
                client,
                format!("{flows}/enroll/email/confirm"),
                json!({"code": code}),
            )
            .await
        }
        other => panic!("unexpected step {other}: {flow}"),
    };
    assert_eq!(done["status"], "authenticated", "{done}");
    done["session"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_bootstrap_creates_the_support_admin_once_and_serve_lets_them_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = bootstrap(dir.path(), ROOT_USER);
    assert!(
        out.status.success(),
        "first bootstrap: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(dir.path().join("g.db").exists());
    let first = text(&out.stdout);
    assert!(first.contains(ROOT_USER), "{first}");
    assert!(
        !first.contains(ROOT_PASSWORD),
        "the password is not echoed: {first}"
    );

    // Again, even naming someone else: nothing to do, success, nobody created.
    for user in [ROOT_USER, "second.root"] {
        let out = bootstrap(dir.path(), user);
        assert!(
            out.status.success(),
            "repeat bootstrap: {}",
            text(&out.stderr)
        );
        let said = text(&out.stdout).to_lowercase();
        assert!(said.contains("nothing to do"), "{said}");
    }

    let mut server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;
    let r = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The operator tenant always requires MFA: the bootstrapped admin proves the email
    // address at the first sign-in, with the code the in-process worker wrote out.
    let r = login(&client, &server.base, "operator", ROOT_USER, ROOT_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let flow: Value = r.json().await.unwrap();
    assert_eq!(flow["status"], "mfa_enrollment_required", "{flow}");
    let token = complete_mfa(&client, &server.base, dir.path(), 0, flow, ROOT_EMAIL).await;

    let r = client
        .get(format!("{}/v1/tenants", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tenants: Value = r.json().await.unwrap();
    let companies: Vec<&str> = tenants["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["company"].as_str())
        .collect();
    assert_eq!(companies, ["operator"], "{tenants}");

    let r = client
        .get(format!("{}/v1/me", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["role"], "support_admin");
    assert_eq!(me["email"], ROOT_EMAIL);

    // The repeated bootstrap created no second admin.
    let r = login(
        &client,
        &server.base,
        "operator",
        "second.root",
        ROOT_PASSWORD,
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    drop(server);
}

#[test]
fn cli_migrate_on_a_fresh_file_exits_zero_and_leaves_a_usable_schema() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let mut c = gatehouse(dir.path());
        c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir.path()))
            .arg("migrate");
        let out = run(c, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "migrate #{round}: {}",
            text(&out.stderr)
        );
    }
    let db = dir.path().join("g.db");
    assert!(std::fs::metadata(&db).unwrap().len() > 0);

    // The schema is complete: bootstrap works on it without migrating.
    let mut c = gatehouse(dir.path());
    c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir.path()))
        .args([
            "bootstrap",
            "--no-migrate",
            "--username",
            ROOT_USER,
            "--email",
            ROOT_EMAIL,
            "--password",
            ROOT_PASSWORD,
        ]);
    let out = run(c, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "bootstrap on the migrated file: {}",
        text(&out.stderr)
    );

    // Without a migrated schema, --no-migrate cannot work: proof the flag is honoured.
    let empty = tempfile::tempdir().unwrap();
    let mut c = gatehouse(empty.path());
    c.env("GATEHOUSE_DATABASE_URL", sqlite_url(empty.path()))
        .args([
            "bootstrap",
            "--no-migrate",
            "--username",
            ROOT_USER,
            "--email",
            ROOT_EMAIL,
            "--password",
            ROOT_PASSWORD,
        ]);
    let out = run(c, Duration::from_secs(30));
    assert!(
        !out.status.success(),
        "bootstrap on an empty file should fail"
    );
}

#[test]
fn cli_bad_configuration_exits_non_zero_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let cases: [(&str, &str, &[&str]); 13] = [
        ("GATEHOUSE_LISTEN", "nonsense", &["serve"]),
        ("GATEHOUSE_LISTEN", "127.0.0.1:99999", &["serve"]),
        ("GATEHOUSE_DATABASE_URL", "mysql://x", &["serve"]),
        ("GATEHOUSE_DATABASE_URL", "mysql://x", &["migrate"]),
        (
            "GATEHOUSE_DATABASE_URL",
            "mysql://x",
            &[
                "bootstrap",
                "--username",
                "u",
                "--email",
                "u@example.com",
                "--password",
                "P",
            ],
        ),
        ("GATEHOUSE_OPERATOR_COMPANY", "Not A Company!", &["migrate"]),
        ("GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE", "-1", &["serve"]),
        // aws delivery needs a sender address.
        ("GATEHOUSE_DELIVERY", "aws", &["serve"]),
        ("GATEHOUSE_DELIVERY", "carrier-pigeon", &["serve"]),
        (
            "GATEHOUSE_SNS_CERT_URL_PREFIXES",
            "ftp://sns.example",
            &["serve"],
        ),
        ("GATEHOUSE_SMS_OPT_IN_NUMBER", "call me", &["serve"]),
        ("GATEHOUSE_SMS_OPT_IN_NUMBER", "5012345", &["serve"]),
        ("GATEHOUSE_SNS_TOPIC_ARNS", "gatehouse-events", &["serve"]),
    ];
    for (var, value, args) in cases {
        let mut c = gatehouse(dir.path());
        c.env("GATEHOUSE_DATABASE_URL", &url)
            .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env(var, value)
            .args(args);
        let out = run(c, Duration::from_secs(15));
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{var}={value} {args:?} was accepted");
        assert!(
            stderr.contains(var),
            "{var}={value}: stderr does not name it:\n{stderr}"
        );
    }
    // None of them touched the database file.
    assert!(!dir.path().join("g.db").exists());
}

/// D3: the seeds' practices text START to a short code (`501-20`); a short code or a
/// toll-free number is a valid opt-in and origination number, and start-up goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d3_serve_starts_with_short_codes_and_toll_free_numbers() {
    let client = reqwest::Client::new();
    for (opt_in, origination) in [
        ("50120", "501-20"),
        ("501-20", "+18005550100"),
        ("+18335550100", "501200"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut c = gatehouse(dir.path());
        c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir.path()))
            .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("GATEHOUSE_SMS_OPT_IN_NUMBER", opt_in)
            .env("GATEHOUSE_SMS_ORIGINATION_NUMBER", origination)
            .arg("serve");
        let mut server = Server::spawn(c, port);
        server.wait_ready(&client).await;
        assert!(server.terminate(Duration::from_secs(15)), "{opt_in}");
    }
}

#[test]
fn cli_help_lists_the_subcommands_and_serve_help_lists_its_variables() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = gatehouse(dir.path());
    c.arg("--help");
    let out = run(c, Duration::from_secs(10));
    assert!(out.status.success());
    let help = text(&out.stdout);
    for sub in ["serve", "migrate", "bootstrap"] {
        assert!(help.contains(sub), "--help lacks {sub}:\n{help}");
    }

    let mut c = gatehouse(dir.path());
    c.args(["serve", "--help"]);
    let out = run(c, Duration::from_secs(10));
    assert!(out.status.success());
    let help = text(&out.stdout);
    for var in [
        "GATEHOUSE_LISTEN",
        "GATEHOUSE_DATABASE_URL",
        "GATEHOUSE_OPERATOR_COMPANY",
        "GATEHOUSE_TRUSTED_PROXIES",
        "GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE",
        "GATEHOUSE_LOG_FORMAT",
    ] {
        assert!(help.contains(var), "serve --help lacks {var}:\n{help}");
    }
    assert!(help.contains("--demo"), "{help}");

    let mut c = gatehouse(dir.path());
    c.args(["bootstrap", "--help"]);
    let out = run(c, Duration::from_secs(10));
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in ["--username", "--email", "--password"] {
        assert!(
            help.contains(flag),
            "bootstrap --help lacks {flag}:\n{help}"
        );
    }
    // Help starts nothing.
    assert!(!dir.path().join("gatehouse.db").exists());
}

/// A demo account as `serve --demo` prints it.
#[derive(Debug)]
struct DemoAccount {
    company: String,
    username: String,
    role: String,
    password: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_serve_demo_prints_credentials_and_a_curl_command_that_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--demo"]);
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;
    let printed = server.stdout();

    let accounts: Vec<DemoAccount> = printed
        .lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            let looks_like_role = |r: &str| {
                ["staff", "practice_admin", "support_agent", "support_admin"].contains(&r)
            };
            (t.len() == 4 && looks_like_role(t[2])).then(|| DemoAccount {
                company: t[0].to_owned(),
                username: t[1].to_owned(),
                role: t[2].to_owned(),
                password: t[3].to_owned(),
            })
        })
        .collect();
    let clinic: Vec<&DemoAccount> = accounts
        .iter()
        .filter(|a| a.company == "demo-clinic")
        .collect();
    assert!(
        clinic.iter().any(|a| a.role == "practice_admin")
            && clinic.iter().any(|a| a.role == "staff"),
        "demo-clinic admin and staff not printed:\n{printed}"
    );
    assert!(
        accounts.iter().any(|a| a.role == "support_admin"),
        "no support admin printed:\n{printed}"
    );

    // A curl command that signs in, aimed at the address actually served.
    let curl = printed
        .lines()
        .skip_while(|l| !l.contains("curl"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        curl.contains(&format!("{}/v1/auth/login", server.base)),
        "{printed}"
    );
    assert!(curl.contains("demo-clinic"), "{curl}");
    // Its JSON body is the one an admin of the demo signs in with.
    let body_start = curl.find("'{").expect("a JSON body in quotes") + 1;
    let body_end = curl[body_start..].find("}'").expect("end of the JSON body") + body_start + 1;
    let body: Value = serde_json::from_str(&curl[body_start..body_end]).unwrap();
    let r = client
        .post(format!("{}/v1/auth/login", server.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the printed curl command does not sign in"
    );

    // That sign-in sent the admin a code; wait for it, so it is not mistaken below.
    outbox_code(dir.path(), 0, "admin@demo-clinic.example.com").await;

    // Every printed account signs in with its printed password and its printed second
    // factor: a code from the outbox file, or an authenticator enrolled on the spot.
    for a in &accounts {
        let factor = printed
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{}/{}: ", a.company, a.username))
            })
            .unwrap_or_else(|| panic!("no second factor printed for {a:?}:\n{printed}"));
        let to = if factor.starts_with("authenticator") {
            "totp"
        } else {
            factor.rsplit(' ').next().unwrap()
        };
        let mark = outbox(dir.path()).len();
        let r = login(&client, &server.base, &a.company, &a.username, &a.password).await;
        assert_eq!(r.status(), StatusCode::OK, "{a:?}");
        let flow: Value = r.json().await.unwrap();
        let token = &complete_mfa(&client, &server.base, dir.path(), mark, flow, to).await;
        let r = client
            .get(format!("{}/v1/me", server.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let me: Value = r.json().await.unwrap();
        assert_eq!(me["role"], a.role.as_str(), "{a:?}");
        assert_eq!(me["company"], a.company.as_str(), "{a:?}");
    }
    drop(server);
}

/// The published signing keys' ids, from `GET /oauth2/jwks`.
async fn published_kids(client: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = client
        .get(format!("{base}/oauth2/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// oidc.md "Keys": `serve` makes the first signing key; `gatehouse keys rotate` adds one,
/// published at once beside it; a bad span names itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_keys_rotate_publishes_a_new_signing_key_beside_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut server = Server::start(dir.path(), &[]);
    server.wait_ready(&client).await;
    let first = published_kids(&client, &server.base).await;
    assert_eq!(first.len(), 1);
    assert!(server.terminate(Duration::from_secs(15)));

    let mut c = gatehouse(dir.path());
    c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir.path()))
        .args(["keys", "rotate", "--publish-for", "soon"]);
    let out = run(c, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--publish-for"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut c = gatehouse(dir.path());
    c.env("GATEHOUSE_DATABASE_URL", sqlite_url(dir.path()))
        .args(["keys", "rotate", "--publish-for", "24h"]);
    let out = run(c, Duration::from_secs(30));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kid = printed
        .split_whitespace()
        .nth(3)
        .map(|k| k.trim_end_matches(':').to_owned())
        .unwrap_or_else(|| panic!("no key id printed: {printed}"));
    assert!(printed.contains("signing in 86400 s"), "{printed}");

    let mut server = Server::start(dir.path(), &[]);
    server.wait_ready(&client).await;
    assert_eq!(
        published_kids(&client, &server.base).await,
        vec![first[0].clone(), kid]
    );
    assert!(server.terminate(Duration::from_secs(15)));
}
