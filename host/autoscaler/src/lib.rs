//! The FLIP-271 autoscaler as pure functions: no clock, no I/O, no Kubernetes. Metric samples
//! and settings go in; a decision per vertex comes out with the numbers behind it.
//!
//! This first slice is the per-vertex core, matching upstream's formulas and rounding
//! (`../shared/reference/autoscaler-algorithm.md`): the stored-metric rounding
//! ([`round::round3`]), the capacity and the scale-up/scale-down thresholds
//! ([`vertex::thresholds`]), the target parallelism with its factor limits and bounds
//! ([`vertex::target_parallelism`]) and the alignment to key groups or source partitions
//! ([`align`]). Windowed metric evaluation, the job graph, scale-down delay, history and the
//! job-level summary come next.

pub mod align;
pub mod round;
pub mod settings;
pub mod vertex;

pub use settings::{AlignmentMode, AutoscalerSettings};
pub use vertex::{Reason, Thresholds, VertexMetrics, VertexOutcome};
