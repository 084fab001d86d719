//! Remembered devices (M7): after a second factor the user may have the device
//! remembered; the device gets a random token of which only a hash is stored. It is
//! valid for that user only, for the tenant's remember period.

use chrono::{DateTime, Duration, Utc};

pub use crate::session::{NewToken, hash_token, new_token};

/// When a device remembered at `at` stops being trusted; `None` when the tenant
/// disabled remembering (0 hours).
pub fn remembered_until(at: DateTime<Utc>, remember_hours: u32) -> Option<DateTime<Utc>> {
    (remember_hours > 0).then(|| at + Duration::hours(i64::from(remember_hours)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m7_remember_period_follows_the_tenant_and_zero_disables() {
        let t = Utc::now();
        assert_eq!(remembered_until(t, 18), Some(t + Duration::hours(18)));
        assert_eq!(remembered_until(t, 0), None);
    }
}
