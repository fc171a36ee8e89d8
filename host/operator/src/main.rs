//! `flink-operator`: the Flink Kubernetes operator and its tools. Only wiring lives here.

use clap::Parser;
use flink_operator::cli::{Cli, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    run(Cli::parse())
}
