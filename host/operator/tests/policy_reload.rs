//! Tenant policy plugins in a running operator, against the API stand-in: bindings are
//! hot-reloaded from the policies ConfigMap and the plugin directory without a restart, a broken
//! new plugin leaves the old one active and is reported, and a tenant's pod-template plugin
//! changes that tenant's pods only. (No Flink is needed: what is checked is what the operator
//! applies; the reload latency is printed, not asserted.)

mod common;

use common::eventually;
use flink_operator::controller::{self, Context, policies::STATUS_ANNOTATION};
use flink_operator::settings::Settings;
use flink_policy::dev::plugin_bytes;
use flink_policy::{Digest, ExtensionPoint};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn deployment(namespace: &str) -> Value {
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "orders", "namespace": namespace},
        "spec": {
            "image": "flink:2.3", "flinkVersion": "v2_3", "mode": "standalone",
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
            "jobManager": {"resource": {"memory": "1g", "cpu": 1}},
            "taskManager": {"resource": {"memory": "1g", "cpu": 1}, "replicas": 1},
            "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "parallelism": 2, "upgradeMode": "stateless"}
        }
    })
}

fn policies(plugin: &str, pin: &str, label: &str) -> String {
    format!(
        "tenants:\n- name: team-a\n  namespaces: [team-a]\n  podTemplate:\n    plugin: {plugin}\n    sha256: \"{pin}\"\n    config:\n      labels: {{policy: {label}}}\n      connectors: [{{name: kafka, image: \"reg/kafka-connector:4.0.0-2.0\"}}]\n"
    )
}

async fn tm_template(client: &kube::Client, namespace: &str) -> Option<Value> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let tm = api.get_opt("orders-taskmanager").await.ok()??;
    serde_json::to_value(tm.spec?.template).ok()
}

async fn set_policies(client: &kube::Client, yaml: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flink-operator-policies"}, "data": {"policies.yaml": yaml}});
    api.patch(
        "flink-operator-policies",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
}

async fn annotation(client: &kube::Client) -> Value {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = api.get("flink-operator-policies").await.unwrap();
    cm.metadata
        .annotations
        .and_then(|a| a.get(STATUS_ANNOTATION).cloned())
        .map_or(Value::Null, |t| serde_json::from_str(&t).unwrap())
}

async fn scale_tms(client: &kube::Client, namespace: &str, replicas: i64) {
    let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"spec": {"taskManager": {"replicas": replicas}}});
    api.patch("orders", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_reload_live_a_broken_plugin_keeps_the_old_one_and_other_tenants_are_untouched() {
    let (server, client) = common::stand_in(&["team-a", "team-b"]).await;

    let dir = std::env::temp_dir().join(format!("policy-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let connectors = plugin_bytes("connector-pod-template");
    std::fs::write(dir.join("connectors.wasm"), &connectors).unwrap();
    let pin = Digest::of(&connectors).0;
    set_policies(&client, &policies("connectors", &pin, "v1")).await;

    let mut settings = Settings::default();
    settings.policies.namespace = "default".into();
    settings.policies.plugin_dir = Some(PathBuf::from(&dir));
    settings.intervals.progress = Duration::from_secs(1);
    let ctx: Arc<Context> = Context::new(client.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));

    // The first activation, then both tenants' deployments.
    eventually("the first activation", async || {
        ctx.policies
            .active()
            .binding_for("team-a", &BTreeMap::new(), ExtensionPoint::PodTemplate)
    })
    .await;
    for namespace in ["team-a", "team-b"] {
        let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), namespace);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(deployment(namespace)).unwrap(),
        )
        .await
        .unwrap();
    }
    // A native-mode cluster: Flink creates its TaskManager pods from a template file in the
    // ConfigMap, which goes through the plugin as well.
    let mut native = deployment("team-a");
    native["metadata"]["name"] = json!("native");
    native["spec"]["mode"] = json!("native");
    native["spec"]["serviceAccount"] = json!("flink");
    let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), "team-a");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(native).unwrap(),
    )
    .await
    .unwrap();
    let file = eventually("the native TaskManager pod template", async || {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
        let cm = cms.get_opt("flink-config-native").await.ok()??;
        cm.data?.get("taskmanager-pod-template.yaml").cloned()
    })
    .await;
    let file: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(file["metadata"]["labels"]["policy"], "v1", "{file:#}");
    assert_eq!(
        file["spec"]["initContainers"][0]["name"], "connector-kafka",
        "{file:#}"
    );

    let a = eventually("team-a's TaskManagers", async || {
        tm_template(&client, "team-a").await
    })
    .await;
    let b = eventually("team-b's TaskManagers", async || {
        tm_template(&client, "team-b").await
    })
    .await;
    assert_eq!(a["metadata"]["labels"]["policy"], "v1", "{a:#}");
    assert_eq!(
        a["spec"]["initContainers"][0]["name"], "connector-kafka",
        "{a:#}"
    );
    assert!(
        b["metadata"]["labels"].get("policy").is_none(),
        "team-b has no plugin: {b:#}"
    );
    assert!(b["spec"].get("initContainers").is_none(), "{b:#}");
    let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), "team-a");
    let status = eventually("the policy in team-a's status", async || {
        let d = api.get("orders").await.ok()?;
        d.status.and_then(|s| s.policies.first().cloned())
    })
    .await;
    assert_eq!(
        (
            status.plugin.as_str(),
            status.digest.as_str(),
            status.outcome.as_str()
        ),
        ("connectors", pin.as_str(), "Applied")
    );

    // Edit the ConfigMap: the next decision uses the new config, without a restart.
    let edited = Instant::now();
    set_policies(&client, &policies("connectors", &pin, "v2")).await;
    eventually("the edited binding", async || {
        let binding = ctx.policies.active().binding_for(
            "team-a",
            &BTreeMap::new(),
            ExtensionPoint::PodTemplate,
        )?;
        (binding.config["labels"]["policy"] == "v2").then_some(())
    })
    .await;
    eprintln!("a ConfigMap edit was active after {:?}", edited.elapsed());
    scale_tms(&client, "team-a", 2).await;
    eventually("team-a's TaskManagers under the new config", async || {
        let t = tm_template(&client, "team-a").await?;
        (t["metadata"]["labels"]["policy"] == "v2").then_some(())
    })
    .await;

    // A broken new plugin (another extension point's, pinned correctly): the old one stays.
    let hostile = plugin_bytes("hostile-plugin");
    std::fs::write(dir.join("hostile.wasm"), &hostile).unwrap();
    set_policies(&client, &policies("hostile", &Digest::of(&hostile).0, "v3")).await;
    let report = eventually("the rejection report", async || {
        let report = annotation(&client).await;
        report["bindings"][0]["error"].as_str().map(str::to_string)
    })
    .await;
    assert!(
        report.contains("implements scaling-policy, but is bound as pod-template"),
        "{report}"
    );
    assert!(
        report.contains(&format!("still using connectors {pin}")),
        "{report}"
    );
    let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), "team-a");
    scale_tms(&client, "team-a", 3).await;
    let shown = eventually("the rejection in team-a's status", async || {
        let status = api.get("orders").await.ok()?.status?;
        let record = status
            .policies
            .into_iter()
            .find(|p| p.extension_point == "pod-template")?;
        record
            .message
            .filter(|m| m.contains("a newer version of this binding was rejected"))
    })
    .await;
    assert!(shown.contains("implements scaling-policy"), "{shown}");
    let kept = ctx
        .policies
        .active()
        .binding_for("team-a", &BTreeMap::new(), ExtensionPoint::PodTemplate)
        .unwrap();
    assert_eq!(kept.plugin.digest.0, pin);
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    let rejected = eventually("a PolicyRejected event", async || {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("PolicyRejected"))
    })
    .await;
    assert!(
        rejected
            .note
            .unwrap_or_default()
            .contains("tenant team-a pod-template plugin hostile")
    );
    eventually(
        "team-a's TaskManagers still under the last good plugin",
        async || {
            let api: Api<Deployment> = Api::namespaced(client.clone(), "team-a");
            let tm = api.get_opt("orders-taskmanager").await.ok()??;
            let t = serde_json::to_value(tm.spec?).ok()?;
            (t["replicas"] == 3 && t["template"]["metadata"]["labels"]["policy"] == "v2")
                .then_some(())
        },
    )
    .await;

    // A plugin file replaced in place (no new pin): noticed through the directory watch.
    set_policies(&client, &policies("connectors", &pin, "v2")).await;
    eventually("the good binding again", async || {
        let report = annotation(&client).await;
        report["bindings"][0]["error"].is_null().then_some(())
    })
    .await;
    let replaced = Instant::now();
    std::fs::write(
        dir.join("connectors.wasm"),
        plugin_bytes("maintenance-window-upgrade"),
    )
    .unwrap();
    let report = eventually("the replaced file's report", async || {
        let report = annotation(&client).await;
        report["bindings"][0]["error"].as_str().map(str::to_string)
    })
    .await;
    eprintln!(
        "a replaced plugin file was reported after {:?}",
        replaced.elapsed()
    );
    assert!(report.contains("but the binding pins"), "{report}");

    // An upgrade-strategy plugin: a parallelism change outside the maintenance window waits,
    // with the reason in the status, and the deployed cluster is left as it is.
    let windows = plugin_bytes("maintenance-window-upgrade");
    std::fs::write(dir.join("windows.wasm"), &windows).unwrap();
    let hour = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
        + 6)
        % 24;
    let upgrade = format!(
        "  upgrade:\n    plugin: windows\n    sha256: \"{}\"\n    config: {{windows: [{{from: \"{hour:02}:00\", to: \"{:02}:00\"}}]}}\n",
        Digest::of(&windows).0,
        (hour + 1) % 24
    );
    set_policies(&client, &(policies("connectors", &pin, "v2") + &upgrade)).await;
    eventually("the upgrade binding", async || {
        ctx.policies
            .active()
            .binding_for("team-a", &BTreeMap::new(), ExtensionPoint::Upgrade)
    })
    .await;
    let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), "team-a");
    api.patch(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"job": {"parallelism": 4}}})),
    )
    .await
    .unwrap();
    let waiting = eventually("the upgrade strategy's verdict in status", async || {
        let status = api.get("orders").await.ok()?.status?;
        status
            .policies
            .into_iter()
            .find(|p| p.extension_point == "upgrade-strategy")
    })
    .await;
    assert_eq!(
        (waiting.plugin.as_str(), waiting.outcome.as_str()),
        ("windows", "Applied")
    );
    let message = waiting.message.unwrap_or_default();
    assert!(
        message.starts_with("waiting until ") && message.contains(&format!("T{hour:02}:00:00")),
        "{message}"
    );
    let status = api.get("orders").await.unwrap().status.unwrap();
    assert!(status.upgrade.is_none(), "no upgrade started");
    assert!(
        status
            .reconciliation_status
            .unwrap()
            .last_reconciled_spec
            .unwrap()
            .contains("\"parallelism\":2")
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), operator).await;
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
