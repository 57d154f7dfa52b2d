pub mod challenge;
pub mod consumer;
pub mod retry;
