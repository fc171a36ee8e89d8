//! Deploying and replacing a FlinkDeployment's cluster: what changed since the recorded spec
//! (ignore, scale, upgrade, savepoint redeploy), and the deployment's part of the shared flow
//! (`job::flow`): tearing the old cluster down and waiting for its pods, and the deploy.

use super::*;

/// The restore path of a job that resumes from its HA metadata after it checkpointed
/// (upstream's `LAST_STATE_DUMMY_SP_PATH`): no such savepoint exists.
const LAST_STATE_MARKER: &str = "KUBERNETES_OPERATOR_LAST_STATE";

impl<'a> job::Kind for Decision<'a> {
    type Spec = FlinkDeploymentSpec;
    type Status = FlinkDeploymentStatus;
    const STOPPED: &'static str = "its cluster is stopped";

    fn draft(&mut self) -> &mut Draft<FlinkDeploymentStatus> {
        &mut self.draft
    }

    fn draft_ref(&self) -> &Draft<FlinkDeploymentStatus> {
        &self.draft
    }

    fn spec(&self) -> &FlinkDeploymentSpec {
        &self.resource.spec
    }

    fn generation(&self) -> i64 {
        Decision::generation(self)
    }

    fn job(spec: &FlinkDeploymentSpec) -> Option<&flink_api::JobSpec> {
        spec.job.as_ref()
    }

    fn has_state(spec: &FlinkDeploymentSpec) -> bool {
        spec.is_application()
    }

    fn running(&self) -> bool {
        self.observed.job_manager.is_some()
    }

    fn upgrade_policy(&self) -> Option<&UpgradePolicy> {
        self.ctx.upgrade_policy
    }

    fn securing(&self, mode: UpgradeMode, generation: i64) -> UpgradeProgress {
        secure::progress(mode, None, generation, None, self.ctx.now_ms)
    }

    fn secure(&mut self, mode: UpgradeMode) -> Option<()> {
        self.secure_state(mode)
    }

    fn state_in_ha_metadata(&self) -> bool {
        Decision::state_in_ha_metadata(self)
    }

    /// A JobManager Deployment carrying the target's generation and revision.
    fn started(&self, target: &ReconciledSpec<FlinkDeploymentSpec>) -> bool {
        self.observed.job_manager.as_ref().is_some_and(|jm| {
            !jm.deleting
                && jm.generation == Some(target.generation)
                && jm.revision == target.revision
        })
    }

    fn stop(&mut self) -> bool {
        if self.observed.is_gone() {
            return false;
        }
        if let Some(progress) = self.draft.status.upgrade.as_mut() {
            progress.step = UpgradeStep::StoppingCluster;
        }
        self.tear_down(false);
        true
    }

    fn start(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        self.deploy(target);
    }

    fn not_ready(&self) -> Option<String> {
        self.observed.pod_problem(false)
    }
}

impl<'a> Decision<'a> {
    pub(super) fn first_deployment(&mut self) {
        job::flow::first(self);
    }

    /// State `UPGRADING` or `ROLLING_BACK` toward `target` (see `job::flow`).
    pub(super) fn continue_upgrade(&mut self, target: &ReconciledSpec<FlinkDeploymentSpec>) {
        job::flow::continue_upgrade(self, target);
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
        let application = target.spec.is_application();
        // With HA, a kept job id resumes from Flink's own metadata, not from a path: Flink's HA
        // services find a job's checkpoints by its id.
        let kept_job = application && self.resumes_from_ha_metadata();
        let recorded = self
            .draft
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.clone());
        let id = match (kept_job, recorded) {
            (true, Some(recorded)) => recorded,
            _ => id,
        };
        // Upstream's safety net for a job that checkpointed: a restore path that does not
        // exist, which Flink ignores while its HA metadata holds a checkpoint (that one is
        // restored first) and fails on when the metadata is gone, instead of starting the job
        // from empty state under its old id.
        let checkpointed = self
            .draft
            .status
            .health
            .as_ref()
            .is_some_and(|h| h.checkpointed);
        let restore_flag = match kept_job && checkpointed {
            true => Some(LAST_STATE_MARKER),
            false => restore.as_deref(),
        };
        let mut input = RenderInput::for_resource(self.resource, &target.spec, self.ctx.defaults);
        input.log_defaults = Some(self.ctx.log_defaults);
        input.autoscaler_overrides = self.autoscaler().map(|a| &a.overrides);
        input.autoscaler_memory = self.autoscaler().and_then(|a| a.memory.as_ref());
        input.generation = target.generation;
        input.revision = target.revision;
        input.restore_from = restore_flag;
        if application {
            input.job_id = Some(&id);
        }
        let mut objects = match render::render(&input) {
            Ok(objects) => objects,
            Err(e) => {
                self.fail("ValidationError", format!("{e}"));
                return;
            }
        };
        if !self.ingress_managed() {
            objects.ingress = None;
            objects.ingress_unmanaged = true;
        }
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
        // A cluster that does not resume the job from Flink's HA metadata starts without it:
        // otherwise its JobManager would recover the previous job next to the new one.
        // A session cluster keeps it (its session jobs resume from it), as upstream; it goes
        // only with the resource.
        if application && !kept_job && self.ha_enabled(Some(&target.spec)) {
            self.draft.actions.push(Effect::DeleteHaMetadata);
        }
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

    /// Whether the job being replaced resumes from Flink's HA metadata rather than from a
    /// path: a last-state replacement whose securing recorded none (HA keeps the state).
    pub(super) fn resumes_from_ha_metadata(&self) -> bool {
        self.draft
            .status
            .upgrade
            .as_ref()
            .is_some_and(|p| p.mode == UpgradeMode::LastState && p.restore_path.is_none())
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
        // A job that resumes from its HA metadata (last-state with HA) is not cancelled:
        // cancelling it would make Flink delete that metadata and record the job as done.
        let resumes_from_ha = !deleting && self.resumes_from_ha_metadata();
        if let Some(job) = self.observed_job()
            && !job.state.is_globally_terminal()
            && !resumes_from_ha
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
        let job_running = self
            .observed_job()
            .is_some_and(|j| j.state == FlinkJobState::Running);
        if matches!(
            diff.class,
            DiffClass::Upgrade | DiffClass::SavepointRedeploy
        ) && let Some(why) = self
            .draft
            .pending_savepoint_holds_upgrade(&self.config, job_running)
        {
            // What runs goes on as it is, its savepoint observed, until it completes.
            self.steady(last);
            self.draft.wait(&why);
            return;
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
                self.ingress_change(last);
                self.steady(last);
            }
            DiffClass::Scale => {
                if !self.overrides_in_place(last, &diff) {
                    return;
                }
                self.draft.notes.push(Note::normal(
                    Reason::SpecChanged,
                    format!(
                        "SCALE change(s) detected ({}), scaling the TaskManagers",
                        diff.fields(DiffClass::Scale)
                    ),
                ));
                self.record(spec, ReconciliationState::Deployed);
                self.ingress_change(last);
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

    /// A scale change that edits `pipeline.jobvertex-parallelism-overrides` of a job the
    /// autoscaler does not scale: its resource requirements are set in place (the spec is
    /// recorded once Flink reports them, so a crash in between asks again), or, where that
    /// cannot be, it is a full upgrade, as upstream falls back. False: this reconcile is done.
    fn overrides_in_place(
        &mut self,
        last: &ReconciledSpec<FlinkDeploymentSpec>,
        diff: &super::super::spec_diff::SpecDiff,
    ) -> bool {
        use super::super::in_place::{self, InPlace};
        let key = flink_api::config::options::PARALLELISM_OVERRIDES.key;
        let edited = diff
            .changes
            .iter()
            .any(|(path, _)| path.strip_prefix("spec.flinkConfiguration.") == Some(key));
        if !edited || self.autoscaler().is_some() {
            return true;
        }
        let fields = diff.fields(DiffClass::Scale);
        let Some(overrides) = in_place::wanted(&self.config) else {
            self.upgrade(last, &fields);
            return false;
        };
        let before = job::configuration(self.ctx.defaults, last.spec.configuration().flat());
        let before = crate::render::parallelism_overrides(before.get(key));
        let job_id = self
            .draft
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.job_id.clone());
        let decided = in_place::decide(
            &before,
            &overrides,
            self.resource.spec.flink_version,
            self.observed.requirements.as_ref(),
        );
        match (decided, job_id) {
            (InPlace::Applied, _) => true,
            (InPlace::Set(requirements), Some(job_id)) => {
                self.draft.notes.push(Note::normal(
                    Reason::Scaling,
                    format!(
                        "Rescaling the job in place to {key}={}",
                        crate::render::parallelism_overrides_text(&overrides)
                    ),
                ));
                self.draft.actions.push(Effect::SetResourceRequirements {
                    cluster: self.name().to_string(),
                    job_id,
                    requirements,
                });
                self.draft.progressing = true;
                false
            }
            (InPlace::Redeploy(why), _) => {
                self.draft.notes.push(Note::normal(
                    Reason::SpecChanged,
                    format!("{key} cannot be applied in place ({why}): redeploying"),
                ));
                self.upgrade(last, &fields);
                false
            }
            (InPlace::Unknown | InPlace::Set(_), _) => {
                self.draft.progressing = true;
                false
            }
        }
    }

    /// Whether `spec.ingress` is this operator's to manage (`kubernetes.operator.ingress.manage`);
    /// when it is not and the spec sets one, a warning says it is left alone (upstream's).
    fn ingress_managed(&mut self) -> bool {
        if self.ctx.manage_ingress {
            return true;
        }
        if self.resource.spec.ingress.is_some() {
            self.draft.notes.push(Note::warning(
                Reason::IngressManagement,
                "Ingress management is turned off (kubernetes.operator.ingress.manage: false) but spec.ingress is set; no Ingress is created or changed",
            ));
        }
        false
    }

    /// A change of `spec.ingress` alone changes the Ingress: the cluster keeps running.
    fn ingress_change(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>) {
        let spec = &self.resource.spec;
        if last.spec.ingress == spec.ingress || !self.ingress_managed() {
            return;
        }
        let input = RenderInput::for_resource(self.resource, spec, self.ctx.defaults);
        match render::deployment_ingress(&input) {
            Some(Ok(ingress)) => self
                .draft
                .actions
                .push(Effect::ApplyIngress(Box::new(ingress))),
            Some(Err(e)) => self.fail("ValidationError", e.to_string()),
            None => self.draft.actions.push(Effect::DeleteIngress),
        }
    }

    pub(super) fn upgrade(&mut self, last: &ReconciledSpec<FlinkDeploymentSpec>, fields: &str) {
        job::flow::upgrade(self, last, fields);
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
