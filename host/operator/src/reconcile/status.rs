//! Status fields computed from the rest of the status: the lifecycle state (upstream's rules),
//! the `Running` condition, and the error JSON.

use super::observed::ObservedJob;
use flink_api::{
    FlinkJobState, JobState, JobStatus, ReconciliationState, ReconciliationStatus,
    ResourceLifecycleState,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::json;

/// The lifecycle state upstream computes from the status (`getLifecycleState`).
pub fn lifecycle(
    reconciliation: Option<&ReconciliationStatus>,
    reconciled_job_state: Option<JobState>,
    job_state: Option<FlinkJobState>,
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
    if job_state == Some(FlinkJobState::Failed) {
        return L::Failed;
    }
    if reconciliation.state == ReconciliationState::RolledBack {
        return L::RolledBack;
    }
    if reconciliation.last_stable_spec.is_some()
        && reconciliation.last_stable_spec == reconciliation.last_reconciled_spec
    {
        return L::Stable;
    }
    L::Deployed
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

/// The `error` field: JSON with a type and a message, like upstream's serialized exceptions.
pub fn error_json(kind: &str, message: &str) -> String {
    json!({"type": kind, "message": message}).to_string()
}

/// The message of an `error` field, whatever wrote it.
pub fn error_message(error: &str) -> String {
    serde_json::from_str::<serde_json::Value>(error)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| error.to_string())
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
        assert_eq!(lifecycle(None, None, None, false), L::Created);
        assert_eq!(lifecycle(None, None, None, true), L::Deleting);
        let upgrading = reconciled(ReconciliationState::Upgrading, false);
        assert_eq!(lifecycle(Some(&upgrading), None, None, false), L::Upgrading);
        let deployed = reconciled(ReconciliationState::Deployed, false);
        assert_eq!(
            lifecycle(Some(&deployed), Some(JobState::Suspended), None, false),
            L::Suspended
        );
        assert_eq!(
            lifecycle(Some(&deployed), None, Some(FlinkJobState::Failed), false),
            L::Failed
        );
        assert_eq!(
            lifecycle(Some(&deployed), None, Some(FlinkJobState::Running), false),
            L::Deployed
        );
        let stable = reconciled(ReconciliationState::Deployed, true);
        assert_eq!(
            lifecycle(Some(&stable), None, Some(FlinkJobState::Running), false),
            L::Stable
        );
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
