//! One module per CLI subcommand.

pub mod autoscaler;
pub mod crds;
#[cfg(feature = "local")]
pub mod hosts_resolver;
#[cfg(feature = "local")]
pub mod local;
pub mod plugin;
pub mod run;
pub mod validate;
