//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge patch
//! for built-in kinds (lists merged by key where Kubernetes declares a merge key).

use crate::ApiError;
use serde_json::{Map, Value};

/// The patch types the stand-in understands, by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies a merge, JSON or strategic patch to `target`.
pub fn apply(
    target: &Value,
    patch_type: PatchType,
    body: &[u8],
    custom_resource: bool,
) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match patch_type {
        PatchType::Merge => {
            let patch: Value = parse_json(body)?;
            json_patch::merge(&mut doc, &patch);
        }
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &patch).map_err(|e| ApiError {
                code: 422,
                reason: "Invalid",
                message: format!("the JSON patch could not be applied: {e}"),
                details: None,
            })?;
        }
        PatchType::Strategic => {
            if custom_resource {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json is not supported for custom resources",
                ));
            }
            let patch: Value = parse_json(body)?;
            strategic_merge(&mut doc, &patch, "");
        }
        PatchType::Apply => {
            return Err(ApiError::internal(
                "apply patches are handled by server-side apply",
            ));
        }
    }
    Ok(doc)
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))
}

/// The merge key of a list field in built-in kinds, by field name.
pub(crate) fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ports" => Some("containerPort"),
        "ownerReferences" => Some("uid"),
        "hostAliases" => Some("ip"),
        _ => None,
    }
}

fn strategic_merge(target: &mut Value, patch: &Value, field: &str) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_objects(t, p),
        (Value::Array(t), Value::Array(p)) if merge_key(field).is_some() => {
            merge_keyed_list(t, p, merge_key(field).unwrap_or("name"));
        }
        (Value::Array(t), Value::Array(p)) if field == "finalizers" => {
            for item in p {
                if !t.contains(item) {
                    t.push(item.clone());
                }
            }
        }
        (target, patch) => *target = strip_directives(patch),
    }
}

fn merge_objects(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            target.remove(key);
        } else if let Some(existing) = target.get_mut(key) {
            strategic_merge(existing, value, key);
        } else {
            target.insert(key.clone(), strip_directives(value));
        }
    }
}

fn merge_keyed_list(target: &mut Vec<Value>, patch: &[Value], key: &str) {
    for item in patch {
        let id = item.get(key).cloned();
        let position = id
            .as_ref()
            .and_then(|id| target.iter().position(|t| t.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (Some(i), false) => strategic_merge(&mut target[i], item, ""),
            (None, false) => target.push(strip_directives(item)),
            (None, true) => {}
        }
    }
}

/// Drops `$patch`, `$setElementOrder/...` and other directives from inserted values.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_env_by_name() {
        let target = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
            {"name": "b", "image": "y"}
        ]}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}], "containers": [
            {"name": "a", "env": [{"name": "B", "value": "2"}]},
            {"name": "b", "$patch": "delete"},
            {"name": "c", "image": "z"}
        ]}});
        let out = apply(
            &target,
            PatchType::Strategic,
            patch.to_string().as_bytes(),
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [
                {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "c", "image": "z"}
            ]}})
        );
    }

    #[test]
    fn merge_patch_replaces_lists_and_null_deletes() {
        let target = json!({"a": [1, 2], "b": {"c": 1, "d": 2}});
        let out = apply(
            &target,
            PatchType::Merge,
            br#"{"a": [3], "b": {"c": null}}"#,
            true,
        )
        .unwrap();
        assert_eq!(out, json!({"a": [3], "b": {"d": 2}}));
    }

    #[test]
    fn json_patch_failures_are_422() {
        let err = apply(
            &json!({}),
            PatchType::Json,
            br#"[{"op": "remove", "path": "/missing"}]"#,
            true,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let err = apply(&json!({}), PatchType::Strategic, b"{}", true).unwrap_err();
        assert_eq!(err.code, 415);
    }
}
