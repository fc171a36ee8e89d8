//! The FlinkSessionJob decision: submitted once with a recorded id, found again after a crash,
//! redeployed by cancel-then-submit, cancelled on deletion.

use flink_api::validation::ValidationSettings;
use flink_api::{FlinkJobState, FlinkSessionJob, ReconciliationState};
use flink_operator::reconcile::observed::{
    JobCounters, ObservedCheckpoint, ObservedJob, ObservedOperation, ObservedSessionJob,
    SessionCluster,
};
use flink_operator::reconcile::session_job::{
    FINALIZER, SessionDecideContext, decide, observation_needs,
};
use flink_operator::reconcile::status;
use flink_operator::reconcile::upgrade_policy::{
    UpgradePolicy, UpgradeVerdict, pending_session_job_upgrade,
};
use flink_operator::reconcile::{Effect, Intervals, Plan, SessionJobSubmission};

const JOB: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata: {name: first, namespace: default, uid: 9d0c7a8e-0000-1111-2222-333344445555, generation: 1}
spec:
  deploymentName: shared
  job: {jarURI: 'https://repo.example.com/jobs/job.jar', parallelism: 1}
";

struct World {
    resource: FlinkSessionJob,
    observed: ObservedSessionJob,
    upgrade_policy: Option<UpgradePolicy>,
    now_ms: i64,
    /// Operator-wide Flink configuration defaults.
    defaults: std::collections::BTreeMap<String, String>,
    /// The autoscaler's step, when the job is autoscaled.
    autoscaler: Option<flink_operator::reconcile::autoscaling::step::AutoscalerStep>,
}

/// A ready session cluster running `jobs`, configured with checkpoint and savepoint storage
/// (which its session jobs' snapshots use).
fn ready_cluster(jobs: Vec<ObservedJob>) -> ObservedSessionJob {
    ObservedSessionJob {
        cluster: SessionCluster::Present {
            ready: true,
            deleting: false,
        },
        cluster_configuration: [
            ("execution.checkpointing.dir", "file:///tmp/checkpoints"),
            (
                "execution.checkpointing.savepoint-dir",
                "file:///tmp/savepoints",
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into(),
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
            upgrade_policy: None,
            now_ms: 1_000,
            defaults: Default::default(),
            autoscaler: None,
        }
    }

    /// Decides without recording the status (a plan whose actions failed).
    fn decide(&self) -> Plan<flink_api::FlinkSessionJobStatus> {
        let intervals = Intervals::default();
        let validation = ValidationSettings::default();
        let ctx = SessionDecideContext {
            now_ms: self.now_ms,
            intervals: &intervals,
            validation: &validation,
            upgrade_policy: self.upgrade_policy.as_ref(),
            defaults: &self.defaults,
            snapshot_thresholds: Default::default(),
            error_shape: &Default::default(),
            autoscaler: self.autoscaler.as_ref(),
            tenancy: None,
        };
        decide(&self.resource, &self.observed, &ctx)
    }

    fn reconcile(&mut self) -> Plan<flink_api::FlinkSessionJobStatus> {
        let plan = self.decide();
        self.resource.status = Some(plan.status.clone());
        plan
    }

    /// The user deletes the session job now.
    fn delete(&mut self) {
        self.resource.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::from_millisecond(self.now_ms).expect("a time"),
            ));
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

/// The submission the plan makes, if any.
fn submission(plan: &Plan<flink_api::FlinkSessionJobStatus>) -> Option<SessionJobSubmission> {
    plan.actions.iter().find_map(|a| match a {
        Effect::SubmitSessionJob(s) => Some((**s).clone()),
        _ => None,
    })
}

fn submitted_id(plan: &Plan<flink_api::FlinkSessionJobStatus>) -> Option<String> {
    submission(plan).map(|s| s.job_id)
}

impl World {
    /// Rollback on with a 60 s readiness timeout; the job submitted and running (its spec
    /// stable). Returns the running job's id.
    fn with_rollback_running(&mut self) -> String {
        self.now_ms = 1_000_000;
        let config = self
            .resource
            .spec
            .flink_configuration
            .get_or_insert_default();
        config.set("kubernetes.operator.deployment.rollback.enabled", "true");
        config.set("kubernetes.operator.deployment.readiness.timeout", "60s");
        self.reconcile();
        let stable_job = self.job_id();
        self.observed = ready_cluster(vec![running(&stable_job)]);
        self.reconcile();
        stable_job
    }

    /// The user's bad upgrade: arguments the job's main() rejects, as generation 2.
    fn edit_to_bad_arguments(&mut self) {
        self.resource.spec.job.as_mut().expect("job").args = vec!["--rate".into(), "oops".into()];
        self.resource.metadata.generation = Some(2);
    }
}

/// The jar's run may take `kubernetes.operator.job.submission.timeout` (upstream's 10 min by
/// default), the operator's setting (a job's own is ignored: a run holds a reconcile slot),
/// at most 30 min.
#[test]
fn a_submission_waits_as_long_as_the_submission_timeout() {
    let mut world = World::new();
    let timeout = |world: &World| submission(&world.decide()).map(|s| s.timeout);
    assert_eq!(timeout(&world), Some(std::time::Duration::from_secs(600)));
    world.defaults.insert(
        "kubernetes.operator.job.submission.timeout".into(),
        "2 min".into(),
    );
    assert_eq!(timeout(&world), Some(std::time::Duration::from_secs(120)));
    world.configure("kubernetes.operator.job.submission.timeout", "365 d");
    assert_eq!(timeout(&world), Some(std::time::Duration::from_secs(120)));
    world.defaults.insert(
        "kubernetes.operator.job.submission.timeout".into(),
        "2 h".into(),
    );
    assert_eq!(timeout(&world), Some(std::time::Duration::from_secs(1_800)));
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
        vec![Effect::CancelJob {
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
fn a_running_session_job_whose_cluster_stops_answering_is_not_said_to_run() {
    let mut world = World::new();
    world.reconcile();
    let id = world.job_id();
    world.observed = ready_cluster(vec![running(&id)]);
    world.reconcile();
    let state = |world: &World| {
        world
            .resource
            .status
            .as_ref()
            .and_then(|s| s.job_status.as_ref())
            .and_then(|j| j.state)
    };
    assert_eq!(state(&world), Some(FlinkJobState::Running));
    world.observed.jobs = None;
    world.observed.unreachable = Some("connection refused".into());
    world.reconcile();
    assert_eq!(state(&world), Some(FlinkJobState::Reconciling));
    world.observed = ready_cluster(vec![running(&id)]);
    world.reconcile();
    assert_eq!(state(&world), Some(FlinkJobState::Running));
}

#[test]
fn a_job_lost_with_its_session_cluster_is_resubmitted_only_when_stateless() {
    let lost = |mode: flink_api::UpgradeMode| {
        let mut world = World::new();
        world.resource.spec.job.as_mut().expect("job").upgrade_mode = mode;
        world.reconcile();
        let id = world.job_id();
        world.observed = ready_cluster(vec![running(&id)]);
        world.reconcile();
        // The session cluster was recreated without its HA metadata: it lists no such job.
        world.observed = ready_cluster(vec![]);
        world.reconcile()
    };
    let plan = lost(flink_api::UpgradeMode::Stateless);
    assert!(submission(&plan).is_some(), "{:?}", plan.actions);
    // A stateful job is not submitted from empty state (before, it was): a person restores it.
    let plan = lost(flink_api::UpgradeMode::LastState);
    assert!(submission(&plan).is_none(), "{:?}", plan.actions);
    let error = plan.status.error.clone().unwrap_or_default();
    assert!(error.contains("manual restore required"), "{error}");
    assert!(error.contains("initialSavepointPath"), "{error}");
    assert_eq!(
        plan.status.job_status.as_ref().and_then(|j| j.state),
        Some(FlinkJobState::Reconciling),
        "not said to run"
    );
    assert_eq!(
        plan.status.lifecycle_state,
        Some(flink_api::ResourceLifecycleState::Failed)
    );
    // A job that finished is not lost when the restarted cluster no longer lists it.
    let mut world = World::new();
    world.reconcile();
    let id = world.job_id();
    let mut finished = running(&id);
    finished.state = FlinkJobState::Finished;
    world.observed = ready_cluster(vec![finished]);
    world.reconcile();
    world.observed = ready_cluster(vec![]);
    let plan = world.reconcile();
    assert!(submission(&plan).is_none(), "{:?}", plan.actions);
    assert_eq!(plan.status.error, None);
}

/// A session job deleted with its cluster (a namespace deleted): while the cluster waits for
/// its session jobs (`block-on-session-jobs`, the default), the job is cancelled as usual, so
/// the cluster does not then wait on it as a job no session job manages; without that switch
/// the cluster takes the job with it.
#[test]
fn a_session_job_deleted_with_its_cluster_cancels_its_job_while_the_cluster_waits() {
    for block in [true, false] {
        let mut world = World::new();
        if !block {
            world.configure(
                "kubernetes.operator.session.deletion.block-on-session-jobs",
                "false",
            );
        }
        world.reconcile();
        let id = world.job_id();
        world.observed = ready_cluster(vec![running(&id)]);
        world.reconcile();
        world.observed.cluster = SessionCluster::Present {
            ready: true,
            deleting: true,
        };
        world.delete();
        let plan = world.reconcile();
        let expected = match block {
            true => vec![Effect::CancelJob {
                cluster: "shared".into(),
                job_id: id.clone(),
                best_effort: false,
            }],
            false => vec![Effect::RemoveFinalizer],
        };
        assert_eq!(plan.actions, expected, "block: {block}");
    }
}

#[test]
fn deletion_cancels_the_job_then_releases_the_finalizer() {
    let mut world = World::new();
    world.reconcile();
    let id = world.job_id();
    world.observed = ready_cluster(vec![running(&id)]);
    world.reconcile();
    world.delete();
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        vec![Effect::CancelJob {
            cluster: "shared".into(),
            job_id: id.clone(),
            best_effort: false
        }]
    );
    let mut cancelled = running(&id);
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled]);
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::RemoveFinalizer]);
}

/// `kubernetes.operator.job.savepoint-on-deletion`: the running job is stopped with a
/// savepoint (its trigger written ahead), the event names it, then the finalizer goes.
#[test]
fn savepoint_on_deletion_stops_the_session_job_with_a_savepoint_before_it_goes() {
    let mut world = World::new();
    world.configure("kubernetes.operator.job.savepoint-on-deletion", "true");
    world.reconcile();
    let id = world.job_id();
    world.observed = ready_cluster(vec![running(&id)]);
    world.reconcile();
    world.delete();
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { job_id, .. }] if *job_id == id),
        "{:?}",
        plan.actions
    );
    assert!(plan.intent.is_some(), "the trigger is written ahead");
    // Not done yet: asked again, nothing new is sent.
    let plan = world.reconcile();
    assert!(
        !plan.actions.contains(&Effect::RemoveFinalizer),
        "{:?}",
        plan.actions
    );
    world.observed.savepoint = Some(ObservedOperation::Completed("file:/sp/last".into()));
    let mut finished = running(&id);
    finished.state = FlinkJobState::Finished;
    world.observed.jobs = Some(vec![finished]);
    let plan = world.reconcile();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "SavepointOnDeletion" && n.message.contains("file:/sp/last")),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.actions.contains(&Effect::RemoveFinalizer),
        "{:?}",
        plan.actions
    );
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
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { cluster, .. }] if cluster == "shared"),
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
    let submission = submission(&plan).expect("the new job is submitted");
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
    // The submission fails (the intent is what is stored): the next reconcile submits the
    // same job again from the same savepoint, not from empty state (fixed: the restore path
    // was taken out of the status before the intent was written).
    world.resource.status = plan.intent.clone();
    world.observed = ready_cluster(vec![]);
    let retry = world.reconcile();
    let again = self::submission(&retry).expect("submitted again");
    assert_eq!(again.job_id, submission.job_id);
    assert_eq!(again.restore_from.as_deref(), Some("file:/sp/session-1"));
}

/// A rollback secures the failing job's state the way that job allows: it was submitted
/// stateless (not retaining its checkpoints on cancel), so the stable last-state spec's
/// securing takes a savepoint rather than cancelling it, which would delete the checkpoint to
/// restore from (fixed: the shared flow asked after recording the stable spec, and read it).
#[test]
fn a_rollback_secures_the_failing_job_as_it_was_submitted() {
    let mut world = World::new();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::LastState;
    let stable_job = world.with_rollback_running();
    // The failing spec: stateless, and its job never runs.
    world.edit_to_bad_arguments();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::Stateless;
    world.reconcile();
    let mut cancelled = running(&stable_job);
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled]);
    world.reconcile();
    let failing = world.job_id();
    assert_ne!(failing, stable_job);
    let mut restarting = running(&failing);
    restarting.state = FlinkJobState::Restarting;
    world.observed = ready_cluster(vec![restarting]);
    world.reconcile();
    world.now_ms += 120_000;
    let plan = world.reconcile();
    let progress = plan
        .intent
        .as_ref()
        .and_then(|s| s.upgrade.clone())
        .expect("the rollback writes its securing ahead");
    assert_eq!(
        progress.mode,
        flink_api::UpgradeMode::LastState,
        "the stable spec's mode"
    );
    assert_eq!(
        progress.step,
        flink_api::UpgradeStep::Savepointing,
        "a savepoint: the failing job does not retain its checkpoints on cancel"
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
        vec![Effect::CancelJob {
            cluster: "shared".into(),
            job_id: old,
            best_effort: false
        }]
    );
}

fn verdict(verdict: UpgradeVerdict) -> Option<UpgradePolicy> {
    Some(UpgradePolicy {
        by: flink_api::PolicyDecision {
            extension_point: "upgrade-strategy".into(),
            tenant: "team-a".into(),
            plugin: "windows".into(),
            digest: "sha256:00".into(),
            ..Default::default()
        },
        verdict,
    })
}

#[test]
fn a_session_job_upgrade_waits_for_is_refused_by_and_takes_the_mode_of_the_upgrade_strategy() {
    const HOUR: i64 = 3_600_000;
    let mut world = World::new();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::LastState;
    world.reconcile();
    let old = world.job_id();
    world.observed = ready_cluster(vec![running(&old)]);
    world.reconcile();
    assert_eq!(pending_session_job_upgrade(&world.resource), None);
    world.resource.spec.job.as_mut().expect("job").parallelism = Some(2);
    world.resource.metadata.generation = Some(2);
    let (from, to) = pending_session_job_upgrade(&world.resource).expect("an upgrade to ask about");
    assert_eq!(
        (
            from.job.and_then(|j| j.parallelism),
            to.job.and_then(|j| j.parallelism)
        ),
        (Some(1), Some(2))
    );

    // Outside the window: nothing moves, the status says until when, and the wait's end is
    // looked at then.
    world.upgrade_policy = verdict(UpgradeVerdict::WaitUntil {
        until_ms: world.now_ms + HOUR,
        reason: "outside the maintenance window".into(),
    });
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(plan.status.upgrade.is_none());
    let policy = &plan.status.policies[0];
    assert_eq!(
        (policy.plugin.as_str(), policy.outcome.as_str()),
        ("windows", "Applied")
    );
    assert!(
        policy
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("waiting until 1970-01-01T01:00:01"),
        "{policy:?}"
    );
    assert!(plan.requeue <= std::time::Duration::from_millis(HOUR as u64));
    assert!(plan.notes.iter().any(|n| n.reason == "UpgradeWaiting"));

    // Refused: the running job is untouched and the status names the plugin.
    world.upgrade_policy = verdict(UpgradeVerdict::Refuse {
        reason: "no upgrades on Fridays".into(),
    });
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let error = plan.status.error.clone().unwrap_or_default();
    assert!(
        error.contains("PolicyError") && error.contains("windows") && error.contains("Fridays"),
        "{error}"
    );

    // Proceed through a fresh savepoint although the spec asks for last-state.
    world.upgrade_policy = verdict(UpgradeVerdict::Proceed {
        mode: flink_api::UpgradeMode::LastState,
        savepoint_first: true,
        reason: "stateful job".into(),
    });
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { job_id, .. }] if *job_id == old),
        "{:?}",
        plan.actions
    );
    assert!(plan.notes.iter().any(|n| n.reason == "UpgradePolicy"
        && n.message.contains("upgrade in savepoint mode")));
    assert_eq!(plan.status.error, None);
    // Under way: the plugin is not asked again.
    assert_eq!(pending_session_job_upgrade(&world.resource), None);
}

#[test]
fn a_session_job_that_does_not_run_in_time_is_rolled_back_to_its_stable_spec_and_state() {
    let mut world = World::new();
    let job = world.resource.spec.job.as_mut().expect("job");
    job.upgrade_mode = flink_api::UpgradeMode::Savepoint;
    job.args = vec!["--rate".into(), "10".into()];
    let stable_job = world.with_rollback_running();
    // A bad upgrade: its savepoint is taken, the new job is submitted from it and fails.
    world.edit_to_bad_arguments();
    let plan = world.reconcile();
    assert!(matches!(
        &plan.actions[..],
        [Effect::StopWithSavepoint { .. }]
    ));
    let mut stopped = running(&stable_job);
    stopped.state = FlinkJobState::Finished;
    world.observed = ready_cluster(vec![stopped.clone()]);
    world.observed.savepoint = Some(ObservedOperation::Completed("file:/sp/good".into()));
    let plan = world.reconcile();
    assert!(submitted_id(&plan).is_some());
    let bad_job = world.job_id();
    let mut failed = running(&bad_job);
    failed.state = FlinkJobState::Failed;
    world.observed = ready_cluster(vec![stopped, failed]);
    world.now_ms += 30_000;
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "not yet: {:?}", plan.actions);
    assert!(plan.requeue <= std::time::Duration::from_secs(30));
    // Past the readiness timeout: back to the stable spec, restored from the state the failed
    // job was started from (it never checkpointed).
    world.now_ms += 31_000;
    let plan = world.reconcile();
    assert!(
        plan.notes.iter().any(|n| n.reason == "Rollback"),
        "{:?}",
        plan.notes
    );
    let intent = plan.intent.clone().expect("written ahead");
    assert_eq!(
        intent.reconciliation_status.as_ref().map(|r| r.state),
        Some(ReconciliationState::RollingBack)
    );
    let submission = submission(&plan).expect("the stable spec's job is submitted");
    assert_eq!(submission.args, ["--rate", "10"]);
    assert_eq!(submission.restore_from.as_deref(), Some("file:/sp/good"));
    assert!(submission.job_id != bad_job && submission.job_id != stable_job);
    let state = |world: &World| {
        world
            .resource
            .status
            .as_ref()
            .and_then(|s| s.reconciliation_status.as_ref())
            .map(|r| r.state)
    };
    assert_eq!(state(&world), Some(ReconciliationState::RolledBack));
    // It runs; the failed spec is not tried again while the resource is not edited.
    world.observed = ready_cluster(vec![running(&submission.job_id)]);
    for _ in 0..3 {
        world.now_ms += 60_000;
        let plan = world.reconcile();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }
    assert_eq!(state(&world), Some(ReconciliationState::RolledBack));
    // The user edits back to the stable arguments: that is simply what runs.
    world.resource.spec.job.as_mut().expect("job").args = vec!["--rate".into(), "10".into()];
    world.resource.metadata.generation = Some(3);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(state(&world), Some(ReconciliationState::Deployed));
}

#[test]
fn a_session_job_whose_submission_keeps_failing_is_rolled_back_after_the_timeout() {
    let mut world = World::new();
    let stable_job = world.with_rollback_running();
    world.edit_to_bad_arguments();
    let plan = world.reconcile();
    assert_eq!(
        plan.actions.len(),
        1,
        "the old job is cancelled: {:?}",
        plan.actions
    );
    let mut cancelled = running(&stable_job);
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled.clone()]);
    assert!(submitted_id(&world.reconcile()).is_some());
    // Flink refuses the job (its main() throws): it never appears, and each reconcile submits
    // it again; that does not move the readiness timeout (60 s after the upgrade started).
    let started = world.now_ms;
    let mut resubmitted = 0;
    let plan = loop {
        world.now_ms += 10_000;
        let plan = world.reconcile();
        if plan.notes.iter().any(|n| n.reason == "Rollback") {
            break plan;
        }
        assert!(
            world.now_ms - started < 60_000,
            "no rollback by {}",
            world.now_ms - started
        );
        resubmitted += usize::from(submitted_id(&plan).is_some());
    };
    assert_eq!(
        resubmitted, 5,
        "submitted again on each reconcile until the timeout"
    );
    let submission = submission(&plan).expect("the stable spec's job is submitted");
    assert!(submission.args.is_empty(), "{:?}", submission.args);
}

#[test]
fn a_submission_that_fails_every_time_is_rolled_back_after_the_timeout() {
    let mut world = World::new();
    let stable_job = world.with_rollback_running();
    world.edit_to_bad_arguments();
    world.reconcile();
    let mut cancelled = running(&stable_job);
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled]);
    // The submission fails every time (the action errs, so only the intent is stored).
    let mut attempts = 0;
    for _ in 0..7 {
        let plan = world.decide();
        world.now_ms += 10_000;
        if submitted_id(&plan).is_some() && !plan.notes.iter().any(|n| n.reason == "Rollback") {
            attempts += 1;
            world.resource.status = plan.intent.clone();
            continue;
        }
        assert!(
            plan.notes.iter().any(|n| n.reason == "Rollback"),
            "{:?}",
            plan.notes
        );
        assert!(attempts >= 5, "retried until the timeout: {attempts}");
        assert_eq!(
            plan.intent
                .as_ref()
                .and_then(|s| s.reconciliation_status.as_ref())
                .map(|r| r.state),
            Some(ReconciliationState::RollingBack)
        );
        let submission = submission(&plan).expect("the stable spec's job is submitted");
        assert!(submission.args.is_empty(), "{:?}", submission.args);
        return;
    }
    panic!("never rolled back after {attempts} failed submissions");
}

impl World {
    /// Sets `key` in the session job's `flinkConfiguration`.
    fn configure(&mut self, key: &str, value: &str) {
        self.resource
            .spec
            .flink_configuration
            .get_or_insert_default()
            .set(key, value);
    }

    /// The job submitted and running, with Flink counting `restarts` and `checkpoints`.
    fn running_with(&mut self, restarts: i64, checkpoints: i64) -> String {
        if self.resource.status.is_none() {
            self.reconcile();
        }
        let job = self.job_id();
        self.observed = ready_cluster(vec![running(&job)]);
        self.observed.counters = Some(JobCounters {
            restarts: Some(restarts),
            completed_checkpoints: Some(checkpoints),
            last_checkpoint_at: None,
        });
        job
    }

    fn reconciliation(&self) -> flink_api::ReconciliationStatus {
        self.resource
            .status
            .as_ref()
            .and_then(|s| s.reconciliation_status.clone())
            .expect("reconciliation status")
    }
}

#[test]
fn a_session_job_restarting_too_often_is_submitted_again_from_its_savepoint() {
    let mut world = World::new();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::Savepoint;
    world.configure("kubernetes.operator.cluster.health-check.enabled", "true");
    world.configure(
        "kubernetes.operator.cluster.health-check.restarts.threshold",
        "2",
    );
    assert!(
        observation_needs(
            &world.resource,
            &world.defaults,
            &world.observed.cluster_configuration
        )
        .counters_of
        .is_none(),
        "nothing to count before a job runs"
    );
    let old = world.running_with(1, 0);
    assert_eq!(
        observation_needs(
            &world.resource,
            &world.defaults,
            &world.observed.cluster_configuration
        )
        .counters_of
        .as_deref(),
        Some(old.as_str()),
        "the health check needs the job's counters"
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let health = world
        .resource
        .status
        .as_ref()
        .and_then(|s| s.health.clone());
    assert_eq!(health.and_then(|h| h.restarts_baseline), Some(1));
    assert!(status::is_stable(&world.reconciliation()));
    // Three more restarts within the two-minute window: over the threshold of 2.
    world.now_ms += 30_000;
    world.running_with(4, 0);
    let plan = world.reconcile();
    let restart = plan
        .notes
        .iter()
        .find(|n| n.reason == "RestartUnhealthyJob")
        .expect("a RestartUnhealthyJob event");
    assert!(
        restart.message.contains("restarted 3 times"),
        "{}",
        restart.message
    );
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { job_id, .. }] if *job_id == old),
        "its state is secured first: {:?}",
        plan.actions
    );
    assert!(
        plan.intent
            .as_ref()
            .and_then(|s| s.upgrade.as_ref())
            .is_some_and(|p| p.trigger_id.is_some()),
        "trigger written ahead"
    );
    // The savepoint completes: the same spec is submitted as a new job from it.
    let mut stopped = running(&old);
    stopped.state = FlinkJobState::Finished;
    world.observed = ready_cluster(vec![stopped]);
    world.observed.savepoint = Some(ObservedOperation::Completed("file:/sp/restart".into()));
    let plan = world.reconcile();
    let submission = submission(&plan).expect("submitted again");
    assert_eq!(submission.restore_from.as_deref(), Some("file:/sp/restart"));
    assert_ne!(submission.job_id, old);
    let reconciliation = world.reconciliation();
    assert_eq!(reconciliation.state, ReconciliationState::Deployed);
    assert!(
        status::is_stable(&reconciliation),
        "the spec did not change: it stays stable"
    );
    // The new job runs: no restart, nothing more to do.
    world.observed = ready_cluster(vec![running(&submission.job_id)]);
    world.now_ms += 10_000;
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
}

#[test]
fn a_failed_session_job_is_submitted_again_when_restart_failed_is_on() {
    let mut world = World::new();
    let old = world.running_with(0, 0);
    world.reconcile();
    let mut failed = running(&old);
    failed.state = FlinkJobState::Failed;
    world.observed = ready_cluster(vec![failed.clone()]);
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "off by default: {:?}",
        plan.actions
    );
    world.configure("kubernetes.operator.job.restart.failed", "true");
    let plan = world.reconcile();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "RestartUnhealthyJob" && n.message.contains("FAILED")),
        "{:?}",
        plan.notes
    );
    let submission = submission(&plan).expect("a stateless job is submitted at once");
    assert_ne!(submission.job_id, old);
}

#[test]
fn a_running_session_job_is_stable_only_once_its_stability_rules_hold() {
    let mut world = World::new();
    world.configure("kubernetes.operator.deployment.rollback.enabled", "true");
    world.configure("kubernetes.operator.deployment.readiness.timeout", "60s");
    world.configure(
        "kubernetes.operator.deployment.stability.min-completed-checkpoints",
        "1",
    );
    world.now_ms = 1_000_000;
    world.running_with(0, 1);
    world.reconcile();
    assert!(status::is_stable(&world.reconciliation()), "one checkpoint");
    // An upgrade whose job runs but never completes a checkpoint.
    world.edit_to_bad_arguments();
    let plan = world.reconcile();
    assert_eq!(plan.actions.len(), 1, "the old job is cancelled");
    let mut cancelled = running(&world.job_id());
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled]);
    world.reconcile();
    let upgraded = world.running_with(0, 0);
    world.now_ms += 30_000;
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(!status::is_stable(&world.reconciliation()));
    assert!(plan.requeue <= std::time::Duration::from_secs(30));
    world.now_ms += 31_000;
    let plan = world.reconcile();
    let rollback = plan
        .notes
        .iter()
        .find(|n| n.reason == "Rollback")
        .expect("rolled back");
    assert!(
        rollback
            .message
            .contains("0 of 1 completed checkpoints (kubernetes.operator.deployment.stability.min-completed-checkpoints)"),
        "{}",
        rollback.message
    );
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Effect::CancelJob { job_id, .. } if *job_id == upgraded)),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_switch_to_last_state_secures_the_stateless_job_with_a_savepoint_and_retains_from_then_on() {
    let mut world = World::new();
    let old = world.running_with(0, 3);
    world.reconcile();
    // The running job was submitted stateless: its checkpoints go with a cancel, so the
    // last-state upgrade must not cancel it.
    let job = world.resource.spec.job.as_mut().expect("job");
    job.upgrade_mode = flink_api::UpgradeMode::LastState;
    job.args = vec!["--rate".into(), "20".into()];
    world.resource.metadata.generation = Some(2);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: "file:/cp/chk-3".into(),
        completed_at: 900,
    });
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { job_id, .. }] if *job_id == old),
        "{:?}",
        plan.actions
    );
    let mut stopped = running(&old);
    stopped.state = FlinkJobState::Finished;
    world.observed = ready_cluster(vec![stopped]);
    world.observed.savepoint = Some(ObservedOperation::Completed("file:/sp/switch".into()));
    let plan = world.reconcile();
    let submission = submission(&plan).expect("submitted");
    assert_eq!(submission.restore_from.as_deref(), Some("file:/sp/switch"));
    assert_eq!(
        submission
            .configuration
            .get("execution.checkpointing.externalized-checkpoint-retention")
            .map(String::as_str),
        Some("RETAIN_ON_CANCELLATION"),
        "a last-state job keeps its checkpoints when cancelled"
    );
    // Its next last-state upgrade cancels it and resumes from its latest checkpoint.
    let new = submission.job_id;
    world.observed = ready_cluster(vec![running(&new)]);
    world.reconcile();
    world.resource.spec.job.as_mut().expect("job").args = vec!["--rate".into(), "30".into()];
    world.resource.metadata.generation = Some(3);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: "file:/cp/chk-9".into(),
        completed_at: 950,
    });
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::CancelJob { job_id, .. }] if *job_id == new),
        "{:?}",
        plan.actions
    );
}

/// A session job running on the shared cluster, its spec changed by `edit` (a new generation).
fn running_then(edit: impl FnOnce(&mut flink_api::FlinkSessionJobSpec)) -> World {
    let mut world = World::new();
    world.reconcile();
    let id = world.job_id();
    world.observed = ready_cluster(vec![running(&id)]);
    world.reconcile();
    world.reconcile();
    edit(&mut world.resource.spec);
    world.resource.metadata.generation = Some(2);
    world
}

#[test]
fn a_session_jobs_periodic_savepoints_are_flinkstatesnapshots_of_the_session_job() {
    let mut world = running_then(|spec| {
        spec.flink_configuration
            .get_or_insert_default()
            .set("kubernetes.operator.periodic.savepoint.interval", "10s");
    });
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "not due yet: {:?}", plan.actions);
    assert!(
        observation_needs(
            &world.resource,
            &world.defaults,
            &world.observed.cluster_configuration
        )
        .snapshot_resources
    );
    world.observed.snapshots = Some(Vec::new());
    world.now_ms = 20_000;
    let plan = world.reconcile();
    let [Effect::CreateSnapshot(snapshot)] = &plan.actions[..] else {
        panic!("expected one snapshot resource, got {:?}", plan.actions);
    };
    assert_eq!(
        snapshot.metadata.name.as_deref(),
        Some("first-savepoint-periodic-20000")
    );
    let labels = snapshot.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["job-reference.kind"], "FlinkSessionJob");
    assert_eq!(labels["job-reference.name"], "first");
    assert_eq!(
        snapshot.spec.job_reference.as_ref().and_then(|r| r.kind),
        Some(flink_api::snapshot::JobKind::FlinkSessionJob)
    );
}

#[test]
fn a_session_jobs_savepoint_nonce_in_the_status_takes_one_savepoint_through_the_session_cluster() {
    let mut world = running_then(|spec| {
        spec.job.as_mut().expect("job").savepoint_trigger_nonce = Some(1);
    });
    world.defaults.insert(
        "kubernetes.operator.snapshot.resource.enabled".into(),
        "false".into(),
    );
    let plan = world.reconcile();
    let trigger = match &plan.actions[..] {
        [
            Effect::TriggerSavepoint {
                cluster,
                trigger_id,
                ..
            },
        ] if cluster == "shared" => trigger_id.clone(),
        other => panic!("expected a savepoint of the session cluster, got {other:?}"),
    };
    let needs = observation_needs(
        &world.resource,
        &world.defaults,
        &world.observed.cluster_configuration,
    );
    assert_eq!(needs.snapshot.map(|(_, t)| t), Some(trigger));
    world.observed.snapshot = Some(ObservedOperation::Completed("file:/sp/savepoint-1".into()));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let last = world
        .resource
        .status
        .as_ref()
        .and_then(|s| s.job_status.as_ref())
        .and_then(|j| j.savepoint_info.as_ref())
        .and_then(|i| i.last_savepoint.clone())
        .expect("the savepoint is recorded");
    assert_eq!(last.location.as_deref(), Some("file:/sp/savepoint-1"));
    assert_eq!(last.trigger_nonce, Some(1));
}

#[test]
fn a_savepoint_job_submitted_deleting_its_checkpoints_is_not_cancelled_for_last_state() {
    let mut world = World::new();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::Savepoint;
    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set(
            "execution.checkpointing.externalized-checkpoint-retention",
            "DELETE_ON_CANCELLATION",
        );
    let plan = world.reconcile();
    let submitted = submission(&plan).expect("submitted");
    assert_eq!(
        submitted
            .configuration
            .get("execution.checkpointing.externalized-checkpoint-retention")
            .map(String::as_str),
        Some("DELETE_ON_CANCELLATION"),
        "the user's choice stands in savepoint mode"
    );
    let old = world.running_with(0, 3);
    world.reconcile();
    // A cancel would delete the checkpoints the last-state upgrade resumes from.
    let job = world.resource.spec.job.as_mut().expect("job");
    job.upgrade_mode = flink_api::UpgradeMode::LastState;
    job.args = vec!["--rate".into(), "20".into()];
    world.resource.metadata.generation = Some(2);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: "file:/cp/chk-3".into(),
        completed_at: 900,
    });
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { job_id, .. }] if *job_id == old),
        "{:?}",
        plan.actions
    );
}

#[test]
fn the_operators_rollback_defaults_apply_to_session_jobs_as_to_deployments() {
    // Fixed with the shared job core: a session job read its rollback, stability and health
    // settings from its own flinkConfiguration only, so the operator-wide defaults that roll
    // FlinkDeployments back left session jobs failed.
    let mut world = World::new();
    world.now_ms = 1_000_000;
    for (key, value) in [
        ("kubernetes.operator.deployment.rollback.enabled", "true"),
        ("kubernetes.operator.deployment.readiness.timeout", "60s"),
    ] {
        world.defaults.insert(key.into(), value.into());
    }
    world.reconcile();
    let stable_job = world.job_id();
    world.observed = ready_cluster(vec![running(&stable_job)]);
    world.reconcile();
    world.edit_to_bad_arguments();
    world.reconcile();
    let mut cancelled = running(&stable_job);
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled.clone()]);
    let bad_job = submitted_id(&world.reconcile()).expect("the new spec is submitted");
    let mut failed = running(&bad_job);
    failed.state = FlinkJobState::Failed;
    world.observed = ready_cluster(vec![cancelled, failed]);
    world.now_ms += 61_000;
    let plan = world.reconcile();
    assert!(
        plan.notes.iter().any(|n| n.reason == "Rollback"),
        "{:?}",
        plan.notes
    );
    let submission = submission(&plan).expect("the stable spec's job is submitted");
    assert!(submission.args.is_empty(), "{:?}", submission.args);
}

#[test]
fn an_unreadable_record_of_what_runs_names_the_fix() {
    // Both kinds now say the same (a session job's message used to stop at the parse error).
    let mut world = World::new();
    world.reconcile();
    world
        .resource
        .status
        .as_mut()
        .and_then(|s| s.reconciliation_status.as_mut())
        .expect("recorded")
        .last_reconciled_spec = Some("{not json".into());
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let error = plan.status.error.unwrap_or_default();
    assert!(
        error.contains("status.reconciliationStatus.lastReconciledSpec")
            && error.contains("Delete and recreate the resource, or restore the status"),
        "{error}"
    );
}

#[test]
fn a_session_jobs_suspension_and_resumption_are_announced_as_such() {
    // The shared start of an upgrade: a session job's suspension and resumption were both
    // announced as "upgrading".
    let mut world = World::new();
    world.reconcile();
    let id = world.job_id();
    world.observed = ready_cluster(vec![running(&id)]);
    world.reconcile();
    let announced = |plan: &Plan<flink_api::FlinkSessionJobStatus>| {
        plan.notes
            .iter()
            .find(|n| n.reason == "SpecChanged")
            .map(|n| n.message.clone())
            .unwrap_or_default()
    };
    world.resource.spec.job.as_mut().expect("job").state = flink_api::JobState::Suspended;
    world.resource.metadata.generation = Some(2);
    let plan = world.reconcile();
    assert!(
        announced(&plan).contains("suspending the job in stateless mode"),
        "{:?}",
        plan.notes
    );
    let mut cancelled = running(&id);
    cancelled.state = FlinkJobState::Canceled;
    world.observed = ready_cluster(vec![cancelled]);
    world.reconcile();
    world.resource.spec.job.as_mut().expect("job").state = flink_api::JobState::Running;
    world.resource.metadata.generation = Some(3);
    let plan = world.reconcile();
    assert!(
        announced(&plan).contains("resuming the job in stateless mode"),
        "{:?}",
        plan.notes
    );
}

/// As upstream: a session job's settings are the operator's defaults under its session
/// cluster's configuration under its own. A periodic savepoint interval set on the session
/// cluster applies to its jobs; the job's own setting wins.
#[test]
fn a_session_clusters_configuration_reaches_its_jobs_under_their_own() {
    // The session cluster takes a savepoint every 10 s; the job's own interval, if any.
    let twenty_seconds_later = |own: Option<&str>| {
        let mut world = running_then(|spec| {
            if let Some(own) = own {
                spec.flink_configuration
                    .get_or_insert_default()
                    .set("kubernetes.operator.periodic.savepoint.interval", own);
            }
        });
        world.defaults.insert(
            "kubernetes.operator.snapshot.resource.enabled".into(),
            "false".into(),
        );
        world.observed.cluster_configuration.insert(
            "kubernetes.operator.periodic.savepoint.interval".into(),
            "10s".into(),
        );
        world.now_ms = 20_000;
        world.reconcile().actions
    };
    let actions = twenty_seconds_later(None);
    assert!(
        matches!(&actions[..], [Effect::TriggerSavepoint { cluster, .. }] if cluster == "shared"),
        "the cluster's interval is due: {actions:?}"
    );
    let actions = twenty_seconds_later(Some("1h"));
    assert!(actions.is_empty(), "its own hour wins: {actions:?}");
}

/// A stateful session job needs checkpoint storage somewhere in that merge: refused, naming
/// the field and both places to fix it, when neither the session cluster nor the job sets it;
/// accepted when only the job does.
#[test]
fn a_stateful_session_job_without_checkpoint_storage_anywhere_is_refused() {
    let mut world = World::new();
    world.resource.spec.job.as_mut().expect("job").upgrade_mode = flink_api::UpgradeMode::LastState;
    world.observed.cluster_configuration.clear();
    let plan = world.reconcile();
    assert!(submission(&plan).is_none(), "{:?}", plan.actions);
    let error = plan.status.error.clone().unwrap_or_default();
    assert!(
        error.contains("spec.job.upgradeMode")
            && error.contains("FlinkDeployment `shared`")
            && error.contains("spec.flinkConfiguration"),
        "{error}"
    );

    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set("execution.checkpointing.dir", "file:///tmp/own-checkpoints");
    let plan = world.reconcile();
    assert!(submission(&plan).is_some(), "{:?}", plan.status.error);
}

#[test]
fn an_autoscaled_session_job_shows_the_autoscaler_and_its_writes_lead_the_plan() {
    use flink_operator::reconcile::autoscaling::AutoscalerView;
    use flink_operator::reconcile::autoscaling::step::{AutoscalerStep, with_step};
    let mut world = World::new();
    world.reconcile();
    let id = world.job_id();
    world.observed = ready_cluster(vec![running(&id)]);
    world.reconcile();
    let status = flink_api::AutoscalerStatus {
        phase: "Rescaling".into(),
        parallelism: [("map".to_string(), 2)].into(),
        ..Default::default()
    };
    let step = AutoscalerStep {
        view: Some(AutoscalerView {
            overrides: [("map".to_string(), 2)].into(),
            status: status.clone(),
            policy: None,
            redeploy: None,
            memory: None,
        }),
        actions: vec![Effect::SetResourceRequirements {
            cluster: "shared".into(),
            job_id: id.clone(),
            requirements: Default::default(),
        }],
        ..Default::default()
    };
    world.autoscaler = Some(step.clone());
    let plan = with_step(world.reconcile(), &step);
    assert_eq!(plan.status.autoscaler, Some(status.clone()));
    assert!(
        matches!(&plan.actions[..], [Effect::SetResourceRequirements { job_id, .. }, ..] if *job_id == id),
        "the autoscaler's write leads: {:?}",
        plan.actions
    );
    // A reconcile without the autoscaler's part (it could not read its state) keeps what the
    // status said, and the job's own decision asks for no rescale.
    world.autoscaler = None;
    let plan = world.decide();
    assert_eq!(plan.status.autoscaler, Some(status));
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::SetResourceRequirements { .. })),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_session_job_upgrade_waits_for_a_pending_status_savepoint() {
    let mut world = running_then(|spec| {
        let job = spec.job.as_mut().expect("job");
        job.upgrade_mode = flink_api::UpgradeMode::Savepoint;
        job.savepoint_trigger_nonce = Some(1);
    });
    world.defaults.insert(
        "kubernetes.operator.snapshot.resource.enabled".into(),
        "false".into(),
    );
    let plan = world.reconcile();
    assert!(matches!(
        &plan.actions[..],
        [Effect::TriggerSavepoint { .. }]
    ));
    world.observed.snapshot = Some(ObservedOperation::InProgress);
    world.resource.spec.job.as_mut().expect("job").parallelism = Some(2);
    world.resource.metadata.generation = Some(3);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "held: {:?}", plan.actions);
    world.observed.snapshot = Some(ObservedOperation::Completed("file:/sp/savepoint-1".into()));
    world.reconcile();
    world.observed.snapshot = None;
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_failed_session_job_says_why_in_its_status_once() {
    let mut world = World::new();
    let id = world.running_with(0, 0);
    world.reconcile();
    let mut failed = running(&id);
    failed.state = FlinkJobState::Failed;
    failed.last_modification = world.now_ms;
    world.observed = ready_cluster(vec![failed.clone()]);
    // Flink's exceptions do not name the failure yet (its cache): waited for, not invented.
    let plan = world.reconcile();
    assert!(plan.status.error.is_none(), "{:?}", plan.status.error);
    world.observed.job_failure = Some("java.lang.ArithmeticException: / by zero".into());
    let plan = world.reconcile();
    let error = plan.status.error.clone().expect("the failure is said");
    assert!(
        error.contains("JobFailed") && error.contains(&id) && error.contains("/ by zero"),
        "{error}"
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "Error" && n.message.contains("/ by zero"))
    );
    // Reported: observation no longer fetches the reason; the error stays, said once.
    world.observed.job_failure = None;
    world.now_ms += 60_000;
    let plan = world.reconcile();
    assert_eq!(plan.status.error.as_deref(), Some(error.as_str()));
    assert!(
        !plan.notes.iter().any(|n| n.reason == "Error"),
        "{:?}",
        plan.notes
    );
    // A failure Flink never explains is said after the settle time.
    let mut world = World::new();
    let id = world.running_with(0, 0);
    world.reconcile();
    let mut failed = running(&id);
    failed.state = FlinkJobState::Failed;
    world.observed = ready_cluster(vec![failed]);
    world.now_ms += 10_000;
    let plan = world.reconcile();
    assert!(
        plan.status
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Flink gave no reason")),
        "{:?}",
        plan.status.error
    );
}
