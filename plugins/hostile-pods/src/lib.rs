//! A pod-template plugin that misbehaves on request, so tests can prove the host refuses what
//! a tenant's plugin could try: `{"misbehave": "<escalation>"}` returns a JSON Patch that tries
//! it (see [`ESCALATIONS`]), `{"misbehave": "copy-bomb"}` a patch of 40 `copy` operations that
//! doubles the template each time, and anything else `[]`. Never bind it to a real tenant.

use flink_policy_sdk::PluginError;
use flink_policy_sdk::pods::PodInput;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    #[serde(default)]
    misbehave: String,
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, String> {
        flink_policy_sdk::parse_config(text)
    }
}

/// Each escalation by name, as the operations that try it on a rendered pod template (whose
/// first container is Flink's and which has a `volumes` list).
pub const ESCALATIONS: &[&str] = &[
    "privileged",
    "privilege-escalation",
    "capability-sys-admin",
    "capability-lowercase-prefixed",
    "capability-net-raw",
    "host-network",
    "host-pid",
    "host-ipc",
    "host-port",
    "host-path-root",
    "retarget-volume-to-host-path",
    "unmasked-proc",
    "unconfined-seccomp",
    "unconfined-apparmor",
    "selinux-spc",
    "unsafe-sysctl",
    "windows-host-process",
    "probe-to-metadata-service",
    "privileged-init-container",
    "service-account-of-the-operator",
    "automount-token",
    "projected-token",
    "foreign-secret-volume",
    "foreign-secret-env",
    "relabel-pods",
];

fn main_context(context: Value) -> Vec<Value> {
    vec![json!({"op": "add", "path": "/spec/containers/0/securityContext", "value": context})]
}

/// The patch that tries `escalation`.
pub fn escalation(name: &str) -> Option<Vec<Value>> {
    let pod = |field: &str, value: Value| {
        vec![json!({"op": "add", "path": format!("/spec/{field}"), "value": value})]
    };
    Some(match name {
        "privileged" => main_context(json!({"privileged": true})),
        "privilege-escalation" => main_context(json!({"allowPrivilegeEscalation": true})),
        "capability-sys-admin" => main_context(json!({"capabilities": {"add": ["SYS_ADMIN"]}})),
        "capability-lowercase-prefixed" => {
            main_context(json!({"capabilities": {"add": ["cap_sys_ptrace"]}}))
        }
        "capability-net-raw" => main_context(json!({"capabilities": {"add": ["NET_RAW"]}})),
        "host-network" => pod("hostNetwork", json!(true)),
        "host-pid" => pod("hostPID", json!(true)),
        "host-ipc" => pod("hostIPC", json!(true)),
        "host-port" => vec![
            json!({"op": "add", "path": "/spec/containers/0/ports/-", "value": {"containerPort": 22, "hostPort": 22}}),
        ],
        "host-path-root" => vec![
            json!({"op": "add", "path": "/spec/volumes/-", "value": {"name": "root", "hostPath": {"path": "/"}}}),
        ],
        "retarget-volume-to-host-path" => vec![
            json!({"op": "replace", "path": "/spec/volumes/0", "value": {"name": "flink-config-volume", "hostPath": {"path": "/etc/kubernetes"}}}),
        ],
        "unmasked-proc" => main_context(json!({"procMount": "Unmasked"})),
        "unconfined-seccomp" => pod(
            "securityContext",
            json!({"seccompProfile": {"type": "Unconfined"}}),
        ),
        "unconfined-apparmor" => main_context(json!({"appArmorProfile": {"type": "Unconfined"}})),
        "selinux-spc" => main_context(json!({"seLinuxOptions": {"type": "spc_t"}})),
        "unsafe-sysctl" => pod(
            "securityContext",
            json!({"sysctls": [{"name": "kernel.core_pattern", "value": "|/bin/sh"}]}),
        ),
        "windows-host-process" => pod(
            "securityContext",
            json!({"windowsOptions": {"hostProcess": true}}),
        ),
        "probe-to-metadata-service" => vec![
            json!({"op": "add", "path": "/spec/containers/0/livenessProbe", "value": {"httpGet": {"host": "169.254.169.254", "path": "/latest/meta-data", "port": 80}}}),
        ],
        "privileged-init-container" => pod(
            "initContainers",
            json!([{"name": "init", "image": "busybox", "securityContext": {"privileged": true}}]),
        ),
        "service-account-of-the-operator" => pod("serviceAccountName", json!("flink-operator")),
        "automount-token" => pod("automountServiceAccountToken", json!(true)),
        "projected-token" => vec![
            json!({"op": "add", "path": "/spec/volumes/-", "value": {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "audience": "vault"}}]}}}),
        ],
        "foreign-secret-volume" => vec![
            json!({"op": "add", "path": "/spec/volumes/-", "value": {"name": "cert", "secret": {"secretName": "flink-operator-webhook-cert"}}}),
        ],
        "foreign-secret-env" => vec![
            json!({"op": "add", "path": "/spec/containers/0/env/-", "value": {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "team-b-database", "key": "password"}}}}),
        ],
        "relabel-pods" => {
            vec![json!({"op": "replace", "path": "/metadata/labels/app", "value": "other"})]
        }
        _ => return None,
    })
}

/// 40 `copy` operations of a few bytes each: each doubles the annotations, so applied blindly
/// the template would grow to 2^40 times a few bytes.
pub fn copy_bomb() -> Vec<Value> {
    let mut ops =
        vec![json!({"op": "add", "path": "/metadata/annotations/bomb", "value": {"a": "x"}})];
    for i in 0..40 {
        ops.push(json!({"op": "copy", "from": "/metadata/annotations/bomb", "path": format!("/metadata/annotations/bomb/k{i}")}));
    }
    ops
}

pub fn render(_input: &PodInput, config: &Config) -> Result<String, PluginError> {
    let ops = match config.misbehave.as_str() {
        "copy-bomb" => copy_bomb(),
        name => escalation(name).unwrap_or_default(),
    };
    Ok(Value::Array(ops).to_string())
}

flink_policy_sdk::pod_template_plugin!(config: Config::parse, render: render);

#[cfg(test)]
mod tests {
    #[test]
    fn every_named_escalation_has_a_patch() {
        for name in super::ESCALATIONS {
            assert!(super::escalation(name).is_some(), "{name}");
        }
        assert!(super::escalation("nothing").is_none());
        assert_eq!(super::copy_bomb().len(), 41);
    }
}
