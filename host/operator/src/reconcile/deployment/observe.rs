//! Folding what was observed into a FlinkDeployment's status: the JobManager Deployment's
//! state, the job's, the cluster's version, and why a pod or the job failed.

use super::*;

impl<'a> Decision<'a> {
    /// Folds the observation into the status: JobManager Deployment, job, cluster info.
    pub(super) fn observe(&mut self) {
        let observed = self.observed;
        // One ready JobManager is enough to run the job (upstream): standby ones may wait. A
        // JobManager that is not ready is judged by its own pods' containers, as upstream.
        let jm_status = match &observed.job_manager {
            None => None,
            Some(jm) if jm.deleting => Some(JobManagerDeploymentStatus::Deploying),
            Some(jm) if jm.replicas > 0 && jm.ready_replicas > 0 => match &observed.flink {
                ObservedFlink::Reachable { .. } => Some(JobManagerDeploymentStatus::Ready),
                _ => Some(JobManagerDeploymentStatus::DeployedNotReady),
            },
            Some(_) if observed.pod_problem(true).is_some() => {
                Some(JobManagerDeploymentStatus::Error)
            }
            Some(_) => Some(JobManagerDeploymentStatus::Deploying),
        };
        match jm_status {
            Some(s) => self.draft.status.job_manager_deployment_status = Some(s),
            None if self.draft.status.job_manager_deployment_status.is_some() => {
                self.draft.status.job_manager_deployment_status =
                    Some(JobManagerDeploymentStatus::Missing)
            }
            None => {}
        }
        if let Some(problem) = &observed.pod_problem(false) {
            self.fail(
                CLUSTER_FAILED,
                format!("the JobManager or a TaskManager cannot run: {problem}"),
            );
        }
        if let ObservedFlink::Reachable {
            jobs,
            flink_version,
            flink_revision,
        } = &observed.flink
        {
            if let Some(version) = flink_version {
                self.draft
                    .status
                    .cluster_info
                    .insert("flink-version".into(), version.clone());
            }
            if let Some(revision) = flink_revision {
                self.draft
                    .status
                    .cluster_info
                    .insert("flink-revision".into(), revision.clone());
            }
            if self.resource.spec.is_application()
                && let Some(job) = self.current_job(jobs)
            {
                let before = self.draft.status.job_status.as_ref().and_then(|j| j.state);
                let updated = observe_job(self.draft.status.job_status.as_ref(), job);
                self.draft
                    .notes
                    .extend(status::job_state_change(before, job.state));
                // Observation skips the exceptions once the failure is reported.
                self.draft.job_failed(job, observed.job_failure.as_ref());
                self.draft.status.job_status = Some(updated);
                self.draft.abandon_snapshot_triggers(
                    observed.snapshot.as_ref(),
                    observed.checkpoint.as_ref(),
                );
                return;
            }
        }
        // Not seen this time (no JobManager answers, or it does not list the job).
        if self.resource.spec.is_application() {
            status::job_not_seen(self.draft.status.job_status.as_mut());
        }
    }
}
