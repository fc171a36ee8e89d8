//! A typed async client for the Apache Flink REST API, as the operator drives it.
//!
//! - Every call has a timeout; idempotent calls (GETs, PUTs, DELETEs, and triggers that carry
//!   a caller-chosen trigger id) are retried with exponential backoff on transient failures.
//! - Errors say which of four things happened: the cluster is unreachable, the thing asked
//!   for does not exist, Flink refused (with Flink's own message, not its stack trace), or the
//!   answer was not what the API documents.
//! - Flink computes metrics lazily and often answers `[]` first: [`FlinkClient::poll`] and the
//!   `*_when_present` helpers wait for values instead of inventing them.
//! - Flink 1.x and 2.x answers are both read (fields one of them lacks are optional).
//!
//! ```no_run
//! # async fn demo() -> Result<(), flink_rest::FlinkError> {
//! use flink_rest::{ClientConfig, FlinkClient};
//! let flink = FlinkClient::new("http://127.0.0.1:8081", ClientConfig::default())?;
//! println!("Flink {}", flink.config().await?.flink_version);
//! # Ok(()) }
//! ```

mod client;
mod error;
mod ids;
mod jars;
mod jobs;
mod metrics;
pub mod model;
mod snapshots;

pub use client::{ClientConfig, FlinkClient, Resolver, root_cause};
pub use error::FlinkError;
pub use ids::{JarId, JobId, TriggerId};
pub use jars::empty_jar;
pub use model::*;
