//! What can go wrong talking to Flink, told apart so callers can act on it.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlinkError {
    /// No connection, or no answer in time. Usually transient (a JobManager starting or
    /// restarting); retried for idempotent calls.
    #[error("Flink cluster at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The job, jar, trigger or endpoint asked for does not exist.
    #[error("{what} not found on the Flink cluster: {message}")]
    NotFound { what: String, message: String },
    /// Flink answered with an error; `message` is Flink's own, without the stack trace.
    #[error("Flink refused {request} (HTTP {status}): {message}")]
    Refused {
        request: String,
        status: u16,
        message: String,
    },
    /// An answer that does not match the REST API.
    #[error("unexpected response to {request} (HTTP {status}): {detail}")]
    UnexpectedResponse {
        request: String,
        status: u16,
        detail: String,
    },
    /// An answer larger than the client reads (`ClientConfig::max_answer_bytes`); the rest of
    /// it was never read.
    #[error(
        "the answer to {request} is larger than {limit} bytes, the most the operator reads from a JobManager"
    )]
    AnswerTooLarge { request: String, limit: usize },
    /// Metrics Flink had not reported when the caller stopped waiting.
    #[error("metrics {missing:?} of {scope} were not reported within {waited:?}")]
    MetricsUnavailable {
        scope: String,
        missing: Vec<String>,
        waited: Duration,
    },
    /// An asynchronous operation (savepoint, checkpoint, disposal) still running at the deadline.
    #[error("{operation} did not finish within {waited:?}")]
    OperationTimeout { operation: String, waited: Duration },
    /// The caller gave something Flink cannot take (a malformed id, a bad base URL).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl FlinkError {
    /// Worth retrying: the cluster may answer differently in a moment.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Flink's error bodies are `{"errors": ["<exception>: <message>\n\tat ...\nCaused by: ..."]}`.
/// The most specific message is the last `Caused by:`; class names are dropped.
pub(crate) fn flink_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    let messages: Vec<String> = errors
        .errors
        .iter()
        .map(|e| most_specific(e))
        .filter(|m| !m.is_empty())
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

pub(crate) fn most_specific(error: &str) -> String {
    let line = error
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Caused by: "))
        .next_back()
        .unwrap_or_else(|| error.lines().next().unwrap_or(""));
    strip_exception_class(line.trim()).to_string()
}

/// `org.apache.flink.Foo$Bar: message` → `message`; plain text stays.
fn strip_exception_class(line: &str) -> &str {
    match line.split_once(": ") {
        Some((class, rest)) if class.contains('.') && !class.contains(' ') => {
            // Nested `a.B: c.D: message` happens; strip every leading class.
            strip_exception_class(rest)
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_cause_without_class_names_is_the_message() {
        let body = br#"{"errors":["org.apache.flink.runtime.rest.NotFoundException: Job f not found\n\tat a.b(C.java:1)\nCaused by: org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not find Flink job (f)\n\tat x.y(Z.java:2)\n"]}"#;
        assert_eq!(
            flink_message(body).as_deref(),
            Some("Could not find Flink job (f)")
        );
    }

    #[test]
    fn plain_messages_stay_as_they_are() {
        assert_eq!(
            flink_message(br#"{"errors":["Unable to load requested file /x."]}"#).as_deref(),
            Some("Unable to load requested file /x.")
        );
        assert_eq!(flink_message(b"<html>"), None);
    }

    #[test]
    fn only_unreachable_and_gateway_errors_are_transient() {
        assert!(
            FlinkError::Unreachable {
                url: "u".into(),
                reason: "r".into()
            }
            .is_transient()
        );
        let refused = |status| FlinkError::Refused {
            request: "r".into(),
            status,
            message: "m".into(),
        };
        assert!(refused(503).is_transient());
        assert!(!refused(500).is_transient());
        assert!(
            !FlinkError::NotFound {
                what: "w".into(),
                message: "m".into()
            }
            .is_transient()
        );
    }
}
