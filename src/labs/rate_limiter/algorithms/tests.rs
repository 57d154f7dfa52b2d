//! Worked examples per algorithm, the boundary burst, and properties every algorithm must keep on
//! random traces: never more than its documented maximum in any window, exact `retry_after_ms`
//! and `reset_ms`, and `allowed` exactly when `remaining >= cost`.

use proptest::prelude::*;

use super::*;

fn d(allowed: bool, remaining: u32, retry_after_ms: u64, reset_ms: u64) -> Decision {
    Decision {
        allowed,
        remaining,
        retry_after_ms,
        reset_ms,
    }
}

// --- Sliding log: the contract, case by case --------------------------------------------------

#[test]
fn sliding_log_allows_up_to_the_limit_then_waits_for_the_oldest_entry() {
    let mut log = SlidingLog::new(3, 1000);
    assert_eq!(log.hit("a", 0, 1), d(true, 2, 0, 1000));
    assert_eq!(log.hit("a", 100, 1), d(true, 1, 0, 900));
    assert_eq!(log.hit("a", 200, 1), d(true, 0, 0, 800));
    // Full: the entry at 0 must expire, which happens at 0 + 1000.
    assert_eq!(log.hit("a", 300, 1), d(false, 0, 700, 700));
    // A denial records nothing, so it does not push the retry time back.
    assert_eq!(log.hit("a", 999, 1), d(false, 0, 1, 1));
    // At 1000 the entry at 0 satisfies t <= now - window and is dropped.
    assert_eq!(log.hit("a", 1000, 1), d(true, 0, 0, 100));
}

#[test]
fn sliding_log_drops_entries_exactly_at_the_window_edge() {
    let mut log = SlidingLog::new(1, 1000);
    assert!(log.hit("a", 1, 1).allowed);
    assert_eq!(
        log.hit("a", 1000, 1),
        d(false, 0, 1, 1),
        "t=1 > 1000-1000 stays"
    );
    assert_eq!(
        log.hit("a", 1001, 1),
        d(true, 0, 0, 1000),
        "t=1 <= 1001-1000 goes"
    );
}

#[test]
fn sliding_log_weighted_costs_wait_for_enough_slots() {
    let mut log = SlidingLog::new(5, 1000);
    assert_eq!(log.hit("a", 0, 3), d(true, 2, 0, 1000));
    // count 3 + cost 3 > 5: k = 3 + 3 - 5 = 1, the 1st oldest (t=0) must go.
    assert_eq!(log.hit("a", 10, 3), d(false, 2, 990, 990));
    assert_eq!(log.hit("a", 20, 2), d(true, 0, 0, 980));
    // Log [0, 0, 0, 20, 20]; cost 4: k = 5 + 4 - 5 = 4, the 4th oldest is 20.
    assert_eq!(log.hit("a", 30, 4), d(false, 0, 990, 970));
    // At 1000 the three zeros are gone: 2 entries left, cost 3 fits.
    assert_eq!(log.hit("a", 1000, 3), d(true, 0, 0, 20));
}

#[test]
fn sliding_log_costs_above_the_limit_never_fit_and_zero_cost_is_a_peek() {
    let mut log = SlidingLog::new(2, 1000);
    assert_eq!(log.hit("a", 5, 3), d(false, 2, NEVER, 0));
    assert_eq!(log.hit("a", 5, 0), d(true, 2, 0, 0), "empty log: reset 0");
    assert_eq!(log.tracked_keys(), 0, "nothing recorded");
    assert!(log.hit("a", 5, 1).allowed);
    assert_eq!(log.hit("a", 7, 0), d(true, 1, 0, 998));
}

#[test]
fn sliding_log_keeps_keys_apart_and_forgets_idle_ones() {
    let mut log = SlidingLog::new(1, 1000);
    assert!(log.hit("a", 0, 1).allowed);
    assert!(log.hit("b", 0, 1).allowed);
    assert!(!log.hit("a", 1, 1).allowed);
    log.forget_idle(999);
    assert_eq!(log.tracked_keys(), 2);
    log.forget_idle(1000);
    assert_eq!(log.tracked_keys(), 0);
}

// --- The other four -----------------------------------------------------------------------------

#[test]
fn fixed_window_resets_at_each_aligned_boundary() {
    let mut fw = FixedWindow::new(2, 1000);
    assert_eq!(fw.hit("a", 250, 1), d(true, 1, 0, 750));
    assert_eq!(fw.hit("a", 500, 1), d(true, 0, 0, 500));
    assert_eq!(fw.hit("a", 999, 1), d(false, 0, 1, 1));
    assert_eq!(fw.hit("a", 1000, 2), d(true, 0, 0, 1000));
    assert_eq!(fw.hit("a", 1500, 3), d(false, 0, NEVER, 500));
}

#[test]
fn sliding_window_counter_weights_the_previous_window() {
    // The lesson's example: 100 per minute, 80 last minute, 30 so far, 15 s in: 80·0.75+30 = 90.
    let mut swc = SlidingWindowCounter::new(100, 60_000);
    assert!(swc.hit("a", 59_000, 80).allowed);
    assert_eq!(swc.hit("a", 60_000, 0).remaining, 20, "80 at full weight");
    assert!(swc.hit("a", 75_000, 30).allowed);
    let peek = swc.hit("a", 75_000, 0);
    assert_eq!(peek.remaining, 10);
    assert!(swc.hit("a", 75_000, 10).allowed);
    let denied = swc.hit("a", 75_000, 1);
    assert!(!denied.allowed);
    // 80·(60000 − e)/60000 + 40 + 1 <= 100 once e >= 15750: 750 ms later.
    assert_eq!(denied.retry_after_ms, 750);
    assert!(!swc.clone().hit("a", 75_749, 1).allowed);
    assert!(swc.hit("a", 75_750, 1).allowed);
}

#[test]
fn sliding_window_counter_forgets_everything_after_two_windows() {
    let mut swc = SlidingWindowCounter::new(3, 1000);
    assert!(swc.hit("a", 100, 3).allowed);
    assert_eq!(swc.hit("a", 1100, 0).remaining, 0, "weight 0.9 of 3 is 2.7");
    assert_eq!(swc.hit("a", 2000, 0), d(true, 3, 0, 0));
}

#[test]
fn token_bucket_refills_continuously_and_says_when_enough_has_dripped_in() {
    // 10 per second, burst 5: a token every 100 ms.
    let mut tb = TokenBucket::new(LimiterConfig::new(10, 1000).with_burst(5));
    assert_eq!(tb.hit("a", 0, 5), d(true, 0, 0, 100));
    assert_eq!(tb.hit("a", 30, 2), d(false, 0, 170, 70));
    assert_eq!(tb.hit("a", 200, 2), d(true, 0, 0, 100));
    assert_eq!(
        tb.hit("a", 250, 6),
        d(false, 0, NEVER, 50),
        "more than the bucket holds"
    );
    assert_eq!(tb.hit("a", 10_000, 0), d(true, 5, 0, 0), "full again");
    assert_eq!(
        tb.tracked_keys(),
        0,
        "a full bucket is the same as no bucket"
    );
}

#[test]
fn gcra_spaces_requests_by_the_emission_interval_after_the_burst() {
    // 100 per minute: T = 600 ms; burst 3.
    let mut gcra = Gcra::new(LimiterConfig::new(100, 60_000).with_burst(3));
    for expected in [2, 1, 0] {
        let decision = gcra.hit("a", 1_000, 1);
        assert!(decision.allowed);
        assert_eq!(decision.remaining, expected);
    }
    assert_eq!(gcra.hit("a", 1_000, 1), d(false, 0, 600, 600));
    assert_eq!(gcra.hit("a", 1_600, 1), d(true, 0, 0, 600));
    assert_eq!(gcra.hit("a", 1_601, 4), d(false, 0, NEVER, 599));
}

#[test]
fn penalized_blocks_the_key_for_the_block_duration_after_a_denial() {
    let mut limiter = Penalized::new(FixedWindow::new(1, 1000), 5000);
    assert!(limiter.check("a", 0, 1).decision.allowed);
    let denied = limiter.check("a", 10, 1);
    assert_eq!(denied.decision, d(false, 0, 5000, 5000));
    assert!(denied.blocked);
    // The window has reset, but the block holds until 5010.
    let blocked = limiter.check("a", 2000, 1);
    assert_eq!(blocked.decision, d(false, 0, 3010, 3010));
    assert!(blocked.blocked);
    assert!(
        limiter.check("b", 2000, 1).decision.allowed,
        "other keys go on"
    );
    assert!(limiter.check("a", 5010, 1).decision.allowed);
}

// --- The boundary burst -------------------------------------------------------------------------

/// A full window's worth just before a boundary and another just after it.
fn boundary_burst(limiter: &mut dyn RateLimiter, limit: u32, window_ms: u64) -> u32 {
    let spread = |i: u32| u64::from(i * 10 / limit);
    let before = (0..limit).map(|i| window_ms - 10 + spread(i));
    let after = (0..limit).map(|i| window_ms + spread(i));
    before
        .chain(after)
        .map(|at| u32::from(limiter.hit("client", at, 1).allowed))
        .sum()
}

#[test]
fn a_fixed_window_lets_twice_the_limit_through_around_a_boundary_and_the_others_do_not() {
    let config = LimiterConfig::new(10, 1000);
    let mut fixed = build(Algorithm::FixedWindow, config);
    assert_eq!(boundary_burst(fixed.as_mut(), 10, 1000), 20, "2× in 20 ms");
    for algorithm in [
        Algorithm::SlidingLog,
        Algorithm::SlidingWindowCounter,
        Algorithm::TokenBucket,
        Algorithm::Gcra,
    ] {
        let mut limiter = build(algorithm, config);
        let allowed = boundary_burst(limiter.as_mut(), 10, 1000);
        assert!(allowed <= 10, "{algorithm:?} let {allowed} through");
    }
}

// --- Properties on random traces -------------------------------------------------------------

#[derive(Debug, Clone)]
struct Hit {
    at: u64,
    key: usize,
    cost: u32,
}

fn trace_strategy() -> impl Strategy<Value = (LimiterConfig, Vec<Hit>)> {
    (1u32..=8, 1u64..=2000, 1u32..=8, 0u64..=10_000_000_000).prop_flat_map(
        |(limit, window_ms, burst, start)| {
            let config = LimiterConfig::new(limit, window_ms).with_burst(burst);
            let gap = 0..=window_ms * 3 / 4;
            (
                Just(config),
                prop::collection::vec((gap, 0usize..3, 0u32..=3), 1..120).prop_map(move |raw| {
                    let mut at = start;
                    raw.into_iter()
                        .map(|(gap, key, cost)| {
                            at += gap;
                            Hit { at, key, cost }
                        })
                        .collect()
                }),
            )
        },
    )
}

const KEYS: [&str; 3] = ["alice", "bob", "carol"];

/// The properties every algorithm keeps, checked hit by hit on one trace.
fn check_properties<L: RateLimiter + Clone>(
    mut limiter: L,
    algorithm: Algorithm,
    config: LimiterConfig,
    trace: &[Hit],
) -> Result<Vec<Decision>, TestCaseError> {
    let capacity = if algorithm.uses_burst() {
        config.burst
    } else {
        config.limit
    };
    let mut decisions = Vec::new();
    for hit in trace {
        let key = KEYS[hit.key];
        let before = limiter.clone().hit(key, hit.at, 0);
        let decision = limiter.hit(key, hit.at, hit.cost);
        prop_assert_eq!(decision.allowed, before.remaining >= hit.cost, "{:?}", hit);
        if decision.allowed {
            prop_assert_eq!(decision.remaining, before.remaining - hit.cost);
            prop_assert_eq!(decision.retry_after_ms, 0);
        } else {
            prop_assert_eq!(decision.remaining, before.remaining);
        }
        // Retry-after is exact: the same hit passes then and not a millisecond earlier.
        let retry = decision.retry_after_ms;
        if !decision.allowed && retry != NEVER {
            prop_assert!(retry >= 1);
            prop_assert!(limiter.clone().hit(key, hit.at + retry, hit.cost).allowed);
            prop_assert!(
                !limiter
                    .clone()
                    .hit(key, hit.at + retry - 1, hit.cost)
                    .allowed
            );
        }
        if retry == NEVER {
            prop_assert!(hit.cost > capacity);
        }
        // Reset is exact: remaining grows then and not before; 0 only at full quota.
        if decision.reset_ms == 0 {
            prop_assert_eq!(decision.remaining, capacity);
        } else {
            let at_reset = limiter.clone().hit(key, hit.at + decision.reset_ms, 0);
            let just_before = limiter.clone().hit(key, hit.at + decision.reset_ms - 1, 0);
            prop_assert!(at_reset.remaining > decision.remaining, "{:?}", hit);
            prop_assert_eq!(just_before.remaining, decision.remaining, "{:?}", hit);
        }
        decisions.push(decision);
    }
    // Never more than the documented maximum in any span of window_ms milliseconds, per key.
    let max = algorithm.max_in_any_window(config);
    for key in 0..KEYS.len() {
        let allowed: Vec<(u64, u64)> = trace
            .iter()
            .zip(&decisions)
            .filter(|(hit, decision)| hit.key == key && decision.allowed)
            .map(|(hit, _)| (hit.at, u64::from(hit.cost)))
            .collect();
        for &(end, _) in &allowed {
            let in_span: u64 = allowed
                .iter()
                .filter(|(at, _)| *at <= end && *at + config.window_ms > end)
                .map(|(_, cost)| cost)
                .sum();
            prop_assert!(
                in_span <= max,
                "{algorithm:?} allowed {in_span} > {max} in the window ending at {end}"
            );
        }
    }
    Ok(decisions)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_algorithm_keeps_its_documented_bounds_and_exact_timings((config, trace) in trace_strategy()) {
        check_properties(FixedWindow::new(config.limit, config.window_ms), Algorithm::FixedWindow, config, &trace)?;
        check_properties(SlidingLog::new(config.limit, config.window_ms), Algorithm::SlidingLog, config, &trace)?;
        check_properties(SlidingWindowCounter::new(config.limit, config.window_ms), Algorithm::SlidingWindowCounter, config, &trace)?;
        let bucket = check_properties(TokenBucket::new(config), Algorithm::TokenBucket, config, &trace)?;
        let gcra = check_properties(Gcra::new(config), Algorithm::Gcra, config, &trace)?;
        // GCRA is a token bucket stored as one timestamp.
        prop_assert_eq!(bucket, gcra);
    }

    #[test]
    fn a_fixed_window_never_exceeds_the_limit_inside_one_aligned_window((config, trace) in trace_strategy()) {
        let mut limiter = FixedWindow::new(config.limit, config.window_ms);
        let mut used: HashMap<(usize, u64), u64> = HashMap::new();
        for hit in &trace {
            if limiter.hit(KEYS[hit.key], hit.at, hit.cost).allowed {
                *used.entry((hit.key, hit.at / config.window_ms)).or_default() += u64::from(hit.cost);
            }
        }
        prop_assert!(used.values().all(|&n| n <= u64::from(config.limit)));
    }

    #[test]
    fn forgetting_idle_keys_never_changes_a_decision((config, trace) in trace_strategy()) {
        for algorithm in Algorithm::ALL {
            let mut plain = build(algorithm, config);
            let mut swept = build(algorithm, config);
            for hit in &trace {
                swept.forget_idle(hit.at);
                prop_assert_eq!(
                    plain.hit(KEYS[hit.key], hit.at, hit.cost),
                    swept.hit(KEYS[hit.key], hit.at, hit.cost),
                    "{:?}", algorithm
                );
            }
        }
    }
}

#[test]
fn algorithm_ids_round_trip() {
    for algorithm in Algorithm::ALL {
        assert_eq!(Algorithm::parse(algorithm.id()), Some(algorithm));
    }
    assert_eq!(Algorithm::parse("leaky"), None);
}
