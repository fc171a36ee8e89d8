//! The pure core of reconciling: from what the user asked for (spec), what the operator recorded
//! (status) and what it observed (Kubernetes objects and Flink's REST API) to a [`Plan`]: the
//! actions to take, the status to record before them (the write-ahead intent) and after them,
//! and the events to publish. Nothing here does I/O or reads a clock; the controller observes,
//! calls [`deployment::decide`] or [`session_job::decide`], and acts.

pub mod autoscaling;
pub mod blue_green;
pub mod cleanup;
pub mod deployment;
pub mod health;
pub mod in_place;
pub mod job;
pub mod job_exceptions;
pub mod job_id;
pub mod job_snapshots;
pub mod observed;
pub mod pod_templates;
pub mod reconciled_spec;
pub mod secure;
pub mod session_job;
pub mod spec_diff;
pub mod state_snapshot;
pub mod status;
pub mod upgrade_policy;

use crate::render::ClusterObjects;
use std::time::Duration;

/// One effect of a plan: a thing `act` does, in order. The first failure stops the rest
/// (except where [`Effect::failure_does_not_stop`] says otherwise). Named apart from
/// kube-runtime's `Action` (when to reconcile again), which the controller also uses.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    AddFinalizer,
    RemoveFinalizer,
    /// Server-side apply the cluster's objects.
    ApplyCluster(Box<ClusterObjects>),
    /// Server-side apply the TaskManager Deployment only (a scale change in standalone mode).
    ApplyTaskManagers(Box<serde_json::Value>),
    /// Delete the JobManager and TaskManager Deployments (their pods go with them).
    DeleteCluster,
    /// Delete the cluster's Kubernetes HA metadata: the ConfigMaps Flink's HA services keep
    /// (labelled `app=<name>`, `type=flink-native-kubernetes`, named `...-config-map` or
    /// `...-leader`; never the operator's own). As upstream, when the next cluster does not
    /// resume from it, and when the resource goes.
    DeleteHaMetadata,
    /// Cancel a job through the REST API of the cluster `cluster` (a FlinkDeployment's name).
    /// Best effort ones are skipped when Flink cannot be reached: the cluster goes anyway.
    CancelJob {
        cluster: String,
        job_id: String,
        best_effort: bool,
    },
    /// Stop the job with a savepoint under a trigger id the status already records (so a retry
    /// is the same savepoint); its result is observed on the next reconciles.
    StopWithSavepoint {
        cluster: String,
        job_id: String,
        trigger_id: String,
        /// Canonical unless `NATIVE` (`kubernetes.operator.savepoint.format.type`).
        format: flink_api::SavepointFormatType,
        /// MAX_WATERMARK first (`kubernetes.operator.job.drain-on-savepoint-deletion`).
        drain: bool,
    },
    /// Take a savepoint (the job keeps running) under a trigger id the status already records,
    /// into `directory` or the cluster's savepoint directory.
    TriggerSavepoint {
        cluster: String,
        job_id: String,
        trigger_id: String,
        directory: Option<String>,
        format: flink_api::SavepointFormatType,
    },
    /// Take a checkpoint under a trigger id the status already records (Flink 1.19+).
    TriggerCheckpoint {
        cluster: String,
        job_id: String,
        trigger_id: String,
        /// FULL or INCREMENTAL (`kubernetes.operator.checkpoint.type`).
        kind: flink_api::CheckpointType,
    },
    /// Delete a `file://` savepoint's directory directly (its cluster is gone).
    DeleteSavepointFiles {
        path: String,
    },
    /// Delete a savepoint's files through the cluster (`/savepoint-disposal`); best effort.
    DisposeSavepoint {
        cluster: String,
        path: String,
    },
    /// Upload a session job's jar to the session cluster and run it with a fixed job id.
    SubmitSessionJob(Box<SessionJobSubmission>),
    /// Create a FlinkStateSnapshot in the resource's namespace (one that exists already is
    /// left as it is).
    CreateSnapshot(Box<flink_api::FlinkStateSnapshot>),
    /// Merge these labels into the resource's.
    SetLabels(std::collections::BTreeMap<String, String>),
    /// Delete a FlinkStateSnapshot of the resource's namespace (its own finalizer disposes of
    /// a savepoint's files when it says so).
    DeleteSnapshot {
        name: String,
    },
    /// Server-side apply the autoscaler's state ConfigMap (`autoscaler-<name>`). Written
    /// ahead of the rescale it records.
    StoreAutoscalerState(Box<serde_json::Value>),
    /// Set a running job's resource requirements (`/jobs/:id/resource-requirements`): the
    /// adaptive scheduler rescales it in place.
    SetResourceRequirements {
        cluster: String,
        job_id: String,
        requirements: flink_rest::ResourceRequirements,
    },
    /// Set the TaskManager Deployment's replicas (a merge patch of that field alone).
    ScaleTaskManagers {
        replicas: u32,
    },
    /// Let idle TaskManagers go: mark each pod of `marks` for its ReplicaSet to delete first
    /// (`controller.kubernetes.io/pod-deletion-cost`), or clear an earlier mark (`None`), then
    /// set the TaskManager Deployment's replicas. One effect, because the replicas must not
    /// drop unless every mark took: the ReplicaSet would delete a busy TaskManager.
    ReleaseTaskManagers {
        marks: Vec<(String, Option<String>)>,
        replicas: u32,
    },
    /// Server-side apply a blue/green child FlinkDeployment (its spec and metadata; its status
    /// is its own controller's).
    ApplyChild(Box<flink_api::FlinkDeployment>),
    /// Delete a blue/green child FlinkDeployment (its own finalizer tears its cluster down).
    DeleteChild {
        name: String,
    },
    /// Server-side apply the resource's own Ingress.
    ApplyIngress(Box<serde_json::Value>),
    /// Delete the resource's own Ingress (named after it).
    DeleteIngress,
}

impl Effect {
    /// The event reason to report a failure of this action under when the failure does not
    /// stop the rest of the plan: the autoscaler's writes, which the next sample makes again
    /// when they did not take (the job does not run what was chosen, the state differs). None:
    /// a failure stops the plan and is the reconcile's error.
    pub fn failure_does_not_stop(&self) -> Option<Reason> {
        match self {
            Effect::StoreAutoscalerState(_)
            | Effect::SetResourceRequirements { .. }
            | Effect::ScaleTaskManagers { .. }
            | Effect::ReleaseTaskManagers { .. } => Some(Reason::ScalingLimited),
            _ => None,
        }
    }
}

/// What a session job's submission needs.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionJobSubmission {
    pub cluster: String,
    pub jar_uri: String,
    pub entry_class: Option<String>,
    pub args: Vec<String>,
    pub parallelism: Option<i32>,
    pub job_id: String,
    pub restore_from: Option<String>,
    pub allow_non_restored_state: bool,
    pub configuration: std::collections::BTreeMap<String, String>,
    /// How long the JobManager may take to run the jar (`kubernetes.operator.job.submission.timeout`).
    pub timeout: std::time::Duration,
}

/// A Kubernetes Event to publish about the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: Reason,
    pub message: String,
}

impl Note {
    pub fn normal(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason,
            message: message.into(),
        }
    }
    pub fn warning(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason,
            message: message.into(),
        }
    }
}

/// The reason of every event the operator publishes, said once (upstream's spelling where
/// upstream has the reason, so alerts and dashboards written for the Java operator match).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    AutoscalerConfigInvalid,
    AutoscalerReset,
    /// Ours: the Java operator's autoscaler state was taken over.
    AutoscalerStateImported,
    BlueGreenAborted,
    BlueGreenTransition,
    CheckpointCompleted,
    CheckpointError,
    CheckpointSecured,
    CheckpointTooOld,
    Cleanup,
    CleanupFailed,
    ConfigInvalid,
    ConfigReloaded,
    ConfigurationRecommendation,
    Error,
    HealthCheckSkipped,
    IneffectiveScaling,
    /// `spec.ingress` is set while `kubernetes.operator.ingress.manage` is off (upstream's).
    IngressManagement,
    /// An exception in Flink's history of the job (upstream's spelling).
    JobException,
    JobStatusChanged,
    MemoryPressure,
    PolicyActivated,
    PolicyConfigInvalid,
    PolicyError,
    PolicyFallback,
    PolicyHeld,
    PolicyRejected,
    RecoverDeployment,
    RestartUnhealthyJob,
    Restore,
    Rollback,
    SavepointCompleted,
    SavepointError,
    SavepointFallback,
    SavepointOnDeletion,
    Scaling,
    ScalingLimited,
    ScalingReport,
    ScalingVetoed,
    SnapshotAbandoned,
    SnapshotCompleted,
    SnapshotCreated,
    SnapshotFailed,
    SpecChanged,
    StateFallback,
    StatelessUpgrade,
    Submit,
    Suspended,
    UpgradePolicy,
    UpgradeWaiting,
    ValidationError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AutoscalerConfigInvalid => "AutoscalerConfigInvalid",
            Reason::AutoscalerReset => "AutoscalerReset",
            Reason::AutoscalerStateImported => "AutoscalerStateImported",
            Reason::BlueGreenAborted => "BlueGreenAborted",
            Reason::BlueGreenTransition => "BlueGreenTransition",
            Reason::CheckpointCompleted => "CheckpointCompleted",
            Reason::CheckpointError => "CheckpointError",
            Reason::CheckpointSecured => "CheckpointSecured",
            Reason::CheckpointTooOld => "CheckpointTooOld",
            Reason::Cleanup => "Cleanup",
            Reason::CleanupFailed => "CleanupFailed",
            Reason::ConfigInvalid => "ConfigInvalid",
            Reason::ConfigReloaded => "ConfigReloaded",
            // Upstream's spelling (MemoryTuning), so its alerts match.
            Reason::ConfigurationRecommendation => "Configuration recommendation",
            Reason::Error => "Error",
            Reason::HealthCheckSkipped => "HealthCheckSkipped",
            Reason::IngressManagement => "IngressManagement",
            Reason::IneffectiveScaling => "IneffectiveScaling",
            Reason::JobException => "JobException",
            Reason::JobStatusChanged => "JobStatusChanged",
            Reason::MemoryPressure => "MemoryPressure",
            Reason::PolicyActivated => "PolicyActivated",
            Reason::PolicyConfigInvalid => "PolicyConfigInvalid",
            Reason::PolicyError => "PolicyError",
            Reason::PolicyFallback => "PolicyFallback",
            Reason::PolicyHeld => "PolicyHeld",
            Reason::PolicyRejected => "PolicyRejected",
            Reason::RecoverDeployment => "RecoverDeployment",
            Reason::RestartUnhealthyJob => "RestartUnhealthyJob",
            Reason::Restore => "Restore",
            Reason::Rollback => "Rollback",
            Reason::SavepointCompleted => "SavepointCompleted",
            Reason::SavepointError => "SavepointError",
            Reason::SavepointFallback => "SavepointFallback",
            Reason::SavepointOnDeletion => "SavepointOnDeletion",
            Reason::Scaling => "Scaling",
            Reason::ScalingLimited => "ScalingLimited",
            Reason::ScalingReport => "ScalingReport",
            Reason::ScalingVetoed => "ScalingVetoed",
            Reason::SnapshotAbandoned => "SnapshotAbandoned",
            Reason::SnapshotCompleted => "SnapshotCompleted",
            Reason::SnapshotCreated => "SnapshotCreated",
            Reason::SnapshotFailed => "SnapshotFailed",
            Reason::SpecChanged => "SpecChanged",
            Reason::StateFallback => "StateFallback",
            Reason::StatelessUpgrade => "StatelessUpgrade",
            Reason::Submit => "Submit",
            Reason::Suspended => "Suspended",
            Reason::UpgradePolicy => "UpgradePolicy",
            Reason::UpgradeWaiting => "UpgradeWaiting",
            Reason::ValidationError => "ValidationError",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The decision of one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan<S> {
    /// Written before any action when an action cannot be undone (deploying, deleting a
    /// cluster): a crash after it resumes from what it says.
    pub intent: Option<S>,
    pub actions: Vec<Effect>,
    /// Written after the actions succeeded (when it differs from what is stored).
    pub status: S,
    pub notes: Vec<Note>,
    /// When to look again.
    pub requeue: Duration,
}

/// The reconcile intervals decisions choose between (upstream's defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct Intervals {
    /// `kubernetes.operator.reconcile.interval`: a quiet resource is looked at this often.
    pub reconcile: Duration,
    /// `kubernetes.operator.observer.progress-check.interval`: while something is moving.
    pub progress: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            reconcile: Duration::from_secs(60),
            progress: Duration::from_secs(10),
        }
    }
}

/// A duration for messages, in Flink's spelling: `500 ms`, `40 s`, `5 min`.
pub fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        format!("{} ms", d.as_millis())
    } else if s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// How long until `at_ms` from `now_ms`, at least a second (a wait that ends is looked at
/// promptly, never hot-looped on).
pub fn until(at_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(at_ms.saturating_sub(now_ms).max(1_000) as u64)
}

/// An instant (ms since the epoch) as the statuses write it, RFC 3339 in UTC (upstream's
/// `Instant.toString()`); the number itself when it is outside what a date can say.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
