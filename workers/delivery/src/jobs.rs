//! The job functions the queues' workers run: one send, one SNS message.

use crate::send::{self, SendDeps, SendError};
use crate::{SmsOptOutSource, optout, subscription};
use apalis::prelude::{AbortError, BoxDynError, Data};
use gatehouse_domain::jobs::{ProcessInbound, SendCode};
use gatehouse_store::Store;
use gatehouse_store::inbound::InboundOutcome;
use std::sync::Arc;

/// SNS messages processed at once in a process (each is a few queries).
pub(crate) const INBOUND_CONCURRENCY: usize = 4;

/// The apalis job function: one send, retried with backoff while transient. It never ends
/// as a plain failure: an error is final here (the delivery row records it, and the
/// re-enqueue picks up what is still `queued`), so no backend re-runs it by itself.
///
/// Its span continues the trace the job carries (the request that issued the code), so
/// that one trace runs from `POST /v1/auth/login` to the provider call (A2).
pub(crate) async fn send_job(job: SendCode, deps: Data<SendDeps>) -> Result<(), BoxDynError> {
    run_send(job, &deps)
        .await
        .map_err(|e| AbortError::new(e).into())
}

/// One send job's run, whichever way the job came (a queue, or the database while Redis
/// does not answer).
pub(crate) async fn run_send(job: SendCode, deps: &SendDeps) -> Result<(), SendError> {
    use gatehouse_store::telemetry::{continue_trace, label, metrics, secs};
    let span = tracing::info_span!(
        "job.run",
        otel.name = "send_code process",
        otel.kind = "consumer",
        job = "send_code",
        delivery_id = %job.delivery_id,
        outcome = tracing::field::Empty,
    );
    continue_trace(&span, job.traceparent.as_deref());
    if let Some(queued) = job.queued_at {
        let waited = (chrono::Utc::now() - queued).to_std().unwrap_or_default();
        metrics()
            .job_wait
            .record(secs(waited), &[label("job", "send_code")]);
    }
    let started = std::time::Instant::now();
    let result =
        tracing::Instrument::instrument(send::send_with_retries(&job, deps), span.clone()).await;
    let outcome = match &result {
        Ok(send::Outcome::Sent { .. }) => "sent",
        Ok(send::Outcome::Skipped) => "skipped",
        Ok(send::Outcome::OptedOut) => "opted_out",
        Err(e) if e.is_transient() => "left_queued",
        Err(_) => "failed",
    };
    span.record("outcome", outcome);
    metrics().job_duration.record(
        secs(started.elapsed()),
        &[label("job", "send_code"), label("outcome", outcome)],
    );
    result.map(|_| ())
}

/// What the inbound job needs; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct InboundDeps {
    pub(crate) store: Store,
    pub(crate) sms_opt_outs: Option<Arc<dyn SmsOptOutSource>>,
    pub(crate) confirmer: Option<subscription::SubscriptionConfirmer>,
}

/// The apalis job function: processes one verified SNS message (bounce, complaint,
/// delivery, STOP/START). A failure leaves the message unprocessed, and the periodic
/// job pushes it again. After a START the provider is told too.
pub(crate) async fn inbound_job(
    job: ProcessInbound,
    deps: Data<InboundDeps>,
) -> Result<(), BoxDynError> {
    let span = tracing::info_span!(
        "job.run",
        otel.name = "process_inbound process",
        otel.kind = "consumer",
        job = "process_inbound",
    );
    gatehouse_store::telemetry::continue_trace(&span, job.traceparent.as_deref());
    tracing::Instrument::instrument(process_inbound(job, deps), span).await
}

async fn process_inbound(job: ProcessInbound, deps: Data<InboundDeps>) -> Result<(), BoxDynError> {
    let outcome = deps
        .store
        .process_inbound(&job.message_id)
        .await
        .map_err(AbortError::new)?;
    if let Some(outcome) = outcome {
        optout::after_inbound(&outcome, deps.sms_opt_outs.as_deref()).await;
        if let InboundOutcome::Subscription {
            subscribe_url: Some(url),
        } = &outcome
        {
            match deps.confirmer.as_ref().map(|c| c.confirm(url)) {
                Some(visit) => match visit.await {
                    Ok(()) => {
                        tracing::info!(message_id = %job.message_id, "SNS subscription confirmed")
                    }
                    Err(e) => {
                        tracing::error!(message_id = %job.message_id, error = %e, "SNS subscription not confirmed; an operator can confirm it in the SNS console")
                    }
                },
                None => {
                    tracing::warn!(message_id = %job.message_id, "SNS subscription confirmation received; no confirmer configured")
                }
            }
        }
    }
    Ok(())
}
