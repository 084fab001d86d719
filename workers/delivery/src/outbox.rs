//! The outbox provider: one JSON line per message appended to a file
//! (`{"at", "channel", "to", "subject", "body", "company", "purpose", "delivery_id"}`).
//!
//! It stands in for SES and SNS, so it is the one place a code appears in clear. Each line
//! is written whole by a single `write` on a file opened for appending, and writers in
//! this process take a lock first, so a reader never sees half a message. The file is
//! opened for each line, so it can be moved away or truncated while the service runs.

use crate::message::Message;
use crate::provider::{Provider, ProviderError, SendFuture};
use chrono::{DateTime, SecondsFormat, Utc};
use gatehouse_domain::clock::{Clock, SystemClock};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Writes messages to a JSON-lines file.
#[derive(Clone)]
pub struct OutboxProvider {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    /// Serialises this process's appends (other processes rely on O_APPEND alone).
    lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for OutboxProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxProvider")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// One outbox line, fields in the documented order.
#[derive(Serialize)]
struct Line<'a> {
    at: String,
    channel: &'a str,
    to: &'a str,
    subject: &'a str,
    body: &'a str,
    company: &'a str,
    purpose: &'a str,
    delivery_id: String,
}

impl OutboxProvider {
    /// An outbox at `path`, stamping lines with the system clock.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            clock: Arc::new(SystemClock),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Stamps lines with `clock` instead.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The file messages are appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the file if absent and checks it can be appended to, so a bad path stops
    /// start-up instead of every send.
    pub fn check_writable(&self) -> Result<(), ProviderError> {
        open_append(&self.path).map(drop)
    }

    fn line(&self, m: &Message, at: DateTime<Utc>) -> Result<Vec<u8>, ProviderError> {
        let line = Line {
            at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            channel: m.channel.as_str(),
            to: &m.to,
            subject: &m.subject,
            body: m.body.expose_secret(),
            company: &m.company,
            purpose: m.purpose.as_str(),
            delivery_id: m.delivery_id.to_string(),
        };
        let mut bytes = serde_json::to_vec(&line)
            .map_err(|e| ProviderError::permanent(format!("outbox: cannot encode: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Appends one line with one write.
    fn append(&self, bytes: &[u8]) -> Result<(), ProviderError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = open_append(&self.path)?;
        let written = file.write(bytes).map_err(|e| {
            ProviderError::transient(format!("outbox: cannot write {}: {e}", self.path.display()))
        })?;
        if written != bytes.len() {
            return Err(ProviderError::transient(format!(
                "outbox: short write to {} ({written} of {} bytes)",
                self.path.display(),
                bytes.len()
            )));
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<std::fs::File, ProviderError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            // Transient: a missing directory or a permission can be fixed while the code lives.
            ProviderError::transient(format!("outbox: cannot open {}: {e}", path.display()))
        })
}

impl Provider for OutboxProvider {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(crate::provider::observed("outbox", "append", async move {
            let bytes = self.line(message, self.clock.now())?;
            let this = self.clone();
            // File I/O blocks: keep it off the async workers.
            tokio::task::spawn_blocking(move || this.append(&bytes))
                .await
                .map_err(|e| ProviderError::transient(format!("outbox: writer stopped: {e}")))??;
            Ok(format!("outbox-{}", message.delivery_id))
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use gatehouse_domain::mfa::codes::{Channel, Purpose};
    use secrecy::SecretString;
    use uuid::Uuid;

    fn message(i: usize) -> Message {
        Message {
            delivery_id: Uuid::new_v4(),
            channel: Channel::Email,
            purpose: Purpose::SignIn,
            company: "demo-clinic".into(),
            to: format!("user{i}@demo-clinic.example.com"),
            subject: "Your Demo Family Clinic verification code".into(),
            // Long bodies make torn writes likelier if appends were not whole.
            body: SecretString::from(format!("{:06} {}", i, "x".repeat(8_000))),
            html: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn d1_concurrent_appends_leave_only_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let outbox = OutboxProvider::new(&path);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let o = outbox.clone();
                tokio::spawn(async move { o.send(&message(i)).await })
            })
            .collect();
        for t in tasks {
            let id = t.await.unwrap().unwrap();
            assert!(id.starts_with("outbox-"));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("a whole JSON line");
            let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
            assert_eq!(keys.len(), 8, "{keys:?}");
            seen.insert(v["to"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.len(), 200);
    }

    #[tokio::test]
    async fn d1_an_unwritable_outbox_is_a_readable_transient_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("outbox.jsonl");
        let outbox = OutboxProvider::new(&path);
        assert!(outbox.check_writable().is_err());
        let err = outbox.send(&message(1)).await.unwrap_err();
        assert!(!err.permanent);
        assert!(err.reason.contains("cannot open"), "{err}");
        assert!(err.reason.contains("missing"), "{err}");
    }
}
