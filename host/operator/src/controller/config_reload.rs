//! Keeps the operator ConfigMap applied: read once before the controllers start, then watched;
//! a valid change is swapped in at once (the next reconcile of every resource uses it), an
//! invalid one keeps the last good settings and says why, in the ConfigMap's status
//! annotation, a Warning event on it and the log. A deleted ConfigMap means the command line's
//! settings again.

use super::Context;
use crate::operator_config::{self, Dynamic, Loaded};
use crate::reconcile::{Note, Reason};
use crate::settings::Settings;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::watcher;
use serde_json::json;
use std::sync::Arc;

/// The annotation on the ConfigMap that reports the last reload.
pub const STATUS_ANNOTATION: &str = "flink-operator.io/config-status";

/// The settings to start with: the ConfigMap's start-only keys (watched namespaces, label
/// selector, parallelism, client and termination timeouts, leader election) over the command
/// line's; none when there is no ConfigMap. A ConfigMap that cannot be read or applied stops
/// the start with the reason (the pod restarts): starting without its keys could widen the
/// watched namespaces or run a replica without leader election beside others.
pub async fn at_start(client: &kube::Client, settings: Settings) -> Result<Settings, String> {
    let Some(name) = &settings.config_map else {
        return Ok(settings);
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &settings.policies.namespace);
    let data = match api.get_opt(name).await {
        Ok(found) => found.and_then(|cm| cm.data).unwrap_or_default(),
        Err(e) => return Err(format!("{name}: cannot be read: {e}")),
    };
    match operator_config::parse(&data, &Dynamic::from_settings(&settings)) {
        Ok(loaded) => loaded
            .at_start
            .apply(settings, crate::sharding::elector::replica_identity),
        Err(problems) => Err(format!("{name}: {}", problems.join("; "))),
    }
}

/// Reads the ConfigMap once (before the controllers start).
pub async fn load(ctx: &Context) {
    let Some(name) = &ctx.settings.config_map else {
        return;
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.policies.namespace);
    match api.get_opt(name).await {
        Ok(found) => apply(ctx, &api, found.as_ref()).await,
        Err(e) => {
            tracing::warn!(config_map = %name, error = %e, "cannot read the operator ConfigMap; the command line's settings apply")
        }
    }
}

/// Applies every change of the ConfigMap until `shutdown`.
pub async fn watch(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()>) {
    let Some(name) = ctx.settings.config_map.clone() else {
        return;
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.policies.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api.clone(), config));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = &mut shutdown => return,
        };
        match event {
            Some(Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm))) => {
                apply(&ctx, &api, Some(&cm)).await
            }
            Some(Ok(watcher::Event::Delete(_))) => apply(&ctx, &api, None).await,
            Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
            Some(Err(e)) => tracing::debug!(error = %e, "operator ConfigMap watch"),
            None => return,
        }
    }
}

async fn apply(ctx: &Context, api: &Api<ConfigMap>, config_map: Option<&ConfigMap>) {
    let data = config_map
        .and_then(|cm| cm.data.clone())
        .unwrap_or_default();
    let name = ctx.settings.config_map.as_deref().unwrap_or_default();
    let (status, notes) = match operator_config::parse(&data, &ctx.base_dynamic) {
        Ok(Loaded {
            dynamic,
            at_start,
            not_read,
        }) => {
            let restart_needed = at_start.restart_needed(&ctx.settings);
            let changed = *ctx.dynamic() != dynamic;
            if changed {
                tracing::info!(config_map = %name, "operator configuration applied");
                ctx.set_dynamic(dynamic);
            }
            let notes = if changed && config_map.is_some() {
                vec![Note::normal(
                    Reason::ConfigReloaded,
                    "The operator configuration was applied",
                )]
            } else {
                Vec::new()
            };
            (
                if not_read.is_empty() {
                    json!({"applied": true, "restartNeeded": restart_needed})
                } else {
                    json!({"applied": true, "restartNeeded": restart_needed, "notRead": not_read})
                },
                notes,
            )
        }
        Err(problems) => {
            let message = format!(
                "The operator configuration was not applied; the last good one stays in effect: {}",
                problems.join("; ")
            );
            tracing::warn!(config_map = %name, %message);
            (
                json!({"applied": false, "problems": problems}),
                vec![Note::warning(Reason::ConfigInvalid, message)],
            )
        }
    };
    let Some(config_map) = config_map else {
        return;
    };
    let text = status.to_string();
    let current = config_map
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STATUS_ANNOTATION));
    // Our own annotation write comes back as a change: it is not reported twice.
    if current == Some(&text) {
        return;
    }
    super::act::report_on_config_map(
        api,
        &ctx.recorder,
        config_map,
        STATUS_ANNOTATION,
        &text,
        &notes,
    )
    .await;
}
