//! `FlinkDeployment`: a Flink cluster, and the job it runs unless it is a session cluster.

use crate::common::{JobSpec, JobStatus, ReconciliationStatus, ResourceLifecycleState};
use crate::config::FlinkConfiguration;
use crate::pod_template::PodTemplate;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::api::networking::v1::IngressTLS;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `spec` of a FlinkDeployment.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "flink.apache.org",
    version = "v1beta1",
    kind = "FlinkDeployment",
    namespaced,
    status = "FlinkDeploymentStatus",
    shortname = "flinkdep",
    derive = "PartialEq",
    derive = "Default",
    doc = "A Flink cluster (application or session) managed by the operator.",
    printcolumn = r#"{"name":"Job Status","type":"string","jsonPath":".status.jobStatus.state"}"#,
    printcolumn = r#"{"name":"Lifecycle State","type":"string","jsonPath":".status.lifecycleState"}"#,
    scale = r#"{"specReplicasPath":".spec.taskManager.replicas","statusReplicasPath":".status.taskManager.replicas","labelSelectorPath":".status.taskManager.labelSelector"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkDeploymentSpec {
    /// The job to run; absent for a session cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSpec>,
    /// Change to restart the cluster (and job) without other changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flink_configuration: Option<FlinkConfiguration>,
    /// Flink image, e.g. `flink:2.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Kubernetes service account of the Flink pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Flink version of the image; decides configuration format and features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flink_version: Option<FlinkVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// Base pod template for JobManager and TaskManager pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager: Option<JobManagerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_manager: Option<TaskManagerSpec>,
    /// Log configuration files by name (`log4j-console.properties`, `logback-console.xml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<BTreeMap<String, String>>,
    /// `native` (default): Flink creates TaskManager pods; `standalone`: the operator does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<KubernetesDeploymentMode>,
}

impl FlinkDeploymentSpec {
    pub fn is_application(&self) -> bool {
        self.job.is_some()
    }

    pub fn configuration(&self) -> FlinkConfiguration {
        self.flink_configuration.clone().unwrap_or_default()
    }

    pub fn mode_or_default(&self) -> KubernetesDeploymentMode {
        self.mode.unwrap_or_default()
    }
}

/// `spec.flinkVersion`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum FlinkVersion {
    #[serde(rename = "v1_13")]
    V1_13,
    #[serde(rename = "v1_14")]
    V1_14,
    #[serde(rename = "v1_15")]
    V1_15,
    #[serde(rename = "v1_16")]
    V1_16,
    #[serde(rename = "v1_17")]
    V1_17,
    #[serde(rename = "v1_18")]
    V1_18,
    #[serde(rename = "v1_19")]
    V1_19,
    #[serde(rename = "v1_20")]
    V1_20,
    #[serde(rename = "v2_0")]
    V2_0,
    #[serde(rename = "v2_1")]
    V2_1,
    #[serde(rename = "v2_2")]
    V2_2,
    #[serde(rename = "v2_3")]
    V2_3,
    #[serde(rename = "v2_4")]
    V2_4,
}

impl FlinkVersion {
    /// The oldest version the operator deploys (as upstream: 1.13 and 1.14 are unsupported).
    pub const OLDEST_SUPPORTED: FlinkVersion = FlinkVersion::V1_15;

    pub fn is_supported(self) -> bool {
        self >= Self::OLDEST_SUPPORTED
    }

    /// Flink 2.x reads `config.yaml`; 1.x `flink-conf.yaml`.
    pub fn is_2x(self) -> bool {
        self >= Self::V2_0
    }

    /// In-place rescaling through `/resource-requirements` needs 1.18+.
    pub fn supports_in_place_rescale(self) -> bool {
        self >= Self::V1_18
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_13 => "v1_13",
            Self::V1_14 => "v1_14",
            Self::V1_15 => "v1_15",
            Self::V1_16 => "v1_16",
            Self::V1_17 => "v1_17",
            Self::V1_18 => "v1_18",
            Self::V1_19 => "v1_19",
            Self::V1_20 => "v1_20",
            Self::V2_0 => "v2_0",
            Self::V2_1 => "v2_1",
            Self::V2_2 => "v2_2",
            Self::V2_3 => "v2_3",
            Self::V2_4 => "v2_4",
        }
    }
}

/// `spec.mode`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesDeploymentMode {
    #[default]
    Native,
    Standalone,
}

impl KubernetesDeploymentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Standalone => "standalone",
        }
    }
}

/// `spec.ingress`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Host and/or path template, e.g. `{{name}}.{{namespace}}.example.com` or `/{{namespace}}/{{name}}(/|$)(.*)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<IngressTLS>,
}

/// Deprecated `resource` block: cores and Flink/Kubernetes memory sizes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<String>,
}

/// `spec.jobManager`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobManagerSpec {
    /// Deprecated in favour of `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Number of JobManagers; more than one needs high availability.
    #[serde(default = "one")]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,
}

impl Default for JobManagerSpec {
    fn default() -> Self {
        Self {
            resource: None,
            resources: None,
            replicas: 1,
            pod_template: None,
        }
    }
}

fn one() -> i32 {
    1
}

/// `spec.taskManager`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerSpec {
    /// Deprecated in favour of `resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Standalone mode: TaskManager pods; otherwise derived from parallelism and slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<PodTemplate>,
}

/// `status.jobManagerDeploymentStatus`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobManagerDeploymentStatus {
    DeployedNotReady,
    Deploying,
    Error,
    #[default]
    Missing,
    Ready,
}

/// `status.taskManager`: what the scale subresource reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    #[serde(default)]
    pub replicas: i32,
}

/// `status` of a FlinkDeployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkDeploymentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    /// Last error as JSON (`{"type": ..., "message": ...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<ResourceLifecycleState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_status: Option<ReconciliationStatus>,
    /// Flink version, revision and more, as Flink reports them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cluster_info: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager_deployment_status: Option<JobManagerDeploymentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_manager: Option<TaskManagerInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<crate::common::UpgradeProgress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<crate::common::PolicyDecision>,
    /// This operator's: what the autoscaler is doing for the job, when it is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<crate::common::AutoscalerStatus>,
    /// This operator's: what the health checks and the stability rules of rollback remember
    /// about the running deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::common::DeploymentHealth>,
}
