//! What the operator's integration tests share: an API stand-in with our CRDs and the
//! namespaces a test needs, deployments to reconcile, and waiting for a condition.

// Each test crate that includes this module uses a part of it.
#![allow(dead_code)]

use flink_operator::commands::local::install_crds;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long any condition may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `probe` every 50 ms until it yields a value; panics naming `what` after [`WAIT`].
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stand-in on loopback with our CRDs and `namespaces`, and a client of it.
pub async fn stand_in(namespaces: &[&str]) -> (sandbox::ServerHandle, kube::Client) {
    let server = sandbox::ApiServer::default()
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    install_crds(&server).unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    for namespace in namespaces {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    (server, client)
}

/// Creates a minimal session-cluster FlinkDeployment `name` in `namespace`.
pub async fn create_deployment(client: &kube::Client, namespace: &str, name: &str) {
    let api: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), namespace);
    let deployment = json!({
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
        "metadata": {"name": name},
        "spec": {"image": "flink:2.3", "flinkVersion": "v2_3", "mode": "standalone",
                 "jobManager": {"resource": {"memory": "1g", "cpu": 1}},
                 "taskManager": {"resource": {"memory": "1g", "cpu": 1}, "replicas": 1}}
    });
    api.create(
        &PostParams::default(),
        &serde_json::from_value(deployment).unwrap(),
    )
    .await
    .unwrap();
}
