//! Activating tenant bindings with real plugins: a good binding becomes active, a bad new
//! version (wrong pin, refused config, failing smoke call, wrong extension point) keeps the last
//! good one and says why, and an unchanged binding is reused without recompiling.

use flink_policy::dev::plugin_bytes;
use flink_policy::tenancy::{ActivePolicies, PluginSource, PolicyConfig, activate};
use flink_policy::{Digest, ExtensionPoint, Limits, PolicyEngine};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("flink-policy-tenancy-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// Puts a workspace plugin into the directory under `name`; returns its pin.
    fn put(&self, name: &str, package: &str) -> String {
        let bytes = plugin_bytes(package);
        std::fs::write(self.0.join(format!("{name}.wasm")), &bytes).unwrap();
        Digest::of(&bytes).0
    }

    fn source(&self) -> PluginSource {
        PluginSource {
            binary_data: BTreeMap::new(),
            directory: Some(self.0.clone()),
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(yaml: &str) -> PolicyConfig {
    PolicyConfig::parse(yaml).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn bound(point: &str, plugin: &str, pin: &str, config: &str) -> String {
    format!(
        "tenants:\n- name: team-a\n  namespaces: [team-a]\n  {point}:\n    plugin: {plugin}\n    sha256: \"{pin}\"\n    config: {config}\n"
    )
}

async fn activated(
    engine: &Arc<PolicyEngine>,
    yaml: &str,
    dir: &Dir,
    previous: &ActivePolicies,
) -> ActivePolicies {
    activate(
        engine,
        config(yaml),
        &dir.source(),
        previous,
        &Limits::operator_maxima(),
    )
    .await
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[tokio::test]
async fn a_good_binding_activates_and_a_bad_new_version_keeps_the_last_good_one() {
    let engine = Arc::new(PolicyEngine::new(None).unwrap());
    let dir = Dir::new("versions");
    let pin = dir.put("connectors", "connector-pod-template");
    let good = bound("podTemplate", "connectors", &pin, "{labels: {team: a}}");
    let first = activated(&engine, &good, &dir, &ActivePolicies::default()).await;
    assert_eq!(first.reports[0].error, None, "{:#?}", first.reports);
    let active = first
        .binding_for("team-a", &labels(), ExtensionPoint::PodTemplate)
        .expect("active");
    assert_eq!(active.plugin.digest.0, pin);
    assert!(
        first
            .binding_for("team-b", &labels(), ExtensionPoint::PodTemplate)
            .is_none(),
        "other tenants have none"
    );

    // The same binding again: reused as is, not recompiled or re-checked.
    let again = activated(&engine, &good, &dir, &first).await;
    let reused = again
        .binding_for("team-a", &labels(), ExtensionPoint::PodTemplate)
        .unwrap();
    assert!(Arc::ptr_eq(&active, &reused));

    // The file is replaced by other bytes without a new pin: refused, the old version stays.
    dir.put("connectors", "tenant-quota-scaling");
    let replaced = activated(&engine, &good, &dir, &again).await;
    let error = replaced.reports[0].error.clone().unwrap();
    assert!(
        error.contains("but the binding pins")
            && error.contains(&format!("still using connectors {pin}")),
        "{error}"
    );
    assert!(Arc::ptr_eq(
        &replaced
            .binding_for("team-a", &labels(), ExtensionPoint::PodTemplate)
            .unwrap(),
        &active
    ));

    // A new pin for a plugin of another extension point: refused with where to bind it.
    let other_pin = Digest::of(&plugin_bytes("tenant-quota-scaling")).0;
    let misbound = activated(
        &engine,
        &bound("podTemplate", "connectors", &other_pin, "{}"),
        &dir,
        &replaced,
    )
    .await;
    let error = misbound.reports[0].error.clone().unwrap();
    assert!(
        error.contains(
            "implements scaling-policy, but is bound as pod-template; bind it under scaling"
        ),
        "{error}"
    );

    // A config the plugin refuses.
    dir.put("connectors", "connector-pod-template");
    let refused = activated(
        &engine,
        &bound("podTemplate", "connectors", &pin, "{labels: 3}"),
        &dir,
        &misbound,
    )
    .await;
    let error = refused.reports[0].error.clone().unwrap();
    assert!(
        error.contains("connectors refuses its config: config.labels: invalid type"),
        "{error}"
    );
    assert_eq!(
        refused.reports[0]
            .active_digest
            .as_ref()
            .map(|d| d.0.clone()),
        Some(pin.clone())
    );

    // Back to the binding in use: reused, and the earlier rejection is no longer reported.
    let back = activated(&engine, &good, &dir, &refused).await;
    assert_eq!(back.reports[0].error, None);
    assert!(Arc::ptr_eq(
        &back
            .binding_for("team-a", &labels(), ExtensionPoint::PodTemplate)
            .unwrap(),
        &active
    ));
}

#[tokio::test]
async fn a_plugin_that_fails_its_smoke_call_is_never_activated() {
    let engine = Arc::new(PolicyEngine::new(None).unwrap());
    let dir = Dir::new("smoke");
    let pin = dir.put("hostile", "hostile-plugin");
    let policies = activated(
        &engine,
        &bound("scaling", "hostile", &pin, "{misbehave: loop}"),
        &dir,
        &ActivePolicies::default(),
    )
    .await;
    let error = policies.reports[0].error.clone().unwrap();
    assert!(error.contains("hostile failed its smoke call on a 20-vertex job under load: the plugin ran out of fuel"), "{error}");
    assert!(error.ends_with("the built-in behaviour applies"), "{error}");
    assert!(policies.bindings.is_empty());
}

#[tokio::test]
async fn a_missing_plugin_file_is_reported_with_where_it_was_looked_for() {
    let engine = Arc::new(PolicyEngine::new(None).unwrap());
    let dir = Dir::new("missing");
    let pin = "0".repeat(64);
    let policies = activated(
        &engine,
        &bound("upgrade", "windows", &pin, "{}"),
        &dir,
        &ActivePolicies::default(),
    )
    .await;
    let error = policies.reports[0].error.clone().unwrap();
    assert!(
        error.starts_with("windows.wasm is not in the policies ConfigMap's binaryData, and "),
        "{error}"
    );
}

#[tokio::test]
async fn binary_data_is_a_plugin_source_too() {
    let engine = Arc::new(PolicyEngine::new(None).unwrap());
    let bytes = plugin_bytes("maintenance-window-upgrade");
    let pin = Digest::of(&bytes).0;
    let source = PluginSource {
        binary_data: BTreeMap::from([("windows.wasm".to_string(), bytes)]),
        directory: None,
    };
    let policies = activate(
        &engine,
        config(&bound("upgrade", "windows", &pin, "{}")),
        &source,
        &ActivePolicies::default(),
        &Limits::operator_maxima(),
    )
    .await;
    assert_eq!(policies.reports[0].error, None);
    assert!(
        policies
            .binding_for("team-a", &labels(), ExtensionPoint::Upgrade)
            .is_some()
    );
}
