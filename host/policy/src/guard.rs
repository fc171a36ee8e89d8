//! What a tenant's pod-template plugin may not introduce: privileged containers, host
//! namespaces, hostPath volumes (each unless the tenant's guard allows it), and changes to the
//! labels the operator selects its pods by. Checked on the patched template, against what the
//! rendered template already had, so a user's own podTemplate is never blamed on the plugin.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodGuard {
    #[serde(default)]
    pub allow_privileged: bool,
    #[serde(default)]
    pub allow_host_namespaces: bool,
    #[serde(default)]
    pub allow_host_path: bool,
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Everything in a PodTemplateSpec the guard cares about, as comparable descriptions.
fn findings(template: &Value, guard: &PodGuard) -> Vec<String> {
    let mut found = Vec::new();
    let spec = template.get("spec").unwrap_or(&Value::Null);
    if !guard.allow_host_namespaces {
        for field in ["hostNetwork", "hostPID", "hostIPC", "hostUsers"] {
            // hostUsers: false is the safe setting; true (or absent) is the default.
            let risky = if field == "hostUsers" {
                false
            } else {
                spec.get(field) == Some(&Value::Bool(true))
            };
            if risky {
                found.push(format!(
                    "spec.{field}: true (host namespaces are not allowed for this tenant)"
                ));
            }
        }
    }
    if !guard.allow_host_path {
        for volume in spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if volume.get("hostPath").is_some() {
                let name = volume.get("name").and_then(Value::as_str).unwrap_or("?");
                found.push(format!("spec.volumes[{name}].hostPath (hostPath volumes are not allowed for this tenant)"));
            }
        }
    }
    if !guard.allow_privileged {
        for list in CONTAINER_LISTS {
            for container in spec
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
                let context = container.get("securityContext").unwrap_or(&Value::Null);
                if context.get("privileged") == Some(&Value::Bool(true)) {
                    found.push(format!("spec.{list}[{name}].securityContext.privileged: true (privileged containers are not allowed for this tenant)"));
                }
                if context.get("allowPrivilegeEscalation") == Some(&Value::Bool(true)) {
                    found.push(format!("spec.{list}[{name}].securityContext.allowPrivilegeEscalation: true (not allowed for this tenant)"));
                }
                let added = context
                    .pointer("/capabilities/add")
                    .and_then(Value::as_array);
                for capability in added.into_iter().flatten().filter_map(Value::as_str) {
                    if matches!(
                        capability,
                        "ALL" | "SYS_ADMIN" | "NET_ADMIN" | "SYS_PTRACE" | "SYS_MODULE"
                    ) {
                        found.push(format!("spec.{list}[{name}].securityContext.capabilities.add: {capability} (not allowed for this tenant)"));
                    }
                }
            }
        }
    }
    found
}

/// What `after` breaks that `before` did not: an empty list means the patch is acceptable.
pub fn violations(before: &Value, after: &Value, guard: &PodGuard) -> Vec<String> {
    let existing = findings(before, guard);
    let mut new: Vec<String> = findings(after, guard)
        .into_iter()
        .filter(|f| !existing.contains(f))
        .collect();
    let labels = |t: &Value| {
        t.pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (old_labels, new_labels) = (labels(before), labels(after));
    for (key, value) in &old_labels {
        if new_labels.get(key) != Some(value) {
            new.push(format!("metadata.labels.{key}: the operator's label was changed or removed (it selects the pods)"));
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rendered() -> Value {
        json!({"metadata": {"labels": {"app": "orders", "component": "taskmanager"}},
               "spec": {"containers": [{"name": "flink-main-container"}]}})
    }

    fn patched(f: impl FnOnce(&mut Value)) -> Value {
        let mut t = rendered();
        f(&mut t);
        t
    }

    #[test]
    fn escalations_are_refused_unless_the_guard_allows_them() {
        let strict = PodGuard::default();
        let privileged = patched(|t| {
            t["spec"]["initContainers"] =
                json!([{"name": "x", "securityContext": {"privileged": true}}])
        });
        let v = violations(&rendered(), &privileged, &strict);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].starts_with("spec.initContainers[x].securityContext.privileged"),
            "{v:?}"
        );
        assert!(
            violations(
                &rendered(),
                &privileged,
                &PodGuard {
                    allow_privileged: true,
                    ..strict
                }
            )
            .is_empty()
        );

        let host = patched(|t| {
            t["spec"]["hostNetwork"] = json!(true);
            t["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
        });
        let v = violations(&rendered(), &host, &strict);
        assert_eq!(v.len(), 2, "{v:?}");
        let lenient = PodGuard {
            allow_host_namespaces: true,
            allow_host_path: true,
            ..strict
        };
        assert!(violations(&rendered(), &host, &lenient).is_empty());
    }

    #[test]
    fn what_the_user_already_had_is_not_blamed_on_the_plugin() {
        let users = patched(|t| t["spec"]["hostNetwork"] = json!(true));
        let plus_label = patched(|t| {
            t["spec"]["hostNetwork"] = json!(true);
            t["metadata"]["labels"]["team"] = json!("a");
        });
        assert!(violations(&users, &plus_label, &PodGuard::default()).is_empty());
    }

    #[test]
    fn the_operators_labels_cannot_change() {
        let relabelled = patched(|t| t["metadata"]["labels"]["component"] = json!("jobmanager"));
        let v = violations(&rendered(), &relabelled, &PodGuard::default());
        assert_eq!(
            v,
            vec![
                "metadata.labels.component: the operator's label was changed or removed (it selects the pods)"
            ]
        );
    }
}
