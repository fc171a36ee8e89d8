//! The decision for a FlinkDeployment: deploy, observe, upgrade (stateless), suspend, resume,
//! recover and delete, as one pure function of the resource, what was observed and the time.
//!
//! The status is the write-ahead log. An upgrade first records the target spec with state
//! `UPGRADING` (the intent), then tears the old cluster down, waits until its pods are gone
//! (never two clusters of one job), and deploys the target; a JobManager Deployment carrying the
//! target's generation means the deploy happened, so a crash between any two steps resumes at
//! the right one.

use super::observed::{ObservedCluster, ObservedFlink, ObservedJob};
use super::reconciled_spec::ReconciledSpec;
use super::spec_diff::{DiffClass, deployment_diff};
use super::status::{
    error_json, error_message, lifecycle, observe_job, set_running_condition, state_name,
};
use super::{Action, Intervals, Note, Plan, job_id};
use crate::render::{self, RenderInput};
use flink_api::deployment::{JobManagerDeploymentStatus, TaskManagerInfo};
use flink_api::{
    FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, FlinkJobState, JobState,
    JobStatus, ReconciliationState, ReconciliationStatus, UpgradeMode,
};
use std::collections::BTreeMap;

/// Upstream's finalizer name, so resources move between the operators.
pub const FINALIZER: &str = "flinkdeployments.flink.apache.org/finalizer";

/// What deciding needs besides the resource and the observation.
#[derive(Clone, Debug)]
pub struct DecideContext<'a> {
    pub now_ms: i64,
    pub intervals: &'a Intervals,
    /// Operator-wide Flink configuration defaults.
    pub defaults: &'a BTreeMap<String, String>,
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
        d.actions.push(Action::AddFinalizer);
    }
    d.observe();
    let recorded = d
        .status
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.last_reconciled_spec.clone());
    let last = match recorded
        .as_deref()
        .map(ReconciledSpec::<FlinkDeploymentSpec>::from_json)
    {
        None => None,
        Some(Ok(last)) => Some(last),
        Some(Err(why)) => {
            d.fail(
                "ReconciliationError",
                format!("status.reconciliationStatus.lastReconciledSpec: {why}; the operator cannot tell what is deployed. Delete and recreate the resource, or restore the status"),
            );
            return d.finish();
        }
    };
    let mut errors = flink_api::validation::deployment(resource);
    if let Some(last) = &last {
        errors.extend(flink_api::validation::deployment_change(
            &last.spec,
            &resource.spec,
        ));
    }
    if !errors.is_empty() {
        let message = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let kept = if last.is_some() {
            " The last valid spec keeps running."
        } else {
            ""
        };
        d.fail("ValidationError", format!("{message}.{kept}"));
        return d.finish();
    }
    match last {
        None => d.first_deployment(),
        Some(last) if d.reconciliation_state() == ReconciliationState::Upgrading => {
            d.continue_upgrade(&last)
        }
        Some(last) => d.compare(&last),
    }
    d.finish()
}

struct Decision<'a> {
    resource: &'a FlinkDeployment,
    observed: &'a ObservedCluster,
    ctx: &'a DecideContext<'a>,
    status: FlinkDeploymentStatus,
    intent: Option<FlinkDeploymentStatus>,
    actions: Vec<Action>,
    notes: Vec<Note>,
    /// Something is moving: look again soon.
    progressing: bool,
    /// An error was recorded this time (and must not be cleared by a healthy observation).
    failed: bool,
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
            status: resource.status.clone().unwrap_or_default(),
            intent: None,
            actions: Vec::new(),
            notes: Vec::new(),
            progressing: false,
            failed: false,
        }
    }

    fn name(&self) -> &str {
        self.resource.metadata.name.as_deref().unwrap_or_default()
    }

    fn generation(&self) -> i64 {
        self.resource.metadata.generation.unwrap_or(0)
    }

    fn has_finalizer(&self) -> bool {
        self.resource
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
    }

    fn reconciliation_state(&self) -> ReconciliationState {
        self.status
            .reconciliation_status
            .as_ref()
            .map(|r| r.state)
            .unwrap_or_default()
    }

    fn job_status(&mut self) -> &mut JobStatus {
        self.status
            .job_status
            .get_or_insert_with(JobStatus::default)
    }

    fn fail(&mut self, kind: &str, message: String) {
        let error = error_json(kind, &message);
        if self.status.error.as_deref() != Some(error.as_str()) {
            let reason = if kind == "ValidationError" {
                "ValidationError"
            } else {
                "Error"
            };
            self.notes.push(Note::warning(reason, message));
        }
        self.status.error = Some(error);
        self.failed = true;
    }

    /// Records `spec` (at the current generation) as what is deployed or being deployed.
    fn record(&mut self, spec: &FlinkDeploymentSpec, state: ReconciliationState, first: bool) {
        let text = ReconciledSpec {
            spec: spec.clone(),
            generation: self.generation(),
            first_deployment: first,
        }
        .to_json();
        let previous = self.status.reconciliation_status.take().unwrap_or_default();
        self.status.reconciliation_status = Some(ReconciliationStatus {
            reconciliation_timestamp: self.ctx.now_ms,
            last_reconciled_spec: Some(text),
            last_stable_spec: previous.last_stable_spec,
            state,
        });
    }

    fn set_state(&mut self, state: ReconciliationState) {
        if let Some(r) = self.status.reconciliation_status.as_mut()
            && r.state != state
        {
            r.state = state;
            r.reconciliation_timestamp = self.ctx.now_ms;
        }
    }

    /// Folds the observation into the status: JobManager Deployment, job, cluster info.
    fn observe(&mut self) {
        let observed = self.observed;
        let jm_status = match &observed.job_manager {
            None => None,
            Some(_) if observed.pod_problem.is_some() => Some(JobManagerDeploymentStatus::Error),
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
            Some(s) => self.status.job_manager_deployment_status = Some(s),
            None if self.status.job_manager_deployment_status.is_some() => {
                self.status.job_manager_deployment_status =
                    Some(JobManagerDeploymentStatus::Missing)
            }
            None => {}
        }
        if let Some(problem) = &observed.pod_problem {
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
                self.status
                    .cluster_info
                    .insert("flink-version".into(), version.clone());
            }
            if let Some(revision) = flink_revision {
                self.status
                    .cluster_info
                    .insert("flink-revision".into(), revision.clone());
            }
            if self.resource.spec.is_application()
                && let Some(job) = self.current_job(jobs)
            {
                let before = self.status.job_status.as_ref().and_then(|j| j.state);
                let updated = observe_job(self.status.job_status.as_ref(), job);
                if before != Some(job.state) {
                    self.notes.push(Note::normal(
                        "JobStatusChanged",
                        format!(
                            "Job status changed from {} to {}",
                            before.map_or("nothing", state_name),
                            state_name(job.state)
                        ),
                    ));
                }
                self.status.job_status = Some(updated);
            }
        }
    }

    /// The job this resource runs: the recorded id, else the newest job in the cluster.
    fn current_job<'j>(&self, jobs: &'j [ObservedJob]) -> Option<&'j ObservedJob> {
        let recorded = self
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.as_deref());
        match recorded {
            Some(id) => jobs.iter().find(|j| j.id == id),
            None => jobs.iter().max_by_key(|j| j.start_time),
        }
    }

    fn first_deployment(&mut self) {
        let spec = self.resource.spec.clone();
        self.record(&spec, ReconciliationState::Upgrading, true);
        self.status.error = None;
        let target = ReconciledSpec {
            spec,
            generation: self.generation(),
            first_deployment: true,
        };
        self.continue_upgrade(&target);
    }

    /// State `UPGRADING` toward `target`: tear down whatever else runs, then deploy it.
    fn continue_upgrade(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        self.progressing = true;
        let observed = self.observed;
        let deployed_target = observed
            .job_manager
            .as_ref()
            .is_some_and(|jm| !jm.deleting && jm.generation == Some(target.generation));
        if deployed_target {
            self.set_state(ReconciliationState::Deployed);
            return;
        }
        if !observed.is_gone() {
            self.tear_down(false);
            return;
        }
        if target
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended)
        {
            self.set_state(ReconciliationState::Deployed);
            self.job_status().state = Some(FlinkJobState::Suspended);
            self.notes.push(Note::normal(
                "Suspended",
                "Job suspended: its cluster is stopped",
            ));
            self.progressing = false;
            return;
        }
        self.deploy(target);
    }

    /// Records the deploy as the intent, applies the cluster, then marks it deployed.
    fn deploy(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        let id = job_id::job_id(uid, target.generation);
        let restore = if target.first_deployment {
            target
                .spec
                .job
                .as_ref()
                .and_then(|j| j.initial_savepoint_path.clone())
        } else {
            None
        };
        let mut input = RenderInput::for_resource(self.resource, &target.spec, self.ctx.defaults);
        input.generation = target.generation;
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
        self.status.job_manager_deployment_status = Some(JobManagerDeploymentStatus::Deploying);
        self.status.error = None;
        self.intent = Some(self.status.clone());
        self.actions.push(Action::ApplyCluster(Box::new(objects)));
        self.set_state(ReconciliationState::Deployed);
        let what = if application {
            format!("job {id}")
        } else {
            "session cluster".to_string()
        };
        self.notes.push(Note::normal(
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
        self.progressing = true;
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
            self.actions.push(Action::CancelJob {
                cluster: self.name().to_string(),
                job_id: job.id.clone(),
                best_effort: true,
            });
        }
        if self.intent.is_none() && !deleting {
            self.intent = Some(self.status.clone());
        }
        self.actions.push(Action::DeleteCluster);
    }

    /// State `DEPLOYED`: what changed since, and what the running cluster needs.
    fn compare(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>) {
        let spec = &self.resource.spec;
        let diff = deployment_diff(&last.spec, spec);
        match diff.class {
            _ if diff.is_empty() => self.steady(last),
            DiffClass::Ignore => {
                self.record(spec, ReconciliationState::Deployed, false);
                self.steady(last);
            }
            DiffClass::Scale => {
                self.notes.push(Note::normal(
                    "SpecChanged",
                    format!(
                        "SCALE change(s) detected ({}), scaling the TaskManagers",
                        diff.fields(DiffClass::Scale)
                    ),
                ));
                self.record(spec, ReconciliationState::Deployed, false);
                let mut input = RenderInput::for_resource(self.resource, spec, self.ctx.defaults);
                input.job_id = self
                    .status
                    .job_status
                    .as_ref()
                    .and_then(|j| j.job_id.as_deref());
                match render::render(&input) {
                    Ok(objects) => {
                        if let Some(tm) = objects.task_manager {
                            self.actions.push(Action::ApplyTaskManagers(Box::new(tm)));
                        }
                    }
                    Err(e) => self.fail("ValidationError", e.to_string()),
                }
                self.progressing = true;
            }
            DiffClass::Upgrade => self.upgrade(last, &diff.fields(DiffClass::Upgrade)),
        }
    }

    fn upgrade(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>, fields: &str) {
        let spec = self.resource.spec.clone();
        let was_suspended = last
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended);
        let suspending = spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended);
        let mode = |s: &FlinkDeploymentSpec| {
            s.job
                .as_ref()
                .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode)
        };
        // Never downgrade: a job deployed stateful is upgraded stateful.
        let stateful = mode(&last.spec).is_stateful() || mode(&spec).is_stateful();
        if stateful && !was_suspended && self.observed.job_manager.is_some() {
            self.fail(
                "UpgradeBlocked",
                format!(
                    "spec changed ({fields}) but upgrades in {:?} mode are not supported by this operator version yet; the running job is kept. Use upgradeMode: stateless, or revert the change",
                    if mode(&spec).is_stateful() { mode(&spec) } else { mode(&last.spec) }
                ),
            );
            self.steady(last);
            return;
        }
        let action = if was_suspended && !suspending {
            "resuming the job"
        } else if suspending {
            "suspending the job"
        } else {
            "redeploying in stateless mode"
        };
        self.notes.push(Note::normal(
            "SpecChanged",
            format!("UPGRADE change(s) detected ({fields}), {action}"),
        ));
        self.record(&spec, ReconciliationState::Upgrading, false);
        self.status.error = None;
        self.intent = Some(self.status.clone());
        let target = ReconciledSpec {
            spec,
            generation: self.generation(),
            first_deployment: false,
        };
        self.continue_upgrade(&target);
    }

    /// Nothing to change: keep the deployed cluster as it should be.
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
        let stateless = last
            .spec
            .job
            .as_ref()
            .is_none_or(|j| j.upgrade_mode == UpgradeMode::Stateless);
        if self.observed.job_manager.is_none() {
            if stateless {
                self.notes.push(Note::warning(
                    "RecoverDeployment",
                    "The JobManager Deployment is missing; deploying it again (stateless)",
                ));
                self.deploy(last);
            } else {
                self.fail(
                    "DeploymentMissing",
                    "the JobManager Deployment is missing; recovering a stateful job is not supported by this operator version yet. Restart it with a new restartNonce or initialSavepointPath".into(),
                );
            }
            return;
        }
        let healthy = match self.resource.spec.is_application() {
            true => {
                self.status.job_status.as_ref().and_then(|j| j.state)
                    == Some(FlinkJobState::Running)
            }
            false => {
                self.status.job_manager_deployment_status == Some(JobManagerDeploymentStatus::Ready)
            }
        };
        if healthy {
            if !self.failed {
                self.status.error = None;
            }
            if let Some(r) = self.status.reconciliation_status.as_mut()
                && r.last_stable_spec != r.last_reconciled_spec
            {
                r.last_stable_spec = r.last_reconciled_spec.clone();
            }
        } else {
            self.progressing = true;
        }
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
            if self.status.error.as_deref().map(error_message).as_deref() != Some(message.as_str())
            {
                self.notes
                    .push(Note::warning("CleanupFailed", message.clone()));
            }
            self.status.error = Some(error_json("DeletionBlocked", &message));
            self.status.lifecycle_state = Some(flink_api::ResourceLifecycleState::Deleting);
            self.progressing = true;
            return;
        }
        if observed.is_gone() {
            self.actions.push(Action::RemoveFinalizer);
            return;
        }
        if self.status.lifecycle_state != Some(flink_api::ResourceLifecycleState::Deleting) {
            self.notes
                .push(Note::normal("Cleanup", "Cleaning up the Flink cluster"));
        }
        self.tear_down(true);
    }

    fn finish(mut self) -> Plan<FlinkDeploymentStatus> {
        let deleting = self.resource.metadata.deletion_timestamp.is_some();
        let reconciled_job_state = self
            .status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.as_deref())
            .and_then(|t| ReconciledSpec::<FlinkDeploymentSpec>::from_json(t).ok())
            .and_then(|r| r.spec.job.map(|j| j.state));
        let job_state = self.status.job_status.as_ref().and_then(|j| j.state);
        self.status.lifecycle_state = Some(lifecycle(
            self.status.reconciliation_status.as_ref(),
            reconciled_job_state,
            job_state,
            deleting,
        ));
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
        } else if self.status.job_manager_deployment_status
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
        if !deleting {
            let generation = self.generation();
            set_running_condition(
                &mut self.status.conditions,
                running,
                reason,
                &message,
                generation,
                self.ctx.now_ms,
            );
            self.status.observed_generation = Some(self.generation());
            if self.resource.spec.mode_or_default()
                == flink_api::deployment::KubernetesDeploymentMode::Standalone
            {
                let config = render::flink_config(&RenderInput::for_resource(
                    self.resource,
                    &self.resource.spec,
                    self.ctx.defaults,
                ))
                .unwrap_or_default();
                self.status.task_manager = Some(TaskManagerInfo {
                    label_selector: Some(render::task_manager_selector(
                        self.name(),
                        self.resource.spec.mode_or_default(),
                    )),
                    replicas: render::task_manager_replicas(&self.resource.spec, &config),
                });
            }
        }
        if self.observed.pod_problem.is_some() {
            // A crash-looping pod is not hot-looped on: the kubelet's back-off rules its pace.
            self.progressing = false;
        }
        let requeue = if self.progressing {
            self.ctx.intervals.progress
        } else {
            self.ctx.intervals.reconcile
        };
        Plan {
            intent: self.intent,
            actions: self.actions,
            status: self.status,
            notes: self.notes,
            requeue,
        }
    }
}
