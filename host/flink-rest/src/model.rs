//! Request and response bodies of the Flink REST API. Fields that only one of Flink 1.x and 2.x
//! sends are optional; unknown fields are ignored so newer Flink versions still read.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /config`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterConfig {
    pub flink_version: String,
    #[serde(default)]
    pub flink_revision: Option<String>,
    #[serde(default)]
    pub timezone_name: Option<String>,
}

/// `GET /taskmanagers`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct TaskManagers {
    #[serde(default)]
    pub taskmanagers: Vec<TaskManagerSummary>,
}

/// One registered TaskManager: its resource id (`taskmanager.resource-id`, which the operator
/// sets to the pod's name) and how many of its slots are free.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerSummary {
    pub id: String,
    pub slots_number: u32,
    pub free_slots: u32,
    /// How its memory was sized (`memoryConfiguration`; Flink 1.12+).
    #[serde(default)]
    pub memory_configuration: Option<TaskManagerMemoryConfiguration>,
}

/// A TaskManager's memory as it runs (bytes).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerMemoryConfiguration {
    #[serde(default)]
    pub total_process_memory: Option<u64>,
}

impl TaskManagerSummary {
    /// No task runs on it.
    pub fn is_idle(&self) -> bool {
        self.free_slots >= self.slots_number
    }
}

/// A job's state as Flink reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Initializing,
    Created,
    Running,
    Failing,
    Failed,
    Cancelling,
    Canceled,
    Finished,
    Restarting,
    Suspended,
    Reconciling,
    /// A state this client does not know (a newer Flink), or none was read.
    #[serde(other)]
    #[default]
    Unknown,
}

impl JobState {
    /// The job will not run again on its own.
    pub fn is_globally_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Canceled | Self::Finished)
    }
}

/// `GET /jobs/overview`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct JobsOverview {
    pub jobs: Vec<JobSummary>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobSummary {
    pub jid: String,
    pub name: String,
    pub state: JobState,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub duration: i64,
    #[serde(default)]
    pub last_modification: i64,
    /// How many of the job's tasks are in each state.
    #[serde(default)]
    pub tasks: Option<TaskCounts>,
}

/// A job's tasks by state (`tasks` of `GET /jobs/overview`), as far as the operator reads it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct TaskCounts {
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub running: i64,
    #[serde(default)]
    pub finished: i64,
}

/// `GET /jobs/:id`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobDetails {
    pub jid: String,
    pub name: String,
    pub state: JobState,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub duration: i64,
    #[serde(default)]
    pub now: i64,
    /// `STREAMING` or `BATCH` (absent before 1.17).
    #[serde(default)]
    pub job_type: Option<String>,
    /// `Adaptive` or `Default` (2.x).
    #[serde(default, rename = "schedulerType")]
    pub scheduler_type: Option<String>,
    #[serde(default, rename = "maxParallelism")]
    pub max_parallelism: Option<i64>,
    /// When the job entered each state (0 = never).
    #[serde(default)]
    pub timestamps: BTreeMap<String, i64>,
    #[serde(default)]
    pub vertices: Vec<JobVertex>,
    #[serde(default)]
    pub plan: Option<JobPlan>,
}

impl JobDetails {
    /// Edges of the job graph as `(upstream vertex, downstream vertex, ship strategy)`.
    pub fn edges(&self) -> Vec<(String, String, String)> {
        self.plan
            .iter()
            .flat_map(|p| &p.nodes)
            .flat_map(|node| {
                node.inputs.iter().map(move |input| {
                    (
                        input.id.clone(),
                        node.id.clone(),
                        input.ship_strategy.clone(),
                    )
                })
            })
            .collect()
    }

    pub fn vertex(&self, id: &str) -> Option<&JobVertex> {
        self.vertices.iter().find(|v| v.id == id)
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct JobVertex {
    pub id: String,
    pub name: String,
    pub parallelism: i32,
    #[serde(default, rename = "maxParallelism")]
    pub max_parallelism: Option<i32>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct JobPlan {
    #[serde(default)]
    pub nodes: Vec<PlanNode>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PlanNode {
    pub id: String,
    #[serde(default)]
    pub parallelism: i32,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub inputs: Vec<PlanInput>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PlanInput {
    pub id: String,
    #[serde(default)]
    pub ship_strategy: String,
    #[serde(default)]
    pub exchange: Option<String>,
}

/// Savepoint file format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SavepointFormat {
    #[default]
    Canonical,
    Native,
}

/// `POST /jobs/:id/stop`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    /// Absent: the cluster's savepoint directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_directory: Option<String>,
    /// Emit MAX_WATERMARK first (ends event-time windows); usually false for upgrades.
    pub drain: bool,
    pub format_type: SavepointFormat,
    /// Makes the trigger idempotent: a retry with the same id is the same savepoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<crate::TriggerId>,
}

/// `POST /jobs/:id/savepoints`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SavepointRequest {
    #[serde(rename = "target-directory", skip_serializing_if = "Option::is_none")]
    pub target_directory: Option<String>,
    #[serde(rename = "cancel-job")]
    pub cancel_job: bool,
    #[serde(rename = "formatType")]
    pub format_type: SavepointFormat,
    #[serde(rename = "triggerId", skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<crate::TriggerId>,
}

/// Checkpoint kind for a manual checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointKind {
    /// Whatever the job is configured with.
    #[default]
    Configured,
    Full,
    Incremental,
}

/// The answer to a trigger: the id to poll.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct TriggerResponse {
    #[serde(rename = "request-id")]
    pub request_id: String,
}

/// The raw status of an asynchronous operation.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct AsyncOperation {
    pub status: AsyncStatus,
    #[serde(default)]
    pub operation: Option<OperationResult>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct AsyncStatus {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct OperationResult {
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default, rename = "checkpointId")]
    pub checkpoint_id: Option<i64>,
    #[serde(default, rename = "failure-cause")]
    pub failure_cause: Option<FailureCause>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct FailureCause {
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default, rename = "stack-trace")]
    pub stack_trace: Option<String>,
}

impl FailureCause {
    /// The most specific line of the cause, without class names.
    pub fn message(&self) -> String {
        let trace = self.stack_trace.clone().unwrap_or_default();
        let wrapped = serde_json::json!({ "errors": [trace] }).to_string();
        crate::error::flink_message(wrapped.as_bytes())
            .or_else(|| self.class.clone())
            .unwrap_or_else(|| "no cause given".into())
    }
}

/// Where an asynchronous operation stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation<T> {
    InProgress,
    Completed(T),
    Failed { cause: String },
}

/// `GET /jobs/:id/checkpoints`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CheckpointStatistics {
    pub counts: CheckpointCounts,
    #[serde(default)]
    pub latest: LatestCheckpoints,
    #[serde(default)]
    pub history: Vec<CheckpointDetails>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct CheckpointCounts {
    #[serde(default)]
    pub restored: i64,
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub in_progress: i64,
    #[serde(default)]
    pub completed: i64,
    #[serde(default)]
    pub failed: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct LatestCheckpoints {
    #[serde(default)]
    pub completed: Option<CheckpointDetails>,
    #[serde(default)]
    pub savepoint: Option<CheckpointDetails>,
    #[serde(default)]
    pub failed: Option<CheckpointDetails>,
    #[serde(default)]
    pub restored: Option<RestoredCheckpoint>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CheckpointDetails {
    pub id: i64,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub is_savepoint: bool,
    #[serde(default)]
    pub trigger_timestamp: i64,
    #[serde(default)]
    pub latest_ack_timestamp: i64,
    #[serde(default)]
    pub failure_timestamp: Option<i64>,
    #[serde(default)]
    pub failure_message: Option<String>,
    #[serde(default)]
    pub external_path: Option<String>,
    #[serde(default)]
    pub checkpoint_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RestoredCheckpoint {
    pub id: i64,
    #[serde(default)]
    pub restore_timestamp: i64,
    #[serde(default)]
    pub is_savepoint: bool,
    #[serde(default)]
    pub external_path: Option<String>,
}

/// `GET /jobs/:id/exceptions`: 2.x has only the history; 1.x also the root exception.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct JobExceptions {
    #[serde(default, rename = "root-exception")]
    pub root_exception: Option<String>,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default, rename = "exceptionHistory")]
    pub exception_history: Option<ExceptionHistory>,
}

impl JobExceptions {
    /// The newest exception, whichever way this Flink reports it.
    pub fn latest(&self) -> Option<ExceptionEntry> {
        let from_history = self
            .exception_history
            .as_ref()
            .and_then(|h| h.entries.iter().max_by_key(|e| e.timestamp));
        from_history.cloned().or_else(|| {
            self.root_exception
                .as_ref()
                .map(|stacktrace| ExceptionEntry {
                    exception_name: stacktrace.lines().next().unwrap_or_default().to_string(),
                    stacktrace: stacktrace.clone(),
                    timestamp: self.timestamp.unwrap_or_default(),
                    task_name: None,
                })
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ExceptionHistory {
    #[serde(default)]
    pub entries: Vec<ExceptionEntry>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionEntry {
    pub exception_name: String,
    #[serde(default)]
    pub stacktrace: String,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub task_name: Option<String>,
}

impl ExceptionEntry {
    /// The most specific message of the exception (its last `Caused by:`), without class names.
    pub fn message(&self) -> String {
        let message = crate::error::most_specific(&self.stacktrace);
        if message.is_empty() {
            self.exception_name.clone()
        } else {
            message
        }
    }
}

/// One metric value (`?get=` without aggregation).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Metric {
    pub id: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// Aggregations Flink computes over subtasks or TaskManagers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregation {
    Min,
    Max,
    Avg,
    Sum,
    Skew,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
            Self::Avg => "avg",
            Self::Sum => "sum",
            Self::Skew => "skew",
        }
    }
}

/// One aggregated metric; only the requested aggregations are present. Flink writes a value
/// it could not compute (a gauge that has not reported yet) as the string `"NaN"`: that is
/// read as absent, never as a number.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct AggregatedMetric {
    pub id: String,
    #[serde(default, deserialize_with = "finite_or_absent")]
    pub min: Option<f64>,
    #[serde(default, deserialize_with = "finite_or_absent")]
    pub max: Option<f64>,
    #[serde(default, deserialize_with = "finite_or_absent")]
    pub avg: Option<f64>,
    #[serde(default, deserialize_with = "finite_or_absent")]
    pub sum: Option<f64>,
    #[serde(default, deserialize_with = "finite_or_absent")]
    pub skew: Option<f64>,
}

/// A number, or None for `null`, `"NaN"`, `"Infinity"` and other non-finite answers.
fn finite_or_absent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(v)) if v.is_finite() => Some(v),
        Some(Value::Text(text)) => text.parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => None,
    })
}

impl AggregatedMetric {
    pub fn get(&self, aggregation: Aggregation) -> Option<f64> {
        match aggregation {
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            Aggregation::Avg => self.avg,
            Aggregation::Sum => self.sum,
            Aggregation::Skew => self.skew,
        }
    }
}

/// `POST /jars/:id/run`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JarRunRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_class: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub program_args_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    /// Fixed by the caller so a retried submission cannot start the job twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<crate::JobId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_non_restored_state: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub savepoint_path: Option<String>,
    /// Job-level configuration (Flink 1.19+).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub flink_configuration: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct JarUploadResponse {
    pub filename: String,
}

/// `GET /jars`: the jars uploaded to the cluster and not deleted.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UploadedJars {
    #[serde(default)]
    pub files: Vec<UploadedJar>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UploadedJar {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct JarRunResponse {
    pub jobid: String,
}

/// `GET|PUT /jobs/:id/resource-requirements`: per vertex id, the parallelism bounds.
pub type ResourceRequirements = BTreeMap<String, VertexRequirements>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexRequirements {
    pub parallelism: ParallelismBounds,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParallelismBounds {
    pub lower_bound: i32,
    pub upper_bound: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_flink_could_not_compute_is_absent_not_a_number() {
        let body = r#"[{"id":"busyTimeMsPerSecond","max":"NaN","avg":"NaN","sum":"NaN"},{"id":"numRecordsIn","max":12.0,"sum":"30"}]"#;
        let metrics: Vec<AggregatedMetric> = serde_json::from_str(body).unwrap();
        assert_eq!(metrics[0].get(Aggregation::Max), None);
        assert_eq!(metrics[1].get(Aggregation::Max), Some(12.0));
        assert_eq!(metrics[1].get(Aggregation::Sum), Some(30.0));
    }

    #[test]
    fn flink_1x_exceptions_with_only_a_root_exception_are_read() {
        let body = r#"{"root-exception":"java.lang.RuntimeException: boom\n\tat X","timestamp":17,"all-exceptions":[],"truncated":false}"#;
        let exceptions: JobExceptions = serde_json::from_str(body).unwrap();
        let latest = exceptions.latest().unwrap();
        assert_eq!(latest.exception_name, "java.lang.RuntimeException: boom");
        assert_eq!(latest.timestamp, 17);
    }

    #[test]
    fn flink_2x_exception_history_gives_the_newest_entry() {
        let body = r#"{"exceptionHistory":{"entries":[{"exceptionName":"a","stacktrace":"s","timestamp":1},{"exceptionName":"b","stacktrace":"s","timestamp":5}],"truncated":false}}"#;
        let exceptions: JobExceptions = serde_json::from_str(body).unwrap();
        assert_eq!(exceptions.latest().unwrap().exception_name, "b");
    }

    #[test]
    fn job_details_of_older_flink_without_newer_fields_are_read() {
        let body = r#"{"jid":"j","name":"n","state":"RUNNING","start-time":1,"end-time":-1,"duration":5,"now":6,
            "timestamps":{"RUNNING":1},"vertices":[{"id":"v","name":"Source","parallelism":2}],
            "plan":{"jid":"j","name":"n","nodes":[{"id":"v","parallelism":2,"description":"d"}]}}"#;
        let details: JobDetails = serde_json::from_str(body).unwrap();
        assert_eq!(details.job_type, None);
        assert_eq!(details.vertices[0].max_parallelism, None);
        assert!(details.edges().is_empty());
    }

    #[test]
    fn unknown_job_states_of_newer_flink_do_not_break_reading() {
        let state: JobState = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(state, JobState::Unknown);
    }

    #[test]
    fn a_failed_savepoint_reports_its_most_specific_cause() {
        let cause = FailureCause {
            class: Some("java.util.concurrent.CompletionException".into()),
            stack_trace: Some("java.util.concurrent.CompletionException: x\nCaused by: java.io.IOException: Target directory is not writable\n\tat Y".into()),
        };
        assert_eq!(cause.message(), "Target directory is not writable");
    }
}
