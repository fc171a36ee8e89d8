//! The decision for a FlinkStateSnapshot: one savepoint or checkpoint of a running job, taken
//! once (trigger id written ahead), polled to COMPLETED, retried up to `backoffLimit` times,
//! ABANDONED when its job is not running, and (`disposeOnDelete`) disposed of when deleted:
//! through Flink while the cluster runs, else directly for `file://` paths.

use super::observed::ObservedOperation;
use super::{Effect, Intervals, Note, Plan, Reason, job_id};
use flink_api::snapshot::{SnapshotState, labels};
use flink_api::{FlinkStateSnapshot, FlinkStateSnapshotStatus, SavepointFormatType};
use std::collections::BTreeMap;

/// Upstream's finalizer name.
pub const FINALIZER: &str = "flinkstatesnapshots.flink.apache.org/finalizer";

/// The job a snapshot refers to, as observed.
#[derive(Clone, Debug, PartialEq)]
pub enum SnapshotTarget {
    /// No such resource: why, naming the field.
    Missing(String),
    /// It exists but its job does not run (its state, or why).
    NotRunning(String),
    /// `cluster` is the FlinkDeployment whose REST API serves the job.
    Running { cluster: String, job_id: String },
    /// Not looked up: the snapshot is done and not being deleted, nothing needs its job
    /// (see [`needs_target`]).
    NotObserved,
}

/// Whether deciding needs the referenced job: while the snapshot is still to be taken, and when
/// it is deleted (disposal goes through its cluster). A finished snapshot's reconciles then
/// cost no request, however many of them the history keeps.
pub fn needs_target(resource: &FlinkStateSnapshot) -> bool {
    let finished = resource
        .status
        .as_ref()
        .and_then(|s| s.state)
        .is_some_and(|s| {
            matches!(
                s,
                SnapshotState::Completed | SnapshotState::Abandoned | SnapshotState::Failed
            )
        });
    resource.metadata.deletion_timestamp.is_some() || !finished
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObservedSnapshot {
    pub target: SnapshotTarget,
    /// The result of the recorded trigger, when one is pending.
    pub result: Option<ObservedOperation>,
}

pub fn decide(
    resource: &FlinkStateSnapshot,
    observed: &ObservedSnapshot,
    now_ms: i64,
    intervals: &Intervals,
) -> Plan<FlinkStateSnapshotStatus> {
    let mut plan = decide_status(resource, observed, now_ms, intervals);
    if resource.metadata.deletion_timestamp.is_none() {
        let wanted = labels(resource, &plan.status);
        let current = resource.metadata.labels.clone().unwrap_or_default();
        if wanted.iter().any(|(k, v)| current.get(k) != Some(v)) {
            plan.actions.push(Effect::SetLabels(wanted));
        }
    }
    plan
}

/// Upstream's labels, kept up to date so snapshots can be selected by job, kind, trigger and
/// state (`kubectl get flinksnp -l snapshot.state=COMPLETED,job-reference.name=keeper`).
pub fn labels(
    resource: &FlinkStateSnapshot,
    status: &FlinkStateSnapshotStatus,
) -> BTreeMap<String, String> {
    let current = resource.metadata.labels.as_ref();
    let mut wanted = BTreeMap::from([
        (
            labels::SNAPSHOT_TYPE.to_string(),
            match resource.spec.savepoint {
                Some(_) => "SAVEPOINT",
                None => "CHECKPOINT",
            }
            .to_string(),
        ),
        (
            labels::TRIGGER_TYPE.to_string(),
            labels::trigger_type(labels::trigger_type_of(
                current
                    .and_then(|l| l.get(labels::TRIGGER_TYPE))
                    .map(String::as_str),
            ))
            .to_string(),
        ),
    ]);
    if let Some(state) = status.state {
        let state = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        wanted.insert(labels::STATE.to_string(), state);
    }
    let reference = resource.spec.job_reference.as_ref();
    if let Some(kind) = reference.and_then(|r| r.kind) {
        wanted.insert(labels::JOB_KIND.to_string(), kind.as_str().to_string());
    }
    if let Some(name) = reference.and_then(|r| r.name.clone()) {
        wanted.insert(labels::JOB_NAME.to_string(), name);
    }
    wanted
}

fn decide_status(
    resource: &FlinkStateSnapshot,
    observed: &ObservedSnapshot,
    now_ms: i64,
    intervals: &Intervals,
) -> Plan<FlinkStateSnapshotStatus> {
    let mut status = resource.status.clone().unwrap_or_default();
    let mut plan = Plan {
        intent: None,
        actions: Vec::new(),
        status: status.clone(),
        notes: Vec::new(),
        requeue: intervals.reconcile,
    };
    let has_finalizer = resource
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    let savepoint = resource.spec.savepoint.as_ref();
    if resource.metadata.deletion_timestamp.is_some() {
        if !has_finalizer {
            return plan;
        }
        // A savepoint the user registered (`alreadyExists`) is theirs to keep: the operator
        // disposes only of what it took.
        let dispose = savepoint
            .is_some_and(|s| s.disposes_on_delete() && s.already_exists != Some(true))
            && status.state == Some(SnapshotState::Completed);
        if let (true, Some(path)) = (dispose, status.path.clone()) {
            plan.actions.push(match &observed.target {
                SnapshotTarget::Running { cluster, .. } => Effect::DisposeSavepoint {
                    cluster: cluster.clone(),
                    path,
                },
                _ => Effect::DeleteSavepointFiles { path },
            });
        }
        plan.actions.push(Effect::RemoveFinalizer);
        return plan;
    }
    if !has_finalizer {
        plan.actions.push(Effect::AddFinalizer);
    }
    if matches!(
        status.state,
        Some(SnapshotState::Completed | SnapshotState::Abandoned | SnapshotState::Failed)
    ) {
        return plan;
    }
    let errors = flink_api::validation::snapshot(resource);
    if let Some(message) = super::status::validation_message(&errors, false) {
        finish(
            &mut status,
            SnapshotState::Failed,
            None,
            Some(message.clone()),
            now_ms,
        );
        plan.notes
            .push(Note::warning(Reason::ValidationError, message));
        plan.status = status;
        return plan;
    }
    if let Some(savepoint) = savepoint.filter(|s| s.already_exists == Some(true)) {
        finish(
            &mut status,
            SnapshotState::Completed,
            savepoint.path.clone(),
            None,
            now_ms,
        );
        plan.status = status;
        return plan;
    }
    let kind = if savepoint.is_some() {
        "Savepoint"
    } else {
        "Checkpoint"
    };
    let Some(trigger) = status.trigger_id.clone() else {
        if let Some(wait) = retry_wait(&status, now_ms) {
            plan.requeue = wait;
            return plan;
        }
        match &observed.target {
            // Only a finished snapshot is not looked up; nothing to trigger without its job.
            SnapshotTarget::NotObserved => {}
            SnapshotTarget::Missing(why) => {
                finish(
                    &mut status,
                    SnapshotState::Failed,
                    None,
                    Some(why.clone()),
                    now_ms,
                );
                plan.notes
                    .push(Note::warning(Reason::SnapshotFailed, why.clone()));
            }
            SnapshotTarget::NotRunning(why) => {
                let message = format!("{kind} abandoned: {why}");
                finish(
                    &mut status,
                    SnapshotState::Abandoned,
                    None,
                    Some(message.clone()),
                    now_ms,
                );
                plan.notes
                    .push(Note::warning(Reason::SnapshotAbandoned, message));
            }
            SnapshotTarget::Running {
                cluster,
                job_id: job,
            } => {
                let uid = resource.metadata.uid.as_deref().unwrap_or_default();
                let trigger = job_id::trigger_id(uid, 0, status.failures);
                status.trigger_id = Some(trigger.clone());
                status.trigger_timestamp = Some(timestamp(now_ms));
                status.state = Some(SnapshotState::InProgress);
                status.error = None;
                plan.intent = Some(status.clone());
                plan.actions.push(match savepoint {
                    Some(s) => Effect::TriggerSavepoint {
                        cluster: cluster.clone(),
                        job_id: job.clone(),
                        trigger_id: trigger,
                        directory: s.path.clone(),
                        format: s.format_type.unwrap_or(SavepointFormatType::Canonical),
                    },
                    // Always FULL, as upstream's snapshot resources.
                    None => Effect::TriggerCheckpoint {
                        cluster: cluster.clone(),
                        job_id: job.clone(),
                        trigger_id: trigger,
                        kind: flink_api::CheckpointType::Full,
                    },
                });
                plan.requeue = intervals.progress;
            }
        }
        plan.status = status;
        return plan;
    };
    match &observed.result {
        Some(ObservedOperation::Completed(path)) => {
            finish(
                &mut status,
                SnapshotState::Completed,
                Some(path.clone()),
                None,
                now_ms,
            );
            plan.notes.push(Note::normal(
                Reason::SnapshotCompleted,
                format!("{kind} completed: {path}"),
            ));
        }
        Some(ObservedOperation::Failed(cause)) => {
            status.failures += 1;
            let limit = resource.spec.retries();
            let message = format!("{kind} {trigger} failed: {cause}");
            plan.notes
                .push(Note::warning(Reason::SnapshotFailed, message.clone()));
            if limit >= 0 && status.failures > limit {
                let attempts = status.failures;
                let error =
                    format!("{message}; gave up after {attempts} attempts (backoffLimit {limit})");
                finish(
                    &mut status,
                    SnapshotState::Failed,
                    None,
                    Some(error),
                    now_ms,
                );
            } else {
                status.trigger_id = None;
                status.state = Some(SnapshotState::TriggerPending);
                status.error = Some(message);
                plan.requeue = intervals.progress;
            }
        }
        _ => plan.requeue = intervals.progress,
    }
    plan.status = status;
    plan
}

/// Upstream's back-off between attempts: 10 s after the first failure, doubling (at most
/// 10 min); the time left before the next attempt, counted from the failed one's trigger.
fn retry_wait(status: &FlinkStateSnapshotStatus, now_ms: i64) -> Option<std::time::Duration> {
    if status.failures <= 0 {
        return None;
    }
    let triggered = status
        .trigger_timestamp
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())?
        .as_millisecond();
    let backoff = (10_000i64 << (status.failures - 1).min(6)).min(600_000);
    let left = triggered + backoff - now_ms;
    (left > 0).then(|| std::time::Duration::from_millis(left as u64))
}

fn finish(
    status: &mut FlinkStateSnapshotStatus,
    state: SnapshotState,
    path: Option<String>,
    error: Option<String>,
    now_ms: i64,
) {
    status.state = Some(state);
    if path.is_some() {
        status.path = path;
    }
    status.error = error;
    status.result_timestamp = Some(timestamp(now_ms));
}

fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan without its label update (`labels_follow_the_kind_the_job_and_the_state`).
    fn decided(
        resource: &FlinkStateSnapshot,
        observed: &ObservedSnapshot,
        now_ms: i64,
        intervals: &Intervals,
    ) -> Plan<FlinkStateSnapshotStatus> {
        let mut plan = decide(resource, observed, now_ms, intervals);
        plan.actions.retain(|a| !matches!(a, Effect::SetLabels(_)));
        plan
    }

    #[test]
    fn only_a_finished_snapshot_that_stays_is_decided_without_its_job() {
        let mut resource = snapshot(SAVEPOINT);
        assert!(needs_target(&resource), "to be taken");
        resource.status = Some(FlinkStateSnapshotStatus {
            state: Some(SnapshotState::Completed),
            path: Some("file:/tmp/sp/savepoint-1".into()),
            ..Default::default()
        });
        assert!(!needs_target(&resource), "done");
        let unobserved = ObservedSnapshot {
            target: SnapshotTarget::NotObserved,
            result: None,
        };
        let plan = decided(&resource, &unobserved, 1_000, &Intervals::default());
        assert!(plan.actions.is_empty() && plan.notes.is_empty());
        assert_eq!(plan.status, resource.status.clone().unwrap_or_default());
        resource.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert!(
            needs_target(&resource),
            "deletion disposes through its cluster"
        );
    }

    #[test]
    fn labels_follow_the_kind_the_job_and_the_state() {
        let mut resource = snapshot(SAVEPOINT);
        let plan = decide(&resource, &running(), 1_000, &Intervals::default());
        let Some(Effect::SetLabels(labels)) = plan.actions.last() else {
            panic!("{:?}", plan.actions)
        };
        let expected = [
            ("job-reference.kind", "FlinkDeployment"),
            ("job-reference.name", "keeper"),
            ("snapshot.state", "IN_PROGRESS"),
            ("snapshot.trigger-type", "MANUAL"),
            ("snapshot.type", "SAVEPOINT"),
        ];
        let got: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected);
        // Once they are on, nothing is patched until the state changes.
        resource.metadata.labels = Some(labels.clone());
        resource.status = plan.intent.clone();
        let plan = decide(&resource, &running(), 2_000, &Intervals::default());
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        let mut done = running();
        done.result = Some(ObservedOperation::Completed("file:/tmp/sp/1".into()));
        let plan = decide(&resource, &done, 3_000, &Intervals::default());
        assert!(matches!(
            plan.actions.last(),
            Some(Effect::SetLabels(l)) if l["snapshot.state"] == "COMPLETED"
        ));
    }

    fn snapshot(yaml: &str) -> FlinkStateSnapshot {
        let mut s: FlinkStateSnapshot = serde_saphyr::from_str(yaml).expect("fixture");
        s.metadata.finalizers = Some(vec![FINALIZER.into()]);
        s
    }

    const SAVEPOINT: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkStateSnapshot
metadata: {name: sp, namespace: default, uid: abc, generation: 1}
spec:
  jobReference: {kind: FlinkDeployment, name: keeper}
  savepoint: {path: 'file:///tmp/sp', disposeOnDelete: true}
  backoffLimit: 1
";

    fn running() -> ObservedSnapshot {
        ObservedSnapshot {
            target: SnapshotTarget::Running {
                cluster: "keeper".into(),
                job_id: "j".into(),
            },
            result: None,
        }
    }

    #[test]
    fn a_savepoint_is_triggered_once_then_completes() {
        let mut resource = snapshot(SAVEPOINT);
        let plan = decided(&resource, &running(), 1_000, &Intervals::default());
        assert!(
            matches!(&plan.actions[..], [Effect::TriggerSavepoint { directory: Some(d), .. }] if d == "file:///tmp/sp")
        );
        assert_eq!(
            plan.intent.as_ref().and_then(|s| s.state),
            Some(SnapshotState::InProgress)
        );
        resource.status = plan.intent.clone();
        let plan = decided(&resource, &running(), 2_000, &Intervals::default());
        assert!(plan.actions.is_empty(), "no second trigger while it runs");
        let mut done = running();
        done.result = Some(ObservedOperation::Completed(
            "file:/tmp/sp/savepoint-1".into(),
        ));
        let plan = decided(&resource, &done, 3_000, &Intervals::default());
        assert_eq!(plan.status.state, Some(SnapshotState::Completed));
        assert_eq!(
            plan.status.path.as_deref(),
            Some("file:/tmp/sp/savepoint-1")
        );
    }

    #[test]
    fn a_native_savepoint_is_asked_for_in_flinks_native_format() {
        let resource = snapshot(&SAVEPOINT.replace("disposeOnDelete: true", "formatType: NATIVE"));
        let plan = decided(&resource, &running(), 1_000, &Intervals::default());
        assert!(
            matches!(
                &plan.actions[..],
                [Effect::TriggerSavepoint {
                    format: SavepointFormatType::Native,
                    ..
                }]
            ),
            "{:?}",
            plan.actions
        );
    }

    #[test]
    fn failures_retry_up_to_the_backoff_limit() {
        let mut resource = snapshot(SAVEPOINT);
        let mut failed = running();
        failed.result = Some(ObservedOperation::Failed("no space".into()));
        // Attempts 10 s apart (upstream's first back-off); the first failure is retried.
        for (attempt, at) in [(1, 1_000), (2, 11_000)] {
            let plan = decided(&resource, &running(), at, &Intervals::default());
            assert_eq!(plan.actions.len(), 1, "attempt {attempt} triggers");
            resource.status = plan.intent.clone().or(Some(plan.status.clone()));
            let plan = decided(&resource, &failed, at + 500, &Intervals::default());
            resource.status = Some(plan.status.clone());
            let expected = if attempt == 1 {
                SnapshotState::TriggerPending
            } else {
                SnapshotState::Failed
            };
            assert_eq!(plan.status.state, Some(expected), "attempt {attempt}");
            if attempt == 1 {
                let early = decided(&resource, &running(), 5_000, &Intervals::default());
                assert!(early.actions.is_empty(), "backing off: {:?}", early.actions);
                assert_eq!(early.requeue, std::time::Duration::from_secs(6));
            }
        }
    }

    #[test]
    fn upstreams_defaults_retry_forever_with_a_growing_back_off_and_dispose_on_delete() {
        let mut resource = snapshot(
            "
apiVersion: flink.apache.org/v1beta1
kind: FlinkStateSnapshot
metadata: {name: sp, namespace: default, uid: abc}
spec:
  jobReference: {kind: FlinkDeployment, name: keeper}
  savepoint: {}
",
        );
        let mut failed = running();
        failed.result = Some(ObservedOperation::Failed("no space".into()));
        let mut at = 0;
        for attempt in 1..=5 {
            let plan = decided(&resource, &running(), at, &Intervals::default());
            assert_eq!(plan.actions.len(), 1, "attempt {attempt}");
            resource.status = plan.intent.clone();
            let plan = decided(&resource, &failed, at + 1, &Intervals::default());
            assert_eq!(plan.status.state, Some(SnapshotState::TriggerPending));
            resource.status = Some(plan.status.clone());
            // 10 s, 20 s, 40 s, ... after the failed attempt's trigger.
            let backoff = 10_000 << (attempt - 1);
            assert!(
                decided(
                    &resource,
                    &running(),
                    at + backoff - 1,
                    &Intervals::default()
                )
                .actions
                .is_empty()
            );
            at += backoff;
        }
        let status = resource.status.get_or_insert_with(Default::default);
        status.state = Some(SnapshotState::Completed);
        status.path = Some("file:/sp/1".into());
        resource.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let plan = decided(&resource, &running(), at, &Intervals::default());
        assert!(
            matches!(&plan.actions[0], Effect::DisposeSavepoint { path, .. } if path == "file:/sp/1")
        );
    }

    #[test]
    fn a_job_that_does_not_run_abandons_the_snapshot() {
        let resource = snapshot(SAVEPOINT);
        let observed = ObservedSnapshot {
            target: SnapshotTarget::NotRunning("the job is SUSPENDED".into()),
            result: None,
        };
        let plan = decided(&resource, &observed, 1_000, &Intervals::default());
        assert_eq!(plan.status.state, Some(SnapshotState::Abandoned));
        assert!(plan.actions.is_empty());
    }

    #[test]
    fn deleting_a_completed_savepoint_disposes_of_it() {
        let mut resource = snapshot(SAVEPOINT);
        resource.status = Some(FlinkStateSnapshotStatus {
            state: Some(SnapshotState::Completed),
            path: Some("file:/tmp/sp/savepoint-1".into()),
            ..Default::default()
        });
        resource.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let plan = decided(&resource, &running(), 1_000, &Intervals::default());
        assert_eq!(
            plan.actions[0],
            Effect::DisposeSavepoint {
                cluster: "keeper".into(),
                path: "file:/tmp/sp/savepoint-1".into()
            }
        );
        let gone = ObservedSnapshot {
            target: SnapshotTarget::Missing("gone".into()),
            result: None,
        };
        let plan = decided(&resource, &gone, 1_000, &Intervals::default());
        assert_eq!(
            plan.actions[0],
            Effect::DeleteSavepointFiles {
                path: "file:/tmp/sp/savepoint-1".into()
            }
        );
    }

    #[test]
    fn a_savepoint_the_user_registered_is_never_disposed_of() {
        let mut resource = snapshot(&SAVEPOINT.replace(
            "path: 'file:///tmp/sp'",
            "path: 'file:///etc', alreadyExists: true",
        ));
        assert_eq!(
            resource
                .spec
                .savepoint
                .as_ref()
                .and_then(|s| s.already_exists),
            Some(true)
        );
        resource.status = Some(FlinkStateSnapshotStatus {
            state: Some(SnapshotState::Completed),
            path: Some("file:///etc".into()),
            ..Default::default()
        });
        resource.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        for observed in [
            running(),
            ObservedSnapshot {
                target: SnapshotTarget::Missing("gone".into()),
                result: None,
            },
        ] {
            let plan = decided(&resource, &observed, 1_000, &Intervals::default());
            assert_eq!(plan.actions, vec![Effect::RemoveFinalizer]);
        }
    }
}
