//! The provider's ES256 signing keys (oidc.md "Keys"): generated as PKCS#8, kept sealed
//! with the secret key, published as JWKs under their RFC 7638 thumbprint.

use super::IdTokenClaims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A problem with a signing key or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the signing key could not be generated")]
    Generate,
    #[error("the stored signing key is not a P-256 PKCS#8 key")]
    Malformed,
    #[error("the token could not be signed: {0}")]
    Sign(String),
}

/// A public key as the JWKS publishes it (RFC 7517, RFC 7518 6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub kid: String,
}

impl Jwk {
    fn of_point(point: &[u8]) -> Result<Self, KeyError> {
        // An uncompressed P-256 point: 0x04, x (32 bytes), y (32 bytes).
        if point.len() != 65 || point[0] != 4 {
            return Err(KeyError::Malformed);
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        // RFC 7638: the SHA-256 of the required members, in lexicographic order.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Ok(Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x,
            y,
            use_: "sig".into(),
            alg: "ES256".into(),
            kid,
        })
    }

    /// Checks an ES256 token's signature and `iss` against this key and answers its
    /// claims. `exp` is checked unless `allow_expired` (an `id_token_hint` may be old);
    /// the audience is the caller's to check.
    pub fn verify(&self, token: &str, issuer: &str, allow_expired: bool) -> Option<IdTokenClaims> {
        let key = DecodingKey::from_ec_components(&self.x, &self.y).ok()?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[issuer]);
        v.validate_aud = false;
        v.validate_exp = !allow_expired;
        v.leeway = 0;
        v.set_required_spec_claims(&["iss", "exp", "sub", "aud"]);
        jsonwebtoken::decode::<IdTokenClaims>(token, &key, &v)
            .ok()
            .map(|d| d.claims)
    }
}

/// The `kid` named in a token's header, to find the key that checks it.
pub fn kid_of(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

/// A private signing key, ready to sign.
pub struct SigningKey {
    jwk: Jwk,
    encoding: EncodingKey,
    pkcs8: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.jwk.kid)
    }
}

impl SigningKey {
    /// A new random P-256 key.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// The key from its PKCS#8 form (as sealed in the database).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|_| KeyError::Malformed)?;
        let jwk = Jwk::of_point(pair.public_key().as_ref())?;
        Ok(Self {
            jwk,
            encoding: EncodingKey::from_ec_der(der),
            pkcs8: SecretBox::new(Box::new(der.to_vec())),
        })
    }

    /// The PKCS#8 form, to seal.
    pub fn pkcs8(&self) -> &[u8] {
        self.pkcs8.expose_secret()
    }

    /// The key id (its JWK thumbprint).
    pub fn kid(&self) -> &str {
        &self.jwk.kid
    }

    /// The public half.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Signs `claims` as a compact JWS with `alg: ES256`, `typ: JWT` and this key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.jwk.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::oidc::UserClaims;

    fn claims(exp: i64) -> IdTokenClaims {
        IdTokenClaims {
            iss: "http://localhost:8080".into(),
            aud: "demo-ehr".into(),
            exp,
            iat: exp - 300,
            auth_time: exp - 300,
            nonce: Some("n-1".into()),
            sid: "s-1".into(),
            acr: super::super::ACR_MFA.into(),
            amr: vec!["pwd".into(), "sms".into(), "mfa".into()],
            user: UserClaims {
                sub: "u-1".into(),
                company: "demo-clinic".into(),
                company_name: "Demo Clinic".into(),
                role: "staff".into(),
                groups: vec![],
                preferred_username: None,
                name: None,
                given_name: None,
                family_name: None,
                updated_at: None,
                email: None,
                email_verified: None,
                phone_number: None,
                phone_number_verified: None,
            },
        }
    }

    #[test]
    fn i1_tokens_verify_with_the_published_key_only() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(again.jwk(), key.jwk());
        assert_eq!(key.kid().len(), 43);
        let exp = chrono::Utc::now().timestamp() + 300;
        let token = key.sign(&claims(exp)).unwrap();
        assert_eq!(kid_of(&token).as_deref(), Some(key.kid()));
        assert_eq!(
            key.jwk().verify(&token, "http://localhost:8080", false),
            Some(claims(exp))
        );
        assert_eq!(key.jwk().verify(&token, "http://evil", false), None);
        let other = SigningKey::generate().unwrap();
        assert_eq!(
            other.jwk().verify(&token, "http://localhost:8080", false),
            None
        );
        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'A');
        assert_eq!(
            key.jwk().verify(&tampered, "http://localhost:8080", false),
            None
        );
        let old = key.sign(&claims(1_000)).unwrap();
        assert_eq!(key.jwk().verify(&old, "http://localhost:8080", false), None);
        assert!(
            key.jwk()
                .verify(&old, "http://localhost:8080", true)
                .is_some()
        );
        assert!(SigningKey::from_pkcs8(b"not a key").is_err());
        assert!(!format!("{key:?}").contains(&URL_SAFE_NO_PAD.encode(key.pkcs8())));
    }
}
