//! The per-client-IP limit on failed sign-ins (GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE).
//!
//! Only failures count: a clinic's staff share one public address, and a busy front
//! desk signing in at opening time must not be refused. Brute force, password spraying
//! and credential stuffing are mostly failures, and once an address is over its limit
//! every further attempt from it is refused before any Argon2 work is done.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::sync::Cache;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Limits {
    /// Failures per IP: `per_minute` in a burst, refilled evenly over the minute.
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses over their limit, and until when.
    blocked: Cache<IpAddr, Instant>,
}

/// Counts failed sign-ins per IP; does nothing when the limit is 0.
pub struct LoginLimiter {
    limits: Option<Limits>,
    failures_seen: AtomicU64,
}

impl LoginLimiter {
    /// A limiter allowing `per_minute` failed attempts per IP per minute.
    pub fn new(per_minute: u32) -> Self {
        let limits = NonZeroU32::new(per_minute).map(|n| {
            // The failure that uses the last of the burst blocks the address, so a burst
            // of n - 1 lets exactly n failures through before attempts are refused.
            let burst = NonZeroU32::new(per_minute.saturating_sub(1)).unwrap_or(n);
            Limits {
                failures: RateLimiter::keyed(Quota::per_minute(n).allow_burst(burst)),
                blocked: Cache::builder()
                    .max_capacity(1_000_000)
                    .time_to_live(Duration::from_secs(120))
                    .build(),
            }
        });
        Self {
            limits,
            failures_seen: AtomicU64::new(0),
        }
    }

    /// `Ok` when an attempt from `ip` may go ahead, else the seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(l) = &self.limits else {
            return Ok(());
        };
        match l.blocked.get(&ip) {
            Some(until) => {
                let now = Instant::now();
                if until > now {
                    let wait = until - now;
                    Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                } else {
                    l.blocked.invalidate(&ip);
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// Counts a failed attempt from `ip`; over the limit, blocks the address for as long
    /// as it takes the allowance to refill by one.
    pub fn record_failure(&self, ip: IpAddr) {
        let Some(l) = &self.limits else {
            return;
        };
        // Forget idle addresses now and then so the table stays bounded.
        if self.failures_seen.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            l.failures.retain_recent();
        }
        if let Err(not_until) = l.failures.check_key(&ip) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            l.blocked
                .insert(ip, Instant::now() + wait.max(Duration::from_secs(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p4_failures_beyond_the_limit_block_the_address() {
        let l = LoginLimiter::new(3);
        let ip: IpAddr = [127, 0, 0, 9].into();
        for _ in 0..3 {
            assert!(l.check(ip).is_ok());
            l.record_failure(ip);
        }
        let wait = l.check(ip).err().unwrap_or(0);
        assert!((1..=20).contains(&wait), "{wait}");
        // Other addresses are unaffected.
        assert!(l.check([127, 0, 0, 10].into()).is_ok());
    }

    #[test]
    fn p4_checks_alone_never_block_and_zero_disables() {
        let l = LoginLimiter::new(2);
        let ip: IpAddr = [127, 0, 0, 11].into();
        for _ in 0..100 {
            assert!(l.check(ip).is_ok());
        }
        let off = LoginLimiter::new(0);
        for _ in 0..100 {
            off.record_failure(ip);
        }
        assert!(off.check(ip).is_ok());
    }
}
