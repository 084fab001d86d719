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

#[cfg(test)]
mod tests {
    use super::*;

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
