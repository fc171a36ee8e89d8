//! Pod template policy for shared platforms: copies connector jars of pinned versions from
//! per-connector images into the Flink container's `usrlib` (one init container each), adds the
//! tenant's labels and annotations, and places pods with a node selector and tolerations.
//!
//! Config (JSON, every field optional):
//! ```json
//! { "connectors": [{ "name": "kafka",
//!                    "image": "registry.example.com/connectors/kafka@sha256:…",
//!                    "jarsPath": "/connectors" }],
//!   "labels": { "cost-center": "4711" },
//!   "annotations": { "team": "payments" },
//!   "nodeSelector": { "pool": "flink" },
//!   "tolerations": [{ "key": "dedicated", "value": "flink", "effect": "NoSchedule" }],
//!   "components": ["job-manager", "task-manager"] }
//! ```
//! A connector image must be pinned (a digest, or a tag other than `latest`): a floating tag
//! would change the job's classpath behind its back.

use flink_policy_sdk::parse_config;
use flink_policy_sdk::pods::{Component, PluginError, PodInput};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Where the jars land, below the image's `usrlib` so the job's own jar stays visible.
const MOUNT_PATH: &str = "/opt/flink/usrlib/connectors";
const VOLUME: &str = "connector-jars";
const MAIN_CONTAINER: &str = "flink-main-container";

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    connectors: Vec<Connector>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
    #[serde(default)]
    tolerations: Vec<Value>,
    components: Option<Vec<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Connector {
    name: String,
    image: String,
    #[serde(default = "default_jars_path")]
    jars_path: String,
}

fn default_jars_path() -> String {
    "/connectors".into()
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = parse_config(text)?;
        for (i, c) in config.connectors.iter().enumerate() {
            let valid_name = !c.name.is_empty()
                && c.name.len() <= 50
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return Err(format!(
                    "config.connectors[{i}].name: {:?} must be lowercase letters, digits and '-' \
                     (it names an init container)",
                    c.name
                ));
            }
            if !pinned(&c.image) {
                return Err(format!(
                    "config.connectors[{i}].image: {:?} is not pinned; use a digest \
                     (image@sha256:…) or a version tag other than latest",
                    c.image
                ));
            }
            if !c.jars_path.starts_with('/') || c.jars_path.contains(['\'', '"', '`', '$', ';']) {
                return Err(format!(
                    "config.connectors[{i}].jarsPath: {:?} must be an absolute path without quotes or shell characters",
                    c.jars_path
                ));
            }
        }
        for (i, component) in config.components.iter().flatten().enumerate() {
            if component != "job-manager" && component != "task-manager" {
                return Err(format!(
                    "config.components[{i}]: {component:?} is not job-manager or task-manager"
                ));
            }
        }
        Ok(config)
    }

    fn applies_to(&self, component: Component) -> bool {
        let name = match component {
            Component::JobManager => "job-manager",
            Component::TaskManager => "task-manager",
        };
        self.components
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c == name))
    }
}

fn pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    matches!(last.rsplit_once(':'), Some((_, tag)) if !tag.is_empty() && tag != "latest")
}

/// An RFC 6901 pointer token.
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The JSON patch for one rendered pod template: pure, so unit tests call it natively.
pub fn patch(template: &Value, component: Component, config: &Config) -> Vec<Value> {
    if !config.applies_to(component) {
        return Vec::new();
    }
    let mut ops = Vec::new();
    // A rendered template may lack whole sections (a native-mode Pod file has no metadata).
    for (section, needed) in [
        (
            "/metadata",
            !config.labels.is_empty() || !config.annotations.is_empty(),
        ),
        ("/spec", true),
    ] {
        if needed
            && template
                .pointer(section)
                .and_then(Value::as_object)
                .is_none()
        {
            ops.push(json!({"op": "add", "path": section, "value": {}}));
        }
    }
    let mut map_entries =
        |path: &str, current: Option<&Value>, entries: &BTreeMap<String, String>| {
            if entries.is_empty() {
                return;
            }
            if current.and_then(Value::as_object).is_none() {
                ops.push(json!({"op": "add", "path": path, "value": {}}));
            }
            for (key, value) in entries {
                ops.push(
                    json!({"op": "add", "path": format!("{path}/{}", token(key)), "value": value}),
                );
            }
        };
    map_entries(
        "/metadata/labels",
        template.pointer("/metadata/labels"),
        &config.labels,
    );
    map_entries(
        "/metadata/annotations",
        template.pointer("/metadata/annotations"),
        &config.annotations,
    );
    map_entries(
        "/spec/nodeSelector",
        template.pointer("/spec/nodeSelector"),
        &config.node_selector,
    );

    if !config.tolerations.is_empty() {
        if template
            .pointer("/spec/tolerations")
            .and_then(Value::as_array)
            .is_none()
        {
            ops.push(json!({"op": "add", "path": "/spec/tolerations", "value": []}));
        }
        for toleration in &config.tolerations {
            ops.push(json!({"op": "add", "path": "/spec/tolerations/-", "value": toleration}));
        }
    }

    if !config.connectors.is_empty() {
        ensure_array(&mut ops, template, "/spec/volumes");
        ops.push(json!({"op": "add", "path": "/spec/volumes/-",
                        "value": {"name": VOLUME, "emptyDir": {}}}));
        ensure_array(&mut ops, template, "/spec/initContainers");
        for connector in &config.connectors {
            ops.push(json!({"op": "add", "path": "/spec/initContainers/-", "value": {
                "name": format!("connector-{}", connector.name),
                "image": connector.image,
                "command": ["sh", "-c", format!("cp '{}'/*.jar '{MOUNT_PATH}/'", connector.jars_path)],
                "volumeMounts": [{"name": VOLUME, "mountPath": MOUNT_PATH}],
            }}));
        }
        let containers = template
            .pointer("/spec/containers")
            .and_then(Value::as_array);
        let main = containers.and_then(|list| {
            list.iter()
                .position(|c| c.get("name").and_then(Value::as_str) == Some(MAIN_CONTAINER))
        });
        let mount = json!({"name": VOLUME, "mountPath": MOUNT_PATH, "readOnly": true});
        match (containers, main) {
            (Some(list), Some(index)) => {
                if list[index]
                    .get("volumeMounts")
                    .and_then(Value::as_array)
                    .is_none()
                {
                    ops.push(json!({"op": "add", "path": format!("/spec/containers/{index}/volumeMounts"), "value": []}));
                }
                ops.push(json!({"op": "add", "path": format!("/spec/containers/{index}/volumeMounts/-"), "value": mount}));
            }
            _ => {
                // The operator merges a container named like its own into the Flink container.
                ensure_array(&mut ops, template, "/spec/containers");
                ops.push(json!({"op": "add", "path": "/spec/containers/-",
                                "value": {"name": MAIN_CONTAINER, "volumeMounts": [mount]}}));
            }
        }
    }
    ops
}

fn ensure_array(ops: &mut Vec<Value>, template: &Value, path: &str) {
    if template.pointer(path).and_then(Value::as_array).is_none() {
        ops.push(json!({"op": "add", "path": path, "value": []}));
    }
}

/// The plugin's answer: the patch for the input's template, as JSON text.
fn render(input: &PodInput, config: &Config) -> Result<String, PluginError> {
    let template: Value = serde_json::from_str(&input.pod_template)
        .map_err(|e| flink_policy_sdk::error(format!("the pod template is not JSON: {e}")))?;
    let template = if template.is_object() {
        template
    } else {
        Value::Object(Map::new())
    };
    Ok(Value::Array(patch(&template, input.component, config)).to_string())
}

flink_policy_sdk::pod_template_plugin!(config: Config::parse, render: render);

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(template: &Value, ops: &[Value]) -> Value {
        // A tiny `add`-only JSON patch, enough to check what the host will apply.
        let mut doc = template.clone();
        for op in ops {
            assert_eq!(op["op"], "add");
            let path = op["path"].as_str().unwrap();
            let (parent, last) = path.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut doc
            } else {
                doc.pointer_mut(parent).unwrap()
            };
            let last = last.replace("~1", "/").replace("~0", "~");
            match target {
                Value::Object(map) => {
                    map.insert(last, op["value"].clone());
                }
                Value::Array(list) if last == "-" => list.push(op["value"].clone()),
                other => panic!("cannot add at {path} in {other}"),
            }
        }
        doc
    }

    fn rendered() -> Value {
        json!({
            "metadata": {"labels": {"app": "orders"}},
            "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.0"}]}
        })
    }

    const FULL: &str = r#"{
        "connectors": [{"name": "kafka", "image": "reg/kafka-connector:4.0.0-2.0"}],
        "labels": {"example.com/cost-center": "4711"},
        "nodeSelector": {"pool": "flink"},
        "tolerations": [{"key": "dedicated", "value": "flink", "effect": "NoSchedule"}]
    }"#;

    #[test]
    fn connectors_are_copied_into_usrlib_by_init_containers() {
        let config = Config::parse(FULL).unwrap();
        let pod = apply(
            &rendered(),
            &patch(&rendered(), Component::TaskManager, &config),
        );
        assert_eq!(pod["spec"]["initContainers"][0]["name"], "connector-kafka");
        assert_eq!(
            pod["spec"]["initContainers"][0]["image"],
            "reg/kafka-connector:4.0.0-2.0"
        );
        assert_eq!(pod["spec"]["volumes"][0]["name"], VOLUME);
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
            MOUNT_PATH
        );
        assert_eq!(
            pod["spec"]["containers"][0]["image"], "flink:2.0",
            "the Flink container is untouched"
        );
        assert_eq!(
            pod["metadata"]["labels"]["app"], "orders",
            "existing labels stay"
        );
        assert_eq!(pod["metadata"]["labels"]["example.com/cost-center"], "4711");
        assert_eq!(pod["spec"]["nodeSelector"]["pool"], "flink");
        assert_eq!(pod["spec"]["tolerations"][0]["key"], "dedicated");
    }

    #[test]
    fn missing_sections_are_created_first() {
        let config = Config::parse(FULL).unwrap();
        let bare = json!({});
        let pod = apply(&bare, &patch(&bare, Component::TaskManager, &config));
        assert_eq!(pod["metadata"]["labels"]["example.com/cost-center"], "4711");
        assert_eq!(pod["spec"]["containers"][0]["name"], MAIN_CONTAINER);
    }

    #[test]
    fn components_limit_where_it_applies() {
        let config =
            Config::parse(r#"{"labels": {"a": "b"}, "components": ["task-manager"]}"#).unwrap();
        assert!(patch(&rendered(), Component::JobManager, &config).is_empty());
        assert_eq!(patch(&rendered(), Component::TaskManager, &config).len(), 1);
    }

    #[test]
    fn floating_connector_images_are_refused() {
        for image in ["reg/kafka", "reg/kafka:latest", "reg:5000/kafka"] {
            let text = format!(r#"{{"connectors": [{{"name": "kafka", "image": "{image}"}}]}}"#);
            let err = Config::parse(&text).unwrap_err();
            assert!(
                err.starts_with("config.connectors[0].image"),
                "{image}: {err}"
            );
        }
        assert!(pinned("reg:5000/kafka@sha256:0123"));
        assert!(pinned("reg:5000/kafka:4.0.0"));
    }
}
