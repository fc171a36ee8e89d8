//! A JSON merge patch (RFC 7386) that turns one status into another: changed and new fields,
//! and `null` for fields that went away (a merge patch of the new status alone would keep
//! them, e.g. an `error` that was cleared).

use serde_json::{Map, Value};

/// `None` when nothing changed.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) => {
                        if let Some(change) = merge_patch(previous, value) {
                            patch.insert(key.clone(), change);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (old, new) if old == new => None,
        (_, new) => Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removed_fields_become_null_and_unchanged_ones_are_left_out() {
        let old = json!({"error": "x", "jobStatus": {"state": "RUNNING", "jobId": "a"}, "conditions": [1]});
        let new = json!({"jobStatus": {"state": "FAILED", "jobId": "a"}, "conditions": [1]});
        assert_eq!(
            merge_patch(&old, &new),
            Some(json!({"error": null, "jobStatus": {"state": "FAILED"}}))
        );
        assert_eq!(merge_patch(&new, &new), None);
    }

    #[test]
    fn applying_the_patch_gives_the_new_document() {
        let old = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        let new = json!({"a": {"c": [3]}, "e": true});
        let mut patched = old.clone();
        json_patch::merge(&mut patched, &merge_patch(&old, &new).expect("a change"));
        assert_eq!(patched, new);
    }
}
