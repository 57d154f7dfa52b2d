//! The lab's state in the app: the Redis store, the in-memory insurance limiter, the last known
//! settings per learner, and the live event hub.
//!
//! [`RateLimiterLab::decide`] is the one place a request meets the limiter, for the demo API and
//! for bursts alike: Redis first; on failure the learner's [`FailurePolicy`]; then a metric and a
//! [`LiveEvent`] for the learner's SSE stream. It never returns an error — every failure mode
//! becomes a declared outcome.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use tokio::sync::{Semaphore, broadcast};

use super::algorithms::{self, Penalized, RateLimiter, Verdict};
use super::store::{LimiterStore, StoreError};
use super::{FailurePolicy, Settings};

/// How many bursts may run at once in one process (each fires up to 500 decisions).
const CONCURRENT_BURSTS: usize = 4;
/// Recent events kept per learner for the page's first render.
const RECENT_EVENTS: usize = 40;
/// Beyond this many learners, idle entries are dropped from the in-process maps.
const MAX_LEARNERS: usize = 10_000;

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Redis,
    /// The in-memory insurance limiter (Redis was unavailable).
    Memory,
    /// No limiter could decide: the failure policy let the request through or refused it.
    Nobody,
}

impl Source {
    pub fn id(self) -> &'static str {
        match self {
            Source::Redis => "redis",
            Source::Memory => "memory",
            Source::Nobody => "none",
        }
    }
}

/// The result of one request meeting the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A limiter decided (Redis, or the insurance limiter).
    Decided { verdict: Verdict, source: Source },
    /// Redis was unavailable and the policy is fail open.
    FailedOpen,
    /// Redis was unavailable and the policy is fail closed.
    FailedClosed,
}

impl Outcome {
    pub fn allowed(&self) -> bool {
        match self {
            Outcome::Decided { verdict, .. } => verdict.decision.allowed,
            Outcome::FailedOpen => true,
            Outcome::FailedClosed => false,
        }
    }

    pub fn source(&self) -> Source {
        match self {
            Outcome::Decided { source, .. } => *source,
            _ => Source::Nobody,
        }
    }

    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            Outcome::Decided { verdict, .. } => Some(*verdict),
            _ => None,
        }
    }

    /// The metric label: `allowed`, `denied`, `blocked`, `failed_open` or `failed_closed`.
    pub fn id(&self) -> &'static str {
        match self {
            Outcome::FailedOpen => "failed_open",
            Outcome::FailedClosed => "failed_closed",
            _ => self.label(),
        }
    }

    /// A short word for the live view.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Decided { verdict, .. } if verdict.decision.allowed => "allowed",
            Outcome::Decided { verdict, .. } if verdict.blocked => "blocked",
            Outcome::Decided { .. } => "denied",
            Outcome::FailedOpen => "failed open",
            Outcome::FailedClosed => "failed closed",
        }
    }
}

/// How the request reached the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Api,
    Burst,
}

impl Via {
    pub fn id(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Burst => "burst",
        }
    }
}

/// One decision as the live view shows it.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// Milliseconds since the Unix epoch, by Redis's clock when Redis decided.
    pub at_ms: u64,
    pub via: Via,
    pub client: String,
    pub cost: u32,
    pub outcome: Outcome,
    /// The limit the decision was made against (remaining is out of this).
    pub capacity: u32,
    pub algorithm: algorithms::Algorithm,
}

impl LiveEvent {
    pub fn time(&self) -> String {
        chrono::DateTime::from_timestamp_millis(i64::try_from(self.at_ms).unwrap_or(0))
            .map(|t| t.format("%H:%M:%S%.3f").to_string())
            .unwrap_or_default()
    }

    pub fn css_class(&self) -> &'static str {
        match self.outcome {
            Outcome::Decided { verdict, .. } if verdict.decision.allowed => "is-allowed",
            Outcome::Decided { .. } => "is-denied",
            Outcome::FailedOpen => "is-failed-open",
            Outcome::FailedClosed => "is-failed-closed",
        }
    }

    pub fn remaining(&self) -> Option<u32> {
        self.outcome.verdict().map(|v| v.decision.remaining)
    }

    /// Seconds to wait, when denied.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.outcome
            .verdict()
            .filter(|v| !v.decision.allowed)
            .map(|v| retry_after_secs(v.decision.retry_after_ms))
    }

    /// Seconds until the quota grows, when it is not full.
    pub fn reset_secs(&self) -> Option<u64> {
        self.outcome
            .verdict()
            .map(|v| ceil_secs(v.decision.reset_ms))
            .filter(|secs| *secs > 0)
    }
}

/// Whole seconds, rounded up (headers carry seconds; never promise too early).
pub fn ceil_secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// `Retry-After` in seconds: at least 1, and "never" capped at a day.
pub fn retry_after_secs(ms: u64) -> u64 {
    ceil_secs(ms).clamp(1, 86_400)
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A learner's insurance limiter, rebuilt whenever their settings change.
struct Insurance {
    settings: Settings,
    limiter: Penalized<Box<dyn RateLimiter>>,
}

struct Channel {
    sender: broadcast::Sender<LiveEvent>,
    recent: VecDeque<LiveEvent>,
}

/// Per-learner broadcast of decisions for the SSE stream. In-process: a learner sees the
/// decisions of the instance their browser is connected to.
#[derive(Default)]
pub struct EventHub {
    channels: Mutex<HashMap<String, Channel>>,
}

impl EventHub {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn channel<'a>(channels: &'a mut HashMap<String, Channel>, namespace: &str) -> &'a mut Channel {
        if channels.len() >= MAX_LEARNERS && !channels.contains_key(namespace) {
            // Every cookieless API call is a new visitor, so this map must have a hard cap: drop
            // everyone nobody is watching (they only lose the recent list a fresh page shows).
            // Amortised O(1): the next sweep is another MAX_LEARNERS new learners away.
            channels.retain(|_, c| c.sender.receiver_count() > 0);
        }
        channels
            .entry(namespace.to_string())
            .or_insert_with(|| Channel {
                sender: broadcast::channel(256).0,
                recent: VecDeque::new(),
            })
    }

    pub fn publish(&self, namespace: &str, event: LiveEvent) {
        let mut channels = self.lock();
        let channel = EventHub::channel(&mut channels, namespace);
        if channel.recent.len() == RECENT_EVENTS {
            channel.recent.pop_back();
        }
        channel.recent.push_front(event.clone());
        // No subscriber is not an error: the page may simply not be open.
        let _ = channel.sender.send(event);
    }

    pub fn subscribe(&self, namespace: &str) -> broadcast::Receiver<LiveEvent> {
        EventHub::channel(&mut self.lock(), namespace)
            .sender
            .subscribe()
    }

    /// Newest first.
    pub fn recent(&self, namespace: &str) -> Vec<LiveEvent> {
        self.lock()
            .get(namespace)
            .map(|c| c.recent.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn clear(&self, namespace: &str) {
        if let Some(channel) = self.lock().get_mut(namespace) {
            channel.recent.clear();
        }
    }
}

pub struct RateLimiterLab {
    pub store: LimiterStore,
    pub events: EventHub,
    /// Gates concurrent bursts so one learner cannot turn the lab into a Redis load test.
    pub bursts: Arc<Semaphore>,
    insurance: Mutex<HashMap<String, Insurance>>,
    /// The last settings seen per learner, used when Redis cannot be asked.
    known_settings: Mutex<HashMap<String, Settings>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RateLimiterLab {
    pub fn new(redis: ConnectionManager, redis_prefix: &str) -> RateLimiterLab {
        RateLimiterLab {
            store: LimiterStore::new(redis, redis_prefix),
            events: EventHub::default(),
            bursts: Arc::new(Semaphore::new(CONCURRENT_BURSTS)),
            insurance: Mutex::new(HashMap::new()),
            known_settings: Mutex::new(HashMap::new()),
        }
    }

    /// The learner's settings and whether they came from Redis (false: Redis was unavailable
    /// and these are the last ones this process saw, or the defaults).
    pub async fn settings(&self, namespace: &str) -> (Settings, bool) {
        match self.store.load_settings(namespace).await {
            Ok(stored) => {
                let settings = stored.unwrap_or_default();
                self.remember(namespace, &settings);
                (settings, true)
            }
            Err(_) => (
                lock(&self.known_settings)
                    .get(namespace)
                    .cloned()
                    .unwrap_or_default(),
                false,
            ),
        }
    }

    fn remember(&self, namespace: &str, settings: &Settings) {
        let mut known = lock(&self.known_settings);
        if known.len() >= MAX_LEARNERS && !known.contains_key(namespace) {
            known.clear();
        }
        known.insert(namespace.to_string(), settings.clone());
    }

    pub async fn save_settings(
        &self,
        namespace: &str,
        settings: &Settings,
    ) -> Result<Settings, StoreError> {
        let saved = self.store.save_settings(namespace, settings).await?;
        self.remember(namespace, &saved);
        self.events.clear(namespace);
        Ok(saved)
    }

    /// Clears the learner's counters (a new revision) and their recent events.
    pub async fn reset(&self, namespace: &str) -> Result<(), StoreError> {
        let rev = self.store.bump_revision(namespace).await?;
        let (mut settings, _) = self.settings(namespace).await;
        settings.rev = rev;
        self.remember(namespace, &settings);
        self.events.clear(namespace);
        Ok(())
    }

    /// One request through the limiter. Publishes the outcome to the learner's live stream.
    pub async fn decide(
        &self,
        namespace: &str,
        settings: &Settings,
        client: &str,
        cost: u32,
        via: Via,
    ) -> (Outcome, u64) {
        let (outcome, at_ms) = match self
            .store
            .hit(namespace, settings, client, cost, None)
            .await
        {
            Ok(hit) => (
                Outcome::Decided {
                    verdict: hit.verdict,
                    source: Source::Redis,
                },
                hit.now_ms,
            ),
            Err(_) => {
                let now = wall_clock_ms();
                let outcome = match settings.policy {
                    FailurePolicy::FailOpen => Outcome::FailedOpen,
                    FailurePolicy::FailClosed => Outcome::FailedClosed,
                    FailurePolicy::Insurance => Outcome::Decided {
                        verdict: self.insurance_check(namespace, settings, client, cost, now),
                        source: Source::Memory,
                    },
                };
                (outcome, now)
            }
        };
        metrics::counter!(
            "rate_limiter_decisions_total",
            "algorithm" => settings.algorithm.id(),
            "outcome" => outcome.id(),
            "source" => outcome.source().id(),
        )
        .increment(1);
        self.events.publish(
            namespace,
            LiveEvent {
                at_ms,
                via,
                client: client.to_string(),
                cost,
                outcome,
                capacity: settings.capacity(),
                algorithm: settings.algorithm,
            },
        );
        (outcome, at_ms)
    }

    fn insurance_check(
        &self,
        namespace: &str,
        settings: &Settings,
        client: &str,
        cost: u32,
        now_ms: u64,
    ) -> Verdict {
        let mut all = lock(&self.insurance);
        if all.len() >= MAX_LEARNERS && !all.contains_key(namespace) {
            // An outage long and wide enough to get here: start over rather than grow.
            all.clear();
        }
        let fresh = || Insurance {
            settings: settings.clone(),
            limiter: Penalized::new(
                algorithms::build(settings.algorithm, settings.config()),
                settings.block_ms(),
            ),
        };
        let entry = all.entry(namespace.to_string()).or_insert_with(fresh);
        if entry.settings != *settings {
            *entry = fresh();
        }
        entry.limiter.forget_idle(now_ms);
        entry.limiter.check(client, now_ms, cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_event_hub_keeps_watched_learners_and_stays_bounded() {
        let hub = EventHub::default();
        let event = LiveEvent {
            at_ms: 0,
            via: Via::Api,
            client: "ip:10.0.0.1".into(),
            cost: 1,
            outcome: Outcome::FailedOpen,
            capacity: 10,
            algorithm: algorithms::Algorithm::Gcra,
        };
        let mut watching = hub.subscribe("u1");
        for i in 0..MAX_LEARNERS + 10 {
            hub.publish(&format!("v{i:016x}"), event.clone());
        }
        assert!(hub.lock().len() <= MAX_LEARNERS, "capped");
        hub.publish("u1", event.clone());
        assert_eq!(watching.recv().await.map(|e| e.cost).ok(), Some(1));
        assert_eq!(hub.recent("u1").len(), 1);
        for _ in 0..RECENT_EVENTS + 5 {
            hub.publish("u1", event.clone());
        }
        assert_eq!(hub.recent("u1").len(), RECENT_EVENTS);
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(algorithms::NEVER), 86_400);
    }
}
