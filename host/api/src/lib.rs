//! The `flink.apache.org/v1beta1` resources that users of the Apache Flink Kubernetes Operator
//! already write: their types (same field names, shapes, enums and defaults as upstream), the
//! CRDs generated from them, and a pure validation that reports every problem with its field
//! path, the bad value and the fix.
//!
//! ```
//! use flink_api::document::{split_documents, validate_documents};
//! use flink_api::validation::ValidationSettings;
//! let docs = split_documents("apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {name: j}\nspec: {deploymentName: s, job: {jarURI: 'https://x/j.jar', parallelism: 0}}\n").unwrap();
//! let findings = validate_documents(docs, &ValidationSettings::default());
//! assert_eq!(findings[0].error.to_string(), "spec.job.parallelism: must be at least 1, got 0");
//! ```

pub mod artifact;
pub mod blue_green;
pub mod common;
pub mod config;
pub mod crd;
pub mod deployment;
pub mod document;
pub mod ingress;
pub mod pod_template;
pub mod quantity;
pub mod session_job;
pub mod snapshot;
pub mod validation;

pub use blue_green::{FlinkBlueGreenDeployment, FlinkBlueGreenDeploymentSpec};
pub use common::*;
pub use config::FlinkConfiguration;
pub use deployment::{FlinkDeployment, FlinkDeploymentSpec, FlinkDeploymentStatus, FlinkVersion};
pub use session_job::{FlinkSessionJob, FlinkSessionJobSpec, FlinkSessionJobStatus};
pub use snapshot::{FlinkStateSnapshot, FlinkStateSnapshotSpec, FlinkStateSnapshotStatus};

/// The API group of every resource in this crate.
pub const GROUP: &str = "flink.apache.org";
/// The only served (and stored) version, as upstream.
pub const VERSION: &str = "v1beta1";
/// `apiVersion` as it appears in documents.
pub const API_VERSION: &str = "flink.apache.org/v1beta1";
