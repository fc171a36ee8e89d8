//! The admission webhook: `/validate` and `/mutate` for the `flink.apache.org` resources, an
//! AdmissionReview v1 server over TLS. The decisions are `admission.rs` (pure, the reconciler's
//! own validation); this file serves them and, when the operator makes its own certificate,
//! shares it between replicas through a Secret and publishes its CA in the webhook
//! configurations' `caBundle`.

pub mod admission;
pub mod tls;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use flink_api::validation::ValidationSettings;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Where the TLS port listens.
    pub address: std::net::SocketAddr,
    /// A directory with `tls.crt` and `tls.key` (cert-manager); None: the operator makes one.
    pub cert_dir: Option<PathBuf>,
    /// The names the generated certificate is for (the webhook Service's DNS names).
    pub dns_names: Vec<String>,
    /// The Secret (in the operator's namespace) that shares a generated certificate.
    pub secret: String,
    /// The Validating- and MutatingWebhookConfiguration whose `caBundle` gets the generated
    /// CA (None: cert-manager's CA injector or the user fills it).
    pub configuration: Option<String>,
    /// How often `cert_dir` is read again for a renewed certificate.
    pub reload_every: std::time::Duration,
}

/// The validation settings in effect at the moment of a request (the operator ConfigMap can
/// change them while the webhook serves).
pub type CurrentValidation = Arc<dyn Fn() -> ValidationSettings + Send + Sync>;

/// Where the webhook listens, once bound (port 0 picks one), and whether it serves now.
#[derive(Debug, Default)]
pub struct Bound {
    pub address: OnceLock<std::net::SocketAddr>,
    /// The CA clients must trust.
    pub ca_pem: OnceLock<String>,
    /// True while requests are served (`/readyz` is false otherwise).
    pub serving: std::sync::atomic::AtomicBool,
}

/// Serves the webhook until `shutdown`; an error says why it cannot (then the API server's
/// `failurePolicy` decides what happens to requests).
pub async fn serve(
    client: kube::Client,
    namespace: String,
    settings: WebhookSettings,
    validation: CurrentValidation,
    bound: Arc<Bound>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let certificate = match &settings.cert_dir {
        Some(dir) => tls::from_dir(dir)?,
        None => {
            let certificate = shared_certificate(&client, &namespace, &settings).await?;
            if let Some(name) = &settings.configuration {
                publish_ca_bundle(&client, name, &certificate.ca_pem).await?;
            }
            certificate
        }
    };
    let served = Arc::new(tls::ServedCertificate::new(&certificate)?);
    let acceptor = tls::acceptor(served.clone())?;
    let tcp = tokio::net::TcpListener::bind(settings.address)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.address))?;
    let address = tcp.local_addr().ok();
    let _ = bound.ca_pem.set(certificate.ca_pem.clone());
    let app = Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .with_state(validation);
    let listener = tls::TlsListener::new(tcp, acceptor)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.address))?;
    let shutdown = futures::FutureExt::shared(shutdown);
    // cert-manager renews its certificate in place: the new one is served without a restart.
    let reloading = settings.cert_dir.clone().map(|dir| {
        tokio::spawn(tls::reload_from(
            dir,
            served,
            settings.reload_every,
            shutdown.clone(),
        ))
    });
    bound
        .serving
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // The address is told once it is served: who learns it finds `serving` set.
    if let Some(address) = address {
        let _ = bound.address.set(address);
        tracing::info!(%address, "serving the admission webhook (/validate, /mutate)");
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("the webhook stopped: {e}"));
    bound
        .serving
        .store(false, std::sync::atomic::Ordering::Relaxed);
    if let Some(reloading) = reloading {
        reloading.abort();
    }
    served
}

async fn validate(
    State(validation): State<CurrentValidation>,
    Json(review): Json<Value>,
) -> Json<Value> {
    Json(admission::validate(&review, &validation()))
}

async fn mutate(Json(review): Json<Value>) -> Json<Value> {
    Json(admission::mutate(&review))
}

/// The certificate every replica serves: read from the Secret, or generated and stored there
/// by the first replica (a replica that loses the race reads the winner's).
async fn shared_certificate(
    client: &kube::Client,
    namespace: &str,
    settings: &WebhookSettings,
) -> Result<tls::Certificate, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |secret: &Secret| -> Option<tls::Certificate> {
        let data = secret.data.as_ref()?;
        let text = |key: &str| {
            data.get(key)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        };
        Some(tls::Certificate {
            cert_pem: text("tls.crt")?,
            key_pem: text("tls.key")?,
            ca_pem: text("ca.crt")?,
        })
    };
    let name = &settings.secret;
    let fail = |e: kube::Error| format!("the webhook certificate Secret {namespace}/{name}: {e}");
    if let Some(existing) = secrets.get_opt(name).await.map_err(fail)?
        && let Some(certificate) = read(&existing)
    {
        return Ok(certificate);
    }
    let certificate = tls::generate(&settings.dns_names)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "flink-operator".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (
                "tls.crt".to_string(),
                ByteString(certificate.cert_pem.clone().into_bytes()),
            ),
            (
                "tls.key".to_string(),
                ByteString(certificate.key_pem.clone().into_bytes()),
            ),
            (
                "ca.crt".to_string(),
                ByteString(certificate.ca_pem.clone().into_bytes()),
            ),
        ])),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(certificate),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = secrets.get(name).await.map_err(fail)?;
            read(&existing).ok_or_else(|| {
                format!("the Secret {namespace}/{name} lacks tls.crt, tls.key or ca.crt")
            })
        }
        Err(e) => Err(fail(e)),
    }
}

/// Puts the CA into every webhook of the Validating- and MutatingWebhookConfiguration `name`
/// (those that exist), so the API server trusts the certificate.
async fn publish_ca_bundle(client: &kube::Client, name: &str, ca_pem: &str) -> Result<(), String> {
    let bundle = serde_json::to_value(ByteString(ca_pem.as_bytes().to_vec())).unwrap_or_default();
    set_ca_bundle::<ValidatingWebhookConfiguration>(client, name, &bundle).await?;
    set_ca_bundle::<MutatingWebhookConfiguration>(client, name, &bundle).await
}

/// Sets `clientConfig.caBundle` of every webhook of the configuration `name` of kind `K`.
async fn set_ca_bundle<K>(client: &kube::Client, name: &str, bundle: &Value) -> Result<(), String>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let kind = K::kind(&());
    let api: Api<K> = Api::all(client.clone());
    let Some(config) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let mut webhooks = serde_json::to_value(&config)
        .map(|c| c["webhooks"].clone())
        .unwrap_or_default();
    let Some(list) = webhooks.as_array_mut() else {
        return Ok(());
    };
    for webhook in list {
        webhook["clientConfig"]["caBundle"] = bundle.clone();
    }
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"webhooks": webhooks})),
    )
    .await
    .map_err(|e| format!("cannot set the caBundle of {kind} {name}: {e}"))?;
    Ok(())
}
