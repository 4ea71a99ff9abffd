//! What an operator watches: Prometheus metrics (`measure.rs`), the log lines (`logs.rs`), and
//! the chats and messages of each namespace (`tally.rs`, which `/admin/namespaces` lists).
//!
//! Metrics are recorded into one process-wide recorder through the `metrics` crate's macros
//! (each a few atomic operations, so the send path and the log writer call them freely) and
//! rendered as Prometheus text by `GET /metrics` (`http/admin.rs`). What is cheaper to look at
//! than to count as it changes (live chat actors, bytes on disk) is measured when scraped.

pub mod logs;
pub mod measure;
pub mod tally;

pub use measure::{render, OpenStream};
