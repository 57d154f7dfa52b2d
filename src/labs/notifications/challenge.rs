//! The notifications lab's graded challenge: a retrying, idempotent Kafka consumer on a virtual
//! clock. Expected answers come from [`Consumer`] (whose retry and dead-letter routes come from
//! [`super::retry::route_failure`], the code the live pipeline runs).
//!
//! Input `{ "policy": { "mainTopic", "maxAttempts", "baseDelayMs", "multiplier", "maxDelayMs" },
//! "deliveries": [[now, message], ...] }` with messages `{ "eventId", "topic", "attempt",
//! "dueAt"?, "outcome" }` and times that never go back; output one decision per delivery (see
//! [`Decision`] and the rules in [`super::consumer`]).
//!
//! Random traces are simulated, not drawn blindly: events enter on the main topic, every retry
//! the reference asks for is published and consumed (sometimes before it is due), dead letters
//! are sometimes replayed, and deliveries are redelivered at random later times — the duplicates
//! and out-of-order retries a consumer meets after rebalances.

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::consumer::{Consumer, Decision, Message, Outcome};
use super::retry::{RetryPolicy, dead_letter_topic};
use crate::grading::Challenge;

pub struct NotificationsChallenge;

/// The policy as the learner's `createConsumer` receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyInput {
    main_topic: String,
    max_attempts: u32,
    base_delay_ms: u64,
    multiplier: u32,
    max_delay_ms: u64,
}

impl PolicyInput {
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            base_delay_ms: self.base_delay_ms,
            multiplier: self.multiplier,
            max_delay_ms: self.max_delay_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trace {
    policy: PolicyInput,
    deliveries: Vec<(u64, Message)>,
}

fn trace_of(input: &Value) -> Result<Trace, String> {
    serde_json::from_value(input.clone()).map_err(|e| format!("malformed trace: {e}"))
}

fn decide_all(trace: &Trace) -> Vec<Decision> {
    let mut consumer = Consumer::new(trace.policy.retry_policy(), &trace.policy.main_topic);
    trace
        .deliveries
        .iter()
        .map(|(now, message)| consumer.deliver(message, *now))
        .collect()
}

/// A short description of one delivery for messages: `e1 attempt 2 from orders-retry-1s at t=400`.
fn describe(now: u64, message: &Message) -> String {
    format!(
        "{} attempt {} from {}{} at t={now}, outcome {}",
        message.event_id,
        message.attempt,
        message.topic,
        message
            .due_at
            .map(|due| format!(" due {due}"))
            .unwrap_or_default(),
        match message.outcome {
            Outcome::Ok => "ok",
            Outcome::Retryable => "retryable",
            Outcome::Fatal => "fatal",
        }
    )
}

fn random_policy(rng: &mut StdRng) -> PolicyInput {
    let base = *[0u64, 100, 250, 1000, 1500, 2000]
        .get(rng.random_range(0..6))
        .unwrap_or(&1000);
    let max = match rng.random_range(0..4) {
        0 => base,
        1 => base * 3,
        2 => 60_000,
        _ => 120_000,
    };
    PolicyInput {
        main_topic: "orders".to_string(),
        max_attempts: *[1u32, 2, 3, 3, 4, 4, 5, 6]
            .get(rng.random_range(0..8))
            .unwrap_or(&3),
        base_delay_ms: base,
        multiplier: rng.random_range(1..=5),
        max_delay_ms: max,
    }
}

fn random_outcome(rng: &mut StdRng) -> Outcome {
    match rng.random_range(0..20) {
        0..=8 => Outcome::Ok,
        9..=17 => Outcome::Retryable,
        _ => Outcome::Fatal,
    }
}

impl Challenge for NotificationsChallenge {
    fn expected(&self, input: &Value) -> Value {
        match trace_of(input) {
            Ok(trace) => json!(decide_all(&trace)),
            Err(message) => json!({ "error": message }),
        }
    }

    fn random_input(&self, rng: &mut StdRng) -> Value {
        let policy = random_policy(rng);
        let dlt = dead_letter_topic(&policy.main_topic);
        let mut consumer = Consumer::new(policy.retry_policy(), &policy.main_topic);
        let target = rng.random_range(6..=60usize);
        // Messages waiting to be consumed: (when, sequence, message); the earliest goes next,
        // ties in the order they were published.
        let mut pending: Vec<(u64, usize, Message)> = Vec::new();
        let mut sequence = 0;
        let mut publish = |pending: &mut Vec<(u64, usize, Message)>, at: u64, message: Message| {
            pending.push((at, sequence, message));
            sequence += 1;
        };
        for event in 1..=rng.random_range(1..=6u32) {
            let at = rng.random_range(0..3000);
            let message = Message {
                event_id: format!("e{event}"),
                topic: policy.main_topic.clone(),
                attempt: 1,
                due_at: None,
                outcome: Outcome::Ok,
            };
            publish(&mut pending, at, message);
        }
        let mut deliveries: Vec<(u64, Message)> = Vec::new();
        let mut now = 0;
        while deliveries.len() < target {
            let Some(next) = pending
                .iter()
                .enumerate()
                .min_by_key(|(_, (at, seq, _))| (*at, *seq))
                .map(|(i, _)| i)
            else {
                break;
            };
            let (at, _, mut message) = pending.swap_remove(next);
            now = now.max(at);
            // What the handler does is drawn per delivery: a redelivered message may well
            // succeed where the first delivery failed.
            message.outcome = random_outcome(rng);
            let decision = consumer.deliver(&message, now);
            deliveries.push((now, message.clone()));
            match decision {
                Decision::Retry {
                    topic,
                    attempt,
                    delay_ms,
                    due_at,
                } => {
                    // Often consumed before it is due (the partition is read eagerly), else on
                    // time or a little late.
                    let consumed = if delay_ms > 0 && rng.random_bool(0.35) {
                        now + rng.random_range(0..delay_ms)
                    } else {
                        due_at + rng.random_range(0..300)
                    };
                    let retry = Message {
                        event_id: message.event_id.clone(),
                        topic,
                        attempt,
                        due_at: Some(due_at),
                        outcome: Outcome::Ok,
                    };
                    publish(&mut pending, consumed, retry);
                }
                Decision::Wait { until_ms } => {
                    let again = until_ms + rng.random_range(0..2) * rng.random_range(0..200);
                    publish(&mut pending, again, message.clone());
                }
                Decision::DeadLetter { .. } if rng.random_bool(0.4) => {
                    let replay = Message {
                        topic: dlt.clone(),
                        due_at: None,
                        ..message.clone()
                    };
                    publish(&mut pending, now + rng.random_range(500..20_000), replay);
                }
                _ => {}
            }
            // Redelivery after a rebalance: the same message again, some time later.
            if rng.random_bool(0.2) {
                publish(&mut pending, now + rng.random_range(0..5000), message);
            }
        }
        json!(Trace { policy, deliveries })
    }

    fn shrink(&self, input: &Value) -> Vec<Value> {
        crate::grading::without_chunks(input, "deliveries")
    }

    fn compare(&self, input: &Value, expected: &Value, actual: &Value) -> Result<(), String> {
        let deliveries = trace_of(input).map(|t| t.deliveries).unwrap_or_default();
        let (Some(expected), Some(actual)) = (expected.as_array(), actual.as_array()) else {
            return Err("expected an array with one decision per delivery".to_string());
        };
        for (i, want) in expected.iter().enumerate() {
            let got = actual.get(i).unwrap_or(&Value::Null);
            if want != got {
                let what = deliveries
                    .get(i)
                    .map(|(now, message)| format!(" ({})", describe(*now, message)))
                    .unwrap_or_default();
                return Err(format!(
                    "delivery #{}{what}: expected {want}, got {got}",
                    i + 1
                ));
            }
        }
        if actual.len() != expected.len() {
            return Err(format!(
                "expected {} decisions, got {}",
                expected.len(),
                actual.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use rand::SeedableRng;

    use super::*;
    use crate::labs::notifications::retry::DeadLetterReason;

    fn lab_tests(file: &str) -> Vec<(String, Value)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("labs/notifications/tests")
            .join(file);
        let entries: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(path).expect("tests file"))
                .expect("tests json");
        entries
            .into_iter()
            .map(|e| {
                (
                    e["name"].as_str().expect("name").to_string(),
                    e["input"].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn the_worked_example_gets_the_documented_answers() {
        let input = json!({
            "policy": { "mainTopic": "orders", "maxAttempts": 3, "baseDelayMs": 1000, "multiplier": 5, "maxDelayMs": 60000 },
            "deliveries": [
                [0, { "eventId": "e1", "topic": "orders", "attempt": 1, "outcome": "retryable" }],
                [400, { "eventId": "e1", "topic": "orders-retry-1s", "attempt": 2, "dueAt": 1000, "outcome": "ok" }],
                [1000, { "eventId": "e1", "topic": "orders-retry-1s", "attempt": 2, "dueAt": 1000, "outcome": "ok" }],
                [1200, { "eventId": "e1", "topic": "orders", "attempt": 1, "outcome": "ok" }]
            ]
        });
        assert_eq!(
            NotificationsChallenge.expected(&input),
            json!([
                { "action": "retry", "topic": "orders-retry-1s", "attempt": 2, "delayMs": 1000, "dueAt": 1000 },
                { "action": "wait", "untilMs": 1000 },
                { "action": "handled" },
                { "action": "duplicate" },
            ])
        );
    }

    #[test]
    fn every_lab_test_is_a_well_formed_trace() {
        let public = lab_tests("public.json");
        let hidden = lab_tests("hidden.json");
        assert_eq!(public.len(), 3);
        assert!(hidden.len() >= 8);
        for (name, input) in public.iter().chain(&hidden) {
            let trace = trace_of(input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(trace.policy.retry_policy().validate().is_ok(), "{name}");
            let times: Vec<u64> = trace.deliveries.iter().map(|(t, _)| *t).collect();
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "{name}: time goes back"
            );
        }
    }

    #[test]
    fn hidden_tests_cover_what_their_names_promise() {
        let hidden: HashMap<String, Value> = lab_tests("hidden.json").into_iter().collect();
        let actions = |name: &str| -> Vec<String> {
            let input = hidden.get(name).unwrap_or_else(|| panic!("no test {name}"));
            NotificationsChallenge
                .expected(input)
                .as_array()
                .expect("decisions")
                .iter()
                .map(|d| d["action"].as_str().expect("action").to_string())
                .collect()
        };
        let storm = actions("duplicate storm");
        assert!(storm.iter().filter(|a| *a == "duplicate").count() >= 20);
        assert_eq!(storm.iter().filter(|a| *a == "handled").count(), 1);
        assert!(actions("out-of-order retries").contains(&"stale".to_string()));
        assert_eq!(actions("fatal at attempt 1")[0], "dead_letter");
        assert_eq!(
            actions("replay after success is a duplicate")
                .last()
                .map(String::as_str),
            Some("duplicate")
        );
        let many = actions("many events interleaved");
        assert!(many.len() >= 300);
        for kind in [
            "handled",
            "duplicate",
            "wait",
            "stale",
            "retry",
            "dead_letter",
        ] {
            assert!(many.iter().any(|a| a == kind), "many events: no {kind}");
        }
    }

    #[test]
    fn random_traces_exercise_every_decision_and_are_deterministic() {
        let challenge = NotificationsChallenge;
        let mut seen = HashSet::new();
        for seed in 0..300 {
            let input = challenge.random_input(&mut StdRng::seed_from_u64(seed));
            assert_eq!(
                input,
                challenge.random_input(&mut StdRng::seed_from_u64(seed))
            );
            let trace = trace_of(&input).expect("trace");
            assert!(trace.policy.retry_policy().validate().is_ok());
            let times: Vec<u64> = trace.deliveries.iter().map(|(t, _)| *t).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "seed {seed}");
            for decision in decide_all(&trace) {
                seen.insert(match decision {
                    Decision::DeadLetter {
                        reason: DeadLetterReason::Fatal,
                        ..
                    } => "dead_letter fatal",
                    Decision::DeadLetter { .. } => "dead_letter exhausted",
                    Decision::Retry { .. } => "retry",
                    Decision::Wait { .. } => "wait",
                    Decision::Stale => "stale",
                    Decision::Duplicate => "duplicate",
                    Decision::Handled => "handled",
                });
            }
        }
        assert_eq!(seen.len(), 7, "{seen:?}");
    }

    #[test]
    fn no_event_is_ever_handled_twice_in_a_random_trace() {
        let challenge = NotificationsChallenge;
        for seed in 0..300 {
            let trace =
                trace_of(&challenge.random_input(&mut StdRng::seed_from_u64(seed))).expect("trace");
            let mut handled = HashSet::new();
            for ((_, message), decision) in trace.deliveries.iter().zip(decide_all(&trace)) {
                if decision == Decision::Handled {
                    assert!(
                        handled.insert(message.event_id.clone()),
                        "seed {seed}: {} twice",
                        message.event_id
                    );
                }
            }
        }
    }

    #[test]
    fn comparison_names_the_first_wrong_decision() {
        let challenge = NotificationsChallenge;
        let input = json!({
            "policy": { "mainTopic": "orders", "maxAttempts": 2, "baseDelayMs": 250, "multiplier": 2, "maxDelayMs": 1000 },
            "deliveries": [
                [0, { "eventId": "a", "topic": "orders", "attempt": 1, "outcome": "retryable" }],
                [100, { "eventId": "a", "topic": "orders-retry-250ms", "attempt": 2, "dueAt": 250, "outcome": "ok" }]
            ]
        });
        let expected = challenge.expected(&input);
        let mut actual = expected.clone();
        actual[1] = json!({ "action": "handled" });
        let message = challenge
            .compare(&input, &expected, &actual)
            .expect_err("differs");
        assert_eq!(
            message,
            "delivery #2 (a attempt 2 from orders-retry-250ms due 250 at t=100, outcome ok): \
             expected {\"action\":\"wait\",\"untilMs\":250}, got {\"action\":\"handled\"}"
        );
        assert!(challenge.compare(&input, &expected, &expected).is_ok());
        let short = challenge
            .compare(&input, &expected, &json!([expected[0].clone()]))
            .expect_err("short");
        assert!(short.starts_with("delivery #2"), "{short}");
        assert!(challenge.compare(&input, &expected, &json!({})).is_err());
    }

    #[test]
    fn shrinking_drops_deliveries() {
        let input = NotificationsChallenge.random_input(&mut StdRng::seed_from_u64(7));
        let n = input["deliveries"].as_array().expect("deliveries").len();
        let candidates = NotificationsChallenge.shrink(&input);
        assert!(!candidates.is_empty());
        assert!(
            candidates
                .iter()
                .all(|c| c["deliveries"].as_array().expect("d").len() < n)
        );
        assert_eq!(
            candidates[0]["deliveries"].as_array().expect("d").len(),
            n - n / 2
        );
        assert_eq!(candidates[0]["policy"], input["policy"]);
    }

    #[test]
    fn malformed_input_gives_an_error_value_not_a_panic() {
        let expected = NotificationsChallenge.expected(&json!({ "policy": 3 }));
        assert!(
            expected["error"]
                .as_str()
                .expect("error")
                .starts_with("malformed trace")
        );
    }
}
