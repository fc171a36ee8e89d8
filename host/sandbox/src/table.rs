//! `meta.k8s.io/v1` Tables for `kubectl get`: Name, a CRD's printer columns, Age.

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
                let cell = item.pointer(&json_path_pointer(&column.json_path)).cloned().unwrap_or(Value::Null);
                cells.push(if column.kind == "date" { age_cell(&cell) } else { cell });
            }
            cells.push(age_cell(item.pointer("/metadata/creationTimestamp").unwrap_or(&Value::Null)));
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

#[cfg(test)]
mod tests {
    use super::human_duration;

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
