//! The autoscaler's step of an autoscaled FlinkDeployment, decided purely: every write it
//! wants is an action of the deployment's plan, its state first. The `World` stores the state
//! only when the plan's `StoreAutoscalerState` would have been carried out, and applies the
//! rescale requests to the job's resource requirements, as the controller and Flink would.

use flink_api::FlinkDeployment;
use flink_autoscaler::evaluate::{TaskManagerSample, VertexSample};
use flink_autoscaler::{AutoscalerSettings, AutoscalerState, Sample};
use flink_operator::reconcile::Effect;
use flink_operator::reconcile::autoscaling::step::{
    self, Autoscaled, AutoscalerStep, Enabled, SampledJob, StepInput, StoredState, TaskManagerPod,
    pack,
};
use flink_rest::{JobDetails, ResourceRequirements, TaskManagerSummary};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;

const DEPLOYMENT: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata: {name: scaled, namespace: default, uid: 0f1c0c4e-1111-2222-3333-444455556666, generation: 1}
spec:
  image: flink:2.3
  flinkVersion: v2_3
  mode: standalone
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: '1'
    job.autoscaler.enabled: 'true'
    job.autoscaler.metrics.window: 10s
    job.autoscaler.stabilization.interval: 2s
    job.autoscaler.scale-down.interval: '0'
  jobManager: {resource: {memory: 768m, cpu: 0.5}}
  taskManager: {resource: {memory: 800m, cpu: 0.5}}
  job: {jarURI: 'local:///opt/flink/usrlib/job.jar', parallelism: 1, upgradeMode: savepoint}
";

/// A session job on the session cluster `shared`, autoscaled by its own configuration.
const SESSION_JOB: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata: {name: scaled, namespace: default, uid: 5e551011-1111-2222-3333-444455556666, generation: 1}
spec:
  deploymentName: shared
  flinkConfiguration:
    job.autoscaler.enabled: 'true'
    job.autoscaler.metrics.window: 10s
    job.autoscaler.stabilization.interval: 2s
    job.autoscaler.scale-down.interval: '0'
  job: {jarURI: 'local:///opt/flink/usrlib/job.jar', parallelism: 1, upgradeMode: savepoint}
";

const JOB: &str = "ebac9b296b60ea110000000000000001";

/// `manifest` (DEPLOYMENT or SESSION_JOB) with more of its configuration, right after
/// `job.autoscaler.enabled`.
fn with_settings(manifest: &str, settings: &[(&str, &str)]) -> String {
    let anchor = "    job.autoscaler.enabled: 'true'\n";
    let extra: String = settings
        .iter()
        .map(|(k, v)| format!("    {k}: '{v}'\n"))
        .collect();
    let edited = manifest.replace(anchor, &format!("{anchor}{extra}"));
    assert!(
        settings.is_empty() || edited != manifest,
        "no {anchor:?} to add to"
    );
    edited
}

/// The running job: a source and a keyed map at `map` parallelism, on the adaptive scheduler.
fn details(map: u32) -> JobDetails {
    serde_json::from_value(serde_json::json!({
        "jid": JOB, "name": "counter", "state": "RUNNING", "schedulerType": "Adaptive",
        "vertices": [
            {"id": "source", "name": "Source", "parallelism": 1, "maxParallelism": 128},
            {"id": "map", "name": "Map", "parallelism": map, "maxParallelism": 128}
        ],
        "plan": {"jid": JOB, "name": "counter", "nodes": [
            {"id": "source", "parallelism": 1, "description": "", "operator": "", "operator_strategy": ""},
            {"id": "map", "parallelism": map, "description": "", "operator": "", "operator_strategy": "",
             "inputs": [{"id": "source", "num": 0, "exchange": "pipelined_bounded", "ship_strategy": "HASH"}]}
        ]}
    }))
    .expect("job details")
}

/// One sample a second: the source reads 1000/s; the map is `map_load` busy; fully busy, the
/// source falls behind.
fn sample(second: i64, map_load: f64) -> Sample {
    let n = second as f64;
    let behind = if map_load >= 1.0 { 200.0 } else { 0.0 };
    let at = |load: f64, lag: f64| VertexSample {
        records_in: 1000.0 * n,
        records_out: 1000.0 * n,
        records_in_per_second: 1000.0,
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

fn requirements(map: u32) -> ResourceRequirements {
    serde_json::from_value(serde_json::json!({
        "source": {"parallelism": {"lowerBound": 1, "upperBound": 1}},
        "map": {"parallelism": {"lowerBound": 1, "upperBound": map}},
    }))
    .expect("requirements")
}

struct World {
    resource: FlinkDeployment,
    /// Autoscaled instead of the deployment: a session job on it.
    session_job: Option<flink_api::FlinkSessionJob>,
    /// The Flink configuration the session job's cluster renders.
    cluster_rendered: BTreeMap<String, String>,
    /// What the job's details say its scheduler is.
    scheduler: &'static str,
    /// The operator's Flink defaults (local mode's, or none).
    defaults: BTreeMap<String, String>,
    settings: AutoscalerSettings,
    stored: Option<StoredState>,
    /// What the job runs (its graph's parallelism of `map`) and the requirements Flink holds.
    running_map: u32,
    requirements: ResourceRequirements,
    task_manager_replicas: u32,
    task_managers: Option<Vec<TaskManagerSummary>>,
    pods: Option<Vec<TaskManagerPod>>,
}

impl World {
    fn new() -> Self {
        Self::with(DEPLOYMENT, BTreeMap::new())
    }

    fn with(deployment: &str, defaults: BTreeMap<String, String>) -> Self {
        let resource: FlinkDeployment = serde_saphyr::from_str(deployment).expect("fixture");
        let Enabled::On(settings) = step::enabled(&resource, &defaults) else {
            panic!("the fixture is autoscaled");
        };
        Self {
            resource,
            session_job: None,
            cluster_rendered: BTreeMap::new(),
            scheduler: "Adaptive",
            defaults,
            settings: *settings,
            stored: None,
            running_map: 1,
            requirements: requirements(1),
            task_manager_replicas: 1,
            task_managers: None,
            pods: None,
        }
    }

    /// A session job on a session cluster instead of the deployment.
    /// (`own`: more of the session job's configuration.)
    fn session_job(own: &[(&str, &str)]) -> Self {
        let yaml = with_settings(SESSION_JOB, own);
        let job: flink_api::FlinkSessionJob = serde_saphyr::from_str(&yaml).expect("fixture");
        // One slot per TaskManager of one core (what the cluster's spec renders).
        let cluster: BTreeMap<String, String> = [
            ("taskmanager.numberOfTaskSlots", "1"),
            ("kubernetes.taskmanager.cpu.amount", "1.0"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        let config =
            flink_operator::reconcile::session_job::job_config(&job, &BTreeMap::new(), &cluster);
        let Enabled::On(settings) = step::enabled_by(&config) else {
            panic!("the session job is autoscaled");
        };
        Self {
            session_job: Some(job),
            cluster_rendered: cluster,
            settings: *settings,
            task_manager_replicas: 0,
            ..Self::new()
        }
    }

    fn subject(&self) -> Autoscaled<'_> {
        match &self.session_job {
            Some(job) => Autoscaled::SessionJob(job, &self.cluster_rendered),
            None => Autoscaled::Deployment(&self.resource),
        }
    }

    fn details(&self) -> JobDetails {
        let mut details = details(self.running_map);
        details.scheduler_type = Some(self.scheduler.to_string());
        details
    }

    /// Decides one step (`load`: the map's busy ratio; None: no sample this time), without
    /// carrying out anything.
    fn decide(&self, second: i64, load: Option<f64>) -> AutoscalerStep {
        let sampled = load.map(|load| SampledJob {
            id: JOB.into(),
            details: self.details(),
            graph: flink_operator::reconcile::autoscaling::graph_of(&self.details()),
            sample: sample(second, load),
            requirements: Some(self.requirements.clone()),
            task_managers: self.task_managers.clone(),
            pods: self.pods.clone(),
        });
        step::begin(StepInput {
            resource: self.subject(),
            settings: &self.settings,
            defaults: &self.defaults,
            stored: self.stored.clone(),
            sampled,
            task_managers: self
                .session_job
                .is_none()
                .then_some(self.task_manager_replicas),
            now_ms: second * 1000,
        })
        .finish(None)
    }

    /// Decides one step and carries out its writes.
    fn step(&mut self, second: i64, load: Option<f64>) -> AutoscalerStep {
        let step = self.decide(second, load);
        for action in &step.actions {
            match action {
                Effect::StoreAutoscalerState(map) => {
                    let map: ConfigMap =
                        serde_json::from_value((**map).clone()).expect("a ConfigMap");
                    self.stored = Some(StoredState {
                        packed: map
                            .binary_data
                            .and_then(|b| b.get(step::STATE_KEY).map(|b| b.0.clone())),
                        nonce: map
                            .data
                            .as_ref()
                            .and_then(|d| d.get(step::NONCE_KEY).cloned()),
                        upstream: map
                            .data
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|(k, _)| k != step::NONCE_KEY)
                            .collect(),
                    });
                }
                Effect::SetResourceRequirements { requirements, .. } => {
                    self.requirements = requirements.clone();
                }
                Effect::ScaleTaskManagers { replicas }
                | Effect::ReleaseTaskManagers { replicas, .. } => {
                    self.task_manager_replicas = *replicas
                }
                _ => {}
            }
        }
        step
    }

    fn state(&self) -> AutoscalerState {
        self.stored
            .as_ref()
            .and_then(|s| s.packed.as_deref())
            .and_then(step::unpack)
            .unwrap_or_default()
    }
}

fn reasons(step: &AutoscalerStep) -> Vec<&'static str> {
    step.notes.iter().map(|n| n.reason.as_str()).collect()
}

fn upper_bound(requirements: &ResourceRequirements, vertex: &str) -> i32 {
    requirements[vertex].parallelism.upper_bound
}

#[test]
fn a_rescale_is_recorded_in_the_state_ahead_of_the_request_and_asked_for_once() {
    let mut world = World::new();
    let mut decided = None;
    for second in 1..=13 {
        let step = world.step(second, Some(1.0));
        if step
            .actions
            .iter()
            .any(|a| matches!(a, Effect::SetResourceRequirements { .. }))
        {
            decided = Some(step);
            break;
        }
    }
    let step = decided.expect("the busy map is scaled up once the window is full");
    assert!(
        matches!(step.actions.first(), Some(Effect::StoreAutoscalerState(_))),
        "the state (with the rescale asked for) is written first: {:?}",
        step.actions
    );
    assert!(
        step.actions
            .contains(&Effect::ScaleTaskManagers { replicas: 2 }),
        "a standalone cluster gets the TaskManagers the new slots need first: {:?}",
        step.actions
    );
    assert_eq!(upper_bound(&world.requirements, "map"), 2);
    assert!(reasons(&step).contains(&"Scaling"), "{:?}", step.notes);
    let view = step.view.expect("the decision's view");
    assert_eq!(view.overrides, BTreeMap::from([("map".to_string(), 2)]));
    assert_eq!(world.state().overrides, view.overrides);
    assert!(world.state().rescale_requested_ms.is_some());
    // The job has not picked the new parallelism up yet: nothing is asked for again.
    for second in 14..=16 {
        let step = world.step(second, Some(1.0));
        assert!(
            !step
                .actions
                .iter()
                .any(|a| matches!(a, Effect::SetResourceRequirements { .. })),
            "{:?}",
            step.actions
        );
    }
}

#[test]
fn on_the_local_machine_a_job_is_not_scaled_past_its_cores() {
    // One-core TaskManagers with one slot: the busy map wants 2 subtasks, so 2 TaskManagers
    // taking 2 cores. On a one-core machine local mode does not scale it (the machine is the
    // cluster: more subtasks would only share the same core); on two cores it does.
    let one_core_task_managers = DEPLOYMENT.replace(
        "taskManager: {resource: {memory: 800m, cpu: 0.5}}",
        "taskManager: {resource: {memory: 800m, cpu: 1}}",
    );
    assert_ne!(one_core_task_managers, DEPLOYMENT);
    let scaled_on = |cores: usize, deployment: &str| {
        let defaults = flink_operator::commands::local::machine_defaults(cores);
        let mut world = World::with(deployment, defaults);
        assert!(
            world.settings.effectiveness_detection,
            "on by default locally"
        );
        let mut notes = Vec::new();
        for second in 1..=14 {
            let step = world.step(second, Some(1.0));
            notes.extend(step.notes.iter().map(|n| n.message.clone()));
        }
        (upper_bound(&world.requirements, "map"), notes)
    };
    let (bound, notes) = scaled_on(1, &one_core_task_managers);
    assert_eq!(bound, 1, "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|n| n
                .contains("2 TaskManagers would take 2 CPU, over job.autoscaler.quota.cpu (1)")),
        "{notes:?}"
    );
    assert_eq!(scaled_on(2, &one_core_task_managers).0, 2);
    // The spec's own quota wins over the machine's.
    let own_quota = with_settings(
        &one_core_task_managers,
        &[("job.autoscaler.quota.cpu", "4")],
    );
    assert_eq!(scaled_on(1, &own_quota).0, 2);
}

/// Steps the busy job until a step asks for a rescale (or `until` seconds pass).
fn first_rescale(world: &mut World, until: i64) -> Option<AutoscalerStep> {
    (1..=until)
        .map(|second| world.step(second, Some(1.0)))
        .find(|step| {
            step.actions
                .iter()
                .any(|a| matches!(a, Effect::SetResourceRequirements { .. }))
                || reasons(step).contains(&"ScalingLimited")
        })
}

#[test]
fn a_session_job_is_rescaled_in_place_on_its_session_cluster_only() {
    let mut world = World::session_job(&[]);
    let step = first_rescale(&mut world, 14).expect("the busy map is scaled up");
    // Its state first, in a ConfigMap of its own (a deployment named `scaled` has
    // `autoscaler-scaled`), owned by the session job.
    let Some(Effect::StoreAutoscalerState(map)) = step.actions.first() else {
        panic!("the state is written first: {:?}", step.actions);
    };
    assert_eq!(map["metadata"]["name"], "autoscaler-scaled.sessionjob");
    assert_eq!(
        map["metadata"]["ownerReferences"][0]["kind"],
        "FlinkSessionJob"
    );
    assert_eq!(
        map["metadata"]["ownerReferences"][0]["uid"],
        "5e551011-1111-2222-3333-444455556666"
    );
    // In place on the session cluster's JobManager; its TaskManagers are not the job's.
    assert!(
        step.actions.iter().any(|a| matches!(
            a,
            Effect::SetResourceRequirements { cluster, job_id, .. } if cluster == "shared" && job_id == JOB
        )),
        "{:?}",
        step.actions
    );
    assert!(
        !step.actions.iter().any(|a| matches!(
            a,
            Effect::ScaleTaskManagers { .. } | Effect::ReleaseTaskManagers { .. }
        )),
        "{:?}",
        step.actions
    );
    assert_eq!(upper_bound(&world.requirements, "map"), 2);
    assert!(reasons(&step).contains(&"Scaling"), "{:?}", step.notes);
    let view = step.view.expect("the view");
    assert_eq!(view.overrides, BTreeMap::from([("map".to_string(), 2)]));
    assert_eq!(
        view.redeploy, None,
        "a session job is never redeployed for it"
    );
}

#[test]
fn a_session_jobs_quota_counts_the_task_managers_its_vertices_take_of_the_cluster() {
    // One-core, one-slot TaskManagers: the map going 1 -> 2 takes a second one, 2 cores,
    // over the job's quota of 1.
    let mut world = World::session_job(&[("job.autoscaler.quota.cpu", "1")]);
    let step = first_rescale(&mut world, 14).expect("a decision");
    assert!(
        !step
            .actions
            .iter()
            .any(|a| matches!(a, Effect::SetResourceRequirements { .. })),
        "{:?}",
        step.actions
    );
    assert!(
        step.notes.iter().any(|n| n.reason == "ScalingLimited"
            && n.message
                .contains("2 TaskManagers would take 2 CPU, over job.autoscaler.quota.cpu (1)")),
        "{:?}",
        step.notes
    );
    let mut roomy = World::session_job(&[("job.autoscaler.quota.cpu", "2")]);
    let step = first_rescale(&mut roomy, 14).expect("a decision");
    assert!(
        step.actions
            .iter()
            .any(|a| matches!(a, Effect::SetResourceRequirements { .. })),
        "{:?}",
        step.actions
    );
}

#[test]
fn a_session_job_on_a_cluster_without_the_adaptive_scheduler_is_not_rescaled_and_says_why() {
    let mut world = World::session_job(&[]);
    world.scheduler = "Default";
    let step = first_rescale(&mut world, 14).expect("a decision");
    assert!(
        !step
            .actions
            .iter()
            .any(|a| matches!(a, Effect::SetResourceRequirements { .. })),
        "{:?}",
        step.actions
    );
    let view = step.view.clone().expect("the view");
    assert_eq!(view.redeploy, None);
    // Nothing recorded that did not happen: no parallelism chosen, no rescale awaited, no
    // scaling in the history (which would make the next scale-up look ineffective).
    assert!(view.overrides.is_empty(), "{:?}", view.overrides);
    let state = world.state();
    assert!(state.overrides.is_empty() && state.rescale_requested_ms.is_none());
    assert!(state.history.of("map").is_empty(), "{:?}", state.history);
    let said = step
        .notes
        .iter()
        .find(|n| n.reason == "ScalingLimited")
        .expect("ScalingLimited");
    assert!(
        said.message
            .contains("session cluster shared does not run the adaptive scheduler")
            && said.message.contains("jobmanager.scheduler: adaptive"),
        "{}",
        said.message
    );
}

#[test]
fn a_recommendation_is_not_repeated_within_the_scaling_event_interval() {
    // Metrics-only: the busy map's recommendation is decided again at every sample. It is
    // reported once per job.autoscaler.scaling.event.interval (here 5 s), not every second.
    let metrics_only = |interval: &str| {
        with_settings(
            DEPLOYMENT,
            &[
                ("job.autoscaler.scaling.enabled", "false"),
                ("job.autoscaler.scaling.event.interval", interval),
            ],
        )
    };
    let mut world = World::with(&metrics_only("5s"), BTreeMap::new());
    let mut reported = Vec::new();
    for second in 1..=24 {
        let step = world.step(second, Some(1.0));
        assert!(
            !step
                .actions
                .iter()
                .any(|a| matches!(a, Effect::SetResourceRequirements { .. })),
            "metrics-only"
        );
        if reasons(&step).contains(&"ScalingReport") {
            reported.push(second);
        }
    }
    assert!(
        reported.len() >= 2,
        "said again once the interval passed: {reported:?}"
    );
    for pair in reported.windows(2) {
        assert!(pair[1] - pair[0] >= 5, "repeated within 5 s: {reported:?}");
    }
    // Without the interval it would have been said at every sample of a full window.
    let mut every = World::with(&metrics_only("0s"), BTreeMap::new());
    let said = (1..=24)
        .filter(|second| reasons(&every.step(*second, Some(1.0))).contains(&"ScalingReport"))
        .count();
    assert!(said > reported.len() * 2, "{said} vs {reported:?}");
}

#[test]
fn a_decision_whose_state_was_not_stored_is_decided_again_not_lost() {
    // A crash (or a failed write) before the state is stored: nothing is recorded as asked
    // for, so the same decision is made again from the same samples.
    let mut world = World::new();
    let mut second = 1;
    let first = loop {
        let step = world.decide(second, Some(1.0));
        if step
            .actions
            .iter()
            .any(|a| matches!(a, Effect::SetResourceRequirements { .. }))
        {
            break step;
        }
        world.step(second, Some(1.0));
        second += 1;
        assert!(second < 20, "no decision");
    };
    let again = world.decide(second, Some(1.0));
    assert_eq!(again.actions, first.actions);
}

#[test]
fn a_job_that_does_not_run_the_chosen_parallelism_gets_it_back_in_place() {
    let mut world = World::new();
    let mut state = AutoscalerState {
        overrides: BTreeMap::from([("map".to_string(), 3)]),
        ..AutoscalerState::default()
    };
    state.graph = Vec::new();
    world.stored = Some(StoredState {
        packed: Some(pack(&state)),
        nonce: None,
        upstream: Default::default(),
    });
    world.task_manager_replicas = 3;
    let step = world.step(100, Some(0.5));
    assert!(
        step.notes.iter().any(|n| n
            .message
            .starts_with("Restoring the chosen parallelism in place")),
        "{:?}",
        step.notes
    );
    assert_eq!(upper_bound(&world.requirements, "map"), 3);
    // Flink holds the requirements now: not written again while the job gets there.
    let step = world.step(101, Some(0.5));
    assert!(
        !step
            .actions
            .iter()
            .any(|a| matches!(a, Effect::SetResourceRequirements { .. })),
        "{:?}",
        step.actions
    );
}

#[test]
fn idle_task_managers_beyond_the_need_are_marked_then_let_go() {
    let mut world = World::new();
    world.task_manager_replicas = 3;
    let tm = |id: &str, free: u32| TaskManagerSummary {
        id: id.into(),
        slots_number: 1,
        free_slots: free,
        memory_configuration: None,
    };
    world.task_managers = Some(vec![tm("tm-a", 0), tm("tm-b", 1), tm("tm-c", 1)]);
    let pod = |name: &str, marked: bool| TaskManagerPod {
        name: name.into(),
        marked,
    };
    world.pods = Some(vec![
        pod("tm-a", true),
        pod("tm-b", false),
        pod("tm-c", false),
    ]);
    let step = world.step(1, Some(0.5));
    let marks: Vec<(String, Option<String>)> = step
        .actions
        .iter()
        .find_map(|a| match a {
            Effect::ReleaseTaskManagers { marks, .. } => Some(marks.clone()),
            _ => None,
        })
        .expect("idle TaskManagers are released");
    assert_eq!(
        marks,
        [
            ("tm-a".to_string(), None),
            ("tm-b".to_string(), Some("-1000".to_string())),
            ("tm-c".to_string(), Some("-1000".to_string())),
        ],
        "the busy one loses an earlier mark"
    );
    assert_eq!(world.task_manager_replicas, 1);
    assert!(reasons(&step).contains(&"Scaling"), "{:?}", step.notes);
}

#[test]
fn a_step_without_news_writes_nothing_and_a_reset_nonce_starts_over() {
    let mut world = World::new();
    for second in 1..=3 {
        world.step(second, Some(0.5));
    }
    assert!(
        !world.state().window.samples.is_empty(),
        "samples were stored"
    );
    let quiet = world.step(4, None);
    assert!(quiet.actions.is_empty(), "{:?}", quiet.actions);
    assert!(quiet.notes.is_empty(), "{:?}", quiet.notes);
    world
        .resource
        .spec
        .job
        .as_mut()
        .expect("job")
        .autoscaler_reset_nonce = Some(7);
    let reset = world.step(5, None);
    assert!(
        reasons(&reset).contains(&"AutoscalerReset"),
        "{:?}",
        reset.notes
    );
    assert!(world.state().window.samples.is_empty());
    assert_eq!(
        world.stored.as_ref().and_then(|s| s.nonce.as_deref()),
        Some("7")
    );
    assert!(world.step(6, None).actions.is_empty(), "reset once");
}

#[test]
fn unusable_settings_pause_the_autoscaler_and_say_why() {
    let mut world = World::new();
    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set("job.autoscaler.utilization.target", "most");
    let Enabled::Invalid(note) = step::enabled(&world.resource, &BTreeMap::new()) else {
        panic!("an unusable setting is not ignored");
    };
    assert!(
        note.message.contains("job.autoscaler.utilization.target"),
        "{}",
        note.message
    );
}

#[test]
fn task_managers_running_other_memory_than_tuned_are_redeployed_from_any_sample() {
    // Asked on every sample until they run what memory tuning chose, not only on samples
    // that make a scaling decision (a redeploy not acted on is asked for again).
    let mut world = World::new();
    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set("job.autoscaler.memory.tuning.enabled", "true");
    let Enabled::On(settings) = step::enabled(&world.resource, &BTreeMap::new()) else {
        panic!("autoscaled");
    };
    world.settings = *settings;
    let state = AutoscalerState {
        memory: Some(flink_autoscaler::memory::MemoryRecommendation {
            process: 600 << 20,
            heap: 0,
            managed: 0,
            network: 0,
            metaspace: 0,
            set: BTreeMap::new(),
            remove: Vec::new(),
        }),
        ..AutoscalerState::default()
    };
    world.stored = Some(StoredState {
        packed: Some(pack(&state)),
        nonce: None,
        upstream: Default::default(),
    });
    world.task_managers = Some(vec![TaskManagerSummary {
        id: "tm-a".into(),
        slots_number: 1,
        free_slots: 0,
        memory_configuration: Some(flink_rest::TaskManagerMemoryConfiguration {
            total_process_memory: Some(1 << 30),
        }),
    }]);
    for second in [100, 101] {
        let step = world.step(second, Some(0.5));
        let redeploy = step.view.and_then(|v| v.redeploy).unwrap_or_default();
        assert!(
            redeploy.contains("TaskManager memory 1073741824 -> 629145600"),
            "sample at {second} s: {redeploy:?}"
        );
    }
}

/// A deployment the Java operator autoscaled: its `autoscaler-<name>` ConfigMap holds
/// upstream's keys and none of ours.
#[test]
fn a_job_moved_from_the_java_operator_gets_its_chosen_parallelism_back_and_keeps_its_history() {
    let mut world = World::new();
    // A reset nonce the Java operator already acted on: the state it left is kept.
    world
        .resource
        .spec
        .job
        .as_mut()
        .expect("job")
        .autoscaler_reset_nonce = Some(3);
    let history = "map:\n  \"1970-01-01T00:01:00Z\":\n    currentParallelism: 1\n    newParallelism: 3\n    metrics:\n      TRUE_PROCESSING_RATE: {current: 10.0, average: 10.0}\n      EXPECTED_PROCESSING_RATE: {current: 30.0, average: 30.0}\n";
    world.stored = Some(StoredState {
        packed: None,
        nonce: None,
        upstream: BTreeMap::from([
            ("parallelismOverrides".to_string(), "map:3".to_string()),
            ("scalingHistory".to_string(), history.to_string()),
        ]),
    });
    world.task_manager_replicas = 3;
    let step = world.step(100, Some(0.5));
    assert_eq!(
        reasons(&step)
            .iter()
            .filter(|r| **r == "AutoscalerStateImported")
            .count(),
        1,
        "{:?}",
        step.notes
    );
    assert!(!reasons(&step).contains(&"AutoscalerReset"));
    assert!(
        step.notes.iter().any(|n| n
            .message
            .starts_with("Restoring the chosen parallelism in place")),
        "{:?}",
        step.notes
    );
    assert_eq!(upper_bound(&world.requirements, "map"), 3);
    let state = world.state();
    assert_eq!(state.overrides.get("map"), Some(&3));
    assert_eq!(state.history.0["map"][0].time_ms, 60_000);
    // Ours is written now, with the nonce: the next step reads it, not the Java operator's.
    assert_eq!(
        world.stored.as_ref().and_then(|s| s.nonce.as_deref()),
        Some("3")
    );
    let next = world.step(101, Some(0.5));
    assert!(!reasons(&next).contains(&"AutoscalerStateImported"));
    assert!(!reasons(&next).contains(&"AutoscalerReset"));
}

/// The state ConfigMap is in the tenant's namespace: a small gzip that inflates past the limit
/// is refused (the autoscaler starts over and says so), not read whole.
#[test]
fn a_stored_state_that_inflates_past_the_limit_is_refused_not_read_whole() {
    use std::io::Write as _;
    let padded = |mib: usize| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..mib {
            gz.write_all(&chunk).expect("gzip");
        }
        gz.write_all(b"{}").expect("gzip");
        gz.finish().expect("gzip")
    };
    assert_eq!(step::unpack(&padded(1)), Some(AutoscalerState::default()));
    let bomb = padded(17);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    assert_eq!(step::unpack(&bomb), None);
}
