//! The per-client-IP limit on sign-in attempts (GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts sign-in attempts per IP; `None` inside when disabled.
pub struct LoginLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
}

impl LoginLimiter {
    /// A limiter allowing `per_minute` attempts per IP (a burst of that many, refilled evenly).
    pub fn new(per_minute: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            checks: AtomicU64::new(0),
        }
    }

    /// `Ok` when the attempt may go ahead, else the seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        // Forget idle IPs now and then so the table stays bounded.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            limiter.retain_recent();
        }
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_beyond_the_quota_wait() {
        let l = LoginLimiter::new(3);
        let ip: IpAddr = [127, 0, 0, 9].into();
        for _ in 0..3 {
            assert!(l.check(ip).is_ok());
        }
        let wait = l.check(ip).err().unwrap_or(0);
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.check([127, 0, 0, 10].into()).is_ok());
        assert!(LoginLimiter::new(0).check(ip).is_ok());
    }
}
