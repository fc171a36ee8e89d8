//! The operator ConfigMap in a running operator (against the API stand-in, no Flink): read at
//! start, reloaded on change without a restart, per-namespace defaults in what is rendered, an
//! invalid change kept out with the reason in the annotation and an event.

mod common;

use common::{create_deployment, eventually};
use flink_operator::controller::config_reload::STATUS_ANNOTATION;
use flink_operator::controller::{self, Context};
use flink_operator::settings::Settings;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

async fn set_config(client: &kube::Client, data: Value) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "flink-system");
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flink-operator-config"}, "data": data});
    api.patch(
        "flink-operator-config",
        &PatchParams::apply("test").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
}

async fn status(client: &kube::Client) -> Option<Value> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "flink-system");
    let cm = api.get("flink-operator-config").await.ok()?;
    let text = cm.metadata.annotations?.get(STATUS_ANNOTATION)?.clone();
    serde_json::from_str(&text).ok()
}

/// The slots the rendered Flink configuration of `name` gives each TaskManager.
async fn rendered_slots(client: &kube::Client, namespace: &str, name: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = api.get_opt(&format!("flink-config-{name}")).await.ok()??;
    let data = cm.data?;
    let text = data
        .get("config.yaml")
        .or_else(|| data.get("flink-conf.yaml"))?;
    let config: std::collections::BTreeMap<String, String> = serde_saphyr::from_str(text).ok()?;
    config.get("taskmanager.numberOfTaskSlots").cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_config_map_is_read_at_start_reloaded_live_and_refused_when_invalid() {
    let (server, client) = common::stand_in(&["flink-system", "team-a", "team-b", "team-c"]).await;
    set_config(
        &client,
        json!({
            "config.yaml": "kubernetes.operator.reconcile.interval: 30 s\ntaskmanager.numberOfTaskSlots: 3\nkubernetes.operator.watched.namespaces: team-a,team-b\n",
            "config-team-a.yaml": "taskmanager.numberOfTaskSlots: 5\n"
        }),
    )
    .await;

    let mut settings = Settings::default();
    settings.policies.namespace = "flink-system".into();
    settings.config_map = Some("flink-operator-config".into());
    // The start-only keys are read before the controllers are built, as `run` does.
    let settings = controller::config_reload::at_start(&client, settings)
        .await
        .unwrap();
    assert_eq!(settings.watch_namespaces, ["team-a", "team-b"]);
    let ctx: Arc<Context> = Context::new(client.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));

    // Read at start: the interval, the defaults and the watched namespaces, nothing left for
    // a restart.
    let applied = eventually("the first status", async || status(&client).await).await;
    assert_eq!(applied, json!({"applied": true, "restartNeeded": []}));
    assert_eq!(ctx.dynamic().intervals.reconcile, Duration::from_secs(30));
    create_deployment(&client, "team-a", "orders").await;
    create_deployment(&client, "team-c", "unwatched").await;
    create_deployment(&client, "team-b", "billing").await;
    let slots = eventually("team-a's render", async || {
        rendered_slots(&client, "team-a", "orders").await
    })
    .await;
    assert_eq!(
        slots, "5",
        "the namespace's defaults win over the global ones"
    );
    let slots = eventually("team-b's render", async || {
        rendered_slots(&client, "team-b", "billing").await
    })
    .await;
    assert_eq!(slots, "3");
    assert_eq!(
        rendered_slots(&client, "team-c", "unwatched").await,
        None,
        "a namespace not watched is not reconciled"
    );

    // A change applies without a restart, and the next new deployment renders with it.
    set_config(
        &client,
        json!({"config.yaml": "kubernetes.operator.reconcile.interval: 20 s\ntaskmanager.numberOfTaskSlots: 4\nkubernetes.operator.watched.namespaces: team-a,team-b,team-c\n"}),
    )
    .await;
    eventually("the reload", async || {
        (ctx.dynamic().intervals.reconcile == Duration::from_secs(20)).then_some(())
    })
    .await;
    create_deployment(&client, "team-b", "ledger").await;
    let slots = eventually("the new render", async || {
        rendered_slots(&client, "team-b", "ledger").await
    })
    .await;
    assert_eq!(slots, "4");
    let reloaded = eventually("the reload's status", async || {
        status(&client)
            .await
            .filter(|s| s["restartNeeded"] != json!([]))
    })
    .await;
    assert_eq!(
        reloaded,
        json!({"applied": true, "restartNeeded": ["kubernetes.operator.watched.namespaces"]}),
        "a changed start-only key waits for a restart, and says so"
    );

    // An invalid change keeps the last good settings and says why.
    set_config(
        &client,
        json!({"config.yaml": "kubernetes.operator.reconcile.interval: soon\ntaskmanager.numberOfTaskSlots: 8\n"}),
    )
    .await;
    let refused = eventually("the refusal", async || {
        status(&client).await.filter(|s| s["applied"] == false)
    })
    .await;
    let problem = refused["problems"][0].as_str().unwrap();
    assert!(
        problem.starts_with(
            "config.yaml: kubernetes.operator.reconcile.interval: \"soon\" is not a duration"
        ),
        "{problem}"
    );
    assert_eq!(ctx.dynamic().intervals.reconcile, Duration::from_secs(20));
    assert_eq!(
        ctx.dynamic().flink_defaults["taskmanager.numberOfTaskSlots"],
        "4"
    );
    let reasons = eventually("the Warning event", async || {
        server.with_store(|s| {
            let rt = s.resource_type("events.k8s.io", "v1", "events").cloned()?;
            let (events, _) = s.list(&rt, &Default::default()).ok()?;
            let reasons: Vec<String> = events
                .iter()
                .filter(|e| e.pointer("/regarding/name") == Some(&json!("flink-operator-config")))
                .filter_map(|e| e.get("reason").and_then(Value::as_str).map(String::from))
                .collect();
            reasons
                .contains(&"ConfigInvalid".to_string())
                .then_some(reasons)
        })
    })
    .await;
    assert!(
        reasons.contains(&"ConfigReloaded".to_string()),
        "{reasons:?}"
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), operator)
        .await
        .unwrap()
        .unwrap();
    server.shutdown().await;
}
