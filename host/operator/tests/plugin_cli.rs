//! `flink-operator plugin check|run|test` as a plugin author runs them, on the example plugins
//! and inputs in `examples/plugins/` and on hostile plugins.

use flink_policy::dev::plugin_wasm;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/plugins")
        .join(file)
}

fn plugin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .arg("plugin")
        .args(args)
        .output()
        .expect("binary runs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[test]
fn check_prints_the_world_version_and_imports() {
    let wasm = plugin_wasm("tenant-quota-scaling");
    let shape = stdout_json(&plugin(&["check", path(&wasm)]));
    assert_eq!(shape["world"], "scaling-policy");
    assert_eq!(shape["interfaceVersion"], "1.1.0");
    assert!(shape["digest"].as_str().unwrap().starts_with("sha256:"));
    let imports: Vec<&str> = shape["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        imports.contains(&"flinkop:policy/host@1.1.0")
            && imports.contains(&"flinkop:policy/tenant@1.1.0"),
        "{imports:?}"
    );
}

#[test]
fn check_refuses_a_plugin_for_another_interface_version() {
    let wasm = plugin_wasm("hostile-version-plugin");
    let output = plugin(&["check", path(&wasm)]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("was built for interface 2.0.0 of flinkop:policy; this operator speaks 1.x"),
        "{stderr}"
    );
}

#[test]
fn run_prints_each_example_plugins_decision() {
    let quota = stdout_json(&plugin(&[
        "run",
        path(&plugin_wasm("tenant-quota-scaling")),
        "--input",
        path(&examples("scaling-input.json")),
        "--config",
        path(&examples("tenant-quota.config.json")),
    ]));
    // 11:00 local is inside the 0.6 target: ceil(2 * 0.93 / 0.6) = 4, within the quota of 6.
    assert_eq!(quota["value"]["decision"], "override", "{quota:#}");
    assert_eq!(quota["value"]["vertices"][0]["parallelism"], 4, "{quota:#}");
    assert!(quota["fuelUsed"].as_u64().unwrap() > 0);

    let upgrade = stdout_json(&plugin(&[
        "run",
        path(&plugin_wasm("maintenance-window-upgrade")),
        "--input",
        path(&examples("upgrade-input.json")),
        "--config",
        path(&examples("maintenance-window.config.json")),
    ]));
    assert_eq!(upgrade["value"]["decision"], "waitUntil", "{upgrade:#}");

    let pods = stdout_json(&plugin(&[
        "run",
        path(&plugin_wasm("connector-pod-template")),
        "--input",
        path(&examples("pod-input.json")),
        "--config",
        path(&examples("connectors.config.json")),
    ]));
    assert_eq!(
        pods["value"]["podTemplate"]["spec"]["initContainers"][0]["name"], "connector-kafka",
        "{pods:#}"
    );
}

#[test]
fn run_ends_a_hostile_plugin_with_a_clear_error_inside_the_limits() {
    let dir = std::env::temp_dir().join(format!("plugin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("loop.json");
    std::fs::write(&config, r#"{"misbehave": "loop"}"#).unwrap();
    let output = plugin(&[
        "run",
        path(&plugin_wasm("hostile-plugin")),
        "--input",
        path(&examples("scaling-input.json")),
        "--config",
        path(&config),
        "--fuel",
        "1000000",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "the plugin ran out of fuel (budget 1000000 instructions) (raise it with --fuel"
        ),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_names_the_field_of_a_bad_input() {
    let dir = std::env::temp_dir().join(format!("plugin-cli-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.json");
    std::fs::write(&input, r#"{"resource": {"kind": "FlinkDeployment", "namespace": "a", "name": "b", "tenant": "a"}, "jobId": "x", "nowEpochMs": "noon", "vertices": []}"#).unwrap();
    let output = plugin(&[
        "run",
        path(&plugin_wasm("tenant-quota-scaling")),
        "--input",
        path(&input),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("nowEpochMs: invalid type: string \"noon\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("(the input of a scaling-policy plugin)"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_runs_the_contract_and_fails_a_misbehaving_plugin() {
    let output = plugin(&[
        "test",
        path(&plugin_wasm("connector-pod-template")),
        "--config",
        path(&examples("connectors.config.json")),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("ok   is deterministic on the TaskManager pod"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("failed") && stdout.contains(" 0 failed"),
        "{stdout}"
    );

    let output = plugin(&["test", path(&plugin_wasm("hostile-plugin"))]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL rejects a config that is not JSON"),
        "{stdout}"
    );
}
