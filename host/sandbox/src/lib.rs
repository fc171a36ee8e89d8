//! The local cluster: a Kubernetes API stand-in that the operator (kube-rs) and the installed
//! `kubectl` cannot tell from a real API server for what they use. For `flink-operator local`,
//! the end-to-end tests and plugin authors' local loop; never for production.
//!
//! The stand-in is an in-memory [`store::Store`] (pure: objects, resource versions, history,
//! garbage collection) behind an HTTP layer ([`api_server`]) that speaks the Kubernetes API.

pub mod api_server;
mod apply;
pub mod error;
mod events;
pub mod first_use;
pub mod flink_dist;
pub mod patch;
pub mod resources;
pub mod runtime;
pub mod selectors;
pub mod store;
pub mod table;

pub use api_server::{ApiServer, ServerHandle, StoreAccess};
pub use error::ApiError;
pub use store::Store;
