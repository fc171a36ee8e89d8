//! The host's view of plugin inputs and decisions: plain serde types (camelCase JSON, as in
//! Kubernetes), converted to and from the WIT bindings at the call. `flink-operator plugin run`
//! reads these as JSON, the operator builds them from its observations, and decisions come back
//! in them after the host has validated them.

use crate::bindings::{self, pods as pw, scaling as sw, upgrade as uw};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Which extension point a plugin implements (one world each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtensionPoint {
    Scaling,
    Upgrade,
    PodTemplate,
}

impl ExtensionPoint {
    pub const ALL: [ExtensionPoint; 3] = [
        ExtensionPoint::Scaling,
        ExtensionPoint::Upgrade,
        ExtensionPoint::PodTemplate,
    ];

    /// The WIT world a plugin for this extension point targets.
    pub fn world(self) -> &'static str {
        match self {
            ExtensionPoint::Scaling => "scaling-policy",
            ExtensionPoint::Upgrade => "upgrade-strategy",
            ExtensionPoint::PodTemplate => "pod-template",
        }
    }

    /// The interface (besides `config`) the world exports.
    pub fn interface(self) -> &'static str {
        match self {
            ExtensionPoint::Scaling => "scaling",
            ExtensionPoint::Upgrade => "upgrade",
            ExtensionPoint::PodTemplate => "pods",
        }
    }
}

impl std::fmt::Display for ExtensionPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.world())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub tenant: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl From<&ResourceRef> for bindings::ResourceRef {
    fn from(r: &ResourceRef) -> Self {
        bindings::ResourceRef {
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            tenant: r.tenant.clone(),
            labels: r
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// The tenant's config as the JSON text a plugin receives.
pub(crate) fn config_text(config: &Value) -> String {
    if config.is_null() {
        "{}".into()
    } else {
        config.to_string()
    }
}

// ---- scaling ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vertex {
    pub id: String,
    pub name: String,
    pub parallelism: u32,
    pub max_parallelism: u32,
    #[serde(default)]
    pub busy_ratio: Option<f64>,
    #[serde(default)]
    pub processing_rate: Option<f64>,
    #[serde(default)]
    pub target_rate: Option<f64>,
    #[serde(default)]
    pub pending_records: Option<u64>,
    #[serde(default)]
    pub is_source: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub vertex_id: String,
    pub current: u32,
    pub recommended: u32,
    #[serde(default)]
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingInput {
    pub resource: ResourceRef,
    pub job_id: String,
    pub now_epoch_ms: i64,
    pub vertices: Vec<Vertex>,
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
    #[serde(default)]
    pub tenant_slots_in_use: u32,
    /// Why the tenant's usage could not be read (then `tenant_slots_in_use` is 0 and a 1.1
    /// plugin's `tenant.slots-in-use` answers this error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_usage_error: Option<String>,
    #[serde(default = "empty_object")]
    pub config: Value,
}

impl ScalingInput {
    pub(crate) fn to_wit(&self) -> sw::exports::flinkop::policy::scaling::ScalingInput {
        use sw::exports::flinkop::policy::scaling as s;
        s::ScalingInput {
            resource: (&self.resource).into(),
            job_id: self.job_id.clone(),
            now_epoch_ms: self.now_epoch_ms,
            vertices: self
                .vertices
                .iter()
                .map(|v| s::Vertex {
                    id: v.id.clone(),
                    name: v.name.clone(),
                    parallelism: v.parallelism,
                    max_parallelism: v.max_parallelism,
                    busy_ratio: v.busy_ratio,
                    processing_rate: v.processing_rate,
                    target_rate: v.target_rate,
                    pending_records: v.pending_records,
                    is_source: v.is_source,
                })
                .collect(),
            recommendations: self
                .recommendations
                .iter()
                .map(|r| s::Recommendation {
                    vertex_id: r.vertex_id.clone(),
                    current: r.current,
                    recommended: r.recommended,
                    reasons: r.reasons.clone(),
                })
                .collect(),
            tenant_slots_in_use: self.tenant_slots_in_use,
            config: config_text(&self.config),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexParallelism {
    pub vertex_id: String,
    pub parallelism: u32,
}

/// A scaling plugin's answer, as returned (before validation) or as validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum ScalingDecision {
    /// Apply the built-in recommendation unchanged.
    Follow,
    /// Apply these parallelisms (vertices not listed keep theirs).
    #[serde(rename_all = "camelCase")]
    Override {
        vertices: Vec<VertexParallelism>,
        reason: String,
    },
    /// Do not scale this time.
    Veto { reason: String },
}

impl From<sw::exports::flinkop::policy::scaling::ScalingDecision> for ScalingDecision {
    fn from(d: sw::exports::flinkop::policy::scaling::ScalingDecision) -> Self {
        use sw::exports::flinkop::policy::scaling::ScalingDecision as W;
        match d {
            W::Follow => ScalingDecision::Follow,
            W::Override(o) => ScalingDecision::Override {
                vertices: o
                    .vertices
                    .into_iter()
                    .map(|v| VertexParallelism {
                        vertex_id: v.vertex_id,
                        parallelism: v.parallelism,
                    })
                    .collect(),
                reason: o.reason,
            },
            W::Veto(reason) => ScalingDecision::Veto { reason },
        }
    }
}

// ---- upgrade ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    Savepoint,
    LastState,
    Stateless,
}

impl From<UpgradeMode> for uw::exports::flinkop::policy::upgrade::UpgradeMode {
    fn from(m: UpgradeMode) -> Self {
        use uw::exports::flinkop::policy::upgrade::UpgradeMode as W;
        match m {
            UpgradeMode::Savepoint => W::Savepoint,
            UpgradeMode::LastState => W::LastState,
            UpgradeMode::Stateless => W::Stateless,
        }
    }
}

impl From<uw::exports::flinkop::policy::upgrade::UpgradeMode> for UpgradeMode {
    fn from(m: uw::exports::flinkop::policy::upgrade::UpgradeMode) -> Self {
        use uw::exports::flinkop::policy::upgrade::UpgradeMode as W;
        match m {
            W::Savepoint => UpgradeMode::Savepoint,
            W::LastState => UpgradeMode::LastState,
            W::Stateless => UpgradeMode::Stateless,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    #[serde(default)]
    pub last_savepoint: Option<String>,
    #[serde(default)]
    pub last_savepoint_epoch_ms: Option<i64>,
    #[serde(default)]
    pub last_checkpoint: Option<String>,
    #[serde(default)]
    pub last_checkpoint_epoch_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeInput {
    pub resource: ResourceRef,
    pub now_epoch_ms: i64,
    pub old_spec: Value,
    pub new_spec: Value,
    pub requested_mode: UpgradeMode,
    #[serde(default)]
    pub job_state: String,
    #[serde(default)]
    pub snapshots: SnapshotInfo,
    #[serde(default = "empty_object")]
    pub config: Value,
}

impl UpgradeInput {
    pub(crate) fn to_wit(&self) -> uw::exports::flinkop::policy::upgrade::UpgradeInput {
        use uw::exports::flinkop::policy::upgrade as u;
        u::UpgradeInput {
            resource: (&self.resource).into(),
            now_epoch_ms: self.now_epoch_ms,
            old_spec: self.old_spec.to_string(),
            new_spec: self.new_spec.to_string(),
            requested_mode: self.requested_mode.into(),
            job_state: self.job_state.clone(),
            snapshots: u::SnapshotInfo {
                last_savepoint: self.snapshots.last_savepoint.clone(),
                last_savepoint_epoch_ms: self.snapshots.last_savepoint_epoch_ms,
                last_checkpoint: self.snapshots.last_checkpoint.clone(),
                last_checkpoint_epoch_ms: self.snapshots.last_checkpoint_epoch_ms,
            },
            config: config_text(&self.config),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum UpgradeDecision {
    #[serde(rename_all = "camelCase")]
    Proceed {
        mode: UpgradeMode,
        savepoint_first: bool,
        reason: String,
    },
    #[serde(rename_all = "camelCase")]
    WaitUntil {
        until_epoch_ms: i64,
        reason: String,
    },
    Refuse {
        reason: String,
    },
}

impl From<uw::exports::flinkop::policy::upgrade::UpgradeDecision> for UpgradeDecision {
    fn from(d: uw::exports::flinkop::policy::upgrade::UpgradeDecision) -> Self {
        use uw::exports::flinkop::policy::upgrade::UpgradeDecision as W;
        match d {
            W::Proceed(p) => UpgradeDecision::Proceed {
                mode: p.mode.into(),
                savepoint_first: p.savepoint_first,
                reason: p.reason,
            },
            W::WaitUntil(w) => UpgradeDecision::WaitUntil {
                until_epoch_ms: w.until_epoch_ms,
                reason: w.reason,
            },
            W::Refuse(reason) => UpgradeDecision::Refuse { reason },
        }
    }
}

// ---- pod templates ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    JobManager,
    TaskManager,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodInput {
    pub resource: ResourceRef,
    pub component: Component,
    #[serde(default)]
    pub flink_version: String,
    /// The rendered PodTemplateSpec.
    pub pod_template: Value,
    #[serde(default = "empty_object")]
    pub config: Value,
}

impl PodInput {
    pub(crate) fn to_wit(&self) -> pw::exports::flinkop::policy::pods::PodInput {
        use pw::exports::flinkop::policy::pods as p;
        p::PodInput {
            resource: (&self.resource).into(),
            component: match self.component {
                Component::JobManager => p::Component::JobManager,
                Component::TaskManager => p::Component::TaskManager,
            },
            flink_version: self.flink_version.clone(),
            pod_template: self.pod_template.to_string(),
            config: config_text(&self.config),
        }
    }
}

/// What a pod-template plugin produced once the host applied and checked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateDecision {
    /// The JSON patch the plugin returned.
    pub patch: Value,
    /// The pod template after the patch.
    pub pod_template: Value,
}
