//! `spec.ingress` as upstream renders it: one `networking.k8s.io/v1` Ingress named after the
//! resource, one rule (the template's host and/or path, see `flink_api::ingress`) to a REST
//! Service, the user's class, annotations, labels and TLS as given, owned by the resource. One
//! renderer for a FlinkDeployment (to its own `<name>-rest`) and a FlinkBlueGreenDeployment
//! (to the active child's `<child>-rest`, switched at cut-over).

use super::RenderError;
use flink_api::deployment::IngressSpec;
use flink_api::ingress::ingress_rule;
use serde_json::{Value, json};

/// The Ingress of the resource `name` for `spec`, to `service` on `port`, with `owner` as its
/// owner reference.
pub fn ingress(
    spec: &IngressSpec,
    name: &str,
    namespace: &str,
    service: &str,
    port: u16,
    owner: Value,
) -> Result<Value, RenderError> {
    let template = spec.template.as_deref().unwrap_or_default();
    let rule = ingress_rule(template, name, namespace)
        .map_err(|why| RenderError::new("spec.ingress.template", why))?;
    let mut labels = spec.labels.clone();
    labels.insert("component".into(), "ingress".into());
    let mut path = json!({
        "pathType": "ImplementationSpecific",
        "backend": {"service": {"name": service, "port": {"number": port}}},
    });
    if let Some(p) = &rule.path {
        path["path"] = json!(p);
    }
    let mut http_rule = json!({"http": {"paths": [path]}});
    if let Some(host) = &rule.host {
        http_rule["host"] = json!(host);
    }
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": [owner],
    });
    if !spec.annotations.is_empty() {
        metadata["annotations"] = json!(spec.annotations);
    }
    let mut ingress_spec = json!({"rules": [http_rule]});
    if let Some(class) = &spec.class_name {
        ingress_spec["ingressClassName"] = json!(class);
    }
    if !spec.tls.is_empty() {
        ingress_spec["tls"] = json!(spec.tls);
    }
    Ok(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": ingress_spec,
    }))
}

/// The REST Service an Ingress leads to (`.spec.rules[0]`'s backend), as rendered above.
pub fn backend_service(ingress: &Value) -> Option<&str> {
    ingress
        .pointer("/spec/rules/0/http/paths/0/backend/service/name")
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::Ingress;

    fn spec(yaml: &str) -> IngressSpec {
        serde_saphyr::from_str(yaml).expect("an ingress spec")
    }

    #[test]
    fn a_host_and_path_template_renders_as_upstream() {
        let spec = spec(
            "template: \"flink.k8s.io/{{namespace}}/{{name}}(/|$)(.*)\"\nclassName: nginx\n\
             annotations: {nginx.ingress.kubernetes.io/rewrite-target: \"/$2\"}\n\
             labels: {team: a}\ntls: [{hosts: [flink.k8s.io], secretName: flink-tls}]\n",
        );
        let owner = json!({"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "name": "orders", "uid": "u-1", "controller": true, "blockOwnerDeletion": true});
        let rendered = ingress(
            &spec,
            "orders",
            "team-a",
            "orders-rest",
            8081,
            owner.clone(),
        )
        .expect("renders");
        assert_eq!(
            rendered,
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": "orders", "namespace": "team-a",
                    "labels": {"component": "ingress", "team": "a"},
                    "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/$2"},
                    "ownerReferences": [owner],
                },
                "spec": {
                    "ingressClassName": "nginx",
                    "tls": [{"hosts": ["flink.k8s.io"], "secretName": "flink-tls"}],
                    "rules": [{
                        "host": "flink.k8s.io",
                        "http": {"paths": [{
                            "path": "/team-a/orders(/|$)(.*)",
                            "pathType": "ImplementationSpecific",
                            "backend": {"service": {"name": "orders-rest", "port": {"number": 8081}}},
                        }]},
                    }],
                },
            })
        );
        let typed: Ingress = serde_json::from_value(rendered.clone()).expect("an Ingress");
        assert_eq!(serde_json::to_value(typed).expect("serializes"), rendered);
        assert_eq!(backend_service(&rendered), Some("orders-rest"));
    }

    #[test]
    fn a_host_only_template_has_no_path_and_a_bad_one_names_the_field() {
        let rendered = ingress(
            &spec("template: \"{{name}}.{{namespace}}.example.com\""),
            "bg",
            "default",
            "bg-blue-rest",
            8081,
            json!({}),
        )
        .expect("renders");
        assert_eq!(
            rendered.pointer("/spec/rules/0/host"),
            Some(&json!("bg.default.example.com"))
        );
        assert_eq!(rendered.pointer("/spec/rules/0/http/paths/0/path"), None);
        let error = ingress(
            &spec("template: \"example.com:port\""),
            "bg",
            "default",
            "bg-rest",
            8081,
            json!({}),
        )
        .unwrap_err();
        assert_eq!(error.path, "spec.ingress.template");
    }
}
