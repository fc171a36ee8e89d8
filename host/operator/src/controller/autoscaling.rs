//! Runs the autoscaler for an autoscaled FlinkDeployment on each reconcile (the I/O around
//! `flink_autoscaler`'s pure step): load the state from the `autoscaler-<name>` ConfigMap,
//! collect a sample through Flink's REST API, step, rescale in place through
//! `/jobs/:id/resource-requirements`, grow a standalone cluster's TaskManagers when the slots
//! do not suffice, publish the events and store the state again. Returns the overrides a deploy
//! must keep.

use super::Context;
use super::act::publish;
use super::policies::ScalingQuestion;
use crate::observability::ScalingOutcome;
use crate::reconcile::Note;
use crate::reconcile::autoscaling::{
    AutoscalerView, cluster_resources, graph_of, idle_to_release, in_place_requirements,
    is_adaptive, memory_redeploy, notes_of, redeploy_needed, resolve, should_sample,
    state_config_map, status_of, summary_of,
};
use crate::reconcile::observed::{ObservedCluster, ObservedFlink};
use crate::render;
use flink_api::FlinkDeployment;
use flink_autoscaler::collect::{
    Aggregated, TASK_MANAGER_QUERY, task_manager_sample, vertex_query, vertex_sample,
};
use flink_autoscaler::limits::{ClusterResources, quota_problem, task_managers_needed};
use flink_autoscaler::{AutoscalerSettings, AutoscalerState, GraphVertex, Sample};
use flink_rest::{Aggregation, FlinkClient, FlinkError, JobDetails, JobId, JobState};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;

/// A stored state stays well inside a ConfigMap's 1 MiB (compressed; the window is thinned to
/// fit).
const STATE_LIMIT_BYTES: usize = 512 * 1024;
/// `binaryData` key: the state as gzip-compressed JSON (`AutoscalerState`, a replayable
/// recording once decompressed).
const STATE_KEY: &str = "state.json.gz";
const NONCE_KEY: &str = "resetNonce";

fn pack(state: &AutoscalerState) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    match serde_json::to_writer(&mut encoder, state) {
        Ok(()) => encoder.finish().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

fn unpack(bytes: &[u8]) -> Option<AutoscalerState> {
    serde_json::from_reader(flate2::read::GzDecoder::new(bytes)).ok()
}

/// What one sample led to.
struct Stepped {
    report: flink_autoscaler::StepReport,
    notes: Vec<Note>,
    policy: Option<flink_api::PolicyDecision>,
    message: Option<String>,
    redeploy: Option<String>,
}

/// Runs one autoscaler step when the deployment is autoscaled: what the deployment's decision
/// needs from it (None: not autoscaled).
pub async fn step(
    ctx: &Context,
    resource: &FlinkDeployment,
    observed: &ObservedCluster,
    now_ms: i64,
) -> Option<AutoscalerView> {
    let job = resource.spec.job.as_ref()?;
    let mut config = ctx
        .dynamic()
        .flink_defaults_for(&resource.namespace().unwrap_or_default());
    config.extend(resource.spec.configuration().flat());
    let enabled = config
        .get("job.autoscaler.enabled")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !enabled {
        return None;
    }
    let settings = match AutoscalerSettings::from_config(&config) {
        Ok(settings) => settings,
        Err(problems) => {
            publish(
                ctx,
                resource,
                &[Note::warning(
                    "AutoscalerConfigInvalid",
                    format!("The autoscaler is paused: {}", problems.join("; ")),
                )],
            )
            .await;
            return None;
        }
    };
    let name = resource.name_any();
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let map_name = state_config_map(&name);
    let stored = match maps.get_opt(&map_name).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the autoscaler state");
            return None;
        }
    };
    let nonce = job.autoscaler_reset_nonce.map(|n| n.to_string());
    let data = stored
        .as_ref()
        .and_then(|m| m.data.clone())
        .unwrap_or_default();
    let previous: Option<Vec<u8>> = stored
        .as_ref()
        .and_then(|m| m.binary_data.as_ref())
        .and_then(|b| b.get(STATE_KEY))
        .map(|bytes| bytes.0.clone());
    let mut state: AutoscalerState = match previous.as_deref().map(unpack) {
        Some(Some(state)) => state,
        Some(None) => {
            // Never silently: the overrides and history it held are lost.
            tracing::warn!(config_map = %map_name, "the stored autoscaler state cannot be read; starting over");
            AutoscalerState::default()
        }
        None => AutoscalerState::default(),
    };
    let nonce_unchanged = data.get(NONCE_KEY) == nonce.as_ref();
    let mut notes = Vec::new();
    if !nonce_unchanged && stored.is_some() {
        state = AutoscalerState::default();
        notes.push(Note::normal(
            "AutoscalerReset",
            "spec.job.autoscalerResetNonce changed: metric and scaling history and overrides cleared",
        ));
    }
    let running = current_job(resource, observed);
    let lifecycle = resource.status.as_ref().and_then(|s| s.lifecycle_state);
    let mut stepped = None;
    if let (Some(job_id), true) = (&running, should_sample(lifecycle, running.is_some())) {
        match sample_and_step(
            ctx, resource, observed, &settings, &mut state, job_id, now_ms,
        )
        .await
        {
            Ok(done) => stepped = done,
            Err(e) => tracing::info!(error = %e, "autoscaler: no sample this time"),
        }
    }
    let (report, policy, message, redeploy) = match stepped {
        Some(stepped) => {
            notes.extend(stepped.notes);
            (
                Some(stepped.report),
                stepped.policy,
                stepped.message,
                stepped.redeploy,
            )
        }
        None => (None, None, None, None),
    };
    let stored = resource.status.as_ref();
    // A sample without news keeps what the status said about the last decision.
    let message = message.or_else(|| {
        stored
            .and_then(|s| s.autoscaler.as_ref())
            .and_then(|a| a.message.clone())
    });
    let policy = policy.or_else(|| {
        stored.and_then(|s| {
            s.policies
                .iter()
                .find(|p| p.extension_point == flink_policy::ExtensionPoint::Scaling.world())
                .cloned()
        })
    });
    let mut packed = pack(&state);
    if packed.len() > STATE_LIMIT_BYTES {
        let dropped = state.thin_until(|s| pack(s).len() <= STATE_LIMIT_BYTES);
        tracing::info!(
            dropped,
            "autoscaler: metric window thinned to fit the ConfigMap"
        );
        packed = pack(&state);
    }
    // A reconcile that took no sample changes nothing: no write.
    if (previous.as_deref() != Some(packed.as_slice()) || !nonce_unchanged)
        && let Err(e) = store(ctx, resource, &maps, &map_name, packed, nonce).await
    {
        tracing::warn!(error = %e, "cannot store the autoscaler state");
    }
    for note in &notes {
        let outcome = match note.reason {
            "Scaling" => ScalingOutcome::Applied,
            "ScalingLimited" => ScalingOutcome::Limited,
            "ScalingVetoed" => ScalingOutcome::Vetoed,
            "IneffectiveScaling" => ScalingOutcome::Ineffective,
            _ => continue,
        };
        ctx.metrics.scaling(&namespace, outcome);
    }
    publish(ctx, resource, &notes).await;
    // Tuning switched off: deploys render the user's memory again.
    let memory = state
        .memory
        .clone()
        .filter(|_| settings.memory_tuning.enabled);
    Some(AutoscalerView {
        status: status_of(&state, report.as_ref(), message),
        overrides: state.overrides,
        policy,
        redeploy,
        memory,
    })
}

/// The id of the deployment's job when Flink says it runs.
fn current_job(resource: &FlinkDeployment, observed: &ObservedCluster) -> Option<String> {
    let id = resource
        .status
        .as_ref()?
        .job_status
        .as_ref()?
        .job_id
        .clone()?;
    let ObservedFlink::Reachable { jobs, .. } = &observed.flink else {
        return None;
    };
    jobs.iter()
        .any(|j| j.id == id && j.state == flink_api::FlinkJobState::Running)
        .then_some(id)
}

async fn sample_and_step(
    ctx: &Context,
    resource: &FlinkDeployment,
    observed: &ObservedCluster,
    settings: &AutoscalerSettings,
    state: &mut AutoscalerState,
    job_id: &str,
    now_ms: i64,
) -> Result<Option<Stepped>, FlinkError> {
    let name = resource.name_any();
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let client = ctx.flink.for_cluster(&name, &namespace)?;
    let job = JobId::parse(job_id)?;
    let details = client.job_details(&job).await?;
    if details.state != JobState::Running {
        return Ok(None);
    }
    let graph = graph_of(&details);
    let mut notes_before = Vec::new();
    let (sample, missing) = collect(&client, &job, &graph, settings, now_ms).await?;
    if !missing.is_empty() {
        tracing::debug!(?missing, "autoscaler: metrics not reported");
    }
    let running_since = details
        .timestamps
        .get("RUNNING")
        .copied()
        .filter(|t| *t > 0)
        .unwrap_or(details.start_time);
    notes_before.extend(restore_chosen_parallelism(&client, &job, &details, &graph, state).await);
    let report = state.step(&graph, sample, running_since, settings);
    if let Some(took) = report.rescale_took_ms {
        tracing::info!(took_ms = took, "autoscaler: rescale finished");
    }
    let mut notes = notes_before;
    notes.extend(notes_of(&report, &graph));
    let target = Target {
        client: &client,
        job: &job,
        details: &details,
        graph: &graph,
    };
    if state.rescale_requested_ms.is_none() && is_adaptive(&details) {
        notes.extend(
            release_idle_task_managers(ctx, resource, observed, &target, &state.overrides).await,
        );
    }
    let Some(decision) = report.decision.clone() else {
        let memory = memory_change(&target, state, settings).await;
        return Ok(Some(Stepped {
            redeploy: redeploy_of(resource, &target, state, memory),
            report,
            notes,
            policy: None,
            message: None,
        }));
    };
    // The tenant's scaling plugin has its say on every decision (also one without changes:
    // a policy may scale by the hour).
    let policy = ctx
        .policies
        .scaling_verdict(
            &ctx.client,
            resource,
            &ScalingQuestion {
                job_id,
                graph: &graph,
                decision: &decision,
                window: &state.window,
            },
            now_ms,
        )
        .await;
    let mut resolved = resolve(&report, &graph, policy.as_ref(), !report.hold);
    notes.extend(std::mem::take(&mut resolved.notes));
    let mut message = resolved.message;
    // The user's rendered configuration, once, for the TaskManagers and the memory tuning.
    let config = (!resolved.apply.is_empty()).then(|| spec_config(ctx, resource));
    let mut cluster = config.as_ref().map(|c| cluster_of(c, observed));
    let tuned = match (&config, &cluster) {
        (Some(config), Some(cluster)) => tune_memory(
            config,
            settings,
            &graph,
            &decision,
            &resolved.apply,
            cluster,
        ),
        _ => None,
    };
    if let Some(tuned) = &tuned {
        notes.push(Note::normal(
            "ConfigurationRecommendation",
            format!(
                "Memory tuning recommends the following configuration (automatic tuning is {}):\n{}",
                if settings.memory_tuning.enabled { "enabled" } else { "disabled" },
                tuned.describe()
            ),
        ));
    }
    let tuned = tuned.filter(|_| settings.memory_tuning.enabled);
    // The quota is checked with the memory the TaskManagers will have.
    if let (Some(cluster), Some(tuned)) = (cluster.as_mut(), &tuned) {
        cluster.memory = tuned.process;
    }
    if let Some(cluster) = &cluster
        && let Some(problem) = quota_problem(
            &graph,
            &resolved.apply,
            cluster,
            settings.quota_cpu,
            settings.quota_memory,
        )
    {
        notes.push(Note::warning(
            "ScalingLimited",
            format!("Not scaled: {problem}"),
        ));
        message = Some(problem);
        resolved.apply.clear();
    }
    let applying = !resolved.apply.is_empty();
    if applying {
        state.record_applied(&graph, &decision, &resolved.apply, now_ms, settings);
        if let Some(tuned) = tuned
            && tuned.replaces(state.memory.as_ref())
        {
            state.memory = Some(tuned);
        }
    }
    let memory = memory_change(&target, state, settings).await;
    if let (Some(cluster), true) = (&cluster, applying) {
        let (more, failure) = apply(
            ctx,
            resource,
            cluster,
            &target,
            &resolved.apply,
            memory.as_deref(),
        )
        .await;
        notes.extend(more);
        if failure.is_some() {
            message = failure;
        }
    }
    Ok(Some(Stepped {
        redeploy: redeploy_of(resource, &target, state, memory),
        report,
        notes,
        policy: resolved.policy,
        message,
    }))
}

/// A deployed job on the adaptive scheduler that does not run the parallelism the autoscaler
/// chose gets it in place. Flink 2.x does not apply `pipeline.jobvertex-parallelism-overrides`
/// to the job an application cluster submits (seen on Flink 2.3: a redeploy came up at the
/// graph's own parallelism), so the overrides a deploy renders are not enough; the resource
/// requirements are, and they are only written when they differ (an in-place rescale still
/// waiting for slots is left alone).
async fn restore_chosen_parallelism(
    client: &FlinkClient,
    job: &JobId,
    details: &JobDetails,
    graph: &[GraphVertex],
    state: &AutoscalerState,
) -> Vec<Note> {
    let differs = flink_autoscaler::job::not_running(graph, &state.overrides);
    if differs.is_empty() || !is_adaptive(details) {
        return Vec::new();
    }
    let result = async {
        let current = client.resource_requirements(job).await?;
        let wanted = in_place_requirements(&current, &state.overrides);
        if wanted == current {
            return Ok(false);
        }
        client.set_resource_requirements(job, &wanted).await?;
        Ok::<_, FlinkError>(true)
    }
    .await;
    match result {
        Ok(true) => vec![Note::normal(
            "Scaling",
            format!(
                "Restoring the chosen parallelism in place: {}",
                summary_of(graph, &differs)
            ),
        )],
        Ok(false) => Vec::new(),
        Err(e) => {
            tracing::info!(error = %e, "autoscaler: cannot restore the chosen parallelism");
            Vec::new()
        }
    }
}

/// Whether a redeploy with `pipeline.jobvertex-parallelism-overrides` sets the job's
/// parallelism: Flink 1.x applies the overrides to the job it runs; Flink 2.3 does not (seen:
/// a DataStream job submitted with them, in an application and a session cluster, runs its
/// graph's own parallelism).
fn overrides_honoured(resource: &FlinkDeployment) -> bool {
    !resource
        .spec
        .flink_version
        .unwrap_or(flink_api::deployment::FlinkVersion::V2_3)
        .is_2x()
}

/// What a redeploy must change, derived from what runs: the vertices' parallelism (a job off
/// the adaptive scheduler) and the TaskManagers' memory (`memory`, from [`memory_change`]).
fn redeploy_of(
    resource: &FlinkDeployment,
    target: &Target<'_>,
    state: &AutoscalerState,
    memory: Option<String>,
) -> Option<String> {
    let parallelism = redeploy_needed(target.details, target.graph, &state.overrides)
        .filter(|_| overrides_honoured(resource));
    match (parallelism, memory) {
        (Some(p), Some(m)) => Some(format!("{p}; {m}")),
        (p, m) => p.or(m),
    }
}

/// The TaskManagers run another memory than memory tuning chose (asks Flink's `/taskmanagers`
/// only when tuning is on and chose something).
async fn memory_change(
    target: &Target<'_>,
    state: &AutoscalerState,
    settings: &AutoscalerSettings,
) -> Option<String> {
    let tuned = state
        .memory
        .as_ref()
        .filter(|_| settings.memory_tuning.enabled)?;
    match target.client.task_managers().await {
        Ok(running) => memory_redeploy(&running.taskmanagers, tuned),
        Err(e) => {
            tracing::info!(error = %e, "autoscaler: cannot read the TaskManagers' memory");
            None
        }
    }
}

/// The memory tuning recommendation for a rescale to `apply` (None when the TaskManagers'
/// memory cannot be derived or Flink did not report their usage).
fn tune_memory(
    config: &BTreeMap<String, String>,
    settings: &AutoscalerSettings,
    graph: &[GraphVertex],
    decision: &flink_autoscaler::decide::JobDecision,
    apply: &BTreeMap<String, u32>,
    cluster: &ClusterResources,
) -> Option<flink_autoscaler::memory::MemoryRecommendation> {
    if cluster.memory == 0 {
        return None;
    }
    let spec = match flink_autoscaler::memory::TaskManagerMemory::derive(config, cluster.memory) {
        Ok(spec) => spec,
        Err(why) => {
            tracing::info!(%why, "autoscaler: TaskManager memory not tuned");
            return None;
        }
    };
    let spt = cluster.slots_per_task_manager;
    let task_managers = (
        task_managers_needed(graph, &BTreeMap::new(), spt),
        task_managers_needed(graph, apply, spt),
    );
    flink_autoscaler::memory::recommend(
        &spec,
        &decision.evaluation.memory_used,
        graph,
        apply,
        config,
        task_managers,
        &settings.memory_tuning,
    )
    .unwrap_or_else(|why| {
        tracing::info!(%why, "autoscaler: TaskManager memory not tuned");
        None
    })
}

/// After an in-place scale-down a standalone cluster has TaskManagers the job no longer uses:
/// the idle ones beyond what the job needs (at the parallelism chosen for it) are let go. They
/// get the lowest `controller.kubernetes.io/pod-deletion-cost` (any other TaskManager pod loses
/// an earlier mark), then the Deployment's replicas drop by as many, so its ReplicaSet deletes
/// exactly those pods and no running task is touched. Errors are logged; the next reconcile
/// looks again.
async fn release_idle_task_managers(
    ctx: &Context,
    resource: &FlinkDeployment,
    observed: &ObservedCluster,
    target: &Target<'_>,
    chosen: &BTreeMap<String, u32>,
) -> Vec<Note> {
    let fixed = resource
        .spec
        .task_manager
        .as_ref()
        .and_then(|tm| tm.replicas)
        .is_some();
    let standalone = resource.spec.mode_or_default()
        == flink_api::deployment::KubernetesDeploymentMode::Standalone;
    let Some(running) = observed
        .task_manager
        .as_ref()
        .map(|tm| tm.replicas.max(0) as u32)
    else {
        return Vec::new();
    };
    if fixed || !standalone {
        return Vec::new();
    }
    let cluster = cluster_of(&spec_config(ctx, resource), observed);
    let needed = task_managers_needed(target.graph, chosen, cluster.slots_per_task_manager);
    if running <= needed.max(1) {
        return Vec::new();
    }
    match release(ctx, resource, target.client, running, needed).await {
        Ok(released) if released.is_empty() => Vec::new(),
        Ok(released) => vec![Note::normal(
            "Scaling",
            format!(
                "Releasing {} idle TaskManager(s) the job no longer needs ({}); {} remain",
                released.len(),
                released.join(", "),
                running as usize - released.len()
            ),
        )],
        Err(e) => {
            tracing::warn!(error = %e, "cannot release idle TaskManagers");
            Vec::new()
        }
    }
}

async fn release(
    ctx: &Context,
    resource: &FlinkDeployment,
    client: &FlinkClient,
    running: u32,
    needed: u32,
) -> Result<Vec<String>, String> {
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let reported = client
        .task_managers()
        .await
        .map_err(|e| e.to_string())?
        .taskmanagers;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let selector =
        render::task_manager_selector(&resource.name_any(), resource.spec.mode_or_default());
    let listed = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| e.to_string())?;
    let alive: Vec<&Pod> = listed
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let names: Vec<String> = alive.iter().map(|p| p.name_any()).collect();
    let released = idle_to_release(&reported, &names, running, needed);
    if released.is_empty() {
        return Ok(released);
    }
    for pod in alive {
        let name = pod.name_any();
        let marked = pod.annotations().contains_key(POD_DELETION_COST);
        let cost = released.contains(&name).then_some(RELEASE_COST);
        if cost.is_none() && !marked {
            continue;
        }
        let patch = json!({"metadata": {"annotations": {POD_DELETION_COST: cost}}});
        pods.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("pod {name}: {e}"))?;
    }
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
    let tm = render::task_manager_name(&resource.name_any());
    let patch = json!({"spec": {"replicas": running as usize - released.len()}});
    deployments
        .patch(&tm, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("Deployment {tm}: {e}"))?;
    Ok(released)
}

/// Kubernetes' annotation for the pods a ReplicaSet deletes first (lowest cost first).
const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The cost given to a TaskManager pod being released.
const RELEASE_COST: &str = "-1000";

/// The Flink configuration the user's spec renders (without the autoscaler's memory tuning).
fn spec_config(ctx: &Context, resource: &FlinkDeployment) -> BTreeMap<String, String> {
    let defaults = ctx
        .dynamic()
        .flink_defaults_for(&resource.namespace().unwrap_or_default());
    render::flink_config(&render::RenderInput::for_resource(
        resource,
        &resource.spec,
        &defaults,
    ))
    .unwrap_or_default()
}

/// The cluster's TaskManagers as they run now, with what each one has (from the rendered
/// `config`).
fn cluster_of(config: &BTreeMap<String, String>, observed: &ObservedCluster) -> ClusterResources {
    let task_managers = observed
        .task_manager
        .as_ref()
        .map_or(0, |tm| tm.replicas.max(0) as u32);
    cluster_resources(config, task_managers)
}

/// The running job a rescale is for.
struct Target<'a> {
    client: &'a FlinkClient,
    job: &'a JobId,
    details: &'a JobDetails,
    graph: &'a [GraphVertex],
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
    let mut vertices = BTreeMap::new();
    let mut missing = Vec::new();
    for vertex in graph {
        let source = vertex.inputs.is_empty();
        let available = client.vertex_metric_names(job, &vertex.id).await?;
        let names = vertex_query(&available, source);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let answers = client
            .vertex_metrics(
                job,
                &vertex.id,
                &names,
                &[
                    Aggregation::Sum,
                    Aggregation::Max,
                    Aggregation::Min,
                    Aggregation::Avg,
                ],
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
    let answers = client
        .taskmanager_metrics(&TASK_MANAGER_QUERY, &[Aggregation::Max])
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

/// Rescales in place; a standalone cluster first gets the TaskManagers the new slots need.
/// Returns the events and, when the rescale could not be done, why.
async fn apply(
    ctx: &Context,
    resource: &FlinkDeployment,
    cluster: &ClusterResources,
    target: &Target<'_>,
    changes: &BTreeMap<String, u32>,
    memory_change: Option<&str>,
) -> (Vec<Note>, Option<String>) {
    let Target {
        client,
        job,
        details,
        graph,
    } = *target;
    if let Some(memory) = memory_change {
        // The deployment's decision redeploys the job with both (`AutoscalerView::redeploy`).
        let why = format!(
            "Rescaling by a redeploy in the job's upgrade mode: {}; {memory}: TaskManager memory cannot change in place",
            summary_of(graph, changes)
        );
        return (vec![Note::normal("Scaling", why)], None);
    }
    if !is_adaptive(details) && !overrides_honoured(resource) {
        let why = format!(
            "Not rescaled ({}): the job does not run the adaptive scheduler, and Flink 2.x does not apply pipeline.jobvertex-parallelism-overrides to the job it runs, so a redeploy would not change its parallelism; use jobmanager.scheduler: adaptive (the default for autoscaled jobs)",
            summary_of(graph, changes)
        );
        return (
            vec![Note::warning("ScalingLimited", why.clone())],
            Some(why),
        );
    }
    if !is_adaptive(details) {
        // The deployment's decision redeploys the job (`AutoscalerView::redeploy`).
        let why = format!(
            "Rescaling by a redeploy in the job's upgrade mode: {}; the job does not run the adaptive scheduler (jobmanager.scheduler: adaptive), so it cannot be rescaled in place",
            summary_of(graph, changes)
        );
        return (vec![Note::normal("Scaling", why)], None);
    }
    let mut notes = Vec::new();
    if resource.spec.mode_or_default()
        == flink_api::deployment::KubernetesDeploymentMode::Standalone
        && resource
            .spec
            .task_manager
            .as_ref()
            .and_then(|tm| tm.replicas)
            .is_none()
    {
        let needed = task_managers_needed(graph, changes, cluster.slots_per_task_manager);
        if needed > cluster.task_managers {
            let deployments: Api<Deployment> = Api::namespaced(
                ctx.client.clone(),
                &resource.namespace().unwrap_or_else(|| "default".into()),
            );
            let tm = render::task_manager_name(&resource.name_any());
            let patch = json!({"spec": {"replicas": needed}});
            if let Err(e) = deployments
                .patch(&tm, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                notes.push(Note::warning(
                    "ScalingLimited",
                    format!("Cannot add TaskManagers for the new parallelism: {e}"),
                ));
            }
        }
    }
    let result = async {
        let current = client.resource_requirements(job).await?;
        client
            .set_resource_requirements(job, &in_place_requirements(&current, changes))
            .await
    }
    .await;
    let summary = summary_of(graph, changes);
    match result {
        Ok(()) => {
            notes.push(Note::normal(
                "Scaling",
                format!("Rescaling in place: {summary}"),
            ));
            (notes, None)
        }
        Err(e) => {
            let why = format!(
                "the in-place rescale ({summary}) failed: {e}; the new parallelism applies at the next deploy"
            );
            notes.push(Note::warning("ScalingLimited", why.clone()));
            (notes, Some(why))
        }
    }
}

/// Stores the state in `autoscaler-<name>`, owned by the deployment (deleted with it).
async fn store(
    ctx: &Context,
    resource: &FlinkDeployment,
    maps: &Api<ConfigMap>,
    name: &str,
    packed: Vec<u8>,
    nonce: Option<String>,
) -> Result<(), kube::Error> {
    let packed = k8s_openapi::ByteString(packed);
    let mut data = BTreeMap::new();
    if let Some(nonce) = nonce {
        data.insert(NONCE_KEY.to_string(), nonce);
    }
    let map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {"app": resource.name_any(), "component": "autoscaler"},
            "ownerReferences": [{
                "apiVersion": flink_api::API_VERSION,
                "kind": "FlinkDeployment",
                "name": resource.name_any(),
                "uid": resource.uid().unwrap_or_default(),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "data": data,
        "binaryData": {STATE_KEY: packed},
    });
    maps.patch(
        name,
        &PatchParams::apply(&ctx.settings.field_manager).force(),
        &Patch::Apply(&map),
    )
    .await?;
    Ok(())
}
