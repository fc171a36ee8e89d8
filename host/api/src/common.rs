//! Types shared by several resources: the job spec, the job status with its savepoint and
//! checkpoint bookkeeping, the reconciliation status and the lifecycle state.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `spec.job`: what to run and how to upgrade it. Absent on a session cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// URI of the job jar: `local:///opt/flink/...` inside the image for FlinkDeployments;
    /// fetched by the operator (`http(s)://`, `file://`, `local://`) for FlinkSessionJobs.
    #[serde(rename = "jarURI", default, skip_serializing_if = "Option::is_none")]
    pub jar_uri: Option<String>,
    /// Fully qualified main class; optional when the jar's manifest names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_class: Option<String>,
    /// Program arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Job parallelism; at least 1. Absent: `parallelism.default`, else 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    /// Desired state: `running` (default) or `suspended`.
    #[serde(default)]
    pub state: JobState,
    /// How state is carried across upgrades: `stateless` (default), `savepoint`, `last-state`.
    #[serde(default)]
    pub upgrade_mode: UpgradeMode,
    /// Savepoint to start from on the first deployment only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_savepoint_path: Option<String>,
    /// Allow restoring a savepoint that contains state of operators no longer in the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_non_restored_state: Option<bool>,
    /// Change to redeploy from `initialSavepointPath`, dropping the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_redeploy_nonce: Option<i64>,
    /// Change to clear the autoscaler's collected metrics and overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler_reset_nonce: Option<i64>,
    /// Deprecated: change to trigger a manual savepoint (use a FlinkStateSnapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_nonce: Option<i64>,
    /// Deprecated: change to trigger a manual checkpoint (use a FlinkStateSnapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_trigger_nonce: Option<i64>,
}

/// `spec.job.state`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    #[default]
    Running,
    Suspended,
}

/// `spec.job.upgradeMode`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// Resume from the latest checkpoint.
    LastState,
    /// Stop with a savepoint and restore from it.
    Savepoint,
    /// Start from empty state.
    #[default]
    Stateless,
}

impl UpgradeMode {
    /// Savepoint and last-state carry state across upgrades.
    pub fn is_stateful(self) -> bool {
        !matches!(self, UpgradeMode::Stateless)
    }

    /// `last-state`, `savepoint` or `stateless`, as users write it.
    pub fn name(self) -> &'static str {
        match self {
            UpgradeMode::LastState => "last-state",
            UpgradeMode::Savepoint => "savepoint",
            UpgradeMode::Stateless => "stateless",
        }
    }
}

/// The state of a Flink job as Flink reports it (`status.jobStatus.state`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlinkJobState {
    Canceled,
    Cancelling,
    Created,
    Failed,
    Failing,
    Finished,
    Initializing,
    Reconciling,
    Restarting,
    Running,
    Suspended,
}

impl FlinkJobState {
    /// States a job never leaves on its own.
    pub fn is_globally_terminal(self) -> bool {
        matches!(self, Self::Canceled | Self::Failed | Self::Finished)
    }
}

/// `status.jobStatus`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<FlinkJobState>,
    /// Milliseconds since the epoch, as a string (upstream's format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    /// The savepoint an in-flight upgrade restores from; recorded before the old cluster goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_savepoint_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_info: Option<SavepointInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_info: Option<CheckpointInfo>,
}

/// Why a snapshot was taken.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotTriggerType {
    Manual,
    Periodic,
    #[default]
    Unknown,
    Upgrade,
}

/// Savepoint format.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SavepointFormatType {
    Canonical,
    Native,
    #[default]
    Unknown,
}

/// Checkpoint type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointType {
    Full,
    Incremental,
    #[default]
    Unknown,
}

/// One completed savepoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Savepoint {
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub time_stamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default)]
    pub trigger_type: SnapshotTriggerType,
    #[serde(default)]
    pub format_type: SavepointFormatType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
}

/// `status.jobStatus.savepointInfo`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavepointInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint: Option<Savepoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<SnapshotTriggerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_type: Option<SavepointFormatType>,
    /// The `savepointTriggerNonce` the pending (or last failed) manual savepoint was for, so one
    /// nonce triggers one savepoint (this operator's field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub savepoint_history: Vec<Savepoint>,
    #[serde(default)]
    pub last_periodic_savepoint_timestamp: i64,
}

/// One completed checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    #[serde(default)]
    pub time_stamp: i64,
    #[serde(default)]
    pub trigger_type: SnapshotTriggerType,
    #[serde(default)]
    pub format_type: CheckpointType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
}

/// `status.jobStatus.checkpointInfo`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<Checkpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<SnapshotTriggerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_type: Option<CheckpointType>,
    #[serde(default)]
    pub last_periodic_checkpoint_timestamp: i64,
    /// This operator's: the `checkpointTriggerNonce` of the pending or last manual checkpoint
    /// (so a nonce asks once, also when its checkpoint failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_nonce: Option<i64>,
}

/// `status.reconciliationStatus.state`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReconciliationState {
    #[default]
    Deployed,
    RolledBack,
    RollingBack,
    Upgrading,
}

/// `status.reconciliationStatus`: the write-ahead log of what the operator deployed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationStatus {
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub reconciliation_timestamp: i64,
    /// The spec last deployed (or being deployed), as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconciled_spec: Option<String>,
    /// The last spec that was seen stable, as JSON; the rollback target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_spec: Option<String>,
    #[serde(default)]
    pub state: ReconciliationState,
}

/// `status.lifecycleState`, computed from the rest of the status.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceLifecycleState {
    Created,
    Deleted,
    Deleting,
    Deployed,
    Failed,
    RolledBack,
    RollingBack,
    Stable,
    Suspended,
    Upgrading,
}

/// `status.health` (this operator's): what judging the running deployment needs to remember
/// across reconciles. Everything else (running since, checkpoints, restarts of the current job)
/// is read from Flink each time, so a quiet job's status does not change.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentHealth {
    /// Milliseconds since the epoch when the current cluster was deployed: the readiness
    /// timeout of a rollback counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<i64>,
    /// The savepoint or checkpoint the current deployment restored from (absent: empty state).
    /// A job that fails before its first checkpoint still has exactly this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// Flink reported a completed checkpoint of the current job: from then on its state is no
    /// longer `restoredFrom`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checkpointed: bool,
    /// The restart count (Flink's `numRestarts`) at the start of the current restart window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts_baseline: Option<i64>,
    /// Milliseconds since the epoch when the current restart window started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts_window_start: Option<i64>,
}

/// `status.upgrade` (this operator's; upstream derives its progress from other fields): the
/// stateful upgrade or suspension under way, the step it is at and the state it has secured.
/// Absent when none runs. The operator resumes from it after a crash at any step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeProgress {
    pub step: UpgradeStep,
    /// The mode this upgrade runs in (the new spec's; the operator never falls back to
    /// stateless on its own).
    pub mode: UpgradeMode,
    /// The generation being deployed.
    pub target_generation: i64,
    /// The stop-with-savepoint trigger id, chosen and recorded before the request, so a retry
    /// is the same savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// The savepoint or retained checkpoint the new cluster restores from, recorded before the
    /// old cluster is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_path: Option<String>,
    /// Failed attempts at securing the state (each a new trigger id).
    #[serde(default)]
    pub attempts: i32,
    /// Milliseconds since the epoch when the upgrade started.
    #[serde(default)]
    pub started: i64,
}

/// Steps of a stateful upgrade, in order.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpgradeStep {
    /// Stop-with-savepoint requested; waiting for its result.
    Savepointing,
    /// Cancel requested (last-state without HA); waiting for the job to be cancelled, then the
    /// latest retained checkpoint is the restore path.
    Cancelling,
    /// State secured; the old cluster's Deployments are deleted, waiting for its pods to go.
    StoppingCluster,
    /// The new cluster is being deployed from the restore path.
    Deploying,
}

/// `status.autoscaler` (this operator's): where the autoscaler stands for the job and what it
/// did last. The full metric and scaling history is in the `autoscaler-<name>` ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    /// `Stabilizing`, `Collecting`, `Deciding`, `Rescaling` or `Paused` (no sample: the job is
    /// not running or is being changed).
    pub phase: String,
    /// The metric window in words, e.g. `8 samples; full at 2026-11-30T23:12:50Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The parallelism the autoscaler set per job vertex id (kept across deploys as
    /// `pipeline.jobvertex-parallelism-overrides`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parallelism: BTreeMap<String, i32>,
    /// The latest scalings, oldest first (at most 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scalings: Vec<ScalingRecordStatus>,
    /// Why the latest decision was not applied (metrics-only mode, a plugin's veto, a failed
    /// in-place rescale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One scaling of one vertex in `status.autoscaler.scalings`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRecordStatus {
    /// When it was decided (RFC 3339).
    pub time: String,
    pub vertex: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vertex_name: String,
    pub from: i32,
    pub to: i32,
    /// The numbers behind it, e.g. `true processing rate 647.59/s, target 857.805/s`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// `status.policies[]` (this operator's): which tenant policy plugin took part in the
/// resource's last decision of an extension point, and how that went.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDecision {
    /// `pod-template`, `upgrade-strategy` or `scaling-policy`.
    pub extension_point: String,
    pub tenant: String,
    pub plugin: String,
    /// `sha256:<hex>` of the plugin that decided.
    pub digest: String,
    /// `Applied` (the plugin's answer was used), `Fallback` (the extension point's fallback was
    /// used, see message) or `Held` (nothing was changed until the plugin answers).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
