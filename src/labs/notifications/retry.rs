//! Retry, backoff and dead-letter routing for the notifications lab: the one reference both the
//! live Kafka pipeline and the graded challenge use.
//!
//! How a failure flows: a handler fails on attempt `n` of an event (attempt 1 is the delivery
//! from the main topic) and classifies the error as [`ErrorClass::Retryable`] or
//! [`ErrorClass::Fatal`]. [`route_failure`] turns that into a [`Route`]: either a retry topic
//! named after its delay (`order-events-retry-5s`), where the event waits
//! [`RetryPolicy::delay_before`] the next attempt without blocking the main partition, or the
//! dead-letter topic (`order-events-dlt`) — at once for fatal errors, after `max_attempts` for
//! retryable ones. [`topics`] lists every topic a policy can route to, so they can be created
//! up front.
//!
//! Everything here is pure integer arithmetic (no clock, no I/O): the same inputs always give
//! the same route, which is what lets the challenge grade learners against it.

use serde::{Deserialize, Serialize};

/// The most attempts a policy may allow: more than this is a retry storm, not a policy.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// How often and how patiently a failed event is retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total attempts including the first delivery (at least 1; 1 means never retry).
    pub max_attempts: u32,
    /// The delay before the second attempt.
    pub base_delay_ms: u64,
    /// Each further retry waits this many times longer (at least 1; 1 is a constant delay).
    pub multiplier: u32,
    /// No retry waits longer than this.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    /// Four attempts: the first delivery, then retries after 1 s, 5 s and 25 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay_ms: 1000,
            multiplier: 5,
            max_delay_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// Checks the policy; the error is a sentence a learner can act on.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts < 1 || self.max_attempts > MAX_ATTEMPTS_LIMIT {
            return Err(format!(
                "The number of attempts must be from 1 to {MAX_ATTEMPTS_LIMIT} (it counts the first delivery; 1 means never retry)."
            ));
        }
        if self.multiplier < 1 {
            return Err(
                "The multiplier must be at least 1 (1 keeps the delay constant).".to_string(),
            );
        }
        if self.base_delay_ms > self.max_delay_ms {
            return Err(format!(
                "The base delay ({} ms) must not exceed the maximum delay ({} ms).",
                self.base_delay_ms, self.max_delay_ms
            ));
        }
        Ok(())
    }

    /// The delay before attempt `attempt` (1-based): 0 for the first delivery, then
    /// `min(base_delay_ms * multiplier^(attempt - 2), max_delay_ms)`, saturating instead of
    /// overflowing (a huge exponent simply means the maximum delay).
    pub fn delay_before(&self, attempt: u32) -> u64 {
        if attempt < 2 {
            return 0;
        }
        let factor = u64::from(self.multiplier)
            .checked_pow(attempt - 2)
            .unwrap_or(u64::MAX);
        self.base_delay_ms
            .saturating_mul(factor)
            .min(self.max_delay_ms)
    }
}

/// How a handler classified its failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Might succeed later (a timeout, throttling, a dependency down): retry with backoff.
    Retryable,
    /// Will never succeed (a malformed payload, a validation error): retrying only wastes time.
    Fatal,
}

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// The handler said retrying cannot help.
    Fatal,
    /// Every attempt the policy allows failed.
    Exhausted,
}

/// Where a failed event goes next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Route {
    /// Publish to `topic` (a retry topic); it is attempt number `attempt`, due `delay_ms`
    /// after the failure.
    Retry {
        topic: String,
        attempt: u32,
        delay_ms: u64,
    },
    /// Publish to the dead-letter topic and stop.
    DeadLetter {
        topic: String,
        reason: DeadLetterReason,
    },
}

/// Where an event goes after `failed_attempt` (1-based; 0 is treated as 1) failed with `class`.
///
/// Fatal errors go to the dead-letter topic at once; a retryable failure of attempt
/// `max_attempts` or later goes there as exhausted; any other retryable failure goes to the
/// retry topic of `delay_before(failed_attempt + 1)` as attempt `failed_attempt + 1`.
pub fn route_failure(
    policy: &RetryPolicy,
    main_topic: &str,
    failed_attempt: u32,
    class: ErrorClass,
) -> Route {
    let failed_attempt = failed_attempt.max(1);
    let dead_letter = |reason| Route::DeadLetter {
        topic: dead_letter_topic(main_topic),
        reason,
    };
    match class {
        ErrorClass::Fatal => dead_letter(DeadLetterReason::Fatal),
        ErrorClass::Retryable if failed_attempt >= policy.max_attempts => {
            dead_letter(DeadLetterReason::Exhausted)
        }
        ErrorClass::Retryable => {
            let attempt = failed_attempt.saturating_add(1);
            let delay_ms = policy.delay_before(attempt);
            Route::Retry {
                topic: retry_topic(main_topic, delay_ms),
                attempt,
                delay_ms,
            }
        }
    }
}

/// The retry topic for one delay, named by the delay so that every event waiting the same time
/// shares a topic (and a topic's messages become due in the order they were written):
/// whole minutes as `m`, else whole seconds as `s`, else milliseconds —
/// `order-events-retry-2m`, `order-events-retry-5s`, `order-events-retry-250ms`.
pub fn retry_topic(main_topic: &str, delay_ms: u64) -> String {
    let suffix = if delay_ms > 0 && delay_ms.is_multiple_of(60_000) {
        format!("{}m", delay_ms / 60_000)
    } else if delay_ms > 0 && delay_ms.is_multiple_of(1000) {
        format!("{}s", delay_ms / 1000)
    } else {
        format!("{delay_ms}ms")
    };
    format!("{main_topic}-retry-{suffix}")
}

/// The dead-letter topic of a main topic: `order-events-dlt`.
pub fn dead_letter_topic(main_topic: &str) -> String {
    format!("{main_topic}-dlt")
}

/// Every retry topic `policy` can route to (deduplicated, in the order attempts reach them),
/// then the dead-letter topic: the topics to create before consuming.
pub fn topics(policy: &RetryPolicy, main_topic: &str) -> Vec<String> {
    let mut topics: Vec<String> = Vec::new();
    for attempt in 2..=policy.max_attempts {
        let delay_ms = policy.delay_before(attempt);
        let topic = retry_topic(main_topic, delay_ms);
        if !topics.contains(&topic) {
            topics.push(topic);
        }
        // Delays never decrease, so once one is capped every later attempt uses the same topic.
        if delay_ms >= policy.max_delay_ms {
            break;
        }
    }
    topics.push(dead_letter_topic(main_topic));
    topics
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MAIN: &str = "order-events";

    #[test]
    fn the_default_policy_retries_after_1_5_and_25_seconds() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.validate(), Ok(()));
        assert_eq!(
            (1..=4).map(|n| policy.delay_before(n)).collect::<Vec<_>>(),
            vec![0, 1000, 5000, 25_000]
        );
        assert_eq!(
            topics(&policy, MAIN),
            vec![
                "order-events-retry-1s",
                "order-events-retry-5s",
                "order-events-retry-25s",
                "order-events-dlt"
            ]
        );
    }

    #[test]
    fn retryable_failures_go_to_the_next_retry_topic_until_exhausted() {
        let policy = RetryPolicy::default();
        let retry = |attempt, delay_ms, topic: &str| Route::Retry {
            topic: topic.to_string(),
            attempt,
            delay_ms,
        };
        let class = ErrorClass::Retryable;
        assert_eq!(
            route_failure(&policy, MAIN, 1, class),
            retry(2, 1000, "order-events-retry-1s")
        );
        assert_eq!(
            route_failure(&policy, MAIN, 2, class),
            retry(3, 5000, "order-events-retry-5s")
        );
        assert_eq!(
            route_failure(&policy, MAIN, 3, class),
            retry(4, 25_000, "order-events-retry-25s")
        );
        let exhausted = Route::DeadLetter {
            topic: "order-events-dlt".to_string(),
            reason: DeadLetterReason::Exhausted,
        };
        assert_eq!(route_failure(&policy, MAIN, 4, class), exhausted);
        assert_eq!(route_failure(&policy, MAIN, 9, class), exhausted);
    }

    #[test]
    fn fatal_failures_are_dead_lettered_at_once() {
        let policy = RetryPolicy::default();
        for attempt in [0, 1, 3, 4] {
            assert_eq!(
                route_failure(&policy, MAIN, attempt, ErrorClass::Fatal),
                Route::DeadLetter {
                    topic: "order-events-dlt".to_string(),
                    reason: DeadLetterReason::Fatal,
                }
            );
        }
    }

    #[test]
    fn a_single_attempt_policy_never_retries() {
        let policy = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        assert!(matches!(
            route_failure(&policy, MAIN, 1, ErrorClass::Retryable),
            Route::DeadLetter {
                reason: DeadLetterReason::Exhausted,
                ..
            }
        ));
        assert_eq!(topics(&policy, MAIN), vec!["order-events-dlt"]);
    }

    #[test]
    fn delays_are_capped_and_never_overflow() {
        let policy = RetryPolicy {
            max_attempts: 100,
            base_delay_ms: 250,
            multiplier: 4,
            max_delay_ms: 120_000,
        };
        assert_eq!(policy.delay_before(2), 250);
        assert_eq!(policy.delay_before(3), 1000);
        assert_eq!(policy.delay_before(6), 64_000);
        assert_eq!(policy.delay_before(7), 120_000);
        assert_eq!(policy.delay_before(u32::MAX), 120_000);
        let huge = RetryPolicy {
            base_delay_ms: u64::MAX / 2,
            max_delay_ms: u64::MAX,
            multiplier: u32::MAX,
            ..policy.clone()
        };
        assert_eq!(huge.delay_before(3), u64::MAX);
        assert_eq!(
            topics(&policy, MAIN),
            vec![
                "order-events-retry-250ms",
                "order-events-retry-1s",
                "order-events-retry-4s",
                "order-events-retry-16s",
                "order-events-retry-64s",
                "order-events-retry-2m",
                "order-events-dlt"
            ]
        );
    }

    #[test]
    fn retry_topics_are_named_by_their_delay() {
        assert_eq!(retry_topic(MAIN, 0), "order-events-retry-0ms");
        assert_eq!(retry_topic(MAIN, 250), "order-events-retry-250ms");
        assert_eq!(retry_topic(MAIN, 1500), "order-events-retry-1500ms");
        assert_eq!(retry_topic(MAIN, 1000), "order-events-retry-1s");
        assert_eq!(retry_topic(MAIN, 90_000), "order-events-retry-90s");
        assert_eq!(retry_topic(MAIN, 120_000), "order-events-retry-2m");
        assert_eq!(dead_letter_topic(MAIN), "order-events-dlt");
    }

    #[test]
    fn invalid_policies_are_refused_with_a_reason() {
        let base = RetryPolicy::default();
        let zero = RetryPolicy {
            max_attempts: 0,
            ..base.clone()
        };
        assert!(zero.validate().unwrap_err().contains("from 1 to 100"));
        let flat = RetryPolicy {
            multiplier: 0,
            ..base.clone()
        };
        assert!(flat.validate().unwrap_err().contains("multiplier"));
        let inverted = RetryPolicy {
            base_delay_ms: 5000,
            max_delay_ms: 1000,
            ..base
        };
        assert_eq!(
            inverted.validate().unwrap_err(),
            "The base delay (5000 ms) must not exceed the maximum delay (1000 ms)."
        );
    }

    #[test]
    fn routes_serialize_with_an_action_tag() {
        let route = route_failure(&RetryPolicy::default(), MAIN, 1, ErrorClass::Retryable);
        assert_eq!(
            serde_json::to_value(&route).unwrap(),
            serde_json::json!({"action": "retry", "topic": "order-events-retry-1s", "attempt": 2, "delay_ms": 1000})
        );
        let dead = route_failure(&RetryPolicy::default(), MAIN, 2, ErrorClass::Fatal);
        assert_eq!(
            serde_json::to_value(&dead).unwrap(),
            serde_json::json!({"action": "dead_letter", "topic": "order-events-dlt", "reason": "fatal"})
        );
    }

    fn policy_strategy() -> impl Strategy<Value = RetryPolicy> {
        (1..=20u32, 0..=10_000u64, 1..=10u32, 0..=600_000u64).prop_map(
            |(max_attempts, base, multiplier, extra)| RetryPolicy {
                max_attempts,
                base_delay_ms: base,
                multiplier,
                max_delay_ms: base + extra,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn delays_never_decrease_and_never_exceed_the_maximum(policy in policy_strategy()) {
            prop_assert!(policy.validate().is_ok());
            let mut previous = 0;
            for attempt in 1..=policy.max_attempts + 5 {
                let delay = policy.delay_before(attempt);
                prop_assert!(delay >= previous, "attempt {attempt}: {delay} < {previous}");
                prop_assert!(delay <= policy.max_delay_ms);
                previous = delay;
            }
        }

        #[test]
        fn retryable_failures_end_in_the_dlt_after_exactly_max_attempts(policy in policy_strategy()) {
            let all_topics = topics(&policy, MAIN);
            let mut attempt = 1;
            let mut attempts_made = 1;
            loop {
                match route_failure(&policy, MAIN, attempt, ErrorClass::Retryable) {
                    Route::Retry { topic, attempt: next, delay_ms } => {
                        prop_assert_eq!(next, attempt + 1);
                        prop_assert_eq!(delay_ms, policy.delay_before(next));
                        prop_assert!(all_topics.contains(&topic), "{topic} not in {all_topics:?}");
                        attempt = next;
                        attempts_made += 1;
                        prop_assert!(attempts_made <= policy.max_attempts);
                    }
                    Route::DeadLetter { topic, reason } => {
                        prop_assert_eq!(reason, DeadLetterReason::Exhausted);
                        prop_assert_eq!(&topic, all_topics.last().expect("the dlt"));
                        break;
                    }
                }
            }
            prop_assert_eq!(attempts_made, policy.max_attempts);
        }
    }
}
