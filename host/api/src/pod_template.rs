//! `podTemplate` fields: a Kubernetes Pod fragment kept as the user wrote it.
//!
//! The operator merges templates as JSON trees (base, then component, then what it owns), and
//! plugins receive them as JSON, so the value stays JSON. Its CRD schema is the full Pod schema
//! with `required` and descriptions removed: users write fragments (a volume, no containers) and upstream's schema
//! requires nothing either.

use k8s_openapi::api::core::v1::Pod;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct PodTemplate(pub Value);

impl PodTemplate {
    /// The fragment read as a Pod; the error carries the path inside the template.
    pub fn typed(&self) -> Result<Pod, (String, String)> {
        let deserializer = self.0.clone();
        serde_path_to_error::deserialize::<_, Pod>(deserializer)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))
    }
}

impl JsonSchema for PodTemplate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PodTemplate".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut value = generator.subschema_for::<Pod>().to_value();
        strip_required(&mut value);
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "description".into(),
                "A Pod fragment merged into the rendered pods (upstream semantics).".into(),
            );
        }
        Schema::try_from(value).unwrap_or_default()
    }
}

/// Drops `required` (fragments are partial) and `description`s (the Pod schema's prose would
/// push the CRD past the API server's 1.5 MiB object limit; upstream's CRD has none either).
fn strip_required(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("required");
            if map.get("description").is_some_and(Value::is_string) {
                map.remove("description");
            }
            map.values_mut().for_each(strip_required);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_required),
        _ => {}
    }
}
