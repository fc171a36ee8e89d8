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
mod pod_templates;
mod reload;
mod scaling;
mod upgrade;

pub use scaling::ScalingQuestion;

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
