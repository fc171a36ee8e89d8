//! kube-rs against the stand-in: the API semantics the operator relies on.

use flink_api::{FlinkDeployment, FlinkDeploymentStatus};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use sandbox::{ApiServer, ServerHandle};
use serde_json::json;
use std::time::Duration;

async fn start() -> (ServerHandle, Client) {
    start_with(ApiServer::default()).await
}

async fn start_with(server: ApiServer) -> (ServerHandle, Client) {
    let handle = server
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("stand-in starts");
    let config = Config::new(handle.url().parse().unwrap());
    let client = Client::try_from(config).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in flink_api::crd::all() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD is accepted");
    }
    (handle, client)
}

fn deployment(name: &str) -> FlinkDeployment {
    serde_json::from_value(json!({
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
        "metadata": {"name": name, "labels": {"team": "a"}},
        "spec": {"flinkVersion": "v2_3", "image": "flink:2.3", "job": {"jarURI": "local:///j.jar", "parallelism": 2},
                 "taskManager": {"replicas": 1}}
    }))
    .unwrap()
}

#[tokio::test]
async fn create_get_list_with_selectors_and_pages() {
    let (_server, client) = start().await;
    let api: Api<FlinkDeployment> = Api::namespaced(client, "default");
    for i in 0..5 {
        let mut d = deployment(&format!("d{i}"));
        if i % 2 == 1 {
            d.metadata.labels = Some([("team".to_string(), "b".to_string())].into());
        }
        api.create(&PostParams::default(), &d).await.unwrap();
    }
    let created = api.get("d0").await.unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let team_b = api
        .list(&ListParams::default().labels("team=b"))
        .await
        .unwrap();
    assert_eq!(
        team_b
            .items
            .iter()
            .map(|d| d.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["d1", "d3"]
    );
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=d4"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rest = api
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    let duplicate = api
        .create(&PostParams::default(), &deployment("d0"))
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{duplicate:?}"
    );
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict_and_generation_counts_spec_changes() {
    let (_server, client) = start().await;
    let api: Api<FlinkDeployment> = Api::namespaced(client, "default");
    let created = api
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    let mut changed = created.clone();
    changed.spec.job.as_mut().unwrap().parallelism = Some(4);
    let updated = api
        .replace("d", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(updated.metadata.generation, Some(2));
    let stale = api
        .replace("d", &PostParams::default(), &changed)
        .await
        .unwrap_err();
    assert!(
        matches!(stale, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{stale:?}"
    );

    // Status goes through the status subresource only, and does not bump generation.
    let status =
        json!({"status": {"lifecycleState": "DEPLOYED", "jobStatus": {"state": "RUNNING"}}});
    let after = api
        .patch_status("d", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    assert_eq!(
        after.status.as_ref().and_then(|s| s.lifecycle_state),
        Some(flink_api::ResourceLifecycleState::Deployed)
    );
    let spec_write =
        json!({"spec": {"image": "flink:2.4"}, "status": {"lifecycleState": "FAILED"}});
    let after = api
        .patch("d", &PatchParams::default(), &Patch::Merge(&spec_write))
        .await
        .unwrap();
    assert_eq!(
        after.status.and_then(|s| s.lifecycle_state),
        Some(flink_api::ResourceLifecycleState::Deployed)
    );
    assert_eq!(after.metadata.generation, Some(3));

    // A write that changes nothing changes no resource version.
    let same = api
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"image": "flink:2.4"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        after.metadata.resource_version
    );
}

#[tokio::test]
async fn custom_resources_are_validated_against_the_crd_schema() {
    let (_server, client) = start().await;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &ApiResource::erase::<FlinkDeployment>(&()),
    );
    let bad: DynamicObject = serde_json::from_value(json!({"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
        "metadata": {"name": "bad"}, "spec": {"job": {"parallelism": "two", "upgradeMode": "sometimes"}}}))
    .unwrap();
    let err = api.create(&PostParams::default(), &bad).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("spec.job.parallelism"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("spec.job.upgradeMode"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_and_old_ones_are_gone() {
    let (_server, client) = start_with(ApiServer::default().with_history_limit(20)).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "c0"}})).unwrap(),
        )
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c1"}})).unwrap(),
    )
    .await
    .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("c1")),
        other => panic!("expected c1 added, got {other:?}"),
    }
    for i in 2..40 {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let event = api
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed()
        .try_next()
        .await
        .unwrap();
    assert!(
        matches!(event, Some(WatchEvent::Error(ref e)) if e.code == 410),
        "{event:?}"
    );
}

#[tokio::test]
async fn the_watcher_relists_after_410_and_keeps_seeing_changes() {
    let (server, client) = start_with(ApiServer::default().with_history_limit(5)).await;
    let api: Api<FlinkDeployment> = Api::namespaced(client.clone(), "default");
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    // Short watches without bookmarks: each reconnect resumes from the last version it saw.
    let config = watcher::Config::default().timeout(1).disable_bookmarks();
    let mut seen = watcher(api.clone(), config).applied_objects().boxed();
    api.create(&PostParams::default(), &deployment("w"))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), seen.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("w"));
    let before = server.with_store(|s| s.revision());
    // Push the watcher's resume point out of the 5-event history.
    for i in 0..20 {
        maps.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("noise{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    assert!(
        server.with_store(|s| s.events_since(before).is_err()),
        "the resume point must be gone"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"image": "flink:2.4"}})),
    )
    .await
    .unwrap();
    let mut gone = 0;
    let latest = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match seen.next().await.expect("the watcher keeps going") {
                Ok(d) if d.spec.image.as_deref() == Some("flink:2.4") => return d,
                Ok(_) => {}
                // kube surfaces the 410 once, then relists on its own.
                Err(watcher::Error::WatchError(status)) if status.code == 410 => gone += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await
    .expect("the watcher relists after 410 Gone and sees the change");
    assert_eq!(latest.metadata.name.as_deref(), Some("w"));
    assert!(
        gone >= 1,
        "the resume point was gone, so the watcher must have met a 410"
    );
}

#[tokio::test]
async fn server_side_apply_owns_fields_conflicts_and_removes_what_is_no_longer_applied() {
    let (_server, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let a = PatchParams::apply("manager-a");
    let applied = api
        .patch("cm", &a, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"x": "1", "y": "2"}})))
        .await
        .unwrap();
    let managed = applied.metadata.managed_fields.clone().unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("manager-a"));

    let b = PatchParams::apply("manager-b");
    let conflict = api
        .patch("cm", &b, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"x": "other"}})))
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, kube::Error::Api(ref s) if s.code == 409 && s.message.contains("manager-a")),
        "{conflict:?}"
    );

    // Same value: shared ownership, no conflict.
    api.patch("cm", &b, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"y": "2"}})))
        .await
        .unwrap();
    // Forced: b takes x.
    let forced = api
        .patch("cm", &b.clone().force(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"x": "b", "y": "2"}})))
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["x"], "b");

    // a stops applying y: b still owns y, so it stays; a stops applying x: b owns it.
    let after = api
        .patch("cm", &a, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"z": "3"}})))
        .await
        .unwrap();
    assert_eq!(
        after.data.as_ref().unwrap().get("y").map(String::as_str),
        Some("2")
    );
    // b stops applying everything but x: y is owned by nobody now and goes.
    let after = api
        .patch("cm", &b.clone().force(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"x": "b"}})))
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(
        (
            data.get("x").map(String::as_str),
            data.get("y"),
            data.get("z").map(String::as_str)
        ),
        (Some("b"), None, Some("3"))
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_server, client) = start().await;
    let api: Api<FlinkDeployment> = Api::namespaced(client, "default");
    let mut d = deployment("f");
    d.metadata.finalizers = Some(vec!["flinkdeployments.flink.apache.org/finalizer".into()]);
    api.create(&PostParams::default(), &d).await.unwrap();
    api.delete("f", &DeleteParams::default()).await.unwrap();
    let deleting = api.get("f").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let gone = api.get("f").await.unwrap_err();
    assert!(
        matches!(gone, kube::Error::Api(ref s) if s.code == 404),
        "{gone:?}"
    );
}

#[tokio::test]
async fn owned_objects_are_garbage_collected_in_background_and_foreground() {
    let (_server, client) = start().await;
    let deployments: Api<FlinkDeployment> = Api::namespaced(client.clone(), "default");
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    for (owner, policy) in [
        ("bg", DeleteParams::background()),
        ("fg", DeleteParams::foreground()),
    ] {
        let created = deployments
            .create(&PostParams::default(), &deployment(owner))
            .await
            .unwrap();
        let uid = created.metadata.uid.clone().unwrap();
        let mut dependent: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("{owner}-config"),
            "ownerReferences": [{"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "name": owner, "uid": uid, "blockOwnerDeletion": true}]}})).unwrap();
        if owner == "fg" {
            dependent.metadata.finalizers = Some(vec!["test/hold".into()]);
        }
        maps.create(&PostParams::default(), &dependent)
            .await
            .unwrap();
        deployments.delete(owner, &policy).await.unwrap();
    }
    assert!(
        maps.get("bg-config").await.is_err(),
        "background: dependent collected"
    );
    // Foreground: the owner waits for its dependent, which waits for its own finalizer.
    assert!(
        deployments
            .get("fg")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    assert!(
        maps.get("fg-config")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    maps.patch(
        "fg-config",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(maps.get("fg-config").await.is_err());
    assert!(
        deployments.get("fg").await.is_err(),
        "foreground: owner goes once its dependents are gone"
    );
    // Created after its owner went (a native JobManager's TaskManager pod racing the
    // deletion of its Deployment): accepted, then collected.
    let late: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "late-config",
        "ownerReferences": [{"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "name": "bg", "uid": "gone-uid", "blockOwnerDeletion": true}]}})).unwrap();
    maps.create(&PostParams::default(), &late).await.unwrap();
    assert!(
        maps.get("late-config").await.is_err(),
        "a dependent of a gone owner is collected"
    );
}

#[tokio::test]
async fn scale_subresource_and_dry_run() {
    let (_server, client) = start().await;
    let api: Api<FlinkDeployment> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &deployment("s"))
        .await
        .unwrap();
    api.patch_status(
        "s",
        &PatchParams::default(),
        &Patch::Merge(
            &json!({"status": {"taskManager": {"replicas": 1, "labelSelector": "app=s"}}}),
        ),
    )
    .await
    .unwrap();
    let scale = api.get_scale("s").await.unwrap();
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    assert_eq!(
        scale.status.map(|s| s.selector),
        Some(Some("app=s".to_string()))
    );
    api.patch_scale(
        "s",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    assert_eq!(
        api.get("s")
            .await
            .unwrap()
            .spec
            .task_manager
            .unwrap()
            .replicas,
        Some(3)
    );

    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&dry, &deployment("dry")).await.unwrap();
    assert!(api.get("dry").await.is_err());
}

#[tokio::test]
async fn a_controller_reconciles_against_the_stand_in() {
    use kube::runtime::controller::{Action, Controller};
    use std::sync::Arc;
    let (_server, client) = start().await;
    let api: Api<FlinkDeployment> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &deployment("c"))
        .await
        .unwrap();
    async fn reconcile(
        d: Arc<FlinkDeployment>,
        api: Arc<Api<FlinkDeployment>>,
    ) -> Result<Action, kube::Error> {
        let status = FlinkDeploymentStatus {
            observed_generation: d.metadata.generation,
            ..Default::default()
        };
        api.patch_status(
            d.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await?;
        Ok(Action::await_change())
    }
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            Arc::new(api.clone()),
        )
        .take(1)
        .collect::<Vec<_>>();
    let results = tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("controller reconciles");
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(
        api.get_status("c")
            .await
            .unwrap()
            .status
            .unwrap()
            .observed_generation,
        Some(1)
    );
}

/// As on a real cluster: a pod bound to a node is deleted gracefully (marked, then removed by
/// its kubelet with grace 0, which the process runtime does once its processes stopped), so
/// "no pods" means no container runs; an unbound pod goes at once.
#[tokio::test]
async fn a_bound_pod_is_deleted_gracefully_and_an_unbound_one_at_once() {
    use k8s_openapi::api::core::v1::Pod;
    let (_server, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for (name, node) in [("bound", Some("node-1")), ("unbound", None)] {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "flink:2.3"}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    assert!(
        pods.get("unbound").await.is_err(),
        "an unbound pod goes at once"
    );
    let marked = pods
        .get("bound")
        .await
        .expect("still there until its kubelet is done");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete(
        "bound",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(pods.get("bound").await.is_err(), "removed with grace 0");
}
