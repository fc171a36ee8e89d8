//! `FlinkSessionJob`: a job submitted to a session FlinkDeployment.

use crate::common::{JobSpec, JobStatus, ReconciliationStatus, ResourceLifecycleState};
use crate::config::FlinkConfiguration;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec` of a FlinkSessionJob.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "flink.apache.org",
    version = "v1beta1",
    kind = "FlinkSessionJob",
    namespaced,
    status = "FlinkSessionJobStatus",
    shortname = "sessionjob",
    derive = "PartialEq",
    derive = "Default",
    doc = "A job submitted to a session FlinkDeployment.",
    printcolumn = r#"{"name":"Job Status","type":"string","jsonPath":".status.jobStatus.state"}"#,
    printcolumn = r#"{"name":"Lifecycle State","type":"string","jsonPath":".status.lifecycleState"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FlinkSessionJobSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,
    /// Job-level Flink options (cluster-level ones belong to the session deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flink_configuration: Option<FlinkConfiguration>,
    /// Name of the session FlinkDeployment in the same namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
}

/// `status` of a FlinkSessionJob.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlinkSessionJobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<ResourceLifecycleState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation_status: Option<ReconciliationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<crate::common::UpgradeProgress>,
    /// This operator's: the tenant policy plugins that took part in the job's last decisions
    /// (the upgrade strategy, for a session job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<crate::common::PolicyDecision>,
    /// This operator's: what the autoscaler is doing for the job, when it is enabled (in
    /// place on the session cluster's adaptive scheduler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<crate::common::AutoscalerStatus>,
    /// This operator's: when the current spec's job was deployed (the readiness timeout of a
    /// rollback counts from here; a resubmission of the same job does not move it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::common::DeploymentHealth>,
}
