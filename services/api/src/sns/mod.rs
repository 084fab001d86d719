//! Amazon SNS HTTP(S) subscription messages: parsing, signature verification and
//! recognition of what a verified notification carries (D6).
//!
//! Trust needs two things, both decided in [`Verifier::verify`]. The topic: the
//! message's `TopicArn` is one of the deployment's own (`GATEHOUSE_SNS_TOPIC_ARNS`),
//! since SNS signs any account's messages. The signature: a certificate is fetched only
//! from a URL that starts with a configured prefix (`GATEHOUSE_SNS_CERT_URL_PREFIXES`)
//! and names a file as AWS does (`SimpleNotificationService-<hex>.pem`), and its RSA
//! public key verifies the signature over the canonical string AWS documents for the
//! message's type. Keys are cached, failures too (for a minute), and few fetches run at
//! once. Neither the message's age
//! nor the certificate's validity period is checked: SNS retries deliveries for a long
//! time, and duplicates are dropped by `MessageId` instead.
//!
//! The handler maps [`VerifyError::is_malformed`] to 400 and every other
//! [`VerifyError`] to 403, logging the variant (a fetch failure and a bad signature
//! read differently in the log).

mod cert_url;
mod fetch;
mod message;
mod topic;
mod verify;

pub use cert_url::{CertUrlError, CertUrlPolicy, CertUrlPrefix, CertUrlPrefixError};
pub use fetch::{CertFetcher, FetchError, HttpCertFetcher, MAX_CERT_BYTES};
pub use gatehouse_domain::inbound::{
    BounceType, InboundEvent, InboundSms, SesBounce, SesComplaint, SesDelivery, SesEvent, recognise,
};
pub use message::{MessageType, ParseError, SignatureVersion, SnsKind, SnsMessage};
pub use topic::{TopicArn, TopicArnError, TopicPolicy};
pub use verify::{CertError, Verifier, VerifyError};
