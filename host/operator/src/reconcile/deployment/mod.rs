//! The decision for a FlinkDeployment: deploy, observe, upgrade (stateless), suspend, resume,
//! recover and delete, as one pure function of the resource, what was observed and the time.
//!
//! The status is the write-ahead log. An upgrade first records the target spec with state
//! `UPGRADING` (the intent), then tears the old cluster down, waits until its pods are gone
//! (never two clusters of one job), and deploys the target; a JobManager Deployment carrying the
//! target's generation means the deploy happened, so a crash between any two steps resumes at
//! the right one.

mod delete;
mod observe;
mod state;
mod steady;
mod upgrade;

use super::job::{self, Draft};
use super::observed::{ObservedCluster, ObservedFlink, ObservedJob};
use super::reconciled_spec::ReconciledSpec;
use super::spec_diff::{DiffClass, deployment_diff};
use super::status::{self, error_message, observe_job, set_running_condition, state_name};
use super::upgrade_policy::UpgradePolicy;
use super::{Effect, Intervals, Note, Plan, Reason, health, job_id, job_snapshots, secure};
use crate::render::{self, RenderInput};
use flink_api::deployment::{JobManagerDeploymentStatus, TaskManagerInfo};
use flink_api::snapshot::JobKind;
use flink_api::validation::FieldError;
use flink_api::{
    FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, FlinkJobState, JobState,
    JobStatus, ReconciliationState, UpgradeMode, UpgradeProgress, UpgradeStep,
};
use std::collections::BTreeMap;

/// Decided from the status and spec alone, so observation stays dumb.
pub fn observation_needs(
    resource: &FlinkDeployment,
    defaults: &BTreeMap<String, String>,
) -> job::ObservationNeeds {
    let status = resource.status.clone().unwrap_or_default();
    let job_id = status.job_status.as_ref().and_then(|j| j.job_id.clone());
    let changed = job::spec_changed::<FlinkDeploymentSpec>(
        status.reconciliation_status.as_ref(),
        resource.metadata.generation,
    );
    let config = job::configuration(defaults, resource.spec.configuration().flat());
    let requirements_of = job_id
        .clone()
        .filter(|_| changed && super::in_place::wanted(&config).is_some());
    let needs = job::ObservationNeeds::for_job(
        job_id,
        status.upgrade.as_ref(),
        resource.spec.job.as_ref(),
        changed,
        &health::Settings::of(&config),
    )
    .with_snapshots(
        status.job_status.as_ref(),
        status.upgrade.as_ref(),
        resource.spec.job.as_ref(),
        &config,
    );
    job::ObservationNeeds {
        requirements_of,
        ..needs
    }
}

/// Upstream's finalizer name, so resources move between the operators.
pub const FINALIZER: &str = "flinkdeployments.flink.apache.org/finalizer";

/// The error `type` of a cluster whose pods cannot run (upstream's exception name).
const CLUSTER_FAILED: &str = "ClusterDeploymentException";
/// The error `type` of a JobManager Deployment that is missing and is not deployed again.
const DEPLOYMENT_MISSING: &str = "DeploymentMissing";

/// What deciding needs besides the resource and the observation.
#[derive(Clone, Debug)]
pub struct DecideContext<'a> {
    pub now_ms: i64,
    pub intervals: &'a Intervals,
    /// Operator-wide Flink configuration defaults.
    pub defaults: &'a BTreeMap<String, String>,
    /// The operator ConfigMap's log configuration files (`log4j-console.properties`,
    /// `logback-console.xml`), for a spec without its own.
    pub log_defaults: &'a BTreeMap<String, String>,
    /// The operator's caps on every resource's savepoint history.
    pub snapshot_thresholds: crate::reconcile::job_snapshots::HistoryThresholds,
    /// How `status.error` is shaped (the operator's `exception.*` settings).
    pub error_shape: &'a super::status::ErrorShape,
    /// `kubernetes.operator.ingress.manage`: `spec.ingress` becomes an Ingress; off, it is left
    /// alone (a warning says so).
    pub manage_ingress: bool,
    /// The tenant's upgrade-strategy plugin's verdict on the upgrade about to start
    /// (`upgrade_policy::pending_upgrade`), when the tenant has one.
    pub upgrade_policy: Option<&'a UpgradePolicy>,
    /// The autoscaler's part, when it is enabled: the parallelism a deploy keeps, the status it
    /// shows and the scaling plugin's decision.
    pub autoscaler: Option<&'a super::autoscaling::step::AutoscalerStep>,
    /// Why the resource's tenant cannot be told (a shared namespace without a valid tenant
    /// label): an error of the resource like an invalid spec, so nothing changes until fixed.
    pub tenancy: Option<&'a FieldError>,
}

pub fn decide(
    resource: &FlinkDeployment,
    observed: &ObservedCluster,
    ctx: &DecideContext,
) -> Plan<FlinkDeploymentStatus> {
    let mut d = Decision::new(resource, observed, ctx);
    if resource.metadata.deletion_timestamp.is_some() {
        d.delete();
        return d.finish();
    }
    if !d.has_finalizer() {
        d.draft.actions.push(Effect::AddFinalizer);
    }
    d.observe();
    if let Some(autoscaler) = ctx.autoscaler.and_then(|step| step.view.as_ref()) {
        d.draft.status.autoscaler = Some(autoscaler.status.clone());
        if let Some(policy) = &autoscaler.policy {
            status::record_policy(&mut d.draft.status.policies, policy.clone());
        }
    }
    let checked = d.draft.recorded_and_valid::<FlinkDeploymentSpec>(
        flink_api::validation::deployment(resource),
        ctx.tenancy,
        |last| flink_api::validation::deployment_change(last, &resource.spec),
    );
    let Ok(last) = checked else {
        return d.finish();
    };
    match last {
        None => d.first_deployment(),
        Some(last)
            if matches!(
                d.reconciliation_state(),
                ReconciliationState::Upgrading | ReconciliationState::RollingBack
            ) =>
        {
            d.continue_upgrade(&last)
        }
        // Rolled back: the user's spec at this generation is not deployed again until it changes.
        Some(last)
            if d.reconciliation_state() == ReconciliationState::RolledBack
                && last.generation == d.generation() =>
        {
            d.steady(&last)
        }
        Some(last) => d.compare(&last),
    }
    d.finish()
}

struct Decision<'a> {
    resource: &'a FlinkDeployment,
    observed: &'a ObservedCluster,
    ctx: &'a DecideContext<'a>,
    draft: Draft<FlinkDeploymentStatus>,
    /// The operator's view of the job's configuration (`job::configuration`), built once.
    config: BTreeMap<String, String>,
}

impl<'a> Decision<'a> {
    fn new(
        resource: &'a FlinkDeployment,
        observed: &'a ObservedCluster,
        ctx: &'a DecideContext<'a>,
    ) -> Self {
        Self {
            resource,
            observed,
            ctx,
            draft: Draft::new(
                resource.status.clone().unwrap_or_default(),
                crate::redact::Redactor::for_resource(resource).with_defaults(ctx.defaults),
                ctx.now_ms,
            )
            .with_error_shape(ctx.error_shape),
            config: job::configuration(ctx.defaults, resource.spec.configuration().flat()),
        }
    }

    /// What the autoscaler hands this decision, when the deployment is autoscaled.
    fn autoscaler(&self) -> Option<&'a super::autoscaling::AutoscalerView> {
        self.ctx.autoscaler.and_then(|step| step.view.as_ref())
    }

    fn name(&self) -> &str {
        self.resource.metadata.name.as_deref().unwrap_or_default()
    }

    fn generation(&self) -> i64 {
        self.resource.metadata.generation.unwrap_or(0)
    }

    fn has_finalizer(&self) -> bool {
        job::has_finalizer(self.resource.metadata.finalizers.as_ref(), FINALIZER)
    }

    fn reconciliation_state(&self) -> ReconciliationState {
        self.draft.state()
    }

    fn job_status(&mut self) -> &mut JobStatus {
        self.draft.job_status()
    }

    fn fail(&mut self, kind: &str, message: String) {
        self.draft.fail(kind, message);
    }

    /// Records `spec` (at the current generation) as what is deployed or being deployed.
    fn record(&mut self, spec: &FlinkDeploymentSpec, state: ReconciliationState) {
        let generation = self.generation();
        self.draft.record(spec, generation, state);
    }

    fn set_state(&mut self, state: ReconciliationState) {
        self.draft.set_state(state);
    }

    /// The job this resource runs as its JobManager lists it, when it answered
    /// ([`Self::current_job`]).
    fn observed_job(&self) -> Option<&'a ObservedJob> {
        let observed: &'a ObservedCluster = self.observed;
        match &observed.flink {
            ObservedFlink::Reachable { jobs, .. } => self.current_job(jobs),
            _ => None,
        }
    }

    /// The job this resource runs: the recorded id, else the newest job in the cluster. A
    /// session cluster runs none of its own: the jobs it lists are its session jobs'.
    fn current_job<'j>(&self, jobs: &'j [ObservedJob]) -> Option<&'j ObservedJob> {
        if !self.resource.spec.is_application() {
            return None;
        }
        let recorded = self
            .draft
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.as_deref());
        super::observed::current_job(jobs, recorded)
    }

    /// The cluster cannot run: its pods fail (crash loop, image pull), or its JobManager
    /// Deployment is missing and cannot be recovered, and it is not running again since.
    fn cluster_failed(&self) -> bool {
        use JobManagerDeploymentStatus as J;
        let status = &self.draft.status;
        let failure = status
            .error
            .as_deref()
            .and_then(status::error_type)
            .is_some_and(|kind| kind == CLUSTER_FAILED || kind == DEPLOYMENT_MISSING);
        match status.job_manager_deployment_status {
            Some(J::Error) => true,
            Some(J::Ready) | None => false,
            Some(_) => failure,
        }
    }

    fn finish(mut self) -> Plan<FlinkDeploymentStatus> {
        let deleting = self.resource.metadata.deletion_timestamp.is_some();
        let cluster_failed = self.cluster_failed();
        let reconciled_job_state = self.draft.settle::<FlinkDeploymentSpec>(
            &self.resource.metadata,
            |spec| spec.job,
            cluster_failed,
        );
        let job_state = self.draft.status.job_status.as_ref().and_then(|j| j.state);
        let application = self.resource.spec.is_application();
        let (running, reason, message) = if reconciled_job_state == Some(JobState::Suspended) {
            (false, "Suspended", "The job is suspended".to_string())
        } else if application {
            match job_state {
                Some(FlinkJobState::Running) => {
                    (true, "JobRunning", "The job is running".to_string())
                }
                Some(state) => (
                    false,
                    "JobNotRunning",
                    format!("The job is {}", state_name(state)),
                ),
                None => (
                    false,
                    "JobNotRunning",
                    "The job has not been observed yet".to_string(),
                ),
            }
        } else if self.draft.status.job_manager_deployment_status
            == Some(JobManagerDeploymentStatus::Ready)
        {
            (
                true,
                "ClusterReady",
                "The session cluster is ready".to_string(),
            )
        } else {
            (
                false,
                "ClusterNotReady",
                "The session cluster is not ready".to_string(),
            )
        };
        let message = match (&self.draft.waiting, running) {
            (Some(why), false) => why.clone(),
            (Some(why), true) => format!("{message}. {why}"),
            _ => message,
        };
        if !deleting {
            let generation = self.generation();
            set_running_condition(
                &mut self.draft.status.conditions,
                running,
                reason,
                &message,
                generation,
                self.ctx.now_ms,
            );
            if self.resource.spec.mode_or_default()
                == flink_api::deployment::KubernetesDeploymentMode::Standalone
            {
                let mut input = RenderInput::for_resource(
                    self.resource,
                    &self.resource.spec,
                    self.ctx.defaults,
                );
                input.autoscaler_overrides = self.autoscaler().map(|a| &a.overrides);
                input.autoscaler_memory = self.autoscaler().and_then(|a| a.memory.as_ref());
                let config = render::flink_config(&input).unwrap_or_default();
                self.draft.status.task_manager = Some(TaskManagerInfo {
                    label_selector: Some(render::task_manager_selector(
                        self.name(),
                        self.resource.spec.mode_or_default(),
                    )),
                    replicas: render::task_manager_replicas(&self.resource.spec, &config),
                });
            }
        }
        if self.observed.pod_problem(false).is_some() {
            // A crash-looping pod is not hot-looped on: the kubelet's back-off rules its pace.
            self.draft.progressing = false;
        }
        self.draft.into_plan(self.ctx.intervals)
    }
}
