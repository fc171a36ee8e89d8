//! `FlinkBlueGreenDeployment`: two FlinkDeployments, blue and green, switched with a savepoint.

use crate::common::JobStatus;
use crate::deployment::{FlinkDeploymentSpec, IngressSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `spec` of a FlinkBlueGreenDeployment.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "flink.apache.org",
    version = "v1beta1",
    kind = "FlinkBlueGreenDeployment",
    namespaced,
    status = "FlinkBlueGreenDeploymentStatus",
    shortname = "flinkbgdep",
    derive = "PartialEq",
    derive = "Default",
    doc = "Two FlinkDeployments, blue and green, switched over with a savepoint.",
    printcolumn = r#"{"name":"Job Status","type":"string","jsonPath":".status.jobStatus.state"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkBlueGreenDeploymentSpec {
    /// Blue/green settings (`kubernetes.operator.bluegreen.*`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configuration: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// The FlinkDeployment both colours are made from.
    #[serde(default)]
    pub template: FlinkDeploymentTemplateSpec,
}

/// `spec.template`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkDeploymentTemplateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    #[serde(default)]
    pub spec: FlinkDeploymentSpec,
}

/// `status.blueGreenState`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BlueGreenState {
    ActiveBlue,
    ActiveGreen,
    InitializingBlue,
    SavepointingBlue,
    SavepointingGreen,
    TransitioningToBlue,
    TransitioningToGreen,
}

/// `status` of a FlinkBlueGreenDeployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkBlueGreenDeploymentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green_state: Option<BlueGreenState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconciled_spec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconciled_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_ready_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
