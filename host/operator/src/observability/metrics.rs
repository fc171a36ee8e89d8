//! The operator's Prometheus metrics: what each reconcile reports, kept in one registry that
//! `/metrics` encodes. Resource states and lifecycle durations are derived from the sequence of
//! states this process saw, so they start over when the operator restarts (as upstream's do).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    kind: &'static str,
    namespace: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    kind: &'static str,
    transition: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SnapshotLabels {
    snapshot_type: &'static str,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScalingLabels {
    namespace: String,
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// What one reconcile left a resource in, for the state gauges and transition durations.
pub struct Seen<'a> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// `status.lifecycleState` (deployments, session jobs) or `status.state` (snapshots).
    pub state: Option<&'a str>,
    /// For FlinkStateSnapshots: `savepoint` or `checkpoint`.
    pub snapshot_type: Option<&'static str>,
    /// For FlinkDeployments: `status.jobManagerDeploymentStatus`.
    pub job_manager: Option<&'a str>,
    /// For FlinkDeployments: the Flink version the JobManager reported.
    pub flink_version: Option<&'a str>,
    /// The resource is gone after this reconcile (its finalizer was removed).
    pub gone: bool,
}

/// How an autoscaler decision ended, for `flink_operator_autoscaler_scalings_total`.
#[derive(Clone, Copy, Debug)]
pub enum ScalingOutcome {
    /// Applied (in place, or the TaskManagers grown for it).
    Applied,
    /// Held back by a quota, the scheduler, or missing slots.
    Limited,
    /// Vetoed by the tenant's scaling plugin.
    Vetoed,
    /// The last scaling did not raise the processing rate as expected.
    Ineffective,
}

impl ScalingOutcome {
    fn label(self) -> &'static str {
        match self {
            ScalingOutcome::Applied => "applied",
            ScalingOutcome::Limited => "limited",
            ScalingOutcome::Vetoed => "vetoed",
            ScalingOutcome::Ineffective => "ineffective",
        }
    }
}

struct Tracked {
    labels: StateLabels,
    since: Instant,
    /// For kinds with [`SPANS`]: the states left since the last resting state, and when.
    left: Vec<(String, Instant)>,
    snapshot_type: Option<&'static str>,
    job_manager: Option<String>,
    flink_version: Option<String>,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_seconds: Histograms<KindLabels>,
    resources: Family<StateLabels, Gauge>,
    transition_seconds: Histograms<TransitionLabels>,
    snapshots: Family<SnapshotLabels, Counter>,
    scalings: Family<ScalingLabels, Counter>,
    shards_owned: Gauge,
    tracked: Mutex<HashMap<(&'static str, String, String), Tracked>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The lifecycle transitions whose duration is measured: (from, to, name), with upstream's
/// names (`Lifecycle.Transition.<name>.TimeSeconds`).
const TRANSITIONS: [(&str, &str, &str); 7] = [
    ("CREATED", "DEPLOYED", "Submission"),
    ("DEPLOYED", "STABLE", "Stabilization"),
    ("UPGRADING", "DEPLOYED", "Upgrade"),
    ("UPGRADING", "STABLE", "Upgrade"),
    ("UPGRADING", "SUSPENDED", "Suspend"),
    ("SUSPENDED", "DEPLOYED", "Resume"),
    ("ROLLING_BACK", "ROLLED_BACK", "Rollback"),
];

/// Transitions that pass through other states, timed from when `from` was last left to when
/// `to` is reached (upstream's blue/green `Lifecycle.Transition.<name>.TimeSeconds`); the first
/// child's is timed from when the resource was first seen. Reaching a state of `RESTING` starts
/// the next span afresh.
const SPANS: [(&str, &str, &str, &str); 3] = [
    (
        "FlinkBlueGreenDeployment",
        "INITIALIZING_BLUE",
        "ACTIVE_BLUE",
        "InitialDeployment",
    ),
    (
        "FlinkBlueGreenDeployment",
        "ACTIVE_BLUE",
        "ACTIVE_GREEN",
        "BlueToGreen",
    ),
    (
        "FlinkBlueGreenDeployment",
        "ACTIVE_GREEN",
        "ACTIVE_BLUE",
        "GreenToBlue",
    ),
];
const RESTING: [&str; 2] = ["ACTIVE_BLUE", "ACTIVE_GREEN"];

fn latency_histogram() -> Histogram {
    // 5 ms .. ~80 s: a reconcile that waits on Flink's REST API takes seconds.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

fn transition_histogram() -> Histogram {
    // 1 s .. ~68 min: a savepoint upgrade of a large state takes minutes.
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("flink_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles done, by resource kind and outcome (success or error)",
            reconciles.clone(),
        );
        let reconcile_seconds: Histograms<KindLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, from observing to the last write",
            reconcile_seconds.clone(),
        );
        let resources = Family::<StateLabels, Gauge>::default();
        registry.register(
            "resources",
            "Resources by kind, namespace and lifecycle state (snapshots: their state)",
            resources.clone(),
        );
        let transition_seconds: Histograms<TransitionLabels> =
            Family::new_with_constructor(transition_histogram);
        registry.register(
            "lifecycle_transition_seconds",
            "Time from entering one lifecycle state to the next: Submission, Stabilization, Upgrade, Suspend, Resume, Rollback",
            transition_seconds.clone(),
        );
        let snapshots = Family::<SnapshotLabels, Counter>::default();
        registry.register(
            "snapshots",
            "FlinkStateSnapshots that ended, by type and result (COMPLETED, FAILED, ABANDONED)",
            snapshots.clone(),
        );
        let scalings = Family::<ScalingLabels, Counter>::default();
        registry.register(
            "autoscaler_scalings",
            "Autoscaler decisions to change a parallelism, by namespace and outcome (applied, limited, vetoed, ineffective)",
            scalings.clone(),
        );
        let shards_owned = Gauge::default();
        registry.register(
            "shards_owned",
            "Shards (Leases) this replica owns now, when replicas share the work",
            shards_owned.clone(),
        );
        Metrics {
            registry,
            shards_owned,
            reconciles,
            reconcile_seconds,
            resources,
            transition_seconds,
            snapshots,
            scalings,
            tracked: Mutex::default(),
        }
    }

    /// Adds a collector read at every scrape (the plugin host's counters).
    pub fn with_collector(mut self, collector: impl Collector) -> Self {
        self.registry.register_collector(Box::new(collector));
        self
    }

    /// Counts a reconcile and its duration.
    pub fn reconciled(&self, kind: &'static str, took: Duration, succeeded: bool) {
        let outcome = if succeeded { "success" } else { "error" };
        self.reconciles
            .get_or_create(&ReconcileLabels { kind, outcome })
            .inc();
        self.reconcile_seconds
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }

    /// Resources whose state is tracked.
    pub fn tracked_len(&self) -> usize {
        self.tracked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Moves a resource to the state a reconcile left it in; measures a transition that ended.
    pub fn seen(&self, seen: Seen<'_>) {
        self.seen_at(seen, Instant::now());
    }

    fn seen_at(&self, seen: Seen<'_>, now: Instant) {
        let key = (seen.kind, seen.namespace.to_string(), seen.name.to_string());
        let mut tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        let previous = if seen.gone {
            tracked.remove(&key)
        } else if let Some(state) = seen.state {
            let labels = StateLabels {
                kind: seen.kind,
                namespace: seen.namespace.to_string(),
                state: state.to_string(),
            };
            let mut left = Vec::new();
            match tracked.get_mut(&key) {
                Some(old) if old.labels == labels => {
                    old.job_manager = seen.job_manager.map(String::from);
                    old.flink_version = seen.flink_version.map(String::from);
                    return;
                }
                Some(old) => {
                    left = old.left.clone();
                    left.push((old.labels.state.clone(), now));
                }
                // The first child's span starts when the resource is first seen (not after an
                // operator restart that finds it active).
                None if !RESTING.contains(&state) => {
                    left.push(("INITIALIZING_BLUE".to_string(), now))
                }
                None => {}
            }
            if !SPANS.iter().any(|(kind, ..)| *kind == seen.kind) || RESTING.contains(&state) {
                for (_, from, _, transition) in SPANS
                    .iter()
                    .filter(|(kind, _, to, _)| *kind == seen.kind && *to == state)
                {
                    if let Some((_, at)) = left.iter().rev().find(|(s, _)| s == from) {
                        self.transition_seconds
                            .get_or_create(&TransitionLabels {
                                kind: seen.kind,
                                transition,
                            })
                            .observe(now.saturating_duration_since(*at).as_secs_f64());
                    }
                }
                left.clear();
            }
            self.resources.get_or_create(&labels).inc();
            tracked.insert(
                key,
                Tracked {
                    labels,
                    since: now,
                    left,
                    snapshot_type: seen.snapshot_type,
                    job_manager: seen.job_manager.map(String::from),
                    flink_version: seen.flink_version.map(String::from),
                },
            )
        } else {
            return;
        };
        // A resource first seen in a final state (after an operator restart) ended earlier:
        // it is not counted again.
        let Some(previous) = previous else {
            return;
        };
        self.resources.get_or_create(&previous.labels).dec();
        let Some(state) = seen.state.filter(|_| !seen.gone) else {
            return;
        };
        if let Some(kind) = seen.snapshot_type {
            self.snapshot_ended(kind, state);
        }
        let from = previous.labels.state.as_str();
        if let Some((_, _, transition)) = TRANSITIONS
            .iter()
            .find(|(f, t, _)| *f == from && *t == state)
        {
            self.transition_seconds
                .get_or_create(&TransitionLabels {
                    kind: seen.kind,
                    transition,
                })
                .observe(now.saturating_duration_since(previous.since).as_secs_f64());
        }
    }

    fn snapshot_ended(&self, snapshot_type: &'static str, state: &str) {
        if matches!(state, "COMPLETED" | "FAILED" | "ABANDONED") {
            self.snapshots
                .get_or_create(&SnapshotLabels {
                    snapshot_type,
                    result: state.to_string(),
                })
                .inc();
        }
    }

    /// Counts an autoscaler decision to change a parallelism, by how it ended.
    pub fn scaling(&self, namespace: &str, outcome: ScalingOutcome) {
        self.scalings
            .get_or_create(&ScalingLabels {
                namespace: namespace.to_string(),
                outcome: outcome.label(),
            })
            .inc();
    }

    /// How many shards this replica owns now.
    pub fn shards_owned(&self, count: usize) {
        self.shards_owned.set(count as i64);
    }

    /// The registry in Prometheus' text format (OpenMetrics 1.0), then the Java operator's
    /// resource gauges under its names (`super::upstream`).
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text;
        let mut upstream = Registry::default();
        upstream.register_collector(Box::new(super::upstream::UpstreamCollector(
            self.resources_now(),
        )));
        let mut out = String::new();
        let encoded = text::encode_registry(&mut out, &self.registry)
            .and_then(|()| text::encode_registry(&mut out, &upstream))
            .and_then(|()| text::encode_eof(&mut out));
        if let Err(e) = encoded {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }

    /// Every tracked resource as its last reconcile left it.
    fn resources_now(&self) -> Vec<super::upstream::Resource> {
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        tracked
            .iter()
            .map(|((kind, namespace, _), t)| super::upstream::Resource {
                kind,
                namespace: namespace.clone(),
                state: t.labels.state.clone(),
                snapshot_type: t.snapshot_type,
                job_manager: t.job_manager.clone(),
                flink_version: t.flink_version.clone(),
            })
            .collect()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    digest: String,
    extension: String,
}

/// One loaded plugin's counters at the moment of a scrape.
#[derive(Clone, Debug)]
pub struct PluginSample {
    pub plugin: String,
    pub digest: String,
    pub extension: String,
    pub stats: flink_policy::StatsSnapshot,
}

/// Which counter of a plugin's statistics a series shows.
type StatOf = fn(&flink_policy::StatsSnapshot) -> u64;

/// Reads the plugin host's counters at each scrape, so the host needs no metrics library.
pub struct PluginCollector<F>(pub F);

impl<F> std::fmt::Debug for PluginCollector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginCollector")
    }
}

impl<F> Collector for PluginCollector<F>
where
    F: Fn() -> Vec<PluginSample> + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let samples = (self.0)();
        let counters: [(&str, &str, StatOf); 7] = [
            ("plugin_calls", "Calls into a policy plugin", |s| s.calls),
            (
                "plugin_failures",
                "Plugin calls that produced no usable answer (any reason)",
                |s| s.failures,
            ),
            ("plugin_traps", "Plugin calls that trapped", |s| s.traps),
            (
                "plugin_timeouts",
                "Plugin calls stopped at their deadline",
                |s| s.timeouts,
            ),
            (
                "plugin_out_of_fuel",
                "Plugin calls stopped when their fuel ran out",
                |s| s.out_of_fuel,
            ),
            (
                "plugin_memory_exceeded",
                "Plugin calls that hit their memory cap",
                |s| s.memory_exceeded,
            ),
            (
                "plugin_fuel_consumed",
                "Fuel (about one per Wasm instruction) plugin calls consumed",
                |s| s.fuel_used,
            ),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for sample in &samples {
                let labels = PluginLabels {
                    plugin: sample.plugin.clone(),
                    digest: sample.digest.clone(),
                    extension: sample.extension.clone(),
                };
                ConstCounter::new(value(&sample.stats)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "plugin_call_seconds",
            "Wall time plugin calls took, summed (divide by plugin_calls_total for the mean)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for sample in &samples {
            let labels = PluginLabels {
                plugin: sample.plugin.clone(),
                digest: sample.digest.clone(),
                extension: sample.extension.clone(),
            };
            ConstCounter::new(sample.stats.micros as f64 / 1e6)
                .encode(family.encode_family(&labels)?)?;
        }
        let family = encoder.encode_descriptor(
            "plugins_loaded",
            "Plugins in use by a tenant binding",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(samples.len() as i64).encode(family)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn seen<'a>(name: &'a str, state: &'a str) -> Seen<'a> {
        Seen {
            kind: "FlinkDeployment",
            namespace: "team-a",
            name,
            state: Some(state),
            snapshot_type: None,
            job_manager: None,
            flink_version: None,
            gone: false,
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn a_resource_is_counted_in_its_latest_state_only() {
        let metrics = Metrics::new();
        metrics.seen(seen("a", "DEPLOYED"));
        metrics.seen(seen("b", "DEPLOYED"));
        metrics.seen(seen("a", "STABLE"));
        metrics.seen(seen("a", "STABLE"));
        let text = metrics.encode();
        let deployed = r#"flink_operator_resources{kind="FlinkDeployment",namespace="team-a",state="DEPLOYED"}"#;
        let stable =
            r#"flink_operator_resources{kind="FlinkDeployment",namespace="team-a",state="STABLE"}"#;
        assert_eq!(
            line(&text, deployed),
            Some(format!("{deployed} 1").as_str())
        );
        assert_eq!(line(&text, stable), Some(format!("{stable} 1").as_str()));
        metrics.seen(Seen {
            gone: true,
            ..seen("a", "DELETING")
        });
        let text = metrics.encode();
        assert_eq!(line(&text, stable), Some(format!("{stable} 0").as_str()));
    }

    #[test]
    fn an_upgrade_is_timed_from_upgrading_to_stable() {
        let metrics = Metrics::new();
        let start = Instant::now();
        metrics.seen_at(seen("a", "STABLE"), start);
        metrics.seen_at(seen("a", "UPGRADING"), start + Duration::from_secs(10));
        metrics.seen_at(seen("a", "STABLE"), start + Duration::from_secs(40));
        let text = metrics.encode();
        let sum = r#"flink_operator_lifecycle_transition_seconds_sum{kind="FlinkDeployment",transition="Upgrade"}"#;
        assert_eq!(
            line(&text, sum),
            Some(format!("{sum} 30.0").as_str()),
            "{text}"
        );
        assert!(!text.contains(r#"transition="Stabilization""#), "{text}");
    }

    #[test]
    fn a_snapshot_is_counted_once_when_it_ends() {
        let metrics = Metrics::new();
        let snapshot = |state| Seen {
            kind: "FlinkStateSnapshot",
            namespace: "team-a",
            name: "s",
            state: Some(state),
            snapshot_type: Some("savepoint"),
            job_manager: None,
            flink_version: None,
            gone: false,
        };
        metrics.seen(snapshot("TRIGGER_PENDING"));
        metrics.seen(snapshot("IN_PROGRESS"));
        metrics.seen(snapshot("COMPLETED"));
        metrics.seen(snapshot("COMPLETED"));
        let text = metrics.encode();
        let completed =
            r#"flink_operator_snapshots_total{snapshot_type="savepoint",result="COMPLETED"}"#;
        assert_eq!(
            line(&text, completed),
            Some(format!("{completed} 1").as_str()),
            "{text}"
        );
    }

    #[test]
    fn plugin_counters_are_read_at_each_scrape() {
        let calls = Arc::new(std::sync::atomic::AtomicU64::new(3));
        let read = calls.clone();
        let metrics = Metrics::new().with_collector(PluginCollector(move || {
            vec![PluginSample {
                plugin: "tenant-quota-scaling".into(),
                digest: "sha256:ab12".into(),
                extension: "scaling".into(),
                stats: flink_policy::StatsSnapshot {
                    calls: read.load(std::sync::atomic::Ordering::Relaxed),
                    micros: 1_500_000,
                    ..Default::default()
                },
            }]
        }));
        let series = r#"flink_operator_plugin_calls_total{plugin="tenant-quota-scaling",digest="sha256:ab12",extension="scaling"}"#;
        assert_eq!(
            line(&metrics.encode(), series),
            Some(format!("{series} 3").as_str())
        );
        calls.store(5, std::sync::atomic::Ordering::Relaxed);
        let text = metrics.encode();
        assert_eq!(line(&text, series), Some(format!("{series} 5").as_str()));
        assert!(text.contains(r#"flink_operator_plugin_call_seconds_total{plugin="tenant-quota-scaling",digest="sha256:ab12",extension="scaling"} 1.5"#), "{text}");
    }

    /// The Java operator's dashboards find their series: its namespace gauges under the names
    /// Flink's Prometheus reporter gives them, every state's gauge present (0 when empty).
    #[test]
    fn the_java_operators_namespace_gauges_are_exported_under_its_names() {
        let metrics = Metrics::new();
        metrics.seen(Seen {
            job_manager: Some("READY"),
            flink_version: Some("2.3.0"),
            ..seen("orders", "STABLE")
        });
        metrics.seen(Seen {
            kind: "FlinkSessionJob",
            ..seen("etl", "DEPLOYED")
        });
        metrics.seen(Seen {
            kind: "FlinkStateSnapshot",
            snapshot_type: Some("checkpoint"),
            ..seen("cp-1", "COMPLETED")
        });
        metrics.seen(Seen {
            kind: "FlinkBlueGreenDeployment",
            ..seen("flip", "ACTIVE_BLUE")
        });
        let text = metrics.encode();
        let ns = r#"resourcens="team-a""#;
        for (series, value) in [
            (
                format!(
                    r#"flink_k8soperator_namespace_Count{{{ns},resourcetype="FlinkDeployment"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_Count{{{ns},resourcetype="FlinkSessionJob"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_Lifecycle_State_STABLE_Count{{{ns},resourcetype="FlinkDeployment"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_Lifecycle_State_FAILED_Count{{{ns},resourcetype="FlinkDeployment"}}"#
                ),
                0,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_Lifecycle_State_DEPLOYED_Count{{{ns},resourcetype="FlinkSessionJob"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_JmDeploymentStatus_READY_Count{{{ns},resourcetype="FlinkDeployment"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_JmDeploymentStatus_ERROR_Count{{{ns},resourcetype="FlinkDeployment"}}"#
                ),
                0,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_FlinkVersion_Count{{{ns},resourcetype="FlinkDeployment",FlinkVersion="2.3.0"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_FlinkMinorVersion_Count{{{ns},resourcetype="FlinkDeployment",FlinkMinorVersion="2.3"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_Checkpoint_Count{{{ns},resourcetype="FlinkStateSnapshot"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_Checkpoint_State_COMPLETED_Count{{{ns},resourcetype="FlinkStateSnapshot"}}"#
                ),
                1,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_Savepoint_Count{{{ns},resourcetype="FlinkStateSnapshot"}}"#
                ),
                0,
            ),
            (
                format!(
                    r#"flink_k8soperator_namespace_BlueGreenState_ACTIVE_BLUE_Count{{{ns},resourcetype="FlinkBlueGreenDeployment"}}"#
                ),
                1,
            ),
        ] {
            assert_eq!(
                line(&text, &format!("{series} ")),
                Some(format!("{series} {value}").as_str()),
                "{text}"
            );
        }
        // A state change moves the count; the text stays one exposition.
        metrics.seen(Seen {
            job_manager: Some("DEPLOYING"),
            flink_version: Some("2.3.0"),
            ..seen("orders", "UPGRADING")
        });
        let text = metrics.encode();
        assert!(text.contains(&format!(r#"flink_k8soperator_namespace_Lifecycle_State_STABLE_Count{{{ns},resourcetype="FlinkDeployment"}} 0"#)), "{text}");
        assert!(text.contains(&format!(r#"flink_k8soperator_namespace_JmDeploymentStatus_DEPLOYING_Count{{{ns},resourcetype="FlinkDeployment"}} 1"#)), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }
}

#[cfg(test)]
mod blue_green_tests {
    use super::*;

    fn seen<'a>(state: &'a str) -> Seen<'a> {
        Seen {
            kind: "FlinkBlueGreenDeployment",
            namespace: "team-a",
            name: "flip",
            state: Some(state),
            snapshot_type: None,
            job_manager: None,
            flink_version: None,
            gone: false,
        }
    }

    fn sum(text: &str, transition: &str) -> Option<String> {
        let series = format!(
            "flink_operator_lifecycle_transition_seconds_sum{{kind=\"FlinkBlueGreenDeployment\",transition=\"{transition}\"}}"
        );
        text.lines()
            .find(|l| l.starts_with(&series))
            .map(|l| l[series.len()..].trim().to_string())
    }

    #[test]
    fn blue_green_transitions_are_timed_across_the_states_between_as_upstream() {
        let metrics = Metrics::new();
        let t = Instant::now();
        let at = |s: u64| t + Duration::from_secs(s);
        metrics.seen_at(seen("TRANSITIONING_TO_BLUE"), at(0));
        metrics.seen_at(seen("ACTIVE_BLUE"), at(50));
        metrics.seen_at(seen("SAVEPOINTING_BLUE"), at(100));
        metrics.seen_at(seen("TRANSITIONING_TO_GREEN"), at(110));
        metrics.seen_at(seen("ACTIVE_GREEN"), at(160));
        let text = metrics.encode();
        assert_eq!(
            sum(&text, "InitialDeployment").as_deref(),
            Some("50.0"),
            "{text}"
        );
        assert_eq!(sum(&text, "BlueToGreen").as_deref(), Some("60.0"), "{text}");
        assert_eq!(sum(&text, "GreenToBlue"), None, "{text}");
        // An in-place change (ACTIVE_GREEN -> TRANSITIONING_TO_GREEN -> ACTIVE_GREEN) is none.
        metrics.seen_at(seen("TRANSITIONING_TO_GREEN"), at(200));
        metrics.seen_at(seen("ACTIVE_GREEN"), at(230));
        assert_eq!(
            sum(&metrics.encode(), "BlueToGreen").as_deref(),
            Some("60.0")
        );
        // Found active after a restart: no initial deployment is timed.
        let restarted = Metrics::new();
        restarted.seen_at(seen("ACTIVE_BLUE"), at(0));
        assert_eq!(sum(&restarted.encode(), "InitialDeployment"), None);
    }
}
