//! One autoscaler step for a job: a new sample goes into the window, and once the window is
//! full the job-level decision is taken and turned into what to apply. Everything the step
//! carries from one sample to the next is [`AutoscalerState`], which the operator stores in the
//! `autoscaler-<name>` ConfigMap (it serializes) and `autoscaler replay` rebuilds from a
//! recording: the same function serves both, so a replay shows what the operator would do.

use crate::decide::{JobDecision, decide};
use crate::delay::DelayedScaleDowns;
use crate::evaluate::{GraphVertex, JobEvaluation, Sample, evaluate};
use crate::history::{ScalingHistory, ScalingRecord};
use crate::settings::AutoscalerSettings;
use crate::window::{MetricWindow, WindowState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Rescale durations kept for restart-time tracking.
const RESTARTS_KEPT: usize = 5;

/// What the autoscaler remembers about a job between samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutoscalerState {
    pub window: MetricWindow,
    pub pending_scale_downs: DelayedScaleDowns,
    pub history: ScalingHistory,
    /// The parallelism the autoscaler chose per vertex; a redeploy keeps it
    /// (`pipeline.jobvertex-parallelism-overrides`).
    pub overrides: BTreeMap<String, u32>,
    /// How long the last rescales took (requested → running again), most recent last.
    pub restart_times_ms: Vec<i64>,
    /// A rescale asked for and not yet seen running: when it was asked for.
    pub rescale_requested_ms: Option<i64>,
    /// The job graph at the last sample (so a stored state is a replayable recording).
    pub graph: Vec<GraphVertex>,
    /// The TaskManager memory chosen with the last scaling (`memory.tuning.enabled`); a deploy
    /// renders it, and TaskManagers running other memory are redeployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<crate::memory::MemoryRecommendation>,
    /// When each kind of recommendation or warning was last reported (by its key), so none is
    /// repeated within `scaling.event.interval`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reported_ms: BTreeMap<String, i64>,
}

/// What one step concluded.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub time_ms: i64,
    pub window: WindowState,
    /// Samples in the window after this one.
    pub samples: usize,
    /// The evaluation while the window fills (for reports; no scaling yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<JobEvaluation>,
    /// The decision, once the window is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<JobDecision>,
    /// The built-in decision's new parallelism per vertex (empty: nothing to do). The caller
    /// may let a policy change it, and records what it applies with
    /// [`AutoscalerState::record_applied`].
    pub apply: BTreeMap<String, u32>,
    /// Why a decision with changes is not applied (metrics-only mode, an excluded period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applied: Option<String>,
    /// Nothing may be applied now, whoever decides (metrics-only mode, an excluded period).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
    /// A rescale that just finished, and how long it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescale_took_ms: Option<i64>,
}

impl AutoscalerState {
    /// Takes `sample` of a job running since `running_since_ms` (its latest RUNNING
    /// transition) whose graph is `graph`, and decides. Nothing is recorded as applied here:
    /// the caller applies `apply` (or a policy's answer) and records it.
    pub fn step(
        &mut self,
        graph: &[GraphVertex],
        sample: Sample,
        running_since_ms: i64,
        settings: &AutoscalerSettings,
    ) -> StepReport {
        let now_ms = sample.time_ms;
        self.graph = graph.to_vec();
        let rescale_took_ms = self.rescale_finished(running_since_ms, graph);
        if let Some(requested) = self.rescale_requested_ms {
            // The job has not restarted at its new parallelism yet: what it reports now says
            // nothing about the new parallelism, and deciding again would scale twice.
            let limit = settings.restart_time_limit.max(settings.restart_time);
            if now_ms - requested < limit.as_millis() as i64 {
                return StepReport {
                    time_ms: now_ms,
                    window: WindowState::Rescaling {
                        since_ms: requested,
                    },
                    samples: self.window.samples.len(),
                    evaluation: None,
                    decision: None,
                    apply: BTreeMap::new(),
                    not_applied: None,
                    hold: false,
                    rescale_took_ms: None,
                };
            }
            // Never seen running again within the limit: stop waiting, start over.
            self.rescale_requested_ms = None;
            self.window = MetricWindow::default();
        }
        let window = self.window.add(sample, running_since_ms, settings);
        let mut report = StepReport {
            time_ms: now_ms,
            window,
            samples: self.window.samples.len(),
            evaluation: None,
            decision: None,
            apply: BTreeMap::new(),
            not_applied: None,
            hold: false,
            rescale_took_ms,
        };
        if !self.window.can_evaluate() {
            return report;
        }
        if window != WindowState::Full {
            report.evaluation = Some(evaluate(graph, &self.window.samples, settings));
            return report;
        }
        let restart_s = settings.restart_seconds(&self.restart_times_ms);
        let decision = decide(
            graph,
            &self.window.samples,
            settings,
            restart_s,
            &settings.excluded_vertices,
            now_ms,
            &mut self.pending_scale_downs,
            &self.history,
        );
        let excluded = settings
            .excluded_periods
            .iter()
            .find(|p| p.contains(now_ms));
        report.hold = !settings.scaling_enabled || excluded.is_some();
        if !decision.changes.is_empty() {
            if !settings.scaling_enabled {
                report.not_applied =
                    Some("job.autoscaler.scaling.enabled is false (metrics-only mode)".into());
            } else if let Some(period) = excluded {
                report.not_applied = Some(format!(
                    "inside the excluded period {:?} (job.autoscaler.excluded.periods)",
                    period.text()
                ));
            } else {
                report.apply = decision
                    .changes
                    .iter()
                    .map(|(id, outcome)| (id.clone(), outcome.new))
                    .collect();
            }
        }
        report.decision = Some(decision);
        report
    }

    /// Records a rescale to `applied` (vertex -> parallelism) taken at `now_ms` on `graph`:
    /// the scaling history (with the rate `decision` expected, or a linear estimate for a
    /// parallelism a policy chose), the overrides, and the start of the rescale.
    pub fn record_applied(
        &mut self,
        graph: &[GraphVertex],
        decision: &JobDecision,
        applied: &BTreeMap<String, u32>,
        now_ms: i64,
        settings: &AutoscalerSettings,
    ) {
        for (id, new) in applied {
            let current = graph
                .iter()
                .find(|v| &v.id == id)
                .map_or(*new, |v| v.parallelism);
            let tpr = decision
                .evaluation
                .vertices
                .get(id)
                .map_or(f64::NAN, |e| e.true_processing_rate);
            let expected = match decision.changes.get(id) {
                Some(outcome) if outcome.new == *new => outcome.expected_processing_rate,
                _ => crate::round::round3(tpr / f64::from(current.max(1)) * f64::from(*new)),
            };
            self.history.record(
                id,
                ScalingRecord {
                    time_ms: now_ms,
                    current,
                    new: *new,
                    true_processing_rate: tpr,
                    expected_processing_rate: expected,
                },
                settings.history_max_count,
                settings.history_max_age.as_millis() as i64,
            );
            self.overrides.insert(id.clone(), *new);
        }
        if !applied.is_empty() {
            self.rescale_requested_ms = Some(now_ms);
        }
    }

    /// A rescale asked for before the job's latest start has finished, once the job runs at
    /// the chosen parallelism: how long it took. A redeployed job on the adaptive scheduler
    /// starts with the slots that registered first and reaches its parallelism later; deciding
    /// in between would rescale (or, with memory tuning, redeploy) it again.
    fn rescale_finished(&mut self, running_since_ms: i64, graph: &[GraphVertex]) -> Option<i64> {
        let requested = self.rescale_requested_ms?;
        if running_since_ms <= requested || !not_running(graph, &self.overrides).is_empty() {
            return None;
        }
        self.rescale_requested_ms = None;
        let took = running_since_ms - requested;
        self.restart_times_ms.push(took);
        let excess = self.restart_times_ms.len().saturating_sub(RESTARTS_KEPT);
        self.restart_times_ms.drain(..excess);
        Some(took)
    }

    /// Thins the metric window until `fits` says the state is small enough (a stored state has
    /// a size limit): every other sample goes, the first and the last stay, so the window
    /// still spans its time (it can still become full, and rates from its ends are unchanged);
    /// averages are taken over fewer samples. Returns how many samples were dropped.
    pub fn thin_until(&mut self, fits: impl Fn(&AutoscalerState) -> bool) -> usize {
        let mut dropped = 0;
        while !fits(self) && self.window.samples.len() > 2 {
            let last = self.window.samples.len() - 1;
            let mut index = 0;
            self.window.samples.retain(|_| {
                let keep = index == 0 || index == last || index % 2 == 0;
                index += 1;
                keep
            });
            dropped += last + 1 - self.window.samples.len();
        }
        dropped
    }
}

/// The graph with the parallelism the job runs at: the graph's own, or an override the
/// autoscaler already applied that the graph does not show yet.
pub fn with_parallelism(
    graph: &[GraphVertex],
    parallelism: &BTreeMap<String, u32>,
) -> Vec<GraphVertex> {
    graph
        .iter()
        .map(|v| GraphVertex {
            parallelism: parallelism.get(&v.id).copied().unwrap_or(v.parallelism),
            ..v.clone()
        })
        .collect()
}

/// The chosen parallelism of the vertices of `graph` that run another one (empty: the job
/// runs what was chosen).
pub fn not_running(graph: &[GraphVertex], chosen: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    chosen
        .iter()
        .filter(|(id, p)| graph.iter().any(|v| &v.id == *id && v.parallelism != **p))
        .map(|(id, p)| (id.clone(), *p))
        .collect()
}

/// The value of `pipeline.jobvertex-parallelism-overrides` for `overrides`.
pub fn overrides_text(overrides: &BTreeMap<String, u32>) -> String {
    overrides
        .iter()
        .map(|(id, p)| format!("{id}:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::{TaskManagerSample, VertexSample};
    use std::time::Duration;

    fn settings() -> AutoscalerSettings {
        AutoscalerSettings {
            metrics_window: Duration::from_secs(10),
            stabilization_interval: Duration::from_secs(2),
            scale_down_interval: Duration::ZERO,
            ..AutoscalerSettings::default()
        }
    }

    fn graph(source: u32, map: u32) -> Vec<GraphVertex> {
        let vertex = |id: &str, parallelism: u32, inputs: Vec<(String, bool)>| GraphVertex {
            id: id.into(),
            parallelism,
            max_parallelism: 128,
            inputs,
            source_partitions: 0,
            name: String::new(),
            ship_strategies: Default::default(),
        };
        vec![
            vertex("source", source, vec![]),
            vertex("map", map, vec![("source".into(), true)]),
        ]
    }

    /// One sample a second: the source reads `rate`/s; the map is `map_load` busy; at a
    /// load of 1 the source falls behind by a fifth of the rate each second.
    fn sample(second: i64, rate: f64, map_load: f64) -> Sample {
        let n = second as f64;
        let behind = if map_load >= 1.0 { rate / 5.0 } else { 0.0 };
        let at = |load: f64, lag: f64| VertexSample {
            records_in: rate * n,
            records_out: rate * n,
            records_in_per_second: rate,
            load,
            lag,
            observed_tpr: f64::NAN,
            accumulated_busy_ms: f64::NAN,
        };
        Sample {
            time_ms: second * 1000,
            vertices: [
                ("source".into(), at(0.1, behind * n)),
                ("map".into(), at(map_load, f64::NAN)),
            ]
            .into(),
            task_managers: TaskManagerSample::MISSING,
        }
    }

    #[test]
    fn a_busy_vertex_scales_once_the_window_is_full_and_the_rescale_is_timed() {
        let mut state = AutoscalerState::default();
        let settings = settings();
        let g = graph(1, 1);
        assert!(matches!(
            state.step(&g, sample(1, 1000.0, 1.0), 0, &settings).window,
            WindowState::Stabilizing { until_ms: 2000 }
        ));
        let mut reports = Vec::new();
        for second in 2..=12 {
            reports.push(state.step(&g, sample(second, 1000.0, 1.0), 0, &settings));
        }
        assert!(reports[..10].iter().all(|r| r.apply.is_empty()));
        assert!(
            reports[1].evaluation.is_some(),
            "evaluated while the window fills"
        );
        let last = reports.last().unwrap();
        assert_eq!(last.window, WindowState::Full);
        assert!(state.overrides.is_empty(), "nothing recorded until applied");
        state.record_applied(
            &g,
            last.decision.as_ref().unwrap(),
            &last.apply,
            12_000,
            &settings,
        );
        // 1000/s at full load and 200/s more falling behind: 1200/s (plus what a 5 min
        // restart builds up, over the 30 min catch-up) at 70% of 1000/s needs 2 subtasks.
        assert_eq!(last.apply, BTreeMap::from([("map".to_string(), 2)]));
        assert_eq!(state.overrides, last.apply);
        assert_eq!(state.history.0["map"].len(), 1);
        // Until the job runs again, nothing is sampled or decided (no second scale-up).
        let waiting = state.step(&g, sample(13, 1000.0, 1.0), 0, &settings);
        assert_eq!(waiting.window, WindowState::Rescaling { since_ms: 12_000 });
        assert!(waiting.apply.is_empty() && waiting.decision.is_none());
        // Restarted, but not yet at the chosen parallelism (a redeployed job on the adaptive
        // scheduler starts with the slots that registered first): still rescaling.
        let not_yet = state.step(&g, sample(15, 1000.0, 1.0), 14_000, &settings);
        assert_eq!(not_yet.window, WindowState::Rescaling { since_ms: 12_000 });
        // Running at the chosen parallelism since 4.5 s after the request: the window starts
        // over, the time is kept.
        let g = with_parallelism(&g, &state.overrides);
        let report = state.step(&g, sample(17, 1000.0, 0.5), 16_500, &settings);
        assert_eq!(report.rescale_took_ms, Some(4_500));
        assert_eq!(state.restart_times_ms, [4_500]);
        assert!(matches!(report.window, WindowState::Stabilizing { .. }));
    }

    #[test]
    fn metrics_only_mode_reports_and_changes_nothing() {
        let mut state = AutoscalerState::default();
        let settings = AutoscalerSettings {
            scaling_enabled: false,
            ..settings()
        };
        let g = graph(1, 1);
        let mut last = None;
        for second in 2..=12 {
            last = Some(state.step(&g, sample(second, 1000.0, 1.0), 0, &settings));
        }
        let last = last.unwrap();
        assert!(last.apply.is_empty());
        assert_eq!(last.decision.unwrap().changes["map"].new, 2);
        assert!(last.not_applied.unwrap().contains("scaling.enabled"));
        assert!(last.hold);
        assert!(state.overrides.is_empty() && state.rescale_requested_ms.is_none());
    }

    #[test]
    fn an_excluded_period_holds_the_decision() {
        let mut state = AutoscalerState::default();
        let settings = AutoscalerSettings {
            // The whole first day of 1970 (the samples' clock).
            excluded_periods: crate::limits::parse_periods("0:00-23:59:59").unwrap(),
            ..settings()
        };
        let g = graph(1, 1);
        let mut last = None;
        for second in 2..=12 {
            last = Some(state.step(&g, sample(second, 1000.0, 1.0), 0, &settings));
        }
        let last = last.unwrap();
        assert!(last.apply.is_empty() && last.hold);
        assert!(
            last.not_applied
                .unwrap()
                .contains("excluded period \"0:00-23:59:59\"")
        );
    }

    #[test]
    fn state_round_trips_through_json_with_missing_metrics_and_shrinks_to_fit() {
        let mut state = AutoscalerState::default();
        let settings = settings();
        for second in 2..=8 {
            let mut s = sample(second, 500.0, 0.3);
            s.vertices.get_mut("map").unwrap().observed_tpr = f64::INFINITY;
            s.vertices.get_mut("map").unwrap().accumulated_busy_ms = 1000.0 * second as f64;
            s.task_managers = TaskManagerSample {
                gc_pressure: 0.01,
                heap_usage: 0.4,
                heap_used: 100e6,
                metaspace_used: 50e6,
                managed_used: 0.0,
            };
            state.step(&graph(1, 1), s, 0, &settings);
        }
        state.memory = Some(crate::memory::MemoryRecommendation {
            process: 600 << 20,
            heap: 120 << 20,
            managed: 0,
            network: 1 << 20,
            metaspace: 96 << 20,
            set: [(
                "taskmanager.memory.process.size".into(),
                "629145600 bytes".into(),
            )]
            .into(),
            remove: vec!["taskmanager.memory.managed.size".into()],
        });
        let text = serde_json::to_string(&state).unwrap();
        assert!(text.contains("\"lag\":null") && text.contains("\"Infinity\""));
        let back: AutoscalerState = serde_json::from_str(&text).unwrap();
        // NaN != NaN: compare the text of both.
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        let limit = text.len() / 2;
        let (first, last) = (
            state.window.samples[0].time_ms,
            state.window.samples.last().unwrap().time_ms,
        );
        let dropped = state.thin_until(|s| serde_json::to_string(s).unwrap().len() <= limit);
        assert!(dropped > 0 && serde_json::to_string(&state).unwrap().len() <= limit);
        assert_eq!(
            state.window.samples[0].time_ms, first,
            "the window keeps its span"
        );
        assert_eq!(state.window.samples.last().unwrap().time_ms, last);
        assert_eq!(
            overrides_text(&BTreeMap::from([("a".into(), 2), ("b".into(), 3)])),
            "a:2,b:3"
        );
    }
}
