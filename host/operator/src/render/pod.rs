//! Pod templates: the user's templates merged with upstream's semantics, then what the operator
//! must own laid on top (labels, the main container's image, command, ports, resources and the
//! configuration volume).
//!
//! Merging (upstream's `FlinkUtils.mergePodTemplates`): objects merge key by key, scalars from
//! the component template win, arrays merge element by element at the same index, or, with
//! `kubernetes.operator.pod-template.merge-arrays-by-name: true`, by their `name` field.

use super::config::{component_resources, image};
use super::flink_options::{PodOptions, pod_options};
use super::resources::{cpu_quantity, memory_quantity};
use super::{
    BLOB_PORT, CONF_DIR, Component, MAIN_CONTAINER, REST_PORT, RPC_PORT, RenderError, RenderInput,
    TASKMANAGER_RPC_PORT, component_labels, config_map_name,
};
use flink_api::FlinkVersion;
use flink_api::config::options;
use flink_api::deployment::KubernetesDeploymentMode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The file in the ConfigMap that carries the TaskManager pod template in native mode.
pub const NATIVE_TM_TEMPLATE_FILE: &str = "taskmanager-pod-template.yaml";
const CONFIG_VOLUME: &str = "flink-config-volume";
const MERGE_BY_NAME: &str = flink_api::config::options::POD_TEMPLATE_MERGE_BY_NAME.key;

/// `overlay` merged into `base`.
pub fn merge_templates(base: &Value, overlay: &Value, by_name: bool) -> Value {
    let mut out = base.clone();
    merge_into(&mut out, overlay, by_name);
    out
}

fn merge_into(to: &mut Value, from: &Value, by_name: bool) {
    match (to, from) {
        (Value::Object(to), Value::Object(from)) => {
            for (key, value) in from {
                match to.get_mut(key) {
                    Some(existing) if !existing.is_null() => merge_into(existing, value, by_name),
                    _ => {
                        to.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(to), Value::Array(from)) => {
            let named = |items: &[Value]| items.iter().all(|i| i.get("name").is_some());
            if by_name && named(to) && named(from) {
                for item in from {
                    match to.iter_mut().find(|t| t.get("name") == item.get("name")) {
                        Some(existing) => merge_into(existing, item, by_name),
                        None => to.push(item.clone()),
                    }
                }
            } else {
                for (i, item) in from.iter().enumerate() {
                    match to.get_mut(i) {
                        Some(existing) => merge_into(existing, item, by_name),
                        None => to.push(item.clone()),
                    }
                }
            }
        }
        (to, from) => *to = from.clone(),
    }
}

/// The user's template for a component: the base `podTemplate` with the component's merged in.
fn user_template(
    input: &RenderInput,
    config: &BTreeMap<String, String>,
    component: Component,
) -> Value {
    let by_name = config
        .get(MERGE_BY_NAME)
        .is_some_and(|v| v.trim() == "true");
    let base = input
        .spec
        .pod_template
        .as_ref()
        .map_or(Value::Null, |t| t.0.clone());
    let own = match component {
        Component::JobManager => input
            .spec
            .job_manager
            .as_ref()
            .and_then(|jm| jm.pod_template.as_ref()),
        Component::TaskManager => input
            .spec
            .task_manager
            .as_ref()
            .and_then(|tm| tm.pod_template.as_ref()),
    }
    .map_or(Value::Null, |t| t.0.clone());
    let merged = match (base.is_object(), own.is_object()) {
        (true, true) => merge_templates(&base, &own, by_name),
        (true, false) => base,
        (false, true) => own,
        (false, false) => json!({}),
    };
    // A Pod template may carry kind/apiVersion; a Deployment's pod template must not.
    let mut merged = merged;
    if let Some(map) = merged.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
        map.remove("status");
    }
    merged
}

/// The JobManager Deployment's pod template.
pub fn job_manager_pod(
    input: &RenderInput,
    config: &BTreeMap<String, String>,
) -> Result<Value, RenderError> {
    let mut pod = user_template(input, config, Component::JobManager);
    let args = match input.mode() {
        KubernetesDeploymentMode::Standalone => standalone_job_manager_args(input),
        KubernetesDeploymentMode::Native => vec![
            "kubernetes-jobmanager.sh".to_string(),
            if input.spec.is_application() {
                "kubernetes-application"
            } else {
                "kubernetes-session"
            }
            .to_string(),
        ],
    };
    let ports = [
        ("rest", REST_PORT),
        ("jobmanager-rpc", RPC_PORT),
        ("blobserver", BLOB_PORT),
    ];
    let options = pod_options(config, Component::JobManager)?;
    decorate(
        &mut pod,
        input,
        &options,
        Component::JobManager,
        args,
        &ports,
    )?;
    if flink_api::config::options::JM_STARTUP_PROBE.flag_in_flat(config, true) {
        add_startup_probe(&mut pod);
    }
    Ok(pod)
}

/// The variable the TaskManager's resource id is taken from.
const POD_NAME_ENV: &str = "POD_NAME";

/// The TaskManager Deployment's pod template (standalone mode).
pub fn task_manager_pod(
    input: &RenderInput,
    config: &BTreeMap<String, String>,
) -> Result<Value, RenderError> {
    let mut pod = user_template(input, config, Component::TaskManager);
    // The TaskManager registers under its pod's name (the kubelet expands `$(POD_NAME)`), so
    // the operator can tell which pods are idle after a scale-down, as in native mode.
    let options = pod_options(config, Component::TaskManager)?;
    decorate(
        &mut pod,
        input,
        &options,
        Component::TaskManager,
        vec![
            "taskmanager".to_string(),
            format!(
                "-D{}=$({POD_NAME_ENV})",
                options::TASK_MANAGER_RESOURCE_ID.key
            ),
        ],
        &[("rpc", TASKMANAGER_RPC_PORT)],
    )?;
    Ok(pod)
}

/// The TaskManager pod template Flink's native integration reads: the user's merged template,
/// untouched (Flink lays its own main container settings on top).
pub fn native_task_manager_template(
    input: &RenderInput,
    config: &BTreeMap<String, String>,
) -> Result<Value, RenderError> {
    let mut template = user_template(input, config, Component::TaskManager);
    if let Some(map) = template.as_object_mut() {
        map.insert("apiVersion".into(), json!("v1"));
        map.insert("kind".into(), json!("Pod"));
    }
    Ok(template)
}

fn standalone_job_manager_args(input: &RenderInput) -> Vec<String> {
    let Some(job) = &input.spec.job else {
        return vec!["jobmanager".to_string()];
    };
    let mut args = vec!["standalone-job".to_string()];
    // `--jars` (Flink 1.17+) runs a jar anywhere in the image, not only in usrlib.
    if let Some(jar) = &job.jar_uri
        && input.version() >= FlinkVersion::V1_17
    {
        args.extend(["--jars".to_string(), jar.clone()]);
    }
    if let Some(class) = &job.entry_class {
        args.extend(["--job-classname".to_string(), class.clone()]);
    }
    if let Some(id) = input.job_id {
        args.extend(["--job-id".to_string(), id.to_string()]);
    }
    if job.allow_non_restored_state == Some(true) {
        args.push("--allowNonRestoredState".to_string());
    }
    if let Some(path) = input.restore_from {
        args.extend(["--fromSavepoint".to_string(), path.to_string()]);
    }
    args.extend(job.args.iter().cloned());
    args
}

/// Lays Flink's pod options (`options`), then the operator-owned parts, over a merged user
/// template.
fn decorate(
    pod: &mut Value,
    input: &RenderInput,
    options: &PodOptions,
    component: Component,
    args: Vec<String>,
    ports: &[(&str, u16)],
) -> Result<(), RenderError> {
    let main = {
        let spec = object(object(pod).entry("spec").or_insert_with(|| json!({})));
        let containers = array(spec.entry("containers").or_insert_with(|| json!([])));
        match containers
            .iter()
            .position(|c| c.get("name").and_then(Value::as_str) == Some(MAIN_CONTAINER))
        {
            Some(i) => i,
            None => {
                containers.push(json!({"name": MAIN_CONTAINER}));
                containers.len() - 1
            }
        }
    };
    options.apply(pod, main);
    let labels = component_labels(input.name, input.mode(), component);
    let root = object(pod);
    let metadata = object(root.entry("metadata").or_insert_with(|| json!({})));
    let pod_labels = object(metadata.entry("labels").or_insert_with(|| json!({})));
    for (k, v) in labels {
        pod_labels.insert(k, json!(v));
    }
    let spec = object(root.entry("spec").or_insert_with(|| json!({})));
    if let Some(account) = options
        .service_account
        .as_ref()
        .or(input.spec.service_account.as_ref())
    {
        spec.insert("serviceAccountName".into(), json!(account));
    }
    let volumes = array(spec.entry("volumes").or_insert_with(|| json!([])));
    volumes.retain(|v| v.get("name").and_then(Value::as_str) != Some(CONFIG_VOLUME));
    volumes
        .push(json!({"name": CONFIG_VOLUME, "configMap": {"name": config_map_name(input.name)}}));

    let containers = array(spec.entry("containers").or_insert_with(|| json!([])));
    let main = object(&mut containers[main]);
    main.insert("image".into(), json!(image(input)));
    if let Some(policy) = &input.spec.image_pull_policy {
        main.insert("imagePullPolicy".into(), json!(policy));
    }
    main.insert("command".into(), json!(["/docker-entrypoint.sh"]));
    main.insert("args".into(), json!(args));

    let container_ports = array(main.entry("ports").or_insert_with(|| json!([])));
    for (name, port) in ports {
        container_ports.retain(|p| {
            p.get("name").and_then(Value::as_str) != Some(name)
                && p.get("containerPort").and_then(Value::as_u64) != Some(u64::from(*port))
        });
        container_ports.push(json!({"name": name, "containerPort": port, "protocol": "TCP"}));
    }

    let env = array(main.entry("env").or_insert_with(|| json!([])));
    env.retain(|e| e.get("name").and_then(Value::as_str) != Some("_POD_IP_ADDRESS"));
    env.push(json!({"name": "_POD_IP_ADDRESS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}));
    if component == Component::TaskManager {
        env.retain(|e| e.get("name").and_then(Value::as_str) != Some(POD_NAME_ENV));
        env.push(json!({"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}));
    }

    if let Some(resources) = container_resources(input, options, component)? {
        main.insert("resources".into(), resources);
    }

    let mounts = array(main.entry("volumeMounts").or_insert_with(|| json!([])));
    mounts.retain(|m| {
        m.get("name").and_then(Value::as_str) != Some(CONFIG_VOLUME)
            && m.get("mountPath").and_then(Value::as_str) != Some(CONF_DIR)
    });
    mounts.push(json!({"name": CONFIG_VOLUME, "mountPath": CONF_DIR}));
    Ok(())
}

/// `resources` as given, or `resource` as requests with limits by the configured limit factors
/// (`kubernetes.<component>.cpu.limit-factor` / `.memory.limit-factor`, as Flink's decorators).
fn container_resources(
    input: &RenderInput,
    options: &PodOptions,
    component: Component,
) -> Result<Option<Value>, RenderError> {
    let (resource, resources, prefix) = match component {
        Component::JobManager => {
            let jm = input.spec.job_manager.as_ref();
            (
                jm.and_then(|j| j.resource.as_ref()),
                jm.and_then(|j| j.resources.as_ref()),
                "spec.jobManager",
            )
        }
        Component::TaskManager => {
            let tm = input.spec.task_manager.as_ref();
            (
                tm.and_then(|t| t.resource.as_ref()),
                tm.and_then(|t| t.resources.as_ref()),
                "spec.taskManager",
            )
        }
    };
    // Tuned TaskManager memory is the TaskManager pod's memory.
    let tuned = match component {
        Component::TaskManager => input.autoscaler_memory.map(|m| m.process),
        _ => None,
    };
    if let Some(resources) = resources {
        let mut value = serde_json::to_value(resources).unwrap_or_else(|_| json!({}));
        if let Some(bytes) = tuned {
            for part in ["requests", "limits"] {
                value[part]["memory"] = json!(memory_quantity(bytes));
            }
        }
        return Ok(Some(value));
    }
    let (memory, cpu) = component_resources(resource, None, prefix)?;
    let memory = tuned.or(memory);
    let mut requests = Map::new();
    let mut limits = Map::new();
    if let Some(cpu) = cpu {
        requests.insert("cpu".into(), json!(cpu_quantity(cpu)));
        limits.insert(
            "cpu".into(),
            json!(cpu_quantity(cpu * options.cpu_limit_factor)),
        );
    }
    if let Some(bytes) = memory {
        requests.insert("memory".into(), json!(memory_quantity(bytes)));
        let limit = (bytes as f64 * options.memory_limit_factor).floor() as u64;
        limits.insert("memory".into(), json!(memory_quantity(limit)));
    }
    if let Some(storage) = resource.and_then(|r| r.ephemeral_storage.as_ref()) {
        requests.insert("ephemeral-storage".into(), json!(storage));
        limits.insert("ephemeral-storage".into(), json!(storage));
    }
    if requests.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({"requests": requests, "limits": limits})))
}

fn add_startup_probe(pod: &mut Value) {
    let Some(containers) = pod
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for container in containers {
        if container.get("name").and_then(Value::as_str) == Some(MAIN_CONTAINER)
            && container.get("startupProbe").is_none()
        {
            container["startupProbe"] = json!({
                "httpGet": {"path": "/config", "port": "rest"},
                "periodSeconds": 1,
                "failureThreshold": 2147483647,
            });
        }
    }
}

pub(super) fn object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("just made an object")
}

pub(super) fn array(value: &mut Value) -> &mut Vec<Value> {
    if !value.is_array() {
        *value = json!([]);
    }
    value.as_array_mut().expect("just made an array")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_from_the_overlay_win_and_objects_merge() {
        let base = json!({"metadata": {"labels": {"a": "1", "b": "1"}}, "spec": {"nodeName": "x"}});
        let overlay = json!({"metadata": {"labels": {"b": "2"}}, "spec": {"nodeName": "y"}});
        assert_eq!(
            merge_templates(&base, &overlay, false),
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"nodeName": "y"}})
        );
    }

    #[test]
    fn arrays_merge_by_index_unless_asked_to_merge_by_name() {
        let base = json!({"containers": [{"name": "a", "image": "i"}]});
        let overlay = json!({"containers": [{"name": "b"}]});
        assert_eq!(
            merge_templates(&base, &overlay, false),
            json!({"containers": [{"name": "b", "image": "i"}]})
        );
        assert_eq!(
            merge_templates(&base, &overlay, true),
            json!({"containers": [{"name": "a", "image": "i"}, {"name": "b"}]})
        );
    }
}
