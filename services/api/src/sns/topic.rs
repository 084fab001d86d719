//! Which topics the webhook believes: the deployment's own (`GATEHOUSE_SNS_TOPIC_ARNS`).
//!
//! A valid signature only proves that SNS sent the message. Any AWS account can create
//! a topic, subscribe this endpoint to it and publish what it likes, and SNS signs that
//! too; so the topic, not the signature, says whose message it is.

use std::fmt;
use std::str::FromStr;

/// An SNS topic ARN: `arn:<partition>:sns:<region>:<account id>:<topic name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicArn(String);

/// Why a configured topic ARN is refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an SNS topic ARN (arn:aws:sns:<region>:<12-digit account>:<name>)")]
pub struct TopicArnError(String);

impl TopicArn {
    /// Parses a topic ARN, exactly (ARNs are case-sensitive and compared as written).
    pub fn parse(text: &str) -> Result<Self, TopicArnError> {
        let s = text.trim();
        let bad = || TopicArnError(text.to_owned());
        let parts: Vec<&str> = s.split(':').collect();
        let [arn, partition, service, region, account, name] = parts[..] else {
            return Err(bad());
        };
        let lower = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        let valid = arn == "arn"
            && lower(partition)
            && partition.starts_with("aws")
            && service == "sns"
            && lower(region)
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && (1..=256).contains(&base.len())
            && base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(bad())
        }
    }

    /// The ARN as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TopicArn {
    type Err = TopicArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TopicArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The topics whose messages are believed. None configured: no message is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPolicy {
    topics: Vec<TopicArn>,
}

impl TopicPolicy {
    /// A policy believing exactly these topics (none: nothing).
    pub fn new(topics: Vec<TopicArn>) -> Self {
        Self { topics }
    }

    /// The believed topics.
    pub fn topics(&self) -> &[TopicArn] {
        &self.topics
    }

    /// Whether a message's `TopicArn` is one of ours (compared exactly).
    pub fn admits(&self, topic_arn: &str) -> bool {
        self.topics.iter().any(|t| t.as_str() == topic_arn)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn d6_topic_arns_parse_and_compare_exactly() {
        let ours =
            TopicArn::parse(" arn:aws:sns:us-east-1:123456789012:gatehouse-events ").unwrap();
        assert_eq!(
            ours.as_str(),
            "arn:aws:sns:us-east-1:123456789012:gatehouse-events"
        );
        for good in [
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t_1",
            "arn:aws:sns:eu-west-1:123456789012:orders.fifo",
        ] {
            assert!(TopicArn::parse(good).is_ok(), "{good}");
        }
        let policy = TopicPolicy::new(vec![ours]);
        assert!(policy.admits("arn:aws:sns:us-east-1:123456789012:gatehouse-events"));
        for other in [
            "arn:aws:sns:us-east-1:999999999999:gatehouse-events",
            "arn:aws:sns:us-east-1:123456789012:gatehouse-events2",
            "arn:aws:sns:us-east-1:123456789012:Gatehouse-events",
            " arn:aws:sns:us-east-1:123456789012:gatehouse-events",
            "",
        ] {
            assert!(!policy.admits(other), "{other}");
        }
        assert!(
            !TopicPolicy::default().admits("arn:aws:sns:us-east-1:123456789012:gatehouse-events")
        );
    }

    #[test]
    fn d6_other_text_is_not_a_topic_arn() {
        for bad in [
            "",
            "gatehouse-events",
            "arn:aws:sqs:us-east-1:123456789012:queue",
            "arn:aws:sns:us-east-1:12345:short-account",
            "arn:aws:sns:us-east-1:123456789012:",
            "arn:aws:sns:us-east-1:123456789012:a:b",
            "arn:aws:sns:us-east-1:123456789012:has space",
            "arn:aws:sns::123456789012:no-region",
            "arn:evil:sns:us-east-1:123456789012:t",
            "https://sns.us-east-1.amazonaws.com/",
        ] {
            assert!(TopicArn::parse(bad).is_err(), "{bad:?}");
        }
    }
}
