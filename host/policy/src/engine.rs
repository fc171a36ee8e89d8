//! The engine: compiles plugins once per content digest and runs each call in a fresh,
//! limited store.
//!
//! Compiling is slow (Cranelift) and blocking: call [`PolicyEngine::load`] off the async runtime
//! (`spawn_blocking`). Calls are async: fuel and the epoch deadline bound the guest's own
//! code, an outer `tokio::time::timeout` bounds the whole call, and the store is dropped after
//! every call, so nothing a plugin does survives into the next call or reaches another tenant.

use crate::bindings::{self, LogLevel};
use crate::inspect::{self, Shape, ShapeError};
use crate::limits::Limits;
use crate::stats::PluginStats;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Epoch ticks: the deadline's resolution.
const TICK: Duration = Duration::from_millis(10);
/// What a plugin may print to stdout and stderr together (a panic message lands there).
const STDIO_BYTES: usize = 64 << 10;
/// Longest log line kept.
const LOG_LINE_BYTES: usize = 1024;

/// A plugin's content digest: sha256 of its bytes, as `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Digest(pub String);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        self.0.trim_start_matches("sha256:")
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{name}: not a WebAssembly component ({detail}); build plugins with `cargo build --target wasm32-wasip2`"
    )]
    NotAComponent { name: String, detail: &'static str },
    #[error("{name}: does not compile: {detail}")]
    Compile { name: String, detail: String },
    #[error("{name}: {source}")]
    Shape { name: String, source: ShapeError },
    #[error(
        "{name}: does not fit the {world} world of interface {}: {detail}",
        bindings::INTERFACE_VERSION
    )]
    Incompatible {
        name: String,
        world: &'static str,
        detail: String,
    },
}

/// A loaded plugin: compiled, checked and ready to instantiate. Cheap to share (`Arc`).
pub struct Plugin {
    pub name: String,
    pub digest: Digest,
    pub shape: Shape,
    pub size_bytes: usize,
    pub stats: PluginStats,
    pub(crate) pre: Prepared,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("world", &self.shape.world)
            .finish()
    }
}

pub(crate) enum Prepared {
    Scaling(bindings::scaling::ScalingPolicyPre<CallState>),
    Upgrade(bindings::upgrade::UpgradeStrategyPre<CallState>),
    Pods(bindings::pods::PodTemplatePre<CallState>),
}

/// How a call ended when it did not produce an answer. The message is for users: it ends up
/// in the resource's status and events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CallFailure {
    #[error("exceeded its deadline of {limit_ms} ms")]
    Timeout { limit_ms: u64 },
    #[error("ran out of fuel (budget {budget} instructions)")]
    OutOfFuel { budget: u64 },
    #[error("exceeded its memory limit of {limit_bytes} bytes")]
    MemoryExceeded { limit_bytes: u64 },
    #[error("trapped: {message}")]
    Trap { message: String },
    #[error("returned {bytes} bytes, more than its limit of {limit_bytes}")]
    OutputTooLarge { bytes: u64, limit_bytes: u64 },
    #[error("returned an invalid answer: {message}")]
    InvalidOutput { message: String },
    #[error("failed: {message}")]
    PluginError { message: String },
    #[error(
        "was not called: other plugin calls held the operator's plugin memory budget for {waited_ms} ms"
    )]
    Busy { waited_ms: u64 },
    #[error("cannot be called as {wanted}: it implements {actual}")]
    WrongExtensionPoint {
        wanted: &'static str,
        actual: &'static str,
    },
}

/// One log line a plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// A successful call's answer and what it cost.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Called<T> {
    pub value: T,
    pub fuel_used: u64,
    #[serde(serialize_with = "micros")]
    pub elapsed: Duration,
    pub logs: Vec<LogLine>,
    pub dropped_logs: u32,
    /// What the host changed in the answer (clamped parallelism, a capped wait), for events.
    pub notes: Vec<String>,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

impl<T> Called<T> {
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Called<U> {
        Called {
            value: f(self.value),
            fuel_used: self.fuel_used,
            elapsed: self.elapsed,
            logs: self.logs,
            dropped_logs: self.dropped_logs,
            notes: self.notes,
        }
    }
}

/// The state of one call's store.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    plugin: String,
    logs: Vec<LogLine>,
    logs_left: u32,
    dropped_logs: u32,
    /// What `tenant.slots-in-use` answers (scaling calls set it).
    pub(crate) tenant_usage: Result<u32, String>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::scaling::flinkop::policy::types::Host for CallState {}

impl bindings::TenantHost for CallState {
    fn slots_in_use(&mut self) -> Result<u32, String> {
        self.tenant_usage.clone()
    }
}

impl bindings::LogHost for CallState {
    fn log(&mut self, level: LogLevel, message: String) {
        if self.logs_left == 0 {
            self.dropped_logs = self.dropped_logs.saturating_add(1);
            return;
        }
        self.logs_left -= 1;
        let mut message = message;
        if message.len() > LOG_LINE_BYTES {
            let mut cut = LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = self.plugin.as_str();
        let level = match level {
            LogLevel::Debug => {
                tracing::debug!(plugin, "{message}");
                "debug"
            }
            LogLevel::Info => {
                tracing::info!(plugin, "{message}");
                "info"
            }
            LogLevel::Warn => {
                tracing::warn!(plugin, "{message}");
                "warn"
            }
            LogLevel::Error => {
                tracing::error!(plugin, "{message}");
                "error"
            }
        };
        self.logs.push(LogLine { level, message });
    }
}

/// Caps what one call's store may allocate: every linear memory and every table together
/// (a component has several of each), and remembers that it refused growth so an allocation
/// failure (which a Rust guest turns into an abort) is reported as what it is.
struct Limiter {
    limit_bytes: usize,
    used_bytes: usize,
    refused_memory: bool,
}

/// What the limiter counts for one table element (a function reference and its metadata).
const TABLE_ELEMENT_BYTES: usize = 16;

impl Limiter {
    fn grow(&mut self, bytes: usize) -> bool {
        match self.used_bytes.checked_add(bytes) {
            Some(total) if total <= self.limit_bytes => {
                self.used_bytes = total;
                true
            }
            _ => {
                self.refused_memory = true;
                false
            }
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(desired.saturating_sub(current)))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            desired
                .saturating_sub(current)
                .saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        8
    }
}

/// The memory all plugin calls of the operator may hold at once. Each call reserves its
/// binding's whole memory limit before it starts and returns it when its store is dropped,
/// so however many reconciles run (200 by default), plugins never hold more than this; a call
/// that cannot reserve within `wait` fails as `Busy` (each extension point then fails as it
/// does for any failure: scaling open, upgrades held, pod templates on the last good patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub memory_bytes: u64,
    pub wait: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            memory_bytes: 1 << 30,
            wait: Duration::from_secs(10),
        }
    }
}

/// The budget in MiB permits.
struct Reservations {
    permits: tokio::sync::Semaphore,
    total_mib: u32,
    wait: Duration,
}

impl Reservations {
    fn new(budget: Budget) -> Self {
        let total_mib = u32::try_from(budget.memory_bytes >> 20)
            .unwrap_or(u32::MAX)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u32);
        Reservations {
            permits: tokio::sync::Semaphore::new(total_mib as usize),
            total_mib,
            wait: budget.wait,
        }
    }

    async fn reserve(
        &self,
        memory_bytes: u64,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, CallFailure> {
        let mib = u32::try_from(memory_bytes.div_ceil(1 << 20))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_mib);
        match tokio::time::timeout(self.wait, self.permits.acquire_many(mib)).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(CallFailure::Busy {
                waited_ms: self.wait.as_millis() as u64,
            }),
        }
    }
}

/// How the engine is set up.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Where compiled plugins are cached across restarts.
    pub disk_cache: Option<PathBuf>,
    /// Pre-reserved instance slots instead of fresh mappings per call: faster calls (see the
    /// bench), at the price of reserving `instances x 4 x max_memory_bytes` of virtual memory
    /// up front and at most `instances` calls at once (more fail as traps until one ends).
    pub pooling: Option<PoolingOptions>,
    /// The memory all calls together may hold.
    pub budget: Budget,
}

#[derive(Debug, Clone, Copy)]
pub struct PoolingOptions {
    /// Plugin calls that may run at once.
    pub instances: u32,
    /// The largest memory any binding may ask for (the operator's maximum).
    pub max_memory_bytes: u64,
}

/// Compiles, caches and runs plugins. One per operator; cheap to share behind an `Arc`.
pub struct PolicyEngine {
    engine: Engine,
    linker: Linker<CallState>,
    compiled: Mutex<HashMap<Digest, Component>>,
    disk_cache: Option<PathBuf>,
    reservations: Reservations,
}

impl PolicyEngine {
    /// An engine with an in-memory compile cache, and on disk too when `disk_cache` is given
    /// (artifacts keyed by digest and this engine's compatibility hash, so an operator upgrade
    /// never loads another Wasmtime's code).
    pub fn new(disk_cache: Option<PathBuf>) -> wasmtime::Result<PolicyEngine> {
        PolicyEngine::with_options(EngineOptions {
            disk_cache,
            ..EngineOptions::default()
        })
    }

    /// An engine with every option (see [`EngineOptions`]).
    pub fn with_options(options: EngineOptions) -> wasmtime::Result<PolicyEngine> {
        let disk_cache = options.disk_cache.clone();
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .consume_fuel(true)
            .cranelift_nan_canonicalization(true);
        if let Some(pool) = &options.pooling {
            // Slots reserved up front (virtual memory: instances x memories x max size); an
            // instance then costs a slot reset instead of fresh mappings.
            let mut config_pool = wasmtime::PoolingAllocationConfig::default();
            config_pool
                .total_component_instances(pool.instances)
                .total_core_instances(pool.instances * 8)
                .total_memories(pool.instances * 4)
                .total_tables(pool.instances * 8)
                .total_stacks(pool.instances)
                .max_memory_size(usize::try_from(pool.max_memory_bytes).unwrap_or(usize::MAX));
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(config_pool));
        }
        let engine = Engine::new(&config)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::scaling::flinkop::policy::types::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        bindings::scaling::flinkop::policy::host::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        bindings::scaling::flinkop::policy::tenant::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )?;
        Ok(PolicyEngine {
            engine,
            linker,
            compiled: Mutex::default(),
            disk_cache,
            reservations: Reservations::new(options.budget),
        })
    }

    /// Compiles (or takes from the cache) and checks a plugin. Blocking: seconds for a cold
    /// compile of a large plugin. `name` is for messages only.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let digest = Digest::of(bytes);
        let component = self.compile(name, &digest, bytes)?;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let shape = inspect::shape(&imports, &exports).map_err(|source| LoadError::Shape {
            name: name.into(),
            source,
        })?;
        let incompatible = |err: wasmtime::Error| LoadError::Incompatible {
            name: name.into(),
            world: shape.world,
            detail: format!("{err:#}"),
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(incompatible)?;
        let pre = match shape.extension_point {
            crate::ExtensionPoint::Scaling => Prepared::Scaling(
                bindings::scaling::ScalingPolicyPre::new(instance_pre).map_err(incompatible)?,
            ),
            crate::ExtensionPoint::Upgrade => Prepared::Upgrade(
                bindings::upgrade::UpgradeStrategyPre::new(instance_pre).map_err(incompatible)?,
            ),
            crate::ExtensionPoint::PodTemplate => Prepared::Pods(
                bindings::pods::PodTemplatePre::new(instance_pre).map_err(incompatible)?,
            ),
        };
        Ok(Arc::new(Plugin {
            name: name.into(),
            digest,
            shape,
            size_bytes: bytes.len(),
            stats: PluginStats::default(),
            pre,
        }))
    }

    fn compile(&self, name: &str, digest: &Digest, bytes: &[u8]) -> Result<Component, LoadError> {
        if let Some(component) = self
            .compiled
            .lock()
            .ok()
            .and_then(|c| c.get(digest).cloned())
        {
            return Ok(component);
        }
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 0x0d, 0x00, 0x01, 0x00]) => {}
            Some([0, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00]) => {
                return Err(LoadError::NotAComponent {
                    name: name.into(),
                    detail: "a core module, not a component",
                });
            }
            _ => {
                return Err(LoadError::NotAComponent {
                    name: name.into(),
                    detail: "no wasm header",
                });
            }
        }
        let cached = self
            .disk_cache
            .as_deref()
            .map(|dir| self.cache_file(dir, digest));
        // Only artifacts this engine wrote under this compatibility hash are ever read back.
        let from_disk = cached
            .as_deref()
            .filter(|path| path.exists())
            .and_then(|path| unsafe { Component::deserialize_file(&self.engine, path) }.ok());
        let component = match from_disk {
            Some(component) => component,
            None => {
                let component = Component::from_binary(&self.engine, bytes).map_err(|err| {
                    LoadError::Compile {
                        name: name.into(),
                        detail: format!("{err:#}"),
                    }
                })?;
                if let Some(path) = cached {
                    write_artifact(&path, &component);
                }
                component
            }
        };
        if let Ok(mut compiled) = self.compiled.lock() {
            compiled.insert(digest.clone(), component.clone());
        }
        Ok(component)
    }

    /// Forgets every compiled plugin not in `in_use`: from memory, and its artifacts on disk
    /// (any engine version's). Plugins in use keep running either way (a binding holds its
    /// plugin); one that comes back is compiled again. Returns how many artifacts were deleted.
    pub fn retain(&self, in_use: &std::collections::HashSet<Digest>) -> usize {
        if let Ok(mut compiled) = self.compiled.lock() {
            compiled.retain(|digest, _| in_use.contains(digest));
        }
        let Some(dir) = &self.disk_cache else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let keep: std::collections::HashSet<&str> = in_use.iter().map(Digest::hex).collect();
        let mut deleted = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only files this engine names `<sha256 hex>-<engine hash>.cwasm` are ours.
            let Some((hex, rest)) = name.split_once('-') else {
                continue;
            };
            let ours = hex.len() == 64
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
                && rest.ends_with(".cwasm");
            if ours && !keep.contains(hex) && std::fs::remove_file(entry.path()).is_ok() {
                deleted += 1;
            }
        }
        deleted
    }

    fn cache_file(&self, dir: &Path, digest: &Digest) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        dir.join(format!("{}-{:016x}.cwasm", digest.hex(), hasher.finish()))
    }

    /// Reserves `bytes` from the plugin memory budget while the host reads a plugin's answer.
    pub(crate) async fn reserve_for_answer(
        &self,
        bytes: u64,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, CallFailure> {
        self.reservations.reserve(bytes).await
    }

    /// Runs `body` in a fresh store with `limits`, and turns every way it can end into a
    /// `Called` or a `CallFailure`. `output_bytes` measures the answer.
    pub(crate) async fn call<R>(
        &self,
        plugin: &Plugin,
        limits: &Limits,
        body: impl AsyncFnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
        output_bytes: impl FnOnce(&R) -> u64,
    ) -> Result<Called<R>, CallFailure> {
        // Held until the store below is dropped, at the end of this function.
        let _reserved = match self.reservations.reserve(limits.memory_bytes).await {
            Ok(reserved) => reserved,
            Err(busy) => {
                tracing::warn!(plugin = %plugin.name, digest = %plugin.digest, "plugin call {busy}");
                return Err(busy);
            }
        };
        let stdio = MemoryOutputPipe::new(STDIO_BYTES);
        let wasi = WasiCtx::builder()
            .stdout(stdio.clone())
            .stderr(stdio.clone())
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                limit_bytes: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                used_bytes: 0,
                refused_memory: false,
            },
            plugin: plugin.name.clone(),
            logs: Vec::new(),
            logs_left: limits.log_lines,
            dropped_logs: 0,
            tenant_usage: Err("the tenant's usage is told to scaling plugins only".into()),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Fuel is enabled on this engine, so these cannot fail.
        let _ = store.set_fuel(limits.fuel);
        // Yield to the runtime every ~1M instructions so the outer timeout can fire.
        let _ = store.fuel_async_yield_interval(Some(1_000_000));
        store.set_epoch_deadline(limits.deadline.as_millis().div_ceil(TICK.as_millis()) as u64 + 1);
        let started = Instant::now();
        let outcome = tokio::time::timeout(limits.timeout, body(&mut store)).await;
        let elapsed = started.elapsed();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let result = match outcome {
            Err(_elapsed) => Err(CallFailure::Timeout {
                limit_ms: limits.timeout.as_millis() as u64,
            }),
            Ok(Err(err)) => Err(classify(&err, store.data(), limits, &stdio)),
            Ok(Ok(value)) => {
                let bytes = output_bytes(&value);
                if bytes > limits.output_bytes {
                    Err(CallFailure::OutputTooLarge {
                        bytes,
                        limit_bytes: limits.output_bytes,
                    })
                } else {
                    let state = store.into_data();
                    Ok(Called {
                        value,
                        fuel_used,
                        elapsed,
                        logs: state.logs,
                        dropped_logs: state.dropped_logs,
                        notes: Vec::new(),
                    })
                }
            }
        };
        plugin.stats.record(&result, fuel_used, elapsed);
        if let Err(failure) = &result {
            tracing::warn!(plugin = %plugin.name, digest = %plugin.digest, "plugin call {failure}");
        }
        result
    }
}

fn write_artifact(path: &Path, component: &Component) {
    let Ok(bytes) = component.serialize() else {
        return;
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // A cache that cannot be written only costs a compile next time.
    if std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).is_ok()
        && std::fs::write(&tmp, bytes).is_ok()
        && std::fs::rename(&tmp, path).is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn classify(
    err: &wasmtime::Error,
    state: &CallState,
    limits: &Limits,
    stdio: &MemoryOutputPipe,
) -> CallFailure {
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            return CallFailure::OutOfFuel {
                budget: limits.fuel,
            };
        }
        Some(Trap::Interrupt) => {
            return CallFailure::Timeout {
                limit_ms: limits.deadline.as_millis() as u64,
            };
        }
        Some(Trap::StackOverflow) => {
            return CallFailure::Trap {
                message: "call stack exhausted (runaway recursion?)".into(),
            };
        }
        // A Rust guest keeps its stack in linear memory: overflowing it reads below address 0.
        Some(Trap::MemoryOutOfBounds) => {
            return CallFailure::Trap {
                message: "out of bounds memory access (a runaway recursion overflows a Rust plugin's stack this way)".into(),
            };
        }
        _ => {}
    }
    if state.limiter.refused_memory {
        return CallFailure::MemoryExceeded {
            limit_bytes: limits.memory_bytes,
        };
    }
    let printed = String::from_utf8_lossy(&stdio.contents())
        .trim()
        .to_string();
    // A Rust panic prints "panicked at <file>:<line>:" and its message, then a note on
    // RUST_BACKTRACE; the message is the line worth showing.
    let last_line = printed
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .unwrap_or("");
    let message = match err.downcast_ref::<Trap>() {
        Some(trap) if !last_line.is_empty() => format!("{trap}; the plugin printed: {last_line}"),
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    CallFailure::Trap { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_counts_every_memory_and_table_of_the_store_together() {
        let mut limiter = Limiter {
            limit_bytes: 64 << 20,
            used_bytes: 0,
            refused_memory: false,
        };
        // A first memory of 40 MiB, then a second: together they would pass the limit.
        assert!(limiter.memory_growing(0, 40 << 20, None).unwrap());
        assert!(!limiter.memory_growing(0, 40 << 20, None).unwrap());
        assert!(limiter.refused_memory);
        // Growing the first by what is left is fine; tables count against the same budget.
        assert!(limiter.memory_growing(40 << 20, 60 << 20, None).unwrap());
        assert!(limiter.table_growing(0, 1_000, None).unwrap());
        assert!(!limiter.table_growing(1_000, 1_000_000, None).unwrap());
        assert_eq!(limiter.used_bytes, (60 << 20) + 1_000 * TABLE_ELEMENT_BYTES);
    }
}
