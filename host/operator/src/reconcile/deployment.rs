//! The decision for a FlinkDeployment: deploy, observe, upgrade (stateless), suspend, resume,
//! recover and delete, as one pure function of the resource, what was observed and the time.
//!
//! The status is the write-ahead log. An upgrade first records the target spec with state
//! `UPGRADING` (the intent), then tears the old cluster down, waits until its pods are gone
//! (never two clusters of one job), and deploys the target; a JobManager Deployment carrying the
//! target's generation means the deploy happened, so a crash between any two steps resumes at
//! the right one.

use super::job::{self, Draft};
use super::observed::{ObservedCluster, ObservedFlink, ObservedJob};
use super::reconciled_spec::ReconciledSpec;
use super::spec_diff::{DiffClass, deployment_diff};
use super::status::{
    self, error_json, error_message, observe_job, set_running_condition, state_name,
};
use super::upgrade_policy::UpgradePolicy;
use super::{Effect, Intervals, Note, Plan, health, job_id, secure, snapshots};
use crate::render::{self, RenderInput};
use flink_api::deployment::{JobManagerDeploymentStatus, TaskManagerInfo};
use flink_api::snapshot::JobKind;
use flink_api::validation::FieldError;
use flink_api::{
    FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, FlinkJobState, JobState,
    JobStatus, ReconciliationState, UpgradeMode, UpgradeProgress, UpgradeStep,
};
use std::collections::BTreeMap;

/// What observation must fetch for this resource besides the cluster's objects and jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservationNeeds {
    /// `(job id, trigger id)` of a stop-with-savepoint whose result is awaited.
    pub savepoint: Option<(String, String)>,
    /// The job whose latest completed checkpoint a last-state upgrade needs.
    pub checkpoints_of: Option<String>,
    /// `(job id, trigger id)` of a manual or periodic savepoint whose result is awaited.
    pub snapshot: Option<(String, String)>,
    /// `(job id, trigger id)` of a manual or periodic checkpoint whose result is awaited.
    pub checkpoint: Option<(String, String)>,
    /// The job whose restart and checkpoint counters the health checks or the stability rules
    /// need.
    pub counters_of: Option<String>,
    /// The job's FlinkStateSnapshots (a manual or periodic snapshot may be due).
    pub snapshot_resources: bool,
}

impl ObservationNeeds {
    /// What a job's upgrade, rollback and health checks need, the same for FlinkDeployments and
    /// FlinkSessionJobs: the awaited stop-with-savepoint of the recorded `job_id`, its counters
    /// when a health or stability rule of `settings` needs them, and its latest checkpoint when
    /// its state may have to be secured (a securing under way in whatever mode, or a stateful
    /// `job` whose spec changed or whose counters may call for a restart or rollback).
    /// `changed`: the spec's generation is not the recorded one.
    pub fn for_job(
        job_id: Option<String>,
        progress: Option<&flink_api::UpgradeProgress>,
        job: Option<&flink_api::JobSpec>,
        changed: bool,
        settings: &health::Settings,
    ) -> Self {
        let savepoint = match (progress, &job_id) {
            (Some(p), Some(job)) if p.step == UpgradeStep::Savepointing => {
                p.trigger_id.clone().map(|t| (job.clone(), t))
            }
            _ => None,
        };
        let securing = progress
            .is_some_and(|p| matches!(p.step, UpgradeStep::Cancelling | UpgradeStep::Savepointing));
        let stateful = job.is_some_and(|j| j.upgrade_mode.is_stateful());
        let running = job.is_some_and(|j| j.state == JobState::Running);
        let counters_of = job_id
            .clone()
            .filter(|_| running && settings.needs_counters());
        let checkpoints_of = if securing || (stateful && (changed || counters_of.is_some())) {
            job_id
        } else {
            None
        };
        Self {
            savepoint,
            checkpoints_of,
            snapshot: None,
            checkpoint: None,
            counters_of,
            snapshot_resources: false,
        }
    }

    /// Adds what manual and periodic snapshots need: the results of the triggers `job_status`
    /// records, and the job's snapshot resources when one may be due (its job runs and no
    /// upgrade is under way). `config`: the resource's flat configuration.
    pub fn with_snapshots(
        self,
        job_status: Option<&flink_api::JobStatus>,
        progress: Option<&flink_api::UpgradeProgress>,
        job: Option<&flink_api::JobSpec>,
        config: &BTreeMap<String, String>,
    ) -> Self {
        let job_id = job_status.and_then(|j| j.job_id.clone());
        let awaited = |trigger: Option<String>| job_id.clone().zip(trigger);
        let running = job_status.and_then(|j| j.state) == Some(flink_api::FlinkJobState::Running)
            && progress.is_none()
            && job.is_some_and(|j| j.state == JobState::Running);
        Self {
            snapshot: awaited(
                job_status
                    .and_then(|j| j.savepoint_info.as_ref())
                    .and_then(|i| i.trigger_id.clone()),
            ),
            checkpoint: awaited(
                job_status
                    .and_then(|j| j.checkpoint_info.as_ref())
                    .and_then(|i| i.trigger_id.clone()),
            ),
            // Also while an upgrade's savepoint is awaited: it is recorded as a resource.
            snapshot_resources: (self.savepoint.is_some() && snapshots::as_resources(config))
                || running
                    && snapshots::resources_needed(
                        config,
                        job_status,
                        job.and_then(|j| j.savepoint_trigger_nonce),
                        job.and_then(|j| j.checkpoint_trigger_nonce),
                    ),
            ..self
        }
    }
}

/// Whether `resource_generation` is not the generation of the spec `reconciliation` records.
pub fn spec_changed<S: serde::Serialize + serde::de::DeserializeOwned>(
    reconciliation: Option<&flink_api::ReconciliationStatus>,
    resource_generation: Option<i64>,
) -> bool {
    let recorded = reconciliation
        .and_then(|r| r.last_reconciled_spec.as_deref())
        .and_then(|t| ReconciledSpec::<S>::from_json(t).ok())
        .map(|r| r.generation);
    recorded.is_some() && recorded != resource_generation
}

/// Decided from the status and spec alone, so observation stays dumb.
pub fn observation_needs(
    resource: &FlinkDeployment,
    defaults: &BTreeMap<String, String>,
) -> ObservationNeeds {
    let status = resource.status.clone().unwrap_or_default();
    let job_id = status.job_status.as_ref().and_then(|j| j.job_id.clone());
    let changed = spec_changed::<FlinkDeploymentSpec>(
        status.reconciliation_status.as_ref(),
        resource.metadata.generation,
    );
    let config = job::configuration(defaults, resource.spec.configuration().flat());
    ObservationNeeds::for_job(
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
    )
}

/// Upstream's finalizer name, so resources move between the operators.
pub const FINALIZER: &str = "flinkdeployments.flink.apache.org/finalizer";

/// What deciding needs besides the resource and the observation.
#[derive(Clone, Debug)]
pub struct DecideContext<'a> {
    pub now_ms: i64,
    pub intervals: &'a Intervals,
    /// Operator-wide Flink configuration defaults.
    pub defaults: &'a BTreeMap<String, String>,
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
    if let Some(step) = ctx.autoscaler {
        // The autoscaler's writes (its state first) and events are this plan's.
        d.draft.actions.extend(step.actions.iter().cloned());
        d.draft.notes.extend(step.notes.iter().cloned());
    }
    d.observe();
    if let Some(autoscaler) = ctx.autoscaler.and_then(|step| step.view.as_ref()) {
        d.draft.status.autoscaler = Some(autoscaler.status.clone());
        if let Some(policy) = &autoscaler.policy {
            status::record_policy(&mut d.draft.status.policies, policy.clone());
        }
    }
    let Ok(last) = d.draft.last_reconciled::<FlinkDeploymentSpec>() else {
        return d.finish();
    };
    let mut errors = flink_api::validation::deployment(resource);
    errors.extend(ctx.tenancy.cloned());
    if let Some(last) = &last {
        errors.extend(flink_api::validation::deployment_change(
            &last.spec,
            &resource.spec,
        ));
    }
    if !d.draft.valid(&errors, last.is_some()) {
        return d.finish();
    }
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
            ),
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

    /// Folds the observation into the status: JobManager Deployment, job, cluster info.
    fn observe(&mut self) {
        let observed = self.observed;
        let jm_status = match &observed.job_manager {
            None => None,
            Some(_) if observed.pod_problem().is_some() => Some(JobManagerDeploymentStatus::Error),
            Some(jm) if jm.deleting => Some(JobManagerDeploymentStatus::Deploying),
            Some(jm) if jm.replicas > 0 && jm.ready_replicas >= jm.replicas => {
                match &observed.flink {
                    ObservedFlink::Reachable { .. } => Some(JobManagerDeploymentStatus::Ready),
                    _ => Some(JobManagerDeploymentStatus::DeployedNotReady),
                }
            }
            Some(_) => Some(JobManagerDeploymentStatus::Deploying),
        };
        match jm_status {
            Some(s) => self.draft.status.job_manager_deployment_status = Some(s),
            None if self.draft.status.job_manager_deployment_status.is_some() => {
                self.draft.status.job_manager_deployment_status =
                    Some(JobManagerDeploymentStatus::Missing)
            }
            None => {}
        }
        if let Some(problem) = &observed.pod_problem() {
            self.fail(
                "ClusterDeploymentException",
                format!("the JobManager or a TaskManager cannot run: {problem}"),
            );
        }
        if let ObservedFlink::Reachable {
            jobs,
            flink_version,
            flink_revision,
        } = &observed.flink
        {
            if let Some(version) = flink_version {
                self.draft
                    .status
                    .cluster_info
                    .insert("flink-version".into(), version.clone());
            }
            if let Some(revision) = flink_revision {
                self.draft
                    .status
                    .cluster_info
                    .insert("flink-revision".into(), revision.clone());
            }
            if self.resource.spec.is_application()
                && let Some(job) = self.current_job(jobs)
            {
                let before = self.draft.status.job_status.as_ref().and_then(|j| j.state);
                let updated = observe_job(self.draft.status.job_status.as_ref(), job);
                self.draft
                    .notes
                    .extend(status::job_state_change(before, job.state));
                let reported =
                    status::reports(self.draft.status.error.as_deref(), "JobFailed", &job.id);
                match (&observed.job_failure, job.state == FlinkJobState::Failed) {
                    (Some(why), true) => {
                        self.fail("JobFailed", format!("job {} failed: {why}", job.id))
                    }
                    // Observation skips the exceptions once they are reported.
                    (None, true) if !reported => self.fail(
                        "JobFailed",
                        format!("job {} failed: Flink gave no reason", job.id),
                    ),
                    _ => {}
                }
                self.draft.status.job_status = Some(updated);
            }
        }
    }

    /// The job this resource runs: the recorded id, else the newest job in the cluster.
    fn current_job<'j>(&self, jobs: &'j [ObservedJob]) -> Option<&'j ObservedJob> {
        let recorded = self
            .draft
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.as_deref());
        super::observed::current_job(jobs, recorded)
    }

    fn first_deployment(&mut self) {
        let target = ReconciledSpec {
            spec: self.resource.spec.clone(),
            generation: self.generation(),
            first_deployment: true,
            revision: 0,
        };
        self.draft
            .record_target(&target, ReconciliationState::Upgrading);
        self.draft.status.error = None;
        self.continue_upgrade(&target);
    }

    /// State `UPGRADING` toward `target`: tear down whatever else runs, then deploy it (from the
    /// secured state of a stateful upgrade).
    fn continue_upgrade(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        self.draft.progressing = true;
        // A restart or a rollback records its target first and then secures the state.
        if let Some(progress) = &self.draft.status.upgrade
            && matches!(
                progress.step,
                UpgradeStep::Savepointing | UpgradeStep::Cancelling
            )
            && progress.restore_path.is_none()
            && self.secure_state(progress.mode).is_none()
        {
            return;
        }
        let observed = self.observed;
        let deployed_target = observed.job_manager.as_ref().is_some_and(|jm| {
            !jm.deleting
                && jm.generation == Some(target.generation)
                && jm.revision == target.revision
        });
        if deployed_target {
            self.set_state(self.draft.done_state());
            self.draft.status.upgrade = None;
            return;
        }
        if !observed.is_gone() {
            if let Some(progress) = self.draft.status.upgrade.as_mut() {
                progress.step = UpgradeStep::StoppingCluster;
            }
            self.tear_down(false);
            return;
        }
        if target
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended)
        {
            self.set_state(self.draft.done_state());
            self.job_status().state = Some(FlinkJobState::Suspended);
            let kept = self
                .draft
                .status
                .upgrade
                .take()
                .and_then(|p| p.restore_path);
            let message = match &kept {
                Some(path) => {
                    format!("Job suspended: its cluster is stopped, its state kept at {path}")
                }
                None => "Job suspended: its cluster is stopped".to_string(),
            };
            self.draft.notes.push(Note::normal("Suspended", message));
            self.draft.progressing = false;
            return;
        }
        self.deploy(target);
    }

    /// Records the deploy as the intent, applies the cluster, then marks it deployed.
    fn deploy(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        let id = job_id::job_id(uid, target.generation, target.revision);
        let restore = if target.first_deployment {
            target
                .spec
                .job
                .as_ref()
                .and_then(|j| j.initial_savepoint_path.clone())
        } else {
            self.draft
                .status
                .upgrade
                .as_ref()
                .and_then(|p| p.restore_path.clone())
        };
        // Flink's HA services find a job's checkpoints by its id: last-state with HA keeps it.
        let id = match (
            &self.draft.status.upgrade,
            self.draft
                .status
                .job_status
                .as_ref()
                .and_then(|j| j.job_id.clone()),
        ) {
            (Some(p), Some(recorded))
                if p.mode == UpgradeMode::LastState && p.restore_path.is_none() =>
            {
                recorded
            }
            _ => id,
        };
        let mut input = RenderInput::for_resource(self.resource, &target.spec, self.ctx.defaults);
        input.autoscaler_overrides = self.autoscaler().map(|a| &a.overrides);
        input.autoscaler_memory = self.autoscaler().and_then(|a| a.memory.as_ref());
        input.generation = target.generation;
        input.revision = target.revision;
        input.restore_from = restore.as_deref();
        let application = target.spec.is_application();
        if application {
            input.job_id = Some(&id);
        }
        let objects = match render::render(&input) {
            Ok(objects) => objects,
            Err(e) => {
                self.fail("ValidationError", format!("{e}"));
                return;
            }
        };
        if application {
            let job = self.job_status();
            job.job_id = Some(id.clone());
            job.state = Some(FlinkJobState::Reconciling);
            job.start_time = None;
        }
        self.draft.status.job_manager_deployment_status =
            Some(JobManagerDeploymentStatus::Deploying);
        self.draft.status.error = None;
        if let Some(progress) = self.draft.status.upgrade.as_mut() {
            progress.step = UpgradeStep::Deploying;
        }
        // With HA, a kept job id resumes from Flink's own metadata, not from a path.
        let kept_job = application
            && self
                .draft
                .status
                .upgrade
                .as_ref()
                .is_some_and(|p| p.mode == UpgradeMode::LastState && p.restore_path.is_none());
        let carried = self.draft.status.health.take().unwrap_or_default();
        self.draft.status.health = Some(flink_api::DeploymentHealth {
            deployed_at: Some(self.ctx.now_ms),
            restored_from: if kept_job {
                carried.restored_from
            } else {
                restore.clone()
            },
            checkpointed: kept_job && carried.checkpointed,
            ..Default::default()
        });
        self.draft.intent = Some(self.draft.status.clone());
        self.draft
            .actions
            .push(Effect::ApplyCluster(Box::new(objects)));
        self.set_state(self.draft.done_state());
        // The restore path stays in `jobStatus.upgradeSavepointPath` and the savepoint history.
        self.draft.status.upgrade = None;
        if let Some(path) = &restore
            && !target.first_deployment
        {
            self.draft.notes.push(Note::normal(
                "Restore",
                format!("The new deployment restores from {path}"),
            ));
        }
        let what = if application {
            format!("job {id}")
        } else {
            "session cluster".to_string()
        };
        self.draft.notes.push(Note::normal(
            "Submit",
            format!(
                "Starting deployment of {what} (generation {})",
                target.generation
            ),
        ));
    }

    /// Stops the running cluster: cancels an application's job (best effort) and deletes the
    /// Deployments; the next reconciles wait until its pods are gone.
    fn tear_down(&mut self, deleting: bool) {
        self.draft.progressing = true;
        let observed = self.observed;
        let present = |d: &Option<super::observed::ObservedDeployment>| {
            d.as_ref().is_some_and(|d| !d.deleting)
        };
        if !present(&observed.job_manager) && !present(&observed.task_manager) {
            return;
        }
        if let ObservedFlink::Reachable { jobs, .. } = &observed.flink
            && let Some(job) = self.current_job(jobs)
            && !job.state.is_globally_terminal()
        {
            self.draft.actions.push(Effect::CancelJob {
                cluster: self.name().to_string(),
                job_id: job.id.clone(),
                best_effort: true,
            });
        }
        // Whatever the status says by now (a secured restore path) is written before the delete.
        if !deleting {
            self.draft.intent = Some(self.draft.status.clone());
        }
        self.draft.actions.push(Effect::DeleteCluster);
    }

    /// State `DEPLOYED`: what changed since, and what the running cluster needs.
    fn compare(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>) {
        let spec = &self.resource.spec;
        let diff = deployment_diff(&last.spec, spec);
        if let Some(progress) = &self.draft.status.upgrade
            && diff.class != DiffClass::Upgrade
        {
            // The change that started securing the state was reverted. Nothing irreversible
            // happened unless a stop or cancel was sent; then the job is stopping and must be
            // redeployed (with the current spec) from the state being secured.
            if progress.trigger_id.is_none() && progress.step != UpgradeStep::Cancelling {
                self.draft.status.upgrade = None;
                self.draft.status.error = None;
                self.draft.notes.push(Note::normal(
                    "SpecChanged",
                    "The change was reverted before the upgrade started; nothing to do",
                ));
            } else {
                return self.upgrade(last, "reverted after the job was stopped");
            }
        }
        match diff.class {
            _ if diff.is_empty() => {
                if self.reconciliation_state() == ReconciliationState::RolledBack {
                    // The user's spec is now what the rollback deployed.
                    let target = ReconciledSpec {
                        generation: self.generation(),
                        ..last.clone()
                    };
                    status::record_target(
                        &mut self.draft.status.reconciliation_status,
                        &target,
                        ReconciliationState::Deployed,
                        self.ctx.now_ms,
                    );
                }
                self.steady(last)
            }
            DiffClass::Ignore => {
                self.record(spec, ReconciliationState::Deployed);
                self.steady(last);
            }
            DiffClass::Scale => {
                self.draft.notes.push(Note::normal(
                    "SpecChanged",
                    format!(
                        "SCALE change(s) detected ({}), scaling the TaskManagers",
                        diff.fields(DiffClass::Scale)
                    ),
                ));
                self.record(spec, ReconciliationState::Deployed);
                let mut input = RenderInput::for_resource(self.resource, spec, self.ctx.defaults);
                input.autoscaler_overrides = self.autoscaler().map(|a| &a.overrides);
                input.autoscaler_memory = self.autoscaler().and_then(|a| a.memory.as_ref());
                input.job_id = self
                    .draft
                    .status
                    .job_status
                    .as_ref()
                    .and_then(|j| j.job_id.as_deref());
                match render::render(&input) {
                    Ok(objects) => {
                        if let Some(tm) = objects.task_manager {
                            self.draft
                                .actions
                                .push(Effect::ApplyTaskManagers(Box::new(tm)));
                        }
                    }
                    Err(e) => self.fail("ValidationError", e.to_string()),
                }
                self.draft.progressing = true;
            }
            DiffClass::Upgrade => self.upgrade(last, &diff.fields(DiffClass::Upgrade)),
            DiffClass::SavepointRedeploy => self.redeploy_from_savepoint(),
        }
    }

    fn upgrade(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>, fields: &str) {
        let spec = self.resource.spec.clone();
        let Some(mode) = self.draft.start_upgrade(&job::UpgradeStart {
            fields,
            from: last.spec.job.as_ref(),
            to: spec.job.as_ref(),
            policy: self.ctx.upgrade_policy,
        }) else {
            return;
        };
        let was_suspended = last
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended);
        let target = ReconciledSpec {
            spec: spec.clone(),
            generation: self.generation(),
            first_deployment: false,
            revision: 0,
        };
        let running_cluster = self.observed.job_manager.is_some();
        if mode.is_stateful() && spec.is_application() && was_suspended {
            // Resume from what the suspension secured.
            let path = self
                .draft
                .status
                .job_status
                .as_ref()
                .and_then(|j| j.upgrade_savepoint_path.clone());
            self.draft.status.upgrade =
                Some(self.progress(mode, UpgradeStep::StoppingCluster, path));
        } else if mode.is_stateful() && spec.is_application() && running_cluster {
            match self.secure_state(mode) {
                Some(()) => {}
                None => return,
            }
        }
        self.record(&spec, ReconciliationState::Upgrading);
        self.draft.status.error = None;
        self.draft.intent = Some(self.draft.status.clone());
        self.continue_upgrade(&target);
    }

    /// A new `savepointRedeployNonce`: the current state is discarded and the job redeployed
    /// from `initialSavepointPath` (upstream's semantics), which validation requires.
    fn redeploy_from_savepoint(&mut self) {
        let spec = self.resource.spec.clone();
        let Some(path) = spec
            .job
            .as_ref()
            .and_then(|j| j.initial_savepoint_path.clone())
        else {
            self.fail(
                "ValidationError",
                "spec.job.savepointRedeployNonce: changed without spec.job.initialSavepointPath; set the savepoint to redeploy from".into(),
            );
            return;
        };
        self.draft.notes.push(Note::normal(
            "SpecChanged",
            format!("SAVEPOINT_REDEPLOY: redeploying from {path}, the current state is not kept"),
        ));
        let mode = spec
            .job
            .as_ref()
            .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
        self.draft.status.upgrade =
            Some(self.progress(mode, UpgradeStep::StoppingCluster, Some(path)));
        self.record(&spec, ReconciliationState::Upgrading);
        self.draft.status.error = None;
        self.draft.intent = Some(self.draft.status.clone());
        let target = ReconciledSpec {
            spec,
            generation: self.generation(),
            first_deployment: false,
            revision: 0,
        };
        self.continue_upgrade(&target);
    }

    fn progress(
        &self,
        mode: UpgradeMode,
        step: UpgradeStep,
        restore: Option<String>,
    ) -> UpgradeProgress {
        secure::progress(
            mode,
            Some(step),
            self.generation(),
            restore,
            self.ctx.now_ms,
        )
    }

    /// Secures the running job's state before anything is deleted: stop-with-savepoint
    /// (`savepoint`), or cancel and take the latest retained checkpoint (`last-state` without
    /// HA; with HA, Flink's HA metadata is the state). `Some` once the restore path is recorded;
    /// `None` while it is under way or held (the status says why).
    fn secure_state(&mut self, mode: UpgradeMode) -> Option<()> {
        self.draft.progressing = true;
        let ha = flink_api::config::ha_enabled(&self.resource.spec.configuration());
        let (generation, now) = (self.generation(), self.ctx.now_ms);
        let mut progress = self
            .draft
            .status
            .upgrade
            .take()
            .unwrap_or_else(|| secure::progress(mode, None, generation, None, now));
        progress.target_generation = self.generation();
        if progress.restore_path.is_some() || progress.step == UpgradeStep::StoppingCluster {
            self.draft.status.upgrade = Some(progress);
            return Some(());
        }
        if mode == UpgradeMode::LastState && ha {
            progress.step = UpgradeStep::StoppingCluster;
            self.draft.status.upgrade = Some(progress);
            return Some(());
        }
        // A rollback does not wait for a JobManager that cannot start or a job that never ran.
        let rolling_back = self.reconciliation_state() == ReconciliationState::RollingBack;
        let jobs = match &self.observed.flink {
            ObservedFlink::Reachable { jobs, .. } => jobs.clone(),
            _ if rolling_back => return self.secure_from_record(progress),
            other => {
                self.draft.status.upgrade = Some(progress);
                let why = match other {
                    ObservedFlink::Unreachable(why) => format!(" ({why})"),
                    _ => String::new(),
                };
                self.draft.wait(&format!(
                    "the JobManager does not answer{why}; the upgrade waits to secure the job's state"
                ));
                return None;
            }
        };
        let Some(job) = self.current_job(&jobs).cloned() else {
            if rolling_back {
                return self.secure_from_record(progress);
            }
            self.draft.status.upgrade = Some(progress);
            self.fail("UpgradeBlocked", "no job found in the cluster to take its state from; the upgrade waits. Restore it by hand with initialSavepointPath, or switch to upgradeMode: stateless to drop the state".into());
            return None;
        };
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        let name = self.name().to_string();
        let config = &self.config;
        let out = secure::secure_job(
            &mut progress,
            &secure::SecureInput {
                uid,
                cluster: &name,
                job: &job,
                savepoint: self.observed.savepoint.as_ref(),
                latest_checkpoint: self.observed.latest_checkpoint.as_ref(),
                max_checkpoint_age: secure::max_checkpoint_age(config),
                format: snapshots::savepoint_format(config),
                started_from: self.started_from(),
                now_ms: self.ctx.now_ms,
            },
        );
        self.draft.secured(
            progress,
            out,
            &job::SecuredJob {
                config,
                owner: (JobKind::FlinkDeployment, &name),
                snapshots: self.observed.snapshots.as_deref(),
            },
        )
    }

    /// The state the current deployment was restored from, while nothing says the job moved on
    /// from it (no completed checkpoint was ever seen).
    fn state_as_deployed(&self) -> Option<String> {
        let health = self.draft.status.health.as_ref()?;
        (health.deployed_at.is_some() && !health.checkpointed)
            .then(|| health.restored_from.clone())
            .flatten()
    }

    /// The state the current job started from, when Flink confirms it is still its state: it
    /// reports no completed checkpoint.
    fn started_from(&self) -> Option<String> {
        let none_completed = self
            .observed
            .counters
            .as_ref()
            .is_some_and(|c| c.completed_checkpoints == Some(0));
        self.state_as_deployed().filter(|_| none_completed)
    }

    /// Secures a rollback's state without asking Flink (its JobManager cannot start, or the job
    /// never ran): a job that never completed a checkpoint still has the state it started from.
    /// Anything else needs a person: the newest checkpoint is only known to that JobManager.
    fn secure_from_record(&mut self, mut progress: UpgradeProgress) -> Option<()> {
        match self.state_as_deployed() {
            Some(path) => {
                self.draft.notes.push(Note::normal(
                    "StateFallback",
                    format!("The failing deployment completed no checkpoint: its state is still {path}, which the rollback restores"),
                ));
                progress.restore_path = Some(path.clone());
                progress.step = UpgradeStep::StoppingCluster;
                secure::record_secured(self.job_status(), None, Some(&path), true);
                self.draft.status.upgrade = Some(progress);
                self.draft.intent = Some(self.draft.status.clone());
                Some(())
            }
            None => {
                self.draft.status.upgrade = Some(progress);
                self.fail("RollbackBlocked", "the failing deployment's JobManager cannot be asked for the job's latest checkpoint: manual restore required. Set spec.job.initialSavepointPath to the newest retained checkpoint of the job and change spec.job.savepointRedeployNonce, or switch to upgradeMode: stateless to start from empty state".into());
                None
            }
        }
    }

    /// Nothing to change: keep the deployed cluster as it should be, judge its stability (and
    /// roll it back when it does not become stable in time) and its health.
    fn steady(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>) {
        if last
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended)
        {
            if !self.observed.is_gone() {
                self.tear_down(false);
            }
            return;
        }
        let settings = health::Settings::of(&self.config);
        if self.observed.job_manager.is_none() {
            return self.recover_missing(last, &settings);
        }
        let application = self.resource.spec.is_application();
        let job = match &self.observed.flink {
            ObservedFlink::Reachable { jobs, .. } if application => self.current_job(jobs).cloned(),
            _ => None,
        };
        if let Some(counters) = &self.observed.counters
            && counters.completed_checkpoints.is_some_and(|n| n > 0)
            && let Some(health) = self.draft.status.health.as_mut()
            && !health.checkpointed
        {
            health.checkpointed = true;
        }
        let healthy = match application {
            true => job
                .as_ref()
                .is_some_and(|j| j.state == FlinkJobState::Running),
            false => {
                self.draft.status.job_manager_deployment_status
                    == Some(JobManagerDeploymentStatus::Ready)
            }
        };
        if application && let Some(job) = &job {
            let verdict = health::judge(
                &settings,
                &mut self.draft.status.health,
                job,
                self.observed.counters.as_ref(),
                self.ctx.now_ms,
            );
            if let Some(why) = verdict.restart {
                return self.restart(last, why);
            }
            if let Some(change) = self.autoscaler().and_then(|a| a.redeploy.as_deref())
                && job.state == FlinkJobState::Running
            {
                let mode = last
                    .spec
                    .job
                    .as_ref()
                    .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
                self.draft.notes.push(Note::normal(
                    "Scaling",
                    format!(
                        "Redeploying the job in {} mode for the autoscaler's parallelism: {change}",
                        mode.name()
                    ),
                ));
                return self.redeploy_as_next_revision(last);
            }
            if let Some(why) = verdict.skipped
                && self.draft.status.error.is_none()
            {
                self.draft
                    .notes
                    .push(Note::warning("HealthCheckSkipped", why));
            }
        }
        if healthy && !self.draft.failed {
            self.draft.status.error = None;
        }
        if healthy && application {
            self.snapshots();
        }
        if self.recorded_stable() {
            if !healthy {
                self.draft.progressing = true;
            }
            return;
        }
        let unmet = match application {
            true => health::unmet_stability(
                &settings,
                job.as_ref(),
                self.observed.counters.as_ref(),
                self.ctx.now_ms,
            ),
            false if healthy => Vec::new(),
            false => vec!["the session cluster is not ready".into()],
        };
        if unmet.is_empty() {
            self.draft.mark_stable();
            return;
        }
        self.draft.progressing = true;
        if healthy {
            self.draft.waiting = Some(format!("Not stable yet: {}", unmet.join("; ")));
        }
        self.maybe_roll_back(last, &settings, &unmet);
    }

    /// A deployment that did not become stable within the readiness timeout goes back to the
    /// last stable spec, once (a rolled-back deployment is not rolled back again).
    fn maybe_roll_back(
        &mut self,
        last: &ReconciledSpec<FlinkDeploymentSpec>,
        settings: &health::Settings,
        unmet: &[String],
    ) {
        let stable = match health::rollback(
            settings,
            self.draft.status.reconciliation_status.as_ref(),
            self.draft.status.health.as_ref(),
            last,
            self.ctx.now_ms,
        ) {
            health::Rollback::No => return,
            health::Rollback::At(deadline) => {
                self.draft.requeue_at = Some(deadline);
                return;
            }
            health::Rollback::Due(stable) => stable,
        };
        let mut why = unmet.join("; ");
        if let Some(problem) = &self.observed.pod_problem() {
            why = format!("{why}; {problem}");
        }
        self.roll_back(last, stable, &why, settings.readiness_timeout);
    }

    /// Redeploys the last stable spec: records it (at this generation, as the next revision)
    /// with state `ROLLING_BACK`, secures the failing job's state in the stable spec's upgrade
    /// mode, then tears down and deploys like an upgrade. Ends `ROLLED_BACK`.
    fn roll_back(
        &mut self,
        last: &ReconciledSpec<FlinkDeploymentSpec>,
        stable: ReconciledSpec<FlinkDeploymentSpec>,
        why: &str,
        timeout: std::time::Duration,
    ) {
        self.draft.notes.push(Note::warning(
            "Rollback",
            format!(
                "Rolling back to the last stable spec (generation {}): not stable within {} s ({why})",
                stable.generation,
                timeout.as_secs()
            ),
        ));
        let target = self.draft.record_rollback(last, stable, self.generation());
        self.replace_deployment(&target);
    }

    /// Redeploys what runs now (a health restart, a FAILED job with restart.failed) as the next
    /// revision, securing its state first in its upgrade mode.
    fn restart(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>, why: String) {
        self.draft
            .notes
            .push(Note::warning("RestartUnhealthyJob", why));
        self.redeploy_as_next_revision(last);
    }

    /// Redeploys the spec that runs now as the next revision (with what the context adds to
    /// it now: the autoscaler's parallelism), securing the job's state first in its upgrade
    /// mode. After a rollback it stays rolled back (see `Draft::record_restart`).
    fn redeploy_as_next_revision(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>) {
        let target = self.draft.record_restart(last);
        self.replace_deployment(&target);
    }

    fn recorded_stable(&self) -> bool {
        self.draft.recorded_stable()
    }

    /// Writes the recorded `target` ahead, with the securing of the running job's state as
    /// the first step of a stateful one, and continues like an upgrade.
    fn replace_deployment(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        let mode = target
            .spec
            .job
            .as_ref()
            .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
        if mode.is_stateful() && target.spec.is_application() {
            self.draft.status.upgrade = Some(secure::progress(
                mode,
                None,
                target.generation,
                None,
                self.ctx.now_ms,
            ));
        }
        self.draft.write_ahead();
        self.continue_upgrade(target);
    }

    /// The JobManager Deployment is gone while the job should run: stateless and HA jobs are
    /// deployed again (HA metadata holds a stateful job's checkpoints); without HA the newest
    /// checkpoint is unknown, so a person decides.
    fn recover_missing(
        &mut self,
        last: &ReconciledSpec<FlinkDeploymentSpec>,
        settings: &health::Settings,
    ) {
        let mode = last
            .spec
            .job
            .as_ref()
            .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
        let ha = flink_api::config::ha_enabled(&last.spec.configuration());
        let key = flink_api::config::options::JM_DEPLOYMENT_RECOVERY.key;
        if !settings.jm_recovery {
            self.fail(
                "DeploymentMissing",
                format!("the JobManager Deployment is missing and {key} is false; redeploy it with a new restartNonce"),
            );
        } else if !mode.is_stateful() || !last.spec.is_application() {
            self.draft.notes.push(Note::warning(
                "RecoverDeployment",
                "The JobManager Deployment is missing; deploying it again (stateless)",
            ));
            self.deploy(last);
        } else if ha {
            self.draft.notes.push(Note::warning(
                "RecoverDeployment",
                "The JobManager Deployment is missing; deploying it again with the same job id, which resumes from its high availability metadata",
            ));
            self.draft.status.upgrade = Some(secure::progress(
                UpgradeMode::LastState,
                Some(UpgradeStep::Deploying),
                last.generation,
                None,
                self.ctx.now_ms,
            ));
            self.deploy(last);
        } else {
            let known = self
                .draft
                .status
                .job_status
                .as_ref()
                .and_then(|j| j.upgrade_savepoint_path.clone())
                .map_or_else(String::new, |p| format!(" (it was deployed from {p})"));
            self.fail(
                "DeploymentMissing",
                format!("the JobManager Deployment is missing and the job has no high availability metadata, so its newest checkpoint is unknown: manual restore required{known}. Set spec.job.initialSavepointPath to the newest retained checkpoint of the job and change spec.job.savepointRedeployNonce"),
            );
        }
    }

    /// Manual and periodic savepoints of the running job, and the history they leave.
    fn snapshots(&mut self) {
        let ObservedFlink::Reachable { jobs, .. } = &self.observed.flink else {
            return;
        };
        let Some(job) = self.current_job(jobs).cloned() else {
            return;
        };
        let config = render::flink_config(&RenderInput::for_resource(
            self.resource,
            &self.resource.spec,
            self.ctx.defaults,
        ))
        .unwrap_or_default();
        let name = self.name().to_string();
        self.draft.snapshots(&snapshots::RunningJob {
            uid: self.resource.metadata.uid.as_deref().unwrap_or_default(),
            cluster: &name,
            job: &job,
            spec: self.resource.spec.job.as_ref(),
            config: &config,
            owner: (JobKind::FlinkDeployment, &name),
            savepoint: self.observed.snapshot.as_ref(),
            checkpoint: self.observed.checkpoint.as_ref(),
            resources: self.observed.snapshots.as_deref(),
            now_ms: self.ctx.now_ms,
        });
    }

    fn delete(&mut self) {
        if !self.has_finalizer() {
            return;
        }
        let observed = self.observed;
        if !observed.session_jobs.is_empty() {
            let message = format!(
                "Waiting for the session jobs {} to be deleted before deleting the session cluster",
                observed.session_jobs.join(", ")
            );
            if self
                .draft
                .status
                .error
                .as_deref()
                .map(error_message)
                .as_deref()
                != Some(message.as_str())
            {
                self.draft
                    .notes
                    .push(Note::warning("CleanupFailed", message.clone()));
            }
            self.draft.status.error = Some(error_json("DeletionBlocked", &message));
            self.draft.status.lifecycle_state = Some(flink_api::ResourceLifecycleState::Deleting);
            self.draft.progressing = true;
            return;
        }
        if observed.is_gone() {
            self.draft.actions.push(Effect::RemoveFinalizer);
            return;
        }
        if let Some(note) =
            super::cleanup::timed_out(&self.resource.metadata, &self.config, self.ctx.now_ms)
        {
            self.draft.notes.push(note);
            self.draft.actions.push(Effect::RemoveFinalizer);
            return;
        }
        if self.draft.status.lifecycle_state != Some(flink_api::ResourceLifecycleState::Deleting) {
            self.draft
                .notes
                .push(Note::normal("Cleanup", "Cleaning up the Flink cluster"));
        }
        if self.savepoint_on_deletion() {
            let already = self
                .draft
                .status
                .upgrade
                .as_ref()
                .is_some_and(|p| p.restore_path.is_some());
            if self.secure_state(UpgradeMode::Savepoint).is_none() {
                return;
            }
            if already {
                return self.tear_down(true);
            }
            // The resource is going away: the path stays in the event (and the status until then).
            let path = self
                .draft
                .status
                .job_status
                .as_ref()
                .and_then(|j| j.upgrade_savepoint_path.clone());
            self.draft.notes.push(Note::normal(
                "SavepointOnDeletion",
                format!(
                    "The job was stopped with savepoint {}",
                    path.unwrap_or_default()
                ),
            ));
            self.draft.intent = Some(self.draft.status.clone());
        }
        self.tear_down(true);
    }

    /// `kubernetes.operator.job.savepoint-on-deletion` and a running job (or its savepoint
    /// already under way).
    fn savepoint_on_deletion(&self) -> bool {
        let enabled = self
            .config
            .get("kubernetes.operator.job.savepoint-on-deletion")
            .is_some_and(|v| v.trim() == "true");
        if !enabled || !self.resource.spec.is_application() {
            return false;
        }
        if self
            .draft
            .status
            .upgrade
            .as_ref()
            .is_some_and(|p| p.trigger_id.is_some() || p.restore_path.is_some())
        {
            return true;
        }
        matches!(&self.observed.flink, ObservedFlink::Reachable { jobs, .. }
            if self.current_job(jobs).is_some_and(|j| j.state == FlinkJobState::Running))
    }

    fn finish(mut self) -> Plan<FlinkDeploymentStatus> {
        let deleting = self.resource.metadata.deletion_timestamp.is_some();
        let reconciled_job_state = job::reconciled_job_state::<FlinkDeploymentSpec>(
            self.draft.status.reconciliation_status.as_ref(),
            |spec| spec.job,
        );
        let generation = self.generation();
        self.draft
            .settle(reconciled_job_state, deleting, generation);
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
        if self.observed.pod_problem().is_some() {
            // A crash-looping pod is not hot-looped on: the kubelet's back-off rules its pace.
            self.draft.progressing = false;
        }
        self.draft.into_plan(self.ctx.intervals)
    }
}
