//! Limiter decisions per second, per algorithm: in memory (the pure reference implementations,
//! as the insurance limiter runs them) and through Redis (the Lua scripts, as the demo API runs
//! them), one at a time and with many in flight on the shared connection.
//!
//! Run with `cargo bench --bench limiter` (or `bench/rate_limiter.sh`, which also runs
//! redis-benchmark for comparison). Redis is `REDIS_URL` (default 127.0.0.1:6379); every key
//! written is under `labdeck-bench:<pid>:` and is deleted at the end.

use std::time::{Duration, Instant};

use labdeck::labs::rate_limiter::Settings;
use labdeck::labs::rate_limiter::algorithms::{self, Algorithm, LimiterConfig};
use labdeck::labs::rate_limiter::store::LimiterStore;

/// Keys the load is spread over (a realistic mix of allowed and denied decisions).
const KEYS: usize = 1_000;

/// Decisions per second and the share of them that were allowed.
fn in_memory(algorithm: Algorithm) -> (f64, f64) {
    let config = LimiterConfig::new(100, 60_000);
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("ip:10.0.{}.{}", i / 256, i % 256))
        .collect();
    let mut limiter = algorithms::build(algorithm, config);
    let hits = 2_000_000u64;
    let start = Instant::now();
    let mut allowed = 0u64;
    for i in 0..hits {
        // Two hits per virtual ms over 1000 keys: each key sees 2 per second against a limit of
        // 100 per minute, so most hits pass and a steady share is refused.
        let now = 1_700_000_000_000 + i / 2;
        let key = &keys[(i as usize * 7919) % KEYS];
        allowed += u64::from(limiter.hit(key, now, 1).allowed);
    }
    let rate = hits as f64 / start.elapsed().as_secs_f64();
    (rate, allowed as f64 / hits as f64)
}

struct RedisRun {
    rate: f64,
    p50: Duration,
    allowed_share: f64,
}

async fn through_redis(
    store: &'static LimiterStore,
    algorithm: Algorithm,
    in_flight: usize,
    duration: Duration,
    run: u64,
) -> anyhow::Result<RedisRun> {
    let settings = Settings {
        algorithm,
        limit: 100,
        window_secs: 60,
        burst: 100,
        // A fresh revision per run: every run starts from empty limiters.
        rev: run,
        ..Settings::default()
    };
    let deadline = Instant::now() + duration;
    let workers = (0..in_flight).map(|worker| {
        let settings = settings.clone();
        tokio::spawn(async move {
            let (mut done, mut allowed) = (0u64, 0u64);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let key = format!("ip:10.1.0.{}", (worker * 131 + done as usize) % KEYS);
                let started = Instant::now();
                let hit = store.hit("bench", &settings, &key, 1, None).await?;
                latencies.push(started.elapsed());
                done += 1;
                allowed += u64::from(hit.verdict.decision.allowed);
            }
            anyhow::Ok((done, allowed, latencies))
        })
    });
    let started = Instant::now();
    let (mut total, mut allowed) = (0u64, 0u64);
    let mut latencies = Vec::new();
    for worker in futures::future::join_all(workers).await {
        let (done, ok, mut l) = worker??;
        total += done;
        allowed += ok;
        latencies.append(&mut l);
    }
    latencies.sort();
    Ok(RedisRun {
        rate: total as f64 / started.elapsed().as_secs_f64(),
        p50: latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or_default(),
        allowed_share: allowed as f64 / total.max(1) as f64,
    })
}

async fn delete_keys(url: &str, pattern: &str) -> anyhow::Result<usize> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor = 0u64;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            deleted += keys.len();
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("LIMITER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!("in memory (one thread, {KEYS} keys, limit 100/60 s):");
    for algorithm in Algorithm::ALL {
        let (rate, allowed) = in_memory(algorithm);
        println!(
            "  {:<24} {rate:>12.0} decisions/s ({:.0} % allowed)",
            algorithm.id(),
            allowed * 100.0
        );
    }

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = labdeck::infra::connect_redis(&url).await?;
    let prefix = format!("labdeck-bench:{}:", std::process::id());
    let store: &'static LimiterStore = Box::leak(Box::new(LimiterStore::new(redis, &prefix)));
    println!(
        "through Redis ({}, one multiplexed connection, {seconds} s per run):",
        labdeck::infra::redact(&url)
    );
    let run_for = Duration::from_secs(seconds);
    // Warm up (connection, script cache, allocator) so the first algorithm is not penalised.
    for algorithm in Algorithm::ALL {
        through_redis(store, algorithm, 8, Duration::from_millis(300), 1_000).await?;
    }
    for (i, algorithm) in Algorithm::ALL.into_iter().enumerate() {
        let serial = through_redis(store, algorithm, 1, run_for, 2 * i as u64).await?;
        let parallel = through_redis(store, algorithm, 64, run_for, 2 * i as u64 + 1).await?;
        println!(
            "  {:<24} 1 in flight: {:>7.0}/s (p50 {:>4} µs, {:>2.0} % allowed)   64 in flight: {:>7.0}/s (p50 {:>4} µs, {:>2.0} % allowed)",
            algorithm.id(),
            serial.rate,
            serial.p50.as_micros(),
            serial.allowed_share * 100.0,
            parallel.rate,
            parallel.p50.as_micros(),
            parallel.allowed_share * 100.0,
        );
    }
    let deleted = delete_keys(&url, &format!("{prefix}*")).await?;
    println!("cleaned up {deleted} bench keys");
    Ok(())
}
