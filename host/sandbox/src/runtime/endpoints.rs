//! The endpoints controller and cluster DNS, as pure functions: which ready pods back each
//! Service (EndpointSlices), and the hosts file that resolves Service names to them.

use crate::selectors::LabelSelector;
use serde_json::{Value, json};

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
}

/// Pods a Service selects, ready ones first, then by name (deterministic).
pub fn selected<'a>(service: &Value, pods: &'a [Value]) -> Vec<&'a Value> {
    let Some(selector) = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    let text_selector = selector
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",");
    let Ok(selector) = LabelSelector::parse(&text_selector) else {
        return Vec::new();
    };
    let namespace = text(service, "/metadata/namespace");
    let mut out: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            text(p, "/metadata/namespace") == namespace
                && selector.matches(p)
                && !text(p, "/status/podIP").is_empty()
        })
        .collect();
    out.sort_by_key(|p| (!is_ready(p), text(p, "/metadata/name").to_string()));
    out
}

/// The EndpointSlice of a Service (named after it; real ones carry a generated suffix).
pub fn endpoint_slice(service: &Value, pods: &[Value]) -> Value {
    let name = text(service, "/metadata/name");
    let endpoints: Vec<Value> = selected(service, pods)
        .into_iter()
        .map(|p| json!({
            "addresses": [text(p, "/status/podIP")],
            "conditions": {"ready": is_ready(p), "serving": is_ready(p), "terminating": false},
            "targetRef": {"kind": "Pod", "name": text(p, "/metadata/name"), "namespace": text(p, "/metadata/namespace"), "uid": text(p, "/metadata/uid")},
        }))
        .collect();
    let ports: Vec<Value> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports.iter().map(|p| json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": p.get("targetPort").filter(|t| t.is_number()).or(p.get("port")), "protocol": "TCP"})).collect()
        })
        .unwrap_or_default();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": text(service, "/metadata/namespace"),
            "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "sandbox"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": text(service, "/metadata/uid"), "controller": true}],
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    })
}

/// A hosts file for the pods' JVMs: every Service name form resolves to its first ready pod
/// (so a Service behaves like a headless one), and every pod's name to its own address.
pub fn hosts_file(services: &[Value], pods: &[Value], machine_hostname: &str) -> String {
    let mut lines = vec![format!("127.0.0.1 localhost {machine_hostname}")];
    for service in services {
        let Some(pod) = selected(service, pods).into_iter().find(|p| is_ready(p)) else {
            continue;
        };
        let (name, ns) = (
            text(service, "/metadata/name"),
            text(service, "/metadata/namespace"),
        );
        lines.push(format!(
            "{} {name} {name}.{ns} {name}.{ns}.svc {name}.{ns}.svc.cluster.local",
            text(pod, "/status/podIP")
        ));
    }
    for pod in pods.iter().filter(|p| !text(p, "/status/podIP").is_empty()) {
        lines.push(format!(
            "{} {}",
            text(pod, "/status/podIP"),
            text(pod, "/metadata/name")
        ));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "labels": {"app": "f", "component": "jobmanager"}},
               "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn services_resolve_to_their_first_ready_pod() {
        let service = json!({"metadata": {"name": "f", "namespace": "ns", "uid": "s"}, "spec": {"selector": {"app": "f", "component": "jobmanager"}, "ports": [{"name": "rest", "port": 8081}]}});
        let pods = vec![pod("a", "127.0.1.1", false), pod("b", "127.0.1.2", true)];
        let hosts = hosts_file(std::slice::from_ref(&service), &pods, "host");
        assert!(
            hosts.contains("127.0.1.2 f f.ns f.ns.svc f.ns.svc.cluster.local"),
            "{hosts}"
        );
        let slice = endpoint_slice(&service, &pods);
        assert_eq!(slice["endpoints"][0]["addresses"][0], "127.0.1.2");
        assert_eq!(slice["endpoints"][1]["conditions"]["ready"], false);
    }
}
