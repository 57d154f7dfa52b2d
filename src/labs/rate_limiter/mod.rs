//! The rate-limiter lab.
//!
//! [`algorithms`] holds the reference implementations of the five algorithms over a virtual
//! clock — the ground truth for the live service and the graded challenge — and [`trace`]
//! replays one generated request trace through all five for the side-by-side timeline.

pub mod algorithms;
pub mod trace;
