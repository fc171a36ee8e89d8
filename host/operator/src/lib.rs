//! The operator: observe/decide/act, rendering, lifecycle, and the `flink-operator` CLI.
//! This slice holds the CLI's offline commands (`validate`, `crds`).

pub mod cli;
pub mod commands;
pub mod controller;
pub mod observability;
pub mod operator_config;
pub mod reconcile;
pub mod redact;
pub mod render;
pub mod settings;
pub mod sharding;
pub mod webhook;
