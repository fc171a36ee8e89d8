//! Memory tuning (upstream's `MemoryTuning` and `MemoryScaling`): from the memory the
//! TaskManagers were seen to use, a TaskManager memory configuration that gives each pool what
//! it needs plus `memory.tuning.overhead`, within the memory the TaskManager has. Upstream
//! emits it as a "Configuration recommendation" with every scaling and, with
//! `memory.tuning.enabled`, applies it; so does the operator.
//!
//! Flink's own derivation of the pools from a process size ([`TaskManagerMemory::derive`]) is
//! reproduced for the configurations a FlinkDeployment renders (the process size set from the
//! pod's memory); a configuration Flink would refuse is refused here too, and nothing is tuned.

use crate::evaluate::GraphVertex;
use crate::settings::parse_memory;
use serde::Serialize;
use std::collections::BTreeMap;

const MIB: u64 = 1 << 20;

/// A TaskManager's memory pools in bytes, as Flink derives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerMemory {
    pub process: u64,
    pub flink: u64,
    pub framework_heap: u64,
    pub task_heap: u64,
    pub framework_off_heap: u64,
    pub task_off_heap: u64,
    pub managed: u64,
    pub network: u64,
    pub metaspace: u64,
    pub overhead: u64,
}

/// Reads a Flink configuration's memory and fraction settings.
struct Config<'a>(&'a BTreeMap<String, String>);

impl Config<'_> {
    fn size(&self, key: &str, default: Option<u64>) -> Result<Option<u64>, String> {
        match self.0.get(key) {
            Some(text) => parse_memory(text)
                .map(Some)
                .map_err(|why| format!("{key}: {why}")),
            None => Ok(default),
        }
    }

    fn fraction(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.0.get(key) {
            Some(text) => match text.trim().parse::<f64>() {
                Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
                _ => Err(format!("{key}: {text:?} is not a fraction within [0, 1)")),
            },
            None => Ok(default),
        }
    }

    fn count(&self, key: &str, default: u64) -> u64 {
        self.0
            .get(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }
}

/// `fraction · total` within `[min, max]`, as Flink sizes its fractional pools.
fn within(total: u64, fraction: f64, min: u64, max: u64) -> u64 {
    ((total as f64 * fraction) as u64).clamp(min, max.max(min))
}

impl TaskManagerMemory {
    /// Flink's derivation of the pools of a TaskManager process of `process` bytes (its
    /// `taskmanager.memory.process.size`): JVM metaspace and overhead come off the process, and
    /// the remaining Flink memory is split into framework heap and off-heap, task off-heap,
    /// managed and network memory, the rest being task heap.
    pub fn derive(config: &BTreeMap<String, String>, process: u64) -> Result<Self, String> {
        let c = Config(config);
        let metaspace = c
            .size("taskmanager.memory.jvm-metaspace.size", Some(256 * MIB))?
            .unwrap_or_default();
        let overhead = within(
            process,
            c.fraction("taskmanager.memory.jvm-overhead.fraction", 0.1)?,
            c.size("taskmanager.memory.jvm-overhead.min", Some(192 * MIB))?
                .unwrap_or_default(),
            c.size("taskmanager.memory.jvm-overhead.max", Some(1024 * MIB))?
                .unwrap_or_default(),
        );
        let flink = process
            .checked_sub(metaspace + overhead)
            .ok_or_else(|| {
                format!(
                    "taskmanager.memory.process.size: {process} bytes do not hold the JVM metaspace ({metaspace}) and overhead ({overhead})"
                )
            })?;
        let framework_heap = c
            .size("taskmanager.memory.framework.heap.size", Some(128 * MIB))?
            .unwrap_or_default();
        let framework_off_heap = c
            .size(
                "taskmanager.memory.framework.off-heap.size",
                Some(128 * MIB),
            )?
            .unwrap_or_default();
        let task_off_heap = c
            .size("taskmanager.memory.task.off-heap.size", Some(0))?
            .unwrap_or_default();
        let managed = match c.size("taskmanager.memory.managed.size", None)? {
            Some(size) => size,
            None => (flink as f64 * c.fraction("taskmanager.memory.managed.fraction", 0.4)?) as u64,
        };
        let network = within(
            flink,
            c.fraction("taskmanager.memory.network.fraction", 0.1)?,
            c.size("taskmanager.memory.network.min", Some(64 * MIB))?
                .unwrap_or_default(),
            c.size("taskmanager.memory.network.max", Some(u64::MAX))?
                .unwrap_or(u64::MAX),
        );
        let fixed = framework_heap + framework_off_heap + task_off_heap + managed + network;
        let task_heap = match c.size("taskmanager.memory.task.heap.size", None)? {
            Some(size) if size + fixed <= flink => size,
            Some(size) => {
                return Err(format!(
                    "taskmanager.memory.task.heap.size: {size} bytes and the other pools ({fixed}) exceed the Flink memory ({flink})"
                ));
            }
            None => flink.checked_sub(fixed).ok_or_else(|| {
                format!(
                    "the TaskManager's Flink memory ({flink} bytes) does not hold its framework, managed and network memory ({fixed})"
                )
            })?,
        };
        Ok(Self {
            process,
            flink,
            framework_heap,
            task_heap,
            framework_off_heap,
            task_off_heap,
            managed,
            network,
            metaspace,
            overhead,
        })
    }

    /// The JVM heap: framework plus task heap.
    pub fn heap(&self) -> u64 {
        self.framework_heap + self.task_heap
    }
}

/// What the TaskManagers were seen to use, averaged over the metric window (bytes; the worst
/// TaskManager counts). NaN when Flink did not report it (also the default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryUsage {
    pub heap: f64,
    pub metaspace: f64,
    pub managed: f64,
}

impl Default for MemoryUsage {
    fn default() -> Self {
        Self {
            heap: f64::NAN,
            metaspace: f64::NAN,
            managed: f64::NAN,
        }
    }
}

/// `memory.tuning.*` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuningSettings {
    /// `memory.tuning.enabled`: apply the recommendation (else it is only reported).
    pub enabled: bool,
    /// `memory.tuning.overhead`: headroom over the observed usage.
    pub overhead: f64,
    /// `memory.tuning.maximize-managed-memory`: managed memory (RocksDB) takes what is left.
    pub maximize_managed: bool,
    /// `memory.tuning.scale-down-compensation.enabled`: when TaskManagers go away, the heap of
    /// the remaining ones grows by the same factor.
    pub scale_down_compensation: bool,
}

impl Default for TuningSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            overhead: 0.2,
            maximize_managed: false,
            scale_down_compensation: true,
        }
    }
}

/// Memory handed out from a TaskManager's total, never more than is left.
struct Budget {
    remaining: u64,
}

impl Budget {
    fn take(&mut self, wanted: u64) -> u64 {
        let granted = wanted.min(self.remaining);
        self.remaining -= granted;
        granted
    }
}

/// The tuned configuration: Flink settings to set and to remove, and the TaskManager's new
/// total (its pod's memory).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryRecommendation {
    pub process: u64,
    pub heap: u64,
    pub managed: u64,
    pub network: u64,
    pub metaspace: u64,
    /// Settings for the TaskManagers' Flink configuration.
    pub set: BTreeMap<String, String>,
    /// Settings to remove from it (they would contradict the tuned ones).
    pub remove: Vec<String>,
}

/// How far a new recommendation's process size must move from the applied one to replace it.
const MATERIAL_CHANGE: f64 = 0.05;

impl MemoryRecommendation {
    /// Whether this recommendation replaces `applied` (the memory the TaskManagers were given):
    /// when nothing was applied yet, or its process size differs by more than 5%. Applying it
    /// redeploys the job, and the usage it comes from moves a little with every sample, so a
    /// small difference must not redeploy the job on every rescale (ours; upstream applies
    /// every recommendation).
    pub fn replaces(&self, applied: Option<&MemoryRecommendation>) -> bool {
        match applied {
            None => true,
            Some(applied) => {
                let before = applied.process as f64;
                (self.process as f64 - before).abs() > before * MATERIAL_CHANGE
            }
        }
    }

    /// One line per setting, for the event.
    pub fn describe(&self) -> String {
        let mut lines: Vec<String> = self.set.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        if !self.remove.is_empty() {
            lines.push(format!(
                "Remove the following config entries if present: [{}]",
                self.remove.join(", ")
            ));
        }
        lines.join("\n")
    }
}

/// The network memory one TaskManager needs for the job at `parallelism` (vertex -> new
/// parallelism): for each edge, both ends' buffers (exclusive buffers per channel plus
/// floating buffers per gate), times the slots of a TaskManager (each slot may host a subtask of
/// every vertex).
fn network_memory(
    graph: &[GraphVertex],
    parallelism: &BTreeMap<String, u32>,
    config: &BTreeMap<String, String>,
) -> Result<u64, String> {
    let c = Config(config);
    let per_channel = c.count("taskmanager.network.memory.buffers-per-channel", 2);
    let floating = c.count("taskmanager.network.memory.floating-buffers-per-gate", 8);
    let segment = c
        .size("taskmanager.memory.segment-size", Some(32 * 1024))?
        .unwrap_or_default();
    let slots = c.count("taskmanager.numberOfTaskSlots", 1);
    let p = |v: &GraphVertex| u64::from(*parallelism.get(&v.id).unwrap_or(&v.parallelism));
    let segments = |own: u64, other: u64, strategy: &str| match strategy {
        "FORWARD" if own == other => per_channel + floating,
        "FORWARD" | "RESCALE" => other.div_ceil(own.max(1)) * per_channel + floating,
        _ => other * per_channel + floating,
    };
    let mut total = 0u64;
    for vertex in graph {
        for (input, keyed) in &vertex.inputs {
            let Some(upstream) = graph.iter().find(|v| &v.id == input) else {
                continue;
            };
            let strategy = vertex
                .ship_strategies
                .get(input)
                .map(String::as_str)
                .unwrap_or(if *keyed { "HASH" } else { "REBALANCE" });
            // The input gate of `vertex` and the output of `upstream`.
            total += segments(p(vertex), p(upstream), strategy) * segment;
            total += segments(p(upstream), p(vertex), strategy) * segment;
        }
    }
    Ok(total * slots)
}

/// The tuned TaskManager memory for a job about to run at `parallelism`, from `usage`, for
/// TaskManagers of `spec` (derived from the configuration the user gave, without earlier
/// tuning). `task_managers` is how many run now and how many will after the rescale. None
/// when a usage Flink did not report leaves nothing to size.
pub fn recommend(
    spec: &TaskManagerMemory,
    usage: &MemoryUsage,
    graph: &[GraphVertex],
    parallelism: &BTreeMap<String, u32>,
    config: &BTreeMap<String, String>,
    task_managers: (u32, u32),
    settings: &TuningSettings,
) -> Result<Option<MemoryRecommendation>, String> {
    if !(usage.heap.is_finite() && usage.metaspace.is_finite()) {
        return Ok(None);
    }
    let mut budget = Budget {
        remaining: spec.process,
    };
    // What is not tuned is set aside first.
    budget.take(spec.framework_off_heap);
    budget.take(spec.task_off_heap);
    budget.take(spec.overhead);
    // Network first (a job cannot run without its buffers), metaspace before heap (a JVM
    // without metaspace does not start), managed memory last: RocksDB takes any amount.
    let network = budget.take(network_memory(graph, parallelism, config)?);
    let with_headroom = |used: f64| (used.max(0.0) * (1.0 + settings.overhead)) as u64;
    let metaspace = budget.take(with_headroom(usage.metaspace));
    let mut heap = budget.take(with_headroom(usage.heap));
    // Not reported counts as not used (upstream's cast of NaN to 0 bytes).
    let managed_used = if usage.managed.is_nan() {
        0.0
    } else {
        usage.managed
    };
    let managed = if managed_used <= 0.0 {
        0
    } else if settings.maximize_managed {
        budget.take(u64::MAX)
    } else {
        budget.take(spec.managed)
    };
    if settings.scale_down_compensation {
        let (before, after) = task_managers;
        let factor = (f64::from(before) / f64::from(after.max(1))).max(1.0);
        heap += budget.take(((factor * heap as f64) as u64).saturating_sub(heap));
    }
    let process = spec.process - budget.remaining;
    let flink = (spec.flink + heap + managed + network)
        .saturating_sub(spec.heap() + spec.managed + spec.network);
    let mut set = BTreeMap::new();
    let bytes = |n: u64| format!("{n} bytes");
    set.insert("taskmanager.memory.process.size".into(), bytes(process));
    set.insert("taskmanager.memory.framework.heap.size".into(), bytes(0));
    set.insert(
        "taskmanager.memory.managed.fraction".into(),
        ceil_thousandths(managed as f64 / flink.max(1) as f64),
    );
    set.insert("taskmanager.memory.network.min".into(), bytes(network));
    set.insert("taskmanager.memory.network.max".into(), bytes(network));
    set.insert(
        "taskmanager.memory.jvm-overhead.fraction".into(),
        ceil_thousandths(spec.overhead as f64 / process.max(1) as f64),
    );
    set.insert(
        "taskmanager.memory.jvm-metaspace.size".into(),
        bytes(metaspace),
    );
    Ok(Some(MemoryRecommendation {
        process,
        heap,
        managed,
        network,
        metaspace,
        set,
        remove: [
            "taskmanager.memory.flink.size",
            "taskmanager.memory.task.heap.size",
            "taskmanager.memory.managed.size",
        ]
        .map(String::from)
        .to_vec(),
    }))
}

/// A fraction rounded up to three decimals (0.0002 becomes 0.001, never 0), as upstream writes
/// the managed memory and JVM overhead fractions.
fn ceil_thousandths(x: f64) -> String {
    format!("{}", crate::round::ceil_decimals(x, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vertex(id: &str, parallelism: u32, inputs: &[(&str, bool)]) -> GraphVertex {
        GraphVertex {
            id: id.into(),
            parallelism,
            max_parallelism: 128,
            inputs: inputs.iter().map(|(i, k)| (i.to_string(), *k)).collect(),
            source_partitions: 0,
            name: String::new(),
            ship_strategies: Default::default(),
        }
    }

    #[test]
    fn a_one_gib_task_manager_is_split_as_flink_splits_it() {
        let memory = TaskManagerMemory::derive(&BTreeMap::new(), GIB).unwrap();
        // Overhead 10% of 1024 MiB is below its 192 MiB minimum; Flink memory is what
        // metaspace (256 MiB) and overhead leave: 576 MiB; managed 40% of it, network 10%
        // (57.6 MiB) raised to its 64 MiB minimum; task heap the rest.
        assert_eq!(memory.overhead, 192 * MIB);
        assert_eq!(memory.flink, 576 * MIB);
        assert_eq!(memory.managed, 241_591_910);
        assert_eq!(memory.network, 64 * MIB);
        assert_eq!(memory.task_heap, 26_843_546);
        assert_eq!(memory.heap(), 128 * MIB + 26_843_546);
        let configured = TaskManagerMemory::derive(
            &config(&[
                ("taskmanager.memory.managed.size", "0"),
                ("taskmanager.memory.jvm-metaspace.size", "128m"),
            ]),
            2 * GIB,
        )
        .unwrap();
        assert_eq!(
            (
                configured.overhead,
                configured.managed,
                configured.metaspace
            ),
            (2 * GIB / 10, 0, 128 * MIB)
        );
    }

    #[test]
    fn the_split_matches_what_flink_2_3_reports() {
        // The test clusters' TaskManager (800m process, 64m managed, 32m network, 160m
        // metaspace), as Flink 2.3's `/taskmanagers` reported its `memoryConfiguration`.
        let memory = TaskManagerMemory::derive(
            &config(&[
                ("taskmanager.memory.managed.size", "64m"),
                ("taskmanager.memory.network.min", "32m"),
                ("taskmanager.memory.network.max", "32m"),
                ("taskmanager.memory.jvm-metaspace.size", "160m"),
            ]),
            838_860_800,
        )
        .unwrap();
        assert_eq!(memory.framework_heap, 134_217_728);
        assert_eq!(memory.task_heap, 100_663_296);
        assert_eq!(memory.framework_off_heap, 134_217_728);
        assert_eq!(memory.network, 33_554_432);
        assert_eq!(memory.managed, 67_108_864);
        assert_eq!(memory.metaspace, 167_772_160);
        assert_eq!(memory.overhead, 201_326_592);
        assert_eq!(memory.flink, 469_762_048);
    }

    #[test]
    fn a_task_manager_flink_would_refuse_is_refused() {
        let why = TaskManagerMemory::derive(&BTreeMap::new(), 512 * MIB).unwrap_err();
        assert!(why.contains("does not hold"), "{why}");
        let why = TaskManagerMemory::derive(
            &config(&[("taskmanager.memory.managed.fraction", "1.5")]),
            GIB,
        )
        .unwrap_err();
        assert!(
            why.starts_with("taskmanager.memory.managed.fraction:"),
            "{why}"
        );
    }

    #[test]
    fn the_recommendation_gives_each_pool_its_use_and_headroom_and_frees_the_rest() {
        let spec = TaskManagerMemory::derive(&BTreeMap::new(), GIB).unwrap();
        let usage = MemoryUsage {
            heap: (100 * MIB) as f64,
            metaspace: (80 * MIB) as f64,
            managed: 0.0,
        };
        let graph = [
            vertex("source", 1, &[]),
            vertex("count", 1, &[("source", true)]),
        ];
        let parallelism = BTreeMap::from([("count".to_string(), 2)]);
        let tuned = recommend(
            &spec,
            &usage,
            &graph,
            &parallelism,
            &BTreeMap::new(),
            (1, 1),
            &TuningSettings::default(),
        )
        .unwrap()
        .unwrap();
        // Network: count's gate reads 1 channel (2 buffers + 8 floating), source's output
        // writes 2 (4 + 8): 22 segments of 32 KiB, one slot per TaskManager.
        assert_eq!(tuned.network, 22 * 32 * 1024);
        assert_eq!(tuned.metaspace, 96 * MIB, "80 MiB used + 20%");
        assert_eq!(tuned.heap, 120 * MIB, "100 MiB used + 20%");
        assert_eq!(tuned.managed, 0, "no managed memory in use");
        // What is left of the 1 GiB is given back: framework off-heap and overhead stay.
        let process = 128 * MIB + 192 * MIB + 22 * 32 * 1024 + 96 * MIB + 120 * MIB;
        assert_eq!(tuned.process, process);
        assert_eq!(
            tuned.set["taskmanager.memory.process.size"],
            format!("{process} bytes")
        );
        assert_eq!(tuned.set["taskmanager.memory.managed.fraction"], "0");
        // 192 MiB of 536.69 MiB is 0.35775…, rounded up.
        assert_eq!(
            tuned.set["taskmanager.memory.jvm-overhead.fraction"],
            "0.358"
        );
        assert_eq!(
            tuned.set["taskmanager.memory.network.min"],
            tuned.set["taskmanager.memory.network.max"]
        );
        assert!(
            tuned
                .remove
                .contains(&"taskmanager.memory.task.heap.size".to_string())
        );
        // The tuned configuration is one Flink accepts, with the heap it was tuned for (less
        // the rounding of the overhead fraction).
        let mut applied = BTreeMap::new();
        applied.extend(tuned.set.clone());
        let derived = TaskManagerMemory::derive(&applied, tuned.process).unwrap();
        assert_eq!(derived.network, tuned.network);
        assert_eq!(derived.metaspace, tuned.metaspace);
        assert!(
            derived.heap() <= tuned.heap && tuned.heap - derived.heap() < MIB,
            "{} vs {}",
            derived.heap(),
            tuned.heap
        );
    }

    #[test]
    fn only_a_material_change_replaces_the_applied_memory() {
        let at = |process: u64| MemoryRecommendation {
            process,
            heap: 0,
            managed: 0,
            network: 0,
            metaspace: 0,
            set: BTreeMap::new(),
            remove: Vec::new(),
        };
        assert!(at(600 * MIB).replaces(None));
        assert!(!at(610 * MIB).replaces(Some(&at(600 * MIB))), "usage noise");
        assert!(at(640 * MIB).replaces(Some(&at(600 * MIB))));
        assert!(at(560 * MIB).replaces(Some(&at(600 * MIB))));
    }

    #[test]
    fn fewer_task_managers_get_more_heap_and_rocksdb_may_take_the_rest() {
        let spec = TaskManagerMemory::derive(&BTreeMap::new(), GIB).unwrap();
        let usage = MemoryUsage {
            heap: (100 * MIB) as f64,
            metaspace: (80 * MIB) as f64,
            managed: (10 * MIB) as f64,
        };
        let graph = [vertex("source", 2, &[])];
        let tune = |usage: &MemoryUsage, settings: &TuningSettings| {
            recommend(
                &spec,
                usage,
                &graph,
                &BTreeMap::new(),
                &BTreeMap::new(),
                (2, 1),
                settings,
            )
            .unwrap()
        };
        let maximize = TuningSettings {
            maximize_managed: true,
            ..Default::default()
        };
        let tuned = tune(&usage, &maximize).unwrap();
        // Managed memory took everything left; the compensation for going from 2 to 1
        // TaskManagers found nothing left to add.
        assert_eq!(tuned.process, GIB);
        assert_eq!(tuned.heap, 120 * MIB);
        let tuned = tune(&usage, &TuningSettings::default()).unwrap();
        assert_eq!(
            tuned.heap,
            240 * MIB,
            "twice the heap on half the TaskManagers"
        );
        assert_eq!(tuned.managed, spec.managed, "in use: kept as configured");
        assert_eq!(
            tune(&MemoryUsage::default(), &maximize),
            None,
            "nothing reported, nothing tuned"
        );
    }
}
