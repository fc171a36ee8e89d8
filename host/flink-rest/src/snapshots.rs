//! Savepoints, checkpoints and their asynchronous operations.

use crate::client::{Call, Idempotency};
use crate::model::{
    AsyncOperation, CheckpointKind, CheckpointStatistics, Operation, SavepointRequest, StopRequest,
    TriggerResponse,
};
use crate::{FlinkClient, FlinkError, JobId, TriggerId};
use reqwest::Method;
use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// Triggers carrying a caller-chosen id are idempotent in Flink, so they may be retried.
fn idempotency(trigger: &Option<TriggerId>) -> Idempotency {
    if trigger.is_some() {
        Idempotency::Retry
    } else {
        Idempotency::Once
    }
}

fn read_operation<T>(
    op: AsyncOperation,
    completed: impl FnOnce(crate::model::OperationResult) -> Option<T>,
) -> Result<Operation<T>, FlinkError> {
    match op.status.id.as_str() {
        "IN_PROGRESS" => Ok(Operation::InProgress),
        "COMPLETED" => {
            let result = op.operation.ok_or_else(|| FlinkError::UnexpectedResponse {
                request: "operation status".into(),
                status: 200,
                detail: "COMPLETED without an operation result".into(),
            })?;
            if let Some(cause) = &result.failure_cause {
                return Ok(Operation::Failed {
                    cause: cause.message(),
                });
            }
            completed(result).map(Operation::Completed).ok_or_else(|| {
                FlinkError::UnexpectedResponse {
                    request: "operation status".into(),
                    status: 200,
                    detail: "COMPLETED without a result or a failure cause".into(),
                }
            })
        }
        other => Err(FlinkError::UnexpectedResponse {
            request: "operation status".into(),
            status: 200,
            detail: format!("unknown operation status {other:?}"),
        }),
    }
}

impl FlinkClient {
    async fn trigger(
        &self,
        path: String,
        what: String,
        body: &impl Serialize,
        retry: Idempotency,
    ) -> Result<TriggerId, FlinkError> {
        let response: TriggerResponse = self
            .fetch(Call::new(Method::POST, path, what, retry).json(body)?)
            .await?;
        TriggerId::parse(&response.request_id)
    }

    /// `POST /jobs/:id/stop`: stop with a savepoint. Poll with [`FlinkClient::savepoint_status`].
    pub async fn stop_with_savepoint(
        &self,
        job: &JobId,
        request: &StopRequest,
    ) -> Result<TriggerId, FlinkError> {
        self.trigger(
            format!("jobs/{job}/stop"),
            format!("job {job}"),
            request,
            idempotency(&request.trigger_id),
        )
        .await
    }

    /// `POST /jobs/:id/savepoints`.
    pub async fn trigger_savepoint(
        &self,
        job: &JobId,
        request: &SavepointRequest,
    ) -> Result<TriggerId, FlinkError> {
        self.trigger(
            format!("jobs/{job}/savepoints"),
            format!("job {job}"),
            request,
            idempotency(&request.trigger_id),
        )
        .await
    }

    /// `GET /jobs/:id/savepoints/:trigger`: the savepoint's location once completed.
    pub async fn savepoint_status(
        &self,
        job: &JobId,
        trigger: &TriggerId,
    ) -> Result<Operation<String>, FlinkError> {
        let op: AsyncOperation = self
            .fetch(Call::get(
                format!("jobs/{job}/savepoints/{trigger}"),
                format!("savepoint {trigger} of job {job}"),
            ))
            .await?;
        read_operation(op, |r| r.location)
    }

    /// Polls a savepoint (or stop-with-savepoint) until it ends or `timeout` passes.
    pub async fn await_savepoint(
        &self,
        job: &JobId,
        trigger: &TriggerId,
        timeout: Duration,
    ) -> Result<Result<String, String>, FlinkError> {
        self.await_operation(
            &format!("savepoint {trigger} of job {job}"),
            timeout,
            || self.savepoint_status(job, trigger),
        )
        .await
    }

    /// Polls an asynchronous operation (savepoint, checkpoint, disposal) until it completes
    /// (`Ok(Ok(result))`) or fails (`Ok(Err(cause))`); `OperationTimeout` at the deadline.
    pub async fn await_operation<T, F, Fut>(
        &self,
        operation: &str,
        timeout: Duration,
        mut status: F,
    ) -> Result<Result<T, String>, FlinkError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Operation<T>, FlinkError>>,
    {
        let outcome = self
            .poll(timeout, Duration::from_millis(300), || {
                let status = status();
                async move {
                    Ok(match status.await? {
                        Operation::InProgress => None,
                        Operation::Completed(result) => Some(Ok(result)),
                        Operation::Failed { cause } => Some(Err(cause)),
                    })
                }
            })
            .await?;
        outcome.ok_or_else(|| FlinkError::OperationTimeout {
            operation: operation.to_string(),
            waited: timeout,
        })
    }

    /// `POST /jobs/:id/checkpoints` (Flink 1.19+).
    pub async fn trigger_checkpoint(
        &self,
        job: &JobId,
        kind: CheckpointKind,
        trigger: Option<TriggerId>,
    ) -> Result<TriggerId, FlinkError> {
        #[derive(Serialize)]
        struct Body {
            #[serde(rename = "checkpointType")]
            kind: CheckpointKind,
            #[serde(rename = "triggerId", skip_serializing_if = "Option::is_none")]
            trigger: Option<TriggerId>,
        }
        let retry = idempotency(&trigger);
        self.trigger(
            format!("jobs/{job}/checkpoints"),
            format!("job {job}"),
            &Body { kind, trigger },
            retry,
        )
        .await
    }

    /// `GET /jobs/:id/checkpoints/:trigger`: the checkpoint id once completed.
    pub async fn checkpoint_status(
        &self,
        job: &JobId,
        trigger: &TriggerId,
    ) -> Result<Operation<i64>, FlinkError> {
        let op: AsyncOperation = self
            .fetch(Call::get(
                format!("jobs/{job}/checkpoints/{trigger}"),
                format!("checkpoint {trigger} of job {job}"),
            ))
            .await?;
        read_operation(op, |r| r.checkpoint_id)
    }

    /// `GET /jobs/:id/checkpoints`: counts, latest completed/failed/restored, history.
    pub async fn checkpoint_statistics(
        &self,
        job: &JobId,
    ) -> Result<CheckpointStatistics, FlinkError> {
        self.fetch(Call::get(
            format!("jobs/{job}/checkpoints"),
            format!("checkpoints of job {job}"),
        ))
        .await
    }

    /// `POST /savepoint-disposal`: delete a savepoint's files through the cluster.
    pub async fn dispose_savepoint(&self, path: &str) -> Result<TriggerId, FlinkError> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "savepoint-path")]
            path: &'a str,
        }
        self.trigger(
            "savepoint-disposal".into(),
            format!("savepoint {path}"),
            &Body { path },
            Idempotency::Once,
        )
        .await
    }

    /// `GET /savepoint-disposal/:trigger`.
    pub async fn disposal_status(&self, trigger: &TriggerId) -> Result<Operation<()>, FlinkError> {
        let op: AsyncOperation = self
            .fetch(Call::get(
                format!("savepoint-disposal/{trigger}"),
                format!("savepoint disposal {trigger}"),
            ))
            .await?;
        read_operation(op, |_| Some(()))
    }
}
