//! What is due: a new nonce first, then the periodic schedule (a duration, or a Quartz cron
//! expression for fixed times).

use super::*;

/// When periodic snapshots are due.
#[derive(Debug, PartialEq)]
pub(super) enum Schedule {
    Every(Duration),
    /// At the times a Quartz cron expression names.
    At(Cron),
}

impl Schedule {
    /// The setting `key`: None when unset, zero, or invalid (validation reports that).
    pub(super) fn of(config: &BTreeMap<String, String>, key: &str) -> Option<Schedule> {
        let value = config.get(key)?.trim();
        match flink_api::quantity::parse_flink_duration(value) {
            Ok(every) if every.is_zero() => None,
            Ok(every) => Some(Schedule::Every(every)),
            Err(_) => Cron::parse(value).ok().map(Schedule::At),
        }
    }

    /// Whether a periodic snapshot is due at `now_ms`, the last one having been taken at
    /// `since_ms` (or the job having started then).
    pub(super) fn due(&self, since_ms: i64, now_ms: i64) -> bool {
        match self {
            Schedule::Every(every) => now_ms - since_ms >= every.as_millis() as i64,
            Schedule::At(cron) => cron.fires_within(since_ms, now_ms),
        }
    }
}

/// The periodic setting of savepoints and of checkpoints.
pub(super) const PERIODIC_SAVEPOINTS: &str = options::PERIODIC_SAVEPOINT_INTERVAL.key;
pub(super) const PERIODIC_CHECKPOINTS: &str = options::PERIODIC_CHECKPOINT_INTERVAL.key;

/// A new nonce first (`asked`: it is not the one already asked for), then the schedule.
pub(super) fn trigger_due(
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

/// The savepoint nonce, when it asks for a savepoint not taken (or tried) yet.
pub(super) fn asked_nonce(info: &SavepointInfo, input: &SnapshotInput) -> Option<i64> {
    input.nonce.filter(|nonce| {
        info.trigger_nonce != Some(*nonce)
            && !info
                .savepoint_history
                .iter()
                .any(|s| s.trigger_nonce == Some(*nonce))
    })
}

/// Which savepoint is due now, if any: a new nonce first, then the periodic one.
pub(super) fn due(info: &SavepointInfo, input: &SnapshotInput) -> Option<SnapshotTriggerType> {
    trigger_due(
        asked_nonce(info, input).is_some(),
        PERIODIC_SAVEPOINTS,
        info.last_periodic_savepoint_timestamp,
        input,
    )
}
