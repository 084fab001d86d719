//! Gatehouse's telemetry (A2): log lines, OpenTelemetry traces and metrics.
//!
//! - **Logs** go to stderr as JSON lines or human-readable text. With tracing on, each line
//!   carries the `trace_id` and `span_id` of the span it was written in.
//! - **Traces** are exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, honouring the standard `OTEL_*`
//!   variables: protocol (`grpc`, `http/protobuf`, `http/json`), headers, timeout,
//!   service name, resource attributes, sampler, batch sizes, `OTEL_SDK_DISABLED` and
//!   `OTEL_TRACES_EXPORTER=none`. Unset, no tracing layer is installed at all: spans are
//!   never built, so tracing costs nothing.
//! - **Metrics** always go through the OpenTelemetry SDK, read on demand for
//!   `GET /metrics` ([`PrometheusText`]) and, when an endpoint is set, pushed over OTLP
//!   every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (default 60 s).
//!
//! Exports run on a small runtime of their own, so neither a slow collector nor the
//! process's shutdown can block a request.

mod json_log;
mod otlp_http;
pub mod prometheus;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanProcessor};
pub use prometheus::PrometheusText;
use std::time::Duration;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Text for a terminal.
    Pretty,
}

/// What to set up.
pub struct Settings {
    /// `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
    pub service_name: String,
    /// Which part of Gatehouse this process runs (`api`, `worker`, ...): the resource
    /// attribute `gatehouse.process`.
    pub process: String,
    pub log_format: LogFormat,
    /// The log filter (`RUST_LOG` syntax); `None`: `RUST_LOG`, else `info`.
    pub log_filter: Option<String>,
    /// Where log lines go; `None`: stderr.
    pub log_writer: Option<BoxMakeWriter>,
    /// Whether the `OTEL_*` variables are read to export over OTLP.
    pub otlp_from_env: bool,
    /// Another span processor, beside any OTLP exporter (tests use an in-memory one).
    /// When set, tracing is on even without an OTLP endpoint.
    pub span_processor: Option<Box<dyn SpanProcessor>>,
}

impl Settings {
    /// The settings of a process that reads everything from the environment.
    pub fn from_env(service_name: &str, process: &str, log_format: LogFormat) -> Self {
        Self {
            service_name: service_name.to_owned(),
            process: process.to_owned(),
            log_format,
            log_filter: None,
            log_writer: None,
            otlp_from_env: true,
            span_processor: None,
        }
    }
}

/// Set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    #[error("log filter: {0}")]
    Filter(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    #[error("telemetry runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The installed telemetry. Keep it for the life of the process and call
/// [`Telemetry::shutdown`] at the end, which sends what is still buffered.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: SdkMeterProvider,
    prometheus: PrometheusText,
    otlp: Option<OtlpTargets>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Where OTLP goes, as configured (for the start-up log line).
#[derive(Debug, Clone)]
struct OtlpTargets {
    traces: bool,
    metrics: bool,
    protocol: Protocol,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("tracing", &self.tracer_provider.is_some())
            .field("otlp", &self.otlp)
            .finish()
    }
}

impl Telemetry {
    /// The text of `GET /metrics`.
    pub fn prometheus(&self) -> PrometheusText {
        self.prometheus.clone()
    }

    /// Whether spans are built (an exporter or processor is configured).
    pub fn tracing(&self) -> bool {
        self.tracer_provider.is_some()
    }

    /// Logs where telemetry goes; call once the subscriber is in place.
    pub fn log_configuration(&self) {
        match &self.otlp {
            Some(o) => tracing::info!(
                traces = o.traces,
                metrics = o.metrics,
                protocol = o.protocol.as_str(),
                "exporting telemetry over OTLP"
            ),
            None => tracing::info!(
                "no OTLP endpoint configured: traces are off, metrics are served at /metrics"
            ),
        }
    }

    /// Flushes and stops the exporters (bounded: a collector that is gone costs at most
    /// a few seconds). Safe to call from async code.
    pub fn shutdown(mut self) {
        let tracer = self.tracer_provider.take();
        let meter = self.meter_provider.clone();
        let runtime = self.runtime.take();
        // The SDK's shutdown blocks until the exporters answer; on a thread of its own,
        // so that a caller on an async runtime is never blocked.
        let stopper = std::thread::spawn(move || {
            if let Some(t) = tracer
                && let Err(e) = t.shutdown_with_timeout(Duration::from_secs(5))
            {
                eprintln!("telemetry: flushing traces failed: {e}");
            }
            if let Err(e) = meter.shutdown_with_timeout(Duration::from_secs(5)) {
                eprintln!("telemetry: flushing metrics failed: {e}");
            }
            if let Some(rt) = runtime {
                rt.shutdown_timeout(Duration::from_secs(1));
            }
        });
        let _ = stopper.join();
    }
}

/// OTLP's wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }

    /// The signal's protocol variable, else the general one, else the specification's
    /// default (`http/protobuf`).
    fn from_env(signal_var: &str) -> Result<Self, TelemetryError> {
        let value = env(signal_var).or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
        match value.as_deref().map(str::trim) {
            None | Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
            Some("grpc") => Ok(Protocol::Grpc),
            Some("http/json") => Ok(Protocol::HttpJson),
            Some(other) => Err(TelemetryError::Exporter(format!(
                "{signal_var} / OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol '{other}' (grpc, http/protobuf or http/json)"
            ))),
        }
    }

    fn otlp(self) -> opentelemetry_otlp::Protocol {
        match self {
            Protocol::Grpc => opentelemetry_otlp::Protocol::Grpc,
            Protocol::HttpProtobuf => opentelemetry_otlp::Protocol::HttpBinary,
            Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether a signal is exported: an endpoint is set (general or the signal's own), the
/// SDK is not disabled and the signal's exporter is not `none`.
fn exports(signal_endpoint: &str, exporter_var: &str) -> bool {
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let none = env(exporter_var).is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    let endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() || env(signal_endpoint).is_some();
    endpoint && !disabled && !none
}

fn resource(settings: &Settings) -> Resource {
    let mut builder = Resource::builder();
    // The SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours is the default.
    if env("OTEL_SERVICE_NAME").is_none() {
        builder = builder.with_service_name(settings.service_name.clone());
    }
    builder
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("gatehouse.process", settings.process.clone()),
        ])
        .build()
}

/// The span processor given in [`Settings`], boxed.
#[derive(Debug)]
struct Boxed(Box<dyn SpanProcessor>);

impl SpanProcessor for Boxed {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx)
    }
    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        self.0.on_end(span)
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource)
    }
}

fn span_exporter(
    protocol: Protocol,
    runtime: &tokio::runtime::Runtime,
) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig};
    let built = match protocol {
        Protocol::Grpc => {
            // tonic's channel runs its connection on the runtime it is built in.
            let _entered = runtime.enter();
            SpanExporter::builder()
                .with_tonic()
                .with_protocol(protocol.otlp())
                .build()
        }
        Protocol::HttpProtobuf | Protocol::HttpJson => SpanExporter::builder()
            .with_http()
            .with_protocol(protocol.otlp())
            .with_http_client(otlp_http::Client::new(runtime.handle().clone()))
            .build(),
    };
    built.map_err(|e| TelemetryError::Exporter(e.to_string()))
}

fn metric_exporter(
    protocol: Protocol,
    runtime: &tokio::runtime::Runtime,
) -> Result<opentelemetry_otlp::MetricExporter, TelemetryError> {
    use opentelemetry_otlp::{MetricExporter, WithExportConfig, WithHttpConfig};
    let built = match protocol {
        Protocol::Grpc => {
            let _entered = runtime.enter();
            MetricExporter::builder()
                .with_tonic()
                .with_protocol(protocol.otlp())
                .build()
        }
        Protocol::HttpProtobuf | Protocol::HttpJson => MetricExporter::builder()
            .with_http()
            .with_protocol(protocol.otlp())
            .with_http_client(otlp_http::Client::new(runtime.handle().clone()))
            .build(),
    };
    built.map_err(|e| TelemetryError::Exporter(e.to_string()))
}

/// Where spans go to the tracing backend: Gatehouse's own spans (HTTP requests, Argon2,
/// jobs, provider calls) and the database calls, at `info` and above.
fn span_targets() -> Targets {
    Targets::new()
        .with_target("gatehouse", LevelFilter::INFO)
        .with_target("sea_orm", LevelFilter::INFO)
}

/// Targets whose `trace` lines are never written, whatever the filter says: at `trace`
/// the AWS SDK writes whole requests, whose bodies hold the codes and the phone numbers
/// they go to.
const NO_TRACE_LINES: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_sdk_sns",
    "aws_sdk_sesv2",
];

/// Whether a line may be written at all (see [`NO_TRACE_LINES`]).
fn writable(m: &tracing::Metadata<'_>) -> bool {
    *m.level() != tracing::Level::TRACE || !NO_TRACE_LINES.iter().any(|t| m.target().starts_with(t))
}

/// The log filter: `given`, else `RUST_LOG`, else `info` (the OpenTelemetry SDK at
/// `warn`: it says "provider set" at info; its export failures are errors). Combined
/// with [`writable`] where it is used.
fn log_filter(given: Option<&str>) -> Result<EnvFilter, TelemetryError> {
    let text = match given {
        Some(f) => f.to_owned(),
        None => std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "info,opentelemetry=warn".to_owned()),
    };
    EnvFilter::try_new(&text).map_err(|e| TelemetryError::Filter(format!("RUST_LOG '{text}': {e}")))
}

/// Installs logging, tracing and metrics for this process: the global tracing
/// subscriber, the global tracer and meter providers and the W3C trace-context
/// propagator. Fails if a subscriber is already installed.
pub fn init(settings: Settings) -> Result<Telemetry, TelemetryError> {
    let trace_protocol = Protocol::from_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")?;
    let metric_protocol = Protocol::from_env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")?;
    let export_traces = settings.otlp_from_env
        && exports("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER");
    let export_metrics = settings.otlp_from_env
        && exports(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_METRICS_EXPORTER",
        );
    let runtime = if export_traces || export_metrics {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("gatehouse-otlp")
                .enable_all()
                .build()?,
        )
    } else {
        None
    };
    let resource = resource(&settings);

    // Traces: only when something takes them.
    let mut tracer_provider = None;
    if export_traces || settings.span_processor.is_some() {
        let mut builder = SdkTracerProvider::builder().with_resource(resource.clone());
        if let (true, Some(rt)) = (export_traces, runtime.as_ref()) {
            builder = builder.with_batch_exporter(span_exporter(trace_protocol, rt)?);
        }
        if let Some(p) = settings.span_processor {
            builder = builder.with_span_processor(Boxed(p));
        }
        tracer_provider = Some(builder.build());
    }

    // Metrics: always read for /metrics; pushed over OTLP when configured.
    let prometheus = PrometheusText::new();
    let mut meter_builder = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(prometheus.reader());
    if let (true, Some(rt)) = (export_metrics, runtime.as_ref()) {
        meter_builder = meter_builder.with_periodic_exporter(metric_exporter(metric_protocol, rt)?);
    }
    let meter_provider = meter_builder.build();

    // Logs, and the bridge from tracing spans to OpenTelemetry.
    let log_filter = log_filter(settings.log_filter.as_deref())?;
    let writer = settings
        .log_writer
        .unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr));
    let tracing_on = tracer_provider.is_some();
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match settings.log_format {
        LogFormat::Json => fmt
            .fmt_fields(json_log::NoFields)
            .event_format(json_log::JsonLines::new(tracing_on))
            .and_then(json_log::SpanFieldsLayer)
            .boxed(),
        LogFormat::Pretty => fmt.boxed(),
    };
    // Without tracing, the log layer takes events only, so that no span is ever built.
    let fmt = if tracing_on {
        fmt.with_filter(log_filter.and(filter_fn(writable)).boxed())
            .boxed()
    } else {
        fmt.with_filter(
            log_filter
                .and(filter_fn(writable))
                .and(filter_fn(|m| m.is_event()))
                .boxed(),
        )
        .boxed()
    };
    let otel = tracer_provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("gatehouse"))
            .with_location(false)
            .with_threads(false)
            // No busy/idle times: two clock reads on every poll of every span.
            .with_tracked_inactivity(false)
            .with_filter(span_targets().and(filter_fn(|m| {
                // Info lines (the access line, "code sent") stay in the logs; warnings and
                // errors also become events of their span.
                m.is_span() || *m.level() <= tracing::Level::WARN
            })))
    });
    // Two types of subscriber rather than an optional layer: an absent (`None`) layer
    // counts as interested in every callsite, which would build every span.
    let installed = match otel {
        Some(otel) => {
            tracing::subscriber::set_global_default(Registry::default().with(fmt).with(otel))
        }
        None => tracing::subscriber::set_global_default(Registry::default().with(fmt)),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    if let Some(p) = &tracer_provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    let otlp = (export_traces || export_metrics).then_some(OtlpTargets {
        traces: export_traces,
        metrics: export_metrics,
        protocol: if export_traces {
            trace_protocol
        } else {
            metric_protocol
        },
    });
    Ok(Telemetry {
        tracer_provider,
        meter_provider,
        prometheus,
        otlp,
        runtime,
    })
}

/// A log writer into memory, for this crate's tests.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct TestBuf(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl TestBuf {
    /// What was written, as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

#[cfg(test)]
impl std::io::Write for TestBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_aws_sdk_never_logs_at_trace_whatever_the_filter_says() {
        use tracing_subscriber::layer::SubscriberExt;
        for given in [
            "trace",
            "aws_smithy_runtime=trace",
            "info,aws_smithy_runtime=trace",
        ] {
            let buf = TestBuf::default();
            let w = buf.clone();
            let subscriber = Registry::default().with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || w.clone())
                    .with_filter(log_filter(Some(given)).unwrap().and(filter_fn(writable))),
            );
            tracing::subscriber::with_default(subscriber, || {
                tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "transmitting request body=+12025550147");
                tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "retry settings");
                tracing::trace!(target: "gatehouse_workers::send", "own trace line");
            });
            let text = buf.text();
            assert!(!text.contains("transmitting"), "{given}: {text}");
            assert!(
                text.contains("retry settings"),
                "{given}: debug stays: {text}"
            );
            assert_eq!(
                text.contains("own trace line"),
                given == "trace",
                "{given}: {text}"
            );
        }
        // An unparsable filter is refused, naming it.
        assert!(log_filter(Some("info,=[")).is_err());
    }

    /// Without an endpoint (or processor) no span is built at all, and lines are still
    /// written. (A process of its own under nextest: this installs the global subscriber.)
    #[test]
    fn without_an_exporter_spans_are_never_built_and_lines_still_go_out() {
        let buf = TestBuf::default();
        let w = buf.clone();
        let telemetry = init(Settings {
            service_name: "t".into(),
            process: "test".into(),
            log_format: LogFormat::Json,
            log_filter: Some("info".into()),
            log_writer: Some(BoxMakeWriter::new(move || w.clone())),
            otlp_from_env: false,
            span_processor: None,
        })
        .unwrap();
        assert!(!telemetry.tracing());
        let span = tracing::info_span!(target: "gatehouse_api::telemetry", "http.request");
        assert!(span.is_disabled(), "a span was built with tracing off");
        let _e = span.enter();
        tracing::info!(target: "gatehouse::http", status = 200, "request");
        let line: serde_json::Value = buf
            .text()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["target"] == "gatehouse::http")
            .unwrap();
        assert_eq!(line["message"], "request");
        assert_eq!(line["status"], 200);
        assert!(line.get("trace_id").is_none() && line.get("span").is_none());
        // The metrics are there all the same.
        assert!(telemetry.prometheus().render().is_ok());
        telemetry.shutdown();
    }
}
