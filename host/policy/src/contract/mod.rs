//! The contract suite: what any plugin, ours or a team's, must do to be bound to a tenant.
//! `flink-operator plugin test FILE.wasm` runs it; so do this crate's tests on every example
//! plugin. One check per line, each able to fail with the numbers that made it fail.
//!
//! The samples are realistic inputs of the plugin's extension point (a 20-vertex job, a full
//! rendered pod template); `samples` exposes them so the bench measures the same inputs.

use crate::engine::{CallFailure, Plugin, PolicyEngine};
use crate::guard::PodGuard;
use crate::limits::Limits;
use crate::model::*;
use serde::Serialize;
use serde_json::{Value, json};

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// A sample input of one extension point.
#[derive(Debug, Clone)]
pub enum Sample {
    Scaling(ScalingInput),
    Upgrade(UpgradeInput),
    Pod(PodInput),
}

/// What a sample call produced, comparable across runs.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    value: Value,
    fuel: u64,
}

/// The resource every sample is about: `team-a/orders`.
pub fn sample_resource() -> ResourceRef {
    ResourceRef {
        kind: "FlinkDeployment".into(),
        namespace: "team-a".into(),
        name: "orders".into(),
        tenant: "team-a".into(),
        labels: [("app".to_string(), "orders".to_string())].into(),
    }
}

/// 2024-06-03 10:00 UTC, a Monday morning.
const NOW: i64 = 1_717_408_800_000;

/// A job of `n` vertices: a source, a chain of operators with rising load, a sink.
/// A job vertex id as Flink makes them: 32 hex digits of a hash, so two ids differ early
/// (ids with a long common prefix would make every id comparison in a plugin its worst case).
fn vertex_id(i: u64) -> String {
    // splitmix64: deterministic, well spread.
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    format!("{:016x}{:016x}", mix(2 * i), mix(2 * i + 1))
}

pub fn job_of(n: usize, config: &Value) -> ScalingInput {
    let vertices: Vec<Vertex> = (0..n)
        .map(|i| Vertex {
            id: vertex_id(i as u64),
            name: match i {
                0 => "Source: orders".into(),
                i if i == n - 1 => "Sink: warehouse".into(),
                i => format!("Operator {i}"),
            },
            parallelism: 4,
            max_parallelism: 128,
            busy_ratio: Some(0.3 + 0.6 * (i as f64) / (n.max(2) - 1) as f64),
            processing_rate: Some(10_000.0 - 100.0 * i as f64),
            target_rate: Some(12_000.0),
            pending_records: (i == 0).then_some(250_000),
            is_source: i == 0,
        })
        .collect();
    let recommendations = vertices
        .iter()
        .filter(|v| v.busy_ratio.is_some_and(|b| b > 0.8))
        .map(|v| Recommendation {
            vertex_id: v.id.clone(),
            current: v.parallelism,
            recommended: v.parallelism * 2,
            reasons: vec![format!(
                "busy {:.2} > target 0.70 + 0.10",
                v.busy_ratio.unwrap_or(0.0)
            )],
        })
        .collect();
    ScalingInput {
        resource: sample_resource(),
        job_id: "0000000000000000000000000000000a".into(),
        now_epoch_ms: NOW,
        vertices,
        recommendations,
        tenant_slots_in_use: 24,
        tenant_usage_error: None,
        config: config.clone(),
    }
}

fn pod_template(component: Component) -> Value {
    let text = match component {
        Component::JobManager => include_str!("jobmanager-pod.json"),
        Component::TaskManager => include_str!("taskmanager-pod.json"),
    };
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The contract's sample inputs for an extension point, named, with the tenant's config.
pub fn samples(point: ExtensionPoint, config: &Value) -> Vec<(&'static str, Sample)> {
    match point {
        ExtensionPoint::Scaling => {
            let mut idle = job_of(3, config);
            idle.recommendations.clear();
            let mut blind = job_of(5, config);
            for v in &mut blind.vertices {
                v.busy_ratio = None;
                v.processing_rate = None;
            }
            vec![
                (
                    "a 20-vertex job under load",
                    Sample::Scaling(job_of(20, config)),
                ),
                ("an idle job without recommendations", Sample::Scaling(idle)),
                ("a job whose metrics are missing", Sample::Scaling(blind)),
            ]
        }
        ExtensionPoint::Upgrade => {
            let upgrade = |mode, checkpoint: Option<&str>, state: &str| UpgradeInput {
                resource: sample_resource(),
                now_epoch_ms: NOW,
                old_spec: json!({"flinkVersion": "v2_0", "job": {"parallelism": 4, "upgradeMode": "savepoint"}}),
                new_spec: json!({"flinkVersion": "v2_0", "job": {"parallelism": 8, "upgradeMode": "savepoint"}}),
                requested_mode: mode,
                job_state: state.into(),
                snapshots: SnapshotInfo {
                    last_savepoint: None,
                    last_savepoint_epoch_ms: None,
                    last_checkpoint: checkpoint.map(Into::into),
                    last_checkpoint_epoch_ms: checkpoint.map(|_| NOW - 60_000),
                },
                config: config.clone(),
            };
            vec![
                (
                    "a stateful job's savepoint upgrade",
                    Sample::Upgrade(upgrade(
                        UpgradeMode::Savepoint,
                        Some("s3://ckpt/orders/chk-41"),
                        "RUNNING",
                    )),
                ),
                (
                    "a last-state upgrade of a failed job",
                    Sample::Upgrade(upgrade(
                        UpgradeMode::LastState,
                        Some("s3://ckpt/orders/chk-41"),
                        "FAILED",
                    )),
                ),
                (
                    "a stateless job's upgrade",
                    Sample::Upgrade(upgrade(UpgradeMode::Stateless, None, "RUNNING")),
                ),
            ]
        }
        ExtensionPoint::PodTemplate => {
            let pod = |component| PodInput {
                resource: sample_resource(),
                component,
                flink_version: "v2_0".into(),
                pod_template: pod_template(component),
                config: config.clone(),
            };
            vec![
                (
                    "the JobManager pod",
                    Sample::Pod(pod(Component::JobManager)),
                ),
                (
                    "the TaskManager pod",
                    Sample::Pod(pod(Component::TaskManager)),
                ),
            ]
        }
    }
}

impl PolicyEngine {
    /// Runs a sample through the plugin: the checked answer as JSON, and the fuel it took.
    pub async fn call_sample(
        &self,
        plugin: &Plugin,
        sample: &Sample,
        limits: &Limits,
    ) -> Result<(Value, u64), CallFailure> {
        match sample {
            Sample::Scaling(input) => self
                .scaling(plugin, input, limits)
                .await
                .map(|c| (to_json(&c.value), c.fuel_used)),
            Sample::Upgrade(input) => self
                .upgrade(plugin, input, limits)
                .await
                .map(|c| (to_json(&c.value), c.fuel_used)),
            Sample::Pod(input) => self
                .pod_template(plugin, input, &PodGuard::default(), limits)
                .await
                .map(|c| (to_json(&c.value.patch), c.fuel_used)),
        }
    }

    /// The contract suite against `plugin` with the tenant `config` it will be bound with.
    pub async fn contract(&self, plugin: &Plugin, config: &Value) -> Vec<Check> {
        let point = plugin.shape.extension_point;
        let limits = Limits::default_for(point);
        let mut checks = Vec::new();
        let mut check = |name: String, passed: bool, detail: String| {
            checks.push(Check {
                name,
                passed,
                detail,
            })
        };

        check(
            format!(
                "implements {} of interface {}",
                point.world(),
                plugin.shape.interface_version
            ),
            true,
            format!("imports: {}", plugin.shape.imports.join(", ")),
        );

        match self
            .validate_config_text(plugin, "{this is not json", &limits)
            .await
        {
            Ok(c) => match c.value {
                Err(message) => check("rejects a config that is not JSON".into(), true, message),
                Ok(()) => check(
                    "rejects a config that is not JSON".into(),
                    false,
                    "validate-config accepted `{this is not json`".into(),
                ),
            },
            Err(failure) => check(
                "rejects a config that is not JSON".into(),
                false,
                format!("validate-config {failure}"),
            ),
        }
        let accepted = match self.validate_config(plugin, config, &limits).await {
            Ok(c) => c
                .value
                .map(|()| String::new())
                .map_err(|message| format!("validate-config says: {message}")),
            Err(failure) => Err(format!("validate-config {failure}")),
        };
        let config_ok = accepted.is_ok();
        check(
            format!("accepts the given config {config}"),
            config_ok,
            accepted.err().unwrap_or_default(),
        );

        let mut most_fuel = 0u64;
        for (name, sample) in samples(point, config) {
            let first = self.call_sample(plugin, &sample, &limits).await;
            let second = self.call_sample(plugin, &sample, &limits).await;
            match (&first, &second) {
                (Ok((value, fuel)), Ok(again)) => {
                    most_fuel = most_fuel.max(*fuel);
                    check(format!("decides on {name}"), true, compact(value));
                    let same = Answer {
                        value: value.clone(),
                        fuel: *fuel,
                    } == Answer {
                        value: again.0.clone(),
                        fuel: again.1,
                    };
                    check(
                        format!("is deterministic on {name}"),
                        same,
                        if same {
                            format!("{fuel} fuel both times")
                        } else {
                            format!(
                                "first {} ({fuel} fuel), then {} ({} fuel)",
                                compact(value),
                                compact(&again.0),
                                again.1
                            )
                        },
                    );
                }
                (Err(failure), _) | (_, Err(failure)) => check(
                    format!("decides on {name}"),
                    false,
                    format!("the plugin {failure}"),
                ),
            }
        }
        let budget_share = most_fuel as f64 / limits.fuel as f64;
        check(
            "stays within a tenth of the default fuel budget".into(),
            budget_share <= 0.1,
            format!(
                "at most {most_fuel} of {} fuel ({:.1}%)",
                limits.fuel,
                budget_share * 100.0
            ),
        );
        checks
    }
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 160 {
        text
    } else {
        format!(
            "{}…",
            &text[..text.char_indices().nth(160).map_or(text.len(), |(i, _)| i)]
        )
    }
}

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
