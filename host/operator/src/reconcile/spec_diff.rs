//! What a spec change means for a running cluster, as upstream's `@SpecDiff` classes:
//! ignore < scale < upgrade. Each changed field is listed so events can name them.

use flink_api::deployment::KubernetesDeploymentMode;
use flink_api::{FlinkDeploymentSpec, FlinkSessionJobSpec};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiffClass {
    /// Nothing to do for the cluster (or handled by another part: nonces, autoscaler settings).
    Ignore,
    /// The TaskManager Deployment changes; the job keeps running.
    Scale,
    /// The cluster is redeployed in the job's upgrade mode.
    Upgrade,
    /// `savepointRedeployNonce`: redeployed from `initialSavepointPath`, the state discarded.
    SavepointRedeploy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecDiff {
    pub class: DiffClass,
    /// Changed fields with their class, e.g. `spec.job.parallelism`.
    pub changes: Vec<(String, DiffClass)>,
}

impl SpecDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changed fields of the deciding class, for messages.
    pub fn fields(&self, class: DiffClass) -> String {
        let fields: Vec<&str> = self
            .changes
            .iter()
            .filter(|(_, c)| *c == class)
            .map(|(p, _)| p.as_str())
            .collect();
        fields.join(", ")
    }
}

/// How `new` differs from the deployed `old`.
pub fn deployment_diff(old: &FlinkDeploymentSpec, new: &FlinkDeploymentSpec) -> SpecDiff {
    let mode = new.mode_or_default();
    let parallelism_from_job = new.job.as_ref().and_then(|j| j.parallelism).is_some();
    diff(
        (to_tree(old), old.configuration().flat()),
        (to_tree(new), new.configuration().flat()),
        |path| field_class(path, mode),
        |key| config_class(key, parallelism_from_job),
    )
}

/// How a session job's `new` spec differs from the deployed `old`: no scale class (the job's
/// parallelism is fixed at submission until in-place rescaling lands), and only operator
/// settings are ignored in its configuration.
pub fn session_job_diff(old: &FlinkSessionJobSpec, new: &FlinkSessionJobSpec) -> SpecDiff {
    let conf =
        |spec: &FlinkSessionJobSpec| spec.flink_configuration.clone().unwrap_or_default().flat();
    diff(
        (to_tree(old), conf(old)),
        (to_tree(new), conf(new)),
        |path| field_class(path, KubernetesDeploymentMode::Native),
        |key| {
            if key.starts_with("kubernetes.operator.") {
                DiffClass::Ignore
            } else {
                DiffClass::Upgrade
            }
        },
    )
}

type Flat<V> = BTreeMap<String, V>;

/// Every changed field (spec leaf or configuration key) with its class; the diff's class is the
/// highest. `flinkConfiguration` is compared through Flink's flat view, whatever nesting the
/// user wrote, so its tree leaves are left out.
fn diff(
    (old_tree, old_conf): (Flat<Value>, Flat<String>),
    (new_tree, new_conf): (Flat<Value>, Flat<String>),
    field: impl Fn(&str) -> DiffClass,
    config: impl Fn(&str) -> DiffClass,
) -> SpecDiff {
    let outside_configuration = |tree: Flat<Value>| -> Flat<Value> {
        tree.into_iter()
            .filter(|(k, _)| !k.starts_with("flinkConfiguration"))
            .collect()
    };
    let mut changes = Vec::new();
    for path in changed_paths(
        &outside_configuration(old_tree),
        &outside_configuration(new_tree),
    ) {
        let class = field(&path);
        changes.push((format!("spec.{path}"), class));
    }
    for key in changed_paths(&old_conf, &new_conf) {
        let class = config(&key);
        changes.push((format!("spec.flinkConfiguration.{key}"), class));
    }
    SpecDiff {
        class: changes
            .iter()
            .map(|(_, c)| *c)
            .max()
            .unwrap_or(DiffClass::Ignore),
        changes,
    }
}

fn field_class(path: &str, mode: KubernetesDeploymentMode) -> DiffClass {
    const IGNORED: &[&str] = &[
        "job.upgradeMode",
        "job.initialSavepointPath",
        "job.allowNonRestoredState",
        "job.savepointTriggerNonce",
        "job.checkpointTriggerNonce",
        "job.autoscalerResetNonce",
        "ingress",
    ];
    if IGNORED
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}.")))
    {
        DiffClass::Ignore
    } else if path == "job.savepointRedeployNonce" {
        DiffClass::SavepointRedeploy
    } else if path == "taskManager.replicas" && mode == KubernetesDeploymentMode::Standalone {
        DiffClass::Scale
    } else {
        DiffClass::Upgrade
    }
}

fn config_class(key: &str, parallelism_from_job: bool) -> DiffClass {
    let ignored = key.starts_with("kubernetes.operator.")
        || key.starts_with("job.autoscaler.")
        || (key == "parallelism.default" && parallelism_from_job);
    if ignored {
        DiffClass::Ignore
    } else if key == "pipeline.jobvertex-parallelism-overrides" {
        DiffClass::Scale
    } else {
        DiffClass::Upgrade
    }
}

fn changed_paths<V: PartialEq>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
) -> Vec<String> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect()
}

/// Leaf paths of a spec: objects by key; arrays are compared whole (a changed argument list is
/// one change).
fn to_tree(spec: &impl serde::Serialize) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let value = serde_json::to_value(spec).unwrap_or(Value::Null);
    flatten("", &value, &mut out);
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> FlinkDeploymentSpec {
        serde_saphyr::from_str(yaml).expect("test spec")
    }

    const BASE: &str = "
mode: standalone
flinkConfiguration: {taskmanager.numberOfTaskSlots: '2', kubernetes.operator.x: a}
taskManager: {replicas: 1}
job: {jarURI: 'local:///j.jar', parallelism: 2, upgradeMode: stateless}
";

    #[test]
    fn an_unchanged_spec_has_no_diff() {
        assert!(deployment_diff(&spec(BASE), &spec(BASE)).is_empty());
    }

    #[test]
    fn parallelism_is_an_upgrade_and_names_its_field() {
        let diff = deployment_diff(
            &spec(BASE),
            &spec(&BASE.replace("parallelism: 2", "parallelism: 3")),
        );
        assert_eq!(diff.class, DiffClass::Upgrade);
        assert_eq!(diff.fields(DiffClass::Upgrade), "spec.job.parallelism");
    }

    #[test]
    fn operator_settings_and_upgrade_mode_are_ignored() {
        let new = BASE
            .replace("kubernetes.operator.x: a", "kubernetes.operator.x: b")
            .replace("upgradeMode: stateless", "upgradeMode: savepoint");
        let diff = deployment_diff(&spec(BASE), &spec(&new));
        assert_eq!(diff.class, DiffClass::Ignore);
        assert_eq!(diff.changes.len(), 2);
    }

    #[test]
    fn standalone_task_manager_replicas_scale() {
        let diff = deployment_diff(
            &spec(BASE),
            &spec(&BASE.replace("replicas: 1", "replicas: 3")),
        );
        assert_eq!(diff.class, DiffClass::Scale);
        let native = BASE.replace("mode: standalone", "mode: native");
        let diff = deployment_diff(
            &spec(&native),
            &spec(&native.replace("replicas: 1", "replicas: 3")),
        );
        assert_eq!(diff.class, DiffClass::Upgrade);
    }

    #[test]
    fn nesting_of_configuration_does_not_matter() {
        let nested = BASE.replace(
            "flinkConfiguration: {taskmanager.numberOfTaskSlots: '2', kubernetes.operator.x: a}",
            "flinkConfiguration: {taskmanager: {numberOfTaskSlots: '2'}, kubernetes.operator.x: a}",
        );
        assert!(deployment_diff(&spec(BASE), &spec(&nested)).is_empty());
    }
}
