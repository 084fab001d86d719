//! Where messages go. The outbox stands in for a real provider in the embedded default;
//! SES (email) and SNS (SMS) providers implement the same trait.

use crate::message::Message;
use std::future::Future;
use std::pin::Pin;

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

/// The future of one send: the provider's message id.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<String, ProviderError>> + Send + 'a>>;

/// Sends one finished message.
pub trait Provider: Send + Sync + std::fmt::Debug + 'static {
    /// Sends `message`; answers the provider's message id, recorded on the delivery.
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a>;
}
