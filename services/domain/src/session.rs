//! Sessions: opaque 256-bit bearer tokens of which only a SHA-256 hash is stored,
//! with an absolute lifetime and an idle timeout.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// From sign-in, whatever the activity: one clinic shift.
    pub absolute: Duration,
    /// Without any session check.
    pub idle: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            absolute: Duration::hours(12),
            idle: Duration::minutes(30),
        }
    }
}

impl SessionPolicy {
    /// Whether a session created with `expires_at` and last seen at `last_seen` is still alive.
    pub fn is_alive(
        &self,
        expires_at: DateTime<Utc>,
        last_seen: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        now < expires_at && now < last_seen + self.idle
    }

    /// When the session ends if nothing else happens: the earlier of absolute and idle expiry.
    pub fn effective_expiry(
        &self,
        expires_at: DateTime<Utc>,
        last_seen: DateTime<Utc>,
    ) -> DateTime<Utc> {
        expires_at.min(last_seen + self.idle)
    }
}

/// A freshly minted token and the hash to store.
#[derive(Debug)]
pub struct NewToken {
    pub token: SecretString,
    pub hash: String,
}

/// Mints a 256-bit random token, base64url without padding.
pub fn new_token(rng: &mut impl RngCore) -> NewToken {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&SecretString::from(token.clone()));
    NewToken {
        token: SecretString::from(token),
        hash,
    }
}

/// The stored form of a token: lower-case hex SHA-256.
pub fn hash_token(token: &SecretString) -> String {
    hex::encode(Sha256::digest(token.expose_secret().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_only_hash_is_kept() {
        let mut rng = rand::rngs::OsRng;
        let a = new_token(&mut rng);
        let b = new_token(&mut rng);
        assert_eq!(a.token.expose_secret().len(), 43);
        assert_ne!(a.token.expose_secret(), b.token.expose_secret());
        assert_eq!(a.hash.len(), 64);
        assert_eq!(hash_token(&a.token), a.hash);
        assert!(!a.hash.contains(a.token.expose_secret()));
    }

    #[test]
    fn sessions_end_at_absolute_or_idle_expiry() {
        let p = SessionPolicy::default();
        let t0 = Utc::now();
        let expires = t0 + p.absolute;
        assert!(p.is_alive(expires, t0, t0 + Duration::minutes(29)));
        assert!(!p.is_alive(expires, t0, t0 + Duration::minutes(31)));
        // Kept alive by activity until the absolute limit.
        assert!(p.is_alive(
            expires,
            t0 + Duration::hours(11),
            t0 + Duration::hours(11) + Duration::minutes(5)
        ));
        assert!(!p.is_alive(expires, t0 + Duration::hours(12), t0 + Duration::hours(12)));
        assert_eq!(p.effective_expiry(expires, t0), t0 + p.idle);
    }
}
