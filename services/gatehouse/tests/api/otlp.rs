//! A2 over the wire: the real binaries (`serve --no-workers` and `worker`, on
//! PostgreSQL, Redis and the AWS emulator) export their spans and metrics over OTLP to a
//! receiver in this test, and one trace runs from the EHR's sign-in request through the
//! worker process to the SNS call.

use crate::cli::{Server, free_port};
use crate::processes::{NURSE_PHONE, configured, next_code, random_key, sms_to, verified_sender};
use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const EHR_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const EHR_SPAN: &str = "b7ad6b7169203331";

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    resource: BTreeMap<String, String>,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i32,
    attrs: BTreeMap<String, String>,
}

/// A number data point as the receiver got it.
#[derive(Debug, Clone)]
struct Point {
    service: String,
    metric: String,
    attrs: BTreeMap<String, String>,
    value: f64,
}

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    points: Vec<Point>,
    requests: usize,
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

fn service(resource: &Option<opentelemetry_proto::tonic::resource::v1::Resource>) -> String {
    resource
        .as_ref()
        .map(|r| attrs(&r.attributes))
        .and_then(|a| a.get("service.name").cloned())
        .unwrap_or_default()
}

async fn traces(body: web::Bytes, got: web::Data<Mutex<Received>>) -> HttpResponse {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    got_traces(&mut got.lock().unwrap(), req);
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

fn got_traces(got: &mut Received, req: ExportTraceServiceRequest) {
    got.requests += 1;
    for rs in req.resource_spans {
        let svc = service(&rs.resource);
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attrs(&r.attributes))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                got.spans.push(Span {
                    service: svc.clone(),
                    resource: resource.clone(),
                    trace_id: hex::encode(&s.trace_id),
                    span_id: hex::encode(&s.span_id),
                    parent: hex::encode(&s.parent_span_id),
                    name: s.name.clone(),
                    kind: s.kind,
                    attrs: attrs(&s.attributes),
                });
            }
        }
    }
}

async fn metrics(body: web::Bytes, got: web::Data<Mutex<Received>>) -> HttpResponse {
    let Ok(req) = ExportMetricsServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    got_metrics(&mut got.lock().unwrap(), req);
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportMetricsServiceResponse::default().encode_to_vec())
}

fn got_metrics(got: &mut Received, req: ExportMetricsServiceRequest) {
    got.requests += 1;
    for rm in req.resource_metrics {
        let svc = service(&rm.resource);
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                let points = match &m.data {
                    Some(metric::Data::Sum(s)) => s.data_points.clone(),
                    Some(metric::Data::Gauge(g)) => g.data_points.clone(),
                    _ => Vec::new(),
                };
                for p in points {
                    let value = match p.value {
                        Some(number_data_point::Value::AsInt(i)) => i as f64,
                        Some(number_data_point::Value::AsDouble(d)) => d,
                        None => f64::NAN,
                    };
                    got.points.push(Point {
                        service: svc.clone(),
                        metric: m.name.clone(),
                        attrs: attrs(&p.attributes),
                        value,
                    });
                }
            }
        }
    }
}

/// One gRPC call's answer: the message framed (no compression), then `grpc-status: 0`.
fn grpc_answer(
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    message: Vec<u8>,
) -> Result<(), h2::Error> {
    let head = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let mut stream = respond.send_response(head, false)?;
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    stream.send_data(frame.into(), false)?;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    stream.send_trailers(trailers)
}

/// Serves one HTTP/2 connection of OTLP/gRPC exports (TraceService and MetricsService).
async fn grpc_connection(socket: tokio::net::TcpStream, got: web::Data<Mutex<Received>>) {
    let Ok(mut conn) = h2::server::handshake(socket).await else {
        return;
    };
    while let Some(Ok((request, respond))) = conn.accept().await {
        let got = got.clone();
        tokio::spawn(async move {
            let path = request.uri().path().to_owned();
            let mut body = request.into_body();
            let mut buf = Vec::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                buf.extend_from_slice(&chunk);
            }
            // A gRPC message: a compression flag, its length, the protobuf.
            assert!(
                buf.len() >= 5 && buf[0] == 0,
                "an uncompressed gRPC message"
            );
            let message = &buf[5..];
            let answer = match path.as_str() {
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => {
                    got_traces(
                        &mut got.lock().unwrap(),
                        ExportTraceServiceRequest::decode(message).unwrap(),
                    );
                    ExportTraceServiceResponse::default().encode_to_vec()
                }
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => {
                    got_metrics(
                        &mut got.lock().unwrap(),
                        ExportMetricsServiceRequest::decode(message).unwrap(),
                    );
                    ExportMetricsServiceResponse::default().encode_to_vec()
                }
                other => panic!("unexpected gRPC call {other}"),
            };
            let _ = grpc_answer(respond, answer);
        });
    }
}

/// An OTLP/HTTP receiver (protobuf) on 127.0.0.1.
struct Receiver {
    url: String,
    got: web::Data<Mutex<Received>>,
}

impl Receiver {
    fn start() -> Receiver {
        let got = web::Data::new(Mutex::new(Received::default()));
        let data = got.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route("/v1/traces", web::post().to(traces))
                .route("/v1/metrics", web::post().to(metrics))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            got,
        }
    }

    /// The same receiver over gRPC (HTTP/2 without TLS, as a collector's port 4317).
    async fn start_grpc() -> Receiver {
        let got = web::Data::new(Mutex::new(Received::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = got.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(grpc_connection(socket, data.clone()));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            got,
        }
    }

    /// Waits (at most 20 s) for a span `pred` accepts.
    async fn span(&self, what: &str, pred: impl Fn(&Span) -> bool) -> Span {
        let start = Instant::now();
        loop {
            if let Some(s) = self.got.lock().unwrap().spans.iter().find(|s| pred(s)) {
                return s.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {what} span arrived; got: {:#?}",
                self.got
                    .lock()
                    .unwrap()
                    .spans
                    .iter()
                    .map(|s| format!("{} {} {}", s.service, s.trace_id, s.name))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most 20 s) for a data point of `metric` from `service` with `labels`
    /// whose value reaches `at_least`.
    async fn point(&self, service: &str, metric: &str, labels: &[(&str, &str)], at_least: f64) {
        let start = Instant::now();
        loop {
            let found = self.got.lock().unwrap().points.iter().any(|p| {
                p.service == service
                    && p.metric == metric
                    && labels
                        .iter()
                        .all(|(k, v)| p.attrs.get(*k).map(String::as_str) == Some(*v))
                    && p.value >= at_least
            });
            if found {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {metric}{labels:?} >= {at_least} from {service}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The variables an operator sets to send telemetry to a collector.
fn exporting(c: &mut std::process::Command, receiver: &Receiver) {
    c.env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "300")
        .env("GATEHOUSE_LOG_FORMAT", "json");
}

async fn post_traced(client: &reqwest::Client, url: String, body: Value) -> reqwest::Response {
    client
        .post(url)
        .header("traceparent", format!("00-{EHR_TRACE}-{EHR_SPAN}-01"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_one_trace_from_the_ehr_request_through_the_worker_process_to_sns_arrives_over_otlp() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let db_url = gatehouse_testkit::fresh_postgres_schema().await;
    let prefix = format!("gh-test-{}", uuid::Uuid::new_v4().simple());
    let (key, from) = (random_key(), verified_sender().await);
    let client = reqwest::Client::new();

    let port = free_port();
    let mut api = configured(dir.path(), &db_url, &prefix, &key, &from);
    exporting(&mut api, &receiver);
    api.env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
        .args(["serve", "--no-workers", "--demo"]);
    let mut api = Server::spawn(api, port);
    api.wait_ready(&client).await;
    let mut worker = configured(dir.path(), &db_url, &prefix, &key, &from);
    exporting(&mut worker, &receiver);
    let probe = format!("127.0.0.1:{}", free_port());
    worker
        .env("GATEHOUSE_WORKER_LISTEN", &probe)
        .args(["worker", "--no-migrate"]);
    let mut worker = Server::spawn(worker, 0);
    worker
        .wait_log("gatehouse worker is ready", Duration::from_secs(20))
        .await;
    let base = api.base.clone();

    // The nurse signs in from the EHR: the code goes out by SMS from the worker process;
    // she types it wrong once, then right.
    let seen = sms_to(&client, NURSE_PHONE).await.len();
    let r = post_traced(
        &client,
        format!("{base}/v1/auth/login"),
        json!({"company": "demo-clinic", "username": "nurse.joy", "password": "Quiet-Meadow-2026!"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let flow: Value = r.json().await.unwrap();
    assert_eq!(flow["status"], "mfa_required", "{flow}");
    let code = next_code("SMS", seen, || sms_to(&client, NURSE_PHONE)).await;
    let verify = format!(
        "{base}/v1/auth/flows/{}/verify",
        flow["flow_id"].as_str().unwrap()
    );
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = post_traced(
        &client,
        verify.clone(),
        json!({"method": "code", "code": wrong}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post_traced(&client, verify, json!({"method": "code", "code": code})).await;
    assert_eq!(r.status(), StatusCode::OK);

    // In the API process: the request continues the EHR's trace and queues the job.
    let login = receiver
        .span("login request", |s| {
            s.name == "POST /v1/auth/login" && s.trace_id == EHR_TRACE
        })
        .await;
    assert_eq!(login.service, "gatehouse-api");
    assert_eq!(login.parent, EHR_SPAN);
    assert_eq!(login.kind, SpanKind::Server as i32);
    assert_eq!(login.attrs["http.response.status_code"], "200");
    assert!(
        uuid::Uuid::parse_str(&login.attrs["tenant.id"]).is_ok(),
        "{login:?}"
    );
    let enqueue = receiver
        .span("enqueue", |s| {
            s.name == "job.enqueue" && s.trace_id == EHR_TRACE
        })
        .await;
    assert_eq!(enqueue.service, "gatehouse-api");
    assert_eq!(enqueue.kind, SpanKind::Producer as i32);

    // In the worker process: the job's run, a child of the enqueue, and the SNS call in it.
    let job = receiver
        .span("job", |s| {
            s.name == "send_code process" && s.trace_id == EHR_TRACE
        })
        .await;
    assert_eq!(job.service, "gatehouse-worker");
    assert_eq!(job.parent, enqueue.span_id);
    assert_eq!(job.kind, SpanKind::Consumer as i32);
    let sns = receiver
        .span("SNS call", |s| {
            s.name == "sns Publish" && s.trace_id == EHR_TRACE
        })
        .await;
    assert_eq!(sns.service, "gatehouse-worker");
    assert_eq!(sns.kind, SpanKind::Client as i32);
    assert_eq!(sns.attrs["provider"], "sns");
    let within_job = {
        let got = receiver.got.lock().unwrap();
        let mut parent = sns.parent.clone();
        let mut found = false;
        for _ in 0..16 {
            if parent == job.span_id {
                found = true;
                break;
            }
            match got.spans.iter().find(|s| s.span_id == parent) {
                Some(p) => parent = p.parent.clone(),
                None => break,
            }
        }
        found
    };
    assert!(within_job, "the SNS call is inside the job's run");

    // The failed step is in the same trace, with its status.
    let failed = receiver
        .span("wrong code", |s| {
            s.name == "POST /v1/auth/flows/{flow_id}/verify"
                && s.attrs.get("http.response.status_code").map(String::as_str) == Some("400")
        })
        .await;
    assert_eq!(failed.trace_id, EHR_TRACE);

    // Metrics: codes sent per channel from the worker, sign-ins and failures from the API.
    receiver
        .point(
            "gatehouse-worker",
            "gatehouse_codes_sent",
            &[("channel", "sms"), ("status", "sent")],
            1.0,
        )
        .await;
    receiver
        .point(
            "gatehouse-api",
            "gatehouse_signins",
            &[("outcome", "mfa_required")],
            1.0,
        )
        .await;
    receiver
        .point(
            "gatehouse-api",
            "gatehouse_verification_failures",
            &[("method", "code"), ("reason", "mfa_code_invalid")],
            1.0,
        )
        .await;

    // The worker process also serves its own /metrics (for Prometheus) and /healthz.
    let r = client
        .get(format!("http://{probe}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = client
        .get(format!("http://{probe}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l == r#"gatehouse_codes_sent_total{channel="sms",status="sent"} 1"#),
        "{text}"
    );
    assert!(text.contains("gatehouse_provider_request_duration_seconds_count{operation=\"Publish\",outcome=\"ok\",provider=\"sns\"}"), "{text}");

    // The API's log line of the request names the same trace.
    let log = api.stderr();
    assert!(
        log.lines().any(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["route"] == "/v1/auth/login" && v["trace_id"] == EHR_TRACE)
        }),
        "{log}"
    );

    // Both stop cleanly on SIGTERM, flushing what they hold.
    assert!(
        worker.terminate(Duration::from_secs(15)),
        "{}",
        worker.stderr()
    );
    assert!(api.terminate(Duration::from_secs(15)), "{}", api.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_over_grpc_with_the_operators_service_name_and_resource_attributes() {
    let receiver = Receiver::start_grpc().await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let port = free_port();
    let mut c = crate::cli::gatehouse(dir.path());
    c.env(
        "GATEHOUSE_DATABASE_URL",
        format!("sqlite://{}?mode=rwc", dir.path().join("gh.db").display()),
    )
    .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
    .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    .env("OTEL_SERVICE_NAME", "clinic-gatehouse")
    .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    .env("OTEL_BSP_SCHEDULE_DELAY", "100")
    .env("OTEL_METRIC_EXPORT_INTERVAL", "300")
    .args(["serve", "--demo"]);
    let mut api = Server::spawn(c, port);
    api.wait_ready(&client).await;

    // The admin's sign-in: the email code goes to the outbox from the in-process worker.
    let r = post_traced(
        &client,
        format!("{}/v1/auth/login", api.base),
        json!({"company": "demo-clinic", "username": "admin", "password": "Harbor-Lights-2026!"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let login = receiver
        .span("login request", |s| {
            s.name == "POST /v1/auth/login" && s.trace_id == EHR_TRACE
        })
        .await;
    assert_eq!(login.service, "clinic-gatehouse");
    assert_eq!(login.resource["deployment.environment"], "test");
    assert_eq!(login.resource["gatehouse.process"], "api");
    assert_eq!(login.parent, EHR_SPAN);
    let provider = receiver
        .span("provider call", |s| {
            s.name == "outbox append" && s.trace_id == EHR_TRACE
        })
        .await;
    assert_eq!(provider.kind, SpanKind::Client as i32);
    receiver
        .point(
            "clinic-gatehouse",
            "gatehouse_signins",
            &[("outcome", "mfa_required")],
            1.0,
        )
        .await;
    receiver
        .point(
            "clinic-gatehouse",
            "gatehouse_codes_sent",
            &[("channel", "email"), ("status", "sent")],
            1.0,
        )
        .await;
    assert!(api.terminate(Duration::from_secs(15)), "{}", api.stderr());
}
