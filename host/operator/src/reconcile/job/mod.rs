//! The life of a job, shared by FlinkDeployments and FlinkSessionJobs: the decision being
//! drafted ([`Draft`]: the status, the write-ahead intent, actions, events and pace), reading
//! and recording what is deployed, the checks every reconcile starts with, the state
//! transitions of a restart and a rollback, folding in the securing of a job's state and its
//! manual and periodic snapshots, replacing a job (`flow`), and how a decision ends.
//! `deployment` and `session_job` keep only what differs between the kinds: their [`Kind`]
//! (how a job is started: deploy a cluster, or submit to a session cluster; stopped: tear the
//! cluster down, or cancel the job; and its state secured), and what only one kind has
//! (scaling, savepoint redeploys, a session cluster that must exist).

pub mod flow;
mod needs;
mod outcome;

pub use flow::Kind;
pub use needs::{ObservationNeeds, spec_changed};
pub use outcome::{Outcome, Pace};

use super::reconciled_spec::ReconciledSpec;
use super::secure::{self, Secured};
use super::status;
use super::upgrade_policy::{self, UpgradePolicy};
use super::{Effect, Intervals, Note, Plan, Reason, job_snapshots};
use crate::redact::Redactor;
use flink_api::snapshot::JobKind;
use flink_api::validation::FieldError;
use flink_api::{
    DeploymentHealth, FlinkDeploymentStatus, FlinkSessionJobStatus, JobSpec, JobState, JobStatus,
    PolicyDecision, ReconciliationState, ReconciliationStatus, ResourceLifecycleState, UpgradeMode,
    UpgradeProgress,
};
use std::collections::BTreeMap;

/// The parts of a job resource's status the shared life of a job reads and writes, borrowed
/// together so a caller can hold several at once.
pub struct Parts<'a> {
    pub job_status: &'a mut Option<JobStatus>,
    pub error: &'a mut Option<String>,
    pub reconciliation: &'a mut Option<ReconciliationStatus>,
    pub upgrade: &'a mut Option<UpgradeProgress>,
    pub policies: &'a mut Vec<PolicyDecision>,
    pub health: &'a mut Option<DeploymentHealth>,
    pub lifecycle_state: &'a mut Option<ResourceLifecycleState>,
    pub observed_generation: &'a mut Option<i64>,
}

/// A job resource's status: FlinkDeployments' and FlinkSessionJobs' share these fields.
pub trait JobStatusParts: Clone {
    fn parts(&mut self) -> Parts<'_>;
    fn reconciliation(&self) -> Option<&ReconciliationStatus>;
    fn job_status(&self) -> Option<&JobStatus>;
    fn upgrade(&self) -> Option<&UpgradeProgress>;
    fn health(&self) -> Option<&DeploymentHealth>;
}

macro_rules! job_status_parts {
    ($($status:ty),*) => {$(
        impl JobStatusParts for $status {
            fn parts(&mut self) -> Parts<'_> {
                Parts {
                    job_status: &mut self.job_status,
                    error: &mut self.error,
                    reconciliation: &mut self.reconciliation_status,
                    upgrade: &mut self.upgrade,
                    policies: &mut self.policies,
                    health: &mut self.health,
                    lifecycle_state: &mut self.lifecycle_state,
                    observed_generation: &mut self.observed_generation,
                }
            }
            fn reconciliation(&self) -> Option<&ReconciliationStatus> {
                self.reconciliation_status.as_ref()
            }
            fn job_status(&self) -> Option<&JobStatus> {
                self.job_status.as_ref()
            }
            fn upgrade(&self) -> Option<&UpgradeProgress> {
                self.upgrade.as_ref()
            }
            fn health(&self) -> Option<&DeploymentHealth> {
                self.health.as_ref()
            }
        }
    )*};
}

job_status_parts!(FlinkDeploymentStatus, FlinkSessionJobStatus);

/// A decision being drafted: the status as it will be, the status to write before the actions
/// (the write-ahead intent), the actions, the events and when to look again. Everything a part
/// of a decision adds goes through here, the same way for both resource kinds.
pub struct Draft<S> {
    pub status: S,
    pub intent: Option<S>,
    pub actions: Vec<Effect>,
    pub notes: Vec<Note>,
    /// Something is moving: look again soon.
    pub progressing: bool,
    /// An error was recorded this time (and must not be cleared by a healthy observation).
    pub failed: bool,
    /// What an unfinished step waits for (the Running condition's message, where there is one).
    pub waiting: Option<String>,
    /// Look again at this time (ms) at the latest.
    pub requeue_at: Option<i64>,
    now_ms: i64,
    redactor: Redactor,
    /// How `status.error` is shaped (the operator's `exception.*` settings).
    error_shape: status::ErrorShape,
}

impl<S: JobStatusParts> Draft<S> {
    /// A draft starting from the stored `status`; errors are masked with `redactor` (the
    /// resource's and the operator defaults' secrets) as they will be stored.
    pub fn new(status: S, redactor: Redactor, now_ms: i64) -> Self {
        Self {
            status,
            intent: None,
            actions: Vec::new(),
            notes: Vec::new(),
            progressing: false,
            failed: false,
            waiting: None,
            requeue_at: None,
            now_ms,
            redactor,
            error_shape: status::ErrorShape::default(),
        }
    }

    /// With `status.error` shaped by `shape` (the operator's `exception.*` settings).
    pub fn with_error_shape(mut self, shape: &status::ErrorShape) -> Self {
        self.error_shape = shape.clone();
        self
    }

    /// Records an error in the status (its event only when it is new).
    pub fn fail(&mut self, kind: &str, message: String) {
        self.fail_with_trace(kind, message, None);
    }

    /// Records an error with the Java stack trace behind it (Flink's), whose causes become the
    /// error's `throwableList` (and the trace its `stackTrace` when the operator enables it).
    pub fn fail_with_trace(&mut self, kind: &str, message: String, trace: Option<&str>) {
        // Masked here, as it will be stored, so an unchanged error is recognised as such.
        let message = self.redactor.scrub(&message);
        let trace = trace.map(|t| self.redactor.scrub(t));
        let error = self.status.parts().error;
        self.notes.extend(status::report_error(
            error,
            kind,
            message,
            trace.as_deref(),
            &self.error_shape,
        ));
        self.failed = true;
    }

    /// An `error` field of `kind` with `message`, shaped as this draft's errors are (for a
    /// status written without an event of its own).
    pub fn error_json(&self, kind: &str, message: &str) -> String {
        status::error_json(kind, &self.redactor.scrub(message), None, &self.error_shape)
    }

    /// The status as it stands is written before the actions.
    pub fn write_ahead(&mut self) {
        self.intent = Some(self.status.clone());
    }

    /// Upstream's `readyToReconcile`: a change that replaces the job waits while a savepoint
    /// the status triggered is pending (it would be lost with the job), unless
    /// `kubernetes.operator.job.upgrade.ignore-pending-savepoint` is true. What it waits for,
    /// when it does. Only a running job's savepoint holds it (only then is it observed to an
    /// end); an upgrade already under way is never held.
    pub fn pending_savepoint_holds_upgrade(
        &self,
        config: &BTreeMap<String, String>,
        job_running: bool,
    ) -> Option<String> {
        let key = flink_api::config::options::IGNORE_PENDING_SAVEPOINT;
        let info = self.status.job_status()?.savepoint_info.as_ref()?;
        let trigger = info.trigger_id.as_deref()?;
        if !job_running || self.status.upgrade().is_some() || key.flag_in_flat(config, false) {
            return None;
        }
        Some(format!(
            "The change waits for savepoint {trigger} in progress (set {}: true to go ahead without it)",
            key.key
        ))
    }

    /// The resource's job failed: `status.error` says so once, with Flink's reason (`failure`,
    /// the newest exception's message). Flink serves a job's exceptions from a cache that can
    /// still hold the job from before it failed, so a missing reason is waited for a few
    /// seconds before the error says Flink gave none. Nothing for a job that did not fail.
    pub fn job_failed(
        &mut self,
        job: &super::observed::ObservedJob,
        failure: Option<&super::observed::JobFailure>,
    ) {
        if job.state != flink_api::FlinkJobState::Failed {
            return;
        }
        let reported = status::reports(self.status.parts().error.as_deref(), "JobFailed", &job.id);
        match failure {
            Some(why) => self.fail_with_trace(
                "JobFailed",
                format!("job {} failed: {}", job.id, why.message),
                Some(&why.stack_trace),
            ),
            None if reported => {}
            None if self.now_ms - job.last_modification
                < secure::CHECKPOINT_STATISTICS_SETTLE_MS =>
            {
                self.progressing = true
            }
            None => self.fail(
                "JobFailed",
                format!("job {} failed: Flink gave no reason", job.id),
            ),
        }
    }

    /// Gives up the snapshots triggered from the status of a job that is not running, or
    /// records them when their results (`savepoint`, `checkpoint`) say they completed
    /// ([`job_snapshots::abandon_triggers`]); called after each observation of the job.
    pub fn abandon_snapshot_triggers(
        &mut self,
        savepoint: Option<&super::observed::ObservedOperation>,
        checkpoint: Option<&super::observed::ObservedOperation>,
    ) {
        let now_ms = self.now_ms;
        let notes = job_snapshots::abandon_triggers(
            self.status.parts().job_status.as_mut(),
            savepoint,
            checkpoint,
            now_ms,
        );
        self.notes.extend(notes);
    }

    /// Progressing without an error: `why` says what it waits for.
    pub fn wait(&mut self, why: &str) {
        self.progressing = true;
        self.waiting = Some(why.to_string());
    }

    /// Looks again at `at` (ms) at the latest.
    pub fn look_again_at(&mut self, at: i64) {
        self.requeue_at = Some(self.requeue_at.map_or(at, |t| t.min(at)));
    }

    /// Folds in what a part of the decision added, in one way for every part; returns the
    /// part's own result.
    pub fn absorb<T>(&mut self, out: Outcome<T>) -> T {
        self.actions.extend(out.actions);
        self.notes.extend(out.notes);
        if let Some((kind, message)) = out.error {
            self.fail(kind, message);
        }
        self.progressing = out.pace.apply(self.progressing);
        if let Some((why, until)) = out.waiting {
            self.waiting = Some(why);
            self.look_again_at(until);
        }
        if out.write_ahead {
            self.write_ahead();
        }
        out.value
    }

    pub fn state(&self) -> ReconciliationState {
        self.status
            .reconciliation()
            .map(|r| r.state)
            .unwrap_or_default()
    }

    /// Moves the reconciliation state, stamping the time only when it changes.
    pub fn set_state(&mut self, state: ReconciliationState) {
        let now = self.now_ms;
        status::set_state(self.status.parts().reconciliation, state, now);
    }

    /// Records `spec` at `generation` as deployed or being deployed.
    pub fn record<Spec>(&mut self, spec: &Spec, generation: i64, state: ReconciliationState)
    where
        Spec: serde::Serialize + serde::de::DeserializeOwned + Clone,
    {
        self.record_target(
            &ReconciledSpec {
                spec: spec.clone(),
                generation,
                first_deployment: false,
                revision: 0,
            },
            state,
        );
    }

    /// Records `target` as deployed or being deployed (`Upgrading`, `RollingBack`), keeping
    /// the last stable spec.
    pub fn record_target<Spec>(&mut self, target: &ReconciledSpec<Spec>, state: ReconciliationState)
    where
        Spec: serde::Serialize + serde::de::DeserializeOwned,
    {
        let now = self.now_ms;
        status::record_target(self.status.parts().reconciliation, target, state, now);
    }

    /// The reconciliation state a finished deploy or submission leaves: `ROLLED_BACK` after a
    /// rollback, else `DEPLOYED`.
    pub fn done_state(&self) -> ReconciliationState {
        status::done_state(self.state())
    }

    /// The spec recorded as deployed is also the last stable one.
    pub fn recorded_stable(&self) -> bool {
        self.status.reconciliation().is_some_and(status::is_stable)
    }

    /// The spec recorded as deployed becomes the last stable one.
    pub fn mark_stable(&mut self) {
        if let Some(r) = self.status.parts().reconciliation.as_mut()
            && r.last_stable_spec != r.last_reconciled_spec
        {
            r.last_stable_spec = r.last_reconciled_spec.clone();
        }
    }

    /// Where the job's state was last secured (`jobStatus.upgradeSavepointPath`): what a
    /// resumed job restores from; kept once recorded.
    pub fn secured_path(&self) -> Option<String> {
        self.status
            .job_status()
            .and_then(|j| j.upgrade_savepoint_path.clone())
    }

    /// The recorded spec, read, and the spec checked: its own rules (`errors`), the tenancy,
    /// and the change rules against the recorded spec (`change`), in that order. What every
    /// reconcile of a job starts with once observed. `Err` when it cannot go on; the status
    /// says why.
    pub fn recorded_and_valid<Spec>(
        &mut self,
        mut errors: Vec<FieldError>,
        tenancy: Option<&FieldError>,
        change: impl FnOnce(&Spec) -> Vec<FieldError>,
    ) -> Result<Option<ReconciledSpec<Spec>>, Held>
    where
        Spec: serde::Serialize + serde::de::DeserializeOwned,
    {
        let last = self.last_reconciled::<Spec>()?;
        errors.extend(tenancy.cloned());
        if let Some(last) = &last {
            errors.extend(change(&last.spec));
        }
        match self.valid(&errors, last.is_some()) {
            true => Ok(last),
            false => Err(Held),
        }
    }

    pub fn job_status(&mut self) -> &mut JobStatus {
        self.status
            .parts()
            .job_status
            .get_or_insert_with(JobStatus::default)
    }

    /// The spec recorded as deployed (or being deployed). An unreadable record (edited by
    /// hand, or written by something else) is an error that names the fix: nothing can be
    /// decided without knowing what runs.
    pub fn last_reconciled<Spec>(&mut self) -> Result<Option<ReconciledSpec<Spec>>, Held>
    where
        Spec: serde::Serialize + serde::de::DeserializeOwned,
    {
        let recorded = self
            .status
            .reconciliation()
            .and_then(|r| r.last_reconciled_spec.clone());
        match recorded.as_deref().map(ReconciledSpec::<Spec>::from_json) {
            None => Ok(None),
            Some(Ok(last)) => Ok(Some(last)),
            Some(Err(why)) => {
                self.fail(
                    "ReconciliationError",
                    format!("status.reconciliationStatus.lastReconciledSpec: {why}; the operator cannot tell what is deployed. Delete and recreate the resource, or restore the status"),
                );
                Err(Held)
            }
        }
    }

    /// Reports a spec's problems (`errors`: validation, the change rules and tenancy) as a
    /// `ValidationError`; true when there are none. `deployed`: a last valid spec keeps running.
    pub fn valid(&mut self, errors: &[FieldError], deployed: bool) -> bool {
        match status::validation_message(errors, deployed) {
            Some(message) => {
                self.fail("ValidationError", message);
                false
            }
            None => true,
        }
    }

    /// The tenant's upgrade-strategy verdict on the upgrade about to start: the mode to
    /// upgrade in, or None when the upgrade does not start now (waiting, refused, or held
    /// because the plugin could not answer); the status and events say why.
    pub fn apply_upgrade_policy(&mut self, policy: &UpgradePolicy) -> Option<UpgradeMode> {
        let parts = self.status.parts();
        let out = upgrade_policy::apply(policy, parts.policies, parts.error);
        self.absorb(out)
    }

    /// The mode an upgrade from `start.from` to `start.to` runs in, or None when it does not
    /// start now. When it starts (nothing is being secured yet), an upgrade proper (not a
    /// suspension or a resumption) is put to the tenant's upgrade strategy first, which may
    /// choose the mode, hold it or refuse it; then the `SpecChanged` event says what is done,
    /// and a switch from a stateful mode to stateless warns that the state is dropped.
    pub fn start_upgrade(&mut self, start: &UpgradeStart) -> Option<Started> {
        let mode_of =
            |job: Option<&JobSpec>| job.map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
        let suspended = |job: Option<&JobSpec>| job.is_some_and(|j| j.state == JobState::Suspended);
        let (was_suspended, suspending) = (suspended(start.from), suspended(start.to));
        // The new spec's mode: a user who switches to stateless gets a stateless upgrade (and
        // is told); the operator itself never falls back to stateless.
        let mut mode = mode_of(start.to);
        if self.status.upgrade().is_some() {
            return Some(Started {
                mode,
                was_suspended,
            });
        }
        let action = match (was_suspended, suspending) {
            (true, false) => "resuming the job",
            (_, true) => "suspending the job",
            (false, false) => "upgrading",
        };
        if action == "upgrading"
            && let Some(policy) = start.policy
        {
            mode = self.apply_upgrade_policy(policy)?;
        }
        self.notes.push(Note::normal(
            Reason::SpecChanged,
            format!(
                "UPGRADE change(s) detected ({}), {action} in {} mode",
                start.fields,
                mode.name()
            ),
        ));
        if mode_of(start.from).is_stateful() && !mode.is_stateful() && !was_suspended {
            self.notes.push(Note::warning(
                Reason::StatelessUpgrade,
                "upgradeMode is now stateless: this upgrade starts the job from empty state",
            ));
        }
        Some(Started {
            mode,
            was_suspended,
        })
    }

    /// Folds in one step of securing a job's state (`secure::secure_job` advanced `progress`
    /// to `out`): the progress, the completed savepoint and the restore path in the job status,
    /// and the savepoint as an `UPGRADE` FlinkStateSnapshot when snapshots are resources.
    /// `Some` once the state is secured.
    pub fn secured(
        &mut self,
        progress: UpgradeProgress,
        out: Outcome<Secured>,
        job: &SecuredJob,
    ) -> Option<()> {
        let started = progress.started;
        secure::record_secured(
            self.job_status(),
            out.value.savepoint.as_ref(),
            out.value.restore_path.as_deref(),
            !job_snapshots::as_resources(job.config),
        );
        *self.status.parts().upgrade = Some(progress);
        let secured = self.absorb(out);
        if let Some(path) = secured
            .savepoint
            .as_ref()
            .and_then(|s| s.location.as_deref())
        {
            let recorded = job_snapshots::record_upgrade_savepoint(
                path,
                started,
                job.owner,
                job.config,
                job.thresholds,
                job.snapshots,
                self.now_ms,
            );
            self.absorb(recorded);
        }
        secured.restore_path.map(|_| ())
    }

    /// Manual and periodic savepoints and checkpoints of the running job, and the history they
    /// leave.
    pub fn snapshots(&mut self, job: &job_snapshots::RunningJob) {
        let out = job_snapshots::of_job(self.status.parts().job_status, job);
        self.absorb(out);
    }

    /// A restart (a health restart, the autoscaler's redeploy) of the spec that runs now:
    /// records it as the next revision in the state the restart runs in, and keeps the last
    /// stable spec when it was the running one (the spec does not change). After a rollback
    /// the restart runs `ROLLING_BACK`, so it ends `ROLLED_BACK` and the spec that failed stays
    /// untried until the user changes it.
    pub fn record_restart<Spec>(&mut self, last: &ReconciledSpec<Spec>) -> ReconciledSpec<Spec>
    where
        Spec: serde::Serialize + serde::de::DeserializeOwned + Clone,
    {
        let target = ReconciledSpec {
            revision: last.revision + 1,
            first_deployment: false,
            ..last.clone()
        };
        let keep_stable = self.recorded_stable();
        let state = match self.state() {
            ReconciliationState::RolledBack | ReconciliationState::RollingBack => {
                ReconciliationState::RollingBack
            }
            _ => ReconciliationState::Upgrading,
        };
        self.record_target(&target, state);
        if keep_stable {
            self.mark_stable();
        }
        target
    }

    /// A rollback of `last` to the last `stable` spec: recorded at this `generation` as the
    /// next revision with `ROLLING_BACK`.
    pub fn record_rollback<Spec>(
        &mut self,
        last: &ReconciledSpec<Spec>,
        stable: ReconciledSpec<Spec>,
        generation: i64,
    ) -> ReconciledSpec<Spec>
    where
        Spec: serde::Serialize + serde::de::DeserializeOwned,
    {
        let target = ReconciledSpec {
            spec: stable.spec,
            generation,
            first_deployment: false,
            revision: last.revision + 1,
        };
        self.record_target(&target, ReconciliationState::RollingBack);
        target
    }

    /// The end of every decision: the lifecycle state (judged against the job state of the
    /// recorded spec, `job` of it, and whether the kind found its cluster unable to run), the
    /// observed generation (not while deleting). Returns that recorded job state, for what the
    /// kind adds (a deployment's Running condition).
    pub fn settle<Spec>(
        &mut self,
        metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        job: impl Fn(Spec) -> Option<JobSpec>,
        cluster_failed: bool,
    ) -> Option<JobState>
    where
        Spec: serde::Serialize + serde::de::DeserializeOwned,
    {
        let deleting = metadata.deletion_timestamp.is_some();
        let reconciled_job_state = self
            .status
            .reconciliation()
            .and_then(|r| r.last_reconciled_spec.as_deref())
            .and_then(|t| ReconciledSpec::<Spec>::from_json(t).ok())
            .and_then(|r| job(r.spec).map(|j| j.state));
        let job_state = self.status.job_status().and_then(|j| j.state);
        let lifecycle = status::lifecycle(
            self.status.reconciliation(),
            reconciled_job_state,
            job_state,
            cluster_failed,
            deleting,
        );
        let parts = self.status.parts();
        *parts.lifecycle_state = Some(lifecycle);
        if !deleting {
            *parts.observed_generation = metadata.generation.or(Some(0));
        }
        reconciled_job_state
    }

    pub fn into_plan(self, intervals: &Intervals) -> Plan<S> {
        let mut requeue = if self.progressing {
            intervals.progress
        } else {
            intervals.reconcile
        };
        if let Some(at) = self.requeue_at {
            requeue = requeue.min(super::until(at, self.now_ms));
        }
        Plan {
            intent: self.intent,
            actions: self.actions,
            status: self.status,
            notes: self.notes,
            requeue,
        }
    }
}

/// The reconcile cannot go on: the record of what is deployed cannot be read, or the spec is
/// not valid (the status error says which).
#[derive(Debug)]
pub struct Held;

/// An upgrade about to start, as [`Draft::start_upgrade`] needs it.
pub struct UpgradeStart<'a> {
    /// The changed fields, for the event.
    pub fields: &'a str,
    /// The `spec.job` that runs and the one to run.
    pub from: Option<&'a JobSpec>,
    pub to: Option<&'a JobSpec>,
    /// The tenant's upgrade-strategy verdict, when the tenant has one.
    pub policy: Option<&'a UpgradePolicy>,
}

/// An upgrade that goes ahead: in which mode, and whether it resumes a suspended job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    pub mode: UpgradeMode,
    pub was_suspended: bool,
}

/// The job whose state was secured, as the history of snapshots needs it.
pub struct SecuredJob<'a> {
    /// The resource's effective flat configuration.
    pub config: &'a BTreeMap<String, String>,
    pub owner: (JobKind, &'a str),
    /// The job's FlinkStateSnapshots, when listed.
    pub snapshots: Option<&'a [super::observed::JobSnapshot]>,
    /// The operator's caps on the savepoint history.
    pub thresholds: job_snapshots::HistoryThresholds,
}

/// The operator's view of a job's configuration: the resource's own flat `flinkConfiguration`
/// over the operator-wide defaults (global and the namespace's). What the operator reads for a
/// job (health and rollback, securing, snapshots, cleanup, the autoscaler, savepoint on
/// deletion) is read from this, the same for both kinds; Flink's own configuration is
/// `render::flink_config`.
pub fn configuration(
    defaults: &BTreeMap<String, String>,
    own: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut config = defaults.clone();
    config.extend(own);
    config
}

/// Whether `finalizers` holds `finalizer`.
pub fn has_finalizer(finalizers: Option<&Vec<String>>, finalizer: &str) -> bool {
    finalizers.is_some_and(|f| f.iter().any(|f| f == finalizer))
}
