//! Validation as pure functions: a resource (and, for changes, its previous spec) in, every
//! problem out, each with the field path, the bad value and the fix.
//!
//! The same functions serve the `validate` command, the reconciler (an invalid new spec is
//! reported and the last valid one keeps running) and the admission webhook.

mod changes;
mod deployment;
mod references;
mod session_job;
mod snapshot;

pub use changes::{deployment_change, session_job_change, snapshot_change};
pub use deployment::{LOG_CONFIG_FILES, blue_green, deployment, deployment_spec};
pub use references::{ReferenceProblems, references, session_job_storage};
pub use session_job::session_job;
pub use snapshot::snapshot;

use std::fmt;

/// One problem: where it is and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path from the document root, e.g. `spec.job.parallelism`.
    pub path: String,
    /// What is wrong, the value found, and the fix.
    pub message: String,
}

impl FieldError {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Operator settings that change what is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationSettings {
    /// URI schemes the operator fetches session-job jars from, lowercase
    /// (`kubernetes.operator.user.artifacts.allowed-schemes`; upstream's default: `https`).
    pub session_job_jar_schemes: Vec<String>,
    /// Refuse jar hosts that are or resolve to loopback, link-local, private, wildcard or
    /// multicast addresses (`kubernetes.operator.user.artifacts.disallow-restricted-hosts`).
    pub disallow_restricted_hosts: bool,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            session_job_jar_schemes: vec!["https".into()],
            disallow_restricted_hosts: true,
        }
    }
}

/// `prefix.key`, or `key` at the root.
pub(crate) fn at(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Kubernetes DNS-1035 label (names of Services), at most `max` characters.
pub(crate) fn check_name(name: Option<&str>, max: usize, errors: &mut Vec<FieldError>) {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        errors.push(FieldError::new("metadata.name", "is required"));
        return;
    };
    let bytes = name.as_bytes();
    let valid = name.len() <= max
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-');
    if !valid {
        errors.push(FieldError::new(
            "metadata.name",
            format!(
                "must start with a lowercase letter, contain only lowercase letters, digits and '-', not end with '-', and be at most {max} characters (it names Kubernetes Services), got {name:?}"
            ),
        ));
    }
}
