//! Securing the running job's state before its cluster goes (stop-with-savepoint, or cancel
//! and take the latest checkpoint; `reconcile::secure` holds the steps), and what a rollback
//! falls back to when Flink cannot be asked.

use super::*;

impl<'a> Decision<'a> {
    pub(super) fn progress(
        &self,
        mode: UpgradeMode,
        step: UpgradeStep,
        restore: Option<String>,
    ) -> UpgradeProgress {
        secure::progress(
            mode,
            Some(step),
            self.generation(),
            restore,
            self.ctx.now_ms,
        )
    }

    /// Secures the running job's state before anything is deleted: stop-with-savepoint
    /// (`savepoint`), or cancel and take the latest retained checkpoint (`last-state` without
    /// HA; with HA, Flink's HA metadata is the state). `Some` once the restore path is recorded;
    /// `None` while it is under way or held (the status says why).
    pub(super) fn secure_state(&mut self, mode: UpgradeMode) -> Option<()> {
        self.draft.progressing = true;
        // `job.upgrade.last-state.job-cancel.enabled`: the job is cancelled and resumed from
        // its latest checkpoint, as without HA (Flink then deletes the HA metadata itself) -
        // when it can be: its JobManager answers and the job has not ended (or it is the one
        // cancelled here). Otherwise the HA metadata it left is the state, as upstream's
        // `allowLastStateCancel`.
        let cancel = flink_api::config::options::LAST_STATE_JOB_CANCEL
            .flag_in_flat(&self.config, false)
            && self.observed_job().is_some_and(|j| {
                !j.state.is_globally_terminal() || j.state == FlinkJobState::Canceled
            });
        let ha = self.state_in_ha_metadata() && !cancel;
        let (generation, now) = (self.generation(), self.ctx.now_ms);
        let mut progress = self
            .draft
            .status
            .upgrade
            .take()
            .unwrap_or_else(|| secure::progress(mode, None, generation, None, now));
        progress.target_generation = self.generation();
        if progress.restore_path.is_some() || progress.step == UpgradeStep::StoppingCluster {
            self.draft.status.upgrade = Some(progress);
            return Some(());
        }
        if mode == UpgradeMode::LastState && ha {
            progress.step = UpgradeStep::StoppingCluster;
            self.draft.status.upgrade = Some(progress);
            // The state is in the HA metadata now, not at a path: a resume after a suspension
            // must not restore an older upgrade savepoint under a new job id.
            if let Some(job) = self.draft.status.job_status.as_mut() {
                job.upgrade_savepoint_path = None;
            }
            // A completed checkpoint seen now is one the HA metadata holds: the next deploy
            // guards against that metadata going missing (see `deploy`).
            if self.observed.latest_checkpoint.is_some()
                && let Some(health) = self.draft.status.health.as_mut()
            {
                health.checkpointed = true;
            }
            return Some(());
        }
        // A rollback does not wait for a JobManager that cannot start or a job that never ran.
        let rolling_back = self.reconciliation_state() == ReconciliationState::RollingBack;
        let jobs = match &self.observed.flink {
            ObservedFlink::Reachable { jobs, .. } => jobs.clone(),
            _ if rolling_back => return self.secure_from_record(progress),
            other => {
                self.draft.status.upgrade = Some(progress);
                let why = match other {
                    ObservedFlink::Unreachable(why) => format!(" ({why})"),
                    _ => String::new(),
                };
                self.draft.wait(&format!(
                    "the JobManager does not answer{why}; the upgrade waits to secure the job's state"
                ));
                return None;
            }
        };
        let Some(job) = self.current_job(&jobs).cloned() else {
            if rolling_back {
                return self.secure_from_record(progress);
            }
            self.draft.status.upgrade = Some(progress);
            self.fail("UpgradeBlocked", "no job found in the cluster to take its state from; the upgrade waits. Restore it by hand with initialSavepointPath, or switch to upgradeMode: stateless to drop the state".into());
            return None;
        };
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        let name = self.name().to_string();
        let config = &self.config;
        let out = secure::secure_job(
            &mut progress,
            &secure::SecureInput {
                uid,
                cluster: &name,
                job: &job,
                savepoint: self.observed.savepoint.as_ref(),
                latest_checkpoint: self.observed.latest_checkpoint.as_ref(),
                rules: secure::SecureRules::of(config),
                started_from: self.started_from(),
                now_ms: self.ctx.now_ms,
            },
        );
        self.draft.secured(
            progress,
            out,
            &job::SecuredJob {
                config,
                owner: (JobKind::FlinkDeployment, &name),
                snapshots: self.observed.snapshots.as_deref(),
                thresholds: self.ctx.snapshot_thresholds,
            },
        )
    }

    /// The state the current deployment was restored from, while nothing says the job moved on
    /// from it (no completed checkpoint was ever seen).
    pub(super) fn state_as_deployed(&self) -> Option<String> {
        let health = self.draft.status.health.as_ref()?;
        (health.deployed_at.is_some() && !health.checkpointed)
            .then(|| health.restored_from.clone())
            .flatten()
    }

    /// The state the current job started from, when Flink confirms it is still its state: it
    /// reports no completed checkpoint.
    pub(super) fn started_from(&self) -> Option<String> {
        let none_completed = self
            .observed
            .counters
            .as_ref()
            .is_some_and(|c| c.completed_checkpoints == Some(0));
        self.state_as_deployed().filter(|_| none_completed)
    }

    /// Secures a rollback's state without asking Flink (its JobManager cannot start, or the job
    /// never ran): a job that never completed a checkpoint still has the state it started from.
    /// Anything else needs a person: the newest checkpoint is only known to that JobManager.
    pub(super) fn secure_from_record(&mut self, mut progress: UpgradeProgress) -> Option<()> {
        match self.state_as_deployed() {
            Some(path) => {
                self.draft.notes.push(Note::normal(
                    Reason::StateFallback,
                    format!("The failing deployment completed no checkpoint: its state is still {path}, which the rollback restores"),
                ));
                progress.restore_path = Some(path.clone());
                progress.step = UpgradeStep::StoppingCluster;
                secure::record_secured(self.job_status(), None, Some(&path), true);
                self.draft.status.upgrade = Some(progress);
                self.draft.intent = Some(self.draft.status.clone());
                Some(())
            }
            None => {
                self.draft.status.upgrade = Some(progress);
                self.fail("RollbackBlocked", "the failing deployment's JobManager cannot be asked for the job's latest checkpoint: manual restore required. Set spec.job.initialSavepointPath to the newest retained checkpoint of the job and change spec.job.savepointRedeployNonce, or switch to upgradeMode: stateless to start from empty state".into());
                None
            }
        }
    }
}
