//! The decision for a FlinkSessionJob: submit its jar to the session cluster with a fixed job
//! id, observe the job, redeploy it (stateless) on a spec change, suspend, resume and cancel it
//! on deletion. Same write-ahead discipline as deployments: the job id is recorded before the
//! submission, and a job with that id found in the cluster means the submission happened.

use super::job::{self, Draft};
use super::observed::{ObservedJob, ObservedSessionJob, SessionCluster};
use super::reconciled_spec::ReconciledSpec;
use super::spec_diff::{DiffClass, session_job_diff};
use super::status::{self, observe_job};
use super::upgrade_policy::UpgradePolicy;
use super::{
    Effect, Intervals, Note, Plan, Reason, SessionJobSubmission, health, job_id, job_snapshots,
    secure,
};
use flink_api::snapshot::JobKind;
use flink_api::validation::ValidationSettings;
use flink_api::{
    FlinkJobState, FlinkSessionJob, FlinkSessionJobSpec, FlinkSessionJobStatus, JobState,
    JobStatus, ReconciliationState, UpgradeMode, UpgradeProgress, UpgradeStep,
};
use std::collections::BTreeMap;

/// Upstream's finalizer name.
pub const FINALIZER: &str = "flinksessionjobs.flink.apache.org/finalizer";

#[derive(Clone, Debug)]
pub struct SessionDecideContext<'a> {
    pub now_ms: i64,
    pub intervals: &'a Intervals,
    pub validation: &'a ValidationSettings,
    /// The tenant's upgrade-strategy verdict on the upgrade this reconcile would start
    /// (`upgrade_policy::pending_session_job_upgrade`), when the tenant has one.
    pub upgrade_policy: Option<&'a UpgradePolicy>,
    /// Operator-wide Flink configuration defaults (the snapshot settings).
    pub defaults: &'a BTreeMap<String, String>,
    /// The operator's caps on every resource's savepoint history.
    pub snapshot_thresholds: job_snapshots::HistoryThresholds,
    /// How `status.error` is shaped (the operator's `exception.*` settings).
    pub error_shape: &'a super::status::ErrorShape,
    /// The autoscaler's part, when the job is autoscaled (in place: its writes join the plan
    /// in `autoscaling::step::with_step`; its view becomes `status.autoscaler`).
    pub autoscaler: Option<&'a super::autoscaling::step::AutoscalerStep>,
    /// Why the resource's tenant cannot be told (see `deployment::DecideContext::tenancy`).
    pub tenancy: Option<&'a flink_api::validation::FieldError>,
}

/// What observation must fetch for a session job besides the cluster's jobs; `cluster` is the
/// session cluster's configuration (see [`job_config`]).
/// The longest a jar's run may be waited for, whatever the operator ConfigMap says.
const MAX_SUBMISSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1_800);

pub fn observation_needs(
    resource: &FlinkSessionJob,
    defaults: &BTreeMap<String, String>,
    cluster: &BTreeMap<String, String>,
) -> job::ObservationNeeds {
    let status = resource.status.clone().unwrap_or_default();
    let config = job_config(resource, defaults, cluster);
    job::ObservationNeeds::for_job(
        status.job_status.as_ref().and_then(|j| j.job_id.clone()),
        status.upgrade.as_ref(),
        resource.spec.job.as_ref(),
        job::spec_changed::<FlinkSessionJobSpec>(
            status.reconciliation_status.as_ref(),
            resource.metadata.generation,
        ),
        &health::Settings::of(&config),
    )
    .with_snapshots(
        status.job_status.as_ref(),
        status.upgrade.as_ref(),
        resource.spec.job.as_ref(),
        &config,
    )
}

/// The Flink configuration a session job is submitted with: its own `flinkConfiguration`
/// without the operator's settings, retaining checkpoints on cancel when it is stateful.
fn submission_configuration(spec: &FlinkSessionJobSpec) -> BTreeMap<String, String> {
    let mut configuration = spec
        .flink_configuration
        .clone()
        .unwrap_or_default()
        .flat()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("kubernetes.operator."))
        .collect();
    let mode = spec
        .job
        .as_ref()
        .map(|j| j.upgrade_mode)
        .unwrap_or_default();
    crate::render::retain_checkpoints(&mut configuration, mode);
    configuration
}

/// The operator's view of a session job's configuration (snapshots, health and rollback,
/// cleanup, validation), as upstream's: the operator-wide defaults, under the session
/// cluster's configuration (`cluster`: what its Flink runs with), under the job's own
/// `flinkConfiguration`.
pub fn job_config(
    resource: &FlinkSessionJob,
    defaults: &BTreeMap<String, String>,
    cluster: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut own = cluster.clone();
    own.extend(
        resource
            .spec
            .flink_configuration
            .as_ref()
            .map(|c| c.flat())
            .unwrap_or_default(),
    );
    job::configuration(defaults, own)
}

/// The error `type` of a stateful job its session cluster lost.
const JOB_NOT_FOUND: &str = "JobNotFound";

pub fn decide(
    resource: &FlinkSessionJob,
    observed: &ObservedSessionJob,
    ctx: &SessionDecideContext,
) -> Plan<FlinkSessionJobStatus> {
    let mut d = Decision {
        resource,
        observed,
        ctx,
        config: job_config(resource, ctx.defaults, &observed.cluster_configuration),
        draft: Draft::new(
            resource.status.clone().unwrap_or_default(),
            crate::redact::Redactor::for_resource(resource).with_defaults(ctx.defaults),
            ctx.now_ms,
        )
        .with_error_shape(ctx.error_shape),
    };
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
    let mut errors = flink_api::validation::session_job(resource, ctx.validation);
    if let SessionCluster::Present { .. } = observed.cluster {
        errors.extend(flink_api::validation::session_job_storage(
            resource,
            &d.cluster(),
            &d.config,
        ));
    }
    let checked = d
        .draft
        .recorded_and_valid::<FlinkSessionJobSpec>(errors, ctx.tenancy, |last| {
            flink_api::validation::session_job_change(last, &resource.spec)
        });
    let Ok(last) = checked else {
        return d.finish();
    };
    let cluster = resource.spec.deployment_name.clone().unwrap_or_default();
    match &observed.cluster {
        SessionCluster::Missing => {
            d.fail("SessionClusterMissing", format!("spec.deploymentName: no FlinkDeployment named {cluster:?} in this namespace; create the session cluster or fix the name"));
            return d.finish();
        }
        SessionCluster::NotSession => {
            d.fail("SessionClusterMissing", format!("spec.deploymentName: FlinkDeployment {cluster:?} is an application cluster (it has spec.job); name a session cluster"));
            return d.finish();
        }
        SessionCluster::Present { ready: false, .. }
        | SessionCluster::Present { deleting: true, .. } => {
            d.draft.progressing = true;
            return d.finish();
        }
        SessionCluster::Present { .. } => {}
    }
    if let Some(why) = &observed.unreachable {
        d.fail(
            "FlinkUnreachable",
            format!("the session cluster {cluster:?} does not answer: {why}"),
        );
        d.draft.progressing = true;
        return d.finish();
    }
    match last {
        None => job::flow::first(&mut d),
        Some(last)
            if matches!(
                d.state(),
                ReconciliationState::Upgrading | ReconciliationState::RollingBack
            ) =>
        {
            job::flow::continue_upgrade(&mut d, &last)
        }
        Some(last) => d.compare(&last),
    }
    d.finish()
}

impl<'a> job::Kind for Decision<'a> {
    type Spec = FlinkSessionJobSpec;
    type Status = FlinkSessionJobStatus;
    const STOPPED: &'static str = "its job is stopped";

    fn draft(&mut self) -> &mut Draft<FlinkSessionJobStatus> {
        &mut self.draft
    }

    fn draft_ref(&self) -> &Draft<FlinkSessionJobStatus> {
        &self.draft
    }

    fn spec(&self) -> &FlinkSessionJobSpec {
        &self.resource.spec
    }

    fn generation(&self) -> i64 {
        Decision::generation(self)
    }

    fn job(spec: &FlinkSessionJobSpec) -> Option<&flink_api::JobSpec> {
        spec.job.as_ref()
    }

    fn has_state(_: &FlinkSessionJobSpec) -> bool {
        true
    }

    /// The session cluster answered (checked before anything is decided); whether it lists
    /// the job to take the state from is the securing's to say.
    fn running(&self) -> bool {
        true
    }

    fn upgrade_policy(&self) -> Option<&UpgradePolicy> {
        self.ctx.upgrade_policy
    }

    fn securing(&self, mode: UpgradeMode, generation: i64) -> UpgradeProgress {
        self.securing_progress(mode, generation)
    }

    fn secure(&mut self, mode: UpgradeMode) -> Option<()> {
        self.secure_state(mode)
    }

    /// The session cluster lists the job with the target's id.
    fn started(&self, target: &ReconciledSpec<FlinkSessionJobSpec>) -> bool {
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        self.find(&job_id::job_id(uid, target.generation, target.revision))
            .is_some()
    }

    /// Cancels the recorded job while it runs (the target's job is not listed yet, so the
    /// recorded one, when listed, is the old one).
    fn stop(&mut self) -> bool {
        let Some(old) = self.recorded_job() else {
            return false;
        };
        if old.state.is_globally_terminal() {
            return false;
        }
        if self.draft.intent.is_none() {
            self.draft.write_ahead();
        }
        self.draft.actions.push(Effect::CancelJob {
            cluster: self.cluster(),
            job_id: old.id.clone(),
            best_effort: false,
        });
        true
    }

    fn start(&mut self, target: &ReconciledSpec<FlinkSessionJobSpec>) {
        self.submit(target);
    }

    /// The readiness timeout starts when the target is recorded.
    fn target_recorded(&mut self) {
        self.draft.status.health = Some(flink_api::DeploymentHealth {
            deployed_at: Some(self.ctx.now_ms),
            ..Default::default()
        });
    }

    /// A submission Flink never listed (its main() failed, say) is submitted again each
    /// reconcile until the readiness timeout rolls it back.
    fn not_started(&mut self, target: &ReconciledSpec<FlinkSessionJobSpec>) -> bool {
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        let id = job_id::job_id(uid, target.generation, target.revision);
        let submitted = self
            .draft
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.as_deref())
            == Some(id.as_str());
        let settings = health::Settings::of(&self.config);
        submitted
            && self.state() == ReconciliationState::Upgrading
            && job::flow::maybe_roll_back(
                self,
                target,
                &settings,
                &["its job is not in the session cluster".into()],
            )
    }
}

struct Decision<'a> {
    resource: &'a FlinkSessionJob,
    observed: &'a ObservedSessionJob,
    ctx: &'a SessionDecideContext<'a>,
    /// The operator's view of the job's configuration ([`job_config`]), built once.
    config: BTreeMap<String, String>,
    draft: Draft<FlinkSessionJobStatus>,
}

impl<'a> Decision<'a> {
    fn generation(&self) -> i64 {
        self.resource.metadata.generation.unwrap_or(0)
    }

    fn cluster(&self) -> String {
        self.resource
            .spec
            .deployment_name
            .clone()
            .unwrap_or_default()
    }

    fn has_finalizer(&self) -> bool {
        job::has_finalizer(self.resource.metadata.finalizers.as_ref(), FINALIZER)
    }

    fn state(&self) -> ReconciliationState {
        self.draft.state()
    }

    fn set_state(&mut self, state: ReconciliationState) {
        self.draft.set_state(state);
    }

    fn fail(&mut self, kind: &str, message: String) {
        self.draft.fail(kind, message);
    }

    fn record(&mut self, spec: &FlinkSessionJobSpec, state: ReconciliationState) {
        let generation = self.generation();
        self.draft.record(spec, generation, state);
    }

    fn find(&self, id: &str) -> Option<&'a ObservedJob> {
        self.observed.jobs().iter().find(|j| j.id == id)
    }

    fn recorded_job(&self) -> Option<&'a ObservedJob> {
        let id = self.draft.status.job_status.as_ref()?.job_id.clone()?;
        self.find(&id)
    }

    fn observe(&mut self) {
        if self.observed.jobs.is_none() {
            // The session cluster is missing, not ready or does not answer.
            status::job_not_seen(self.draft.status.job_status.as_mut());
        }
        if let Some(job) = self.recorded_job() {
            let before = self.draft.status.job_status.as_ref().and_then(|j| j.state);
            self.draft
                .notes
                .extend(status::job_state_change(before, job.state));
            self.draft.status.job_status =
                Some(observe_job(self.draft.status.job_status.as_ref(), job));
            // Observation skips the exceptions once the failure is reported.
            self.draft
                .job_failed(job, self.observed.job_failure.as_ref());
            self.draft.abandon_snapshot_triggers(
                self.observed.snapshot.as_ref(),
                self.observed.checkpoint.as_ref(),
            );
        }
    }

    /// Submits `target`'s job to the session cluster with its id recorded ahead.
    fn submit(&mut self, target: &ReconciledSpec<FlinkSessionJobSpec>) {
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        let id = job_id::job_id(uid, target.generation, target.revision);
        let Some(job) = target.spec.job.as_ref() else {
            return;
        };
        let configuration = submission_configuration(&target.spec);
        let submission = SessionJobSubmission {
            cluster: self.cluster(),
            jar_uri: job.jar_uri.clone().unwrap_or_default(),
            entry_class: job.entry_class.clone(),
            args: job.args.clone(),
            parallelism: job.parallelism,
            job_id: id.clone(),
            restore_from: if target.first_deployment {
                job.initial_savepoint_path.clone()
            } else {
                self.draft
                    .status
                    .upgrade
                    .as_ref()
                    .and_then(|p| p.restore_path.clone())
            },
            allow_non_restored_state: job.allow_non_restored_state == Some(true),
            configuration,
            // The operator's setting, not the tenant's: a run request holds a reconcile slot.
            timeout: flink_api::config::options::JOB_SUBMISSION_TIMEOUT
                .in_flat(self.ctx.defaults)
                .and_then(|v| flink_api::quantity::parse_flink_duration(v).ok())
                .filter(|d| !d.is_zero())
                .unwrap_or(std::time::Duration::from_secs(600))
                .min(MAX_SUBMISSION_TIMEOUT),
        };
        let status = self
            .draft
            .status
            .job_status
            .get_or_insert_with(JobStatus::default);
        status.job_id = Some(id.clone());
        status.state = Some(FlinkJobState::Reconciling);
        status.start_time = None;
        self.draft.status.error = None;
        // The intent keeps the restore path: a submission that fails is made again from it.
        if let Some(progress) = self.draft.status.upgrade.as_mut() {
            progress.step = UpgradeStep::Deploying;
        }
        self.draft.intent = Some(self.draft.status.clone());
        self.draft
            .actions
            .push(Effect::SubmitSessionJob(Box::new(submission)));
        self.set_state(self.draft.done_state());
        self.draft.status.upgrade = None;
        self.draft.notes.push(Note::normal(
            Reason::Submit,
            format!("Submitting job {id} to session cluster {}", self.cluster()),
        ));
    }

    fn compare(&mut self, last: &ReconciledSpec<FlinkSessionJobSpec>) {
        let spec = self.resource.spec.clone();
        let diff = session_job_diff(&last.spec, &spec);
        if self.state() == ReconciliationState::RolledBack {
            // The spec that failed is not tried again until the user edits the resource; an
            // edit back to the stable spec is simply what runs.
            if last.generation == self.generation() {
                return self.steady(last);
            }
            if diff.class != DiffClass::Upgrade {
                self.record(&spec, ReconciliationState::Deployed);
                return self.steady(last);
            }
        }
        // A stop or cancel already sent means the job is stopping: the upgrade completes even if
        // the change was reverted; otherwise a reverted change abandons it.
        let stopping = self
            .draft
            .status
            .upgrade
            .as_ref()
            .map(|p| p.trigger_id.is_some() || p.step == UpgradeStep::Cancelling);
        if stopping == Some(false) && diff.class != DiffClass::Upgrade {
            self.draft.status.upgrade = None;
            self.draft.status.error = None;
        }
        if diff.class != DiffClass::Upgrade && stopping != Some(true) {
            if diff.class == DiffClass::Ignore && !diff.is_empty() {
                self.record(&spec, ReconciliationState::Deployed);
            }
            return self.steady(last);
        }
        let job_running = self
            .recorded_job()
            .is_some_and(|j| j.state == FlinkJobState::Running);
        if let Some(why) = self
            .draft
            .pending_savepoint_holds_upgrade(&self.config, job_running)
        {
            // What runs goes on as it is, its savepoint observed, until it completes.
            self.steady(last);
            self.draft.wait(&why);
            return;
        }
        job::flow::upgrade(self, last, &diff.fields(DiffClass::Upgrade));
    }

    /// Securing in `mode`: a last-state securing of a job that was submitted without
    /// retaining its checkpoints on cancel (a stateless spec) takes a savepoint instead:
    /// cancelling it would delete the checkpoint it must resume from.
    fn securing_progress(&self, mode: UpgradeMode, generation: i64) -> UpgradeProgress {
        let step = (mode == UpgradeMode::LastState && !self.submitted_retaining())
            .then_some(UpgradeStep::Savepointing);
        secure::progress(mode, step, generation, None, self.ctx.now_ms)
    }

    /// Whether the recorded job was submitted retaining its checkpoints on cancel: what its
    /// submission's configuration said.
    fn submitted_retaining(&self) -> bool {
        self.draft
            .status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.as_deref())
            .and_then(|t| ReconciledSpec::<FlinkSessionJobSpec>::from_json(t).ok())
            .is_some_and(|recorded| {
                submission_configuration(&recorded.spec)
                    .get(flink_api::config::options::CHECKPOINT_RETENTION.key)
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("RETAIN_ON_CANCELLATION"))
            })
    }

    /// Secures the recorded job's state (see `secure`); `Some` once the restore path is known.
    fn secure_state(&mut self, mode: UpgradeMode) -> Option<()> {
        self.draft.progressing = true;
        let mut progress = self
            .draft
            .status
            .upgrade
            .take()
            .unwrap_or_else(|| self.securing_progress(mode, self.generation()));
        progress.target_generation = self.generation();
        if progress.restore_path.is_some() {
            self.draft.status.upgrade = Some(progress);
            return Some(());
        }
        let started_from = self.draft.secured_path();
        let Some(job) = self.recorded_job().cloned() else {
            // A rollback of a job whose submission never took: its state is still what it was
            // to start from.
            if self.state() == ReconciliationState::RollingBack
                && let Some(path) = started_from
            {
                progress.restore_path = Some(path);
                self.draft.status.upgrade = Some(progress);
                return Some(());
            }
            self.draft.status.upgrade = Some(progress);
            self.fail("UpgradeBlocked", "the session cluster does not list the job to take its state from; the upgrade waits. Set initialSavepointPath, or switch to upgradeMode: stateless to drop the state".into());
            return None;
        };
        let cluster = self.cluster();
        let config = &self.config;
        let out = secure::secure_job(
            &mut progress,
            &secure::SecureInput {
                uid: self.resource.metadata.uid.as_deref().unwrap_or_default(),
                cluster: &cluster,
                job: &job,
                savepoint: self.observed.savepoint.as_ref(),
                latest_checkpoint: self.observed.latest_checkpoint.as_ref(),
                rules: secure::SecureRules::of(config),
                started_from,
                now_ms: self.ctx.now_ms,
            },
        );
        let name = self.resource.metadata.name.clone().unwrap_or_default();
        self.draft.secured(
            progress,
            out,
            &job::SecuredJob {
                config,
                owner: (JobKind::FlinkSessionJob, &name),
                snapshots: self.observed.snapshots.as_deref(),
                thresholds: self.ctx.snapshot_thresholds,
            },
        )
    }

    fn steady(&mut self, last: &ReconciledSpec<FlinkSessionJobSpec>) {
        if last
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended)
        {
            return;
        }
        let job = self.recorded_job();
        let settings = health::Settings::of(&self.config);
        let counters = self.observed.counters.as_ref();
        if let Some(job) = job {
            let verdict = health::judge(
                &settings,
                &mut self.draft.status.health,
                job,
                counters,
                self.ctx.now_ms,
            );
            if let Some(why) = verdict.restart {
                return job::flow::restart(self, last, why);
            }
            if let Some(why) = verdict.skipped
                && self.draft.status.error.is_none()
            {
                self.draft
                    .notes
                    .push(Note::warning(Reason::HealthCheckSkipped, why));
            }
        }
        let unmet = match self.draft.recorded_stable() {
            true => Vec::new(),
            false => health::unmet_stability(&settings, job, counters, self.ctx.now_ms),
        };
        if job::flow::maybe_roll_back(self, last, &settings, &unmet) {
            return;
        }
        match job {
            Some(job) if job.state == FlinkJobState::Running => {
                self.draft.status.error = None;
                self.snapshots(job);
                if !unmet.is_empty() {
                    // Running, not stable yet: looked at again soon.
                    self.draft.progressing = true;
                } else {
                    self.draft.mark_stable();
                }
            }
            Some(job) if job.state.is_globally_terminal() => {}
            Some(_) => self.draft.progressing = true,
            // A job that ended is not lost when a restarted cluster no longer lists it.
            None if self
                .draft
                .status
                .job_status
                .as_ref()
                .and_then(|j| j.state)
                .is_some_and(|s| s.is_globally_terminal()) => {}
            None if self
                .resource
                .spec
                .job
                .as_ref()
                .is_some_and(|j| j.upgrade_mode.is_stateful()) =>
            {
                // Its state went with the cluster's JobManager: the newest checkpoint is not
                // known here, and a stateless submission would drop it (upstream does not
                // resubmit either).
                let job = self
                    .draft
                    .status
                    .job_status
                    .get_or_insert_with(JobStatus::default);
                job.state = Some(FlinkJobState::Reconciling);
                let id = job.job_id.clone().unwrap_or_default();
                self.fail(JOB_NOT_FOUND, format!("job {id} is missing from the session cluster (it was restarted without its high availability metadata) and its newest checkpoint is unknown: manual restore required. Recreate the FlinkSessionJob with spec.job.initialSavepointPath set to the job's newest retained checkpoint, or set upgradeMode: stateless to submit it again from empty state"));
            }
            None => {
                // The cluster answered without our job: it was lost with a restarted session
                // cluster. Stateless jobs are submitted again; their id is unused there.
                self.draft.notes.push(Note::warning(
                    Reason::RecoverDeployment,
                    "The job is missing from the session cluster; submitting it again",
                ));
                self.set_state(ReconciliationState::Upgrading);
                self.draft
                    .status
                    .job_status
                    .get_or_insert_with(JobStatus::default)
                    .job_id = None;
                job::flow::continue_upgrade(self, last);
            }
        }
    }

    /// Manual and periodic savepoints and checkpoints of the running job, as for
    /// FlinkDeployments.
    fn snapshots(&mut self, job: &ObservedJob) {
        let config = &self.config;
        let name = self.resource.metadata.name.clone().unwrap_or_default();
        let cluster = self.cluster();
        self.draft.snapshots(&job_snapshots::RunningJob {
            uid: self.resource.metadata.uid.as_deref().unwrap_or_default(),
            cluster: &cluster,
            job,
            spec: self.resource.spec.job.as_ref(),
            config,
            owner: (JobKind::FlinkSessionJob, &name),
            savepoint: self.observed.snapshot.as_ref(),
            checkpoint: self.observed.checkpoint.as_ref(),
            resources: self.observed.snapshots.as_deref(),
            thresholds: self.ctx.snapshot_thresholds,
            now_ms: self.ctx.now_ms,
        });
    }

    fn delete(&mut self) {
        if !self.has_finalizer() {
            return;
        }
        // A cluster that is going away takes the job with it, unless it waits for its session
        // jobs (upstream's `session.deletion.block-on-session-jobs`): then the job is stopped
        // as usual, so the cluster does not wait on it as a job no session job manages.
        let block =
            flink_api::config::options::BLOCK_ON_SESSION_JOBS.flag_in_flat(&self.config, true);
        let deletable_now = match &self.observed.cluster {
            SessionCluster::Present {
                ready: true,
                deleting,
            } => *deleting && !block,
            _ => true,
        };
        if deletable_now {
            self.draft.actions.push(Effect::RemoveFinalizer);
            return;
        }
        let config = &self.config;
        if let Some(note) =
            super::cleanup::timed_out(&self.resource.metadata, config, self.ctx.now_ms)
        {
            self.draft.notes.push(note);
            self.draft.actions.push(Effect::RemoveFinalizer);
            return;
        }
        if self.observed.unreachable.is_some() {
            self.draft.progressing = true;
            return;
        }
        if self.savepoint_on_deletion() && job::flow::save_before_deletion(self).is_none() {
            return;
        }
        match self.recorded_job() {
            Some(job) if !job.state.is_globally_terminal() => {
                if job.state != FlinkJobState::Cancelling {
                    self.draft.notes.push(Note::normal(
                        Reason::Cleanup,
                        format!("Cancelling job {}", job.id),
                    ));
                    self.draft.actions.push(Effect::CancelJob {
                        cluster: self.cluster(),
                        job_id: job.id.clone(),
                        best_effort: false,
                    });
                }
                self.draft.progressing = true;
            }
            _ => self.draft.actions.push(Effect::RemoveFinalizer),
        }
    }

    /// `kubernetes.operator.job.savepoint-on-deletion`, as for FlinkDeployments: a RUNNING job
    /// (or one whose savepoint is under way) is stopped with a savepoint before the resource
    /// goes.
    fn savepoint_on_deletion(&self) -> bool {
        if !flink_api::config::options::SAVEPOINT_ON_DELETION.flag_in_flat(&self.config, false) {
            return false;
        }
        let under_way = self
            .draft
            .status
            .upgrade
            .as_ref()
            .is_some_and(|p| p.trigger_id.is_some() || p.restore_path.is_some());
        under_way
            || self
                .recorded_job()
                .is_some_and(|j| j.state == FlinkJobState::Running)
    }

    fn finish(mut self) -> Plan<FlinkSessionJobStatus> {
        // A job lost with its cluster that a person must restore is FAILED, as upstream's
        // lifecycle says of a deployment whose restore is manual.
        let lost = self
            .draft
            .status
            .error
            .as_deref()
            .and_then(status::error_type)
            .is_some_and(|kind| kind == JOB_NOT_FOUND);
        self.draft
            .settle::<FlinkSessionJobSpec>(&self.resource.metadata, |spec| spec.job, lost);
        self.draft.into_plan(self.ctx.intervals)
    }
}
