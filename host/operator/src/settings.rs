//! Operator settings, with upstream's names and defaults where upstream has the setting.

use crate::reconcile::Intervals;
use flink_api::validation::ValidationSettings;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Settings {
    /// `kubernetes.operator.watched.namespaces`: empty means every namespace.
    pub watch_namespaces: Vec<String>,
    /// `kubernetes.operator.label.selector`: only resources matching it are reconciled.
    pub label_selector: Option<String>,
    pub intervals: Intervals,
    /// `kubernetes.operator.reconcile.parallelism`: resources reconciled at once (0: no limit).
    pub concurrency: u16,
    /// `kubernetes.operator.termination.timeout`: how long a stopping operator waits for the
    /// reconciles under way before it exits.
    pub termination_timeout: Duration,
    /// The back-off after a failed reconcile (`kubernetes.operator.retry.*`).
    pub retry: Retry,
    /// Reconciles per resource and period (`kubernetes.operator.rate-limiter.*`).
    pub rate_limit: crate::controller::rate_limit::RateLimit,
    /// Flink REST client timeouts and retries (`kubernetes.operator.flink.client.timeout`).
    pub flink_client: flink_rest::ClientConfig,
    /// Flink configuration every cluster starts from (`kubernetes.operator` default config).
    pub flink_defaults: BTreeMap<String, String>,
    /// What validation refuses; the operator ConfigMap can change the artifact keys in it.
    pub validation: ValidationSettings,
    pub artifacts: ArtifactSettings,
    pub snapshots: SnapshotSettings,
    /// The field manager of server-side applies and status writes.
    pub field_manager: String,
    pub policies: PolicySettings,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; None: not served.
    pub http_address: Option<std::net::SocketAddr>,
    /// Leader election and sharding over Leases; None: this replica reconciles everything.
    pub sharding: Option<crate::sharding::elector::ShardingSettings>,
    /// The operator ConfigMap (in the operator's namespace), read at start and watched; None:
    /// only these settings.
    pub config_map: Option<String>,
    /// The admission webhook; None: not served.
    pub webhook: Option<crate::webhook::WebhookSettings>,
    /// Records who reconciles what (tests of several replicas); None in production.
    pub witness: Option<std::sync::Arc<crate::sharding::Witness>>,
}

/// The back-off after a failed reconcile, with upstream's keys and defaults except the longest
/// delay: `kubernetes.operator.retry.initial.interval` (5 s) grown by `.interval.multiplier`
/// (1.5) after each failure in a row, at most `.max.interval` (upstream: none; here 5 min, so
/// a failing resource is looked at again within minutes, not after the 24 min upstream's 15th
/// retry waits), for `.max.attempts` (15) retries. Past those, upstream stops retrying until
/// the resource changes; here it is retried at the longest delay or the reconcile interval,
/// whichever is longer.
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    pub initial: Duration,
    pub multiplier: f64,
    pub max_interval: Duration,
    /// None: never stop backing off (upstream's `-1`).
    pub max_attempts: Option<u32>,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5),
            multiplier: 1.5,
            max_interval: Duration::from_secs(300),
            max_attempts: Some(15),
        }
    }
}

impl Retry {
    /// The wait before the next attempt after `failures` failures in a row (1: the first); once
    /// the retries are spent, `periodic` or the longest delay, whichever is longer.
    pub fn delay(&self, failures: u32, periodic: Duration) -> Duration {
        if self.max_attempts.is_some_and(|max| failures > max) {
            return periodic.max(self.max_interval);
        }
        let grown = self.initial.as_secs_f64()
            * self
                .multiplier
                .powi(failures.saturating_sub(1).min(64) as i32);
        Duration::try_from_secs_f64(grown)
            .unwrap_or(self.max_interval)
            .min(self.max_interval)
    }
}

/// Where tenant policy plugins come from (this operator's own settings).
#[derive(Clone, Debug)]
pub struct PolicySettings {
    /// The operator's namespace: the policies ConfigMap lives here (`POD_NAMESPACE` in a pod).
    pub namespace: String,
    /// The ConfigMap with `policies.yaml` (and optionally plugins as binaryData).
    pub config_map: String,
    /// A directory of `<plugin>.wasm` files (a volume), watched for changes.
    pub plugin_dir: Option<PathBuf>,
    /// Where compiled plugins are cached across restarts.
    pub cache_dir: Option<PathBuf>,
    /// The most any binding may set its limits to.
    pub maxima: flink_policy::Limits,
    /// Pre-reserved plugin instance slots (faster calls, virtual memory reserved up front);
    /// None: instances are mapped per call.
    pub pool_slots: Option<u32>,
    /// The memory all plugin calls together may hold (each reserves its limit first).
    pub budget: flink_policy::Budget,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            namespace: std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into()),
            config_map: "flink-operator-policies".into(),
            plugin_dir: None,
            cache_dir: None,
            maxima: flink_policy::Limits::operator_maxima(),
            pool_slots: None,
            budget: flink_policy::Budget::default(),
        }
    }
}

/// Snapshot files the operator deletes itself.
#[derive(Clone, Debug, Default)]
pub struct SnapshotSettings {
    /// Directories under which the operator deletes a `file:` savepoint (a directory holding
    /// `_metadata`) whose cluster is gone and cannot dispose of it. None by default: the
    /// operator then never deletes a file because a resource names it.
    pub local_roots: Vec<PathBuf>,
}

/// How session-job jars are fetched (which ones may be is `ValidationSettings`).
#[derive(Clone, Debug)]
pub struct ArtifactSettings {
    /// `kubernetes.operator.user.artifacts.base.dir`: where downloads are written before they
    /// are uploaded to the session cluster (one file per fetch, removed after the upload).
    pub base_dir: PathBuf,
    /// What `local://` means on the operator's file system: a URI path under a prefix (the
    /// path in the Flink image, e.g. `/opt/flink/usrlib`) is read from the directory mapped to
    /// it, and only from there (after resolving `..` and symbolic links); `file://` paths must
    /// lie in one of the directories too. None by default: `local://` then names a file of
    /// the Flink image only, which a session job cannot upload.
    pub local_roots: Vec<(String, PathBuf)>,
    /// The largest jar fetched.
    pub max_bytes: u64,
    /// A whole download's timeout.
    pub timeout: Duration,
    /// Redirects followed, each checked like the first URI.
    pub max_redirects: usize,
    /// Fetches at once, over all resources (each may hold `max_bytes` on disk).
    pub concurrent_fetches: usize,
}

impl Default for ArtifactSettings {
    fn default() -> Self {
        Self {
            base_dir: PathBuf::from("/opt/flink/artifacts"),
            local_roots: Vec::new(),
            max_bytes: 256 << 20,
            timeout: Duration::from_secs(120),
            max_redirects: 5,
            concurrent_fetches: 4,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            watch_namespaces: Vec::new(),
            label_selector: None,
            intervals: Intervals::default(),
            concurrency: 200,
            termination_timeout: Duration::from_secs(10),
            retry: Retry::default(),
            rate_limit: Default::default(),
            flink_client: flink_rest::ClientConfig::default(),
            flink_defaults: BTreeMap::new(),
            validation: ValidationSettings::default(),
            artifacts: ArtifactSettings::default(),
            snapshots: SnapshotSettings::default(),
            field_manager: "flink-operator".into(),
            policies: PolicySettings::default(),
            http_address: None,
            sharding: None,
            webhook: None,
            config_map: None,
            witness: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_grow_by_the_multiplier_up_to_the_longest_delay_and_stay_there() {
        let retry = Retry::default();
        let periodic = Duration::from_secs(60);
        let delays: Vec<u64> = (1..=4)
            .map(|n| retry.delay(n, periodic).as_millis() as u64)
            .collect();
        assert_eq!(delays, [5_000, 7_500, 11_250, 16_875]);
        assert_eq!(retry.delay(15, periodic), Duration::from_secs(300));
        assert_eq!(retry.delay(16, periodic), Duration::from_secs(300));
        assert_eq!(
            retry.delay(16, Duration::from_secs(900)),
            Duration::from_secs(900)
        );
        let forever = Retry {
            max_attempts: None,
            ..Retry::default()
        };
        assert_eq!(forever.delay(1_000, periodic), Duration::from_secs(300));
        let flat = Retry {
            multiplier: 1.0,
            ..Retry::default()
        };
        assert_eq!(flat.delay(9, periodic), Duration::from_secs(5));
    }
}
