//! Metrics of jobs, vertices, TaskManagers and the JobManager, and waiting for lazy ones.

use crate::client::Call;
use crate::model::{AggregatedMetric, Aggregation, Metric};
use crate::{FlinkClient, FlinkError, JobId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

fn joined(items: &[&str]) -> String {
    items.join(",")
}

fn aggregations(aggs: &[Aggregation]) -> String {
    aggs.iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl FlinkClient {
    /// `GET /jobs/:id/metrics?get=...`. Metrics Flink has not computed yet are absent.
    pub async fn job_metrics(
        &self,
        job: &JobId,
        names: &[&str],
    ) -> Result<Vec<Metric>, FlinkError> {
        self.fetch(
            Call::get(format!("jobs/{job}/metrics"), format!("job {job}"))
                .query("get", joined(names)),
        )
        .await
    }

    /// `GET /jobs/:id/vertices/:vertex/subtasks/metrics?get=...&agg=...`.
    pub async fn vertex_metrics(
        &self,
        job: &JobId,
        vertex: &str,
        names: &[&str],
        aggs: &[Aggregation],
    ) -> Result<Vec<AggregatedMetric>, FlinkError> {
        let call = Call::get(
            format!("jobs/{job}/vertices/{vertex}/subtasks/metrics"),
            format!("vertex {vertex} of job {job}"),
        )
        .query("get", joined(names))
        .query("agg", aggregations(aggs));
        self.fetch(call).await
    }

    /// `GET /jobs/:id/vertices/:vertex/subtasks/metrics`: the names of the metrics the
    /// vertex's subtasks report (empty until Flink fetched them once).
    pub async fn vertex_metric_names(
        &self,
        job: &JobId,
        vertex: &str,
    ) -> Result<Vec<String>, FlinkError> {
        let metrics: Vec<AggregatedMetric> = self
            .fetch(Call::get(
                format!("jobs/{job}/vertices/{vertex}/subtasks/metrics"),
                format!("vertex {vertex} of job {job}"),
            ))
            .await?;
        Ok(metrics.into_iter().map(|m| m.id).collect())
    }

    /// `GET /taskmanagers/metrics?get=...&agg=...`, aggregated over TaskManagers.
    pub async fn taskmanager_metrics(
        &self,
        names: &[&str],
        aggs: &[Aggregation],
    ) -> Result<Vec<AggregatedMetric>, FlinkError> {
        let call = Call::get("taskmanagers/metrics", "TaskManager metrics")
            .query("get", joined(names))
            .query("agg", aggregations(aggs));
        self.fetch(call).await
    }

    /// `GET /jobmanager/metrics?get=...`.
    pub async fn jobmanager_metrics(&self, names: &[&str]) -> Result<Vec<Metric>, FlinkError> {
        self.fetch(
            Call::get("jobmanager/metrics", "JobManager metrics").query("get", joined(names)),
        )
        .await
    }

    /// Vertex metrics once every one of `names` has a value, polling while Flink answers `[]`
    /// or a partial list. Says which were missing when `timeout` passes.
    pub async fn vertex_metrics_when_present(
        &self,
        job: &JobId,
        vertex: &str,
        names: &[&str],
        aggs: &[Aggregation],
        timeout: Duration,
    ) -> Result<BTreeMap<String, AggregatedMetric>, FlinkError> {
        let scope = format!("vertex {vertex} of job {job}");
        self.wait_for_all(&scope, names, timeout, || async {
            let metrics = self.vertex_metrics(job, vertex, names, aggs).await?;
            Ok(metrics
                .into_iter()
                .filter(|m| aggs.iter().all(|a| m.get(*a).is_some()))
                .map(|m| (m.id.clone(), m))
                .collect())
        })
        .await
    }

    /// Job metrics once every one of `names` has a value.
    pub async fn job_metrics_when_present(
        &self,
        job: &JobId,
        names: &[&str],
        timeout: Duration,
    ) -> Result<BTreeMap<String, String>, FlinkError> {
        let scope = format!("job {job}");
        self.wait_for_all(&scope, names, timeout, || async {
            Ok(self
                .job_metrics(job, names)
                .await?
                .into_iter()
                .filter_map(|m| Some((m.id, m.value?)))
                .collect())
        })
        .await
    }

    async fn wait_for_all<T, F, Fut>(
        &self,
        scope: &str,
        names: &[&str],
        timeout: Duration,
        mut fetch: F,
    ) -> Result<BTreeMap<String, T>, FlinkError>
    where
        T: Clone,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<BTreeMap<String, T>, FlinkError>>,
    {
        let last_seen: RefCell<BTreeMap<String, T>> = RefCell::new(BTreeMap::new());
        let found = self
            .poll(timeout, Duration::from_millis(500), || {
                let fetched = fetch();
                let last_seen = &last_seen;
                async move {
                    let values = fetched.await?;
                    let complete = names.iter().all(|n| values.contains_key(*n));
                    *last_seen.borrow_mut() = values;
                    Ok(complete.then(|| last_seen.borrow().clone()))
                }
            })
            .await?;
        found.ok_or_else(|| FlinkError::MetricsUnavailable {
            scope: scope.to_string(),
            missing: names
                .iter()
                .filter(|n| !last_seen.borrow().contains_key(**n))
                .map(|n| n.to_string())
                .collect(),
            waited: timeout,
        })
    }
}
