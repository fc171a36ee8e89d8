//! The operator's HTTP port: `/metrics` (Prometheus text format), `/healthz` (the process
//! answers and its controllers run) and `/readyz` (they run and the Kubernetes API answered
//! within the last [`READY_WITHIN`]). Kubernetes restarts a pod whose liveness fails and stops
//! routing to one that is not ready; the operator has no traffic of its own, so readiness is
//! what a rollout waits for.

use super::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How recent the last successful call to the Kubernetes API must be for `/readyz`.
pub const READY_WITHIN: Duration = Duration::from_secs(30);
/// How often the API is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(10);

/// What the probes report, updated by the controllers and the API probe.
#[derive(Debug, Default)]
pub struct Health {
    controllers_running: AtomicBool,
    /// Unix milliseconds of the last successful API call; 0: never.
    api_answered_ms: AtomicI64,
    /// Where the HTTP port was bound (port 0 picks one).
    pub address: OnceLock<SocketAddr>,
    /// The admission webhook, when this replica serves one: not ready while it does not.
    pub webhook: OnceLock<Arc<crate::webhook::Bound>>,
}

impl Health {
    pub fn controllers_started(&self) {
        self.controllers_running.store(true, Ordering::Relaxed);
    }

    pub fn controllers_stopped(&self) {
        self.controllers_running.store(false, Ordering::Relaxed);
    }

    pub fn api_answered(&self, now_ms: i64) {
        self.api_answered_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether the process should be restarted: no controller is running.
    pub fn live(&self) -> Result<(), &'static str> {
        if self.controllers_running.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("the controllers are not running")
        }
    }

    /// Whether the operator does its work now.
    pub fn ready(&self, now_ms: i64) -> Result<(), String> {
        self.live()?;
        if let Some(webhook) = self.webhook.get()
            && !webhook.serving.load(Ordering::Relaxed)
        {
            return Err("the admission webhook is not serving".into());
        }
        let answered = self.api_answered_ms.load(Ordering::Relaxed);
        if answered == 0 {
            return Err("the Kubernetes API has not answered yet".into());
        }
        let ago = now_ms.saturating_sub(answered);
        if ago > READY_WITHIN.as_millis() as i64 {
            return Err(format!(
                "the Kubernetes API last answered {} s ago",
                ago / 1000
            ));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Serves the three endpoints on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Shared { metrics, health });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "the metrics and health port stopped");
    }
}

async fn metrics_text(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
}

async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    match shared.health.live() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why.to_string()),
    }
}

async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    match shared.health.ready(crate::controller::now_ms()) {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_running_controllers_and_a_recent_api_answer() {
        let health = Health::default();
        assert!(health.ready(1_000_000).is_err());
        health.controllers_started();
        assert_eq!(
            health.ready(1_000_000),
            Err("the Kubernetes API has not answered yet".to_string())
        );
        health.api_answered(1_000_000);
        assert_eq!(health.ready(1_020_000), Ok(()));
        assert_eq!(
            health.ready(1_045_000),
            Err("the Kubernetes API last answered 45 s ago".to_string())
        );
        health.controllers_stopped();
        assert!(health.live().is_err());
    }

    #[test]
    fn a_replica_whose_webhook_does_not_serve_is_not_ready() {
        let health = Health::default();
        health.controllers_started();
        health.api_answered(1_000_000);
        let webhook = Arc::new(crate::webhook::Bound::default());
        let _ = health.webhook.set(webhook.clone());
        assert_eq!(
            health.ready(1_000_000),
            Err("the admission webhook is not serving".to_string())
        );
        webhook.serving.store(true, Ordering::Relaxed);
        assert_eq!(health.ready(1_000_000), Ok(()));
    }
}
