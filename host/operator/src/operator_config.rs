//! The operator ConfigMap (`flink-operator-config` in the operator's namespace), read at start
//! and again whenever it changes: upstream's `kubernetes.operator.*` keys that a running
//! operator can apply, and the default Flink configuration for every deployment, globally
//! (`config.yaml`) and per namespace (`config-<namespace>.yaml`, over the global one). Pure:
//! the ConfigMap's data in, the settings or every problem out.

use crate::reconcile::Intervals;
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
    pub retry_initial: Duration,
    pub retry_max: Duration,
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
}

impl Dynamic {
    /// What the command line's settings give, before any ConfigMap.
    pub fn from_settings(settings: &crate::settings::Settings) -> Self {
        Self {
            intervals: settings.intervals.clone(),
            retry_initial: settings.retry_initial,
            retry_max: settings.retry_max,
            flink_defaults: settings.flink_defaults.clone(),
            namespace_defaults: BTreeMap::new(),
            version_defaults: Vec::new(),
            validation: settings.validation.clone(),
            artifact_headers: Vec::new(),
            artifact_header_hosts: Vec::new(),
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

/// A ConfigMap that was applied: the settings, and keys that only a restart applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub dynamic: Dynamic,
    pub restart_needed: Vec<String>,
}

/// Keys read only at start (the controllers and clients are built from them).
const AT_START: [&str; 4] = [
    "kubernetes.operator.watched.namespaces",
    "kubernetes.operator.label.selector",
    "kubernetes.operator.reconcile.parallelism",
    "kubernetes.operator.flink.client.timeout",
];

/// Reads the ConfigMap's data over `base` (the command line's settings). Every problem names
/// the file, the key, the bad value and the fix; with any problem nothing is applied.
pub fn parse(data: &BTreeMap<String, String>, base: &Dynamic) -> Result<Loaded, Vec<String>> {
    let mut problems = Vec::new();
    let mut dynamic = base.clone();
    let mut restart_needed = Vec::new();
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
                                dynamic.retry_initial = d;
                            }
                        }
                        "retry.max.interval" => {
                            if let Some(d) = duration(&mut problems) {
                                dynamic.retry_max = d;
                            }
                        }
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
                        _ if AT_START.contains(&key.as_str()) => restart_needed.push(key.clone()),
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
    if dynamic.retry_max < dynamic.retry_initial {
        problems.push(format!(
            "{global_file}: kubernetes.operator.retry.max.interval ({:?}) is shorter than kubernetes.operator.retry.initial.interval ({:?}); raise the maximum",
            dynamic.retry_max, dynamic.retry_initial
        ));
    }
    for (file, text) in data {
        let Some(namespace) = file
            .strip_prefix(NAMESPACE_FILE_PREFIX)
            .and_then(|f| f.strip_suffix(".yaml"))
        else {
            continue;
        };
        match flat(text) {
            Ok(config) => {
                let operator_keys: Vec<&String> = config
                    .keys()
                    .filter(|k| AT_START.contains(&k.as_str()) || is_process_key(k))
                    .collect();
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
            restart_needed,
        })
    } else {
        Err(problems)
    }
}

/// Keys that configure the operator process rather than a deployment.
fn is_process_key(key: &str) -> bool {
    matches!(
        key.strip_prefix(OPERATOR_PREFIX),
        Some(
            "reconcile.interval"
                | "observer.progress-check.interval"
                | "retry.initial.interval"
                | "retry.max.interval"
        )
    ) || [
        ALLOWED_SCHEMES_KEY,
        RESTRICTED_HOSTS_KEY,
        HTTP_HEADER_KEY,
        HTTP_HEADER_HOSTS_KEY,
    ]
    .contains(&key)
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
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            flink_defaults: BTreeMap::from([("taskmanager.numberOfTaskSlots".into(), "1".into())]),
            namespace_defaults: BTreeMap::new(),
            version_defaults: Vec::new(),
            validation: ValidationSettings::default(),
            artifact_headers: Vec::new(),
            artifact_header_hosts: Vec::new(),
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
            loaded.restart_needed,
            ["kubernetes.operator.watched.namespaces"]
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
