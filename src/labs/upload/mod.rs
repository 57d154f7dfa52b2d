//! The streaming-upload lab. [`csv_stream`] is its reference: the live service aggregates an
//! upload with it as the bytes arrive, and the graded challenge computes expected answers with it.

pub mod csv_stream;
