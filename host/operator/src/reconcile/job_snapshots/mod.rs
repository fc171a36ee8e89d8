//! Snapshots of a running application besides upgrades: manual savepoints
//! (`savepointTriggerNonce`) and checkpoints (`checkpointTriggerNonce`), periodic ones
//! (`kubernetes.operator.periodic.savepoint.interval` / `.checkpoint.interval`: a duration, or a
//! Quartz cron expression for fixed times), and the history savepoints leave
//! (`kubernetes.operator.savepoint.history.max.count` / `.max.age`, expired ones disposed when
//! `kubernetes.operator.savepoint.cleanup.enabled`).
//!
//! Two ways, as upstream: with `kubernetes.operator.snapshot.resource.enabled` (the default) a
//! due snapshot becomes a FlinkStateSnapshot resource (its own controller takes it), and the
//! history is those resources; without it, one savepoint and one checkpoint at a time are
//! triggered here, the trigger id recorded in `jobStatus.savepointInfo` / `.checkpointInfo`
//! before the request.
//!
//! Along its seams: `schedule` (what is due: a new nonce, a period or a cron time),
//! `in_status` (snapshots triggered here, and the savepoint history kept in the status),
//! `resources` (snapshots as FlinkStateSnapshot resources, and their history trimmed).

mod in_status;
mod resources;
mod schedule;

use in_status::*;
pub use in_status::{checkpoints, savepoints};
pub use resources::record_upgrade_savepoint;
use resources::*;
use schedule::*;

use super::job::{Outcome, Pace};
use super::observed::{JobSnapshot, ObservedOperation};
use super::{Effect, Note, Reason, job_id};
use flink_api::config::options;
use flink_api::snapshot::{CheckpointSpec, JobKind, JobReference, SavepointSpec, labels};
use flink_api::{
    Checkpoint, CheckpointInfo, CheckpointType, FlinkStateSnapshot, FlinkStateSnapshotSpec,
    Savepoint, SavepointFormatType, SavepointInfo, SnapshotTriggerType,
};
use flink_cron::Cron;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the savepoint bookkeeping needs to know.
pub struct SnapshotInput<'a> {
    pub uid: &'a str,
    pub cluster: &'a str,
    pub job_id: &'a str,
    /// `spec.job.savepointTriggerNonce`.
    pub nonce: Option<i64>,
    /// The cluster's flat Flink configuration (for the `kubernetes.operator.*` settings).
    pub config: &'a BTreeMap<String, String>,
    /// The result of the recorded trigger, when one is pending.
    pub result: Option<&'a ObservedOperation>,
    /// When the job started (periodic savepoints count from there when none was taken yet).
    pub job_started: i64,
    /// A path that must never be disposed (what an upgrade restored from).
    pub keep: Option<&'a str>,
    pub now_ms: i64,
    /// The resource whose job this is (what created snapshot resources refer to).
    pub owner: (JobKind, &'a str),
    /// The job's FlinkStateSnapshots, when snapshots are resources and they were listed (a
    /// snapshot is created only when they were: they tell whether it already was).
    pub resources: Option<&'a [JobSnapshot]>,
    /// The operator's caps on the savepoint history.
    pub thresholds: HistoryThresholds,
}

/// A running job as its manual and periodic snapshots need it, from either resource kind.
pub struct RunningJob<'a> {
    pub uid: &'a str,
    /// The FlinkDeployment whose REST API serves the job.
    pub cluster: &'a str,
    pub job: &'a super::observed::ObservedJob,
    /// The resource's `spec.job` (the nonces).
    pub spec: Option<&'a flink_api::JobSpec>,
    /// The resource's flat configuration (the `kubernetes.operator.*` snapshot settings).
    pub config: &'a BTreeMap<String, String>,
    pub owner: (JobKind, &'a str),
    /// The results of the savepoint and the checkpoint the status records, when awaited.
    pub savepoint: Option<&'a ObservedOperation>,
    pub checkpoint: Option<&'a ObservedOperation>,
    /// The job's FlinkStateSnapshots, when listed.
    pub resources: Option<&'a [JobSnapshot]>,
    /// The operator's caps on the savepoint history.
    pub thresholds: HistoryThresholds,
    pub now_ms: i64,
}

/// Manual and periodic savepoints and checkpoints of a running job, for either resource kind;
/// updates `job_status` (left as it is when nothing changed).
pub fn of_job(job_status: &mut Option<flink_api::JobStatus>, job: &RunningJob) -> Outcome {
    let mut status = job_status.clone().unwrap_or_default();
    let keep = status.upgrade_savepoint_path.clone();
    let input = SnapshotInput {
        uid: job.uid,
        cluster: job.cluster,
        job_id: &job.job.id,
        nonce: job.spec.and_then(|j| j.savepoint_trigger_nonce),
        config: job.config,
        result: job.savepoint,
        job_started: job.job.start_time,
        keep: keep.as_deref(),
        now_ms: job.now_ms,
        owner: job.owner,
        resources: job.resources,
        thresholds: job.thresholds,
    };
    let mut info = status.savepoint_info.clone().unwrap_or_default();
    let mut out = savepoints(&mut info, &input);
    if status.savepoint_info.as_ref() != Some(&info) && info != Default::default() {
        status.savepoint_info = Some(info);
    }
    let mut info = status.checkpoint_info.clone().unwrap_or_default();
    let input = SnapshotInput {
        nonce: job.spec.and_then(|j| j.checkpoint_trigger_nonce),
        result: job.checkpoint,
        ..input
    };
    out.merge(checkpoints(&mut info, &input));
    if status.checkpoint_info.as_ref() != Some(&info) && info != Default::default() {
        status.checkpoint_info = Some(info);
    }
    if job_status.as_ref() != Some(&status) {
        *job_status = Some(status);
    }
    out
}

/// Upstream's `resetSnapshotTriggers`: a savepoint or checkpoint triggered from the status of a
/// job that Flink reports not running (failed, restarting, cancelled, finished, ...) is given up,
/// with a warning, as it cannot complete - unless its result (`savepoint`, `checkpoint`, as
/// observed this time) says it did complete: then it is recorded, as upstream observes it
/// before resetting. A job not seen (`RECONCILING`: its JobManager does not answer) keeps its
/// trigger; a JobManager that comes back without it reports it failed. Unlike upstream, which
/// resets then too.
pub fn abandon_triggers(
    job_status: Option<&mut flink_api::JobStatus>,
    savepoint: Option<&ObservedOperation>,
    checkpoint: Option<&ObservedOperation>,
    now_ms: i64,
) -> Vec<Note> {
    use flink_api::FlinkJobState as S;
    let mut notes = Vec::new();
    let Some(job) = job_status else {
        return notes;
    };
    let Some(state) = job
        .state
        .filter(|s| !matches!(s, S::Running | S::Reconciling))
    else {
        return notes;
    };
    let state = super::status::state_name(state);
    let given_up = |reason, what, trigger: &str, trigger_type: Option<SnapshotTriggerType>| {
        Note::warning(
            reason,
            format!(
                "{} {what} {trigger} given up: the job is {state}, not RUNNING",
                kind(trigger_type.unwrap_or_default())
            ),
        )
    };
    if let Some(info) = job.savepoint_info.as_mut()
        && let Some(trigger) = info.trigger_id.clone()
    {
        notes.push(match savepoint {
            Some(ObservedOperation::Completed(path)) => savepoint_completed(info, path, now_ms),
            _ => {
                let note = given_up(
                    Reason::SavepointError,
                    "savepoint",
                    &trigger,
                    info.trigger_type,
                );
                clear_trigger(info);
                note
            }
        });
    }
    if let Some(info) = job.checkpoint_info.as_mut()
        && let Some(trigger) = info.trigger_id.clone()
    {
        notes.push(match checkpoint {
            Some(ObservedOperation::Completed(path)) => checkpoint_completed(info, path, now_ms),
            _ => {
                let note = given_up(
                    Reason::CheckpointError,
                    "checkpoint",
                    &trigger,
                    info.trigger_type,
                );
                clear_checkpoint_trigger(info);
                note
            }
        });
    }
    notes
}

/// The format the operator's savepoints are taken in (`kubernetes.operator.savepoint.format.type`,
/// canonical unless `NATIVE`).
pub fn savepoint_format(config: &BTreeMap<String, String>) -> SavepointFormatType {
    match options::SAVEPOINT_FORMAT_TYPE.in_flat(config) {
        Some(v) if v.eq_ignore_ascii_case("native") => SavepointFormatType::Native,
        _ => SavepointFormatType::Canonical,
    }
}

/// The type of the status's checkpoints (`kubernetes.operator.checkpoint.type`): FULL unless
/// INCREMENTAL (validation refuses other values).
pub fn checkpoint_type(config: &BTreeMap<String, String>) -> CheckpointType {
    match options::CHECKPOINT_TYPE.in_flat(config) {
        Some(v) if v.trim().eq_ignore_ascii_case("incremental") => CheckpointType::Incremental,
        _ => CheckpointType::Full,
    }
}

/// Whether a resource's snapshots are FlinkStateSnapshot resources
/// (`kubernetes.operator.snapshot.resource.enabled`, default true).
pub fn as_resources(config: &BTreeMap<String, String>) -> bool {
    options::SNAPSHOT_RESOURCE_ENABLED.in_flat(config) != Some("false")
}

/// Whether observation must list the job's FlinkStateSnapshots: they are resources, and a
/// nonce is new or a schedule is set (the history is trimmed when snapshots are created).
pub fn resources_needed(
    config: &BTreeMap<String, String>,
    job_status: Option<&flink_api::JobStatus>,
    savepoint_nonce: Option<i64>,
    checkpoint_nonce: Option<i64>,
) -> bool {
    let handled = |asked: Option<i64>, recorded: Option<i64>| asked.is_none() || asked == recorded;
    let savepoints = job_status.and_then(|j| j.savepoint_info.as_ref());
    let checkpoints = job_status.and_then(|j| j.checkpoint_info.as_ref());
    as_resources(config)
        && (!handled(savepoint_nonce, savepoints.and_then(|i| i.trigger_nonce))
            || !handled(checkpoint_nonce, checkpoints.and_then(|i| i.trigger_nonce))
            || Schedule::of(config, PERIODIC_SAVEPOINTS).is_some()
            || Schedule::of(config, PERIODIC_CHECKPOINTS).is_some())
}

/// The operator's caps on every resource's savepoint history
/// (`kubernetes.operator.savepoint.history.max.count.threshold` and `.max.age.threshold`, from
/// the operator's configuration only: a resource cannot raise them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryThresholds {
    pub max_count: Option<usize>,
    pub max_age: Option<Duration>,
}

/// `kubernetes.operator.savepoint.history.max.count` (10, at least 1) and `.max.age` (24 h),
/// each within the operator's threshold.
pub(super) struct HistoryLimits {
    max_count: usize,
    max_age: Duration,
}

impl HistoryLimits {
    pub(super) fn of(config: &BTreeMap<String, String>, thresholds: HistoryThresholds) -> Self {
        let max_count = options::SAVEPOINT_HISTORY_MAX_COUNT
            .in_flat(config)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(10);
        let max_age = options::SAVEPOINT_HISTORY_MAX_AGE
            .in_flat(config)
            .and_then(|v| flink_api::quantity::parse_flink_duration(v).ok())
            .unwrap_or(Duration::from_secs(24 * 3600));
        Self {
            max_count: thresholds
                .max_count
                .map_or(max_count, |cap| max_count.min(cap))
                .max(1),
            max_age: thresholds.max_age.map_or(max_age, |cap| max_age.min(cap)),
        }
    }
}

#[cfg(test)]
mod tests;
