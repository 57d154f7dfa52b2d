//! Integration tests: a real labdeck server per test, against real PostgreSQL and Redis.

mod common;

mod accounts;
mod cli;
mod content_pages;
mod labs;
mod notifications;
mod notify_challenge;
mod operations;
mod progress;
mod rate_limiter;
mod sandbox;
mod search;
mod upload;
mod upload_challenge;
