//! Where messages go. The outbox stands in for a real provider in the embedded default;
//! SES (email) and SNS (SMS) providers implement the same trait, and [`ByChannel`] sends
//! each message through the provider of its channel.

use crate::message::Message;
use gatehouse_domain::mfa::codes::Channel;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A provider refused or failed a send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ProviderError {
    /// Retrying cannot help (a rejected destination, a malformed message). A transient
    /// failure is retried while the code lives.
    pub permanent: bool,
    /// What support reads on the delivery: never the code or the full destination.
    pub reason: String,
}

impl ProviderError {
    /// A failure worth retrying.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            permanent: false,
            reason: reason.into(),
        }
    }

    /// A failure that no retry fixes.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            permanent: true,
            reason: reason.into(),
        }
    }
}

/// Runs one call to a provider inside a client span (`provider.call`, named
/// `"{provider} {operation}"`), and records its duration and failures (A2):
/// `gatehouse_provider_request_duration_seconds` and `gatehouse_provider_errors_total`.
pub(crate) async fn observed<T>(
    provider: &'static str,
    operation: &'static str,
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    use gatehouse_store::telemetry::{label, metrics, secs};
    use tracing::Instrument;
    let span = tracing::info_span!(
        "provider.call",
        otel.name = %format_args!("{provider} {operation}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        provider,
        operation,
        error.r#type = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let result = call.instrument(span.clone()).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => {
            let kind = if e.permanent {
                "permanent"
            } else {
                "transient"
            };
            span.record("otel.status_code", "ERROR");
            span.record("error.type", kind);
            metrics().provider_errors.add(
                1,
                &[
                    label("provider", provider),
                    label("operation", operation),
                    label("kind", kind),
                ],
            );
            "error"
        }
    };
    metrics().provider_duration.record(
        secs(started.elapsed()),
        &[
            label("provider", provider),
            label("operation", operation),
            label("outcome", outcome),
        ],
    );
    result
}

/// The future of one send: the provider's message id.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<String, ProviderError>> + Send + 'a>>;

/// Sends one finished message.
pub trait Provider: Send + Sync + std::fmt::Debug + 'static {
    /// Sends `message`; answers the provider's message id, recorded on the delivery.
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a>;
}

/// Sends email through one provider and SMS through another.
#[derive(Debug, Clone)]
pub struct ByChannel {
    pub email: Arc<dyn Provider>,
    pub sms: Arc<dyn Provider>,
}

impl Provider for ByChannel {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        match message.channel {
            Channel::Email => self.email.send(message),
            Channel::Sms => self.sms.send(message),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use gatehouse_domain::mfa::codes::Purpose;
    use secrecy::SecretString;
    use uuid::Uuid;

    /// Answers its own name as the message id.
    #[derive(Debug)]
    struct Named(&'static str);

    impl Provider for Named {
        fn send<'a>(&'a self, _message: &'a Message) -> SendFuture<'a> {
            Box::pin(async move { Ok(self.0.to_owned()) })
        }
    }

    fn message(channel: Channel) -> Message {
        Message {
            delivery_id: Uuid::new_v4(),
            channel,
            purpose: Purpose::SignIn,
            company: "demo-clinic".into(),
            to: "someone".into(),
            subject: "s".into(),
            body: SecretString::from("b".to_owned()),
            html: None,
        }
    }

    #[tokio::test]
    async fn d2_email_goes_to_the_email_provider_and_sms_to_the_sms_provider() {
        let routed = ByChannel {
            email: Arc::new(Named("ses")),
            sms: Arc::new(Named("sns")),
        };
        assert_eq!(routed.send(&message(Channel::Email)).await.unwrap(), "ses");
        assert_eq!(routed.send(&message(Channel::Sms)).await.unwrap(), "sns");
    }
}
