//! The host against real components: the example plugins decide as their native unit tests
//! say, and every hostile plugin is contained with a clear, classified failure while the same
//! engine keeps serving well-behaved plugins.

use flink_policy::contract::sample_resource;
use flink_policy::dev::plugin_bytes;
use flink_policy::model::*;
use flink_policy::{CallFailure, ExtensionPoint, Limits, LoadError, PodGuard, PolicyEngine};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::new(None).expect("engine"))
}

fn load(package: &str) -> Arc<flink_policy::Plugin> {
    engine()
        .load(package, &plugin_bytes(package))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn vertex(id: &str, parallelism: u32, busy: f64) -> Vertex {
    Vertex {
        id: id.into(),
        name: format!("op-{id}"),
        parallelism,
        max_parallelism: 128,
        busy_ratio: Some(busy),
        processing_rate: Some(1000.0),
        target_rate: None,
        pending_records: None,
        is_source: false,
    }
}

fn scaling_input(config: Value) -> ScalingInput {
    ScalingInput {
        resource: sample_resource(),
        job_id: "0000000000000000000000000000000a".into(),
        now_epoch_ms: 1_717_200_000_000,
        vertices: vec![vertex("a", 2, 0.9), vertex("b", 2, 0.2)],
        recommendations: vec![Recommendation {
            vertex_id: "a".into(),
            current: 2,
            recommended: 10,
            reasons: vec!["busy".into()],
        }],
        tenant_slots_in_use: 30,
        tenant_usage_error: None,
        config,
    }
}

fn scaling_limits() -> Limits {
    Limits::default_for(ExtensionPoint::Scaling)
}

#[tokio::test]
async fn the_quota_plugin_caps_a_scale_up_inside_wasm() {
    let plugin = load("tenant-quota-scaling");
    assert_eq!(plugin.shape.extension_point, ExtensionPoint::Scaling);
    assert_eq!(plugin.shape.interface_version, "1.1.0");
    assert!(plugin.shape.imports_tenant());
    let called = engine()
        .scaling(
            &plugin,
            &scaling_input(json!({"tenantMaxSlots": 36})),
            &scaling_limits(),
        )
        .await
        .unwrap();
    let ScalingDecision::Override { vertices, reason } = &called.value else {
        panic!("{:?}", called.value)
    };
    assert_eq!(
        vertices,
        &[VertexParallelism {
            vertex_id: "a".into(),
            parallelism: 6
        }]
    );
    assert!(reason.contains("quota leaves 6 slots"), "{reason}");
    assert!(called.fuel_used > 0);
    assert_eq!(called.logs.len(), 1, "the plugin logs its reasons once");
}

#[tokio::test]
async fn the_same_input_gives_the_same_answer_and_the_same_fuel() {
    let plugin = load("tenant-quota-scaling");
    let input = scaling_input(json!({"tenantMaxSlots": 36}));
    let first = engine()
        .scaling(&plugin, &input, &scaling_limits())
        .await
        .unwrap();
    let second = engine()
        .scaling(&plugin, &input, &scaling_limits())
        .await
        .unwrap();
    assert_eq!(first.value, second.value);
    assert_eq!(first.fuel_used, second.fuel_used);
}

#[tokio::test]
async fn config_errors_come_back_naming_the_field() {
    let plugin = load("tenant-quota-scaling");
    let limits = scaling_limits();
    let answer = engine()
        .validate_config(&plugin, &json!({"tenantMaxSlots": "lots"}), &limits)
        .await
        .unwrap();
    let err = answer.value.unwrap_err();
    assert!(
        err.starts_with("config.tenantMaxSlots: invalid type"),
        "{err}"
    );
    let ok = engine()
        .validate_config(&plugin, &json!({"tenantMaxSlots": 8}), &limits)
        .await
        .unwrap();
    assert_eq!(ok.value, Ok(()));
    // A decision with a bad config is the plugin's own error.
    let failure = engine()
        .scaling(&plugin, &scaling_input(json!({"peaks": 3})), &limits)
        .await
        .unwrap_err();
    assert!(
        matches!(&failure, CallFailure::PluginError { message } if message.starts_with("config.peaks")),
        "{failure}"
    );
}

#[tokio::test]
async fn the_upgrade_plugin_holds_an_upgrade_until_the_window() {
    let plugin = load("maintenance-window-upgrade");
    let saturday = 1_717_200_000_000_i64;
    let input = UpgradeInput {
        resource: sample_resource(),
        now_epoch_ms: saturday + 6 * 3_600_000,
        old_spec: json!({"job": {"parallelism": 2}}),
        new_spec: json!({"job": {"parallelism": 4}}),
        requested_mode: UpgradeMode::LastState,
        job_state: "RUNNING".into(),
        snapshots: SnapshotInfo::default(),
        config: json!({"windows": [{"days": ["sat", "sun"], "from": "02:00", "to": "05:00"}]}),
    };
    let limits = Limits::default_for(ExtensionPoint::Upgrade);
    let called = engine().upgrade(&plugin, &input, &limits).await.unwrap();
    assert!(
        matches!(called.value, UpgradeDecision::WaitUntil { until_epoch_ms, .. } if until_epoch_ms == saturday + 26 * 3_600_000),
        "{:?}",
        called.value
    );
    let inside = UpgradeInput {
        now_epoch_ms: saturday + 3 * 3_600_000,
        ..input
    };
    let called = engine().upgrade(&plugin, &inside, &limits).await.unwrap();
    assert!(
        matches!(
            called.value,
            UpgradeDecision::Proceed {
                mode: UpgradeMode::Savepoint,
                ..
            }
        ),
        "{:?}",
        called.value
    );
}

fn rendered_taskmanager() -> Value {
    json!({
        "metadata": {"labels": {"app": "orders", "component": "taskmanager"}},
        "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.0",
                                 "volumeMounts": [{"name": "flink-config-volume", "mountPath": "/opt/flink/conf"}]}],
                 "volumes": [{"name": "flink-config-volume", "configMap": {"name": "flink-config-orders"}}]}
    })
}

#[tokio::test]
async fn the_connector_plugin_adds_init_containers_that_pass_the_guard() {
    let plugin = load("connector-pod-template");
    let input = PodInput {
        resource: sample_resource(),
        component: Component::TaskManager,
        flink_version: "v2_0".into(),
        pod_template: rendered_taskmanager(),
        config: json!({"connectors": [{"name": "kafka", "image": "reg/kafka-connector:4.0.0-2.0"}],
                       "labels": {"example.com/tenant": "team-a"}}),
    };
    let called = engine()
        .pod_template(
            &plugin,
            &input,
            &PodGuard::default(),
            &Limits::default_for(ExtensionPoint::PodTemplate),
        )
        .await
        .unwrap();
    let pod = &called.value.pod_template;
    assert_eq!(pod["spec"]["initContainers"][0]["name"], "connector-kafka");
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][1]["mountPath"],
        "/opt/flink/usrlib/connectors"
    );
    assert_eq!(pod["metadata"]["labels"]["example.com/tenant"], "team-a");
    assert_eq!(pod["metadata"]["labels"]["component"], "taskmanager");
}

#[tokio::test]
async fn a_plugin_is_only_called_as_what_it_implements() {
    let plugin = load("connector-pod-template");
    let failure = engine()
        .scaling(&plugin, &scaling_input(json!({})), &scaling_limits())
        .await
        .unwrap_err();
    assert_eq!(
        failure,
        CallFailure::WrongExtensionPoint {
            wanted: "scaling-policy",
            actual: "pod-template"
        }
    );
}

async fn hostile(
    misbehave: &str,
    limits: Limits,
) -> Result<flink_policy::Called<ScalingDecision>, CallFailure> {
    let plugin = load("hostile-plugin");
    engine()
        .scaling(
            &plugin,
            &scaling_input(json!({"misbehave": misbehave})),
            &limits,
        )
        .await
}

/// After any misbehaviour, the engine still serves a well-behaved plugin correctly.
async fn engine_still_serves() {
    let plugin = load("tenant-quota-scaling");
    let called = engine()
        .scaling(
            &plugin,
            &scaling_input(json!({"tenantMaxSlots": 36})),
            &scaling_limits(),
        )
        .await;
    assert!(matches!(
        called.map(|c| c.value),
        Ok(ScalingDecision::Override { .. })
    ));
}

#[tokio::test]
async fn an_infinite_loop_runs_out_of_fuel_or_time() {
    let failure = hostile("loop", scaling_limits()).await.unwrap_err();
    assert_eq!(
        failure,
        CallFailure::OutOfFuel {
            budget: scaling_limits().fuel
        }
    );
    // With fuel to spare, the epoch deadline stops it.
    let generous = Limits {
        fuel: u64::MAX / 2,
        ..scaling_limits()
    };
    let failure = hostile("loop", generous).await.unwrap_err();
    assert!(matches!(failure, CallFailure::Timeout { .. }), "{failure}");
    engine_still_serves().await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_cap() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..scaling_limits()
    };
    let failure = hostile("memory", limits).await.unwrap_err();
    assert_eq!(
        failure,
        CallFailure::MemoryExceeded {
            limit_bytes: 16 << 20
        }
    );
    engine_still_serves().await;
}

/// However many calls run at once, plugins together hold at most the engine's budget: a call
/// that cannot reserve its memory limit in time is not run (`Busy`), and runs once the budget
/// is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_memory_budget_wait_for_it_and_then_fail_as_busy() {
    let engine = Arc::new(
        PolicyEngine::with_options(flink_policy::EngineOptions {
            budget: flink_policy::Budget {
                memory_bytes: 64 << 20,
                wait: std::time::Duration::from_millis(50),
            },
            ..Default::default()
        })
        .expect("engine"),
    );
    let hostile = engine
        .load("hostile", &plugin_bytes("hostile-plugin"))
        .expect("load");
    let quota = engine
        .load("quota", &plugin_bytes("tenant-quota-scaling"))
        .expect("load");
    // Loops until its deadline, holding the whole budget meanwhile.
    let looping = Limits {
        fuel: u64::MAX / 2,
        ..scaling_limits()
    };
    let holder = {
        let (engine, hostile) = (engine.clone(), hostile.clone());
        tokio::spawn(async move {
            engine
                .scaling(
                    &hostile,
                    &scaling_input(json!({"misbehave": "loop"})),
                    &looping,
                )
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let input = scaling_input(json!({"tenantMaxSlots": 36}));
    let refused = engine.scaling(&quota, &input, &scaling_limits()).await;
    assert_eq!(refused.unwrap_err(), CallFailure::Busy { waited_ms: 50 });
    assert!(matches!(
        holder.await.expect("task").unwrap_err(),
        CallFailure::Timeout { .. }
    ));
    assert!(
        engine
            .scaling(&quota, &input, &scaling_limits())
            .await
            .is_ok()
    );
}

/// The quota is never enforced against a made-up 0: told that the usage is unknown, the quota
/// plugin (interface 1.1) vetoes and says why.
#[tokio::test]
async fn a_quota_plugin_is_told_when_the_tenants_usage_is_unknown() {
    let plugin = load("tenant-quota-scaling");
    let mut input = scaling_input(json!({"tenantMaxSlots": 36}));
    input.tenant_slots_in_use = 0;
    input.tenant_usage_error =
        Some("the tenant's FlinkDeployments cannot be listed: timeout".into());
    let decision = engine()
        .scaling(&plugin, &input, &scaling_limits())
        .await
        .expect("decided")
        .value;
    assert!(
        matches!(&decision, ScalingDecision::Veto { reason } if reason.contains("cannot be listed: timeout")),
        "{decision:?}"
    );
}

/// A plugin built for interface 1.0 (before `tenant` existed) loads and decides on a 1.1 host;
/// it cannot be told an unknown usage, which the operator knows from its imports.
#[tokio::test]
async fn a_plugin_of_interface_1_0_still_loads_and_decides() {
    let plugin = load("legacy-v1-0-plugin");
    assert_eq!(plugin.shape.interface_version, "1.0.0");
    assert!(!plugin.shape.imports_tenant());
    let decision = engine()
        .scaling(&plugin, &scaling_input(json!({})), &scaling_limits())
        .await
        .expect("decided")
        .value;
    assert_eq!(
        decision,
        ScalingDecision::Veto {
            reason: "interface 1.0 plugin: the tenant uses 30 slots".into()
        }
    );
}

#[tokio::test]
async fn runaway_recursion_exhausts_the_stack_not_the_host() {
    let failure = hostile(
        "recursion",
        Limits {
            fuel: u64::MAX / 2,
            ..scaling_limits()
        },
    )
    .await
    .unwrap_err();
    // Wasm's own call stack or (first, for Rust) the shadow stack in linear memory runs out.
    assert!(
        matches!(&failure, CallFailure::Trap { message } if message.contains("call stack exhausted") || message.contains("overflows a Rust plugin's stack")),
        "{failure}"
    );
    engine_still_serves().await;
}

#[tokio::test]
async fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let failure = hostile("trap", scaling_limits()).await.unwrap_err();
    assert!(
        matches!(&failure, CallFailure::Trap { message } if message.contains("the hostile plugin panics on purpose")),
        "{failure}"
    );
    engine_still_serves().await;
}

#[tokio::test]
async fn a_huge_answer_is_refused() {
    let failure = hostile("huge-output", scaling_limits()).await.unwrap_err();
    assert_eq!(
        failure,
        CallFailure::OutputTooLarge {
            bytes: 16 << 20,
            limit_bytes: 1 << 20
        }
    );
}

#[tokio::test]
async fn a_log_flood_is_cut_at_the_budget_and_counted() {
    let called = hostile("log-flood", scaling_limits()).await.unwrap();
    assert_eq!(called.logs.len(), scaling_limits().log_lines as usize);
    assert_eq!(called.dropped_logs, 10_000 - scaling_limits().log_lines);
    assert_eq!(called.value, ScalingDecision::Follow);
}

#[tokio::test]
async fn nonsense_is_an_invalid_answer_and_a_plugin_error_is_its_own_kind() {
    let failure = hostile("nonsense", scaling_limits()).await.unwrap_err();
    assert!(
        matches!(&failure, CallFailure::InvalidOutput { message } if message.contains("\"no-such-vertex\", which the job does not have")),
        "{failure}"
    );
    let failure = hostile("plugin-error", scaling_limits()).await.unwrap_err();
    assert_eq!(
        failure,
        CallFailure::PluginError {
            message: "the hostile plugin fails on purpose".into()
        }
    );
}

#[tokio::test]
async fn a_loop_in_config_validation_is_contained_too() {
    let plugin = load("hostile-plugin");
    let failure = engine()
        .validate_config(
            &plugin,
            &json!({"misbehave": "loop-in-validate"}),
            &scaling_limits(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(failure, CallFailure::OutOfFuel { .. }),
        "{failure}"
    );
    let stats = plugin.stats.snapshot();
    assert!(stats.failures >= 1 && stats.out_of_fuel >= 1, "{stats:?}");
}

#[test]
fn a_plugin_that_reads_the_clock_or_files_is_refused_at_load() {
    let err = engine()
        .load("hostile-imports", &plugin_bytes("hostile-imports-plugin"))
        .unwrap_err();
    let LoadError::Shape {
        source: flink_policy::inspect::ShapeError::DeniedImport { import, .. },
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(
        import.starts_with("wasi:clocks/") || import.starts_with("wasi:filesystem/"),
        "{err}"
    );
}

#[test]
fn a_plugin_for_another_interface_version_is_refused_with_both_versions() {
    let err = engine()
        .load("next-gen", &plugin_bytes("hostile-version-plugin"))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("next-gen: was built for interface 2.0.0"),
        "{message}"
    );
    assert!(message.contains("this operator speaks 1.x"), "{message}");
}

#[test]
fn bytes_that_are_no_component_are_refused() {
    let core_module = b"\0asm\x01\0\0\0";
    let err = engine().load("core", core_module).unwrap_err();
    assert!(
        err.to_string().contains("a core module, not a component"),
        "{err}"
    );
    let err = engine().load("text", b"hello").unwrap_err();
    assert!(matches!(err, LoadError::NotAComponent { .. }), "{err}");
}

#[tokio::test]
async fn a_disk_cache_serves_a_second_engine_without_compiling() {
    let dir = std::env::temp_dir().join(format!("flink-policy-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bytes = plugin_bytes("tenant-quota-scaling");
    PolicyEngine::new(Some(dir.clone()))
        .unwrap()
        .load("quota", &bytes)
        .unwrap();
    let artifacts: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(artifacts.len(), 1, "one artifact per digest and engine");
    let name = artifacts[0].file_name().into_string().unwrap();
    assert!(
        name.starts_with(flink_policy::Digest::of(&bytes).hex()),
        "{name}"
    );
    let second = PolicyEngine::new(Some(dir.clone())).unwrap();
    let plugin = second.load("quota", &bytes).unwrap();
    let called = second
        .scaling(
            &plugin,
            &scaling_input(json!({"tenantMaxSlots": 36})),
            &scaling_limits(),
        )
        .await
        .unwrap();
    assert!(matches!(called.value, ScalingDecision::Override { .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn retain_forgets_unused_plugins_but_a_loaded_one_keeps_running() {
    let dir = std::env::temp_dir().join(format!("flink-policy-prune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not ours").unwrap();
    let engine = PolicyEngine::new(Some(dir.clone())).unwrap();
    let quota = plugin_bytes("tenant-quota-scaling");
    let window = plugin_bytes("maintenance-window-upgrade");
    let quota_plugin = engine.load("quota", &quota).unwrap();
    engine.load("window", &window).unwrap();
    let artifacts = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(artifacts().len(), 3);
    let in_use = std::collections::HashSet::from([flink_policy::Digest::of(&window)]);
    assert_eq!(engine.retain(&in_use), 1, "the quota plugin's artifact");
    let left = artifacts();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.contains(&"notes.txt".to_string()),
        "files not ours stay"
    );
    assert!(
        left.iter()
            .any(|n| n.starts_with(flink_policy::Digest::of(&window).hex()))
    );
    // A binding still holding the plugin keeps calling it.
    let called = engine
        .scaling(
            &quota_plugin,
            &scaling_input(json!({"tenantMaxSlots": 36})),
            &scaling_limits(),
        )
        .await
        .unwrap();
    assert!(matches!(called.value, ScalingDecision::Override { .. }));
    assert_eq!(engine.retain(&Default::default()), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn every_example_plugin_passes_the_contract_with_its_example_config() {
    let configs = [
        (
            "tenant-quota-scaling",
            json!({"tenantMaxSlots": 64, "peaks": [{"fromHour": 17, "toHour": 21}]}),
        ),
        (
            "maintenance-window-upgrade",
            json!({"windows": [{"days": ["sat"], "from": "02:00", "to": "05:00"}]}),
        ),
        (
            "connector-pod-template",
            json!({"connectors": [{"name": "kafka", "image": "reg/kafka-connector:4.0.0-2.0"}]}),
        ),
    ];
    for (package, config) in configs {
        let checks = engine().contract(&load(package), &config).await;
        let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
        assert!(failed.is_empty(), "{package}: {failed:#?}");
        assert!(checks.len() >= 8, "{package}: {checks:#?}");
    }
}

#[tokio::test]
async fn the_contract_fails_a_plugin_that_misbehaves() {
    let checks = engine()
        .contract(&load("hostile-plugin"), &json!({"misbehave": "loop"}))
        .await;
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        failed.contains(&"rejects a config that is not JSON"),
        "{checks:#?}"
    );
    assert!(
        failed.contains(&"decides on a 20-vertex job under load"),
        "{checks:#?}"
    );
    let loop_detail = &checks
        .iter()
        .find(|c| c.name == "decides on a 20-vertex job under load")
        .unwrap()
        .detail;
    assert!(loop_detail.contains("ran out of fuel"), "{loop_detail}");
}

#[tokio::test]
async fn a_pooling_engine_contains_plugins_the_same_way() {
    let pooled = flink_policy::PolicyEngine::with_options(flink_policy::EngineOptions {
        disk_cache: None,
        pooling: Some(flink_policy::PoolingOptions {
            instances: 8,
            max_memory_bytes: Limits::operator_maxima().memory_bytes,
        }),
        ..Default::default()
    })
    .expect("a pooling engine");
    let quota = pooled
        .load("quota", &plugin_bytes("tenant-quota-scaling"))
        .unwrap();
    let called = pooled
        .scaling(
            &quota,
            &scaling_input(json!({"tenantMaxSlots": 36})),
            &scaling_limits(),
        )
        .await
        .unwrap();
    assert!(matches!(called.value, ScalingDecision::Override { .. }));
    let hostile = pooled
        .load("hostile", &plugin_bytes("hostile-plugin"))
        .unwrap();
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..scaling_limits()
    };
    let failure = pooled
        .scaling(
            &hostile,
            &scaling_input(json!({"misbehave": "memory"})),
            &limits,
        )
        .await
        .unwrap_err();
    assert_eq!(
        failure,
        CallFailure::MemoryExceeded {
            limit_bytes: 16 << 20
        }
    );
    let failure = pooled
        .scaling(
            &hostile,
            &scaling_input(json!({"misbehave": "loop"})),
            &scaling_limits(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(failure, CallFailure::OutOfFuel { .. }),
        "{failure}"
    );
}
