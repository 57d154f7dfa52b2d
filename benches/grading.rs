//! Grading speed (run with `cargo bench --bench grading`):
//! - the cost of one sandboxed JavaScript test case (fresh instance, QuickJS init, prelude,
//!   harness, solution, call) for a trivial solution;
//! - latency p50/p99 of grading one rate-limiter submission with 50 test cases;
//! - submissions graded per second with one grader thread per core.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use labdeck::grading::{self, Language, Mode, random_cases};
use labdeck::sandbox::quickjs::JsProgram;
use labdeck::sandbox::{Limits, Sandbox};

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sandbox = Arc::new(Sandbox::from_project(&root).expect("sandbox (run npm ci first)"));

    let program = JsProgram {
        harness: "function __labdeck_case(x) { return __labdeck.stringify(solve(x)); }",
        source: "function solve(x) { return x + 1; }",
        call: "__labdeck_case(41)",
    };
    let limits = Limits::default();
    sandbox.run_js(&program, &limits, 1);
    let mut cases: Vec<Duration> = (0..300)
        .map(|_| sandbox.run_js(&program, &limits, 1).elapsed)
        .collect();
    cases.sort();
    println!(
        "one sandboxed test case (instantiate + QuickJS init + eval + call): p50 {:.0} µs, p99 {:.0} µs",
        percentile(&cases, 0.5).as_secs_f64() * 1e6,
        percentile(&cases, 0.99).as_secs_f64() * 1e6
    );

    let challenge = labdeck::labs::challenge_for("rate-limiter").expect("registered");
    let mut lab =
        labdeck::grading::Lab::load(&root.join("labs/rate-limiter"), challenge).expect("lab");
    // Top the random traces up so the submission has exactly 50 tests.
    let fixed = lab.public.len() + lab.hidden.len();
    lab.random = random_cases(lab.challenge.as_ref(), lab.seed, 50 - fixed);
    let lab = Arc::new(lab);
    let source = lab.reference.clone();
    let mut latencies: Vec<Duration> = (0..40)
        .map(|_| {
            let report = grading::grade(
                &sandbox,
                &lab,
                Language::Javascript,
                &source,
                Mode::Submit,
                |_| {},
            );
            assert_eq!(report.total, 50);
            assert!(report.accepted());
            report.duration
        })
        .collect();
    latencies.sort();
    println!(
        "grading a 50-test submission: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let per_thread = 20;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (sandbox, lab, source) = (Arc::clone(&sandbox), Arc::clone(&lab), source.clone());
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(move || {
                    for _ in 0..per_thread {
                        grading::grade(
                            &sandbox,
                            &lab,
                            Language::Javascript,
                            &source,
                            Mode::Submit,
                            |_| {},
                        );
                    }
                })
                .expect("thread")
        })
        .collect();
    for handle in handles {
        handle.join().expect("join");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "throughput: {:.1} submissions/s ({} threads, 50 tests each)",
        (threads * per_thread) as f64 / elapsed,
        threads
    );
}
