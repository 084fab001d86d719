//! The per-client-IP limit on failed sign-ins (GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE).
//!
//! Only failures count: a clinic's staff share one public address, and a busy front
//! desk signing in at opening time must not be refused. Brute force, password spraying
//! and credential stuffing are mostly failures, and once an address is over its limit
//! every further attempt from it is refused before any Argon2 work is done.
//!
//! Each process counts in memory. With Redis ([`crate::shared`]) the failures are also
//! counted there, by one script per failure, so that every API process behind the load
//! balancer refuses an address once the sum of its failures anywhere is over the limit.
//! When Redis does not answer, the process's own count still applies.

use crate::shared::{COMMAND_TIMEOUT, OutageLog, RedisSettings};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::sync::Cache;
use redis::aio::ConnectionManager;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Limits {
    per_minute: u32,
    /// Failures per IP: `per_minute` in a burst, refilled evenly over the minute.
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses over their limit, and until when.
    blocked: Cache<IpAddr, Instant>,
}

/// Counts failed sign-ins per IP; does nothing when the limit is 0.
pub struct LoginLimiter {
    limits: Option<Limits>,
    failures_seen: AtomicU64,
    shared: Option<SharedLimits>,
}

/// The same limit counted in Redis, across processes.
struct SharedLimits {
    conn: ConnectionManager,
    settings: RedisSettings,
    per_minute: u32,
    script: redis::Script,
}

static OUTAGE: OutageLog = OutageLog::new("failed sign-ins are counted per process");

/// GCRA over Redis' clock, one key per address: the theoretical arrival time of the next
/// failure. A failure that would go past the burst (limit - 1 emission intervals ahead)
/// is not recorded; it blocks the address until the allowance refills by one, exactly as
/// the in-process limiter does. Answers the milliseconds of the block, or 0.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now <= burst * interval then
  redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil(next_tat - now))
  return 0
end
local wait = next_tat - now - burst * interval
if wait < 1000 then wait = 1000 end
redis.call('SET', KEYS[2], 1, 'PX', wait)
return wait
";

impl LoginLimiter {
    /// A limiter allowing `per_minute` failed attempts per IP per minute.
    pub fn new(per_minute: u32) -> Self {
        let limits = NonZeroU32::new(per_minute).map(|n| {
            // The failure that uses the last of the burst blocks the address, so a burst
            // of n - 1 lets exactly n failures through before attempts are refused.
            let burst = NonZeroU32::new(per_minute.saturating_sub(1)).unwrap_or(n);
            Limits {
                per_minute,
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
            shared: None,
        }
    }

    /// Also counts in Redis, shared with every process using the same settings.
    pub fn with_redis(mut self, conn: ConnectionManager, settings: RedisSettings) -> Self {
        if let Some(per_minute) = self.limits.as_ref().map(|l| l.per_minute) {
            self.shared = Some(SharedLimits {
                conn,
                settings,
                per_minute,
                script: redis::Script::new(GCRA),
            });
        }
        self
    }

    /// `Ok` when an attempt from `ip` may go ahead, else the seconds to wait: blocked here,
    /// or (with Redis) by the failures counted across processes.
    pub async fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_local(ip)?;
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut conn = shared.conn.clone();
        let key = shared.settings.key(&format!("login:block:{ip}"));
        let pttl = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PTTL").arg(&key).query_async::<i64>(&mut conn),
        )
        .await;
        match pttl {
            Ok(Ok(ms)) if ms > 0 => Err(ms.unsigned_abs().div_ceil(1000)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                OUTAGE.failed(&e);
                Ok(())
            }
            Err(_) => {
                OUTAGE.failed(&"timed out");
                Ok(())
            }
        }
    }

    fn check_local(&self, ip: IpAddr) -> Result<(), u64> {
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

    /// Counts a failed attempt from `ip`, here and (with Redis) across processes; over the
    /// limit, blocks the address for as long as it takes the allowance to refill by one.
    pub async fn record_failure(&self, ip: IpAddr) {
        self.record_local(ip);
        let Some(shared) = &self.shared else {
            return;
        };
        let mut conn = shared.conn.clone();
        let interval_ms = 60_000 / u64::from(shared.per_minute);
        let burst = shared.per_minute.saturating_sub(1).max(1);
        let mut call = shared.script.prepare_invoke();
        call.key(shared.settings.key(&format!("login:gcra:{ip}")))
            .key(shared.settings.key(&format!("login:block:{ip}")))
            .arg(interval_ms)
            .arg(burst);
        match tokio::time::timeout(COMMAND_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => OUTAGE.failed(&e),
            Err(_) => OUTAGE.failed(&"timed out"),
        }
    }

    fn record_local(&self, ip: IpAddr) {
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
            assert!(l.check_local(ip).is_ok());
            l.record_local(ip);
        }
        let wait = l.check_local(ip).err().unwrap_or(0);
        assert!((1..=20).contains(&wait), "{wait}");
        // Other addresses are unaffected.
        assert!(l.check_local([127, 0, 0, 10].into()).is_ok());
    }

    #[test]
    fn p4_checks_alone_never_block_and_zero_disables() {
        let l = LoginLimiter::new(2);
        let ip: IpAddr = [127, 0, 0, 11].into();
        for _ in 0..100 {
            assert!(l.check_local(ip).is_ok());
        }
        let off = LoginLimiter::new(0);
        for _ in 0..100 {
            off.record_local(ip);
        }
        assert!(off.check_local(ip).is_ok());
    }
}
