//! The lab registry: every lab a lesson may name in its front matter.
//!
//! Each lab gets a `labs/<slug>/` folder and a module here once it is built; until then it is
//! listed as planned so lessons can already point at it (the page shows "coming soon" instead of
//! a link) and the content checker can reject ids that will never exist.

pub mod learner;
pub mod notifications;
pub mod rate_limiter;
pub mod upload;

use std::path::Path;
use std::sync::Arc;

use crate::grading::{Challenge, Lab};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabInfo {
    pub id: &'static str,
    pub title: &'static str,
    /// Whether the live service and challenge exist yet.
    pub available: bool,
}

pub const LABS: &[LabInfo] = &[
    LabInfo {
        id: "upload",
        title: "Streaming upload",
        available: true,
    },
    LabInfo {
        id: "rate-limiter",
        title: "Rate limiter",
        available: true,
    },
    LabInfo {
        id: "cache-keys",
        title: "Redis cache-key challenge",
        available: false,
    },
    LabInfo {
        id: "circuit-breaker",
        title: "Circuit breaker",
        available: false,
    },
    LabInfo {
        id: "notifications",
        title: "Kafka / WebSocket notifications",
        available: true,
    },
    LabInfo {
        id: "sso",
        title: "SSO flow",
        available: false,
    },
];

pub fn find(id: &str) -> Option<&'static LabInfo> {
    LABS.iter().find(|lab| lab.id == id)
}

/// The graded challenge of each lab that has one: adding a lab's challenge is this one line.
pub fn challenge_for(id: &str) -> Option<Arc<dyn Challenge>> {
    match id {
        "rate-limiter" => Some(Arc::new(rate_limiter::challenge::RateLimiterChallenge)),
        "notifications" => Some(Arc::new(notifications::challenge::NotificationsChallenge)),
        "upload" => Some(Arc::new(upload::challenge::UploadChallenge)),
        _ => None,
    }
}

/// Loads every lab under `dir` that has a registered challenge.
pub fn load_challenges(dir: &Path) -> anyhow::Result<Vec<Arc<Lab>>> {
    let mut labs = Vec::new();
    for info in LABS {
        if let Some(challenge) = challenge_for(info.id) {
            labs.push(Arc::new(Lab::load(&dir.join(info.id), challenge)?));
        }
    }
    Ok(labs)
}
