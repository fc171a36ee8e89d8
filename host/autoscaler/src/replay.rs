//! Replaying a recorded metric history through the autoscaler, exactly as the operator steps
//! through live samples ([`AutoscalerState::step`]), to see what it would decide and why.
//!
//! A recording is JSON (documented in docs/autoscaler.md):
//! `{"graph": [vertex...], "config": {"job.autoscaler.<key>": "<value>"...},
//!   "samples": [{"timeMs": ..., "runningSinceMs": ..., "vertices": {id: sample}}...]}`.
//! The state the operator stores in the `autoscaler-<name>` ConfigMap (`state.json.gz`,
//! decompressed) is a
//! recording too: its graph and the samples of its metric window.
//!
//! A rescale in a replay takes effect at once: the graph takes the new parallelism and the job
//! counts as restarted at the decision, so the window stabilizes and fills again as it would
//! live.

use crate::evaluate::{GraphVertex, Sample};
use crate::job::{AutoscalerState, StepReport, with_parallelism};
use crate::settings::AutoscalerSettings;
use crate::window::MetricWindow;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedSample {
    #[serde(flatten)]
    pub sample: Sample,
    /// When the job last started running (default: the first sample's time).
    #[serde(default)]
    pub running_since_ms: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub graph: Vec<GraphVertex>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub samples: Vec<RecordedSample>,
    /// A stored state's window (when `samples` is empty).
    #[serde(default)]
    pub window: Option<MetricWindow>,
}

impl Recording {
    /// The samples to replay, oldest first.
    fn samples(&self) -> Vec<RecordedSample> {
        if !self.samples.is_empty() {
            return self.samples.clone();
        }
        let Some(window) = &self.window else {
            return Vec::new();
        };
        window
            .samples
            .iter()
            .map(|sample| RecordedSample {
                sample: sample.clone(),
                running_since_ms: window.running_since_ms(),
            })
            .collect()
    }
}

/// Replays `recording` with its config overridden by `overrides` (keys with or without the
/// `job.autoscaler.` prefix). Every problem with the settings is returned, each naming its key.
pub fn replay(
    recording: &Recording,
    overrides: &BTreeMap<String, String>,
) -> Result<Vec<StepReport>, Vec<String>> {
    let mut config = recording.config.clone();
    for (key, value) in overrides {
        let key = if key.starts_with("job.autoscaler.") {
            key.clone()
        } else {
            format!("job.autoscaler.{key}")
        };
        config.insert(key, value.clone());
    }
    let settings = AutoscalerSettings::from_config(&config)?;
    let samples = recording.samples();
    if samples.is_empty() {
        return Err(vec![
            "the recording has no samples (`samples`, or a stored state's `window.samples`)".into(),
        ]);
    }
    let first = samples[0].sample.time_ms;
    let mut state = AutoscalerState::default();
    let mut graph = recording.graph.clone();
    let mut restarted_at: Option<i64> = None;
    let mut reports = Vec::new();
    for recorded in samples {
        let running_since = recorded
            .running_since_ms
            .unwrap_or(first)
            .max(restarted_at.unwrap_or(i64::MIN));
        let report = state.step(&graph, recorded.sample, running_since, &settings);
        if let (Some(decision), false) = (&report.decision, report.apply.is_empty()) {
            state.record_applied(&graph, decision, &report.apply, report.time_ms, &settings);
            graph = with_parallelism(&graph, &report.apply);
            // Live, the job runs again at the new parallelism shortly after the decision.
            restarted_at = Some(report.time_ms + 1);
            state.rescale_requested_ms = None;
        }
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source at 1000/s feeding a map that is saturated (and falling behind) for 28 s, then,
    /// rescaled, half as busy.
    fn recording() -> String {
        let mut samples = Vec::new();
        for second in 0..=120i64 {
            let n = second as f64;
            let saturated = second < 28;
            let behind = 200.0 * n.min(28.0);
            samples.push(serde_json::json!({
                "timeMs": second * 1000,
                "vertices": {
                    "src": {"recordsIn": 1000.0 * n, "recordsOut": 1000.0 * n, "load": 0.1, "lag": behind},
                    "map": {"recordsIn": 1000.0 * n, "recordsOut": 1000.0 * n,
                            "recordsInPerSecond": 1000.0, "load": if saturated { 1.0 } else { 0.5 }}
                }
            }));
        }
        serde_json::json!({
            "graph": [
                {"id": "src", "parallelism": 1, "maxParallelism": 128, "inputs": []},
                {"id": "map", "parallelism": 1, "maxParallelism": 128, "inputs": [["src", true]]}
            ],
            "config": {"job.autoscaler.metrics.window": "20 s", "job.autoscaler.stabilization.interval": "5 s"},
            "samples": samples
        })
        .to_string()
    }

    #[test]
    fn a_replay_scales_the_saturated_vertex_once_and_is_deterministic() {
        let recording: Recording = serde_json::from_str(&recording()).unwrap();
        let reports = replay(&recording, &BTreeMap::new()).unwrap();
        let scalings: Vec<_> = reports.iter().filter(|r| !r.apply.is_empty()).collect();
        assert_eq!(scalings.len(), 1, "one scaling settles it");
        assert_eq!(
            scalings[0].time_ms, 25_000,
            "stabilized 5 s, then a 20 s window"
        );
        assert_eq!(scalings[0].apply.keys().collect::<Vec<_>>(), ["map"]);
        let again = replay(&recording, &BTreeMap::new()).unwrap();
        assert_eq!(
            serde_json::to_string(&reports).unwrap(),
            serde_json::to_string(&again).unwrap()
        );
    }

    #[test]
    fn settings_from_the_command_line_win_and_bad_ones_are_named() {
        let recording: Recording = serde_json::from_str(&recording()).unwrap();
        let metrics_only = BTreeMap::from([("scaling.enabled".to_string(), "false".to_string())]);
        let reports = replay(&recording, &metrics_only).unwrap();
        assert!(reports.iter().all(|r| r.apply.is_empty()));
        assert!(reports.iter().any(|r| r.not_applied.is_some()));
        let bad = BTreeMap::from([("utilization.target".to_string(), "2".to_string())]);
        let problems = replay(&recording, &bad).unwrap_err();
        assert!(problems[0].starts_with("job.autoscaler.utilization.target: 2"));
    }

    #[test]
    fn a_stored_state_is_a_recording() {
        let recording: Recording = serde_json::from_str(&recording()).unwrap();
        let settings = AutoscalerSettings::from_config(&recording.config).unwrap();
        let mut state = AutoscalerState::default();
        for recorded in recording.samples.iter().take(15) {
            state.step(&recording.graph, recorded.sample.clone(), 0, &settings);
        }
        let stored = serde_json::to_string(&state).unwrap();
        let back: Recording = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.graph, recording.graph);
        assert_eq!(back.samples().len(), 10, "the window's samples from 5 s on");
        assert!(replay(&back, &BTreeMap::new()).is_ok());
    }
}
