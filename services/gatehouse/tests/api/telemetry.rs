//! A2: the traces, metrics and log lines of real sign-ins, in process: spans captured
//! by an in-memory exporter, `/metrics` parsed as Prometheus text, log lines captured.
//! (Export over OTLP by the real binary: `otlp.rs`.)
//!
//! The spans, metrics and logs of a process are global: each test here runs in a process
//! of its own (nextest), and counts what moved rather than absolute values.

use crate::helpers::{Db, Options};
use crate::helpers::{NEW_PASSWORD, TestApp, TestTelemetry, code_in, ok_json, problem, telemetry};
use crate::mfa_flow::{after_password_change, create_staff, flow_path, verify};
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::SpanData;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PHONE: &str = "+12025550147";
/// The trace and span of the EHR application that calls Gatehouse.
const EHR_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const EHR_SPAN: &str = "00f067aa0ba902b7";
const TEMP_PASSWORD: &str = "Temporary-Pass-1234!";

fn traceparent() -> String {
    format!("00-{EHR_TRACE}-{EHR_SPAN}-01")
}

fn ehr_trace() -> TraceId {
    TraceId::from_hex(EHR_TRACE).unwrap()
}

/// A practice with a staff user `sam` whose second factor is SMS to [`PHONE`] (proven);
/// answers the admin's token.
async fn sms_practice(app: &TestApp, company: &str) -> String {
    let admin = app.mfa_practice(company).await;
    create_staff(app, company, &admin, "sam", Some("+1 202 555 0147")).await;
    let flow = after_password_change(app, company, "sam").await;
    let mark = app.outbox_mark();
    let r = app
        .post(&flow_path(&flow, "enroll/sms"), None, &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let code = app.code_after(mark, PHONE).await;
    let done = ok_json(
        app.post(
            &flow_path(&flow, "enroll/sms/confirm"),
            None,
            &json!({"code": code}),
        )
        .await,
    )
    .await;
    assert_eq!(done["status"], "authenticated", "{done}");
    admin
}

/// `POST /v1/auth/login` as the EHR application sends it: with its `traceparent`.
async fn login_traced(
    app: &TestApp,
    company: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("traceparent", traceparent())
        .json(&json!({"company": company, "username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// Waits (at most 10 s) for a finished span that `pred` accepts.
async fn span_where(tel: &TestTelemetry, pred: impl Fn(&SpanData) -> bool) -> SpanData {
    let start = Instant::now();
    loop {
        if let Some(s) = tel
            .spans
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .find(&pred)
        {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no such span; finished: {:?}",
            tel.spans
                .get_finished_spans()
                .unwrap()
                .iter()
                .map(|s| s.name.to_string())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `span` descends from the span `ancestor` (through spans of `all`).
fn descends(span: &SpanData, ancestor: SpanId, all: &[SpanData]) -> bool {
    let mut parent = span.parent_span_id;
    for _ in 0..64 {
        if parent == ancestor {
            return true;
        }
        match all.iter().find(|s| s.span_context.span_id() == parent) {
            Some(p) => parent = p.parent_span_id,
            None => return false,
        }
    }
    false
}

/// Every attribute and event of every captured span, as text.
fn span_text(spans: &[SpanData]) -> String {
    let mut out = String::new();
    for s in spans {
        out.push_str(&s.name);
        for kv in &s.attributes {
            out.push_str(&format!(" {}={}", kv.key, kv.value));
        }
        for e in s.events.iter() {
            out.push_str(&format!(" event:{}", e.name));
            for kv in &e.attributes {
                out.push_str(&format!(" {}={}", kv.key, kv.value));
            }
        }
        out.push('\n');
    }
    out
}

async fn tenant_id(app: &TestApp, company: &str) -> String {
    let row = app
        .raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            format!("SELECT id FROM tenants WHERE company = '{company}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<uuid::Uuid>("", "id").unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_one_trace_runs_from_the_login_request_through_the_job_to_the_provider_call() {
    let app = TestApp::spawn_with(
        Db::Sqlite,
        Options {
            traced: true,
            ..Options::default()
        },
    )
    .await;
    let tel = telemetry(true);
    assert!(tel.traced);
    sms_practice(&app, "trace-clinic").await;
    let tenant = tenant_id(&app, "trace-clinic").await;

    // The EHR's sign-in request: the code goes out by SMS.
    let mark = app.outbox_mark();
    let flow = ok_json(login_traced(&app, "trace-clinic", "sam", NEW_PASSWORD).await).await;
    assert_eq!(flow["status"], "mfa_required", "{flow}");
    let code = app.code_after(mark, PHONE).await;
    // The job's span ends after the provider call inside it (once the send is recorded),
    // and the request's after everything it did: once both have ended, all have.
    for name in ["send_code process", "POST /v1/auth/login"] {
        span_where(tel, |s| {
            s.name == name && s.span_context.trace_id() == ehr_trace()
        })
        .await;
    }
    let spans: Vec<SpanData> = tel
        .spans
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == ehr_trace())
        .collect();

    // The request's span continues the EHR's trace and names route, status and tenant.
    let request = spans
        .iter()
        .find(|s| s.name == "POST /v1/auth/login")
        .expect("request span");
    assert_eq!(request.span_kind, SpanKind::Server);
    assert_eq!(request.parent_span_id, SpanId::from_hex(EHR_SPAN).unwrap());
    assert!(request.parent_span_is_remote);
    assert_eq!(
        attr(request, "http.route").as_deref(),
        Some("/v1/auth/login")
    );
    assert_eq!(
        attr(request, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attr(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(request, "tenant.id"), Some(tenant.clone()));
    let rid = request.span_context.span_id();

    // Inside it: database calls, the Argon2 pool's wait and the hash, the job's enqueue.
    let db = spans
        .iter()
        .filter(|s| s.name.starts_with("sea_orm.") && descends(s, rid, &spans))
        .count();
    assert!(db >= 3, "{db} database spans");
    let query = spans
        .iter()
        .find(|s| s.name == "sea_orm.query_one" && descends(s, rid, &spans))
        .expect("a query span");
    assert_eq!(attr(query, "db.system").as_deref(), Some("sqlite"));
    for name in ["argon2.queue", "argon2"] {
        let s = spans.iter().find(|s| s.name == name).expect(name);
        assert!(descends(s, rid, &spans), "{name} is inside the request");
    }
    let enqueue = spans
        .iter()
        .find(|s| s.name == "job.enqueue")
        .expect("enqueue span");
    assert_eq!(enqueue.span_kind, SpanKind::Producer);
    assert!(descends(enqueue, rid, &spans));

    // The job's run continues from the enqueue, and the provider call is inside it.
    let provider = spans
        .iter()
        .find(|s| s.name == "outbox append")
        .cloned()
        .expect("provider span");
    let job = spans
        .iter()
        .find(|s| s.name == "send_code process")
        .expect("job span");
    assert_eq!(job.span_kind, SpanKind::Consumer);
    assert_eq!(job.parent_span_id, enqueue.span_context.span_id());
    assert_eq!(attr(job, "outcome").as_deref(), Some("sent"));
    assert_eq!(provider.span_kind, SpanKind::Client);
    assert_eq!(attr(&provider, "provider").as_deref(), Some("outbox"));
    assert!(descends(&provider, job.span_context.span_id(), &spans));

    // A wrong code, then the right one: the failed step is in the trace with its status.
    let r = app
        .client
        .post(app.url(&flow_path(&flow, "verify")))
        .header("traceparent", traceparent())
        .json(
            &json!({"method": "code", "code": if code == "000000" { "111111" } else { "000000" }}),
        )
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "mfa_code_invalid").await;
    let failed = span_where(tel, |s| {
        s.name == "POST /v1/auth/flows/{flow_id}/verify"
            && attr(s, "http.response.status_code").as_deref() == Some("400")
    })
    .await;
    assert_eq!(failed.span_context.trace_id(), ehr_trace());
    assert_eq!(attr(&failed, "tenant.id"), Some(tenant));
    let done = ok_json(verify(&app, &flow, "code", &code).await).await;
    let token = done["session"]["token"].as_str().unwrap().to_owned();
    let r = app.get("/v1/auth/session", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    span_where(tel, |s| s.name == "GET /v1/auth/session").await;

    // Nothing secret in any span: no flow id (only route templates), code, password,
    // token or phone number.
    let text = span_text(&tel.spans.get_finished_spans().unwrap());
    let flow_id = flow["flow_id"].as_str().unwrap();
    for secret in [
        flow_id,
        code.as_str(),
        NEW_PASSWORD,
        token.as_str(),
        PHONE,
        "2025550147",
    ] {
        assert!(!text.contains(secret), "{secret} is in a span:\n{text}");
    }
}

/// A Prometheus text exposition, checked line by line: samples keyed
/// `name{label="value",...}` with labels sorted.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "two TYPE lines for {name}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let name_end = line.find(['{', ' ']).expect("a name");
        let name = &line[..name_end];
        assert!(
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line}"
        );
        let mut rest = &line[name_end..];
        let mut labels: Vec<(String, String)> = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end;
            loop {
                // name="value" pairs, separated by commas, up to '}'.
                let (i, c) = chars.next().expect("unterminated labels");
                if c == '}' {
                    end = i;
                    break;
                }
                let start = i;
                let mut key_end = i;
                while let Some(&(j, c)) = chars.peek() {
                    if c == '=' {
                        key_end = j;
                        break;
                    }
                    chars.next();
                }
                let key = r[start..key_end].to_owned();
                assert!(
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad label name in {line}"
                );
                assert_eq!(chars.next().map(|x| x.1), Some('='), "{line}");
                assert_eq!(chars.next().map(|x| x.1), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    let (_, c) = chars.next().expect("unterminated label value");
                    match c {
                        '"' => break,
                        '\\' => match chars.next().map(|x| x.1) {
                            Some('n') => value.push('\n'),
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            other => panic!("bad escape {other:?} in {line}"),
                        },
                        c => value.push(c),
                    }
                }
                labels.push((key, value));
                if let Some(&(_, ',')) = chars.peek() {
                    chars.next();
                }
            }
            rest = &r[end + 1..];
        }
        let value = rest.strip_prefix(' ').expect("a space before the value");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let family = [
            ("_bucket", "histogram"),
            ("_sum", "histogram"),
            ("_count", "histogram"),
        ]
        .iter()
        .find_map(|(suffix, kind)| {
            name.strip_suffix(suffix)
                .filter(|base| types.get(*base).map(String::as_str) == Some(kind))
        })
        .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line}");
        labels.sort();
        let key = format!(
            "{name}{{{}}}",
            labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(samples.insert(key, v).is_none(), "duplicate sample {line}");
    }
    samples
}

fn value(samples: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels = labels.to_vec();
    labels.sort();
    let key = format!(
        "{name}{{{}}}",
        labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    samples.get(&key).copied().unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> (String, BTreeMap<String, f64>) {
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let samples = parse_prometheus(&text);
    (text, samples)
}

/// Waits (at most 10 s) until `what` has moved by `by` from `before`.
async fn moved(app: &TestApp, name: &str, labels: &[(&str, &str)], before: f64, by: f64) {
    let start = Instant::now();
    loop {
        let now = value(&scrape(app).await.1, name, labels);
        if now - before == by {
            return;
        }
        assert!(
            now - before < by && start.elapsed() < Duration::from_secs(10),
            "{name}{labels:?} moved by {} instead of {by}",
            now - before
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_metrics_parse_as_prometheus_text_and_move_by_a_scripted_sign_in() {
    let app = TestApp::spawn(Db::Postgres).await;
    let admin = sms_practice(&app, "metrics-clinic").await;
    create_staff(&app, "metrics-clinic", &admin, "lee", None).await;
    let (_, before) = scrape(&app).await;
    let signins = |outcome: &'static str| [("outcome", outcome)];

    // A wrong password, then sam's sign-in: an SMS code, a wrong code, the right one.
    let r = app
        .login("metrics-clinic", "sam", "Not-The-Password-1!")
        .await;
    problem(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let mark = app.outbox_mark();
    let flow = ok_json(app.login("metrics-clinic", "sam", NEW_PASSWORD).await).await;
    assert_eq!(flow["status"], "mfa_required");
    let code = app.code_after(mark, PHONE).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = verify(&app, &flow, "code", wrong).await;
    problem(r, StatusCode::BAD_REQUEST, "mfa_code_invalid").await;
    let done = ok_json(verify(&app, &flow, "code", &code).await).await;
    let token = done["session"]["token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(
            app.get("/v1/auth/session", Some(&token)).await.status(),
            StatusCode::OK
        );
    }
    // lee's temporary password typed wrong five times (the threshold): locked.
    for _ in 0..5 {
        let r = app
            .login("metrics-clinic", "lee", "Wrong-Temporary-9!")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.login("metrics-clinic", "lee", TEMP_PASSWORD).await;
    problem(r, StatusCode::LOCKED, "account_locked").await;
    // A path no route matches, and a route's wrong method.
    let id = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/v1/no-such-thing/{id}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = app
        .client
        .delete(app.url("/v1/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

    let sms_sent = [("channel", "sms"), ("status", "sent")];
    moved(
        &app,
        "gatehouse_codes_sent_total",
        &sms_sent,
        value(&before, "gatehouse_codes_sent_total", &sms_sent),
        1.0,
    )
    .await;
    let (text, after) = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(
        delta("gatehouse_signins_total", &signins("invalid_credentials")),
        6.0
    );
    assert_eq!(
        delta("gatehouse_signins_total", &signins("mfa_required")),
        1.0
    );
    assert_eq!(
        delta("gatehouse_signins_total", &signins("account_locked")),
        1.0
    );
    assert_eq!(
        delta("gatehouse_signins_total", &signins("authenticated")),
        0.0
    );
    assert_eq!(delta("gatehouse_lockouts_total", &[]), 1.0);
    assert_eq!(
        delta(
            "gatehouse_verification_failures_total",
            &[("method", "code"), ("reason", "mfa_code_invalid")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "gatehouse_codes_sent_total",
            &[("channel", "email"), ("status", "sent")]
        ),
        0.0
    );
    // The new session is read from the database once, then from the cache.
    assert_eq!(
        delta(
            "gatehouse_session_cache_lookups_total",
            &[("result", "miss")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "gatehouse_session_cache_lookups_total",
            &[("result", "hit")]
        ),
        2.0
    );
    let session = [
        ("method", "GET"),
        ("route", "/v1/auth/session"),
        ("status", "200"),
    ];
    assert_eq!(
        delta("gatehouse_http_request_duration_seconds_count", &session),
        3.0
    );
    assert_eq!(
        value(
            &after,
            "gatehouse_http_request_duration_seconds_bucket",
            &[
                ("method", "GET"),
                ("route", "/v1/auth/session"),
                ("status", "200"),
                ("le", "+Inf")
            ]
        ),
        value(
            &after,
            "gatehouse_http_request_duration_seconds_count",
            &session
        )
    );
    let unmatched = [
        ("method", "GET"),
        ("route", "(unmatched)"),
        ("status", "404"),
    ];
    assert_eq!(
        delta("gatehouse_http_request_duration_seconds_count", &unmatched),
        1.0
    );
    let wrong_method = [
        ("method", "DELETE"),
        ("route", "/v1/auth/session"),
        ("status", "405"),
    ];
    assert_eq!(
        delta(
            "gatehouse_http_request_duration_seconds_count",
            &wrong_method
        ),
        1.0
    );
    assert!(
        !text.contains(&id.to_string()),
        "a path never becomes a label"
    );
    // Two password checks per sign-in attempt went through the Argon2id pool.
    assert!(
        delta(
            "gatehouse_argon2_queue_seconds_count",
            &[("operation", "verify")]
        ) >= 8.0
    );
    assert!(
        value(
            &after,
            "gatehouse_argon2_duration_seconds_count",
            &[("operation", "verify")]
        ) >= 8.0
    );
    // The job and the provider call.
    assert!(
        delta(
            "gatehouse_job_duration_seconds_count",
            &[("job", "send_code"), ("outcome", "sent")]
        ) >= 1.0
    );
    assert!(delta("gatehouse_job_wait_seconds_count", &[("job", "send_code")]) >= 1.0);
    assert!(
        delta(
            "gatehouse_provider_request_duration_seconds_count",
            &[
                ("operation", "append"),
                ("outcome", "ok"),
                ("provider", "outbox")
            ]
        ) >= 1.0
    );

    // Labels are bounded sets: no user, tenant, flow or destination in them.
    let flow_id = flow["flow_id"].as_str().unwrap();
    let tenant = tenant_id(&app, "metrics-clinic").await;
    for leak in [
        PHONE,
        "2025550147",
        flow_id,
        tenant.as_str(),
        token.as_str(),
    ] {
        assert!(!text.contains(leak), "{leak} is in /metrics");
    }
    for key in after.keys() {
        for leak in ["\"sam\"", "\"lee\"", "metrics-clinic"] {
            assert!(!key.contains(leak), "{leak} is a label value: {key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_log_lines_of_full_sign_ins_carry_the_trace_and_hold_no_secret() {
    let app = TestApp::spawn_with(
        Db::Sqlite,
        Options {
            traced: true,
            ..Options::default()
        },
    )
    .await;
    let tel = telemetry(true);
    let admin = sms_practice(&app, "log-clinic").await;

    // sam signs in from the EHR, with a wrong code first, remembers the device, checks
    // the session, signs out.
    let mark = app.outbox_mark();
    let flow = ok_json(login_traced(&app, "log-clinic", "sam", NEW_PASSWORD).await).await;
    let code = app.code_after(mark, PHONE).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    problem(
        verify(&app, &flow, "code", wrong).await,
        StatusCode::BAD_REQUEST,
        "mfa_code_invalid",
    )
    .await;
    let done = ok_json(
        app.post(
            &flow_path(&flow, "verify"),
            None,
            &json!({"method": "code", "code": code, "remember_device": true}),
        )
        .await,
    )
    .await;
    assert_eq!(done["status"], "authenticated", "{done}");
    let token = done["session"]["token"].as_str().unwrap().to_owned();
    let device = done["device_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/v1/auth/session", Some(&token)).await.status(),
        StatusCode::OK
    );
    let r = app.post("/v1/auth/logout", Some(&token), &json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The worker's line about the send is written after the outbox line: wait for it.
    let start = Instant::now();
    while !tel.log_text().contains("code sent") || start.elapsed() < Duration::from_millis(200) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no 'code sent' line"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let text = tel.log_text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        for key in ["timestamp", "level", "target"] {
            assert!(l[key].is_string(), "{key} missing: {l}");
        }
    }
    // The access line of the EHR's request and the worker's send carry the EHR's trace.
    let login = lines
        .iter()
        .find(|l| {
            l["target"] == "gatehouse::http"
                && l["route"] == "/v1/auth/login"
                && l["trace_id"] == EHR_TRACE
        })
        .unwrap_or_else(|| panic!("no access line of the traced login:\n{text}"));
    assert_eq!(login["status"], 200);
    assert_eq!(login["span"]["name"], "http.request");
    assert_eq!(login["span"]["http.route"], "/v1/auth/login");
    assert_eq!(login["span_id"].as_str().map(str::len), Some(16));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "code sent" && l["trace_id"] == EHR_TRACE),
        "the worker's line joins the trace:\n{text}"
    );

    // No password, code, token, flow id or full destination in any line.
    let codes: Vec<String> = app
        .outbox_lines()
        .iter()
        .map(|l| code_in(l["body"].as_str().unwrap()))
        .collect();
    assert!(codes.len() >= 4, "{codes:?}");
    let flow_id = flow["flow_id"].as_str().unwrap();
    let secrets: Vec<&str> = vec![
        NEW_PASSWORD,
        TEMP_PASSWORD,
        "Not-The-Password",
        token.as_str(),
        admin.as_str(),
        device.as_str(),
        flow_id,
        PHONE,
        "2025550147",
        "sam@log-clinic.example.com",
        "admin@log-clinic.example.com",
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} is in the logs:\n{text}");
    }
    for code in &codes {
        assert!(
            !has_number(&text, code),
            "code {code} is in the logs:\n{text}"
        );
    }
}

/// Whether `digits` stands alone in `text` (not inside a longer number, an id or the
/// fraction of a timestamp).
fn has_number(text: &str, digits: &str) -> bool {
    text.match_indices(digits).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}
