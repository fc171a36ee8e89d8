//! Hostile (docs/security.md): what two replicas, or a decision made from an older copy of a
//! resource, could do to its write-ahead record; and what the operator keeps per resource once
//! the resource is gone.

mod common;

use common::{create_deployment, eventually};
use flink_operator::controller::{self, Context, act};
use flink_operator::reconcile::{Intervals, Plan};
use flink_operator::settings::Settings;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The copy of `orders` a decision was made from, after another replica recorded its newer
/// intent; and the operator (a context of this replica) about to act on it.
async fn stale_copy(
    client: &kube::Client,
) -> (
    Api<flink_api::FlinkDeployment>,
    flink_api::FlinkDeployment,
    std::sync::Arc<Context>,
) {
    create_deployment(client, "team-a", "orders").await;
    let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), "team-a");
    let stale = api.get("orders").await.unwrap();
    api.patch_status(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"error": "the newer record"}})),
    )
    .await
    .unwrap();
    (
        api,
        stale,
        Context::new(client.clone(), Settings::default()),
    )
}

/// Acts on `plan` as decided from `stale`.
async fn act_on(
    ctx: &Context,
    stale: &flink_api::FlinkDeployment,
    plan: Plan<flink_api::FlinkDeploymentStatus>,
) -> Result<(), controller::ReconcileError> {
    act::act(
        ctx,
        stale,
        stale.status.as_ref(),
        plan,
        flink_operator::reconcile::deployment::FINALIZER,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_made_from_an_older_copy_writes_nothing() {
    let (_server, client) = common::stand_in(&["team-a"]).await;
    let (api, stale, ctx) = stale_copy(&client).await;
    let mut status = stale.status.clone().unwrap_or_default();
    status.error = Some("a stale decision".into());
    let plan = Plan {
        intent: Some(status.clone()),
        actions: vec![],
        status,
        notes: vec![],
        requeue: Intervals::default().reconcile,
    };
    let refused = act_on(&ctx, &stale, plan).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.is_conflict()),
        "{refused:?}"
    );
    let stored = api.get("orders").await.unwrap();
    assert_eq!(
        stored.status.and_then(|s| s.error).as_deref(),
        Some("the newer record")
    );
}

/// A plan without an intent still acts only if the resource is where it was decided from: a
/// stale one deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_plan_without_an_intent_does_not_act() {
    let (_server, client) = common::stand_in(&["team-a"]).await;
    let snapshots: Api<flink_api::FlinkStateSnapshot> = Api::namespaced(client.clone(), "team-a");
    let (_api, stale, ctx) = stale_copy(&client).await;
    snapshots
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkStateSnapshot",
                "metadata": {"name": "keep-me"},
                "spec": {"jobReference": {"kind": "FlinkDeployment", "name": "orders"}, "checkpoint": {}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let plan = Plan {
        intent: None,
        actions: vec![flink_operator::reconcile::Effect::DeleteSnapshot {
            name: "keep-me".into(),
        }],
        status: stale.status.clone().unwrap_or_default(),
        notes: vec![],
        requeue: Intervals::default().reconcile,
    };
    let refused = act_on(&ctx, &stale, plan).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.is_conflict()),
        "{refused:?}"
    );
    assert!(
        snapshots.get_opt("keep-me").await.unwrap().is_some(),
        "nothing deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_kept_of_a_resource_once_it_is_gone() {
    let (_server, client) = common::stand_in(&["team-a"]).await;
    let mut settings = Settings::default();
    settings.intervals.reconcile = std::time::Duration::from_secs(1);
    settings.intervals.progress = std::time::Duration::from_millis(500);
    let ctx = Context::new(client.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    for name in ["orders", "billing"] {
        create_deployment(&client, "team-a", name).await;
    }
    eventually("the operator tracking both", async || {
        (ctx.per_resource_entries() >= 2).then_some(())
    })
    .await;
    let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), "team-a");
    for name in ["orders", "billing"] {
        api.delete(name, &Default::default()).await.unwrap();
    }
    eventually("both gone", async || {
        api.list(&Default::default())
            .await
            .ok()
            .filter(|l| l.items.is_empty())
            .map(|_| ())
    })
    .await;
    eventually("nothing kept of them", async || {
        (ctx.per_resource_entries() == 0).then_some(())
    })
    .await;
    let _ = stop.send(());
    let _ = task.await;
}
