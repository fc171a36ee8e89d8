//! One Flink REST client per cluster, reused across reconciles (connection pools stay warm).

use crate::render;
use flink_rest::{ClientConfig, FlinkClient, FlinkError};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug)]
pub struct FlinkClients {
    config: ClientConfig,
    /// One HTTP client (one connection pool, one TLS setup) shared by every cluster's client.
    http: Result<reqwest::Client, FlinkError>,
    clients: Mutex<HashMap<String, FlinkClient>>,
}

impl FlinkClients {
    pub fn new(config: ClientConfig) -> Self {
        Self {
            http: FlinkClient::http_client(&config),
            config,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client of cluster `name` in `namespace`, through its REST Service.
    pub fn for_cluster(&self, name: &str, namespace: &str) -> Result<FlinkClient, FlinkError> {
        let url = rest_url(name, namespace);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&url) {
            return Ok(client.clone());
        }
        let http = self.http.clone()?;
        let client = FlinkClient::with_http(&url, http, self.config.clone())?;
        clients.insert(url, client.clone());
        Ok(client)
    }

    /// Clients kept.
    pub fn kept(&self) -> usize {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Forgets a deleted cluster's client.
    pub fn forget(&self, name: &str, namespace: &str) {
        let url = rest_url(name, namespace);
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&url);
    }
}

/// The REST endpoint of cluster `name`: its `<name>-rest` Service in `namespace`.
fn rest_url(name: &str, namespace: &str) -> String {
    format!(
        "http://{}.{namespace}:{}",
        render::rest_service_name(name),
        render::REST_PORT
    )
}
