//! The controllers: kube-runtime drives a reconcile per FlinkDeployment, FlinkSessionJob and
//! FlinkStateSnapshot (and again when an owned Deployment changes): observe → decide → act.

mod act;
mod autoscaling;
mod flink_clients;
mod jar;
mod observe;
pub mod policies;
pub mod status_patch;

use crate::reconcile::{deployment, session_job, snapshot};
use crate::settings::Settings;
use flink_api::{FlinkDeployment, FlinkSessionJob, FlinkStateSnapshot};
pub use flink_clients::FlinkClients;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Instrument;

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub flink: FlinkClients,
    pub recorder: Recorder,
    /// Consecutive failures per resource, for the back-off.
    failures: Mutex<HashMap<String, u32>>,
    /// Reconciles done, for metrics and tests.
    pub reconciles: std::sync::atomic::AtomicU64,
    /// Tenant policy plugins.
    pub policies: Arc<policies::Policies>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Flink(#[from] flink_rest::FlinkError),
    #[error("{0}")]
    Jar(String),
}

impl Context {
    pub fn new(client: Client, settings: Settings) -> Arc<Self> {
        let reporter = Reporter {
            controller: settings.field_manager.clone(),
            instance: std::env::var("POD_NAME").ok(),
        };
        // Creating a Wasm engine fails only when the machine cannot map executable memory.
        let policies = policies::Policies::new(settings.policies.clone())
            .unwrap_or_else(|e| panic!("the policy plugin host cannot start: {e}"));
        Arc::new(Self {
            policies,
            recorder: Recorder::new(client.clone(), reporter),
            flink: FlinkClients::new(settings.flink_client.clone()),
            client,
            settings,
            failures: Mutex::new(HashMap::new()),
            reconciles: Default::default(),
        })
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// The back-off after another failure: doubling from the initial interval up to the max.
    fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        let factor = 2u32.saturating_pow(count.saturating_sub(1).min(16));
        self.settings
            .retry_initial
            .saturating_mul(factor)
            .min(self.settings.retry_max)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn key<K: kube::Resource<DynamicType = ()>>(resource: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&Default::default()),
        resource.namespace().unwrap_or_default(),
        resource.name_any()
    )
}

async fn reconcile_deployment(
    resource: Arc<FlinkDeployment>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let span = tracing::info_span!("reconcile", resource = %key(&*resource));
    async {
        let observed = observe::deployment(&ctx, &resource).await?;
        let now = now_ms();
        let autoscaler = if resource.metadata.deletion_timestamp.is_none() {
            autoscaling::step(&ctx, &resource, &observed, now).await
        } else {
            None
        };
        let upgrade_policy = ctx
            .policies
            .upgrade_verdict(&resource, &observed, now)
            .await;
        let decide_ctx = deployment::DecideContext {
            now_ms: now,
            intervals: &ctx.settings.intervals,
            defaults: &ctx.settings.flink_defaults,
            upgrade_policy: upgrade_policy.as_ref(),
            autoscaler: autoscaler.as_ref(),
        };
        let plan = deployment::decide(&resource, &observed, &decide_ctx);
        let plan = ctx
            .policies
            .pod_templates(&resource, plan, decide_ctx.now_ms)
            .await;
        let status = resource.status.as_ref();
        carry_out(&ctx, &*resource, status, plan, deployment::FINALIZER).await
    }
    .instrument(span)
    .await
}

async fn reconcile_session_job(
    resource: Arc<FlinkSessionJob>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let span = tracing::info_span!("reconcile", resource = %key(&*resource));
    async {
        let observed = observe::session_job(&ctx, &resource).await?;
        let decide_ctx = session_job::SessionDecideContext {
            now_ms: now_ms(),
            intervals: &ctx.settings.intervals,
            validation: &ctx.settings.validation,
        };
        let plan = session_job::decide(&resource, &observed, &decide_ctx);
        let status = resource.status.as_ref();
        carry_out(&ctx, &*resource, status, plan, session_job::FINALIZER).await
    }
    .instrument(span)
    .await
}

async fn reconcile_snapshot(
    resource: Arc<FlinkStateSnapshot>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let span = tracing::info_span!("reconcile", resource = %key(&*resource));
    async {
        let observed = observe::snapshot(&ctx, &resource).await?;
        let plan = snapshot::decide(&resource, &observed, now_ms(), &ctx.settings.intervals);
        let status = resource.status.as_ref();
        carry_out(&ctx, &*resource, status, plan, snapshot::FINALIZER).await
    }
    .instrument(span)
    .await
}

/// Acts on a plan and turns it into kube-runtime's next action; counts the reconcile.
async fn carry_out<K, S>(
    ctx: &Context,
    resource: &K,
    stored: Option<&S>,
    plan: crate::reconcile::Plan<S>,
    finalizer: &str,
) -> Result<Action, ReconcileError>
where
    K: act::FlinkResource,
    S: serde::Serialize,
{
    ctx.reconciles
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let requeue = plan.requeue;
    act::act(ctx, resource, stored, plan, finalizer).await?;
    ctx.succeeded(&key(resource));
    Ok(Action::requeue(requeue))
}

fn error_policy<K: kube::Resource<DynamicType = ()>>(
    resource: Arc<K>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    let delay = ctx.failed(&key(&*resource));
    tracing::warn!(resource = %key(&*resource), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The namespaces to watch: one API per watched namespace, or all.
fn apis<K>(client: &Client, settings: &Settings) -> Vec<Api<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    if settings.watch_namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        settings
            .watch_namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    }
}

/// Runs the controllers (FlinkDeployment, FlinkSessionJob, FlinkStateSnapshot) until `shutdown`
/// resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let settings = &ctx.settings;
    let mut watch = watcher::Config::default();
    if let Some(selector) = &settings.label_selector {
        watch = watch.labels(selector);
    }
    let owned =
        watcher::Config::default().labels("type in (flink-standalone,flink-native-kubernetes)");
    let config = controller::Config::default().concurrency(settings.concurrency);
    let shutdown = futures::future::Shared::clone(&futures::FutureExt::shared(shutdown));
    let mut tasks = vec![tokio::spawn(ctx.policies.clone().watch(
        ctx.client.clone(),
        ctx.recorder.clone(),
        shutdown.clone(),
    ))];
    for (deployments, owned_api) in apis::<FlinkDeployment>(&ctx.client, settings)
        .into_iter()
        .zip(apis::<Deployment>(&ctx.client, settings))
    {
        let controller = Controller::new(deployments, watch.clone())
            .owns(owned_api, owned.clone())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile_deployment, error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "FlinkDeployment controller");
                }
            });
        tasks.push(tokio::spawn(controller));
    }
    for jobs in apis::<FlinkSessionJob>(&ctx.client, settings) {
        let controller = Controller::new(jobs, watch.clone())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile_session_job, error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "FlinkSessionJob controller");
                }
            });
        tasks.push(tokio::spawn(controller));
    }
    for snapshots in apis::<FlinkStateSnapshot>(&ctx.client, settings) {
        let controller = Controller::new(snapshots, watch.clone())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile_snapshot, error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "FlinkStateSnapshot controller");
                }
            });
        tasks.push(tokio::spawn(controller));
    }
    for task in tasks {
        let _ = task.await;
    }
}
