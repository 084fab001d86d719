//! SMS through Amazon SNS `Publish` to a phone number: transactional (delivered ahead of
//! promotional traffic and not held for quiet hours), from the configured sender id or
//! origination number (D2). The same client answers the SMS opt-out list (D3):
//! `CheckIfPhoneNumberIsOptedOut`, `ListPhoneNumbersOptedOut` (paginated by `nextToken`)
//! and `OptInPhoneNumber`.

use super::classify;
use crate::message::Message;
use crate::optout::{OptOutFuture, OptedOutPage, SmsOptOutSource};
use crate::provider::{Provider, ProviderError, SendFuture, observed};
use aws_config::SdkConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use gatehouse_domain::ids::PhoneE164;
use gatehouse_domain::mfa::codes::Channel;
use gatehouse_domain::sender::SenderNumber;
use secrecy::ExposeSecret;

const API: &str = "SNS Publish";
const CHECK_API: &str = "SNS CheckIfPhoneNumberIsOptedOut";
const LIST_API: &str = "SNS ListPhoneNumbersOptedOut";
const OPT_IN_API: &str = "SNS OptInPhoneNumber";
const SMS_TYPE: &str = "AWS.SNS.SMS.SMSType";
const SENDER_ID: &str = "AWS.SNS.SMS.SenderID";
const ORIGINATION_NUMBER: &str = "AWS.MM.SMS.OriginationNumber";

/// Where SMS come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsSettings {
    /// Alphanumeric sender id (`GATEHOUSE_SMS_SENDER_ID`), where the destination country
    /// allows one.
    pub sender_id: Option<String>,
    /// The number messages are sent from (`GATEHOUSE_SMS_ORIGINATION_NUMBER`: E.164 or a
    /// short code): the number users text STOP and START to.
    pub origination_number: Option<SenderNumber>,
}

/// Sends SMS through SNS.
#[derive(Clone)]
pub struct SnsProvider {
    client: Client,
    settings: SmsSettings,
}

impl std::fmt::Debug for SnsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsProvider")
            .field("sender_id", &self.settings.sender_id)
            .field("origination_number", &self.settings.origination_number)
            .finish_non_exhaustive()
    }
}

impl SnsProvider {
    /// A provider with a client built from `sdk`.
    pub fn new(sdk: &SdkConfig, settings: SmsSettings) -> Self {
        Self::with_client(Client::new(sdk), settings)
    }

    /// A provider on a given client.
    pub fn with_client(client: Client, settings: SmsSettings) -> Self {
        Self { client, settings }
    }

    /// The settings it sends with.
    pub fn settings(&self) -> &SmsSettings {
        &self.settings
    }

    async fn publish(&self, message: &Message) -> Result<String, ProviderError> {
        if message.channel != Channel::Sms {
            return Err(ProviderError::permanent(format!(
                "{API}: SNS sends SMS, not {}",
                message.channel.as_str()
            )));
        }
        let mut request = self
            .client
            .publish()
            .phone_number(&message.to)
            .message(message.body.expose_secret());
        for (name, value) in attributes(&self.settings) {
            request = request.message_attributes(name, string_attribute(value)?);
        }
        let answer = observed("sns", "Publish", async {
            request
                .send()
                .await
                .map_err(|e| classify::from_sdk_error(API, &e, &message.to))
        })
        .await?;
        Ok(match answer.message_id() {
            Some(id) => id.to_owned(),
            // Accepted all the same: failing it now would send the code a second time.
            None => {
                tracing::warn!("SNS accepted the SMS but answered no message id");
                format!("sns-unknown-{}", message.delivery_id)
            }
        })
    }
}

impl SmsOptOutSource for SnsProvider {
    fn check<'a>(&'a self, phone: &'a PhoneE164) -> OptOutFuture<'a, bool> {
        Box::pin(async move {
            let answer = observed("sns", "CheckIfPhoneNumberIsOptedOut", async {
                self.client
                    .check_if_phone_number_is_opted_out()
                    .phone_number(phone.as_str())
                    .send()
                    .await
                    .map_err(|e| classify::from_sdk_error(CHECK_API, &e, phone.as_str()))
            })
            .await?;
            Ok(answer.is_opted_out())
        })
    }

    fn list_opted_out<'a>(&'a self, next_token: Option<&'a str>) -> OptOutFuture<'a, OptedOutPage> {
        Box::pin(async move {
            let answer = observed("sns", "ListPhoneNumbersOptedOut", async {
                self.client
                    .list_phone_numbers_opted_out()
                    .set_next_token(next_token.map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| classify::from_sdk_error(LIST_API, &e, ""))
            })
            .await?;
            Ok(OptedOutPage {
                numbers: answer.phone_numbers().to_vec(),
                next_token: answer.next_token().map(str::to_owned),
            })
        })
    }

    fn opt_in<'a>(&'a self, phone: &'a PhoneE164) -> OptOutFuture<'a, ()> {
        Box::pin(async move {
            observed("sns", "OptInPhoneNumber", async {
                self.client
                    .opt_in_phone_number()
                    .phone_number(phone.as_str())
                    .send()
                    .await
                    .map_err(|e| classify::from_sdk_error(OPT_IN_API, &e, phone.as_str()))
            })
            .await?;
            Ok(())
        })
    }
}

/// The SMS message attributes: always transactional, plus the configured origin.
fn attributes(settings: &SmsSettings) -> Vec<(&'static str, &str)> {
    let mut out = vec![(SMS_TYPE, "Transactional")];
    if let Some(id) = &settings.sender_id {
        out.push((SENDER_ID, id.as_str()));
    }
    if let Some(number) = &settings.origination_number {
        // SNS takes E.164, or a short code's digits alone (never `501-20`).
        out.push((ORIGINATION_NUMBER, number.aws_value()));
    }
    out
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, ProviderError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| ProviderError::permanent(format!("{API}: cannot build the message: {e}")))
}

impl Provider for SnsProvider {
    fn send<'a>(&'a self, message: &'a Message) -> SendFuture<'a> {
        Box::pin(self.publish(message))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn d2_sms_is_transactional_and_carries_the_configured_origin() {
        assert_eq!(
            attributes(&SmsSettings::default()),
            vec![(SMS_TYPE, "Transactional")]
        );
        let both = SmsSettings {
            sender_id: Some("DemoClinic".into()),
            origination_number: Some(SenderNumber::parse("+12025550100").unwrap()),
        };
        assert_eq!(
            attributes(&both),
            vec![
                (SMS_TYPE, "Transactional"),
                (SENDER_ID, "DemoClinic"),
                (ORIGINATION_NUMBER, "+12025550100"),
            ]
        );
        let short_code = SmsSettings {
            sender_id: None,
            origination_number: Some(SenderNumber::parse("501-20").unwrap()),
        };
        assert_eq!(
            attributes(&short_code),
            vec![(SMS_TYPE, "Transactional"), (ORIGINATION_NUMBER, "50120")]
        );
        let value = string_attribute("Transactional").unwrap();
        assert_eq!(value.data_type(), "String");
        assert_eq!(value.string_value(), Some("Transactional"));
    }
}
