//! The controllers: kube-runtime drives a reconcile per FlinkDeployment, FlinkSessionJob,
//! FlinkStateSnapshot and FlinkBlueGreenDeployment (and again when an owned Deployment or a
//! blue/green child changes): observe → decide → act.

pub mod act;
pub mod artifact;
mod autoscaling;
pub mod config_reload;
mod flink_clients;
mod observe;
pub mod policies;
pub mod rate_limit;
mod snapshot_files;
pub mod status_patch;

use crate::observability::endpoints::{self, Health};
use crate::observability::metrics::{PluginCollector, PluginSample};
use crate::observability::{Metrics, Seen};
use crate::operator_config::Dynamic;
use crate::reconcile::{blue_green, deployment, session_job, state_snapshot};
use crate::redact::Redactor;
use crate::settings::Settings;
use crate::sharding::{InFlight, Shards, Witnessed};
use flink_api::{FlinkBlueGreenDeployment, FlinkDeployment, FlinkSessionJob, FlinkStateSnapshot};
pub use flink_clients::FlinkClients;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use std::collections::{BTreeMap, HashMap};
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
    /// Each resource's reconciles in its current rate-limiter period.
    windows: Mutex<rate_limit::Windows>,
    /// What was reported of each application's job exceptions (`JobException` events).
    exceptions: Mutex<HashMap<String, crate::reconcile::job_exceptions::Reported>>,
    /// When this operator started (ms since the epoch).
    pub started_ms: i64,
    /// Reconciles done, for metrics and tests.
    pub reconciles: std::sync::atomic::AtomicU64,
    /// Tenant policy plugins.
    pub policies: Arc<policies::Policies>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// The shards this replica owns, when replicas share the work.
    pub shards: Option<Arc<Shards>>,
    /// Where the admission webhook listens, once it does.
    pub webhook: Arc<crate::webhook::Bound>,
    /// Fetches session jobs' jars (bounded, checked, never whole in memory).
    pub artifacts: artifact::Fetcher,
    /// What the command line set of what the operator ConfigMap can change.
    pub base_dynamic: Dynamic,
    /// What is in effect now: the ConfigMap's settings over `base_dynamic`.
    dynamic: std::sync::RwLock<Arc<Dynamic>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Flink(#[from] flink_rest::FlinkError),
    #[error("{0}")]
    Jar(String),
    /// An object the plan would write belongs to someone else.
    #[error("{0}")]
    NotOwned(String),
}

impl ReconcileError {
    /// A write refused because the resource changed since it was read (409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, ReconcileError::Kube(kube::Error::Api(e)) if e.code == 409)
    }
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
        let metrics = Arc::new(Metrics::new().with_collector(PluginCollector({
            let policies = Arc::downgrade(&policies);
            move || {
                policies
                    .upgrade()
                    .map(|p| plugin_samples(&p))
                    .unwrap_or_default()
            }
        })));
        let base_dynamic = Dynamic::from_settings(&settings);
        Arc::new(Self {
            policies,
            metrics,
            health: Arc::default(),
            webhook: Arc::default(),
            artifacts: artifact::Fetcher::new(settings.artifacts.clone()),
            base_dynamic: base_dynamic.clone(),
            dynamic: std::sync::RwLock::new(Arc::new(base_dynamic)),
            shards: settings
                .sharding
                .as_ref()
                .map(|s| Arc::new(Shards::new(s.shards))),
            recorder: Recorder::new(client.clone(), reporter),
            flink: FlinkClients::new(settings.flink_client.clone()),
            client,
            settings,
            failures: Mutex::new(HashMap::new()),
            windows: Mutex::default(),
            exceptions: Mutex::new(HashMap::new()),
            started_ms: now_ms(),
            reconciles: Default::default(),
        })
    }

    /// The settings in effect now (the operator ConfigMap's over the command line's).
    pub fn dynamic(&self) -> Arc<Dynamic> {
        self.dynamic
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The secrets of `resource` and of the defaults it starts from, to mask in anything said
    /// about it (events, logs, `status.error`).
    pub fn redactor<K: kube::Resource + serde::Serialize>(&self, resource: &K) -> Redactor {
        let namespace = resource.meta().namespace.clone().unwrap_or_default();
        Redactor::for_resource(resource)
            .with_defaults(&self.dynamic().flink_defaults_for(&namespace))
    }

    pub(crate) fn set_dynamic(&self, dynamic: Dynamic) {
        *self.dynamic.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(dynamic);
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// The back-off after another failure: doubling from the initial interval up to the max.
    /// Forgets everything kept about a resource that is gone: its failure count, its Flink
    /// client, its plugins' last good patches.
    pub fn forget<K: kube::Resource<DynamicType = ()>>(&self, resource: &K) {
        let (namespace, name) = (
            resource.meta().namespace.clone().unwrap_or_default(),
            resource.meta().name.clone().unwrap_or_default(),
        );
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(resource));
        self.exceptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(resource));
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(&key(resource));
        self.flink.forget(&name, &namespace);
        self.policies.forget(&namespace, &name);
        // The metrics forget it themselves when the reconcile that removed the finalizer
        // reports it gone.
    }

    /// How many entries all per-resource maps hold (for tests: none once every resource is
    /// gone).
    pub fn per_resource_entries(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            + self
                .exceptions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len()
            + self.windows.lock().unwrap_or_else(|e| e.into_inner()).len()
            + self.flink.kept()
            + self.policies.remembered()
            + self.metrics.tracked_len()
    }

    /// `JobException` events for the exceptions of a resource's job `history` holds that were
    /// not reported yet (`job_exceptions`); what was reported is remembered per resource.
    fn report_exceptions<K: kube::Resource<DynamicType = ()>>(
        &self,
        resource: &K,
        history: Option<&crate::reconcile::job_exceptions::ObservedExceptions>,
        defaults: &BTreeMap<String, String>,
        notes: &mut Vec<crate::reconcile::Note>,
    ) {
        let Some(history) = history else {
            return;
        };
        let mut reported = self.exceptions.lock().unwrap_or_else(|e| e.into_inner());
        let key = key(resource);
        let (events, mark) = crate::reconcile::job_exceptions::report(
            history,
            reported.get(&key),
            self.started_ms,
            // The operator's limits, not the tenant's (its JobManager writes the history).
            defaults,
        );
        notes.extend(events);
        reported.insert(key, mark);
    }

    fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        let dynamic = self.dynamic();
        dynamic.retry.delay(*count, dynamic.intervals.reconcile)
    }
}

/// The counters of every plugin a tenant binding uses now, once per plugin and extension point.
fn plugin_samples(policies: &policies::Policies) -> Vec<PluginSample> {
    let active = policies.active();
    let mut seen = std::collections::BTreeSet::new();
    active
        .bindings
        .values()
        .filter(|b| seen.insert((b.plugin.digest.clone(), b.point)))
        .map(|b| PluginSample {
            plugin: b.plugin.name.clone(),
            digest: b.plugin.digest.to_string(),
            extension: b.point.to_string(),
            stats: b.plugin.stats.snapshot(),
        })
        .collect()
}

pub fn now_ms() -> i64 {
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
    let _claim = match claim(&ctx, &*resource) {
        Ok(claim) => claim,
        Err(later) => return Ok(later),
    };
    let span = tracing::info_span!("reconcile", resource = %key(&*resource));
    let reconcile = async {
        // One snapshot of the operator's settings for the whole reconcile: observing,
        // the autoscaler and deciding read the same defaults even if the ConfigMap changes.
        let dynamic = ctx.dynamic();
        let defaults = dynamic.flink_defaults_for_version(
            &resource.namespace().unwrap_or_default(),
            resource.spec.flink_version,
        );
        let observed = observe::deployment(&ctx, &resource, &defaults).await?;
        let now = now_ms();
        let autoscaler = if resource.metadata.deletion_timestamp.is_none() {
            autoscaling::step(&ctx, &resource, &observed, &defaults, now).await
        } else {
            None
        };
        let upgrade_policy = ctx
            .policies
            .upgrade_verdict(&resource, &observed, now)
            .await;
        let tenancy = ctx.policies.tenancy_error(&*resource);
        let decide_ctx = deployment::DecideContext {
            now_ms: now,
            intervals: &dynamic.intervals,
            defaults: &defaults,
            log_defaults: &dynamic.log_defaults,
            snapshot_thresholds: dynamic.snapshot_thresholds,
            error_shape: &dynamic.error_shape,
            manage_ingress: dynamic.manage_ingress,
            upgrade_policy: upgrade_policy.as_ref(),
            autoscaler: autoscaler.as_ref(),
            tenancy: tenancy.as_ref(),
        };
        let plan = deployment::decide(&resource, &observed, &decide_ctx);
        let plan = ctx
            .policies
            .pod_templates(&resource, plan, decide_ctx.now_ms)
            .await;
        let mut plan = match &autoscaler {
            Some(step) => crate::reconcile::autoscaling::step::with_step(plan, step),
            None => plan,
        };
        ctx.report_exceptions(
            &*resource,
            observed.exceptions.as_ref(),
            &defaults,
            &mut plan.notes,
        );
        let state = state_name(&plan.status.lifecycle_state);
        let status = resource.status.as_ref();
        let tracked = Tracked {
            job_manager: state_name(&plan.status.job_manager_deployment_status),
            flink_version: plan.status.cluster_info.get("flink-version").cloned(),
            ..Tracked::new(DEPLOYMENT, state)
        };
        carry_out(
            &ctx,
            &*resource,
            status,
            plan,
            deployment::FINALIZER,
            tracked,
        )
        .await
    };
    measured(&ctx, DEPLOYMENT, reconcile.instrument(span)).await
}

async fn reconcile_session_job(
    resource: Arc<FlinkSessionJob>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let _claim = match claim(&ctx, &*resource) {
        Ok(claim) => claim,
        Err(later) => return Ok(later),
    };
    let span = tracing::info_span!("reconcile", resource = %key(&*resource));
    let reconcile = async {
        let dynamic = ctx.dynamic();
        let defaults = dynamic.flink_defaults_for(&resource.namespace().unwrap_or_default());
        let observed = observe::session_job(&ctx, &resource, &defaults).await?;
        let now = now_ms();
        let autoscaler = if resource.metadata.deletion_timestamp.is_none() {
            let config =
                session_job::job_config(&resource, &defaults, &observed.cluster_configuration);
            autoscaling::session_job_step(&ctx, &resource, &observed, &config, &defaults, now).await
        } else {
            None
        };
        let upgrade_policy = ctx
            .policies
            .session_job_upgrade_verdict(&resource, &observed, now)
            .await;
        let tenancy = ctx.policies.tenancy_error(&*resource);
        let decide_ctx = session_job::SessionDecideContext {
            now_ms: now,
            intervals: &dynamic.intervals,
            validation: &dynamic.validation,
            upgrade_policy: upgrade_policy.as_ref(),
            defaults: &defaults,
            snapshot_thresholds: dynamic.snapshot_thresholds,
            error_shape: &dynamic.error_shape,
            autoscaler: autoscaler.as_ref(),
            tenancy: tenancy.as_ref(),
        };
        let plan = session_job::decide(&resource, &observed, &decide_ctx);
        let mut plan = match &autoscaler {
            Some(step) => crate::reconcile::autoscaling::step::with_step(plan, step),
            None => plan,
        };
        ctx.report_exceptions(
            &*resource,
            observed.exceptions.as_ref(),
            &defaults,
            &mut plan.notes,
        );
        let state = state_name(&plan.status.lifecycle_state);
        let status = resource.status.as_ref();
        let tracked = Tracked::new(SESSION_JOB, state);
        carry_out(
            &ctx,
            &*resource,
            status,
            plan,
            session_job::FINALIZER,
            tracked,
        )
        .await
    };
    measured(&ctx, SESSION_JOB, reconcile.instrument(span)).await
}

async fn reconcile_snapshot(
    resource: Arc<FlinkStateSnapshot>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let _claim = match claim(&ctx, &*resource) {
        Ok(claim) => claim,
        Err(later) => return Ok(later),
    };
    let span = tracing::info_span!("reconcile", resource = %key(&*resource));
    let reconcile = async {
        let observed = observe::snapshot(&ctx, &resource).await?;
        let plan = state_snapshot::decide(&resource, &observed, now_ms(), &ctx.dynamic().intervals);
        let state = state_name(&plan.status.state);
        let snapshot_type = if resource.spec.checkpoint.is_some() {
            "checkpoint"
        } else {
            "savepoint"
        };
        let status = resource.status.as_ref();
        let tracked = Tracked {
            snapshot_type: Some(snapshot_type),
            ..Tracked::new(SNAPSHOT, state)
        };
        carry_out(
            &ctx,
            &*resource,
            status,
            plan,
            state_snapshot::FINALIZER,
            tracked,
        )
        .await
    };
    measured(&ctx, SNAPSHOT, reconcile.instrument(span)).await
}

async fn reconcile_blue_green(
    resource: Arc<FlinkBlueGreenDeployment>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let _claim = match claim(&ctx, &*resource) {
        Ok(claim) => claim,
        Err(later) => return Ok(later),
    };
    let span = tracing::info_span!("reconcile", resource = %key(&*resource));
    let reconcile = async {
        let observed = observe::blue_green(&ctx, &resource).await?;
        let now = now_ms();
        let active_job = resource
            .status
            .as_ref()
            .and_then(|s| s.blue_green_state)
            .and_then(|state| observed.child(state.colour()))
            .and_then(|c| c.status.as_ref()?.job_status.as_ref());
        let upgrade_policy = ctx
            .policies
            .blue_green_upgrade_verdict(&resource, active_job, now)
            .await;
        let dynamic = ctx.dynamic();
        let tenancy = ctx.policies.tenancy_error(&*resource);
        let decide_ctx = blue_green::BlueGreenContext {
            now_ms: now,
            intervals: &dynamic.intervals,
            upgrade_policy: upgrade_policy.as_ref(),
            dual_running: ctx.policies.dual_running(&*resource),
            tenancy: tenancy.as_ref(),
            manage_ingress: ctx.dynamic().manage_ingress,
        };
        let plan = blue_green::decide(&resource, &observed, &decide_ctx);
        let state = state_name(&plan.status.blue_green_state);
        let status = resource.status.as_ref();
        carry_out(
            &ctx,
            &*resource,
            status,
            plan,
            blue_green::FINALIZER,
            Tracked::new(BLUE_GREEN, state),
        )
        .await
    };
    measured(&ctx, BLUE_GREEN, reconcile.instrument(span)).await
}

/// A reconcile this replica may run: its shard is owned (and stays so until it ends).
struct Claim<'a> {
    _in_flight: Option<InFlight<'a>>,
    _witnessed: Option<Witnessed>,
}

/// Whether this replica reconciles `resource` now. If not, when to look again: on a change
/// when its shard belongs to another replica (it is reconciled here again when this replica
/// gains the shard), or once its rate-limiter period ends when it has had its reconciles.
fn claim<'a, K: kube::Resource<DynamicType = ()>>(
    ctx: &'a Context,
    resource: &K,
) -> Result<Claim<'a>, Action> {
    let namespace = resource.namespace().unwrap_or_default();
    let in_flight = match &ctx.shards {
        Some(shards) => Some(
            shards
                .begin(&namespace, &resource.name_any())
                .ok_or_else(Action::await_change)?,
        ),
        None => None,
    };
    let limit = ctx.dynamic().rate_limit;
    let admitted = ctx.windows.lock().unwrap_or_else(|e| e.into_inner()).admit(
        &key(resource),
        limit,
        now_ms(),
    );
    if let Err(wait) = admitted {
        tracing::debug!(resource = %key(resource), ?wait, "rate-limited: reconciled {} times within {:?}", limit.limit, limit.period);
        return Err(Action::requeue(wait));
    }
    let replica = ctx
        .settings
        .sharding
        .as_ref()
        .map_or("operator", |s| s.identity.as_str());
    Ok(Claim {
        _in_flight: in_flight,
        _witnessed: ctx
            .settings
            .witness
            .as_ref()
            .map(|w| w.enter(&key(resource), replica)),
    })
}

const DEPLOYMENT: &str = "FlinkDeployment";
const SESSION_JOB: &str = "FlinkSessionJob";
const SNAPSHOT: &str = "FlinkStateSnapshot";
const BLUE_GREEN: &str = "FlinkBlueGreenDeployment";

/// What a reconcile's plan leaves a resource in, for the metrics.
struct Tracked {
    kind: &'static str,
    state: Option<String>,
    snapshot_type: Option<&'static str>,
    job_manager: Option<String>,
    flink_version: Option<String>,
}

impl Tracked {
    fn new(kind: &'static str, state: Option<String>) -> Self {
        Tracked {
            kind,
            state,
            snapshot_type: None,
            job_manager: None,
            flink_version: None,
        }
    }
}

/// The name a state enum has in the status (`STABLE`, `COMPLETED`).
fn state_name<T: serde::Serialize>(state: &Option<T>) -> Option<String> {
    serde_json::to_value(state.as_ref()?)
        .ok()?
        .as_str()
        .map(String::from)
}

/// Times a reconcile and counts it by outcome.
async fn measured(
    ctx: &Context,
    kind: &'static str,
    reconcile: impl std::future::Future<Output = Result<Action, ReconcileError>>,
) -> Result<Action, ReconcileError> {
    let started = std::time::Instant::now();
    let result = reconcile.await;
    ctx.metrics
        .reconciled(kind, started.elapsed(), result.is_ok());
    result
}

/// Acts on a plan and turns it into kube-runtime's next action; counts the reconcile and
/// tracks the state (and snapshot type) it leaves the resource in.
async fn carry_out<K, S>(
    ctx: &Context,
    resource: &K,
    stored: Option<&S>,
    plan: crate::reconcile::Plan<S>,
    finalizer: &str,
    tracked: Tracked,
) -> Result<Action, ReconcileError>
where
    K: act::FlinkResource,
    S: serde::Serialize,
{
    ctx.reconciles
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let requeue = plan.requeue;
    let gone = plan
        .actions
        .contains(&crate::reconcile::Effect::RemoveFinalizer);
    act::act(ctx, resource, stored, plan, finalizer).await?;
    ctx.metrics.seen(Seen {
        kind: tracked.kind,
        namespace: &resource.namespace().unwrap_or_default(),
        name: &resource.name_any(),
        state: tracked.state.as_deref(),
        snapshot_type: tracked.snapshot_type,
        job_manager: tracked.job_manager.as_deref(),
        flink_version: tracked.flink_version.as_deref(),
        gone,
    });
    ctx.succeeded(&key(resource));
    Ok(Action::requeue(requeue))
}

/// After a conflict the resource changed since the decision (a newer watch event, or another
/// replica's write): decide again at once from what is stored; not a failure.
const AFTER_CONFLICT: Duration = Duration::from_millis(200);

fn error_policy<K: kube::Resource<DynamicType = ()> + serde::Serialize>(
    resource: Arc<K>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    if error.is_conflict() {
        tracing::debug!(resource = %key(&*resource), "the resource changed since the decision; deciding again");
        return Action::requeue(AFTER_CONFLICT);
    }
    let delay = ctx.failed(&key(&*resource));
    let error = ctx.redactor(&*resource).scrub(&error.to_string());
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
    // The operator ConfigMap applies before the first reconcile, then on every change.
    config_reload::load(&ctx).await;
    let mut tasks = vec![tokio::spawn(ctx.policies.clone().watch(
        ctx.client.clone(),
        ctx.recorder.clone(),
        shutdown.clone(),
    ))];
    if let Some(address) = settings.http_address {
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => {
                if let Ok(bound) = listener.local_addr() {
                    let _ = ctx.health.address.set(bound);
                    tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
                }
                tasks.push(tokio::spawn(endpoints::serve(
                    listener,
                    ctx.metrics.clone(),
                    ctx.health.clone(),
                    shutdown.clone(),
                )));
            }
            // The probes then fail and Kubernetes restarts the pod: say why.
            Err(e) => tracing::error!(%address, error = %e, "cannot serve metrics and health"),
        }
    }
    tasks.push(tokio::spawn(probe_api(ctx.clone(), shutdown.clone())));
    tasks.push(tokio::spawn(config_reload::watch(
        ctx.clone(),
        shutdown.clone(),
    )));
    if let Some(webhook) = &settings.webhook {
        let _ = ctx.health.webhook.set(ctx.webhook.clone());
        let current = {
            let ctx = Arc::downgrade(&ctx);
            Arc::new(move || {
                ctx.upgrade()
                    .map(|ctx| ctx.dynamic().validation.clone())
                    .unwrap_or_default()
            })
        };
        let serving = crate::webhook::serve(
            ctx.client.clone(),
            settings.policies.namespace.clone(),
            webhook.clone(),
            current,
            ctx.webhook.clone(),
            shutdown.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // The API server's failurePolicy then decides; the log says why.
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "the admission webhook is not served");
            }
        }));
    }
    if let (Some(shards), Some(sharding)) = (&ctx.shards, &settings.sharding) {
        tasks.push(tokio::spawn(crate::sharding::elector::run(
            ctx.client.clone(),
            shards.clone(),
            sharding.clone(),
            ctx.metrics.clone(),
            shutdown.clone(),
        )));
    }
    // Resources of a shard this replica gains are reconciled at once.
    let gained = || -> futures::stream::BoxStream<'static, ()> {
        match &ctx.shards {
            Some(shards) => Box::pin(shards.gained()),
            None => Box::pin(futures::stream::pending()),
        }
    };
    for (deployments, owned_api) in apis::<FlinkDeployment>(&ctx.client, settings)
        .into_iter()
        .zip(apis::<Deployment>(&ctx.client, settings))
    {
        let controller = Controller::new(deployments, watch.clone())
            .owns(owned_api, owned.clone())
            .reconcile_all_on(gained())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile_deployment, error_policy, ctx.clone());
        tasks.push(tokio::spawn(drive(controller, DEPLOYMENT)));
    }
    for jobs in apis::<FlinkSessionJob>(&ctx.client, settings) {
        let controller = Controller::new(jobs, watch.clone())
            .reconcile_all_on(gained())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile_session_job, error_policy, ctx.clone());
        tasks.push(tokio::spawn(drive(controller, SESSION_JOB)));
    }
    for snapshots in apis::<FlinkStateSnapshot>(&ctx.client, settings) {
        let controller = Controller::new(snapshots, watch.clone())
            .reconcile_all_on(gained())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile_snapshot, error_policy, ctx.clone());
        tasks.push(tokio::spawn(drive(controller, SNAPSHOT)));
    }
    for (parents, children) in apis::<FlinkBlueGreenDeployment>(&ctx.client, settings)
        .into_iter()
        .zip(apis::<FlinkDeployment>(&ctx.client, settings))
    {
        // A child's change wakes its parent (its owner reference is not a controller's, as
        // upstream, so `owns` would not map it).
        let controller = Controller::new(parents, watch.clone())
            .watches(
                children,
                watcher::Config::default(),
                |child: FlinkDeployment| {
                    let namespace = child.namespace();
                    child
                        .owner_references()
                        .iter()
                        .filter(|o| o.kind == "FlinkBlueGreenDeployment")
                        .map(|o| {
                            kube::runtime::reflector::ObjectRef::new(&o.name)
                                .within(namespace.as_deref().unwrap_or_default())
                        })
                        .collect::<Vec<_>>()
                },
            )
            .reconcile_all_on(gained())
            .with_config(config.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile_blue_green, error_policy, ctx.clone());
        tasks.push(tokio::spawn(drive(controller, BLUE_GREEN)));
    }
    ctx.health.controllers_started();
    // Once stopping, the reconciles under way get `termination.timeout` to finish.
    let all = futures::future::join_all(tasks);
    let mut all = std::pin::pin!(all);
    tokio::select! {
        _ = &mut all => {}
        _ = shutdown.clone() => {
            if tokio::time::timeout(settings.termination_timeout, &mut all).await.is_err() {
                tracing::warn!(timeout = ?settings.termination_timeout, "reconciles still under way when the termination timeout ended; stopping without them");
            }
        }
    }
    ctx.health.controllers_stopped();
}

/// Drives a controller to its end, logging what it could not reconcile.
async fn drive<T, E: std::fmt::Display>(
    results: impl futures::Stream<Item = Result<T, E>>,
    kind: &'static str,
) {
    results
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "{kind} controller");
            }
        })
        .await
}

/// Records, for `/readyz`, that the Kubernetes API answers.
async fn probe_api(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()>) {
    let probing = async {
        loop {
            match ctx.client.apiserver_version().await {
                Ok(_) => ctx.health.api_answered(now_ms()),
                Err(e) => tracing::warn!(error = %e, "the Kubernetes API does not answer"),
            }
            tokio::time::sleep(endpoints::PROBE_EVERY).await;
        }
    };
    tokio::select! {
        _ = probing => {}
        _ = shutdown => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_resource_that_is_gone_leaves_nothing_behind() {
        // Nothing is sent to this API: the maps are all that is looked at.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a URL"));
        let ctx = Context::new(
            Client::try_from(config).expect("a client"),
            Settings::default(),
        );
        let resource: FlinkDeployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "orders", "namespace": "team-a"}, "spec": {}
        }))
        .expect("a FlinkDeployment");
        ctx.failed(&key(&resource));
        ctx.flink.for_cluster("orders", "team-a").expect("a client");
        ctx.policies
            .remember_good("team-a/orders/TaskManager", serde_json::json!([]));
        let mut dynamic = (*ctx.dynamic()).clone();
        dynamic.rate_limit = rate_limit::RateLimit::UPSTREAM;
        ctx.set_dynamic(dynamic);
        assert!(claim(&ctx, &resource).is_ok());
        assert_eq!(ctx.per_resource_entries(), 4);
        ctx.forget(&resource);
        assert_eq!(ctx.per_resource_entries(), 0);
    }

    /// The operator ConfigMap's rate limit, as a reload sets it, holds a resource's next
    /// reconcile until its period ends; other resources go on.
    #[tokio::test]
    async fn a_resource_past_its_rate_limit_is_looked_at_again_when_its_period_ends() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a URL"));
        let ctx = Context::new(
            Client::try_from(config).expect("a client"),
            Settings::default(),
        );
        let mut dynamic = (*ctx.dynamic()).clone();
        dynamic.rate_limit = rate_limit::RateLimit {
            limit: 2,
            period: Duration::from_secs(600),
        };
        ctx.set_dynamic(dynamic);
        let named = |name: &str| -> FlinkDeployment {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
                "metadata": {"name": name, "namespace": "team-a"}, "spec": {}
            }))
            .expect("a FlinkDeployment")
        };
        let (hot, quiet) = (named("hot"), named("quiet"));
        assert!(claim(&ctx, &hot).is_ok() && claim(&ctx, &hot).is_ok());
        let Err(later) = claim(&ctx, &hot) else {
            panic!("a third reconcile within the period went ahead");
        };
        // `Action` shows its requeue only in its Debug form: `Some(599.998s)`.
        let shown = format!("{later:?}");
        let wait: f64 = shown
            .split_once("Some(")
            .and_then(|(_, rest)| rest.split_once("s)"))
            .and_then(|(secs, _)| secs.parse().ok())
            .unwrap_or_else(|| panic!("not a requeue: {shown}"));
        assert!((590.0..=600.0).contains(&wait), "{shown}");
        assert!(claim(&ctx, &quiet).is_ok());
    }
}
