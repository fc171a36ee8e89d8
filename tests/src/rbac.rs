//! Kubernetes RBAC, evaluated: given the Roles, ClusterRoles and their bindings (as a chart
//! installed them), may this service account do this verb on this resource in this namespace?
//! The chart's tests ask the question instead of reading YAML, so a rule that grants more than
//! it seems (a wildcard, a ClusterRole bound in a namespace, a group subject) is judged as the
//! API server would judge it.
//!
//! The rules of the RBAC authorizer (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac): a
//! ClusterRoleBinding grants its ClusterRole everywhere; a RoleBinding grants its Role or
//! ClusterRole in its own namespace only; a service account is also the groups
//! `system:serviceaccounts`, `system:serviceaccounts:<namespace>` and `system:authenticated`;
//! `*` matches any verb, group or resource, `*/sub` any resource's subresource; a user named
//! `system:serviceaccount:<namespace>:<name>` is that service account; a rule with
//! `resourceNames` matches only requests for one of those names (so never `list` or `create`).
//! Aggregated ClusterRoles are not expanded (the chart defines none).

use serde_json::Value;

/// A request: a verb on a resource (`pods`, `pods/log`), maybe one object, in a namespace
/// (None: cluster-scoped or across all namespaces).
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Every Role, ClusterRole and binding of a cluster.
#[derive(Default)]
pub struct Rbac {
    roles: Vec<Value>,
    cluster_roles: Vec<Value>,
    role_bindings: Vec<Value>,
    cluster_role_bindings: Vec<Value>,
}

impl Rbac {
    /// From objects of any kind; what is not RBAC is ignored.
    pub fn of(objects: impl IntoIterator<Item = Value>) -> Rbac {
        let mut rbac = Rbac::default();
        for object in objects {
            match object["kind"].as_str() {
                Some("Role") => rbac.roles.push(object),
                Some("ClusterRole") => rbac.cluster_roles.push(object),
                Some("RoleBinding") => rbac.role_bindings.push(object),
                Some("ClusterRoleBinding") => rbac.cluster_role_bindings.push(object),
                _ => {}
            }
        }
        rbac
    }

    /// Whether the service account `namespace/name` may make `request`.
    pub fn allows(&self, account: (&str, &str), request: &Request) -> bool {
        let cluster_wide = self
            .cluster_role_bindings
            .iter()
            .filter(|b| binds(b, account))
            .any(|b| self.role_rules(b, None).iter().any(|r| matches(r, request)));
        if cluster_wide {
            return true;
        }
        let Some(namespace) = request.namespace else {
            return false;
        };
        self.role_bindings
            .iter()
            .filter(|b| b.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace))
            .filter(|b| binds(b, account))
            .any(|b| {
                self.role_rules(b, Some(namespace))
                    .iter()
                    .any(|r| matches(r, request))
            })
    }

    /// The rules of a binding's roleRef (a Role in `namespace`, or a ClusterRole).
    fn role_rules(&self, binding: &Value, namespace: Option<&str>) -> Vec<Value> {
        let kind = binding.pointer("/roleRef/kind").and_then(Value::as_str);
        let name = binding.pointer("/roleRef/name").and_then(Value::as_str);
        let role = match kind {
            Some("ClusterRole") => self
                .cluster_roles
                .iter()
                .find(|r| r.pointer("/metadata/name").and_then(Value::as_str) == name),
            Some("Role") => self.roles.iter().find(|r| {
                r.pointer("/metadata/name").and_then(Value::as_str) == name
                    && r.pointer("/metadata/namespace").and_then(Value::as_str) == namespace
            }),
            _ => None,
        };
        role.and_then(|r| r["rules"].as_array().cloned())
            .unwrap_or_default()
    }
}

fn binds(binding: &Value, (namespace, name): (&str, &str)) -> bool {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| match s["kind"].as_str() {
            Some("ServiceAccount") => {
                s["name"] == name
                    && s["namespace"].as_str().or_else(|| {
                        binding
                            .pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                    }) == Some(namespace)
            }
            Some("User") => {
                s["name"].as_str() == Some(&format!("system:serviceaccount:{namespace}:{name}"))
            }
            Some("Group") => {
                let group = s["name"].as_str().unwrap_or_default();
                group == "system:serviceaccounts"
                    || group == "system:authenticated"
                    || group == format!("system:serviceaccounts:{namespace}")
            }
            _ => false,
        })
}

fn matches(rule: &Value, request: &Request) -> bool {
    let list = |field: &str| -> Vec<&str> {
        rule[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let verbs = list("verbs");
    let groups = list("apiGroups");
    let resources = list("resources");
    let names = list("resourceNames");
    let sub = request.resource.split_once('/').map(|(_, sub)| sub);
    // As the authorizer's ResourceMatches: `*`, the resource itself, or `*/<subresource>`.
    let resource_matches = resources.iter().any(|r| {
        *r == "*" || *r == request.resource || sub.is_some_and(|s| *r == format!("*/{s}"))
    });
    (verbs.contains(&"*") || verbs.contains(&request.verb))
        && (groups.contains(&"*") || groups.contains(&request.group))
        && resource_matches
        && (names.is_empty() || request.name.is_some_and(|n| names.contains(&n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request<'a>(verb: &'a str, resource: &'a str, namespace: Option<&'a str>) -> Request<'a> {
        Request {
            verb,
            group: "",
            resource,
            namespace,
            name: None,
        }
    }

    #[test]
    fn bindings_grant_where_the_api_server_would() {
        let rbac = Rbac::of([
            json!({"kind": "ClusterRole", "metadata": {"name": "reader"},
                   "rules": [{"apiGroups": [""], "resources": ["pods", "*/log"], "verbs": ["get", "list"]}]}),
            json!({"kind": "Role", "metadata": {"name": "cm", "namespace": "a"},
                   "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["mine"]}]}),
            // A ClusterRole bound in one namespace grants there only.
            json!({"kind": "RoleBinding", "metadata": {"name": "r", "namespace": "a"},
                   "roleRef": {"kind": "ClusterRole", "name": "reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "x"}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "c", "namespace": "a"},
                   "roleRef": {"kind": "Role", "name": "cm"},
                   "subjects": [{"kind": "Group", "name": "system:serviceaccounts:x"}]}),
        ]);
        let sa = ("x", "sa");
        assert!(rbac.allows(sa, &request("get", "pods", Some("a"))));
        assert!(rbac.allows(sa, &request("get", "pods/log", Some("a"))));
        assert!(!rbac.allows(sa, &request("get", "pods", Some("b"))));
        assert!(!rbac.allows(sa, &request("get", "pods", None)));
        assert!(!rbac.allows(sa, &request("delete", "pods", Some("a"))));
        let named = |name| Request {
            name: Some(name),
            ..request("get", "configmaps", Some("a"))
        };
        assert!(
            rbac.allows(("x", "other"), &named("mine")),
            "through the group"
        );
        assert!(!rbac.allows(("x", "other"), &named("yours")));
        assert!(!rbac.allows(("x", "other"), &request("list", "configmaps", Some("a"))));
        assert!(!rbac.allows(("y", "sa"), &request("get", "pods", Some("a"))));
        let as_user = Rbac::of([
            json!({"kind": "ClusterRole", "metadata": {"name": "all"},
                   "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "u"},
                   "roleRef": {"kind": "ClusterRole", "name": "all"},
                   "subjects": [{"kind": "User", "name": "system:serviceaccount:x:sa"}]}),
        ]);
        assert!(as_user.allows(sa, &request("delete", "secrets", Some("b"))));
    }
}
