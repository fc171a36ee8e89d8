//! `flink-operator run`: the operator against the cluster of the current kubeconfig or, in a
//! pod, its service account.

use crate::controller::{self, Context};
use crate::settings::Settings;
use std::process::ExitCode;

pub fn run(settings: Settings) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flink-operator run: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let client = match kube::Client::try_default().await {
            Ok(client) => client,
            Err(e) => {
                eprintln!("flink-operator run: cannot reach the Kubernetes API: {e}");
                return ExitCode::FAILURE;
            }
        };
        let settings = match controller::config_reload::at_start(&client, settings).await {
            Ok(settings) => settings,
            Err(problem) => {
                eprintln!("flink-operator run: the operator ConfigMap: {problem}");
                return ExitCode::from(2);
            }
        };
        let ctx = Context::new(client, settings);
        controller::run(ctx, shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
