//! Flink's own `kubernetes.*` and `containerized.*` pod options, applied to the pods we render
//! as Flink's decorators apply them to the pods it builds (`InitJobManagerDecorator`,
//! `InitTaskManagerDecorator`, `EnvSecretsDecorator`, `MountSecretsDecorator`,
//! `ExternalServiceDecorator`), so one configuration means the same pods in both modes: in native
//! mode Flink decorates its TaskManager pods itself, the JobManager and standalone pods are ours.
//! `tests/local_cluster/decorators.rs` compares both with what Flink 2.3's decorators produce.
//!
//! Values use Flink's syntax: maps `k1:v1,k2:v2`, lists of maps separated by `;`, lists by `;`,
//! with `'` or `"` quoting a part that holds a separator (a doubled quote inside is one quote).

use super::pod::{array, object};
use super::{Component, RenderError};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Labels or annotations.
pub type Labels = BTreeMap<String, String>;

/// What the options ask of one component's pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodOptions {
    /// `kubernetes.<component>.labels`: over the template's, under the operator's own labels,
    /// which win.
    pub labels: BTreeMap<String, String>,
    /// `kubernetes.<component>.annotations`, over the template's.
    pub annotations: BTreeMap<String, String>,
    /// `kubernetes.<component>.node-selector`, over the template's.
    pub node_selector: BTreeMap<String, String>,
    /// `kubernetes.<component>.tolerations`, after the template's.
    pub tolerations: Vec<Value>,
    /// `kubernetes.container.image.pull-secrets`, after the template's.
    pub image_pull_secrets: Vec<String>,
    /// `kubernetes.secrets`: secret name and where it is mounted (volume `<name>-volume`).
    pub secrets: Vec<(String, String)>,
    /// `kubernetes.env.secretKeyRef`: variable, secret, key.
    pub secret_env: Vec<(String, String, String)>,
    /// `containerized.master.env.*` / `containerized.taskmanager.env.*`.
    pub env: BTreeMap<String, String>,
    /// `kubernetes.<component>.cpu.limit-factor` (1.0).
    pub cpu_limit_factor: f64,
    /// `kubernetes.<component>.memory.limit-factor` (1.0).
    pub memory_limit_factor: f64,
    /// `kubernetes.<component>.service-account`, else `kubernetes.service-account` (Flink's
    /// fallback; `spec.serviceAccount` is written there).
    pub service_account: Option<String>,
}

fn component_key(component: Component) -> &'static str {
    match component {
        Component::JobManager => "jobmanager",
        Component::TaskManager => "taskmanager",
    }
}

/// The options of `component` in the flat configuration.
pub fn pod_options(
    config: &BTreeMap<String, String>,
    component: Component,
) -> Result<PodOptions, RenderError> {
    let c = component_key(component);
    let map = |key: &str| map_option(config, key);
    let factor = |key: &str| -> Result<f64, RenderError> {
        match config.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(1.0),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f >= 1.0)
                .ok_or_else(|| {
                    option_error(
                        key,
                        "is not a number of at least 1.0",
                        "a factor such as 1.5",
                    )
                }),
        }
    };
    let tolerations_key = format!("kubernetes.{c}.tolerations");
    let tolerations = match config.get(&tolerations_key) {
        Some(text) => list_of_maps(text)
            .map_err(|why| {
                option_error(
                    &tolerations_key,
                    &why,
                    "key:k,operator:Equal,value:v,effect:NoSchedule;...",
                )
            })?
            .into_iter()
            .map(|m| {
                toleration(&m)
                    .map_err(|why| option_error(&tolerations_key, &why, "tolerationSeconds:30"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    const SECRET_ENV: &str = "kubernetes.env.secretKeyRef";
    let secret_env = match config.get(SECRET_ENV) {
        Some(text) => list_of_maps(text)
            .map_err(|why| option_error(SECRET_ENV, &why, "env:NAME,secret:s,key:k;..."))?
            .into_iter()
            .map(|m| {
                let part = |name: &str| {
                    m.get(name).cloned().ok_or_else(|| {
                        option_error(
                            SECRET_ENV,
                            &format!("an entry has no {name:?}"),
                            "env:NAME,secret:s,key:k;...",
                        )
                    })
                };
                Ok((part("env")?, part("secret")?, part("key")?))
            })
            .collect::<Result<Vec<_>, RenderError>>()?,
        None => Vec::new(),
    };
    let env_prefix = match component {
        Component::JobManager => "containerized.master.env.",
        Component::TaskManager => "containerized.taskmanager.env.",
    };
    Ok(PodOptions {
        labels: map(&format!("kubernetes.{c}.labels"))?,
        annotations: map(&format!("kubernetes.{c}.annotations"))?,
        node_selector: map(&format!("kubernetes.{c}.node-selector"))?,
        tolerations,
        image_pull_secrets: config
            .get("kubernetes.container.image.pull-secrets")
            .map(|text| {
                split(text, ';')
                    .into_iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        secrets: map("kubernetes.secrets")?.into_iter().collect(),
        secret_env,
        env: config
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(env_prefix)
                    .filter(|name| !name.is_empty())
                    .map(|name| (name.to_string(), v.clone()))
            })
            .collect(),
        cpu_limit_factor: factor(&format!("kubernetes.{c}.cpu.limit-factor"))?,
        memory_limit_factor: factor(&format!("kubernetes.{c}.memory.limit-factor"))?,
        service_account: [
            format!("kubernetes.{c}.service-account"),
            "kubernetes.service-account".to_string(),
        ]
        .iter()
        .filter_map(|key| config.get(key))
        .map(|a| a.trim().to_string())
        .find(|a| !a.is_empty()),
    })
}

/// A Service's `kubernetes.<service>.labels` and `.annotations` (`rest-service`,
/// `internal-service`), as Flink's `ExternalServiceDecorator` and `InternalServiceDecorator`.
pub fn service_metadata(
    config: &BTreeMap<String, String>,
    service: &str,
) -> Result<(Labels, Labels), RenderError> {
    Ok((
        map_option(config, &format!("kubernetes.{service}.labels"))?,
        map_option(config, &format!("kubernetes.{service}.annotations"))?,
    ))
}

/// A map option (`k1:v1,k2:v2`) of the configuration; empty when not set.
fn map_option(config: &BTreeMap<String, String>, key: &str) -> Result<Labels, RenderError> {
    match config.get(key) {
        Some(text) => parse_map(text).map_err(|why| option_error(key, &why, "k1:v1,k2:v2")),
        None => Ok(BTreeMap::new()),
    }
}

fn option_error(key: &str, why: &str, example: &str) -> RenderError {
    RenderError::new(
        &format!("spec.flinkConfiguration.{key}"),
        format!("{why}; write it in Flink's syntax, e.g. {example}"),
    )
}

/// A Toleration from one of Flink's maps (keys as Flink reads them, in any case; others are
/// ignored, as Flink does).
fn toleration(map: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut out = Map::new();
    for (key, value) in map {
        match key.to_ascii_lowercase().as_str() {
            "key" => out.insert("key".into(), json!(value)),
            "operator" => out.insert("operator".into(), json!(value)),
            "value" => out.insert("value".into(), json!(value)),
            "effect" => out.insert("effect".into(), json!(value)),
            "tolerationseconds" => {
                out.insert(
                    "tolerationSeconds".into(),
                    json!(value.trim().parse::<i64>().map_err(|_| format!(
                        "tolerationSeconds {value:?} is not a whole number"
                    ))?),
                )
            }
            _ => None,
        };
    }
    Ok(Value::Object(out))
}

impl PodOptions {
    /// Lays the options over a pod (template) whose main container is `main` (an index into
    /// `spec.containers`), as Flink's decorators do; `labels` are the operator's, which win.
    pub fn apply(&self, pod: &mut Value, main: usize) {
        let root = object(pod);
        let metadata = object(root.entry("metadata").or_insert_with(|| json!({})));
        if !self.labels.is_empty() {
            let labels = object(metadata.entry("labels").or_insert_with(|| json!({})));
            for (k, v) in &self.labels {
                labels.insert(k.clone(), json!(v));
            }
        }
        if !self.annotations.is_empty() {
            let annotations = object(metadata.entry("annotations").or_insert_with(|| json!({})));
            for (k, v) in &self.annotations {
                annotations.insert(k.clone(), json!(v));
            }
        }
        let spec = object(root.entry("spec").or_insert_with(|| json!({})));
        if !self.node_selector.is_empty() {
            let selector = object(spec.entry("nodeSelector").or_insert_with(|| json!({})));
            for (k, v) in &self.node_selector {
                selector.insert(k.clone(), json!(v));
            }
        }
        if !self.tolerations.is_empty() {
            array(spec.entry("tolerations").or_insert_with(|| json!([])))
                .extend(self.tolerations.iter().cloned());
        }
        if !self.image_pull_secrets.is_empty() {
            let secrets = array(spec.entry("imagePullSecrets").or_insert_with(|| json!([])));
            for name in &self.image_pull_secrets {
                secrets.push(json!({"name": name}));
            }
        }
        if !self.secrets.is_empty() {
            let volumes = array(spec.entry("volumes").or_insert_with(|| json!([])));
            for (secret, _) in &self.secrets {
                volumes.push(
                    json!({"name": format!("{secret}-volume"), "secret": {"secretName": secret}}),
                );
            }
        }
        let Some(container) = spec
            .get_mut("containers")
            .and_then(Value::as_array_mut)
            .and_then(|c| c.get_mut(main))
        else {
            return;
        };
        let container = object(container);
        if !self.env.is_empty() || !self.secret_env.is_empty() {
            let env = array(container.entry("env").or_insert_with(|| json!([])));
            for (name, value) in &self.env {
                env.retain(|e| e.get("name").and_then(Value::as_str) != Some(name));
                env.push(json!({"name": name, "value": value}));
            }
            for (name, secret, key) in &self.secret_env {
                env.retain(|e| e.get("name").and_then(Value::as_str) != Some(name));
                env.push(json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}));
            }
        }
        if !self.secrets.is_empty() {
            let mounts = array(container.entry("volumeMounts").or_insert_with(|| json!([])));
            for (secret, path) in &self.secrets {
                mounts.push(json!({"name": format!("{secret}-volume"), "mountPath": path}));
            }
        }
    }
}

/// Flink's map syntax: `k1:v1,k2:v2`.
pub fn parse_map(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for entry in split(text, ',') {
        if entry.trim().is_empty() {
            continue;
        }
        let parts = split(&entry, ':');
        match parts.as_slice() {
            [k, v] => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => {
                return Err(format!(
                    "{entry:?} is not a key:value pair (quote a key or value that holds ':' or ',')"
                ));
            }
        }
    }
    Ok(out)
}

/// Flink's list-of-maps syntax: maps separated by `;`.
fn list_of_maps(text: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
    split(text, ';')
        .into_iter()
        .filter(|m| !m.trim().is_empty())
        .map(|m| parse_map(&m))
        .collect()
}

/// Splits at `separator` outside quotes, unquoting (Flink's `StructuredOptionsSplitter`).
fn split(text: &str, separator: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => {
                if chars.peek() == Some(&q) {
                    current.push(q);
                    chars.next();
                } else {
                    quote = None;
                }
            }
            Some(_) => current.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == separator => parts.push(std::mem::take(&mut current)),
            None => current.push(c),
        }
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flinks_map_syntax_with_quotes() {
        assert_eq!(
            parse_map("a:1, b:2").unwrap(),
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        // As in Flink, each level of splitting takes one level of quotes off.
        assert_eq!(
            parse_map("\"'example.com/a:b':'x,y'\"").unwrap(),
            BTreeMap::from([("example.com/a:b".into(), "x,y".into())])
        );
        assert!(parse_map("novalue").is_err());
    }

    #[test]
    fn a_malformed_option_names_its_key_and_the_syntax() {
        let config = BTreeMap::from([(
            "kubernetes.taskmanager.tolerations".to_string(),
            "key:k,tolerationSeconds:soon".to_string(),
        )]);
        let error = pod_options(&config, Component::TaskManager).unwrap_err();
        assert_eq!(
            error.path,
            "spec.flinkConfiguration.kubernetes.taskmanager.tolerations"
        );
        assert!(error.message.contains("soon"), "{}", error.message);
        let config = BTreeMap::from([(
            "kubernetes.jobmanager.memory.limit-factor".to_string(),
            "0.5".to_string(),
        )]);
        assert!(pod_options(&config, Component::JobManager).is_err());
    }
}
