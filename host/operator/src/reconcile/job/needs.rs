//! What observation must fetch for a job besides its cluster's objects and jobs, decided from
//! the status and spec alone (so observation stays dumb), the same for both kinds.

use super::super::reconciled_spec::ReconciledSpec;
use super::super::{health, job_snapshots};
use flink_api::{JobState, UpgradeStep};
use std::collections::BTreeMap;

/// What observation must fetch for a job besides its cluster's objects and jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservationNeeds {
    /// `(job id, trigger id)` of a stop-with-savepoint whose result is awaited.
    pub savepoint: Option<(String, String)>,
    /// The job whose latest completed checkpoint a last-state upgrade needs.
    pub checkpoints_of: Option<String>,
    /// `(job id, trigger id)` of a manual or periodic savepoint whose result is awaited.
    pub snapshot: Option<(String, String)>,
    /// `(job id, trigger id)` of a manual or periodic checkpoint whose result is awaited.
    pub checkpoint: Option<(String, String)>,
    /// The job whose restart and checkpoint counters the health checks or the stability rules
    /// need.
    pub counters_of: Option<String>,
    /// The job's FlinkStateSnapshots (a manual or periodic snapshot may be due).
    pub snapshot_resources: bool,
    /// The job whose scheduler and resource requirements a parallelism overrides edit needs
    /// (it is applied in place).
    pub requirements_of: Option<String>,
}

impl ObservationNeeds {
    /// What a job's upgrade, rollback and health checks need, the same for FlinkDeployments and
    /// FlinkSessionJobs: the awaited stop-with-savepoint of the recorded `job_id`, its counters
    /// when a health or stability rule of `settings` needs them, and its latest checkpoint when
    /// its state may have to be secured (a securing under way in whatever mode, or a stateful
    /// `job` whose spec changed or whose counters may call for a restart or rollback).
    /// `changed`: the spec's generation is not the recorded one.
    pub fn for_job(
        job_id: Option<String>,
        progress: Option<&flink_api::UpgradeProgress>,
        job: Option<&flink_api::JobSpec>,
        changed: bool,
        settings: &health::Settings,
    ) -> Self {
        let savepoint = match (progress, &job_id) {
            (Some(p), Some(job)) if p.step == UpgradeStep::Savepointing => {
                p.trigger_id.clone().map(|t| (job.clone(), t))
            }
            _ => None,
        };
        let securing = progress
            .is_some_and(|p| matches!(p.step, UpgradeStep::Cancelling | UpgradeStep::Savepointing));
        let stateful = job.is_some_and(|j| j.upgrade_mode.is_stateful());
        let running = job.is_some_and(|j| j.state == JobState::Running);
        let counters_of = job_id
            .clone()
            .filter(|_| running && settings.needs_counters());
        let checkpoints_of = if securing || (stateful && (changed || counters_of.is_some())) {
            job_id
        } else {
            None
        };
        Self {
            savepoint,
            checkpoints_of,
            snapshot: None,
            checkpoint: None,
            counters_of,
            snapshot_resources: false,
            requirements_of: None,
        }
    }

    /// Adds what manual and periodic snapshots need: the results of the triggers `job_status`
    /// records, and the job's snapshot resources when one may be due (its job runs and no
    /// upgrade is under way). `config`: the resource's flat configuration.
    pub fn with_snapshots(
        self,
        job_status: Option<&flink_api::JobStatus>,
        progress: Option<&flink_api::UpgradeProgress>,
        job: Option<&flink_api::JobSpec>,
        config: &BTreeMap<String, String>,
    ) -> Self {
        let job_id = job_status.and_then(|j| j.job_id.clone());
        let awaited = |trigger: Option<String>| job_id.clone().zip(trigger);
        let running = job_status.and_then(|j| j.state) == Some(flink_api::FlinkJobState::Running)
            && progress.is_none()
            && job.is_some_and(|j| j.state == JobState::Running);
        Self {
            snapshot: awaited(
                job_status
                    .and_then(|j| j.savepoint_info.as_ref())
                    .and_then(|i| i.trigger_id.clone()),
            ),
            checkpoint: awaited(
                job_status
                    .and_then(|j| j.checkpoint_info.as_ref())
                    .and_then(|i| i.trigger_id.clone()),
            ),
            // Also while an upgrade's savepoint is awaited: it is recorded as a resource.
            snapshot_resources: (self.savepoint.is_some() && job_snapshots::as_resources(config))
                || running
                    && job_snapshots::resources_needed(
                        config,
                        job_status,
                        job.and_then(|j| j.savepoint_trigger_nonce),
                        job.and_then(|j| j.checkpoint_trigger_nonce),
                    ),
            ..self
        }
    }
}

/// Whether `resource_generation` is not the generation of the spec `reconciliation` records.
pub fn spec_changed<S: serde::Serialize + serde::de::DeserializeOwned>(
    reconciliation: Option<&flink_api::ReconciliationStatus>,
    resource_generation: Option<i64>,
) -> bool {
    let recorded = reconciliation
        .and_then(|r| r.last_reconciled_spec.as_deref())
        .and_then(|t| ReconciledSpec::<S>::from_json(t).ok())
        .map(|r| r.generation);
    recorded.is_some() && recorded != resource_generation
}
