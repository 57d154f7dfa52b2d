//! labdeck: an interactive learning and interview-prep platform for backend engineers.
//!
//! Layout: `content` (markdown lessons → HTML, search), `accounts` (users, sessions, throttling),
//! `progress` (lesson progress, quizzes, dashboards), `labs` (lab registry), `web` (axum
//! handlers, templates and middleware), `app` (state and start-up), `infra` (service
//! connections), `config` (typed settings), `cli` (the `labdeck` command).

pub mod accounts;
pub mod app;
pub mod cli;
pub mod config;
pub mod content;
pub mod grading;
pub mod infra;
pub mod labs;
pub mod progress;
pub mod sandbox;
pub mod web;
