//! The deployment's own SMS numbers (D3): what codes are sent from, what users text
//! START to, and so the only numbers an inbound STOP or START may be addressed to.
//!
//! Carriers use E.164 long codes, toll-free numbers (E.164 too, e.g. +18005550100) and
//! 5-6 digit short codes, which practices advertise as `50120` or `501-20`.

use crate::ids::PhoneE164;
use crate::validation::FieldError;
use std::fmt;

/// A number SMS are sent from or users text to: a phone number (long code or toll-free)
/// or a short code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SenderNumber {
    /// A long code or toll-free number, in E.164.
    E164(PhoneE164),
    /// A 5-6 digit short code.
    ShortCode(ShortCode),
}

/// A 5-6 digit short code, with the form the operator wrote (`50120` or `501-20`) kept
/// for display: it is how the practice tells users about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShortCode {
    digits: String,
    display: String,
}

impl ShortCode {
    /// Parses `50120`, `501-20`, `501200`: 5 or 6 digits, at most one dash between them.
    pub fn parse(input: &str) -> Option<Self> {
        let s = input.trim();
        let dashes = s.bytes().filter(|b| *b == b'-').count();
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let well_formed = s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            && dashes <= 1
            && !s.starts_with('-')
            && !s.ends_with('-')
            && (5..=6).contains(&digits.len());
        well_formed.then(|| Self {
            digits,
            display: s.to_owned(),
        })
    }

    /// The digits alone (`50120`), as AWS takes and writes them.
    pub fn digits(&self) -> &str {
        &self.digits
    }
}

impl SenderNumber {
    /// Parses a short code (5-6 digits, optionally one dash) or a phone number written
    /// with its `+` and country code (normalised to E.164). Without the `+`, a mistyped
    /// short code such as `5012345` would read as a US number.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        if let Some(code) = ShortCode::parse(input) {
            return Ok(Self::ShortCode(code));
        }
        let bad = || {
            FieldError::new(
                "number",
                "not a phone number in E.164 (e.g. +12025550100) or a 5-6 digit short code (e.g. 50120 or 501-20)",
            )
        };
        if !input.trim_start().starts_with('+') {
            return Err(bad());
        }
        PhoneE164::parse(input).map(Self::E164).map_err(|_| bad())
    }

    /// The value for AWS (the SNS `AWS.MM.SMS.OriginationNumber` attribute): E.164, or a
    /// short code's digits.
    pub fn aws_value(&self) -> &str {
        match self {
            Self::E164(p) => p.as_str(),
            Self::ShortCode(c) => c.digits(),
        }
    }

    /// Whether a number as AWS writes it (`destinationNumber` of an inbound SMS) is this
    /// one. Short codes compare by digits (AWS may write `50120` or `+50120`).
    pub fn is(&self, raw: &str) -> bool {
        match self {
            Self::E164(p) => PhoneE164::parse(raw).is_ok_and(|other| other == *p),
            Self::ShortCode(c) => {
                let s = raw.trim();
                let s = s.strip_prefix('+').unwrap_or(s);
                ShortCode::parse(s).is_some_and(|other| other.digits == c.digits)
            }
        }
    }
}

impl fmt::Display for SenderNumber {
    /// E.164 for phone numbers; a short code as configured (`501-20` stays `501-20`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::E164(p) => f.write_str(p.as_str()),
            Self::ShortCode(c) => f.write_str(&c.display),
        }
    }
}

/// The deployment's SMS numbers: where codes come from and where users text START.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsNumbers {
    /// GATEHOUSE_SMS_ORIGINATION_NUMBER.
    pub origination: Option<SenderNumber>,
    /// GATEHOUSE_SMS_OPT_IN_NUMBER.
    pub opt_in: Option<SenderNumber>,
}

impl SmsNumbers {
    /// The number named in `phone_opted_out` answers: the opt-in number, else the
    /// origination number.
    pub fn opt_in_number(&self) -> Option<&SenderNumber> {
        self.opt_in.as_ref().or(self.origination.as_ref())
    }

    /// Whether an inbound SMS sent to `destination` was sent to one of our numbers. An
    /// SMS to any other number (or to none) is not ours to act on: anyone can publish
    /// a well-formed inbound SMS to a topic of their own (D3, D6).
    pub fn is_ours(&self, destination: Option<&str>) -> bool {
        let Some(destination) = destination else {
            return false;
        };
        [&self.origination, &self.opt_in]
            .into_iter()
            .flatten()
            .any(|n| n.is(destination))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn d3_short_codes_parse_with_or_without_a_dash_and_keep_their_form() {
        for (input, digits, shown) in [
            ("50120", "50120", "50120"),
            ("501-20", "50120", "501-20"),
            (" 501-20 ", "50120", "501-20"),
            ("123456", "123456", "123456"),
            ("123-456", "123456", "123-456"),
        ] {
            let n = SenderNumber::parse(input).unwrap();
            assert!(matches!(n, SenderNumber::ShortCode(_)), "{input}");
            assert_eq!(n.aws_value(), digits, "{input}");
            assert_eq!(n.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn d3_phone_and_toll_free_numbers_parse_to_e164() {
        for (input, e164) in [
            ("+12025550100", "+12025550100"),
            ("+1 (202) 555-0100", "+12025550100"),
            ("+18005550100", "+18005550100"),
            ("+1 833 555 0100", "+18335550100"),
            ("+447700900123", "+447700900123"),
        ] {
            let n = SenderNumber::parse(input).unwrap();
            assert!(matches!(n, SenderNumber::E164(_)), "{input}");
            assert_eq!(n.aws_value(), e164);
            assert_eq!(n.to_string(), e164);
        }
    }

    #[test]
    fn d3_other_text_is_refused() {
        for bad in [
            "",
            "call me",
            "1234",
            "1234567",
            "5012345",
            "12025550100",
            "50-1-20",
            "-50120",
            "50120-",
            "5012O",
            "+",
            "501 20",
        ] {
            assert!(SenderNumber::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn d3_inbound_sms_counts_only_when_sent_to_one_of_our_numbers() {
        let numbers = SmsNumbers {
            origination: Some(SenderNumber::parse("+18005550100").unwrap()),
            opt_in: Some(SenderNumber::parse("501-20").unwrap()),
        };
        for ours in ["+18005550100", "18005550100", "50120", "+50120", "501-20"] {
            assert!(numbers.is_ours(Some(ours)), "{ours}");
        }
        for other in ["+18005550199", "50121", "+12025550100", "", "x"] {
            assert!(!numbers.is_ours(Some(other)), "{other}");
        }
        assert!(!numbers.is_ours(None));
        assert!(!SmsNumbers::default().is_ours(Some("+18005550100")));
    }

    #[test]
    fn d3_the_opt_in_number_defaults_to_the_origination_number() {
        let origination = SenderNumber::parse("+18005550100").unwrap();
        let mut numbers = SmsNumbers {
            origination: Some(origination.clone()),
            opt_in: None,
        };
        assert_eq!(numbers.opt_in_number(), Some(&origination));
        numbers.opt_in = Some(SenderNumber::parse("50120").unwrap());
        assert_eq!(numbers.opt_in_number().unwrap().to_string(), "50120");
    }
}
