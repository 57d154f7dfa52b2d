//! Reference implementations of the five rate-limiting algorithms over a virtual clock.
//!
//! No I/O and no wall clock: every call says what time it is (`now_ms`), so the same trace always
//! produces the same decisions. These structs are the ground truth of the lab: the Redis scripts in
//! [`super::store`] implement exactly the same arithmetic (and the integration tests replay traces
//! through both and compare), the in-memory insurance limiter is one of these, the replay view runs
//! traces through all five, and the graded challenge checks learners' JavaScript against them.
//!
//! Every limiter answers `hit(key, now_ms, cost) -> Decision` and keeps independent state per key.
//! The rules shared by all five:
//!
//! - Only **allowed** hits are recorded; a denied hit changes nothing (a block after a denial is a
//!   separate, opt-in layer: [`Penalized`]).
//! - `remaining` is how many cost-1 hits would be allowed right now, after this decision;
//!   `allowed` is exactly `remaining_before >= cost`.
//! - `retry_after_ms` is 0 when allowed; when denied it is the exact number of milliseconds until
//!   the same hit would be allowed if nothing else happened in between (the tests check that a hit
//!   at `now + retry_after_ms` passes and one a millisecond earlier does not). A cost that can
//!   never fit (larger than the limit or the burst) gets [`NEVER`].
//! - `reset_ms` is the number of milliseconds until `remaining` next grows (the oldest recorded hit
//!   leaves the window, the window rolls over, or the next whole token arrives), and 0 when the key
//!   is already at its full quota. It is what the `t` of the `RateLimit` header reports.
//! - A cost of 0 is a pure peek: it is always allowed and records nothing.
//! - All arithmetic is in integers (milliseconds, or scaled units where a rate is fractional), so
//!   the Lua scripts, whose numbers are doubles, reproduce it bit for bit for every lab setting.
//!
//! Time is expected to move forward per key; going backwards never panics and is handled
//! consistently with the Redis scripts.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// `retry_after_ms` of a hit that can never be allowed (its cost exceeds the capacity).
pub const NEVER: u64 = u64::MAX;

/// The answer to one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// Cost-1 hits that would be allowed right now, after this decision.
    pub remaining: u32,
    /// 0 when allowed; otherwise milliseconds until this hit would be allowed ([`NEVER`] if never).
    pub retry_after_ms: u64,
    /// Milliseconds until `remaining` grows; 0 when the key is at its full quota.
    pub reset_ms: u64,
}

/// The five algorithms, in the order the lab shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    FixedWindow,
    SlidingLog,
    SlidingWindowCounter,
    TokenBucket,
    Gcra,
}

impl Algorithm {
    pub const ALL: [Algorithm; 5] = [
        Algorithm::FixedWindow,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindowCounter,
        Algorithm::TokenBucket,
        Algorithm::Gcra,
    ];

    /// Stable identifier used in forms, JSON and Redis keys.
    pub fn id(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::SlidingLog => "sliding_log",
            Algorithm::SlidingWindowCounter => "sliding_window_counter",
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::Gcra => "gcra",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "Fixed window",
            Algorithm::SlidingLog => "Sliding log",
            Algorithm::SlidingWindowCounter => "Sliding window counter",
            Algorithm::TokenBucket => "Token bucket",
            Algorithm::Gcra => "GCRA",
        }
    }

    pub fn parse(id: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Whether the `burst` setting means anything to this algorithm.
    pub fn uses_burst(self) -> bool {
        matches!(self, Algorithm::TokenBucket | Algorithm::Gcra)
    }

    /// Most cost units this algorithm can allow in any span of `window_ms` consecutive
    /// milliseconds (hits at times `t - window_ms + 1 ..= t`), for one key.
    ///
    /// - fixed window: `2 × limit` (a full window just before a boundary and another just after);
    /// - sliding log: `limit`, exactly;
    /// - sliding window counter: `2 × limit − 1` — it assumes the previous window's hits were
    ///   spread evenly, so hits bunched at the end of that window are under-weighted; typical
    ///   traffic stays close to `limit`;
    /// - token bucket and GCRA: `burst + limit − 1` (a full bucket, plus what refills during the
    ///   span).
    pub fn max_in_any_window(self, config: LimiterConfig) -> u64 {
        let limit = u64::from(config.limit);
        let burst = u64::from(config.burst);
        match self {
            Algorithm::FixedWindow => 2 * limit,
            Algorithm::SlidingLog => limit,
            Algorithm::SlidingWindowCounter => (2 * limit).saturating_sub(1),
            Algorithm::TokenBucket | Algorithm::Gcra => (burst + limit).saturating_sub(1),
        }
    }
}

/// What every limiter is configured with. `limit` hits per `window_ms`; token bucket and GCRA
/// also take a `burst` (bucket capacity / burst tolerance) and refill at `limit / window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterConfig {
    pub limit: u32,
    pub window_ms: u64,
    pub burst: u32,
}

impl LimiterConfig {
    /// A configuration whose burst equals the limit (a full window's worth at once).
    pub fn new(limit: u32, window_ms: u64) -> LimiterConfig {
        LimiterConfig {
            limit,
            window_ms,
            burst: limit,
        }
    }

    pub fn with_burst(self, burst: u32) -> LimiterConfig {
        LimiterConfig { burst, ..self }
    }
}

/// The interface the live service, the insurance limiter and the replay view use.
pub trait RateLimiter: Send {
    fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision;
    /// Drops keys whose state is indistinguishable from a key never seen (bounded memory).
    fn forget_idle(&mut self, now_ms: u64);
    /// Keys currently holding state.
    fn tracked_keys(&self) -> usize;
}

/// A limiter of the given kind.
pub fn build(algorithm: Algorithm, config: LimiterConfig) -> Box<dyn RateLimiter> {
    match algorithm {
        Algorithm::FixedWindow => Box::new(FixedWindow::new(config.limit, config.window_ms)),
        Algorithm::SlidingLog => Box::new(SlidingLog::new(config.limit, config.window_ms)),
        Algorithm::SlidingWindowCounter => {
            Box::new(SlidingWindowCounter::new(config.limit, config.window_ms))
        }
        Algorithm::TokenBucket => Box::new(TokenBucket::new(config)),
        Algorithm::Gcra => Box::new(Gcra::new(config)),
    }
}

/// `ceil(a / b)` for `b > 0`.
fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

fn to_u32(n: u128) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn to_u64(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(NEVER)
}

/// A window length of 0 would divide by zero; it behaves as 1 ms.
fn window(window_ms: u64) -> u64 {
    window_ms.max(1)
}

// ---------------------------------------------------------------------------------------------
// Fixed window

#[derive(Debug, Clone, Copy)]
struct FixedState {
    start: u64,
    count: u64,
}

/// One counter per aligned window `[k·window, (k+1)·window)`. Cheap and easy to explain, but it
/// lets through up to twice the limit around a boundary.
#[derive(Clone)]
pub struct FixedWindow {
    limit: u32,
    window_ms: u64,
    keys: HashMap<String, FixedState>,
}

impl FixedWindow {
    pub fn new(limit: u32, window_ms: u64) -> FixedWindow {
        FixedWindow {
            limit,
            window_ms: window(window_ms),
            keys: HashMap::new(),
        }
    }

    pub fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        let (limit, cost, w) = (u64::from(self.limit), u64::from(cost), self.window_ms);
        let start = now_ms - now_ms % w;
        let count = match self.keys.get(key) {
            Some(state) if state.start == start => state.count,
            _ => 0,
        };
        let ends_in = start + w - now_ms;
        let (allowed, count) = if count + cost <= limit {
            (true, count + cost)
        } else {
            (false, count)
        };
        if allowed && count > 0 {
            self.keys
                .insert(key.to_string(), FixedState { start, count });
        }
        let retry_after_ms = match (allowed, cost > limit) {
            (true, _) => 0,
            (false, true) => NEVER,
            (false, false) => ends_in,
        };
        Decision {
            allowed,
            remaining: to_u32(u128::from(limit.saturating_sub(count))),
            retry_after_ms,
            reset_ms: if count > 0 { ends_in } else { 0 },
        }
    }
}

impl RateLimiter for FixedWindow {
    fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        FixedWindow::hit(self, key, now_ms, cost)
    }
    fn forget_idle(&mut self, now_ms: u64) {
        let w = self.window_ms;
        self.keys.retain(|_, s| s.start + w > now_ms);
    }
    fn tracked_keys(&self) -> usize {
        self.keys.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Sliding log

/// The exact limiter: a log of the timestamps of allowed hits.
///
/// **Contract** (the graded challenge compares learners' code against this, so it is exact):
///
/// - `SlidingLog::new(limit, window_ms)`; one log per key holding the timestamp of every
///   *allowed* hit — a hit of cost `n` adds `n` entries, all equal to `now`.
/// - On `hit(key, now, cost)`:
///   1. drop every entry `t` with `t <= now - window_ms` (nothing is dropped while
///      `now < window_ms`), leaving `count` entries;
///   2. if `count + cost <= limit`: record `now` `cost` times; `allowed = true`,
///      `remaining = limit - count_after`, `retry_after_ms = 0`;
///   3. otherwise: `allowed = false`, `remaining = limit - count` (never negative), and
///      `retry_after_ms = t_k + window_ms - now` where `t_k` is the `k`-th oldest entry with
///      `k = count + cost - limit` — the entry whose expiry frees `cost` slots. When
///      `cost > limit` no entry can free enough slots and `retry_after_ms` is [`NEVER`].
///   4. `reset_ms = oldest + window_ms - now` for the oldest entry left in the log (after
///      recording), or 0 when the log is empty. It is a duration from `now`, like
///      `retry_after_ms`.
///
/// No span of `window_ms` milliseconds ever holds more than `limit` allowed units.
#[derive(Clone)]
pub struct SlidingLog {
    limit: u32,
    window_ms: u64,
    logs: HashMap<String, VecDeque<u64>>,
}

impl SlidingLog {
    pub fn new(limit: u32, window_ms: u64) -> SlidingLog {
        SlidingLog {
            limit,
            window_ms: window(window_ms),
            logs: HashMap::new(),
        }
    }

    pub fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        let (limit, w) = (self.limit as usize, self.window_ms);
        let cost_n = cost as usize;
        let log = self.logs.entry(key.to_string()).or_default();
        if let Some(cutoff) = now_ms.checked_sub(w) {
            while log.front().is_some_and(|&t| t <= cutoff) {
                log.pop_front();
            }
        }
        let count = log.len();
        let decision = if count + cost_n <= limit {
            // Kept sorted even if the clock steps back, like the Redis sorted set.
            let at = log.partition_point(|&t| t <= now_ms);
            for _ in 0..cost_n {
                log.insert(at, now_ms);
            }
            Decision {
                allowed: true,
                remaining: to_u32((limit - log.len()) as u128),
                retry_after_ms: 0,
                reset_ms: 0,
            }
        } else {
            let retry_after_ms = if cost_n > limit {
                NEVER
            } else {
                let k = count + cost_n - limit;
                log.get(k - 1).map_or(0, |&t| t + w - now_ms)
            };
            Decision {
                allowed: false,
                remaining: to_u32(limit.saturating_sub(count) as u128),
                retry_after_ms,
                reset_ms: 0,
            }
        };
        let reset_ms = log.front().map_or(0, |&oldest| oldest + w - now_ms);
        if log.is_empty() {
            self.logs.remove(key);
        }
        Decision {
            reset_ms,
            ..decision
        }
    }
}

impl RateLimiter for SlidingLog {
    fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        SlidingLog::hit(self, key, now_ms, cost)
    }
    fn forget_idle(&mut self, now_ms: u64) {
        let w = self.window_ms;
        self.logs
            .retain(|_, log| log.back().is_some_and(|&newest| newest + w > now_ms));
    }
    fn tracked_keys(&self) -> usize {
        self.logs.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Sliding window counter

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CounterState {
    start: u64,
    previous: u64,
    current: u64,
}

/// Two fixed-window counters, the previous one weighted by how much of it the sliding window
/// still overlaps: `estimate = previous × (window − elapsed) / window + current`. A hit is allowed
/// when `estimate + cost <= limit`, evaluated exactly as
/// `previous × (window − elapsed) + (current + cost) × window <= limit × window`.
#[derive(Clone)]
pub struct SlidingWindowCounter {
    limit: u32,
    window_ms: u64,
    keys: HashMap<String, CounterState>,
}

impl SlidingWindowCounter {
    pub fn new(limit: u32, window_ms: u64) -> SlidingWindowCounter {
        SlidingWindowCounter {
            limit,
            window_ms: window(window_ms),
            keys: HashMap::new(),
        }
    }

    pub fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        let w = self.window_ms;
        let start = now_ms - now_ms % w;
        let mut state = match self.keys.get(key) {
            Some(s) if s.start == start => *s,
            // The window rolled over once: the current count becomes the previous one.
            Some(s) if s.start + w == start => CounterState {
                start,
                previous: s.current,
                current: 0,
            },
            // Two windows or more later (or the clock stepped back): nothing counts any more.
            _ => CounterState {
                start,
                previous: 0,
                current: 0,
            },
        };
        let limit = u128::from(self.limit);
        let elapsed = u128::from(now_ms - start);
        let before = self.remaining(&state, elapsed);
        let allowed = u128::from(cost) <= before;
        if allowed {
            state.current += u64::from(cost);
        }
        let remaining = self.remaining(&state, elapsed);
        let retry_after_ms = if allowed {
            0
        } else {
            self.time_until(&state, elapsed, u128::from(cost))
        };
        let reset_ms = if remaining >= limit {
            0
        } else {
            self.time_until(&state, elapsed, remaining + 1)
        };
        if state.previous == 0 && state.current == 0 {
            self.keys.remove(key);
        } else {
            self.keys.insert(key.to_string(), state);
        }
        Decision {
            allowed,
            remaining: to_u32(remaining),
            retry_after_ms,
            reset_ms,
        }
    }

    /// `floor(limit − estimate)`, never negative.
    fn remaining(&self, s: &CounterState, elapsed: u128) -> u128 {
        let (limit, w) = (u128::from(self.limit), u128::from(self.window_ms));
        let used = u128::from(s.current) * w + u128::from(s.previous) * (w - elapsed);
        (limit * w).saturating_sub(used) / w
    }

    /// Milliseconds from now until `remaining >= target`, assuming no further hits.
    fn time_until(&self, s: &CounterState, elapsed: u128, target: u128) -> u64 {
        let (limit, w) = (u128::from(self.limit), u128::from(self.window_ms));
        if target > limit {
            return NEVER;
        }
        let (previous, current) = (u128::from(s.previous), u128::from(s.current));
        // In this window the condition is `previous × e >= need1` at elapsed time `e`.
        let need1 = ((target + current) * w + previous * w).saturating_sub(limit * w);
        if previous * elapsed >= need1 {
            return 0;
        }
        if previous > 0 {
            let e = ceil_div(need1, previous);
            if e < w {
                return to_u64(e - elapsed);
            }
        }
        // Next window: the current count becomes the previous one, weighted `(w − e) / w`.
        let to_next = w - elapsed;
        let need2 = (target * w + current * w).saturating_sub(limit * w);
        if need2 == 0 {
            return to_u64(to_next);
        }
        if current > 0 {
            let e = ceil_div(need2, current);
            if e < w {
                return to_u64(to_next + e);
            }
        }
        // Two windows on, everything has aged out.
        to_u64(to_next + w)
    }
}

impl RateLimiter for SlidingWindowCounter {
    fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        SlidingWindowCounter::hit(self, key, now_ms, cost)
    }
    fn forget_idle(&mut self, now_ms: u64) {
        let w = self.window_ms;
        self.keys.retain(|_, s| s.start + 2 * w > now_ms);
    }
    fn tracked_keys(&self) -> usize {
        self.keys.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Token bucket

#[derive(Debug, Clone, Copy)]
struct BucketState {
    /// Tokens × window_ms (so a refill of `limit / window_ms` tokens per ms is `limit` units).
    level: u128,
    updated_ms: u64,
}

/// A bucket of `burst` tokens refilled at `limit` tokens per `window_ms`, lazily on each hit.
/// A hit takes `cost` tokens. Levels are kept in units of `1 / window_ms` token so the refill is
/// an integer.
#[derive(Clone)]
pub struct TokenBucket {
    config: LimiterConfig,
    keys: HashMap<String, BucketState>,
}

impl TokenBucket {
    pub fn new(config: LimiterConfig) -> TokenBucket {
        TokenBucket {
            config: LimiterConfig {
                window_ms: window(config.window_ms),
                ..config
            },
            keys: HashMap::new(),
        }
    }

    fn full(&self) -> u128 {
        u128::from(self.config.burst) * u128::from(self.config.window_ms)
    }

    pub fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        let full = self.full();
        let w = u128::from(self.config.window_ms);
        let rate = u128::from(self.config.limit);
        let mut level = match self.keys.get(key) {
            Some(s) => {
                let elapsed = u128::from(now_ms.saturating_sub(s.updated_ms));
                (s.level + elapsed * rate).min(full)
            }
            None => full,
        };
        let need = u128::from(cost) * w;
        let allowed = level >= need;
        let retry_after_ms = if allowed {
            level -= need;
            0
        } else if need > full || rate == 0 {
            NEVER
        } else {
            to_u64(ceil_div(need - level, rate))
        };
        let remaining = level / w;
        let reset_ms = if level >= full || rate == 0 {
            0
        } else {
            to_u64(ceil_div((remaining + 1) * w - level, rate))
        };
        if level >= full {
            self.keys.remove(key);
        } else {
            self.keys.insert(
                key.to_string(),
                BucketState {
                    level,
                    updated_ms: now_ms,
                },
            );
        }
        Decision {
            allowed,
            remaining: to_u32(remaining),
            retry_after_ms,
            reset_ms,
        }
    }
}

impl RateLimiter for TokenBucket {
    fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        TokenBucket::hit(self, key, now_ms, cost)
    }
    fn forget_idle(&mut self, now_ms: u64) {
        let (full, rate) = (self.full(), u128::from(self.config.limit));
        self.keys.retain(|_, s| {
            let elapsed = u128::from(now_ms.saturating_sub(s.updated_ms));
            s.level + elapsed * rate < full
        });
    }
    fn tracked_keys(&self) -> usize {
        self.keys.len()
    }
}

// ---------------------------------------------------------------------------------------------
// GCRA

/// The Generic Cell Rate Algorithm: one theoretical arrival time (TAT) per key. The emission
/// interval is `T = window_ms / limit`; a hit of cost `n` moves the TAT to
/// `max(TAT, now) + n·T` and is allowed when that is at most `burst·T` ahead of `now`.
///
/// Time is counted in ticks of `1 / limit` ms so `T` is the integer `window_ms`. It makes the same
/// decisions as [`TokenBucket`] with the same settings — the difference is that it stores one
/// number per key instead of two.
#[derive(Clone)]
pub struct Gcra {
    config: LimiterConfig,
    /// TAT in ticks (ms × limit).
    tats: HashMap<String, u128>,
}

impl Gcra {
    pub fn new(config: LimiterConfig) -> Gcra {
        Gcra {
            config: LimiterConfig {
                window_ms: window(config.window_ms),
                ..config
            },
            tats: HashMap::new(),
        }
    }

    pub fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        let rate = u128::from(self.config.limit);
        let interval = u128::from(self.config.window_ms);
        let tolerance = u128::from(self.config.burst) * interval;
        let now = u128::from(now_ms) * rate;
        // How far the TAT runs ahead of now, in ticks.
        let mut ahead = self.tats.get(key).map_or(0, |&tat| tat.saturating_sub(now));
        let next = ahead + u128::from(cost) * interval;
        let allowed = next <= tolerance;
        let retry_after_ms = if allowed {
            ahead = next;
            0
        } else if u128::from(cost) * interval > tolerance || rate == 0 {
            NEVER
        } else {
            to_u64(ceil_div(next - tolerance, rate))
        };
        let remaining = tolerance.saturating_sub(ahead) / interval;
        let reset_ms = if ahead == 0 || rate == 0 {
            0
        } else {
            // `remaining` grows once the TAT is no more than (burst − remaining − 1)·T ahead.
            let target = tolerance.saturating_sub((remaining + 1) * interval);
            to_u64(ceil_div(ahead - target, rate))
        };
        if ahead == 0 {
            self.tats.remove(key);
        } else {
            self.tats.insert(key.to_string(), now + ahead);
        }
        Decision {
            allowed,
            remaining: to_u32(remaining),
            retry_after_ms,
            reset_ms,
        }
    }
}

impl RateLimiter for Gcra {
    fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        Gcra::hit(self, key, now_ms, cost)
    }
    fn forget_idle(&mut self, now_ms: u64) {
        let now = u128::from(now_ms) * u128::from(self.config.limit);
        self.tats.retain(|_, tat| *tat > now);
    }
    fn tracked_keys(&self) -> usize {
        self.tats.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Block duration

/// A decision plus whether the key is sitting out a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    /// A denial started a block, or a block was already running.
    pub blocked: bool,
}

/// Adds a block duration (a penalty, like rate-limiter-flexible's `blockDuration`) to any
/// limiter: after a denial the key is refused outright for `block_ms`, without consulting the
/// limiter. Blocked hits are not recorded.
#[derive(Clone)]
pub struct Penalized<L> {
    inner: L,
    block_ms: u64,
    blocked_until: HashMap<String, u64>,
}

impl<L: RateLimiter> Penalized<L> {
    pub fn new(inner: L, block_ms: u64) -> Penalized<L> {
        Penalized {
            inner,
            block_ms,
            blocked_until: HashMap::new(),
        }
    }

    pub fn check(&mut self, key: &str, now_ms: u64, cost: u32) -> Verdict {
        if let Some(&until) = self.blocked_until.get(key) {
            if now_ms < until {
                let wait = until - now_ms;
                return Verdict {
                    decision: Decision {
                        allowed: false,
                        remaining: 0,
                        retry_after_ms: wait,
                        reset_ms: wait,
                    },
                    blocked: true,
                };
            }
            self.blocked_until.remove(key);
        }
        let mut decision = self.inner.hit(key, now_ms, cost);
        let blocked = !decision.allowed && self.block_ms > 0;
        if blocked {
            self.blocked_until
                .insert(key.to_string(), now_ms + self.block_ms);
            decision.remaining = 0;
            decision.retry_after_ms = decision.retry_after_ms.max(self.block_ms);
            decision.reset_ms = decision.reset_ms.max(self.block_ms);
        }
        Verdict { decision, blocked }
    }
}

impl<L: RateLimiter> RateLimiter for Penalized<L> {
    fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        self.check(key, now_ms, cost).decision
    }
    fn forget_idle(&mut self, now_ms: u64) {
        self.blocked_until.retain(|_, until| *until > now_ms);
        self.inner.forget_idle(now_ms);
    }
    fn tracked_keys(&self) -> usize {
        self.inner.tracked_keys() + self.blocked_until.len()
    }
}

impl RateLimiter for Box<dyn RateLimiter> {
    fn hit(&mut self, key: &str, now_ms: u64, cost: u32) -> Decision {
        (**self).hit(key, now_ms, cost)
    }
    fn forget_idle(&mut self, now_ms: u64) {
        (**self).forget_idle(now_ms)
    }
    fn tracked_keys(&self) -> usize {
        (**self).tracked_keys()
    }
}

#[cfg(test)]
mod tests;
