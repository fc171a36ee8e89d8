//! The WebAssembly policy plugin host.
//!
//! Tenants' plugins are components implementing one world of `wit/policy.wit`. The host
//! ([`PolicyEngine`]) compiles each once per content digest, checks what it imports (a bounded
//! log and basic WASI streams only: no clock, randomness, files or network) and which interface
//! version it was built for, and runs every call in a fresh store under fuel, an epoch deadline,
//! an outer timeout and a memory cap. Answers are validated and clamped ([`outputs`]) before the
//! operator uses them; pod-template patches must pass the tenant's [`PodGuard`].
//!
//! ```text
//! bytes ──load (blocking: compile, shape, link)──► Arc<Plugin>
//! Plugin + model input ──scaling/upgrade/pod_template (async, limited)──► Called<decision> | CallFailure
//! ```

mod bindings;
pub mod calls;
pub mod contract;
#[doc(hidden)]
#[cfg(feature = "dev")]
pub mod dev;
pub mod engine;
pub mod guard;
pub mod inspect;
pub mod limits;
pub mod model;
pub mod outputs;
pub mod stats;
pub mod tenancy;

pub use engine::{
    Budget, CallFailure, Called, Digest, EngineOptions, LoadError, LogLine, Plugin, PolicyEngine,
    PoolingOptions,
};
pub use guard::PodGuard;
pub use inspect::Shape;
pub use limits::{LimitOverrides, Limits};
pub use model::ExtensionPoint;
pub use stats::StatsSnapshot;

/// The interface version this host was built against.
pub const INTERFACE_VERSION: &str = bindings::INTERFACE_VERSION;
