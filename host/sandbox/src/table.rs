//! `meta.k8s.io/v1` Tables for `kubectl get`: Name, a CRD's printer columns, Age.

use crate::resources::ResourceType;
use crate::store::json_path_pointer;
use serde_json::{Value, json};

/// Whether a request's `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| part.contains("as=Table"))
}

pub fn to_table(
    rt: &ResourceType,
    items: &[Value],
    resource_version: &str,
    include_object: bool,
) -> Value {
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for column in &rt.printer_columns {
        columns.push(json!({"name": column.name, "type": column.kind, "format": "", "description": "", "priority": column.priority}));
    }
    columns.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp.", "priority": 0}));
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut cells = vec![item.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            for column in &rt.printer_columns {
                cells.push(item.pointer(&json_path_pointer(&column.json_path)).cloned().unwrap_or(Value::Null));
            }
            cells.push(item.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null));
            let object = if include_object {
                item.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item.get("metadata")})
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}
