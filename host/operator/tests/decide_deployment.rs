//! The FlinkDeployment decision, scenario by scenario, without a cluster: each test feeds the
//! resource and an observation, then feeds the decided status back in as the next reconcile
//! would, like the controller does.

use flink_api::deployment::JobManagerDeploymentStatus;
use flink_api::{FlinkDeployment, FlinkJobState, ReconciliationState, ResourceLifecycleState};
use flink_operator::reconcile::deployment::{DecideContext, FINALIZER, decide};
use flink_operator::reconcile::observed::{
    ObservedCluster, ObservedDeployment, ObservedFlink, ObservedJob,
};
use flink_operator::reconcile::{Action, Intervals, Plan};
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
}

fn app() -> World {
    let mut resource: FlinkDeployment = serde_saphyr::from_str(APP).expect("fixture");
    resource.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    World {
        resource,
        observed: ObservedCluster::default(),
        now: 1_000_000,
    }
}

impl World {
    fn decide(&mut self) -> Plan<flink_api::FlinkDeploymentStatus> {
        let intervals = Intervals::default();
        let defaults = BTreeMap::new();
        let ctx = DecideContext {
            now_ms: self.now,
            intervals: &intervals,
            defaults: &defaults,
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

    fn edit(&mut self, change: impl FnOnce(&mut flink_api::FlinkDeploymentSpec)) {
        change(&mut self.resource.spec);
        *self.resource.metadata.generation.get_or_insert(0) += 1;
    }

    /// The cluster of `generation` runs with its job in `state`.
    fn cluster_runs(&mut self, generation: i64, job: FlinkJobState) {
        let deployment = ObservedDeployment {
            generation: Some(generation),
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

fn applied_generation(plan: &Plan<flink_api::FlinkDeploymentStatus>) -> Option<String> {
    plan.actions.iter().find_map(|a| match a {
        Action::ApplyCluster(objects) => objects.job_manager["metadata"]["annotations"]
            [GENERATION_ANNOTATION]
            .as_str()
            .map(String::from),
        _ => None,
    })
}

#[test]
fn a_new_deployment_records_its_intent_then_applies_the_cluster() {
    let mut world = app();
    world.resource.metadata.finalizers = None;
    let plan = world.reconcile();
    assert_eq!(plan.actions[0], Action::AddFinalizer);
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
            Action::CancelJob {
                cluster: "counter".into(),
                job_id: old_id.clone(),
                best_effort: true
            },
            Action::DeleteCluster
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
    assert!(plan.actions.contains(&Action::DeleteCluster));
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
fn a_stateful_upgrade_is_held_rather_than_downgraded() {
    let mut world = app();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::Savepoint;
    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set("execution.checkpointing.savepoint-dir", "file:///tmp/sp");
    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set("execution.checkpointing.dir", "file:///tmp/cp");
    world.reconcile();
    assert_eq!(world.status().error, None);
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(
        world
            .status()
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("UpgradeBlocked")
    );
}

#[test]
fn a_crash_looping_job_manager_is_reported_without_a_hot_loop() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.observed.flink = ObservedFlink::NotAsked;
    world.observed.pod_problem = Some("CrashLoopBackOff: back-off 40s".into());
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
fn deleting_a_session_cluster_waits_for_its_session_jobs_then_cleans_up() {
    let mut world = app();
    world.resource.spec.job = None;
    world.reconcile();
    world.observed = ObservedCluster {
        job_manager: Some(ObservedDeployment {
            generation: Some(1),
            replicas: 1,
            ready_replicas: 1,
            deleting: false,
        }),
        pods: 1,
        session_jobs: vec!["job-a".into()],
        ..Default::default()
    };
    world.resource.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert!(plan.notes.iter().any(|n| n.message.contains("job-a")));
    world.observed.session_jobs.clear();
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Action::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Action::RemoveFinalizer]);
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
        plan.actions.contains(&Action::DeleteCluster),
        "{:?}",
        plan.actions
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.message.contains("spec.restartNonce"))
    );
}
