//! Side-by-side replay: one generated request trace through all five reference algorithms.
//!
//! A [`Pattern`] and a seed give a deterministic trace over three windows of virtual time (the
//! same seed always gives the same trace, so a learner can share what they saw); [`replay`] runs
//! it through fresh limiters of every kind with the learner's limit, window and burst, and
//! summarises each lane: allowed, denied, and the most it let through in any one window — where
//! the fixed window's boundary burst shows up as twice the limit.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::algorithms::{self, Algorithm, Decision, LimiterConfig};

/// The replay keeps limits small so every request stays visible on the timeline.
pub const MAX_REPLAY_LIMIT: u32 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A full window just before a boundary and another just after, then a steady trickle.
    BoundaryBurst,
    /// Evenly spaced at 1.5 times the allowed rate.
    Steady,
    /// Random bursts of half to one limit.
    Bursty,
    /// Random arrivals at 1.2 times the allowed rate.
    Random,
}

impl Pattern {
    pub const ALL: [Pattern; 4] = [
        Pattern::BoundaryBurst,
        Pattern::Steady,
        Pattern::Bursty,
        Pattern::Random,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Pattern::BoundaryBurst => "boundary",
            Pattern::Steady => "steady",
            Pattern::Bursty => "bursty",
            Pattern::Random => "random",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Pattern::BoundaryBurst => {
                "Boundary burst (limit just before and just after a window edge)"
            }
            Pattern::Steady => "Steady, 1.5× the allowed rate",
            Pattern::Bursty => "Random bursts",
            Pattern::Random => "Random arrivals, 1.2× the allowed rate",
        }
    }

    pub fn parse(id: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.id() == id)
    }
}

/// Request times (ms, non-decreasing) over `3 × window_ms`.
pub fn generate(pattern: Pattern, config: LimiterConfig, seed: u64) -> Vec<u64> {
    let w = config.window_ms.max(1);
    let limit = u64::from(config.limit.max(1));
    let duration = 3 * w;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut times: Vec<u64> = match pattern {
        Pattern::BoundaryBurst => {
            // Squeeze each burst into the 5 % of a window on either side of the first boundary.
            let edge = (w / 20).max(1);
            let before = (0..limit).map(|i| w - edge + i * edge / limit);
            let after = (0..limit).map(|i| w + i * edge / limit);
            let trickle = (0..limit).map(|i| 2 * w + i * w / limit);
            before.chain(after).chain(trickle).collect()
        }
        Pattern::Steady => {
            let count = 3 * limit * 3 / 2;
            (0..count).map(|i| i * duration / count).collect()
        }
        Pattern::Bursty => {
            let mut times = Vec::new();
            let mut at = rng.random_range(0..w / 2 + 1);
            while at < duration {
                let size = rng.random_range(limit.div_ceil(2)..=limit);
                let spread = (w / 50).max(1);
                times.extend((0..size).map(|i| at + i * spread / size));
                at += rng.random_range((w / 2).max(1)..=w);
            }
            times
        }
        Pattern::Random => {
            // Exponential gaps (a Poisson process) with mean window / (1.2 × limit).
            let mean = w as f64 / (1.2 * limit as f64);
            let mut times = Vec::new();
            let mut at = 0.0_f64;
            loop {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                at += -mean * u.ln();
                if at >= duration as f64 {
                    break times;
                }
                times.push(at as u64);
            }
        }
    };
    times.retain(|&t| t < duration);
    times.sort_unstable();
    times
}

/// One algorithm's row on the timeline.
pub struct Lane {
    pub algorithm: Algorithm,
    pub decisions: Vec<Decision>,
    pub allowed: usize,
    pub denied: usize,
    /// The most hits allowed in any span of one window.
    pub busiest_window: u64,
    /// What the algorithm promises never to exceed in one window.
    pub bound: u64,
}

pub struct Replay {
    pub pattern: Pattern,
    pub seed: u64,
    pub config: LimiterConfig,
    pub duration_ms: u64,
    pub times: Vec<u64>,
    pub lanes: Vec<Lane>,
}

impl Replay {
    /// Horizontal position of a time on the timeline, in percent.
    pub fn position(&self, at_ms: &u64) -> String {
        format!(
            "{:.2}",
            *at_ms as f64 * 100.0 / self.duration_ms.max(1) as f64
        )
    }

    /// The window boundaries inside the timeline.
    pub fn boundaries(&self) -> Vec<u64> {
        (1..3).map(|i| i * self.config.window_ms).collect()
    }
}

pub fn replay(pattern: Pattern, config: LimiterConfig, seed: u64) -> Replay {
    let config = LimiterConfig {
        limit: config.limit.clamp(1, MAX_REPLAY_LIMIT),
        burst: config.burst.clamp(1, MAX_REPLAY_LIMIT),
        window_ms: config.window_ms.max(1),
    };
    let times = generate(pattern, config, seed);
    let lanes = Algorithm::ALL
        .into_iter()
        .map(|algorithm| {
            let mut limiter = algorithms::build(algorithm, config);
            let decisions: Vec<Decision> = times
                .iter()
                .map(|&at| limiter.hit("client", at, 1))
                .collect();
            let allowed_at: Vec<u64> = times
                .iter()
                .zip(&decisions)
                .filter(|(_, d)| d.allowed)
                .map(|(&t, _)| t)
                .collect();
            let busiest_window = allowed_at
                .iter()
                .enumerate()
                .map(|(i, &end)| {
                    let start = allowed_at.partition_point(|&t| t + config.window_ms <= end);
                    (i + 1 - start) as u64
                })
                .max()
                .unwrap_or(0);
            let allowed = allowed_at.len();
            Lane {
                algorithm,
                allowed,
                denied: decisions.len() - allowed,
                decisions,
                busiest_window,
                bound: algorithm.max_in_any_window(config),
            }
        })
        .collect();
    Replay {
        pattern,
        seed,
        config,
        duration_ms: 3 * config.window_ms,
        times,
        lanes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_trace() {
        let config = LimiterConfig::new(10, 10_000);
        for pattern in Pattern::ALL {
            let a = generate(pattern, config, 7);
            assert_eq!(a, generate(pattern, config, 7), "{pattern:?}");
            assert!(!a.is_empty());
            assert!(a.windows(2).all(|w| w[0] <= w[1]));
            assert!(a.iter().all(|&t| t < 30_000));
        }
        assert_ne!(
            generate(Pattern::Random, config, 1),
            generate(Pattern::Random, config, 2)
        );
    }

    #[test]
    fn the_boundary_burst_doubles_the_fixed_window_and_nothing_else() {
        let result = replay(Pattern::BoundaryBurst, LimiterConfig::new(10, 10_000), 1);
        let busiest = |algorithm| {
            result
                .lanes
                .iter()
                .find(|l| l.algorithm == algorithm)
                .map(|l| l.busiest_window)
        };
        assert_eq!(busiest(Algorithm::FixedWindow), Some(20));
        assert_eq!(busiest(Algorithm::SlidingLog), Some(10));
        assert!(busiest(Algorithm::SlidingWindowCounter) <= Some(11));
        for lane in &result.lanes {
            assert!(lane.busiest_window <= lane.bound, "{:?}", lane.algorithm);
            assert_eq!(lane.allowed + lane.denied, result.times.len());
        }
    }

    #[test]
    fn replays_keep_limits_readable() {
        let result = replay(Pattern::Steady, LimiterConfig::new(10_000, 1000), 0);
        assert_eq!(result.config.limit, MAX_REPLAY_LIMIT);
        assert!(result.times.len() <= 3 * 60 * 3 / 2);
        assert_eq!(result.position(&1500), "50.00");
    }
}
