//! The send job (D1): claim the delivery, open its sealed message, compose the text, hand
//! it to the provider, record the outcome.
//!
//! Idempotent by delivery id: the claim is a lease taken by one conditional UPDATE and a
//! sent delivery is never claimed again, so a job pushed twice, re-enqueued, or retried
//! sends at most once. Neither the code nor the full destination is ever logged or stored
//! in an error: only the masked destination.
//!
//! An SMS is re-checked against the opt-out list just before the provider call (D3): the
//! number may have texted STOP after the code was issued, or the provider may know it as
//! opted out ([`crate::optout::gate`]). Such a delivery ends `opted_out` without a send.

use crate::message::{Compose, compose};
use crate::optout::{Gate, GateError, SmsOptOutSource, gate};
use crate::provider::{Provider, ProviderError};
use gatehouse_domain::delivery::DeliveryStatus;
use gatehouse_domain::ids::{PhoneE164, TenantId};
use gatehouse_domain::jobs::{CodeMessage, SendCode};
use gatehouse_domain::mfa::codes::Channel;
use gatehouse_store::deliveries::{Deliveries, SendContext};
use gatehouse_store::delivery_attempts::AttemptOutcome;
use gatehouse_store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// What the send job needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct SendDeps {
    pub store: Store,
    pub provider: Arc<dyn Provider>,
    /// The provider's SMS opt-out list (AWS), asked about numbers used for the first time.
    pub sms_opt_outs: Option<Arc<dyn SmsOptOutSource>>,
    /// Provider send rates (D8).
    pub rates: crate::rate::SendRates,
    /// Immediate retries of a transient failure.
    pub retry: RetryPolicy,
    /// Claims and records sends, many per statement.
    pub batches: crate::record::SendBatches,
}

/// Immediate retries of a transient failure: up to `retries` more attempts, waiting from
/// `min`, doubling up to `max`, each wait shortened by a random part of up to a half
/// (jitter, so that many throttled sends do not come back at the same instant). Past the
/// code's expiry nothing is retried: the next claim finds it dead.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: usize,
    pub min: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `n` (0-based), jitter included.
    pub fn wait(&self, n: usize, rng: &mut impl rand::Rng) -> Duration {
        let doubled = self
            .min
            .saturating_mul(1u32.checked_shl(n.min(30) as u32).unwrap_or(u32::MAX));
        let full = doubled.min(self.max);
        full.mul_f64(1.0 - rng.gen_range(0.0..0.5))
    }
}

/// What a refused SMS delivery records (read by support, never shown as is to the user).
pub const OPTED_OUT_REASON: &str =
    "the number opted out of SMS (texted STOP); the user can text START to the sender number";

/// What one run of the job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent now, with the provider's message id.
    Sent { provider_message_id: String },
    /// Nothing to do: already sent or failed, another worker holds it, or the code died.
    Skipped,
    /// Refused before any provider call: the number opted out of SMS (D3).
    OptedOut,
}

/// Why a run did not send.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The database failed; the delivery stays queued.
    #[error("delivery store: {0}")]
    Store(#[from] StoreError),
    /// The sealed message does not open (rotated-away key or tampering): never sendable.
    #[error("the sealed message could not be opened")]
    Sealed,
    /// The provider failed; the delivery records the reason.
    #[error("provider: {0}")]
    Provider(ProviderError),
    /// The provider's opt-out check failed; the delivery stays queued while the code lives.
    #[error("opt-out check: {0}")]
    OptOutCheck(ProviderError),
    /// Sent, but the outcome could not be recorded. Not retried at once, which would send
    /// again; the lease runs out and the re-enqueue job decides.
    #[error("sent, but recording it failed: {0}")]
    Unrecorded(StoreError),
}

impl SendError {
    /// Whether retrying the job can help (the claim re-checks that the code lives).
    pub fn is_transient(&self) -> bool {
        match self {
            SendError::Store(_) => true,
            SendError::Provider(e) | SendError::OptOutCheck(e) => !e.permanent,
            SendError::Sealed | SendError::Unrecorded(_) => false,
        }
    }
}

/// Sends one delivery, retrying transient failures as `deps.retry` says.
pub async fn send_with_retries(job: &SendCode, deps: &SendDeps) -> Result<Outcome, SendError> {
    let mut n = 0;
    loop {
        match send_code(job, deps).await {
            Err(e) if e.is_transient() && n < deps.retry.retries => {
                let wait = deps.retry.wait(n, &mut rand::thread_rng());
                tracing::debug!(delivery_id = %job.delivery_id, error = %e, ?wait, "transient failure; retrying");
                tokio::time::sleep(wait).await;
                n += 1;
            }
            done => return done,
        }
    }
}

/// Sends one delivery once; see the module docs.
#[tracing::instrument(skip_all, fields(delivery_id = %job.delivery_id, tenant = %job.tenant_id, to, attempt))]
pub async fn send_code(job: &SendCode, deps: &SendDeps) -> Result<Outcome, SendError> {
    let deliveries = deps.store.tenant(TenantId(job.tenant_id)).deliveries();
    let claimed = deps
        .batches
        .claim(TenantId(job.tenant_id), job.delivery_id)
        .await?;
    let Some(ctx) = claimed else {
        tracing::debug!("nothing to send");
        return Ok(Outcome::Skipped);
    };
    let span = tracing::Span::current();
    span.record("to", ctx.to_masked.as_str());
    span.record("attempt", ctx.attempt);

    let Some(secret) = open(&deps.store, &ctx) else {
        tracing::error!("the sealed message does not open; failing the delivery");
        count(ctx.channel, "failed");
        let reason = "the sealed message could not be opened (the key that sealed it is not configured, or it was altered)";
        deliveries.fail(ctx.delivery_id, reason, true).await?;
        deliveries
            .note_attempt(&ctx, AttemptOutcome::Failed, reason)
            .await?;
        return Err(SendError::Sealed);
    };
    if ctx.channel == Channel::Sms {
        let Ok(phone) = PhoneE164::parse(&secret.to) else {
            count(ctx.channel, "failed");
            let reason = "the destination is not a phone number";
            deliveries.fail(ctx.delivery_id, reason, true).await?;
            deliveries
                .note_attempt(&ctx, AttemptOutcome::Failed, reason)
                .await?;
            return Err(SendError::Provider(ProviderError::permanent(
                "the destination is not a phone number",
            )));
        };
        match gate(&deps.batches, deps.sms_opt_outs.as_deref(), &phone).await {
            Ok(Gate::Open) => {}
            Ok(Gate::OptedOut) => {
                deliveries
                    .refuse(ctx.delivery_id, DeliveryStatus::OptedOut, OPTED_OUT_REASON)
                    .await?;
                deliveries
                    .note_attempt(&ctx, AttemptOutcome::OptedOut, OPTED_OUT_REASON)
                    .await?;
                count(ctx.channel, "opted_out");
                tracing::info!("the number opted out of SMS; not sent");
                return Ok(Outcome::OptedOut);
            }
            Err(GateError::Store(e)) => {
                // The lease runs out and the delivery is claimed again.
                return Err(SendError::Store(e));
            }
            Err(GateError::Check(e)) => {
                let e = record_failure(deps, &deliveries, &ctx, e).await?;
                return Err(SendError::OptOutCheck(e));
            }
        }
    }
    let now = deps.store.clock().now();
    let message = compose(&Compose {
        delivery_id: ctx.delivery_id,
        channel: ctx.channel,
        purpose: ctx.purpose,
        company: &ctx.company,
        company_name: &ctx.company_name,
        to: &secret.to,
        code: &secret.code,
        notice: secret.notice.as_ref(),
        expires_at: ctx.expires_at,
        now,
    });
    drop(secret);

    deps.rates.acquire(ctx.channel).await;
    match deps.provider.send(&message).await {
        Ok(provider_message_id) => {
            count(ctx.channel, "sent");
            record_sent(&deps.batches, &ctx, &provider_message_id).await?;
            tracing::info!(channel = ctx.channel.as_str(), purpose = ctx.purpose.as_str(), %provider_message_id, "code sent");
            Ok(Outcome::Sent {
                provider_message_id,
            })
        }
        Err(e) => Err(SendError::Provider(
            record_failure(deps, &deliveries, &ctx, e).await?,
        )),
    }
}

/// Records a failed attempt; answers the failure as recorded. Past its expiry a code is
/// never retried: the failure is final.
async fn record_failure(
    deps: &SendDeps,
    deliveries: &Deliveries<'_>,
    ctx: &SendContext,
    e: ProviderError,
) -> Result<ProviderError, SendError> {
    let expired = deps.store.clock().now() >= ctx.expires_at;
    let permanent = e.permanent || expired;
    let reason = if expired && !e.permanent {
        format!("{} (the code expired before a retry)", e.reason)
    } else {
        e.reason
    };
    tracing::warn!(error = %reason, permanent, "send failed");
    count(ctx.channel, if permanent { "failed" } else { "retrying" });
    deliveries.fail(ctx.delivery_id, &reason, permanent).await?;
    let outcome = if permanent {
        AttemptOutcome::Failed
    } else {
        AttemptOutcome::Retrying
    };
    deliveries.note_attempt(ctx, outcome, &reason).await?;
    Ok(ProviderError { permanent, reason })
}

/// Counts a send attempt of a code or notice (`gatehouse_codes_sent_total`).
fn count(channel: Channel, status: &'static str) {
    use gatehouse_store::telemetry::{label, metrics};
    metrics().codes_sent.add(
        1,
        &[label("channel", channel.as_str()), label("status", status)],
    );
}

fn open(store: &Store, ctx: &SendContext) -> Option<CodeMessage> {
    let plain = store
        .config()
        .keyring
        .open(&SendCode::seal_context(ctx.delivery_id), &ctx.sealed)
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

/// Records the send, retrying briefly: the message is already out, so a lost record
/// would mean a second send later.
async fn record_sent(
    batches: &crate::record::SendBatches,
    ctx: &SendContext,
    provider_message_id: &str,
) -> Result<(), SendError> {
    let mut wait = Duration::from_millis(50);
    let mut tries = 0;
    loop {
        match batches.record(ctx, provider_message_id).await {
            Ok(()) => return Ok(()),
            Err(e) if tries < 3 => {
                tracing::warn!(error = %e, "recording the send failed; trying again");
                tries += 1;
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                tracing::error!(error = %e, "sent, but recording it failed");
                return Err(SendError::Unrecorded(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d4_retry_waits_double_up_to_the_cap_and_jitter_only_shortens_them() {
        let policy = RetryPolicy {
            retries: 6,
            min: Duration::from_millis(250),
            max: Duration::from_secs(10),
        };
        let mut rng = rand::thread_rng();
        for (n, full) in [
            (0, 250),
            (1, 500),
            (2, 1_000),
            (3, 2_000),
            (5, 8_000),
            (6, 10_000),
            (40, 10_000),
        ] {
            let full = Duration::from_millis(full);
            for _ in 0..200 {
                let w = policy.wait(n, &mut rng);
                assert!(
                    w <= full && w >= full / 2,
                    "retry {n}: {w:?} outside [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        // Two throttled sends rarely come back at the same instant.
        let waits: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.wait(3, &mut rng)).collect();
        assert!(waits.len() > 40, "{}", waits.len());
    }
}
