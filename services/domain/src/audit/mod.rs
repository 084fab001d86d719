//! The audit log (A1): append-only, hash-chained per tenant.
//!
//! Each event's hash is SHA-256 over the previous event's hash and the event's canonical
//! form (JSON with sorted keys, timestamps at microsecond precision), so altering,
//! removing or reordering any stored event breaks verification from that point on.

pub mod details;

pub use details::Details;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash before the first event of a tenant.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

macro_rules! actions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// An audited action; the dotted names are stable for clients.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action { $($variant),* }

        impl Action {
            /// Every action.
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The dotted name.
            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => $name),* }
            }

            /// The action with this dotted name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(Action::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    SigninSucceeded => "signin.succeeded",
    SigninFailed => "signin.failed",
    SigninRefused => "signin.refused",
    UserLocked => "user.locked",
    UserUnlocked => "user.unlocked",
    PasswordChanged => "password.changed",
    PasswordReset => "password.reset",
    MfaCodeSent => "mfa.code_sent",
    MfaCodeRefused => "mfa.code_refused",
    MfaVerified => "mfa.verified",
    MfaFailed => "mfa.failed",
    MfaExhausted => "mfa.exhausted",
    MfaEnrolled => "mfa.enrolled",
    MfaReset => "mfa.reset",
    MfaSkipped => "mfa.skipped",
    MfaBypassed => "mfa.bypassed",
    RecoveryCodeUsed => "recovery_code.used",
    RecoveryCodesRegenerated => "recovery_codes.regenerated",
    DeviceRemembered => "device.remembered",
    DeviceRevoked => "device.revoked",
    NetworkAdded => "network.added",
    NetworkRemoved => "network.removed",
    ContactVerified => "contact.verified",
    UserCreated => "user.created",
    UserCopied => "user.copied",
    UserUpdated => "user.updated",
    UserDeactivated => "user.deactivated",
    UserReactivated => "user.reactivated",
    UserApproved => "user.approved",
    GroupCreated => "group.created",
    GroupUpdated => "group.updated",
    GroupDeleted => "group.deleted",
    GroupMembersChanged => "group.members_changed",
    TenantCreated => "tenant.created",
    TenantSettingsChanged => "tenant.settings_changed",
    TenantSuspended => "tenant.suspended",
    TenantReactivated => "tenant.reactivated",
    SupportRead => "support.read",
    EmailSuppressionLifted => "email_suppression.lifted",
    SessionEnded => "session.ended",
    EscalationRequested => "escalation.requested",
    EscalationApproved => "escalation.approved",
    EscalationDenied => "escalation.denied",
    EscalationExecuted => "escalation.executed",
    EscalationExpired => "escalation.expired",
    OidcClientCreated => "oidc_client.created",
    OidcClientUpdated => "oidc_client.updated",
    OidcClientDeleted => "oidc_client.deleted",
    OidcClientSecretRotated => "oidc_client.secret_rotated",
    OidcAuthorized => "oidc.authorized",
    OidcDenied => "oidc.denied",
    OidcTokensIssued => "oidc.tokens_issued",
    OidcReplayDetected => "oidc.replay_detected",
    OidcTokenRevoked => "oidc.token_revoked",
}

/// What kind of party acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A user of the same tenant.
    User,
    /// A member of the vendor's support staff.
    Support,
    /// Gatehouse itself (jobs, bootstrap).
    System,
    /// Someone not (yet) identified, such as a failed sign-in.
    Anonymous,
}

impl ActorKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Support => "support",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<Uuid>,
    pub username: Option<String>,
}

impl Actor {
    /// Gatehouse itself.
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            username: None,
        }
    }

    /// An unidentified party.
    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: None,
            username: None,
        }
    }
}

/// What was acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub id: String,
    pub label: Option<String>,
}

/// An event to append: everything but its place in the chain.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub action: Action,
    pub actor: Actor,
    pub target: Option<Target>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Non-secret facts only: never a password, code, token or hash.
    pub details: Value,
}

/// A stored event with its chain fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_username: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Truncates a timestamp to microseconds, the precision both databases keep.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

/// Writes JSON with object keys sorted at every depth, independent of serde_json features.
fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(child) = map.get(*k) {
                    canonical_json(child, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

impl ChainedEvent {
    /// Builds the next event of a chain and computes its hash.
    pub fn next(
        tenant_id: Uuid,
        seq: i64,
        at: DateTime<Utc>,
        prev_hash: &str,
        event: NewEvent,
    ) -> Self {
        let mut e = Self::unlinked(tenant_id, at, event);
        e.link(seq, prev_hash);
        e
    }

    /// An event with its id and time but no place in the chain yet (`seq` 0, no hashes):
    /// what is kept while it waits to be chained. [`ChainedEvent::link`] gives it its place.
    pub fn unlinked(tenant_id: Uuid, at: DateTime<Utc>, event: NewEvent) -> Self {
        ChainedEvent {
            id: Uuid::new_v4(),
            tenant_id,
            seq: 0,
            at: truncate_to_micros(at),
            action: event.action.as_str().to_owned(),
            actor_kind: event.actor.kind.as_str().to_owned(),
            actor_id: event.actor.id,
            actor_username: event.actor.username,
            target_kind: event.target.as_ref().map(|t| t.kind.to_owned()),
            target_id: event.target.as_ref().map(|t| t.id.clone()),
            target_label: event.target.and_then(|t| t.label),
            ip: event.ip,
            user_agent: event.user_agent,
            details: event.details,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// Places the event at `seq`, after the event whose hash is `prev_hash`, and
    /// computes its own hash.
    pub fn link(&mut self, seq: i64, prev_hash: &str) {
        self.seq = seq;
        prev_hash.clone_into(&mut self.prev_hash);
        self.hash = self.compute_hash();
    }

    /// The hash this event should carry, from its content and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!({
            "v": 1,
            "id": self.id.to_string(),
            "tenant_id": self.tenant_id.to_string(),
            "seq": self.seq,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "action": self.action,
            "actor_kind": self.actor_kind,
            "actor_id": self.actor_id.map(|u| u.to_string()),
            "actor_username": self.actor_username,
            "target_kind": self.target_kind,
            "target_id": self.target_id,
            "target_label": self.target_label,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "details": self.details,
        });
        let mut text = String::new();
        canonical_json(&canonical, &mut text);
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(b"\n");
        h.update(text.as_bytes());
        hex::encode(h.finalize())
    }
}

/// Walks a chain in `seq` order; keeps the state between pages of events.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_prev: String,
    expected_seq: i64,
    checked: u64,
    broken_at: Option<i64>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_prev: GENESIS_HASH.to_owned(),
            expected_seq: 1,
            checked: 0,
            broken_at: None,
        }
    }
}

impl ChainVerifier {
    /// Checks the next event; after the first break, later events are only counted.
    pub fn push(&mut self, e: &ChainedEvent) {
        self.checked += 1;
        if self.broken_at.is_some() {
            return;
        }
        let ok = e.seq == self.expected_seq
            && e.prev_hash == self.expected_prev
            && e.compute_hash() == e.hash;
        if ok {
            self.expected_prev = e.hash.clone();
            self.expected_seq += 1;
        } else {
            self.broken_at = Some(e.seq);
        }
    }

    /// Counts an event that could not even be read back as broken.
    pub fn push_unreadable(&mut self, seq: i64) {
        self.checked += 1;
        if self.broken_at.is_none() {
            self.broken_at = Some(seq);
        }
    }

    /// Checks, after the last event, that the chain ends at the recorded head; if events
    /// past the last one seen were removed, the first missing seq is reported.
    pub fn expect_head(&mut self, head_seq: i64, head_hash: &str) {
        if self.broken_at.is_some() {
            return;
        }
        if self.expected_seq - 1 != head_seq || self.expected_prev != head_hash {
            self.broken_at = Some(self.expected_seq.min(head_seq.max(1)));
        }
    }

    /// How many events were seen.
    pub fn events(&self) -> u64 {
        self.checked
    }

    /// The seq of the first event that does not verify, if any.
    pub fn broken_at(&self) -> Option<i64> {
        self.broken_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(action: Action, details: Value) -> NewEvent {
        NewEvent {
            action,
            actor: Actor::anonymous(),
            target: Some(Target {
                kind: "user",
                id: "u1".into(),
                label: Some("jdoe".into()),
            }),
            ip: Some("127.0.0.1".into()),
            user_agent: None,
            details,
        }
    }

    fn chain(n: i64) -> Vec<ChainedEvent> {
        let t = Uuid::new_v4();
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let e = ChainedEvent::next(
                    t,
                    seq,
                    Utc::now(),
                    &prev,
                    ev(
                        Action::SigninFailed,
                        json!({"b": 1, "a": [1, {"z": 1, "y": 2}]}),
                    ),
                );
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn verify(events: &[ChainedEvent]) -> Option<i64> {
        let mut v = ChainVerifier::default();
        events.iter().for_each(|e| v.push(e));
        v.broken_at()
    }

    #[test]
    fn a1_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), None);
    }

    #[test]
    fn a1_altered_removed_or_reordered_events_are_detected() {
        let mut c = chain(5);
        c[2].details = json!({"b": 2});
        assert_eq!(verify(&c), Some(3));

        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c), Some(3));

        let mut c = chain(5);
        c.swap(3, 4);
        assert_eq!(verify(&c), Some(5));

        let mut c = chain(5);
        c[4].ip = Some("10.0.0.1".into());
        assert_eq!(verify(&c), Some(5));
    }

    #[test]
    fn a1_removing_the_newest_events_is_detected_against_the_head() {
        let c = chain(5);
        let mut v = ChainVerifier::default();
        c[..3].iter().for_each(|e| v.push(e));
        v.expect_head(5, &c[4].hash);
        assert_eq!(v.broken_at(), Some(4));

        let mut v = ChainVerifier::default();
        c.iter().for_each(|e| v.push(e));
        v.expect_head(5, &c[4].hash);
        assert_eq!(v.broken_at(), None);

        let mut v = ChainVerifier::default();
        v.expect_head(0, GENESIS_HASH);
        assert_eq!(v.broken_at(), None);
    }

    #[test]
    fn a1_an_event_kept_aside_and_linked_later_chains_like_one_appended_at_once() {
        let c = chain(2);
        let at = Utc::now();
        let mut waiting =
            ChainedEvent::unlinked(c[0].tenant_id, at, ev(Action::SupportRead, json!({})));
        assert_eq!((waiting.seq, waiting.hash.as_str()), (0, ""));
        let id = waiting.id;
        waiting.link(3, &c[1].hash);
        let mut linked = c.clone();
        linked.push(waiting.clone());
        assert_eq!(verify(&linked), None);
        // Its identity and time are the ones it had while waiting.
        assert_eq!((waiting.id, waiting.at), (id, truncate_to_micros(at)));
        // Linked after the wrong event, it breaks the chain there.
        waiting.link(3, &c[0].hash);
        linked[2] = waiting;
        assert_eq!(verify(&linked), Some(3));
    }

    #[test]
    fn canonical_form_ignores_key_order() {
        let mut a = String::new();
        let mut b = String::new();
        canonical_json(&json!({"b": 1, "a": {"d": 1, "c": 2}}), &mut a);
        canonical_json(
            &serde_json::from_str::<Value>(r#"{"a": {"c": 2, "d": 1}, "b": 1}"#)
                .unwrap_or_default(),
            &mut b,
        );
        assert_eq!(a, b);
        assert_eq!(a, r#"{"a":{"c":2,"d":1},"b":1}"#);
    }

    #[test]
    fn action_names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
    }
}
