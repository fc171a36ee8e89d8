//! The webhook's certificate and TLS listener. The certificate comes from a directory
//! (`tls.crt`, `tls.key`: cert-manager's Secret, mounted) or is generated: a private CA and a
//! serving certificate for the webhook Service's DNS names, which `certificate.rs` shares
//! between replicas through a Secret.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A serving certificate and its key (PEM), and the CA that signed it (PEM, for `caBundle`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

/// How long a generated certificate is valid.
const VALID_YEARS: i16 = 10;

/// A private CA and a certificate it signs for `dns_names`.
pub fn generate(dns_names: &[String]) -> Result<Certificate, String> {
    let fail = |e: rcgen::Error| format!("cannot generate the webhook certificate: {e}");
    let year = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year();
    let until = rcgen::date_time_ymd(i32::from(year + VALID_YEARS), 1, 1);
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "flink-operator webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_after = until;
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::new(dns_names.to_vec()).map_err(fail)?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        dns_names.first().cloned().unwrap_or_default(),
    );
    leaf.not_after = until;
    let cert = leaf.signed_by(&key, &issuer).map_err(fail)?;
    Ok(Certificate {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: ca_cert.pem(),
    })
}

/// `tls.crt` and `tls.key` from `dir`, and `ca.crt` when there (cert-manager writes all three).
pub fn from_dir(dir: &Path) -> Result<Certificate, String> {
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .map_err(|e| format!("{}: {e}", dir.join(file).display()))
    };
    let cert_pem = read("tls.crt")?;
    Ok(Certificate {
        key_pem: read("tls.key")?,
        ca_pem: read("ca.crt").unwrap_or_else(|_| cert_pem.clone()),
        cert_pem,
    })
}

/// The rustls acceptor for `certificate`.
pub fn acceptor(certificate: &Certificate) -> Result<TlsAcceptor, String> {
    let chain = CertificateDer::pem_slice_iter(certificate.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the webhook certificate is not PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes())
        .map_err(|e| format!("the webhook key is not PEM: {e}"))?;
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| format!("the webhook certificate and key do not fit: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// TCP accepted, then TLS; a client that fails or stalls its handshake is dropped and the
/// next one accepted (the API server is the only client, and retries).
pub struct TlsListener {
    pub tcp: tokio::net::TcpListener,
    pub acceptor: TlsAcceptor,
}

/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match tokio::time::timeout(HANDSHAKE, self.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "webhook: TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "webhook: TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
