//! The pure half of running the autoscaler for a FlinkDeployment: the job graph from Flink's
//! job details, the events a step's report becomes, and the in-place rescale request. The
//! controller (`controller::autoscaling`) does the I/O around it.

use super::Note;
use flink_api::ResourceLifecycleState;
use flink_autoscaler::vertex::Reason;
use flink_autoscaler::{GraphVertex, StepReport};
use flink_rest::{JobDetails, ParallelismBounds, ResourceRequirements, VertexRequirements};
use std::collections::BTreeMap;

/// The ConfigMap that holds a deployment's autoscaler state (upstream's name).
pub fn state_config_map(deployment: &str) -> String {
    format!("autoscaler-{deployment}")
}

/// Whether to take a sample now: the job runs and the deployment is not being changed.
pub fn should_sample(lifecycle: Option<ResourceLifecycleState>, job_running: bool) -> bool {
    job_running
        && matches!(
            lifecycle,
            Some(ResourceLifecycleState::Stable | ResourceLifecycleState::Deployed)
        )
}

/// The job graph as the autoscaler reads it: vertices in Flink's (topological) order, each
/// with its inputs and whether an input is keyed (a `HASH` edge).
pub fn graph_of(details: &JobDetails) -> Vec<GraphVertex> {
    let edges = details.edges();
    details
        .vertices
        .iter()
        .map(|v| GraphVertex {
            id: v.id.clone(),
            parallelism: v.parallelism.max(1) as u32,
            max_parallelism: v
                .max_parallelism
                .or(details.max_parallelism.map(|m| m as i32))
                .unwrap_or(128)
                .max(1) as u32,
            inputs: edges
                .iter()
                .filter(|(_, to, _)| *to == v.id)
                .map(|(from, _, strategy)| (from.clone(), strategy == "HASH"))
                .collect(),
            source_partitions: 0,
            name: v.name.clone(),
        })
        .collect()
}

/// The resource requirements after an in-place rescale: each changed vertex may run with 1 to
/// its new parallelism (the adaptive scheduler takes the most the slots allow), the others
/// keep theirs.
pub fn in_place_requirements(
    current: &ResourceRequirements,
    apply: &BTreeMap<String, u32>,
) -> ResourceRequirements {
    let mut next = current.clone();
    for (vertex, parallelism) in apply {
        next.insert(
            vertex.clone(),
            VertexRequirements {
                parallelism: ParallelismBounds {
                    lower_bound: 1,
                    upper_bound: (*parallelism).min(i32::MAX as u32) as i32,
                },
            },
        );
    }
    next
}

/// TaskManagers a standalone cluster needs for `graph` rescaled by `apply` (slot sharing: one
/// slot per subtask of the widest vertex).
pub fn task_managers_needed(
    graph: &[GraphVertex],
    apply: &BTreeMap<String, u32>,
    slots: u32,
) -> i32 {
    let widest = graph
        .iter()
        .map(|v| apply.get(&v.id).copied().unwrap_or(v.parallelism))
        .max()
        .unwrap_or(1);
    widest.div_ceil(slots.max(1)) as i32
}

fn name_of<'a>(graph: &'a [GraphVertex], id: &'a str) -> &'a str {
    graph
        .iter()
        .find(|v| v.id == id)
        .map_or(id, |v| if v.name.is_empty() { id } else { &v.name })
}

/// The events a step's report becomes: ScalingReport for a decision that changes something
/// (applied or metrics-only), ScalingLimited for a change held by a factor or a bound,
/// IneffectiveScaling for a scale-up that did not deliver. A step that changes nothing says
/// nothing (a quiet job produces no events).
pub fn notes_of(report: &StepReport, graph: &[GraphVertex]) -> Vec<Note> {
    let mut notes = Vec::new();
    let Some(decision) = &report.decision else {
        return notes;
    };
    if !decision.changes.is_empty() {
        let lines: Vec<String> = decision
            .changes
            .iter()
            .map(|(id, o)| {
                let evaluated = decision.evaluation.vertices.get(id);
                format!(
                    "{}: parallelism {} -> {} (true processing rate {}/s, target {}/s, scale up below {}/s, down above {}/s)",
                    name_of(graph, id),
                    o.current,
                    o.new,
                    evaluated.map_or(f64::NAN, |e| e.true_processing_rate),
                    evaluated.map_or(f64::NAN, |e| e.target_rate),
                    o.thresholds.scale_up,
                    o.thresholds.scale_down,
                )
            })
            .collect();
        let prefix = match &report.not_applied {
            Some(why) => format!("Recommended, not applied ({why}): "),
            None => "Scaling: ".to_string(),
        };
        notes.push(Note::normal(
            "ScalingReport",
            format!("{prefix}{}", lines.join("; ")),
        ));
        for (id, outcome) in &decision.changes {
            for reason in &outcome.reasons {
                let limited = match reason {
                    Reason::FactorLimited { wanted, limited_to } => format!(
                        "{}: the scale factor {wanted:.3} was limited to {limited_to:.3} (job.autoscaler.scale-up.max-factor / scale-down.max-factor)",
                        name_of(graph, id)
                    ),
                    Reason::Bounded {
                        wanted,
                        lower,
                        upper,
                    } => format!(
                        "{}: parallelism {wanted} is outside [{lower}, {upper}] (vertex min/max parallelism, max parallelism)",
                        name_of(graph, id)
                    ),
                    _ => continue,
                };
                notes.push(Note::warning("ScalingLimited", limited));
            }
        }
    }
    for (id, ineffective) in &decision.ineffective {
        notes.push(Note::warning(
            "IneffectiveScaling",
            format!(
                "{}: the last scale-up raised the true processing rate by {}/s of the {}/s expected ({:.0}%); {}",
                name_of(graph, id),
                ineffective.actual_increase,
                ineffective.expected_increase,
                ineffective.effectiveness * 100.0,
                "another scale-up is held while job.autoscaler.scaling.effectiveness.detection.enabled is true"
            ),
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> JobDetails {
        serde_json::from_value(serde_json::json!({
            "jid": "ebac9b296b60ea110000000000000001", "name": "stateful-counter", "state": "RUNNING",
            "vertices": [
                {"id": "src", "name": "Source: numbers", "parallelism": 1, "maxParallelism": 128},
                {"id": "cnt", "name": "count -> sink: Writer", "parallelism": 1, "maxParallelism": 128}
            ],
            "plan": {"jid": "x", "name": "x", "nodes": [
                {"id": "src", "parallelism": 1, "description": "", "operator": "", "operator_strategy": ""},
                {"id": "cnt", "parallelism": 1, "description": "", "operator": "", "operator_strategy": "",
                 "inputs": [{"id": "src", "num": 0, "exchange": "pipelined_bounded", "ship_strategy": "HASH"}]}
            ]}
        }))
        .expect("job details")
    }

    #[test]
    fn the_graph_comes_from_the_job_details_with_keyed_edges() {
        let graph = graph_of(&details());
        assert_eq!(graph.len(), 2);
        assert!(graph[0].inputs.is_empty());
        assert_eq!(graph[1].inputs, [("src".to_string(), true)]);
        assert_eq!(graph[1].max_parallelism, 128);
        assert_eq!(graph[1].name, "count -> sink: Writer");
    }

    #[test]
    fn an_in_place_rescale_changes_only_the_scaled_vertices_and_slots_follow() {
        let current: ResourceRequirements = serde_json::from_str(
            r#"{"src":{"parallelism":{"lowerBound":1,"upperBound":1}},"cnt":{"parallelism":{"lowerBound":1,"upperBound":1}}}"#,
        )
        .unwrap();
        let apply = BTreeMap::from([("cnt".to_string(), 3)]);
        let next = in_place_requirements(&current, &apply);
        assert_eq!(next["src"], current["src"]);
        assert_eq!(next["cnt"].parallelism.upper_bound, 3);
        let graph = graph_of(&details());
        assert_eq!(task_managers_needed(&graph, &apply, 2), 2);
        assert_eq!(task_managers_needed(&graph, &BTreeMap::new(), 2), 1);
    }

    #[test]
    fn only_stable_running_deployments_are_sampled() {
        assert!(should_sample(Some(ResourceLifecycleState::Stable), true));
        assert!(!should_sample(
            Some(ResourceLifecycleState::Upgrading),
            true
        ));
        assert!(!should_sample(Some(ResourceLifecycleState::Stable), false));
    }
}
