//! The `job.autoscaler.*` settings this slice uses, with upstream's defaults.

use std::time::Duration;

/// How a new parallelism is aligned to key groups or source partitions
/// (`job.autoscaler.scaling.parallelism-alignment.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlignmentMode {
    /// A divisor of the key groups/partitions, or any parallelism that lowers the largest
    /// per-subtask share; else the computed parallelism.
    #[default]
    Balanced,
    /// A divisor only; else the computed parallelism.
    EvenlySpread,
    /// The computed parallelism as is.
    Off,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalerSettings {
    /// `utilization.target`
    pub utilization_target: f64,
    /// `utilization.max` (default target + boundary)
    pub utilization_max: Option<f64>,
    /// `utilization.min` (default target - boundary)
    pub utilization_min: Option<f64>,
    /// `target.utilization.boundary` (deprecated)
    pub utilization_boundary: f64,
    /// `scale-down.max-factor`
    pub scale_down_max_factor: f64,
    /// `scale-up.max-factor`
    pub scale_up_max_factor: f64,
    /// `vertex.min-parallelism`
    pub vertex_min_parallelism: u32,
    /// `vertex.max-parallelism`
    pub vertex_max_parallelism: u32,
    /// `catch-up.duration`
    pub catch_up: Duration,
    /// `restart.time`
    pub restart_time: Duration,
    /// `scaling.parallelism-alignment.mode`
    pub alignment: AlignmentMode,
    /// `backlog-processing.lag-threshold`
    pub backlog_lag_threshold: Duration,
}

impl Default for AutoscalerSettings {
    fn default() -> Self {
        Self {
            utilization_target: 0.7,
            utilization_max: None,
            utilization_min: None,
            utilization_boundary: 0.3,
            scale_down_max_factor: 0.6,
            scale_up_max_factor: 100_000.0,
            vertex_min_parallelism: 1,
            vertex_max_parallelism: 200,
            catch_up: Duration::from_secs(30 * 60),
            restart_time: Duration::from_secs(5 * 60),
            alignment: AlignmentMode::Balanced,
            backlog_lag_threshold: Duration::from_secs(5 * 60),
        }
    }
}

impl AutoscalerSettings {
    /// The utilization above which a vertex scales up (1.0 while the job works off a backlog).
    pub fn utilization_max(&self, backlog: bool) -> f64 {
        if backlog {
            1.0
        } else {
            self.utilization_max
                .unwrap_or(self.utilization_target + self.utilization_boundary)
        }
    }

    /// The utilization below which a vertex scales down (0.0 while working off a backlog).
    pub fn utilization_min(&self, backlog: bool) -> f64 {
        if backlog {
            0.0
        } else {
            self.utilization_min
                .unwrap_or(self.utilization_target - self.utilization_boundary)
        }
    }

    /// Whole seconds, as upstream truncates (`Duration.toSeconds()`).
    pub fn catch_up_seconds(&self) -> f64 {
        self.catch_up.as_secs() as f64
    }
}
