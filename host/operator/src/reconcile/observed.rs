//! What the controller saw, as plain values: the cluster's Kubernetes objects and what Flink's
//! REST API said. Observation never decides; it reports what it could not see as such.

use flink_api::FlinkJobState;
use std::collections::BTreeMap;

/// A Flink cluster (FlinkDeployment) as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedCluster {
    pub job_manager: Option<ObservedDeployment>,
    pub task_manager: Option<ObservedDeployment>,
    /// Pods of the cluster (label `app=<name>`), including terminating ones: a new cluster
    /// starts only when the old one's pods are gone.
    pub pods: usize,
    /// The cluster's containers that wait (not running) and why, as the kubelet says.
    pub waiting: Vec<WaitingContainer>,
    pub flink: ObservedFlink,
    /// FlinkSessionJobs that name this deployment (a session cluster is not deleted under them).
    pub session_jobs: Vec<String>,
    /// The result of the stop-with-savepoint the status records, when one is awaited.
    pub savepoint: Option<ObservedOperation>,
    /// The current job's latest completed checkpoint, when a last-state upgrade needs it.
    pub latest_checkpoint: Option<ObservedCheckpoint>,
    /// The result of the manual or periodic savepoint the status records, when one is awaited.
    pub snapshot: Option<ObservedOperation>,
    /// The result of the manual or periodic checkpoint the status records, when one is awaited.
    pub checkpoint: Option<ObservedOperation>,
    /// Why the current job failed, when it did.
    pub job_failure: Option<JobFailure>,
    /// The current job's restart and checkpoint counters, when the health checks or the
    /// stability rules need them.
    pub counters: Option<JobCounters>,
    /// The FlinkStateSnapshots of this resource's job, when snapshots are resources and one may
    /// be due.
    pub snapshots: Option<Vec<JobSnapshot>>,
    /// The job's scheduler and resource requirements, while a parallelism overrides edit is to
    /// be applied in place.
    pub requirements: Option<ObservedRequirements>,
    /// An application's current job's exception history, for its `JobException` events.
    pub exceptions: Option<super::job_exceptions::ObservedExceptions>,
}

/// Why a job failed, as Flink's exception history says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobFailure {
    /// Flink's most specific exception message.
    pub message: String,
    /// The failure's Java stack trace (its `Caused by:` chain).
    pub stack_trace: String,
}

impl From<&str> for JobFailure {
    fn from(message: &str) -> Self {
        Self {
            message: message.to_string(),
            stack_trace: String::new(),
        }
    }
}

/// A running job's scheduler and, on the adaptive scheduler, its resource requirements.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedRequirements {
    /// The job's state as its details report it (served from a cache that can lag a few
    /// seconds behind a job that just started).
    pub state: flink_rest::JobState,
    pub adaptive: bool,
    /// None: not read (not adaptive, or the JobManager did not answer).
    pub current: Option<flink_rest::ResourceRequirements>,
}

/// A container of the cluster's pods that waits to run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaitingContainer {
    pub pod: String,
    /// A JobManager's pod (label `component=jobmanager`).
    pub job_manager: bool,
    pub container: String,
    /// The kubelet's reason (`CrashLoopBackOff`, `ContainerCreating`, ...).
    pub reason: String,
    pub message: Option<String>,
}

impl ObservedCluster {
    /// Why a pod of the cluster cannot run (crash-looping, its image cannot be pulled, its
    /// configuration is wrong), as the status and the events say it; None while its containers
    /// only wait their turn. `job_manager`: only the JobManager's pods (upstream judges the
    /// JobManager Deployment by them; a TaskManager Flink replaces on its own does not fail the
    /// cluster).
    pub fn pod_problem(&self, job_manager: bool) -> Option<String> {
        self.waiting
            .iter()
            .filter(|w| !job_manager || w.job_manager)
            .find(|w| {
                matches!(
                    w.reason.as_str(),
                    "CrashLoopBackOff"
                        | "ImagePullBackOff"
                        | "ErrImagePull"
                        | "CreateContainerConfigError"
                )
            })
            .map(|w| {
                format!(
                    "pod {} container {}: {}{}",
                    w.pod,
                    w.container,
                    w.reason,
                    w.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            })
    }
}

/// A FlinkStateSnapshot of a job (labelled `job-reference.kind` / `.name`), as far as the
/// snapshot triggers and the history need it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSnapshot {
    pub name: String,
    /// `metadata.creationTimestamp`, ms since the epoch.
    pub created_ms: i64,
    /// A savepoint (else a checkpoint).
    pub savepoint: bool,
    /// Its `snapshot.trigger-type` label (a user's own: `Manual`).
    pub trigger_type: flink_api::SnapshotTriggerType,
    pub completed: bool,
    /// Where the snapshot is (`status.path`, or the path of an `alreadyExists` savepoint).
    pub path: Option<String>,
    /// The nonce it was created for (our annotation).
    pub nonce: Option<i64>,
    /// Being deleted.
    pub deleting: bool,
}

/// What Flink counts for a job since it was submitted; a counter Flink did not answer is `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobCounters {
    /// The job metric `numRestarts`.
    pub restarts: Option<i64>,
    /// Completed checkpoints (`GET /jobs/:id/checkpoints`, `counts.completed`).
    pub completed_checkpoints: Option<i64>,
    /// When the latest checkpoint completed (ms since the epoch).
    pub last_checkpoint_at: Option<i64>,
}

/// An asynchronous Flink operation (savepoint) as last seen.
#[derive(Clone, Debug, PartialEq)]
pub enum ObservedOperation {
    InProgress,
    Completed(String),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObservedCheckpoint {
    pub path: String,
    /// Milliseconds since the epoch.
    pub completed_at: i64,
}

impl ObservedCluster {
    /// Nothing of the cluster runs any more.
    pub fn is_gone(&self) -> bool {
        self.job_manager.is_none() && self.task_manager.is_none() && self.pods == 0
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedDeployment {
    /// The spec generation it was rendered from (our annotation), if it carries one.
    pub generation: Option<i64>,
    /// The operator's redeploy of that generation it is (our annotation; 0 when absent).
    pub revision: i64,
    pub replicas: i32,
    pub ready_replicas: i32,
    pub deleting: bool,
}

/// What Flink's REST API said.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ObservedFlink {
    /// Not asked: no JobManager is ready to answer.
    #[default]
    NotAsked,
    Unreachable(String),
    Reachable {
        jobs: Vec<ObservedJob>,
        /// From `GET /config`, when it was asked.
        flink_version: Option<String>,
        flink_revision: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObservedJob {
    pub id: String,
    pub name: String,
    pub state: FlinkJobState,
    /// Milliseconds since the epoch.
    pub start_time: i64,
    pub last_modification: i64,
}

/// A session job as observed: its session cluster and the jobs running in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedSessionJob {
    pub cluster: SessionCluster,
    /// The session cluster's own flat `flinkConfiguration` (what its Flink runs with), which a
    /// session job's settings start from, as upstream's.
    pub cluster_configuration: BTreeMap<String, String>,
    /// The Flink configuration the session cluster's spec renders (its TaskManagers' slots,
    /// CPU and memory, for the autoscaler's quota); empty unless the job is autoscaled.
    pub cluster_rendered: BTreeMap<String, String>,
    /// Every job of the cluster (`GET /jobs/overview`), when it answered.
    pub jobs: Option<Vec<ObservedJob>>,
    /// The cluster did not answer.
    pub unreachable: Option<String>,
    /// The result of the stop-with-savepoint the status records, when one is awaited.
    pub savepoint: Option<ObservedOperation>,
    /// The recorded job's latest completed checkpoint, when a last-state upgrade needs it.
    pub latest_checkpoint: Option<ObservedCheckpoint>,
    /// The recorded job's restart and checkpoint counters, when the health checks or the
    /// stability rules need them.
    pub counters: Option<JobCounters>,
    /// The result of the manual or periodic savepoint the status records, when one is awaited.
    pub snapshot: Option<ObservedOperation>,
    /// The result of the manual or periodic checkpoint the status records, when one is awaited.
    pub checkpoint: Option<ObservedOperation>,
    /// The FlinkStateSnapshots of this job, when snapshots are resources and one may be due.
    pub snapshots: Option<Vec<JobSnapshot>>,
    /// Why the recorded job failed, when it did and the status does not say so yet.
    pub job_failure: Option<JobFailure>,
    /// The recorded job's exception history, for its `JobException` events.
    pub exceptions: Option<super::job_exceptions::ObservedExceptions>,
}

impl ObservedSessionJob {
    pub fn jobs(&self) -> &[ObservedJob] {
        self.jobs.as_deref().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum SessionCluster {
    /// No FlinkDeployment of that name in the namespace.
    #[default]
    Missing,
    /// It exists but is an application cluster.
    NotSession,
    /// It exists and is a session cluster; `ready` when its JobManager answers.
    Present { ready: bool, deleting: bool },
}

/// The job a resource runs among a cluster's jobs: the recorded id, else the newest job.
pub fn current_job<'j>(jobs: &'j [ObservedJob], recorded: Option<&str>) -> Option<&'j ObservedJob> {
    match recorded {
        Some(id) => jobs.iter().find(|j| j.id == id),
        None => jobs.iter().max_by_key(|j| j.start_time),
    }
}

/// A job of `GET /jobs/overview` as the operator sees it: its state, except that a job Flink
/// calls RUNNING while some of its tasks are not (no TaskManager has taken them yet, as in
/// native mode before Flink's pods start) is CREATED, as upstream's `JobStatusUtils` does.
pub fn overview_job(job: flink_rest::model::JobSummary) -> Option<ObservedJob> {
    let mut state = job_state(job.state)?;
    if state == FlinkJobState::Running
        && let Some(tasks) = &job.tasks
        && tasks.running + tasks.finished < tasks.total
    {
        state = FlinkJobState::Created;
    }
    Some(ObservedJob {
        id: job.jid,
        name: job.name,
        state,
        start_time: job.start_time,
        last_modification: job.last_modification,
    })
}

/// Flink's job state in the CRD's terms.
pub fn job_state(state: flink_rest::model::JobState) -> Option<FlinkJobState> {
    use flink_rest::model::JobState as S;
    Some(match state {
        S::Initializing => FlinkJobState::Initializing,
        S::Created => FlinkJobState::Created,
        S::Running => FlinkJobState::Running,
        S::Failing => FlinkJobState::Failing,
        S::Failed => FlinkJobState::Failed,
        S::Cancelling => FlinkJobState::Cancelling,
        S::Canceled => FlinkJobState::Canceled,
        S::Finished => FlinkJobState::Finished,
        S::Restarting => FlinkJobState::Restarting,
        S::Suspended => FlinkJobState::Suspended,
        S::Reconciling => FlinkJobState::Reconciling,
        S::Unknown => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_whose_tasks_do_not_all_run_is_created() {
        let job = |running, finished| {
            serde_json::from_value::<flink_rest::model::JobSummary>(serde_json::json!({
                "jid": "j", "name": "n", "state": "RUNNING", "start-time": 1,
                "last-modification": 2,
                "tasks": {"total": 4, "running": running, "finished": finished, "scheduled": 4 - running - finished}
            }))
            .expect("overview entry")
        };
        let state = |running, finished| overview_job(job(running, finished)).map(|j| j.state);
        assert_eq!(state(0, 0), Some(FlinkJobState::Created));
        assert_eq!(state(3, 0), Some(FlinkJobState::Created));
        assert_eq!(state(3, 1), Some(FlinkJobState::Running));
        assert_eq!(state(4, 0), Some(FlinkJobState::Running));
    }
}
