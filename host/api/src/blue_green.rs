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

/// The blue/green settings of `spec.configuration` (upstream reads them only there, not from
/// the operator's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlueGreenSettings {
    /// `kubernetes.operator.bluegreen.abort.grace-period`: how long the new child may take to
    /// become ready before the transition is aborted (and how long a savepoint may take).
    pub abort_grace_period: std::time::Duration,
    /// `kubernetes.operator.bluegreen.reconciliation.reschedule-interval`: how often a
    /// transition is looked at.
    pub reschedule_interval: std::time::Duration,
    /// `kubernetes.operator.bluegreen.deployment-deletion.delay`: how long the old child keeps
    /// running once the new one is ready.
    pub deletion_delay: std::time::Duration,
}

impl Default for BlueGreenSettings {
    /// Upstream's defaults.
    fn default() -> Self {
        Self {
            abort_grace_period: std::time::Duration::from_secs(600),
            reschedule_interval: std::time::Duration::from_secs(15),
            deletion_delay: std::time::Duration::ZERO,
        }
    }
}

impl BlueGreenSettings {
    pub const ABORT_GRACE_PERIOD: &str = "kubernetes.operator.bluegreen.abort.grace-period";
    pub const RESCHEDULE_INTERVAL: &str =
        "kubernetes.operator.bluegreen.reconciliation.reschedule-interval";
    pub const DELETION_DELAY: &str = "kubernetes.operator.bluegreen.deployment-deletion.delay";

    /// The settings of `configuration`, upstream's defaults for what it leaves out; Err lists
    /// every value that is not a duration (the field and the fix).
    pub fn read(
        configuration: &BTreeMap<String, String>,
    ) -> Result<Self, Vec<crate::validation::FieldError>> {
        let mut errors = Vec::new();
        let mut duration = |key: &str, default: std::time::Duration| {
            match configuration.get(key) {
            None => default,
            Some(text) => crate::quantity::parse_flink_duration(text).unwrap_or_else(|why| {
                errors.push(crate::validation::FieldError::new(
                    &format!("spec.configuration.{key}"),
                    format!("is not a duration ({why}), got {text:?}; write e.g. `10 min`, `15 s` or `500 ms`"),
                ));
                default
            }),
        }
        };
        let defaults = Self::default();
        let settings = Self {
            abort_grace_period: duration(Self::ABORT_GRACE_PERIOD, defaults.abort_grace_period),
            reschedule_interval: duration(Self::RESCHEDULE_INTERVAL, defaults.reschedule_interval),
            deletion_delay: duration(Self::DELETION_DELAY, defaults.deletion_delay),
        };
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

/// The two children of a FlinkBlueGreenDeployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Colour {
    Blue,
    Green,
}

impl Colour {
    /// The label the children carry their colour in (upstream's), with `BLUE` or `GREEN`.
    pub const LABEL: &str = "flink/blue-green-deployment-type";

    pub fn other(self) -> Self {
        match self {
            Self::Blue => Self::Green,
            Self::Green => Self::Blue,
        }
    }

    /// `BLUE` / `GREEN`, as the label and messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blue => "BLUE",
            Self::Green => "GREEN",
        }
    }

    /// The child FlinkDeployment of the parent `parent`: `<parent>-blue` or `<parent>-green`.
    pub fn child_name(self, parent: &str) -> String {
        match self {
            Self::Blue => format!("{parent}-blue"),
            Self::Green => format!("{parent}-green"),
        }
    }
}

impl BlueGreenState {
    /// The child this state is about: the active one, the one being savepointed, or the one
    /// being brought up.
    pub fn colour(self) -> Colour {
        match self {
            Self::ActiveBlue
            | Self::InitializingBlue
            | Self::SavepointingBlue
            | Self::TransitioningToBlue => Colour::Blue,
            Self::ActiveGreen | Self::SavepointingGreen | Self::TransitioningToGreen => {
                Colour::Green
            }
        }
    }

    pub fn active(colour: Colour) -> Self {
        match colour {
            Colour::Blue => Self::ActiveBlue,
            Colour::Green => Self::ActiveGreen,
        }
    }

    pub fn savepointing(colour: Colour) -> Self {
        match colour {
            Colour::Blue => Self::SavepointingBlue,
            Colour::Green => Self::SavepointingGreen,
        }
    }

    pub fn transitioning_to(colour: Colour) -> Self {
        match colour {
            Colour::Blue => Self::TransitioningToBlue,
            Colour::Green => Self::TransitioningToGreen,
        }
    }
}
