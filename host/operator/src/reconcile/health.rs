//! Is the running deployment stable (may rollback stop watching it), and is it healthy (or must
//! the operator restart it)? Pure functions of the settings, what Flink counts and the time.
//!
//! Upstream calls a deployment stable the moment its job runs. Here that stays the default, and
//! three rules can ask for more: running for a while, checkpoints completing, few restarts.

use super::observed::{JobCounters, ObservedJob};
use super::reconciled_spec::ReconciledSpec;
use super::status::state_name;
use flink_api::config::options;
use flink_api::quantity::parse_flink_duration;
use flink_api::{DeploymentHealth, FlinkJobState, ReconciliationState, ReconciliationStatus};
use std::collections::BTreeMap;
use std::time::Duration;

/// Whether a deploy that is not stable goes back to its last stable spec now.
#[derive(Debug, PartialEq)]
pub enum Rollback<S> {
    /// Rollback is off, already done, or there is nothing else to go back to.
    No,
    /// Not before this time (ms since the epoch): the readiness timeout runs.
    At(i64),
    /// Now, to this spec.
    Due(ReconciledSpec<S>),
}

/// The rollback rule of FlinkDeployments and FlinkSessionJobs, for a deploy of `last` that the
/// caller found not stable: once (not when `ROLLED_BACK`), to a stable spec that differs, after
/// `readiness.timeout` counted from `health.deployedAt` (else the reconciliation time).
pub fn rollback<S>(
    settings: &Settings,
    reconciliation: Option<&ReconciliationStatus>,
    health: Option<&DeploymentHealth>,
    last: &ReconciledSpec<S>,
    now_ms: i64,
) -> Rollback<S>
where
    S: PartialEq + serde::Serialize + serde::de::DeserializeOwned,
{
    let Some(reconciliation) = reconciliation else {
        return Rollback::No;
    };
    if !settings.rollback || reconciliation.state == ReconciliationState::RolledBack {
        return Rollback::No;
    }
    let Some(stable) = reconciliation
        .last_stable_spec
        .as_deref()
        .and_then(|t| ReconciledSpec::<S>::from_json(t).ok())
        .filter(|stable| stable.spec != last.spec)
    else {
        return Rollback::No;
    };
    let deployed_at = health
        .and_then(|h| h.deployed_at)
        .unwrap_or(reconciliation.reconciliation_timestamp);
    let deadline = deployed_at + settings.readiness_timeout.as_millis() as i64;
    if now_ms < deadline {
        Rollback::At(deadline)
    } else {
        Rollback::Due(stable)
    }
}

/// The rollback, stability and health settings (upstream's keys and defaults, and ours for the
/// stability rules). Values that do not parse are refused by validation before they get here;
/// if one does, its default applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `kubernetes.operator.deployment.rollback.enabled` (false).
    pub rollback: bool,
    /// `kubernetes.operator.deployment.readiness.timeout` (5 min): how long a new deployment
    /// has to become stable before it is rolled back.
    pub readiness_timeout: Duration,
    /// `kubernetes.operator.deployment.stability.min-running-time` (0): RUNNING at least this
    /// long without a state change.
    pub min_running: Duration,
    /// `kubernetes.operator.deployment.stability.min-completed-checkpoints` (0).
    pub min_checkpoints: i64,
    /// `kubernetes.operator.deployment.stability.max-restarts` (no limit): restarts of the job
    /// since it was deployed.
    pub max_restarts: Option<i64>,
    /// `kubernetes.operator.cluster.health-check.enabled` (false).
    pub health_check: bool,
    /// `kubernetes.operator.cluster.health-check.restarts.window` (2 min).
    pub restarts_window: Duration,
    /// `kubernetes.operator.cluster.health-check.restarts.threshold` (64).
    pub restarts_threshold: i64,
    /// `kubernetes.operator.cluster.health-check.checkpoint-progress.enabled` (true).
    pub checkpoint_progress: bool,
    /// `kubernetes.operator.cluster.health-check.checkpoint-progress.window` (derived).
    pub checkpoint_window: Option<Duration>,
    /// `execution.checkpointing.interval` (none: checkpointing is off).
    pub checkpoint_interval: Option<Duration>,
    /// `execution.checkpointing.timeout` (10 min).
    pub checkpoint_timeout: Duration,
    /// `execution.checkpointing.tolerable-failed-checkpoints` (0).
    pub tolerable_failed_checkpoints: i64,
    /// `kubernetes.operator.job.restart.failed` (false): redeploy a FAILED job.
    pub restart_failed: bool,
    /// `kubernetes.operator.jm-deployment-recovery.enabled` (true).
    pub jm_recovery: bool,
}

impl Settings {
    /// From a flat configuration (operator defaults overridden by the spec).
    pub fn of(config: &BTreeMap<String, String>) -> Self {
        let text = |option: &flink_api::config::ConfigOption| {
            option
                .all_keys()
                .into_iter()
                .find_map(|k| config.get(k))
                .map(|v| v.trim().to_string())
        };
        let flag = |option, default: bool| match text(option).as_deref() {
            Some("true") => true,
            Some("false") => false,
            _ => default,
        };
        let duration = |option| text(option).and_then(|v| parse_flink_duration(&v).ok());
        let number = |option| text(option).and_then(|v| v.parse::<u32>().ok().map(i64::from));
        Self {
            rollback: flag(&options::ROLLBACK_ENABLED, false),
            readiness_timeout: duration(&options::READINESS_TIMEOUT)
                .unwrap_or(Duration::from_secs(300)),
            min_running: duration(&options::STABILITY_MIN_RUNNING_TIME).unwrap_or_default(),
            min_checkpoints: number(&options::STABILITY_MIN_CHECKPOINTS).unwrap_or(0),
            max_restarts: number(&options::STABILITY_MAX_RESTARTS),
            health_check: flag(&options::HEALTH_CHECK_ENABLED, false),
            restarts_window: duration(&options::HEALTH_RESTARTS_WINDOW)
                .unwrap_or(Duration::from_secs(120)),
            restarts_threshold: number(&options::HEALTH_RESTARTS_THRESHOLD).unwrap_or(64),
            checkpoint_progress: flag(&options::HEALTH_CHECKPOINT_PROGRESS_ENABLED, true),
            checkpoint_window: duration(&options::HEALTH_CHECKPOINT_PROGRESS_WINDOW),
            checkpoint_interval: duration(&options::CHECKPOINT_INTERVAL).filter(|d| !d.is_zero()),
            checkpoint_timeout: duration(&options::CHECKPOINT_TIMEOUT)
                .unwrap_or(Duration::from_secs(600)),
            tolerable_failed_checkpoints: number(&options::TOLERABLE_FAILED_CHECKPOINTS)
                .unwrap_or(0),
            restart_failed: flag(&options::JOB_RESTART_FAILED, false),
            jm_recovery: flag(&options::JM_DEPLOYMENT_RECOVERY, true),
        }
    }

    /// Whether observation must read the job's restart and checkpoint counters.
    pub fn needs_counters(&self) -> bool {
        self.rollback
            || self.health_check
            || self.restart_failed
            || self.min_checkpoints > 0
            || self.max_restarts.is_some()
    }

    /// The time without a completed checkpoint after which a running job is unhealthy: the
    /// configured window, else max(interval, timeout) × (tolerable failures + 2), so a slow
    /// checkpoint and every tolerated failure fit. `Err` when checking would restart healthy
    /// jobs: a configured window shorter than (tolerable failures + 1) checkpoint attempts.
    /// `Ok(None)` when there is nothing to check (checkpointing or the check is off).
    pub fn checkpoint_window(&self) -> Result<Option<Duration>, String> {
        let Some(interval) = self.checkpoint_interval else {
            return Ok(None);
        };
        if !self.checkpoint_progress {
            return Ok(None);
        }
        let attempt = interval.max(self.checkpoint_timeout);
        let tolerated = u32::try_from(self.tolerable_failed_checkpoints).unwrap_or(u32::MAX);
        let minimum = attempt.saturating_mul(tolerated.saturating_add(1));
        match self.checkpoint_window {
            Some(window) if window < minimum => Err(format!(
                "{} is {}, shorter than the {} that {} checkpoint attempt(s) may take; the checkpoint progress check is skipped",
                options::HEALTH_CHECKPOINT_PROGRESS_WINDOW.key,
                seconds(window),
                seconds(minimum),
                tolerated.saturating_add(1)
            )),
            Some(window) => Ok(Some(window)),
            None => Ok(Some(attempt.saturating_mul(tolerated.saturating_add(2)))),
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs())
}

/// The stability rules the job does not meet yet (empty: stable). A counter Flink did not
/// answer is an unmet rule, never assumed good.
pub fn unmet_stability(
    settings: &Settings,
    job: Option<&ObservedJob>,
    counters: Option<&JobCounters>,
    now_ms: i64,
) -> Vec<String> {
    let Some(job) = job else {
        return vec!["the job has not been seen in the cluster".into()];
    };
    if job.state != FlinkJobState::Running {
        return vec![format!("the job is {}", state_name(job.state))];
    }
    let mut unmet = Vec::new();
    let running_ms = now_ms.saturating_sub(job.last_modification).max(0);
    let required_ms = settings.min_running.as_millis() as i64;
    if running_ms < required_ms {
        unmet.push(format!(
            "running for {} s of the {} s required ({})",
            running_ms / 1000,
            required_ms / 1000,
            options::STABILITY_MIN_RUNNING_TIME.key
        ));
    }
    if settings.min_checkpoints > 0 {
        match counters.and_then(|c| c.completed_checkpoints) {
            Some(n) if n >= settings.min_checkpoints => {}
            Some(n) => unmet.push(format!(
                "{n} of {} completed checkpoints ({})",
                settings.min_checkpoints,
                options::STABILITY_MIN_CHECKPOINTS.key
            )),
            None => unmet.push("Flink did not report the completed checkpoints yet".into()),
        }
    }
    if let Some(max) = settings.max_restarts {
        match counters.and_then(|c| c.restarts) {
            Some(n) if n <= max => {}
            Some(n) => unmet.push(format!(
                "restarted {n} times, more than the {max} allowed ({})",
                options::STABILITY_MAX_RESTARTS.key
            )),
            None => unmet.push("Flink did not report the job's restarts yet".into()),
        }
    }
    unmet
}

/// What the health check concluded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// Why the job must be restarted, when it must.
    pub restart: Option<String>,
    /// A setting that makes a check unsafe, so it was skipped (for a warning).
    pub skipped: Option<String>,
}

/// The health rules applied to the job the operator deployed (FlinkDeployments and
/// FlinkSessionJobs alike): a FAILED job is restarted when `job.restart.failed`; otherwise
/// [`check`] judges it, its restart window kept in `health` (written only when the check is
/// on, so a quiet job's status does not change). The reason a restart is due is worded for
/// the `RestartUnhealthyJob` event.
pub fn judge(
    settings: &Settings,
    health: &mut Option<DeploymentHealth>,
    job: &ObservedJob,
    counters: Option<&JobCounters>,
    now_ms: i64,
) -> Verdict {
    if job.state == FlinkJobState::Failed && settings.restart_failed {
        return Verdict {
            restart: Some(format!(
                "The job FAILED and {} is true: restarting it",
                options::JOB_RESTART_FAILED.key
            )),
            skipped: None,
        };
    }
    let mut record = health.clone().unwrap_or_default();
    let mut verdict = check(settings, &mut record, job, counters, now_ms);
    if settings.health_check && health.as_ref() != Some(&record) {
        *health = Some(record);
    }
    verdict.restart = verdict
        .restart
        .map(|why| format!("Restarting unhealthy job: {why}"));
    verdict
}

/// The health check of a job the operator deployed: too many restarts in the window, or no
/// checkpoint for too long. Updates the restart window kept in `health` (rolled over once a
/// window has passed, and when the counter went back, i.e. a new job).
pub fn check(
    settings: &Settings,
    health: &mut DeploymentHealth,
    job: &ObservedJob,
    counters: Option<&JobCounters>,
    now_ms: i64,
) -> Verdict {
    let mut verdict = Verdict::default();
    if !settings.health_check {
        return verdict;
    }
    if let Some(restarts) = counters.and_then(|c| c.restarts) {
        let window_ms = settings.restarts_window.as_millis() as i64;
        let expired = health
            .restarts_window_start
            .is_none_or(|start| now_ms - start > window_ms);
        let baseline = health.restarts_baseline.filter(|b| *b <= restarts);
        match baseline {
            Some(baseline) if !expired => {
                let restarted = restarts - baseline;
                if restarted > settings.restarts_threshold {
                    verdict.restart = Some(format!(
                        "the job restarted {restarted} times within {}, more than the threshold of {} ({})",
                        seconds(settings.restarts_window),
                        settings.restarts_threshold,
                        options::HEALTH_RESTARTS_THRESHOLD.key
                    ));
                }
            }
            _ => {
                health.restarts_baseline = Some(restarts);
                health.restarts_window_start = Some(now_ms);
            }
        }
    }
    if job.state == FlinkJobState::Running && verdict.restart.is_none() {
        match settings.checkpoint_window() {
            Err(why) => verdict.skipped = Some(why),
            Ok(None) => {}
            Ok(Some(window)) => {
                let last = counters.and_then(|c| c.last_checkpoint_at).unwrap_or(0);
                // A job that just started or restarted gets a whole window.
                let since = last.max(job.last_modification);
                if now_ms - since > window.as_millis() as i64 {
                    verdict.restart = Some(format!(
                        "no checkpoint completed for {} s, longer than the {} window ({})",
                        (now_ms - since) / 1000,
                        seconds(window),
                        options::HEALTH_CHECKPOINT_PROGRESS_WINDOW.key
                    ));
                }
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::of(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn job(state: FlinkJobState, since: i64) -> ObservedJob {
        ObservedJob {
            id: "j".into(),
            name: "n".into(),
            state,
            start_time: 0,
            last_modification: since,
        }
    }

    fn counters(restarts: i64, checkpoints: i64, last_at: i64) -> JobCounters {
        JobCounters {
            restarts: Some(restarts),
            completed_checkpoints: Some(checkpoints),
            last_checkpoint_at: Some(last_at),
        }
    }

    #[test]
    fn defaults_are_upstreams() {
        let s = settings(&[]);
        assert!(!s.rollback && !s.health_check && !s.restart_failed && s.jm_recovery);
        assert_eq!(s.readiness_timeout, Duration::from_secs(300));
        assert_eq!(s.restarts_window, Duration::from_secs(120));
        assert_eq!(s.restarts_threshold, 64);
        assert!(!s.needs_counters());
        assert_eq!(
            s.checkpoint_window(),
            Ok(None),
            "no checkpointing, no check"
        );
    }

    #[test]
    fn by_default_a_running_job_is_stable_at_once() {
        let s = settings(&[]);
        assert!(
            unmet_stability(&s, Some(&job(FlinkJobState::Running, 999)), None, 1_000).is_empty()
        );
        assert_eq!(
            unmet_stability(&s, Some(&job(FlinkJobState::Restarting, 0)), None, 1_000),
            vec!["the job is RESTARTING".to_string()]
        );
        assert_eq!(unmet_stability(&s, None, None, 1_000).len(), 1);
    }

    #[test]
    fn richer_stability_needs_time_checkpoints_and_few_restarts() {
        let s = settings(&[
            (options::STABILITY_MIN_RUNNING_TIME.key, "60s"),
            (options::STABILITY_MIN_CHECKPOINTS.key, "3"),
            (options::STABILITY_MAX_RESTARTS.key, "1"),
        ]);
        assert!(s.needs_counters());
        let running = job(FlinkJobState::Running, 0);
        let unmet = unmet_stability(&s, Some(&running), Some(&counters(2, 1, 0)), 30_000);
        assert_eq!(unmet.len(), 3, "{unmet:?}");
        assert!(
            unmet[0].contains("running for 30 s of the 60 s"),
            "{unmet:?}"
        );
        assert!(
            unmet[1].contains("1 of 3 completed checkpoints"),
            "{unmet:?}"
        );
        assert!(unmet[2].contains("restarted 2 times"), "{unmet:?}");
        let unknown = unmet_stability(&s, Some(&running), None, 90_000);
        assert_eq!(
            unknown.len(),
            2,
            "unknown counters are not assumed good: {unknown:?}"
        );
        assert!(unmet_stability(&s, Some(&running), Some(&counters(1, 3, 0)), 60_000).is_empty());
    }

    #[test]
    fn restarts_above_the_threshold_within_the_window_are_unhealthy() {
        let s = settings(&[
            (options::HEALTH_CHECK_ENABLED.key, "true"),
            (options::HEALTH_RESTARTS_THRESHOLD.key, "3"),
            (options::HEALTH_RESTARTS_WINDOW.key, "60s"),
        ]);
        let mut health = DeploymentHealth::default();
        let running = job(FlinkJobState::Running, 0);
        let at = |h: &mut DeploymentHealth, restarts, now| {
            check(&s, h, &running, Some(&counters(restarts, 0, 0)), now).restart
        };
        assert_eq!(
            at(&mut health, 10, 0),
            None,
            "the first look sets the baseline"
        );
        assert_eq!(health.restarts_baseline, Some(10));
        assert_eq!(at(&mut health, 13, 30_000), None, "3 is not more than 3");
        let why = at(&mut health, 14, 50_000).expect("4 restarts in 50 s");
        assert!(why.contains("restarted 4 times within 60 s"), "{why}");
        // A new window starts from what was counted when the old one ended.
        let mut health = DeploymentHealth::default();
        at(&mut health, 0, 0);
        assert_eq!(at(&mut health, 3, 61_000), None);
        assert_eq!(health.restarts_baseline, Some(3));
        assert_eq!(
            at(&mut health, 6, 100_000),
            None,
            "3 more in the new window"
        );
        // A new job counts from 0 again: the baseline follows it down.
        assert_eq!(at(&mut health, 1, 101_000), None);
        assert_eq!(health.restarts_baseline, Some(1));
    }

    #[test]
    fn checkpoints_that_stop_progressing_are_unhealthy() {
        let s = settings(&[
            (options::HEALTH_CHECK_ENABLED.key, "true"),
            (options::CHECKPOINT_INTERVAL.key, "10s"),
            (options::CHECKPOINT_TIMEOUT.key, "20s"),
            (options::TOLERABLE_FAILED_CHECKPOINTS.key, "1"),
        ]);
        assert_eq!(s.checkpoint_window(), Ok(Some(Duration::from_secs(60))));
        let mut health = DeploymentHealth::default();
        let running = job(FlinkJobState::Running, 0);
        let progress = counters(0, 5, 100_000);
        assert_eq!(
            check(&s, &mut health, &running, Some(&progress), 150_000).restart,
            None
        );
        let why = check(&s, &mut health, &running, Some(&progress), 170_000)
            .restart
            .expect("70 s without a checkpoint");
        assert!(why.contains("no checkpoint completed for 70 s"), "{why}");
        // A job that restarted a moment ago is given a whole window.
        let restarted = job(FlinkJobState::Running, 160_000);
        assert_eq!(
            check(&s, &mut health, &restarted, Some(&progress), 170_000).restart,
            None
        );
        // A window too short for the checkpoint settings would restart healthy jobs: skipped.
        let short = settings(&[
            (options::HEALTH_CHECK_ENABLED.key, "true"),
            (options::CHECKPOINT_INTERVAL.key, "10s"),
            (options::HEALTH_CHECKPOINT_PROGRESS_WINDOW.key, "5s"),
        ]);
        let verdict = check(&short, &mut health, &running, Some(&progress), 900_000);
        assert_eq!(verdict.restart, None);
        assert!(verdict.skipped.expect("warned").contains("shorter than"));
    }

    #[test]
    fn a_disabled_health_check_never_restarts() {
        let s = settings(&[(options::CHECKPOINT_INTERVAL.key, "1s")]);
        let mut health = DeploymentHealth::default();
        let verdict = check(
            &s,
            &mut health,
            &job(FlinkJobState::Running, 0),
            Some(&counters(1_000, 0, 0)),
            10_000_000,
        );
        assert_eq!(verdict, Verdict::default());
        assert_eq!(health, DeploymentHealth::default());
    }
}
