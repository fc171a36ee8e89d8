//! The installed `kubectl` against the stand-in, unmodified: apply (client-side and
//! server-side), get, list, watch, status patches, scale, delete, and a bad resource's 422.

use sandbox::{ApiServer, ServerHandle};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Cluster {
    server: ServerHandle,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Cluster {
    async fn start() -> Self {
        let server = ApiServer::default()
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "sandbox-kubectl-{}-{}",
            std::process::id(),
            server.address.port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig()).unwrap();
        let cluster = Self {
            server,
            kubeconfig,
            dir,
        };
        let crds = cluster.dir.join("crds.yaml");
        let yaml: Vec<String> = flink_api::crd::all()
            .iter()
            .map(|c| flink_api::crd::to_yaml(c).unwrap())
            .collect();
        std::fs::write(&crds, yaml.join("---\n")).unwrap();
        cluster
            .ok(&["apply", "--server-side", "-f", crds.to_str().unwrap()])
            .await;
        cluster
    }

    /// Runs kubectl off the async runtime (the stand-in serves on it meanwhile).
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let kubeconfig = self.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let stdin = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new("kubectl")
                .args(&args)
                .env("KUBECONFIG", &kubeconfig)
                .env("KUBECTL_KUBERC", "false")
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("kubectl is installed");
            if let Some(input) = stdin {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
            }
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args, None).await;
        assert!(
            output.status.success(),
            "kubectl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn ok_with(&self, args: &[&str], stdin: &str) -> String {
        let output = self.kubectl(args, Some(stdin)).await;
        assert!(
            output.status.success(),
            "kubectl {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const DEPLOYMENT: &str = r#"
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata:
  name: demo
spec:
  image: flink:2.3
  flinkVersion: v2_3
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: 2
  taskManager:
    replicas: 1
  job:
    jarURI: local:///opt/flink/usrlib/job.jar
    parallelism: 2
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_gets_patches_scales_and_deletes_custom_resources() {
    let cluster = Cluster::start().await;
    let applied = cluster.ok_with(&["apply", "-f", "-"], DEPLOYMENT).await;
    assert!(
        applied.contains("flinkdeployment.flink.apache.org/demo created"),
        "{applied}"
    );
    let again = cluster
        .ok_with(
            &["apply", "-f", "-"],
            &DEPLOYMENT.replace("parallelism: 2", "parallelism: 3"),
        )
        .await;
    assert!(again.contains("configured"), "{again}");
    let yaml = cluster.ok(&["get", "flinkdep", "demo", "-o", "yaml"]).await;
    assert!(
        yaml.contains("parallelism: 3") && yaml.contains("generation: 2"),
        "{yaml}"
    );
    cluster
        .ok(&[
            "patch",
            "flinkdeployment",
            "demo",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"lifecycleState":"STABLE","jobStatus":{"state":"RUNNING"}}}"#,
        ])
        .await;
    let table = cluster.ok(&["get", "flinkdep"]).await;
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.contains("JOB STATUS") && header.contains("LIFECYCLE STATE"),
        "{table}"
    );
    assert!(
        table.contains("RUNNING") && table.contains("STABLE"),
        "{table}"
    );
    cluster
        .ok(&["scale", "flinkdeployment", "demo", "--replicas=3"])
        .await;
    let replicas = cluster
        .ok(&[
            "get",
            "flinkdep",
            "demo",
            "-o",
            "jsonpath={.spec.taskManager.replicas}",
        ])
        .await;
    assert_eq!(replicas.trim(), "3");
    let deleted = cluster
        .ok(&["delete", "flinkdep", "demo", "--wait=true", "--timeout=20s"])
        .await;
    assert!(deleted.contains("deleted"), "{deleted}");
    let missing = cluster.kubectl(&["get", "flinkdep", "demo"], None).await;
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_and_built_in_kinds() {
    let cluster = Cluster::start().await;
    let applied = cluster
        .ok_with(&["apply", "--server-side", "-f", "-"], DEPLOYMENT)
        .await;
    assert!(applied.contains("serverside-applied"), "{applied}");
    let managed = cluster
        .ok(&[
            "get",
            "flinkdep",
            "demo",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
            "--show-managed-fields",
        ])
        .await;
    assert!(managed.contains("kubectl"), "{managed}");
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {app: demo}\ndata:\n  a: \"1\"\n";
    cluster.ok_with(&["apply", "-f", "-"], config_map).await;
    cluster
        .ok_with(
            &["apply", "-f", "-"],
            &config_map.replace("a: \"1\"", "a: \"2\""),
        )
        .await;
    let listed = cluster
        .ok(&["get", "configmaps", "-l", "app=demo", "-o", "name"])
        .await;
    assert_eq!(listed.trim(), "configmap/settings");
    let value = cluster
        .ok(&["get", "cm", "settings", "-o", "jsonpath={.data.a}"])
        .await;
    assert_eq!(value, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_custom_resource_gets_the_422_with_the_field() {
    let cluster = Cluster::start().await;
    let output = cluster
        .kubectl(
            &["apply", "-f", "-"],
            Some(&DEPLOYMENT.replace("parallelism: 2", "parallelism: two")),
        )
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spec.job.parallelism"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_watch_prints_changes() {
    let cluster = Cluster::start().await;
    cluster.ok_with(&["apply", "-f", "-"], DEPLOYMENT).await;
    let kubeconfig = cluster.kubeconfig.clone();
    let watch = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("kubectl")
            .args([
                "get",
                "flinkdep",
                "-w",
                "-o",
                "name",
                "--request-timeout=4s",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(5));
        let _ = child.kill();
        child.wait_with_output().unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster
        .ok(&[
            "patch",
            "flinkdep",
            "demo",
            "--type=merge",
            "-p",
            r#"{"spec":{"image":"flink:2.4"}}"#,
        ])
        .await;
    let output = watch.await.unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.matches("flinkdeployment.flink.apache.org/demo")
            .count()
            >= 2,
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = &cluster.server;
}

/// Core/v1 and events.k8s.io/v1 Events are one store seen through two APIs, as on a real
/// cluster: the operator writes events.k8s.io/v1, `kubectl get events` reads core/v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_events_shows_events_written_through_events_k8s_io() {
    let cluster = Cluster::start().await;
    let event = r#"
apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: demo.1
  namespace: default
eventTime: "2026-12-07T08:00:00.000000Z"
regarding: {apiVersion: flink.apache.org/v1beta1, kind: FlinkDeployment, name: demo, namespace: default}
note: Starting deployment of job 0001
reason: Submit
type: Normal
action: Reconcile
reportingController: flink-operator
reportingInstance: flink-operator-0
"#;
    cluster.ok_with(&["create", "-f", "-"], event).await;
    let shown = cluster.ok(&["get", "events"]).await;
    assert!(
        shown.contains("Submit")
            && shown.contains("flinkdeployment/demo")
            && shown.contains("Starting deployment of job 0001"),
        "{shown}"
    );
    let message = cluster
        .ok(&[
            "get",
            "events",
            "demo.1",
            "-o",
            "jsonpath={.message}/{.involvedObject.name}/{.source.component}",
        ])
        .await;
    assert_eq!(
        message,
        "Starting deployment of job 0001/demo/flink-operator"
    );
    cluster.ok(&["delete", "events", "demo.1"]).await;
    let gone = cluster
        .kubectl(&["get", "events.events.k8s.io", "demo.1"], None)
        .await;
    assert!(
        !gone.status.success(),
        "deleted through core/v1, gone from events.k8s.io/v1"
    );
}
