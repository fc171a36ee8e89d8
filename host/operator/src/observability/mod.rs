//! What the operator tells the people who run it: Prometheus metrics, liveness and readiness on
//! one HTTP port, structured logs, and secrets kept out of all of it (and out of events).

pub mod endpoints;
pub mod logging;
pub mod metrics;
pub mod upstream;

pub use metrics::{Metrics, ScalingOutcome, Seen};
