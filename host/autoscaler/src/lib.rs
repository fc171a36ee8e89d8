//! The FLIP-271 autoscaler as pure functions: no clock, no I/O, no Kubernetes. Metric samples
//! and settings go in; a decision per vertex comes out with the numbers behind it.
//!
//! So far, matching upstream's formulas and rounding (`../shared/reference/autoscaler-algorithm.md`):
//! the stored-metric rounding ([`round::round3`]); windowed evaluation of a job graph
//! ([`evaluate`]: rates, true processing rate, target rates through each edge's ratio, catch-up,
//! backlog); the capacity and thresholds ([`vertex::thresholds`]); the target parallelism with
//! factor limits and bounds ([`vertex::target_parallelism`]); alignment ([`align`]); and the
//! job-level rule that only a vertex outside its band starts a rescale ([`decide`]). Also the
//! metric window's bookkeeping ([`window`]) and the delayed scale-down ([`delay`]). Scaling
//! history with ineffective-scale-up detection and the observed scalability coefficient
//! ([`history`]); memory pressure ([`decide::MemoryPressure`]); tracked restart time and quotas
//! ([`limits`]); memory tuning ([`memory`]).

pub mod align;
pub mod collect;
pub mod decide;
pub mod delay;
pub mod evaluate;
mod floats;
pub mod history;
pub mod job;
pub mod limits;
pub mod memory;
pub mod replay;
pub mod round;
pub mod settings;
pub mod vertex;
pub mod window;

pub use evaluate::{GraphVertex, Sample, TaskManagerSample, VertexSample};
pub use job::{AutoscalerState, StepReport};
pub use settings::{AlignmentMode, AutoscalerSettings, BusyTimeAggregator};
pub use vertex::{Reason, Thresholds, VertexMetrics, VertexOutcome};
