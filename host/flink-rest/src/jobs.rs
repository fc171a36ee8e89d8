//! Cluster and job endpoints: config, overview, details, cancel, exceptions, rescale.

use crate::client::{Call, Idempotency};
use crate::model::{
    ClusterConfig, JobDetails, JobExceptions, JobsOverview, ResourceRequirements, TaskManagers,
};
use crate::{FlinkClient, FlinkError, JobId};
use reqwest::Method;

impl FlinkClient {
    /// `GET /config`: version and revision of the cluster.
    pub async fn config(&self) -> Result<ClusterConfig, FlinkError> {
        self.fetch(Call::get("config", "cluster configuration"))
            .await
    }

    /// `GET /taskmanagers`: the registered TaskManagers and their free slots.
    pub async fn task_managers(&self) -> Result<TaskManagers, FlinkError> {
        self.fetch(Call::get("taskmanagers", "TaskManagers")).await
    }

    /// `GET /jobs/overview`.
    pub async fn jobs_overview(&self) -> Result<JobsOverview, FlinkError> {
        self.fetch(Call::get("jobs/overview", "jobs overview"))
            .await
    }

    /// `GET /jobs/:id`: state, vertices and plan.
    pub async fn job_details(&self, job: &JobId) -> Result<JobDetails, FlinkError> {
        self.fetch(Call::get(format!("jobs/{job}"), format!("job {job}")))
            .await
    }

    /// `PATCH /jobs/:id?mode=cancel`. Cancelling twice is harmless, so it is retried, all
    /// attempts within the cancel timeout (upstream waits once for that long).
    pub async fn cancel_job(&self, job: &JobId) -> Result<(), FlinkError> {
        let timeout = self.settings().cancel_timeout;
        let cancel = self.send(
            Call::new(
                Method::PATCH,
                format!("jobs/{job}"),
                format!("job {job}"),
                Idempotency::Retry,
            )
            .query("mode", "cancel")
            .timeout(timeout),
        );
        tokio::time::timeout(timeout, cancel)
            .await
            .unwrap_or_else(|_| {
                Err(FlinkError::Unreachable {
                    url: self.base_url().to_string(),
                    reason: format!("no answer within {timeout:?}"),
                })
            })
    }

    /// `GET /jobs/:id/exceptions`.
    pub async fn job_exceptions(&self, job: &JobId) -> Result<JobExceptions, FlinkError> {
        self.fetch(Call::get(
            format!("jobs/{job}/exceptions"),
            format!("job {job}"),
        ))
        .await
    }

    /// `GET /jobs/:id/resource-requirements` (adaptive scheduler, Flink 1.18+).
    pub async fn resource_requirements(
        &self,
        job: &JobId,
    ) -> Result<ResourceRequirements, FlinkError> {
        self.fetch(Call::get(
            format!("jobs/{job}/resource-requirements"),
            format!("resource requirements of job {job}"),
        ))
        .await
    }

    /// `PUT /jobs/:id/resource-requirements`: rescale in place, without restarting the job.
    pub async fn set_resource_requirements(
        &self,
        job: &JobId,
        requirements: &ResourceRequirements,
    ) -> Result<(), FlinkError> {
        let call = Call::new(
            Method::PUT,
            format!("jobs/{job}/resource-requirements"),
            format!("resource requirements of job {job}"),
            Idempotency::Retry,
        )
        .json(requirements)?;
        self.send(call).await
    }
}
