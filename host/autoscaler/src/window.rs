//! The metric window (upstream's collector bookkeeping): no samples while the job stabilizes
//! after (re)starting, then samples accumulate until the window is full, after which the
//! oldest fall out. Evaluation needs two samples; scaling needs a full window, so a decision is
//! never taken on a few minutes of a just-restarted job.

use crate::evaluate::Sample;
use crate::settings::AutoscalerSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricWindow {
    /// Oldest first.
    pub samples: Vec<Sample>,
    /// When the job (re)started running, as last seen: a newer start clears the window.
    running_since_ms: Option<i64>,
}

/// Where the window stands after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum WindowState {
    /// The job started recently: samples are not kept until `until_ms`.
    #[serde(rename_all = "camelCase")]
    Stabilizing { until_ms: i64 },
    /// Samples are being collected; the window is full at `full_at_ms`.
    #[serde(rename_all = "camelCase")]
    Filling { full_at_ms: i64 },
    /// A full window: decisions may scale.
    Full,
    /// A rescale was asked for at `since_ms` and the job has not run again since: no samples.
    #[serde(rename_all = "camelCase")]
    Rescaling { since_ms: i64 },
}

impl MetricWindow {
    /// Adds the sample taken at `sample.time_ms` of a job running since `running_since_ms`.
    pub fn add(
        &mut self,
        sample: Sample,
        running_since_ms: i64,
        settings: &AutoscalerSettings,
    ) -> WindowState {
        if self.running_since_ms != Some(running_since_ms) {
            // A restart (or the first sample): what was collected belongs to the old run.
            if self
                .samples
                .first()
                .is_some_and(|first| running_since_ms > first.time_ms)
                || self.running_since_ms.is_none()
            {
                self.samples.clear();
            }
            self.running_since_ms = Some(running_since_ms);
        }
        let now = sample.time_ms;
        let stable_from = running_since_ms + settings.stabilization_interval.as_millis() as i64;
        if now < stable_from {
            return WindowState::Stabilizing {
                until_ms: stable_from,
            };
        }
        self.samples.push(sample);
        self.state(now, settings)
    }

    /// The state at `now_ms`, dropping samples older than the window once it is full.
    fn state(&mut self, now_ms: i64, settings: &AutoscalerSettings) -> WindowState {
        let window = settings.metrics_window.as_millis() as i64;
        let Some(first) = self.samples.first().map(|s| s.time_ms) else {
            return WindowState::Filling {
                full_at_ms: now_ms + window,
            };
        };
        if now_ms < first + window {
            return WindowState::Filling {
                full_at_ms: first + window,
            };
        }
        self.samples.retain(|s| s.time_ms >= now_ms - window);
        WindowState::Full
    }

    /// When the job was last seen (re)started.
    pub fn running_since_ms(&self) -> Option<i64> {
        self.running_since_ms
    }

    /// Whether there is enough to evaluate (two samples).
    pub fn can_evaluate(&self) -> bool {
        self.samples.len() >= 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn at(time_ms: i64) -> Sample {
        Sample {
            time_ms,
            vertices: Default::default(),
            task_managers: crate::evaluate::TaskManagerSample::MISSING,
        }
    }

    #[test]
    fn samples_wait_for_stabilization_then_fill_the_window_then_slide() {
        let settings = AutoscalerSettings::default(); // 5 min stabilization, 15 min window
        let mut window = MetricWindow::default();
        assert_eq!(
            window.add(at(MIN), 0, &settings),
            WindowState::Stabilizing { until_ms: 5 * MIN }
        );
        assert!(window.samples.is_empty());
        assert_eq!(
            window.add(at(5 * MIN), 0, &settings),
            WindowState::Filling {
                full_at_ms: 20 * MIN
            }
        );
        assert!(!window.can_evaluate());
        for minute in 6..20 {
            assert_eq!(
                window.add(at(minute * MIN), 0, &settings),
                WindowState::Filling {
                    full_at_ms: 20 * MIN
                }
            );
        }
        assert!(window.can_evaluate());
        assert_eq!(window.add(at(20 * MIN), 0, &settings), WindowState::Full);
        assert_eq!(window.samples.len(), 16, "5..=20 min");
        assert_eq!(window.add(at(21 * MIN), 0, &settings), WindowState::Full);
        assert_eq!(
            window.samples.first().map(|s| s.time_ms),
            Some(6 * MIN),
            "the oldest fell out"
        );
    }

    #[test]
    fn a_restart_clears_the_window_and_stabilizes_again() {
        let settings = AutoscalerSettings::default();
        let mut window = MetricWindow::default();
        for minute in 5..25 {
            window.add(at(minute * MIN), 0, &settings);
        }
        assert!(window.can_evaluate());
        // The job restarted at minute 30 (an upgrade, a failure).
        assert_eq!(
            window.add(at(31 * MIN), 30 * MIN, &settings),
            WindowState::Stabilizing { until_ms: 35 * MIN }
        );
        assert!(window.samples.is_empty());
        assert_eq!(
            window.add(at(35 * MIN), 30 * MIN, &settings),
            WindowState::Filling {
                full_at_ms: 50 * MIN
            }
        );
    }
}
