//! The pure half of running the autoscaler for a FlinkDeployment: the job graph from Flink's
//! job details, the events a step's report becomes, and the in-place rescale request. The
//! controller (`controller::autoscaling`) does the I/O around it; [`step`] is one step of it.

pub mod step;
pub mod upstream_state;

use super::status::policy_decision;
use super::{Note, Reason, rfc3339};
use flink_api::{AutoscalerStatus, PolicyDecision, ResourceLifecycleState, ScalingRecordStatus};
use flink_autoscaler::evaluate::label_of;
use flink_autoscaler::vertex::Reason as VertexReason;
use flink_autoscaler::window::WindowState;
use flink_autoscaler::{AutoscalerState, GraphVertex, StepReport};
use flink_rest::{
    JobDetails, ParallelismBounds, ResourceRequirements, TaskManagerSummary, VertexRequirements,
};
use std::collections::BTreeMap;

/// What the autoscaler hands the deployment's decision: the parallelism a deploy keeps, what
/// the status shows, and the scaling plugin's part in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AutoscalerView {
    pub overrides: BTreeMap<String, u32>,
    pub status: AutoscalerStatus,
    pub policy: Option<PolicyDecision>,
    /// The running job cannot be rescaled in place and does not run the parallelism chosen for
    /// it, or its TaskManagers do not run the memory tuning chose: what a redeploy (in the
    /// job's upgrade mode) changes.
    pub redeploy: Option<String>,
    /// The TaskManager memory memory tuning chose (`memory.tuning.enabled`), for deploys.
    pub memory: Option<flink_autoscaler::memory::MemoryRecommendation>,
}

/// The TaskManagers (as Flink reports them) run another process size than memory tuning
/// chose: what a redeploy changes. Nothing when no TaskManager reports its memory.
pub fn memory_redeploy(
    task_managers: &[TaskManagerSummary],
    tuned: &flink_autoscaler::memory::MemoryRecommendation,
) -> Option<String> {
    let running = task_managers
        .iter()
        .filter_map(|t| t.memory_configuration.as_ref()?.total_process_memory)
        .find(|bytes| *bytes != tuned.process)?;
    Some(format!(
        "TaskManager memory {running} -> {} bytes (job.autoscaler.memory.tuning.enabled)",
        tuned.process
    ))
}

/// The TaskManager pods a standalone cluster can let go after a scale-down: `running` of them
/// run, the job needs `needed`; only TaskManagers Flink reports idle (no slot in use) whose
/// resource id is one of `pods` (the operator registers TaskManagers under their pod's name)
/// are chosen, so no running task is disturbed. Sorted by name.
pub fn idle_to_release(
    task_managers: &[TaskManagerSummary],
    pods: &[String],
    running: u32,
    needed: u32,
) -> Vec<String> {
    let surplus = running.saturating_sub(needed.max(1)) as usize;
    let mut idle: Vec<String> = task_managers
        .iter()
        .filter(|t| t.is_idle() && pods.contains(&t.id))
        .map(|t| t.id.clone())
        .collect();
    idle.sort();
    idle.truncate(surplus);
    idle
}

/// Whether the job runs the adaptive scheduler, the one that rescales in place.
pub fn is_adaptive(details: &JobDetails) -> bool {
    details
        .scheduler_type
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("adaptive"))
}

/// For a job that cannot be rescaled in place: the vertices whose running parallelism is not
/// the one the autoscaler chose, as a summary (None: it runs what was chosen, or it rescales
/// in place). Derived from what runs, so a redeploy is asked for again after a crash and never
/// once the new job runs.
pub fn redeploy_needed(
    details: &JobDetails,
    graph: &[GraphVertex],
    overrides: &BTreeMap<String, u32>,
) -> Option<String> {
    if is_adaptive(details) {
        return None;
    }
    let changes = flink_autoscaler::job::not_running(graph, overrides);
    (!changes.is_empty()).then(|| summary_of(graph, &changes))
}

/// The TaskManagers' resources as the rendered Flink configuration states them (slots, cores,
/// process memory), for the quota check.
pub fn cluster_resources(
    config: &BTreeMap<String, String>,
    task_managers: u32,
) -> flink_autoscaler::limits::ClusterResources {
    let number = |key: &str| config.get(key).and_then(|v| v.trim().parse::<f64>().ok());
    flink_autoscaler::limits::ClusterResources {
        task_managers,
        slots_per_task_manager: number("taskmanager.numberOfTaskSlots").map_or(1, |s| s as u32),
        cpu: number("kubernetes.taskmanager.cpu.amount")
            .or_else(|| number("kubernetes.taskmanager.cpu"))
            .unwrap_or(1.0),
        memory: config
            .get("taskmanager.memory.process.size")
            .and_then(|m| flink_api::quantity::parse_memory(m).ok())
            .unwrap_or(0),
    }
}

/// A tenant's scaling plugin's answer, as the host checked it.
#[derive(Clone, Debug, PartialEq)]
pub enum ScalingVerdict {
    Follow,
    Override {
        parallelism: BTreeMap<String, u32>,
        reason: String,
    },
    Veto {
        reason: String,
    },
    /// The plugin failed (or its breaker is open): the built-in decision applies.
    Unavailable {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScalingPolicy {
    pub by: PolicyDecision,
    pub verdict: ScalingVerdict,
}

/// The verdict when the tenant's usage cannot be read (`why`) and its scaling plugin cannot be
/// told (interface 1.0, no `tenant.slots-in-use`): it is not asked, and the binding's
/// `onUnknownUsage` decides. A quota is never enforced against a made-up 0.
pub fn unknown_usage_verdict(
    why: &str,
    on_unknown_usage: flink_policy::tenancy::UnknownUsage,
) -> ScalingVerdict {
    match on_unknown_usage {
        flink_policy::tenancy::UnknownUsage::Veto => ScalingVerdict::Veto {
            reason: format!(
                "{why}; no scaling until the tenant's usage can be read (onUnknownUsage: veto)"
            ),
        },
        flink_policy::tenancy::UnknownUsage::Follow => ScalingVerdict::Unavailable {
            reason: format!("{why}; the built-in decision applies (onUnknownUsage: follow)"),
        },
    }
}

/// What a step ends in once the tenant's policy had its say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resolved {
    pub apply: BTreeMap<String, u32>,
    pub policy: Option<PolicyDecision>,
    /// Why a decision was not applied as the built-in autoscaler proposed it.
    pub message: Option<String>,
    pub notes: Vec<Note>,
}

/// Combines the built-in proposal (`report.apply`, empty in metrics-only mode) with the
/// plugin's verdict. Scaling fails open: a plugin that fails leaves the built-in decision.
/// Only vertices whose parallelism really changes are applied.
pub fn resolve(
    report: &StepReport,
    graph: &[GraphVertex],
    policy: Option<&ScalingPolicy>,
    scaling_enabled: bool,
) -> Resolved {
    let mut resolved = Resolved {
        apply: report.apply.clone(),
        message: report.not_applied.clone(),
        ..Resolved::default()
    };
    let Some(policy) = policy else {
        return resolved;
    };
    let decided = |outcome: &str, message: Option<String>| {
        Some(policy_decision(&policy.by, outcome, message))
    };
    match &policy.verdict {
        ScalingVerdict::Follow => {
            resolved.policy = decided("Applied", Some("followed the built-in decision".into()));
        }
        ScalingVerdict::Override {
            parallelism,
            reason,
        } => {
            let changed: BTreeMap<String, u32> = parallelism
                .iter()
                .filter(|(id, p)| graph.iter().any(|v| &v.id == *id && v.parallelism != **p))
                .map(|(id, p)| (id.clone(), *p))
                .collect();
            resolved.policy = decided("Applied", Some(reason.clone()));
            if scaling_enabled {
                resolved.apply = changed;
                resolved.message = Some(format!("the tenant's scaling policy decided: {reason}"));
            }
        }
        ScalingVerdict::Veto { reason } => {
            resolved.policy = decided("Applied", Some(format!("vetoed: {reason}")));
            if !resolved.apply.is_empty() {
                resolved.notes.push(Note::normal(
                    Reason::ScalingVetoed,
                    format!("The tenant's scaling policy vetoed this scaling: {reason}"),
                ));
            }
            resolved.apply.clear();
            resolved.message = Some(format!("vetoed by the tenant's scaling policy: {reason}"));
        }
        ScalingVerdict::Unavailable { reason } => {
            resolved.policy = decided(
                "Fallback",
                Some(format!("{reason}; the built-in decision applies")),
            );
            resolved.notes.push(Note::warning(
                Reason::PolicyError,
                format!("The scaling policy {reason}; the built-in decision applies"),
            ));
        }
    }
    resolved
}

/// `status.autoscaler` from the stored state and this reconcile's report (None: no sample was
/// taken, the job is not running or is being changed).
pub fn status_of(
    state: &AutoscalerState,
    report: Option<&StepReport>,
    message: Option<String>,
) -> AutoscalerStatus {
    let names: BTreeMap<&str, &str> = state
        .graph
        .iter()
        .map(|v| (v.id.as_str(), v.name.as_str()))
        .collect();
    let (phase, window) = match report.map(|r| (r.window, r.samples)) {
        None => ("Paused", None),
        Some((WindowState::Stabilizing { until_ms }, _)) => (
            "Stabilizing",
            Some(format!("no samples until {}", rfc3339(until_ms))),
        ),
        Some((WindowState::Filling { full_at_ms }, samples)) => (
            "Collecting",
            Some(format!(
                "{samples} samples; full at {}",
                rfc3339(full_at_ms)
            )),
        ),
        Some((WindowState::Full, samples)) => ("Deciding", Some(format!("{samples} samples"))),
        Some((WindowState::Rescaling { since_ms }, _)) => (
            "Rescaling",
            Some(format!("rescale asked for at {}", rfc3339(since_ms))),
        ),
    };
    let mut scalings: Vec<ScalingRecordStatus> = state
        .history
        .0
        .iter()
        .flat_map(|(vertex, records)| {
            let name = names.get(vertex.as_str()).copied().unwrap_or_default();
            records.iter().map(move |r| ScalingRecordStatus {
                time: rfc3339(r.time_ms),
                vertex: vertex.clone(),
                vertex_name: name.to_string(),
                from: r.current.min(i32::MAX as u32) as i32,
                to: r.new.min(i32::MAX as u32) as i32,
                reason: format!(
                    "true processing rate {}/s, expected {}/s at the new parallelism",
                    r.true_processing_rate, r.expected_processing_rate
                ),
            })
        })
        .collect();
    scalings.sort_by(|a, b| a.time.cmp(&b.time));
    let excess = scalings.len().saturating_sub(10);
    scalings.drain(..excess);
    AutoscalerStatus {
        phase: phase.into(),
        window,
        parallelism: state
            .overrides
            .iter()
            .map(|(v, p)| (v.clone(), (*p).min(i32::MAX as u32) as i32))
            .collect(),
        scalings,
        message,
    }
}

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
            ship_strategies: edges
                .iter()
                .filter(|(_, to, _)| *to == v.id)
                .map(|(from, _, strategy)| (from.clone(), strategy.to_string()))
                .collect(),
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

/// Upstream's `job.autoscaler.scaling.event.interval`: a recommendation or warning that says
/// what one said less than `interval_ms` ago is dropped, so a held, vetoed or limited decision
/// taken again at every sample does not repeat its events. What was done is always said: a
/// `Scaling` note (a rescale asked for, the chosen parallelism restored, TaskManagers let go),
/// with the `ScalingReport` of the step that did it, and an `AutoscalerReset`. A report is the
/// same as an earlier one when it recommends the same parallelism (`recommended`: the
/// decision's vertices and their new parallelism, as upstream's dedupe label); any other note
/// when it is of the same reason and says the same but for its numbers (rates move with every
/// sample; a vertex named `map-1` stays itself). `reported` holds when each was last said;
/// entries older than the interval go.
pub fn throttle(
    notes: Vec<Note>,
    recommended: &str,
    reported: &mut BTreeMap<String, i64>,
    now_ms: i64,
    interval_ms: i64,
) -> Vec<Note> {
    let acted = notes.iter().any(|n| n.reason == Reason::Scaling);
    reported.retain(|_, at| now_ms - *at < interval_ms);
    notes
        .into_iter()
        .filter(|note| {
            let key = match note.reason {
                Reason::Scaling | Reason::AutoscalerReset => return true,
                Reason::ScalingReport if acted => return true,
                Reason::ScalingReport => format!("ScalingReport:{recommended}"),
                reason => format!("{}:{}", reason.as_str(), numbers_blanked(&note.message)),
            };
            if reported.contains_key(&key) {
                return false;
            }
            reported.insert(key, now_ms);
            true
        })
        .collect()
}

/// The ScalingLimited message of a legacy alignment's walk-down.
fn alignment_limited(vertex: &str, computed: u32, aligned: u32, over: u32) -> String {
    format!(
        "{vertex}: no parallelism in the search region from {computed} divides {over} key groups or partitions; the deprecated job.autoscaler.scaling.key-group.partitions.adjust.mode walked down to {aligned} (set scaling.parallelism-alignment.mode instead to keep {computed})"
    )
}

/// `text` with each word that is a number (`1052.632/s`, `(95%)`, `3,`) as `#`.
fn numbers_blanked(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let core = word
                .trim_start_matches(['(', '['])
                .trim_end_matches([')', ']', ',', ';', ':', '%', '.']);
            let core = core.strip_suffix("/s").unwrap_or(core);
            if !core.is_empty() && core.parse::<f64>().is_ok() {
                "#"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `name current -> new, ...` of a rescale, for events.
pub fn summary_of(graph: &[GraphVertex], changes: &BTreeMap<String, u32>) -> String {
    changes
        .iter()
        .map(|(id, p)| {
            let current = graph
                .iter()
                .find(|v| &v.id == id)
                .map_or(0, |v| v.parallelism);
            format!("{} {current} -> {p}", label_of(graph, id))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The events a step's report becomes: ScalingReport for a decision that changes something
/// (applied or metrics-only), ScalingLimited for a change held by a factor, a bound or a legacy
/// alignment mode,
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
                    label_of(graph, id),
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
            Reason::ScalingReport,
            format!("{prefix}{}", lines.join("; ")),
        ));
        for (id, outcome) in &decision.changes {
            for reason in &outcome.reasons {
                let limited = match reason {
                    VertexReason::FactorLimited { wanted, limited_to } => format!(
                        "{}: the scale factor {wanted:.3} was limited to {limited_to:.3} (job.autoscaler.scale-up.max-factor / scale-down.max-factor)",
                        label_of(graph, id)
                    ),
                    VertexReason::Bounded {
                        wanted,
                        lower,
                        upper,
                    } => format!(
                        "{}: parallelism {wanted} is outside [{lower}, {upper}] (vertex min/max parallelism, max parallelism)",
                        label_of(graph, id)
                    ),
                    VertexReason::AlignmentLimited {
                        computed,
                        aligned,
                        over,
                    } => alignment_limited(label_of(graph, id), *computed, *aligned, *over),
                    _ => continue,
                };
                notes.push(Note::warning(Reason::ScalingLimited, limited));
            }
        }
    }
    // A legacy alignment's walk-down is said also for a change held inside its band, as
    // upstream says it while scaling each vertex.
    for (id, outcome) in &decision.held_inside_band {
        for reason in &outcome.reasons {
            if let VertexReason::AlignmentLimited {
                computed,
                aligned,
                over,
            } = reason
            {
                notes.push(Note::warning(
                    Reason::ScalingLimited,
                    alignment_limited(label_of(graph, id), *computed, *aligned, *over),
                ));
            }
        }
    }
    for (id, blocked) in &decision.alignment_blocked {
        notes.push(Note::warning(
            Reason::ScalingLimited,
            format!(
                "{}: parallelism {} -> {} was not applied: aligning it to {} key groups or partitions would have turned the scaling around under the deprecated job.autoscaler.scaling.key-group.partitions.adjust.mode (set scaling.parallelism-alignment.mode instead)",
                label_of(graph, id),
                blocked.current,
                blocked.computed,
                blocked.over
            ),
        ));
    }
    if let Some(pressure) = &decision.memory_pressure {
        notes.push(Note::normal(Reason::MemoryPressure, pressure.describe()));
    }
    for (id, ineffective) in &decision.ineffective {
        notes.push(Note::warning(
            Reason::IneffectiveScaling,
            format!(
                "{}: the last scale-up raised the true processing rate by {}/s of the {}/s expected ({:.0}%); {}",
                label_of(graph, id),
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

    #[test]
    fn a_note_is_throttled_by_what_it_says_but_for_its_numbers() {
        let interval = 60_000;
        let mut reported = BTreeMap::new();
        let limited = |vertex: &str, factor: f64| {
            Note::warning(
                Reason::ScalingLimited,
                format!("{vertex}: the scale factor {factor:.3} was limited to 2.000 (95%)"),
            )
        };
        let said = throttle(
            vec![limited("map-1", 3.1), limited("map-2", 3.1)],
            "",
            &mut reported,
            0,
            interval,
        );
        assert_eq!(said.len(), 2, "two vertices are two warnings");
        let said = throttle(
            vec![limited("map-1", 3.7)],
            "",
            &mut reported,
            30_000,
            interval,
        );
        assert!(
            said.is_empty(),
            "the same warning with other numbers: {said:?}"
        );
        let said = throttle(
            vec![limited("map-1", 3.7)],
            "",
            &mut reported,
            60_000,
            interval,
        );
        assert_eq!(said.len(), 1, "said again once the interval passed");
        // A recommendation: the same parallelism is the same report; a rescale always says.
        let report = || {
            Note::normal(
                Reason::ScalingReport,
                "Recommended, not applied: map 1 -> 3",
            )
        };
        assert_eq!(
            throttle(vec![report()], "map:3", &mut reported, 0, interval).len(),
            1
        );
        assert!(throttle(vec![report()], "map:3", &mut reported, 1_000, interval).is_empty());
        assert_eq!(
            throttle(vec![report()], "map:4", &mut reported, 2_000, interval).len(),
            1
        );
        let acted = throttle(
            vec![
                report(),
                Note::normal(Reason::Scaling, "Rescaling in place: map 1 -> 3"),
            ],
            "map:3",
            &mut reported,
            3_000,
            interval,
        );
        assert_eq!(acted.len(), 2, "{acted:?}");
    }

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
    fn task_managers_running_other_memory_than_tuned_are_redeployed() {
        let tm = |bytes: Option<u64>| TaskManagerSummary {
            id: "tm".into(),
            slots_number: 1,
            free_slots: 0,
            memory_configuration: Some(flink_rest::model::TaskManagerMemoryConfiguration {
                total_process_memory: bytes,
            }),
        };
        let tuned = flink_autoscaler::memory::MemoryRecommendation {
            process: 600 << 20,
            heap: 0,
            managed: 0,
            network: 0,
            metaspace: 0,
            set: BTreeMap::new(),
            remove: Vec::new(),
        };
        let why = memory_redeploy(&[tm(Some(1 << 30))], &tuned).expect("a redeploy");
        assert!(why.contains("1073741824 -> 629145600 bytes"), "{why}");
        assert_eq!(memory_redeploy(&[tm(Some(600 << 20))], &tuned), None);
        assert_eq!(
            memory_redeploy(&[tm(None)], &tuned),
            None,
            "not reported: not judged"
        );
    }

    #[test]
    fn only_idle_task_managers_of_the_cluster_beyond_the_need_are_released() {
        let tm = |id: &str, free: u32| TaskManagerSummary {
            id: id.into(),
            slots_number: 2,
            free_slots: free,
            memory_configuration: None,
        };
        let pods: Vec<String> = ["tm-a", "tm-b", "tm-c", "tm-d"].map(String::from).to_vec();
        let reported = [
            tm("tm-d", 2),
            tm("tm-a", 0),
            tm("tm-c", 2),
            tm("tm-b", 1),
            tm("10.0.0.9:6122-x", 2),
        ];
        assert_eq!(
            idle_to_release(&reported, &pods, 4, 1),
            ["tm-c", "tm-d"],
            "the busy ones and a stranger stay"
        );
        assert_eq!(
            idle_to_release(&reported, &pods, 4, 3),
            ["tm-c"],
            "no more than the surplus"
        );
        assert!(idle_to_release(&reported, &pods, 2, 2).is_empty());
        assert_eq!(
            idle_to_release(&[tm("tm-a", 2)], &pods[..1], 1, 0),
            Vec::<String>::new(),
            "one always stays"
        );
    }

    #[test]
    fn only_a_job_off_the_adaptive_scheduler_running_other_parallelism_needs_a_redeploy() {
        let mut details = details();
        let graph = graph_of(&details);
        let chosen = BTreeMap::from([("cnt".to_string(), 3), ("src".to_string(), 1)]);
        details.scheduler_type = Some("Default".into());
        assert_eq!(
            redeploy_needed(&details, &graph, &chosen).as_deref(),
            Some("count -> sink: Writer 1 -> 3")
        );
        assert_eq!(redeploy_needed(&details, &graph, &BTreeMap::new()), None);
        let mut running = graph.clone();
        running[1].parallelism = 3;
        assert_eq!(
            redeploy_needed(&details, &running, &chosen),
            None,
            "it runs what was chosen"
        );
        details.scheduler_type = Some("Adaptive".into());
        assert_eq!(
            redeploy_needed(&details, &graph, &chosen),
            None,
            "rescaled in place"
        );
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
        use flink_autoscaler::limits::task_managers_needed;
        assert_eq!(task_managers_needed(&graph, &apply, 2), 2);
        assert_eq!(task_managers_needed(&graph, &BTreeMap::new(), 2), 1);
        assert_eq!(summary_of(&graph, &apply), "count -> sink: Writer 1 -> 3");
    }

    fn full_report(apply: &[(&str, u32)]) -> StepReport {
        StepReport {
            time_ms: 1_796_080_521_366,
            window: WindowState::Full,
            samples: 6,
            evaluation: None,
            decision: None,
            apply: apply.iter().map(|(v, p)| (v.to_string(), *p)).collect(),
            not_applied: None,
            hold: false,
            rescale_took_ms: None,
        }
    }

    fn policy(verdict: ScalingVerdict) -> ScalingPolicy {
        ScalingPolicy {
            by: PolicyDecision {
                extension_point: "scaling-policy".into(),
                tenant: "team-a".into(),
                plugin: "tenant-quota-scaling".into(),
                digest: "sha256:00".into(),
                ..PolicyDecision::default()
            },
            verdict,
        }
    }

    #[test]
    fn a_scaling_plugin_overrides_vetoes_or_falls_back_to_the_built_in_decision() {
        let graph = graph_of(&details());
        let report = full_report(&[("cnt", 4)]);
        let plain = resolve(&report, &graph, None, true);
        assert_eq!(plain.apply, BTreeMap::from([("cnt".to_string(), 4)]));
        assert!(plain.policy.is_none());

        let capped = resolve(
            &report,
            &graph,
            Some(&policy(ScalingVerdict::Override {
                parallelism: BTreeMap::from([("cnt".into(), 2), ("src".into(), 1)]),
                reason: "tenant quota leaves 2 slots".into(),
            })),
            true,
        );
        assert_eq!(
            capped.apply,
            BTreeMap::from([("cnt".to_string(), 2)]),
            "src keeps 1: no change"
        );
        assert_eq!(capped.policy.as_ref().unwrap().outcome, "Applied");

        let vetoed = resolve(
            &report,
            &graph,
            Some(&policy(ScalingVerdict::Veto {
                reason: "peak hours".into(),
            })),
            true,
        );
        assert!(vetoed.apply.is_empty());
        assert_eq!(vetoed.notes[0].reason, "ScalingVetoed");
        assert!(vetoed.message.unwrap().contains("peak hours"));

        let failed = resolve(
            &report,
            &graph,
            Some(&policy(ScalingVerdict::Unavailable {
                reason: "timed out after 10 ms".into(),
            })),
            true,
        );
        assert_eq!(failed.apply, plain.apply, "scaling fails open");
        assert_eq!(failed.policy.unwrap().outcome, "Fallback");
        assert!(failed.notes[0].warning);

        let metrics_only = resolve(
            &full_report(&[]),
            &graph,
            Some(&policy(ScalingVerdict::Override {
                parallelism: BTreeMap::from([("cnt".into(), 3)]),
                reason: "hourly target".into(),
            })),
            false,
        );
        assert!(
            metrics_only.apply.is_empty(),
            "metrics-only mode applies nothing"
        );
    }

    #[test]
    fn the_status_shows_the_window_the_parallelism_and_the_latest_scalings() {
        let mut state = AutoscalerState {
            graph: graph_of(&details()),
            ..AutoscalerState::default()
        };
        state.overrides.insert("cnt".into(), 4);
        state.history.0.insert(
            "cnt".into(),
            vec![flink_autoscaler::history::ScalingRecord {
                time_ms: 1_796_080_521_366,
                current: 1,
                new: 4,
                true_processing_rate: 647.59,
                expected_processing_rate: 2590.36,
            }],
        );
        let status = status_of(&state, Some(&full_report(&[])), None);
        assert_eq!(status.phase, "Deciding");
        assert_eq!(status.parallelism["cnt"], 4);
        assert_eq!(status.scalings.len(), 1);
        assert_eq!(status.scalings[0].vertex_name, "count -> sink: Writer");
        assert_eq!(status.scalings[0].time, "2026-11-30T23:15:21.366Z");
        assert_eq!(
            status.scalings[0].reason,
            "true processing rate 647.59/s, expected 2590.36/s at the new parallelism"
        );
        assert_eq!(status_of(&state, None, None).phase, "Paused");
    }

    #[test]
    fn the_quota_check_reads_the_task_managers_from_the_rendered_configuration() {
        let config: BTreeMap<String, String> = [
            ("taskmanager.numberOfTaskSlots", "2"),
            ("kubernetes.taskmanager.cpu.amount", "0.5"),
            ("taskmanager.memory.process.size", "800m"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cluster = cluster_resources(&config, 1);
        assert_eq!(cluster.slots_per_task_manager, 2);
        assert_eq!(cluster.cpu, 0.5);
        assert_eq!(cluster.memory, 800 << 20);
        let graph = graph_of(&details());
        let apply = BTreeMap::from([("cnt".to_string(), 6)]);
        let problem =
            flink_autoscaler::limits::quota_problem(&graph, &apply, &cluster, Some(1.0), None);
        assert_eq!(
            problem.as_deref(),
            Some("3 TaskManagers would take 1.5 CPU, over job.autoscaler.quota.cpu (1)")
        );
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
