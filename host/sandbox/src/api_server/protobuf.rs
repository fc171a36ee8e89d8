//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), as
//! client-go's typed clients send them for built-in kinds: Helm stores its releases as Secrets
//! this way. A real API server decodes every built-in kind; the stand-in decodes the two that
//! clients store data in, Secret and ConfigMap, into the JSON the rest of the server works on,
//! and names what it cannot decode.
//!
//! The envelope is the 4-byte magic `k8s\0` and a `runtime.Unknown` message (its `typeMeta`
//! and the object's own bytes in `raw`); field numbers are those of Kubernetes'
//! `generated.proto` files.

use crate::ApiError;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf body into the object as JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("a protobuf body must start with the k8s\\0 magic"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for field in Fields(envelope) {
        match field? {
            (1, Wire::Bytes(type_meta)) => {
                for field in Fields(type_meta) {
                    match field? {
                        (1, Wire::Bytes(v)) => api_version = string(v)?,
                        (2, Wire::Bytes(v)) => kind = string(v)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(bytes)) => raw = bytes,
            _ => {}
        }
    }
    let mut object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret(raw)?,
        ("v1", "ConfigMap") => config_map(raw)?,
        // `kubectl create namespace` sends protobuf; a namespace's spec and status are the
        // server's.
        ("v1", "Namespace") => metadata_only(raw)?,
        _ => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "this API stand-in decodes protobuf bodies of v1 Secret, ConfigMap and Namespace only, got {api_version}/{kind}; send it as application/json"
                ),
            ));
        }
    };
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

fn secret(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut object = Map::new();
    let mut data = Map::new();
    let mut string_data = Map::new();
    for field in Fields(raw) {
        match field? {
            (1, Wire::Bytes(meta)) => {
                object.insert("metadata".into(), object_meta(meta)?);
            }
            (2, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                data.insert(key, base64(value));
            }
            (3, Wire::Bytes(v)) if !v.is_empty() => {
                object.insert("type".into(), json!(string(v)?));
            }
            (4, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                string_data.insert(key, json!(string(value)?));
            }
            (5, Wire::Varint(v)) => {
                object.insert("immutable".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        object.insert("data".into(), Value::Object(data));
    }
    if !string_data.is_empty() {
        object.insert("stringData".into(), Value::Object(string_data));
    }
    Ok(object)
}

fn metadata_only(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut object = Map::new();
    for field in Fields(raw) {
        if let (1, Wire::Bytes(meta)) = field? {
            object.insert("metadata".into(), object_meta(meta)?);
        }
    }
    Ok(object)
}

fn config_map(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut object = Map::new();
    let mut data = Map::new();
    let mut binary = Map::new();
    for field in Fields(raw) {
        match field? {
            (1, Wire::Bytes(meta)) => {
                object.insert("metadata".into(), object_meta(meta)?);
            }
            (2, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                data.insert(key, json!(string(value)?));
            }
            (3, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                binary.insert(key, base64(value));
            }
            (4, Wire::Varint(v)) => {
                object.insert("immutable".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        object.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        object.insert("binaryData".into(), Value::Object(binary));
    }
    Ok(object)
}

/// The parts of `ObjectMeta` a client sets; what the server owns (uid, timestamps, managed
/// fields) it sets itself.
fn object_meta(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    let mut owners = Vec::new();
    for field in Fields(bytes) {
        match field? {
            // Protobuf writes empty strings; in the JSON form they are absent.
            (number @ (1 | 2 | 3 | 6), Wire::Bytes(v)) if !v.is_empty() => {
                let key = match number {
                    1 => "name",
                    2 => "generateName",
                    3 => "namespace",
                    _ => "resourceVersion",
                };
                meta.insert(key.into(), json!(string(v)?));
            }
            (11, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                labels.insert(key, json!(string(value)?));
            }
            (12, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                annotations.insert(key, json!(string(value)?));
            }
            (13, Wire::Bytes(owner)) => owners.push(owner_reference(owner)?),
            (14, Wire::Bytes(v)) => finalizers.push(json!(string(v)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    if !owners.is_empty() {
        meta.insert("ownerReferences".into(), Value::Array(owners));
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

fn owner_reference(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut owner = Map::new();
    for field in Fields(bytes) {
        let (key, value) = match field? {
            (_, Wire::Bytes([])) => continue,
            (1, Wire::Bytes(v)) => ("kind", json!(string(v)?)),
            (3, Wire::Bytes(v)) => ("name", json!(string(v)?)),
            (4, Wire::Bytes(v)) => ("uid", json!(string(v)?)),
            (5, Wire::Bytes(v)) => ("apiVersion", json!(string(v)?)),
            (6, Wire::Varint(v)) => ("controller", json!(v != 0)),
            (7, Wire::Varint(v)) => ("blockOwnerDeletion", json!(v != 0)),
            _ => continue,
        };
        owner.insert(key.into(), value);
    }
    Ok(Value::Object(owner))
}

/// A protobuf map entry: key (1) and value (2).
fn map_entry(bytes: &[u8]) -> Result<(String, &[u8]), ApiError> {
    let mut key = String::new();
    let mut value: &[u8] = &[];
    for field in Fields(bytes) {
        match field? {
            (1, Wire::Bytes(v)) => key = string(v)?,
            (2, Wire::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

fn string(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("a protobuf string field is not UTF-8"))
}

fn base64(bytes: &[u8]) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())).unwrap_or(Value::Null)
}

/// One field's value by wire type (fixed-width values are skipped: no field decoded here
/// uses them).
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a message, in order; after a malformed field the iteration ends (the rest
/// is not read as garbage).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Wire<'a>), ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u64, Wire<'a>), ApiError> {
        let tag = self.varint()?;
        let value = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| truncated())?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "protobuf wire type {other} is not supported"
                )));
            }
        };
        Ok((tag >> 3, value))
    }

    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        self.0 = &[];
        Err(truncated())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ApiError> {
        if len > self.0.len() {
            self.0 = &[];
            return Err(truncated());
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }
}

fn truncated() -> ApiError {
    ApiError::bad_request("the protobuf body is truncated or malformed")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal protobuf writer for the tests: (field, bytes) and (field, varint).
    fn bytes_field(field: u64, value: &[u8]) -> Vec<u8> {
        let mut out = varint((field << 3) | 2);
        out.extend(varint(value.len() as u64));
        out.extend_from_slice(value);
        out
    }

    fn varint_field(field: u64, value: u64) -> Vec<u8> {
        let mut out = varint(field << 3);
        out.extend(varint(value));
        out
    }

    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn entry(field: u64, key: &str, value: &[u8]) -> Vec<u8> {
        bytes_field(
            field,
            &[bytes_field(1, key.as_bytes()), bytes_field(2, value)].concat(),
        )
    }

    fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [bytes_field(1, b"v1"), bytes_field(2, kind.as_bytes())].concat();
        [
            MAGIC.to_vec(),
            bytes_field(1, &type_meta),
            bytes_field(2, raw),
            bytes_field(4, b"application/vnd.kubernetes.protobuf"),
        ]
        .concat()
    }

    #[test]
    fn a_helm_release_secret_decodes_to_its_json() {
        let meta = [
            bytes_field(1, b"sh.helm.release.v1.ops.v1"),
            bytes_field(2, b""),
            bytes_field(3, b"flink-system"),
            bytes_field(6, b""),
            entry(11, "owner", b"helm"),
            entry(11, "status", b"deployed"),
        ]
        .concat();
        let secret = [
            bytes_field(1, &meta),
            entry(2, "release", b"H4sI\x00\xff"),
            bytes_field(3, b"helm.sh/release.v1"),
            varint_field(5, 0),
        ]
        .concat();
        let object = decode(&envelope("Secret", &secret)).unwrap();
        assert_eq!(
            object,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "sh.helm.release.v1.ops.v1", "namespace": "flink-system",
                              "labels": {"owner": "helm", "status": "deployed"}},
                "data": {"release": "SDRzSQD/"},
                "type": "helm.sh/release.v1",
                "immutable": false
            })
        );
    }

    #[test]
    fn a_config_map_keeps_text_and_binary_apart() {
        let config_map = [
            bytes_field(1, &bytes_field(1, b"cm")),
            entry(2, "a", b"text"),
            entry(3, "b", &[0, 1, 2]),
        ]
        .concat();
        let object = decode(&envelope("ConfigMap", &config_map)).unwrap();
        assert_eq!(object["data"], json!({"a": "text"}));
        assert_eq!(object["binaryData"], json!({"b": "AAEC"}));
    }

    #[test]
    fn a_namespace_is_its_metadata() {
        let namespace = bytes_field(1, &bytes_field(1, b"team-a"));
        assert_eq!(
            decode(&envelope("Namespace", &namespace)).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
        );
    }

    #[test]
    fn other_kinds_and_broken_bodies_are_refused_with_the_reason() {
        let error = decode(&envelope("Pod", &[])).unwrap_err();
        assert_eq!(error.code, 415);
        assert!(error.message.contains("v1/Pod"), "{}", error.message);
        let truncated = &envelope("Secret", &bytes_field(1, b"abc"))[..20];
        assert_eq!(decode(truncated).unwrap_err().code, 400);
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
    }
}
