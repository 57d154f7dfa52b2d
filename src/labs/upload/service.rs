//! The upload lab's shared state: storage, limits, the concurrency cap and live progress.
//!
//! Every upload (multipart, raw, buffered, presigned, a tus PATCH) first takes an
//! [`UploadSlot`] from [`UploadLab::acquire`]. The slot counts against the learner's cap and the
//! server's cap — beyond either the upload is refused at once with 503 + Retry-After instead of
//! queueing and slowing everyone down — and carries the upload's [`Progress`] (bytes and rows so
//! far), which the page reads through [`UploadLab::snapshot`]. Dropping the slot (the upload
//! finished, failed or its client went away) frees the place and removes the progress entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use super::limits::UploadError;
use super::storage::Storage;
use super::tus::TusRegistry;
use crate::config::UploadArgs;

/// Live counters of one in-flight upload.
#[derive(Debug)]
pub struct Progress {
    pub id: u64,
    pub namespace: String,
    pub kind: &'static str,
    pub name: String,
    /// Total size when the client said (Content-Length, Upload-Length); `None` for multipart.
    pub expected: Option<u64>,
    bytes: AtomicU64,
    rows: AtomicU64,
    started: Instant,
}

impl Progress {
    pub fn advance(&self, bytes: u64, rows: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.rows.store(rows, Ordering::Relaxed);
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// What the page shows for one upload.
#[derive(Debug, Clone, Serialize)]
pub struct ProgressView {
    pub id: u64,
    pub kind: &'static str,
    pub name: String,
    pub bytes: u64,
    pub rows: u64,
    pub expected: Option<u64>,
    pub seconds: f64,
}

/// The live gauge: server memory, everything in flight, and this learner's uploads.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Resident set size of the labdeck process (`/proc/self/statm`), when readable.
    pub rss_bytes: Option<u64>,
    /// Bytes received so far by every upload in flight on this server.
    pub bytes_in_flight: u64,
    pub uploads_in_flight: u32,
    /// Bytes the buffering endpoint holds in memory right now.
    pub buffered_bytes: u64,
    pub uploads: Vec<ProgressView>,
}

#[derive(Default)]
struct InFlight {
    per_learner: HashMap<String, u32>,
    total: u32,
    uploads: HashMap<u64, Arc<Progress>>,
    next_id: u64,
}

pub struct UploadLab {
    pub storage: Storage,
    pub limits: UploadArgs,
    /// Signs presigned and download URLs (derived from `LABDECK_SECRET`).
    pub(crate) url_key: Vec<u8>,
    in_flight: Mutex<InFlight>,
    buffered: AtomicU64,
    /// Resumable uploads' running state between PATCHes.
    pub tus: TusRegistry,
}

/// A place in the concurrency cap, held for as long as one upload runs.
pub struct UploadSlot {
    lab: Arc<UploadLab>,
    pub progress: Arc<Progress>,
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut in_flight = self.lab.lock();
        in_flight.total = in_flight.total.saturating_sub(1);
        let ns = &self.progress.namespace;
        if let Some(count) = in_flight.per_learner.get_mut(ns) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.per_learner.remove(ns);
            }
        }
        in_flight.uploads.remove(&self.progress.id);
    }
}

/// Counts bytes held by the buffering endpoint while it holds them.
pub struct BufferedBytes<'a> {
    counter: &'a AtomicU64,
    bytes: u64,
}

impl BufferedBytes<'_> {
    pub fn add(&mut self, bytes: u64) {
        self.bytes += bytes;
        self.counter.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Drop for BufferedBytes<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl UploadLab {
    pub fn new(limits: UploadArgs, secret: &[u8]) -> UploadLab {
        use sha2::{Digest, Sha256};
        // A key of its own, so a signed URL can never double as a CSRF token or a lab key.
        let mut hasher = Sha256::new();
        hasher.update(b"labdeck upload urls\0");
        hasher.update(secret);
        UploadLab {
            storage: Storage::new(limits.dir.clone()),
            limits,
            url_key: hasher.finalize().to_vec(),
            in_flight: Mutex::default(),
            buffered: AtomicU64::new(0),
            tus: TusRegistry::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A place for one more upload by `ns`, or a 503 saying which cap is full.
    pub fn acquire(
        self: &Arc<Self>,
        ns: &str,
        kind: &'static str,
        name: &str,
        expected: Option<u64>,
    ) -> Result<UploadSlot, UploadError> {
        let mut in_flight = self.lock();
        let mine = in_flight.per_learner.get(ns).copied().unwrap_or(0);
        if mine >= self.limits.per_learner {
            return Err(UploadError::busy(format!(
                "You already have {mine} uploads in flight, the most one learner may run at once. Wait for one to finish and retry in a few seconds."
            ))
            .with("limit", self.limits.per_learner)
            .with("scope", "learner"));
        }
        if in_flight.total >= self.limits.global {
            return Err(UploadError::busy(format!(
                "The server is taking {} uploads at once, its limit. Retry in a few seconds.",
                in_flight.total
            ))
            .with("limit", self.limits.global)
            .with("scope", "server"));
        }
        in_flight.next_id += 1;
        let progress = Arc::new(Progress {
            id: in_flight.next_id,
            namespace: ns.to_string(),
            kind,
            name: name.to_string(),
            expected,
            bytes: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            started: Instant::now(),
        });
        in_flight.total += 1;
        *in_flight.per_learner.entry(ns.to_string()).or_default() += 1;
        in_flight.uploads.insert(progress.id, progress.clone());
        Ok(UploadSlot {
            lab: self.clone(),
            progress,
        })
    }

    pub fn buffered(&self) -> BufferedBytes<'_> {
        BufferedBytes {
            counter: &self.buffered,
            bytes: 0,
        }
    }

    /// The gauge and `ns`'s uploads in flight.
    pub fn snapshot(&self, ns: &str) -> Snapshot {
        let in_flight = self.lock();
        let mut uploads: Vec<ProgressView> = in_flight
            .uploads
            .values()
            .filter(|p| p.namespace == ns)
            .map(|p| ProgressView {
                id: p.id,
                kind: p.kind,
                name: p.name.clone(),
                bytes: p.bytes(),
                rows: p.rows.load(Ordering::Relaxed),
                expected: p.expected,
                seconds: p.started.elapsed().as_secs_f64(),
            })
            .collect();
        uploads.sort_by_key(|u| u.id);
        Snapshot {
            rss_bytes: rss_bytes(),
            bytes_in_flight: in_flight.uploads.values().map(|p| p.bytes()).sum(),
            uploads_in_flight: in_flight.total,
            buffered_bytes: self.buffered.load(Ordering::Relaxed),
            uploads,
        }
    }
}

/// Resident memory of this process: the second field of `/proc/self/statm`, in pages. Linux
/// pages are 4 KiB on the platforms labdeck runs on (x86_64, aarch64 with 4 KiB pages).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(per_learner: u32, global: u32) -> Arc<UploadLab> {
        Arc::new(UploadLab::new(
            UploadArgs {
                per_learner,
                global,
                ..UploadArgs::default()
            },
            b"secret",
        ))
    }

    #[test]
    fn the_cap_counts_per_learner_and_overall_and_frees_on_drop() {
        let lab = lab(2, 3);
        let a1 = lab.acquire("a", "raw", "x", None).expect("first");
        let _a2 = lab.acquire("a", "raw", "x", None).expect("second");
        let err = lab
            .acquire("a", "raw", "x", None)
            .err()
            .expect("third refused");
        assert_eq!(err.details["scope"], "learner");
        let _b1 = lab.acquire("b", "raw", "x", None).expect("b");
        let err = lab
            .acquire("c", "raw", "x", None)
            .err()
            .expect("server full");
        assert_eq!(err.details["scope"], "server");
        a1.progress.advance(10, 1);
        assert_eq!(lab.snapshot("a").bytes_in_flight, 10);
        assert_eq!(lab.snapshot("a").uploads.len(), 2);
        drop(a1);
        assert!(lab.acquire("c", "raw", "x", None).is_ok());
        assert_eq!(lab.snapshot("a").uploads.len(), 1);
    }

    #[test]
    fn rss_is_readable_on_linux() {
        assert!(rss_bytes().is_some_and(|rss| rss > 0));
    }
}
