//! The life of one message to a user (D5): what support reads to answer "why didn't my
//! code arrive?".

use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sent,
    Delivered,
    Bounced,
    Complained,
    Suppressed,
    OptedOut,
    Failed,
}

impl DeliveryStatus {
    const ALL: [DeliveryStatus; 8] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Bounced,
        DeliveryStatus::Complained,
        DeliveryStatus::Suppressed,
        DeliveryStatus::OptedOut,
        DeliveryStatus::Failed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Bounced => "bounced",
            DeliveryStatus::Complained => "complained",
            DeliveryStatus::Suppressed => "suppressed",
            DeliveryStatus::OptedOut => "opted_out",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Refused before reaching a provider: such a send does not count toward the throttle (M4).
    pub fn refused_before_provider(self) -> bool {
        matches!(self, DeliveryStatus::Suppressed | DeliveryStatus::OptedOut)
    }

    /// Every status refused before a provider call.
    pub fn refused() -> impl Iterator<Item = DeliveryStatus> {
        Self::ALL
            .into_iter()
            .filter(|s| s.refused_before_provider())
    }
}

/// What an inbound text message asks for (D3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    OptOut,
    OptIn,
}

/// The opt-out keyword of an inbound SMS body: case-insensitive, surrounding whitespace
/// ignored, the whole body (carriers match the keyword alone, not inside sentences).
pub fn inbound_keyword(body: &str) -> Option<Keyword> {
    let word = body.trim().to_ascii_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(Keyword::OptOut),
        "START" | "UNSTOP" | "YES" => Some(Keyword::OptIn),
        _ => None,
    }
}

/// At most this many codes go to one destination per hour, across practices and users
/// (D7): one number cannot be used to flood someone.
pub const DESTINATION_MAX_PER_HOUR: u64 = 10;

/// Masks the email addresses and phone numbers inside a provider's error text (D5): a
/// provider may name the address it refused ("... failed the check: jane@example.com"),
/// and a delivery is shown with its destination masked only.
pub fn redact_destinations(text: &str) -> String {
    let separator = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';' | '<' | '>' | '"' | '\'' | '[' | ']' | '(' | ')' | '='
            )
    };
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(&redact_word(word));
        word.clear();
    };
    for c in text.chars() {
        if separator(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// One word of an error text, masked when it is an email address or a phone number.
fn redact_word(word: &str) -> String {
    use crate::ids::{EmailAddress, PhoneE164};
    // Trailing punctuation ("jane@example.com." or "+12025550147:") is not part of it.
    let core = word.trim_end_matches(['.', ':', '!', '?']);
    let rest = &word[core.len()..];
    if core.contains('@') {
        if let Ok(e) = EmailAddress::parse(core) {
            return format!("{}{rest}", e.masked());
        }
        if let Some((_, domain)) = core.rsplit_once('@') {
            return format!("•••@{domain}{rest}");
        }
    }
    // A number as providers write it: E.164 (+ and 7 to 15 digits), or 10 to 15 bare digits.
    let (plus, digits) = match core.strip_prefix('+') {
        Some(d) => (true, d),
        None => (false, core),
    };
    let n = digits.len();
    let phone =
        digits.bytes().all(|b| b.is_ascii_digit()) && n <= 15 && n >= if plus { 7 } else { 10 };
    if phone {
        let masked = PhoneE164::parse(core)
            .map(|p| p.masked())
            .unwrap_or_else(|_| format!("•••-•••-{}", &digits[n - 4..]));
        return format!("{masked}{rest}");
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d3_keywords_are_matched_whole_case_insensitively_and_trimmed() {
        for w in [
            "STOP",
            " stop ",
            "StopAll",
            "unsubscribe",
            "CANCEL",
            "end\n",
            "Quit",
        ] {
            assert_eq!(inbound_keyword(w), Some(Keyword::OptOut), "{w:?}");
        }
        for w in ["START", " start", "Unstop", "yes "] {
            assert_eq!(inbound_keyword(w), Some(Keyword::OptIn), "{w:?}");
        }
        for w in ["please stop", "STOP IT", "", "no", "halt"] {
            assert_eq!(inbound_keyword(w), None, "{w:?}");
        }
    }

    #[test]
    fn d5_destinations_inside_provider_errors_are_masked() {
        assert_eq!(
            redact_destinations(
                "MessageRejected: identities failed the check in region US-EAST-1: Jane@Example.com."
            ),
            "MessageRejected: identities failed the check in region US-EAST-1: J•••@example.com."
        );
        assert_eq!(
            redact_destinations("InvalidParameter: PhoneNumber=+12025550147 is opted out"),
            "InvalidParameter: PhoneNumber=•••-•••-0147 is opted out"
        );
        assert_eq!(
            redact_destinations("<bob@localhost> refused, retry 3 of 5 after 120 s"),
            "<•••@localhost> refused, retry 3 of 5 after 120 s"
        );
        let plain = "the code expired or was replaced before it could be sent";
        assert_eq!(redact_destinations(plain), plain);
        assert_eq!(
            redact_destinations("throttled 2026-11-24"),
            "throttled 2026-11-24"
        );
    }

    #[test]
    fn d5_status_names_round_trip_and_refusals_do_not_count() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
        let refused: Vec<_> = DeliveryStatus::refused().collect();
        assert_eq!(
            refused,
            [DeliveryStatus::Suppressed, DeliveryStatus::OptedOut]
        );
    }
}
