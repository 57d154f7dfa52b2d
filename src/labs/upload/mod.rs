//! The streaming-upload lab: CSV uploads of any size at constant memory.
//!
//! A learner uploads CSV files through a multipart form, a raw `text/csv` body, a presigned URL
//! or the tus resumable protocol. Every path streams the body chunk by chunk through one
//! [`storage::FileSink`], which writes the file to disk while the [`csv_stream::CsvAggregator`]
//! parses it in the same pass, so memory stays flat whatever the file size. Limits
//! ([`limits`]) stop a request at the first byte too many with a specific error code; a
//! concurrency cap ([`service`]) refuses uploads beyond N per learner and M per server with 503.
//! The page ([`page`]) shows live progress and the server's memory while it happens.
//!
//! - [`csv_stream`] — the lab's reference aggregator: the live service aggregates an upload with
//!   it as the bytes arrive, and the graded challenge ([`challenge`]) computes expected answers
//!   with it;
//! - [`api`] — the HTTP API and learner identification; [`body`] — answering a refused upload
//!   while its body is still arriving;
//! - [`tus`] — resumable uploads (tus 1.0);
//! - [`presign`] — signed upload and download URLs;
//! - [`storage`] — the per-learner folders on disk and the file sink;
//! - [`service`] — shared state: concurrency cap, live progress, the memory gauge.

pub mod api;
pub mod body;
pub mod challenge;
pub mod csv_stream;
pub mod limits;
pub mod page;
pub mod presign;
pub mod service;
pub mod storage;
pub mod tus;
