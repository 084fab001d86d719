//! The per-client-address limit on failed sign-ins (GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE).
//!
//! Only failures count: a clinic's staff share one public address, and a busy front
//! desk signing in at opening time must not be refused. Brute force, password spraying
//! and credential stuffing are mostly failures, and once an address is over its limit
//! every further attempt from it is refused before any Argon2 work is done.
//!
//! An attempt is taken before its password is checked ([`LoginLimiter::begin`]): while
//! attempts are in flight they hold a place in the allowance, so a burst of concurrent
//! guesses is judged as if it came one by one and never more guesses are checked than
//! the allowance has left. The [`Attempt`] then settles as a failure (kept) or not (its
//! place is given back).
//!
//! Addresses are counted as clients are: an IPv4 address alone, an IPv6 client by its
//! /64 (one customer's network; a client rotating inside it is still one client).
//!
//! Each process counts in memory. With Redis ([`crate::shared`]) the failures are also
//! counted there, by one script per failure, so that every API process behind the load
//! balancer refuses an address once the sum of its failures anywhere is over the limit.
//! When Redis does not answer, the process's own count still applies.

use crate::shared::{COMMAND_TIMEOUT, OutageLog, RedisSettings};
use moka::sync::Cache;
use redis::aio::ConnectionManager;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One client's failures: a GCRA "theoretical arrival time" (each failure moves it one
/// interval later, time moves it back) and the attempts being checked right now.
#[derive(Debug)]
struct Slot {
    tat: Instant,
    in_flight: u32,
}

struct Limits {
    per_minute: u32,
    interval: Duration,
    slots: Cache<IpAddr, Arc<Mutex<Slot>>>,
}

impl Limits {
    fn slot(&self, key: IpAddr) -> Arc<Mutex<Slot>> {
        self.slots.get_with(key, || {
            Arc::new(Mutex::new(Slot {
                tat: Instant::now(),
                in_flight: 0,
            }))
        })
    }

    /// Failures still inside the window at `now`.
    fn used(&self, slot: &Slot, now: Instant) -> u32 {
        let ahead = slot.tat.saturating_duration_since(now);
        let n = ahead.as_nanos().div_ceil(self.interval.as_nanos().max(1));
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Seconds until one failure has left the window (at least 1).
    fn wait_secs(&self, slot: &Slot, now: Instant) -> u64 {
        let keep = self.interval * self.per_minute.saturating_sub(1);
        let until = slot.tat.checked_sub(keep).unwrap_or(now);
        let wait = until.saturating_duration_since(now);
        (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
    }
}

/// Counts failed sign-ins per client; does nothing when the limit is 0.
pub struct LoginLimiter {
    limits: Option<Arc<Limits>>,
    shared: Option<SharedLimits>,
}

/// The same limit counted in Redis, across processes.
struct SharedLimits {
    conn: ConnectionManager,
    settings: RedisSettings,
    per_minute: u32,
    script: redis::Script,
    /// Skips Redis while it does not answer (see [`crate::shared::Breaker`]).
    breaker: Arc<crate::shared::Breaker>,
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
    /// A limiter allowing `per_minute` failed attempts per client per minute.
    pub fn new(per_minute: u32) -> Self {
        let limits = (per_minute > 0).then(|| {
            Arc::new(Limits {
                per_minute,
                interval: Duration::from_secs(60) / per_minute,
                slots: Cache::builder()
                    .max_capacity(1_000_000)
                    .time_to_idle(Duration::from_secs(120))
                    .build(),
            })
        });
        Self {
            limits,
            shared: None,
        }
    }

    /// Also counts in Redis, shared with every process using the same settings.
    pub fn with_redis(mut self, conn: ConnectionManager, settings: RedisSettings) -> Self {
        if let Some(per_minute) = self.limits.as_ref().map(|l| l.per_minute) {
            self.shared = Some(SharedLimits {
                conn,
                breaker: crate::shared::breaker(&settings),
                settings,
                per_minute,
                script: redis::Script::new(GCRA),
            });
        }
        self
    }

    /// Takes an attempt from `ip`, before its password is checked; `Err` carries the
    /// seconds to wait: the address is over its limit here or (with Redis) across
    /// processes, or its allowance is all held by attempts in flight.
    pub async fn begin(&self, ip: IpAddr) -> Result<Attempt<'_>, u64> {
        let key = client_key(ip);
        self.check_shared(key).await?;
        let Some(l) = &self.limits else {
            return Ok(Attempt {
                limiter: self,
                key,
                held: None,
            });
        };
        let slot = l.slot(key);
        {
            let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let used = l.used(&s, now);
            if used >= l.per_minute {
                return Err(l.wait_secs(&s, now));
            }
            if used + s.in_flight >= l.per_minute {
                // Held by attempts being checked now: one of them will settle soon.
                return Err(1);
            }
            s.in_flight += 1;
        }
        Ok(Attempt {
            limiter: self,
            key,
            held: Some(slot),
        })
    }

    async fn check_shared(&self, key: IpAddr) -> Result<(), u64> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut conn = shared.conn.clone();
        let rkey = shared.settings.key(&format!("login:block:{key}"));
        let pttl = shared
            .breaker
            .call(
                &shared.conn,
                COMMAND_TIMEOUT,
                redis::cmd("PTTL").arg(&rkey).query_async::<i64>(&mut conn),
            )
            .await;
        match pttl {
            Ok(ms) if ms > 0 => Err(ms.unsigned_abs().div_ceil(1000)),
            Ok(_) => Ok(()),
            Err(e) => {
                OUTAGE.failed(&e);
                Ok(())
            }
        }
    }

    /// Counts a failure of `key` in Redis, shared by every process.
    async fn record_shared(&self, key: IpAddr) {
        let Some(shared) = &self.shared else {
            return;
        };
        let mut conn = shared.conn.clone();
        let interval_ms = 60_000 / u64::from(shared.per_minute);
        let burst = shared.per_minute.saturating_sub(1).max(1);
        let mut call = shared.script.prepare_invoke();
        call.key(shared.settings.key(&format!("login:gcra:{key}")))
            .key(shared.settings.key(&format!("login:block:{key}")))
            .arg(interval_ms)
            .arg(burst);
        let counted = shared
            .breaker
            .call(
                &shared.conn,
                COMMAND_TIMEOUT,
                call.invoke_async::<i64>(&mut conn),
            )
            .await;
        if let Err(e) = counted {
            OUTAGE.failed(&e);
        }
    }
}

/// An attempt taken from a client's allowance. [`Attempt::failed`] keeps it as a failure;
/// dropped otherwise, it gives its place back.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    key: IpAddr,
    held: Option<Arc<Mutex<Slot>>>,
}

impl Attempt<'_> {
    /// The attempt failed: it counts, here and (with Redis) across processes.
    pub async fn failed(mut self) {
        if let (Some(slot), Some(l)) = (self.held.take(), &self.limiter.limits) {
            let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
            s.in_flight = s.in_flight.saturating_sub(1);
            let now = Instant::now();
            s.tat = s.tat.max(now) + l.interval;
        }
        self.limiter.record_shared(self.key).await;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.held.take() {
            let mut s = slot.lock().unwrap_or_else(PoisonError::into_inner);
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

/// The key a client is counted under: an IPv4 address (also when written as IPv4-mapped
/// IPv6), or an IPv6 address's /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn p4_failures_beyond_the_limit_block_the_address() {
        block_on(async {
            let l = LoginLimiter::new(3);
            let ip: IpAddr = [127, 0, 0, 9].into();
            for _ in 0..3 {
                l.begin(ip).await.expect("allowed").failed().await;
            }
            let wait = l.begin(ip).await.err().unwrap_or(0);
            assert!((1..=20).contains(&wait), "{wait}");
            // Other addresses are unaffected.
            assert!(l.begin([127, 0, 0, 10].into()).await.is_ok());
        });
    }

    #[test]
    fn p4_successes_never_block_and_zero_disables() {
        block_on(async {
            let l = LoginLimiter::new(2);
            let ip: IpAddr = [127, 0, 0, 11].into();
            for _ in 0..100 {
                drop(l.begin(ip).await.expect("allowed"));
            }
            let off = LoginLimiter::new(0);
            for _ in 0..100 {
                off.begin(ip).await.expect("no limit").failed().await;
            }
            assert!(off.begin(ip).await.is_ok());
        });
    }

    #[test]
    fn p4_attempts_in_flight_hold_the_allowance() {
        block_on(async {
            let l = LoginLimiter::new(5);
            let ip: IpAddr = [127, 0, 0, 12].into();
            l.begin(ip).await.expect("allowed").failed().await;
            // Four places are left: a burst gets four attempts checked, no more.
            let mut held = Vec::new();
            let mut refused = 0;
            for _ in 0..40 {
                match l.begin(ip).await {
                    Ok(a) => held.push(a),
                    Err(wait) => {
                        assert_eq!(wait, 1);
                        refused += 1;
                    }
                }
            }
            assert_eq!((held.len(), refused), (4, 36));
            // A success gives its place back; failures keep theirs.
            held.pop();
            assert!(l.begin(ip).await.is_ok());
            for a in held {
                a.failed().await;
            }
            assert!(l.begin(ip).await.is_ok());
            l.begin(ip).await.expect("last place").failed().await;
            assert!(l.begin(ip).await.err().is_some_and(|w| w >= 1));
        });
    }

    #[test]
    fn p4_ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(client_key(mapped), IpAddr::from([192, 0, 2, 7]));
        block_on(async {
            let l = LoginLimiter::new(2);
            l.begin(a).await.expect("allowed").failed().await;
            l.begin(b).await.expect("allowed").failed().await;
            assert!(
                l.begin("2001:db8:1:2::9".parse().expect("ip"))
                    .await
                    .is_err()
            );
            assert!(l.begin(other).await.is_ok());
        });
    }
}
