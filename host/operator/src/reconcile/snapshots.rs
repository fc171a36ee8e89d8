//! Snapshots of a running application besides upgrades: manual savepoints
//! (`savepointTriggerNonce`) and checkpoints (`checkpointTriggerNonce`), periodic ones
//! (`kubernetes.operator.periodic.savepoint.interval` / `.checkpoint.interval`: a duration, or a
//! Quartz cron expression for fixed times), and the history savepoints leave
//! (`kubernetes.operator.savepoint.history.max.count` / `.max.age`, expired ones disposed when
//! `kubernetes.operator.savepoint.cleanup.enabled`). One savepoint and one checkpoint at a time;
//! a trigger id is recorded in `jobStatus.savepointInfo` / `.checkpointInfo` before the request.

use super::observed::ObservedOperation;
use super::{Action, Note, job_id};
use flink_api::{
    Checkpoint, CheckpointInfo, CheckpointType, Savepoint, SavepointFormatType, SavepointInfo,
    SnapshotTriggerType,
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
}

#[derive(Debug, Default, PartialEq)]
pub struct SnapshotOutcome {
    pub actions: Vec<Action>,
    pub notes: Vec<Note>,
    /// A trigger was recorded: write the status before the request.
    pub write_ahead: bool,
    /// A savepoint is running: look again soon.
    pub pending: bool,
}

impl SnapshotOutcome {
    /// Both outcomes of one reconcile (savepoints and checkpoints) as one.
    pub fn merge(&mut self, other: SnapshotOutcome) {
        self.actions.extend(other.actions);
        self.notes.extend(other.notes);
        self.write_ahead |= other.write_ahead;
        self.pending |= other.pending;
    }
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
const PERIODIC_SAVEPOINTS: &str = "kubernetes.operator.periodic.savepoint.interval";
const PERIODIC_CHECKPOINTS: &str = "kubernetes.operator.periodic.checkpoint.interval";

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
pub fn checkpoints(info: &mut CheckpointInfo, input: &SnapshotInput) -> SnapshotOutcome {
    let mut out = SnapshotOutcome::default();
    if let Some(trigger) = info.trigger_id.clone() {
        let trigger_type = info.trigger_type.unwrap_or_default();
        match input.result {
            Some(ObservedOperation::Completed(path)) => {
                out.notes.push(Note::normal(
                    "CheckpointCompleted",
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
                    "CheckpointError",
                    format!(
                        "{} checkpoint {trigger} failed: {cause}",
                        kind(trigger_type)
                    ),
                ));
                clear_checkpoint_trigger(info);
            }
            _ => out.pending = true,
        }
        return out;
    }
    let asked = input.nonce.is_some() && input.nonce != info.trigger_nonce;
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
    out.actions.push(Action::TriggerCheckpoint {
        cluster: input.cluster.to_string(),
        job_id: input.job_id.to_string(),
        trigger_id: trigger,
    });
    out.write_ahead = true;
    out.pending = true;
    out
}

fn clear_checkpoint_trigger(info: &mut CheckpointInfo) {
    info.trigger_id = None;
    info.trigger_timestamp = None;
    info.trigger_type = None;
    info.format_type = None;
}

pub fn savepoints(info: &mut SavepointInfo, input: &SnapshotInput) -> SnapshotOutcome {
    let mut out = SnapshotOutcome::default();
    if let Some(trigger) = info.trigger_id.clone() {
        match input.result {
            Some(ObservedOperation::Completed(path)) => {
                let savepoint = Savepoint {
                    time_stamp: input.now_ms,
                    location: Some(path.clone()),
                    trigger_type: info.trigger_type.unwrap_or_default(),
                    format_type: SavepointFormatType::Canonical,
                    trigger_nonce: info.trigger_nonce,
                };
                out.notes.push(Note::normal(
                    "SavepointCompleted",
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
                    "SavepointError",
                    format!(
                        "{} savepoint {trigger} failed: {cause}",
                        kind(info.trigger_type.unwrap_or_default())
                    ),
                ));
                // A failed manual savepoint keeps its nonce: a new nonce asks again.
                clear_trigger(info);
            }
            _ => out.pending = true,
        }
    } else if let Some(kind) = due(info, input) {
        let trigger = job_id::snapshot_trigger_id(input.uid, input.now_ms);
        info.trigger_id = Some(trigger.clone());
        info.trigger_timestamp = Some(input.now_ms);
        info.trigger_type = Some(kind);
        info.format_type = Some(SavepointFormatType::Canonical);
        if kind == SnapshotTriggerType::Manual {
            info.trigger_nonce = input.nonce;
        } else {
            info.last_periodic_savepoint_timestamp = input.now_ms;
        }
        out.actions.push(Action::TriggerSavepoint {
            cluster: input.cluster.to_string(),
            job_id: input.job_id.to_string(),
            trigger_id: trigger,
            directory: None,
        });
        out.write_ahead = true;
        out.pending = true;
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

/// Which savepoint is due now, if any: a new nonce first, then the periodic one.
fn due(info: &SavepointInfo, input: &SnapshotInput) -> Option<SnapshotTriggerType> {
    let asked = input.nonce.is_some_and(|nonce| {
        info.trigger_nonce != Some(nonce)
            && !info
                .savepoint_history
                .iter()
                .any(|s| s.trigger_nonce == Some(nonce))
    });
    trigger_due(
        asked,
        PERIODIC_SAVEPOINTS,
        info.last_periodic_savepoint_timestamp,
        input,
    )
}

fn setting_duration(config: &BTreeMap<String, String>, key: &str) -> Option<Duration> {
    config
        .get(key)
        .and_then(|v| flink_api::quantity::parse_flink_duration(v).ok())
}

/// Drops savepoints beyond the history limits (never the last one, never `keep`) and disposes
/// of their files through Flink when cleanup is enabled.
fn trim_history(info: &mut SavepointInfo, input: &SnapshotInput, out: &mut SnapshotOutcome) {
    let max_count = input
        .config
        .get("kubernetes.operator.savepoint.history.max.count")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(10)
        .max(1);
    let max_age = setting_duration(
        input.config,
        "kubernetes.operator.savepoint.history.max.age",
    )
    .unwrap_or(Duration::from_secs(24 * 3600));
    let cleanup = input
        .config
        .get("kubernetes.operator.savepoint.cleanup.enabled")
        .is_none_or(|v| v.trim() != "false");
    let last = info
        .last_savepoint
        .as_ref()
        .and_then(|s| s.location.clone());
    let protected = |s: &Savepoint| s.location == last || s.location.as_deref() == input.keep;
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
            out.actions.push(Action::DisposeSavepoint {
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
        }
    }

    #[test]
    fn a_new_nonce_triggers_one_manual_savepoint() {
        let config = BTreeMap::new();
        let mut info = SavepointInfo::default();
        let mut asked = input(&config, None, 1_000);
        asked.nonce = Some(3);
        let out = savepoints(&mut info, &asked);
        assert!(out.write_ahead && matches!(&out.actions[..], [Action::TriggerSavepoint { .. }]));
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
        let config = BTreeMap::from([
            (
                "kubernetes.operator.periodic.savepoint.interval".to_string(),
                "10s".to_string(),
            ),
            (
                "kubernetes.operator.savepoint.history.max.count".to_string(),
                "2".to_string(),
            ),
        ]);
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
                matches!(&out.actions[..], [Action::TriggerSavepoint { .. }]),
                "due at {now}"
            );
            let done = ObservedOperation::Completed(format!("file:/sp/{i}"));
            let out = savepoints(&mut info, &input(&config, Some(&done), now + 1));
            disposed.extend(out.actions);
        }
        assert_eq!(info.savepoint_history.len(), 2);
        assert_eq!(
            disposed,
            vec![Action::DisposeSavepoint {
                cluster: "c".into(),
                path: "file:/sp/0".into()
            }]
        );
    }

    #[test]
    fn a_failed_savepoint_is_reported_and_not_retried_for_the_same_nonce() {
        let config = BTreeMap::new();
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
        let config = BTreeMap::from([(PERIODIC_CHECKPOINTS.to_string(), "30s".to_string())]);
        let mut info = CheckpointInfo::default();
        let mut asked = input(&config, None, 1_000);
        asked.nonce = Some(7);
        let out = checkpoints(&mut info, &asked);
        assert!(out.write_ahead && matches!(&out.actions[..], [Action::TriggerCheckpoint { .. }]));
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
        let config =
            BTreeMap::from([(PERIODIC_SAVEPOINTS.to_string(), "0 30 2 * * ?".to_string())]);
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
            [Action::TriggerSavepoint { .. }]
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
