//! The client core: base URL, timeouts, retries, and turning HTTP answers into typed results.

use crate::FlinkError;
use crate::error::flink_message;
use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Duration;

/// Timeouts and retry policy.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Whole-request timeout of ordinary calls.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Timeout of jar uploads, which carry megabytes.
    pub upload_timeout: Duration,
    /// Timeout of a job's cancel request (upstream's `flink.client.cancel.timeout`, 1 min): a
    /// JobManager under load may answer it slowly.
    pub cancel_timeout: Duration,
    /// The largest answer read from a JobManager: a tenant controls its image, so its answers
    /// are read in chunks and refused past this size rather than buffered whole.
    pub max_answer_bytes: usize,
    /// Retries of idempotent calls after the first attempt.
    pub retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Resolves host names instead of the system resolver (local mode resolves Service names
    /// the way the local cluster's pods do).
    pub resolver: Option<Resolver>,
}

/// 16 MiB: a job graph of a thousand vertices with long SQL operator names is a few MiB.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 16 << 20;

/// A host-name resolver for the HTTP client.
#[derive(Clone)]
pub struct Resolver(pub std::sync::Arc<dyn reqwest::dns::Resolve>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.resolve(name)
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            upload_timeout: Duration::from_secs(120),
            cancel_timeout: Duration::from_secs(60),
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            retries: 3,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(3),
            resolver: None,
        }
    }
}

/// A client for one Flink cluster's REST endpoint. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FlinkClient {
    base: String,
    http: reqwest::Client,
    config: ClientConfig,
}

/// Whether a call may be sent again after a transient failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idempotency {
    Retry,
    Once,
}

/// What the caller is asking about, for `NotFound` messages.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<serde_json::Value>,
    pub what: String,
    pub idempotency: Idempotency,
    /// The whole request's timeout instead of the client's `request_timeout`.
    pub timeout: Option<Duration>,
}

impl<'a> Call<'a> {
    pub fn get(path: impl Into<String>, what: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            what: what.into(),
            idempotency: Idempotency::Retry,
            timeout: None,
        }
    }

    pub fn new(
        method: Method,
        path: impl Into<String>,
        what: impl Into<String>,
        idempotency: Idempotency,
    ) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            what: what.into(),
            idempotency,
            timeout: None,
        }
    }

    /// This request's own timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn query(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub fn json(mut self, body: &impl Serialize) -> Result<Self, FlinkError> {
        self.body = Some(serde_json::to_value(body).map_err(|e| {
            FlinkError::InvalidArgument(format!("request body does not serialize: {e}"))
        })?);
        Ok(self)
    }

    fn request_name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl FlinkClient {
    /// `base` is the REST endpoint, e.g. `http://my-job-rest.ns:8081` (a path prefix is kept).
    pub fn new(base: &str, config: ClientConfig) -> Result<Self, FlinkError> {
        let http = Self::http_client(&config)?;
        Self::with_http(base, http, config)
    }

    /// The HTTP client `new` builds from `config`; share one between many clusters' clients
    /// ([`FlinkClient::with_http`]) so an operator of a thousand clusters keeps one pool.
    pub fn http_client(config: &ClientConfig) -> Result<reqwest::Client, FlinkError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout);
        if let Some(resolver) = &config.resolver {
            builder = builder.dns_resolver(std::sync::Arc::new(resolver.clone()));
        }
        builder
            .build()
            .map_err(|e| FlinkError::InvalidArgument(format!("cannot build an HTTP client: {e}")))
    }

    /// A client for `base` over an existing HTTP client (built by [`FlinkClient::http_client`]).
    pub fn with_http(
        base: &str,
        http: reqwest::Client,
        config: ClientConfig,
    ) -> Result<Self, FlinkError> {
        let parsed = url::Url::parse(base).map_err(|e| {
            FlinkError::InvalidArgument(format!("Flink REST URL {base:?} is not a URL: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FlinkError::InvalidArgument(format!(
                "Flink REST URL {base:?} must be http or https"
            )));
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            config,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn settings(&self) -> &ClientConfig {
        &self.config
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.config.min_backoff)
            .with_max_delay(self.config.max_backoff)
            .with_max_times(self.config.retries)
            .with_jitter()
    }

    /// Sends a call (retrying if idempotent) and decodes a JSON answer.
    pub(crate) async fn fetch<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, FlinkError> {
        let (status, body) = self.exchange(&call).await?;
        decode(&call.request_name(), status, &body)
    }

    /// Sends a call whose answer carries nothing the caller needs.
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<(), FlinkError> {
        self.exchange(&call).await.map(|_| ())
    }

    async fn exchange(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), FlinkError> {
        let attempt = || self.exchange_once(call);
        match call.idempotency {
            Idempotency::Once => attempt().await,
            Idempotency::Retry => {
                attempt
                    .retry(self.backoff())
                    .when(FlinkError::is_transient)
                    .notify(|error, wait| {
                        tracing::debug!(request = %call.request_name(), %error, ?wait, "retrying Flink REST call");
                    })
                    .await
            }
        }
    }

    async fn exchange_once(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), FlinkError> {
        let mut request = self.http.request(call.method.clone(), self.url(&call.path));
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let timeout = call.timeout.unwrap_or(self.config.request_timeout);
        if call.timeout.is_some() {
            request = request.timeout(timeout);
        }
        self.complete(request, timeout, &call.request_name(), &call.what)
            .await
    }

    /// Sends a built request and classifies the answer.
    pub(crate) async fn complete(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        request_name: &str,
        what: &str,
    ) -> Result<(StatusCode, Vec<u8>), FlinkError> {
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&e, timeout))?;
        let status = response.status();
        let limit = self.config.max_answer_bytes;
        let too_large = || FlinkError::AnswerTooLarge {
            request: request_name.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e, timeout))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok((status, body));
        }
        let message = flink_message(&body).unwrap_or_else(|| snippet(&body));
        if status == StatusCode::NOT_FOUND {
            return Err(FlinkError::NotFound {
                what: what.to_string(),
                message,
            });
        }
        Err(FlinkError::Refused {
            request: request_name.to_string(),
            status: status.as_u16(),
            message,
        })
    }

    /// `timeout`: the one the request ran under (the client's, an upload's or the call's own).
    fn transport_error(&self, error: &reqwest::Error, timeout: Duration) -> FlinkError {
        let reason = if error.is_timeout() {
            format!("no answer within {timeout:?}")
        } else if error.is_connect() {
            format!("cannot connect ({})", root_cause(error))
        } else {
            root_cause(error)
        };
        FlinkError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    /// Calls `check` every `interval` until it yields a value or `timeout` passes; `check`
    /// errors that are not transient end the wait at once. For lazily computed metrics and
    /// asynchronous operations.
    pub async fn poll<T, F, Fut>(
        &self,
        timeout: Duration,
        interval: Duration,
        mut check: F,
    ) -> Result<Option<T>, FlinkError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, FlinkError>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match check().await {
                Ok(Some(value)) => return Ok(Some(value)),
                Ok(None) => {}
                Err(e) if e.is_transient() => tracing::debug!(error = %e, "still waiting"),
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Ok(None);
            }
            tokio::time::sleep(interval).await;
        }
    }
}

fn decode<T: DeserializeOwned>(
    request: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<T, FlinkError> {
    serde_json::from_slice(body).map_err(|e| FlinkError::UnexpectedResponse {
        request: request.to_string(),
        status: status.as_u16(),
        detail: format!("{e}; body: {}", snippet(body)),
    })
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".into()
    } else if text.len() > 200 {
        format!("{}…", &text[..text.floor_char_boundary(200)])
    } else {
        text.to_string()
    }
}

/// The innermost cause of `error`: what a user can act on ("connection refused"), not the
/// wrapping ("error sending request").
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A hostile JobManager on loopback: answers every request with `total` bytes of a JSON
    /// string, announcing the length or not; counts what it managed to send.
    fn hostile_job_manager(total: u64, announce: bool) -> (String, Arc<AtomicU64>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = if announce {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string()
            };
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b'a'; 64 << 10];
            while counter.load(Ordering::Relaxed) < total {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        });
        (format!("http://127.0.0.1:{port}"), sent)
    }

    fn client(base: &str) -> FlinkClient {
        let config = ClientConfig {
            max_answer_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            retries: 0,
            ..ClientConfig::default()
        };
        FlinkClient::new(base, config).expect("client")
    }

    #[tokio::test]
    async fn an_endless_answer_is_refused_after_the_limit_without_reading_the_rest() {
        let (base, sent) = hostile_job_manager(2 << 30, false);
        let error = client(&base)
            .fetch::<serde_json::Value>(Call::get("jobs/overview", "jobs"))
            .await
            .expect_err("refused");
        assert_eq!(
            error,
            FlinkError::AnswerTooLarge {
                request: "GET jobs/overview".into(),
                limit: 1 << 20
            }
        );
        assert!(!error.is_transient(), "a hostile answer is not retried");
        // The client stopped reading: the sender is blocked by TCP flow control long before
        // 2 GiB (socket buffers are a few MiB at most).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = sent.load(Ordering::Relaxed);
        assert!(sent < 64 << 20, "the JobManager got {sent} bytes out");
    }

    #[tokio::test]
    async fn an_announced_oversized_answer_is_refused_before_its_body() {
        let (base, _) = hostile_job_manager(2 << 30, true);
        let error = client(&base)
            .fetch::<serde_json::Value>(Call::get("jobs/overview", "jobs"))
            .await
            .expect_err("refused");
        assert!(
            matches!(error, FlinkError::AnswerTooLarge { .. }),
            "{error}"
        );
    }

    /// A JobManager on loopback that answers its first two requests with `status` and `body`,
    /// each after 1.5 s; its port.
    fn slow_job_manager(status: &'static str, body: &'static str) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                std::thread::sleep(Duration::from_millis(1_500));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        port
    }

    /// A jar whose `main` takes longer than an ordinary call's timeout still runs with the
    /// submission's own timeout.
    #[tokio::test]
    async fn a_slow_jar_run_is_waited_for_as_long_as_its_own_timeout() {
        let port = slow_job_manager("200 OK", r#"{"jobid":"0b9c7c3e5a8e4c520000000000000003"}"#);
        let client = FlinkClient::new(
            &format!("http://127.0.0.1:{port}"),
            ClientConfig {
                request_timeout: Duration::from_millis(500),
                retries: 0,
                ..ClientConfig::default()
            },
        )
        .expect("client");
        let jar = crate::JarId("x_job.jar".into());
        let request = crate::JarRunRequest::default();
        let error = client.run_jar(&jar, &request).await.expect_err("timed out");
        assert!(
            error.to_string().contains("no answer within 500ms"),
            "{error}"
        );
        let job = client
            .run_jar_within(&jar, &request, Duration::from_secs(10))
            .await
            .expect("run within its own timeout");
        assert_eq!(job.to_string(), "0b9c7c3e5a8e4c520000000000000003");
    }

    /// A cancel that a loaded JobManager answers slowly is waited for as long as the cancel
    /// timeout, not the ordinary calls' timeout.
    #[tokio::test]
    async fn a_slow_cancel_is_waited_for_as_long_as_the_cancel_timeout() {
        let port = slow_job_manager("202 Accepted", "{}");
        let client = |cancel_timeout| {
            FlinkClient::new(
                &format!("http://127.0.0.1:{port}"),
                ClientConfig {
                    request_timeout: Duration::from_millis(500),
                    cancel_timeout,
                    // Retries stay within the cancel timeout.
                    retries: 3,
                    ..ClientConfig::default()
                },
            )
            .expect("client")
        };
        let job = crate::JobId::parse("0b9c7c3e5a8e4c520000000000000003").expect("id");
        client(Duration::from_secs(10))
            .cancel_job(&job)
            .await
            .expect("answered within the cancel timeout");
        let started = std::time::Instant::now();
        let error = client(Duration::from_millis(400))
            .cancel_job(&job)
            .await
            .expect_err("timed out");
        assert!(
            error.to_string().contains("no answer within 400ms"),
            "{error}"
        );
        // One deadline for all attempts: 4 attempts of 400 ms and their back-off would take
        // over 2 s.
        assert!(
            started.elapsed() < Duration::from_millis(1_200),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn answers_within_the_limit_are_read_whole() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let body = format!("\"{}\"", "a".repeat((1 << 20) - 2));
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let answer: serde_json::Value = client(&format!("http://127.0.0.1:{port}"))
            .fetch(Call::get("jobs/overview", "jobs"))
            .await
            .expect("exactly the limit is read");
        assert_eq!(answer.as_str().map(str::len), Some((1 << 20) - 2));
    }
}
