//! Flink's own Kubernetes client against the API stand-in: `tests/java/fabric8-probe` makes the
//! calls a native JobManager makes (through `FlinkKubeClient` and the shaded fabric8 client in
//! the installed `flink-dist`, configured from the environment as in a pod) and prints one line
//! per step; every step must pass, and the stand-in must have seen what the client did.

use flink_operator_tests::flink_cluster::{FlinkInstall, repo_dir};
use sandbox::ApiServer;
use serde_json::Value;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs the probe with `env`, the environment the process runtime gives a pod; its stdout, or
/// why it did not finish in time.
fn probe(install: &FlinkInstall, env: &[(String, String)], cluster_id: &str) -> (bool, String) {
    let jar = sandbox::flink_dist::java_program(
        &install.flink_home,
        &sandbox::flink_dist::cache_dir(),
        &repo_dir().join("tests/java/fabric8-probe/src"),
        "fabric8-probe",
        "org.flinkoperator.tests.Fabric8Probe",
    )
    .expect("the probe compiles");
    let mut child = sandbox::flink_dist::java(
        &install.flink_home,
        &jar,
        "org.flinkoperator.tests.Fabric8Probe",
        "fabric8-probe",
    )
    .arg(cluster_id)
    .envs(env.iter().cloned())
    .env_remove("KUBECONFIG")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("java runs");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out = String::new();
    let mut err = String::new();
    let _ = child.stdout.take().map(|mut s| s.read_to_string(&mut out));
    let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
    let text = format!(
        "{}\n--- stderr (tail) ---\n{}",
        tail(&out, 200),
        tail(&err, 60)
    );
    match status {
        Some(status) => (status.success(), text),
        None => (false, format!("the probe did not finish in 180 s\n{text}")),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flinks_own_kubernetes_client_does_what_a_native_jobmanager_does() {
    let install = FlinkInstall::ensure().expect("Flink is installed");
    // In-cluster, as in a pod: HTTPS at KUBERNETES_SERVICE_HOST/PORT, the service account's
    // token and CA from its directory (fabric8 hard-codes https there).
    let server = ApiServer::default()
        .with_in_cluster()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let access = server.in_cluster().expect("in-cluster endpoint").clone();
    let account = std::env::temp_dir().join(format!("fabric8-probe-sa-{}", std::process::id()));
    let env = access
        .project(&account, "default")
        .expect("service account projected");
    let requests_before = server.request_count();
    let (passed, output) = tokio::task::spawn_blocking(move || probe(&install, &env, "probe"))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&account);
    for step in [
        "the JobManager Deployment is created",
        "TaskManager pods are watched",
        "a TaskManager pod is created, owned by the JobManager Deployment",
        "the watch sees the new pod",
        "TaskManager pods are listed by their labels",
        "leader election on a ConfigMap lock",
        "the leader writes its data by check-and-update",
        "the leader renews its lock without losing the data",
        "an update from a stale resource version is refused with 409",
        "a TaskManager pod is stopped and the watch sees it go",
        "stopping the cluster deletes the Deployment and what it owns",
        "the ConfigMap is deleted",
    ] {
        assert!(
            output.lines().any(|l| l == format!("ok {step}")),
            "step {step:?} did not pass:\n{output}"
        );
    }
    assert!(passed, "{output}");
    assert!(
        server.request_count() > requests_before,
        "the probe's requests reached the stand-in"
    );
    // The endpoint is TLS with the cluster's CA, and refuses a request without the token.
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(access.ca_pem.as_bytes()).expect("the CA is PEM"),
        )
        .build()
        .expect("client");
    let url = format!(
        "https://127.0.0.1:{}/api/v1/namespaces/default/pods",
        access.port
    );
    let anonymous = https.get(&url).send().await.expect("answered");
    assert_eq!(anonymous.status(), 401);
    let authorized = https
        .get(&url)
        .bearer_auth(&access.token)
        .send()
        .await
        .expect("answered");
    assert_eq!(authorized.status(), 200);
    // fabric8 watches over WebSocket when the server offers it, as a real one does.
    assert!(
        server.websocket_watch_count() >= 1,
        "no watch was served over WebSocket"
    );
    // What the client did is what the stand-in holds: nothing of the cluster is left.
    let left: Vec<Value> = server.with_store(|s| {
        ["pods", "configmaps"]
            .iter()
            .filter_map(|plural| {
                let rt = s.resource_type("", "v1", plural).cloned()?;
                s.list(&rt, &Default::default()).ok()
            })
            .flat_map(|(items, _)| items)
            .filter(|o| o.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("probe"))
            .collect()
    });
    assert!(left.is_empty(), "left behind: {left:?}");
    server.shutdown().await;
}
