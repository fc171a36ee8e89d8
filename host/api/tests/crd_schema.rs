//! The generated CRDs: committed copies are current, and every property path of upstream's
//! schemas exists in ours (users' YAML must read unchanged).

mod shared_data;

use flink_api::crd;
use serde_json::Value;
use std::collections::BTreeSet;

fn property_paths(schema: &Value, path: String, out: &mut BTreeSet<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            let child = format!("{path}.{key}");
            out.insert(child.clone());
            property_paths(sub, child, out);
        }
    }
    if let Some(items) = schema.get("items") {
        property_paths(items, format!("{path}[]"), out);
    }
}

fn paths_of(crd_yaml: &str) -> BTreeSet<String> {
    let doc: Value = serde_saphyr::from_str(crd_yaml).expect("CRD YAML parses");
    let schema = doc
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .expect("CRD has a schema");
    let mut out = BTreeSet::new();
    property_paths(schema, String::new(), &mut out);
    out
}

/// Upstream paths we do not have, and why. Empty since we build against Kubernetes 1.36, whose
/// Pod matches upstream's model; an entry that no longer applies fails the test.
fn accepted_gap(_path: &str) -> Option<&'static str> {
    None
}

#[test]
fn every_upstream_schema_path_exists_in_ours() {
    let upstream_dir = shared_data::shared_dir().join("upstream-crds");
    let mut checked = 0;
    for ours in crd::all() {
        let plural = &ours.spec.names.plural;
        let upstream_file = upstream_dir.join(format!("{plural}.flink.apache.org-v1.yml"));
        let upstream_yaml =
            std::fs::read_to_string(&upstream_file).expect("upstream CRD is readable");
        let upstream = paths_of(&upstream_yaml);
        let ours = paths_of(&crd::to_yaml(&ours).expect("CRD renders"));
        let missing: Vec<&String> = upstream
            .iter()
            .filter(|p| !ours.contains(*p) && accepted_gap(p).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "{plural}: upstream paths missing from our schema: {missing:#?}"
        );
        let stale: Vec<&String> = upstream
            .iter()
            .filter(|p| accepted_gap(p).is_some() && ours.contains(*p))
            .collect();
        assert!(
            stale.is_empty(),
            "{plural}: accepted gaps that no longer apply, remove them: {stale:#?}"
        );
        checked += upstream.len();
    }
    assert!(
        checked > 1000,
        "walked only {checked} upstream paths; is the data complete?"
    );
}

#[test]
fn committed_crds_are_up_to_date() {
    let dir = shared_data::repo_dir().join("charts/flink-operator/crds");
    for generated in crd::all() {
        let file = dir.join(crd::file_name(&generated));
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == crd::to_yaml(&generated).expect("CRD renders"),
            "{} is stale; run `cargo run -p flink-operator -- crds --write charts/flink-operator/crds`",
            file.display()
        );
    }
}

#[test]
fn crds_match_upstream_names_subresources_and_columns() {
    let upstream_dir = shared_data::shared_dir().join("upstream-crds");
    for ours in crd::all() {
        let plural = ours.spec.names.plural.clone();
        let upstream: Value = serde_saphyr::from_str(
            &std::fs::read_to_string(
                upstream_dir.join(format!("{plural}.flink.apache.org-v1.yml")),
            )
            .unwrap(),
        )
        .unwrap();
        let ours = serde_json::to_value(&ours).unwrap();
        for pointer in [
            "/spec/names/shortNames",
            "/spec/names/kind",
            "/spec/scope",
            "/spec/group",
        ] {
            assert_eq!(
                ours.pointer(pointer),
                upstream.pointer(pointer),
                "{plural} {pointer}"
            );
        }
        for pointer in ["/spec/versions/0/subresources", "/spec/versions/0/name"] {
            assert_eq!(
                ours.pointer(pointer),
                upstream.pointer(pointer),
                "{plural} {pointer}"
            );
        }
        let columns = |v: &Value| -> Vec<(Value, Value)> {
            v.pointer("/spec/versions/0/additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|cols| {
                    cols.iter()
                        .map(|c| (c["name"].clone(), c["jsonPath"].clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(
            columns(&ours),
            columns(&upstream),
            "{plural} printer columns"
        );
    }
}

#[test]
fn crds_fit_the_api_servers_object_size_limit() {
    for generated in crd::all() {
        let size = serde_json::to_vec(&generated).unwrap().len();
        assert!(
            size < 1_500_000,
            "{} is {size} bytes as JSON",
            crd::file_name(&generated)
        );
    }
}
