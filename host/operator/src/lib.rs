//! The operator: observe (`controller/observe.rs`), decide purely (`reconcile/`, with `render/`),
//! act (`controller/act.rs`), and the `flink-operator` CLI. The local cluster
//! (`commands::local`) is only in builds with the default `local` feature.

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
