//! Securing a running job's state before an upgrade, a suspension or a deletion replaces it:
//! stop-with-savepoint (`savepoint`), or cancel and take the latest retained checkpoint
//! (`last-state` without HA). Shared by FlinkDeployments and FlinkSessionJobs; the caller owns
//! the status and the cluster, this owns the steps.

use super::job::{Outcome, Pace};
use super::observed::{ObservedCheckpoint, ObservedJob, ObservedOperation};
use super::status::state_name;
use super::{Effect, Note, Reason, job_id};
use flink_api::{
    FlinkJobState, JobStatus, Savepoint, SavepointFormatType, SnapshotTriggerType, UpgradeMode,
    UpgradeProgress, UpgradeStep,
};

pub struct SecureInput<'a> {
    pub uid: &'a str,
    /// The FlinkDeployment whose REST API the requests go to.
    pub cluster: &'a str,
    pub job: &'a ObservedJob,
    /// The result of the recorded stop-with-savepoint, when one is awaited.
    pub savepoint: Option<&'a ObservedOperation>,
    /// The job's latest completed checkpoint, when observed.
    pub latest_checkpoint: Option<&'a ObservedCheckpoint>,
    /// What the resource's configuration says about securing its state.
    pub rules: SecureRules,
    /// What the job started from, when that is still its state (it completed no checkpoint):
    /// where a job that is no longer running resumes when Flink has no checkpoint of it.
    pub started_from: Option<String>,
    pub now_ms: i64,
}

/// What securing produced, besides its actions and events: the completed savepoint (for the
/// history) and the restore path, once the state is secured.
#[derive(Debug, Default, PartialEq)]
pub struct Secured {
    pub savepoint: Option<Savepoint>,
    pub restore_path: Option<String>,
}

/// A new upgrade's progress at `step` (by default the first step of `mode`).
pub fn progress(
    mode: UpgradeMode,
    step: Option<UpgradeStep>,
    target_generation: i64,
    restore_path: Option<String>,
    now_ms: i64,
) -> UpgradeProgress {
    let first = if mode == UpgradeMode::Savepoint {
        UpgradeStep::Savepointing
    } else {
        UpgradeStep::Cancelling
    };
    UpgradeProgress {
        step: step.unwrap_or(first),
        mode,
        target_generation,
        trigger_id: None,
        restore_path,
        attempts: 0,
        started: now_ms,
    }
}

/// Records in the job status what securing produced: the savepoint (`lastSavepoint`, and the
/// status history when `history`: snapshots are not FlinkStateSnapshot resources) and the
/// restore path (`upgradeSavepointPath`), which is never forgotten from here on.
pub fn record_secured(
    job_status: &mut JobStatus,
    savepoint: Option<&Savepoint>,
    secured: Option<&str>,
    history: bool,
) {
    if let Some(savepoint) = savepoint {
        let info = job_status
            .savepoint_info
            .get_or_insert_with(Default::default);
        info.last_savepoint = Some(savepoint.clone());
        if history {
            info.savepoint_history.push(savepoint.clone());
        }
    }
    if let Some(path) = secured {
        job_status.upgrade_savepoint_path = Some(path.to_string());
    }
}

/// What a resource's configuration says about securing its job's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SecureRules {
    /// `kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age`: an older latest
    /// checkpoint is not resumed from; a savepoint is taken instead (the job must be running).
    pub max_checkpoint_age: Option<std::time::Duration>,
    /// The format of a savepoint taken to secure the state.
    pub format: SavepointFormatType,
    /// `kubernetes.operator.job.upgrade.last-state-fallback.enabled` (true): a savepoint
    /// upgrade of a job that is not running resumes from its latest checkpoint; false: it waits
    /// for the job to run again.
    pub last_state_fallback: bool,
    /// `kubernetes.operator.job.drain-on-savepoint-deletion` (false): a stop with savepoint
    /// drains the job first (event-time windows fire).
    pub drain: bool,
}

impl SecureRules {
    /// From a flat configuration (the operator's defaults under the resource's own).
    pub fn of(config: &std::collections::BTreeMap<String, String>) -> Self {
        use flink_api::config::options;
        Self {
            max_checkpoint_age: options::LAST_STATE_MAX_CHECKPOINT_AGE
                .in_flat(config)
                .and_then(|v| flink_api::quantity::parse_flink_duration(v).ok()),
            format: super::job_snapshots::savepoint_format(config),
            last_state_fallback: options::LAST_STATE_FALLBACK.flag_in_flat(config, true),
            drain: options::DRAIN_ON_SAVEPOINT_DELETION.flag_in_flat(config, false),
        }
    }
}

/// Advances `progress` (at `SAVEPOINTING` or `CANCELLING`) by what was observed.
pub fn secure_job(progress: &mut UpgradeProgress, input: &SecureInput) -> Outcome<Secured> {
    let mut out = Outcome::<Secured>::default();
    if progress.step == UpgradeStep::Savepointing
        && progress.trigger_id.is_none()
        && input.job.state != FlinkJobState::Running
    {
        // An ended job has nothing to stop with a savepoint: its latest checkpoint is the
        // state whatever the switch says (upstream upgrades ended jobs from it too).
        if !input.rules.last_state_fallback && !input.job.state.is_globally_terminal() {
            out.error = Some((
                "UpgradeBlocked",
                format!(
                    "the job is {}, not RUNNING, so no savepoint can be taken, and kubernetes.operator.job.upgrade.last-state-fallback.enabled is false; the upgrade waits for the job to run. Set it to true to resume from the latest checkpoint, or set initialSavepointPath",
                    state_name(input.job.state)
                ),
            ));
            out.pace = Pace::Normal;
            return out;
        }
        // A savepoint needs a running job; the latest retained checkpoint is the fallback
        // (upstream's last-state fallback), never empty state.
        progress.step = UpgradeStep::Cancelling;
        out.notes.push(Note::normal(
            Reason::SavepointFallback,
            format!(
                "The job is {}, not RUNNING: resuming from its latest checkpoint instead of a savepoint",
                state_name(input.job.state)
            ),
        ));
    }
    let too_old = match (input.latest_checkpoint, input.rules.max_checkpoint_age) {
        (Some(checkpoint), Some(max)) => {
            input.now_ms - checkpoint.completed_at > max.as_millis() as i64
        }
        _ => false,
    };
    if progress.step == UpgradeStep::Cancelling
        && too_old
        && input.job.state == FlinkJobState::Running
    {
        progress.step = UpgradeStep::Savepointing;
        out.notes.push(Note::normal(
            Reason::CheckpointTooOld,
            "The latest checkpoint is older than the allowed age: taking a savepoint instead",
        ));
    }
    let secured = match progress.step {
        UpgradeStep::Savepointing => savepoint_step(progress, input, &mut out),
        _ => cancel_step(input, &mut out),
    };
    if let Some(path) = &secured {
        progress.restore_path = Some(path.clone());
        progress.step = UpgradeStep::StoppingCluster;
    }
    out.value.restore_path = secured;
    out
}

fn savepoint_step(
    progress: &mut UpgradeProgress,
    input: &SecureInput,
    out: &mut Outcome<Secured>,
) -> Option<String> {
    let Some(trigger) = progress.trigger_id.clone() else {
        let trigger = job_id::trigger_id(input.uid, progress.target_generation, progress.attempts);
        progress.trigger_id = Some(trigger.clone());
        out.write_ahead = true;
        out.actions.push(Effect::StopWithSavepoint {
            cluster: input.cluster.to_string(),
            job_id: input.job.id.clone(),
            trigger_id: trigger,
            format: input.rules.format,
            drain: input.rules.drain,
        });
        return None;
    };
    match input.savepoint {
        Some(ObservedOperation::Completed(path)) => {
            out.notes.push(Note::normal(
                Reason::SavepointCompleted,
                format!("Stopped the job with savepoint {path}"),
            ));
            out.value.savepoint = Some(Savepoint {
                time_stamp: input.now_ms,
                location: Some(path.clone()),
                trigger_type: SnapshotTriggerType::Upgrade,
                format_type: input.rules.format,
                trigger_nonce: None,
            });
            Some(path.clone())
        }
        Some(ObservedOperation::Failed(cause)) => {
            out.error = Some((
                "SavepointError",
                format!(
                    "stop-with-savepoint {trigger} failed: {cause}; the job keeps running and the upgrade is retried"
                ),
            ));
            progress.trigger_id = None;
            progress.attempts += 1;
            out.pace = Pace::Normal;
            None
        }
        _ => None,
    }
}

/// How long after a job ended its checkpoint statistics (and its exceptions) can still be older
/// than its end: Flink's REST API serves them from a cache that lives `web.refresh-interval`
/// (3 s), plus a margin. Read sooner, the "latest" checkpoint can be one the job's last
/// checkpoint already replaced (and deleted), and the exceptions can lack the failure.
pub const CHECKPOINT_STATISTICS_SETTLE_MS: i64 = 5_000;

fn cancel_step(input: &SecureInput, out: &mut Outcome<Secured>) -> Option<String> {
    if input.job.state.is_globally_terminal() {
        if input.now_ms - input.job.last_modification < CHECKPOINT_STATISTICS_SETTLE_MS {
            return None;
        }
        return match input.latest_checkpoint {
            Some(checkpoint) => {
                out.notes.push(Note::normal(
                    Reason::CheckpointSecured,
                    format!(
                        "The job was cancelled; resuming from its latest checkpoint {}",
                        checkpoint.path
                    ),
                ));
                Some(checkpoint.path.clone())
            }
            None if input.started_from.is_some() => {
                let path = input.started_from.clone().unwrap_or_default();
                out.notes.push(Note::normal(
                    Reason::StateFallback,
                    format!("The job is {} and completed no checkpoint: its state is still {path}, which the new deployment restores", state_name(input.job.state)),
                ));
                Some(path)
            }
            None => {
                out.error = Some(("UpgradeBlocked", "the job is no longer running and Flink reports no completed checkpoint to resume from: manual restore required. Set initialSavepointPath to a savepoint or retained checkpoint, or switch to upgradeMode: stateless to start from empty state".into()));
                None
            }
        };
    }
    if input.latest_checkpoint.is_none() {
        out.error = Some(("UpgradeBlocked", "last-state upgrade needs a completed checkpoint and the job has none yet; the job keeps running. Enable checkpointing (execution.checkpointing.interval) or wait for one".into()));
        out.pace = Pace::Normal;
        return None;
    }
    if input.job.state != FlinkJobState::Cancelling {
        out.write_ahead = true;
        out.actions.push(Effect::CancelJob {
            cluster: input.cluster.to_string(),
            job_id: input.job.id.clone(),
            best_effort: false,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(step: UpgradeStep) -> UpgradeProgress {
        UpgradeProgress {
            step,
            mode: UpgradeMode::LastState,
            target_generation: 2,
            trigger_id: None,
            restore_path: None,
            attempts: 0,
            started: 0,
        }
    }

    #[test]
    fn a_job_that_just_ended_is_not_secured_from_statistics_older_than_its_end() {
        let cancelled = ObservedJob {
            id: "j".into(),
            name: "n".into(),
            state: FlinkJobState::Canceled,
            start_time: 0,
            last_modification: 100_000,
        };
        let checkpoint = ObservedCheckpoint {
            path: "file:/cp/chk-9".into(),
            completed_at: 99_000,
        };
        let mut input = SecureInput {
            uid: "u",
            cluster: "c",
            job: &cancelled,
            savepoint: None,
            latest_checkpoint: Some(&checkpoint),
            rules: SecureRules {
                max_checkpoint_age: None,
                format: SavepointFormatType::Canonical,
                last_state_fallback: true,
                drain: false,
            },
            started_from: None,
            now_ms: 102_000,
        };
        let mut cancelling = progress(UpgradeStep::Cancelling);
        let out = secure_job(&mut cancelling, &input);
        assert_eq!(
            out.value.restore_path, None,
            "2 s after the cancel: the statistics may be stale"
        );
        assert_eq!(out.error, None);
        assert!(out.actions.is_empty(), "{:?}", out.actions);
        input.now_ms = 100_000 + CHECKPOINT_STATISTICS_SETTLE_MS;
        let out = secure_job(&mut cancelling, &input);
        assert_eq!(out.value.restore_path.as_deref(), Some("file:/cp/chk-9"));
    }

    #[test]
    fn a_checkpoint_older_than_allowed_is_replaced_by_a_savepoint() {
        let job = ObservedJob {
            id: "j".into(),
            name: "n".into(),
            state: FlinkJobState::Running,
            start_time: 0,
            last_modification: 0,
        };
        let checkpoint = ObservedCheckpoint {
            path: "file:/cp/chk-1".into(),
            completed_at: 1_000,
        };
        let mut input = SecureInput {
            uid: "u",
            cluster: "c",
            job: &job,
            savepoint: None,
            latest_checkpoint: Some(&checkpoint),
            rules: SecureRules {
                max_checkpoint_age: Some(std::time::Duration::from_secs(60)),
                format: SavepointFormatType::Canonical,
                last_state_fallback: true,
                drain: false,
            },
            started_from: None,
            now_ms: 30_000,
        };
        let mut fresh = progress(UpgradeStep::Cancelling);
        let out = secure_job(&mut fresh, &input);
        assert!(
            matches!(&out.actions[..], [Effect::CancelJob { .. }]),
            "a fresh checkpoint is used: {:?}",
            out.actions
        );
        input.now_ms = 120_000;
        let mut old = progress(UpgradeStep::Cancelling);
        let out = secure_job(&mut old, &input);
        assert!(
            matches!(&out.actions[..], [Effect::StopWithSavepoint { .. }]),
            "{:?}",
            out.actions
        );
        assert_eq!(old.step, UpgradeStep::Savepointing);
    }

    #[test]
    fn a_stop_with_savepoint_drains_only_when_configured() {
        let job = ObservedJob {
            id: "j".into(),
            name: "n".into(),
            state: FlinkJobState::Running,
            start_time: 0,
            last_modification: 0,
        };
        let stop = |config: &[(&str, &str)]| {
            let config = config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let input = SecureInput {
                uid: "u",
                cluster: "c",
                job: &job,
                savepoint: None,
                latest_checkpoint: None,
                rules: SecureRules::of(&config),
                started_from: None,
                now_ms: 1_000,
            };
            let out = secure_job(&mut progress(UpgradeStep::Savepointing), &input);
            match &out.actions[..] {
                [Effect::StopWithSavepoint { drain, .. }] => *drain,
                other => panic!("{other:?}"),
            }
        };
        assert!(!stop(&[]), "upstream's default: no drain");
        assert!(stop(&[(
            "kubernetes.operator.job.drain-on-savepoint-deletion",
            "true"
        )]));
    }
}
