//! Rate limits: each caller (an API client, a user, an anonymous peer address) has a bucket
//! of cost units (the schema's `@cost` model, what `limits::admit` measures) that refills at
//! a steady rate. An operation is charged its cost before it runs; one the bucket cannot pay
//! is refused with `RATE_LIMITED` and told when to retry. Buckets live in this process, or
//! in Redis when `CRM_REDIS_URL` is set, so that every instance draws on one budget.
//!
//! Answers carry the IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-
//! ratelimit-headers): the bucket's size and refill window, what is left and when it is full.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Buckets =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The bucket: `burst` units at most, `per_sec` regained each second.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub per_sec: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Policy {
    /// Seconds an empty bucket takes to fill.
    fn window_secs(&self) -> u64 {
        u64::from(self.burst.get()).div_ceil(u64::from(self.per_sec.get()))
    }
}

/// What one charge came to.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub allowed: bool,
    /// Units left after the charge (before it, when refused).
    pub remaining: u64,
    /// When a refused charge could succeed.
    pub retry_after: Duration,
}

impl Decision {
    /// Whole seconds to wait before retrying (at least one).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }

    /// What a refused caller is told, over HTTP and WebSocket alike.
    pub fn refusal(&self, cost: usize) -> String {
        format!(
            "rate limit reached: this costs {cost}, and {} of the budget is left; retry after {} s",
            self.remaining,
            self.retry_after_secs()
        )
    }
}

enum Backend {
    Memory(Box<Buckets>),
    Redis(Box<SharedBuckets>),
}

/// Buckets in Redis, and when Redis last failed: for a few seconds after a failure requests
/// go through without asking it, so a hung Redis costs one timeout, not one per request.
struct SharedBuckets {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    failed_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long Redis is left alone after it failed.
const REDIS_BACKOFF: Duration = Duration::from_secs(5);

pub struct RateLimits {
    policy: Policy,
    backend: Backend,
}

/// A token bucket in Redis, refilled by the server's clock (instances' clocks may differ):
/// returns whether the charge was taken, what is left, and the milliseconds until it could be.
const REDIS_BUCKET: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, math.floor(tokens), wait}
"#;

#[derive(Debug, thiserror::Error)]
#[error("Redis at CRM_REDIS_URL is unreachable: {0}")]
pub struct RedisUnavailable(String);

impl RateLimits {
    /// Limits of `policy`, kept in this process or (with a URL) in Redis, reached at start.
    pub async fn new(policy: Policy, redis_url: Option<&str>) -> Result<Self, RedisUnavailable> {
        let backend = match redis_url {
            None => {
                let quota = Quota::per_second(policy.per_sec).allow_burst(policy.burst);
                let buckets =
                    RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
                Backend::Memory(Box::new(buckets))
            }
            Some(url) => {
                let client =
                    redis::Client::open(url).map_err(|err| RedisUnavailable(err.to_string()))?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(500)))
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_number_of_retries(1);
                let connection = tokio::time::timeout(
                    Duration::from_secs(5),
                    client.get_connection_manager_with_config(config),
                )
                .await
                .map_err(|_| RedisUnavailable("no answer in 5 s".into()))?
                .map_err(|err| RedisUnavailable(err.to_string()))?;
                Backend::Redis(Box::new(SharedBuckets {
                    connection,
                    script: redis::Script::new(REDIS_BUCKET),
                    failed_at: std::sync::Mutex::new(None),
                }))
            }
        };
        Ok(Self { policy, backend })
    }

    /// The most a caller can spend at once.
    pub fn burst(&self) -> usize {
        self.policy.burst.get() as usize
    }

    /// Drops buckets that have filled up again (they hold nothing a new one would not).
    pub fn spawn_sweeper(self: &std::sync::Arc<Self>) {
        if let Backend::Memory(_) = self.backend {
            let weak = std::sync::Arc::downgrade(self);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    let Some(limits) = weak.upgrade() else { return };
                    if let Backend::Memory(buckets) = &limits.backend {
                        buckets.retain_recent();
                    }
                }
            });
        }
    }

    /// Charges `cost` units (at least one: every operation is some work) to `caller`.
    pub async fn charge(&self, caller: &str, cost: usize) -> Decision {
        let cost = u32::try_from(cost)
            .unwrap_or(u32::MAX)
            .clamp(1, self.policy.burst.get());
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match &self.backend {
            Backend::Memory(buckets) => match buckets.check_key_n(&caller.to_owned(), cost) {
                Ok(Ok(snapshot)) => Decision {
                    allowed: true,
                    remaining: u64::from(snapshot.remaining_burst_capacity()),
                    retry_after: Duration::ZERO,
                },
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(buckets.clock().now());
                    // GCRA: the wait is what the missing units take to come back.
                    let missing = wait.as_secs_f64() * f64::from(self.policy.per_sec.get());
                    Decision {
                        allowed: false,
                        remaining: (f64::from(cost.get()) - missing).max(0.0) as u64,
                        retry_after: wait,
                    }
                }
                // Cannot happen: the cost is clamped to the burst.
                Err(_) => Decision {
                    allowed: false,
                    remaining: 0,
                    retry_after: Duration::from_secs(self.policy.window_secs()),
                },
            },
            Backend::Redis(shared) => {
                let unlimited = Decision {
                    allowed: true,
                    remaining: u64::from(self.policy.burst.get()),
                    retry_after: Duration::ZERO,
                };
                let lock = || {
                    shared
                        .failed_at
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                };
                if lock().is_some_and(|at| at.elapsed() < REDIS_BACKOFF) {
                    return unlimited;
                }
                let mut connection = shared.connection.clone();
                let answer: Result<(i64, i64, i64), _> = shared
                    .script
                    .key(format!("crm:ratelimit:{caller}"))
                    .arg(self.policy.per_sec.get())
                    .arg(self.policy.burst.get())
                    .arg(cost.get())
                    .invoke_async(&mut connection)
                    .await;
                match answer {
                    Ok((allowed, remaining, wait_ms)) => {
                        *lock() = None;
                        Decision {
                            allowed: allowed == 1,
                            remaining: u64::try_from(remaining).unwrap_or(0),
                            retry_after: Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)),
                        }
                    }
                    // An outage of Redis must not take the API down with it: requests go
                    // through, unlimited, and Redis is asked again in a few seconds.
                    Err(err) => {
                        let mut failed_at = lock();
                        if failed_at.is_none() {
                            tracing::warn!(error = %err, "rate limits not checked: Redis failed; asking again in 5 s");
                        }
                        *failed_at = Some(std::time::Instant::now());
                        unlimited
                    }
                }
            }
        }
    }

    /// The `RateLimit-Policy` and `RateLimit` fields of an answer (and `Retry-After` when
    /// refused).
    pub fn headers(&self, decision: &Decision, headers: &mut HeaderMap) {
        let burst = u64::from(self.policy.burst.get());
        let per_sec = u64::from(self.policy.per_sec.get());
        let policy = format!("\"cost\";q={burst};w={}", self.policy.window_secs());
        // Seconds until the bucket is full again.
        let full_in = burst.saturating_sub(decision.remaining).div_ceil(per_sec);
        let state = format!("\"cost\";r={};t={full_in}", decision.remaining);
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        if !decision.allowed {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(decision.retry_after_secs()),
            );
        }
    }
}
