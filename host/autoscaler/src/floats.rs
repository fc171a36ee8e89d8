//! Metric values in stored state and recordings. A metric Flink did not report is NaN, which
//! JSON cannot hold: it is written as `null`; infinities (a source reading nothing has an
//! infinite true processing rate) as the strings `"Infinity"` and `"-Infinity"`.

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        serializer.serialize_none()
    } else if value.is_infinite() {
        serializer.serialize_str(if *value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        serializer.serialize_f64(*value)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Number(f64),
    Text(String),
    Missing(()),
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    match Option::<Stored>::deserialize(deserializer)? {
        None | Some(Stored::Missing(())) => Ok(f64::NAN),
        Some(Stored::Number(v)) => Ok(v),
        Some(Stored::Text(text)) => match text.as_str() {
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            other => Err(serde::de::Error::custom(format!(
                "{other:?} is not a metric value (a number, null, \"Infinity\" or \"-Infinity\")"
            ))),
        },
    }
}

/// A NaN-filled value for fields a recording leaves out.
pub fn missing() -> f64 {
    f64::NAN
}

/// Whether a value is left out when written (a metric only some settings use).
pub fn is_missing(value: &f64) -> bool {
    value.is_nan()
}
