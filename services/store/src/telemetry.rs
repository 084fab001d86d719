//! Gatehouse's metric instruments and the trace context that travels inside jobs (A2).
//! (What only the HTTP layer sees, request durations and the answers to sign-ins and
//! codes, is declared beside its measurement in the API crate.)
//!
//! The instruments come from the global meter provider, which the binary installs
//! (gatehouse-telemetry) before anything records; without one they record nothing.
//! Labels are bounded sets (outcomes, channels, route templates): never a user id, a
//! tenant or a destination. Names follow `gatehouse_<thing>_<unit>`; counters get their
//! `_total` suffix in the Prometheus text.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use opentelemetry::propagation::{Extractor, Injector};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Histogram bounds for durations, in seconds: half a millisecond to half a minute.
pub const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every instrument Gatehouse records.
#[derive(Debug)]
pub struct Metrics {
    /// `gatehouse_lockouts_total`
    pub lockouts: Counter<u64>,
    /// `gatehouse_codes_sent_total{channel,status}`
    pub codes_sent: Counter<u64>,
    /// `gatehouse_codes_resent_total{channel}`
    pub codes_resent: Counter<u64>,
    /// `gatehouse_queue_depth{channel}`
    pub queue_depth: Gauge<u64>,
    /// `gatehouse_job_wait_seconds{job}`
    pub job_wait: Histogram<f64>,
    /// `gatehouse_job_duration_seconds{job,outcome}`
    pub job_duration: Histogram<f64>,
    /// `gatehouse_provider_request_duration_seconds{provider,operation,outcome}`
    pub provider_duration: Histogram<f64>,
    /// `gatehouse_provider_errors_total{provider,operation,kind}`
    pub provider_errors: Counter<u64>,
    /// `gatehouse_argon2_queue_seconds{operation}`
    pub argon2_queue: Histogram<f64>,
    /// `gatehouse_argon2_duration_seconds{operation}`
    pub argon2_duration: Histogram<f64>,
    /// `gatehouse_session_cache_lookups_total{result}`
    pub session_cache: Counter<u64>,
}

impl Metrics {
    fn new(meter: &Meter) -> Self {
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(SECONDS.to_vec())
                .build()
        };
        Self {
            lockouts: meter
                .u64_counter("gatehouse_lockouts")
                .with_description("Accounts locked by wrong passwords reaching the practice's threshold.")
                .build(),
            codes_sent: meter
                .u64_counter("gatehouse_codes_sent")
                .with_description("Send attempts of codes and notices by channel (email, sms) and status: sent, failed (final), retrying (transient failure), opted_out (refused before the provider).")
                .build(),
            codes_resent: meter
                .u64_counter("gatehouse_codes_resent")
                .with_description("Deliveries sent again after an attempt whose outcome is unknown (its worker stopped between the provider call and its record): the message may have gone out twice.")
                .build(),
            queue_depth: meter
                .u64_gauge("gatehouse_queue_depth")
                .with_description("Deliveries waiting to be sent, by channel (read by the workers' periodic job).")
                .build(),
            job_wait: seconds(
                "gatehouse_job_wait_seconds",
                "Time from a job's enqueue to the start of its run.",
            ),
            job_duration: seconds(
                "gatehouse_job_duration_seconds",
                "Time a job ran, retries included, by job and outcome.",
            ),
            provider_duration: seconds(
                "gatehouse_provider_request_duration_seconds",
                "Calls to the delivery providers (ses, sns, outbox) by operation and outcome.",
            ),
            provider_errors: meter
                .u64_counter("gatehouse_provider_errors")
                .with_description("Failed provider calls by provider, operation and kind (transient, permanent).")
                .build(),
            argon2_queue: seconds(
                "gatehouse_argon2_queue_seconds",
                "Time a password verify or hash waited for a thread of the Argon2id pool.",
            ),
            argon2_duration: seconds(
                "gatehouse_argon2_duration_seconds",
                "Time an Argon2id verify or hash took on its thread.",
            ),
            session_cache: meter
                .u64_counter("gatehouse_session_cache_lookups")
                .with_description("Session checks answered from the in-process cache (result=hit) or the database (result=miss).")
                .build(),
        }
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The instruments, made from the global meter provider at first use.
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(|| Metrics::new(&opentelemetry::global::meter("gatehouse")))
}

/// Seconds as a histogram records them.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A label.
pub fn label(key: &'static str, value: &'static str) -> KeyValue {
    KeyValue::new(key, value)
}

tokio::task_local! {
    /// The span of the HTTP request being served, wherever in its handling the code is.
    static REQUEST_SPAN: tracing::Span;
}

/// Runs `fut` (a request's handling) with `span` as its request span, for
/// [`record_tenant`].
pub async fn with_request_span<F: std::future::Future>(span: tracing::Span, fut: F) -> F::Output {
    REQUEST_SPAN.scope(span, fut).await
}

/// Names the tenant on the span of the request being served (`tenant.id`); nothing
/// outside a request.
pub fn record_tenant(tenant: gatehouse_domain::ids::TenantId) {
    let _ = REQUEST_SPAN.try_with(|s| {
        s.record("tenant.id", tracing::field::display(tenant.0));
    });
}

struct Carrier(HashMap<String, String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The W3C `traceparent` of the current span, to carry inside a job; `None` when
/// tracing is off.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = Carrier(HashMap::new());
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.0.remove("traceparent")
}

/// Makes `span` a child of the trace a job carried (no-op without one).
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let carrier = Carrier(HashMap::from([("traceparent".to_owned(), tp.to_owned())]));
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    // Fails only when the span is not traced (tracing off): nothing to continue then.
    let _ = span.set_parent(cx);
}
