//! The webhook's certificate and TLS listener. The certificate comes from a directory
//! (`tls.crt`, `tls.key`: cert-manager's Secret, mounted) or is generated: a private CA and a
//! serving certificate for the webhook Service's DNS names, which `certificate.rs` shares
//! between replicas through a Secret.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

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

/// The certificate being served, swapped whole when cert-manager renews it: handshakes in
/// flight keep the one they started with.
#[derive(Debug)]
pub struct ServedCertificate {
    current: std::sync::RwLock<Arc<CertifiedKey>>,
}

impl ServedCertificate {
    pub fn new(certificate: &Certificate) -> Result<ServedCertificate, String> {
        Ok(ServedCertificate {
            current: std::sync::RwLock::new(Arc::new(certified_key(certificate)?)),
        })
    }

    /// Serves `certificate` from the next handshake on; a certificate that does not parse is
    /// refused and the current one kept.
    pub fn replace(&self, certificate: &Certificate) -> Result<(), String> {
        let key = Arc::new(certified_key(certificate)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }
}

impl ResolvesServerCert for ServedCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn certified_key(certificate: &Certificate) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(certificate.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the webhook certificate is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the webhook certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes())
        .map_err(|e| format!("the webhook key is not PEM: {e}"))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| format!("the webhook certificate and key do not fit: {e}"))
}

fn provider() -> CryptoProvider {
    tokio_rustls::rustls::crypto::ring::default_provider()
}

/// The rustls acceptor serving whatever `served` holds at each handshake.
pub fn acceptor(served: Arc<ServedCertificate>) -> Result<TlsAcceptor, String> {
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(served);
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Re-reads `dir` (cert-manager's Secret, mounted) every `every` and serves a renewed
/// certificate from then on, until `shutdown`. A Secret volume is updated by swapping a
/// symbolic link, so the files' content, not an inotify event, is what is compared.
pub async fn reload_from(
    dir: std::path::PathBuf,
    served: Arc<ServedCertificate>,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut last = from_dir(&dir).ok();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut shutdown => return,
        }
        let Ok(now) = from_dir(&dir) else {
            continue;
        };
        if last.as_ref() == Some(&now) {
            continue;
        }
        match served.replace(&now) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "serving the renewed webhook certificate")
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "the renewed webhook certificate is not served; the previous one stays")
            }
        }
        last = Some(now);
    }
}

/// How long a client may take for its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// How long an established connection may stay silent before it is closed.
const IDLE: Duration = Duration::from_secs(60);
/// How long any connection lives, however busy: a client that trickles a byte now and then
/// holds its slot for this long at most (the API server simply opens another).
const LIFETIME: Duration = Duration::from_secs(120);
/// Connections at once (handshaking or established); more are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections at once from one address: the API server needs a handful, and one client (a
/// tenant's pod that can reach the port) cannot take every slot.
pub const MAX_PER_PEER: usize = 16;

/// TCP accepted, then TLS in a task of its own with a short timeout, so a client that stalls
/// its handshake holds up nobody; at most [`MAX_CONNECTIONS`] at once and [`MAX_PER_PEER`]
/// from one address, each closed after [`IDLE`] without a byte from the client and after
/// [`LIFETIME`] in any case.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(Connection, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    pub fn new(tcp: tokio::net::TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (done, ready) = tokio::sync::mpsc::channel(16);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let peers = Peers::default();
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook: cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "webhook: {MAX_CONNECTIONS} connections open; closing a new one");
                    continue;
                };
                let Some(from_peer) = peers.admit(peer.ip()) else {
                    tracing::warn!(%peer, "webhook: {MAX_PER_PEER} connections open from this address; closing a new one");
                    continue;
                };
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let connection = Connection {
                                tls,
                                _slot: (slot, from_peer),
                                idle: Box::pin(tokio::time::sleep(IDLE)),
                                expires: Box::pin(tokio::time::sleep(LIFETIME)),
                            };
                            let _ = done.send((connection, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "webhook: TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "webhook: TLS handshake timed out"),
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
    type Io = Connection;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended (the listener is being dropped): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Connections open per client address.
#[derive(Clone, Default)]
struct Peers(Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>);

/// One connection counted for its address until dropped.
struct FromPeer {
    peers: Peers,
    ip: std::net::IpAddr,
}

impl Peers {
    fn admit(&self, ip: std::net::IpAddr) -> Option<FromPeer> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= MAX_PER_PEER {
            return None;
        }
        *count += 1;
        Some(FromPeer {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for FromPeer {
    fn drop(&mut self) {
        let mut open = self.peers.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// An established webhook connection: its slots (overall and for its address), freed when it
/// closes, its idle deadline, pushed back by every read, and the end of its life.
pub struct Connection {
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    _slot: (tokio::sync::OwnedSemaphorePermit, FromPeer),
    idle: std::pin::Pin<Box<tokio::time::Sleep>>,
    expires: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl tokio::io::AsyncRead for Connection {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if self.expires.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "webhook connection lived its time",
            )));
        }
        let filled = buf.filled().len();
        match std::pin::Pin::new(&mut self.tls).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > filled {
                    let deadline = tokio::time::Instant::now() + IDLE;
                    self.idle.as_mut().reset(deadline);
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "webhook connection idle",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl tokio::io::AsyncWrite for Connection {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tls).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}
