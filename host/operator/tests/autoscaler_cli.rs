//! `flink-operator autoscaler replay` on the example recording: what a user tuning settings
//! sees, and the errors they get for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn replay(args: &[&str]) -> Output {
    let history =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/autoscaler/step-up.json");
    Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .args(["autoscaler", "replay", "--history"])
        .arg(history)
        .args(args)
        .output()
        .expect("the operator binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn the_step_up_recording_scales_the_counter_once_with_its_numbers() {
    let output = replay(&[]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("+  100.0 s  scale:"), "{text}");
    assert!(
        text.contains("count -> sink: Writer: 1 -> 2  (true processing rate 1000/s"),
        "{text}"
    );
    assert!(text.contains("\"reason\":\"scaleFactor\""), "{text}");
    assert!(
        text.ends_with("16 samples over 150 s, 1 scaling(s)\n"),
        "{text}"
    );
}

#[test]
fn settings_change_the_outcome_and_json_reports_every_sample() {
    let text = stdout(&replay(&[
        "--config",
        "job.autoscaler.scaling.enabled=false",
    ]));
    assert!(text.contains("recommend (not applied"), "{text}");
    assert!(text.ends_with("0 scaling(s)\n"), "{text}");
    // A lower target asks for more: the same window now wants 3 subtasks (aligned to 4).
    let text = stdout(&replay(&[
        "--config",
        "utilization.target=0.4",
        "--config",
        "utilization.max=0.9",
    ]));
    assert!(text.contains("1 -> 4"), "{text}");
    let json = stdout(&replay(&["--json"]));
    let reports: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON report per line"))
        .collect();
    assert_eq!(reports.len(), 16);
    assert_eq!(reports[10]["apply"]["cnt"], 2);
}

#[test]
fn bad_settings_and_files_name_the_problem() {
    let output = replay(&["--config", "utilization.target=7"]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("job.autoscaler.utilization.target: 7 is not within [0, 1]"),
        "{err}"
    );
    let output = replay(&["--config", "utilization.target"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("expected KEY=VALUE"));
    let output = Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .args(["autoscaler", "replay", "--history", "Cargo.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a recording"));
}
