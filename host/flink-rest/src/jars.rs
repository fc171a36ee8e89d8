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

/// A jar holding only a manifest, for a job whose class is on the cluster's classpath: Flink
/// runs jobs only from an uploaded jar, so upstream uploads one like it for a session job
/// without `jarURI`. A ZIP archive with one stored entry, `META-INF/MANIFEST.MF`.
pub fn empty_jar() -> Vec<u8> {
    const NAME: &[u8] = b"META-INF/MANIFEST.MF";
    const MANIFEST: &[u8] = b"Manifest-Version: 1.0\r\n\r\n";
    let crc = crc32(MANIFEST);
    let u16le = |v: u16| v.to_le_bytes();
    let u32le = |v: u32| v.to_le_bytes();
    let mut out = Vec::new();
    // Local file header: version 1.0, no flags, stored, no time.
    out.extend(u32le(0x0403_4b50));
    out.extend(u16le(10));
    out.extend(u16le(0));
    out.extend(u16le(0));
    out.extend(u32le(0));
    out.extend(u32le(crc));
    out.extend(u32le(MANIFEST.len() as u32));
    out.extend(u32le(MANIFEST.len() as u32));
    out.extend(u16le(NAME.len() as u16));
    out.extend(u16le(0));
    out.extend(NAME);
    out.extend(MANIFEST);
    let central = out.len() as u32;
    // Central directory entry.
    out.extend(u32le(0x0201_4b50));
    out.extend(u16le(10));
    out.extend(u16le(10));
    out.extend(u16le(0));
    out.extend(u16le(0));
    out.extend(u32le(0));
    out.extend(u32le(crc));
    out.extend(u32le(MANIFEST.len() as u32));
    out.extend(u32le(MANIFEST.len() as u32));
    out.extend(u16le(NAME.len() as u16));
    out.extend([0; 8]);
    out.extend(u32le(0));
    out.extend(u32le(0));
    out.extend(NAME);
    let size = out.len() as u32 - central;
    // End of central directory.
    out.extend(u32le(0x0605_4b50));
    out.extend([0; 4]);
    out.extend(u16le(1));
    out.extend(u16le(1));
    out.extend(u32le(size));
    out.extend(u32le(central));
    out.extend(u16le(0));
    out
}

/// CRC-32 (IEEE), as ZIP uses it.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, b| {
        (0..8).fold(crc ^ u32::from(*b), |c, _| {
            if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_zip_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn the_empty_jar_is_a_zip_with_its_manifest() {
        let jar = empty_jar();
        assert_eq!(&jar[..4], b"PK\x03\x04");
        let end = &jar[jar.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 1, "one entry");
        let text = String::from_utf8_lossy(&jar);
        assert!(text.contains("META-INF/MANIFEST.MFManifest-Version: 1.0"));
    }
}
