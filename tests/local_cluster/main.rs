//! The local cluster with real Flink: hand-written standalone JobManager and TaskManager
//! Deployments become a working Flink session cluster, reachable through its Service name;
//! scaling the TaskManager Deployment adds a TaskManager; `kubectl logs` shows its output; a
//! container that cannot start ends in CrashLoopBackOff; deleting stops every JVM.

mod decorators;
mod fabric8;

use flink_operator_tests::flink_cluster::FlinkInstall;
use flink_operator_tests::support::{jvms_under, wait_for};
use flink_rest::{ClientConfig, FlinkClient};
use sandbox::ApiServer;
use sandbox::runtime::{self, RuntimeConfig};
use sandbox::store::{DeleteOptions, Subresource};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn deployment(name: &str, component: &str, replicas: i64, ports: Value) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": "session", "component": component}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "session", "component": component}},
            "template": {"metadata": {"labels": {"app": "session", "component": component}},
                "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.3", "args": [component],
                    "ports": ports, "volumeMounts": [{"name": "flink-config", "mountPath": "/opt/flink/conf"}]}],
                    "volumes": [{"name": "flink-config", "configMap": {"name": "session-config"}}]}}}})
}

/// A stand-in with the process runtime, in a fresh work directory. `local:///opt/flink/usrlib/`
/// maps into the directory holding the example jar.
async fn local_cluster(
    tag: &str,
) -> (
    FlinkInstall,
    std::path::PathBuf,
    sandbox::ServerHandle,
    runtime::RuntimeHandle,
) {
    let install = FlinkInstall::ensure().expect("Flink is installed");
    let work = std::env::temp_dir().join(format!("sandbox-runtime-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let server = ApiServer::default()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let config = RuntimeConfig {
        flink_home: install.flink_home.clone(),
        usrlib: install.example_jar.parent().unwrap().to_path_buf(),
        work_dir: work.clone(),
        max_grace: Duration::from_secs(10),
        api_url: Some(server.url()),
        in_cluster: None,
    };
    let runtime = runtime::start(server.store_access(), config).unwrap();
    (install, work, server, runtime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_standalone_deployments_become_a_working_session_cluster() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (install, work, server, runtime) = local_cluster("it").await;

    let log4j =
        std::fs::read_to_string(install.flink_home.join("conf/log4j-console.properties")).unwrap();
    let config = [
        "jobmanager.rpc.address: session-jm",
        "jobmanager.rpc.port: 6123",
        "rest.port: 8081",
        "jobmanager.memory.process.size: 768m",
        "jobmanager.memory.jvm-metaspace.size: 160m",
        "taskmanager.memory.process.size: 800m",
        "taskmanager.memory.managed.size: 64m",
        "taskmanager.memory.network.min: 32m",
        "taskmanager.memory.network.max: 32m",
        "taskmanager.memory.jvm-metaspace.size: 160m",
        "taskmanager.numberOfTaskSlots: 2",
        "jobmanager.scheduler: adaptive",
    ]
    .join("\n");
    server.with_store(|s| {
        let rt = |plural: &str, group: &str| {
            s.resource_type(group, "v1", plural).cloned().unwrap_or_else(|| panic!("{plural} served"))
        };
        let (cm, svc, deploy) = (rt("configmaps", ""), rt("services", ""), rt("deployments", "apps"));
        s.create(&cm, Some("default"), json!({"metadata": {"name": "session-config"}, "data": {"config.yaml": config, "log4j-console.properties": log4j}}), false).unwrap();
        s.create(&svc, Some("default"), json!({"metadata": {"name": "session-jm"}, "spec": {"selector": {"app": "session", "component": "jobmanager"},
            "ports": [{"name": "rpc", "port": 6123}, {"name": "rest", "port": 8081}]}}), false).unwrap();
        s.create(&deploy, Some("default"), deployment("session-jm", "jobmanager", 1, json!([{"containerPort": 8081, "name": "rest"}, {"containerPort": 6123, "name": "rpc"}])), false).unwrap();
        s.create(&deploy, Some("default"), deployment("session-tm", "taskmanager", 1, json!([])), false).unwrap();
    });

    let get = |group: &'static str, plural: &'static str, name: &'static str| {
        server.with_store(|s| {
            let rt = s.resource_type(group, "v1", plural).cloned().unwrap();
            s.get(&rt, Some("default"), name).ok()
        })
    };
    // The JobManager Deployment reports its pod ready once Flink's REST port answers.
    wait_for(
        "JobManager Deployment ready",
        Duration::from_secs(90),
        async || {
            get("apps", "deployments", "session-jm")
                .filter(|d| d.pointer("/status/readyReplicas") == Some(&json!(1)))
        },
    )
    .await;
    // The Service's endpoints name the JobManager pod; the TaskManager found it by Service name.
    let ip = wait_for(
        "EndpointSlice with a ready address",
        Duration::from_secs(30),
        async || {
            get("discovery.k8s.io", "endpointslices", "session-jm").and_then(|e| {
                e.pointer("/endpoints/0/addresses/0")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        },
    )
    .await;
    assert!(
        ip.starts_with("127.0.") && ip != "127.0.0.1",
        "pods get their own loopback address, got {ip}"
    );
    let hosts = std::fs::read_to_string(work.join("hosts")).unwrap();
    assert!(
        hosts.contains(&format!(
            "{ip} session-jm session-jm.default session-jm.default.svc"
        )),
        "{hosts}"
    );
    let flink = FlinkClient::new(&format!("http://{ip}:8081"), ClientConfig::default()).unwrap();
    let registered = async |n: &str| {
        let flink = flink.clone();
        let n = n.to_string();
        wait_for(
            &format!("{n} TaskManager(s) registered"),
            Duration::from_secs(120),
            async move || {
                let metrics = flink
                    .jobmanager_metrics(&["numRegisteredTaskManagers"])
                    .await
                    .ok()?;
                (metrics.first()?.value.as_deref() == Some(n.as_str())).then_some(())
            },
        )
        .await
    };
    registered("1").await;
    assert_eq!(flink.config().await.unwrap().flink_version, "2.3.0");

    // Scaling the TaskManager Deployment adds a TaskManager.
    server.with_store(|s| {
        let rt = s
            .resource_type("apps", "v1", "deployments")
            .cloned()
            .unwrap();
        s.patch(
            &rt,
            Some("default"),
            "session-tm",
            sandbox::patch::PatchType::Merge,
            br#"{"spec":{"replicas":2}}"#,
            Subresource::Main,
            false,
        )
        .unwrap();
    });
    registered("2").await;
    assert_eq!(
        jvms_under(&work),
        3,
        "one JobManager and two TaskManager JVMs"
    );

    // kubectl logs reads a pod's container output.
    let kubeconfig = work.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).unwrap();
    let pods_with = |component: &str| {
        server.with_store(|s| {
            let rt = s.resource_type("", "v1", "pods").cloned().unwrap();
            let labels =
                sandbox::selectors::LabelSelector::parse(&format!("component={component}"))
                    .unwrap();
            s.list(
                &rt,
                &sandbox::store::ListOptions {
                    labels,
                    ..Default::default()
                },
            )
            .unwrap()
            .0
        })
    };
    let jm_pod = pods_with("jobmanager")[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let logs = tokio::process::Command::new("kubectl")
        .args(["logs", &jm_pod, "--tail=200"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .unwrap();
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.contains("Registering TaskManager"), "{logs}");

    // A container that cannot start is restarted with backoff and reported as CrashLoopBackOff.
    server.with_store(|s| {
        let rt = s
            .resource_type("apps", "v1", "deployments")
            .cloned()
            .unwrap();
        let mut broken = deployment("broken-tm", "broken", 1, json!([]));
        broken["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["taskmanager"]);
        broken["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "FLINK_PROPERTIES", "value": "taskmanager.memory.process.size: 10m"}]);
        s.create(&rt, Some("default"), broken, false).unwrap();
    });
    let crashing = wait_for("CrashLoopBackOff", Duration::from_secs(60), async || {
        pods_with("broken").into_iter().find(|p| {
            p.pointer("/status/containerStatuses/0/state/waiting/reason")
                .and_then(Value::as_str)
                == Some("CrashLoopBackOff")
        })
    })
    .await;
    assert!(
        crashing
            .pointer("/status/containerStatuses/0/restartCount")
            .and_then(Value::as_u64)
            >= Some(1)
    );
    assert_eq!(
        get("apps", "deployments", "broken-tm")
            .and_then(|d| d.pointer("/status/readyReplicas").cloned()),
        Some(json!(0))
    );

    // Deleting the Deployments removes their pods (owner references) and stops every JVM.
    server.with_store(|s| {
        let rt = s
            .resource_type("apps", "v1", "deployments")
            .cloned()
            .unwrap();
        for name in ["session-tm", "session-jm", "broken-tm"] {
            s.delete(&rt, Some("default"), name, &DeleteOptions::default())
                .unwrap();
        }
    });
    // The pods are collected with their Deployment, gracefully: marked at once, removed by
    // the runtime once their JVMs stopped, so no pod listed means no JVM running.
    let pods = || {
        server.with_store(|s| {
            let rt = s.resource_type("", "v1", "pods").cloned().unwrap();
            s.list(&rt, &Default::default()).unwrap().0
        })
    };
    assert!(
        pods()
            .iter()
            .all(|p| p.pointer("/metadata/deletionTimestamp").is_some()),
        "every pod is marked for deletion with its Deployment"
    );
    wait_for("every pod removed", Duration::from_secs(60), async || {
        pods().is_empty().then_some(())
    })
    .await;
    assert_eq!(
        jvms_under(&work),
        0,
        "no pod is removed before its JVM stopped"
    );
    runtime.stop();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
}

/// The two scenarios share the machine's two cores: one at a time.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Creates every object of a multi-document YAML file through the store, as `kubectl apply`
/// would through the API.
fn apply_fixture(server: &sandbox::ServerHandle, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    server.with_store(|s| {
        for document in documents {
            let api_version = document["apiVersion"].as_str().unwrap();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let plural = format!(
                "{}s",
                document["kind"].as_str().unwrap().to_ascii_lowercase()
            );
            let rt = s
                .resource_type(group, version, &plural)
                .cloned()
                .unwrap_or_else(|| panic!("{plural} served"));
            s.create(&rt, Some("default"), document, false).unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_written_application_cluster_runs_the_example_job_from_usrlib() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (_, work, server, runtime) = local_cluster("app").await;
    apply_fixture(
        &server,
        &flink_operator_tests::flink_cluster::repo_dir()
            .join("tests/fixtures/local/application-by-hand.yaml"),
    );
    let ip = wait_for(
        "the JobManager endpoint",
        Duration::from_secs(90),
        async || {
            server.with_store(|s| {
                let rt = s
                    .resource_type("discovery.k8s.io", "v1", "endpointslices")
                    .cloned()
                    .unwrap();
                let slice = s.get(&rt, Some("default"), "app-by-hand-jm").ok()?;
                (slice.pointer("/endpoints/0/conditions/ready") == Some(&json!(true)))
                    .then(|| {
                        slice
                            .pointer("/endpoints/0/addresses/0")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .flatten()
            })
        },
    )
    .await;
    let flink = FlinkClient::new(&format!("http://{ip}:8081"), ClientConfig::default()).unwrap();
    let job = wait_for(
        "the example job RUNNING",
        Duration::from_secs(120),
        async || {
            let overview = flink.jobs_overview().await.ok()?;
            overview
                .jobs
                .into_iter()
                .find(|j| j.name == "stateful-counter" && j.state == flink_rest::JobState::Running)
        },
    )
    .await;
    let id = flink_rest::JobId::parse(&job.jid).unwrap();
    let details = flink.job_details(&id).await.unwrap();
    assert!(
        details.vertices.iter().all(|v| v.parallelism == 2),
        "{:?}",
        details.vertices
    );
    runtime.stop();
    assert_eq!(jvms_under(&work), 0, "stopping the runtime stops every JVM");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&work);
}
