//! Email through Amazon SES v2 `SendEmail`: simple content, a subject, a text part and an
//! HTML part, from the configured sender, with the configuration set that publishes the
//! delivery, bounce and complaint events (D2, D4).

use super::classify;
use crate::message::Message;
use crate::provider::{Provider, ProviderError, SendFuture, observed};
use aws_config::SdkConfig;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage};
use gatehouse_domain::mfa::codes::Channel;
use secrecy::ExposeSecret;

const API: &str = "SES SendEmail";

/// What SES sends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesSettings {
    /// The sender (`GATEHOUSE_SES_FROM`): an address, or `Name <address>`, whose address or
    /// domain is a verified SES identity.
    pub from: String,
    /// The configuration set (`GATEHOUSE_SES_CONFIGURATION_SET`) whose event destination
    /// publishes bounces, complaints and deliveries.
    pub configuration_set: Option<String>,
}

/// Sends email through SES v2.
#[derive(Clone)]
pub struct SesProvider {
    client: Client,
    settings: SesSettings,
}

impl std::fmt::Debug for SesProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SesProvider")
            .field("from", &self.settings.from)
            .field("configuration_set", &self.settings.configuration_set)
            .finish_non_exhaustive()
    }
}

impl SesProvider {
    /// A provider with a client built from `sdk`.
    pub fn new(sdk: &SdkConfig, settings: SesSettings) -> Self {
        Self::with_client(Client::new(sdk), settings)
    }

    /// A provider on a given client.
    pub fn with_client(client: Client, settings: SesSettings) -> Self {
        Self { client, settings }
    }

    /// The settings it sends with.
    pub fn settings(&self) -> &SesSettings {
        &self.settings
    }

    async fn send_email(&self, message: &Message) -> Result<String, ProviderError> {
        if message.channel != Channel::Email {
            return Err(ProviderError::permanent(format!(
                "{API}: SES sends email, not {}",
                message.channel.as_str()
            )));
        }
        let content = content(message)?;
        let answer = observed("ses", "SendEmail", async {
            self.client
                .send_email()
                .from_email_address(&self.settings.from)
                .destination(Destination::builder().to_addresses(&message.to).build())
                .content(content)
                .set_configuration_set_name(self.settings.configuration_set.clone())
                .send()
                .await
                .map_err(|e| classify::from_sdk_error(API, &e, &message.to))
        })
        .await?;
        Ok(match answer.message_id() {
            Some(id) => id.to_owned(),
            // Accepted all the same: failing it now would send the code a second time.
            None => {
                tracing::warn!("SES accepted the email but answered no message id");
                format!("ses-unknown-{}", message.delivery_id)
            }
        })
    }
}

/// UTF-8 text for SES.
fn utf8(data: &str) -> Result<Content, ProviderError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| ProviderError::permanent(format!("{API}: cannot build the message: {e}")))
}

/// The simple content: subject, text part and (when composed) HTML part.
fn content(message: &Message) -> Result<EmailContent, ProviderError> {
    let mut body = Body::builder().text(utf8(message.body.expose_secret())?);
    if let Some(html) = &message.html {
        body = body.html(utf8(html.expose_secret())?);
    }
    let simple = SesMessage::builder()
        .subject(utf8(&message.subject)?)
        .body(body.build())
        .build();
    Ok(EmailContent::builder().simple(simple).build())
}

impl Provider for SesProvider {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(self.send_email(message))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use gatehouse_domain::mfa::codes::Purpose;
    use secrecy::SecretString;
    use uuid::Uuid;

    fn message(channel: Channel, html: Option<&str>) -> Message {
        Message {
            delivery_id: Uuid::new_v4(),
            channel,
            purpose: Purpose::SignIn,
            company: "demo-clinic".into(),
            to: "jane@example.com".into(),
            subject: "Your Demo Family Clinic verification code".into(),
            body: SecretString::from("text 042917".to_owned()),
            html: html.map(|h| SecretString::from(h.to_owned())),
        }
    }

    #[test]
    fn d2_email_content_carries_subject_text_and_html_in_utf8() {
        let c = content(&message(Channel::Email, Some("<p>042917</p>"))).unwrap();
        let simple = c.simple().unwrap();
        let subject = simple.subject().unwrap();
        assert_eq!(subject.data(), "Your Demo Family Clinic verification code");
        assert_eq!(subject.charset(), Some("UTF-8"));
        let body = simple.body().unwrap();
        assert_eq!(body.text().unwrap().data(), "text 042917");
        assert_eq!(body.html().unwrap().data(), "<p>042917</p>");
        let plain = content(&message(Channel::Email, None)).unwrap();
        assert!(plain.simple().unwrap().body().unwrap().html().is_none());
    }

    #[tokio::test]
    async fn d2_ses_refuses_an_sms_without_calling_aws() {
        let sdk = super::super::config_loader()
            .region(aws_config::Region::new("us-east-1"))
            .test_credentials()
            .load()
            .await;
        let ses = SesProvider::new(
            &sdk,
            SesSettings {
                from: "no-reply@example.com".into(),
                configuration_set: None,
            },
        );
        let err = ses.send(&message(Channel::Sms, None)).await.unwrap_err();
        assert!(err.permanent);
        assert!(err.reason.contains("not sms"), "{err}");
    }
}
