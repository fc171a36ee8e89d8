//! The operator ConfigMap (`flink-operator-config` in the operator's namespace), read at start
//! and again whenever it changes: upstream's `kubernetes.operator.*` keys that a running
//! operator can apply, and the default Flink configuration for every deployment, globally
//! (`config.yaml`) and per namespace (`config-<namespace>.yaml`, over the global one). Pure:
//! the ConfigMap's data in, the settings or every problem out.

use crate::reconcile::Intervals;
use crate::settings::{Retry, Settings};
use flink_api::FlinkConfiguration;
use flink_api::artifact::{
    ALLOWED_SCHEMES_KEY, HTTP_HEADER_HOSTS_KEY, HTTP_HEADER_KEY, RESTRICTED_HOSTS_KEY,
    parse_headers,
};
use flink_api::validation::ValidationSettings;
use std::collections::BTreeMap;
use std::time::Duration;

/// The global file in the ConfigMap; `flink-conf.yaml` (Flink 1's name) is read when it is
/// absent.
pub const GLOBAL_FILE: &str = "config.yaml";
const LEGACY_FILE: &str = "flink-conf.yaml";
const NAMESPACE_FILE_PREFIX: &str = "config-";
const OPERATOR_PREFIX: &str = "kubernetes.operator.";
/// Upstream's per-namespace defaults in the operator configuration:
/// `kubernetes.operator.default-configuration.namespace.<namespace>.<key>`.
const NAMESPACE_PREFIX: &str = "kubernetes.operator.default-configuration.namespace.";
/// Upstream's per-Flink-version defaults: `...flink-version.<v1_18|v2_0|...>[+].<key>`, where
/// `+` means that version and every newer one.
const VERSION_PREFIX: &str = "kubernetes.operator.default-configuration.flink-version.";

/// What the ConfigMap sets that a running operator applies at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Dynamic {
    pub intervals: Intervals,
    pub retry: Retry,
    /// `kubernetes.operator.rate-limiter.limit` reconciles per `.refresh-period`.
    pub rate_limit: crate::controller::rate_limit::RateLimit,
    /// Flink configuration every cluster starts from (a spec's own keys win).
    pub flink_defaults: BTreeMap<String, String>,
    /// Per namespace, over `flink_defaults`.
    pub namespace_defaults: BTreeMap<String, BTreeMap<String, String>>,
    /// Per Flink version (and, with `and_newer`, every newer one), over the namespace's.
    pub version_defaults: Vec<VersionDefaults>,
    /// What validation refuses: the artifact schemes and restricted hosts
    /// (`kubernetes.operator.user.artifacts.*`), for the reconciler and the webhook alike.
    pub validation: ValidationSettings,
    /// Headers sent with a session-job jar download (`...user.artifacts.http.header`), to the
    /// hosts of `artifact_header_hosts` only; a session job's own configuration may add its own.
    pub artifact_headers: Vec<(String, String)>,
    /// `...user.artifacts.http.header.hosts` (ours): where `artifact_headers` may go.
    pub artifact_header_hosts: Vec<String>,
    /// `kubernetes.operator.resource.deletion.propagation`: how a cluster's JobManager and
    /// TaskManager Deployments are deleted.
    pub deletion_propagation: Propagation,
    /// `kubernetes.operator.savepoint.history.max.count.threshold` / `.max.age.threshold`:
    /// caps on every resource's savepoint history that no resource can raise.
    pub snapshot_thresholds: crate::reconcile::job_snapshots::HistoryThresholds,
    /// The ConfigMap's `log4j-console.properties` / `logback-console.xml`: the log
    /// configuration of every cluster without its own `spec.logConfiguration`.
    pub log_defaults: BTreeMap<String, String>,
    /// `kubernetes.operator.exception.*`: how `status.error` is shaped.
    pub error_shape: crate::reconcile::status::ErrorShape,
    /// `kubernetes.operator.ingress.manage` (true): `spec.ingress` becomes an Ingress.
    pub manage_ingress: bool,
}

/// Kubernetes' deletion propagation, upstream's `Foreground` by default: a Deployment goes
/// once its pods are gone. `Orphan` leaves the pods running (a deletion then waits for them
/// until `resource.cleanup.timeout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    #[default]
    Foreground,
}

impl Dynamic {
    /// What the command line's settings give, before any ConfigMap.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            intervals: settings.intervals.clone(),
            retry: settings.retry.clone(),
            rate_limit: settings.rate_limit,
            flink_defaults: settings.flink_defaults.clone(),
            namespace_defaults: BTreeMap::new(),
            version_defaults: Vec::new(),
            validation: settings.validation.clone(),
            artifact_headers: Vec::new(),
            artifact_header_hosts: Vec::new(),
            deletion_propagation: Propagation::default(),
            snapshot_thresholds: Default::default(),
            log_defaults: BTreeMap::new(),
            error_shape: Default::default(),
            manage_ingress: true,
        }
    }

    /// The defaults for a resource in `namespace`.
    pub fn flink_defaults_for(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut defaults = self.flink_defaults.clone();
        if let Some(overrides) = self.namespace_defaults.get(namespace) {
            defaults.extend(overrides.clone());
        }
        defaults
    }

    /// The defaults for a resource in `namespace` running `version`, as upstream layers them:
    /// global, then the namespace's, then each `<v>+` at or below `version` from the oldest,
    /// then `version`'s own.
    pub fn flink_defaults_for_version(
        &self,
        namespace: &str,
        version: Option<flink_api::FlinkVersion>,
    ) -> BTreeMap<String, String> {
        let mut defaults = self.flink_defaults_for(namespace);
        let Some(version) = version else {
            return defaults;
        };
        let mut layers: Vec<&VersionDefaults> = self
            .version_defaults
            .iter()
            .filter(|d| {
                if d.and_newer {
                    d.version <= version
                } else {
                    d.version == version
                }
            })
            .collect();
        // Oldest first; a version's own keys over its `+` ones.
        layers.sort_by_key(|d| (d.version, !d.and_newer));
        for layer in layers {
            defaults.extend(layer.config.clone());
        }
        defaults
    }
}

/// `kubernetes.operator.default-configuration.flink-version.<version>[+].*`.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionDefaults {
    pub version: flink_api::FlinkVersion,
    pub and_newer: bool,
    pub config: BTreeMap<String, String>,
}

/// A ConfigMap that was applied: the settings a running operator applies, and those only a
/// start applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub dynamic: Dynamic,
    pub at_start: AtStart,
    /// Upstream's operator keys this operator does not read (docs/configuration.md says why).
    pub not_read: Vec<String>,
}

const WATCHED_NAMESPACES: &str = "kubernetes.operator.watched.namespaces";
const LABEL_SELECTOR: &str = "kubernetes.operator.label.selector";
const RECONCILE_PARALLELISM: &str = "kubernetes.operator.reconcile.parallelism";
const FLINK_CLIENT_TIMEOUT: &str = "kubernetes.operator.flink.client.timeout";
const FLINK_CANCEL_TIMEOUT: &str = "kubernetes.operator.flink.client.cancel.timeout";
const TERMINATION_TIMEOUT: &str = "kubernetes.operator.termination.timeout";
const ARTIFACTS_BASE_DIR: &str = "kubernetes.operator.user.artifacts.base.dir";
const LEADER_ELECTION: &str = "kubernetes.operator.leader-election.enabled";
const LEASE_NAME: &str = "kubernetes.operator.leader-election.lease-name";
const LEASE_DURATION: &str = "kubernetes.operator.leader-election.lease-duration";
const RENEW_DEADLINE: &str = "kubernetes.operator.leader-election.renew-deadline";
const RETRY_PERIOD: &str = "kubernetes.operator.leader-election.retry-period";
/// Upstream's "every namespace" for `watched.namespaces`.
const ALL_NAMESPACES: &str = "JOSDK_ALL_NAMESPACES";

/// Keys read only at start (the controllers, clients and leases are built from them).
const AT_START: [&str; 12] = [
    ARTIFACTS_BASE_DIR,
    WATCHED_NAMESPACES,
    LABEL_SELECTOR,
    RECONCILE_PARALLELISM,
    FLINK_CLIENT_TIMEOUT,
    FLINK_CANCEL_TIMEOUT,
    TERMINATION_TIMEOUT,
    LEADER_ELECTION,
    LEASE_NAME,
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
];

/// What the ConfigMap sets that only a start applies: read before the controllers are built,
/// over the command line's settings (as the other keys are). A later change is reported as
/// `restartNeeded` until a restart applies it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AtStart {
    /// Empty: every namespace.
    pub watched_namespaces: Option<Vec<String>>,
    pub label_selector: Option<String>,
    /// 0: no limit (upstream's `-1`).
    pub reconcile_parallelism: Option<u16>,
    pub flink_client_timeout: Option<Duration>,
    pub flink_cancel_timeout: Option<Duration>,
    pub termination_timeout: Option<Duration>,
    /// Where session-job jars are downloaded before their upload.
    pub artifacts_base_dir: Option<std::path::PathBuf>,
    /// `true` turns leader election on; `false` leaves the command line's choice (replicas
    /// started with `--leader-elect` keep electing: turning it off under them would let two
    /// reconcile one resource).
    pub leader_election: Option<bool>,
    pub lease_name: Option<String>,
    pub lease_duration: Option<Duration>,
    pub renew_deadline: Option<Duration>,
    pub retry_period: Option<Duration>,
}

impl AtStart {
    /// `settings` with these over them; a problem names the keys (the lease timings must
    /// still keep two replicas apart).
    pub fn apply(
        &self,
        mut settings: Settings,
        identity: impl FnOnce() -> String,
    ) -> Result<Settings, String> {
        if let Some(namespaces) = &self.watched_namespaces {
            settings.watch_namespaces = namespaces.clone();
        }
        if let Some(selector) = &self.label_selector {
            settings.label_selector = Some(selector.clone());
        }
        if let Some(parallelism) = self.reconcile_parallelism {
            settings.concurrency = parallelism;
        }
        if let Some(timeout) = self.flink_client_timeout {
            settings.flink_client.request_timeout = timeout;
        }
        if let Some(timeout) = self.flink_cancel_timeout {
            settings.flink_client.cancel_timeout = timeout;
        }
        if let Some(timeout) = self.termination_timeout {
            settings.termination_timeout = timeout;
        }
        if let Some(dir) = &self.artifacts_base_dir {
            settings.artifacts.base_dir = dir.clone();
        }
        if self.leader_election == Some(true) && settings.sharding.is_none() {
            settings.sharding = Some(crate::sharding::elector::ShardingSettings {
                identity: identity(),
                namespace: settings.policies.namespace.clone(),
                shards: 1,
                timing: crate::sharding::lease::Timing::DEFAULT,
                lease_prefix: crate::sharding::elector::DEFAULT_LEASE_PREFIX.into(),
            });
        }
        if let Some(sharding) = &mut settings.sharding {
            if let Some(name) = &self.lease_name {
                sharding.lease_prefix = name.clone();
            }
            let timing = &mut sharding.timing;
            for (value, field) in [
                (self.lease_duration, &mut timing.lease_duration),
                (self.renew_deadline, &mut timing.renew_deadline),
                (self.retry_period, &mut timing.retry_period),
            ] {
                if let Some(value) = value {
                    *field = value;
                }
            }
            if let Some(problem) = timing.problem() {
                return Err(format!(
                    "{LEASE_DURATION}, {RENEW_DEADLINE}, {RETRY_PERIOD} (with the command line's): {problem}"
                ));
            }
        }
        Ok(settings)
    }

    /// The keys set here to something other than what `settings` (the running operator's)
    /// hold: a restart would apply them.
    pub fn restart_needed(&self, settings: &Settings) -> Vec<String> {
        let sharding = settings.sharding.as_ref();
        let differs = [
            (
                WATCHED_NAMESPACES,
                self.watched_namespaces
                    .as_ref()
                    .is_some_and(|n| *n != settings.watch_namespaces),
            ),
            (
                LABEL_SELECTOR,
                self.label_selector.is_some() && self.label_selector != settings.label_selector,
            ),
            (
                RECONCILE_PARALLELISM,
                self.reconcile_parallelism
                    .is_some_and(|p| p != settings.concurrency),
            ),
            (
                FLINK_CLIENT_TIMEOUT,
                self.flink_client_timeout
                    .is_some_and(|t| t != settings.flink_client.request_timeout),
            ),
            (
                FLINK_CANCEL_TIMEOUT,
                self.flink_cancel_timeout
                    .is_some_and(|t| t != settings.flink_client.cancel_timeout),
            ),
            (
                TERMINATION_TIMEOUT,
                self.termination_timeout
                    .is_some_and(|t| t != settings.termination_timeout),
            ),
            (
                ARTIFACTS_BASE_DIR,
                self.artifacts_base_dir
                    .as_ref()
                    .is_some_and(|d| *d != settings.artifacts.base_dir),
            ),
            (
                LEADER_ELECTION,
                self.leader_election == Some(true) && sharding.is_none(),
            ),
            (
                LEASE_NAME,
                self.lease_name
                    .as_ref()
                    .is_some_and(|n| sharding.is_none_or(|s| s.lease_prefix != *n)),
            ),
            (
                LEASE_DURATION,
                self.lease_duration
                    .is_some_and(|d| sharding.is_none_or(|s| s.timing.lease_duration != d)),
            ),
            (
                RENEW_DEADLINE,
                self.renew_deadline
                    .is_some_and(|d| sharding.is_none_or(|s| s.timing.renew_deadline != d)),
            ),
            (
                RETRY_PERIOD,
                self.retry_period
                    .is_some_and(|d| sharding.is_none_or(|s| s.timing.retry_period != d)),
            ),
        ];
        differs
            .into_iter()
            .filter(|(_, differs)| *differs)
            .map(|(key, _)| key.to_string())
            .collect()
    }
}

/// Reads the ConfigMap's data over `base` (the command line's settings). Every problem names
/// the file, the key, the bad value and the fix; with any problem nothing is applied.
pub fn parse(data: &BTreeMap<String, String>, base: &Dynamic) -> Result<Loaded, Vec<String>> {
    let mut problems = Vec::new();
    let mut dynamic = base.clone();
    let mut at_start = AtStart::default();
    let mut not_read = Vec::new();
    let (mut stack_trace_enabled, mut stack_trace_max) = (None, None);
    let global_file = if data.contains_key(GLOBAL_FILE) {
        GLOBAL_FILE
    } else {
        LEGACY_FILE
    };
    if let Some(text) = data.get(global_file) {
        match flat(text) {
            Ok(config) => {
                for (key, value) in config {
                    if let Some(rest) = key.strip_prefix(NAMESPACE_PREFIX) {
                        match rest.split_once('.') {
                            Some((_, option)) if is_process_key(option) => {
                                problems.push(format!("{global_file}: {key}: {option} configures the operator itself, not one namespace's resources; set it without the {NAMESPACE_PREFIX}<namespace>. prefix"));
                            }
                            Some((namespace, option)) if !namespace.is_empty() && !option.is_empty() => {
                                dynamic
                                    .namespace_defaults
                                    .entry(namespace.to_string())
                                    .or_default()
                                    .insert(option.to_string(), value);
                            }
                            _ => problems.push(format!("{global_file}: {key}: name a namespace and a key, e.g. {NAMESPACE_PREFIX}team-a.taskmanager.numberOfTaskSlots")),
                        }
                        continue;
                    }
                    if let Some(rest) = key.strip_prefix(VERSION_PREFIX) {
                        let parsed = rest.split_once('.').and_then(|(version, option)| {
                            let (version, and_newer) = match version.strip_suffix('+') {
                                Some(v) => (v, true),
                                None => (version, false),
                            };
                            let version: flink_api::FlinkVersion =
                                serde_json::from_value(serde_json::Value::String(version.into()))
                                    .ok()?;
                            (!option.is_empty()).then(|| (version, and_newer, option.to_string()))
                        });
                        match parsed {
                            Some((_, _, option)) if is_process_key(&option) => {
                                problems.push(format!("{global_file}: {key}: {option} configures the operator itself, not one Flink version's resources; set it without the {VERSION_PREFIX}<version>. prefix"));
                            }
                            Some((version, and_newer, option)) => {
                                match dynamic
                                    .version_defaults
                                    .iter_mut()
                                    .find(|d| d.version == version && d.and_newer == and_newer)
                                {
                                    Some(layer) => {
                                        layer.config.insert(option, value);
                                    }
                                    None => dynamic.version_defaults.push(VersionDefaults {
                                        version,
                                        and_newer,
                                        config: BTreeMap::from([(option, value)]),
                                    }),
                                }
                            }
                            None => problems.push(format!("{global_file}: {key}: name a Flink version (as in spec.flinkVersion, e.g. v1_20 or v2_0+) and a key, e.g. {VERSION_PREFIX}v2_0+.taskmanager.numberOfTaskSlots")),
                        }
                        continue;
                    }
                    let Some(option) = key.strip_prefix(OPERATOR_PREFIX) else {
                        dynamic.flink_defaults.insert(key, value);
                        continue;
                    };
                    let at = |what: &str| format!("{global_file}: {key}: {what}");
                    let duration = |problems: &mut Vec<String>| match parse_duration(&value) {
                        Ok(d) if !d.is_zero() => Some(d),
                        Ok(_) => {
                            problems.push(at("must be more than 0"));
                            None
                        }
                        Err(e) => {
                            problems.push(at(&e));
                            None
                        }
                    };
                    match option {
                        "reconcile.interval" => {
                            if let Some(d) = duration(&mut problems) {
                                dynamic.intervals.reconcile = d;
                            }
                        }
                        "observer.progress-check.interval" => {
                            if let Some(d) = duration(&mut problems) {
                                dynamic.intervals.progress = d;
                            }
                        }
                        "retry.initial.interval" => {
                            if let Some(d) = duration(&mut problems) {
                                dynamic.retry.initial = d;
                            }
                        }
                        "retry.max.interval" => {
                            if let Some(d) = duration(&mut problems) {
                                dynamic.retry.max_interval = d;
                            }
                        }
                        "resource.deletion.propagation" => {
                            match value.trim().to_ascii_lowercase().as_str() {
                                "foreground" => dynamic.deletion_propagation = Propagation::Foreground,
                                "background" => dynamic.deletion_propagation = Propagation::Background,
                                "orphan" => dynamic.deletion_propagation = Propagation::Orphan,
                                _ => problems.push(at("must be Foreground, Background or Orphan")),
                            }
                        }
                        // 0 as upstream: the count still keeps one savepoint.
                        "savepoint.history.max.count.threshold" => match value.trim().parse::<usize>() {
                            Ok(n) => dynamic.snapshot_thresholds.max_count = Some(n),
                            _ => problems.push(at("must be a whole number, 0 or more")),
                        },
                        "savepoint.history.max.age.threshold" => match parse_duration(&value) {
                            Ok(d) => dynamic.snapshot_thresholds.max_age = Some(d),
                            Err(e) => problems.push(at(&e)),
                        },
                        "retry.interval.multiplier" => match value.trim().parse::<f64>() {
                            Ok(m) if m.is_finite() && m >= 1.0 => dynamic.retry.multiplier = m,
                            _ => problems.push(at("must be a number of at least 1, e.g. 1.5")),
                        },
                        "rate-limiter.limit" => match value.trim().parse::<i64>() {
                            Ok(n) if n <= 0 => dynamic.rate_limit.limit = 0,
                            Ok(n) => dynamic.rate_limit.limit = n.min(u32::MAX as i64) as u32,
                            _ => problems.push(at("must be a whole number (0 or less: no limit)")),
                        },
                        // At least 64: the job id at the start of a message must survive the cut.
                        "exception.field.max.length" => match value.trim().parse::<usize>() {
                            Ok(n) if n >= 64 => dynamic.error_shape.field_max = n,
                            _ => problems.push(at("must be a whole number of at least 64 (characters)")),
                        },
                        "exception.stacktrace.max.length" => match value.trim().parse::<usize>() {
                            Ok(n) => stack_trace_max = Some(n),
                            _ => problems.push(at("must be a whole number (characters)")),
                        },
                        "exception.stacktrace.enabled" => match value.trim() {
                            "true" => stack_trace_enabled = Some(true),
                            "false" => stack_trace_enabled = Some(false),
                            _ => problems.push(at("must be true or false")),
                        },
                        "exception.throwable.list.max.count" => match value.trim().parse::<usize>() {
                            Ok(n) => dynamic.error_shape.throwables_max = n,
                            _ => problems.push(at("must be a whole number")),
                        },
                        "exception.label.mapper" => match label_mapper(&value) {
                            Ok(labels) => dynamic.error_shape.labels = labels,
                            Err(why) => problems.push(at(&why)),
                        },
                        "ingress.manage" => match value.trim() {
                            "true" => dynamic.manage_ingress = true,
                            "false" => dynamic.manage_ingress = false,
                            _ => problems.push(at("must be true or false")),
                        },
                        "rate-limiter.refresh-period" => {
                            if let Some(d) = duration(&mut problems) {
                                dynamic.rate_limit.period = d;
                            }
                        }
                        "retry.max.attempts" => match value.trim().parse::<i64>() {
                            Ok(-1) => dynamic.retry.max_attempts = None,
                            Ok(n) if (0..=u32::MAX as i64).contains(&n) => {
                                dynamic.retry.max_attempts = Some(n as u32)
                            }
                            _ => problems.push(at("must be a whole number of 0 or more, or -1 for no limit")),
                        },
                        "watched.namespaces" => {
                            let namespaces: Vec<String> = value
                                .split(',')
                                .map(|n| n.trim().to_string())
                                .filter(|n| !n.is_empty() && n != ALL_NAMESPACES)
                                .collect();
                            match namespaces.iter().find(|n| !is_dns_label(n)) {
                                Some(bad) => problems.push(at(&format!("{bad:?} is not a namespace name; list namespaces comma-separated, or {ALL_NAMESPACES} for all"))),
                                None => at_start.watched_namespaces = Some(namespaces),
                            }
                        }
                        "label.selector" => match value.trim() {
                            "" => problems.push(at("is empty; remove the key to watch every resource")),
                            selector => at_start.label_selector = Some(selector.to_string()),
                        },
                        "reconcile.parallelism" => match value.trim().parse::<i64>() {
                            Ok(-1) => at_start.reconcile_parallelism = Some(0),
                            Ok(n) if (1..=u16::MAX as i64).contains(&n) => {
                                at_start.reconcile_parallelism = Some(n as u16)
                            }
                            _ => problems.push(at("must be a whole number from 1 to 65535, or -1 for no limit")),
                        },
                        "flink.client.timeout" => at_start.flink_client_timeout = duration(&mut problems),
                        "flink.client.cancel.timeout" => at_start.flink_cancel_timeout = duration(&mut problems),
                        "termination.timeout" => at_start.termination_timeout = duration(&mut problems),
                        "user.artifacts.base.dir" => match value.trim() {
                            dir if dir.starts_with('/') => at_start.artifacts_base_dir = Some(dir.into()),
                            _ => problems.push(at("must be an absolute directory path, e.g. /opt/flink/artifacts")),
                        },
                        "leader-election.enabled" => match value.trim() {
                            "true" => at_start.leader_election = Some(true),
                            "false" => at_start.leader_election = Some(false),
                            _ => problems.push(at("must be true or false")),
                        },
                        "leader-election.lease-name" => match value.trim() {
                            name if is_dns_label(name) && name.len() <= 40 => at_start.lease_name = Some(name.to_string()),
                            _ => problems.push(at("must be a lowercase name of at most 40 letters, digits and '-' (the Leases are named <name>-shard-<i>)")),
                        },
                        "leader-election.lease-duration" => at_start.lease_duration = duration(&mut problems),
                        "leader-election.renew-deadline" => at_start.renew_deadline = duration(&mut problems),
                        "leader-election.retry-period" => at_start.retry_period = duration(&mut problems),
                        _ if key == ALLOWED_SCHEMES_KEY => {
                            let schemes: Vec<String> = value
                                .split([';', ','])
                                .map(|s| s.trim().to_ascii_lowercase())
                                .filter(|s| !s.is_empty())
                                .collect();
                            if schemes.iter().all(|s| {
                                s.bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                            }) {
                                dynamic.validation.session_job_jar_schemes = schemes;
                            } else {
                                problems
                                    .push(at("is not a list of URI schemes, e.g. `https;http`"));
                            }
                        }
                        _ if key == RESTRICTED_HOSTS_KEY => match value.trim() {
                            "true" => dynamic.validation.disallow_restricted_hosts = true,
                            "false" => dynamic.validation.disallow_restricted_hosts = false,
                            _ => problems.push(at("must be true or false")),
                        },
                        _ if key == HTTP_HEADER_HOSTS_KEY => {
                            dynamic.artifact_header_hosts = value
                                .split([',', ';'])
                                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                                .filter(|h| !h.is_empty())
                                .collect();
                        }
                        _ if key == HTTP_HEADER_KEY => match parse_headers(&value) {
                            Ok(headers) => dynamic.artifact_headers = headers,
                            Err(e) => problems.push(format!("{global_file}: {e}")),
                        },
                        // Upstream's settings of its own process that mean nothing here
                        // (docs/configuration.md says why, key by key): accepted, reported, kept
                        // out of Flink's configuration.
                        _ if is_not_read(&key) => not_read.push(key.clone()),
                        // Per-resource operator options (periodic savepoints, history, …) are
                        // defaults for every deployment's configuration.
                        _ => {
                            dynamic.flink_defaults.insert(key, value);
                        }
                    }
                }
            }
            Err(e) => problems.push(format!("{global_file}: {e}")),
        }
    }
    // `exception.stacktrace.max.length` counts only with `exception.stacktrace.enabled`.
    let base_max = base.error_shape.stack_trace_max;
    if stack_trace_enabled.unwrap_or(base_max.is_some()) {
        dynamic.error_shape.stack_trace_max = Some(stack_trace_max.or(base_max).unwrap_or(2048));
    } else {
        dynamic.error_shape.stack_trace_max = None;
    }
    if dynamic.retry.max_interval < dynamic.retry.initial {
        problems.push(format!(
            "{global_file}: kubernetes.operator.retry.max.interval ({:?}) is shorter than kubernetes.operator.retry.initial.interval ({:?}); raise the maximum",
            dynamic.retry.max_interval, dynamic.retry.initial
        ));
    }
    // Upstream's files of Flink's own logging: every cluster whose `spec.logConfiguration` is
    // unset logs with them.
    dynamic.log_defaults = flink_api::validation::LOG_CONFIG_FILES
        .iter()
        .filter_map(|file| Some((file.to_string(), data.get(*file)?.clone())))
        .filter(|(_, text)| !text.trim().is_empty())
        .collect();
    for (file, text) in data {
        let Some(namespace) = file
            .strip_prefix(NAMESPACE_FILE_PREFIX)
            .and_then(|f| f.strip_suffix(".yaml"))
        else {
            continue;
        };
        match flat(text) {
            Ok(config) => {
                let operator_keys: Vec<&String> =
                    config.keys().filter(|k| is_process_key(k)).collect();
                if !operator_keys.is_empty() {
                    problems.push(format!(
                        "{file}: {} apply to the whole operator, not to one namespace; move them to {GLOBAL_FILE}",
                        operator_keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                    continue;
                }
                // Over what `config.yaml` set for the namespace with upstream's prefix.
                dynamic
                    .namespace_defaults
                    .entry(namespace.to_string())
                    .or_default()
                    .extend(config);
            }
            Err(e) => problems.push(format!("{file}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(Loaded {
            dynamic,
            at_start,
            not_read,
        })
    } else {
        Err(problems)
    }
}

/// `exception.label.mapper`: Flink's map syntax (`regex:label,...`), each regular expression
/// compiled within a size limit.
fn label_mapper(text: &str) -> Result<crate::reconcile::status::LabelMapper, String> {
    let map = crate::render::flink_options::parse_map(text)?;
    let mut labels = Vec::new();
    for (pattern, label) in map {
        let regex = regex::RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                format!(
                    "{pattern:?} is not a regular expression: {}",
                    first_line(&e.to_string())
                )
            })?;
        labels.push((regex, label));
    }
    Ok(crate::reconcile::status::LabelMapper(labels))
}

/// Upstream's keys that configure its own process and are not read here (a `.` at the end: a
/// key family). Each has its reason in docs/configuration.md, which a test keeps in step with
/// upstream's tables.
pub const NOT_READ: &[&str] = &[
    "kubernetes.operator.cluster.resource-view.refresh-interval",
    "kubernetes.operator.config.cache.size",
    "kubernetes.operator.config.cache.timeout",
    "kubernetes.operator.dynamic.config.check.interval",
    "kubernetes.operator.dynamic.config.enabled",
    "kubernetes.operator.dynamic.namespaces.enabled",
    "kubernetes.operator.health.",
    "kubernetes.operator.observer.rest-ready.delay",
    "kubernetes.operator.plugins.listeners.",
    "kubernetes.operator.startup.stop-on-informer-error",
    "kubernetes.operator.josdk.metrics.enabled",
    "kubernetes.operator.jvm.metrics.enabled",
    "kubernetes.operator.kubernetes.client.metrics.",
    "kubernetes.operator.metrics.",
    "kubernetes.operator.resource.lifecycle.metrics.enabled",
    "kubernetes.operator.resource.lifecycle.namespace.histograms.enabled",
    "kubernetes.operator.resource.metrics.enabled",
];

fn is_not_read(key: &str) -> bool {
    NOT_READ.iter().any(|k| {
        if k.ends_with('.') {
            key.starts_with(k)
        } else {
            key == *k
        }
    })
}

/// Keys that configure the operator process rather than a deployment.
fn is_process_key(key: &str) -> bool {
    AT_START.contains(&key)
        || is_not_read(key)
        || matches!(
            key.strip_prefix(OPERATOR_PREFIX),
            Some(
                "reconcile.interval"
                    | "observer.progress-check.interval"
                    | "retry.initial.interval"
                    | "retry.max.interval"
                    | "retry.interval.multiplier"
                    | "retry.max.attempts"
                    | "rate-limiter.limit"
                    | "rate-limiter.refresh-period"
                    | "exception.field.max.length"
                    | "exception.stacktrace.enabled"
                    | "exception.stacktrace.max.length"
                    | "exception.throwable.list.max.count"
                    | "exception.label.mapper"
                    | "ingress.manage"
                    | "resource.deletion.propagation"
                    | "savepoint.history.max.count.threshold"
                    | "savepoint.history.max.age.threshold"
            )
        )
        || [
            ALLOWED_SCHEMES_KEY,
            RESTRICTED_HOSTS_KEY,
            HTTP_HEADER_KEY,
            HTTP_HEADER_HOSTS_KEY,
        ]
        .contains(&key)
}

/// A Kubernetes namespace (or Lease prefix) name: lowercase letters, digits and `-`.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    flink_autoscaler::settings::parse_duration(text)
}

/// A YAML file of Flink options, flat or nested, as Flink's flat view.
fn flat(text: &str) -> Result<BTreeMap<String, String>, String> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let config: FlinkConfiguration = serde_saphyr::from_str(text).map_err(|e| {
        format!(
            "not a YAML mapping of Flink options: {}",
            first_line(&e.to_string())
        )
    })?;
    Ok(config.flat())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Dynamic {
        Dynamic {
            intervals: Intervals::default(),
            retry: Retry::default(),
            rate_limit: Default::default(),
            flink_defaults: BTreeMap::from([("taskmanager.numberOfTaskSlots".into(), "1".into())]),
            namespace_defaults: BTreeMap::new(),
            version_defaults: Vec::new(),
            validation: ValidationSettings::default(),
            artifact_headers: Vec::new(),
            artifact_header_hosts: Vec::new(),
            deletion_propagation: Propagation::Foreground,
            snapshot_thresholds: Default::default(),
            log_defaults: BTreeMap::new(),
            error_shape: Default::default(),
            manage_ingress: true,
        }
    }

    #[test]
    fn upstreams_namespace_and_version_defaults_layer_as_upstream_and_stay_out_of_flink() {
        use flink_api::FlinkVersion;
        let loaded = parse(
            &data(&[
                ("config-team-a.yaml", "parallelism.default: '3'\n"),
                (
                "config.yaml",
                "kubernetes.operator.default-configuration.namespace.team-a.taskmanager.numberOfTaskSlots: '4'
kubernetes.operator.default-configuration.namespace.team-a.parallelism.default: '2'
kubernetes.operator.default-configuration.flink-version.v1_18+.parallelism.default: '5'
kubernetes.operator.default-configuration.flink-version.v2_0+.parallelism.default: '6'
kubernetes.operator.default-configuration.flink-version.v2_0.parallelism.default: '7'
kubernetes.operator.default-configuration.flink-version.v1_20.state.backend.type: rocksdb
",
            ),
            ]),
            &base(),
        )
        .unwrap();
        let dynamic = &loaded.dynamic;
        assert!(
            !dynamic
                .flink_defaults
                .keys()
                .any(|k| k.contains("default-configuration")),
            "{:?}",
            dynamic.flink_defaults
        );
        let at = |ns: &str, v: Option<FlinkVersion>, key: &str| {
            dynamic.flink_defaults_for_version(ns, v).get(key).cloned()
        };
        assert_eq!(
            at("team-a", None, "taskmanager.numberOfTaskSlots").as_deref(),
            Some("4")
        );
        assert_eq!(
            at("team-b", None, "taskmanager.numberOfTaskSlots").as_deref(),
            Some("1")
        );
        // Versions over the namespace; the newest `+` at or below the version; its own last.
        assert_eq!(
            at("team-a", Some(FlinkVersion::V1_19), "parallelism.default").as_deref(),
            Some("5")
        );
        assert_eq!(
            at("team-a", Some(FlinkVersion::V2_3), "parallelism.default").as_deref(),
            Some("6")
        );
        assert_eq!(
            at("team-a", Some(FlinkVersion::V2_0), "parallelism.default").as_deref(),
            Some("7")
        );
        assert_eq!(
            at("team-a", Some(FlinkVersion::V1_17), "parallelism.default").as_deref(),
            Some("3")
        );
        assert_eq!(
            at("team-b", Some(FlinkVersion::V1_20), "state.backend.type").as_deref(),
            Some("rocksdb")
        );
        assert_eq!(
            at("team-b", Some(FlinkVersion::V2_0), "state.backend.type"),
            None
        );
        let problems = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.default-configuration.flink-version.v9_9.a: b\n",
            )]),
            &base(),
        )
        .unwrap_err();
        assert!(problems[0].contains("name a Flink version"), "{problems:?}");
    }

    #[test]
    fn the_artifact_keys_set_what_validation_and_the_fetch_allow_and_stay_out_of_flink() {
        let loaded = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.user.artifacts.allowed-schemes: HTTPS;http
kubernetes.operator.user.artifacts.disallow-restricted-hosts: false
kubernetes.operator.user.artifacts.http.header: 'Authorization:Bearer t'
",
            )]),
            &base(),
        )
        .unwrap();
        assert_eq!(
            loaded.dynamic.validation,
            ValidationSettings {
                session_job_jar_schemes: vec!["https".into(), "http".into()],
                disallow_restricted_hosts: false,
            }
        );
        assert_eq!(
            loaded.dynamic.artifact_headers,
            [("Authorization".to_string(), "Bearer t".to_string())]
        );
        assert_eq!(loaded.dynamic.flink_defaults, base().flink_defaults);
        let problems = parse(
            &data(&[
                (
                    "config.yaml",
                    "kubernetes.operator.user.artifacts.disallow-restricted-hosts: maybe
",
                ),
                (
                    "config-team-a.yaml",
                    "kubernetes.operator.user.artifacts.allowed-schemes: file
",
                ),
            ]),
            &base(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[1].contains("move them to config.yaml"),
            "a namespace cannot widen them"
        );
    }

    fn data(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operator_keys_set_the_operator_and_the_rest_are_flink_defaults() {
        let loaded = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.reconcile.interval: 15 s\nkubernetes.operator.observer.progress-check.interval: 2 s\nkubernetes.operator.periodic.savepoint.interval: 6 h\ntaskmanager:\n  numberOfTaskSlots: 4\nkubernetes.operator.watched.namespaces: a,b\n",
            )]),
            &base(),
        )
        .unwrap();
        assert_eq!(loaded.dynamic.intervals.reconcile, Duration::from_secs(15));
        assert_eq!(loaded.dynamic.intervals.progress, Duration::from_secs(2));
        assert_eq!(
            loaded.dynamic.flink_defaults["taskmanager.numberOfTaskSlots"],
            "4"
        );
        assert_eq!(
            loaded.dynamic.flink_defaults["kubernetes.operator.periodic.savepoint.interval"],
            "6 h"
        );
        assert_eq!(
            loaded.at_start.restart_needed(&Settings::default()),
            ["kubernetes.operator.watched.namespaces"]
        );
    }

    #[test]
    fn start_keys_apply_over_the_command_line_at_start_and_a_later_change_needs_a_restart() {
        let loaded = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.watched.namespaces: team-a, team-b
kubernetes.operator.label.selector: tier=gold
kubernetes.operator.reconcile.parallelism: -1
kubernetes.operator.flink.client.timeout: 20 s
kubernetes.operator.flink.client.cancel.timeout: 2 min
kubernetes.operator.termination.timeout: 30 s
kubernetes.operator.user.artifacts.base.dir: /var/tmp/jars
kubernetes.operator.leader-election.enabled: true
kubernetes.operator.leader-election.lease-name: flink-ops
kubernetes.operator.leader-election.lease-duration: 30 s
kubernetes.operator.leader-election.renew-deadline: 20 s
kubernetes.operator.retry.interval.multiplier: 3
kubernetes.operator.retry.max.attempts: -1
kubernetes.operator.rate-limiter.limit: 10
kubernetes.operator.rate-limiter.refresh-period: 1 min
",
            )]),
            &base(),
        )
        .unwrap();
        // None of them is a Flink option of a deployment.
        assert_eq!(loaded.dynamic.flink_defaults, base().flink_defaults);
        assert_eq!(loaded.dynamic.retry.multiplier, 3.0);
        assert_eq!(loaded.dynamic.retry.max_attempts, None);
        assert_eq!(
            loaded.dynamic.rate_limit,
            crate::controller::rate_limit::RateLimit {
                limit: 10,
                period: Duration::from_secs(60)
            }
        );
        let command_line = Settings::default();
        let started = loaded
            .at_start
            .apply(command_line.clone(), || "replica-0".into())
            .unwrap();
        assert_eq!(started.watch_namespaces, ["team-a", "team-b"]);
        assert_eq!(started.label_selector.as_deref(), Some("tier=gold"));
        assert_eq!(started.concurrency, 0, "upstream's -1: no limit");
        assert_eq!(
            started.flink_client.request_timeout,
            Duration::from_secs(20)
        );
        assert_eq!(
            started.flink_client.cancel_timeout,
            Duration::from_secs(120)
        );
        assert_eq!(started.termination_timeout, Duration::from_secs(30));
        assert_eq!(
            started.artifacts.base_dir,
            std::path::Path::new("/var/tmp/jars")
        );
        let sharding = started.sharding.as_ref().expect("leader election on");
        assert_eq!(
            (sharding.identity.as_str(), sharding.lease_prefix.as_str()),
            ("replica-0", "flink-ops")
        );
        assert_eq!(sharding.timing.lease_duration, Duration::from_secs(30));
        assert_eq!(sharding.timing.renew_deadline, Duration::from_secs(20));
        // Started with them: nothing to restart for; the command line alone: all of them.
        assert!(loaded.at_start.restart_needed(&started).is_empty());
        assert_eq!(loaded.at_start.restart_needed(&command_line).len(), 11);
        // Lease timings that would let two replicas overlap are refused by name.
        let unsafe_timing = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.leader-election.enabled: true
kubernetes.operator.leader-election.renew-deadline: 1 min
",
            )]),
            &base(),
        )
        .unwrap();
        let problem = unsafe_timing
            .at_start
            .apply(Settings::default(), || "r".into())
            .unwrap_err();
        assert!(
            problem.contains("kubernetes.operator.leader-election.renew-deadline"),
            "{problem}"
        );
        // `false` does not take election away from replicas started with it.
        let off = AtStart {
            leader_election: Some(false),
            ..AtStart::default()
        };
        let electing = Settings {
            sharding: started.sharding.clone(),
            ..Settings::default()
        };
        assert!(
            off.apply(electing, || "r".into())
                .unwrap()
                .sharding
                .is_some()
        );
    }

    #[test]
    fn the_savepoint_history_thresholds_are_the_operators_and_stay_out_of_flink() {
        let loaded = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.savepoint.history.max.count.threshold: 3\nkubernetes.operator.savepoint.history.max.age.threshold: 2 h\n",
            )]),
            &base(),
        )
        .unwrap();
        assert_eq!(
            loaded.dynamic.snapshot_thresholds,
            crate::reconcile::job_snapshots::HistoryThresholds {
                max_count: Some(3),
                max_age: Some(Duration::from_secs(7200)),
            }
        );
        assert!(
            !loaded
                .dynamic
                .flink_defaults
                .keys()
                .any(|k| k.contains("threshold")),
            "{:?}",
            loaded.dynamic.flink_defaults
        );
        assert!(loaded.not_read.is_empty(), "{:?}", loaded.not_read);
        let bad = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.savepoint.history.max.count.threshold: few\n",
            )]),
            &base(),
        )
        .unwrap_err();
        assert!(
            bad.iter().any(|p| p.contains(
                "kubernetes.operator.savepoint.history.max.count.threshold: must be a whole number, 0 or more"
            )),
            "{bad:?}"
        );
        // An operator setting under a namespace's (or a version's) defaults would only leak
        // into those clusters' Flink configuration: refused, saying where it goes.
        let scoped = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.default-configuration.namespace.team-a.kubernetes.operator.savepoint.history.max.count.threshold: 2\n",
            )]),
            &base(),
        )
        .unwrap_err();
        assert!(
            scoped
                .iter()
                .any(|p| p.contains("configures the operator itself")),
            "{scoped:?}"
        );
    }

    #[test]
    fn deletion_propagation_is_upstreams_foreground_unless_set() {
        let set = |value: &str| {
            parse(
                &data(&[(
                    "config.yaml",
                    &format!("kubernetes.operator.resource.deletion.propagation: {value}\n"),
                )]),
                &base(),
            )
            .map(|l| l.dynamic.deletion_propagation)
        };
        assert_eq!(
            parse(&BTreeMap::new(), &base())
                .unwrap()
                .dynamic
                .deletion_propagation,
            Propagation::Foreground
        );
        assert_eq!(set("Orphan"), Ok(Propagation::Orphan));
        assert_eq!(set("background"), Ok(Propagation::Background));
        let problems = set("Sideways").unwrap_err();
        assert!(
            problems[0].contains("must be Foreground, Background or Orphan"),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_start_and_retry_keys_are_named_with_the_fix() {
        let problems = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.watched.namespaces: team_a
kubernetes.operator.reconcile.parallelism: 0
kubernetes.operator.retry.interval.multiplier: 0.5
kubernetes.operator.retry.max.attempts: many
kubernetes.operator.rate-limiter.limit: often
kubernetes.operator.leader-election.lease-name: Flink Ops
kubernetes.operator.label.selector: ''
",
            )]),
            &base(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 7, "{problems:#?}");
        for (problem, key) in problems.iter().zip([
            "label.selector: is empty",
            "leader-election.lease-name: must be",
            "rate-limiter.limit: must be a whole number (0 or less: no limit)",
            "reconcile.parallelism: must be",
            "retry.interval.multiplier: must be",
            "retry.max.attempts: must be",
            "watched.namespaces: \"team_a\" is not a namespace",
        ]) {
            assert!(problem.contains(key), "{problem} / {key}");
        }
    }

    #[test]
    fn the_exception_keys_shape_the_status_error_and_a_bad_regex_is_named() {
        let loaded = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.exception.field.max.length: 100
kubernetes.operator.exception.stacktrace.enabled: true
kubernetes.operator.exception.throwable.list.max.count: 5
kubernetes.operator.exception.label.mapper: \"time(d )?out.*:slow,OutOfMemory:memory\"
",
            )]),
            &base(),
        )
        .unwrap();
        let shape = &loaded.dynamic.error_shape;
        assert_eq!(
            (shape.field_max, shape.stack_trace_max, shape.throwables_max),
            (100, Some(2048), 5)
        );
        let labels: Vec<(&str, &str)> = shape
            .labels
            .0
            .iter()
            .map(|(r, l)| (r.as_str(), l.as_str()))
            .collect();
        assert_eq!(
            labels,
            [("OutOfMemory", "memory"), ("time(d )?out.*", "slow")]
        );
        assert!(loaded.not_read.is_empty(), "{:?}", loaded.not_read);
        // The length alone does not turn the stack trace on.
        let off = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.exception.stacktrace.max.length: 10\n",
            )]),
            &base(),
        )
        .unwrap();
        assert_eq!(off.dynamic.error_shape.stack_trace_max, None);
        let problems = parse(
            &data(&[(
                "config.yaml",
                "kubernetes.operator.exception.label.mapper: \"(unclosed:label\"\n",
            )]),
            &base(),
        )
        .unwrap_err();
        assert!(
            problems[0]
                .contains("exception.label.mapper: \"(unclosed\" is not a regular expression"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_log_files_are_every_clusters_log_defaults_and_empty_ones_are_none() {
        let loaded = parse(
            &data(&[
                ("config.yaml", ""),
                ("log4j-console.properties", "rootLogger.level = WARN\n"),
                ("logback-console.xml", "  \n"),
                ("log4j-operator.properties", "rootLogger.level = DEBUG\n"),
            ]),
            &base(),
        )
        .unwrap();
        assert_eq!(
            loaded.dynamic.log_defaults,
            BTreeMap::from([(
                "log4j-console.properties".to_string(),
                "rootLogger.level = WARN\n".to_string()
            )])
        );
    }

    #[test]
    fn a_namespace_file_overrides_the_global_defaults_for_its_namespace_only() {
        let loaded = parse(
            &data(&[
                ("config.yaml", "taskmanager.numberOfTaskSlots: 3\n"),
                (
                    "config-team-a.yaml",
                    "taskmanager.numberOfTaskSlots: 5\nstate.backend.type: rocksdb\n",
                ),
            ]),
            &base(),
        )
        .unwrap();
        let team_a = loaded.dynamic.flink_defaults_for("team-a");
        assert_eq!(team_a["taskmanager.numberOfTaskSlots"], "5");
        assert_eq!(team_a["state.backend.type"], "rocksdb");
        let team_b = loaded.dynamic.flink_defaults_for("team-b");
        assert_eq!(team_b["taskmanager.numberOfTaskSlots"], "3");
        assert!(!team_b.contains_key("state.backend.type"));
    }

    #[test]
    fn every_problem_is_named_and_nothing_is_applied() {
        let problems = parse(
            &data(&[
                (
                    "config.yaml",
                    "kubernetes.operator.reconcile.interval: soon\nkubernetes.operator.retry.initial.interval: 0 s\n",
                ),
                ("config-team-a.yaml", "kubernetes.operator.reconcile.interval: 1 s\n"),
                ("config-team-b.yaml", "- not\n- a mapping\n"),
            ]),
            &base(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(
            problems[0].starts_with(
                "config.yaml: kubernetes.operator.reconcile.interval: \"soon\" is not a duration"
            ),
            "{}",
            problems[0]
        );
        assert_eq!(
            problems[1],
            "config.yaml: kubernetes.operator.retry.initial.interval: must be more than 0"
        );
        assert!(
            problems[2].contains("move them to config.yaml"),
            "{}",
            problems[2]
        );
        assert!(
            problems[3].starts_with("config-team-b.yaml: not a YAML mapping"),
            "{}",
            problems[3]
        );
    }

    #[test]
    fn flink_1_file_name_is_read_and_an_empty_config_map_changes_nothing() {
        let loaded = parse(
            &data(&[("flink-conf.yaml", "parallelism.default: 2\n")]),
            &base(),
        )
        .unwrap();
        assert_eq!(loaded.dynamic.flink_defaults["parallelism.default"], "2");
        assert_eq!(parse(&BTreeMap::new(), &base()).unwrap().dynamic, base());
    }
}
