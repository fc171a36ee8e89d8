//! `status.reconciliationStatus.lastReconciledSpec` / `lastStableSpec`: the spec the operator
//! deployed, with the generation it came from, stored as JSON text in upstream's format
//! (`{"spec": …, "resource_metadata": {"apiVersion", "metadata": {"generation"}, "firstDeployment"}}`)
//! so that status written by either operator reads in the other.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq)]
pub struct ReconciledSpec<S> {
    pub spec: S,
    pub generation: i64,
    pub first_deployment: bool,
    /// Deploys of this generation the operator started on its own (a health restart, a
    /// rollback) count up from 0, so each is told apart from the deployment it replaces
    /// (this operator's; absent in upstream's format means 0).
    pub revision: i64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    spec: Value,
    #[serde(default)]
    resource_metadata: Value,
}

impl<S: Serialize + DeserializeOwned> ReconciledSpec<S> {
    pub fn to_json(&self) -> String {
        let mut resource_metadata = json!({
            "apiVersion": flink_api::API_VERSION,
            "metadata": {"generation": self.generation},
            "firstDeployment": self.first_deployment,
        });
        if self.revision != 0 {
            resource_metadata["revision"] = json!(self.revision);
        }
        let stored = Stored {
            spec: serde_json::to_value(&self.spec).unwrap_or(Value::Null),
            resource_metadata,
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// `None` for text that is not a recorded spec (hand-edited status): treated as never
    /// deployed would lose track of a running cluster, so callers report it instead.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let stored: Stored = serde_json::from_str(text)
            .map_err(|e| format!("the recorded spec is not JSON of a spec: {e}"))?;
        let spec = serde_json::from_value(stored.spec)
            .map_err(|e| format!("the recorded spec does not read as a spec: {e}"))?;
        Ok(Self {
            spec,
            generation: stored
                .resource_metadata
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            first_deployment: stored
                .resource_metadata
                .get("firstDeployment")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            revision: stored
                .resource_metadata
                .get("revision")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flink_api::FlinkSessionJobSpec;

    #[test]
    fn round_trips_and_reads_upstreams_format() {
        let upstream = r#"{"spec":{"job":{"jarURI":"https://x/j.jar","parallelism":2,"args":[],"state":"running","upgradeMode":"stateless"},"deploymentName":"s"},"resource_metadata":{"apiVersion":"flink.apache.org/v1beta1","metadata":{"generation":4},"firstDeployment":true}}"#;
        let read = ReconciledSpec::<FlinkSessionJobSpec>::from_json(upstream).expect("reads");
        assert_eq!(read.generation, 4);
        assert!(read.first_deployment);
        assert_eq!(read.spec.deployment_name.as_deref(), Some("s"));
        assert_eq!(read.revision, 0);
        let again =
            ReconciledSpec::<FlinkSessionJobSpec>::from_json(&read.to_json()).expect("reads");
        assert_eq!(again, read);
        assert!(
            !read.to_json().contains("revision"),
            "upstream's format unless restarted"
        );
        let restarted = ReconciledSpec {
            revision: 2,
            ..read
        };
        let again =
            ReconciledSpec::<FlinkSessionJobSpec>::from_json(&restarted.to_json()).expect("reads");
        assert_eq!(again, restarted);
    }
}
