//! The FlinkDeployment decision, scenario by scenario, without a cluster: each test feeds the
//! resource and an observation, then feeds the decided status back in as the next reconcile
//! would, like the controller does.

mod autoscaler;
mod health;
mod lifecycle;
mod snapshots;
mod stateful;
mod upgrade_strategy;

use flink_api::deployment::JobManagerDeploymentStatus;
use flink_api::{FlinkDeployment, FlinkJobState, ReconciliationState, ResourceLifecycleState};
use flink_operator::reconcile::autoscaling::AutoscalerView;
use flink_operator::reconcile::autoscaling::step::{AutoscalerStep, with_step};
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
    /// The operator ConfigMap's log configuration files.
    log_defaults: BTreeMap<String, String>,
    /// `kubernetes.operator.ingress.manage`.
    manage_ingress: bool,
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
        log_defaults: BTreeMap::new(),
        manage_ingress: true,
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
            log_defaults: &self.log_defaults,
            snapshot_thresholds: Default::default(),
            error_shape: &Default::default(),
            manage_ingress: self.manage_ingress,
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

    /// The resource's `spec.job`, to edit.
    fn job(&mut self) -> &mut flink_api::JobSpec {
        self.resource.spec.job.as_mut().expect("job")
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
    plan.notes.iter().map(|n| n.reason.as_str()).collect()
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

/// Flink's Kubernetes HA, as a job's settings.
const HA: &[(&str, &str)] = &[
    ("high-availability.type", "kubernetes"),
    ("high-availability.storageDir", "file:///tmp/ha"),
];

const ROLLBACK: &[(&str, &str)] = &[
    ("kubernetes.operator.deployment.rollback.enabled", "true"),
    ("kubernetes.operator.deployment.readiness.timeout", "60s"),
];

/// The JobManager's container crash-loops, as the kubelet reports it.
fn crash_looping() -> flink_operator::reconcile::observed::WaitingContainer {
    flink_operator::reconcile::observed::WaitingContainer {
        pod: "counter-jm-0".into(),
        job_manager: true,
        container: "flink-main-container".into(),
        reason: "CrashLoopBackOff".into(),
        message: Some("back-off 40s".into()),
    }
}
