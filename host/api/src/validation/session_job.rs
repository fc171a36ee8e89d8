//! Rules for FlinkSessionJob specs.

use super::deployment::{configuration, job_basics};
use super::{FieldError, ValidationSettings, check_name};
use crate::config::ConfigFile;
use crate::session_job::FlinkSessionJob;

/// Option prefixes that configure the cluster, not a job; they belong to the session deployment.
const CLUSTER_PREFIXES: [&str; 9] = [
    "taskmanager.",
    "jobmanager.",
    "high-availability",
    "rest.",
    "blob.",
    "metrics.reporter",
    "kubernetes.",
    "env.",
    "containerized.",
];

pub fn session_job(resource: &FlinkSessionJob, settings: &ValidationSettings) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_name(resource.metadata.name.as_deref(), 63, &mut errors);
    let spec = &resource.spec;
    let deployment = spec
        .deployment_name
        .as_deref()
        .filter(|d| !d.trim().is_empty());
    if deployment.is_none() {
        errors.push(FieldError::new(
            "spec.deploymentName",
            "is required; name the session FlinkDeployment (one without spec.job) this job runs on",
        ));
    }
    let config = spec.flink_configuration.clone().unwrap_or_default();
    configuration(
        &config,
        "spec.flinkConfiguration",
        ConfigFile::Yaml,
        &mut errors,
    );
    for key in config.flat().keys() {
        let cluster_level = CLUSTER_PREFIXES.iter().any(|p| key.starts_with(p))
            && !key.starts_with("kubernetes.operator.");
        if cluster_level {
            errors.push(FieldError::new(
                &format!("spec.flinkConfiguration.{key}"),
                format!(
                    "configures the whole session cluster, not this job; set it on the session FlinkDeployment {}",
                    deployment.map(|d| format!("`{d}`")).unwrap_or_default()
                ),
            ));
        }
    }
    let Some(job) = &spec.job else {
        errors.push(FieldError::new(
            "spec.job",
            "is required; a session job needs at least `jarURI` or `entryClass`",
        ));
        return errors;
    };
    match job.jar_uri.as_deref().map(str::trim) {
        // Upstream's jar-less session job: its class is on the session cluster's classpath.
        None if job.entry_class.as_deref().is_none_or(|c| c.trim().is_empty()) => {
            errors.push(FieldError::new(
                "spec.job.entryClass",
                "is required without `spec.job.jarURI` (the class is then loaded from the session cluster's classpath); or give the job jar's URI in `spec.job.jarURI`",
            ))
        }
        None => {}
        Some("") => errors.push(FieldError::new(
            "spec.job.jarURI",
            "is empty; give the job jar's URI, e.g. `https://repo.example.com/job.jar`, or remove it to run `entryClass` from the session cluster's classpath",
        )),
        Some(uri) => {
            if let Some(problem) = crate::artifact::uri_problem(uri, settings) {
                errors.push(FieldError::new("spec.job.jarURI", problem));
            }
        }
    }
    // Checkpoint and savepoint storage of a session job come from its cluster: checked in
    // `references` when the deployment is known.
    job_basics(job, "spec.job", &mut errors);
    errors
}
