//! How long a deletion waits for its cleanup: upstream's
//! `kubernetes.operator.resource.cleanup.timeout` (default 5 minutes). Past it the operator
//! stops waiting (a JobManager that never answers, pods that never go), removes its finalizer
//! with a warning, and leaves what remains of the cluster to Kubernetes' garbage collection
//! (every object it rendered is owned by the resource). A session cluster waiting for its
//! session jobs is not timed out: that wait is on the user, and the status says so.

use super::{Note, Reason};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::time::Duration;

pub const TIMEOUT_KEY: &str = flink_api::config::options::RESOURCE_CLEANUP_TIMEOUT.key;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The warning to give and the finalizer to remove, once the deletion of `metadata` has waited
/// longer than the timeout in `config` (the resource's effective configuration); None before.
pub fn timed_out(
    metadata: &ObjectMeta,
    config: &BTreeMap<String, String>,
    now_ms: i64,
) -> Option<Note> {
    let since = metadata.deletion_timestamp.as_ref()?.0.as_millisecond();
    let timeout = config
        .get(TIMEOUT_KEY)
        .and_then(|v| flink_autoscaler::settings::parse_duration(v).ok())
        .unwrap_or(DEFAULT_TIMEOUT);
    (now_ms.saturating_sub(since) > timeout.as_millis() as i64).then(|| {
        Note::warning(
            Reason::CleanupFailed,
            format!(
                "The cleanup did not finish within {} s ({TIMEOUT_KEY}); the operator stops waiting, and Kubernetes deletes what is left of the cluster with the resource",
                timeout.as_secs()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn deleted_at(ms: i64) -> ObjectMeta {
        ObjectMeta {
            deletion_timestamp: Some(Time(jiff::Timestamp::from_millisecond(ms).unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn a_deletion_times_out_after_the_configured_time_and_not_before() {
        let none = BTreeMap::new();
        assert!(timed_out(&ObjectMeta::default(), &none, i64::MAX).is_none());
        assert!(timed_out(&deleted_at(1_000), &none, 301_000).is_none());
        let note = timed_out(&deleted_at(1_000), &none, 301_001).expect("timed out");
        assert!(note.warning && note.message.contains("300 s"), "{note:?}");
        let short = BTreeMap::from([(TIMEOUT_KEY.to_string(), "30 s".to_string())]);
        assert!(timed_out(&deleted_at(1_000), &short, 31_001).is_some());
    }
}
