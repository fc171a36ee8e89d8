//! `flink-operator local`: a local cluster on loopback. Starts the Kubernetes API stand-in,
//! installs the CRDs, writes a kubeconfig for `kubectl`, optionally applies resources, shows
//! them as they change, and stops cleanly on Ctrl-C.
//!
//! Flink comes from `FLINK_HOME`, else the pinned distribution in the cache, which is installed
//! on first use; the process runtime runs Deployments' Flink pods as local JVMs with it. The
//! reconciler is not wired in yet: FlinkDeployments are stored and served, but only
//! hand-written Deployments start Flink.

use super::validate::read_and_validate;
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

pub struct LocalOptions {
    pub files: Vec<PathBuf>,
    pub port: u16,
    pub dir: Option<PathBuf>,
    /// Serve the API only rather than install Flink when none is found.
    pub no_install: bool,
    /// Stop after this long at the latest (for scripted runs); Ctrl-C always stops.
    pub run_for: Option<Duration>,
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
    match flink_dist::find(&cache) {
        Some(home) => Ok(home),
        None if no_install => Err("none found and --no-install given; set FLINK_HOME".into()),
        None => flink_dist::install(&cache, &|line| say!("{line}")),
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
        read_and_validate(&options.files, &ValidationSettings::default())
    };
    if !problems.is_empty() {
        return Err(format!(
            "not starting: the resources have problems\n{}",
            problems.join("\n")
        ));
    }
    let server = ApiServer::default()
        .start(([127, 0, 0, 1], options.port).into())
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", options.port))?;
    install_crds(&server)?;
    let dir = options.dir.clone().unwrap_or_else(default_dir);
    let runtime = match flink_home(options.no_install) {
        Ok(flink_home) => {
            let config = RuntimeConfig {
                usrlib: dir.join("usrlib"),
                work_dir: dir.join(format!("runtime-{}", server.address.port())),
                flink_home: flink_home.clone(),
                max_grace: Duration::from_secs(15),
            };
            let _ = std::fs::create_dir_all(&config.usrlib);
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
    if let Some(runtime) = runtime {
        tokio::task::spawn_blocking(move || runtime.stop())
            .await
            .map_err(|e| e.to_string())?;
    }
    server.shutdown().await;
    Ok(())
}

fn install_crds(server: &ServerHandle) -> Result<(), String> {
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
