//! What a verified SNS notification's `Message` carries: an SES event or an inbound SMS
//! (D3, D4). Pure: the API recognises it to answer, the workers to act on it.
//!
//! Shapes follow AWS's documentation: SES feedback notifications (`notificationType`)
//! and event publishing records (`eventType`) share the `mail`, `bounce`, `complaint`
//! and `delivery` objects; End User Messaging two-way SMS posts `originationNumber`,
//! `destinationNumber`, `messageBody`. Anything else, or any shape that does not fit,
//! is [`InboundEvent::Unknown`]: AWS adds fields and event types over time.

use crate::delivery::{DeliveryStatus, Keyword, inbound_keyword};
use crate::ids::PhoneE164;
use crate::sender::SmsNumbers;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

/// What a notification carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEvent {
    Ses(SesEvent),
    Sms(InboundSms),
    Unknown,
}

/// An SES event about a message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SesEvent {
    Bounce(SesBounce),
    Complaint(SesComplaint),
    Delivery(SesDelivery),
}

/// `bounce.bounceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BounceType {
    Permanent,
    Transient,
    Undetermined,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesBounce {
    pub bounce_type: BounceType,
    /// `bounce.bouncedRecipients[].emailAddress`, as SES wrote them.
    pub recipients: Vec<String>,
    /// `mail.messageId`: the SES id of the message that bounced.
    pub mail_message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesComplaint {
    /// `complaint.complainedRecipients[].emailAddress`.
    pub recipients: Vec<String>,
    pub mail_message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesDelivery {
    pub mail_message_id: String,
    /// `delivery.recipients`.
    pub recipients: Vec<String>,
}

/// A text message a phone sent to one of our numbers (e.g. STOP, START).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    /// The sender's number, E.164 as AWS writes it.
    pub origination_number: String,
    /// Our number it was sent to.
    pub destination_number: Option<String>,
    pub message_body: String,
    pub inbound_message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesWire {
    event_type: Option<String>,
    notification_type: Option<String>,
    mail: Option<MailWire>,
    bounce: Option<BounceWire>,
    complaint: Option<ComplaintWire>,
    delivery: Option<DeliveryWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailWire {
    message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BounceWire {
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<RecipientWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ComplaintWire {
    #[serde(default)]
    complained_recipients: Vec<RecipientWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecipientWire {
    email_address: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryWire {
    #[serde(default)]
    recipients: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SmsWire {
    origination_number: String,
    destination_number: Option<String>,
    message_body: String,
    inbound_message_id: Option<String>,
}

/// Recognises the `Message` of a verified Notification. Never fails: what is not
/// recognised is [`InboundEvent::Unknown`].
pub fn recognise(message: &str) -> InboundEvent {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(message) else {
        return InboundEvent::Unknown;
    };
    let Some(object) = value.as_object() else {
        return InboundEvent::Unknown;
    };
    if object.contains_key("eventType") || object.contains_key("notificationType") {
        return serde_json::from_value::<SesWire>(value)
            .ok()
            .and_then(ses_event)
            .map_or(InboundEvent::Unknown, InboundEvent::Ses);
    }
    if object.contains_key("originationNumber") && object.contains_key("messageBody") {
        return match serde_json::from_value::<SmsWire>(value) {
            Ok(sms) => InboundEvent::Sms(InboundSms {
                origination_number: sms.origination_number,
                destination_number: sms.destination_number,
                message_body: sms.message_body,
                inbound_message_id: sms.inbound_message_id,
            }),
            Err(_) => InboundEvent::Unknown,
        };
    }
    InboundEvent::Unknown
}

fn ses_event(wire: SesWire) -> Option<SesEvent> {
    let kind = wire.event_type.or(wire.notification_type)?;
    let mail_message_id = wire.mail.and_then(|m| m.message_id);
    match kind.as_str() {
        "Bounce" => {
            let bounce = wire.bounce?;
            let bounce_type = match bounce.bounce_type.as_str() {
                "Permanent" => BounceType::Permanent,
                "Transient" => BounceType::Transient,
                "Undetermined" => BounceType::Undetermined,
                _ => return None,
            };
            Some(SesEvent::Bounce(SesBounce {
                bounce_type,
                recipients: emails(bounce.bounced_recipients),
                mail_message_id,
            }))
        }
        "Complaint" => Some(SesEvent::Complaint(SesComplaint {
            recipients: emails(wire.complaint?.complained_recipients),
            mail_message_id,
        })),
        "Delivery" => Some(SesEvent::Delivery(SesDelivery {
            mail_message_id: mail_message_id?,
            recipients: wire.delivery?.recipients,
        })),
        _ => None,
    }
}

fn emails(recipients: Vec<RecipientWire>) -> Vec<String> {
    recipients.into_iter().map(|r| r.email_address).collect()
}

/// What a recognised event does to our records (D3, D4): decided here, carried out by
/// the store in one transaction with the event's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A permanent bounce or a complaint: the addresses go on the suppression list and
    /// the deliveries of the message are marked with `status` and `error`.
    Suppress {
        recipients: Vec<String>,
        /// The suppression's reason: `bounce` or `complaint`.
        reason: &'static str,
        mail_message_id: Option<String>,
        status: DeliveryStatus,
        error: &'static str,
    },
    /// A transient bounce: the address stays usable; while the code lives the message
    /// goes out again after a pause ([`resend_after_bounce`]).
    TransientBounce { mail_message_id: Option<String> },
    /// The mailbox accepted the message.
    Delivered { mail_message_id: String },
    /// A number texted STOP (`opted_out`) or START to one of our numbers.
    OptOut { phone: PhoneE164, opted_out: bool },
    /// A text to one of our numbers that is no keyword, or from no parseable number.
    IgnoredText,
    /// A text to a number that is not ours: not ours to act on (anyone can publish a
    /// well-formed inbound SMS; only one sent to our number speaks for the sender).
    NotOurNumber,
    /// A shape this version does not know.
    Unknown,
}

/// What `event` does, `numbers` being this deployment's SMS numbers.
pub fn effect_of(event: InboundEvent, numbers: &SmsNumbers) -> Effect {
    match event {
        InboundEvent::Ses(SesEvent::Bounce(b)) if b.bounce_type == BounceType::Permanent => {
            Effect::Suppress {
                recipients: b.recipients,
                reason: "bounce",
                mail_message_id: b.mail_message_id,
                status: DeliveryStatus::Bounced,
                error: "permanent bounce: the mailbox does not accept mail",
            }
        }
        InboundEvent::Ses(SesEvent::Bounce(b)) => Effect::TransientBounce {
            mail_message_id: b.mail_message_id,
        },
        InboundEvent::Ses(SesEvent::Complaint(c)) => Effect::Suppress {
            recipients: c.recipients,
            reason: "complaint",
            mail_message_id: c.mail_message_id,
            status: DeliveryStatus::Complained,
            error: "the recipient reported the message as spam",
        },
        InboundEvent::Ses(SesEvent::Delivery(d)) => Effect::Delivered {
            mail_message_id: d.mail_message_id,
        },
        InboundEvent::Sms(sms) => {
            if !numbers.is_ours(sms.destination_number.as_deref()) {
                return Effect::NotOurNumber;
            }
            match (
                inbound_keyword(&sms.message_body),
                PhoneE164::parse(&sms.origination_number),
            ) {
                (Some(k), Ok(phone)) => Effect::OptOut {
                    phone,
                    opted_out: k == Keyword::OptOut,
                },
                _ => Effect::IgnoredText,
            }
        }
        InboundEvent::Unknown => Effect::Unknown,
    }
}

/// Sends of one delivery at most (failed ones and sends after transient bounces
/// included) for a transient bounce to send it again.
pub const MAX_SENDS: i32 = 4;

/// The pause before sending again after a transient bounce: 30 s, doubling per send.
pub fn bounce_backoff(attempts: i32) -> Duration {
    Duration::seconds(30 << attempts.clamp(1, 4).saturating_sub(1))
}

/// A delivery whose message bounced transiently, and its code.
#[derive(Debug, Clone, Copy)]
pub struct Bounced {
    pub status: Option<DeliveryStatus>,
    /// Whether the sealed message is still kept (only until the code is done with).
    pub sealed_kept: bool,
    pub attempts: i32,
    /// The code was used or replaced.
    pub code_done: bool,
    pub code_expires_at: DateTime<Utc>,
}

/// When to send a transiently bounced delivery again, if at all: while its code will
/// still live after the pause, its message is kept, it went out fewer than [`MAX_SENDS`]
/// times, and it is sent (or delivered), not refused or bounced for good.
pub fn resend_after_bounce(b: Bounced, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let at = now + bounce_backoff(b.attempts);
    let again = !b.code_done
        && b.code_expires_at > at
        && b.sealed_kept
        && b.attempts < MAX_SENDS
        && matches!(
            b.status,
            Some(DeliveryStatus::Sent | DeliveryStatus::Delivered)
        );
    again.then_some(at)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // From the SES developer guide, "Amazon SNS notification examples for Amazon SES".
    const BOUNCE_NOTIFICATION: &str = r#"{
       "notificationType":"Bounce",
       "bounce":{
          "bounceType":"Permanent",
          "reportingMTA":"dns; email.example.com",
          "bouncedRecipients":[
             {
                "emailAddress":"jane@example.com",
                "status":"5.1.1",
                "action":"failed",
                "diagnosticCode":"smtp; 550 5.1.1 <jane@example.com>... User"
             }
          ],
          "bounceSubType":"General",
          "timestamp":"2016-01-27T14:59:38.237Z",
          "feedbackId":"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
          "remoteMtaIp":"127.0.2.0"
       },
       "mail":{
          "timestamp":"2016-01-27T14:59:38.237Z",
          "source":"john@example.com",
          "sourceArn": "arn:aws:ses:us-east-1:888888888888:identity/example.com",
          "sourceIp": "127.0.3.0",
          "sendingAccountId":"123456789012",
          "callerIdentity": "IAM_user_or_role_name",
          "messageId":"00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
          "destination":["jane@example.com", "mary@example.com", "richard@example.com"],
          "headersTruncated":false,
          "headers":[{"name":"From","value":"\"John Doe\" <john@example.com>"}],
          "commonHeaders":{"from":["John Doe <john@example.com>"],"subject":"Hello"}
       }
    }"#;

    // From "Examples of event data that Amazon SES publishes to Amazon SNS".
    const BOUNCE_EVENT: &str = r#"{
      "eventType":"Bounce",
      "bounce":{
        "bounceType":"Transient",
        "bounceSubType":"General",
        "bouncedRecipients":[
          {"emailAddress":"recipient@example.com","action":"failed","status":"4.4.7",
           "diagnosticCode":"smtp; 450 mailbox full"},
          {"emailAddress":"other@example.com"}
        ],
        "timestamp":"2017-08-05T00:41:02.669Z",
        "feedbackId":"01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA":"dsn; mta.example.com"
      },
      "mail":{
        "timestamp":"2017-08-05T00:40:02.012Z",
        "source":"Sender Name <sender@example.com>",
        "sendingAccountId":"123456789012",
        "messageId":"EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
        "destination":["recipient@example.com"],
        "tags":{"ses:configuration-set":["ConfigSet"]}
      }
    }"#;

    const COMPLAINT_NOTIFICATION: &str = r#"{
      "notificationType":"Complaint",
      "complaint":{
        "userAgent":"AnyCompany Feedback Loop (V0.01)",
        "complainedRecipients":[{"emailAddress":"richard@example.com"}],
        "complaintFeedbackType":"abuse",
        "arrivalDate":"2016-01-27T14:59:38.237Z",
        "timestamp":"2016-01-27T14:59:38.237Z",
        "feedbackId":"000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
      },
      "mail":{
        "timestamp":"2016-01-27T14:59:38.237Z",
        "messageId":"000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
        "source":"john@example.com",
        "destination":["jane@example.com","mary@example.com","richard@example.com"]
      }
    }"#;

    const DELIVERY_NOTIFICATION: &str = r#"{
      "notificationType":"Delivery",
      "mail":{
        "timestamp":"2016-01-27T14:59:38.237Z",
        "messageId":"0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        "source":"john@example.com",
        "destination":["jane@example.com"]
      },
      "delivery":{
        "timestamp":"2016-01-27T14:59:38.237Z",
        "recipients":["jane@example.com"],
        "processingTimeMillis":546,
        "reportingMTA":"a8-70.smtp-out.amazonses.com",
        "smtpResponse":"250 ok:  Message 64111812 accepted",
        "remoteMtaIp":"127.0.2.0"
      }
    }"#;

    // From the End User Messaging SMS guide, "two-way SMS message payload".
    const INBOUND_SMS: &str = r#"{
      "originationNumber":"+14255550182",
      "destinationNumber":"+12125550101",
      "messageKeyword":"JOIN",
      "messageBody":"STOP",
      "inboundMessageId":"cae173d2-66b9-564c-8309-21f858e9fb84",
      "previousPublishedMessageId":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    }"#;

    #[test]
    fn d6_recognises_a_permanent_bounce_notification() {
        assert_eq!(
            recognise(BOUNCE_NOTIFICATION),
            InboundEvent::Ses(SesEvent::Bounce(SesBounce {
                bounce_type: BounceType::Permanent,
                recipients: vec!["jane@example.com".into()],
                mail_message_id: Some(
                    "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000".into()
                ),
            }))
        );
    }

    #[test]
    fn d6_recognises_a_transient_bounce_event_record() {
        let InboundEvent::Ses(SesEvent::Bounce(bounce)) = recognise(BOUNCE_EVENT) else {
            panic!("not a bounce");
        };
        assert_eq!(bounce.bounce_type, BounceType::Transient);
        assert_eq!(
            bounce.recipients,
            ["recipient@example.com", "other@example.com"]
        );
    }

    #[test]
    fn d6_recognises_a_complaint() {
        assert_eq!(
            recognise(COMPLAINT_NOTIFICATION),
            InboundEvent::Ses(SesEvent::Complaint(SesComplaint {
                recipients: vec!["richard@example.com".into()],
                mail_message_id: Some(
                    "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000".into()
                ),
            }))
        );
        let event = COMPLAINT_NOTIFICATION.replace("\"notificationType\"", "\"eventType\"");
        assert!(matches!(
            recognise(&event),
            InboundEvent::Ses(SesEvent::Complaint(_))
        ));
    }

    #[test]
    fn d6_recognises_a_delivery() {
        assert_eq!(
            recognise(DELIVERY_NOTIFICATION),
            InboundEvent::Ses(SesEvent::Delivery(SesDelivery {
                mail_message_id: "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000"
                    .into(),
                recipients: vec!["jane@example.com".into()],
            }))
        );
    }

    #[test]
    fn d6_recognises_an_inbound_sms() {
        assert_eq!(
            recognise(INBOUND_SMS),
            InboundEvent::Sms(InboundSms {
                origination_number: "+14255550182".into(),
                destination_number: Some("+12125550101".into()),
                message_body: "STOP".into(),
                inbound_message_id: Some("cae173d2-66b9-564c-8309-21f858e9fb84".into()),
            })
        );
    }

    #[test]
    fn d6_unknown_shapes_are_unknown_not_errors() {
        for message in [
            "Hello world!",
            "",
            "[]",
            "42",
            r#"{"hello":"world"}"#,
            r#"{"eventType":"Open","open":{"ipAddress":"192.0.2.1"},"mail":{"messageId":"x"}}"#,
            r#"{"notificationType":"Bounce","bounce":{"bounceType":"Sideways"}}"#,
            r#"{"notificationType":"Bounce"}"#,
            r#"{"notificationType":"Delivery","delivery":{"recipients":["a@example.com"]}}"#,
            r#"{"eventType":42}"#,
            r#"{"originationNumber":"+14255550182","messageBody":7}"#,
            r#"{"originationNumber":"+14255550182"}"#,
        ] {
            assert_eq!(recognise(message), InboundEvent::Unknown, "{message}");
        }
    }

    #[test]
    fn d4_each_event_has_its_effect_and_texts_count_only_to_our_numbers() {
        use crate::sender::SenderNumber;
        let numbers = SmsNumbers {
            origination: Some(SenderNumber::parse("+18005550100").unwrap()),
            opt_in: None,
        };
        let bounce = |t| {
            InboundEvent::Ses(SesEvent::Bounce(SesBounce {
                bounce_type: t,
                recipients: vec!["a@example.com".into()],
                mail_message_id: Some("m-1".into()),
            }))
        };
        assert!(matches!(
            effect_of(bounce(BounceType::Permanent), &numbers),
            Effect::Suppress {
                reason: "bounce",
                status: DeliveryStatus::Bounced,
                ..
            }
        ));
        assert_eq!(
            effect_of(bounce(BounceType::Transient), &numbers),
            Effect::TransientBounce {
                mail_message_id: Some("m-1".into())
            }
        );
        let text = |to: &str, body: &str| {
            InboundEvent::Sms(InboundSms {
                origination_number: "+12025550147".into(),
                destination_number: Some(to.into()),
                message_body: body.into(),
                inbound_message_id: None,
            })
        };
        assert_eq!(
            effect_of(text("+18005550100", " stop "), &numbers),
            Effect::OptOut {
                phone: PhoneE164::parse("+12025550147").unwrap(),
                opted_out: true
            }
        );
        assert_eq!(
            effect_of(text("+18005550199", "STOP"), &numbers),
            Effect::NotOurNumber
        );
        assert_eq!(
            effect_of(text("+18005550100", "hello"), &numbers),
            Effect::IgnoredText
        );
        assert_eq!(effect_of(InboundEvent::Unknown, &numbers), Effect::Unknown);
    }

    #[test]
    fn d4_a_transient_bounce_is_sent_again_only_while_the_code_outlives_the_pause() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .to_utc();
        let b = Bounced {
            status: Some(DeliveryStatus::Sent),
            sealed_kept: true,
            attempts: 1,
            code_done: false,
            code_expires_at: now + Duration::minutes(10),
        };
        assert_eq!(
            resend_after_bounce(b, now),
            Some(now + Duration::seconds(30))
        );
        assert_eq!(bounce_backoff(2), Duration::seconds(60));
        assert_eq!(bounce_backoff(9), Duration::seconds(240));
        let no = |b: Bounced| assert_eq!(resend_after_bounce(b, now), None);
        no(Bounced {
            attempts: MAX_SENDS,
            ..b
        });
        no(Bounced {
            sealed_kept: false,
            ..b
        });
        no(Bounced {
            code_done: true,
            ..b
        });
        no(Bounced {
            code_expires_at: now + Duration::seconds(20),
            ..b
        });
        no(Bounced {
            status: Some(DeliveryStatus::Bounced),
            ..b
        });
    }
}
