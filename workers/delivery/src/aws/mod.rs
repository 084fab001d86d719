//! Delivery through AWS: email with SES v2 `SendEmail` ([`SesProvider`]), SMS with SNS
//! `Publish` to a phone number ([`SnsProvider`]), routed by channel ([`providers`]).
//!
//! The SDK is configured the standard way (`AWS_REGION`, `AWS_ENDPOINT_URL`, the
//! credentials chain) through [`config_loader`], which adds this service's HTTP client
//! and timeouts. Failures are classified once ([`classify`]): throttling, 5xx, timeouts
//! and connection failures are transient (retried while the code lives); anything else
//! the service refused is permanent, with a reason support can read.

pub mod classify;
mod ses;
mod sns;

pub use ses::{SesProvider, SesSettings};
pub use sns::{SmsSettings, SnsProvider};

use crate::provider::ByChannel;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_smithy_http_client::tls::{Provider as TlsProvider, rustls_provider::CryptoMode};
use std::sync::Arc;
use std::time::Duration;

/// Longest a single HTTP attempt may take: a send normally takes milliseconds, and a
/// worker slot must not hang on a stalled connection.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one call may take, the SDK's own retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// What AWS delivery needs besides the SDK configuration.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub ses: SesSettings,
    pub sms: SmsSettings,
}

/// `aws_config::defaults(BehaviorVersion::latest())` with this service's HTTP client
/// (rustls on ring; the SDK's default client would compile aws-lc) and bounded timeouts.
/// Everything else comes from the standard sources: `AWS_REGION`, `AWS_ENDPOINT_URL`,
/// the credentials chain, profiles, `AWS_MAX_ATTEMPTS`. Callers may override more.
pub fn config_loader() -> ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(TlsProvider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
}

/// Loads the SDK configuration from the standard sources (see [`config_loader`]).
pub async fn load_config() -> SdkConfig {
    config_loader().load().await
}

/// Email through SES and SMS through SNS, both from `sdk`.
pub fn providers(sdk: &SdkConfig, settings: AwsSettings) -> ByChannel {
    delivery(sdk, settings).providers
}

/// Delivery through AWS: the providers, and SNS's SMS opt-out list.
#[derive(Debug, Clone)]
pub struct AwsDelivery {
    pub providers: ByChannel,
    /// The same SNS client that publishes.
    pub sms_opt_outs: Arc<SnsProvider>,
}

/// Email through SES, SMS through SNS and SNS's opt-out list, all from `sdk`.
pub fn delivery(sdk: &SdkConfig, settings: AwsSettings) -> AwsDelivery {
    let sns = Arc::new(SnsProvider::new(sdk, settings.sms));
    AwsDelivery {
        providers: ByChannel {
            email: Arc::new(SesProvider::new(sdk, settings.ses)),
            sms: sns.clone(),
        },
        sms_opt_outs: sns,
    }
}

/// The AWS configuration cannot deliver.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no AWS region: set AWS_REGION (or a region in the AWS profile)")]
    NoRegion,
}

/// Email through SES, SMS through SNS and SNS's opt-out list, configured from the standard
/// AWS sources (see [`config_loader`]). Credentials are resolved at the first send.
pub async fn providers_from_env(settings: AwsSettings) -> Result<AwsDelivery, ConfigError> {
    let sdk = load_config().await;
    // An empty AWS_REGION is read as a region named "": no better than none.
    let region = sdk
        .region()
        .filter(|r| !r.as_ref().trim().is_empty())
        .ok_or(ConfigError::NoRegion)?;
    tracing::info!(
        %region,
        endpoint = sdk.endpoint_url().unwrap_or("(the AWS default)"),
        from = %settings.ses.from,
        configuration_set = settings.ses.configuration_set.as_deref().unwrap_or("(none)"),
        sender_id = settings.sms.sender_id.as_deref().unwrap_or("(none)"),
        origination_number = settings.sms.origination_number.as_ref().map_or("(none)", |n| n.aws_value()),
        "codes are delivered through SES (email) and SNS (SMS)"
    );
    Ok(delivery(&sdk, settings))
}
