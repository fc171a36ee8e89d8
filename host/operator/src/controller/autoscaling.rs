//! Reads what an autoscaled FlinkDeployment's or FlinkSessionJob's autoscaler step is decided
//! from (its state ConfigMap, the running job's details and one sample of its metrics through
//! Flink's REST API, its resource requirements, and for a deployment its TaskManagers and their
//! pods) and asks the tenant's scaling plugin about a decision. Everything else, including
//! every write, is `reconcile::autoscaling::step`'s: its actions join the resource's plan.

use super::Context;
use super::policies::ScalingQuestion;
use crate::observability::ScalingOutcome;
use crate::reconcile::Reason;
use crate::reconcile::autoscaling::step::{
    self, Autoscaled, AutoscalerStep, Enabled, NONCE_KEY, POD_DELETION_COST, STATE_KEY, SampledJob,
    StepInput, StoredState, TaskManagerPod,
};
use crate::reconcile::autoscaling::{graph_of, is_adaptive, should_sample};
use crate::reconcile::observed::{ObservedCluster, ObservedFlink, ObservedSessionJob};
use crate::render;
use flink_api::{FlinkDeployment, FlinkSessionJob};
use flink_autoscaler::collect::{
    Aggregated, TASK_MANAGER_QUERY, task_manager_sample, vertex_query, vertex_sample,
};
use flink_autoscaler::{AutoscalerSettings, GraphVertex, Sample};
use flink_rest::{Aggregation, FlinkClient, FlinkError, JobId, JobState};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;

/// One autoscaler step when the deployment is autoscaled (None: it is not, or its state
/// cannot be read now).
pub async fn step(
    ctx: &Context,
    resource: &FlinkDeployment,
    observed: &ObservedCluster,
    defaults: &BTreeMap<String, String>,
    now_ms: i64,
) -> Option<AutoscalerStep> {
    let settings = match step::enabled(resource, defaults) {
        Enabled::Off => return None,
        Enabled::Invalid(note) => return Some(AutoscalerStep::paused(note)),
        Enabled::On(settings) => settings,
    };
    let task_managers = observed
        .task_manager
        .as_ref()
        .map(|tm| tm.replicas.max(0) as u32);
    let status = resource.status.as_ref();
    let running = match &observed.flink {
        ObservedFlink::Reachable { jobs, .. } => {
            running_job(status.and_then(|s| s.job_status.as_ref()), jobs)
        }
        _ => None,
    };
    let lifecycle = status.and_then(|s| s.lifecycle_state);
    run(
        ctx,
        Autoscaled::Deployment(resource),
        &settings,
        defaults,
        Running {
            job: running,
            lifecycle,
            task_managers,
        },
        now_ms,
    )
    .await
}

/// One autoscaler step of a FlinkSessionJob (`config`: its effective configuration, the
/// session cluster's under its own), in place on the session cluster.
pub async fn session_job_step(
    ctx: &Context,
    resource: &FlinkSessionJob,
    observed: &ObservedSessionJob,
    config: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
    now_ms: i64,
) -> Option<AutoscalerStep> {
    resource.spec.job.as_ref()?;
    let settings = match step::enabled_by(config) {
        Enabled::Off => return None,
        Enabled::Invalid(note) => return Some(AutoscalerStep::paused(note)),
        Enabled::On(settings) => settings,
    };
    let status = resource.status.as_ref();
    let recorded = status.and_then(|s| s.job_status.as_ref());
    run(
        ctx,
        Autoscaled::SessionJob(resource, &observed.cluster_rendered),
        &settings,
        defaults,
        Running {
            job: running_job(recorded, observed.jobs()),
            lifecycle: status.and_then(|s| s.lifecycle_state),
            task_managers: None,
        },
        now_ms,
    )
    .await
}

/// What the resource's status and observation say about its job.
struct Running {
    /// The job's id when Flink says it runs.
    job: Option<String>,
    lifecycle: Option<flink_api::ResourceLifecycleState>,
    /// A deployment's TaskManager Deployment's replicas.
    task_managers: Option<u32>,
}

async fn run(
    ctx: &Context,
    resource: Autoscaled<'_>,
    settings: &AutoscalerSettings,
    defaults: &BTreeMap<String, String>,
    running: Running,
    now_ms: i64,
) -> Option<AutoscalerStep> {
    let namespace = resource.namespace();
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let stored = match maps.get_opt(&resource.state_config_map()).await {
        Ok(stored) => stored.map(|map| StoredState {
            packed: map
                .binary_data
                .as_ref()
                .and_then(|b| b.get(STATE_KEY))
                .map(|bytes| bytes.0.clone()),
            nonce: map.data.as_ref().and_then(|d| d.get(NONCE_KEY)).cloned(),
            upstream: map
                .data
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| *k != NONCE_KEY)
                .collect(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the autoscaler state");
            return None;
        }
    };
    let Running {
        job: running,
        lifecycle,
        task_managers,
    } = running;
    let mut sampled = None;
    if let (Some(job_id), true) = (&running, should_sample(lifecycle, running.is_some())) {
        match sample(ctx, resource, settings, job_id, task_managers, now_ms).await {
            Ok(job) => sampled = job,
            Err(e) => tracing::info!(error = %e, "autoscaler: no sample this time"),
        }
    }
    let begun = step::begin(StepInput {
        resource,
        settings,
        defaults,
        stored,
        sampled,
        task_managers,
        now_ms,
    });
    // The tenant's scaling plugin has its say on every decision (also one without changes: a
    // policy may scale by the hour).
    let verdict = match begun.question() {
        Some((job_id, graph, decision, window)) => {
            let question = ScalingQuestion {
                job_id,
                graph,
                decision,
                window,
            };
            match resource {
                Autoscaled::Deployment(d) => {
                    ctx.policies
                        .scaling_verdict(&ctx.client, d, &question, now_ms)
                        .await
                }
                Autoscaled::SessionJob(j, _) => {
                    ctx.policies
                        .scaling_verdict(&ctx.client, j, &question, now_ms)
                        .await
                }
            }
        }
        None => None,
    };
    let step = begun.finish(verdict.as_ref());
    for line in &step.log {
        tracing::info!("{line}");
    }
    for note in &step.notes {
        let outcome = match note.reason {
            Reason::Scaling => ScalingOutcome::Applied,
            Reason::ScalingLimited => ScalingOutcome::Limited,
            Reason::ScalingVetoed => ScalingOutcome::Vetoed,
            Reason::IneffectiveScaling => ScalingOutcome::Ineffective,
            _ => continue,
        };
        ctx.metrics.scaling(&namespace, outcome);
    }
    Some(step)
}

/// The id of the resource's recorded job when Flink says it runs.
fn running_job(
    recorded: Option<&flink_api::JobStatus>,
    jobs: &[crate::reconcile::observed::ObservedJob],
) -> Option<String> {
    let id = recorded?.job_id.clone()?;
    jobs.iter()
        .any(|j| j.id == id && j.state == flink_api::FlinkJobState::Running)
        .then_some(id)
}

/// Reads the running job for one step: its details, a sample of its metrics, and what the step
/// may act on (resource requirements on the adaptive scheduler; the TaskManagers when memory
/// tuning is on or idle ones may be let go, and then their pods). None: the job does not run.
/// A failed read of the latter is logged and left out; the step then does without.
async fn sample(
    ctx: &Context,
    resource: Autoscaled<'_>,
    settings: &AutoscalerSettings,
    job_id: &str,
    task_managers: Option<u32>,
    now_ms: i64,
) -> Result<Option<SampledJob>, FlinkError> {
    let namespace = resource.namespace();
    let client = ctx.flink.for_cluster(&resource.cluster(), &namespace)?;
    let job = JobId::parse(job_id)?;
    let limit = settings.rest_client_timeout;
    let details = bounded(limit, client.job_details(&job)).await?;
    if details.state != JobState::Running {
        return Ok(None);
    }
    let graph = graph_of(&details);
    let (sample, missing) = collect(&client, &job, &graph, settings, now_ms).await?;
    if !missing.is_empty() {
        tracing::debug!(?missing, "autoscaler: metrics not reported");
    }
    let requirements = match is_adaptive(&details) {
        true => logged(
            bounded(limit, client.resource_requirements(&job)).await,
            "resource requirements",
        ),
        false => None,
    };
    // A session cluster's TaskManagers are shared: neither tuned nor released for one job.
    let deployment = match resource {
        Autoscaled::Deployment(d) => Some(d),
        Autoscaled::SessionJob(..) => None,
    };
    let release = deployment.is_some_and(|d| step::may_release(d, &details, task_managers));
    let reported = match deployment.is_some() && (settings.memory_tuning.enabled || release) {
        true => logged(bounded(limit, client.task_managers()).await, "TaskManagers")
            .map(|t| t.taskmanagers),
        false => None,
    };
    let pods = match (release, deployment) {
        (true, Some(d)) => task_manager_pods(ctx, d, &namespace).await,
        _ => None,
    };
    Ok(Some(SampledJob {
        id: job_id.to_string(),
        details,
        graph,
        sample,
        requirements,
        task_managers: reported,
        pods,
    }))
}

fn logged<T>(read: Result<T, FlinkError>, what: &str) -> Option<T> {
    read.map_err(|e| tracing::info!(error = %e, "autoscaler: cannot read the job's {what}"))
        .ok()
}

/// The cluster's TaskManager pods that are not being deleted.
async fn task_manager_pods(
    ctx: &Context,
    resource: &FlinkDeployment,
    namespace: &str,
) -> Option<Vec<TaskManagerPod>> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector =
        render::task_manager_selector(&resource.name_any(), resource.spec.mode_or_default());
    match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(listed) => Some(
            listed
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| TaskManagerPod {
                    name: p.name_any(),
                    marked: p.annotations().contains_key(POD_DELETION_COST),
                })
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "autoscaler: cannot list the TaskManager pods");
            None
        }
    }
}

/// One sample of every vertex. A vertex whose metrics Flink has not computed yet is sampled
/// with what is there (missing values stay NaN) and named in the returned list.
async fn collect(
    client: &FlinkClient,
    job: &JobId,
    graph: &[GraphVertex],
    settings: &AutoscalerSettings,
    now_ms: i64,
) -> Result<(Sample, Vec<String>), FlinkError> {
    let limit = settings.rest_client_timeout;
    let mut vertices = BTreeMap::new();
    let mut missing = Vec::new();
    for vertex in graph {
        let source = vertex.inputs.is_empty();
        let available = bounded(limit, client.vertex_metric_names(job, &vertex.id)).await?;
        let names = vertex_query(&available, source);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let answers = bounded(
            limit,
            client.vertex_metrics(
                job,
                &vertex.id,
                &names,
                &[
                    Aggregation::Sum,
                    Aggregation::Max,
                    Aggregation::Min,
                    Aggregation::Avg,
                ],
            ),
        )
        .await?;
        let values: BTreeMap<String, Aggregated> = answers
            .into_iter()
            .map(|m| {
                let aggregated = Aggregated {
                    sum: m.sum,
                    max: m.max,
                    min: m.min,
                    avg: m.avg,
                };
                (m.id, aggregated)
            })
            .collect();
        let (sample, notes) = vertex_sample(&values, source, settings);
        missing.extend(notes.into_iter().map(|n| format!("{}: {n}", vertex.name)));
        vertices.insert(vertex.id.clone(), sample);
    }
    let answers = bounded(
        limit,
        client.taskmanager_metrics(&TASK_MANAGER_QUERY, &[Aggregation::Max]),
    )
    .await?;
    let values: BTreeMap<String, Aggregated> = answers
        .into_iter()
        .map(|m| {
            let aggregated = Aggregated {
                max: m.max,
                ..Aggregated::default()
            };
            (m.id, aggregated)
        })
        .collect();
    let (task_managers, notes) = task_manager_sample(&values);
    missing.extend(notes);
    Ok((
        Sample {
            time_ms: now_ms,
            vertices,
            task_managers,
        },
        missing,
    ))
}

/// One of the autoscaler's calls to a JobManager, given at most `limit`
/// (`job.autoscaler.flink.rest-client.timeout`); the operator's client timeout bounds it too,
/// so a resource can only shorten the wait.
async fn bounded<T>(
    limit: std::time::Duration,
    call: impl std::future::Future<Output = Result<T, FlinkError>>,
) -> Result<T, FlinkError> {
    match tokio::time::timeout(limit, call).await {
        Ok(answer) => answer,
        Err(_) => Err(FlinkError::Unreachable {
            url: String::new(),
            reason: format!(
                "no answer within job.autoscaler.flink.rest-client.timeout ({} ms)",
                limit.as_millis()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_autoscaler_call_waits_no_longer_than_the_resources_rest_client_timeout() {
        let limit = std::time::Duration::from_millis(20);
        let slow = async {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            Ok::<u32, FlinkError>(1)
        };
        let started = std::time::Instant::now();
        let answer = bounded(limit, slow).await;
        assert!(
            matches!(&answer, Err(FlinkError::Unreachable { reason, .. }) if reason.contains("job.autoscaler.flink.rest-client.timeout (20 ms)")),
            "{answer:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            bounded(limit, async { Ok::<u32, FlinkError>(7) })
                .await
                .ok(),
            Some(7)
        );
    }
}
