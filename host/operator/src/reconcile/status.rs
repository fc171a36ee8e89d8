//! Status fields computed from the rest of the status: the lifecycle state (upstream's rules),
//! the `Running` condition, and the error JSON.

use super::observed::ObservedJob;
use super::reconciled_spec::ReconciledSpec;
use super::{Note, Reason};
use flink_api::{
    FlinkJobState, JobState, JobStatus, PolicyDecision, ReconciliationState, ReconciliationStatus,
    ResourceLifecycleState,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::json;

/// The lifecycle state upstream computes from the status (`getLifecycleState`), and one rule
/// beyond it: a cluster that cannot run (`cluster_failed`: its JobManager crash-loops, its image
/// cannot be pulled, its Deployment is missing and cannot be recovered) is `FAILED` while it does
/// not run, where upstream keeps saying `STABLE` once the spec was stable.
pub fn lifecycle(
    reconciliation: Option<&ReconciliationStatus>,
    reconciled_job_state: Option<JobState>,
    job_state: Option<FlinkJobState>,
    cluster_failed: bool,
    deleting: bool,
) -> ResourceLifecycleState {
    use ResourceLifecycleState as L;
    if deleting {
        return L::Deleting;
    }
    let Some(reconciliation) = reconciliation.filter(|r| r.last_reconciled_spec.is_some()) else {
        return L::Created;
    };
    match reconciliation.state {
        ReconciliationState::Upgrading => return L::Upgrading,
        ReconciliationState::RollingBack => return L::RollingBack,
        _ => {}
    }
    if reconciled_job_state == Some(JobState::Suspended) {
        return L::Suspended;
    }
    if job_state == Some(FlinkJobState::Failed) || cluster_failed {
        return L::Failed;
    }
    if reconciliation.state == ReconciliationState::RolledBack {
        return L::RolledBack;
    }
    if is_stable(reconciliation) {
        return L::Stable;
    }
    L::Deployed
}

/// The spec recorded as deployed is also the last stable one.
pub fn is_stable(reconciliation: &ReconciliationStatus) -> bool {
    reconciliation.last_stable_spec.is_some()
        && reconciliation.last_stable_spec == reconciliation.last_reconciled_spec
}

/// A job state as Flink and the CRD spell it (`RUNNING`).
pub fn state_name(state: FlinkJobState) -> &'static str {
    use FlinkJobState as S;
    match state {
        S::Canceled => "CANCELED",
        S::Cancelling => "CANCELLING",
        S::Created => "CREATED",
        S::Failed => "FAILED",
        S::Failing => "FAILING",
        S::Finished => "FINISHED",
        S::Initializing => "INITIALIZING",
        S::Reconciling => "RECONCILING",
        S::Restarting => "RESTARTING",
        S::Running => "RUNNING",
        S::Suspended => "SUSPENDED",
    }
}

/// How the `error` field is shaped, upstream's `kubernetes.operator.exception.*` (from the
/// operator ConfigMap): each field's length (`field.max.length`, 2048), Flink's Java stack
/// trace when there is one (`stacktrace.enabled`, off; `stacktrace.max.length`, 2048), how many
/// of its causes are listed (`throwable.list.max.count`, 2), and the labels whose regular
/// expression matches the message or a cause's (`label.mapper`).
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorShape {
    pub field_max: usize,
    /// None: no stack trace; Some(n): at most n characters of it.
    pub stack_trace_max: Option<usize>,
    pub throwables_max: usize,
    pub labels: LabelMapper,
}

impl Default for ErrorShape {
    fn default() -> Self {
        Self {
            field_max: 2048,
            stack_trace_max: None,
            throwables_max: 2,
            labels: LabelMapper::default(),
        }
    }
}

/// `exception.label.mapper`: a regular expression and the label it gives, in the order set.
#[derive(Clone, Debug, Default)]
pub struct LabelMapper(pub Vec<(regex::Regex, String)>);

impl PartialEq for LabelMapper {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((a, x), (b, y))| a.as_str() == b.as_str() && x == y)
    }
}

/// The `error` field in upstream's shape (`FlinkResourceException` as JSON): `type`, `message`,
/// `stackTrace` (when enabled and there is one), `additionalMetadata` (the mapped `labels`) and
/// `throwableList` (the `Caused by:` chain of Flink's stack trace, each a type and a message).
/// The types are ours (`JobFailed`, `ValidationError`, ...), not Java class names; a cause's
/// type is its Java class, as Flink reports it.
pub fn error_json(kind: &str, message: &str, trace: Option<&str>, shape: &ErrorShape) -> String {
    let cut = |text: &str, max: usize| -> String { text.chars().take(max).collect() };
    // Labels are looked for in the whole chain, before anything is cut, as upstream's
    // `findThrowable`; a listed cause gets those of itself and its own causes.
    let causes = trace.map(causes_of).unwrap_or_default();
    let labels_of = |messages: &mut dyn Iterator<Item = &str>| -> serde_json::Value {
        let messages: Vec<&str> = messages.collect();
        let labels: Vec<&str> = shape
            .labels
            .0
            .iter()
            .filter(|(pattern, _)| messages.iter().any(|m| pattern.is_match(m)))
            .map(|(_, label)| label.as_str())
            .collect();
        match labels.is_empty() {
            true => json!({}),
            false => json!({ "labels": labels }),
        }
    };
    let mut error = serde_json::Map::new();
    error.insert("type".into(), json!(cut(kind, shape.field_max)));
    error.insert("message".into(), json!(cut(message, shape.field_max)));
    if let (Some(max), Some(trace)) = (shape.stack_trace_max, trace.filter(|t| !t.is_empty())) {
        error.insert("stackTrace".into(), json!(cut(trace, max)));
    }
    let mut all = std::iter::once(message).chain(causes.iter().map(|(_, m)| m.as_str()));
    error.insert("additionalMetadata".into(), labels_of(&mut all));
    let listed: Vec<serde_json::Value> = causes
        .iter()
        .enumerate()
        .take(shape.throwables_max)
        .map(|(i, (class, message))| {
            let mut own = causes[i..].iter().map(|(_, m)| m.as_str());
            json!({
                "type": cut(class, shape.field_max),
                "message": cut(message, shape.field_max),
                "additionalMetadata": labels_of(&mut own),
            })
        })
        .collect();
    error.insert("throwableList".into(), json!(listed));
    serde_json::Value::Object(error).to_string()
}

/// The causes in a Java stack trace, outermost first: each `Caused by: <class>: <message>` line
/// at the start of a line as its class and message (an indented one is inside a `Suppressed:`
/// block, not the cause chain).
fn causes_of(trace: &str) -> Vec<(String, String)> {
    trace
        .lines()
        .filter_map(|line| line.strip_prefix("Caused by: "))
        .map(|cause| match cause.split_once(": ") {
            Some((class, message)) => (class.trim().to_string(), message.trim().to_string()),
            None => (cause.trim().to_string(), String::new()),
        })
        .collect()
}

/// `by` (who decided) with an outcome and a message; a note already on `by` (a rejected newer
/// version of the binding) is kept after the message.
pub fn policy_decision(
    by: &PolicyDecision,
    outcome: &str,
    message: Option<String>,
) -> PolicyDecision {
    let message = match (message, &by.message) {
        (Some(message), Some(rejected)) => Some(format!("{message}; {rejected}")),
        (message, rejected) => message.or_else(|| rejected.clone()),
    };
    PolicyDecision {
        outcome: outcome.into(),
        message,
        ..by.clone()
    }
}

/// Puts `decision` into `status.policies` in place of its extension point's previous record;
/// whether it is news (for events).
pub fn record_policy(policies: &mut Vec<PolicyDecision>, decision: PolicyDecision) -> bool {
    let news = !policies.contains(&decision);
    policies.retain(|d| d.extension_point != decision.extension_point);
    policies.push(decision);
    policies.sort_by(|a, b| a.extension_point.cmp(&b.extension_point));
    news
}

/// Sets the `error` field; the first time a given error appears it also yields the warning
/// event to publish (`ValidationError` for invalid specs, `Error` otherwise).
pub fn report_error(
    error: &mut Option<String>,
    kind: &str,
    message: String,
    trace: Option<&str>,
    shape: &ErrorShape,
) -> Option<Note> {
    let json = error_json(kind, &message, trace, shape);
    // News by what it says (type and message), not its whole shape: an error stored in an
    // older shape, or before the `exception.*` settings changed, is not announced again.
    let said = |e: &str| (error_type(e), error_message(e));
    let new = error.as_deref().map(said) != Some(said(&json));
    *error = Some(json);
    new.then(|| {
        // Upstream's event reasons where it has one for the kind.
        let reason = match kind {
            "ValidationError" => Reason::ValidationError,
            "SavepointError" => Reason::SavepointError,
            _ => Reason::Error,
        };
        Note::warning(reason, message)
    })
}

/// Records `target` as deployed or being deployed (`Upgrading`, `RollingBack`), keeping the last
/// stable spec.
pub fn record_target<S: serde::Serialize + serde::de::DeserializeOwned>(
    reconciliation: &mut Option<ReconciliationStatus>,
    target: &ReconciledSpec<S>,
    state: ReconciliationState,
    now_ms: i64,
) {
    let previous = reconciliation.take().unwrap_or_default();
    *reconciliation = Some(ReconciliationStatus {
        reconciliation_timestamp: now_ms,
        last_reconciled_spec: Some(target.to_json()),
        last_stable_spec: previous.last_stable_spec,
        state,
    });
}

/// The reconciliation state a finished deploy leaves when it started in `state`: `ROLLED_BACK`
/// after a rollback, else `DEPLOYED`.
pub fn done_state(state: ReconciliationState) -> ReconciliationState {
    match state {
        ReconciliationState::RollingBack | ReconciliationState::RolledBack => {
            ReconciliationState::RolledBack
        }
        _ => ReconciliationState::Deployed,
    }
}

/// Moves the reconciliation state, stamping the time only when it changes.
pub fn set_state(
    reconciliation: &mut Option<ReconciliationStatus>,
    state: ReconciliationState,
    now_ms: i64,
) {
    if let Some(r) = reconciliation.as_mut()
        && r.state != state
    {
        r.state = state;
        r.reconciliation_timestamp = now_ms;
    }
}

/// The `JobStatusChanged` event when an observed job's state differs from the recorded one.
pub fn job_state_change(before: Option<FlinkJobState>, now: FlinkJobState) -> Option<Note> {
    (before != Some(now)).then(|| {
        Note::normal(
            Reason::JobStatusChanged,
            format!(
                "Job status changed from {} to {}",
                before.map_or("nothing", state_name),
                state_name(now)
            ),
        )
    })
}

/// The `ValidationError` message of a spec's problems, `None` when there are none; it says
/// whether the last valid spec keeps running (`deployed`).
pub fn validation_message(
    errors: &[flink_api::validation::FieldError],
    deployed: bool,
) -> Option<String> {
    if errors.is_empty() {
        return None;
    }
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let kept = if deployed {
        " The last valid spec keeps running."
    } else {
        ""
    };
    Some(format!("{message}.{kept}"))
}

/// Whether the `error` field already reports `kind` for `subject` (e.g. `JobFailed` for a job
/// id): what was said once need not be fetched again.
pub fn reports(error: Option<&str>, kind: &str, subject: &str) -> bool {
    error
        .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .is_some_and(|e| {
            e.get("type").and_then(|t| t.as_str()) == Some(kind)
                && e.get("message")
                    .and_then(|m| m.as_str())
                    .is_some_and(|m| m.contains(subject))
        })
}

/// The message of an `error` field, whatever wrote it.
pub fn error_message(error: &str) -> String {
    serde_json::from_str::<serde_json::Value>(error)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| error.to_string())
}

/// The job was not seen this reconcile because its JobManager is missing, not ready or failing:
/// a state that says the job lives (`RUNNING`, `RESTARTING`, ...) becomes `RECONCILING`, as
/// upstream's observer does, so the status never claims a job that nothing runs. Terminal states
/// and the ones an upgrade wrote (`SUSPENDED`, `CANCELLING`) stay.
pub fn job_not_seen(job: Option<&mut JobStatus>) {
    use FlinkJobState as S;
    if let Some(job) = job
        && matches!(
            job.state,
            Some(S::Running | S::Restarting | S::Failing | S::Created | S::Initializing)
        )
    {
        job.state = Some(S::Reconciling);
    }
}

/// The `type` of an `error` field, whatever wrote it.
pub fn error_type(error: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(error)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
}

/// The job status after observing `job`; untouched fields (savepoint info …) are kept.
pub fn observe_job(previous: Option<&JobStatus>, job: &ObservedJob) -> JobStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.job_id = Some(job.id.clone());
    status.job_name = Some(job.name.clone());
    if status.state != Some(job.state) {
        status.update_time = Some(job.last_modification.to_string());
    }
    status.state = Some(job.state);
    status.start_time = Some(job.start_time.to_string());
    status
}

/// Sets the `Running` condition, keeping its transition time when its status does not change.
pub fn set_running_condition(
    conditions: &mut Vec<Condition>,
    running: bool,
    reason: &str,
    message: &str,
    generation: i64,
    now_ms: i64,
) {
    let status = if running { "True" } else { "False" };
    let previous = conditions.iter().find(|c| c.type_ == "Running");
    let transition = match previous {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(jiff::Timestamp::from_millisecond(now_ms).unwrap_or_default()),
    };
    let condition = Condition {
        type_: "Running".into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(generation),
        last_transition_time: transition,
    };
    conditions.retain(|c| c.type_ != "Running");
    conditions.push(condition);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "org.apache.flink.runtime.JobException: Recovery is suppressed\n\tat org.apache.flink.X.y(X.java:1)\n\tSuppressed: java.io.IOException: close failed\n\t\tCaused by: java.lang.Error: not in the chain\nCaused by: java.lang.ArithmeticException: / by zero\n\tat Job.map(Job.java:9)\nCaused by: java.lang.IllegalStateException\n";

    #[test]
    fn the_error_takes_upstreams_shape_within_the_operators_limits() {
        let parse = |shape: &ErrorShape| -> serde_json::Value {
            serde_json::from_str(&error_json(
                "JobFailed",
                "job 1 failed: / by zero",
                Some(TRACE),
                shape,
            ))
            .expect("JSON")
        };
        let default = parse(&ErrorShape::default());
        assert_eq!(default["type"], "JobFailed");
        assert_eq!(default["message"], "job 1 failed: / by zero");
        assert!(default.get("stackTrace").is_none(), "off by default");
        assert_eq!(default["additionalMetadata"], json!({}));
        assert_eq!(
            default["throwableList"],
            json!([
                {"type": "java.lang.ArithmeticException", "message": "/ by zero", "additionalMetadata": {}},
                {"type": "java.lang.IllegalStateException", "message": "", "additionalMetadata": {}},
            ])
        );
        let shape = ErrorShape {
            field_max: 8,
            stack_trace_max: Some(20),
            throwables_max: 1,
            labels: LabelMapper(vec![
                (
                    regex::Regex::new(r"/ by \w+").expect("regex"),
                    "math".into(),
                ),
                (
                    regex::Regex::new("IllegalState").expect("regex"),
                    "never".into(),
                ),
                (regex::Regex::new("^job").expect("regex"), "job".into()),
            ]),
        };
        let shaped = parse(&shape);
        assert_eq!(shaped["message"], "job 1 fa", "cut to the field length");
        assert_eq!(shaped["stackTrace"], "org.apache.flink.run");
        assert_eq!(shaped["throwableList"].as_array().map(Vec::len), Some(1));
        assert_eq!(shaped["throwableList"][0]["type"], "java.lan");
        // "math" matches the kept cause's message; the cut message still starts with "job";
        // the cause that was left out is not looked at.
        assert_eq!(
            shaped["additionalMetadata"]["labels"],
            json!(["math", "job"])
        );
        // An error without a trace has an empty cause list.
        let plain: serde_json::Value =
            serde_json::from_str(&error_json("ValidationError", "bad", None, &shape))
                .expect("JSON");
        assert_eq!(plain["throwableList"], json!([]));
        assert!(plain.get("stackTrace").is_none());
    }

    fn reconciled(state: ReconciliationState, stable: bool) -> ReconciliationStatus {
        ReconciliationStatus {
            reconciliation_timestamp: 1,
            last_reconciled_spec: Some("a".into()),
            last_stable_spec: stable.then(|| "a".into()),
            state,
        }
    }

    #[test]
    fn lifecycle_follows_upstreams_order() {
        use ResourceLifecycleState as L;
        assert_eq!(lifecycle(None, None, None, false, false), L::Created);
        assert_eq!(lifecycle(None, None, None, false, true), L::Deleting);
        let upgrading = reconciled(ReconciliationState::Upgrading, false);
        assert_eq!(
            lifecycle(Some(&upgrading), None, None, false, false),
            L::Upgrading
        );
        let deployed = reconciled(ReconciliationState::Deployed, false);
        assert_eq!(
            lifecycle(
                Some(&deployed),
                Some(JobState::Suspended),
                None,
                false,
                false
            ),
            L::Suspended
        );
        assert_eq!(
            lifecycle(
                Some(&deployed),
                None,
                Some(FlinkJobState::Failed),
                false,
                false
            ),
            L::Failed
        );
        assert_eq!(
            lifecycle(
                Some(&deployed),
                None,
                Some(FlinkJobState::Running),
                false,
                false
            ),
            L::Deployed
        );
        let stable = reconciled(ReconciliationState::Deployed, true);
        assert_eq!(
            lifecycle(
                Some(&stable),
                None,
                Some(FlinkJobState::Running),
                false,
                false
            ),
            L::Stable
        );
        assert_eq!(
            lifecycle(
                Some(&stable),
                None,
                Some(FlinkJobState::Reconciling),
                true,
                false
            ),
            L::Failed,
            "a stable spec whose cluster cannot run is FAILED"
        );
        assert_eq!(
            lifecycle(Some(&upgrading), None, None, true, false),
            L::Upgrading,
            "an upgrade under way says so"
        );
    }

    #[test]
    fn a_job_not_seen_is_no_longer_said_to_run() {
        let mut job = JobStatus {
            state: Some(FlinkJobState::Running),
            ..Default::default()
        };
        job_not_seen(Some(&mut job));
        assert_eq!(job.state, Some(FlinkJobState::Reconciling));
        for kept in [
            FlinkJobState::Finished,
            FlinkJobState::Failed,
            FlinkJobState::Suspended,
            FlinkJobState::Cancelling,
        ] {
            job.state = Some(kept);
            job_not_seen(Some(&mut job));
            assert_eq!(job.state, Some(kept));
        }
    }

    #[test]
    fn condition_keeps_its_transition_time_while_unchanged() {
        let mut conditions = Vec::new();
        set_running_condition(&mut conditions, true, "Running", "", 1, 1_000);
        set_running_condition(&mut conditions, true, "Running", "", 1, 9_000);
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time.0.as_millisecond(), 1_000);
        set_running_condition(&mut conditions, false, "Suspended", "", 2, 9_000);
        assert_eq!(conditions[0].last_transition_time.0.as_millisecond(), 9_000);
    }
}
