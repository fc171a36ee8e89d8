//! Events are one store seen through two APIs, as on a real cluster: what is written as a
//! core/v1 Event is an events.k8s.io/v1 Event too, and the other way round (the operator writes
//! events.k8s.io/v1, `kubectl get events` reads core/v1). The store keeps both views and
//! writes the other one with every write (see `Store::commit`); this module says which key is
//! the other view and converts between the two shapes as the API server's conversion does.

use crate::store::Key;
use serde_json::{Map, Value, json};

const CORE: &str = "";
const EVENTS: &str = "events.k8s.io";

/// The key of the same Event in the other API, for an Event's key.
pub fn twin(key: &Key) -> Option<Key> {
    if key.1 != "events" {
        return None;
    }
    let other = match key.0.as_str() {
        CORE => EVENTS,
        EVENTS => CORE,
        _ => return None,
    };
    Some((
        other.to_string(),
        key.1.clone(),
        key.2.clone(),
        key.3.clone(),
    ))
}

/// `event` (as stored under its own API's group) in the shape of the API of `group`.
pub fn convert(event: &Value, group: &str) -> Value {
    let field = |name: &str| event.get(name).cloned().filter(|v| !v.is_null());
    let mut out = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            out.insert(name.to_string(), value);
        }
    };
    let mut metadata = event.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = metadata.as_object_mut() {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    put("metadata", Some(metadata));
    for same in ["reason", "type", "action", "related", "eventTime", "series"] {
        put(same, field(same));
    }
    if group == CORE {
        put("apiVersion", Some(json!("v1")));
        put("kind", Some(json!("Event")));
        put("involvedObject", field("regarding"));
        put("message", field("note"));
        put("reportingComponent", field("reportingController"));
        put("reportingInstance", field("reportingInstance"));
        let source = field("deprecatedSource")
            .or_else(|| field("reportingController").map(|c| json!({"component": c})));
        put("source", source);
        let observed = event.pointer("/series/lastObservedTime").cloned();
        put(
            "firstTimestamp",
            field("deprecatedFirstTimestamp").or_else(|| field("eventTime").map(seconds)),
        );
        put(
            "lastTimestamp",
            field("deprecatedLastTimestamp")
                .or_else(|| observed.map(seconds))
                .or_else(|| field("eventTime").map(seconds)),
        );
        put(
            "count",
            field("deprecatedCount")
                .or_else(|| event.pointer("/series/count").cloned())
                .or(Some(json!(1))),
        );
    } else {
        put("apiVersion", Some(json!("events.k8s.io/v1")));
        put("kind", Some(json!("Event")));
        put("regarding", field("involvedObject"));
        put("note", field("message"));
        put(
            "reportingController",
            field("reportingComponent").or_else(|| event.pointer("/source/component").cloned()),
        );
        put(
            "reportingInstance",
            field("reportingInstance").or_else(|| event.pointer("/source/host").cloned()),
        );
        put("deprecatedSource", field("source"));
        put("deprecatedFirstTimestamp", field("firstTimestamp"));
        put("deprecatedLastTimestamp", field("lastTimestamp"));
        put("deprecatedCount", field("count"));
    }
    Value::Object(out)
}

/// A MicroTime (`...T12:00:00.123456Z`) as a Time (`...T12:00:00Z`), as core/v1's timestamps
/// are.
fn seconds(time: Value) -> Value {
    match time.as_str() {
        Some(text) => match (text.find('.'), text.ends_with('Z')) {
            (Some(dot), true) => json!(format!("{}Z", &text[..dot])),
            _ => time.clone(),
        },
        None => time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str, plural: &str) -> Key {
        (
            group.to_string(),
            plural.to_string(),
            "ns".to_string(),
            "e".to_string(),
        )
    }

    #[test]
    fn each_event_api_has_the_other_as_twin_and_nothing_else_has_one() {
        assert_eq!(
            twin(&key("", "events")),
            Some(key("events.k8s.io", "events"))
        );
        assert_eq!(
            twin(&key("events.k8s.io", "events")),
            Some(key("", "events"))
        );
        assert_eq!(twin(&key("", "pods")), None);
        assert_eq!(twin(&key("example.com", "events")), None);
    }

    #[test]
    fn an_operator_event_reads_as_kubectl_expects_and_converts_back() {
        let written = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns", "uid": "u", "resourceVersion": "7"},
            "eventTime": "2026-12-07T08:00:00.123456Z",
            "regarding": {"kind": "FlinkDeployment", "name": "quickstart", "namespace": "ns"},
            "note": "Starting deployment", "reason": "Submit", "type": "Normal",
            "action": "Reconcile", "reportingController": "flink-operator",
            "reportingInstance": "flink-operator-0",
            "series": {"count": 3, "lastObservedTime": "2026-12-07T08:05:00.000001Z"},
        });
        let core = convert(&written, "");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "quickstart");
        assert_eq!(core["message"], "Starting deployment");
        assert_eq!(core["source"]["component"], "flink-operator");
        assert_eq!(core["firstTimestamp"], "2026-12-07T08:00:00Z");
        assert_eq!(core["lastTimestamp"], "2026-12-07T08:05:00Z");
        assert_eq!(core["count"], 3);
        assert!(core["metadata"].get("resourceVersion").is_none());
        let back = convert(&core, "events.k8s.io");
        for same in [
            "regarding",
            "note",
            "reason",
            "type",
            "action",
            "reportingController",
            "reportingInstance",
            "eventTime",
            "series",
        ] {
            assert_eq!(back[same], written[same], "{same}");
        }
    }

    #[test]
    fn a_core_event_reads_through_events_k8s_io() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "Pulled",
            "reason": "Pulled", "type": "Normal", "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2026-12-07T08:00:00Z", "lastTimestamp": "2026-12-07T08:01:00Z", "count": 2,
        });
        let events = convert(&core, "events.k8s.io");
        assert_eq!(events["regarding"]["name"], "p");
        assert_eq!(events["note"], "Pulled");
        assert_eq!(events["reportingController"], "kubelet");
        assert_eq!(events["reportingInstance"], "node-1");
        assert_eq!(events["deprecatedCount"], 2);
        assert_eq!(events["deprecatedLastTimestamp"], "2026-12-07T08:01:00Z");
    }
}
