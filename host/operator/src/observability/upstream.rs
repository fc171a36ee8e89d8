//! The Java operator's namespace-level resource gauges under the names Flink's Prometheus
//! reporter gives them (`flink_k8soperator_namespace_...`, the logical scope and the metric
//! name joined with `_`, the scope variables and key-value groups as labels), so dashboards
//! and alerts written for the Java operator find their series. Computed at each scrape from
//! the states the reconciles left the resources in, as our own `flink_operator_resources` is.
//! The operator pod's own `host`, `namespace` and `name` labels are not attached: Prometheus'
//! scrape of the pod adds its target labels.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::{BTreeMap, BTreeSet};

const PREFIX: &str = "flink_k8soperator_namespace";
const LIFECYCLE_STATES: [&str; 8] = [
    "CREATED",
    "SUSPENDED",
    "UPGRADING",
    "DEPLOYED",
    "STABLE",
    "ROLLING_BACK",
    "ROLLED_BACK",
    "FAILED",
];
const JM_STATUSES: [&str; 5] = [
    "READY",
    "DEPLOYED_NOT_READY",
    "DEPLOYING",
    "MISSING",
    "ERROR",
];
const BLUE_GREEN_STATES: [&str; 7] = [
    "INITIALIZING_BLUE",
    "ACTIVE_BLUE",
    "SAVEPOINTING_BLUE",
    "TRANSITIONING_TO_GREEN",
    "ACTIVE_GREEN",
    "SAVEPOINTING_GREEN",
    "TRANSITIONING_TO_BLUE",
];
const SNAPSHOT_STATES: [&str; 5] = [
    "COMPLETED",
    "FAILED",
    "IN_PROGRESS",
    "TRIGGER_PENDING",
    "ABANDONED",
];

/// One tracked resource, as the last reconcile left it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    pub kind: &'static str,
    pub namespace: String,
    pub state: String,
    /// FlinkStateSnapshots: `savepoint` or `checkpoint`.
    pub snapshot_type: Option<&'static str>,
    /// FlinkDeployments: `status.jobManagerDeploymentStatus`.
    pub job_manager: Option<String>,
    /// FlinkDeployments: the version the JobManager reported (`status.clusterInfo`).
    pub flink_version: Option<String>,
}

/// Encodes the upstream-named families over `resources` at each scrape.
#[derive(Debug)]
pub struct UpstreamCollector(pub Vec<Resource>);

type Labels = Vec<(&'static str, String)>;

fn labels(namespace: &str, kind: &'static str) -> Labels {
    vec![
        ("resourcens", namespace.to_string()),
        ("resourcetype", kind.to_string()),
    ]
}

/// Gauges of one family: label set to value.
#[derive(Default)]
struct Gauges(BTreeMap<Labels, i64>);

impl Gauges {
    fn add(&mut self, labels: Labels, by: i64) {
        *self.0.entry(labels).or_default() += by;
    }
}

/// The family `name`, made with `help` when new.
fn family<'f>(
    families: &'f mut BTreeMap<String, (String, Gauges)>,
    name: String,
    help: &str,
) -> &'f mut Gauges {
    &mut families
        .entry(name)
        .or_insert_with(|| (help.to_string(), Gauges::default()))
        .1
}

impl UpstreamCollector {
    /// Every family with its series, in a stable order.
    fn families(&self) -> BTreeMap<String, (String, Gauges)> {
        let mut families: BTreeMap<String, (String, Gauges)> = BTreeMap::new();
        // Every (namespace, kind) seen gets all its states' gauges, at 0 when none is in one,
        // as upstream registers them per namespace.
        let scopes: BTreeSet<(&str, &'static str)> = self
            .0
            .iter()
            .map(|r| (r.namespace.as_str(), r.kind))
            .collect();
        for (namespace, kind) in &scopes {
            let here = || labels(namespace, kind);
            match *kind {
                "FlinkDeployment" | "FlinkSessionJob" => {
                    family(
                        &mut families,
                        format!("{PREFIX}_Count"),
                        "Managed resources per namespace",
                    )
                    .add(here(), 0);
                    for state in LIFECYCLE_STATES {
                        family(
                            &mut families,
                            format!("{PREFIX}_Lifecycle_State_{state}_Count"),
                            "Managed resources in this lifecycle state per namespace",
                        )
                        .add(here(), 0);
                    }
                    if *kind == "FlinkDeployment" {
                        for status in JM_STATUSES {
                            family(
                                &mut families,
                                format!("{PREFIX}_JmDeploymentStatus_{status}_Count"),
                                "FlinkDeployments per JobManager deployment status per namespace",
                            )
                            .add(here(), 0);
                        }
                    }
                }
                "FlinkBlueGreenDeployment" => {
                    for state in BLUE_GREEN_STATES {
                        family(
                            &mut families,
                            format!("{PREFIX}_BlueGreenState_{state}_Count"),
                            "FlinkBlueGreenDeployments in this state per namespace",
                        )
                        .add(here(), 0);
                    }
                }
                "FlinkStateSnapshot" => {
                    for group in ["Checkpoint", "Savepoint"] {
                        family(
                            &mut families,
                            format!("{PREFIX}_{group}_Count"),
                            "Tracked snapshots of this type per namespace",
                        )
                        .add(here(), 0);
                        for state in SNAPSHOT_STATES {
                            family(
                                &mut families,
                                format!("{PREFIX}_{group}_State_{state}_Count"),
                                "Snapshots of this type in this state per namespace",
                            )
                            .add(here(), 0);
                        }
                    }
                }
                _ => {}
            }
        }
        for r in &self.0 {
            let here = || labels(&r.namespace, r.kind);
            match r.kind {
                "FlinkDeployment" | "FlinkSessionJob" => {
                    family(&mut families, format!("{PREFIX}_Count"), "").add(here(), 1);
                    family(
                        &mut families,
                        format!("{PREFIX}_Lifecycle_State_{}_Count", r.state),
                        "",
                    )
                    .add(here(), 1);
                    if let Some(status) = &r.job_manager {
                        family(
                            &mut families,
                            format!("{PREFIX}_JmDeploymentStatus_{status}_Count"),
                            "",
                        )
                        .add(here(), 1);
                    }
                    // Also checked where it is observed: a label value is never a tenant's
                    // free text.
                    if let Some(version) = r.flink_version.as_ref().filter(|v| {
                        v.len() <= 64
                            && v.chars()
                                .all(|c| c.is_ascii_alphanumeric() || ".-_+".contains(c))
                    }) {
                        let mut with = here();
                        with.push(("FlinkVersion", version.clone()));
                        family(
                            &mut families,
                            format!("{PREFIX}_FlinkVersion_Count"),
                            "FlinkDeployments per Flink version per namespace",
                        )
                        .add(with, 1);
                        let minor: Vec<&str> = version.split('.').take(2).collect();
                        let mut with = here();
                        with.push(("FlinkMinorVersion", minor.join(".")));
                        family(
                            &mut families,
                            format!("{PREFIX}_FlinkMinorVersion_Count"),
                            "FlinkDeployments per Flink minor version per namespace",
                        )
                        .add(with, 1);
                    }
                }
                "FlinkBlueGreenDeployment" => {
                    family(
                        &mut families,
                        format!("{PREFIX}_BlueGreenState_{}_Count", r.state),
                        "",
                    )
                    .add(here(), 1);
                }
                "FlinkStateSnapshot" => {
                    let group = match r.snapshot_type {
                        Some("checkpoint") => "Checkpoint",
                        _ => "Savepoint",
                    };
                    family(&mut families, format!("{PREFIX}_{group}_Count"), "").add(here(), 1);
                    family(
                        &mut families,
                        format!("{PREFIX}_{group}_State_{}_Count", r.state),
                        "",
                    )
                    .add(here(), 1);
                }
                _ => {}
            }
        }
        families
    }
}

impl Collector for UpstreamCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, (help, gauges)) in self.families() {
            let help = if help.is_empty() {
                "Upstream-named resource gauge"
            } else {
                help.as_str()
            };
            let mut family = encoder.encode_descriptor(&name, help, None, MetricType::Gauge)?;
            for (labels, value) in &gauges.0 {
                ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}
