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
