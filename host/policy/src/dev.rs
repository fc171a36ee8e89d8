//! For this workspace's own tests and benches: the example and test plugins under `plugins/`,
//! built for `wasm32-wasip2` with the `plugin` profile. Not for operator code.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Every plugin crate of the workspace, by package name.
pub const PLUGINS: &[&str] = &[
    "tenant-quota-scaling",
    "maintenance-window-upgrade",
    "connector-pod-template",
    "hostile-plugin",
    "hostile-imports-plugin",
    "hostile-version-plugin",
    "legacy-v1-0-plugin",
    "hostile-pods-plugin",
];

/// The target directory of the running test or bench binary (`<target>/<profile>/deps/<bin>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

static BUILT: Mutex<bool> = Mutex::new(false);

/// The path of a plugin's component, building all plugins first (once per process): cargo
/// only rebuilds what changed, so a test never runs a stale plugin.
pub fn plugin_wasm(package: &str) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace_root())
            .args([
                "build",
                "--quiet",
                "--profile",
                "plugin",
                "--target",
                "wasm32-wasip2",
            ])
            .env("CARGO_TARGET_DIR", target_dir());
        for plugin in PLUGINS {
            command.args(["-p", plugin]);
        }
        let status = command.status().expect("cargo runs");
        assert!(
            status.success(),
            "building the plugins failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)"
        );
        *built = true;
    }
    target_dir()
        .join("wasm32-wasip2/plugin")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// The bytes of a plugin's component.
pub fn plugin_bytes(package: &str) -> Vec<u8> {
    let path = plugin_wasm(package);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
