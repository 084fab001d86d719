//! Verifying an SNS message: one of our topics, allowed certificate URL, cached public
//! key, RSA signature. [`Verifier::verify`] is the one place that decides whether an SNS
//! message is believed.

use super::cert_url::{CertUrlError, CertUrlPolicy};
use super::fetch::{CertFetcher, FetchError, HttpCertFetcher};
use super::message::{ParseError, SignatureVersion, SnsMessage};
use super::topic::TopicPolicy;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::der::DecodePem as _;
use x509_cert::der::referenced::OwnedToRef as _;

/// Certificates kept (SNS uses one per region at a time, rotated rarely).
const KEY_CACHE_CAPACITY: u64 = 64;
/// A cached key is fetched again after this long, so a replaced file is picked up.
const KEY_CACHE_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// A certificate that could not be fetched (or read) is not asked for again for this
/// long: a flood of messages naming a failing URL costs one fetch, not one each. SNS
/// retries the refused deliveries well after it.
const FAILURE_TTL: Duration = Duration::from_secs(60);
/// Certificate fetches in flight at once, whatever the number of messages.
const MAX_CONCURRENT_FETCHES: usize = 4;
/// How long a message waits for a fetch slot before it is refused (SNS retries it).
const FETCH_SLOT_WAIT: Duration = Duration::from_secs(5);

/// Why a message is refused. Only [`VerifyError::Malformed`] is the sender's syntax
/// error (400); all others are an invalid signature as far as the API is concerned
/// (403), told apart in the log by [`VerifyError::kind`].
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed SNS message")]
    Malformed(#[source] ParseError),
    #[error("the message's topic is not one of ours: {0}")]
    TopicNotAllowed(String),
    #[error("unsupported SignatureVersion {0:?}")]
    UnsupportedSignatureVersion(String),
    #[error("SigningCertURL refused")]
    CertUrlRefused(#[source] CertUrlError),
    #[error("fetching the signing certificate failed")]
    CertFetch(#[source] FetchError),
    #[error("the signing certificate failed to load a moment ago; not asked for again yet")]
    CertFailedRecently,
    #[error("the signing certificate is unusable")]
    CertInvalid(#[source] CertError),
    #[error("the signature does not verify")]
    BadSignature,
}

impl VerifyError {
    /// True when the body is not an SNS message at all (answer 400, not 403).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }

    /// A short stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::TopicNotAllowed(_) => "topic_not_allowed",
            Self::UnsupportedSignatureVersion(_) => "unsupported_signature_version",
            Self::CertUrlRefused(_) => "cert_url_refused",
            Self::CertFetch(_) => "cert_fetch_failed",
            Self::CertFailedRecently => "cert_failed_recently",
            Self::CertInvalid(_) => "cert_invalid",
            Self::BadSignature => "bad_signature",
        }
    }
}

impl From<ParseError> for VerifyError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::UnsupportedSignatureVersion(v) => Self::UnsupportedSignatureVersion(v),
            other => Self::Malformed(other),
        }
    }
}

/// Why fetched bytes give no usable RSA public key.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("not a PEM X.509 certificate")]
    Certificate(#[source] x509_cert::der::Error),
    #[error("the certificate's key is not a usable RSA public key")]
    PublicKey(#[source] rsa::pkcs8::spki::Error),
}

/// Verifies SNS messages of our topics against certificates from the allowed prefixes;
/// cheap to clone (the caches and the fetch slots are shared).
#[derive(Clone)]
pub struct Verifier {
    policy: Arc<CertUrlPolicy>,
    topics: Arc<TopicPolicy>,
    fetcher: Arc<dyn CertFetcher>,
    keys: moka::sync::Cache<String, Arc<RsaPublicKey>>,
    /// Certificate URLs whose fetch (or reading) failed a moment ago.
    failures: moka::sync::Cache<String, ()>,
    fetch_slots: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("policy", &self.policy)
            .field("topics", &self.topics)
            .field("cached_keys", &self.keys.entry_count())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier believing messages of `topics` signed with certificates from `policy`,
    /// fetched with `fetcher`.
    pub fn new(policy: CertUrlPolicy, topics: TopicPolicy, fetcher: Arc<dyn CertFetcher>) -> Self {
        Self {
            policy: Arc::new(policy),
            topics: Arc::new(topics),
            fetcher,
            keys: moka::sync::Cache::builder()
                .max_capacity(KEY_CACHE_CAPACITY)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
            failures: moka::sync::Cache::builder()
                .max_capacity(KEY_CACHE_CAPACITY)
                .time_to_live(FAILURE_TTL)
                .build(),
            fetch_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES)),
        }
    }

    /// A verifier fetching certificates over HTTPS ([`HttpCertFetcher`]).
    pub fn with_http(policy: CertUrlPolicy, topics: TopicPolicy) -> Result<Self, FetchError> {
        Ok(Self::new(policy, topics, Arc::new(HttpCertFetcher::new()?)))
    }

    /// The allowed prefixes.
    pub fn policy(&self) -> &CertUrlPolicy {
        &self.policy
    }

    /// The believed topics.
    pub fn topics(&self) -> &TopicPolicy {
        &self.topics
    }

    /// Parses the raw body and decides whether it is believed: its topic is one of ours
    /// and its signature verifies. Nothing is fetched unless the message is well formed,
    /// of one of our topics, its signature decodes and its SigningCertURL is allowed.
    #[tracing::instrument(skip_all, fields(message_id, sns_type, topic_arn))]
    pub async fn verify(&self, body: &[u8]) -> Result<SnsMessage, VerifyError> {
        let message = SnsMessage::parse(body)?;
        let span = tracing::Span::current();
        span.record("message_id", message.message_id.as_str());
        span.record("sns_type", message.message_type().as_str());
        span.record("topic_arn", message.topic_arn.as_str());

        // First, before any fetch: SNS signs every account's messages, so a genuine
        // signature on someone else's topic proves nothing about us.
        if !self.topics.admits(&message.topic_arn) {
            return Err(VerifyError::TopicNotAllowed(message.topic_arn));
        }

        let url = self
            .policy
            .check(&message.signing_cert_url)
            .map_err(VerifyError::CertUrlRefused)?;
        let signature = BASE64
            .decode(message.signature.as_bytes())
            .map_err(|_| VerifyError::BadSignature)?;
        let key = self.key_for(&message.signing_cert_url, &url).await?;

        let signed = message.string_to_sign();
        let outcome = match message.signature_version {
            SignatureVersion::V1 => key.verify(
                Pkcs1v15Sign::new::<Sha1>(),
                &Sha1::digest(signed.as_bytes()),
                &signature,
            ),
            SignatureVersion::V2 => key.verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(signed.as_bytes()),
                &signature,
            ),
        };
        outcome.map_err(|_| VerifyError::BadSignature)?;
        Ok(message)
    }

    async fn key_for(
        &self,
        raw_url: &str,
        url: &url::Url,
    ) -> Result<Arc<RsaPublicKey>, VerifyError> {
        if let Some(key) = self.cached(raw_url)? {
            return Ok(key);
        }
        // A few fetches at once, whatever arrives; waiting for a slot is bounded.
        let _slot = tokio::time::timeout(FETCH_SLOT_WAIT, self.fetch_slots.acquire())
            .await
            .map_err(|_| VerifyError::CertFetch(FetchError::Busy))?
            .map_err(|_| VerifyError::CertFetch(FetchError::Busy))?;
        // Another message may have fetched it (or failed to) while this one waited. Two
        // messages naming the same new URL that get slots at once may both fetch it;
        // harmless.
        if let Some(key) = self.cached(raw_url)? {
            return Ok(key);
        }
        tracing::debug!(cert_url = %url, "fetching SNS signing certificate");
        let loaded = match self.fetcher.fetch(url).await {
            Ok(pem) => public_key_from_pem(&pem).map_err(VerifyError::CertInvalid),
            Err(e) => Err(VerifyError::CertFetch(e)),
        };
        match loaded {
            Ok(key) => {
                let key = Arc::new(key);
                self.keys.insert(raw_url.to_owned(), Arc::clone(&key));
                Ok(key)
            }
            Err(e) => {
                self.failures.insert(raw_url.to_owned(), ());
                Err(e)
            }
        }
    }

    /// The cached key, or the cached failure, of a certificate URL.
    fn cached(&self, raw_url: &str) -> Result<Option<Arc<RsaPublicKey>>, VerifyError> {
        if let Some(key) = self.keys.get(raw_url) {
            return Ok(Some(key));
        }
        if self.failures.contains_key(raw_url) {
            return Err(VerifyError::CertFailedRecently);
        }
        Ok(None)
    }
}

/// The RSA public key of a PEM certificate. Its validity period and issuer are not
/// checked: trust comes from the URL prefix, and SNS may retry a message signed with
/// a certificate that has since expired.
fn public_key_from_pem(pem: &[u8]) -> Result<RsaPublicKey, CertError> {
    let cert = Certificate::from_pem(pem).map_err(CertError::Certificate)?;
    RsaPublicKey::try_from(cert.tbs_certificate.subject_public_key_info.owned_to_ref())
        .map_err(CertError::PublicKey)
}
