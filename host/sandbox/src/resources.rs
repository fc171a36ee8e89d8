//! The resource types the stand-in serves: the built-in ones the operator and kubectl use, and
//! every custom resource once its CRD is created.

use serde_json::Value;
use std::sync::Arc;

/// JSON paths of a scale subresource (`.spec.replicas` style).
#[derive(Clone, Debug, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// An additional printer column of a CRD.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub kind: String,
    pub json_path: String,
    pub priority: i64,
}

#[derive(Clone, Debug)]
pub struct ResourceType {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    pub status_subresource: bool,
    pub scale: Option<ScalePaths>,
    /// `openAPIV3Schema` of a custom resource.
    pub schema: Option<Arc<Value>>,
    pub printer_columns: Vec<PrinterColumn>,
    /// Custom resources require `metadata.resourceVersion` on update, as the real server does.
    pub custom: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` as the API server names it in messages (`deployments.apps`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn builtin(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        short: &[&str],
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            namespaced,
            status_subresource: false,
            scale: None,
            schema: None,
            printer_columns: Vec::new(),
            custom: false,
        }
    }

    fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }
}

/// What a real cluster always serves (the part the operator, its tests and kubectl use).
pub fn builtin() -> Vec<ResourceType> {
    let t = ResourceType::builtin;
    let mut deployments =
        t("apps", "v1", "Deployment", "deployments", true, &["deploy"]).with_status();
    deployments.scale = Some(ScalePaths {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        label_selector: None,
    });
    vec![
        t("", "v1", "Namespace", "namespaces", false, &["ns"]).with_status(),
        t("", "v1", "ConfigMap", "configmaps", true, &["cm"]),
        t("", "v1", "Secret", "secrets", true, &[]),
        t("", "v1", "Service", "services", true, &["svc"]).with_status(),
        t("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"]),
        t("", "v1", "Pod", "pods", true, &["po"]).with_status(),
        t("", "v1", "Event", "events", true, &["ev"]),
        deployments,
        t(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
        ),
        t("coordination.k8s.io", "v1", "Lease", "leases", true, &[]),
        t(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            true,
            &["ing"],
        )
        .with_status(),
        t(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            false,
            &[],
        ),
        t(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
        )
        .with_status(),
        t("events.k8s.io", "v1", "Event", "events", true, &["ev"]),
        // What a Helm chart installs around an operator (the chart test installs ours);
        // stored, not enforced.
        t(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            &[],
        ),
        t(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            false,
            &[],
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            &[],
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
        ),
        t(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
        )
        .with_status(),
    ]
}

/// The served versions of a CRD as resource types; an error names what is malformed.
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let group = text(spec, "group").ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let kind = text(names, "kind").ok_or("spec.names.kind is required")?;
    let plural = text(names, "plural").ok_or("spec.names.plural is required")?;
    let singular = text(names, "singular").unwrap_or_else(|| kind.to_ascii_lowercase());
    let short_names = string_list(names.get("shortNames"));
    let namespaced = text(spec, "scope").as_deref() != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions is required")?;
    let mut types = Vec::new();
    for version in versions {
        if version.get("served") == Some(&Value::Bool(false)) {
            continue;
        }
        let name = text(version, "name").ok_or("spec.versions[].name is required")?;
        let subresources = version.get("subresources");
        let scale = subresources
            .and_then(|s| s.get("scale"))
            .map(|scale| ScalePaths {
                spec_replicas: text(scale, "specReplicasPath")
                    .unwrap_or_else(|| ".spec.replicas".into()),
                status_replicas: text(scale, "statusReplicasPath")
                    .unwrap_or_else(|| ".status.replicas".into()),
                label_selector: text(scale, "labelSelectorPath"),
            });
        let printer_columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: text(c, "name").unwrap_or_default(),
                        kind: text(c, "type").unwrap_or_else(|| "string".into()),
                        json_path: text(c, "jsonPath").unwrap_or_default(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        types.push(ResourceType {
            group: group.clone(),
            version: name,
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            short_names: short_names.clone(),
            namespaced,
            status_subresource: subresources.and_then(|s| s.get("status")).is_some(),
            scale,
            schema: version
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .map(Arc::new),
            printer_columns,
            custom: true,
        });
    }
    if types.is_empty() {
        return Err("no served version".into());
    }
    Ok(types)
}

/// A JSON array of strings as a list (non-strings skipped; absent is empty).
pub(crate) fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
