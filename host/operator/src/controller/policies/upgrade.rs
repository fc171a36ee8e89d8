//! Asking the tenant's upgrade strategy about the upgrade a reconcile would start; what its
//! verdict means is `reconcile::upgrade_policy`.

use super::*;

impl Policies {
    /// The tenant's upgrade-strategy verdict on the upgrade this FlinkDeployment's reconcile
    /// would start, when there is one and the tenant has such a plugin.
    pub async fn upgrade_verdict(
        &self,
        resource: &FlinkDeployment,
        observed: &ObservedCluster,
        now_ms: i64,
    ) -> Option<UpgradePolicy> {
        let (old, new) = upgrade_policy::pending_upgrade(resource)?;
        let question = UpgradeQuestion::new(
            &old,
            &new,
            new.job.as_ref(),
            resource.status.as_ref().and_then(|s| s.job_status.as_ref()),
            observed.latest_checkpoint.as_ref(),
        );
        self.ask_upgrade(resource, question, now_ms).await
    }

    /// The same for a FlinkSessionJob (the specs the plugin sees are session job specs; the
    /// resource's kind says so).
    pub async fn session_job_upgrade_verdict(
        &self,
        resource: &FlinkSessionJob,
        observed: &ObservedSessionJob,
        now_ms: i64,
    ) -> Option<UpgradePolicy> {
        let (old, new) = upgrade_policy::pending_session_job_upgrade(resource)?;
        let question = UpgradeQuestion::new(
            &old,
            &new,
            new.job.as_ref(),
            resource.status.as_ref().and_then(|s| s.job_status.as_ref()),
            observed.latest_checkpoint.as_ref(),
        );
        self.ask_upgrade(resource, question, now_ms).await
    }

    /// The same for the transition a FlinkBlueGreenDeployment would start: the specs the
    /// plugin sees are the template's (FlinkDeployment specs), the job is the active child's.
    pub async fn blue_green_upgrade_verdict(
        &self,
        resource: &flink_api::FlinkBlueGreenDeployment,
        active_job: Option<&JobStatus>,
        now_ms: i64,
    ) -> Option<UpgradePolicy> {
        let (old, new) = crate::reconcile::blue_green::pending_transition(resource)?;
        let question = UpgradeQuestion::new(&old, &new, new.job.as_ref(), active_job, None);
        self.ask_upgrade(resource, question, now_ms).await
    }

    /// The tenant's blue/green dual-running window (its upgrade binding's), zero without one.
    pub fn dual_running<K: Resource<DynamicType = ()>>(&self, resource: &K) -> std::time::Duration {
        let namespace = resource.namespace().unwrap_or_default();
        self.active()
            .binding_for(&namespace, resource.labels(), ExtensionPoint::Upgrade)
            .map_or(std::time::Duration::ZERO, |b| b.dual_running)
    }

    pub(super) async fn ask_upgrade<K>(
        &self,
        resource: &K,
        question: UpgradeQuestion<'_>,
        now_ms: i64,
    ) -> Option<UpgradePolicy>
    where
        K: Resource<DynamicType = ()>,
    {
        let namespace = resource.namespace().unwrap_or_default();
        let active = self.active();
        let binding = active.binding_for(&namespace, resource.labels(), ExtensionPoint::Upgrade)?;
        let by = decision_base(&binding, &active);
        let job = question.job;
        let savepoint = job
            .and_then(|j| j.savepoint_info.as_ref())
            .and_then(|i| i.last_savepoint.as_ref());
        let checkpoint_time = job
            .and_then(|j| j.checkpoint_info.as_ref())
            .and_then(|i| i.last_checkpoint.as_ref())
            .map(|c| c.time_stamp);
        let input = UpgradeInput {
            resource: resource_ref(resource, &binding.tenant),
            now_epoch_ms: now_ms,
            old_spec: question.old_spec,
            new_spec: question.new_spec,
            requested_mode: to_model(question.requested.unwrap_or_default()),
            job_state: job
                .and_then(|j| j.state)
                .map_or_else(String::new, |s| state_name(s).to_string()),
            snapshots: SnapshotInfo {
                last_savepoint: savepoint.and_then(|s| s.location.clone()),
                last_savepoint_epoch_ms: savepoint.map(|s| s.time_stamp),
                last_checkpoint: question.latest_checkpoint.map(|c| c.path.clone()),
                last_checkpoint_epoch_ms: question
                    .latest_checkpoint
                    .map(|c| c.completed_at)
                    .or(checkpoint_time),
            },
            config: binding.config.clone(),
        };
        let answer = guarded(&binding, now_ms, async {
            self.engine
                .upgrade(&binding.plugin, &input, &binding.limits)
                .await
        })
        .await;
        let verdict = match answer {
            Ok(decision) => match decision {
                UpgradeDecision::Proceed {
                    mode,
                    savepoint_first,
                    reason,
                } => UpgradeVerdict::Proceed {
                    mode: from_model(mode),
                    savepoint_first,
                    reason,
                },
                UpgradeDecision::WaitUntil {
                    until_epoch_ms,
                    reason,
                } => UpgradeVerdict::WaitUntil {
                    until_ms: until_epoch_ms,
                    reason,
                },
                UpgradeDecision::Refuse { reason } => UpgradeVerdict::Refuse { reason },
            },
            Err(reason) => UpgradeVerdict::Unavailable { reason },
        };
        Some(UpgradePolicy { by, verdict })
    }
}

/// What an upgrade-strategy plugin is asked about an upgrade, for either kind of resource.
pub(super) struct UpgradeQuestion<'a> {
    old_spec: Value,
    new_spec: Value,
    /// The new spec's upgrade mode (None: the spec has no job, i.e. stateless).
    requested: Option<flink_api::UpgradeMode>,
    job: Option<&'a JobStatus>,
    latest_checkpoint: Option<&'a ObservedCheckpoint>,
}

impl<'a> UpgradeQuestion<'a> {
    /// The question about the specs `old` and `new` (`new_job` is the new spec's job).
    fn new(
        old: &impl serde::Serialize,
        new: &impl serde::Serialize,
        new_job: Option<&flink_api::JobSpec>,
        job: Option<&'a JobStatus>,
        latest_checkpoint: Option<&'a ObservedCheckpoint>,
    ) -> Self {
        let old_spec = serde_json::to_value(old).unwrap_or_default();
        let new_spec = serde_json::to_value(new).unwrap_or_default();
        // A plugin never holds the specs' secrets: it sees both specs with them masked.
        let redactor = Redactor::of(&serde_json::json!({ "spec": &old_spec }))
            .merge(Redactor::of(&serde_json::json!({ "spec": &new_spec })));
        UpgradeQuestion {
            old_spec: redactor.scrub_json(&old_spec),
            new_spec: redactor.scrub_json(&new_spec),
            requested: new_job.map(|j| j.upgrade_mode),
            job,
            latest_checkpoint,
        }
    }
}

pub(super) fn to_model(mode: flink_api::UpgradeMode) -> ModelMode {
    match mode {
        flink_api::UpgradeMode::Savepoint => ModelMode::Savepoint,
        flink_api::UpgradeMode::LastState => ModelMode::LastState,
        flink_api::UpgradeMode::Stateless => ModelMode::Stateless,
    }
}

pub(super) fn from_model(mode: ModelMode) -> flink_api::UpgradeMode {
    match mode {
        ModelMode::Savepoint => flink_api::UpgradeMode::Savepoint,
        ModelMode::LastState => flink_api::UpgradeMode::LastState,
        ModelMode::Stateless => flink_api::UpgradeMode::Stateless,
    }
}
