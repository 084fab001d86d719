//! A local fake of the two AWS calls Gatehouse's workers make per code: SES v2
//! `SendEmail` (restJson1, `POST /v2/email/outbound-emails`) and SNS `Publish` (awsQuery,
//! form-encoded `POST /`), plus the SNS SMS opt-out calls, answering as AWS does closely
//! enough for the real AWS SDK clients pointed at it with `AWS_ENDPOINT_URL`.
//!
//! moto records messages but cannot fail on purpose; this fake can. Per destination (an
//! email address or an E.164 number) a test queues [`Rule`]s: throttle the next n calls,
//! answer a server error, refuse the destination, or hang without answering (as a
//! provider does when the worker calling it is killed). It counts, per destination, the
//! calls that were answered with success, so a test can prove "exactly one successful
//! provider call". It is also fast, for measuring a worker's sends per second.
//!
//! Signatures are not checked. Listens on 127.0.0.1 only.

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the next call to a destination meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Throttled: SES `TooManyRequestsException` (429), SNS `Throttling` (400).
    Throttle,
    /// A server error: 503 `ServiceUnavailable` / 500 `InternalError`.
    ServerError,
    /// The destination is refused: SES `MessageRejected`, SNS `InvalidParameter` (400).
    Reject,
    /// No answer at all until the caller gives up or is killed.
    Hang,
}

/// One message the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub message_id: String,
    /// `email` or `sms`.
    pub channel: &'static str,
    pub to: String,
    pub subject: Option<String>,
    /// The text body (SES) or the message (SNS).
    pub text: String,
    pub html: Option<String>,
    /// When the fake accepted it.
    pub at: std::time::Instant,
}

/// Per-destination counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls received.
    pub calls: u32,
    /// Calls answered with success (the message was accepted).
    pub accepted: u32,
    /// Calls answered with an error by a rule.
    pub refused: u32,
    /// Calls that met [`Rule::Hang`]: never answered (whether or not the caller is
    /// still waiting; the server does not notice a caller that went away).
    pub hanging: u32,
}

#[derive(Default)]
struct State {
    rules: HashMap<String, VecDeque<Rule>>,
    counts: HashMap<String, Counts>,
    accepted: Vec<Accepted>,
    /// Per destination, the indexes of its messages in `accepted` (a load test reads
    /// codes back while thousands of messages accumulate).
    by_to: HashMap<String, Vec<usize>>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<State>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counts half-updated.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake; stops when dropped.
pub struct FakeAws {
    /// `http://127.0.0.1:PORT`: the value for `AWS_ENDPOINT_URL`.
    pub url: String,
    shared: Shared,
    server: actix_web::dev::ServerHandle,
}

impl Drop for FakeAws {
    fn drop(&mut self) {
        // Stopping without waiting: the server's tasks end with the runtime anyway.
        drop(self.server.stop(false));
    }
}

impl FakeAws {
    /// Starts on a free port of 127.0.0.1, in the current tokio runtime.
    pub fn start() -> std::io::Result<FakeAws> {
        Self::start_on(TcpListener::bind("127.0.0.1:0")?, 2)
    }

    /// Starts on `listener` with `workers` HTTP worker threads.
    pub fn start_on(listener: TcpListener, workers: usize) -> std::io::Result<FakeAws> {
        let port = listener.local_addr()?.port();
        let shared = Shared::default();
        let state = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/v2/email/outbound-emails", web::post().to(send_email))
                .route("/", web::post().to(sns))
        })
        .workers(workers.max(1))
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(FakeAws {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            server: handle,
        })
    }

    /// The next `times` calls to `to` meet `rule` (after rules already queued).
    pub fn rule(&self, to: &str, rule: Rule, times: u32) {
        let mut s = self.shared.lock();
        let q = s.rules.entry(to.to_owned()).or_default();
        q.extend(std::iter::repeat_n(rule, times as usize));
    }

    /// Drops the rules still queued for `to`.
    pub fn clear_rules(&self, to: &str) {
        self.shared.lock().rules.remove(to);
    }

    /// The counts of `to`.
    pub fn counts(&self, to: &str) -> Counts {
        self.shared
            .lock()
            .counts
            .get(to)
            .copied()
            .unwrap_or_default()
    }

    /// Messages accepted for `to`, oldest first.
    pub fn accepted_to(&self, to: &str) -> Vec<Accepted> {
        let s = self.shared.lock();
        s.by_to
            .get(to)
            .map(|ix| ix.iter().map(|&i| s.accepted[i].clone()).collect())
            .unwrap_or_default()
    }

    /// How many messages were accepted for `to`.
    pub fn accepted_count_to(&self, to: &str) -> usize {
        self.shared.lock().by_to.get(to).map_or(0, Vec::len)
    }

    /// The `n`th message (0-based) accepted for `to`, if there is one yet.
    pub fn accepted_nth_to(&self, to: &str, n: usize) -> Option<Accepted> {
        let s = self.shared.lock();
        let i = *s.by_to.get(to)?.get(n)?;
        Some(s.accepted[i].clone())
    }

    /// Every message accepted after the first `from`, in order.
    pub fn accepted_since(&self, from: usize) -> Vec<Accepted> {
        let s = self.shared.lock();
        s.accepted
            .get(from..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// How many messages were accepted in all.
    pub fn accepted_total(&self) -> usize {
        self.shared.lock().accepted.len()
    }
}

/// Decides the answer to one call to `to`: `None` to accept it.
fn next_rule(shared: &Shared, to: &str) -> Option<Rule> {
    let mut s = shared.lock();
    let rule = s.rules.get_mut(to).and_then(VecDeque::pop_front);
    let c = s.counts.entry(to.to_owned()).or_default();
    c.calls += 1;
    match rule {
        Some(Rule::Hang) => c.hanging += 1,
        Some(_) => c.refused += 1,
        None => {}
    }
    rule
}

fn accept(shared: &Shared, mut message: Accepted) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    message.message_id = id.clone();
    let mut s = shared.lock();
    s.counts.entry(message.to.clone()).or_default().accepted += 1;
    let i = s.accepted.len();
    s.by_to.entry(message.to.clone()).or_default().push(i);
    s.accepted.push(message);
    id
}

async fn hang() -> HttpResponse {
    std::future::pending::<()>().await;
    HttpResponse::InternalServerError().finish()
}

fn ses_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .insert_header(("x-amzn-ErrorType", code))
        .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()))
        .content_type("application/json")
        .body(serde_json::json!({ "message": message }).to_string())
}

async fn send_email(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return ses_error(400, "BadRequestException", "the body is not JSON");
    };
    let Some(to) = req["Destination"]["ToAddresses"][0].as_str() else {
        return ses_error(400, "BadRequestException", "no destination");
    };
    match next_rule(&shared, to) {
        Some(Rule::Throttle) => {
            return ses_error(
                429,
                "TooManyRequestsException",
                "Maximum sending rate exceeded.",
            );
        }
        Some(Rule::ServerError) => {
            return ses_error(503, "ServiceUnavailable", "Service unavailable.");
        }
        Some(Rule::Reject) => {
            return ses_error(400, "MessageRejected", "Email address is not valid.");
        }
        Some(Rule::Hang) => return hang().await,
        None => {}
    }
    let simple = &req["Content"]["Simple"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let id = accept(
        &shared,
        Accepted {
            message_id: String::new(),
            channel: "email",
            to: to.to_owned(),
            subject: text(&simple["Subject"]["Data"]),
            text: text(&simple["Body"]["Text"]["Data"]).unwrap_or_default(),
            html: text(&simple["Body"]["Html"]["Data"]),
            at: std::time::Instant::now(),
        },
    );
    HttpResponse::Ok()
        .content_type("application/json")
        .body(serde_json::json!({ "MessageId": id }).to_string())
}

const SNS_NS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

fn sns_ok(action: &str, result: &str) -> HttpResponse {
    HttpResponse::Ok().content_type("text/xml").body(format!(
        "<{action}Response xmlns=\"{SNS_NS}\"><{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        uuid::Uuid::new_v4()
    ))
}

fn sns_error(status: u16, kind: &str, code: &str, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("text/xml")
        .body(format!(
            "<ErrorResponse xmlns=\"{SNS_NS}\"><Error><Type>{kind}</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            uuid::Uuid::new_v4()
        ))
}

async fn sns(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    match form.get("Action").map(String::as_str) {
        Some("Publish") => {}
        Some("CheckIfPhoneNumberIsOptedOut") => {
            return sns_ok(
                "CheckIfPhoneNumberIsOptedOut",
                "<isOptedOut>false</isOptedOut>",
            );
        }
        Some("ListPhoneNumbersOptedOut") => {
            return sns_ok("ListPhoneNumbersOptedOut", "<phoneNumbers/>");
        }
        Some("OptInPhoneNumber") => return sns_ok("OptInPhoneNumber", ""),
        _ => return sns_error(400, "Sender", "InvalidAction", "unsupported action"),
    }
    let Some(to) = form.get("PhoneNumber") else {
        return sns_error(
            400,
            "Sender",
            "InvalidParameter",
            "PhoneNumber is required here",
        );
    };
    match next_rule(&shared, to) {
        Some(Rule::Throttle) => return sns_error(400, "Sender", "Throttling", "Rate exceeded"),
        Some(Rule::ServerError) => {
            return sns_error(500, "Receiver", "InternalError", "Internal error");
        }
        Some(Rule::Reject) => {
            return sns_error(
                400,
                "Sender",
                "InvalidParameter",
                "Invalid parameter: PhoneNumber Reason: not a valid number",
            );
        }
        Some(Rule::Hang) => return hang().await,
        None => {}
    }
    let id = accept(
        &shared,
        Accepted {
            message_id: String::new(),
            channel: "sms",
            to: to.clone(),
            subject: None,
            text: form.get("Message").cloned().unwrap_or_default(),
            html: None,
            at: std::time::Instant::now(),
        },
    );
    sns_ok("Publish", &format!("<MessageId>{id}</MessageId>"))
}
