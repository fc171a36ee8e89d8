//! `flinkConfiguration` as users write it and as Flink reads it.
//!
//! Upstream accepts both flat keys (`state.savepoints.dir: ...`) and nested YAML objects
//! (`state: {savepoints.dir: ...}`), numbers and booleans as YAML scalars. We keep the document
//! exactly as written (so a round trip through the API server changes nothing) and derive Flink's
//! flat `key: value` view from it on demand.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The `flinkConfiguration` field: a YAML/JSON object whose leaves are Flink options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct FlinkConfiguration(pub Map<String, Value>);

/// Two spellings of one flat key, e.g. `state.savepoints.dir` and `state: {savepoints.dir}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateKey {
    pub key: String,
}

impl JsonSchema for FlinkConfiguration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FlinkConfiguration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Same as upstream: no type, any nested object kept.
        json_schema!({
            "description": "Flink configuration: flat keys or nested objects, values as strings, numbers or booleans.",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

impl FromIterator<(String, String)> for FlinkConfiguration {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }
}

impl FlinkConfiguration {
    /// Flink's flat view. Where one key is spelled twice, the flat spelling wins; use
    /// [`FlinkConfiguration::duplicate_keys`] to report such conflicts.
    pub fn flat(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut nested = BTreeMap::new();
        for (key, value) in &self.0 {
            match value {
                Value::Object(map) => flatten_into(key, map, &mut nested),
                other => {
                    if let Some(text) = scalar_text(other) {
                        out.insert(key.clone(), text);
                    }
                }
            }
        }
        for (key, value) in nested {
            out.entry(key).or_insert(value);
        }
        out
    }

    /// Keys that the document sets more than once through different nestings.
    pub fn duplicate_keys(&self) -> Vec<DuplicateKey> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        count_keys("", &self.0, &mut seen);
        seen.into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(key, _)| DuplicateKey { key })
            .collect()
    }

    /// The value of the first of `keys` that is set.
    pub fn get_first(&self, keys: &[&str]) -> Option<(String, String)> {
        let flat = self.flat();
        keys.iter()
            .find_map(|k| flat.get(*k).map(|v| ((*k).to_string(), v.clone())))
    }

    /// The value of an option under its current or any deprecated name.
    pub fn get(&self, option: &ConfigOption) -> Option<(String, String)> {
        self.get_first(&option.all_keys())
    }

    /// Sets a flat key, removing any other spelling of it so the flat view has one value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        remove_nested(&mut self.0, key);
        self.0.insert(key.to_string(), Value::String(value.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn flatten_into(prefix: &str, map: &Map<String, Value>, out: &mut BTreeMap<String, String>) {
    for (key, value) in map {
        let full = join(prefix, key);
        match value {
            Value::Object(inner) => flatten_into(&full, inner, out),
            other => {
                if let Some(text) = scalar_text(other) {
                    out.entry(full).or_insert(text);
                }
            }
        }
    }
}

fn count_keys(prefix: &str, map: &Map<String, Value>, out: &mut BTreeMap<String, usize>) {
    for (key, value) in map {
        let full = join(prefix, key);
        match value {
            Value::Object(inner) => count_keys(&full, inner, out),
            Value::Null => {}
            _ => *out.entry(full).or_default() += 1,
        }
    }
}

fn remove_nested(map: &mut Map<String, Value>, key: &str) {
    map.remove(key);
    let prefixes: Vec<String> = map
        .iter()
        .filter(|(k, v)| v.is_object() && key.starts_with(&format!("{k}.")))
        .map(|(k, _)| k.clone())
        .collect();
    for prefix in prefixes {
        if let Some(Value::Object(inner)) = map.get_mut(&prefix) {
            remove_nested(inner, &key[prefix.len() + 1..]);
            if inner.is_empty() {
                map.remove(&prefix);
            }
        }
    }
}

/// How Flink reads a YAML scalar as an option value. Lists become Flink's `;`-separated form.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|item| scalar_text(item).unwrap_or_else(|| item.to_string()))
                .collect::<Vec<_>>()
                .join(";"),
        ),
        Value::Object(_) => Some(value.to_string()),
    }
}

/// Which of Flink's configuration files an entry is written into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFile {
    /// Flink 2's `config.yaml`: standard YAML, so quoted keys and values hold anything
    /// printable.
    Yaml,
    /// Flink 1's `flink-conf.yaml`: read line by line, split at the first `": "`, cut at the
    /// first `#`, trimmed; nothing can be escaped.
    Legacy,
}

/// Why `key: value` cannot go into `file` and come back from Flink's own parser as exactly
/// that key and that value (and no other key); None when it can. Validation reports it with
/// the field, and rendering refuses such an entry whatever its source.
///
/// Control characters (CR, LF, NUL, ...) are refused everywhere: a line break would start a
/// new entry in a 1.x file and in the lines Flink's shell scripts read back from either file.
pub fn file_entry_problem(key: &str, value: &str, file: ConfigFile) -> Option<String> {
    let control = |text: &str| text.chars().find(|c| c.is_control() && *c != '\t');
    if key.is_empty() {
        return Some("an empty key; name the option".into());
    }
    if let Some(c) = control(key) {
        return Some(format!(
            "the key holds the control character U+{:04X}; remove it",
            c as u32
        ));
    }
    if key.trim() != key {
        return Some("the key starts or ends with whitespace; remove it".into());
    }
    if key.contains('#') || key.contains(": ") || key.ends_with(':') {
        return Some(
            "the key holds '#' or ':' followed by a space, which would change the structure of Flink's configuration file; no Flink option is named so"
                .into(),
        );
    }
    if let Some(c) = control(value) {
        return Some(format!(
            "the value holds the control character U+{:04X}; remove it (a line break would start another entry of the configuration file)",
            c as u32
        ));
    }
    if file == ConfigFile::Legacy {
        if value.contains('#') {
            return Some(
                "the value holds '#', where Flink 1.x's flink-conf.yaml ends the value; remove it or use Flink 2 (config.yaml)"
                    .into(),
            );
        }
        // Java's String.trim(), which the 1.x reader applies.
        if value.trim_matches(|c: char| c <= ' ') != value {
            return Some(
                "the value starts or ends with whitespace, which Flink 1.x's flink-conf.yaml drops; remove it"
                    .into(),
            );
        }
    }
    None
}

/// Flink's configuration file holding `entries`, in `file`'s format. `Yaml` writes every key
/// and value as a double-quoted scalar, so nothing is reinterpreted (`0x1F`, `true`, `[a]`
/// stay text); `Legacy` writes `key: value` lines (none for an empty value, which Flink 1.x
/// skips). The first entry that cannot be written
/// ([`file_entry_problem`]) is refused as `(key, problem)`: never rendered altered.
pub fn config_file_text<'a>(
    entries: impl IntoIterator<Item = (&'a String, &'a String)>,
    file: ConfigFile,
) -> Result<String, (String, String)> {
    let mut text = String::new();
    for (key, value) in entries {
        if let Some(problem) = file_entry_problem(key, value, file) {
            return Err((key.clone(), problem));
        }
        match file {
            ConfigFile::Yaml => {
                text.push_str(&yaml_quoted(key));
                text.push_str(": ");
                text.push_str(&yaml_quoted(value));
            }
            // Flink 1.x skips a line without a value: the key is unset either way.
            ConfigFile::Legacy if value.is_empty() => continue,
            ConfigFile::Legacy => {
                text.push_str(key);
                text.push_str(": ");
                text.push_str(value);
            }
        }
        text.push('\n');
    }
    Ok(text)
}

/// A YAML double-quoted scalar. Beyond `"` and `\`, every character Flink's YAML reader
/// (snakeyaml-engine) does not take raw is escaped: controls (C0, DEL, C1), the line and
/// paragraph separators, the byte-order mark and U+FFFE/U+FFFF.
pub fn yaml_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
                ) =>
            {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Flink list option's value (`List<String>`, e.g. the program arguments) as Flink reads it
/// back element for element, whatever the elements hold: a YAML flow sequence for
/// `config.yaml`, Flink's `;`-separated form with every element single-quoted (a quote doubled)
/// for `flink-conf.yaml`.
pub fn list_value(items: &[String], file: ConfigFile) -> String {
    match file {
        ConfigFile::Yaml => format!(
            "[{}]",
            items
                .iter()
                .map(|i| yaml_quoted(i))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ConfigFile::Legacy => items
            .iter()
            .map(|i| format!("'{}'", i.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(";"),
    }
}

/// A Flink option with its current key and the deprecated keys Flink still reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigOption {
    pub key: &'static str,
    pub deprecated: &'static [&'static str],
}

impl ConfigOption {
    pub const fn new(key: &'static str, deprecated: &'static [&'static str]) -> Self {
        Self { key, deprecated }
    }

    pub fn all_keys(&self) -> Vec<&'static str> {
        std::iter::once(self.key)
            .chain(self.deprecated.iter().copied())
            .collect()
    }

    /// Its trimmed value in a flat configuration (the current key first).
    pub fn in_flat<'a>(&self, config: &'a BTreeMap<String, String>) -> Option<&'a str> {
        std::iter::once(self.key)
            .chain(self.deprecated.iter().copied())
            .find_map(|k| config.get(k))
            .map(|v| v.trim())
    }

    /// A boolean option in a flat configuration, as Flink reads one (`true`/`false` in any
    /// case); `default` when it is absent or not a boolean.
    pub fn flag_in_flat(&self, config: &BTreeMap<String, String>, default: bool) -> bool {
        match self.in_flat(config) {
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            _ => default,
        }
    }

    /// `a` (or its older name `b`), for messages.
    pub fn describe(&self) -> String {
        match self.deprecated {
            [] => format!("`{}`", self.key),
            old => format!(
                "`{}` (Flink 1.x: {})",
                self.key,
                old.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The options the operator reads or owns, with their Flink 1.x and 2.x names.
pub mod options {
    use super::ConfigOption;

    pub const CHECKPOINTS_DIR: ConfigOption =
        ConfigOption::new("execution.checkpointing.dir", &["state.checkpoints.dir"]);
    pub const SAVEPOINTS_DIR: ConfigOption = ConfigOption::new(
        "execution.checkpointing.savepoint-dir",
        &["state.savepoints.dir"],
    );
    pub const HA_TYPE: ConfigOption =
        ConfigOption::new("high-availability.type", &["high-availability"]);
    pub const HA_STORAGE_DIR: ConfigOption = ConfigOption::new("high-availability.storageDir", &[]);
    pub const SAVEPOINT_PATH: ConfigOption = ConfigOption::new(
        "execution.state-recovery.path",
        &["execution.savepoint.path"],
    );
    pub const CHECKPOINT_INTERVAL: ConfigOption =
        ConfigOption::new("execution.checkpointing.interval", &[]);
    pub const CHECKPOINT_RETENTION: ConfigOption = ConfigOption::new(
        "execution.checkpointing.externalized-checkpoint-retention",
        &[],
    );
    pub const PARALLELISM_DEFAULT: ConfigOption = ConfigOption::new("parallelism.default", &[]);
    pub const TASK_SLOTS: ConfigOption = ConfigOption::new("taskmanager.numberOfTaskSlots", &[]);
    pub const SCHEDULER: ConfigOption = ConfigOption::new("jobmanager.scheduler", &[]);
    pub const TASK_MANAGER_RESOURCE_ID: ConfigOption =
        ConfigOption::new("taskmanager.resource-id", &[]);
    pub const JM_PROCESS_MEMORY: ConfigOption =
        ConfigOption::new("jobmanager.memory.process.size", &[]);
    pub const JM_FLINK_MEMORY: ConfigOption =
        ConfigOption::new("jobmanager.memory.flink.size", &[]);
    pub const TM_PROCESS_MEMORY: ConfigOption =
        ConfigOption::new("taskmanager.memory.process.size", &[]);
    pub const TM_FLINK_MEMORY: ConfigOption =
        ConfigOption::new("taskmanager.memory.flink.size", &[]);
    pub const ROLLBACK_ENABLED: ConfigOption =
        ConfigOption::new("kubernetes.operator.deployment.rollback.enabled", &[]);
    pub const PERIODIC_SAVEPOINT_INTERVAL: ConfigOption =
        ConfigOption::new("kubernetes.operator.periodic.savepoint.interval", &[]);
    pub const PERIODIC_CHECKPOINT_INTERVAL: ConfigOption =
        ConfigOption::new("kubernetes.operator.periodic.checkpoint.interval", &[]);
    pub const CHECKPOINT_TIMEOUT: ConfigOption =
        ConfigOption::new("execution.checkpointing.timeout", &[]);
    pub const TOLERABLE_FAILED_CHECKPOINTS: ConfigOption =
        ConfigOption::new("execution.checkpointing.tolerable-failed-checkpoints", &[]);
    pub const READINESS_TIMEOUT: ConfigOption =
        ConfigOption::new("kubernetes.operator.deployment.readiness.timeout", &[]);
    /// This operator's stability rules (a deployment is stable, and rollback stops watching
    /// it, only when all hold).
    pub const STABILITY_MIN_RUNNING_TIME: ConfigOption = ConfigOption::new(
        "kubernetes.operator.deployment.stability.min-running-time",
        &[],
    );
    pub const STABILITY_MIN_CHECKPOINTS: ConfigOption = ConfigOption::new(
        "kubernetes.operator.deployment.stability.min-completed-checkpoints",
        &[],
    );
    pub const STABILITY_MAX_RESTARTS: ConfigOption =
        ConfigOption::new("kubernetes.operator.deployment.stability.max-restarts", &[]);
    pub const HEALTH_CHECK_ENABLED: ConfigOption =
        ConfigOption::new("kubernetes.operator.cluster.health-check.enabled", &[]);
    pub const HEALTH_RESTARTS_WINDOW: ConfigOption = ConfigOption::new(
        "kubernetes.operator.cluster.health-check.restarts.window",
        &[],
    );
    pub const HEALTH_RESTARTS_THRESHOLD: ConfigOption = ConfigOption::new(
        "kubernetes.operator.cluster.health-check.restarts.threshold",
        &[],
    );
    pub const HEALTH_CHECKPOINT_PROGRESS_ENABLED: ConfigOption = ConfigOption::new(
        "kubernetes.operator.cluster.health-check.checkpoint-progress.enabled",
        &[],
    );
    pub const HEALTH_CHECKPOINT_PROGRESS_WINDOW: ConfigOption = ConfigOption::new(
        "kubernetes.operator.cluster.health-check.checkpoint-progress.window",
        &[],
    );
    pub const JOB_RESTART_FAILED: ConfigOption =
        ConfigOption::new("kubernetes.operator.job.restart.failed", &[]);
    pub const JM_DEPLOYMENT_RECOVERY: ConfigOption =
        ConfigOption::new("kubernetes.operator.jm-deployment-recovery.enabled", &[]);
    pub const MAX_PARALLELISM: ConfigOption = ConfigOption::new("pipeline.max-parallelism", &[]);
    /// Manual and periodic snapshots as FlinkStateSnapshot resources (upstream's default since
    /// 1.10), else in the status's `savepointInfo` / `checkpointInfo`.
    pub const SNAPSHOT_RESOURCE_ENABLED: ConfigOption =
        ConfigOption::new("kubernetes.operator.snapshot.resource.enabled", &[]);
    /// `disposeOnDelete` of the savepoint resources the operator creates.
    pub const SAVEPOINT_DISPOSE_ON_DELETE: ConfigOption =
        ConfigOption::new("kubernetes.operator.savepoint.dispose-on-delete", &[]);
    pub const SAVEPOINT_FORMAT_TYPE: ConfigOption =
        ConfigOption::new("kubernetes.operator.savepoint.format.type", &[]);
    /// How the status's manual and periodic checkpoints are taken: FULL (upstream's default)
    /// or INCREMENTAL. A FlinkStateSnapshot checkpoint is always FULL, as upstream's.
    pub const CHECKPOINT_TYPE: ConfigOption =
        ConfigOption::new("kubernetes.operator.checkpoint.type", &[]);
    pub const SAVEPOINT_CLEANUP_ENABLED: ConfigOption =
        ConfigOption::new("kubernetes.operator.savepoint.cleanup.enabled", &[]);
    /// How long after its first trigger a failed savepoint of the status is triggered again
    /// (upstream's default 1 min); past it, it is given up.
    pub const SAVEPOINT_TRIGGER_GRACE_PERIOD: ConfigOption = ConfigOption::new(
        "kubernetes.operator.savepoint.trigger.grace-period",
        &["kubernetes.operator.observer.savepoint.trigger.grace-period"],
    );
    /// As `SAVEPOINT_TRIGGER_GRACE_PERIOD`, for the status's checkpoints.
    pub const CHECKPOINT_TRIGGER_GRACE_PERIOD: ConfigOption =
        ConfigOption::new("kubernetes.operator.checkpoint.trigger.grace-period", &[]);
    pub const SAVEPOINT_HISTORY_MAX_COUNT: ConfigOption =
        ConfigOption::new("kubernetes.operator.savepoint.history.max.count", &[]);
    pub const SAVEPOINT_HISTORY_MAX_AGE: ConfigOption =
        ConfigOption::new("kubernetes.operator.savepoint.history.max.age", &[]);
    /// How many checkpoints Flink retains; as many checkpoint resources are kept.
    pub const MAX_RETAINED_CHECKPOINTS: ConfigOption = ConfigOption::new(
        "execution.checkpointing.num-retained",
        &["state.checkpoints.num-retained"],
    );
    pub const PARALLELISM_OVERRIDES: ConfigOption =
        ConfigOption::new("pipeline.jobvertex-parallelism-overrides", &[]);
    pub const AUTOSCALER_ENABLED: ConfigOption = ConfigOption::new(
        "job.autoscaler.enabled",
        &["kubernetes.operator.job.autoscaler.enabled"],
    );
    pub const POD_TEMPLATE_MERGE_BY_NAME: ConfigOption =
        ConfigOption::new("kubernetes.operator.pod-template.merge-arrays-by-name", &[]);
    /// How long the JobManager of an application whose job ended stays (1 d).
    pub const JM_SHUTDOWN_TTL: ConfigOption =
        ConfigOption::new("kubernetes.operator.jm-deployment.shutdown-ttl", &[]);
    /// The JobManager's startup probe (on by default, as upstream).
    pub const JM_STARTUP_PROBE: ConfigOption = ConfigOption::new(
        "kubernetes.operator.jm-deployment.startup.probe.enabled",
        &[],
    );
    pub const RESOURCE_CLEANUP_TIMEOUT: ConfigOption =
        ConfigOption::new("kubernetes.operator.resource.cleanup.timeout", &[]);
    pub const SAVEPOINT_ON_DELETION: ConfigOption =
        ConfigOption::new("kubernetes.operator.job.savepoint-on-deletion", &[]);
    /// A session cluster's deletion waits for the FlinkSessionJobs that name it (true).
    pub const BLOCK_ON_SESSION_JOBS: ConfigOption = ConfigOption::new(
        "kubernetes.operator.session.deletion.block-on-session-jobs",
        &[],
    );
    /// ... and then for the jobs Flink still runs that no FlinkSessionJob manages (true).
    pub const BLOCK_ON_UNMANAGED_JOBS: ConfigOption = ConfigOption::new(
        "kubernetes.operator.session.deletion.block-on-unmanaged-jobs",
        &["kubernetes.operator.session.block-on-unmanaged-jobs"],
    );
    /// How long a session job's jar may take to run (its `main` builds the job graph).
    pub const JOB_SUBMISSION_TIMEOUT: ConfigOption =
        ConfigOption::new("kubernetes.operator.job.submission.timeout", &[]);
    pub const INPLACE_SCALING: ConfigOption = ConfigOption::new(
        "kubernetes.operator.job.upgrade.inplace-scaling.enabled",
        &[],
    );
    /// An upgrade goes ahead while a savepoint the status triggered is still pending (false:
    /// it waits for it, as upstream).
    pub const IGNORE_PENDING_SAVEPOINT: ConfigOption = ConfigOption::new(
        "kubernetes.operator.job.upgrade.ignore-pending-savepoint",
        &[],
    );
    /// A last-state upgrade of an application with HA cancels the job and resumes from its
    /// latest checkpoint, instead of keeping the HA metadata (false, upstream's default).
    pub const LAST_STATE_JOB_CANCEL: ConfigOption = ConfigOption::new(
        "kubernetes.operator.job.upgrade.last-state.job-cancel.enabled",
        &[],
    );
    pub const LAST_STATE_FALLBACK: ConfigOption = ConfigOption::new(
        "kubernetes.operator.job.upgrade.last-state-fallback.enabled",
        &[],
    );
    /// Stop with a savepoint draining the job (MAX_WATERMARK first), for upgrades and
    /// deletions alike, as upstream's `savepointJobOrError`.
    pub const DRAIN_ON_SAVEPOINT_DELETION: ConfigOption =
        ConfigOption::new("kubernetes.operator.job.drain-on-savepoint-deletion", &[]);
    pub const LAST_STATE_MAX_CHECKPOINT_AGE: ConfigOption = ConfigOption::new(
        "kubernetes.operator.job.upgrade.last-state.max.allowed.checkpoint.age",
        &[],
    );
}

/// `high-availability.type` values that mean "no HA".
pub fn ha_enabled(config: &FlinkConfiguration) -> bool {
    config
        .get(&options::HA_TYPE)
        .is_some_and(|(_, v)| ha_type_on(&v))
}

/// [`ha_enabled`] of a flat configuration (the operator's view: its defaults under a spec's).
pub fn ha_enabled_flat(config: &std::collections::BTreeMap<String, String>) -> bool {
    options::HA_TYPE.in_flat(config).is_some_and(ha_type_on)
}

fn ha_type_on(value: &str) -> bool {
    !value.trim().is_empty() && !value.trim().eq_ignore_ascii_case("none")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(yaml: &str) -> FlinkConfiguration {
        serde_saphyr::from_str(yaml).expect("test YAML parses")
    }

    #[test]
    fn nested_objects_numbers_and_booleans_flatten_to_flink_keys() {
        let c = conf(
            "job.autoscaler:\n  enabled: true\n  target.utilization.boundary: 0.1\npipeline.max-parallelism: 24\nstate:\n  savepoints.dir: file:///sp\n",
        );
        let flat = c.flat();
        assert_eq!(flat["job.autoscaler.enabled"], "true");
        assert_eq!(flat["job.autoscaler.target.utilization.boundary"], "0.1");
        assert_eq!(flat["pipeline.max-parallelism"], "24");
        assert_eq!(flat["state.savepoints.dir"], "file:///sp");
        assert!(c.duplicate_keys().is_empty());
    }

    #[test]
    fn the_same_key_spelled_flat_and_nested_is_a_duplicate() {
        let c = conf("state.savepoints.dir: a\nstate:\n  savepoints.dir: b\n");
        assert_eq!(
            c.duplicate_keys(),
            vec![DuplicateKey {
                key: "state.savepoints.dir".into()
            }]
        );
        assert_eq!(c.flat()["state.savepoints.dir"], "a");
    }

    #[test]
    fn lists_become_semicolon_separated() {
        let c = conf("pipeline.jars: [a.jar, b.jar]\n");
        assert_eq!(c.flat()["pipeline.jars"], "a.jar;b.jar");
    }

    #[test]
    fn deprecated_names_are_understood() {
        let c = conf("state.checkpoints.dir: file:///cp\nhigh-availability: kubernetes\n");
        assert_eq!(
            c.get(&options::CHECKPOINTS_DIR).map(|(_, v)| v),
            Some("file:///cp".into())
        );
        assert!(ha_enabled(&c));
        assert!(!ha_enabled(&conf("high-availability.type: NONE\n")));
    }

    #[test]
    fn set_replaces_every_spelling_and_keeps_the_rest() {
        let mut c = conf("state:\n  savepoints.dir: old\n  checkpoints.dir: cp\n");
        c.set("state.savepoints.dir", "new");
        let flat = c.flat();
        assert_eq!(flat["state.savepoints.dir"], "new");
        assert_eq!(flat["state.checkpoints.dir"], "cp");
        assert!(c.duplicate_keys().is_empty());
    }

    #[test]
    fn the_document_round_trips_unchanged() {
        let yaml = "a:\n  b: 1\n  c: true\nd: x\n";
        let c = conf(yaml);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"a": {"b": 1, "c": true}, "d": "x"})
        );
    }
}
