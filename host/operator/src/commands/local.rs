//! `flink-operator local`: a local cluster on loopback. Starts the Kubernetes API stand-in,
//! installs the CRDs, writes a kubeconfig for `kubectl`, optionally applies resources, shows
//! them as they change, and stops cleanly on Ctrl-C.
//!
//! Flink comes from `FLINK_HOME`, else the pinned distribution in the cache, which is installed
//! on first use; the process runtime runs Deployments' Flink pods as local JVMs with it, and the
//! operator runs in-process against the stand-in exactly as it would against a real cluster
//! (it reaches Flink through Service names, resolved like the pods resolve them). The example
//! job is compiled into the jar directory, so `local:///opt/flink/usrlib/stateful-counter.jar`
//! works out of the box.

use super::hosts_resolver::HostsFileResolver;
use super::validate::read_and_validate;
use crate::controller::{self, Context};
use crate::reconcile::Intervals;
use crate::settings::Settings;
use flink_api::validation::ValidationSettings;
use sandbox::flink_dist;
use sandbox::runtime::{self, RuntimeConfig};
use sandbox::store::Subresource;
use sandbox::{ApiServer, ServerHandle};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Progress lines on standard output; a closed pipe (`| head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

const FIELD_MANAGER: &str = "flink-operator-local";

/// Quicker than a production cluster needs: a local user watches the resources change.
pub const LOCAL_INTERVALS: Intervals = Intervals {
    reconcile: Duration::from_secs(15),
    progress: Duration::from_secs(2),
};

pub struct LocalOptions {
    pub files: Vec<PathBuf>,
    pub port: u16,
    pub dir: Option<PathBuf>,
    /// Serve the API only rather than install Flink when none is found.
    pub no_install: bool,
    /// Stop after this long at the latest (for scripted runs); Ctrl-C always stops.
    pub run_for: Option<Duration>,
    /// A directory of policy plugins (`<plugin>.wasm`), watched for changes.
    pub plugin_dir: Option<PathBuf>,
}

pub fn run(options: LocalOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flink-operator local: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flink-operator local: {e}");
            ExitCode::FAILURE
        }
    }
}

fn default_dir() -> PathBuf {
    flink_dist::cache_dir().join("local")
}

/// `FLINK_HOME`, the cached pinned distribution, or (unless told not to) a fresh install of it.
fn flink_home(no_install: bool) -> Result<PathBuf, String> {
    let cache = flink_dist::cache_dir();
    if no_install {
        flink_dist::find(&cache)
            .ok_or_else(|| "none found and --no-install given; set FLINK_HOME".into())
    } else {
        flink_dist::ensure(&cache, &|line| say!("{line}"))
    }
}

async fn serve(options: LocalOptions) -> Result<(), String> {
    // Handlers first: a Ctrl-C (or SIGTERM) at any point from here on stops everything cleanly.
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let (documents, problems) = if options.files.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        // Other objects in the files (a PersistentVolumeClaim, an IngressClass) are applied
        // as they are; the stand-in says which kinds it does not serve.
        let checked = read_and_validate(&options.files, &local_validation(), false);
        (checked.documents, checked.problems)
    };
    if !problems.is_empty() {
        return Err(format!(
            "not starting: the resources have problems\n{}",
            problems.join("\n")
        ));
    }
    let server = ApiServer::default()
        .with_in_cluster()
        .start(([127, 0, 0, 1], options.port).into())
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", options.port))?;
    install_crds(&server)?;
    let dir = options.dir.clone().unwrap_or_else(default_dir);
    let usrlib = dir.join("usrlib");
    let work_dir = dir.join(format!("runtime-{}", server.address.port()));
    let runtime = match flink_home(options.no_install) {
        Ok(flink_home) => {
            let _ = std::fs::create_dir_all(&usrlib);
            match example_jar(&flink_home, &usrlib) {
                Ok(jar) => say!("Example job: {}", jar.display()),
                Err(e) => say!("Example job not built ({e}); jobs from usrlib still run."),
            }
            let config = RuntimeConfig {
                usrlib: usrlib.clone(),
                work_dir: work_dir.clone(),
                flink_home: flink_home.clone(),
                max_grace: Duration::from_secs(15),
                api_url: Some(server.url()),
                in_cluster: server.in_cluster().cloned(),
            };
            say!(
                "Process runtime: Flink from {}, jars from {}",
                flink_home.display(),
                config.usrlib.display()
            );
            Some(
                runtime::start(server.store_access(), config)
                    .map_err(|e| format!("cannot start the process runtime: {e}"))?,
            )
        }
        Err(why) => {
            say!("No Flink ({why}): serving the API only.");
            None
        }
    };
    let kubeconfig = write_kubeconfig(&server, &dir)?;
    let (stop_operator, operator_stopped) = tokio::sync::oneshot::channel::<()>();
    let ctx = operator_context(
        &server,
        &work_dir,
        &usrlib,
        LOCAL_INTERVALS,
        options.plugin_dir.clone(),
    )?;
    let operator = tokio::spawn(controller::run(ctx.clone(), async move {
        let _ = operator_stopped.await;
    }));
    say!("Operator running in-process (its log: RUST_LOG=info).");
    for _ in 0..40 {
        if let Some(address) = ctx.health.address.get() {
            say!("Operator metrics: http://{address}/metrics (and /healthz, /readyz)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    say!("Kubernetes API stand-in listening on {}", server.url());
    say!("export KUBECONFIG={}", kubeconfig.display());
    for document in documents.into_iter().filter(|d| !d.is_null()) {
        say!("{}", apply(&server, document)?);
    }
    say!("Watching resources (Ctrl-C or SIGTERM stops everything).");
    let kinds: Vec<(String, String)> = flink_api::crd::all()
        .into_iter()
        .map(|c| (c.spec.names.kind, c.spec.names.plural))
        .collect();
    let mut shown = BTreeMap::new();
    let run_for = options.run_for.unwrap_or(Duration::MAX);
    let stop = async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = tokio::time::sleep(run_for) => {}
        }
    };
    tokio::pin!(stop);
    loop {
        show_changes(&server, &kinds, &mut shown);
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    say!("Stopping.");
    let _ = stop_operator.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), operator).await;
    if let Some(runtime) = runtime {
        tokio::task::spawn_blocking(move || runtime.stop())
            .await
            .map_err(|e| e.to_string())?;
    }
    server.shutdown().await;
    Ok(())
}

/// The operator of local mode, wired to the stand-in at `server` (see [`local_settings`]).
pub fn operator_context(
    server: &ServerHandle,
    work_dir: &Path,
    usrlib: &Path,
    intervals: Intervals,
    plugin_dir: Option<PathBuf>,
) -> Result<std::sync::Arc<Context>, String> {
    let (client, settings) = local_settings(server, work_dir, usrlib, intervals, plugin_dir)?;
    Ok(Context::new(client, settings))
}

/// The operator's client and settings in local mode: quicker intervals than a production
/// cluster needs, Service names resolved through the runtime's hosts file,
/// `local:///opt/flink/usrlib` jars read from the local jar directory. (Tests change a setting
/// before building the context, e.g. to route one cluster's REST API through a fault proxy.)
pub fn local_settings(
    server: &ServerHandle,
    work_dir: &Path,
    usrlib: &Path,
    intervals: Intervals,
    plugin_dir: Option<PathBuf>,
) -> Result<(kube::Client, Settings), String> {
    let url = server
        .url()
        .parse()
        .map_err(|e| format!("stand-in URL: {e}"))?;
    let client = kube::Client::try_from(kube::Config::new(url))
        .map_err(|e| format!("cannot build a Kubernetes client: {e}"))?;
    let mut settings = Settings {
        intervals,
        retry: crate::settings::Retry {
            initial: Duration::from_secs(1),
            max_interval: Duration::from_secs(30),
            ..Default::default()
        },
        flink_defaults: machine_defaults(
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        ),
        ..Settings::default()
    };
    settings.flink_client.resolver = Some(flink_rest::Resolver(std::sync::Arc::new(
        HostsFileResolver {
            path: work_dir.join("hosts"),
        },
    )));
    settings.flink_client.retries = 1;
    settings.flink_client.request_timeout = Duration::from_secs(5);
    // Session jobs may name jars in the jar directory (`local:///opt/flink/usrlib/...`), the
    // one directory of this machine the operator serves; downloads go beside it.
    settings.validation = local_validation();
    settings.artifacts.local_roots = vec![("/opt/flink/usrlib".into(), usrlib.to_path_buf())];
    settings.artifacts.base_dir = work_dir.join("artifacts");
    // Savepoints of deleted local clusters are deleted under the examples' state directory
    // and this cluster's own.
    settings.snapshots.local_roots =
        vec![PathBuf::from("/tmp/flink-operator"), work_dir.to_path_buf()];
    // Loopback only, on a free port: several local clusters (and test suites) run side by side.
    settings.http_address = Some(([127, 0, 0, 1], 0).into());
    // `flink-operator-config` in `default` configures the operator, as in a cluster.
    settings.config_map = Some("flink-operator-config".into());
    // The policies ConfigMap is `flink-operator-policies` in `default`, as `-f` applies it.
    settings.policies.namespace = "default".into();
    settings.policies.plugin_dir = plugin_dir;
    Ok((client, settings))
}

/// Local mode's Flink defaults (a spec still overrides each). The machine is the cluster:
/// - Laptop-sized Flink: the memory pools Flink sizes for a large container do not fit the
///   small processes local mode runs, so they start from small ones.
/// - The autoscaler knows the machine: a job's TaskManagers may take at most its `cores`
///   (`job.autoscaler.quota.cpu`), and a scale-up that did not raise the processing rate blocks
///   the next (`scaling.effectiveness.detection.enabled`). Without them a CPU-bound job on two
///   cores was seen scaled 2 -> 8 -> 16 -> 26 -> 64 while its throughput stayed flat.
pub fn machine_defaults(cores: usize) -> BTreeMap<String, String> {
    [
        ("taskmanager.memory.managed.size", "64m".to_string()),
        ("taskmanager.memory.network.min", "32m".into()),
        ("taskmanager.memory.network.max", "32m".into()),
        ("taskmanager.memory.jvm-metaspace.size", "160m".into()),
        ("jobmanager.memory.jvm-metaspace.size", "160m".into()),
        ("job.autoscaler.quota.cpu", cores.max(1).to_string()),
        (
            "job.autoscaler.scaling.effectiveness.detection.enabled",
            "true".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// What local mode allows besides the defaults: `local://` jars of its jar directory.
fn local_validation() -> ValidationSettings {
    let mut validation = ValidationSettings::default();
    validation.session_job_jar_schemes.push("local".into());
    validation
}

/// Compiles the example job and puts it into the jar directory.
fn example_jar(flink_home: &Path, usrlib: &Path) -> Result<PathBuf, String> {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/jobs/stateful-counter/src/main/java");
    if !sources.is_dir() {
        return Err(format!("no sources at {}", sources.display()));
    }
    let built = flink_dist::example_job(flink_home, &flink_dist::cache_dir(), &sources)?;
    // Copied beside the target and renamed over it, so a pod of another `local` sharing the
    // directory never reads a half-written jar.
    let target = usrlib.join("stateful-counter.jar");
    let staging = usrlib.join(format!(".stateful-counter.jar.{}", std::process::id()));
    std::fs::copy(&built, &staging)
        .and_then(|_| std::fs::rename(&staging, &target))
        .map_err(|e| format!("cannot copy it to {}: {e}", target.display()))?;
    Ok(target)
}

/// Installs our CRDs into the stand-in (as `kubectl apply -f charts/flink-operator/crds` would).
pub fn install_crds(server: &ServerHandle) -> Result<(), String> {
    server.with_store(|store| {
        let rt = store
            .resource_type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .cloned()
            .ok_or("the stand-in serves no CustomResourceDefinitions")?;
        for crd in flink_api::crd::all() {
            let body = serde_json::to_value(&crd).map_err(|e| e.to_string())?;
            store.create(&rt, None, body, false).map_err(|e| {
                format!(
                    "cannot install {}: {e}",
                    crd.metadata.name.unwrap_or_default()
                )
            })?;
        }
        Ok(())
    })
}

fn write_kubeconfig(server: &ServerHandle, dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("kubeconfig-{}", server.address.port()));
    std::fs::write(&path, server.kubeconfig())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Server-side applies one validated document, creating its namespace if needed.
fn apply(server: &ServerHandle, document: Value) -> Result<String, String> {
    let kind = document
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = document
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let plural = flink_api::crd::for_kind(&kind)
        .map(|c| c.spec.names.plural)
        .ok_or_else(|| format!("{kind} is not ours"))?;
    server.with_store(|store| {
        let namespaces = store
            .resource_type("", "v1", "namespaces")
            .cloned()
            .ok_or("no namespaces")?;
        if store.get(&namespaces, None, &namespace).is_err() {
            store
                .create(
                    &namespaces,
                    None,
                    json!({"metadata": {"name": namespace}}),
                    false,
                )
                .map_err(|e| e.to_string())?;
        }
        let rt = store
            .resource_type(flink_api::GROUP, flink_api::VERSION, &plural)
            .cloned()
            .ok_or_else(|| format!("{plural} is not served"))?;
        let body = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
        let (code, _) = store
            .apply(
                &rt,
                Some(&namespace),
                &name,
                &body,
                FIELD_MANAGER,
                true,
                Subresource::Main,
                false,
            )
            .map_err(|e| format!("{kind}/{name}: {e}"))?;
        Ok(format!(
            "{kind} {namespace}/{name} {}",
            if code == 201 { "created" } else { "configured" }
        ))
    })
}

/// What `local` shows: every Flink resource with its job and lifecycle state, and every pod
/// with its phase, readiness and restarts. `(key, state)` pairs, keyed by kind and name.
fn snapshot(server: &ServerHandle, kinds: &[(String, String)]) -> BTreeMap<String, String> {
    server.with_store(|store| {
        let mut lines = BTreeMap::new();
        let list = |group: &str, version: &str, plural: &str| {
            store
                .resource_type(group, version, plural)
                .cloned()
                .and_then(|rt| store.list(&rt, &Default::default()).ok())
                .map(|(items, _)| items)
                .unwrap_or_default()
        };
        let text = |item: &Value, p: &str| {
            item.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string()
        };
        for (kind, plural) in kinds {
            for item in list(flink_api::GROUP, flink_api::VERSION, plural) {
                let key = format!(
                    "{kind} {}/{}",
                    text(&item, "/metadata/namespace"),
                    text(&item, "/metadata/name")
                );
                let state = format!(
                    "job {} | lifecycle {}",
                    text(&item, "/status/jobStatus/state"),
                    text(&item, "/status/lifecycleState")
                );
                lines.insert(key, state);
            }
        }
        for pod in list("", "v1", "pods") {
            let key = format!(
                "Pod {}/{}",
                text(&pod, "/metadata/namespace"),
                text(&pod, "/metadata/name")
            );
            let ready = pod
                .pointer("/status/containerStatuses/0/ready")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let waiting = text(&pod, "/status/containerStatuses/0/state/waiting/reason");
            let state = format!(
                "{} {} | {} | restarts {}",
                text(&pod, "/status/phase"),
                if waiting == "-" {
                    String::new()
                } else {
                    format!("({waiting})")
                },
                if ready { "ready" } else { "not ready" },
                pod.pointer("/status/containerStatuses/0/restartCount")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            );
            lines.insert(key, state.replace("  ", " "));
        }
        lines
    })
}

/// Prints what changed since the last call, including what went away.
fn show_changes(
    server: &ServerHandle,
    kinds: &[(String, String)],
    shown: &mut BTreeMap<String, String>,
) {
    let now = snapshot(server, kinds);
    for (key, state) in &now {
        if shown.get(key) != Some(state) {
            say!("{key}: {state}");
        }
    }
    for key in shown.keys().filter(|k| !now.contains_key(*k)) {
        say!("{key}: gone");
    }
    *shown = now;
}
