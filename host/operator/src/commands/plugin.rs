//! `flink-operator plugin check|run|test`: what a plugin author needs before binding a plugin
//! to a tenant. The same engine, limits and checks as the operator, so what passes here behaves
//! the same in the cluster.

use flink_policy::contract::Sample;
use flink_policy::model::{PodInput, ScalingInput, UpgradeInput};
use flink_policy::{CallFailure, ExtensionPoint, LimitOverrides, Limits, PodGuard, PolicyEngine};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Limits a plugin author may set for `plugin run` (the operator's maxima still apply).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunLimits {
    pub fuel: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub memory_mb: Option<u64>,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
}

struct Loaded {
    engine: PolicyEngine,
    plugin: std::sync::Arc<flink_policy::Plugin>,
    compile_ms: u128,
}

fn load(file: &Path) -> Result<Loaded, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let engine =
        PolicyEngine::new(None).map_err(|e| format!("cannot start the Wasm engine: {e:#}"))?;
    let started = Instant::now();
    let plugin = engine
        .load(&file.display().to_string(), &bytes)
        .map_err(|e| e.to_string())?;
    Ok(Loaded {
        engine,
        plugin,
        compile_ms: started.elapsed().as_millis(),
    })
}

/// Reads a JSON file into `T`; the error names the file and the field.
fn read_json<T: DeserializeOwned>(file: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut reader = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut reader)
        .map_err(|e| format!("{}: {}: {}", file.display(), e.path(), e.inner()))
}

fn print_json(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

pub fn check(file: &Path) -> ExitCode {
    match load(file) {
        Err(message) => fail(message),
        Ok(Loaded {
            plugin, compile_ms, ..
        }) => {
            print_json(&json!({
                "file": file.display().to_string(),
                "digest": plugin.digest,
                "sizeBytes": plugin.size_bytes,
                "compileMillis": compile_ms,
                "extensionPoint": plugin.shape.extension_point,
                "world": plugin.shape.world,
                "interfaceVersion": plugin.shape.interface_version,
                "hostInterfaceVersion": flink_policy::INTERFACE_VERSION,
                "imports": plugin.shape.imports,
                "exports": plugin.shape.exports,
            }));
            ExitCode::SUCCESS
        }
    }
}

pub fn run(file: &Path, input: &Path, config: Option<&Path>, limits: RunLimits) -> ExitCode {
    let loaded = match load(file) {
        Ok(loaded) => loaded,
        Err(message) => return fail(message),
    };
    let point = loaded.plugin.shape.extension_point;
    let config: Option<Value> = match config.map(read_json).transpose() {
        Ok(config) => config,
        Err(message) => return fail(message),
    };
    let sample = match point {
        ExtensionPoint::Scaling => read_json::<ScalingInput>(input).map(|mut i| {
            i.config = config.clone().unwrap_or(i.config);
            Sample::Scaling(i)
        }),
        ExtensionPoint::Upgrade => read_json::<UpgradeInput>(input).map(|mut i| {
            i.config = config.clone().unwrap_or(i.config);
            Sample::Upgrade(i)
        }),
        ExtensionPoint::PodTemplate => read_json::<PodInput>(input).map(|mut i| {
            i.config = config.clone().unwrap_or(i.config);
            Sample::Pod(i)
        }),
    };
    let sample = match sample {
        Ok(sample) => sample,
        Err(message) => {
            return fail(format!(
                "{message} (the input of a {} plugin)",
                point.world()
            ));
        }
    };
    let overrides = LimitOverrides {
        fuel: limits.fuel,
        deadline_ms: limits.deadline_ms,
        memory_bytes: limits.memory_mb.map(|mb| mb << 20),
        ..Default::default()
    };
    let limits = overrides.resolve(point, &Limits::operator_maxima());
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => return fail(e),
    };
    let Loaded { engine, plugin, .. } = loaded;
    let result = runtime.block_on(async {
        match &sample {
            Sample::Scaling(input) => engine
                .scaling(&plugin, input, &limits)
                .await
                .map(serde_json::to_value),
            Sample::Upgrade(input) => engine
                .upgrade(&plugin, input, &limits)
                .await
                .map(serde_json::to_value),
            Sample::Pod(input) => engine
                .pod_template(&plugin, input, &PodGuard::default(), &limits)
                .await
                .map(serde_json::to_value),
        }
    });
    match result {
        Ok(Ok(called)) => {
            print_json(&called);
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => fail(e),
        Err(failure) => fail(explain(&plugin.name, &failure, &limits)),
    }
}

/// A failure as a plugin author reads it: what happened and which limit to look at.
fn explain(name: &str, failure: &CallFailure, limits: &Limits) -> String {
    let hint = match failure {
        CallFailure::OutOfFuel { .. } => " (raise it with --fuel if the plugin really needs more)",
        CallFailure::Timeout { .. } => {
            " (raise it with --deadline-ms if the plugin really needs more)"
        }
        CallFailure::MemoryExceeded { .. } => {
            " (raise it with --memory-mb if the plugin really needs more)"
        }
        _ => "",
    };
    format!(
        "{name}: the plugin {failure}{hint}; limits: {} fuel, {} ms, {} MiB",
        limits.fuel,
        limits.deadline.as_millis(),
        limits.memory_bytes >> 20
    )
}

pub fn test(file: &Path, config: Option<&Path>) -> ExitCode {
    let Loaded { engine, plugin, .. } = match load(file) {
        Ok(loaded) => loaded,
        Err(message) => return fail(message),
    };
    let config: Value = match config.map(read_json).transpose() {
        Ok(config) => config.unwrap_or_else(|| json!({})),
        Err(message) => return fail(message),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => return fail(e),
    };
    let checks = runtime.block_on(engine.contract(&plugin, &config));
    let mut out = std::io::stdout().lock();
    for check in &checks {
        let mark = if check.passed { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "{mark} {}: {}", check.name, check.detail);
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    let _ = writeln!(out, "{} checks, {failed} failed", checks.len());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
