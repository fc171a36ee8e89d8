//! Deleting a FlinkDeployment: a session cluster waits for its FlinkSessionJobs, then for the
//! jobs Flink still runs that none of them managed (upstream's `session.deletion.block-on-*`),
//! the job's state is saved when `savepoint-on-deletion` asks for it, then the cluster goes and
//! the finalizer with it.

use super::*;

impl<'a> Decision<'a> {
    pub(super) fn delete(&mut self) {
        if !self.has_finalizer() {
            return;
        }
        let observed = self.observed;
        // Nothing waits longer than `resource.cleanup.timeout`, blocked or not.
        if let Some(note) = crate::reconcile::cleanup::timed_out(
            &self.resource.metadata,
            &self.config,
            self.ctx.now_ms,
        ) {
            self.draft.notes.push(note);
            self.draft.actions.push(Effect::RemoveFinalizer);
            return;
        }
        if let Some(message) = self.deletion_blocked() {
            if self
                .draft
                .status
                .error
                .as_deref()
                .map(error_message)
                .as_deref()
                != Some(message.as_str())
            {
                self.draft
                    .notes
                    .push(Note::warning(Reason::CleanupFailed, message.clone()));
            }
            self.draft.status.error = Some(self.draft.error_json("DeletionBlocked", &message));
            self.draft.status.lifecycle_state = Some(flink_api::ResourceLifecycleState::Deleting);
            self.draft.progressing = true;
            return;
        }
        if observed.is_gone() {
            // As upstream: the job's HA metadata goes with it (it has no owner to take it).
            if self.ha_enabled(None) {
                self.draft.actions.push(Effect::DeleteHaMetadata);
            }
            self.draft.actions.push(Effect::RemoveFinalizer);
            return;
        }
        if self.draft.status.lifecycle_state != Some(flink_api::ResourceLifecycleState::Deleting) {
            self.draft.notes.push(Note::normal(
                Reason::Cleanup,
                "Cleaning up the Flink cluster",
            ));
        }
        if self.savepoint_on_deletion() && job::flow::save_before_deletion(self).is_none() {
            return;
        }
        self.tear_down(true);
    }

    /// Why a session cluster's deletion waits, if it does: FlinkSessionJobs name it
    /// (`session.deletion.block-on-session-jobs`), or, once they are gone, Flink still runs
    /// jobs no FlinkSessionJob manages, e.g. submitted with the CLI
    /// (`...block-on-unmanaged-jobs`, only with the first, as upstream). A JobManager that does
    /// not answer blocks nothing.
    fn deletion_blocked(&self) -> Option<String> {
        use flink_api::config::options;
        if self.resource.spec.is_application()
            || !options::BLOCK_ON_SESSION_JOBS.flag_in_flat(&self.config, true)
        {
            return None;
        }
        let observed = self.observed;
        if !observed.session_jobs.is_empty() {
            return Some(format!(
                "Waiting for the session jobs {} to be deleted before deleting the session cluster",
                observed.session_jobs.join(", ")
            ));
        }
        if !options::BLOCK_ON_UNMANAGED_JOBS.flag_in_flat(&self.config, true) {
            return None;
        }
        let ObservedFlink::Reachable { jobs, .. } = &observed.flink else {
            return None;
        };
        let running: Vec<&str> = jobs
            .iter()
            .filter(|j| !j.state.is_globally_terminal())
            .map(|j| j.id.as_str())
            .collect();
        (!running.is_empty()).then(|| {
            format!(
                "The session cluster runs jobs no FlinkSessionJob manages ({}); cancel them first, or set kubernetes.operator.session.deletion.block-on-unmanaged-jobs: false",
                running.join(", ")
            )
        })
    }

    /// Whether Kubernetes HA is on for the resource's spec (with the operator's defaults) or
    /// `other` (the spec being deployed): either may have left HA metadata.
    pub(super) fn ha_enabled(&self, other: Option<&FlinkDeploymentSpec>) -> bool {
        flink_api::config::ha_enabled_flat(&self.config) || other.is_some_and(|s| self.ha_of(s))
    }

    /// Whether Kubernetes HA is on for `spec`, with the operator's defaults.
    pub(super) fn ha_of(&self, spec: &FlinkDeploymentSpec) -> bool {
        flink_api::config::ha_enabled_flat(&job::configuration(
            self.ctx.defaults,
            spec.configuration().flat(),
        ))
    }

    /// Whether the job's state can pass to the next cluster in Flink's HA metadata: HA is on
    /// both for the spec recorded as deployed (so the metadata exists) and for the resource's
    /// spec (so the next JobManager reads it), as upstream checks both configurations. A spec
    /// that turns HA on has none yet to resume from.
    pub(super) fn state_in_ha_metadata(&self) -> bool {
        let recorded = self
            .draft
            .status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.as_deref())
            .and_then(|t| ReconciledSpec::<FlinkDeploymentSpec>::from_json(t).ok());
        self.resource.spec.is_application()
            && flink_api::config::ha_enabled_flat(&self.config)
            && recorded.is_some_and(|r| self.ha_of(&r.spec))
    }

    /// `kubernetes.operator.job.savepoint-on-deletion` and a running job (or its savepoint
    /// already under way).
    pub(super) fn savepoint_on_deletion(&self) -> bool {
        let enabled = flink_api::config::options::SAVEPOINT_ON_DELETION
            .in_flat(&self.config)
            .is_some_and(|v| v == "true");
        if !enabled || !self.resource.spec.is_application() {
            return false;
        }
        if self
            .draft
            .status
            .upgrade
            .as_ref()
            .is_some_and(|p| p.trigger_id.is_some() || p.restore_path.is_some())
        {
            return true;
        }
        self.observed_job()
            .is_some_and(|j| j.state == FlinkJobState::Running)
    }
}
