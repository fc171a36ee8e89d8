//! Tenant policy plugins in the operator: the active bindings (hot-reloaded from the policies
//! ConfigMap and the plugin directory) and the pod-template step that runs between decide and
//! act.
//!
//! Reload: a change of the ConfigMap's data or of a file in the plugin directory (debounced)
//! re-activates the bindings (`flink_policy::tenancy::activate`: pin, compile off the runtime,
//! validate-config, smoke call) and swaps them in as one `Arc`; a reconcile holding the old
//! `Arc` finishes on it. How each binding fared goes to the ConfigMap's
//! `flink-operator.io/policies-status` annotation and to events on the ConfigMap.
//!
//! Pod templates: `decide` renders the cluster as if no plugin existed; `pod_templates` passes
//! each Deployment's pod template through the tenant's plugin before `act` applies it. A plugin
//! that fails falls back to its last good patch for that resource (re-checked against the
//! guard), else the plan is held: nothing is applied and the status says why.

use crate::reconcile::autoscaling::{ScalingPolicy, ScalingVerdict, unknown_usage_verdict};
use crate::reconcile::observed::{ObservedCheckpoint, ObservedCluster, ObservedSessionJob};
use crate::reconcile::pod_templates::{PodOutcome, apply_outcomes, without_decision};
use crate::reconcile::status::state_name;
use crate::reconcile::upgrade_policy::{self, UpgradePolicy, UpgradeVerdict};
use crate::reconcile::{Effect, Note, Plan, Reason};
use crate::redact::Redactor;
use crate::settings::PolicySettings;
use flink_api::validation::FieldError;
use flink_api::{
    FlinkDeployment, FlinkDeploymentStatus, FlinkSessionJob, JobStatus, PolicyDecision,
};
use flink_autoscaler::GraphVertex;
use flink_autoscaler::decide::JobDecision;
use flink_autoscaler::window::MetricWindow;
use flink_policy::model::{
    Component, PodInput, Recommendation, ResourceRef, ScalingDecision, ScalingInput, SnapshotInfo,
    UpgradeDecision, UpgradeInput, UpgradeMode as ModelMode, Vertex,
};
use flink_policy::tenancy::{
    ActiveBinding, ActivePolicies, Breaker, CONFIG_KEY, PluginSource, PolicyConfig, activate,
};
use flink_policy::{ExtensionPoint, PolicyEngine};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::events::Recorder;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The annotation on the policies ConfigMap that reports the last activation.
pub const STATUS_ANNOTATION: &str = "flink-operator.io/policies-status";
/// Changes closer together than this are one reload.
const DEBOUNCE: Duration = Duration::from_millis(200);

pub struct Policies {
    pub engine: Arc<PolicyEngine>,
    pub settings: PolicySettings,
    active: RwLock<Arc<ActivePolicies>>,
    /// The ConfigMap content last activated, so our own annotation write is not a change.
    loaded: Mutex<Option<String>>,
    /// The last patch each resource's component got from its plugin: the fallback.
    last_good: Mutex<HashMap<String, (flink_policy::Digest, Value)>>,
}

impl Policies {
    pub fn new(settings: PolicySettings) -> Result<Arc<Policies>, String> {
        let options = flink_policy::EngineOptions {
            disk_cache: settings.cache_dir.clone(),
            pooling: settings
                .pool_slots
                .map(|instances| flink_policy::PoolingOptions {
                    instances,
                    max_memory_bytes: settings.maxima.memory_bytes,
                }),
            budget: settings.budget,
        };
        let engine = PolicyEngine::with_options(options)
            .map_err(|e| format!("cannot start the Wasm engine: {e:#}"))?;
        Ok(Arc::new(Policies {
            engine: Arc::new(engine),
            settings,
            active: RwLock::default(),
            loaded: Mutex::default(),
            last_good: Mutex::default(),
        }))
    }

    /// The bindings in effect now.
    pub fn active(&self) -> Arc<ActivePolicies> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn source(&self, config_map: Option<&ConfigMap>) -> PluginSource {
        let binary_data = config_map
            .and_then(|cm| cm.binary_data.as_ref())
            .map(|data| data.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
            .unwrap_or_default();
        PluginSource {
            binary_data,
            directory: self.settings.plugin_dir.clone(),
        }
    }

    /// Reads the ConfigMap and activates what it says; `force` reloads even when its content
    /// did not change (a plugin file did).
    pub async fn reload(&self, client: &Client, recorder: &Recorder, force: bool) {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.settings.namespace);
        let config_map = match api.get_opt(&self.settings.config_map).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the policies ConfigMap; the bindings stay as they are");
                return;
            }
        };
        let content = config_map
            .as_ref()
            .map(|cm| serde_json::to_string(&(&cm.data, &cm.binary_data)).unwrap_or_default())
            .unwrap_or_default();
        {
            let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            if !force && loaded.as_deref() == Some(content.as_str()) {
                return;
            }
            *loaded = Some(content);
        }
        let previous = self.active();
        let text = config_map
            .as_ref()
            .and_then(|cm| cm.data.as_ref())
            .and_then(|data| data.get(CONFIG_KEY).cloned())
            .unwrap_or_default();
        let next = match PolicyConfig::parse(&text) {
            Ok(config) => {
                activate(
                    &self.engine,
                    config,
                    &self.source(config_map.as_ref()),
                    &previous,
                    &self.settings.maxima,
                )
                .await
            }
            Err(errors) => ActivePolicies::keep_with_errors(&previous, errors),
        };
        let next = Arc::new(next);
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        // Compiled plugins no binding uses any more are forgotten (memory and disk cache).
        let in_use = next
            .bindings
            .values()
            .map(|b| b.plugin.digest.clone())
            .collect();
        let deleted = self.engine.retain(&in_use);
        if deleted > 0 {
            tracing::info!(deleted, "plugin compile cache: unused artifacts deleted");
        }
        if let Some(config_map) = &config_map {
            self.report(&api, recorder, config_map, &previous, &next)
                .await;
        }
    }

    /// Writes the activation report to the ConfigMap and an event per binding that changed.
    async fn report(
        &self,
        api: &Api<ConfigMap>,
        recorder: &Recorder,
        config_map: &ConfigMap,
        previous: &ActivePolicies,
        next: &ActivePolicies,
    ) {
        let report = json!({
            "configErrors": next.config_errors,
            "bindings": next.reports,
        });
        let mut notes = Vec::new();
        if !next.config_errors.is_empty() && next.config_errors != previous.config_errors {
            notes.push(Note::warning(
                Reason::PolicyConfigInvalid,
                format!(
                    "{} is invalid, the previous bindings stay in effect: {}",
                    CONFIG_KEY,
                    next.config_errors.join("; ")
                ),
            ));
        }
        for report in &next.reports {
            if previous.reports.contains(report) {
                continue;
            }
            let what = format!(
                "tenant {} {} plugin {}",
                report.tenant, report.extension_point, report.plugin
            );
            notes.push(match &report.error {
                None => Note::normal(
                    Reason::PolicyActivated,
                    format!(
                        "{what} {} is active",
                        report.active_digest.as_ref().map_or("", |d| d.0.as_str())
                    ),
                ),
                Some(error) => Note::warning(Reason::PolicyRejected, format!("{what}: {error}")),
            });
        }
        super::act::report_on_config_map(
            api,
            recorder,
            config_map,
            STATUS_ANNOTATION,
            &report.to_string(),
            &notes,
        )
        .await;
    }

    /// Reloads whenever the ConfigMap or a plugin file changes, until `shutdown`.
    pub async fn watch(
        self: Arc<Self>,
        client: Client,
        recorder: Recorder,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        let _file_watcher = self.settings.plugin_dir.as_ref().and_then(|dir| {
            use notify::Watcher;
            let tx = tx.clone();
            let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = tx.send(true);
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "cannot watch the plugin directory"))
            .ok()?;
            // The directory itself (not its files): a ConfigMap volume swaps a `..data` symlink.
            watcher
                .watch(dir, notify::RecursiveMode::NonRecursive)
                .map_err(|e| tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the plugin directory"))
                .ok()?;
            Some(watcher)
        });
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.settings.namespace);
        let name = self.settings.config_map.clone();
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let events = watcher(api, config).for_each(|event| {
            let tx = tx.clone();
            let name = name.clone();
            async move {
                let relevant = match &event {
                    Ok(
                        watcher::Event::Apply(cm)
                        | watcher::Event::Delete(cm)
                        | watcher::Event::InitApply(cm),
                    ) => cm.name_any() == name,
                    Ok(watcher::Event::InitDone) => true,
                    _ => false,
                };
                if relevant {
                    let _ = tx.send(false);
                }
            }
        });
        let reloads = async {
            while let Some(first) = rx.recv().await {
                let mut force = first;
                tokio::time::sleep(DEBOUNCE).await;
                while let Ok(more) = rx.try_recv() {
                    force |= more;
                }
                self.reload(&client, &recorder, force).await;
            }
        };
        tokio::select! {
            _ = events => {}
            _ = reloads => {}
            _ = shutdown => {}
        }
    }

    /// The tenant's upgrade-strategy verdict on the upgrade this FlinkDeployment's reconcile
    /// would start, when there is one and the tenant has such a plugin.
    pub async fn upgrade_verdict(
        &self,
        resource: &FlinkDeployment,
        observed: &ObservedCluster,
        now_ms: i64,
    ) -> Option<UpgradePolicy> {
        let (old, new) = upgrade_policy::pending_upgrade(resource)?;
        let question = UpgradeQuestion::new(
            &old,
            &new,
            new.job.as_ref(),
            resource.status.as_ref().and_then(|s| s.job_status.as_ref()),
            observed.latest_checkpoint.as_ref(),
        );
        self.ask_upgrade(resource, question, now_ms).await
    }

    /// The same for a FlinkSessionJob (the specs the plugin sees are session job specs; the
    /// resource's kind says so).
    pub async fn session_job_upgrade_verdict(
        &self,
        resource: &FlinkSessionJob,
        observed: &ObservedSessionJob,
        now_ms: i64,
    ) -> Option<UpgradePolicy> {
        let (old, new) = upgrade_policy::pending_session_job_upgrade(resource)?;
        let question = UpgradeQuestion::new(
            &old,
            &new,
            new.job.as_ref(),
            resource.status.as_ref().and_then(|s| s.job_status.as_ref()),
            observed.latest_checkpoint.as_ref(),
        );
        self.ask_upgrade(resource, question, now_ms).await
    }

    async fn ask_upgrade<K>(
        &self,
        resource: &K,
        question: UpgradeQuestion<'_>,
        now_ms: i64,
    ) -> Option<UpgradePolicy>
    where
        K: Resource<DynamicType = ()>,
    {
        let namespace = resource.namespace().unwrap_or_default();
        let active = self.active();
        let binding = active.binding_for(&namespace, resource.labels(), ExtensionPoint::Upgrade)?;
        let by = decision_base(&binding, &active);
        let job = question.job;
        let savepoint = job
            .and_then(|j| j.savepoint_info.as_ref())
            .and_then(|i| i.last_savepoint.as_ref());
        let checkpoint_time = job
            .and_then(|j| j.checkpoint_info.as_ref())
            .and_then(|i| i.last_checkpoint.as_ref())
            .map(|c| c.time_stamp);
        let input = UpgradeInput {
            resource: resource_ref(resource, &binding.tenant),
            now_epoch_ms: now_ms,
            old_spec: question.old_spec,
            new_spec: question.new_spec,
            requested_mode: to_model(question.requested.unwrap_or_default()),
            job_state: job
                .and_then(|j| j.state)
                .map_or_else(String::new, |s| state_name(s).to_string()),
            snapshots: SnapshotInfo {
                last_savepoint: savepoint.and_then(|s| s.location.clone()),
                last_savepoint_epoch_ms: savepoint.map(|s| s.time_stamp),
                last_checkpoint: question.latest_checkpoint.map(|c| c.path.clone()),
                last_checkpoint_epoch_ms: question
                    .latest_checkpoint
                    .map(|c| c.completed_at)
                    .or(checkpoint_time),
            },
            config: binding.config.clone(),
        };
        let answer = guarded(&binding, now_ms, async {
            self.engine
                .upgrade(&binding.plugin, &input, &binding.limits)
                .await
        })
        .await;
        let verdict = match answer {
            Ok(decision) => match decision {
                UpgradeDecision::Proceed {
                    mode,
                    savepoint_first,
                    reason,
                } => UpgradeVerdict::Proceed {
                    mode: from_model(mode),
                    savepoint_first,
                    reason,
                },
                UpgradeDecision::WaitUntil {
                    until_epoch_ms,
                    reason,
                } => UpgradeVerdict::WaitUntil {
                    until_ms: until_epoch_ms,
                    reason,
                },
                UpgradeDecision::Refuse { reason } => UpgradeVerdict::Refuse { reason },
            },
            Err(reason) => UpgradeVerdict::Unavailable { reason },
        };
        Some(UpgradePolicy { by, verdict })
    }

    /// The tenant's scaling plugin's verdict on the autoscaler's decision (None:
    /// the tenant has no scaling plugin). Checked and clamped by the host; a failure is
    /// `Unavailable`, and the built-in decision applies (scaling fails open).
    pub async fn scaling_verdict(
        &self,
        client: &Client,
        resource: &FlinkDeployment,
        question: &ScalingQuestion<'_>,
        now_ms: i64,
    ) -> Option<ScalingPolicy> {
        let ScalingQuestion {
            job_id,
            graph,
            decision,
            window,
        } = *question;
        let namespace = resource.namespace().unwrap_or_default();
        let active = self.active();
        let binding = active.binding_for(&namespace, resource.labels(), ExtensionPoint::Scaling)?;
        let by = decision_base(&binding, &active);
        let usage = tenant_slots_in_use(client, &active, &binding.tenant, resource).await;
        // A quota is never enforced against a made-up 0: a plugin of interface 1.1 is told
        // the error (`tenant.slots-in-use`); one of 1.0 cannot be, so it is not asked and the
        // binding's choice decides.
        if let Err(why) = &usage
            && !binding.plugin.shape.imports_tenant()
        {
            let verdict = unknown_usage_verdict(why, binding.on_unknown_usage);
            return Some(ScalingPolicy { by, verdict });
        }
        let answer = guarded(&binding, now_ms, async {
            let mut input = scaling_input(
                resource_ref(resource, &binding.tenant),
                graph,
                decision,
                window,
                *usage.as_ref().unwrap_or(&0),
                binding.config.clone(),
                now_ms,
            );
            input.tenant_usage_error = usage.as_ref().err().cloned();
            input.job_id = job_id.to_string();
            self.engine
                .scaling(&binding.plugin, &input, &binding.limits)
                .await
        })
        .await;
        let verdict = match answer {
            Ok(decision) => match decision {
                ScalingDecision::Follow => ScalingVerdict::Follow,
                ScalingDecision::Override { vertices, reason } => ScalingVerdict::Override {
                    parallelism: vertices
                        .into_iter()
                        .map(|v| (v.vertex_id, v.parallelism))
                        .collect(),
                    reason,
                },
                ScalingDecision::Veto { reason } => ScalingVerdict::Veto { reason },
            },
            Err(reason) => ScalingVerdict::Unavailable { reason },
        };
        Some(ScalingPolicy { by, verdict })
    }

    /// Passes the pod templates `plan` applies through the resource's pod-template plugin.
    pub async fn pod_templates(
        &self,
        resource: &FlinkDeployment,
        plan: Plan<FlinkDeploymentStatus>,
        now_ms: i64,
    ) -> Plan<FlinkDeploymentStatus> {
        let namespace = resource.namespace().unwrap_or_default();
        let labels: BTreeMap<String, String> = resource.labels().clone();
        let active = self.active();
        let Some(binding) = active.binding_for(&namespace, &labels, ExtensionPoint::PodTemplate)
        else {
            return without_decision(plan, ExtensionPoint::PodTemplate);
        };
        let carries_pods = plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyCluster(_) | Effect::ApplyTaskManagers(_)));
        if !carries_pods {
            return plan;
        }
        let mut plan = plan;
        let mut outcomes = Vec::new();
        // Where the native-mode TaskManager pod template file sits in the rendered ConfigMap.
        let native_file = format!("/data/{}", crate::render::NATIVE_TM_TEMPLATE_FILE);
        for action in &mut plan.actions {
            // Each pod template the action carries: a Deployment's, or (native mode) the
            // TaskManager pod template file Flink reads from the ConfigMap.
            let mut templates: Vec<(Component, &mut Value, &str)> = Vec::new();
            match action {
                Effect::ApplyCluster(objects) => {
                    let objects = &mut **objects;
                    templates.push((
                        Component::JobManager,
                        &mut objects.job_manager,
                        "/spec/template",
                    ));
                    if let Some(tm) = objects.task_manager.as_mut() {
                        templates.push((Component::TaskManager, tm, "/spec/template"));
                    }
                    templates.push((
                        Component::TaskManager,
                        &mut objects.config_map,
                        &native_file,
                    ));
                }
                Effect::ApplyTaskManagers(tm) => {
                    templates.push((Component::TaskManager, &mut **tm, "/spec/template"))
                }
                _ => continue,
            }
            for (component, object, pointer) in templates {
                let Some(slot) = object.pointer_mut(pointer) else {
                    continue;
                };
                let in_file = pointer == native_file;
                let template = if in_file {
                    match slot
                        .as_str()
                        .and_then(|text| serde_json::from_str::<Value>(text).ok())
                    {
                        Some(template) => template,
                        None => continue,
                    }
                } else {
                    slot.clone()
                };
                let (outcome, patched) = self
                    .transform(resource, &binding, component, &template, now_ms)
                    .await;
                if let Some(patched) = patched {
                    *slot = if in_file {
                        Value::String(serde_json::to_string_pretty(&patched).unwrap_or_default())
                    } else {
                        patched
                    };
                }
                outcomes.push(outcome);
            }
        }
        let base = decision_base(&binding, &active);
        let stored = resource.status.clone().unwrap_or_default();
        apply_outcomes(plan, &stored, base, &outcomes)
    }

    /// Why `resource`'s tenant cannot be told (a shared namespace whose tenant label names no
    /// tenant sharing it), as the resource's field error; None when it can (or none applies).
    pub fn tenancy_error<K: Resource<DynamicType = ()>>(&self, resource: &K) -> Option<FieldError> {
        let active = self.active();
        let namespace = resource.namespace().unwrap_or_default();
        let problem = active
            .config
            .tenant_of(&namespace, resource.labels())
            .err()?;
        let label = active.config.tenant_label.clone().unwrap_or_default();
        Some(FieldError::new(
            &format!("metadata.labels.{label}"),
            problem,
        ))
    }

    /// Forgets the last good patches of a resource that is gone.
    pub fn forget(&self, namespace: &str, name: &str) {
        let prefix = format!("{namespace}/{name}/");
        self.last_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| !key.starts_with(&prefix));
    }

    /// Keeps `patch` as the last good one for `key` (`<namespace>/<name>/<component>`), as a
    /// call that succeeded does (for tests of the pruning).
    #[cfg(test)]
    pub(crate) fn remember_good(&self, key: &str, patch: Value) {
        let digest = flink_policy::Digest::of(b"test");
        self.last_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (digest, patch));
    }

    /// Last good patches kept.
    pub fn remembered(&self) -> usize {
        self.last_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// One pod template through the plugin, or its fallback: the outcome and the template to
    /// apply instead of the rendered one (None: keep the rendered one, or hold).
    async fn transform(
        &self,
        resource: &FlinkDeployment,
        binding: &ActiveBinding,
        component: Component,
        template: &Value,
        now_ms: i64,
    ) -> (PodOutcome, Option<Value>) {
        let key = format!(
            "{}/{}/{component:?}",
            resource.namespace().unwrap_or_default(),
            resource.name_any()
        );
        let input = PodInput {
            resource: resource_ref(resource, &binding.tenant),
            component,
            flink_version: resource
                .spec
                .flink_version
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
            // A plugin never holds the resource's secrets (literal env values): it sees them
            // masked, and its patch is applied to the real template.
            pod_template: Redactor::for_resource(resource).scrub_json(template),
            config: binding.config.clone(),
        };
        let answer = guarded(binding, now_ms, async {
            self.engine
                .pod_template_onto(
                    &binding.plugin,
                    &input,
                    template,
                    &binding.guard,
                    &binding.limits,
                )
                .await
        })
        .await;
        let failure = match answer {
            Ok(decision) => {
                self.last_good
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (binding.plugin.digest.clone(), decision.patch));
                return (PodOutcome::Applied, Some(decision.pod_template));
            }
            Err(failure) => failure,
        };
        let last = self
            .last_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((digest, patch)) = last
            && let Ok(decision) =
                flink_policy::outputs::pod_template(template, &patch.to_string(), &binding.guard)
        {
            let why = format!("{failure}; the last good patch (from {digest}) was applied instead");
            return (PodOutcome::Fallback(why), Some(decision.pod_template));
        }
        (
            PodOutcome::Held(format!(
                "{failure}, and there is no earlier good patch for this {component:?} to fall back to"
            )),
            None,
        )
    }
}

/// What a scaling plugin is asked about: the autoscaler's decision for a running job.
pub struct ScalingQuestion<'a> {
    pub job_id: &'a str,
    pub graph: &'a [GraphVertex],
    pub decision: &'a JobDecision,
    /// The metric window the decision was taken on (a source's latest lag is read from it).
    pub window: &'a MetricWindow,
}

/// A scaling plugin's input: the vertices with what the autoscaler evaluated (busy ratio, true
/// processing rate, target rate, a source's latest lag) and the built-in recommendation with
/// its reasons.
fn scaling_input(
    resource: ResourceRef,
    graph: &[GraphVertex],
    decision: &JobDecision,
    window: &MetricWindow,
    tenant_slots_in_use: u32,
    config: Value,
    now_ms: i64,
) -> ScalingInput {
    let latest = window.samples.last();
    let finite = |v: f64| v.is_finite().then_some(v);
    let vertices = graph
        .iter()
        .map(|v| {
            let evaluated = decision.evaluation.vertices.get(&v.id);
            let lag = latest
                .and_then(|s| s.vertices.get(&v.id))
                .and_then(|s| finite(s.lag));
            Vertex {
                id: v.id.clone(),
                name: v.name.clone(),
                parallelism: v.parallelism,
                max_parallelism: v.max_parallelism,
                busy_ratio: evaluated.and_then(|e| finite(e.busy_time_ms_per_second / 1000.0)),
                processing_rate: evaluated.and_then(|e| finite(e.true_processing_rate)),
                target_rate: evaluated.and_then(|e| finite(e.target_rate)),
                pending_records: lag.map(|l| l.max(0.0) as u64),
                is_source: v.inputs.is_empty(),
            }
        })
        .collect();
    let recommendations = decision
        .changes
        .iter()
        .map(|(id, outcome)| Recommendation {
            vertex_id: id.clone(),
            current: outcome.current,
            recommended: outcome.new,
            reasons: outcome
                .reasons
                .iter()
                .filter_map(|r| serde_json::to_string(r).ok())
                .collect(),
        })
        .collect();
    ScalingInput {
        job_id: String::new(),
        resource,
        now_epoch_ms: now_ms,
        vertices,
        recommendations,
        tenant_slots_in_use,
        tenant_usage_error: None,
        config,
    }
}

/// Task slots the tenant's other FlinkDeployments use: each one's highest parallelism (the
/// autoscaler's, when it scaled the job, else `spec.job.parallelism`), summed; resources count
/// for the tenant they belong to (`tenant_of`), so no label makes one count for another. A
/// listing that fails is an error, never 0.
async fn tenant_slots_in_use(
    client: &Client,
    active: &ActivePolicies,
    tenant: &str,
    resource: &FlinkDeployment,
) -> Result<u32, String> {
    // Only where the tenant's resources can be (a namespaced operator cannot list elsewhere).
    let namespaces: std::collections::BTreeSet<&String> = active
        .config
        .tenants
        .iter()
        .filter(|t| t.name == tenant)
        .flat_map(|t| t.namespaces.iter().chain(&t.shared_namespaces))
        .collect();
    let mut items = Vec::new();
    for namespace in namespaces {
        let api: Api<FlinkDeployment> = Api::namespaced(client.clone(), namespace);
        let list = api.list(&Default::default()).await.map_err(|e| {
            format!("the tenant's FlinkDeployments in {namespace} cannot be listed: {e}")
        })?;
        items.extend(list.items);
    }
    Ok(items
        .iter()
        .filter(|d| d.uid() != resource.uid())
        .filter(|d| {
            let namespace = d.namespace().unwrap_or_default();
            active
                .config
                .tenant_of(&namespace, d.labels())
                .is_ok_and(|t| t.is_some_and(|t| t.name == tenant))
        })
        .map(|d| {
            let spec = d.spec.job.as_ref().and_then(|j| j.parallelism).unwrap_or(1);
            let scaled = d
                .status
                .as_ref()
                .and_then(|s| s.autoscaler.as_ref())
                .and_then(|a| a.parallelism.values().max().copied())
                .unwrap_or(0);
            spec.max(scaled).max(0) as u32
        })
        .sum())
}

/// A plugin call behind its binding's circuit breaker: the answer, or why there is none (the
/// breaker is open, or the call failed). The call is not made while the breaker is open, and
/// its outcome is recorded.
async fn guarded<T>(
    binding: &ActiveBinding,
    now_ms: i64,
    call: impl std::future::Future<Output = Result<flink_policy::Called<T>, flink_policy::CallFailure>>,
) -> Result<T, String> {
    if !binding.breaker.allows(now_ms) {
        return Err(Breaker::PAUSED.into());
    }
    match call.await {
        Ok(called) => {
            binding.breaker.record(true, now_ms);
            Ok(called.value)
        }
        Err(failure) => {
            binding.breaker.record(false, now_ms);
            Err(format!("the plugin {failure}"))
        }
    }
}

fn resource_ref<K: Resource<DynamicType = ()>>(resource: &K, tenant: &str) -> ResourceRef {
    ResourceRef {
        kind: K::kind(&()).into_owned(),
        namespace: resource.namespace().unwrap_or_default(),
        name: resource.name_any(),
        tenant: tenant.into(),
        labels: resource.labels().clone(),
    }
}

/// What an upgrade-strategy plugin is asked about an upgrade, for either kind of resource.
struct UpgradeQuestion<'a> {
    old_spec: Value,
    new_spec: Value,
    /// The new spec's upgrade mode (None: the spec has no job, i.e. stateless).
    requested: Option<flink_api::UpgradeMode>,
    job: Option<&'a JobStatus>,
    latest_checkpoint: Option<&'a ObservedCheckpoint>,
}

impl<'a> UpgradeQuestion<'a> {
    /// The question about the specs `old` and `new` (`new_job` is the new spec's job).
    fn new(
        old: &impl serde::Serialize,
        new: &impl serde::Serialize,
        new_job: Option<&flink_api::JobSpec>,
        job: Option<&'a JobStatus>,
        latest_checkpoint: Option<&'a ObservedCheckpoint>,
    ) -> Self {
        let old_spec = serde_json::to_value(old).unwrap_or_default();
        let new_spec = serde_json::to_value(new).unwrap_or_default();
        // A plugin never holds the specs' secrets: it sees both specs with them masked.
        let redactor = Redactor::of(&serde_json::json!({ "spec": &old_spec }))
            .merge(Redactor::of(&serde_json::json!({ "spec": &new_spec })));
        UpgradeQuestion {
            old_spec: redactor.scrub_json(&old_spec),
            new_spec: redactor.scrub_json(&new_spec),
            requested: new_job.map(|j| j.upgrade_mode),
            job,
            latest_checkpoint,
        }
    }
}

/// Who decides: the binding's tenant, plugin and digest (the outcome is filled in later). When
/// a newer version of the binding was rejected, `message` says so, so every affected resource
/// shows why its tenant's new plugin is not the one deciding.
fn decision_base(binding: &ActiveBinding, active: &ActivePolicies) -> PolicyDecision {
    PolicyDecision {
        extension_point: binding.point.world().into(),
        tenant: binding.tenant.clone(),
        plugin: binding.plugin.name.clone(),
        digest: binding.plugin.digest.0.clone(),
        outcome: String::new(),
        message: active
            .error_for(&binding.tenant, binding.point)
            .map(|error| format!("a newer version of this binding was rejected: {error}")),
    }
}

fn to_model(mode: flink_api::UpgradeMode) -> ModelMode {
    match mode {
        flink_api::UpgradeMode::Savepoint => ModelMode::Savepoint,
        flink_api::UpgradeMode::LastState => ModelMode::LastState,
        flink_api::UpgradeMode::Stateless => ModelMode::Stateless,
    }
}

fn from_model(mode: ModelMode) -> flink_api::UpgradeMode {
    match mode {
        ModelMode::Savepoint => flink_api::UpgradeMode::Savepoint,
        ModelMode::LastState => flink_api::UpgradeMode::LastState,
        ModelMode::Stateless => flink_api::UpgradeMode::Stateless,
    }
}
