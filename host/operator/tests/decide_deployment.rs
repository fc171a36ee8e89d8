//! The FlinkDeployment decision, scenario by scenario, without a cluster: each test feeds the
//! resource and an observation, then feeds the decided status back in as the next reconcile
//! would, like the controller does.

use flink_api::deployment::JobManagerDeploymentStatus;
use flink_api::{FlinkDeployment, FlinkJobState, ReconciliationState, ResourceLifecycleState};
use flink_operator::reconcile::autoscaling::AutoscalerView;
use flink_operator::reconcile::autoscaling::step::AutoscalerStep;
use flink_operator::reconcile::deployment::{DecideContext, FINALIZER, decide};
use flink_operator::reconcile::observed::{
    ObservedCheckpoint, ObservedCluster, ObservedDeployment, ObservedFlink, ObservedJob,
    ObservedOperation,
};
use flink_operator::reconcile::upgrade_policy::{UpgradePolicy, UpgradeVerdict, pending_upgrade};
use flink_operator::reconcile::{Effect, Intervals, Plan};
use flink_operator::render::GENERATION_ANNOTATION;
use std::collections::BTreeMap;

const APP: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata: {name: counter, namespace: default, uid: 6f1c0c4e-1111-2222-3333-444455556666, generation: 1}
spec:
  image: flink:2.3
  flinkVersion: v2_3
  mode: standalone
  flinkConfiguration: {taskmanager.numberOfTaskSlots: '2'}
  jobManager: {resource: {memory: 768m, cpu: 0.5}}
  taskManager: {resource: {memory: 800m, cpu: 0.5}}
  job: {jarURI: 'local:///opt/flink/usrlib/job.jar', entryClass: Main, parallelism: 2, upgradeMode: stateless}
";

struct World {
    resource: FlinkDeployment,
    observed: ObservedCluster,
    now: i64,
    /// What the tenant's upgrade-strategy plugin says, if it has one.
    upgrade_policy: Option<UpgradePolicy>,
    /// The operator's redeploy (revision annotation) the observed cluster carries.
    revision: i64,
    /// Flink configuration defaults of the operator.
    defaults: BTreeMap<String, String>,
    /// What the autoscaler's step handed the decision, when the job is autoscaled.
    autoscaler: Option<AutoscalerStep>,
    /// Why the resource's tenant cannot be told, if it cannot.
    tenancy: Option<flink_api::validation::FieldError>,
}

fn app() -> World {
    let mut resource: FlinkDeployment = serde_saphyr::from_str(APP).expect("fixture");
    resource.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    World {
        resource,
        observed: ObservedCluster::default(),
        now: 1_000_000,
        upgrade_policy: None,
        revision: 0,
        defaults: BTreeMap::new(),
        autoscaler: None,
        tenancy: None,
    }
}

impl World {
    fn decide(&mut self) -> Plan<flink_api::FlinkDeploymentStatus> {
        let intervals = Intervals::default();
        let ctx = DecideContext {
            now_ms: self.now,
            intervals: &intervals,
            defaults: &self.defaults,
            upgrade_policy: self.upgrade_policy.as_ref(),
            autoscaler: self.autoscaler.as_ref(),
            tenancy: self.tenancy.as_ref(),
        };
        self.now += 1_000;
        decide(&self.resource, &self.observed, &ctx)
    }

    /// Decides and records the status as the controller would after acting.
    fn reconcile(&mut self) -> Plan<flink_api::FlinkDeploymentStatus> {
        let plan = self.decide();
        self.resource.status = Some(plan.status.clone());
        plan
    }

    /// The user deletes the resource now.
    fn delete(&mut self) {
        self.resource.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::from_millisecond(self.now).expect("a time"),
            ));
    }

    fn edit(&mut self, change: impl FnOnce(&mut flink_api::FlinkDeploymentSpec)) {
        change(&mut self.resource.spec);
        *self.resource.metadata.generation.get_or_insert(0) += 1;
    }

    /// The cluster of `generation` runs with its job in `state`.
    fn cluster_runs(&mut self, generation: i64, job: FlinkJobState) {
        let deployment = ObservedDeployment {
            generation: Some(generation),
            revision: self.revision,
            replicas: 1,
            ready_replicas: 1,
            deleting: false,
        };
        let id = self
            .resource
            .status
            .as_ref()
            .and_then(|s| s.job_status.as_ref())
            .and_then(|j| j.job_id.clone())
            .expect("a job id was recorded");
        self.observed = ObservedCluster {
            job_manager: Some(deployment.clone()),
            task_manager: Some(deployment),
            pods: 2,
            flink: ObservedFlink::Reachable {
                jobs: vec![ObservedJob {
                    id,
                    name: "counter".into(),
                    state: job,
                    start_time: 5,
                    last_modification: 6,
                }],
                flink_version: Some("2.3.0".into()),
                flink_revision: None,
            },
            ..Default::default()
        };
    }

    fn cluster_gone(&mut self) {
        self.observed = ObservedCluster::default();
    }

    fn status(&self) -> &flink_api::FlinkDeploymentStatus {
        self.resource.status.as_ref().expect("status")
    }

    fn lifecycle(&self) -> ResourceLifecycleState {
        self.status().lifecycle_state.expect("lifecycle")
    }

    fn job_id(&self) -> String {
        self.status()
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.clone())
            .expect("job id")
    }
}

/// The annotation `key` of the JobManager Deployment the plan applies.
fn applied_annotation(plan: &Plan<flink_api::FlinkDeploymentStatus>, key: &str) -> Option<String> {
    plan.actions.iter().find_map(|a| match a {
        Effect::ApplyCluster(objects) => objects.job_manager["metadata"]["annotations"][key]
            .as_str()
            .map(String::from),
        _ => None,
    })
}

/// The Flink configuration value of `key` in the ConfigMap the plan applies.
fn applied_config(plan: &Plan<flink_api::FlinkDeploymentStatus>, key: &str) -> Option<String> {
    plan.actions.iter().find_map(|a| match a {
        Effect::ApplyCluster(objects) => objects.config_map["data"]["config.yaml"]
            .as_str()
            .and_then(|c| serde_saphyr::from_str::<BTreeMap<String, String>>(c).ok())
            .and_then(|config| config.get(key).cloned()),
        _ => None,
    })
}

fn applied_generation(plan: &Plan<flink_api::FlinkDeploymentStatus>) -> Option<String> {
    applied_annotation(plan, GENERATION_ANNOTATION)
}

#[test]
fn a_new_deployment_records_its_intent_then_applies_the_cluster() {
    let mut world = app();
    world.resource.metadata.finalizers = None;
    let plan = world.reconcile();
    assert_eq!(plan.actions[0], Effect::AddFinalizer);
    let intent = plan.intent.as_ref().expect("write-ahead intent");
    let reconciliation = intent.reconciliation_status.as_ref().expect("recorded");
    assert_eq!(reconciliation.state, ReconciliationState::Upgrading);
    assert!(
        reconciliation
            .last_reconciled_spec
            .as_deref()
            .unwrap_or_default()
            .contains("\"generation\":1")
    );
    let intended_id = intent
        .job_status
        .as_ref()
        .and_then(|j| j.job_id.clone())
        .expect("job id before submit");
    assert_eq!(applied_generation(&plan).as_deref(), Some("1"));
    assert_eq!(
        world
            .status()
            .reconciliation_status
            .as_ref()
            .map(|r| r.state),
        Some(ReconciliationState::Deployed)
    );
    assert_eq!(world.job_id(), intended_id);
    assert_eq!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Deploying)
    );
    assert!(plan.notes.iter().any(|n| n.reason == "Submit"));
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Deployed);
}

#[test]
fn a_crash_after_the_intent_resumes_without_deploying_twice() {
    let mut world = app();
    let plan = world.decide();
    world.resource.status = plan.intent.clone();
    // The apply happened before the crash: the JobManager Deployment carries generation 1.
    world.cluster_runs(1, FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        world
            .status()
            .reconciliation_status
            .as_ref()
            .map(|r| r.state),
        Some(ReconciliationState::Deployed)
    );
}

#[test]
fn a_running_job_becomes_stable_and_then_nothing_changes() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    assert_eq!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Ready)
    );
    assert_eq!(
        world
            .status()
            .cluster_info
            .get("flink-version")
            .map(String::as_str),
        Some("2.3.0")
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.message == "Job status changed from RECONCILING to RUNNING"),
        "{:?}",
        plan.notes
    );
    let before = world.status().clone();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty() && plan.intent.is_none() && plan.notes.is_empty());
    assert_eq!(plan.status, before, "an idle reconcile changes nothing");
    assert_eq!(plan.requeue, Intervals::default().reconcile);
}

#[test]
fn a_parallelism_change_tears_down_waits_for_the_pods_then_deploys_the_new_generation() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    let old_id = world.job_id();
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(4));
    let plan = world.reconcile();
    assert_eq!(
        plan.intent
            .as_ref()
            .and_then(|s| s.reconciliation_status.as_ref())
            .map(|r| r.state),
        Some(ReconciliationState::Upgrading)
    );
    assert_eq!(
        plan.actions,
        vec![
            Effect::CancelJob {
                cluster: "counter".into(),
                job_id: old_id.clone(),
                best_effort: true
            },
            Effect::DeleteCluster
        ]
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "SpecChanged" && n.message.contains("spec.job.parallelism"))
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Upgrading);
    // The Deployments are going but a pod is still terminating: no new cluster yet.
    world.observed = ObservedCluster {
        pods: 1,
        ..Default::default()
    };
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("2"));
    assert_ne!(world.job_id(), old_id, "a new deployment gets a new job id");
    world.cluster_runs(2, FlinkJobState::Running);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
}

#[test]
fn suspend_stops_the_cluster_and_resume_deploys_it_again() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Suspended);
    let plan = world.reconcile();
    assert!(plan.actions.contains(&Effect::DeleteCluster));
    world.cluster_gone();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Suspended);
    assert_eq!(
        world.status().job_status.as_ref().and_then(|j| j.state),
        Some(FlinkJobState::Suspended)
    );
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty() && plan.notes.is_empty(),
        "a suspended deployment stays quiet"
    );
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Running);
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("3"));
    assert!(plan.notes.iter().any(|n| n.message.contains("resuming")));
}

#[test]
fn an_invalid_edit_is_reported_and_the_running_job_is_kept() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    let recorded = world.status().reconciliation_status.clone();
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(0));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        world.status().reconciliation_status,
        recorded,
        "the last valid spec stays recorded"
    );
    let error = world.status().error.clone().expect("error in status");
    assert!(
        error.contains("spec.job.parallelism") && error.contains("keeps running"),
        "{error}"
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "ValidationError" && n.warning)
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    let plan = world.reconcile();
    assert!(
        plan.notes.is_empty(),
        "the same error is not announced twice"
    );
}

#[test]
fn a_crash_looping_job_manager_is_reported_without_a_hot_loop() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.observed.flink = ObservedFlink::NotAsked;
    world.observed.waiting = vec![crash_looping()];
    let plan = world.reconcile();
    assert_eq!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Error)
    );
    assert!(
        world
            .status()
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("CrashLoopBackOff")
    );
    assert_eq!(plan.requeue, Intervals::default().reconcile);
}

#[test]
fn a_resource_whose_tenant_cannot_be_told_is_held_like_an_invalid_spec() {
    let mut world = app();
    world.tenancy = Some(flink_api::validation::FieldError::new(
        "metadata.labels.example.com/tenant",
        "is not set in namespace shared, which tenants share; set the label example.com/tenant to one of a, b",
    ));
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "nothing deployed: {:?}",
        plan.actions
    );
    let error = world.status().error.clone().unwrap_or_default();
    assert!(
        error.contains("metadata.labels.example.com/tenant"),
        "{error}"
    );
    world.tenancy = None;
    let plan = world.reconcile();
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyCluster(_))),
        "deployed once the label is fixed: {:?}",
        plan.actions
    );
}

#[test]
fn a_deletion_whose_cluster_never_goes_gives_up_after_the_cleanup_timeout() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world.delete();
    let plan = world.reconcile();
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "{:?}",
        plan.actions
    );
    // The cluster's pods never go (a node lost, a stuck finalizer of their own).
    world.now += 299_000;
    let plan = world.reconcile();
    assert!(!plan.actions.contains(&Effect::RemoveFinalizer));
    world.now += 2_000;
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::RemoveFinalizer]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.warning && n.reason == "CleanupFailed" && n.message.contains("300 s")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn deleting_a_session_cluster_waits_for_its_session_jobs_then_cleans_up() {
    let mut world = app();
    world.resource.spec.job = None;
    world.reconcile();
    world.observed = ObservedCluster {
        job_manager: Some(ObservedDeployment {
            generation: Some(1),
            revision: 0,
            replicas: 1,
            ready_replicas: 1,
            deleting: false,
        }),
        pods: 1,
        session_jobs: vec!["job-a".into()],
        ..Default::default()
    };
    world.delete();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert!(plan.notes.iter().any(|n| n.message.contains("job-a")));
    world.observed.session_jobs.clear();
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::RemoveFinalizer]);
}

#[test]
fn a_new_restart_nonce_redeploys_and_ignored_fields_do_not() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world.edit(|spec| {
        spec.flink_configuration
            .get_or_insert_default()
            .set("kubernetes.operator.reconcile.interval", "30s")
    });
    let plan = world.reconcile();
    assert_eq!(world.status().error, None);
    assert!(
        plan.actions.is_empty(),
        "operator settings do not redeploy: {:?}",
        plan.actions
    );
    let recorded = world
        .status()
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.last_reconciled_spec.clone())
        .unwrap_or_default();
    assert!(recorded.contains("\"generation\":2"), "{recorded}");
    world.edit(|spec| spec.restart_nonce = Some(7));
    let plan = world.reconcile();
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "{:?}",
        plan.actions
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.message.contains("spec.restartNonce"))
    );
}

// ---- stateful upgrades ----

const SAVEPOINT: &str = "file:///tmp/sp/savepoint-1";
const CHECKPOINT: &str = "file:///tmp/cp/abc/chk-7";

/// The FlinkStateSnapshots a plan creates.
fn snapshot_records(actions: &[Effect]) -> Vec<Effect> {
    actions
        .iter()
        .filter(|a| matches!(a, Effect::CreateSnapshot(_)))
        .cloned()
        .collect()
}

/// A plan's actions but the FlinkStateSnapshots it creates.
fn without_snapshot_records(actions: &[Effect]) -> Vec<Effect> {
    actions
        .iter()
        .filter(|a| !matches!(a, Effect::CreateSnapshot(_)))
        .cloned()
        .collect()
}

fn stateful(mode: flink_api::UpgradeMode) -> World {
    with_settings(mode, &[])
}

impl World {
    fn progress(&self) -> Option<flink_api::UpgradeProgress> {
        self.status().upgrade.clone()
    }

    fn recorded_generation(&self) -> String {
        self.status()
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.clone())
            .unwrap_or_default()
    }

    fn job_now(&mut self, state: FlinkJobState) {
        if let ObservedFlink::Reachable { jobs, .. } = &mut self.observed.flink {
            jobs[0].state = state;
        }
    }
}

fn restore_path(plan: &Plan<flink_api::FlinkDeploymentStatus>) -> Option<String> {
    applied_config(plan, "execution.state-recovery.path")
}

#[test]
fn a_savepoint_upgrade_records_the_trigger_then_the_path_before_deleting_anything() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    let trigger = match &plan.actions[..] {
        [Effect::StopWithSavepoint { trigger_id, .. }] => trigger_id.clone(),
        other => panic!("expected one stop-with-savepoint, got {other:?}"),
    };
    let intent = plan
        .intent
        .as_ref()
        .and_then(|s| s.upgrade.clone())
        .expect("the trigger is written ahead");
    assert_eq!(intent.trigger_id.as_deref(), Some(trigger.as_str()));
    assert_eq!(intent.step, flink_api::UpgradeStep::Savepointing);
    assert!(
        world.recorded_generation().contains("\"generation\":1"),
        "nothing is recorded as deployed yet"
    );
    assert!(
        flink_operator::reconcile::deployment::observation_needs(&world.resource, &world.defaults)
            .snapshot_resources,
        "the job's snapshots are listed while its upgrade savepoint is awaited (to trim them)"
    );
    // The savepoint runs: nothing else happens, and no second trigger is sent.
    world.observed.savepoint = Some(ObservedOperation::InProgress);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    // It completes (the job stops): the path is recorded with UPGRADING before the delete.
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    let intent = plan.intent.clone().expect("intent before the delete");
    assert_eq!(
        intent
            .upgrade
            .as_ref()
            .and_then(|p| p.restore_path.as_deref()),
        Some(SAVEPOINT)
    );
    assert_eq!(
        intent
            .job_status
            .as_ref()
            .and_then(|j| j.upgrade_savepoint_path.as_deref()),
        Some(SAVEPOINT)
    );
    assert_eq!(
        intent.reconciliation_status.as_ref().map(|r| r.state),
        Some(ReconciliationState::Upgrading)
    );
    // The savepoint is also recorded as an UPGRADE FlinkStateSnapshot (snapshot resources
    // are on by default), once: named after the upgrade's start.
    let [Effect::CreateSnapshot(record)] = &snapshot_records(&plan.actions)[..] else {
        panic!("expected one snapshot record: {:?}", plan.actions)
    };
    let recorded = record.spec.savepoint.clone().unwrap_or_default();
    assert_eq!(recorded.path.as_deref(), Some(SAVEPOINT));
    assert_eq!(recorded.already_exists, Some(true));
    assert_eq!(
        record
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("snapshot.trigger-type"))
            .map(String::as_str),
        Some("UPGRADE")
    );
    assert_eq!(
        without_snapshot_records(&plan.actions),
        vec![Effect::DeleteCluster],
        "a stopped job is not cancelled again"
    );
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan).as_deref(), Some(SAVEPOINT));
    assert_eq!(applied_generation(&plan).as_deref(), Some("2"));
    let info = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.clone())
        .unwrap_or_default();
    assert_eq!(
        info.last_savepoint.and_then(|s| s.location).as_deref(),
        Some(SAVEPOINT)
    );
    assert!(
        info.savepoint_history.is_empty(),
        "its history is the FlinkStateSnapshots (upstream)"
    );
    assert_eq!(world.progress(), None);
}

#[test]
fn the_savepoint_format_setting_chooses_the_upgrade_savepoints_format() {
    let mut world = with_settings(
        flink_api::UpgradeMode::Savepoint,
        &[("kubernetes.operator.savepoint.format.type", "NATIVE")],
    );
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        matches!(
            &plan.actions[..],
            [Effect::StopWithSavepoint {
                format: flink_api::SavepointFormatType::Native,
                ..
            }]
        ),
        "{:?}",
        plan.actions
    );
}

#[test]
fn without_snapshot_resources_an_upgrade_savepoint_goes_into_the_status_history() {
    let mut world = with_settings(
        flink_api::UpgradeMode::Savepoint,
        &[("kubernetes.operator.snapshot.resource.enabled", "false")],
    );
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    world.reconcile();
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster], "no resource");
    let history = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.as_ref())
        .map(|i| i.savepoint_history.len());
    assert_eq!(history, Some(1), "the savepoint is in the history");
}

#[test]
fn a_crash_at_any_step_of_a_savepoint_upgrade_resumes_without_losing_the_path() {
    // Run the upgrade; before every step, lose the final status (keep only the intent, or what
    // was stored before) and decide again, as an operator restarted at that point would.
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let observations = [
        None,
        Some(ObservedOperation::InProgress),
        Some(ObservedOperation::Completed(SAVEPOINT.into())),
    ];
    let mut triggers = std::collections::BTreeSet::new();
    for savepoint in observations {
        let stored = world.resource.status.clone();
        world.observed.savepoint = savepoint.clone();
        if matches!(savepoint, Some(ObservedOperation::Completed(_))) {
            world.job_now(FlinkJobState::Finished);
        }
        let plan = world.decide();
        world.resource.status = plan.intent.clone().or(stored);
        let again = world.reconcile();
        for action in plan.actions.iter().chain(&again.actions) {
            match action {
                Effect::StopWithSavepoint { trigger_id, .. } => {
                    triggers.insert(trigger_id.clone());
                }
                Effect::DeleteCluster => {
                    let recorded = world
                        .status()
                        .job_status
                        .as_ref()
                        .and_then(|j| j.upgrade_savepoint_path.clone());
                    assert_eq!(
                        recorded.as_deref(),
                        Some(SAVEPOINT),
                        "deleted before the path was recorded"
                    );
                }
                Effect::ApplyCluster(_) => panic!("deployed while the old cluster runs"),
                _ => {}
            }
        }
    }
    assert_eq!(
        triggers.len(),
        1,
        "a retry is the same savepoint: {triggers:?}"
    );
    world.observed = ObservedCluster::default();
    let stored = world.resource.status.clone();
    let plan = world.decide();
    world.resource.status = plan.intent.clone().or(stored);
    let plan = world.reconcile();
    assert_eq!(
        restore_path(&plan).as_deref(),
        Some(SAVEPOINT),
        "the deploy after a crash still restores"
    );
}

#[test]
fn a_failed_savepoint_keeps_the_job_running_and_retries_with_a_new_trigger() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let first = world.reconcile().actions;
    world.observed.savepoint = Some(ObservedOperation::Failed(
        "the savepoint directory is not writable".into(),
    ));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "SavepointError" && n.message.contains("not writable")),
        "{:?}",
        plan.notes
    );
    assert!(
        world
            .status()
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("SavepointError")
    );
    assert_eq!(
        plan.requeue,
        Intervals::default().reconcile,
        "retried at the normal pace"
    );
    world.observed.savepoint = None;
    let retry = world.reconcile().actions;
    assert!(matches!(&retry[..], [Effect::StopWithSavepoint { .. }]));
    assert_ne!(first, retry, "a new attempt has a new trigger id");
}

#[test]
fn reverting_the_change_before_the_savepoint_was_requested_abandons_the_upgrade() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.observed.flink = ObservedFlink::Unreachable("timeout".into());
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "nothing can be secured while Flink does not answer"
    );
    assert!(world.progress().is_some());
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(2));
    world.cluster_runs(1, FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert_eq!(world.progress(), None);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
}

#[test]
fn a_last_state_upgrade_cancels_then_restores_from_the_latest_retained_checkpoint() {
    let mut world = stateful(flink_api::UpgradeMode::LastState);
    let old = world.job_id();
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "no checkpoint yet: held, {:?}",
        plan.actions
    );
    assert!(
        world
            .status()
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("completed checkpoint")
    );
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: "file:///tmp/cp/abc/chk-6".into(),
        completed_at: 1,
    });
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        vec![Effect::CancelJob {
            cluster: "counter".into(),
            job_id: old,
            best_effort: false
        }]
    );
    assert_eq!(
        world.progress().map(|p| p.step),
        Some(flink_api::UpgradeStep::Cancelling)
    );
    // Cancelled; a later checkpoint completed before the cancel and is the one to use.
    world.job_now(FlinkJobState::Canceled);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 2,
    });
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan).as_deref(), Some(CHECKPOINT));
}

#[test]
fn a_savepoint_job_that_is_not_running_falls_back_to_its_latest_checkpoint() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.job_now(FlinkJobState::Restarting);
    world.reconcile();
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 2,
    });
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.notes.iter().any(|n| n.reason == "SavepointFallback"),
        "{:?}",
        plan.notes
    );
    assert!(
        matches!(
            &plan.actions[..],
            [Effect::CancelJob {
                best_effort: false,
                ..
            }]
        ),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_stateful_suspend_keeps_the_savepoint_and_resume_restores_it() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Suspended);
    world.reconcile();
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert_eq!(
        without_snapshot_records(&plan.actions),
        vec![Effect::DeleteCluster]
    );
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "Suspended" && n.message.contains(SAVEPOINT)),
        "{:?}",
        plan.notes
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Suspended);
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Running);
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan).as_deref(), Some(SAVEPOINT));
}

#[test]
fn switching_to_stateless_drops_the_state_and_says_so() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| {
        let job = spec.job.as_mut().expect("job");
        job.upgrade_mode = flink_api::UpgradeMode::Stateless;
        job.parallelism = Some(3);
    });
    let plan = world.reconcile();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "StatelessUpgrade" && n.warning)
    );
    assert!(plan.actions.contains(&Effect::DeleteCluster));
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan), None);
}

#[test]
fn a_failed_job_reports_flinks_reason_once() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Failed);
    world.observed.job_failure = Some("Cannot find savepoint at file:/nowhere".into());
    let plan = world.reconcile();
    let error = world.status().error.clone().unwrap_or_default();
    assert!(
        error.contains("JobFailed") && error.contains("file:/nowhere"),
        "{error}"
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Failed);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.warning && n.message.contains("file:/nowhere"))
    );
    // Observation no longer fetches the exceptions once they are reported.
    world.observed.job_failure = None;
    let plan = world.reconcile();
    assert!(plan.notes.is_empty(), "announced once: {:?}", plan.notes);
    let kept = world.status().error.clone().unwrap_or_default();
    assert_eq!(kept, error, "the reported reason is kept");
}

#[test]
fn a_savepoint_redeploy_nonce_redeploys_from_the_initial_savepoint_without_taking_one() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| {
        let job = spec.job.as_mut().expect("job");
        job.initial_savepoint_path = Some("file:///backups/savepoint-42".into());
        job.savepoint_redeploy_nonce = Some(1);
    });
    let plan = world.reconcile();
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::StopWithSavepoint { .. })),
        "{:?}",
        plan.actions
    );
    assert!(plan.actions.contains(&Effect::DeleteCluster));
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(
        restore_path(&plan).as_deref(),
        Some("file:///backups/savepoint-42")
    );
}

#[test]
fn savepoint_on_deletion_stops_the_job_with_a_savepoint_before_the_cluster_goes() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set("kubernetes.operator.job.savepoint-on-deletion", "true");
    world.delete();
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert_eq!(
        without_snapshot_records(&plan.actions),
        vec![Effect::DeleteCluster]
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "SavepointOnDeletion" && n.message.contains(SAVEPOINT))
    );
    let plan = world.reconcile();
    assert!(
        !plan.notes.iter().any(|n| n.reason == "SavepointOnDeletion"),
        "said once"
    );
    world.observed = ObservedCluster::default();
    assert_eq!(world.reconcile().actions, vec![Effect::RemoveFinalizer]);
}

fn by_plugin() -> flink_api::PolicyDecision {
    flink_api::PolicyDecision {
        extension_point: "upgrade-strategy".into(),
        tenant: "team-a".into(),
        plugin: "windows".into(),
        digest: "sha256:00".into(),
        outcome: String::new(),
        message: None,
    }
}

fn policy_says(world: &mut World, verdict: UpgradeVerdict) {
    world.upgrade_policy = Some(UpgradePolicy {
        by: by_plugin(),
        verdict,
    });
}

#[test]
fn an_upgrade_strategy_that_says_wait_leaves_the_job_alone_until_the_time() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    assert!(
        pending_upgrade(&world.resource).is_some(),
        "the controller asks the plugin"
    );
    let until = world.now + 3_600_000;
    policy_says(
        &mut world,
        UpgradeVerdict::WaitUntil {
            until_ms: until,
            reason: "outside the window".into(),
        },
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(world.progress(), None, "no upgrade started");
    assert!(world.recorded_generation().contains("\"generation\":1"));
    assert!(plan.requeue <= std::time::Duration::from_secs(3_600));
    let record = &world.status().policies[0];
    assert_eq!(
        (record.plugin.as_str(), record.outcome.as_str()),
        ("windows", "Applied")
    );
    assert!(
        record
            .message
            .as_deref()
            .unwrap()
            .contains("outside the window")
    );
    assert_eq!(
        plan.notes
            .iter()
            .filter(|n| n.reason == "UpgradeWaiting")
            .count(),
        1
    );
    // Asked again with the same answer: no second event.
    let plan = world.reconcile();
    assert!(
        plan.notes.iter().all(|n| n.reason != "UpgradeWaiting"),
        "{:?}",
        plan.notes
    );
    // The window opens: the plugin says proceed, the savepoint upgrade starts.
    policy_says(
        &mut world,
        UpgradeVerdict::Proceed {
            mode: flink_api::UpgradeMode::Savepoint,
            savepoint_first: false,
            reason: "inside the window".into(),
        },
    );
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
    // Under way, the plugin is no longer asked.
    assert!(pending_upgrade(&world.resource).is_none());
}

#[test]
fn an_upgrade_strategy_may_choose_a_savepoint_for_a_last_state_job() {
    let mut world = stateful(flink_api::UpgradeMode::LastState);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    policy_says(
        &mut world,
        UpgradeVerdict::Proceed {
            mode: flink_api::UpgradeMode::LastState,
            savepoint_first: true,
            reason: "stateful: through a savepoint".into(),
        },
    );
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
    assert_eq!(
        world.progress().map(|p| p.mode),
        Some(flink_api::UpgradeMode::Savepoint)
    );
    // The next reconcile continues in the chosen mode although the spec says last-state.
    world.upgrade_policy = None;
    world.observed.savepoint = Some(ObservedOperation::InProgress);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        world.progress().map(|p| p.mode),
        Some(flink_api::UpgradeMode::Savepoint)
    );
}

#[test]
fn a_refusal_or_a_failed_plugin_keeps_the_running_job_and_says_why() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    policy_says(
        &mut world,
        UpgradeVerdict::Refuse {
            reason: "no stateless upgrades of jobs with state".into(),
        },
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    let error = world.status().error.clone().unwrap();
    assert!(
        error.contains("PolicyError")
            && error.contains("refused this change: no stateless upgrades"),
        "{error}"
    );
    assert_eq!(world.progress(), None);

    policy_says(
        &mut world,
        UpgradeVerdict::Unavailable {
            reason: "the plugin ran out of fuel".into(),
        },
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert!(
        world
            .status()
            .error
            .clone()
            .unwrap()
            .contains("could not decide (the plugin ran out of fuel); the upgrade is held")
    );
    assert_eq!(world.status().policies[0].outcome, "Held");
    assert!(
        plan.requeue <= Intervals::default().progress,
        "retried soon"
    );
}

#[test]
fn suspending_is_never_delayed_by_an_upgrade_strategy() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Suspended);
    assert!(pending_upgrade(&world.resource).is_none());
    policy_says(
        &mut world,
        UpgradeVerdict::Refuse {
            reason: "never".into(),
        },
    );
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}

// ---- rollback, stability and health ----

use flink_operator::reconcile::observed::JobCounters;
use flink_operator::render::REVISION_ANNOTATION;

/// An application in `mode` with `settings` in its configuration, deployed and running.
fn with_settings(mode: flink_api::UpgradeMode, settings: &[(&str, &str)]) -> World {
    let mut world = app();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = mode;
    let config = world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default();
    for (key, value) in settings {
        config.set(key, *value);
    }
    config.set("execution.checkpointing.savepoint-dir", "file:///tmp/sp");
    config.set("execution.checkpointing.dir", "file:///tmp/cp");
    world.reconcile();
    assert_eq!(world.status().error, None);
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world
}

fn counted(world: &mut World, restarts: i64, checkpoints: i64) {
    world.observed.counters = Some(JobCounters {
        restarts: Some(restarts),
        completed_checkpoints: Some(checkpoints),
        last_checkpoint_at: (checkpoints > 0).then_some(world.now),
    });
}

fn applied_revision(plan: &Plan<flink_api::FlinkDeploymentStatus>) -> Option<String> {
    applied_annotation(plan, REVISION_ANNOTATION)
}

fn applied_parallelism(plan: &Plan<flink_api::FlinkDeploymentStatus>) -> Option<String> {
    applied_config(plan, "parallelism.default")
}

fn reasons(plan: &Plan<flink_api::FlinkDeploymentStatus>) -> Vec<&'static str> {
    plan.notes.iter().map(|n| n.reason).collect()
}

fn reconciliation_state(world: &World) -> Option<ReconciliationState> {
    world
        .status()
        .reconciliation_status
        .as_ref()
        .map(|r| r.state)
}

/// A savepoint upgrade to parallelism 3 (generation 2) whose new cluster is deployed.
fn upgraded_from_savepoint(world: &mut World) {
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    world.reconcile();
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    world.reconcile();
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("2"));
    assert_eq!(
        world
            .status()
            .health
            .as_ref()
            .and_then(|h| h.restored_from.as_deref()),
        Some(SAVEPOINT)
    );
}

const ROLLBACK: &[(&str, &str)] = &[
    ("kubernetes.operator.deployment.rollback.enabled", "true"),
    ("kubernetes.operator.deployment.readiness.timeout", "60s"),
];

#[test]
fn a_deployment_not_stable_in_time_is_rolled_back_with_the_state_it_started_from() {
    let mut world = with_settings(flink_api::UpgradeMode::Savepoint, ROLLBACK);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    upgraded_from_savepoint(&mut world);
    // The new job fails at once (it never completes a checkpoint).
    world.cluster_runs(2, FlinkJobState::Failed);
    counted(&mut world, 0, 0);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(
        plan.requeue <= std::time::Duration::from_secs(60),
        "looks again by the deadline: {:?}",
        plan.requeue
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Failed);
    world.now += 60_000;
    // The rollback: written ahead, then the failed job's state secured without Flink's help.
    let stored = world.resource.status.clone();
    let plan = world.decide();
    assert!(reasons(&plan).contains(&"Rollback"), "{:?}", plan.notes);
    let intent = plan.intent.clone().expect("the rollback is written ahead");
    assert_eq!(
        intent.reconciliation_status.as_ref().map(|r| r.state),
        Some(ReconciliationState::RollingBack)
    );
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    assert_eq!(
        intent
            .upgrade
            .as_ref()
            .and_then(|p| p.restore_path.as_deref()),
        Some(SAVEPOINT),
        "the path is recorded before the cluster is deleted"
    );
    // An operator restarted right after the intent resumes the rollback.
    world.resource.status = Some(intent);
    let again = world.reconcile();
    assert_eq!(
        again.actions,
        vec![Effect::DeleteCluster],
        "{:?}",
        again.notes
    );
    assert_ne!(world.resource.status, stored);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::RollingBack);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("2"));
    assert_eq!(applied_revision(&plan).as_deref(), Some("1"));
    assert_eq!(
        applied_parallelism(&plan).as_deref(),
        Some("2"),
        "the stable spec"
    );
    assert_eq!(restore_path(&plan).as_deref(), Some(SAVEPOINT));
    assert_eq!(
        reconciliation_state(&world),
        Some(ReconciliationState::RolledBack)
    );
    // The rolled-back cluster runs: the user's spec is not deployed again until it changes.
    world.revision = 1;
    world.cluster_runs(2, FlinkJobState::Running);
    counted(&mut world, 0, 1);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::RolledBack);
    world.now += 600_000;
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "stays rolled back: {:?}",
        plan.actions
    );
    // A new change upgrades from what runs (a savepoint of the rolled-back job).
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(4));
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_crash_looping_job_manager_is_rolled_back_unless_its_newest_state_is_unknown() {
    let mut world = with_settings(flink_api::UpgradeMode::Savepoint, ROLLBACK);
    upgraded_from_savepoint(&mut world);
    world.cluster_runs(2, FlinkJobState::Running);
    world.observed.flink = ObservedFlink::NotAsked;
    world.observed.waiting = vec![crash_looping()];
    world.now += 61_000;
    let mut blocked = World {
        resource: world.resource.clone(),
        observed: world.observed.clone(),
        now: world.now,
        upgrade_policy: None,
        revision: 0,
        defaults: BTreeMap::new(),
        autoscaler: None,
        tenancy: None,
    };
    let plan = world.reconcile();
    assert!(reasons(&plan).contains(&"Rollback"), "{:?}", plan.notes);
    assert!(
        reasons(&plan).contains(&"StateFallback"),
        "{:?}",
        plan.notes
    );
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    // Had the failing job completed a checkpoint, only its JobManager would know the newest.
    blocked
        .resource
        .status
        .as_mut()
        .and_then(|s| s.health.as_mut())
        .expect("health")
        .checkpointed = true;
    let plan = blocked.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let error = blocked.status().error.clone().unwrap_or_default();
    assert!(error.contains("manual restore required"), "{error}");
}

#[test]
fn richer_stability_rules_hold_the_stable_spec_until_they_are_met() {
    let mut world = with_settings(
        flink_api::UpgradeMode::Stateless,
        &[
            (
                "kubernetes.operator.deployment.stability.min-running-time",
                "30s",
            ),
            (
                "kubernetes.operator.deployment.stability.min-completed-checkpoints",
                "2",
            ),
        ],
    );
    // Running since 6 ms after the epoch in the fixture: move the start to now.
    if let ObservedFlink::Reachable { jobs, .. } = &mut world.observed.flink {
        jobs[0].last_modification = world.now;
    }
    counted(&mut world, 0, 1);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Deployed);
    let condition = world.status().conditions[0].message.clone();
    assert!(condition.contains("Not stable yet"), "{condition}");
    assert!(
        condition.contains("1 of 2 completed checkpoints"),
        "{condition}"
    );
    world.now += 31_000;
    counted(&mut world, 0, 2);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
}

#[test]
fn too_many_restarts_restart_the_job_from_its_latest_checkpoint_as_a_new_revision() {
    let mut world = with_settings(
        flink_api::UpgradeMode::LastState,
        &[
            ("kubernetes.operator.cluster.health-check.enabled", "true"),
            (
                "kubernetes.operator.cluster.health-check.restarts.threshold",
                "2",
            ),
            (
                "kubernetes.operator.cluster.health-check.restarts.window",
                "60s",
            ),
        ],
    );
    let old_job = world.job_id();
    counted(&mut world, 0, 4);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    world.now += 10_000;
    counted(&mut world, 3, 5);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: world.now,
    });
    let plan = world.reconcile();
    assert!(
        reasons(&plan).contains(&"RestartUnhealthyJob"),
        "{:?}",
        plan.notes
    );
    let message = &plan
        .notes
        .iter()
        .find(|n| n.reason == "RestartUnhealthyJob")
        .expect("note")
        .message;
    assert!(
        message.contains("restarted 3 times within 60 s"),
        "{message}"
    );
    assert!(
        matches!(
            &plan.actions[..],
            [Effect::CancelJob {
                best_effort: false,
                ..
            }]
        ),
        "{:?}",
        plan.actions
    );
    world.job_now(FlinkJobState::Canceled);
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("1"));
    assert_eq!(applied_revision(&plan).as_deref(), Some("1"));
    assert_eq!(restore_path(&plan).as_deref(), Some(CHECKPOINT));
    assert_ne!(world.job_id(), old_job, "the restarted job has its own id");
    world.revision = 1;
    world.cluster_runs(1, FlinkJobState::Running);
    counted(&mut world, 0, 0);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        world.lifecycle(),
        ResourceLifecycleState::Stable,
        "the spec did not change"
    );
}

#[test]
fn a_failed_job_is_redeployed_only_with_restart_failed() {
    let mut world = with_settings(flink_api::UpgradeMode::Stateless, &[]);
    world.job_now(FlinkJobState::Failed);
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "upstream's default keeps a failed job: {:?}",
        plan.actions
    );
    let mut world = with_settings(
        flink_api::UpgradeMode::Stateless,
        &[("kubernetes.operator.job.restart.failed", "true")],
    );
    world.job_now(FlinkJobState::Failed);
    let plan = world.reconcile();
    assert!(
        reasons(&plan).contains(&"RestartUnhealthyJob"),
        "{:?}",
        plan.notes
    );
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_revision(&plan).as_deref(), Some("1"));
}

#[test]
fn a_missing_job_manager_of_a_stateful_job_is_recovered_with_ha_and_reported_without() {
    let mut world = with_settings(
        flink_api::UpgradeMode::LastState,
        &[
            ("high-availability.type", "kubernetes"),
            ("high-availability.storageDir", "file:///tmp/ha"),
        ],
    );
    let job = world.job_id();
    world.cluster_gone();
    let plan = world.reconcile();
    assert!(
        reasons(&plan).contains(&"RecoverDeployment"),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyCluster(_))),
        "{:?}",
        plan.actions
    );
    assert_eq!(
        world.job_id(),
        job,
        "HA finds the job's checkpoints by its id"
    );
    let mut world = with_settings(flink_api::UpgradeMode::LastState, &[]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let error = world.status().error.clone().unwrap_or_default();
    assert!(error.contains("manual restore required"), "{error}");
    assert!(error.contains("initialSavepointPath"), "{error}");
}

#[test]
fn a_job_that_cannot_rescale_in_place_is_redeployed_through_a_savepoint_at_the_chosen_parallelism()
{
    let mut world = with_settings(
        flink_api::UpgradeMode::Savepoint,
        &[
            ("job.autoscaler.enabled", "true"),
            ("jobmanager.scheduler", "default"),
        ],
    );
    let old_job = world.job_id();
    let chosen = BTreeMap::from([("cbc357ccb763df2852fee8c4fc7d55f2".to_string(), 3)]);
    // Memory tuning chose smaller TaskManagers (600 MiB instead of the spec's).
    let tuned = flink_autoscaler::memory::MemoryRecommendation {
        process: 600 << 20,
        heap: 120 << 20,
        managed: 0,
        network: 1 << 20,
        metaspace: 96 << 20,
        set: BTreeMap::from([
            (
                "taskmanager.memory.process.size".to_string(),
                "629145600 bytes".to_string(),
            ),
            (
                "taskmanager.memory.managed.fraction".to_string(),
                "0".to_string(),
            ),
        ]),
        remove: vec!["taskmanager.memory.managed.size".to_string()],
    };
    world.autoscaler = Some(AutoscalerStep {
        view: Some(AutoscalerView {
            overrides: chosen.clone(),
            redeploy: Some("count 1 -> 3".into()),
            memory: Some(tuned),
            ..Default::default()
        }),
        ..Default::default()
    });
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { job_id, .. }] if *job_id == old_job),
        "{:?}",
        plan.actions
    );
    let note = plan
        .notes
        .iter()
        .find(|n| n.reason == "Scaling")
        .expect("a Scaling event");
    assert!(
        note.message.contains("in savepoint mode") && note.message.contains("count 1 -> 3"),
        "{}",
        note.message
    );
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert_eq!(
        without_snapshot_records(&plan.actions),
        vec![Effect::DeleteCluster]
    );
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_revision(&plan).as_deref(), Some("1"));
    assert_eq!(restore_path(&plan).as_deref(), Some(SAVEPOINT));
    assert_eq!(
        applied_config(&plan, "pipeline.jobvertex-parallelism-overrides").as_deref(),
        Some("cbc357ccb763df2852fee8c4fc7d55f2:3"),
        "the new job runs the chosen parallelism"
    );
    assert_eq!(
        applied_config(&plan, "taskmanager.memory.process.size").as_deref(),
        Some("629145600 bytes"),
        "and the tuned TaskManager memory"
    );
    assert_eq!(
        applied_config(&plan, "taskmanager.memory.managed.fraction").as_deref(),
        Some("0")
    );
    let tm_memory = plan.actions.iter().find_map(|a| match a {
        Effect::ApplyCluster(objects) => objects.task_manager.as_ref().map(|tm| {
            tm.pointer("/spec/template/spec/containers/0/resources/limits/memory")
                .cloned()
        }),
        _ => None,
    });
    assert_eq!(
        tm_memory.flatten(),
        Some(serde_json::json!("600Mi")),
        "the TaskManager pods get the tuned memory"
    );
    // The new job runs what was chosen: nothing more to do, and the spec stayed stable.
    world
        .autoscaler
        .as_mut()
        .and_then(|step| step.view.as_mut())
        .expect("view")
        .redeploy = None;
    world.revision = 1;
    world.cluster_runs(1, FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    assert_ne!(world.job_id(), old_job);
}

#[test]
fn a_checkpoint_nonce_triggers_one_checkpoint_recorded_before_the_request() {
    // Snapshots kept in the status (upstream's legacy way).
    let mut world = with_settings(
        flink_api::UpgradeMode::LastState,
        &[("kubernetes.operator.snapshot.resource.enabled", "false")],
    );
    world.reconcile();
    world
        .resource
        .spec
        .job
        .as_mut()
        .expect("job")
        .checkpoint_trigger_nonce = Some(4);
    let plan = world.reconcile();
    let trigger = match &plan.actions[..] {
        [Effect::TriggerCheckpoint { trigger_id, .. }] => trigger_id.clone(),
        other => panic!("expected one checkpoint trigger, got {other:?}"),
    };
    let recorded = |status: &flink_api::FlinkDeploymentStatus| {
        status
            .job_status
            .as_ref()
            .and_then(|j| j.checkpoint_info.as_ref())
            .and_then(|i| i.trigger_id.clone())
    };
    assert_eq!(
        plan.intent.as_ref().and_then(recorded),
        Some(trigger.clone()),
        "written ahead"
    );
    let needs =
        flink_operator::reconcile::deployment::observation_needs(&world.resource, &BTreeMap::new());
    assert_eq!(needs.checkpoint.map(|(_, t)| t), Some(trigger));
    world.observed.checkpoint = Some(ObservedOperation::Completed("file:/tmp/cp/chk-3".into()));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let info = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.checkpoint_info.clone())
        .expect("checkpoint info");
    assert_eq!(info.trigger_id, None);
    assert_eq!(info.last_checkpoint.and_then(|c| c.trigger_nonce), Some(4));
    world.observed.checkpoint = None;
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "the nonce asks once: {:?}",
        plan.actions
    );
}

#[test]
fn a_savepoint_nonce_becomes_one_flinkstatesnapshot_of_the_deployment() {
    let mut world = stateful(flink_api::UpgradeMode::LastState);
    world.reconcile();
    let needs = |world: &World| {
        flink_operator::reconcile::deployment::observation_needs(&world.resource, &world.defaults)
    };
    assert!(!needs(&world).snapshot_resources, "nothing due: not listed");
    world
        .resource
        .spec
        .job
        .as_mut()
        .expect("job")
        .savepoint_trigger_nonce = Some(9);
    assert!(needs(&world).snapshot_resources);
    // Observation listed the job's snapshots: none.
    world.observed.snapshots = Some(Vec::new());
    let plan = world.reconcile();
    let [Effect::CreateSnapshot(snapshot)] = &plan.actions[..] else {
        panic!("expected one snapshot resource, got {:?}", plan.actions);
    };
    let spec = &snapshot.spec;
    assert_eq!(
        spec.job_reference.as_ref().and_then(|r| r.name.as_deref()),
        Some("counter")
    );
    assert_eq!(
        spec.savepoint.as_ref().and_then(|s| s.path.as_deref()),
        Some("file:///tmp/sp")
    );
    assert!(plan.intent.is_none(), "no trigger is written ahead");
    assert!(plan.notes.iter().any(|n| n.reason == "SnapshotCreated"));
    // The status remembers the nonce: observation stops listing, nothing more is created.
    assert!(!needs(&world).snapshot_resources);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let info = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.clone())
        .expect("savepoint info");
    assert_eq!(info.trigger_nonce, Some(9));
    assert_eq!(info.trigger_id, None);
}

#[test]
fn a_health_restart_after_a_rollback_stays_rolled_back_and_never_deploys_the_failed_spec() {
    // Fixed with the shared job core: a FlinkDeployment's restart finished DEPLOYED, so the
    // next reconcile deployed the spec the rollback had replaced (session jobs stayed
    // ROLLED_BACK, as both do now).
    let mut settings = ROLLBACK.to_vec();
    settings.extend([
        ("kubernetes.operator.cluster.health-check.enabled", "true"),
        (
            "kubernetes.operator.cluster.health-check.restarts.threshold",
            "2",
        ),
        (
            "kubernetes.operator.cluster.health-check.restarts.window",
            "60s",
        ),
    ]);
    let mut world = with_settings(flink_api::UpgradeMode::Stateless, &settings);
    counted(&mut world, 0, 1);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    // A bad upgrade (parallelism 3) that fails, rolled back after the readiness timeout.
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "{:?}",
        plan.actions
    );
    world.cluster_gone();
    assert_eq!(applied_generation(&world.reconcile()).as_deref(), Some("2"));
    world.cluster_runs(2, FlinkJobState::Failed);
    counted(&mut world, 0, 0);
    world.reconcile();
    world.now += 60_000;
    let plan = world.reconcile();
    assert!(reasons(&plan).contains(&"Rollback"), "{:?}", plan.notes);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_parallelism(&plan).as_deref(), Some("2"));
    world.revision = 1;
    world.cluster_runs(2, FlinkJobState::Running);
    counted(&mut world, 0, 1);
    world.reconcile();
    assert_eq!(
        reconciliation_state(&world),
        Some(ReconciliationState::RolledBack)
    );
    // The rolled-back job restarts too often: restarted as the next revision of what runs.
    world.now += 10_000;
    counted(&mut world, 3, 2);
    let plan = world.reconcile();
    assert!(
        reasons(&plan).contains(&"RestartUnhealthyJob"),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "{:?}",
        plan.actions
    );
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_revision(&plan).as_deref(), Some("2"));
    assert_eq!(applied_parallelism(&plan).as_deref(), Some("2"));
    assert_eq!(
        reconciliation_state(&world),
        Some(ReconciliationState::RolledBack)
    );
    // It runs; the spec that failed is still not deployed.
    world.revision = 2;
    world.cluster_runs(2, FlinkJobState::Running);
    counted(&mut world, 0, 1);
    for _ in 0..3 {
        world.now += 60_000;
        let plan = world.reconcile();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }
    assert_eq!(world.lifecycle(), ResourceLifecycleState::RolledBack);
}

#[test]
fn the_operators_savepoint_on_deletion_default_is_honoured() {
    // Fixed with the shared job core: only the resource's own configuration was read.
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.defaults.insert(
        "kubernetes.operator.job.savepoint-on-deletion".into(),
        "true".into(),
    );
    world.delete();
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}

#[test]
fn the_autoscalers_writes_and_events_are_carried_out_with_the_plan() {
    // Every write is in the plan: the autoscaler's step hands its state, rescale and
    // TaskManager writes to the deployment's decision instead of making them itself.
    let mut world = with_settings(
        flink_api::UpgradeMode::Savepoint,
        &[("job.autoscaler.enabled", "true")],
    );
    let job_id = world.job_id();
    let writes = vec![
        Effect::StoreAutoscalerState(Box::new(
            serde_json::json!({"metadata": {"name": "autoscaler-counter"}}),
        )),
        Effect::ScaleTaskManagers { replicas: 2 },
        Effect::SetResourceRequirements {
            cluster: "counter".into(),
            job_id,
            requirements: Default::default(),
        },
    ];
    world.autoscaler = Some(AutoscalerStep {
        view: Some(AutoscalerView::default()),
        actions: writes.clone(),
        notes: vec![flink_operator::reconcile::Note::normal(
            "Scaling",
            "Rescaling in place: count 1 -> 2",
        )],
        log: Vec::new(),
    });
    let plan = world.reconcile();
    assert_eq!(plan.actions, writes);
    assert!(reasons(&plan).contains(&"Scaling"), "{:?}", plan.notes);
    assert!(
        writes.iter().all(|a| a.failure_does_not_stop().is_some()),
        "a failed autoscaler write does not stop the deployment's own actions"
    );
    assert_eq!(Effect::DeleteCluster.failure_does_not_stop(), None);
}

/// The JobManager's container crash-loops, as the kubelet reports it.
fn crash_looping() -> flink_operator::reconcile::observed::WaitingContainer {
    flink_operator::reconcile::observed::WaitingContainer {
        pod: "counter-jm-0".into(),
        container: "flink-main-container".into(),
        reason: "CrashLoopBackOff".into(),
        message: Some("back-off 40s".into()),
    }
}

#[test]
fn containers_that_only_wait_their_turn_are_no_problem() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.observed.waiting = vec![flink_operator::reconcile::observed::WaitingContainer {
        reason: "ContainerCreating".into(),
        message: None,
        ..crash_looping()
    }];
    world.reconcile();
    assert_eq!(world.status().error, None);
    assert_ne!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Error)
    );
}
