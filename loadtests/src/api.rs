//! Gatehouse's HTTP API as the load tests use it: one sign-in state machine written once
//! and run over either a plain reqwest client (set-up) or a goose user (measured load).

use crate::flaw::Flaw;
use crate::mailbox::Mailbox;
use goose::goose::GooseResponse;
use goose::prelude::{GooseMethod, GooseRequest, GooseUser};
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub enum Method {
    Get,
    Post,
    Patch,
}

/// One request: its name in the report, the statuses that are its expected answer.
pub struct Call<'a> {
    pub name: &'static str,
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub token: Option<&'a str>,
    /// The client's address, sent as `X-Forwarded-For` (Gatehouse trusts 127.0.0.1 as
    /// its proxy here, as it trusts the load balancer in production).
    pub ip: &'a str,
    pub ok: &'static [u16],
}

impl<'a> Call<'a> {
    pub fn get(name: &'static str, path: String, token: &'a str, ip: &'a str) -> Self {
        Call {
            name,
            method: Method::Get,
            path,
            body: None,
            token: Some(token),
            ip,
            ok: &[200],
        }
    }

    pub fn post(name: &'static str, path: String, body: Value, ip: &'a str) -> Self {
        Call {
            name,
            method: Method::Post,
            path,
            body: Some(body),
            token: None,
            ip,
            ok: &[200],
        }
    }

    pub fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    pub fn ok(mut self, ok: &'static [u16]) -> Self {
        self.ok = ok;
        self
    }
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Sends [`Call`]s.
pub trait Http: Send {
    fn call(&mut self, c: Call<'_>) -> impl Future<Output = Result<Answer, Flaw>> + Send;
}

fn parse_body(text: String) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// A plain client (set-up, not measured).
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn new(base: &str) -> Result<Self, Flaw> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Flaw(format!("http client: {e}")))?;
        Ok(Client {
            http,
            base: base.to_owned(),
        })
    }
}

impl Http for Client {
    async fn call(&mut self, c: Call<'_>) -> Result<Answer, Flaw> {
        let method = match c.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
        };
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.base, c.path))
            .header("x-forwarded-for", c.ip);
        if let Some(t) = c.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = &c.body {
            rb = rb.json(b);
        }
        let r = rb
            .send()
            .await
            .map_err(|e| Flaw(format!("{}: {e}", c.name)))?;
        let status = r.status().as_u16();
        let body = parse_body(
            r.text()
                .await
                .map_err(|e| Flaw(format!("{}: {e}", c.name)))?,
        );
        if !c.ok.contains(&status) {
            return Err(Flaw(format!("{} answered {status}: {body}", c.name)));
        }
        Ok(Answer { status, body })
    }
}

impl Http for GooseUser {
    async fn call(&mut self, c: Call<'_>) -> Result<Answer, Flaw> {
        let method = match c.method {
            Method::Get => GooseMethod::Get,
            Method::Post => GooseMethod::Post,
            Method::Patch => GooseMethod::Patch,
        };
        let mut rb = self
            .get_request_builder(&method, &c.path)
            .map_err(|e| Flaw(format!("{}: {e:?}", c.name)))?
            .header("x-forwarded-for", c.ip);
        if let Some(t) = c.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = &c.body {
            rb = rb.json(b);
        }
        let req = GooseRequest::builder()
            .set_request_builder(rb)
            .name(c.name)
            .build();
        let GooseResponse {
            mut request,
            response,
        } = self
            .request(req)
            .await
            .map_err(|e| Flaw(format!("{}: {e:?}", c.name)))?;
        let r = response.map_err(|e| Flaw(format!("{}: {e}", c.name)))?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        if c.ok.contains(&status) {
            // An expected refusal (a wrong password's 401) is a success of the scenario.
            if !request.success {
                let _ = self.set_success(&mut request);
            }
            Ok(Answer {
                status,
                body: parse_body(text),
            })
        } else {
            if request.success {
                // Recorded as failed in goose's report; the error is ours to return.
                let _ = self.set_failure(c.name, &mut request, None, Some(&text));
            }
            Err(Flaw(format!("{} answered {status}: {text}", c.name)))
        }
    }
}

/// A staff member's account as the load tests know it.
#[derive(Debug, Clone)]
pub struct Account {
    pub company: String,
    pub username: String,
    pub email: String,
    pub phone: Option<String>,
    /// The address the user signs in from (their practice's office).
    pub ip: String,
    pub device_token: Option<String>,
    /// The authenticator's secret once enrolled, and the last time step used.
    pub totp: Option<(String, u64)>,
}

pub const STEP: u64 = 30;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The six-digit code an authenticator app shows at `unix`.
pub fn totp_code(secret_b32: &str, unix: u64) -> Result<String, Flaw> {
    let secret = totp_rs::Secret::try_from_base32(secret_b32)
        .map_err(|e| Flaw(format!("authenticator secret: {e:?}")))?;
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(STEP)
        .with_secret(secret)
        .with_account_name("load")
        .build_noncompliant();
    Ok(totp.generate(unix).to_string())
}

impl Account {
    /// A TOTP account whose next code is not a replay of the last one used.
    pub fn totp_ready(&self) -> bool {
        self.totp
            .as_ref()
            .is_none_or(|(_, last)| unix_now() / STEP > *last)
    }

    /// The next authenticator code, waiting for a new time step when the last was used.
    async fn next_totp(&mut self) -> Result<String, Flaw> {
        let Some((secret, last)) = self.totp.clone() else {
            return Err(Flaw("no authenticator enrolled".into()));
        };
        loop {
            let now = unix_now();
            if now / STEP > last {
                self.totp = Some((secret.clone(), now / STEP));
                return totp_code(&secret, now);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How a sign-in ended.
pub struct SignedIn {
    pub token: String,
    /// The second factor it took (`code`, `totp`, `enrolled`, or none when a remembered
    /// device or a trusted network applied).
    pub second: Option<&'static str>,
}

fn flow_path(flow: &Value, step: &str) -> Result<String, Flaw> {
    let id = flow["flow_id"]
        .as_str()
        .ok_or_else(|| Flaw(format!("no flow id in {flow}")))?;
    Ok(format!("/v1/auth/flows/{id}/{step}"))
}

/// `POST /v1/auth/login` of `a` (with its remembered device, if any), named `name` in the
/// report; answers the Flow.
pub async fn login<H: Http>(
    http: &mut H,
    name: &'static str,
    a: &Account,
    password: &str,
) -> Result<Value, Flaw> {
    let mut body = json!({"company": a.company, "username": a.username, "password": password});
    if let Some(d) = &a.device_token {
        body["device_token"] = json!(d);
    }
    Ok(http
        .call(Call::post(name, "/v1/auth/login".into(), body, &a.ip))
        .await?
        .body)
}

/// Signs `a` in with `password`: a remembered device or trusted network, else the code
/// sent (read back from the fake provider) or the authenticator, else enrolls an
/// authenticator. `wrong_code_first` sends a wrong code before the right one.
pub async fn sign_in<H: Http>(
    http: &mut H,
    a: &mut Account,
    password: &str,
    mail: &Mailbox,
    wrong_code_first: bool,
) -> Result<SignedIn, Flaw> {
    let marks = (
        mail.mark(&a.email),
        a.phone.as_deref().map(|p| mail.mark(p)),
    );
    let ip = a.ip.clone();
    let mut flow = login(http, "login", a, password).await?;
    let mut second = None;
    for _ in 0..3 {
        match flow["status"].as_str().unwrap_or_default() {
            "authenticated" => {
                if let Some(d) = flow["device_token"].as_str() {
                    a.device_token = Some(d.to_owned());
                }
                let token = flow["session"]["token"]
                    .as_str()
                    .ok_or_else(|| Flaw(format!("no session in {flow}")))?;
                return Ok(SignedIn {
                    token: token.to_owned(),
                    second,
                });
            }
            "mfa_required" => {
                let totp = a.totp.is_some()
                    && flow["mfa"]["preferred"].as_str() == Some("totp")
                    && flow["mfa"]["code_sent"].is_null();
                let (method, code) = if totp {
                    second = Some("totp");
                    ("totp", a.next_totp().await?)
                } else {
                    second = Some("code");
                    let channel = flow["mfa"]["code_sent"]["channel"]
                        .as_str()
                        .ok_or_else(|| Flaw(format!("no code sent: {}", flow["mfa"])))?;
                    let (to, mark) = match (channel, &a.phone, marks.1) {
                        ("sms", Some(p), Some(m)) => (p.as_str(), m),
                        _ => (a.email.as_str(), marks.0),
                    };
                    ("code", mail.code_after(to, mark).await?)
                };
                if wrong_code_first {
                    let wrong = if code == "000000" { "111111" } else { "000000" };
                    http.call(
                        Call::post(
                            "verify (wrong code)",
                            flow_path(&flow, "verify")?,
                            json!({"method": method, "code": wrong}),
                            &ip,
                        )
                        .ok(&[400]),
                    )
                    .await?;
                }
                flow = http
                    .call(Call::post(
                        "verify",
                        flow_path(&flow, "verify")?,
                        json!({"method": method, "code": code, "remember_device": true}),
                        &ip,
                    ))
                    .await?
                    .body;
            }
            "mfa_enrollment_required" | "mfa_enrollment_suggested" => {
                second = Some("enrolled");
                let e = http
                    .call(Call::post(
                        "enroll totp",
                        flow_path(&flow, "enroll/totp")?,
                        json!({"label": "load test"}),
                        &ip,
                    ))
                    .await?
                    .body;
                let secret = e["secret"]
                    .as_str()
                    .ok_or_else(|| Flaw(format!("no secret in {e}")))?
                    .to_owned();
                let now = unix_now();
                let code = totp_code(&secret, now)?;
                a.totp = Some((secret, now / STEP));
                flow = http
                    .call(Call::post(
                        "enroll totp confirm",
                        flow_path(&flow, "enroll/totp/confirm")?,
                        json!({"code": code}),
                        &ip,
                    ))
                    .await?
                    .body;
            }
            other => return Err(Flaw(format!("sign-in stopped at '{other}': {flow}"))),
        }
    }
    Err(Flaw(format!("sign-in did not end: {flow}")))
}
