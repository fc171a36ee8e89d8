//! The job-level decision: evaluate every vertex, compute each one's target parallelism, and
//! scale only when some changed vertex is outside its utilization band (upstream's summary
//! rule: vertices inside their band ride along, but never start a rescale on their own).

use crate::delay::DelayedScaleDowns;
use crate::evaluate::{GraphVertex, JobEvaluation, Sample, evaluate};
use crate::history::{Ineffective, ScalingHistory, observed_scalability};
use crate::settings::AutoscalerSettings;
use crate::vertex::{AlignmentBlocked, Target, VertexOutcome, target};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDecision {
    pub evaluation: JobEvaluation,
    /// The vertices whose parallelism changes (empty: no scaling).
    pub changes: BTreeMap<String, VertexOutcome>,
    /// Changes computed but not applied because no changed vertex was outside its band.
    pub held_inside_band: BTreeMap<String, VertexOutcome>,
    /// Scale-ups whose previous scale-up did not deliver (an IneffectiveScaling event each);
    /// with detection enabled they are not in `changes`.
    pub ineffective: BTreeMap<String, Ineffective>,
    /// Changes a legacy alignment mode refused (a ScalingLimited event each).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub alignment_blocked: BTreeMap<String, AlignmentBlocked>,
    /// Nothing was decided because the TaskManagers are short of memory (a MemoryPressure
    /// event): more subtasks would not help a job that is busy collecting garbage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_pressure: Option<MemoryPressure>,
}

/// Which memory limit a job is over, with the numbers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "over", rename_all = "camelCase")]
pub enum MemoryPressure {
    /// `memory.gc-pressure.threshold`: share of time in GC at the latest sample.
    #[serde(rename_all = "camelCase")]
    GcPressure { gc_pressure: f64, threshold: f64 },
    /// `memory.heap-usage.threshold`: heap usage averaged over the window.
    #[serde(rename_all = "camelCase")]
    HeapUsage { heap_usage: f64, threshold: f64 },
}

impl MemoryPressure {
    /// Whether the evaluated job is over a limit (a value Flink did not report never is).
    pub fn of(evaluation: &JobEvaluation, settings: &AutoscalerSettings) -> Option<Self> {
        if evaluation.gc_pressure > settings.gc_pressure_threshold {
            Some(MemoryPressure::GcPressure {
                gc_pressure: evaluation.gc_pressure,
                threshold: settings.gc_pressure_threshold,
            })
        } else if evaluation.heap_usage > settings.heap_usage_threshold {
            Some(MemoryPressure::HeapUsage {
                heap_usage: evaluation.heap_usage,
                threshold: settings.heap_usage_threshold,
            })
        } else {
            None
        }
    }

    /// For events and logs.
    pub fn describe(&self) -> String {
        match self {
            MemoryPressure::GcPressure {
                gc_pressure,
                threshold,
            } => format!(
                "GC pressure {gc_pressure} is above job.autoscaler.memory.gc-pressure.threshold ({threshold}); not scaling: give the TaskManagers more memory"
            ),
            MemoryPressure::HeapUsage {
                heap_usage,
                threshold,
            } => format!(
                "Heap usage {heap_usage} is above job.autoscaler.memory.heap-usage.threshold ({threshold}); not scaling: give the TaskManagers more memory"
            ),
        }
    }
}

/// The decision for a job at `now_ms`. `excluded` vertices (`vertex.exclude.ids`) are
/// evaluated but never changed; `restart_s` is the restart time in whole seconds (fixed or
/// tracked); `pending` are the scale-downs waiting out `scale-down.interval`, updated here.
// Each argument is a separate input of the decision (what, its window, how, and the state
// carried between decisions); bundling them would only rename the list.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    graph: &[GraphVertex],
    samples: &[Sample],
    settings: &AutoscalerSettings,
    restart_s: f64,
    excluded: &[String],
    now_ms: i64,
    pending: &mut DelayedScaleDowns,
    history: &ScalingHistory,
) -> JobDecision {
    let evaluation = evaluate(graph, samples, settings);
    if let Some(pressure) = MemoryPressure::of(&evaluation, settings) {
        return JobDecision {
            evaluation,
            changes: BTreeMap::new(),
            held_inside_band: BTreeMap::new(),
            ineffective: BTreeMap::new(),
            alignment_blocked: BTreeMap::new(),
            memory_pressure: Some(pressure),
        };
    }
    let interval_ms = settings.scale_down_interval.as_millis() as i64;
    let mut changes = BTreeMap::new();
    let mut ineffective = BTreeMap::new();
    let mut alignment_blocked = BTreeMap::new();
    for vertex in graph {
        if excluded.contains(&vertex.id)
            || evaluation.missing.iter().any(|(id, _)| id == &vertex.id)
        {
            continue;
        }
        let Some(evaluated) = evaluation.vertices.get(&vertex.id) else {
            continue;
        };
        let scalability = if settings.observed_scalability {
            observed_scalability(
                history.of(&vertex.id),
                settings.observed_scalability_min_observations,
                settings.observed_scalability_coefficient_min,
            )
        } else {
            1.0
        };
        let mut outcome = match target(
            &vertex.metrics(evaluated),
            settings,
            evaluation.backlog,
            restart_s,
            scalability,
        ) {
            Target::Change(outcome) => outcome,
            Target::Same => {
                pending.clear(&vertex.id);
                continue;
            }
            Target::Blocked(blocked) => {
                pending.clear(&vertex.id);
                alignment_blocked.insert(vertex.id.clone(), blocked);
                continue;
            }
        };
        if outcome.new > outcome.current {
            pending.clear(&vertex.id);
            let tpr = evaluated.true_processing_rate;
            if let Some(found) = history.ineffective(
                &vertex.id,
                outcome.current,
                tpr,
                settings.effectiveness_threshold,
            ) {
                ineffective.insert(vertex.id.clone(), found);
                if settings.effectiveness_detection {
                    continue;
                }
            }
        } else {
            match pending.scale_down(
                &vertex.id,
                now_ms,
                outcome.current,
                outcome.new,
                outcome.outside_band,
                interval_ms,
            ) {
                Some((new, outside)) => {
                    let tpr = evaluated.true_processing_rate;
                    outcome.expected_processing_rate =
                        crate::round::round3(tpr / f64::from(outcome.current) * f64::from(new));
                    outcome.new = new;
                    outcome.outside_band = outside;
                }
                None => continue,
            }
        }
        changes.insert(vertex.id.clone(), outcome);
    }
    if changes.values().any(|o| o.outside_band) {
        for id in changes.keys() {
            pending.clear(id);
        }
        JobDecision {
            evaluation,
            changes,
            held_inside_band: BTreeMap::new(),
            ineffective,
            alignment_blocked,
            memory_pressure: None,
        }
    } else {
        JobDecision {
            evaluation,
            changes: BTreeMap::new(),
            held_inside_band: changes,
            ineffective,
            alignment_blocked,
            memory_pressure: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::{TaskManagerSample, VertexSample};

    fn vertex(id: &str, inputs: &[&str], parallelism: u32) -> GraphVertex {
        GraphVertex {
            id: id.into(),
            parallelism,
            max_parallelism: 128,
            inputs: inputs.iter().map(|i| (i.to_string(), false)).collect(),
            source_partitions: 0,
            name: String::new(),
            ship_strategies: Default::default(),
        }
    }

    /// A source reading `rate`/s with its lag growing `lag_growth`/s, into a map at `map_load`.
    fn window(rate: f64, lag_growth: f64, source_load: f64, map_load: f64) -> Vec<Sample> {
        (0..=10)
            .map(|i| {
                let n = i as f64;
                let at = |records: f64, load: f64| VertexSample {
                    records_in: records * n,
                    records_out: records * n,
                    records_in_per_second: f64::NAN,
                    load,
                    lag: lag_growth * n,
                    observed_tpr: f64::NAN,
                    accumulated_busy_ms: f64::NAN,
                };
                Sample {
                    time_ms: i * 1000,
                    vertices: [
                        ("source".to_string(), at(rate, source_load)),
                        ("map".to_string(), at(rate, map_load)),
                    ]
                    .into(),
                    task_managers: TaskManagerSample::MISSING,
                }
            })
            .collect()
    }

    fn graph() -> Vec<GraphVertex> {
        vec![vertex("source", &[], 2), vertex("map", &["source"], 2)]
    }

    #[test]
    fn a_vertex_that_cannot_keep_up_scales_up_alone() {
        // The source's lag grows 200/s: the target rate is 1200/s. The map processes 1000/s at
        // 95% busy (TPR 1052.632 < 1200: outside its band) and needs
        // round(1.111 + 1200*300/1800 + 1200/0.7) = 1915: factor 1.819, ceil(3.64) = 4.
        // The source (TPR 2000) needs factor 0.9575: ceil(1.9) = 2, no change.
        let decision = decide(
            &graph(),
            &window(1000.0, 200.0, 0.5, 0.95),
            &AutoscalerSettings::default(),
            300.0,
            &[],
            0,
            &mut DelayedScaleDowns::default(),
            &ScalingHistory::default(),
        );
        assert_eq!(decision.changes.keys().collect::<Vec<_>>(), vec!["map"]);
        assert_eq!(decision.changes["map"].new, 4);
        assert!(decision.changes["map"].outside_band);
    }

    #[test]
    fn a_legacy_alignment_that_would_turn_a_scale_up_around_is_reported_not_applied() {
        // The map (22 subtasks over 35 key groups, at most 25) cannot keep up at 95% busy and
        // is bounded to 25. Nothing in [25, 25] divides 35; the deprecated adjust mode walks
        // down to 18 (still one group each), below the current 22, and so keeps 22, where the
        // built-in mode scales to 25.
        let mut graph = graph();
        graph[1] = GraphVertex {
            max_parallelism: 35,
            inputs: vec![("source".to_string(), true)],
            ..vertex("map", &[], 22)
        };
        let decide_with = |alignment| {
            let settings = AutoscalerSettings {
                vertex_max_parallelism: 25,
                alignment,
                ..Default::default()
            };
            decide(
                &graph,
                &window(1000.0, 200.0, 0.5, 0.95),
                &settings,
                300.0,
                &[],
                0,
                &mut DelayedScaleDowns::default(),
                &ScalingHistory::default(),
            )
        };
        let built_in = decide_with(crate::AlignmentMode::Balanced);
        assert_eq!(built_in.changes["map"].new, 25);
        assert!(built_in.alignment_blocked.is_empty());
        let legacy = decide_with(crate::AlignmentMode::LegacyEvenlySpread);
        assert!(legacy.changes.is_empty() && legacy.held_inside_band.is_empty());
        assert_eq!(
            legacy.alignment_blocked["map"],
            AlignmentBlocked {
                current: 22,
                computed: 25,
                over: 35
            }
        );
    }

    #[test]
    fn a_job_short_of_memory_is_not_scaled() {
        let decide_with = |settings: &AutoscalerSettings, gc: f64, heap: f64| {
            let mut samples = window(1000.0, 200.0, 0.5, 0.95);
            for (i, s) in samples.iter_mut().enumerate() {
                s.task_managers.gc_pressure = if i == 10 { gc } else { 0.0 };
                s.task_managers.heap_usage = heap;
            }
            decide(
                &graph(),
                &samples,
                settings,
                300.0,
                &[],
                0,
                &mut DelayedScaleDowns::default(),
                &ScalingHistory::default(),
            )
        };
        let defaults = AutoscalerSettings::default();
        let scaled = decide_with(&defaults, 0.4, 0.9);
        assert_eq!(scaled.changes["map"].new, 4, "the thresholds are off (1.0)");
        assert_eq!(scaled.memory_pressure, None);
        let strict = AutoscalerSettings {
            gc_pressure_threshold: 0.3,
            heap_usage_threshold: 0.8,
            ..Default::default()
        };
        let gc = decide_with(&strict, 0.4, 0.5);
        assert!(gc.changes.is_empty() && gc.held_inside_band.is_empty());
        assert_eq!(
            gc.memory_pressure,
            Some(MemoryPressure::GcPressure {
                gc_pressure: 0.4,
                threshold: 0.3
            }),
            "the latest sample's GC pressure counts"
        );
        assert_eq!(
            decide_with(&strict, 0.1, 0.9).memory_pressure,
            Some(MemoryPressure::HeapUsage {
                heap_usage: 0.9,
                threshold: 0.8
            })
        );
        assert_eq!(
            decide_with(&strict, f64::NAN, f64::NAN).changes["map"].new,
            4,
            "not reported is not over"
        );
    }

    #[test]
    fn with_observed_scalability_a_vertex_that_scaled_poorly_gets_more_subtasks() {
        // The map's past scalings: 100/s at 2, 180/s at 4, 300/s at 8: coefficient 0.8. Its
        // factor 1915 / 1052.632 = 1.819 becomes 2.274: ceil(4.55) = 5 instead of 4.
        let mut history = ScalingHistory::default();
        for (time_ms, current, tpr) in [(0, 2, 100.0), (1, 4, 180.0), (2, 8, 300.0)] {
            let record = crate::history::ScalingRecord {
                time_ms,
                current,
                new: current * 2,
                true_processing_rate: tpr,
                expected_processing_rate: tpr * 2.0,
            };
            history.record("map", record, 3, i64::MAX);
        }
        let decide_with = |settings: &AutoscalerSettings| {
            decide(
                &graph(),
                &window(1000.0, 200.0, 0.5, 0.95),
                settings,
                300.0,
                &[],
                0,
                &mut DelayedScaleDowns::default(),
                &history,
            )
        };
        assert_eq!(
            decide_with(&AutoscalerSettings::default()).changes["map"].new,
            4
        );
        let enabled = AutoscalerSettings {
            observed_scalability: true,
            ..Default::default()
        };
        assert_eq!(decide_with(&enabled).changes["map"].new, 5);
    }

    #[test]
    fn busy_but_keeping_up_is_inside_the_default_band() {
        // 95% busy and no lag: the band is [0.4, 1.0] utilization, so nothing scales.
        let decision = decide(
            &graph(),
            &window(1000.0, 0.0, 0.5, 0.95),
            &AutoscalerSettings::default(),
            300.0,
            &[],
            0,
            &mut DelayedScaleDowns::default(),
            &ScalingHistory::default(),
        );
        assert!(decision.changes.is_empty());
        assert_eq!(decision.held_inside_band["map"].new, 4, "computed, held");
    }

    #[test]
    fn no_rescale_starts_from_inside_the_band() {
        // Both around target: map at 65% has TPR 1538.462 within [1000 up, 2667 down] and a
        // computed change to 3 that alone does not trigger scaling.
        let decision = decide(
            &graph(),
            &window(1000.0, 0.0, 0.6, 0.65),
            &AutoscalerSettings::default(),
            300.0,
            &[],
            0,
            &mut DelayedScaleDowns::default(),
            &ScalingHistory::default(),
        );
        assert!(decision.changes.is_empty(), "{:?}", decision.changes);
        assert!(decision.held_inside_band.values().all(|o| !o.outside_band));
    }

    #[test]
    fn a_source_without_busy_time_is_never_rescaled_and_its_downstream_keeps_its_target() {
        // The source reports no busy time but an observed processing rate far below its
        // target (which alone would scale it up); the map downstream is 95% busy at 1000/s
        // against 1200/s. The map scales up as it would with a measured source; the source
        // is left alone, as upstream excludes it.
        let mut samples = window(1000.0, 200.0, 0.5, 0.95);
        for s in &mut samples {
            let source = s.vertices.get_mut("source").unwrap();
            source.load = f64::NAN;
            source.observed_tpr = 600.0;
        }
        let settings = AutoscalerSettings {
            observed_min_observations: 1,
            ..Default::default()
        };
        let decision = decide(
            &graph(),
            &samples,
            &settings,
            300.0,
            &[],
            0,
            &mut DelayedScaleDowns::default(),
            &ScalingHistory::default(),
        );
        assert_eq!(
            decision.evaluation.vertices["source"].true_processing_rate,
            600.0
        );
        assert_eq!(decision.changes.keys().collect::<Vec<_>>(), vec!["map"]);
        assert_eq!(decision.changes["map"].new, 4, "as with a measured source");
    }

    #[test]
    fn excluded_vertices_are_never_changed() {
        let decision = decide(
            &graph(),
            &window(1000.0, 200.0, 0.5, 0.95),
            &AutoscalerSettings::default(),
            300.0,
            &["map".to_string()],
            0,
            &mut DelayedScaleDowns::default(),
            &ScalingHistory::default(),
        );
        assert!(decision.changes.is_empty());
        assert!(
            decision.evaluation.vertices.contains_key("map"),
            "still evaluated"
        );
    }

    #[test]
    fn an_idle_vertex_scales_down_only_after_wanting_to_for_the_interval() {
        // The map is 10% busy: TPR 10000 > its scale-down threshold 2667.
        let settings = AutoscalerSettings::default();
        let mut pending = DelayedScaleDowns::default();
        let idle = window(1000.0, 0.0, 0.5, 0.1);
        let first = decide(
            &graph(),
            &idle,
            &settings,
            300.0,
            &[],
            0,
            &mut pending,
            &ScalingHistory::default(),
        );
        assert!(first.changes.is_empty(), "{:?}", first.changes);
        assert!(pending.0.contains_key("map"));
        let half = decide(
            &graph(),
            &idle,
            &settings,
            300.0,
            &[],
            1_800_000,
            &mut pending,
            &ScalingHistory::default(),
        );
        assert!(half.changes.is_empty());
        let after = decide(
            &graph(),
            &idle,
            &settings,
            300.0,
            &[],
            3_600_000,
            &mut pending,
            &ScalingHistory::default(),
        );
        // Needs 1595 of 10000 per 2 subtasks: factor 0.1595 limited to 0.4: ceil(0.8) = 1.
        assert_eq!(after.changes["map"].new, 1);
        assert!(!pending.0.contains_key("map"), "applied: no longer pending");
    }

    #[test]
    fn load_coming_back_cancels_a_pending_scale_down() {
        let settings = AutoscalerSettings::default();
        let mut pending = DelayedScaleDowns::default();
        decide(
            &graph(),
            &window(1000.0, 0.0, 0.5, 0.1),
            &settings,
            300.0,
            &[],
            0,
            &mut pending,
            &ScalingHistory::default(),
        );
        assert!(pending.0.contains_key("map"));
        decide(
            &graph(),
            &window(1000.0, 200.0, 0.5, 0.95),
            &settings,
            300.0,
            &[],
            600_000,
            &mut pending,
            &ScalingHistory::default(),
        );
        assert!(!pending.0.contains_key("map"), "a scale-up replaced it");
    }

    #[test]
    fn a_scale_up_that_did_not_help_is_reported_and_with_detection_not_repeated() {
        // The map went 1 -> 2 expecting 2105/s; it now processes 1052.632/s: no gain.
        let mut history = ScalingHistory::default();
        history.record(
            "map",
            crate::history::ScalingRecord {
                time_ms: 0,
                current: 1,
                new: 2,
                true_processing_rate: 1052.632,
                expected_processing_rate: 2105.264,
            },
            3,
            i64::MAX,
        );
        let slow = window(1000.0, 200.0, 0.5, 0.95);
        let mut pending = DelayedScaleDowns::default();
        let reported = decide(
            &graph(),
            &slow,
            &AutoscalerSettings::default(),
            300.0,
            &[],
            0,
            &mut pending,
            &history,
        );
        assert!(reported.ineffective.contains_key("map"));
        assert_eq!(
            reported.changes["map"].new, 4,
            "without detection it still scales"
        );
        let settings = AutoscalerSettings {
            effectiveness_detection: true,
            ..Default::default()
        };
        let held = decide(
            &graph(),
            &slow,
            &settings,
            300.0,
            &[],
            0,
            &mut pending,
            &history,
        );
        assert!(held.changes.is_empty() && held.ineffective.contains_key("map"));
    }
}
