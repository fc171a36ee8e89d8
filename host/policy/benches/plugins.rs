//! The plugin host's costs, side by side in one run: warm call latency per extension point on
//! the contract's realistic samples (a 20-vertex job, a full rendered pod template), the same
//! while a hostile plugin loops on the other core, cold load (compile) against the in-memory
//! and on-disk caches, and memory per loaded plugin. Run: `cargo bench -p flink-policy`.
//!
//! Aims (issue 7): warm p99 under 200 µs for scaling, under 1 ms for pod templates; a cached
//! load under 20 ms.

use flink_policy::contract::{Sample, samples};
use flink_policy::dev::plugin_bytes;
use flink_policy::{EngineOptions, ExtensionPoint, Limits, PolicyEngine, PoolingOptions};
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

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
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
    let on_demand = Arc::new(PolicyEngine::new(None).expect("engine"));
    let pooling = Arc::new(
        PolicyEngine::with_options(EngineOptions {
            disk_cache: None,
            pooling: Some(PoolingOptions {
                instances: 64,
                max_memory_bytes: 64 << 20,
            }),
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
}
