//! Request telemetry (A2): one span per HTTP request, named by its route template and
//! continuing the caller's W3C `traceparent` (an EHR application's own trace); its
//! duration in `gatehouse_http_request_duration_seconds`; one access-log line.
//!
//! The route template comes from the matched resource after routing (each carries it as
//! app data), so no request is matched against the routes twice.
//!
//! Only the route template is recorded, never the path: a flow id in a path lets its
//! holder finish that sign-in, so it must reach neither logs nor traces.

use crate::state::ApiState;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::web;
use futures_util::future::LocalBoxFuture;
use gatehouse_store::telemetry::{SECONDS, secs};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The route template of a resource (its app data, set by `routes::resource`).
#[derive(Debug, Clone)]
pub(crate) struct Route(pub(crate) Arc<str>);

/// The instruments only the HTTP layer can measure, from the global meter provider at
/// first use (the others are the store's, `gatehouse_store::telemetry`).
struct HttpMetrics {
    /// `gatehouse_http_request_duration_seconds{method,route,status}`
    duration: Histogram<f64>,
    /// `gatehouse_signins_total{outcome}`
    signins: Counter<u64>,
    /// `gatehouse_verification_failures_total{method,reason}`
    verification_failures: Counter<u64>,
}

fn metrics() -> &'static HttpMetrics {
    static METRICS: OnceLock<HttpMetrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("gatehouse");
        HttpMetrics {
            duration: meter
                .f64_histogram("gatehouse_http_request_duration_seconds")
                .with_unit("s")
                .with_description("HTTP requests by method, route template and status.")
                .with_boundaries(SECONDS.to_vec())
                .build(),
            signins: meter
                .u64_counter("gatehouse_signins")
                .with_description("Sign-in attempts (POST /v1/auth/login) by outcome: the flow's status after a right password (authenticated, mfa_required, ...), else the refusal's error code (invalid_credentials, account_locked, ...).")
                .build(),
            verification_failures: meter
                .u64_counter("gatehouse_verification_failures")
                .with_description("Second-factor codes refused, by method (code, totp, recovery_code) and reason (mfa_code_invalid, mfa_code_expired, mfa_code_exhausted).")
                .build(),
        }
    })
}

/// What requests that matched no route are labelled.
const UNMATCHED: &str = "(unmatched)";

/// The middleware; wrap the whole app in it (`App::new().wrap(RequestTelemetry)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTelemetry;

impl<S, B> Transform<S, ServiceRequest> for RequestTelemetry
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestTelemetryService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestTelemetryService {
            service: Rc::new(service),
        }))
    }
}

/// The middleware's service.
pub struct RequestTelemetryService<S> {
    service: Rc<S>,
}

/// Header lookups for the propagator.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The method as a label: the standard ones, else `_OTHER` (a client can send any token,
/// and labels must stay a bounded set).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}

impl<S, B> Service<ServiceRequest> for RequestTelemetryService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let method = method_label(req.method());
        // Named by the method until routing tells the route (as the semantic conventions
        // name a server span whose route is not known yet).
        let span = tracing::info_span!(
            "http.request",
            otel.name = method,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = method,
            http.route = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            tenant.id = tracing::field::Empty,
        );
        if !span.is_disabled() {
            let parent = opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&Headers(req.headers()))
            });
            // Fails only when the span is not traced.
            let _ = span.set_parent(parent);
        }
        let client = req
            .app_data::<web::Data<ApiState>>()
            .and_then(|st| st.client_ip(req.request()));
        let started = Instant::now();
        let fut = span.in_scope(|| self.service.call(req));
        Box::pin(async move {
            let result = gatehouse_store::telemetry::with_request_span(
                span.clone(),
                fut.instrument(span.clone()),
            )
            .await;
            let (status, route) = match &result {
                Ok(res) => (
                    res.status(),
                    res.request().app_data::<Route>().map(|r| r.0.clone()),
                ),
                Err(e) => (e.as_response_error().status_code(), None),
            };
            let route: Arc<str> = route.unwrap_or_else(|| Arc::from(UNMATCHED));
            let elapsed = started.elapsed();
            span.record("http.route", &*route);
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
            if !span.is_disabled() {
                span.context()
                    .span()
                    .update_name(format!("{method} {route}"));
            }
            metrics().duration.record(
                secs(elapsed),
                &[
                    KeyValue::new("method", method),
                    KeyValue::new("route", opentelemetry::StringValue::from(route.clone())),
                    KeyValue::new("status", i64::from(status.as_u16())),
                ],
            );
            let _entered = span.enter();
            tracing::info!(
                target: "gatehouse::http",
                method,
                route = &*route,
                status = status.as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                client = client.map(tracing::field::display),
                "request"
            );
            result
        })
    }
}

/// Counts a sign-in attempt by its outcome: the flow's status, else the refusal's code.
pub(crate) fn count_signin<T>(
    result: &Result<T, crate::error::ApiError>,
    status: impl Fn(&T) -> &'static str,
) {
    let outcome = match result {
        Ok(v) => status(v),
        Err(e) => e.code(),
    };
    metrics()
        .signins
        .add(1, &[KeyValue::new("outcome", outcome)]);
}

/// Counts a refused second-factor code (wrong, expired, too many tries).
pub(crate) fn count_verification_failure(method: &str, e: &crate::error::ApiError) {
    let reason = e.code();
    if !matches!(
        reason,
        "mfa_code_invalid" | "mfa_code_expired" | "mfa_code_exhausted"
    ) {
        return;
    }
    let method = match method {
        "code" => "code",
        "totp" => "totp",
        "recovery_code" => "recovery_code",
        _ => "other",
    };
    metrics().verification_failures.add(
        1,
        &[
            KeyValue::new("method", method),
            KeyValue::new("reason", reason),
        ],
    );
}
