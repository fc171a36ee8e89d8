//! Helm 4's library from PyPI (`helm-sdkpy`, pinned), installed once into a venv in the cache
//! like Flink, and `tests/helm/helm.py` to drive it: the chart is linted and installed by the
//! real Helm engine, not by a template re-implementation.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub const HELM_SDKPY: &str = "0.1.32";
/// Its native dependencies, pinned with it. helm-sdkpy declares Python >= 3.12 but runs on the
/// 3.11 this machine has (it is a ctypes wrapper of a Go library).
const PACKAGES: [&str; 3] = ["helm-sdkpy==0.1.32", "cffi==2.1.1", "pycparser==3.12"];

pub struct Helm {
    python: PathBuf,
    script: PathBuf,
}

impl Helm {
    /// The venv with helm-sdkpy, installed on first use.
    pub fn ensure() -> Result<Helm, String> {
        let venv = sandbox::flink_dist::cache_dir().join(format!("helm-sdkpy-{HELM_SDKPY}"));
        let python = venv.join("bin/python");
        let marker = venv.join(".installed");
        if !marker.is_file() {
            let _ = std::fs::remove_dir_all(&venv);
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
                .map_err(|e| format!("{e}; the chart test needs Python 3 with venv"))?;
            run(Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg("--ignore-requires-python")
                .args(PACKAGES))?;
            std::fs::write(&marker, PACKAGES.join("\n")).map_err(|e| e.to_string())?;
        }
        Ok(Helm {
            python,
            script: crate::flink_cluster::repo_dir().join("tests/helm/helm.py"),
        })
    }

    /// Runs `helm.py ARGS`: its JSON answer, or Helm's message.
    pub fn run(&self, args: &[&str]) -> Result<Value, String> {
        let output = Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.python.display()))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        serde_json::from_slice(&output.stdout).map_err(|e| {
            format!(
                "helm.py printed no JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}
