//! The service's secret key: AES-256-GCM for secrets at rest and in job payloads (TOTP
//! secrets, queued codes) and HMAC-SHA256 for the keyed hashes of codes.
//!
//! Sealed values carry the id of the key that sealed them, so keys can be rotated: a
//! value sealed under an older key still opens while that key is configured.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// A problem with a key or a sealed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the secret key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed under key {0}, which is not configured")]
    UnknownKey(String),
    #[error("sealed value failed authentication")]
    Tampered,
}

/// A 32-byte secret key and its public id (the first 8 hex digits of its SHA-256).
pub struct SecretKey {
    bytes: SecretBox<[u8; 32]>,
    /// HMAC state keyed once; cloned for each MAC.
    mac_base: HmacSha256,
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        // HMAC pads a key shorter than the hash's 64-byte block with zeros, so keying
        // with the padded block is the same MAC, and cannot fail.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&bytes);
        let mac_base = <HmacSha256 as KeyInit>::new(&block.into());
        Self {
            bytes: SecretBox::new(Box::new(bytes)),
            mac_base,
            id,
        }
    }

    /// Parses the base64 form (standard or URL-safe alphabet, padding optional).
    pub fn parse_base64(text: &str) -> Result<Self, CryptoError> {
        let t = text.trim();
        let raw = STANDARD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
            .map_err(|_| CryptoError::BadKey)?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// A new random key.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// The base64 form, for writing a new key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes.expose_secret())
    }

    /// The key's public id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.bytes.expose_secret().into())
    }

    /// HMAC-SHA256 over `parts`, domain-separated by `purpose`; lower-case hex.
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> String {
        hex::encode(self.hmac(purpose, parts).finalize().into_bytes())
    }

    fn hmac(&self, purpose: &str, parts: &[&[u8]]) -> HmacSha256 {
        let mut m = self.mac_base.clone();
        m.update(&(purpose.len() as u64).to_be_bytes());
        m.update(purpose.as_bytes());
        for p in parts {
            // Length-prefix each part so ("ab","c") and ("a","bc") differ.
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m
    }

    /// Whether `expected_hex` is the MAC of `parts`, compared in constant time.
    pub fn mac_matches(&self, purpose: &str, parts: &[&[u8]], expected_hex: &str) -> bool {
        let Ok(expected) = hex::decode(expected_hex) else {
            return false;
        };
        self.hmac(purpose, parts).verify_slice(&expected).is_ok()
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. a user id), as
    /// `v1.<key id>.<nonce>.<ciphertext>` in URL-safe base64.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            // AES-GCM only fails to encrypt for messages over 64 GiB.
            .unwrap_or_default();
        format!(
            "v1.{}.{}.{}",
            self.id,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ct)
        )
    }
}

/// The configured keys: the current one seals, any of them opens.
#[derive(Debug)]
pub struct Keyring {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring with one key.
    pub fn new(current: SecretKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a retired key that still opens old values.
    pub fn with_previous(mut self, key: SecretKey) -> Self {
        self.previous.push(key);
        self
    }

    /// The key that seals and MACs.
    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    /// Every configured key, the current one first (to check MACs made before a rotation).
    pub fn keys(&self) -> impl Iterator<Item = &SecretKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// Opens a sealed value with whichever configured key sealed it.
    pub fn open(&self, context: &[u8], sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let mut parts = sealed.split('.');
        let (Some("v1"), Some(id), Some(nonce), Some(ct), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CryptoError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        let nonce = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| CryptoError::Malformed)?;
        let ct = URL_SAFE_NO_PAD
            .decode(ct)
            .map_err(|_| CryptoError::Malformed)?;
        if nonce.len() != 12 {
            return Err(CryptoError::Malformed);
        }
        key.cipher()
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey::from_bytes([b; 32])
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let ring = Keyring::new(key(1));
        let sealed = ring.current().seal(b"user-1", b"JBSWY3DPEHPK3PXP");
        assert!(sealed.starts_with(&format!("v1.{}.", ring.current().id())));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            ring.open(b"user-1", &sealed),
            Ok(b"JBSWY3DPEHPK3PXP".to_vec())
        );
        assert_eq!(ring.open(b"user-2", &sealed), Err(CryptoError::Tampered));
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(
            ring.open(b"user-1", &String::from_utf8(flipped).unwrap_or_default())
                .is_err()
        );
        assert_eq!(
            Keyring::new(key(2)).open(b"user-1", &sealed),
            Err(CryptoError::UnknownKey(ring.current().id().to_owned()))
        );
        assert_eq!(ring.open(b"user-1", "v1.x.y"), Err(CryptoError::Malformed));
    }

    #[test]
    fn rotated_keys_still_open_old_values() {
        let old = key(1);
        let sealed = old.seal(b"c", b"secret");
        let ring = Keyring::new(key(2)).with_previous(old);
        assert_eq!(ring.open(b"c", &sealed), Ok(b"secret".to_vec()));
        assert_ne!(ring.current().seal(b"c", b"secret"), sealed);
    }

    #[test]
    fn macs_are_keyed_separated_and_compared_exactly() {
        let k = key(3);
        let m = k.mac("code", &[b"ab", b"c"]);
        assert_eq!(m.len(), 64);
        assert_ne!(m, k.mac("code", &[b"a", b"bc"]));
        assert_ne!(m, k.mac("recovery", &[b"ab", b"c"]));
        assert_ne!(m, key(4).mac("code", &[b"ab", b"c"]));
        assert!(k.mac_matches("code", &[b"ab", b"c"], &m));
        assert!(!k.mac_matches("code", &[b"ab", b"d"], &m));
        assert!(!k.mac_matches("code", &[b"ab", b"c"], "zz"));
    }

    #[test]
    fn padded_keying_equals_hmac_of_the_raw_key() {
        let k = key(7);
        let mut expected =
            <HmacSha256 as Mac>::new_from_slice(&[7u8; 32]).unwrap_or_else(|_| k.mac_base.clone());
        expected.update(b"x");
        let mut ours = k.mac_base.clone();
        ours.update(b"x");
        assert_eq!(
            ours.finalize().into_bytes(),
            expected.finalize().into_bytes()
        );
    }

    #[test]
    fn keys_parse_from_base64_and_reject_wrong_lengths() {
        let k = SecretKey::generate(&mut rand::rngs::OsRng);
        let again = SecretKey::parse_base64(&k.to_base64());
        assert_eq!(again.map(|a| a.id().to_owned()), Ok(k.id().to_owned()));
        assert!(SecretKey::parse_base64("c2hvcnQ=").is_err());
        assert!(SecretKey::parse_base64("not base64!").is_err());
        assert!(!format!("{k:?}").contains(&k.to_base64()));
    }
}
