//! `meta.k8s.io/v1` Tables for `kubectl get`: Name, a CRD's printer columns (or the columns a
//! real server computes for Pods and Deployments), Age.

use crate::resources::ResourceType;
use crate::store::json_path_pointer;
use serde_json::{Value, json};

/// Whether a request's `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| part.contains("as=Table"))
}

/// The server formats ages, as the real one does (`translateTimestampSince`).
fn age_cell(timestamp: &Value) -> Value {
    let since = timestamp
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| jiff::Timestamp::now().as_second() - t.as_second());
    match since {
        Some(seconds) => Value::String(human_duration(seconds)),
        None => Value::String("<unknown>".into()),
    }
}

/// Kubernetes' `HumanDuration`: `45s`, `3m20s`, `5m`, `2h5m`, `3d4h`, `20d`, `1y5d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    let pair = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        pair(m, "m", s % 60, "s")
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        pair(h, "h", m % 60, "m")
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        pair(d, "d", h % 24, "h")
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        pair(d / 365, "y", d % 365, "d")
    } else {
        format!("{}y", d / 365)
    }
}

pub fn to_table(
    rt: &ResourceType,
    items: &[Value],
    resource_version: &str,
    include_object: bool,
) -> Value {
    if rt.group.is_empty() && rt.kind == "Event" {
        return event_table(items, resource_version, include_object);
    }
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for column in &rt.printer_columns {
        columns.push(json!({"name": column.name, "type": column.kind, "format": "", "description": "", "priority": column.priority}));
    }
    let builtin = builtin_columns(rt);
    for name in builtin.map_or(&[][..], |(names, _)| names) {
        columns.push(
            json!({"name": name, "type": "string", "format": "", "description": "", "priority": 0}),
        );
    }
    columns.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp.", "priority": 0}));
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut cells = vec![
                item.pointer("/metadata/name")
                    .cloned()
                    .unwrap_or(Value::Null),
            ];
            for column in &rt.printer_columns {
                let cell = item
                    .pointer(&json_path_pointer(&column.json_path))
                    .cloned()
                    .unwrap_or(Value::Null);
                cells.push(if column.kind == "date" {
                    age_cell(&cell)
                } else {
                    cell
                });
            }
            if let Some((_, compute)) = builtin {
                cells.extend(compute(item));
            }
            cells.push(age_cell(
                item.pointer("/metadata/creationTimestamp")
                    .unwrap_or(&Value::Null),
            ));
            json!({"cells": cells, "object": row_object(item, include_object)})
        })
        .collect();
    table(columns, rows, resource_version)
}

/// The real server's Table of core/v1 Events, as `kubectl get events` shows it: Last Seen,
/// Type, Reason, Object, Message (and, with `-o wide`, the Name).
fn event_table(items: &[Value], resource_version: &str, include_object: bool) -> Value {
    let column = |name: &str, priority: u8| json!({"name": name, "type": "string", "format": "", "description": "", "priority": priority});
    let columns = vec![
        column("Last Seen", 0),
        column("Type", 0),
        column("Reason", 0),
        column("Object", 0),
        column("Message", 0),
        json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 1}),
    ];
    let rows: Vec<Value> = items
        .iter()
        .map(|event| {
            let text = |p: &str| event.pointer(p).and_then(Value::as_str).unwrap_or("");
            let seen = [
                "/lastTimestamp",
                "/series/lastObservedTime",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| event.pointer(p).filter(|v| v.is_string()))
            .cloned()
            .unwrap_or(Value::Null);
            let object = format!(
                "{}/{}",
                text("/involvedObject/kind").to_lowercase(),
                text("/involvedObject/name")
            );
            let cells = json!([
                age_cell(&seen),
                text("/type"),
                text("/reason"),
                object,
                text("/message"),
                text("/metadata/name"),
            ]);
            json!({"cells": cells, "object": row_object(event, include_object)})
        })
        .collect();
    table(columns, rows, resource_version)
}

/// A `meta.k8s.io/v1` Table of `rows` under `columns`.
fn table(columns: Vec<Value>, rows: Vec<Value>, resource_version: &str) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// A row's object: the whole object when asked for, else its metadata.
fn row_object(item: &Value, include_object: bool) -> Value {
    if include_object {
        item.clone()
    } else {
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item.get("metadata")})
    }
}

type Cells = fn(&Value) -> Vec<Value>;

/// The columns kubectl shows for the built-in kinds whose own server computes them (a real API
/// server has them in code, not as printer columns): Pods, Deployments, Ingresses and
/// IngressClasses.
fn builtin_columns(rt: &ResourceType) -> Option<(&'static [&'static str], Cells)> {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => Some((&["Ready", "Status", "Restarts"], pod_cells)),
        ("apps", "Deployment") => Some((&["Ready", "Up-to-date", "Available"], deployment_cells)),
        ("networking.k8s.io", "Ingress") => {
            Some((&["Class", "Hosts", "Address", "Ports"], ingress_cells))
        }
        ("networking.k8s.io", "IngressClass") => Some((&["Controller", "Parameters"], class_cells)),
        _ => None,
    }
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: u64 = statuses
        .iter()
        .filter_map(|s| s.get("restartCount").and_then(Value::as_u64))
        .sum();
    let waiting = statuses
        .iter()
        .find_map(|s| s.pointer("/state/waiting/reason").and_then(Value::as_str));
    let terminating = pod.pointer("/metadata/deletionTimestamp").is_some();
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    let status = match (terminating, waiting) {
        (true, _) => "Terminating",
        (false, Some(reason)) => reason,
        (false, None) => phase,
    };
    vec![
        json!(format!("{ready}/{containers}")),
        json!(status),
        json!(restarts.to_string()),
    ]
}

fn deployment_cells(deployment: &Value) -> Vec<Value> {
    let number = |p: &str| deployment.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    vec![
        json!(format!(
            "{}/{}",
            number("/status/readyReplicas"),
            number("/spec/replicas")
        )),
        json!(number("/status/updatedReplicas").to_string()),
        json!(number("/status/availableReplicas").to_string()),
    ]
}

/// As the real server prints them: `<none>` for no class, `*` for a rule without a host, the
/// load balancer's addresses (none here: no ingress controller runs), 80 and 443 with TLS.
fn ingress_cells(ingress: &Value) -> Vec<Value> {
    let class = ingress
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let hosts: Vec<&str> = ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .map(|r| r.get("host").and_then(Value::as_str).unwrap_or("*"))
                .collect()
        })
        .unwrap_or_default();
    let addresses: Vec<&str> = ingress
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.get("ip").or(i.get("hostname")).and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let tls = ingress
        .pointer("/spec/tls")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    vec![
        json!(class),
        json!(if hosts.is_empty() {
            "*".to_string()
        } else {
            hosts.join(",")
        }),
        json!(addresses.join(",")),
        json!(if tls { "80, 443" } else { "80" }),
    ]
}

fn class_cells(class: &Value) -> Vec<Value> {
    let parameters = class
        .pointer("/spec/parameters")
        .map(|p| {
            let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
            format!("{}/{}", text("kind"), text("name"))
        })
        .unwrap_or_else(|| "<none>".into());
    vec![
        json!(
            class
                .pointer("/spec/controller")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
        json!(parameters),
    ]
}

#[cfg(test)]
mod tests {
    use super::{class_cells, deployment_cells, human_duration, ingress_cells, pod_cells};
    use serde_json::json;

    #[test]
    fn pods_and_deployments_show_what_kubectl_shows() {
        let pod = json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running",
            "containerStatuses": [{"ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(
            pod_cells(&pod),
            vec![json!("0/1"), json!("CrashLoopBackOff"), json!("3")]
        );
        let deployment = json!({"spec": {"replicas": 2}, "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}});
        assert_eq!(
            deployment_cells(&deployment),
            vec![json!("1/2"), json!("2"), json!("1")]
        );
    }

    #[test]
    fn ingresses_and_their_classes_show_what_kubectl_shows() {
        let ingress = json!({"spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
            "rules": [{"host": "a.example.com"}, {"http": {}}]}});
        assert_eq!(
            ingress_cells(&ingress),
            vec![
                json!("nginx"),
                json!("a.example.com,*"),
                json!(""),
                json!("80, 443")
            ]
        );
        assert_eq!(
            ingress_cells(&json!({"spec": {}})),
            vec![json!("<none>"), json!("*"), json!(""), json!("80")]
        );
        let class = json!({"spec": {"controller": "k8s.io/ingress-nginx"}});
        assert_eq!(
            class_cells(&class),
            vec![json!("k8s.io/ingress-nginx"), json!("<none>")]
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        for (seconds, text) in [
            (5, "5s"),
            (119, "119s"),
            (200, "3m20s"),
            (300, "5m"),
            (7500, "125m"),
            (20_000, "5h33m"),
            (100_000, "27h"),
            (270_000, "3d3h"),
            (2_000_000, "23d"),
            (40_000_000, "462d"),
            (100_000_000, "3y62d"),
        ] {
            assert_eq!(human_duration(seconds), text);
        }
    }
}
