//! The FlinkSessionJob decision: submitted once with a recorded id, found again after a crash,
//! redeployed by cancel-then-submit, cancelled on deletion.

use flink_api::validation::ValidationSettings;
use flink_api::{FlinkJobState, FlinkSessionJob, ReconciliationState};
use flink_operator::reconcile::observed::{
    ObservedCheckpoint, ObservedJob, ObservedOperation, ObservedSessionJob, SessionCluster,
};
use flink_operator::reconcile::session_job::{FINALIZER, SessionDecideContext, decide};
use flink_operator::reconcile::{Action, Intervals, Plan};

const JOB: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata: {name: first, namespace: default, uid: 9d0c7a8e-0000-1111-2222-333344445555, generation: 1}
spec:
  deploymentName: shared
  job: {jarURI: 'local:///opt/flink/usrlib/job.jar', parallelism: 1}
";

struct World {
    resource: FlinkSessionJob,
    observed: ObservedSessionJob,
}

fn ready_cluster(jobs: Vec<ObservedJob>) -> ObservedSessionJob {
    ObservedSessionJob {
        cluster: SessionCluster::Present {
            ready: true,
            deleting: false,
        },
        jobs: Some(jobs),
        ..Default::default()
    }
}

fn running(id: &str) -> ObservedJob {
    ObservedJob {
        id: id.into(),
        name: "counter".into(),
        state: FlinkJobState::Running,
        start_time: 1,
        last_modification: 2,
    }
}

impl World {
    fn new() -> Self {
        let mut resource: FlinkSessionJob = serde_saphyr::from_str(JOB).expect("fixture");
        resource.metadata.finalizers = Some(vec![FINALIZER.into()]);
        Self {
            resource,
            observed: ready_cluster(vec![]),
        }
    }

    fn reconcile(&mut self) -> Plan<flink_api::FlinkSessionJobStatus> {
        let intervals = Intervals::default();
        let validation = ValidationSettings::default();
        let ctx = SessionDecideContext {
            now_ms: 1_000,
            intervals: &intervals,
            validation: &validation,
        };
        let plan = decide(&self.resource, &self.observed, &ctx);
        self.resource.status = Some(plan.status.clone());
        plan
    }

    fn job_id(&self) -> String {
        self.resource
            .status
            .as_ref()
            .and_then(|s| s.job_status.as_ref())
            .and_then(|j| j.job_id.clone())
            .expect("job id")
    }
}

fn submitted_id(plan: &Plan<flink_api::FlinkSessionJobStatus>) -> Option<String> {
    plan.actions.iter().find_map(|a| match a {
        Action::SubmitSessionJob(s) => Some(s.job_id.clone()),
        _ => None,
    })
}

#[test]
fn a_new_session_job_is_submitted_once_with_the_id_recorded_first() {
    let mut world = World::new();
    let plan = world.reconcile();
    let intended = plan
        .intent
        .as_ref()
        .and_then(|s| s.job_status.as_ref())
        .and_then(|j| j.job_id.clone());
    assert_eq!(
        submitted_id(&plan),
        intended,
        "the id is in the intent before the submission"
    );
    // The submission happened but the operator crashed before the final status: the job is found.
    world.resource.status = plan.intent.clone();
    world.observed = ready_cluster(vec![running(&world.job_id())]);
    let plan = world.reconcile();
    assert_eq!(submitted_id(&plan), None, "a retry never submits twice");
    assert_eq!(
        world
            .resource
            .status
            .as_ref()
            .and_then(|s| s.reconciliation_status.as_ref())
            .map(|r| r.state),
        Some(ReconciliationState::Deployed)
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty() && plan.notes.is_empty());
}

#[test]
fn a_spec_change_cancels_the_old_job_before_submitting_the_new_one() {
    let mut world = World::new();
    world.reconcile();
    let old = world.job_id();
    world.observed = ready_cluster(vec![running(&old)]);
    world.reconcile();
    world.resource.spec.job.as_mut().expect("job").parallelism = Some(2);
    world.resource.metadata.generation = Some(2);
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        vec![Action::CancelJob {
            cluster: "shared".into(),
            job_id: old.clone(),
            best_effort: false
        }]
    );
    let mut cancelled = running(&old);
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled]);
    let plan = world.reconcile();
    let new = submitted_id(&plan).expect("submitted after the cancel");
    assert_ne!(new, old);
}

#[test]
fn a_missing_session_cluster_is_named_in_the_status() {
    let mut world = World::new();
    world.observed = ObservedSessionJob::default();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    let error = world
        .resource
        .status
        .as_ref()
        .and_then(|s| s.error.clone())
        .unwrap_or_default();
    assert!(
        error.contains("spec.deploymentName") && error.contains("shared"),
        "{error}"
    );
}

#[test]
fn deletion_cancels_the_job_then_releases_the_finalizer() {
    let mut world = World::new();
    world.reconcile();
    let id = world.job_id();
    world.observed = ready_cluster(vec![running(&id)]);
    world.reconcile();
    world.resource.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
    );
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        vec![Action::CancelJob {
            cluster: "shared".into(),
            job_id: id.clone(),
            best_effort: false
        }]
    );
    let mut cancelled = running(&id);
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled]);
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Action::RemoveFinalizer]);
}

#[test]
fn a_savepoint_upgrade_of_a_session_job_stops_it_with_a_savepoint_and_restores_the_new_one() {
    let mut world = World::new();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::Savepoint;
    world.reconcile();
    let old = world.job_id();
    world.observed = ready_cluster(vec![running(&old)]);
    world.reconcile();
    world.resource.spec.job.as_mut().expect("job").parallelism = Some(2);
    world.resource.metadata.generation = Some(2);
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Action::StopWithSavepoint { cluster, .. }] if cluster == "shared"),
        "{:?}",
        plan.actions
    );
    assert!(
        plan.intent
            .as_ref()
            .and_then(|s| s.upgrade.as_ref())
            .and_then(|p| p.trigger_id.clone())
            .is_some(),
        "trigger written ahead"
    );
    let mut stopped = running(&old);
    stopped.state = FlinkJobState::Finished;
    world.observed = ready_cluster(vec![stopped]);
    world.observed.savepoint = Some(ObservedOperation::Completed("file:/sp/session-1".into()));
    let plan = world.reconcile();
    let submission = plan.actions.iter().find_map(|a| match a {
        Action::SubmitSessionJob(s) => Some(s.clone()),
        _ => None,
    });
    let submission = submission.expect("the new job is submitted");
    assert_eq!(
        submission.restore_from.as_deref(),
        Some("file:/sp/session-1")
    );
    assert_ne!(submission.job_id, old);
    let recorded = plan
        .intent
        .as_ref()
        .and_then(|s| s.job_status.as_ref())
        .and_then(|j| j.upgrade_savepoint_path.clone());
    assert_eq!(
        recorded.as_deref(),
        Some("file:/sp/session-1"),
        "the path is recorded before the submission"
    );
}

#[test]
fn a_last_state_session_job_without_a_checkpoint_keeps_running() {
    let mut world = World::new();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::LastState;
    world.reconcile();
    let old = world.job_id();
    world.observed = ready_cluster(vec![running(&old)]);
    world.reconcile();
    world.resource.spec.job.as_mut().expect("job").parallelism = Some(2);
    world.resource.metadata.generation = Some(2);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let error = world
        .resource
        .status
        .as_ref()
        .and_then(|s| s.error.clone())
        .unwrap_or_default();
    assert!(error.contains("completed checkpoint"), "{error}");
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: "file:/cp/chk-3".into(),
        completed_at: 1,
    });
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        vec![Action::CancelJob {
            cluster: "shared".into(),
            job_id: old,
            best_effort: false
        }]
    );
}
