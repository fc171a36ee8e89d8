//! Rendering: a FlinkDeployment (plus what the reconciler decided, e.g. a savepoint to restore
//! from) to the Kubernetes objects of its Flink cluster. Pure and deterministic: the same input
//! renders byte-identical objects, so server-side apply of an unchanged cluster is a no-op and
//! the golden files in `tests/golden/` pin every field.
//!
//! Standalone mode renders everything the cluster needs: ConfigMap `flink-config-<name>`,
//! Services `<name>` (internal, headless) and `<name>-rest`, the JobManager Deployment `<name>`
//! and the TaskManager Deployment `<name>-taskmanager`. Native mode renders the same minus the
//! TaskManager Deployment: Flink's own Kubernetes integration creates TaskManager pods from the
//! pod template carried in the ConfigMap. Both add the Ingress `<name>` when `spec.ingress` is
//! set.

mod config;
pub(crate) mod flink_options;
pub mod ingress;
mod pod;
mod resources;

pub use config::{
    config_file, config_file_name, config_file_text, flink_config, parallelism_overrides,
    parallelism_overrides_text, retain_checkpoints,
};
pub use pod::{NATIVE_TM_TEMPLATE_FILE, merge_templates};

use flink_api::config::options;
use flink_api::deployment::{FlinkDeploymentSpec, KubernetesDeploymentMode};
use flink_api::{FlinkDeployment, FlinkVersion};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The name of the main container in every pod we render, as upstream (templates refer to it).
pub const MAIN_CONTAINER: &str = "flink-main-container";
/// The JobManager Deployment's annotation recording which spec generation it runs.
pub const GENERATION_ANNOTATION: &str = "flinkdeployment.flink.apache.org/generation";
/// The JobManager Deployment's annotation recording which of the operator's own redeploys of
/// that generation it is (a restart, a rollback); absent for the first (revision 0).
pub const REVISION_ANNOTATION: &str = "flinkdeployment.flink.apache.org/revision";
/// Where the configuration ConfigMap is mounted in the Flink image.
pub const CONF_DIR: &str = "/opt/flink/conf";
pub const REST_PORT: u16 = 8081;
pub const RPC_PORT: u16 = 6123;
pub const BLOB_PORT: u16 = 6124;
pub const TASKMANAGER_RPC_PORT: u16 = 6122;
/// The Flink image used when the spec names none.
pub const DEFAULT_IMAGE: &str = "flink:2.3";

/// Everything rendering needs besides the spec: identity of the resource and what the
/// reconciler decided for this deployment.
#[derive(Clone, Debug)]
pub struct RenderInput<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub generation: i64,
    /// The operator's own redeploy of that generation (0 for the first).
    pub revision: i64,
    pub spec: &'a FlinkDeploymentSpec,
    /// Restore from this savepoint or checkpoint (application clusters).
    pub restore_from: Option<&'a str>,
    /// The fixed Flink job id of an application cluster (so a retry never runs a second job).
    pub job_id: Option<&'a str>,
    /// Operator-wide Flink defaults, overridden by the spec.
    pub defaults: &'a BTreeMap<String, String>,
    /// The parallelism the autoscaler chose per vertex (kept across deploys).
    pub autoscaler_overrides: Option<&'a BTreeMap<String, u32>>,
    /// The TaskManager memory the autoscaler's memory tuning chose (kept across deploys).
    pub autoscaler_memory: Option<&'a flink_autoscaler::memory::MemoryRecommendation>,
    /// The operator ConfigMap's log configuration files, for a spec without its own.
    pub log_defaults: Option<&'a BTreeMap<String, String>>,
}

impl<'a> RenderInput<'a> {
    /// Input for a stored FlinkDeployment: name, namespace, uid and generation from its metadata.
    pub fn for_resource(
        resource: &'a FlinkDeployment,
        spec: &'a FlinkDeploymentSpec,
        defaults: &'a BTreeMap<String, String>,
    ) -> Self {
        Self {
            name: resource.metadata.name.as_deref().unwrap_or_default(),
            namespace: resource.metadata.namespace.as_deref().unwrap_or("default"),
            uid: resource.metadata.uid.as_deref().unwrap_or_default(),
            generation: resource.metadata.generation.unwrap_or(0),
            revision: 0,
            spec,
            restore_from: None,
            job_id: None,
            defaults,
            autoscaler_overrides: None,
            autoscaler_memory: None,
            log_defaults: None,
        }
    }

    pub fn version(&self) -> FlinkVersion {
        self.spec.flink_version.unwrap_or(FlinkVersion::V2_3)
    }

    pub fn mode(&self) -> KubernetesDeploymentMode {
        self.spec.mode_or_default()
    }
}

/// The rendered objects of one Flink cluster, in the order they are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterObjects {
    pub config_map: Value,
    pub internal_service: Value,
    pub rest_service: Value,
    pub job_manager: Value,
    /// Standalone mode only.
    pub task_manager: Option<Value>,
    /// `spec.ingress`, to the REST Service; None: the one the resource owns goes.
    pub ingress: Option<Value>,
    /// `kubernetes.operator.ingress.manage` is off: no Ingress is applied or deleted.
    pub ingress_unmanaged: bool,
}

impl ClusterObjects {
    pub fn all(&self) -> Vec<&Value> {
        let mut out = vec![
            &self.config_map,
            &self.internal_service,
            &self.rest_service,
            &self.job_manager,
        ];
        out.extend(&self.task_manager);
        out.extend(&self.ingress);
        out
    }
}

/// Why a spec cannot be rendered. Validation catches these first; rendering re-checks what it
/// reads so that it never renders half a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RenderError {
    pub path: String,
    pub message: String,
}

impl RenderError {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Names of a cluster's objects.
pub fn job_manager_name(name: &str) -> String {
    name.to_string()
}
pub fn task_manager_name(name: &str) -> String {
    format!("{name}-taskmanager")
}
pub fn rest_service_name(name: &str) -> String {
    format!("{name}-rest")
}
pub fn config_map_name(name: &str) -> String {
    format!("flink-config-{name}")
}

/// The label selector of the ConfigMaps Flink's Kubernetes HA services keep for the cluster
/// `name` (its cluster id), in both modes.
pub fn ha_metadata_selector(name: &str) -> String {
    format!("app={name},type=flink-native-kubernetes")
}

/// Whether a ConfigMap the selector found is HA metadata of the cluster `name`:
/// `<name>-cluster-config-map` (leaders, job graphs), `<name>-<job id>-config-map`
/// (checkpoints, counter), or an older Flink's `<name>-...-leader`; never the configuration
/// ConfigMap (`flink-config-<name>`) or the autoscaler's state (`autoscaler-<name>`).
pub fn is_ha_metadata(name: &str, config_map: &str) -> bool {
    config_map
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| rest.ends_with("config-map") || rest.ends_with("-leader"))
}

/// Labels every object of the cluster carries (upstream's `app` and `type`).
pub fn cluster_labels(name: &str, mode: KubernetesDeploymentMode) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_string(), name.to_string()),
        (
            "type".to_string(),
            match mode {
                KubernetesDeploymentMode::Native => "flink-native-kubernetes",
                KubernetesDeploymentMode::Standalone => "flink-standalone",
            }
            .to_string(),
        ),
    ])
}

/// The selector of one component's pods.
pub fn component_labels(
    name: &str,
    mode: KubernetesDeploymentMode,
    component: Component,
) -> BTreeMap<String, String> {
    let mut labels = cluster_labels(name, mode);
    labels.insert("component".into(), component.as_str().into());
    labels
}

/// `app=<name>,component=taskmanager,type=…`: the scale subresource's selector.
pub fn task_manager_selector(name: &str, mode: KubernetesDeploymentMode) -> String {
    component_labels(name, mode, Component::TaskManager)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    JobManager,
    TaskManager,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobManager => "jobmanager",
            Self::TaskManager => "taskmanager",
        }
    }
}

/// Renders the whole cluster.
pub fn render(input: &RenderInput) -> Result<ClusterObjects, RenderError> {
    let config = flink_config(input)?;
    let mode = input.mode();
    let owner = owner_reference(input);
    let metadata = |name: String, extra_labels: BTreeMap<String, String>| {
        let mut labels = cluster_labels(input.name, mode);
        labels.extend(extra_labels);
        json!({
            "name": name,
            "namespace": input.namespace,
            "labels": labels,
            "ownerReferences": [owner.clone()],
        })
    };

    let mut data = BTreeMap::new();
    data.insert(
        config_file_name(input.version()).to_string(),
        config_file_text(input.version(), &config)?,
    );
    for (file, text) in log_configuration(input) {
        data.insert(file, text);
    }
    if mode == KubernetesDeploymentMode::Native {
        let template = pod::native_task_manager_template(input, &config)?;
        data.insert(
            pod::NATIVE_TM_TEMPLATE_FILE.into(),
            serde_json::to_string_pretty(&template).unwrap_or_default(),
        );
    }
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(config_map_name(input.name), BTreeMap::new()),
        "data": data,
    });

    let jm_selector = component_labels(input.name, mode, Component::JobManager);
    let mut internal_service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(input.name.to_string(), BTreeMap::new()),
        "spec": {
            "clusterIP": "None",
            "selector": jm_selector,
            "ports": [
                {"name": "jobmanager-rpc", "port": RPC_PORT, "targetPort": RPC_PORT, "protocol": "TCP"},
                {"name": "blobserver", "port": BLOB_PORT, "targetPort": BLOB_PORT, "protocol": "TCP"},
            ],
        },
    });
    let mut rest_service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(rest_service_name(input.name), BTreeMap::new()),
        "spec": {
            "type": rest_service_type(&config),
            "selector": jm_selector,
            "ports": [{"name": "rest", "port": REST_PORT, "targetPort": REST_PORT, "protocol": "TCP"}],
        },
    });
    if rest_service_headless(&config) {
        rest_service["spec"]["clusterIP"] = json!("None");
    }
    with_service_options(&mut rest_service, &config, "rest-service")?;
    with_service_options(&mut internal_service, &config, "internal-service")?;

    let jm_pod = pod::job_manager_pod(input, &config)?;
    let mut jm_metadata = metadata(
        job_manager_name(input.name),
        BTreeMap::from([("component".to_string(), "jobmanager".to_string())]),
    );
    jm_metadata["annotations"] = json!({ GENERATION_ANNOTATION: input.generation.to_string() });
    if input.revision != 0 {
        jm_metadata["annotations"][REVISION_ANNOTATION] = json!(input.revision.to_string());
    }
    let job_manager = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": jm_metadata,
        "spec": {
            "replicas": input.spec.job_manager.as_ref().map_or(1, |jm| jm.replicas),
            "selector": {"matchLabels": jm_selector},
            "strategy": {"type": "Recreate"},
            "template": jm_pod,
        },
    });

    let task_manager = match mode {
        KubernetesDeploymentMode::Native => None,
        KubernetesDeploymentMode::Standalone => {
            let tm_pod = pod::task_manager_pod(input, &config)?;
            let selector = component_labels(input.name, mode, Component::TaskManager);
            Some(json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": metadata(
                    task_manager_name(input.name),
                    BTreeMap::from([("component".to_string(), "taskmanager".to_string())]),
                ),
                "spec": {
                    "replicas": task_manager_replicas(input.spec, &config),
                    "selector": {"matchLabels": selector},
                    "template": tm_pod,
                },
            }))
        }
    };
    let ingress = deployment_ingress(input).transpose()?;
    Ok(ClusterObjects {
        config_map,
        internal_service,
        rest_service,
        job_manager,
        task_manager,
        ingress,
        ingress_unmanaged: false,
    })
}

/// TaskManager pods: `taskManager.replicas` if set, else enough slots for the parallelism
/// (`ceil(parallelism / slots)`, upstream's `getNumTaskManagers`); with per-vertex overrides
/// (the autoscaler's), for the highest of them, since slot sharing runs one subtask of every
/// vertex per slot.
pub fn task_manager_replicas(spec: &FlinkDeploymentSpec, config: &BTreeMap<String, String>) -> i32 {
    if let Some(replicas) = spec.task_manager.as_ref().and_then(|tm| tm.replicas) {
        return replicas;
    }
    let overridden = config::parallelism_overrides(config.get(options::PARALLELISM_OVERRIDES.key))
        .into_values()
        .max()
        .map_or(1, |p| p.min(i32::MAX as u32) as i32);
    let parallelism = config
        .get("parallelism.default")
        .and_then(|p| p.trim().parse::<i32>().ok())
        .unwrap_or(1)
        .max(overridden)
        .max(1);
    let slots = config
        .get("taskmanager.numberOfTaskSlots")
        .and_then(|s| s.trim().parse::<i32>().ok())
        .unwrap_or(1)
        .max(1);
    (parallelism + slots - 1) / slots
}

/// A Service's labels and annotations from Flink's options (the cluster's own labels win).
fn with_service_options(
    service: &mut Value,
    config: &BTreeMap<String, String>,
    name: &str,
) -> Result<(), RenderError> {
    let (labels, annotations) = flink_options::service_metadata(config, name)?;
    for (k, v) in labels {
        let existing = &mut service["metadata"]["labels"];
        if existing.get(&k).is_none() {
            existing[k] = json!(v);
        }
    }
    if !annotations.is_empty() {
        service["metadata"]["annotations"] = json!(annotations);
    }
    Ok(())
}

/// `kubernetes.rest-service.exposed.type`: Flink's `ClusterIP` (default), `NodePort`,
/// `LoadBalancer`, or `Headless_ClusterIP` (a ClusterIP Service without a cluster IP).
fn rest_service_type(config: &BTreeMap<String, String>) -> String {
    match config
        .get("kubernetes.rest-service.exposed.type")
        .map(|t| t.trim())
    {
        Some("NodePort") => "NodePort".into(),
        Some("LoadBalancer") => "LoadBalancer".into(),
        _ => "ClusterIP".into(),
    }
}

fn rest_service_headless(config: &BTreeMap<String, String>) -> bool {
    config
        .get("kubernetes.rest-service.exposed.type")
        .is_some_and(|t| t.trim() == "Headless_ClusterIP")
}

/// The FlinkDeployment's Ingress (`spec.ingress`) to its REST Service, owned by it.
pub fn deployment_ingress(input: &RenderInput) -> Option<Result<Value, RenderError>> {
    let spec = input.spec.ingress.as_ref()?;
    Some(ingress::ingress(
        spec,
        input.name,
        input.namespace,
        &rest_service_name(input.name),
        REST_PORT,
        owner_reference(input),
    ))
}

fn owner_reference(input: &RenderInput) -> Value {
    json!({
        "apiVersion": flink_api::API_VERSION,
        "kind": "FlinkDeployment",
        "name": input.name,
        "uid": input.uid,
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `spec.logConfiguration` as given, else the operator ConfigMap's `log4j-console.properties` /
/// `logback-console.xml` (upstream's defaults) over a console log4j configuration like the
/// Flink image's.
fn log_configuration(input: &RenderInput) -> BTreeMap<String, String> {
    if let Some(files) = input
        .spec
        .log_configuration
        .as_ref()
        .filter(|f| !f.is_empty())
    {
        return files.clone();
    }
    // The operator's files over the built-in log4j one, file by file: a logback file alone
    // keeps log4j's console logging (Flink's image falls back to log4j without its file).
    let mut files = BTreeMap::from([(
        "log4j-console.properties".to_string(),
        DEFAULT_LOG4J.to_string(),
    )]);
    files.extend(input.log_defaults.cloned().unwrap_or_default());
    files
}

/// Flink's console logging (like the Flink image's); the chart's copy is this same file, which
/// `defaultConfiguration.append` puts before the values' own lines.
const DEFAULT_LOG4J: &str =
    include_str!("../../../../charts/flink-operator/files/log4j-console.properties");

#[cfg(test)]
mod ha_tests {
    use super::is_ha_metadata;

    #[test]
    fn only_flinks_ha_config_maps_of_the_cluster_are_ha_metadata() {
        for ha in [
            "keeper-cluster-config-map",
            "keeper-ecc9d7296c530d910000000000000001-config-map",
            "keeper-resourcemanager-leader",
        ] {
            assert!(is_ha_metadata("keeper", ha), "{ha}");
        }
        for other in [
            "flink-config-keeper",
            "autoscaler-keeper",
            "keeper",
            "keeper2-cluster-config-map",
            "other-cluster-config-map",
        ] {
            assert!(!is_ha_metadata("keeper", other), "{other}");
        }
    }
}
