//! The HTTP face of the stand-in: the Kubernetes REST paths, discovery, watches, `Status` errors.

mod discovery;
mod handlers;
mod in_cluster;
mod protobuf;
mod route;
mod watch;

pub use in_cluster::InClusterAccess;

use crate::store::{Clock, Event, Store};
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Largest request body accepted (the real server's default is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 << 20;

pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub events: broadcast::Sender<Arc<Event>>,
    pub address: SocketAddr,
    /// Counts mutating requests (POST, PUT, PATCH, DELETE) for tests that assert quiet reconciles.
    pub writes: std::sync::atomic::AtomicU64,
    /// Counts every request (reads, writes, watches), for request-per-reconcile benchmarks.
    pub requests: std::sync::atomic::AtomicU64,
    /// Counts watches served over WebSocket (fabric8's transport of choice).
    pub websocket_watches: std::sync::atomic::AtomicU64,
    /// Where each pod's container logs are, for `pods/log` (set by the process runtime).
    pub logs: Mutex<std::collections::HashMap<(String, String), std::path::PathBuf>>,
}

/// Shared access to a running stand-in's store, for in-process controllers (the process
/// runtime plays kubelet and controller manager through it).
#[derive(Clone)]
pub struct StoreAccess(pub(crate) Arc<Shared>);

impl StoreAccess {
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        self.0.with_store(f)
    }

    /// Registers where a pod's log file is, for `kubectl logs`.
    pub fn set_log(&self, namespace: &str, pod: &str, path: std::path::PathBuf) {
        self.0
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.to_string(), pod.to_string()), path);
    }
}

impl Shared {
    /// Runs a store call and broadcasts the events it produced, in order, under the lock.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let result = f(&mut store);
        for event in store.take_outbox() {
            let _ = self.events.send(Arc::new(event));
        }
        result
    }
}

/// A stand-in to start.
pub struct ApiServer {
    clock: Option<Clock>,
    history_limit: usize,
    in_cluster: bool,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self {
            clock: None,
            history_limit: 10_000,
            in_cluster: false,
        }
    }
}

/// A running stand-in; stops when dropped or on [`ServerHandle::shutdown`].
pub struct ServerHandle {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    in_cluster: Option<InClusterAccess>,
    shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ApiServer {
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Also serves the API as pods see it on a real cluster: HTTPS with a service-account token
    /// on another port of the same address ([`ServerHandle::in_cluster`]).
    pub fn with_in_cluster(mut self) -> Self {
        self.in_cluster = true;
        self
    }

    /// How many events watches can replay before answering 410 Gone.
    pub fn with_history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    /// Serves on `address` (use port 0 for a free port). Loopback only is the caller's duty.
    pub async fn start(self, address: SocketAddr) -> std::io::Result<ServerHandle> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let mut store = Store::new(self.clock.unwrap_or_else(crate::store::system_clock));
        store.set_history_limit(self.history_limit);
        let (events, _) = broadcast::channel(65_536);
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            events,
            address,
            writes: Default::default(),
            requests: Default::default(),
            websocket_watches: Default::default(),
            logs: Default::default(),
        });
        let app = Router::new()
            .fallback(handlers::handle)
            .with_state(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "API stand-in stopped");
            }
        });
        let mut handle = ServerHandle {
            address,
            shared: shared.clone(),
            in_cluster: None,
            shutdown: vec![tx],
            tasks: vec![task],
        };
        if self.in_cluster {
            let (mut access, acceptor) =
                in_cluster::credentials().map_err(std::io::Error::other)?;
            let tcp = tokio::net::TcpListener::bind(SocketAddr::new(address.ip(), 0)).await?;
            access.port = tcp.local_addr()?.port();
            access.host = address.ip().to_string();
            let listener = in_cluster::TlsListener::new(tcp, acceptor)?;
            let app = Router::new()
                .fallback(in_cluster::authorized)
                .with_state((shared, Arc::<str>::from(access.token.as_str())));
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            handle.tasks.push(tokio::spawn(async move {
                let server = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = rx.await;
                });
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "API stand-in (in-cluster) stopped");
                }
            }));
            handle.shutdown.push(tx);
            handle.in_cluster = Some(access);
        }
        Ok(handle)
    }
}

impl ServerHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The in-cluster endpoint, when started [`ApiServer::with_in_cluster`].
    pub fn in_cluster(&self) -> Option<&InClusterAccess> {
        self.in_cluster.as_ref()
    }

    /// Watches served over WebSocket so far.
    pub fn websocket_watch_count(&self) -> u64 {
        self.shared
            .websocket_watches
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Mutating requests served so far.
    pub fn write_count(&self) -> u64 {
        self.shared.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests served so far (including watches).
    pub fn request_count(&self) -> u64 {
        self.shared
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn store_access(&self) -> StoreAccess {
        StoreAccess(self.shared.clone())
    }

    /// Direct access to the store, for tests and the process runtime.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        self.shared.with_store(f)
    }

    /// A kubeconfig that points at this stand-in (no credentials: loopback only).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: local\n    namespace: default\ncurrent-context: local\nusers:\n- name: local\n  user: {{}}\n",
            self.url()
        )
    }

    pub async fn shutdown(mut self) {
        self.stop();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}
