//! An SNS message as posted to an HTTP(S) subscriber, and the string AWS signs for it.

use serde::Deserialize;

/// The `Type` of an SNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    SubscriptionConfirmation,
    Notification,
    UnsubscribeConfirmation,
}

impl MessageType {
    /// The value as SNS writes it (and signs it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::Notification => "Notification",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "SubscriptionConfirmation" => Some(Self::SubscriptionConfirmation),
            "Notification" => Some(Self::Notification),
            "UnsubscribeConfirmation" => Some(Self::UnsubscribeConfirmation),
            _ => None,
        }
    }
}

/// `SignatureVersion`: 1 is SHA1withRSA, 2 is SHA256withRSA (RSASSA-PKCS1-v1_5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureVersion {
    V1,
    V2,
}

impl SignatureVersion {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "1" => Some(Self::V1),
            "2" => Some(Self::V2),
            _ => None,
        }
    }
}

/// The fields particular to each message type; a confirmation cannot lack its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnsKind {
    Notification {
        subject: Option<String>,
        unsubscribe_url: Option<String>,
    },
    SubscriptionConfirmation {
        subscribe_url: String,
        token: String,
    },
    UnsubscribeConfirmation {
        subscribe_url: String,
        token: String,
    },
}

/// A well-formed SNS message. Being parsed says nothing about who sent it: only
/// [`super::Verifier::verify`] does that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    pub message_id: String,
    pub topic_arn: String,
    /// `Message`: for a notification, what the publisher sent (often JSON).
    pub message: String,
    /// `Timestamp`, exactly as sent (it is part of the signed string).
    pub timestamp: String,
    pub signature_version: SignatureVersion,
    /// `Signature`, base64 as sent.
    pub signature: String,
    pub signing_cert_url: String,
    pub kind: SnsKind,
}

/// Why a body is not a well-formed SNS message.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not an SNS message object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the field {0} is missing or empty")]
    MissingField(&'static str),
    #[error("unknown message Type {0:?}")]
    UnknownType(String),
    /// Well-formed but not verifiable: the verifier refuses it as a bad signature.
    #[error("unsupported SignatureVersion {0:?}")]
    UnsupportedSignatureVersion(String),
}

// Every member SNS signs or we use, as optional strings: presence is checked per type
// below. Unknown members (e.g. MessageAttributes) are ignored; a duplicated member is an
// error in serde's derived visitor, so two parsers cannot read different values.
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "MessageId")]
    message_id: Option<String>,
    #[serde(rename = "TopicArn")]
    topic_arn: Option<String>,
    #[serde(rename = "Subject")]
    subject: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "Timestamp")]
    timestamp: Option<String>,
    #[serde(rename = "SignatureVersion")]
    signature_version: Option<String>,
    #[serde(rename = "Signature")]
    signature: Option<String>,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: Option<String>,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "UnsubscribeURL")]
    unsubscribe_url: Option<String>,
}

fn required(value: Option<String>, name: &'static str) -> Result<String, ParseError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(ParseError::MissingField(name))
}

impl SnsMessage {
    /// Parses the raw request body (JSON, although SNS labels it text/plain).
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let wire: Wire = serde_json::from_slice(body)?;
        let type_text = required(wire.kind, "Type")?;
        let message_type =
            MessageType::parse(&type_text).ok_or(ParseError::UnknownType(type_text))?;
        let version_text = required(wire.signature_version, "SignatureVersion")?;
        let signature_version = SignatureVersion::parse(&version_text)
            .ok_or(ParseError::UnsupportedSignatureVersion(version_text))?;
        let kind = match message_type {
            MessageType::Notification => SnsKind::Notification {
                subject: wire.subject,
                unsubscribe_url: wire.unsubscribe_url,
            },
            MessageType::SubscriptionConfirmation => SnsKind::SubscriptionConfirmation {
                subscribe_url: required(wire.subscribe_url, "SubscribeURL")?,
                token: required(wire.token, "Token")?,
            },
            MessageType::UnsubscribeConfirmation => SnsKind::UnsubscribeConfirmation {
                subscribe_url: required(wire.subscribe_url, "SubscribeURL")?,
                token: required(wire.token, "Token")?,
            },
        };
        Ok(Self {
            message_id: required(wire.message_id, "MessageId")?,
            topic_arn: required(wire.topic_arn, "TopicArn")?,
            // An empty Message is still signed as such; only absence is malformed.
            message: wire.message.ok_or(ParseError::MissingField("Message"))?,
            timestamp: required(wire.timestamp, "Timestamp")?,
            signature_version,
            signature: required(wire.signature, "Signature")?,
            signing_cert_url: required(wire.signing_cert_url, "SigningCertURL")?,
            kind,
        })
    }

    /// The message's `Type`.
    pub fn message_type(&self) -> MessageType {
        match self.kind {
            SnsKind::Notification { .. } => MessageType::Notification,
            SnsKind::SubscriptionConfirmation { .. } => MessageType::SubscriptionConfirmation,
            SnsKind::UnsubscribeConfirmation { .. } => MessageType::UnsubscribeConfirmation,
        }
    }

    /// The string SNS signs, as AWS documents it: "Name\nvalue\n" for each signed field
    /// in byte order of the names. Notification: Message, MessageId, Subject (only if
    /// present), Timestamp, TopicArn, Type. Confirmations: Message, MessageId,
    /// SubscribeURL, Timestamp, Token, TopicArn, Type.
    pub fn string_to_sign(&self) -> String {
        let mut out = String::with_capacity(self.message.len() + 512);
        let mut field = |name: &str, value: &str| {
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        };
        field("Message", &self.message);
        field("MessageId", &self.message_id);
        match &self.kind {
            SnsKind::Notification { subject, .. } => {
                if let Some(subject) = subject {
                    field("Subject", subject);
                }
                field("Timestamp", &self.timestamp);
            }
            SnsKind::SubscriptionConfirmation {
                subscribe_url,
                token,
            }
            | SnsKind::UnsubscribeConfirmation {
                subscribe_url,
                token,
            } => {
                field("SubscribeURL", subscribe_url);
                field("Timestamp", &self.timestamp);
                field("Token", token);
            }
        }
        field("TopicArn", &self.topic_arn);
        field("Type", self.message_type().as_str());
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // Shapes from the AWS SNS developer guide (HTTP/HTTPS notification and
    // subscription confirmation JSON formats).
    const NOTIFICATION: &str = r#"{
      "Type" : "Notification",
      "MessageId" : "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
      "TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic",
      "Subject" : "My First Message",
      "Message" : "Hello world!",
      "Timestamp" : "2012-05-02T00:54:06.655Z",
      "SignatureVersion" : "1",
      "Signature" : "EXAMPLEw6JRN...",
      "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
      "UnsubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96"
    }"#;

    const CONFIRMATION: &str = r#"{
      "Type" : "SubscriptionConfirmation",
      "MessageId" : "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
      "Token" : "2336412f37...",
      "TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic",
      "Message" : "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
      "SubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37...",
      "Timestamp" : "2012-04-26T20:45:04.751Z",
      "SignatureVersion" : "2",
      "Signature" : "EXAMPLEpH+...",
      "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
    }"#;

    #[test]
    fn d6_notification_string_to_sign_includes_subject_when_present() {
        let msg = SnsMessage::parse(NOTIFICATION.as_bytes()).unwrap();
        assert_eq!(msg.message_type(), MessageType::Notification);
        assert_eq!(msg.signature_version, SignatureVersion::V1);
        assert_eq!(
            msg.string_to_sign(),
            "Message\nHello world!\n\
             MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
             Subject\nMy First Message\n\
             Timestamp\n2012-05-02T00:54:06.655Z\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nNotification\n"
        );
    }

    #[test]
    fn d6_notification_string_to_sign_omits_absent_or_null_subject() {
        let without = NOTIFICATION.replace("\"Subject\" : \"My First Message\",", "");
        let null = NOTIFICATION.replace("\"My First Message\"", "null");
        for body in [without, null] {
            let msg = SnsMessage::parse(body.as_bytes()).unwrap();
            assert_eq!(
                msg.string_to_sign(),
                "Message\nHello world!\n\
                 MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
                 Timestamp\n2012-05-02T00:54:06.655Z\n\
                 TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
                 Type\nNotification\n"
            );
        }
    }

    #[test]
    fn d6_confirmation_string_to_sign_has_subscribe_url_and_token() {
        let msg = SnsMessage::parse(CONFIRMATION.as_bytes()).unwrap();
        assert_eq!(msg.message_type(), MessageType::SubscriptionConfirmation);
        assert_eq!(msg.signature_version, SignatureVersion::V2);
        assert_eq!(
            msg.string_to_sign(),
            "Message\nYou have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\n\
             To confirm the subscription, visit the SubscribeURL included in this message.\n\
             MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n\
             SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37...\n\
             Timestamp\n2012-04-26T20:45:04.751Z\n\
             Token\n2336412f37...\n\
             TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n\
             Type\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn d6_unsubscribe_confirmation_signs_like_a_subscription_confirmation() {
        let body = CONFIRMATION.replace(
            "\"SubscriptionConfirmation\"",
            "\"UnsubscribeConfirmation\"",
        );
        let msg = SnsMessage::parse(body.as_bytes()).unwrap();
        assert_eq!(msg.message_type(), MessageType::UnsubscribeConfirmation);
        assert!(
            msg.string_to_sign()
                .ends_with("Type\nUnsubscribeConfirmation\n")
        );
        assert!(msg.string_to_sign().contains("\nToken\n2336412f37...\n"));
    }

    #[test]
    fn d6_malformed_bodies_are_typed_errors() {
        assert!(matches!(
            SnsMessage::parse(b"not json"),
            Err(ParseError::Json(_))
        ));
        assert!(matches!(
            SnsMessage::parse(b"[1,2]"),
            Err(ParseError::Json(_))
        ));
        assert!(matches!(
            SnsMessage::parse(NOTIFICATION.replace("\"Hello world!\"", "42").as_bytes()),
            Err(ParseError::Json(_))
        ));
        assert!(matches!(
            SnsMessage::parse(NOTIFICATION.replace("\"Notification\"", "\"Nope\"").as_bytes()),
            Err(ParseError::UnknownType(t)) if t == "Nope"
        ));
        assert!(matches!(
            SnsMessage::parse(
                NOTIFICATION
                    .replace(
                        "\"MessageId\" : \"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\",",
                        ""
                    )
                    .as_bytes()
            ),
            Err(ParseError::MissingField("MessageId"))
        ));
        assert!(matches!(
            SnsMessage::parse(CONFIRMATION.replace("\"Token\"", "\"Tokens\"").as_bytes()),
            Err(ParseError::MissingField("Token"))
        ));
        assert!(matches!(
            SnsMessage::parse(
                NOTIFICATION
                    .replace("\"SignatureVersion\" : \"1\"", "\"SignatureVersion\" : \"3\"")
                    .as_bytes()
            ),
            Err(ParseError::UnsupportedSignatureVersion(v)) if v == "3"
        ));
    }

    #[test]
    fn d6_a_duplicated_member_is_malformed() {
        let body = NOTIFICATION.replace(
            "\"Message\" : \"Hello world!\",",
            "\"Message\" : \"Hello world!\", \"Message\" : \"Other\",",
        );
        assert!(matches!(
            SnsMessage::parse(body.as_bytes()),
            Err(ParseError::Json(_))
        ));
    }
}
