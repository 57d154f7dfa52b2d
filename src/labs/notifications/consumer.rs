//! The retrying, idempotent consumer of the notifications lab's graded challenge, as a pure
//! reference on a virtual clock: what a consumer must decide for each message it is handed.
//!
//! How a delivery flows through [`Consumer::deliver`], in this order (the first rule that
//! applies decides):
//!
//! 1. **Replay** — a message from the dead-letter topic (`<main>-dlt`) is an operator's replay.
//!    If the event was already handled it is a [`Decision::Duplicate`]; otherwise the event
//!    starts over: its processed attempts are forgotten and the handler runs as attempt 1 (the
//!    message's own `attempt` and `due_at` are ignored), continuing at step 5.
//! 2. **Handled** — an event that once succeeded is a [`Decision::Duplicate`] whatever the
//!    attempt or topic: redelivery after a rebalance must never notify twice.
//! 3. **Stale / duplicate attempt** — each event remembers the highest attempt whose handler
//!    ran. A lower attempt is [`Decision::Stale`] (an older retry overtaken by a newer one —
//!    retry topics are separate partitions, so Kafka does not order them); the same attempt again
//!    is a [`Decision::Duplicate`] (a redelivery of an attempt already processed).
//! 4. **Not due yet** — a message whose `due_at` is later than `now` is a [`Decision::Wait`]:
//!    the handler does not run and nothing is recorded; a retry-topic consumer pauses the
//!    partition until then and gets the same message again. The dedupe checks come first
//!    because a message that will be skipped anyway must not hold the partition up.
//! 5. **Run the handler** — the attempt is recorded as processed, and the message's `outcome`
//!    says what the handler did: `ok` is [`Decision::Handled`] (the event is done for good); a
//!    failure is routed by [`route_failure`] to a retry topic ([`Decision::Retry`], due at
//!    `now + delay_ms`) or to the dead-letter topic ([`Decision::DeadLetter`]).
//!
//! State is one small record per event id; a real consumer keeps it in its database (a unique
//! key on the event id for "handled", and the last attempt next to it), in the same transaction
//! as the notification it writes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::retry::{
    DeadLetterReason, ErrorClass, RetryPolicy, Route, dead_letter_topic, route_failure,
};

/// What the handler does when it runs on this delivery (the grader feeds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Retryable,
    Fatal,
}

/// One message as the consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub event_id: String,
    /// The topic it was read from: the main topic, a retry topic, or the dead-letter topic.
    pub topic: String,
    /// 1 for the first delivery from the main topic, n for the (n-1)th retry.
    pub attempt: u32,
    /// When a retry message may run (set by the retry that produced it); absent on the main
    /// topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<u64>,
    pub outcome: Outcome,
}

/// What the consumer does with one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Decision {
    /// The handler ran and succeeded.
    Handled,
    /// Already handled, or this attempt was already processed: skip it, commit the offset.
    Duplicate,
    /// A retry that is not due: do not run the handler before `until_ms`.
    Wait { until_ms: u64 },
    /// An attempt older than one already processed: skip it.
    Stale,
    /// The handler failed; publish attempt `attempt` to `topic`, due at `due_at`.
    Retry {
        topic: String,
        attempt: u32,
        delay_ms: u64,
        due_at: u64,
    },
    /// The handler failed for good; publish to the dead-letter topic.
    DeadLetter {
        topic: String,
        reason: DeadLetterReason,
    },
}

#[derive(Debug, Default, Clone, Copy)]
struct EventState {
    handled: bool,
    /// The highest attempt whose handler ran (0 = none yet).
    last_attempt: u32,
}

/// A consumer of one main topic and its retry and dead-letter topics.
#[derive(Debug, Clone)]
pub struct Consumer {
    policy: RetryPolicy,
    main_topic: String,
    dead_letter_topic: String,
    events: HashMap<String, EventState>,
}

impl Consumer {
    pub fn new(policy: RetryPolicy, main_topic: &str) -> Consumer {
        Consumer {
            policy,
            main_topic: main_topic.to_string(),
            dead_letter_topic: dead_letter_topic(main_topic),
            events: HashMap::new(),
        }
    }

    /// Decides what to do with `message`, delivered at `now` (ms on the virtual clock, never
    /// going back). The rules, in order, are in the module documentation.
    pub fn deliver(&mut self, message: &Message, now: u64) -> Decision {
        let state = self.events.entry(message.event_id.clone()).or_default();
        let attempt = if message.topic == self.dead_letter_topic {
            if state.handled {
                return Decision::Duplicate;
            }
            // A replay starts the event over, so the attempts of the earlier round no longer
            // count and the retries it produces are numbered from 1 again.
            state.last_attempt = 0;
            1
        } else {
            let attempt = message.attempt.max(1);
            if state.handled || attempt == state.last_attempt {
                return Decision::Duplicate;
            }
            if attempt < state.last_attempt {
                return Decision::Stale;
            }
            if let Some(due_at) = message.due_at
                && due_at > now
            {
                return Decision::Wait { until_ms: due_at };
            }
            attempt
        };
        state.last_attempt = attempt;
        let class = match message.outcome {
            Outcome::Ok => {
                state.handled = true;
                return Decision::Handled;
            }
            Outcome::Retryable => ErrorClass::Retryable,
            Outcome::Fatal => ErrorClass::Fatal,
        };
        match route_failure(&self.policy, &self.main_topic, attempt, class) {
            Route::Retry {
                topic,
                attempt,
                delay_ms,
            } => Decision::Retry {
                topic,
                attempt,
                delay_ms,
                due_at: now.saturating_add(delay_ms),
            },
            Route::DeadLetter { topic, reason } => Decision::DeadLetter { topic, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(
        event: &str,
        topic: &str,
        attempt: u32,
        due_at: Option<u64>,
        outcome: Outcome,
    ) -> Message {
        Message {
            event_id: event.to_string(),
            topic: topic.to_string(),
            attempt,
            due_at,
            outcome,
        }
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            ..RetryPolicy::default()
        }
    }

    fn retry(topic: &str, attempt: u32, delay_ms: u64, due_at: u64) -> Decision {
        Decision::Retry {
            topic: topic.to_string(),
            attempt,
            delay_ms,
            due_at,
        }
    }

    fn dead(reason: DeadLetterReason) -> Decision {
        Decision::DeadLetter {
            topic: "orders-dlt".to_string(),
            reason,
        }
    }

    #[test]
    fn an_early_retry_waits_and_then_succeeds_once() {
        let mut consumer = Consumer::new(policy(3), "orders");
        let first = message("e1", "orders", 1, None, Outcome::Retryable);
        assert_eq!(
            consumer.deliver(&first, 0),
            retry("orders-retry-1s", 2, 1000, 1000)
        );
        let second = message("e1", "orders-retry-1s", 2, Some(1000), Outcome::Ok);
        assert_eq!(
            consumer.deliver(&second, 400),
            Decision::Wait { until_ms: 1000 }
        );
        assert_eq!(consumer.deliver(&second, 1000), Decision::Handled);
        assert_eq!(consumer.deliver(&second, 1100), Decision::Duplicate);
        assert_eq!(consumer.deliver(&first, 1200), Decision::Duplicate);
    }

    #[test]
    fn older_attempts_are_stale_and_the_same_attempt_is_a_duplicate() {
        let mut consumer = Consumer::new(policy(3), "orders");
        let first = message("e", "orders", 1, None, Outcome::Retryable);
        consumer.deliver(&first, 0);
        let second = message("e", "orders-retry-1s", 2, Some(1000), Outcome::Retryable);
        assert_eq!(
            consumer.deliver(&second, 1000),
            retry("orders-retry-5s", 3, 5000, 6000)
        );
        assert_eq!(consumer.deliver(&first, 1500), Decision::Stale);
        assert_eq!(consumer.deliver(&second, 1500), Decision::Duplicate);
        // A stale message is stale even before it would be due.
        let early = message("e", "orders-retry-1s", 1, Some(99_999), Outcome::Ok);
        assert_eq!(consumer.deliver(&early, 1600), Decision::Stale);
        let third = message("e", "orders-retry-5s", 3, Some(6000), Outcome::Retryable);
        assert_eq!(
            consumer.deliver(&third, 6000),
            dead(DeadLetterReason::Exhausted)
        );
    }

    #[test]
    fn a_replay_starts_over_unless_the_event_was_handled() {
        let mut consumer = Consumer::new(policy(2), "orders");
        let fatal = message("e", "orders", 1, None, Outcome::Fatal);
        assert_eq!(consumer.deliver(&fatal, 0), dead(DeadLetterReason::Fatal));
        let replay = message("e", "orders-dlt", 1, None, Outcome::Retryable);
        assert_eq!(
            consumer.deliver(&replay, 10),
            retry("orders-retry-1s", 2, 1000, 1010)
        );
        // Replayed again before the retry: still not handled, so it starts over once more.
        assert_eq!(
            consumer.deliver(&replay, 20),
            retry("orders-retry-1s", 2, 1000, 1020)
        );
        let retried = message("e", "orders-retry-1s", 2, Some(1020), Outcome::Ok);
        assert_eq!(consumer.deliver(&retried, 1020), Decision::Handled);
        let late_replay = message("e", "orders-dlt", 2, Some(5000), Outcome::Ok);
        assert_eq!(consumer.deliver(&late_replay, 1030), Decision::Duplicate);
    }

    #[test]
    fn events_are_tracked_separately_and_one_attempt_policies_never_retry() {
        let mut consumer = Consumer::new(policy(1), "orders");
        let a = message("a", "orders", 1, None, Outcome::Retryable);
        let b = message("b", "orders", 1, None, Outcome::Ok);
        assert_eq!(consumer.deliver(&a, 0), dead(DeadLetterReason::Exhausted));
        assert_eq!(consumer.deliver(&b, 0), Decision::Handled);
        assert_eq!(consumer.deliver(&a, 1), Decision::Duplicate);
    }

    #[test]
    fn decisions_and_messages_use_the_javascript_field_names() {
        let decision = retry("orders-retry-1s", 2, 1000, 1000);
        assert_eq!(
            serde_json::to_value(&decision).unwrap(),
            serde_json::json!({"action": "retry", "topic": "orders-retry-1s", "attempt": 2, "delayMs": 1000, "dueAt": 1000})
        );
        assert_eq!(
            serde_json::to_value(Decision::Wait { until_ms: 5 }).unwrap(),
            serde_json::json!({"action": "wait", "untilMs": 5})
        );
        assert_eq!(
            serde_json::to_value(dead(DeadLetterReason::Exhausted)).unwrap(),
            serde_json::json!({"action": "dead_letter", "topic": "orders-dlt", "reason": "exhausted"})
        );
        let parsed: Message = serde_json::from_value(serde_json::json!(
            {"eventId": "e", "topic": "orders-retry-1s", "attempt": 2, "dueAt": 1000, "outcome": "retryable"}
        ))
        .unwrap();
        assert_eq!(
            parsed,
            message("e", "orders-retry-1s", 2, Some(1000), Outcome::Retryable)
        );
    }
}
