//! Server-side apply: field ownership per manager, conflicts, and removal of fields a manager
//! stops applying, recorded in `metadata.managedFields` (FieldsV1) like the real server.
//!
//! Lists are merged by key where Kubernetes declares a merge key for built-in kinds
//! (`containers` by `name`, …) and are atomic in custom resources, as on a real cluster for
//! CRDs that do not declare `x-kubernetes-list-type: map`. Fields written by create, update or
//! non-apply patches are not tracked as owned (the real server records them as `Update`
//! managers); an applier can therefore take them without a conflict.

use crate::ApiError;
use crate::resources::ResourceType;
use crate::store::{Store, Subresource, meta, text};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

type Path = Vec<String>;
type FieldSet = BTreeSet<Path>;

const UNOWNED_METADATA: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

/// Lists in custom resources are atomic (no `x-kubernetes-list-type: map` in our CRDs); built-in
/// kinds use the same merge keys as strategic merge patches.
fn merge_key(field: &str, custom: bool) -> Option<&'static str> {
    if custom {
        None
    } else {
        crate::patch::merge_key(field)
    }
}

fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Leaf paths of an applied configuration.
fn field_set(config: &Value, custom: bool, subresource: Subresource) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = config.as_object() else {
        return set;
    };
    for (key, value) in map {
        match (key.as_str(), subresource) {
            ("apiVersion" | "kind", _) => {}
            ("status", Subresource::Main) | ("spec", Subresource::Status) => {}
            ("metadata", Subresource::Main) => {
                if let Some(m) = value.as_object() {
                    for (k, v) in m
                        .iter()
                        .filter(|(k, _)| !UNOWNED_METADATA.contains(&k.as_str()))
                    {
                        collect(
                            v,
                            k,
                            vec!["f:metadata".into(), format!("f:{k}")],
                            custom,
                            &mut set,
                        );
                    }
                }
            }
            ("metadata", Subresource::Status) => {}
            (_, Subresource::Status) if key != "status" => {}
            _ => collect(value, key, vec![format!("f:{key}")], custom, &mut set),
        }
    }
    set
}

fn collect(value: &Value, field: &str, path: Path, custom: bool, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                collect(v, k, p, custom, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            if let Some(key) = merge_key(field, custom)
                && items.iter().all(|i| i.get(key).is_some())
            {
                for item in items {
                    let mut item_path = path.clone();
                    item_path.push(format!("k:{}", json!({ key: item[key] })));
                    let mut marker = item_path.clone();
                    marker.push(".".into());
                    out.insert(marker);
                    if let Some(m) = item.as_object() {
                        for (k, v) in m {
                            let mut p = item_path.clone();
                            p.push(format!("f:{k}"));
                            collect(v, k, p, custom, out);
                        }
                    }
                }
            } else if is_set_list(field) {
                for item in items {
                    let mut p = path.clone();
                    p.push(format!("v:{item}"));
                    out.insert(p);
                }
            } else {
                out.insert(path);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for element in path {
            node = node
                .entry(element.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("inserted an object");
        }
    }
    Value::Object(root)
}

fn from_fields_v1(value: &Value, prefix: Path, out: &mut FieldSet) {
    let Some(map) = value.as_object() else { return };
    for (key, child) in map {
        let mut path = prefix.clone();
        path.push(key.clone());
        if child.as_object().is_none_or(Map::is_empty) {
            out.insert(path);
        } else {
            from_fields_v1(child, path, out);
        }
    }
}

/// Where a path element leads inside a value.
fn step<'a>(value: &'a Value, element: &str) -> Option<&'a Value> {
    if element == "." {
        return Some(value);
    }
    if let Some(field) = element.strip_prefix("f:") {
        return value.get(field);
    }
    let items = value.as_array()?;
    if let Some(key) = element.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items
            .iter()
            .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
    if let Some(v) = element.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        return items.iter().find(|item| **item == v);
    }
    None
}

fn value_at<'a>(value: &'a Value, path: &Path) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, element| step(v, element))
}

/// Removes what `path` addresses (a field, a keyed item, a set member).
fn remove_at(value: &mut Value, path: &Path) {
    let (last, parents) = match path.split_last() {
        Some((last, parents)) if last == "." => match parents.split_last() {
            Some((item, rest)) => (item.clone(), rest.to_vec()),
            None => return,
        },
        Some((last, parents)) => (last.clone(), parents.to_vec()),
        None => return,
    };
    let mut node = value;
    for element in &parents {
        let next = if let Some(field) = element.strip_prefix("f:") {
            node.get_mut(field)
        } else {
            let Some(items) = node.as_array_mut() else {
                return;
            };
            let position = match step(&Value::Array(items.clone()), element) {
                Some(found) => items.iter().position(|i| i == found),
                None => None,
            };
            match position {
                Some(i) => items.get_mut(i),
                None => None,
            }
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(found) = step(node, &last).cloned()
        && let Some(items) = node.as_array_mut()
    {
        items.retain(|i| *i != found);
    }
}

/// Merges an applied configuration into the live object.
fn merge(target: &mut Value, config: &Value, field: &str, custom: bool) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                if v.is_null() {
                    continue;
                }
                match t.get_mut(k) {
                    Some(existing) => merge(existing, v, k, custom),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(c)) if merge_key(field, custom).is_some() => {
            let key = merge_key(field, custom).unwrap_or("name");
            for item in c {
                match t.iter_mut().find(|x| x.get(key) == item.get(key)) {
                    Some(existing) => merge(existing, item, "", custom),
                    None => t.push(item.clone()),
                }
            }
        }
        (Value::Array(t), Value::Array(c)) if is_set_list(field) => {
            for item in c {
                if !t.contains(item) {
                    t.push(item.clone());
                }
            }
        }
        (target, config) => *target = config.clone(),
    }
}

fn display(path: &Path) -> String {
    path.iter()
        .filter(|e| *e != ".")
        .map(|e| match e.strip_prefix("f:") {
            Some(f) => format!(".{f}"),
            None => format!("[{}]", &e[2..]),
        })
        .collect()
}

impl Store {
    /// `PATCH` with `application/apply-patch+yaml`: create or update `name` so that `manager`
    /// owns exactly the fields of `body`. Returns the HTTP code (201 when created) and the object.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        body: &[u8],
        manager: &str,
        force: bool,
        subresource: Subresource,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let text_body = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
        let config: Value = serde_saphyr::from_str(text_body).map_err(|e| {
            ApiError::bad_request(format!("the apply body is not valid YAML or JSON: {e}"))
        })?;
        self.check_body(rt, &config, Some(name))?;
        let applied = field_set(&config, rt.custom, subresource);
        let subresource_name = (subresource == Subresource::Status).then_some("status");
        let now = (self.clock)();
        let entry = |set: &FieldSet| {
            let mut e = json!({"manager": manager, "operation": "Apply", "apiVersion": rt.api_version(), "time": now, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(set)});
            if let Some(sub) = subresource_name {
                e["subresource"] = json!(sub);
            }
            e
        };

        let current = match self.get(rt, namespace, name) {
            Ok(current) => current,
            Err(e) if e.code == 404 && subresource == Subresource::Main => {
                let mut object = config.clone();
                meta(&mut object).insert("name".into(), json!(name));
                meta(&mut object).insert("managedFields".into(), json!([entry(&applied)]));
                return self
                    .create(rt, namespace, object, dry_run)
                    .map(|o| (201, o));
            }
            Err(e) => return Err(e),
        };

        // Who owns what today.
        let entries: Vec<Value> = current
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut owners: BTreeMap<usize, FieldSet> = BTreeMap::new();
        let mut previous = FieldSet::new();
        for (i, e) in entries.iter().enumerate() {
            let mut set = FieldSet::new();
            from_fields_v1(
                e.get("fieldsV1").unwrap_or(&Value::Null),
                Vec::new(),
                &mut set,
            );
            let same = e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
                && e.get("subresource").and_then(Value::as_str) == subresource_name;
            if same {
                previous = set;
            } else {
                owners.insert(i, set);
            }
        }

        // Conflicts: fields another manager owns that this apply would change.
        let mut conflicts = Vec::new();
        for path in &applied {
            let new_value = value_at(&config, path);
            let live_value = value_at(&current, path);
            if new_value == live_value {
                continue;
            }
            for (i, set) in &owners {
                if set.contains(path) {
                    let other = entries[*i]
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    conflicts.push((*i, other, path.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            let list = conflicts
                .iter()
                .map(|(_, m, p)| format!("conflict with \"{m}\": {}", display(p)))
                .collect::<Vec<_>>();
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|(_, m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": display(p)}))
                .collect();
            return Err(ApiError {
                code: 409,
                reason: "Conflict",
                message: format!(
                    "Apply failed with {} conflict{}: {}",
                    list.len(),
                    if list.len() == 1 { "" } else { "s" },
                    list.join(", ")
                ),
                details: Some(json!({"name": name, "kind": rt.plural, "causes": causes})),
            });
        }
        for (i, _, path) in &conflicts {
            if let Some(set) = owners.get_mut(i) {
                set.remove(path);
            }
        }

        // Fields this manager stopped applying go, unless someone else still owns them.
        let mut next = current.clone();
        let others: FieldSet = owners.values().flatten().cloned().collect();
        for path in previous.difference(&applied) {
            let owned_elsewhere = others
                .iter()
                .any(|o| o.starts_with(path.strip_suffix(&[".".to_string()]).unwrap_or(path)));
            if !owned_elsewhere {
                remove_at(&mut next, path);
            }
        }
        merge(&mut next, &config, "", rt.custom);

        let mut managed: Vec<Value> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(set) = owners.get(&i) {
                if set.is_empty() {
                    continue;
                }
                let mut e = e.clone();
                e["fieldsV1"] = to_fields_v1(set);
                managed.push(e);
            }
        }
        managed.push(entry(&applied));
        meta(&mut next).insert("managedFields".into(), json!(managed));
        if let Some(rv) = text(&config, "/metadata/resourceVersion")
            && Some(rv) != text(&current, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.qualified(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        meta(&mut next).insert(
            "resourceVersion".into(),
            current
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
        // The status subresource takes only status; `write` keeps the rest.
        let written = self.write_apply(rt, namespace, name, current, next, subresource, dry_run)?;
        Ok((200, written))
    }

    #[allow(clippy::too_many_arguments)]
    fn write_apply(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        current: Value,
        mut next: Value,
        subresource: Subresource,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if subresource == Subresource::Status {
            // managedFields change even though only status is written.
            let managed = next.pointer("/metadata/managedFields").cloned();
            let mut staged = current.clone();
            if let Some(managed) = managed {
                meta(&mut staged).insert("managedFields".into(), managed);
            }
            if let Some(status) = next.get("status") {
                staged["status"] = status.clone();
            }
            next = staged;
            return self.write(
                rt,
                namespace,
                name,
                current,
                next,
                Subresource::Main,
                dry_run,
            );
        }
        self.write(rt, namespace, name, current, next, subresource, dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trips_and_keys_list_items() {
        let config = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let set = field_set(&config, false, Subresource::Main);
        let encoded = to_fields_v1(&set);
        assert_eq!(
            encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:image"],
            json!({})
        );
        assert_eq!(encoded["f:metadata"]["f:labels"]["f:a"], json!({}));
        assert!(encoded["f:metadata"].get("f:name").is_none());
        let mut decoded = FieldSet::new();
        from_fields_v1(&encoded, Vec::new(), &mut decoded);
        assert_eq!(decoded, set);
    }

    #[test]
    fn lists_in_custom_resources_are_atomic() {
        let config = json!({"spec": {"args": ["a", "b"], "containers": [{"name": "c"}]}});
        let set = field_set(&config, true, Subresource::Main);
        assert!(set.contains(&vec!["f:spec".to_string(), "f:containers".to_string()]));
    }
}
