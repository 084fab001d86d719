//! Authenticator apps (M5): RFC 6238 with SHA-1, 6 digits, 30 s steps and one step of
//! skew either way; 160-bit secrets. The matched step is returned so the caller can
//! refuse any step at or before the last one accepted (replay protection).

use crate::Error;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Bytes of a new secret: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// A TOTP secret (raw bytes).
pub struct TotpSecret(SecretBox<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A new random secret.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// A secret from stored bytes (after decryption).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// The raw bytes, for sealing at rest.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    fn totp(&self, issuer: Option<&str>, label: &str) -> Result<Totp, Error> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_skew(1)
            .with_secret(Secret::new(self.expose_bytes().to_vec().into_boxed_slice()))
            .with_issuer(issuer.map(clean))
            .with_account_name(clean(label))
            .build()
            .map_err(|e| Error::Conflict(format!("cannot build the authenticator entry: {e}")))
    }

    /// What the user needs to add the account to an app.
    pub fn enrollment(&self, issuer: &str, label: &str) -> Result<Enrollment, Error> {
        let totp = self.totp(Some(issuer), label)?;
        let uri = totp
            .to_url()
            .map_err(|e| Error::Conflict(format!("cannot build the otpauth URI: {e}")))?;
        let qr_png = totp
            .to_qr_base64()
            .map_err(|e| Error::Conflict(format!("cannot draw the QR code: {e}")))?;
        Ok(Enrollment {
            secret_base32: totp.secret().to_base32(),
            otpauth_uri: uri,
            qr_png_base64: qr_png,
        })
    }

    /// The step (unix time / 30) a code matches at `unix_time` ± one step, if any.
    pub fn matching_step(&self, code: &str, unix_time: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let totp = self.totp(None, "x").ok()?;
        totp.check(&code, unix_time)
    }

    /// The code at `unix_time` (for tests and the demo seed).
    pub fn code_at(&self, unix_time: u64) -> Option<String> {
        self.totp(None, "x")
            .ok()
            .map(|t| t.generate(unix_time).to_string())
    }
}

/// Issuer and account names may not contain ':' (the otpauth label separator).
fn clean(s: &str) -> String {
    let t: String = s.chars().map(|c| if c == ':' { ' ' } else { c }).collect();
    let t = t.trim();
    if t.is_empty() {
        "account".to_owned()
    } else {
        t.to_owned()
    }
}

/// The enrollment answer: manual key, otpauth URI and QR code.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_png_base64: String,
}

/// Whether `step` may be accepted given the last accepted step (RFC 6238 §5.2: a code is
/// accepted once; with skew, nothing at or before the last accepted step either).
pub fn is_fresh(step: u64, last_accepted: Option<u64>) -> bool {
    last_accepted.is_none_or(|last| step > last)
}

/// Seconds since the epoch at `now`: the time authenticator codes count in (0 before 1970).
pub fn unix_seconds(now: chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8-digit values; the 6-digit code is their last six).
    const VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn m5_rfc6238_appendix_b_sha1_vectors() {
        let s = rfc_secret();
        for (time, eight) in VECTORS {
            assert_eq!(s.code_at(time).as_deref(), Some(&eight[2..]), "t={time}");
            assert_eq!(s.matching_step(&eight[2..], time), Some(time / 30));
        }
    }

    #[test]
    fn m5_one_step_of_skew_either_way_and_no_more() {
        let s = rfc_secret();
        let t = 1_234_567_890;
        let code = s.code_at(t).unwrap_or_default();
        assert_eq!(s.matching_step(&code, t + 30), Some(t / 30));
        assert_eq!(s.matching_step(&code, t - 30), Some(t / 30));
        assert_eq!(s.matching_step(&code, t + 60), None);
        assert_eq!(
            s.matching_step("000000", t).filter(|_| code != "000000"),
            None
        );
    }

    #[test]
    fn m5_replayed_or_older_steps_are_refused() {
        assert!(is_fresh(10, None));
        assert!(is_fresh(11, Some(10)));
        assert!(!is_fresh(10, Some(10)));
        assert!(!is_fresh(9, Some(10)));
    }

    #[test]
    fn m5_enrollment_gives_key_uri_and_qr() {
        let s = TotpSecret::generate(&mut rand::rngs::OsRng);
        assert_eq!(s.expose_bytes().len(), 20);
        let e = s
            .enrollment("Demo: Family Clinic", "jane.doe")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.secret_base32.len(), 32, "160 bits in base32");
        assert!(
            e.otpauth_uri.starts_with("otpauth://totp/"),
            "{}",
            e.otpauth_uri
        );
        assert!(e.otpauth_uri.contains("jane.doe"));
        assert!(e.otpauth_uri.contains("issuer=Demo"));
        assert!(
            e.otpauth_uri
                .contains(&format!("secret={}", e.secret_base32))
        );
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(&e.qr_png_base64)
            .unwrap_or_default();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
