//! The API stand-in under the load of idle native JobManagers with Kubernetes HA, made by Flink's
//! own client: `tests/java/native-load` runs, in one JVM, N clients of the installed
//! `flink-dist` (each watching its TaskManager pods, watching its HA ConfigMap and renewing its
//! leader lock on it with Flink's default timings), as N JobManagers would, in-cluster over
//! HTTPS with a service-account token as pods reach the stand-in. For 10 and 100
//! clusters side by side it prints the requests per second the stand-in served while the load
//! held, the watches opened over WebSocket, the requests to get there, and the resident memory
//! of the stand-in's process. Run with `cargo bench -p sandbox --bench native_clients`; it
//! installs Flink on first use like the tests.

use sandbox::ApiServer;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

const HOLD_SECONDS: u64 = 30;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

struct Row {
    clusters: usize,
    startup: Duration,
    startup_requests: u64,
    per_second: f64,
    websocket_watches: u64,
    rss: f64,
}

async fn measure(flink_home: &std::path::Path, jar: &std::path::Path, clusters: usize) -> Row {
    let server = ApiServer::default()
        .with_in_cluster()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // As in a pod: HTTPS with the service account's token and CA.
    let access = server.in_cluster().expect("in-cluster endpoint").clone();
    let account = std::env::temp_dir().join(format!("native-load-sa-{}", std::process::id()));
    let env = access
        .project(&account, "default")
        .expect("service account projected");
    let started = Instant::now();
    let mut child = sandbox::flink_dist::java(
        flink_home,
        jar,
        "org.flinkoperator.tests.NativeLoad",
        "native-load",
    )
    .arg(clusters.to_string())
    .arg(HOLD_SECONDS.to_string())
    .envs(env)
    .env_remove("KUBECONFIG")
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("java runs");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str, timeout: Duration| loop {
        match rx.recv_timeout(timeout) {
            Ok(line) if line == what => break,
            Ok(_) => continue,
            Err(e) => {
                let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                panic!("the load never said {what:?}: {e}");
            }
        }
    };
    tokio::task::block_in_place(|| wait_for("ready", Duration::from_secs(300)));
    let startup = started.elapsed();
    let startup_requests = server.request_count();
    let held = Instant::now();
    tokio::task::block_in_place(|| wait_for("done", Duration::from_secs(HOLD_SECONDS + 60)));
    let served = server.request_count() - startup_requests;
    let per_second = served as f64 / held.elapsed().as_secs_f64();
    let rss = rss_mib();
    let websocket_watches = server.websocket_watch_count();
    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&account);
    server.shutdown().await;
    Row {
        clusters,
        startup,
        startup_requests,
        per_second,
        websocket_watches,
        rss,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cache = sandbox::flink_dist::cache_dir();
    let flink_home = sandbox::flink_dist::ensure(&cache, &|line| eprintln!("flink-setup: {line}"))
        .expect("Flink is installed");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/java/native-load/src");
    let jar = sandbox::flink_dist::java_program(
        &flink_home,
        &cache,
        &src,
        "native-load",
        "org.flinkoperator.tests.NativeLoad",
    )
    .expect("the load program compiles");
    let rss_start = rss_mib();
    let mut rows = Vec::new();
    for clusters in [10, 100] {
        rows.push(measure(&flink_home, &jar, clusters).await);
    }
    println!(
        "| idle native JobManagers with HA (Flink 2.3's client) | startup: time, requests | requests/s while held ({HOLD_SECONDS} s) | watches opened over WebSocket | stand-in RSS (MiB, {rss_start:.0} at start) |"
    );
    println!("|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {:.1} s, {} | {:.1} | {} | {:.0} |",
            row.clusters,
            row.startup.as_secs_f64(),
            row.startup_requests,
            row.per_second,
            row.websocket_watches,
            row.rss
        );
    }
}
