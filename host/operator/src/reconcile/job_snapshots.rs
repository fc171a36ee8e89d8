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

/// The format the operator's savepoints are taken in (`kubernetes.operator.savepoint.format.type`,
/// canonical unless `NATIVE`).
pub fn savepoint_format(config: &BTreeMap<String, String>) -> SavepointFormatType {
    match options::SAVEPOINT_FORMAT_TYPE.in_flat(config) {
        Some(v) if v.eq_ignore_ascii_case("native") => SavepointFormatType::Native,
        _ => SavepointFormatType::Canonical,
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

/// When periodic snapshots are due.
#[derive(Debug, PartialEq)]
enum Schedule {
    Every(Duration),
    /// At the times a Quartz cron expression names.
    At(Cron),
}

impl Schedule {
    /// The setting `key`: None when unset, zero, or invalid (validation reports that).
    fn of(config: &BTreeMap<String, String>, key: &str) -> Option<Schedule> {
        let value = config.get(key)?.trim();
        match flink_api::quantity::parse_flink_duration(value) {
            Ok(every) if every.is_zero() => None,
            Ok(every) => Some(Schedule::Every(every)),
            Err(_) => Cron::parse(value).ok().map(Schedule::At),
        }
    }

    /// Whether a periodic snapshot is due at `now_ms`, the last one having been taken at
    /// `since_ms` (or the job having started then).
    fn due(&self, since_ms: i64, now_ms: i64) -> bool {
        match self {
            Schedule::Every(every) => now_ms - since_ms >= every.as_millis() as i64,
            Schedule::At(cron) => cron.fires_within(since_ms, now_ms),
        }
    }
}

/// The periodic setting of savepoints and of checkpoints.
const PERIODIC_SAVEPOINTS: &str = options::PERIODIC_SAVEPOINT_INTERVAL.key;
const PERIODIC_CHECKPOINTS: &str = options::PERIODIC_CHECKPOINT_INTERVAL.key;

/// A new nonce first (`asked`: it is not the one already asked for), then the schedule.
fn trigger_due(
    asked: bool,
    key: &str,
    last_periodic_ms: i64,
    input: &SnapshotInput,
) -> Option<SnapshotTriggerType> {
    if asked {
        return Some(SnapshotTriggerType::Manual);
    }
    let since = if last_periodic_ms > 0 {
        last_periodic_ms
    } else {
        input.job_started
    };
    Schedule::of(input.config, key)?
        .due(since, input.now_ms)
        .then_some(SnapshotTriggerType::Periodic)
}

/// Manual and periodic checkpoints (`POST /jobs/:id/checkpoints`, Flink 1.19+): the trigger is
/// recorded (write-ahead), its result observed; a completed one becomes `lastCheckpoint`, a
/// failed one is reported and its nonce not asked again.
pub fn checkpoints(info: &mut CheckpointInfo, input: &SnapshotInput) -> Outcome {
    let mut out = Outcome::default();
    if let Some(trigger) = info.trigger_id.clone() {
        let trigger_type = info.trigger_type.unwrap_or_default();
        match input.result {
            Some(ObservedOperation::Completed(path)) => {
                out.notes.push(Note::normal(
                    Reason::CheckpointCompleted,
                    format!("{} checkpoint completed: {path}", kind(trigger_type)),
                ));
                info.last_checkpoint = Some(Checkpoint {
                    time_stamp: input.now_ms,
                    trigger_type,
                    format_type: info.format_type.unwrap_or_default(),
                    trigger_nonce: (trigger_type == SnapshotTriggerType::Manual)
                        .then_some(info.trigger_nonce)
                        .flatten(),
                });
                clear_checkpoint_trigger(info);
            }
            Some(ObservedOperation::Failed(cause)) => {
                out.notes.push(Note::warning(
                    Reason::CheckpointError,
                    format!(
                        "{} checkpoint {trigger} failed: {cause}",
                        kind(trigger_type)
                    ),
                ));
                clear_checkpoint_trigger(info);
            }
            _ => out.pace = Pace::Soon,
        }
        return out;
    }
    let asked = input.nonce.is_some() && input.nonce != info.trigger_nonce;
    if as_resources(input.config) {
        if let Some(existing) = input.resources {
            let nonce = input.nonce.filter(|_| asked);
            let last = info.last_periodic_checkpoint_timestamp;
            match create_due(Kind::Checkpoint, nonce, last, input, existing, &mut out) {
                Recorded::Nonce(nonce) => info.trigger_nonce = Some(nonce),
                Recorded::Periodic(at) => info.last_periodic_checkpoint_timestamp = at,
                Recorded::Nothing => {}
            }
            trim_resources(existing, Kind::Checkpoint, input, &mut out);
        }
        return out;
    }
    let Some(kind) = trigger_due(
        asked,
        PERIODIC_CHECKPOINTS,
        info.last_periodic_checkpoint_timestamp,
        input,
    ) else {
        return out;
    };
    let trigger = job_id::snapshot_trigger_id(input.uid, input.now_ms);
    info.trigger_id = Some(trigger.clone());
    info.trigger_timestamp = Some(input.now_ms);
    info.trigger_type = Some(kind);
    info.format_type = Some(CheckpointType::Full);
    if kind == SnapshotTriggerType::Manual {
        info.trigger_nonce = input.nonce;
    } else {
        info.last_periodic_checkpoint_timestamp = input.now_ms;
    }
    out.actions.push(Effect::TriggerCheckpoint {
        cluster: input.cluster.to_string(),
        job_id: input.job_id.to_string(),
        trigger_id: trigger,
    });
    out.write_ahead = true;
    out.pace = Pace::Soon;
    out
}

fn clear_checkpoint_trigger(info: &mut CheckpointInfo) {
    info.trigger_id = None;
    info.trigger_timestamp = None;
    info.trigger_type = None;
    info.format_type = None;
}

pub fn savepoints(info: &mut SavepointInfo, input: &SnapshotInput) -> Outcome {
    let mut out = Outcome::default();
    if let Some(trigger) = info.trigger_id.clone() {
        match input.result {
            Some(ObservedOperation::Completed(path)) => {
                let savepoint = Savepoint {
                    time_stamp: input.now_ms,
                    location: Some(path.clone()),
                    trigger_type: info.trigger_type.unwrap_or_default(),
                    format_type: info.format_type.unwrap_or(SavepointFormatType::Canonical),
                    trigger_nonce: info.trigger_nonce,
                };
                out.notes.push(Note::normal(
                    Reason::SavepointCompleted,
                    format!(
                        "{} savepoint completed: {path}",
                        kind(savepoint.trigger_type)
                    ),
                ));
                info.last_savepoint = Some(savepoint.clone());
                info.savepoint_history.push(savepoint);
                clear_trigger(info);
            }
            Some(ObservedOperation::Failed(cause)) => {
                out.notes.push(Note::warning(
                    Reason::SavepointError,
                    format!(
                        "{} savepoint {trigger} failed: {cause}",
                        kind(info.trigger_type.unwrap_or_default())
                    ),
                ));
                // A failed manual savepoint keeps its nonce: a new nonce asks again.
                clear_trigger(info);
            }
            _ => out.pace = Pace::Soon,
        }
    } else if as_resources(input.config) {
        if let Some(existing) = input.resources {
            let nonce = asked_nonce(info, input);
            let last = info.last_periodic_savepoint_timestamp;
            match create_due(Kind::Savepoint, nonce, last, input, existing, &mut out) {
                Recorded::Nonce(nonce) => info.trigger_nonce = Some(nonce),
                Recorded::Periodic(at) => info.last_periodic_savepoint_timestamp = at,
                Recorded::Nothing => {}
            }
            trim_resources(existing, Kind::Savepoint, input, &mut out);
        }
    } else if let Some(kind) = due(info, input) {
        let trigger = job_id::snapshot_trigger_id(input.uid, input.now_ms);
        info.trigger_id = Some(trigger.clone());
        info.trigger_timestamp = Some(input.now_ms);
        info.trigger_type = Some(kind);
        let format = savepoint_format(input.config);
        info.format_type = Some(format);
        if kind == SnapshotTriggerType::Manual {
            info.trigger_nonce = input.nonce;
        } else {
            info.last_periodic_savepoint_timestamp = input.now_ms;
        }
        out.actions.push(Effect::TriggerSavepoint {
            cluster: input.cluster.to_string(),
            job_id: input.job_id.to_string(),
            trigger_id: trigger,
            directory: None,
            format,
        });
        out.write_ahead = true;
        out.pace = Pace::Soon;
    }
    trim_history(info, input, &mut out);
    out
}

fn kind(trigger: SnapshotTriggerType) -> &'static str {
    match trigger {
        SnapshotTriggerType::Manual => "Manual",
        SnapshotTriggerType::Periodic => "Periodic",
        SnapshotTriggerType::Upgrade => "Upgrade",
        SnapshotTriggerType::Unknown => "A",
    }
}

fn clear_trigger(info: &mut SavepointInfo) {
    info.trigger_id = None;
    info.trigger_timestamp = None;
    info.trigger_type = None;
    info.format_type = None;
}

/// The savepoint nonce, when it asks for a savepoint not taken (or tried) yet.
fn asked_nonce(info: &SavepointInfo, input: &SnapshotInput) -> Option<i64> {
    input.nonce.filter(|nonce| {
        info.trigger_nonce != Some(*nonce)
            && !info
                .savepoint_history
                .iter()
                .any(|s| s.trigger_nonce == Some(*nonce))
    })
}

/// Which savepoint is due now, if any: a new nonce first, then the periodic one.
fn due(info: &SavepointInfo, input: &SnapshotInput) -> Option<SnapshotTriggerType> {
    trigger_due(
        asked_nonce(info, input).is_some(),
        PERIODIC_SAVEPOINTS,
        info.last_periodic_savepoint_timestamp,
        input,
    )
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Savepoint,
    Checkpoint,
}

impl Kind {
    fn is_savepoint(self) -> bool {
        self == Kind::Savepoint
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Savepoint => "savepoint",
            Kind::Checkpoint => "checkpoint",
        }
    }

    fn periodic_key(self) -> &'static str {
        match self {
            Kind::Savepoint => PERIODIC_SAVEPOINTS,
            Kind::Checkpoint => PERIODIC_CHECKPOINTS,
        }
    }
}

/// What the status must remember of a snapshot resource created (or found created).
#[derive(Debug, PartialEq)]
enum Recorded {
    Nothing,
    Nonce(i64),
    Periodic(i64),
}

/// A due snapshot as a FlinkStateSnapshot resource: a new `nonce` first, then the schedule
/// (counted from the status's `last_periodic`, or from the newest periodic resource when that
/// is newer: the operator stopped between creating it and recording it). A snapshot already
/// created for the nonce is only recorded, so one nonce makes one resource.
fn create_due(
    kind: Kind,
    nonce: Option<i64>,
    last_periodic: i64,
    input: &SnapshotInput,
    existing: &[JobSnapshot],
    out: &mut Outcome,
) -> Recorded {
    let same_kind = || {
        existing
            .iter()
            .filter(|s| s.savepoint == kind.is_savepoint())
    };
    if let Some(nonce) = nonce {
        if !same_kind().any(|s| s.nonce == Some(nonce)) {
            create(kind, SnapshotTriggerType::Manual, Some(nonce), input, out);
        }
        return Recorded::Nonce(nonce);
    }
    let newest = same_kind()
        .filter(|s| s.trigger_type == SnapshotTriggerType::Periodic)
        .map(|s| s.created_ms)
        .max()
        .unwrap_or(0);
    if trigger_due(false, kind.periodic_key(), last_periodic.max(newest), input).is_none() {
        return Recorded::Nothing;
    }
    create(kind, SnapshotTriggerType::Periodic, None, input, out);
    Recorded::Periodic(input.now_ms)
}

fn create(
    kind: Kind,
    trigger: SnapshotTriggerType,
    nonce: Option<i64>,
    input: &SnapshotInput,
    out: &mut Outcome,
) {
    let snapshot = snapshot_resource(
        kind,
        trigger,
        nonce,
        input.owner,
        input.config,
        input.now_ms,
    );
    let name = snapshot.metadata.name.clone().unwrap_or_default();
    out.notes.push(Note::normal(
        Reason::SnapshotCreated,
        format!(
            "{} {}: FlinkStateSnapshot {name}",
            self::kind(trigger),
            kind.word()
        ),
    ));
    out.actions.push(Effect::CreateSnapshot(Box::new(snapshot)));
}

/// The FlinkStateSnapshot upstream creates for a manual or periodic snapshot: named
/// `<resource>-<savepoint|checkpoint>-<manual|periodic>-<ms>`, labelled so it can be selected,
/// a savepoint into the job's savepoint directory, disposed of on deletion when
/// `kubernetes.operator.savepoint.dispose-on-delete`.
fn snapshot_resource(
    kind: Kind,
    trigger: SnapshotTriggerType,
    nonce: Option<i64>,
    owner: (JobKind, &str),
    config: &BTreeMap<String, String>,
    stamp: i64,
) -> FlinkStateSnapshot {
    let (job_kind, job_name) = owner;
    let trigger_label = labels::trigger_type(trigger);
    let name = format!(
        "{job_name}-{}-{}-{}",
        kind.word(),
        trigger_label.to_ascii_lowercase(),
        stamp
    );
    let mut snapshot = FlinkStateSnapshot::new(
        &name,
        FlinkStateSnapshotSpec {
            job_reference: Some(JobReference {
                kind: Some(job_kind),
                name: Some(job_name.to_string()),
            }),
            savepoint: kind.is_savepoint().then(|| SavepointSpec {
                path: options::SAVEPOINTS_DIR.in_flat(config).map(str::to_string),
                format_type: Some(savepoint_format(config)),
                dispose_on_delete: Some(
                    options::SAVEPOINT_DISPOSE_ON_DELETE.in_flat(config) == Some("true"),
                ),
                already_exists: Some(false),
            }),
            checkpoint: (!kind.is_savepoint()).then(CheckpointSpec::default),
            backoff_limit: None,
        },
    );
    // Its trigger type; the others are the ones every snapshot carries.
    snapshot.metadata.labels = Some(BTreeMap::from([(
        labels::TRIGGER_TYPE.to_string(),
        trigger_label.to_string(),
    )]));
    snapshot.metadata.labels = Some(super::state_snapshot::labels(
        &snapshot,
        &Default::default(),
    ));
    snapshot.metadata.annotations = nonce.map(|nonce| {
        BTreeMap::from([(
            flink_api::snapshot::TRIGGER_NONCE_ANNOTATION.to_string(),
            nonce.to_string(),
        )])
    });
    snapshot
}

/// Upstream's history of snapshot resources: of the periodic and upgrade ones of `kind` (a
/// user's and manual ones are never touched), the oldest beyond the count (savepoints:
/// `...savepoint.history.max.count`, checkpoints: as many as Flink retains,
/// `execution.checkpointing.num-retained`) and savepoints older than `...history.max.age` are
/// deleted, keeping the newest completed one and the newest one. Deleting a savepoint resource
/// disposes of its files when it says `disposeOnDelete`. Off with
/// `kubernetes.operator.savepoint.cleanup.enabled: false`.
fn trim_resources(existing: &[JobSnapshot], kind: Kind, input: &SnapshotInput, out: &mut Outcome) {
    out.actions.extend(
        trimmed(existing, kind, input.config, input.keep, input.now_ms)
            .into_iter()
            .map(|name| Effect::DeleteSnapshot { name }),
    );
}

/// The snapshot resources `trim_resources` deletes; never the one at `keep` (what the job
/// was restored from).
fn trimmed(
    existing: &[JobSnapshot],
    kind: Kind,
    config: &BTreeMap<String, String>,
    keep: Option<&str>,
    now_ms: i64,
) -> Vec<String> {
    if options::SAVEPOINT_CLEANUP_ENABLED.in_flat(config) == Some("false") {
        return Vec::new();
    }
    let mut candidates: Vec<&JobSnapshot> = existing
        .iter()
        .filter(|s| !s.deleting && s.savepoint == kind.is_savepoint())
        .filter(|s| {
            matches!(
                s.trigger_type,
                SnapshotTriggerType::Periodic | SnapshotTriggerType::Upgrade
            )
        })
        .collect();
    candidates.sort_by_key(|s| (s.created_ms, s.name.clone()));
    if candidates.len() < 2 {
        return Vec::new();
    }
    let (max_count, oldest_allowed) = match kind {
        Kind::Savepoint => {
            let limits = HistoryLimits::of(config);
            (limits.max_count, now_ms - limits.max_age.as_millis() as i64)
        }
        Kind::Checkpoint => {
            let retained = options::MAX_RETAINED_CHECKPOINTS
                .in_flat(config)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1);
            (retained.max(1), i64::MIN)
        }
    };
    let newest_completed = candidates
        .iter()
        .rev()
        .find(|s| s.completed)
        .map(|s| &s.name);
    let total = candidates.len();
    let mut deleted = Vec::new();
    for snapshot in &candidates[..total - 1] {
        if Some(&snapshot.name) == newest_completed
            || (keep.is_some() && snapshot.path.as_deref() == keep)
        {
            continue;
        }
        if total - deleted.len() > max_count || snapshot.created_ms < oldest_allowed {
            deleted.push(snapshot.name.clone());
        }
    }
    deleted
}

/// With snapshot resources on (upstream): a savepoint an upgrade, a suspension or a rollback
/// took is recorded as an `UPGRADE` FlinkStateSnapshot (`alreadyExists`, completed at once),
/// named after the upgrade's start (`started_ms`) so a retried reconcile creates it once, and
/// the job's savepoint resources listed while it was awaited are trimmed. Best effort: the
/// job status records the path first, and the upgrade restores from there.
pub fn record_upgrade_savepoint(
    path: &str,
    started_ms: i64,
    owner: (JobKind, &str),
    config: &BTreeMap<String, String>,
    listed: Option<&[JobSnapshot]>,
    now_ms: i64,
) -> Outcome {
    let mut out = Outcome::default();
    if !as_resources(config) {
        return out;
    }
    let mut snapshot = snapshot_resource(
        Kind::Savepoint,
        SnapshotTriggerType::Upgrade,
        None,
        owner,
        config,
        started_ms,
    );
    if let Some(savepoint) = snapshot.spec.savepoint.as_mut() {
        savepoint.path = Some(path.to_string());
        savepoint.already_exists = Some(true);
    }
    out.notes.push(Note::normal(
        Reason::SnapshotCreated,
        format!(
            "Upgrade savepoint {path}: FlinkStateSnapshot {}",
            snapshot.metadata.name.as_deref().unwrap_or_default()
        ),
    ));
    out.actions.push(Effect::CreateSnapshot(Box::new(snapshot)));
    let trimmed = trimmed(
        listed.unwrap_or_default(),
        Kind::Savepoint,
        config,
        Some(path),
        now_ms,
    );
    out.actions.extend(
        trimmed
            .into_iter()
            .map(|name| Effect::DeleteSnapshot { name }),
    );
    out
}

/// `kubernetes.operator.savepoint.history.max.count` (10, at least 1) and `.max.age` (24 h).
struct HistoryLimits {
    max_count: usize,
    max_age: Duration,
}

impl HistoryLimits {
    fn of(config: &BTreeMap<String, String>) -> Self {
        Self {
            max_count: options::SAVEPOINT_HISTORY_MAX_COUNT
                .in_flat(config)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(10)
                .max(1),
            max_age: options::SAVEPOINT_HISTORY_MAX_AGE
                .in_flat(config)
                .and_then(|v| flink_api::quantity::parse_flink_duration(v).ok())
                .unwrap_or(Duration::from_secs(24 * 3600)),
        }
    }
}

/// Drops savepoints beyond the history limits (never `keep`; never the last one unless
/// savepoint resources completed since) and disposes of their files through Flink when cleanup
/// is enabled. Completed savepoint resources of the job count towards the limit (upstream).
fn trim_history(info: &mut SavepointInfo, input: &SnapshotInput, out: &mut Outcome) {
    let limits = HistoryLimits::of(input.config);
    let completed_resources = input
        .resources
        .filter(|_| as_resources(input.config))
        .unwrap_or_default()
        .iter()
        .filter(|s| s.savepoint && s.completed)
        .count();
    let max_count = match completed_resources {
        0 => limits.max_count,
        n => limits.max_count.saturating_sub(n),
    };
    let max_age = limits.max_age;
    let cleanup = options::SAVEPOINT_CLEANUP_ENABLED.in_flat(input.config) != Some("false");
    let last = info
        .last_savepoint
        .as_ref()
        .and_then(|s| s.location.clone());
    let protected = |s: &Savepoint| {
        (s.location == last && completed_resources == 0) || s.location.as_deref() == input.keep
    };
    let oldest_allowed = input.now_ms - max_age.as_millis() as i64;
    let excess = info.savepoint_history.len().saturating_sub(max_count);
    let mut removed = Vec::new();
    let mut index = 0;
    info.savepoint_history.retain(|s| {
        let expired = index < excess || s.time_stamp < oldest_allowed;
        index += 1;
        if expired && !protected(s) {
            removed.push(s.clone());
            false
        } else {
            true
        }
    });
    for savepoint in removed {
        if let Some(path) = savepoint.location.filter(|_| cleanup) {
            out.actions.push(Effect::DisposeSavepoint {
                cluster: input.cluster.to_string(),
                path,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(
        config: &'a BTreeMap<String, String>,
        result: Option<&'a ObservedOperation>,
        now: i64,
    ) -> SnapshotInput<'a> {
        SnapshotInput {
            uid: "uid",
            cluster: "c",
            job_id: "j",
            nonce: None,
            config,
            result,
            job_started: 0,
            keep: None,
            now_ms: now,
            owner: (JobKind::FlinkDeployment, "keeper"),
            resources: None,
        }
    }

    /// Settings with snapshots kept in the status (upstream's legacy way).
    fn legacy(mut config: BTreeMap<String, String>) -> BTreeMap<String, String> {
        config.insert(
            options::SNAPSHOT_RESOURCE_ENABLED.key.to_string(),
            "false".to_string(),
        );
        config
    }

    /// What observation would list after `actions` created snapshot resources at `at`.
    fn created(actions: &[Effect], at: i64) -> Vec<JobSnapshot> {
        actions
            .iter()
            .filter_map(|a| match a {
                Effect::CreateSnapshot(s) => Some(JobSnapshot {
                    name: s.metadata.name.clone().unwrap_or_default(),
                    created_ms: at,
                    savepoint: s.spec.savepoint.is_some(),
                    trigger_type: labels::trigger_type_of(
                        s.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(labels::TRIGGER_TYPE))
                            .map(String::as_str),
                    ),
                    completed: false,
                    path: None,
                    nonce: s
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(flink_api::snapshot::TRIGGER_NONCE_ANNOTATION))
                        .and_then(|n| n.parse().ok()),
                    deleting: false,
                }),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_nonce_creates_one_snapshot_resource_even_across_a_crash() {
        let config = BTreeMap::from([(
            "execution.checkpointing.savepoint-dir".to_string(),
            "file:///sp".to_string(),
        )]);
        let mut info = SavepointInfo::default();
        let mut asked = input(&config, None, 1_000);
        asked.nonce = Some(3);
        // Not listed: nothing can be decided.
        assert_eq!(savepoints(&mut info, &asked), Outcome::default());
        asked.resources = Some(&[]);
        let out = savepoints(&mut info, &asked);
        let [Effect::CreateSnapshot(snapshot)] = &out.actions[..] else {
            panic!("{:?}", out.actions)
        };
        assert!(!out.write_ahead, "the resource itself is the record");
        assert_eq!(
            snapshot.metadata.name.as_deref(),
            Some("keeper-savepoint-manual-1000")
        );
        let labels = snapshot.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels[labels::SNAPSHOT_TYPE], "SAVEPOINT");
        assert_eq!(labels[labels::TRIGGER_TYPE], "MANUAL");
        assert_eq!(labels[labels::JOB_KIND], "FlinkDeployment");
        assert_eq!(labels[labels::JOB_NAME], "keeper");
        let spec = snapshot.spec.savepoint.clone().unwrap_or_default();
        assert_eq!(spec.path.as_deref(), Some("file:///sp"));
        assert_eq!(spec.dispose_on_delete, Some(false), "upstream's default");
        assert_eq!(info.trigger_nonce, Some(3));
        assert_eq!(info.trigger_id, None, "nothing is triggered here");
        // The operator stopped before the status was written: the resource tells.
        let listed = created(&out.actions, 1_000);
        let mut forgot = SavepointInfo::default();
        let mut again = input(&config, None, 2_000);
        again.nonce = Some(3);
        again.resources = Some(&listed);
        let out = savepoints(&mut forgot, &again);
        assert!(out.actions.is_empty(), "{:?}", out.actions);
        assert_eq!(forgot.trigger_nonce, Some(3));
        // The same nonce asks once; a new one asks again.
        assert!(savepoints(&mut info, &again).actions.is_empty());
        again.nonce = Some(4);
        assert_eq!(savepoints(&mut info, &again).actions.len(), 1);
    }

    #[test]
    fn periodic_snapshot_resources_follow_the_schedule_and_their_history_is_trimmed() {
        let config = BTreeMap::from([
            (PERIODIC_SAVEPOINTS.to_string(), "10s".to_string()),
            (PERIODIC_CHECKPOINTS.to_string(), "10s".to_string()),
            (
                "kubernetes.operator.savepoint.history.max.count".to_string(),
                "2".to_string(),
            ),
        ]);
        let mut info = SavepointInfo::default();
        let mut checkpoint_info = CheckpointInfo::default();
        let mut listed: Vec<JobSnapshot> = Vec::new();
        let mut deleted = Vec::new();
        for now in [5_000, 10_000, 15_000, 20_000, 30_000, 40_000] {
            let mut at = input(&config, None, now);
            at.resources = Some(&listed);
            let out = savepoints(&mut info, &at);
            let more = checkpoints(&mut checkpoint_info, &at);
            let mut new = created(&out.actions, now);
            new.extend(created(&more.actions, now));
            for action in out.actions.iter().chain(&more.actions) {
                if let Effect::DeleteSnapshot { name } = action {
                    deleted.push(name.clone());
                    listed.retain(|s| &s.name != name);
                }
            }
            // Whatever existed has completed by the next reconcile.
            listed.iter_mut().for_each(|s| s.completed = true);
            listed.extend(new);
        }
        let names = |savepoint: bool| {
            listed
                .iter()
                .filter(|s| s.savepoint == savepoint)
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        // Due at 10 s, 20 s, 30 s, 40 s: four savepoints; at most two kept before the newest
        // is created (the count is enforced on what was listed).
        assert_eq!(
            names(true),
            vec![
                "keeper-savepoint-periodic-20000",
                "keeper-savepoint-periodic-30000",
                "keeper-savepoint-periodic-40000"
            ]
        );
        // Checkpoints: as many as Flink retains (1): the newest completed one is kept, and the
        // newest listed one (still running when trimmed).
        assert_eq!(
            names(false),
            vec![
                "keeper-checkpoint-periodic-20000",
                "keeper-checkpoint-periodic-30000",
                "keeper-checkpoint-periodic-40000"
            ]
        );
        assert!(deleted.contains(&"keeper-savepoint-periodic-10000".to_string()));
        assert_eq!(info.last_periodic_savepoint_timestamp, 40_000);
        // The operator stopped after creating the last one, before recording it: the resource
        // counts, no second savepoint.
        let mut forgot = SavepointInfo {
            last_periodic_savepoint_timestamp: 30_000,
            ..Default::default()
        };
        let mut at = input(&config, None, 41_000);
        at.resources = Some(&listed);
        let out = savepoints(&mut forgot, &at);
        assert!(
            !out.actions
                .iter()
                .any(|a| matches!(a, Effect::CreateSnapshot(_))),
            "{:?}",
            out.actions
        );
    }

    fn listed(name: &str, at: i64, trigger_type: SnapshotTriggerType, path: &str) -> JobSnapshot {
        JobSnapshot {
            name: name.to_string(),
            created_ms: at,
            savepoint: true,
            trigger_type,
            completed: true,
            path: Some(path.to_string()),
            nonce: None,
            deleting: false,
        }
    }

    #[test]
    fn an_upgrade_savepoint_is_recorded_as_a_resource_and_the_restored_one_is_never_trimmed() {
        let config = BTreeMap::from([(
            "kubernetes.operator.savepoint.history.max.count".to_string(),
            "1".to_string(),
        )]);
        let before = vec![
            listed(
                "restored",
                1,
                SnapshotTriggerType::Upgrade,
                "file:/sp/restored",
            ),
            listed("p2", 2, SnapshotTriggerType::Periodic, "file:/sp/2"),
            listed("p3", 3, SnapshotTriggerType::Periodic, "file:/sp/3"),
        ];
        let deleted = |actions: &[Effect]| -> Vec<String> {
            actions
                .iter()
                .filter_map(|a| match a {
                    Effect::DeleteSnapshot { name } => Some(name.clone()),
                    _ => None,
                })
                .collect()
        };
        let mut at = input(&config, None, 10);
        at.resources = Some(&before);
        at.keep = Some("file:/sp/restored");
        let out = savepoints(&mut SavepointInfo::default(), &at);
        assert_eq!(
            deleted(&out.actions),
            vec!["p2"],
            "the job restored from it"
        );
        at.keep = None;
        let out = savepoints(&mut SavepointInfo::default(), &at);
        assert_eq!(deleted(&out.actions), vec!["restored", "p2"]);
        // An upgrade's savepoint: one resource named after the upgrade's start, the history
        // trimmed around it.
        let owner = (JobKind::FlinkDeployment, "keeper");
        let out = record_upgrade_savepoint("file:/sp/new", 7, owner, &config, Some(&before), 10);
        let Some(Effect::CreateSnapshot(record)) = out.actions.first() else {
            panic!("{:?}", out.actions)
        };
        assert_eq!(
            record.metadata.name.as_deref(),
            Some("keeper-savepoint-upgrade-7")
        );
        let spec = record.spec.savepoint.clone().unwrap_or_default();
        assert_eq!(
            (spec.path.as_deref(), spec.already_exists),
            (Some("file:/sp/new"), Some(true))
        );
        assert_eq!(deleted(&out.actions), vec!["restored", "p2"]);
        // Off without snapshot resources.
        let out = record_upgrade_savepoint("file:/sp/new", 7, owner, &legacy(config), None, 10);
        assert_eq!(out, Outcome::default());
    }

    #[test]
    fn the_history_keeps_the_newest_completed_snapshot_and_leaves_manual_ones_alone() {
        let config = BTreeMap::from([(
            "kubernetes.operator.savepoint.history.max.count".to_string(),
            "1".to_string(),
        )]);
        let snapshot = |name: &str, at, trigger_type, completed| JobSnapshot {
            name: name.to_string(),
            created_ms: at,
            savepoint: true,
            trigger_type,
            completed,
            path: None,
            nonce: None,
            deleting: false,
        };
        let listed = vec![
            snapshot("manual", 1, SnapshotTriggerType::Manual, true),
            snapshot("old", 2, SnapshotTriggerType::Periodic, true),
            snapshot("done", 3, SnapshotTriggerType::Upgrade, true),
            snapshot("failed", 4, SnapshotTriggerType::Periodic, false),
            snapshot("running", 5, SnapshotTriggerType::Periodic, false),
        ];
        let mut at = input(&config, None, 10);
        at.resources = Some(&listed);
        let out = savepoints(&mut SavepointInfo::default(), &at);
        let deleted: Vec<&str> = out
            .actions
            .iter()
            .filter_map(|a| match a {
                Effect::DeleteSnapshot { name } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, vec!["old", "failed"]);
        let off = BTreeMap::from([(
            "kubernetes.operator.savepoint.cleanup.enabled".to_string(),
            "false".to_string(),
        )]);
        let mut at = input(&off, None, 10);
        at.resources = Some(&listed);
        assert!(
            savepoints(&mut SavepointInfo::default(), &at)
                .actions
                .is_empty()
        );
    }

    #[test]
    fn a_new_nonce_triggers_one_manual_savepoint() {
        let config = legacy(BTreeMap::new());
        let mut info = SavepointInfo::default();
        let mut asked = input(&config, None, 1_000);
        asked.nonce = Some(3);
        let out = savepoints(&mut info, &asked);
        assert!(out.write_ahead && matches!(&out.actions[..], [Effect::TriggerSavepoint { .. }]));
        assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Manual));
        let done = ObservedOperation::Completed("file:/sp/1".into());
        let mut finished = input(&config, Some(&done), 2_000);
        finished.nonce = Some(3);
        let out = savepoints(&mut info, &finished);
        assert!(out.actions.is_empty(), "{:?}", out.actions);
        assert_eq!(
            info.last_savepoint.as_ref().and_then(|s| s.trigger_nonce),
            Some(3)
        );
        assert_eq!(info.trigger_id, None);
        let mut again = input(&config, None, 3_000);
        again.nonce = Some(3);
        assert!(
            savepoints(&mut info, &again).actions.is_empty(),
            "the same nonce asks once"
        );
    }

    #[test]
    fn periodic_savepoints_come_every_interval_and_the_history_is_bounded() {
        let config = legacy(BTreeMap::from([
            (
                "kubernetes.operator.periodic.savepoint.interval".to_string(),
                "10s".to_string(),
            ),
            (
                "kubernetes.operator.savepoint.history.max.count".to_string(),
                "2".to_string(),
            ),
        ]));
        let mut info = SavepointInfo::default();
        assert!(
            savepoints(&mut info, &input(&config, None, 5_000))
                .actions
                .is_empty(),
            "not due yet"
        );
        let mut disposed = Vec::new();
        for (i, now) in [10_000, 20_000, 30_000].into_iter().enumerate() {
            let out = savepoints(&mut info, &input(&config, None, now));
            assert!(
                matches!(&out.actions[..], [Effect::TriggerSavepoint { .. }]),
                "due at {now}"
            );
            let done = ObservedOperation::Completed(format!("file:/sp/{i}"));
            let out = savepoints(&mut info, &input(&config, Some(&done), now + 1));
            disposed.extend(out.actions);
        }
        assert_eq!(info.savepoint_history.len(), 2);
        assert_eq!(
            disposed,
            vec![Effect::DisposeSavepoint {
                cluster: "c".into(),
                path: "file:/sp/0".into()
            }]
        );
    }

    #[test]
    fn a_failed_savepoint_is_reported_and_not_retried_for_the_same_nonce() {
        let config = legacy(BTreeMap::new());
        let mut info = SavepointInfo::default();
        let mut asked = input(&config, None, 1_000);
        asked.nonce = Some(1);
        savepoints(&mut info, &asked);
        let failed = ObservedOperation::Failed("disk full".into());
        let mut result = input(&config, Some(&failed), 2_000);
        result.nonce = Some(1);
        let out = savepoints(&mut info, &result);
        assert!(
            out.notes
                .iter()
                .any(|n| n.warning && n.message.contains("disk full"))
        );
        let mut again = input(&config, None, 3_000);
        again.nonce = Some(1);
        assert!(savepoints(&mut info, &again).actions.is_empty());
    }

    #[test]
    fn a_checkpoint_nonce_asks_once_and_periodic_checkpoints_follow_their_interval() {
        let config = legacy(BTreeMap::from([(
            PERIODIC_CHECKPOINTS.to_string(),
            "30s".to_string(),
        )]));
        let mut info = CheckpointInfo::default();
        let mut asked = input(&config, None, 1_000);
        asked.nonce = Some(7);
        let out = checkpoints(&mut info, &asked);
        assert!(out.write_ahead && matches!(&out.actions[..], [Effect::TriggerCheckpoint { .. }]));
        assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Manual));
        // It fails: reported, and the same nonce does not ask again.
        let failed = ObservedOperation::Failed("checkpoint declined".into());
        let mut result = input(&config, Some(&failed), 2_000);
        result.nonce = Some(7);
        let out = checkpoints(&mut info, &result);
        assert!(
            out.notes
                .iter()
                .any(|n| n.reason == "CheckpointError" && n.message.contains("declined"))
        );
        let mut again = input(&config, None, 3_000);
        again.nonce = Some(7);
        assert!(checkpoints(&mut info, &again).actions.is_empty());
        // A new nonce asks again; its checkpoint completes.
        again.nonce = Some(8);
        assert_eq!(checkpoints(&mut info, &again).actions.len(), 1);
        let done = ObservedOperation::Completed("file:/cp/chk-9".into());
        let mut result = input(&config, Some(&done), 4_000);
        result.nonce = Some(8);
        let out = checkpoints(&mut info, &result);
        assert!(out.notes.iter().any(|n| n.reason == "CheckpointCompleted"));
        assert_eq!(
            info.last_checkpoint.as_ref().and_then(|c| c.trigger_nonce),
            Some(8)
        );
        // Periodic: 30 s after the job started, then 30 s after that.
        assert!(
            checkpoints(&mut info, &input(&config, None, 29_000))
                .actions
                .is_empty()
        );
        let out = checkpoints(&mut info, &input(&config, None, 30_000));
        assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Periodic));
        assert_eq!(out.actions.len(), 1);
        checkpoints(&mut info, &input(&config, Some(&done), 31_000));
        assert!(
            checkpoints(&mut info, &input(&config, None, 59_000))
                .actions
                .is_empty()
        );
        assert_eq!(
            checkpoints(&mut info, &input(&config, None, 60_000))
                .actions
                .len(),
            1
        );
    }

    #[test]
    fn a_cron_schedule_takes_a_savepoint_at_its_times_only() {
        // Every day at 02:30:00 UTC; 1_795_996_800 s is 2026-11-30 00:00 UTC.
        let midnight = 1_795_996_800_000;
        let at = |h: i64, m: i64| midnight + (h * 3600 + m * 60) * 1000;
        let config = legacy(BTreeMap::from([(
            PERIODIC_SAVEPOINTS.to_string(),
            "0 30 2 * * ?".to_string(),
        )]));
        let mut info = SavepointInfo::default();
        let mut started = input(&config, None, at(1, 0));
        started.job_started = at(0, 10);
        assert!(
            savepoints(&mut info, &started).actions.is_empty(),
            "not yet 02:30"
        );
        let mut later = input(&config, None, at(2, 31));
        later.job_started = at(0, 10);
        assert!(matches!(
            &savepoints(&mut info, &later).actions[..],
            [Effect::TriggerSavepoint { .. }]
        ));
        let done = ObservedOperation::Completed("file:/sp/nightly".into());
        savepoints(&mut info, &input(&config, Some(&done), at(2, 32)));
        assert!(
            savepoints(&mut info, &input(&config, None, at(23, 59)))
                .actions
                .is_empty(),
            "once a day"
        );
        let tomorrow = input(&config, None, at(26, 30));
        assert_eq!(savepoints(&mut info, &tomorrow).actions.len(), 1);
    }

    #[test]
    fn a_zero_or_unusable_schedule_takes_nothing() {
        for value in ["0s", "0", "every day", "0 0 0 L * ?"] {
            let config = BTreeMap::from([(PERIODIC_SAVEPOINTS.to_string(), value.to_string())]);
            assert_eq!(Schedule::of(&config, PERIODIC_SAVEPOINTS), None, "{value}");
        }
    }
}
