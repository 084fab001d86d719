//! JSON log lines: `timestamp`, `level`, `target`, `message`, the event's fields, the
//! span it was written in (`span`: its name and fields) and, with tracing on, that
//! span's `trace_id` and `span_id`, so that a line leads to its trace in the tracing
//! backend.

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format.
pub(crate) struct JsonLines {
    trace_ids: bool,
}

impl JsonLines {
    pub(crate) fn new(trace_ids: bool) -> Self {
        Self { trace_ids }
    }
}

/// Collects an event's fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// A span's fields as JSON values, kept by [`SpanFieldsLayer`] for the lines written in
/// it. Recording a field replaces its value in place: no text is parsed again.
#[derive(Debug, Default)]
pub(crate) struct SpanFields(Vec<(&'static str, Value)>);

impl SpanFields {
    fn set(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

impl Visit for SpanFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name(), Value::from(format!("{value:?}")));
    }
}

/// Keeps each span's fields for [`JsonLines`].
pub(crate) struct SpanFieldsLayer;

impl<S> tracing_subscriber::Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(fields);
        }
    }
}

/// Formats no fields: [`JsonLines`] writes an event's fields itself and a span's come
/// from [`SpanFieldsLayer`], so the fmt layer's own text of them would be wasted work.
pub(crate) struct NoFields;

impl<'w> FormatFields<'w> for NoFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: Writer<'w>,
        _fields: R,
    ) -> fmt::Result {
        Ok(())
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("target".into(), Value::from(meta.target()));
        event.record(&mut Fields(&mut line));
        if self.trace_ids {
            // The tracing bridge activates a span's OpenTelemetry context while the span
            // is entered, so the current context is the event's own span (or its nearest
            // traced ancestor).
            let cx = opentelemetry::Context::current();
            let span = cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                line.insert("trace_id".into(), Value::from(sc.trace_id().to_string()));
                line.insert("span_id".into(), Value::from(sc.span_id().to_string()));
            }
        }
        if let Some(span) = ctx.event_scope().and_then(|mut s| s.next()) {
            let mut fields = Map::new();
            if let Some(f) = span.extensions().get::<SpanFields>() {
                for (k, v) in &f.0 {
                    fields.insert((*k).to_owned(), v.clone());
                }
            }
            fields.insert("name".into(), Value::from(span.name()));
            line.insert("span".into(), Value::Object(fields));
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::TestBuf as Buf;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    fn lines(buf: &Buf) -> Vec<Value> {
        buf.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn layer(
        buf: &Buf,
        trace_ids: bool,
    ) -> impl tracing_subscriber::Layer<tracing_subscriber::Registry> {
        use tracing_subscriber::Layer;
        let w = buf.clone();
        tracing_subscriber::fmt::layer()
            .fmt_fields(NoFields)
            .event_format(JsonLines::new(trace_ids))
            .with_writer(move || w.clone())
            .and_then(SpanFieldsLayer)
    }

    #[test]
    fn a_line_holds_the_event_its_fields_and_its_span_with_the_span_fields() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::registry().with(layer(&buf, false));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(answer = 42, "outside \"any\" span");
            let span = tracing::info_span!(
                "send_code",
                to = "•••-0147",
                attempt = 1u64,
                outcome = tracing::field::Empty
            );
            let _e = span.enter();
            span.record("attempt", 2u64);
            span.record("outcome", "sent");
            tracing::warn!(error = %"throttled", "send failed");
            let bare = tracing::info_span!("bare");
            let _b = bare.enter();
            tracing::info!("in a span without fields");
        });
        let l = lines(&buf);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0]["message"], "outside \"any\" span");
        assert_eq!(l[0]["answer"], 42);
        assert_eq!(l[0]["level"], "INFO");
        assert!(l[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(l[0].get("span").is_none() && l[0].get("trace_id").is_none());
        assert_eq!(l[1]["level"], "WARN");
        assert_eq!(l[1]["error"], "throttled");
        assert_eq!(l[1]["span"]["name"], "send_code");
        assert_eq!(l[1]["span"]["to"], "•••-0147");
        assert_eq!(
            l[1]["span"]["attempt"], 2,
            "a recorded value replaces the first"
        );
        assert_eq!(
            l[1]["span"]["outcome"], "sent",
            "an empty field once recorded"
        );
        assert_eq!(l[2]["span"], serde_json::json!({"name": "bare"}));
    }

    #[test]
    fn with_tracing_on_a_line_carries_its_spans_trace_and_span_ids() {
        let buf = Buf::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(layer(&buf, true))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("t")));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("no span, no trace");
            let outer = tracing::info_span!("http.request");
            let _o = outer.enter();
            tracing::info!("in the request");
            let inner = tracing::info_span!("job.enqueue");
            let _i = inner.enter();
            tracing::info!("in its child");
        });
        let l = lines(&buf);
        assert!(l[0].get("trace_id").is_none());
        let (t1, t2) = (
            l[1]["trace_id"].as_str().unwrap(),
            l[2]["trace_id"].as_str().unwrap(),
        );
        assert_eq!(t1.len(), 32);
        assert_eq!(t1, t2, "one trace");
        assert_eq!(l[1]["span_id"].as_str().unwrap().len(), 16);
        assert_ne!(
            l[1]["span_id"], l[2]["span_id"],
            "each line names its own span"
        );
    }
}
