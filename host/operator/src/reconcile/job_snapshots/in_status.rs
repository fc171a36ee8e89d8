//! Snapshots triggered here, one savepoint and one checkpoint at a time (the trigger id
//! recorded before the request), and the savepoint history kept in the status.

use super::*;

/// Manual and periodic checkpoints (`POST /jobs/:id/checkpoints`, Flink 1.19+): the trigger is
/// recorded (write-ahead), its result observed; a completed one becomes `lastCheckpoint`, a
/// failed one is reported and its nonce not asked again.
pub fn checkpoints(info: &mut CheckpointInfo, input: &SnapshotInput) -> Outcome {
    let mut out = Outcome::default();
    if let Some(trigger) = info.trigger_id.clone() {
        let trigger_type = info.trigger_type.unwrap_or_default();
        match input.result {
            Some(ObservedOperation::Completed(path)) => {
                out.notes
                    .push(checkpoint_completed(info, path, input.now_ms));
            }
            Some(ObservedOperation::Failed(cause)) => {
                let kind_of = info.format_type.unwrap_or_default();
                let retried = retry_within_grace(
                    &mut out,
                    Reason::CheckpointError,
                    format!(
                        "{} checkpoint {trigger} failed: {cause}",
                        kind(trigger_type)
                    ),
                    GracePeriod::of(input, options::CHECKPOINT_TRIGGER_GRACE_PERIOD),
                    (info.trigger_timestamp, &mut info.trigger_id),
                    input,
                    checkpoint_request(input, kind_of),
                );
                if !retried {
                    clear_checkpoint_trigger(info);
                }
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
    info.trigger_timestamp = Some(input.now_ms);
    info.trigger_type = Some(kind);
    let checkpoint_type = super::checkpoint_type(input.config);
    info.format_type = Some(checkpoint_type);
    if kind == SnapshotTriggerType::Manual {
        info.trigger_nonce = input.nonce;
    } else {
        info.last_periodic_checkpoint_timestamp = input.now_ms;
    }
    trigger_now(
        &mut out,
        &mut info.trigger_id,
        input,
        checkpoint_request(input, checkpoint_type),
    );
    out
}

/// Asks for the snapshot `request` builds under a new trigger id, recorded in `trigger_id`
/// before the request; looked at again soon.
fn trigger_now(
    out: &mut Outcome,
    trigger_id: &mut Option<String>,
    input: &SnapshotInput,
    request: impl FnOnce(String) -> Effect,
) {
    let id = job_id::snapshot_trigger_id(input.uid, input.now_ms);
    *trigger_id = Some(id.clone());
    out.actions.push(request(id));
    out.write_ahead = true;
    out.pace = Pace::Soon;
}

/// `POST /jobs/:id/checkpoints` of `kind`, under the trigger id it is given.
fn checkpoint_request<'a>(
    input: &'a SnapshotInput,
    kind: CheckpointType,
) -> impl FnOnce(String) -> Effect + 'a {
    move |trigger_id| Effect::TriggerCheckpoint {
        cluster: input.cluster.to_string(),
        job_id: input.job_id.to_string(),
        trigger_id,
        kind,
    }
}

/// `POST /jobs/:id/savepoints` in `format`, under the trigger id it is given.
fn savepoint_request<'a>(
    input: &'a SnapshotInput,
    format: SavepointFormatType,
) -> impl FnOnce(String) -> Effect + 'a {
    move |trigger_id| Effect::TriggerSavepoint {
        cluster: input.cluster.to_string(),
        job_id: input.job_id.to_string(),
        trigger_id,
        directory: None,
        format,
    }
}

/// `kubernetes.operator.{savepoint,checkpoint}.trigger.grace-period` (upstream's default
/// 1 min): a snapshot triggered here that fails within it of its *first* trigger is triggered
/// again, keeping its type, nonce and first trigger time; past it, it is given up. Upstream
/// counts from each attempt, so failures that come quickly are retried forever; counting from
/// the first ends them within the period (which the resource itself sets).
struct GracePeriod {
    period: Duration,
    now_ms: i64,
}

impl GracePeriod {
    fn of(input: &SnapshotInput, option: flink_api::config::ConfigOption) -> Self {
        let period = option
            .in_flat(input.config)
            .and_then(|v| flink_api::quantity::parse_flink_duration(v).ok())
            .unwrap_or(Duration::from_secs(60));
        Self {
            period,
            now_ms: input.now_ms,
        }
    }

    /// Whether a snapshot first triggered at `first_ms` is still within the period.
    fn open(&self, first_ms: Option<i64>) -> bool {
        let period = i64::try_from(self.period.as_millis()).unwrap_or(i64::MAX);
        first_ms.is_some_and(|first| self.now_ms.saturating_sub(first) < period)
    }
}

impl std::fmt::Display for GracePeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the trigger grace period of {}",
            super::super::humantime(self.period)
        )
    }
}

/// A snapshot triggered here failed (`failed` says how): within `grace` of its first trigger
/// (`trigger`: when, and the id recorded) it is triggered again under a new id, recorded before
/// the request `again` builds; past it, it is given up. True: triggered again.
fn retry_within_grace(
    out: &mut Outcome,
    reason: Reason,
    failed: String,
    grace: GracePeriod,
    trigger: (Option<i64>, &mut Option<String>),
    input: &SnapshotInput,
    again: impl FnOnce(String) -> Effect,
) -> bool {
    let (first_ms, trigger_id) = trigger;
    if !grace.open(first_ms) {
        out.notes.push(Note::warning(
            reason,
            format!("{failed}; given up, {grace} after it was first triggered"),
        ));
        return false;
    }
    out.notes.push(Note::warning(
        reason,
        format!("{failed}; triggered again, as the first trigger was within {grace}"),
    ));
    trigger_now(out, trigger_id, input, again);
    true
}

/// The pending checkpoint completed at `path`: it is `lastCheckpoint` now. Its event.
pub(super) fn checkpoint_completed(info: &mut CheckpointInfo, path: &str, now_ms: i64) -> Note {
    let trigger_type = info.trigger_type.unwrap_or_default();
    info.last_checkpoint = Some(Checkpoint {
        time_stamp: now_ms,
        trigger_type,
        format_type: info.format_type.unwrap_or_default(),
        trigger_nonce: (trigger_type == SnapshotTriggerType::Manual)
            .then_some(info.trigger_nonce)
            .flatten(),
    });
    clear_checkpoint_trigger(info);
    Note::normal(
        Reason::CheckpointCompleted,
        format!("{} checkpoint completed: {path}", kind(trigger_type)),
    )
}

/// The pending savepoint completed at `path`: it is `lastSavepoint` now, and in the history.
/// Its event.
pub(super) fn savepoint_completed(info: &mut SavepointInfo, path: &str, now_ms: i64) -> Note {
    let savepoint = Savepoint {
        time_stamp: now_ms,
        location: Some(path.to_string()),
        trigger_type: info.trigger_type.unwrap_or_default(),
        format_type: info.format_type.unwrap_or(SavepointFormatType::Canonical),
        trigger_nonce: info.trigger_nonce,
    };
    let note = Note::normal(
        Reason::SavepointCompleted,
        format!(
            "{} savepoint completed: {path}",
            kind(savepoint.trigger_type)
        ),
    );
    info.last_savepoint = Some(savepoint.clone());
    info.savepoint_history.push(savepoint);
    clear_trigger(info);
    note
}

pub(super) fn clear_checkpoint_trigger(info: &mut CheckpointInfo) {
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
                out.notes
                    .push(savepoint_completed(info, path, input.now_ms));
            }
            Some(ObservedOperation::Failed(cause)) => {
                let format = info.format_type.unwrap_or(SavepointFormatType::Canonical);
                let retried = retry_within_grace(
                    &mut out,
                    Reason::SavepointError,
                    format!(
                        "{} savepoint {trigger} failed: {cause}",
                        kind(info.trigger_type.unwrap_or_default())
                    ),
                    GracePeriod::of(input, options::SAVEPOINT_TRIGGER_GRACE_PERIOD),
                    (info.trigger_timestamp, &mut info.trigger_id),
                    input,
                    savepoint_request(input, format),
                );
                // A failed manual savepoint keeps its nonce: a new nonce asks again.
                if !retried {
                    clear_trigger(info);
                }
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
        info.trigger_timestamp = Some(input.now_ms);
        info.trigger_type = Some(kind);
        let format = savepoint_format(input.config);
        info.format_type = Some(format);
        if kind == SnapshotTriggerType::Manual {
            info.trigger_nonce = input.nonce;
        } else {
            info.last_periodic_savepoint_timestamp = input.now_ms;
        }
        trigger_now(
            &mut out,
            &mut info.trigger_id,
            input,
            savepoint_request(input, format),
        );
    }
    trim_history(info, input, &mut out);
    out
}

pub(super) fn kind(trigger: SnapshotTriggerType) -> &'static str {
    match trigger {
        SnapshotTriggerType::Manual => "Manual",
        SnapshotTriggerType::Periodic => "Periodic",
        SnapshotTriggerType::Upgrade => "Upgrade",
        SnapshotTriggerType::Unknown => "A",
    }
}

pub(super) fn clear_trigger(info: &mut SavepointInfo) {
    info.trigger_id = None;
    info.trigger_timestamp = None;
    info.trigger_type = None;
    info.format_type = None;
}

/// Drops savepoints beyond the history limits (never `keep`; never the last one unless
/// savepoint resources completed since) and disposes of their files through Flink when cleanup
/// is enabled. Completed savepoint resources of the job count towards the limit (upstream).
pub(super) fn trim_history(info: &mut SavepointInfo, input: &SnapshotInput, out: &mut Outcome) {
    let limits = HistoryLimits::of(input.config, input.thresholds);
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
