//! Rules across resources: session jobs and snapshots against the deployments they name.
//! Only what is in the given set is checked; a name that is not there may exist in the cluster.

use super::FieldError;
use crate::config::options;
use crate::deployment::FlinkDeployment;
use crate::session_job::FlinkSessionJob;
use crate::snapshot::{FlinkStateSnapshot, JobKind};

/// Problems found across resources, each with the index of its resource in the input slice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReferenceProblems {
    pub session_jobs: Vec<(usize, FieldError)>,
    pub snapshots: Vec<(usize, FieldError)>,
}

/// Problems of `jobs` and `snapshots` given the `deployments` known.
pub fn references(
    deployments: &[&FlinkDeployment],
    jobs: &[&FlinkSessionJob],
    snapshots: &[&FlinkStateSnapshot],
) -> ReferenceProblems {
    let find = |name: &str, namespace: &Option<String>| {
        deployments.iter().find(|d| {
            d.metadata.name.as_deref() == Some(name) && &d.metadata.namespace == namespace
        })
    };
    let mut job_errors = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let Some(name) = job.spec.deployment_name.as_deref() else {
            continue;
        };
        let Some(deployment) = find(name, &job.metadata.namespace) else {
            continue;
        };
        if deployment.spec.is_application() {
            job_errors.push((
                i,
                FieldError::new(
                    "spec.deploymentName",
                    format!("`{name}` is an application cluster (it has spec.job); session jobs need a session FlinkDeployment without spec.job"),
                ),
            ));
            continue;
        }
        // As upstream: the session cluster's configuration under the job's own (a job may set
        // its own checkpoint and savepoint directories; it is submitted with them).
        let mut config = deployment.spec.configuration().flat();
        config.extend(
            job.spec
                .flink_configuration
                .as_ref()
                .map(|c| c.flat())
                .unwrap_or_default(),
        );
        job_errors.extend(
            session_job_storage(job, name, &config)
                .into_iter()
                .map(|e| (i, e)),
        );
    }
    let mut snapshot_errors = Vec::new();
    for (i, snapshot) in snapshots.iter().enumerate() {
        let Some(reference) = &snapshot.spec.job_reference else {
            continue;
        };
        let (Some(JobKind::FlinkDeployment), Some(name)) =
            (reference.kind, reference.name.as_deref())
        else {
            continue;
        };
        if let Some(deployment) = find(name, &snapshot.metadata.namespace)
            && !deployment.spec.is_application()
        {
            snapshot_errors.push((
                i,
                FieldError::new(
                    "spec.jobReference",
                    format!("`{name}` is a session cluster and runs no job of its own; reference one of its FlinkSessionJobs (kind: FlinkSessionJob)"),
                ),
            ));
        }
    }
    ReferenceProblems {
        session_jobs: job_errors,
        snapshots: snapshot_errors,
    }
}

/// What a session job's snapshots need from `config`, its effective configuration (the
/// session cluster's `name` under its own; the operator adds its defaults beneath): checkpoint
/// storage for a stateful upgrade mode, a savepoint directory for savepoints.
pub fn session_job_storage(
    job: &FlinkSessionJob,
    name: &str,
    config: &std::collections::BTreeMap<String, String>,
) -> Vec<FieldError> {
    let Some(spec) = &job.spec.job else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    let missing = |option: &crate::config::ConfigOption| option.in_flat(config).is_none();
    if spec.upgrade_mode.is_stateful() && missing(&options::CHECKPOINTS_DIR) {
        errors.push(FieldError::new(
            "spec.job.upgradeMode",
            format!(
                "a stateful upgrade mode needs checkpoint storage; set {} in FlinkDeployment `{name}` or in this job's spec.flinkConfiguration",
                options::CHECKPOINTS_DIR.describe()
            ),
        ));
    }
    if (spec.upgrade_mode == crate::UpgradeMode::Savepoint
        || spec.savepoint_trigger_nonce.is_some())
        && missing(&options::SAVEPOINTS_DIR)
    {
        errors.push(FieldError::new(
            "spec.job.upgradeMode",
            format!(
                "savepoints need a savepoint directory; set {} in FlinkDeployment `{name}` or in this job's spec.flinkConfiguration",
                options::SAVEPOINTS_DIR.describe()
            ),
        ));
    }
    errors
}
