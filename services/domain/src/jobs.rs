//! Job payloads. A job never carries a code or destination in clear: the message is sealed
//! with the secret key, bound to its delivery id.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Send the code of one delivery. Idempotent by `delivery_id`: once a delivery was sent,
/// running the job again sends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCode {
    pub delivery_id: Uuid,
    pub tenant_id: Uuid,
    /// `CodeMessage` as JSON, sealed under the context [`SendCode::seal_context`].
    pub sealed: String,
    /// The W3C trace context of the request that queued it, so that its trace goes on
    /// in the worker (A2). Absent when tracing is off, and in jobs queued before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// When it was queued, for the job-wait metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl SendCode {
    /// A job for `delivery_id`, not yet stamped with a trace or a queue time.
    pub fn new(delivery_id: Uuid, tenant_id: Uuid, sealed: String) -> Self {
        Self {
            delivery_id,
            tenant_id,
            sealed,
            traceparent: None,
            queued_at: None,
        }
    }

    /// The sealing context of a delivery's message.
    pub fn seal_context(delivery_id: Uuid) -> Vec<u8> {
        [b"send-code:".as_slice(), delivery_id.as_bytes()].concat()
    }
}

/// Process one verified SNS message recorded by the webhook (bounce, complaint,
/// delivery, STOP/START, subscription). Idempotent by `message_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInbound {
    pub message_id: String,
    /// The trace context of the webhook request that recorded it (A2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl ProcessInbound {
    /// A job for `message_id`, not yet stamped with a trace.
    pub fn new(message_id: String) -> Self {
        Self {
            message_id,
            traceparent: None,
        }
    }
}

/// What the sealed part of a `SendCode` holds.
#[derive(Debug, Deserialize)]
pub struct CodeMessage {
    /// Full destination: E.164 number or email address.
    pub to: String,
    /// Empty for a notice.
    pub code: SecretString,
    /// A notice's words (purpose `notice`): sent as they are, with no code.
    #[serde(default)]
    pub notice: Option<NoticeText>,
}

/// The words of a notice to a practice's admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeText {
    pub subject: String,
    pub body: String,
}

impl CodeMessage {
    /// The plaintext to seal.
    pub fn plaintext(to: &str, code: &str) -> Vec<u8> {
        serde_json::json!({"to": to, "code": code})
            .to_string()
            .into_bytes()
    }

    /// The plaintext of a notice to seal.
    pub fn notice_plaintext(to: &str, notice: &NoticeText) -> Vec<u8> {
        serde_json::json!({"to": to, "code": "", "notice": notice})
            .to_string()
            .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Keyring, SecretKey};
    use secrecy::ExposeSecret;

    #[test]
    fn m4_job_payload_holds_the_code_only_sealed() {
        let ring = Keyring::new(SecretKey::from_bytes([5; 32]));
        let id = Uuid::new_v4();
        let sealed = ring.current().seal(
            &SendCode::seal_context(id),
            &CodeMessage::plaintext("+12025550147", "493817"),
        );
        let job = SendCode::new(id, Uuid::new_v4(), sealed);
        let wire = serde_json::to_string(&job).unwrap_or_default();
        assert!(!wire.contains("493817") && !wire.contains("2025550147"));
        let opened = ring
            .open(&SendCode::seal_context(id), &job.sealed)
            .unwrap_or_default();
        let msg: Option<CodeMessage> = serde_json::from_slice(&opened).ok();
        assert_eq!(msg.as_ref().map(|m| m.to.as_str()), Some("+12025550147"));
        assert_eq!(
            msg.map(|m| m.code.expose_secret().to_owned()),
            Some("493817".into())
        );
        // Bound to its delivery: another id cannot open it.
        assert!(
            ring.open(&SendCode::seal_context(Uuid::new_v4()), &job.sealed)
                .is_err()
        );
    }
}
