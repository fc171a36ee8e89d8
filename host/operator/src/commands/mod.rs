//! One module per CLI subcommand.

pub mod autoscaler;
pub mod crds;
pub mod hosts_resolver;
pub mod local;
pub mod plugin;
pub mod run;
pub mod validate;
