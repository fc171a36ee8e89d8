//! A deployed cluster with nothing to change: its stability and the rollback when it does not
//! become stable, health restarts, the autoscaler's redeploy, recovering a missing JobManager,
//! and the job's manual and periodic snapshots.

use super::*;

impl<'a> Decision<'a> {
    /// Nothing to change: keep the deployed cluster as it should be, judge its stability (and
    /// roll it back when it does not become stable in time) and its health.
    pub(super) fn steady(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>) {
        if last
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended)
        {
            if !self.observed.is_gone() {
                self.tear_down(false);
            }
            return;
        }
        let settings = health::Settings::of(&self.config);
        if self.observed.job_manager.is_none() {
            return self.recover_missing(last, &settings);
        }
        let application = self.resource.spec.is_application();
        let job = self.observed_job().cloned();
        if let Some(counters) = &self.observed.counters
            && counters.completed_checkpoints.is_some_and(|n| n > 0)
            && let Some(health) = self.draft.status.health.as_mut()
            && !health.checkpointed
        {
            health.checkpointed = true;
        }
        let healthy = match application {
            true => job
                .as_ref()
                .is_some_and(|j| j.state == FlinkJobState::Running),
            false => {
                self.draft.status.job_manager_deployment_status
                    == Some(JobManagerDeploymentStatus::Ready)
            }
        };
        if application && let Some(job) = &job {
            let verdict = health::judge(
                &settings,
                &mut self.draft.status.health,
                job,
                self.observed.counters.as_ref(),
                self.ctx.now_ms,
            );
            if let Some(why) = verdict.restart {
                return job::flow::restart(self, last, why);
            }
            if let Some(change) = self.autoscaler().and_then(|a| a.redeploy.as_deref())
                && job.state == FlinkJobState::Running
            {
                let mode = last
                    .spec
                    .job
                    .as_ref()
                    .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
                self.draft.notes.push(Note::normal(
                    Reason::Scaling,
                    format!(
                        "Redeploying the job in {} mode for the autoscaler's parallelism: {change}",
                        mode.name()
                    ),
                ));
                return job::flow::redeploy(self, last);
            }
            if let Some(why) = verdict.skipped
                && self.draft.status.error.is_none()
            {
                self.draft
                    .notes
                    .push(Note::warning(Reason::HealthCheckSkipped, why));
            }
        }
        if let Some(job) = job.as_ref().filter(|j| j.state.is_globally_terminal())
            && self.shut_down_after_ttl(job)
        {
            return;
        }
        if healthy && !self.draft.failed {
            self.draft.status.error = None;
        }
        if healthy && application {
            self.snapshots();
        }
        if self.recorded_stable() {
            if !healthy {
                self.draft.progressing = true;
            }
            return;
        }
        let unmet = match application {
            true => health::unmet_stability(
                &settings,
                job.as_ref(),
                self.observed.counters.as_ref(),
                self.ctx.now_ms,
            ),
            false if healthy => Vec::new(),
            false => vec!["the session cluster is not ready".into()],
        };
        if unmet.is_empty() {
            self.draft.mark_stable();
            return;
        }
        self.draft.progressing = true;
        if healthy {
            self.draft.waiting = Some(format!("Not stable yet: {}", unmet.join("; ")));
        }
        job::flow::maybe_roll_back(self, last, &settings, &unmet);
    }

    /// An application whose job ended keeps its JobManager (so its result stays readable) for
    /// `kubernetes.operator.jm-deployment.shutdown-ttl` (1 d) after Flink last changed the job,
    /// then the cluster is shut down, as upstream. True: it is shut down now.
    fn shut_down_after_ttl(&mut self, job: &ObservedJob) -> bool {
        let ttl = flink_api::config::options::JM_SHUTDOWN_TTL
            .in_flat(&self.config)
            .and_then(|v| flink_api::quantity::parse_flink_duration(v).ok())
            .unwrap_or(std::time::Duration::from_secs(86_400));
        let due = job.last_modification.saturating_add(ttl.as_millis() as i64);
        if self.ctx.now_ms < due {
            return false;
        }
        self.draft.notes.push(Note::normal(
            Reason::Cleanup,
            format!(
                "The job is {} and its JobManager has run {} since; shutting the cluster down (kubernetes.operator.jm-deployment.shutdown-ttl)",
                crate::reconcile::status::state_name(job.state),
                crate::reconcile::humantime(ttl)
            ),
        ));
        // Written ahead: after a crash the stored status says the job ended, so the missing
        // JobManager is not brought back (which would run the job again).
        self.draft.intent = Some(self.draft.status.clone());
        self.draft.actions.push(Effect::DeleteCluster);
        true
    }

    pub(super) fn recorded_stable(&self) -> bool {
        self.draft.recorded_stable()
    }

    /// The JobManager Deployment is gone while the job should run: stateless and HA jobs are
    /// deployed again (HA metadata holds a stateful job's checkpoints); without HA the newest
    /// checkpoint is unknown, so a person decides.
    pub(super) fn recover_missing(
        &mut self,
        last: &ReconciledSpec<FlinkDeploymentSpec>,
        settings: &health::Settings,
    ) {
        // An application whose job ended is not brought back (its JobManager was shut down
        // after the job's end, or went with it).
        if last.spec.is_application()
            && self
                .draft
                .status
                .job_status
                .as_ref()
                .and_then(|j| j.state)
                .is_some_and(|s| s.is_globally_terminal())
        {
            return;
        }
        let mode = last
            .spec
            .job
            .as_ref()
            .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
        let ha = self.ha_of(&last.spec);
        let key = flink_api::config::options::JM_DEPLOYMENT_RECOVERY.key;
        if !settings.jm_recovery {
            self.fail(
                DEPLOYMENT_MISSING,
                format!("the JobManager Deployment is missing and {key} is false; redeploy it with a new restartNonce"),
            );
        } else if !mode.is_stateful() || !last.spec.is_application() {
            self.draft.notes.push(Note::warning(
                Reason::RecoverDeployment,
                "The JobManager Deployment is missing; deploying it again (stateless)",
            ));
            self.deploy(last);
        } else if ha {
            self.draft.notes.push(Note::warning(
                Reason::RecoverDeployment,
                "The JobManager Deployment is missing; deploying it again with the same job id, which resumes from its high availability metadata",
            ));
            self.draft.status.upgrade = Some(secure::progress(
                UpgradeMode::LastState,
                Some(UpgradeStep::Deploying),
                last.generation,
                None,
                self.ctx.now_ms,
            ));
            self.deploy(last);
        } else {
            let known = self
                .draft
                .secured_path()
                .map_or_else(String::new, |p| format!(" (it was deployed from {p})"));
            self.fail(
                DEPLOYMENT_MISSING,
                format!("the JobManager Deployment is missing and the job has no high availability metadata, so its newest checkpoint is unknown: manual restore required{known}. Set spec.job.initialSavepointPath to the newest retained checkpoint of the job and change spec.job.savepointRedeployNonce"),
            );
        }
    }

    /// Manual and periodic savepoints of the running job, and the history they leave.
    pub(super) fn snapshots(&mut self) {
        let Some(job) = self.observed_job().cloned() else {
            return;
        };
        let config = render::flink_config(&RenderInput::for_resource(
            self.resource,
            &self.resource.spec,
            self.ctx.defaults,
        ))
        .unwrap_or_default();
        let name = self.name().to_string();
        self.draft.snapshots(&job_snapshots::RunningJob {
            uid: self.resource.metadata.uid.as_deref().unwrap_or_default(),
            cluster: &name,
            job: &job,
            spec: self.resource.spec.job.as_ref(),
            config: &config,
            owner: (JobKind::FlinkDeployment, &name),
            savepoint: self.observed.snapshot.as_ref(),
            checkpoint: self.observed.checkpoint.as_ref(),
            resources: self.observed.snapshots.as_deref(),
            thresholds: self.ctx.snapshot_thresholds,
            now_ms: self.ctx.now_ms,
        });
    }
}
