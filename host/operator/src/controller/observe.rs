//! Observe: read what the decision needs into plain values. Kubernetes reads are direct GETs
//! and one label-selected pod list (read-your-writes, unlike a cache that may lag our own
//! applies); Flink's REST API is asked only when a JobManager is ready to answer.

use super::Context;
use crate::reconcile::observed::{
    JobCounters, JobSnapshot, ObservedCheckpoint, ObservedCluster, ObservedDeployment,
    ObservedFlink, ObservedJob, ObservedOperation, ObservedSessionJob, SessionCluster,
    WaitingContainer, current_job, overview_job,
};
use crate::reconcile::state_snapshot::{ObservedSnapshot, SnapshotTarget};
use crate::reconcile::status;
use crate::reconcile::{blue_green, deployment, session_job};
use crate::render;
use flink_api::snapshot::JobKind;
use flink_api::{FlinkDeployment, FlinkSessionJob};
use flink_rest::{FlinkError, JobId, Operation, TriggerId};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;

/// Observes a FlinkDeployment; `defaults` are the operator's Flink configuration defaults
/// for its namespace, from the reconcile's one snapshot of the settings.
pub async fn deployment(
    ctx: &Context,
    resource: &FlinkDeployment,
    defaults: &BTreeMap<String, String>,
) -> Result<ObservedCluster, kube::Error> {
    let name = resource.metadata.name.clone().unwrap_or_default();
    let namespace = resource
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let job_manager = deployments
        .get_opt(&render::job_manager_name(&name))
        .await?
        .map(|d| observed_deployment(&d));
    let task_manager = deployments
        .get_opt(&render::task_manager_name(&name))
        .await?
        .map(|d| observed_deployment(&d));
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let pod_list = pods
        .list(&ListParams::default().labels(&format!("app={name}")))
        .await?;
    let cluster_pods: Vec<&Pod> = pod_list
        .items
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("type"))
                .is_some_and(|t| t.starts_with("flink-"))
        })
        .collect();
    let waiting = cluster_pods
        .iter()
        .flat_map(|p| waiting_containers(p))
        .collect();
    let mut session_jobs = Vec::new();
    if resource.metadata.deletion_timestamp.is_some() && !resource.spec.is_application() {
        let jobs: Api<FlinkSessionJob> = Api::namespaced(ctx.client.clone(), &namespace);
        for job in jobs.list(&ListParams::default()).await?.items {
            if job.spec.deployment_name.as_deref() == Some(name.as_str()) {
                session_jobs.push(job.metadata.name.unwrap_or_default());
            }
        }
    }
    let ready = job_manager
        .as_ref()
        .is_some_and(|jm| !jm.deleting && jm.ready_replicas > 0);
    let flink = if ready {
        let asked_version = resource
            .status
            .as_ref()
            .is_some_and(|s| s.cluster_info.contains_key("flink-version"));
        flink(ctx, &name, &namespace, !asked_version).await
    } else {
        ObservedFlink::NotAsked
    };
    let needs = deployment::observation_needs(resource, defaults);
    let (mut savepoint, mut latest_checkpoint, mut snapshot, mut checkpoint, mut counters) =
        (None, None, None, None, None);
    // Counters are read only from a JobManager that answered for the job list.
    let counted = needs
        .counters_of
        .as_ref()
        .filter(|_| matches!(flink, ObservedFlink::Reachable { .. }));
    if ready
        && (needs.savepoint.is_some()
            || needs.checkpoints_of.is_some()
            || needs.snapshot.is_some()
            || needs.checkpoint.is_some()
            || counted.is_some())
        && let Ok(client) = ctx.flink.for_cluster(&name, &namespace)
    {
        if let Some((job, trigger)) = &needs.savepoint {
            savepoint = savepoint_result(&client, job, trigger).await;
        }
        if let Some((job, trigger)) = &needs.snapshot {
            snapshot = savepoint_result(&client, job, trigger).await;
        }
        if let Some((job, trigger)) = &needs.checkpoint {
            checkpoint = checkpoint_result(&client, job, trigger).await;
        }
        if let Some(job) = counted {
            let (observed, latest) = counters_of(&client, job).await;
            counters = Some(observed);
            if needs.checkpoints_of.as_deref() == Some(job.as_str()) {
                latest_checkpoint = latest;
            }
        }
        // One `/checkpoints` request serves both when they are about the same job.
        if let Some(job) = needs
            .checkpoints_of
            .as_ref()
            .filter(|job| counted != Some(*job))
        {
            latest_checkpoint = latest_checkpoint_of(&client, job).await;
        }
    }
    let status = resource.status.as_ref();
    let recorded = status
        .and_then(|s| s.job_status.as_ref())
        .and_then(|j| j.job_id.as_deref());
    let (job_failure, exceptions) = match &flink {
        ObservedFlink::Reachable { jobs, .. } if resource.spec.is_application() => {
            match current_job(jobs, recorded) {
                Some(job) => {
                    let error = status.and_then(|s| s.error.as_deref());
                    exceptions_of(ctx, &name, &namespace, error, job).await
                }
                None => (None, None),
            }
        }
        _ => (None, None),
    };
    let requirements = match (&needs.requirements_of, ready) {
        (Some(job), true) => requirements_of(ctx, &name, &namespace, job).await,
        _ => None,
    };
    let snapshots =
        match needs.snapshot_resources && matches!(flink, ObservedFlink::Reachable { .. }) {
            true => Some(job_snapshots(ctx, &namespace, JobKind::FlinkDeployment, &name).await?),
            false => None,
        };
    Ok(ObservedCluster {
        snapshots,
        job_failure,
        job_manager,
        task_manager,
        pods: cluster_pods.len(),
        waiting,
        flink,
        session_jobs,
        savepoint,
        latest_checkpoint,
        snapshot,
        checkpoint,
        counters,
        requirements,
        exceptions,
    })
}

/// The job's scheduler and, on the adaptive scheduler, its resource requirements; None when
/// the JobManager does not answer.
async fn requirements_of(
    ctx: &Context,
    name: &str,
    namespace: &str,
    job: &str,
) -> Option<crate::reconcile::observed::ObservedRequirements> {
    let client = ctx.flink.for_cluster(name, namespace).ok()?;
    let job = JobId::parse(job).ok()?;
    let details = client.job_details(&job).await.ok()?;
    let adaptive = crate::reconcile::autoscaling::is_adaptive(&details);
    let current = match adaptive {
        true => client.resource_requirements(&job).await.ok(),
        false => None,
    };
    Some(crate::reconcile::observed::ObservedRequirements {
        state: details.state,
        adaptive,
        current,
    })
}

/// The job's restart and checkpoint counters, and its latest completed checkpoint (one
/// `/checkpoints` request serves both). What Flink does not answer stays `None`.
async fn counters_of(
    client: &flink_rest::FlinkClient,
    job: &str,
) -> (JobCounters, Option<ObservedCheckpoint>) {
    let Ok(id) = JobId::parse(job) else {
        return (JobCounters::default(), None);
    };
    let restarts = client
        .job_metrics(&id, &["numRestarts"])
        .await
        .ok()
        .and_then(|metrics| metrics.into_iter().find(|m| m.id == "numRestarts"))
        .and_then(|m| m.value)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64);
    let stats = client.checkpoint_statistics(&id).await.ok();
    let completed = stats.as_ref().and_then(|s| s.latest.completed.clone());
    let completed_checkpoints = match &stats {
        Some(stats) => Some(stats.counts.completed),
        // Flink has no checkpoint statistics for a job that never ran (its main() failed): a
        // job that was never RUNNING completed no checkpoint.
        None => client.job_details(&id).await.ok().and_then(|details| {
            let ran = details.timestamps.get("RUNNING").is_some_and(|t| *t > 0);
            (!ran).then_some(0)
        }),
    };
    let counters = JobCounters {
        restarts,
        completed_checkpoints,
        last_checkpoint_at: completed.as_ref().map(|c| c.latest_ack_timestamp),
    };
    (counters, completed.and_then(addressable))
}

/// A completed checkpoint the job can be restored from (it has a path).
fn addressable(completed: flink_rest::model::CheckpointDetails) -> Option<ObservedCheckpoint> {
    let path = completed
        .external_path
        .filter(|p| !p.is_empty() && p != "<checkpoint-not-externally-addressable>")?;
    Some(ObservedCheckpoint {
        path,
        completed_at: completed.latest_ack_timestamp,
    })
}

/// The job's latest completed checkpoint with an addressable path.
async fn latest_checkpoint_of(
    client: &flink_rest::FlinkClient,
    job: &str,
) -> Option<ObservedCheckpoint> {
    let stats = client
        .checkpoint_statistics(&JobId::parse(job).ok()?)
        .await
        .ok()?;
    addressable(stats.latest.completed?)
}

/// A resource's job's exception history on the cluster `name` (for its `JobException`
/// events), and Flink's reason for the job's failure when it failed and the resource's status
/// `error` does not report it yet.
async fn exceptions_of(
    ctx: &Context,
    name: &str,
    namespace: &str,
    error: Option<&str>,
    job: &ObservedJob,
) -> (
    Option<crate::reconcile::observed::JobFailure>,
    Option<crate::reconcile::job_exceptions::ObservedExceptions>,
) {
    use crate::reconcile::job_exceptions::{ObservedException, ObservedExceptions};
    let (Ok(client), Ok(id)) = (
        ctx.flink.for_cluster(name, namespace),
        JobId::parse(&job.id),
    ) else {
        return (None, None);
    };
    let Ok(answer) = client.job_exceptions(&id).await else {
        return (None, None);
    };
    let reported = status::reports(error, "JobFailed", &job.id);
    let failure = (job.state == flink_api::FlinkJobState::Failed && !reported)
        .then(|| answer.latest())
        .flatten()
        .map(|e| crate::reconcile::observed::JobFailure {
            message: e.message(),
            stack_trace: e.stacktrace.clone(),
        });
    let mut entries: Vec<ObservedException> = answer
        .exception_history
        .as_ref()
        .map(|h| {
            h.entries
                .iter()
                .map(|e| ObservedException {
                    timestamp: e.timestamp,
                    stacktrace: e.stacktrace.clone(),
                    task_name: e.task_name.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    // A job that failed before it ran (its JobMaster did not start) has a root exception and
    // no history.
    if entries.is_empty()
        && let (Some(stacktrace), Some(timestamp)) = (&answer.root_exception, answer.timestamp)
    {
        entries.push(ObservedException {
            timestamp,
            stacktrace: stacktrace.clone(),
            task_name: None,
        });
    }
    (
        failure,
        Some(ObservedExceptions {
            job_id: job.id.clone(),
            entries,
        }),
    )
}

/// A stop-with-savepoint's result; `None` when Flink could not be asked (try again later).
async fn savepoint_result(
    client: &flink_rest::FlinkClient,
    job: &str,
    trigger: &str,
) -> Option<ObservedOperation> {
    let (Ok(job), Ok(trigger)) = (JobId::parse(job), TriggerId::parse(trigger)) else {
        return Some(ObservedOperation::Failed(format!(
            "recorded ids {job}/{trigger} are not Flink ids"
        )));
    };
    match client.savepoint_status(&job, &trigger).await {
        Ok(Operation::InProgress) => Some(ObservedOperation::InProgress),
        Ok(Operation::Completed(path)) => Some(ObservedOperation::Completed(path)),
        Ok(Operation::Failed { cause }) => Some(ObservedOperation::Failed(cause)),
        // The JobManager forgot the trigger (it restarted): the savepoint did not complete.
        Err(FlinkError::NotFound { message, .. }) => Some(ObservedOperation::Failed(format!(
            "Flink no longer knows the savepoint: {message}"
        ))),
        Err(_) => None,
    }
}

fn observed_deployment(deployment: &Deployment) -> ObservedDeployment {
    let status = deployment.status.clone().unwrap_or_default();
    ObservedDeployment {
        generation: deployment
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(render::GENERATION_ANNOTATION))
            .and_then(|g| g.parse().ok()),
        revision: deployment
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(render::REVISION_ANNOTATION))
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
        replicas: deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1),
        ready_replicas: status.ready_replicas.unwrap_or(0),
        deleting: deployment.metadata.deletion_timestamp.is_some(),
    }
}

/// The pod's containers that wait to run, with the kubelet's reason.
fn waiting_containers(pod: &Pod) -> Vec<WaitingContainer> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let waiting = s.state.as_ref()?.waiting.as_ref()?;
            Some(WaitingContainer {
                pod: pod.metadata.name.clone().unwrap_or_default(),
                job_manager: pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("component"))
                    .is_some_and(|c| c == "jobmanager"),
                container: s.name.clone(),
                reason: waiting.reason.clone()?,
                message: waiting.message.clone(),
            })
        })
        .collect()
}

/// A version or revision as Flink reports it (`2.3.0`, `1.20-SNAPSHOT`, `a1b2c3d @ 2025-…`):
/// letters, digits and `.-_+@: ` only, at most 64 characters.
pub fn version_like(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_+@: ".contains(c))
}

/// Jobs of a cluster, and its version when asked.
async fn flink(ctx: &Context, name: &str, namespace: &str, ask_version: bool) -> ObservedFlink {
    let client = match ctx.flink.for_cluster(name, namespace) {
        Ok(client) => client,
        Err(e) => return ObservedFlink::Unreachable(e.to_string()),
    };
    let overview = match client.jobs_overview().await {
        Ok(overview) => overview,
        Err(e) => return ObservedFlink::Unreachable(e.to_string()),
    };
    let (mut flink_version, mut flink_revision) = (None, None);
    if ask_version && let Ok(config) = client.config().await {
        // The tenant's JobManager says these: only version-like words reach the status (and
        // the metrics' labels).
        flink_version = Some(config.flink_version).filter(|v| version_like(v));
        flink_revision = config.flink_revision.filter(|v| version_like(v));
    }
    ObservedFlink::Reachable {
        jobs: overview.jobs.into_iter().filter_map(overview_job).collect(),
        flink_version,
        flink_revision,
    }
}

/// Observes a FlinkSessionJob and its session cluster (with the cluster's configuration, which
/// the job's settings start from); `defaults` as for [`deployment`].
pub async fn session_job(
    ctx: &Context,
    resource: &FlinkSessionJob,
    defaults: &BTreeMap<String, String>,
) -> Result<ObservedSessionJob, kube::Error> {
    let namespace = resource
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let Some(cluster_name) = resource.spec.deployment_name.clone() else {
        return Ok(ObservedSessionJob::default());
    };
    let deployments: Api<FlinkDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let found = deployments.get_opt(&cluster_name).await?;
    let cluster_configuration = found
        .as_ref()
        .map(|d| d.spec.configuration().flat())
        .unwrap_or_default();
    // Only the autoscaler reads it (its quota), so only an autoscaled job's reconcile renders
    // the cluster.
    let autoscaled = flink_api::config::options::AUTOSCALER_ENABLED.flag_in_flat(
        &session_job::job_config(resource, defaults, &cluster_configuration),
        false,
    );
    let cluster_rendered = found
        .as_ref()
        .filter(|_| autoscaled)
        .and_then(|d| {
            crate::render::flink_config(&crate::render::RenderInput::for_resource(
                d, &d.spec, defaults,
            ))
            .ok()
        })
        .unwrap_or_default();
    let cluster = match found {
        None => SessionCluster::Missing,
        Some(d) if d.spec.is_application() => SessionCluster::NotSession,
        Some(d) => SessionCluster::Present {
            ready: d
                .status
                .as_ref()
                .and_then(|s| s.job_manager_deployment_status)
                == Some(flink_api::deployment::JobManagerDeploymentStatus::Ready),
            deleting: d.metadata.deletion_timestamp.is_some(),
        },
    };
    if !matches!(cluster, SessionCluster::Present { ready: true, .. }) {
        return Ok(ObservedSessionJob {
            cluster,
            cluster_configuration,
            cluster_rendered,
            ..Default::default()
        });
    }
    let (jobs, unreachable) = match flink(ctx, &cluster_name, &namespace, false).await {
        ObservedFlink::Reachable { jobs, .. } => (Some(jobs), None),
        ObservedFlink::Unreachable(why) => (None, Some(why)),
        ObservedFlink::NotAsked => (None, None),
    };
    let needs = session_job::observation_needs(resource, defaults, &cluster_configuration);
    let (mut savepoint, mut latest_checkpoint, mut counters) = (None, None, None);
    let (mut snapshot, mut checkpoint) = (None, None);
    if jobs.is_some()
        && let Ok(client) = ctx.flink.for_cluster(&cluster_name, &namespace)
    {
        if let Some((job, trigger)) = &needs.savepoint {
            savepoint = savepoint_result(&client, job, trigger).await;
        }
        if let Some((job, trigger)) = &needs.snapshot {
            snapshot = savepoint_result(&client, job, trigger).await;
        }
        if let Some((job, trigger)) = &needs.checkpoint {
            checkpoint = checkpoint_result(&client, job, trigger).await;
        }
        if let Some(job) = &needs.counters_of {
            let (observed, latest) = counters_of(&client, job).await;
            counters = Some(observed);
            if needs.checkpoints_of.as_ref() == Some(job) {
                latest_checkpoint = latest;
            }
        }
        if let Some(job) = needs
            .checkpoints_of
            .as_ref()
            .filter(|job| needs.counters_of.as_ref() != Some(*job))
        {
            latest_checkpoint = latest_checkpoint_of(&client, job).await;
        }
    }
    // The session job's own recorded job only: the cluster's other jobs are other tenants'.
    let status = resource.status.as_ref();
    let recorded = status
        .and_then(|s| s.job_status.as_ref())
        .and_then(|j| j.job_id.as_deref());
    let (job_failure, exceptions) = match jobs
        .as_deref()
        .zip(recorded)
        .and_then(|(jobs, id)| jobs.iter().find(|j| j.id == id))
    {
        Some(job) => {
            let error = status.and_then(|s| s.error.as_deref());
            exceptions_of(ctx, &cluster_name, &namespace, error, job).await
        }
        None => (None, None),
    };
    let name = resource.metadata.name.as_deref().unwrap_or_default();
    let snapshots = match needs.snapshot_resources && jobs.is_some() {
        true => Some(job_snapshots(ctx, &namespace, JobKind::FlinkSessionJob, name).await?),
        false => None,
    };
    Ok(ObservedSessionJob {
        cluster,
        cluster_configuration,
        cluster_rendered,
        jobs,
        unreachable,
        savepoint,
        latest_checkpoint,
        counters,
        snapshot,
        checkpoint,
        snapshots,
        job_failure,
        exceptions,
    })
}

/// The FlinkStateSnapshots labelled as `kind` `name`'s (a direct list: one created by the
/// previous reconcile is seen).
async fn job_snapshots(
    ctx: &Context,
    namespace: &str,
    kind: JobKind,
    name: &str,
) -> Result<Vec<JobSnapshot>, kube::Error> {
    use flink_api::snapshot::{SnapshotState, TRIGGER_NONCE_ANNOTATION, labels};
    let api: Api<flink_api::FlinkStateSnapshot> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!(
        "{}={},{}={name}",
        labels::JOB_KIND,
        kind.as_str(),
        labels::JOB_NAME
    );
    let list = api.list(&ListParams::default().labels(&selector)).await?;
    Ok(list
        .items
        .into_iter()
        .map(|s| {
            let label = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::TRIGGER_TYPE))
                .map(String::as_str);
            JobSnapshot {
                name: s.metadata.name.clone().unwrap_or_default(),
                created_ms: s
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or(0, |t| t.0.as_millisecond()),
                savepoint: s.spec.savepoint.is_some(),
                trigger_type: labels::trigger_type_of(label),
                completed: s.status.as_ref().and_then(|st| st.state)
                    == Some(SnapshotState::Completed),
                path: s
                    .status
                    .as_ref()
                    .and_then(|st| st.path.clone())
                    .or_else(|| {
                        s.spec
                            .savepoint
                            .as_ref()
                            .filter(|sp| sp.already_exists == Some(true))
                            .and_then(|sp| sp.path.clone())
                    }),
                nonce: s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(TRIGGER_NONCE_ANNOTATION))
                    .and_then(|n| n.parse().ok()),
                deleting: s.metadata.deletion_timestamp.is_some(),
            }
        })
        .collect())
}

/// The job a FlinkStateSnapshot refers to, and the result of its recorded trigger.
pub async fn snapshot(
    ctx: &Context,
    resource: &flink_api::FlinkStateSnapshot,
) -> Result<ObservedSnapshot, kube::Error> {
    let namespace = resource
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    if !crate::reconcile::state_snapshot::needs_target(resource) {
        return Ok(ObservedSnapshot {
            target: SnapshotTarget::NotObserved,
            result: None,
        });
    }
    let reference = resource.spec.job_reference.clone().unwrap_or_default();
    let name = reference.name.clone().unwrap_or_default();
    let running =
        |state: Option<flink_api::FlinkJobState>| state == Some(flink_api::FlinkJobState::Running);
    let target = match reference.kind {
        Some(JobKind::FlinkSessionJob) => {
            let api: Api<FlinkSessionJob> = Api::namespaced(ctx.client.clone(), &namespace);
            match api.get_opt(&name).await? {
                None => SnapshotTarget::Missing(format!(
                    "spec.jobReference: no FlinkSessionJob named {name:?} in this namespace"
                )),
                Some(job) => {
                    let status = job.status.and_then(|s| s.job_status).unwrap_or_default();
                    match (
                        running(status.state),
                        status.job_id,
                        job.spec.deployment_name,
                    ) {
                        (true, Some(job_id), Some(cluster)) => {
                            SnapshotTarget::Running { cluster, job_id }
                        }
                        _ => SnapshotTarget::NotRunning(format!(
                            "the job of FlinkSessionJob {name} is not RUNNING"
                        )),
                    }
                }
            }
        }
        _ => {
            let api: Api<FlinkDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
            match api.get_opt(&name).await? {
                None => SnapshotTarget::Missing(format!(
                    "spec.jobReference: no FlinkDeployment named {name:?} in this namespace"
                )),
                Some(deployment) => {
                    let status = deployment
                        .status
                        .and_then(|s| s.job_status)
                        .unwrap_or_default();
                    match (running(status.state), status.job_id) {
                        (true, Some(job_id)) => SnapshotTarget::Running {
                            cluster: name.clone(),
                            job_id,
                        },
                        _ => SnapshotTarget::NotRunning(format!(
                            "the job of FlinkDeployment {name} is not RUNNING"
                        )),
                    }
                }
            }
        }
    };
    let trigger = resource.status.as_ref().and_then(|s| s.trigger_id.clone());
    let result = match (&target, trigger) {
        (SnapshotTarget::Running { cluster, job_id }, Some(trigger)) => {
            match ctx.flink.for_cluster(cluster, &namespace) {
                Ok(client) if resource.spec.savepoint.is_some() => {
                    savepoint_result(&client, job_id, &trigger).await
                }
                Ok(client) => checkpoint_result(&client, job_id, &trigger).await,
                Err(_) => None,
            }
        }
        _ => None,
    };
    Ok(ObservedSnapshot { target, result })
}

/// A triggered checkpoint's result, with its path once completed.
async fn checkpoint_result(
    client: &flink_rest::FlinkClient,
    job: &str,
    trigger: &str,
) -> Option<ObservedOperation> {
    let (Ok(id), Ok(trigger)) = (JobId::parse(job), TriggerId::parse(trigger)) else {
        return Some(ObservedOperation::Failed(format!(
            "recorded ids {job}/{trigger} are not Flink ids"
        )));
    };
    match client.checkpoint_status(&id, &trigger).await {
        Ok(Operation::InProgress) => Some(ObservedOperation::InProgress),
        Ok(Operation::Failed { cause }) => Some(ObservedOperation::Failed(cause)),
        Ok(Operation::Completed(checkpoint)) => {
            // Flink's checkpoint statistics are cached for a few seconds: until they list the
            // checkpoint, its path is not known yet and the next reconcile asks again.
            let stats = client.checkpoint_statistics(&id).await.ok()?;
            let path = stats
                .history
                .iter()
                .chain(stats.latest.completed.iter())
                .find(|c| c.id == checkpoint)
                .and_then(|c| c.external_path.clone())?;
            Some(ObservedOperation::Completed(path))
        }
        Err(FlinkError::NotFound { message, .. }) => Some(ObservedOperation::Failed(format!(
            "Flink no longer knows the checkpoint: {message}"
        ))),
        Err(_) => None,
    }
}

/// Observes a FlinkBlueGreenDeployment: its two children, its Ingress, and, while it
/// savepoints, the savepoint its status's trigger id names (asked of the active child).
pub async fn blue_green(
    ctx: &Context,
    resource: &flink_api::FlinkBlueGreenDeployment,
) -> Result<blue_green::ObservedBlueGreen, kube::Error> {
    use flink_api::blue_green::Colour;
    use k8s_openapi::api::networking::v1::Ingress;
    use kube::ResourceExt;
    let name = resource.name_any();
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let uid = resource.uid();
    let children: Api<FlinkDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut observed = blue_green::ObservedBlueGreen::default();
    for colour in [Colour::Blue, Colour::Green] {
        let child =
            children
                .get_opt(&colour.child_name(&name))
                .await?
                .map(|c| blue_green::ObservedChild {
                    owned: super::act::owned_by(&c, uid.as_deref()),
                    deleting: c.metadata.deletion_timestamp.is_some(),
                    generation: c.metadata.generation,
                    spec: c.spec,
                    status: c.status,
                });
        match colour {
            Colour::Blue => observed.blue = child,
            Colour::Green => observed.green = child,
        }
    }
    let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), &namespace);
    observed.ingress = ingresses.get_opt(&name).await?.map(|i| {
        let value = serde_json::to_value(&i).unwrap_or_default();
        blue_green::ObservedIngress {
            owned: super::act::owned_by(&i, uid.as_deref()),
            spec: value.get("spec").cloned().unwrap_or_default(),
            labels: value
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or_default(),
            annotations: value
                .pointer("/metadata/annotations")
                .cloned()
                .unwrap_or_default(),
        }
    });
    let status = resource.status.as_ref();
    if let Some(state) = status.and_then(|s| s.blue_green_state)
        && matches!(
            state,
            flink_api::blue_green::BlueGreenState::SavepointingBlue
                | flink_api::blue_green::BlueGreenState::SavepointingGreen
        )
        && let Some(trigger) = status.and_then(|s| s.savepoint_trigger_id.as_deref())
        && let Some(job) = observed
            .child(state.colour())
            .and_then(|c| c.status.as_ref()?.job_status.as_ref()?.job_id.clone())
        && let Ok(client) = ctx
            .flink
            .for_cluster(&state.colour().child_name(&name), &namespace)
        && let (Ok(job), Ok(trigger)) = (JobId::parse(&job), TriggerId::parse(trigger))
    {
        observed.savepoint = match client.savepoint_status(&job, &trigger).await {
            Ok(Operation::InProgress) => Some(blue_green::SavepointProgress::InProgress),
            Ok(Operation::Completed(path)) => Some(blue_green::SavepointProgress::Completed(path)),
            Ok(Operation::Failed { cause }) => Some(blue_green::SavepointProgress::Failed(cause)),
            Err(FlinkError::NotFound { .. }) => Some(blue_green::SavepointProgress::Unknown),
            // Not answered now: asked again on the next reconcile.
            Err(_) => None,
        };
    }
    Ok(observed)
}

#[cfg(test)]
mod tests {
    use super::version_like;

    /// What a tenant's JobManager says its version is reaches the status and the metrics'
    /// labels only when it looks like a version.
    #[test]
    fn only_version_like_answers_are_kept() {
        for good in [
            "2.3.0",
            "1.20-SNAPSHOT",
            "a1b2c3d @ 2025-01-01T00:00:00+01:00",
        ] {
            assert!(version_like(good), "{good}");
        }
        for bad in ["", "1\"} 1\nflink_forged 1", "2.3\n", &"9".repeat(65)] {
            assert!(!version_like(bad), "{bad:?}");
        }
    }
}
