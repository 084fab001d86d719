//! `GET /metrics`: the OpenTelemetry SDK's metrics, read on demand and written in the
//! Prometheus text format (version 0.0.4).
//!
//! The OpenTelemetry project's own Prometheus exporter is discontinued, and the format is
//! small: counters (monotonic sums, named `..._total`), gauges (gauges and non-monotonic
//! sums) and histograms (`_bucket` with cumulative counts and `le`, `_sum`, `_count`).

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads the process's metrics as Prometheus text. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PrometheusText {
    reader: Arc<ManualReader>,
}

impl Default for PrometheusText {
    fn default() -> Self {
        Self::new()
    }
}

/// The reader registered with the meter provider; shares the manual reader.
#[derive(Debug)]
pub(crate) struct Shared(Arc<ManualReader>);

impl MetricReader for Shared {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// Reading the metrics failed (the meter provider was shut down).
#[derive(Debug, thiserror::Error)]
#[error("metrics could not be read: {0}")]
pub struct ReadError(String);

impl PrometheusText {
    /// A reader with cumulative temporality, as Prometheus expects.
    pub fn new() -> Self {
        Self {
            reader: Arc::new(
                ManualReader::builder()
                    .with_temporality(Temporality::Cumulative)
                    .build(),
            ),
        }
    }

    pub(crate) fn reader(&self) -> Shared {
        Shared(self.reader.clone())
    }

    /// Every metric recorded so far, in the Prometheus text format.
    pub fn render(&self) -> Result<String, ReadError> {
        let mut rm = ResourceMetrics::default();
        self.reader
            .collect(&mut rm)
            .map_err(|e| ReadError(e.to_string()))?;
        Ok(encode(&rm))
    }
}

/// One metric family: its type, help and sample lines.
struct Family {
    kind: &'static str,
    help: String,
    lines: String,
}

/// Writes `rm` in the text format; families sorted by name.
pub fn encode(rm: &ResourceMetrics) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for scope in rm.scope_metrics() {
        for metric in scope.metrics() {
            let base = sanitize(metric.name());
            match metric.data() {
                AggregatedMetrics::F64(d) => add(&mut families, &base, metric.description(), d),
                AggregatedMetrics::U64(d) => add(&mut families, &base, metric.description(), d),
                AggregatedMetrics::I64(d) => add(&mut families, &base, metric.description(), d),
            }
        }
    }
    let mut out = String::new();
    for (name, f) in families {
        if !f.help.is_empty() {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&f.help));
        }
        let _ = writeln!(out, "# TYPE {name} {}", f.kind);
        out.push_str(&f.lines);
    }
    out
}

/// A number as the text format writes it.
trait Number: Copy {
    fn text(self) -> String;
}

impl Number for f64 {
    fn text(self) -> String {
        float(self)
    }
}
impl Number for u64 {
    fn text(self) -> String {
        self.to_string()
    }
}
impl Number for i64 {
    fn text(self) -> String {
        self.to_string()
    }
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

fn add<T: Number>(
    families: &mut BTreeMap<String, Family>,
    base: &str,
    help: &str,
    data: &MetricData<T>,
) {
    let (name, kind) = match data {
        MetricData::Sum(s) if s.is_monotonic() => (counter_name(base), "counter"),
        MetricData::Sum(_) | MetricData::Gauge(_) => (base.to_owned(), "gauge"),
        MetricData::Histogram(_) => (base.to_owned(), "histogram"),
        // Not used by Gatehouse; it has no exact text-format equivalent.
        MetricData::ExponentialHistogram(_) => return,
    };
    let family = families.entry(name.clone()).or_insert_with(|| Family {
        kind,
        help: help.to_owned(),
        lines: String::new(),
    });
    let out = &mut family.lines;
    match data {
        MetricData::Sum(s) => {
            for p in s.data_points() {
                sample(out, &name, &labels(p.attributes(), None), &p.value().text());
            }
        }
        MetricData::Gauge(g) => {
            for p in g.data_points() {
                sample(out, &name, &labels(p.attributes(), None), &p.value().text());
            }
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                let mut cumulative = 0u64;
                let mut counts = p.bucket_counts();
                for bound in p.bounds() {
                    cumulative += counts.next().unwrap_or(0);
                    let le = float(bound);
                    sample(
                        out,
                        &format!("{name}_bucket"),
                        &labels(p.attributes(), Some(&le)),
                        &cumulative.to_string(),
                    );
                }
                sample(
                    out,
                    &format!("{name}_bucket"),
                    &labels(p.attributes(), Some("+Inf")),
                    &p.count().to_string(),
                );
                let plain = labels(p.attributes(), None);
                sample(out, &format!("{name}_sum"), &plain, &p.sum().text());
                sample(
                    out,
                    &format!("{name}_count"),
                    &plain,
                    &p.count().to_string(),
                );
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn sample(out: &mut String, name: &str, labels: &str, value: &str) {
    let _ = writeln!(out, "{name}{labels} {value}");
}

fn counter_name(base: &str) -> String {
    if base.ends_with("_total") {
        base.to_owned()
    } else {
        format!("{base}_total")
    }
}

/// `{k="v",...}` in a stable order, with `le` last; empty without labels.
fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, le: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = attrs
        .map(|kv| (sanitize(kv.key.as_str()), kv.value.to_string()))
        .collect();
    pairs.sort();
    if let Some(le) = le {
        pairs.push(("le".into(), le.to_owned()));
    }
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_value(&v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A metric or label name: letters, digits and `_` (`:` is for recording rules).
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn escape_value(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    #[test]
    fn counters_gauges_and_histograms_are_written_in_the_text_format() {
        let text = PrometheusText::new();
        let provider = SdkMeterProvider::builder()
            .with_reader(text.reader())
            .build();
        let meter = provider.meter("test");
        let c = meter
            .u64_counter("t_codes_sent")
            .with_description("Codes sent.")
            .build();
        c.add(
            2,
            &[
                KeyValue::new("channel", "sms"),
                KeyValue::new("status", "sent"),
            ],
        );
        c.add(
            1,
            &[
                KeyValue::new("channel", "sms"),
                KeyValue::new("status", "sent"),
            ],
        );
        c.add(
            1,
            &[
                KeyValue::new("channel", "email"),
                KeyValue::new("status", "a\"b\\c\nd"),
            ],
        );
        let g = meter.u64_gauge("t_queue_depth").build();
        g.record(7, &[]);
        let h = meter
            .f64_histogram("t_wait_seconds")
            .with_description("Waits.\nSecond line.")
            .with_boundaries(vec![0.01, 0.1])
            .build();
        for v in [0.005, 0.05, 0.05, 3.0] {
            h.record(v, &[KeyValue::new("op", "verify")]);
        }
        let out = text.render().unwrap();
        let expected = [
            "# HELP t_codes_sent_total Codes sent.",
            "# TYPE t_codes_sent_total counter",
            "t_codes_sent_total{channel=\"sms\",status=\"sent\"} 3",
            "t_codes_sent_total{channel=\"email\",status=\"a\\\"b\\\\c\\nd\"} 1",
            "# TYPE t_queue_depth gauge",
            "t_queue_depth 7",
            "# HELP t_wait_seconds Waits.\\nSecond line.",
            "# TYPE t_wait_seconds histogram",
            "t_wait_seconds_bucket{op=\"verify\",le=\"0.01\"} 1",
            "t_wait_seconds_bucket{op=\"verify\",le=\"0.1\"} 3",
            "t_wait_seconds_bucket{op=\"verify\",le=\"+Inf\"} 4",
            "t_wait_seconds_sum{op=\"verify\"} 3.105",
            "t_wait_seconds_count{op=\"verify\"} 4",
        ];
        for line in expected {
            assert!(
                out.lines().any(|l| l == line),
                "missing {line:?} in:\n{out}"
            );
        }
        // Families are sorted and each has one TYPE line.
        assert_eq!(out.matches("# TYPE t_codes_sent_total").count(), 1);
        let types: Vec<&str> = out.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let mut sorted = types.clone();
        sorted.sort();
        assert_eq!(types, sorted);
    }

    #[test]
    fn names_are_made_valid() {
        assert_eq!(sanitize("http.server.duration"), "http_server_duration");
        assert_eq!(sanitize("9lives"), "_9lives");
        assert_eq!(counter_name("x_total"), "x_total");
        assert_eq!(float(f64::INFINITY), "+Inf");
    }
}
