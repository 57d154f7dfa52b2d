//! The five algorithms run atomically in Redis, plus the learners' lab settings.
//!
//! Each algorithm is one Lua script (sent by SHA with `EVALSHA`, loaded on `NOSCRIPT`) that reads
//! the clock with `TIME`, decides, and writes back in one step, so any number of labdeck
//! processes sharing a Redis enforce exactly one limit and skewed host clocks do not matter. The
//! scripts are line-for-line ports of [`super::algorithms`] — same integer arithmetic, same
//! `Decision` — and take an optional virtual `now` so tests can replay a trace through both and
//! compare. A block duration is a second key holding the time the block ends.
//!
//! Keys: `<prefix>rl:{<namespace>|<client>}:r<rev>:<algorithm>` (+ `:block`). The braces are a
//! Redis Cluster hash tag, so the two keys of one decision share a slot. The learner's namespace
//! is in every key, and the settings revision starts every new configuration from a clean slate.
//! Every key carries a TTL slightly longer than the state can matter, so nothing needs sweeping.
//!
//! Every call is bounded by [`REDIS_DEADLINE`]; after a failure the store stops trying for
//! [`COOL_DOWN`] (a small circuit breaker), so an outage costs one deadline, not one per request.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::Settings;
use super::algorithms::{Algorithm, Decision, NEVER, Verdict};

/// Longest a limiter decision may wait for Redis before the failure policy applies.
pub const REDIS_DEADLINE: Duration = Duration::from_millis(250);
/// After a failure, how long to go straight to the failure policy before trying Redis again.
pub const COOL_DOWN: Duration = Duration::from_secs(1);
/// Settings are kept for 30 days after the last save.
const SETTINGS_TTL_SECS: i64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis did not answer within {} ms", REDIS_DEADLINE.as_millis())]
    Timeout,
    #[error("Redis is cooling down after a failure")]
    CoolingDown,
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from the limiter script: {0:?}")]
    Reply(Vec<i64>),
}

/// What Redis decided, and its clock at the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreVerdict {
    pub verdict: Verdict,
    pub now_ms: u64,
}

/// Shared by every script: arguments, the clock, the block check, and `finish`, which applies the
/// block duration after a denial exactly like [`super::algorithms::Penalized`].
const PRELUDE: &str = r#"
-- KEYS[1] = limiter state, KEYS[2] = block marker (holds the time the block ends)
-- ARGV = now_ms ('' = Redis TIME), cost, limit, window_ms, burst, block_ms, unique id
-- Returns {allowed, remaining, retry_after_ms (-1 = never), reset_ms, blocked, now_ms}
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local cost = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local w = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local block_ms = tonumber(ARGV[6])
local key = KEYS[1]
-- Keys outlive the state that matters by this much; expiry only removes dead state.
local slack = 1000

-- Lua numbers are doubles: print integers in full (tostring would use 14 digits).
local function int(x) return string.format('%.0f', x) end
local function ceil_div(a, b)
  local q = math.floor(a / b)
  if q * b < a then q = q + 1 end
  return q
end

local block_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < block_until then
  return {0, 0, block_until - now, block_until - now, 1, now}
end

local function finish(allowed, remaining, retry, reset)
  local blocked = 0
  if allowed == 0 and block_ms > 0 then
    redis.call('SET', KEYS[2], int(now + block_ms), 'PX', int(block_ms + slack))
    blocked = 1
    remaining = 0
    if retry ~= -1 and retry < block_ms then retry = block_ms end
    if reset < block_ms then reset = block_ms end
  end
  return {allowed, remaining, retry, reset, blocked, now}
end
"#;

/// One counter per aligned window, in a hash {start, count}.
const FIXED_WINDOW: &str = r#"
local start = now - math.fmod(now, w)
local state = redis.call('HMGET', key, 'start', 'count')
local count = 0
if state[1] and tonumber(state[1]) == start then count = tonumber(state[2]) end
local ends_in = start + w - now
local allowed, retry = 0, 0
if count + cost <= limit then
  allowed = 1
  count = count + cost
  if count > 0 then
    redis.call('HSET', key, 'start', int(start), 'count', int(count))
    redis.call('PEXPIRE', key, int(ends_in + slack))
  end
elseif cost > limit then
  retry = -1
else
  retry = ends_in
end
local reset = 0
if count > 0 then reset = ends_in end
return finish(allowed, math.max(limit - count, 0), retry, reset)
"#;

/// A sorted set of allowed hits scored by time; members are unique ids so equal timestamps
/// never collapse into one entry.
const SLIDING_LOG: &str = r#"
if now >= w then redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - w)) end
local count = redis.call('ZCARD', key)
local allowed, remaining, retry = 0, 0, 0
if count + cost <= limit then
  allowed = 1
  for i = 1, cost do redis.call('ZADD', key, int(now), ARGV[7] .. ':' .. i) end
  count = count + cost
  remaining = limit - count
else
  remaining = math.max(limit - count, 0)
  if cost > limit then
    retry = -1
  else
    -- The k-th oldest entry must leave the window to free `cost` slots.
    local k = count + cost - limit
    local entry = redis.call('ZRANGE', key, k - 1, k - 1, 'WITHSCORES')
    retry = tonumber(entry[2]) + w - now
  end
end
local reset = 0
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[1] then
  reset = tonumber(oldest[2]) + w - now
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', key, int(tonumber(newest[2]) + w - now + slack))
end
return finish(allowed, remaining, retry, reset)
"#;

/// Two counters in a hash {start, previous, current}; the estimate is compared in integers:
/// previous × (w − elapsed) + (current + cost) × w <= limit × w.
const SLIDING_WINDOW_COUNTER: &str = r#"
local start = now - math.fmod(now, w)
local state = redis.call('HMGET', key, 'start', 'previous', 'current')
local previous, current = 0, 0
if state[1] then
  local stored = tonumber(state[1])
  if stored == start then
    previous = tonumber(state[2])
    current = tonumber(state[3])
  elseif stored + w == start then
    previous = tonumber(state[3])
  end
end
local elapsed = now - start
local function remaining_of(p, c)
  return math.floor(math.max(limit * w - (c * w + p * (w - elapsed)), 0) / w)
end
-- Milliseconds until remaining >= target with no further hits (see algorithms.rs).
local function time_until(p, c, target)
  if target > limit then return -1 end
  local need1 = math.max((target + c) * w + p * w - limit * w, 0)
  if p * elapsed >= need1 then return 0 end
  if p > 0 then
    local e = ceil_div(need1, p)
    if e < w then return e - elapsed end
  end
  local to_next = w - elapsed
  local need2 = math.max(target * w + c * w - limit * w, 0)
  if need2 == 0 then return to_next end
  if c > 0 then
    local e = ceil_div(need2, c)
    if e < w then return to_next + e end
  end
  return to_next + w
end
local allowed, retry = 0, 0
if cost <= remaining_of(previous, current) then
  allowed = 1
  current = current + cost
else
  retry = time_until(previous, current, cost)
end
local remaining = remaining_of(previous, current)
local reset = 0
if remaining < limit then reset = time_until(previous, current, remaining + 1) end
if previous == 0 and current == 0 then
  redis.call('DEL', key)
else
  redis.call('HSET', key, 'start', int(start), 'previous', int(previous), 'current', int(current))
  redis.call('PEXPIRE', key, int(2 * w - elapsed + slack))
end
return finish(allowed, remaining, retry, reset)
"#;

/// A hash {level, updated}; the level counts 1/w token units so the refill (limit units per ms)
/// is an integer. A missing key is a full bucket.
const TOKEN_BUCKET: &str = r#"
local full = burst * w
local state = redis.call('HMGET', key, 'level', 'updated')
local level = full
if state[1] then
  local elapsed = math.max(now - tonumber(state[2]), 0)
  level = math.min(tonumber(state[1]) + math.min(elapsed, full) * limit, full)
end
local need = cost * w
local allowed, retry = 0, 0
if level >= need then
  allowed = 1
  level = level - need
elseif need > full then
  retry = -1
else
  retry = ceil_div(need - level, limit)
end
local remaining = math.floor(level / w)
local reset = 0
if level < full then reset = ceil_div((remaining + 1) * w - level, limit) end
if level >= full then
  redis.call('DEL', key)
else
  redis.call('HSET', key, 'level', int(level), 'updated', int(now))
  redis.call('PEXPIRE', key, int(ceil_div(full - level, limit) + slack))
end
return finish(allowed, remaining, retry, reset)
"#;

/// The theoretical arrival time, in ticks of 1/limit ms, stored as whole ms + leftover ticks
/// (ms × limit would not fit a double exactly). A missing key is a TAT in the past.
const GCRA: &str = r#"
local tolerance = burst * w
local state = redis.call('HMGET', key, 'ms', 'ticks')
local ahead = 0
if state[1] then
  ahead = math.max((tonumber(state[1]) - now) * limit + tonumber(state[2]), 0)
end
local next_ahead = ahead + cost * w
local allowed, retry = 0, 0
if next_ahead <= tolerance then
  allowed = 1
  ahead = next_ahead
elseif cost * w > tolerance then
  retry = -1
else
  retry = ceil_div(next_ahead - tolerance, limit)
end
local remaining = math.floor(math.max(tolerance - ahead, 0) / w)
local reset = 0
if ahead > 0 then
  reset = ceil_div(ahead - math.max(tolerance - (remaining + 1) * w, 0), limit)
end
if ahead == 0 then
  redis.call('DEL', key)
else
  local whole = math.floor(ahead / limit)
  redis.call('HSET', key, 'ms', int(now + whole), 'ticks', int(ahead - whole * limit))
  redis.call('PEXPIRE', key, int(ceil_div(ahead, limit) + slack))
end
return finish(allowed, remaining, retry, reset)
"#;

struct Scripts {
    fixed_window: Script,
    sliding_log: Script,
    sliding_window_counter: Script,
    token_bucket: Script,
    gcra: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
    Scripts {
        fixed_window: with_prelude(FIXED_WINDOW),
        sliding_log: with_prelude(SLIDING_LOG),
        sliding_window_counter: with_prelude(SLIDING_WINDOW_COUNTER),
        token_bucket: with_prelude(TOKEN_BUCKET),
        gcra: with_prelude(GCRA),
    }
});

fn script(algorithm: Algorithm) -> &'static Script {
    let scripts = &*SCRIPTS;
    match algorithm {
        Algorithm::FixedWindow => &scripts.fixed_window,
        Algorithm::SlidingLog => &scripts.sliding_log,
        Algorithm::SlidingWindowCounter => &scripts.sliding_window_counter,
        Algorithm::TokenBucket => &scripts.token_bucket,
        Algorithm::Gcra => &scripts.gcra,
    }
}

/// Opens after a failure and stays open for [`COOL_DOWN`].
struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` until which Redis is not tried; 0 = closed.
    open_until_ms: AtomicU64,
}

impl Breaker {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_open(&self) -> bool {
        self.elapsed_ms() < self.open_until_ms.load(Ordering::Relaxed)
    }

    /// Returns whether this failure opened the breaker (so it is logged once per outage).
    fn trip(&self) -> bool {
        let until = self.elapsed_ms() + COOL_DOWN.as_millis() as u64;
        let previous = self.open_until_ms.swap(until, Ordering::Relaxed);
        previous == 0
    }

    fn close(&self) {
        if self.open_until_ms.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!("rate-limiter store: Redis answers again");
        }
    }
}

pub struct LimiterStore {
    redis: ConnectionManager,
    prefix: String,
    breaker: Breaker,
}

impl LimiterStore {
    pub fn new(redis: ConnectionManager, redis_prefix: &str) -> LimiterStore {
        LimiterStore {
            redis,
            prefix: format!("{redis_prefix}rl:"),
            breaker: Breaker {
                epoch: Instant::now(),
                open_until_ms: AtomicU64::new(0),
            },
        }
    }

    /// Whether the store is currently skipping Redis after a failure.
    pub fn cooling_down(&self) -> bool {
        self.breaker.is_open()
    }

    /// The state key and block key of one limiter.
    pub fn keys(
        &self,
        namespace: &str,
        rev: u64,
        algorithm: Algorithm,
        client: &str,
    ) -> (String, String) {
        let state = format!(
            "{}{{{namespace}|{client}}}:r{rev}:{}",
            self.prefix,
            algorithm.id()
        );
        let block = format!("{state}:block");
        (state, block)
    }

    fn settings_key(&self, namespace: &str) -> String {
        format!("{}settings:{namespace}", self.prefix)
    }

    /// Runs `call` within the deadline, unless the breaker says Redis is down.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        if self.breaker.is_open() {
            return Err(StoreError::CoolingDown);
        }
        let result = match tokio::time::timeout(REDIS_DEADLINE, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(StoreError::Redis(err)),
            Err(_) => Err(StoreError::Timeout),
        };
        match &result {
            Ok(_) => self.breaker.close(),
            Err(err) => {
                metrics::counter!("rate_limiter_store_failures_total").increment(1);
                if self.breaker.trip() {
                    tracing::warn!(error = %err, "rate-limiter store unavailable; applying failure policies");
                }
            }
        }
        result
    }

    /// One limiter decision in Redis. `now_ms` replaces Redis `TIME` (tests replay virtual
    /// traces); the live service always passes `None`.
    pub async fn hit(
        &self,
        namespace: &str,
        settings: &Settings,
        client: &str,
        cost: u32,
        now_ms: Option<u64>,
    ) -> Result<StoreVerdict, StoreError> {
        let (state_key, block_key) = self.keys(namespace, settings.rev, settings.algorithm, client);
        let unique = if settings.algorithm == Algorithm::SlidingLog {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            String::new()
        };
        let mut invocation = script(settings.algorithm).key(&state_key);
        invocation
            .key(&block_key)
            .arg(now_ms.map(|n| n.to_string()).unwrap_or_default())
            .arg(cost)
            .arg(settings.limit)
            .arg(settings.window_ms())
            .arg(settings.burst)
            .arg(settings.block_ms())
            .arg(unique);
        let mut redis = self.redis.clone();
        let reply: Vec<i64> = self.bounded(invocation.invoke_async(&mut redis)).await?;
        parse_reply(&reply).ok_or(StoreError::Reply(reply))
    }

    /// The learner's stored settings, or `None` if they never saved any.
    pub async fn load_settings(&self, namespace: &str) -> Result<Option<Settings>, StoreError> {
        let mut redis = self.redis.clone();
        let key = self.settings_key(namespace);
        let fields: HashMap<String, String> = self.bounded(redis.hgetall(&key)).await?;
        Ok((!fields.is_empty()).then(|| Settings::from_fields(&fields)))
    }

    /// Stores new settings under a new revision (so limiter state starts over) and returns them
    /// with that revision.
    pub async fn save_settings(
        &self,
        namespace: &str,
        settings: &Settings,
    ) -> Result<Settings, StoreError> {
        let mut redis = self.redis.clone();
        let key = self.settings_key(namespace);
        let (rev,): (u64,) = self
            .bounded(
                redis::pipe()
                    .atomic()
                    .hset_multiple(&key, &settings.to_fields())
                    .ignore()
                    .hincr(&key, "rev", 1)
                    .expire(&key, SETTINGS_TTL_SECS)
                    .ignore()
                    .query_async(&mut redis),
            )
            .await?;
        Ok(Settings {
            rev,
            ..settings.clone()
        })
    }

    /// Starts the learner's limiter state over without changing the settings.
    pub async fn bump_revision(&self, namespace: &str) -> Result<u64, StoreError> {
        let mut redis = self.redis.clone();
        let key = self.settings_key(namespace);
        let (rev,): (u64,) = self
            .bounded(
                redis::pipe()
                    .atomic()
                    .hincr(&key, "rev", 1)
                    .expire(&key, SETTINGS_TTL_SECS)
                    .ignore()
                    .query_async(&mut redis),
            )
            .await?;
        Ok(rev)
    }
}

fn parse_reply(reply: &[i64]) -> Option<StoreVerdict> {
    let &[allowed, remaining, retry, reset, blocked, now] = reply else {
        return None;
    };
    let non_negative = |n: i64| u64::try_from(n).ok();
    Some(StoreVerdict {
        verdict: Verdict {
            decision: Decision {
                allowed: allowed == 1,
                remaining: u32::try_from(remaining).ok()?,
                retry_after_ms: if retry < 0 { NEVER } else { retry as u64 },
                reset_ms: non_negative(reset)?,
            },
            blocked: blocked == 1,
        },
        now_ms: non_negative(now)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_map_to_verdicts_and_malformed_ones_are_refused() {
        let verdict = parse_reply(&[0, 0, -1, 20, 1, 1_700_000_000_000]).unwrap();
        assert!(!verdict.verdict.decision.allowed);
        assert_eq!(verdict.verdict.decision.retry_after_ms, NEVER);
        assert!(verdict.verdict.blocked);
        assert_eq!(verdict.now_ms, 1_700_000_000_000);
        assert!(parse_reply(&[1, 2, 3]).is_none());
        assert!(parse_reply(&[1, -2, 0, 0, 0, 0]).is_none());
    }

    #[test]
    fn every_script_shares_the_prelude() {
        for algorithm in Algorithm::ALL {
            assert_eq!(script(algorithm).get_hash().len(), 40);
        }
        assert_ne!(
            script(Algorithm::Gcra).get_hash(),
            script(Algorithm::TokenBucket).get_hash()
        );
    }
}
