//! `FlinkStateSnapshot`: one savepoint or checkpoint with its own lifecycle.

use crate::common::SavepointFormatType;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec` of a FlinkStateSnapshot.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "flink.apache.org",
    version = "v1beta1",
    kind = "FlinkStateSnapshot",
    namespaced,
    status = "FlinkStateSnapshotStatus",
    shortname = "flinksnp",
    derive = "PartialEq",
    derive = "Default",
    doc = "A savepoint or checkpoint of a Flink job.",
    printcolumn = r#"{"name":"Path","type":"string","jsonPath":".status.path"}"#,
    printcolumn = r#"{"name":"Result Timestamp","type":"string","jsonPath":".status.resultTimestamp"}"#,
    printcolumn = r#"{"name":"Snapshot State","type":"string","jsonPath":".status.state"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkStateSnapshotSpec {
    /// The job to snapshot; not needed for a savepoint that already exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_reference: Option<JobReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint: Option<SavepointSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointSpec>,
    /// Retries of a failed trigger; -1 retries forever, 0 never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
}

/// `spec.jobReference`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<JobKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum JobKind {
    FlinkDeployment,
    FlinkSessionJob,
}

impl JobKind {
    /// The kind as the API spells it (also the `job-reference.kind` label).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::FlinkDeployment => "FlinkDeployment",
            JobKind::FlinkSessionJob => "FlinkSessionJob",
        }
    }
}

/// `spec.savepoint`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavepointSpec {
    /// Target directory (new savepoints) or the savepoint itself (`alreadyExists`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_type: Option<SavepointFormatType>,
    /// Dispose of the savepoint's files when this resource is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispose_on_delete: Option<bool>,
    /// Record an existing savepoint instead of taking one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_exists: Option<bool>,
}

/// `spec.checkpoint`: no options yet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CheckpointSpec {}

/// `status.state`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotState {
    Abandoned,
    Completed,
    Failed,
    InProgress,
    TriggerPending,
}

/// `status` of a FlinkStateSnapshot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkStateSnapshotStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SnapshotState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub failures: i32,
}

/// Labels upstream puts on FlinkStateSnapshots so they can be selected
/// (`kubectl get flinksnp -l job-reference.name=keeper`).
pub mod labels {
    /// `SAVEPOINT` or `CHECKPOINT`.
    pub const SNAPSHOT_TYPE: &str = "snapshot.type";
    /// `MANUAL`, `PERIODIC` or `UPGRADE`: what asked for it (absent: a user's, `MANUAL`).
    pub const TRIGGER_TYPE: &str = "snapshot.trigger-type";
    /// The snapshot's `status.state`, once it has one.
    pub const STATE: &str = "snapshot.state";
    /// The kind of the job's resource: `FlinkDeployment` or `FlinkSessionJob`.
    pub const JOB_KIND: &str = "job-reference.kind";
    /// The name of the job's resource.
    pub const JOB_NAME: &str = "job-reference.name";

    use crate::common::SnapshotTriggerType;

    /// `snapshot.trigger-type`'s value for `trigger`.
    pub fn trigger_type(trigger: SnapshotTriggerType) -> &'static str {
        match trigger {
            SnapshotTriggerType::Manual => "MANUAL",
            SnapshotTriggerType::Periodic => "PERIODIC",
            SnapshotTriggerType::Upgrade => "UPGRADE",
            SnapshotTriggerType::Unknown => "UNKNOWN",
        }
    }

    /// What a `snapshot.trigger-type` label says; none is a user's snapshot: `MANUAL`.
    pub fn trigger_type_of(label: Option<&str>) -> SnapshotTriggerType {
        match label {
            None | Some("MANUAL") => SnapshotTriggerType::Manual,
            Some("PERIODIC") => SnapshotTriggerType::Periodic,
            Some("UPGRADE") => SnapshotTriggerType::Upgrade,
            Some(_) => SnapshotTriggerType::Unknown,
        }
    }
}

/// Ours: the `savepointTriggerNonce` / `checkpointTriggerNonce` a snapshot was created for, so
/// one nonce creates one snapshot even when the operator stops right after creating it.
pub const TRIGGER_NONCE_ANNOTATION: &str = "flink-operator.io/trigger-nonce";

impl SavepointSpec {
    /// Upstream's default is to dispose of the files when the resource is deleted.
    pub fn disposes_on_delete(&self) -> bool {
        self.dispose_on_delete.unwrap_or(true)
    }
}

impl FlinkStateSnapshotSpec {
    /// Retries of a failed trigger: upstream's default -1 retries forever (with back-off).
    pub fn retries(&self) -> i32 {
        self.backoff_limit.unwrap_or(-1)
    }
}
