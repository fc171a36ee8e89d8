//! The reconciler at scale: N FlinkDeployments (100, then 1000) created at once against the API
//! stand-in, until every one is STABLE. Flink is a recorded-response double (the `/config` and
//! `/jobs/overview` answers of a real Flink 2.3 JobManager, in `recorded/`, with each cluster's
//! own job id), and a stand-in kubelet marks Deployments ready: 1000 real clusters do not fit on
//! one machine. The operator runs as its own process (this binary, re-executed), so its memory
//! is measured alone. Run: `cargo bench -p flink-operator --bench reconcile`.
//!
//! Reports time to converge, reconciles and reconciles/s, API requests and writes per
//! reconcile, and the operator's peak RSS. Aim (issue 4): 1000 in under 30 s, under 100 MiB.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use flink_operator::controller::{self, Context};
use flink_operator::reconcile::job_id::job_id;
use flink_operator::render::GENERATION_ANNOTATION;
use flink_operator::settings::Settings;
use sandbox::ApiServer;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The double listens here on Flink's REST port; every cluster's REST name resolves to it.
const DOUBLE_IP: [u8; 4] = [127, 250, 0, 1];
const SIZES: [usize; 2] = [100, 1000];
const TIMEOUT: Duration = Duration::from_secs(300);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--operator-child") {
        operator_child(&args[position + 1]);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let jobs: Jobs = Arc::default();
    let _double = runtime.block_on(start_double(jobs.clone()));
    println!(
        "| deployments | converged in | reconciles | reconciles/s | API requests | requests/reconcile | API writes | writes/reconcile | operator peak RSS |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for size in SIZES {
        let row = runtime.block_on(run(size, jobs.clone()));
        println!("{row}");
    }
}

type Jobs = Arc<Mutex<HashMap<String, String>>>;

fn json_body(value: &Value) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}

/// Answers like a Flink 2.3 JobManager for whichever cluster the Host header names.
async fn start_double(jobs: Jobs) -> tokio::task::JoinHandle<()> {
    let recorded = |file: &str| -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("benches/recorded")
            .join(file);
        serde_json::from_str(&std::fs::read_to_string(&path).expect("recorded answer"))
            .expect("recorded JSON")
    };
    let (config, overview) = (recorded("config.json"), recorded("jobs-overview.json"));
    let app = Router::new()
        .route(
            "/config",
            axum::routing::get(move || async move { json_body(&config) }),
        )
        .route(
            "/jobs/overview",
            axum::routing::get(
                move |State(jobs): State<Jobs>, headers: HeaderMap| async move {
                    let host = headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or_default();
                    let cluster = host.split(':').next().unwrap_or_default().to_string();
                    let mut answer = overview.clone();
                    match jobs.lock().unwrap_or_else(|e| e.into_inner()).get(&cluster) {
                        Some(id) => answer["jobs"][0]["jid"] = json!(id),
                        None => answer["jobs"] = json!([]),
                    }
                    json_body(&answer)
                },
            ),
        )
        .with_state(jobs);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((DOUBLE_IP, 8081)))
        .await
        .expect("the double binds 127.250.0.1:8081");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

async fn run(size: usize, jobs: Jobs) -> String {
    jobs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let server = ApiServer::default()
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("stand-in");
    flink_operator::commands::local::install_crds(&server).expect("CRDs install");
    let child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["--operator-child", &server.url()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("operator process");
    let pid = child.id();
    // Let it list and watch the empty cluster before the burst.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (requests, writes) = (server.request_count(), server.write_count());
    let started = Instant::now();
    server.with_store(|store| {
        let rt = store
            .resource_type(flink_api::GROUP, flink_api::VERSION, "flinkdeployments")
            .cloned()
            .expect("served");
        for i in 0..size {
            store
                .create(&rt, Some("default"), deployment(i), false)
                .expect("created");
        }
    });
    let mut peak_kib = 0;
    let converged = loop {
        peak_kib = peak_kib.max(peak_rss_kib(pid));
        kubelet(&server, &jobs);
        let stable = server.with_store(|store| {
            let rt = store
                .resource_type(flink_api::GROUP, flink_api::VERSION, "flinkdeployments")
                .cloned()
                .expect("served");
            let (items, _) = store.list(&rt, &Default::default()).expect("list");
            items
                .iter()
                .filter(|d| d.pointer("/status/lifecycleState") == Some(&json!("STABLE")))
                .count()
        });
        if stable == size {
            break Some(started.elapsed());
        }
        if started.elapsed() > TIMEOUT {
            eprintln!("only {stable} of {size} stable after {TIMEOUT:?}");
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (requests, writes) = (
        server.request_count() - requests,
        server.write_count() - writes,
    );
    peak_kib = peak_kib.max(peak_rss_kib(pid));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("child output");
    let reconciles: u64 = String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("reconciles="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    server.shutdown().await;
    let seconds = converged.map_or(f64::NAN, |d| d.as_secs_f64());
    format!(
        "| {size} | {} | {reconciles} | {:.0} | {requests} | {:.1} | {writes} | {:.1} | {:.0} MiB |",
        converged.map_or("did not converge".to_string(), |d| format!(
            "{:.1} s",
            d.as_secs_f64()
        )),
        reconciles as f64 / seconds,
        requests as f64 / reconciles.max(1) as f64,
        writes as f64 / reconciles.max(1) as f64,
        peak_kib as f64 / 1024.0
    )
}

fn deployment(i: usize) -> Value {
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": format!("job-{i:04}"), "namespace": "default"},
        "spec": {
            "image": "flink:2.3", "flinkVersion": "v2_3", "mode": "standalone",
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2"},
            "jobManager": {"resource": {"memory": "1g", "cpu": 1}},
            "taskManager": {"resource": {"memory": "1g", "cpu": 1}},
            "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "parallelism": 2, "upgradeMode": "stateless"}
        }
    })
}

/// Plays kubelet and ReplicaSet controller: every Deployment is ready as soon as it exists, and
/// a JobManager's cluster then "runs" the job id of the generation it was rendered from.
fn kubelet(server: &sandbox::ServerHandle, jobs: &Jobs) {
    server.with_store(|store| {
        let rt = store.resource_type("apps", "v1", "deployments").cloned().expect("deployments");
        let (items, _) = store.list(&rt, &Default::default()).expect("list");
        for item in items {
            let replicas = item.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
            if item.pointer("/status/readyReplicas").and_then(Value::as_i64) != Some(replicas) {
                let status = json!({"status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas,
                    "observedGeneration": item.pointer("/metadata/generation")}});
                let body = serde_json::to_vec(&status).expect("json");
                let _ = store.patch(&rt, Some("default"), &name, sandbox::patch::PatchType::Merge, &body, sandbox::store::Subresource::Status, false);
            }
            let generation = item.pointer(&format!("/metadata/annotations/{}", GENERATION_ANNOTATION.replace('/', "~1")))
                .and_then(Value::as_str)
                .and_then(|g| g.parse::<i64>().ok());
            let uid = item.pointer("/metadata/ownerReferences/0/uid").and_then(Value::as_str);
            if let (Some(generation), Some(uid)) = (generation, uid) {
                jobs.lock().unwrap_or_else(|e| e.into_inner()).insert(format!("{name}-rest.default"), job_id(uid, generation, 0));
            }
        }
    });
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The operator process: upstream's default settings, every cluster's REST name resolved to
/// the double. Prints its reconcile count when SIGTERM stops it.
fn operator_child(url: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client =
            kube::Client::try_from(kube::Config::new(url.parse().expect("url"))).expect("client");
        let mut settings = Settings::default();
        settings.flink_client.resolver = Some(flink_rest::Resolver(Arc::new(ToDouble)));
        let ctx = Context::new(client, settings);
        controller::run(
            ctx.clone(),
            flink_operator::commands::run::shutdown_signal(),
        )
        .await;
        println!(
            "reconciles={}",
            ctx.reconciles.load(std::sync::atomic::Ordering::Relaxed)
        );
    });
}

struct ToDouble;

impl reqwest::dns::Resolve for ToDouble {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addr = SocketAddr::from((DOUBLE_IP, 8081));
        Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs) })
    }
}
