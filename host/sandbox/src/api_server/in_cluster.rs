//! The API server as a pod sees it on a real cluster: HTTPS at `KUBERNETES_SERVICE_HOST` and
//! `_PORT`, with a certificate signed by the cluster's CA (`ca.crt`) and a service-account
//! bearer token (`token`), both in the service-account directory. Clients that configure
//! themselves in-cluster (Flink's shaded fabric8: https is hard-coded there) find the same API
//! as over plain HTTP, behind TLS and the token; a request without the token gets 401.

use super::Shared;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What a pod needs to reach the in-cluster endpoint.
#[derive(Clone, Debug)]
pub struct InClusterAccess {
    /// `KUBERNETES_SERVICE_HOST`.
    pub host: String,
    /// `KUBERNETES_SERVICE_PORT`.
    pub port: u16,
    /// The CA that signed the serving certificate (PEM): the service account's `ca.crt`.
    pub ca_pem: String,
    /// The service account's bearer token.
    pub token: String,
}

impl InClusterAccess {
    /// Projects the service account into `dir` as a kubelet does (`ca.crt`, `token`,
    /// `namespace`) and returns the environment of a pod that has it there: the in-cluster
    /// variables, and where fabric8 finds those files (its defaults are
    /// `/var/run/secrets/kubernetes.io/serviceaccount/...`, which a process here cannot have).
    /// A kubeconfig is never looked for, as in a pod without one.
    pub fn project(&self, dir: &Path, namespace: &str) -> std::io::Result<Vec<(String, String)>> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("ca.crt"), &self.ca_pem)?;
        std::fs::write(dir.join("token"), &self.token)?;
        std::fs::write(dir.join("namespace"), namespace)?;
        let file = |name: &str| dir.join(name).display().to_string();
        Ok(vec![
            ("KUBERNETES_SERVICE_HOST".into(), self.host.clone()),
            ("KUBERNETES_SERVICE_PORT".into(), self.port.to_string()),
            ("KUBERNETES_AUTH_TRYKUBECONFIG".into(), "false".into()),
            ("KUBERNETES_CERTS_CA_FILE".into(), file("ca.crt")),
            ("KUBERNETES_AUTH_SERVICEACCOUNT_TOKEN".into(), file("token")),
            ("KUBENAMESPACE".into(), file("namespace")),
        ])
    }
}

/// A CA and a serving certificate for the loopback address (and the in-cluster Service's DNS
/// names), and a random token.
pub(super) fn credentials() -> Result<(InClusterAccess, TlsAcceptor), String> {
    let fail = |e: rcgen::Error| format!("cannot make the in-cluster certificate: {e}");
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "flink-operator local cluster CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, "kubernetes.default.svc");
    leaf.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::DnsName("kubernetes.default.svc".try_into().map_err(fail)?),
        SanType::DnsName("localhost".try_into().map_err(fail)?),
    ];
    let cert = leaf.signed_by(&key, &issuer).map_err(fail)?;
    let chain =
        vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).map_err(|e| e.to_string())?];
    let private =
        PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).map_err(|e| e.to_string())?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| e.to_string())?;
    // The key pair's DER is random; its hash makes a token nobody else knows.
    let token = {
        use std::hash::{BuildHasher, Hasher};
        let state = std::collections::hash_map::RandomState::new();
        let mut parts = String::new();
        for chunk in key.serialized_der().chunks(64).take(4) {
            let mut hasher = state.build_hasher();
            hasher.write(chunk);
            parts.push_str(&format!("{:016x}", hasher.finish()));
        }
        parts
    };
    Ok((
        InClusterAccess {
            host: "127.0.0.1".into(),
            port: 0,
            ca_pem: ca_cert.pem(),
            token,
        },
        TlsAcceptor::from(Arc::new(config)),
    ))
}

/// Serves the API with the bearer token required.
pub(super) async fn authorized(
    State((shared, token)): State<(Arc<Shared>, Arc<str>)>,
    request: Request,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented != Some(&*token) {
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401
        });
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            status.to_string(),
        )
            .into_response();
    }
    super::handlers::handle(State(shared), request).await
}

/// TCP accepted, the TLS handshake in a task of its own (a stalled client holds up nobody).
pub(super) struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    pub(super) fn new(
        tcp: tokio::net::TcpListener,
        acceptor: TlsAcceptor,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (done, ready) = tokio::sync::mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    let handshake = acceptor.accept(stream);
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await
                    {
                        let _ = done.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
