//! The admission webhook of a running operator, over TLS, as the API server calls it: the
//! operator makes a certificate, shares it with a second replica through a Secret, puts its CA
//! into the webhook configurations' caBundle, and answers AdmissionReview v1 bodies: allowed,
//! denied with the field and the fix, and mutated with a JSON patch.

mod common;

use common::eventually;
use flink_operator::controller::{self, Context};
use flink_operator::settings::Settings;
use flink_operator::webhook::WebhookSettings;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const SERVICE: &str = "flink-operator-webhook.flink-system.svc";

fn webhook_configuration(kind: &str, path: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
        "metadata": {"name": "flink-operator"},
        "webhooks": [{
            "name": format!("{}.flink.apache.org", path.trim_start_matches('/')),
            "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
            "clientConfig": {"service": {"name": "flink-operator-webhook", "namespace": "flink-system", "path": path}},
            "rules": [{"apiGroups": ["flink.apache.org"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["flinkdeployments", "flinksessionjobs", "flinkstatesnapshots"]}]
        }]
    })
}

fn start(
    client: &kube::Client,
) -> (
    Arc<Context>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let mut settings = Settings::default();
    settings.policies.namespace = "flink-system".into();
    settings.webhook = Some(WebhookSettings {
        address: ([127, 0, 0, 1], 0).into(),
        cert_dir: None,
        dns_names: vec![SERVICE.to_string()],
        secret: "flink-operator-webhook-cert".into(),
        configuration: Some("flink-operator".into()),
        reload_every: std::time::Duration::from_millis(200),
    });
    let ctx = Context::new(client.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    (ctx, stop, task)
}

fn review(operation: &str, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "e911857d-c318-11e8-bbad-025000000001", "operation": operation,
                    "kind": {"group": "flink.apache.org", "version": "v1beta1", "kind": object["kind"]},
                    "object": object, "oldObject": null}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_serves_tls_with_a_shared_certificate_and_judges_admission_reviews() {
    let (server, client) = common::stand_in(&["flink-system"]).await;
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    validating
        .create(
            &PostParams::default(),
            &serde_json::from_value(webhook_configuration(
                "ValidatingWebhookConfiguration",
                "/validate",
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    mutating
        .create(
            &PostParams::default(),
            &serde_json::from_value(webhook_configuration(
                "MutatingWebhookConfiguration",
                "/mutate",
            ))
            .unwrap(),
        )
        .await
        .unwrap();

    // Two replicas: the second serves the certificate the first one stored.
    let (first, stop_first, first_task) = start(&client);
    let address = eventually("the first webhook", async || {
        first.webhook.address.get().copied()
    })
    .await;
    let (second, stop_second, second_task) = start(&client);
    eventually("the second webhook", async || {
        second.webhook.address.get().copied()
    })
    .await;
    let ca = first.webhook.ca_pem.get().unwrap().clone();
    assert_eq!(
        second.webhook.ca_pem.get(),
        Some(&ca),
        "one certificate for all replicas"
    );
    let secret = Api::<Secret>::namespaced(client.clone(), "flink-system")
        .get("flink-operator-webhook-cert")
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(secret.data.unwrap()["ca.crt"].0, ca.as_bytes());
    let bundle = validating
        .get("flink-operator")
        .await
        .unwrap()
        .webhooks
        .unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .expect("caBundle set");
    assert_eq!(bundle.0, ca.as_bytes());
    let bundle = mutating
        .get("flink-operator")
        .await
        .unwrap()
        .webhooks
        .unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .expect("caBundle set");
    assert_eq!(bundle.0, ca.as_bytes());

    // A client that trusts only that CA, reaching the Service's name on the bound port.
    let https = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .resolve(SERVICE, address)
        .build()
        .unwrap();
    let post = async |path: &str, body: Value| -> Value {
        https
            .post(format!("https://{SERVICE}:{}{path}", address.port()))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e:?}"))
            .json()
            .await
            .unwrap()
    };
    let deployment = |parallelism: i64| {
        json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "orders", "namespace": "team-a"},
            "spec": {"image": "flink:2.3", "flinkVersion": "v2_3",
                     "jobManager": {"resource": {"memory": "1g", "cpu": 1}},
                     "taskManager": {"resource": {"memory": "1g", "cpu": 1}},
                     "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "parallelism": parallelism, "upgradeMode": "stateless"}}
        })
    };
    let allowed = post("/validate", review("CREATE", deployment(2))).await;
    assert_eq!(
        allowed["response"],
        json!({"uid": "e911857d-c318-11e8-bbad-025000000001", "allowed": true})
    );
    let denied = post("/validate", review("CREATE", deployment(0))).await;
    assert_eq!(denied["response"]["allowed"], false);
    let message = denied["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.job.parallelism: must be at least 1, got 0"),
        "{message}"
    );
    let session_job = json!({
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkSessionJob",
        "metadata": {"name": "reports", "namespace": "team-a"},
        "spec": {"deploymentName": "shared", "job": {"jarURI": "https://repo.example.com/reports.jar"}}
    });
    let mutated = post("/mutate", review("CREATE", session_job)).await;
    assert_eq!(mutated["response"]["patchType"], "JSONPatch");
    let patch: k8s_openapi::ByteString =
        serde_json::from_value(mutated["response"]["patch"].clone()).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&patch.0).unwrap(),
        json!([{"op": "add", "path": "/metadata/labels", "value": {"target.session": "shared"}}])
    );

    // A client that does not trust the CA is refused at the handshake.
    let stranger = reqwest::Client::builder()
        .resolve(SERVICE, address)
        .build()
        .unwrap();
    let refused = stranger
        .post(format!("https://{SERVICE}:{}/validate", address.port()))
        .json(&review("CREATE", deployment(2)))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "an untrusted certificate must fail the handshake"
    );

    let _ = stop_first.send(());
    let _ = stop_second.send(());
    for task in [first_task, second_task] {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .unwrap()
            .unwrap();
    }
    server.shutdown().await;
}

/// Hostile (docs/security.md): clients that open connections and never finish a TLS handshake
/// hold up nobody, one address cannot take every slot, and a certificate cert-manager renews in
/// its directory is served without a restart (handshakes are per-connection tasks; the served
/// certificate is swapped whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_hold_up_nobody_and_a_renewed_certificate_is_served_without_a_restart() {
    use flink_operator::webhook::tls;
    let (_server, client) = common::stand_in(&["flink-system"]).await;
    let dir = std::env::temp_dir().join(format!("webhook-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |certificate: &tls::Certificate| {
        std::fs::write(dir.join("tls.crt"), &certificate.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), &certificate.key_pem).unwrap();
        std::fs::write(dir.join("ca.crt"), &certificate.ca_pem).unwrap();
    };
    let first = tls::generate(&[SERVICE.to_string()]).unwrap();
    write(&first);
    let mut settings = Settings::default();
    settings.policies.namespace = "flink-system".into();
    settings.webhook = Some(WebhookSettings {
        address: ([127, 0, 0, 1], 0).into(),
        cert_dir: Some(dir.clone()),
        dns_names: vec![SERVICE.to_string()],
        secret: "unused".into(),
        configuration: None,
        reload_every: Duration::from_millis(200),
    });
    let ctx = Context::new(client.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    let address = eventually("the webhook", async || ctx.webhook.address.get().copied()).await;
    assert!(
        ctx.webhook
            .serving
            .load(std::sync::atomic::Ordering::Relaxed)
    );

    // Forty connections that never say a word, from one address (a tenant's pod): that
    // address gets its share of slots, and its next connection is closed at once.
    let from_one_pod = async || {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        socket.connect(address).await.unwrap()
    };
    let mut stalled = Vec::new();
    for _ in 0..40 {
        stalled.push(from_one_pod().await);
    }
    let mut one_more = from_one_pod().await;
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read(&mut one_more, &mut byte),
    )
    .await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a connection beyond the address's share is closed: {closed:?}"
    );
    let trusting = |ca: &str| {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .resolve(SERVICE, address)
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap()
    };
    let validate = async |client: &reqwest::Client| {
        client
            .post(format!("https://{SERVICE}:{}/validate", address.port()))
            .json(&review("CREATE", json!({"kind": "FlinkStateSnapshot"})))
            .send()
            .await
    };
    let started = std::time::Instant::now();
    let answer = validate(&trusting(&first.ca_pem))
        .await
        .expect("answered while 16 handshakes stall");
    assert!(answer.status().is_success());
    assert!(started.elapsed() < Duration::from_secs(3));

    // cert-manager renews: another CA and key, written in place.
    let renewed = tls::generate(&[SERVICE.to_string()]).unwrap();
    write(&renewed);
    eventually("the renewed certificate served", async || {
        validate(&trusting(&renewed.ca_pem)).await.ok().map(|_| ())
    })
    .await;
    assert!(
        validate(&trusting(&first.ca_pem)).await.is_err(),
        "the old certificate is no longer served"
    );
    drop(stalled);
    let _ = stop.send(());
    let _ = task.await;
    assert!(
        !ctx.webhook
            .serving
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
