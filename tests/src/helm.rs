//! Helm 4's library from PyPI (`helm-sdkpy`, pinned), installed once into a venv in the cache
//! like Flink, and `tests/helm/helm.py` to drive it: the chart is linted and installed by the
//! real Helm engine, not by a template re-implementation.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const HELM_SDKPY: &str = "0.1.32";
/// Its native dependencies, pinned with it.
const PACKAGES: [&str; 3] = ["helm-sdkpy==0.1.32", "cffi==2.1.1", "pycparser==3.12"];

pub struct Helm {
    python: PathBuf,
    script: PathBuf,
}

impl Helm {
    /// The venv with helm-sdkpy in the cache, installed on first use.
    pub fn ensure() -> Result<Helm, String> {
        Self::ensure_in(&sandbox::flink_dist::cache_dir())
    }

    /// The venv with helm-sdkpy in `cache`, installed there once however many threads or
    /// processes ask at the same time.
    pub fn ensure_in(cache: &Path) -> Result<Helm, String> {
        let venv = cache.join(format!("helm-sdkpy-{HELM_SDKPY}"));
        sandbox::first_use::ensure(
            &venv,
            &PACKAGES.join(" "),
            &|line| eprintln!("helm-setup: {line}"),
            |staging| {
                sandbox::flink_dist::python_venv(staging, &PACKAGES)
                    .map_err(|e| format!("{e}; the chart test needs Python 3 with venv"))
            },
        )?;
        Ok(Helm {
            python: venv.join("bin/python"),
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
