//! The AWS emulator (moto server) that `scripts/test` starts: real SDK clients pointed at
//! it, and what it recorded, read back from `GET /moto-api/data.json`.
//!
//! Tests run in parallel processes against one moto, so nothing here resets it: every
//! test uses its own sender, recipients and numbers and reads back only its own.
#![allow(dead_code)]

use crate::helpers::wait_until;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_sesv2::config::Credentials;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// The emulator at `GATEHOUSE_TEST_MOTO_URL`.
pub struct Moto {
    pub url: String,
    http: reqwest::Client,
}

impl Moto {
    /// The emulator the test command started.
    pub fn from_env() -> Self {
        let url = std::env::var("GATEHOUSE_TEST_MOTO_URL").expect(
            "GATEHOUSE_TEST_MOTO_URL is not set: run ./scripts/test, which starts moto server \
             (or start `moto_server -H 127.0.0.1 -p PORT` and set it to http://127.0.0.1:PORT)",
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Self {
            url: url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The SDK configuration the service itself would build, pointed at the emulator with
    /// dummy credentials. One attempt per call: the emulator never throttles, and an error
    /// under test should surface at once.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_at(&self.url).await
    }

    /// Creates a sender identity of its own and answers its address.
    pub async fn verified_sender(&self, sdk: &SdkConfig) -> String {
        let from = format!(
            "no-reply-{}@gatehouse-test.example.com",
            Uuid::new_v4().simple()
        );
        aws_sdk_sesv2::Client::new(sdk)
            .create_email_identity()
            .email_identity(&from)
            .send()
            .await
            .expect("CreateEmailIdentity");
        from
    }

    /// Creates a configuration set of its own and answers its name.
    pub async fn configuration_set(&self, sdk: &SdkConfig) -> String {
        let name = format!("gatehouse-events-{}", Uuid::new_v4().simple());
        aws_sdk_sesv2::Client::new(sdk)
            .create_configuration_set()
            .configuration_set_name(&name)
            .send()
            .await
            .expect("CreateConfigurationSet");
        name
    }

    /// Everything the emulator holds.
    pub async fn data(&self) -> Value {
        self.http
            .get(format!("{}/moto-api/data.json", self.url))
            .send()
            .await
            .expect("GET /moto-api/data.json")
            .error_for_status()
            .expect("data.json answers 200")
            .json()
            .await
            .expect("data.json is JSON")
    }

    /// The emails SES accepted for `to` (`ses.Message[]`).
    pub async fn emails_to(&self, to: &str) -> Vec<Value> {
        let data = self.data().await;
        records(&data, "ses", "Message")
            .into_iter()
            .filter(|m| {
                m["destinations"]["ToAddresses"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t == to))
            })
            .collect()
    }

    /// The SMS SNS accepted for `phone` (`sns.SMS[]`).
    pub async fn sms_to(&self, phone: &str) -> Vec<Value> {
        let data = self.data().await;
        records(&data, "sns", "SMS")
            .into_iter()
            .filter(|m| m["phone_number"] == phone)
            .collect()
    }

    /// Waits for the first email to `to`.
    pub async fn wait_for_email(&self, to: &str) -> Value {
        wait_until(&format!("an email in moto for {to}"), || async {
            self.emails_to(to).await.into_iter().next()
        })
        .await
    }

    /// Waits for the first SMS to `phone`.
    pub async fn wait_for_sms(&self, phone: &str) -> Value {
        wait_until(&format!("an SMS in moto for {phone}"), || async {
            self.sms_to(phone).await.into_iter().next()
        })
        .await
    }
}

/// [`Moto::sdk_config`] for any endpoint (an unreachable one in the failure tests).
pub async fn sdk_config_at(endpoint: &str) -> SdkConfig {
    gatehouse_workers::aws::config_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

fn records(data: &Value, service: &str, model: &str) -> Vec<Value> {
    data[service][model].as_array().cloned().unwrap_or_default()
}

/// An address no other test uses.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@demo-clinic.example.com", Uuid::new_v4().simple())
}

/// A US number no other test is likely to use. Never ending in 99: moto answers that
/// such numbers opted out.
pub fn unique_phone() -> String {
    let n = Uuid::new_v4().as_u128() % 10_000_000;
    let n = if n % 100 == 99 { n - 1 } else { n };
    format!("+1202{n:07}")
}
