//! The upload lab's central promise, measured: a 100 MB CSV upload is stored and parsed while
//! the server's memory stays flat.
//!
//! This is its own test binary, so nothing else runs in the process while the resident set is
//! sampled: the server runs in-process (as in every integration test), a thread reads
//! `/proc/self/statm` every few milliseconds during the upload, and the test asserts on the
//! measured peak over the baseline — not on how long anything took.

#[allow(dead_code)]
#[path = "integration/common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::TestApp;

const TOTAL: usize = 100 * 1000 * 1000;
/// Peak resident growth allowed over the baseline. A buffering server would need at least the
/// file itself (95 MiB); the streaming one needs its chunk and write buffers.
const BOUND: u64 = 64 * 1024 * 1024;

fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// Fixed-width rows, so the body's exact length is known before it is generated.
fn row(i: usize) -> String {
    format!(
        "{i:010},learner-{:08},{:07}.{:02}\n",
        i % 99_999_999,
        i % 1_000_000,
        i % 100
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_is_stored_at_bounded_memory() {
    let app = TestApp::spawn().await;
    let key = app.state().lab_keys.issue("v00000000000000aa");
    let header = "id,name,amount\n";
    let line = row(0).len();
    let rows = (TOTAL - header.len()) / line;
    let length = header.len() + rows * line;

    // Warm up every code path once so lazily allocated pools are in the baseline.
    let warm = app
        .client
        .put(app.url("/labs/upload/api/files?name=warm.csv"))
        .header("X-Lab-Key", &key)
        .header("Content-Type", "text/csv")
        .body(format!("{header}{}", row(1)))
        .send()
        .await
        .expect("warm-up");
    assert_eq!(warm.status(), 201);

    let baseline = rss();
    let peak = Arc::new(AtomicU64::new(baseline));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // The client streams the body as it generates it: 64 KiB at a time, never the whole file.
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let head = format!(
        "PUT /labs/upload/api/files?name=big.csv HTTP/1.1\r\nHost: localhost\r\nX-Lab-Key: {key}\r\nContent-Type: text/csv\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut hasher = Sha256::new();
    let mut buffer = String::with_capacity(70 * 1024);
    buffer.push_str(header);
    for i in 0..rows {
        buffer.push_str(&row(i));
        if buffer.len() >= 64 * 1024 {
            hasher.update(buffer.as_bytes());
            stream.write_all(buffer.as_bytes()).await.expect("body");
            buffer.clear();
        }
    }
    hasher.update(buffer.as_bytes());
    stream.write_all(buffer.as_bytes()).await.expect("body");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(300), stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .expect("read");
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");

    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).expect("body");
    let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
    let file = &json["files"][0];
    assert_eq!(file["size"], length);
    assert_eq!(file["summary"]["rows"], rows);
    let sha: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(file["sha256"], sha);

    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    println!(
        "100 MB upload: baseline {} MiB, peak {} MiB, growth {} MiB",
        baseline >> 20,
        peak.load(Ordering::Relaxed) >> 20,
        growth >> 20
    );
    assert!(
        growth < BOUND,
        "resident memory grew by {} MiB during a {} MB upload (bound {} MiB)",
        growth >> 20,
        length / 1_000_000,
        BOUND >> 20
    );
}
