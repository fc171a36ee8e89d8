//! Deploying and replacing a FlinkDeployment's cluster: the first deployment, what changed
//! since the recorded spec (ignore, scale, upgrade, savepoint redeploy), the upgrade written
//! ahead, tearing the old cluster down and waiting for its pods, and the deploy.

use super::*;

impl<'a> Decision<'a> {
    pub(super) fn first_deployment(&mut self) {
        let target = ReconciledSpec {
            spec: self.resource.spec.clone(),
            generation: self.generation(),
            first_deployment: true,
            revision: 0,
        };
        self.draft
            .record_target(&target, ReconciliationState::Upgrading);
        self.draft.status.error = None;
        self.continue_upgrade(&target);
    }

    /// State `UPGRADING` toward `target`: tear down whatever else runs, then deploy it (from the
    /// secured state of a stateful upgrade).
    pub(super) fn continue_upgrade(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        self.draft.progressing = true;
        // A restart or a rollback records its target first and then secures the state.
        if let Some(progress) = &self.draft.status.upgrade
            && matches!(
                progress.step,
                UpgradeStep::Savepointing | UpgradeStep::Cancelling
            )
            && progress.restore_path.is_none()
            && self.secure_state(progress.mode).is_none()
        {
            return;
        }
        let observed = self.observed;
        let deployed_target = observed.job_manager.as_ref().is_some_and(|jm| {
            !jm.deleting
                && jm.generation == Some(target.generation)
                && jm.revision == target.revision
        });
        if deployed_target {
            self.set_state(self.draft.done_state());
            self.draft.status.upgrade = None;
            return;
        }
        if !observed.is_gone() {
            if let Some(progress) = self.draft.status.upgrade.as_mut() {
                progress.step = UpgradeStep::StoppingCluster;
            }
            self.tear_down(false);
            return;
        }
        if target
            .spec
            .job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended)
        {
            self.set_state(self.draft.done_state());
            self.job_status().state = Some(FlinkJobState::Suspended);
            let kept = self
                .draft
                .status
                .upgrade
                .take()
                .and_then(|p| p.restore_path);
            let message = match &kept {
                Some(path) => {
                    format!("Job suspended: its cluster is stopped, its state kept at {path}")
                }
                None => "Job suspended: its cluster is stopped".to_string(),
            };
            self.draft
                .notes
                .push(Note::normal(Reason::Suspended, message));
            self.draft.progressing = false;
            return;
        }
        self.deploy(target);
    }

    /// Records the deploy as the intent, applies the cluster, then marks it deployed.
    pub(super) fn deploy(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        let id = job_id::job_id(uid, target.generation, target.revision);
        let restore = if target.first_deployment {
            target
                .spec
                .job
                .as_ref()
                .and_then(|j| j.initial_savepoint_path.clone())
        } else {
            self.draft
                .status
                .upgrade
                .as_ref()
                .and_then(|p| p.restore_path.clone())
        };
        // Flink's HA services find a job's checkpoints by its id: last-state with HA keeps it.
        let id = match (
            &self.draft.status.upgrade,
            self.draft
                .status
                .job_status
                .as_ref()
                .and_then(|j| j.job_id.clone()),
        ) {
            (Some(p), Some(recorded))
                if p.mode == UpgradeMode::LastState && p.restore_path.is_none() =>
            {
                recorded
            }
            _ => id,
        };
        let mut input = RenderInput::for_resource(self.resource, &target.spec, self.ctx.defaults);
        input.autoscaler_overrides = self.autoscaler().map(|a| &a.overrides);
        input.autoscaler_memory = self.autoscaler().and_then(|a| a.memory.as_ref());
        input.generation = target.generation;
        input.revision = target.revision;
        input.restore_from = restore.as_deref();
        let application = target.spec.is_application();
        if application {
            input.job_id = Some(&id);
        }
        let objects = match render::render(&input) {
            Ok(objects) => objects,
            Err(e) => {
                self.fail("ValidationError", format!("{e}"));
                return;
            }
        };
        if application {
            let job = self.job_status();
            job.job_id = Some(id.clone());
            job.state = Some(FlinkJobState::Reconciling);
            job.start_time = None;
        }
        self.draft.status.job_manager_deployment_status =
            Some(JobManagerDeploymentStatus::Deploying);
        self.draft.status.error = None;
        if let Some(progress) = self.draft.status.upgrade.as_mut() {
            progress.step = UpgradeStep::Deploying;
        }
        // With HA, a kept job id resumes from Flink's own metadata, not from a path.
        let kept_job = application
            && self
                .draft
                .status
                .upgrade
                .as_ref()
                .is_some_and(|p| p.mode == UpgradeMode::LastState && p.restore_path.is_none());
        let carried = self.draft.status.health.take().unwrap_or_default();
        self.draft.status.health = Some(flink_api::DeploymentHealth {
            deployed_at: Some(self.ctx.now_ms),
            restored_from: if kept_job {
                carried.restored_from
            } else {
                restore.clone()
            },
            checkpointed: kept_job && carried.checkpointed,
            ..Default::default()
        });
        self.draft.intent = Some(self.draft.status.clone());
        self.draft
            .actions
            .push(Effect::ApplyCluster(Box::new(objects)));
        self.set_state(self.draft.done_state());
        // The restore path stays in `jobStatus.upgradeSavepointPath` and the savepoint history.
        self.draft.status.upgrade = None;
        if let Some(path) = &restore
            && !target.first_deployment
        {
            self.draft.notes.push(Note::normal(
                Reason::Restore,
                format!("The new deployment restores from {path}"),
            ));
        }
        let what = if application {
            format!("job {id}")
        } else {
            "session cluster".to_string()
        };
        self.draft.notes.push(Note::normal(
            Reason::Submit,
            format!(
                "Starting deployment of {what} (generation {})",
                target.generation
            ),
        ));
    }

    /// Stops the running cluster: cancels an application's job (best effort) and deletes the
    /// Deployments; the next reconciles wait until its pods are gone.
    pub(super) fn tear_down(&mut self, deleting: bool) {
        self.draft.progressing = true;
        let observed = self.observed;
        let present = |d: &Option<crate::reconcile::observed::ObservedDeployment>| {
            d.as_ref().is_some_and(|d| !d.deleting)
        };
        if !present(&observed.job_manager) && !present(&observed.task_manager) {
            return;
        }
        if let ObservedFlink::Reachable { jobs, .. } = &observed.flink
            && let Some(job) = self.current_job(jobs)
            && !job.state.is_globally_terminal()
        {
            self.draft.actions.push(Effect::CancelJob {
                cluster: self.name().to_string(),
                job_id: job.id.clone(),
                best_effort: true,
            });
        }
        // Whatever the status says by now (a secured restore path) is written before the delete.
        if !deleting {
            self.draft.intent = Some(self.draft.status.clone());
        }
        self.draft.actions.push(Effect::DeleteCluster);
    }

    /// State `DEPLOYED`: what changed since, and what the running cluster needs.
    pub(super) fn compare(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>) {
        let spec = &self.resource.spec;
        let diff = deployment_diff(&last.spec, spec);
        if let Some(progress) = &self.draft.status.upgrade
            && diff.class != DiffClass::Upgrade
        {
            // The change that started securing the state was reverted. Nothing irreversible
            // happened unless a stop or cancel was sent; then the job is stopping and must be
            // redeployed (with the current spec) from the state being secured.
            if progress.trigger_id.is_none() && progress.step != UpgradeStep::Cancelling {
                self.draft.status.upgrade = None;
                self.draft.status.error = None;
                self.draft.notes.push(Note::normal(
                    Reason::SpecChanged,
                    "The change was reverted before the upgrade started; nothing to do",
                ));
            } else {
                return self.upgrade(last, "reverted after the job was stopped");
            }
        }
        match diff.class {
            _ if diff.is_empty() => {
                if self.reconciliation_state() == ReconciliationState::RolledBack {
                    // The user's spec is now what the rollback deployed.
                    let target = ReconciledSpec {
                        generation: self.generation(),
                        ..last.clone()
                    };
                    status::record_target(
                        &mut self.draft.status.reconciliation_status,
                        &target,
                        ReconciliationState::Deployed,
                        self.ctx.now_ms,
                    );
                }
                self.steady(last)
            }
            DiffClass::Ignore => {
                self.record(spec, ReconciliationState::Deployed);
                self.steady(last);
            }
            DiffClass::Scale => {
                self.draft.notes.push(Note::normal(
                    Reason::SpecChanged,
                    format!(
                        "SCALE change(s) detected ({}), scaling the TaskManagers",
                        diff.fields(DiffClass::Scale)
                    ),
                ));
                self.record(spec, ReconciliationState::Deployed);
                let mut input = RenderInput::for_resource(self.resource, spec, self.ctx.defaults);
                input.autoscaler_overrides = self.autoscaler().map(|a| &a.overrides);
                input.autoscaler_memory = self.autoscaler().and_then(|a| a.memory.as_ref());
                input.job_id = self
                    .draft
                    .status
                    .job_status
                    .as_ref()
                    .and_then(|j| j.job_id.as_deref());
                match render::render(&input) {
                    Ok(objects) => {
                        if let Some(tm) = objects.task_manager {
                            self.draft
                                .actions
                                .push(Effect::ApplyTaskManagers(Box::new(tm)));
                        }
                    }
                    Err(e) => self.fail("ValidationError", e.to_string()),
                }
                self.draft.progressing = true;
            }
            DiffClass::Upgrade => self.upgrade(last, &diff.fields(DiffClass::Upgrade)),
            DiffClass::SavepointRedeploy => self.redeploy_from_savepoint(),
        }
    }

    pub(super) fn upgrade(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>, fields: &str) {
        let spec = self.resource.spec.clone();
        let Some(job::Started {
            mode,
            was_suspended,
        }) = self.draft.start_upgrade(&job::UpgradeStart {
            fields,
            from: last.spec.job.as_ref(),
            to: spec.job.as_ref(),
            policy: self.ctx.upgrade_policy,
        })
        else {
            return;
        };
        let target = ReconciledSpec {
            spec: spec.clone(),
            generation: self.generation(),
            first_deployment: false,
            revision: 0,
        };
        let running_cluster = self.observed.job_manager.is_some();
        if mode.is_stateful() && spec.is_application() && was_suspended {
            // Resume from what the suspension secured.
            let path = self.draft.secured_path();
            self.draft.status.upgrade =
                Some(self.progress(mode, UpgradeStep::StoppingCluster, path));
        } else if mode.is_stateful() && spec.is_application() && running_cluster {
            match self.secure_state(mode) {
                Some(()) => {}
                None => return,
            }
        }
        self.record(&spec, ReconciliationState::Upgrading);
        self.draft.status.error = None;
        self.draft.intent = Some(self.draft.status.clone());
        self.continue_upgrade(&target);
    }

    /// A new `savepointRedeployNonce`: the current state is discarded and the job redeployed
    /// from `initialSavepointPath` (upstream's semantics), which validation requires.
    pub(super) fn redeploy_from_savepoint(&mut self) {
        let spec = self.resource.spec.clone();
        let Some(path) = spec
            .job
            .as_ref()
            .and_then(|j| j.initial_savepoint_path.clone())
        else {
            self.fail(
                "ValidationError",
                "spec.job.savepointRedeployNonce: changed without spec.job.initialSavepointPath; set the savepoint to redeploy from".into(),
            );
            return;
        };
        self.draft.notes.push(Note::normal(
            Reason::SpecChanged,
            format!("SAVEPOINT_REDEPLOY: redeploying from {path}, the current state is not kept"),
        ));
        let mode = spec
            .job
            .as_ref()
            .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
        self.draft.status.upgrade =
            Some(self.progress(mode, UpgradeStep::StoppingCluster, Some(path)));
        self.record(&spec, ReconciliationState::Upgrading);
        self.draft.status.error = None;
        self.draft.intent = Some(self.draft.status.clone());
        let target = ReconciledSpec {
            spec,
            generation: self.generation(),
            first_deployment: false,
            revision: 0,
        };
        self.continue_upgrade(&target);
    }
}
