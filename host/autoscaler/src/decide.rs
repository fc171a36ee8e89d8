//! The job-level decision: evaluate every vertex, compute each one's target parallelism, and
//! scale only when some changed vertex is outside its utilization band (upstream's summary
//! rule: vertices inside their band ride along, but never start a rescale on their own).

use crate::evaluate::{GraphVertex, JobEvaluation, Sample, evaluate};
use crate::settings::AutoscalerSettings;
use crate::vertex::{VertexOutcome, target_parallelism};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct JobDecision {
    pub evaluation: JobEvaluation,
    /// The vertices whose parallelism changes (empty: no scaling).
    pub changes: BTreeMap<String, VertexOutcome>,
    /// Changes computed but not applied because no changed vertex was outside its band.
    pub held_inside_band: BTreeMap<String, VertexOutcome>,
}

/// The decision for a job. `excluded` vertices (`vertex.exclude.ids`) are evaluated but never
/// changed; `restart_s` is the restart time in whole seconds (fixed or tracked).
pub fn decide(
    graph: &[GraphVertex],
    samples: &[Sample],
    settings: &AutoscalerSettings,
    restart_s: f64,
    excluded: &[String],
) -> JobDecision {
    let evaluation = evaluate(graph, samples, settings);
    let mut changes = BTreeMap::new();
    for vertex in graph {
        if excluded.contains(&vertex.id) {
            continue;
        }
        let Some(evaluated) = evaluation.vertices.get(&vertex.id) else {
            continue;
        };
        if let Some(outcome) = target_parallelism(
            &vertex.metrics(evaluated),
            settings,
            evaluation.backlog,
            restart_s,
        ) {
            changes.insert(vertex.id.clone(), outcome);
        }
    }
    if changes.values().any(|o| o.outside_band) {
        JobDecision {
            evaluation,
            changes,
            held_inside_band: BTreeMap::new(),
        }
    } else {
        JobDecision {
            evaluation,
            changes: BTreeMap::new(),
            held_inside_band: changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::VertexSample;

    fn vertex(id: &str, inputs: &[&str], parallelism: u32) -> GraphVertex {
        GraphVertex {
            id: id.into(),
            parallelism,
            max_parallelism: 128,
            inputs: inputs.iter().map(|i| (i.to_string(), false)).collect(),
            source_partitions: 0,
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
                };
                Sample {
                    time_ms: i * 1000,
                    vertices: [
                        ("source".to_string(), at(rate, source_load)),
                        ("map".to_string(), at(rate, map_load)),
                    ]
                    .into(),
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
        );
        assert_eq!(decision.changes.keys().collect::<Vec<_>>(), vec!["map"]);
        assert_eq!(decision.changes["map"].new, 4);
        assert!(decision.changes["map"].outside_band);
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
        );
        assert!(decision.changes.is_empty(), "{:?}", decision.changes);
        assert!(decision.held_inside_band.values().all(|o| !o.outside_band));
    }

    #[test]
    fn excluded_vertices_are_never_changed() {
        let decision = decide(
            &graph(),
            &window(1000.0, 200.0, 0.5, 0.95),
            &AutoscalerSettings::default(),
            300.0,
            &["map".to_string()],
        );
        assert!(decision.changes.is_empty());
        assert!(
            decision.evaluation.vertices.contains_key("map"),
            "still evaluated"
        );
    }
}
