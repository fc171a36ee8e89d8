//! `flink-operator local`: a cluster kubectl can use, started and stopped like a user would.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn local_serves_the_examples_to_kubectl_and_stops_on_ctrl_c() {
    let dir =
        std::env::temp_dir().join(format!("flink-operator-local-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .args([
            "local",
            "-f",
            repo().join("examples").to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
            "--run-for-seconds",
            "120",
            "--no-install",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut kubeconfig = None;
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
            kubeconfig = Some(path.to_string());
        }
        let done = line.starts_with("Watching resources");
        seen.push(line);
        if done {
            break;
        }
    }
    let kubeconfig = kubeconfig.unwrap_or_else(|| panic!("no KUBECONFIG line in {seen:#?}"));
    assert!(
        seen.iter()
            .any(|l| l == "FlinkDeployment default/quickstart created"),
        "{seen:#?}"
    );
    let output = Command::new("kubectl")
        .args(["get", "flinkdep", "-o", "name"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&output.stdout);
    assert!(
        names.contains("flinkdeployment.flink.apache.org/quickstart"),
        "{names} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        names.contains("flinkdeployment.flink.apache.org/shared-session"),
        "{names}"
    );

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // Its own bounds: the operator gets 10 s to stop, then each JVM 15 s of grace (in
        // parallel) before SIGKILL; a loaded machine's Flink takes several seconds.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "local did not stop within 30 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "Stopping."), "{rest:#?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn local_refuses_invalid_resources_before_starting() {
    let fixture = repo().join("tests/fixtures/invalid/parallelism-zero.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_flink-operator"))
        .args([
            "local",
            "-f",
            fixture.to_str().unwrap(),
            "--run-for-seconds",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("spec.job.parallelism: must be at least 1, got 0"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"));
}
