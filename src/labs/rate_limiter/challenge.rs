//! The rate-limiter lab's graded challenge: a sliding-log limiter against a virtual clock.
//! Expected answers come from [`SlidingLog`], the same reference the live service replays.
//!
//! Input `{ "limit": n, "windowMs": w, "hits": [[key, now], ...] }` (times never go back);
//! output one decision per hit, `{ "allowed", "remaining", "retryAfterMs" }`. Semantics, per
//! key: a hit at `now` first forgets allowed hits at or before `now - windowMs`; it is allowed
//! if fewer than `limit` remain (and is then remembered), with `remaining` the slots left after
//! it; a denied hit has `remaining` 0 and `retryAfterMs` = when the oldest remembered hit
//! expires. Denied hits are not remembered.

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::algorithms::SlidingLog;
use crate::grading::Challenge;

pub struct RateLimiterChallenge;

fn hits_of(input: &Value) -> Vec<(String, u64)> {
    input["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap_or("").to_string(),
                        h[1].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Challenge for RateLimiterChallenge {
    fn expected(&self, input: &Value) -> Value {
        let limit = u32::try_from(input["limit"].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
        let window = input["windowMs"].as_u64().unwrap_or(0);
        let mut limiter = SlidingLog::new(limit, window);
        let decisions: Vec<Value> = hits_of(input)
            .iter()
            .map(|(key, now)| {
                let d = limiter.hit(key, *now, 1);
                json!({ "allowed": d.allowed, "remaining": d.remaining, "retryAfterMs": d.retry_after_ms })
            })
            .collect();
        Value::Array(decisions)
    }

    fn random_input(&self, rng: &mut StdRng) -> Value {
        let limit = rng.random_range(1..=6u64);
        let window = *[100u64, 250, 1000, 1500, 60_000]
            .get(rng.random_range(0..5))
            .unwrap_or(&1000);
        let keys: Vec<String> = (0..rng.random_range(1..=4))
            .map(|i| format!("user-{}", i + 1))
            .collect();
        let mut now = rng.random_range(0..10_000u64);
        let hits: Vec<Value> = (0..rng.random_range(5..=60))
            .map(|_| {
                // Mostly small steps and same-instant bursts, sometimes a jump past the window,
                // sometimes landing exactly on an expiry boundary.
                now += match rng.random_range(0..10) {
                    0..=2 => 0,
                    3..=7 => rng.random_range(1..=window / 4 + 1),
                    8 => window,
                    _ => rng.random_range(window..=window * 3),
                };
                let key = &keys[rng.random_range(0..keys.len())];
                json!([key, now])
            })
            .collect();
        json!({ "limit": limit, "windowMs": window, "hits": hits })
    }

    fn shrink(&self, input: &Value) -> Vec<Value> {
        crate::grading::without_chunks(input, "hits")
    }

    fn compare(&self, input: &Value, expected: &Value, actual: &Value) -> Result<(), String> {
        let hits = hits_of(input);
        let (Some(expected), Some(actual)) = (expected.as_array(), actual.as_array()) else {
            return Err("expected one decision per hit".to_string());
        };
        for (i, want) in expected.iter().enumerate() {
            let got = actual.get(i).unwrap_or(&Value::Null);
            if want != got {
                let (key, now) = hits.get(i).cloned().unwrap_or_default();
                return Err(format!(
                    "hit #{} (key \"{key}\" at t={now}): expected {want}, got {got}",
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
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_task_example_gets_the_documented_answers() {
        let input = json!({
            "limit": 2, "windowMs": 1000,
            "hits": [["ada", 0], ["ada", 10], ["ada", 500], ["bob", 500], ["ada", 1000]]
        });
        assert_eq!(
            RateLimiterChallenge.expected(&input),
            json!([
                { "allowed": true, "remaining": 1, "retryAfterMs": 0 },
                { "allowed": true, "remaining": 0, "retryAfterMs": 0 },
                { "allowed": false, "remaining": 0, "retryAfterMs": 500 },
                { "allowed": true, "remaining": 1, "retryAfterMs": 0 },
                { "allowed": true, "remaining": 0, "retryAfterMs": 0 },
            ])
        );
    }

    #[test]
    fn no_window_ever_holds_more_than_limit_allowed_hits() {
        let challenge = RateLimiterChallenge;
        for seed in 0..200 {
            let input = challenge.random_input(&mut StdRng::seed_from_u64(seed));
            let limit = input["limit"].as_u64().expect("limit") as usize;
            let window = input["windowMs"].as_u64().expect("window");
            let decisions = challenge.expected(&input);
            let hits = hits_of(&input);
            let allowed: Vec<&(String, u64)> = hits
                .iter()
                .zip(decisions.as_array().expect("array"))
                .filter(|(_, d)| d["allowed"] == json!(true))
                .map(|(h, _)| h)
                .collect();
            for (key, now) in &allowed {
                let in_window = allowed
                    .iter()
                    .filter(|(k, t)| k == key && *t <= *now && t + window > *now)
                    .count();
                assert!(in_window <= limit, "seed {seed}");
            }
        }
    }

    #[test]
    fn comparison_names_the_first_wrong_hit() {
        let challenge = RateLimiterChallenge;
        let input = json!({ "limit": 1, "windowMs": 100, "hits": [["k", 0], ["k", 5]] });
        let expected = challenge.expected(&input);
        let mut actual = expected.clone();
        actual[1]["allowed"] = json!(true);
        let message = challenge
            .compare(&input, &expected, &actual)
            .expect_err("differs");
        assert!(
            message.starts_with("hit #2 (key \"k\" at t=5): expected"),
            "{message}"
        );
        assert!(challenge.compare(&input, &expected, &expected).is_ok());
    }

    #[test]
    fn shrinking_offers_smaller_traces() {
        let input = json!({ "limit": 1, "windowMs": 100, "hits": [["a", 0], ["a", 1], ["a", 2], ["a", 3]] });
        let candidates = RateLimiterChallenge.shrink(&input);
        assert!(!candidates.is_empty());
        assert!(
            candidates
                .iter()
                .all(|c| c["hits"].as_array().expect("hits").len() < 4)
        );
        assert_eq!(candidates[0]["hits"].as_array().expect("hits").len(), 2);
    }
}
