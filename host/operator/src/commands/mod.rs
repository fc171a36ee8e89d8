//! One module per CLI subcommand.

pub mod crds;
pub mod local;
pub mod validate;
