//! The plugin host's costs, side by side in one run: warm call latency per extension point on
//! the contract's realistic samples (a 20-vertex job, a full rendered pod template), the same
//! while a hostile plugin loops on the other core, cold load (compile) against the in-memory
//! and on-disk caches, memory per loaded plugin, and what hostile plugins can make the host
//! hold (200 calls at once, with and without the memory budget; a JSON Patch copy bomb). Run:
//! `cargo bench -p flink-policy` (`-- hostile` for the last table only).
//!
//! Aims (issue 7): warm p99 under 200 µs for scaling, under 1 ms for pod templates; a cached
//! load under 20 ms.

use flink_policy::contract::{Sample, samples};
use flink_policy::dev::plugin_bytes;
use flink_policy::{Budget, EngineOptions, ExtensionPoint, Limits, PolicyEngine, PoolingOptions};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARM_CALLS: usize = 2_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// Resets the peak resident size (VmHWM) to the current one (Linux's clear_refs, value 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident size since the last `reset_peak`, in MiB.
fn peak_mib() -> u64 {
    status_kib("VmHWM:") / 1024
}

struct Case {
    point: ExtensionPoint,
    package: &'static str,
    config: Value,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            point: ExtensionPoint::Scaling,
            package: "tenant-quota-scaling",
            config: json!({"tenantMaxSlots": 64, "targets": [{"fromHour": 8, "toHour": 20, "utilization": 0.6}], "peaks": [{"fromHour": 17, "toHour": 21}]}),
        },
        Case {
            point: ExtensionPoint::Upgrade,
            package: "maintenance-window-upgrade",
            config: json!({"windows": [{"days": ["sat", "sun"], "from": "02:00", "to": "05:00"}]}),
        },
        Case {
            point: ExtensionPoint::PodTemplate,
            package: "connector-pod-template",
            config: json!({"connectors": [{"name": "kafka", "image": "reg/kafka-connector:4.0.0-2.0"}, {"name": "jdbc", "image": "reg/jdbc-connector:3.2.0-2.0"}],
                           "labels": {"example.com/tenant": "team-a"}, "nodeSelector": {"pool": "flink"},
                           "tolerations": [{"key": "dedicated", "value": "flink", "effect": "NoSchedule"}]}),
        },
    ]
}

async fn warm(
    engine: &PolicyEngine,
    plugin: &flink_policy::Plugin,
    sample: &Sample,
    limits: &Limits,
) -> (Vec<Duration>, u64) {
    for _ in 0..50 {
        engine
            .call_sample(plugin, sample, limits)
            .await
            .expect("warm-up call");
    }
    let mut times = Vec::with_capacity(WARM_CALLS);
    let mut fuel = 0;
    for _ in 0..WARM_CALLS {
        let started = Instant::now();
        let (_, used) = engine
            .call_sample(plugin, sample, limits)
            .await
            .expect("call");
        times.push(started.elapsed());
        fuel = used;
    }
    times.sort();
    (times, fuel)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // `cargo bench -p flink-policy -- hostile`: only the last table.
    if std::env::args().skip(1).any(|a| a == "hostile") {
        hostile_memory(&runtime);
        return;
    }
    let on_demand = Arc::new(PolicyEngine::new(None).expect("engine"));
    let pooling = Arc::new(
        PolicyEngine::with_options(EngineOptions {
            disk_cache: None,
            pooling: Some(PoolingOptions {
                instances: 64,
                max_memory_bytes: 64 << 20,
            }),
            ..Default::default()
        })
        .expect("pooling engine"),
    );

    println!("## Warm calls ({WARM_CALLS} per row; a fresh store and instance each)\n");
    println!(
        "| extension point | plugin | sample | fuel per call | allocator | p50 | p99 | max | p99 with a hostile loop on the other core |"
    );
    println!("|---|---|---|---:|---|---:|---:|---:|---:|");
    for case in cases() {
        for (allocator, engine) in [
            ("on demand (default)", &on_demand),
            ("pooling (64 slots)", &pooling),
        ] {
            let plugin = engine
                .load(case.package, &plugin_bytes(case.package))
                .expect("load");
            let limits = Limits::default_for(case.point);
            let (name, sample) = samples(case.point, &case.config)
                .into_iter()
                .next()
                .expect("a sample");
            let (alone, fuel) = runtime.block_on(warm(engine, &plugin, &sample, &limits));
            // A hostile tenant's plugin loops (until its fuel runs out, again and again) meanwhile.
            let hostile = engine
                .load("hostile", &plugin_bytes("hostile-plugin"))
                .expect("load hostile");
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let noisy = {
                let (engine, stop) = (Arc::clone(engine), stop.clone());
                let input = flink_policy::contract::job_of(20, &json!({"misbehave": "loop"}));
                runtime.spawn(async move {
                    let limits = Limits::default_for(ExtensionPoint::Scaling);
                    let mut failures = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        failures +=
                            u64::from(engine.scaling(&hostile, &input, &limits).await.is_err());
                    }
                    failures
                })
            };
            let (noisy_times, _) = runtime.block_on(warm(engine, &plugin, &sample, &limits));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let contained = runtime.block_on(noisy).expect("hostile task");
            println!(
                "| {} | {} | {name} | {fuel} | {allocator} | {} | {} | {} | {} ({contained} hostile calls stopped) |",
                case.point,
                case.package,
                micros(percentile(&alone, 0.5)),
                micros(percentile(&alone, 0.99)),
                micros(*alone.last().expect("times")),
                micros(percentile(&noisy_times, 0.99)),
            );
        }
    }
    // The floor: a fresh store, WASI context and instance, and a call that does almost nothing.
    for (allocator, engine) in [
        ("on demand (default)", &on_demand),
        ("pooling (64 slots)", &pooling),
    ] {
        let plugin = engine
            .load("upgrade", &plugin_bytes("maintenance-window-upgrade"))
            .expect("load");
        let limits = Limits::default_for(ExtensionPoint::Upgrade);
        let floor = runtime.block_on(async {
            let mut times = Vec::with_capacity(WARM_CALLS);
            for _ in 0..WARM_CALLS {
                let started = Instant::now();
                engine
                    .validate_config(&plugin, &json!({}), &limits)
                    .await
                    .expect("validate-config");
                times.push(started.elapsed());
            }
            times.sort();
            times
        });
        println!(
            "| (fixed cost of a call) | maintenance-window-upgrade | validate-config of `{{}}` | | {allocator} | {} | {} | {} | |",
            micros(percentile(&floor, 0.5)),
            micros(percentile(&floor, 0.99)),
            micros(*floor.last().expect("times"))
        );
    }

    println!("\n## Loading a plugin\n");
    println!("| plugin | size | compile (cold) | in-memory cache | on-disk cache (new engine) |");
    println!("|---|---:|---:|---:|---:|");
    let cache = std::env::temp_dir().join(format!("flink-policy-bench-{}", std::process::id()));
    for case in cases() {
        let bytes = plugin_bytes(case.package);
        let cold_engine = PolicyEngine::new(Some(cache.clone())).expect("engine");
        let started = Instant::now();
        cold_engine.load(case.package, &bytes).expect("cold load");
        let cold = started.elapsed();
        let started = Instant::now();
        cold_engine.load(case.package, &bytes).expect("cached load");
        let memory = started.elapsed();
        let disk_engine = PolicyEngine::new(Some(cache.clone())).expect("engine");
        let started = Instant::now();
        disk_engine.load(case.package, &bytes).expect("disk load");
        let disk = started.elapsed();
        println!(
            "| {} | {} KiB | {} | {} | {} |",
            case.package,
            bytes.len() / 1024,
            millis(cold),
            millis(memory),
            millis(disk)
        );
    }
    let _ = std::fs::remove_dir_all(&cache);

    println!("\n## Memory per loaded plugin\n");
    let engine = PolicyEngine::new(None).expect("engine");
    let before = rss_kib();
    let loaded: Vec<_> = cases()
        .iter()
        .map(|c| {
            engine
                .load(c.package, &plugin_bytes(c.package))
                .expect("load")
        })
        .collect();
    let after = rss_kib();
    println!("| plugins loaded | RSS before | RSS after | per plugin |");
    println!("|---:|---:|---:|---:|");
    println!(
        "| {} | {} MiB | {} MiB | {} KiB |",
        loaded.len(),
        before / 1024,
        after / 1024,
        after.saturating_sub(before) / loaded.len() as u64
    );

    hostile_memory(&runtime);
}

/// What hostile plugins can make the host hold: 64 calls at once of a plugin that allocates
/// until its 64 MiB limit stops it (a binding may ask for fuel and time up to the operator's
/// maxima, so neither stops it first), with the default 1 GiB budget and with none (up to 4 GiB
/// then; the default 200 reconciles at once would make that 12.5 GiB); and the host refusing
/// a 40-operation `copy` bomb.
fn hostile_memory(runtime: &tokio::runtime::Runtime) {
    println!("\n## What hostile plugins can make the host hold\n");
    println!("| scenario | calls | failed as | wall time | peak RSS over the start |");
    println!("|---|---:|---|---:|---:|");
    for (name, budget) in [
        ("memory hog x64, budget 1 GiB (default)", Budget::default()),
        (
            "memory hog x64, no budget (before issue 18)",
            Budget {
                memory_bytes: 1 << 50,
                wait: Duration::from_secs(60),
            },
        ),
    ] {
        let engine = Arc::new(
            PolicyEngine::with_options(EngineOptions {
                budget,
                ..EngineOptions::default()
            })
            .expect("engine"),
        );
        let hostile = engine
            .load("hostile", &plugin_bytes("hostile-plugin"))
            .expect("load hostile");
        let input = flink_policy::contract::job_of(20, &json!({"misbehave": "memory"}));
        let maxima = Limits::operator_maxima();
        let limits = Limits {
            fuel: maxima.fuel,
            deadline: maxima.deadline,
            timeout: maxima.timeout,
            ..Limits::default_for(ExtensionPoint::Scaling)
        };
        let start = rss_kib() / 1024;
        reset_peak();
        let started = Instant::now();
        let failures = runtime.block_on(async {
            let calls = (0..64).map(|_| {
                let (engine, hostile, input) = (engine.clone(), hostile.clone(), input.clone());
                tokio::spawn(async move { engine.scaling(&hostile, &input, &limits).await })
            });
            let mut kinds = std::collections::BTreeMap::<String, u32>::new();
            for call in futures::future::join_all(calls).await {
                let kind = match call.expect("task") {
                    Ok(_) => "answered".to_string(),
                    Err(failure) => format!("{failure:?}")
                        .split([' ', '{', '('])
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                };
                *kinds.entry(kind).or_default() += 1;
            }
            kinds
        });
        let elapsed = started.elapsed();
        println!(
            "| {name} | 64 | {} | {} | {} MiB |",
            failures
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            millis(elapsed),
            peak_mib().saturating_sub(start)
        );
    }
    let template = json!({"metadata": {"labels": {"app": "orders"}},
                          "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.3"}]}});
    let mut ops = vec![json!({"op": "add", "path": "/metadata/annotations", "value": {"a": "x"}})];
    for i in 0..40 {
        ops.push(json!({"op": "copy", "from": "/metadata/annotations", "path": format!("/metadata/annotations/k{i}")}));
    }
    let bomb = Value::Array(ops).to_string();
    let start = rss_kib() / 1024;
    reset_peak();
    let started = Instant::now();
    let refused = flink_policy::outputs::pod_template(&template, &bomb, &Default::default());
    println!(
        "| JSON Patch: 40 `copy` operations ({} bytes) | 1 | {} | {} | {} MiB |",
        bomb.len(),
        if refused.is_err() {
            "refused"
        } else {
            "APPLIED"
        },
        millis(started.elapsed()),
        peak_mib().saturating_sub(start)
    );
}
