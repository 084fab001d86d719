//! Provider send rates and tenant fairness (D8).
//!
//! **Send rates.** SES and SNS accept so many messages a second per account
//! (`GATEHOUSE_SEND_RATE_EMAIL`, `GATEHOUSE_SEND_RATE_SMS`). Each send takes a slot just
//! before the provider call. With Redis the slots are reserved by one script over Redis'
//! clock, so the rate holds for all worker processes together; a sender whose slot is in
//! the future sleeps until it comes. Without Redis (or while it does not answer) the
//! process keeps the rate on its own.
//!
//! **Fairness.** Codes wait in two lanes. A tenant's first [`FAIR_BURST`] codes in any
//! [`FAIR_WINDOW`] go to the priority lane, the rest of a burst to the bulk lane ([`Lanes`]).
//! The bulk lane's workers are few ([`bulk_concurrency`]), so however long a burst is, at
//! most that many of its sends hold send slots ahead of another tenant's code, which waits
//! at most about `bulk_concurrency / rate` seconds. The burst itself still goes out at
//! the full remaining rate.

use gatehouse_domain::mfa::codes::Channel;
use gatehouse_store::shared::{OutageLog, RedisSettings};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use moka::sync::Cache;
use redis::aio::ConnectionManager;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Codes a tenant may queue in [`FAIR_WINDOW`] before the rest wait in the bulk lane, by
/// default (`GATEHOUSE_FAIR_BURST`).
pub const FAIR_BURST: u32 = 10;
/// The window of [`FAIR_BURST`].
pub const FAIR_WINDOW: Duration = Duration::from_secs(10);

/// Workers of the bulk lane for `concurrency` workers of the priority lane.
pub fn bulk_concurrency(concurrency: usize) -> usize {
    (concurrency / 4).clamp(1, 8)
}

/// Which lane a code waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Priority,
    Bulk,
}

/// Counts each tenant's codes per [`FAIR_WINDOW`] (in Redis when shared) and picks a lane.
#[derive(Clone)]
pub struct Lanes {
    burst: u32,
    local: Cache<Uuid, Arc<AtomicU32>>,
    shared: Option<(ConnectionManager, RedisSettings)>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// A fixed window per tenant: the count, started with its expiry.
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

static COUNT_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(COUNT));

impl Lanes {
    /// Counting in this process only; the priority lane takes a tenant's first [`FAIR_BURST`].
    pub fn local() -> Self {
        Self {
            burst: FAIR_BURST,
            local: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(FAIR_WINDOW)
                .build(),
            shared: None,
        }
    }

    /// Counting in Redis, across the processes that push.
    pub fn shared(conn: ConnectionManager, settings: RedisSettings) -> Self {
        Self {
            shared: Some((conn, settings)),
            ..Self::local()
        }
    }

    /// The priority lane takes a tenant's first `burst` codes per window (0: every code).
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = if burst == 0 { u32::MAX } else { burst };
        self
    }

    /// The lane of the next code of `tenant`.
    pub async fn lane(&self, tenant: Uuid) -> Lane {
        let n = match &self.shared {
            Some((shared, settings)) => {
                let mut conn = shared.clone();
                let mut call = COUNT_SCRIPT.prepare_invoke();
                call.key(settings.key(&format!("fair:{tenant}")))
                    .arg(FAIR_WINDOW.as_millis() as u64);
                let breaker = gatehouse_store::shared::breaker(settings);
                let counted = breaker.call(
                    shared,
                    gatehouse_store::shared::COMMAND_TIMEOUT,
                    call.invoke_async::<u32>(&mut conn),
                );
                match counted.await {
                    Ok(n) => n,
                    Err(_) => self.count_here(tenant),
                }
            }
            None => self.count_here(tenant),
        };
        if n > self.burst {
            Lane::Bulk
        } else {
            Lane::Priority
        }
    }

    fn count_here(&self, tenant: Uuid) -> u32 {
        self.local
            .get_with(tenant, || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed)
            + 1
    }
}

/// Sends per second per channel; 0 leaves a channel unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRateConfig {
    pub email_per_second: u32,
    pub sms_per_second: u32,
}

impl SendRateConfig {
    /// No limit on either channel.
    pub const UNLIMITED: Self = Self {
        email_per_second: 0,
        sms_per_second: 0,
    };
}

impl Default for SendRateConfig {
    /// SES's and SNS's usual starting account limits.
    fn default() -> Self {
        Self {
            email_per_second: 14,
            sms_per_second: 20,
        }
    }
}

struct ChannelRate {
    per_second: NonZeroU32,
    local: DefaultDirectRateLimiter,
    key: Option<String>,
}

/// The send-rate limits of both channels.
#[derive(Clone)]
pub struct SendRates {
    email: Option<Arc<ChannelRate>>,
    sms: Option<Arc<ChannelRate>>,
    conn: Option<(ConnectionManager, Arc<gatehouse_store::shared::Breaker>)>,
}

impl std::fmt::Debug for SendRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = |c: &Option<Arc<ChannelRate>>| c.as_ref().map(|c| c.per_second.get());
        f.debug_struct("SendRates")
            .field("email_per_second", &rate(&self.email))
            .field("sms_per_second", &rate(&self.sms))
            .field("shared", &self.conn.is_some())
            .finish()
    }
}

/// Reserves the next slot of a channel: answers how many milliseconds from now it comes.
/// A burst of up to one second's worth goes at once.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - (burst - 1) * interval - now
if wait < 0 then wait = 0 end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return math.ceil(wait)
";

static RESERVE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(RESERVE));

static OUTAGE: OutageLog = OutageLog::new("send rates are kept per worker process");

impl SendRates {
    /// Rates kept by this process alone.
    pub fn local(config: SendRateConfig) -> Self {
        let channel = |per_second: u32| {
            NonZeroU32::new(per_second).map(|n| {
                Arc::new(ChannelRate {
                    per_second: n,
                    local: RateLimiter::direct(Quota::per_second(n)),
                    key: None,
                })
            })
        };
        Self {
            email: channel(config.email_per_second),
            sms: channel(config.sms_per_second),
            conn: None,
        }
    }

    /// Rates held across every worker process sharing this Redis.
    pub fn shared(
        config: SendRateConfig,
        conn: ConnectionManager,
        settings: &RedisSettings,
    ) -> Self {
        let mut rates = Self::local(config);
        for (rate, name) in [(&mut rates.email, "email"), (&mut rates.sms, "sms")] {
            if let Some(r) = rate.as_mut().and_then(Arc::get_mut) {
                r.key = Some(settings.key(&format!("send_rate:{name}")));
            }
        }
        rates.conn = Some((conn, gatehouse_store::shared::breaker(settings)));
        rates
    }

    /// Waits for a send slot of `channel`.
    pub async fn acquire(&self, channel: Channel) {
        let rate = match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
        };
        let Some(rate) = rate else { return };
        if let (Some(key), Some((conn, breaker))) = (&rate.key, &self.conn) {
            let reserving = conn.clone();
            let mut conn = conn.clone();
            let interval = 1000.0 / f64::from(rate.per_second.get());
            let mut call = RESERVE_SCRIPT.prepare_invoke();
            call.key(key).arg(interval).arg(rate.per_second.get());
            let reserved = breaker.call(
                &reserving,
                gatehouse_store::shared::COMMAND_TIMEOUT,
                call.invoke_async::<u64>(&mut conn),
            );
            match reserved.await {
                Ok(wait_ms) => {
                    if wait_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                    }
                    return;
                }
                Err(e) => OUTAGE.failed(&e),
            }
        }
        rate.local.until_ready().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn d8_a_tenants_first_codes_are_priority_and_the_rest_of_its_burst_bulk() {
        let lanes = Lanes::local();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..FAIR_BURST {
            assert_eq!(lanes.lane(a).await, Lane::Priority);
        }
        assert_eq!(lanes.lane(a).await, Lane::Bulk);
        assert_eq!(lanes.lane(a).await, Lane::Bulk);
        assert_eq!(
            lanes.lane(b).await,
            Lane::Priority,
            "other tenants are unaffected"
        );
    }

    #[test]
    fn d8_the_bulk_lane_is_small_but_never_empty() {
        assert_eq!(bulk_concurrency(1), 1);
        assert_eq!(bulk_concurrency(32), 8);
        assert_eq!(bulk_concurrency(1024), 8);
        assert_eq!(bulk_concurrency(8), 2);
    }
}
