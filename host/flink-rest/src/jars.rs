//! Jar upload, run and delete: how session jobs are submitted.

use crate::client::{Call, Idempotency};
use crate::model::{JarRunRequest, JarRunResponse, JarUploadResponse, UploadedJars};
use crate::{FlinkClient, FlinkError, JarId, JobId};
use reqwest::Method;

impl FlinkClient {
    /// `POST /jars/upload` of a jar in memory. Not retried: a retry would leave a second copy
    /// behind.
    pub async fn upload_jar(&self, file_name: &str, bytes: Vec<u8>) -> Result<JarId, FlinkError> {
        self.upload(reqwest::multipart::Part::bytes(bytes), file_name)
            .await
    }

    /// `POST /jars/upload` of `len` bytes read from `file` as they are sent, so a jar of any
    /// size costs the caller one buffer.
    pub async fn upload_jar_file(
        &self,
        file_name: &str,
        file: tokio::fs::File,
        len: u64,
    ) -> Result<JarId, FlinkError> {
        use tokio::io::AsyncReadExt;
        let stream = tokio_util::io::ReaderStream::new(file.take(len));
        let body = reqwest::Body::wrap_stream(stream);
        self.upload(
            reqwest::multipart::Part::stream_with_length(body, len),
            file_name,
        )
        .await
    }

    async fn upload(
        &self,
        part: reqwest::multipart::Part,
        file_name: &str,
    ) -> Result<JarId, FlinkError> {
        let part = part
            .file_name(file_name.to_string())
            .mime_str("application/x-java-archive")
            .map_err(|e| FlinkError::InvalidArgument(format!("jar part: {e}")))?;
        let form = reqwest::multipart::Form::new().part("jarfile", part);
        let request = self
            .http()
            .post(self.url("jars/upload"))
            .multipart(form)
            .timeout(self.settings().upload_timeout);
        let (status, body) = self
            .complete(
                request,
                self.settings().upload_timeout,
                "POST jars/upload",
                "jar upload endpoint",
            )
            .await?;
        let response: JarUploadResponse =
            serde_json::from_slice(&body).map_err(|e| FlinkError::UnexpectedResponse {
                request: "POST jars/upload".into(),
                status: status.as_u16(),
                detail: e.to_string(),
            })?;
        let id = response.filename.rsplit('/').next().unwrap_or_default();
        if id.is_empty() {
            return Err(FlinkError::UnexpectedResponse {
                request: "POST jars/upload".into(),
                status: status.as_u16(),
                detail: format!("no jar id in filename {:?}", response.filename),
            });
        }
        Ok(JarId(id.to_string()))
    }

    /// `POST /jars/:id/run`. Not retried here; callers pass a fixed `job_id` so that their own
    /// retry finds the job already running instead of starting it twice.
    pub async fn run_jar(&self, jar: &JarId, request: &JarRunRequest) -> Result<JobId, FlinkError> {
        self.run_jar_within(jar, request, self.settings().request_timeout)
            .await
    }

    /// [`Self::run_jar`] with its own timeout: the JobManager answers once the job's `main`
    /// has built and submitted its graph, which can take longer than an ordinary call
    /// (upstream's `kubernetes.operator.job.submission.timeout`, 10 min).
    pub async fn run_jar_within(
        &self,
        jar: &JarId,
        request: &JarRunRequest,
        timeout: std::time::Duration,
    ) -> Result<JobId, FlinkError> {
        let call = Call::new(
            Method::POST,
            format!("jars/{jar}/run"),
            format!("jar {jar}"),
            Idempotency::Once,
        )
        .json(request)?
        .timeout(timeout);
        let response: JarRunResponse = self.fetch(call).await?;
        JobId::parse(&response.jobid)
    }

    /// `GET /jars`: what is uploaded and not deleted.
    pub async fn jars(&self) -> Result<UploadedJars, FlinkError> {
        self.fetch(Call::get("jars", "jar list")).await
    }

    /// `DELETE /jars/:id`.
    pub async fn delete_jar(&self, jar: &JarId) -> Result<(), FlinkError> {
        self.send(Call::new(
            Method::DELETE,
            format!("jars/{jar}"),
            format!("jar {jar}"),
            Idempotency::Retry,
        ))
        .await
    }
}
